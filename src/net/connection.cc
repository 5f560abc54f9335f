#include "net/connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <charconv>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace cairn::net {
namespace {

using base::kNoThrow;
// A write buffer that grew past this for one large frame is given back afterwards.
constexpr size_t kKeepBufferBytes = size_t{1} << 20;

}  // namespace

Result<std::pair<std::string, uint16_t>> ParseHostPort(std::string_view text) {
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Status::InvalidArgument(fmt::format("'{}' is not HOST:PORT", text));
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return Status::InvalidArgument(fmt::format("'{}' is not HOST:PORT", text));
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  uint16_t number = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (host.empty() || port.empty() || ec != std::errc() || ptr != port.data() + port.size()) {
    return Status::InvalidArgument(fmt::format("'{}' is not HOST:PORT (port 0-65535)", text));
  }
  return std::make_pair(std::string(host), number);
}

asio::awaitable<Result<std::string>> ReadPreamble(Stream& stream) {
  char preamble[kPreambleBytes];
  auto [ec, n] = co_await asio::async_read(stream, asio::buffer(preamble), kNoThrow);
  if (IsEndOfStream(ec)) co_return Status::Unavailable("the peer closed the connection");
  if (ec) co_return Status::Unavailable(fmt::format("read: {}", ec.message()));
  co_return std::string(preamble, kPreambleBytes);
}

asio::awaitable<Status> ReadPreamble(Stream& stream, std::string_view expected) {
  auto got = co_await ReadPreamble(stream);
  if (!got.ok()) co_return got.status();
  // Not our protocol (a browser, redis-cli, random bytes): nothing it would understand.
  if (*got != expected) co_return Status::InvalidArgument("unknown protocol preamble");
  co_return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// BatchWriter

BatchWriter::BatchWriter(Stream& stream) : stream_(stream), wake_(stream.get_executor()) {}

void BatchWriter::Wake() { wake_.cancel(); }

void BatchWriter::Finish() {
  finishing_ = true;
  wake_.cancel();
}

asio::awaitable<Status> BatchWriter::Run() {
  while (true) {
    if (!pending_.empty()) {
      sending_.swap(pending_);
      auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(sending_), kNoThrow);
      if (sending_.capacity() > kKeepBufferBytes) {
        sending_ = std::string();
      } else {
        sending_.clear();
      }
      if (ec) co_return Status::Unavailable(fmt::format("write failed: {}", ec.message()));
      if (on_written_) on_written_(n);
      continue;
    }
    if (finishing_) co_return Status::Ok();
    wake_.expires_at(asio::steady_timer::time_point::max());
    co_await wake_.async_wait(kNoThrow);
  }
}

// ---------------------------------------------------------------------------------------------
// FrameConnection

FrameConnection::FrameConnection(Stream stream, ConnectionOptions options)
    : stream_(std::move(stream)),
      options_(std::move(options)),
      writer_(stream_),
      memory_(options_.memory),
      resume_reading_(stream_.get_executor()),
      decoder_(options_.max_payload) {
  boost::system::error_code ec;
  peer_ = stream_.socket().remote_endpoint(ec);
  stream_.socket().set_option(tcp::no_delay(true), ec);
  writer_.OnWritten([this](size_t written) {
    memory_.Release(written);
    MaybeResumeReading();
  });
}

asio::awaitable<Status> FrameConnection::Run(OnFrame on_frame, OnProtocolError on_error) {
  auto self = shared_from_this();
  using namespace asio::experimental::awaitable_operators;
  auto write_loop = [this]() -> asio::awaitable<Status> {
    Status s = co_await writer_.Run();
    if (!s.ok()) Close();  // the peer is gone: stop reading too
    co_return s;
  };
  auto [read_status, write_status] = co_await (ReadLoop(on_frame, on_error) && write_loop());
  stream_.Close();
  closed_ = true;
  co_return read_status.ok() ? write_status : read_status;
}

