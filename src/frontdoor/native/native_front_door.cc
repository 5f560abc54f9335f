#include "frontdoor/native/native_front_door.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

#include "base/text.h"
#include "frontdoor/native/native_access.h"

namespace cairn::frontdoor::native {
namespace {

using coordinator::CasCondition;

void SetErrorOn(const Status& s, wire::Error* e) {
  e->set_code(static_cast<wire::Code>(s.code()));
  e->set_message(s.message());
  e->set_acks(s.acks());
}

void SetError(const Status& s, wire::Response* response) {
  SetErrorOn(s, response->mutable_error());
}

void SetVersion(const Version& v, wire::Version* out) {
  out->set_hlc(v.hlc);
  out->set_node(v.node);
}

void SetRecord(Record&& r, wire::Record* out) {
  out->set_value(std::move(r.value));
  SetVersion(r.version, out->mutable_version());
  out->set_expires_at_ms(r.expires_at_ms);
}

Result<Consistency> LevelOf(int wire_level) {
  if (wire_level < 0 || wire_level > static_cast<int>(Consistency::kLocalSerial)) {
    return Status::InvalidArgument(fmt::format("unknown consistency level {}", wire_level));
  }
  return static_cast<Consistency>(wire_level);
}

void SetKeyspace(const coordinator::KeyspaceDef& def, wire::Keyspace* out) {
  out->set_name(def.name);
  out->set_id(def.id);
  for (const auto& [dc, rf] : def.replication) (*out->mutable_replication())[dc] = rf;
  if (def.replication.size() == 1 && def.replication.contains(kEveryDc)) {
    out->set_replication_factor(def.replication.begin()->second);
  }
  out->set_read_consistency(static_cast<wire::Consistency>(def.read_consistency));
  out->set_write_consistency(static_cast<wire::Consistency>(def.write_consistency));
  out->set_created_at_ms(def.created_at_ms);
  out->set_linearizable(def.linearizable);
  out->set_auto_split_increments_per_s(def.auto_split_increments_per_s);
  out->set_auto_split_shards(def.auto_split_shards);
}

// The answer to a read refused for memory: UNAVAILABLE, retry the call (nothing was changed).
// `bytes`: the size of the answer refused; 0 when the read was refused before it ran.
wire::Response RefusedForMemory(size_t bytes) {
  wire::Response refused;
  SetError(Status::Unavailable(
               bytes == 0 ? std::string("read refused: this node's request memory is full "
                                        "(--max-request-memory-mb); retry later")
                          : fmt::format("the answer of {} bytes was refused: this node's request "
                                        "memory is full (--max-request-memory-mb); retry later",
                                        bytes)),
           &refused);
  return refused;
}

// Answers larger than this are replaced by a TOO_LARGE error (clients accept 64 MiB frames by
// default; the coordinator keeps scan pages and batch reads well under it).
constexpr size_t kMaxAnswerBytes = size_t{64} << 20;

void SendMessage(net::FrameConnection& conn, uint64_t id, const wire::Response& m) {
  const size_t size = m.ByteSizeLong();
  if (size > kMaxAnswerBytes) {
    wire::Response too_large;
    SetError(Status::TooLarge(fmt::format("the answer would be {} bytes, over the {} byte limit",
                                          size, kMaxAnswerBytes)),
             &too_large);
    SendMessage(conn, id, too_large);
    return;
  }
  // The answer to a read may be refused for memory (the read changed nothing: retry it); the
  // answer to a write always goes out, so that an error never hides an applied write.
  const bool read = m.has_get() || m.has_scan() || m.has_batch_get();
  const bool sent = conn.Send(
      id, size,
      [&](char* dest) { m.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(dest)); },
      read);
  if (!sent) SendMessage(conn, id, RefusedForMemory(size));
}

}  // namespace

