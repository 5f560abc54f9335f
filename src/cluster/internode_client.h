// Calls from this node to other nodes (internode messaging), over pooled multiplexed connections.
#pragma once

#include <functional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "base/async.h"
#include "cairn/status.h"
#include "net/connection_pool.h"
#include "proto/internode.pb.h"

namespace cairn::cluster {

namespace asio = boost::asio;

// One per reactor: use it from coroutines on its executor only.
class InternodeClient {
 public:
  // `tls`, when set, gives the TLS context to dial with (ConnectionOptions::tls); null: plain TCP.
  InternodeClient(asio::any_io_executor executor, uint32_t self_node, size_t max_payload,
                  std::function<std::shared_ptr<net::ssl::context>()> tls = nullptr);

  // Sends `request` to the node at `address` (with the protocol version, the sender and the
  // time left filled in on the wire: `request` itself is not touched, so one request can be
  // sent to several nodes at once) and waits for the answer until `deadline`.
  //  - UNAVAILABLE: not sent (the node cannot be reached, or failed recently and is backing off);
  //  - TIMEOUT: sent but not answered in time (the peer may have acted on it);
  //  - any other code: the peer's error.
  asio::awaitable<Result<internode::Response>> Call(const std::string& address,
                                                    const internode::Request& request,
                                                    base::Deadline deadline);

  void CloseAll() { pool_.CloseAll(); }
  // The node at `address` is UP again: dial it at once (ConnectionPool::ResetBackoff).
  void ResetBackoff(const std::string& address) { pool_.ResetBackoff(address); }

  // Every request carries the topology epoch `epoch` returns (the replica fences older ones), and
  // an answer from a node with a newer epoch calls `on_newer` with its address and epoch (the
  // node then pulls that topology). Set before the first call.
  void WatchEpochs(std::function<uint64_t()> epoch,
                   std::function<void(const std::string&, uint64_t)> on_newer) {
    epoch_ = std::move(epoch);
    on_newer_ = std::move(on_newer);
  }

 private:
  std::function<uint64_t()> epoch_;
  std::function<void(const std::string&, uint64_t)> on_newer_;
  const uint32_t self_;
  net::ConnectionPool pool_;
};

}  // namespace cairn::cluster
