// A small RESP2 client for the benchmark driver: command encoding, reply parsing, Redis Cluster's
// key slots, and one pipelining connection on Boost.Asio. It speaks to Cairn's RESP front door
// and to redis-server alike.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "cairn/status.h"

namespace cairn::bench {

struct RespReply {
  enum class Type { kSimple, kError, kInteger, kBulk, kNull, kArray };
  Type type = Type::kNull;
  std::string text;  // kSimple, kError, kBulk
  int64_t integer = 0;
  std::vector<RespReply> elements;  // kArray

  bool is_error() const { return type == Type::kError; }
};

// Appends a command, encoded as RESP2 (an array of bulk strings), to `out`. Several commands
// appended to one string are sent as one pipeline.
void AppendCommand(std::string* out, std::initializer_list<std::string_view> args);
void AppendCommand(std::string* out, const std::vector<std::string_view>& args);

// Parses one reply at the front of `in` into `out`. Returns the bytes it took; 0 when `in` holds
// only part of a reply; kMalformed when `in` is not RESP.
inline constexpr size_t kMalformed = static_cast<size_t>(-1);
size_t ParseReply(std::string_view in, RespReply* out);

// CRC16-CCITT (XMODEM), the checksum of Redis Cluster's key slots.
uint16_t Crc16(std::string_view bytes);
// The Redis Cluster slot of `key` (0..16383): CRC16 of its hash tag ({...}) or of the whole key.
uint16_t KeySlot(std::string_view key);

// A cluster redirection error: "MOVED 3999 127.0.0.1:6381" or "ASK 3999 127.0.0.1:6381".
struct Redirect {
  bool ask = false;
  uint16_t slot = 0;
  std::string address;  // HOST:PORT
};
std::optional<Redirect> ParseRedirect(std::string_view error);

// One TCP connection. Requests go one pipeline at a time (the caller waits for the replies
// before sending more). Not thread-safe: use it from coroutines of one single-threaded executor.
// After any error the connection is closed (connected() is false) and must be opened again.
class RespConnection {
 public:
  using Clock = std::chrono::steady_clock;

  explicit RespConnection(boost::asio::any_io_executor executor);

  // UNAVAILABLE when the server cannot be reached before `deadline`.
  boost::asio::awaitable<Status> Connect(std::string address, Clock::time_point deadline);
  bool connected() const { return socket_.is_open(); }
  const std::string& address() const { return address_; }

  // Sends `request` (one or more commands from AppendCommand) and reads `replies` replies into
  // `out`. UNAVAILABLE when the connection breaks, TIMEOUT when `deadline` passes first. Error
  // replies of the server are replies, not errors here.
  boost::asio::awaitable<Status> Exchange(const std::string& request, size_t replies,
                                          Clock::time_point deadline, std::vector<RespReply>* out);
  // One command, one reply.
  boost::asio::awaitable<Result<RespReply>> Call(const std::string& request,
                                                 Clock::time_point deadline);

  void Close();

 private:
  // The deadline of the operation in flight: when it passes, the socket is closed, which ends
  // the pending read or write. Disarm() says whether that happened.
  void Arm(Clock::time_point deadline);
  bool Disarm();

  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer timer_;
  uint64_t generation_ = 0;
  bool timed_out_ = false;
  std::string address_;
  std::string in_;  // received bytes not yet parsed
  std::vector<RespReply> one_;
};

}  // namespace cairn::bench
