// Elastic membership against real cairnd processes on loopback: a node joins under load, a node
// is decommissioned under load, a dead node is removed, and the changes a cluster must refuse.
// Under load means writers and readers at QUORUM through every original node for the whole
// change, and no request of theirs may fail; every acknowledged write must read back afterwards.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/hash.h"
#include "cairn/client.h"
#include "cluster/placement.h"
#include "tests/harness/process.h"
#include "tests/ops/http_get.h"
#include "tests/support/options.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace cairn::testing {
namespace {

using namespace std::chrono_literals;
using Op = AsyncClient::NodeOperation;
using Json = nlohmann::json;

std::unique_ptr<Client> ClientOf(const std::string& server, std::chrono::milliseconds timeout) {
  ClientOptions o;
  o.servers = {server};
  o.request_timeout = timeout;
  o.connect_timeout = 1s;
  return std::make_unique<Client>(o);
}

// Writers and readers at QUORUM through the given nodes until Stop(): each writer writes new keys
// (each once, so a read knows the one value it must see), each reader reads keys already
// acknowledged. Every failed request and every wrong answer is an error.
class Load {
 public:
  Load(std::vector<std::string> servers, uint64_t seed) : servers_(std::move(servers)) {
    for (size_t i = 0; i < servers_.size(); ++i) {
      threads_.emplace_back([this, i] { Write(i); });
      threads_.emplace_back([this, i, seed] { Read(i, seed + i); });
    }
  }
  ~Load() { Stop(); }

  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  size_t errors() const { return errors_.load(); }
  std::string first_errors() {
    std::lock_guard lock(mu_);
    return fmt::format("{}", fmt::join(error_text_, "\n"));
  }
  std::map<std::string, std::string> acked() {
    std::lock_guard lock(mu_);
    return acked_;
  }
  size_t writes() {
    std::lock_guard lock(mu_);
    return acked_.size();
  }
  size_t reads() const { return reads_.load(); }

 private:
  void Error(std::string what) {
    ++errors_;
    std::lock_guard lock(mu_);
    if (error_text_.size() < 10) error_text_.push_back(std::move(what));
  }
  void Write(size_t i) {
    auto client = ClientOf(servers_[i], 10s);
    for (uint64_t n = 0; !stop_; ++n) {
      const std::string key = fmt::format("load/{}/{}", i, n);
      const std::string value = fmt::format("value {} of writer {}", n, i);
      auto put = client->Put(key, value, WriteAt(Consistency::kQuorum));
      if (!put.ok()) {
        Error(fmt::format("PUT {} through {}: {}", key, servers_[i], put.status().ToString()));
        continue;
      }
      std::lock_guard lock(mu_);
      acked_[key] = value;
      keys_.push_back(key);
    }
  }
  void Read(size_t i, uint64_t seed) {
    auto client = ClientOf(servers_[i], 10s);
    std::mt19937_64 rng(seed);
    while (!stop_) {
      std::string key, want;
      {
        std::lock_guard lock(mu_);
        if (!keys_.empty()) {
          key = keys_[rng() % keys_.size()];
          want = acked_[key];
        }
      }
      if (key.empty()) {
        std::this_thread::sleep_for(1ms);
        continue;
      }
      auto got = client->Get(key, ReadAt(Consistency::kQuorum));
      ++reads_;
      if (!got.ok()) {
        Error(fmt::format("GET {} through {}: {}", key, servers_[i], got.status().ToString()));
      } else if (!got->has_value() || (*got)->value != want) {
        Error(fmt::format("GET {} through {}: {} instead of the acknowledged value", key,
                          servers_[i], got->has_value() ? (*got)->value : "nothing"));
      }
    }
  }

