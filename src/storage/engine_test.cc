#include "storage/engine.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <future>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include "storage/fault_injection_fs.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"

namespace cairn::storage {
namespace {

using cairn::testing::TempDir;
using cairn::testing::TestSeed;

class FakeClock final : public base::PhysicalClock {
 public:
  uint64_t NowMillis() override { return ms.load(); }
  std::atomic<uint64_t> ms{1'000'000};
};

struct Written {
  Status status;
  std::vector<WriteOutcome> outcomes;
};

Written WriteSync(Engine& engine, WriteRequest request) {
  std::promise<Written> p;
  engine.Write(std::move(request), [&p](Status s, std::vector<WriteOutcome> o) {
    p.set_value(Written{std::move(s), std::move(o)});
  });
  return p.get_future().get();
}

WriteOp Put(std::string key, std::string value, Version version, uint32_t partition = 0,
            uint32_t keyspace = 1) {
  return WriteOp{.key = {partition, keyspace, std::move(key)},
                 .value = {.version = version, .value = std::move(value)}};
}

WriteOp Tombstone(std::string key, Version version, uint32_t partition = 0) {
  return WriteOp{.key = {partition, 1, std::move(key)},
                 .value = {.version = version, .tombstone = true}};
}

std::optional<StoredValue> Read(Engine& engine, std::string key, uint32_t partition = 0,
                                uint32_t keyspace = 1) {
  auto r = engine.Get(DataKey{partition, keyspace, std::move(key)});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::nullopt;
}

class EngineTest : public ::testing::Test {
 protected:
  void Open(bool sync = true, uint32_t fold_every = EngineOptions{}.fold_every) {
    engine_.reset();
    auto e = Engine::Open(EngineOptions{
        .path = dir_.Sub("db"), .sync = sync, .fold_every = fold_every, .clock = &clock_});
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
  }
  void SetUp() override { Open(); }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineTest, WriteThenRead) {
  auto w = WriteSync(*engine_, {.ops = {Put("alpha", "one", {100, 1})}});
  ASSERT_TRUE(w.status.ok());
  ASSERT_EQ(w.outcomes.size(), 1u);
  EXPECT_EQ(w.outcomes[0].version, (Version{100, 1}));
  auto v = Read(*engine_, "alpha");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->value, "one");
  EXPECT_EQ(v->version, (Version{100, 1}));
  EXPECT_FALSE(Read(*engine_, "alpha", /*partition=*/1).has_value());
  EXPECT_FALSE(Read(*engine_, "alpha", 0, /*keyspace=*/2).has_value());
}

TEST_F(EngineTest, OlderVersionNeverOverwritesNewer) {
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put("k", "new", {200, 1})}}).status.ok());
  auto w = WriteSync(*engine_, {.ops = {Put("k", "old", {100, 9})}});
  ASSERT_TRUE(w.status.ok());
  EXPECT_EQ(Read(*engine_, "k")->value, "new");
  // Same timestamp: the higher node id wins.
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put("k", "tie", {200, 2})}}).status.ok());
  EXPECT_EQ(Read(*engine_, "k")->value, "tie");
  // Also once everything is compacted into one value, and after more stale writes.
  ASSERT_TRUE(engine_->CompactAll().ok());
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put("k", "stale", {199, 9})}}).status.ok());
  EXPECT_EQ(Read(*engine_, "k")->value, "tie");
  ASSERT_TRUE(engine_->CompactAll().ok());
  EXPECT_EQ(Read(*engine_, "k")->value, "tie");
  EXPECT_EQ(Read(*engine_, "k")->version, (Version{200, 2}));
}

TEST_F(EngineTest, LastWriterWinsSurvivesRestart) {
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put("k", "new", {500, 1})}}).status.ok());
  Open();
  auto w = WriteSync(*engine_, {.ops = {Put("k", "stale", {400, 1})}});
  ASSERT_TRUE(w.status.ok());
  EXPECT_EQ(Read(*engine_, "k")->value, "new");
  Open();
  EXPECT_EQ(Read(*engine_, "k")->value, "new");
}

TEST_F(EngineTest, TombstoneHidesOlderAndLosesToNewer) {
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put("k", "v", {100, 1})}}).status.ok());
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Tombstone("k", {200, 1})}}).status.ok());
  EXPECT_TRUE(Read(*engine_, "k")->tombstone);
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put("k", "late", {150, 1})}}).status.ok());
  EXPECT_TRUE(Read(*engine_, "k")->tombstone);  // the older write does not resurrect the key
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put("k", "again", {300, 1})}}).status.ok());
  EXPECT_EQ(Read(*engine_, "k")->value, "again");
}

TEST_F(EngineTest, WritesOfOneKeyInOneGroupResolveByVersion) {
  auto w = WriteSync(
      *engine_, {.ops = {Put("k", "b", {2, 1}), Put("k", "a", {1, 1}), Put("k", "c", {3, 1})}});
  ASSERT_TRUE(w.status.ok());
  ASSERT_EQ(w.outcomes.size(), 3u);
  EXPECT_EQ(w.outcomes[1].version, (Version{1, 1}));  // every write answers with its version
  EXPECT_EQ(Read(*engine_, "k")->value, "c");
  EXPECT_EQ(Read(*engine_, "k")->version, (Version{3, 1}));
  // Only the newest was written: the group is one atomic batch, the others could never be seen.
  EXPECT_EQ(engine_->absorbed(), 2u);
  // Also across restarts and compaction, and with an older value already stored.
  auto again = WriteSync(*engine_, {.ops = {Put("k", "old", {2, 9}), Put("j", "x", {5, 1}),
                                            Put("k", "older", {1, 9})}});
  ASSERT_TRUE(again.status.ok());
  EXPECT_EQ(engine_->absorbed(), 3u);
  Open();
  ASSERT_TRUE(engine_->CompactAll().ok());
  EXPECT_EQ(Read(*engine_, "k")->value, "c");
  EXPECT_EQ(Read(*engine_, "j")->value, "x");
}

// A group with a transaction writes every op, in order: the transaction's reads see them so.
TEST_F(EngineTest, GroupsWithTransactionsAbsorbNothing) {
  auto seen = std::make_shared<std::string>();
  WriteRequest req;
  req.ops = {Put("t", "first", {1, 1}), Put("t", "second", {2, 1})};
  req.txn = [seen](GroupView& group) {
    auto v = group.GetData(DataKey{0, 1, "t"});
    if (v.ok() && *v) *seen = (*v)->value;
    return Status::Ok();
  };
  ASSERT_TRUE(WriteSync(*engine_, std::move(req)).status.ok());
  EXPECT_EQ(*seen, "second");
  EXPECT_EQ(engine_->absorbed(), 0u);
  EXPECT_EQ(Read(*engine_, "t")->value, "second");
}

// A key written many times is folded into a whole value every so often; folding must keep the
// newest version whether it came earlier in the same group, in an older group, or now. Run with
// the default one fold in 16 writes and with every write folded.
class EngineFoldTest : public EngineTest, public ::testing::WithParamInterface<uint32_t> {
 protected:
  void SetUp() override {
    auto e = Engine::Open(EngineOptions{.path = dir_.Sub("db"), .fold_every = GetParam()});
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
  }
};
INSTANTIATE_TEST_SUITE_P(FoldEvery, EngineFoldTest, ::testing::Values(16u, 1u));

TEST_P(EngineFoldTest, HotKeyFoldsKeepTheNewestVersion) {
  std::vector<uint64_t> order(300);
  for (size_t i = 0; i < order.size(); ++i) order[i] = i + 1;
  std::mt19937 rng(7);
  std::shuffle(order.begin(), order.end(), rng);
  uint64_t newest = 0;
  // One write per group for the first half, then groups of 25 writes of the key.
  size_t i = 0;
  for (; i < order.size() / 2; ++i) {
    newest = std::max(newest, order[i]);
    auto w =
        WriteSync(*engine_, {.ops = {Put("hot", fmt::format("v{}", order[i]), {order[i], 1})}});
    ASSERT_TRUE(w.status.ok());
    ASSERT_EQ(Read(*engine_, "hot")->version, (Version{newest, 1})) << "after write " << i;
  }
  while (i < order.size()) {
    WriteRequest request;
    // A transaction in the group keeps every write (no absorption), so that folds meet versions
    // written earlier in the same group, as they do beside Paxos steps.
    request.txn = [](GroupView&) { return Status::Ok(); };
    for (size_t n = 0; n < 25 && i < order.size(); ++n, ++i) {
      newest = std::max(newest, order[i]);
      request.ops.push_back(Put("hot", fmt::format("v{}", order[i]), {order[i], 1}));
    }
    ASSERT_TRUE(WriteSync(*engine_, std::move(request)).status.ok());
    ASSERT_EQ(Read(*engine_, "hot")->version, (Version{newest, 1})) << "after write " << i;
  }
  EXPECT_EQ(Read(*engine_, "hot")->value, fmt::format("v{}", order.size()));
  EXPECT_GE(engine_->folds(), order.size() / 16 / 3);  // one write in 16, at random
  // Folded whole values survive a flush and a restart like merged ones.
  ASSERT_TRUE(engine_->CompactAll().ok());
  engine_.reset();
  SetUp();
  EXPECT_EQ(Read(*engine_, "hot")->version, (Version{order.size(), 1}));
}

// A fold of an older version must see the newer one wherever it is: here only in a table file,
// after a restart, with cold caches.
TEST_P(EngineFoldTest, FoldAfterRestartKeepsTheNewerVersionOnDisk) {
  for (int i = 0; i < 20; ++i) {
    const std::string key = fmt::format("cold{}", i);
    ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put(key, "newer", {100, 1})}}).status.ok());
  }
  ASSERT_TRUE(engine_->CompactAll().ok());  // into table files
  engine_.reset();
  SetUp();  // cold table cache and block cache
  for (int i = 0; i < 20; ++i) {
    const std::string key = fmt::format("cold{}", i);
    ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put(key, "older", {50, 1})}}).status.ok());
  }
  for (int i = 0; i < 20; ++i) {
    auto v = Read(*engine_, fmt::format("cold{}", i));
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->value, "newer") << i;
  }
}

