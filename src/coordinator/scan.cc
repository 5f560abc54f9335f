// Prefix scans: one request per node for all the partitions it is asked for, then the pages
// merged in key order (scan_merge.h).
#include <algorithm>
#include <map>
#include <tuple>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/hash.h"
#include "base/reactor.h"
#include "coordinator/cluster_coordinator.h"
#include "coordinator/replica_set.h"
#include "coordinator/scan_merge.h"
#include "replica/internode_service.h"

namespace cairn::coordinator {

using base::kNoThrow;
using storage::StoredValue;
using storage::WriteOp;

namespace {
constexpr size_t kMaxDeadPerPage = 16'384;
}  // namespace

Result<std::shared_ptr<const ClusterCoordinator::ScanPlan>> ClusterCoordinator::PlanScan(
    const std::shared_ptr<const cluster::Topology>& topology,
    const std::shared_ptr<const cluster::KeyspaceDef>& ks, Consistency level,
    const std::vector<uint32_t>& partitions, bool all) {
  auto live_now = [&] {
    std::vector<uint32_t> live;
    for (const cluster::Member& m : topology->map.members()) {
      if (view_->IsUp(m.node_id)) live.push_back(m.node_id);
    }
    return live;
  };
  std::vector<uint32_t> live = live_now();
  if (all) {
    std::lock_guard lock(scan_plans_mu_);
    for (const auto& plan : scan_plans_) {
      if (plan->topology == topology && plan->keyspace == ks && plan->level == level &&
          plan->live == live) {
        return plan;
      }
    }
  }
  // For each partition, the level's count of live replicas: this node first, then nodes already
  // asked for other partitions (so that a QUORUM scan on three nodes asks two, not all three),
  // then its DC. One request per node covers all of that node's partitions.
  auto plan = std::make_shared<ScanPlan>();
  std::vector<uint32_t> asked;  // nodes of the plan so far, the first asked first
  for (uint32_t p : partitions) {
    const ReplicaSet set = ReplicaSet::Of(*topology, *ks, p);
    auto req = Requirement::For(level, set, false);
    if (!req.ok()) return req.status();
    if (Status s = CheckLive(set, *req, *view_, level); !s.ok()) return s;
    auto [chosen, spare] = ChooseReplicas(set, *req, asked);
    for (uint32_t node : chosen) {
      std::vector<uint32_t>& parts = plan->by_node[node];
      if (parts.empty()) asked.push_back(node);
      parts.push_back(p);
    }
  }
  // Kept only if no node went UP or DOWN while it was made: it must be the plan of its key.
  if (all && live_now() == live) {
    plan->topology = topology;
    plan->keyspace = ks;
    plan->level = level;
    plan->live = std::move(live);
    std::lock_guard lock(scan_plans_mu_);
    // Plans of older topologies go; a few keyspaces and levels are kept.
    std::erase_if(scan_plans_, [&topology](const auto& p) { return p->topology != topology; });
    if (scan_plans_.size() >= 8) scan_plans_.erase(scan_plans_.begin());
    scan_plans_.push_back(plan);
  }
  return std::shared_ptr<const ScanPlan>(std::move(plan));
}

asio::awaitable<Result<ScanPage>> ClusterCoordinator::Scan(std::string prefix, std::string cursor,
                                                           uint32_t limit, RequestOptions options,
                                                           std::optional<uint32_t> partition) {
  auto ks = ResolveKeyspace(options.keyspace);
  if (!ks.ok()) co_return ks.status();
  if (Status s = ValidateReadLevel(options.consistency); !s.ok()) co_return s;
  if (prefix.size() > kMaxKeyBytes || cursor.size() > kMaxKeyBytes) {
    co_return Status::TooLarge(
        fmt::format("scan prefix and cursor are at most {} bytes", kMaxKeyBytes));
  }
  if (limit == 0) limit = options_.default_scan_limit;
  if (limit > options_.max_scan_limit) {
    co_return Status::InvalidArgument(
        fmt::format("scan limit {} is over the maximum of {}", limit, options_.max_scan_limit));
  }
  auto topology_result = Topology();
  if (!topology_result.ok()) co_return topology_result.status();
  const cluster::Topology& topology = **topology_result;
  const Consistency level = Resolve(options.consistency, **ks, false);

  if (partition && *partition >= identity_.partitions()) {
    co_return Status::InvalidArgument(fmt::format("partition {} is not below the cluster's {}",
                                                  *partition, identity_.partitions()));
  }
  std::vector<uint32_t> partitions;
  if (auto tag = base::PrefixPartitionKey(prefix)) {
    // Every matching key has this hash tag: one partition, one replica set.
    partitions.push_back(base::PartitionOfToken(base::Hash64(*tag), identity_.partition_bits));
    if (partition && partitions.front() != *partition) partitions.clear();
  } else if (partition) {
    partitions.push_back(*partition);
  } else {
    partitions.resize(identity_.partitions());
    for (uint32_t p = 0; p < identity_.partitions(); ++p) partitions[p] = p;
  }
  auto plan = PlanScan(*topology_result, *ks, level, partitions,
                       partitions.size() == identity_.partitions());
  if (!plan.ok()) co_return plan.status();
  // A copy: the requests take their partition lists.
  std::map<uint32_t, std::vector<uint32_t>> by_node = (*plan)->by_node;

  struct NodePage {
    Status status = Status::Timeout("no answer", 0);
    std::vector<std::pair<std::string, StoredValue>> items;
    bool exhausted = false;
    std::string last_key;
  };
  auto executor = co_await asio::this_coro::executor;
  auto pages = std::make_shared<std::map<uint32_t, NodePage>>();
  auto outstanding = std::make_shared<size_t>(by_node.size());
  auto wake = std::make_shared<asio::steady_timer>(executor);
  // Dead entries (tombstones, expired values) a node may pass per page besides the live ones. They
  // come back with the page (the newest version of a key wins across nodes) and are merged on
  // this reactor, so they are bounded whatever the limit: SCAN COUNT 10000 over a keyspace of
  // tombstones merged 101,000 entries in one step (60 ms). A page that stops early is not
  // empty-handed: its cursor moves past what was skipped.
  const size_t max_dead = std::min<size_t>(size_t{limit} * 10 + 1000, kMaxDeadPerPage);
  for (auto& [node, parts] : by_node) {
    replica::Replica::ScanArgs args;
    args.keyspace = (*ks)->id;
    args.partitions = std::move(parts);
    args.prefix = prefix;
    args.after = cursor;
    args.limit = limit;
    args.max_dead = max_dead;
    args.max_bytes = options_.max_answer_bytes;
    asio::co_spawn(
        executor,
        [this, node = node, args = std::move(args), pages, outstanding, wake,
         topology = *topology_result,
         deadline = options.deadline]() mutable -> asio::awaitable<void> {
          NodePage page;
          if (node == identity_.node_id) {
            auto r = co_await local_->Scan(std::move(args));
            if (r.ok()) {
              page.status = Status::Ok();
              for (auto& item : r->items)
                page.items.emplace_back(std::move(item.key), std::move(item.value));
              page.exhausted = r->exhausted;
              page.last_key = std::move(r->last_key);
            } else {
              page.status = r.status();
            }
          } else if (cluster::InternodeClient* client = Client()) {
            internode::Request request;
            auto* scan = request.mutable_scan();
            scan->set_keyspace(args.keyspace);
            for (uint32_t p : args.partitions) scan->add_partitions(p);
            scan->set_prefix(args.prefix);
            scan->set_after(args.after);
            scan->set_limit(static_cast<uint32_t>(args.limit));
            scan->set_max_dead(static_cast<uint32_t>(args.max_dead));
            request.set_topology_epoch(topology->epoch);
            auto r = co_await client->Call(AddressOf(*topology, node), request, deadline);
            if (r.ok()) {
              page.status = Status::Ok();
              for (internode::Mutation& m : *r->mutable_scan()->mutable_items()) {
                std::string key = m.key();
                page.items.emplace_back(std::move(key), replica::FromMutation(std::move(m)).value);
              }
              page.exhausted = r->scan().exhausted();
              page.last_key = r->scan().last_key();
            } else {
              page.status = r.status();
            }
          } else {
            page.status = Status::Unavailable("no route to a replica");
          }
          (*pages)[node] = std::move(page);
          if (--*outstanding == 0) wake->cancel();
        },
        asio::detached);
  }
  if (*outstanding > 0) {
    wake->expires_at(options.deadline);
    co_await wake->async_wait(kNoThrow);
  }
  if (*outstanding > 0) co_return Status::Timeout("the scan did not finish before the deadline", 0);

  std::vector<NodeScanPage> answers;
  answers.reserve(pages->size());
  for (auto& [node, page] : *pages) {
    if (page.status.code() == Code::kFailedPrecondition) {
      // Fenced out: scan again with the topology that fenced this one (a page is stateless).
      if (auto newer = co_await NewerTopology(topology.epoch, options.deadline)) {
        replica_counters_.replans.Add(1);
        co_return co_await Scan(std::move(prefix), std::move(cursor), limit, std::move(options),
                                partition);
      }
    }
    if (!page.status.ok()) co_return page.status;
    answers.push_back(
        NodeScanPage{std::move(page.items), page.exhausted, std::move(page.last_key)});
  }
  ScanPage merged = MergeScanPages(std::move(answers), limit, wall_->NowMillis());
  // Sub-counters of split counters are not the user's keys; a split counter shows its sum. (A
  // page may come out shorter than the limit: its cursor still says where to go on.)
  std::erase_if(merged.entries, [](const auto& e) { return cluster::IsSplitPartKey(e.first); });
  if (topology.splits) {
    for (auto& [key, record] : merged.entries) {
      if (SplitOf(topology, **ks, key, options) == nullptr) continue;
      auto sum = co_await ReadSplit(**ks, key, options);
      if (!sum.ok()) co_return sum.status();
      if (sum->has_value()) record = std::move(**sum);
    }
  }
  co_return merged;
}
}  // namespace cairn::coordinator
