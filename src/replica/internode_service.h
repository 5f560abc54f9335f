// The internode front of a node: answers other nodes' gossip, mutations, reads and scans.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <set>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "base/hlc.h"
#include "base/hot_keys.h"
#include "cluster/gossiper.h"
#include "net/connection.h"
#include "proto/internode.pb.h"
#include "replica/replica.h"

namespace cairn::replica {

// Converts between the stored form and the internode form of one version of a key.
void ToMutation(const storage::DataKey& key, const storage::StoredValue& value,
                internode::Mutation* out);
storage::WriteOp FromMutation(internode::Mutation&& m);

// Thread safety: Serve() runs on the socket's reactor; the rest from any thread.
class InternodeService {
 public:
  // `blocking` runs what writes to disk (adopting a topology, raising the fence).
  InternodeService(Replica* replica, cluster::Gossiper* gossiper, base::HybridClock* clock,
                   base::PhysicalClock* wall, uint32_t self_node, size_t max_frame_bytes,
                   asio::any_io_executor blocking);

  // Serves one connection (TLS handshake done, if any) whose preamble ("CRNI") the caller has
  // read.
  asio::awaitable<void> Serve(net::Stream stream);
  void CloseAll();

  // Answers a node's request to join (JoinRequest); set by the server before serving (it is the
  // coordinator's business: the join is a topology epoch). Without one, joins are refused.
  using JoinHandler = std::function<asio::awaitable<Result<internode::JoinResponse>>(
      internode::JoinRequest request, base::Deadline deadline)>;
  void SetJoinHandler(JoinHandler handler) { join_ = std::move(handler); }
  // Pulls keys of a range from another replica (repair); set by the server (the streamer does it).
  using RepairPullHandler = std::function<asio::awaitable<Result<internode::RepairPullResponse>>(
      internode::RepairPullRequest request, base::Deadline deadline)>;
  void SetRepairPullHandler(RepairPullHandler handler) { repair_pull_ = std::move(handler); }
  // The node's hot-key sketch (the coordinator's), which HotKeysRequests read. Without one they
  // are refused.
  void SetHotKeys(const base::HotKeys* hot_keys) { hot_keys_ = hot_keys; }
  // Client-side caching: takes other nodes' KeysChangedRequests and TrackingRequests (the
  // coordinator's business); set by the server before serving. It must not block. Without one
  // they are answered and ignored.
  using TrackingHandler = std::function<void(uint32_t from, const internode::Request& request)>;
  void SetTrackingHandler(TrackingHandler handler) { tracking_ = std::move(handler); }
  // Fills the answer to a RepairRunsRequest: the `cairn repair` runs this node's coordinator
  // repaired ranges of lately (its business); set by the server before serving. It must not
  // block. Without one they are refused.
  using RepairRunsHandler = std::function<void(internode::RepairRunsResponse* out)>;
  void SetRepairRunsHandler(RepairRunsHandler handler) { repair_runs_ = std::move(handler); }

 private:
  asio::awaitable<void> Execute(internode::Request request, internode::Response* response);
  // FAILED_PRECONDITION for a data request planned with a topology older than this node's fence.
  Status CheckFence(const internode::Request& request) const;

  Replica* const replica_;
  cluster::Gossiper* const gossiper_;
  base::HybridClock* const clock_;
  base::PhysicalClock* const wall_;
  const uint32_t self_node_;
  const size_t max_frame_bytes_;
  const asio::any_io_executor blocking_;
  JoinHandler join_;
  RepairPullHandler repair_pull_;
  TrackingHandler tracking_;
  RepairRunsHandler repair_runs_;
  const base::HotKeys* hot_keys_ = nullptr;
  std::mutex mu_;
  std::set<std::shared_ptr<net::FrameConnection>> connections_;  // guarded by mu_
};

}  // namespace cairn::replica
