#include "base/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace cairn::base {

Histogram::Histogram() : counts_(IndexOf(UINT64_MAX) + 1, 0) {}

size_t Histogram::IndexOf(uint64_t value) {
  if (value < kSubBuckets) return static_cast<size_t>(value);
  const int exponent = 63 - std::countl_zero(value);  // >= kSubBucketBits
  const int shift = exponent - kSubBucketBits;
  const uint64_t sub = (value >> shift) - kSubBuckets;
  return static_cast<size_t>(kSubBuckets + (exponent - kSubBucketBits) * kSubBuckets + sub);
}

uint64_t Histogram::UpperBoundOf(size_t index) {
  if (index < kSubBuckets) return index;
  const uint64_t band = (index - kSubBuckets) / kSubBuckets;  // exponent - kSubBucketBits
  const uint64_t sub = (index - kSubBuckets) % kSubBuckets;
  const uint64_t lower = (kSubBuckets + sub) << band;
  return lower + ((uint64_t{1} << band) - 1);
}

void Histogram::Record(uint64_t value) {
  ++counts_[IndexOf(value)];
  ++count_;
  sum_ += value;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void Histogram::Merge(const Histogram& other) {
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

uint64_t Histogram::Percentile(double percentile) const {
  if (count_ == 0) return 0;
  const double clamped = std::clamp(percentile, 0.0, 100.0);
  const auto target =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(clamped / 100.0 * count_)));
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= target) return std::min(UpperBoundOf(i), max_);
  }
  return max_;
}

}  // namespace cairn::base
