// The fault harness itself: schedules replay from their seed and keep their budget; a cluster in
// network namespaces forms, survives an isolated node and a kill -9, partitions and one-way cuts
// bite where they should, a schedule run leaves the cluster whole, and nothing is left behind.
#include "tests/fault/netns_cluster.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tests/support/options.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace cairn::testing {
namespace {

using namespace std::chrono_literals;
using Kind = FaultEvent::Kind;

bool NetnsExists(const std::string& name) { return std::filesystem::exists("/run/netns/" + name); }

// ---- The schedule: pure, runs anywhere ------------------------------------------------------

TEST(FaultScheduleTest, SameSeedReplaysTheSameEvents) {
  FaultSchedule::Options o;
  o.nodes = 5;
  const FaultSchedule a(12345, o), b(12345, o), other(12346, o);
  ASSERT_FALSE(a.events().empty());
  EXPECT_TRUE(a.events() == b.events()) << a.ToString() << b.ToString();
  EXPECT_EQ(a.ToString(), b.ToString());
  EXPECT_FALSE(a.events() == other.events()) << a.ToString();
  std::cout << a.ToString();
}

TEST(FaultScheduleTest, KeepsTheDownBudgetAndHealsBeforeTheEnd) {
  std::set<Kind> seen;
  for (size_t nodes : {3u, 5u}) {
    for (uint64_t seed = 1; seed <= 200; ++seed) {
      FaultSchedule::Options o;
      o.nodes = nodes;
      o.duration = 60s;
      const FaultSchedule schedule(seed, o);
      const size_t max_down = (nodes - 1) / 2;
      SCOPED_TRACE(schedule.ToString());
      for (const FaultEvent& e : schedule.events()) {
        seen.insert(e.kind);
        EXPECT_GT(e.duration.count(), 0);
        EXPECT_LE(e.at + e.duration, o.duration - o.quiet_end);
        for (size_t x : e.nodes) EXPECT_LT(x, nodes);
        if (e.kind == Kind::kPartition) {
          ASSERT_EQ(e.groups.size(), 2u);
          EXPECT_EQ(e.groups[0].size() + e.groups[1].size(), nodes);
          EXPECT_LE(e.groups[0].size(), max_down);
        }
        if (e.kind == Kind::kCutOneWay) {
          ASSERT_EQ(e.nodes.size(), 2u);
          EXPECT_NE(e.nodes[0], e.nodes[1]);
        }
        if (e.kind == Kind::kSkewRestart) {
          EXPECT_NE(e.skew_ms, 0);
          EXPECT_LE(std::abs(e.skew_ms), o.max_skew_ms);
        }
        // At this event's start (when the budget can only have grown): what is in force.
        std::set<size_t> down;
        int network = 0;
        for (const FaultEvent& f : schedule.events()) {
          if (f.at > e.at || e.at >= f.at + f.duration) continue;
          if (f.kind == Kind::kCutOneWay) {
            down.insert(f.nodes[0]);
          } else {
            down.insert(f.nodes.begin(), f.nodes.end());
          }
          network += f.network() ? 1 : 0;
        }
        EXPECT_LE(down.size(), max_down) << "at " << e.at.count() << " ms";
        EXPECT_LE(network, 1) << "at " << e.at.count() << " ms";
      }
    }
  }
  EXPECT_EQ(seen.size(), 6u) << "every kind of fault is drawn";
}

// ---- Real clusters: need root --------------------------------------------------------------

class NetnsClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string reason = NetnsCluster::UnsupportedReason(); !reason.empty()) {
      std::cout << "skipping the network namespace tests: " << reason << "\n";
      GTEST_SKIP() << reason;
    }
  }
  void TearDown() override {
    if (cluster_ && HasFailure()) std::cerr << cluster_->Logs();
  }

  void StartCluster(size_t nodes) {
    NetnsCluster::Options o;
    o.nodes = nodes;
    auto c = NetnsCluster::Start(dir_.Sub("cluster"), o);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cluster_ = std::move(*c);
  }

  std::unique_ptr<Client> NewClient(std::vector<size_t> nodes = {}) {
    ClientOptions o;
    o.request_timeout = 3s;
    o.connect_timeout = 1s;
    auto c = cluster_->NewClient(std::move(nodes), o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }

  TempDir dir_;
  std::unique_ptr<NetnsCluster> cluster_;
};

