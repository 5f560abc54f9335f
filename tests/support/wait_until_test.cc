// The waiting helper every test relies on: it must call until done, give up at the deadline (not
// before, and after one last try), and say what it waited for and why it was not done.
#include "tests/support/wait_until.h"

#include <atomic>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "tests/support/options.h"
#include "tests/support/run_to_completion.h"

namespace cairn::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(WaitUntilTest, ConditionThatHoldsIsCalledOnce) {
  int calls = 0;
  ASSERT_OK(WaitUntil(
      [&] {
        ++calls;
        return true;
      },
      10s, "nothing"));
  EXPECT_EQ(calls, 1);
}

TEST(WaitUntilTest, CallsUntilTheConditionHolds) {
  int calls = 0;
  ASSERT_OK(WaitUntil([&] { return ++calls == 5; }, 10s, "the fifth call"));
  EXPECT_EQ(calls, 5);
}

TEST(WaitUntilTest, ConditionSetByAnotherThreadIsSeen) {
  std::atomic<bool> flag{false};
  std::thread setter([&] {
    std::this_thread::sleep_for(20ms);
    flag = true;
  });
  const Status s = WaitUntil([&] { return flag.load(); }, 10s, "the flag");
  setter.join();
  EXPECT_OK(s);
}

TEST(WaitUntilTest, TimesOutSayingWhatAndTheLastReason) {
  int calls = 0;
  const Status s = WaitUntil([&] { return Status::Unavailable(fmt::format("call {}", ++calls)); },
                             30ms, "a miracle");
  EXPECT_EQ(s.code(), Code::kTimeout);
  EXPECT_NE(s.message().find("waited 30 ms"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("for a miracle"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(fmt::format("last: UNAVAILABLE: call {}", calls)), std::string::npos)
      << s.message();
  EXPECT_GT(calls, 1);
}

TEST(WaitUntilTest, ResultsAndAssertionResultsCarryTheirReasons) {
  const Status result =
      WaitUntil([] { return Result<int>(Status::NotFound("no such key")); }, 5ms, "the key");
  EXPECT_NE(result.message().find("last: NOT_FOUND: no such key"), std::string::npos)
      << result.message();
  EXPECT_OK(WaitUntil([] { return Result<int>(7); }, 5ms, "a value"));

  int hints = 0;
  const Status assertion =
      WaitUntil([&] { return ::testing::AssertionResult(++hints >= 1000) << hints << " hints"; },
                5ms, "1000 hints");
  EXPECT_NE(assertion.message().find(fmt::format("last: {} hints", hints)), std::string::npos)
      << assertion.message();
}

TEST(WaitUntilTest, TriesOnceMoreAtTheDeadline) {
  const auto start = Clock::now();
  int calls = 0;
  // True only from the deadline on: seen by the last try, which is made at the deadline.
  EXPECT_OK(WaitUntil(
      [&] {
        ++calls;
        return Clock::now() - start >= 50ms;
      },
      50ms, "the deadline"));
  EXPECT_GE(Clock::now() - start, 50ms);
  EXPECT_GT(calls, 1);
}

TEST(WaitUntilTest, CoroutineFormLetsTheIoContextRunOtherWork) {
  boost::asio::io_context io;
  bool flag = false;  // set by another coroutine on the same thread
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, 20ms);
        co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        flag = true;
      },
      boost::asio::detached);
  const Status waited =
      RunToCompletion(io, CoWaitUntil([&] { return flag; }, 10s, "the other coroutine"));
  EXPECT_OK(waited);

  const Status timed_out =
      RunToCompletion(io, CoWaitUntil([] { return Status::Unavailable("never"); }, 20ms, "never"));
  EXPECT_EQ(timed_out.code(), Code::kTimeout);
  EXPECT_NE(timed_out.message().find("last: UNAVAILABLE: never"), std::string::npos)
      << timed_out.message();
}

}  // namespace
}  // namespace cairn::testing
