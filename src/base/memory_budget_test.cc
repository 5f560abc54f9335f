#include "base/memory_budget.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace cairn::base {
namespace {

TEST(MemoryBudgetTest, TryChargeFitsUpToTheLimitAndCountsRefusals) {
  MemoryBudget budget(1000);
  EXPECT_EQ(budget.per_connection(), 1000 / MemoryBudget::kConnectionShare);
  EXPECT_TRUE(budget.TryCharge(600));
  EXPECT_TRUE(budget.TryCharge(400));
  EXPECT_TRUE(budget.over());
  EXPECT_FALSE(budget.TryCharge(1));
  EXPECT_EQ(budget.used(), 1000u);  // a refusal charges nothing
  EXPECT_EQ(budget.refused(), 1u);
  budget.Release(1000);
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_FALSE(budget.over());
}

TEST(MemoryBudgetTest, ShareGivesEverythingBackWhenItEnds) {
  MemoryBudget budget(1 << 20);
  {
    MemoryShare share(&budget);
    share.Charge(500);
    EXPECT_TRUE(share.Replace(100, 300, true));  // a request of 100 answered with 300
    EXPECT_EQ(share.held(), 700u);
    EXPECT_EQ(budget.used(), 700u);
    share.SetPaused(true);
    share.SetPaused(true);  // counted once
    EXPECT_EQ(budget.paused(), 1u);
  }
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_EQ(budget.paused(), 0u);
}

TEST(MemoryBudgetTest, ReleaseNeverGivesBackMoreThanTheShareHolds) {
  MemoryBudget budget(1 << 20);
  MemoryShare other(&budget);
  other.Charge(1000);
  MemoryShare share(&budget);
  share.Charge(10);
  share.Release(50);
  EXPECT_EQ(share.held(), 0u);
  EXPECT_EQ(budget.used(), 1000u);
  EXPECT_TRUE(share.Replace(99, 5, false));  // nothing held: the reply is charged in full
  EXPECT_EQ(budget.used(), 1005u);
}

TEST(MemoryBudgetTest, LargeRepliesOfReadsAreRefusedOverTheBudgetSmallOnesNever) {
  MemoryBudget budget(4096);
  MemoryShare hog(&budget);
  hog.Charge(4000);
  MemoryShare share(&budget);
  share.Charge(40);  // a request
  EXPECT_FALSE(share.Replace(40, 2000, true));
  EXPECT_EQ(share.held(), 40u);  // unchanged: the request is still held
  EXPECT_EQ(budget.used(), 4040u);
  EXPECT_EQ(budget.refused(), 1u);
  // Its error reply, or any small reply, always fits; so does a write's reply.
  EXPECT_TRUE(share.Replace(40, MemoryBudget::kSmallReplyBytes, true));
  EXPECT_TRUE(share.Replace(0, 2000, false));
  EXPECT_EQ(budget.used(), 4000 + MemoryBudget::kSmallReplyBytes + 2000);
}

TEST(MemoryBudgetTest, OnlyConnectionsWithWorkOutstandingAreAskedToWait) {
  MemoryBudget budget(8000);
  MemoryShare share(&budget);
  EXPECT_FALSE(share.MustWait());
  share.Charge(budget.per_connection());  // its own share is full
  EXPECT_TRUE(share.MustWait());
  share.Release(budget.per_connection());
  MemoryShare hog(&budget);
  hog.Charge(8000);  // the node is full
  EXPECT_TRUE(share.MustWait());
  MemoryShare unbounded(nullptr);
  unbounded.Charge(size_t{1} << 40);
  EXPECT_FALSE(unbounded.MustWait());
  EXPECT_TRUE(unbounded.Replace(0, size_t{1} << 40, true));
}

TEST(MemoryBudgetTest, SharesOnManyThreadsSumToZero) {
  MemoryBudget budget(size_t{1} << 30);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      MemoryShare share(&budget);
      for (int i = 0; i < 100'000; ++i) {
        share.Charge(64);
        ASSERT_TRUE(share.Replace(64, 128, true));
        share.Release(128);
      }
      share.Charge(7);  // left for the destructor
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(budget.used(), 0u);
}

}  // namespace
}  // namespace cairn::base
