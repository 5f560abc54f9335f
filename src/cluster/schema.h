// The node's identity and the keyspaces it serves, persisted in the meta column family.
// (The cluster issue adds membership and the partition map beside them.)
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/status.h"
#include "cairn/types.h"
#include "storage/engine.h"

namespace cairn::cluster {

inline constexpr std::string_view kDefaultKeyspace = "default";
inline constexpr uint32_t kDefaultKeyspaceId = 1;
inline constexpr uint32_t kDefaultPartitionBits = 10;  // 1024 partitions
inline constexpr uint32_t kMaxReplicationFactor = 15;

// Who this node is. Fixed when its data directory is created.
struct NodeIdentity {
  uint32_t node_id = 0;
  // The cluster has 2^partition_bits partitions; fixed at creation.
  uint32_t partition_bits = kDefaultPartitionBits;

  uint32_t partitions() const { return uint32_t{1} << partition_bits; }
};

// Reads the identity of the data directory, or creates it on first start: `requested_id` when
// given (1 .. 2^32-1), else a random one. A data directory never changes identity: asking for
// another id than the persisted one is INVALID_ARGUMENT.
Result<NodeIdentity> LoadOrCreateIdentity(storage::Engine& engine,
                                          std::optional<uint32_t> requested_id,
                                          uint32_t partition_bits_if_new);

struct KeyspaceDef {
  std::string name;
  uint32_t id = 0;  // never reused, so a dropped keyspace's data can never reappear
  uint32_t replication_factor = 3;
  Consistency read_consistency = Consistency::kQuorum;
  Consistency write_consistency = Consistency::kQuorum;
  uint64_t created_at_ms = 0;

  friend bool operator==(const KeyspaceDef&, const KeyspaceDef&) = default;
};

// INVALID_ARGUMENT unless `name` is 1-48 letters, digits, '_' or '-', starting with a letter.
Status ValidateKeyspaceName(std::string_view name);

// The keyspaces of this node.
// Thread safety: all methods may be called from any thread. Find() and List() are cheap reads
// for request paths; Create() and Drop() write and fsync the meta column family and block, so
// callers run them off the reactors.
class Schema {
 public:
  // Loads the keyspaces; creates `default` on a new data directory.
  static Result<std::unique_ptr<Schema>> Load(storage::Engine* engine, uint32_t partitions,
                                              uint64_t now_ms);

  std::optional<KeyspaceDef> Find(std::string_view name) const;
  std::vector<KeyspaceDef> List() const;  // by name

  // Creates a keyspace from `spec` (its name, replication factor and default levels; the id and
  // creation time are assigned). ALREADY_EXISTS unless `if_not_exists`, in which case the existing
  // definition is returned. INVALID_ARGUMENT for a bad name, factor or level.
  Result<KeyspaceDef> Create(const KeyspaceDef& spec, bool if_not_exists, uint64_t now_ms);

  // Drops a keyspace and all its data. NOT_FOUND unless `if_exists`; `default` cannot be dropped.
  Status Drop(std::string_view name, bool if_exists);

 private:
  Schema(storage::Engine* engine, uint32_t partitions) : engine_(engine), partitions_(partitions) {}
  Status Persist(const KeyspaceDef& def, uint32_t next_id);

  // Constant after construction.
  storage::Engine* const engine_;
  const uint32_t partitions_;

  // Serialises Create/Drop (which block on disk) without blocking readers on mu_.
  std::mutex change_mu_;
  mutable std::mutex mu_;
  std::map<std::string, KeyspaceDef, std::less<>> keyspaces_;  // guarded by mu_
  uint32_t next_id_ = 1;                                       // guarded by mu_
};

}  // namespace cairn::cluster