// A late write to a keyspace dropped earlier in the same group must not fold: the fold's read
// does not see the drop's range deletion yet, and its put would bring the old value back.
TEST_P(EngineFoldTest, NoFoldBringsBackWhatADropInTheSameGroupDeleted) {
  ASSERT_TRUE(
      WriteSync(*engine_, {.ops = {Put("k", "before the drop", {10, 1}, 0, 7)}}).status.ok());
  // Hold the writer in a transaction so that the drop and the late write form the next group.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> holding;
  WriteRequest hold;
  hold.txn = [&holding, released](GroupView&) {
    holding.set_value();
    released.wait();
    return Status::Ok();
  };
  std::promise<Written> held_done, drop_done, late_done;
  auto to = [](std::promise<Written>& p) {
    return [&p](Status s, std::vector<WriteOutcome> o) {
      p.set_value(Written{std::move(s), std::move(o)});
    };
  };
  engine_->Write(std::move(hold), to(held_done));
  holding.get_future().wait();
  engine_->Write({.drop = WriteRequest::Drop{.keyspace = 7, .partitions = 1}}, to(drop_done));
  engine_->Write({.ops = {Put("k", "late", {5, 1}, 0, 7)}}, to(late_done));
  release.set_value();
  ASSERT_TRUE(held_done.get_future().get().status.ok());
  ASSERT_TRUE(drop_done.get_future().get().status.ok());
  ASSERT_TRUE(late_done.get_future().get().status.ok());
  auto v = Read(*engine_, "k", 0, 7);
  EXPECT_TRUE(!v || v->value == "late") << v->value;
}

TEST_F(EngineTest, ConcurrentWritesShareGroupCommits) {
  constexpr int kThreads = 8, kPerThread = 250;
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::future<void>> waits;
      for (int i = 0; i < kPerThread; ++i) {
        auto p = std::make_shared<std::promise<void>>();
        waits.push_back(p->get_future());
        engine_->Write({.ops = {Put(fmt::format("k{}-{}", t, i), "v",
                                    {static_cast<uint64_t>(i + 1), static_cast<uint32_t>(t + 1)})}},
                       [p, &done](Status s, std::vector<WriteOutcome>) {
                         EXPECT_TRUE(s.ok());
                         ++done;
                         p->set_value();
                       });
      }
      for (auto& w : waits) w.wait();
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(done.load(), kThreads * kPerThread);
  // Group commit: far fewer fsyncs than writes.
  EXPECT_LT(engine_->group_commits(), static_cast<uint64_t>(kThreads * kPerThread) / 2);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_TRUE(Read(*engine_, fmt::format("k{}-{}", t, kPerThread - 1)).has_value());
  }
}

// A transaction that claims `key` for `owner` when it is absent; `won` says whether it did.
std::function<Status(GroupView&)> ClaimIfAbsent(std::string key, std::string owner, Version v,
                                                std::shared_ptr<std::atomic<bool>> won) {
  return [key = std::move(key), owner = std::move(owner), v, won](GroupView& g) -> Status {
    auto cur = g.GetData(DataKey{0, 1, key});
    if (!cur.ok()) return cur.status();
    if (cur->has_value() && !(*cur)->tombstone) return Status::Ok();
    g.MergeData(DataKey{0, 1, key}, StoredValue{.version = v, .value = owner});
    won->store(true);
    return Status::Ok();
  };
}

TEST_F(EngineTest, TransactionSeesEarlierWritesOfItsGroup) {
  // Both in one request: the transaction runs after the request's plain op and sees it.
  auto won = std::make_shared<std::atomic<bool>>(false);
  WriteRequest req;
  req.ops.push_back(Put("lock", "owner-a", {10, 1}));
  req.txn = ClaimIfAbsent("lock", "owner-b", {11, 2}, won);
  ASSERT_TRUE(WriteSync(*engine_, std::move(req)).status.ok());
  EXPECT_FALSE(won->load());
  EXPECT_EQ(Read(*engine_, "lock")->value, "owner-a");
}

TEST_F(EngineTest, ConcurrentTransactionsAreAtomic) {
  // Many claimants of one key and read-modify-writes of one counter, from several threads: the
  // writer thread serialises them, inside and across group commits.
  constexpr int kThreads = 4, kPerThread = 50;
  std::atomic<int> winners{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::future<void>> waits;
      std::vector<std::shared_ptr<std::promise<void>>> promises;
      for (int i = 0; i < kPerThread; ++i) {
        auto won = std::make_shared<std::atomic<bool>>(false);
        WriteRequest req;
        auto claim = ClaimIfAbsent("lock", fmt::format("{}-{}", t, i),
                                   Version{uint64_t(100 + t * kPerThread + i), 1}, won);
        req.txn = [claim](GroupView& g) -> Status {
          if (Status s = claim(g); !s.ok()) return s;
          auto raw = g.GetRaw(Family::kPaxos, "counter");
          if (!raw.ok()) return raw.status();
          const int n = raw->has_value() ? std::stoi(**raw) : 0;
          g.PutRaw(Family::kPaxos, "counter", std::to_string(n + 1));
          return Status::Ok();
        };
        auto p = std::make_shared<std::promise<void>>();
        waits.push_back(p->get_future());
        engine_->Write(std::move(req), [p, won, &winners](Status s, std::vector<WriteOutcome>) {
          EXPECT_TRUE(s.ok()) << s.ToString();
          if (won->load()) ++winners;
          p->set_value();
        });
      }
      for (auto& w : waits) w.wait();
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(winners.load(), 1);
  auto counter = engine_->List(Family::kPaxos, "counter", "", 1);
  ASSERT_TRUE(counter.ok());
  ASSERT_EQ(counter->size(), 1u);
  EXPECT_EQ((*counter)[0].second, std::to_string(kThreads * kPerThread));
}

TEST_F(EngineTest, FailedTransactionWritesNothing) {
  WriteRequest req;
  req.txn = [](GroupView& g) -> Status {
    g.PutRaw(Family::kPaxos, "half", "written");
    return Status::Internal("injected");
  };
  auto w = WriteSync(*engine_, std::move(req));
  EXPECT_EQ(w.status.code(), Code::kInternal);
  auto half = engine_->List(Family::kPaxos, "", "", 10);
  ASSERT_TRUE(half.ok());
  EXPECT_TRUE(half->empty());
}

// Paxos records read in group commits come from the writer thread's cache after the first
// read: it must answer what RocksDB would, across groups, deletes, failed groups and reopens.
TEST_F(EngineTest, PaxosRecordsReadInGroupsStayExact) {
  auto read = [this](const std::string& key) {
    auto seen = std::make_shared<std::optional<std::string>>();
    WriteRequest req;
    req.txn = [key, seen](GroupView& g) -> Status {
      auto raw = g.GetRaw(Family::kPaxos, key);
      if (!raw.ok()) return raw.status();
      *seen = *raw;
      return Status::Ok();
    };
    EXPECT_TRUE(WriteSync(*engine_, std::move(req)).status.ok());
    return *seen;
  };
  auto write = [this](const std::string& key, std::optional<std::string> value, bool fail) {
    WriteRequest req;
    req.txn = [key, value, fail](GroupView& g) -> Status {
      if (value) {
        g.PutRaw(Family::kPaxos, key, *value);
      } else {
        g.DeleteRaw(Family::kPaxos, key);
      }
      return fail ? Status::Internal("injected") : Status::Ok();
    };
    return WriteSync(*engine_, std::move(req)).status;
  };
  EXPECT_EQ(read("k"), std::nullopt);
  ASSERT_TRUE(write("k", "one", false).ok());
  const uint64_t hits = engine_->paxos_cache_hits();
  EXPECT_EQ(read("k"), std::optional<std::string>("one"));
  EXPECT_EQ(engine_->paxos_cache_hits(), hits + 1) << "answered from the cache";
  // A failed group's write is seen neither in RocksDB nor in the cache.
  EXPECT_EQ(write("k", "lost", true).code(), Code::kInternal);
  EXPECT_EQ(read("k"), std::optional<std::string>("one"));
  ASSERT_TRUE(write("k", std::nullopt, false).ok());
  EXPECT_EQ(read("k"), std::nullopt);
  ASSERT_TRUE(write("k", "two", false).ok());
  // Reads outside group commits, and after a reopen (an empty cache), agree.
  auto listed = engine_->List(Family::kPaxos, "", "", 10);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].second, "two");
  Open();
  EXPECT_EQ(read("k"), std::optional<std::string>("two"));
}

TEST_F(EngineTest, ScanMergesPartitionsInKeyOrder) {
  WriteRequest req;
  // Keys spread over partitions 0..3, written out of order.
  const std::vector<std::pair<std::string, uint32_t>> keys = {
      {"user:05", 2}, {"user:01", 3}, {"user:03", 0}, {"user:02", 1},
      {"user:04", 3}, {"other", 0},   {"user:06", 0}, {"usex", 1}};
  for (const auto& [k, p] : keys) req.ops.push_back(Put(k, "v" + k, {1, 1}, p));
  req.ops.push_back(Put("user:07", "other keyspace", {1, 1}, 0, /*keyspace=*/2));
  ASSERT_TRUE(WriteSync(*engine_, std::move(req)).status.ok());

  const std::vector<uint32_t> parts = {0, 1, 2, 3};
  auto page = engine_->Scan(1, parts, "user:", "", 3, 100);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 3u);
  EXPECT_EQ(page->items[0].key, "user:01");
  EXPECT_EQ(page->items[1].key, "user:02");
  EXPECT_EQ(page->items[2].key, "user:03");
  EXPECT_FALSE(page->exhausted);
  EXPECT_EQ(page->last_key, "user:03");

  auto rest = engine_->Scan(1, parts, "user:", page->last_key, 100, 100);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->items.size(), 3u);
  EXPECT_EQ(rest->items[0].key, "user:04");
  EXPECT_EQ(rest->items[2].key, "user:06");
  EXPECT_EQ(rest->items[2].value.value, "vuser:06");
  EXPECT_TRUE(rest->exhausted);

  // Only the partitions asked for.
  const std::vector<uint32_t> only3 = {3};
  auto p3 = engine_->Scan(1, only3, "user:", "", 100, 100);
  ASSERT_TRUE(p3.ok());
  ASSERT_EQ(p3->items.size(), 2u);
  EXPECT_EQ(p3->items[0].key, "user:01");
  EXPECT_EQ(p3->items[1].key, "user:04");
}

TEST_F(EngineTest, ScanReturnsTombstonesWithoutCountingThem) {
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put("a1", "x", {1, 1}), Tombstone("a2", {2, 1}),
                                           Tombstone("a3", {2, 1}), Put("a4", "y", {1, 1})}})
                  .status.ok());
  const std::vector<uint32_t> parts = {0};
  auto page = engine_->Scan(1, parts, "a", "", 2, 100);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 4u);
  EXPECT_TRUE(page->items[1].value.tombstone);
  EXPECT_TRUE(page->exhausted);
  // A budget of dead entries bounds the work; the cursor still moves forward.
  auto bounded = engine_->Scan(1, parts, "a", "a1", 10, 0);
  ASSERT_TRUE(bounded.ok());
  EXPECT_EQ(bounded->items.size(), 1u);
  EXPECT_FALSE(bounded->exhausted);
  EXPECT_EQ(bounded->last_key, "a2");
}

