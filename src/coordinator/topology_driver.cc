#include "coordinator/topology_driver.h"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "base/async.h"
#include "cluster/topology_state.h"

namespace cairn::coordinator {
namespace {

using base::kNoThrow;
using internode::TopologyState;
using internode::TransitionStage;

// How long one barrier broadcast may wait for every member's answer.
constexpr auto kBarrierTime = std::chrono::seconds(10);
// How long a join request may take (a Paxos round among the group, and its broadcast).
constexpr auto kJoinTime = std::chrono::seconds(10);

}  // namespace

TopologyDriver::TopologyDriver(ClusterCoordinator* coordinator, cluster::Gossiper* gossiper,
                               cluster::InternodeClient* client, internode::NodeInfo self,
                               DriverOptions options, asio::any_io_executor executor)
    : coordinator_(coordinator),
      gossiper_(gossiper),
      client_(client),
      self_(std::move(self)),
      options_(std::move(options)),
      executor_(executor),
      timer_(executor),
      replace_(options_.replace),
      standby_(options_.standby && !options_.join.empty()) {}

void TopologyDriver::Wake() {
  asio::post(executor_, [this] { timer_.cancel(); });
}

void TopologyDriver::Stop() {
  asio::post(executor_, [this] {
    stopping_ = true;
    timer_.cancel();
  });
}

std::string TopologyDriver::waiting() const {
  std::lock_guard lock(mu_);
  return waiting_;
}

void TopologyDriver::SetWaiting(std::string what) {
  std::lock_guard lock(mu_);
  if (what != waiting_ && !what.empty()) spdlog::info("topology change: {}", what);
  waiting_ = std::move(what);
}

asio::awaitable<void> TopologyDriver::Run() {
  if (standby_ && !IsMember()) {
    SetWaiting(fmt::format(
        "on standby: waiting to be told to join through {} (cairn node join, or cairn node "
        "replace DEAD --with this node)",
        fmt::join(options_.join, ", ")));
  }
  while (standby_ && !IsMember() && !stopping_) {
    timer_.expires_after(options_.poll);
    co_await timer_.async_wait(kNoThrow);
  }
  standby_ = false;
  if (!options_.join.empty()) co_await Join();
  while (!stopping_) {
    co_await Step();
    if (stopping_) break;
    timer_.expires_after(options_.poll);
    co_await timer_.async_wait(kNoThrow);
  }
}

bool TopologyDriver::Driving(const TopologyState& state) const {
  // The member of the group with the lowest id that is up drives; when it goes down, the next.
  std::vector<uint32_t> group(state.group().begin(), state.group().end());
  std::sort(group.begin(), group.end());
  for (uint32_t node : group) {
    if (node == self_.node_id()) return true;
    if (gossiper_->IsUp(node)) return false;
  }
  return false;
}

asio::awaitable<void> TopologyDriver::Step() {
  std::shared_ptr<const TopologyState> state = gossiper_->state();
  if (!state) co_return;
  if (!state->has_transition()) {
    SetWaiting("");
    seen_down_.clear();
    if (Driving(*state)) co_await RemoveTheDead(*state);
    co_return;
  }
  if (!Driving(*state)) co_return;
  const internode::Transition& t = state->transition();
  if (t.stage() == internode::WRITE_BOTH_READ_OLD) {
    // A member removed as dead that is back before reads have switched keeps its place.
    std::set<uint32_t>& seen_down = seen_down_[t.id()];
    for (const internode::TopologyMember& m : state->members()) {
      if (m.state() != internode::LEAVING || !m.dead()) continue;
      const uint32_t id = m.info().node_id();
      if (!gossiper_->IsUp(id)) {
        seen_down.insert(id);
        continue;
      }
      if (seen_down.contains(id)) {
        spdlog::warn("node {} is UP again while being removed: rolling the change back",
                     m.info().node_id());
        const uint64_t now_ms = coordinator_->wall_clock().NowMillis();
        co_await Commit(t.id(), t.stage(), [now_ms](const TopologyState& s) {
          return cluster::Advance(s, internode::WRITE_BOTH_READ_OLD, internode::ROLLBACK, now_ms);
        });
        co_return;
      }
    }
  }
  if (state->fence() < t.stage_epoch()) {
    if (cluster::AcceptsMerges(*state)) {
      // Changes asked for meanwhile merge into this one (each merge gives it a new id, and the
      // window starts again).
      const auto now = std::chrono::steady_clock::now();
      if (merging_.first != t.id()) merging_ = {t.id(), now};
      if (now - merging_.second < options_.merge_window) {
        SetWaiting(fmt::format("{}: other changes may join it for {} ms", t.description(),
                               options_.merge_window.count()));
        co_return;
      }
    }
    if (Status s = co_await Barrier(*state); !s.ok()) {
      SetWaiting(fmt::format("the barrier of epoch {} ({}): {}", state->epoch(),
                             cluster::StageName(t.stage()), s.message()));
    }
    co_return;
  }
  std::string why;
  const uint64_t now_ms = coordinator_->wall_clock().NowMillis();
  switch (t.stage()) {
    case internode::WRITE_BOTH_READ_OLD:
      if (!StreamsDone(*state, &why)) {
        SetWaiting(std::move(why));
        co_return;
      }
      co_await Commit(t.id(), t.stage(), [from = t.stage(), now_ms](const TopologyState& s) {
        return cluster::Advance(s, from, internode::WRITE_BOTH_READ_NEW, now_ms);
      });
      break;
    case internode::WRITE_BOTH_READ_NEW:
      // Every coordinator reads the new replicas now (the fence says so): writes can leave the
      // old ones.
      co_await Commit(t.id(), t.stage(), [from = t.stage(), now_ms](const TopologyState& s) {
        return cluster::Advance(s, from, internode::USE_NEW, now_ms);
      });
      break;
    case internode::USE_NEW:
    case internode::ROLLBACK:
      if (!CleanupDone(*state, &why)) {
        SetWaiting(std::move(why));
        co_return;
      }
      if (Status s = co_await Commit(
              t.id(), t.stage(),
              [now_ms](const TopologyState& s) { return cluster::Finish(s, now_ms); });
          s.ok()) {
        co_await TellLeavers(*state);
      }
      break;
    default:
      break;
  }
}

asio::awaitable<void> TopologyDriver::TellLeavers(const TopologyState& before) {
  // The epoch that makes them LEFT is not broadcast to them (nor gossiped): tell each node that
  // left by this change, so that it knows to stop.
  std::shared_ptr<const TopologyState> now = gossiper_->state();
  if (!now) co_return;
  internode::Request request;
  *request.mutable_topology()->mutable_state() = *now;
  for (const internode::TopologyMember& m : before.members()) {
    const internode::TopologyMember* after = cluster::FindMember(*now, m.info().node_id());
    if (m.state() != internode::LEAVING || m.dead() || after == nullptr ||
        after->state() != internode::LEFT) {
      continue;
    }
    auto r = co_await client_->Call(m.info().address(), request,
                                    base::Clock::now() + std::chrono::seconds(2));
    if (!r.ok()) {
      spdlog::info("telling node {} that it has left: {}", m.info().node_id(),
                   r.status().ToString());
    }
  }
}

asio::awaitable<Status> TopologyDriver::Barrier(const TopologyState& state) {
  const std::vector<uint32_t> nodes = cluster::BarrierNodes(state);
  SetWaiting(fmt::format("barrier of epoch {}: waiting for {} members to adopt it", state.epoch(),
                         nodes.size()));
  Status s = co_await coordinator_->Broadcast(state, 0, nodes, base::Clock::now() + kBarrierTime);
  if (!s.ok()) co_return s;
  // Requests planned with the epoch before finish meanwhile rather than being refused.
  timer_.expires_after(options_.drain);
  co_await timer_.async_wait(kNoThrow);
  if (stopping_) co_return Status::Unavailable("stopping");
  s = co_await coordinator_->Broadcast(state, state.epoch(), nodes,
                                       base::Clock::now() + kBarrierTime);
  if (!s.ok()) co_return s;
  const uint64_t fence = state.epoch();
  const uint64_t id = state.transition().id();
  const TransitionStage stage = state.transition().stage();
  co_return co_await Commit(id, stage, [fence](const TopologyState& s) {
    return Result<TopologyState>(cluster::WithFence(s, fence));
  });
}

asio::awaitable<void> TopologyDriver::RemoveTheDead(const TopologyState& state) {
  if (options_.dead_after.count() <= 0) co_return;
  const auto now = std::chrono::steady_clock::now();
  if (now - started_ < options_.dead_after) co_return;
  std::optional<uint32_t> longest;
  for (const internode::TopologyMember& m : state.members()) {
    const uint32_t id = m.info().node_id();
    if (m.state() != internode::NORMAL || id == self_.node_id() || gossiper_->IsUp(id)) {
      down_since_.erase(id);
      continue;
    }
    auto [it, first] = down_since_.emplace(id, now);
    if (!first && now - it->second >= options_.dead_after &&
        (!longest || it->second < down_since_[*longest])) {
      longest = id;
    }
  }
  if (!longest) co_return;
  const uint32_t dead = *longest;
  const uint64_t now_ms = coordinator_->wall_clock().NowMillis();
  auto r = co_await coordinator_->ChangeTopology(
      [&](const TopologyState& s) -> Result<std::optional<TopologyState>> {
        if (s.has_transition()) return std::optional<TopologyState>();  // someone was first
        auto next = cluster::StartLeave(s, dead, /*dead=*/true, now_ms);
        if (!next.ok()) return next.status();
        return std::optional<TopologyState>(std::move(*next));
      },
      base::Clock::now() + kBarrierTime);
  if (r.ok()) {
    spdlog::warn(
        "node {} has been DOWN for longer than --dead-after ({} s): removing it; its "
        "data is streamed from the other replicas",
        dead, options_.dead_after.count() / 1000);
    down_since_.erase(dead);
  } else {
    SetWaiting(fmt::format("cannot remove node {}, DOWN for longer than --dead-after: {}", dead,
                           r.status().message()));
  }
}

bool TopologyDriver::StreamsDone(const TopologyState& state, std::string* waiting) const {
  const uint64_t id = state.transition().id();
  uint32_t total = 0, done = 0;
  std::vector<std::string> behind;
  for (uint32_t node : cluster::BarrierNodes(state)) {
    auto s = gossiper_->StateOf(node);
    if (!s || s->transition() != id || !s->streams_planned()) {
      behind.push_back(fmt::format("{} (not started)", node));
      continue;
    }
    total += s->streams_total();
    done += s->streams_done();
    if (s->streams_done() < s->streams_total()) {
      behind.push_back(fmt::format("{} ({}/{})", node, s->streams_done(), s->streams_total()));
    }
  }
  if (behind.empty()) return true;
  *waiting = fmt::format("streaming: {} of {} ranges done; waiting for node {}", done, total,
                         fmt::join(behind, ", "));
  return false;
}

bool TopologyDriver::CleanupDone(const TopologyState& state, std::string* waiting) const {
  const uint64_t id = state.transition().id();
  const TransitionStage stage = state.transition().stage();
  std::vector<uint32_t> behind;
  for (uint32_t node : cluster::BarrierNodes(state)) {
    auto s = gossiper_->StateOf(node);
    if (!s || s->transition() != id || s->cleaned_stage() != stage) behind.push_back(node);
  }
  if (behind.empty()) return true;
  *waiting = fmt::format("cleanup after {}: waiting for node {}", cluster::StageName(stage),
                         fmt::join(behind, ", "));
  return false;
}

asio::awaitable<Status> TopologyDriver::Commit(
    uint64_t id, TransitionStage stage,
    std::function<Result<TopologyState>(const TopologyState&)> next) {
  auto r = co_await coordinator_->ChangeTopology(
      [&](const TopologyState& s) -> Result<std::optional<TopologyState>> {
        // Another driver (or this one, before a restart) may have made the step already.
        if (!s.has_transition() || s.transition().id() != id || s.transition().stage() != stage) {
          return std::optional<TopologyState>();
        }
        auto made = next(s);
        if (!made.ok()) return made.status();
        return std::optional<TopologyState>(std::move(*made));
      },
      base::Clock::now() + kBarrierTime);
  if (!r.ok()) {
    spdlog::warn("topology change {}: {}", id, r.status().ToString());
    co_return r.status();
  }
  co_return Status::Ok();
}

bool TopologyDriver::IsMember() const {
  auto s = gossiper_->state();
  if (!s) return false;
  const internode::TopologyMember* m = cluster::FindMember(*s, self_.node_id());
  return m != nullptr && m->state() != internode::LEFT;
}

asio::awaitable<Result<TopologyState>> TopologyDriver::AskToJoin() {
  internode::Request request;
  *request.mutable_join()->mutable_node() = self_;
  request.mutable_join()->set_replace(replace_);
  Status last = Status::Unavailable("no seed to ask (--join)");
  for (const std::string& seed : options_.join) {
    auto response = co_await client_->Call(seed, request, base::Clock::now() + kJoinTime);
    if (!response.ok()) {
      const Code code = response.status().code();
      // A member's refusal is the cluster's answer; an unreachable seed is not.
      if (code == Code::kFailedPrecondition || code == Code::kInvalidArgument ||
          code == Code::kNotFound || code == Code::kAlreadyExists) {
        co_return response.status();
      }
      last = Status(code, fmt::format("{}: {}", seed, response.status().message()));
      continue;
    }
    const internode::TopologyMember* m =
        response->join().has_state()
            ? cluster::FindMember(response->join().state(), self_.node_id())
            : nullptr;
    if (m == nullptr || m->state() == internode::LEFT) {
      last = Status::Internal(fmt::format("{}: the answer does not make this node a member", seed));
      continue;
    }
    spdlog::info("joined through {}: {}", seed, cluster::Describe(response->join().state()));
    gossiper_->AdoptLater(response->join().state());
    co_return response->join().state();
  }
  co_return last;
}

asio::awaitable<void> TopologyDriver::Join() {
  size_t attempt = 0;
  while (!stopping_ && !IsMember()) {
    auto joined = co_await AskToJoin();
    if (joined.ok()) {
      SetWaiting("");
      co_return;
    }
    SetWaiting(fmt::format("joining (attempt {}): {}", ++attempt, joined.status().ToString()));
    timer_.expires_after(std::max(options_.poll, std::chrono::milliseconds(1000)));
    co_await timer_.async_wait(kNoThrow);
  }
}

asio::awaitable<Result<TopologyState>> TopologyDriver::JoinOnCommand(uint32_t replace) {
  co_return co_await asio::co_spawn(executor_, CarryOutJoinCommand(replace), asio::use_awaitable);
}

asio::awaitable<Result<TopologyState>> TopologyDriver::CarryOutJoinCommand(uint32_t replace) {
  if (!options_.standby || options_.join.empty()) {
    co_return Status::FailedPrecondition(
        options_.join.empty()
            ? "this node is not waiting to join a cluster: start a new node with --join SEEDS "
              "--standby, then tell it to join (cairn node join, cairn node replace)"
            : "this node is not waiting to join: it joins the cluster by itself (started with "
              "--join, not --standby)");
  }
  if (IsMember()) {
    // Told again (the answer was lost), or after it joined.
    if (auto s = gossiper_->state()) co_return *s;
  }
  if (commanded_) {
    co_return Status::FailedPrecondition("this node is already carrying out a join command");
  }
  commanded_ = true;
  replace_ = replace;
  auto joined = co_await AskToJoin();
  commanded_ = false;
  if (!joined.ok()) {
    replace_ = options_.replace;
    co_return joined.status();
  }
  standby_ = false;
  SetWaiting("");
  // Answer once this node has adopted the state (AskToJoin hands it to the gossiper to persist):
  // whoever told it to join may follow the change through it at once.
  for (int i = 0; i < 100 && gossiper_->epoch() < joined->epoch(); ++i) {
    asio::steady_timer wait(executor_, std::chrono::milliseconds(20));
    co_await wait.async_wait(kNoThrow);
  }
  Wake();
  co_return joined;
}

asio::awaitable<Result<internode::JoinResponse>> TopologyDriver::HandleJoin(
    internode::JoinRequest request, base::Deadline deadline) {
  const internode::NodeInfo& info = request.node();
  if (info.node_id() == 0 || info.address().empty()) {
    co_return Status::InvalidArgument("a join request names the node's id and address");
  }
  cluster::Member node{info.node_id(), info.address(), info.dc(), info.rack(), 0};
  const uint32_t replace = request.replace();
  const uint64_t now_ms = coordinator_->wall_clock().NowMillis();
  auto r = co_await coordinator_->ChangeTopology(
      [&](const TopologyState& s) -> Result<std::optional<TopologyState>> {
        // Asked again (the answer was lost): it is in already.
        if (const auto* m = cluster::FindMember(s, node.node_id);
            m != nullptr && m->state() != internode::LEFT && m->info().address() == node.address) {
          return std::optional<TopologyState>();
        }
        auto next = replace != 0 ? cluster::StartReplace(s, replace, node, now_ms)
                                 : cluster::StartJoin(s, node, now_ms);
        if (!next.ok()) return next.status();
        return std::optional<TopologyState>(std::move(*next));
      },
      std::min(deadline, base::Clock::now() + kJoinTime));
  if (!r.ok()) co_return r.status();
  Wake();
  internode::JoinResponse out;
  *out.mutable_state() = **r;
  co_return out;
}

}  // namespace cairn::coordinator
