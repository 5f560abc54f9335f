#include "cluster/topology_state.h"

#include <algorithm>

#include <gtest/gtest.h>

#include "cluster/schema.h"
#include "tests/support/placement_members.h"

namespace cairn::cluster {
namespace {

using testing::MakeMember;

KeyspaceDef Keyspace(std::string name, uint32_t rf) {
  KeyspaceDef def;
  def.name = std::move(name);
  def.id = 100 + rf;
  def.replication = {{std::string(kEveryDc), rf}};
  return def;
}

std::vector<Member> Members(uint32_t n, uint32_t first = 0) {
  std::vector<Member> out;
  for (uint32_t i = first; i < first + n; ++i)
    out.push_back(MakeMember(i, "dc1", "r" + std::to_string(i % 3)));
  return out;
}

TopologyState Formed(uint32_t n, uint32_t rf = 3) {
  return FormationState(Members(n), 8, 42, {Keyspace("default", rf)});
}

std::vector<uint32_t> Ids(const google::protobuf::RepeatedField<uint32_t>& ids) {
  return {ids.begin(), ids.end()};
}

internode::MemberState StateOf(const TopologyState& s, uint32_t id) {
  const auto* m = FindMember(s, id);
  return m == nullptr ? internode::MEMBER_STATE_UNSPECIFIED : m->state();
}

TEST(TopologyStateTest, FormationIsEpochOneWithEveryMemberNormalAndAGroupOfAtMostFive) {
  const TopologyState s = Formed(7);
  EXPECT_EQ(s.epoch(), 1u);
  EXPECT_EQ(s.members_size(), 7);
  for (const auto& m : s.members()) EXPECT_EQ(m.state(), internode::NORMAL);
  ASSERT_EQ(s.group_size(), 5);
  // The lowest ids, so every node computes the same group.
  std::vector<uint32_t> ids;
  for (const Member& m : Members(7)) ids.push_back(m.node_id);
  std::sort(ids.begin(), ids.end());
  ids.resize(5);
  EXPECT_EQ(Ids(s.group()), ids);
  EXPECT_FALSE(s.has_transition());
  EXPECT_EQ(FormationState(Members(7), 8, 42, {Keyspace("default", 3)}).SerializeAsString(),
            s.SerializeAsString());
}

TEST(TopologyStateTest, JoinAddsAJoiningMemberAndATransitionToTheMapWithIt) {
  const TopologyState s = Formed(3);
  const Member newcomer = MakeMember(9, "dc1", "r0");
  auto next = StartJoin(s, newcomer, 1000);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->epoch(), 2u);
  EXPECT_EQ(StateOf(*next, newcomer.node_id), internode::JOINING);
  ASSERT_TRUE(next->has_transition());
  EXPECT_EQ(next->transition().stage(), internode::WRITE_BOTH_READ_OLD);
  EXPECT_EQ(next->transition().id(), 2u);
  EXPECT_EQ(BaseMembers(*next).size(), 3u);
  EXPECT_EQ(TargetMembers(*next).size(), 4u);
  // A joining node does not decide topology changes until it is NORMAL.
  const auto group = Ids(next->group());
  EXPECT_EQ(std::count(group.begin(), group.end(), newcomer.node_id), 0);
  // Asking again is refused: it is a member already.
  EXPECT_EQ(StartJoin(*next, newcomer, 1000).status().code(), Code::kAlreadyExists);
}

TEST(TopologyStateTest, ChangesMergeIntoOneInProgressOnlyBeforeItsFirstBarrier) {
  const TopologyState four = Formed(4);
  const Member a = MakeMember(9, "dc1", "r0"), b = MakeMember(10, "dc1", "r1");
  auto joining = StartJoin(four, a, 1000);
  ASSERT_TRUE(joining.ok());
  // A second join before the barrier: one transition, from the same base to a target with both.
  auto both = StartJoin(*joining, b, 2000);
  ASSERT_TRUE(both.ok()) << both.status().ToString();
  const internode::Transition& t = both->transition();
  EXPECT_EQ(t.id(), both->epoch());  // a new id: streaming is planned for the merged change
  EXPECT_EQ(t.stage(), internode::WRITE_BOTH_READ_OLD);
  EXPECT_EQ(t.stage_epoch(), both->epoch());
  EXPECT_EQ(t.started_ms(), 1000u);
  EXPECT_EQ(Ids(t.base()), Ids(joining->transition().base()));
  EXPECT_EQ(TargetMembers(*both).size(), 6u);
  EXPECT_EQ(StateOf(*both, a.node_id), internode::JOINING);
  EXPECT_EQ(StateOf(*both, b.node_id), internode::JOINING);
  ASSERT_EQ(t.earlier_targets_size(), 1);
  EXPECT_EQ(Ids(t.earlier_targets(0).ids()), Ids(joining->transition().target()));
  EXPECT_NE(t.description().find("join " + std::to_string(a.node_id)), std::string::npos)
      << t.description();
  EXPECT_NE(t.description().find("join " + std::to_string(b.node_id)), std::string::npos)
      << t.description();
  // A decommission merges too; the target loses the node, the base keeps it.
  const uint32_t leaver = Members(4)[0].node_id;
  auto three = StartLeave(*both, leaver, false, 3000);
  ASSERT_TRUE(three.ok()) << three.status().ToString();
  EXPECT_EQ(StateOf(*three, leaver), internode::LEAVING);
  EXPECT_EQ(TargetMembers(*three).size(), 5u);
  EXPECT_EQ(BaseMembers(*three).size(), 4u);
  EXPECT_EQ(three->transition().earlier_targets_size(), 2);
  // Finishing makes every joiner NORMAL and the leaver LEFT.
  auto read_new = Advance(WithFence(*three, three->epoch()), internode::WRITE_BOTH_READ_OLD,
                          internode::WRITE_BOTH_READ_NEW, 4000);
  ASSERT_TRUE(read_new.ok());
  auto use_new = Advance(*read_new, internode::WRITE_BOTH_READ_NEW, internode::USE_NEW, 5000);
  ASSERT_TRUE(use_new.ok());
  auto done = Finish(*use_new, 6000);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(StateOf(*done, a.node_id), internode::NORMAL);
  EXPECT_EQ(StateOf(*done, b.node_id), internode::NORMAL);
  EXPECT_EQ(StateOf(*done, leaver), internode::LEFT);

  // Once the barrier's fence is up (members may be streaming), changes wait for the next one.
  const TopologyState fenced = WithFence(*joining, joining->transition().stage_epoch());
  auto late = StartJoin(fenced, b, 2000);
  EXPECT_EQ(late.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(late.status().message().find("in progress"), std::string::npos);
  EXPECT_EQ(StartLeave(fenced, leaver, false, 0).status().code(), Code::kFailedPrecondition);
  // So do changes while reads switch or after.
  auto switched =
      Advance(fenced, internode::WRITE_BOTH_READ_OLD, internode::WRITE_BOTH_READ_NEW, 0);
  ASSERT_TRUE(switched.ok());
  EXPECT_EQ(StartJoin(*switched, b, 0).status().code(), Code::kFailedPrecondition);
  // Nothing merges into a replacement (it takes exactly the dead node's places).
  auto replacing = StartReplace(four, leaver, a, 0);
  ASSERT_TRUE(replacing.ok()) << replacing.status().ToString();
  EXPECT_EQ(StartJoin(*replacing, b, 0).status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(StartReplace(*joining, leaver, b, 0).status().code(), Code::kFailedPrecondition);
}

TEST(TopologyStateTest, AMergedLeaveThatWouldDropBelowTheFactorIsRefused) {
  // Four nodes, RF 3: one decommission is fine, a second merged into it is not.
  const TopologyState four = Formed(4, 3);
  auto one = StartLeave(four, Members(4)[0].node_id, false, 0);
  ASSERT_TRUE(one.ok());
  auto two = StartLeave(*one, Members(4)[1].node_id, false, 0);
  EXPECT_EQ(two.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(two.status().message().find("replicas"), std::string::npos) << two.status().message();
}

TEST(TopologyStateTest, NewcomersMayNotTakeAMembersIdOrAddress) {
  const TopologyState s = Formed(3);
  Member same_id = MakeMember(9, "dc1", "r0");
  same_id.node_id = Members(3)[1].node_id;
  EXPECT_EQ(StartJoin(s, same_id, 0).status().code(), Code::kAlreadyExists);
  Member same_address = MakeMember(9, "dc1", "r0");
  same_address.address = Members(3)[1].address;
  EXPECT_EQ(StartJoin(s, same_address, 0).status().code(), Code::kFailedPrecondition);
}

TEST(TopologyStateTest, DecommissionBelowTheReplicationFactorIsRefused) {
  const TopologyState three = Formed(3, 3);
  auto refused = StartLeave(three, Members(3)[0].node_id, false, 0);
  EXPECT_EQ(refused.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("keyspace 'default' keeps 3 replicas"),
            std::string::npos)
      << refused.status().message();

  const TopologyState four = Formed(4, 3);
  const uint32_t leaving = Members(4)[2].node_id;
  auto next = StartLeave(four, leaving, false, 0);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(StateOf(*next, leaving), internode::LEAVING);
  EXPECT_EQ(TargetMembers(*next).size(), 3u);
  const auto group = Ids(next->group());
  EXPECT_EQ(std::count(group.begin(), group.end(), leaving), 0);
  EXPECT_EQ(StartLeave(four, 12345, false, 0).status().code(), Code::kNotFound);
}

TEST(TopologyStateTest, StagesGoForwardOrRollBackFromTheFirstOnly) {
  auto s = StartJoin(Formed(3), MakeMember(9, "dc1", "r0"), 0);
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(Advance(*s, internode::WRITE_BOTH_READ_OLD, internode::USE_NEW, 0).ok());
  EXPECT_FALSE(Advance(*s, internode::WRITE_BOTH_READ_NEW, internode::USE_NEW, 0).ok());
  EXPECT_FALSE(Finish(*s, 0).ok());
  auto read_new = Advance(*s, internode::WRITE_BOTH_READ_OLD, internode::WRITE_BOTH_READ_NEW, 0);
  ASSERT_TRUE(read_new.ok());
  EXPECT_FALSE(Advance(*read_new, internode::WRITE_BOTH_READ_NEW, internode::ROLLBACK, 0).ok());
  auto use_new = Advance(*read_new, internode::WRITE_BOTH_READ_NEW, internode::USE_NEW, 0);
  ASSERT_TRUE(use_new.ok());
  auto done = Finish(*use_new, 0);
  ASSERT_TRUE(done.ok());
  EXPECT_FALSE(done->has_transition());
  EXPECT_EQ(StateOf(*done, MakeMember(9, "dc1", "r0").node_id), internode::NORMAL);
  EXPECT_EQ(done->epoch(), s->epoch() + 3);
}

TEST(TopologyStateTest, RollbackForgetsTheJoinerAndKeepsTheLeaverNormal) {
  const Member newcomer = MakeMember(9, "dc1", "r0");
  auto join = StartJoin(Formed(3), newcomer, 0);
  ASSERT_TRUE(join.ok());
  auto back = Advance(*join, internode::WRITE_BOTH_READ_OLD, internode::ROLLBACK, 0);
  ASSERT_TRUE(back.ok());
  auto done = Finish(*back, 0);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(FindMember(*done, newcomer.node_id), nullptr);  // may ask again
  EXPECT_TRUE(StartJoin(*done, newcomer, 0).ok());

  const uint32_t leaving = Members(4)[1].node_id;
  auto leave = StartLeave(Formed(4), leaving, false, 0);
  ASSERT_TRUE(leave.ok());
  auto undone = Finish(*Advance(*leave, internode::WRITE_BOTH_READ_OLD, internode::ROLLBACK, 0), 0);
  ASSERT_TRUE(undone.ok());
  EXPECT_EQ(StateOf(*undone, leaving), internode::NORMAL);
}

TEST(TopologyStateTest, ALeftNodeNeverComesBackUnderItsId) {
  const uint32_t leaving = Members(4)[3].node_id;
  auto s = StartLeave(Formed(4), leaving, false, 0);
  ASSERT_TRUE(s.ok());
  s = Advance(*s, internode::WRITE_BOTH_READ_OLD, internode::WRITE_BOTH_READ_NEW, 0);
  s = Advance(*s, internode::WRITE_BOTH_READ_NEW, internode::USE_NEW, 0);
  s = Finish(*s, 0);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(StateOf(*s, leaving), internode::LEFT);
  EXPECT_EQ(BaseMembers(*s).size(), 3u);
  auto again = StartJoin(*s, Members(4)[3], 0);
  EXPECT_EQ(again.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(again.status().message().find("left the cluster"), std::string::npos);
  // Its address is free for a new node.
  Member fresh = MakeMember(20, "dc1", "r0");
  fresh.address = Members(4)[3].address;
  EXPECT_TRUE(StartJoin(*s, fresh, 0).ok());
}

// A replacement takes the dead node's placement id, so the target map is the base map with one id
// swapped for the other: exactly the dead node's partitions move, and nothing else.
TEST(TopologyStateTest, AReplacementTakesExactlyTheDeadNodesPlaces) {
  const TopologyState s = Formed(5);
  const uint32_t dead = Members(5)[2].node_id;
  const Member with = MakeMember(30, "dc1", Members(5)[2].rack);
  auto next = StartReplace(s, dead, with, 0);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_TRUE(FindMember(*next, dead)->dead());
  auto base = PartitionMap::Compute(BaseMembers(*next), 8);
  auto target = PartitionMap::Compute(TargetMembers(*next), 8);
  ASSERT_TRUE(base.ok() && target.ok());
  for (uint32_t p = 0; p < base->partitions(); ++p) {
    auto before = base->Preference(p, "dc1");
    auto after = target->Preference(p, "dc1");
    ASSERT_EQ(before.size(), after.size());
    for (size_t i = 0; i < before.size(); ++i) {
      EXPECT_EQ(after[i], before[i] == dead ? with.node_id : before[i]) << "partition " << p;
    }
  }
  EXPECT_EQ(StartReplace(s, dead, MakeMember(31, "dc2", "r0"), 0).status().code(),
            Code::kFailedPrecondition);
}

TEST(TopologyStateTest, BarriersWaitForLiveMembersOnly) {
  const uint32_t dead = Members(5)[0].node_id;
  auto s = StartLeave(Formed(5), dead, /*dead=*/true, 0);
  ASSERT_TRUE(s.ok());
  const auto nodes = BarrierNodes(*s);
  EXPECT_EQ(nodes.size(), 4u);
  EXPECT_EQ(std::count(nodes.begin(), nodes.end(), dead), 0);
}

TEST(TopologyStateTest, KeyspacesAreReplacedByNameAndDropsKept) {
  const TopologyState s = Formed(3);
  KeyspaceDef orders = Keyspace("orders", 2);
  TopologyState with = WithKeyspace(s, orders);
  EXPECT_EQ(with.epoch(), 2u);
  ASSERT_EQ(KeyspacesOf(with).size(), 2u);
  orders.dropped = true;
  TopologyState dropped = WithKeyspace(with, orders);
  auto defs = KeyspacesOf(dropped);
  ASSERT_EQ(defs.size(), 2u);
  EXPECT_TRUE(std::any_of(defs.begin(), defs.end(),
                          [](const KeyspaceDef& d) { return d.name == "orders" && d.dropped; }));
}

TEST(TopologyStateTest, AKeyspaceWhoseFactorNoDataCentreCanHoldBlocksShrinking) {
  TopologyState s = Formed(4, 1);
  s = WithKeyspace(s, Keyspace("wide", 4));
  EXPECT_EQ(StartLeave(s, Members(4)[0].node_id, false, 0).status().code(),
            Code::kFailedPrecondition);
}

}  // namespace
}  // namespace cairn::cluster
