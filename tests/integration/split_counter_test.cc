// Split counters (issue #17, docs/hot-keys.md) against three real cairnd processes on loopback:
// a counter split over sub-counters takes increments through the native client, RESP and the
// CLI, reads its sum on every door, refuses other writes, hides its sub-counters from scans, and
// merges back with nothing lost; increments racing a merge, and a node killed and restarted
// mid-run, lose no acknowledged increment and apply none twice.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cairn/client.h"
#include "tests/harness/process.h"
#include "tests/support/keyspace.h"
#include "tests/support/options.h"
#include "tests/support/resp_command.h"
#include "tests/support/seed.h"
#include "tests/support/socket_read.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace cairn::testing {
namespace {

using namespace std::chrono_literals;

// One RESP command on a new connection; the first reply line (and a bulk string's body).
std::string Resp(const std::string& address, std::initializer_list<std::string> args) {
  const int fd = ConnectTcp(address);
  if (fd < 0) return "(no connection)";
  SendAll(fd, Command(args));
  auto complete = [](const std::string& b) {
    const size_t end = b.find("\r\n");
    if (end == std::string::npos) return false;
    if (b[0] != '$' || b.starts_with("$-1")) return true;
    return b.size() >= end + 2 + std::stoul(b.substr(1, end - 1)) + 2;
  };
  SocketRead got = ReadUntil(fd, 10s, complete, "");
  ::close(fd);
  return got.bytes;
}

std::unique_ptr<LocalCluster> StartCluster(TempDir& dir) {
  ClusterOptions options;
  options.extra_args = {"--resp", "127.0.0.1:0"};
  auto started = LocalCluster::Start(dir.Sub("cluster"), options);
  EXPECT_TRUE(started.ok()) << started.status().ToString();
  return started.ok() ? std::move(*started) : nullptr;
}

ClientOptions Every(const LocalCluster& cluster, size_t first = 0) {
  ClientOptions o;
  for (size_t i = 0; i < cluster.size(); ++i) {
    o.servers.push_back(cluster.address((first + i) % cluster.size()));
  }
  o.request_timeout = 20s;
  return o;
}

// The sum of a metric over the nodes of `cluster` (0 where a node does not answer).
uint64_t MetricSum(LocalCluster& cluster, const std::string& name) {
  uint64_t total = 0;
  for (size_t i = 0; i < cluster.size(); ++i) {
    ClientOptions o;
    o.servers = {cluster.address(i)};
    Client c(o);
    auto m = c.Metrics();
    if (m.ok() && m->contains(name)) total += m->at(name);
  }
  return total;
}

uint64_t SplitIncrements(LocalCluster& cluster) {
  return MetricSum(cluster, "split_counters.increments");
}

TEST(SplitCounterTest, IncrementsSpreadAndEveryDoorReadsTheSum) {
  TempDir dir;
  auto cluster = StartCluster(dir);
  ASSERT_NE(cluster, nullptr);
  Client c(Every(*cluster));
  ASSERT_EQ(c.Increment("hits", 5)->value, "5");
  ASSERT_OK(c.Put("plain", "p").status());

  auto split = c.SplitCounter("", "hits", 4);
  ASSERT_TRUE(split.ok()) << split.status().ToString();
  EXPECT_EQ(split->value, "5");
  EXPECT_EQ(split->shards, 4u);
  // Splitting again with the same count is nothing to do; with another, a clear refusal.
  ASSERT_OK(c.SplitCounter("", "hits", 4).status());
  EXPECT_EQ(c.SplitCounter("", "hits", 8).status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(c.SplitCounter("", "plain", 4).status().code(), Code::kFailedPrecondition)
      << "a value that is not a number cannot be split";

  // 100 increments of 1 through every node, natively; each answer is an estimate.
  std::vector<std::unique_ptr<Client>> per_node;
  for (size_t i = 0; i < 3; ++i) {
    ClientOptions o;
    o.servers = {cluster->address(i)};
    o.token_aware = false;
    per_node.push_back(std::make_unique<Client>(o));
  }
  for (int i = 0; i < 100; ++i) {
    auto r = per_node[i % 3]->Increment("hits", 1);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->estimate);
  }
  EXPECT_EQ(SplitIncrements(*cluster), 100u) << "the increments went to sub-counters";
  // The hot-key list names the counter, never its sub-counters (reserved key prefix).
  auto hot = c.HotKeys("", 50);
  ASSERT_TRUE(hot.ok()) << hot.status().ToString();
  bool listed = false;
  for (const HotKeyInfo& k : hot->keys) {
    EXPECT_FALSE(k.key.starts_with("\xff\xfe")) << "a sub-counter is listed";
    listed = listed || k.key == "hits";
  }
  EXPECT_TRUE(listed) << "the split counter is not among the hot keys";
  EXPECT_EQ(c.Get("hits").value()->value, "105");
  // RESP: INCRBY, DECR and GET on another node, and INCRBYFLOAT turning the sum decimal.
  const std::string resp0 = cluster->node(0).resp_address();
  const std::string resp2 = cluster->node(2).resp_address();
  EXPECT_TRUE(Resp(resp0, {"INCRBY", "hits", "10"}).starts_with(":"));
  EXPECT_TRUE(Resp(resp2, {"DECR", "hits"}).starts_with(":"));
  EXPECT_EQ(Resp(resp2, {"GET", "hits"}), "$3\r\n114\r\n");
  EXPECT_EQ(Resp(resp0, {"INCR", "plain"}).substr(0, 4), "-ERR") << "not split: Redis's error";
  // Other writes are refused with a reason, and change nothing.
  auto put = c.Put("hits", "0");
  EXPECT_EQ(put.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(put.status().message().find("split counter"), std::string::npos);
  EXPECT_EQ(c.Delete("hits").status().code(), Code::kFailedPrecondition);
  EXPECT_NE(Resp(resp0, {"SET", "hits", "1"}).find("split counter"), std::string::npos);
  EXPECT_NE(Resp(resp0, {"APPEND", "hits", "1"}).find("split counter"), std::string::npos);
  EXPECT_EQ(c.Get("hits").value()->value, "114");
  // A scan lists the counter with its sum, and no sub-counter.
  auto page = c.Scan("");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  std::vector<std::string> keys;
  for (const auto& [key, record] : page->entries) {
    keys.push_back(key);
    if (key == "hits") {
      EXPECT_EQ(record.value, "114");
    }
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"hits", "plain"}));
  EXPECT_EQ(Resp(resp2, {"DBSIZE"}), ":2\r\n");
  // The CLI: incr prints the estimate, get the sum.
  auto incr = RunCommand({CliPath(), "--server", cluster->address(1), "incr", "hits", "6"});
  EXPECT_EQ(incr.exit_code, 0) << incr.err;
  EXPECT_NE(incr.out.find("estimate"), std::string::npos) << incr.out;
  auto get = RunCommand({CliPath(), "--server", cluster->address(1), "get", "hits"});
  EXPECT_EQ(get.out, "120");

