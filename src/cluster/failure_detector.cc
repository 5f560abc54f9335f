#include "cluster/failure_detector.h"

#include <algorithm>

namespace cairn::cluster {
namespace {
constexpr double kLog10E = 0.4342944819032518;
}  // namespace

void PhiAccrualDetector::Heartbeat(Clock::time_point now) {
  if (has_last_) {
    const double interval = std::chrono::duration<double, std::milli>(now - last_).count();
    const double max_interval =
        static_cast<double>(options_.initial_interval.count()) * options_.max_interval_factor;
    if (interval > max_interval) {
      last_ = now;
      return;
    }
    intervals_ms_.push_back(interval);
    sum_ms_ += interval;
    if (intervals_ms_.size() > options_.window) {
      sum_ms_ -= intervals_ms_.front();
      intervals_ms_.pop_front();
    }
  }
  last_ = now;
  has_last_ = true;
}

void PhiAccrualDetector::Reset() {
  intervals_ms_.clear();
  sum_ms_ = 0;
  has_last_ = false;
}

double PhiAccrualDetector::MeanMillis() const {
  const double mean = intervals_ms_.empty() ? static_cast<double>(options_.initial_interval.count())
                                            : sum_ms_ / static_cast<double>(intervals_ms_.size());
  return std::max(mean, static_cast<double>(options_.min_mean.count()));
}

double PhiAccrualDetector::Phi(Clock::time_point now) const {
  if (!has_last_) return 0.0;
  const double silence = std::chrono::duration<double, std::milli>(now - last_).count();
  if (silence <= 0) return 0.0;
  return silence / MeanMillis() * kLog10E;
}

}  // namespace cairn::cluster
