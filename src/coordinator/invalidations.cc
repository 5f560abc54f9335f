#include "coordinator/invalidations.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include "base/async.h"
#include "base/reactor.h"

namespace cairn::coordinator {

namespace {
using base::kNoThrow;
// How long a KeysChangedRequest may take before the sender counts it lost (and owes a flush).
constexpr auto kSendTime = std::chrono::seconds(2);
// How long StartTracking waits for the live members' answers.
constexpr auto kAnnounceTime = std::chrono::seconds(1);
constexpr auto kRunInterval = std::chrono::seconds(1);
}  // namespace

Invalidations::Invalidations(uint32_t self, const cluster::ClusterView* view,
                             base::HybridClock* clock,
                             std::vector<cluster::InternodeClient*> clients)
    : self_(self),
      view_(view),
      clock_(clock),
      clients_(std::move(clients)),
      outboxes_(clients_.size()),
      targets_(std::make_shared<std::vector<std::pair<uint32_t, std::string>>>()) {}

cluster::InternodeClient* Invalidations::ClientHere() const {
  const size_t i = base::ReactorIndex();
  return i < clients_.size() ? clients_[i] : nullptr;
}

void Invalidations::Changed(const asio::any_io_executor& executor,
                            std::span<const std::string> keys, uint64_t origin) {
  if (keys.empty()) return;
  if (local_.load(std::memory_order_relaxed)) {
    if (KeyChangeListener* l = listener_.load()) l->KeysChanged(keys, origin);
  }
  Enqueue(executor, keys, false);
}

void Invalidations::Flush(const asio::any_io_executor& executor) {
  if (local_.load(std::memory_order_relaxed)) {
    if (KeyChangeListener* l = listener_.load()) l->Flushed();
  }
  Enqueue(executor, {}, true);
}

void Invalidations::Enqueue(const asio::any_io_executor& executor,
                            std::span<const std::string> keys, bool flush) {
  std::shared_ptr<const std::vector<std::pair<uint32_t, std::string>>> targets;
  {
    std::lock_guard lock(mu_);
    targets = targets_;
  }
  if (targets->empty()) return;
  const size_t reactor = base::ReactorIndex();
  if (reactor >= outboxes_.size()) {
    // Not on a reactor (no internode client here): the peers are owed a flush instead.
    for (const auto& [node, address] : *targets) OweFlush(node);
    return;
  }
  Outbox& box = outboxes_[reactor];
  for (const auto& [node, address] : *targets) {
    internode::KeysChangedRequest& m = box.pending[node];
    if (flush || m.flush() ||
        static_cast<size_t>(m.keys_size()) + keys.size() > kMaxKeysPerMessage) {
      // A flush covers every key: the keys themselves need not go.
      m.clear_keys();
      m.set_flush(true);
      continue;
    }
    for (const std::string& k : keys) m.add_keys(k);
  }
  if (!box.scheduled) {
    box.scheduled = true;
    // The keys of every write that finishes in this turn of the reactor go in one message.
    asio::post(executor, [this, reactor, executor] { SendPending(reactor, executor); });
  }
}

void Invalidations::SendPending(size_t reactor, const asio::any_io_executor& executor) {
  Outbox& box = outboxes_[reactor];
  box.scheduled = false;
  std::map<uint32_t, internode::KeysChangedRequest> pending;
  pending.swap(box.pending);
  std::map<uint32_t, std::string> addresses;
  {
    std::lock_guard lock(mu_);
    for (const auto& [node, m] : pending) {
      auto it = peers_.find(node);
      if (it != peers_.end() && it->second.tracking) addresses[node] = it->second.address;
    }
  }
  for (auto& [node, request] : pending) {
    auto address = addresses.find(node);
    if (address == addresses.end()) continue;  // no longer a member, or no longer tracking
    if (!view_->IsUp(node) || (*box.in_flight)[node] >= kMaxInFlight) {
      // Down, or not keeping up: these keys are dropped, and the peer will drop everything.
      OweFlush(node);
      continue;
    }
    ++(*box.in_flight)[node];
    // Send() turns every failure into an owed flush: nothing escapes it.
    asio::co_spawn(executor, Send(reactor, node, address->second, std::move(request)),
                   [](std::exception_ptr) {});
  }
}

asio::awaitable<void> Invalidations::Send(size_t reactor, uint32_t peer, std::string address,
                                          internode::KeysChangedRequest request) {
  struct Done {
    std::shared_ptr<std::map<uint32_t, int>> in_flight;
    uint32_t peer;
    ~Done() { --(*in_flight)[peer]; }
  };
  const Done done{outboxes_[reactor].in_flight, peer};
  const size_t keys = static_cast<size_t>(request.keys_size());
  const bool flush = request.flush();
  internode::Request message;
  *message.mutable_keys_changed() = std::move(request);
  counters_.messages_sent.fetch_add(1, std::memory_order_relaxed);
  counters_.keys_sent.fetch_add(keys, std::memory_order_relaxed);
  if (flush) counters_.flushes_sent.fetch_add(1, std::memory_order_relaxed);
  Result<internode::Response> answer = Status::Unavailable("no internode client on this thread");
  if (cluster::InternodeClient* client = clients_[reactor]) {
    answer = co_await client->Call(address, message, base::Clock::now() + kSendTime);
  }
  if (!answer.ok()) {
    counters_.messages_failed.fetch_add(1, std::memory_order_relaxed);
    spdlog::debug("keys changed for node {} not delivered: {}", peer, answer.status().ToString());
    OweFlush(peer);
  }
}

void Invalidations::OweFlush(uint32_t peer) {
  std::lock_guard lock(mu_);
  auto it = peers_.find(peer);
  if (it != peers_.end() && it->second.tracking) ++it->second.owed;
}

void Invalidations::UpdateLocked() {
  auto targets = std::make_shared<std::vector<std::pair<uint32_t, std::string>>>();
  for (const auto& [node, p] : peers_) {
    if (node != self_ && p.tracking && !p.address.empty()) targets->emplace_back(node, p.address);
  }
  const bool local = tracking_refs_ > 0;
  local_.store(local, std::memory_order_relaxed);
  since_reported_.store(since_, std::memory_order_relaxed);
  active_.store(local || !targets->empty(), std::memory_order_relaxed);
  targets_ = std::move(targets);
}

void Invalidations::Adopt(uint32_t from, bool tracking, uint64_t since, std::string address) {
  if (from == 0 || from == self_) return;
  if (address.empty()) {
    // Not under mu_: the gossiper calls Report() under its own lock.
    for (const NodeStatus& n : view_->Nodes()) {
      if (n.node_id == from) address = n.address;
    }
  }
  std::lock_guard lock(mu_);
  Peer& p = peers_[from];
  if (p.address.empty()) p.address = std::move(address);
  if (since < p.since || (since == p.since && tracking == p.tracking)) return;
  p.since = since;
  p.tracking = tracking;
  if (!tracking) p.owed = 0;  // no clients there to flush
  UpdateLocked();
}

void Invalidations::Receive(uint32_t, const internode::KeysChangedRequest& request) {
  counters_.messages_received.fetch_add(1, std::memory_order_relaxed);
  counters_.keys_received.fetch_add(request.keys_size(), std::memory_order_relaxed);
  // A node that sends us keys knows we track, whatever gossip said last.
  if (!local_.load(std::memory_order_relaxed)) return;  // no tracking client here (any more)
  KeyChangeListener* l = listener_.load();
  if (l == nullptr) return;
  if (request.flush()) {
    l->Flushed();
    return;
  }
  std::vector<std::string> keys(request.keys().begin(), request.keys().end());
  l->KeysChanged(keys, 0);
}

void Invalidations::Receive(uint32_t from, const internode::TrackingRequest& request) {
  Adopt(from, request.tracking(), request.since(), "");
}

void Invalidations::Report(internode::NodeState* self) const {
  self->set_tracking(local_.load(std::memory_order_relaxed));
  self->set_tracking_since(since_reported_.load(std::memory_order_relaxed));
}

asio::awaitable<std::vector<bool>> Invalidations::Tell(
    std::vector<std::pair<uint32_t, std::string>> peers, internode::TrackingRequest statement,
    base::Deadline deadline) {
  auto executor = co_await asio::this_coro::executor;
  struct State {
    explicit State(asio::any_io_executor e, size_t n) : answered(n, false), done(std::move(e)) {
      done.expires_at(asio::steady_timer::time_point::max());
    }
    std::vector<bool> answered;
    size_t waiting = 0;
    asio::steady_timer done;  // cancelled when the last answer is in
  };
  auto state = std::make_shared<State>(executor, peers.size());
  auto request = std::make_shared<internode::Request>();
  *request->mutable_tracking() = std::move(statement);
  cluster::InternodeClient* client = ClientHere();
  if (client == nullptr) co_return state->answered;
  for (size_t i = 0; i < peers.size(); ++i) {
    ++state->waiting;
    counters_.announcements.fetch_add(1, std::memory_order_relaxed);
    auto call = [state, request, client, i, address = peers[i].second,
                 deadline]() -> asio::awaitable<void> {
      auto r = co_await client->Call(address, *request, deadline);
      state->answered[i] = r.ok();
    };
    auto finished = [state](std::exception_ptr) {
      if (--state->waiting == 0) state->done.cancel();
    };
    asio::co_spawn(executor, std::move(call), std::move(finished));
  }
  while (state->waiting > 0) co_await state->done.async_wait(kNoThrow);
  co_return state->answered;
}

asio::awaitable<void> Invalidations::StartTracking() {
  uint64_t since = 0;
  {
    std::lock_guard lock(mu_);
    if (tracking_refs_++ == 0) {
      since_ = clock_->Now();
      announced_ = false;
      UpdateLocked();
    }
    if (announced_) co_return;
    since = since_;
  }
  // Every live member learns it before this client is answered: a change acknowledged after
  // that is reported to this node (a client that reads after its CLIENT TRACKING reply sees
  // the changes acknowledged before it, at the levels where reads see acknowledged writes).
  std::vector<std::pair<uint32_t, std::string>> peers;
  std::vector<uint64_t> generations;
  for (const NodeStatus& n : view_->Nodes()) {
    if (!n.self && n.node_id != 0 && n.up && !n.dead) {
      peers.emplace_back(n.node_id, n.address);
      generations.push_back(n.generation);
    }
  }
  internode::TrackingRequest statement;
  statement.set_tracking(true);
  statement.set_since(since);
  const base::Deadline deadline = base::Clock::now() + kAnnounceTime;
  std::vector<bool> answered = co_await Tell(peers, std::move(statement), deadline);
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < peers.size(); ++i) {
    if (!answered[i]) continue;
    Peer& p = peers_[peers[i].first];
    if (p.address.empty()) p.address = peers[i].second;
    if (!p.seen) {
      // As Run() would have seen it: up, this generation (not a node coming back).
      p.seen = p.up = true;
      p.generation = generations[i];
    }
    p.told = std::max(p.told, since);
  }
  if (since_ == since) announced_ = true;
}

