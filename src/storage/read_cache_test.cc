#include "storage/read_cache.h"

#include <atomic>
#include <future>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "storage/engine.h"
#include "tests/support/temp_dir.h"

namespace cairn::storage {
namespace {

StoredValue Value(std::string bytes, uint64_t hlc) {
  return StoredValue{.version = {hlc, 1}, .value = std::move(bytes)};
}

// Reads `key` as the engine does: the cache, else `stored` (standing for RocksDB), offered back.
std::optional<StoredValue> ReadThrough(ReadCache& cache, std::string_view key,
                                       const std::optional<StoredValue>& stored) {
  ReadCache::Ticket ticket;
  if (auto hit = cache.Find(key, &ticket)) return *hit;
  cache.Fill(key, stored, ticket);
  return stored;
}

TEST(ReadCacheTest, AFilledValueIsFoundAgain) {
  ReadCache cache(1 << 20, 1024);
  ReadCache::Ticket ticket;
  EXPECT_FALSE(cache.Find("k", &ticket).has_value());
  cache.Fill("k", Value("v", 10), ticket);
  auto hit = cache.Find("k", &ticket);
  ASSERT_TRUE(hit.has_value());
  ASSERT_TRUE(hit->has_value());
  EXPECT_EQ((*hit)->value, "v");
  EXPECT_EQ(cache.counters().hits, 1u);
  EXPECT_EQ(cache.counters().misses, 1u);
  EXPECT_EQ(cache.counters().entries, 1u);
}

TEST(ReadCacheTest, AbsenceIsCachedToo) {
  ReadCache cache(1 << 20, 1024);
  ReadCache::Ticket ticket;
  ASSERT_FALSE(cache.Find("gone", &ticket).has_value());
  cache.Fill("gone", std::nullopt, ticket);
  auto hit = cache.Find("gone", &ticket);
  ASSERT_TRUE(hit.has_value());
  EXPECT_FALSE(hit->has_value());
  // A write of the absent key gives it the written value.
  cache.BeginWrite("gone");
  StoredValue written = Value("back", 5);
  cache.EndWrite("gone", &written);
  EXPECT_EQ((*cache.Find("gone", &ticket))->value, "back");
}

// The engine's writer asks only for versions: answered like Find, but not counted as reads.
TEST(ReadCacheTest, FindVersionAnswersWithoutCountingARead) {
  ReadCache cache(1 << 20, 1024);
  ReadCache::Ticket ticket;
  ASSERT_FALSE(cache.FindVersion("k", &ticket).has_value());
  cache.Fill("k", Value("v", 10), ticket);  // its ticket works as Find's does
  ASSERT_FALSE(cache.Find("gone", &ticket).has_value());
  cache.Fill("gone", std::nullopt, ticket);
  EXPECT_EQ(cache.FindVersion("k", &ticket), std::optional<std::optional<Version>>(Version{10, 1}));
  auto gone = cache.FindVersion("gone", &ticket);  // known to be absent
  ASSERT_TRUE(gone.has_value());
  EXPECT_FALSE(gone->has_value());
  EXPECT_EQ(cache.counters().hits, 0u);
  EXPECT_EQ(cache.counters().misses, 1u);
  cache.BeginWrite("k");  // not answered while being written
  EXPECT_FALSE(cache.FindVersion("k", &ticket).has_value());
}

// The race the tickets exist for: a reader reads the old value, a write commits, and only then
// does the reader offer what it read.
TEST(ReadCacheTest, AReadOverlappingAWriteIsNotKept) {
  ReadCache cache(1 << 20, 1024);
  for (bool before_the_write_began : {true, false}) {
    SCOPED_TRACE(before_the_write_began);
    cache.Clear();
    ReadCache::Ticket ticket;
    StoredValue written = Value("new", 20);
    if (before_the_write_began) {
      ASSERT_FALSE(cache.Find("k", &ticket).has_value());
      cache.BeginWrite("k");
    } else {
      cache.BeginWrite("k");
      ASSERT_FALSE(cache.Find("k", &ticket).has_value());
    }
    cache.EndWrite("k", &written);
    cache.Fill("k", Value("old", 10), ticket);  // what the reader saw before the write
    EXPECT_FALSE(cache.Find("k", &ticket).has_value()) << "a stale read was kept";
  }
}

// Between BeginWrite() and EndWrite() the write may already be visible in RocksDB: a reader that
// saw it there must not be followed by one answered the older cached value.
TEST(ReadCacheTest, AKeyBeingWrittenIsNotAnsweredFromTheCache) {
  ReadCache cache(1 << 20, 1024);
  ReadThrough(cache, "k", Value("old", 10));
  ReadThrough(cache, "other", Value("x", 1));
  cache.BeginWrite("k");
  ReadCache::Ticket ticket;
  EXPECT_FALSE(cache.Find("k", &ticket).has_value());
  cache.Fill("k", Value("new", 20), ticket);  // what RocksDB answered mid-write: not kept
  ReadCache::Ticket other;
  EXPECT_TRUE(cache.Find("other", &other).has_value());  // other keys are still answered
  StoredValue written = Value("new", 20);
  cache.EndWrite("k", &written);
  auto hit = cache.Find("k", &ticket);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ((*hit)->value, "new");
}

TEST(ReadCacheTest, WritesKeepTheNewestVersion) {
  ReadCache cache(1 << 20, 1024);
  ReadThrough(cache, "k", Value("ten", 10));
  StoredValue older = Value("five", 5);
  cache.BeginWrite("k");
  cache.EndWrite("k", &older);  // last writer wins: the key still holds "ten"
  ReadCache::Ticket ticket;
  EXPECT_EQ((*cache.Find("k", &ticket))->value, "ten");
  StoredValue newer = Value("twenty", 20);
  cache.BeginWrite("k");
  cache.EndWrite("k", &newer);
  EXPECT_EQ((*cache.Find("k", &ticket))->value, "twenty");
  // A failed write forgets the key: what RocksDB holds is no longer known.
  cache.BeginWrite("k");
  cache.EndWrite("k", nullptr);
  EXPECT_FALSE(cache.Find("k", &ticket).has_value());
}

TEST(ReadCacheTest, WritesOfKeysNotCachedAreNotCached) {
  ReadCache cache(1 << 20, 1024);
  StoredValue written = Value("v", 1);
  cache.BeginWrite("k");
  cache.EndWrite("k", &written);
  ReadCache::Ticket ticket;
  EXPECT_FALSE(cache.Find("k", &ticket).has_value());
  EXPECT_EQ(cache.counters().entries, 0u);
}

TEST(ReadCacheTest, LargeValuesAreNotKept) {
  ReadCache cache(1 << 20, 100);
  ReadThrough(cache, "big", Value(std::string(101, 'x'), 1));
  ReadThrough(cache, "small", Value(std::string(100, 'x'), 1));
  ReadCache::Ticket ticket;
  EXPECT_FALSE(cache.Find("big", &ticket).has_value());
  EXPECT_TRUE(cache.Find("small", &ticket).has_value());
  // A cached key that grows past the limit is forgotten, not kept at its old value.
  StoredValue grown = Value(std::string(500, 'y'), 2);
  cache.BeginWrite("small");
  cache.EndWrite("small", &grown);
  EXPECT_FALSE(cache.Find("small", &ticket).has_value());
}

TEST(ReadCacheTest, EvictsTheLeastRecentlyUsedWithinItsBudget) {
  // 64 shards of 4 KiB each: a few hundred small entries overflow some shards.
  ReadCache cache(64 * 4096, 1024);
  constexpr int kKeys = 2000;
  for (int i = 0; i < kKeys; ++i) ReadThrough(cache, fmt::format("key{}", i), Value("v", 1));
  const ReadCache::Counters c = cache.counters();
  EXPECT_LT(c.entries, static_cast<uint64_t>(kKeys));
  EXPECT_GT(c.entries, 0u);
  EXPECT_LE(c.bytes, 64u * 4096);
  // The last keys filled are the most recent ones and are still there.
  ReadCache::Ticket ticket;
  EXPECT_TRUE(cache.Find(fmt::format("key{}", kKeys - 1), &ticket).has_value());
}

TEST(ReadCacheTest, ClearForgetsEverythingAndVoidsTickets) {
  ReadCache cache(1 << 20, 1024);
  ReadThrough(cache, "a", Value("1", 1));
  ReadCache::Ticket ticket;
  ASSERT_FALSE(cache.Find("b", &ticket).has_value());
  cache.Clear();
  cache.Fill("b", Value("2", 1), ticket);
  EXPECT_FALSE(cache.Find("a", &ticket).has_value());
  EXPECT_FALSE(cache.Find("b", &ticket).has_value());
  EXPECT_EQ(cache.counters().entries, 0u);
}

TEST(ReadCacheTest, ZeroCapacityDisablesIt) {
  ReadCache cache(0, 1024);
  ReadThrough(cache, "k", Value("v", 1));
  ReadCache::Ticket ticket;
  EXPECT_FALSE(cache.Find("k", &ticket).has_value());
}

// Through the engine: readers racing the writer of a few hot keys never see a version go
// backwards, and once the writes are done every read answers the last one, from the cache.
TEST(EngineReadCacheTest, ReadersRacingWritesSeeEveryKeyMoveForwardOnly) {
  cairn::testing::TempDir dir;
  auto opened = Engine::Open(EngineOptions{.path = dir.Sub("db")});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Engine& engine = **opened;
  constexpr int kKeys = 4;
  constexpr uint64_t kWrites = 400;
  std::atomic<bool> done{false};
  std::atomic<int> backwards{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      std::vector<uint64_t> seen(kKeys, 0);
      while (!done.load()) {
        for (int k = 0; k < kKeys; ++k) {
          auto v = engine.Get(DataKey{0, 1, fmt::format("hot{}", k)});
          if (!v.ok() || !v->has_value()) continue;
          if ((*v)->version.hlc < seen[k]) backwards.fetch_add(1);
          seen[k] = std::max(seen[k], (*v)->version.hlc);
        }
      }
    });
  }
  for (uint64_t i = 1; i <= kWrites; ++i) {
    WriteRequest request;
    for (int k = 0; k < kKeys; ++k) {
      request.ops.push_back(WriteOp{.key = {0, 1, fmt::format("hot{}", k)},
                                    .value = Value(fmt::format("v{}", i), i)});
    }
    std::promise<Status> written;
    engine.Write(std::move(request),
                 [&written](Status s, std::vector<WriteOutcome>) { written.set_value(s); });
    ASSERT_TRUE(written.get_future().get().ok());
  }
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(backwards.load(), 0);
  const uint64_t hits_before = engine.ReadCacheCounters().hits;
  for (int k = 0; k < kKeys; ++k) {
    auto v = engine.Get(DataKey{0, 1, fmt::format("hot{}", k)});
    ASSERT_TRUE(v.ok() && v->has_value());
    EXPECT_EQ((*v)->version.hlc, kWrites) << "key hot" << k << " answered a stale version";
  }
  // Each key was read at most once from RocksDB after the last write; the rest are hits.
  for (int k = 0; k < kKeys; ++k)
    ASSERT_TRUE(engine.Get(DataKey{0, 1, fmt::format("hot{}", k)}).ok());
  EXPECT_GE(engine.ReadCacheCounters().hits - hits_before, static_cast<uint64_t>(kKeys));
}

}  // namespace
}  // namespace cairn::storage
