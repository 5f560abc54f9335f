// Framed connections over TCP or TLS (net/stream.h): the server side (FrameConnection) that hands
// each incoming frame to a handler and batches the answers, and the client side (MuxConnection)
// that multiplexes many concurrent calls with request ids and deadlines over one socket.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/async.h"
#include "base/memory_budget.h"
#include "cairn/status.h"
#include "net/frame.h"
#include "net/stream.h"

namespace cairn::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Reads the 4-byte preamble a connection starts with. UNAVAILABLE when the peer closes first.
asio::awaitable<Result<std::string>> ReadPreamble(Stream& stream);
// Reads it and checks it is `expected` (INVALID_ARGUMENT otherwise).
asio::awaitable<Status> ReadPreamble(Stream& stream, std::string_view expected);

// "host:port" (an IPv4 address, "[v6]:port" or a host name) split in two.
Result<std::pair<std::string, uint16_t>> ParseHostPort(std::string_view text);

struct ConnectionOptions {
  // Server side: the preamble the connection must start with; empty when the caller has read
  // it already (a server that routes protocols by preamble). Client side: sent first.
  std::string preamble = std::string(kNativePreamble);
  size_t max_payload = size_t{16} << 20;
  // Server side: requests received but not yet answered, by count and by bytes. Beyond either
  // the connection stops reading until answers go out, which pushes back on a client that
  // pipelines too far.
  size_t max_inflight = 1024;
  size_t max_inflight_bytes = size_t{64} << 20;
  // Server side: a frame that has started to arrive must be complete within this time, or the
  // connection is closed (a peer that sends a header and goes quiet holds no buffer for long).
  std::chrono::milliseconds frame_timeout{30'000};
  // Client side: TCP_USER_TIMEOUT. Data the peer has not acknowledged for this long breaks the
  // connection, so that one stalled by a partition is replaced once the network heals rather
  // than reused while the kernel backs off its retransmissions for seconds. 0: the kernel's.
  std::chrono::milliseconds tcp_user_timeout{0};
  // Either side: stop reading while more than this waits to be written to a slow peer.
  size_t max_buffered_output = size_t{64} << 20;
  // Server side: the node's budget for requests and replies held (base/memory_budget.h), which
  // pauses a busy connection while the node is over it; null (internode): none. When set, a
  // frame over max_payload is refused with a message naming the budget if the budget is what
  // set max_payload.
  base::MemoryBudget* memory = nullptr;
  // Client side: when set, the connection speaks TLS with the context this returns (asked for
  // each new connection, so a reloaded context applies to the next one), verifying that the
  // server's certificate names the host dialled. Null: plain TCP.
  std::function<std::shared_ptr<ssl::context>()> tls;
};

// Batches the outgoing bytes of one stream: callers append to buffer() and call Wake(); one
// coroutine writes everything that accumulated while the previous write was in flight, so many
// answers share one syscall. Runs on the socket's executor only.
class BatchWriter {
 public:
  explicit BatchWriter(Stream& stream);

  std::string* buffer() { return &pending_; }
  size_t pending_bytes() const { return pending_.size() + sending_.size(); }
  void Wake();
  // Called after every completed write with the bytes written (the owner may resume reading
  // that it paused).
  void OnWritten(std::function<void(size_t)> fn) { on_written_ = std::move(fn); }
  // Run() returns once everything appended so far has been written.
  void Finish();

  // Writes until Finish() and drained (OK), or until a write fails.
  asio::awaitable<Status> Run();

 private:
  Stream& stream_;
  asio::steady_timer wake_;
  std::string pending_;
  std::string sending_;
  bool finishing_ = false;
  std::function<void(size_t)> on_written_;
};

// The server side of one framed connection.
// Thread safety: everything runs on the connection's executor (one reactor thread).
class FrameConnection : public std::enable_shared_from_this<FrameConnection> {
 public:
  // Called for each frame; `payload` is valid only during the call. The handler answers later,
  // exactly once per request, with Send().
  using OnFrame = std::function<void(uint64_t request_id, std::string_view payload)>;
  // Called on a protocol error (oversized frame, request id 0); it may Send() one last frame
  // with id 0. The connection then flushes and closes.
  using OnProtocolError = std::function<void(const Status&)>;

  // `stream` has finished its TLS handshake, if it has one.
  FrameConnection(Stream stream, ConnectionOptions options);

  // Checks the preamble (if any), then reads frames until the peer closes, an error, a protocol
  // error or Close(); answers still being computed are sent before the socket closes, unless the
  // connection broke. Returns why the connection ended (OK for a clean close by the peer).
  asio::awaitable<Status> Run(OnFrame on_frame, OnProtocolError on_error);

  // Queues an answer to `request_id` (0: a connection-level message). Ignored once closed.
  // With `may_refuse` (the answer to a read), an answer that does not fit the memory budget is
  // not queued: false, and the caller answers with a short error instead.
  template <typename Serialize>
  bool Send(uint64_t request_id, size_t payload_size, Serialize&& serialize,
            bool may_refuse = false) {
    if (closed_) return true;
    if (!ChargeAnswer(request_id, kFrameHeaderBytes + payload_size, may_refuse)) return false;
    AppendFrame(writer_.buffer(), request_id, payload_size, std::forward<Serialize>(serialize));
    if (request_id != 0) Answered(request_id);
    writer_.Wake();
    MaybeResumeReading();
    return true;
  }

