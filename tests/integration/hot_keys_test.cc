// Hot-key detection (issue #17) against three real cairnd processes on loopback: a key read far
// more often than the others tops the cluster's list, with its reads and writes told apart,
// through the client API, `cairn hotkeys`, the HTTP endpoint and /metrics.
#include <algorithm>
#include <chrono>
#include <random>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cairn/client.h"
#include "tests/harness/process.h"
#include "tests/ops/http_get.h"
#include "tests/support/options.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace cairn::testing {
namespace {

using namespace std::chrono_literals;

TEST(HotKeysTest, AKeyReadFarMoreThanOthersTopsTheClusterListOnEveryDoor) {
  TempDir dir;
  ClusterOptions options;
  options.extra_args = {"--http", "127.0.0.1:0"};
  auto started = LocalCluster::Start(dir.Sub("cluster"), options);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  std::unique_ptr<LocalCluster> cluster = std::move(*started);
  std::vector<std::unique_ptr<Client>> clients;
  for (size_t i = 0; i < 3; ++i) {
    ClientOptions o;
    o.servers = {cluster->address(i)};
    clients.push_back(std::make_unique<Client>(o));
  }
  ASSERT_OK(clients[0]->Put("hot", "h").status());

  // Through every node: "hot" read four times as often as "warm" is written, and a thousand
  // other keys, each read about as often as "warm" is written in all, spread thin.
  const TestSeed seed;
  std::mt19937_64 rng(seed.value());
  uint64_t hot_reads = 0, warm_writes = 0, ops = 0;
  const auto end = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < end || hot_reads < 2000) {
    Client& c = *clients[ops++ % 3];
    ASSERT_OK(c.Get("hot").status());
    ++hot_reads;
    if (hot_reads % 4 == 0) {
      ASSERT_OK(c.Put("warm", "w").status());
      ++warm_writes;
      ASSERT_OK(c.Get(fmt::format("cold:{}", rng() % 1000)).status());
    }
  }
  std::printf("%llu reads of hot, %llu writes of warm\n",
              static_cast<unsigned long long>(hot_reads),
              static_cast<unsigned long long>(warm_writes));

  auto top = clients[1]->HotKeys("", 5);
  ASSERT_OK(top.status());
  EXPECT_EQ(top->nodes_asked, 3u);
  EXPECT_TRUE(top->nodes_missing.empty());
  ASSERT_GE(top->keys.size(), 2u);
  const HotKeyInfo& hot = top->keys[0];
  const HotKeyInfo& warm = top->keys[1];
  EXPECT_EQ(hot.keyspace, "default");
  EXPECT_EQ(hot.key, "hot");
  EXPECT_EQ(warm.key, "warm");
  EXPECT_GT(hot.reads_per_s, 0);
  EXPECT_EQ(hot.writes_per_s, 0) << "hot was only read";
  EXPECT_EQ(warm.reads_per_s, 0) << "warm was only written";
  // Sampled one in eight: four times the rate within a generous margin.
  const double ratio = hot.reads_per_s / warm.writes_per_s;
  EXPECT_GT(ratio, 2.5);
  EXPECT_LT(ratio, 6.5);
  // Every node coordinated reads of it (each client talks to its own node).
  EXPECT_EQ(hot.nodes.size(), 3u);
  double per_node = 0;
  for (const auto& [node, rate] : hot.nodes) per_node += rate;
  EXPECT_NEAR(per_node, hot.reads_per_s + hot.writes_per_s, 1e-6 * per_node + 1e-9);
  for (size_t i = 2; i < top->keys.size(); ++i) {
    EXPECT_LT(top->keys[i].reads_per_s * 5, hot.reads_per_s) << top->keys[i].key;
  }

  // One keyspace, or one that does not exist.
  auto only_default = clients[0]->HotKeys("default", 1);
  ASSERT_OK(only_default.status());
  ASSERT_EQ(only_default->keys.size(), 1u);
  EXPECT_EQ(only_default->keys[0].key, "hot");
  auto unknown = clients[0]->HotKeys("no_such_keyspace", 5);
  EXPECT_EQ(unknown.status().code(), Code::kInvalidArgument) << unknown.status().ToString();
  EXPECT_EQ(clients[0]->HotKeys("", 1001).status().code(), Code::kInvalidArgument);

