// The Coordinator: the one entry point that every front door calls to run a client operation.
// It validates the request, resolves the keyspace, picks the replicas of the key's partition,
// stamps writes with a version, waits for the consistency level's acknowledgements within the
// deadline and returns a typed outcome.
//
// Writes go to every replica of the key (applied locally when this node is one) and answer once
// the level's count has acknowledged; replicas that are down or do not answer get hints. Reads
// ask the level's count of live replicas, return the newest version and repair the stale ones.
//
// This header is everything a front door may use: the operations and their plain-data types.
// How they run (replica sets, write and read rounds, Paxos, the cluster's view) is
// ClusterCoordinator's business (cluster_coordinator.h), which only the server wires up.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "base/access.h"
#include "base/async.h"
#include "base/counter.h"
#include "base/hlc.h"
#include "base/model.h"
#include "cairn/status.h"
#include "cairn/types.h"

namespace cairn::coordinator {

namespace asio = boost::asio;

// NOTE for callers: g++ 12 destroys aggregate temporaries twice when they appear in a full
// expression that contains co_await. Build these structs as named variables first.

struct RequestOptions {
  RequestOptions() = default;
  RequestOptions(std::string ks, Consistency level, base::Deadline by)
      : keyspace(std::move(ks)), consistency(level), deadline(by) {}

