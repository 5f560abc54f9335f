// WaitUntil: the one way a test (or the test harness) waits for something to become true, after
// ScyllaDB's `eventually` (test/lib/eventually.hh). It retries a condition with growing pauses
// until it holds or the timeout has passed, then fails with what it waited for and the last
// reason the condition gave. Use it instead of a hand-written poll loop or a fixed sleep:
//
//   ASSERT_OK(WaitUntil([&] { return node->DescribeKeyspace("events").status(); }, 10s,
//                       "node 2 to know keyspace events"));
//
// The condition returns one of
//   bool                        true when done;
//   cairn::Status or Result<T>  OK when done; otherwise the status is the reason;
//   ::testing::AssertionResult  success when done; otherwise its message is the reason
//                               (`return ::testing::AssertionResult(n >= 4) << n << " hints";`).
// It is called at least once, and once more at the deadline; a call that is running when the
// deadline passes is waited for, so a condition that blocks should bound its own time.
//
// WaitUntil returns OK, or TIMEOUT "waited 10000 ms (37 tries) for <what>; last: <reason>".
// Check it with ASSERT_OK / EXPECT_OK (tests/support/options.h); a harness function returns it.
// CoWaitUntil is the same for a coroutine that must not block its io_context's thread:
//
//   EXPECT_OK(co_await CoWaitUntil([&] { return c->broken(); }, 5s, "the server to close"));
#pragma once

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "cairn/status.h"

namespace cairn::testing {

namespace wait_internal {

// Whether a condition's answer means "done"; when not, `*why` gets its reason (if it has one).
inline bool Done(bool done, std::string*) { return done; }
inline bool Done(const Status& s, std::string* why) {
  if (!s.ok()) *why = s.ToString();
  return s.ok();
}
template <typename T>
bool Done(const Result<T>& r, std::string* why) {
  return Done(r.status(), why);
}
inline bool Done(const ::testing::AssertionResult& r, std::string* why) {
  if (!r) *why = r.message();
  return static_cast<bool>(r);
}

// The pauses between tries: 1 ms, doubling up to 50 ms, never past the deadline. Short at first,
// because most waits end soon; capped, so that a condition that turns true late is seen within
// 50 ms (as the poll loops this replaced did), and one that costs a process start or an RPC is
// not tried in a busy loop.
class Backoff {
 public:
  explicit Backoff(std::chrono::milliseconds timeout)
      : timeout_(timeout), deadline_(std::chrono::steady_clock::now() + timeout) {}

  // The pause before the next try, or false when the deadline has passed (the last try was made
  // at or after it).
  bool Next(std::chrono::steady_clock::duration* pause) {
    ++tries_;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline_) return false;
    *pause = std::min<std::chrono::steady_clock::duration>(next_, deadline_ - now);
    next_ = std::min<std::chrono::steady_clock::duration>(next_ * 2, kMaxPause);
    return true;
  }

  Status TimedOut(std::string_view what, const std::string& why) const {
    return Status::Timeout(fmt::format("waited {} ms ({} tries) for {}{}{}", timeout_.count(),
                                       tries_, what, why.empty() ? "" : "; last: ", why),
                           0);
  }

 private:
  static constexpr std::chrono::milliseconds kMaxPause{50};
  const std::chrono::milliseconds timeout_;
  const std::chrono::steady_clock::time_point deadline_;
  std::chrono::steady_clock::duration next_ = std::chrono::milliseconds(1);
  int tries_ = 0;
};

}  // namespace wait_internal

// Calls `condition` until it is done or `timeout` has passed, sleeping in between. `what` says
// what is awaited ("node 1 to see node 3 DOWN"), for the failure message.
template <typename Condition>
[[nodiscard]] Status WaitUntil(Condition&& condition, std::chrono::milliseconds timeout,
                               std::string_view what) {
  wait_internal::Backoff backoff(timeout);
  std::string why;
  std::chrono::steady_clock::duration pause;
  while (true) {
    if (wait_internal::Done(condition(), &why)) return Status::Ok();
    if (!backoff.Next(&pause)) return backoff.TimedOut(what, why);
    std::this_thread::sleep_for(pause);
  }
}

// WaitUntil for coroutines: pauses on a timer of the calling coroutine's executor, so the
// io_context goes on running its other work (connections, other coroutines) in between.
template <typename Condition>
[[nodiscard]] boost::asio::awaitable<Status> CoWaitUntil(Condition condition,
                                                         std::chrono::milliseconds timeout,
                                                         std::string what) {
  wait_internal::Backoff backoff(timeout);
  std::string why;
  std::chrono::steady_clock::duration pause;
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  while (true) {
    if (wait_internal::Done(condition(), &why)) co_return Status::Ok();
    if (!backoff.Next(&pause)) co_return backoff.TimedOut(what, why);
    timer.expires_after(pause);
    co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }
}

// Waits until `age` has passed since `since`, for what only time brings about and no state
// shows (writes older than a hint window, whose hints are then dropped, not replayed).
[[nodiscard]] inline Status WaitUntilOlderThan(std::chrono::steady_clock::time_point since,
                                               std::chrono::milliseconds age,
                                               std::string_view what) {
  return WaitUntil([&] { return std::chrono::steady_clock::now() - since > age; },
                   age + std::chrono::seconds(5), what);
}

}  // namespace cairn::testing
