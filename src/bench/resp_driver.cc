// The RESP drivers: one server or a list of them (Cairn's RESP door, redis-server), and Redis
// Cluster. Each session holds its own connection(s) and sends one command at a time, as a
// client library without pipelining would; the load phase pipelines its batches.
#include <fmt/format.h>

#include <map>

#include "bench/driver.h"
#include "bench/resp_client.h"

namespace cairn::bench {

namespace asio = boost::asio;
using Clock = RespConnection::Clock;

namespace {

constexpr int kMaxRedirects = 5;

std::string Command(std::initializer_list<std::string_view> args) {
  std::string out;
  AppendCommand(&out, args);
  return out;
}

Status ErrorReply(const RespReply& reply) {
  if (reply.text.starts_with("TIMEOUT")) return Status::Timeout(reply.text, 0);
  if (reply.text.starts_with("TRYAGAIN") || reply.text.starts_with("CLUSTERDOWN") ||
      reply.text.starts_with("UNAVAILABLE")) {
    return Status::Unavailable(reply.text);
  }
  return Status::Internal(reply.text);
}

// What every RESP session shares with its driver.
struct RespShared {
  DriverOptions options;
  bool cairn = false;  // the server has Cairn's commands (CAIRN.GETV, CAIRN.CAS, SCAN)
  std::string setup;   // commands sent on every new connection (levels, keyspace)
  size_t setup_replies = 0;
  std::vector<std::string> owner;  // Redis Cluster: the master of each slot
  uint64_t next_server = 0;

  Clock::time_point Deadline() const { return Clock::now() + options.timeout; }
};

// Opens `conn` to `address` and sends the setup commands.
asio::awaitable<Status> Open(RespConnection& conn, const std::string& address,
                             const RespShared& shared) {
  Status s = co_await conn.Connect(address, shared.Deadline());
  if (!s.ok() || shared.setup_replies == 0) co_return s;
  std::vector<RespReply> replies;
  s = co_await conn.Exchange(shared.setup, shared.setup_replies, shared.Deadline(), &replies);
  if (!s.ok()) co_return s;
  for (const RespReply& r : replies) {
    if (r.is_error()) co_return Status::InvalidArgument(address + ": " + r.text);
  }
  co_return Status::Ok();
}

// The commands of the workload, whatever the topology; subclasses say where a key's command goes.
class RespSession : public Session {
 public:
  explicit RespSession(RespShared* shared) : shared_(shared) {}

  asio::awaitable<Status> Read(const std::string& key) override {
    const std::string request = Command({"GET", key});
    auto r = co_await Call(key, request);
    co_return r.status();
  }

  asio::awaitable<Status> Write(const std::string& key, std::string_view value) override {
    const std::string request = Command({"SET", key, value});
    auto r = co_await Call(key, request);
    co_return r.status();
  }

  // Cairn's SCAN with a MATCH of a literal prefix is a prefix scan (Redis's walks every key).
  asio::awaitable<Status> Scan(const std::string& prefix, uint32_t limit) override {
    const std::string pattern = prefix + "*";
    const std::string count = std::to_string(limit);
    const std::string request = Command({"SCAN", "0", "MATCH", pattern, "COUNT", count});
    auto r = co_await Call(prefix, request);
    co_return r.status();
  }

  // On Cairn: CAIRN.GETV, then CAIRN.CAS on the version read. On Redis: GET, then SET, which
  // always applies (not atomic: a concurrent update in between is overwritten).
  asio::awaitable<Result<bool>> ReadModifyWrite(const std::string& key,
                                                std::string_view value) override {
    if (!shared_->cairn) {
      Status s = co_await Read(key);
      if (s.ok()) s = co_await Write(key, value);
      if (!s.ok()) co_return s;
      co_return true;
    }
    co_return co_await Session::ReadModifyWrite(key, value);
  }

  asio::awaitable<Result<std::optional<std::string>>> ReadVersion(const std::string& key) override {
    const std::string request = Command({"CAIRN.GETV", key});
    auto read = co_await Call(key, request);
    if (!read.ok()) co_return read.status();
    std::optional<std::string> version;
    if (read->type == RespReply::Type::kArray && read->elements.size() >= 2) {
      version = read->elements[1].text;
    }
    co_return version;
  }

  asio::awaitable<Result<CasOutcome>> Cas(const std::string& key,
                                          const std::optional<std::string>& expected,
                                          std::string_view value) override {
    if (!shared_->cairn) co_return Status::InvalidArgument("compare-and-swap needs Cairn");
    const std::string& version = expected ? *expected : kAbsent;
    const std::string request = Command({"CAIRN.CAS", key, version, value});
    auto r = co_await Call(key, request);
    if (!r.ok()) co_return r.status();
    if (r->type != RespReply::Type::kArray || r->elements.size() != 2) {
      co_return Status::Internal("unexpected CAIRN.CAS reply");
    }
    CasOutcome out;
    out.applied = r->elements[0].integer == 1;
    if (r->elements[1].type == RespReply::Type::kBulk) out.version = r->elements[1].text;
    co_return out;
  }

