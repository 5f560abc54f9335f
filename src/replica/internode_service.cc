#include "replica/internode_service.h"

#include <algorithm>
#include <optional>
#include <string_view>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

#include "base/async.h"

namespace cairn::replica {
namespace {

void SetError(const Status& s, internode::Response* response) {
  response->clear_op();
  response->mutable_error()->set_code(static_cast<uint32_t>(s.code()));
  response->mutable_error()->set_message(s.message());
}

// The answer of an operation run under the request's deadline (base::WithDeadline): its value,
// passed to `set`, or its error, or TIMEOUT when `what` did not finish in time.
template <typename T, typename Set>
void Answer(std::optional<Result<T>>& r, std::string_view what, internode::Response* response,
            Set set) {
  if (!r) {
    SetError(Status::Timeout(fmt::format("{} did not finish before the deadline", what), 0),
             response);
  } else if (!r->ok()) {
    SetError(r->status(), response);
  } else {
    set(**r);
  }
}

void Send(net::FrameConnection& conn, uint64_t id, const internode::Response& m) {
  const size_t size = m.ByteSizeLong();
  conn.Send(id, size, [&](char* dest) {
    m.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(dest));
  });
}

}  // namespace

void ToMutation(const storage::DataKey& key, const storage::StoredValue& value,
                internode::Mutation* out) {
  out->set_partition(key.partition);
  out->set_keyspace(key.keyspace);
  out->set_key(key.key);
  out->mutable_version()->set_hlc(value.version.hlc);
  out->mutable_version()->set_node(value.version.node);
  out->set_tombstone(value.tombstone);
  out->set_expires_at_ms(value.expires_at_ms);
  out->set_value(value.value);
}

storage::WriteOp FromMutation(internode::Mutation&& m) {
  storage::WriteOp op;
  op.key = storage::DataKey{m.partition(), m.keyspace(), std::move(*m.mutable_key())};
  op.value.version = Version{m.version().hlc(), m.version().node()};
  op.value.tombstone = m.tombstone();
  op.value.expires_at_ms = m.expires_at_ms();
  op.value.value = std::move(*m.mutable_value());
  return op;
}

InternodeService::InternodeService(Replica* replica, cluster::Gossiper* gossiper,
                                   base::HybridClock* clock, base::PhysicalClock* wall,
                                   uint32_t self_node, size_t max_frame_bytes,
                                   asio::any_io_executor blocking)
    : replica_(replica),
      gossiper_(gossiper),
      clock_(clock),
      wall_(wall),
      self_node_(self_node),
      max_frame_bytes_(max_frame_bytes),
      blocking_(std::move(blocking)) {}

Status InternodeService::CheckFence(const internode::Request& request) const {
  // 0: a sender without a topology epoch (a version before them): it cannot be told apart.
  const uint64_t fence = gossiper_->fence();
  if (request.topology_epoch() == 0 || request.topology_epoch() >= fence) return Status::Ok();
  // The topology log's own slots (system keyspace 0) are ordered by their epochs: a node that
  // lags must still be able to read and decide them.
  uint32_t keyspace = 1;
  switch (request.op_case()) {
    case internode::Request::kPaxosPrepare:
      keyspace = request.paxos_prepare().key().keyspace();
      break;
    case internode::Request::kPaxosPropose:
      keyspace = request.paxos_propose().mutation().keyspace();
      break;
    case internode::Request::kPaxosCommit:
      keyspace = request.paxos_commit().mutation().keyspace();
      break;
    default:
      break;
  }
  if (keyspace == 0) return Status::Ok();
  return Status::FailedPrecondition(fmt::format(
      "this request was planned with topology epoch {}, older than this replica's fence at epoch "
      "{}; the coordinator must plan it again with the new topology",
      request.topology_epoch(), fence));
}

asio::awaitable<void> InternodeService::Serve(net::Stream stream) {
  net::ConnectionOptions options;
  options.preamble.clear();
  options.max_payload = max_frame_bytes_;
  options.max_inflight = 4096;  // a coordinator multiplexes many requests on one connection
  auto conn = std::make_shared<net::FrameConnection>(std::move(stream), options);
  {
    std::lock_guard lock(mu_);
    connections_.insert(conn);
  }
  auto executor = conn->executor();
  auto on_frame = [this, conn, executor](uint64_t id, std::string_view payload) {
    internode::Request request;
    if (!request.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
      internode::Response response;
      SetError(Status::InvalidArgument("malformed internode request"), &response);
      Send(*conn, id, response);
      return;
    }
    asio::co_spawn(
        executor,
        [this, conn, id, request = std::move(request)]() mutable -> asio::awaitable<void> {
          internode::Response response;
          co_await Execute(std::move(request), &response);
          Send(*conn, id, response);
        },
        [conn, id](std::exception_ptr e) {
          if (!e) return;
          internode::Response response;
          SetError(Status::Internal("internal error; see the peer's log"), &response);
          Send(*conn, id, response);
        });
  };
  auto on_error = [conn](const Status& s) {
    internode::Response response;
    SetError(s, &response);
    Send(*conn, 0, response);
  };
  Status ended = co_await conn->Run(on_frame, on_error);
  if (!ended.ok()) spdlog::debug("internode connection ended: {}", ended.ToString());
  std::lock_guard lock(mu_);
  connections_.erase(conn);
}