  std::string keyspace;  // empty: "default"
  Consistency consistency = Consistency::kDefault;
  base::Deadline deadline;
  // Reaches a split counter's key itself rather than the counter: for the coordinator's own
  // split-counter steps (counters.cc) alone; front doors leave it false. The keys such steps
  // change are not reported to KeyChangeListener (the operation that runs them reports the
  // counter's key).
  bool split_key_itself = false;
  // Counted in the hot-key sketch. False for the reads and swaps inside an increment, which
  // counts itself once, as an increment (counters.cc); front doors leave it true.
  bool count_hot_key = true;
  // Who asked, as the front door names its connection (0: nobody in particular): handed back
  // with the keys the operation changes (KeyChangeListener), so that a RESP connection with
  // CLIENT TRACKING ... NOLOOP is not told of its own writes.
  uint64_t origin = 0;
};

// Client-side caching (RESP CLIENT TRACKING; docs/resp.md, "Client-side caching"): where a node's
// coordinator reports the keys that client operations change, on this node and on the others
// (by name: as in Redis, where tracking ignores the database, a change of a key in any keyspace
// invalidates that name). The RESP door's tracking table implements it.
// Thread safety: called on any thread, concurrently; must not block or call the coordinator.
class KeyChangeListener {
 public:
  virtual ~KeyChangeListener() = default;
  // `keys` were changed (written, deleted, swapped, incremented, given a new time to live), or
  // may have been (the operation timed out), by an operation that has its outcome.
  // `origin` is the operation's RequestOptions::origin when it ran on this node, else 0.
  virtual void KeysChanged(std::span<const std::string> keys, uint64_t origin) = 0;
  // Any key may have changed without being reported (a flush, a lost message, a node that came
  // back): tracking clients must drop everything they cached.
  virtual void Flushed() = 0;
};

using base::CasCondition;
using base::kDefaultKeyspace;
using base::KeyspaceChange;
using base::KeyspaceDef;
using base::NodeStatus;

struct CasResult {
  bool applied = false;
  // The key's live value after the operation: the new one when applied (none after a delete),
  // else the one that failed the condition (none when the key is absent).
  std::optional<Record> current;
  Version version;  // the version written, when applied
};

// What an increment left (Coordinator::Increment).
struct IncrementOutcome {
  std::string value;  // the number after it, as stored
  // A split counter's answer: the sub-counter changed is exact, the others as this node last
  // read them (docs/hot-keys.md).
  bool estimate = false;
  base::CounterRefusal refused = base::CounterRefusal::kNone;  // nothing was written when set
};

// What a split or a merge of a counter left (Coordinator::SplitCounter).
struct SplitOutcome {
  std::string value;       // the counter's value afterwards (read at QUORUM); empty when absent
  uint32_t shards = 0;     // 0 after a merge
  bool unchanged = false;  // a split found it split so already: this call changed nothing
};

struct ScanPage {
  std::vector<std::pair<std::string, Record>> entries;  // key-ordered
  std::string cursor;  // pass back to continue; empty when the scan is complete
};

struct PutItem {
  std::string key;
  std::string value;
  uint64_t ttl_ms = 0;
};

struct CoordinatorOptions {
  size_t max_value_bytes = kDefaultMaxValueBytes;
  // Hot keys (docs/hot-keys.md): a key coordinated this many times a second or more is hot, and
  // a read of it tells native clients they may cache the answer for client_cache_ms (0: never).
  double hot_key_ops_per_s = 1000;
  uint32_t client_cache_ms = 100;
  uint32_t default_scan_limit = 100;
  uint32_t max_scan_limit = 10'000;
  size_t max_batch_items = 10'000;  // BatchPut
  size_t max_batch_get_keys = 1'000;
  // A scan page or a BatchGet answer holds at most about this many bytes of keys and values: a
  // scan page ends early (with a cursor), a BatchGet over it is TOO_LARGE.
  size_t max_answer_bytes = size_t{32} << 20;
  uint64_t max_ttl_ms = uint64_t{10} * 366 * 24 * 3600 * 1000;  // about ten years
  // A read whose chosen replicas have not all answered after this long also asks a spare one
  // (speculative retry): a replica that is paused, overloaded or behind a cut the failure
  // detector has not convicted yet then costs this delay, not the whole deadline. 0: never.
  std::chrono::milliseconds speculative_retry{100};
  // Tombstone purge after a repair (repair.cc): a tombstone goes once every replica has it, it is
  // older than the hint window (no hint can bring back an older version), and older than this
  // margin before the repair began (no write from before it is still in flight).
  std::chrono::milliseconds hint_window{std::chrono::hours(3)};
  std::chrono::milliseconds purge_margin{std::chrono::minutes(10)};
};

struct NodeInfo {
  uint32_t node_id = 0;
  std::string server_version;
};

struct ClusterInfo {
  uint32_t partitions = 0;
  bool formed = false;
  std::string note;              // why not formed
  uint64_t map_fingerprint = 0;  // of the partition map, once formed
  uint64_t epoch = 0;            // of the topology
  std::string change;            // the topology change in progress, for people; empty: none
};

// The partition map as front doors show it (the web console's grid): for each data centre, each
// partition's replicas in preference order, for the largest replication factor of any keyspace
// there (as `cairn status` counts a node's partitions).
struct PartitionLayout {
  struct Member {
    uint32_t node_id = 0;
    std::string address, dc, rack;
  };
  struct DataCentre {
    std::string name;
    uint32_t replication = 0;
    std::vector<std::vector<uint32_t>> replicas;  // one list per partition
    // During a topology change: the partitions whose set of replicas changes, with the replicas
    // they move to (in preference order), by partition.
    std::map<uint32_t, std::vector<uint32_t>> moving;
  };
  bool formed = false;
  std::string note;  // why not formed
  uint64_t epoch = 0;
  // The change in progress ("" when none): its description and stage.
  std::string change, stage;
  uint32_t partitions = 0;
  std::vector<Member> members;  // by address
  std::vector<DataCentre> dcs;  // by name
};

// The node operations of `cairn node` that start (or stop) a topology change; a new node joins by
// starting with --join instead.
enum class NodeOp {
  kDecommission,  // a live member streams its data to the nodes that take it over, then leaves
  kRemove,        // a dead member leaves; its data is streamed from the surviving replicas
  kCancel,        // the change in progress rolls back (only before reads have switched)
  // To a new node started with --join SEEDS --standby: it asks the members to take it in now
  // (kReplace: in the places of dead member `node_id`).
  kJoin,
  kReplace,
};

// What repairing one (partition, keyspace) range found and did (`cairn repair`).
struct RangeRepairReport {
  uint32_t partition = 0;
  std::string keyspace;
  std::vector<uint32_t> replicas;  // node ids of the range's replicas
  uint32_t answered = 0;           // replicas that took part (live and answering)
  std::string skipped;             // why the range was not repaired; empty: it was
  uint32_t segments_differing = 0;
  uint64_t keys_compared = 0;      // key versions listed from the segments that differ
  uint64_t keys_repaired = 0;      // records applied on replicas that lacked them
  uint64_t bytes = 0;              // bytes of those records
  uint64_t tombstones_purged = 0;  // tombstones and expired values purged after it, all replicas
  // Every replica took part, and all held the same versions once the repair was done.
  bool agreed = false;
  // Skipped only because `only_node` holds no replica of it (or is not its first): by design,
  // not for a fault.
  bool not_for_node = false;
};

// The place of one range in a `cairn repair` run (RepairRange's `run`; docs/operations.md): the
// node that repairs the range counts it in the run's progress, which RepairRuns() gathers.
struct RepairRunStep {
  uint64_t id = 0;     // random, the same for every range of the run; 0: not part of a run
  uint64_t index = 0;  // this range's place in the run, from 0
  uint64_t total = 0;  // the run's ranges
  std::vector<std::string> keyspaces;  // what the run repairs: its keyspaces,
  std::optional<uint32_t> partition;   // and its one partition (none: every partition)
};

// Where a `cairn repair` run is. A run is tracked by the nodes that repair its ranges, not by its
// client: one that stops sending ranges before the last (killed, disconnected) is abandoned once
// no range of it has begun or ended for RepairRunTable::kAbandonAfter.
enum class RepairRunState { kRunning, kFinished, kFailed, kAbandoned };
// "running", "finished", "failed", "abandoned".
std::string_view RepairRunStateName(RepairRunState state);

// A `cairn repair` run (Coordinator::RepairRuns): what the nodes that repaired its ranges counted,
// added up. Times are wall-clock milliseconds since the epoch.
struct RepairRunReport {
  uint64_t id = 0;
  RepairRunState state = RepairRunState::kRunning;
  std::vector<std::string> keyspaces;
  std::optional<uint32_t> partition;  // none: every partition
  uint32_t only_node = 0;             // the run's node filter (cairn repair --node); 0: none
  uint64_t started_ms = 0;            // its first range began
  uint64_t updated_ms = 0;            // a range of it last began or ended
  uint64_t ranges_total = 0;
  uint64_t ranges_done = 0;      // ended: repaired, skipped or failed (at most ranges_total)
  uint64_t ranges_repaired = 0;  // compared (and repaired where they differed)
  uint64_t ranges_skipped = 0;   // not repaired: moving, too few live replicas (not --node's)
  uint64_t ranges_failed = 0;
  uint64_t keys_repaired = 0;  // records sent to replicas that lacked them
  uint64_t bytes = 0;          // their bytes
  uint64_t tombstones_purged = 0;
  std::string last_error;  // of the range that failed last; empty: none failed
  // A range failed in a way that ends the run: `cairn repair` stops at an unknown keyspace or a
  // bad argument, which every other range would meet too.
  bool stopped = false;
  uint32_t in_flight = 0;        // ranges being repaired now
  std::string current_keyspace;  // the range begun last (when in_flight > 0)
  uint32_t current_partition = 0;
  std::vector<uint32_t> nodes;  // the nodes that repaired its ranges (RepairRuns() only)
  double ranges_per_s = 0;      // since it started (RepairRuns() only)
  double bytes_per_s = 0;
  std::optional<double> eta_s;  // seconds left at that pace, while it runs
};
struct RepairRunsReport {
  std::vector<RepairRunReport> runs;  // the newest first
  uint32_t nodes_asked = 0;
  std::vector<uint32_t> nodes_missing;  // live nodes that did not answer: their part is missing
};

// What `cairn compact` did on the node.
// A key the coordinators see most often (cairn hotkeys): its rates summed over the nodes that
// answered, with each node's part. Rates are estimates from sampled operations
// (base/hot_keys.h): a key above 1/128 of a node's operations is always counted there, and its
// count is high by at most error_per_s.
struct HotKeyReport {
  std::string keyspace;
  std::string key;
  bool truncated = false;  // `key` is the first 256 bytes of a longer one
  double reads_per_s = 0;
  double writes_per_s = 0;
  double increments_per_s = 0;                     // of the writes: a counter's increments
  double error_per_s = 0;                          // how much of reads + writes may be overcounted
  std::vector<std::pair<uint32_t, double>> nodes;  // node id and its operations per second
  uint32_t split_shards = 0;                       // a split counter's sub-counters; 0: not split
};
struct HotKeysReport {
  std::vector<HotKeyReport> keys;  // most operations per second first
  uint32_t nodes_asked = 0;
  std::vector<uint32_t> nodes_missing;  // live nodes that did not answer
};

struct CompactReport {
  uint64_t bytes_before = 0;
  uint64_t bytes_after = 0;
  std::chrono::milliseconds took{0};
};

// One node as `cairn status` shows it.
struct NodeReport {
  NodeStatus status;
  uint32_t partitions = 0;  // partition replicas it holds (for the largest replication factor)
};

// What a change of a user left (`cairn user ...`, ACL SETUSER).
struct UserChangeOutcome {
  std::optional<base::UserDef> user;  // after the change; none after a delete
  std::string token;                  // kAddToken: the new bearer token, shown once
};

// Thread safety: every method may be called concurrently from any reactor.
// An interface, so that front doors can be tested against a fake one.
class Coordinator {
 public:
  virtual ~Coordinator() = default;

