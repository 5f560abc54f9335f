#include "cairn/client.h"

#include <algorithm>
#include <future>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include "base/async.h"
#include "base/model.h"
#include "client/cluster_layout.h"
#include "net/connection_pool.h"
#include "net/tls.h"
#include "proto/native.pb.h"

namespace cairn {

namespace asio = boost::asio;
using base::Clock;
using base::Deadline;

namespace {

using base::kNoThrow;
// The client waits this much longer than the deadline it gives the server, so that the
// server's own TIMEOUT answer (with its ack count) arrives instead of a bare local timeout.
constexpr auto kGrace = std::chrono::milliseconds(100);
// A token-aware client asks for the layout again at most this often when a routed request
// fails to connect, names a keyspace it does not know, or the last attempt failed.
constexpr auto kLayoutRetry = std::chrono::seconds(1);

Status StatusOf(const wire::Error& e) { return StatusFromCode(e.code(), e.message(), e.acks()); }

Version VersionOf(const wire::Version& v) { return Version{v.hlc(), v.node()}; }

Record RecordOf(wire::Record* r) {
  return Record{std::move(*r->mutable_value()), VersionOf(r->version()), r->expires_at_ms()};
}

KeyspaceInfo KeyspaceOf(const wire::Keyspace& k) {
  KeyspaceInfo info;
  info.name = k.name();
  info.id = k.id();
  for (const auto& [dc, rf] : k.replication()) info.replication[dc] = rf;
  if (info.replication.empty() && k.replication_factor() != 0) {
    info.replication[std::string(kEveryDc)] = k.replication_factor();
  }
  info.read_consistency = static_cast<Consistency>(k.read_consistency());
  info.write_consistency = static_cast<Consistency>(k.write_consistency());
  info.created_at_ms = k.created_at_ms();
  info.linearizable = k.linearizable();
  info.auto_split_increments_per_s = k.auto_split_increments_per_s();
  info.auto_split_shards = k.auto_split_shards();
  return info;
}

std::vector<KeyspaceInfo> KeyspacesOf(const wire::KeyspaceListResponse& r) {
  std::vector<KeyspaceInfo> out;
  for (const wire::Keyspace& k : r.keyspaces()) out.push_back(KeyspaceOf(k));
  return out;
}

ClusterInfo ClusterOf(const wire::ClusterStatusResponse& r) {
  ClusterInfo info;
  info.partitions = r.partitions();
  info.formed = r.formed();
  info.note = r.note();
  info.map_fingerprint = r.map_fingerprint();
  info.topology_epoch = r.topology_epoch();
  info.change = r.change();
  for (const wire::NodeStatus& n : r.nodes()) {
    NodeInfo node;
    node.node_id = n.node_id();
    node.address = n.address();
    node.dc = n.dc();
    node.rack = n.rack();
    node.up = n.state() == "UP";
    node.partitions = n.partitions();
    node.load_bytes = n.load_bytes();
    node.dead_bytes = n.dead_bytes();
    node.hints_pending = n.hints_pending();
    node.self = n.self();
    node.member_state = n.member_state();
    node.dead = n.dead();
    node.streams_total = n.streams_total();
    node.streams_done = n.streams_done();
    node.stream_bytes = n.stream_bytes();
    node.stream_chunks = n.stream_chunks();
    node.stream_rate = n.stream_rate();
    if (n.has_streaming()) {
      const wire::StreamingRange& r = n.streaming();
      node.streaming =
          StreamingRange{r.partition(), r.keyspace(), r.source(), r.chunks(), r.bytes()};
    }
    info.nodes.push_back(std::move(node));
  }
  return info;
}

// The key of a single-key request, which a token-aware client routes; null for the others.
const std::string* RoutingKeyOf(const wire::Request& request) {
  switch (request.op_case()) {
    case wire::Request::kGet:
      return &request.get().key();
    case wire::Request::kPut:
      return &request.put().key();
    case wire::Request::kDelete:
      return &request.delete_().key();
    case wire::Request::kCas:
      return &request.cas().key();
    case wire::Request::kIncrement:
      return &request.increment().key();
    default:
      return nullptr;
  }
}

Status DecodeErrorFrame(std::string_view payload) {
  return net::DecodeClosingError<wire::Response>(payload, "the server");
}

}  // namespace

// Logs a new connection in (ClientOptions::user), before it carries any other request.
asio::awaitable<Status> LoginOn(net::MuxConnection& conn, std::string user, std::string password,
                                Deadline deadline) {
  wire::Request request;
  request.mutable_login()->set_user(std::move(user));
  request.mutable_login()->set_password(std::move(password));
  const size_t size = request.ByteSizeLong();
  auto payload = co_await conn.Call(
      size,
      [&](char* dest) {
        request.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(dest));
      },
      deadline);
  if (!payload.ok()) co_return payload.status();
  wire::Response response;
  if (!response.ParseFromArray(payload->data(), static_cast<int>(payload->size()))) {
    co_return Status::Internal("malformed response from the server");
  }
  if (response.has_error()) co_return StatusOf(response.error());
  co_return Status::Ok();
}

class AsyncClient::Impl : public std::enable_shared_from_this<AsyncClient::Impl> {
 public:
  Impl(asio::any_io_executor executor, ClientOptions options)
      : options_(std::move(options)),
        tls_(TlsContext(options_)),
        pool_(std::move(executor), PoolOptions(options_, tls_)) {}

  const ClientOptions& options() const { return options_; }

