// Users, passwords and permissions (docs/security.md): plain data for the layers that keep users
// (cluster: in the topology state, replicated like the schema) and the checks every front door
// makes with it when the node runs with --auth.
//
// A user is its own role: it holds grants (a keyspace name, or "*" for every keyspace, with
// read / write / admin bits) or is a superuser. Passwords are stored as PBKDF2-HMAC-SHA256 with a
// random 16-byte salt and the iteration count beside them; bearer tokens as their SHA-256 digest.
// Neither a password nor a token is ever stored, logged or put in an error message.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include "base/metrics.h"
#include "cairn/status.h"

namespace cairn::base {

// Permission bits of a grant. ADMIN on a keyspace includes READ and WRITE on it.
enum Permission : uint32_t {
  kPermRead = 1,
  kPermWrite = 2,
  kPermAdmin = 4,
};
inline constexpr uint32_t kAllPermissions = kPermRead | kPermWrite | kPermAdmin;
// The keyspace name of a grant on every keyspace (and of cluster-wide administration).
inline constexpr std::string_view kAnyKeyspace = "*";

// PBKDF2 iterations of new passwords: about 21 ms of one core here (docs/security.md).
inline constexpr uint32_t kDefaultPasswordIterations = 100'000;

struct UserGrant {
  std::string keyspace;  // a keyspace name or "*"
  uint32_t permissions = 0;

  friend bool operator==(const UserGrant&, const UserGrant&) = default;
};

struct UserDef {
  std::string name;
  std::string salt;           // 16 random bytes
  std::string password_hash;  // PBKDF2-HMAC-SHA256, 32 bytes; empty: no password login
  uint32_t iterations = 0;
  bool superuser = false;
  bool disabled = false;
  std::vector<UserGrant> grants;           // at most one per keyspace name
  std::vector<std::string> token_digests;  // SHA-256 of each bearer token

  // The permission bits the user holds on `keyspace` (its grants on it and on "*"; ADMIN
  // implies READ and WRITE; a superuser holds all).
  uint32_t PermissionsOn(std::string_view keyspace) const;

  friend bool operator==(const UserDef&, const UserDef&) = default;
};

// One change of one user. Whatever is slow or random (the password's hash, a token) is made
// before planning: `credentials` holds the new salt, hash and iterations for kAdd, kBootstrap and
// kSetPassword; `token_digest` the new token's digest for kAddToken.
struct UserChange {
  enum class Kind {
    kAdd,
    kBootstrap,  // kAdd of a superuser, only while the cluster has no user at all
    kDelete,
    kGrant,
    kRevoke,
    kSetPassword,
    kEnable,
    kDisable,
    kAddToken,
    kClearTokens,
    kSetSuperuser,
  };
  Kind kind = Kind::kAdd;
  std::string name;
  bool superuser = false;  // kAdd, kSetSuperuser
  std::string keyspace;    // kGrant, kRevoke: a keyspace name or "*"
  uint32_t permissions = 0;
  UserDef credentials;
  std::string token_digest;
};

// "read,write,admin" style text of permission bits ("none" for 0).
std::string PermissionText(uint32_t bits);
// Parses "read", "write", "admin", "all", or several joined by ','. INVALID_ARGUMENT otherwise.
Result<uint32_t> ParsePermissions(std::string_view text);
// INVALID_ARGUMENT unless `name` is 1-64 letters, digits, '_', '-', '.' or '@'.
Status ValidateUserName(std::string_view name);
// INVALID_ARGUMENT for an empty password or one over 1 KiB.
Status ValidatePassword(std::string_view password);

// `n` bytes from OpenSSL's CSPRNG.
std::string RandomBytes(size_t n);
// PBKDF2-HMAC-SHA256 of `password` with `salt`: 32 bytes. Slow on purpose.
std::string HashPassword(std::string_view password, std::string_view salt, uint32_t iterations);
// Gives `user` a new salt and the hash of `password` (slow: call it off the reactors).
void SetPassword(UserDef* user, std::string_view password,
                 uint32_t iterations = kDefaultPasswordIterations);
// Whether `password` is the user's (slow; constant-time comparison of the hashes).
bool VerifyPassword(const UserDef& user, std::string_view password);
// A new bearer token (256 random bits, as 64 hex digits after "cairn_") and its digest.
std::string NewToken();
std::string TokenDigest(std::string_view token);  // SHA-256, 32 bytes

// Reads a secret from a file (a password, or "user:password"): its first line, without the line
// end. INVALID_ARGUMENT when it cannot be read or is empty; the message names the file only.
Result<std::string> ReadSecretFile(const std::string& path);

// The users of one topology epoch, indexed: immutable once built.
struct UserTable {
  std::unordered_map<std::string, UserDef> by_name;
  std::unordered_map<std::string, std::string> by_token;  // token digest -> user name

