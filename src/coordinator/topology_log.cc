// The topology log: each epoch of the cluster's topology is decided by single-decree Paxos on a
// key of its own ("topology/<epoch>" in the internal system keyspace 0), among the members the
// previous epoch names as its group (ARCHITECTURE.md section 6). A slot is decided once, by the
// group of the epoch before it, so changing the group needs no reconfiguration protocol: the
// group of epoch E decides E+1 and says who decides E+2. Decided states spread by direct pushes
// and by gossip; a state that circulates is always a decided one.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include "base/async.h"
#include "base/hash.h"
#include "cluster/topology_state.h"
#include "coordinator/cluster_coordinator.h"
#include "coordinator/replica_set.h"

namespace cairn::coordinator {
namespace {

using internode::TopologyState;

// Keyspace id 0 is never a user keyspace (ids start above kDefaultKeyspaceId = 1).
constexpr uint32_t kSystemKeyspaceId = 0;

storage::DataKey SlotKey(uint64_t epoch, uint32_t partition_bits) {
  std::string key = fmt::format("topology/{:020}", epoch);
  const uint32_t partition = base::PartitionOfToken(base::Token(key), partition_bits);
  return storage::DataKey{partition, kSystemKeyspaceId, std::move(key)};
}

}  // namespace

asio::awaitable<Result<std::shared_ptr<const TopologyState>>> ClusterCoordinator::ChangeTopology(
    TopologyChange change, base::Deadline deadline) {
  if (store_ == nullptr) co_return Status::Unavailable("this node keeps no topology log");
  while (true) {
    std::shared_ptr<const TopologyState> current = store_->state();
    auto topology = view_->topology();
    if (!current || !topology) co_return Status::Unavailable(view_->NotFormedReason());
    auto next = change(*current);
    if (!next.ok()) co_return next.status();
    const uint64_t slot = current->epoch() + 1;

    // The slot's replicas are the current epoch's group, whatever the partition map says.
    ReplicaSet set;
    set.dcs = {"group"};
    set.local_dc = 0;
    for (uint32_t node : current->group()) {
      set.nodes.push_back(node);
      set.dc_of.push_back(0);
      set.groups.push_back(1);
    }
    const storage::DataKey key = SlotKey(slot, identity_.partition_bits);
    // Reads the slot through Paxos: a swap whose condition no slot meets (a slot's version is
    // its ballot, never zero; an empty slot fails it too) answers with what the slot holds.
    auto read_slot = [&]() -> asio::awaitable<Result<CasResult>> {
      CasCondition never;
      never.kind = CasCondition::Kind::kIfVersion;
      storage::StoredValue nothing;  // named, not a temporary: the g++ 12 note in coordinator.h
      co_return co_await PaxosWrite(*topology, set, key, &never, std::move(nothing),
                                    Consistency::kSerial, Consistency::kQuorum, deadline);
    };
    Result<CasResult> r = Status::Internal("unset");
    std::string proposed;
    if (!next->has_value()) {
      // "Nothing to change" was judged on this node's copy of the log, which may lag behind it
      // (an IF NOT EXISTS must see a drop that finished elsewhere): it stands only if the next
      // slot is still empty.
      r = co_await read_slot();
    } else {
      (*next)->set_epoch(slot);
      proposed = (*next)->SerializeAsString();
      CasCondition absent;
      absent.kind = CasCondition::Kind::kIfNotExists;
      storage::StoredValue value{Version{}, false, 0, proposed};
      r = co_await PaxosWrite(*topology, set, key, &absent, std::move(value), Consistency::kSerial,
                              Consistency::kQuorum, deadline);
      if (!r.ok() && r.status().code() == Code::kTimeout && base::Clock::now() < deadline) {
        // The generic answer for a swap that lost a race after a minority accepted it ("may
        // still be applied") has a definite one here: a slot is written once, so whatever it
        // holds now was chosen, and the proposal is ours exactly when it is what we proposed.
        auto holds = co_await read_slot();
        if (holds.ok() && holds->current) {
          r = CasResult{};
          r->applied = holds->current->value == proposed;
          r->current = holds->current;
        }
      }
    }
    if (!r.ok()) {
      co_return Status(r.status().code(),
                       fmt::format("topology epoch {} not decided: {}", slot, r.status().message()),
                       r.status().acks());
    }
    if (!next->has_value() && !r->current) co_return current;  // this node is up to date
    TopologyState decided;
    if (r->applied) {
      decided = **next;
    } else if (!r->current || !decided.ParseFromString(r->current->value) ||
               decided.epoch() != slot) {
      co_return Status::Internal(
          fmt::format("topology slot {} holds something that is not its epoch", slot));
    }
    Result<bool> adopted = co_await base::AwaitCallback<Result<bool>>(
        [&](auto done) {
          asio::post(blocking_, [this, &decided, done] { done(store_->Adopt(decided)); });
        },
        Status::Timeout("adopting the topology took too long", 0));
    if (!adopted.ok()) co_return adopted.status();
    // Tell everyone now rather than at their next gossip; nobody waits for the answers.
    auto executor = co_await asio::this_coro::executor;
    asio::co_spawn(
        executor,
        [this, decided]() -> asio::awaitable<void> {
          co_await Broadcast(decided, 0, {}, base::Clock::now() + std::chrono::seconds(2));
        },
        asio::detached);
    if (r->applied) co_return std::make_shared<const TopologyState>(std::move(decided));
    spdlog::info("topology epoch {} was {} ({}); trying again on it", decided.epoch(),
                 next->has_value() ? "taken by another change" : "decided without this node",
                 cluster::Describe(decided));
    if (base::Clock::now() >= deadline) {
      co_return Status::Timeout("the topology change did not get an epoch before the deadline", 0);
    }
  }
}

asio::awaitable<Status> ClusterCoordinator::Broadcast(const TopologyState& state, uint64_t fence,
                                                      std::vector<uint32_t> wait_for,
                                                      base::Deadline deadline) {
  internode::Request request;
  *request.mutable_topology()->mutable_state() = state;
  request.mutable_topology()->set_fence(fence);
  struct Gather {
    explicit Gather(asio::any_io_executor ex) : wake(std::move(ex)) {}
    std::set<uint32_t> missing;
    size_t left = 0;
    asio::steady_timer wake;
  };
  auto executor = co_await asio::this_coro::executor;
  auto gather = std::make_shared<Gather>(executor);
  gather->missing.insert(wait_for.begin(), wait_for.end());
  if (gather->missing.erase(identity_.node_id) > 0 && store_ != nullptr) {
    // This node too, on the blocking pool (the fence is persisted).
    Result<internode::TopologyResponse> mine =
        co_await base::AwaitCallback<Result<internode::TopologyResponse>>(
            [&](auto done) {
              asio::post(blocking_, [this, &request, done] {
                done(store_->HandleTopology(request.topology()));
              });
            },
            Status::Timeout("the barrier took too long here", 0));
    if (!mine.ok()) co_return mine.status();
  }
  cluster::InternodeClient* client = Client();
  for (const internode::TopologyMember& m : state.members()) {
    const uint32_t node = m.info().node_id();
    if (node == identity_.node_id || m.state() == internode::LEFT || client == nullptr) continue;
    ++gather->left;
    asio::co_spawn(
        executor,
        [client, gather, request, node, address = m.info().address(),
         deadline]() -> asio::awaitable<void> {
          auto r = co_await client->Call(address, request, deadline);
          if (r.ok()) {
            gather->missing.erase(node);
          } else {
            spdlog::debug("topology to node {} at {}: {}", node, address, r.status().ToString());
          }
          if (--gather->left == 0 || gather->missing.empty()) gather->wake.cancel();
        },
        asio::detached);
  }
  if (!gather->missing.empty() && gather->left > 0) {
    gather->wake.expires_at(deadline);
    co_await gather->wake.async_wait(base::kNoThrow);
  }
  if (gather->missing.empty()) co_return Status::Ok();
  co_return Status::Unavailable(fmt::format("node{} {} did not acknowledge topology epoch {}",
                                            gather->missing.size() == 1 ? "" : "s",
                                            fmt::join(gather->missing, ", "), state.epoch()));
}

}  // namespace cairn::coordinator