  // Fills the parts of a request every call shares.
  void Prepare(wire::Request* request, const std::optional<std::string>& keyspace,
               std::optional<Consistency> level, Consistency default_level,
               std::chrono::milliseconds timeout) const {
    request->set_keyspace(keyspace.value_or(options_.keyspace));
    request->set_consistency(static_cast<wire::Consistency>(level.value_or(default_level)));
    request->set_timeout_ms(static_cast<uint32_t>(timeout.count()));
  }

  // A request that names no keyspace or level (admin and status calls), with the default timeout.
  wire::Request AdminRequest() const {
    wire::Request request;
    Prepare(&request, std::nullopt, std::nullopt, Consistency::kDefault, options_.request_timeout);
    return request;
  }

  // Sends `request` and returns the response, or the error the server or the connection gave.
  // Idempotent requests are retried when a connection breaks before the answer. A token-aware
  // client sends a single-key request to a replica of its key first.
  // An admin or cluster call: no key, no consistency level, the request timeout; `fill` sets the
  // operation. Round robin over the servers, like every call without a key.
  template <typename Fill>
  asio::awaitable<Result<wire::Response>> CallAdmin(Fill fill, bool idempotent) {
    wire::Request request = AdminRequest();
    fill(request);
    co_return co_await Call(request, idempotent);
  }

  asio::awaitable<Result<wire::Response>> Call(const wire::Request& request, bool idempotent) {
    auto self = shared_from_this();
    closed_ = false;  // later calls reconnect
    const std::string* server = nullptr;
    std::shared_ptr<const client::ClusterLayout> layout;  // keeps `server` alive
    if (options_.token_aware) {
      if (!refreshing_ && Clock::now() >= layout_due_) co_await KeepLayout();
      layout = layout_;
      if (const std::string* key = RoutingKeyOf(request); key != nullptr && layout != nullptr) {
        // Reads of one key take its replicas in turn, so that a hot key's reads do not all
        // land on its first replica; SERIAL reads stay on one coordinator (spreading them would
        // only make their Paxos rounds collide), and so do writes.
        const bool spread = request.op_case() == wire::Request::kGet &&
                            request.consistency() != wire::SERIAL &&
                            request.consistency() != wire::LOCAL_SERIAL;
        server =
            layout->Route(request.keyspace(), *key, options_.local_dc, spread ? ++read_turn_ : 0);
        if (!layout->knows(request.keyspace())) LayoutStale();  // created since the last look
      }
    }
    // A write drops what this client cached of its keys, before it is sent and once it is
    // answered (a read answered meanwhile may have cached the value it replaces).
    ForgetWritten(request);
    auto response = co_await Send(request, idempotent, server);
    ForgetWritten(request);
    co_return response;
  }

  // Answers of reads of hot keys the server said may be cached (docs/hot-keys.md), by keyspace
  // and key. Only reads at ONE and LOCAL_ONE are answered from it.
  struct Cached {
    std::optional<Record> record;
    Clock::time_point until;
  };
  static std::string CacheKey(std::string_view keyspace, std::string_view key) {
    std::string k;
    k.reserve(keyspace.size() + 1 + key.size());
    k.append(keyspace).push_back('\0');
    k.append(key);
    return k;
  }
  bool Caches(const wire::Request& request) const {
    return options_.cache_hot_keys &&
           (request.consistency() == wire::ONE || request.consistency() == wire::LOCAL_ONE);
  }
  const Cached* FindCached(const std::string& key) {
    auto it = cache_.find(key);
    if (it == cache_.end()) return nullptr;
    if (Clock::now() >= it->second.until) {
      cache_.erase(it);
      return nullptr;
    }
    return &it->second;
  }
  void Remember(std::string key, const std::optional<Record>& record, uint32_t ms) {
    if (cache_.size() >= kMaxCached) {
      std::erase_if(cache_, [now = Clock::now()](const auto& e) { return now >= e.second.until; });
      if (cache_.size() >= kMaxCached) return;
    }
    cache_[std::move(key)] = Cached{record, Clock::now() + std::chrono::milliseconds(ms)};
  }
  bool HasCached() const { return !cache_.empty(); }

  void CloseAll() {
    closed_ = true;
    pool_.CloseAll();
  }

 private:
  // The client's TLS context: null without TLS, an error when its CA file is unusable.
  static Result<std::shared_ptr<net::ssl::context>> TlsContext(const ClientOptions& o) {
    if (!o.tls && o.tls_ca_file.empty()) return std::shared_ptr<net::ssl::context>();
    net::TlsFiles files;
    files.ca = o.tls_ca_file;
    return net::MakeClientContext(files);
  }

  static net::ConnectionPool::Options PoolOptions(
      const ClientOptions& o, const Result<std::shared_ptr<net::ssl::context>>& tls) {
    net::ConnectionPool::Options p;
    if (tls.ok() && *tls) p.connection.tls = [context = *tls] { return context; };
    p.connection.max_payload = o.max_frame_bytes;
    p.decode_error = DecodeErrorFrame;
    p.per_peer = o.connections_per_server;
    p.connect_timeout = o.connect_timeout;
    if (!o.user.empty()) {
      p.on_open = [user = o.user, password = o.password](net::MuxConnection& conn,
                                                         Deadline deadline) {
        return LoginOn(conn, user, password, deadline);
      };
    }
    return p;
  }