TEST_F(EngineTest, ScanStopsAtItsByteBudget) {
  WriteRequest req;
  for (int i = 0; i < 10; ++i)
    req.ops.push_back(Put(fmt::format("k{}", i), std::string(1000, 'v'), {1, 1}));
  ASSERT_TRUE(WriteSync(*engine_, std::move(req)).status.ok());
  const std::vector<uint32_t> parts = {0};
  auto page = engine_->Scan(1, parts, "k", "", 100, 100, 2500);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->items.size(), 3u);  // stops once 2,500 bytes are reached
  EXPECT_FALSE(page->exhausted);
  auto tiny = engine_->Scan(1, parts, "k", "", 100, 100, 1);
  EXPECT_EQ(tiny->items.size(), 1u);  // always makes progress
}

TEST_F(EngineTest, LargeValuesGoToBlobFiles) {
  const std::string big(1 << 20, 'b');
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put("big", big, {1, 1}), Put("small", "s", {1, 1})}})
                  .status.ok());
  ASSERT_TRUE(engine_->CompactAll().ok());
  EXPECT_EQ(engine_->Property("rocksdb.num-blob-files"), "1");
  EXPECT_EQ(Read(*engine_, "big")->value, big);
  Open();
  EXPECT_EQ(Read(*engine_, "big")->value, big);
}

WriteRequest::Purge Purge(std::string key, Version version, uint32_t partition = 0,
                          uint32_t keyspace = 1) {
  return WriteRequest::Purge{.key = {partition, keyspace, std::move(key)}, .version = version};
}

// Expects the maintained tree of range (partition, keyspace) to be what its data gives.
void ExpectTreeMatchesData(Engine& engine, uint32_t partition = 0, uint32_t keyspace = 1) {
  auto tree = engine.RangeTree(partition, keyspace);
  auto data = engine.DigestRange(partition, keyspace);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_TRUE(*tree == *data) << "partition " << partition << " keyspace " << keyspace
                              << ": the tree has " << tree->keys << " keys, the data "
                              << data->keys;
}

// Scrubbing (issue #16, bit rot): a clean table file checks clean; one with a run of bytes
// overwritten is found, dropped with the ranges its keys span (data and trees, not the Paxos
// acceptor records), and the trees stay exact; ranges outside the file keep their data.
TEST_F(EngineTest, ScrubDropsACorruptTableFileWithItsRangesAndKeepsTheAcceptorRecords) {
  std::mt19937_64 rng(7);
  auto value = [&rng] {
    std::string v;
    for (int b = 0; b < 1000; ++b) v.push_back(static_cast<char>('!' + rng() % 90));
    return v;
  };
  // Partitions 1 and 4 go into a compacted table file; partition 9 comes after it, in a
  // memtable. Partitions 2 and 3 lie between and hold nothing (no tree): they are dropped too,
  // as the file could hold deletions of theirs.
  for (uint32_t p : {1u, 4u}) {
    WriteRequest request;
    for (int i = 0; i < 400; ++i)
      request.ops.push_back(Put(fmt::format("k{:03}", i), value(), {100, 1}, p));
    request.raw.push_back({Family::kPaxos, EncodeDataKey(p, 1, "k001"), "acceptor state"});
    ASSERT_TRUE(WriteSync(*engine_, std::move(request)).status.ok());
  }
  ASSERT_TRUE(engine_->CompactAll().ok());
  std::vector<Engine::TableFile> files = engine_->DataFiles();
  ASSERT_EQ(files.size(), 1u);
  auto clean = engine_->ScrubFile(files[0]);
  ASSERT_TRUE(clean.ok()) << clean.status().ToString();
  EXPECT_TRUE(clean->corrupt.empty());
  EXPECT_EQ(engine_->corruptions_seen(), 0u);
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put("after", "kept", {100, 1}, 9)}}).status.ok());

  {
    std::fstream f(dir_.Sub("db") + files[0].name, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(files[0].bytes / 3));
    const std::string garbage(4096, '\xab');
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
    ASSERT_TRUE(f.good());
  }
  auto found = engine_->ScrubFile(files[0]);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_NE(found->corrupt.find("Corruption"), std::string::npos) << found->corrupt;
  EXPECT_TRUE(found->dropped);
  EXPECT_EQ(found->ranges_dropped,
            (std::vector<std::pair<uint32_t, uint32_t>>{{1, 1}, {2, 1}, {3, 1}, {4, 1}}));
  EXPECT_GE(engine_->corruptions_seen(), 1u);
  EXPECT_TRUE(engine_->DataFiles().empty());
  for (uint32_t p : {1u, 4u}) {
    EXPECT_FALSE(Read(*engine_, "k001", p).has_value());
    ExpectTreeMatchesData(*engine_, p);
    auto paxos = engine_->ReadRange(Family::kPaxos, p, 1, "", std::nullopt, 1 << 20);
    ASSERT_TRUE(paxos.ok());
    ASSERT_EQ(paxos->records.size(), 1u) << "partition " << p;
    EXPECT_EQ(paxos->records[0].value, "acceptor state");
  }
  EXPECT_EQ(Read(*engine_, "after", 9)->value, "kept");
  // Writes go on (no background error left), and the ranges fill again, across a restart.
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put("k001", "repaired", {100, 1}, 2)}}).status.ok());
  Open();
  EXPECT_EQ(Read(*engine_, "k001", 2)->value, "repaired");
  EXPECT_FALSE(Read(*engine_, "k002", 2).has_value());
  ExpectTreeMatchesData(*engine_, 2);
}

// Accounting (issue #16): the table files say how much of them is garbage. Tombstones and
// values expired when their file was written count; once purged and compacted away they do not.
TEST_F(EngineTest, TableGarbageCountsTombstonesAndExpiredValuesUntilPurged) {
  WriteRequest live;
  for (int i = 0; i < 1000; ++i) {
    live.ops.push_back(Put(fmt::format("k{:04}", i), std::string(200, 'v'), {100, 1}));
  }
  ASSERT_TRUE(WriteSync(*engine_, std::move(live)).status.ok());
  ASSERT_TRUE(engine_->CompactAll().ok());
  Engine::Garbage g = engine_->TableGarbage();
  EXPECT_EQ(g.entries, 1000u);
  EXPECT_EQ(g.dead_entries, 0u);
  EXPECT_EQ(g.dead_bytes, 0u);
  EXPECT_GT(g.table_bytes, 0u);

  // Half deleted, and ten values that have expired by the time they are flushed.
  WriteRequest deletes;
  for (int i = 0; i < 500; ++i)
    deletes.ops.push_back(Tombstone(fmt::format("k{:04}", i), {200, 1}));
  for (int i = 0; i < 10; ++i) {
    WriteOp op = Put(fmt::format("ttl{}", i), std::string(200, 't'), {200, 1});
    op.value.expires_at_ms = clock_.ms.load() - 1;
    deletes.ops.push_back(std::move(op));
  }
  ASSERT_TRUE(WriteSync(*engine_, std::move(deletes)).status.ok());
  ASSERT_TRUE(engine_->CompactAll().ok());
  g = engine_->TableGarbage();
  EXPECT_EQ(g.entries, 1010u);
  EXPECT_EQ(g.dead_entries, 510u);
  EXPECT_GT(g.dead_bytes, 0u);
  EXPECT_LT(g.dead_bytes, g.table_bytes);

  // Purged and compacted: the garbage is gone, the live half stays.
  WriteRequest purges;
  for (int i = 0; i < 500; ++i) purges.purges.push_back(Purge(fmt::format("k{:04}", i), {200, 1}));
  for (int i = 0; i < 10; ++i) purges.purges.push_back(Purge(fmt::format("ttl{}", i), {200, 1}));
  ASSERT_TRUE(WriteSync(*engine_, std::move(purges)).status.ok());
  EXPECT_EQ(engine_->purged(), 510u);
  ASSERT_TRUE(engine_->CompactAll().ok());
  g = engine_->TableGarbage();
  EXPECT_EQ(g.entries, 500u);
  EXPECT_EQ(g.dead_entries, 0u);
  EXPECT_EQ(g.dead_bytes, 0u);
  // Across a restart too (the figures are the files' own properties).
  Open();
  EXPECT_EQ(engine_->TableGarbage().entries, 500u);
}

// The trees read the stored version of every key written; a large value in a blob file is read
// like any other (and not kept in the read cache).
TEST_F(EngineTest, TreesFollowWritesOfLargeValues) {
  const std::string big(1 << 20, 'b');
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put("big", big, {10, 1}), Put("small", "s", {10, 1})}})
                  .status.ok());
  ASSERT_TRUE(engine_->CompactAll().ok());
  Open();  // nothing in the read cache
  ASSERT_TRUE(
      WriteSync(*engine_, {.ops = {Put("big", big + "2", {20, 1}), Put("small", "s2", {20, 1})}})
          .status.ok());
  ASSERT_TRUE(
      WriteSync(*engine_, {.ops = {Put("big", "older", {15, 1}), Put("small", "older", {15, 1})}})
          .status.ok());
  EXPECT_EQ(Read(*engine_, "big")->value, big + "2");
  EXPECT_EQ(engine_->RangeTree(0, 1)->keys, 2u);
  ExpectTreeMatchesData(*engine_);
}

// Compaction turns an expired value into a tombstone of the same version and keeps it, however
// old it gets: only a purge removes it.
TEST_F(EngineTest, CompactionTurnsExpiredValuesIntoTombstonesThatStayUntilPurged) {
  const uint64_t now = clock_.ms;
  WriteOp expiring = Put("ttl", "short-lived", {Version{now << 16, 1}});
  expiring.value.expires_at_ms = now + 1000;
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {expiring, Put("keep", "forever", {1, 1})}}).status.ok());
  const RangeDigest before = *engine_->RangeTree(0, 1);

  clock_.ms = now + 2000;  // expired
  // The first compaction folds the written versions into one value, the next filters it.
  ASSERT_TRUE(engine_->CompactAll().ok());
  ASSERT_TRUE(engine_->CompactAll().ok());
  auto v = Read(*engine_, "ttl");
  ASSERT_TRUE(v.has_value());
  EXPECT_TRUE(v->tombstone);  // kept as a tombstone so an older copy cannot come back
  EXPECT_EQ(v->version, expiring.value.version);
  // The same version: the tree does not change.
  EXPECT_TRUE(*engine_->RangeTree(0, 1) == before);
  ExpectTreeMatchesData(*engine_);

  clock_.ms = now + uint64_t{365} * 24 * 3600 * 1000;  // no age removes it
  ASSERT_TRUE(engine_->CompactAll().ok());
  ASSERT_TRUE(Read(*engine_, "ttl").has_value());

  ASSERT_TRUE(WriteSync(*engine_, {.purges = {Purge("ttl", expiring.value.version)}}).status.ok());
  EXPECT_EQ(engine_->purged(), 1u);
  EXPECT_FALSE(Read(*engine_, "ttl").has_value());
  ASSERT_TRUE(engine_->CompactAll().ok());
  EXPECT_FALSE(Read(*engine_, "ttl").has_value());
  EXPECT_EQ(Read(*engine_, "keep")->value, "forever");
  EXPECT_EQ(engine_->RangeTree(0, 1)->keys, 1u);
  ExpectTreeMatchesData(*engine_);
}

