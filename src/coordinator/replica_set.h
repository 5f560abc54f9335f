// Internal to the coordinator: the replicas of a key, what a consistency level requires of them,
// and the round that counts a write's acknowledgements. Shared by the coordinator's files
// (write.cc, read.cc, scan.cc, paxos.cc); nothing outside src/coordinator includes it.
#pragma once

#include <algorithm>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/steady_timer.hpp>
#include <boost/container/small_vector.hpp>

#include "cluster/topology.h"
#include "coordinator/cluster_coordinator.h"

namespace cairn::coordinator {

// ------------------------------------------------------------------------------------------------
// Replica sets and what a consistency level requires of them.

// The replicas of one key in one keyspace, each with its data centre. Usually one group: the
// replicas of the topology's map. While a topology change writes to both maps, a write's set
// has two groups, the replicas of each map (a node in both is in both), and the level's
// requirement must be met in each (ARCHITECTURE.md section 6: {A,B,C} -> {A,B,D} at QUORUM is
// met by A and B).
struct ClusterCoordinator::ReplicaSet {
  NodeList nodes;  // DCs in name order, each DC's nodes in preference order
  boost::container::small_vector<uint16_t, 8> dc_of;   // per node: index into dcs
  boost::container::small_vector<uint8_t, 8> groups;   // per node: bit g set when in group g
  boost::container::small_vector<std::string, 2> dcs;  // data centres that hold replicas
  int local_dc = -1;                                   // index of this node's DC in dcs, or -1
  uint8_t group_count = 1;
  // The topology epoch the set was planned with: every request sent to its replicas carries it,
  // and a replica whose fence is newer refuses the request (InternodeService::CheckFence).
  uint64_t epoch = 0;

  int IndexOf(uint32_t node) const {
    auto it = std::find(nodes.begin(), nodes.end(), node);
    return it == nodes.end() ? -1 : static_cast<int>(it - nodes.begin());
  }
  uint16_t DcOf(uint32_t node) const {
    const int i = IndexOf(node);
    return i < 0 ? 0 : dc_of[static_cast<size_t>(i)];
  }
  uint8_t GroupsOf(uint32_t node) const {
    const int i = IndexOf(node);
    return i < 0 ? 0 : groups[static_cast<size_t>(i)];
  }
  // Nodes of group `g` in data centre `dc`.
  uint32_t CountIn(size_t dc, uint8_t g = 0) const {
    uint32_t n = 0;
    for (size_t i = 0; i < nodes.size(); ++i) {
      n += dc_of[i] == dc && (groups[i] >> g & 1) ? 1 : 0;
    }
    return n;
  }
  uint32_t SizeOf(uint8_t g) const {
    uint32_t n = 0;
    for (uint8_t m : groups) n += (m >> g & 1) ? 1 : 0;
    return n;
  }
  // The members of group `g`.
  std::vector<uint32_t> Group(uint8_t g) const {
    std::vector<uint32_t> out;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (groups[i] >> g & 1) out.push_back(nodes[i]);
    }
    return out;
  }

  // Adds the replicas `map` gives the key, as group `g`.
  void AddGroup(const cluster::PartitionMap& map, const cluster::Topology& topology,
                const cluster::KeyspaceDef& ks, uint32_t partition, uint8_t g) {
    // The placement rule the token-aware client library applies too (PartitionMap::ReplicasIn).
    for (const std::string& dc : map.dcs()) {
      const auto list = map.ReplicasIn(partition, dc, ks.replication);
      if (list.empty()) continue;
      auto known = std::find(dcs.begin(), dcs.end(), dc);
      const auto index = static_cast<uint16_t>(known - dcs.begin());
      if (known == dcs.end()) {
        if (dc == topology.local_dc) local_dc = index;
        dcs.push_back(dc);
      }
      for (uint32_t node : list) {
        const int i = IndexOf(node);
        if (i >= 0) {
          groups[static_cast<size_t>(i)] |= static_cast<uint8_t>(1u << g);
          continue;
        }
        nodes.push_back(node);
        dc_of.push_back(index);
        groups.push_back(static_cast<uint8_t>(1u << g));
      }
    }
  }

