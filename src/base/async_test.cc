#include "base/async.h"

#include <atomic>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace cairn::base {
namespace {

using namespace std::chrono_literals;

// Runs `coro` on a fresh io_context and returns its result.
template <typename T>
T RunCoroutine(asio::awaitable<T> coro) {
  asio::io_context io;
  auto future = asio::co_spawn(io, std::move(coro), asio::use_future);
  io.run();
  return future.get();
}

TEST(AwaitCallbackTest, DeliversValueFromAnotherThread) {
  std::thread worker;
  const int got = RunCoroutine([&]() -> asio::awaitable<int> {
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
  auto got = RunCoroutine([&]() -> asio::awaitable<std::optional<int>> {
    co_return co_await WithDeadline(
        AwaitCallback<int>([&](auto done) { worker = std::thread([done] { done(7); }); }, -1),
        Clock::now() + 5s);
  }());
  worker.join();
  EXPECT_EQ(got, 7);
}

TEST(WithDeadlineTest, GivesUpAtDeadlineAndIgnoresLateCompletion) {
  std::atomic<bool> release{false};
  std::thread worker;
  const auto start = Clock::now();
  auto got = RunCoroutine([&]() -> asio::awaitable<std::optional<int>> {
    co_return co_await WithDeadline(AwaitCallback<int>(
                                        [&](auto done) {
                                          worker = std::thread([done, &release] {
                                            while (!release) std::this_thread::sleep_for(1ms);
                                            done(99);  // too late: must be ignored
                                          });
                                        },
                                        -1),
                                    Clock::now() + 50ms);
  }());
  EXPECT_FALSE(got.has_value());
  EXPECT_GE(Clock::now() - start, 50ms);
  EXPECT_LT(Clock::now() - start, 5s);
  release = true;
  worker.join();
}

}  // namespace
}  // namespace cairn::base
