// Reads: the level's count of live replicas asked (this node first), a spare asked when one is
// slow (speculative retry), the newest version taken, and stale replicas repaired.
#include <algorithm>
#include <map>
#include <tuple>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/failpoint.h"
#include "base/hash.h"
#include "base/reactor.h"
#include "coordinator/cluster_coordinator.h"
#include "coordinator/replica_set.h"
#include "replica/internode_service.h"

namespace cairn::coordinator {

using base::kNoThrow;
using storage::StoredValue;
using storage::WriteOp;

// ------------------------------------------------------------------------------------------------
// Reads

// The answers to one replicated read as they come in. Lives on one reactor.
class ClusterCoordinator::ReadRound {
 public:
  ReadRound(asio::any_io_executor ex, ReplicaSet set, Requirement req)
      : set_(std::move(set)), req_(std::move(req)), wake_(std::move(ex)) {}

  void Answer(uint32_t node, std::optional<StoredValue> value) {
    answers_.emplace_back(node, std::move(value));
    answered_.push_back(node);
    Finish();
  }
  void Failed() { Finish(); }
  // A replica's fence refused the topology this read was planned with.
  void Refused() {
    refused_ = true;
    Finish();
  }
  bool refused() const { return refused_; }
  void Start() { ++outstanding_; }
  size_t outstanding() const { return outstanding_; }
  bool met() const { return req_.Met(set_, {answered_.data(), answered_.size()}); }

  asio::awaitable<void> Wait(base::Deadline deadline) {
    if (met() || outstanding_ == 0) co_return;
    wake_.expires_at(deadline);
    co_await wake_.async_wait(kNoThrow);
  }

  using Answers =
      boost::container::small_vector<std::pair<uint32_t, std::optional<StoredValue>>, 3>;
  const Answers& answers() const { return answers_; }
  const Requirement& requirement() const { return req_; }
  const ReplicaSet& set() const { return set_; }

 private:
  void Finish() {
    --outstanding_;
    if (met() || outstanding_ == 0) wake_.cancel();
  }

