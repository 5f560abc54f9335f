// Keyspace administration, cluster status and counters.
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
#include "cluster/split_counters.h"
#include "cluster/topology_state.h"
#include "coordinator/cluster_coordinator.h"
#include "coordinator/replica_set.h"
#include "replica/internode_service.h"

namespace cairn::coordinator {

using base::kNoThrow;
using storage::StoredValue;
using storage::WriteOp;

namespace {

// Keyspace changes wait this long for their topology epoch.
constexpr auto kKeyspaceChangeTime = std::chrono::seconds(10);

}  // namespace

// Keyspace changes are topology epochs: decided by Paxos, so that a create racing a drop of the
// same name ends with one definition that every node agrees on. Without a topology log (unit
// tests), they apply to this node's schema alone.
asio::awaitable<Result<cluster::KeyspaceDef>> ClusterCoordinator::CreateKeyspace(
    cluster::KeyspaceDef spec, bool if_not_exists) {
  const Version version{clock_->Now(), identity_.node_id};
  const uint64_t now_ms = wall_->NowMillis();
  if (store_ == nullptr) {
    co_return co_await base::AwaitCallback<Result<cluster::KeyspaceDef>>(
        [&](auto done) {
          asio::post(blocking_, [this, &spec, if_not_exists, now_ms, version, done] {
            done(schema_->Create(spec, if_not_exists, now_ms, version));
          });
        },
        Status::Timeout("keyspace creation did not finish in time", 0));
  }
  cluster::KeyspaceDef created;
  auto changed = co_await ChangeTopology(
      [&](const internode::TopologyState& current)
          -> Result<std::optional<internode::TopologyState>> {
        auto def = cluster::PlanCreate(cluster::KeyspacesOf(current), {}, spec, if_not_exists,
                                       now_ms, version);
        if (!def.ok()) return def.status();
        created = *def;
        for (const cluster::KeyspaceDef& existing : cluster::KeyspacesOf(current)) {
          if (existing.name == def->name && !existing.dropped)
            return std::optional<internode::TopologyState>();  // IF NOT EXISTS
        }
        return std::optional(cluster::WithKeyspace(current, *def));
      },
      base::Clock::now() + kKeyspaceChangeTime);
  if (!changed.ok()) co_return changed.status();
  co_return created;
}

Result<std::vector<cluster::KeyspaceDef>> ClusterCoordinator::ListKeyspaces() const {
  return schema_->List();
}

bool ClusterCoordinator::IsLinearizable(const std::string& name) const {
  auto ks = ResolveKeyspace(name);
  return ks.ok() && (*ks)->linearizable;
}

Result<cluster::KeyspaceDef> ClusterCoordinator::DescribeKeyspace(std::string_view name) const {
  auto def = schema_->Find(name);
  if (!def) return Status::NotFound(fmt::format("keyspace '{}' does not exist", name));
  return *def;
}

asio::awaitable<Status> ClusterCoordinator::DropKeyspace(std::string name, bool if_exists) {
  const Version version{clock_->Now(), identity_.node_id};
  if (store_ == nullptr) {
    co_return co_await base::AwaitCallback<Status>(
        [&](auto done) {
          asio::post(blocking_, [this, &name, if_exists, version, done] {
            done(schema_->Drop(name, if_exists, version));
          });
        },
        Status::Timeout("keyspace drop did not finish in time", 0));
  }
  auto changed = co_await ChangeTopology(
      [&](const internode::TopologyState& current)
          -> Result<std::optional<internode::TopologyState>> {
        auto dropped = cluster::PlanDrop(cluster::KeyspacesOf(current), name, if_exists, version);
        if (!dropped.ok()) return dropped.status();
        if (!dropped->has_value()) return std::optional<internode::TopologyState>();
        // Its split counters go with it: its data can never be read again.
        return std::optional(
            cluster::WithoutSplitsOf(cluster::WithKeyspace(current, **dropped), name));
      },
      base::Clock::now() + kKeyspaceChangeTime);
  // Its keys are gone: tracking clients drop what they cached (they track names, not keyspaces).
  if (changed.ok()) co_await InvalidateAll();
  co_return changed.status();
}

asio::awaitable<void> ClusterCoordinator::InvalidateAll() {
  if (!invalidations_.active()) co_return;
  auto here = co_await asio::this_coro::executor;
  invalidations_.Flush(here);
}

asio::awaitable<Result<cluster::KeyspaceDef>> ClusterCoordinator::AlterKeyspace(
    std::string name, cluster::KeyspaceChange change) {
  const Version version{clock_->Now(), identity_.node_id};
  if (store_ == nullptr) {
    co_return co_await base::AwaitCallback<Result<cluster::KeyspaceDef>>(
        [&](auto done) {
          asio::post(blocking_, [this, &name, &change, version, done] {
            done(schema_->Alter(name, change, version));
          });
        },
        Status::Timeout("keyspace change did not finish in time", 0));
  }
  cluster::KeyspaceDef altered;
  auto changed = co_await ChangeTopology(
      [&](const internode::TopologyState& current)
          -> Result<std::optional<internode::TopologyState>> {
        auto def = cluster::PlanAlter(cluster::KeyspacesOf(current), name, change, version);
        if (!def.ok()) return def.status();
        altered = *def;
        return std::optional(cluster::WithKeyspace(current, *def));
      },
      base::Clock::now() + kKeyspaceChangeTime);
  if (!changed.ok()) co_return changed.status();
  co_return altered;
}

ClusterInfo ClusterCoordinator::Cluster() const {
  ClusterInfo info;
  info.partitions = identity_.partitions();
  auto topology = view_->topology();
  info.formed = topology != nullptr;
  if (info.formed) {
    info.map_fingerprint = topology->map.Fingerprint();
    info.epoch = topology->epoch;
    if (topology->state && topology->state->has_transition()) {
      info.change = cluster::Describe(*topology->state);
    }
  } else {
    info.note = view_->NotFormedReason();
  }
  return info;
}

std::vector<std::pair<std::string, uint64_t>> ClusterCoordinator::Metrics() const {
  const PaxosCounters& c = paxos_counters_;
  auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  auto sum = [](const base::metrics::ShardedCounter& a) { return a.value(); };
  const Invalidations::Counters t = invalidations_.counters();
  return {{"paxos.cas", get(c.cas)},
          {"paxos.serial_reads", get(c.serial_reads)},
          {"paxos.linearizable_writes", get(c.plain_writes)},
          {"paxos.prepare_round_trips", get(c.prepares)},
          {"paxos.propose_round_trips", get(c.proposes)},
          {"paxos.commit_round_trips", get(c.commits)},
          {"paxos.contended_retries", get(c.contended)},
          {"paxos.completed_others", get(c.unfinished)},
          {"paxos.timeouts", get(c.timeouts)},
          {"paxos.leased_proposals", get(c.leased)},
          {"paxos.leases_lost", get(c.lease_lost)},
          {"replica.writes", sum(replica_counters_.writes)},
          {"replica.write_failures", sum(replica_counters_.write_failures)},
          {"replica.reads", sum(replica_counters_.reads)},
          {"replica.local_reads", sum(replica_counters_.local_reads)},
          {"replica.remote_reads", sum(replica_counters_.remote_reads)},
          {"replica.read_repairs", sum(replica_counters_.read_repairs)},
          {"replica.speculative_reads", sum(replica_counters_.speculative)},
          {"hints.stored", sum(replica_counters_.hints_stored)},
          {"replica.replans", sum(replica_counters_.replans)},
          {"split_counters.increments", get(split_counters_.increments)},
          {"split_counters.redirected", get(split_counters_.redirected)},
          {"split_counters.reads", get(split_counters_.reads)},
          {"split_counters.auto", get(split_counters_.automatic)},
          {"tracking.messages_sent", t.messages_sent},
          {"tracking.keys_sent", t.keys_sent},
          {"tracking.messages_failed", t.messages_failed},
          {"tracking.flushes_sent", t.flushes_sent},
          {"tracking.messages_received", t.messages_received},
          {"tracking.keys_received", t.keys_received},
          {"tracking.announcements", t.announcements}};
}

NodeInfo ClusterCoordinator::Info() const { return NodeInfo{identity_.node_id, CAIRN_VERSION}; }

PartitionLayout ClusterCoordinator::Partitions() const {
  PartitionLayout out;
  out.partitions = identity_.partitions();
  auto topology = view_->topology();
  if (!topology) {
    out.note = view_->NotFormedReason();
    return out;
  }
  out.formed = true;
  out.epoch = topology->epoch;
  const cluster::PartitionMap& map = topology->map;
  for (const cluster::Member& m : map.members()) {
    out.members.push_back({m.node_id, m.address, m.dc, m.rack});
  }
  const std::vector<cluster::KeyspaceDef> keyspaces = schema_->List();
  for (const std::string& dc : map.dcs()) {
    PartitionLayout::DataCentre d;
    d.name = dc;
    for (const auto& ks : keyspaces) d.replication = std::max(d.replication, ks.ReplicationIn(dc));
    auto first = [&d](const cluster::PartitionMap& m, uint32_t p, const std::string& dc) {
      auto preference = m.Preference(p, dc);
      return std::vector<uint32_t>(
          preference.begin(),
          preference.begin() + std::min<size_t>(d.replication, preference.size()));
    };
    d.replicas.reserve(map.partitions());
    for (uint32_t p = 0; p < map.partitions(); ++p) d.replicas.push_back(first(map, p, dc));
    if (topology->base && topology->target) {
      for (uint32_t p = 0; p < map.partitions(); ++p) {
        // Moving: the set of replicas changes (a new order alone moves no data).
        std::vector<uint32_t> to = first(*topology->target, p, dc);
        std::vector<uint32_t> to_set = to, from_set = first(*topology->base, p, dc);
        std::sort(to_set.begin(), to_set.end());
        std::sort(from_set.begin(), from_set.end());
        if (to_set != from_set) d.moving.emplace(p, std::move(to));
      }
    }
    out.dcs.push_back(std::move(d));
  }
  if (topology->state && topology->state->has_transition()) {
    out.change = topology->state->transition().description();
    out.stage = cluster::StageName(topology->state->transition().stage());
  }
  return out;
}

Result<std::vector<NodeReport>> ClusterCoordinator::ClusterStatus() const {
  auto topology = Topology();
  std::vector<NodeReport> out;
  for (const cluster::NodeStatus& n : view_->Nodes()) {
    NodeReport report;
    report.status = n;
    if (topology.ok() && n.node_id != 0) {
      // The partitions it stores: for the largest replication factor of any keyspace in its DC.
      uint32_t rf = 0;
      for (const auto& ks : schema_->List()) rf = std::max(rf, ks.ReplicationIn(n.dc));
      report.partitions = (*topology)->map.ReplicaCount(n.node_id, rf);
    }
    if (n.self && hints_ != nullptr) report.status.hints_pending = hints_->TotalPending();
    out.push_back(std::move(report));
  }
  return out;
}
asio::awaitable<Result<ClusterInfo>> ClusterCoordinator::NodeOperation(NodeOp op,
                                                                       uint32_t node_id) {
  if (op == NodeOp::kJoin || op == NodeOp::kReplace) {
    if (!join_command_) {
      co_return Status::FailedPrecondition("this node cannot be told to join a cluster");
    }
    auto joined = co_await join_command_(op == NodeOp::kReplace ? node_id : 0);
    if (!joined.ok()) co_return joined.status();
    ClusterInfo info = Cluster();
    info.epoch = joined->epoch();
    info.change = cluster::Describe(*joined);
    co_return info;
  }
  if (store_ == nullptr) co_return Status::FailedPrecondition("this node keeps no topology log");
  const uint64_t now_ms = wall_->NowMillis();
  auto changed = co_await ChangeTopology(
      [&](const internode::TopologyState& s) -> Result<std::optional<internode::TopologyState>> {
        Result<internode::TopologyState> next = Status::Internal("unknown node operation");
        switch (op) {
          case NodeOp::kDecommission:
          case NodeOp::kRemove: {
            const bool dead = op == NodeOp::kRemove;
            // Asked again (the answer was lost): the change is already under way.
            if (s.has_transition()) {
              const internode::TopologyMember* m = cluster::FindMember(s, node_id);
              if (m != nullptr && m->state() == internode::LEAVING && m->dead() == dead) {
                return std::optional<internode::TopologyState>();
              }
            }
            // What the state says first (a member, NORMAL, replication kept), then whether
            // this node's failure detector agrees the node is alive, or dead.
            next = cluster::StartLeave(s, node_id, dead, now_ms);
            if (next.ok() && !dead && !view_->IsUp(node_id)) {
              return Status::FailedPrecondition(fmt::format(
                  "node {} is DOWN: a decommissioned node streams its own data away; remove a "
                  "dead node instead (cairn node remove {})",
                  node_id, node_id));
            }
            if (next.ok() && dead && view_->IsUp(node_id)) {
              return Status::FailedPrecondition(fmt::format(
                  "node {} is UP: only a dead node is removed; decommission a live one (cairn "
                  "node decommission {})",
                  node_id, node_id));
            }
            break;
          }
          case NodeOp::kCancel:
            if (!s.has_transition()) {
              return Status::FailedPrecondition("no topology change is in progress");
            }
            if (s.transition().stage() == internode::ROLLBACK) {
              return std::optional<internode::TopologyState>();
            }
            next = cluster::Advance(s, internode::WRITE_BOTH_READ_OLD, internode::ROLLBACK, now_ms);
            break;
          case NodeOp::kJoin:
          case NodeOp::kReplace:
            break;  // the joining node's own (above)
        }
        if (!next.ok()) return next.status();
        return std::optional<internode::TopologyState>(std::move(*next));
      },
      base::Clock::now() + kKeyspaceChangeTime);
  if (!changed.ok()) co_return changed.status();
  co_return Cluster();
}

asio::awaitable<Result<CompactReport>> ClusterCoordinator::Compact() {
  auto compacted = co_await local_->Compact();
  if (!compacted.ok()) co_return compacted.status();
  co_return CompactReport{compacted->bytes_before, compacted->bytes_after, compacted->took};
}

}  // namespace cairn::coordinator
