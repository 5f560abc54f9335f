// ClusterCoordinator: the Coordinator of a node of a Cairn cluster (coordinator.h says what it
// does for front doors). This header is for the server that wires it up, and for the
// coordinator's own files: front doors see coordinator.h only.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/container/small_vector.hpp>

#include "base/async.h"
#include "base/hlc.h"
#include "base/hot_keys.h"
#include "base/metrics.h"
#include "cairn/status.h"
#include "cairn/types.h"
#include "cluster/internode_client.h"
#include "cluster/schema.h"
#include "cluster/topology.h"
#include "coordinator/coordinator.h"
#include "coordinator/hint_store.h"
#include "coordinator/invalidations.h"
#include "coordinator/repair_run_table.h"
#include "replica/replica.h"

namespace cairn::coordinator {

// Thread safety: every method may be called concurrently from any reactor.
class ClusterCoordinator final : public Coordinator {
 public:
  // `clients` holds one internode client per reactor (indexed by base::ReactorIndex()); with
  // none, only replicas on this node can be reached. `hints` may be null (no hinted handoff).
  ClusterCoordinator(CoordinatorOptions options, cluster::NodeIdentity identity,
                     cluster::Schema* schema, const cluster::ClusterView* view,
                     replica::Replica* local, base::HybridClock* clock, base::PhysicalClock* wall,
                     asio::any_io_executor blocking, std::vector<cluster::InternodeClient*> clients,
                     HintStore* hints);

  // Where decided topology epochs go (the gossiper); without one (unit tests), keyspace changes
  // apply to the local schema alone.
  void SetTopologyStore(cluster::TopologyStore* store) { store_ = store; }
  // What NodeOp::kJoin and kReplace do (the topology driver's JoinOnCommand; it returns the state
  // that made this node a member). Set before requests are served; without it they are refused.
  using JoinCommand =
      std::function<asio::awaitable<Result<internode::TopologyState>>(uint32_t replace)>;
  void SetJoinCommand(JoinCommand command) { join_command_ = std::move(command); }

  // How the next epoch is made from the current one: the next state, nullopt when there is
  // nothing to change, or why the change cannot be made.
  using TopologyChange = std::function<Result<std::optional<internode::TopologyState>>(
      const internode::TopologyState& current)>;
  // Commits the next topology epoch (topology_log.cc): `change` makes it from the newest state
  // this node has, Paxos decides it on the epoch's slot among the current group, this node adopts
  // it and tells every member. When another change took the slot first, that one is adopted and
  // `change` is tried again on it. Returns the state it leaves (the current one when `change`
  // had nothing to do).
  asio::awaitable<Result<std::shared_ptr<const internode::TopologyState>>> ChangeTopology(
      TopologyChange change, base::Deadline deadline);
  // Sends `state` to every member but this node and waits (until `deadline`) for the answers of
  // `wait_for`; with `fence`, each must also raise its fence to it (a barrier: once every node
  // of `wait_for` answered, none of them accepts requests planned with an older topology).
  // UNAVAILABLE naming those that did not answer.
  asio::awaitable<Status> Broadcast(const internode::TopologyState& state, uint64_t fence,
                                    std::vector<uint32_t> wait_for, base::Deadline deadline);

