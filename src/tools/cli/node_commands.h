// node decommission, remove, cancel, join, replace, ops: topology changes (docs/operations.md).
#pragma once

#include "tools/cli/context.h"

namespace cairn::tools::cli {

// Each starts its change and prints its first epoch; with --wait, follows it to the end.
int NodeDecommission(Context& context, const Args& args);
int NodeRemove(Context& context, const Args& args);
int NodeCancel(Context& context, const Args& args);
// To a new node on standby (cairnd --join SEEDS --standby) at args.node.address: join now, or
// take the places of dead member args.node.node_id.
int NodeJoin(Context& context, const Args& args);
int NodeReplace(Context& context, const Args& args);
// The change in progress and each node's streaming; with --wait, follows it to the end.
int NodeOps(Context& context, const Args& args);

}  // namespace cairn::tools::cli
