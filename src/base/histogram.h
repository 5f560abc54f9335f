// A latency histogram with bounded relative error, fixed memory and cheap recording, in the
// spirit of HdrHistogram: 128 linear sub-buckets per power of two, so any recorded value is
// reported within 1/128 (< 0.8%) above its true value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace cairn::base {

// Not thread-safe: keep one per thread and Merge() them.
class Histogram {
 public:
  Histogram();

  void Record(uint64_t value);
  void Merge(const Histogram& other);

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }
  // The smallest bucket bound below which `percentile` percent (0..100) of the values fall.
  uint64_t Percentile(double percentile) const;

 private:
  static constexpr int kSubBucketBits = 7;
  static constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBucketBits;
  static size_t IndexOf(uint64_t value);
  static uint64_t UpperBoundOf(size_t index);

  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace cairn::base
