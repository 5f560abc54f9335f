#include "cluster/failure_detector.h"

#include <gtest/gtest.h>

namespace cairn::cluster {
namespace {

using namespace std::chrono_literals;
using Clock = PhiAccrualDetector::Clock;

TEST(PhiAccrualDetectorTest, RegularHeartbeatsKeepPeerUp) {
  PhiAccrualDetector d;
  Clock::time_point t{};
  for (int i = 0; i < 100; ++i) {
    d.Heartbeat(t);
    EXPECT_TRUE(d.Available(t + 900ms));
    t += 1s;
  }
  EXPECT_LT(d.Phi(t - 1s + 1s), 1.0);
}

TEST(PhiAccrualDetectorTest, SilenceRaisesPhiUntilDown) {
  PhiAccrualDetector d;  // threshold 8
  Clock::time_point t{};
  for (int i = 0; i < 20; ++i) {
    d.Heartbeat(t);
    t += 1s;
  }
  const Clock::time_point last = t - 1s;
  EXPECT_TRUE(d.Available(last + 5s));
  // phi = silence/mean * log10(e): with a 1 s mean it reaches 8 after about 18.4 s.
  EXPECT_TRUE(d.Available(last + 18s));
  EXPECT_FALSE(d.Available(last + 19s));
  EXPECT_GT(d.Phi(last + 10s), d.Phi(last + 5s));
}

TEST(PhiAccrualDetectorTest, ScalesWithTheObservedInterval) {
  PhiAccrualDetector fast, slow;
  Clock::time_point t{};
  for (int i = 0; i < 50; ++i) {
    fast.Heartbeat(t + i * 200ms);
    slow.Heartbeat(t + i * 2s);
  }
  // The same 3 s silence is alarming for a 200 ms peer and unremarkable for a 2 s one.
  EXPECT_FALSE(fast.Available(t + 49 * 200ms + 4s));
  EXPECT_TRUE(slow.Available(t + 49 * 2s + 4s));
}

TEST(PhiAccrualDetectorTest, ComesBackUpOnHeartbeat) {
  PhiAccrualDetector d;
  Clock::time_point t{};
  for (int i = 0; i < 10; ++i) d.Heartbeat(t + i * 1s);
  const auto later = t + 60s;
  EXPECT_FALSE(d.Available(later));
  d.Heartbeat(later);
  EXPECT_TRUE(d.Available(later + 100ms));
}

TEST(PhiAccrualDetectorTest, AnOutageIsNotLearntAsAnInterval) {
  PhiAccrualDetector d;
  Clock::time_point t{};
  for (int i = 0; i < 60; ++i) d.Heartbeat(t + i * 1s);
  // Down for ten minutes, then back: the next silence must be noticed as fast as before.
  const auto back = t + 59s + 600s;
  d.Heartbeat(back);
  for (int i = 1; i <= 5; ++i) d.Heartbeat(back + i * 1s);
  EXPECT_FALSE(d.Available(back + 5s + 20s));
  d.Reset();
  EXPECT_FALSE(d.has_heartbeat());
}

TEST(PhiAccrualDetectorTest, NoHeartbeatYetIsNotSuspected) {
  PhiAccrualDetector d;
  EXPECT_EQ(d.Phi(Clock::time_point{} + 1h), 0.0);
  EXPECT_FALSE(d.has_heartbeat());
}

}  // namespace
}  // namespace cairn::cluster
