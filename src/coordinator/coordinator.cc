#include "coordinator/coordinator.h"

#include <algorithm>
#include <map>
#include <tuple>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "base/hash.h"
#include "base/reactor.h"
#include "coordinator/replica_set.h"
#include "replica/internode_service.h"

// See native_front_door.cc: a g++ 12 false positive on asio's coroutine frames.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace cairn::coordinator {

using storage::StoredValue;
using storage::WriteOp;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

bool IsBlockingRead(Consistency level) {
  switch (level) {
    case Consistency::kQuorum:
    case Consistency::kAll:
    case Consistency::kLocalQuorum:
    case Consistency::kEachQuorum:
    case Consistency::kSerial:
    case Consistency::kLocalSerial:
      return true;
    default:
      return false;
  }
}

// Whether a read at `level` goes through Paxos: SERIAL levels always, and in a linearizable
// keyspace every level that waits for a quorum.
bool IsSerial(Consistency level, const cluster::KeyspaceDef& ks) {
  if (level == Consistency::kSerial || level == Consistency::kLocalSerial) return true;
  return ks.linearizable && IsBlockingRead(level);
}

Consistency SerialLevelOf(Consistency level) {
  return level == Consistency::kLocalSerial || level == Consistency::kLocalQuorum
             ? Consistency::kLocalSerial
             : Consistency::kSerial;
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// Writes

struct Coordinator::WriteTarget {
  WriteOp op;
  ReplicaSet set;
  Requirement req;
};

// The acknowledgements of one replicated write (of one or more keys) as they come in.
// Lives on one reactor; shared by the tasks that talk to each replica.
class Coordinator::WriteRound {
 public:
  struct Item {
    const ReplicaSet* set;
    Requirement req;
    uint32_t acks = 0;
    std::vector<uint32_t> acks_dc;
    bool met = false;
  };

  WriteRound(asio::any_io_executor ex, std::vector<WriteTarget> targets)
      : targets_(std::move(targets)), wake_(std::move(ex)) {
    for (const WriteTarget& t : targets_) {
      items_.push_back(Item{&t.set, t.req, 0, std::vector<uint32_t>(t.set.dcs.size(), 0), false});
    }
  }

  const std::vector<WriteTarget>& targets() const { return targets_; }
  asio::any_io_executor executor() { return wake_.get_executor(); }

  void Ack(size_t i, uint32_t node) {
    Item& item = items_[i];
    ++item.acks;
    ++item.acks_dc[item.set->DcOf(node)];
    Check(i);
  }
  void Hinted(size_t i) {
    Item& item = items_[i];
    if (!item.req.hints_count) return;
    ++item.acks;  // ANY counts hints in its total, never per DC
    Check(i);
  }
  void StartNode() { ++outstanding_; }
  void NodeDone() {
    if (--outstanding_ == 0) wake_.cancel();
  }

  // Waits until every item's requirement is met, every replica has answered, or the deadline.
  asio::awaitable<void> Wait(base::Deadline deadline) {
    if (met_ == items_.size() || outstanding_ == 0) co_return;
    wake_.expires_at(deadline);
    co_await wake_.async_wait(kNoThrow);
  }

  cairn::Status ResultOf(size_t i) const {
    const Item& item = items_[i];
    if (item.met) return Status::Ok();
    return Status::Timeout(
        fmt::format("{} of {} replicas acknowledged before the deadline; the write may have been "
                    "applied",
                    item.acks, item.req.Needed()),
        item.acks);
  }

 private:
  void Check(size_t i) {
    Item& item = items_[i];
    if (!item.met && item.req.Met(item.acks, item.acks_dc)) {
      item.met = true;
      if (++met_ == items_.size()) wake_.cancel();
    }
  }

  const std::vector<WriteTarget> targets_;
  std::vector<Item> items_;
  size_t met_ = 0;
  size_t outstanding_ = 0;
  asio::steady_timer wake_;
};

asio::awaitable<std::vector<cairn::Status>> Coordinator::Replicate(
    std::vector<WriteTarget> targets, base::Deadline deadline, std::optional<uint32_t> acked_by) {
  auto executor = co_await asio::this_coro::executor;
  auto round = std::make_shared<WriteRound>(executor, std::move(targets));
  // Group the ops by replica: one message per node carries all of its keys.
  std::map<uint32_t, std::vector<size_t>> by_node;
  for (size_t i = 0; i < round->targets().size(); ++i) {
    for (uint32_t node : round->targets()[i].set.nodes) {
      if (acked_by && node == *acked_by) {
        round->Ack(i, node);
        continue;
      }
      by_node[node].push_back(i);
    }
  }
  for (auto& [node, items] : by_node) {
    std::vector<WriteOp> ops;
    ops.reserve(items.size());
    for (size_t i : items) ops.push_back(round->targets()[i].op);
    round->StartNode();
    if (node == identity_.node_id) {
      ApplyLocally(round, std::move(items), std::move(ops));
      continue;
    }
    // SendToNode turns every failure into a hint or a missing ack: nothing escapes it.
    asio::co_spawn(executor, SendToNode(round, node, std::move(items), std::move(ops), deadline),
                   asio::detached);
  }
  co_await round->Wait(deadline);
  std::vector<cairn::Status> out;
  out.reserve(round->targets().size());
  for (size_t i = 0; i < round->targets().size(); ++i) out.push_back(round->ResultOf(i));
  co_return out;
}

void Coordinator::ApplyLocally(std::shared_ptr<WriteRound> round, std::vector<size_t> items,
                               std::vector<WriteOp> ops) {
  replica_counters_.writes.Add(ops.size());
  asio::any_io_executor executor = round->executor();
  auto done = [this, round = std::move(round), items = std::move(items)](const Status& s) {
    if (s.ok()) {
      for (size_t i : items) round->Ack(i, identity_.node_id);
    } else {
      replica_counters_.write_failures.Add(items.size());
      spdlog::error("local write failed: {}", s.ToString());
    }
    round->NodeDone();
  };
  local_->ApplyThen(std::move(ops), std::move(executor), std::move(done));
}

asio::awaitable<void> Coordinator::SendToNode(std::shared_ptr<WriteRound> round, uint32_t node,
                                              std::vector<size_t> items, std::vector<WriteOp> ops,
                                              base::Deadline deadline) {
  struct Done {
    WriteRound& r;
    ~Done() { r.NodeDone(); }
  } done{*round};
  replica_counters_.writes.Add(ops.size());
  auto topology = view_->topology();
  cluster::InternodeClient* client = Client();
  std::vector<internode::Mutation> mutations(ops.size());
  for (size_t k = 0; k < ops.size(); ++k) {
    replica::ToMutation(ops[k].key, ops[k].value, &mutations[k]);
  }
  if (client != nullptr && topology && view_->IsUp(node)) {
    internode::Request request;
    for (const auto& m : mutations) *request.mutable_mutate()->add_mutations() = m;
    auto response = co_await client->Call(AddressOf(*topology, node), request, deadline);
    if (response.ok()) {
      for (size_t i : items) round->Ack(i, node);
      co_return;
    }
    spdlog::debug("write to node {} failed: {}", node, response.status().ToString());
  }
  // Down, unreachable or too slow: keep a hint and replay it when the node is back.
  replica_counters_.write_failures.Add(items.size());
  if (hints_ != nullptr) {
    const size_t hinted = mutations.size();
    Status stored = co_await hints_->Add(node, std::move(mutations));
    if (stored.ok()) {
      replica_counters_.hints_stored.Add(hinted);
      for (size_t i : items) round->Hinted(i);
    } else {
      spdlog::error("cannot store hints for node {}: {}", node, stored.ToString());
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Reads

// The answers to one replicated read as they come in. Lives on one reactor.
class Coordinator::ReadRound {
 public:
  ReadRound(asio::any_io_executor ex, ReplicaSet set, Requirement req)
      : set_(std::move(set)),
        req_(std::move(req)),
        acks_dc_(set_.dcs.size(), 0),
        wake_(std::move(ex)) {}

  void Answer(uint32_t node, std::optional<StoredValue> value) {
    answers_.emplace_back(node, std::move(value));
    ++acks_dc_[set_.DcOf(node)];
    Finish();
  }
  void Failed() { Finish(); }
  void Start() { ++outstanding_; }
  size_t outstanding() const { return outstanding_; }
  bool met() const { return req_.Met(static_cast<uint32_t>(answers_.size()), acks_dc_); }

  asio::awaitable<void> Wait(base::Deadline deadline) {
    if (met() || outstanding_ == 0) co_return;
    wake_.expires_at(deadline);
    co_await wake_.async_wait(kNoThrow);
  }

  const std::vector<std::pair<uint32_t, std::optional<StoredValue>>>& answers() const {
    return answers_;
  }
  const Requirement& requirement() const { return req_; }

 private:
  void Finish() {
    --outstanding_;
    if (met() || outstanding_ == 0) wake_.cancel();
  }

  const ReplicaSet set_;  // a copy: replica tasks may outlive the read that started them
  const Requirement req_;
  std::vector<std::pair<uint32_t, std::optional<StoredValue>>> answers_;
  std::vector<uint32_t> acks_dc_;
  size_t outstanding_ = 0;
  asio::steady_timer wake_;
};

std::pair<std::vector<uint32_t>, std::vector<uint32_t>> Coordinator::ChooseReplicas(
    const ReplicaSet& set, const Requirement& req) const {
  // This node first when it is a replica, then its data centre, then the others; of those that
  // are UP, enough of each data centre the level names, then enough in all. The rest are spares.
  std::vector<uint32_t> order;
  const int self = set.IndexOf(identity_.node_id);
  if (self >= 0) order.push_back(identity_.node_id);
  for (size_t i = 0; i < set.nodes.size(); ++i) {
    if (static_cast<int>(i) != self && static_cast<int>(set.dc_of[i]) == set.local_dc) {
      order.push_back(set.nodes[i]);
    }
  }
  for (size_t i = 0; i < set.nodes.size(); ++i) {
    if (static_cast<int>(set.dc_of[i]) != set.local_dc) order.push_back(set.nodes[i]);
  }
  std::vector<uint32_t> chosen, spare;
  std::vector<uint32_t> picked_dc(set.dcs.size(), 0);
  for (uint32_t node : order) {
    if (!view_->IsUp(node)) continue;
    const uint16_t dc = set.DcOf(node);
    if (picked_dc[dc] < req.per_dc[dc]) {
      chosen.push_back(node);
      ++picked_dc[dc];
    } else {
      spare.push_back(node);
    }
  }
  while (chosen.size() < req.total && !spare.empty()) {
    chosen.push_back(spare.front());
    spare.erase(spare.begin());
  }
  return {std::move(chosen), std::move(spare)};
}

asio::awaitable<void> Coordinator::ReadFromNode(std::shared_ptr<ReadRound> round, uint32_t node,
                                                storage::DataKey key, base::Deadline deadline) {
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
  auto response = co_await client->Call(AddressOf(*topology, node), request, deadline);
  if (!response.ok()) {
    spdlog::debug("read from node {} failed: {}", node, response.status().ToString());
    round->Failed();
    co_return;
  }
  internode::ReadResponse* read = response->mutable_read();
  if (!read->found()) {
    round->Answer(node, std::nullopt);
  } else {
    round->Answer(node, replica::FromMutation(std::move(*read->mutable_stored())).value);
  }
}

Result<Coordinator::ReadPlan> Coordinator::PlanRead(const cluster::Topology& topology,
                                                    const cluster::KeyspaceDef& ks,
                                                    uint32_t partition, Consistency level) const {
  ReadPlan plan;
  plan.set = ReplicaSet::Of(topology, ks, partition);
  auto req = Requirement::For(level, plan.set, /*write=*/false);
  if (!req.ok()) return req.status();
  plan.req = std::move(*req);
  if (Status s = CheckLive(plan.set, plan.req, *view_, level); !s.ok()) return s;
  std::tie(plan.ask, plan.spare) = ChooseReplicas(plan.set, plan.req);
  return plan;
}

asio::awaitable<Result<std::optional<StoredValue>>> Coordinator::ReadKey(
    const cluster::Topology& topology, const cluster::KeyspaceDef& ks, storage::DataKey key,
    Consistency level, base::Deadline deadline) {
  auto plan = PlanRead(topology, ks, key.partition, level);
  if (!plan.ok()) co_return plan.status();
  const ReplicaSet& set = plan->set;
  const Requirement* req = &plan->req;
  std::vector<uint32_t>& ask = plan->ask;
  std::vector<uint32_t>& spare = plan->spare;

  // This node alone answers: no reconciliation needed.
  if (ask.size() == 1 && ask[0] == identity_.node_id) {
    CountRead(/*local=*/true);
    co_return local_->Read(key);
  }

  auto executor = co_await asio::this_coro::executor;
  auto round = std::make_shared<ReadRound>(executor, set, *req);
  for (uint32_t node : ask) {
    round->Start();
    if (node == identity_.node_id) {
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

asio::awaitable<cairn::Status> Coordinator::Repair(std::vector<uint32_t> nodes,
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
  }
  target.req.per_dc.assign(set.dcs.size(), 0);
  target.req.total = static_cast<uint32_t>(nodes.size());
  std::vector<WriteTarget> targets;
  targets.push_back(std::move(target));
  auto results = co_await Replicate(std::move(targets), deadline, std::nullopt);
  co_return results[0];
}

// ------------------------------------------------------------------------------------------------

std::optional<Record> LiveRecord(const StoredValue& v, uint64_t now_ms) {
  if (!v.IsLive(now_ms)) return std::nullopt;
  return Record{v.value, v.version, v.expires_at_ms};
}

Coordinator::Coordinator(CoordinatorOptions options, cluster::NodeIdentity identity,
                         cluster::Schema* schema, const cluster::ClusterView* view,
                         replica::Replica* local, base::HybridClock* clock,
                         base::PhysicalClock* wall, asio::any_io_executor blocking,
                         std::vector<cluster::InternodeClient*> clients, HintStore* hints)
    : options_(options),
      identity_(identity),
      schema_(schema),
      view_(view),
      local_(local),
      clock_(clock),
      wall_(wall),
      blocking_(std::move(blocking)),
      clients_(std::move(clients)),
      hints_(hints) {}

cluster::InternodeClient* Coordinator::Client() const {
  const size_t i = base::ReactorIndex();
  return i < clients_.size() ? clients_[i] : nullptr;
}

std::string Coordinator::AddressOf(const cluster::Topology& topology, uint32_t node) const {
  const cluster::Member* m = topology.Find(node);
  return m == nullptr ? std::string() : m->address;
}

Result<std::shared_ptr<const cluster::Topology>> Coordinator::Topology() const {
  auto topology = view_->topology();
  if (!topology) return Status::Unavailable(view_->NotFormedReason());
  return topology;
}

Consistency Coordinator::Resolve(Consistency level, const cluster::KeyspaceDef& ks,
                                 bool write) const {
  if (level != Consistency::kDefault) return level;
  return write ? ks.write_consistency : ks.read_consistency;
}

Result<std::shared_ptr<const cluster::KeyspaceDef>> Coordinator::ResolveKeyspace(
    const std::string& name) const {
  const std::string_view wanted = name.empty() ? cluster::kDefaultKeyspace : std::string_view(name);
  auto def = schema_->Lookup(wanted);
  if (!def) return Status::InvalidArgument(fmt::format("keyspace '{}' does not exist", wanted));
  return def;
}

Status Coordinator::ValidateKey(std::string_view key) const {
  if (key.empty()) return Status::InvalidArgument("the key is empty");
  if (key.size() > kMaxKeyBytes) {
    return Status::TooLarge(
        fmt::format("the key is {} bytes; keys are at most {} bytes", key.size(), kMaxKeyBytes));
  }
  return Status::Ok();
}

Status Coordinator::ValidateValue(std::string_view value) const {
  if (value.size() > options_.max_value_bytes) {
    return Status::TooLarge(fmt::format("the value is {} bytes; this server takes at most {}",
                                        value.size(), options_.max_value_bytes));
  }
  return Status::Ok();
}

Status Coordinator::ValidateTtl(uint64_t ttl_ms) const {
  if (ttl_ms > options_.max_ttl_ms) {
    return Status::InvalidArgument(
        fmt::format("ttl of {} ms is over the maximum of {} ms", ttl_ms, options_.max_ttl_ms));
  }
  return Status::Ok();
}

Status Coordinator::ValidateReadLevel(Consistency level) const {
  if (level == Consistency::kAny) {
    return Status::InvalidArgument("ANY is a write consistency level; reads need at least ONE");
  }
  return Status::Ok();
}

Status Coordinator::ValidateWriteLevel(Consistency level) const {
  if (level == Consistency::kSerial || level == Consistency::kLocalSerial) {
    return Status::InvalidArgument(fmt::format(
        "{} applies to reads and compare-and-swap; plain writes take ONE .. ALL, LOCAL_*, "
        "EACH_QUORUM or ANY",
        ConsistencyName(level)));
  }
  return Status::Ok();
}

storage::DataKey Coordinator::KeyOf(const cluster::KeyspaceDef& ks, std::string key) const {
  const uint32_t partition = base::PartitionOfToken(base::Token(key), identity_.partition_bits);
  return storage::DataKey{partition, ks.id, std::move(key)};
}

uint64_t Coordinator::ExpiryFor(uint64_t ttl_ms) const {
  return ttl_ms == 0 ? 0 : wall_->NowMillis() + ttl_ms;
}

Result<Coordinator::ReadStart> Coordinator::StartRead(std::string_view key,
                                                      const RequestOptions& options) const {
  auto ks = ResolveKeyspace(options.keyspace);
  if (!ks.ok()) return ks.status();
  if (Status s = ValidateKey(key); !s.ok()) return s;
  if (Status s = ValidateReadLevel(options.consistency); !s.ok()) return s;
  auto topology = Topology();
  if (!topology.ok()) return topology.status();
  const Consistency level = Resolve(options.consistency, **ks, false);
  return ReadStart{std::move(*ks), std::move(*topology), level};
}

Result<std::optional<Record>> Coordinator::LiveRecordOf(
    Result<std::optional<StoredValue>> stored) const {
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) return std::optional<Record>();
  return LiveRecord(**stored, wall_->NowMillis());
}

asio::awaitable<Result<std::optional<Record>>> Coordinator::Get(std::string key,
                                                                RequestOptions options) {
  auto start = StartRead(key, options);
  if (!start.ok()) co_return start.status();
  const cluster::KeyspaceDef& ks = *start->keyspace;
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

std::optional<Result<std::optional<Record>>> Coordinator::TryGetLocal(
    std::string_view key, const RequestOptions& options) {
  auto start = StartRead(key, options);
  if (!start.ok()) return Result<std::optional<Record>>(start.status());
  const cluster::KeyspaceDef& ks = *start->keyspace;
  const Consistency level = start->level;
  if (IsSerial(level, ks)) return std::nullopt;
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
      return LiveRecordOf(local_->Read(data_key));
    }
  }
  auto plan = PlanRead(topology, ks, data_key.partition, level);
  if (!plan.ok() || plan->ask.size() != 1 || plan->ask[0] != identity_.node_id) {
    return std::nullopt;
  }
  CountRead(/*local=*/true);
  return LiveRecordOf(local_->Read(data_key));
}

asio::awaitable<Result<Version>> Coordinator::Put(std::string key, std::string value,
                                                  uint64_t ttl_ms, RequestOptions options) {
  PutItem item{std::move(key), std::move(value), ttl_ms};
  std::vector<PutItem> items;
  items.push_back(std::move(item));
  auto results = co_await BatchPut(std::move(items), std::move(options));
  if (!results.ok()) co_return results.status();
  co_return std::move((*results)[0]);
}

asio::awaitable<Result<Version>> Coordinator::Delete(std::string key, RequestOptions options) {
  auto ks = ResolveKeyspace(options.keyspace);
  if (!ks.ok()) co_return ks.status();
  if (Status s = ValidateKey(key); !s.ok()) co_return s;
  if (Status s = ValidateWriteLevel(options.consistency); !s.ok()) co_return s;
  auto topology = Topology();
  if (!topology.ok()) co_return topology.status();
  const Consistency level = Resolve(options.consistency, **ks, true);
  if ((*ks)->linearizable) {
    std::vector<std::pair<storage::DataKey, StoredValue>> writes;
    writes.emplace_back(KeyOf(**ks, std::move(key)), StoredValue{Version{}, true, 0, {}});
    auto results =
        co_await LinearizableWrites(**topology, **ks, std::move(writes), level, options.deadline);
    co_return std::move(results[0]);
  }
  WriteTarget target;
  target.op.key = KeyOf(**ks, std::move(key));
  target.set = ReplicaSet::Of(**topology, **ks, target.op.key.partition);
  auto req = Requirement::For(level, target.set, true);
  if (!req.ok()) co_return req.status();
  if (Status s = CheckLive(target.set, *req, *view_, level); !s.ok()) co_return s;
  target.req = *req;
  const Version version{clock_->Now(), identity_.node_id};
  target.op.value = StoredValue{version, true, 0, {}};
  std::vector<WriteTarget> targets;
  targets.push_back(std::move(target));
  auto results = co_await Replicate(std::move(targets), options.deadline, std::nullopt);
  if (!results[0].ok()) co_return results[0];
  co_return version;
}

asio::awaitable<Result<CasResult>> Coordinator::Cas(std::string key, CasCondition condition,
                                                    std::optional<std::string> new_value,
                                                    uint64_t ttl_ms, RequestOptions options,
                                                    Consistency commit) {
  auto ks = ResolveKeyspace(options.keyspace);
  if (!ks.ok()) co_return ks.status();
  if (Status s = ValidateKey(key); !s.ok()) co_return s;
  if (new_value) {
    if (Status s = ValidateValue(*new_value); !s.ok()) co_return s;
  }
  if (condition.kind == CasCondition::Kind::kIfValue) {
    if (Status s = ValidateValue(condition.value); !s.ok()) co_return s;
  }
  if (Status s = ValidateTtl(ttl_ms); !s.ok()) co_return s;
  Consistency serial = options.consistency;
  if (serial == Consistency::kDefault) serial = Consistency::kSerial;
  if (serial != Consistency::kSerial && serial != Consistency::kLocalSerial) {
    co_return Status::InvalidArgument(fmt::format(
        "compare-and-swap runs at SERIAL or LOCAL_SERIAL, not {}; the level its result is "
        "committed at is the separate commit consistency",
        ConsistencyName(serial)));
  }
  std::optional<Consistency> commit_level;
  if (commit == Consistency::kDefault) {
    if (!(*ks)->linearizable) {
      commit_level =
          serial == Consistency::kLocalSerial ? Consistency::kLocalQuorum : Consistency::kQuorum;
    }
  } else if (commit == Consistency::kSerial || commit == Consistency::kLocalSerial) {
    co_return Status::InvalidArgument(
        fmt::format("{} is not a commit level; use ONE .. ALL, LOCAL_*, EACH_QUORUM or ANY",
                    ConsistencyName(commit)));
  } else if (commit != Consistency::kAny) {
    commit_level = commit;
  }
  auto topology = Topology();
  if (!topology.ok()) co_return topology.status();
  paxos_counters_.cas.fetch_add(1, std::memory_order_relaxed);
  const uint64_t expiry = new_value && ttl_ms > 0 ? wall_->NowMillis() + ttl_ms : 0;
  StoredValue value{Version{}, !new_value.has_value(), expiry, new_value.value_or("")};
  storage::DataKey data_key = KeyOf(**ks, std::move(key));
  co_return co_await PaxosWrite(**topology, **ks, std::move(data_key), &condition, std::move(value),
                                serial, commit_level, options.deadline);
}

asio::awaitable<Result<ScanPage>> Coordinator::Scan(std::string prefix, std::string cursor,
                                                    uint32_t limit, RequestOptions options,
                                                    std::optional<uint32_t> partition) {
  auto ks = ResolveKeyspace(options.keyspace);
  if (!ks.ok()) co_return ks.status();
  if (Status s = ValidateReadLevel(options.consistency); !s.ok()) co_return s;
  if (prefix.size() > kMaxKeyBytes || cursor.size() > kMaxKeyBytes) {
    co_return Status::TooLarge(
        fmt::format("scan prefix and cursor are at most {} bytes", kMaxKeyBytes));
  }
  if (limit == 0) limit = options_.default_scan_limit;
  if (limit > options_.max_scan_limit) {
    co_return Status::InvalidArgument(
        fmt::format("scan limit {} is over the maximum of {}", limit, options_.max_scan_limit));
  }
  auto topology_result = Topology();
  if (!topology_result.ok()) co_return topology_result.status();
  const cluster::Topology& topology = **topology_result;
  const Consistency level = Resolve(options.consistency, **ks, false);

  if (partition && *partition >= identity_.partitions()) {
    co_return Status::InvalidArgument(fmt::format("partition {} is not below the cluster's {}",
                                                  *partition, identity_.partitions()));
  }
  std::vector<uint32_t> partitions;
  if (auto tag = base::PrefixPartitionKey(prefix)) {
    // Every matching key has this hash tag: one partition, one replica set.
    partitions.push_back(base::PartitionOfToken(base::Hash64(*tag), identity_.partition_bits));
    if (partition && partitions.front() != *partition) partitions.clear();
  } else if (partition) {
    partitions.push_back(*partition);
  } else {
    partitions.resize(identity_.partitions());
    for (uint32_t p = 0; p < identity_.partitions(); ++p) partitions[p] = p;
  }
  // For each partition, the level's count of live replicas (this node first, then its DC); one
  // request per node covers all of that node's partitions.
  std::map<uint32_t, std::vector<uint32_t>> by_node;
  for (uint32_t p : partitions) {
    const ReplicaSet set = ReplicaSet::Of(topology, **ks, p);
    auto req = Requirement::For(level, set, false);
    if (!req.ok()) co_return req.status();
    if (Status s = CheckLive(set, *req, *view_, level); !s.ok()) co_return s;
    auto [chosen, spare] = ChooseReplicas(set, *req);
    for (uint32_t node : chosen) by_node[node].push_back(p);
  }

  struct NodePage {
    Status status = Status::Timeout("no answer", 0);
    std::vector<std::pair<std::string, StoredValue>> items;
    bool exhausted = false;
    std::string last_key;
  };
  auto executor = co_await asio::this_coro::executor;
  auto pages = std::make_shared<std::map<uint32_t, NodePage>>();
  auto outstanding = std::make_shared<size_t>(by_node.size());
  auto wake = std::make_shared<asio::steady_timer>(executor);
  const size_t max_dead = size_t{limit} * 10 + 1000;
  for (auto& [node, parts] : by_node) {
    replica::Replica::ScanArgs args;
    args.keyspace = (*ks)->id;
    args.partitions = std::move(parts);
    args.prefix = prefix;
    args.after = cursor;
    args.limit = limit;
    args.max_dead = max_dead;
    args.max_bytes = options_.max_answer_bytes;
    asio::co_spawn(
        executor,
        [this, node = node, args = std::move(args), pages, outstanding, wake,
         topology = *topology_result,
         deadline = options.deadline]() mutable -> asio::awaitable<void> {
          NodePage page;
          if (node == identity_.node_id) {
            auto r = co_await local_->Scan(std::move(args));
            if (r.ok()) {
              page.status = Status::Ok();
              for (auto& item : r->items)
                page.items.emplace_back(std::move(item.key), std::move(item.value));
              page.exhausted = r->exhausted;
              page.last_key = std::move(r->last_key);
            } else {
              page.status = r.status();
            }
          } else if (cluster::InternodeClient* client = Client()) {
            internode::Request request;
            auto* scan = request.mutable_scan();
            scan->set_keyspace(args.keyspace);
            for (uint32_t p : args.partitions) scan->add_partitions(p);
            scan->set_prefix(args.prefix);
            scan->set_after(args.after);
            scan->set_limit(static_cast<uint32_t>(args.limit));
            scan->set_max_dead(static_cast<uint32_t>(args.max_dead));
            auto r = co_await client->Call(AddressOf(*topology, node), request, deadline);
            if (r.ok()) {
              page.status = Status::Ok();
              for (internode::Mutation& m : *r->mutable_scan()->mutable_items()) {
                std::string key = m.key();
                page.items.emplace_back(std::move(key), replica::FromMutation(std::move(m)).value);
              }
              page.exhausted = r->scan().exhausted();
              page.last_key = r->scan().last_key();
            } else {
              page.status = r.status();
            }
          } else {
            page.status = Status::Unavailable("no route to a replica");
          }
          (*pages)[node] = std::move(page);
          if (--*outstanding == 0) wake->cancel();
        },
        asio::detached);
  }
  if (*outstanding > 0) {
    wake->expires_at(options.deadline);
    co_await wake->async_wait(kNoThrow);
  }
  if (*outstanding > 0) co_return Status::Timeout("the scan did not finish before the deadline", 0);

  // Merge: keys up to the smallest point where some node stopped are complete; for each, the
  // newest version among the replicas asked wins.
  std::optional<std::string> bound;
  std::map<std::string, StoredValue> merged;
  for (auto& [node, page] : *pages) {
    if (!page.status.ok()) co_return page.status;
    if (!page.exhausted && (!bound || page.last_key < *bound)) bound = page.last_key;
  }
  for (auto& [node, page] : *pages) {
    for (auto& [key, value] : page.items) {
      if (bound && key > *bound) continue;
      auto it = merged.find(key);
      if (it == merged.end()) {
        merged.emplace(std::move(key), std::move(value));
      } else if (it->second.version < value.version) {
        it->second = std::move(value);
      }
    }
  }
  const uint64_t now = wall_->NowMillis();
  ScanPage page;
  for (auto& [key, value] : merged) {
    if (page.entries.size() == limit) break;
    if (!value.IsLive(now)) continue;
    page.entries.emplace_back(key,
                              Record{std::move(value.value), value.version, value.expires_at_ms});
  }
  if (page.entries.size() == limit) {
    page.cursor = page.entries.back().first;
  } else if (bound) {
    page.cursor = *bound;
  }
  co_return page;
}

asio::awaitable<Result<std::vector<Result<std::optional<Record>>>>> Coordinator::BatchGet(
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
  // key's replicas are asked in parallel.
  for (size_t i = 0; i < keys.size(); ++i) {
    if (bytes > options_.max_answer_bytes) {
      co_return Status::TooLarge(
          fmt::format("the values read are over {} bytes; read fewer keys per batch",
                      options_.max_answer_bytes));
    }
    if (Status s = ValidateKey(keys[i]); !s.ok()) {
      out[i] = std::move(s);
      continue;
    }
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

asio::awaitable<Result<std::vector<Result<Version>>>> Coordinator::BatchPut(
    std::vector<PutItem> items, RequestOptions options) {
  auto ks = ResolveKeyspace(options.keyspace);
  if (!ks.ok()) co_return ks.status();
  if (Status s = ValidateWriteLevel(options.consistency); !s.ok()) co_return s;
  if (items.size() > options_.max_batch_items) {
    co_return Status::TooLarge(fmt::format("a batch holds at most {} items, not {}",
                                           options_.max_batch_items, items.size()));
  }
  for (size_t i = 0; i < items.size(); ++i) {
    Status s = ValidateKey(items[i].key);
    if (s.ok()) s = ValidateValue(items[i].value);
    if (s.ok()) s = ValidateTtl(items[i].ttl_ms);
    if (!s.ok()) {
      co_return Status(s.code(),
                       items.size() == 1
                           ? s.message()
                           : fmt::format("batch item {}: {}; nothing was written", i, s.message()));
    }
  }
  auto topology = Topology();
  if (!topology.ok()) co_return topology.status();
  const Consistency level = Resolve(options.consistency, **ks, true);
  if ((*ks)->linearizable) {
    std::vector<std::pair<storage::DataKey, StoredValue>> writes;
    for (PutItem& item : items) {
      StoredValue value{Version{}, false, ExpiryFor(item.ttl_ms), std::move(item.value)};
      writes.emplace_back(KeyOf(**ks, std::move(item.key)), std::move(value));
    }
    co_return co_await LinearizableWrites(**topology, **ks, std::move(writes), level,
                                          options.deadline);
  }
  std::vector<Result<Version>> out(items.size());
  std::vector<WriteTarget> targets;
  std::vector<size_t> index_of_target;
  for (size_t i = 0; i < items.size(); ++i) {
    WriteTarget target;
    target.op.key = KeyOf(**ks, std::move(items[i].key));
    target.set = ReplicaSet::Of(**topology, **ks, target.op.key.partition);
    auto req = Requirement::For(level, target.set, true);
    if (!req.ok()) {
      out[i] = req.status();
      continue;
    }
    if (Status s = CheckLive(target.set, *req, *view_, level); !s.ok()) {
      out[i] = std::move(s);
      continue;
    }
    target.req = *req;
    const Version version{clock_->Now(), identity_.node_id};
    target.op.value =
        StoredValue{version, false, ExpiryFor(items[i].ttl_ms), std::move(items[i].value)};
    out[i] = version;
    targets.push_back(std::move(target));
    index_of_target.push_back(i);
  }
  if (!targets.empty()) {
    auto results = co_await Replicate(std::move(targets), options.deadline, std::nullopt);
    for (size_t t = 0; t < results.size(); ++t) {
      if (!results[t].ok()) out[index_of_target[t]] = std::move(results[t]);
    }
  }
  co_return out;
}

asio::awaitable<Result<cluster::KeyspaceDef>> Coordinator::CreateKeyspace(cluster::KeyspaceDef spec,
                                                                          bool if_not_exists) {
  co_return co_await base::AwaitCallback<Result<cluster::KeyspaceDef>>(
      [&](auto done) {
        asio::post(blocking_, [this, spec = std::move(spec), if_not_exists, done] {
          done(schema_->Create(spec, if_not_exists, wall_->NowMillis(),
                               Version{clock_->Now(), identity_.node_id}));
        });
      },
      Status::Timeout("keyspace creation did not finish in time", 0));
}

Result<std::vector<cluster::KeyspaceDef>> Coordinator::ListKeyspaces() const {
  return schema_->List();
}

bool Coordinator::IsLinearizable(const std::string& name) const {
  auto ks = ResolveKeyspace(name);
  return ks.ok() && (*ks)->linearizable;
}

Result<cluster::KeyspaceDef> Coordinator::DescribeKeyspace(std::string_view name) const {
  auto def = schema_->Find(name);
  if (!def) return Status::NotFound(fmt::format("keyspace '{}' does not exist", name));
  return *def;
}

asio::awaitable<Status> Coordinator::DropKeyspace(std::string name, bool if_exists) {
  co_return co_await base::AwaitCallback<Status>(
      [&](auto done) {
        asio::post(blocking_, [this, name = std::move(name), if_exists, done] {
          done(schema_->Drop(name, if_exists, Version{clock_->Now(), identity_.node_id}));
        });
      },
      Status::Timeout("keyspace drop did not finish in time", 0));
}

asio::awaitable<Result<cluster::KeyspaceDef>> Coordinator::AlterKeyspace(
    std::string name, cluster::KeyspaceChange change) {
  co_return co_await base::AwaitCallback<Result<cluster::KeyspaceDef>>(
      [&](auto done) {
        asio::post(blocking_, [this, name = std::move(name), change, done] {
          done(schema_->Alter(name, change, Version{clock_->Now(), identity_.node_id}));
        });
      },
      Status::Timeout("keyspace change did not finish in time", 0));
}

ClusterInfo Coordinator::Cluster() const {
  ClusterInfo info;
  info.partitions = identity_.partitions();
  auto topology = view_->topology();
  info.formed = topology != nullptr;
  if (info.formed) {
    info.map_fingerprint = topology->map.Fingerprint();
  } else {
    info.note = view_->NotFormedReason();
  }
  return info;
}

std::vector<std::pair<std::string, uint64_t>> Coordinator::Metrics() const {
  const PaxosCounters& c = paxos_counters_;
  auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  auto sum = [](const base::metrics::ShardedCounter& a) { return a.value(); };
  return {{"paxos.cas", get(c.cas)},
          {"paxos.serial_reads", get(c.serial_reads)},
          {"paxos.linearizable_writes", get(c.plain_writes)},
          {"paxos.prepare_round_trips", get(c.prepares)},
          {"paxos.propose_round_trips", get(c.proposes)},
          {"paxos.commit_round_trips", get(c.commits)},
          {"paxos.contended_retries", get(c.contended)},
          {"paxos.completed_others", get(c.unfinished)},
          {"paxos.timeouts", get(c.timeouts)},
          {"paxos.leased_proposals", get(c.leased)},
          {"paxos.leases_lost", get(c.lease_lost)},
          {"replica.writes", sum(replica_counters_.writes)},
          {"replica.write_failures", sum(replica_counters_.write_failures)},
          {"replica.reads", sum(replica_counters_.reads)},
          {"replica.local_reads", sum(replica_counters_.local_reads)},
          {"replica.remote_reads", sum(replica_counters_.remote_reads)},
          {"replica.read_repairs", sum(replica_counters_.read_repairs)},
          {"replica.speculative_reads", sum(replica_counters_.speculative)},
          {"hints.stored", sum(replica_counters_.hints_stored)}};
}

NodeInfo Coordinator::Info() const { return NodeInfo{identity_.node_id, CAIRN_VERSION}; }

Result<std::vector<NodeReport>> Coordinator::ClusterStatus() const {
  auto topology = Topology();
  std::vector<NodeReport> out;
  for (const cluster::NodeStatus& n : view_->Nodes()) {
    NodeReport report;
    report.status = n;
    if (topology.ok() && n.node_id != 0) {
      // The partitions it stores: for the largest replication factor of any keyspace in its DC.
      uint32_t rf = 0;
      for (const auto& ks : schema_->List()) rf = std::max(rf, ks.ReplicationIn(n.dc));
      report.partitions = (*topology)->map.ReplicaCount(n.node_id, rf);
    }
    if (n.self && hints_ != nullptr) report.status.hints_pending = hints_->TotalPending();
    out.push_back(std::move(report));
  }
  return out;
}

}  // namespace cairn::coordinator
