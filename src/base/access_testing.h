// For tests of the front doors' permission checks: one user per kind of grant on keyspace
// "orders", so that a table of (user, request) -> code covers every permission.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/access.h"

namespace cairn::base::testing {

// "none" (no grant), "reader", "writer" and "ks-admin" (read, write, admin on "orders"),
// "admin" (admin on every keyspace) and "root" (a superuser).
inline std::shared_ptr<const UserTable> PermissionTestUsers() {
  std::vector<UserDef> users;
  auto add = [&](std::string name, std::string keyspace, uint32_t bits, bool super = false) {
    UserDef u;
    u.name = std::move(name);
    u.superuser = super;
    if (bits != 0) u.grants.push_back({std::move(keyspace), bits});
    users.push_back(std::move(u));
  };
  add("none", "", 0);
  add("reader", "orders", kPermRead);
  add("writer", "orders", kPermWrite);
  add("ks-admin", "orders", kPermAdmin);
  add("admin", "*", kPermAdmin);
  add("root", "", 0, true);
  return UserTable::Make(std::move(users));
}

}  // namespace cairn::base::testing
