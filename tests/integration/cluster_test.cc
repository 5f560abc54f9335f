// Three (or more) real cairnd processes on loopback forming a cluster: consistency levels,
// failures (kill -9, SIGSTOP), hinted handoff, read repair, clock skew.
#include <array>
#include <atomic>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cairn/client.h"
#include "tests/harness/process.h"
#include "tests/support/keyspace.h"
#include "tests/support/options.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace cairn::testing {
namespace {

using namespace std::chrono_literals;

// A blocking client of one node (or of several).
std::unique_ptr<Client> ClientOf(std::vector<std::string> servers,
                                 std::chrono::milliseconds timeout = 3s) {
  ClientOptions o;
  o.servers = std::move(servers);
  o.request_timeout = timeout;
  o.connect_timeout = 1s;
  return std::make_unique<Client>(o);
}

// Waits until the nodes `client` reports hold at least `n` hints in all.
Status WaitForHints(Client& client, uint64_t n) {
  return WaitUntil(
      [&]() -> ::testing::AssertionResult {
        auto status = client.ClusterStatus();
        if (!status.ok()) return ::testing::AssertionFailure() << status.status().ToString();
        uint64_t hints = 0;
        for (const auto& node : status->nodes) hints += node.hints_pending;
        return ::testing::AssertionResult(hints >= n) << hints << " hints pending";
      },
      5s, fmt::format("{} hints pending", n));
}

class ClusterTest : public ::testing::Test {
 protected:
  void StartCluster(LocalCluster::Options options = LocalCluster::Options()) {
    auto c = LocalCluster::Start(dir_.Sub("cluster"), std::move(options));
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cluster_ = std::move(*c);
  }
  void TearDown() override {
    if (cluster_ && HasFailure()) std::cerr << cluster_->Logs();
  }
  std::unique_ptr<Client> Node(size_t i, std::chrono::milliseconds timeout = 3s) {
    return ClientOf({cluster_->address(i)}, timeout);
  }
  // Waits until every node knows keyspace `name` (with `linearizable`: knows it as linearizable;
  // definitions spread by gossip).
  Status WaitForKeyspace(const std::string& name, bool linearizable = false) {
    for (size_t n = 0; n < cluster_->size(); ++n) {
      auto node = Node(n);
      Status known = WaitUntil([&] { return KnowsKeyspace(*node, name, linearizable); }, 10s,
                               fmt::format("node {} to know keyspace {}", n + 1, name));
      if (!known.ok()) return known;
    }
    return Status::Ok();
  }
  // One coordinator counter summed over every node (nullopt when a node does not answer).
  std::optional<uint64_t> Counter(const std::string& name) {
    uint64_t sum = 0;
    for (size_t i = 0; i < cluster_->size(); ++i) {
      auto m = Node(i)->Metrics();
      if (!m.ok()) return std::nullopt;
      sum += (*m)[name];
    }
    return sum;
  }

