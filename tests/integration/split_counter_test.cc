// Split counters (issue #17, docs/hot-keys.md) against three real cairnd processes on loopback:
// a counter split over sub-counters takes increments through the native client, RESP and the
// CLI, reads its sum on every door, refuses other writes, hides its sub-counters from scans, and
// merges back with nothing lost; increments racing a merge, and a node killed and restarted
// mid-run, lose no acknowledged increment and apply none twice.
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cairn/client.h"
#include "tests/harness/process.h"
#include "tests/support/options.h"
#include "tests/support/seed.h"
#include "tests/support/socket_read.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace cairn::testing {
namespace {

using namespace std::chrono_literals;

std::string Command(std::initializer_list<std::string> args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

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

uint64_t SplitIncrements(LocalCluster& cluster) {
  uint64_t total = 0;
  for (size_t i = 0; i < cluster.size(); ++i) {
    ClientOptions o;
    o.servers = {cluster.address(i)};
    Client c(o);
    auto m = c.Metrics();
    if (m.ok() && m->contains("split_counters.increments")) {
      total += m->at("split_counters.increments");
    }
  }
  return total;
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
// into 16 while a node is killed (-9) and restarted.
TEST(SplitCounterTest, ANodeKilledAndRestartedMidRunLosesNoIncrement) {
  TempDir dir;
  auto cluster = StartCluster(dir);
  ASSERT_NE(cluster, nullptr);
  Client admin(Every(*cluster));
  ASSERT_OK(admin.SplitCounter("", "hot", 16).status());
  constexpr uint64_t kTotal = 12'000;
  std::atomic<uint64_t> started{0}, acked{0}, maybe{0}, refused{0};
  std::mutex errors_mu;
  std::string errors;
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 32; ++t) {
    threads.emplace_back([&, t] {
      Client c(Every(*cluster, t));
      while (started.fetch_add(1) < kTotal) {
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
  EXPECT_OK(WaitUntil([&] { return acked.load() >= kTotal / 3; }, 120s, "a third acknowledged"));
  cluster->node(2).Kill9();
  EXPECT_OK(
      WaitUntil([&] { return acked.load() >= 2 * kTotal / 3; }, 120s, "two thirds acknowledged"));
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

}  // namespace
}  // namespace cairn::testing