  asio::awaitable<Result<std::optional<Record>>> Get(std::string key,
                                                     RequestOptions options) override;
  std::optional<Result<std::optional<Record>>> TryGetLocal(std::string_view key,
                                                           const RequestOptions& options) override;
  asio::awaitable<Result<Version>> Put(std::string key, std::string value, uint64_t ttl_ms,
                                       RequestOptions options) override;
  asio::awaitable<Result<Version>> Delete(std::string key, RequestOptions options) override;
  asio::awaitable<Result<CasResult>> Cas(std::string key, CasCondition condition,
                                         std::optional<std::string> new_value, uint64_t ttl_ms,
                                         RequestOptions options, Consistency commit) override;
  asio::awaitable<Result<ScanPage>> Scan(std::string prefix, std::string cursor, uint32_t limit,
                                         RequestOptions options,
                                         std::optional<uint32_t> partition) override;
  uint32_t partition_count() const override { return identity_.partitions(); }
  asio::awaitable<Result<std::vector<Result<std::optional<Record>>>>> BatchGet(
      std::vector<std::string> keys, RequestOptions options) override;
  asio::awaitable<Result<std::vector<Result<Version>>>> BatchPut(std::vector<PutItem> items,
                                                                 RequestOptions options) override;
  asio::awaitable<Result<cluster::KeyspaceDef>> CreateKeyspace(cluster::KeyspaceDef spec,
                                                               bool if_not_exists) override;
  Result<std::vector<cluster::KeyspaceDef>> ListKeyspaces() const override;
  Result<cluster::KeyspaceDef> DescribeKeyspace(std::string_view name) const override;
  bool IsLinearizable(const std::string& name) const override;
  asio::awaitable<Status> DropKeyspace(std::string name, bool if_exists) override;
  asio::awaitable<Result<cluster::KeyspaceDef>> AlterKeyspace(
      std::string name, cluster::KeyspaceChange change) override;
  NodeInfo Info() const override;
  const CoordinatorOptions& options() const override { return options_; }
  std::vector<std::pair<std::string, uint64_t>> Metrics() const override;
  Result<std::vector<NodeReport>> ClusterStatus() const override;
  ClusterInfo Cluster() const override;
  PartitionLayout Partitions() const override;
  asio::awaitable<Result<ClusterInfo>> NodeOperation(NodeOp op, uint32_t node_id) override;
  asio::awaitable<Result<CompactReport>> Compact() override;
  asio::awaitable<Result<HotKeysReport>> HotKeys(std::string keyspace, uint32_t limit) override;
  uint32_t ClientCacheMs(const RequestOptions& options, std::string_view key) const override;
  // The keys this node coordinates most often (counted by every read and write it coordinates).
  const base::HotKeys& hot_keys() const { return hot_keys_; }
  asio::awaitable<Result<RangeRepairReport>> RepairRange(std::string keyspace, uint32_t partition,
                                                         uint32_t only_node, bool only_as_first,
                                                         RepairRunStep run) override;
  asio::awaitable<Result<RepairRunsReport>> RepairRuns() override;
  // This node's part of the `cairn repair` runs it repaired ranges of lately (what peers'
  // RepairRuns() ask it for).
  const RepairRunTable& repair_runs() const { return repair_runs_; }
  base::PhysicalClock& wall_clock() const override { return *wall_; }
  asio::awaitable<Result<UserChangeOutcome>> ChangeUser(base::UserChange change,
                                                        std::string password) override;
  std::shared_ptr<const base::UserTable> Users() const override;
  asio::awaitable<Result<IncrementOutcome>> Increment(std::string key, base::CounterDelta delta,
                                                      RequestOptions options,
                                                      Consistency commit) override;
  asio::awaitable<Result<SplitOutcome>> SplitCounter(std::string key, uint32_t shards,
                                                     RequestOptions options) override;
  void SetKeyChangeListener(KeyChangeListener* listener) override {
    invalidations_.SetListener(listener);
  }
  asio::awaitable<void> StartTracking() override { return invalidations_.StartTracking(); }
  void StopTracking() override { invalidations_.StopTracking(); }
  asio::awaitable<void> InvalidateAll() override;
  // Client-side caching across nodes: the server hands it other nodes' messages and gossip's
  // self report, and runs its loop.
  Invalidations& invalidations() { return invalidations_; }
  // A split the automatic splitter made (auto_split.h): split_counters.auto in Metrics().
  void CountAutomaticSplit() { split_counters_.automatic.fetch_add(1, std::memory_order_relaxed); }

  // ---- Counters and split counters (counters.cc). ----
  // Whether `key` of `keyspace` ("": the default) is a split counter in this node's topology.
  bool IsSplitCounter(const std::string& keyspace, std::string_view key) const;
  // FAILED_PRECONDITION for a write to a split counter's key other than an increment.
  static Status SplitKeyRefused(std::string_view key);
  // The split entry of `key`, unless the request reaches the key itself.
  const cluster::SplitEntry* SplitOf(const cluster::Topology& topology,
                                     const cluster::KeyspaceDef& ks, std::string_view key,
                                     const RequestOptions& options) const;
  // A read of a split counter: the sum of its key and sub-counters, made again when a phase
  // change overtakes it.
  asio::awaitable<Result<std::optional<Record>>> ReadSplit(const cluster::KeyspaceDef& ks,
                                                           std::string key, RequestOptions options);

