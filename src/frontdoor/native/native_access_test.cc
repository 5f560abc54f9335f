#include "frontdoor/native/native_access.h"

#include <gtest/gtest.h>

#include "base/access_testing.h"

namespace cairn::frontdoor::native {
namespace {

using base::kPermAdmin;
using base::kPermRead;
using base::kPermWrite;

// Which permission each native request needs (docs/security.md).
class AuthorizeTest : public ::testing::Test {
 protected:
  AuthorizeTest()
      : table_(base::testing::PermissionTestUsers()), access_([this] { return table_; }) {}

  Code Run(std::string_view user, const wire::Request& request) {
    return Authorize(access_, user, request).code();
  }
  static wire::Request In(std::string keyspace) {
    wire::Request r;
    r.set_keyspace(std::move(keyspace));
    return r;
  }

  std::shared_ptr<const base::UserTable> table_;
  base::AccessControl access_;
};

TEST_F(AuthorizeTest, DataRequestsNeedReadOrWriteOnTheirKeyspace) {
  wire::Request get = In("orders");
  get.mutable_get()->set_key("k");
  wire::Request scan = In("orders");
  scan.mutable_scan();
  wire::Request put = In("orders");
  put.mutable_put()->set_key("k");
  wire::Request cas = In("orders");
  cas.mutable_cas()->set_key("k");
  wire::Request batch_put = In("orders");
  batch_put.mutable_batch_put();
  EXPECT_EQ(Run("reader", get), Code::kOk);
  EXPECT_EQ(Run("reader", scan), Code::kOk);
  EXPECT_EQ(Run("reader", put), Code::kPermissionDenied);
  EXPECT_EQ(Run("writer", put), Code::kOk);
  EXPECT_EQ(Run("writer", cas), Code::kOk);
  EXPECT_EQ(Run("writer", batch_put), Code::kOk);
  EXPECT_EQ(Run("writer", get), Code::kPermissionDenied);
  EXPECT_EQ(Run("ks-admin", get), Code::kOk);  // admin includes read and write
  EXPECT_EQ(Run("none", get), Code::kPermissionDenied);
  EXPECT_EQ(Run("", get), Code::kUnauthenticated);
  wire::Request in_default = In("");
  in_default.mutable_get()->set_key("k");
  EXPECT_EQ(Run("reader", in_default), Code::kPermissionDenied);  // "" is "default"
}

TEST_F(AuthorizeTest, LoginAndPingNeedNobodyAndAdministrationNeedsAdmin) {
  wire::Request login;
  login.mutable_login();
  wire::Request ping;
  ping.mutable_ping();
  wire::Request list;
  list.mutable_keyspace_list();
  wire::Request create;
  create.mutable_keyspace_create()->mutable_keyspace()->set_name("orders");
  wire::Request create_other;
  create_other.mutable_keyspace_create()->mutable_keyspace()->set_name("other");
  wire::Request compact;
  compact.mutable_compact();
  EXPECT_EQ(Run("", login), Code::kOk);
  EXPECT_EQ(Run("", ping), Code::kOk);
  EXPECT_EQ(Run("", list), Code::kUnauthenticated);
  EXPECT_EQ(Run("none", list), Code::kOk);
  EXPECT_EQ(Run("ks-admin", create), Code::kOk);  // admin on the keyspace it creates
  EXPECT_EQ(Run("ks-admin", create_other), Code::kPermissionDenied);
  EXPECT_EQ(Run("ks-admin", compact), Code::kPermissionDenied);
  EXPECT_EQ(Run("admin", compact), Code::kOk);
}

TEST_F(AuthorizeTest, HotKeysOfOneKeyspaceNeedReadOnItAndOfEveryKeyspaceAdmin) {
  // Key names are data.
  wire::Request one = In("orders");
  one.mutable_hot_keys();
  wire::Request all = In("orders");
  all.mutable_hot_keys()->set_all_keyspaces(true);
  EXPECT_EQ(Run("reader", one), Code::kOk);
  EXPECT_EQ(Run("writer", one), Code::kPermissionDenied);
  EXPECT_EQ(Run("none", one), Code::kPermissionDenied);
  EXPECT_EQ(Run("", one), Code::kUnauthenticated);
  EXPECT_EQ(Run("ks-admin", all), Code::kPermissionDenied);
  EXPECT_EQ(Run("admin", all), Code::kOk);
  EXPECT_EQ(Run("root", all), Code::kOk);
}

TEST_F(AuthorizeTest, IncrementsNeedWriteAndSplittingACounterAdmin) {
  wire::Request incr = In("orders");
  incr.mutable_increment()->set_key("k");
  wire::Request split = In("orders");
  split.mutable_split_counter()->set_key("k");
  split.mutable_split_counter()->set_shards(4);
  EXPECT_EQ(Run("writer", incr), Code::kOk);
  EXPECT_EQ(Run("reader", incr), Code::kPermissionDenied);
  EXPECT_EQ(Run("writer", split), Code::kPermissionDenied);
  EXPECT_EQ(Run("ks-admin", split), Code::kOk);
  EXPECT_EQ(Run("", split), Code::kUnauthenticated);
}

TEST_F(AuthorizeTest, OnlyASuperuserMakesOrChangesASuperuser) {
  wire::Request add;
  add.mutable_user_change()->set_kind(wire::UserChangeRequest::ADD);
  add.mutable_user_change()->set_name("new");
  wire::Request add_super = add;
  add_super.mutable_user_change()->set_superuser(true);
  wire::Request reset_root;
  reset_root.mutable_user_change()->set_kind(wire::UserChangeRequest::SET_PASSWORD);
  reset_root.mutable_user_change()->set_name("root");
  EXPECT_EQ(Run("ks-admin", add), Code::kPermissionDenied);
  EXPECT_EQ(Run("admin", add), Code::kOk);
  EXPECT_EQ(Run("admin", add_super), Code::kPermissionDenied);
  EXPECT_EQ(Run("admin", reset_root), Code::kPermissionDenied);
  EXPECT_EQ(Run("root", add_super), Code::kOk);
  EXPECT_EQ(Run("root", reset_root), Code::kOk);
}

}  // namespace
}  // namespace cairn::frontdoor::native