void Invalidations::StopTracking() {
  std::lock_guard lock(mu_);
  if (tracking_refs_ == 0) return;
  if (--tracking_refs_ == 0) {
    // The peers stop sending once gossip or Run() tells them; until then what they send is
    // dropped on arrival.
    since_ = clock_->Now();
    announced_ = false;
    UpdateLocked();
  }
}

asio::awaitable<void> Invalidations::Run() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (true) {
    timer.expires_after(kRunInterval);
    auto [ec] = co_await timer.async_wait(kNoThrow);
    if (ec) co_return;
    // What gossip says, and who came back. The view is read before mu_ is taken: the gossiper
    // calls Report() under its own lock.
    const std::vector<NodeStatus> nodes = view_->Nodes();
    std::vector<std::pair<uint32_t, std::string>> tell;
    std::vector<std::tuple<uint32_t, std::string, uint64_t>> flush;  // node, address, owed
    internode::TrackingRequest statement;
    bool went_down = false;
    for (const NodeStatus& n : nodes) {
      if (n.self || n.node_id == 0) continue;
      if (n.tracking_since > 0) Adopt(n.node_id, n.tracking, n.tracking_since, n.address);
    }
    {
      std::lock_guard lock(mu_);
      statement.set_tracking(tracking_refs_ > 0);
      statement.set_since(since_);
      std::map<uint32_t, bool> members;
      for (const NodeStatus& n : nodes) {
        if (n.self || n.node_id == 0 || n.dead) continue;
        members[n.node_id] = true;
        Peer& p = peers_[n.node_id];
        p.address = n.address;
        // A restart (a new generation) or a return from DOWN: what it changed meanwhile may
        // never have been sent here, and it may not know this node tracks.
        if (p.seen && (n.generation != p.generation || (n.up && !p.up))) p.told = 0;
        // Gone DOWN: it may have crashed between acknowledging a write and sending its keys.
        if (p.seen && p.up && !n.up) went_down = true;
        p.seen = true;
        p.generation = n.generation;
        p.up = n.up;
        if (!n.up) continue;
        if (since_ != 0 && p.told != since_) tell.emplace_back(n.node_id, n.address);
        if (p.owed > 0 && p.tracking) flush.emplace_back(n.node_id, n.address, p.owed);
      }
      for (auto it = peers_.begin(); it != peers_.end();) {
        it = members.contains(it->first) ? std::next(it) : peers_.erase(it);
      }
      UpdateLocked();
    }
    if (went_down && local_.load(std::memory_order_relaxed)) {
      if (KeyChangeListener* l = listener_.load()) l->Flushed();
    }
    if (!tell.empty()) {
      const bool on = statement.tracking();
      const uint64_t since = statement.since();
      const base::Deadline deadline = base::Clock::now() + kSendTime;
      std::vector<bool> answered = co_await Tell(tell, statement, deadline);
      bool told_any = false;
      {
        std::lock_guard lock(mu_);
        for (size_t i = 0; i < tell.size(); ++i) {
          auto p = peers_.find(tell[i].first);
          if (!answered[i] || p == peers_.end()) continue;
          p->second.told = std::max(p->second.told, since);
          told_any = true;
        }
      }
      // The peers just told may have changed keys without telling this node: its clients drop
      // everything (after the peers know, so that what they change from now on is reported).
      if (on && told_any && local_.load(std::memory_order_relaxed)) {
        if (KeyChangeListener* l = listener_.load()) l->Flushed();
      }
    }
    cluster::InternodeClient* client = ClientHere();
    for (const auto& [node, address, owed] : flush) {
      if (client == nullptr) break;
      internode::Request request;
      request.mutable_keys_changed()->set_flush(true);
      counters_.messages_sent.fetch_add(1, std::memory_order_relaxed);
      counters_.flushes_sent.fetch_add(1, std::memory_order_relaxed);
      auto answer = co_await client->Call(address, request, base::Clock::now() + kSendTime);
      if (!answer.ok()) {
        counters_.messages_failed.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      std::lock_guard lock(mu_);
      auto p = peers_.find(node);
      if (p != peers_.end() && p->second.owed == owed) p->second.owed = 0;
    }
  }
}

Invalidations::Counters Invalidations::counters() const {
  auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  Counters c;
  c.messages_sent = get(counters_.messages_sent);
  c.keys_sent = get(counters_.keys_sent);
  c.messages_failed = get(counters_.messages_failed);
  c.flushes_sent = get(counters_.flushes_sent);
  c.messages_received = get(counters_.messages_received);
  c.keys_received = get(counters_.keys_received);
  c.announcements = get(counters_.announcements);
  return c;
}

bool Invalidations::PeerTracks(uint32_t node) const {
  std::lock_guard lock(mu_);
  auto it = peers_.find(node);
  return it != peers_.end() && it->second.tracking;
}

}  // namespace cairn::coordinator
