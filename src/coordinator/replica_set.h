// Internal to the coordinator: the replicas of a key, what a consistency level requires of them,
// and the round that counts a write's acknowledgements. Shared by the coordinator's files
// (write.cc, read.cc, scan.cc, paxos.cc); nothing outside src/coordinator includes it.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/steady_timer.hpp>

#include "cluster/topology.h"
#include "coordinator/cluster_coordinator.h"

namespace cairn::coordinator {

// ------------------------------------------------------------------------------------------------
// Replica sets and what a consistency level requires of them.

// The replicas of one key in one keyspace, each with its data centre.
struct ClusterCoordinator::ReplicaSet {
  std::vector<uint32_t> nodes;   // DCs in name order, each DC's nodes in preference order
  std::vector<uint16_t> dc_of;   // per node: index into dcs
  std::vector<std::string> dcs;  // data centres that hold replicas
  int local_dc = -1;             // index of this node's DC in dcs, or -1

  int IndexOf(uint32_t node) const {
    auto it = std::find(nodes.begin(), nodes.end(), node);
    return it == nodes.end() ? -1 : static_cast<int>(it - nodes.begin());
  }
  uint16_t DcOf(uint32_t node) const {
    const int i = IndexOf(node);
    return i < 0 ? 0 : dc_of[static_cast<size_t>(i)];
  }
  uint32_t CountIn(size_t dc) const {
    return static_cast<uint32_t>(std::count(dc_of.begin(), dc_of.end(), static_cast<uint16_t>(dc)));
  }

  static ReplicaSet Of(const cluster::Topology& topology, const cluster::KeyspaceDef& ks,
                       uint32_t partition) {
    ReplicaSet set;
    // The placement rule the token-aware client library applies too (PartitionMap::ReplicasIn).
    for (const std::string& dc : topology.map.dcs()) {
      const auto list = topology.map.ReplicasIn(partition, dc, ks.replication);
      if (list.empty()) continue;
      const auto index = static_cast<uint16_t>(set.dcs.size());
      if (dc == topology.local_dc) set.local_dc = index;
      set.dcs.push_back(dc);
      for (uint32_t node : list) {
        set.nodes.push_back(node);
        set.dc_of.push_back(index);
      }
    }
    return set;
  }
};

// How many acknowledgements a level needs from a replica set: in all, and per data centre.
struct ClusterCoordinator::Requirement {
  uint32_t total = 0;
  std::vector<uint32_t> per_dc;
  bool hints_count = false;  // ANY: a stored hint counts

  bool Met(uint32_t acks, const std::vector<uint32_t>& acks_dc) const {
    if (acks < total) return false;
    for (size_t d = 0; d < per_dc.size(); ++d) {
      if (acks_dc[d] < per_dc[d]) return false;
    }
    return true;
  }
  uint32_t Needed() const {
    uint32_t n = total;
    uint32_t sum = 0;
    for (uint32_t x : per_dc) sum += x;
    return std::max(n, sum);
  }

