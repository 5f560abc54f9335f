#include "base/histogram.h"

#include <algorithm>
#include <cmath>
#include <random>

#include <gtest/gtest.h>

namespace cairn::base {
namespace {

TEST(HistogramTest, ExactForSmallValues) {
  Histogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 100u);
  EXPECT_EQ(h.Percentile(50), 50u);
  EXPECT_EQ(h.Percentile(99), 99u);
  EXPECT_EQ(h.Percentile(100), 100u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
}

TEST(HistogramTest, RelativeErrorIsBounded) {
  std::mt19937_64 rng(7);
  std::vector<uint64_t> values;
  Histogram h;
  for (int i = 0; i < 100'000; ++i) {
    const uint64_t v = 1000 + rng() % 50'000'000;  // 1 us .. 50 ms in ns
    values.push_back(v);
    h.Record(v);
  }
  std::sort(values.begin(), values.end());
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    const uint64_t exact = values[static_cast<size_t>(std::ceil(p / 100 * values.size())) - 1];
    const uint64_t got = h.Percentile(p);
    EXPECT_GE(got, exact) << p;
    EXPECT_LE(static_cast<double>(got), exact * (1 + 1.0 / 128)) << p;
  }
}

TEST(HistogramTest, MergeAddsCounts) {
  Histogram a, b;
  for (int i = 0; i < 10; ++i) a.Record(10);
  for (int i = 0; i < 30; ++i) b.Record(1'000'000);
  a.Merge(b);
  EXPECT_EQ(a.count(), 40u);
  EXPECT_EQ(a.Percentile(25), 10u);
  EXPECT_GE(a.Percentile(26), 1'000'000u);
  EXPECT_EQ(a.max(), 1'000'000u);
  Histogram empty;
  EXPECT_EQ(empty.Percentile(99), 0u);
  EXPECT_EQ(empty.min(), 0u);
}

TEST(HistogramTest, HandlesExtremes) {
  Histogram h;
  h.Record(0);
  h.Record(UINT64_MAX);
  EXPECT_EQ(h.Percentile(50), 0u);
  EXPECT_EQ(h.Percentile(100), UINT64_MAX);
}

}  // namespace
}  // namespace cairn::base
