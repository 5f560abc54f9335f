// Pooled client connections to many peers: used by the client library (to Cairn nodes) and by
// internode messaging (to other nodes).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "net/connection.h"

namespace cairn::net {

// `per_peer` multiplexed connections to each "host:port", opened on first use, round-robin, and
// reopened after a failure with backoff (100 ms, doubling to 5 s) during which the peer is
// reported UNAVAILABLE at once instead of being dialled again: no request waits on a dead peer
// longer than one connect timeout.
// Thread safety: use from coroutines on the pool's executor only (single-threaded).
class ConnectionPool {
 public:
  struct Options {
    Options() = default;
    ConnectionOptions connection;
    MuxConnection::ErrorFrameDecoder decode_error;
    size_t per_peer = 2;
    std::chrono::milliseconds connect_timeout{2000};
    // Run on each new connection before it is used (the client's login); an error closes the
    // connection and is what Acquire() answers. Null: nothing to do.
    std::function<asio::awaitable<Status>(MuxConnection&, base::Deadline)> on_open;
  };

  ConnectionPool(asio::any_io_executor executor, Options options);
  ~ConnectionPool();

  // A live connection to `address`. UNAVAILABLE when the address is malformed, the peer cannot be
  // reached before `deadline` (or the connect timeout), or it failed recently and is backing off.
  asio::awaitable<Result<std::shared_ptr<MuxConnection>>> Acquire(const std::string& address,
                                                                  base::Deadline deadline);

  // The connection Acquire() would answer at once, when that needs no suspension (the one in
  // turn is open): the common case, without a coroutine frame. Null: call Acquire().
  std::shared_ptr<MuxConnection> Ready(const std::string& address);

  // Closes every connection; calls in flight fail, later calls reconnect.
  void CloseAll();
  // Ends the backoff of `address`'s failed connections: the next call dials at once. For a peer
  // known to be back (its gossip arrives again), which would otherwise be reported UNAVAILABLE
  // by this pool for up to 5 s more.
  void ResetBackoff(const std::string& address);

 private:
  struct Slot {
    explicit Slot(asio::any_io_executor ex) : ready(std::move(ex)) {}
    std::shared_ptr<MuxConnection> conn;
    bool connecting = false;
    asio::steady_timer ready;  // cancelled when a connection attempt ends
    base::Clock::time_point retry_after{};
    std::chrono::milliseconds backoff{0};
    Status last_error;
  };
  struct Peer {
    std::string host;
    uint16_t port = 0;
    Status invalid;  // not OK when the address does not parse
    std::vector<std::unique_ptr<Slot>> slots;
    size_t next = 0;
  };

  Peer& PeerOf(const std::string& address);

  const asio::any_io_executor executor_;
  const Options options_;
  std::unordered_map<std::string, Peer> peers_;
};

}  // namespace cairn::net