// A purge is a RocksDB deletion: it hides every older version of the key wherever it is (a
// compaction filter's removal of the tombstone could expose one still in a lower level).
TEST_F(EngineTest, PurgeHidesEveryOlderVersionAtEveryLevel) {
  const uint64_t now = clock_.ms;
  ASSERT_TRUE(
      WriteSync(*engine_, {.ops = {Put("z", "v1", {Version{(now - 10) << 16, 1}})}}).status.ok());
  ASSERT_TRUE(engine_->CompactAll().ok());  // v1 at the bottom
  const Version deleted{now << 16, 1};
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Tombstone("z", deleted)}}).status.ok());
  // A replay of an older version arrives after the delete (a late hint), into the memtable.
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put("z", "zombie", {Version{(now - 5) << 16, 2}})}})
                  .status.ok());
  EXPECT_TRUE(Read(*engine_, "z")->tombstone);
  ExpectTreeMatchesData(*engine_);

  ASSERT_TRUE(WriteSync(*engine_, {.purges = {Purge("z", deleted)}}).status.ok());
  EXPECT_EQ(engine_->purged(), 1u);
  EXPECT_FALSE(Read(*engine_, "z").has_value());
  ExpectTreeMatchesData(*engine_);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(engine_->CompactAll().ok());
    auto after = Read(*engine_, "z");
    EXPECT_FALSE(after.has_value()) << after->value;
  }
  Open();
  EXPECT_FALSE(Read(*engine_, "z").has_value());
  EXPECT_EQ(engine_->RangeTree(0, 1)->keys, 0u);
  EXPECT_TRUE(engine_->TreeRanges().empty());
}

// A purge removes exactly the version it names, and only when that version is dead.
TEST_F(EngineTest, PurgeLeavesNewerVersionsLiveValuesAndKeysTheGroupWrites) {
  const uint64_t now = clock_.ms;
  WriteOp expired = Put("expired", "gone soon", {10, 1});
  expired.value.expires_at_ms = now - 1;
  WriteOp expiring = Put("expiring", "not yet", {10, 1});
  expiring.value.expires_at_ms = now + 1000;
  ASSERT_TRUE(
      WriteSync(*engine_, {.ops = {Tombstone("renewed", {10, 1}), Put("live", "v", {10, 1}),
                                   expired, expiring, Tombstone("written", {10, 1}),
                                   Tombstone("twice", {10, 1}), Put("other", "v", {10, 1})}})
          .status.ok());
  // A newer write arrived after the tombstone the purge names.
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put("renewed", "again", {20, 1})}}).status.ok());

  auto w = WriteSync(*engine_, {.purges = {Purge("renewed", {10, 1}), Purge("live", {10, 1}),
                                           Purge("expiring", {10, 1}), Purge("expired", {10, 2}),
                                           Purge("absent", {10, 1})}});
  ASSERT_TRUE(w.status.ok());
  EXPECT_TRUE(w.outcomes.empty());  // one per op, and there are none
  EXPECT_EQ(engine_->purged(), 0u);
  EXPECT_EQ(Read(*engine_, "renewed")->value, "again");
  EXPECT_EQ(Read(*engine_, "live")->value, "v");
  EXPECT_EQ(Read(*engine_, "expiring")->value, "not yet");
  EXPECT_EQ(Read(*engine_, "expired")->version, (Version{10, 1}));
  ExpectTreeMatchesData(*engine_);

  // An expired value goes like a tombstone; a key the same group writes stays (here an older
  // write, which the tombstone keeps hidden); a key purged twice in one group goes once.
  const uint64_t keys = engine_->RangeTree(0, 1)->keys;
  w = WriteSync(*engine_, {.ops = {Put("written", "older", {5, 1})},
                           .purges = {Purge("expired", {10, 1}), Purge("written", {10, 1}),
                                      Purge("twice", {10, 1}), Purge("twice", {10, 1})}});
  ASSERT_TRUE(w.status.ok());
  EXPECT_EQ(engine_->purged(), 2u);
  EXPECT_FALSE(Read(*engine_, "expired").has_value());
  EXPECT_FALSE(Read(*engine_, "twice").has_value());
  EXPECT_TRUE(Read(*engine_, "written")->tombstone);
  EXPECT_EQ(engine_->RangeTree(0, 1)->keys, keys - 2);
  ExpectTreeMatchesData(*engine_);
  Open();
  EXPECT_FALSE(Read(*engine_, "twice").has_value());
  EXPECT_TRUE(Read(*engine_, "written")->tombstone);
  ExpectTreeMatchesData(*engine_);
}

// Once purged and compacted away, nothing of a key is left: a version older than the purged
// tombstone that arrives later is taken as the key's value (that is why only repair may decide
// to purge), and the range's tree counts it as a key the range never held.
TEST_F(EngineTest, APurgedKeyIsGoneEntirely) {
  ASSERT_TRUE(
      WriteSync(*engine_, {.ops = {Put("a", "v", {1, 1}), Put("b", "v", {2, 1})}}).status.ok());
  const RangeDigest without = *engine_->RangeTree(0, 1);
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put("k", "v", {5, 1})}}).status.ok());
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Tombstone("k", {6, 1})}}).status.ok());
  ASSERT_TRUE(WriteSync(*engine_, {.purges = {Purge("k", {6, 1})}}).status.ok());
  EXPECT_TRUE(*engine_->RangeTree(0, 1) == without);
  ASSERT_TRUE(engine_->CompactAll().ok());
  EXPECT_FALSE(Read(*engine_, "k").has_value());
  EXPECT_TRUE(*engine_->RangeTree(0, 1) == without);

  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put("k", "back", {3, 1})}}).status.ok());
  EXPECT_EQ(Read(*engine_, "k")->value, "back");
  RangeDigest expected = without;
  expected.segments[DigestSegmentOf("k")] ^= DigestHashOf("k", {3, 1});
  ++expected.keys;
  EXPECT_TRUE(*engine_->RangeTree(0, 1) == expected);
  ExpectTreeMatchesData(*engine_);
}

TEST_F(EngineTest, DroppedKeyspaceDataIsGoneAndStaysGone) {
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put("a", "1", {1, 1}, 0, 5), Put("b", "2", {1, 1}, 3, 5),
                                           Put("a", "other", {1, 1}, 0, 6)}})
                  .status.ok());
  auto w = WriteSync(*engine_, {.raw = {{Family::kMeta, "ks/x", std::nullopt}},
                                .drop = WriteRequest::Drop{.keyspace = 5, .partitions = 4}});
  ASSERT_TRUE(w.status.ok());
  EXPECT_FALSE(Read(*engine_, "a", 0, 5).has_value());
  EXPECT_FALSE(Read(*engine_, "b", 3, 5).has_value());
  EXPECT_EQ(Read(*engine_, "a", 0, 6)->value, "other");
  EXPECT_EQ(engine_->DroppedKeyspaces(), (std::set<uint32_t>{5}));

  // A straggling write for the dropped id is discarded by compaction, also after a restart.
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put("late", "x", {9, 1}, 1, 5)}}).status.ok());
  Open();
  EXPECT_EQ(engine_->DroppedKeyspaces(), (std::set<uint32_t>{5}));
  ASSERT_TRUE(engine_->CompactAll().ok());
  EXPECT_FALSE(Read(*engine_, "late", 1, 5).has_value());
}

TEST_F(EngineTest, RawRecordsInOtherFamiliesAreListedByPrefix) {
  WriteRequest req;
  for (int i = 0; i < 5; ++i) {
    req.raw.push_back({Family::kHints, fmt::format("n1/{}", i), fmt::format("hint{}", i)});
  }
  req.raw.push_back({Family::kHints, "n2/0", "other target"});
  req.raw.push_back({Family::kPaxos, "n1/0", "not a hint"});
  ASSERT_TRUE(WriteSync(*engine_, std::move(req)).status.ok());
  auto first = engine_->List(Family::kHints, "n1/", "", 3);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 3u);
  EXPECT_EQ((*first)[2].second, "hint2");
  auto rest = engine_->List(Family::kHints, "n1/", (*first)[2].first, 100);
  ASSERT_EQ(rest->size(), 2u);
  EXPECT_EQ((*rest)[0].first, "n1/3");
  ASSERT_TRUE(WriteSync(*engine_, {.raw = {{Family::kHints, "n1/0", std::nullopt}}}).status.ok());
  EXPECT_EQ(engine_->List(Family::kHints, "n1/", "", 100)->size(), 4u);
  EXPECT_EQ(engine_->List(Family::kPaxos, "", "", 100)->size(), 1u);
  EXPECT_FALSE(engine_->GetMeta("n1/0")->has_value());
  // Exact lookups, and prefixes ending in 0xff bytes (the listing is bounded to its prefix).
  EXPECT_EQ(*engine_->GetRaw(Family::kPaxos, "n1/0"), "not a hint");
  EXPECT_FALSE(engine_->GetRaw(Family::kPaxos, "n1/").value().has_value());
  ASSERT_TRUE(WriteSync(*engine_, {.raw = {{Family::kPaxos, "a\xff", "1"},
                                           {Family::kPaxos, "a\xff\xff", "2"},
                                           {Family::kPaxos, "a\xff\xff\x01", "3"},
                                           {Family::kPaxos, "b", "4"}}})
                  .status.ok());
  EXPECT_EQ(engine_->List(Family::kPaxos, "a\xff", "", 100)->size(), 3u);
  EXPECT_EQ(engine_->List(Family::kPaxos, "a\xff\xff", "", 100)->size(), 2u);
  EXPECT_EQ(engine_->List(Family::kPaxos, "a", "", 100)->size(), 3u);
  EXPECT_EQ(engine_->List(Family::kPaxos, "b", "", 100)->size(), 1u);
}

TEST_F(EngineTest, MetaRecords) {
  ASSERT_TRUE(engine_->WriteMeta({{"ks/a", "1"}, {"ks/b", "2"}, {"node_id", "7"}}).ok());
  EXPECT_EQ(*engine_->GetMeta("node_id"), std::optional<std::string>("7"));
  auto list = engine_->ListMeta("ks/");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1].first, "ks/b");
  ASSERT_TRUE(engine_->WriteMeta({{"ks/a", std::nullopt}}).ok());
  Open();
  EXPECT_FALSE(engine_->GetMeta("ks/a")->has_value());
  EXPECT_EQ(engine_->ListMeta("ks/")->size(), 1u);
}

// Writes from many threads while the "power" is cut at a random moment. Returns the keys that
// were acknowledged before the cut, with their versions, and how many survive the cut.
struct CrashRun {
  size_t acked = 0;
  size_t survived = 0;
  size_t wrong_version = 0;
};

