// ping, metrics, status: the node and the cluster.
#include "tools/cli/cluster_commands.h"

#include <chrono>
#include <map>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace cairn::tools::cli {

namespace {

// 1536 as "1.5 KiB"; under 1 KiB as "512 B".
std::string HumanBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, units[u]);
}

}  // namespace

Json NodeJson(const NodeInfo& n) {
  Json streaming = nullptr;
  if (const auto& r = n.streaming) {
    streaming = Json{{"partition", r->partition},
                     {"keyspace", r->keyspace},
                     {"source", r->source},
                     {"chunks", r->chunks},
                     {"bytes", r->bytes}};
  }
  return Json{{"node_id", n.node_id},
              {"address", n.address},
              {"dc", n.dc},
              {"rack", n.rack},
              {"state", n.up ? "UP" : "DOWN"},
              {"partitions", n.partitions},
              {"load_bytes", n.load_bytes},
              {"dead_bytes", n.dead_bytes},
              {"hints_pending", n.hints_pending},
              {"self", n.self},
              {"member", n.member_state},
              {"dead", n.dead},
              {"streams_total", n.streams_total},
              {"streams_done", n.streams_done},
              {"stream_bytes", n.stream_bytes},
              {"stream_chunks", n.stream_chunks},
              {"stream_rate", n.stream_rate},
              {"streaming", std::move(streaming)}};
}

Json ClusterJson(const ClusterInfo& cluster) {
  Json nodes = Json::array();
  for (const auto& n : cluster.nodes) nodes.push_back(NodeJson(n));
  return Json{{"formed", cluster.formed}, {"partitions", cluster.partitions},
              {"note", cluster.note},     {"topology_epoch", cluster.topology_epoch},
              {"change", cluster.change}, {"nodes", nodes}};
}

// A table of nodes per data centre.
std::string ClusterText(const ClusterInfo& cluster) {
  std::string out =
      fmt::format("Cluster of {} nodes, {} partitions{}\n", cluster.nodes.size(),
                  cluster.partitions, cluster.formed ? "" : " (not formed: " + cluster.note + ")");
  if (cluster.formed) {
    out += fmt::format("Topology epoch {}; {}\n", cluster.topology_epoch,
                       cluster.change.empty() ? "no change in progress" : cluster.change);
  }
  std::map<std::string, std::vector<const NodeInfo*>> by_dc;
  for (const auto& n : cluster.nodes) by_dc[n.dc.empty() ? "?" : n.dc].push_back(&n);
  for (const auto& [dc, nodes] : by_dc) {
    out += "\nDatacenter: " + dc + "\n";
    out += fmt::format("{:<6} {:<8} {:<22} {:<11} {:<10} {:>10} {:>10} {:>10} {:>8}\n", "STATE",
                       "MEMBER", "ADDRESS", "NODE", "RACK", "LOAD", "DEAD", "PARTITIONS", "HINTS");
    for (const auto* n : nodes) {
      std::string notes;
      if (n->dead) notes += "  (dead)";
      if (n->streams_total > 0) {
        notes += fmt::format("  streaming {}/{} ranges, {}", n->streams_done, n->streams_total,
                             HumanBytes(n->stream_bytes));
      }
      if (n->self) notes += "  (this node)";
      out +=
          fmt::format("{:<6} {:<8} {:<22} {:<11} {:<10} {:>10} {:>10} {:>10} {:>8}{}\n",
                      n->up ? "UP" : "DOWN", n->member_state.empty() ? "?" : n->member_state,
                      n->address, n->node_id == 0 ? std::string("?") : std::to_string(n->node_id),
                      n->rack.empty() ? "?" : n->rack, HumanBytes(n->load_bytes),
                      HumanBytes(n->dead_bytes), n->partitions, n->hints_pending, notes);
    }
  }
  return out;
}

int Ping(Context& context, const Args&) {
  const auto start = std::chrono::steady_clock::now();
  auto r = context.client().Ping();
  if (!r.ok()) return Fail(r.status());
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return context.Reply(
      Json{{"node", r->node_id}, {"version", r->version}, {"round_trip_ms", ms}},
      fmt::format("PONG from node {} (cairnd {}) in {:.2f} ms\n", r->node_id, r->version, ms));
}

