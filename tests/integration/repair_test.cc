// Repair (anti-entropy) against real cairnd processes on loopback: a replica that missed writes
// for longer than the hint window converges after `cairn repair`, and only the keys that differ
// are sent.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <random>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/hash.h"
#include "base/model.h"
#include "cairn/client.h"
#include "storage/engine.h"
#include "tests/harness/process.h"
#include "tests/ops/http_get.h"
#include "tests/support/options.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace cairn::testing {
namespace {

using namespace std::chrono_literals;

class RepairTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (cluster_ && HasFailure()) std::cerr << cluster_->Logs();
  }
  std::unique_ptr<Client> Node(size_t i) {
    ClientOptions o;
    o.servers = {cluster_->address(i)};
    o.request_timeout = 60s;
    o.connect_timeout = 1s;
    return std::make_unique<Client>(o);
  }
  // Waits until the writes just made are older than the 1 s hint window, then restarts node 3:
  // the hints for it are dropped instead of replayed, so only repair can bring it up to date.
  void RestartNode3PastTheHintWindow() {
    const auto last_write = std::chrono::steady_clock::now();
    ASSERT_OK(WaitUntilOlderThan(last_write, 2s, "the hints to be older than the hint window"));
    ASSERT_OK(cluster_->Restart(2));
    ASSERT_OK(cluster_->WaitForQuiet());
  }
  // Repairs every range of the default keyspace through node `i`; the reports summed.
  RepairReport RepairAll(size_t i, uint32_t* ranges_agreed) {
    auto client = Node(i);
    auto status = client->ClusterStatus();
    EXPECT_TRUE(status.ok()) << status.status().ToString();
    RepairReport sum;
    *ranges_agreed = 0;
    for (uint32_t p = 0; status.ok() && p < status->partitions; ++p) {
      auto r = client->RepairRange("", p);
      EXPECT_TRUE(r.ok()) << "partition " << p << ": " << r.status().ToString();
      if (!r.ok()) continue;
      EXPECT_EQ(r->skipped, "") << "partition " << p;
      sum.segments_differing += r->segments_differing;
      sum.keys_compared += r->keys_compared;
      sum.keys_repaired += r->keys_repaired;
      sum.bytes += r->bytes;
      sum.tombstones_purged += r->tombstones_purged;
      *ranges_agreed += r->agreed ? 1 : 0;
      ++sum.partition;  // ranges repaired
    }
    return sum;
  }

  // Three nodes with `args` besides the harness's.
  void StartCluster(std::vector<std::string> args) {
    ClusterOptions options;
    options.extra_args = std::move(args);
    auto c = LocalCluster::Start(dir_.Sub("cluster"), options);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cluster_ = std::move(*c);
  }

  TempDir dir_;
  std::unique_ptr<LocalCluster> cluster_;
};

