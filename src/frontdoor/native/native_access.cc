#include "frontdoor/native/native_access.h"

#include <fmt/format.h>

namespace cairn::frontdoor::native {
namespace {

using base::kAnyKeyspace;
using base::kPermAdmin;
using base::kPermRead;
using base::kPermWrite;
using Kind = base::UserChange::Kind;

std::string_view KeyspaceOf(const wire::Request& request) {
  return request.keyspace().empty() ? coordinator::kDefaultKeyspace : request.keyspace();
}

void SetUser(const base::UserDef& u, wire::UserInfo* out) {
  out->set_name(u.name);
  out->set_superuser(u.superuser);
  out->set_disabled(u.disabled);
  for (const base::UserGrant& g : u.grants) {
    wire::UserGrantInfo* grant = out->add_grants();
    grant->set_keyspace(g.keyspace);
    grant->set_permissions(g.permissions);
  }
  out->set_tokens(static_cast<uint32_t>(u.token_digests.size()));
}

Result<Kind> KindOf(wire::UserChangeRequest::Kind kind) {
  switch (kind) {
    case wire::UserChangeRequest::ADD:
      return Kind::kAdd;
    case wire::UserChangeRequest::DELETE:
      return Kind::kDelete;
    case wire::UserChangeRequest::GRANT:
      return Kind::kGrant;
    case wire::UserChangeRequest::REVOKE:
      return Kind::kRevoke;
    case wire::UserChangeRequest::SET_PASSWORD:
      return Kind::kSetPassword;
    case wire::UserChangeRequest::ENABLE:
      return Kind::kEnable;
    case wire::UserChangeRequest::DISABLE:
      return Kind::kDisable;
    case wire::UserChangeRequest::ADD_TOKEN:
      return Kind::kAddToken;
    case wire::UserChangeRequest::CLEAR_TOKENS:
      return Kind::kClearTokens;
    case wire::UserChangeRequest::SET_SUPERUSER:
      return Kind::kSetSuperuser;
    default:
      return Status::InvalidArgument("unknown kind of user change");
  }
}

}  // namespace

Status Authorize(const base::AccessControl& access, std::string_view user,
                 const wire::Request& request) {
  switch (request.op_case()) {
    case wire::Request::kLogin:
    case wire::Request::kPing:
      return Status::Ok();
    case wire::Request::kGet:
    case wire::Request::kScan:
    case wire::Request::kBatchGet:
      return access.Check(user, KeyspaceOf(request), kPermRead);
    case wire::Request::kPut:
    case wire::Request::kDelete:
    case wire::Request::kCas:
    case wire::Request::kBatchPut:
    case wire::Request::kIncrement:
      return access.Check(user, KeyspaceOf(request), kPermWrite);
    case wire::Request::kSplitCounter:
      return access.Check(user, KeyspaceOf(request), kPermAdmin);
    case wire::Request::kKeyspaceCreate:
      return access.Check(user, request.keyspace_create().keyspace().name(), kPermAdmin);
    case wire::Request::kKeyspaceDrop:
      return access.Check(user, request.keyspace_drop().name(), kPermAdmin);
    case wire::Request::kKeyspaceAlter:
      return access.Check(user, request.keyspace_alter().name(), kPermAdmin);
    case wire::Request::kHotKeys:
      // Key names are data: read on the keyspace listed, admin on every keyspace for all.
      if (request.hot_keys().all_keyspaces()) return access.Check(user, kAnyKeyspace, kPermAdmin);
      return access.Check(user, KeyspaceOf(request), kPermRead);
    case wire::Request::kNodeOperation:
    case wire::Request::kRepair:
    case wire::Request::kCompact:
    case wire::Request::kUserList:
      return access.Check(user, kAnyKeyspace, kPermAdmin);
    case wire::Request::kUserChange: {
      if (Status s = access.Check(user, kAnyKeyspace, kPermAdmin); !s.ok()) return s;
      // Only a superuser makes, changes or deletes a superuser.
      const wire::UserChangeRequest& change = request.user_change();
      const bool makes_superuser = (change.kind() == wire::UserChangeRequest::ADD ||
                                    change.kind() == wire::UserChangeRequest::SET_SUPERUSER) &&
                                   change.superuser();
      if ((makes_superuser || access.IsSuperuser(change.name())) && !access.IsSuperuser(user)) {
        return Status::PermissionDenied(
            fmt::format("only a superuser makes or changes a superuser; '{}' is not one", user));
      }
      return Status::Ok();
    }
    default:
      // Listing keyspaces, the cluster's status, counters: any logged-in user.
      return access.CheckLoggedIn(user);
  }
}

boost::asio::awaitable<void> Login(base::AccessControl* access, NativeSession& session,
                                   wire::Request request, wire::Response* response) {
  wire::LoginRequest* login = request.mutable_login();
  if (access == nullptr) {
    // Authentication is off: whoever logs in may do everything anyway.
    response->mutable_login()->set_user(login->user());
    co_return;
  }
  auto user = co_await access->Login(std::move(*login->mutable_user()),
                                     std::move(*login->mutable_password()));
  if (!user.ok()) {
    response->mutable_error()->set_code(static_cast<wire::Code>(user.status().code()));
    response->mutable_error()->set_message(user.status().message());
    co_return;
  }
  session.user = *user;
  response->mutable_login()->set_user(*user);
  response->mutable_login()->set_superuser(access->IsSuperuser(*user));
}

boost::asio::awaitable<Status> UserChange(coordinator::Coordinator& c, wire::Request& request,
                                          const coordinator::RequestOptions&,
                                          wire::Response& response) {
  wire::UserChangeRequest* r = request.mutable_user_change();
  auto kind = KindOf(r->kind());
  if (!kind.ok()) co_return kind.status();
  base::UserChange change;
  change.kind = *kind;
  change.name = r->name();
  change.superuser = r->superuser();
  change.keyspace = r->keyspace();
  change.permissions = r->permissions();
  auto outcome = co_await c.ChangeUser(std::move(change), std::move(*r->mutable_password()));
  if (!outcome.ok()) co_return outcome.status();
  wire::UserChangeResponse* out = response.mutable_user_change();
  if (outcome->user) SetUser(*outcome->user, out->mutable_user());
  out->set_token(std::move(outcome->token));
  co_return Status::Ok();
}

boost::asio::awaitable<Status> UserList(coordinator::Coordinator& c, wire::Request&,
                                        const coordinator::RequestOptions&,
                                        wire::Response& response) {
  auto table = c.Users();
  std::vector<const base::UserDef*> users;
  for (const auto& [name, u] : table->by_name) users.push_back(&u);
  std::sort(users.begin(), users.end(),
            [](const base::UserDef* a, const base::UserDef* b) { return a->name < b->name; });
  wire::UserListResponse* out = response.mutable_user_list();
  for (const base::UserDef* u : users) SetUser(*u, out->add_users());
  co_return Status::Ok();
}

}  // namespace cairn::frontdoor::native
