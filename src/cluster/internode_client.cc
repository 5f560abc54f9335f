#include "cluster/internode_client.h"

#include <algorithm>

#include <fmt/format.h>

namespace cairn::cluster {
namespace {

Status StatusOf(const internode::Error& e) { return StatusFromCode(e.code(), e.message()); }

Status DecodeErrorFrame(std::string_view payload) {
  return net::DecodeClosingError<internode::Response>(payload, "the peer");
}

net::ConnectionPool::Options PoolOptions(size_t max_payload,
                                         std::function<std::shared_ptr<net::ssl::context>()> tls) {
  net::ConnectionPool::Options o;
  o.connection.tls = std::move(tls);
  o.connection.preamble = std::string(net::kInternodePreamble);
  o.connection.max_payload = max_payload;
  o.decode_error = DecodeErrorFrame;
  o.per_peer = 1;
  o.connect_timeout = std::chrono::milliseconds(1000);
  // A partition longer than this breaks the connections it stalled: after the heal, requests go
  // out on fresh ones instead of waiting out TCP's retransmission backoff.
  o.connection.tcp_user_timeout = std::chrono::milliseconds(1500);
  return o;
}

}  // namespace

InternodeClient::InternodeClient(asio::any_io_executor executor, uint32_t self_node,
                                 size_t max_payload,
                                 std::function<std::shared_ptr<net::ssl::context>()> tls)
    : self_(self_node), pool_(std::move(executor), PoolOptions(max_payload, std::move(tls))) {}

asio::awaitable<Result<internode::Response>> InternodeClient::Call(
    const std::string& address, const internode::Request& request, base::Deadline deadline) {
  std::shared_ptr<net::MuxConnection> conn = pool_.Ready(address);
  if (!conn) {
    auto acquired = co_await pool_.Acquire(address, deadline);
    if (!acquired.ok()) co_return acquired.status();
    conn = std::move(*acquired);
  }
  // The envelope's fields are encoded after the request's: a field met twice in the protobuf
  // wire format takes its last value, so these win over any the caller set.
  internode::Request stamp;
  stamp.set_protocol_version(internode::PROTOCOL_V1);
  stamp.set_from_node(self_);
  // A request planned with a topology carries that epoch (the fence judges the plan, not when it
  // was sent); any other carries this node's newest.
  const uint64_t epoch = epoch_ ? epoch_() : 0;
  if (epoch != 0 && request.topology_epoch() == 0) stamp.set_topology_epoch(epoch);
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - base::Clock::now());
  stamp.set_timeout_ms(static_cast<uint32_t>(std::max<int64_t>(1, left.count())));
  // Both sizes are computed and used with no suspension between (the request's cached sizes
  // belong to whoever serializes it last on this reactor).
  const size_t body = request.ByteSizeLong();
  const size_t size = body + stamp.ByteSizeLong();
  auto payload = co_await conn->Call(
      size,
      [&](char* dest) {
        auto* out = reinterpret_cast<uint8_t*>(dest);
        request.SerializeWithCachedSizesToArray(out);
        stamp.SerializeWithCachedSizesToArray(out + body);
      },
      deadline);
  if (!payload.ok()) co_return payload.status();
  internode::Response response;
  if (!response.ParseFromArray(payload->data(), static_cast<int>(payload->size()))) {
    co_return Status::Internal(fmt::format("malformed internode response from {}", address));
  }
  if (response.topology_epoch() > epoch && on_newer_) on_newer_(address, response.topology_epoch());
  if (response.has_error()) {
    Status s = StatusOf(response.error());
    if (!s.ok()) co_return s;
  }
  co_return response;
}

}  // namespace cairn::cluster