TEST_F(RepairTest, AReplicaDownLongerThanTheHintWindowConvergesAndOnlyDifferingKeysAreSent) {
  // A hint window of 1 s: the hints for node 3 expire at once.
  ASSERT_NO_FATAL_FAILURE(StartCluster({"--hint-window", "1"}));

  // 600 keys on every replica.
  std::map<std::string, std::optional<std::string>> want;
  auto client = Node(0);
  for (int i = 0; i < 600; ++i) {
    const std::string key = fmt::format("k{:04}", i);
    const std::string value = fmt::format("first value of {}", key);
    ASSERT_OK(client->Put(key, value, WriteAt(Consistency::kAll)).status());
    want[key] = value;
  }
  // Node 3 goes down and misses 300 writes: 200 new keys, 60 overwrites, 40 deletes.
  cluster_->node(2).Kill9();
  ASSERT_OK(cluster_->WaitForState(0, 2, "DOWN"));
  size_t missed = 0;
  for (int i = 600; i < 800; ++i, ++missed) {
    const std::string key = fmt::format("k{:04}", i);
    ASSERT_OK(
        client->Put(key, "written while node 3 was down", WriteAt(Consistency::kQuorum)).status());
    want[key] = "written while node 3 was down";
  }
  for (int i = 0; i < 60; ++i, ++missed) {
    const std::string key = fmt::format("k{:04}", i);
    ASSERT_OK(client->Put(key, "overwritten", WriteAt(Consistency::kQuorum)).status());
    want[key] = "overwritten";
  }
  for (int i = 100; i < 140; ++i, ++missed) {
    const std::string key = fmt::format("k{:04}", i);
    ASSERT_OK(client->Delete(key, WriteAt(Consistency::kQuorum)).status());
    want[key] = std::nullopt;
  }
  // Past the hint window, the hints for node 3 are dropped instead of replayed when it returns.
  ASSERT_NO_FATAL_FAILURE(RestartNode3PastTheHintWindow());

  // Node 3 alone, at ONE from itself, still has the old state of some keys.
  auto third = Node(2);
  size_t stale = 0;
  for (const auto& [key, value] : want) {
    auto got = third->Get(key, ReadAt(Consistency::kOne));
    ASSERT_OK(got.status());
    const std::optional<std::string> seen =
        got->has_value() ? std::optional<std::string>((*got)->value) : std::nullopt;
    stale += seen != value ? 1 : 0;
  }
  std::cout << stale << " of " << want.size() << " keys stale on node 3 before the repair\n";
  EXPECT_GT(stale, 0u) << "node 3 should have missed writes: the hints were not dropped?";

  uint32_t agreed = 0;
  const RepairReport first = RepairAll(0, &agreed);
  std::cout << fmt::format(
      "repair: {} segments differed, {} key versions listed, {} records sent ({} bytes) for {} "
      "missed writes\n",
      first.segments_differing, first.keys_compared, first.keys_repaired, first.bytes, missed);
  // Exactly the records node 3 missed travel: no key that agrees is sent.
  EXPECT_EQ(first.keys_repaired, missed);
  EXPECT_EQ(agreed, first.partition) << "every range should agree after its repair";

  // Every key now reads the same on every node, each from itself at ONE.
  for (size_t n = 0; n < 3; ++n) {
    auto node = Node(n);
    for (const auto& [key, value] : want) {
      auto got = node->Get(key, ReadAt(Consistency::kOne));
      ASSERT_OK(got.status());
      if (value) {
        ASSERT_TRUE(got->has_value()) << key << " missing on node " << n + 1;
        EXPECT_EQ((*got)->value, *value) << key << " on node " << n + 1;
      } else {
        EXPECT_FALSE(got->has_value()) << key << " should be deleted on node " << n + 1;
      }
    }
  }
  // A second repair finds nothing to do.
  const RepairReport second = RepairAll(1, &agreed);
  EXPECT_EQ(second.segments_differing, 0u);
  EXPECT_EQ(second.keys_repaired, 0u);
  EXPECT_EQ(agreed, second.partition);
}

// Zombie: keys deleted while a replica was down. Repairs without it purge nothing (not every
// replica took part); once it is back, the repair hands it the tombstones and only then are they
// purged everywhere; the keys stay deleted, then and after another repair.
TEST_F(RepairTest, KeysDeletedWhileAReplicaWasDownStayDeletedThroughRepairAndPurge) {
  ASSERT_NO_FATAL_FAILURE(
      StartCluster({"--hint-window", "1", "--purge-margin", "0", "--repair-interval", "0"}));
  auto client = Node(0);
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK(client->Put(fmt::format("z{:03}", i), "alive", WriteAt(Consistency::kAll)).status());
  }
  cluster_->node(2).Kill9();
  ASSERT_OK(cluster_->WaitForState(0, 2, "DOWN"));
  for (int i = 0; i < 50; ++i) {
    ASSERT_OK(client->Delete(fmt::format("z{:03}", i), WriteAt(Consistency::kQuorum)).status());
  }
  const auto deleted = std::chrono::steady_clock::now();
  ASSERT_OK(WaitUntil(
      [&] { return ::testing::AssertionResult(std::chrono::steady_clock::now() - deleted > 2s); },
      10s, "the deletes to be older than the hint window"));

  // Node 3 is down: the ranges are repaired among the two others, and nothing is purged.
  uint32_t agreed = 0;
  const RepairReport without = RepairAll(0, &agreed);
  EXPECT_EQ(without.tombstones_purged, 0u);
  EXPECT_EQ(agreed, 0u);

  ASSERT_OK(cluster_->Restart(2));
  ASSERT_OK(cluster_->WaitForQuiet());
  auto third = Node(2);
  size_t zombies = 0;
  for (int i = 0; i < 50; ++i) {
    auto got = third->Get(fmt::format("z{:03}", i), ReadAt(Consistency::kOne));
    ASSERT_OK(got.status());
    zombies += got->has_value() ? 1 : 0;
  }
  EXPECT_EQ(zombies, 50u) << "node 3 should still hold the deleted keys alive (hints dropped)";

  const RepairReport with = RepairAll(1, &agreed);
  EXPECT_EQ(with.keys_repaired, 50u);  // the tombstones, to node 3
  EXPECT_EQ(agreed, with.partition);
  EXPECT_EQ(with.tombstones_purged, 150u);  // 50 tombstones on each of 3 replicas
  for (size_t n = 0; n < 3; ++n) {
    auto node = Node(n);
    for (int i = 0; i < 100; ++i) {
      const std::string key = fmt::format("z{:03}", i);
      auto got = node->Get(key, ReadAt(Consistency::kOne));
      ASSERT_OK(got.status());
      EXPECT_EQ(got->has_value(), i >= 50) << key << " on node " << n + 1;
    }
  }
  // Nothing comes back: the replicas agree with no tombstone left.
  const RepairReport after = RepairAll(2, &agreed);
  EXPECT_EQ(after.segments_differing, 0u);
  EXPECT_EQ(after.keys_repaired, 0u);
  EXPECT_EQ(after.tombstones_purged, 0u);
  for (int i = 0; i < 50; ++i) {
    auto got = client->Get(fmt::format("z{:03}", i), ReadAt(Consistency::kAll));
    ASSERT_OK(got.status());
    EXPECT_FALSE(got->has_value());
  }
}