  TempDir dir_;
  std::unique_ptr<LocalCluster> cluster_;
};

TEST_F(ClusterTest, FormsAndReportsEveryNode) {
  StartCluster();
  for (size_t i = 0; i < 3; ++i) {
    auto status = Node(i)->ClusterStatus();
    ASSERT_TRUE(status.ok()) << status.status().ToString();
    EXPECT_TRUE(status->formed);
    EXPECT_EQ(status->partitions, 1024u);
    ASSERT_EQ(status->nodes.size(), 3u);
    std::set<uint32_t> ids;
    for (const auto& n : status->nodes) {
      EXPECT_TRUE(n.up) << n.address;
      EXPECT_EQ(n.dc, "dc1");
      EXPECT_EQ(n.rack, "rack1");
      EXPECT_EQ(n.partitions, 1024u);  // RF 3 on 3 nodes: every node holds every partition
      EXPECT_EQ(n.self, n.address == cluster_->address(i));
      ids.insert(n.node_id);
    }
    EXPECT_EQ(ids.size(), 3u);
  }
  // The CLI's JSON says "UP" in words.
  auto json = RunCommand({CliPath(), "--server", cluster_->address(0), "--json", "status"});
  ASSERT_EQ(json.exit_code, 0);
  auto j = nlohmann::json::parse(json.out);
  ASSERT_EQ(j["nodes"].size(), 3u);
  EXPECT_EQ(j["nodes"][0]["state"], "UP");
}

TEST_F(ClusterTest, NodeWithAnotherPeerListRefusesToJoin) {
  StartCluster();
  // A fourth node that believes the cluster has four members.
  const std::string extra = fmt::format("127.0.0.1:{}", FreePort());
  std::string peers;
  for (const auto& a : cluster_->addresses()) peers += a + ",";
  peers += extra;
  auto rogue =
      CairndProcess::Start({.data_dir = dir_.Sub("rogue"),
                            .listen = extra,
                            .extra_args = {"--peers", peers, "--gossip-interval-ms", "100"}});
  ASSERT_TRUE(rogue.ok()) << rogue.status().ToString();
  // It exits on its own, with a clear message.
  EXPECT_OK(WaitUntil([&] { return (*rogue)->Log().find("refusing to join") != std::string::npos; },
                      10s, "the fourth node to log that it refuses to join"));
  const int code = (*rogue)->Stop(std::chrono::seconds(5));
  EXPECT_NE((*rogue)->Log().find("same --peers list"), std::string::npos) << (*rogue)->Log();
  EXPECT_NE(code, 0);
  // The cluster is unharmed.
  EXPECT_TRUE(Node(0)->Put("still", "fine").ok());
}

TEST_F(ClusterTest, NodeThatLostItsDataCannotRejoinUnderItsOldAddress) {
  StartCluster();
  ASSERT_EQ(cluster_->node(2).Stop(), 0);
  std::filesystem::remove_all(cluster_->node(2).options().data_dir);
  ASSERT_TRUE(cluster_->Restart(2).ok());  // it starts with a new identity, then is refused
  EXPECT_OK(
      WaitUntil([&] { return cluster_->node(2).Log().find("cannot rejoin") != std::string::npos; },
                10s, "node 3 to log that it cannot rejoin"));
  EXPECT_NE(cluster_->node(2).Stop(std::chrono::seconds(5)), 0);
  // The member that was there stays DOWN: the newcomer's heartbeats are not taken for its.
  EXPECT_TRUE(cluster_->WaitForState(0, 2, "DOWN").ok());
}

TEST_F(ClusterTest, EveryLevelReadsAndWritesAndTwoNodesDownLeaveOnlyOne) {
  StartCluster();
  auto c = Node(0);
  const std::vector<Consistency> writes = {
      Consistency::kOne,         Consistency::kTwo,        Consistency::kThree,
      Consistency::kQuorum,      Consistency::kAll,        Consistency::kLocalOne,
      Consistency::kLocalQuorum, Consistency::kEachQuorum, Consistency::kAny};
  for (Consistency level : writes) {
    const std::string key = fmt::format("level:{}", ConsistencyName(level));
    auto v = c->Put(key, "v", WriteAt(level));
    ASSERT_TRUE(v.ok()) << ConsistencyName(level) << ": " << v.status().ToString();
  }
  // Read each back at every read level, through another node. A write below ALL may still be on
  // its way to the third replica, which a read at ONE could then miss: a read at ALL first
  // repairs any such replica before it answers.
  auto other = Node(1);
  for (Consistency write : writes) {
    auto r = other->Get(fmt::format("level:{}", ConsistencyName(write)), ReadAt(Consistency::kAll));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  for (Consistency level : writes) {
    if (level == Consistency::kAny) continue;
    for (Consistency write : writes) {
      auto r = other->Get(fmt::format("level:{}", ConsistencyName(write)), ReadAt(level));
      ASSERT_TRUE(r.ok()) << ConsistencyName(level) << ": " << r.status().ToString();
      ASSERT_TRUE(r->has_value()) << ConsistencyName(level);
      EXPECT_EQ((*r)->value, "v");
    }
  }
  EXPECT_EQ(other->Get("k", ReadAt(Consistency::kAny)).status().code(), Code::kInvalidArgument);

  // Two of three replicas down.
  cluster_->node(1).Kill9();
  cluster_->node(2).Kill9();
  ASSERT_TRUE(cluster_->WaitForState(0, 1, "DOWN").ok());
  ASSERT_TRUE(cluster_->WaitForState(0, 2, "DOWN").ok());
  // UNAVAILABLE: refused before anything was sent, so nothing was written.
  auto quorum = c->Put("after", "x", WriteAt(Consistency::kQuorum));
  EXPECT_EQ(quorum.status().code(), Code::kUnavailable) << quorum.status().ToString();
  EXPECT_FALSE(c->Get("after", ReadAt(Consistency::kOne))->has_value());  // really nothing
  EXPECT_EQ(c->Get("level:ONE", ReadAt(Consistency::kQuorum)).status().code(), Code::kUnavailable);
  EXPECT_EQ(c->Put("after", "x", WriteAt(Consistency::kAll)).status().code(), Code::kUnavailable);
  EXPECT_TRUE(c->Put("after", "one", WriteAt(Consistency::kOne)).ok());
  EXPECT_TRUE(c->Put("hinted", "any", WriteAt(Consistency::kAny)).ok());
  auto one = c->Get("after", ReadAt(Consistency::kOne));
  ASSERT_TRUE(one.ok());
  EXPECT_EQ((*one)->value, "one");
  // "after" and "hinted", for each of the two down nodes (ANY answers on the first ack, so the
  // hints may still be committing).
  EXPECT_OK(WaitForHints(*c, 4));
}

TEST_F(ClusterTest, QuorumWritesSurviveKill9AndRestartTwice) {
  StartCluster();
  std::mutex mu;
  std::map<std::string, std::pair<std::string, Version>> acked;
  std::atomic<bool> stop{false};
  std::atomic<int> attempts{0}, failures{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 16; ++w) {
    writers.emplace_back([&, w] {
      // Each writer talks to all three nodes: the library moves on when one is down.
      auto client = ClientOf(cluster_->addresses(), 2s);
      for (int i = 0; !stop; ++i) {
        const std::string key = fmt::format("kill:{}:{}", w, i);
        const std::string value = fmt::format("v{}", i);
        ++attempts;
        auto v = client->Put(key, value, WriteAt(Consistency::kQuorum));
        if (!v.ok()) {
          ++failures;
          continue;
        }
        std::lock_guard lock(mu);
        acked[key] = {value, *v};
      }
    });
  }
  auto acks = [&] {
    std::lock_guard lock(mu);
    return acked.size();
  };
  // Not fatal: the writers must be stopped and joined whatever happens.
  auto wait_acks = [&](size_t more) {
    const size_t target = acks() + more;
    EXPECT_OK(WaitUntil([&] { return acks() >= target; }, 30s,
                        fmt::format("{} more acknowledged writes", more)));
  };
  for (int round = 0; round < 2; ++round) {
    wait_acks(500);
    cluster_->node(1).Kill9();
    wait_acks(500);  // writes go on at QUORUM with two of three
    ASSERT_TRUE(cluster_->Restart(1).ok());
    wait_acks(300);
  }
  stop = true;
  for (auto& t : writers) t.join();
  std::cout << attempts << " writes, " << acks() << " acknowledged, " << failures << " failed\n";
  ASSERT_GT(acks(), 2000u);

  ASSERT_TRUE(cluster_->WaitForQuiet().ok()) << "hints were not replayed";
  // Every acknowledged write, at QUORUM and at ALL.
  auto reader = Node(2, 10s);
  for (Consistency level : {Consistency::kQuorum, Consistency::kAll}) {
    std::vector<std::string> keys;
    size_t lost = 0;
    auto check = [&] {
      // Nothing left when the acknowledged writes are a multiple of 500 (a batch of no keys is
      // refused as a request naming no operation).
      if (keys.empty()) return;
      // A read that fails (a slow node at ALL) is asked again: only an answer can show a loss.
      Result<std::vector<Result<std::optional<Record>>>> got = Status::Unavailable("not read");
      ASSERT_OK(WaitUntil(
          [&]() -> Status {
            got = reader->BatchGet(keys, ReadAt(level));
            if (!got.ok()) return got.status();
            for (const auto& r : *got) {
              if (!r.ok()) return r.status();
            }
            return Status::Ok();
          },
          30s, fmt::format("{} keys to read at {}", keys.size(), ConsistencyName(level))));
      for (size_t i = 0; i < keys.size(); ++i) {
        const auto& [value, version] = acked[keys[i]];
        const auto& r = (*got)[i];
        if (!r->has_value() || (*r)->value != value || (*r)->version != version) {
          if (++lost < 5) {
            ADD_FAILURE() << ConsistencyName(level) << ": lost " << keys[i] << ": "
                          << (r->has_value() ? (*r)->value : std::string("absent"));
          }
        }
      }
      keys.clear();
    };
    for (const auto& [key, v] : acked) {
      keys.push_back(key);
      if (keys.size() == 500) check();
    }
    check();
    EXPECT_EQ(lost, 0u) << ConsistencyName(level);
  }
}

TEST_F(ClusterTest, CasIncrementsThroughEveryNodeSurviveKill9) {
  // Counters incremented by compare-and-swap through all three coordinators while one node is
  // killed and restarted: each counter ends at its acknowledged increments, plus at most the
  // ones whose outcome was unknown (a TIMEOUT may have applied).
  StartCluster();
  constexpr int kKeys = 4, kWorkers = 6;
  std::atomic<bool> stop{false};
  std::array<std::atomic<int>, kKeys> applied{}, unknown{};
  std::atomic<int> total{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      auto client = ClientOf({cluster_->address(w % 3), cluster_->address((w + 1) % 3)}, 2s);
      for (int i = 0; !stop; ++i) {
        const int k = (w + i) % kKeys;
        const std::string key = fmt::format("counter:{}", k);
        ReadOptions serial = ReadAt(Consistency::kSerial);
        auto cur = client->Get(key, serial);
        if (!cur.ok()) continue;
        const int n = cur->has_value() ? std::stoi((*cur)->value) : 0;
        CasCondition cond = cur->has_value() ? CasCondition::IfVersion((*cur)->version)
                                             : CasCondition::IfNotExists();
        auto r = client->Cas(key, cond, std::to_string(n + 1));
        if (r.ok() && r->applied) {
          ++applied[k];
          ++total;
        } else if (!r.ok() && r.status().code() == Code::kTimeout) {
          ++unknown[k];
        }
      }
    });
  }
  // Not fatal: the workers must be stopped and joined whatever happens.
  auto wait_total = [&](int more) {
    const int target = total + more;
    EXPECT_OK(WaitUntil([&] { return total >= target; }, 30s,
                        fmt::format("{} more applied increments", more)));
  };
  wait_total(100);
  cluster_->node(2).Kill9();
  wait_total(100);  // CAS goes on with two of three
  ASSERT_TRUE(cluster_->Restart(2).ok());
  wait_total(100);
  stop = true;
  for (auto& t : workers) t.join();
  ASSERT_GT(total.load(), 250);
  auto reader = Node(0, 10s);
  for (int k = 0; k < kKeys; ++k) {
    auto got = reader->Get(fmt::format("counter:{}", k), ReadAt(Consistency::kSerial));
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    const int value = got->has_value() ? std::stoi((*got)->value) : 0;
    EXPECT_GE(value, applied[k].load()) << "counter " << k << " lost acknowledged increments";
    EXPECT_LE(value, applied[k].load() + unknown[k].load()) << "counter " << k;
  }
}

