#include "cluster/topology_state.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "cluster/schema.h"

namespace cairn::cluster {
namespace {

using internode::MemberState;
using internode::TopologyMember;

bool Eligible(const TopologyMember& m) { return m.state() == internode::NORMAL && !m.dead(); }

// The group of the next epoch: the previous group's members that are still NORMAL and alive,
// then the other such members by id, up to kTopologyGroupSize. Keeping the old ones first keeps
// the group stable (every change of it is a change of who decides).
void ChooseGroup(TopologyState* s) {
  std::vector<uint32_t> group;
  for (uint32_t id : s->group()) {
    const TopologyMember* m = FindMember(*s, id);
    if (m != nullptr && Eligible(*m) && group.size() < kTopologyGroupSize) group.push_back(id);
  }
  std::vector<uint32_t> others;
  for (const TopologyMember& m : s->members()) {
    if (Eligible(m) && std::find(group.begin(), group.end(), m.info().node_id()) == group.end()) {
      others.push_back(m.info().node_id());
    }
  }
  std::sort(others.begin(), others.end());
  for (uint32_t id : others) {
    if (group.size() >= kTopologyGroupSize) break;
    group.push_back(id);
  }
  s->clear_group();
  for (uint32_t id : group) s->add_group(id);
}

TopologyState Next(const TopologyState& s) {
  TopologyState next = s;
  next.set_epoch(s.epoch() + 1);
  return next;
}

TopologyMember* MutableMember(TopologyState* s, uint32_t node_id) {
  for (TopologyMember& m : *s->mutable_members()) {
    if (m.info().node_id() == node_id) return &m;
  }
  return nullptr;
}

void SortMembers(TopologyState* s) {
  std::sort(s->mutable_members()->begin(), s->mutable_members()->end(),
            [](const TopologyMember& a, const TopologyMember& b) {
              return a.info().node_id() < b.info().node_id();
            });
}

TopologyMember ToProto(const Member& m, MemberState state) {
  TopologyMember out;
  out.mutable_info()->set_node_id(m.node_id);
  out.mutable_info()->set_address(m.address);
  out.mutable_info()->set_dc(m.dc);
  out.mutable_info()->set_rack(m.rack);
  out.set_placement_id(m.PlacementId());
  out.set_state(state);
  return out;
}

std::vector<uint32_t> NormalIds(const TopologyState& s) {
  std::vector<uint32_t> ids;
  for (const TopologyMember& m : s.members()) {
    if (m.state() == internode::NORMAL) ids.push_back(m.info().node_id());
  }
  return ids;
}

std::vector<Member> MembersOf(const TopologyState& s,
                              const google::protobuf::RepeatedField<uint32_t>& ids) {
  std::vector<Member> out;
  for (uint32_t id : ids) {
    if (const TopologyMember* m = FindMember(s, id)) out.push_back(MemberOf(*m));
  }
  return out;
}

Status NoTransition(const TopologyState& s, std::string_view what) {
  if (!s.has_transition()) return Status::Ok();
  return Status::FailedPrecondition(
      fmt::format("cannot {}: a topology change is in progress ({}); it must finish or be "
                  "cancelled first (cairn node ops, cairn node cancel)",
                  what, Describe(s)));
}

// Whether a join or a leave may merge into the change in progress: only before its first
// barrier, when no member has streamed anything for it, and not into a replacement (which takes
// exactly one dead member's places). Else why not, as NoTransition says it.
Status Mergeable(const TopologyState& s, std::string_view what) {
  if (!s.has_transition() || AcceptsMerges(s)) return Status::Ok();
  return Status::FailedPrecondition(fmt::format(
      "cannot {}: a topology change is in progress ({}) and past the point where another may "
      "join it; it must finish or be cancelled first (cairn node ops, cairn node cancel)",
      what, Describe(s)));
}

// A newcomer's id and address must not be another member's, now or before.
Status CheckNewcomer(const TopologyState& s, const Member& node) {
  for (const TopologyMember& m : s.members()) {
    if (m.info().node_id() == node.node_id) {
      if (m.state() == internode::LEFT) {
        return Status::FailedPrecondition(fmt::format(
            "node {} left the cluster; a node that left must start again with an empty data "
            "directory (a new node id) to rejoin",
            node.node_id));
      }
      return Status::AlreadyExists(
          fmt::format("node {} is already a member ({})", node.node_id, StateName(m.state())));
    }
    if (m.info().address() == node.address && m.state() != internode::LEFT) {
      return Status::FailedPrecondition(
          fmt::format("{} is the address of member {}; remove or replace that node first",
                      node.address, m.info().node_id()));
    }
  }
  if (node.node_id == 0 || node.address.empty() || node.dc.empty() || node.rack.empty()) {
    return Status::InvalidArgument("a joining node needs an id, an address, a dc and a rack");
  }
  return Status::Ok();
}

// `next` (a state with a transition in progress) with its members sorted and its group chosen,
// or why it cannot be.
Result<TopologyState> Checked(TopologyState next) {
  const std::vector<Member> members = TargetMembers(next);
  if (members.empty()) {
    return Status::FailedPrecondition("a cluster keeps at least one node");
  }
  if (Status s = CheckReplication(members, KeyspacesOf(next)); !s.ok()) return s;
  SortMembers(&next);
  ChooseGroup(&next);
  if (next.group().empty()) {
    return Status::FailedPrecondition("no member would be left to decide topology changes");
  }
  return next;
}

Result<TopologyState> StartTransition(TopologyState next, std::vector<uint32_t> base,
                                      std::vector<uint32_t> target, std::string description,
                                      uint64_t now_ms) {
  std::sort(base.begin(), base.end());
  std::sort(target.begin(), target.end());
  internode::Transition* t = next.mutable_transition();
  t->set_id(next.epoch());
  t->set_description(std::move(description));
  for (uint32_t id : base) t->add_base(id);
  for (uint32_t id : target) t->add_target(id);
  t->set_stage(internode::WRITE_BOTH_READ_OLD);
  t->set_started_ms(now_ms);
  t->set_stage_ms(now_ms);
  t->set_stage_epoch(next.epoch());
  return Checked(std::move(next));
}

// Merges a change into the transition of `next` (the state after the change's member edits):
// the same base, `target` as the new target, and a new id and first stage, so that the barrier
// and the streaming are planned for the merged change.
Result<TopologyState> MergeTransition(TopologyState next, std::vector<uint32_t> target,
                                      std::string_view description, uint64_t now_ms) {
  std::sort(target.begin(), target.end());
  internode::Transition* t = next.mutable_transition();
  *t->add_earlier_targets()->mutable_ids() = t->target();
  t->clear_target();
  for (uint32_t id : target) t->add_target(id);
  t->set_id(next.epoch());
  t->set_description(fmt::format("{}, {}", t->description(), description));
  t->set_stage_ms(now_ms);
  t->set_stage_epoch(next.epoch());
  return Checked(std::move(next));
}

}  // namespace

bool AcceptsMerges(const TopologyState& s) {
  if (!s.has_transition()) return false;
  const internode::Transition& t = s.transition();
  for (const TopologyMember& m : s.members()) {
    // A replacement's newcomer takes another member's places.
    if (m.state() == internode::JOINING && m.placement_id() != m.info().node_id()) return false;
  }
  return t.stage() == internode::WRITE_BOTH_READ_OLD && s.fence() < t.stage_epoch();
}

Member MemberOf(const TopologyMember& m) {
  return Member{m.info().node_id(), m.info().address(), m.info().dc(), m.info().rack(),
                m.placement_id() == m.info().node_id() ? 0 : m.placement_id()};
}

const TopologyMember* FindMember(const TopologyState& s, uint32_t node_id) {
  for (const TopologyMember& m : s.members()) {
    if (m.info().node_id() == node_id) return &m;
  }
  return nullptr;
}

std::string_view StateName(MemberState state) {
  switch (state) {
    case internode::NORMAL:
      return "NORMAL";
    case internode::JOINING:
      return "JOINING";
    case internode::LEAVING:
      return "LEAVING";
    case internode::LEFT:
      return "LEFT";
    default:
      return "UNKNOWN";
  }
}

std::string_view StageName(TransitionStage stage) {
  switch (stage) {
    case internode::WRITE_BOTH_READ_OLD:
      return "write-both/read-old";
    case internode::WRITE_BOTH_READ_NEW:
      return "write-both/read-new";
    case internode::USE_NEW:
      return "use-new";
    case internode::CLEANUP:
      return "cleanup";
    case internode::ROLLBACK:
      return "rollback";
    default:
      return "none";
  }
}

std::vector<Member> BaseMembers(const TopologyState& s) {
  if (s.has_transition()) return MembersOf(s, s.transition().base());
  std::vector<Member> out;
  for (const TopologyMember& m : s.members()) {
    if (m.state() == internode::NORMAL) out.push_back(MemberOf(m));
  }
  return out;
}

std::vector<Member> TargetMembers(const TopologyState& s) {
  if (s.has_transition()) return MembersOf(s, s.transition().target());
  return BaseMembers(s);
}

std::vector<std::vector<Member>> EarlierTargetMembers(const TopologyState& s) {
  std::vector<std::vector<Member>> out;
  for (const internode::NodeIds& ids : s.transition().earlier_targets()) {
    out.push_back(MembersOf(s, ids.ids()));
  }
  return out;
}

std::vector<KeyspaceDef> KeyspacesOf(const TopologyState& s) {
  std::vector<KeyspaceDef> out;
  for (const internode::KeyspaceRecord& r : s.keyspaces()) {
    if (auto def = FromRecord(r); def.ok()) out.push_back(std::move(*def));
  }
  return out;
}

TopologyState FormationState(const std::vector<Member>& members, uint32_t partition_bits,
                             uint64_t fingerprint, const std::vector<KeyspaceDef>& keyspaces) {
  TopologyState s;
  s.set_epoch(1);
  s.set_partition_bits(partition_bits);
  s.set_formation_fingerprint(fingerprint);
  for (const Member& m : members) *s.add_members() = ToProto(m, internode::NORMAL);
  for (const KeyspaceDef& def : keyspaces) ToRecord(def, s.add_keyspaces());
  std::sort(s.mutable_keyspaces()->begin(), s.mutable_keyspaces()->end(),
            [](const auto& a, const auto& b) { return a.name() < b.name(); });
  SortMembers(&s);
  ChooseGroup(&s);
  return s;
}

Status CheckReplication(const std::vector<Member>& members,
                        const std::vector<KeyspaceDef>& keyspaces) {
  std::map<std::string, uint32_t> per_dc;
  for (const Member& m : members) ++per_dc[m.dc];
  for (const KeyspaceDef& ks : keyspaces) {
    if (ks.dropped) continue;
    for (const auto& [dc, nodes] : per_dc) {
      const uint32_t rf = ks.ReplicationIn(dc);
      if (rf > nodes) {
        return Status::FailedPrecondition(fmt::format(
            "keyspace '{}' keeps {} replicas in data centre {}, which would have {} node{}; add "
            "nodes first, or lower its replication",
            ks.name, rf, dc, nodes, nodes == 1 ? "" : "s"));
      }
    }
    for (const auto& [dc, rf] : ks.replication) {
      if (dc != kEveryDc && rf > 0 && !per_dc.contains(dc)) {
        return Status::FailedPrecondition(fmt::format(
            "keyspace '{}' keeps {} replicas in data centre {}, which would have no node", ks.name,
            rf, dc));
      }
    }
  }
  return Status::Ok();
}

TopologyState WithKeyspace(const TopologyState& s, const KeyspaceDef& def) {
  TopologyState next = Next(s);
  internode::KeyspaceRecord record;
  ToRecord(def, &record);
  bool replaced = false;
  for (internode::KeyspaceRecord& r : *next.mutable_keyspaces()) {
    if (r.name() == def.name) {
      r = record;
      replaced = true;
    }
  }
  if (!replaced) {
    *next.add_keyspaces() = std::move(record);
    std::sort(next.mutable_keyspaces()->begin(), next.mutable_keyspaces()->end(),
              [](const auto& a, const auto& b) { return a.name() < b.name(); });
  }
  return next;
}

Result<TopologyState> StartJoin(const TopologyState& s, const Member& node, uint64_t now_ms) {
  if (Status st = Mergeable(s, fmt::format("add node {}", node.node_id)); !st.ok()) return st;
  if (Status st = CheckNewcomer(s, node); !st.ok()) return st;
  TopologyState next = Next(s);
  Member joining = node;
  joining.placement_id = 0;
  *next.add_members() = ToProto(joining, internode::JOINING);
  const std::string what = fmt::format("join {} ({})", node.node_id, node.address);
  if (s.has_transition()) {
    std::vector<uint32_t> target(s.transition().target().begin(), s.transition().target().end());
    target.push_back(node.node_id);
    return MergeTransition(std::move(next), std::move(target), what, now_ms);
  }
  std::vector<uint32_t> base = NormalIds(s);
  std::vector<uint32_t> target = base;
  target.push_back(node.node_id);
  return StartTransition(std::move(next), std::move(base), std::move(target), what, now_ms);
}

Result<TopologyState> StartLeave(const TopologyState& s, uint32_t node, bool dead,
                                 uint64_t now_ms) {
  const std::string what = fmt::format("{} node {}", dead ? "remove" : "decommission", node);
  if (Status st = Mergeable(s, what); !st.ok()) return st;
  const TopologyMember* m = FindMember(s, node);
  if (m == nullptr || m->state() == internode::LEFT) {
    return Status::NotFound(fmt::format("node {} is not a member of this cluster", node));
  }
  if (m->state() != internode::NORMAL) {
    return Status::FailedPrecondition(
        fmt::format("cannot {}: it is {}", what, StateName(m->state())));
  }
  TopologyState next = Next(s);
  TopologyMember* leaving = MutableMember(&next, node);
  leaving->set_state(internode::LEAVING);
  leaving->set_dead(dead);
  if (s.has_transition()) {
    std::vector<uint32_t> target;
    for (uint32_t id : s.transition().target()) {
      if (id != node) target.push_back(id);
    }
    return MergeTransition(std::move(next), std::move(target), what, now_ms);
  }
  std::vector<uint32_t> base = NormalIds(s);
  std::vector<uint32_t> target;
  for (uint32_t id : base) {
    if (id != node) target.push_back(id);
  }
  return StartTransition(std::move(next), std::move(base), std::move(target), what, now_ms);
}

Result<TopologyState> StartReplace(const TopologyState& s, uint32_t dead, const Member& with,
                                   uint64_t now_ms) {
  const std::string what =
      fmt::format("replace node {} with {} ({})", dead, with.node_id, with.address);
  if (Status st = NoTransition(s, what); !st.ok()) return st;
  const TopologyMember* old = FindMember(s, dead);
  if (old == nullptr || old->state() != internode::NORMAL) {
    return Status::FailedPrecondition(
        fmt::format("cannot {}: node {} is not a NORMAL member", what, dead));
  }
  if (Status st = CheckNewcomer(s, with); !st.ok()) return st;
  if (with.dc != old->info().dc()) {
    return Status::FailedPrecondition(
        fmt::format("cannot {}: the replacement is in data centre {}, the replaced node in {}",
                    what, with.dc, old->info().dc()));
  }
  TopologyState next = Next(s);
  TopologyMember* leaving = MutableMember(&next, dead);
  leaving->set_state(internode::LEAVING);
  leaving->set_dead(true);
  Member joining = with;
  joining.placement_id = old->placement_id() != 0 ? old->placement_id() : dead;
  *next.add_members() = ToProto(joining, internode::JOINING);
  std::vector<uint32_t> base = NormalIds(s);
  std::vector<uint32_t> target;
  for (uint32_t id : base) {
    if (id != dead) target.push_back(id);
  }
  target.push_back(with.node_id);
  return StartTransition(std::move(next), std::move(base), std::move(target), what, now_ms);
}

Result<TopologyState> Advance(const TopologyState& s, TransitionStage from, TransitionStage to,
                              uint64_t now_ms) {
  if (!s.has_transition() || s.transition().stage() != from) {
    return Status::FailedPrecondition(
        fmt::format("the topology change is not at stage {} (it is {})", StageName(from),
                    s.has_transition() ? StageName(s.transition().stage()) : "none"));
  }
  const bool allowed = (from == internode::WRITE_BOTH_READ_OLD &&
                        (to == internode::WRITE_BOTH_READ_NEW || to == internode::ROLLBACK)) ||
                       (from == internode::WRITE_BOTH_READ_NEW && to == internode::USE_NEW);
  if (!allowed) {
    return Status::FailedPrecondition(
        fmt::format("a topology change cannot go from {} to {}", StageName(from), StageName(to)));
  }
  TopologyState next = Next(s);
  next.mutable_transition()->set_stage(to);
  next.mutable_transition()->set_stage_ms(now_ms);
  next.mutable_transition()->set_stage_epoch(next.epoch());
  return next;
}

TopologyState WithFence(const TopologyState& s, uint64_t fence) {
  TopologyState next = Next(s);
  next.set_fence(std::max(s.fence(), fence));
  return next;
}

Result<TopologyState> Finish(const TopologyState& s, uint64_t /*now_ms*/) {
  if (!s.has_transition()) return Status::FailedPrecondition("no topology change is in progress");
  const TransitionStage stage = s.transition().stage();
  if (stage != internode::USE_NEW && stage != internode::ROLLBACK) {
    return Status::FailedPrecondition(
        fmt::format("the topology change cannot finish at stage {}", StageName(stage)));
  }
  const bool forward = stage == internode::USE_NEW;
  TopologyState next = Next(s);
  next.clear_transition();
  auto* members = next.mutable_members();
  for (int i = 0; i < members->size();) {
    TopologyMember& m = (*members)[i];
    if (m.state() == internode::JOINING) {
      if (forward) {
        m.set_state(internode::NORMAL);
      } else {
        members->DeleteSubrange(i, 1);  // never held data officially: it may try again
        continue;
      }
    } else if (m.state() == internode::LEAVING) {
      if (forward) {
        m.set_state(internode::LEFT);
      } else {
        m.set_state(internode::NORMAL);
        m.set_dead(false);
      }
    }
    ++i;
  }
  ChooseGroup(&next);
  return next;
}

std::vector<uint32_t> BarrierNodes(const TopologyState& s) {
  std::vector<uint32_t> out;
  for (const TopologyMember& m : s.members()) {
    if (m.state() != internode::LEFT && !m.dead()) out.push_back(m.info().node_id());
  }
  return out;
}

std::string Describe(const TopologyState& s) {
  if (!s.has_transition()) return fmt::format("epoch {}, no change in progress", s.epoch());
  return fmt::format("{}, stage {}, since epoch {}", s.transition().description(),
                     StageName(s.transition().stage()), s.transition().id());
}

}  // namespace cairn::cluster
