// The phi-accrual failure detector (Hayashibara et al.), as Cassandra and Akka use it: instead of
// a fixed timeout, it turns the time since a peer's last heartbeat into a suspicion level phi,
// scaled by how regularly that peer's heartbeats have been arriving.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>

namespace cairn::cluster {

// Not thread-safe: owned by the gossiper (one reactor).
class PhiAccrualDetector {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    // A peer is DOWN when phi reaches this. 8 means: if heartbeats were on time, a gap this long
    // would happen about once in 10^8 intervals.
    double threshold = 8.0;
    // Intervals remembered for the mean.
    size_t window = 1000;
    // Floor of the mean interval, so a burst of fast heartbeats does not make phi jumpy.
    std::chrono::milliseconds min_mean{100};
    // Assumed interval before any has been observed.
    std::chrono::milliseconds initial_interval{1000};
    // Gaps longer than this many initial intervals are outages, not intervals: they are not
    // learnt (else one long pause would make the next failure take minutes to notice).
    double max_interval_factor = 10.0;
  };

  explicit PhiAccrualDetector(Options options) : options_(options) {}
  PhiAccrualDetector() : PhiAccrualDetector(Options()) {}

  // A heartbeat of the peer arrived (its heartbeat counter advanced) at `now`.
  void Heartbeat(Clock::time_point now);

  // The suspicion level at `now`: 0 right after a heartbeat, growing linearly with the silence
  // (exponential model of arrival intervals: phi = silence / mean * log10(e)).
  double Phi(Clock::time_point now) const;

  bool Available(Clock::time_point now) const { return Phi(now) < options_.threshold; }
  bool has_heartbeat() const { return has_last_; }
  // Forgets everything (the peer restarted).
  void Reset();

 private:
  double MeanMillis() const;

  const Options options_;
  std::deque<double> intervals_ms_;
  double sum_ms_ = 0;
  Clock::time_point last_{};
  bool has_last_ = false;
};

}  // namespace cairn::cluster
