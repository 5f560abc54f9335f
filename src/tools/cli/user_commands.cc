// user add, del, grant, revoke, list, token, clear-tokens, passwd.
#include "tools/cli/user_commands.h"

#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/access.h"

namespace cairn::tools::cli {
namespace {

// A new password: from --password-file, else asked for twice on the terminal without echo.
Result<std::string> NewPassword(const std::string& password_file) {
  if (!password_file.empty()) return base::ReadSecretFile(password_file);
  if (!isatty(STDIN_FILENO)) {
    return Status::InvalidArgument("give the new password with --password-file FILE");
  }
  auto ask = [](const char* prompt) {
    std::cerr << prompt << std::flush;
    termios old{};
    tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    std::string line;
    std::getline(std::cin, line);
    tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << "\n";
    return line;
  };
  std::string first = ask("New password: ");
  if (first != ask("Again: ")) return Status::InvalidArgument("the passwords differ");
  if (Status s = base::ValidatePassword(first); !s.ok()) return s;
  return first;
}

Json UserJson(const UserInfo& u) {
  Json grants = Json::object();
  for (const auto& [keyspace, bits] : u.grants) grants[keyspace] = base::PermissionText(bits);
  return Json{{"name", u.name},
              {"superuser", u.superuser},
              {"disabled", u.disabled},
              {"grants", grants},
              {"tokens", u.tokens}};
}

std::string UserLine(const UserInfo& u) {
  std::string grants;
  for (const auto& [keyspace, bits] : u.grants) {
    grants +=
        fmt::format("{}{}={}", grants.empty() ? "" : " ", keyspace, base::PermissionText(bits));
  }
  return fmt::format("{}{}{}  {}{}\n", u.name, u.superuser ? " (superuser)" : "",
                     u.disabled ? " (disabled)" : "", grants.empty() ? "-" : grants,
                     u.tokens > 0 ? fmt::format("  tokens={}", u.tokens) : "");
}

int Change(Context& context, UserChange change, std::string_view done) {
  const std::string name = change.name;
  auto r = context.client().ChangeUser(std::move(change));
  if (!r.ok()) return Fail(r.status());
  Json j = r->user ? UserJson(*r->user) : Json{{"name", name}, {"deleted", true}};
  return context.Reply(j, fmt::format("{} user {}\n", done, name));
}

int GrantOrRevoke(Context& context, const Args& args, UserChange::Kind kind) {
  const UserArgs& a = args.users;
  auto bits = base::ParsePermissions(a.permissions);
  if (!bits.ok()) return Reject(bits.status().message());
  UserChange change;
  change.kind = kind;
  change.name = a.name;
  change.keyspace = a.keyspace;
  change.permissions = *bits;
  auto r = context.client().ChangeUser(std::move(change));
  if (!r.ok()) return Fail(r.status());
  if (!r->user) return Fail(Status::Internal("the server did not answer the user"));
  return context.Reply(UserJson(*r->user), UserLine(*r->user));
}

}  // namespace

Result<std::string> LoginPassword(const std::string& password_file) {
  if (!password_file.empty()) return base::ReadSecretFile(password_file);
  if (const char* env = std::getenv("CAIRN_PASSWORD"); env != nullptr && *env != '\0') {
    return std::string(env);
  }
  return Status::InvalidArgument(
      "--user needs a password: --password-file FILE or the CAIRN_PASSWORD environment variable");
}

int UserAdd(Context& context, const Args& args) {
  auto password = NewPassword(args.users.password_file);
  if (!password.ok()) return Reject(password.status().message());
  UserChange change;
  change.kind = UserChange::kAdd;
  change.name = args.users.name;
  change.password = std::move(*password);
  change.superuser = args.users.superuser;
  return Change(context, std::move(change), "created");
}

int UserDel(Context& context, const Args& args) {
  UserChange change;
  change.kind = UserChange::kDelete;
  change.name = args.users.name;
  return Change(context, std::move(change), "deleted");
}

int UserGrant(Context& context, const Args& args) {
  return GrantOrRevoke(context, args, UserChange::kGrant);
}

int UserRevoke(Context& context, const Args& args) {
  return GrantOrRevoke(context, args, UserChange::kRevoke);
}

int UserPasswd(Context& context, const Args& args) {
  auto password = NewPassword(args.users.password_file);
  if (!password.ok()) return Reject(password.status().message());
  UserChange change;
  change.kind = UserChange::kSetPassword;
  change.name = args.users.name;
  change.password = std::move(*password);
  return Change(context, std::move(change), "changed the password of");
}

int UserToken(Context& context, const Args& args) {
  UserChange change;
  change.kind = UserChange::kAddToken;
  change.name = args.users.name;
  auto r = context.client().ChangeUser(std::move(change));
  if (!r.ok()) return Fail(r.status());
  return context.Reply(Json{{"name", args.users.name}, {"token", r->token}}, r->token + "\n");
}

int UserClearTokens(Context& context, const Args& args) {
  UserChange change;
  change.kind = UserChange::kClearTokens;
  change.name = args.users.name;
  return Change(context, std::move(change), "revoked every bearer token of");
}

int UserList(Context& context, const Args&) {
  auto r = context.client().ListUsers();
  if (!r.ok()) return Fail(r.status());
  if (context.json()) {
    Json list = Json::array();
    for (const UserInfo& u : *r) list.push_back(UserJson(u));
    PrintJson(list);
    return kExitOk;
  }
  for (const UserInfo& u : *r) std::cout << UserLine(u);
  return kExitOk;
}

}  // namespace cairn::tools::cli
