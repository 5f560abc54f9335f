#include "cluster/gossiper.h"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "base/async.h"

namespace cairn::cluster {
namespace {

using base::kNoThrow;
constexpr std::string_view kMismatchTag = "membership mismatch";

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
  for (const auto& peer : config_.peers) {
    if (peer != config_.self_address) {
      PhiAccrualDetector::Options d;
      d.threshold = options_.phi_threshold;
      d.initial_interval = options_.interval;
      d.min_mean = options_.interval / 2;
      detectors_.emplace(peer, PhiAccrualDetector(d));
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
  auto stored = LoadMembership(*engine_);
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) {
    if (config_.peers.size() > 1) return Status::Ok();  // a new node: the cluster forms by gossip
    // A cluster of one node forms at once, before the node serves anything.
    StoredMembership alone{
        {Member{identity_.node_id, config_.self_address, config_.dc, config_.rack}},
        fingerprint_,
        1};
    auto topology =
        Topology::Make(alone.members, identity_.node_id, config_.partition_bits, fingerprint_, 1);
    if (!topology.ok()) return topology.status();
    if (Status s = SaveMembership(*engine_, alone); !s.ok()) return s;
    std::lock_guard lock(mu_);
    topology_ = *topology;
    return Status::Ok();
  }
  StoredMembership& m = **stored;
  if (config_.standalone && m.fingerprint == fingerprint_ && m.members.size() == 1 &&
      m.members[0].node_id == identity_.node_id && m.members[0].address != config_.self_address) {
    // A node on its own may move to another address: follow it.
    m.members[0].address = config_.self_address;
    if (Status s = SaveMembership(*engine_, m); !s.ok()) return s;
  }
  std::vector<std::string> addresses;
  for (const Member& member : m.members) addresses.push_back(member.address);
  std::sort(addresses.begin(), addresses.end());
  if (m.fingerprint != fingerprint_) {
    return Status::InvalidArgument(fmt::format(
        "this data directory belongs to a cluster formed with --peers {} and {} partitions; start "
        "the node with that same list",
        fmt::join(addresses, ","), identity_.partitions()));
  }
  auto me = std::find_if(m.members.begin(), m.members.end(),
                         [&](const Member& x) { return x.address == config_.self_address; });
  if (me == m.members.end() || me->node_id != identity_.node_id || me->dc != config_.dc ||
      me->rack != config_.rack) {
    return Status::InvalidArgument(fmt::format(
        "this data directory belongs to the member at {} in dc {} rack {}; a node's address, dc "
        "and rack cannot change",
        me == m.members.end() ? "?" : me->address, me == m.members.end() ? "?" : me->dc,
        me == m.members.end() ? "?" : me->rack));
  }
  auto topology = Topology::Make(m.members, identity_.node_id, identity_.partition_bits,
                                 m.fingerprint, m.epoch);
  if (!topology.ok()) return topology.status();
  std::lock_guard lock(mu_);
  topology_ = *topology;
  for (const Member& member : m.members) {
    if (member.address == config_.self_address) continue;
    internode::NodeState& s = states_[member.address];  // known, not heard from yet: DOWN
    s.mutable_info()->set_node_id(member.node_id);
    s.mutable_info()->set_address(member.address);
    s.mutable_info()->set_dc(member.dc);
    s.mutable_info()->set_rack(member.rack);
    s.set_membership_fingerprint(fingerprint_);
  }
  return Status::Ok();
}

void Gossiper::SetSelfFigures(std::function<uint64_t()> load_bytes,
                              std::function<uint64_t()> hints) {
  load_fn_ = std::move(load_bytes);
  hints_fn_ = std::move(hints);
}

std::shared_ptr<const Topology> Gossiper::topology() const {
  std::lock_guard lock(mu_);
  return topology_;
}

bool Gossiper::IsUp(uint32_t node_id) const {
  std::lock_guard lock(mu_);
  return up_.contains(node_id);
}

std::string Gossiper::NotFormedReason() const {
  std::lock_guard lock(mu_);
  if (!mismatch_.empty()) return mismatch_;
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
      "must be started with the same --peers list and partition count",
      kMismatchTag, config_.self_address, fmt::join(peers, ","), identity_.partitions());
}

internode::GossipRequest Gossiper::MakeRequestLocked() {
  internode::GossipRequest request;
  for (const auto& [address, state] : states_) {
    if (state.generation() != 0 || address == config_.self_address) *request.add_states() = state;
  }
  for (const KeyspaceDef& def : schema_->Records()) ToRecord(def, request.add_keyspaces());
  return request;
}

Status Gossiper::MergeLocked(
    const google::protobuf::RepeatedPtrField<internode::NodeState>& states) {
  const auto now = Clock::now();
  const uint64_t wall = clock_->physical().NowMillis();
  for (const internode::NodeState& s : states) {
    if (s.membership_fingerprint() != fingerprint_) {
      return Status::FailedPrecondition(MismatchMessage());
    }
    const std::string& address = s.info().address();
    if (address == config_.self_address) continue;
    auto detector = detectors_.find(address);
    if (detector == detectors_.end()) continue;  // not a member (cannot happen with equal lists)
    internode::NodeState& known = states_[address];
    if (!Newer(s, known)) continue;
    if (topology_) {
      // After formation the members are fixed: a node at a member's address with another id
      // (its data was wiped) must not join as that member.
      const cluster::Member* member = nullptr;
      for (const auto& [id, m] : topology_->by_id) {
        if (m.address == address) member = &m;
      }
      if (member != nullptr && s.info().node_id() != member->node_id) {
        return Status::FailedPrecondition(fmt::format(
            "{}: the node at {} says it is node {}, but the cluster formed with node {} there; a "
            "node whose data directory was lost cannot rejoin under its old address (replacing "
            "nodes is later work)",
            kMismatchTag, address, s.info().node_id(), member->node_id));
      }
    }
    // A state heard for the first time (at start-up, or relayed by another node) says nothing
    // about whether its node is alive now: only a heartbeat that advances does.
    const bool advanced = known.generation() != 0;
    if (advanced && s.generation() != known.generation()) {
      detector->second.Reset();  // a restart: its downtime is not an interval to learn
    }
    known = s;
    if (advanced) detector->second.Heartbeat(now);
    if (base::HybridClock::Millis(s.hlc()) <=
        wall + static_cast<uint64_t>(options_.max_clock_lead.count())) {
      clock_->Observe(s.hlc());
    }
  }
  return Status::Ok();
}

void Gossiper::MergeSchema(
    const google::protobuf::RepeatedPtrField<internode::KeyspaceRecord>& records) {
  std::vector<KeyspaceDef> defs;
  for (const auto& r : records) {
    auto def = FromRecord(r);
    if (def.ok()) defs.push_back(std::move(*def));
  }
  if (defs.empty() || !schema_->HasNewer(defs)) return;
  asio::post(blocking_, [schema = schema_, defs = std::move(defs)] {
    if (Status s = schema->Merge(defs); !s.ok()) {
      spdlog::error("applying keyspace changes from a peer: {}", s.ToString());
    }
  });
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
    }
  }
  for (const auto& address : up_addresses_) {
    if (!up_addresses.contains(address)) {
      spdlog::warn("node {} ({}) is DOWN", states_[address].info().node_id(), address);
    }
  }
  up_ = std::move(up);
  up_addresses_ = std::move(up_addresses);
}

