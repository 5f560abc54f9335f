// Keyspace definitions and compare-and-swap conditions: plain data shared by every layer, from
// the schema that stores them (cluster) to the front doors that show them. Nothing here reaches
// storage, the network or the cluster.
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

  // The replication factor in data centre `dc`.
  uint32_t ReplicationIn(std::string_view dc) const { return cairn::ReplicationIn(replication, dc); }

  friend bool operator==(const KeyspaceDef&, const KeyspaceDef&) = default;
};

// What KeyspaceAlter changes; unset fields stay as they are.
struct KeyspaceChange {
  std::optional<bool> linearizable;
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

}  // namespace base
}  // namespace cairn