  // The replicas reads ask: those of the topology's map.
  static ReplicaSet Of(const cluster::Topology& topology, const cluster::KeyspaceDef& ks,
                       uint32_t partition) {
    ReplicaSet set;
    set.epoch = topology.epoch;
    set.AddGroup(topology.map, topology, ks, partition, 0);
    return set;
  }
  // The replicas writes go to: those of the map, and during a change's write-both stages those
  // of the other map too, as a second group.
  static ReplicaSet ForWrite(const cluster::Topology& topology, const cluster::KeyspaceDef& ks,
                             uint32_t partition) {
    ReplicaSet set = Of(topology, ks, partition);
    if (topology.also_write) {
      set.AddGroup(*topology.also_write, topology, ks, partition, 1);
      set.group_count = 2;
    }
    return set;
  }
};

// How many acknowledgements a level needs from a replica set: in all, and per data centre, in
// each group of the set.
struct ClusterCoordinator::Requirement {
  struct Need {
    uint32_t total = 0;
    boost::container::small_vector<uint32_t, 4> per_dc;
  };
  boost::container::small_vector<Need, 2> groups;  // one per group of the set
  bool hints_count = false;                        // ANY: a stored hint counts

  // Whether the nodes in `acked` (hints: how many hints were stored) meet every group's need.
  bool Met(const ReplicaSet& set, std::span<const uint32_t> acked, uint32_t hints = 0) const {
    if (hints_count) return acked.size() + hints >= 1;
    for (size_t g = 0; g < groups.size(); ++g) {
      const Need& need = groups[g];
      if (acked.size() < need.total) return false;
      uint32_t total = 0;
      boost::container::small_vector<uint32_t, 8> per_dc(set.dcs.size(), 0);
      for (uint32_t node : acked) {
        const int i = set.IndexOf(node);
        if (i < 0 || !(set.groups[static_cast<size_t>(i)] >> g & 1)) continue;
        ++total;
        ++per_dc[set.dc_of[static_cast<size_t>(i)]];
      }
      if (total < need.total) return false;
      for (size_t d = 0; d < need.per_dc.size(); ++d) {
        if (per_dc[d] < need.per_dc[d]) return false;
      }
    }
    return true;
  }
  // Acknowledgements needed, for messages: the most any group needs.
  uint32_t Needed() const {
    uint32_t most = 0;
    for (const Need& need : groups) {
      uint32_t sum = 0;
      for (uint32_t x : need.per_dc) sum += x;
      most = std::max({most, need.total, sum});
    }
    return most;
  }
  // The need of group 0 (reads have one group).
  const Need& first() const { return groups.front(); }

  static Result<Requirement> For(Consistency level, const ReplicaSet& set, bool write) {
    Requirement r;
    if (Status s = Fill(level, set, write, &r); !s.ok()) return s;
    return r;
  }
  // For() into `*out` (empty), which the hot paths use: a requirement holds its needs inline,
  // so returning one by value copies them (twice, through Result).
  static cairn::Status Fill(Consistency level, const ReplicaSet& set, bool write,
                            Requirement* out) {
    for (uint8_t g = 0; g < set.group_count; ++g) {
      Need& need = out->groups.emplace_back();
      if (Status s = NeedOf(level, set, g, write, &out->hints_count, &need); !s.ok()) return s;
    }
    return Status::Ok();
  }

 private:
  static cairn::Status NeedOf(Consistency level, const ReplicaSet& set, uint8_t g, bool write,
                              bool* hints_count, Need* out) {
    Need& r = *out;
    r.per_dc.assign(set.dcs.size(), 0);
    const uint32_t n = set.SizeOf(g);
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
      const uint32_t local =
          set.local_dc < 0 ? 0 : set.CountIn(static_cast<size_t>(set.local_dc), g);
      if (local == 0) {
        return Status::Unavailable(fmt::format(
            "{}: the keyspace has no replicas in this node's data centre", ConsistencyName(level)));
      }
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
        for (size_t d = 0; d < set.dcs.size(); ++d) {
          const uint32_t in_dc = set.CountIn(d, g);
          r.per_dc[d] = in_dc == 0 ? 0 : in_dc / 2 + 1;
        }
        break;
      case Consistency::kAny:
        if (!write) return Status::InvalidArgument("ANY is a write consistency level");
        r.total = 1;
        *hints_count = true;
        break;
    }
    return s;
  }
};

