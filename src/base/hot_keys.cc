#include "base/hot_keys.h"

#include <algorithm>
#include <bit>
#include <functional>
#include <thread>
#include <utility>

#include "base/hash.h"

namespace cairn::base {

void SpaceSaving::Add(uint64_t id, uint32_t keyspace, std::string_view key, KeyAccess access,
                      uint64_t weight, size_t max_key_bytes) {
  if (capacity_ == 0) return;
  auto it = index_.find(id);
  if (it == index_.end()) {
    uint32_t slot;
    uint64_t inherited = 0;
    if (entries_.size() < capacity_) {
      slot = static_cast<uint32_t>(entries_.size());
      entries_.emplace_back();
    } else {
      // The counter of the smallest count: a scan of K counters, paid only by sampled
      // operations of keys not counted yet.
      slot = 0;
      for (uint32_t i = 1; i < entries_.size(); ++i) {
        if (entries_[i].count() < entries_[slot].count()) slot = i;
      }
      inherited = entries_[slot].count();
      index_.erase(entries_[slot].id);
    }
    Entry& e = entries_[slot];
    e.id = id;
    e.keyspace = keyspace;
    e.truncated = key.size() > max_key_bytes;
    e.key.assign(key.substr(0, max_key_bytes));
    e.reads = e.writes = e.increments = 0;
    e.error = inherited;
    it = index_.emplace(id, slot).first;
  }
  Entry& e = entries_[it->second];
  (access == KeyAccess::kRead ? e.reads : e.writes) += weight;
  if (access == KeyAccess::kIncrement) e.increments += weight;
}

void SpaceSaving::Clear() {
  entries_.clear();
  index_.clear();
}

HotKeys::HotKeys(Options options) : options_(options) {
  // A power of two, so that sampling is a mask rather than a division on every operation.
  options_.sample = std::bit_ceil(std::max<uint32_t>(options_.sample, 1));
  const Clock::time_point now = Clock::now();
  for (auto& shard : shards_) shard = std::make_unique<Shard>(options_.capacity, now);
}

HotKeys::Shard& HotKeys::ShardOfThisThread() {
  thread_local const size_t slot = std::hash<std::thread::id>()(std::this_thread::get_id());
  return *shards_[slot % kShards];
}

void HotKeys::Rotate(Shard& shard, Clock::time_point now) const {
  const auto age = now - shard.current_start;
  if (age < options_.window) return;
  if (age < 2 * options_.window) {
    std::swap(shard.previous, shard.current);
    shard.previous_start = shard.current_start;
    shard.current_start += options_.window;
  } else {  // nothing counted for a whole window: both are stale
    shard.previous.Clear();
    shard.previous_start = now - options_.window;
    shard.current_start = now;
  }
  shard.current.Clear();
}

uint64_t HotKeys::IdOf(uint32_t keyspace, std::string_view key) {
  return Hash64(key) ^ (uint64_t{keyspace} * 0x9e3779b97f4a7c15);
}

void HotKeys::AddSampled(uint32_t keyspace, std::string_view key, KeyAccess access,
                         Clock::time_point now) {
  const uint64_t id = IdOf(keyspace, key);
  {
    Shard& shard = ShardOfThisThread();
    std::lock_guard lock(shard.mu);
    Rotate(shard, now);
    shard.current.Add(id, keyspace, key, access, std::max<uint32_t>(options_.sample, 1),
                      kMaxKeyBytes);
  }
  // The hot set is picked again at most once a second, by the first sampled operation after it
  // is due (the exchange elects one; the others go on).
  const int64_t now_ns = now.time_since_epoch().count();
  int64_t due = next_pick_ns_.load(std::memory_order_relaxed);
  if (now_ns >= due && next_pick_ns_.compare_exchange_strong(due, now_ns + int64_t{1'000'000'000},
                                                             std::memory_order_relaxed)) {
    PickHot(now);
  }
}

void HotKeys::AddUnsampled(uint32_t keyspace, std::string_view key, KeyAccess access,
                           Clock::time_point now) {
  const uint64_t id = IdOf(keyspace, key);
  Shard& shard = ShardOfThisThread();
  std::lock_guard lock(shard.mu);
  Rotate(shard, now);
  shard.current.Add(id, keyspace, key, access, 1, kMaxKeyBytes);
}

void HotKeys::PickHot(Clock::time_point now) {
  uint32_t n = 0;
  if (options_.hot_ops_per_s > 0) {
    for (const HotKey& h : Top(0, kMaxHot, now)) {
      if (h.ops_per_s() < options_.hot_ops_per_s) break;  // most first
      hot_ids_[n++].store(h.id, std::memory_order_relaxed);
    }
  }
  hot_count_.store(n, std::memory_order_relaxed);
}

bool HotKeys::IsHotSlow(uint64_t id, uint32_t n) const {
  for (uint32_t i = 0; i < n && i < kMaxHot; ++i) {
    if (hot_ids_[i].load(std::memory_order_relaxed) == id) return true;
  }
  return false;
}

std::vector<HotKey> HotKeys::Top(uint32_t keyspace, size_t limit, Clock::time_point now) const {
  std::unordered_map<uint64_t, HotKey> merged;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mu);
    Rotate(*shard, now);
    // Both windows over the time they cover; at least a second, so that the first moments
    // after a start do not report a handful of operations as a high rate.
    const double seconds =
        std::max(std::chrono::duration<double>(now - shard->previous_start).count(), 1.0);
    for (const SpaceSaving* sketch :
         {&std::as_const(shard->previous), &std::as_const(shard->current)}) {
      for (const SpaceSaving::Entry& e : sketch->entries()) {
        if (keyspace != 0 && e.keyspace != keyspace) continue;
        HotKey& h = merged[e.id];
        if (h.key.empty()) {
          h.id = e.id;
          h.keyspace = e.keyspace;
          h.key = e.key;
          h.truncated = e.truncated;
        }
        h.reads_per_s += static_cast<double>(e.reads) / seconds;
        h.writes_per_s += static_cast<double>(e.writes) / seconds;
        h.increments_per_s += static_cast<double>(e.increments) / seconds;
        h.error_per_s += static_cast<double>(e.error) / seconds;
      }
    }
  }
  std::vector<HotKey> out;
  out.reserve(merged.size());
  for (auto& [id, h] : merged) out.push_back(std::move(h));
  std::sort(out.begin(), out.end(), [](const HotKey& a, const HotKey& b) {
    if (a.ops_per_s() != b.ops_per_s()) return a.ops_per_s() > b.ops_per_s();
    return a.key < b.key;
  });
  if (out.size() > limit) out.resize(limit);
  return out;
}

}  // namespace cairn::base