// Doomstone: a tombstone that only one replica holds, older than a write the others hold, meets
// that write in a repair: the newer write wins on every replica.
TEST_F(RepairTest, AnOldTombstoneNeverRemovesANewerWriteInRepair) {
  ASSERT_NO_FATAL_FAILURE(StartCluster({"--hint-window", "1", "--repair-interval", "0"}));
  ASSERT_OK(Node(0)->Put("doom", "v0", WriteAt(Consistency::kAll)).status());
  // The tombstone reaches node 3 alone.
  cluster_->node(0).Kill9();
  cluster_->node(1).Kill9();
  ASSERT_OK(cluster_->WaitForState(2, 0, "DOWN"));
  ASSERT_OK(cluster_->WaitForState(2, 1, "DOWN"));
  ASSERT_OK(Node(2)->Delete("doom", WriteAt(Consistency::kOne)).status());
  const auto deleted = std::chrono::steady_clock::now();
  ASSERT_OK(WaitUntil(
      [&] { return ::testing::AssertionResult(std::chrono::steady_clock::now() - deleted > 2s); },
      10s, "the delete's hints to be older than the hint window"));
  // The newer write reaches nodes 1 and 2 alone.
  cluster_->node(2).Kill9();
  ASSERT_OK(cluster_->Restart(0));
  ASSERT_OK(cluster_->Restart(1));
  ASSERT_OK(cluster_->WaitForState(0, 1, "UP"));
  ASSERT_OK(Node(0)->Put("doom", "v2", WriteAt(Consistency::kQuorum)).status());
  ASSERT_OK(cluster_->Restart(2));
  ASSERT_OK(cluster_->WaitForQuiet());

  uint32_t agreed = 0;
  const RepairReport r = RepairAll(2, &agreed);
  EXPECT_EQ(agreed, r.partition);
  for (size_t n = 0; n < 3; ++n) {
    auto got = Node(n)->Get("doom", ReadAt(Consistency::kOne));
    ASSERT_OK(got.status());
    ASSERT_TRUE(got->has_value()) << "the newer write is gone on node " << n + 1;
    EXPECT_EQ((*got)->value, "v2") << "on node " << n + 1;
  }
}

// Background repair, with a short interval: a replica that missed writes past the hint window
// converges by itself.
TEST_F(RepairTest, BackgroundRepairBringsAStaleReplicaUpToDate) {
  ASSERT_NO_FATAL_FAILURE(StartCluster({"--hint-window", "1", "--repair-interval", "4"}));
  cluster_->node(2).Kill9();
  ASSERT_OK(cluster_->WaitForState(0, 2, "DOWN"));
  auto client = Node(0);
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK(client->Put(fmt::format("b{:03}", i), "v", WriteAt(Consistency::kQuorum)).status());
  }
  const auto written = std::chrono::steady_clock::now();
  ASSERT_OK(WaitUntil(
      [&] { return ::testing::AssertionResult(std::chrono::steady_clock::now() - written > 2s); },
      10s, "the writes to be older than the hint window"));
  ASSERT_OK(cluster_->Restart(2));
  auto third = Node(2);
  ASSERT_OK(WaitUntil(
      [&]() -> ::testing::AssertionResult {
        size_t missing = 0;
        for (int i = 0; i < 100; ++i) {
          auto got = third->Get(fmt::format("b{:03}", i), ReadAt(Consistency::kOne));
          if (!got.ok()) return ::testing::AssertionFailure() << got.status().ToString();
          missing += got->has_value() ? 0 : 1;
        }
        if (missing == 0) return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << missing << " of 100 keys still missing on node 3";
      },
      60s, "background repair to bring node 3 up to date"));
}

