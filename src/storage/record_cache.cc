#include "storage/record_cache.h"

namespace cairn::storage {

const std::optional<std::string>* RecordCache::Find(std::string_view key) {
  auto it = index_.find(key);
  if (it == index_.end()) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  hits_.fetch_add(1, std::memory_order_relaxed);
  lru_.splice(lru_.begin(), lru_, it->second);
  return &it->second->record;
}

void RecordCache::Put(std::string_view key, std::optional<std::string> record) {
  if (capacity_bytes_ == 0) return;
  if (auto it = index_.find(key); it != index_.end()) {
    Entry& e = *it->second;
    bytes_ -= Cost(e);
    e.record = std::move(record);
    bytes_ += Cost(e);
    lru_.splice(lru_.begin(), lru_, it->second);
  } else {
    lru_.push_front(Entry{std::string(key), std::move(record)});
    bytes_ += Cost(lru_.front());
    index_.emplace(lru_.front().key, lru_.begin());
  }
  while (bytes_ > capacity_bytes_ && !lru_.empty()) {
    const Entry& last = lru_.back();
    bytes_ -= Cost(last);
    index_.erase(last.key);
    lru_.pop_back();
  }
}

void RecordCache::Clear() {
  index_.clear();
  lru_.clear();
  bytes_ = 0;
}

}  // namespace cairn::storage
