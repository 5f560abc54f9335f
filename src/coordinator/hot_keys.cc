// cairn hotkeys: every live node's hot-key sketch (base/hot_keys.h), merged.
#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "cluster/split_counters.h"
#include "coordinator/cluster_coordinator.h"

namespace cairn::coordinator {

namespace {
constexpr auto kHotKeysCallTime = std::chrono::seconds(2);
}  // namespace

asio::awaitable<Result<HotKeysReport>> ClusterCoordinator::HotKeys(std::string keyspace,
                                                                   uint32_t limit) {
  if (limit == 0 || limit > 1000) {
    co_return Status::InvalidArgument(
        fmt::format("a hot-key listing has 1 to 1000 keys, not {}", limit));
  }
  uint32_t keyspace_id = 0;  // every keyspace
  if (!keyspace.empty()) {
    auto ks = ResolveKeyspace(keyspace);
    if (!ks.ok()) co_return ks.status();
    keyspace_id = (*ks)->id;
  }
  // Each node is asked for more than `limit`: a key just below every node's top `limit` can
  // be above them all once the nodes' rates are summed.
  const uint32_t ask = std::min<uint32_t>(limit * 2, 1000);
  std::map<std::pair<uint32_t, std::string>, HotKeyReport> merged;
  const auto add = [&merged](uint32_t node, uint32_t ks, std::string key, bool truncated,
                             double reads, double writes, double increments, double error) {
    // A split counter's sub-counters are counted as the counter itself (counters.cc).
    if (cluster::IsSplitPartKey(key)) return;
    HotKeyReport& r = merged[{ks, key}];
    if (r.key.empty()) r.key = std::move(key);
    r.truncated = truncated;
    r.reads_per_s += reads;
    r.writes_per_s += writes;
    r.increments_per_s += increments;
    r.error_per_s += error;
    r.nodes.emplace_back(node, reads + writes);
  };
  HotKeysReport report;
  ++report.nodes_asked;  // this node
  for (base::HotKey& h : hot_keys_.Top(keyspace_id, ask)) {
    add(identity_.node_id, h.keyspace, std::move(h.key), h.truncated, h.reads_per_s, h.writes_per_s,
        h.increments_per_s, h.error_per_s);
  }
  internode::Request request;
  request.mutable_hot_keys()->set_keyspace(keyspace_id);
  request.mutable_hot_keys()->set_limit(ask);
  const std::function<bool(uint32_t, internode::Response&)> take =
      [&add](uint32_t node, internode::Response& response) {
        for (internode::HotKeyEntry& e : *response.mutable_hot_keys()->mutable_keys()) {
          add(node, e.keyspace(), std::move(*e.mutable_key()), e.truncated(), e.reads_per_s(),
              e.writes_per_s(), e.increments_per_s(), e.error_per_s());
        }
        return true;
      };
  co_await AskLivePeers(request, kHotKeysCallTime, take, "hot keys", &report.nodes_asked,
                        &report.nodes_missing);
  std::map<uint32_t, std::string> names;
  for (const cluster::KeyspaceDef& def : schema_->List()) names[def.id] = def.name;
  auto topology = view_->topology();
  for (auto& [id, r] : merged) {
    auto name = names.find(id.first);
    // A keyspace dropped since: its id stands in for the name.
    r.keyspace = name == names.end() ? fmt::format("#{}", id.first) : name->second;
    if (topology && topology->splits && name != names.end() && !r.truncated) {
      if (const cluster::SplitEntry* split = topology->splits->Find(r.keyspace, r.key)) {
        r.split_shards = split->shards;
      }
    }
    std::sort(r.nodes.begin(), r.nodes.end(),
              [](const auto& a, const auto& b) { return a.second > b.second; });
    report.keys.push_back(std::move(r));
  }
  std::sort(report.keys.begin(), report.keys.end(), [](const auto& a, const auto& b) {
    const double x = a.reads_per_s + a.writes_per_s, y = b.reads_per_s + b.writes_per_s;
    if (x != y) return x > y;
    return std::tie(a.keyspace, a.key) < std::tie(b.keyspace, b.key);
  });
  if (report.keys.size() > limit) report.keys.resize(limit);
  co_return report;
}

uint32_t ClusterCoordinator::ClientCacheMs(const RequestOptions& options,
                                           std::string_view key) const {
  if (!hot_keys_.AnyHot()) return 0;  // the common case: one relaxed load
  if (options.consistency == Consistency::kSerial ||
      options.consistency == Consistency::kLocalSerial) {
    return 0;
  }
  auto ks = ResolveKeyspace(options.keyspace);
  // A linearizable keyspace promises every read the newest write: no cached answers.
  if (!ks.ok() || (*ks)->linearizable) return 0;
  return hot_keys_.IsHot((*ks)->id, key) ? options_.client_cache_ms : 0;
}

}  // namespace cairn::coordinator
