// A cache of the stored values of recently read keys, in front of RocksDB's point reads.
//
// A key read again and again (a hot key) costs a RocksDB lookup each time: a memtable skiplist
// search, then folding whatever merge operands the key has. The cache answers those reads from
// memory. It is exact, not a hint: it holds what RocksDB would answer, because the engine's
// writer tells it about every data write, and because of how it is filled.
//
// Filling: a reader that misses takes a Ticket, reads RocksDB, and offers what it read with the
// ticket. The value is kept only if no write touched the key's shard in between; otherwise it
// may be older than what is now committed, and it is dropped.
//
// Writing: the writer thread calls BeginWrite() for every data key of a group before the group
// is written and EndWrite() after it is visible. Both move the shard on, which voids the tickets
// of reads in flight, and in between the key's entry is not answered from and the shard takes
// no fills: the write may already be visible in RocksDB, and a reader that saw it there must not
// be followed by one that is answered the older cached value. EndWrite() also brings a cached
// entry up to date: data keys are last writer wins, so the key's value after the write is the
// newer of what was cached and the newest version the group wrote. A failed group's keys, and
// the keys a group purges (deletes outright), are dropped instead (EndWrite with null).
//
// Compaction is the one change the cache does not follow: it turns an expired value into a
// tombstone of the same version. A cached entry may then still hold the expired value. No reader
// can tell the difference (neither is live, and both have the same version), and
// Engine::CompactAll() clears the cache so that tests and `cairn compact` see what is on disk.
//
// Thread safety: all methods may be called from any thread; each shard has its own mutex.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/metrics.h"
#include "storage/format.h"

namespace cairn::storage {

class ReadCache {
 public:
  // Holds at most about `capacity_bytes` of keys and values (0 disables the cache); values
  // larger than `max_value_bytes` are not kept.
  ReadCache(size_t capacity_bytes, size_t max_value_bytes);

  ReadCache(const ReadCache&) = delete;
  ReadCache& operator=(const ReadCache&) = delete;

  bool enabled() const { return capacity_bytes_ > 0; }

  // What a reader needs to offer what it read after a miss.
  struct Ticket {
    size_t shard = 0;
    uint64_t generation = 0;
  };

  // The cached result of reading `key` (an encoded data key): nullopt on a miss, which fills
  // `ticket`; else the stored value, or nullopt inside when the key is known to be absent.
  std::optional<std::optional<StoredValue>> Find(std::string_view key, Ticket* ticket);

  // The version cached for `key`: nullopt on a miss, which fills `ticket`; else the version, or
  // nullopt inside when the key is known to be absent. For the engine's writer, which needs only
  // the committed version of a key it writes: it copies no value, leaves the LRU order as it is
  // and counts neither a hit nor a miss (a write is not a read).
  std::optional<std::optional<Version>> FindVersion(std::string_view key, Ticket* ticket);

  // Keeps `value` (what RocksDB answered for `key`; nullopt: not found) unless a write touched
  // the key's shard since `ticket` was taken, or the value is too large.
  void Fill(std::string_view key, const std::optional<StoredValue>& value, const Ticket& ticket);

  // Called by the writer thread around a write of `key`: before it is applied, and after it is
  // visible to reads, with the newest version the write holds (null when the write failed).
  void BeginWrite(std::string_view key);
  void EndWrite(std::string_view key, const StoredValue* newest);

  // Forgets everything and voids every ticket (a keyspace drop, whose range deletion the cache
  // cannot follow key by key). Call it both before and after such a write.
  void Clear();

  struct Counters {
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t entries = 0;
    uint64_t bytes = 0;
  };
  Counters counters() const;

 private:
  static constexpr size_t kShards = 64;
  // A map node, a list node and the bookkeeping around a cached key and value.
  static constexpr size_t kEntryOverhead = 128;

  struct Entry {
    std::string key;
    std::optional<StoredValue> value;
    size_t bytes = 0;
    bool writing = false;  // between BeginWrite() and EndWrite(): not answered from
  };
  struct Shard {
    mutable std::mutex mu;
    uint64_t generation = 0;  // guarded by mu; moved on by every write to the shard
    uint32_t writing = 0;     // guarded by mu; keys between BeginWrite() and EndWrite()
    size_t bytes = 0;         // guarded by mu
    std::list<Entry> lru;     // guarded by mu; most recently used first
    std::unordered_map<std::string_view, std::list<Entry>::iterator> index;  // guarded by mu
  };

  Shard& ShardOf(std::string_view key, size_t* index);
  static size_t BytesOf(std::string_view key, const std::optional<StoredValue>& value);
  // Under the shard's mutex: inserts or replaces, then evicts down to the shard's budget.
  void PutLocked(Shard& shard, std::string_view key, const std::optional<StoredValue>& value);
  void EraseLocked(Shard& shard, std::string_view key);

  const size_t capacity_bytes_;
  const size_t shard_budget_;
  const size_t max_value_bytes_;
  std::array<Shard, kShards> shards_;
  base::metrics::ShardedCounter hits_;  // every read adds to one: per thread (base/metrics.h)
  base::metrics::ShardedCounter misses_;
};

}  // namespace cairn::storage