  // Reserves room in the memory budget for the answer to read `request_id` before it runs
  // (MemoryShare::Reserve); false when it does not fit: answer with a short error instead.
  bool ReserveAnswer(uint64_t request_id);

  // Graceful close: stops reading, answers the requests in flight, then closes.
  void StopReading();
  // Closes now; answers not yet written are dropped.
  void Close();

  const tcp::endpoint& peer() const { return peer_; }
  size_t inflight() const { return inflight_; }
  // Whether reading is paused by backpressure (too much in flight, or too much output waiting for
  // a slow peer); it resumes as answers go out.
  bool reading_paused() const { return reading_paused_; }
  Stream::executor_type executor() { return stream_.get_executor(); }

 private:
  asio::awaitable<Status> ReadLoop(OnFrame& on_frame, OnProtocolError& on_error);
  bool ShouldPauseReading() const;
  // Whether the connection has requests in flight or answers not yet written, and the memory
  // budget asks such a connection to wait.
  bool MustWaitForMemory() const;
  void MaybeResumeReading();
  // Turns the request's bytes into the answer's in the memory budget; false when refused.
  bool ChargeAnswer(uint64_t request_id, size_t frame_bytes, bool may_refuse);
  void Answered(uint64_t request_id);

  Stream stream_;
  const ConnectionOptions options_;
  tcp::endpoint peer_;
  BatchWriter writer_;
  base::MemoryShare memory_;
  asio::steady_timer resume_reading_;
  FrameDecoder decoder_;
  size_t inflight_ = 0;
  size_t inflight_bytes_ = 0;
  std::unordered_map<uint64_t, size_t> request_bytes_;  // of requests not yet answered
  bool reading_paused_ = false;
  bool reading_done_ = false;  // the peer stopped sending; close once everything is answered
  bool stop_reading_ = false;  // StopReading() was called: read on to the EOF even if paused
  bool closed_ = false;
};

// An ErrorFrameDecoder (below) for protocols whose answers are protobuf messages `Response` with
// an `error` field (code, message): the reason `who` ("the server", "the peer") closed the
// connection, as UNAVAILABLE.
template <typename Response>
Status DecodeClosingError(std::string_view payload, std::string_view who) {
  Response response;
  if (response.ParseFromArray(payload.data(), static_cast<int>(payload.size())) &&
      response.has_error()) {
    const Status why = StatusFromCode(response.error().code(), response.error().message());
    return Status::Unavailable(std::string(who) + " closed the connection: " + why.ToString());
  }
  return Status::Unavailable(std::string(who) + " closed the connection");
}

// The client side: many concurrent calls over one connection, matched to answers by id.
// Thread safety: use from coroutines on the connection's executor only.
class MuxConnection : public std::enable_shared_from_this<MuxConnection> {
 public:
  // Decodes the payload of a connection-level frame (id 0) into the reason for the close.
  using ErrorFrameDecoder = std::function<Status(std::string_view payload)>;

  // Connects (with the TLS handshake when options.tls is set), sends the preamble and starts
  // reading. UNAVAILABLE when the server cannot be reached before `deadline`, or its certificate
  // does not verify.
  static asio::awaitable<Result<std::shared_ptr<MuxConnection>>> Connect(
      std::string host, uint16_t port, ConnectionOptions options, ErrorFrameDecoder decode_error,
      base::Deadline deadline);

  // Sends one request (its payload written by `serialize`) and waits for the answer.
  //  - UNAVAILABLE: the connection was already broken; the request was not sent.
  //  - TIMEOUT: no answer before the deadline, or the connection broke after the request was
  //    queued. The server may or may not have executed it.
  template <typename Serialize>
  asio::awaitable<Result<std::string>> Call(size_t payload_size, Serialize&& serialize,
                                            base::Deadline deadline) {
    if (broken_) co_return broken_status_;
    // Refuse before queueing anything: UNAVAILABLE must mean "not sent".
    if (writer_.pending_bytes() > options_.max_buffered_output) {
      co_return Status::Unavailable("the connection is backed up: the server is not reading");
    }
    const uint64_t id = next_id_++;
    AppendFrame(writer_.buffer(), id, payload_size, std::forward<Serialize>(serialize));
    writer_.Wake();
    // Waits here rather than in a coroutine of its own: one frame less per call.
    auto self = shared_from_this();
    PendingCall call{asio::steady_timer(stream_.get_executor(), deadline), std::nullopt};
    pending_.emplace(id, &call);
    co_await call.timer.async_wait(base::kNoThrow);
    pending_.erase(id);
    if (call.result) co_return std::move(*call.result);
    co_return TimedOut();
  }

  bool broken() const { return broken_; }
  size_t inflight() const { return pending_.size(); }
  // Fails all calls in flight and closes the socket.
  void Close();

  MuxConnection(Stream stream, ConnectionOptions options, ErrorFrameDecoder decode_error);

 private:
  struct PendingCall {
    asio::steady_timer timer;
    std::optional<Result<std::string>> result;
  };

  static Status TimedOut();
  asio::awaitable<void> Start();
  asio::awaitable<Status> ReadLoop();
  void Break(Status why);

  Stream stream_;
  const ConnectionOptions options_;
  const ErrorFrameDecoder decode_error_;
  BatchWriter writer_;
  FrameDecoder decoder_;
  uint64_t next_id_ = 1;
  bool received_any_ = false;  // a byte has come from the server
  std::unordered_map<uint64_t, PendingCall*> pending_;
  bool broken_ = false;
  Status broken_status_;
};

}  // namespace cairn::net