  // Call() without routing: to `server` first when not null, then round robin.
  asio::awaitable<Result<wire::Response>> Send(const wire::Request& request, bool idempotent,
                                               const std::string* server) {
    const auto timeout = std::chrono::milliseconds(request.timeout_ms());
    const Deadline deadline = Clock::now() + timeout + kGrace;
    Status last = Status::Unavailable("no server configured");
    const int attempts = 1 + (idempotent ? std::max(0, options_.read_retries) : 0);
    for (int attempt = 0; attempt < attempts && Clock::now() < deadline; ++attempt) {
      if (attempt > 0 && closed_) break;  // Close() fails the calls in flight: no reconnecting
      // A retry goes round robin: the routed node may be the one that failed.
      const std::string* preferred = attempt == 0 ? server : nullptr;
      auto conn = co_await Acquire(preferred, deadline);
      if (!conn.ok()) co_return conn.status();
      const size_t size = request.ByteSizeLong();
      auto payload = co_await (*conn)->Call(
          size,
          [&](char* dest) {
            request.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(dest));
          },
          deadline);
      if (!payload.ok()) {
        last = payload.status();
        if (preferred != nullptr) LayoutStale();  // the replica may be down
        // Not sent at all: safe to try again. Sent, then the connection broke: only reads.
        if (last.code() == Code::kUnavailable) continue;
        if (last.code() == Code::kTimeout && idempotent && (*conn)->broken()) continue;
        co_return last;
      }
      wire::Response response;
      if (!response.ParseFromArray(payload->data(), static_cast<int>(payload->size()))) {
        co_return Status::Internal("malformed response from the server");
      }
      if (response.has_error()) {
        Status s = StatusOf(response.error());
        if (!s.ok()) co_return s;
      }
      co_return response;
    }
    co_return last;
  }

  // A live connection to `preferred` when given and reachable, else to one of the servers,
  // trying them in turn.
  asio::awaitable<Result<std::shared_ptr<net::MuxConnection>>> Acquire(const std::string* preferred,
                                                                       Deadline deadline) {
    if (!tls_.ok()) co_return tls_.status();
    if (preferred != nullptr) {
      auto conn = co_await pool_.Acquire(*preferred, deadline);
      if (conn.ok()) co_return conn;
      LayoutStale();
    }
    Status last = Status::Unavailable("no server configured");
    for (size_t tried = 0; tried < options_.servers.size(); ++tried) {
      const std::string& server = options_.servers[next_++ % options_.servers.size()];
      auto conn = co_await pool_.Acquire(server, deadline);
      if (conn.ok() || conn.status().code() == Code::kInvalidArgument ||
          conn.status().code() == Code::kUnauthenticated) {
        co_return conn;
      }
      last = conn.status();
    }
    co_return last;
  }

  // ------------------------------------------------------------------------------------------
  // The layout of a token-aware client.

  // Refreshes the layout, which is due. The first call waits for it, so that routing starts with
  // the first request; later refreshes run beside the calls.
  asio::awaitable<void> KeepLayout() {
    if (!layout_asked_) {
      co_await RefreshLayout();
      co_return;
    }
    auto executor = co_await asio::this_coro::executor;
    // RefreshLayout records every outcome in the layout state: nothing escapes it.
    asio::co_spawn(executor, RefreshLayout(), asio::detached);
  }

  // Asks a server for the members and the keyspaces and replaces the layout. On failure the old
  // layout stays, unless the cluster's answer itself cannot be routed by (then none: round
  // robin), and the next attempt is kLayoutRetry later.
  asio::awaitable<void> RefreshLayout() {
    auto self = shared_from_this();
    refreshing_ = true;
    layout_asked_ = true;
    layout_started_ = Clock::now();
    layout_due_ = layout_started_ + kLayoutRetry;
    auto layout = co_await FetchLayout();
    refreshing_ = false;
    if (layout.ok()) {
      layout_ = std::make_shared<const client::ClusterLayout>(std::move(*layout));
      layout_due_ = layout_started_ + options_.layout_refresh;
    } else if (layout.status().code() == Code::kInvalidArgument) {
      layout_.reset();
    }
    // Closed while the refresh ran, and no call since: leave no connection it opened behind.
    if (closed_) pool_.CloseAll();
  }

  asio::awaitable<Result<client::ClusterLayout>> FetchLayout() {
    wire::Request status_request = AdminRequest();
    status_request.mutable_cluster_status();
    auto status = co_await Send(status_request, /*idempotent=*/true, nullptr);
    if (!status.ok()) co_return status.status();
    if (closed_) co_return Status::Unavailable("the client was closed");
    wire::Request list_request = AdminRequest();
    list_request.mutable_keyspace_list();
    auto list = co_await Send(list_request, /*idempotent=*/true, nullptr);
    if (!list.ok()) co_return list.status();
    const ClusterInfo cluster = ClusterOf(status->cluster_status());
    const std::vector<KeyspaceInfo> keyspaces = KeyspacesOf(list->keyspace_list());
    co_return client::ClusterLayout::Make(cluster, keyspaces, options_.servers);
  }

  // Asks for the layout again soon: a routed node failed, or a keyspace is new.
  void LayoutStale() {
    if (layout_asked_) layout_due_ = std::min(layout_due_, layout_started_ + kLayoutRetry);
  }

  const ClientOptions options_;
  const Result<std::shared_ptr<net::ssl::context>> tls_;
  net::ConnectionPool pool_;
  size_t next_ = 0;
  bool closed_ = false;  // CloseAll() ran and no call came since
  // Token-aware routing (all on the client's executor).
  std::shared_ptr<const client::ClusterLayout> layout_;  // null: round robin
  bool layout_asked_ = false;                            // the first refresh has started
  bool refreshing_ = false;
  uint64_t read_turn_ = 0;  // of the next read routed by key (ClusterLayout::Route)
  static constexpr size_t kMaxCached = 10'000;
  std::unordered_map<std::string, Cached> cache_;

  void ForgetWritten(const wire::Request& request) {
    if (cache_.empty()) return;
    const std::string& ks = request.keyspace();
    switch (request.op_case()) {
      case wire::Request::kPut:
        cache_.erase(CacheKey(ks, request.put().key()));
        break;
      case wire::Request::kDelete:
        cache_.erase(CacheKey(ks, request.delete_().key()));
        break;
      case wire::Request::kCas:
        cache_.erase(CacheKey(ks, request.cas().key()));
        break;
      case wire::Request::kIncrement:
        cache_.erase(CacheKey(ks, request.increment().key()));
        break;
      case wire::Request::kBatchPut:
        for (const wire::PutRequest& item : request.batch_put().items()) {
          cache_.erase(CacheKey(ks, item.key()));
        }
        break;
      default:
        break;
    }
  }
  Clock::time_point layout_started_{};  // of the last refresh
  Clock::time_point layout_due_{};      // of the next one
};

