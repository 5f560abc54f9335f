#include "base/hot_keys.h"

#include <random>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace cairn::base {
namespace {

using namespace std::chrono_literals;

HotKeys::Options Exact(size_t capacity = 128) {
  HotKeys::Options o;
  o.capacity = capacity;
  o.sample = 1;
  o.window = 10s;
  return o;
}

TEST(HotKeysTest, AKeyAboveOneKthOfTheLoadIsFoundWithABoundedOvercount) {
  // 200,000 operations: 3% on one key, 1% on another, the rest spread over a million keys.
  HotKeys hot(Exact(64));
  std::mt19937_64 rng(42);
  const auto t0 = HotKeys::Clock::now();
  uint64_t hot_reads = 0, warm_writes = 0;
  for (int i = 0; i < 200'000; ++i) {
    const uint64_t r = rng() % 100;
    if (r < 3) {
      hot.AddAt(1, "hot", false, t0);
      ++hot_reads;
    } else if (r < 4) {
      hot.AddAt(1, "warm", true, t0);
      ++warm_writes;
    } else {
      hot.AddAt(1, fmt::format("k{}", rng() % 1'000'000), rng() % 2 == 0, t0);
    }
  }
  // Ten seconds later: one window ended, the rates are over those ten seconds (and the moment
  // between the sketch's start and t0: hence the slack).
  const auto top = hot.Top(0, 5, t0 + 10s);
  ASSERT_GE(top.size(), 2u);
  EXPECT_EQ(top[0].key, "hot");
  EXPECT_EQ(top[1].key, "warm");
  // Counted ones are never low; the overcount is at most the error reported.
  const double hot_rate = static_cast<double>(hot_reads) / 10;
  EXPECT_GE(top[0].reads_per_s + top[0].error_per_s, hot_rate * 0.999);
  EXPECT_LE(top[0].reads_per_s, hot_rate);
  EXPECT_EQ(top[0].writes_per_s, 0);
  const double warm_rate = static_cast<double>(warm_writes) / 10;
  EXPECT_GE(top[1].writes_per_s + top[1].error_per_s, warm_rate * 0.999);
  EXPECT_LE(top[1].writes_per_s, warm_rate);
  EXPECT_EQ(top[1].reads_per_s, 0);
}

TEST(HotKeysTest, KeysOfOneKeyspaceAreReportedApartFromTheSameKeyInAnother) {
  HotKeys hot(Exact());
  const auto t0 = HotKeys::Clock::now();
  for (int i = 0; i < 30; ++i) hot.AddAt(1, "k", false, t0);
  for (int i = 0; i < 10; ++i) hot.AddAt(2, "k", true, t0);
  const auto all = hot.Top(0, 10, t0 + 10s);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].keyspace, 1u);
  EXPECT_NEAR(all[0].reads_per_s, 3.0, 0.01);
  EXPECT_EQ(all[1].keyspace, 2u);
  EXPECT_NEAR(all[1].writes_per_s, 1.0, 0.01);
  const auto two = hot.Top(2, 10, t0 + 10s);
  ASSERT_EQ(two.size(), 1u);
  EXPECT_EQ(two[0].keyspace, 2u);
}

TEST(HotKeysTest, AKeyThatStopsBeingHotLeavesWithinTwoWindows) {
  HotKeys hot(Exact());
  const auto t0 = HotKeys::Clock::now();
  for (int i = 0; i < 1000; ++i) hot.AddAt(1, "was-hot", false, t0);
  EXPECT_EQ(hot.Top(0, 10, t0 + 5s).size(), 1u);
  EXPECT_EQ(hot.Top(0, 10, t0 + 15s).size(), 1u) << "still in the previous window";
  for (int i = 0; i < 10; ++i) hot.AddAt(1, "now", false, t0 + 21s);
  const auto top = hot.Top(0, 10, t0 + 21s);
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].key, "now");
  EXPECT_TRUE(hot.Top(0, 10, t0 + 60s).empty());
}

TEST(HotKeysTest, SampledCountsEstimateTheRate) {
  HotKeys::Options o = Exact();
  o.sample = 8;
  HotKeys hot(o);
  // 80,000 reads of one key and as many of others within the first window's time.
  for (int i = 0; i < 80'000; ++i) {
    hot.Add(1, "hot", false);
    hot.Add(1, fmt::format("cold{}", i), false);
  }
  const auto top = hot.Top(1, 1, HotKeys::Clock::now() + 10s);
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].key, "hot");
  // 8,000 a second over the ten seconds, within 10% (one in eight sampled at random).
  EXPECT_NEAR(top[0].reads_per_s, 8000, 800);
}

TEST(HotKeysTest, KeysAboveTheRateArePickedHotAndOnlyThey) {
  HotKeys::Options o = Exact();
  o.hot_ops_per_s = 50;
  HotKeys hot(o);
  const auto t0 = HotKeys::Clock::now();
  EXPECT_FALSE(hot.AnyHot());
  for (int i = 0; i < 1000; ++i) hot.AddAt(3, "hot", false, t0);  // 100/s over 10 s
  for (int i = 0; i < 100; ++i) hot.AddAt(3, "warm", true, t0);   // 10/s
  hot.PickHot(t0 + 10s);
  EXPECT_TRUE(hot.AnyHot());
  EXPECT_TRUE(hot.IsHot(3, "hot"));
  EXPECT_FALSE(hot.IsHot(3, "warm"));
  EXPECT_FALSE(hot.IsHot(4, "hot")) << "the same key in another keyspace";
  // Once it cools down (nothing for two windows), no key is hot.
  hot.PickHot(t0 + 60s);
  EXPECT_FALSE(hot.AnyHot());
  EXPECT_FALSE(hot.IsHot(3, "hot"));
}

TEST(HotKeysTest, LongKeysAreKeptCutAndSaySo) {
  HotKeys hot(Exact());
  const std::string key(1000, 'x');
  const auto t0 = HotKeys::Clock::now();
  hot.AddAt(1, key, true, t0);
  const auto top = hot.Top(0, 1, t0 + 10s);
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].key, key.substr(0, HotKeys::kMaxKeyBytes));
  EXPECT_TRUE(top[0].truncated);
}

}  // namespace
}  // namespace cairn::base
