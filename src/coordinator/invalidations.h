// Client-side caching across the cluster (docs/resp.md, "Client-side caching"): the keys that
// client operations change reach the tracking clients of every node, whatever door and node the
// change came through.
//
// The coordinator reports the keys an operation changed once the operation has its outcome
// (Changed(), after the acknowledgements it waited for): this node's listener (the RESP door's
// tracking table) gets them at once, and every other node that has tracking clients gets them in
// one KeysChangedRequest per peer and reactor turn, sent after the answer and never waited for:
// a peer that is slow or gone costs the write nothing. While no node of the cluster tracks, the
// coordinator does not call Changed() at all: the write path pays one relaxed load (active()).
//
// Which nodes track: a node whose first connection turns tracking on tells every live member
// (StartTracking, answered before that client is), and gossip repeats it (NodeState.tracking).
//
// Messages are best effort, and what a lost one costs is bounded: a sender whose message failed,
// or that dropped keys for a peer it could not reach, owes that peer a flush (the receiver's
// tracking clients drop everything they cached) and sends it once the peer answers again; a node
// with tracking clients that sees a peer restart, join or come back UP tells it again that it
// tracks, then has its own clients drop everything, since that peer's changes in between may
// never have been sent; one that sees a peer go DOWN has its clients drop everything at once
// (the peer may have crashed between acknowledging a write and sending its keys).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "base/hlc.h"
#include "cluster/internode_client.h"
#include "cluster/topology.h"
#include "coordinator/coordinator.h"
#include "proto/internode.pb.h"

namespace cairn::coordinator {

// Thread safety: every method may be called from any reactor thread. Changed() and Flush() batch
// per reactor (base::ReactorIndex()): call them from coroutines running on the reactor they were
// spawned on, as every coordinator operation does.
class Invalidations {
 public:
  // `clients` holds one internode client per reactor, as the coordinator's.
  Invalidations(uint32_t self, const cluster::ClusterView* view, base::HybridClock* clock,
                std::vector<cluster::InternodeClient*> clients);

  // Whether anyone tracks: this node's clients or another node's. The write path's one branch.
  bool active() const { return active_.load(std::memory_order_relaxed); }

  // Where changes (this node's and other nodes') go; null: nowhere. Set before serving.
  void SetListener(KeyChangeListener* listener) { listener_.store(listener); }

  // `keys` were changed (or may have been) by an operation coordinated here that has its
  // outcome; `origin` is its RequestOptions::origin. `executor` is the caller's (its reactor's).
  void Changed(const asio::any_io_executor& executor, std::span<const std::string> keys,
               uint64_t origin);
  // Every key may have changed (FLUSHDB, a dropped keyspace): every tracking client here and on
  // the other nodes drops what it cached.
  void Flush(const asio::any_io_executor& executor);

  // This node gets a (another) connection that tracks keys. The first one makes every live
  // member learn that this node tracks, and completes when they answered (at most about a
  // second later; those that did not learn it from gossip and are told again by Run(), after
  // which this node's clients drop everything).
  asio::awaitable<void> StartTracking();
  // One of those connections stopped tracking (or closed).
  void StopTracking();

  // What other nodes send (InternodeService hands them over).
  void Receive(uint32_t from, const internode::KeysChangedRequest& request);
  void Receive(uint32_t from, const internode::TrackingRequest& request);
  // What gossip says of this node (NodeState.tracking, tracking_since).
  void Report(internode::NodeState* self) const;

  // Once a second until the executor stops: learns peers' tracking from gossip, tells peers that
  // came back (or did not answer StartTracking) that this node tracks, sends the flushes it owes.
  // Runs on reactor 0 (it uses that reactor's internode client).
  asio::awaitable<void> Run();

