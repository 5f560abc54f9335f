// The native driver: Cairn's client library (pooled pipelined connections; single-key requests
// routed to a replica of their key unless token_aware is off, the rest spread over the servers).
#include <cstdlib>

#include <fmt/format.h>

#include "bench/driver.h"
#include "cairn/client.h"

namespace cairn::bench {

namespace asio = boost::asio;

namespace {

std::optional<Consistency> Level(const std::string& name) {
  if (name.empty()) return std::nullopt;
  return ParseConsistency(name);
}

class NativeSession : public Session {
 public:
  NativeSession(AsyncClient* client, const DriverOptions* options)
      : client_(client), options_(options) {}

  asio::awaitable<Status> Read(const std::string& key) override {
    auto r = co_await client_->Get(key);
    co_return r.status();
  }

  asio::awaitable<Status> Write(const std::string& key, std::string_view value) override {
    auto r = co_await client_->Put(key, std::string(value));
    co_return r.status();
  }

  asio::awaitable<Status> Scan(const std::string& prefix, uint32_t limit) override {
    ScanOptions scan;
    scan.limit = limit;
    scan.consistency = Level(options_->read_cl);
    auto r = co_await client_->Scan(prefix, std::move(scan));
    co_return r.status();
  }

  asio::awaitable<Result<std::optional<std::string>>> ReadVersion(const std::string& key) override {
    auto read = co_await client_->Get(key);
    if (!read.ok()) co_return read.status();
    std::optional<std::string> version;
    if (*read) version = (*read)->version.ToString();
    co_return version;
  }

  asio::awaitable<Result<CasOutcome>> Cas(const std::string& key,
                                          const std::optional<std::string>& expected,
                                          std::string_view value) override {
    CasCondition condition = CasCondition::IfNotExists();
    if (expected) {
      auto v = Version::Parse(*expected);
      if (!v) co_return Status::InvalidArgument("bad version " + *expected);
      condition = CasCondition::IfVersion(*v);
    }
    WriteOptions write;
    write.commit_consistency = Level(options_->commit_cl);
    auto r = co_await client_->Cas(key, std::move(condition), std::string(value), std::move(write));
    if (!r.ok()) co_return r.status();
    CasOutcome out;
    out.applied = r->applied;
    if (r->current) out.version = r->current->version.ToString();
    co_return out;
  }

  asio::awaitable<Status> Ping() override {
    auto r = co_await client_->Ping();
    co_return r.status();
  }

  asio::awaitable<Status> WriteBatch(
      const std::vector<std::pair<std::string, std::string>>& items) override {
    auto r = co_await client_->BatchPut(items);
    if (!r.ok()) co_return r.status();
    for (const auto& item : *r) {
      if (!item.ok()) co_return item.status();
    }
    co_return Status::Ok();
  }

 private:
  AsyncClient* client_;
  const DriverOptions* options_;
};

class NativeDriver : public Driver {
 public:
  NativeDriver(asio::any_io_executor executor, DriverOptions options)
      : options_(std::move(options)) {
    ClientOptions client;
    client.servers = options_.servers;
    client.connections_per_server = options_.connections;
    client.keyspace = options_.keyspace;
    client.request_timeout = options_.timeout;
    client.token_aware = options_.token_aware;
    client.cache_hot_keys = options_.client_cache;
    // Servers with --auth: the user of CAIRN_USER, the password of CAIRN_PASSWORD (as `cairn`).
    if (const char* user = std::getenv("CAIRN_USER")) client.user = user;
    if (const char* password = std::getenv("CAIRN_PASSWORD")) client.password = password;
    client.tls = options_.tls;
    client.tls_ca_file = options_.tls_ca_file;
    if (auto level = Level(options_.read_cl)) client.read_consistency = *level;
    if (auto level = Level(options_.write_cl)) client.write_consistency = *level;
    client_ = std::make_unique<AsyncClient>(std::move(executor), std::move(client));
  }

  asio::awaitable<Status> Start() override {
    auto r = co_await client_->Ping();
    if (!r.ok()) {
      co_return Status(r.status().code(),
                       fmt::format("Cairn at {} does not answer: {}",
                                   fmt::join(options_.servers, ", "), r.status().ToString()));
    }
    co_return Status::Ok();
  }

  std::unique_ptr<Session> NewSession() override {
    return std::make_unique<NativeSession>(client_.get(), &options_);
  }

  bool has_scan() const override { return true; }
  bool has_cas() const override { return true; }
  std::string rmw_meaning() const override {
    return "GET, then CAS on the version read (SERIAL, per-key Paxos); a lost race is counted, "
           "not retried";
  }
  std::string description() const override {
    return fmt::format("Cairn native protocol at {} ({})", fmt::join(options_.servers, ","),
                       options_.token_aware ? "token-aware" : "round robin");
  }

 private:
  const DriverOptions options_;
  std::unique_ptr<AsyncClient> client_;
};

}  // namespace

std::unique_ptr<Driver> MakeNativeDriver(asio::any_io_executor executor, DriverOptions options) {
  return std::make_unique<NativeDriver>(std::move(executor), std::move(options));
}

}  // namespace cairn::bench
