// The driver of topology changes (ARCHITECTURE.md section 6), on every node; the member of the
// topology group with the lowest id that is UP drives, so that a change goes on whichever
// process dies (each step is a topology epoch decided by Paxos, so two drivers that overlap only
// race for the same step, and one of them wins it).
//
// A change walks its stages; each stage first needs a barrier: every live member has the epoch
// that began it, then raises its fence to it (refusing requests planned with older topologies),
// and the fence is committed. Then:
// - write-both/read-old: first, for DriverOptions::merge_window, other changes may merge into
//   this one (cluster/topology_state.h); then the new replicas stream their ranges
//   (replica/partition_streamer.h); once every member reports its streams done, reads switch:
//   write-both/read-new;
// - write-both/read-new: (fenced) writes move to the new replicas alone: use-new;
// - use-new (or rollback): every member deletes the copies it no longer holds, and reports it;
//   then the change finishes, the target map is the map.
//
// The driver also brings this node in when it was started with --join, and answers other
// nodes' requests to join.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "cluster/gossiper.h"
#include "cluster/internode_client.h"
#include "coordinator/cluster_coordinator.h"
#include "proto/internode.pb.h"

namespace cairn::coordinator {

struct DriverOptions {
  DriverOptions() = default;
  std::chrono::milliseconds poll{300};
  // Between a barrier's "every member has the epoch" and its fence: requests planned just before
  // finish meanwhile instead of being refused.
  std::chrono::milliseconds drain{200};
  // cairnd --join: members to ask to take this node in; and --replace: the dead member it takes
  // the place of.
  std::vector<std::string> join;
  uint32_t replace = 0;
  // cairnd --standby (with --join): ask to join only when told (JoinOnCommand: cairn node join,
  // cairn node replace DEAD --with this node).
  bool standby = false;
  // --dead-after: a member DOWN this long is removed (its data re-replicated from the others);
  // 0: never.
  std::chrono::milliseconds dead_after{0};
  // How long a change waits before its first barrier, so that changes asked for meanwhile (nodes
  // started together, several decommissions) merge into it and move their data in one round.
  std::chrono::milliseconds merge_window{1000};
};

// Thread safety: Run() and JoinLoop() run on `executor`; HandleJoin() on any reactor; Wake() and
// Stop() from any thread.
class TopologyDriver {
 public:
  TopologyDriver(ClusterCoordinator* coordinator, cluster::Gossiper* gossiper,
                 cluster::InternodeClient* client, internode::NodeInfo self, DriverOptions options,
                 asio::any_io_executor executor);

  asio::awaitable<void> Run();
  void Stop();
  void Wake();

  // A node asks to join (or to replace a dead member): answered with the state that makes it a
  // member (JOINING), or why not.
  asio::awaitable<Result<internode::JoinResponse>> HandleJoin(internode::JoinRequest request,
                                                              base::Deadline deadline);

  // A node started with --standby is told to join now (`replace`: in the places of that dead
  // member; 0: a plain join): it asks its --join seeds once, and answers with the state that
  // made it a member, or the refusal (it then stays on standby and may be told again). Asked
  // again once a member, it answers with the current state.
  asio::awaitable<Result<internode::TopologyState>> JoinOnCommand(uint32_t replace);

  // What the driver is waiting for, for `cairn node ops` ("" when nothing).
  std::string waiting() const;

 private:
  // Whether this node drives `state`'s change.
  bool Driving(const internode::TopologyState& state) const;
  // With --dead-after, and no change in progress: removes a member DOWN that long.
  asio::awaitable<void> RemoveTheDead(const internode::TopologyState& state);
  asio::awaitable<void> Step();
  asio::awaitable<void> Join();
  // One round of join requests to the seeds: the state that makes this node a member, or why
  // not (a seed's refusal at once; UNAVAILABLE when none answered).
  asio::awaitable<Result<internode::TopologyState>> AskToJoin();
  bool IsMember() const;
  asio::awaitable<Result<internode::TopologyState>> CarryOutJoinCommand(uint32_t replace);
  // The barrier of the stage `state` is at, then its fence committed.
  asio::awaitable<Status> Barrier(const internode::TopologyState& state);
  bool StreamsDone(const internode::TopologyState& state, std::string* waiting) const;
  bool CleanupDone(const internode::TopologyState& state, std::string* waiting) const;
  // Commits next(state) if the change in progress is still transition `id` at `stage`.
  asio::awaitable<Status> Commit(
      uint64_t id, internode::TransitionStage stage,
      std::function<Result<internode::TopologyState>(const internode::TopologyState&)> next);
  void SetWaiting(std::string what);
  // Sends the newest state to the members that left with the change `before` was in.
  asio::awaitable<void> TellLeavers(const internode::TopologyState& before);

  ClusterCoordinator* const coordinator_;
  cluster::Gossiper* const gossiper_;
  cluster::InternodeClient* const client_;
  const internode::NodeInfo self_;
  const DriverOptions options_;
  const asio::any_io_executor executor_;
  asio::steady_timer timer_;  // on executor_
  bool stopping_ = false;     // on executor_
  // When this driver started: a node that has just started sees every peer DOWN until it hears
  // from them, so it declares nobody dead before it has run for --dead-after itself.
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  // Members being removed as dead that this driver has seen DOWN during the change, by change id
  // (on executor_): only those that were seen DOWN and are UP again are "back" (a driver whose
  // failure detector has not yet marked a killed node DOWN must not take it for one that
  // returned).
  std::map<uint64_t, std::set<uint32_t>> seen_down_;
  // When the driver first saw each member DOWN (on executor_; forgotten when it is UP).
  std::map<uint32_t, std::chrono::steady_clock::time_point> down_since_;
  // The transition whose merge window runs, and when this driver first saw it (on executor_).
  std::pair<uint64_t, std::chrono::steady_clock::time_point> merging_{0, {}};
  // The member a join replaces (--replace, or the command's); on executor_.
  uint32_t replace_ = 0;
  // On standby until told to join (on executor_).
  bool standby_ = false;
  bool commanded_ = false;  // a join command is being carried out (on executor_)
  mutable std::mutex mu_;
  std::string waiting_;  // guarded by mu_
};

}  // namespace cairn::coordinator
