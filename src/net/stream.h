// Stream: one connection's byte stream, plain TCP or TLS over it, as every front door and the
// internode connections use it. The plain path costs one branch per read or write.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "base/async.h"
#include "cairn/status.h"

namespace cairn::net {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

// Whether a read ended because the peer closed: a TCP FIN, or (under TLS) a FIN without TLS's
// close_notify first, which is how most clients (redis-cli, curl, Cairn's own) hang up.
inline bool IsEndOfStream(const boost::system::error_code& ec) {
  return ec == asio::error::eof || ec == ssl::error::stream_truncated;
}

// A TCP socket, or a TLS session over one. Satisfies Asio's AsyncReadStream and
// AsyncWriteStream (asio::async_read/async_write and Beast work on it); one read and one write
// may be outstanding at once, as on a socket.
// Thread safety: as a socket's, use it on its executor only.
class Stream {
 public:
  using executor_type = tcp::socket::executor_type;

  // Plain TCP.
  explicit Stream(tcp::socket socket) : socket_(std::move(socket)) {}
  // TLS over `socket` with `context` (kept alive as long as the stream); call Handshake() first.
  Stream(tcp::socket socket, std::shared_ptr<ssl::context> context)
      : socket_(socket.get_executor()),
        context_(std::move(context)),
        tls_(std::make_unique<ssl::stream<tcp::socket>>(std::move(socket), *context_)) {}

  Stream(Stream&&) = default;
  Stream& operator=(Stream&&) = default;

  executor_type get_executor() { return socket().get_executor(); }
  // The TCP socket (under the TLS session, if any): for options, endpoints, shutdown and close.
  tcp::socket& socket() { return tls_ ? tls_->next_layer() : socket_; }
  const tcp::socket& socket() const { return tls_ ? tls_->next_layer() : socket_; }
  bool tls() const { return tls_ != nullptr; }

  // Client side, before Handshake(): the server's certificate must name `host` (a DNS name or an
  // IP address), which is also sent as the TLS server name (SNI) when it is a name.
  Status ExpectPeerName(const std::string& host);
  // The TLS handshake (plain TCP: OK at once). UNAVAILABLE with OpenSSL's reason (a certificate
  // that does not verify, a peer that does not speak TLS) or when `deadline` passes first.
  asio::awaitable<Status> Handshake(ssl::stream_base::handshake_type type, base::Deadline deadline);
  // Whether the peer presented a certificate that verified against the context's CA (mutual TLS,
  // server side). Plain TCP: false.
  bool PeerVerified() const;
  // The peer's certificate in one line (subject, serial), or "" when it sent none.
  std::string PeerCertificate() const;

  // Shuts the TCP connection down both ways and closes it (no TLS close_notify: every peer of
  // Cairn's treats a FIN as the end).
  void Close() {
    boost::system::error_code ec;
    socket().shutdown(tcp::socket::shutdown_both, ec);
    socket().close(ec);
  }

  template <typename MutableBuffers, typename Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(boost::system::error_code, size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (tls_) {
            tls_->async_read_some(b, std::move(handler));
          } else {
            socket_.async_read_some(b, std::move(handler));
          }
        },
        token, buffers);
  }

  template <typename ConstBuffers, typename Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(boost::system::error_code, size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          if (tls_) {
            tls_->async_write_some(b, std::move(handler));
          } else {
            socket_.async_write_some(b, std::move(handler));
          }
        },
        token, buffers);
  }

 private:
  tcp::socket socket_;  // plain TCP; unused (closed) under TLS
  std::shared_ptr<ssl::context> context_;
  std::unique_ptr<ssl::stream<tcp::socket>> tls_;
};

}  // namespace cairn::net