// A replica whose disk lost one range (deleted here with the storage engine while the node is
// stopped) gets it back from the others through repair.
TEST_F(RepairTest, ARangeLostFromOneReplicasDiskIsRebuiltByRepair) {
  ASSERT_NO_FATAL_FAILURE(StartCluster({"--repair-interval", "0"}));
  auto client = Node(0);
  // 200 keys in one partition (one hash tag), and 200 spread over the others.
  std::map<std::string, std::string> want;
  for (int i = 0; i < 200; ++i) {
    want[fmt::format("{{lost}}/{:03}", i)] = fmt::format("tagged {}", i);
    want[fmt::format("free/{:03}", i)] = fmt::format("free {}", i);
  }
  for (const auto& [key, value] : want) {
    ASSERT_OK(client->Put(key, value, WriteAt(Consistency::kAll)).status());
  }
  auto status = client->ClusterStatus();
  ASSERT_OK(status.status());
  uint32_t bits = 0;
  while ((1u << bits) < status->partitions) ++bits;
  const uint32_t partition = base::PartitionOfToken(base::Token("{lost}/000"), bits);

  ASSERT_EQ(cluster_->node(2).Stop(), 0);
  {
    auto engine =
        storage::Engine::Open(storage::EngineOptions{.path = dir_.Sub("cluster") + "/node3/db"});
    ASSERT_OK(engine.status());
    storage::WriteRequest request;
    request.range_deletes.push_back({partition, base::kDefaultKeyspaceId});
    std::promise<Status> done;
    (*engine)->Write(std::move(request),
                     [&](Status s, std::vector<storage::WriteOutcome>) { done.set_value(s); });
    ASSERT_OK(done.get_future().get());
  }
  ASSERT_OK(cluster_->Restart(2));
  ASSERT_OK(cluster_->WaitForQuiet());
  auto third = Node(2);
  auto lost = third->Get("{lost}/000", ReadAt(Consistency::kOne));
  ASSERT_OK(lost.status());
  ASSERT_FALSE(lost->has_value()) << "the range should be gone from node 3's disk";

  auto r = Node(0)->RepairRange("", partition);
  ASSERT_OK(r.status());
  // Every key of the partition: the 200 tagged ones, and any untagged one that hashed there.
  size_t in_partition = 0;
  for (const auto& [key, value] : want) {
    in_partition += base::PartitionOfToken(base::Token(key), bits) == partition ? 1 : 0;
  }
  EXPECT_GE(in_partition, 200u);
  EXPECT_EQ(r->keys_repaired, in_partition);
  EXPECT_TRUE(r->agreed);
  for (const auto& [key, value] : want) {
    auto got = third->Get(key, ReadAt(Consistency::kOne));
    ASSERT_OK(got.status());
    ASSERT_TRUE(got->has_value()) << key;
    EXPECT_EQ((*got)->value, value) << key;
  }
}

