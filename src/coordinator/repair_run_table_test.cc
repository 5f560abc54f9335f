#include "coordinator/repair_run_table.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "proto/internode.pb.h"

namespace cairn::coordinator {
namespace {

RepairRunStep Step(uint64_t id, uint64_t index, uint64_t total) {
  RepairRunStep step;
  step.id = id;
  step.index = index;
  step.total = total;
  step.keyspaces = {"default", "ks2"};
  return step;
}

RangeRepairReport Repaired(uint64_t keys, uint64_t bytes) {
  RangeRepairReport r;
  r.keys_repaired = keys;
  r.bytes = bytes;
  r.agreed = true;
  return r;
}

RangeRepairReport Skipped(bool not_for_node) {
  RangeRepairReport r;
  r.skipped = not_for_node ? "node 3 holds no replica of it" : "a topology change is in progress";
  r.not_for_node = not_for_node;
  return r;
}

// Runs range `index` of `step`'s run from `at_ms` to `at_ms` + 10.
void RunRange(RepairRunTable& table, RepairRunStep step, uint64_t index,
              const Result<RangeRepairReport>& outcome, uint64_t at_ms) {
  step.index = index;
  table.Begin(step, "default", static_cast<uint32_t>(index), 0, at_ms);
  table.End(step, outcome, at_ms + 10);
}

std::vector<std::pair<uint32_t, RepairRunReport>> OnNode(uint32_t node,
                                                         const RepairRunTable& table) {
  std::vector<std::pair<uint32_t, RepairRunReport>> parts;
  for (RepairRunReport& r : table.Snapshot()) parts.emplace_back(node, std::move(r));
  return parts;
}

TEST(RepairRunTableTest, StepsThatCannotBelongToARunAreRefused) {
  EXPECT_TRUE(RepairRunTable::Check(RepairRunStep{}).ok());  // not a run: not tracked
  EXPECT_TRUE(RepairRunTable::Check(Step(7, 0, 1)).ok());
  EXPECT_TRUE(RepairRunTable::Check(Step(7, 9, 10)).ok());
  const Status no_total = RepairRunTable::Check(Step(7, 0, 0));
  EXPECT_EQ(no_total.code(), Code::kInvalidArgument);
  const Status past = RepairRunTable::Check(Step(7, 10, 10));
  EXPECT_EQ(past.code(), Code::kInvalidArgument);
  EXPECT_NE(past.message().find("index 10"), std::string::npos) << past.message();
}

TEST(RepairRunTableTest, RangesWithoutARunAreNotTracked) {
  RepairRunTable table;
  RunRange(table, RepairRunStep{}, 0, Repaired(5, 50), 1000);
  EXPECT_TRUE(table.Snapshot().empty());
}

TEST(RepairRunTableTest, AFinishedRunHasItsTotals) {
  RepairRunTable table;
  const RepairRunStep step = Step(42, 0, 4);
  RunRange(table, step, 0, Repaired(3, 300), 1000);
  RunRange(table, step, 1, Repaired(0, 0), 1100);
  RunRange(table, step, 2, Skipped(/*not_for_node=*/false), 1200);
  RunRange(table, step, 3, Skipped(/*not_for_node=*/true), 1300);

  const auto runs = MergeRepairRuns(OnNode(1, table), /*now_ms=*/1400);
  ASSERT_EQ(runs.size(), 1u);
  const RepairRunReport& r = runs[0];
  EXPECT_EQ(r.id, 42u);
  EXPECT_EQ(r.state, RepairRunState::kFinished);
  EXPECT_EQ(r.keyspaces, (std::vector<std::string>{"default", "ks2"}));
  EXPECT_EQ(r.ranges_total, 4u);
  EXPECT_EQ(r.ranges_done, 4u);
  EXPECT_EQ(r.ranges_repaired, 2u);
  EXPECT_EQ(r.ranges_skipped, 1u) << "a range --node filters out is done, not skipped";
  EXPECT_EQ(r.ranges_failed, 0u);
  EXPECT_EQ(r.keys_repaired, 3u);
  EXPECT_EQ(r.bytes, 300u);
  EXPECT_EQ(r.started_ms, 1000u);
  EXPECT_EQ(r.updated_ms, 1310u);
  EXPECT_EQ(r.nodes, std::vector<uint32_t>{1});
  EXPECT_EQ(r.in_flight, 0u);
  EXPECT_FALSE(r.eta_s.has_value());
  // 4 ranges in 310 ms; the pace of a finished run stops at its last range.
  EXPECT_NEAR(r.ranges_per_s, 4 / 0.31, 1e-6);
  EXPECT_NEAR(r.bytes_per_s, 300 / 0.31, 1e-6);
  EXPECT_EQ(RepairRunStateName(r.state), "finished");
}

TEST(RepairRunTableTest, ARunningRunShowsItsRangeInFlightAndAnEta) {
  RepairRunTable table;
  RepairRunStep step = Step(9, 0, 10);
  RunRange(table, step, 0, Repaired(1, 10), 0);
  RunRange(table, step, 1, Repaired(1, 10), 1000);
  step.index = 2;
  table.Begin(step, "ks2", 77, 0, 1990);
  // 2 of 10 ranges in 2 s: 8 more take 8 s.
  const auto runs = MergeRepairRuns(OnNode(1, table), /*now_ms=*/2000);
  ASSERT_EQ(runs.size(), 1u);
  const RepairRunReport& r = runs[0];
  EXPECT_EQ(r.state, RepairRunState::kRunning);
  EXPECT_EQ(r.ranges_done, 2u);
  EXPECT_EQ(r.in_flight, 1u);
  EXPECT_EQ(r.current_keyspace, "ks2");
  EXPECT_EQ(r.current_partition, 77u);
  EXPECT_NEAR(r.ranges_per_s, 1.0, 1e-9);
  ASSERT_TRUE(r.eta_s.has_value());
  EXPECT_NEAR(*r.eta_s, 8.0, 1e-9);
  // A range in flight keeps the run running however long it takes.
  const auto later = MergeRepairRuns(OnNode(1, table), 2000 + 10 * 60 * 1000);
  EXPECT_EQ(later[0].state, RepairRunState::kRunning);
}

TEST(RepairRunTableTest, ARunWhoseClientStoppedIsAbandonedAfterTwoQuietMinutes) {
  RepairRunTable table;
  const RepairRunStep step = Step(5, 0, 10);
  RunRange(table, step, 0, Repaired(0, 0), 1000);
  RunRange(table, step, 1, Repaired(0, 0), 2000);
  const uint64_t last = 2010;
  const uint64_t limit = static_cast<uint64_t>(RepairRunTable::kAbandonAfter.count());
  EXPECT_EQ(MergeRepairRuns(OnNode(1, table), last + limit)[0].state, RepairRunState::kRunning);
  const auto runs = MergeRepairRuns(OnNode(1, table), last + limit + 1);
  EXPECT_EQ(runs[0].state, RepairRunState::kAbandoned);
  EXPECT_EQ(RepairRunStateName(runs[0].state), "abandoned");
  EXPECT_FALSE(runs[0].eta_s.has_value());
  EXPECT_EQ(runs[0].ranges_done, 2u);
}

TEST(RepairRunTableTest, FailedRangesFailTheRunAndABadArgumentStopsItAtOnce) {
  RepairRunTable table;
  const RepairRunStep step = Step(1, 0, 3);
  RunRange(table, step, 0, Repaired(0, 0), 1000);
  RunRange(table, step, 1, Status::Timeout("node 2 did not answer", 1), 1100);
  auto runs = MergeRepairRuns(OnNode(1, table), 1200);
  EXPECT_EQ(runs[0].state, RepairRunState::kRunning) << "one range timed out: the run goes on";
  EXPECT_EQ(runs[0].ranges_failed, 1u);
  EXPECT_NE(runs[0].last_error.find("node 2 did not answer"), std::string::npos);
  RunRange(table, step, 2, Repaired(0, 0), 1300);
  runs = MergeRepairRuns(OnNode(1, table), 1400);
  EXPECT_EQ(runs[0].state, RepairRunState::kFailed) << "every range done, one of them failed";

  RepairRunTable other;
  RunRange(other, Step(2, 0, 50), 0, Status::InvalidArgument("keyspace 'x' does not exist"), 10);
  runs = MergeRepairRuns(OnNode(1, other), 20);
  EXPECT_EQ(runs[0].state, RepairRunState::kFailed);
  EXPECT_TRUE(runs[0].stopped);
  EXPECT_EQ(runs[0].ranges_done, 1u);
}

TEST(RepairRunTableTest, TheTableKeepsTheLatestRunsUpToItsCapacity) {
  RepairRunTable table(/*capacity=*/3);
  for (uint64_t id = 1; id <= 5; ++id) RunRange(table, Step(id, 0, 1), 0, Repaired(0, 0), id * 100);
  auto held = table.Snapshot();
  ASSERT_EQ(held.size(), 3u);
  EXPECT_EQ(held[0].id, 5u);  // the most recently updated first
  EXPECT_EQ(held[1].id, 4u);
  EXPECT_EQ(held[2].id, 3u);
  // A run with a range in flight outlives older runs that are done, however old it is.
  RepairRunStep busy = Step(6, 0, 2);
  table.Begin(busy, "default", 0, 0, 50);
  RunRange(table, Step(7, 0, 1), 0, Repaired(0, 0), 600);
  RunRange(table, Step(8, 0, 1), 0, Repaired(0, 0), 700);
  RunRange(table, Step(9, 0, 1), 0, Repaired(0, 0), 800);
  held = table.Snapshot();
  ASSERT_EQ(held.size(), 3u);
  std::vector<uint64_t> ids;
  for (const auto& r : held) ids.push_back(r.id);
  EXPECT_EQ(ids, (std::vector<uint64_t>{9, 8, 6}));
  EXPECT_EQ(RepairRunTable::kCapacity, 16u);
}

TEST(RepairRunTableTest, PartsFromSeveralNodesAddUpByRunId) {
  // A client spreading one run of 6 ranges round robin over three nodes; another run on node 2.
  RepairRunTable a, b, c;
  const RepairRunStep step = Step(77, 0, 6);
  RunRange(a, step, 0, Repaired(2, 20), 1000);
  RunRange(b, step, 1, Repaired(3, 30), 1100);
  RunRange(c, step, 2, Repaired(0, 0), 1200);
  RunRange(a, step, 3, Repaired(1, 10), 1300);
  RunRange(b, step, 4, Status::Unavailable("a replica went away"), 1400);
  RunRange(b, Step(78, 0, 1), 0, Repaired(0, 0), 5000);
  std::vector<std::pair<uint32_t, RepairRunReport>> parts = OnNode(1, a);
  for (auto& p : OnNode(2, b)) parts.push_back(std::move(p));
  // Node 3's part through the internode form, as a peer sends it.
  for (auto& [node, part] : OnNode(3, c)) {
    internode::RepairRunEntry entry;
    ToEntry(part, &entry);
    parts.emplace_back(node, FromEntry(entry));
  }
  const auto runs = MergeRepairRuns(parts, 1500);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].id, 78u);  // started last: first
  const RepairRunReport& r = runs[1];
  EXPECT_EQ(r.id, 77u);
  EXPECT_EQ(r.state, RepairRunState::kRunning);
  EXPECT_EQ(r.ranges_total, 6u);
  EXPECT_EQ(r.ranges_done, 5u);
  EXPECT_EQ(r.ranges_repaired, 4u);
  EXPECT_EQ(r.ranges_failed, 1u);
  EXPECT_EQ(r.keys_repaired, 6u);
  EXPECT_EQ(r.bytes, 60u);
  EXPECT_EQ(r.started_ms, 1000u);
  EXPECT_EQ(r.updated_ms, 1410u);
  EXPECT_EQ(r.nodes, (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(r.keyspaces, (std::vector<std::string>{"default", "ks2"}));
  EXPECT_NE(r.last_error.find("a replica went away"), std::string::npos);
}

}  // namespace
}  // namespace cairn::coordinator
