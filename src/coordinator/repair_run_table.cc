#include "coordinator/repair_run_table.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "proto/internode.pb.h"

namespace cairn::coordinator {

std::string_view RepairRunStateName(RepairRunState state) {
  switch (state) {
    case RepairRunState::kRunning:
      return "running";
    case RepairRunState::kFinished:
      return "finished";
    case RepairRunState::kFailed:
      return "failed";
    case RepairRunState::kAbandoned:
      return "abandoned";
  }
  return "unknown";
}

Status RepairRunTable::Check(const RepairRunStep& step) {
  if (step.id == 0) return Status::Ok();
  if (step.total == 0) {
    return Status::InvalidArgument("a repair run's range names no run total (run_total is 0)");
  }
  if (step.index >= step.total) {
    return Status::InvalidArgument(
        fmt::format("a repair run's range index {} is not below the run's total of {} ranges",
                    step.index, step.total));
  }
  return Status::Ok();
}

RepairRunReport& RepairRunTable::EntryOf(const RepairRunStep& step, uint64_t now_ms) {
  for (RepairRunReport& r : runs_) {
    if (r.id == step.id) return r;
  }
  if (runs_.size() >= capacity_ && !runs_.empty()) {
    // The least recently updated run goes, one with no range in flight if there is one.
    auto oldest = std::min_element(runs_.begin(), runs_.end(), [](const auto& a, const auto& b) {
      return std::pair(a.in_flight > 0, a.updated_ms) < std::pair(b.in_flight > 0, b.updated_ms);
    });
    runs_.erase(oldest);
  }
  RepairRunReport& r = runs_.emplace_back();
  r.id = step.id;
  r.keyspaces = step.keyspaces;
  r.partition = step.partition;
  r.started_ms = now_ms;
  r.updated_ms = now_ms;
  return r;
}

void RepairRunTable::Begin(const RepairRunStep& step, const std::string& keyspace,
                           uint32_t partition, uint32_t only_node, uint64_t now_ms) {
  if (step.id == 0) return;
  std::lock_guard lock(mu_);
  RepairRunReport& r = EntryOf(step, now_ms);
  r.ranges_total = std::max(r.ranges_total, step.total);
  r.only_node = only_node;
  r.updated_ms = std::max(r.updated_ms, now_ms);
  ++r.in_flight;
  r.current_keyspace = keyspace;
  r.current_partition = partition;
}

void RepairRunTable::End(const RepairRunStep& step, const Result<RangeRepairReport>& outcome,
                         uint64_t now_ms) {
  if (step.id == 0) return;
  std::lock_guard lock(mu_);
  // Made again if evicted while its range ran (more than kCapacity newer runs meanwhile).
  RepairRunReport& r = EntryOf(step, now_ms);
  r.ranges_total = std::max(r.ranges_total, step.total);
  r.updated_ms = std::max(r.updated_ms, now_ms);
  if (r.in_flight > 0) --r.in_flight;
  ++r.ranges_done;
  if (!outcome.ok()) {
    ++r.ranges_failed;
    r.last_error = outcome.status().ToString();
    // What `cairn repair` stops at: every other range would fail the same way.
    const Code code = outcome.status().code();
    if (code == Code::kInvalidArgument || code == Code::kNotFound) r.stopped = true;
    return;
  }
  if (!outcome->skipped.empty()) {
    if (!outcome->not_for_node) ++r.ranges_skipped;
    return;
  }
  ++r.ranges_repaired;
  r.keys_repaired += outcome->keys_repaired;
  r.bytes += outcome->bytes;
  r.tombstones_purged += outcome->tombstones_purged;
}

std::vector<RepairRunReport> RepairRunTable::Snapshot() const {
  std::vector<RepairRunReport> runs;
  {
    std::lock_guard lock(mu_);
    runs = runs_;
  }
  std::sort(runs.begin(), runs.end(),
            [](const auto& a, const auto& b) { return a.updated_ms > b.updated_ms; });
  return runs;
}

std::vector<RepairRunReport> MergeRepairRuns(
    const std::vector<std::pair<uint32_t, RepairRunReport>>& parts, uint64_t now_ms,
    std::chrono::milliseconds abandon_after) {
  std::map<uint64_t, RepairRunReport> merged;
  std::map<uint64_t, uint64_t> error_at, current_at;  // when the chosen last_error/current was
  for (const auto& [node, part] : parts) {
    auto [it, fresh] = merged.try_emplace(part.id, part);
    RepairRunReport& r = it->second;
    if (fresh) {
      r.nodes.clear();
      if (!part.last_error.empty()) error_at[part.id] = part.updated_ms;
      if (part.in_flight > 0) current_at[part.id] = part.updated_ms;
    } else {
      r.started_ms = std::min(r.started_ms, part.started_ms);
      r.updated_ms = std::max(r.updated_ms, part.updated_ms);
      r.ranges_total = std::max(r.ranges_total, part.ranges_total);
      r.ranges_done += part.ranges_done;
      r.ranges_repaired += part.ranges_repaired;
      r.ranges_skipped += part.ranges_skipped;
      r.ranges_failed += part.ranges_failed;
      r.keys_repaired += part.keys_repaired;
      r.bytes += part.bytes;
      r.tombstones_purged += part.tombstones_purged;
      r.stopped = r.stopped || part.stopped;
      r.in_flight += part.in_flight;
      if (r.keyspaces.empty()) r.keyspaces = part.keyspaces;
      if (!r.partition) r.partition = part.partition;
      if (r.only_node == 0) r.only_node = part.only_node;
      if (!part.last_error.empty() &&
          (!error_at.contains(part.id) || error_at[part.id] <= part.updated_ms)) {
        r.last_error = part.last_error;
        error_at[part.id] = part.updated_ms;
      }
      if (part.in_flight > 0 &&
          (!current_at.contains(part.id) || current_at[part.id] <= part.updated_ms)) {
        r.current_keyspace = part.current_keyspace;
        r.current_partition = part.current_partition;
        current_at[part.id] = part.updated_ms;
      }
    }
    if (std::find(r.nodes.begin(), r.nodes.end(), node) == r.nodes.end()) r.nodes.push_back(node);
  }

  std::vector<RepairRunReport> runs;
  for (auto& [id, r] : merged) {
    // A range retried by its client after a lost answer counts twice; never past the total.
    r.ranges_done = std::min(r.ranges_done, r.ranges_total);
    if (r.in_flight == 0) {
      r.current_keyspace.clear();
      r.current_partition = 0;
    }
    const uint64_t quiet_ms = now_ms > r.updated_ms ? now_ms - r.updated_ms : 0;
    if (r.stopped) {
      r.state = RepairRunState::kFailed;
    } else if (r.ranges_done >= r.ranges_total && r.in_flight == 0) {
      r.state = r.ranges_failed > 0 ? RepairRunState::kFailed : RepairRunState::kFinished;
    } else if (r.in_flight == 0 && quiet_ms > static_cast<uint64_t>(abandon_after.count())) {
      r.state = RepairRunState::kAbandoned;
    } else {
      r.state = RepairRunState::kRunning;
    }
    // The pace since its start: until now while it runs, else until its last range.
    const uint64_t until =
        r.state == RepairRunState::kRunning ? std::max(now_ms, r.updated_ms) : r.updated_ms;
    const double elapsed_s =
        until > r.started_ms ? static_cast<double>(until - r.started_ms) / 1000.0 : 0.0;
    r.ranges_per_s = elapsed_s > 0 ? static_cast<double>(r.ranges_done) / elapsed_s : 0;
    r.bytes_per_s = elapsed_s > 0 ? static_cast<double>(r.bytes) / elapsed_s : 0;
    r.eta_s.reset();
    if (r.state == RepairRunState::kRunning && r.ranges_per_s > 0) {
      r.eta_s = static_cast<double>(r.ranges_total - r.ranges_done) / r.ranges_per_s;
    }
    std::sort(r.nodes.begin(), r.nodes.end());
    runs.push_back(std::move(r));
  }
  std::sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) {
    return std::pair(a.started_ms, a.id) > std::pair(b.started_ms, b.id);
  });
  return runs;
}

