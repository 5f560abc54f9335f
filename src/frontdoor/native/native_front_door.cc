#include "frontdoor/native/native_front_door.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

#include "base/text.h"

// g++ 12 reports asio's coroutine frame allocator as mismatched new/delete in large coroutines
// (a false positive: awaitable_frame_base defines both operators).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

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
}

base::metrics::Operation OperationOf(wire::Request::OpCase op) {
  using base::metrics::Operation;
  switch (op) {
    case wire::Request::kGet:
      return Operation::kGet;
    case wire::Request::kPut:
      return Operation::kPut;
    case wire::Request::kDelete:
      return Operation::kDelete;
    case wire::Request::kCas:
      return Operation::kCas;
    case wire::Request::kScan:
      return Operation::kScan;
    case wire::Request::kBatchGet:
      return Operation::kBatchGet;
    case wire::Request::kBatchPut:
      return Operation::kBatchPut;
    case wire::Request::kKeyspaceCreate:
      return Operation::kKeyspaceCreate;
    case wire::Request::kKeyspaceList:
      return Operation::kKeyspaceList;
    case wire::Request::kKeyspaceDescribe:
      return Operation::kKeyspaceDescribe;
    case wire::Request::kKeyspaceAlter:
      return Operation::kKeyspaceAlter;
    case wire::Request::kKeyspaceDrop:
      return Operation::kKeyspaceDrop;
    case wire::Request::kClusterStatus:
      return Operation::kClusterStatus;
    case wire::Request::kPing:
      return Operation::kPing;
    case wire::Request::kMetrics:
      return Operation::kMetrics;
    case wire::Request::OP_NOT_SET:
      break;
  }
  return Operation::kOther;
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
  conn.Send(id, size, [&](char* dest) {
    m.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(dest));
  });
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

