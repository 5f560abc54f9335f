// The cluster's topology as a sequence of epochs (ARCHITECTURE.md section 6): members and their
// states, the keyspaces, the transition in progress and the group whose Paxos decides the next
// epoch. Each epoch is a whole TopologyState (proto/internode.proto), decided once by Paxos among
// the previous epoch's group and spread by gossip; this file holds the pure functions that make
// the next state from the current one, so that every rule about what may change and how is in
// one place and unit-tested (topology_state_test.cc).
//
// A transition moves partitions from the map of its `base` members to the map of its `target`
// members, all moving partitions together through the stages of TransitionStage. Whether a
// stage's preconditions hold (every live member saw it, the new replicas streamed their data) is
// the driver's business (coordinator/topology_driver.h); these functions check only what the
// state itself says.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/model.h"
#include "cairn/status.h"
#include "cluster/placement.h"
#include "proto/internode.pb.h"

namespace cairn::cluster {

using base::KeyspaceDef;
using internode::TopologyState;
using internode::TransitionStage;

// The topology group decides the next epoch by Paxos: up to this many members.
inline constexpr size_t kTopologyGroupSize = 5;

Member MemberOf(const internode::TopologyMember& m);
const internode::TopologyMember* FindMember(const TopologyState& s, uint32_t node_id);
std::string_view StateName(internode::MemberState state);  // "NORMAL", "JOINING", ...
std::string_view StageName(TransitionStage stage);         // "write-both/read-old", ...

// The members of the map partitions are on: every NORMAL member when no transition runs, else
// the transition's base.
std::vector<Member> BaseMembers(const TopologyState& s);
// The members of the map partitions move to (the base when no transition runs).
std::vector<Member> TargetMembers(const TopologyState& s);
// The members of the targets a transition had before changes merged into it, oldest first.
std::vector<std::vector<Member>> EarlierTargetMembers(const TopologyState& s);
// Keyspace definitions, drops included.
std::vector<KeyspaceDef> KeyspacesOf(const TopologyState& s);

// The first epoch of a cluster formed from `members` (every node of --peers, all NORMAL): what
// every node computes alike, so it needs no Paxos.
TopologyState FormationState(const std::vector<Member>& members, uint32_t partition_bits,
                             uint64_t fingerprint, const std::vector<KeyspaceDef>& keyspaces);

// FAILED_PRECONDITION unless every keyspace keeps its replication factor in every data centre
// of `members` (which would otherwise hold fewer replicas than the keyspace asks for).
Status CheckReplication(const std::vector<Member>& members,
                        const std::vector<KeyspaceDef>& keyspaces);

// ---- The changes. Each returns the next epoch's state, or why it cannot be made (nothing is
// changed then). `now_ms` only stamps when things started, for people. ----

// Adds or replaces the definition of keyspace `def.name` (drops are definitions too).
TopologyState WithKeyspace(const TopologyState& s, const KeyspaceDef& def);

// Joins and leaves asked for while a transition is at write-both/read-old and has not passed
// its first barrier (no member has streamed anything for it yet) merge into it: the base stays,
// the target gains or loses the node, the old target is kept in `earlier_targets` (for cleanup),
// and the transition gets a new id and starts its stage again (a new barrier, streaming planned
// for the merged target). So nodes started together join in one change. Later, or into a
// replacement, they are refused until the change finishes.

// Whether the transition of `s` takes joins and leaves merged into it now (false without one).
bool AcceptsMerges(const TopologyState& s);

// A new node joins: it becomes JOINING, and a transition to the map with it starts (or the one
// in progress takes it too, as above). FAILED_PRECONDITION when a transition is running that it
// cannot merge into, or the id or address belongs to another member (or to one that left: ids
// are never reused).
Result<TopologyState> StartJoin(const TopologyState& s, const Member& node, uint64_t now_ms);

// A member leaves: it becomes LEAVING and a transition to the map without it starts (or merges,
// as above). `dead`: it is gone for good (removed, not decommissioned): it is not a streaming
// source and no step waits for it. FAILED_PRECONDITION when a transition is running that it
// cannot merge into, the node is not a NORMAL member, or a keyspace would keep fewer replicas
// than its factor.
Result<TopologyState> StartLeave(const TopologyState& s, uint32_t node, bool dead, uint64_t now_ms);

// `with` takes exactly the places of dead member `dead` (its placement id): `dead` becomes
// LEAVING (dead), `with` JOINING.
Result<TopologyState> StartReplace(const TopologyState& s, uint32_t dead, const Member& with,
                                   uint64_t now_ms);

// The transition moves on from stage `from` to `to` (WRITE_BOTH_READ_OLD -> WRITE_BOTH_READ_NEW
// -> USE_NEW, or WRITE_BOTH_READ_OLD -> ROLLBACK). FAILED_PRECONDITION unless the transition is
// at `from` and the step is one of those.
Result<TopologyState> Advance(const TopologyState& s, TransitionStage from, TransitionStage to,
                              uint64_t now_ms);

// Raises the fence: coordinators with a topology older than `fence` are refused from now on.
TopologyState WithFence(const TopologyState& s, uint64_t fence);

// Ends the transition: from USE_NEW the target map becomes the map (JOINING -> NORMAL, LEAVING
// -> LEFT); from ROLLBACK the base map stays (JOINING members are forgotten, LEAVING -> NORMAL).
Result<TopologyState> Finish(const TopologyState& s, uint64_t now_ms);

// The node ids that must acknowledge an epoch before the fence rises: every member that is not
// LEFT and not dead.
std::vector<uint32_t> BarrierNodes(const TopologyState& s);

// One line for logs and `cairn node ops`.
std::string Describe(const TopologyState& s);

}  // namespace cairn::cluster
