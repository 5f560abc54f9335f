#include "base/access.h"

#include <chrono>
#include <future>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace cairn::base {
namespace {

namespace asio = boost::asio;

// Few iterations: the tests check the logic, not the cost.
constexpr uint32_t kFast = 1000;

UserDef User(std::string name, std::string password, std::vector<UserGrant> grants = {},
             bool superuser = false) {
  UserDef u;
  u.name = std::move(name);
  u.superuser = superuser;
  u.grants = std::move(grants);
  SetPassword(&u, password, kFast);
  return u;
}

TEST(AccessTest, HashIsSaltedAndVerifies) {
  UserDef a = User("alice", "secret");
  UserDef b = User("bob", "secret");
  EXPECT_EQ(a.salt.size(), 16u);
  EXPECT_EQ(a.password_hash.size(), 32u);
  EXPECT_NE(a.salt, b.salt);
  EXPECT_NE(a.password_hash, b.password_hash);  // same password, different salt
  EXPECT_TRUE(VerifyPassword(a, "secret"));
  EXPECT_FALSE(VerifyPassword(a, "secret "));
  EXPECT_FALSE(VerifyPassword(a, ""));
  UserDef none;
  EXPECT_FALSE(VerifyPassword(none, ""));
}

TEST(AccessTest, KnownPbkdf2Vector) {
  // RFC 7914 section 11: PBKDF2-HMAC-SHA256("passwd", "salt", 1, 64) starts 55 ac 04 6e.
  const std::string h = HashPassword("passwd", "salt", 1);
  ASSERT_EQ(h.size(), 32u);
  EXPECT_EQ(static_cast<unsigned char>(h[0]), 0x55);
  EXPECT_EQ(static_cast<unsigned char>(h[1]), 0xac);
  EXPECT_EQ(static_cast<unsigned char>(h[2]), 0x04);
  EXPECT_EQ(static_cast<unsigned char>(h[3]), 0x6e);
}

TEST(AccessTest, PermissionsOfGrants) {
  UserDef u = User("u", "p", {{"orders", kPermRead}, {"*", kPermWrite}, {"logs", kPermAdmin}});
  EXPECT_EQ(u.PermissionsOn("orders"), kPermRead | kPermWrite);
  EXPECT_EQ(u.PermissionsOn("other"), kPermWrite);
  EXPECT_EQ(u.PermissionsOn("logs"), kAllPermissions);  // admin includes read and write
  UserDef root = User("root", "p", {}, true);
  EXPECT_EQ(root.PermissionsOn("anything"), kAllPermissions);
}

TEST(AccessTest, ParseAndPrintPermissions) {
  EXPECT_EQ(*ParsePermissions("read"), kPermRead);
  EXPECT_EQ(*ParsePermissions("read,write"), kPermRead | kPermWrite);
  EXPECT_EQ(*ParsePermissions("all"), kAllPermissions);
  EXPECT_FALSE(ParsePermissions("rw").ok());
  EXPECT_FALSE(ParsePermissions("").ok());
  EXPECT_EQ(PermissionText(kPermRead | kPermAdmin), "read,admin");
  EXPECT_EQ(PermissionText(0), "none");
}

TEST(AccessTest, UserNames) {
  EXPECT_TRUE(ValidateUserName("alice.smith@example-1_x").ok());
  EXPECT_FALSE(ValidateUserName("").ok());
  EXPECT_FALSE(ValidateUserName("a b").ok());
  EXPECT_FALSE(ValidateUserName("a:b").ok());
  EXPECT_FALSE(ValidateUserName(std::string(65, 'a')).ok());
}

TEST(AccessTest, TokensAreRandomAndDigested) {
  const std::string t1 = NewToken(), t2 = NewToken();
  EXPECT_NE(t1, t2);
  EXPECT_EQ(t1.size(), 6u + 64u);
  EXPECT_EQ(TokenDigest(t1).size(), 32u);
  EXPECT_EQ(TokenDigest(t1), TokenDigest(t1));
  EXPECT_NE(TokenDigest(t1), TokenDigest(t2));
}

struct Fixture {
  std::shared_ptr<const UserTable> table;
  std::mutex mu;
  AccessControl access{[this] {
    std::lock_guard lock(mu);
    return table;
  }};
  void Set(std::vector<UserDef> users) {
    std::lock_guard lock(mu);
    table = UserTable::Make(std::move(users));
  }
  Result<std::string> Login(std::string user, std::string password) {
    asio::io_context io;
    auto f =
        asio::co_spawn(io, access.Login(std::move(user), std::move(password)), asio::use_future);
    io.run();
    return f.get();
  }
};

TEST(AccessTest, LoginVerifiesAndCaches) {
  Fixture f;
  f.Set({User("alice", "secret")});
  EXPECT_FALSE(f.access.LoginCached("alice", "secret").has_value());  // not verified yet
  ASSERT_TRUE(f.Login("alice", "secret").ok());
  auto cached = f.access.LoginCached("alice", "secret");
  ASSERT_TRUE(cached.has_value());
  EXPECT_EQ(**cached, "alice");

  auto bad = f.Login("alice", "wrong");
  EXPECT_EQ(bad.status().code(), Code::kUnauthenticated);
  EXPECT_EQ(bad.status().message().find("wrong"), std::string::npos);
  EXPECT_EQ(f.Login("nobody", "secret").status().code(), Code::kUnauthenticated);
  EXPECT_EQ(f.access.failures(), 2u);
  // Failures are never cached: the pair is hashed again, and fails again.
  EXPECT_FALSE(f.access.LoginCached("alice", "wrong").has_value());
}

TEST(AccessTest, NewPasswordVoidsTheCache) {
  Fixture f;
  f.Set({User("alice", "old")});
  ASSERT_TRUE(f.Login("alice", "old").ok());
  f.Set({User("alice", "new")});  // a new salt and hash
  EXPECT_FALSE(f.access.LoginCached("alice", "old").has_value());
  EXPECT_EQ(f.Login("alice", "old").status().code(), Code::kUnauthenticated);
  EXPECT_TRUE(f.Login("alice", "new").ok());
  // Deleted, then added again with the old password: its cached login from before is void.
  ASSERT_TRUE(f.Login("alice", "new").ok());
  f.Set({});
  EXPECT_EQ(f.Login("alice", "new").status().code(), Code::kUnauthenticated);
}

TEST(AccessTest, DisabledUserCannotLogIn) {
  Fixture f;
  UserDef u = User("alice", "secret");
  f.Set({u});
  ASSERT_TRUE(f.Login("alice", "secret").ok());
  u.disabled = true;
  f.Set({u});
  EXPECT_EQ(f.Login("alice", "secret").status().code(), Code::kUnauthenticated);
  EXPECT_EQ(f.access.CheckLoggedIn("alice").code(), Code::kUnauthenticated);
}

TEST(AccessTest, ChecksFollowTheCurrentGrants) {
  Fixture f;
  EXPECT_NE(f.access.Check("", "default", kPermRead).message().find("--auth-bootstrap-file"),
            std::string::npos);
  UserDef u = User("alice", "p", {{"orders", kPermRead}});
  f.Set({u, User("root", "p", {}, true)});
  EXPECT_TRUE(f.access.Check("alice", "orders", kPermRead).ok());
  EXPECT_EQ(f.access.Check("alice", "orders", kPermWrite).code(), Code::kPermissionDenied);
  EXPECT_EQ(f.access.Check("alice", "default", kPermRead).code(), Code::kPermissionDenied);
  EXPECT_EQ(f.access.Check("alice", "*", kPermAdmin).code(), Code::kPermissionDenied);
  EXPECT_EQ(f.access.Check("", "orders", kPermRead).code(), Code::kUnauthenticated);
  EXPECT_TRUE(f.access.Check("root", "*", kPermAdmin).ok());
  u.grants.clear();
  f.Set({u});
  EXPECT_EQ(f.access.Check("alice", "orders", kPermRead).code(), Code::kPermissionDenied);
  f.Set({});
  EXPECT_EQ(f.access.Check("alice", "orders", kPermRead).code(), Code::kUnauthenticated);
}

TEST(AccessTest, BearerTokens) {
  Fixture f;
  UserDef u = User("alice", "p");
  const std::string token = NewToken();
  u.token_digests.push_back(TokenDigest(token));
  f.Set({u});
  EXPECT_EQ(*f.access.LoginToken(token), "alice");
  EXPECT_EQ(f.access.LoginToken(NewToken()).status().code(), Code::kUnauthenticated);
}

}  // namespace
}  // namespace cairn::base
