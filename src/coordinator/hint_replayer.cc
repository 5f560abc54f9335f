#include "coordinator/hint_replayer.h"

#include <algorithm>
#include <map>
#include <unordered_map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "cluster/topology_state.h"
#include "coordinator/replica_set.h"

namespace cairn::coordinator {

namespace {
constexpr size_t kBatch = 256;
}  // namespace

HintReplayer::HintReplayer(HintStore* hints, const cluster::ClusterView* view,
                           cluster::InternodeClient* client, asio::any_io_executor executor,
                           std::chrono::milliseconds interval)
    : hints_(hints),
      view_(view),
      client_(client),
      executor_(executor),
      interval_(interval),
      timer_(executor) {}

asio::awaitable<void> HintReplayer::Run() {
  while (!stopping_) {
    if (auto topology = view_->topology()) {
      for (const auto& [target, count] : hints_->PendingByTarget()) {
        // A member that is DOWN gets its hints when it is back; one that has left the cluster
        // never will: its hints follow its ranges to their replicas now.
        const cluster::Member* member = topology->Find(target);
        if (member != nullptr && !view_->IsUp(target)) continue;
        co_await Deliver(*topology, target);
        if (stopping_) break;
      }
    }
    timer_.expires_after(interval_);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<void> HintReplayer::Deliver(const cluster::Topology& topology, uint32_t target) {
  uint64_t delivered = 0, followed = 0;
  const bool member = topology.Find(target) != nullptr;
  std::unordered_map<uint32_t, cluster::KeyspaceDef> keyspaces;  // live ones, by id
  if (topology.state) {
    for (cluster::KeyspaceDef& ks : cluster::KeyspacesOf(*topology.state)) {
      if (!ks.dropped) keyspaces.emplace(ks.id, std::move(ks));
    }
  }
  // The nodes that hold (partition, keyspace) now: the replicas a write to it goes to (both
  // maps during a change's write-both stages). None for an unknown or dropped keyspace.
  auto holders = [&](uint32_t partition, uint32_t keyspace) {
    auto ks = keyspaces.find(keyspace);
    if (ks == keyspaces.end()) return std::vector<uint32_t>();
    const auto set = ClusterCoordinator::ReplicaSet::ForWrite(topology, ks->second, partition);
    return std::vector<uint32_t>(set.nodes.begin(), set.nodes.end());
  };
  while (!stopping_) {
    auto batch = hints_->Next(target, kBatch);
    if (!batch.ok()) {
      spdlog::error("reading hints for node {}: {}", target, batch.status().ToString());
      break;
    }
    if (batch->empty()) break;
    // Each hint goes to its target while that still holds the hint's range; else to every
    // node that holds the range now (a hint for a dropped keyspace goes nowhere).
    std::map<uint32_t, internode::Request> requests;
    std::vector<std::string> keys;
    for (auto& hint : *batch) {
      const internode::Mutation& m = hint.mutation;
      std::vector<uint32_t> to = holders(m.partition(), m.keyspace());
      if (member && (to.empty() || std::find(to.begin(), to.end(), target) != to.end())) {
        to = {target};
      } else {
        ++followed;
      }
      for (uint32_t node : to) *requests[node].mutable_mutate()->add_mutations() = m;
      keys.push_back(std::move(hint.key));
    }
    bool sent_all = true;
    for (auto& [node, request] : requests) {
      const cluster::Member* to = topology.Find(node);
      if (to == nullptr || (node != target && !view_->IsUp(node))) {
        sent_all = false;
        break;
      }
      auto sent = co_await client_->Call(to->address, request,
                                         base::Clock::now() + std::chrono::seconds(10));
      if (!sent.ok()) {
        spdlog::debug("replaying hints of node {} to node {}: {}", target, node,
                      sent.status().ToString());
        sent_all = false;
        break;
      }
    }
    if (!sent_all) break;  // tried again next round (a replica that took some keeps them once)
    const size_t n = keys.size();
    Status removed = co_await hints_->Remove(target, std::move(keys));
    if (!removed.ok()) {
      spdlog::error("deleting delivered hints for node {}: {}", target, removed.ToString());
      break;
    }
    hints_->CountReplayed(n);
    delivered += n;
  }
  if (delivered > 0) {
    spdlog::info("replayed {} hints of node {}{}", delivered, target,
                 followed > 0
                     ? fmt::format(", {} of them to the nodes that now hold their ranges", followed)
                     : std::string());
  }
}

void HintReplayer::Stop() {
  asio::post(executor_, [this] {
    stopping_ = true;
    timer_.cancel();
  });
}

}  // namespace cairn::coordinator
