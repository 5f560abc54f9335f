#include "cluster/placement.h"

#include <algorithm>
#include <limits>
#include <set>
#include <string>

#include "base/endian.h"
#include "base/hash.h"

namespace cairn::cluster {
namespace {

// The rendezvous weight of a node for a partition: a partition prefers the nodes with the higher
// weights. Only 32 bits, so that sums of weight differences along a path cannot overflow.
uint32_t Weight(uint32_t partition, uint32_t node_id) {
  std::string bytes;
  bytes.reserve(8);
  base::PutBig32(&bytes, partition);
  base::PutBig32(&bytes, node_id);
  return static_cast<uint32_t>(base::Hash64(bytes) >> 32);
}

// Builds the preference lists of one data centre.
//
// The lists are filled one position at a time, for all partitions together. At position j each
// partition may take any node not yet in its list whose rack has the fewest nodes in the list so
// far (among racks with nodes left): that is the rack spread rule. Each partition first takes the
// allowed node of highest weight, which alone would give the rendezvous order. Then a balancing
// pass evens out the cumulative counts (how many partitions have each node among their first j+1):
// while some node is at least two above another, it moves one partition along the cheapest chain
// of moves from the overloaded node to the underloaded one (partition p1 from u to v1, p2 from v1
// to v2, ..., the cost of a move being the weight the partition gives up; Bellman-Ford over the
// DC's nodes finds the chain). It ends when no chain lowers the sum of squared counts, which is the
// best balance the rack rule permits at that position. Each chain is the cheapest at the time it is
// taken, so balancing mostly moves partitions whose top two weights are close; those are the same
// partitions whatever the other nodes are, which keeps the map stable when membership changes.
class DcPlanner {
 public:
  DcPlanner(const std::vector<uint32_t>& node_ids, const std::vector<uint32_t>& node_racks,
            uint32_t racks, uint32_t partitions)
      : n_(static_cast<uint32_t>(node_ids.size())),
        racks_(racks),
        q_(partitions),
        rack_of_(node_racks),
        weight_(size_t{q_} * n_),
        lists_(size_t{q_} * n_),
        used_(size_t{q_} * n_, 0),
        allowed_(size_t{q_} * n_, 0),
        rack_taken_(size_t{q_} * racks_, 0),
        rack_left_(size_t{q_} * racks_, 0),
        where_(q_),
        count_(n_, 0) {
    std::vector<uint32_t> rack_size(racks_, 0);
    for (uint32_t v = 0; v < n_; ++v) ++rack_size[rack_of_[v]];
    for (uint32_t p = 0; p < q_; ++p) {
      for (uint32_t v = 0; v < n_; ++v) weight_[Idx(p, v)] = Weight(p, node_ids[v]);
      std::copy(rack_size.begin(), rack_size.end(), rack_left_.begin() + size_t{p} * racks_);
    }
  }

  // Returns the lists as node indexes (into node_ids), partition after partition.
  std::vector<uint32_t> Run() {
    for (uint32_t j = 0; j < n_; ++j) {
      FillGreedy();
      // The last position has one candidate per partition: nothing to balance.
      if (j < kBalancedPrefix && j + 1 < n_) Balance();
      for (uint32_t p = 0; p < q_; ++p) {
        const uint32_t v = where_[p];
        lists_[Idx(p, j)] = v;
        used_[Idx(p, v)] = 1;
        ++rack_taken_[size_t{p} * racks_ + rack_of_[v]];
        --rack_left_[size_t{p} * racks_ + rack_of_[v]];
      }
    }
    return std::move(lists_);
  }

 private:
  // A candidate move of `partition` from the node of its heap to another, giving up `cost` weight.
  struct Move {
    int64_t cost;
    uint32_t partition;
    // std::*_heap keep the largest on top; we want the cheapest, then the lowest partition.
    bool operator<(const Move& o) const {
      return cost != o.cost ? cost > o.cost : partition > o.partition;
    }
  };
  static constexpr int64_t kNoEdge = std::numeric_limits<int64_t>::max();