std::optional<std::vector<Member>> Gossiper::FormableLocked() const {
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
  StoredMembership stored{members, fingerprint_, 1};
  auto topology = Topology::Make(std::move(members), identity_.node_id, identity_.partition_bits,
                                 fingerprint_, 1);
  if (!topology.ok()) {
    if (on_fatal_) on_fatal_(topology.status());
    co_return;
  }
  Status saved = co_await base::AwaitCallback<Status>(
      [&](auto done) {
        asio::post(blocking_, [this, &stored, done] { done(SaveMembership(*engine_, stored)); });
      },
      Status::Timeout("saving the membership", 0));
  if (!saved.ok()) {
    spdlog::error("cannot save the cluster membership: {}", saved.ToString());
    forming_ = false;  // try again next round
    co_return;
  }
  {
    std::lock_guard lock(mu_);
    topology_ = *topology;
  }
  spdlog::info("cluster formed: {} nodes, {} partitions", stored.members.size(),
               identity_.partitions());
  if (on_formed_) on_formed_(*topology);
}

asio::awaitable<void> Gossiper::Run() {
  if (on_formed_) {
    if (auto t = topology()) on_formed_(t);
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
      if (load_fn_) self.set_load_bytes(load_fn_());
      if (hints_fn_) self.set_hints_pending(hints_fn_());
      EvaluateLocked(now);
      for (const auto& [address, detector] : detectors_) {
        (up_addresses_.contains(address) ? up_peers : other_peers).push_back(address);
      }
      if (!topology_ && !forming_) formable = FormableLocked();
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
    *request.mutable_gossip() = MakeRequestLocked();
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
  MergeSchema(response->gossip().keyspaces());
}

Result<internode::GossipResponse> Gossiper::Handle(const internode::GossipRequest& request) {
  internode::GossipResponse response;
  {
    std::lock_guard lock(mu_);
    if (Status s = MergeLocked(request.states()); !s.ok()) {
      spdlog::warn("refused gossip from a node of another membership");
      return s;
    }
    internode::GossipRequest mine = MakeRequestLocked();
    response.mutable_states()->Swap(mine.mutable_states());
    response.mutable_keyspaces()->Swap(mine.mutable_keyspaces());
  }
  MergeSchema(request.keyspaces());
  return response;
}

std::vector<NodeStatus> Gossiper::Nodes() const {
  std::lock_guard lock(mu_);
  std::vector<NodeStatus> out;
  std::vector<std::string> peers = config_.peers;
  std::sort(peers.begin(), peers.end());
  for (const auto& address : peers) {
    NodeStatus n;
    n.address = address;
    n.self = address == config_.self_address;
    if (auto it = states_.find(address); it != states_.end()) {
      n.node_id = it->second.info().node_id();
      n.dc = it->second.info().dc();
      n.rack = it->second.info().rack();
      n.load_bytes = it->second.load_bytes();
      n.hints_pending = it->second.hints_pending();
    }
    n.up = n.self || up_addresses_.contains(address);
    out.push_back(std::move(n));
  }
  return out;
}

void Gossiper::Stop() {
  asio::post(executor_, [this] {
    stopping_ = true;
    timer_.cancel();
  });
}

}  // namespace cairn::cluster