AsyncClient::AsyncClient(asio::any_io_executor executor, ClientOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options))) {}

AsyncClient::~AsyncClient() { impl_->CloseAll(); }

void AsyncClient::Close() { impl_->CloseAll(); }

asio::awaitable<Result<std::optional<Record>>> AsyncClient::Get(std::string key,
                                                                ReadOptions options) {
  auto impl = impl_;
  wire::Request request;
  impl->Prepare(&request, options.keyspace, options.consistency, impl->options().read_consistency,
                options.timeout.value_or(impl->options().request_timeout));
  request.mutable_get()->set_key(std::move(key));
  const bool caches = impl->Caches(request);
  if (caches && impl->HasCached()) {
    const std::string cache_key = Impl::CacheKey(request.keyspace(), request.get().key());
    if (const auto* cached = impl->FindCached(cache_key)) co_return cached->record;
  }
  auto response = co_await impl->Call(request, /*idempotent=*/true);
  if (!response.ok()) co_return response.status();
  wire::GetResponse* get = response->mutable_get();
  std::optional<Record> record;
  if (get->found()) record = RecordOf(get->mutable_record());
  if (caches && get->cache_ms() > 0) {
    impl->Remember(Impl::CacheKey(request.keyspace(), request.get().key()), record,
                   get->cache_ms());
  }
  co_return record;
}

asio::awaitable<Result<Version>> AsyncClient::Put(std::string key, std::string value,
                                                  WriteOptions options) {
  auto impl = impl_;
  wire::Request request;
  impl->Prepare(&request, options.keyspace, options.consistency, impl->options().write_consistency,
                options.timeout.value_or(impl->options().request_timeout));
  wire::PutRequest* put = request.mutable_put();
  put->set_key(std::move(key));
  put->set_value(std::move(value));
  put->set_ttl_ms(static_cast<uint64_t>(options.ttl.count()));
  auto response = co_await impl->Call(request, /*idempotent=*/false);
  if (!response.ok()) co_return response.status();
  co_return VersionOf(response->put().version());
}

asio::awaitable<Result<Version>> AsyncClient::Delete(std::string key, WriteOptions options) {
  auto impl = impl_;
  wire::Request request;
  impl->Prepare(&request, options.keyspace, options.consistency, impl->options().write_consistency,
                options.timeout.value_or(impl->options().request_timeout));
  request.mutable_delete_()->set_key(std::move(key));
  auto response = co_await impl->Call(request, /*idempotent=*/false);
  if (!response.ok()) co_return response.status();
  co_return VersionOf(response->delete_().version());
}

asio::awaitable<Result<CasResult>> AsyncClient::Cas(std::string key, CasCondition condition,
                                                    std::optional<std::string> new_value,
                                                    WriteOptions options) {
  auto impl = impl_;
  wire::Request request;
  impl->Prepare(&request, options.keyspace, options.consistency, Consistency::kDefault,
                options.timeout.value_or(impl->options().request_timeout));
  wire::CasRequest* cas = request.mutable_cas();
  cas->set_key(std::move(key));
  // The public condition and the server's have the same kinds, in the same order.
  static_assert(static_cast<int>(CasCondition::Kind::kIfExists) ==
                static_cast<int>(base::CasCondition::Kind::kIfExists));
  base::ConditionToProto(base::CasCondition{static_cast<base::CasCondition::Kind>(condition.kind()),
                                            condition.version(), condition.value()},
                         cas);
  if (new_value) {
    cas->set_new_value(std::move(*new_value));
  } else {
    cas->set_delete_(true);
  }
  cas->set_ttl_ms(static_cast<uint64_t>(options.ttl.count()));
  if (options.commit_consistency) {
    cas->set_commit_consistency(static_cast<wire::Consistency>(*options.commit_consistency));
  }
  auto response = co_await impl->Call(request, /*idempotent=*/false);
  if (!response.ok()) co_return response.status();
  wire::CasResponse* out = response->mutable_cas();
  CasResult result;
  result.applied = out->applied();
  if (out->found()) result.current = RecordOf(out->mutable_current());
  co_return result;
}

