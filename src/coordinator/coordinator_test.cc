#include "coordinator/cluster_coordinator.h"

#include <atomic>
#include <future>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>

#include "base/hash.h"
#include "tests/support/options.h"
#include "tests/support/run_to_completion.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace cairn::coordinator {
namespace {

using namespace std::chrono_literals;
using cairn::testing::TempDir;
using cairn::testing::WaitUntil;

class FakeWall final : public base::PhysicalClock {
 public:
  uint64_t NowMillis() override { return ms.load(); }
  std::atomic<uint64_t> ms{1'700'000'000'000};
};

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto e = storage::Engine::Open(storage::EngineOptions{.path = dir_.Sub("db"), .clock = &wall_});
    ASSERT_TRUE(e.ok());
    engine_ = std::move(*e);
    identity_ = *cluster::LoadOrCreateIdentity(*engine_, 7, 4);
    schema_ = std::move(*cluster::Schema::Load(engine_.get(), identity_.partitions()));
    clock_ = std::make_unique<base::HybridClock>(&wall_, 0, [](uint64_t) {});
    replica_ = std::make_unique<replica::Replica>(engine_.get(), pool_.get_executor());
    auto topology = cluster::Topology::Make({cluster::Member{7, "127.0.0.1:1", "dc1", "rack1"}}, 7,
                                            identity_.partition_bits, 0, 1);
    ASSERT_TRUE(topology.ok());
    view_ = std::make_unique<cluster::StaticClusterView>(*topology);
    coordinator_ = std::make_unique<ClusterCoordinator>(
        CoordinatorOptions{.max_value_bytes = 1024}, identity_, schema_.get(), view_.get(),
        replica_.get(), clock_.get(), &wall_, pool_.get_executor(),
        std::vector<cluster::InternodeClient*>{}, nullptr);
  }
  void TearDown() override { pool_.join(); }

  template <typename T>
  T Run(asio::awaitable<T> op) {
    return cairn::testing::RunToCompletion(io_, std::move(op));
  }

  RequestOptions Opts(std::string keyspace = "", Consistency cl = Consistency::kDefault) {
    return RequestOptions{std::move(keyspace), cl, base::Clock::now() + 5s};
  }
  Result<Version> Put(std::string key, std::string value, uint64_t ttl_ms = 0,
                      std::string keyspace = "") {
    return Run(coordinator_->Put(std::move(key), std::move(value), ttl_ms, Opts(keyspace)));
  }
  Result<std::optional<Record>> Get(std::string key, std::string keyspace = "") {
    return Run(coordinator_->Get(std::move(key), Opts(keyspace)));
  }
  Result<CasResult> Cas(std::string key, CasCondition c, std::optional<std::string> v) {
    return Run(coordinator_->Cas(std::move(key), std::move(c), std::move(v), 0, Opts()));
  }

  TempDir dir_;
  FakeWall wall_;
  asio::thread_pool pool_{2};
  asio::io_context io_;
  std::unique_ptr<storage::Engine> engine_;
  cluster::NodeIdentity identity_;
  std::unique_ptr<cluster::Schema> schema_;
  std::unique_ptr<base::HybridClock> clock_;
  std::unique_ptr<replica::Replica> replica_;
  std::unique_ptr<cluster::StaticClusterView> view_;
  std::unique_ptr<Coordinator> coordinator_;
};

TEST_F(CoordinatorTest, PutGetDelete) {
  auto v1 = Put("k", "one");
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  EXPECT_EQ(v1->node, 7u);
  auto got = Get("k");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->value, "one");
  EXPECT_EQ((*got)->version, *v1);

  auto v2 = Put("k", "two");
  ASSERT_TRUE(v2.ok());
  EXPECT_GT(*v2, *v1);
  EXPECT_EQ((*Get("k"))->value, "two");

  auto del = Run(coordinator_->Delete("k", Opts()));
  ASSERT_TRUE(del.ok());
  EXPECT_GT(*del, *v2);
  EXPECT_FALSE(Get("k")->has_value());
  // Deleting what is not there is fine.
  EXPECT_TRUE(Run(coordinator_->Delete("never", Opts())).ok());
}