// A key swapped again and again through one coordinator: each commit also obtains the promise
// of the next ballot from a quorum of replicas (two of them remote), so later swaps skip the
// prepare round. Counted by the coordinators' own metrics.
TEST_F(ClusterTest, RepeatedSwapsThroughOneCoordinatorSkipThePrepareRound) {
  StartCluster();
  auto client = Node(0);
  constexpr int kSwaps = 50;
  const auto prepares_before = Counter("paxos.prepare_round_trips");
  const auto leased_before = Counter("paxos.leased_proposals");
  ASSERT_TRUE(prepares_before && leased_before);
  std::optional<Version> last;
  for (int i = 0; i < kSwaps; ++i) {
    CasCondition cond = last ? CasCondition::IfVersion(*last) : CasCondition::IfNotExists();
    auto r = client->Cas("swapped", cond, std::to_string(i));
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
    ASSERT_TRUE(r->applied) << i;
    ASSERT_TRUE(r->current.has_value());
    last = r->current->version;
  }
  const auto prepares = *Counter("paxos.prepare_round_trips") - *prepares_before;
  const auto leased = *Counter("paxos.leased_proposals") - *leased_before;
  std::cout << fmt::format("{} swaps of one key through one node: {} prepare rounds, {} leased\n",
                           kSwaps, prepares, leased);
  EXPECT_GE(leased, static_cast<uint64_t>(kSwaps - 2));
  EXPECT_LE(prepares, 2u);
  // Every node's SERIAL read agrees on the last value.
  for (size_t n = 0; n < 3; ++n) {
    auto got = Node(n)->Get("swapped", ReadAt(Consistency::kSerial));
    ASSERT_TRUE(got.ok() && got->has_value()) << got.status().ToString();
    EXPECT_EQ((*got)->value, std::to_string(kSwaps - 1));
    EXPECT_EQ((*got)->version, *last);
  }
}

