// user add, del, grant, revoke, list, token, clear-tokens, passwd (docs/security.md).
#pragma once

#include "tools/cli/context.h"

namespace cairn::tools::cli {

int UserAdd(Context& context, const Args& args);
int UserDel(Context& context, const Args& args);
int UserGrant(Context& context, const Args& args);
int UserRevoke(Context& context, const Args& args);
int UserList(Context& context, const Args& args);
int UserToken(Context& context, const Args& args);
int UserClearTokens(Context& context, const Args& args);
int UserPasswd(Context& context, const Args& args);

// The password of --user: from `password_file` when given, else CAIRN_PASSWORD. An error (the
// message names the file, never its content) when neither gives one.
Result<std::string> LoginPassword(const std::string& password_file);

}  // namespace cairn::tools::cli