  // cairn hotkeys --json.
  auto cli =
      RunCommand({CliPath(), "--server", cluster->address(2), "--json", "hotkeys", "--limit", "2"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  auto cli_json = nlohmann::json::parse(cli.out);
  ASSERT_EQ(cli_json["keys"].size(), 2u) << cli.out;
  EXPECT_EQ(cli_json["keys"][0]["key"], "hot");
  EXPECT_EQ(cli_json["keys"][0]["nodes"].size(), 3u);
  auto text = RunCommand({CliPath(), "--server", cluster->address(2), "hotkeys"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("reads/s"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("hot"), std::string::npos) << text.out;

  // GET /v1/hotkeys, and its refusals.
  auto http = HttpGet(cluster->node(0).http_address(), "/v1/hotkeys?limit=1&keyspace=default");
  ASSERT_EQ(http.status, 200) << http.body;
  auto http_json = nlohmann::json::parse(http.body);
  ASSERT_EQ(http_json["keys"].size(), 1u);
  EXPECT_EQ(http_json["keys"][0]["key"], "hot");
  EXPECT_EQ(http_json["nodes_asked"], 3);
  EXPECT_EQ(HttpGet(cluster->node(0).http_address(), "/v1/hotkeys?limit=0").status, 400);
  EXPECT_EQ(HttpGet(cluster->node(0).http_address(), "/v1/hotkeys?keyspace=nope").status, 400);
  EXPECT_EQ(HttpGet(cluster->node(0).http_address(), "/v1/hotkeys?limt=3").status, 400);

  // A token-aware client spreads the reads of one key over its replicas (here every node): each
  // coordinated a fair part of them.
  ClientOptions spread_options;
  spread_options.servers = cluster->addresses();
  spread_options.token_aware = true;
  Client spreader(spread_options);
  ReadOptions one;
  one.consistency = Consistency::kOne;
  for (int i = 0; i < 3000; ++i) ASSERT_OK(spreader.Get("spread", one).status());
  auto listed = clients[0]->HotKeys("default", 5);
  ASSERT_OK(listed.status());
  auto spread = std::find_if(listed->keys.begin(), listed->keys.end(),
                             [](const HotKeyInfo& k) { return k.key == "spread"; });
  ASSERT_NE(spread, listed->keys.end()) << "the key read 3000 times is not listed";
  ASSERT_EQ(spread->nodes.size(), 3u) << "the reads of one key went to fewer nodes";
  for (const auto& [node, rate] : spread->nodes) {
    // A third each, sampled one in eight: 375 samples in all.
    EXPECT_GT(rate, spread->reads_per_s * 0.15) << "node " << node;
  }

  // The node's own top keys in /metrics (its rank there depends on how the reads of "spread",
  // above, and of "hot" fell on this node).
  auto metrics = HttpGet(cluster->node(0).http_address(), "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("keyspace=\"default\",key=\"hot\",op=\"read\"}"), std::string::npos)
      << metrics.body.substr(0, 2000);
  EXPECT_NE(metrics.body.find("cairn_hot_key_ops_per_second{rank=\"1\","), std::string::npos);
}

// Replica reads the cluster's coordinators asked for, summed over the nodes.
uint64_t ReplicaReads(LocalCluster& cluster) {
  uint64_t sum = 0;
  for (size_t i = 0; i < 3; ++i) {
    ClientOptions o;
    o.servers = {cluster.address(i)};
    Client c(o);
    auto m = c.Metrics();
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    if (m.ok() && m->contains("replica.reads")) sum += m->at("replica.reads");
  }
  return sum;
}

TEST(HotKeysTest, ClientsCacheReadsOfAHotKeyAtOneAndSeeWritesWithinTheTtl) {
  TempDir dir;
  ClusterOptions options;
  // A low bar for hot, so that a test's reads reach it; the default TTL (100 ms).
  options.extra_args = {"--hot-key-ops-per-s", "50"};
  auto started = LocalCluster::Start(dir.Sub("cluster"), options);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  std::unique_ptr<LocalCluster> cluster = std::move(*started);
  ClientOptions caching_options;
  caching_options.servers = cluster->addresses();
  Client caching(caching_options);
  ClientOptions plain_options = caching_options;
  plain_options.cache_hot_keys = false;
  Client plain(plain_options);
  Client writer(plain_options);
  ASSERT_OK(writer.Put("cached", "v1").status());
  ReadOptions one;
  one.consistency = Consistency::kOne;

  // Until the cluster finds the key hot (its reads then carry a cache hint), reads go to it.
  ASSERT_OK(WaitUntil(
      [&]() -> Status {
        for (int i = 0; i < 200; ++i) {
          if (auto r = plain.Get("cached", one); !r.ok()) return r.status();
        }
        const uint64_t before = ReplicaReads(*cluster);
        for (int i = 0; i < 20; ++i) {
          if (auto r = caching.Get("cached", one); !r.ok()) return r.status();
        }
        return ReplicaReads(*cluster) - before < 10 ? Status::Ok()
                                                    : Status::Unavailable("not cached yet");
      },
      20s, "the key is found hot and cached"));

  // 2,000 reads of it through each client: the caching one costs the cluster at least ten times
  // fewer replica reads; a few reads of another key through it (too few to make it hot: 2,000
  // would, at 50 a second) are not cached at all.
  auto reads_of = [&](Client& c, const std::string& key, int n = 2000) {
    const uint64_t before = ReplicaReads(*cluster);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
      auto r = c.Get(key, one);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return std::make_pair(ReplicaReads(*cluster) - before, seconds);
  };
  const auto [plain_reads, plain_s] = reads_of(plain, "cached");
  const auto [cached_reads, cached_s] = reads_of(caching, "cached");
  const auto [other_reads, other_s] = reads_of(caching, "not-hot", 20);
  std::printf(
      "2000 reads of a hot key at ONE: %llu replica reads without the cache (%.2f s), %llu "
      "with it (%.2f s); 20 reads of another key with it: %llu\n",
      static_cast<unsigned long long>(plain_reads), plain_s,
      static_cast<unsigned long long>(cached_reads), cached_s,
      static_cast<unsigned long long>(other_reads));
  EXPECT_GE(plain_reads, 2000u);
  EXPECT_LE(cached_reads * 10, plain_reads);
  EXPECT_GE(other_reads, 20u) << "a key that is not hot must not be cached";

  // A write by another client is seen within the TTL (100 ms, and the time a read takes).
  ASSERT_OK(writer.Put("cached", "v2").status());
  const auto written = std::chrono::steady_clock::now();
  ASSERT_OK(WaitUntil(
      [&]() -> Status {
        auto r = caching.Get("cached", one);
        if (!r.ok()) return r.status();
        if (!*r || (*r)->value != "v2") return Status::Unavailable("still v1");
        return Status::Ok();
      },
      5s, "the caching client sees the write"));
  const auto seen_after = std::chrono::steady_clock::now() - written;
  EXPECT_LT(seen_after, 600ms) << "the staleness bound is the 100 ms TTL";
  // Its own write drops what it cached of the key: the next read goes to the cluster (where ONE
  // may still meet a replica that has not applied the write, as without a cache); a QUORUM read
  // is never answered from the cache.
  ASSERT_OK(caching.Put("cached", "v3").status());
  const uint64_t before_own = ReplicaReads(*cluster);
  ASSERT_OK(caching.Get("cached", one).status());
  EXPECT_GE(ReplicaReads(*cluster) - before_own, 1u) << "a read after its own write was cached";
  ASSERT_OK(writer.Put("cached", "v4").status());
  ReadOptions quorum;
  quorum.consistency = Consistency::kQuorum;
  auto strong = caching.Get("cached", quorum);
  ASSERT_OK(strong.status());
  ASSERT_TRUE(strong->has_value());
  EXPECT_EQ((*strong)->value, "v4");
}

}  // namespace
}  // namespace cairn::testing
