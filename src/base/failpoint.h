// Fail points: faults a test switches on in a real process, by name, through the environment
// (CAIRN_FAILPOINTS="name=value,name=value"), to reach paths that timing alone reaches too rarely
// to test (a request planned with one topology and sent after the replicas moved on). Unset, a
// fail point costs one load of an immutable table built at first use.
//
// Values are milliseconds for the delays below. Names in use:
//   coordinator.write.before_send  delay between planning a write round and sending it
//   coordinator.read.before_send   delay between planning a read and sending it
#pragma once

#include <chrono>
#include <string_view>

#include <boost/asio/awaitable.hpp>

namespace cairn::base::failpoint {

// The delay configured for `name`; zero when none is.
std::chrono::milliseconds Delay(std::string_view name);

// Whether any fail point is configured. Hot paths test it before co_await Pause(), which
// otherwise allocates a coroutine frame per call for nothing.
bool Any();

// Waits for the delay configured for `name`, if any.
boost::asio::awaitable<void> Pause(std::string_view name);

}  // namespace cairn::base::failpoint
