// The partition map (ARCHITECTURE.md section 3): for every partition and every data centre, an
// ordered preference list of all the nodes of that data centre. A keyspace with replication factor
// k in a DC stores a partition on the first k nodes of that DC's list.
//
// The map is a pure function of the member set and the partition count, so every node that knows
// the same members computes the same map, byte for byte; Fingerprint() lets nodes compare maps.
// The algorithm is therefore part of the cluster's contract: changing it moves partitions when the
// new binary computes a map, and nodes that run different versions disagree until all are upgraded.
// The token-aware client library computes the same map from the cluster status (it links this
// file's library, cairn_placement, which needs base only).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/model.h"
#include "cairn/status.h"
#include "cairn/types.h"

namespace cairn::cluster {

inline constexpr uint32_t kMaxPartitionBits = 16;

// Every prefix of a preference list up to this length is balanced between the DC's nodes; longer
// prefixes only follow the rack rule. Covers every replication factor a keyspace may have
// (kMaxReplicationFactor in cairn/types.h).
inline constexpr uint32_t kBalancedPrefix = 15;

// The replication factor of a keyspace with `replication` in data centre `dc` (base/model.h).
using cairn::ReplicationIn;

struct Member {
  uint32_t node_id = 0;  // unique, non-zero
  std::string address;   // "host:port", unique
  std::string dc;        // data centre name
  std::string rack;      // rack name within the DC
  // The id the map hashes and orders this member by: 0 means node_id. A node that replaces a dead
  // one takes the dead node's, and with it exactly that node's places in every list.
  uint32_t placement_id = 0;

  uint32_t PlacementId() const { return placement_id != 0 ? placement_id : node_id; }
  friend bool operator==(const Member&, const Member&) = default;
};

// The partition -> preference list map of one cluster topology. Each DC's lists are computed on
// their own and hold only that DC's nodes. Within a DC every list satisfies:
// - Rack spread: in every prefix, the racks that still have nodes left differ by at most one in
//   how many of their nodes the prefix holds. So the first k nodes are in k distinct racks while
//   k <= the DC's rack count, and a rack outage takes out as few replicas as it can.
// - Balance: for every k <= kBalancedPrefix, each node is among the first k of about Q*k/n
//   partitions (n nodes, Q partitions), within one or two partitions, where the rack spread allows
//   it. When racks differ in size it may not: with 3 racks of 2, 1 and 1 nodes and k = 3, each node
//   of a one-node rack must be in every partition's first 3. Rack spread wins; the nodes of a rack
//   then share their rack's load evenly.
// - Stability: a partition's natural order is its rendezvous (highest random weight) order of
//   xxh3(partition, node id); balancing moves as few partitions, with the smallest score gaps, away
//   from it as it can. So adding or removing a node mostly moves partitions to or from that node.
//
// Thread safety: immutable after Compute(); any thread may read it.
class PartitionMap {
 public:
  // Computes the map of `members` (in any order) with 2^partition_bits partitions.
  // INVALID_ARGUMENT for an empty member list, a node id of 0, duplicate node ids or addresses,
  // an empty address, dc or rack name, or partition_bits > kMaxPartitionBits.
  static Result<PartitionMap> Compute(std::vector<Member> members, uint32_t partition_bits);
  // An empty map (no members); only useful as a placeholder to assign a computed map to.
  PartitionMap() = default;

  uint32_t partition_bits() const { return partition_bits_; }
  uint32_t partitions() const { return uint32_t{1} << partition_bits_; }
  const std::vector<Member>& members() const { return members_; }  // sorted by address
  std::vector<std::string> dcs() const;                            // sorted

  // The node ids of `dc` in preference order for `partition`. Empty when the DC has no members or
  // `partition` >= partitions().
  std::span<const uint32_t> Preference(uint32_t partition, std::string_view dc) const;

  // The replicas in `dc` of `partition` for a keyspace with `replication`: the first
  // ReplicationIn(replication, dc) nodes of the DC's list (capped at the DC's node count), in
  // preference order. This is the one rule that says where a key lives.
  std::span<const uint32_t> ReplicasIn(uint32_t partition, std::string_view dc,
                                       const ReplicationMap& replication) const;

  // The replicas of `partition` for a keyspace with `replication`: ReplicasIn() of every DC, DCs
  // in name order.
  std::vector<uint32_t> Replicas(uint32_t partition, const ReplicationMap& replication) const;

  // How many partitions have `node_id` among the first `k` nodes of its DC's lists (0 for a node
  // that is not a member).
  uint32_t ReplicaCount(uint32_t node_id, uint32_t k) const;

  // A 64-bit hash of the partition count, the members and every list: equal maps have equal
  // fingerprints, and different maps almost surely differ.
  uint64_t Fingerprint() const { return fingerprint_; }

 private:
  struct DataCentre {
    std::string name;
    std::vector<uint32_t> node_ids;  // sorted
    // partitions() lists of node_ids.size() node ids each, partition after partition.
    std::vector<uint32_t> lists;
  };

  const DataCentre* FindDc(std::string_view name) const;

  uint32_t partition_bits_ = 0;
  std::vector<Member> members_;  // sorted by address
  std::vector<DataCentre> dcs_;  // sorted by name
  uint64_t fingerprint_ = 0;
};

}  // namespace cairn::cluster