TEST_F(CoordinatorTest, TtlExpiresValues) {
  ASSERT_TRUE(Put("session", "abc", /*ttl_ms=*/1000).ok());
  auto got = Get("session");
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->expires_at_ms, wall_.ms + 1000);
  wall_.ms += 999;
  EXPECT_TRUE(Get("session")->has_value());
  wall_.ms += 1;
  EXPECT_FALSE(Get("session")->has_value());
}

TEST_F(CoordinatorTest, RejectsBadInputAndWritesNothing) {
  EXPECT_EQ(Put("", "v").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Put(std::string(kMaxKeyBytes + 1, 'k'), "v").status().code(), Code::kTooLarge);
  EXPECT_TRUE(Put(std::string(kMaxKeyBytes, 'k'), "v").ok());
  EXPECT_EQ(Put("big", std::string(1025, 'v')).status().code(), Code::kTooLarge);
  EXPECT_FALSE(Get("big")->has_value());
  auto unknown = Put("k", "v", 0, "nosuch");
  EXPECT_EQ(unknown.status().code(), Code::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("nosuch"), std::string::npos);
  EXPECT_EQ(Run(coordinator_->Get("k", Opts("", Consistency::kAny))).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(Run(coordinator_->Put("k", "v", 0, Opts("", Consistency::kSerial))).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(Run(coordinator_->Scan("", "", 10'001, Opts())).status().code(),
            Code::kInvalidArgument);
}

TEST_F(CoordinatorTest, CasConditions) {
  using K = CasCondition::Kind;
  // IF NOT EXISTS on an absent key applies.
  auto created = Cas("c", CasCondition{.kind = K::kIfNotExists}, "v1");
  ASSERT_TRUE(created.ok());
  EXPECT_TRUE(created->applied);
  ASSERT_TRUE(created->current.has_value());
  const Version v1 = created->current->version;
  // ... and not a second time; the answer carries what is there.
  auto again = Cas("c", CasCondition{.kind = K::kIfNotExists}, "other");
  EXPECT_FALSE(again->applied);
  EXPECT_EQ(again->current->value, "v1");
  EXPECT_EQ(again->current->version, v1);
  // IF version.
  EXPECT_FALSE(
      Cas("c", CasCondition{.kind = K::kIfVersion, .version = Version{1, 1}}, "x")->applied);
  auto by_version = Cas("c", CasCondition{.kind = K::kIfVersion, .version = v1}, "v2");
  EXPECT_TRUE(by_version->applied);
  EXPECT_GT(by_version->current->version, v1);
  // IF value.
  EXPECT_FALSE(Cas("c", CasCondition{.kind = K::kIfValue, .value = "v1"}, "x")->applied);
  EXPECT_TRUE(Cas("c", CasCondition{.kind = K::kIfValue, .value = "v2"}, "v3")->applied);
  // IF EXISTS delete.
  auto deleted = Cas("c", CasCondition{.kind = K::kIfExists}, std::nullopt);
  EXPECT_TRUE(deleted->applied);
  EXPECT_FALSE(deleted->current.has_value());
  EXPECT_FALSE(Get("c")->has_value());
  auto absent = Cas("c", CasCondition{.kind = K::kIfExists}, "x");
  EXPECT_FALSE(absent->applied);
  EXPECT_FALSE(absent->current.has_value());
  // An expired value counts as absent.
  ASSERT_TRUE(Run(coordinator_->Put("ttl", "old", 10, Opts())).ok());
  wall_.ms += 11;
  EXPECT_TRUE(Cas("ttl", CasCondition{.kind = K::kIfNotExists}, "new")->applied);
}

TEST_F(CoordinatorTest, CasAfterFutureVersionGetsAUniqueVersionBelowLaterWrites) {
  // A version from a node whose clock runs 10 s ahead.
  storage::WriteOp future;
  future.key = storage::DataKey{base::PartitionOfToken(base::Token("f"), identity_.partition_bits),
                                cluster::kDefaultKeyspaceId, "f"};
  future.value.version = Version{(wall_.ms + 10'000) << 16, 99};
  future.value.value = "from the future";
  std::promise<void> done;
  storage::WriteRequest request;
  request.ops.push_back(future);
  engine_->Write(std::move(request),
                 [&](Status, std::vector<storage::WriteOutcome>) { done.set_value(); });
  done.get_future().wait();

  auto cas = Cas("f", CasCondition{.kind = CasCondition::Kind::kIfExists}, "mine");
  ASSERT_TRUE(cas.ok());
  ASSERT_TRUE(cas->applied);
  EXPECT_GT(cas->current->version, future.value.version);  // ordered after what it replaced
  EXPECT_EQ(cas->current->version.node, 7u);
  auto put = Put("g", "later");
  ASSERT_TRUE(put.ok());
  EXPECT_GT(*put, cas->current->version);  // the clock moved past the raised version
}

TEST_F(CoordinatorTest, CasLevels) {
  using K = CasCondition::Kind;
  auto cas = [&](Consistency serial, Consistency commit) {
    return Run(coordinator_->Cas("l", CasCondition{.kind = K::kIfNotExists}, "v", 0,
                                 Opts("", serial), commit))
        .status();
  };
  // The request level is the Paxos level; the commit level is separate.
  EXPECT_EQ(cas(Consistency::kQuorum, Consistency::kDefault).code(), Code::kInvalidArgument);
  EXPECT_EQ(cas(Consistency::kSerial, Consistency::kSerial).code(), Code::kInvalidArgument);
  EXPECT_EQ(cas(Consistency::kAny, Consistency::kDefault).code(), Code::kInvalidArgument);
  EXPECT_FALSE(Get("l")->has_value());  // nothing of that was applied
  EXPECT_TRUE(cas(Consistency::kLocalSerial, Consistency::kLocalQuorum).ok());
  EXPECT_TRUE(cas(Consistency::kSerial, Consistency::kAll).ok());
  EXPECT_TRUE(cas(Consistency::kSerial, Consistency::kAny).ok());
  auto serial = Run(coordinator_->Get("l", Opts("", Consistency::kSerial)));
  ASSERT_TRUE(serial.ok());
  ASSERT_TRUE(serial->has_value());
  EXPECT_EQ((*serial)->value, "v");
  EXPECT_TRUE(Run(coordinator_->Get("l", Opts("", Consistency::kLocalSerial))).ok());
}

TEST_F(CoordinatorTest, PaxosStateIsGoneOnceCommitted) {
  using K = CasCondition::Kind;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(Cas(fmt::format("p{}", i), CasCondition{.kind = K::kIfNotExists}, "v")->applied);
  }
  auto state = engine_->List(storage::Family::kPaxos, "", "", 100);
  ASSERT_TRUE(state.ok());
  EXPECT_TRUE(state->empty()) << state->size() << " Paxos records left behind";
}

uint64_t Counter(const Coordinator& c, std::string_view name) {
  for (const auto& [n, v] : c.Metrics()) {
    if (n == name) return v;
  }
  ADD_FAILURE() << "no counter " << name;
  return 0;
}

// A key swapped again and again from one coordinator: its second commit also prepares the next
// ballot, so from the third swap on each one proposes at once (no prepare round).
TEST_F(CoordinatorTest, RepeatedSwapsOfAKeySkipThePrepareRound) {
  using K = CasCondition::Kind;
  auto first = Cas("hot", CasCondition{.kind = K::kIfNotExists}, "0");
  ASSERT_TRUE(first.ok() && first->applied);
  Version last = first->version;
  const uint64_t prepares = Counter(*coordinator_, "paxos.prepare_round_trips");
  for (int i = 1; i <= 10; ++i) {
    auto next = Cas("hot", CasCondition{.kind = K::kIfVersion, .version = last}, std::to_string(i));
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    ASSERT_TRUE(next->applied) << i;
    EXPECT_GT(next->version, last);
    last = next->version;
  }
  EXPECT_EQ(Counter(*coordinator_, "paxos.prepare_round_trips") - prepares, 1u);
  EXPECT_EQ(Counter(*coordinator_, "paxos.leased_proposals"), 9u);
  EXPECT_EQ(Counter(*coordinator_, "paxos.leases_lost"), 0u);
  EXPECT_EQ((*Get("hot"))->value, "10");
  // The promise for the next swap stays in the acceptor state (one record); nothing else does.
  auto state = engine_->List(storage::Family::kPaxos, "", "", 100);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->size(), 1u);

  // A swap whose condition fails on the leased value is not answered from it: it reads.
  auto stale = Cas("hot", CasCondition{.kind = K::kIfVersion, .version = first->version}, "x");
  ASSERT_TRUE(stale.ok());
  EXPECT_FALSE(stale->applied);
  EXPECT_EQ(stale->current->value, "10");
}

// Another proposer's prepare between two swaps (as from another coordinator) voids the lease:
// the leased proposal is refused, and the swap runs a full round and still applies once.
TEST_F(CoordinatorTest, APreemptedLeaseFallsBackToAFullRound) {
  using K = CasCondition::Kind;
  auto a = Cas("k", CasCondition{.kind = K::kIfNotExists}, "a");
  ASSERT_TRUE(a.ok() && a->applied);
  auto b = Cas("k", CasCondition{.kind = K::kIfVersion, .version = a->version}, "b");
  ASSERT_TRUE(b.ok() && b->applied);  // its commit took the lease

  internode::PaxosPrepareRequest prepare;
  prepare.mutable_key()->set_partition(
      base::PartitionOfToken(base::Token("k"), identity_.partition_bits));
  prepare.mutable_key()->set_keyspace(cluster::kDefaultKeyspaceId);
  prepare.mutable_key()->set_key("k");
  const Version other{clock_->Now() + (uint64_t{100} << 16), 99};  // 100 ms ahead
  prepare.mutable_ballot()->set_hlc(other.hlc);
  prepare.mutable_ballot()->set_node(other.node);
  auto promised = Run(replica_->paxos().Prepare(prepare, base::Clock::now() + 5s));
  ASSERT_TRUE(promised.ok() && promised->promised());

  auto c = Cas("k", CasCondition{.kind = K::kIfVersion, .version = b->version}, "c");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->applied);
  EXPECT_GT(c->version, other);
  EXPECT_EQ(Counter(*coordinator_, "paxos.leased_proposals"), 1u);
  EXPECT_EQ(Counter(*coordinator_, "paxos.leases_lost"), 1u);
  EXPECT_EQ((*Get("k"))->value, "c");
}

TEST_F(CoordinatorTest, LinearizableKeyspaceRoutesPlainWritesThroughPaxos) {
  cluster::KeyspaceDef spec;
  spec.name = "lin";
  spec.replication = {{"*", 1}};
  spec.linearizable = true;
  ASSERT_TRUE(Run(coordinator_->CreateKeyspace(spec, false)).ok());
  auto v1 = Put("k", "one", 0, "lin");
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  auto read = Get("k", "lin");
  ASSERT_TRUE(read.ok());
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->value, "one");
  EXPECT_EQ((*read)->version, *v1);
  auto del = Run(coordinator_->Delete("k", Opts("lin")));
  ASSERT_TRUE(del.ok());
  EXPECT_GT(*del, *v1);
  EXPECT_FALSE(Get("k", "lin")->has_value());
  // A CAS on the same key sees the plain writes.
  auto cas = Run(coordinator_->Cas("k", CasCondition{.kind = CasCondition::Kind::kIfNotExists},
                                   "two", 0, Opts("lin")));
  ASSERT_TRUE(cas.ok());
  EXPECT_TRUE(cas->applied);
  EXPECT_GT(cas->current->version, *del);
}

TEST_F(CoordinatorTest, TtlAndBatchLimits) {
  EXPECT_EQ(Put("k", "v", uint64_t{1} << 62).status().code(), Code::kInvalidArgument);
  std::vector<std::string> keys(1001, "k");
  EXPECT_EQ(Run(coordinator_->BatchGet(keys, Opts())).status().code(), Code::kTooLarge);
}

TEST_F(CoordinatorTest, ConcurrentCasIncrementsLoseNothing) {
  ASSERT_TRUE(Put("counter", "0").ok());
  int retries = 0;
  auto increment = [&]() -> asio::awaitable<void> {
    while (true) {
      auto cur = co_await coordinator_->Get("counter", Opts());
      const int n = std::stoi((*cur)->value);
      CasCondition cond{.kind = CasCondition::Kind::kIfVersion, .version = (*cur)->version};
      auto r = co_await coordinator_->Cas("counter", cond, std::to_string(n + 1), 0, Opts());
      if (r.ok() && r->applied) co_return;
      ++retries;
    }
  };
  for (int i = 0; i < 50; ++i) asio::co_spawn(io_, increment(), asio::detached);
  io_.restart();
  io_.run();
  EXPECT_EQ((*Get("counter"))->value, "50");
  EXPECT_GT(retries, 0);  // they really did race
}

// Automatic splitting (auto_split.h) takes only increments for a counter's load: an increment
// counts once, as a write that is an increment (not also as the read and the swap it is made
// of); one that the value refused (not a number) does not count; a plain write is no increment.
TEST_F(CoordinatorTest, OnlyAppliedIncrementsCountAsIncrements) {
  ASSERT_TRUE(Put("text", "not a number").ok());
  base::CounterDelta one;
  one.by = 1;
  for (int i = 0; i < 200; ++i) {
    auto n = Run(coordinator_->Increment("n", one, Opts(), Consistency::kDefault));
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    ASSERT_EQ(n->refused, base::CounterRefusal::kNone);
    auto text = Run(coordinator_->Increment("text", one, Opts(), Consistency::kDefault));
    ASSERT_TRUE(text.ok()) << text.status().ToString();
    ASSERT_NE(text->refused, base::CounterRefusal::kNone);
    ASSERT_TRUE(Put("set", std::to_string(i)).ok());
  }
  const auto& sketch = static_cast<ClusterCoordinator&>(*coordinator_).hot_keys();
  std::map<std::string, base::HotKey> top;
  for (const base::HotKey& h : sketch.Top(0, 10)) top[h.key] = h;
  // One operation in eight is counted, with a weight of eight: 200 increments are counted about
  // 200 times; never none.
  ASSERT_TRUE(top.contains("n"));
  EXPECT_GT(top["n"].increments_per_s, 0);
  EXPECT_EQ(top["n"].increments_per_s, top["n"].writes_per_s) << "counted once, as a write";
  EXPECT_EQ(top["n"].reads_per_s, 0) << "the increment's own read is not a read of the key";
  ASSERT_TRUE(top.contains("set"));
  EXPECT_EQ(top["set"].increments_per_s, 0);
  if (top.contains("text")) {
    EXPECT_EQ(top["text"].increments_per_s, 0) << "a refused increment is no increment";
  }
  EXPECT_EQ((*Get("n"))->value, "200");
}

TEST_F(CoordinatorTest, ScanPagesCoverEveryKeyOnceInOrder) {
  std::set<std::string> expected;
  for (int i = 0; i < 250; ++i) {
    const std::string key = fmt::format("item:{:04}", i);
    ASSERT_TRUE(Put(key, "v").ok());
    expected.insert(key);
  }
  ASSERT_TRUE(Put("other:1", "v").ok());
  ASSERT_TRUE(Run(coordinator_->Delete("item:0100", Opts())).ok());
  expected.erase("item:0100");

  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    auto page = Run(coordinator_->Scan("item:", cursor, 40, Opts()));
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    EXPECT_LE(page->entries.size(), 40u);
    for (auto& [k, rec] : page->entries) seen.push_back(k);
    cursor = page->cursor;
    ++pages;
  } while (!cursor.empty() && pages < 100);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), expected);
  EXPECT_EQ(seen.size(), expected.size());
}