TEST_F(ClusterTest, LinearizableOptionSpreadsByGossip) {
  StartCluster();
  auto admin = Node(0);
  KeyspaceSpec spec("ledger");
  ASSERT_TRUE(admin->CreateKeyspace(spec).ok());
  KeyspaceChange change;
  change.linearizable = true;
  ASSERT_TRUE(admin->AlterKeyspace("ledger", change).ok());
  auto other = Node(2);
  ASSERT_OK(WaitForKeyspace("ledger", /*linearizable=*/true));
  WriteOptions w;
  w.keyspace = "ledger";
  ASSERT_TRUE(other->Put("k", "v", w).ok());
  ReadOptions r;
  r.keyspace = "ledger";
  auto got = Node(1)->Get("k", r);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->value, "v");
}

// Keyspace changes are topology epochs decided by Paxos: creates and drops of one name racing
// from two coordinators end with one definition on every node, and the data written into the
// keyspace that survives reads back from every node.
TEST_F(ClusterTest, RacingCreatesAndDropsOfOneKeyspaceEndWithOneDefinition) {
  StartCluster();
  std::atomic<int> failures{0};
  auto race = [&](size_t node) {
    auto client = Node(node, 10s);
    for (int i = 0; i < 15; ++i) {
      KeyspaceSpec spec("race");
      spec.replication = {{"*", 3}};
      auto created = client->CreateKeyspace(spec, /*if_not_exists=*/true);
      if (!created.ok()) {
        ++failures;
        ADD_FAILURE() << "create through node " << node + 1 << ": " << created.status().ToString();
      }
      auto dropped = client->DropKeyspace("race", /*if_exists=*/true);
      if (!dropped.ok()) {
        ++failures;
        ADD_FAILURE() << "drop through node " << node + 1 << ": " << dropped.ToString();
      }
    }
  };
  std::thread a(race, 0);
  std::thread b(race, 1);
  a.join();
  b.join();
  EXPECT_EQ(failures.load(), 0);
  // Created once both racers are done, so that it is the last change whatever their order.
  KeyspaceSpec spec("race");
  auto created = Node(0)->CreateKeyspace(spec, /*if_not_exists=*/true);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  // The create was decided after every earlier change (an IF NOT EXISTS that finds the name is
  // checked against the newest epoch, not this node's copy): every node ends listing it.
  ASSERT_OK(WaitUntil(
      [&]() -> ::testing::AssertionResult {
        std::vector<std::string> texts;
        for (size_t n = 0; n < cluster_->size(); ++n) {
          auto list = Node(n)->ListKeyspaces();
          if (!list.ok()) return ::testing::AssertionFailure() << list.status().ToString();
          std::string text;
          for (const auto& ks : *list) text += fmt::format("{}#{};", ks.name, ks.id);
          texts.push_back(std::move(text));
        }
        const std::string want = fmt::format("default#1;race#{};", created->id);
        for (size_t n = 0; n < texts.size(); ++n) {
          if (texts[n] != want) {
            return ::testing::AssertionFailure()
                   << "node " << n + 1 << " lists " << texts[n] << ", not " << want;
          }
        }
        return ::testing::AssertionSuccess();
      },
      10s, "every node to list the keyspace created last"));
  WriteOptions w;
  w.keyspace = "race";
  w.consistency = Consistency::kAll;
  auto put = Node(2)->Put("k", "survives", w);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  for (size_t n = 0; n < cluster_->size(); ++n) {
    ReadOptions r;
    r.keyspace = "race";
    r.consistency = Consistency::kOne;
    auto got = Node(n)->Get("k", r);
    ASSERT_TRUE(got.ok() && got->has_value()) << "node " << n + 1;
    EXPECT_EQ((*got)->value, "survives");
  }
}

