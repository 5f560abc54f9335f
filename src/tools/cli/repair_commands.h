// repair: anti-entropy of the cluster's ranges (docs/operations.md).
#pragma once

#include "tools/cli/context.h"

namespace cairn::tools::cli {

// Repairs every (partition, keyspace) range asked for, one at a time through the node given by
// --server, with a progress line; prints a summary (JSON with --json).
int Repair(Context& context, const Args& args);

// Compacts the data of the node --server names; prints its size before and after.
int Compact(Context& context, const Args& args);

}  // namespace cairn::tools::cli
