// The node and the cluster: ping, metrics, status (docs/cli.md).
#pragma once

#include "tools/cli/context.h"

namespace cairn::tools::cli {

// "PONG from node N (cairnd V) in T ms".
int Ping(Context& context, const Args&);
// The node's counters, one "name value" a line.
int Metrics(Context& context, const Args&);
// A table of the nodes per data centre: state, address, id, rack, load, partitions, hints.
int ClusterStatus(Context& context, const Args&);
// cairn hotkeys: the keys the cluster's coordinators see most often, every live node asked.
int HotKeys(Context& context, const Args& args);
// cairn hotkeys split / merge: prints the counter's value afterwards.
int SplitCounter(Context& context, const Args& args);
int MergeCounter(Context& context, const Args& args);

// What `cairn status --json` says of one node (also `cairn node ops --json`).
Json NodeJson(const NodeInfo& node);
// What `cairn status` prints: JSON and text.
Json ClusterJson(const ClusterInfo& cluster);
std::string ClusterText(const ClusterInfo& cluster);

}  // namespace cairn::tools::cli