// Bit rot: a table file of one replica corrupted on disk (a run of bytes overwritten in its
// middle, while the node is stopped) is found by the first read that meets it, dropped with the
// ranges its keys span, and those ranges are repaired from the other replicas: the node then
// answers every key from its own copy, the two others stopped.
TEST_F(RepairTest, ACorruptTableFileIsFoundDroppedAndRepairedFromTheOtherReplicas) {
  ASSERT_NO_FATAL_FAILURE(StartCluster({"--repair-interval", "0", "--http", "127.0.0.1:0"}));
  std::map<std::string, std::string> want;
  {
    auto client = Node(0);
    std::mt19937_64 rng(42);
    std::vector<std::pair<std::string, std::string>> batch;
    for (int i = 0; i < 3000; ++i) {
      std::string key = fmt::format("rot/{:05}", i);
      // Bytes that do not compress, so that the data makes table files of some size.
      std::string value = fmt::format("{:05}", i);
      for (int b = 0; b < 1000; ++b) value.push_back(static_cast<char>('!' + rng() % 90));
      want[key] = value;
      batch.emplace_back(std::move(key), std::move(value));
      if (batch.size() == 100) {
        ASSERT_OK(client->BatchPut(batch, WriteAt(Consistency::kAll)).status());
        batch.clear();
      }
    }
  }
  // Node 3's data into table files, then a run of its biggest one overwritten.
  ASSERT_OK(Node(2)->Compact().status());
  ASSERT_EQ(cluster_->node(2).Stop(), 0);
  std::filesystem::path biggest;
  uintmax_t size = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.Sub("cluster") + "/node3/db")) {
    if (entry.path().extension() == ".sst" && entry.file_size() > size) {
      size = entry.file_size();
      biggest = entry.path();
    }
  }
  ASSERT_GT(size, uintmax_t{1} << 20) << "no table file of the data";
  {
    std::fstream f(biggest, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 2));
    const std::string garbage(8192, '\xab');
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
    ASSERT_TRUE(f.good());
  }
  ASSERT_OK(cluster_->Restart(2));
  ASSERT_OK(cluster_->WaitForQuiet());

  // Reads through node 3 meet the corrupt blocks: none fails (a replica that fails is doubled by
  // another), though once the scrub has dropped the ranges and until they are repaired a read
  // at ONE may find a key missing, as after any outage of a replica.
  auto third = Node(2);
  size_t failed = 0, missing = 0;
  for (const auto& [key, value] : want) {
    auto got = third->Get(key, ReadAt(Consistency::kOne));
    if (!got.ok()) {
      ++failed;
      ADD_FAILURE() << key << ": " << got.status().ToString();
    } else if (!got->has_value() || (*got)->value != value) {
      ++missing;
    }
  }
  std::cout << fmt::format("reads through node 3 before the repair: {} of {} failed, {} missing\n",
                           failed, want.size(), missing);
  auto metric = [&](const std::string& name) -> std::optional<uint64_t> {
    auto m = HttpGet(cluster_->node(2).http_address(), "/metrics");
    if (m.status != 200) return std::nullopt;
    const size_t at = m.body.find("\n" + name + " ");
    if (at == std::string::npos) return std::nullopt;
    return std::stoull(m.body.substr(at + name.size() + 2));
  };
  ASSERT_OK(WaitUntil(
      [&]() -> ::testing::AssertionResult {
        const auto corrupt = metric("cairn_scrub_corrupt_files_total");
        const auto pending = metric("cairn_scrub_ranges_to_repair");
        const auto dropped = metric("cairn_scrub_ranges_dropped_total");
        return ::testing::AssertionResult(corrupt && *corrupt >= 1 && pending && *pending == 0 &&
                                          dropped && *dropped >= 1)
               << "corrupt files " << corrupt.value_or(0) << ", ranges dropped "
               << dropped.value_or(0) << ", still to repair " << pending.value_or(0);
      },
      120s, "the scrub to drop the corrupt file and repair its ranges"));
  EXPECT_GE(metric("cairn_storage_corruptions_total").value_or(0), 1u);
  EXPECT_NE(cluster_->node(2).Log().find("was corrupt"), std::string::npos)
      << cluster_->node(2).Log();

  // Node 3's own copy is whole again: the others stopped, it answers everything at ONE.
  ASSERT_EQ(cluster_->node(0).Stop(), 0);
  ASSERT_EQ(cluster_->node(1).Stop(), 0);
  for (const auto& [key, value] : want) {
    auto got = third->Get(key, ReadAt(Consistency::kOne));
    ASSERT_TRUE(got.ok()) << key << ": " << got.status().ToString();
    ASSERT_TRUE(got->has_value()) << key;
    EXPECT_EQ((*got)->value, value) << key;
  }
}

