// Background repair: every node repairs, in a cycle, the ranges whose first replica it is (so
// that each range is repaired by one node per cycle), paced so that a cycle takes about
// --repair-interval and rate-limited to --repair-mb-per-s of repaired records. The repair of one
// range is ClusterCoordinator::RepairRange, the same as `cairn repair`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "coordinator/cluster_coordinator.h"

namespace cairn::coordinator {

struct BackgroundRepairOptions {
  BackgroundRepairOptions() = default;
  // A full cycle over this node's ranges takes about this long; 0 turns background repair off.
  std::chrono::seconds interval{24 * 3600};
  // Bytes of repaired records per second, at most (0: no limit).
  uint64_t bytes_per_second = uint64_t{16} << 20;
};

// Thread safety: Run() on its executor; Stop() and counters() from any thread.
class BackgroundRepairer {
 public:
  BackgroundRepairer(ClusterCoordinator* coordinator, uint32_t self,
                     BackgroundRepairOptions options, asio::any_io_executor executor);

  asio::awaitable<void> Run();
  void Stop();

  struct Counters {
    uint64_t ranges = 0;              // ranges repaired
    uint64_t ranges_agreed = 0;       // of which every replica took part and agreed
    uint64_t segments_compared = 0;   // segments compared (per replica beyond the first)
    uint64_t segments_differing = 0;  // of which differed
    uint64_t keys_repaired = 0;
    uint64_t bytes = 0;
    uint64_t tombstones_purged = 0;
    uint64_t cycles = 0;             // full cycles finished
    double last_cycle_seconds = 0;   // how long the last full cycle took
    uint64_t last_cycle_end_ms = 0;  // wall time it ended (0: none yet)
  };
  Counters counters() const;

 private:
  // One cycle over the ranges this node is first replica of. False when stopped.
  asio::awaitable<bool> Cycle();
  // Waits `d` (or until Stop()); false when stopped.
  asio::awaitable<bool> Sleep(std::chrono::steady_clock::duration d);

  ClusterCoordinator* const coordinator_;
  const uint32_t self_;
  const BackgroundRepairOptions options_;
  asio::steady_timer timer_;  // on the executor
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  Counters counters_;  // guarded by mu_
};

}  // namespace cairn::coordinator
