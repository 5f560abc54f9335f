// Gossip: spreads every node's state (who it is, a heartbeat, its load and pending hints, its
// clock) and the keyspace definitions; turns heartbeats into UP/DOWN with a phi-accrual failure
// detector per peer; and forms the cluster the first time every listed peer has been heard from.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
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
#include "proto/internode.pb.h"

namespace cairn::cluster {

namespace asio = boost::asio;

struct GossipOptions {
  GossipOptions() = default;
  std::chrono::milliseconds interval{1000};
  double phi_threshold = 8.0;
  // Clocks of peers further ahead than this are not merged into ours (a peer with a wildly wrong
  // clock must not drag the cluster's versions along); its versions still order by their value.
  std::chrono::milliseconds max_clock_lead{60'000};
};

// Thread safety: Run() and the gossip it sends run on `executor`; every other method may be
// called from any thread.
class Gossiper final : public ClusterView {
 public:
  Gossiper(ClusterConfig config, NodeIdentity identity, GossipOptions options,
           storage::Engine* engine, Schema* schema, base::HybridClock* clock,
           asio::any_io_executor executor, asio::any_io_executor blocking, InternodeClient* client);

  // Restores a formed membership from the data directory; INVALID_ARGUMENT when the start
  // options contradict it (another --peers list, --dc, --rack or partition count).
  Status Init();

  // Gossips every interval until Stop().
  asio::awaitable<void> Run();
  void Stop();

  // Answers a peer's gossip. FAILED_PRECONDITION when the peer was started with another membership.
  Result<internode::GossipResponse> Handle(const internode::GossipRequest& request);

  // ClusterView
  std::shared_ptr<const Topology> topology() const override;
  bool IsUp(uint32_t node_id) const override;
  std::string NotFormedReason() const override;

  std::vector<NodeStatus> Nodes() const override;
  uint64_t fingerprint() const { return fingerprint_; }

  // Figures this node reports about itself in every round.
  void SetSelfFigures(std::function<uint64_t()> load_bytes, std::function<uint64_t()> hints);
  // Called (on the gossip executor) when this node must not run: a peer refused it for a
  // different membership before the cluster formed. The server exits with the message.
  void OnFatal(std::function<void(const cairn::Status&)> fn) { on_fatal_ = std::move(fn); }
  // Called once when the cluster forms (or is restored) with the topology.
  void OnFormed(std::function<void(std::shared_ptr<const Topology>)> fn) {
    on_formed_ = std::move(fn);
  }

 private:
  using Clock = std::chrono::steady_clock;

  internode::GossipRequest MakeRequestLocked();
  // Merges states and keyspaces; FAILED_PRECONDITION on a membership mismatch.
  cairn::Status MergeLocked(const google::protobuf::RepeatedPtrField<internode::NodeState>& states);
  void MergeSchema(const google::protobuf::RepeatedPtrField<internode::KeyspaceRecord>& records);
  void EvaluateLocked(Clock::time_point now);
  // Members whose identity is known, when all are: the cluster can form.
  std::optional<std::vector<Member>> FormableLocked() const;
  asio::awaitable<void> Form(std::vector<Member> members);
  asio::awaitable<void> GossipWith(std::string address);
  std::string MismatchMessage() const;

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

  std::function<uint64_t()> load_fn_;
  std::function<uint64_t()> hints_fn_;
  std::function<void(const cairn::Status&)> on_fatal_;
  std::function<void(std::shared_ptr<const Topology>)> on_formed_;
  asio::steady_timer timer_;
  bool stopping_ = false;  // on executor_
  bool forming_ = false;   // on executor_
  std::mt19937_64 rng_;    // on executor_

  mutable std::mutex mu_;
  uint64_t heartbeat_ = 0;                               // guarded by mu_
  std::map<std::string, internode::NodeState> states_;   // guarded by mu_; by address
  std::map<std::string, PhiAccrualDetector> detectors_;  // guarded by mu_; peers only
  std::unordered_set<uint32_t> up_;                      // guarded by mu_
  std::unordered_set<std::string> up_addresses_;         // guarded by mu_
  std::shared_ptr<const Topology> topology_;             // guarded by mu_
  std::string mismatch_;                                 // guarded by mu_
};

}  // namespace cairn::cluster
