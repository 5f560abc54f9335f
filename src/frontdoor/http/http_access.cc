#include "frontdoor/http/http_access.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "frontdoor/http/url.h"

namespace cairn::frontdoor::http {
namespace {

namespace asio = boost::asio;

using base::kAnyKeyspace;
using base::kPermAdmin;
using base::kPermRead;
using base::kPermWrite;

// RFC 4648 base64 (the Basic scheme's), strict enough: nullopt for anything else.
std::optional<std::string> Base64Decode(std::string_view in) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  size_t i = 0;
  for (; i < in.size() && in[i] != '='; ++i) {
    const size_t v = kAlphabet.find(in[i]);
    if (v == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  for (; i < in.size(); ++i) {
    if (in[i] != '=') return std::nullopt;
  }
  return out;
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

// What a route needs: nothing (`open`), a logged-in user (permission 0), or a permission on a
// keyspace ("*": the cluster).
struct Need {
  bool open = false;
  std::string keyspace;
  uint32_t permission = 0;
};

Need NeedOf(std::string_view method, std::string_view path, std::string_view body) {
  const bool read = method == "GET" || method == "HEAD";
  if (path == "/health" || path == "/ready") return {.open = true};
  if (path.starts_with("/v1/kv/")) {
    const std::string_view rest = path.substr(std::string_view("/v1/kv/").size());
    auto keyspace = PercentDecode(rest.substr(0, rest.find('/')), false);
    // An undecodable keyspace is refused by the route itself; only a logged-in user gets there.
    if (!keyspace.ok() || keyspace->empty()) return {};
    return {.keyspace = *keyspace, .permission = read ? kPermRead : kPermWrite};
  }
  if (path == "/v1/keyspaces" || path == "/v1/keyspaces/") {
    if (read) return {};
    // POST: ADMIN on the keyspace it creates (which a grant on "*" gives).
    nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    std::string name;
    if (j.is_object() && j.contains("name") && j["name"].is_string()) {
      name = j["name"].get<std::string>();
    }
    return {.keyspace = name.empty() ? std::string(kAnyKeyspace) : name, .permission = kPermAdmin};
  }
  if (path.starts_with("/v1/keyspaces/")) {
    if (read) return {};
    auto name = PercentDecode(path.substr(std::string_view("/v1/keyspaces/").size()), false);
    return {.keyspace = name.ok() ? *name : std::string(kAnyKeyspace), .permission = kPermAdmin};
  }
  // /v1/hotkeys lists key names of every keyspace (or of the one its query names, which this
  // check does not see): ADMIN on every keyspace. The native request needs only READ on the
  // keyspace it names.
  if (path == "/v1/cluster/cancel" || path == "/v1/cluster/join" || path == "/v1/hotkeys" ||
      path.starts_with("/v1/nodes/") || path.starts_with("/v1/users")) {
    return {.keyspace = std::string(kAnyKeyspace), .permission = kPermAdmin};
  }
  // /metrics, /v1/cluster, /v1/repairs (counts and keyspace names, as /metrics shows background
  // repair), the console: any logged-in user.
  return {};
}

}  // namespace

asio::awaitable<HttpCaller> AuthorizeRequest(base::AccessControl& access, std::string_view method,
                                             std::string_view path, std::string_view authorization,
                                             std::string_view body) {
  const Need need = NeedOf(method, path, body);
  HttpCaller caller;
  if (need.open) co_return caller;
  if (StartsWithIgnoreCase(authorization, "basic ")) {
    auto decoded = Base64Decode(authorization.substr(6));
    const size_t colon = decoded ? decoded->find(':') : std::string::npos;
    if (colon == std::string::npos) {
      caller.status = Status::Unauthenticated("malformed Basic credentials");
      co_return caller;
    }
    auto user = co_await access.Login(decoded->substr(0, colon), decoded->substr(colon + 1));
    if (!user.ok()) {
      caller.status = user.status();
      co_return caller;
    }
    caller.user = std::move(*user);
  } else if (StartsWithIgnoreCase(authorization, "bearer ")) {
    auto user = access.LoginToken(authorization.substr(7));
    if (!user.ok()) {
      caller.status = user.status();
      co_return caller;
    }
    caller.user = std::move(*user);
  }
  caller.status = need.permission == 0 ? access.CheckLoggedIn(caller.user)
                                       : access.Check(caller.user, need.keyspace, need.permission);
  if (method == "POST" && path.starts_with("/v1/users/") && path.ends_with("/tokens")) {
    const std::string self = fmt::format("/v1/users/{}/tokens", caller.user);
    if (caller.status.code() == Code::kPermissionDenied && path == self) {
      caller.status = Status::Ok();  // a token for oneself needs no ADMIN
    } else if (caller.status.ok() && !access.IsSuperuser(caller.user)) {
      // Only a superuser issues tokens for a superuser.
      auto name = PercentDecode(path.substr(10, path.size() - 10 - 7), false);
      if (name.ok() && access.IsSuperuser(*name)) {
        caller.status = Status::PermissionDenied(fmt::format(
            "only a superuser issues tokens for a superuser; '{}' is not one", caller.user));
      }
    }
  }
  co_return caller;
}

bool IsUsersPath(std::string_view path) {
  return path == "/v1/users" || path.starts_with("/v1/users/");
}

asio::awaitable<Result<std::string>> Users(coordinator::Coordinator& coordinator,
                                           std::string_view method, std::string_view path) {
  if (path == "/v1/users") {
    if (method != "GET" && method != "HEAD") {
      co_return Status::InvalidArgument(
          "/v1/users answers GET (users are changed with cairn user)");
    }
    auto table = coordinator.Users();
    std::vector<const base::UserDef*> users;
    for (const auto& [name, u] : table->by_name) users.push_back(&u);
    std::sort(users.begin(), users.end(),
              [](const base::UserDef* a, const base::UserDef* b) { return a->name < b->name; });
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const base::UserDef* u : users) {
      nlohmann::ordered_json grants = nlohmann::ordered_json::object();
      for (const base::UserGrant& g : u->grants)
        grants[g.keyspace] = base::PermissionText(g.permissions);
      list.push_back({{"name", u->name},
                      {"superuser", u->superuser},
                      {"disabled", u->disabled},
                      {"grants", grants},
                      {"tokens", u->token_digests.size()}});
    }
    co_return nlohmann::ordered_json{{"users", list}}.dump();
  }
  const std::string_view rest = path.substr(std::string_view("/v1/users/").size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos || rest.substr(slash) != "/tokens" || method != "POST") {
    co_return Status::NotFound("no such endpoint: POST /v1/users/{name}/tokens issues a token");
  }
  auto name = PercentDecode(rest.substr(0, slash), false);
  if (!name.ok()) co_return name.status();
  base::UserChange change;
  change.kind = base::UserChange::Kind::kAddToken;
  change.name = *name;
  auto r = co_await coordinator.ChangeUser(std::move(change), std::string());
  if (!r.ok()) co_return r.status();
  co_return nlohmann::ordered_json{{"name", *name}, {"token", r->token}}.dump();
}

}  // namespace cairn::frontdoor::http
