// Users and permissions on the HTTP front door (docs/http.md, docs/security.md): who a request
// is from (Basic credentials or a bearer token), which permission its route needs, and the
// /v1/users endpoints.
#pragma once

#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "base/access.h"
#include "coordinator/coordinator.h"

namespace cairn::frontdoor::http {

struct HttpCaller {
  Status status;     // OK, UNAUTHENTICATED (answer 401) or PERMISSION_DENIED (403)
  std::string user;  // who, once authenticated
};

// Whether the request may run: authenticated by its Authorization header (`Basic` user and
// password, verified off the reactor unless cached; `Bearer` token), holding the permission its
// route needs (`path` as received, percent-encoded; `body` for the name of a keyspace to create).
// /health and /ready need nobody.
boost::asio::awaitable<HttpCaller> AuthorizeRequest(base::AccessControl& access,
                                                    std::string_view method, std::string_view path,
                                                    std::string_view authorization,
                                                    std::string_view body);

// The realm of the 401 answers' WWW-Authenticate header.
inline constexpr std::string_view kAuthenticateHeader = "Basic realm=\"cairn\", charset=\"UTF-8\"";

// GET /v1/users (the users, never their hashes) and POST /v1/users/{name}/tokens (a new bearer
// token, shown once): the JSON answer, or why not. `caller` may issue tokens for itself.
bool IsUsersPath(std::string_view path);
boost::asio::awaitable<Result<std::string>> Users(coordinator::Coordinator& coordinator,
                                                  std::string_view method, std::string_view path);

}  // namespace cairn::frontdoor::http