  const std::vector<std::string> servers_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> errors_{0};
  std::atomic<size_t> reads_{0};
  std::mutex mu_;
  std::map<std::string, std::string> acked_;  // guarded by mu_
  std::vector<std::string> keys_;             // guarded by mu_
  std::vector<std::string> error_text_;       // guarded by mu_
  std::vector<std::thread> threads_;
};

class MembershipTest : public ::testing::Test {
 protected:
  void StartCluster(size_t nodes, std::vector<std::string> extra_args = {}) {
    ClusterOptions options;
    options.nodes = nodes;
    options.extra_args = std::move(extra_args);
    auto c = LocalCluster::Start(dir_.Sub("cluster"), std::move(options));
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cluster_ = std::move(*c);
  }
  void TearDown() override {
    if (cluster_ && HasFailure()) std::cerr << cluster_->Logs();
  }
  std::unique_ptr<Client> Node(size_t i, std::chrono::milliseconds timeout = 5s) {
    return ClientOf(cluster_->address(i), timeout);
  }
  std::vector<std::string> Addresses(size_t n) {
    return {cluster_->addresses().begin(),
            cluster_->addresses().begin() + static_cast<ptrdiff_t>(n)};
  }
  // The id of node `i`, as node `observer` knows it.
  uint32_t IdOf(size_t i, size_t observer = 0) {
    auto status = Node(observer)->ClusterStatus();
    if (!status.ok()) return 0;
    for (const auto& n : status->nodes) {
      if (n.address == cluster_->address(i)) return n.node_id;
    }
    return 0;
  }
  // Waits until node `observer` sees no change in progress and exactly `members` members, all
  // NORMAL, the node at each of `addresses` among them.
  Status WaitForMembers(size_t observer, const std::vector<std::string>& addresses,
                        std::chrono::milliseconds timeout = 90s) {
    auto client = Node(observer);
    return WaitUntil(
        [&]() -> ::testing::AssertionResult {
          auto status = client->ClusterStatus();
          if (!status.ok()) return ::testing::AssertionFailure() << status.status().ToString();
          std::string seen;
          for (const auto& n : status->nodes) seen += n.address + " " + n.member_state + "; ";
          if (!status->change.empty()) {
            return ::testing::AssertionFailure() << "epoch " << status->topology_epoch << ": "
                                                 << status->change << " (" << seen << ")";
          }
          if (status->nodes.size() != addresses.size()) {
            return ::testing::AssertionFailure() << "members: " << seen;
          }
          for (const auto& n : status->nodes) {
            if (n.member_state != "NORMAL" ||
                std::find(addresses.begin(), addresses.end(), n.address) == addresses.end()) {
              return ::testing::AssertionFailure() << "members: " << seen;
            }
          }
          return ::testing::AssertionSuccess();
        },
        timeout,
        fmt::format("node {} to see {} NORMAL members and no change", observer + 1,
                    addresses.size()));
  }
  // Waits until node `observer` reports node `node` (an index) part way through its streams: at
  // least `bytes` in, and not every range done.
  Status WaitForStreaming(size_t observer, size_t node, uint64_t bytes) {
    return WaitUntil(
        [&]() -> ::testing::AssertionResult {
          auto status = Node(observer)->ClusterStatus();
          if (!status.ok()) return ::testing::AssertionFailure() << status.status().ToString();
          for (const auto& n : status->nodes) {
            if (n.address == cluster_->address(node) && n.stream_bytes >= bytes &&
                n.streams_done < n.streams_total) {
              return ::testing::AssertionSuccess();
            }
          }
          return ::testing::AssertionFailure() << "not " << bytes << " bytes into its streams";
        },
        60s, fmt::format("node {} to be part way through its streams", node + 1));
  }
  // A coordinator counter summed over the nodes at `indexes`.
  uint64_t Counter(const std::vector<size_t>& indexes, const std::string& name) {
    uint64_t sum = 0;
    for (size_t i : indexes) {
      auto metrics = Node(i)->Metrics();
      if (metrics.ok() && metrics->contains(name)) sum += metrics->at(name);
    }
    return sum;
  }
  // A hash tag whose partition a node `id` at `address` (in dc1, rack1) gains when it joins: the
  // map of the members and it, computed as the nodes do (cluster/placement.h).
  std::string TagGainedBy(uint32_t id, const std::string& address) {
    auto status = Node(0)->ClusterStatus();
    EXPECT_TRUE(status.ok()) << status.status().ToString();
    if (!status.ok()) return "";
    std::vector<cluster::Member> members;
    for (const auto& n : status->nodes) members.push_back({n.node_id, n.address, n.dc, n.rack});
    members.push_back({id, address, "dc1", "rack1"});
    auto map = cluster::PartitionMap::Compute(members, 10);
    EXPECT_TRUE(map.ok()) << map.status().ToString();
    if (!map.ok()) return "";
    for (int i = 0;; ++i) {
      const std::string tag = fmt::format("t{}", i);
      const uint32_t p = base::PartitionOfToken(base::Token("{" + tag + "}"), 10);
      const auto replicas = map->ReplicasIn(p, "dc1", {{"*", 3}});
      if (std::find(replicas.begin(), replicas.end(), id) != replicas.end()) return tag;
    }
  }
  // Writes `n` keys of `bytes` bytes at QUORUM through node 0.
  std::map<std::string, std::string> Preload(size_t n, size_t bytes) {
    auto client = Node(0, 10s);
    std::map<std::string, std::string> written;
    std::vector<std::pair<std::string, std::string>> batch;
    for (size_t i = 0; i < n; ++i) {
      std::string key = fmt::format("pre/{:06}", i);
      std::string value =
          fmt::format("{:06}", i) + std::string(bytes, static_cast<char>('a' + i % 26));
      written[key] = value;
      batch.emplace_back(std::move(key), std::move(value));
      if (batch.size() == 200 || i + 1 == n) {
        auto r = client->BatchPut(batch, WriteAt(Consistency::kQuorum));
        EXPECT_TRUE(r.ok()) << r.status().ToString();
        batch.clear();
      }
    }
    return written;
  }
  // Every key of `want` reads back with its value through node `i` at `level`.
  void ExpectAll(size_t i, const std::map<std::string, std::string>& want, Consistency level) {
    auto client = Node(i, 10s);
    size_t missing = 0, wrong = 0;
    std::string example;
    for (const auto& [key, value] : want) {
      auto got = client->Get(key, ReadAt(level));
      ASSERT_TRUE(got.ok()) << key << ": " << got.status().ToString();
      if (!got->has_value()) {
        if (++missing == 1) example = key;
      } else if ((*got)->value != value) {
        if (++wrong == 1) example = key;
      }
    }
    EXPECT_EQ(missing + wrong, 0u) << missing << " of " << want.size() << " keys missing and "
                                   << wrong << " wrong through node " << i + 1 << " at "
                                   << ConsistencyName(level) << ", e.g. " << example;
  }