  const ReplicaSet set_;  // a copy: replica tasks may outlive the read that started them
  const Requirement req_;
  Answers answers_;
  NodeList answered_;  // nodes that answered
  size_t outstanding_ = 0;
  bool refused_ = false;
  asio::steady_timer wake_;
};

std::pair<ClusterCoordinator::NodeList, ClusterCoordinator::NodeList>
ClusterCoordinator::ChooseReplicas(const ReplicaSet& set, const Requirement& req,
                                   std::span<const uint32_t> prefer) const {
  // This node first when it is a replica, then the preferred ones, then its data centre, then
  // the others; of those that are UP, enough of each data centre the level names, then enough in
  // all. The rest are spares.
  NodeList order;
  const int self = set.IndexOf(identity_.node_id);
  if (self >= 0) order.push_back(identity_.node_id);
  auto listed = [&order](uint32_t node) {
    return std::find(order.begin(), order.end(), node) != order.end();
  };
  for (uint32_t node : prefer) {
    if (set.IndexOf(node) >= 0 && !listed(node)) order.push_back(node);
  }
  for (size_t i = 0; i < set.nodes.size(); ++i) {
    if (static_cast<int>(set.dc_of[i]) == set.local_dc && !listed(set.nodes[i])) {
      order.push_back(set.nodes[i]);
    }
  }
  for (size_t i = 0; i < set.nodes.size(); ++i) {
    if (static_cast<int>(set.dc_of[i]) != set.local_dc && !listed(set.nodes[i])) {
      order.push_back(set.nodes[i]);
    }
  }
  std::pair<NodeList, NodeList> out;  // returned by name: moving small_vectors into a pair
  NodeList& chosen = out.first;       // trips g++ 12's -Wstringop-overread
  NodeList& spare = out.second;
  boost::container::small_vector<uint32_t, 8> picked_dc(set.dcs.size(), 0);
  for (uint32_t node : order) {
    if (!view_->IsUp(node)) continue;
    const uint16_t dc = set.DcOf(node);
    if (picked_dc[dc] < req.first().per_dc[dc]) {
      chosen.push_back(node);
      ++picked_dc[dc];
    } else {
      spare.push_back(node);
    }
  }
  while (chosen.size() < req.first().total && !spare.empty()) {
    chosen.push_back(spare.front());
    spare.erase(spare.begin());
  }
  return out;
}

asio::awaitable<void> ClusterCoordinator::ReadFromNode(std::shared_ptr<ReadRound> round,
                                                       uint32_t node, storage::DataKey key,
                                                       base::Deadline deadline) {
  CountRead(/*local=*/false);
  auto topology = view_->topology();
  cluster::InternodeClient* client = Client();
  if (client == nullptr || !topology) {
    round->Failed();
    co_return;
  }
  internode::Request request;
  request.mutable_read()->set_partition(key.partition);
  request.mutable_read()->set_keyspace(key.keyspace);
  request.mutable_read()->set_key(key.key);
  request.set_topology_epoch(round->set().epoch);
  auto response = co_await client->Call(AddressOf(*topology, node), request, deadline);
  if (!response.ok()) {
    spdlog::debug("read from node {} failed: {}", node, response.status().ToString());
    if (response.status().code() == Code::kFailedPrecondition) {
      round->Refused();
    } else {
      round->Failed();
    }
    co_return;
  }
  internode::ReadResponse* read = response->mutable_read();
  if (!read->found()) {
    round->Answer(node, std::nullopt);
  } else {
    round->Answer(node, replica::FromMutation(std::move(*read->mutable_stored())).value);
  }
}

Status ClusterCoordinator::PlanRead(const cluster::Topology& topology,
                                    const cluster::KeyspaceDef& ks, uint32_t partition,
                                    Consistency level, ReadPlan* plan) const {
  plan->set = ReplicaSet::Of(topology, ks, partition);
  if (Status s = Requirement::Fill(level, plan->set, /*write=*/false, &plan->req); !s.ok()) {
    return s;
  }
  if (Status s = CheckLive(plan->set, plan->req, *view_, level); !s.ok()) return s;
  std::tie(plan->ask, plan->spare) = ChooseReplicas(plan->set, plan->req);
  return Status::Ok();
}

asio::awaitable<Result<std::optional<StoredValue>>> ClusterCoordinator::ReadKey(
    const cluster::Topology& topology, const cluster::KeyspaceDef& ks, storage::DataKey key,
    Consistency level, base::Deadline deadline) {
  ReadPlan plan;
  if (Status s = PlanRead(topology, ks, key.partition, level, &plan); !s.ok()) co_return s;
  NodeList& ask = plan.ask;
  NodeList& spare = plan.spare;

  // This node alone answers: no reconciliation needed. If its read fails (a corrupt block, say),
  // the spares answer instead.
  bool local_failed = false;
  if (ask.size() == 1 && ask[0] == identity_.node_id) {
    CountRead(/*local=*/true);
    auto local = local_->Read(key);
    if (local.ok() || spare.empty()) co_return local;
    local_failed = true;
  }

  if (base::failpoint::Any()) co_await base::failpoint::Pause("coordinator.read.before_send");
  auto executor = co_await asio::this_coro::executor;
  // The round owns the set and the requirement (replica tasks may outlive this read).
  auto round = std::make_shared<ReadRound>(executor, std::move(plan.set), std::move(plan.req));
  const ReplicaSet& set = round->set();
  const Requirement* req = &round->requirement();
  for (uint32_t node : ask) {
    round->Start();
    if (node == identity_.node_id && local_failed) {
      round->Failed();
    } else if (node == identity_.node_id) {
      CountRead(/*local=*/true);
      auto local = local_->Read(key);
      if (local.ok()) {
        round->Answer(node, std::move(*local));
      } else {
        round->Failed();
      }
    } else {
      // ReadFromNode reports every outcome to the round: nothing escapes it.
      asio::co_spawn(executor, ReadFromNode(round, node, key, deadline), asio::detached);
    }
  }
  // A replica that failed fast, or one still silent after the speculative-retry delay, is
  // doubled by a spare while time remains.
  base::Deadline first = deadline;
  if (options_.speculative_retry.count() > 0 && !spare.empty()) {
    first = std::min(deadline, base::Clock::now() + options_.speculative_retry);
  }
  co_await round->Wait(first);
  while (!round->met() && !spare.empty() && base::Clock::now() < deadline) {
    if (round->outstanding() > 0) {
      replica_counters_.speculative.Add(1);
    }
    round->Start();
    asio::co_spawn(executor, ReadFromNode(round, spare.front(), key, deadline), asio::detached);
    spare.erase(spare.begin());
    co_await round->Wait(deadline);
  }
  if (!round->met() && round->refused()) {
    // Fenced out: read again with the topology that fenced this one.
    if (auto newer = co_await NewerTopology(topology.epoch, deadline)) {
      replica_counters_.replans.Add(1);
      co_return co_await ReadKey(*newer, ks, std::move(key), level, deadline);
    }
  }
  if (!round->met()) {
    const auto n = static_cast<uint32_t>(round->answers().size());
    co_return Status::Timeout(
        fmt::format("{} of {} replicas answered before the deadline", n, req->Needed()), n);
  }

  // The newest version wins (tombstones too); replicas that answered with less are repaired.
  std::optional<StoredValue> newest;
  for (const auto& [node, value] : round->answers()) {
    if (value && (!newest || newest->version < value->version)) newest = *value;
  }
  std::vector<uint32_t> stale;
  for (const auto& [node, value] : round->answers()) {
    if (newest && (!value || value->version < newest->version)) stale.push_back(node);
  }
  if (!stale.empty()) {
    replica_counters_.read_repairs.Add(stale.size());
    WriteOp repair;
    repair.key = key;
    repair.value = *newest;
    if (IsBlockingRead(level)) {
      // Before answering, so that a later read at this level cannot see an older value.
      Status repaired = co_await Repair(std::move(stale), set, std::move(repair), deadline);
      if (!repaired.ok()) {
        co_return Status::Timeout(
            fmt::format("read repair did not finish before the deadline: {}", repaired.message()),
            static_cast<uint32_t>(round->answers().size()));
      }
    } else {
      asio::co_spawn(
          executor,
          [this, stale = std::move(stale), set, repair = std::move(repair),
           deadline]() mutable -> asio::awaitable<void> {
            co_await Repair(std::move(stale), set, std::move(repair), deadline);
          },
          asio::detached);
    }
  }
  co_return newest;
}

asio::awaitable<cairn::Status> ClusterCoordinator::Repair(std::vector<uint32_t> nodes,
                                                          const ReplicaSet& set, WriteOp op,
                                                          base::Deadline deadline) {
  // One target whose replicas are just the stale nodes, all of which must take the repair.
  WriteTarget target;
  target.op = std::move(op);
  target.set.dcs = set.dcs;
  target.set.local_dc = set.local_dc;
  for (uint32_t node : nodes) {
    target.set.nodes.push_back(node);
    target.set.dc_of.push_back(set.DcOf(node));
    target.set.groups.push_back(1);
  }
  Requirement::Need all;
  all.per_dc.assign(set.dcs.size(), 0);
  all.total = static_cast<uint32_t>(nodes.size());
  target.req.groups = {std::move(all)};
  std::vector<WriteTarget> targets;
  targets.push_back(std::move(target));
  auto results = co_await Replicate(std::move(targets), deadline, std::nullopt);
  co_return results[0];
}
Result<ClusterCoordinator::ReadStart> ClusterCoordinator::StartRead(
    std::string_view key, const RequestOptions& options) const {
  auto ks = ResolveKeyspace(options.keyspace);
  if (!ks.ok()) return ks.status();
  if (Status s = ValidateKey(key); !s.ok()) return s;
  if (Status s = ValidateReadLevel(options.consistency); !s.ok()) return s;
  auto topology = Topology();
  if (!topology.ok()) return topology.status();
  const Consistency level = Resolve(options.consistency, **ks, false);
  return ReadStart{std::move(*ks), std::move(*topology), level};
}

Result<std::optional<Record>> ClusterCoordinator::LiveRecordOf(
    Result<std::optional<StoredValue>> stored) const {
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) return std::optional<Record>();
  return LiveRecord(**stored, wall_->NowMillis());
}