asio::awaitable<void> NativeFrontDoor::Serve(asio::ip::tcp::socket socket) {
  net::ConnectionOptions connection_options;
  connection_options.preamble.clear();  // read by the server's accept loop
  connection_options.max_payload = options_.max_frame_bytes;
  connection_options.max_inflight = options_.max_inflight_per_connection;
  auto conn = std::make_shared<net::FrameConnection>(std::move(socket), connection_options);
  {
    std::lock_guard lock(mu_);
    connections_.insert(conn);
  }
  ++open_;
  auto executor = conn->executor();

  auto on_frame = [this, conn, executor](uint64_t id, std::string_view payload) {
    wire::Request request;
    if (!request.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
      wire::Response response;
      SetError(Status::InvalidArgument("malformed request: not a cairn.wire.Request message"),
               &response);
      SendMessage(*conn, id, response);
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

}  // namespace

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
  return true;
}

asio::awaitable<void> NativeFrontDoor::Execute(wire::Request request, wire::Response* response) {
  auto options = OptionsOf(request);
  if (!options.ok()) {
    SetError(options.status(), response);
    co_return;
  }
  const coordinator::RequestOptions& opts = *options;

  Status status;
  switch (request.op_case()) {
    case wire::Request::kGet: {
      auto r = co_await coordinator_->Get(std::move(*request.mutable_get()->mutable_key()), opts);
      SetGet(std::move(r), response);
      co_return;
    }
    case wire::Request::kPut: {
      wire::PutRequest* put = request.mutable_put();
      auto r = co_await coordinator_->Put(std::move(*put->mutable_key()),
                                          std::move(*put->mutable_value()), put->ttl_ms(), opts);
      if (!r.ok()) {
        status = r.status();
        break;
      }
      SetVersion(*r, response->mutable_put()->mutable_version());
      break;
    }
    case wire::Request::kDelete: {
      auto r =
          co_await coordinator_->Delete(std::move(*request.mutable_delete_()->mutable_key()), opts);
      if (!r.ok()) {
        status = r.status();
        break;
      }
      SetVersion(*r, response->mutable_delete_()->mutable_version());
      break;
    }
    case wire::Request::kCas: {
      wire::CasRequest* cas = request.mutable_cas();
      CasCondition condition;
      switch (cas->condition_case()) {
        case wire::CasRequest::kIfVersion:
          condition.kind = CasCondition::Kind::kIfVersion;
          condition.version = Version{cas->if_version().hlc(), cas->if_version().node()};
          break;
        case wire::CasRequest::kIfValue:
          condition.kind = CasCondition::Kind::kIfValue;
          condition.value = std::move(*cas->mutable_if_value());
          break;
        case wire::CasRequest::kIfNotExists:
          condition.kind = CasCondition::Kind::kIfNotExists;
          break;
        case wire::CasRequest::kIfExists:
          condition.kind = CasCondition::Kind::kIfExists;
          break;
        case wire::CasRequest::CONDITION_NOT_SET:
          status = Status::InvalidArgument(
              "cas needs a condition: if_version, if_value, if_not_exists or if_exists");
          break;
      }
      if (!status.ok()) break;
      std::optional<std::string> new_value;
      if (cas->action_case() == wire::CasRequest::kNewValue) {
        new_value = std::move(*cas->mutable_new_value());
      } else if (cas->action_case() != wire::CasRequest::kDelete) {
        status = Status::InvalidArgument("cas needs an action: new_value or delete");
        break;
      }
      auto commit = LevelOf(cas->commit_consistency());
      if (!commit.ok()) {
        status = commit.status();
        break;
      }
      auto r = co_await coordinator_->Cas(std::move(*cas->mutable_key()), std::move(condition),
                                          std::move(new_value), cas->ttl_ms(), opts, *commit);
      if (!r.ok()) {
        status = r.status();
        break;
      }
      auto* out = response->mutable_cas();
      out->set_applied(r->applied);
      out->set_found(r->current.has_value());
      if (r->current) SetRecord(std::move(*r->current), out->mutable_current());
      break;
    }
    case wire::Request::kScan: {
      wire::ScanRequest* scan = request.mutable_scan();
      auto r = co_await coordinator_->Scan(std::move(*scan->mutable_prefix()),
                                           std::move(*scan->mutable_cursor()), scan->limit(), opts);
      if (!r.ok()) {
        status = r.status();
        break;
      }
      auto* out = response->mutable_scan();
      out->mutable_entries()->Reserve(static_cast<int>(r->entries.size()));
      for (auto& [key, record] : r->entries) {
        wire::ScanEntry* e = out->add_entries();
        e->set_key(std::move(key));
        SetRecord(std::move(record), e->mutable_record());
      }
      out->set_cursor(std::move(r->cursor));
      break;
    }
    case wire::Request::kBatchGet: {
      std::vector<std::string> keys;
      for (std::string& k : *request.mutable_batch_get()->mutable_keys())
        keys.push_back(std::move(k));
      auto r = co_await coordinator_->BatchGet(std::move(keys), opts);
      if (!r.ok()) {
        status = r.status();
        break;
      }
      auto* out = response->mutable_batch_get();
      for (auto& item : *r) {
        wire::GetItem* g = out->add_items();
        if (!item.ok()) {
          SetErrorOn(item.status(), g->mutable_error());
          continue;
        }
        g->set_found(item->has_value());
        if (item->has_value()) SetRecord(std::move(**item), g->mutable_record());
      }
      break;
    }
    case wire::Request::kBatchPut: {
      std::vector<coordinator::PutItem> items;
      for (wire::PutRequest& p : *request.mutable_batch_put()->mutable_items()) {
        items.push_back(coordinator::PutItem{std::move(*p.mutable_key()),
                                             std::move(*p.mutable_value()), p.ttl_ms()});
      }
      auto r = co_await coordinator_->BatchPut(std::move(items), opts);
      if (!r.ok()) {
        status = r.status();
        break;
      }
      auto* out = response->mutable_batch_put();
      for (const Result<Version>& v : *r) {
        wire::PutItem* item = out->add_items();
        if (v.ok()) {
          SetVersion(*v, item->mutable_version());
        } else {
          SetErrorOn(v.status(), item->mutable_error());
        }
      }
      break;
    }
    case wire::Request::kKeyspaceCreate: {
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
      auto read = LevelOf(ks.read_consistency());
      auto write = LevelOf(ks.write_consistency());
      if (!read.ok() || !write.ok()) {
        status = read.ok() ? write.status() : read.status();
        break;
      }
      if (*read != Consistency::kDefault) spec.read_consistency = *read;
      if (*write != Consistency::kDefault) spec.write_consistency = *write;
      spec.linearizable = ks.linearizable();
      auto r = co_await coordinator_->CreateKeyspace(std::move(spec), create.if_not_exists());
      if (!r.ok()) {
        status = r.status();
        break;
      }
      SetKeyspace(*r, response->mutable_keyspace_create()->mutable_keyspace());
      break;
    }
    case wire::Request::kKeyspaceList: {
      auto r = coordinator_->ListKeyspaces();
      if (!r.ok()) {
        status = r.status();
        break;
      }
      auto* out = response->mutable_keyspace_list();
      for (const auto& def : *r) SetKeyspace(def, out->add_keyspaces());
      break;
    }
    case wire::Request::kKeyspaceDescribe: {
      auto r = coordinator_->DescribeKeyspace(request.keyspace_describe().name());
      if (!r.ok()) {
        status = r.status();
        break;
      }
      SetKeyspace(*r, response->mutable_keyspace_describe()->mutable_keyspace());
      break;
    }
    case wire::Request::kKeyspaceDrop: {
      wire::KeyspaceDropRequest* drop = request.mutable_keyspace_drop();
      status =
          co_await coordinator_->DropKeyspace(std::move(*drop->mutable_name()), drop->if_exists());
      if (status.ok()) response->mutable_keyspace_drop();
      break;
    }
    case wire::Request::kKeyspaceAlter: {
      wire::KeyspaceAlterRequest* alter = request.mutable_keyspace_alter();
      coordinator::KeyspaceChange change;
      if (alter->has_linearizable()) change.linearizable = alter->linearizable();
      auto read = LevelOf(alter->read_consistency());
      auto write = LevelOf(alter->write_consistency());
      if (!read.ok() || !write.ok()) {
        status = read.ok() ? write.status() : read.status();
        break;
      }
      if (*read != Consistency::kDefault) change.read_consistency = *read;
      if (*write != Consistency::kDefault) change.write_consistency = *write;
      auto r = co_await coordinator_->AlterKeyspace(std::move(*alter->mutable_name()), change);
      if (!r.ok()) {
        status = r.status();
        break;
      }
      SetKeyspace(*r, response->mutable_keyspace_alter()->mutable_keyspace());
      break;
    }
    case wire::Request::kPing: {
      const coordinator::NodeInfo info = coordinator_->Info();
      auto* out = response->mutable_ping();
      out->set_node(info.node_id);
      out->set_server_version(info.server_version);
      break;
    }
    case wire::Request::kMetrics: {
      auto* out = response->mutable_metrics()->mutable_counters();
      for (const auto& [name, value] : coordinator_->Metrics()) (*out)[name] = value;
      break;
    }
    case wire::Request::kClusterStatus: {
      auto r = coordinator_->ClusterStatus();
      if (!r.ok()) {
        status = r.status();
        break;
      }
      auto* out = response->mutable_cluster_status();
      const coordinator::ClusterInfo info = coordinator_->Cluster();
      out->set_partitions(info.partitions);
      out->set_formed(info.formed);
      out->set_note(info.note);
      out->set_map_fingerprint(info.map_fingerprint);
      for (const coordinator::NodeReport& n : *r) {
        wire::NodeStatus* node = out->add_nodes();
        node->set_node_id(n.status.node_id);
        node->set_address(n.status.address);
        node->set_dc(n.status.dc);
        node->set_rack(n.status.rack);
        node->set_state(n.status.up ? "UP" : "DOWN");
        node->set_partitions(n.partitions);
        node->set_load_bytes(n.status.load_bytes);
        node->set_hints_pending(n.status.hints_pending);
        node->set_self(n.status.self);
      }
      break;
    }
    case wire::Request::OP_NOT_SET:
      status = Status::InvalidArgument("the request names no operation this server supports");
      break;
  }
  if (!status.ok()) {
    response->clear_op();
    SetError(status, response);
  }
}

}  // namespace cairn::frontdoor::native