  // The live value of `key`, or nullopt when it is absent, deleted or expired.
  virtual asio::awaitable<Result<std::optional<Record>>> Get(std::string key,
                                                             RequestOptions options) = 0;
  // Get() without suspending, for front doors' fast paths: the same answer when this node alone
  // gives it (the level needs one replica and this node, UP, is the one chosen), and errors that
  // need no replica (bad key, unknown keyspace). nullopt when the read needs other replicas or
  // Paxos: then call Get().
  virtual std::optional<Result<std::optional<Record>>> TryGetLocal(
      std::string_view key, const RequestOptions& options) = 0;

  // Stores `value`; `ttl_ms` > 0 makes it expire that long from now. Returns the new version.
  virtual asio::awaitable<Result<Version>> Put(std::string key, std::string value, uint64_t ttl_ms,
                                               RequestOptions options) = 0;

  // Deletes `key` (writes a tombstone). Returns the tombstone's version. Deleting an absent key
  // is not an error.
  virtual asio::awaitable<Result<Version>> Delete(std::string key, RequestOptions options) = 0;

  // Atomically: if `condition` holds for the key's current live value, stores `new_value` (with
  // `ttl_ms`), or deletes the key when `new_value` is nullopt. Linearizable, through per-key
  // Paxos among the key's replicas (`options.consistency` SERIAL, the default, or LOCAL_SERIAL
  // among those of this data centre). `commit` is the level the applied value is committed at
  // before the answer: by default QUORUM (LOCAL_QUORUM under LOCAL_SERIAL), or none in a
  // linearizable keyspace; ANY waits for no replica.
  virtual asio::awaitable<Result<CasResult>> Cas(std::string key, CasCondition condition,
                                                 std::optional<std::string> new_value,
                                                 uint64_t ttl_ms, RequestOptions options,
                                                 Consistency commit = Consistency::kDefault) = 0;

