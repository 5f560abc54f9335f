// A minimal HTTP/1.1 client for the operations tests: one request per connection, the answer read
// until the server closes. Enough for status, headers and body of the node's own pages.
#pragma once

#include <chrono>
#include <map>
#include <string>

namespace cairn::testing {

struct HttpAnswer {
  int status = 0;  // 0: no answer (connection refused, timeout, garbled)
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string error;  // why there is no answer

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// Sends `method target` to `host_port` ("127.0.0.1:PORT") and waits up to `timeout`.
HttpAnswer HttpRequest(const std::string& host_port, const std::string& method,
                       const std::string& target,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10));
inline HttpAnswer HttpGet(const std::string& host_port, const std::string& target) {
  return HttpRequest(host_port, "GET", target);
}

}  // namespace cairn::testing
