#include "frontdoor/resp/acl_commands.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/access_testing.h"

namespace cairn::frontdoor::resp {
namespace {

using base::kPermAdmin;
using base::kPermRead;
using base::kPermWrite;

// Which permission each kind of command needs (docs/resp.md, "Users and ACL"): a user per
// permission, and the command asked of each.
class AuthorizeCommandTest : public ::testing::Test {
 protected:
  AuthorizeCommandTest()
      : table_(base::testing::PermissionTestUsers()), access_([this] { return table_; }) {}

  Code Run(std::string_view user, std::vector<std::string> argv,
           std::string_view keyspace = "orders") {
    const CommandSpec* spec = FindCommand(AsciiLower(argv[0]));
    EXPECT_NE(spec, nullptr) << argv[0];
    if (spec == nullptr) return Code::kInternal;
    return AuthorizeCommand(access_, user, *spec, argv, keyspace).code();
  }

  std::shared_ptr<const base::UserTable> table_;
  base::AccessControl access_;
};

TEST_F(AuthorizeCommandTest, ReadsNeedReadAndWritesNeedWriteOnTheConnectionsKeyspace) {
  EXPECT_EQ(Run("reader", {"GET", "k"}), Code::kOk);
  EXPECT_EQ(Run("reader", {"MGET", "a", "b"}), Code::kOk);
  EXPECT_EQ(Run("reader", {"SCAN", "0"}), Code::kOk);
  EXPECT_EQ(Run("reader", {"DBSIZE"}), Code::kOk);
  EXPECT_EQ(Run("reader", {"SET", "k", "v"}), Code::kPermissionDenied);
  EXPECT_EQ(Run("reader", {"INCR", "k"}), Code::kPermissionDenied);
  EXPECT_EQ(Run("reader", {"GET", "k"}, ""), Code::kPermissionDenied);  // "default"
  EXPECT_EQ(Run("writer", {"SET", "k", "v"}), Code::kOk);
  EXPECT_EQ(Run("writer", {"DEL", "k"}), Code::kOk);
  EXPECT_EQ(Run("writer", {"FLUSHDB"}), Code::kOk);
  EXPECT_EQ(Run("writer", {"GET", "k"}), Code::kPermissionDenied);
  EXPECT_EQ(Run("none", {"GET", "k"}), Code::kPermissionDenied);
  EXPECT_EQ(Run("admin", {"GET", "k"}, "anything"), Code::kOk);
  EXPECT_EQ(Run("root", {"SET", "k", "v"}, "anything"), Code::kOk);
}

TEST_F(AuthorizeCommandTest, ConnectionCommandsNeedALoginAndAdministrationNeedsAdmin) {
  EXPECT_EQ(Run("", {"AUTH", "x", "y"}), Code::kOk);
  EXPECT_EQ(Run("", {"HELLO", "3"}), Code::kOk);
  EXPECT_EQ(Run("", {"QUIT"}), Code::kOk);
  EXPECT_EQ(Run("", {"PING"}), Code::kUnauthenticated);
  EXPECT_EQ(Run("", {"GET", "k"}), Code::kUnauthenticated);
  EXPECT_EQ(Run("none", {"PING"}), Code::kOk);
  EXPECT_EQ(Run("none", {"INFO"}), Code::kOk);
  EXPECT_EQ(Run("none", {"CLIENT", "LIST"}), Code::kOk);
  EXPECT_EQ(Run("none", {"CLIENT", "KILL", "ID", "1"}), Code::kPermissionDenied);
  EXPECT_EQ(Run("none", {"ACL", "WHOAMI"}), Code::kOk);
  EXPECT_EQ(Run("none", {"ACL", "LIST"}), Code::kPermissionDenied);
  EXPECT_EQ(Run("admin", {"ACL", "LIST"}), Code::kOk);
  EXPECT_EQ(Run("admin", {"ACL", "SETUSER", "reader", "off"}), Code::kOk);
  // Only a superuser changes a superuser.
  EXPECT_EQ(Run("admin", {"ACL", "SETUSER", "root", ">x"}), Code::kPermissionDenied);
  EXPECT_EQ(Run("admin", {"ACL", "DELUSER", "reader", "root"}), Code::kPermissionDenied);
  EXPECT_EQ(Run("root", {"ACL", "DELUSER", "root"}), Code::kOk);
  EXPECT_EQ(Run("gone", {"GET", "k"}), Code::kUnauthenticated);  // deleted since login
}

TEST(RefusalTextTest, RedisWording) {
  EXPECT_EQ(RefusalText(Status::Unauthenticated("x"), "get"), "NOAUTH Authentication required.");
  EXPECT_EQ(RefusalText(Status::PermissionDenied("user 'a' has no write permission"), "set"),
            "NOPERM this user has no permissions to run the 'set' command: user 'a' has no "
            "write permission");
}

}  // namespace
}  // namespace cairn::frontdoor::resp