CrashRun RunCrash(const std::string& path, bool sync, uint64_t seed) {
  auto fs = std::make_shared<FaultInjectionFs>(rocksdb::FileSystem::Default());
  auto env = rocksdb::NewCompositeEnv(fs);
  std::mutex mu;
  std::condition_variable acked_more;  // signalled as acks grows
  bool crashed = false;
  std::map<std::string, Version> acked;  // guarded by mu
  {
    auto opened = Engine::Open(EngineOptions{.path = path, .sync = sync, .env = env.get()});
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    if (!opened.ok()) return {};
    std::unique_ptr<Engine> engine = std::move(*opened);
    std::mt19937_64 rng(seed);
    const int crash_after = 2000 + static_cast<int>(rng() % 2000);
    int acks = 0;  // guarded by mu
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int t = 0; t < 8; ++t) {
      writers.emplace_back([&, t] {
        for (int i = 0; !stop; ++i) {
          std::string key = fmt::format("w{}-{}", t, i);
          Version version{static_cast<uint64_t>(i + 1), static_cast<uint32_t>(t + 1)};
          std::promise<void> p;
          engine->Write({.ops = {Put(key, "value-" + key, version)}},
                        [&, key, version](Status s, std::vector<WriteOutcome>) {
                          std::lock_guard lock(mu);
                          // An ack after the cut never reaches a client: do not count it.
                          if (s.ok() && !crashed) acked[key] = version;
                          if (++acks == crash_after) acked_more.notify_one();
                          p.set_value();
                        });
          p.get_future().wait();
        }
      });
    }
    {
      std::unique_lock lock(mu);
      // Bounded, so that a stuck engine fails the test rather than hangs it.
      EXPECT_TRUE(
          acked_more.wait_for(lock, std::chrono::seconds(60), [&] { return acks >= crash_after; }))
          << acks << " of " << crash_after << " writes acknowledged in 60 s";
      crashed = true;
      fs->SetActive(false);  // the machine is off: nothing more reaches the disk
    }
    stop = true;
    for (auto& w : writers) w.join();
  }  // closes the engine; its final writes are discarded
  EXPECT_TRUE(fs->DropUnsyncedData().ok());
  fs->SetActive(true);

  auto reopened = Engine::Open(EngineOptions{.path = path, .env = env.get()});
  EXPECT_TRUE(reopened.ok()) << reopened.status().ToString();
  if (!reopened.ok()) return {};
  CrashRun run;
  run.acked = acked.size();
  for (const auto& [key, version] : acked) {
    auto v = (*reopened)->Get(DataKey{0, 1, key});
    if (v.ok() && v->has_value() && (*v)->value == "value-" + key) {
      ++run.survived;
      if ((*v)->version != version) ++run.wrong_version;
    }
  }
  return run;
}

TEST(EngineFaultTest, AcknowledgedWritesSurviveLossOfUnsyncedData) {
  TempDir dir;
  const TestSeed seed;
  CrashRun run = RunCrash(dir.Sub("db"), /*sync=*/true, seed.value());
  EXPECT_GE(run.acked, 2000u);
  EXPECT_EQ(run.survived, run.acked);
  EXPECT_EQ(run.wrong_version, 0u);
}

// The control: without fsync the same crash loses acknowledged writes, which shows that the
// fault injection really drops data and the test above could fail.
TEST(EngineFaultTest, WithoutSyncTheSameCrashLosesWrites) {
  TempDir dir;
  CrashRun run = RunCrash(dir.Sub("db"), /*sync=*/false, 1);
  EXPECT_GE(run.acked, 2000u);
  EXPECT_LT(run.survived, run.acked);
}

// The range primitive of streaming and repair: one (partition, keyspace) range in key order, in
// chunks that resume after their last key, bounded by `up_to`, and nothing of the neighbours.
TEST_F(EngineTest, ReadRangeReadsOneRangeInChunksThatResume) {
  WriteRequest request;
  for (int i = 0; i < 50; ++i) {
    request.ops.push_back(Put(fmt::format("k{:03}", i), std::string(100, 'x'), {100, 1}, 7, 3));
  }
  // Neighbours on every side: another partition, another keyspace, the keyspace after.
  request.ops.push_back(Put("k000", "other partition", {100, 1}, 8, 3));
  request.ops.push_back(Put("k000", "other keyspace", {100, 1}, 7, 2));
  request.ops.push_back(Put("k000", "next keyspace", {100, 1}, 7, 4));
  request.ops.push_back(Tombstone("gone", {100, 1}, 7));  // keyspace 1: not in the range
  ASSERT_TRUE(WriteSync(*engine_, std::move(request)).status.ok());

  std::vector<std::string> keys;
  std::string after;
  size_t chunks = 0;
  while (true) {
    auto chunk = engine_->ReadRange(Family::kData, 7, 3, after, std::nullopt, 1000);
    ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
    ++chunks;
    for (const RangeRecord& r : chunk->records) {
      keys.push_back(r.key);
      auto value = DecodeValue(r.value);
      ASSERT_TRUE(value.ok()) << value.status().ToString();
      EXPECT_EQ(value->value, std::string(100, 'x'));
    }
    if (chunk->done) break;
    ASSERT_FALSE(chunk->records.empty());
    EXPECT_EQ(chunk->last_key, chunk->records.back().key);
    after = chunk->last_key;
    ASSERT_LT(chunks, 100u) << "no progress";
  }
  ASSERT_EQ(keys.size(), 50u);
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_EQ(keys.front(), "k000");
  EXPECT_EQ(keys.back(), "k049");
  EXPECT_GT(chunks, 4u);  // ~110 bytes a record, 1000 bytes a chunk

  // up_to bounds it (inclusive), and says done there.
  auto bounded = engine_->ReadRange(Family::kData, 7, 3, "k009", "k012", 1 << 20);
  ASSERT_TRUE(bounded.ok());
  ASSERT_EQ(bounded->records.size(), 3u);
  EXPECT_EQ(bounded->records[0].key, "k010");
  EXPECT_EQ(bounded->records[2].key, "k012");
  EXPECT_TRUE(bounded->done);
  // An empty range is done at once.
  auto empty = engine_->ReadRange(Family::kData, 9, 3, "", std::nullopt, 1 << 20);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->records.empty());
  EXPECT_TRUE(empty->done);
}

// A range delete takes one (partition, keyspace) range, data and Paxos state, atomically with
// the request's other writes, and leaves every neighbour and the read cache right.
TEST_F(EngineTest, RangeDeleteTakesOneRangeAndNothingElse) {
  WriteRequest request;
  for (int i = 0; i < 20; ++i)
    request.ops.push_back(Put(fmt::format("k{}", i), "v", {100, 1}, 5, 1));
  request.ops.push_back(Put("k0", "neighbour partition", {100, 1}, 6, 1));
  request.ops.push_back(Put("k0", "neighbour keyspace", {100, 1}, 5, 2));
  request.raw.push_back({Family::kPaxos, EncodeDataKey(5, 1, "k3"), "acceptor state"});
  ASSERT_TRUE(WriteSync(*engine_, std::move(request)).status.ok());
  ASSERT_EQ(Read(*engine_, "k3", 5)->value, "v");  // now in the read cache

  WriteRequest cleanup;
  cleanup.range_deletes.push_back({5, 1});
  cleanup.ops.push_back(Put("after", "written with the delete", {200, 1}, 6, 1));
  ASSERT_TRUE(WriteSync(*engine_, std::move(cleanup)).status.ok());
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(Read(*engine_, fmt::format("k{}", i), 5).has_value());
  auto paxos = engine_->ReadRange(Family::kPaxos, 5, 1, "", std::nullopt, 1 << 20);
  ASSERT_TRUE(paxos.ok());
  EXPECT_TRUE(paxos->records.empty());
  EXPECT_EQ(Read(*engine_, "k0", 6)->value, "neighbour partition");
  EXPECT_EQ(Read(*engine_, "k0", 5, 2)->value, "neighbour keyspace");
  EXPECT_EQ(Read(*engine_, "after", 6)->value, "written with the delete");
  // Streamed in again afterwards, a key reads back.
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put("k3", "again", {100, 1}, 5, 1)}}).status.ok());
  EXPECT_EQ(Read(*engine_, "k3", 5)->value, "again");
  // And across a restart.
  Open();
  EXPECT_FALSE(Read(*engine_, "k4", 5).has_value());
  EXPECT_EQ(Read(*engine_, "k3", 5)->value, "again");
}

// The digest repair compares (issue #16): equal for two stores holding the same versions however
// they got them, and a key held at another version, or deleted, changes its segment only.
TEST_F(EngineTest, RangeDigestsAgreeOnTheSameVersionsAndLocateADifference) {
  auto other_or = Engine::Open(EngineOptions{.path = dir_.Sub("other"), .clock = &clock_});
  ASSERT_TRUE(other_or.ok()) << other_or.status().ToString();
  std::unique_ptr<Engine> other = std::move(*other_or);
  // The same 300 final versions, written in another order, in other batches, and on `other`
  // with older versions first that lose to them.
  WriteRequest mine;
  for (int i = 0; i < 300; ++i)
    mine.ops.push_back(Put(fmt::format("k{}", i), "v", {static_cast<uint64_t>(100 + i), 1}, 3));
  ASSERT_TRUE(WriteSync(*engine_, std::move(mine)).status.ok());
  for (int i = 299; i >= 0; --i) {
    ASSERT_TRUE(
        WriteSync(*other, {.ops = {Put(fmt::format("k{}", i), "old", {50, 1}, 3)}}).status.ok());
    ASSERT_TRUE(WriteSync(*other, {.ops = {Put(fmt::format("k{}", i), "v",
                                               {static_cast<uint64_t>(100 + i), 1}, 3)}})
                    .status.ok());
  }
  // Neighbouring ranges do not count.
  ASSERT_TRUE(WriteSync(*other, {.ops = {Put("k1", "x", {999, 1}, 4)}}).status.ok());
  auto a = engine_->DigestRange(3, 1);
  auto b = other->DigestRange(3, 1);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->keys, 300u);
  EXPECT_TRUE(*a == *b);
  ASSERT_TRUE(other->CompactAll().ok());  // folded on disk: the same
  b = other->DigestRange(3, 1);
  EXPECT_TRUE(*a == *b);

  auto differing = [](const RangeDigest& x, const RangeDigest& y) {
    std::vector<size_t> out;
    for (size_t s = 0; s < kDigestSegments; ++s) {
      if (x.segments[s] != y.segments[s]) out.push_back(s);
    }
    return out;
  };
  // A newer version of one key on `other`: its segment, and only it, differs.
  ASSERT_TRUE(WriteSync(*other, {.ops = {Put("k42", "newer", {1000, 2}, 3)}}).status.ok());
  b = other->DigestRange(3, 1);
  EXPECT_EQ(differing(*a, *b), std::vector<size_t>{DigestSegmentOf("k42")});
  // The same version on `engine_` too: equal again; a newer version (a tombstone) differs.
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put("k42", "newer", {1000, 2}, 3)}}).status.ok());
  a = engine_->DigestRange(3, 1);
  EXPECT_TRUE(*a == *b);
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Tombstone("k7", {2000, 1}, 3)}}).status.ok());
  a = engine_->DigestRange(3, 1);
  EXPECT_EQ(differing(*a, *b), std::vector<size_t>{DigestSegmentOf("k7")});

  // A value that expires, and that compaction turns into a tombstone of the same version on one
  // replica only: the digests stay equal.
  WriteOp expiring = Put("ttl", "v", {3000, 1}, 3);
  expiring.value.expires_at_ms = clock_.ms + 1000;
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {expiring, Tombstone("k7", {2000, 1}, 3)}}).status.ok());
  ASSERT_TRUE(WriteSync(*other, {.ops = {expiring, Tombstone("k7", {2000, 1}, 3)}}).status.ok());
  clock_.ms += 2000;
  ASSERT_TRUE(engine_->CompactAll().ok());
  ASSERT_TRUE(engine_->CompactAll().ok());
  ASSERT_TRUE(Read(*engine_, "ttl", 3)->tombstone);
  EXPECT_FALSE(Read(*other, "ttl", 3)->tombstone);
  EXPECT_TRUE(*engine_->DigestRange(3, 1) == *other->DigestRange(3, 1));
}

