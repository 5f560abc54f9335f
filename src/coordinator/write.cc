// Plain writes: one replicated write round per request (a batch groups each node's keys in one
// message), acknowledgements counted per consistency level, hints for the replicas that miss it.
#include <algorithm>
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

asio::awaitable<std::vector<cairn::Status>> ClusterCoordinator::Replicate(
    std::vector<WriteTarget> targets, base::Deadline deadline, std::optional<uint32_t> acked_by,
    const RequestOptions* report) {
  auto executor = co_await asio::this_coro::executor;
  auto round = std::make_shared<WriteRound>(executor, std::move(targets));
  // Group the ops by replica: one message per node carries all of its keys. A round touches a
  // few nodes: a flat list, searched, costs less than a map's node per replica.
  boost::container::small_vector<std::pair<uint32_t, std::vector<size_t>>, 8> by_node;
  for (size_t i = 0; i < round->targets().size(); ++i) {
    for (uint32_t node : round->targets()[i].set.nodes) {
      if (acked_by && node == *acked_by) {
        round->Ack(i, node);
        continue;
      }
      auto it = std::find_if(by_node.begin(), by_node.end(),
                             [node](const auto& entry) { return entry.first == node; });
      if (it == by_node.end()) {
        by_node.emplace_back(node, std::vector<size_t>());
        it = by_node.end() - 1;
      }
      it->second.push_back(i);
    }
  }
  if (base::failpoint::Any()) co_await base::failpoint::Pause("coordinator.write.before_send");
  for (auto& [node, items] : by_node) {
    round->StartNode();
    if (node == identity_.node_id) {
      std::vector<WriteOp> ops;
      ops.reserve(items.size());
      for (size_t i : items) ops.push_back(round->targets()[i].op);
      ApplyLocally(round, std::move(items), std::move(ops));
      continue;
    }
    // SendToNode turns every failure into a hint or a missing ack: nothing escapes it.
    asio::co_spawn(executor, SendToNode(round, node, std::move(items), deadline), asio::detached);
  }
  co_await round->Wait(deadline);
  std::vector<cairn::Status> out;
  out.reserve(round->targets().size());
  for (size_t i = 0; i < round->targets().size(); ++i) out.push_back(round->ResultOf(i));
  // The items replicas refused for their fence go again, planned with the newer topology, with
  // the same versions (a replica that took one already keeps it once).
  std::vector<size_t> again;
  for (size_t i = 0; i < round->targets().size(); ++i) {
    if (round->refused(i) && round->targets()[i].ks) again.push_back(i);
  }
  // Client-side caching, once the outcome is known (after the acknowledgements: a tracking node
  // that announced itself before this point is told). The keys are the round's own: nothing is
  // copied while nobody tracks.
  auto report_changed = [&]() {
    std::vector<std::string> keys;
    for (size_t i = 0; i < out.size(); ++i) {
      if (MayHaveChanged(out[i])) keys.push_back(round->targets()[i].op.key.key);
    }
    ReportChanged(executor, *report, keys);
  };
  if (again.empty()) {
    if (report != nullptr && invalidations_.active()) report_changed();
    co_return out;
  }
  auto newer = co_await NewerTopology(round->targets()[again.front()].set.epoch, deadline);
  if (!newer) co_return out;
  std::vector<WriteTarget> retry;
  std::vector<size_t> index_of;
  for (size_t i : again) {
    WriteTarget target = round->targets()[i];
    target.set = ReplicaSet::ForWrite(*newer, *target.ks, target.op.key.partition);
    auto req = Requirement::For(target.level, target.set, true);
    if (!req.ok()) {
      out[i] = req.status();
      continue;
    }
    if (Status s = CheckLive(target.set, *req, *view_, target.level); !s.ok()) {
      out[i] = std::move(s);
      continue;
    }
    target.req = *req;
    retry.push_back(std::move(target));
    index_of.push_back(i);
  }
  replica_counters_.replans.Add(retry.size());
  auto results = co_await Replicate(std::move(retry), deadline, std::nullopt);
  for (size_t k = 0; k < results.size(); ++k) out[index_of[k]] = std::move(results[k]);
  if (report != nullptr && invalidations_.active()) report_changed();
  co_return out;
}

