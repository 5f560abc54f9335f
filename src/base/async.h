// Helpers that connect Cairn's coroutines (Boost.Asio awaitables) to work that completes on
// other threads, and that put deadlines on waits.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace cairn::base {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

// The completion token of Cairn's asynchronous waits: errors come back as values
// (`auto [ec, n] = co_await ...`), never as exceptions (STYLE.md).
inline constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

namespace detail {

// The meeting point of a waiting coroutine and the thread that finishes its work. Whichever of
// Complete() (work done) and a cancellation comes first wins; the other is ignored.
template <typename T>
class Rendezvous {
 public:
  using Handler = asio::any_completion_handler<void(T)>;

  Rendezvous(Handler handler, asio::any_io_executor executor, asio::cancellation_slot slot)
      : executor_(std::move(executor)), slot_(slot), handler_(std::move(handler)) {}

  // Any thread. The handler always runs on the waiter's executor, never inline.
  void Complete(T value) {
    std::optional<Handler> handler;
    {
      std::lock_guard lock(mu_);
      if (!handler_) return;
      handler.emplace(std::move(*handler_));
      handler_.reset();
    }
    asio::post(executor_, [h = std::move(*handler), slot = slot_, v = std::move(value)]() mutable {
      // The slot belongs to the waiter; touch it only on the waiter's executor.
      if (slot.is_connected()) slot.clear();
      std::move(h)(std::move(v));
    });
  }

 private:
  // Constant after construction.
  const asio::any_io_executor executor_;
  const asio::cancellation_slot slot_;

  std::mutex mu_;
  std::optional<Handler> handler_;  // guarded by mu_; empty once completed
};

}  // namespace detail

// Starts work that finishes on another thread and waits for it without blocking the reactor.
// `start` is called at once with a callable `done(T)`; done may be called exactly once, from any
// thread. When the waiting coroutine is cancelled first (a deadline through WithDeadline or the
// `||` operator), the wait ends at once with `on_cancel`, and the later done() is ignored: the
// work itself is not stopped, so a write may still apply.
template <typename T, typename Start>
asio::awaitable<T> AwaitCallback(Start start, T on_cancel) {
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(T)>(
      [&start, &on_cancel](auto handler) {
        asio::any_io_executor executor = asio::get_associated_executor(handler);
        asio::cancellation_slot slot = asio::get_associated_cancellation_slot(handler);
        auto state = std::make_shared<detail::Rendezvous<T>>(std::move(handler), executor, slot);
        if (slot.is_connected()) {
          slot.assign([state, value = std::move(on_cancel)](asio::cancellation_type) mutable {
            state->Complete(std::move(value));
          });
        }
        start([state](T value) { state->Complete(std::move(value)); });
      },
      asio::use_awaitable);
}

// Runs `op` until it finishes or `deadline` passes. Returns nullopt on the deadline, after `op`
// has been cancelled (operations in Cairn honour cancellation; see AwaitCallback).
template <typename T>
asio::awaitable<std::optional<T>> WithDeadline(asio::awaitable<T> op, Deadline deadline) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
  // as_tuple: the cancelled timer must not throw (an exception per call costs microseconds and
  // a global lock in the unwinder).
  auto result = co_await (std::move(op) || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (result.index() == 0) co_return std::move(std::get<0>(result));
  co_return std::nullopt;
}

// AwaitCallback with a deadline of its own, cheaper than WithDeadline (no coroutines besides the
// caller's): when `deadline` passes first, the wait ends with `on_timeout`.
template <typename T, typename Start>
asio::awaitable<T> AwaitCallbackUntil(Start start, T on_timeout, Deadline deadline) {
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(T)>(
      [&start, &on_timeout, deadline](auto handler) {
        asio::any_io_executor executor = asio::get_associated_executor(handler);
        asio::cancellation_slot slot = asio::get_associated_cancellation_slot(handler);
        auto state = std::make_shared<detail::Rendezvous<T>>(std::move(handler), executor, slot);
        auto timer = std::make_shared<asio::steady_timer>(executor, deadline);
        timer->async_wait([state, timer, value = on_timeout](boost::system::error_code ec) mutable {
          if (!ec) state->Complete(std::move(value));
        });
        if (slot.is_connected()) {
          slot.assign([state, value = std::move(on_timeout)](asio::cancellation_type) mutable {
            state->Complete(std::move(value));
          });
        }
        start([state, timer, executor](T value) {
          state->Complete(std::move(value));
          asio::post(executor, [timer] { timer->cancel(); });
        });
      },
      asio::use_awaitable);
}

// A reactor's time, shared fairly by work whose cost grows with the data or a pattern (a batch
// of reads, the keys of a scan page matched against a glob, a long reply): such a loop asks
// SliceSpent() after each unit of work and, when it says so, co_awaits Yield(), so that no
// request holds its reactor for more than about one slice. The slice belongs to the thread, not
// to the loop: it runs from this thread's last Yield(), so loops that call one another or follow
// one another within one turn of the reactor (MGET's batches of batch reads) share it. After a
// coroutine has waited for something else the slice may look spent at once; the yield that
// follows costs one post.
// 2 ms: well under the 50 ms a PING on the same reactor may wait (issue #13), and long enough
// that yielding costs little beside the work.
inline constexpr std::chrono::microseconds kReactorSlice{2000};

namespace detail {
inline Clock::time_point& SliceStart() {
  static thread_local Clock::time_point start = Clock::now();
  return start;
}
}  // namespace detail

inline bool SliceSpent() { return Clock::now() - detail::SliceStart() >= kReactorSlice; }

// Lets the reactor run what is ready (I/O completions, other coroutines) before the caller goes
// on: the caller's continuation is posted behind them. A new slice starts when it resumes.
inline asio::awaitable<void> Yield() {
  auto executor = co_await asio::this_coro::executor;
  co_await asio::post(executor, asio::use_awaitable);
  detail::SliceStart() = Clock::now();
}

}  // namespace cairn::base