void InternodeService::CloseAll() {
  std::lock_guard lock(mu_);
  for (const auto& conn : connections_) {
    asio::post(conn->executor(), [conn] { conn->StopReading(); });
  }
}

// One case per internode operation, each a few lines that hand the request to the replica, the
// Paxos acceptor or the gossiper: a switch reads best as the one list of what a node answers.
asio::awaitable<void> InternodeService::Execute(internode::Request request,
                                                internode::Response* response) {
  if (request.protocol_version() == internode::PROTOCOL_UNSPECIFIED) {
    SetError(Status::InvalidArgument("internode request without a protocol version"), response);
    co_return;
  }
  const auto deadline =
      base::Clock::now() +
      std::chrono::milliseconds(request.timeout_ms() == 0 ? 5000 : request.timeout_ms());
  response->set_topology_epoch(gossiper_->epoch());
  switch (request.op_case()) {
    case internode::Request::kMutate:
    case internode::Request::kRead:
    case internode::Request::kScan:
    case internode::Request::kPaxosPrepare:
    case internode::Request::kPaxosPropose:
    case internode::Request::kPaxosCommit:
    case internode::Request::kRepairPull:
    case internode::Request::kPurge:
      if (Status s = CheckFence(request); !s.ok()) {
        SetError(s, response);
        co_return;
      }
      break;
    default:
      break;
  }
  switch (request.op_case()) {
    case internode::Request::kGossip: {
      auto r = gossiper_->Handle(request.gossip());
      if (!r.ok()) {
        SetError(r.status(), response);
      } else {
        response->mutable_gossip()->Swap(&*r);
      }
      break;
    }
    case internode::Request::kMutate: {
      std::vector<storage::WriteOp> ops;
      ops.reserve(request.mutate().mutations_size());
      for (internode::Mutation& m : *request.mutable_mutate()->mutable_mutations()) {
        // Later local writes order after what this replica has seen (bounded: see the gossiper).
        if (base::HybridClock::Millis(m.version().hlc()) <=
            clock_->physical().NowMillis() + 60'000) {
          clock_->Observe(m.version().hlc());
        }
        ops.push_back(FromMutation(std::move(m)));
      }
      auto applied = co_await replica_->Apply(std::move(ops), deadline);
      if (!applied.ok()) {
        SetError(applied.status(), response);
      } else {
        response->mutable_mutate();
      }
      break;
    }
    case internode::Request::kRead: {
      const internode::ReadRequest& read = request.read();
      storage::DataKey key{read.partition(), read.keyspace(), read.key()};
      auto stored = replica_->Read(key);
      if (!stored.ok()) {
        SetError(stored.status(), response);
        break;
      }
      auto* out = response->mutable_read();
      out->set_found(stored->has_value());
      if (stored->has_value()) ToMutation(key, **stored, out->mutable_stored());
      break;
    }
    case internode::Request::kScan: {
      internode::ScanRequest* scan = request.mutable_scan();
      Replica::ScanArgs args;
      args.keyspace = scan->keyspace();
      args.partitions.assign(scan->partitions().begin(), scan->partitions().end());
      args.prefix = std::move(*scan->mutable_prefix());
      args.after = std::move(*scan->mutable_after());
      args.limit = std::min<uint32_t>(scan->limit(), 10'000);
      args.max_dead = scan->max_dead();
      args.max_bytes = size_t{32} << 20;
      auto scanned = co_await base::WithDeadline(replica_->Scan(std::move(args)), deadline);
      if (!scanned) {
        SetError(Status::Timeout("the scan did not finish before the deadline", 0), response);
        break;
      }
      if (!scanned->ok()) {
        SetError(scanned->status(), response);
        break;
      }
      auto* out = response->mutable_scan();
      for (const storage::ScanItem& item : (*scanned)->items) {
        ToMutation(storage::DataKey{0, scan->keyspace(), item.key}, item.value, out->add_items());
      }
      out->set_exhausted((*scanned)->exhausted);
      out->set_last_key((*scanned)->last_key);
      break;
    }
    case internode::Request::kPaxosPrepare: {
      auto r = co_await replica_->paxos().Prepare(request.paxos_prepare(), deadline);
      if (!r.ok()) {
        SetError(r.status(), response);
      } else {
        response->mutable_paxos_prepare()->Swap(&*r);
      }
      break;
    }
    case internode::Request::kPaxosPropose: {
      auto r = co_await replica_->paxos().Propose(request.paxos_propose(), deadline);
      if (!r.ok()) {
        SetError(r.status(), response);
      } else {
        response->mutable_paxos_propose()->Swap(&*r);
      }
      break;
    }
    case internode::Request::kPaxosCommit: {
      clock_->Observe(request.paxos_commit().mutation().version().hlc());
      auto r = co_await replica_->paxos().Commit(request.paxos_commit(), deadline);
      if (!r.ok()) {
        SetError(r.status(), response);
      } else {
        response->mutable_paxos_commit()->Swap(&*r);
      }
      break;
    }
    case internode::Request::kTopology: {
      auto r = co_await base::AwaitCallback<Result<internode::TopologyResponse>>(
          [&](auto done) {
            asio::post(blocking_, [this, &request, done] {
              done(gossiper_->HandleTopology(request.topology()));
            });
          },
          Status::Timeout("adopting the topology took too long", 0));
      if (!r.ok()) {
        SetError(r.status(), response);
      } else {
        response->mutable_topology()->Swap(&*r);
      }
      response->set_topology_epoch(gossiper_->epoch());
      break;
    }
    case internode::Request::kStream: {
      auto r = co_await base::WithDeadline(
          replica_->StreamChunk(std::move(*request.mutable_stream())), deadline);
      Answer(r, "the range read", response, [&](auto& v) { response->mutable_stream()->Swap(&v); });
      break;
    }
    case internode::Request::kJoin: {
      if (!join_) {
        SetError(Status::Unavailable("this node does not take joins yet"), response);
        break;
      }
      auto r = co_await join_(std::move(*request.mutable_join()), deadline);
      if (!r.ok()) {
        SetError(r.status(), response);
      } else {
        response->mutable_join()->Swap(&*r);
      }
      break;
    }
    case internode::Request::kDigest: {
      auto r = replica_->Digest(request.digest().partition(), request.digest().keyspace(),
                                request.digest().root_only());
      if (!r.ok()) {
        SetError(r.status(), response);
      } else {
        response->mutable_digest()->Swap(&*r);
      }
      break;
    }
    case internode::Request::kRangeKeys: {
      auto r = co_await base::WithDeadline(
          replica_->RangeKeys(std::move(*request.mutable_range_keys())), deadline);
      Answer(r, "listing the range's keys", response,
             [&](auto& v) { response->mutable_range_keys()->Swap(&v); });
      break;
    }
    case internode::Request::kHotKeys: {
      if (hot_keys_ == nullptr) {
        SetError(Status::Unavailable("this node counts no hot keys"), response);
        break;
      }
      const uint32_t limit = std::min<uint32_t>(request.hot_keys().limit(), 1000);
      for (const base::HotKey& h : hot_keys_->Top(request.hot_keys().keyspace(), limit)) {
        internode::HotKeyEntry* e = response->mutable_hot_keys()->add_keys();
        e->set_keyspace(h.keyspace);
        e->set_key(h.key);
        e->set_truncated(h.truncated);
        e->set_reads_per_s(h.reads_per_s);
        e->set_writes_per_s(h.writes_per_s);
        e->set_error_per_s(h.error_per_s);
        e->set_increments_per_s(h.increments_per_s);
      }
      response->mutable_hot_keys();  // answered, even with none
      break;
    }
    case internode::Request::kRepairRuns:
      if (!repair_runs_) {
        SetError(Status::Unavailable("this node keeps no repair runs"), response);
        break;
      }
      repair_runs_(response->mutable_repair_runs());
      break;
    case internode::Request::kKeysChanged:
      if (tracking_) tracking_(request.from_node(), request);
      response->mutable_keys_changed();
      break;
    case internode::Request::kTracking:
      if (tracking_) tracking_(request.from_node(), request);
      response->mutable_tracking();
      break;
    case internode::Request::kPurge: {
      const internode::PurgeRequest& purge = request.purge();
      auto r = co_await base::WithDeadline(replica_->Purge(purge.partition(), purge.keyspace(),
                                                           purge.horizon_ms(), wall_->NowMillis()),
                                           deadline);
      Answer(r, "the purge", response,
             [&](uint64_t n) { response->mutable_purge()->set_purged(n); });
      break;
    }
    case internode::Request::kRepairPull: {
      if (!repair_pull_) {
        SetError(Status::Unavailable("this node does not take repairs yet"), response);
        break;
      }
      auto r = co_await repair_pull_(std::move(*request.mutable_repair_pull()), deadline);
      if (!r.ok()) {
        SetError(r.status(), response);
      } else {
        response->mutable_repair_pull()->Swap(&*r);
      }
      break;
    }
    case internode::Request::OP_NOT_SET:
      SetError(Status::InvalidArgument("the internode request names no operation this node knows"),
               response);
      break;
  }
}

}  // namespace cairn::replica