  // Node ids of one key's replicas, or a choice among them: a few, kept inline, so that planning
  // a request allocates nothing (it was a sixth of a QUORUM GET's instructions; issue #18).
  using NodeList = boost::container::small_vector<uint32_t, 8>;
  struct ReplicaSet;
  struct Requirement;
  struct Quorum;
  struct ReadPlan;
  class WriteRound;
  class ReadRound;

 private:
  struct WriteTarget;
  // The keyspace a request names (the default one when empty), shared rather than copied.
  Result<std::shared_ptr<const cluster::KeyspaceDef>> ResolveKeyspace(
      const std::string& name) const;
  Status ValidateKey(std::string_view key) const;
  Status ValidateValue(std::string_view value) const;
  Status ValidateTtl(uint64_t ttl_ms) const;
  // INVALID_ARGUMENT for a level that makes no sense for the operation.
  Status ValidateReadLevel(Consistency level) const;
  Status ValidateWriteLevel(Consistency level) const;
  storage::DataKey KeyOf(const cluster::KeyspaceDef& ks, std::string key) const;
  uint64_t ExpiryFor(uint64_t ttl_ms) const;
  Result<std::shared_ptr<const cluster::Topology>> Topology() const;
  cluster::InternodeClient* Client() const;
  // For listings gathered from every node (hot keys, repair runs): sends `request` to each live
  // node but this one, one after another, each within `timeout`. Each answer goes to
  // `take` (node id, answer), which returns false when the answer lacks what was asked;
  // `*asked` counts the nodes asked and `*missing` lists those whose part is missing. `what`
  // names the listing in debug logs.
  asio::awaitable<void> AskLivePeers(
      const internode::Request& request, std::chrono::milliseconds timeout,
      const std::function<bool(uint32_t, internode::Response&)>& take, std::string_view what,
      uint32_t* asked, std::vector<uint32_t>* missing);
  // The level to use for a read or write when the request names none.
  Consistency Resolve(Consistency level, const cluster::KeyspaceDef& ks, bool write) const;

  // Replicates `targets` (one per key) and waits for each one's requirement. One status per
  // target. `acked_by` already holds every target (it is not sent there, and counts as an ack).
  // With `report` (a client's write, not a repair), the keys that may have changed are reported
  // for client-side caching once the answers are in (ReportChanged).
  asio::awaitable<std::vector<cairn::Status>> Replicate(std::vector<WriteTarget> targets,
                                                        base::Deadline deadline,
                                                        std::optional<uint32_t> acked_by,
                                                        const RequestOptions* report = nullptr);
  // A single-key read's checked start: its keyspace, the topology, and the level to read at.
  struct ReadStart {
    std::shared_ptr<const cluster::KeyspaceDef> keyspace;
    std::shared_ptr<const cluster::Topology> topology;
    Consistency level;
  };
  Result<ReadStart> StartRead(std::string_view key, const RequestOptions& options) const;
  // A read's answer: the live record of what the replicas returned (none when deleted or expired).
  Result<std::optional<Record>> LiveRecordOf(
      Result<std::optional<storage::StoredValue>> stored) const;
  // The replicas a read of `partition` at `level` asks first, and its spares: filled in `plan`
  // (in place: a plan is a few small vectors, and each move of one copies them).
  Status PlanRead(const cluster::Topology& topology, const cluster::KeyspaceDef& ks,
                  uint32_t partition, Consistency level, ReadPlan* plan) const;
  // Reads one key at `level`: the newest stored version among the replicas asked (tombstones
  // included), after repairing stale ones.
  asio::awaitable<Result<std::optional<storage::StoredValue>>> ReadKey(
      const cluster::Topology& topology, const cluster::KeyspaceDef& ks, storage::DataKey key,
      Consistency level, base::Deadline deadline);
  asio::awaitable<cairn::Status> Repair(std::vector<uint32_t> nodes, const ReplicaSet& set,
                                        storage::WriteOp op, base::Deadline deadline);
  // Writes a round's ops for this node to the local replica and acknowledges them when durable:
  // the common case of Replicate, without a coroutine of its own.
  void ApplyLocally(std::shared_ptr<WriteRound> round, std::vector<size_t> items,
                    std::vector<storage::WriteOp> ops);
  asio::awaitable<void> SendToNode(std::shared_ptr<WriteRound> round, uint32_t node,
                                   std::vector<size_t> items, base::Deadline deadline);
  asio::awaitable<void> ReadFromNode(std::shared_ptr<ReadRound> round, uint32_t node,
                                     storage::DataKey key, base::Deadline deadline);
  std::string AddressOf(const cluster::Topology& topology, uint32_t node) const;
  // RepairRange() without counting it in a run (repair.cc).
  asio::awaitable<Result<RangeRepairReport>> RepairOneRange(std::string keyspace,
                                                            uint32_t partition, uint32_t only_node,
                                                            bool only_as_first);
  RepairRunTable repair_runs_;
  // The live replicas to ask for `req` (this node first, then those of `prefer`, then its DC),
  // and the spares.
  std::pair<NodeList, NodeList> ChooseReplicas(const ReplicaSet& set, const Requirement& req,
                                               std::span<const uint32_t> prefer = {}) const;

