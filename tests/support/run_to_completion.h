// Runs a coroutine to completion on a test's io_context and returns its result.
#pragma once

#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace cairn::testing {

// Returns once `io` has run out of work: `op` and everything it started (spawned coroutines,
// connections) have ended.
template <typename T>
T RunToCompletion(boost::asio::io_context& io, boost::asio::awaitable<T> op) {
  auto f = boost::asio::co_spawn(io, std::move(op), boost::asio::use_future);
  io.restart();
  io.run();
  return f.get();
}

// The same on an io_context of its own.
template <typename T>
T RunToCompletion(boost::asio::awaitable<T> op) {
  boost::asio::io_context io;
  return RunToCompletion(io, std::move(op));
}

}  // namespace cairn::testing