namespace {

void SetGet(Result<std::optional<Record>> r, wire::Response* response) {
  if (!r.ok()) {
    SetError(r.status(), response);
    return;
  }
  auto* out = response->mutable_get();
  out->set_found(r->has_value());
  if (r->has_value()) SetRecord(std::move(**r), out->mutable_record());
}

// ---- One handler per operation ----
// Each runs one request on the Coordinator and fills its part of the response; an error it
// returns replaces the whole answer (Execute does that once for all of them).

using coordinator::Coordinator;
using coordinator::RequestOptions;

// A read of a hot key answers how long the client may cache it (docs/hot-keys.md).
void SetCacheHint(const Coordinator& c, const RequestOptions& opts, std::string_view key,
                  wire::Response* response) {
  if (!response->has_get()) return;  // an error
  if (const uint32_t ms = c.ClientCacheMs(opts, key); ms > 0) {
    response->mutable_get()->set_cache_ms(ms);
  }
}

asio::awaitable<Status> Get(Coordinator& c, wire::Request& request, const RequestOptions& opts,
                            wire::Response& response) {
  std::string key = std::move(*request.mutable_get()->mutable_key());
  SetGet(co_await c.Get(key, opts), &response);
  SetCacheHint(c, opts, key, &response);
  co_return Status::Ok();  // SetGet answered the error, if any
}

// PUT and DELETE answer the version they wrote.
asio::awaitable<Status> AnswerVersion(asio::awaitable<Result<Version>> write, wire::Version* out) {
  auto r = co_await std::move(write);
  if (r.ok()) SetVersion(*r, out);
  co_return r.status();
}

asio::awaitable<Status> Put(Coordinator& c, wire::Request& request, const RequestOptions& opts,
                            wire::Response& response) {
  wire::PutRequest* put = request.mutable_put();
  co_return co_await AnswerVersion(
      c.Put(std::move(*put->mutable_key()), std::move(*put->mutable_value()), put->ttl_ms(), opts),
      response.mutable_put()->mutable_version());
}

asio::awaitable<Status> Delete(Coordinator& c, wire::Request& request, const RequestOptions& opts,
                               wire::Response& response) {
  co_return co_await AnswerVersion(
      c.Delete(std::move(*request.mutable_delete_()->mutable_key()), opts),
      response.mutable_delete_()->mutable_version());
}

Result<CasCondition> ConditionOf(wire::CasRequest& cas) {
  using Kind = CasCondition::Kind;
  static const std::map<wire::CasRequest::ConditionCase, Kind> kKinds = {
      {wire::CasRequest::kIfVersion, Kind::kIfVersion},
      {wire::CasRequest::kIfValue, Kind::kIfValue},
      {wire::CasRequest::kIfNotExists, Kind::kIfNotExists},
      {wire::CasRequest::kIfExists, Kind::kIfExists},
  };
  auto it = kKinds.find(cas.condition_case());
  if (it == kKinds.end()) {
    return Status::InvalidArgument(
        "cas needs a condition: if_version, if_value, if_not_exists or if_exists");
  }
  CasCondition condition;
  condition.kind = it->second;
  // Only the field of the condition's kind is set; the others read as empty.
  condition.version = Version{cas.if_version().hlc(), cas.if_version().node()};
  if (cas.has_if_value()) condition.value = std::move(*cas.mutable_if_value());
  return condition;
}

asio::awaitable<Status> Cas(Coordinator& c, wire::Request& request, const RequestOptions& opts,
                            wire::Response& response) {
  wire::CasRequest* cas = request.mutable_cas();
  auto condition = ConditionOf(*cas);
  if (!condition.ok()) co_return condition.status();
  std::optional<std::string> new_value;
  if (cas->action_case() == wire::CasRequest::kNewValue) {
    new_value = std::move(*cas->mutable_new_value());
  } else if (cas->action_case() != wire::CasRequest::kDelete) {
    co_return Status::InvalidArgument("cas needs an action: new_value or delete");
  }
  auto commit = LevelOf(cas->commit_consistency());
  if (!commit.ok()) co_return commit.status();
  auto r = co_await c.Cas(std::move(*cas->mutable_key()), std::move(*condition),
                          std::move(new_value), cas->ttl_ms(), opts, *commit);
  if (!r.ok()) co_return r.status();
  auto* out = response.mutable_cas();
  out->set_applied(r->applied);
  out->set_found(r->current.has_value());
  if (r->current) SetRecord(std::move(*r->current), out->mutable_current());
  co_return Status::Ok();
}

asio::awaitable<Status> Scan(Coordinator& c, wire::Request& request, const RequestOptions& opts,
                             wire::Response& response) {
  wire::ScanRequest* scan = request.mutable_scan();
  auto r = co_await c.Scan(std::move(*scan->mutable_prefix()), std::move(*scan->mutable_cursor()),
                           scan->limit(), opts);
  if (!r.ok()) co_return r.status();
  auto* out = response.mutable_scan();
  out->mutable_entries()->Reserve(static_cast<int>(r->entries.size()));
  for (auto& [key, record] : r->entries) {
    wire::ScanEntry* e = out->add_entries();
    e->set_key(std::move(key));
    SetRecord(std::move(record), e->mutable_record());
  }
  out->set_cursor(std::move(r->cursor));
  co_return Status::Ok();
}

asio::awaitable<Status> BatchGet(Coordinator& c, wire::Request& request, const RequestOptions& opts,
                                 wire::Response& response) {
  std::vector<std::string> keys;
  for (std::string& k : *request.mutable_batch_get()->mutable_keys()) keys.push_back(std::move(k));
  auto r = co_await c.BatchGet(std::move(keys), opts);
  if (!r.ok()) co_return r.status();
  auto* out = response.mutable_batch_get();
  for (auto& item : *r) {
    wire::GetItem* g = out->add_items();
    if (!item.ok()) {
      SetErrorOn(item.status(), g->mutable_error());
      continue;
    }
    g->set_found(item->has_value());
    if (item->has_value()) SetRecord(std::move(**item), g->mutable_record());
  }
  co_return Status::Ok();
}

asio::awaitable<Status> BatchPut(Coordinator& c, wire::Request& request, const RequestOptions& opts,
                                 wire::Response& response) {
  std::vector<coordinator::PutItem> items;
  for (wire::PutRequest& p : *request.mutable_batch_put()->mutable_items()) {
    items.push_back(coordinator::PutItem{std::move(*p.mutable_key()), std::move(*p.mutable_value()),
                                         p.ttl_ms()});
  }
  auto r = co_await c.BatchPut(std::move(items), opts);
  if (!r.ok()) co_return r.status();
  auto* out = response.mutable_batch_put();
  for (const Result<Version>& v : *r) {
    wire::PutItem* item = out->add_items();
    if (v.ok()) {
      SetVersion(*v, item->mutable_version());
    } else {
      SetErrorOn(v.status(), item->mutable_error());
    }
  }
  co_return Status::Ok();
}

// A keyspace's default levels as the wire gives them: DEFAULT (0) leaves the setting alone.
Status LevelsOf(int read_level, int write_level, std::optional<Consistency>* read,
                std::optional<Consistency>* write) {
  auto r = LevelOf(read_level);
  if (!r.ok()) return r.status();
  auto w = LevelOf(write_level);
  if (!w.ok()) return w.status();
  if (*r != Consistency::kDefault) *read = *r;
  if (*w != Consistency::kDefault) *write = *w;
  return Status::Ok();
}

asio::awaitable<Status> KeyspaceCreate(Coordinator& c, wire::Request& request,
                                       const RequestOptions&, wire::Response& response) {
  const wire::KeyspaceCreateRequest& create = request.keyspace_create();
  const wire::Keyspace& ks = create.keyspace();
  coordinator::KeyspaceDef spec;
  spec.name = ks.name();
  if (ks.replication_factor() != 0) {
    spec.replication = {{std::string(kEveryDc), ks.replication_factor()}};
  } else if (!ks.replication().empty()) {
    spec.replication.clear();
    for (const auto& [dc, rf] : ks.replication()) spec.replication[dc] = rf;
  }
  std::optional<Consistency> read, write;
  if (Status s = LevelsOf(ks.read_consistency(), ks.write_consistency(), &read, &write); !s.ok()) {
    co_return s;
  }
  if (read) spec.read_consistency = *read;
  if (write) spec.write_consistency = *write;
  spec.linearizable = ks.linearizable();
  spec.auto_split_increments_per_s = ks.auto_split_increments_per_s();
  if (ks.auto_split_shards() != 0) spec.auto_split_shards = ks.auto_split_shards();
  auto r = co_await c.CreateKeyspace(std::move(spec), create.if_not_exists());
  if (!r.ok()) co_return r.status();
  SetKeyspace(*r, response.mutable_keyspace_create()->mutable_keyspace());
  co_return Status::Ok();
}

asio::awaitable<Status> KeyspaceList(Coordinator& c, wire::Request&, const RequestOptions&,
                                     wire::Response& response) {
  auto r = c.ListKeyspaces();
  if (!r.ok()) co_return r.status();
  auto* out = response.mutable_keyspace_list();
  for (const auto& def : *r) SetKeyspace(def, out->add_keyspaces());
  co_return Status::Ok();
}

asio::awaitable<Status> KeyspaceDescribe(Coordinator& c, wire::Request& request,
                                         const RequestOptions&, wire::Response& response) {
  auto r = c.DescribeKeyspace(request.keyspace_describe().name());
  if (!r.ok()) co_return r.status();
  SetKeyspace(*r, response.mutable_keyspace_describe()->mutable_keyspace());
  co_return Status::Ok();
}

asio::awaitable<Status> KeyspaceDrop(Coordinator& c, wire::Request& request, const RequestOptions&,
                                     wire::Response& response) {
  wire::KeyspaceDropRequest* drop = request.mutable_keyspace_drop();
  Status status = co_await c.DropKeyspace(std::move(*drop->mutable_name()), drop->if_exists());
  if (status.ok()) response.mutable_keyspace_drop();
  co_return status;
}

asio::awaitable<Status> KeyspaceAlter(Coordinator& c, wire::Request& request, const RequestOptions&,
                                      wire::Response& response) {
  wire::KeyspaceAlterRequest* alter = request.mutable_keyspace_alter();
  coordinator::KeyspaceChange change;
  if (alter->has_linearizable()) change.linearizable = alter->linearizable();
  if (alter->has_auto_split_increments_per_s()) {
    change.auto_split_increments_per_s = alter->auto_split_increments_per_s();
  }
  if (alter->has_auto_split_shards()) change.auto_split_shards = alter->auto_split_shards();
  std::optional<Consistency> read, write;
  if (Status s = LevelsOf(alter->read_consistency(), alter->write_consistency(), &read, &write);
      !s.ok()) {
    co_return s;
  }
  if (read) change.read_consistency = *read;
  if (write) change.write_consistency = *write;
  auto r = co_await c.AlterKeyspace(std::move(*alter->mutable_name()), change);
  if (!r.ok()) co_return r.status();
  SetKeyspace(*r, response.mutable_keyspace_alter()->mutable_keyspace());
  co_return Status::Ok();
}

asio::awaitable<Status> Ping(Coordinator& c, wire::Request&, const RequestOptions&,
                             wire::Response& response) {
  const coordinator::NodeInfo info = c.Info();
  auto* out = response.mutable_ping();
  out->set_node(info.node_id);
  out->set_server_version(info.server_version);
  co_return Status::Ok();
}

asio::awaitable<Status> Metrics(Coordinator& c, wire::Request&, const RequestOptions&,
                                wire::Response& response) {
  auto* out = response.mutable_metrics()->mutable_counters();
  for (const auto& [name, value] : c.Metrics()) (*out)[name] = value;
  co_return Status::Ok();
}

asio::awaitable<Status> ClusterStatus(Coordinator& c, wire::Request&, const RequestOptions&,
                                      wire::Response& response) {
  const auto nodes = c.ClusterStatus();
  if (!nodes.ok()) co_return nodes.status();
  const coordinator::ClusterInfo info = c.Cluster();
  auto* out = response.mutable_cluster_status();
  out->set_partitions(info.partitions);
  out->set_formed(info.formed);
  out->set_note(info.note);
  out->set_map_fingerprint(info.map_fingerprint);
  out->set_topology_epoch(info.epoch);
  out->set_change(info.change);
  for (const coordinator::NodeReport& n : *nodes) {
    wire::NodeStatus* node = out->add_nodes();
    node->set_node_id(n.status.node_id);
    node->set_address(n.status.address);
    node->set_dc(n.status.dc);
    node->set_rack(n.status.rack);
    node->set_state(n.status.up ? "UP" : "DOWN");
    node->set_partitions(n.partitions);
    node->set_load_bytes(n.status.load_bytes);
    node->set_dead_bytes(n.status.dead_bytes);
    node->set_hints_pending(n.status.hints_pending);
    node->set_self(n.status.self);
    node->set_member_state(n.status.state);
    node->set_dead(n.status.dead);
    node->set_streams_total(n.status.streams_total);
    node->set_streams_done(n.status.streams_done);
    node->set_stream_bytes(n.status.stream_bytes);
    node->set_stream_chunks(n.status.stream_chunks);
    node->set_stream_rate(n.status.stream_rate);
    if (const auto& r = n.status.streaming) {
      wire::StreamingRange* out = node->mutable_streaming();
      out->set_partition(r->partition);
      out->set_keyspace(r->keyspace);
      out->set_source(r->source);
      out->set_chunks(r->chunks);
      out->set_bytes(r->bytes);
    }
  }
  co_return Status::Ok();
}

asio::awaitable<Status> NodeOperation(Coordinator& c, wire::Request& request, const RequestOptions&,
                                      wire::Response& response) {
  const wire::NodeOperationRequest& r = request.node_operation();
  coordinator::NodeOp op;
  switch (r.kind()) {
    case wire::NodeOperationRequest::DECOMMISSION:
      op = coordinator::NodeOp::kDecommission;
      break;
    case wire::NodeOperationRequest::REMOVE:
      op = coordinator::NodeOp::kRemove;
      break;
    case wire::NodeOperationRequest::CANCEL:
      op = coordinator::NodeOp::kCancel;
      break;
    case wire::NodeOperationRequest::JOIN:
      op = coordinator::NodeOp::kJoin;
      break;
    case wire::NodeOperationRequest::REPLACE:
      op = coordinator::NodeOp::kReplace;
      break;
    default:
      co_return Status::InvalidArgument(
          "a node operation is DECOMMISSION, REMOVE, CANCEL, JOIN or REPLACE");
  }
  if (op != coordinator::NodeOp::kCancel && op != coordinator::NodeOp::kJoin && r.node_id() == 0) {
    co_return Status::InvalidArgument("a node operation names the node (its id)");
  }
  auto info = co_await c.NodeOperation(op, r.node_id());
  if (!info.ok()) co_return info.status();
  auto* out = response.mutable_node_operation();
  out->set_topology_epoch(info->epoch);
  out->set_change(info->change);
  co_return Status::Ok();
}

asio::awaitable<Status> Repair(Coordinator& c, wire::Request& request,
                               const RequestOptions& options, wire::Response& response) {
  const wire::RepairRequest& r = request.repair();
  coordinator::RepairRunStep run;  // id 0 (older clients): not tracked
  run.id = r.run_id();
  run.index = r.run_index();
  run.total = r.run_total();
  run.keyspaces.assign(r.run_keyspaces().begin(), r.run_keyspaces().end());
  if (r.has_run_partition()) run.partition = r.run_partition();
  auto report = co_await c.RepairRange(options.keyspace, r.partition(), r.only_node(), false, run);
  if (!report.ok()) co_return report.status();
  auto* out = response.mutable_repair();
  out->set_partition(report->partition);
  for (uint32_t node : report->replicas) out->add_replicas(node);
  out->set_answered(report->answered);
  out->set_skipped(report->skipped);
  out->set_segments_differing(report->segments_differing);
  out->set_keys_compared(report->keys_compared);
  out->set_keys_repaired(report->keys_repaired);
  out->set_bytes(report->bytes);
  out->set_agreed(report->agreed);
  out->set_tombstones_purged(report->tombstones_purged);
  co_return Status::Ok();
}

asio::awaitable<Status> Compact(Coordinator& c, wire::Request&, const RequestOptions&,
                                wire::Response& response) {
  auto report = co_await c.Compact();
  if (!report.ok()) co_return report.status();
  auto* out = response.mutable_compact();
  out->set_bytes_before(report->bytes_before);
  out->set_bytes_after(report->bytes_after);
  out->set_milliseconds(static_cast<uint64_t>(report->took.count()));
  co_return Status::Ok();
}

asio::awaitable<Status> HotKeys(Coordinator& c, wire::Request& request,
                                const RequestOptions& options, wire::Response& response) {
  const wire::HotKeysRequest& r = request.hot_keys();
  std::string keyspace = r.all_keyspaces() ? "" : options.keyspace;
  if (!r.all_keyspaces() && keyspace.empty()) keyspace = std::string(coordinator::kDefaultKeyspace);
  auto report = co_await c.HotKeys(std::move(keyspace), r.limit() == 0 ? 20 : r.limit());
  if (!report.ok()) co_return report.status();
  auto* out = response.mutable_hot_keys();
  out->set_nodes_asked(report->nodes_asked);
  for (uint32_t node : report->nodes_missing) out->add_nodes_missing(node);
  for (coordinator::HotKeyReport& k : report->keys) {
    wire::HotKey* h = out->add_keys();
    h->set_keyspace(std::move(k.keyspace));
    h->set_key(std::move(k.key));
    h->set_truncated(k.truncated);
    h->set_reads_per_s(k.reads_per_s);
    h->set_writes_per_s(k.writes_per_s);
    h->set_error_per_s(k.error_per_s);
    h->set_increments_per_s(k.increments_per_s);
    h->set_split_shards(k.split_shards);
    for (const auto& [node, ops] : k.nodes) {
      h->add_nodes(node);
      h->add_node_ops_per_s(ops);
    }
  }
  co_return Status::Ok();
}

asio::awaitable<Status> Increment(Coordinator& c, wire::Request& request,
                                  const RequestOptions& options, wire::Response& response) {
  wire::IncrementRequest* r = request.mutable_increment();
  base::CounterDelta delta;
  if (!r->by_float().empty()) {
    auto by = base::ParseLongDouble(r->by_float());
    if (!by) co_return Status::InvalidArgument("by_float is not a valid float");
    delta.is_float = true;
    delta.by_float = *by;
  } else {
    delta.by = r->by();
  }
  auto outcome =
      co_await c.Increment(std::move(*r->mutable_key()), delta, options, Consistency::kDefault);
  if (!outcome.ok()) co_return outcome.status();
  if (outcome->refused != base::CounterRefusal::kNone) {
    // Redis's reason, without its "ERR ".
    co_return Status::FailedPrecondition(
        std::string(base::CounterRefusalText(outcome->refused).substr(4)));
  }
  response.mutable_increment()->set_value(std::move(outcome->value));
  response.mutable_increment()->set_estimate(outcome->estimate);
  co_return Status::Ok();
}

asio::awaitable<Status> SplitCounter(Coordinator& c, wire::Request& request,
                                     const RequestOptions& options, wire::Response& response) {
  wire::SplitCounterRequest* r = request.mutable_split_counter();
  if (r->merge() == (r->shards() > 0)) {
    co_return Status::InvalidArgument("split_counter needs either shards (2 to 64) or merge");
  }
  auto outcome = co_await c.SplitCounter(std::move(*r->mutable_key()), r->shards(), options);
  if (!outcome.ok()) co_return outcome.status();
  response.mutable_split_counter()->set_value(std::move(outcome->value));
  response.mutable_split_counter()->set_shards(outcome->shards);
  co_return Status::Ok();
}

using Handler = asio::awaitable<Status> (*)(Coordinator&, wire::Request&, const RequestOptions&,
                                            wire::Response&);

// Every operation of the native protocol: its handler and what it is counted as in /metrics.
struct NativeOperation {
  wire::Request::OpCase op;
  base::metrics::Operation counted_as;
  Handler handler;
};

constexpr NativeOperation kOperations[] = {
    {wire::Request::kGet, base::metrics::Operation::kGet, Get},
    {wire::Request::kPut, base::metrics::Operation::kPut, Put},
    {wire::Request::kDelete, base::metrics::Operation::kDelete, Delete},
    {wire::Request::kCas, base::metrics::Operation::kCas, Cas},
    {wire::Request::kScan, base::metrics::Operation::kScan, Scan},
    {wire::Request::kBatchGet, base::metrics::Operation::kBatchGet, BatchGet},
    {wire::Request::kBatchPut, base::metrics::Operation::kBatchPut, BatchPut},
    {wire::Request::kKeyspaceCreate, base::metrics::Operation::kKeyspaceCreate, KeyspaceCreate},
    {wire::Request::kKeyspaceList, base::metrics::Operation::kKeyspaceList, KeyspaceList},
    {wire::Request::kKeyspaceDescribe, base::metrics::Operation::kKeyspaceDescribe,
     KeyspaceDescribe},
    {wire::Request::kKeyspaceAlter, base::metrics::Operation::kKeyspaceAlter, KeyspaceAlter},
    {wire::Request::kKeyspaceDrop, base::metrics::Operation::kKeyspaceDrop, KeyspaceDrop},
    {wire::Request::kClusterStatus, base::metrics::Operation::kClusterStatus, ClusterStatus},
    {wire::Request::kPing, base::metrics::Operation::kPing, Ping},
    {wire::Request::kMetrics, base::metrics::Operation::kMetrics, Metrics},
    {wire::Request::kNodeOperation, base::metrics::Operation::kNodeOperation, NodeOperation},
    {wire::Request::kRepair, base::metrics::Operation::kRepair, Repair},
    {wire::Request::kCompact, base::metrics::Operation::kCompact, Compact},
    {wire::Request::kHotKeys, base::metrics::Operation::kHotKeys, HotKeys},
    {wire::Request::kIncrement, base::metrics::Operation::kCas, Increment},
    {wire::Request::kSplitCounter, base::metrics::Operation::kOther, SplitCounter},
    {wire::Request::kUserChange, base::metrics::Operation::kOther, UserChange},
    {wire::Request::kUserList, base::metrics::Operation::kOther, UserList},
};

// The entry of `op`, or null (OP_NOT_SET, or an operation of a newer client).
const NativeOperation* FindOperation(wire::Request::OpCase op) {
  for (const NativeOperation& o : kOperations) {
    if (o.op == op) return &o;
  }
  return nullptr;
}

base::metrics::Operation OperationOf(wire::Request::OpCase op) {
  const NativeOperation* o = FindOperation(op);
  return o ? o->counted_as : base::metrics::Operation::kOther;
}

}  // namespace