// What makes a Paxos quorum: a majority of each group of the replica set's Paxos members (one
// group; while a partition moves, its old and its new replicas). Any two such quorums intersect
// in every group, so a value chosen before, during or after the move is seen by the next
// prepare (streaming carries the old replicas' acceptor state to the new ones).
struct ClusterCoordinator::Quorum {
  std::vector<std::vector<uint32_t>> groups;  // every member of each group, live or not

  bool Reached(const std::vector<uint32_t>& nodes) const {
    for (const auto& group : groups) {
      size_t in = 0;
      for (uint32_t node : group) in += std::count(nodes.begin(), nodes.end(), node) > 0 ? 1 : 0;
      if (in < group.size() / 2 + 1) return false;
    }
    return !groups.empty();
  }
  // Whether the nodes not in `refused` may still make a quorum.
  bool Possible(const std::vector<uint32_t>& refused) const {
    for (const auto& group : groups) {
      size_t left = 0;
      for (uint32_t node : group) left += std::count(refused.begin(), refused.end(), node) ? 0 : 1;
      if (left < group.size() / 2 + 1) return false;
    }
    return true;
  }
  // How many nodes a quorum needs at least (for messages).
  size_t Size() const {
    size_t most = 0;
    for (const auto& group : groups) most = std::max(most, group.size() / 2 + 1);
    return most;
  }
};

// Why a level cannot be tried with the replicas that are UP, or OK.
struct ClusterCoordinator::ReadPlan {
  ReplicaSet set;
  Requirement req;
  NodeList ask;    // asked at once
  NodeList spare;  // asked when one of `ask` fails or is slow
};

inline cairn::Status CheckLive(const ClusterCoordinator::ReplicaSet& set,
                               const ClusterCoordinator::Requirement& req,
                               const cluster::ClusterView& view, Consistency level) {
  if (req.hints_count) return Status::Ok();  // ANY: a hint will do
  ClusterCoordinator::NodeList live;
  for (uint32_t node : set.nodes) {
    if (view.IsUp(node)) live.push_back(node);
  }
  if (req.Met(set, {live.data(), live.size()})) return Status::Ok();
  return Status::Unavailable(fmt::format(
      "{} needs {} of {} replicas{}, and {} {} up; nothing was written", ConsistencyName(level),
      req.Needed(), set.nodes.size(),
      set.group_count > 1 ? " (in the old and the new replica sets of a moving partition)" : "",
      live.size(), live.size() == 1 ? "is" : "are"));
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
  // What the set was planned from, so that it can be planned again from a newer topology when
  // replicas refuse this one (null: never, as for a repair of named replicas).
  std::shared_ptr<const cluster::KeyspaceDef> ks;
  Consistency level = Consistency::kQuorum;
};

// The acknowledgements of one replicated write (of one or more keys) as they come in.
// Lives on one reactor; shared by the tasks that talk to each replica.
class ClusterCoordinator::WriteRound {
 public:
  struct Item {
    const ReplicaSet* set;   // the target's: targets_ never changes once the round is made
    const Requirement* req;  // likewise
    NodeList acked;          // nodes that acknowledged
    uint32_t hints = 0;      // hints stored (they count for ANY only)
    bool met = false;
    bool refused = false;  // a replica's fence refused the topology it was planned with
  };

  WriteRound(asio::any_io_executor ex, std::vector<WriteTarget> targets)
      : targets_(std::move(targets)), wake_(std::move(ex)) {
    items_.reserve(targets_.size());
    for (const WriteTarget& t : targets_)
      items_.push_back(Item{&t.set, &t.req, {}, 0, false, false});
  }

  const std::vector<WriteTarget>& targets() const { return targets_; }
  asio::any_io_executor executor() { return wake_.get_executor(); }

  void Ack(size_t i, uint32_t node) {
    items_[i].acked.push_back(node);
    Check(i);
  }
  void Refused(size_t i) { items_[i].refused = true; }
  bool refused(size_t i) const { return items_[i].refused && !items_[i].met; }
  void Hinted(size_t i) {
    ++items_[i].hints;
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
    const auto acks = static_cast<uint32_t>(item.acked.size());
    return Status::Timeout(
        fmt::format("{} of {} replicas acknowledged before the deadline; the write may have been "
                    "applied",
                    acks, item.req->Needed()),
        acks);
  }

 private:
  void Check(size_t i) {
    Item& item = items_[i];
    if (!item.met && item.req->Met(*item.set, {item.acked.data(), item.acked.size()}, item.hints)) {
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
