#include "base/hlc.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace cairn::base {
namespace {

class FakeClock final : public PhysicalClock {
 public:
  explicit FakeClock(uint64_t ms) : ms_(ms) {}
  uint64_t NowMillis() override { return ms_; }
  void Set(uint64_t ms) { ms_ = ms; }

 private:
  std::atomic<uint64_t> ms_;
};

// Records reservations like the meta column family would.
struct ReservationLog {
  std::vector<uint64_t> bounds;
  HybridClock::ReserveFn Fn() {
    return [this](uint64_t b) { bounds.push_back(b); };
  }
  uint64_t last() const { return bounds.empty() ? 0 : bounds.back(); }
};

TEST(HybridClockTest, FollowsWallClock) {
  FakeClock wall(1'000'000);
  ReservationLog log;
  HybridClock clock(&wall, 0, log.Fn());
  const uint64_t t = clock.Now();
  EXPECT_EQ(HybridClock::Millis(t), 1'000'000u);
  wall.Set(1'000'500);
  EXPECT_EQ(clock.Now(), HybridClock::Make(1'000'500, 0));
}

TEST(HybridClockTest, StrictlyIncreasingWhenWallClockStandsStill) {
  FakeClock wall(5000);
  ReservationLog log;
  HybridClock clock(&wall, 0, log.Fn());
  uint64_t prev = clock.Now();
  for (int i = 0; i < 1000; ++i) {
    const uint64_t next = clock.Now();
    EXPECT_GT(next, prev);
    prev = next;
  }
  EXPECT_EQ(HybridClock::Millis(prev), 5000u);
}

TEST(HybridClockTest, ToleratesWallClockGoingBackwards) {
  FakeClock wall(10'000);
  ReservationLog log;
  HybridClock clock(&wall, 0, log.Fn());
  const uint64_t before = clock.Now();
  wall.Set(9'000);  // NTP step back by a second
  const uint64_t after = clock.Now();
  EXPECT_GT(after, before);
  EXPECT_EQ(HybridClock::Millis(after), 10'000u);  // logical part counts, millis stay
  wall.Set(10'001);                                // wall clock catches up
  EXPECT_EQ(clock.Now(), HybridClock::Make(10'001, 0));
}

TEST(HybridClockTest, LogicalOverflowCarriesIntoMillis) {
  FakeClock wall(100);
  ReservationLog log;
  HybridClock clock(&wall, 0, log.Fn());
  uint64_t last = 0;
  for (int i = 0; i < 0x10000 + 5; ++i) last = clock.Now();
  EXPECT_EQ(HybridClock::Millis(last), 101u);
}

TEST(HybridClockTest, ObserveOrdersLaterTimestampsAfterRemoteOnes) {
  FakeClock wall(1000);
  ReservationLog log;
  HybridClock clock(&wall, 0, log.Fn());
  const uint64_t remote = HybridClock::Make(5000, 42);  // a peer's clock runs 4 s ahead
  clock.Observe(remote);
  EXPECT_GT(clock.Now(), remote);
  clock.Observe(HybridClock::Make(10, 0));  // older: no effect
  EXPECT_EQ(HybridClock::Millis(clock.Now()), 5000u);
}

TEST(HybridClockTest, NeverIssuesBeyondPersistedReservation) {
  FakeClock wall(1000);
  ReservationLog log;
  HybridClock clock(&wall, 0, log.Fn(), {.reserve_ahead_ms = 100});
  for (uint64_t ms = 1000; ms < 3000; ms += 7) {
    wall.Set(ms);
    const uint64_t t = clock.Now();
    ASSERT_FALSE(log.bounds.empty());
    EXPECT_LE(HybridClock::Millis(t), log.last());
  }
  // Reservations are made in steps, not on every call.
  EXPECT_LT(log.bounds.size(), 40u);
}

TEST(HybridClockTest, MonotonicAcrossRestartEvenWhenWallClockWentBack) {
  FakeClock wall(100'000);
  ReservationLog log;
  uint64_t last_issued = 0;
  {
    HybridClock clock(&wall, 0, log.Fn());
    for (int i = 0; i < 100; ++i) last_issued = clock.Now();
  }
  // The machine restarts with its clock set back by a minute.
  wall.Set(40'000);
  HybridClock restarted(&wall, log.last(), log.Fn());
  EXPECT_GT(restarted.Now(), last_issued);
}

TEST(HybridClockTest, MaintainReservationKeepsNowOffTheSlowPath) {
  FakeClock wall(1000);
  ReservationLog log;
  HybridClock clock(&wall, 0, log.Fn(), {.reserve_ahead_ms = 1000});
  clock.MaintainReservation();
  EXPECT_EQ(log.last(), 2000u);
  const size_t reservations = log.bounds.size();
  wall.Set(1400);
  (void)clock.Now();
  EXPECT_EQ(log.bounds.size(), reservations);  // 1400 is covered: no inline persist
  wall.Set(1600);
  clock.MaintainReservation();  // less than half the window remains: extend
  EXPECT_EQ(log.last(), 2600u);
}

TEST(HybridClockTest, ThreadsNeverSeeTheSameTimestamp) {
  FakeClock wall(1000);
  ReservationLog log;
  std::mutex log_mu;
  HybridClock clock(&wall, 0, [&](uint64_t b) {
    std::lock_guard l(log_mu);
    log.bounds.push_back(b);
  });
  std::vector<std::vector<uint64_t>> seen(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) seen[t].push_back(clock.Now());
    });
  }
  for (auto& th : threads) th.join();
  std::vector<uint64_t> all;
  for (auto& v : seen) {
    for (size_t i = 1; i < v.size(); ++i) ASSERT_GT(v[i], v[i - 1]);
    all.insert(all.end(), v.begin(), v.end());
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end());
}

}  // namespace
}  // namespace cairn::base
