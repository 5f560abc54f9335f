// A cache of the raw records of one column family (the Paxos acceptor state), for the engine's
// writer thread alone.
//
// Every Paxos step reads the key's acceptor record inside its group commit, and an uncontended
// compare-and-swap takes two steps per replica: with RocksDB's memtable skiplist behind each
// read, those lookups cost as much as the rest of the step. The family is written only by group
// commits, which run on the writer thread, so a cache owned by that thread stays exact without
// locks or tickets: a miss is filled from RocksDB (nothing can write in between), a committed
// group's records are put in after its write, and a failed group clears the cache. Records read
// outside group commits (tests, tools) go to RocksDB.
//
// Thread safety: the writer thread only, except hits() and misses(), which any thread may read.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace cairn::storage {

class RecordCache {
 public:
  // Holds at most about `capacity_bytes` of keys and records (0 disables the cache).
  explicit RecordCache(size_t capacity_bytes) : capacity_bytes_(capacity_bytes) {}

  RecordCache(const RecordCache&) = delete;
  RecordCache& operator=(const RecordCache&) = delete;

  // The cached record of `key`, as the family holds it (nullopt inside: the key has none), or
  // nullptr when the key is not cached. Valid until the next Put() or Clear().
  const std::optional<std::string>* Find(std::string_view key);
  // Sets what the family holds for `key` (nullopt: nothing), as most recently used.
  void Put(std::string_view key, std::optional<std::string> record);
  void Clear();

  size_t entries() const { return index_.size(); }
  size_t bytes() const { return bytes_; }
  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    std::string key;
    std::optional<std::string> record;
  };
  static size_t Cost(const Entry& e) {
    return e.key.size() + (e.record ? e.record->size() : 0) + kOverheadBytes;
  }
  // List node, index slot and string headers, roughly.
  static constexpr size_t kOverheadBytes = 96;

  const size_t capacity_bytes_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;  // views of Entry::key
  size_t bytes_ = 0;
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
};

}  // namespace cairn::storage