  // One page of the live keys that start with `prefix`, in key order, after `cursor`.
  // `limit` 0 means the default page size. With `partition`, only the keys of that partition
  // (below partition_count()): a sample of the keyspace, since keys are spread by hash.
  virtual asio::awaitable<Result<ScanPage>> Scan(
      std::string prefix, std::string cursor, uint32_t limit, RequestOptions options,
      std::optional<uint32_t> partition = std::nullopt) = 0;
  // The cluster's partitions (fixed when it formed).
  virtual uint32_t partition_count() const = 0;

  // Reads several keys; one result per key, in order. Not a snapshot across keys.
  virtual asio::awaitable<Result<std::vector<Result<std::optional<Record>>>>> BatchGet(
      std::vector<std::string> keys, RequestOptions options) = 0;

  // Writes several keys; one result (the version, or why it failed) per item, in order. The whole
  // batch is rejected when any item is invalid. Not atomic across partitions: some items may
  // apply while others time out.
  virtual asio::awaitable<Result<std::vector<Result<Version>>>> BatchPut(
      std::vector<PutItem> items, RequestOptions options) = 0;

  virtual asio::awaitable<Result<KeyspaceDef>> CreateKeyspace(KeyspaceDef spec,
                                                              bool if_not_exists) = 0;
  virtual Result<std::vector<KeyspaceDef>> ListKeyspaces() const = 0;
  virtual Result<KeyspaceDef> DescribeKeyspace(std::string_view name) const = 0;
  // Whether keyspace `name` ("" is the default one) exists and is linearizable: a cheap lookup
  // for the front doors' per-command decisions.
  virtual bool IsLinearizable(const std::string& name) const = 0;
  virtual asio::awaitable<Status> DropKeyspace(std::string name, bool if_exists) = 0;
  virtual asio::awaitable<Result<KeyspaceDef>> AlterKeyspace(std::string name,
                                                             KeyspaceChange change) = 0;