namespace {

// The answer to a request that threw: only a bug or memory exhaustion gets here, and the client
// still gets an answer.
wire::Response InternalError(net::FrameConnection& conn, uint64_t id, std::exception_ptr e) {
  spdlog::error("request {} from {} failed: {}", id, conn.peer().address().to_string(),
                base::ExceptionText(e));
  wire::Response response;
  SetError(Status::Internal("internal error; see the server log"), &response);
  return response;
}

}  // namespace

NativeFrontDoor::NativeFrontDoor(coordinator::Coordinator* coordinator, NativeOptions options)
    : coordinator_(coordinator), options_(options) {}

asio::awaitable<void> NativeFrontDoor::Serve(net::Stream stream) {
  net::ConnectionOptions connection_options;
  connection_options.preamble.clear();  // read by the server's accept loop
  connection_options.max_payload = options_.max_frame_bytes;
  connection_options.max_inflight = options_.max_inflight_per_connection;
  connection_options.memory = options_.memory;
  if (options_.memory != nullptr) {
    connection_options.max_payload =
        std::min(connection_options.max_payload, options_.memory->per_connection());
  }
  auto conn = std::make_shared<net::FrameConnection>(std::move(stream), connection_options);
  {
    std::lock_guard lock(mu_);
    connections_.insert(conn);
  }
  ++open_;
  auto executor = conn->executor();
  auto session = std::make_shared<NativeSession>();

  auto on_frame = [this, conn, executor, session](uint64_t id, std::string_view payload) {
    wire::Request request;
    if (!request.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
      wire::Response response;
      SetError(Status::InvalidArgument("malformed request: not a cairn.wire.Request message"),
               &response);
      SendMessage(*conn, id, response);
      return;
    }
    // With --auth, nothing runs before the connection's user may run it (native_access.h).
    if (request.op_case() == wire::Request::kLogin) {
      asio::co_spawn(
          executor,
          [this, conn, id, session,
           request = std::move(request)]() mutable -> asio::awaitable<void> {
            wire::Response response;
            co_await Login(options_.access, *session, std::move(request), &response);
            SendMessage(*conn, id, response);
          },
          [conn, id](std::exception_ptr e) {
            if (e) SendMessage(*conn, id, InternalError(*conn, id, e));
          });
      return;
    }
    if (options_.access != nullptr) {
      if (Status s = Authorize(*options_.access, session->user, request); !s.ok()) {
        wire::Response refused;
        SetError(s, &refused);
        SendMessage(*conn, id, refused);
        Count(OperationOf(request.op_case()), request.consistency(), refused, base::Clock::now());
        return;
      }
    }
    // A read holds its value until the answer is written: room for it is reserved first.
    const auto op_case = request.op_case();
    if ((op_case == wire::Request::kGet || op_case == wire::Request::kScan ||
         op_case == wire::Request::kBatchGet) &&
        !conn->ReserveAnswer(id)) {
      SendMessage(*conn, id, RefusedForMemory(0));
      return;
    }
    // A read this node alone answers is answered now; every other request runs on its own, so
    // that slow ones (fsync, replicas) never hold up fast ones.
    {
      const auto started = base::Clock::now();
      const int level = request.consistency();
      wire::Response response;
      bool answered = false;
      try {
        answered = TryAnswerAtOnce(request, &response);
      } catch (...) {
        response = InternalError(*conn, id, std::current_exception());
        answered = true;
      }
      if (answered) {
        SendMessage(*conn, id, response);
        Count(base::metrics::Operation::kGet, level, response, started);
        return;
      }
    }
    asio::co_spawn(
        executor,
        [this, conn, id, request = std::move(request)]() mutable -> asio::awaitable<void> {
          const auto started = base::Clock::now();
          const base::metrics::Operation op = OperationOf(request.op_case());
          const int level = request.consistency();
          wire::Response response;
          co_await Execute(std::move(request), &response);
          SendMessage(*conn, id, response);
          Count(op, level, response, started);
        },
        [conn, id](std::exception_ptr e) {
          if (e) SendMessage(*conn, id, InternalError(*conn, id, e));
        });
  };
  auto on_error = [conn](const Status& s) {
    wire::Response response;
    SetError(s, &response);
    SendMessage(*conn, 0, response);
  };

  Status ended = co_await conn->Run(on_frame, on_error);
  if (!ended.ok()) {
    spdlog::debug("native connection from {} ended: {}", conn->peer().address().to_string(),
                  ended.ToString());
  }
  {
    std::lock_guard lock(mu_);
    connections_.erase(conn);
  }
  --open_;
}

