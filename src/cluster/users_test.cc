#include "cluster/users.h"

#include <gtest/gtest.h>

namespace cairn::cluster {
namespace {

using Kind = UserChange::Kind;

UserChange Change(Kind kind, std::string name) {
  UserChange c;
  c.kind = kind;
  c.name = std::move(name);
  if (kind == Kind::kAdd || kind == Kind::kBootstrap || kind == Kind::kSetPassword) {
    base::SetPassword(&c.credentials, "pw", 1000);
  }
  return c;
}

std::vector<UserDef> Apply(const std::vector<UserDef>& users, const UserChange& c) {
  auto r = PlanUserChange(users, c);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok() || !r->has_value()) return users;
  return **r;
}

TEST(UsersTest, BootstrapOnlyIntoAnEmptyCluster) {
  auto users = Apply({}, Change(Kind::kBootstrap, "root"));
  ASSERT_EQ(users.size(), 1u);
  EXPECT_TRUE(users[0].superuser);
  EXPECT_TRUE(base::VerifyPassword(users[0], "pw"));
  auto again = PlanUserChange(users, Change(Kind::kBootstrap, "other"));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());  // users exist: nothing to do
}

TEST(UsersTest, AddGrantRevokeDelete) {
  auto users = Apply({}, Change(Kind::kBootstrap, "root"));
  users = Apply(users, Change(Kind::kAdd, "alice"));
  EXPECT_EQ(PlanUserChange(users, Change(Kind::kAdd, "alice")).status().code(),
            Code::kAlreadyExists);
  UserChange grant = Change(Kind::kGrant, "alice");
  grant.keyspace = "orders";
  grant.permissions = base::kPermRead | base::kPermWrite;
  users = Apply(users, grant);
  ASSERT_EQ(users[1].grants.size(), 1u);
  EXPECT_EQ(users[1].PermissionsOn("orders"), base::kPermRead | base::kPermWrite);
  UserChange revoke = Change(Kind::kRevoke, "alice");
  revoke.keyspace = "orders";
  revoke.permissions = base::kPermWrite;
  users = Apply(users, revoke);
  EXPECT_EQ(users[1].PermissionsOn("orders"), base::kPermRead);
  revoke.permissions = base::kPermRead;
  users = Apply(users, revoke);
  EXPECT_TRUE(users[1].grants.empty());  // an empty grant goes away

  UserChange bad = grant;
  bad.keyspace = "no spaces";
  EXPECT_EQ(PlanUserChange(users, bad).status().code(), Code::kInvalidArgument);
  bad = grant;
  bad.permissions = 0;
  EXPECT_EQ(PlanUserChange(users, bad).status().code(), Code::kInvalidArgument);

  users = Apply(users, Change(Kind::kDelete, "alice"));
  EXPECT_EQ(users.size(), 1u);
  EXPECT_EQ(PlanUserChange(users, Change(Kind::kDelete, "alice")).status().code(), Code::kNotFound);
}

TEST(UsersTest, TheLastSuperuserStays) {
  auto users = Apply({}, Change(Kind::kBootstrap, "root"));
  EXPECT_EQ(PlanUserChange(users, Change(Kind::kDelete, "root")).status().code(),
            Code::kFailedPrecondition);
  EXPECT_EQ(PlanUserChange(users, Change(Kind::kDisable, "root")).status().code(),
            Code::kFailedPrecondition);
  UserChange demote = Change(Kind::kSetSuperuser, "root");
  EXPECT_EQ(PlanUserChange(users, demote).status().code(), Code::kFailedPrecondition);
  UserChange add = Change(Kind::kAdd, "root2");
  add.superuser = true;
  users = Apply(users, add);
  users = Apply(users, Change(Kind::kDelete, "root"));
  EXPECT_EQ(users.size(), 1u);
}

TEST(UsersTest, RoundTripThroughTheTopologyState) {
  auto users = Apply({}, Change(Kind::kBootstrap, "root"));
  UserChange add = Change(Kind::kAdd, "alice");
  users = Apply(users, add);
  UserChange token = Change(Kind::kAddToken, "alice");
  token.token_digest = base::TokenDigest("t");
  users = Apply(users, token);
  internode::TopologyState state;
  state.set_epoch(7);
  internode::TopologyState next = WithUsers(state, users);
  EXPECT_EQ(next.epoch(), 7u);
  EXPECT_EQ(UsersOf(next), (std::vector<UserDef>{users[1], users[0]}));  // by name
  auto table = UserTableOf(next);
  ASSERT_NE(table->Find("alice"), nullptr);
  EXPECT_EQ(table->by_token.at(base::TokenDigest("t")), "alice");
  EXPECT_EQ(UsersOf(WithoutUser(next, "alice")).size(), 1u);
  // A new password: a new salt.
  UserChange password = Change(Kind::kSetPassword, "alice");
  auto changed = Apply(users, password);
  EXPECT_NE(changed[1].salt, users[1].salt);
}

}  // namespace
}  // namespace cairn::cluster
