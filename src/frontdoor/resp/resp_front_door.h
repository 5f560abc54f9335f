// The Redis protocol front door (RESP2 and RESP3): parses commands, calls the Coordinator, and
// encodes replies. No logic of its own beyond translating Redis semantics onto Cairn's operations
// (read-modify-write commands become SERIAL reads plus compare-and-swap). See docs/resp.md.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "base/access.h"
#include "base/memory_budget.h"
#include "base/metrics.h"
#include "coordinator/coordinator.h"
#include "net/stream.h"

namespace cairn::frontdoor::resp {

namespace asio = boost::asio;

struct ServerState;

struct RespOptions {
  // The server's value limit; bulk strings up to this plus 1 MiB are read (larger ones are a
  // protocol error and close the connection, as Redis does beyond proto-max-bulk-len).
  size_t max_value_bytes = kDefaultMaxValueBytes;
  std::chrono::milliseconds timeout{5000};  // deadline of each command
  // Deadline of commands over the whole keyspace (KEYS, DBSIZE, FLUSHDB, INFO keyspace ...).
  std::chrono::milliseconds keyspace_timeout{60'000};
  // A connection stops reading while it has this many commands in flight or this many bytes of
  // replies not yet written (backpressure).
  size_t max_inflight_per_connection = 1024;
  size_t max_reply_bytes = size_t{64} << 20;
  bool allow_flush = false;  // FLUSHDB / FLUSHALL delete every key of the keyspace
  std::string requirepass;   // empty: AUTH accepts any password
  std::string listen;        // for INFO
  // Every open connection of the server, all protocols (INFO clients); may be empty.
  std::function<size_t()> server_connections;
  // Where data commands are counted (cairn_requests_total{frontdoor="resp"}); may be null.
  base::metrics::RequestMetrics* metrics = nullptr;
  // The node's budget for requests and replies held (base/memory_budget.h); null: unbounded.
  // Outlives the front door.
  base::MemoryBudget* memory = nullptr;
  // With authentication on (cairnd --auth): logins and permission checks (docs/security.md);
  // --requirepass is then not used. Null: off. Outlives the front door.
  base::AccessControl* access = nullptr;
  // Client-side caching: keys remembered for tracking connections at most (Redis's
  // tracking-table-max-keys); past it the oldest are invalidated and forgotten.
  size_t tracking_table_max_keys = 1'000'000;
};

// Thread safety: Serve() runs on the reactor that owns the socket; CloseAll(),
// open_connections() and the CLIENT LIST / KILL registry may be used from any thread.
class RespFrontDoor {
 public:
  RespFrontDoor(coordinator::Coordinator* coordinator, RespOptions options);
  ~RespFrontDoor();

  // Serves one accepted connection (TLS handshake done, if any) until it closes.
  asio::awaitable<void> Serve(net::Stream stream);

  // Asks every connection to stop reading and to close once its commands in flight have been
  // answered (server shutdown).
  void CloseAll();
  size_t open_connections() const { return open_.load(); }

  // Client-side caching figures, for /metrics.
  struct TrackingFigures {
    size_t connections = 0;    // tracking now
    size_t keys = 0;           // remembered for them
    size_t prefixes = 0;       // BCAST prefixes
    uint64_t pushes = 0;       // invalidation pushes sent
    uint64_t pushed_keys = 0;  // keys in them
    uint64_t evicted = 0;      // keys forgotten (and invalidated) for the bound
  };
  TrackingFigures tracking_figures() const;

  class Connection;

 private:
  std::shared_ptr<ServerState> shared_;
  // Hands the coordinator's changed keys to the tracking table (coordinator::KeyChangeListener).
  class Listener;
  std::unique_ptr<Listener> listener_;
  std::atomic<size_t> open_{0};
};

}  // namespace cairn::frontdoor::resp