  asio::awaitable<Status> Ping() override {
    const std::string request = Command({"PING"});
    auto r = co_await Call(std::string(), request);
    co_return r.status();
  }

 protected:
  inline static const std::string kAbsent = "0";

  // Sends one command about `key` and returns its reply; error replies become errors.
  virtual asio::awaitable<Result<RespReply>> Call(const std::string& key,
                                                  const std::string& request) = 0;

  // Sends `items` as SETs pipelined on `conn` and checks every reply.
  asio::awaitable<Status> PipelineSets(
      RespConnection& conn, const std::vector<const std::pair<std::string, std::string>*>& items) {
    std::string request;
    for (const auto* item : items) AppendCommand(&request, {"SET", item->first, item->second});
    std::vector<RespReply> replies;
    Status s = co_await conn.Exchange(request, items.size(), shared_->Deadline(), &replies);
    if (!s.ok()) co_return s;
    for (const RespReply& r : replies) {
      if (r.is_error()) co_return ErrorReply(r);
    }
    co_return Status::Ok();
  }

  RespShared* shared_;
};

// Every command of a session on one connection to one server.
class SingleServerSession : public RespSession {
 public:
  SingleServerSession(asio::any_io_executor executor, RespShared* shared)
      : RespSession(shared),
        conn_(std::move(executor)),
        address_(shared->options.servers[shared->next_server++ % shared->options.servers.size()]) {}

  asio::awaitable<Status> WriteBatch(
      const std::vector<std::pair<std::string, std::string>>& items) override {
    Status s = co_await EnsureOpen();
    if (!s.ok()) co_return s;
    std::vector<const std::pair<std::string, std::string>*> all;
    for (const auto& item : items) all.push_back(&item);
    co_return co_await PipelineSets(conn_, all);
  }

 protected:
  asio::awaitable<Result<RespReply>> Call(const std::string&, const std::string& request) override {
    Status s = co_await EnsureOpen();
    if (!s.ok()) co_return s;
    auto r = co_await conn_.Call(request, shared_->Deadline());
    if (r.ok() && r->is_error()) co_return ErrorReply(*r);
    co_return r;
  }

 private:
  asio::awaitable<Status> EnsureOpen() {
    if (conn_.connected()) co_return Status::Ok();
    co_return co_await Open(conn_, address_, *shared_);
  }

  RespConnection conn_;
  const std::string address_;
};

// A connection per master it talks to; each command goes to the master of its key's slot.
class ClusterSession : public RespSession {
 public:
  ClusterSession(asio::any_io_executor executor, RespShared* shared)
      : RespSession(shared), executor_(std::move(executor)) {}

  // Groups the items by master and pipelines each group; a group that meets a redirection
  // (the slot map changed) is written item by item, following the redirections.
  asio::awaitable<Status> WriteBatch(
      const std::vector<std::pair<std::string, std::string>>& items) override {
    std::map<std::string, std::vector<const std::pair<std::string, std::string>*>> groups;
    for (const auto& item : items) groups[shared_->owner[KeySlot(item.first)]].push_back(&item);
    for (const auto& [address, group] : groups) {
      auto conn = co_await Connection(address);
      if (!conn.ok()) co_return conn.status();
      Status s = co_await PipelineSets(**conn, group);
      if (s.ok()) continue;
      if (!ParseRedirect(s.message())) co_return s;
      for (const auto* item : group) {
        s = co_await Write(item->first, item->second);
        if (!s.ok()) co_return s;
      }
    }
    co_return Status::Ok();
  }

 protected:
  asio::awaitable<Result<RespReply>> Call(const std::string& key,
                                          const std::string& request) override {
    const uint16_t slot = KeySlot(key);
    std::string address = shared_->owner[slot];
    bool asking = false;
    for (int hop = 0; hop <= kMaxRedirects; ++hop) {
      auto conn = co_await Connection(address);
      if (!conn.ok()) co_return conn.status();
      Result<RespReply> r;
      if (asking) {
        std::string both = Command({"ASKING"});
        both += request;
        std::vector<RespReply> replies;
        Status s = co_await (*conn)->Exchange(both, 2, shared_->Deadline(), &replies);
        if (!s.ok()) co_return s;
        r = std::move(replies[1]);
      } else {
        r = co_await (*conn)->Call(request, shared_->Deadline());
      }
      if (!r.ok() || !r->is_error()) co_return r;
      auto redirect = ParseRedirect(r->text);
      if (!redirect) co_return ErrorReply(*r);
      address = redirect->address;
      asking = redirect->ask;
      if (!asking) shared_->owner[redirect->slot] = address;
    }
    co_return Status::Unavailable(
        fmt::format("more than {} redirections for slot {}", kMaxRedirects, slot));
  }