namespace {

// An increment of `key`, `fill` setting how much; the serial level is the write options' level.
template <typename Fill>
asio::awaitable<Result<IncrementResult>> CallIncrement(std::shared_ptr<AsyncClient::Impl> impl,
                                                       std::string key, const WriteOptions& options,
                                                       Fill fill) {
  wire::Request request;
  impl->Prepare(&request, options.keyspace, options.consistency, Consistency::kDefault,
                options.timeout.value_or(impl->options().request_timeout));
  request.mutable_increment()->set_key(std::move(key));
  fill(request.mutable_increment());
  auto response = co_await impl->Call(request, /*idempotent=*/false);
  if (!response.ok()) co_return response.status();
  IncrementResult result;
  result.value = std::move(*response->mutable_increment()->mutable_value());
  result.estimate = response->increment().estimate();
  co_return result;
}

}  // namespace

asio::awaitable<Result<IncrementResult>> AsyncClient::Increment(std::string key, int64_t by,
                                                                WriteOptions options) {
  auto fill = [by](wire::IncrementRequest* r) { r->set_by(by); };  // named: the g++ 12 note
  co_return co_await CallIncrement(impl_, std::move(key), options, fill);
}

asio::awaitable<Result<IncrementResult>> AsyncClient::IncrementByFloat(std::string key,
                                                                       std::string by,
                                                                       WriteOptions options) {
  auto fill = [&by](wire::IncrementRequest* r) { r->set_by_float(std::move(by)); };
  co_return co_await CallIncrement(impl_, std::move(key), options, fill);
}

asio::awaitable<Result<SplitCounterResult>> AsyncClient::SplitCounter(std::string keyspace,
                                                                      std::string key,
                                                                      uint32_t shards) {
  auto impl = impl_;
  auto response = co_await impl->CallAdmin(
      [&](wire::Request& request) {
        request.set_keyspace(keyspace);
        request.mutable_split_counter()->set_key(key);
        request.mutable_split_counter()->set_shards(shards);
        request.mutable_split_counter()->set_merge(shards == 0);
      },
      /*idempotent=*/true);
  if (!response.ok()) co_return response.status();
  SplitCounterResult result;
  result.value = std::move(*response->mutable_split_counter()->mutable_value());
  result.shards = response->split_counter().shards();
  co_return result;
}

asio::awaitable<Result<ScanPage>> AsyncClient::Scan(std::string prefix, ScanOptions options) {
  auto impl = impl_;
  wire::Request request;
  impl->Prepare(&request, options.keyspace, options.consistency, impl->options().read_consistency,
                options.timeout.value_or(impl->options().request_timeout));
  wire::ScanRequest* scan = request.mutable_scan();
  scan->set_prefix(std::move(prefix));
  scan->set_cursor(std::move(options.cursor));
  scan->set_limit(options.limit);
  auto response = co_await impl->Call(request, /*idempotent=*/true);
  if (!response.ok()) co_return response.status();
  wire::ScanResponse* out = response->mutable_scan();
  ScanPage page;
  page.entries.reserve(out->entries_size());
  for (wire::ScanEntry& e : *out->mutable_entries()) {
    page.entries.emplace_back(std::move(*e.mutable_key()), RecordOf(e.mutable_record()));
  }
  page.cursor = std::move(*out->mutable_cursor());
  co_return page;
}

asio::awaitable<Result<std::vector<Result<std::optional<Record>>>>> AsyncClient::BatchGet(
    std::vector<std::string> keys, ReadOptions options) {
  auto impl = impl_;
  wire::Request request;
  impl->Prepare(&request, options.keyspace, options.consistency, impl->options().read_consistency,
                options.timeout.value_or(impl->options().request_timeout));
  for (std::string& k : keys) request.mutable_batch_get()->add_keys(std::move(k));
  auto response = co_await impl->Call(request, /*idempotent=*/true);
  if (!response.ok()) co_return response.status();
  std::vector<Result<std::optional<Record>>> out;
  for (wire::GetItem& item : *response->mutable_batch_get()->mutable_items()) {
    Status s = StatusOf(item.error());
    if (!s.ok()) {
      out.emplace_back(std::move(s));
    } else if (!item.found()) {
      out.emplace_back(std::optional<Record>());
    } else {
      out.emplace_back(std::optional<Record>(RecordOf(item.mutable_record())));
    }
  }
  co_return out;
}

asio::awaitable<Result<std::vector<Result<Version>>>> AsyncClient::BatchPut(
    std::vector<std::pair<std::string, std::string>> items, WriteOptions options) {
  auto impl = impl_;
  wire::Request request;
  impl->Prepare(&request, options.keyspace, options.consistency, impl->options().write_consistency,
                options.timeout.value_or(impl->options().request_timeout));
  for (auto& [key, value] : items) {
    wire::PutRequest* put = request.mutable_batch_put()->add_items();
    put->set_key(std::move(key));
    put->set_value(std::move(value));
    put->set_ttl_ms(static_cast<uint64_t>(options.ttl.count()));
  }
  auto response = co_await impl->Call(request, /*idempotent=*/false);
  if (!response.ok()) co_return response.status();
  std::vector<Result<Version>> versions;
  for (const wire::PutItem& item : response->batch_put().items()) {
    Status s = StatusOf(item.error());
    if (s.ok()) {
      versions.emplace_back(VersionOf(item.version()));
    } else {
      versions.emplace_back(std::move(s));
    }
  }
  co_return versions;
}