TEST_F(ClusterTest, PausedReplicaIsMarkedDownGetsHintsAndCatchesUp) {
  StartCluster();
  auto writer = Node(0);
  ASSERT_TRUE(writer->Put("before", "1", WriteAt(Consistency::kAll)).ok());
  cluster_->node(2).Pause();
  ASSERT_TRUE(cluster_->WaitForState(0, 2, "DOWN").ok());
  for (int i = 0; i < 50; ++i) {
    auto v = writer->Put(fmt::format("paused:{}", i), fmt::format("new{}", i),
                         WriteAt(Consistency::kQuorum));
    ASSERT_TRUE(v.ok()) << v.status().ToString();
  }
  // One hint per write for the paused node, kept on node 1 (the last may still be committing).
  EXPECT_OK(WaitForHints(*writer, 50));

  cluster_->node(2).Resume();
  ASSERT_TRUE(cluster_->WaitForQuiet().ok());
  // Node 3 alone answers a read at ONE (it is a replica of every key): it has caught up.
  auto paused = Node(2);
  for (int i = 0; i < 50; ++i) {
    auto r = paused->Get(fmt::format("paused:{}", i), ReadAt(Consistency::kOne));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(r->has_value()) << i;
    EXPECT_EQ((*r)->value, fmt::format("new{}", i));
  }
}

// A replica that stops answering is not DOWN until the failure detector convicts it (seconds).
// Meanwhile a QUORUM read that chose it asks the spare replica after the speculative-retry delay
// (100 ms) instead of waiting for its deadline: every read below must succeed well within its
// 1 s timeout, and some must have needed the spare.
TEST_F(ClusterTest, QuorumReadsGoAroundAPausedReplicaBeforeItIsDown) {
  StartCluster();
  auto writer = Node(0);
  constexpr int kKeys = 20;
  for (int i = 0; i < kKeys; ++i) {
    ASSERT_TRUE(writer->Put(fmt::format("spec:{}", i), "v", WriteAt(Consistency::kAll)).ok());
  }
  auto reader = Node(0, 1s);
  auto before = reader->Metrics();
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  cluster_->node(2).Pause();
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < kKeys; ++i) {
    auto r = reader->Get(fmt::format("spec:{}", i), ReadAt(Consistency::kQuorum));
    ASSERT_TRUE(r.ok()) << "spec:" << i << ": " << r.status().ToString();
    ASSERT_TRUE(r->has_value());
  }
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  cluster_->node(2).Resume();
  auto after = reader->Metrics();
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  const uint64_t speculative =
      (*after)["replica.speculative_reads"] - (*before)["replica.speculative_reads"];
  std::cout << fmt::format("{} QUORUM reads with a replica paused: {:.2f} s, {} asked a spare\n",
                           kKeys, took, speculative);
  EXPECT_GT(speculative, 0u) << "no read chose the paused replica: the test proves nothing";
}