TEST_F(CoordinatorTest, HashTaggedScanStaysInOnePartition) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Put(fmt::format("{{user:1}}:k{}", i), "v").ok());
  ASSERT_TRUE(Put("{user:2}:k0", "v").ok());
  auto page = Run(coordinator_->Scan("{user:1}:", "", 100, Opts()));
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->entries.size(), 5u);
  EXPECT_TRUE(page->cursor.empty());
  EXPECT_EQ(page->entries[0].first, "{user:1}:k0");
}

// RESP's RANDOMKEY samples the keyspace one partition at a time.
TEST_F(CoordinatorTest, ScanOfOnePartitionSeesExactlyItsKeys) {
  ASSERT_EQ(coordinator_->partition_count(), identity_.partitions());
  std::map<uint32_t, std::set<std::string>> by_partition;
  for (int i = 0; i < 100; ++i) {
    const std::string key = fmt::format("p{}", i);
    ASSERT_TRUE(Put(key, "v").ok());
    by_partition[base::PartitionOfToken(base::Token(key), identity_.partition_bits)].insert(key);
  }
  ASSERT_GT(by_partition.size(), 1u);
  for (uint32_t p = 0; p < coordinator_->partition_count(); ++p) {
    auto page = Run(coordinator_->Scan("", "", 1000, Opts(), p));
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    std::set<std::string> seen;
    for (const auto& [key, record] : page->entries) seen.insert(key);
    EXPECT_EQ(seen, by_partition[p]) << "partition " << p;
  }
  // A hash-tagged prefix of another partition matches nothing there.
  const uint32_t tagged = base::PartitionOfToken(base::Token("{t}"), identity_.partition_bits);
  ASSERT_TRUE(Put("{t}:1", "v").ok());
  EXPECT_EQ(Run(coordinator_->Scan("{t}:", "", 10, Opts(), tagged))->entries.size(), 1u);
  EXPECT_TRUE(Run(coordinator_->Scan("{t}:", "", 10, Opts(),
                                     (tagged + 1) % coordinator_->partition_count()))
                  ->entries.empty());
  EXPECT_EQ(
      Run(coordinator_->Scan("", "", 10, Opts(), coordinator_->partition_count())).status().code(),
      Code::kInvalidArgument);
}