  size_t Idx(uint32_t p, uint32_t v) const { return size_t{p} * n_ + v; }

  // Marks the nodes each partition may take at this position and gives it the heaviest of them.
  void FillGreedy() {
    for (uint32_t p = 0; p < q_; ++p) {
      const uint32_t* taken = &rack_taken_[size_t{p} * racks_];
      const uint32_t* left = &rack_left_[size_t{p} * racks_];
      uint32_t fewest = std::numeric_limits<uint32_t>::max();
      for (uint32_t r = 0; r < racks_; ++r) {
        if (left[r] > 0) fewest = std::min(fewest, taken[r]);
      }
      uint32_t best = n_;
      for (uint32_t v = 0; v < n_; ++v) {
        const bool ok = !used_[Idx(p, v)] && taken[rack_of_[v]] == fewest;
        allowed_[Idx(p, v)] = ok;
        if (ok && (best == n_ || weight_[Idx(p, v)] > weight_[Idx(p, best)])) best = v;
      }
      where_[p] = best;
      ++count_[best];
    }
  }

  // Offers partition p's moves from its current node to every other node it may take.
  void PushMoves(uint32_t p) {
    const uint32_t u = where_[p];
    for (uint32_t v = 0; v < n_; ++v) {
      if (v == u || !allowed_[Idx(p, v)]) continue;
      auto& heap = moves_[size_t{u} * n_ + v];
      heap.push_back({int64_t{weight_[Idx(p, u)]} - int64_t{weight_[Idx(p, v)]}, p});
      std::push_heap(heap.begin(), heap.end());
    }
  }

  // The cheapest move from u to v, dropping moves of partitions that have left u since.
  int64_t EdgeCost(uint32_t u, uint32_t v) {
    auto& heap = moves_[size_t{u} * n_ + v];
    while (!heap.empty() && where_[heap.front().partition] != u) {
      std::pop_heap(heap.begin(), heap.end());
      heap.pop_back();
    }
    return heap.empty() ? kNoEdge : heap.front().cost;
  }

  void Balance() {
    moves_.assign(size_t{n_} * n_, {});
    for (uint32_t p = 0; p < q_; ++p) PushMoves(p);

    std::vector<int64_t> edge(size_t{n_} * n_);
    std::vector<uint32_t> order(n_);
    while (true) {
      for (uint32_t u = 0; u < n_; ++u) {
        for (uint32_t v = 0; v < n_; ++v) {
          edge[size_t{u} * n_ + v] = u == v ? kNoEdge : EdgeCost(u, v);
        }
      }
      for (uint32_t v = 0; v < n_; ++v) order[v] = v;
      std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
        return count_[a] != count_[b] ? count_[a] > count_[b] : a < b;
      });
      const uint32_t lowest = count_[order.back()];
      bool moved = false;
      for (uint32_t u : order) {
        if (count_[u] < lowest + 2) break;
        if (MoveOneFrom(u, edge)) {
          moved = true;
          break;
        }
      }
      if (!moved) return;
    }
  }

