#include "client/cluster_layout.h"

#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/hash.h"
#include "cluster/schema.h"
#include "cluster/topology.h"
#include "coordinator/replica_set.h"

namespace cairn::client {
namespace {

constexpr uint32_t kBits = 8;

// Two DCs: dc1 with three nodes on two racks, dc2 with two nodes.
std::vector<cluster::Member> Members() {
  return {{11, "127.0.0.1:7411", "dc1", "r1"},
          {12, "127.0.0.1:7412", "dc1", "r1"},
          {13, "127.0.0.1:7413", "dc1", "r2"},
          {21, "127.0.0.1:7421", "dc2", "r1"},
          {22, "127.0.0.1:7422", "dc2", "r2"}};
}

cluster::KeyspaceDef Keyspace(std::string name, ReplicationMap replication) {
  cluster::KeyspaceDef def;
  def.name = std::move(name);
  def.replication = std::move(replication);
  return def;
}

// The keyspaces the tests route in, as the servers define them.
std::vector<cluster::KeyspaceDef> Keyspaces() {
  return {Keyspace("default", {{"*", 3}}), Keyspace("single", {{"*", 1}}),
          Keyspace("split", {{"dc1", 2}, {"dc2", 1}}), Keyspace("east", {{"dc2", 2}})};
}

// What a node's cluster status and keyspace list would tell the client.
ClusterInfo StatusOf(const std::vector<cluster::Member>& members, uint64_t fingerprint) {
  ClusterInfo info;
  info.partitions = uint32_t{1} << kBits;
  info.formed = true;
  info.map_fingerprint = fingerprint;
  for (const cluster::Member& m : members) {
    NodeInfo n;
    n.node_id = m.node_id;
    n.address = m.address;
    n.dc = m.dc;
    n.rack = m.rack;
    n.up = true;
    info.nodes.push_back(n);
  }
  return info;
}

std::vector<KeyspaceInfo> InfoOf(const std::vector<cluster::KeyspaceDef>& defs) {
  std::vector<KeyspaceInfo> out;
  for (const cluster::KeyspaceDef& d : defs) {
    KeyspaceInfo info;
    info.name = d.name;
    info.replication = d.replication;
    out.push_back(info);
  }
  return out;
}

std::vector<std::string> AllServers() {
  std::vector<std::string> servers;
  for (const cluster::Member& m : Members()) servers.push_back(m.address);
  return servers;
}

class ClusterLayoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The servers' topology, as a node of dc1 builds it.
    auto topology = cluster::Topology::Make(Members(), 11, kBits, 0, 1);
    ASSERT_TRUE(topology.ok()) << topology.status().ToString();
    topology_ = *topology;
  }

  ClusterLayout MustMake(const ClusterInfo& status,
                         const std::vector<std::string>& servers = AllServers()) {
    auto layout = ClusterLayout::Make(status, InfoOf(Keyspaces()), servers);
    EXPECT_TRUE(layout.ok()) << layout.status().ToString();
    return layout.ok() ? std::move(*layout) : ClusterLayout();
  }
  ClusterInfo Status() const { return StatusOf(Members(), topology_->map.Fingerprint()); }

  // The servers' replicas of `key` in `ks`, in their order (DCs by name, preference order).
  coordinator::ClusterCoordinator::ReplicaSet ServerReplicas(const cluster::KeyspaceDef& ks,
                                                             const std::string& key) const {
    const uint32_t partition = base::PartitionOfToken(base::Token(key), kBits);
    return coordinator::ClusterCoordinator::ReplicaSet::Of(*topology_, ks, partition);
  }
  std::string AddressOf(uint32_t node) const { return topology_->Find(node)->address; }

  std::shared_ptr<const cluster::Topology> topology_;
};

std::vector<std::string> Keys() {
  std::vector<std::string> keys;
  for (int i = 0; i < 300; ++i) keys.push_back(fmt::format("user{}", i));
  keys.push_back("{user:42}:profile");  // hash tags place by the tag, as on the servers
  keys.push_back("{user:42}:cart");
  return keys;
}

TEST_F(ClusterLayoutTest, RoutesToTheFirstReplicaTheServersPlaceTheKeyOn) {
  const ClusterLayout layout = MustMake(Status());
  EXPECT_EQ(layout.map().Fingerprint(), topology_->map.Fingerprint());
  for (const cluster::KeyspaceDef& ks : Keyspaces()) {
    for (const std::string& key : Keys()) {
      const auto set = ServerReplicas(ks, key);
      ASSERT_FALSE(set.nodes.empty());
      const std::string* server = layout.Route(ks.name, key, "");
      ASSERT_NE(server, nullptr) << ks.name << " " << key;
      EXPECT_EQ(*server, AddressOf(set.nodes[0])) << ks.name << " " << key;
    }
  }
  // "" is the default keyspace, as on the servers.
  EXPECT_EQ(*layout.Route("", "user7", ""), *layout.Route("default", "user7", ""));
}

