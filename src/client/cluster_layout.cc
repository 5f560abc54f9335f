#include "client/cluster_layout.h"

#include <array>

#include <algorithm>
#include <bit>

#include <fmt/format.h>

#include "base/hash.h"

namespace cairn::client {

Result<ClusterLayout> ClusterLayout::Make(const ClusterInfo& cluster,
                                          const std::vector<KeyspaceInfo>& keyspaces,
                                          const std::vector<std::string>& servers) {
  if (!cluster.formed) return Status::InvalidArgument("the cluster has not formed yet");
  if (!std::has_single_bit(cluster.partitions)) {
    return Status::InvalidArgument(
        fmt::format("{} partitions is not a power of two", cluster.partitions));
  }
  std::vector<cluster::Member> members;
  ClusterLayout layout;
  for (const NodeInfo& n : cluster.nodes) {
    if (n.node_id == 0) {
      return Status::InvalidArgument(fmt::format("{} has not been heard from", n.address));
    }
    members.push_back(cluster::Member{n.node_id, n.address, n.dc, n.rack});
    if (n.up) layout.up_.insert(n.node_id);
    // Only the servers the client was given: it never dials an address it was not told to.
    if (std::find(servers.begin(), servers.end(), n.address) != servers.end()) {
      layout.server_of_.emplace(n.node_id, n.address);
    }
  }
  const auto bits = static_cast<uint32_t>(std::countr_zero(cluster.partitions));
  auto map = cluster::PartitionMap::Compute(std::move(members), bits);
  if (!map.ok()) return map.status();
  if (map->Fingerprint() != cluster.map_fingerprint) {
    return Status::InvalidArgument(
        "the partition map computed from the cluster status is not the servers' map");
  }
  layout.map_ = std::move(*map);
  layout.dcs_ = layout.map_.dcs();
  for (const KeyspaceInfo& ks : keyspaces) layout.keyspaces_[ks.name] = ks.replication;
  return layout;
}

bool ClusterLayout::knows(std::string_view keyspace) const {
  return keyspaces_.contains(keyspace.empty() ? std::string_view("default") : keyspace);
}

const std::string* ClusterLayout::Route(std::string_view keyspace, std::string_view key,
                                        std::string_view local_dc, uint64_t turn) const {
  auto ks = keyspaces_.find(keyspace.empty() ? std::string_view("default") : keyspace);
  if (ks == keyspaces_.end()) return nullptr;
  const uint32_t partition = base::PartitionOfToken(base::Token(key), map_.partition_bits());
  // The replicas in the servers' order (DCs by name, each in preference order), or only the
  // client's DC; the first when `turn` is 0 (no list made), else the turn's.
  constexpr size_t kMaxChoices = 16;
  std::array<const std::string*, kMaxChoices> choices;
  size_t n = 0;
  for (const std::string& dc : dcs_) {
    if (!local_dc.empty() && dc != local_dc) continue;
    for (uint32_t node : map_.ReplicasIn(partition, dc, ks->second)) {
      if (!up_.contains(node)) continue;
      auto it = server_of_.find(node);
      if (it == server_of_.end()) continue;
      if (turn == 0) return &it->second;
      choices[n++] = &it->second;
      if (n == kMaxChoices) break;
    }
    if (n == kMaxChoices) break;
  }
  return n == 0 ? nullptr : choices[turn % n];
}

}  // namespace cairn::client