  static std::shared_ptr<const UserTable> Make(std::vector<UserDef> users);
  const UserDef* Find(std::string_view name) const;
};

// The checks of a node running with --auth, shared by every front door: logins (with a cache,
// so that HTTP Basic, which sends the password with every request, does not pay the slow hash
// each time) and permission checks against the users of the node's newest topology epoch (a
// revoked grant or a deleted user takes effect on the next request, also on connections logged
// in before the change).
// Thread safety: every method may be called from any thread.
class AccessControl {
 public:
  // `users` returns the current users (null or empty: none yet). `metrics` (may be null) gets
  // cairn_auth_failures_total.
  explicit AccessControl(std::function<std::shared_ptr<const UserTable>()> users);
  ~AccessControl();

  // Verifies `user`'s `password`: the user's name on success, else UNAUTHENTICATED (the message
  // never says whether the user exists). A verification not in the cache hashes on a thread of
  // its own, never on the caller's reactor.
  boost::asio::awaitable<Result<std::string>> Login(std::string user, std::string password);
  // Login() answered from the cache alone: nullopt when it would have to hash.
  std::optional<Result<std::string>> LoginCached(std::string_view user, std::string_view password);
  // The user a bearer token belongs to, or UNAUTHENTICATED.
  Result<std::string> LoginToken(std::string_view token) const;

  // OK when `user` (logged in; empty: nobody) holds `permission` on `keyspace` ("*": the cluster
  // as a whole); UNAUTHENTICATED when nobody is logged in or the user no longer exists or is
  // disabled; PERMISSION_DENIED otherwise.
  Status Check(std::string_view user, std::string_view keyspace, uint32_t permission) const;
  // OK when `user` is logged in and still exists (requests that need no permission).
  Status CheckLoggedIn(std::string_view user) const;
  // Whether `user` exists and is a superuser.
  bool IsSuperuser(std::string_view user) const;

  std::shared_ptr<const UserTable> users() const;
  // Failed logins since start (cairn_auth_failures_total).
  uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }
  void Collect(metrics::Exposition& out) const;

 private:
  // The cache key of a (user, password) pair: HMAC-SHA256 under a key drawn at start, so that
  // the cache holds nothing from which a password could be found.
  std::string CacheKey(std::string_view user, std::string_view password) const;
  // Remembers that the pair verified against `user`'s current hash.
  void Remember(const std::string& key, const UserDef& user);

  // Constant after construction.
  const std::function<std::shared_ptr<const UserTable>()> users_;
  std::string cache_secret_;
  boost::asio::thread_pool hashing_{1};

  mutable std::atomic<uint64_t> failures_{0};
  mutable std::mutex mu_;
  // Cache key -> the password hash it verified against: valid while the user's hash is that one
  // (a new password, or a user deleted and added again, gets a new salt and so a new hash).
  std::unordered_map<std::string, std::string> verified_;  // guarded by mu_
};

}  // namespace cairn::base