TEST_F(NetnsClusterTest, SmokeIsolateHealKillRestart) {
  const auto started = std::chrono::steady_clock::now();
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  const std::vector<std::string> names = cluster_->netns_names();
  for (const auto& name : names) EXPECT_TRUE(NetnsExists(name)) << name;
  std::vector<pid_t> pids;
  for (size_t i = 0; i < cluster_->size(); ++i) {
    EXPECT_TRUE(cluster_->running(i));
    pids.push_back(cluster_->pid(i));
  }

  // Every node sees every node UP.
  for (size_t i = 0; i < cluster_->size(); ++i) {
    auto info = cluster_->ClusterStatus(i);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    EXPECT_TRUE(info->formed);
    ASSERT_EQ(info->nodes.size(), 3u);
    for (const NodeInfo& n : info->nodes)
      EXPECT_TRUE(n.up) << "node " << i << " sees " << n.address;
  }

  // Writes and reads at QUORUM from the client namespace.
  auto client = NewClient();
  ASSERT_TRUE(client);
  std::map<std::string, std::string> written;
  for (int k = 0; k < 10; ++k) {
    const std::string key = fmt::format("smoke-{}", k), value = fmt::format("v{}", k);
    auto v = client->Put(key, value, WriteAt(Consistency::kQuorum));
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    written[key] = value;
  }
  for (const auto& [key, value] : written) {
    auto r = client->Get(key, ReadAt(Consistency::kQuorum));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(r->has_value()) << key;
    EXPECT_EQ((*r)->value, value);
  }

  // Node 2 cut off: the others see it DOWN, and QUORUM writes through them still succeed.
  ASSERT_OK(cluster_->Isolate(2));
  ASSERT_OK(cluster_->WaitForState(0, 2, "DOWN", 20s));
  ASSERT_OK(cluster_->WaitForState(1, 2, "DOWN", 20s));
  auto majority = NewClient({0, 1});
  ASSERT_TRUE(majority);
  for (int k = 0; k < 5; ++k) {
    const std::string key = fmt::format("isolated-{}", k), value = fmt::format("w{}", k);
    auto v = majority->Put(key, value, WriteAt(Consistency::kQuorum));
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    written[key] = value;
  }

  ASSERT_OK(cluster_->Heal());
  for (size_t i = 0; i < 2; ++i) {
    ASSERT_OK(cluster_->WaitForState(i, 2, "UP", 20s));
    ASSERT_OK(cluster_->WaitForState(2, i, "UP", 20s));
  }

  // Node 1 crashes and comes back on the same data and address.
  ASSERT_OK(cluster_->Kill9(1));
  EXPECT_FALSE(cluster_->running(1));
  EXPECT_EQ(::kill(pids[1], 0), -1) << "the killed cairnd was reaped";
  EXPECT_EQ(cluster_->Kill9(1).code(), Code::kInvalidArgument);
  ASSERT_OK(cluster_->WaitForState(0, 1, "DOWN", 20s));
  ASSERT_OK(cluster_->Restart(1));
  EXPECT_TRUE(cluster_->running(1));
  pids[1] = cluster_->pid(1);
  ASSERT_OK(cluster_->WaitForAllUp(30s));
  for (const auto& [key, value] : written) {
    auto r = client->Get(key, ReadAt(Consistency::kQuorum));
    ASSERT_TRUE(r.ok()) << key << ": " << r.status().ToString();
    ASSERT_TRUE(r->has_value()) << key;
    EXPECT_EQ((*r)->value, value);
  }

  // Everything is gone with the cluster: processes and namespaces.
  client.reset();
  majority.reset();
  cluster_.reset();
  for (const auto& name : names) EXPECT_FALSE(NetnsExists(name)) << name;
  for (pid_t pid : pids) EXPECT_EQ(::kill(pid, 0), -1) << "pid " << pid << " still exists";
  std::cout << fmt::format(
      "smoke test took {:.1f} s\n",
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

TEST_F(NetnsClusterTest, FailedStartLeavesNothingBehind) {
  NetnsCluster::Options o;
  o.nodes = 2;
  o.extra_args = {"--no-such-flag"};  // cairnd refuses to start
  auto c = NetnsCluster::Start(dir_.Sub("bad"), o);
  ASSERT_FALSE(c.ok());
  const std::string ours = fmt::format("cairnf{}-", ::getpid());
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/run/netns", ec)) {
    EXPECT_NE(entry.path().filename().string().rfind(ours, 0), 0u) << entry.path();
  }
}

TEST_F(NetnsClusterTest, PartitionAndOneWayCutBite) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  if (!cluster_->can_filter()) GTEST_SKIP() << "nftables is missing: no partitions";

  // {0} | {1, 2}: each side sees the other DOWN, and the client still reaches both sides.
  ASSERT_OK(cluster_->Partition({{0}, {1, 2}}));
  ASSERT_OK(cluster_->WaitForState(1, 0, "DOWN", 20s));
  ASSERT_OK(cluster_->WaitForState(0, 1, "DOWN", 20s));
  ASSERT_OK(cluster_->WaitForState(0, 2, "DOWN", 20s));
  auto minority = NewClient({0});
  auto majority = NewClient({1});
  ASSERT_TRUE(minority && majority);
  auto lost = minority->Put("partitioned", "minority", WriteAt(Consistency::kQuorum));
  EXPECT_FALSE(lost.ok());
  auto won = majority->Put("partitioned", "majority", WriteAt(Consistency::kQuorum));
  EXPECT_TRUE(won.ok()) << won.status().ToString();
  auto one = minority->Put("partitioned-one", "x", WriteAt(Consistency::kOne));
  EXPECT_TRUE(one.ok()) << "the minority side still serves ONE: " << one.status().ToString();

  ASSERT_OK(cluster_->Heal());
  ASSERT_OK(cluster_->WaitForAllUp(30s));

  // 0 -> 1 dropped. Node 1 still hears of node 0 through node 2's gossip, so it may keep it UP,
  // but nothing node 0 answers reaches node 1: a write at ALL coordinated by node 1 cannot
  // collect node 0's ack, while one coordinated by node 2 can.
  ASSERT_OK(cluster_->CutOneWay(0, 1));
  auto via1 = NewClient({1});
  auto via2 = NewClient({2});
  ASSERT_TRUE(via1 && via2);
  auto cut = via1->Put("one-way", "via 1", WriteAt(Consistency::kAll));
  EXPECT_FALSE(cut.ok()) << "node 1 collected an ack from node 0 through the cut";
  // Node 2 may still be in its connection pool's reconnect backoff to node 0 from the partition
  // just healed (it need not have judged node 0 DOWN, so no UP event ended the backoff): the
  // write at ALL through it is answered within a few seconds, not necessarily at once.
  const auto cut_at = std::chrono::steady_clock::now();
  EXPECT_OK(WaitUntil([&] { return via2->Put("one-way", "via 2", WriteAt(Consistency::kAll)); },
                      15s, "a write at ALL through node 2 around the cut"));
  std::cout << fmt::format(
      "ALL through node 2 succeeded {:.1f} s after the cut\n",
      std::chrono::duration<double>(std::chrono::steady_clock::now() - cut_at).count());
  auto info = cluster_->ClusterStatus(2);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  for (const NodeInfo& n : info->nodes) EXPECT_TRUE(n.up) << "node 2 sees " << n.address;
  ASSERT_OK(cluster_->Heal());
  ASSERT_OK(cluster_->WaitForAllUp(30s));
  // Healed, node 1 collects node 0's acks again. Its connection may first have to come out of
  // TCP retransmission backoff, and its failure detector may still convict node 0 for the
  // heartbeats the cut swallowed (phi keeps rising until fresh ones arrive, then it takes a
  // gossip round to come back UP), so retry for a bounded time rather than a number of tries.
  const auto healed = std::chrono::steady_clock::now();
  EXPECT_OK(WaitUntil([&] { return via1->Put("one-way", "healed", WriteAt(Consistency::kAll)); },
                      20s, "a write at ALL through node 1 after the heal"));
  std::cout << fmt::format(
      "ALL through node 1 succeeded {:.1f} s after the heal\n",
      std::chrono::duration<double>(std::chrono::steady_clock::now() - healed).count());

  const auto log = cluster_->FaultLog();
  EXPECT_TRUE(std::any_of(log.begin(), log.end(), [](const std::string& line) {
    return line.find("Partition({0} | {1,2})") != std::string::npos;
  }));
}

