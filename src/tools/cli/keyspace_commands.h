// keyspace create, alter, list, describe, drop (docs/cli.md).
#pragma once

#include "tools/cli/context.h"

namespace cairn::tools::cli {

// Checks --rf, --read-cl and --write-cl (exit 2), then creates the keyspace.
int KeyspaceCreate(Context& context, const Args& args);
// Changes the default levels or linearizability; exit 2 when nothing is asked.
int KeyspaceAlter(Context& context, const Args& args);
// A table of every keyspace, or a JSON array.
int KeyspaceList(Context& context, const Args&);
int KeyspaceDescribe(Context& context, const Args& args);
int KeyspaceDrop(Context& context, const Args& args);

}  // namespace cairn::tools::cli