TEST_F(ClusterTest, QuorumReadRepairsAStaleReplica) {
  // Hints expire at once: only read repair can bring the paused replica up to date.
  LocalCluster::Options options;
  options.extra_args = {"--hint-window", "0"};
  StartCluster(options);
  auto writer = Node(0);
  ASSERT_TRUE(writer->Put("k", "old", WriteAt(Consistency::kAll)).ok());
  cluster_->node(2).Pause();
  ASSERT_TRUE(cluster_->WaitForState(0, 2, "DOWN").ok());
  auto v2 = writer->Put("k", "new", WriteAt(Consistency::kQuorum));
  ASSERT_TRUE(v2.ok());
  cluster_->node(2).Resume();
  ASSERT_TRUE(cluster_->WaitForState(0, 2, "UP").ok());
  ASSERT_TRUE(cluster_->WaitForQuiet().ok());
  auto stale = Node(2);
  auto before = stale->Get("k", ReadAt(Consistency::kOne));
  ASSERT_TRUE(before.ok());
  EXPECT_EQ((*before)->value, "old");  // missed the write, and no hint came
  // A read at ALL sees both versions, answers the newest and repairs node 3 before answering.
  auto all = Node(1)->Get("k", ReadAt(Consistency::kAll));
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ((*all)->value, "new");
  EXPECT_EQ((*all)->version, *v2);
  auto after = stale->Get("k", ReadAt(Consistency::kOne));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ((*after)->value, "new");
  EXPECT_EQ((*after)->version, *v2);
}

TEST_F(ClusterTest, SkewedClocksStillConvergeOnOneWinner) {
  LocalCluster::Options options;
  options.node_args = {{}, {"--debug-clock-skew-ms", "-4000"}, {"--debug-clock-skew-ms", "3000"}};
  StartCluster(options);
  std::vector<std::unique_ptr<Client>> clients;
  for (size_t i = 0; i < 3; ++i) clients.push_back(Node(i));
  for (int round = 0; round < 20; ++round) {
    const std::string key = fmt::format("skew:{}", round);
    // Concurrent writes of one key through three coordinators with clocks seconds apart.
    std::vector<Result<Version>> versions(3);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < 3; ++i) {
      threads.emplace_back([&, i] {
        versions[i] = clients[i]->Put(key, fmt::format("from-{}", i), WriteAt(Consistency::kOne));
      });
    }
    for (auto& t : threads) t.join();
    Version newest;
    size_t winner = 0;
    for (size_t i = 0; i < 3; ++i) {
      ASSERT_TRUE(versions[i].ok()) << versions[i].status().ToString();
      if (*versions[i] > newest) {
        newest = *versions[i];
        winner = i;
      }
    }
    // Every node, asked at ALL, returns the write with the greatest version.
    for (size_t i = 0; i < 3; ++i) {
      auto r = clients[i]->Get(key, ReadAt(Consistency::kAll));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ((*r)->value, fmt::format("from-{}", winner)) << key;
      EXPECT_EQ((*r)->version, newest);
    }
  }
  // And after repair every replica alone agrees.
  for (size_t i = 0; i < 3; ++i) {
    auto r = clients[i]->Get("skew:0", ReadAt(Consistency::kOne));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ((*r)->value, (*clients[0]->Get("skew:0", ReadAt(Consistency::kAll)))->value);
  }
}

TEST_F(ClusterTest, ScansAcrossNodesAndKeyspacesSpreadByGossip) {
  StartCluster();
  KeyspaceSpec spec("events");
  spec.replication = {{"*", 2}};
  ASSERT_TRUE(Node(0)->CreateKeyspace(spec).ok());
  // The definition reaches the other nodes by gossip.
  WriteOptions in_events = WriteAt(Consistency::kQuorum);
  in_events.keyspace = "events";
  auto third = Node(2);
  ASSERT_OK(WaitUntil([&] { return third->Put("e:first", "x", in_events); }, 10s,
                      "node 3 to accept a write to keyspace events"));

  std::set<std::string> expected;
  auto c = Node(1);
  for (int i = 0; i < 300; ++i) {
    const std::string key = fmt::format("scan:{:04}", i);
    ASSERT_TRUE(c->Put(key, "v", WriteAt(Consistency::kQuorum)).ok());
    expected.insert(key);
  }
  ASSERT_TRUE(c->Delete("scan:0042", WriteAt(Consistency::kAll)).ok());  // so that ONE sees it too
  expected.erase("scan:0042");
  for (Consistency level : {Consistency::kOne, Consistency::kQuorum, Consistency::kAll}) {
    std::vector<std::string> seen;
    ScanOptions so;
    so.consistency = level;
    so.limit = 70;
    for (int pages = 0; pages < 50; ++pages) {
      auto page = Node(pages % 3)->Scan("scan:", so);
      ASSERT_TRUE(page.ok()) << page.status().ToString();
      for (auto& [k, rec] : page->entries) seen.push_back(k);
      if (page->done()) break;
      so.cursor = page->cursor;
    }
    EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
    EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), expected) << ConsistencyName(level);
    EXPECT_EQ(seen.size(), expected.size());
  }

  // With two replicas per key on three nodes, every scan merges pages of nodes that each hold a
  // different part of the keys, and stop at different points.
  std::set<std::string> events = {"e:first"};
  for (int i = 0; i < 200; ++i) {
    const std::string key = fmt::format("e:{:04}", i);
    ASSERT_TRUE(c->Put(key, "x", in_events).ok());
    events.insert(key);
  }
  for (Consistency level : {Consistency::kOne, Consistency::kQuorum, Consistency::kAll}) {
    std::vector<std::string> seen;
    ScanOptions so;
    so.keyspace = "events";
    so.consistency = level;
    so.limit = 33;
    for (int pages = 0; pages < 50; ++pages) {
      auto page = Node(pages % 3)->Scan("e:", so);
      ASSERT_TRUE(page.ok()) << page.status().ToString();
      EXPECT_LE(page->entries.size(), 33u);
      for (auto& [k, rec] : page->entries) seen.push_back(k);
      if (page->done()) break;
      so.cursor = page->cursor;
    }
    EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end())) << ConsistencyName(level);
    EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), events) << ConsistencyName(level);
    EXPECT_EQ(seen.size(), events.size()) << ConsistencyName(level);
  }
}

