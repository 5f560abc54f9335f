// The cluster as a node knows it: its configuration, the formed membership, the partition map,
// and the view of it that coordinators use (which nodes exist, which are UP).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/model.h"
#include "cairn/status.h"
#include "cluster/placement.h"
#include "cluster/split_counters.h"
#include "proto/internode.pb.h"
#include "storage/engine.h"

namespace cairn::cluster {

// What a node is started with (cairnd --listen, --peers, --dc, --rack).
struct ClusterConfig {
  std::string self_address;  // this node's HOST:PORT, as it appears in `peers`
  std::string dc = "dc1";
  std::string rack = "rack1";
  std::vector<std::string> peers;  // every initial member, this node included
  uint32_t partition_bits = 10;
  // Started without --peers: a cluster of this node alone, whose address may change between
  // restarts (the membership does not depend on it).
  bool standalone = false;
  // cairnd --join: nodes of an existing cluster to ask to take this one in. Such a node never
  // forms a cluster of its own; it becomes a member when a topology epoch says so.
  std::vector<std::string> join;
};

// Identifies a membership definition: the sorted peer list and the partition count. Nodes with
// different fingerprints refuse to form a cluster together.
uint64_t MembershipFingerprint(std::vector<std::string> peers, uint32_t partition_bits);
// The fingerprint of `config`'s membership (a standalone node's does not depend on its address).
uint64_t MembershipFingerprint(const ClusterConfig& config);

// INVALID_ARGUMENT unless the configuration is usable: self in peers, no duplicates, valid
// dc and rack names.
Status ValidateConfig(const ClusterConfig& config);

// The topology of one epoch as coordinators use it: immutable, replaced as a whole by each new
// epoch (topology_state.h has the rules of how one epoch follows another).
struct Topology {
  uint64_t epoch = 1;
  // Replicas refuse requests of coordinators whose topology is older than this.
  uint64_t fence = 0;
  uint32_t self = 0;
  std::string local_dc;
  uint64_t fingerprint = 0;  // of the --peers list the cluster formed from
  // The map reads use: the base map, or the target once a transition's reads have switched.
  PartitionMap map;
  // During a transition's write-both stages, the other map: a write needs its level's count
  // among `map`'s replicas and among these (a node in both counts for both).
  std::optional<PartitionMap> also_write;
  internode::TransitionStage stage = internode::STAGE_NONE;
  // During a transition, the maps of its base and target members (`map` and `also_write` are
  // these, arranged by stage): what streaming and cleanup compare. Null without a transition.
  std::shared_ptr<const PartitionMap> base, target;
  // Every member that has not left (joining and leaving ones too), with its address.
  std::unordered_map<uint32_t, Member> by_id;
  // The decided state this was built from.
  std::shared_ptr<const internode::TopologyState> state;
  // The split counters of that state (docs/hot-keys.md); null when there are none.
  std::shared_ptr<const SplitCounters> splits;

  const Member* Find(uint32_t node_id) const {
    auto it = by_id.find(node_id);
    return it == by_id.end() ? nullptr : &it->second;
  }
  // Builds the topology of `members`, every one NORMAL, at `epoch`; INVALID_ARGUMENT when they
  // cannot form one (duplicate ids).
  static Result<std::shared_ptr<const Topology>> Make(std::vector<Member> members, uint32_t self,
                                                      uint32_t partition_bits, uint64_t fingerprint,
                                                      uint64_t epoch);
  // Builds the topology of a decided state, as seen from node `self` (which must be a member).
  static Result<std::shared_ptr<const Topology>> FromState(internode::TopologyState state,
                                                           uint32_t self);
};

using base::NodeStatus;  // what `cairn status` shows of a node (base/model.h)

// What coordinators see of the cluster.
// Thread safety: implementations are safe to call from any thread.
class ClusterView {
 public:
  virtual ~ClusterView() = default;
  // Null until the cluster has formed.
  virtual std::shared_ptr<const Topology> topology() const = 0;
  // Whether `node_id` is believed reachable (this node always is).
  virtual bool IsUp(uint32_t node_id) const = 0;
  // Why topology() is null, for error messages.
  virtual std::string NotFormedReason() const { return "the cluster has not formed yet"; }
  // Every listed node, in address order.
  virtual std::vector<NodeStatus> Nodes() const = 0;
};

// Where a node keeps its topology epochs (the gossiper): the coordinator commits new epochs
// through Paxos and hands each decided one here.
// Thread safety: implementations are safe to call from any thread.
class TopologyStore {
 public:
  virtual ~TopologyStore() = default;
  // The newest decided state this node has; null before it has one.
  virtual std::shared_ptr<const internode::TopologyState> state() const = 0;
  // Adopts a decided state when it is newer than this node's; whether it was. Blocks on disk.
  virtual Result<bool> Adopt(const internode::TopologyState& state) = 0;
  // The barrier of a topology change, on this node: adopts `state` if newer and refuses, from
  // now on, requests of coordinators with a topology older than `fence` (which must not be newer
  // than this node's epoch). Blocks on disk.
  virtual Result<internode::TopologyResponse> HandleTopology(
      const internode::TopologyRequest& request) = 0;
};

// A fixed view: tests, and tools that need a topology without gossip.
class StaticClusterView final : public ClusterView {
 public:
  explicit StaticClusterView(std::shared_ptr<const Topology> topology)
      : topology_(std::move(topology)) {}
  std::shared_ptr<const Topology> topology() const override { return topology_; }
  bool IsUp(uint32_t) const override { return true; }
  std::vector<NodeStatus> Nodes() const override {
    std::vector<NodeStatus> out;
    for (const Member& m : topology_->map.members()) {
      out.push_back(
          NodeStatus{m.address, m.node_id, m.dc, m.rack, true, m.node_id == topology_->self});
    }
    return out;
  }

 private:
  std::shared_ptr<const Topology> topology_;
};

// The formed membership persisted in the meta column family.
struct StoredMembership {
  std::vector<Member> members;
  uint64_t fingerprint = 0;
  uint64_t epoch = 0;
};
Result<std::optional<StoredMembership>> LoadMembership(storage::Engine& engine);
Status SaveMembership(storage::Engine& engine, const StoredMembership& membership);

}  // namespace cairn::cluster
