// Repair (anti-entropy) of one (partition, keyspace) range, run by any node: the range's
// replicas compare digests (one hash per segment of the keys, kept by each replica's storage
// engine), list the keys and versions of the segments that differ, and each replica pulls the
// newer versions it lacks from one that holds them, with the range-transfer primitive that
// streaming uses (the `repair_pull` internode request). Only keys that differ travel.
#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include "base/async.h"
#include "coordinator/cluster_coordinator.h"
#include "coordinator/replica_set.h"
#include "storage/engine.h"

namespace cairn::coordinator {

namespace {

// Each step of a repair waits this long for a replica's answer.
constexpr auto kRepairCallTime = std::chrono::seconds(30);
// A node's part of the repair runs (RepairRuns()) is awaited this long.
constexpr auto kRepairRunsCallTime = std::chrono::seconds(2);
// Keys listed per request.
constexpr uint32_t kKeysPerPage = 10'000;

Version VersionOf(const internode::Version& v) { return Version{v.hlc(), v.node()}; }

// One step of a repair sent to one replica. A replica the failure detector holds UP but that
// cannot be reached right now (a connection to its previous process not yet seen closed, a
// restart a moment ago) is tried again twice before the step counts as failed: one such blip
// would otherwise leave the range unagreed, and its tombstones unpurged, until the next cycle.
asio::awaitable<Result<internode::Response>> Ask(cluster::InternodeClient& client,
                                                 const std::string& address,
                                                 const internode::Request& request) {
  const auto client_executor = co_await asio::this_coro::executor;
  Result<internode::Response> response = Status::Unavailable("not sent");
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (attempt > 0) {
      const auto pause = std::chrono::milliseconds(150 * attempt);
      asio::steady_timer wait(client_executor, pause);
      co_await wait.async_wait(base::kNoThrow);
    }
    response = co_await client.Call(address, request, base::Clock::now() + kRepairCallTime);
    if (response.ok() || response.status().code() != Code::kUnavailable) break;
  }
  co_return response;
}

// A replica's digest of one range (its root and key count alone with `root_only`).
asio::awaitable<Result<internode::Response>> AskDigest(cluster::InternodeClient& client,
                                                       std::string address, uint32_t partition,
                                                       uint32_t keyspace, bool root_only) {
  internode::Request request;
  request.mutable_digest()->set_partition(partition);
  request.mutable_digest()->set_keyspace(keyspace);
  request.mutable_digest()->set_root_only(root_only);
  co_return co_await Ask(client, address, request);
}

// After a repair in which every replica took part and agreed: each replica purges the range's
// tombstones and expired values gone before `horizon_ms`. Returns how many, summed.
asio::awaitable<uint64_t> PurgeEverywhere(cluster::InternodeClient& client,
                                          const std::vector<std::string>& addresses,
                                          uint32_t partition, uint32_t keyspace,
                                          uint64_t horizon_ms) {
  uint64_t purged = 0;
  for (const std::string& address : addresses) {
    internode::Request request;
    request.mutable_purge()->set_partition(partition);
    request.mutable_purge()->set_keyspace(keyspace);
    request.mutable_purge()->set_horizon_ms(horizon_ms);
    auto response = co_await Ask(client, address, request);
    if (!response.ok()) {
      // The tombstones stay until the next repair that agrees: nothing is lost by waiting.
      spdlog::warn("purge of partition {} on {}: {}", partition, address,
                   response.status().ToString());
      continue;
    }
    purged += response->purge().purged();
  }
  co_return purged;
}

}  // namespace

asio::awaitable<Result<RangeRepairReport>> ClusterCoordinator::RepairRange(std::string keyspace,
                                                                           uint32_t partition,
                                                                           uint32_t only_node,
                                                                           bool only_as_first,
                                                                           RepairRunStep run) {
  if (Status s = RepairRunTable::Check(run); !s.ok()) co_return s;
  repair_runs_.Begin(run, keyspace.empty() ? std::string(cluster::kDefaultKeyspace) : keyspace,
                     partition, only_node, wall_->NowMillis());
  auto report = co_await RepairOneRange(std::move(keyspace), partition, only_node, only_as_first);
  repair_runs_.End(run, report, wall_->NowMillis());
  co_return report;
}