TEST_F(CoordinatorTest, BatchPutIsRejectedWholeWhenAnItemIsBad) {
  std::vector<PutItem> items = {{"a", "1"}, {"b", std::string(2000, 'x')}, {"c", "3"}};
  auto r = Run(coordinator_->BatchPut(items, Opts()));
  EXPECT_EQ(r.status().code(), Code::kTooLarge);
  EXPECT_NE(r.status().message().find("item 1"), std::string::npos);
  EXPECT_FALSE(Get("a")->has_value());

  items[1].value = "2";
  auto ok = Run(coordinator_->BatchPut(items, Opts()));
  ASSERT_TRUE(ok.ok());
  ASSERT_EQ(ok->size(), 3u);
  auto got = Run(coordinator_->BatchGet({"a", "b", "missing", ""}, Opts()));
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 4u);
  EXPECT_EQ((*(*got)[1])->value, "2");
  EXPECT_EQ((*(*got)[1])->version, *(*ok)[1]);
  EXPECT_FALSE((*got)[2]->has_value());
  EXPECT_EQ((*got)[3].status().code(), Code::kInvalidArgument);
}

TEST_F(CoordinatorTest, KeyspacesIsolateData) {
  cluster::KeyspaceDef spec{.name = "other", .replication = {{"*", 1}}};
  auto created = Run(coordinator_->CreateKeyspace(spec, false));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  ASSERT_TRUE(Put("k", "in default").ok());
  ASSERT_TRUE(Put("k", "in other", 0, "other").ok());
  EXPECT_EQ((*Get("k"))->value, "in default");
  EXPECT_EQ((*Get("k", "other"))->value, "in other");
  EXPECT_EQ(coordinator_->ListKeyspaces()->size(), 2u);
  EXPECT_EQ(coordinator_->DescribeKeyspace("other")->ReplicationIn("dc1"), 1u);
  ASSERT_TRUE(Run(coordinator_->DropKeyspace("other", false)).ok());
  EXPECT_EQ(Get("k", "other").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(coordinator_->DescribeKeyspace("other").status().code(), Code::kNotFound);
  // Re-created, it starts empty.
  ASSERT_TRUE(Run(coordinator_->CreateKeyspace(spec, false)).ok());
  EXPECT_FALSE(Get("k", "other")->has_value());
}

TEST_F(CoordinatorTest, WriteStuckBehindDiskTimesOutAndMayStillApply) {
  // Stall the engine's writer thread with a transaction that waits for a latch.
  std::latch release(1);
  storage::WriteRequest request;
  request.txn = [&release](storage::GroupView&) {
    release.wait();
    return Status::Ok();
  };
  std::promise<void> blocker_done;
  engine_->Write(std::move(request),
                 [&](Status, std::vector<storage::WriteOutcome>) { blocker_done.set_value(); });

  RequestOptions opts = Opts();
  opts.deadline = base::Clock::now() + 50ms;
  // The disk is released from another thread once the write has been answered: the answer must
  // come at the deadline, while the disk is still stuck. Should it wait for the disk instead, the
  // disk is released after a while anyway, so that the test ends (and fails below).
  std::atomic<bool> answered{false}, released{false};
  std::thread releaser([&] {
    (void)WaitUntil([&] { return answered.load(); }, 10s, "the write's answer");
    released = true;
    release.count_down();
  });
  Result<Version> r;
  bool answered_while_stuck = false;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        r = co_await coordinator_->Put("slow", "v", 0, opts);
        answered_while_stuck = !released;
        answered = true;
      },
      asio::detached);
  io_.restart();
  io_.run();
  releaser.join();
  EXPECT_EQ(r.status().code(), Code::kTimeout);
  EXPECT_EQ(r.status().acks(), 0u);
  EXPECT_TRUE(answered_while_stuck) << "answered when the disk came back, not at the deadline";
  blocker_done.get_future().wait();
  // The timed-out write was still queued: it applies ("may have been applied").
  EXPECT_OK(WaitUntil(
      [&] {
        auto got = Get("slow");
        return got.ok() && got->has_value();
      },
      5s, "the timed-out write to apply"));
}

