// Users and permissions on the native protocol (docs/security.md): which permission each request
// needs, the login of a connection, and the user administration requests (`cairn user ...`).
#pragma once

#include <string>

#include <boost/asio/awaitable.hpp>

#include "base/access.h"
#include "coordinator/coordinator.h"
#include "proto/native.pb.h"

namespace cairn::frontdoor::native {

// What one connection is logged in as (empty: nobody). Owned by the connection's thread.
struct NativeSession {
  std::string user;
};

// Whether `user` may make `request`: OK, UNAUTHENTICATED or PERMISSION_DENIED. Nothing is read
// or written before this says OK. Login and Ping need nobody.
Status Authorize(const base::AccessControl& access, std::string_view user,
                 const wire::Request& request);

// Logs `session` in with the request's user and password (`access` null: authentication is off
// and any login is accepted) and fills the answer.
boost::asio::awaitable<void> Login(base::AccessControl* access, NativeSession& session,
                                   wire::Request request, wire::Response* response);

// The handlers of UserChangeRequest and UserListRequest (the operation table's shape).
boost::asio::awaitable<Status> UserChange(coordinator::Coordinator& c, wire::Request& request,
                                          const coordinator::RequestOptions& options,
                                          wire::Response& response);
boost::asio::awaitable<Status> UserList(coordinator::Coordinator& c, wire::Request& request,
                                        const coordinator::RequestOptions& options,
                                        wire::Response& response);

}  // namespace cairn::frontdoor::native