  // Scans (scan.cc): which node is asked for which partitions when a scan covers them all, for
  // one topology, keyspace, level and set of live nodes. Planning 1,024 partitions cost a scan
  // more than its reads (perf, workload E), and the plan changes only with those four.
  struct ScanPlan {
    std::shared_ptr<const cluster::Topology> topology;
    std::shared_ptr<const cluster::KeyspaceDef> keyspace;  // the definition planned for
    Consistency level = Consistency::kOne;
    std::vector<uint32_t> live;                         // the members UP, in member order
    std::map<uint32_t, std::vector<uint32_t>> by_node;  // node -> the partitions it is asked for
  };
  // The plan for `partitions` (all of them when `all`), from the cache when it can be.
  Result<std::shared_ptr<const ScanPlan>> PlanScan(
      const std::shared_ptr<const cluster::Topology>& topology,
      const std::shared_ptr<const cluster::KeyspaceDef>& ks, Consistency level,
      const std::vector<uint32_t>& partitions, bool all);
  std::mutex scan_plans_mu_;
  std::vector<std::shared_ptr<const ScanPlan>> scan_plans_;  // guarded by scan_plans_mu_

  // Per-key Paxos (paxos.cc).
  template <typename Response>
  class Phase;
  struct PaxosRead {
    Version ballot;                               // the ballot prepared
    bool promised = false;                        // by a quorum (else a lazy read: see below)
    std::optional<storage::StoredValue> current;  // the newest data among the promisers
    std::vector<uint32_t> current_holders;        // answerers whose data has that version
    std::optional<internode::Mutation> pending;   // accepted, perhaps chosen, not yet committed
    Version pending_ballot;
  };
  template <typename Response>
  asio::awaitable<std::shared_ptr<Phase<Response>>> PaxosPhase(
      const cluster::Topology& topology, const std::vector<uint32_t>& participants,
      internode::Request request, std::function<bool(const Phase<Response>&)> enough,
      base::Deadline deadline);
  // The live members of the Paxos group of `set` at `serial` (all replicas, or this data
  // centre's), and the quorum of the whole group; `why` is set when no quorum is up.
  std::vector<uint32_t> PaxosParticipants(const ReplicaSet& set, Consistency serial, Quorum* quorum,
                                          cairn::Status* why) const;
  asio::awaitable<void> Backoff(int attempt);
  // Commits a chosen value to every replica; waits for `level` (nullopt: for none). With a
  // `next_ballot` (only with a level), the commit also asks each replica to promise it, and the
  // nodes that did among those that answered are added to `promised_by`.
  asio::awaitable<cairn::Status> PaxosCommit(const cluster::Topology& topology,
                                             const ReplicaSet& set, Version ballot,
                                             internode::Mutation mutation,
                                             std::optional<Consistency> level,
                                             base::Deadline deadline,
                                             std::optional<Version> next_ballot = std::nullopt,
                                             std::vector<uint32_t>* promised_by = nullptr);

