// The HTTP/1.1 front door: the REST API under /v1 (keys, prefix scans, keyspace admin, cluster
// status), /metrics in the Prometheus text format, /health and /ready. Like the native front door
// it only parses, calls the Coordinator and encodes; docs/http.md is its user-facing contract.
//
// Beast stays inside http_front_door.cc (it is a heavy header): this header only needs Asio.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <set>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "base/access.h"
#include "base/memory_budget.h"
#include "base/metrics.h"
#include "coordinator/coordinator.h"
#include "net/stream.h"

namespace cairn::frontdoor::http {

namespace asio = boost::asio;

struct HttpOptions {
  // The request line and headers together. A key of 16 KiB percent-encoded takes up to 48 KiB.
  size_t max_header_bytes = 64 * 1024;
  // The largest request body: a value at the server's value limit.
  size_t max_body_bytes = kDefaultMaxValueBytes;
  // An idle keep-alive connection is closed after this long without a new request.
  std::chrono::milliseconds idle_timeout{30'000};
  // A request must arrive in full (header and body) this soon after its first byte, else 408 and
  // the connection is closed; a response must be taken by the client this soon, else the
  // connection is closed.
  std::chrono::milliseconds read_timeout{10'000};
  std::chrono::milliseconds write_timeout{10'000};
  // Per-request deadlines for the Coordinator (?timeout_ms= picks another, up to the maximum).
  std::chrono::milliseconds default_timeout{5000};
  std::chrono::milliseconds max_timeout{120'000};
  // The node's budget for requests and replies held (base/memory_budget.h); null: unbounded. A
  // body over its per-connection part is refused (413); the answer to a read of /v1 that does
  // not fit is refused (503). Outlives the front door.
  base::MemoryBudget* memory = nullptr;
  // With authentication on (cairnd --auth): every request but /health and /ready needs Basic
  // credentials or a bearer token of a user holding the permission its route needs
  // (docs/http.md). Null: off. Outlives the front door.
  base::AccessControl* access = nullptr;
};

// Thread safety: Serve() runs on the reactor that owns the socket; CloseAll() and
// open_connections() may be called from any thread.
class HttpFrontDoor {
 public:
  // `registry` renders /metrics; `requests` counts requests (both outlive this object). `ready`
  // says whether the node serves (/ready): OK, or why not.
  HttpFrontDoor(coordinator::Coordinator* coordinator, const base::metrics::Registry* registry,
                base::metrics::RequestMetrics* requests, std::function<Status()> ready,
                HttpOptions options);
  ~HttpFrontDoor();

  // Serves one accepted connection until it closes: requests are answered one after another in
  // the order they arrived (pipelined ones too), on keep-alive connections until the client
  // closes, a limit or timeout is hit, or CloseAll().
  // `stream`: plain TCP, or TLS with its handshake done.
  asio::awaitable<void> Serve(net::Stream stream);

  // Asks every connection to close: idle ones at once, busy ones after answering the request in
  // hand (server shutdown).
  void CloseAll();
  size_t open_connections() const { return open_.load(); }

  struct Connection;
  struct Exchange;

 private:
  asio::awaitable<void> Run(std::shared_ptr<Connection> conn);

  coordinator::Coordinator* const coordinator_;
  const base::metrics::Registry* const registry_;
  base::metrics::RequestMetrics* const requests_;
  const std::function<Status()> ready_;
  const HttpOptions options_;
  std::atomic<size_t> open_{0};
  std::mutex mu_;
  std::set<std::shared_ptr<Connection>> connections_;  // guarded by mu_
};

}  // namespace cairn::frontdoor::http
