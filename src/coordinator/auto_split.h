// Automatic splitting of hot counters (issue #17, docs/hot-keys.md): in a keyspace with
// auto_split_increments_per_s set, a counter incremented at least that many times a second over
// the cluster is split into the keyspace's auto_split_shards sub-counters, through the path
// `cairn hotkeys split` takes (ClusterCoordinator::SplitCounter). Nothing merges a counter back.
//
// How a node decides, once a second (AutoSplitter::Run, on one reactor, never blocking it):
//   1. Its own hot-key sketch (base/hot_keys.h) counts the increments each key takes here.
//      A counter whose rate here reaches threshold / coordinators (the live members: its share
//      if the clients spread their increments evenly) is a candidate; the hottest one per
//      keyspace, and a keyspace at most once every kKeyspaceSpacing.
//   2. The candidate's rate over the cluster is the sum of every live node's sketch, as
//      `cairn hotkeys` reports it (one internode round trip per node). Only when that reaches the
//      threshold is the counter split. A node's own rate alone would miss a counter whose
//      increments are spread over many coordinators; the local rate times the member count would
//      split one whose increments all go to one coordinator (token-aware clients) at a rate
//      `members` times too low.
// Several nodes may decide at once: SplitCounter is idempotent (a second split with the same
// shard count changes nothing and resets no sub-counter).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/hot_keys.h"
#include "base/model.h"
#include "coordinator/coordinator.h"

namespace cairn::cluster {
class ClusterView;
}

namespace cairn::coordinator {

class ClusterCoordinator;

// A counter worth asking the cluster about.
struct AutoSplitCandidate {
  std::string keyspace;
  std::string key;
  double local_increments_per_s = 0;  // counted by this node
  uint32_t threshold = 0;             // the keyspace's auto_split_increments_per_s
  uint32_t shards = 0;                // its auto_split_shards
};

// The decisions of automatic splitting, apart from the I/O, with the time given, so that tests
// drive them. Not thread-safe: the AutoSplitter's coroutine alone uses it.
class AutoSplitPolicy {
 public:
  using Clock = base::HotKeys::Clock;
  // Between two attempts (a cluster-wide check or a split) in one keyspace, from one node.
  static constexpr std::chrono::seconds kKeyspaceSpacing{5};
  // How long a counter that a split refused (not a number, a time to live, a shard count of an
  // operator's) is left alone.
  static constexpr std::chrono::seconds kRefusedPause{60};
  // Keys of a keyspace looked at in the node's sketch.
  static constexpr size_t kLookAt = 16;

  // Whether `key` of `keyspace` is a split counter now, in any phase.
  using IsSplit = std::function<bool(const std::string& keyspace, std::string_view key)>;

  // The counters to check over the cluster now, at most one per keyspace, hottest first: in a
  // keyspace with auto_split_increments_per_s set, not split (nor being merged), whose rate of
  // increments counted in `sketch` reaches threshold / `coordinators`. Keys kept truncated in the
  // sketch and sub-counters never are.
  std::vector<AutoSplitCandidate> Candidates(const std::vector<base::KeyspaceDef>& keyspaces,
                                             const base::HotKeys& sketch, const IsSplit& is_split,
                                             uint32_t coordinators, Clock::time_point now) const;
  // Whether the rate summed over the cluster passes the candidate's threshold.
  static bool Passes(const AutoSplitCandidate& c, double cluster_increments_per_s) {
    return cluster_increments_per_s >= c.threshold;
  }
  // An attempt in `keyspace` began at `now`: the next one waits kKeyspaceSpacing.
  void Attempted(const std::string& keyspace, Clock::time_point now);
  // A split of the key was refused for a reason that will not pass by itself soon.
  void Refused(const std::string& keyspace, std::string_view key, Clock::time_point now);

 private:
  std::map<std::string, Clock::time_point> next_attempt_;                     // by keyspace
  std::map<std::pair<std::string, std::string>, Clock::time_point> refused_;  // until when
};

// Runs AutoSplitPolicy against the node's coordinator: started once by the server, stopped
// before the coordinator goes.
class AutoSplitter {
 public:
  AutoSplitter(ClusterCoordinator* coordinator, const cluster::ClusterView* view,
               asio::any_io_executor executor);

  // Checks once a second until Stop(). Errors are logged; nothing it does can fail the node.
  asio::awaitable<void> Run();
  void Stop();

 private:
  asio::awaitable<void> Check();
  // Checks `c` over the cluster and splits it if it passes.
  asio::awaitable<void> Consider(AutoSplitCandidate c);

  ClusterCoordinator* const coordinator_;
  const cluster::ClusterView* const view_;
  asio::steady_timer timer_;  // on the executor
  std::atomic<bool> stopping_{false};
  AutoSplitPolicy policy_;  // on the executor
};

}  // namespace cairn::coordinator
