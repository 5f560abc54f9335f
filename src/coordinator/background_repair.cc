#include "coordinator/background_repair.h"

#include <spdlog/spdlog.h>

#include "base/async.h"
#include "base/hlc.h"

namespace cairn::coordinator {

using base::kNoThrow;

BackgroundRepairer::BackgroundRepairer(ClusterCoordinator* coordinator, uint32_t self,
                                       BackgroundRepairOptions options,
                                       asio::any_io_executor executor)
    : coordinator_(coordinator), self_(self), options_(options), timer_(std::move(executor)) {}

void BackgroundRepairer::Stop() {
  stopping_ = true;
  asio::post(timer_.get_executor(), [this] { timer_.cancel(); });
}

BackgroundRepairer::Counters BackgroundRepairer::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

asio::awaitable<bool> BackgroundRepairer::Sleep(std::chrono::steady_clock::duration d) {
  if (stopping_) co_return false;
  if (d <= std::chrono::steady_clock::duration::zero()) co_return true;
  timer_.expires_after(d);
  co_await timer_.async_wait(kNoThrow);
  co_return !stopping_;
}

asio::awaitable<void> BackgroundRepairer::Run() {
  if (options_.interval.count() == 0) co_return;
  // The first cycle starts after a while, not with the node: a cluster starting up has better
  // things to do, and a node that restarts often does not repair more often.
  const std::chrono::steady_clock::duration first =
      options_.interval < std::chrono::seconds(60) ? options_.interval : std::chrono::seconds(60);
  bool go_on = co_await Sleep(first);
  while (go_on) go_on = co_await Cycle();
}

asio::awaitable<bool> BackgroundRepairer::Cycle() {
  const auto start = std::chrono::steady_clock::now();
  auto keyspaces = coordinator_->ListKeyspaces();
  const uint32_t partitions = coordinator_->partition_count();
  if (!keyspaces.ok() || keyspaces->empty() || partitions == 0) {
    co_return co_await Sleep(std::chrono::seconds(60));
  }
  // Each range gets an equal slot of the interval, whoever repairs it, so the ranges this node
  // repairs spread over the whole cycle.
  const uint64_t ranges = uint64_t{partitions} * keyspaces->size();
  const auto slot =
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(options_.interval) /
      static_cast<int64_t>(ranges);
  uint64_t index = 0;
  for (const cluster::KeyspaceDef& ks : *keyspaces) {
    for (uint32_t p = 0; p < partitions; ++p, ++index) {
      if (stopping_) co_return false;
      auto report = co_await coordinator_->RepairRange(ks.name, p, self_, /*only_as_first=*/true);
      if (!report.ok()) {
        spdlog::warn("background repair of partition {} of keyspace {}: {}", p, ks.name,
                     report.status().ToString());
        continue;
      }
      if (!report->skipped.empty()) continue;  // not this node's, or cannot be repaired now
      {
        std::lock_guard lock(mu_);
        ++counters_.ranges;
        counters_.ranges_agreed += report->agreed ? 1 : 0;
        counters_.segments_compared +=
            uint64_t{storage::kDigestSegments} * (report->answered > 0 ? report->answered - 1 : 0);
        counters_.segments_differing += report->segments_differing;
        counters_.keys_repaired += report->keys_repaired;
        counters_.bytes += report->bytes;
        counters_.tombstones_purged += report->tombstones_purged;
      }
      if (report->keys_repaired > 0) {
        spdlog::info("background repair of partition {} of keyspace {}: {} keys repaired", p,
                     ks.name, report->keys_repaired);
      }
      auto wait = start + slot * static_cast<int64_t>(index + 1) - std::chrono::steady_clock::now();
      if (options_.bytes_per_second > 0) {
        // The records just sent count against the rate: wait long enough for them.
        wait = std::max<std::chrono::steady_clock::duration>(
            wait,
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                std::chrono::duration<double>(static_cast<double>(report->bytes) /
                                              static_cast<double>(options_.bytes_per_second))));
      }
      if (!co_await Sleep(wait)) co_return false;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  {
    std::lock_guard lock(mu_);
    ++counters_.cycles;
    counters_.last_cycle_seconds = seconds;
    counters_.last_cycle_end_ms = coordinator_->wall_clock().NowMillis();
  }
  spdlog::info("background repair: a full cycle took {:.0f} s", seconds);
  // The rest of the interval, if the cycle was shorter (every range skipped, say).
  co_return co_await Sleep(start + options_.interval - std::chrono::steady_clock::now());
}

}  // namespace cairn::coordinator