asio::awaitable<Result<std::optional<Record>>> ClusterCoordinator::Get(std::string key,
                                                                       RequestOptions options) {
  auto start = StartRead(key, options);
  if (!start.ok()) co_return start.status();
  const cluster::KeyspaceDef& ks = *start->keyspace;
  if (SplitOf(*start->topology, ks, key, options) != nullptr) {
    co_return co_await ReadSplit(ks, std::move(key), std::move(options));
  }
  if (options.count_hot_key) hot_keys_.Add(ks.id, key, /*write=*/false);
  storage::DataKey data_key = KeyOf(ks, std::move(key));  // named: see the g++ 12 note
  Result<std::optional<StoredValue>> stored = std::optional<StoredValue>();
  if (IsSerial(start->level, ks)) {
    stored = co_await SerialRead(*start->topology, ks, std::move(data_key),
                                 SerialLevelOf(start->level), options.deadline);
  } else {
    stored =
        co_await ReadKey(*start->topology, ks, std::move(data_key), start->level, options.deadline);
  }
  co_return LiveRecordOf(std::move(stored));
}

std::optional<Result<std::optional<Record>>> ClusterCoordinator::TryGetLocal(
    std::string_view key, const RequestOptions& options) {
  auto start = StartRead(key, options);
  if (!start.ok()) return Result<std::optional<Record>>(start.status());
  const cluster::KeyspaceDef& ks = *start->keyspace;
  const Consistency level = start->level;
  if (IsSerial(level, ks)) return std::nullopt;
  if (SplitOf(*start->topology, ks, key, options) != nullptr) return std::nullopt;
  // Only a level one replica meets, or a one-node cluster, can be answered here: spare the
  // planning (Get() does it again) for the rest.
  const bool one_replica = level == Consistency::kOne || level == Consistency::kLocalOne;
  if (!one_replica && start->topology->map.members().size() > 1) return std::nullopt;
  storage::DataKey data_key = KeyOf(ks, std::string(key));
  // The common case needs no plan (PlanRead builds the replica set, the requirement and the
  // choice): this node holds a replica in its own DC, and the level is met by one replica, the
  // first ChooseReplicas() would pick (itself). TWO and THREE on one node go the long way, which
  // says why they cannot be met.
  const cluster::Topology& topology = *start->topology;
  const bool met_by_one = one_replica || level == Consistency::kQuorum ||
                          level == Consistency::kLocalQuorum || level == Consistency::kAll ||
                          level == Consistency::kEachQuorum;
  if (met_by_one && view_->IsUp(identity_.node_id)) {
    const auto mine =
        topology.map.ReplicasIn(data_key.partition, topology.local_dc, ks.replication);
    if (std::find(mine.begin(), mine.end(), identity_.node_id) != mine.end()) {
      CountRead(/*local=*/true);
      auto local = local_->Read(data_key);
      // A failed read (a corrupt block) goes the long way, where the other replicas answer.
      if (!local.ok()) return std::nullopt;
      hot_keys_.Add(ks.id, key, /*write=*/false);  // not before: Get() counts the long way
      return LiveRecordOf(std::move(local));
    }
  }
  ReadPlan plan;
  if (!PlanRead(topology, ks, data_key.partition, level, &plan).ok() || plan.ask.size() != 1 ||
      plan.ask[0] != identity_.node_id) {
    return std::nullopt;
  }
  CountRead(/*local=*/true);
  auto local = local_->Read(data_key);
  if (!local.ok()) return std::nullopt;
  hot_keys_.Add(ks.id, key, /*write=*/false);
  return LiveRecordOf(std::move(local));
}