  struct Counters {
    uint64_t messages_sent = 0;      // KeysChangedRequests sent to other nodes
    uint64_t keys_sent = 0;          // keys in them
    uint64_t messages_failed = 0;    // of those, not answered (a flush is owed then)
    uint64_t flushes_sent = 0;       // KeysChangedRequests with flush sent
    uint64_t messages_received = 0;  // KeysChangedRequests received
    uint64_t keys_received = 0;      // keys in them
    uint64_t announcements = 0;      // TrackingRequests sent
  };
  Counters counters() const;
  // Whether node `node` tracks, as this node knows it (tests).
  bool PeerTracks(uint32_t node) const;

 private:
  struct Peer {
    std::string address;
    bool up = false;
    uint64_t generation = 0;
    bool seen = false;      // Run() has seen it in the membership
    bool tracking = false;  // it has tracking clients: send it our changes
    uint64_t since = 0;     // of that statement, its HLC
    // Keys for it were dropped or lost since its last flush: it is owed one (a count, so that a
    // flush answered does not clear a loss that came after it was sent).
    uint64_t owed = 0;
    // The `since` of our own statement this peer has acknowledged (0: it must be told).
    uint64_t told = 0;
  };
  // Keys waiting for the end of the reactor turn, per peer.
  struct Outbox {
    std::map<uint32_t, internode::KeysChangedRequest> pending;
    // Shared with the sends, whose frames may outlive this object at shutdown (a stopped
    // reactor destroys them later).
    std::shared_ptr<std::map<uint32_t, int>> in_flight =
        std::make_shared<std::map<uint32_t, int>>();
    bool scheduled = false;
  };
  static constexpr int kMaxInFlight = 8;  // per peer and reactor; past it keys are dropped
  static constexpr int kMaxKeysPerMessage = 10'000;  // past it the message is a flush

  void Enqueue(const asio::any_io_executor& executor, std::span<const std::string> keys,
               bool flush);
  void SendPending(size_t reactor, const asio::any_io_executor& executor);
  asio::awaitable<void> Send(size_t reactor, uint32_t peer, std::string address,
                             internode::KeysChangedRequest request);
  // Recomputes active_ and the targets; mu_ held.
  void UpdateLocked();
  void OweFlush(uint32_t peer);
  // Tells `peers` (node id, address) this node's statement; true for each that answered.
  asio::awaitable<std::vector<bool>> Tell(std::vector<std::pair<uint32_t, std::string>> peers,
                                          internode::TrackingRequest statement,
                                          base::Deadline deadline);
  // A peer's statement (gossiped or sent): kept when newer than the one known. `address` may be
  // empty (then looked up).
  void Adopt(uint32_t from, bool tracking, uint64_t since, std::string address);
  cluster::InternodeClient* ClientHere() const;

  // Constant after construction.
  const uint32_t self_;
  const cluster::ClusterView* const view_;
  base::HybridClock* const clock_;
  const std::vector<cluster::InternodeClient*> clients_;
  std::vector<Outbox> outboxes_;  // one per reactor, each used on its reactor only

  std::atomic<KeyChangeListener*> listener_{nullptr};
  std::atomic<bool> active_{false};
  std::atomic<bool> local_{false};           // this node has tracking clients
  std::atomic<uint64_t> since_reported_{0};  // since_, for gossip (read under the gossiper's lock)

  mutable std::mutex mu_;
  std::map<uint32_t, Peer> peers_;  // guarded by mu_
  // The peers to send changes to (tracking, and not this node), copied out for each Changed().
  std::shared_ptr<const std::vector<std::pair<uint32_t, std::string>>> targets_;  // guarded by mu_
  uint32_t tracking_refs_ = 0;  // guarded by mu_: connections of this node that track
  uint64_t since_ = 0;          // guarded by mu_: when this node's tracking last turned on or off
  bool announced_ = false;      // guarded by mu_: StartTracking's announcement of since_ is done

  struct AtomicCounters {
    std::atomic<uint64_t> messages_sent{0}, keys_sent{0}, messages_failed{0}, flushes_sent{0},
        messages_received{0}, keys_received{0}, announcements{0};
  };
  mutable AtomicCounters counters_;
};

}  // namespace cairn::coordinator
