// The native protocol front door: parses framed protobuf requests (proto/native.proto), calls
// the Coordinator, and encodes typed replies. No logic of its own beyond translation.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "base/access.h"
#include "base/metrics.h"
#include "coordinator/coordinator.h"
#include "net/connection.h"
#include "proto/native.pb.h"

namespace cairn::frontdoor::native {

namespace asio = boost::asio;

struct NativeOptions {
  // Largest frame accepted; must leave room above the value limit for the rest of a request.
  size_t max_frame_bytes = size_t{16} << 20;
  std::chrono::milliseconds default_timeout{5000};
  std::chrono::milliseconds max_timeout{120'000};
  size_t max_inflight_per_connection = 1024;
  // Where requests are counted (cairn_requests_total); null: nowhere. Outlives the front door.
  base::metrics::RequestMetrics* metrics = nullptr;
  // The node's budget for requests and answers held (base/memory_budget.h); null: unbounded.
  // A frame over its per-connection part is refused. Outlives the front door.
  base::MemoryBudget* memory = nullptr;
  // With authentication on (cairnd --auth): the login and permission checks; null: off, every
  // request is allowed. Outlives the front door.
  base::AccessControl* access = nullptr;
};

// Thread safety: Serve() runs on the reactor that owns the socket; CloseAll() and
// open_connections() may be called from any thread.
class NativeFrontDoor {
 public:
  NativeFrontDoor(coordinator::Coordinator* coordinator, NativeOptions options);

  // Serves one accepted connection (TLS handshake done, if any), whose preamble the caller has
  // read, until it closes.
  asio::awaitable<void> Serve(net::Stream stream);

  // Asks every open connection to stop reading and to close once its requests in flight have
  // been answered (server shutdown).
  void CloseAll();
  size_t open_connections() const { return open_.load(); }

 private:
  // The request's keyspace, level and deadline, or why not.
  Result<coordinator::RequestOptions> OptionsOf(const wire::Request& request) const;
  // Fills `response` without suspending when the request can be answered so (a GET this node
  // alone answers, or refused options); false leaves it to Execute().
  bool TryAnswerAtOnce(const wire::Request& request, wire::Response* response);
  // Runs one parsed request and fills `response`.
  asio::awaitable<void> Execute(wire::Request request, wire::Response* response);
  // Counts an answered request in /metrics.
  void Count(base::metrics::Operation op, int level, const wire::Response& response,
             std::chrono::steady_clock::time_point started) const;

  coordinator::Coordinator* const coordinator_;
  const NativeOptions options_;
  std::atomic<size_t> open_{0};
  std::mutex mu_;
  std::set<std::shared_ptr<net::FrameConnection>> connections_;  // guarded by mu_
};

}  // namespace cairn::frontdoor::native
