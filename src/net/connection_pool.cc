#include "net/connection_pool.h"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace cairn::net {
namespace {
using base::kNoThrow;
}  // namespace

ConnectionPool::ConnectionPool(asio::any_io_executor executor, Options options)
    : executor_(std::move(executor)), options_(std::move(options)) {}

ConnectionPool::~ConnectionPool() { CloseAll(); }

ConnectionPool::Peer& ConnectionPool::PeerOf(const std::string& address) {
  auto it = peers_.find(address);
  if (it != peers_.end()) return it->second;
  Peer peer;
  auto where = ParseHostPort(address);
  if (where.ok()) {
    peer.host = where->first;
    peer.port = where->second;
  } else {
    peer.invalid = where.status();
  }
  for (size_t i = 0; i < std::max<size_t>(1, options_.per_peer); ++i) {
    peer.slots.push_back(std::make_unique<Slot>(executor_));
  }
  return peers_.emplace(address, std::move(peer)).first->second;
}

asio::awaitable<Result<std::shared_ptr<MuxConnection>>> ConnectionPool::Acquire(
    const std::string& address, base::Deadline deadline) {
  Peer& peer = PeerOf(address);
  if (!peer.invalid.ok()) co_return peer.invalid;
  Status last = Status::Unavailable("no connection");
  for (size_t tried = 0; tried < peer.slots.size(); ++tried) {
    Slot& slot = *peer.slots[peer.next++ % peer.slots.size()];
    if (slot.conn && !slot.conn->broken()) co_return slot.conn;
    if (slot.connecting) {
      co_await slot.ready.async_wait(kNoThrow);
      if (slot.conn && !slot.conn->broken()) co_return slot.conn;
      last = slot.last_error;
      continue;
    }
    if (base::Clock::now() < slot.retry_after) {
      last = slot.last_error;
      continue;
    }
    slot.connecting = true;
    slot.ready.expires_at(base::Clock::time_point::max());
    const base::Deadline connect_deadline =
        std::min(deadline, base::Clock::now() + options_.connect_timeout);
    auto conn = co_await MuxConnection::Connect(peer.host, peer.port, options_.connection,
                                                options_.decode_error, connect_deadline);
    if (conn.ok() && options_.on_open) {
      Status opened = co_await options_.on_open(**conn, deadline);
      if (!opened.ok()) {
        (*conn)->Close();
        conn = opened;
      }
    }
    slot.connecting = false;
    slot.ready.cancel();
    if (conn.ok()) {
      slot.conn = std::move(*conn);
      slot.backoff = std::chrono::milliseconds(0);
      co_return slot.conn;
    }
    slot.last_error = conn.status();
    slot.backoff = std::clamp(slot.backoff * 2, std::chrono::milliseconds(100),
                              std::chrono::milliseconds(5000));
    slot.retry_after = base::Clock::now() + slot.backoff;
    last = conn.status();
  }
  co_return last;
}

std::shared_ptr<MuxConnection> ConnectionPool::Ready(const std::string& address) {
  auto it = peers_.find(address);
  if (it == peers_.end()) return nullptr;
  Peer& peer = it->second;
  if (!peer.invalid.ok()) return nullptr;
  const Slot& slot = *peer.slots[peer.next % peer.slots.size()];
  if (!slot.conn || slot.conn->broken()) return nullptr;
  ++peer.next;
  return slot.conn;
}

void ConnectionPool::ResetBackoff(const std::string& address) {
  auto it = peers_.find(address);
  if (it == peers_.end()) return;
  for (auto& slot : it->second.slots) {
    slot->retry_after = {};
    slot->backoff = std::chrono::milliseconds(0);
  }
}

void ConnectionPool::CloseAll() {
  for (auto& [address, peer] : peers_) {
    for (auto& slot : peer.slots) {
      if (slot->conn) slot->conn->Close();
      slot->conn.reset();
    }
  }
}

}  // namespace cairn::net