// ---- Hash trees maintained on write (issue #16) ----

// Submits `requests` so that the writer thread commits them as one group: it is held in a
// transaction (a group of its own) until all of them are queued.
std::vector<Written> WriteGroup(Engine& engine, std::vector<WriteRequest> requests) {
  std::promise<void> holding, release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<Written> held;
  std::vector<std::promise<Written>> done(requests.size());
  auto to = [](std::promise<Written>& p) {
    return [&p](Status s, std::vector<WriteOutcome> o) {
      p.set_value(Written{std::move(s), std::move(o)});
    };
  };
  WriteRequest hold;
  hold.txn = [&holding, released](GroupView&) {
    holding.set_value();
    released.wait();
    return Status::Ok();
  };
  engine.Write(std::move(hold), to(held));
  holding.get_future().wait();
  for (size_t i = 0; i < requests.size(); ++i) engine.Write(std::move(requests[i]), to(done[i]));
  release.set_value();
  EXPECT_TRUE(held.get_future().get().status.ok());
  std::vector<Written> out;
  for (auto& p : done) out.push_back(p.get_future().get());
  return out;
}

// The ranges the tree tests write: partitions 0..3, keyspaces 1..3.
std::vector<std::pair<uint32_t, uint32_t>> TestRanges() {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  for (uint32_t p = 0; p < 4; ++p) {
    for (uint32_t ks = 1; ks <= 3; ++ks) out.emplace_back(p, ks);
  }
  return out;
}

// Every range's maintained tree is what its data gives, and TreeRanges() lists those that hold
// keys.
void ExpectTreesMatchData(Engine& engine, std::string_view when) {
  SCOPED_TRACE(std::string(when));
  std::vector<std::pair<uint32_t, uint32_t>> holding;
  for (const auto& [p, ks] : TestRanges()) {
    ExpectTreeMatchesData(engine, p, ks);
    auto data = engine.DigestRange(p, ks);
    if (data.ok() && data->keys > 0) holding.emplace_back(p, ks);
  }
  EXPECT_EQ(engine.TreeRanges(), holding);
}

// Random writes over TestRanges(): versions new and old (late arrivals), tombstones, values with
// a TTL, some already expired.
struct WriteMix {
  std::mt19937_64 rng;
  FakeClock& clock;
  uint64_t next_hlc = 1000;
  std::set<std::pair<uint64_t, uint32_t>> given;  // the versions AnyVersion() gave

  uint64_t Below(uint64_t n) { return rng() % n; }
  DataKey Key() {
    return DataKey{static_cast<uint32_t>(Below(4)), static_cast<uint32_t>(1 + Below(3)),
                   fmt::format("k{}", Below(25))};
  }
  Version AnyVersion() {
    // Half newer than everything so far, half anything older (a late hint, a repair). Never one
    // given before: a version names one write (HLC and node), and two different writes of one
    // key with the same version would make the outcome depend on their order.
    while (true) {
      const uint64_t hlc = Below(2) == 0 ? ++next_hlc : 1 + Below(next_hlc);
      const Version v{hlc, static_cast<uint32_t>(1 + Below(3))};
      if (given.insert({v.hlc, v.node}).second) return v;
    }
  }
  StoredValue Value() {
    StoredValue v{.version = AnyVersion()};
    if (Below(5) == 0) {
      v.tombstone = true;
      return v;
    }
    if (Below(5) == 0) v.expires_at_ms = clock.ms + Below(3000) - 1000;  // some already expired
    v.value = fmt::format("v{}", Below(1000));
    return v;
  }
  WriteOp Op() { return WriteOp{Key(), Value()}; }
};

// The maintained trees must equal the trees rebuilt from data after any mix of writes: plain
// ones, in groups (absorbed or not), late older versions, transactions, range deletes (also in
// the same group as writes into the range), purges (valid, stale, of live values, of keys the
// group writes), compactions that expire values; and after a restart. Run with the default
// folds and with every write folded.
class EngineTreeTest : public EngineTest, public ::testing::WithParamInterface<uint32_t> {
 protected:
  void SetUp() override { Open(/*sync=*/false, GetParam()); }
};
INSTANTIATE_TEST_SUITE_P(FoldEvery, EngineTreeTest, ::testing::Values(16u, 1u));

TEST_P(EngineTreeTest, MaintainedTreesEqualTreesRebuiltFromData) {
  const TestSeed seed;
  WriteMix mix{std::mt19937_64(seed.value()), clock_};

  // Purges of what keys hold now: mostly the stored version (purged when dead), some stale.
  auto purges = [&](size_t n) {
    std::vector<WriteRequest::Purge> out;
    for (size_t i = 0; i < n; ++i) {
      DataKey key = mix.Key();
      auto stored = engine_->Get(key);
      EXPECT_TRUE(stored.ok());
      if (!stored.ok() || !*stored) continue;
      Version version = (*stored)->version;
      if (mix.Below(4) == 0) version = mix.AnyVersion();
      out.push_back({std::move(key), version});
    }
    return out;
  };
  auto request = [&]() {
    WriteRequest r;
    const uint64_t kind = mix.Below(20);
    if (kind < 11) {  // plain writes, sometimes of one key twice
      for (uint64_t n = 1 + mix.Below(5); n > 0; --n) r.ops.push_back(mix.Op());
      if (mix.Below(4) == 0) r.ops.push_back({r.ops[0].key, mix.Value()});
    } else if (kind < 14) {  // a transaction, as Paxos commits write
      const DataKey key = mix.Key();
      const StoredValue value = mix.Value();
      r.txn = [key, value](GroupView& g) -> Status {
        auto current = g.GetData(key);
        if (!current.ok()) return current.status();
        g.MergeData(key, value);
        return Status::Ok();
      };
      if (mix.Below(2) == 0) r.ops.push_back(mix.Op());
    } else if (kind < 18) {  // purges, sometimes with writes
      r.purges = purges(1 + mix.Below(4));
      if (mix.Below(3) == 0) r.ops.push_back(mix.Op());
    } else {  // a range delete, sometimes with writes into the range
      const DataKey key = mix.Key();
      r.range_deletes.push_back({key.partition, key.keyspace});
      for (uint64_t n = mix.Below(3); n > 0; --n) {
        WriteOp op = mix.Op();
        op.key.partition = key.partition;
        op.key.keyspace = key.keyspace;
        r.ops.push_back(std::move(op));
      }
    }
    return r;
  };

  auto run = [&](int rounds) {
    for (int round = 0; round < rounds; ++round) {
      if (mix.Below(3) == 0) {
        ASSERT_TRUE(WriteSync(*engine_, request()).status.ok());
      } else {
        std::vector<WriteRequest> group;
        for (uint64_t n = 1 + mix.Below(6); n > 0; --n) group.push_back(request());
        for (const Written& w : WriteGroup(*engine_, std::move(group))) {
          ASSERT_TRUE(w.status.ok()) << w.status.ToString();
        }
      }
      if (mix.Below(40) == 0) {
        clock_.ms += mix.Below(3000);
        ASSERT_TRUE(engine_->CompactAll().ok());
      }
      if (round % 50 == 49) {
        ExpectTreesMatchData(*engine_, fmt::format("after round {}", round));
        if (HasFailure()) return;
      }
    }
  };
  run(400);
  ExpectTreesMatchData(*engine_, "after the writes");
  EXPECT_GT(engine_->purged(), 0u);
  EXPECT_GT(engine_->absorbed(), 0u);
  EXPECT_GT(engine_->folds(), 0u);

  Open(/*sync=*/false, GetParam());
  ExpectTreesMatchData(*engine_, "after a restart");
  run(100);
  ExpectTreesMatchData(*engine_, "after more writes");
}

// Replicas that end up with the same versions have the same trees, whatever the order, the
// grouping and the duplicates of the writes that got them there, and whenever compaction
// expires their values.
TEST_F(EngineTest, TreesAgreeWhateverTheOrderOfWrites) {
  const TestSeed seed;
  WriteMix mix{std::mt19937_64(seed.value()), clock_};
  auto other_or = Engine::Open(EngineOptions{.path = dir_.Sub("other"), .clock = &clock_});
  ASSERT_TRUE(other_or.ok()) << other_or.status().ToString();
  std::unique_ptr<Engine> other = std::move(*other_or);

  std::vector<WriteOp> ops;
  for (int i = 0; i < 600; ++i) ops.push_back(mix.Op());
  std::vector<WriteOp> shuffled = ops;
  for (int i = 0; i < 150; ++i) shuffled.push_back(ops[mix.Below(ops.size())]);  // duplicates
  std::shuffle(shuffled.begin(), shuffled.end(), mix.rng);

  // `engine_` in order, one op per request in groups; `other` shuffled, several per request.
  for (size_t i = 0; i < ops.size();) {
    std::vector<WriteRequest> group;
    for (uint64_t n = 1 + mix.Below(8); n > 0 && i < ops.size(); --n) {
      group.push_back({.ops = {ops[i++]}});
    }
    for (const Written& w : WriteGroup(*engine_, std::move(group))) ASSERT_TRUE(w.status.ok());
  }
  for (size_t i = 0; i < shuffled.size();) {
    WriteRequest request;
    for (uint64_t n = 1 + mix.Below(8); n > 0 && i < shuffled.size(); --n) {
      request.ops.push_back(shuffled[i++]);
    }
    ASSERT_TRUE(WriteSync(*other, std::move(request)).status.ok());
  }
  auto expect_equal = [&](std::string_view when) {
    SCOPED_TRACE(std::string(when));
    ExpectTreesMatchData(*engine_, "mine");
    ExpectTreesMatchData(*other, "other");
    for (const auto& [p, ks] : TestRanges()) {
      EXPECT_TRUE(*engine_->RangeTree(p, ks) == *other->RangeTree(p, ks)) << p << "/" << ks;
    }
    EXPECT_EQ(engine_->TreeRanges(), other->TreeRanges());
  };
  expect_equal("after the same writes");

  // Every value expires; one replica's compaction turns them into tombstones, the other's not.
  clock_.ms += 10'000;
  ASSERT_TRUE(engine_->CompactAll().ok());
  ASSERT_TRUE(engine_->CompactAll().ok());
  expect_equal("after one replica's compaction expired values");

  // The same purges on both (of what one holds): both lose the same keys.
  std::vector<WriteRequest::Purge> purges;
  for (const WriteOp& op : ops) {
    auto stored = engine_->Get(op.key);
    ASSERT_TRUE(stored.ok());
    if (*stored) purges.push_back({op.key, (*stored)->version});
  }
  ASSERT_TRUE(WriteSync(*engine_, {.purges = purges}).status.ok());
  ASSERT_TRUE(WriteSync(*other, {.purges = purges}).status.ok());
  EXPECT_GT(engine_->purged(), 0u);
  EXPECT_EQ(engine_->purged(), other->purged());
  expect_equal("after the same purges");
}