void NativeFrontDoor::Count(base::metrics::Operation op, int level, const wire::Response& response,
                            std::chrono::steady_clock::time_point started) const {
  if (options_.metrics == nullptr) return;
  const Code outcome =
      response.has_error() ? static_cast<Code>(response.error().code()) : Code::kOk;
  options_.metrics->Record(base::metrics::FrontDoor::kNative, op, static_cast<Consistency>(level),
                           outcome, base::Clock::now() - started);
}

void NativeFrontDoor::CloseAll() {
  std::lock_guard lock(mu_);
  for (const auto& conn : connections_) {
    asio::post(conn->executor(), [conn] { conn->StopReading(); });
  }
}

Result<coordinator::RequestOptions> NativeFrontDoor::OptionsOf(const wire::Request& request) const {
  auto level = LevelOf(request.consistency());
  if (!level.ok()) return level.status();
  auto timeout = request.timeout_ms() == 0 ? options_.default_timeout
                                           : std::chrono::milliseconds(request.timeout_ms());
  timeout = std::min(timeout, options_.max_timeout);
  coordinator::RequestOptions opts;
  opts.keyspace = request.keyspace();
  opts.consistency = *level;
  opts.deadline = base::Clock::now() + timeout;
  return opts;
}

bool NativeFrontDoor::TryAnswerAtOnce(const wire::Request& request, wire::Response* response) {
  if (request.op_case() != wire::Request::kGet) return false;
  auto opts = OptionsOf(request);
  if (!opts.ok()) {
    SetError(opts.status(), response);
    return true;
  }
  auto r = coordinator_->TryGetLocal(request.get().key(), *opts);
  if (!r) return false;
  SetGet(std::move(*r), response);
  SetCacheHint(*coordinator_, *opts, request.get().key(), response);
  return true;
}

asio::awaitable<void> NativeFrontDoor::Execute(wire::Request request, wire::Response* response) {
  Status status;
  const NativeOperation* op = FindOperation(request.op_case());
  if (auto options = OptionsOf(request); !options.ok()) {
    status = options.status();
  } else if (op == nullptr) {
    status = Status::InvalidArgument("the request names no operation this server supports");
  } else {
    status = co_await op->handler(*coordinator_, request, *options, *response);
  }
  if (!status.ok()) {
    response->clear_op();
    SetError(status, response);
  }
}

}  // namespace cairn::frontdoor::native
