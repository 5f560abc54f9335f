// Users and permissions on the Redis protocol (docs/resp.md, docs/security.md): which permission
// each command needs, and the ACL command (WHOAMI, LIST, USERS, CAT, SETUSER, DELUSER).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "base/access.h"
#include "frontdoor/resp/command_table.h"

namespace cairn::frontdoor::resp {

struct CommandContext;
struct ConnectionCall;

// Whether `user` may run this command in `keyspace` (the connection's; empty: "default"): OK, or
// the error reply to give (NOAUTH, NOPERM), without the leading '-'. Commands flagged noauth
// (AUTH, HELLO, QUIT, RESET) need nobody.
Status AuthorizeCommand(const base::AccessControl& access, std::string_view user,
                        const CommandSpec& spec, const std::vector<std::string>& argv,
                        std::string_view keyspace);
// The Redis error text of a refusal by AuthorizeCommand for command `name`.
std::string RefusalText(const Status& refusal, std::string_view name);

// ACL WHOAMI | LIST | USERS | CAT [category] | SETUSER name rule... | DELUSER name...
// The connection part answers what needs no Coordinator and hands SETUSER and DELUSER on to the
// data part.
void Acl(ConnectionCall& call);
boost::asio::awaitable<void> CmdAcl(CommandContext& ctx);

}  // namespace cairn::frontdoor::resp
