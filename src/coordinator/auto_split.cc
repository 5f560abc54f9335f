#include "coordinator/auto_split.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "base/async.h"
#include "base/text.h"
#include "cluster/split_counters.h"
#include "cluster/topology.h"
#include "coordinator/cluster_coordinator.h"

namespace cairn::coordinator {
namespace {

constexpr auto kCheckEvery = std::chrono::seconds(1);
// The keys each node reports for the cluster-wide check: a counter hot enough to split is near
// the top of its keyspace on the nodes that coordinate it.
constexpr uint32_t kClusterLookAt = 32;
// A split waits this long for its barriers (SplitCounter's own steps have 20 s each).
constexpr auto kSplitTime = std::chrono::seconds(30);

}  // namespace

std::vector<AutoSplitCandidate> AutoSplitPolicy::Candidates(
    const std::vector<base::KeyspaceDef>& keyspaces, const base::HotKeys& sketch,
    const IsSplit& is_split, uint32_t coordinators, Clock::time_point now) const {
  std::vector<AutoSplitCandidate> out;
  coordinators = std::max<uint32_t>(coordinators, 1);
  for (const base::KeyspaceDef& ks : keyspaces) {
    if (ks.auto_split_increments_per_s == 0 || ks.dropped) continue;
    if (auto it = next_attempt_.find(ks.name); it != next_attempt_.end() && now < it->second) {
      continue;
    }
    const double share = static_cast<double>(ks.auto_split_increments_per_s) / coordinators;
    const AutoSplitCandidate* best = nullptr;
    for (const base::HotKey& h : sketch.Top(ks.id, kLookAt, now)) {
      // Plain writes and reads do not count: a key that is SET often is not a counter.
      if (h.increments_per_s < share || h.truncated || cluster::IsSplitPartKey(h.key)) continue;
      if (best != nullptr && best->local_increments_per_s >= h.increments_per_s) continue;
      if (auto it = refused_.find({ks.name, h.key}); it != refused_.end() && now < it->second) {
        continue;
      }
      if (is_split(ks.name, h.key)) continue;
      if (best == nullptr) {
        out.emplace_back();
        best = &out.back();
      }
      AutoSplitCandidate& c = out.back();
      c.keyspace = ks.name;
      c.key = h.key;
      c.local_increments_per_s = h.increments_per_s;
      c.threshold = ks.auto_split_increments_per_s;
      c.shards = ks.auto_split_shards;
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.local_increments_per_s > b.local_increments_per_s;
  });
  return out;
}

void AutoSplitPolicy::Attempted(const std::string& keyspace, Clock::time_point now) {
  next_attempt_[keyspace] = now + kKeyspaceSpacing;
}

void AutoSplitPolicy::Refused(const std::string& keyspace, std::string_view key,
                              Clock::time_point now) {
  // Bounded: a keyspace full of refused counters forgets the older ones first, which only
  // costs them a check again.
  if (refused_.size() >= 1000) {
    std::erase_if(refused_, [now](const auto& entry) { return entry.second <= now; });
    if (refused_.size() >= 1000) refused_.clear();
  }
  refused_[{keyspace, std::string(key)}] = now + kRefusedPause;
}

AutoSplitter::AutoSplitter(ClusterCoordinator* coordinator, const cluster::ClusterView* view,
                           asio::any_io_executor executor)
    : coordinator_(coordinator), view_(view), timer_(std::move(executor)) {}

void AutoSplitter::Stop() {
  stopping_ = true;
  asio::post(timer_.get_executor(), [this] { timer_.cancel(); });
}

asio::awaitable<void> AutoSplitter::Run() {
  while (!stopping_) {
    timer_.expires_after(kCheckEvery);
    co_await timer_.async_wait(base::kNoThrow);
    if (stopping_) break;
    co_await Check();
  }
}

asio::awaitable<void> AutoSplitter::Check() {
  auto listed = coordinator_->ListKeyspaces();
  if (!listed.ok()) co_return;
  // The common case: no keyspace asks for it, and the check costs this look at the schema.
  if (std::none_of(listed->begin(), listed->end(),
                   [](const auto& ks) { return ks.auto_split_increments_per_s != 0; })) {
    co_return;
  }
  uint32_t coordinators = 0;
  for (const cluster::NodeStatus& n : view_->Nodes()) {
    if ((n.up || n.self) && !n.dead && n.node_id != 0) ++coordinators;
  }
  const AutoSplitPolicy::IsSplit is_split = [this](const std::string& keyspace,
                                                   std::string_view key) {
    return coordinator_->IsSplitCounter(keyspace, key);
  };
  std::vector<AutoSplitCandidate> candidates = policy_.Candidates(
      *listed, coordinator_->hot_keys(), is_split, coordinators, AutoSplitPolicy::Clock::now());
  for (AutoSplitCandidate& c : candidates) {
    if (stopping_) break;
    co_await Consider(std::move(c));
  }
}

asio::awaitable<void> AutoSplitter::Consider(AutoSplitCandidate c) {
  policy_.Attempted(c.keyspace, AutoSplitPolicy::Clock::now());
  const std::string printable = base::Printable(std::string_view(c.key).substr(0, 200));
  auto report = co_await coordinator_->HotKeys(c.keyspace, kClusterLookAt);
  if (!report.ok()) {
    spdlog::debug("automatic split of '{}' of keyspace {}: the cluster's rates: {}", printable,
                  c.keyspace, report.status().ToString());
    co_return;
  }
  double rate = 0;
  for (const HotKeyReport& k : report->keys) {
    if (k.key == c.key && !k.truncated) rate = k.increments_per_s;
  }
  if (!AutoSplitPolicy::Passes(c, rate)) {
    spdlog::debug(
        "automatic split of '{}' of keyspace {}: {:.0f} increments/s here, {:.0f} over the "
        "cluster, below {}",
        printable, c.keyspace, c.local_increments_per_s, rate, c.threshold);
    co_return;
  }
  RequestOptions options(c.keyspace, Consistency::kDefault, base::Clock::now() + kSplitTime);
  auto split = co_await coordinator_->SplitCounter(c.key, c.shards, std::move(options));
  if (split.ok()) {
    if (split->unchanged) {
      spdlog::debug("automatic split of '{}' of keyspace {}: another node split it first",
                    printable, c.keyspace);
      co_return;
    }
    coordinator_->CountAutomaticSplit();
    spdlog::info(
        "split counter '{}' of keyspace {} automatically into {} sub-counters: {:.0f} "
        "increments/s over the cluster ({:.0f} here), threshold {}",
        printable, c.keyspace, c.shards, rate, c.local_increments_per_s, c.threshold);
    co_return;
  }
  const Code code = split.status().code();
  // What will not pass by itself (not a number, a time to live, another shard count, too many
  // split counters) waits kRefusedPause; UNAVAILABLE and TIMEOUT (a member down, a barrier that
  // did not finish) only the keyspace's spacing.
  const bool lasting = code == Code::kFailedPrecondition || code == Code::kInvalidArgument ||
                       code == Code::kNotFound;
  if (lasting) policy_.Refused(c.keyspace, c.key, AutoSplitPolicy::Clock::now());
  spdlog::info("automatic split of counter '{}' of keyspace {} ({:.0f} increments/s) {}: {}",
               printable, c.keyspace, rate,
               lasting ? "refused, not tried again for a minute" : "failed, to be tried again",
               split.status().ToString());
}

}  // namespace cairn::coordinator
