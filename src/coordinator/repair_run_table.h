// RepairRunTable: the `cairn repair` runs whose ranges this node repaired lately, each with its
// progress here. `cairn repair` sends a run's ranges one by one, each tagged with the run's id,
// its index and the run's total (RepairRunStep), to the node it talks to; a client library given
// several servers spreads them round robin. So no node need see a whole run: GET /v1/repairs asks
// every live node for its table and adds up each run's parts by id (MergeRepairRuns).
//
// The table is small and bounded: the last kCapacity runs by their latest range; an older one
// goes when a new run arrives. It lives in memory only: a restarted node forgets its part.
//
// Thread safety: every method may be called from any thread (one mutex, taken twice per range
// repaired and once per listing: never on a client's data path).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "cairn/status.h"
#include "coordinator/coordinator.h"

namespace cairn::internode {
class RepairRunEntry;
}  // namespace cairn::internode

namespace cairn::coordinator {

class RepairRunTable {
 public:
  static constexpr size_t kCapacity = 16;
  // A run none of whose ranges began or ended here for this long, and none in flight, is
  // abandoned (its client stopped before its last range).
  static constexpr std::chrono::milliseconds kAbandonAfter{std::chrono::minutes(2)};

  explicit RepairRunTable(size_t capacity = kCapacity) : capacity_(capacity) {}

  // INVALID_ARGUMENT for a step that cannot belong to a run: a total of 0, an index not below
  // it. Steps with id 0 (no run) are fine: they are not tracked.
  static Status Check(const RepairRunStep& step);

  // Range (`keyspace`, `partition`) of run `step` begins (a checked step with an id), at `now_ms`.
  void Begin(const RepairRunStep& step, const std::string& keyspace, uint32_t partition,
             uint32_t only_node, uint64_t now_ms);
  // ... and ends, with `outcome`. Each Begin() is followed by one End() of the same step.
  void End(const RepairRunStep& step, const Result<RangeRepairReport>& outcome, uint64_t now_ms);

  // This node's part of each run it holds, the most recently updated first. `state`, `nodes`
  // and the rates are left for MergeRepairRuns.
  std::vector<RepairRunReport> Snapshot() const;

 private:
  // The entry of run `step`, made (evicting the least recently updated one when full) if new.
  RepairRunReport& EntryOf(const RepairRunStep& step, uint64_t now_ms);

  const size_t capacity_;
  mutable std::mutex mu_;
  std::vector<RepairRunReport> runs_;  // guarded by mu_; at most capacity_
};

// Each run of `parts` (node id, that node's part: Snapshot()'s entries) with its parts added up,
// its state as of `now_ms`, the newest first.
std::vector<RepairRunReport> MergeRepairRuns(
    const std::vector<std::pair<uint32_t, RepairRunReport>>& parts, uint64_t now_ms,
    std::chrono::milliseconds abandon_after = RepairRunTable::kAbandonAfter);

// A part of a run to and from its internode form (RepairRunsResponse).
void ToEntry(const RepairRunReport& run, internode::RepairRunEntry* out);
RepairRunReport FromEntry(const internode::RepairRunEntry& entry);

}  // namespace cairn::coordinator
