#include "cluster/topology.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "base/hash.h"
#include "cluster/schema.h"
#include "cluster/topology_state.h"
#include "proto/internode.pb.h"

namespace cairn::cluster {
namespace {

constexpr std::string_view kMembershipKey = "members";

bool ValidLabel(std::string_view s) {
  if (s.empty() || s.size() > 48) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

}  // namespace

uint64_t MembershipFingerprint(std::vector<std::string> peers, uint32_t partition_bits) {
  std::sort(peers.begin(), peers.end());
  std::string text = fmt::format("partitions={};", partition_bits);
  for (const auto& p : peers) text += p + ";";
  return base::Hash64(text);
}

uint64_t MembershipFingerprint(const ClusterConfig& config) {
  if (!config.join.empty()) return 0;  // a joining node: the cluster's membership decides
  if (config.standalone) return MembershipFingerprint({"standalone"}, config.partition_bits);
  return MembershipFingerprint(config.peers, config.partition_bits);
}

Status ValidateConfig(const ClusterConfig& config) {
  if (config.peers.empty()) return Status::InvalidArgument("--peers is empty");
  std::set<std::string> seen;
  for (const auto& p : config.peers) {
    if (!seen.insert(p).second) {
      return Status::InvalidArgument(fmt::format("--peers lists {} twice", p));
    }
  }
  if (!seen.contains(config.self_address)) {
    return Status::InvalidArgument(
        fmt::format("--peers must list this node's own address {} (the same list on every node)",
                    config.self_address));
  }
  if (!ValidLabel(config.dc)) {
    return Status::InvalidArgument(fmt::format("invalid --dc '{}'", config.dc));
  }
  if (!ValidLabel(config.rack)) {
    return Status::InvalidArgument(fmt::format("invalid --rack '{}'", config.rack));
  }
  return Status::Ok();
}

Result<std::shared_ptr<const Topology>> Topology::Make(std::vector<Member> members, uint32_t self,
                                                       uint32_t partition_bits,
                                                       uint64_t fingerprint, uint64_t epoch) {
  std::set<uint32_t> ids;
  for (const Member& m : members) {
    if (!ids.insert(m.node_id).second) {
      return Status::InvalidArgument(fmt::format(
          "two members have node id {}: give each node its own --node-id (or let it generate one)",
          m.node_id));
    }
  }
  TopologyState state = FormationState(members, partition_bits, fingerprint, {});
  state.set_epoch(epoch);
  return FromState(std::move(state), self);
}

Result<std::shared_ptr<const Topology>> Topology::FromState(TopologyState state, uint32_t self) {
  auto topology = std::make_shared<Topology>();
  for (const internode::TopologyMember& m : state.members()) {
    if (m.state() == internode::LEFT) continue;
    topology->by_id.emplace(m.info().node_id(), MemberOf(m));
  }
  const Member* me = topology->Find(self);
  if (me == nullptr) return Status::InvalidArgument("this node is not a member of the cluster");
  topology->self = self;
  topology->local_dc = me->dc;
  topology->fingerprint = state.formation_fingerprint();
  topology->epoch = state.epoch();
  topology->fence = state.fence();
  auto base = PartitionMap::Compute(BaseMembers(state), state.partition_bits());
  if (!base.ok()) return base.status();
  if (!state.has_transition()) {
    topology->map = std::move(*base);
  } else {
    auto target = PartitionMap::Compute(TargetMembers(state), state.partition_bits());
    if (!target.ok()) return target.status();
    topology->base = std::make_shared<const PartitionMap>(*base);
    topology->target = std::make_shared<const PartitionMap>(*target);
    topology->stage = state.transition().stage();
    switch (topology->stage) {
      case internode::WRITE_BOTH_READ_OLD:
        topology->map = std::move(*base);
        topology->also_write = std::move(*target);
        break;
      case internode::WRITE_BOTH_READ_NEW:
        topology->map = std::move(*target);
        topology->also_write = std::move(*base);
        break;
      case internode::ROLLBACK:
        topology->map = std::move(*base);
        break;
      default:  // USE_NEW, CLEANUP
        topology->map = std::move(*target);
        break;
    }
  }
  topology->splits = SplitCounters::Of(state);
  topology->state = std::make_shared<const TopologyState>(std::move(state));
  return std::shared_ptr<const Topology>(std::move(topology));
}

Result<std::optional<StoredMembership>> LoadMembership(storage::Engine& engine) {
  auto bytes = engine.GetMeta(kMembershipKey);
  if (!bytes.ok()) return bytes.status();
  if (!bytes->has_value()) return std::optional<StoredMembership>();
  internode::Membership m;
  if (!m.ParseFromString(**bytes)) return Status::Internal("corrupt membership record");
  StoredMembership out;
  out.fingerprint = m.fingerprint();
  out.epoch = m.epoch();
  for (const auto& n : m.members()) {
    out.members.push_back(Member{n.node_id(), n.address(), n.dc(), n.rack()});
  }
  return std::optional<StoredMembership>(std::move(out));
}

Status SaveMembership(storage::Engine& engine, const StoredMembership& membership) {
  internode::Membership m;
  m.set_fingerprint(membership.fingerprint);
  m.set_epoch(membership.epoch);
  for (const Member& member : membership.members) {
    auto* n = m.add_members();
    n->set_node_id(member.node_id);
    n->set_address(member.address);
    n->set_dc(member.dc);
    n->set_rack(member.rack);
  }
  return engine.WriteMeta({{std::string(kMembershipKey), m.SerializeAsString()}});
}

}  // namespace cairn::cluster
