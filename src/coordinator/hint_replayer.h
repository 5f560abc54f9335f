// Replays stored hints to their replicas once those are UP again.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "cluster/internode_client.h"
#include "cluster/topology.h"
#include "coordinator/hint_store.h"

namespace cairn::coordinator {

// Runs on one reactor (with that reactor's internode client).
class HintReplayer {
 public:
  HintReplayer(HintStore* hints, const cluster::ClusterView* view, cluster::InternodeClient* client,
               asio::any_io_executor executor, std::chrono::milliseconds interval);

  // Every interval, sends the hints of each UP replica in batches, deleting what was delivered,
  // until Stop().
  asio::awaitable<void> Run();
  void Stop();

 private:
  // Delivers `target`'s hints (to the nodes that hold their ranges now, for the ranges it no
  // longer holds); stops at the first failure (tried again next round).
  asio::awaitable<void> Deliver(const cluster::Topology& topology, uint32_t target);

  HintStore* const hints_;
  const cluster::ClusterView* const view_;
  cluster::InternodeClient* const client_;
  const asio::any_io_executor executor_;
  const std::chrono::milliseconds interval_;
  asio::steady_timer timer_;
  bool stopping_ = false;  // on executor_
};

}  // namespace cairn::coordinator
