// Gossip: spreads every node's state (who it is, a heartbeat, its load and pending hints, its
// clock, the topology epoch it has) and the topology itself; turns heartbeats into UP/DOWN with a
// phi-accrual failure detector per peer; forms the cluster the first time every --peers node has
// been heard from; and keeps this node's current topology epoch (topology_state.h): a newer
// decided epoch heard from any peer is adopted, persisted and published.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/hlc.h"
#include "cairn/status.h"
#include "cluster/failure_detector.h"
#include "cluster/internode_client.h"
#include "cluster/schema.h"
#include "cluster/topology.h"
#include "cluster/topology_state.h"
#include "proto/internode.pb.h"

namespace cairn::cluster {

namespace asio = boost::asio;

// How long a member that has just joined counts as UP before this node first hears from it
// (Gossiper::IsUp).
inline constexpr std::chrono::seconds kJoinGrace{10};

struct GossipOptions {
  GossipOptions() = default;
  std::chrono::milliseconds interval{1000};
  double phi_threshold = 8.0;
  // Clocks of peers further ahead than this are not merged into ours (a peer with a wildly wrong
  // clock must not drag the cluster's versions along); its versions still order by their value.
  std::chrono::milliseconds max_clock_lead{60'000};
};

// What this node reports about itself in every gossip round besides its heartbeat.
struct SelfFigures {
  std::function<uint64_t()> load_bytes;
  std::function<uint64_t()> dead_bytes;  // of load_bytes, garbage (tombstones, expired values)
  std::function<uint64_t()> hints;
  // Progress of the partitions this node streams or cleans up for the topology change in
  // progress (replica/partition_streamer.h), read by the node that drives the change.
  std::function<void(internode::NodeState*)> streaming;
  // Whether the node has client connections that track keys (client-side caching), so that
  // other nodes send it the keys they change. Called under the gossiper's lock.
  std::function<void(internode::NodeState*)> tracking;
};

// Thread safety: Run() and the gossip it sends run on `executor`; every other method may be
// called from any thread.
class Gossiper final : public ClusterView, public TopologyStore {
 public:
  Gossiper(ClusterConfig config, NodeIdentity identity, GossipOptions options,
           storage::Engine* engine, Schema* schema, base::HybridClock* clock,
           asio::any_io_executor executor, asio::any_io_executor blocking, InternodeClient* client);

  // Restores the topology from the data directory; FAILED_PRECONDITION when the start options
  // contradict it (another --peers list, --dc, --rack or partition count).
  Status Init();

  // Gossips every interval until Stop().
  asio::awaitable<void> Run();
  void Stop();

  // Answers a peer's gossip. FAILED_PRECONDITION when the peer belongs to another cluster.
  Result<internode::GossipResponse> Handle(const internode::GossipRequest& request);
  // Answers a topology pull, push or barrier (TopologyRequest): adopts a newer state it carries,
  // raises the fence it asks for, and answers with this node's state.
  Result<internode::TopologyResponse> HandleTopology(
      const internode::TopologyRequest& request) override;

  // Adopts `state` when it is newer than this node's (it must be a decided epoch): persists it,
  // publishes the topology built from it, applies its keyspaces. Returns whether it was adopted.
  // Blocks on disk: call it off the reactors (or from the gossip executor, which posts the
  // writes to `blocking`).
  Result<bool> Adopt(const internode::TopologyState& state) override;
  // The newest state this node has; null before the cluster formed (or this node joined).
  std::shared_ptr<const internode::TopologyState> state() const override;
  // The epoch of state(), 0 before there is one: cheap, for every internode request.
  uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }
  // Requests of coordinators with an older topology than this are refused (TopologyState.fence,
  // or a barrier this node acknowledged since).
  uint64_t fence() const { return fence_.load(std::memory_order_acquire); }
  // Asks the node at `address` for its topology, and adopts it when newer (a peer answered a
  // request with a newer epoch than ours).
  asio::awaitable<void> Pull(std::string address);

  // ClusterView
  std::shared_ptr<const Topology> topology() const override;
  // Up: this node's failure detector says so; or a member that joined under an epoch this node
  // adopted less than kJoinGrace ago and that it has not heard from yet (the epoch that makes a
  // node a replica reaches coordinators before its first heartbeat, and while several join at
  // once a moving partition's new replicas may all be such nodes: judging them DOWN would fail
  // every write to it for that moment).
  bool IsUp(uint32_t node_id) const override;
  std::string NotFormedReason() const override;
  std::vector<NodeStatus> Nodes() const override;
  // The gossip state last heard from `node_id` (streaming progress and the like).
  // Adopts `state` if newer, off the caller's thread (on the blocking pool).
  void AdoptLater(internode::TopologyState state);
  std::optional<internode::NodeState> StateOf(uint32_t node_id) const;
  uint64_t fingerprint() const { return fingerprint_; }