  // A promise a quorum gave this coordinator with its last commit of a key: its next
  // compare-and-swap of the key may propose at `ballot` at once, skipping the prepare round
  // (the commit was that round's prepare; see paxos.cc). `ballot.hlc` 0: no promise, the key was
  // only written here recently.
  struct PaxosLease {
    Version ballot;
    std::optional<storage::StoredValue> current;  // the value committed with the promise
    std::vector<uint32_t> participants;           // who the quorum was counted among
    Consistency serial = Consistency::kSerial;
    base::Clock::time_point at;
  };
  // Counts a Paxos write of `key` as started here (EndPaxosWrite() ends it), and removes and
  // returns the key's lease, if any: a ballot is proposed at most once.
  std::optional<PaxosLease> StartPaxosWrite(const std::string& key);
  void EndPaxosWrite(const std::string& key);
  // Whether exactly one Paxos write of `key` is in progress here (the caller's).
  bool WritingAlone(const std::string& key);
  void KeepLease(const std::string& key, PaxosLease lease);
  // Commits a value this coordinator chose at `ballot` and, when `ask_next` and the commit is
  // awaited, asks for the promise of a next ballot with it, kept as the key's lease if a quorum
  // of `participants` gives it.
  asio::awaitable<cairn::Status> PaxosCommitChosen(
      const cluster::Topology& topology, const ReplicaSet& set, Version ballot,
      const internode::Mutation& mutation, std::optional<Consistency> level,
      base::Deadline deadline, const std::string& lease_key,
      const std::vector<uint32_t>& participants, const Quorum& quorum, Consistency serial,
      bool ask_next);
  // Prepares a fresh ballot until a quorum promises it (or the deadline). A `lazy` prepare may
  // also end as a read of a quorum that did not all promise (`promised` false): replicas with
  // nothing to finish and data failing `condition` (null: any) answer without promising.
  asio::awaitable<Result<PaxosRead>> PaxosPrepareRound(const cluster::Topology& topology,
                                                       const storage::DataKey& key,
                                                       const std::vector<uint32_t>& participants,
                                                       const Quorum& quorum, bool lazy,
                                                       const CasCondition* condition,
                                                       base::Deadline deadline);
  // Proposes `mutation` under `ballot`; returns how many accepted. Sets `maybe_accepted` unless
  // every participant refused.
  asio::awaitable<bool> PaxosProposeRound(const cluster::Topology& topology,
                                          const std::vector<uint32_t>& participants,
                                          const Quorum& quorum, Version ballot,
                                          const internode::Mutation& mutation,
                                          base::Deadline deadline, bool* maybe_accepted);
  // Writes `value` (its version is assigned here) if `condition` (null: always) holds.
  asio::awaitable<Result<CasResult>> PaxosWrite(const cluster::Topology& topology,
                                                const ReplicaSet& set, storage::DataKey key,
                                                const CasCondition* condition,
                                                storage::StoredValue value, Consistency serial,
                                                std::optional<Consistency> commit,
                                                base::Deadline deadline,
                                                const cluster::KeyspaceDef* ks = nullptr);
  // The first topology newer than `epoch` this node adopts, waited for until the deadline (and
  // at most two seconds); null if none comes. A replica that refuses a request for its fence
  // answers with its epoch, which makes this node pull it (InternodeClient::WatchEpochs).
  asio::awaitable<std::shared_ptr<const cluster::Topology>> NewerTopology(uint64_t epoch,
                                                                          base::Deadline deadline);
  // Plain writes to a linearizable keyspace: one unconditional Paxos write per key, run
  // concurrently; `level` only picks SERIAL or LOCAL_SERIAL. One version (or error) per write.
  // Each key is reported for client-side caching as its write ends, as the request `report` asks.
  asio::awaitable<std::vector<Result<Version>>> LinearizableWrites(
      const cluster::Topology& topology, const cluster::KeyspaceDef& ks,
      std::vector<std::pair<storage::DataKey, storage::StoredValue>> writes, Consistency level,
      base::Deadline deadline, const RequestOptions& report);
  // The key's newest stored version, linearizably: settles any unfinished proposal first.
  asio::awaitable<Result<std::optional<storage::StoredValue>>> SerialRead(
      const cluster::Topology& topology, const cluster::KeyspaceDef& ks, storage::DataKey key,
      Consistency serial, base::Deadline deadline);

