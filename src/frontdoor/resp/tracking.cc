#include "frontdoor/resp/tracking.h"

#include <algorithm>

namespace cairn::frontdoor::resp {

void TrackingTable::Enable(uint64_t client, const TrackingMode& mode,
                           const std::vector<std::string>& prefixes) {
  std::lock_guard lock(mu_);
  auto [it, added] = clients_.try_emplace(client);
  Client& c = it->second;
  if (!added && c.mode.bcast) --bcast_clients_;
  c.mode = mode;
  c.broken_redirect = false;
  if (mode.bcast) {
    ++bcast_clients_;
    if (prefixes.empty() && c.prefixes.empty()) c.prefixes.emplace_back();
    for (const std::string& p : prefixes) c.prefixes.push_back(p);
    std::sort(c.prefixes.begin(), c.prefixes.end());
  }
}

bool TrackingTable::Disable(uint64_t client) {
  std::lock_guard lock(mu_);
  auto it = clients_.find(client);
  if (it == clients_.end()) return false;
  for (Entry* e : it->second.keys) {
    auto& ids = e->clients;
    ids.erase(std::remove(ids.begin(), ids.end(), client), ids.end());
    --items_;
    if (ids.empty()) EraseLocked(index_.at(e->key));
  }
  if (it->second.mode.bcast) --bcast_clients_;
  clients_.erase(it);
  return true;
}

std::optional<TrackingTable::ClientInfo> TrackingTable::Info(uint64_t client) const {
  std::lock_guard lock(mu_);
  auto it = clients_.find(client);
  if (it == clients_.end()) return std::nullopt;
  ClientInfo info;
  info.mode = it->second.mode;
  info.prefixes = it->second.prefixes;
  info.broken_redirect = it->second.broken_redirect;
  info.keys = it->second.keys.size();
  return info;
}

void TrackingTable::MarkBrokenRedirect(uint64_t client) {
  std::lock_guard lock(mu_);
  if (auto it = clients_.find(client); it != clients_.end()) it->second.broken_redirect = true;
}

void TrackingTable::EraseLocked(Entries::iterator e) {
  for (uint64_t id : e->clients) {
    if (auto c = clients_.find(id); c != clients_.end()) c->second.keys.erase(&*e);
    --items_;
  }
  if (e->expires_at_ms != 0) expiries_.erase(e->expiry);
  index_.erase(e->key);
  entries_.erase(e);
}

void TrackingTable::Remember(uint64_t client, std::span<const std::string> keys,
                             std::vector<Invalidation>* evicted) {
  std::lock_guard lock(mu_);
  auto c = clients_.find(client);
  if (c == clients_.end() || c->second.mode.bcast) return;
  for (const std::string& key : keys) {
    auto found = index_.find(key);
    Entries::iterator e;
    if (found == index_.end()) {
      entries_.emplace_back();
      e = std::prev(entries_.end());
      e->key = key;
      index_.emplace(e->key, e);
    } else {
      e = found->second;
    }
    if (std::find(e->clients.begin(), e->clients.end(), client) != e->clients.end()) continue;
    e->clients.push_back(client);
    c->second.keys.insert(&*e);
    ++items_;
  }
  // The bound: the oldest keys go, and whoever remembered them is told (Redis does the same
  // with random keys).
  while (entries_.size() > max_keys_ && !entries_.empty()) {
    Entries::iterator oldest = entries_.begin();
    for (uint64_t id : oldest->clients) {
      auto t = clients_.find(id);
      if (t == clients_.end()) continue;
      Invalidation inv;
      inv.client = id;
      inv.redirect = t->second.mode.redirect;
      inv.keys.push_back(oldest->key);
      evicted->push_back(std::move(inv));
    }
    ++evicted_;
    EraseLocked(oldest);
  }
}

void TrackingTable::NoteExpiry(std::span<const std::string> keys, uint64_t expires_at_ms) {
  if (expires_at_ms == 0) return;
  std::lock_guard lock(mu_);
  for (const std::string& key : keys) {
    auto found = index_.find(key);
    if (found == index_.end()) continue;
    Entry& e = *found->second;
    if (e.expires_at_ms != 0 && e.expires_at_ms <= expires_at_ms) continue;
    if (e.expires_at_ms != 0) expiries_.erase(e.expiry);
    e.expires_at_ms = expires_at_ms;
    e.expiry = expiries_.emplace(expires_at_ms, &e);
  }
}

void TrackingTable::InvalidateLocked(std::span<const std::string> keys, uint64_t origin,
                                     std::vector<Invalidation>* out) {
  for (const std::string& key : keys) {
    auto found = index_.find(key);
    if (found == index_.end()) continue;
    Entries::iterator e = found->second;
    for (uint64_t id : e->clients) {
      auto c = clients_.find(id);
      if (c == clients_.end()) continue;
      // NOLOOP: not told of its own change, but the key is forgotten for it too (as Redis).
      if (c->second.mode.noloop && id == origin) continue;
      Invalidation inv;
      inv.client = id;
      inv.redirect = c->second.mode.redirect;
      inv.keys.push_back(key);
      out->push_back(std::move(inv));
    }
    EraseLocked(e);
  }
}

std::vector<Invalidation> TrackingTable::KeysChanged(std::span<const std::string> keys,
                                                     uint64_t origin) {
  std::vector<Invalidation> out;
  std::lock_guard lock(mu_);
  if (!index_.empty()) InvalidateLocked(keys, origin, &out);
  if (bcast_clients_ == 0) return out;
  for (const auto& [id, c] : clients_) {
    if (!c.mode.bcast || (c.mode.noloop && id == origin)) continue;
    for (const std::string& prefix : c.prefixes) {
      Invalidation inv;
      for (const std::string& key : keys) {
        if (std::string_view(key).starts_with(prefix)) inv.keys.push_back(key);
      }
      if (inv.keys.empty()) continue;
      inv.client = id;
      inv.redirect = c.mode.redirect;
      out.push_back(std::move(inv));
    }
  }
  return out;
}

std::vector<Invalidation> TrackingTable::Flushed() {
  std::vector<Invalidation> out;
  std::lock_guard lock(mu_);
  for (auto& [id, c] : clients_) {
    Invalidation inv;
    inv.client = id;
    inv.redirect = c.mode.redirect;
    inv.all = true;
    out.push_back(std::move(inv));
    c.keys.clear();
  }
  index_.clear();
  expiries_.clear();
  entries_.clear();
  items_ = 0;
  return out;
}

std::vector<Invalidation> TrackingTable::Expire(uint64_t now_ms) {
  std::vector<Invalidation> out;
  std::lock_guard lock(mu_);
  std::vector<std::string> due;
  for (auto it = expiries_.begin(); it != expiries_.end() && it->first <= now_ms; ++it) {
    due.push_back(it->second->key);
  }
  InvalidateLocked(due, 0, &out);
  return out;
}

std::optional<uint64_t> TrackingTable::NextExpiry() const {
  std::lock_guard lock(mu_);
  if (expiries_.empty()) return std::nullopt;
  return expiries_.begin()->first;
}

TrackingTable::Figures TrackingTable::figures() const {
  std::lock_guard lock(mu_);
  Figures f;
  f.clients = clients_.size();
  f.keys = index_.size();
  f.items = items_;
  for (const auto& [id, c] : clients_) f.prefixes += c.prefixes.size();
  f.evicted = evicted_;
  return f;
}

}  // namespace cairn::frontdoor::resp
