// cairnd's wiring: opens the storage engine, the clock, the schema, the replica and the
// coordinator, runs the reactor threads and the native front door, and tears it all down in
// the right order.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>

#include "base/hlc.h"
#include "cairn/status.h"
#include "cluster/schema.h"
#include "coordinator/coordinator.h"
#include "frontdoor/native/native_front_door.h"
#include "replica/replica.h"
#include "storage/engine.h"

namespace cairn::server {

namespace asio = boost::asio;

struct ServerOptions {
  std::string data_dir;
  std::string listen = "127.0.0.1:7400";  // port 0: any free port (see native_endpoint())
  uint32_t threads = 0;                   // reactor threads; 0: one per core, at most 4
  std::optional<uint32_t> node_id;
  size_t max_value_bytes = kDefaultMaxValueBytes;
  size_t max_connections = 4096;
  uint32_t partition_bits = cluster::kDefaultPartitionBits;  // for a new data directory
};

class Server {
 public:
  // Opens everything and starts listening. Errors name what went wrong (an unusable data
  // directory, a taken port, a bad option).
  static Result<std::unique_ptr<Server>> Start(const ServerOptions& options);

  // Stops accepting, closes connections, finishes what is in flight, closes the database.
  // Idempotent; also run by the destructor.
  void Stop();
  ~Server();

  const asio::ip::tcp::endpoint& native_endpoint() const { return native_endpoint_; }
  uint32_t node_id() const { return identity_.node_id; }
  uint32_t reactor_threads() const { return static_cast<uint32_t>(reactors_.size()); }

 private:
  struct Reactor {
    asio::io_context io{1};
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    std::thread thread;
  };

  explicit Server(ServerOptions options) : options_(std::move(options)) {}
  Status Open();
  asio::awaitable<void> AcceptLoop();
  asio::awaitable<void> Route(asio::ip::tcp::socket socket);
  void ReservationTicker();

  const ServerOptions options_;
  std::unique_ptr<storage::Engine> engine_;
  cluster::NodeIdentity identity_;
  std::unique_ptr<base::HybridClock> clock_;
  std::unique_ptr<cluster::Schema> schema_;
  std::unique_ptr<asio::thread_pool> blocking_;
  std::unique_ptr<replica::Replica> replica_;
  std::unique_ptr<coordinator::Coordinator> coordinator_;
  std::unique_ptr<frontdoor::native::NativeFrontDoor> native_;
  std::vector<std::unique_ptr<Reactor>> reactors_;
  std::unique_ptr<asio::ip::tcp::acceptor> acceptor_;
  asio::ip::tcp::endpoint native_endpoint_;
  // Connections accepted and not yet closed, of every protocol (also those still to send their
  // preamble): what --max-connections limits.
  std::atomic<size_t> open_connections_{0};

  std::mutex ticker_mu_;
  std::condition_variable ticker_cv_;
  bool stopping_ = false;  // guarded by ticker_mu_
  std::thread ticker_;
  bool stopped_ = false;
};

}  // namespace cairn::server