asio::awaitable<Result<KeyspaceInfo>> AsyncClient::CreateKeyspace(KeyspaceSpec spec,
                                                                  bool if_not_exists) {
  auto impl = impl_;
  auto response = co_await impl->CallAdmin(
      [&](wire::Request& request) {
        wire::KeyspaceCreateRequest* create = request.mutable_keyspace_create();
        create->set_if_not_exists(if_not_exists);
        wire::Keyspace* ks = create->mutable_keyspace();
        ks->set_name(std::move(spec.name));
        for (const auto& [dc, rf] : spec.replication) (*ks->mutable_replication())[dc] = rf;
        ks->set_read_consistency(static_cast<wire::Consistency>(spec.read_consistency));
        ks->set_write_consistency(static_cast<wire::Consistency>(spec.write_consistency));
        ks->set_linearizable(spec.linearizable);
        ks->set_auto_split_increments_per_s(spec.auto_split_increments_per_s);
        ks->set_auto_split_shards(spec.auto_split_shards);
      },
      /*idempotent=*/false);
  if (!response.ok()) co_return response.status();
  co_return KeyspaceOf(response->keyspace_create().keyspace());
}

asio::awaitable<Result<std::vector<KeyspaceInfo>>> AsyncClient::ListKeyspaces() {
  auto impl = impl_;
  auto response =
      co_await impl->CallAdmin([&](wire::Request& request) { request.mutable_keyspace_list(); },
                               /*idempotent=*/true);
  if (!response.ok()) co_return response.status();
  co_return KeyspacesOf(response->keyspace_list());
}

asio::awaitable<Result<KeyspaceInfo>> AsyncClient::DescribeKeyspace(std::string name) {
  auto impl = impl_;
  auto response = co_await impl->CallAdmin(
      [&](wire::Request& request) {
        request.mutable_keyspace_describe()->set_name(std::move(name));
      },
      /*idempotent=*/true);
  if (!response.ok()) co_return response.status();
  co_return KeyspaceOf(response->keyspace_describe().keyspace());
}

asio::awaitable<Status> AsyncClient::DropKeyspace(std::string name, bool if_exists) {
  auto impl = impl_;
  auto response = co_await impl->CallAdmin(
      [&](wire::Request& request) {
        request.mutable_keyspace_drop()->set_name(std::move(name));
        request.mutable_keyspace_drop()->set_if_exists(if_exists);
      },
      /*idempotent=*/false);
  co_return response.status();
}

asio::awaitable<Result<KeyspaceInfo>> AsyncClient::AlterKeyspace(std::string name,
                                                                 KeyspaceChange change) {
  auto impl = impl_;
  // Applying the same change twice gives the same result.
  auto response = co_await impl->CallAdmin(
      [&](wire::Request& request) {
        wire::KeyspaceAlterRequest* alter = request.mutable_keyspace_alter();
        alter->set_name(std::move(name));
        if (change.linearizable) alter->set_linearizable(*change.linearizable);
        if (change.auto_split_increments_per_s) {
          alter->set_auto_split_increments_per_s(*change.auto_split_increments_per_s);
        }
        if (change.auto_split_shards) alter->set_auto_split_shards(*change.auto_split_shards);
        if (change.read_consistency) {
          alter->set_read_consistency(static_cast<wire::Consistency>(*change.read_consistency));
        }
        if (change.write_consistency) {
          alter->set_write_consistency(static_cast<wire::Consistency>(*change.write_consistency));
        }
      },
      /*idempotent=*/true);
  if (!response.ok()) co_return response.status();
  co_return KeyspaceOf(response->keyspace_alter().keyspace());
}

asio::awaitable<Result<ServerInfo>> AsyncClient::Ping() {
  auto impl = impl_;
  auto response = co_await impl->CallAdmin([&](wire::Request& request) { request.mutable_ping(); },
                                           /*idempotent=*/true);
  if (!response.ok()) co_return response.status();
  co_return ServerInfo{response->ping().node(), response->ping().server_version()};
}

asio::awaitable<Result<std::map<std::string, uint64_t>>> AsyncClient::Metrics() {
  auto impl = impl_;
  auto response =
      co_await impl->CallAdmin([&](wire::Request& request) { request.mutable_metrics(); },
                               /*idempotent=*/true);
  if (!response.ok()) co_return response.status();
  const auto& counters = response->metrics().counters();
  co_return std::map<std::string, uint64_t>(counters.begin(), counters.end());
}

asio::awaitable<Result<ClusterInfo>> AsyncClient::ChangeNode(NodeOperation op, uint32_t node_id) {
  auto impl = impl_;
  wire::NodeOperationRequest::Kind kind = wire::NodeOperationRequest::CANCEL;
  if (op == NodeOperation::kDecommission) kind = wire::NodeOperationRequest::DECOMMISSION;
  if (op == NodeOperation::kRemove) kind = wire::NodeOperationRequest::REMOVE;
  if (op == NodeOperation::kJoin) kind = wire::NodeOperationRequest::JOIN;
  if (op == NodeOperation::kReplace) kind = wire::NodeOperationRequest::REPLACE;
  // Idempotent: the server answers a repeated request with the change already under way.
  auto response = co_await impl->CallAdmin(
      [&](wire::Request& request) {
        request.mutable_node_operation()->set_kind(kind);
        request.mutable_node_operation()->set_node_id(node_id);
      },
      /*idempotent=*/true);
  if (!response.ok()) co_return response.status();
  ClusterInfo info;
  info.formed = true;
  info.topology_epoch = response->node_operation().topology_epoch();
  info.change = response->node_operation().change();
  co_return info;
}

asio::awaitable<Result<CompactReport>> AsyncClient::Compact() {
  auto impl = impl_;
  // Not retried: a compaction that lost its answer goes on on the server; a second one would
  // only compact what the first left.
  auto response =
      co_await impl->CallAdmin([&](wire::Request& request) { request.mutable_compact(); },
                               /*idempotent=*/false);
  if (!response.ok()) co_return response.status();
  CompactReport report;
  report.bytes_before = response->compact().bytes_before();
  report.bytes_after = response->compact().bytes_after();
  report.took = std::chrono::milliseconds(response->compact().milliseconds());
  co_return report;
}

