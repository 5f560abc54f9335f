#include "cluster/gossiper.h"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include "base/async.h"

namespace cairn::cluster {
namespace {

using base::kNoThrow;
constexpr std::string_view kMismatchTag = "membership mismatch";
constexpr std::string_view kTopologyKey = "topology";
constexpr std::string_view kFenceKey = "topology_fence";

bool Newer(const internode::NodeState& a, const internode::NodeState& b) {
  return std::make_pair(a.generation(), a.heartbeat()) >
         std::make_pair(b.generation(), b.heartbeat());
}

}  // namespace

Gossiper::Gossiper(ClusterConfig config, NodeIdentity identity, GossipOptions options,
                   storage::Engine* engine, Schema* schema, base::HybridClock* clock,
                   asio::any_io_executor executor, asio::any_io_executor blocking,
                   InternodeClient* client)
    : config_(std::move(config)),
      identity_(identity),
      options_(options),
      fingerprint_(MembershipFingerprint(config_)),
      generation_(clock->physical().NowMillis()),
      engine_(engine),
      schema_(schema),
      clock_(clock),
      executor_(executor),
      blocking_(std::move(blocking)),
      client_(client),
      timer_(executor),
      rng_(uint64_t{identity.node_id} * 0x9e3779b97f4a7c15ull ^ generation_) {
  internode::NodeState& self = states_[config_.self_address];
  self.mutable_info()->set_node_id(identity_.node_id);
  self.mutable_info()->set_address(config_.self_address);
  self.mutable_info()->set_dc(config_.dc);
  self.mutable_info()->set_rack(config_.rack);
  self.set_generation(generation_);
  self.set_membership_fingerprint(fingerprint_);
  up_.insert(identity_.node_id);
  LivenessChangedLocked();
  for (const auto& peer : config_.peers) AddDetectorLocked(peer);
  for (const auto& seed : config_.join) AddDetectorLocked(seed);
}

void Gossiper::AddDetectorLocked(const std::string& address) {
  if (address == config_.self_address || detectors_.contains(address)) return;
  PhiAccrualDetector::Options d;
  d.threshold = options_.phi_threshold;
  d.initial_interval = options_.interval;
  d.min_mean = options_.interval / 2;
  detectors_.emplace(address, PhiAccrualDetector(d));
}

void Gossiper::SyncDetectorsLocked() {
  // Once a member, gossip goes to the members of the topology (the --peers and --join lists
  // were only how to find them): those that left drop out, those that joined come in.
  if (!state_) return;
  std::unordered_set<std::string> members;
  for (const internode::TopologyMember& m : state_->members()) {
    if (m.state() == internode::LEFT) continue;
    members.insert(m.info().address());
    AddDetectorLocked(m.info().address());
  }
  for (auto it = detectors_.begin(); it != detectors_.end();) {
    if (members.contains(it->first)) {
      ++it;
    } else {
      up_addresses_.erase(it->first);
      it = detectors_.erase(it);
    }
  }
}

Status Gossiper::Init() {
  if (Status s = ValidateConfig(config_); !s.ok()) return s;
  // Each start is a new generation, greater than the last even if the clock went back (peers
  // ignore states of a generation older than the one they know).
  auto last = engine_->GetMeta("gossip_generation");
  if (!last.ok()) return last.status();
  uint64_t previous = 0;
  if (last->has_value()) previous = std::strtoull((*last)->c_str(), nullptr, 10);
  generation_ = std::max(previous + 1, clock_->physical().NowMillis());
  if (Status s = engine_->WriteMeta({{"gossip_generation", std::to_string(generation_)}});
      !s.ok()) {
    return s;
  }
  {
    std::lock_guard lock(mu_);
    states_[config_.self_address].set_generation(generation_);
  }
  if (auto fence = engine_->GetMeta(kFenceKey); fence.ok() && fence->has_value()) {
    fence_.store(std::strtoull((*fence)->c_str(), nullptr, 10));
  }

  std::optional<TopologyState> stored;
  if (auto bytes = engine_->GetMeta(kTopologyKey); !bytes.ok()) {
    return bytes.status();
  } else if (bytes->has_value()) {
    stored.emplace();
    if (!stored->ParseFromString(**bytes)) return Status::Internal("corrupt topology record");
  } else {
    // A data directory of a version before topology epochs: its formed membership and
    // keyspaces make the first epoch.
    auto membership = LoadMembership(*engine_);
    if (!membership.ok()) return membership.status();
    if (membership->has_value()) {
      std::vector<KeyspaceDef> keyspaces = schema_->Records();
      if (auto def = schema_->Find(kDefaultKeyspace)) keyspaces.push_back(*def);
      stored = FormationState((*membership)->members, identity_.partition_bits,
                              (*membership)->fingerprint, keyspaces);
      stored->set_epoch(std::max<uint64_t>(1, (*membership)->epoch));
    }
  }

  if (!stored) {
    if (!config_.join.empty() || config_.peers.size() > 1) {
      return Status::Ok();  // a new node: the cluster forms (or takes it in) by gossip
    }
    // A cluster of one node forms at once, before the node serves anything.
    std::vector<KeyspaceDef> keyspaces;
    if (auto def = schema_->Find(kDefaultKeyspace)) keyspaces.push_back(*def);
    auto adopted = Adopt(
        FormationState({Member{identity_.node_id, config_.self_address, config_.dc, config_.rack}},
                       identity_.partition_bits, fingerprint_, keyspaces));
    return adopted.ok() ? Status::Ok() : adopted.status();
  }

  TopologyState& s = *stored;
  if (config_.standalone && s.members_size() == 1 &&
      s.members(0).info().node_id() == identity_.node_id &&
      s.members(0).info().address() != config_.self_address) {
    // A node on its own may move to another address: follow it.
    s.mutable_members(0)->mutable_info()->set_address(config_.self_address);
  }
  const internode::TopologyMember* me = FindMember(s, identity_.node_id);
  if (me == nullptr || me->state() == internode::LEFT) {
    return Status::FailedPrecondition(fmt::format(
        "node {} {} the cluster; start a new node with an empty data directory to join again",
        identity_.node_id, me == nullptr ? "is not a member of" : "has left"));
  }
  if (config_.join.empty() && s.formation_fingerprint() != fingerprint_) {
    // --peers only names where to find the cluster once it formed, but a list that is neither
    // the one it formed from nor its members now is a mistake worth stopping for.
    std::vector<std::string> now;
    for (const internode::TopologyMember& m : s.members()) {
      if (m.state() != internode::LEFT) now.push_back(m.info().address());
    }
    if (MembershipFingerprint(now, identity_.partition_bits) != fingerprint_) {
      std::sort(now.begin(), now.end());
      return Status::FailedPrecondition(fmt::format(
          "this data directory belongs to a cluster whose members are {} ({} partitions); start "
          "the node with that --peers list (or with --join and any member)",
          fmt::join(now, ","), uint32_t{1} << s.partition_bits()));
    }
  }
  if (me->info().address() != config_.self_address || me->info().dc() != config_.dc ||
      me->info().rack() != config_.rack) {
    return Status::FailedPrecondition(fmt::format(
        "this data directory belongs to the member at {} in dc {} rack {}; a node's address, dc "
        "and rack cannot change",
        me->info().address(), me->info().dc(), me->info().rack()));
  }
  // Restored as it was: not "newer" than anything, so install it directly.
  auto topology = Topology::FromState(s, identity_.node_id);
  if (!topology.ok()) return topology.status();
  if (Status persisted = engine_->WriteMeta({{std::string(kTopologyKey), s.SerializeAsString()}});
      !persisted.ok()) {
    return persisted;
  }
  std::lock_guard lock(mu_);
  state_ = (*topology)->state;
  topology_ = *topology;
  epoch_.store(s.epoch(), std::memory_order_release);
  fence_.store(std::max(fence_.load(), s.fence()), std::memory_order_release);
  states_[config_.self_address].set_topology_epoch(s.epoch());
  SyncDetectorsLocked();
  for (const internode::TopologyMember& m : s.members()) {
    if (m.info().address() == config_.self_address || m.state() == internode::LEFT) continue;
    internode::NodeState& peer = states_[m.info().address()];  // known, not heard from yet: DOWN
    *peer.mutable_info() = m.info();
    peer.set_membership_fingerprint(fingerprint_);
  }
  return Status::Ok();
}

Result<bool> Gossiper::Adopt(const TopologyState& state) {
  std::lock_guard adopt(adopt_mu_);
  if (state.epoch() <= epoch()) return false;
  auto topology = Topology::FromState(state, identity_.node_id);
  if (!topology.ok()) {
    // Not (or no longer) a member: remember the state so that a joining node knows the cluster,
    // but publish no topology.
    const internode::TopologyMember* me = FindMember(state, identity_.node_id);
    if (me != nullptr && me->state() != internode::LEFT) return topology.status();
  }
  if (Status s = engine_->WriteMeta({{std::string(kTopologyKey), state.SerializeAsString()}});
      !s.ok()) {
    return s;
  }
  // The keyspaces of the epoch: new ones appear, dropped ones lose their data here.
  if (Status s = schema_->Sync(KeyspacesOf(state)); !s.ok()) {
    spdlog::error("applying the keyspaces of topology epoch {}: {}", state.epoch(), s.ToString());
  }
  std::shared_ptr<const Topology> published;
  bool formed_now = false;
  bool left_now = false;
  {
    std::lock_guard lock(mu_);
    formed_now = topology_ == nullptr && topology.ok();
    // A member until now, and no longer one.
    left_now = topology_ != nullptr && !topology.ok();
    state_ = std::make_shared<const TopologyState>(state);
    if (topology.ok()) topology_ = *topology;
    published = topology_;
    epoch_.store(state.epoch(), std::memory_order_release);
    fence_.store(std::max(fence_.load(), state.fence()), std::memory_order_release);
    states_[config_.self_address].set_topology_epoch(state.epoch());
    SyncDetectorsLocked();
    const auto now = Clock::now();
    std::unordered_map<uint32_t, Clock::time_point> unheard;
    for (const internode::TopologyMember& m : state.members()) {
      const uint32_t id = m.info().node_id();
      if (m.state() != internode::JOINING || heard_.contains(id)) continue;
      auto known = unheard_joiners_.find(id);
      unheard[id] = known == unheard_joiners_.end() ? now : known->second;
    }
    unheard_joiners_ = std::move(unheard);
    LivenessChangedLocked();
  }
  spdlog::info("topology epoch {}: {}", state.epoch(), Describe(state));
  if (formed_now && on_formed_) on_formed_(published);
  if (published && on_topology_) on_topology_(published);
  if (left_now) {
    spdlog::warn("node {} has left the cluster at topology epoch {}", identity_.node_id,
                 state.epoch());
    if (on_left_) on_left_();
  }
  return true;
}

void Gossiper::AdoptLater(TopologyState state) {
  if (state.epoch() <= epoch()) return;
  asio::post(blocking_, [this, state = std::move(state)] {
    if (auto r = Adopt(state); !r.ok()) {
      spdlog::error("cannot adopt topology epoch {}: {}", state.epoch(), r.status().ToString());
    }
  });
}

std::shared_ptr<const TopologyState> Gossiper::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

Status Gossiper::PersistFence(uint64_t fence) {
  uint64_t current = fence_.load();
  while (fence > current && !fence_.compare_exchange_weak(current, fence)) {
  }
  return engine_->WriteMeta({{std::string(kFenceKey), std::to_string(fence_.load())}});
}

Result<internode::TopologyResponse> Gossiper::HandleTopology(
    const internode::TopologyRequest& request) {
  if (request.has_state()) {
    auto adopted = Adopt(request.state());
    if (!adopted.ok()) return adopted.status();
  }
  if (request.fence() > 0) {
    if (request.fence() > epoch()) {
      return Status::Unavailable(fmt::format(
          "cannot raise the fence to epoch {}: this node has epoch {}", request.fence(), epoch()));
    }
    if (Status s = PersistFence(request.fence()); !s.ok()) return s;
  }
  internode::TopologyResponse response;
  if (auto s = state()) *response.mutable_state() = *s;
  return response;
}

asio::awaitable<void> Gossiper::Pull(std::string address) {
  internode::Request request;
  request.mutable_topology();
  auto response =
      co_await client_->Call(address, request, base::Clock::now() + std::chrono::seconds(2));
  if (!response.ok()) {
    spdlog::debug("pulling the topology from {}: {}", address, response.status().ToString());
    co_return;
  }
  if (response->topology().has_state()) AdoptLater(response->topology().state());
}

void Gossiper::SetSelfFigures(SelfFigures figures) { figures_ = std::move(figures); }

std::shared_ptr<const Topology> Gossiper::topology() const {
  std::lock_guard lock(mu_);
  return topology_;
}

bool Gossiper::IsUp(uint32_t node_id) const {
  // Every request asks this of each replica, on every reactor: a per-thread copy, refreshed
  // under the lock only when the liveness changed (or another gossiper of the process, as in
  // tests, asked last on this thread), spares the lock and the hash lookups.
  struct Copy {
    const Gossiper* owner = nullptr;
    uint64_t version = 0;
    std::vector<uint32_t> up;  // sorted
    std::vector<std::pair<uint32_t, Clock::time_point>> joiners;
  };
  thread_local Copy copy;
  if (copy.owner != this || copy.version != liveness_version_.load(std::memory_order_acquire)) {
    std::lock_guard lock(mu_);
    copy.owner = this;
    copy.version = liveness_version_.load(std::memory_order_relaxed);
    copy.up.assign(up_.begin(), up_.end());
    std::sort(copy.up.begin(), copy.up.end());
    copy.joiners.assign(unheard_joiners_.begin(), unheard_joiners_.end());
  }
  if (std::binary_search(copy.up.begin(), copy.up.end(), node_id)) return true;
  for (const auto& [id, since] : copy.joiners) {
    if (id == node_id) return Clock::now() - since < kJoinGrace;
  }
  return false;
}

std::optional<internode::NodeState> Gossiper::StateOf(uint32_t node_id) const {
  std::lock_guard lock(mu_);
  for (const auto& [address, s] : states_) {
    if (s.info().node_id() == node_id) return s;
  }
  return std::nullopt;
}

std::string Gossiper::NotFormedReason() const {
  std::lock_guard lock(mu_);
  if (!mismatch_.empty()) return mismatch_;
  if (!config_.join.empty()) {
    return fmt::format("this node is joining the cluster through {}; it serves once it is a member",
                       fmt::join(config_.join, ", "));
  }
  std::vector<std::string> waiting;
  for (const auto& peer : config_.peers) {
    auto it = states_.find(peer);
    if (it == states_.end() || it->second.info().node_id() == 0) waiting.push_back(peer);
  }
  if (waiting.empty()) return "the cluster is forming";
  return fmt::format("the cluster has not formed yet: waiting to hear from {}",
                     fmt::join(waiting, ", "));
}

std::string Gossiper::MismatchMessage() const {
  std::vector<std::string> peers = config_.peers;
  std::sort(peers.begin(), peers.end());
  return fmt::format(
      "{}: the node at {} was started with --peers {} and {} partitions; every node of a cluster "
      "must be started with the same --peers list and partition count (a node that joins an "
      "existing cluster starts with --join)",
      kMismatchTag, config_.self_address, fmt::join(peers, ","), identity_.partitions());
}

internode::GossipRequest Gossiper::MakeRequestLocked(const std::string& to) {
  internode::GossipRequest request;
  request.set_topology_epoch(epoch());
  for (const auto& [address, state] : states_) {
    if (state.generation() != 0 || address == config_.self_address) *request.add_states() = state;
  }
  // A peer that has told us of an older epoch than ours gets ours.
  if (state_) {
    auto it = states_.find(to);
    if (it == states_.end() || it->second.topology_epoch() < state_->epoch()) {
      *request.mutable_topology() = *state_;
    }
  }
  return request;
}

Status Gossiper::MergeLocked(
    const google::protobuf::RepeatedPtrField<internode::NodeState>& states) {
  const auto now = Clock::now();
  const uint64_t wall = clock_->physical().NowMillis();
  for (const internode::NodeState& s : states) {
    const std::string& address = s.info().address();
    if (address == config_.self_address) continue;
    const uint64_t formation = state_ ? state_->formation_fingerprint() : fingerprint_;
    const bool member = topology_ && topology_->Find(s.info().node_id()) != nullptr &&
                        topology_->Find(s.info().node_id())->address == address;
    // Nodes of another cluster (started with another --peers list) are refused; a node started
    // with --join (fingerprint 0) is a guest until an epoch makes it a member, and until it has
    // heard of the cluster's state it takes the states of the cluster it asked to join.
    const bool joining = state_ == nullptr && !config_.join.empty();
    if (!member && !joining && s.membership_fingerprint() != 0 &&
        s.membership_fingerprint() != formation && s.membership_fingerprint() != fingerprint_) {
      return Status::FailedPrecondition(MismatchMessage());
    }
    if (topology_ && !member) {
      // A node at a member's address with another id (its data was wiped) must not pass for
      // that member.
      for (const auto& [id, m] : topology_->by_id) {
        if (m.address == address && s.info().node_id() != id) {
          return Status::FailedPrecondition(fmt::format(
              "{}: the node at {} says it is node {}, but the member there is node {}; a node "
              "whose data directory was lost cannot rejoin under its old address: replace the "
              "old node (cairnd --join SEED --replace {}) or remove it (cairn node remove {})",
              kMismatchTag, address, s.info().node_id(), id, id, id));
        }
      }
    }
    internode::NodeState& known = states_[address];
    if (!Newer(s, known)) continue;
    auto detector = detectors_.find(address);
    // A state heard for the first time (at start-up, or relayed by another node) says nothing
    // about whether its node is alive now: only a heartbeat that advances does.
    const bool advanced = known.generation() != 0;
    if (detector != detectors_.end() && advanced && s.generation() != known.generation()) {
      detector->second.Reset();  // a restart: its downtime is not an interval to learn
    }
    known = s;
    if (detector != detectors_.end() && advanced) detector->second.Heartbeat(now);
    if (base::HybridClock::Millis(s.hlc()) <=
        wall + static_cast<uint64_t>(options_.max_clock_lead.count())) {
      clock_->Observe(s.hlc());
    }
  }
  return Status::Ok();
}

void Gossiper::EvaluateLocked(Clock::time_point now) {
  std::unordered_set<uint32_t> up = {identity_.node_id};
  std::unordered_set<std::string> up_addresses;
  for (const auto& [address, detector] : detectors_) {
    auto it = states_.find(address);
    if (it == states_.end() || it->second.info().node_id() == 0) continue;
    if (detector.has_heartbeat() && detector.Available(now)) {
      up.insert(it->second.info().node_id());
      up_addresses.insert(address);
    }
  }
  for (const auto& address : up_addresses) {
    if (!up_addresses_.contains(address)) {
      spdlog::info("node {} ({}) is UP", states_[address].info().node_id(), address);
      if (on_up_) on_up_(address);
    }
  }
  for (const auto& address : up_addresses_) {
    if (!up_addresses.contains(address)) {
      spdlog::warn("node {} ({}) is DOWN", states_[address].info().node_id(), address);
    }
  }
  // Heard from once: from now on the failure detector judges it.
  bool changed = up != up_;
  for (uint32_t id : up) {
    changed |= unheard_joiners_.erase(id) > 0;
    heard_.insert(id);
  }
  up_ = std::move(up);
  if (changed) LivenessChangedLocked();
  up_addresses_ = std::move(up_addresses);
}

void Gossiper::LivenessChangedLocked() {
  static std::atomic<uint64_t> versions{0};
  liveness_version_.store(versions.fetch_add(1, std::memory_order_relaxed) + 1,
                          std::memory_order_release);
}

std::optional<std::vector<Member>> Gossiper::FormableLocked() const {
  if (!config_.join.empty()) return std::nullopt;  // a joining node never forms a cluster
  std::vector<Member> members;
  for (const auto& peer : config_.peers) {
    auto it = states_.find(peer);
    if (it == states_.end() || it->second.info().node_id() == 0) return std::nullopt;
    const auto& info = it->second.info();
    members.push_back(Member{info.node_id(), info.address(), info.dc(), info.rack()});
  }
  return members;
}

asio::awaitable<void> Gossiper::Form(std::vector<Member> members) {
  std::vector<KeyspaceDef> keyspaces;
  if (auto def = schema_->Find(kDefaultKeyspace)) keyspaces.push_back(*def);
  TopologyState first = FormationState(members, identity_.partition_bits, fingerprint_, keyspaces);
  Result<bool> adopted = co_await base::AwaitCallback<Result<bool>>(
      [&](auto done) { asio::post(blocking_, [this, &first, done] { done(Adopt(first)); }); },
      Status::Timeout("saving the topology", 0));
  if (!adopted.ok()) {
    spdlog::error("cannot form the cluster: {}", adopted.status().ToString());
    if (adopted.status().code() == Code::kInvalidArgument && on_fatal_) {
      on_fatal_(adopted.status());
    }
    forming_ = false;  // try again next round
    co_return;
  }
  spdlog::info("cluster formed: {} nodes, {} partitions", members.size(), identity_.partitions());
}

asio::awaitable<void> Gossiper::Run() {
  if (auto t = topology()) {
    if (on_formed_) on_formed_(t);
    if (on_topology_) on_topology_(t);
  }
  while (!stopping_) {
    const auto now = Clock::now();
    std::vector<std::string> up_peers, other_peers;
    std::optional<std::vector<Member>> formable;
    {
      std::lock_guard lock(mu_);
      internode::NodeState& self = states_[config_.self_address];
      self.set_heartbeat(++heartbeat_);
      self.set_hlc(clock_->Now());
      if (figures_.load_bytes) self.set_load_bytes(figures_.load_bytes());
      if (figures_.dead_bytes) self.set_dead_bytes(figures_.dead_bytes());
      if (figures_.hints) self.set_hints_pending(figures_.hints());
      if (figures_.streaming) figures_.streaming(&self);
      if (figures_.tracking) figures_.tracking(&self);
      EvaluateLocked(now);
      for (const auto& [address, detector] : detectors_) {
        (up_addresses_.contains(address) ? up_peers : other_peers).push_back(address);
      }
      if (!state_ && !forming_) formable = FormableLocked();
    }
    if (formable) {
      forming_ = true;
      co_await Form(std::move(*formable));
    }
    // One random live peer, and now and then one that is down or not heard from yet, so that a
    // node coming back (or starting late) is found without flooding it.
    std::vector<std::string> targets;
    if (!up_peers.empty()) targets.push_back(up_peers[rng_() % up_peers.size()]);
    if (!other_peers.empty() &&
        (up_peers.empty() || rng_() % (up_peers.size() + 1) < other_peers.size())) {
      targets.push_back(other_peers[rng_() % other_peers.size()]);
    }
    for (auto& target : targets) {
      // GossipWith turns every failure into a log line: nothing escapes the detached task.
      asio::co_spawn(executor_, GossipWith(std::move(target)), asio::detached);
    }
    timer_.expires_after(options_.interval);
    co_await timer_.async_wait(kNoThrow);
  }
}

asio::awaitable<void> Gossiper::GossipWith(std::string address) {
  internode::Request request;
  {
    std::lock_guard lock(mu_);
    *request.mutable_gossip() = MakeRequestLocked(address);
  }
  const auto deadline =
      base::Clock::now() +
      std::max<std::chrono::milliseconds>(options_.interval * 2, std::chrono::milliseconds(500));
  auto response = co_await client_->Call(address, request, deadline);
  if (!response.ok()) {
    const Status& s = response.status();
    if (s.code() == Code::kFailedPrecondition) {  // refused: another membership
      {
        std::lock_guard lock(mu_);
        mismatch_ = s.message();
      }
      if (!topology()) {
        spdlog::critical("refusing to join: {} answered: {}", address, s.message());
        if (on_fatal_)
          on_fatal_(Status::FailedPrecondition(
              fmt::format("refusing to join the cluster: {} says: {}", address, s.message())));
      } else {
        spdlog::error("{} disagrees on the membership: {}", address, s.message());
      }
    } else {
      spdlog::debug("gossip with {}: {}", address, s.ToString());
    }
    co_return;
  }
  Status merged;
  {
    std::lock_guard lock(mu_);
    merged = MergeLocked(response->gossip().states());
  }
  if (!merged.ok()) {
    spdlog::error("{} sent states of another membership", address);
    co_return;
  }
  if (response->gossip().has_topology()) AdoptLater(response->gossip().topology());
}

Result<internode::GossipResponse> Gossiper::Handle(const internode::GossipRequest& request) {
  internode::GossipResponse response;
  {
    std::lock_guard lock(mu_);
    if (Status s = MergeLocked(request.states()); !s.ok()) {
      spdlog::warn("refused gossip from a node of another membership");
      return s;
    }
    internode::GossipRequest mine = MakeRequestLocked("");
    response.mutable_states()->Swap(mine.mutable_states());
    // A requester with an older epoch gets ours with the answer.
    if (state_ && !request.has_topology() && request.topology_epoch() < state_->epoch()) {
      *response.mutable_topology() = *state_;
    }
  }
  if (request.has_topology()) AdoptLater(request.topology());
  return response;
}

std::vector<NodeStatus> Gossiper::Nodes() const {
  std::lock_guard lock(mu_);
  std::vector<NodeStatus> out;
  auto add = [&](const std::string& address, const internode::TopologyMember* member) {
    NodeStatus n;
    n.address = address;
    n.self = address == config_.self_address;
    if (auto it = states_.find(address); it != states_.end()) {
      n.node_id = it->second.info().node_id();
      n.dc = it->second.info().dc();
      n.rack = it->second.info().rack();
      n.load_bytes = it->second.load_bytes();
      n.dead_bytes = it->second.dead_bytes();
      n.hints_pending = it->second.hints_pending();
      n.generation = it->second.generation();
      n.tracking = it->second.tracking();
      n.tracking_since = it->second.tracking_since();
      if (state_ && state_->has_transition() &&
          it->second.transition() == state_->transition().id()) {
        n.streams_total = it->second.streams_total();
        n.streams_done = it->second.streams_done();
        n.stream_bytes = it->second.stream_bytes();
        n.stream_chunks = it->second.stream_chunks();
        n.stream_rate = it->second.stream_rate();
        if (it->second.has_streaming()) {
          const internode::StreamingRange& r = it->second.streaming();
          n.streaming =
              base::StreamingRange{r.partition(), r.keyspace(), r.source(), r.chunks(), r.bytes()};
        }
      }
    }
    if (member != nullptr) {
      n.node_id = member->info().node_id();
      n.dc = member->info().dc();
      n.rack = member->info().rack();
      n.state = std::string(StateName(member->state()));
      n.dead = member->dead();
    }
    n.up = n.self || up_addresses_.contains(address);
    out.push_back(std::move(n));
  };
  if (state_) {
    std::vector<const internode::TopologyMember*> members;
    for (const internode::TopologyMember& m : state_->members()) {
      if (m.state() != internode::LEFT) members.push_back(&m);
    }
    std::sort(members.begin(), members.end(), [](const auto* a, const auto* b) {
      return a->info().address() < b->info().address();
    });
    for (const auto* m : members) add(m->info().address(), m);
    return out;
  }
  std::vector<std::string> peers = config_.peers;
  std::sort(peers.begin(), peers.end());
  for (const auto& address : peers) add(address, nullptr);
  return out;
}

void Gossiper::Stop() {
  asio::post(executor_, [this] {
    stopping_ = true;
    timer_.cancel();
  });
}

}  // namespace cairn::cluster
