// The server's part of authentication (docs/security.md): reading the bootstrap file and creating
// the first superuser through the topology log once the cluster has formed.
#pragma once

#include <string>
#include <utility>

#include <boost/asio/awaitable.hpp>

#include "cairn/status.h"
#include "coordinator/coordinator.h"

namespace cairn::server {

// The user and password of an --auth-bootstrap-file: one line "user:password". INVALID_ARGUMENT
// (naming the file, never its content) when it cannot be read or holds no valid pair.
Result<std::pair<std::string, std::string>> ReadBootstrapFile(const std::string& path);

// While the cluster has no user, tries to create superuser `user` with `password` (one node of
// the cluster wins; the others find a user there and stop). Retries until it succeeds or users
// exist; logs the user's name, never the password.
boost::asio::awaitable<void> BootstrapFirstUser(coordinator::Coordinator* coordinator,
                                                std::string user, std::string password);

}  // namespace cairn::server