  // Moves one partition's worth of load from `u` to the least loaded node that is reachable and at
  // least two below it, by the cheapest chain of moves. False when there is no such node.
  bool MoveOneFrom(uint32_t u, const std::vector<int64_t>& edge) {
    // Bellman-Ford: the cost of undoing earlier moves is negative.
    std::vector<int64_t> dist(n_, kNoEdge);
    std::vector<uint32_t> pred(n_, n_);
    dist[u] = 0;
    for (uint32_t round = 0; round + 1 < n_; ++round) {
      bool changed = false;
      for (uint32_t a = 0; a < n_; ++a) {
        if (dist[a] == kNoEdge) continue;
        for (uint32_t b = 0; b < n_; ++b) {
          const int64_t c = edge[size_t{a} * n_ + b];
          if (c == kNoEdge || b == u || dist[a] + c >= dist[b]) continue;
          dist[b] = dist[a] + c;
          pred[b] = a;
          changed = true;
        }
      }
      if (!changed) break;
    }
    std::vector<uint32_t> targets;
    for (uint32_t w = 0; w < n_; ++w) {
      if (w != u && dist[w] != kNoEdge && count_[w] + 2 <= count_[u]) targets.push_back(w);
    }
    std::sort(targets.begin(), targets.end(), [&](uint32_t a, uint32_t b) {
      if (count_[a] != count_[b]) return count_[a] < count_[b];
      return dist[a] != dist[b] ? dist[a] < dist[b] : a < b;
    });
    for (uint32_t w : targets) {
      // Walk back to u. With a negative cycle among the distances the walk can loop: skip w then.
      std::vector<uint32_t> path{w};
      while (path.back() != u && path.size() <= n_) path.push_back(pred[path.back()]);
      if (path.back() != u) continue;
      // path is w, ..., u. Move from the w end first, so that a partition that just arrived at a
      // node is never the one moved on from it.
      for (size_t i = 0; i + 1 < path.size(); ++i) {
        const uint32_t to = path[i];
        const uint32_t from = path[i + 1];
        EdgeCost(from, to);  // drops stale moves, leaving the chosen one on top
        auto& heap = moves_[size_t{from} * n_ + to];
        const uint32_t p = heap.front().partition;
        std::pop_heap(heap.begin(), heap.end());
        heap.pop_back();
        where_[p] = to;
        --count_[from];
        ++count_[to];
        PushMoves(p);
      }
      return true;
    }
    return false;
  }

  // Constant after construction.
  const uint32_t n_;
  const uint32_t racks_;
  const uint32_t q_;
  const std::vector<uint32_t> rack_of_;  // node index -> rack index
  std::vector<uint32_t> weight_;         // [partition][node]

  std::vector<uint32_t> lists_;           // [partition][position] -> node index
  std::vector<uint8_t> used_;             // [partition][node]: already in the list
  std::vector<uint8_t> allowed_;          // [partition][node]: may take the current position
  std::vector<uint32_t> rack_taken_;      // [partition][rack]: nodes of the rack in the list
  std::vector<uint32_t> rack_left_;       // [partition][rack]: nodes of the rack not in the list
  std::vector<uint32_t> where_;           // partition -> node at the current position
  std::vector<uint32_t> count_;           // node -> partitions with it at positions <= current
  std::vector<std::vector<Move>> moves_;  // [from][to]: heap of candidate moves
};

void PutString(std::string* out, std::string_view s) {
  base::PutBig32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

}  // namespace

