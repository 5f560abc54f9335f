// The node's identity and the keyspaces of the cluster. Keyspace definitions are persisted in
// the meta column family and spread to every node by gossip; between two definitions of one
// name the one with the newer version wins (a drop is a definition too, so drops spread).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/model.h"
#include "cairn/status.h"
#include "cairn/types.h"
#include "proto/internode.pb.h"
#include "storage/engine.h"

namespace cairn::cluster {

using base::kDefaultKeyspace;
using base::kDefaultKeyspaceId;
inline constexpr uint32_t kDefaultPartitionBits = 10;  // 1024 partitions

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

// Defined in base (plain data every layer shares); named here too for the cluster's own code.
using base::KeyspaceChange;
using base::KeyspaceDef;

// INVALID_ARGUMENT unless `name` is 1-48 letters, digits, '_' or '-', starting with a letter.
Status ValidateKeyspaceName(std::string_view name);

// Conversions to and from the form gossip carries (and the meta column family stores).
void ToRecord(const KeyspaceDef& def, internode::KeyspaceRecord* out);
// INTERNAL for a record with impossible consistency levels.
Result<KeyspaceDef> FromRecord(const internode::KeyspaceRecord& record);

// The changes of keyspace definitions, planned on `records` (the cluster's definitions, drops
// included) without changing anything: validation, the new definition, its id.
// INVALID_ARGUMENT for a bad name, replication or level; ALREADY_EXISTS / NOT_FOUND as the
// request says (`if_not_exists` returns the existing definition; `if_exists` a drop of nothing:
// nullopt).
Result<KeyspaceDef> PlanCreate(const std::vector<KeyspaceDef>& records,
                               const std::set<uint32_t>& dropped_ids, const KeyspaceDef& spec,
                               bool if_not_exists, uint64_t now_ms, Version version);
Result<KeyspaceDef> PlanAlter(const std::vector<KeyspaceDef>& records, std::string_view name,
                              const KeyspaceChange& change, Version version);
Result<std::optional<KeyspaceDef>> PlanDrop(const std::vector<KeyspaceDef>& records,
                                            std::string_view name, bool if_exists, Version version);

// The keyspaces of the cluster as this node knows them.
// Thread safety: all methods may be called from any thread. Find(), List(), Records() and
// HasNewer() are cheap; Create(), Drop() and Merge() write and fsync and block, so callers run
// them off the reactors.
class Schema {
 public:
  // Loads the definitions. `default` always exists (id 1, three replicas in every DC).
  static Result<std::unique_ptr<Schema>> Load(storage::Engine* engine, uint32_t partitions);

  // The live keyspace called `name`.
  std::optional<KeyspaceDef> Find(std::string_view name) const;
  // The same without a copy: for request paths (null when there is none). The definition pointed
  // to never changes; a change publishes a new one.
  std::shared_ptr<const KeyspaceDef> Lookup(std::string_view name) const;
  std::vector<KeyspaceDef> List() const;  // live ones, by name
  // Every definition, drops included: what gossip spreads.
  std::vector<KeyspaceDef> Records() const;

  // Creates a keyspace from `spec` (name, replication and default levels) with `version`;
  // assigns its id. ALREADY_EXISTS unless `if_not_exists`, in which case the existing definition
  // is returned. INVALID_ARGUMENT for a bad name, replication or level.
  Result<KeyspaceDef> Create(const KeyspaceDef& spec, bool if_not_exists, uint64_t now_ms,
                             Version version);

  // Changes the options of keyspace `name` (not its replication or id) with `version`.
  // NOT_FOUND when it does not exist; INVALID_ARGUMENT for `default` or a bad level.
  Result<KeyspaceDef> Alter(std::string_view name, const KeyspaceChange& change, Version version);

  // Drops a keyspace and deletes its data on this node. NOT_FOUND unless `if_exists`; `default`
  // cannot be dropped.
  Status Drop(std::string_view name, bool if_exists, Version version);

  // Whether `records` hold a definition newer than this node's (cheap: decides whether to Merge).
  bool HasNewer(const std::vector<KeyspaceDef>& records) const;
  // Adopts every definition in `records` newer than this node's, deleting the data of keyspaces
  // that were dropped or replaced.
  Status Merge(const std::vector<KeyspaceDef>& records);
  // Makes this node's definitions those of `records` (a topology epoch's, decided by Paxos, so
  // they win whatever their versions), deleting the data of keyspaces dropped or replaced.
  Status Sync(const std::vector<KeyspaceDef>& records);

 private:
  Schema(storage::Engine* engine, uint32_t partitions) : engine_(engine), partitions_(partitions) {}
  // Persists `def` and, when `drop_data_of` is set, deletes that keyspace id's data, atomically.
  Status Persist(const KeyspaceDef& def, std::optional<uint32_t> drop_data_of);
  // Merge (`decided` false: newer versions win) or Sync (true: `records` win).
  Status Apply(const std::vector<KeyspaceDef>& records, bool decided);
  // Records `def` (in records_ and, unless dropped, live_). Callers hold mu_ (or own the schema
  // alone, while loading).
  void SetRecordLocked(const KeyspaceDef& def);

  // Constant after construction.
  storage::Engine* const engine_;
  const uint32_t partitions_;

  // Serialises the writers (which block on disk) without blocking readers on mu_.
  std::mutex change_mu_;
  mutable std::mutex mu_;
  std::map<std::string, KeyspaceDef, std::less<>> records_;  // guarded by mu_; drops included
  std::map<std::string, std::shared_ptr<const KeyspaceDef>, std::less<>> live_;  // guarded by mu_
};

}  // namespace cairn::cluster
