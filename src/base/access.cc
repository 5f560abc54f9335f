#include "base/access.h"

#include <fstream>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <boost/asio/post.hpp>

#include "base/async.h"

namespace cairn::base {
namespace {

constexpr size_t kSaltBytes = 16;
constexpr size_t kHashBytes = 32;
// The cache forgets everything when it holds this many verified pairs (a bound, not an LRU: a
// full cache costs each user one slow hash again).
constexpr size_t kMaxCachedLogins = 10'000;

const Status& BadLogin() {
  static const Status* s =
      new Status(Status::Unauthenticated("invalid username-password pair or user is disabled"));
  return *s;
}

}  // namespace

uint32_t UserDef::PermissionsOn(std::string_view keyspace) const {
  if (superuser) return kAllPermissions;
  uint32_t bits = 0;
  for (const UserGrant& g : grants) {
    if (g.keyspace == kAnyKeyspace || g.keyspace == keyspace) bits |= g.permissions;
  }
  if (bits & kPermAdmin) bits |= kPermRead | kPermWrite;
  return bits;
}

std::string PermissionText(uint32_t bits) {
  std::string out;
  auto add = [&](uint32_t bit, std::string_view name) {
    if (!(bits & bit)) return;
    if (!out.empty()) out += ',';
    out += name;
  };
  add(kPermRead, "read");
  add(kPermWrite, "write");
  add(kPermAdmin, "admin");
  return out.empty() ? "none" : out;
}

Result<uint32_t> ParsePermissions(std::string_view text) {
  uint32_t bits = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view word = text.substr(start, end - start);
    if (word == "read") {
      bits |= kPermRead;
    } else if (word == "write") {
      bits |= kPermWrite;
    } else if (word == "admin") {
      bits |= kPermAdmin;
    } else if (word == "all") {
      bits |= kAllPermissions;
    } else {
      return Status::InvalidArgument(
          fmt::format("unknown permission '{}': use read, write, admin or all", word));
    }
    start = end + 1;
  }
  return bits;
}

Status ValidateUserName(std::string_view name) {
  if (name.empty() || name.size() > 64) {
    return Status::InvalidArgument("a user name has 1 to 64 characters");
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.' || c == '@';
    if (!ok) {
      return Status::InvalidArgument(
          "a user name holds only letters, digits, '_', '-', '.' and '@'");
    }
  }
  return Status::Ok();
}

Status ValidatePassword(std::string_view password) {
  if (password.empty()) return Status::InvalidArgument("a password may not be empty");
  if (password.size() > 1024) return Status::InvalidArgument("a password has at most 1024 bytes");
  return Status::Ok();
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    // Without randomness no salt or token is safe: a node must not go on.
    std::abort();
  }
  return out;
}

std::string HashPassword(std::string_view password, std::string_view salt, uint32_t iterations) {
  std::string out(kHashBytes, '\0');
  const int ok =
      PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                        static_cast<int>(kHashBytes), reinterpret_cast<unsigned char*>(out.data()));
  if (ok != 1) out.clear();  // never equal to a stored hash
  return out;
}

void SetPassword(UserDef* user, std::string_view password, uint32_t iterations) {
  user->salt = RandomBytes(kSaltBytes);
  user->iterations = iterations;
  user->password_hash = HashPassword(password, user->salt, iterations);
}

bool VerifyPassword(const UserDef& user, std::string_view password) {
  if (user.password_hash.size() != kHashBytes || user.iterations == 0) return false;
  const std::string hash = HashPassword(password, user.salt, user.iterations);
  return hash.size() == kHashBytes &&
         CRYPTO_memcmp(hash.data(), user.password_hash.data(), kHashBytes) == 0;
}

std::string NewToken() {
  const std::string bytes = RandomBytes(32);
  std::string out = "cairn_";
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

std::string TokenDigest(std::string_view token) {
  std::string out(SHA256_DIGEST_LENGTH, '\0');
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(),
         reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

Result<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) {
    return Status::InvalidArgument(fmt::format("cannot read a secret from '{}'", path));
  }
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  if (line.empty()) return Status::InvalidArgument(fmt::format("'{}' holds no secret", path));
  return line;
}

std::shared_ptr<const UserTable> UserTable::Make(std::vector<UserDef> users) {
  auto table = std::make_shared<UserTable>();
  for (UserDef& u : users) {
    for (const std::string& digest : u.token_digests) table->by_token[digest] = u.name;
    std::string name = u.name;
    table->by_name.emplace(std::move(name), std::move(u));
  }
  return table;
}

const UserDef* UserTable::Find(std::string_view name) const {
  auto it = by_name.find(std::string(name));
  return it == by_name.end() ? nullptr : &it->second;
}

