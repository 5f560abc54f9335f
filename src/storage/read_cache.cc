#include "storage/read_cache.h"

#include "base/hash.h"

namespace cairn::storage {

ReadCache::ReadCache(size_t capacity_bytes, size_t max_value_bytes)
    : capacity_bytes_(capacity_bytes),
      shard_budget_(capacity_bytes / kShards),
      max_value_bytes_(max_value_bytes) {}

ReadCache::Shard& ReadCache::ShardOf(std::string_view key, size_t* index) {
  *index = base::Hash64(key) % kShards;
  return shards_[*index];
}

size_t ReadCache::BytesOf(std::string_view key, const std::optional<StoredValue>& value) {
  return kEntryOverhead + 2 * key.size() + (value ? value->value.size() : 0);
}

std::optional<std::optional<StoredValue>> ReadCache::Find(std::string_view key, Ticket* ticket) {
  if (!enabled()) {
    misses_.Add();
    return std::nullopt;
  }
  size_t index = 0;
  Shard& shard = ShardOf(key, &index);
  std::lock_guard lock(shard.mu);
  auto it = shard.index.find(key);
  if (it == shard.index.end() || it->second->writing) {
    ticket->shard = index;
    ticket->generation = shard.generation;
    misses_.Add();
    return std::nullopt;
  }
  shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
  hits_.Add();
  return it->second->value;
}

std::optional<std::optional<Version>> ReadCache::FindVersion(std::string_view key, Ticket* ticket) {
  if (!enabled()) return std::nullopt;
  size_t index = 0;
  Shard& shard = ShardOf(key, &index);
  std::lock_guard lock(shard.mu);
  auto it = shard.index.find(key);
  if (it == shard.index.end() || it->second->writing) {
    ticket->shard = index;
    ticket->generation = shard.generation;
    return std::nullopt;
  }
  const std::optional<StoredValue>& value = it->second->value;
  return value ? std::optional<Version>(value->version) : std::optional<Version>();
}

void ReadCache::Fill(std::string_view key, const std::optional<StoredValue>& value,
                     const Ticket& ticket) {
  if (!enabled() || (value && value->value.size() > max_value_bytes_)) return;
  Shard& shard = shards_[ticket.shard];
  std::lock_guard lock(shard.mu);
  // A write since the ticket may have made `value` stale; one in progress may have too.
  if (shard.generation != ticket.generation || shard.writing > 0) return;
  PutLocked(shard, key, value);
}

void ReadCache::BeginWrite(std::string_view key) {
  if (!enabled()) return;
  size_t index = 0;
  Shard& shard = ShardOf(key, &index);
  std::lock_guard lock(shard.mu);
  ++shard.generation;
  ++shard.writing;
  if (auto it = shard.index.find(key); it != shard.index.end()) it->second->writing = true;
}

void ReadCache::EndWrite(std::string_view key, const StoredValue* newest) {
  if (!enabled()) return;
  size_t index = 0;
  Shard& shard = ShardOf(key, &index);
  std::lock_guard lock(shard.mu);
  ++shard.generation;
  --shard.writing;
  auto it = shard.index.find(key);
  if (it == shard.index.end()) return;
  it->second->writing = false;
  if (newest == nullptr || newest->value.size() > max_value_bytes_) {
    EraseLocked(shard, key);
    return;
  }
  // Last writer wins: what the key holds now is the newer of the two.
  const std::optional<StoredValue>& cached = it->second->value;
  if (!cached || cached->version < newest->version) {
    std::optional<StoredValue> value = *newest;
    PutLocked(shard, key, value);
  }
}

void ReadCache::Clear() {
  if (!enabled()) return;
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    ++shard.generation;
    shard.index.clear();
    shard.lru.clear();
    shard.bytes = 0;
  }
}

ReadCache::Counters ReadCache::counters() const {
  Counters out;
  out.hits = hits_.value();
  out.misses = misses_.value();
  for (const Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    out.entries += shard.index.size();
    out.bytes += shard.bytes;
  }
  return out;
}

void ReadCache::PutLocked(Shard& shard, std::string_view key,
                          const std::optional<StoredValue>& value) {
  const size_t bytes = BytesOf(key, value);
  if (bytes > shard_budget_) {
    EraseLocked(shard, key);
    return;
  }
  if (auto it = shard.index.find(key); it != shard.index.end()) {
    Entry& entry = *it->second;
    shard.bytes -= entry.bytes;
    entry.value = value;
    entry.bytes = bytes;
    shard.bytes += bytes;
    shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
  } else {
    shard.lru.push_front(Entry{std::string(key), value, bytes});
    // The index's key views the entry's own copy, which a list node never moves.
    shard.index.emplace(shard.lru.front().key, shard.lru.begin());
    shard.bytes += bytes;
  }
  while (shard.bytes > shard_budget_ && shard.lru.size() > 1) {
    Entry& victim = shard.lru.back();
    shard.bytes -= victim.bytes;
    shard.index.erase(victim.key);
    shard.lru.pop_back();
  }
}

void ReadCache::EraseLocked(Shard& shard, std::string_view key) {
  auto it = shard.index.find(key);
  if (it == shard.index.end()) return;
  shard.bytes -= it->second->bytes;
  const auto node = it->second;
  shard.index.erase(it);  // first: its key views the list node's
  shard.lru.erase(node);
}

}  // namespace cairn::storage