int Metrics(Context& context, const Args&) {
  auto r = context.client().Metrics();
  if (!r.ok()) return Fail(r.status());
  std::string text;
  for (const auto& [name, value] : *r) text += fmt::format("{} {}\n", name, value);
  return context.Reply(Json(*r), text);
}

int ClusterStatus(Context& context, const Args&) {
  auto r = context.client().ClusterStatus();
  if (!r.ok()) return Fail(r.status());
  return context.Reply(ClusterJson(*r), ClusterText(*r));
}

int HotKeys(Context& context, const Args& args) {
  // Every keyspace unless --keyspace names one.
  const std::string keyspace = context.keyspace_given() ? context.keyspace() : "";
  auto r = context.client().HotKeys(keyspace, args.hotkeys.limit);
  if (!r.ok()) return Fail(r.status());
  Json keys = Json::array();
  std::string text;
  if (r->keys.empty()) {
    text = "no key stands out (a key is listed once it is above 1/128 of a node's operations)\n";
  } else {
    text = fmt::format("{:>4}  {:<12} {:<32} {:>10} {:>10} {:>10} {:>9} {:>6}  {}\n", "rank",
                       "keyspace", "key", "reads/s", "writes/s", "incr/s", "+/-", "split",
                       "nodes (ops/s)");
  }
  int rank = 0;
  for (const HotKeyInfo& k : r->keys) {
    Json j;
    j["keyspace"] = k.keyspace;
    PutBytes(j, "key", k.key);
    j["truncated"] = k.truncated;
    j["reads_per_s"] = k.reads_per_s;
    j["writes_per_s"] = k.writes_per_s;
    j["increments_per_s"] = k.increments_per_s;
    j["error_per_s"] = k.error_per_s;
    j["split_shards"] = k.split_shards;
    Json nodes = Json::array();
    std::string node_text;
    for (const auto& [node, ops] : k.nodes) {
      nodes.push_back(Json{{"node", node}, {"ops_per_s", ops}});
      node_text += fmt::format("{}{} ({:.0f})", node_text.empty() ? "" : ", ", node, ops);
    }
    j["nodes"] = std::move(nodes);
    keys.push_back(std::move(j));
    std::string key = Printable(k.key);
    if (k.truncated) key += "...";
    // "split": a split counter's sub-counters, "-" for any other key.
    const std::string split = k.split_shards == 0 ? "-" : std::to_string(k.split_shards);
    text += fmt::format("{:>4}  {:<12} {:<32} {:>10.0f} {:>10.0f} {:>10.0f} {:>9.0f} {:>6}  {}\n",
                        ++rank, k.keyspace, key, k.reads_per_s, k.writes_per_s, k.increments_per_s,
                        k.error_per_s, split, node_text);
  }
  Json missing = Json::array();
  for (uint32_t node : r->nodes_missing) missing.push_back(node);
  if (!r->nodes_missing.empty()) {
    text += fmt::format("{} of {} live nodes did not answer: their load is not counted\n",
                        r->nodes_missing.size(), r->nodes_asked);
  }
  return context.Reply(
      Json{{"keys", std::move(keys)}, {"nodes_asked", r->nodes_asked}, {"nodes_missing", missing}},
      text);
}

namespace {

int ChangeSplit(Context& context, const Args& args, uint32_t shards) {
  auto r = context.client().SplitCounter(context.keyspace(), args.kv.key, shards);
  if (!r.ok()) return Fail(r.status());
  const std::string value = r->value.empty() ? "(absent)" : Printable(r->value);
  const std::string text =
      shards > 0 ? fmt::format("split into {} sub-counters; value {}\n", shards, value)
                 : fmt::format("merged; value {}\n", value);
  Json j{{"shards", r->shards}};
  PutBytes(j, "value", r->value);
  return context.Reply(j, text);
}

}  // namespace

int SplitCounter(Context& context, const Args& args) {
  return ChangeSplit(context, args, args.hotkeys.shards);
}

int MergeCounter(Context& context, const Args& args) { return ChangeSplit(context, args, 0); }

}  // namespace cairn::tools::cli
