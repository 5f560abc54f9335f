#include "bench/resp_client.h"

#include <charconv>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "base/hash.h"

namespace cairn::bench {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr int kMaxDepth = 16;

void AppendBulk(std::string* out, std::string_view arg) {
  fmt::format_to(std::back_inserter(*out), "${}\r\n", arg.size());
  out->append(arg);
  out->append("\r\n");
}

std::optional<int64_t> ParseInt(std::string_view s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// Parses the reply starting at `pos`; returns the position after it, 0 when incomplete, or
// kMalformed.
size_t ParseAt(std::string_view in, size_t pos, RespReply* out, int depth) {
  if (depth > kMaxDepth) return kMalformed;
  if (pos >= in.size()) return 0;
  const size_t eol = in.find("\r\n", pos);
  if (eol == std::string_view::npos) return 0;
  const char type = in[pos];
  const std::string_view line = in.substr(pos + 1, eol - pos - 1);
  const size_t next = eol + 2;
  switch (type) {
    case '+':
    case '-':
      out->type = type == '+' ? RespReply::Type::kSimple : RespReply::Type::kError;
      out->text.assign(line);
      return next;
    case ':':
    case '$':
    case '*':
      break;
    default:
      return kMalformed;
  }
  // An integer, or the length of a bulk string or array (-1: null).
  auto n = ParseInt(line);
  if (!n || (type != ':' && *n < -1)) return kMalformed;
  if (type == ':') {
    out->type = RespReply::Type::kInteger;
    out->integer = *n;
    return next;
  }
  if (*n == -1) {
    out->type = RespReply::Type::kNull;
    return next;
  }
  const size_t len = static_cast<size_t>(*n);
  if (type == '$') {
    if (in.size() < next + len + 2) return 0;
    if (in.substr(next + len, 2) != "\r\n") return kMalformed;
    out->type = RespReply::Type::kBulk;
    out->text.assign(in.substr(next, len));
    return next + len + 2;
  }
  out->type = RespReply::Type::kArray;
  out->elements.resize(len);
  size_t at = next;
  for (RespReply& e : out->elements) {
    at = ParseAt(in, at, &e, depth + 1);
    if (at == 0 || at == kMalformed) return at;
  }
  return at;
}

}  // namespace

void AppendCommand(std::string* out, std::initializer_list<std::string_view> args) {
  fmt::format_to(std::back_inserter(*out), "*{}\r\n", args.size());
  for (std::string_view a : args) AppendBulk(out, a);
}

void AppendCommand(std::string* out, const std::vector<std::string_view>& args) {
  fmt::format_to(std::back_inserter(*out), "*{}\r\n", args.size());
  for (std::string_view a : args) AppendBulk(out, a);
}

size_t ParseReply(std::string_view in, RespReply* out) { return ParseAt(in, 0, out, 0); }

uint16_t Crc16(std::string_view bytes) {
  uint16_t crc = 0;
  for (unsigned char c : bytes) {
    crc ^= static_cast<uint16_t>(c << 8);
    for (int i = 0; i < 8; ++i) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

// Cairn partitions by the same hash-tag rule as Redis Cluster: base::PartitionKey is it.
uint16_t KeySlot(std::string_view key) { return Crc16(base::PartitionKey(key)) & 16383; }

std::optional<Redirect> ParseRedirect(std::string_view error) {
  Redirect r;
  if (error.starts_with("MOVED ")) {
    error.remove_prefix(6);
  } else if (error.starts_with("ASK ")) {
    r.ask = true;
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const size_t space = error.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  auto slot = ParseInt(error.substr(0, space));
  if (!slot || *slot < 0 || *slot > 16383) return std::nullopt;
  r.slot = static_cast<uint16_t>(*slot);
  r.address = std::string(error.substr(space + 1));
  if (r.address.empty()) return std::nullopt;
  return r;
}

RespConnection::RespConnection(asio::any_io_executor executor)
    : socket_(executor), timer_(executor) {}

asio::awaitable<Status> RespConnection::Connect(std::string address, Clock::time_point deadline) {
  Close();
  address_ = std::move(address);
  const size_t colon = address_.rfind(':');
  if (colon == std::string::npos) {
    co_return Status::InvalidArgument("expected HOST:PORT, got " + address_);
  }
  tcp::resolver resolver(socket_.get_executor());
  auto [rec, endpoints] = co_await resolver.async_resolve(address_.substr(0, colon),
                                                          address_.substr(colon + 1), kTuple);
  if (rec) co_return Status::Unavailable(fmt::format("{}: {}", address_, rec.message()));
  Arm(deadline);
  auto [ec, endpoint] = co_await asio::async_connect(socket_, endpoints, kTuple);
  const bool timed_out = Disarm();
  if (ec || timed_out) {
    Close();
    co_return Status::Unavailable(fmt::format("cannot connect to {}: {}", address_,
                                              ec ? ec.message() : std::string("timed out")));
  }
  socket_.set_option(tcp::no_delay(true));
  co_return Status::Ok();
}

void RespConnection::Arm(Clock::time_point deadline) {
  timed_out_ = false;
  timer_.expires_at(deadline);
  // The generation tells a stale expiry (queued just before Disarm) from the current one.
  timer_.async_wait([this, generation = generation_](boost::system::error_code ec) {
    if (ec || generation != generation_) return;
    timed_out_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored);
  });
}

bool RespConnection::Disarm() {
  ++generation_;
  timer_.cancel();
  return timed_out_;
}

void RespConnection::Close() {
  boost::system::error_code ignored;
  socket_.close(ignored);
  in_.clear();
}

asio::awaitable<Status> RespConnection::Exchange(const std::string& request, size_t replies,
                                                 Clock::time_point deadline,
                                                 std::vector<RespReply>* out) {
  if (!socket_.is_open()) co_return Status::Unavailable("not connected to " + address_);
  out->resize(replies);
  Arm(deadline);
  auto [wec, written] = co_await asio::async_write(socket_, asio::buffer(request), kTuple);
  size_t parsed = 0, at = 0;
  boost::system::error_code rec;
  while (!wec && !rec && parsed < replies) {
    const size_t end = ParseAt(in_, at, &(*out)[parsed], 0);
    if (end == kMalformed) {
      Disarm();
      Close();
      co_return Status::Internal(address_ + " sent a malformed reply");
    }
    if (end != 0) {
      at = end;
      ++parsed;
      continue;
    }
    const size_t old = in_.size();
    in_.resize(old + std::max<size_t>(16384, old));
    auto [ec, n] =
        co_await socket_.async_read_some(asio::buffer(in_.data() + old, in_.size() - old), kTuple);
    in_.resize(old + n);
    rec = ec;
  }
  const bool timed_out = Disarm();
  in_.erase(0, at);
  if (parsed == replies) co_return Status::Ok();
  Close();
  if (timed_out) co_return Status::Timeout(address_ + " did not answer in time", 0);
  const auto& ec = wec ? wec : rec;
  co_return Status::Unavailable(fmt::format("connection to {} broke: {}", address_, ec.message()));
}

asio::awaitable<Result<RespReply>> RespConnection::Call(const std::string& request,
                                                        Clock::time_point deadline) {
  Status s = co_await Exchange(request, 1, deadline, &one_);
  if (!s.ok()) co_return s;
  co_return std::move(one_[0]);
}

}  // namespace cairn::bench