  // Merged back through the CLI: the same value, stored in the key alone.
  auto merge = RunCommand({CliPath(), "--server", cluster->address(2), "hotkeys", "merge", "hits"});
  EXPECT_EQ(merge.exit_code, 0) << merge.out << merge.err;
  EXPECT_NE(merge.out.find("merged; value 120"), std::string::npos) << merge.out;
  EXPECT_EQ(c.Get("hits").value()->value, "120");
  auto after = c.Increment("hits", 1);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->value, "121");
  EXPECT_FALSE(after->estimate);
  ASSERT_OK(c.Put("hits", "7").status());  // an ordinary key again
  EXPECT_EQ(c.Scan("").value().entries.size(), 2u);
  EXPECT_EQ(c.SplitCounter("", "hits", 0).status().code(), Code::kNotFound);
  // And split again: the sub-counters left by the merge start from zero.
  ASSERT_OK(c.SplitCounter("", "hits", 2).status());
  ASSERT_OK(c.Increment("hits", 3).status());
  EXPECT_EQ(c.Get("hits").value()->value, "10");
}

// Increments from many clients while the counter is split, then merged, then split again: the
// final value lies between the acknowledged increments and those plus the ones that timed out
// (which may have applied), so none was lost and none applied twice.
TEST(SplitCounterTest, IncrementsRacingSplitsAndMergesAreNeitherLostNorDoubled) {
  TempDir dir;
  auto cluster = StartCluster(dir);
  ASSERT_NE(cluster, nullptr);
  Client admin(Every(*cluster));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> acked{0}, maybe{0};
  std::mutex errors_mu;
  std::string errors;
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      Client c(Every(*cluster, t));
      while (!stop) {
        auto r = c.Increment("race", 1);
        if (r.ok()) {
          ++acked;
        } else if (r.status().code() == Code::kTimeout) {
          ++maybe;
        } else if (r.status().code() != Code::kUnavailable) {
          std::lock_guard lock(errors_mu);
          errors += r.status().ToString() + "\n";
        }
      }
    });
  }
  auto wait_for = [&](uint64_t n) {
    return WaitUntil([&] { return acked.load() >= n; }, 60s, "more increments acknowledged");
  };
  EXPECT_OK(wait_for(100));
  for (uint32_t shards : {8u, 0u, 3u, 0u}) {
    auto r = admin.SplitCounter("", "race", shards);
    EXPECT_TRUE(r.ok()) << shards << ": " << r.status().ToString();
    EXPECT_OK(wait_for(acked.load() + 100));
  }
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors, "");
  auto read = admin.Get("race");
  ASSERT_TRUE(read.ok() && read->has_value()) << read.status().ToString();
  const uint64_t value = std::stoull((*read)->value);
  std::printf("acknowledged %llu, timed out %llu, counter %llu\n",
              static_cast<unsigned long long>(acked.load()),
              static_cast<unsigned long long>(maybe.load()),
              static_cast<unsigned long long>(value));
  EXPECT_GE(value, acked.load());
  EXPECT_LE(value, acked.load() + maybe.load());
}

