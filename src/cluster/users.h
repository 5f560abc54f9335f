// The users of the cluster (docs/security.md) live in the topology state, beside the keyspaces:
// each change is a topology epoch decided by Paxos and spread by gossip, so every node agrees on
// them. This file holds the conversions to and from the state and the pure planning of a change
// (unit-tested in users_test.cc); coordinator/users.cc commits the changes.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/access.h"
#include "cairn/status.h"
#include "proto/internode.pb.h"

namespace cairn::cluster {

using base::UserDef;

void ToRecord(const UserDef& user, internode::UserRecord* out);
UserDef FromRecord(const internode::UserRecord& record);

// The users of `state`, by name.
std::vector<UserDef> UsersOf(const internode::TopologyState& state);
std::shared_ptr<const base::UserTable> UserTableOf(const internode::TopologyState& state);
// `state` with `user` added or replaced (by name).
internode::TopologyState WithUser(const internode::TopologyState& state, const UserDef& user);
// `state` without user `name`.
internode::TopologyState WithoutUser(const internode::TopologyState& state, std::string_view name);

using base::UserChange;

// The users after `change`, planned on `users` without changing anything: nullopt when there is
// nothing to change (a bootstrap once users exist). INVALID_ARGUMENT for a bad name, keyspace or
// permission; ALREADY_EXISTS for adding a user that exists; NOT_FOUND for changing one that does
// not; FAILED_PRECONDITION for deleting (or demoting, disabling) the last enabled superuser, which
// would leave nobody able to administer users.
Result<std::optional<std::vector<UserDef>>> PlanUserChange(const std::vector<UserDef>& users,
                                                           const UserChange& change);

// `state` with its users replaced by `users`.
internode::TopologyState WithUsers(const internode::TopologyState& state,
                                   const std::vector<UserDef>& users);

}  // namespace cairn::cluster
