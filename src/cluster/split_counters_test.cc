#include "cluster/split_counters.h"

#include <set>

#include <gtest/gtest.h>

#include "base/hash.h"

namespace cairn::cluster {
namespace {

using internode::TopologyState;

uint32_t PartitionOf(std::string_view key, uint32_t bits) {
  return base::PartitionOfToken(base::Token(key), bits);
}

TEST(SplitCountersTest, SubCountersTakePartitionsOfTheirOwn) {
  for (const std::string key : {"hits", "{user:1}:likes", "", "counter{x}"}) {
    const std::vector<std::string> parts = SplitPartKeys(key, 16, 10);
    ASSERT_EQ(parts.size(), 16u);
    std::set<uint32_t> partitions{PartitionOf(key, 10)};
    for (const std::string& p : parts) {
      EXPECT_TRUE(IsSplitPartKey(p)) << p;
      EXPECT_TRUE(partitions.insert(PartitionOf(p, 10)).second) << "shared partition: " << p;
    }
    EXPECT_EQ(parts, SplitPartKeys(key, 16, 10)) << "every node must compute the same keys";
    EXPECT_NE(SplitPartKeys("other", 16, 10), parts);
  }
  // Fewer partitions than sub-counters: they share, but the keys stay distinct.
  const std::vector<std::string> crowded = SplitPartKeys("hits", 8, 2);
  EXPECT_EQ(std::set<std::string>(crowded.begin(), crowded.end()).size(), 8u);
  EXPECT_FALSE(IsSplitPartKey("hits"));
}

TEST(SplitCountersTest, PlansWalkThePhasesInOrder) {
  TopologyState s;
  s.set_epoch(7);
  EXPECT_EQ(PlanSplit(s, "default", "k", 1).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(PlanSplit(s, "default", "k", kMaxSplitShards + 1).status().code(),
            Code::kInvalidArgument);
  auto split = PlanSplit(s, "default", "k", 4);
  ASSERT_TRUE(split.ok() && split->has_value());
  s = **split;
  EXPECT_EQ(s.epoch(), 8u);
  auto lookup = SplitCounters::Of(s);
  ASSERT_NE(lookup, nullptr);
  ASSERT_NE(lookup->Find("default", "k"), nullptr);
  EXPECT_EQ(lookup->Find("default", "k")->shards, 4u);
  EXPECT_EQ(lookup->Find("other", "k"), nullptr);
  EXPECT_EQ(lookup->Find("default", "k2"), nullptr);
  // Again with the same count: nothing to do; another count: merge first.
  auto again = PlanSplit(s, "default", "k", 4);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());
  EXPECT_EQ(PlanSplit(s, "default", "k", 8).status().code(), Code::kFailedPrecondition);

  auto merging =
      PlanSplitPhase(s, "default", "k", internode::SPLIT_ACTIVE, internode::SPLIT_MERGING);
  ASSERT_TRUE(merging.ok() && merging->has_value());
  s = **merging;
  EXPECT_EQ(FindSplit(s, "default", "k")->phase, internode::SPLIT_MERGING);
  // A step made before (a merge run again) is done already.
  auto redo = PlanSplitPhase(s, "default", "k", internode::SPLIT_ACTIVE, internode::SPLIT_MERGING);
  ASSERT_TRUE(redo.ok());
  EXPECT_FALSE(redo->has_value());
  EXPECT_EQ(PlanSplit(s, "default", "k", 4).status().code(), Code::kFailedPrecondition);
  auto stripping =
      PlanSplitPhase(s, "default", "k", internode::SPLIT_MERGING, internode::SPLIT_STRIPPING);
  ASSERT_TRUE(stripping.ok() && stripping->has_value());
  auto removed = PlanSplitPhase(**stripping, "default", "k", internode::SPLIT_STRIPPING,
                                internode::SPLIT_PHASE_UNSPECIFIED);
  ASSERT_TRUE(removed.ok() && removed->has_value());
  EXPECT_EQ(SplitCounters::Of(**removed), nullptr);
  auto gone = PlanSplitPhase(**removed, "default", "k", internode::SPLIT_STRIPPING,
                             internode::SPLIT_PHASE_UNSPECIFIED);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  EXPECT_EQ(
      PlanSplitPhase(**removed, "default", "k", internode::SPLIT_ACTIVE, internode::SPLIT_MERGING)
          .status()
          .code(),
      Code::kNotFound);
}

TEST(SplitCountersTest, DroppingAKeyspaceForgetsItsSplitCounters) {
  TopologyState s;
  s = **PlanSplit(s, "a", "k", 4);
  s = **PlanSplit(s, "b", "k", 4);
  s = **PlanSplit(s, "a", "j", 2);
  const TopologyState left = WithoutSplitsOf(s, "a");
  ASSERT_EQ(left.split_counters_size(), 1);
  EXPECT_EQ(left.split_counters(0).keyspace(), "b");
}

TEST(SplitCountersTest, NoSplitWhilePartitionsMove) {
  TopologyState s;
  s.mutable_transition()->set_id(3);
  EXPECT_EQ(PlanSplit(s, "default", "k", 4).status().code(), Code::kFailedPrecondition);
}

TEST(SplitCountersTest, FoldMarksAndFrozenMarksRoundTrip) {
  FoldedBase plain = ParseFoldedBase("42");
  EXPECT_EQ(plain.number, "42");
  EXPECT_EQ(plain.folded, 0u);
  EXPECT_EQ(FormatFoldedBase(plain), "42");
  FoldedBase marked{"-17", (uint64_t{1} << 63) | 5};
  const std::string stored = FormatFoldedBase(marked);
  EXPECT_NE(stored, "-17");
  FoldedBase back = ParseFoldedBase(stored);
  EXPECT_EQ(back.number, "-17");
  EXPECT_EQ(back.folded, marked.folded);
  EXPECT_EQ(FrozenNumber(FrozenPart("12")), "12");
  EXPECT_EQ(FrozenNumber(FrozenPart("")), "");
  EXPECT_FALSE(FrozenNumber("12").has_value());
}

}  // namespace
}  // namespace cairn::cluster