void ToEntry(const RepairRunReport& run, internode::RepairRunEntry* out) {
  out->set_id(run.id);
  for (const std::string& ks : run.keyspaces) out->add_keyspaces(ks);
  if (run.partition) out->set_partition(*run.partition);
  out->set_only_node(run.only_node);
  out->set_started_ms(run.started_ms);
  out->set_updated_ms(run.updated_ms);
  out->set_ranges_total(run.ranges_total);
  out->set_ranges_done(run.ranges_done);
  out->set_ranges_repaired(run.ranges_repaired);
  out->set_ranges_skipped(run.ranges_skipped);
  out->set_ranges_failed(run.ranges_failed);
  out->set_keys_repaired(run.keys_repaired);
  out->set_bytes(run.bytes);
  out->set_tombstones_purged(run.tombstones_purged);
  out->set_last_error(run.last_error);
  out->set_stopped(run.stopped);
  out->set_in_flight(run.in_flight);
  out->set_current_keyspace(run.current_keyspace);
  out->set_current_partition(run.current_partition);
}

RepairRunReport FromEntry(const internode::RepairRunEntry& e) {
  RepairRunReport r;
  r.id = e.id();
  r.keyspaces.assign(e.keyspaces().begin(), e.keyspaces().end());
  if (e.has_partition()) r.partition = e.partition();
  r.only_node = e.only_node();
  r.started_ms = e.started_ms();
  r.updated_ms = e.updated_ms();
  r.ranges_total = e.ranges_total();
  r.ranges_done = e.ranges_done();
  r.ranges_repaired = e.ranges_repaired();
  r.ranges_skipped = e.ranges_skipped();
  r.ranges_failed = e.ranges_failed();
  r.keys_repaired = e.keys_repaired();
  r.bytes = e.bytes();
  r.tombstones_purged = e.tombstones_purged();
  r.last_error = e.last_error();
  r.stopped = e.stopped();
  r.in_flight = e.in_flight();
  r.current_keyspace = e.current_keyspace();
  r.current_partition = e.current_partition();
  return r;
}

}  // namespace cairn::coordinator