asio::awaitable<Result<RangeRepairReport>> ClusterCoordinator::RepairOneRange(std::string keyspace,
                                                                              uint32_t partition,
                                                                              uint32_t only_node,
                                                                              bool only_as_first) {
  const uint64_t start_ms = wall_->NowMillis();
  auto ks = ResolveKeyspace(keyspace);
  if (!ks.ok()) co_return ks.status();
  auto topology = Topology();
  if (!topology.ok()) co_return topology.status();
  const cluster::Topology& t = **topology;
  if (partition >= partition_count()) {
    co_return Status::InvalidArgument(fmt::format(
        "partition {} is out of range: the cluster has {}", partition, partition_count()));
  }
  RangeRepairReport report;
  report.partition = partition;
  report.keyspace = (*ks)->name;
  const ReplicaSet set = ReplicaSet::Of(t, **ks, partition);
  report.replicas.assign(set.nodes.begin(), set.nodes.end());
  if (only_node != 0 && set.IndexOf(only_node) < 0) {
    report.skipped = fmt::format("node {} holds no replica of it", only_node);
    report.not_for_node = true;
    co_return report;
  }
  if (only_as_first && (set.nodes.empty() || set.nodes.front() != only_node)) {
    report.skipped = fmt::format("node {} is not its first replica", only_node);
    report.not_for_node = true;
    co_return report;
  }
  if (t.base || t.target) {
    // The range's replicas are changing: streaming brings the new ones up to date, and the
    // next repair after the change compares them.
    report.skipped = "a topology change is in progress";
    co_return report;
  }
  cluster::InternodeClient* client = Client();
  if (client == nullptr) co_return Status::Unavailable("no internode client on this thread");

  // 1. Digest roots from every live replica: replicas that agree compare 16 bytes.
  struct Answered {  // a live replica that sent its digest
    uint32_t node = 0;
    std::string address;
    uint64_t root = 0;
    uint64_t keys = 0;
    std::vector<uint64_t> segments;  // empty until asked for (or from a node without roots)
  };
  auto take_segments = [&](Answered& r, const internode::DigestResponse& digest) -> Status {
    const auto& segments = digest.segments();
    if (segments.size() != static_cast<int>(storage::kDigestSegments)) {
      return Status::Internal(fmt::format("node {} answered a digest of {} segments, not {}",
                                          r.node, segments.size(), storage::kDigestSegments));
    }
    r.segments.assign(segments.begin(), segments.end());
    return Status::Ok();
  };
  std::vector<Answered> replicas;
  for (uint32_t node : set.nodes) {
    if (!view_->IsUp(node)) continue;
    std::string address = AddressOf(t, node);  // named: see the g++ 12 note in check-layers
    auto response = co_await AskDigest(*client, address, partition, (*ks)->id, /*root_only=*/true);
    if (!response.ok()) {
      spdlog::warn("repair of partition {} of keyspace {}: node {} did not answer: {}", partition,
                   (*ks)->name, node, response.status().ToString());
      continue;
    }
    Answered& r = replicas.emplace_back(Answered{
        node, AddressOf(t, node), response->digest().root(), response->digest().keys(), {}});
    // A node of an earlier version answers every segment and no root.
    if (response->digest().segments_size() > 0) {
      if (Status s = take_segments(r, response->digest()); !s.ok()) co_return s;
    }
  }
  report.answered = static_cast<uint32_t>(replicas.size());
  if (replicas.size() < 2) {
    report.skipped = fmt::format("{} of its {} replicas answered; a repair needs two",
                                 replicas.size(), set.nodes.size());
    co_return report;
  }

  // 2. The segments where some replica differs from the first, asked for only when the roots
  // (or key counts) differ.
  const bool roots_agree = std::all_of(replicas.begin(), replicas.end(), [&](const Answered& r) {
    return r.segments.empty() && r.root == replicas.front().root && r.keys == replicas.front().keys;
  });
  std::vector<uint32_t> differing;
  if (!roots_agree) {
    for (Answered& r : replicas) {
      if (!r.segments.empty()) continue;
      auto response =
          co_await AskDigest(*client, r.address, partition, (*ks)->id, /*root_only=*/false);
      if (!response.ok()) {
        co_return Status(response.status().code(),
                         fmt::format("the digest of partition {} on node {}: {}", partition, r.node,
                                     response.status().message()));
      }
      if (Status s = take_segments(r, response->digest()); !s.ok()) co_return s;
    }
    for (uint32_t s = 0; s < storage::kDigestSegments; ++s) {
      for (const Answered& r : replicas) {
        if (r.segments[s] != replicas.front().segments[s]) {
          differing.push_back(s);
          break;
        }
      }
    }
  }
  report.segments_differing = static_cast<uint32_t>(differing.size());
  const bool everyone = replicas.size() == set.nodes.size();
  // Once every replica holds the same versions, tombstones old enough go: older than the hint
  // window (no hint can still bring an older version back) and than the margin before this
  // repair began (no write from before it is still in flight); see docs/consistency.md.
  std::vector<std::string> addresses;
  for (const Answered& r : replicas) addresses.push_back(r.address);
  const uint64_t window_ms = static_cast<uint64_t>(options_.hint_window.count());
  const uint64_t margin_ms = static_cast<uint64_t>(options_.purge_margin.count());
  const uint64_t horizon_ms =
      start_ms > window_ms + margin_ms ? start_ms - window_ms - margin_ms : 0;
  if (differing.empty()) {
    report.agreed = everyone;
    if (report.agreed && horizon_ms > 0) {
      report.tombstones_purged =
          co_await PurgeEverywhere(*client, addresses, partition, (*ks)->id, horizon_ms);
    }
    co_return report;
  }

  // 3. The keys and versions of those segments, from every replica.
  std::map<std::string, std::vector<std::optional<Version>>> versions;  // key -> per replica
  for (size_t i = 0; i < replicas.size(); ++i) {
    std::string after;
    while (true) {
      internode::Request request;
      internode::RangeKeysRequest* list = request.mutable_range_keys();
      list->set_partition(partition);
      list->set_keyspace((*ks)->id);
      for (uint32_t s : differing) list->add_segments(s);
      list->set_after(after);
      list->set_max_keys(kKeysPerPage);
      auto response = co_await Ask(*client, replicas[i].address, request);
      if (!response.ok()) {
        co_return Status(response.status().code(),
                         fmt::format("listing the keys of partition {} on node {}: {}", partition,
                                     replicas[i].node, response.status().message()));
      }
      for (const internode::KeyVersion& kv : response->range_keys().items()) {
        auto& slot = versions[kv.key()];
        slot.resize(replicas.size());
        slot[i] = VersionOf(kv.version());
        ++report.keys_compared;
      }
      if (response->range_keys().done() || response->range_keys().items_size() == 0) break;
      after = response->range_keys().last_key();
    }
  }

  // 4. Who lacks what: for each key, the replicas without its newest version pull it from the
  // first replica that has it.
  std::map<std::pair<size_t, size_t>, std::vector<std::string>> pulls;  // (to, from) -> keys
  for (auto& [key, held] : versions) {
    held.resize(replicas.size());
    size_t newest = 0;
    for (size_t i = 1; i < held.size(); ++i) {
      if (held[i] && (!held[newest] || *held[newest] < *held[i])) newest = i;
    }
    for (size_t i = 0; i < held.size(); ++i) {
      if (!held[i] || *held[i] < *held[newest]) pulls[{i, newest}].push_back(key);
    }
  }

  // 5. Each replica pulls what it lacks.
  bool complete = true;
  for (auto& [route, keys] : pulls) {
    const auto [to, from] = route;
    internode::Request request;
    internode::RepairPullRequest* pull = request.mutable_repair_pull();
    pull->set_partition(partition);
    pull->set_keyspace((*ks)->id);
    pull->set_source(replicas[from].node);
    pull->set_source_address(replicas[from].address);
    for (std::string& key : keys) pull->add_keys(std::move(key));
    auto response = co_await Ask(*client, replicas[to].address, request);
    if (!response.ok()) {
      complete = false;
      spdlog::warn("repair of partition {} of keyspace {}: node {} could not pull from node {}: {}",
                   partition, (*ks)->name, replicas[to].node, replicas[from].node,
                   response.status().ToString());
      continue;
    }
    report.keys_repaired += response->repair_pull().records();
    report.bytes += response->repair_pull().bytes();
  }
  report.agreed = everyone && complete;
  if (report.agreed && horizon_ms > 0) {
    report.tombstones_purged =
        co_await PurgeEverywhere(*client, addresses, partition, (*ks)->id, horizon_ms);
  }
  co_return report;
}

// GET /v1/repairs: every live node's part of the `cairn repair` runs, added up by run id (a
// client spreads a run's ranges over the servers it was given).
asio::awaitable<Result<RepairRunsReport>> ClusterCoordinator::RepairRuns() {
  std::vector<std::pair<uint32_t, RepairRunReport>> parts;
  RepairRunsReport report;
  ++report.nodes_asked;  // this node
  for (RepairRunReport& r : repair_runs_.Snapshot()) {
    parts.emplace_back(identity_.node_id, std::move(r));
  }
  internode::Request request;
  request.mutable_repair_runs();
  const std::function<bool(uint32_t, internode::Response&)> take =
      [&parts](uint32_t node, internode::Response& response) {
        if (!response.has_repair_runs()) return false;
        for (const internode::RepairRunEntry& e : response.repair_runs().runs()) {
          parts.emplace_back(node, FromEntry(e));
        }
        return true;
      };
  co_await AskLivePeers(request, kRepairRunsCallTime, take, "repair runs", &report.nodes_asked,
                        &report.nodes_missing);
  report.runs = MergeRepairRuns(parts, wall_->NowMillis());
  co_return report;
}

}  // namespace cairn::coordinator
