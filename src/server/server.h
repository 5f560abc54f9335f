// cairnd's wiring: opens the storage engine, the clock, the schema, the replica, gossip and the
// coordinator, runs the reactor threads and the front doors, and tears it all down in order.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>

#include "base/access.h"
#include "base/hlc.h"
#include "base/memory_budget.h"
#include "base/metrics.h"
#include "cairn/status.h"
#include "cluster/gossiper.h"
#include "cluster/internode_client.h"
#include "cluster/schema.h"
#include "coordinator/auto_split.h"
#include "coordinator/background_repair.h"
#include "coordinator/cluster_coordinator.h"
#include "coordinator/hint_replayer.h"
#include "coordinator/hint_store.h"
#include "coordinator/topology_driver.h"
#include "frontdoor/http/http_front_door.h"
#include "frontdoor/native/native_front_door.h"
#include "frontdoor/resp/resp_front_door.h"
#include "net/stream.h"
#include "net/tls.h"
#include "replica/internode_service.h"
#include "replica/partition_streamer.h"
#include "replica/replica.h"
#include "storage/engine.h"

namespace cairn::server {

namespace asio = boost::asio;

struct ServerOptions {
  std::string data_dir;
  std::string listen = "127.0.0.1:7400";  // port 0: any free port (single node only)
  // HOST:PORT of the HTTP front door (REST, /metrics, /health, /ready); empty: off. Port 0: any
  // free port.
  std::string http_listen;
  // A keep-alive HTTP connection idle this long is closed; a request must arrive in full this soon
  // after its first byte (else 408).
  std::chrono::milliseconds http_idle_timeout{30'000};
  std::chrono::milliseconds http_read_timeout{10'000};
  // Every initial member (HOST:PORT), this node included; empty: a cluster of this node alone.
  std::vector<std::string> peers;
  // cairnd --join: members of a running cluster to ask to take this (new, empty) node in; with
  // `replace`, in the place of that dead member.
  std::vector<std::string> join;
  uint32_t replace = 0;
  // With `join`: wait on standby until told to join (cairn node join / replace).
  bool standby = false;
  // Bytes per second this node streams in during topology changes, at most, and serves to the
  // nodes streaming from it, all together (0: no limit).
  uint64_t stream_bytes_per_second = uint64_t{64} << 20;
  // A member DOWN this long is removed and its data re-replicated (0: never).
  std::chrono::seconds dead_after{0};
  // A topology change waits this long for others to merge into it before its first barrier.
  std::chrono::seconds merge_window{1};
  // Hot keys: the rate that makes a key hot, and how long native clients may cache its reads.
  double hot_key_ops_per_s = 1000;
  uint32_t client_cache_ttl_ms = 100;
  std::string dc = "dc1";
  std::string rack = "rack1";
  uint32_t threads = 0;  // reactor threads; 0: one per core, at most 4
  std::optional<uint32_t> node_id;
  size_t max_value_bytes = kDefaultMaxValueBytes;
  size_t max_connections = 4096;
  // The node's budget for client requests read and not yet answered and replies not yet written,
  // over every connection of every front door (base/memory_budget.h, docs/operations.md).
  size_t max_request_memory_bytes = size_t{512} << 20;
  uint32_t partitions = 1024;  // for a new cluster: a power of two, 1 .. 65536
  // Memory for the storage engine's cache of recently read values (0: off); see read_cache.h.
  size_t read_cache_bytes = size_t{32} << 20;
  std::chrono::milliseconds gossip_interval{1000};
  double phi_threshold = 8.0;
  std::chrono::seconds hint_window{3 * 3600};
  // Background repair: a cycle over the ranges this node is first replica of takes about this
  // long (0: off), at most this many bytes per second of repaired records.
  std::chrono::seconds repair_interval{24 * 3600};
  uint64_t repair_bytes_per_second = uint64_t{16} << 20;
  // Tombstones are purged after a repair only when older than this before it (and than the hint
  // window).
  std::chrono::seconds purge_margin{600};
  // HOST:PORT of the Redis protocol (RESP) front door; empty: off. Port 0 picks a free port.
  std::string resp_listen;
  bool allow_flush = false;  // RESP FLUSHDB / FLUSHALL delete every key
  // RESP client-side caching: keys remembered for tracking connections at most (docs/resp.md).
  size_t tracking_table_max_keys = 1'000'000;
  std::string requirepass;  // RESP AUTH password; empty: any password is accepted
  // Users and permissions (docs/security.md): every request must come from a logged-in user who
  // holds the permission it needs. Off: every client may do everything (trusted networks only).
  bool auth = false;
  // USER:PASSWORD file: the first superuser, created once the cluster has formed without users.
  std::string auth_bootstrap_file;
  // TLS (docs/security.md). With a certificate and its key, every port of the node (the client
  // and internode port, RESP, HTTP) speaks TLS only, and the node dials other nodes with TLS,
  // verifying them against `tls.ca` (empty: the system's CAs). Reloaded by ReloadTls().
  net::TlsFiles tls;
  // Mutual TLS between nodes: the node presents its certificate when it dials another, and serves
  // the internode protocol only to peers whose certificate `tls.ca` signed.
  bool internode_tls = false;
  int64_t debug_clock_skew_ms = 0;  // tests only: shifts this node's wall clock
  // Called (from a reactor) when the node must stop: a peer refused it for a different
  // membership. The caller should then Stop() the server and exit with an error.
  std::function<void(const Status&)> on_fatal;
  // Called (from any thread) when this node has left the cluster (decommissioned or removed):
  // the caller should Stop() the server and exit successfully.
  std::function<void()> on_left;
};

class Server {
 public:
  // Opens everything and starts listening and gossiping. Errors name what went wrong (an
  // unusable data directory, a taken port, options that contradict the data directory).
  static Result<std::unique_ptr<Server>> Start(const ServerOptions& options);

  // Stops accepting, closes connections, finishes what is in flight, closes the database.
  // Idempotent; also run by the destructor.
  void Stop();
  ~Server();

  const asio::ip::tcp::endpoint& endpoint() const { return endpoint_; }
  std::string address() const;
  // "HOST:PORT" of the HTTP front door; empty when it is off.
  std::string http_address() const;
  // "HOST:PORT" of the RESP front door; empty when it is off.
  std::string resp_address() const;
  uint32_t node_id() const { return identity_.node_id; }
  uint32_t reactor_threads() const { return static_cast<uint32_t>(reactors_.size()); }
  bool tls() const { return tls_ != nullptr; }

  // Reads the TLS certificate, key and CA files again (SIGHUP): connections opened from now on
  // use them, open ones continue. When a file is missing or bad the node keeps the ones it has
  // and the error says why; FAILED_PRECONDITION when the node runs without TLS. Logs the outcome.
  // Any thread.
  Status ReloadTls();

 private:
  struct Reactor {
    asio::io_context io{1};
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    std::thread thread;
  };

  explicit Server(ServerOptions options) : options_(std::move(options)) {}
  Status Open();
  // The parts of Open(), in order.
  Status CheckAuthOptions();
  Status OpenStorage();
  Status OpenCluster();
  void OpenCoordinator();
  void OpenFrontDoors();
  void StartServing();
  // Takes the data directory's lock; FAILED_PRECONDITION when another cairnd holds it.
  Status LockDataDirectory();
  // Opens the client/internode acceptor and, with --http and --resp, those front doors' ones.
  Status Listen();
  // Checks the TLS options and loads the files (no TLS options: nothing).
  Status LoadTls();
  // The accepted `socket` as a stream, after the TLS handshake when the node speaks TLS; nullopt
  // (logged, the connection closed) when the handshake fails or takes too long.
  asio::awaitable<std::optional<net::Stream>> Accept(asio::ip::tcp::socket socket);
  Result<std::unique_ptr<asio::ip::tcp::acceptor>> OpenAcceptor(std::string_view flag,
                                                                const std::string& host_port);
  // Whether the node serves clients: storage open, cluster formed, not shutting down.
  Status Ready() const;
  // The figures of every layer for /metrics.
  void RegisterMetrics();
  enum class Port { kMain, kHttp, kResp };  // what an acceptor serves
  asio::awaitable<void> AcceptLoop(asio::ip::tcp::acceptor* acceptor, Port port);
  asio::awaitable<void> ServeHttp(asio::ip::tcp::socket socket);
  asio::awaitable<void> Route(asio::ip::tcp::socket socket);
  asio::awaitable<void> ServeResp(asio::ip::tcp::socket socket);
  void ReservationTicker();
  // Wakes every kLagTick on reactor `index` and records how late it woke: a reactor thread that
  // something blocked (or that the machine starved of CPU) delays every request it serves.
  asio::awaitable<void> WatchReactorLag(size_t index);

  const ServerOptions options_;
  std::unique_ptr<net::TlsContexts> tls_;  // null: plain TCP
  // Shared by the front doors' connections on every reactor. Declared before the reactors: their
  // io_contexts, destroyed after it otherwise, may still hold connections that give memory back.
  std::unique_ptr<base::MemoryBudget> request_memory_;
  // The first superuser's name and password, from --auth-bootstrap-file.
  std::optional<std::pair<std::string, std::string>> bootstrap_user_;
  std::vector<std::unique_ptr<Reactor>> reactors_;
  // With --auth: the login and permission checks every front door makes; null without. After the
  // reactors: destroyed first, its hashing thread finishing (and posting to a live io_context).
  std::unique_ptr<base::AccessControl> access_;
  std::unique_ptr<asio::ip::tcp::acceptor> acceptor_;
  asio::ip::tcp::endpoint endpoint_;
  std::unique_ptr<asio::ip::tcp::acceptor> resp_acceptor_;
  asio::ip::tcp::endpoint resp_endpoint_;
  std::unique_ptr<base::PhysicalClock> wall_;
  // An flock on <data dir>/cairnd.lock, held while the process runs: one cairnd per directory.
  int dir_lock_fd_ = -1;
  std::unique_ptr<storage::Engine> engine_;
  cluster::NodeIdentity identity_;
  std::unique_ptr<base::HybridClock> clock_;
  std::unique_ptr<cluster::Schema> schema_;
  std::unique_ptr<asio::thread_pool> blocking_;
  std::unique_ptr<replica::Replica> replica_;
  std::vector<std::unique_ptr<cluster::InternodeClient>> clients_;  // one per reactor
  std::unique_ptr<cluster::Gossiper> gossiper_;
  std::unique_ptr<coordinator::HintStore> hints_;
  std::unique_ptr<coordinator::HintReplayer> replayer_;
  std::unique_ptr<coordinator::ClusterCoordinator> coordinator_;
  std::unique_ptr<replica::PartitionStreamer> streamer_;
  std::unique_ptr<coordinator::TopologyDriver> driver_;
  std::unique_ptr<coordinator::BackgroundRepairer> repairer_;
  std::unique_ptr<coordinator::AutoSplitter> auto_splitter_;
  std::atomic<uint64_t> pulling_epoch_{0};  // the newest epoch a pull was started for
  std::unique_ptr<frontdoor::native::NativeFrontDoor> native_;
  std::unique_ptr<frontdoor::resp::RespFrontDoor> resp_;
  std::unique_ptr<asio::ip::tcp::acceptor> http_acceptor_;
  asio::ip::tcp::endpoint http_endpoint_;
  std::unique_ptr<frontdoor::http::HttpFrontDoor> http_;
  base::metrics::Registry metrics_;
  base::metrics::RequestMetrics requests_;
  std::atomic<bool> serving_{false};
  std::unique_ptr<replica::InternodeService> internode_;
  // Connections accepted and not yet closed, of every protocol (also those still to send their
  // preamble): what --max-connections limits.
  std::atomic<size_t> open_connections_{0};

  std::mutex ticker_mu_;
  std::condition_variable ticker_cv_;
  bool stopping_ = false;  // guarded by ticker_mu_
  std::thread ticker_;
  base::metrics::LatencyHistogram reactor_lag_;  // see WatchReactorLag
  bool stopped_ = false;
};

}  // namespace cairn::server