  // Paxos counters; relaxed atomics, read only by Metrics().
  struct PaxosCounters {
    std::atomic<uint64_t> cas{0};           // compare-and-swap operations
    std::atomic<uint64_t> serial_reads{0};  // SERIAL reads
    std::atomic<uint64_t> plain_writes{0};  // writes to linearizable keyspaces
    std::atomic<uint64_t> prepares{0};      // prepare round trips
    std::atomic<uint64_t> proposes{0};      // propose round trips
    std::atomic<uint64_t> commits{0};       // commit round trips (awaited or not)
    std::atomic<uint64_t> contended{0};     // rounds retried after a refusal or a timeout
    std::atomic<uint64_t> unfinished{0};    // proposals of others completed along the way
    std::atomic<uint64_t> timeouts{0};      // operations that ran out of time
    std::atomic<uint64_t> leased{0};        // swaps proposed at once under a lease
    std::atomic<uint64_t> lease_lost{0};    // of those, refused (another ballot came between)
  };
  mutable PaxosCounters paxos_counters_;
  std::mutex leases_mu_;
  std::unordered_map<std::string, PaxosLease> leases_;  // guarded by leases_mu_; by data key
  // Paxos writes in progress here, per data key: a commit asks for the next promise only when
  // its write is the key's only one (a promise given under contention would pre-empt the
  // others' rounds). Guarded by leases_mu_.
  std::unordered_map<std::string, uint32_t> writing_;
  // Replication counters, added to on every read and write (so per thread), read only by
  // Metrics().
  struct ReplicaCounters {
    base::metrics::ShardedCounter writes;          // mutations sent to a replica (this node too)
    base::metrics::ShardedCounter write_failures;  // of those, not acknowledged (hinted or lost)
    base::metrics::ShardedCounter reads;           // reads asked of a replica
    base::metrics::ShardedCounter local_reads;     // of those, served by this node's own replica
    base::metrics::ShardedCounter remote_reads;    // of those, sent to another node
    base::metrics::ShardedCounter read_repairs;  // stale replicas sent the newest version by a read
    base::metrics::ShardedCounter speculative;   // spare replicas asked because one was slow
    base::metrics::ShardedCounter hints_stored;  // mutations kept as hints for a replica
    // Requests planned again with a newer topology after replicas refused the one they were
    // planned with (their fence had passed it).
    base::metrics::ShardedCounter replans;
  };
  mutable ReplicaCounters replica_counters_;
  // One read asked of a replica: this node's own (`local`) or another node's, which costs the
  // request a network round trip (what token-aware clients avoid).
  void CountRead(bool local) const {
    replica_counters_.reads.Add();
    (local ? replica_counters_.local_reads : replica_counters_.remote_reads).Add();
  }

  // Constant after construction.
  const CoordinatorOptions options_;
  const cluster::NodeIdentity identity_;
  cluster::Schema* const schema_;
  const cluster::ClusterView* const view_;
  replica::Replica* const local_;
  base::HybridClock* const clock_;
  base::PhysicalClock* const wall_;
  const asio::any_io_executor blocking_;
  const std::vector<cluster::InternodeClient*> clients_;
  HintStore* const hints_;
  cluster::TopologyStore* store_ = nullptr;  // set before serving
  JoinCommand join_command_;                 // set before serving
  static base::HotKeys::Options HotKeysOptionsOf(const CoordinatorOptions& options);
  base::HotKeys hot_keys_;

  // Client-side caching: reports the keys an operation changed (or may have: it timed out),
  // unless it is one of the coordinator's own steps (split_key_itself). Callers test
  // invalidations_.active() first: while nobody in the cluster tracks keys, that relaxed load is
  // all a write pays. `executor` is the calling coroutine's.
  void ReportChanged(const asio::any_io_executor& executor, const RequestOptions& options,
                     std::span<const std::string> keys) {
    if (!options.split_key_itself) invalidations_.Changed(executor, keys, options.origin);
  }
  // Whether an operation's outcome may have changed the key: it did, or it timed out.
  static bool MayHaveChanged(const Status& s) { return s.ok() || s.code() == Code::kTimeout; }
  Invalidations invalidations_;

