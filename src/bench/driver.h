// The seam between the benchmark's workload loop and the system under test: a Driver per driver
// thread, a Session per simulated client. Drivers: Cairn's native protocol (the client
// library), RESP to one server or a list of them (Cairn's RESP door, redis-server), and Redis
// Cluster (keys mapped to slots, sent to the owning master, MOVED/ASK followed).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "cairn/status.h"

namespace cairn::bench {

struct CasOutcome {
  bool applied = false;
  // The key's version after the call (the new one when applied), as the driver spells it; nullopt
  // when the key is absent.
  std::optional<std::string> version;
};

// One client of the benchmark: one request at a time. Each call returns an error only when the
// system failed the request (an absent key is not an error).
class Session {
 public:
  virtual ~Session() = default;

  virtual boost::asio::awaitable<Status> Read(const std::string& key) = 0;
  // An update or an insert: a plain write of the whole value.
  virtual boost::asio::awaitable<Status> Write(const std::string& key, std::string_view value) = 0;
  // Up to `limit` keys (with values) starting with `prefix`, in key order.
  virtual boost::asio::awaitable<Status> Scan(const std::string& prefix, uint32_t limit) = 0;
  // YCSB's read-modify-write: reads `key`, then writes `value`. Returns whether the write applied
  // (false: a compare-and-swap lost to a concurrent writer). See Driver::rmw_meaning(). By
  // default ReadVersion(), then Cas() on the version read.
  virtual boost::asio::awaitable<Result<bool>> ReadModifyWrite(const std::string& key,
                                                               std::string_view value);
  // The key's version as Cas() takes it; nullopt when the key is absent.
  virtual boost::asio::awaitable<Result<std::optional<std::string>>> ReadVersion(
      const std::string& key) = 0;
  // Writes `value` if the key's version is `expected` (nullopt: the key must be absent).
  virtual boost::asio::awaitable<Result<CasOutcome>> Cas(const std::string& key,
                                                         const std::optional<std::string>& expected,
                                                         std::string_view value) = 0;
  // A round trip that touches no data: the protocol's own cost.
  virtual boost::asio::awaitable<Status> Ping() = 0;
  // The load phase: writes every item (not atomically); fails if any item failed.
  virtual boost::asio::awaitable<Status> WriteBatch(
      const std::vector<std::pair<std::string, std::string>>& items) = 0;
};

struct DriverOptions {
  std::vector<std::string> servers;  // HOST:PORT
  uint32_t connections = 4;          // native: pooled connections per server
  std::string keyspace = "default";
  std::string read_cl, write_cl, commit_cl;  // empty: the server's default
  std::chrono::milliseconds timeout{5000};
  // native: send each single-key request to a replica of its key (ClientOptions::token_aware)
  // instead of spreading requests over the servers.
  bool token_aware = true;
  // native: answer reads at ONE of keys the cluster finds hot from the client's cache
  // (ClientOptions::cache_hot_keys).
  bool client_cache = true;
  // native: TLS, verifying the servers against this CA file (empty: the system's CAs).
  bool tls = false;
  std::string tls_ca_file;
};

// Made once per driver thread; its sessions run on the same single-threaded executor.
class Driver {
 public:
  virtual ~Driver() = default;

  // Connects once and learns what the server is. UNAVAILABLE when it cannot be reached,
  // INVALID_ARGUMENT when it cannot do what the options ask (e.g. consistency levels on Redis).
  virtual boost::asio::awaitable<Status> Start() = 0;
  virtual std::unique_ptr<Session> NewSession() = 0;

  virtual bool has_scan() const = 0;  // prefix scans (YCSB E)
  virtual bool has_cas() const = 0;   // compare-and-swap on versions
  // What ReadModifyWrite does on this driver, for the report.
  virtual std::string rmw_meaning() const = 0;
  // One line naming the system under test, e.g. "Cairn RESP door at 127.0.0.1:9101".
  virtual std::string description() const = 0;
};

std::unique_ptr<Driver> MakeNativeDriver(boost::asio::any_io_executor executor,
                                         DriverOptions options);
// RESP2 to `servers`, each session on one connection (sessions take the servers in turn).
std::unique_ptr<Driver> MakeRespDriver(boost::asio::any_io_executor executor,
                                       DriverOptions options);
// Redis Cluster: `servers` are seed nodes; the slot map comes from CLUSTER SLOTS.
std::unique_ptr<Driver> MakeRedisClusterDriver(boost::asio::any_io_executor executor,
                                               DriverOptions options);

}  // namespace cairn::bench