void ClusterCoordinator::ApplyLocally(std::shared_ptr<WriteRound> round, std::vector<size_t> items,
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

asio::awaitable<void> ClusterCoordinator::SendToNode(std::shared_ptr<WriteRound> round,
                                                     uint32_t node, std::vector<size_t> items,
                                                     base::Deadline deadline) {
  struct Done {
    WriteRound& r;
    ~Done() { r.NodeDone(); }
  } done{*round};
  replica_counters_.writes.Add(items.size());
  auto topology = view_->topology();
  cluster::InternodeClient* client = Client();
  // The ops go from the round straight into the request (one copy of each value), and come out
  // of it again as hints if the node misses them.
  internode::Request request;
  auto* mutations = request.mutable_mutate()->mutable_mutations();
  mutations->Reserve(static_cast<int>(items.size()));
  for (size_t i : items) {
    const WriteOp& op = round->targets()[i].op;
    replica::ToMutation(op.key, op.value, mutations->Add());
  }
  if (client != nullptr && topology && view_->IsUp(node)) {
    // Every op of a round is planned with one topology.
    request.set_topology_epoch(round->targets()[items.front()].set.epoch);
    auto response = co_await client->Call(AddressOf(*topology, node), request, deadline);
    if (!response.ok() && response.status().code() == Code::kFailedPrecondition) {
      // Fenced: planned with a topology this replica no longer takes writes from. No hint (the
      // write is planned again, and goes where the new topology says).
      for (size_t i : items) round->Refused(i);
      co_return;
    }
    if (response.ok()) {
      for (size_t i : items) round->Ack(i, node);
      co_return;
    }
    spdlog::debug("write to node {} failed: {}", node, response.status().ToString());
  }
  // Down, unreachable or too slow: keep a hint and replay it when the node is back.
  replica_counters_.write_failures.Add(items.size());
  if (hints_ != nullptr) {
    std::vector<internode::Mutation> hints;
    hints.reserve(static_cast<size_t>(mutations->size()));
    for (internode::Mutation& m : *mutations) hints.push_back(std::move(m));
    const size_t hinted = hints.size();
    Status stored = co_await hints_->Add(node, std::move(hints));
    if (stored.ok()) {
      replica_counters_.hints_stored.Add(hinted);
      for (size_t i : items) round->Hinted(i);
    } else {
      spdlog::error("cannot store hints for node {}: {}", node, stored.ToString());
    }
  }
}
asio::awaitable<Result<Version>> ClusterCoordinator::Put(std::string key, std::string value,
                                                         uint64_t ttl_ms, RequestOptions options) {
  PutItem item{std::move(key), std::move(value), ttl_ms};
  std::vector<PutItem> items;
  items.push_back(std::move(item));
  auto results = co_await BatchPut(std::move(items), std::move(options));
  if (!results.ok()) co_return results.status();
  co_return std::move((*results)[0]);
}

asio::awaitable<Result<Version>> ClusterCoordinator::Delete(std::string key,
                                                            RequestOptions options) {
  auto ks = ResolveKeyspace(options.keyspace);
  if (!ks.ok()) co_return ks.status();
  if (Status s = ValidateKey(key); !s.ok()) co_return s;
  if (Status s = ValidateWriteLevel(options.consistency); !s.ok()) co_return s;
  auto topology = Topology();
  if (!topology.ok()) co_return topology.status();
  if (SplitOf(**topology, **ks, key, options) != nullptr) co_return SplitKeyRefused(key);
  hot_keys_.Add((*ks)->id, key, /*write=*/true);
  const Consistency level = Resolve(options.consistency, **ks, true);
  if ((*ks)->linearizable) {
    std::vector<std::pair<storage::DataKey, StoredValue>> writes;
    writes.emplace_back(KeyOf(**ks, std::move(key)), StoredValue{Version{}, true, 0, {}});
    auto results = co_await LinearizableWrites(**topology, **ks, std::move(writes), level,
                                               options.deadline, options);
    co_return std::move(results[0]);
  }
  WriteTarget target;
  target.op.key = KeyOf(**ks, std::move(key));
  target.set = ReplicaSet::ForWrite(**topology, **ks, target.op.key.partition);
  target.ks = *ks;
  target.level = level;
  auto req = Requirement::For(level, target.set, true);
  if (!req.ok()) co_return req.status();
  if (Status s = CheckLive(target.set, *req, *view_, level); !s.ok()) co_return s;
  target.req = *req;
  const Version version{clock_->Now(), identity_.node_id};
  target.op.value = StoredValue{version, true, 0, {}};
  std::vector<WriteTarget> targets;
  targets.push_back(std::move(target));
  auto results = co_await Replicate(std::move(targets), options.deadline, std::nullopt, &options);
  if (!results[0].ok()) co_return results[0];
  co_return version;
}

asio::awaitable<Result<std::vector<Result<Version>>>> ClusterCoordinator::BatchPut(
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
  if ((*topology)->splits) {
    for (size_t i = 0; i < items.size(); ++i) {
      if (SplitOf(**topology, **ks, items[i].key, options) == nullptr) continue;
      Status s = SplitKeyRefused(items[i].key);
      co_return Status(s.code(),
                       items.size() == 1
                           ? s.message()
                           : fmt::format("batch item {}: {}; nothing was written", i, s.message()));
    }
  }
  for (const PutItem& item : items) hot_keys_.Add((*ks)->id, item.key, /*write=*/true);
  const Consistency level = Resolve(options.consistency, **ks, true);
  if ((*ks)->linearizable) {
    std::vector<std::pair<storage::DataKey, StoredValue>> writes;
    for (PutItem& item : items) {
      StoredValue value{Version{}, false, ExpiryFor(item.ttl_ms), std::move(item.value)};
      writes.emplace_back(KeyOf(**ks, std::move(item.key)), std::move(value));
    }
    co_return co_await LinearizableWrites(**topology, **ks, std::move(writes), level,
                                          options.deadline, options);
  }
  std::vector<Result<Version>> out(items.size());
  std::vector<WriteTarget> targets;
  std::vector<size_t> index_of_target;
  // Each target is made in place: a replica set and a requirement hold their nodes inline, so
  // moving one is a copy.
  targets.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    WriteTarget& target = targets.emplace_back();
    target.op.key = KeyOf(**ks, std::move(items[i].key));
    target.set = ReplicaSet::ForWrite(**topology, **ks, target.op.key.partition);
    target.ks = *ks;
    target.level = level;
    Status planned = Requirement::Fill(level, target.set, true, &target.req);
    if (planned.ok()) planned = CheckLive(target.set, target.req, *view_, level);
    if (!planned.ok()) {
      out[i] = std::move(planned);
      targets.pop_back();
      continue;
    }
    const Version version{clock_->Now(), identity_.node_id};
    target.op.value =
        StoredValue{version, false, ExpiryFor(items[i].ttl_ms), std::move(items[i].value)};
    out[i] = version;
    index_of_target.push_back(i);
  }
  if (!targets.empty()) {
    auto results = co_await Replicate(std::move(targets), options.deadline, std::nullopt, &options);
    for (size_t t = 0; t < results.size(); ++t) {
      if (!results[t].ok()) out[index_of_target[t]] = std::move(results[t]);
    }
  }
  co_return out;
}
}  // namespace cairn::coordinator
