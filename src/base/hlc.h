// The hybrid logical clock that stamps every write with a version.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>

namespace cairn::base {

// The wall clock, behind an interface so that tests can inject time (including time that jumps
// backwards).
class PhysicalClock {
 public:
  virtual ~PhysicalClock() = default;
  // Milliseconds since the Unix epoch.
  virtual uint64_t NowMillis() = 0;
  // Microseconds since the Unix epoch (Redis's TIME); clocks that only keep milliseconds give
  // those.
  virtual uint64_t NowMicros() { return NowMillis() * 1000; }
};

// The system's real-time clock. Thread-safe; lives forever.
PhysicalClock& SystemClock();

// Another clock shifted by a fixed offset: how tests give one node a skewed clock
// (cairnd --debug-clock-skew-ms).
class OffsetClock final : public PhysicalClock {
 public:
  OffsetClock(PhysicalClock* base, int64_t offset_ms) : base_(base), offset_ms_(offset_ms) {}
  uint64_t NowMillis() override {
    return static_cast<uint64_t>(static_cast<int64_t>(base_->NowMillis()) + offset_ms_);
  }
  uint64_t NowMicros() override {
    return static_cast<uint64_t>(static_cast<int64_t>(base_->NowMicros()) + offset_ms_ * 1000);
  }

 private:
  PhysicalClock* const base_;
  const int64_t offset_ms_;
};

// HybridClock issues timestamps `physical_ms << 16 | logical` that are
//  - strictly increasing across all callers of this process, even when the wall clock goes back
//    (the logical part counts up, carrying into the millisecond part when it overflows);
//  - strictly greater than every timestamp issued by earlier runs on the same data directory:
//    the clock never issues a timestamp whose millisecond part is beyond a reservation that has
//    been persisted first, and a new run starts above the last persisted reservation;
//  - greater than every timestamp passed to Observe() (so causally later writes order later).
//
// Persisting a reservation is synchronous (an fsync). MaintainReservation(), called about every
// 200 ms from a background thread, keeps the reservation ahead of the wall clock so that Now()
// only persists inline when that thread has fallen behind or the wall clock jumped forward.
//
// Thread safety: all methods may be called from any thread.
class HybridClock {
 public:
  // Durably records that timestamps up to `bound_ms` (milliseconds part) may have been issued.
  // Called with the clock's lock held; must not call back into the clock. It cannot fail: a
  // function that cannot persist must end the process, since issuing an unreserved timestamp
  // could break monotonicity after a restart.
  using ReserveFn = std::function<void(uint64_t bound_ms)>;

  struct Options {
    // How far ahead of the wall clock a reservation reaches. Also the most by which a restarted
    // node's first timestamps can run ahead of its wall clock.
    uint64_t reserve_ahead_ms = 2000;
  };

  // `floor_ms`: the reservation persisted by the previous run (0 for a new data directory).
  HybridClock(PhysicalClock* physical, uint64_t floor_ms, ReserveFn reserve, Options options);
  HybridClock(PhysicalClock* physical, uint64_t floor_ms, ReserveFn reserve)
      : HybridClock(physical, floor_ms, std::move(reserve), Options()) {}

  // A new timestamp, greater than every one issued or observed before.
  uint64_t Now();
  // The wall clock this clock reads (tests inject one, and --debug-clock-skew-ms offsets it): what
  // every other reading of wall time on the node goes through, so injected time reaches it all.
  PhysicalClock& physical() const { return *physical_; }

  // Merges a timestamp from elsewhere (another node, or an existing version that a conditional
  // write must order after): every later Now() is greater than `hlc`.
  void Observe(uint64_t hlc);

  // Extends the persisted reservation when less than half of reserve_ahead_ms remains.
  void MaintainReservation();

  // The millisecond bound persisted last (for tests and diagnostics).
  uint64_t reserved_ms() const;

  static constexpr uint64_t Millis(uint64_t hlc) { return hlc >> 16; }
  static constexpr uint64_t Make(uint64_t millis, uint64_t logical) {
    return millis << 16 | logical;
  }

 private:
  // Ensures timestamps with millisecond part `ms` are covered by a persisted reservation.
  void CoverLocked(uint64_t ms);

  // Constant after construction.
  PhysicalClock* const physical_;
  const ReserveFn reserve_;
  const Options options_;

  mutable std::mutex mu_;
  uint64_t last_;         // guarded by mu_: the greatest timestamp issued or observed
  uint64_t reserved_ms_;  // guarded by mu_
};

}  // namespace cairn::base