Result<PartitionMap> PartitionMap::Compute(std::vector<Member> members, uint32_t partition_bits) {
  if (partition_bits > kMaxPartitionBits) {
    return Status::InvalidArgument("partition bits " + std::to_string(partition_bits) +
                                   " is over " + std::to_string(kMaxPartitionBits));
  }
  if (members.empty()) return Status::InvalidArgument("partition map without members");
  std::set<uint32_t> ids, placement_ids;
  std::set<std::string_view> addresses;
  for (const Member& m : members) {
    if (m.node_id == 0) return Status::InvalidArgument("node id 0 for " + m.address);
    if (m.address.empty() || m.dc.empty() || m.rack.empty()) {
      return Status::InvalidArgument("node " + std::to_string(m.node_id) +
                                     " has an empty address, dc or rack");
    }
    if (!ids.insert(m.node_id).second) {
      return Status::InvalidArgument("duplicate node id " + std::to_string(m.node_id));
    }
    if (!addresses.insert(m.address).second) {
      return Status::InvalidArgument("duplicate address " + m.address);
    }
    if (!placement_ids.insert(m.PlacementId()).second) {
      return Status::InvalidArgument("duplicate placement id " + std::to_string(m.PlacementId()));
    }
  }

  PartitionMap map;
  map.partition_bits_ = partition_bits;
  map.members_ = std::move(members);
  std::sort(map.members_.begin(), map.members_.end(),
            [](const Member& a, const Member& b) { return a.address < b.address; });

  // DC name -> (placement id -> member), all sorted, so the input order cannot matter. The
  // planner sees placement ids only; the lists hold node ids.
  std::map<std::string_view, std::map<uint32_t, const Member*>> by_dc;
  for (const Member& m : map.members_) by_dc[m.dc][m.PlacementId()] = &m;
  for (const auto& [dc, nodes] : by_dc) {
    std::set<std::string_view> rack_names;
    for (const auto& [id, m] : nodes) rack_names.insert(m->rack);
    DataCentre out{.name = std::string(dc), .node_ids = {}, .lists = {}};
    std::vector<uint32_t> placement_ids, racks, node_of;
    for (const auto& [id, m] : nodes) {
      placement_ids.push_back(id);
      node_of.push_back(m->node_id);
      racks.push_back(
          static_cast<uint32_t>(std::distance(rack_names.begin(), rack_names.find(m->rack))));
    }
    out.lists =
        DcPlanner(placement_ids, racks, static_cast<uint32_t>(rack_names.size()), map.partitions())
            .Run();
    for (uint32_t& v : out.lists) v = node_of[v];
    out.node_ids = std::move(node_of);
    std::sort(out.node_ids.begin(), out.node_ids.end());
    map.dcs_.push_back(std::move(out));
  }

  std::string bytes;
  base::PutBig32(&bytes, partition_bits);
  for (const Member& m : map.members_) {
    base::PutBig32(&bytes, m.node_id);
    if (m.PlacementId() != m.node_id) base::PutBig32(&bytes, m.placement_id);
    PutString(&bytes, m.address);
    PutString(&bytes, m.dc);
    PutString(&bytes, m.rack);
  }
  for (const DataCentre& dc : map.dcs_) {
    PutString(&bytes, dc.name);
    for (uint32_t id : dc.lists) base::PutBig32(&bytes, id);
  }
  map.fingerprint_ = base::Hash64(bytes);
  return map;
}

std::vector<std::string> PartitionMap::dcs() const {
  std::vector<std::string> names;
  for (const DataCentre& dc : dcs_) names.push_back(dc.name);
  return names;
}

const PartitionMap::DataCentre* PartitionMap::FindDc(std::string_view name) const {
  auto it = std::lower_bound(dcs_.begin(), dcs_.end(), name,
                             [](const DataCentre& dc, std::string_view n) { return dc.name < n; });
  return it != dcs_.end() && it->name == name ? &*it : nullptr;
}

std::span<const uint32_t> PartitionMap::Preference(uint32_t partition, std::string_view dc) const {
  const DataCentre* d = FindDc(dc);
  if (d == nullptr || partition >= partitions()) return {};
  const size_t n = d->node_ids.size();
  return std::span<const uint32_t>(d->lists).subspan(partition * n, n);
}

std::span<const uint32_t> PartitionMap::ReplicasIn(uint32_t partition, std::string_view dc,
                                                   const ReplicationMap& replication) const {
  std::span<const uint32_t> list = Preference(partition, dc);
  return list.first(std::min<size_t>(ReplicationIn(replication, dc), list.size()));
}

std::vector<uint32_t> PartitionMap::Replicas(uint32_t partition,
                                             const ReplicationMap& replication) const {
  std::vector<uint32_t> replicas;
  for (const DataCentre& dc : dcs_) {
    std::span<const uint32_t> list = ReplicasIn(partition, dc.name, replication);
    replicas.insert(replicas.end(), list.begin(), list.end());
  }
  return replicas;
}

uint32_t PartitionMap::ReplicaCount(uint32_t node_id, uint32_t k) const {
  for (const DataCentre& dc : dcs_) {
    if (!std::binary_search(dc.node_ids.begin(), dc.node_ids.end(), node_id)) continue;
    const size_t n = dc.node_ids.size();
    const size_t prefix = std::min<size_t>(k, n);
    uint32_t count = 0;
    for (uint32_t p = 0; p < partitions(); ++p) {
      const auto first = dc.lists.begin() + p * n;
      count += std::find(first, first + prefix, node_id) != first + prefix;
    }
    return count;
  }
  return 0;
}

}  // namespace cairn::cluster
