// The data model the layers share: keyspace definitions, compare-and-swap conditions, what a
// node reports of itself. Plain data, from the layers that keep it (cluster, replica) to the
// front doors that show it; nothing here reaches storage, the network or the cluster.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cairn/types.h"

namespace cairn {

namespace base {
inline constexpr std::string_view kDefaultKeyspace = "default";
inline constexpr uint32_t kDefaultKeyspaceId = 1;
}  // namespace base

// The replication factor of a keyspace with `replication` in data centre `dc`: its own entry,
// else the kEveryDc entry, else 0.
uint32_t ReplicationIn(const ReplicationMap& replication, std::string_view dc);

// In namespace base: the client library's public API (include/cairn/options.h) has types of its
// own with these names.
namespace base {

// The sub-counters a counter split automatically gets unless its keyspace says otherwise.
inline constexpr uint32_t kDefaultAutoSplitShards = 16;

struct KeyspaceDef {
  std::string name;
  uint32_t id = 0;  // never reused, so a dropped keyspace's data can never reappear
  // Replicas per data centre; kEveryDc applies to the DCs not named.
  ReplicationMap replication = {{std::string(kEveryDc), 3}};
  Consistency read_consistency = Consistency::kQuorum;
  Consistency write_consistency = Consistency::kQuorum;
  uint64_t created_at_ms = 0;
  Version version;  // of this definition (its creation or its drop)
  bool dropped = false;
  // Every write goes through per-key Paxos and every quorum read is a SERIAL read: single-key
  // operations are linearizable whatever level they name (docs/consistency.md).
  bool linearizable = false;
  // Automatic splitting of hot counters (docs/hot-keys.md): a counter of this keyspace
  // incremented at least this many times a second, summed over the nodes that coordinate its
  // increments, is split into `auto_split_shards` sub-counters; 0 turns it off.
  uint32_t auto_split_increments_per_s = 0;
  uint32_t auto_split_shards = kDefaultAutoSplitShards;

  // The replication factor in data centre `dc`.
  uint32_t ReplicationIn(std::string_view dc) const {
    return cairn::ReplicationIn(replication, dc);
  }

  friend bool operator==(const KeyspaceDef&, const KeyspaceDef&) = default;
};

// What KeyspaceAlter changes; unset fields stay as they are.
struct KeyspaceChange {
  std::optional<bool> linearizable;
  std::optional<uint32_t> auto_split_increments_per_s;
  std::optional<uint32_t> auto_split_shards;
  std::optional<Consistency> read_consistency;
  std::optional<Consistency> write_consistency;
};

// The condition of a compare-and-swap on a key's live value (tombstones and expired values count
// as absent).
struct CasCondition {
  enum class Kind { kIfVersion, kIfValue, kIfNotExists, kIfExists };
  Kind kind = Kind::kIfNotExists;
  Version version;    // for kIfVersion
  std::string value;  // for kIfValue
};

// Writes `c` into a protobuf message with the fields if_version (a message with hlc and node),
// if_value, if_not_exists and if_exists: the native protocol's CasRequest and the internode
// Condition have that shape.
template <typename ConditionProto>
void ConditionToProto(const CasCondition& c, ConditionProto* out) {
  switch (c.kind) {
    case CasCondition::Kind::kIfVersion:
      out->mutable_if_version()->set_hlc(c.version.hlc);
      out->mutable_if_version()->set_node(c.version.node);
      break;
    case CasCondition::Kind::kIfValue:
      out->set_if_value(c.value);
      break;
    case CasCondition::Kind::kIfNotExists:
      out->set_if_not_exists(true);
      break;
    case CasCondition::Kind::kIfExists:
      out->set_if_exists(true);
      break;
  }
}

// A (partition, keyspace) range a node streams in from node `source`, and what it has applied of
// it so far.
struct StreamingRange {
  uint32_t partition = 0;
  uint32_t keyspace = 0;
  uint32_t source = 0;
  uint64_t chunks = 0;
  uint64_t bytes = 0;
};

// What gossip tells of one node, as `cairn status` shows it.
struct NodeStatus {
  std::string address;
  uint32_t node_id = 0;  // 0 while the node has never been heard from
  std::string dc, rack;
  bool up = false;
  bool self = false;
  uint64_t load_bytes = 0;
  uint64_t dead_bytes = 0;  // of load_bytes, garbage: tombstones and expired values
  uint64_t hints_pending = 0;
  // Its place in the topology: NORMAL, JOINING, LEAVING (empty before the cluster formed).
  std::string state;
  bool dead = false;  // removed or being replaced: declared gone for good
  // Its part in the topology change in progress: ranges it streams in, done, bytes so far.
  uint32_t streams_total = 0;
  uint32_t streams_done = 0;
  uint64_t stream_bytes = 0;
  uint64_t stream_chunks = 0;
  uint64_t stream_rate = 0;  // bytes per second since the node's first chunk of the change
  // The range it streams now, if one is.
  std::optional<StreamingRange> streaming;
  uint64_t generation = 0;  // its process's start (ms): a restart changes it
  // Whether it has client connections that track keys (RESP CLIENT TRACKING), and since when
  // (its HLC; 0: never said).
  bool tracking = false;
  uint64_t tracking_since = 0;
};

}  // namespace base
}  // namespace cairn