asio::awaitable<Result<HotKeysInfo>> AsyncClient::HotKeys(std::string keyspace, uint32_t limit) {
  auto impl = impl_;
  auto response = co_await impl->CallAdmin(
      [&](wire::Request& request) {
        request.set_keyspace(keyspace);
        request.mutable_hot_keys()->set_limit(limit);
        request.mutable_hot_keys()->set_all_keyspaces(keyspace.empty());
      },
      /*idempotent=*/true);
  if (!response.ok()) co_return response.status();
  wire::HotKeysResponse& r = *response->mutable_hot_keys();
  HotKeysInfo info;
  info.nodes_asked = r.nodes_asked();
  info.nodes_missing.assign(r.nodes_missing().begin(), r.nodes_missing().end());
  for (wire::HotKey& k : *r.mutable_keys()) {
    HotKeyInfo h;
    h.keyspace = std::move(*k.mutable_keyspace());
    h.key = std::move(*k.mutable_key());
    h.truncated = k.truncated();
    h.reads_per_s = k.reads_per_s();
    h.writes_per_s = k.writes_per_s();
    h.increments_per_s = k.increments_per_s();
    h.split_shards = k.split_shards();
    h.error_per_s = k.error_per_s();
    for (int i = 0; i < k.nodes_size() && i < k.node_ops_per_s_size(); ++i) {
      h.nodes.emplace_back(k.nodes(i), k.node_ops_per_s(i));
    }
    info.keys.push_back(std::move(h));
  }
  co_return info;
}

namespace {

UserInfo UserOf(const wire::UserInfo& u) {
  UserInfo info;
  info.name = u.name();
  info.superuser = u.superuser();
  info.disabled = u.disabled();
  for (const wire::UserGrantInfo& g : u.grants())
    info.grants.emplace_back(g.keyspace(), g.permissions());
  info.tokens = u.tokens();
  return info;
}

}  // namespace

asio::awaitable<Result<UserChangeResult>> AsyncClient::ChangeUser(UserChange change) {
  auto impl = impl_;
  auto response = co_await impl->CallAdmin(
      [&](wire::Request& request) {
        wire::UserChangeRequest* r = request.mutable_user_change();
        r->set_kind(static_cast<wire::UserChangeRequest::Kind>(change.kind));
        r->set_name(change.name);
        r->set_password(change.password);
        r->set_superuser(change.superuser);
        r->set_keyspace(change.keyspace);
        r->set_permissions(change.permissions);
      },
      /*idempotent=*/false);
  if (!response.ok()) co_return response.status();
  UserChangeResult result;
  if (response->user_change().has_user()) result.user = UserOf(response->user_change().user());
  result.token = response->user_change().token();
  co_return result;
}

asio::awaitable<Result<std::vector<UserInfo>>> AsyncClient::ListUsers() {
  auto impl = impl_;
  auto response = co_await impl->CallAdmin(
      [&](wire::Request& request) { request.mutable_user_list(); }, /*idempotent=*/true);
  if (!response.ok()) co_return response.status();
  std::vector<UserInfo> users;
  for (const wire::UserInfo& u : response->user_list().users()) users.push_back(UserOf(u));
  co_return users;
}

asio::awaitable<Result<RepairReport>> AsyncClient::RepairRange(std::string keyspace,
                                                               uint32_t partition,
                                                               uint32_t only_node) {
  RepairRunTag untracked;
  co_return co_await RepairRange(std::move(keyspace), partition, only_node, std::move(untracked));
}

asio::awaitable<Result<RepairReport>> AsyncClient::RepairRange(std::string keyspace,
                                                               uint32_t partition,
                                                               uint32_t only_node,
                                                               RepairRunTag run) {
  auto impl = impl_;
  // Idempotent: repairing a range twice only compares it twice (and may count it twice in its
  // run's progress, which never goes past the run's total).
  auto response = co_await impl->CallAdmin(
      [&](wire::Request& request) {
        request.set_keyspace(keyspace);
        wire::RepairRequest* repair = request.mutable_repair();
        repair->set_partition(partition);
        repair->set_only_node(only_node);
        if (run.id != 0) {
          repair->set_run_id(run.id);
          repair->set_run_index(run.index);
          repair->set_run_total(run.total);
          for (const std::string& ks : run.keyspaces) repair->add_run_keyspaces(ks);
          if (run.partition) repair->set_run_partition(*run.partition);
        }
      },
      /*idempotent=*/true);
  if (!response.ok()) co_return response.status();
  const wire::RepairResponse& r = response->repair();
  RepairReport report;
  report.partition = r.partition();
  report.replicas.assign(r.replicas().begin(), r.replicas().end());
  report.answered = r.answered();
  report.skipped = r.skipped();
  report.segments_differing = r.segments_differing();
  report.keys_compared = r.keys_compared();
  report.keys_repaired = r.keys_repaired();
  report.bytes = r.bytes();
  report.agreed = r.agreed();
  report.tombstones_purged = r.tombstones_purged();
  co_return report;
}

asio::awaitable<Result<ClusterInfo>> AsyncClient::ClusterStatus() {
  auto impl = impl_;
  auto response =
      co_await impl->CallAdmin([&](wire::Request& request) { request.mutable_cluster_status(); },
                               /*idempotent=*/true);
  if (!response.ok()) co_return response.status();
  co_return ClusterOf(response->cluster_status());
}

