#include "base/hlc.h"

#include <algorithm>
#include <chrono>

namespace cairn::base {
namespace {

class RealClock final : public PhysicalClock {
 public:
  uint64_t NowMillis() override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  }
  uint64_t NowMicros() override {
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
  }
};

}  // namespace

PhysicalClock& SystemClock() {
  static RealClock clock;
  return clock;
}

HybridClock::HybridClock(PhysicalClock* physical, uint64_t floor_ms, ReserveFn reserve,
                         Options options)
    : physical_(physical),
      reserve_(std::move(reserve)),
      options_(options),
      // Every timestamp of the previous run had a millisecond part <= floor_ms.
      last_(Make(floor_ms, 0xffff)),
      reserved_ms_(floor_ms) {}

uint64_t HybridClock::Now() {
  const uint64_t wall = Make(physical_->NowMillis(), 0);
  std::lock_guard lock(mu_);
  last_ = std::max(last_ + 1, wall);
  CoverLocked(Millis(last_));
  return last_;
}

void HybridClock::Observe(uint64_t hlc) {
  std::lock_guard lock(mu_);
  if (hlc <= last_) return;
  last_ = hlc;
  CoverLocked(Millis(last_));
}

void HybridClock::MaintainReservation() {
  const uint64_t wall_ms = physical_->NowMillis();
  std::lock_guard lock(mu_);
  const uint64_t ms = std::max(wall_ms, Millis(last_));
  if (reserved_ms_ < ms + options_.reserve_ahead_ms / 2) {
    reserved_ms_ = ms + options_.reserve_ahead_ms;
    reserve_(reserved_ms_);
  }
}

uint64_t HybridClock::reserved_ms() const {
  std::lock_guard lock(mu_);
  return reserved_ms_;
}

void HybridClock::CoverLocked(uint64_t ms) {
  if (ms <= reserved_ms_) return;
  reserved_ms_ = ms + options_.reserve_ahead_ms;
  reserve_(reserved_ms_);
}

}  // namespace cairn::base