// Accounting: tombstones show in each node's DEAD bytes (cairn status) once in table files, and
// go once a repair where every replica agreed has purged them and a compaction has run.
TEST_F(RepairTest, TombstonesShowAsDeadBytesUntilRepairPurgesThem) {
  ASSERT_NO_FATAL_FAILURE(
      StartCluster({"--hint-window", "1", "--purge-margin", "0", "--repair-interval", "0"}));
  auto client = Node(0);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 400; ++i) {
    std::string value;
    for (int b = 0; b < 500; ++b) value.push_back(static_cast<char>('!' + rng() % 90));
    ASSERT_OK(client->Put(fmt::format("d{:03}", i), value, WriteAt(Consistency::kAll)).status());
  }
  for (int i = 0; i < 200; ++i) {
    ASSERT_OK(client->Delete(fmt::format("d{:03}", i), WriteAt(Consistency::kAll)).status());
  }
  auto compact_all = [&] {
    for (size_t n = 0; n < 3; ++n) ASSERT_OK(Node(n)->Compact().status());
  };
  // Every node's DEAD figure as node 1 sees it (spread by gossip).
  auto dead = [&](auto predicate, const char* what) {
    return WaitUntil(
        [&]() -> ::testing::AssertionResult {
          auto status = client->ClusterStatus();
          if (!status.ok()) return ::testing::AssertionFailure() << status.status().ToString();
          std::string figures;
          bool all = status->nodes.size() == 3;
          for (const NodeInfo& n : status->nodes) {
            figures += fmt::format(" {}/{}", n.dead_bytes, n.load_bytes);
            all = all && predicate(n);
          }
          return ::testing::AssertionResult(all) << "dead/load bytes:" << figures;
        },
        30s, what);
  };
  ASSERT_NO_FATAL_FAILURE(compact_all());
  ASSERT_OK(dead([](const NodeInfo& n) { return n.dead_bytes > 0 && n.dead_bytes < n.load_bytes; },
                 "every node to count its tombstones as dead bytes"));
  auto text = RunCommand({CliPath(), "--server", cluster_->address(0), "status"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("DEAD"), std::string::npos) << text.out;

  const auto deleted = std::chrono::steady_clock::now();
  ASSERT_OK(WaitUntil(
      [&] { return ::testing::AssertionResult(std::chrono::steady_clock::now() - deleted > 2s); },
      10s, "the deletes to be older than the hint window"));
  uint32_t agreed = 0;
  const RepairReport purged = RepairAll(0, &agreed);
  EXPECT_EQ(purged.tombstones_purged, 600u);  // 200 on each of 3 replicas
  ASSERT_NO_FATAL_FAILURE(compact_all());
  ASSERT_OK(dead([](const NodeInfo& n) { return n.dead_bytes == 0 && n.load_bytes > 0; },
                 "the dead bytes to go after the purge and a compaction"));
}