  void SetSelfFigures(SelfFigures figures);
  // Called (on the gossip executor) when this node must not run: a peer refused it for a
  // different membership before the cluster formed. The server exits with the message.
  void OnFatal(std::function<void(const cairn::Status&)> fn) { on_fatal_ = std::move(fn); }
  // Called (once, from the blocking pool) when an epoch says this node has left the cluster
  // (decommissioned or removed): it should stop.
  void OnLeft(std::function<void()> fn) { on_left_ = std::move(fn); }
  // Called once when the cluster forms (or is restored) with the topology.
  void OnFormed(std::function<void(std::shared_ptr<const Topology>)> fn) {
    on_formed_ = std::move(fn);
  }
  // Called (with the gossiper's lock held: post, do not call back) when a node is seen UP again,
  // with its address.
  void OnUp(std::function<void(const std::string&)> fn) { on_up_ = std::move(fn); }
  // Called after every adoption of a newer epoch (on the adopting thread): the streamer and the
  // topology driver wake up.
  void OnTopology(std::function<void(std::shared_ptr<const Topology>)> fn) {
    on_topology_ = std::move(fn);
  }

 private:
  using Clock = std::chrono::steady_clock;

  internode::GossipRequest MakeRequestLocked(const std::string& to);
  // Merges states; FAILED_PRECONDITION for a node of another cluster.
  cairn::Status MergeLocked(const google::protobuf::RepeatedPtrField<internode::NodeState>& states);
  void EvaluateLocked(Clock::time_point now);
  // Members whose identity is known, when all are: the cluster can form.
  std::optional<std::vector<Member>> FormableLocked() const;
  asio::awaitable<void> Form(std::vector<Member> members);
  asio::awaitable<void> GossipWith(std::string address);
  std::string MismatchMessage() const;
  // Failure detectors for every member and peer, and for nobody else.
  void SyncDetectorsLocked();
  void AddDetectorLocked(const std::string& address);
  Status PersistFence(uint64_t fence);

  // Constant after construction.
  const ClusterConfig config_;
  const NodeIdentity identity_;
  const GossipOptions options_;
  const uint64_t fingerprint_;
  uint64_t generation_;  // set by Init(); constant after
  storage::Engine* const engine_;
  Schema* const schema_;
  base::HybridClock* const clock_;
  const asio::any_io_executor executor_;
  const asio::any_io_executor blocking_;
  InternodeClient* const client_;

  SelfFigures figures_;
  std::function<void(const cairn::Status&)> on_fatal_;
  std::function<void()> on_left_;
  std::function<void(const std::string&)> on_up_;
  std::function<void(std::shared_ptr<const Topology>)> on_formed_;
  std::function<void(std::shared_ptr<const Topology>)> on_topology_;
  asio::steady_timer timer_;
  bool stopping_ = false;  // on executor_
  bool forming_ = false;   // on executor_
  std::mt19937_64 rng_;    // on executor_

  std::atomic<uint64_t> epoch_{0};
  std::atomic<uint64_t> fence_{0};
  void LivenessChangedLocked();

  std::mutex adopt_mu_;  // serialises adoptions (they write to disk)

  mutable std::mutex mu_;
  uint64_t heartbeat_ = 0;                               // guarded by mu_
  std::map<std::string, internode::NodeState> states_;   // guarded by mu_; by address
  std::map<std::string, PhiAccrualDetector> detectors_;  // guarded by mu_; peers only
  std::unordered_set<uint32_t> up_;                      // guarded by mu_
  // Changes (from a process-wide counter, so never reused) whenever up_ or unheard_joiners_ do,
  // under mu_: IsUp() reads a per-thread copy of both and takes mu_ only when this moved.
  std::atomic<uint64_t> liveness_version_{0};
  // JOINING members not heard from yet, and when this node learnt they joined (see IsUp).
  std::unordered_map<uint32_t, Clock::time_point> unheard_joiners_;  // guarded by mu_
  std::unordered_set<uint32_t> heard_;            // every node ever UP here; guarded by mu_
  std::unordered_set<std::string> up_addresses_;  // guarded by mu_
  std::shared_ptr<const Topology> topology_;      // guarded by mu_
  std::shared_ptr<const internode::TopologyState> state_;  // guarded by mu_
  std::string mismatch_;                                   // guarded by mu_
};

}  // namespace cairn::cluster