asio::awaitable<Status> FrameConnection::ReadLoop(OnFrame& on_frame, OnProtocolError& on_error) {
  Status result;
  bool flush_and_close = false;
  if (!options_.preamble.empty()) result = co_await ReadPreamble(stream_, options_.preamble);
  if (!result.ok()) closed_ = true;
  // Frames already read are handled before reading more (after a pause, they may be all the
  // client sends until it has its answers).
  bool frames_buffered = false;
  while (result.ok() && !closed_) {
    if (ShouldPauseReading() && !stop_reading_) {
      reading_paused_ = true;
      memory_.SetPaused(MustWaitForMemory());
      resume_reading_.expires_at(asio::steady_timer::time_point::max());
      co_await resume_reading_.async_wait(kNoThrow);
      reading_paused_ = false;
      memory_.SetPaused(false);
      continue;
    }
    boost::system::error_code rec;
    size_t bytes = 0;
    if (frames_buffered) {
      frames_buffered = false;
    } else if (decoder_.buffered() == 0) {
      std::tie(rec, bytes) = co_await stream_.async_read_some(decoder_.Prepare(), kNoThrow);
    } else {
      // In the middle of a frame: the rest must come in time.
      auto read = co_await base::WithDeadline(stream_.async_read_some(decoder_.Prepare(), kNoThrow),
                                              base::Clock::now() + options_.frame_timeout);
      if (!read) {
        result = Status::InvalidArgument("a frame did not arrive in time");
        break;
      }
      std::tie(rec, bytes) = *read;
    }
    if (rec) {
      if (IsEndOfStream(rec)) {
        if (decoder_.buffered() > 0) {
          result =
              Status::InvalidArgument("the peer closed the connection in the middle of a frame");
        }
      } else if (!closed_) {
        result = Status::Unavailable(fmt::format("read: {}", rec.message()));
      }
      break;
    }
    decoder_.Commit(bytes);
    memory_.Charge(bytes);
    while (!closed_) {
      // A read holds many small requests: each waits for room, as the next read would.
      if (ShouldPauseReading() && !stop_reading_) {
        frames_buffered = true;
        break;
      }
      auto frame = decoder_.Next();
      if (frame.ok() && *frame && (*frame)->request_id == 0) {
        frame = Status::InvalidArgument("request id 0 is reserved");
      }
      if (!frame.ok()) {
        if (frame.status().code() == Code::kTooLarge && options_.memory != nullptr &&
            options_.max_payload == options_.memory->per_connection()) {
          options_.memory->CountRefusal();
          frame = Status::TooLarge(
              fmt::format("{}: this node's request memory budget allows {} bytes per connection "
                          "(--max-request-memory-mb)",
                          frame.status().message(), options_.max_payload));
        }
        result = frame.status();
        on_error(result);
        flush_and_close = true;
        break;
      }
      if (!*frame) break;
      ++inflight_;
      const size_t size = (*frame)->payload.size() + kFrameHeaderBytes;
      inflight_bytes_ += size;
      request_bytes_[(*frame)->request_id] += size;
      on_frame((*frame)->request_id, (*frame)->payload);
    }
    if (flush_and_close) break;
  }
  memory_.SetPaused(false);
  if (flush_and_close || closed_) {
    // Send what is queued (an error frame) and nothing more.
    closed_ = true;
    writer_.Finish();
  } else if (inflight_ == 0) {
    writer_.Finish();
  } else {
    // The peer stopped sending: answer what is in flight, then close (Send finishes the writer).
    reading_done_ = true;
  }
  co_return result;
}

bool FrameConnection::ShouldPauseReading() const {
  return inflight_ >= options_.max_inflight || inflight_bytes_ > options_.max_inflight_bytes ||
         writer_.pending_bytes() > options_.max_buffered_output || MustWaitForMemory();
}

bool FrameConnection::MustWaitForMemory() const {
  return (inflight_ > 0 || writer_.pending_bytes() > 0) && memory_.MustWait();
}

bool FrameConnection::ReserveAnswer(uint64_t request_id) {
  // This request is counted in inflight_ already.
  const bool busy = inflight_ > 1 || writer_.pending_bytes() > 0;
  size_t reserved = 0;
  if (!memory_.Reserve(busy, &reserved)) return false;
  request_bytes_[request_id] += reserved;
  inflight_bytes_ += reserved;
  return true;
}

bool FrameConnection::ChargeAnswer(uint64_t request_id, size_t frame_bytes, bool may_refuse) {
  if (may_refuse) memory_.Learn(frame_bytes);
  size_t request = 0;
  if (request_id != 0) {
    auto it = request_bytes_.find(request_id);
    if (it != request_bytes_.end()) request = it->second;
  }
  return memory_.Replace(request, frame_bytes, may_refuse);
}

void FrameConnection::Answered(uint64_t request_id) {
  if (inflight_ > 0) --inflight_;
  auto it = request_bytes_.find(request_id);
  if (it == request_bytes_.end()) return;
  inflight_bytes_ -= std::min(inflight_bytes_, it->second);
  request_bytes_.erase(it);
}

void FrameConnection::MaybeResumeReading() {
  if (reading_done_ && inflight_ == 0) writer_.Finish();
  if (reading_paused_ && !ShouldPauseReading()) resume_reading_.cancel();
}

void FrameConnection::StopReading() {
  if (closed_) return;
  stop_reading_ = true;
  boost::system::error_code ec;
  // The pending read completes with EOF, which is the peer-stopped-sending path of ReadLoop.
  stream_.socket().shutdown(tcp::socket::shutdown_receive, ec);
  if (reading_paused_) resume_reading_.cancel();
}

void FrameConnection::Close() {
  if (closed_) return;
  closed_ = true;
  stream_.Close();
  resume_reading_.cancel();
  writer_.Finish();
}

// ---------------------------------------------------------------------------------------------
// MuxConnection

MuxConnection::MuxConnection(Stream stream, ConnectionOptions options,
                             ErrorFrameDecoder decode_error)
    : stream_(std::move(stream)),
      options_(std::move(options)),
      decode_error_(std::move(decode_error)),
      writer_(stream_),
      decoder_(options_.max_payload) {}