// A node killed: scans at ONE and QUORUM through the two others still list every key exactly
// once, in order (the scan plan is made again without the dead node); ALL is refused.
TEST_F(ClusterTest, ScansWithANodeDownListEveryKeyOnce) {
  StartCluster();
  auto c = Node(0);
  std::set<std::string> expected;
  std::vector<std::pair<std::string, std::string>> batch;
  for (int i = 0; i < 600; ++i) {
    batch.emplace_back(fmt::format("down:{:04}", i), "v");
    expected.insert(batch.back().first);
  }
  auto put = c->BatchPut(batch, WriteAt(Consistency::kAll));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  for (const auto& item : *put) ASSERT_TRUE(item.ok()) << item.status().ToString();
  for (int i = 0; i < 600; i += 7) {
    ASSERT_TRUE(c->Delete(fmt::format("down:{:04}", i), WriteAt(Consistency::kAll)).ok());
    expected.erase(fmt::format("down:{:04}", i));
  }
  auto scan_all = [&](Consistency level) -> Result<std::vector<std::string>> {
    std::vector<std::string> seen;
    ScanOptions so;
    so.consistency = level;
    so.limit = 37;
    for (int pages = 0; pages < 100; ++pages) {
      auto page = Node(pages % 2)->Scan("down:", so);
      if (!page.ok()) return page.status();
      for (auto& [k, rec] : page->entries) seen.push_back(k);
      if (page->done()) return seen;
      so.cursor = page->cursor;
    }
    return Status::Internal("the scan did not end in 100 pages");
  };
  for (Consistency level : {Consistency::kOne, Consistency::kQuorum, Consistency::kAll}) {
    auto seen = scan_all(level);
    ASSERT_TRUE(seen.ok()) << ConsistencyName(level) << ": " << seen.status().ToString();
    EXPECT_EQ(*seen, std::vector<std::string>(expected.begin(), expected.end()))
        << ConsistencyName(level);
  }

  cluster_->node(2).Kill9();
  ASSERT_OK(cluster_->WaitForState(0, 2, "DOWN"));
  ASSERT_OK(cluster_->WaitForState(1, 2, "DOWN"));
  // Written while the node is down: on both live replicas.
  for (int i = 600; i < 650; ++i) {
    const std::string key = fmt::format("down:{:04}", i);
    ASSERT_TRUE(Node(i % 2)->Put(key, "w", WriteAt(Consistency::kQuorum)).ok());
    expected.insert(key);
  }
  for (Consistency level : {Consistency::kOne, Consistency::kQuorum}) {
    auto seen = scan_all(level);
    ASSERT_TRUE(seen.ok()) << ConsistencyName(level) << ": " << seen.status().ToString();
    EXPECT_EQ(*seen, std::vector<std::string>(expected.begin(), expected.end()))
        << ConsistencyName(level) << " with node 3 down";
  }
  EXPECT_EQ(scan_all(Consistency::kAll).status().code(), Code::kUnavailable);
}

