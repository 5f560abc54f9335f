// Internal to the client library: what a token-aware client knows of the cluster, and the choice
// of the server to send a single-key request to.
//
// The servers' partition map is a pure function of the members (cluster/placement.h), so the
// client computes the same map from a cluster status answer and applies the same placement rule
// (PartitionMap::ReplicasIn) with each keyspace's replication. A request sent to a replica of its
// key is coordinated where the data is: a read at ONE or LOCAL_ONE is answered from the
// coordinator's own replica, without a hop to another node.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cairn/client.h"
#include "cairn/status.h"
#include "cairn/types.h"
#include "cluster/placement.h"

namespace cairn::client {

// Thread safety: immutable after Make(); any thread may read it.
class ClusterLayout {
 public:
  // Builds the layout of a formed cluster as one node's status answer describes it, with the
  // keyspaces it lists, for a client configured with `servers`. INVALID_ARGUMENT when the answer
  // cannot give the servers' map: the cluster has not formed, a node has not been heard from
  // (id 0), the partition count is not a power of two, or the map computed from the answer does
  // not have the answer's fingerprint (a server with another placement algorithm): routing by
  // another map would send requests to nodes that are not replicas.
  static Result<ClusterLayout> Make(const ClusterInfo& cluster,
                                    const std::vector<KeyspaceInfo>& keyspaces,
                                    const std::vector<std::string>& servers);

  // Where a single-key request on `key` in `keyspace` ("" is "default") should go: of the
  // replicas of the key, in placement order, that are UP and configured servers, the one at
  // `turn` modulo their number (0: the first; reads pass a turn that grows, so that the reads of
  // one key are spread over its replicas). With a `local_dc`, only that DC's replicas are
  // considered (so LOCAL_* levels keep their meaning). Null when there is none, or the keyspace
  // is unknown (see knows()); else valid as long as the layout.
  const std::string* Route(std::string_view keyspace, std::string_view key,
                           std::string_view local_dc, uint64_t turn = 0) const;

  bool knows(std::string_view keyspace) const;
  const cluster::PartitionMap& map() const { return map_; }

 private:
  cluster::PartitionMap map_;
  std::vector<std::string> dcs_;  // map_.dcs(), kept: Route() runs on every request
  std::unordered_set<uint32_t> up_;
  std::unordered_map<uint32_t, std::string> server_of_;  // node id -> configured server
  std::map<std::string, ReplicationMap, std::less<>> keyspaces_;
};

}  // namespace cairn::client