  TempDir dir_;
  std::unique_ptr<LocalCluster> cluster_;
};

TEST_F(MembershipTest, AFourthNodeJoinsUnderLoadWithNoErrorsAndHoldsItsShare) {
  const TestSeed seed;
  StartCluster(3);
  const auto preloaded = Preload(3000, 1000);
  Load load(Addresses(3), seed.value());
  ASSERT_OK(WaitUntil([&] { return ::testing::AssertionResult(load.writes() > 100); }, 20s,
                      "the load to start"));
  auto joined = cluster_->AddNode();
  ASSERT_TRUE(joined.ok()) << joined.status().ToString();
  ASSERT_OK(WaitForMembers(0, Addresses(4)));
  // A little more load on the new topology, then stop.
  const size_t writes_at_join = load.writes();
  ASSERT_OK(
      WaitUntil([&] { return ::testing::AssertionResult(load.writes() > writes_at_join + 100); },
                20s, "more writes after the join"));
  load.Stop();
  EXPECT_EQ(load.errors(), 0u) << load.first_errors();
  std::cout << fmt::format(
      "{} writes and {} reads at QUORUM during the join, {} errors; {} requests re-planned after "
      "a replica's fence refused them\n",
      load.writes(), load.reads(), load.errors(), Counter({0, 1, 2, 3}, "replica.replans"));

  // The new node holds its share: about 3/4 of the partitions of a keyspace of RF 3 on four
  // nodes, and a read at ONE through it is answered from its own copy wherever it is a replica,
  // so a range that was not streamed would show as missing keys here.
  auto status = Node(3)->ClusterStatus();
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  for (const auto& n : status->nodes) {
    EXPECT_GT(n.partitions, 1024u * 3 / 4 - 100) << n.address;
    EXPECT_LT(n.partitions, 1024u * 3 / 4 + 100) << n.address;
  }
  ExpectAll(3, preloaded, Consistency::kOne);
  ExpectAll(3, load.acked(), Consistency::kOne);
  ExpectAll(0, preloaded, Consistency::kAll);
}

// A joining node takes each range's data in full from one old replica and reconciles the other
// of the quorum by digest (replica/partition_streamer.h): a write acknowledged by a quorum that
// left out the first source still reaches it, and the join moves about one copy of the data,
// not one per source.
TEST_F(MembershipTest, AJoiningNodeGetsWhatItsFirstSourceMissedAndOneCopyOfTheData) {
  // No hint outlives 1 s and no background repair runs: node 3 stays without the writes it
  // missed.
  StartCluster(3, {"--hint-window", "1", "--repair-interval", "0", "--http", "127.0.0.1:0"});
  const size_t kValue = 1000;
  const auto preloaded = Preload(3000, kValue);
  cluster_->node(2).Kill9();
  ASSERT_OK(cluster_->WaitForState(0, 2, "DOWN"));
  std::map<std::string, std::string> missed;  // acknowledged by nodes 1 and 2 alone
  {
    auto client = Node(0, 10s);
    for (int i = 0; i < 300; ++i) {
      const std::string key = fmt::format("missed/{:04}", i), value = fmt::format("m{}", i);
      ASSERT_TRUE(client->Put(key, value, WriteAt(Consistency::kQuorum)).ok()) << key;
      missed[key] = value;
    }
  }
  const auto last_write = std::chrono::steady_clock::now();
  ASSERT_OK(WaitUntilOlderThan(last_write, 2s, "the hints to be older than the hint window"));
  ASSERT_OK(cluster_->Restart(2));
  ASSERT_OK(cluster_->WaitForQuiet());

  auto joined = cluster_->AddNode();
  ASSERT_TRUE(joined.ok()) << joined.status().ToString();
  ASSERT_OK(WaitForMembers(0, Addresses(4)));
  // Node 3 is the first source of about a third of the ranges: the missed keys there came from
  // the second source's reconciliation. A read at ONE through the new node is answered from its
  // own copy where it is a replica; elsewhere it may ask node 3, which lacks them, so only the
  // keys of its own ranges are read.
  auto status = Node(0)->ClusterStatus();
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  std::vector<cluster::Member> members;
  for (const auto& n : status->nodes) members.push_back({n.node_id, n.address, n.dc, n.rack});
  auto map = cluster::PartitionMap::Compute(members, 10);
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  const uint32_t id = IdOf(3);
  auto held_by_it = [&](const std::map<std::string, std::string>& all) {
    std::map<std::string, std::string> out;
    for (const auto& [key, value] : all) {
      const auto replicas =
          map->ReplicasIn(base::PartitionOfToken(base::Token(key), 10), "dc1", {{"*", 3}});
      if (std::find(replicas.begin(), replicas.end(), id) != replicas.end()) out[key] = value;
    }
    return out;
  };
  const auto missed_held = held_by_it(missed);
  std::cout << fmt::format("the new node holds {} of the {} keys node 3 missed\n",
                           missed_held.size(), missed.size());
  EXPECT_GT(missed_held.size(), missed.size() / 2);
  ExpectAll(3, missed_held, Consistency::kOne);
  ExpectAll(3, held_by_it(preloaded), Consistency::kOne);
  ExpectAll(0, missed, Consistency::kQuorum);

  // What it streamed in: about the 3/4 of the data it holds now (records, versions and framing
  // on top of the values), where taking every range in full from both sources of its quorum
  // moved twice that.
  auto metrics = HttpGet(cluster_->node(3).http_address(), "/metrics");
  ASSERT_EQ(metrics.status, 200) << metrics.error;
  const std::string name = "\ncairn_stream_bytes_total ";
  const size_t at = metrics.body.find(name);
  ASSERT_NE(at, std::string::npos) << metrics.body;
  const double streamed = std::stod(metrics.body.substr(at + name.size()));
  const double held = 3000.0 * kValue * 3 / 4;
  std::cout << fmt::format(
      "the new node streamed {:.0f} bytes in for about {:.0f} bytes of values "
      "({:.2f}x)\n",
      streamed, held, streamed / held);
  EXPECT_GT(streamed, held * 0.8);
  EXPECT_LT(streamed, held * 1.4);
}

// Scale out by two at once, then in by one, under load (the scale-out test without the
// CAS history, which the fault workloads check through joins): the two nodes started together
// join in one change, moving their data in one round.
TEST_F(MembershipTest, TwoNodesStartedTogetherJoinInOneChangeThenOneLeavesUnderLoad) {
  const TestSeed seed;
  // A merge window wide enough that a loaded 2-core machine starts the second node within it.
  StartCluster(4, {"--merge-window", "3"});
  const auto preloaded = Preload(3000, 1000);
  // Through the nodes that stay (node 2 leaves at the end, and then exits).
  Load load({cluster_->address(0), cluster_->address(2), cluster_->address(3)}, seed.value());
  ASSERT_OK(WaitUntil([&] { return ::testing::AssertionResult(load.writes() > 100); }, 20s,
                      "the load to start"));
  auto fifth = cluster_->AddNode();
  ASSERT_TRUE(fifth.ok()) << fifth.status().ToString();
  auto sixth = cluster_->AddNode();
  ASSERT_TRUE(sixth.ok()) << sixth.status().ToString();
  ASSERT_OK(WaitForMembers(0, Addresses(6), 120s));
  const uint32_t id5 = IdOf(4), id6 = IdOf(5);
  ASSERT_NE(id5, 0u);
  ASSERT_NE(id6, 0u);
  // One change took both: its description names both joins.
  const std::string log = cluster_->node(0).Log();
  size_t merged = std::string::npos;
  for (size_t at = log.find("topology epoch"); at != std::string::npos;
       at = log.find("topology epoch", at + 1)) {
    const std::string line = log.substr(at, log.find('\n', at) - at);
    if (line.find(fmt::format("join {} (", id5)) != std::string::npos &&
        line.find(fmt::format("join {} (", id6)) != std::string::npos) {
      merged = at;
      break;
    }
  }
  ASSERT_NE(merged, std::string::npos) << "no change took both joins:\n" << log;
  // The node that joined first gained ranges under the change's first target that the merged
  // one gives others: writes planned with the first target may have left copies there, and
  // cleanup deleted them.
  const std::string line = log.substr(merged, log.find('\n', merged) - merged);
  const size_t first =
      line.find(fmt::format("join {} (", id5)) < line.find(fmt::format("join {} (", id6)) ? 4 : 5;
  EXPECT_NE(cluster_->node(first).Log().find("ranges this node no longer holds"), std::string::npos)
      << cluster_->node(first).Log();

  // Then one of the first four leaves.
  const uint32_t leaving = IdOf(1);
  auto started = Node(0)->ChangeNode(Op::kDecommission, leaving);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  std::vector<std::string> stay = Addresses(6);
  stay.erase(stay.begin() + 1);
  ASSERT_OK(WaitForMembers(0, stay, 120s));
  const size_t writes_after = load.writes();
  ASSERT_OK(
      WaitUntil([&] { return ::testing::AssertionResult(load.writes() > writes_after + 100); }, 20s,
                "more writes after the changes"));
  load.Stop();
  EXPECT_EQ(load.errors(), 0u) << load.first_errors();
  std::cout << fmt::format("{} writes and {} reads at QUORUM through the changes, {} errors\n",
                           load.writes(), load.reads(), load.errors());
  // Five nodes of RF 3: each holds about 3 x 1024 / 5 partition replicas, within 10%.
  auto status = Node(0)->ClusterStatus();
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  size_t members = 0;
  for (const auto& n : status->nodes) {
    if (n.member_state != "NORMAL") continue;
    ++members;
    EXPECT_NEAR(n.partitions, 3.0 * 1024 / 5, 0.1 * 3 * 1024 / 5) << n.address;
  }
  EXPECT_EQ(members, 5u);
  ExpectAll(4, preloaded, Consistency::kOne);
  ExpectAll(5, load.acked(), Consistency::kOne);
  ExpectAll(0, preloaded, Consistency::kAll);
  ExpectAll(2, load.acked(), Consistency::kAll);
  ExpectAll(3, load.acked(), Consistency::kQuorum);
}

TEST_F(MembershipTest, ADecommissionedNodeStreamsItsDataAwayUnderLoadAndExits) {
  const TestSeed seed;
  StartCluster(4);
  const auto preloaded = Preload(3000, 1000);
  const uint32_t leaving = IdOf(3);
  ASSERT_NE(leaving, 0u);
  Load load(Addresses(3), seed.value());
  ASSERT_OK(WaitUntil([&] { return ::testing::AssertionResult(load.writes() > 100); }, 20s,
                      "the load to start"));
  auto started = Node(0)->ChangeNode(Op::kDecommission, leaving);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  EXPECT_NE(started->change.find(fmt::format("decommission node {}", leaving)), std::string::npos)
      << started->change;
  ASSERT_OK(WaitForMembers(0, Addresses(3)));
  load.Stop();
  EXPECT_EQ(load.errors(), 0u) << load.first_errors();
  std::cout << fmt::format(
      "{} writes and {} reads at QUORUM during the decommission; {} requests re-planned after a "
      "replica's fence refused them\n",
      load.writes(), load.reads(), Counter({0, 1, 2}, "replica.replans"));
  // The node that left stops by itself, successfully.
  std::optional<int> exit_code;
  ASSERT_OK(WaitUntil(
      [&] {
        exit_code = cluster_->node(3).Exited();
        return ::testing::AssertionResult(exit_code.has_value());
      },
      30s, "the decommissioned node to exit"));
  EXPECT_EQ(*exit_code, 0);
  // Every write reads back at ALL from the three that stay.
  ExpectAll(0, preloaded, Consistency::kAll);
  ExpectAll(1, load.acked(), Consistency::kAll);
}

// The fail point holds every coordinator's write rounds 1 s and read rounds 300 ms between
// planning and sending, so requests planned with one stage's topology reach replicas already
// fenced at the next: each must be planned again with the newer topology and still succeed. The
// write hold is well over the driver's 200 ms drain between a barrier and its fence (requests
// planned before the barrier and sent within the drain are not refused).
TEST_F(MembershipTest, RequestsPlannedBeforeAFenceArePlannedAgainAndSucceed) {
  const TestSeed seed;
  ::setenv("CAIRN_FAILPOINTS",
           "coordinator.write.before_send=1000,coordinator.read.before_send=300", 1);
  // No merge window: the first barrier follows the change's first epoch at once, so requests
  // planned just before it and held are still on their way when the fence rises.
  StartCluster(4, {"--merge-window", "0"});
  ::unsetenv("CAIRN_FAILPOINTS");
  ASSERT_TRUE(cluster_);
  const auto preloaded = Preload(40, 100);  // each read back below takes the 300 ms hold
  const uint32_t leaving = IdOf(3);
  ASSERT_NE(leaving, 0u);
  Load load(Addresses(3), seed.value());
  ASSERT_OK(WaitUntil([&] { return ::testing::AssertionResult(load.writes() > 10); }, 20s,
                      "the load to start"));
  auto started = Node(0)->ChangeNode(Op::kDecommission, leaving);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  ASSERT_OK(WaitForMembers(0, Addresses(3)));
  load.Stop();
  EXPECT_EQ(load.errors(), 0u) << load.first_errors();
  const uint64_t replans = Counter({0, 1, 2}, "replica.replans");
  std::cout << fmt::format("{} writes and {} reads during the decommission; {} re-planned\n",
                           load.writes(), load.reads(), replans);
  EXPECT_GT(replans, 0u) << "no request met a fence: the fail point did not hold any";
  ExpectAll(0, preloaded, Consistency::kAll);
  ExpectAll(1, load.acked(), Consistency::kAll);
}

TEST_F(MembershipTest, ADeadNodeIsRemovedAndItsReplicasAreRebuiltFromTheSurvivors) {
  StartCluster(4);
  const auto preloaded = Preload(2000, 500);
  const uint32_t dead = IdOf(3);
  cluster_->node(3).Kill9();
  ASSERT_OK(cluster_->WaitForState(0, 3, "DOWN"));
  // A live node is decommissioned, not removed; a dead one cannot stream its own data away.
  auto wrong = Node(0)->ChangeNode(Op::kRemove, IdOf(1));
  EXPECT_EQ(wrong.status().code(), Code::kFailedPrecondition) << wrong.status().ToString();
  wrong = Node(0)->ChangeNode(Op::kDecommission, dead);
  EXPECT_EQ(wrong.status().code(), Code::kFailedPrecondition) << wrong.status().ToString();

  // Writes while it is down leave hints for it on their coordinators.
  std::map<std::string, std::string> hinted;
  {
    auto client = Node(0, 10s);
    for (size_t i = 0; i < 300; ++i) {
      const std::string key = fmt::format("while-down/{}", i);
      ASSERT_TRUE(client->Put(key, "v" + key, WriteAt(Consistency::kQuorum)).ok());
      hinted[key] = "v" + key;
    }
  }
  auto removed = Node(0)->ChangeNode(Op::kRemove, dead);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  ASSERT_OK(WaitForMembers(0, Addresses(3)));
  // Three replicas of every key again, on the three that are left: ALL needs each of them.
  ExpectAll(1, preloaded, Consistency::kAll);
  ExpectAll(2, hinted, Consistency::kAll);
  // The hints for the removed node do not wait for it: they went to the nodes that hold their
  // ranges now.
  ASSERT_OK(WaitUntil(
      [&]() -> ::testing::AssertionResult {
        uint64_t pending = 0;
        for (size_t i = 0; i < 3; ++i) {
          auto status = Node(i)->ClusterStatus();
          if (!status.ok()) return ::testing::AssertionFailure() << status.status().ToString();
          for (const auto& n : status->nodes) {
            if (n.self) pending += n.hints_pending;
          }
        }
        return ::testing::AssertionResult(pending == 0) << pending << " hints pending";
      },
      30s, "the hints for the removed node to be delivered elsewhere"));
}

TEST_F(MembershipTest, ANodeDownLongerThanDeadAfterIsRemovedByItself) {
  StartCluster(4, {"--dead-after", "3s"});
  const auto preloaded = Preload(1000, 500);
  cluster_->node(3).Kill9();
  // DOWN after some 4 s, removed 3 s later with no operator, its ranges streamed to the three
  // others.
  ASSERT_OK(WaitForMembers(0, Addresses(3), 90s));
  ExpectAll(1, preloaded, Consistency::kAll);
}

// A node removed as dead that is back before its ranges have new replicas keeps its place: the
// removal rolls back.
TEST_F(MembershipTest, ARemovedNodeThatComesBackWhileStreamingKeepsItsPlace) {
  StartCluster(4, {"--stream-mb-per-s", "1"});
  const auto preloaded = Preload(6000, 2000);
  const uint32_t dead = IdOf(3);
  cluster_->node(3).Kill9();
  for (size_t i = 0; i < 3; ++i) ASSERT_OK(cluster_->WaitForState(i, 3, "DOWN"));
  auto removed = Node(0)->ChangeNode(Op::kRemove, dead);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  ASSERT_OK(WaitUntil(
      [&]() -> ::testing::AssertionResult {
        auto status = Node(0)->ClusterStatus();
        if (!status.ok()) return ::testing::AssertionFailure() << status.status().ToString();
        uint64_t bytes = 0;
        for (const auto& n : status->nodes) bytes += n.stream_bytes;
        return ::testing::AssertionResult(bytes > 0) << "nothing streamed yet: " << status->change;
      },
      60s, "the removal to be streaming"));
  ASSERT_OK(cluster_->Restart(3));
  ASSERT_OK(WaitForMembers(0, Addresses(4), 120s));
  ExpectAll(3, preloaded, Consistency::kAll);
}

TEST_F(MembershipTest, ANewNodeReplacesADeadOneInItsPlaces) {
  StartCluster(3);
  const auto preloaded = Preload(2000, 500);
  const uint32_t dead = IdOf(2);
  cluster_->node(2).Kill9();
  ASSERT_OK(cluster_->WaitForState(0, 2, "DOWN"));
  // Three nodes and replication factor 3: a dead node cannot be removed, only replaced.
  auto removed = Node(0)->ChangeNode(Op::kRemove, dead);
  EXPECT_EQ(removed.status().code(), Code::kFailedPrecondition) << removed.status().ToString();
  auto replacement = cluster_->AddNode({"--replace", std::to_string(dead)});
  ASSERT_TRUE(replacement.ok()) << replacement.status().ToString();
  ASSERT_OK(WaitForMembers(
      0, {cluster_->address(0), cluster_->address(1), cluster_->address(*replacement)}));
  // Every partition again on three live nodes, the replacement holding what the dead one held
  // (all of it, with three nodes), read from its own copy.
  ExpectAll(*replacement, preloaded, Consistency::kOne);
  ExpectAll(0, preloaded, Consistency::kAll);
}

TEST_F(MembershipTest, AJoiningNodeKilledWhileStreamingResumesAndFinishes) {
  StartCluster(3, {"--http", "127.0.0.1:0"});
  // One partition of some 6 MiB (the keys share a hash tag) that the new node gains, streamed in
  // chunks of 1 MiB at 1 MiB/s, so that the kill lands in the middle of that range.
  const uint32_t new_id = 777;
  const std::string new_address = fmt::format("127.0.0.1:{}", FreePort());
  const std::string tag = TagGainedBy(new_id, new_address);
  std::map<std::string, std::string> preloaded;
  {
    auto client = Node(0, 10s);
    std::vector<std::pair<std::string, std::string>> batch;
    for (size_t i = 0; i < 3000; ++i) {
      std::string key = fmt::format("{{{}}}/{:06}", tag, i);
      std::string value =
          fmt::format("{:06}", i) + std::string(2000, static_cast<char>('a' + i % 26));
      preloaded[key] = value;
      batch.emplace_back(std::move(key), std::move(value));
      if (batch.size() == 100) {
        auto r = client->BatchPut(batch, WriteAt(Consistency::kQuorum));
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        batch.clear();
      }
    }
  }
  auto joined = cluster_->AddNode({"--stream-mb-per-s", "1", "--node-id", std::to_string(new_id)},
                                  new_address);
  ASSERT_TRUE(joined.ok()) << joined.status().ToString();
  const size_t node = *joined;
  ASSERT_OK(WaitForStreaming(0, node, uint64_t{2} << 20));
  // The partition map (the web console's grid) shows what moves, and where: every partition
  // that changes replicas gains the new node.
  {
    auto map = HttpGet(cluster_->node(0).http_address(), "/v1/cluster/partitions");
    ASSERT_EQ(map.status, 200) << map.error;
    const Json json = Json::parse(map.body);
    ASSERT_TRUE(json.contains("change")) << map.body.substr(0, 300);
    EXPECT_EQ(json["change"]["stage"], "write-both/read-old");
    const Json& moving = json["dcs"][0]["moving"];
    // Three nodes hold every partition; the fourth takes about a quarter of 3 x 1024 replicas,
    // so about three partitions in four change.
    EXPECT_GT(moving.size(), 600u);
    for (const Json& m : moving) {
      const Json& to = m["to"];
      ASSERT_EQ(to.size(), 3u);
      EXPECT_NE(std::find(to.begin(), to.end(), Json(new_id)), to.end()) << m.dump();
      // Reads still use the old replicas.
      const Json& from = json["dcs"][0]["replicas"][m["partition"].get<size_t>()];
      EXPECT_EQ(std::find(from.begin(), from.end(), Json(new_id)), from.end()) << m.dump();
    }
  }
  cluster_->node(node).Kill9();
  ASSERT_OK(cluster_->Restart(node));
  ASSERT_OK(WaitForMembers(0, Addresses(4), 120s));
  {
    const Json json =
        Json::parse(HttpGet(cluster_->node(0).http_address(), "/v1/cluster/partitions").body);
    EXPECT_FALSE(json.contains("change"));
    EXPECT_TRUE(json["dcs"][0]["moving"].empty());
  }
  // It went on from where it was: the chunks applied before the kill were not streamed again.
  const std::string log = cluster_->node(node).Log();
  EXPECT_NE(log.find("resuming partition"), std::string::npos) << log;
  // At most one chunk was sent twice (the one in flight when it was killed): the chunks the
  // sources served, against those the new node applied over both of its lives (its progress
  // records count them with the data).
  const std::string marker = "streamed all ";
  const size_t at = log.rfind(marker);
  ASSERT_NE(at, std::string::npos) << log;
  unsigned ranges = 0;
  unsigned long long applied = 0;
  ASSERT_EQ(
      std::sscanf(log.c_str() + at + marker.size(), "%u ranges: %llu chunks", &ranges, &applied), 2)
      << log.substr(at, 200);
  uint64_t served = 0;
  for (size_t i = 0; i < 3; ++i) {
    auto metrics = HttpGet(cluster_->node(i).http_address(), "/metrics");
    ASSERT_EQ(metrics.status, 200) << metrics.error;
    const std::string name = "\ncairn_stream_chunks_served_total ";
    const size_t m = metrics.body.find(name);
    ASSERT_NE(m, std::string::npos) << metrics.body;
    served += std::stoull(metrics.body.substr(m + name.size()));
  }
  std::cout << fmt::format("{} ranges: {} chunks applied, {} served\n", ranges, applied, served);
  EXPECT_GE(served, applied);
  EXPECT_LE(served, applied + 1);
  ExpectAll(node, preloaded, Consistency::kOne);
  ExpectAll(0, preloaded, Consistency::kAll);
}

// In a three-node cluster every node holds every partition, so the member with the lowest id is
// both the driver of the change and a streaming source of the new node: kill it mid-stream,
// bring it back, and the change finishes with nothing lost.
TEST_F(MembershipTest, TheDriverAndStreamingSourceKilledMidStreamComesBackAndTheJoinFinishes) {
  StartCluster(3);
  const auto preloaded = Preload(3000, 2000);
  size_t driver = 0;
  for (size_t i = 1; i < 3; ++i) {
    if (IdOf(i) < IdOf(driver)) driver = i;
  }
  auto joined = cluster_->AddNode({"--stream-mb-per-s", "2"});
  ASSERT_TRUE(joined.ok()) << joined.status().ToString();
  const size_t node = *joined;
  const size_t observer = driver == 0 ? 1 : 0;
  ASSERT_OK(WaitForStreaming(observer, node, 1));
  cluster_->node(driver).Kill9();
  ASSERT_OK(cluster_->WaitForState(observer, driver, "DOWN"));
  ASSERT_OK(cluster_->Restart(driver));
  ASSERT_OK(WaitForMembers(observer, Addresses(4), 120s));
  ExpectAll(node, preloaded, Consistency::kOne);
  ExpectAll(driver, preloaded, Consistency::kAll);
}

TEST_F(MembershipTest, ChangesThatWouldLoseReplicasOrNameNoMemberAreRefused) {
  StartCluster(3);
  auto client = Node(0);
  // Three nodes, replication factor 3: none can leave.
  auto r = client->ChangeNode(Op::kDecommission, IdOf(2));
  EXPECT_EQ(r.status().code(), Code::kFailedPrecondition) << r.status().ToString();
  EXPECT_NE(r.status().message().find("replica"), std::string::npos) << r.status().ToString();
  r = client->ChangeNode(Op::kDecommission, 12345);
  EXPECT_EQ(r.status().code(), Code::kNotFound) << r.status().ToString();
  r = client->ChangeNode(Op::kCancel, 0);
  EXPECT_EQ(r.status().code(), Code::kFailedPrecondition) << r.status().ToString();
  // Nothing changed: same members, no change in progress.
  ASSERT_OK(WaitForMembers(0, Addresses(3), 5s));
}

// The same operations as an operator runs them: `cairn node ...` and `cairn status`, and the HTTP
// admin API, with their answers to mistakes.
// New nodes started on standby (cairnd --join SEEDS --standby) wait to be told: one joins on
// `cairn node join`, one takes a dead node's places on POST /v1/nodes/{id}/replace after a
// refused `cairn node replace` left it on standby.
TEST_F(MembershipTest, NodesOnStandbyJoinOrReplaceWhenToldFromTheCliAndTheHttpApi) {
  StartCluster(3, {"--http", "127.0.0.1:0"});
  const auto preloaded = Preload(1000, 500);
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {CliPath(), "--server", cluster_->address(0)});
    return RunCommand(args, "", 120s);
  };
  auto standby = cluster_->AddNode({"--standby"});
  ASSERT_TRUE(standby.ok()) << standby.status().ToString();
  const std::string address = cluster_->address(*standby);
  ASSERT_OK(WaitUntil(
      [&] {
        return ::testing::AssertionResult(cluster_->node(*standby).Log().find("on standby") !=
                                          std::string::npos);
      },
      20s, "the new node to wait on standby"));
  // It asked nobody: the cluster has its three members and no change.
  auto status = Node(0)->ClusterStatus();
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_TRUE(status->change.empty()) << status->change;
  size_t members = 0;
  for (const auto& n : status->nodes) members += n.member_state == "NORMAL" ? 1 : 0;
  EXPECT_EQ(members, 3u);
  // A member is not on standby: told to join, it says so.
  auto not_standby = cli({"node", "join", cluster_->address(1)});
  EXPECT_NE(not_standby.exit_code, 0);
  EXPECT_NE(not_standby.err.find("not waiting to join"), std::string::npos) << not_standby.err;

  auto joined = cli({"node", "join", address, "--wait"});
  ASSERT_EQ(joined.exit_code, 0) << joined.out << joined.err;
  EXPECT_NE(joined.err.find(fmt::format("join {} (", IdOf(*standby))), std::string::npos)
      << joined.err;
  ASSERT_OK(WaitForMembers(0, Addresses(4)));
  // Told again (say the answer was lost): it is a member, and says so without a new change.
  auto again = cli({"node", "join", address});
  EXPECT_EQ(again.exit_code, 0) << again.err;

  // Node 3 dies for good; a new node on standby takes its places.
  const uint32_t dead = IdOf(2);
  ASSERT_NE(dead, 0u);
  cluster_->node(2).Kill9();
  ASSERT_OK(cluster_->WaitForState(0, 2, "DOWN"));
  auto replacement = cluster_->AddNode({"--standby"});
  ASSERT_TRUE(replacement.ok()) << replacement.status().ToString();
  const std::string with = cluster_->address(*replacement);
  // Naming a node that is no member is refused, and the new node stays on standby.
  auto refused = cli({"node", "replace", "12345", "--with", with});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("not a NORMAL member"), std::string::npos) << refused.err;
  const std::string http = cluster_->node(*replacement).http_address();
  ASSERT_FALSE(http.empty());
  auto replaced = HttpRequest(http, "POST", fmt::format("/v1/nodes/{}/replace", dead));
  ASSERT_EQ(replaced.status, 200) << replaced.body;
  EXPECT_NE(replaced.body.find(fmt::format("replace node {}", dead)), std::string::npos)
      << replaced.body;
  ASSERT_OK(WaitForMembers(0, {cluster_->address(0), cluster_->address(1), address, with}, 120s));
  ExpectAll(*replacement, preloaded, Consistency::kOne);
  ExpectAll(0, preloaded, Consistency::kAll);
}

