#include "coordinator/background_repair.h"

#include <algorithm>

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "base/async.h"
#include "base/hlc.h"

namespace cairn::coordinator {

using base::kNoThrow;

BackgroundRepairer::BackgroundRepairer(ClusterCoordinator* coordinator, replica::Replica* local,
                                       uint32_t self, BackgroundRepairOptions options,
                                       asio::any_io_executor executor)
    : coordinator_(coordinator),
      local_(local),
      self_(self),
      options_(options),
      timer_(executor),
      watch_timer_(executor),
      scrub_timer_(executor) {}

void BackgroundRepairer::Stop() {
  stopping_ = true;
  asio::post(timer_.get_executor(), [this] {
    timer_.cancel();
    watch_timer_.cancel();
    scrub_timer_.cancel();
  });
}

BackgroundRepairer::Counters BackgroundRepairer::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

asio::awaitable<bool> BackgroundRepairer::Sleep(asio::steady_timer& timer,
                                                std::chrono::steady_clock::duration d) {
  if (stopping_) co_return false;
  if (d <= std::chrono::steady_clock::duration::zero()) co_return true;
  timer.expires_after(d);
  co_await timer.async_wait(kNoThrow);
  co_return !stopping_;
}

asio::awaitable<bool> BackgroundRepairer::Scrub() {
  if (scrubbing_) co_return !stopping_;
  scrubbing_ = true;
  corruptions_seen_ = local_->corruptions_seen();
  const auto start = std::chrono::steady_clock::now();
  uint64_t bytes = 0;
  uint32_t files = 0, corrupt = 0;
  for (const storage::Engine::TableFile& file : local_->DataFiles()) {
    if (stopping_) break;
    auto check = co_await local_->ScrubFile(file);
    ++files;
    bytes += file.bytes;
    const bool found = check.ok() && !check->corrupt.empty();
    if (!check.ok()) {
      spdlog::warn("scrub of {}: {}", file.name, check.status().ToString());
    } else if (found) {
      ++corrupt;
      for (const auto& range : check->ranges_dropped) to_repair_.insert(range);
      std::lock_guard lock(mu_);
      ++counters_.corrupt_files;
      counters_.ranges_dropped += check->ranges_dropped.size();
      counters_.ranges_to_repair = to_repair_.size();
    }
    {
      std::lock_guard lock(mu_);
      ++counters_.files_scrubbed;
      counters_.bytes_scrubbed += file.bytes;
    }
    // The ranges a corrupt file took with it are repaired at once, not after the scrub.
    if (found) co_await RepairDropped();
    if (options_.scrub_bytes_per_second > 0) {
      const auto due =
          start +
          std::chrono::duration_cast<std::chrono::steady_clock::duration>(
              std::chrono::duration<double>(static_cast<double>(bytes) /
                                            static_cast<double>(options_.scrub_bytes_per_second)));
      if (!co_await Sleep(scrub_timer_, due - std::chrono::steady_clock::now())) break;
    }
  }
  scrubbing_ = false;
  if (stopping_) co_return false;
  {
    std::lock_guard lock(mu_);
    ++counters_.scrubs;
  }
  spdlog::log(corrupt > 0 ? spdlog::level::err : spdlog::level::info,
              "scrub: {} table files ({} bytes) checked in {:.1f} s, {} corrupt", files, bytes,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
              corrupt);
  co_return true;
}

asio::awaitable<void> BackgroundRepairer::RepairDropped() {
  if (to_repair_.empty()) co_return;
  auto keyspaces = coordinator_->ListKeyspaces();
  if (!keyspaces.ok()) co_return;
  const std::set<std::pair<uint32_t, uint32_t>> ranges = to_repair_;
  for (const auto& [partition, keyspace] : ranges) {
    if (stopping_) co_return;
    auto ks = std::find_if(keyspaces->begin(), keyspaces->end(),
                           [&](const cluster::KeyspaceDef& k) { return k.id == keyspace; });
    if (ks == keyspaces->end()) {  // dropped since: nothing to repair
      to_repair_.erase({partition, keyspace});
      continue;
    }
    const RepairRunStep untracked;  // not a run of `cairn repair`: /metrics counts it
    auto report = co_await coordinator_->RepairRange(ks->name, partition, self_,
                                                     /*only_as_first=*/false, untracked);
    if (!report.ok() || !report->skipped.empty()) {
      spdlog::warn("repair of partition {} of keyspace {} after a scrub: {} (will retry)",
                   partition, ks->name, report.ok() ? report->skipped : report.status().ToString());
      continue;
    }
    to_repair_.erase({partition, keyspace});
    std::lock_guard lock(mu_);
    counters_.keys_repaired += report->keys_repaired;
    counters_.bytes += report->bytes;
  }
  std::lock_guard lock(mu_);
  counters_.ranges_to_repair = to_repair_.size();
}

asio::awaitable<void> BackgroundRepairer::Watch() {
  auto last_retry = std::chrono::steady_clock::now();
  while (co_await Sleep(watch_timer_, options_.watch_interval)) {
    if (!scrubbing_ && local_->corruptions_seen() != corruptions_seen_) {
      spdlog::error("storage met a corrupt block: scrubbing every table file now");
      if (!co_await Scrub()) break;
    }
    if (!to_repair_.empty() &&
        std::chrono::steady_clock::now() - last_retry > 5 * options_.watch_interval) {
      last_retry = std::chrono::steady_clock::now();
      co_await RepairDropped();
    }
  }
}

asio::awaitable<void> BackgroundRepairer::Run() {
  asio::co_spawn(watch_timer_.get_executor(), Watch(), asio::detached);
  if (options_.interval.count() == 0) co_return;
  // The first cycle starts after a while, not with the node: a cluster starting up has better
  // things to do, and a node that restarts often does not repair more often.
  const std::chrono::steady_clock::duration first =
      options_.interval < std::chrono::seconds(60) ? options_.interval : std::chrono::seconds(60);
  bool go_on = co_await Sleep(timer_, first);
  while (go_on) go_on = co_await Cycle();
}

asio::awaitable<bool> BackgroundRepairer::Cycle() {
  const auto start = std::chrono::steady_clock::now();
  if (!co_await Scrub()) co_return false;
  auto keyspaces = coordinator_->ListKeyspaces();
  const uint32_t partitions = coordinator_->partition_count();
  if (!keyspaces.ok() || keyspaces->empty() || partitions == 0) {
    co_return co_await Sleep(timer_, std::chrono::seconds(60));
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
      const RepairRunStep untracked;  // not a run of `cairn repair`: /metrics counts it
      auto report =
          co_await coordinator_->RepairRange(ks.name, p, self_, /*only_as_first=*/true, untracked);
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
      if (!co_await Sleep(timer_, wait)) co_return false;
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
  co_return co_await Sleep(timer_, start + options_.interval - std::chrono::steady_clock::now());
}

}  // namespace cairn::coordinator