 private:
  asio::awaitable<Result<RespConnection*>> Connection(const std::string& address) {
    auto& conn = connections_[address];
    if (!conn) conn = std::make_unique<RespConnection>(executor_);
    if (!conn->connected()) {
      Status s = co_await Open(*conn, address, *shared_);
      if (!s.ok()) co_return s;
    }
    co_return conn.get();
  }

  asio::any_io_executor executor_;
  std::map<std::string, std::unique_ptr<RespConnection>> connections_;
};

class RespDriver : public Driver {
 public:
  RespDriver(asio::any_io_executor executor, DriverOptions options, bool cluster)
      : executor_(std::move(executor)), cluster_(cluster) {
    shared_.options = std::move(options);
  }

  asio::awaitable<Status> Start() override {
    const DriverOptions& o = shared_.options;
    if (o.servers.empty()) co_return Status::InvalidArgument("no --server given");
    RespConnection probe(executor_);
    Status s = co_await probe.Connect(o.servers[0], shared_.Deadline());
    if (!s.ok()) co_return s;
    // Cairn answers CAIRN.CONSISTENCY with its levels; Redis with "unknown command".
    const std::string request = Command({"CAIRN.CONSISTENCY"});
    auto r = co_await probe.Call(request, shared_.Deadline());
    if (!r.ok()) co_return r.status();
    shared_.cairn = !r->is_error();
    if (!o.read_cl.empty() || !o.write_cl.empty()) {
      if (!shared_.cairn) {
        co_return Status::InvalidArgument(
            o.servers[0] + " is not Cairn: consistency levels (--read-cl/--write-cl) need Cairn");
      }
      std::vector<std::string_view> args{"CAIRN.CONSISTENCY"};
      if (!o.read_cl.empty()) args.insert(args.end(), {"READ", o.read_cl});
      if (!o.write_cl.empty()) args.insert(args.end(), {"WRITE", o.write_cl});
      AppendCommand(&shared_.setup, args);
      ++shared_.setup_replies;
    }
    if (o.keyspace != "default") {
      if (!shared_.cairn) co_return Status::InvalidArgument("--keyspace needs Cairn");
      AppendCommand(&shared_.setup, {"CAIRN.KEYSPACE", o.keyspace});
      ++shared_.setup_replies;
    }
    if (shared_.cairn && !o.commit_cl.empty()) {
      co_return Status::InvalidArgument("--commit-cl is for the native driver only");
    }
    if (cluster_) s = co_await LoadSlots(probe);
    co_return s;
  }

  std::unique_ptr<Session> NewSession() override {
    if (cluster_) return std::make_unique<ClusterSession>(executor_, &shared_);
    return std::make_unique<SingleServerSession>(executor_, &shared_);
  }

  bool has_scan() const override { return shared_.cairn && !cluster_; }
  bool has_cas() const override { return shared_.cairn; }
  std::string rmw_meaning() const override {
    if (shared_.cairn) return "CAIRN.GETV, then CAIRN.CAS on the version read (SERIAL)";
    return "GET, then SET (not atomic: Redis has no compare-and-swap on a version; a concurrent "
           "update in between is lost)";
  }
  std::string description() const override {
    const std::string what = cluster_        ? "Redis Cluster"
                             : shared_.cairn ? "Cairn RESP door"
                                             : "Redis (RESP)";
    return fmt::format("{} at {}", what, fmt::join(shared_.options.servers, ","));
  }

 private:
  // Fills the slot map from CLUSTER SLOTS: [[first, last, [host, port, id], replicas...], ...].
  asio::awaitable<Status> LoadSlots(RespConnection& probe) {
    const std::string request = Command({"CLUSTER", "SLOTS"});
    auto r = co_await probe.Call(request, shared_.Deadline());
    if (!r.ok()) co_return r.status();
    if (r->is_error()) co_return Status::InvalidArgument("CLUSTER SLOTS: " + r->text);
    shared_.owner.assign(16384, std::string());
    for (const RespReply& range : r->elements) {
      if (range.elements.size() < 3 || range.elements[2].elements.size() < 2) continue;
      const auto& master = range.elements[2].elements;
      const std::string address = fmt::format("{}:{}", master[0].text, master[1].integer);
      for (int64_t slot = range.elements[0].integer;
           slot <= range.elements[1].integer && slot < 16384; ++slot) {
        shared_.owner[static_cast<size_t>(slot)] = address;
      }
    }
    for (const std::string& owner : shared_.owner) {
      if (owner.empty()) co_return Status::Unavailable("the cluster does not cover every slot");
    }
    co_return Status::Ok();
  }

  asio::any_io_executor executor_;
  const bool cluster_;
  RespShared shared_;
};

}  // namespace

std::unique_ptr<Driver> MakeRespDriver(asio::any_io_executor executor, DriverOptions options) {
  return std::make_unique<RespDriver>(std::move(executor), std::move(options), false);
}

std::unique_ptr<Driver> MakeRedisClusterDriver(asio::any_io_executor executor,
                                               DriverOptions options) {
  return std::make_unique<RespDriver>(std::move(executor), std::move(options), true);
}

}  // namespace cairn::bench