AccessControl::AccessControl(std::function<std::shared_ptr<const UserTable>()> users)
    : users_(std::move(users)), cache_secret_(RandomBytes(32)) {}

AccessControl::~AccessControl() { hashing_.join(); }

std::shared_ptr<const UserTable> AccessControl::users() const {
  auto table = users_ ? users_() : nullptr;
  if (!table) {
    static const auto* empty = new std::shared_ptr<const UserTable>(UserTable::Make({}));
    return *empty;
  }
  return table;
}

std::string AccessControl::CacheKey(std::string_view user, std::string_view password) const {
  // user, a separator no user name holds, then the password.
  std::string message;
  message.reserve(user.size() + 1 + password.size());
  message.append(user);
  message.push_back('\0');
  message.append(password);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), cache_secret_.data(), static_cast<int>(cache_secret_.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
  OPENSSL_cleanse(message.data(), message.size());
  return std::string(reinterpret_cast<const char*>(mac), len);
}

void AccessControl::Remember(const std::string& key, const UserDef& user) {
  std::lock_guard lock(mu_);
  if (verified_.size() >= kMaxCachedLogins) verified_.clear();
  verified_[key] = user.password_hash;
}

std::optional<Result<std::string>> AccessControl::LoginCached(std::string_view user,
                                                              std::string_view password) {
  auto table = users();
  const UserDef* u = table->Find(user);
  if (u == nullptr || u->disabled || u->password_hash.empty()) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    return Result<std::string>(BadLogin());
  }
  const std::string key = CacheKey(user, password);
  std::lock_guard lock(mu_);
  auto it = verified_.find(key);
  if (it != verified_.end() && it->second == u->password_hash) return Result<std::string>(u->name);
  return std::nullopt;
}

asio::awaitable<Result<std::string>> AccessControl::Login(std::string user, std::string password) {
  if (auto cached = LoginCached(user, password)) co_return std::move(*cached);
  auto table = users();
  const UserDef* u = table->Find(user);
  if (u == nullptr) co_return BadLogin();
  // The slow hash runs on the hashing thread, with its own copies: the wait may be cancelled.
  bool verified = co_await AwaitCallback<bool>(
      [&](auto done) {
        asio::post(hashing_, [table, u, password, done] { done(VerifyPassword(*u, password)); });
      },
      false);
  if (!verified) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    co_return BadLogin();
  }
  Remember(CacheKey(user, password), *u);
  co_return u->name;
}

Result<std::string> AccessControl::LoginToken(std::string_view token) const {
  auto table = users();
  auto it = table->by_token.find(TokenDigest(token));
  const UserDef* u = it == table->by_token.end() ? nullptr : table->Find(it->second);
  if (u == nullptr || u->disabled) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    return Status::Unauthenticated("invalid or revoked token");
  }
  return u->name;
}

Status AccessControl::CheckLoggedIn(std::string_view user) const {
  if (user.empty()) {
    if (users()->by_name.empty()) {
      return Status::Unauthenticated(
          "authentication is on and no user exists yet: start a node with "
          "--auth-bootstrap-file to create the first one");
    }
    return Status::Unauthenticated("authentication required: log in first");
  }
  auto table = users();
  const UserDef* u = table->Find(user);
  if (u == nullptr || u->disabled) {
    return Status::Unauthenticated(
        fmt::format("user '{}' no longer exists or is disabled: log in again", user));
  }
  return Status::Ok();
}

Status AccessControl::Check(std::string_view user, std::string_view keyspace,
                            uint32_t permission) const {
  if (user.empty()) return CheckLoggedIn(user);
  auto table = users();
  const UserDef* u = table->Find(user);
  if (u == nullptr || u->disabled) return CheckLoggedIn(user);
  if ((u->PermissionsOn(keyspace) & permission) == permission) return Status::Ok();
  if (keyspace == kAnyKeyspace) {
    return Status::PermissionDenied(fmt::format(
        "user '{}' has no {} permission on every keyspace (\"*\"), which this request needs", user,
        PermissionText(permission)));
  }
  return Status::PermissionDenied(fmt::format("user '{}' has no {} permission on keyspace '{}'",
                                              user, PermissionText(permission), keyspace));
}

bool AccessControl::IsSuperuser(std::string_view user) const {
  auto table = users();
  const UserDef* u = table->Find(user);
  return u != nullptr && !u->disabled && u->superuser;
}

void AccessControl::Collect(metrics::Exposition& out) const {
  out.Single("cairn_auth_failures_total",
             "Failed logins and refused tokens since start (--auth; no names are recorded)",
             metrics::Type::kCounter, static_cast<double>(failures()));
}

}  // namespace cairn::base