asio::awaitable<Result<std::vector<Result<std::optional<Record>>>>> ClusterCoordinator::BatchGet(
    std::vector<std::string> keys, RequestOptions options) {
  auto ks = ResolveKeyspace(options.keyspace);
  if (!ks.ok()) co_return ks.status();
  if (Status s = ValidateReadLevel(options.consistency); !s.ok()) co_return s;
  if (keys.size() > options_.max_batch_get_keys) {
    co_return Status::TooLarge(fmt::format("a batch read holds at most {} keys, not {}",
                                           options_.max_batch_get_keys, keys.size()));
  }
  auto topology = Topology();
  if (!topology.ok()) co_return topology.status();
  const Consistency level = Resolve(options.consistency, **ks, false);
  const uint64_t now = wall_->NowMillis();
  std::vector<Result<std::optional<Record>>> out(keys.size());
  size_t bytes = 0;
  // Keys are read one after another: a batch saves round trips to the coordinator, and each
  // key's replicas are asked in parallel. A key this node holds is read without waiting, so a
  // batch of such keys would hold the reactor for all of them (100,000 keys: 0.1 s): the loop
  // yields whenever the reactor's slice is spent.
  for (size_t i = 0; i < keys.size(); ++i) {
    if (base::SliceSpent()) co_await base::Yield();
    if (bytes > options_.max_answer_bytes) {
      co_return Status::TooLarge(
          fmt::format("the values read are over {} bytes; read fewer keys per batch",
                      options_.max_answer_bytes));
    }
    if (Status s = ValidateKey(keys[i]); !s.ok()) {
      out[i] = std::move(s);
      continue;
    }
    if (SplitOf(**topology, **ks, keys[i], options) != nullptr) {
      out[i] = co_await ReadSplit(**ks, std::move(keys[i]), options);
      continue;
    }
    hot_keys_.Add((*ks)->id, keys[i], /*write=*/false);
    storage::DataKey data_key = KeyOf(**ks, std::move(keys[i]));  // named: see the g++ 12 note
    auto stored = co_await ReadKey(**topology, **ks, std::move(data_key), level, options.deadline);
    if (!stored.ok()) {
      out[i] = stored.status();
    } else if (!stored->has_value()) {
      out[i] = std::optional<Record>();
    } else {
      bytes += (*stored)->value.size();
      out[i] = LiveRecord(**stored, now);
    }
  }
  co_return out;
}
}  // namespace cairn::coordinator
