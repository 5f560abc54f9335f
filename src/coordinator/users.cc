// User administration: each change of a user is a topology epoch (cluster/users.h), so users
// spread with the epoch like keyspace definitions and every node agrees on them.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "base/async.h"
#include "cluster/users.h"
#include "coordinator/cluster_coordinator.h"

namespace cairn::coordinator {
namespace {

// User changes wait this long for their topology epoch.
constexpr auto kUserChangeTime = std::chrono::seconds(10);

bool TakesPassword(base::UserChange::Kind kind) {
  using Kind = base::UserChange::Kind;
  return kind == Kind::kAdd || kind == Kind::kBootstrap || kind == Kind::kSetPassword;
}

}  // namespace

asio::awaitable<Result<UserChangeOutcome>> ClusterCoordinator::ChangeUser(base::UserChange change,
                                                                          std::string password) {
  if (store_ == nullptr) co_return Status::FailedPrecondition("this node keeps no topology log");
  if (Status s = base::ValidateUserName(change.name); !s.ok()) co_return s;
  UserChangeOutcome outcome;
  if (TakesPassword(change.kind)) {
    if (Status s = base::ValidatePassword(password); !s.ok()) co_return s;
    // The slow hash runs off the reactors, once, before the change is planned (which Paxos may
    // retry).
    base::UserDef no_credentials;  // named: the g++ 12 note in coordinator.h
    base::UserDef credentials = co_await base::AwaitCallback<base::UserDef>(
        [&](auto done) {
          asio::post(blocking_, [password, done] {
            base::UserDef c;
            base::SetPassword(&c, password);
            done(std::move(c));
          });
        },
        std::move(no_credentials));
    if (credentials.password_hash.empty())
      co_return Status::Internal("hashing the password failed");
    change.credentials = std::move(credentials);
  }
  if (change.kind == base::UserChange::Kind::kAddToken) {
    outcome.token = base::NewToken();
    change.token_digest = base::TokenDigest(outcome.token);
  }
  std::optional<base::UserDef> after;
  auto changed = co_await ChangeTopology(
      [&](const internode::TopologyState& current)
          -> Result<std::optional<internode::TopologyState>> {
        auto users = cluster::PlanUserChange(cluster::UsersOf(current), change);
        if (!users.ok()) return users.status();
        after.reset();
        if (!users->has_value()) return std::optional<internode::TopologyState>();
        for (const base::UserDef& u : **users) {
          if (u.name == change.name) after = u;
        }
        return std::optional(cluster::WithUsers(current, **users));
      },
      base::Clock::now() + kUserChangeTime);
  if (!changed.ok()) co_return changed.status();
  outcome.user = std::move(after);
  co_return outcome;
}

std::shared_ptr<const base::UserTable> ClusterCoordinator::Users() const {
  std::shared_ptr<const internode::TopologyState> state =
      store_ != nullptr ? store_->state() : nullptr;
  std::lock_guard lock(users_mu_);
  if (!users_ || state != users_state_) {
    users_ = state ? cluster::UserTableOf(*state) : base::UserTable::Make({});
    users_state_ = std::move(state);
  }
  return users_;
}

}  // namespace cairn::coordinator
