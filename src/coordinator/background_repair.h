// Background repair: every node repairs, in a cycle, the ranges whose first replica it is (so
// that each range is repaired by one node per cycle), paced so that a cycle takes about
// --repair-interval and rate-limited to --repair-mb-per-s of repaired records. The repair of one
// range is ClusterCoordinator::RepairRange, the same as `cairn repair`.
//
// Scrubbing: each cycle starts by checking every table file of this node's data against its
// block checksums (Engine::ScrubFile), paced at scrub_bytes_per_second; a corrupt file is
// dropped with the ranges its keys span, which are then repaired at once from the other
// replicas (and again every few seconds until a repair succeeds). A corruption met by a read or
// a compaction starts a scrub within a second, whether background repair is on or not.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <mutex>
#include <set>
#include <utility>

#include "coordinator/cluster_coordinator.h"
#include "replica/replica.h"

namespace cairn::coordinator {

struct BackgroundRepairOptions {
  BackgroundRepairOptions() = default;
  // A full cycle over this node's ranges takes about this long; 0 turns background repair off.
  std::chrono::seconds interval{24 * 3600};
  // Bytes of repaired records per second, at most (0: no limit).
  uint64_t bytes_per_second = uint64_t{16} << 20;
  // Bytes of table files the scrub reads per second, at most (0: no limit).
  uint64_t scrub_bytes_per_second = uint64_t{64} << 20;
  // How often it looks for corruption errors, and retries the repair of dropped ranges.
  std::chrono::milliseconds watch_interval{1000};
};

// Thread safety: Run() on its executor; Stop() and counters() from any thread.
class BackgroundRepairer {
 public:
  BackgroundRepairer(ClusterCoordinator* coordinator, replica::Replica* local, uint32_t self,
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
    uint64_t scrubs = 0;             // scrubs finished (every table file checked)
    uint64_t files_scrubbed = 0;     // table files checked
    uint64_t bytes_scrubbed = 0;     // their size
    uint64_t corrupt_files = 0;      // found corrupt
    uint64_t ranges_dropped = 0;     // ranges dropped with them
    uint64_t ranges_to_repair = 0;   // of those, not repaired yet
  };
  Counters counters() const;

 private:
  // One cycle over the ranges this node is first replica of. False when stopped.
  asio::awaitable<bool> Cycle();
  // Waits `d` on `timer` (or until Stop()); false when stopped.
  asio::awaitable<bool> Sleep(asio::steady_timer& timer, std::chrono::steady_clock::duration d);
  // Checks every table file, paced; false when stopped. One at a time (scrubbing_).
  asio::awaitable<bool> Scrub();
  // Repairs the dropped ranges (to_repair_) from the other replicas; those that fail stay.
  asio::awaitable<void> RepairDropped();
  // Scrubs when a corruption was met, and retries RepairDropped, until stopped.
  asio::awaitable<void> Watch();

  ClusterCoordinator* const coordinator_;
  replica::Replica* const local_;
  const uint32_t self_;
  const BackgroundRepairOptions options_;
  asio::steady_timer timer_;        // on the executor: the cycles'
  asio::steady_timer watch_timer_;  // on the executor: Watch()'s
  asio::steady_timer scrub_timer_;  // on the executor: Scrub()'s pace
  std::atomic<bool> stopping_{false};
  bool scrubbing_ = false;                             // on the executor
  uint64_t corruptions_seen_ = 0;                      // on the executor
  std::set<std::pair<uint32_t, uint32_t>> to_repair_;  // on the executor: (partition, keyspace)
  mutable std::mutex mu_;
  Counters counters_;  // guarded by mu_
};

}  // namespace cairn::coordinator
