#include "bench/workload.h"

#include <map>

#include <gtest/gtest.h>

namespace cairn::bench {
namespace {

constexpr int kDraws = 200'000;

// How often each key came out of kDraws draws.
std::map<uint64_t, int> Draw(const KeyChooser& chooser, uint64_t seed) {
  Rng rng(seed);
  std::map<uint64_t, int> counts;
  for (int i = 0; i < kDraws; ++i) ++counts[chooser.Next(rng)];
  return counts;
}

TEST(ZipfianTest, MostPopularRankGetsItsShare) {
  ZipfianGenerator zipf(1000);
  // zeta(1000, 0.99) is about 7.73: rank 0 gets about 12.9% of the draws, rank 1 half of that.
  EXPECT_NEAR(zipf.TopShare(), 0.1294, 0.0005);
  Rng rng(7);
  std::map<uint64_t, int> counts;
  for (int i = 0; i < kDraws; ++i) {
    const uint64_t rank = zipf.Next(rng);
    ASSERT_LT(rank, 1000u);
    ++counts[rank];
  }
  EXPECT_NEAR(counts[0] / double(kDraws), zipf.TopShare(), 0.01);
  EXPECT_NEAR(counts[1] / double(counts[0]), 0.503, 0.03);  // 1 / 2^0.99
  // Skewed: the top 10% of ranks take most of the draws.
  int top = 0;
  for (uint64_t r = 0; r < 100; ++r) top += counts[r];
  EXPECT_GT(top / double(kDraws), 0.6);
}

TEST(KeyChooserTest, ZipfianScramblesThePopularKeys) {
  std::atomic<uint64_t> inserted{1000};
  KeyChooser chooser(KeyDistribution::kZipfian, 1000, &inserted);
  std::map<uint64_t, int> counts = Draw(chooser, 11);
  uint64_t hottest = 0;
  for (const auto& [key, n] : counts) {
    ASSERT_LT(key, 1000u);
    if (n > counts[hottest]) hottest = key;
  }
  // The hottest key is rank 0 hashed, not key 0; its share is at least rank 0's.
  EXPECT_EQ(hottest, Fnv1a64(0) % 1000);
  EXPECT_GE(counts[hottest] / double(kDraws), ZipfianGenerator(1000).TopShare() - 0.01);
}

TEST(KeyChooserTest, LatestFavoursTheNewestInserts) {
  std::atomic<uint64_t> inserted{5000};
  KeyChooser chooser(KeyDistribution::kLatest, 1000, &inserted);
  Rng rng(13);
  int newest = 0, recent = 0;
  for (int i = 0; i < kDraws; ++i) {
    const uint64_t key = chooser.Next(rng);
    ASSERT_LT(key, 5000u);
    if (key == 4999) ++newest;
    if (key >= 4900) ++recent;
  }
  EXPECT_NEAR(newest / double(kDraws), ZipfianGenerator(1000).TopShare(), 0.01);
  EXPECT_GT(recent / double(kDraws), 0.6);
  inserted = 6000;  // inserts move the hot spot
  EXPECT_GE(chooser.Next(rng), 5000u - 1000u);
}

TEST(KeyChooserTest, UniformCoversTheRangeEvenly) {
  std::atomic<uint64_t> inserted{10};
  KeyChooser chooser(KeyDistribution::kUniform, 10, &inserted);
  std::map<uint64_t, int> counts = Draw(chooser, 17);
  ASSERT_EQ(counts.size(), 10u);
  for (const auto& [key, n] : counts) {
    EXPECT_LT(key, 10u);
    EXPECT_NEAR(n, kDraws / 10, kDraws / 100) << key;
  }
}

TEST(KeyChooserTest, AHotShareGoesToKeyZeroOnTopOfTheDistribution) {
  std::atomic<uint64_t> inserted{1000};
  KeyChooser chooser(KeyDistribution::kUniform, 1000, &inserted, 0.5);
  std::map<uint64_t, int> counts = Draw(chooser, 23);
  // Half the draws, plus key 0's uniform share of the other half.
  EXPECT_NEAR(counts[0], kDraws * (0.5 + 0.5 / 1000), kDraws / 100);
  EXPECT_GT(counts.size(), 900u);  // the rest still spread over the keys
}

TEST(KeyNameTest, FixedWidthAndScanPrefixes) {
  EXPECT_EQ(KeyName(42), "bench:0000000042");
  EXPECT_EQ(ScanPrefix(12345, 2), "bench:00000123");
  EXPECT_TRUE(KeyName(12399).starts_with(ScanPrefix(12345, 2)));
  EXPECT_FALSE(KeyName(12400).starts_with(ScanPrefix(12345, 2)));
}

TEST(ValueSizesTest, ParsesFixedSizesAndRanges) {
  EXPECT_EQ(ValueSizes::Parse("100")->min(), 100u);
  EXPECT_EQ(ValueSizes::Parse("100")->max(), 100u);
  EXPECT_EQ(ValueSizes::Parse("4K")->max(), 4096u);
  EXPECT_EQ(ValueSizes::Parse("1M")->max(), 1048576u);
  auto range = ValueSizes::Parse("100..2K");
  ASSERT_TRUE(range);
  EXPECT_EQ(range->min(), 100u);
  EXPECT_EQ(range->max(), 2048u);
  EXPECT_EQ(range->ToString(), "100..2048");
  for (const char* bad : {"", "abc", "10..5", "65M", "1..", "..5", "-1", "1G"}) {
    EXPECT_FALSE(ValueSizes::Parse(bad)) << bad;
  }
}

TEST(ValueSizesTest, RangeIsUniform) {
  ValueSizes sizes(100, 300);
  Rng rng(19);
  double sum = 0;
  uint32_t lo = UINT32_MAX, hi = 0;
  for (int i = 0; i < kDraws; ++i) {
    const uint32_t s = sizes.Next(rng);
    sum += s;
    lo = std::min(lo, s);
    hi = std::max(hi, s);
  }
  EXPECT_EQ(lo, 100u);
  EXPECT_EQ(hi, 300u);
  EXPECT_NEAR(sum / kDraws, 200, 2);
  EXPECT_EQ(ValueSizes(64, 64).Next(rng), 64u);
}

TEST(WorkloadTest, MixesFollowYcsb) {
  ASSERT_FALSE(FindWorkload("z"));
  auto d = FindWorkload("d");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->distribution, KeyDistribution::kLatest);
  EXPECT_FALSE(FindWorkload("w")->needs_load());
  auto a = FindWorkload("a");
  Rng rng(23);
  std::map<Op, int> counts;
  for (int i = 0; i < kDraws; ++i) ++counts[NextOp(a->mix, rng)];
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_NEAR(counts[Op::kRead] / double(kDraws), 0.5, 0.01);
  counts.clear();
  auto e = FindWorkload("e");
  for (int i = 0; i < kDraws; ++i) ++counts[NextOp(e->mix, rng)];
  EXPECT_NEAR(counts[Op::kScan] / double(kDraws), 0.95, 0.01);
  EXPECT_NEAR(counts[Op::kInsert] / double(kDraws), 0.05, 0.01);
}

}  // namespace
}  // namespace cairn::bench