TEST_F(MembershipTest, NodeOperationsFromTheCliAndTheHttpApi) {
  StartCluster(4, {"--http", "127.0.0.1:0"});
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {CliPath(), "--server", cluster_->address(0)});
    return RunCommand(args, "", 120s);
  };
  const std::string http = cluster_->node(0).http_address();
  ASSERT_FALSE(http.empty());

  auto status = cli({"status"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("Topology epoch"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("MEMBER"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("NORMAL"), std::string::npos) << status.out;
  auto ops = cli({"node", "ops"});
  ASSERT_EQ(ops.exit_code, 0) << ops.err;
  EXPECT_NE(ops.out.find("no change in progress"), std::string::npos) << ops.out;

  auto cluster = HttpGet(http, "/v1/cluster");
  ASSERT_EQ(cluster.status, 200) << cluster.body << cluster.error;
  auto json = nlohmann::json::parse(cluster.body);
  EXPECT_GE(json.value("topology_epoch", 0u), 1u) << cluster.body;
  EXPECT_EQ(json["nodes"][0].value("member", ""), "NORMAL") << cluster.body;
  EXPECT_EQ(HttpRequest(http, "POST", "/v1/nodes/abc/decommission").status, 400);
  EXPECT_EQ(HttpRequest(http, "POST", "/v1/nodes/12345/decommission").status, 404);
  EXPECT_EQ(HttpRequest(http, "POST", "/v1/nodes/12345/retire").status, 404);
  EXPECT_EQ(HttpRequest(http, "GET", "/v1/nodes/12345/decommission").status, 405);
  EXPECT_EQ(HttpRequest(http, "POST", "/v1/cluster/cancel").status, 409);
  auto cancel = cli({"node", "cancel"});
  EXPECT_EQ(cancel.exit_code, 2) << cancel.out << cancel.err;
  EXPECT_NE(cancel.err.find("no topology change is in progress"), std::string::npos) << cancel.err;

  // Decommission node 4 and follow it to the end: the final status, as JSON, on stdout.
  const uint32_t leaving = IdOf(3);
  auto done = cli({"--json", "node", "decommission", std::to_string(leaving), "--wait"});
  ASSERT_EQ(done.exit_code, 0) << done.out << done.err;
  auto final_status = nlohmann::json::parse(done.out);
  EXPECT_EQ(final_status.value("change", "?"), "") << done.out;
  EXPECT_EQ(final_status["nodes"].size(), 3u) << done.out;
  EXPECT_NE(done.err.find("decommission node"), std::string::npos) << done.err;
  // A second decommission of a node that has left: not a member.
  auto again = HttpRequest(http, "POST", fmt::format("/v1/nodes/{}/decommission", leaving));
  EXPECT_EQ(again.status, 404) << again.body;
}

}  // namespace
}  // namespace cairn::testing