asio::awaitable<Result<std::shared_ptr<MuxConnection>>> MuxConnection::Connect(
    std::string host, uint16_t port, ConnectionOptions options, ErrorFrameDecoder decode_error,
    base::Deadline deadline) {
  auto executor = co_await asio::this_coro::executor;
  const std::string where = fmt::format("{}:{}", host, port);
  std::vector<tcp::endpoint> endpoints;
  boost::system::error_code aec;
  const auto address = asio::ip::make_address(host, aec);
  if (!aec) {
    endpoints.emplace_back(address, port);
  } else {
    // A host name. getaddrinfo cannot be cancelled, so a hanging DNS server can hold this past
    // the deadline; numeric addresses (what clusters use) never get here.
    tcp::resolver resolver(executor);
    auto [rec, results] = co_await resolver.async_resolve(host, std::to_string(port), kNoThrow);
    if (rec) {
      co_return Status::Unavailable(fmt::format("cannot resolve {}: {}", where, rec.message()));
    }
    for (const auto& r : results) endpoints.push_back(r.endpoint());
  }
  tcp::socket socket(executor);
  auto connected =
      co_await base::WithDeadline(asio::async_connect(socket, endpoints, kNoThrow), deadline);
  if (!connected) co_return Status::Unavailable(fmt::format("connecting to {} timed out", where));
  if (auto [cec, ep] = *connected; cec) {
    co_return Status::Unavailable(fmt::format("cannot connect to {}: {}", where, cec.message()));
  }
  socket.set_option(tcp::no_delay(true));
  if (options.tcp_user_timeout.count() > 0) {
    const unsigned int ms = static_cast<unsigned int>(options.tcp_user_timeout.count());
    ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms));
  }
  std::shared_ptr<ssl::context> tls = options.tls ? options.tls() : nullptr;
  if (options.tls && !tls) co_return Status::Unavailable("TLS is not set up (no context)");
  Stream stream = tls ? Stream(std::move(socket), std::move(tls)) : Stream(std::move(socket));
  if (stream.tls()) {
    if (Status s = stream.ExpectPeerName(host); !s.ok()) co_return s;
    Status s = co_await stream.Handshake(ssl::stream_base::client, deadline);
    if (!s.ok()) co_return Status::Unavailable(fmt::format("{}: {}", where, s.message()));
  }
  auto conn = std::make_shared<MuxConnection>(std::move(stream), std::move(options),
                                              std::move(decode_error));
  conn->writer_.buffer()->append(conn->options_.preamble);
  conn->writer_.Wake();
  // Start() turns every failure into Break(), so nothing can escape from the detached task.
  asio::co_spawn(executor, conn->Start(), asio::detached);
  co_return conn;
}

asio::awaitable<void> MuxConnection::Start() {
  auto self = shared_from_this();
  using namespace asio::experimental::awaitable_operators;
  auto write_loop = [this]() -> asio::awaitable<Status> {
    Status s = co_await writer_.Run();
    if (!s.ok()) Break(s);
    co_return s;
  };
  co_await (ReadLoop() && write_loop());
}

asio::awaitable<Status> MuxConnection::ReadLoop() {
  while (!broken_) {
    auto [ec, bytes] = co_await stream_.async_read_some(decoder_.Prepare(), kNoThrow);
    if (ec) {
      std::string why = IsEndOfStream(ec) ? std::string("the server closed the connection")
                                          : fmt::format("read: {}", ec.message());
      // What a server with TLS on does to a plain client: say so, or it looks like a crash.
      if (!received_any_ && !stream_.tls()) {
        why += " before answering anything (a server with TLS on closes plain connections)";
      }
      Break(Status::Unavailable(why));
      break;
    }
    received_any_ = true;
    decoder_.Commit(bytes);
    while (!broken_) {
      auto frame = decoder_.Next();
      if (!frame.ok()) {
        Break(frame.status());
        break;
      }
      if (!*frame) break;
      if ((*frame)->request_id == 0) {
        Break(decode_error_ ? decode_error_((*frame)->payload)
                            : Status::Unavailable("the server closed the connection"));
        break;
      }
      auto it = pending_.find((*frame)->request_id);
      if (it == pending_.end()) continue;  // its caller gave up (deadline)
      it->second->result.emplace(std::string((*frame)->payload));
      it->second->timer.cancel();
    }
  }
  co_return broken_status_;
}

Status MuxConnection::TimedOut() {
  return Status::Timeout("no answer before the deadline; the request may have been applied", 0);
}

void MuxConnection::Break(Status why) {
  if (broken_) return;
  broken_ = true;
  broken_status_ = why.code() == Code::kUnavailable ? why : Status::Unavailable(why.ToString());
  for (auto& [id, call] : pending_) {
    call->result.emplace(Status::Timeout(
        fmt::format("connection lost ({}); the request may have been applied", why.message()), 0));
    call->timer.cancel();
  }
  stream_.Close();
  writer_.Finish();
}

void MuxConnection::Close() {
  Break(Status::Unavailable("the connection was closed by the client"));
}

}  // namespace cairn::net
