#include "base/async.h"

#include <atomic>
#include <latch>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "tests/support/run_to_completion.h"

namespace cairn::base {
namespace {

using namespace std::chrono_literals;
using cairn::testing::RunToCompletion;

TEST(AwaitCallbackTest, DeliversValueFromAnotherThread) {
  std::thread worker;
  const int got = RunToCompletion([&]() -> asio::awaitable<int> {
    co_return co_await AwaitCallback<int>(
        [&](auto done) {
          worker = std::thread([done] {
            std::this_thread::sleep_for(5ms);
            done(42);
          });
        },
        -1);
  }());
  worker.join();
  EXPECT_EQ(got, 42);
}

TEST(AwaitCallbackTest, ResumesOnTheWaitersThread) {
  std::thread worker;
  std::thread::id resumed_on;
  asio::io_context io;
  const auto io_thread = std::this_thread::get_id();
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await AwaitCallback<int>([&](auto done) { worker = std::thread([done] { done(1); }); },
                                    0);
        resumed_on = std::this_thread::get_id();
      },
      asio::detached);
  io.run();
  worker.join();
  EXPECT_EQ(resumed_on, io_thread);
}

TEST(WithDeadlineTest, ReturnsValueBeforeDeadline) {
  std::thread worker;
  auto got = RunToCompletion([&]() -> asio::awaitable<std::optional<int>> {
    co_return co_await WithDeadline(
        AwaitCallback<int>([&](auto done) { worker = std::thread([done] { done(7); }); }, -1),
        Clock::now() + 5s);
  }());
  worker.join();
  EXPECT_EQ(got, 7);
}

TEST(WithDeadlineTest, GivesUpAtDeadlineAndIgnoresLateCompletion) {
  std::latch release(1);  // the completion waits until the deadline has passed
  std::thread worker;
  const auto start = Clock::now();
  auto got = RunToCompletion([&]() -> asio::awaitable<std::optional<int>> {
    co_return co_await WithDeadline(AwaitCallback<int>(
                                        [&](auto done) {
                                          worker = std::thread([done, &release] {
                                            release.wait();
                                            done(99);  // too late: must be ignored
                                          });
                                        },
                                        -1),
                                    Clock::now() + 50ms);
  }());
  EXPECT_FALSE(got.has_value());
  EXPECT_GE(Clock::now() - start, 50ms);
  EXPECT_LT(Clock::now() - start, 5s);
  release.count_down();
  worker.join();
}

// Completions racing with deadlines, from another thread: every wait must end exactly once, with
// either the value or the cancellation, and never touch freed state.
TEST(WithDeadlineTest, CompletionRacingTheDeadlineEndsEachWaitOnce) {
  asio::io_context io;
  std::atomic<int> ended{0}, values{0}, timeouts{0};
  std::vector<std::thread> workers;
  std::mutex workers_mu;
  constexpr int kWaits = 300;
  for (int i = 0; i < kWaits; ++i) {
    asio::co_spawn(
        io,
        [&, i]() -> asio::awaitable<void> {
          auto r = co_await WithDeadline(
              AwaitCallback<int>(
                  [&, i](auto done) {
                    std::lock_guard lock(workers_mu);
                    // A third finish long after their deadline, a third long before, and a
                    // third race it.
                    const auto delay = i % 3 == 0   ? std::chrono::microseconds(200'000)
                                       : i % 3 == 1 ? std::chrono::microseconds(0)
                                                    : std::chrono::microseconds((i * 37) % 2000);
                    workers.emplace_back([done, i, delay] {
                      std::this_thread::sleep_for(delay);
                      done(i);
                    });
                  },
                  -1),
              Clock::now() + (i % 3 == 0   ? std::chrono::microseconds(1000)
                              : i % 3 == 1 ? std::chrono::microseconds(10'000'000)
                                           : std::chrono::microseconds((i * 53) % 2000)));
          ++ended;
          if (r && *r == i) ++values;
          if (r && *r == -1) ++timeouts;  // the cancellation value, passed through as a value
          if (!r) ++timeouts;
        },
        asio::detached);
  }
  io.run();
  for (auto& w : workers) w.join();
  EXPECT_EQ(ended.load(), kWaits);
  EXPECT_EQ(values.load() + timeouts.load(), kWaits);
  EXPECT_GT(values.load(), 0);
  EXPECT_GT(timeouts.load(), 0);
}

}  // namespace
}  // namespace cairn::base