// Client-side caching: what the coordinator reports to its listener (the RESP door's tracking
// table). Records every report.
class RecordingListener final : public KeyChangeListener {
 public:
  void KeysChanged(std::span<const std::string> keys, uint64_t origin) override {
    std::lock_guard lock(mu_);
    for (const std::string& k : keys) seen_.push_back(fmt::format("{}@{}", k, origin));
  }
  void Flushed() override {
    std::lock_guard lock(mu_);
    seen_.push_back("(flush)");
  }
  // What was reported since the last call, in order.
  std::vector<std::string> Take() {
    std::lock_guard lock(mu_);
    return std::exchange(seen_, {});
  }

 private:
  std::mutex mu_;
  std::vector<std::string> seen_;
};

// Every client operation that changes a key (or may have) reports it once, with its origin, after
// its outcome; reads, swaps whose condition failed and refused increments report nothing; and
// nothing at all is reported while no connection tracks keys.
TEST_F(CoordinatorTest, ReportsChangedKeysOnlyWhileSomeoneTracks) {
  using K = CasCondition::Kind;
  RecordingListener listener;
  coordinator_->SetKeyChangeListener(&listener);
  auto opts = [&](uint64_t origin) {
    RequestOptions o = Opts();
    o.origin = origin;
    return o;
  };
  ASSERT_TRUE(Put("before", "v").ok());
  EXPECT_TRUE(listener.Take().empty()) << "nobody tracks yet";

  Run(coordinator_->StartTracking());
  ASSERT_TRUE(Run(coordinator_->Put("a", "1", 0, opts(42))).ok());
  EXPECT_EQ(listener.Take(), (std::vector<std::string>{"a@42"}));
  std::vector<PutItem> items;
  items.push_back(PutItem{"b", "1", 0});
  items.push_back(PutItem{"c", "1", 0});
  ASSERT_TRUE(Run(coordinator_->BatchPut(std::move(items), opts(0))).ok());
  EXPECT_EQ(listener.Take(), (std::vector<std::string>{"b@0", "c@0"}));
  ASSERT_TRUE(Run(coordinator_->Delete("a", opts(7))).ok());
  EXPECT_EQ(listener.Take(), (std::vector<std::string>{"a@7"}));

  ASSERT_TRUE(Get("b").ok());
  EXPECT_FALSE(Cas("b", CasCondition{.kind = K::kIfNotExists}, "x")->applied);
  EXPECT_TRUE(listener.Take().empty()) << "a read and a swap that failed change nothing";
  EXPECT_TRUE(Cas("b", CasCondition{.kind = K::kIfExists}, "x")->applied);
  EXPECT_EQ(listener.Take(), (std::vector<std::string>{"b@0"}));

  base::CounterDelta five;
  five.by = 5;
  auto incr = Run(coordinator_->Increment("n", five, opts(9), Consistency::kDefault));
  ASSERT_TRUE(incr.ok()) << incr.status().ToString();
  EXPECT_EQ(listener.Take(), (std::vector<std::string>{"n@9"})) << "once, not per Paxos step";
  ASSERT_TRUE(Put("word", "abc").ok());
  listener.Take();
  auto refused = Run(coordinator_->Increment("word", five, opts(0), Consistency::kDefault));
  ASSERT_TRUE(refused.ok()) << refused.status().ToString();
  EXPECT_EQ(refused->refused, base::CounterRefusal::kNotInteger);
  EXPECT_TRUE(listener.Take().empty()) << "a refused increment writes nothing";
  Run(coordinator_->InvalidateAll());
  EXPECT_EQ(listener.Take(), (std::vector<std::string>{"(flush)"}));

  coordinator_->StopTracking();
  ASSERT_TRUE(Put("after", "v").ok());
  EXPECT_TRUE(listener.Take().empty()) << "nobody tracks any more";
  coordinator_->SetKeyChangeListener(nullptr);
}

}  // namespace
}  // namespace cairn::coordinator