  static Result<Requirement> For(Consistency level, const ReplicaSet& set, bool write) {
    Requirement r;
    r.per_dc.assign(set.dcs.size(), 0);
    const auto n = static_cast<uint32_t>(set.nodes.size());
    if (n == 0) return Status::Unavailable("the keyspace has no replicas in this cluster");
    auto need_total = [&](uint32_t k) -> cairn::Status {
      if (k > n) {
        return Status::Unavailable(
            fmt::format("{} needs {} replicas; the keyspace has {} for this key",
                        ConsistencyName(level), k, n));
      }
      r.total = k;
      return Status::Ok();
    };
    auto need_local = [&](bool quorum) -> cairn::Status {
      if (set.local_dc < 0) {
        return Status::Unavailable(fmt::format(
            "{}: the keyspace has no replicas in this node's data centre", ConsistencyName(level)));
      }
      const uint32_t local = set.CountIn(static_cast<size_t>(set.local_dc));
      r.per_dc[static_cast<size_t>(set.local_dc)] = quorum ? local / 2 + 1 : 1;
      return Status::Ok();
    };
    cairn::Status s;
    switch (level) {
      case Consistency::kOne:
        s = need_total(1);
        break;
      case Consistency::kTwo:
        s = need_total(2);
        break;
      case Consistency::kThree:
        s = need_total(3);
        break;
      case Consistency::kDefault:  // resolved by the caller; QUORUM if not
      case Consistency::kQuorum:
      case Consistency::kSerial:
        s = need_total(n / 2 + 1);
        break;
      case Consistency::kAll:
        s = need_total(n);
        break;
      case Consistency::kLocalOne:
        s = need_local(false);
        break;
      case Consistency::kLocalQuorum:
      case Consistency::kLocalSerial:
        s = need_local(true);
        break;
      case Consistency::kEachQuorum:
        for (size_t d = 0; d < set.dcs.size(); ++d) r.per_dc[d] = set.CountIn(d) / 2 + 1;
        break;
      case Consistency::kAny:
        if (!write) return Status::InvalidArgument("ANY is a write consistency level");
        r.total = 1;
        r.hints_count = true;
        break;
    }
    if (!s.ok()) return s;
    return r;
  }
};

// Why a level cannot be tried with the replicas that are UP, or OK.
struct ClusterCoordinator::ReadPlan {
  ReplicaSet set;
  Requirement req;
  std::vector<uint32_t> ask;    // asked at once
  std::vector<uint32_t> spare;  // asked when one of `ask` fails or is slow
};

inline cairn::Status CheckLive(const ClusterCoordinator::ReplicaSet& set,
                               const ClusterCoordinator::Requirement& req,
                               const cluster::ClusterView& view, Consistency level) {
  if (req.hints_count) return Status::Ok();  // ANY: a hint will do
  uint32_t live = 0;
  std::vector<uint32_t> live_dc(set.dcs.size(), 0);
  for (size_t i = 0; i < set.nodes.size(); ++i) {
    if (view.IsUp(set.nodes[i])) {
      ++live;
      ++live_dc[set.dc_of[i]];
    }
  }
  if (req.Met(live, live_dc)) return Status::Ok();
  return Status::Unavailable(fmt::format(
      "{} needs {} of {} replicas, and {} {} up; nothing was written", ConsistencyName(level),
      req.Needed(), set.nodes.size(), live, live == 1 ? "is" : "are"));
}

// ------------------------------------------------------------------------------------------------
// Consistency levels.

inline bool IsBlockingRead(Consistency level) {
  switch (level) {
    case Consistency::kQuorum:
    case Consistency::kAll:
    case Consistency::kLocalQuorum:
    case Consistency::kEachQuorum:
    case Consistency::kSerial:
    case Consistency::kLocalSerial:
      return true;
    default:
      return false;
  }
}

// Whether a read at `level` goes through Paxos: SERIAL levels always, and in a linearizable
// keyspace every level that waits for a quorum.
inline bool IsSerial(Consistency level, const cluster::KeyspaceDef& ks) {
  if (level == Consistency::kSerial || level == Consistency::kLocalSerial) return true;
  return ks.linearizable && IsBlockingRead(level);
}

inline Consistency SerialLevelOf(Consistency level) {
  return level == Consistency::kLocalSerial || level == Consistency::kLocalQuorum
             ? Consistency::kLocalSerial
             : Consistency::kSerial;
}

// ------------------------------------------------------------------------------------------------
// Write rounds.

struct ClusterCoordinator::WriteTarget {
  storage::WriteOp op;
  ReplicaSet set;
  Requirement req;
};

// The acknowledgements of one replicated write (of one or more keys) as they come in.
// Lives on one reactor; shared by the tasks that talk to each replica.
class ClusterCoordinator::WriteRound {
 public:
  struct Item {
    const ReplicaSet* set;
    Requirement req;
    uint32_t acks = 0;
    std::vector<uint32_t> acks_dc;
    bool met = false;
  };

  WriteRound(asio::any_io_executor ex, std::vector<WriteTarget> targets)
      : targets_(std::move(targets)), wake_(std::move(ex)) {
    for (const WriteTarget& t : targets_) {
      items_.push_back(Item{&t.set, t.req, 0, std::vector<uint32_t>(t.set.dcs.size(), 0), false});
    }
  }

  const std::vector<WriteTarget>& targets() const { return targets_; }
  asio::any_io_executor executor() { return wake_.get_executor(); }

  void Ack(size_t i, uint32_t node) {
    Item& item = items_[i];
    ++item.acks;
    ++item.acks_dc[item.set->DcOf(node)];
    Check(i);
  }
  void Hinted(size_t i) {
    Item& item = items_[i];
    if (!item.req.hints_count) return;
    ++item.acks;  // ANY counts hints in its total, never per DC
    Check(i);
  }
  void StartNode() { ++outstanding_; }
  void NodeDone() {
    if (--outstanding_ == 0) wake_.cancel();
  }

  // Waits until every item's requirement is met, every replica has answered, or the deadline.
  asio::awaitable<void> Wait(base::Deadline deadline) {
    if (met_ == items_.size() || outstanding_ == 0) co_return;
    wake_.expires_at(deadline);
    co_await wake_.async_wait(base::kNoThrow);
  }

  cairn::Status ResultOf(size_t i) const {
    const Item& item = items_[i];
    if (item.met) return Status::Ok();
    return Status::Timeout(
        fmt::format("{} of {} replicas acknowledged before the deadline; the write may have been "
                    "applied",
                    item.acks, item.req.Needed()),
        item.acks);
  }

 private:
  void Check(size_t i) {
    Item& item = items_[i];
    if (!item.met && item.req.Met(item.acks, item.acks_dc)) {
      item.met = true;
      if (++met_ == items_.size()) wake_.cancel();
    }
  }

  const std::vector<WriteTarget> targets_;
  std::vector<Item> items_;
  size_t met_ = 0;
  size_t outstanding_ = 0;
  asio::steady_timer wake_;
};

}  // namespace cairn::coordinator
