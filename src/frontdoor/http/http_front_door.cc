#include "frontdoor/http/http_front_door.h"

#include <array>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "base/text.h"
#include "frontdoor/http/console.h"
#include "frontdoor/http/http_access.h"
#include "frontdoor/http/url.h"

namespace cairn::frontdoor::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;
using base::metrics::Operation;
using Json = nlohmann::json;
using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;

namespace {

using base::kNoThrow;
constexpr std::string_view kJson = "application/json";
// How long a connection being closed keeps reading (and dropping) what the client still sends.
constexpr auto kLingerTime = std::chrono::milliseconds(1000);

// ---- encoding helpers ---------------------------------------------------------------------------

// Bytes into a JSON object: as a string under `name` when they are UTF-8, else base64 under
// `name`_base64 (JSON strings cannot hold arbitrary bytes).
void PutBytes(Json& obj, const std::string& name, const std::string& bytes) {
  if (base::IsUtf8(bytes)) {
    obj[name] = bytes;
  } else {
    obj[name + "_base64"] = base::Base64(bytes);
  }
}

std::string Dump(const Json& j) {
  // Messages may quote user bytes; never throw on them.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

// Beast's string_view into the standard one.
template <typename S>
std::string_view SV(const S& s) {
  return std::string_view(s.data(), s.size());
}

std::string ETag(const Version& v) { return "\"" + v.ToString() + "\""; }

// ---- responses ----------------------------------------------------------------------------------

Response Make(unsigned status, std::string body, std::string_view content_type) {
  Response res;
  res.result(status);
  res.set(bhttp::field::server, "cairn/" CAIRN_VERSION);
  res.set(bhttp::field::content_type, content_type);
  res.body() = std::move(body);
  return res;
}

Response JsonReply(unsigned status, const Json& j) { return Make(status, Dump(j), kJson); }

// {"error": {"code": "...", "message": "..."}} with `status`.
Response Error(unsigned status, std::string_view code, std::string_view message,
               Json extra = Json::object()) {
  Json e = {{"code", std::string(code)}, {"message", std::string(message)}};
  for (auto& [k, v] : extra.items()) e[k] = v;
  return JsonReply(status, Json{{"error", e}});
}

unsigned HttpStatusOf(Code code) {
  switch (code) {
    case Code::kOk:
      return 200;
    case Code::kNotFound:
      return 404;
    case Code::kConditionFailed:
      return 412;
    case Code::kInvalidArgument:
      return 400;
    case Code::kTooLarge:
      return 413;
    case Code::kAlreadyExists:
      return 409;
    case Code::kUnavailable:
      return 503;
    case Code::kTimeout:
      return 504;
    case Code::kInternal:
      return 500;
    case Code::kFailedPrecondition:
      return 409;
    case Code::kUnauthenticated:
      return 401;
    case Code::kPermissionDenied:
      return 403;
  }
  return 500;
}

Response FromStatus(const Status& s) {
  Json extra = Json::object();
  if (s.code() == Code::kTimeout) {
    extra["acks"] = s.acks();
    extra["may_have_applied"] = true;
  }
  return Error(HttpStatusOf(s.code()), CodeName(s.code()), s.message(), std::move(extra));
}

Response MethodNotAllowed(std::string_view method, std::string_view path, std::string_view allow) {
  Response res = Error(405, "METHOD_NOT_ALLOWED",
                       fmt::format("{} is not allowed on {}; allowed: {}", method, path, allow));
  res.set(bhttp::field::allow, allow);
  return res;
}

// The outcome a request is counted under in cairn_requests_total.
Code OutcomeOf(unsigned status) {
  if (status < 400) return Code::kOk;
  switch (status) {
    case 404:
      return Code::kNotFound;
    case 409:
      return Code::kAlreadyExists;
    case 412:
      return Code::kConditionFailed;
    case 413:
    case 431:
      return Code::kTooLarge;
    case 408:
    case 504:
      return Code::kTimeout;
    case 503:
      return Code::kUnavailable;
    case 500:
      return Code::kInternal;
    case 401:
      return Code::kUnauthenticated;
    case 403:
      return Code::kPermissionDenied;
    default:
      return Code::kInvalidArgument;
  }
}

Json KeyspaceJson(const coordinator::KeyspaceDef& def) {
  Json by_dc = Json::object();
  for (const auto& [dc, rf] : def.replication) by_dc[dc] = rf;
  return {{"name", def.name},
          {"id", def.id},
          {"replication", ReplicationText(def.replication)},
          {"replication_by_dc", by_dc},
          {"read_consistency", std::string(ConsistencyName(def.read_consistency))},
          {"write_consistency", std::string(ConsistencyName(def.write_consistency))},
          {"linearizable", def.linearizable},
          {"auto_split_increments_per_s", def.auto_split_increments_per_s},
          {"auto_split_shards", def.auto_split_shards},
          {"created_at_ms", def.created_at_ms}};
}

// ---- keyspace request bodies --------------------------------------------------------------------
// Each fails with INVALID_ARGUMENT, saying what is wrong, for a field the body gets wrong.

// "read_consistency" or "write_consistency": a level's name.
Status ParseLevelField(const std::string& field, const Json& value, Consistency* level) {
  auto parsed = ParseConsistency(value.get<std::string>());
  if (!parsed || *parsed == Consistency::kDefault) {
    return Status::InvalidArgument(fmt::format("unknown consistency level for {}", field));
  }
  *level = *parsed;
  return Status::Ok();
}

// "auto_split_increments_per_s" or "auto_split_shards": a whole number (its range is the
// coordinator's to check, as for every door).
Status ParseCountField(const std::string& field, const Json& value, uint32_t* out) {
  const uint64_t n = value.get<uint64_t>();
  if (n > UINT32_MAX) return Status::InvalidArgument(fmt::format("{} is too large", field));
  *out = static_cast<uint32_t>(n);
  return Status::Ok();
}

// "replication": a factor for every DC (3), or per DC as text ("dc1=3,dc2=2") or an object.
Status ParseReplicationField(const Json& value, ReplicationMap* replication) {
  if (value.is_number_unsigned()) {
    const uint64_t rf = value.get<uint64_t>();
    if (rf == 0 || rf > kMaxReplicationFactor) {
      return Status::InvalidArgument(fmt::format("replication is 1 to {}", kMaxReplicationFactor));
    }
    *replication = {{std::string(kEveryDc), static_cast<uint32_t>(rf)}};
    return Status::Ok();
  }
  std::string text;
  if (value.is_string()) {
    text = value.get<std::string>();
  } else {
    for (const auto& entry : value.items()) {
      if (!entry.value().is_number_unsigned()) {
        text = "invalid";
        break;
      }
      text += (text.empty() ? "" : ",") + entry.key() + "=" +
              std::to_string(entry.value().get<uint64_t>());
    }
  }
  auto parsed = ParseReplication(text);
  if (!parsed) {
    return Status::InvalidArgument(
        "replication is a factor (3), \"dc1=3,dc2=2\" or {\"dc1\": 3}, each 1 to " +
        std::to_string(kMaxReplicationFactor));
  }
  *replication = std::move(*parsed);
  return Status::Ok();
}

// The body of POST /v1/keyspaces, checked field by field in the body's order.
Status ParseKeyspaceSpec(const Json& body, coordinator::KeyspaceDef* spec, bool* if_not_exists) {
  if (body.is_discarded() || !body.is_object()) {
    return Status::InvalidArgument(
        "the body must be a JSON object such as {\"name\": \"users\", \"replication\": 3}");
  }
  for (const auto& entry : body.items()) {
    const std::string& field = entry.key();
    const Json& value = entry.value();
    Status s;
    if (field == "name" && value.is_string()) {
      spec->name = value.get<std::string>();
    } else if (field == "replication" &&
               (value.is_number_unsigned() || value.is_string() || value.is_object())) {
      s = ParseReplicationField(value, &spec->replication);
    } else if (field == "read_consistency" && value.is_string()) {
      s = ParseLevelField(field, value, &spec->read_consistency);
    } else if (field == "write_consistency" && value.is_string()) {
      s = ParseLevelField(field, value, &spec->write_consistency);
    } else if (field == "linearizable" && value.is_boolean()) {
      spec->linearizable = value.get<bool>();
    } else if (field == "auto_split_increments_per_s" && value.is_number_unsigned()) {
      s = ParseCountField(field, value, &spec->auto_split_increments_per_s);
    } else if (field == "auto_split_shards" && value.is_number_unsigned()) {
      s = ParseCountField(field, value, &spec->auto_split_shards);
    } else if (field == "if_not_exists" && value.is_boolean()) {
      *if_not_exists = value.get<bool>();
    } else {
      s = Status::InvalidArgument(
          fmt::format("unknown field '{}' or wrong type (name: string, replication: number, "
                      "string or object, read_consistency and write_consistency: strings, "
                      "linearizable and if_not_exists: booleans, auto_split_increments_per_s "
                      "and auto_split_shards: whole numbers)",
                      field));
    }
    if (!s.ok()) return s;
  }
  if (spec->name.empty()) return Status::InvalidArgument("the keyspace needs a name");
  return Status::Ok();
}

// The body of PATCH /v1/keyspaces/{name}: what to change.
Status ParseKeyspaceChange(const Json& body, coordinator::KeyspaceChange* change) {
  if (body.is_discarded() || !body.is_object() || body.empty()) {
    return Status::InvalidArgument(
        "the body must be a JSON object with what to change, such as "
        "{\"read_consistency\": \"ONE\"}");
  }
  for (const auto& entry : body.items()) {
    const std::string& field = entry.key();
    const Json& value = entry.value();
    Status s;
    if ((field == "read_consistency" || field == "write_consistency") && value.is_string()) {
      Consistency level = Consistency::kDefault;
      s = ParseLevelField(field, value, &level);
      if (s.ok()) {
        (field == "read_consistency" ? change->read_consistency : change->write_consistency) =
            level;
      }
    } else if (field == "linearizable" && value.is_boolean()) {
      change->linearizable = value.get<bool>();
    } else if ((field == "auto_split_increments_per_s" || field == "auto_split_shards") &&
               value.is_number_unsigned()) {
      uint32_t n = 0;
      s = ParseCountField(field, value, &n);
      (field == "auto_split_shards" ? change->auto_split_shards
                                    : change->auto_split_increments_per_s) = n;
    } else {
      s = Status::InvalidArgument(
          fmt::format("unknown field '{}' or wrong type (read_consistency, write_consistency: "
                      "strings; linearizable: boolean; auto_split_increments_per_s, "
                      "auto_split_shards: whole numbers)",
                      field));
    }
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace

// ---- one request --------------------------------------------------------------------------------

// One request and what it needs to be answered; the handlers fill `op` and `level` for metrics.
struct HttpFrontDoor::Exchange {
  coordinator::Coordinator* coordinator;
  const HttpOptions& options;
  Request& req;
  const Query& query;
  std::string_view path;
  Operation op = Operation::kOther;
  Consistency level = Consistency::kDefault;
  bool counted = true;  // false for /metrics, /health and /ready

  std::string_view Method() const { return SV(req.method_string()); }

  // Reads ?cl= and ?timeout_ms= into `opts`.
  Status RequestOptionsFor(std::string keyspace, coordinator::RequestOptions* opts) {
    opts->keyspace = std::move(keyspace);
    if (auto cl = query.Get("cl")) {
      auto parsed = ParseConsistency(*cl);
      if (!parsed || *parsed == Consistency::kDefault) {
        return Status::InvalidArgument(
            fmt::format("unknown consistency level '{}' (ONE, TWO, THREE, QUORUM, ALL, LOCAL_ONE, "
                        "LOCAL_QUORUM, EACH_QUORUM, ANY, SERIAL, LOCAL_SERIAL)",
                        *cl));
      }
      opts->consistency = *parsed;
      level = *parsed;
    }
    auto timeout = options.default_timeout;
    if (auto t = query.Get("timeout_ms")) {
      auto ms = ParseUint(*t, static_cast<uint64_t>(options.max_timeout.count()));
      if (!ms || *ms == 0) {
        return Status::InvalidArgument(
            fmt::format("timeout_ms must be a number of milliseconds from 1 to {}, not '{}'",
                        options.max_timeout.count(), *t));
      }
      timeout = std::chrono::milliseconds(*ms);
    }
    opts->deadline = base::Clock::now() + timeout;
    return Status::Ok();
  }

  // The Coordinator reports an unknown keyspace as INVALID_ARGUMENT; over HTTP that is a 404.
  // Looked up only on this error path, so the hot path pays no extra schema lookup.
  Response FromCoordinator(const Status& s, const std::string& keyspace) {
    if (s.code() == Code::kInvalidArgument) {
      auto def = coordinator->DescribeKeyspace(keyspace);
      if (!def.ok() && def.status().code() == Code::kNotFound) {
        return Error(404, "NOT_FOUND", fmt::format("keyspace '{}' does not exist", keyspace));
      }
    }
    return FromStatus(s);
  }

  asio::awaitable<Response> Dispatch(const std::function<Status()>& ready,
                                     const base::metrics::Registry* registry);
  asio::awaitable<Response> Key(std::string keyspace, std::string key);
  asio::awaitable<Response> Get(std::string keyspace, std::string key);
  asio::awaitable<Response> Write(std::string keyspace, std::string key, bool is_delete);
  asio::awaitable<Response> Scan(std::string keyspace);
  asio::awaitable<Response> Keyspaces(std::string_view rest);
  Response ListKeyspaces();
  asio::awaitable<Response> CreateKeyspace();
  Response DescribeKeyspace(const std::string& name);
  asio::awaitable<Response> AlterKeyspace(std::string name);
  asio::awaitable<Response> DropKeyspace(std::string name);
  Response Cluster();
  asio::awaitable<Response> Nodes(std::string_view path);
  asio::awaitable<Response> HotKeys();
  asio::awaitable<Response> Repairs();
};

asio::awaitable<Response> HttpFrontDoor::Exchange::Dispatch(
    const std::function<Status()>& ready, const base::metrics::Registry* registry) {
  const std::string_view method = Method();
  // HEAD is GET without the body (the writer drops it, keeping Content-Length).
  const bool get = req.method() == bhttp::verb::get || req.method() == bhttp::verb::head;
  if (options.access != nullptr) {
    // Nothing is read or written before the caller may (http_access.h).
    HttpCaller caller = co_await AuthorizeRequest(*options.access, method, path,
                                                  SV(req[bhttp::field::authorization]), req.body());
    if (!caller.status.ok()) {
      Response refused = FromStatus(caller.status);
      if (caller.status.code() == Code::kUnauthenticated) {
        refused.set(bhttp::field::www_authenticate, kAuthenticateHeader);
      }
      co_return refused;
    }
  }
  if (IsUsersPath(path)) {
    auto users = co_await Users(*coordinator, method, path);
    if (!users.ok()) co_return FromStatus(users.status());
    co_return Make(200, std::move(*users), kJson);
  }
  if (path == "/health" || path == "/ready" || path == "/metrics") {
    counted = false;
    if (!get) co_return MethodNotAllowed(method, path, "GET, HEAD");
    if (Status s = query.OnlyThese({}); !s.ok()) co_return FromStatus(s);
    if (path == "/health") {
      co_return JsonReply(200, Json{{"status", "alive"},
                                    {"node_id", coordinator->Info().node_id},
                                    {"version", coordinator->Info().server_version}});
    }
    if (path == "/ready") {
      Status s = ready ? ready() : Status::Ok();
      if (!s.ok()) co_return Error(503, "UNAVAILABLE", s.message());
      co_return JsonReply(200, Json{{"status", "ready"}});
    }
    co_return Make(200, registry ? registry->Render() : std::string(),
                   "text/plain; version=0.0.4; charset=utf-8");
  }
  // The web console (/ui) and the partition map it draws: console.cc.
  if (auto r = console::Route(method, path, query, *coordinator)) {
    counted = r->counted;
    op = Operation::kClusterStatus;
    Response res = Make(r->status, std::move(r->body), r->content_type);
    for (const auto& [name, value] : r->headers) res.set(name, value);
    co_return res;
  }
  if (path == "/v1/cluster") {
    op = Operation::kClusterStatus;
    if (!get) co_return MethodNotAllowed(method, path, "GET, HEAD");
    if (Status s = query.OnlyThese({}); !s.ok()) co_return FromStatus(s);
    co_return Cluster();
  }
  if (path == "/v1/hotkeys") {
    op = Operation::kHotKeys;
    if (!get) co_return MethodNotAllowed(method, path, "GET, HEAD");
    co_return co_await HotKeys();
  }
  if (path == "/v1/repairs") {
    // A read of the cluster's state, as the console's other sources are.
    op = Operation::kClusterStatus;
    if (!get) co_return MethodNotAllowed(method, path, "GET, HEAD");
    if (Status s = query.OnlyThese({}); !s.ok()) co_return FromStatus(s);
    co_return co_await Repairs();
  }
  if (path == "/v1/cluster/cancel" || path == "/v1/cluster/join" ||
      path.starts_with("/v1/nodes/")) {
    op = Operation::kNodeOperation;
    if (req.method() != bhttp::verb::post) co_return MethodNotAllowed(method, path, "POST");
    if (Status s = query.OnlyThese({}); !s.ok()) co_return FromStatus(s);
    co_return co_await Nodes(path);
  }
  if (path == "/v1/keyspaces" || path.starts_with("/v1/keyspaces/")) {
    co_return co_await Keyspaces(path.substr(std::string_view("/v1/keyspaces").size()));
  }
  if (path.starts_with("/v1/kv/")) {
    // /v1/kv/{keyspace} is a scan, /v1/kv/{keyspace}/{key...} one key: everything after the
    // keyspace's slash is the key, slashes included.
    const std::string_view rest = path.substr(std::string_view("/v1/kv/").size());
    const size_t slash = rest.find('/');
    auto keyspace = PercentDecode(rest.substr(0, slash), false);
    if (!keyspace.ok()) co_return FromStatus(keyspace.status());
    if (keyspace->empty()) {
      co_return Error(400, "INVALID_ARGUMENT",
                      "the path names no keyspace: /v1/kv/{keyspace}/{key}");
    }
    if (slash == std::string_view::npos) {
      op = Operation::kScan;
      if (!get) co_return MethodNotAllowed(method, path, "GET, HEAD");
      co_return co_await Scan(std::move(*keyspace));
    }
    auto key = PercentDecode(rest.substr(slash + 1), false);
    if (!key.ok()) co_return FromStatus(key.status());
    co_return co_await Key(std::move(*keyspace), std::move(*key));
  }
  co_return Error(404, "NOT_FOUND",
                  fmt::format("no such endpoint: {} (see docs/http.md)", std::string(path)));
}

// GET /v1/hotkeys?keyspace=K&limit=N: the keys the cluster's coordinators see most often (of
// keyspace K, or of every keyspace), every live node asked.
asio::awaitable<Response> HttpFrontDoor::Exchange::HotKeys() {
  if (Status s = query.OnlyThese({"keyspace", "limit"}); !s.ok()) co_return FromStatus(s);
  std::string keyspace;
  if (auto k = query.Get("keyspace")) {
    if (k->empty()) co_return Error(400, "INVALID_ARGUMENT", "keyspace is empty");
    keyspace = std::string(*k);
  }
  uint32_t limit = 20;
  if (auto l = query.Get("limit")) {
    auto n = ParseUint(*l, 1000);
    if (!n || *n == 0) {
      co_return Error(400, "INVALID_ARGUMENT",
                      fmt::format("limit must be a whole number from 1 to 1000, not '{}'", *l));
    }
    limit = static_cast<uint32_t>(*n);
  }
  auto report = co_await coordinator->HotKeys(std::move(keyspace), limit);
  if (!report.ok()) co_return FromStatus(report.status());
  Json keys = Json::array();
  for (const coordinator::HotKeyReport& k : report->keys) {
    Json j = {{"keyspace", k.keyspace},
              {"truncated", k.truncated},
              {"reads_per_s", k.reads_per_s},
              {"writes_per_s", k.writes_per_s},
              {"increments_per_s", k.increments_per_s},
              {"error_per_s", k.error_per_s},
              {"split_shards", k.split_shards}};
    PutBytes(j, "key", k.key);
    Json nodes = Json::array();
    for (const auto& [node, ops] : k.nodes) nodes.push_back({{"node", node}, {"ops_per_s", ops}});
    j["nodes"] = std::move(nodes);
    keys.push_back(std::move(j));
  }
  co_return JsonReply(200, Json{{"keys", std::move(keys)},
                                {"nodes_asked", report->nodes_asked},
                                {"nodes_missing", report->nodes_missing}});
}

// GET /v1/repairs: the `cairn repair` runs the live nodes repaired ranges of lately, each with
// its progress (docs/http.md). Ids are hexadecimal strings: JSON numbers lose 64-bit integers.
asio::awaitable<Response> HttpFrontDoor::Exchange::Repairs() {
  auto report = co_await coordinator->RepairRuns();
  if (!report.ok()) co_return FromStatus(report.status());
  Json runs = Json::array();
  for (const coordinator::RepairRunReport& r : report->runs) {
    Json current = nullptr;
    if (r.in_flight > 0) {
      current = {{"keyspace", r.current_keyspace}, {"partition", r.current_partition}};
    }
    runs.push_back({{"id", fmt::format("{:016x}", r.id)},
                    {"state", coordinator::RepairRunStateName(r.state)},
                    {"keyspaces", r.keyspaces},
                    {"partition", r.partition ? Json(*r.partition) : Json(nullptr)},
                    {"node", r.only_node == 0 ? Json(nullptr) : Json(r.only_node)},
                    {"started_ms", r.started_ms},
                    {"updated_ms", r.updated_ms},
                    {"ranges_total", r.ranges_total},
                    {"ranges_done", r.ranges_done},
                    {"ranges_repaired", r.ranges_repaired},
                    {"ranges_skipped", r.ranges_skipped},
                    {"ranges_failed", r.ranges_failed},
                    {"keys_repaired", r.keys_repaired},
                    {"bytes", r.bytes},
                    {"tombstones_purged", r.tombstones_purged},
                    {"last_error", r.last_error},
                    {"in_flight", r.in_flight},
                    {"current", std::move(current)},
                    {"ranges_per_s", r.ranges_per_s},
                    {"bytes_per_s", r.bytes_per_s},
                    {"eta_s", r.eta_s ? Json(*r.eta_s) : Json(nullptr)},
                    {"nodes", r.nodes}});
  }
  // The answering node's clock, which the states were judged by (the console ages runs by it).
  co_return JsonReply(200, Json{{"runs", std::move(runs)},
                                {"now_ms", coordinator->wall_clock().NowMillis()},
                                {"nodes_asked", report->nodes_asked},
                                {"nodes_missing", report->nodes_missing}});
}

asio::awaitable<Response> HttpFrontDoor::Exchange::Key(std::string keyspace, std::string key) {
  switch (req.method()) {
    case bhttp::verb::get:
    case bhttp::verb::head:
      op = Operation::kGet;
      co_return co_await Get(std::move(keyspace), std::move(key));
    case bhttp::verb::put:
      op = Operation::kPut;
      co_return co_await Write(std::move(keyspace), std::move(key), false);
    case bhttp::verb::delete_:
      op = Operation::kDelete;
      co_return co_await Write(std::move(keyspace), std::move(key), true);
    default:
      co_return MethodNotAllowed(Method(), path, "GET, HEAD, PUT, DELETE");
  }
}

asio::awaitable<Response> HttpFrontDoor::Exchange::Get(std::string keyspace, std::string key) {
  if (Status s = query.OnlyThese({"cl", "timeout_ms"}); !s.ok()) co_return FromStatus(s);
  coordinator::RequestOptions opts;
  if (Status s = RequestOptionsFor(keyspace, &opts); !s.ok()) co_return FromStatus(s);
  auto r = co_await coordinator->Get(std::move(key), opts);
  if (!r.ok()) co_return FromCoordinator(r.status(), opts.keyspace);
  if (!r->has_value()) co_return Error(404, "NOT_FOUND", "the key does not exist");
  Record& record = **r;
  const std::string etag = ETag(record.version);
  if (SV(req[bhttp::field::if_none_match]) == etag) {
    Response res = Make(304, "", "application/octet-stream");
    res.set(bhttp::field::etag, etag);
    co_return res;
  }
  Response res = Make(200, std::move(record.value), "application/octet-stream");
  res.set(bhttp::field::etag, etag);
  if (record.expires_at_ms != 0) {
    res.set("X-Cairn-Expires-At-Ms", std::to_string(record.expires_at_ms));
  }
  co_return res;
}

asio::awaitable<Response> HttpFrontDoor::Exchange::Write(std::string keyspace, std::string key,
                                                         bool is_delete) {
  if (Status s = is_delete ? query.OnlyThese({"cl", "timeout_ms", "commit_cl"})
                           : query.OnlyThese({"cl", "timeout_ms", "commit_cl", "ttl"});
      !s.ok()) {
    co_return FromStatus(s);
  }
  coordinator::RequestOptions opts;
  if (Status s = RequestOptionsFor(keyspace, &opts); !s.ok()) co_return FromStatus(s);
  uint64_t ttl_ms = 0;
  if (auto ttl = query.Get("ttl")) {
    auto seconds = ParseUint(*ttl, UINT64_MAX / 1000);
    if (!seconds) {
      co_return Error(400, "INVALID_ARGUMENT",
                      fmt::format("ttl must be a whole number of seconds, not '{}'", *ttl));
    }
    ttl_ms = *seconds * 1000;
  }

  // Conditional writes: If-Match: "<version>" or *, If-None-Match: * (through Paxos).
  const auto if_match = req.find(bhttp::field::if_match);
  const auto if_none_match = req.find(bhttp::field::if_none_match);
  std::optional<coordinator::CasCondition> condition;
  if (if_match != req.end() && if_none_match != req.end()) {
    co_return Error(400, "INVALID_ARGUMENT", "give If-Match or If-None-Match, not both");
  }
  if (if_match != req.end()) {
    const std::string_view tag = SV(if_match->value());
    coordinator::CasCondition c;
    if (tag == "*") {
      c.kind = coordinator::CasCondition::Kind::kIfExists;
    } else {
      std::optional<Version> v;
      if (tag.size() >= 2 && tag.front() == '"' && tag.back() == '"') {
        v = Version::Parse(tag.substr(1, tag.size() - 2));
      }
      if (!v) {
        co_return Error(400, "INVALID_ARGUMENT",
                        fmt::format("If-Match takes * or one ETag as the server sent it, e.g. "
                                    "\"116027195034353664:7\"; not {}",
                                    tag));
      }
      c.kind = coordinator::CasCondition::Kind::kIfVersion;
      c.version = *v;
    }
    condition = std::move(c);
  } else if (if_none_match != req.end()) {
    if (SV(if_none_match->value()) != "*") {
      co_return Error(400, "INVALID_ARGUMENT",
                      "a write takes only If-None-Match: * (create the key if it does not exist)");
    }
    coordinator::CasCondition c;
    c.kind = coordinator::CasCondition::Kind::kIfNotExists;
    condition = std::move(c);
  }
  Consistency commit = Consistency::kDefault;
  if (auto cl = query.Get("commit_cl")) {
    auto parsed = ParseConsistency(*cl);
    if (!condition || !parsed || *parsed == Consistency::kDefault) {
      co_return Error(400, "INVALID_ARGUMENT",
                      condition ? fmt::format("unknown consistency level '{}' for commit_cl", *cl)
                                : std::string("commit_cl applies only to conditional writes "
                                              "(If-Match or If-None-Match)"));
    }
    commit = *parsed;
  }

  if (!condition) {
    Result<Version> r;
    if (is_delete) {
      r = co_await coordinator->Delete(std::move(key), opts);
    } else {
      r = co_await coordinator->Put(std::move(key), std::move(req.body()), ttl_ms, opts);
    }
    if (!r.ok()) co_return FromCoordinator(r.status(), opts.keyspace);
    Response res = JsonReply(200, Json{{"version", r->ToString()}});
    if (!is_delete) res.set(bhttp::field::etag, ETag(*r));
    co_return res;
  }

  op = Operation::kCas;
  const bool create_only = condition->kind == coordinator::CasCondition::Kind::kIfNotExists;
  std::optional<std::string> new_value;
  if (!is_delete) new_value = std::move(req.body());
  auto r = co_await coordinator->Cas(std::move(key), std::move(*condition), std::move(new_value),
                                     ttl_ms, opts, commit);
  if (!r.ok()) co_return FromCoordinator(r.status(), opts.keyspace);
  if (!r->applied) {
    Json extra = Json::object();
    std::string message = "the key does not exist";
    if (r->current) {
      extra["current_version"] = r->current->version.ToString();
      message = create_only ? "the key exists"
                            : "the key's current version is " + r->current->version.ToString();
    }
    Response res =
        Error(412, "CONDITION_FAILED",
              "the condition did not hold, nothing was written: " + message, std::move(extra));
    if (r->current) res.set(bhttp::field::etag, ETag(r->current->version));
    co_return res;
  }
  Response res = JsonReply(create_only ? 201 : 200, Json{{"version", r->version.ToString()}});
  if (!is_delete) res.set(bhttp::field::etag, ETag(r->version));
  co_return res;
}

asio::awaitable<Response> HttpFrontDoor::Exchange::Scan(std::string keyspace) {
  if (Status s = query.OnlyThese({"prefix", "limit", "cursor", "cl", "timeout_ms"}); !s.ok()) {
    co_return FromStatus(s);
  }
  coordinator::RequestOptions opts;
  if (Status s = RequestOptionsFor(keyspace, &opts); !s.ok()) co_return FromStatus(s);
  uint32_t limit = 0;
  if (auto l = query.Get("limit")) {
    auto n = ParseUint(*l, UINT32_MAX);
    if (!n || *n == 0) {
      co_return Error(400, "INVALID_ARGUMENT",
                      fmt::format("limit must be a positive whole number, not '{}'", *l));
    }
    limit = static_cast<uint32_t>(*n);
  }
  std::string cursor;
  if (auto c = query.Get("cursor")) {
    auto raw = base::Unhex(*c);
    if (!raw) {
      co_return Error(400, "INVALID_ARGUMENT",
                      "cursor must be passed back exactly as a previous page returned it");
    }
    cursor = std::move(*raw);
  }
  std::string prefix(query.Get("prefix").value_or(""));
  auto r = co_await coordinator->Scan(std::move(prefix), std::move(cursor), limit, opts);
  if (!r.ok()) co_return FromCoordinator(r.status(), opts.keyspace);
  Json items = Json::array();
  for (auto& [key, record] : r->entries) {
    Json item = Json::object();
    PutBytes(item, "key", key);
    PutBytes(item, "value", record.value);
    item["version"] = record.version.ToString();
    if (record.expires_at_ms != 0) item["expires_at_ms"] = record.expires_at_ms;
    items.push_back(std::move(item));
  }
  Json page = {{"items", std::move(items)}};
  if (r->cursor.empty()) {
    page["cursor"] = nullptr;
  } else {
    page["cursor"] = base::Hex(r->cursor);
  }
  co_return JsonReply(200, page);
}

// /v1/keyspaces and /v1/keyspaces/{name}: by route and method, one handler each.
asio::awaitable<Response> HttpFrontDoor::Exchange::Keyspaces(std::string_view rest) {
  const bool get = req.method() == bhttp::verb::get || req.method() == bhttp::verb::head;
  if (rest.empty() || rest == "/") {
    if (get) co_return ListKeyspaces();
    if (req.method() == bhttp::verb::post) co_return co_await CreateKeyspace();
    co_return MethodNotAllowed(Method(), path, "GET, HEAD, POST");
  }
  auto name = PercentDecode(rest.substr(1), false);
  if (!name.ok()) co_return FromStatus(name.status());
  if (get) co_return DescribeKeyspace(*name);
  if (req.method() == bhttp::verb::patch) co_return co_await AlterKeyspace(std::move(*name));
  if (req.method() == bhttp::verb::delete_) co_return co_await DropKeyspace(std::move(*name));
  co_return MethodNotAllowed(Method(), path, "GET, HEAD, PATCH, DELETE");
}

Response HttpFrontDoor::Exchange::ListKeyspaces() {
  op = Operation::kKeyspaceList;
  if (Status s = query.OnlyThese({}); !s.ok()) return FromStatus(s);
  auto r = coordinator->ListKeyspaces();
  if (!r.ok()) return FromStatus(r.status());
  Json list = Json::array();
  for (const auto& def : *r) list.push_back(KeyspaceJson(def));
  return JsonReply(200, Json{{"keyspaces", std::move(list)}});
}

asio::awaitable<Response> HttpFrontDoor::Exchange::CreateKeyspace() {
  op = Operation::kKeyspaceCreate;
  if (Status s = query.OnlyThese({}); !s.ok()) co_return FromStatus(s);
  coordinator::KeyspaceDef spec;
  bool if_not_exists = false;
  if (Status s = ParseKeyspaceSpec(Json::parse(req.body(), nullptr, false), &spec, &if_not_exists);
      !s.ok()) {
    co_return FromStatus(s);
  }
  auto r = co_await coordinator->CreateKeyspace(std::move(spec), if_not_exists);
  if (!r.ok()) co_return FromStatus(r.status());
  co_return JsonReply(201, KeyspaceJson(*r));
}

Response HttpFrontDoor::Exchange::DescribeKeyspace(const std::string& name) {
  op = Operation::kKeyspaceDescribe;
  if (Status s = query.OnlyThese({}); !s.ok()) return FromStatus(s);
  auto r = coordinator->DescribeKeyspace(name);
  if (!r.ok()) return FromStatus(r.status());
  return JsonReply(200, KeyspaceJson(*r));
}

asio::awaitable<Response> HttpFrontDoor::Exchange::AlterKeyspace(std::string name) {
  op = Operation::kKeyspaceAlter;
  if (Status s = query.OnlyThese({}); !s.ok()) co_return FromStatus(s);
  coordinator::KeyspaceChange change;
  if (Status s = ParseKeyspaceChange(Json::parse(req.body(), nullptr, false), &change); !s.ok()) {
    co_return FromStatus(s);
  }
  auto r = co_await coordinator->AlterKeyspace(std::move(name), change);
  if (!r.ok()) co_return FromStatus(r.status());
  co_return JsonReply(200, KeyspaceJson(*r));
}

asio::awaitable<Response> HttpFrontDoor::Exchange::DropKeyspace(std::string name) {
  op = Operation::kKeyspaceDrop;
  if (Status s = query.OnlyThese({"if_exists"}); !s.ok()) co_return FromStatus(s);
  bool if_exists = false;
  if (auto v = query.Get("if_exists")) {
    if (*v != "true" && *v != "false") {
      co_return Error(400, "INVALID_ARGUMENT", "if_exists is true or false");
    }
    if_exists = *v == "true";
  }
  const std::string dropped = name;
  Status s = co_await coordinator->DropKeyspace(std::move(name), if_exists);
  if (!s.ok()) co_return FromStatus(s);
  co_return JsonReply(200, Json{{"dropped", dropped}});
}

Response HttpFrontDoor::Exchange::Cluster() {
  auto r = coordinator->ClusterStatus();
  if (!r.ok()) return FromStatus(r.status());
  const coordinator::ClusterInfo info = coordinator->Cluster();
  Json nodes = Json::array();
  for (const coordinator::NodeReport& n : *r) {
    Json streaming = nullptr;
    if (const auto& r = n.status.streaming) {
      streaming = {{"partition", r->partition},
                   {"keyspace", r->keyspace},
                   {"source", r->source},
                   {"chunks", r->chunks},
                   {"bytes", r->bytes}};
    }
    nodes.push_back({{"node_id", n.status.node_id},
                     {"address", n.status.address},
                     {"dc", n.status.dc},
                     {"rack", n.status.rack},
                     {"state", n.status.up ? "UP" : "DOWN"},
                     {"partitions", n.partitions},
                     {"load_bytes", n.status.load_bytes},
                     {"dead_bytes", n.status.dead_bytes},
                     {"hints_pending", n.status.hints_pending},
                     {"self", n.status.self},
                     {"member", n.status.state},
                     {"dead", n.status.dead},
                     {"streams_total", n.status.streams_total},
                     {"streams_done", n.status.streams_done},
                     {"stream_bytes", n.status.stream_bytes},
                     {"stream_chunks", n.status.stream_chunks},
                     {"stream_rate", n.status.stream_rate},
                     {"streaming", std::move(streaming)}});
  }
  Json out = {{"partitions", info.partitions},
              {"formed", info.formed},
              {"topology_epoch", info.epoch},
              {"change", info.change},
              {"nodes", nodes}};
  if (!info.note.empty()) out["note"] = info.note;
  return JsonReply(200, out);
}

// Topology changes: POST /v1/nodes/{id}/decommission, /v1/nodes/{id}/remove, /v1/cluster/cancel,
// and to a new node on standby /v1/cluster/join and /v1/nodes/{dead id}/replace.
asio::awaitable<Response> HttpFrontDoor::Exchange::Nodes(std::string_view path) {
  coordinator::NodeOp node_op = coordinator::NodeOp::kCancel;
  uint32_t node_id = 0;
  if (path == "/v1/cluster/join") {
    node_op = coordinator::NodeOp::kJoin;
  } else if (path != "/v1/cluster/cancel") {
    const std::string_view rest = path.substr(std::string_view("/v1/nodes/").size());
    const size_t slash = rest.find('/');
    const std::string_view id = rest.substr(0, slash);
    const std::string_view action =
        slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    const std::optional<uint64_t> parsed = ParseUint(id, UINT32_MAX);
    if (!parsed || *parsed == 0) {
      co_return Error(400, "INVALID_ARGUMENT",
                      fmt::format("'{}' is not a node id (a number from 1)", std::string(id)));
    }
    node_id = static_cast<uint32_t>(*parsed);
    if (action == "decommission") {
      node_op = coordinator::NodeOp::kDecommission;
    } else if (action == "remove") {
      node_op = coordinator::NodeOp::kRemove;
    } else if (action == "replace") {
      node_op = coordinator::NodeOp::kReplace;
    } else {
      co_return Error(404, "NOT_FOUND",
                      fmt::format("no such endpoint: {} (POST /v1/nodes/{{id}}/decommission, "
                                  "/v1/nodes/{{id}}/remove or /v1/nodes/{{id}}/replace)",
                                  std::string(path)));
    }
  }
  auto info = co_await coordinator->NodeOperation(node_op, node_id);
  if (!info.ok()) co_return FromStatus(info.status());
  co_return JsonReply(200, Json{{"topology_epoch", info->epoch}, {"change", info->change}});
}

// ---- connections --------------------------------------------------------------------------------

// One client connection; every member is touched only on the socket's executor (one reactor).
struct HttpFrontDoor::Connection {
  explicit Connection(net::Stream s) : stream(std::move(s)), timer(stream.get_executor()) {}

  // Cancels the socket's operations once `d` has passed, unless Disarm()ed first.
  static void Arm(const std::shared_ptr<Connection>& c, std::chrono::milliseconds d) {
    const uint64_t generation = ++c->generation;
    c->timed_out = false;
    c->timer.expires_after(d);
    c->timer.async_wait([c, generation](boost::system::error_code ec) {
      if (ec || generation != c->generation) return;
      c->timed_out = true;
      boost::system::error_code ignored;
      c->stream.socket().cancel(ignored);
    });
  }
  void Disarm() {
    ++generation;
    timer.cancel();
  }

  net::Stream stream;  // plain TCP or TLS
  asio::steady_timer timer;
  uint64_t generation = 0;
  bool timed_out = false;
  bool closing = false;  // CloseAll() was called
  bool idle = false;     // waiting for the next request
};

HttpFrontDoor::HttpFrontDoor(coordinator::Coordinator* coordinator,
                             const base::metrics::Registry* registry,
                             base::metrics::RequestMetrics* requests, std::function<Status()> ready,
                             HttpOptions options)
    : coordinator_(coordinator),
      registry_(registry),
      requests_(requests),
      ready_(std::move(ready)),
      options_(options) {}

HttpFrontDoor::~HttpFrontDoor() = default;

asio::awaitable<void> HttpFrontDoor::Serve(net::Stream stream) {
  boost::system::error_code ec;
  stream.socket().set_option(tcp::no_delay(true), ec);
  auto conn = std::make_shared<Connection>(std::move(stream));
  {
    std::lock_guard lock(mu_);
    connections_.insert(conn);
  }
  ++open_;
  co_await Run(conn);
  conn->Disarm();
  conn->stream.Close();
  {
    std::lock_guard lock(mu_);
    connections_.erase(conn);
  }
  --open_;
}

void HttpFrontDoor::CloseAll() {
  std::lock_guard lock(mu_);
  for (const auto& conn : connections_) {
    asio::post(conn->stream.get_executor(), [conn] {
      conn->closing = true;
      if (conn->idle) {
        boost::system::error_code ignored;
        conn->stream.socket().cancel(ignored);
      }
    });
  }
}

asio::awaitable<void> HttpFrontDoor::Run(std::shared_ptr<Connection> conn) {
  beast::flat_buffer buffer;
  // A connection holds one request, then its response, at a time: it is never paused for the
  // budget, but a body over its per-connection part and a read's response that does not fit are
  // refused.
  base::MemoryShare memory(options_.memory);
  size_t max_body_bytes = options_.max_body_bytes;
  const bool budget_limits_body =
      options_.memory != nullptr && options_.memory->per_connection() < max_body_bytes;
  if (budget_limits_body) max_body_bytes = options_.memory->per_connection();
  while (!conn->closing) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<uint32_t>(options_.max_header_bytes));
    parser.body_limit(max_body_bytes);

    // Idle time is allowed before a request's first byte; from there on the whole request must
    // arrive within the read timeout (so a slow client cannot hold the connection).
    boost::system::error_code ec;
    if (buffer.size() == 0) {
      conn->idle = true;
      Connection::Arm(conn, options_.idle_timeout);
      boost::system::error_code wait_ec;
      if (!conn->stream.tls()) {
        std::tie(wait_ec) =
            co_await conn->stream.socket().async_wait(tcp::socket::wait_read, kNoThrow);
      } else {
        // Under TLS the socket's readiness says little (bytes of the next request may already
        // sit in the TLS layer's buffers): wait for the first bytes themselves.
        constexpr size_t kFirstRead = 4096;
        size_t n = 0;
        std::tie(wait_ec, n) =
            co_await conn->stream.async_read_some(buffer.prepare(kFirstRead), kNoThrow);
        buffer.commit(n);
      }
      conn->idle = false;
      if (wait_ec || conn->closing) co_return;  // idle too long, shutting down, or gone
    }
    Connection::Arm(conn, options_.read_timeout);
    auto [hec, hn] = co_await bhttp::async_read_header(conn->stream, buffer, parser, kNoThrow);
    ec = hec;
    if (!ec && !parser.is_done()) {
      if (auto expect = parser.get()[bhttp::field::expect];
          beast::iequals(expect, "100-continue")) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        const asio::const_buffer bytes(kContinue.data(), kContinue.size());
        auto [wec, wn] = co_await asio::async_write(conn->stream, bytes, kNoThrow);
        ec = wec;
      }
      if (!ec) {
        auto [bec, bn] = co_await bhttp::async_read(conn->stream, buffer, parser, kNoThrow);
        ec = bec;
      }
    }
    conn->Disarm();

    Response res;
    bool close_after = false;
    bool head = false;  // a HEAD request: the answer goes without its body
    const auto started = base::Clock::now();
    std::optional<Exchange> exchange;
    if (ec) {
      // Nothing to answer when the client went away, was idle, or the server is closing.
      if (ec == bhttp::error::end_of_stream || net::IsEndOfStream(ec) ||
          ec == asio::error::connection_reset || (conn->closing && !parser.got_some()) ||
          (conn->timed_out && !parser.got_some())) {
        co_return;
      }
      close_after = true;
      if (conn->timed_out) {
        res = Error(408, "REQUEST_TIMEOUT",
                    fmt::format("the request did not arrive in full within {} ms",
                                options_.read_timeout.count()));
      } else if (ec == bhttp::error::header_limit) {
        res = Error(431, "TOO_LARGE",
                    fmt::format("the request line and headers are over {} bytes",
                                options_.max_header_bytes));
      } else if (ec == bhttp::error::body_limit && budget_limits_body) {
        options_.memory->CountRefusal();
        res = Error(413, "TOO_LARGE",
                    fmt::format("the request body is over {} bytes, what this node's request "
                                "memory budget allows per connection (--max-request-memory-mb)",
                                max_body_bytes));
      } else if (ec == bhttp::error::body_limit) {
        res = Error(413, "TOO_LARGE",
                    fmt::format("the request body is over {} bytes", options_.max_body_bytes));
      } else if (ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category()) {
        res = Error(400, "INVALID_ARGUMENT", "malformed HTTP request: " + ec.message());
      } else {
        co_return;  // a socket error: nobody to answer
      }
    } else {
      Request& req = parser.get();
      head = req.method() == bhttp::verb::head;
      auto target = ParseTarget(SV(req.target()));
      if (!target.ok()) {
        res = FromStatus(target.status());
      } else {
        exchange.emplace(Exchange{coordinator_, options_, req, target->query, target->path});
        size_t request_bytes = req.body().size();
        memory.Charge(request_bytes);
        // A read of data holds its value until the response is written: room for it is
        // reserved first, and its response may be refused for memory (retry it; nothing
        // changed). A write's response, /metrics, /health and /ready are always sent.
        const bool read = (req.method() == bhttp::verb::get || req.method() == bhttp::verb::head) &&
                          target->path.starts_with("/v1/kv/");
        size_t reserved = 0;
        if (read && !memory.Reserve(false, &reserved)) {
          res = Error(503, "UNAVAILABLE",
                      "read refused: this node's request memory is full "
                      "(--max-request-memory-mb); retry later");
        } else {
          request_bytes += reserved;
          try {
            res = co_await exchange->Dispatch(ready_, registry_);
          } catch (const std::exception& e) {
            spdlog::error("HTTP {} {} failed: {}", SV(req.method_string()), SV(req.target()),
                          e.what());
            res = Error(500, "INTERNAL", "internal error; see the server log");
          }
          if (read) memory.Learn(res.body().size());
        }
        if (!memory.Replace(request_bytes, res.body().size(), read)) {
          const size_t size = res.body().size();
          res = Error(503, "UNAVAILABLE",
                      fmt::format("the response of {} bytes was refused: this node's request "
                                  "memory is full (--max-request-memory-mb); retry later",
                                  size));
          (void)memory.Replace(request_bytes, res.body().size(), false);
        }
      }
      res.version(req.version());
      close_after = !req.keep_alive() || conn->closing;
    }
    if (requests_ != nullptr && (!exchange || exchange->counted)) {
      requests_->Record(base::metrics::FrontDoor::kHttp,
                        exchange ? exchange->op : Operation::kOther,
                        exchange ? exchange->level : Consistency::kDefault,
                        OutcomeOf(res.result_int()), base::Clock::now() - started);
    }
    res.keep_alive(!close_after);
    res.prepare_payload();
    if (head) {
      // The headers GET would send, Content-Length included, and no body.
      const size_t length = res.body().size();
      res.body().clear();
      res.content_length(length);
    }
    Connection::Arm(conn, options_.write_timeout);
    auto [wec, wn] = co_await bhttp::async_write(conn->stream, res, kNoThrow);
    conn->Disarm();
    memory.Release(memory.held());
    if (wec) co_return;
    if (close_after) {
      // Closing a socket with unread bytes (the rest of a refused body, pipelined requests)
      // sends a reset, which can destroy the answer before the client reads it. So: send FIN,
      // then read and drop what still comes, for a bounded time.
      boost::system::error_code ignored;
      conn->stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      Connection::Arm(conn, kLingerTime);
      std::array<char, 16384> scratch;
      const asio::mutable_buffer into(scratch.data(), scratch.size());
      size_t dropped = 0;
      while (dropped < options_.max_body_bytes + options_.max_header_bytes) {
        auto [rec, rn] = co_await conn->stream.async_read_some(into, kNoThrow);
        if (rec) break;
        dropped += rn;
      }
      co_return;
    }
  }
}

}  // namespace cairn::frontdoor::http