  // The user table of the newest topology state, rebuilt when the state changes (users.cc).
  // One step of a read-modify-write: the new value to write (none: write nothing), the number
  // to answer with, a refusal, or (a sub-counter's) "increment the key instead".
  struct CounterStep {
    std::optional<std::string> write;
    bool erase = false;  // delete the key instead
    std::string value;
    base::CounterRefusal refused = base::CounterRefusal::kNone;
    bool redirect = false;
  };
  using CounterDecide = std::function<CounterStep(const std::optional<Record>&)>;
  // A linearizable read-modify-write of `key` itself (split or not): a SERIAL read, then a
  // compare-and-swap on the version read, again with the value that won until one applies.
  // Keeps the key's time to live.
  asio::awaitable<Result<CounterStep>> ReadModifyWrite(std::string key, RequestOptions options,
                                                       Consistency commit,
                                                       const CounterDecide& decide);
  // Increment() but for counting it in the hot-key sketch and reporting it for client-side
  // caching (Increment() does both, once, for the counter's key).
  asio::awaitable<Result<IncrementOutcome>> IncrementUncounted(std::string key,
                                                               base::CounterDelta delta,
                                                               RequestOptions options,
                                                               Consistency commit);
  // ReadModifyWrite() of a step that may run twice (the merge's), committed at the default
  // level, tried again after a TIMEOUT until `options.deadline`.
  asio::awaitable<Result<CounterStep>> IdempotentReadModifyWrite(std::string key,
                                                                 RequestOptions options,
                                                                 const CounterDecide& decide);
  // A split counter's values: the key's number and each sub-counter's not folded into it
  // (empty: absent or folded), read at `options`' level, sub-counters first.
  struct SplitSnapshot {
    std::string base;
    std::vector<std::string> parts;
    bool present = false;  // any of them exists
    Version version;       // the key's
    base::Clock::time_point read_at;
  };
  asio::awaitable<Result<SplitSnapshot>> ReadSplitValues(const std::string& key,
                                                         cluster::SplitEntry split,
                                                         RequestOptions options);
  // Reads `keys` (none a split counter) in parallel; one result each, in order.
  asio::awaitable<std::vector<Result<std::optional<Record>>>> GetMany(std::vector<std::string> keys,
                                                                      RequestOptions options);
  // The answer to an increment of a split counter: `value` (the new number of sub-counter
  // `changed`, or of the key) with the others as read here within the last second.
  asio::awaitable<Result<std::string>> SplitEstimate(
      const cluster::KeyspaceDef& ks, const std::string& key, cluster::SplitEntry split,
      const std::string& map_key, std::optional<uint32_t> changed, const std::string& value);
  // Commits a split counter's change as a topology epoch, then fences the phase it leaves.
  asio::awaitable<Status> CommitSplitChange(TopologyChange change, const std::string& keyspace,
                                            const std::string& key);
  // Raises the cluster's fence to `epoch` or beyond (a barrier first: every member must answer),
  // unless it is there already.
  asio::awaitable<Status> FenceTo(uint64_t epoch);
  // The merge of a split counter, from whichever phase it is at.
  asio::awaitable<Status> MergeCounter(const cluster::KeyspaceDef& ks, const std::string& key,
                                       uint32_t partition_bits, RequestOptions itself);
  struct SplitCounterMetrics {
    std::atomic<uint64_t> increments{0};  // of split counters
    std::atomic<uint64_t> redirected{0};  // sent from a sub-counter to the key
    std::atomic<uint64_t> reads{0};       // sums read
    std::atomic<uint64_t> automatic{0};   // splits this node's automatic splitter made
  };
  SplitCounterMetrics split_counters_;
  // This node's increments in flight on each sub-counter of a split counter.
  struct SplitInFlight {
    std::array<std::atomic<uint32_t>, cluster::kMaxSplitShards> n{};
  };
  std::shared_ptr<SplitInFlight> InFlightOf(const std::string& map_key);
  // The sub-counter an increment of a split counter in `shards` takes from this node.
  uint32_t PickShard(const cluster::Topology& topology, uint32_t shards,
                     const SplitInFlight& in_flight) const;
  std::unordered_map<std::string, std::shared_ptr<SplitInFlight>>
      split_in_flight_;  // guarded by split_estimates_mu_
  std::mutex split_estimates_mu_;
  std::unordered_map<std::string, SplitSnapshot> split_estimates_;  // guarded by the above

  mutable std::mutex users_mu_;
  mutable std::shared_ptr<const internode::TopologyState> users_state_;  // guarded by users_mu_
  mutable std::shared_ptr<const base::UserTable> users_;                 // guarded by users_mu_
};

// The record a read returns for a stored version at `now_ms`: nullopt unless it is live.
std::optional<Record> LiveRecord(const storage::StoredValue& v, uint64_t now_ms);

}  // namespace cairn::coordinator