// The fault test, scaled to the suite's time: 32 clients increment one counter split
// into 16 while a node is killed (-9) and restarted. CAIRN_SPLIT_KILL_INCREMENTS=100000 runs it
// at the size (about a minute).
TEST(SplitCounterTest, ANodeKilledAndRestartedMidRunLosesNoIncrement) {
  TempDir dir;
  auto cluster = StartCluster(dir);
  ASSERT_NE(cluster, nullptr);
  Client admin(Every(*cluster));
  ASSERT_OK(admin.SplitCounter("", "hot", 16).status());
  uint64_t total = 12'000;
  if (const char* n = std::getenv("CAIRN_SPLIT_KILL_INCREMENTS")) total = std::stoull(n);
  std::atomic<uint64_t> started{0}, acked{0}, maybe{0}, refused{0};
  std::mutex errors_mu;
  std::string errors;
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 32; ++t) {
    threads.emplace_back([&, t] {
      Client c(Every(*cluster, t));
      while (started.fetch_add(1) < total) {
        auto r = c.Increment("hot", 1);
        if (r.ok()) {
          ++acked;
        } else if (r.status().code() == Code::kTimeout) {
          ++maybe;
        } else if (r.status().code() == Code::kUnavailable) {
          ++refused;  // nothing written
        } else {
          std::lock_guard lock(errors_mu);
          errors += r.status().ToString() + "\n";
        }
      }
    });
  }
  EXPECT_OK(WaitUntil([&] { return acked.load() >= total / 3; }, 120s, "a third acknowledged"));
  cluster->node(2).Kill9();
  EXPECT_OK(
      WaitUntil([&] { return acked.load() >= 2 * total / 3; }, 120s, "two thirds acknowledged"));
  EXPECT_OK(cluster->Restart(2));
  for (auto& t : threads) t.join();
  // The read below goes through the restarted node: every node must see every other UP first.
  for (size_t observer = 0; observer < 3; ++observer) {
    for (size_t subject = 0; subject < 3; ++subject) {
      if (observer != subject) ASSERT_OK(cluster->WaitForState(observer, subject, "UP"));
    }
  }
  EXPECT_EQ(errors, "");
  ClientOptions o = Every(*cluster, 2);
  o.token_aware = false;
  Client reader(o);  // through the restarted node
  auto read = reader.Get("hot");
  ASSERT_TRUE(read.ok() && read->has_value()) << read.status().ToString();
  const uint64_t value = std::stoull((*read)->value);
  std::printf(
      "acknowledged %llu, timed out %llu, refused %llu, counter %llu\n",
      static_cast<unsigned long long>(acked.load()), static_cast<unsigned long long>(maybe.load()),
      static_cast<unsigned long long>(refused.load()), static_cast<unsigned long long>(value));
  EXPECT_GE(value, acked.load());
  EXPECT_LE(value, acked.load() + maybe.load());
}