// Deleted and written in the same group, a range's tree is rebuilt from its data: exact whatever
// the order of the two in the group's batch, and across a restart.
TEST_F(EngineTest, RangeDeletedAndWrittenInOneGroupGetsItsTreeRebuilt) {
  WriteRequest before;
  for (int i = 0; i < 20; ++i) before.ops.push_back(Put(fmt::format("k{}", i), "v", {10, 1}, 2, 1));
  before.ops.push_back(Put("k0", "neighbour", {10, 1}, 3, 1));
  ASSERT_TRUE(WriteSync(*engine_, std::move(before)).status.ok());
  const RangeDigest neighbour = *engine_->RangeTree(3, 1);

  std::vector<WriteRequest> group;
  group.push_back({.ops = {Put("early", "deleted with the range", {20, 1}, 2, 1)}});
  group.push_back({.range_deletes = {{2, 1}}});
  group.push_back({.ops = {Put("late", "stays", {20, 1}, 2, 1), Put("k3", "again", {5, 1}, 2, 1)}});
  for (const Written& w : WriteGroup(*engine_, std::move(group))) ASSERT_TRUE(w.status.ok());
  EXPECT_FALSE(Read(*engine_, "early", 2).has_value());
  EXPECT_EQ(Read(*engine_, "late", 2)->value, "stays");
  EXPECT_EQ(Read(*engine_, "k3", 2)->value, "again");
  auto tree = engine_->RangeTree(2, 1);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();  // rebuilt before the writes were answered
  EXPECT_EQ(tree->keys, 2u);
  ExpectTreeMatchesData(*engine_, 2, 1);
  EXPECT_TRUE(*engine_->RangeTree(3, 1) == neighbour);

  // A range delete alone empties the tree.
  ASSERT_TRUE(WriteSync(*engine_, {.range_deletes = {{3, 1}}}).status.ok());
  EXPECT_EQ(engine_->RangeTree(3, 1)->keys, 0u);
  EXPECT_EQ(engine_->TreeRanges(), (std::vector<std::pair<uint32_t, uint32_t>>{{2, 1}}));
  Open();
  ExpectTreeMatchesData(*engine_, 2, 1);
  EXPECT_EQ(engine_->TreeRanges(), (std::vector<std::pair<uint32_t, uint32_t>>{{2, 1}}));
}

// A dropped keyspace's trees go with its data, and later writes to it are not tracked.
TEST_F(EngineTest, DroppedKeyspaceLeavesNoTrees) {
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put("a", "1", {1, 1}, 0, 5), Put("b", "2", {1, 1}, 3, 5),
                                           Put("a", "other", {1, 1}, 0, 6)}})
                  .status.ok());
  EXPECT_EQ(engine_->TreeRanges().size(), 3u);
  ASSERT_TRUE(WriteSync(*engine_, {.drop = WriteRequest::Drop{.keyspace = 5, .partitions = 4}})
                  .status.ok());
  ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put("late", "x", {9, 1}, 1, 5)}}).status.ok());
  EXPECT_EQ(engine_->TreeRanges(), (std::vector<std::pair<uint32_t, uint32_t>>{{0, 6}}));
  EXPECT_EQ(engine_->RangeTree(0, 5)->keys, 0u);
  EXPECT_EQ(engine_->RangeTree(1, 5)->keys, 0u);
  ExpectTreeMatchesData(*engine_, 0, 6);
  Open();
  EXPECT_EQ(engine_->TreeRanges(), (std::vector<std::pair<uint32_t, uint32_t>>{{0, 6}}));
}

// The column family and meta record that hold the trees (engine.cc), for tests that play an
// older database or an interrupted build.
constexpr const char* kTreesFamily = "trees";
constexpr const char* kTreesVersionKey = "trees_version";

// Opens the engine's database with RocksDB alone, runs `edit` on it, and closes it.
void EditDatabase(
    const std::string& path,
    const std::function<void(rocksdb::DB&, std::map<std::string, rocksdb::ColumnFamilyHandle*>&)>&
        edit) {
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& name : names) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  rocksdb::DBOptions options;
  // The data family's merge operator is the engine's: nothing here may fold its records.
  options.avoid_flush_during_recovery = true;
  options.avoid_flush_during_shutdown = true;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(options, path, families, &handles, &raw);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::unique_ptr<rocksdb::DB> db(raw);
  std::map<std::string, rocksdb::ColumnFamilyHandle*> by_name;
  for (size_t i = 0; i < names.size(); ++i) by_name[names[i]] = handles[i];
  edit(*db, by_name);
  for (auto* h : handles) EXPECT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  EXPECT_TRUE(db->Close().ok());
}

// A database from before the trees has data and no trees: Open builds them all from the data.
// Open also rebuilds what an interrupted build left, and a range left marked for a rebuild.
TEST_F(EngineTest, OpenBuildsTreesForADatabaseThatHasNone) {
  const TestSeed seed;
  WriteMix mix{std::mt19937_64(seed.value()), clock_};
  WriteRequest request;
  for (int i = 0; i < 500; ++i) request.ops.push_back(mix.Op());
  request.ops.push_back(Put("gone", "dropped later", {1, 1}, 0, 9));
  ASSERT_TRUE(WriteSync(*engine_, std::move(request)).status.ok());
  ASSERT_TRUE(WriteSync(*engine_, {.drop = WriteRequest::Drop{.keyspace = 9, .partitions = 1}})
                  .status.ok());
  std::map<std::pair<uint32_t, uint32_t>, RangeDigest> maintained;
  for (const auto& [p, ks] : TestRanges()) maintained[{p, ks}] = *engine_->RangeTree(p, ks);
  auto ranges = engine_->TreeRanges();
  ASSERT_GT(ranges.size(), 6u);
  ASSERT_TRUE(engine_->CompactAll().ok());  // the data's merge operands folded
  engine_.reset();

  auto expect_rebuilt = [&](std::string_view when) {
    SCOPED_TRACE(std::string(when));
    Open();
    ExpectTreesMatchData(*engine_, when);
    EXPECT_EQ(engine_->TreeRanges(), ranges);
    for (const auto& [p, ks] : TestRanges()) {
      EXPECT_TRUE((*engine_->RangeTree(p, ks) == maintained[{p, ks}])) << p << "/" << ks;
    }
    // Maintained from there on.
    ASSERT_TRUE(WriteSync(*engine_, {.ops = {Put("new", "v", {1 << 20, 1}, 1, 2)}}).status.ok());
    ExpectTreeMatchesData(*engine_, 1, 2);
    ASSERT_TRUE(WriteSync(*engine_, {.range_deletes = {{1, 2}}}).status.ok());
    ASSERT_TRUE(engine_->CompactAll().ok());
    engine_.reset();
    maintained[{1, 2}] = RangeDigest{};
  };
  // Strictly before the trees: no family, no marker.
  EditDatabase(dir_.Sub("db"), [](rocksdb::DB& db, auto& families) {
    ASSERT_TRUE(db.DropColumnFamily(families.at(kTreesFamily)).ok());
    ASSERT_TRUE(db.Delete(rocksdb::WriteOptions(), families.at("meta"), kTreesVersionKey).ok());
  });
  expect_rebuilt("no trees");
  std::erase(ranges, std::pair<uint32_t, uint32_t>{1, 2});

  // A build that stopped half way: records, wrong ones even, but no marker.
  EditDatabase(dir_.Sub("db"), [](rocksdb::DB& db, auto& families) {
    ASSERT_TRUE(db.Delete(rocksdb::WriteOptions(), families.at("meta"), kTreesVersionKey).ok());
    std::string key = EncodeDataKey(0, 1, "");
    key.append("\x00\x07", 2);
    ASSERT_TRUE(
        db.Put(rocksdb::WriteOptions(), families.at(kTreesFamily), key, std::string(16, '\x01'))
            .ok());
    key = EncodeDataKey(3, 3, "");
    key.append("\x00\x01", 2);
    ASSERT_TRUE(
        db.Put(rocksdb::WriteOptions(), families.at(kTreesFamily), key, std::string(16, '\x01'))
            .ok());
  });
  expect_rebuilt("an interrupted build");

  // A range marked for a rebuild (a group deleted it and wrote into it, then the node stopped
  // before the rebuild was stored), its records wrong.
  EditDatabase(dir_.Sub("db"), [](rocksdb::DB& db, auto& families) {
    ASSERT_TRUE(
        db.Put(rocksdb::WriteOptions(), families.at(kTreesFamily), EncodeDataKey(0, 1, ""), "")
            .ok());
    std::string key = EncodeDataKey(0, 1, "");
    key.append("\x00\x07", 2);
    ASSERT_TRUE(
        db.Put(rocksdb::WriteOptions(), families.at(kTreesFamily), key, std::string(16, '\x01'))
            .ok());
  });
  expect_rebuilt("a range marked for a rebuild");
}

// A file system whose log syncs fail while `failing` is set: a group commit that cannot be made
// durable.
class FailingLogSyncFs final : public rocksdb::FileSystemWrapper {
 public:
  explicit FailingLogSyncFs(std::shared_ptr<rocksdb::FileSystem> base)
      : FileSystemWrapper(std::move(base)) {}
  const char* Name() const override { return "FailingLogSyncFs"; }

  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    auto s = target()->NewWritableFile(fname, options, result, dbg);
    if (s.ok() && fname.ends_with(".log"))
      *result = std::make_unique<Log>(std::move(*result), this);
    return s;
  }

  std::atomic<bool> failing{false};

 private:
  class Log final : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    Log(std::unique_ptr<rocksdb::FSWritableFile> target, FailingLogSyncFs* fs)
        : FSWritableFileOwnerWrapper(std::move(target)), fs_(fs) {}
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
      if (fs_->failing) return rocksdb::IOStatus::IOError("injected log sync failure");
      return target()->Sync(options, dbg);
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* dbg) override {
      if (fs_->failing) return rocksdb::IOStatus::IOError("injected log sync failure");
      return target()->Fsync(options, dbg);
    }

   private:
    FailingLogSyncFs* const fs_;
  };
};