  virtual NodeInfo Info() const = 0;
  // The limits this coordinator enforces (front doors split larger client requests by them).
  virtual const CoordinatorOptions& options() const = 0;

  // Counters since start, by name (see docs/operations.md and docs/metrics.md): Paxos operations
  // and round trips, replica reads and writes, read repairs, hints stored.
  virtual std::vector<std::pair<std::string, uint64_t>> Metrics() const = 0;

  // Every node of the cluster with its state (from gossip) and the partitions it holds (0 before
  // the cluster has formed).
  virtual Result<std::vector<NodeReport>> ClusterStatus() const = 0;
  virtual ClusterInfo Cluster() const = 0;
  // Starts `op` on node `node_id` (ignored for kCancel) as the next topology epoch; answers with
  // the cluster's epoch and change once that epoch is decided (the change runs on by itself).
  // FAILED_PRECONDITION when another change runs or the change would leave a keyspace with fewer
  // replicas than it asks for; NOT_FOUND for a node that is not a member.
  virtual asio::awaitable<Result<ClusterInfo>> NodeOperation(NodeOp op, uint32_t node_id) = 0;
  virtual PartitionLayout Partitions() const = 0;
  // Compacts this node's data (flush, then every level down to the last): what tombstones purged
  // by repair held is reclaimed. Runs off the reactors; the node serves meanwhile.
  virtual asio::awaitable<Result<CompactReport>> Compact() = 0;
  // How long a client may cache the answer of a read of `key` (ms; 0: not at all): non-zero
  // for a key this node sees as hot (docs/hot-keys.md), read below SERIAL in a keyspace that is
  // not linearizable.
  virtual uint32_t ClientCacheMs(const RequestOptions& options, std::string_view key) const = 0;
  // ---- Counters (docs/hot-keys.md). ----
  // Adds `delta` to the number at `key` (absent: 0), keeping its time to live: a linearizable
  // read-modify-write through Paxos at `options.consistency` (SERIAL or LOCAL_SERIAL), committed
  // at `commit` as Cas() does. A split counter's increment goes to one of its sub-counters.
  // A value that is not such a number is refused (IncrementOutcome::refused), nothing written.
  virtual asio::awaitable<Result<IncrementOutcome>> Increment(std::string key,
                                                              base::CounterDelta delta,
                                                              RequestOptions options,
                                                              Consistency commit) {
    (void)key;
    (void)delta;
    (void)options;
    (void)commit;
    co_return Status::FailedPrecondition("this node keeps no counters");
  }
  // Splits the counter at `key` over `shards` sub-counters, or with `shards` 0 merges them back
  // into it; idempotent (an interrupted merge finishes when run again). Each step is a fenced
  // topology epoch, so every live member must answer.
  virtual asio::awaitable<Result<SplitOutcome>> SplitCounter(std::string key, uint32_t shards,
                                                             RequestOptions options) {
    (void)key;
    (void)shards;
    (void)options;
    co_return Status::FailedPrecondition("this node keeps no topology log");
  }

