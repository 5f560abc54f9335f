#include "coordinator/hint_replayer.h"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

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
        const cluster::Member* member = topology->Find(target);
        if (member == nullptr || !view_->IsUp(target)) continue;
        co_await Deliver(target, member->address);
        if (stopping_) break;
      }
    }
    timer_.expires_after(interval_);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<void> HintReplayer::Deliver(uint32_t target, const std::string& address) {
  uint64_t delivered = 0;
  while (!stopping_) {
    auto batch = hints_->Next(target, kBatch);
    if (!batch.ok()) {
      spdlog::error("reading hints for node {}: {}", target, batch.status().ToString());
      break;
    }
    if (batch->empty()) break;
    internode::Request request;
    std::vector<std::string> keys;
    for (auto& hint : *batch) {
      *request.mutable_mutate()->add_mutations() = std::move(hint.mutation);
      keys.push_back(std::move(hint.key));
    }
    auto sent =
        co_await client_->Call(address, request, base::Clock::now() + std::chrono::seconds(10));
    if (!sent.ok()) {
      spdlog::debug("replaying hints to node {}: {}", target, sent.status().ToString());
      break;
    }
    const size_t n = keys.size();
    Status removed = co_await hints_->Remove(target, std::move(keys));
    if (!removed.ok()) {
      spdlog::error("deleting delivered hints for node {}: {}", target, removed.ToString());
      break;
    }
    hints_->CountReplayed(n);
    delivered += n;
  }
  if (delivered > 0) spdlog::info("replayed {} hints to node {} ({})", delivered, target, address);
}

void HintReplayer::Stop() {
  asio::post(executor_, [this] {
    stopping_ = true;
    timer_.cancel();
  });
}

}  // namespace cairn::coordinator