TEST_F(ClusterLayoutTest, LocalDcKeepsToThatDcsReplicas) {
  const ClusterLayout layout = MustMake(Status());
  for (const cluster::KeyspaceDef& ks : Keyspaces()) {
    for (const std::string& key : Keys()) {
      const auto set = ServerReplicas(ks, key);
      const std::string* server = layout.Route(ks.name, key, "dc2");
      std::optional<uint32_t> first_in_dc2;
      for (size_t i = 0; i < set.nodes.size() && !first_in_dc2; ++i) {
        if (set.dcs[set.dc_of[i]] == "dc2") first_in_dc2 = set.nodes[i];
      }
      if (!first_in_dc2) {
        EXPECT_EQ(server, nullptr) << ks.name << " " << key;
      } else {
        ASSERT_NE(server, nullptr) << ks.name << " " << key;
        EXPECT_EQ(*server, AddressOf(*first_in_dc2)) << ks.name << " " << key;
      }
    }
  }
}

TEST_F(ClusterLayoutTest, SkipsReplicasThatAreDownOrNotConfigured) {
  const cluster::KeyspaceDef ks = Keyspaces()[0];  // three replicas in each DC
  const std::string key = "user1";
  const auto set = ServerReplicas(ks, key);
  ASSERT_GE(set.nodes.size(), 3u);

  ClusterInfo status = Status();
  for (NodeInfo& n : status.nodes) n.up = n.node_id != set.nodes[0];
  EXPECT_EQ(*MustMake(status).Route(ks.name, key, ""), AddressOf(set.nodes[1]));

  std::vector<std::string> servers;
  for (const std::string& s : AllServers()) {
    if (s != AddressOf(set.nodes[0]) && s != AddressOf(set.nodes[1])) servers.push_back(s);
  }
  EXPECT_EQ(*MustMake(Status(), servers).Route(ks.name, key, ""), AddressOf(set.nodes[2]));

  // No replica listed: round robin (null).
  EXPECT_EQ(MustMake(Status(), {"127.0.0.1:7400"}).Route(ks.name, key, ""), nullptr);
}

TEST_F(ClusterLayoutTest, TurnsTakeEveryLiveReplicaInPlacementOrder) {
  const cluster::KeyspaceDef ks = Keyspaces()[0];  // three replicas in each DC
  const std::string key = "user1";
  const auto set = ServerReplicas(ks, key);
  ASSERT_GE(set.nodes.size(), 3u);
  const ClusterLayout layout = MustMake(Status());
  // Turn 0 is the first replica; turns 1 .. n are each replica once, in order, then again.
  EXPECT_EQ(*layout.Route(ks.name, key, "", 0), AddressOf(set.nodes[0]));
  for (uint64_t turn = 0; turn < 2 * set.nodes.size(); ++turn) {
    EXPECT_EQ(*layout.Route(ks.name, key, "", turn), AddressOf(set.nodes[turn % set.nodes.size()]))
        << "turn " << turn;
  }
  // A replica that is DOWN is never chosen; with a local DC, only that DC's replicas are.
  ClusterInfo status = Status();
  for (NodeInfo& n : status.nodes) n.up = n.node_id != set.nodes[1];
  const ClusterLayout one_down = MustMake(status);
  std::set<std::string> chosen, in_dc2;
  for (uint64_t turn = 1; turn <= 12; ++turn) {
    chosen.insert(*one_down.Route(ks.name, key, "", turn));
    in_dc2.insert(*layout.Route(ks.name, key, "dc2", turn));
  }
  EXPECT_EQ(chosen.size(), set.nodes.size() - 1);
  EXPECT_FALSE(chosen.contains(AddressOf(set.nodes[1])));
  std::set<std::string> dc2_replicas;
  for (size_t i = 0; i < set.nodes.size(); ++i) {
    if (set.dcs[set.dc_of[i]] == "dc2") dc2_replicas.insert(AddressOf(set.nodes[i]));
  }
  EXPECT_EQ(in_dc2, dc2_replicas);
}

TEST_F(ClusterLayoutTest, UnknownKeyspaceIsNotRouted) {
  const ClusterLayout layout = MustMake(Status());
  EXPECT_TRUE(layout.knows("single"));
  EXPECT_TRUE(layout.knows(""));
  EXPECT_FALSE(layout.knows("later"));
  EXPECT_EQ(layout.Route("later", "user1", ""), nullptr);
}

TEST_F(ClusterLayoutTest, RefusesAnAnswerItCannotRouteBy) {
  const auto make = [](const ClusterInfo& status) {
    return ClusterLayout::Make(status, InfoOf(Keyspaces()), AllServers()).status().code();
  };
  ClusterInfo other_map = Status();
  other_map.map_fingerprint ^= 1;  // the servers computed another map
  EXPECT_EQ(make(other_map), Code::kInvalidArgument);

  ClusterInfo other_rack = Status();
  other_rack.nodes[0].rack = "r9";  // not what the map was computed from
  EXPECT_EQ(make(other_rack), Code::kInvalidArgument);

  ClusterInfo unheard = Status();
  unheard.nodes[2].node_id = 0;
  EXPECT_EQ(make(unheard), Code::kInvalidArgument);

  ClusterInfo not_formed = Status();
  not_formed.formed = false;
  EXPECT_EQ(make(not_formed), Code::kInvalidArgument);

  ClusterInfo odd = Status();
  odd.partitions = 100;
  EXPECT_EQ(make(odd), Code::kInvalidArgument);
}

}  // namespace
}  // namespace cairn::client