  // The `limit` hottest keys of `keyspace` ("": every keyspace), every live node asked.
  virtual asio::awaitable<Result<HotKeysReport>> HotKeys(std::string keyspace, uint32_t limit) = 0;
  // Repairs one (partition, keyspace) range (anti-entropy): its replicas compare digests, list
  // the keys of the segments that differ, and each pulls the newer versions it lacks.
  // INVALID_ARGUMENT for an unknown keyspace or a partition out of range; a range that cannot be
  // repaired now (a topology change moves it; fewer than two live replicas) is reported as skipped,
  // as is one without a replica on `only_node` when that is not 0 (with `only_as_first`: one whose
  // first replica is not `only_node`, as background repair asks). With `run.id` set, the range
  // counts in the progress of that `cairn repair` run (INVALID_ARGUMENT when `run` cannot be: no
  // total, or an index not below it).
  virtual asio::awaitable<Result<RangeRepairReport>> RepairRange(std::string keyspace,
                                                                 uint32_t partition,
                                                                 uint32_t only_node,
                                                                 bool only_as_first,
                                                                 RepairRunStep run) = 0;
  // The `cairn repair` runs the live nodes repaired ranges of lately (each keeps its last
  // RepairRunTable::kCapacity), each node's part of a run added up, the newest first.
  virtual asio::awaitable<Result<RepairRunsReport>> RepairRuns() = 0;
  // The node's wall clock: the one reading of wall time for everything the node does (tests and
  // --debug-clock-skew-ms inject time here), front doors' TTL arithmetic included.
  virtual base::PhysicalClock& wall_clock() const = 0;

  // ---- Users (docs/security.md). Permission checks are the front doors' business, before
  // they call anything here. ----
  // Changes one user as the next topology epoch. `password` (kAdd, kBootstrap, kSetPassword) is
  // hashed here, off the reactors; kAddToken makes the token. Errors as cluster::PlanUserChange
  // says; the default (fakes, nodes without a topology log) is FAILED_PRECONDITION.
  virtual asio::awaitable<Result<UserChangeOutcome>> ChangeUser(base::UserChange change,
                                                                std::string password) {
    (void)change;
    (void)password;
    co_return Status::FailedPrecondition("this node keeps no users");
  }
  // The users of this node's newest topology epoch (never null).
  virtual std::shared_ptr<const base::UserTable> Users() const { return base::UserTable::Make({}); }

  // ---- Client-side caching (docs/resp.md, "Client-side caching"). ----
  // Where the keys changed through this node and through the others go; null: nowhere. Set
  // before serving; the listener outlives the coordinator's serving.
  virtual void SetKeyChangeListener(KeyChangeListener* listener) { (void)listener; }
  // A connection of this node starts tracking keys. The first one tells every live member that
  // this node tracks (so that they send it the keys they change from then on) and completes once
  // they answered, or after about a second; the others complete at once.
  virtual asio::awaitable<void> StartTracking() { co_return; }
  // A connection stopped tracking keys (or closed); one call per StartTracking().
  virtual void StopTracking() {}
  // Every key may have changed (FLUSHDB, FLUSHALL): tracking clients of every node drop what
  // they cached.
  virtual asio::awaitable<void> InvalidateAll() { co_return; }
};

}  // namespace cairn::coordinator
