#include "cluster/placement.h"

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "base/hash.h"
#include "tests/support/placement_members.h"

namespace cairn::cluster {
namespace {

static_assert(kBalancedPrefix >= kMaxReplicationFactor,
              "every replication factor a keyspace may have must get balanced prefixes");

constexpr uint32_t kBits = 10;  // 1024 partitions, the default
constexpr uint32_t kQ = 1u << kBits;

using cairn::testing::DcMembers;
using cairn::testing::MakeMember;
using cairn::testing::NodeId;

// n nodes over `racks` racks whose sizes differ by at most one.
std::vector<uint32_t> NearEqualRacks(uint32_t n, uint32_t racks) {
  std::vector<uint32_t> sizes;
  for (uint32_t r = 0; r < racks; ++r) sizes.push_back(n / racks + (r < n % racks ? 1 : 0));
  return sizes;
}

PartitionMap MustCompute(std::vector<Member> members, uint32_t bits = kBits) {
  auto map = PartitionMap::Compute(std::move(members), bits);
  EXPECT_TRUE(map.ok()) << map.status().ToString();
  return std::move(map).value();
}

std::string RackOf(const PartitionMap& map, uint32_t node_id) {
  for (const Member& m : map.members()) {
    if (m.node_id == node_id) return m.rack;
  }
  ADD_FAILURE() << "no node " << node_id;
  return "";
}

// Whether the rack spread rule lets every node be in Q*k/n first-k sets. The first k of every list
// hold min(size, L) nodes of each rack plus one more from some of the racks with nodes left (L the
// level at which k runs out), so each rack's proportional share k*size/n must lie in that range.
bool MeanReachable(const std::vector<uint32_t>& rack_sizes, uint32_t k) {
  const uint32_t n = std::accumulate(rack_sizes.begin(), rack_sizes.end(), 0u);
  auto filled = [&](uint32_t level) {
    uint32_t sum = 0;
    for (uint32_t s : rack_sizes) sum += std::min(s, level);
    return sum;
  };
  uint32_t level = 0;
  while (filled(level + 1) <= k && filled(level) < n) ++level;
  const bool exact = filled(level) == k;  // no room for any "one more"
  for (uint32_t s : rack_sizes) {
    const uint32_t lo = std::min(s, level);
    const uint32_t hi = exact ? lo : std::min(s, level + 1);
    if (lo * n > k * s || k * s > hi * n) return false;
  }
  return true;
}

// Checks that every node of the DC built from `rack_sizes` is among the first k of Q*k/n lists
// within 10% (where rack spread allows it; otherwise within 10% of its own rack's mean), for every
// k up to min(n, 5). Returns the worst deviation from Q*k/n over all k, in partitions.
double CheckBalance(const std::vector<uint32_t>& rack_sizes, std::string* report) {
  const PartitionMap map = MustCompute(DcMembers("dc1", rack_sizes));
  const uint32_t n = static_cast<uint32_t>(map.members().size());
  double worst = 0;
  for (uint32_t k = 1; k <= std::min(n, 5u); ++k) {
    const double mean = double{kQ} * k / n;
    std::map<std::string, std::vector<uint32_t>> by_rack;
    double worst_k = 0;
    for (const Member& m : map.members()) {
      const uint32_t count = map.ReplicaCount(m.node_id, k);
      by_rack[m.rack].push_back(count);
      worst_k = std::max(worst_k, std::abs(count - mean));
    }
    const bool reachable = MeanReachable(rack_sizes, k);
    if (reachable) {
      EXPECT_LE(worst_k, 0.1 * mean) << "n=" << n << " k=" << k;
    }
    for (const auto& [rack, counts] : by_rack) {
      const double rack_mean =
          std::accumulate(counts.begin(), counts.end(), 0.0) / static_cast<double>(counts.size());
      for (uint32_t c : counts) {
        EXPECT_LE(std::abs(c - rack_mean), std::max(2.0, 0.1 * rack_mean))
            << "n=" << n << " k=" << k << " rack " << rack;
      }
    }
    char line[96];
    std::snprintf(line, sizeof line, " k=%u:%.0f(%.1f%%)%s", k, worst_k, 100 * worst_k / mean,
                  reachable ? "" : "*");
    *report += line;
    worst = std::max(worst, worst_k);
  }
  return worst;
}

// Of the (partition, node) pairs with the node among the partition's first k in `after`, the
// fraction that were not among its first k in `before`: the data a topology change must stream.
double ChangedFraction(const PartitionMap& before, const PartitionMap& after, uint32_t k) {
  uint32_t changed = 0;
  uint32_t total = 0;
  for (uint32_t p = 0; p < after.partitions(); ++p) {
    auto old_list = before.Preference(p, "dc1");
    auto new_list = after.Preference(p, "dc1");
    old_list = old_list.first(std::min<size_t>(k, old_list.size()));
    new_list = new_list.first(std::min<size_t>(k, new_list.size()));
    for (uint32_t id : new_list) {
      ++total;
      changed += std::find(old_list.begin(), old_list.end(), id) == old_list.end();
    }
  }
  return static_cast<double>(changed) / total;
}

TEST(PlacementTest, RejectsInvalidMembers) {
  auto code = [](std::vector<Member> members, uint32_t bits = kBits) {
    return PartitionMap::Compute(std::move(members), bits).status().code();
  };
  const Member a = MakeMember(1, "dc1", "r1");
  const Member b = MakeMember(2, "dc1", "r1");
  EXPECT_EQ(code({}), Code::kInvalidArgument);
  EXPECT_EQ(code({a, b}, kMaxPartitionBits + 1), Code::kInvalidArgument);
  Member zero = b;
  zero.node_id = 0;
  EXPECT_EQ(code({a, zero}), Code::kInvalidArgument);
  Member same_id = b;
  same_id.node_id = a.node_id;
  EXPECT_EQ(code({a, same_id}), Code::kInvalidArgument);
  Member same_address = b;
  same_address.address = a.address;
  EXPECT_EQ(code({a, same_address}), Code::kInvalidArgument);
  for (std::string Member::*field : {&Member::address, &Member::dc, &Member::rack}) {
    Member empty = b;
    empty.*field = "";
    EXPECT_EQ(code({a, empty}), Code::kInvalidArgument);
  }
  EXPECT_EQ(code({a, b}, kMaxPartitionBits), Code::kOk);
  EXPECT_EQ(code({a}, 0), Code::kOk);
}

TEST(PlacementTest, ListsAreOrderingsOfTheDcNodes) {
  std::vector<Member> members = DcMembers("dc2", {2, 2});
  for (const Member& m : DcMembers("dc1", {1, 2, 3}, 10)) members.push_back(m);
  const PartitionMap map = MustCompute(members, 6);
  EXPECT_EQ(map.partition_bits(), 6u);
  EXPECT_EQ(map.partitions(), 64u);
  EXPECT_EQ(map.dcs(), (std::vector<std::string>{"dc1", "dc2"}));
  ASSERT_EQ(map.members().size(), 10u);
  EXPECT_TRUE(
      std::is_sorted(map.members().begin(), map.members().end(),
                     [](const Member& a, const Member& b) { return a.address < b.address; }));
  for (const std::string dc : {"dc1", "dc2"}) {
    std::multiset<uint32_t> want;
    for (const Member& m : members) {
      if (m.dc == dc) want.insert(m.node_id);
    }
    for (uint32_t p = 0; p < map.partitions(); ++p) {
      const auto list = map.Preference(p, dc);
      EXPECT_EQ(std::multiset<uint32_t>(list.begin(), list.end()), want) << dc << " " << p;
    }
  }
  EXPECT_TRUE(map.Preference(0, "dc3").empty());
  EXPECT_TRUE(map.Preference(64, "dc1").empty());
  EXPECT_EQ(map.ReplicaCount(12345, 3), 0u);
}

TEST(PlacementTest, SingleNodeAndSinglePartition) {
  const PartitionMap one_node = MustCompute(DcMembers("dc1", {1}));
  EXPECT_EQ(one_node.ReplicaCount(NodeId(0), 3), kQ);
  const PartitionMap one_partition = MustCompute(DcMembers("dc1", {2, 2}), 0);
  EXPECT_EQ(one_partition.partitions(), 1u);
  EXPECT_EQ(one_partition.Preference(0, "dc1").size(), 4u);
}

TEST(PlacementTest, SameMembersInAnyOrderGiveTheSameMap) {
  std::vector<Member> members = DcMembers("dc1", {3, 3, 2});
  for (const Member& m : DcMembers("dc2", {2, 3}, 20)) members.push_back(m);
  const PartitionMap reference = MustCompute(members);
  std::mt19937 rng(7);
  for (int round = 0; round < 5; ++round) {
    std::shuffle(members.begin(), members.end(), rng);
    const PartitionMap map = MustCompute(members);
    EXPECT_EQ(map.Fingerprint(), reference.Fingerprint());
    EXPECT_EQ(map.members(), reference.members());
    for (const std::string dc : {"dc1", "dc2"}) {
      for (uint32_t p = 0; p < kQ; ++p) {
        const auto a = map.Preference(p, dc);
        const auto b = reference.Preference(p, dc);
        ASSERT_TRUE(std::equal(a.begin(), a.end(), b.begin(), b.end())) << dc << " " << p;
      }
    }
  }
  // Anything else in the topology changes the fingerprint.
  EXPECT_NE(MustCompute(members, kBits + 1).Fingerprint(), reference.Fingerprint());
  members[0].rack = "elsewhere";
  EXPECT_NE(MustCompute(members).Fingerprint(), reference.Fingerprint());
}

// The map is part of the cluster's contract: nodes must agree on it, and a new release that
// computes another map moves data. Change this value only on purpose, with a release note.
TEST(PlacementTest, AlgorithmIsPinned) {
  std::vector<Member> members = DcMembers("dc1", {3, 2, 2});
  for (const Member& m : DcMembers("dc2", {4}, 10)) members.push_back(m);
  const PartitionMap map = MustCompute(members);
  EXPECT_EQ(map.Fingerprint(), 1448663891622746801u)
      << "placement changed: every cluster would move partitions";
}

TEST(PlacementTest, BalancedAtEveryPrefixInOneRack) {
  for (uint32_t n = 3; n <= 12; ++n) {
    std::string report;
    const double worst = CheckBalance({n}, &report);
    std::printf("one rack, n=%2u: worst deviation %.0f partitions;%s\n", n, worst, report.c_str());
  }
}

TEST(PlacementTest, BalancedUpToTheLargestReplicationFactor) {
  const PartitionMap map = MustCompute(DcMembers("dc1", {6, 6, 6}));
  double worst = 0;
  for (uint32_t k = 1; k <= kMaxReplicationFactor; ++k) {
    const double mean = kQ * static_cast<double>(k) / 18;
    for (const Member& m : map.members()) {
      const double deviation = std::abs(map.ReplicaCount(m.node_id, k) - mean);
      EXPECT_LE(deviation, 0.1 * mean) << "k=" << k << " " << m.address;
      worst = std::max(worst, deviation / mean);
    }
  }
  std::printf("18 nodes, k=1..%u: worst deviation %.1f%%\n", kMaxReplicationFactor, 100 * worst);
}

TEST(PlacementTest, BalancedAtEveryPrefixOverThreeRacks) {
  std::printf(
      "(* rack spread makes Q*k/n unreachable; nodes are then checked against their rack)\n");
  for (uint32_t n = 3; n <= 12; ++n) {
    std::string report;
    const std::vector<uint32_t> sizes = NearEqualRacks(n, 3);
    const double worst = CheckBalance(sizes, &report);
    std::printf("racks %u+%u+%u: worst deviation %.0f partitions;%s\n", sizes[0], sizes[1],
                sizes[2], worst, report.c_str());
  }
}

// In every prefix of every list, a rack holds at most one node more than any other rack that still
// has nodes left; so the first k nodes are in distinct racks while k <= the number of racks.
void CheckRackSpread(const std::vector<uint32_t>& rack_sizes) {
  const PartitionMap map = MustCompute(DcMembers("dc1", rack_sizes));
  const size_t racks = rack_sizes.size();
  for (uint32_t p = 0; p < kQ; ++p) {
    const auto list = map.Preference(p, "dc1");
    std::vector<uint32_t> taken(racks, 0);
    for (uint32_t k = 1; k <= list.size(); ++k) {
      ++taken[std::stoul(RackOf(map, list[k - 1]).substr(1))];
      if (k <= racks) {
        ASSERT_EQ(std::count(taken.begin(), taken.end(), 0u), racks - k)
            << "partition " << p << ": racks repeat in the first " << k;
      }
      const uint32_t most = *std::max_element(taken.begin(), taken.end());
      for (size_t r = 0; r < racks; ++r) {
        if (taken[r] == rack_sizes[r]) continue;  // exhausted: others may hold more
        ASSERT_LE(most, taken[r] + 1) << "partition " << p << " prefix " << k << " rack " << r;
      }
    }
  }
}

TEST(PlacementTest, RackAware) {
  CheckRackSpread({2, 3, 4});
  CheckRackSpread({4, 2, 3});
  CheckRackSpread({3, 3, 3});
  CheckRackSpread({2, 2});
  CheckRackSpread({4, 3});
  CheckRackSpread({5, 1});
}

TEST(PlacementTest, MultiDc) {
  std::vector<Member> members = DcMembers("dc1", {2, 2, 2});
  for (const Member& m : DcMembers("dc2", {2, 2}, 6)) members.push_back(m);
  const PartitionMap map = MustCompute(members);
  std::map<uint32_t, std::string> dc_of;
  for (const Member& m : members) dc_of[m.node_id] = m.dc;
  for (uint32_t p = 0; p < kQ; ++p) {
    for (const std::string dc : {"dc1", "dc2"}) {
      for (uint32_t id : map.Preference(p, dc)) ASSERT_EQ(dc_of[id], dc);
    }
    const auto replicas = map.Replicas(p, {{"dc1", 3}, {"dc2", 2}});
    ASSERT_EQ(replicas.size(), 5u);
    EXPECT_EQ(std::set<uint32_t>(replicas.begin(), replicas.end()).size(), 5u);
    for (size_t i = 0; i < 5; ++i) {
      EXPECT_EQ(dc_of[replicas[i]], i < 3 ? "dc1" : "dc2");
      EXPECT_EQ(replicas[i], map.Preference(p, dc_of[replicas[i]])[i < 3 ? i : i - 3]);
    }
    // A factor over the DC's size is capped; unknown DCs and factor 0 add nothing.
    EXPECT_EQ(map.Replicas(p, {{"dc1", 9}, {"dc2", 0}, {"dc9", 3}}).size(), 6u);
    // "*" gives the factor of every DC not named.
    const ReplicationMap every = {{"*", 2}, {"dc2", 1}};
    EXPECT_EQ(ReplicationIn(every, "dc1"), 2u);
    EXPECT_EQ(ReplicationIn(every, "dc2"), 1u);
    EXPECT_EQ(ReplicationIn({{"dc2", 1}}, "dc1"), 0u);
    const auto dc1 = map.ReplicasIn(p, "dc1", every);
    ASSERT_EQ(dc1.size(), 2u);
    EXPECT_TRUE(std::equal(dc1.begin(), dc1.end(), map.Preference(p, "dc1").begin()));
    EXPECT_EQ(map.ReplicasIn(p, "dc2", every).size(), 1u);
    EXPECT_EQ(map.Replicas(p, every).size(), 3u);
  }
  // Each DC is balanced on its own.
  for (const Member& m : members) {
    const double mean = m.dc == "dc1" ? kQ * 3.0 / 6 : kQ * 3.0 / 4;
    EXPECT_NEAR(map.ReplicaCount(m.node_id, 3), mean, 0.1 * mean) << m.address;
  }
}

// Adding a node should move about the new node's share (1/(n+1) of the replicas) and much less
// than recomputing at random (1 - k/(n+1)). Removing a node should mostly re-home its own share.
TEST(PlacementTest, FewMovesWhenANodeJoinsOrLeaves) {
  struct Case {
    std::vector<uint32_t> before;
    std::vector<uint32_t> after;  // the same nodes per rack, one more or one less in one rack
  };
  const Case cases[] = {
      {{3}, {4}},
      {{4}, {3}},
      {{6}, {7}},
      {{7}, {6}},
      {{3, 3, 3}, {4, 3, 3}},
      {{4, 4, 4}, {4, 3, 4}},
  };
  for (const Case& c : cases) {
    auto members = [](const std::vector<uint32_t>& sizes) {
      // Rack r's i-th node is the same node in both topologies.
      std::vector<Member> out;
      for (size_t r = 0; r < sizes.size(); ++r) {
        for (uint32_t i = 0; i < sizes[r]; ++i) {
          out.push_back(
              MakeMember(static_cast<uint32_t>(100 * r + i), "dc1", "r" + std::to_string(r)));
        }
      }
      return out;
    };
    const PartitionMap before = MustCompute(members(c.before));
    const PartitionMap after = MustCompute(members(c.after));
    const uint32_t n = static_cast<uint32_t>(before.members().size());
    const uint32_t m = static_cast<uint32_t>(after.members().size());
    std::string line = std::to_string(n) + " -> " + std::to_string(m) + " nodes:";
    for (uint32_t k = 1; k <= 3; ++k) {
      const double changed = ChangedFraction(before, after, k);
      const double ideal = 1.0 / std::max(n, m);
      const double random = 1.0 - static_cast<double>(k) / m;
      char buf[96];
      std::snprintf(buf, sizeof buf, "  k=%u %.1f%% (ideal %.1f%%, random %.1f%%)", k,
                    100 * changed, 100 * ideal, 100 * random);
      line += buf;
      EXPECT_LE(changed, 1.5 * ideal) << line;
    }
    std::printf("%s\n", line.c_str());
  }
}

TEST(PlacementTest, HashTaggedKeysShareReplicas) {
  const PartitionMap map = MustCompute(DcMembers("dc1", {2, 2, 2}));
  const uint32_t profile = base::PartitionOfToken(base::Token("{user:42}:profile"), kBits);
  const uint32_t cart = base::PartitionOfToken(base::Token("{user:42}:cart"), kBits);
  EXPECT_EQ(profile, cart);
  EXPECT_EQ(map.Replicas(profile, {{"dc1", 3}}), map.Replicas(cart, {{"dc1", 3}}));
}

}  // namespace
}  // namespace cairn::cluster
