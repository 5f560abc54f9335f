#include "tests/ops/http_get.h"

#include <algorithm>
#include <cctype>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

namespace cairn::testing {

namespace asio = boost::asio;
using asio::ip::tcp;

HttpAnswer HttpRequest(const std::string& host_port, const std::string& method,
                       const std::string& target, std::chrono::milliseconds timeout) {
  HttpAnswer answer;
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) {
    answer.error = "not HOST:PORT: " + host_port;
    return answer;
  }
  asio::io_context io;
  tcp::socket socket(io);
  std::string raw;
  boost::system::error_code failure;
  asio::steady_timer timer(io, timeout);
  timer.async_wait([&](boost::system::error_code ec) {
    if (!ec) {
      failure = asio::error::timed_out;
      socket.close();
    }
  });
  tcp::resolver resolver(io);
  auto endpoints = resolver.resolve(host_port.substr(0, colon), host_port.substr(colon + 1));
  const std::string request =
      method + " " + target + " HTTP/1.1\r\nHost: " + host_port + "\r\nConnection: close\r\n\r\n";
  asio::async_connect(socket, endpoints, [&](boost::system::error_code ec, const tcp::endpoint&) {
    if (ec) {
      if (!failure) failure = ec;
      timer.cancel();
      return;
    }
    asio::async_write(socket, asio::buffer(request), [&](boost::system::error_code wec, size_t) {
      if (wec) {
        if (!failure) failure = wec;
        timer.cancel();
        return;
      }
      asio::async_read(socket, asio::dynamic_buffer(raw),
                       [&](boost::system::error_code rec, size_t) {
                         if (rec && rec != asio::error::eof && !failure) failure = rec;
                         timer.cancel();
                       });
    });
  });
  io.run();
  if (failure) {
    answer.error = failure.message();
    return answer;
  }
  const size_t end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || end == std::string::npos || raw.size() < 12) {
    answer.error = "not an HTTP answer: " + raw.substr(0, 200);
    return answer;
  }
  answer.status = std::atoi(raw.substr(9, 3).c_str());
  size_t line = raw.find("\r\n") + 2;
  while (line < end) {
    const size_t next = raw.find("\r\n", line);
    const std::string header = raw.substr(line, next - line);
    const size_t sep = header.find(':');
    if (sep != std::string::npos) {
      std::string name = header.substr(0, sep);
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      std::string value = header.substr(sep + 1);
      value.erase(0, value.find_first_not_of(' '));
      answer.headers[name] = value;
    }
    line = next + 2;
  }
  answer.body = raw.substr(end + 4);
  return answer;
}

}  // namespace cairn::testing