TEST_F(RepairTest, TheCliRepairsWithASummaryAndRefusesBadArguments) {
  ASSERT_NO_FATAL_FAILURE(StartCluster({}));
  auto client = Node(0);
  for (int i = 0; i < 50; ++i) {
    ASSERT_OK(client->Put(fmt::format("c{}", i), "v", WriteAt(Consistency::kAll)).status());
  }
  auto run =
      RunCommand({CliPath(), "--server", cluster_->address(0), "--json", "repair"}, "", 120s);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  auto summary = nlohmann::json::parse(run.out);
  EXPECT_EQ(summary["errors"], 0);
  EXPECT_EQ(summary["keys_repaired"], 0);
  EXPECT_EQ(summary["ranges"], summary["repaired"]);
  EXPECT_EQ(summary["ranges"], summary["agreed"]);
  EXPECT_GT(summary["ranges"].get<uint64_t>(), 0u);

  run = RunCommand({CliPath(), "--server", cluster_->address(0), "repair", "--partition", "7"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("repaired 1 of 1 ranges"), std::string::npos) << run.out;

  run =
      RunCommand({CliPath(), "--server", cluster_->address(0), "repair", "--partition", "999999"});
  EXPECT_EQ(run.exit_code, 2) << run.out << run.err;
  EXPECT_NE(run.err.find("out of range"), std::string::npos) << run.err;

  run = RunCommand({CliPath(), "--server", cluster_->address(1), "--json", "compact"}, "", 120s);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  auto compacted = nlohmann::json::parse(run.out);
  EXPECT_GT(compacted["bytes_before"].get<uint64_t>(), 0u);
  EXPECT_TRUE(compacted.contains("bytes_after"));

  run = RunCommand({CliPath(), "--server", cluster_->address(0), "--keyspace", "nope", "repair"});
  EXPECT_EQ(run.exit_code, 2) << run.out << run.err;
  EXPECT_NE(run.err.find("nope"), std::string::npos) << run.err;
}

// The run of `cairn repair` a node answers /v1/repairs about (nullptr: none with that id).
const nlohmann::json* FindRun(const nlohmann::json& answer, const std::string& id) {
  for (const nlohmann::json& run : answer["runs"]) {
    if (run["id"] == id) return &run;
  }
  return nullptr;
}

// Issue #19: a `cairn repair` run by hand shows with its progress on every node's /v1/repairs
// (and so in the web console), whatever node the CLI talked to, with the totals it printed.
TEST_F(RepairTest, ARunByHandShowsOnEveryNodeWithItsTotals) {
  ASSERT_NO_FATAL_FAILURE(StartCluster({"--http", "127.0.0.1:0", "--partitions", "64",
                                        "--hint-window", "1", "--repair-interval", "0"}));
  // Node 3 misses 40 writes whose hints expire: the repair has keys to send.
  auto client = Node(0);
  for (int i = 0; i < 40; ++i) {
    ASSERT_OK(client->Put(fmt::format("r{}", i), "before", WriteAt(Consistency::kAll)).status());
  }
  cluster_->node(2).Kill9();
  ASSERT_OK(cluster_->WaitForState(0, 2, "DOWN"));
  for (int i = 0; i < 40; ++i) {
    ASSERT_OK(
        client->Put(fmt::format("r{}", i), "while down", WriteAt(Consistency::kQuorum)).status());
  }
  ASSERT_NO_FATAL_FAILURE(RestartNode3PastTheHintWindow());

  // Nothing run yet: no run listed, every node asked. Node 2's connection to node 3 broke with
  // node 3's restart, so the first listings may miss node 3 until it is dialled again: wait
  // until one has every node.
  HttpAnswer empty;
  nlohmann::json empty_json;
  ASSERT_OK(WaitUntil(
      [&] {
        empty = HttpGet(cluster_->node(1).http_address(), "/v1/repairs");
        if (empty.status != 200) return ::testing::AssertionFailure() << empty.body;
        empty_json = nlohmann::json::parse(empty.body);
        return ::testing::AssertionResult(empty_json["nodes_missing"].empty()) << empty.body;
      },
      10s, "a repair-run listing with every node"));
  EXPECT_EQ(empty.header("content-type"), "application/json");
  EXPECT_EQ(empty_json["runs"].size(), 0u) << empty.body;
  EXPECT_EQ(empty_json["nodes_asked"], 3);

  // `cairn repair` through node 1; /v1/repairs asked of node 2, which coordinated none of it.
  auto run = RunCommand(
      {CliPath(), "--server", cluster_->address(0), "--keyspace", "default", "--json", "repair"},
      "", 120s);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  const auto summary = nlohmann::json::parse(run.out);
  const std::string run_id = summary["run_id"].get<std::string>();
  ASSERT_EQ(run_id.size(), 16u) << run.out;
  EXPECT_EQ(summary["ranges"], 64);
  EXPECT_EQ(summary["keys_repaired"], 40) << "node 3 missed 40 writes";

  auto answer = HttpGet(cluster_->node(1).http_address(), "/v1/repairs");
  ASSERT_EQ(answer.status, 200) << answer.body;
  const auto listed = nlohmann::json::parse(answer.body);
  EXPECT_EQ(listed["nodes_asked"], 3);
  const nlohmann::json* r = FindRun(listed, run_id);
  ASSERT_NE(r, nullptr) << "run " << run_id << " not in " << answer.body;
  EXPECT_EQ((*r)["state"], "finished") << r->dump();
  EXPECT_EQ((*r)["ranges_total"], 64);
  EXPECT_EQ((*r)["ranges_done"], 64);
  EXPECT_EQ((*r)["ranges_repaired"], summary["repaired"]);
  EXPECT_EQ((*r)["ranges_skipped"], summary["skipped"]);
  EXPECT_EQ((*r)["ranges_failed"], 0);
  EXPECT_EQ((*r)["keys_repaired"], summary["keys_repaired"]);
  EXPECT_EQ((*r)["bytes"], summary["bytes"]);
  EXPECT_GT((*r)["bytes"].get<uint64_t>(), 0u);
  EXPECT_EQ((*r)["tombstones_purged"], summary["tombstones_purged"]);
  EXPECT_EQ((*r)["keyspaces"], nlohmann::json::array({"default"}));
  EXPECT_TRUE((*r)["partition"].is_null());
  EXPECT_TRUE((*r)["node"].is_null());
  EXPECT_TRUE((*r)["current"].is_null());
  EXPECT_TRUE((*r)["eta_s"].is_null()) << "a finished run has no ETA";
  EXPECT_EQ((*r)["nodes"], nlohmann::json::array({cluster_->node(0).node_id()}));
  EXPECT_LE((*r)["started_ms"].get<uint64_t>(), (*r)["updated_ms"].get<uint64_t>());
  EXPECT_GT((*r)["ranges_per_s"].get<double>(), 0);
  // Every node gives the same account of it.
  const auto from_third =
      nlohmann::json::parse(HttpGet(cluster_->node(2).http_address(), "/v1/repairs").body);
  const nlohmann::json* same = FindRun(from_third, run_id);
  ASSERT_NE(same, nullptr);
  EXPECT_EQ((*same)["ranges_done"], 64);
  EXPECT_EQ((*same)["keys_repaired"], summary["keys_repaired"]);

  // A run of a client that spreads its ranges round robin over nodes 1 and 2 (one partition,
  // filtered to node 3's ranges): each node holds its part, node 3 adds them up.
  ClientOptions spread;
  spread.servers = {cluster_->address(0), cluster_->address(1)};
  spread.request_timeout = 60s;
  Client spreader(spread);
  RepairRunTag tag;
  tag.id = 0x0123456789abcdefULL;
  tag.total = 6;
  tag.keyspaces = {"default"};
  for (uint32_t p = 0; p < 6; ++p) {
    tag.index = p;
    auto one = spreader.RepairRange("default", p, cluster_->node(2).node_id(), tag);
    ASSERT_OK(one.status());
  }
  // Five of a run of six: running, with an ETA.
  RepairRunTag unfinished = tag;
  unfinished.id = 0xfedcba9876543210ULL;
  for (uint32_t p = 0; p < 5; ++p) {
    unfinished.index = p;
    ASSERT_OK(spreader.RepairRange("default", p, 0, unfinished).status());
  }
  // A range of no run (an older client): not listed.
  ASSERT_OK(spreader.RepairRange("default", 7).status());
  // A range that cannot belong to its run is refused.
  RepairRunTag bad = tag;
  bad.id = 99;
  bad.index = 6;
  EXPECT_EQ(spreader.RepairRange("default", 0, 0, bad).status().code(), Code::kInvalidArgument);

  const auto both =
      nlohmann::json::parse(HttpGet(cluster_->node(2).http_address(), "/v1/repairs").body);
  EXPECT_EQ(both["runs"].size(), 3u) << both.dump();
  const nlohmann::json* spread_run = FindRun(both, "0123456789abcdef");
  ASSERT_NE(spread_run, nullptr) << both.dump();
  EXPECT_EQ((*spread_run)["state"], "finished");
  EXPECT_EQ((*spread_run)["ranges_done"], 6);
  EXPECT_EQ((*spread_run)["ranges_total"], 6);
  EXPECT_EQ((*spread_run)["node"], cluster_->node(2).node_id());
  std::vector<uint32_t> ids = {cluster_->node(0).node_id(), cluster_->node(1).node_id()};
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ((*spread_run)["nodes"], nlohmann::json(ids)) << "the client's two servers";
  const nlohmann::json* running = FindRun(both, "fedcba9876543210");
  ASSERT_NE(running, nullptr);
  EXPECT_EQ((*running)["state"], "running");
  EXPECT_EQ((*running)["ranges_done"], 5);
  EXPECT_FALSE((*running)["eta_s"].is_null());
  EXPECT_EQ(FindRun(both, fmt::format("{:016x}", 99)), nullptr);

  // A run that stops at its first range (an unknown keyspace) has failed, and says why.
  auto nope =
      RunCommand({CliPath(), "--server", cluster_->address(1), "--keyspace", "nope", "repair"});
  EXPECT_EQ(nope.exit_code, 2) << nope.out << nope.err;
  const auto after =
      nlohmann::json::parse(HttpGet(cluster_->node(0).http_address(), "/v1/repairs").body);
  bool failed_seen = false;
  for (const nlohmann::json& run_json : after["runs"]) {
    if (run_json["keyspaces"] != nlohmann::json::array({"nope"})) continue;
    failed_seen = true;
    EXPECT_EQ(run_json["state"], "failed") << run_json.dump();
    EXPECT_EQ(run_json["ranges_failed"], 1);
    EXPECT_NE(run_json["last_error"].get<std::string>().find("nope"), std::string::npos);
  }
  EXPECT_TRUE(failed_seen) << after.dump();

  // Bad requests.
  auto unknown = HttpGet(cluster_->node(0).http_address(), "/v1/repairs?state=running");
  EXPECT_EQ(unknown.status, 400) << unknown.body;
  EXPECT_NE(unknown.body.find("state"), std::string::npos) << unknown.body;
  auto post = HttpRequest(cluster_->node(0).http_address(), "POST", "/v1/repairs");
  EXPECT_EQ(post.status, 405) << post.body;
  EXPECT_EQ(post.header("allow"), "GET, HEAD");
}

}  // namespace
}  // namespace cairn::testing