// ---------------------------------------------------------------------------------------------
// Client: the blocking wrapper runs an AsyncClient on its own I/O thread.

struct Client::State {
  explicit State(ClientOptions options)
      : work(io.get_executor()), async(io.get_executor(), std::move(options)) {
    thread = std::thread([this] { io.run(); });
  }
  ~State() {
    // Closing the connections ends their tasks, after which run() returns by itself.
    asio::post(io, [this] { async.Close(); });
    work.reset();
    thread.join();
  }

  template <typename T>
  T Wait(asio::awaitable<T> op) {
    return asio::co_spawn(io, std::move(op), asio::use_future).get();
  }

  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work;
  AsyncClient async;
  std::thread thread;
};

Client::Client(ClientOptions options) : state_(std::make_unique<State>(std::move(options))) {}
Client::~Client() = default;

Result<std::optional<Record>> Client::Get(std::string key, ReadOptions options) {
  return state_->Wait(state_->async.Get(std::move(key), std::move(options)));
}
Result<Version> Client::Put(std::string key, std::string value, WriteOptions options) {
  return state_->Wait(state_->async.Put(std::move(key), std::move(value), std::move(options)));
}
Result<Version> Client::Delete(std::string key, WriteOptions options) {
  return state_->Wait(state_->async.Delete(std::move(key), std::move(options)));
}
Result<CasResult> Client::Cas(std::string key, CasCondition condition,
                              std::optional<std::string> new_value, WriteOptions options) {
  return state_->Wait(state_->async.Cas(std::move(key), std::move(condition), std::move(new_value),
                                        std::move(options)));
}
Result<ScanPage> Client::Scan(std::string prefix, ScanOptions options) {
  return state_->Wait(state_->async.Scan(std::move(prefix), std::move(options)));
}
Result<std::vector<Result<std::optional<Record>>>> Client::BatchGet(std::vector<std::string> keys,
                                                                    ReadOptions options) {
  return state_->Wait(state_->async.BatchGet(std::move(keys), std::move(options)));
}
Result<std::vector<Result<Version>>> Client::BatchPut(
    std::vector<std::pair<std::string, std::string>> items, WriteOptions options) {
  return state_->Wait(state_->async.BatchPut(std::move(items), std::move(options)));
}
Result<KeyspaceInfo> Client::CreateKeyspace(KeyspaceSpec spec, bool if_not_exists) {
  return state_->Wait(state_->async.CreateKeyspace(std::move(spec), if_not_exists));
}
Result<std::vector<KeyspaceInfo>> Client::ListKeyspaces() {
  return state_->Wait(state_->async.ListKeyspaces());
}
Result<KeyspaceInfo> Client::DescribeKeyspace(std::string name) {
  return state_->Wait(state_->async.DescribeKeyspace(std::move(name)));
}
Status Client::DropKeyspace(std::string name, bool if_exists) {
  return state_->Wait(state_->async.DropKeyspace(std::move(name), if_exists));
}
Result<KeyspaceInfo> Client::AlterKeyspace(std::string name, KeyspaceChange change) {
  return state_->Wait(state_->async.AlterKeyspace(std::move(name), std::move(change)));
}
Result<ServerInfo> Client::Ping() { return state_->Wait(state_->async.Ping()); }
Result<std::map<std::string, uint64_t>> Client::Metrics() {
  return state_->Wait(state_->async.Metrics());
}
Result<ClusterInfo> Client::ClusterStatus() { return state_->Wait(state_->async.ClusterStatus()); }
Result<ClusterInfo> Client::ChangeNode(AsyncClient::NodeOperation op, uint32_t node_id) {
  return state_->Wait(state_->async.ChangeNode(op, node_id));
}
Result<CompactReport> Client::Compact() { return state_->Wait(state_->async.Compact()); }
Result<IncrementResult> Client::Increment(std::string key, int64_t by, WriteOptions options) {
  return state_->Wait(state_->async.Increment(std::move(key), by, std::move(options)));
}
Result<IncrementResult> Client::IncrementByFloat(std::string key, std::string by,
                                                 WriteOptions options) {
  return state_->Wait(
      state_->async.IncrementByFloat(std::move(key), std::move(by), std::move(options)));
}
Result<SplitCounterResult> Client::SplitCounter(std::string keyspace, std::string key,
                                                uint32_t shards) {
  return state_->Wait(state_->async.SplitCounter(std::move(keyspace), std::move(key), shards));
}
Result<HotKeysInfo> Client::HotKeys(std::string keyspace, uint32_t limit) {
  return state_->Wait(state_->async.HotKeys(std::move(keyspace), limit));
}
Result<UserChangeResult> Client::ChangeUser(UserChange change) {
  return state_->Wait(state_->async.ChangeUser(std::move(change)));
}
Result<std::vector<UserInfo>> Client::ListUsers() {
  return state_->Wait(state_->async.ListUsers());
}
Result<RepairReport> Client::RepairRange(std::string keyspace, uint32_t partition,
                                         uint32_t only_node) {
  return state_->Wait(state_->async.RepairRange(std::move(keyspace), partition, only_node));
}

Result<RepairReport> Client::RepairRange(std::string keyspace, uint32_t partition,
                                         uint32_t only_node, RepairRunTag run) {
  return state_->Wait(
      state_->async.RepairRange(std::move(keyspace), partition, only_node, std::move(run)));
}

}  // namespace cairn
