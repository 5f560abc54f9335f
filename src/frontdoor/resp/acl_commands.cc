#include "frontdoor/resp/acl_commands.h"

#include <algorithm>

#include <fmt/format.h>

#include "frontdoor/resp/commands.h"
#include "frontdoor/resp/connection_commands.h"

namespace cairn::frontdoor::resp {
namespace {

using base::kAnyKeyspace;
using base::kPermAdmin;
using base::kPermRead;
using base::kPermWrite;
using Kind = base::UserChange::Kind;

// The categories of ACL CAT, as Cairn maps them onto permissions (docs/resp.md).
constexpr std::string_view kCategories[] = {"read", "write", "admin", "connection"};

std::string Lower(std::string_view s) { return AsciiLower(s); }

// The permission a category names in a SETUSER rule ("read", "write", "admin", "all").
std::optional<uint32_t> CategoryBits(std::string_view category) {
  if (category == "read") return kPermRead;
  if (category == "write") return kPermWrite;
  if (category == "admin") return kPermAdmin;
  if (category == "all") return base::kAllPermissions;
  return std::nullopt;
}

// One line of ACL LIST: "user alice on +@read:orders +@all" (a grant on "*" has no suffix).
std::string AclLine(const base::UserDef& u) {
  std::string line = fmt::format("user {} {}", u.name, u.disabled ? "off" : "on");
  if (u.superuser) return line + " superuser ~* +@all";
  for (const base::UserGrant& g : u.grants) {
    const std::string suffix = g.keyspace == kAnyKeyspace ? "" : ":" + g.keyspace;
    if (g.permissions == base::kAllPermissions) {
      line += fmt::format(" +@all{}", suffix);
      continue;
    }
    for (std::string_view p : {"read", "write", "admin"}) {
      if (g.permissions & *CategoryBits(p)) line += fmt::format(" +@{}{}", p, suffix);
    }
  }
  return line;
}

// A SETUSER rule as an error may show it: never one that may hold a password (Redis's <, #, !
// rules, a mistyped >).
std::string Shown(std::string_view rule) {
  if (!rule.empty() && std::string_view("<>#!").find(rule[0]) != std::string_view::npos) {
    return std::string(1, rule[0]) + "(hidden)";
  }
  return std::string(Shown(rule));
}

std::vector<const base::UserDef*> Sorted(const base::UserTable& table) {
  std::vector<const base::UserDef*> users;
  for (const auto& [name, u] : table.by_name) users.push_back(&u);
  std::sort(users.begin(), users.end(),
            [](const base::UserDef* a, const base::UserDef* b) { return a->name < b->name; });
  return users;
}

}  // namespace

Status AuthorizeCommand(const base::AccessControl& access, std::string_view user,
                        const CommandSpec& spec, const std::vector<std::string>& argv,
                        std::string_view keyspace) {
  if (spec.flags & kFlagNoAuth) return Status::Ok();
  if (keyspace.empty()) keyspace = base::kDefaultKeyspace;
  if (spec.name == "acl" && argv.size() > 1) {
    const std::string sub = Lower(argv[1]);
    if (sub == "whoami" || sub == "cat" || sub == "help") return access.CheckLoggedIn(user);
    if (Status s = access.Check(user, kAnyKeyspace, kPermAdmin); !s.ok()) return s;
    // Only a superuser changes or deletes a superuser.
    if ((sub == "setuser" || sub == "deluser") && !access.IsSuperuser(user)) {
      for (size_t i = 2; i < argv.size() && (sub == "deluser" || i == 2); ++i) {
        if (access.IsSuperuser(argv[i])) {
          return Status::PermissionDenied(
              fmt::format("only a superuser changes a superuser; '{}' is not one", user));
        }
      }
    }
    return Status::Ok();
  }
  if (spec.name == "client" && argv.size() > 1 && Lower(argv[1]) == "kill") {
    return access.Check(user, kAnyKeyspace, kPermAdmin);
  }
  if (spec.flags & kFlagWrite) return access.Check(user, keyspace, kPermWrite);
  if (spec.flags & kFlagReadonly) return access.Check(user, keyspace, kPermRead);
  return access.CheckLoggedIn(user);
}

std::string RefusalText(const Status& refusal, std::string_view name) {
  if (refusal.code() == Code::kUnauthenticated) return "NOAUTH Authentication required.";
  return fmt::format("NOPERM this user has no permissions to run the '{}' command: {}", name,
                     refusal.message());
}

void Acl(ConnectionCall& call) {
  const std::vector<std::string>& argv = call.argv;
  ReplyWriter w = call.Reply();
  const std::string sub = Lower(argv[1]);
  coordinator::Coordinator& c = *call.server.coordinator;
  if (sub == "whoami") {
    if (argv.size() != 2) return w.Error("ERR wrong number of arguments for 'acl|whoami' command");
    return w.Bulk(call.session.user.empty() ? "default" : call.session.user);
  }
  if (sub == "list" || sub == "users") {
    auto table = c.Users();
    const auto users = Sorted(*table);
    w.Array(users.size());
    for (const base::UserDef* u : users) w.Bulk(sub == "list" ? AclLine(*u) : u->name);
    return;
  }
  if (sub == "cat") {
    if (argv.size() == 2) {
      w.Array(std::size(kCategories));
      for (std::string_view cat : kCategories) w.Bulk(cat);
      return;
    }
    const std::string cat = Lower(argv[2]);
    std::vector<std::string_view> names;
    for (const CommandSpec& spec : AllCommands()) {
      const bool write = spec.flags & kFlagWrite, read = spec.flags & kFlagReadonly;
      const bool admin = spec.name == "acl";
      if ((cat == "write" && write) || (cat == "read" && read && !write) ||
          (cat == "admin" && admin) || (cat == "connection" && !write && !read && !admin)) {
        names.push_back(spec.name);
      }
    }
    if (names.empty() &&
        std::find(std::begin(kCategories), std::end(kCategories), cat) == std::end(kCategories)) {
      return w.Error(fmt::format("ERR Unknown category '{}'", CString(argv[2])));
    }
    w.Array(names.size());
    for (std::string_view n : names) w.Bulk(n);
    return;
  }
  if (sub == "setuser" || sub == "deluser") {
    if (argv.size() < 3) {
      return w.Error(fmt::format("ERR wrong number of arguments for 'acl|{}' command", sub));
    }
    call.hand_on = true;  // CmdAcl changes the users through the Coordinator
    return;
  }
  w.Error(fmt::format(
      "ERR unknown subcommand '{}'. Cairn's ACL has WHOAMI, LIST, USERS, CAT, SETUSER and "
      "DELUSER",
      CString(argv[1])));
}

asio::awaitable<void> CmdAcl(CommandContext& ctx) {
  const std::vector<std::string>& argv = ctx.argv;
  const std::string sub = Lower(argv[1]);
  coordinator::Coordinator& c = *ctx.coordinator;
  if (sub == "deluser") {
    int64_t deleted = 0;
    for (size_t i = 2; i < argv.size(); ++i) {
      base::UserChange change;
      change.kind = Kind::kDelete;
      change.name = argv[i];
      auto r = co_await c.ChangeUser(std::move(change), std::string());
      if (r.ok()) {
        ++deleted;
      } else if (r.status().code() != Code::kNotFound) {
        ctx.Reply().Error("ERR " + r.status().message());
        co_return;
      }
    }
    ctx.Reply().Integer(deleted);
    co_return;
  }
  // SETUSER name rule...: every rule is checked first (an unknown one changes nothing), then each
  // is one change, applied in order (not atomically). A user that does not exist is created
  // first, with the first >password rule.
  const std::string& name = argv[2];
  std::vector<std::pair<base::UserChange, std::string>> changes;
  const bool exists = c.Users()->Find(name) != nullptr;
  size_t creating_rule = 0;
  if (!exists) {
    for (size_t i = 3; i < argv.size() && creating_rule == 0; ++i) {
      if (!argv[i].empty() && argv[i][0] == '>') creating_rule = i;
    }
    if (creating_rule == 0) {
      ctx.Reply().Error(
          fmt::format("ERR user '{}' does not exist: Cairn creates a user only with a password "
                      "(ACL SETUSER {} on >password ...)",
                      CString(name), CString(name)));
      co_return;
    }
    base::UserChange add;
    add.kind = Kind::kAdd;
    add.name = name;
    changes.emplace_back(std::move(add), argv[creating_rule].substr(1));
  }
  for (size_t i = 3; i < argv.size(); ++i) {
    if (i == creating_rule) continue;
    const std::string& rule = argv[i];
    const std::string lower = Lower(rule);
    base::UserChange change;
    change.name = name;
    std::string password;
    if (lower == "on" || lower == "off") {
      change.kind = lower == "on" ? Kind::kEnable : Kind::kDisable;
    } else if (!rule.empty() && rule[0] == '>') {
      change.kind = Kind::kSetPassword;
      password = rule.substr(1);
    } else if (lower == "~*" || lower == "allkeys" || lower == "allcommands" ||
               lower == "allchannels" || lower == "&*") {
      continue;  // keys are not what Cairn grants on: keyspaces are (docs/resp.md)
    } else if ((lower.starts_with("+@") || lower.starts_with("-@")) && lower.size() > 2) {
      const std::string body = rule.substr(2);
      const size_t colon = body.find(':');
      auto bits = CategoryBits(Lower(body.substr(0, colon)));
      if (!bits) {
        ctx.Reply().Error(fmt::format(
            "ERR Error in ACL SETUSER modifier '{}': Cairn grants @read, @write, @admin or @all, "
            "optionally on one keyspace (+@read:orders)",
            Shown(rule)));
        co_return;
      }
      change.kind = lower[0] == '+' ? Kind::kGrant : Kind::kRevoke;
      change.permissions = *bits;
      change.keyspace =
          colon == std::string::npos ? std::string(kAnyKeyspace) : body.substr(colon + 1);
    } else {
      ctx.Reply().Error(
          fmt::format("ERR Error in ACL SETUSER modifier '{}': Cairn knows on, off, >password, "
                      "+@category[:keyspace] and -@category[:keyspace]",
                      Shown(rule)));
      co_return;
    }
    changes.emplace_back(std::move(change), std::move(password));
  }
  for (auto& [change, password] : changes) {
    auto r = co_await c.ChangeUser(std::move(change), std::move(password));
    if (!r.ok()) {
      ctx.Reply().Error("ERR " + r.status().message());
      co_return;
    }
  }
  ctx.Reply().Ok();
}

}  // namespace cairn::frontdoor::resp