// A short seeded schedule against a light QUORUM workload: the run ends with every node up, and
// every write acknowledged at QUORUM reads back.
TEST_F(NetnsClusterTest, ScheduleRunLeavesTheClusterWhole) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  FaultSchedule::Options o;
  o.nodes = 3;
  o.duration = 20s;
  o.min_fault = 1500ms;
  o.max_fault = 4s;
  o.min_gap = 1s;
  o.max_gap = 3s;
  o.quiet_end = 1s;
  const TestSeed seed;
  const FaultSchedule schedule(seed.value(), o);
  std::cout << schedule.ToString();

  auto client = NewClient();
  ASSERT_TRUE(client);
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<std::string, std::string> acked;  // guarded by mu
  std::atomic<int> failed{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      for (int k = 0; !stop.load(); ++k) {
        const std::string key = fmt::format("sched-{}-{}", w, k), value = fmt::format("{}", k);
        if (client->Put(key, value, WriteAt(Consistency::kQuorum)).ok()) {
          std::lock_guard lock(mu);
          acked[key] = value;
        } else {
          ++failed;
          std::this_thread::sleep_for(50ms);
        }
      }
    });
  }
  FaultRun run = schedule.Run(*cluster_, o.duration, stop);
  const Status faults = run.Wait();
  stop = true;
  for (auto& t : writers) t.join();
  ASSERT_TRUE(faults.ok()) << faults.ToString();

  for (size_t i = 0; i < cluster_->size(); ++i) EXPECT_TRUE(cluster_->running(i)) << i;
  ASSERT_OK(cluster_->WaitForAllUp(30s));
  std::cout << fmt::format("{} writes acknowledged, {} failed during the faults\n", acked.size(),
                           failed.load());
  ASSERT_FALSE(acked.empty());
  std::vector<std::pair<std::string, std::string>> all(acked.begin(), acked.end());
  for (size_t at = 0; at < all.size(); at += 500) {
    std::vector<std::string> keys;
    for (size_t k = at; k < std::min(all.size(), at + 500); ++k) keys.push_back(all[k].first);
    auto got = client->BatchGet(keys, ReadAt(Consistency::kQuorum));
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_EQ(got->size(), keys.size());
    for (size_t k = 0; k < keys.size(); ++k) {
      const auto& r = (*got)[k];
      ASSERT_TRUE(r.ok()) << keys[k] << ": " << r.status().ToString();
      ASSERT_TRUE(r->has_value()) << "acknowledged write lost: " << keys[k];
      EXPECT_EQ((*r)->value, all[at + k].second) << keys[k];
    }
  }
}

}  // namespace
}  // namespace cairn::testing
