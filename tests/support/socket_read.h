// A test's raw socket: connecting it, sending on it, and reading it with a deadline, for tests
// that speak a protocol byte by byte (or send garbage) and look at what comes back. The wait is
// poll(2) on the socket, so bytes and the peer's close are seen the moment they arrive: no
// sleeping, no polling loop.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>

namespace cairn::testing {

// A blocking TCP socket connected to "IPv4:PORT" with TCP_NODELAY, or -1 (closed) when the
// connection failed. `receive_buffer` > 0: SO_RCVBUF, set before connecting so that the window
// the peer sees stays that small (a client that never reads).
inline int ConnectTcp(const std::string& address, int receive_buffer = 0) {
  const size_t colon = address.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr);
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  if (receive_buffer > 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Sends all of `bytes` (no SIGPIPE); false when the peer is gone first.
inline bool SendAll(int fd, const std::string& bytes) {
  size_t at = 0;
  while (at < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
    if (n <= 0) return false;
    at += static_cast<size_t>(n);
  }
  return true;
}

struct SocketRead {
  std::string bytes;    // what arrived
  bool closed = false;  // the peer closed the connection (or the socket failed)
};

// Reads from socket `fd` (blocking or not) until `done(bytes)` holds, the peer closes, or `wait`
// has passed. `bytes` starts as `start` (bytes an earlier read took too many of), and `done` is
// asked before anything is read.
template <typename Done>
SocketRead ReadUntil(int fd, std::chrono::milliseconds wait, Done done, std::string start = "") {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + wait;
  SocketRead r{std::move(start), false};
  while (!done(r.bytes)) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    pollfd pfd{fd, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left.count(), 60'000)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) {
      r.closed = true;
      break;
    }
    if (ready == 0) continue;  // the deadline is checked above
    char buf[65536];
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
    if (n <= 0) {
      r.closed = true;
      break;
    }
    r.bytes.append(buf, static_cast<size_t>(n));
  }
  return r;
}

// Reads until the peer closes the connection or `wait` has passed.
inline SocketRead ReadUntilClosed(int fd, std::chrono::milliseconds wait) {
  return ReadUntil(fd, wait, [](const std::string&) { return false; });
}

}  // namespace cairn::testing
