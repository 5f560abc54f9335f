#include "cluster/users.h"

#include <algorithm>

#include <fmt/format.h>

#include "cluster/schema.h"

namespace cairn::cluster {
namespace {

using Kind = UserChange::Kind;

bool EnabledSuperuser(const UserDef& u) { return u.superuser && !u.disabled; }

}  // namespace

void ToRecord(const UserDef& user, internode::UserRecord* out) {
  out->set_name(user.name);
  out->set_salt(user.salt);
  out->set_password_hash(user.password_hash);
  out->set_iterations(user.iterations);
  out->set_superuser(user.superuser);
  out->set_disabled(user.disabled);
  for (const base::UserGrant& g : user.grants) {
    internode::UserGrant* grant = out->add_grants();
    grant->set_keyspace(g.keyspace);
    grant->set_permissions(g.permissions);
  }
  for (const std::string& d : user.token_digests) out->add_token_digests(d);
}

UserDef FromRecord(const internode::UserRecord& record) {
  UserDef u;
  u.name = record.name();
  u.salt = record.salt();
  u.password_hash = record.password_hash();
  u.iterations = record.iterations();
  u.superuser = record.superuser();
  u.disabled = record.disabled();
  for (const internode::UserGrant& g : record.grants()) {
    u.grants.push_back({g.keyspace(), g.permissions() & base::kAllPermissions});
  }
  for (const std::string& d : record.token_digests()) u.token_digests.push_back(d);
  return u;
}

std::vector<UserDef> UsersOf(const internode::TopologyState& state) {
  std::vector<UserDef> out;
  out.reserve(state.users_size());
  for (const internode::UserRecord& r : state.users()) out.push_back(FromRecord(r));
  return out;
}

std::shared_ptr<const base::UserTable> UserTableOf(const internode::TopologyState& state) {
  return base::UserTable::Make(UsersOf(state));
}

internode::TopologyState WithUsers(const internode::TopologyState& state,
                                   const std::vector<UserDef>& users) {
  internode::TopologyState next = state;
  next.clear_users();
  std::vector<const UserDef*> sorted;
  for (const UserDef& u : users) sorted.push_back(&u);
  std::sort(sorted.begin(), sorted.end(),
            [](const UserDef* a, const UserDef* b) { return a->name < b->name; });
  for (const UserDef* u : sorted) ToRecord(*u, next.add_users());
  return next;
}

internode::TopologyState WithUser(const internode::TopologyState& state, const UserDef& user) {
  std::vector<UserDef> users = UsersOf(state);
  std::erase_if(users, [&](const UserDef& u) { return u.name == user.name; });
  users.push_back(user);
  return WithUsers(state, users);
}

internode::TopologyState WithoutUser(const internode::TopologyState& state, std::string_view name) {
  std::vector<UserDef> users = UsersOf(state);
  std::erase_if(users, [&](const UserDef& u) { return u.name == name; });
  return WithUsers(state, users);
}

Result<std::optional<std::vector<UserDef>>> PlanUserChange(const std::vector<UserDef>& users,
                                                           const UserChange& change) {
  if (Status s = base::ValidateUserName(change.name); !s.ok()) return s;
  std::vector<UserDef> next = users;
  auto it = std::find_if(next.begin(), next.end(),
                         [&](const UserDef& u) { return u.name == change.name; });
  const bool exists = it != next.end();

  if (change.kind == Kind::kBootstrap) {
    if (!users.empty()) return std::optional<std::vector<UserDef>>();
  }
  if (change.kind == Kind::kAdd || change.kind == Kind::kBootstrap) {
    if (exists) {
      return Status::AlreadyExists(fmt::format("user '{}' already exists", change.name));
    }
    if (change.credentials.password_hash.empty()) {
      return Status::InvalidArgument("a new user needs a password");
    }
    UserDef u;
    u.name = change.name;
    u.salt = change.credentials.salt;
    u.password_hash = change.credentials.password_hash;
    u.iterations = change.credentials.iterations;
    u.superuser = change.kind == Kind::kBootstrap || change.superuser;
    next.push_back(std::move(u));
    return std::optional(std::move(next));
  }
  if (!exists) return Status::NotFound(fmt::format("user '{}' does not exist", change.name));
  UserDef& u = *it;

  // Whether, after the change, an enabled superuser other than this user remains.
  auto another_superuser = [&] {
    return std::any_of(users.begin(), users.end(), [&](const UserDef& o) {
      return o.name != change.name && EnabledSuperuser(o);
    });
  };
  auto last_superuser = [&] {
    return Status::FailedPrecondition(
        fmt::format("user '{}' is the last enabled superuser: make another one first", u.name));
  };

  switch (change.kind) {
    case Kind::kAdd:
    case Kind::kBootstrap:
      break;  // above
    case Kind::kDelete:
      if (EnabledSuperuser(u) && !another_superuser()) return last_superuser();
      next.erase(it);
      break;
    case Kind::kGrant:
    case Kind::kRevoke: {
      if (change.keyspace != base::kAnyKeyspace) {
        if (Status s = ValidateKeyspaceName(change.keyspace); !s.ok()) return s;
      }
      if (change.permissions == 0 || (change.permissions & ~base::kAllPermissions) != 0) {
        return Status::InvalidArgument("name the permissions: read, write, admin or all");
      }
      auto g = std::find_if(u.grants.begin(), u.grants.end(), [&](const base::UserGrant& g) {
        return g.keyspace == change.keyspace;
      });
      if (change.kind == Kind::kGrant) {
        if (g == u.grants.end()) {
          u.grants.push_back({change.keyspace, change.permissions});
        } else {
          g->permissions |= change.permissions;
        }
      } else if (g != u.grants.end()) {
        g->permissions &= ~change.permissions;
        if (g->permissions == 0) u.grants.erase(g);
      }
      std::sort(u.grants.begin(), u.grants.end(),
                [](const base::UserGrant& a, const base::UserGrant& b) {
                  return a.keyspace < b.keyspace;
                });
      break;
    }
    case Kind::kSetPassword:
      if (change.credentials.password_hash.empty()) {
        return Status::InvalidArgument("a new password is needed");
      }
      u.salt = change.credentials.salt;
      u.password_hash = change.credentials.password_hash;
      u.iterations = change.credentials.iterations;
      break;
    case Kind::kEnable:
      u.disabled = false;
      break;
    case Kind::kDisable:
      if (EnabledSuperuser(u) && !another_superuser()) return last_superuser();
      u.disabled = true;
      break;
    case Kind::kAddToken:
      if (change.token_digest.empty()) return Status::InvalidArgument("no token to add");
      if (u.token_digests.size() >= 16) {
        return Status::FailedPrecondition(
            fmt::format("user '{}' holds 16 tokens: clear them before issuing more", u.name));
      }
      u.token_digests.push_back(change.token_digest);
      break;
    case Kind::kClearTokens:
      u.token_digests.clear();
      break;
    case Kind::kSetSuperuser:
      if (!change.superuser && EnabledSuperuser(u) && !another_superuser()) {
        return last_superuser();
      }
      u.superuser = change.superuser;
      break;
  }
  return std::optional(std::move(next));
}

}  // namespace cairn::cluster
