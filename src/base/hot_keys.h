// Hot-key detection (issue #17): a bounded top-K sketch of the keys a node coordinates, reads
// and writes counted apart, per keyspace, over a sliding window.
//
// The sketch is Space-Saving (Metwally, Agrawal, El Abbadi, 2005): K counters; a key not
// counted yet takes the counter of the smallest count and inherits that count as its possible
// overestimate (`error`). Every key whose share of the counted operations is above 1/K is
// always in it, and no count is low by more than its error. Operations are sampled (one in
// `sample`, at random, weighted by `sample`): a hot key is counted from thousands of operations
// and stays exact enough, and the other operations cost a random number and a compare.
//
// Windows: each shard counts into a current sketch for `window`, then that becomes the previous
// one and a new current begins; rates are both divided by the time they cover, so a key that
// stops being hot drops out within two windows.
//
// Thread safety: Add() and Top() may be called from any thread. Callers are spread over a few
// shards by thread (each with its own mutex, taken only by sampled operations and by Top()).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace cairn::base {

// One key's estimated load, as Top() reports it.
struct HotKey {
  uint64_t id = 0;  // the keyspace and a hash of the whole key, mixed (HotKeys::IdOf)
  uint32_t keyspace = 0;
  std::string key;         // at most HotKeys::kMaxKeyBytes of it
  bool truncated = false;  // the key is longer than `key`
  double reads_per_s = 0;
  double writes_per_s = 0;
  // Of the writes, the increments of a counter (RESP INCR and its kin, native Increment): what
  // automatic splitting looks at, since a key written with SET is often not a counter.
  double increments_per_s = 0;
  // How much of reads + writes may be overcounted (the Space-Saving error), per second.
  double error_per_s = 0;

  double ops_per_s() const { return reads_per_s + writes_per_s; }
};

// One Space-Saving sketch of `capacity` counters. Not thread-safe.
// What an operation counted does to its key.
enum class KeyAccess { kRead, kWrite, kIncrement /* a write, counted among increments too */ };

class SpaceSaving {
 public:
  struct Entry {
    uint64_t id = 0;  // keyspace and key hash, mixed
    uint32_t keyspace = 0;
    std::string key;
    bool truncated = false;
    uint64_t reads = 0, writes = 0;
    uint64_t increments = 0;  // of the writes; not in count(), so that none is counted twice
    uint64_t error = 0;       // the count it inherited when it took a counter

    uint64_t count() const { return reads + writes + error; }
  };

  explicit SpaceSaving(size_t capacity) : capacity_(capacity) {}

  void Add(uint64_t id, uint32_t keyspace, std::string_view key, KeyAccess access, uint64_t weight,
           size_t max_key_bytes);
  void Clear();
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  size_t capacity_;
  std::vector<Entry> entries_;
  std::unordered_map<uint64_t, uint32_t> index_;  // id -> index into entries_
};

class HotKeys {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kMaxKeyBytes = 256;  // of a key, kept for reports
  static constexpr size_t kShards = 8;

  struct Options {
    size_t capacity = 128;  // counters per shard and window
    // A key is hot (IsHot) once its estimated operations per second reach this, and it is among
    // the kMaxHot most frequent; 0: none ever is.
    double hot_ops_per_s = 1000;
    uint32_t sample = 8;  // one operation in `sample` is counted (1: every one); a power of 2
    std::chrono::milliseconds window{10'000};
  };
  HotKeys() : HotKeys(Options()) {}
  explicit HotKeys(Options options);

  // Counts one read or write of `key` in keyspace `keyspace` (after sampling).
  void Add(uint32_t keyspace, std::string_view key, bool write) {
    if (Sampled()) {
      AddSampled(keyspace, key, write ? KeyAccess::kWrite : KeyAccess::kRead, Clock::now());
    }
  }
  // Counts one increment of the counter `key`: a write, and an increment (after sampling).
  void AddIncrement(uint32_t keyspace, std::string_view key) {
    if (Sampled()) AddSampled(keyspace, key, KeyAccess::kIncrement, Clock::now());
  }
  // The same with a given time and no sampling: for tests.
  void AddAt(uint32_t keyspace, std::string_view key, bool write, Clock::time_point now) {
    AddUnsampled(keyspace, key, write ? KeyAccess::kWrite : KeyAccess::kRead, now);
  }
  void AddIncrementAt(uint32_t keyspace, std::string_view key, Clock::time_point now) {
    AddUnsampled(keyspace, key, KeyAccess::kIncrement, now);
  }

  // The `limit` keys with the most operations per second, most first; `keyspace` 0: every
  // keyspace.
  std::vector<HotKey> Top(uint32_t keyspace, size_t limit) const {
    return Top(keyspace, limit, Clock::now());
  }
  std::vector<HotKey> Top(uint32_t keyspace, size_t limit, Clock::time_point now) const;

  const Options& options() const { return options_; }

  // Whether `key` of `keyspace` was among the hot keys when they were last picked (at most a
  // second ago, from the sketch). Costs one relaxed load while no key is hot; a hash of the key
  // and a scan of at most kMaxHot slots otherwise. A key may be reported hot a moment after it
  // cooled down, or not yet: callers use it for hints only.
  bool IsHot(uint32_t keyspace, std::string_view key) const {
    const uint32_t n = hot_count_.load(std::memory_order_relaxed);
    if (n == 0) return false;
    return IsHotSlow(IdOf(keyspace, key), n);
  }
  bool AnyHot() const { return hot_count_.load(std::memory_order_relaxed) != 0; }
  // Picks the hot keys again from the sketch now (Add() does it at most once a second).
  void PickHot(Clock::time_point now);

  static uint64_t IdOf(uint32_t keyspace, std::string_view key);
  static constexpr uint32_t kMaxHot = 16;

 private:
  struct Shard {
    Shard(size_t capacity, Clock::time_point start)
        : current(capacity), previous(capacity), current_start(start), previous_start(start) {}
    mutable std::mutex mu;
    SpaceSaving current, previous;
    Clock::time_point current_start, previous_start;
  };

  bool Sampled() {
    if (options_.sample <= 1) return true;
    thread_local uint64_t state = 0x9e3779b97f4a7c15 ^ reinterpret_cast<uintptr_t>(&state);
    state ^= state << 13;  // xorshift64
    state ^= state >> 7;
    state ^= state << 17;
    return (state & (options_.sample - 1)) == 0;
  }
  void AddSampled(uint32_t keyspace, std::string_view key, KeyAccess access, Clock::time_point now);
  void AddUnsampled(uint32_t keyspace, std::string_view key, KeyAccess access,
                    Clock::time_point now);
  Shard& ShardOfThisThread();
  void Rotate(Shard& shard, Clock::time_point now) const;

  bool IsHotSlow(uint64_t id, uint32_t n) const;

  Options options_;
  std::array<std::unique_ptr<Shard>, kShards> shards_;
  // The hot keys' ids (PickHot), read without a lock: a reader that races a new pick may see a
  // mix of the old and the new set for a moment, which a hint tolerates.
  std::array<std::atomic<uint64_t>, kMaxHot> hot_ids_{};
  std::atomic<uint32_t> hot_count_{0};
  std::atomic<int64_t> next_pick_ns_{0};  // steady-clock time of the next PickHot from Add
};

}  // namespace cairn::base