// A token-aware client sends a read at ONE to the replica of its key, which answers from its own
// storage. With one replica per key on three nodes, reads spread over the nodes need a hop to
// another node two times in three.
TEST_F(ClusterTest, TokenAwareReadsAtOneAreServedWhereTheKeyLives) {
  StartCluster();
  KeyspaceSpec spec("single");
  spec.replication = {{"*", 1}};
  ASSERT_TRUE(Node(0)->CreateKeyspace(spec).ok());
  // Every node must know the keyspace before the client asks one of them for the layout.
  ASSERT_OK(WaitForKeyspace("single"));
  constexpr int kKeys = 300;
  {
    auto writer = ClientOf(cluster_->addresses());
    WriteOptions w;
    w.keyspace = "single";
    for (int i = 0; i < kKeys; ++i) {
      ASSERT_TRUE(writer->Put(fmt::format("key:{}", i), std::to_string(i), w).ok());
    }
  }
  // Reads every key through a client of all three nodes; returns the remote and local reads the
  // coordinators counted meanwhile.
  auto read_all = [&](bool token_aware) -> std::pair<uint64_t, uint64_t> {
    ClientOptions o;
    o.servers = cluster_->addresses();
    o.keyspace = "single";
    o.read_consistency = Consistency::kOne;
    o.token_aware = token_aware;
    Client client(o);
    const auto remote_before = Counter("replica.remote_reads");
    const auto local_before = Counter("replica.local_reads");
    EXPECT_TRUE(remote_before && local_before);
    for (int i = 0; i < kKeys; ++i) {
      auto got = client.Get(fmt::format("key:{}", i));
      EXPECT_TRUE(got.ok() && got->has_value() && (*got)->value == std::to_string(i))
          << "key:" << i << ": " << got.status().ToString();
    }
    const auto remote_after = Counter("replica.remote_reads");
    const auto local_after = Counter("replica.local_reads");
    EXPECT_TRUE(remote_after && local_after);
    if (!remote_before || !local_before || !remote_after || !local_after) return {0, 0};
    return {*remote_after - *remote_before, *local_after - *local_before};
  };

  const auto [routed_remote, routed_local] = read_all(/*token_aware=*/true);
  EXPECT_EQ(routed_remote, 0u);
  EXPECT_EQ(routed_local, static_cast<uint64_t>(kKeys));

  const auto [spread_remote, spread_local] = read_all(/*token_aware=*/false);
  std::cout << fmt::format(
      "{} reads at ONE, RF 1: token-aware {} remote / {} local, round robin {} / {}\n", kKeys,
      routed_remote, routed_local, spread_remote, spread_local);
  EXPECT_EQ(spread_remote + spread_local, static_cast<uint64_t>(kKeys));
  // About 200 of 300; far from 0 whatever the keys.
  EXPECT_GT(spread_remote, static_cast<uint64_t>(kKeys / 3));
}

// The layout a token-aware client fetched on its first call lacks a keyspace created since; the
// client notices and asks again, and then routes that keyspace's keys too.
TEST_F(ClusterTest, TokenAwareClientLearnsAKeyspaceCreatedAfterItsFirstCall) {
  StartCluster();
  ClientOptions o;
  o.servers = cluster_->addresses();
  o.token_aware = true;
  o.keyspace = "later";
  o.read_consistency = Consistency::kOne;
  Client client(o);
  ASSERT_TRUE(client.Ping().ok());  // the first call: the layout, without "later"
  KeyspaceSpec spec("later");
  spec.replication = {{"*", 1}};
  ASSERT_TRUE(Node(0)->CreateKeyspace(spec).ok());
  ASSERT_OK(WaitForKeyspace("later"));
  constexpr int kKeys = 30;
  for (int i = 0; i < kKeys; ++i) {
    ASSERT_TRUE(client.Put(fmt::format("key:{}", i), "v", WriteAt(Consistency::kOne)).ok());
  }
  // Round robin, a pass over the keys needs a hop for about 20 of them: a pass with none is routed.
  EXPECT_OK(WaitUntil(
      [&]() -> ::testing::AssertionResult {
        const auto before = Counter("replica.remote_reads");
        for (int i = 0; i < kKeys; ++i) {
          auto got = client.Get(fmt::format("key:{}", i));
          EXPECT_TRUE(got.ok()) << "key:" << i << ": " << got.status().ToString();
        }
        const auto after = Counter("replica.remote_reads");
        if (!before || !after) return ::testing::AssertionFailure() << "a node gave no metrics";
        return ::testing::AssertionResult(*after == *before)
               << *after - *before << " of " << kKeys << " reads went to another node";
      },
      15s, "a pass of reads the client routes to where the keys live"));
}

// A routed request whose node is dead goes to another one: nothing fails for a client that
// routes, at a level the survivors can meet.
TEST_F(ClusterTest, TokenAwareClientGoesAroundADeadNode) {
  StartCluster();
  ClientOptions o;
  o.servers = cluster_->addresses();
  o.token_aware = true;
  o.request_timeout = 3s;
  o.connect_timeout = 1s;
  Client client(o);
  constexpr int kKeys = 100;
  for (int i = 0; i < kKeys; ++i) {
    ASSERT_TRUE(client.Put(fmt::format("k{}", i), "v", WriteAt(Consistency::kAll)).ok());
  }
  cluster_->node(2).Kill9();
  // Before and after the survivors (and then the client's layout) see it DOWN.
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < kKeys; ++i) {
      const std::string key = fmt::format("k{}", i);
      auto got = client.Get(key, ReadAt(Consistency::kOne));
      ASSERT_TRUE(got.ok()) << key << ": " << got.status().ToString();
      EXPECT_TRUE(got->has_value()) << key;
      ASSERT_TRUE(client.Put(key, "w", WriteAt(Consistency::kOne)).ok()) << key;
    }
    if (round == 0) {
      ASSERT_TRUE(cluster_->WaitForState(0, 2, "DOWN").ok());
    }
  }
}

}  // namespace
}  // namespace cairn::testing