// Threads that are joined whatever happens (an ASSERT returning early included).
class Workers {
 public:
  ~Workers() { Stop(); }
  void Start(std::function<void(const std::atomic<bool>& stop)> body) {
    threads_.emplace_back([this, body = std::move(body)] { body(stop_); });
  }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// Increments of one counter through one node, counted as acknowledged or unknown (TIMEOUT: may
// have applied); anything else is an error to report.
struct IncrementCounts {
  std::atomic<uint64_t> acked{0}, maybe{0};
  std::mutex mu;
  std::string errors;
};
void IncrementUntilStopped(const LocalCluster& cluster, size_t node, const std::string& keyspace,
                           const std::string& key, IncrementCounts& counts,
                           const std::atomic<bool>& stop) {
  ClientOptions o;
  o.servers = {cluster.address(node)};
  o.token_aware = false;
  o.request_timeout = 20s;
  Client c(o);
  WriteOptions w;
  w.keyspace = keyspace;
  while (!stop) {
    auto r = c.Increment(key, 1, w);
    if (r.ok()) {
      ++counts.acked;
    } else if (r.status().code() == Code::kTimeout) {
      ++counts.maybe;
    } else if (r.status().code() != Code::kUnavailable) {
      std::lock_guard lock(counts.mu);
      counts.errors += r.status().ToString() + "\n";
    }
  }
}

// The split shards `cairn hotkeys` reports for (keyspace, key); 0 when not split or not listed.
uint32_t SplitShardsListed(Client& c, const std::string& keyspace, const std::string& key) {
  auto hot = c.HotKeys(keyspace, 50);
  if (!hot.ok()) return 0;
  for (const HotKeyInfo& k : hot->keys) {
    if (k.key == key) return k.split_shards;
  }
  return 0;
}

// Issue #17, item 3: a counter incremented past its keyspace's auto_split_increments_per_s (10,
// the lowest, so that an ASan build on a busy machine gets past it; over the cluster, through
// every node) is split automatically,
// into the keyspace's shard count, and keeps every increment; the same load in a keyspace without
// the option, and a key only SET at a high rate, are never split.
TEST(SplitCounterTest, HotCountersAreSplitAutomaticallyOnlyWhereTheKeyspaceAllowsIt) {
  TempDir dir;
  auto cluster = StartCluster(dir);
  ASSERT_NE(cluster, nullptr);
  // The option through the CLI, with its range checked.
  auto bad = RunCommand({CliPath(), "--server", cluster->address(0), "keyspace", "create", "bad",
                         "--auto-split-increments-per-s", "5"});
  EXPECT_EQ(bad.exit_code, 2) << "refused: INVALID_ARGUMENT";
  EXPECT_NE(bad.err.find("0 (off) or 10 to 10000000, not 5"), std::string::npos) << bad.err;
  auto created =
      RunCommand({CliPath(), "--server", cluster->address(0), "keyspace", "create", "auto",
                  "--auto-split-increments-per-s", "10", "--auto-split-shards", "8"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  Client admin(Every(*cluster));
  KeyspaceSpec manual("manual");
  ASSERT_OK(admin.CreateKeyspace(manual).status());
  for (size_t n = 0; n < cluster->size(); ++n) {
    ClientOptions o;
    o.servers = {cluster->address(n)};
    Client node(o);
    for (const char* ks : {"auto", "manual"}) {
      ASSERT_OK(WaitUntil([&] { return KnowsKeyspace(node, ks); }, 10s,
                          fmt::format("node {} to know keyspace {}", n, ks)));
    }
  }
  auto described =
      RunCommand({CliPath(), "--server", cluster->address(1), "keyspace", "describe", "auto"});
  EXPECT_NE(described.out.find("at 10 increments/s of a counter, into 8 sub-counters"),
            std::string::npos)
      << described.out;
  EXPECT_EQ(admin.DescribeKeyspace("manual")->auto_split_increments_per_s, 0u);

  // Phase 1: a counter of keyspace auto incremented through every node, alone (so that it gets
  // past the threshold on a slow machine too: unsplit increments through three coordinators
  // contend, and an ASan build on two busy cores does 15-30 a second).
  IncrementCounts in_auto, in_manual;
  std::atomic<uint64_t> sets{0};
  Workers phase1;
  for (size_t n = 0; n < cluster->size(); ++n) {
    phase1.Start([&, n](const std::atomic<bool>& stop) {
      IncrementUntilStopped(*cluster, n, "auto", "clicks", in_auto, stop);
    });
  }
  const auto started = std::chrono::steady_clock::now();
  EXPECT_OK(WaitUntil([&] { return SplitShardsListed(admin, "auto", "clicks") == 8; }, 90s,
                      "the hot counter of keyspace auto to be split (cairn hotkeys)"));
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  // Increments go on into the sub-counters for a while.
  const uint64_t split_at = in_auto.acked.load();
  EXPECT_OK(WaitUntil([&] { return in_auto.acked.load() >= split_at + 50; }, 60s,
                      "increments of the split counter"));
  // `cairn hotkeys` names the split counter as split, with its sub-counters (while it is hot:
  // a key leaves the listing within 20 s of cooling down).
  auto cli = RunCommand(
      {CliPath(), "--server", cluster->address(2), "--json", "--keyspace", "auto", "hotkeys"});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;  // EXPECT: the load's threads still run
  bool listed = false;
  const nlohmann::json listing =
      nlohmann::json::parse(cli.out, nullptr, /*allow_exceptions=*/false);
  for (const auto& k : listing.is_object() ? listing["keys"] : nlohmann::json::array()) {
    if (k["key"] == "clicks") {
      listed = true;
      EXPECT_EQ(k["split_shards"], 8) << cli.out;
    }
  }
  EXPECT_TRUE(listed) << cli.out;
  phase1.Stop();

  // Phase 2: the same load on a counter of keyspace manual, and a key of keyspace auto SET by
  // every node, until the cluster's listing shows both past auto's threshold, then 6 s more
  // (every node checks each keyspace at least once every 5 s while a key is warm).
  Workers phase2;
  for (size_t n = 0; n < cluster->size(); ++n) {
    phase2.Start([&, n](const std::atomic<bool>& stop) {
      IncrementUntilStopped(*cluster, n, "manual", "clicks", in_manual, stop);
    });
    phase2.Start([&, n](const std::atomic<bool>& stop) {
      ClientOptions o;
      o.servers = {cluster->address(n)};
      o.token_aware = false;
      Client c(o);
      WriteOptions w;
      w.keyspace = "auto";
      while (!stop) {
        if (c.Put("status", std::to_string(sets.load()), w).ok()) ++sets;
      }
    });
  }
  double manual_rate = 0, status_rate = 0;
  EXPECT_OK(WaitUntil(
      [&]() -> ::testing::AssertionResult {
        auto hot = admin.HotKeys("", 50);
        if (!hot.ok()) return ::testing::AssertionFailure() << hot.status().ToString();
        for (const HotKeyInfo& k : hot->keys) {
          if (k.keyspace == "manual" && k.key == "clicks") manual_rate = k.increments_per_s;
          if (k.keyspace == "auto" && k.key == "status") status_rate = k.writes_per_s;
        }
        return ::testing::AssertionResult(manual_rate >= 10 && status_rate >= 10)
               << "manual's counter at " << manual_rate << " increments/s, auto's SET key at "
               << status_rate << " writes/s";
      },
      60s, "both other keys past the threshold of keyspace auto (10 a second)"));
  const auto hot_since = std::chrono::steady_clock::now();
  EXPECT_OK(WaitUntil([&] { return std::chrono::steady_clock::now() - hot_since >= 6s; }, 20s,
                      "six seconds of load past the threshold"));
  // Still not split, under that load.
  auto hot = admin.HotKeys("", 50);
  phase2.Stop();
  const uint64_t auto_splits = MetricSum(*cluster, "split_counters.auto");
  const uint64_t split_increments = MetricSum(*cluster, "split_counters.increments");
  EXPECT_EQ(in_auto.errors, "");
  EXPECT_EQ(in_manual.errors, "");
  std::printf(
      "split after %.1f s; auto: %llu acknowledged, %llu unknown; manual: %llu, %llu at %.0f/s; "
      "%llu sets at %.0f/s\n",
      took, static_cast<unsigned long long>(in_auto.acked.load()),
      static_cast<unsigned long long>(in_auto.maybe.load()),
      static_cast<unsigned long long>(in_manual.acked.load()),
      static_cast<unsigned long long>(in_manual.maybe.load()), manual_rate,
      static_cast<unsigned long long>(sets.load()), status_rate);
  EXPECT_EQ(auto_splits, 1u) << "one node made the split; the others found it made";
  EXPECT_GT(split_increments, 0u) << "increments went to the sub-counters";

  ASSERT_TRUE(hot.ok()) << hot.status().ToString();
  bool manual_listed = false, status_listed = false;
  for (const HotKeyInfo& k : hot->keys) {
    if (k.keyspace == "manual" && k.key == "clicks") {
      manual_listed = true;
      EXPECT_EQ(k.split_shards, 0u);
    }
    if (k.keyspace == "auto" && k.key == "status") {
      status_listed = true;
      EXPECT_EQ(k.increments_per_s, 0);
      EXPECT_EQ(k.split_shards, 0u);
    }
    if (k.keyspace == "auto" && k.key == "clicks") {
      EXPECT_EQ(k.split_shards, 8u);
    }
  }
  EXPECT_TRUE(manual_listed) << "the counter of keyspace manual is not among the hot keys";
  EXPECT_TRUE(status_listed) << "the SET key is not among the hot keys";
  ReadOptions read_manual;
  read_manual.keyspace = "manual";
  // Not a split counter: an ordinary write to it is allowed (it would be refused if split).
  WriteOptions in_manual_ks;
  in_manual_ks.keyspace = "manual";
  auto manual_value = admin.Get("clicks", read_manual);
  ASSERT_TRUE(manual_value.ok() && manual_value->has_value());
  const uint64_t manual_count = std::stoull((*manual_value)->value);
  EXPECT_GE(manual_count, in_manual.acked.load());
  EXPECT_LE(manual_count, in_manual.acked.load() + in_manual.maybe.load());
  EXPECT_OK(admin.Put("clicks", "0", in_manual_ks).status());

  // The split counter's sum: every acknowledged increment, at most the unknown ones besides.
  ReadOptions read_auto;
  read_auto.keyspace = "auto";
  auto value = admin.Get("clicks", read_auto);
  ASSERT_TRUE(value.ok() && value->has_value()) << value.status().ToString();
  const uint64_t count = std::stoull((*value)->value);
  EXPECT_GE(count, in_auto.acked.load());
  EXPECT_LE(count, in_auto.acked.load() + in_auto.maybe.load());
  WriteOptions in_auto_ks;
  in_auto_ks.keyspace = "auto";
  EXPECT_EQ(admin.Put("clicks", "0", in_auto_ks).status().code(), Code::kFailedPrecondition)
      << "a split counter refuses plain writes";
  // The SET key was never split: a plain write to it is still allowed.
  EXPECT_OK(admin.Put("status", "x", in_auto_ks).status());
}

}  // namespace
}  // namespace cairn::testing
