#include "server/auth.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include "base/access.h"
#include "base/async.h"

namespace cairn::server {

Result<std::pair<std::string, std::string>> ReadBootstrapFile(const std::string& path) {
  auto line = base::ReadSecretFile(path);
  if (!line.ok())
    return Status::InvalidArgument("--auth-bootstrap-file: " + line.status().message());
  const size_t colon = line->find(':');
  if (colon == std::string::npos) {
    return Status::InvalidArgument(
        fmt::format("--auth-bootstrap-file: '{}' must hold one line USER:PASSWORD", path));
  }
  std::string user = line->substr(0, colon), password = line->substr(colon + 1);
  if (Status s = base::ValidateUserName(user); !s.ok()) {
    return Status::InvalidArgument("--auth-bootstrap-file: " + s.message());
  }
  if (Status s = base::ValidatePassword(password); !s.ok()) {
    return Status::InvalidArgument("--auth-bootstrap-file: " + s.message());
  }
  return std::pair(std::move(user), std::move(password));
}

boost::asio::awaitable<void> BootstrapFirstUser(coordinator::Coordinator* coordinator,
                                                std::string user, std::string password) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  Status last;
  while (coordinator->Users()->by_name.empty()) {
    base::UserChange change;
    change.kind = base::UserChange::Kind::kBootstrap;
    change.name = user;
    auto r = co_await coordinator->ChangeUser(std::move(change), password);
    if (r.ok()) {
      if (r->user)
        spdlog::info("created the first user, superuser '{}' (--auth-bootstrap-file)", user);
      break;
    }
    // Before the cluster forms (or while its group is out of reach) this fails: try again.
    if (r.status().message() != last.message()) {
      spdlog::info("cannot create the first user yet: {}", r.status().ToString());
      last = r.status();
    }
    timer.expires_after(std::chrono::milliseconds(500));
    co_await timer.async_wait(base::kNoThrow);
  }
}

}  // namespace cairn::server