// A group that fails leaves the trees in memory as they are on disk: without its changes while
// the node runs (RocksDB did not apply it), and with or without them after a restart, the same
// as the data either way.
TEST_F(EngineTest, FailedGroupLeavesTreesAsTheDataIs) {
  engine_.reset();
  auto fs = std::make_shared<FailingLogSyncFs>(rocksdb::FileSystem::Default());
  auto env = rocksdb::NewCompositeEnv(fs);
  auto opened = Engine::Open(EngineOptions{.path = dir_.Sub("db"), .env = env.get()});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  engine_ = std::move(*opened);
  WriteRequest first;
  for (int i = 0; i < 50; ++i) {
    first.ops.push_back(Put(fmt::format("k{}", i), "v", {10, 1}, static_cast<uint32_t>(i % 4)));
  }
  first.ops.push_back(Tombstone("dead", {10, 1}));
  ASSERT_TRUE(WriteSync(*engine_, std::move(first)).status.ok());
  std::map<std::pair<uint32_t, uint32_t>, RangeDigest> before;
  for (const auto& [p, ks] : TestRanges()) before[{p, ks}] = *engine_->RangeTree(p, ks);

  // A transaction that fails fails its group before anything is written.
  WriteRequest failing_txn;
  failing_txn.ops.push_back(Put("k1", "newer", {20, 1}, 1));
  failing_txn.txn = [](GroupView& g) -> Status {
    g.MergeData(DataKey{0, 1, "txn"}, StoredValue{.version = {20, 1}, .value = "v"});
    return Status::Internal("injected");
  };
  EXPECT_EQ(WriteSync(*engine_, std::move(failing_txn)).status.code(), Code::kInternal);
  ExpectTreesMatchData(*engine_, "after a failed transaction");

  // A write that fails in RocksDB: the log cannot be synced.
  fs->failing = true;
  auto failed =
      WriteSync(*engine_, {.ops = {Put("k2", "newer", {20, 1}, 2), Put("new", "v", {20, 1}),
                                   Put("k5", "older", {5, 1}, 1)},
                           .purges = {Purge("dead", {10, 1})}});
  EXPECT_FALSE(failed.status.ok());
  for (const auto& [p, ks] : TestRanges()) {
    EXPECT_TRUE((*engine_->RangeTree(p, ks) == before[{p, ks}])) << p << "/" << ks;
  }
  ExpectTreesMatchData(*engine_, "after a failed write");
  EXPECT_EQ(engine_->purged(), 0u);
  fs->failing = false;
  engine_.reset();
  Open();
  ExpectTreesMatchData(*engine_, "after a restart");
}

// The key index against the partition merge it replaces: random writes, tombstones, purges,
// range deletions (with and without writes into the deleted range in the same group, which
// leaves the range to a rebuild), a keyspace drop and restarts; after each round, every scan
// asked both ways returns the same page, and every data key has its index record.
TEST_F(EngineTest, ScansThroughTheKeyIndexEqualPartitionMerges) {
  const TestSeed seed;
  std::mt19937_64 rng(seed.value());
  constexpr uint32_t kPartitions = 16;
  auto partition_of = [](uint32_t keyspace, const std::string& key) {
    return static_cast<uint32_t>(std::hash<std::string>()(key) * 31 + keyspace) % kPartitions;
  };
  auto key_of = [&rng]() {
    const char* prefixes[] = {"a", "ab", "abc", "b", "user:", "user:1", "z\xff"};
    return std::string(prefixes[rng() % 7]) + std::to_string(rng() % 60);
  };
  std::vector<uint32_t> keyspaces = {1, 2};
  uint64_t ts = 1;
  std::map<std::pair<uint32_t, std::string>, Version> tombstones;  // to purge later
  size_t compared = 0;                                             // items both scans returned
  for (int round = 0; round < 40; ++round) {
    WriteRequest req;
    const int ops = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < ops; ++i) {
      const uint32_t ks = keyspaces[rng() % keyspaces.size()];
      std::string key = key_of();
      const uint32_t p = partition_of(ks, key);
      // Mostly newer versions, sometimes an older one (last writer wins keeps the stored one).
      const Version v{rng() % 8 == 0 ? ts / 2 + 1 : ++ts, 1};
      if (rng() % 5 == 0) {
        req.ops.push_back(WriteOp{.key = {p, ks, key}, .value = {.version = v, .tombstone = true}});
        tombstones[{ks, key}] = v;
      } else {
        req.ops.push_back(Put(key, "v" + std::to_string(ts), v, p, ks));
      }
    }
    if (rng() % 3 == 0 && !tombstones.empty()) {
      auto it = tombstones.begin();
      std::advance(it, rng() % tombstones.size());
      const auto& [id, version] = *it;
      req.purges.push_back(Purge(id.second, version, partition_of(id.first, id.second), id.first));
      tombstones.erase(it);
    }
    if (rng() % 6 == 0) {
      // A range deletion; the group may also write into the range (a rebuild follows).
      req.range_deletes.push_back(
          {.partition = static_cast<uint32_t>(rng() % kPartitions), .keyspace = keyspaces[0]});
    }
    if (round == 20) {
      // Keyspace 2 is dropped (in a group of its own); keyspace 3 takes its place.
      ASSERT_TRUE(WriteSync(*engine_,
                            {.drop = WriteRequest::Drop{.keyspace = 2, .partitions = kPartitions}})
                      .status.ok());
      keyspaces = {1, 3};
      std::erase_if(tombstones, [](const auto& t) { return t.first.first == 2; });
      for (auto& op : req.ops) {
        if (op.key.keyspace == 2) {
          op.key.keyspace = 3;
          op.key.partition = partition_of(3, op.key.key);
        }
      }
    }
    ASSERT_TRUE(WriteSync(*engine_, std::move(req)).status.ok()) << "round " << round;
    if (rng() % 8 == 0) Open();
    if (rng() % 10 == 0) {
      ASSERT_TRUE(engine_->CompactAll().ok());
    }

    auto missing = engine_->KeysMissingFromIndex();
    ASSERT_TRUE(missing.ok()) << missing.status().ToString();
    EXPECT_EQ(*missing, 0u) << "round " << round;

    for (int q = 0; q < 12; ++q) {
      const uint32_t ks = std::vector<uint32_t>{1, 2, 3}[rng() % 3];
      std::vector<uint32_t> parts;
      for (uint32_t p = 0; p < kPartitions; ++p) {
        if (rng() % 4 != 0) parts.push_back(p);
      }
      const std::string prefix = std::vector<std::string>{"", "a", "ab", "user:", "z"}[rng() % 5];
      const std::string after = rng() % 2 == 0 ? "" : key_of();
      const size_t limit = 1 + rng() % 30;
      const size_t max_dead = rng() % 10;
      const size_t max_bytes = rng() % 4 == 0 ? 1 + rng() % 200 : SIZE_MAX;
      auto merged = engine_->Scan(ks, parts, prefix, after, limit, max_dead, max_bytes,
                                  Engine::ScanPath::kMerge);
      auto indexed = engine_->Scan(ks, parts, prefix, after, limit, max_dead, max_bytes,
                                   Engine::ScanPath::kIndex);
      ASSERT_TRUE(merged.ok() && indexed.ok());
      const std::string what = fmt::format("round {} keyspace {} prefix '{}' after '{}' limit {}",
                                           round, ks, prefix, after, limit);
      ASSERT_EQ(merged->items.size(), indexed->items.size()) << what;
      compared += merged->items.size();
      for (size_t i = 0; i < merged->items.size(); ++i) {
        EXPECT_EQ(merged->items[i].key, indexed->items[i].key) << what;
        EXPECT_EQ(merged->items[i].value.version, indexed->items[i].value.version) << what;
        EXPECT_EQ(merged->items[i].value.value, indexed->items[i].value.value) << what;
        EXPECT_EQ(merged->items[i].value.tombstone, indexed->items[i].value.tombstone) << what;
      }
      EXPECT_EQ(merged->last_key, indexed->last_key) << what;
      // The index may name keys past the page that a range deletion left without data; the
      // merge then says "exhausted" where the index cannot know yet. Never the other way round.
      if (indexed->exhausted) {
        EXPECT_TRUE(merged->exhausted) << what;
      }
    }
  }
  EXPECT_GT(compared, 1000u);  // the comparison saw pages with keys in them, not only empty ones
  EXPECT_GT(engine_->index_stale_skipped(), 0u);  // and range deletions' stale records
}

// A database created before the key index: Open builds it from the data.
TEST_F(EngineTest, OpenBuildsTheKeyIndexOfAnOlderDatabase) {
  WriteRequest req;
  for (int i = 0; i < 3000; ++i) {
    req.ops.push_back(Put(fmt::format("k{:05}", i), "v", {1, 1}, static_cast<uint32_t>(i % 64)));
  }
  ASSERT_TRUE(WriteSync(*engine_, std::move(req)).status.ok());
  // In table files: the foreign open below, without the engine's merge operator, must find no
  // merge operands in the log to replay.
  ASSERT_TRUE(engine_->CompactAll().ok());
  engine_.reset();
  {
    // What an older build left: no keys family, no marker.
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir_.Sub("db"), &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const std::string& name : names)
      families.push_back({name, rocksdb::ColumnFamilyOptions()});
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(
        rocksdb::DB::Open(rocksdb::DBOptions(), dir_.Sub("db"), families, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == "keys") {
        EXPECT_TRUE(db->DropColumnFamily(handles[i]).ok());
      }
      if (names[i] == "meta") {
        EXPECT_TRUE(db->Delete(rocksdb::WriteOptions(), handles[i], "keys_version").ok());
      }
    }
    for (auto* h : handles) EXPECT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
    EXPECT_TRUE(db->Close().ok());
  }
  Open();
  auto missing = engine_->KeysMissingFromIndex();
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(*missing, 0u);
  std::vector<uint32_t> parts(64);
  std::iota(parts.begin(), parts.end(), 0);
  auto page = engine_->Scan(1, parts, "k0", "k00099", 5, 100, SIZE_MAX, Engine::ScanPath::kIndex);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 5u);
  EXPECT_EQ(page->items[0].key, "k00100");
  EXPECT_EQ(page->items[4].key, "k00104");
  EXPECT_EQ(engine_->index_scans(), 1u);
}

}  // namespace
}  // namespace cairn::storage
