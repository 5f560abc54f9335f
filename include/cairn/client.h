// The Cairn C++ client library.
//
//   cairn::ClientOptions options;
//   options.servers = {"127.0.0.1:7400"};
//   cairn::Client client(options);                  // blocking API, usable from any thread
//   auto version = client.Put("greeting", "hello");  // Result<Version>
//   auto record = client.Get("greeting");            // Result<std::optional<Record>>
//
// AsyncClient has the same calls as Boost.Asio awaitables. Errors are values: every call returns
// a Result or a Status whose code says what a caller may do (see cairn/status.h). docs/client.md
// has the whole guide.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "cairn/options.h"
#include "cairn/status.h"
#include "cairn/types.h"

namespace cairn {

struct CasResult {
  bool applied = false;
  // The key's live value after the call: the new one when applied (none after a delete), else
  // the one that failed the condition (none when the key is absent).
  std::optional<Record> current;
};

struct ScanPage {
  std::vector<std::pair<std::string, Record>> entries;  // in key order
  std::string cursor;  // pass in ScanOptions::cursor for the next page; empty when done
  bool done() const { return cursor.empty(); }
};

struct KeyspaceInfo {
  std::string name;
  uint32_t id = 0;
  ReplicationMap replication;
  Consistency read_consistency = Consistency::kDefault;
  Consistency write_consistency = Consistency::kDefault;
  uint64_t created_at_ms = 0;
  bool linearizable = false;
  uint32_t auto_split_increments_per_s = 0;  // 0: counters are not split automatically
  uint32_t auto_split_shards = 0;
};

struct ServerInfo {
  uint32_t node_id = 0;
  std::string version;
};

// One node of the cluster as the answering node sees it.
// A range a node streams in during a topology change, and what it has applied of it so far.
struct StreamingRange {
  uint32_t partition = 0;
  uint32_t keyspace = 0;  // keyspace id
  uint32_t source = 0;    // node id
  uint64_t chunks = 0;
  uint64_t bytes = 0;
};

struct NodeInfo {
  uint32_t node_id = 0;  // 0 while it has never been heard from
  std::string address;
  std::string dc;
  std::string rack;
  bool up = false;
  uint32_t partitions = 0;  // partition replicas it holds
  uint64_t load_bytes = 0;
  // Of load_bytes, garbage in table files: tombstones and values expired when written (purged by
  // repair, reclaimed by compaction). Memtables and blob files not counted.
  uint64_t dead_bytes = 0;
  uint64_t hints_pending = 0;  // hints it holds for other nodes
  bool self = false;           // the node that answered
  std::string member_state;    // NORMAL, JOINING or LEAVING
  bool dead = false;           // removed or being replaced
  // Its part in the topology change in progress: ranges it streams in, done, bytes so far.
  uint32_t streams_total = 0;
  uint32_t streams_done = 0;
  uint64_t stream_bytes = 0;
  uint64_t stream_chunks = 0;  // chunks applied (stream_bytes is their size)
  uint64_t stream_rate = 0;    // bytes per second since its first chunk of the change
  // The range it streams now, if one is: (partition, keyspace) from node `source`.
  std::optional<StreamingRange> streaming;
};

// What repairing one (partition, keyspace) range found and did (AsyncClient::RepairRange).
struct RepairReport {
  uint32_t partition = 0;
  std::vector<uint32_t> replicas;  // node ids
  uint32_t answered = 0;           // replicas that took part
  std::string skipped;             // why the range was not repaired; empty: it was
  uint32_t segments_differing = 0;
  uint64_t keys_compared = 0;  // key versions listed from the segments that differ
  uint64_t keys_repaired = 0;  // records applied on replicas that lacked them
  uint64_t bytes = 0;          // bytes of those records
  bool agreed = false;         // every replica took part and holds the same versions after it
  // Once agreed: tombstones and expired values old enough to go, purged on every replica.
  uint64_t tombstones_purged = 0;
};

// A range's place in a run of `cairn repair` over many ranges: the node that repairs the range
// counts it in the run's progress, which GET /v1/repairs and the web console show
// (docs/http.md). Give every range of one run the same random id.
struct RepairRunTag {
  uint64_t id = 0;                     // 0: not part of a tracked run
  uint64_t index = 0;                  // this range's place in the run, from 0 (below `total`)
  uint64_t total = 0;                  // the run's ranges
  std::vector<std::string> keyspaces;  // what the run repairs: its keyspaces,
  std::optional<uint32_t> partition;   // and its one partition (none: every partition)
};

// What compacting one node's data did (AsyncClient::Compact).
struct CompactReport {
  uint64_t bytes_before = 0;
  uint64_t bytes_after = 0;
  std::chrono::milliseconds took{0};
};

// One key the cluster's coordinators see often (AsyncClient::HotKeys, cairn hotkeys): estimates
// from sampled operations over the last 10-20 seconds, summed over the nodes that answered.
struct HotKeyInfo {
  std::string keyspace;
  std::string key;  // at most its first 256 bytes
  bool truncated = false;
  double reads_per_s = 0;
  double writes_per_s = 0;
  double increments_per_s = 0;                     // of the writes: a counter's increments
  double error_per_s = 0;                          // how much of reads + writes may be overcounted
  std::vector<std::pair<uint32_t, double>> nodes;  // node id, its operations per second
  uint32_t split_shards = 0;  // a split counter's sub-counters (docs/hot-keys.md); 0: not split
};
struct HotKeysInfo {
  std::vector<HotKeyInfo> keys;  // most operations per second first
  uint32_t nodes_asked = 0;
  std::vector<uint32_t> nodes_missing;  // live nodes that did not answer
};

// What an increment left (AsyncClient::Increment).
struct IncrementResult {
  std::string value;  // the number after it, in decimal
  // A split counter's answer (docs/hot-keys.md): the sub-counter changed is exact, the others as
  // the coordinator last read them. Get() reads their sum.
  bool estimate = false;
};

// A counter after a split or a merge (AsyncClient::SplitCounter).
struct SplitCounterResult {
  std::string value;    // its value afterwards, read at QUORUM; empty when absent
  uint32_t shards = 0;  // 0 after a merge
};

// A user of a cluster (docs/security.md), as `cairn user list` shows it: never its password hash.
struct UserInfo {
  std::string name;
  bool superuser = false;
  bool disabled = false;
  // Keyspace name (or "*") -> permission bits (UserChange::kRead | kWrite | kAdmin).
  std::vector<std::pair<std::string, uint32_t>> grants;
  uint32_t tokens = 0;  // bearer tokens issued
};

// One change of one user (AsyncClient::ChangeUser). Needs ADMIN on "*"; only a superuser makes
// or changes a superuser.
struct UserChange {
  enum Kind {
    kAdd = 1,
    kDelete = 2,
    kGrant = 3,
    kRevoke = 4,
    kSetPassword = 5,
    kEnable = 6,
    kDisable = 7,
    kAddToken = 8,
    kClearTokens = 9,
    kSetSuperuser = 10,
  };
  static constexpr uint32_t kRead = 1, kWrite = 2, kAdmin = 4;
  Kind kind = kAdd;
  std::string name;
  std::string password;    // kAdd, kSetPassword
  bool superuser = false;  // kAdd, kSetSuperuser
  std::string keyspace;    // kGrant, kRevoke: a keyspace or "*"
  uint32_t permissions = 0;
};
struct UserChangeResult {
  std::optional<UserInfo> user;  // after the change; none after kDelete
  std::string token;             // kAddToken: the new token, shown this once
};

struct ClusterInfo {
  std::vector<NodeInfo> nodes;
  uint32_t partitions = 0;
  bool formed = false;
  std::string note;              // why the cluster has not formed yet
  uint64_t map_fingerprint = 0;  // of the partition map; 0 before the cluster has formed
  uint64_t topology_epoch = 0;
  std::string change;  // the topology change in progress, for people; empty: none
};

// The asynchronous client. Every call must be made from a coroutine running on the executor
// given to the constructor, and that executor must not run handlers concurrently (a
// single-threaded io_context, or a strand). Connections are opened lazily, pooled, and reopened
// with backoff when they break.
class AsyncClient {
 public:
  AsyncClient(boost::asio::any_io_executor executor, ClientOptions options);
  ~AsyncClient();  // closes the connections; calls in flight fail
  AsyncClient(const AsyncClient&) = delete;
  AsyncClient& operator=(const AsyncClient&) = delete;

  // The live value of `key`, or nullopt when it is absent, deleted or expired.
  boost::asio::awaitable<Result<std::optional<Record>>> Get(std::string key,
                                                            ReadOptions options = ReadOptions());

  // Stores `value`; returns the version it was stored with.
  boost::asio::awaitable<Result<Version>> Put(std::string key, std::string value,
                                              WriteOptions options = WriteOptions());

  // Deletes `key`; deleting an absent key succeeds.
  boost::asio::awaitable<Result<Version>> Delete(std::string key,
                                                 WriteOptions options = WriteOptions());

  // If `condition` holds, stores `new_value`, or deletes the key when it is nullopt.
  // Applied or not is in the result, with the key's current value.
  boost::asio::awaitable<Result<CasResult>> Cas(std::string key, CasCondition condition,
                                                std::optional<std::string> new_value,
                                                WriteOptions options = WriteOptions());

  // Adds `by` to the integer at `key` (absent: 0), linearizably (Redis's INCRBY), keeping its
  // time to live. FAILED_PRECONDITION, nothing written, when the value is not an integer or the
  // sum overflows. `options.consistency` is the serial level (SERIAL or LOCAL_SERIAL). Not
  // idempotent: a TIMEOUT may still have applied.
  boost::asio::awaitable<Result<IncrementResult>> Increment(std::string key, int64_t by,
                                                            WriteOptions options = WriteOptions());
  // The same with a decimal increment (Redis's INCRBYFLOAT), e.g. "2.5".
  boost::asio::awaitable<Result<IncrementResult>> IncrementByFloat(
      std::string key, std::string by, WriteOptions options = WriteOptions());
  // Spreads the counter at `key` of `keyspace` over `shards` (2-64) sub-counters on other
  // partitions, or with `shards` 0 merges them back (docs/hot-keys.md). Admin on the keyspace.
  boost::asio::awaitable<Result<SplitCounterResult>> SplitCounter(std::string keyspace,
                                                                  std::string key, uint32_t shards);

  // One page of the keys starting with `prefix`, in key order.
  boost::asio::awaitable<Result<ScanPage>> Scan(std::string prefix,
                                                ScanOptions options = ScanOptions());

  // One result per key, in order.
  boost::asio::awaitable<Result<std::vector<Result<std::optional<Record>>>>> BatchGet(
      std::vector<std::string> keys, ReadOptions options = ReadOptions());
  // One result per item, in order: its version, or why it was not written at the level (a
  // TIMEOUT item may still have been applied). Rejected whole if any item is invalid; not atomic.
  boost::asio::awaitable<Result<std::vector<Result<Version>>>> BatchPut(
      std::vector<std::pair<std::string, std::string>> items,
      WriteOptions options = WriteOptions());

  boost::asio::awaitable<Result<KeyspaceInfo>> CreateKeyspace(KeyspaceSpec spec,
                                                              bool if_not_exists = false);
  boost::asio::awaitable<Result<std::vector<KeyspaceInfo>>> ListKeyspaces();
  boost::asio::awaitable<Result<KeyspaceInfo>> DescribeKeyspace(std::string name);
  boost::asio::awaitable<Status> DropKeyspace(std::string name, bool if_exists = false);
  boost::asio::awaitable<Result<KeyspaceInfo>> AlterKeyspace(std::string name,
                                                             KeyspaceChange change);

  // Round trip to a server; says which node answered.
  boost::asio::awaitable<Result<ServerInfo>> Ping();
  // The answering node's counters since it started, by name (docs/operations.md).
  boost::asio::awaitable<Result<std::map<std::string, uint64_t>>> Metrics();

  // Every node of the cluster with its state, as the node answering sees it.
  boost::asio::awaitable<Result<ClusterInfo>> ClusterStatus();

  // Node operations (docs/operations.md): each starts a topology change and answers once its
  // first epoch is decided, with the cluster's epoch and change; the change then runs on its own
  // (ClusterStatus() shows its progress). DecommissionNode: a live member streams its data to
  // the nodes that take it over, then leaves. RemoveNode: a dead member leaves, its data streamed
  // from the surviving replicas. CancelNodeChange: the change in progress rolls back, until
  // reads have switched to the new replicas.
  // kJoin and kReplace (of dead member `node_id`) go to a new node started with
  // `cairnd --join SEEDS --standby`: it then asks the members to take it in.
  enum class NodeOperation { kDecommission, kRemove, kCancel, kJoin, kReplace };
  boost::asio::awaitable<Result<ClusterInfo>> ChangeNode(NodeOperation op, uint32_t node_id);

  // Repairs one range of `keyspace` ("" is the default one): partition `partition`'s replicas
  // compare what they hold and each takes the newer versions it lacks (docs/operations.md).
  // `only_node` (0: any) skips a range none of whose replicas is that node.
  // Compacts the answering node's data, reclaiming what purged tombstones held (cairn compact).
  boost::asio::awaitable<Result<CompactReport>> Compact();
  // The `limit` (1-1000) keys of `keyspace` ("": every keyspace) that the cluster's coordinators
  // see most often, every live node asked (cairn hotkeys).
  boost::asio::awaitable<Result<HotKeysInfo>> HotKeys(std::string keyspace, uint32_t limit = 20);
  // Users (servers with --auth; docs/security.md).
  boost::asio::awaitable<Result<UserChangeResult>> ChangeUser(UserChange change);
  boost::asio::awaitable<Result<std::vector<UserInfo>>> ListUsers();
  boost::asio::awaitable<Result<RepairReport>> RepairRange(std::string keyspace, uint32_t partition,
                                                           uint32_t only_node = 0);
  // The same, counted in the progress of repair run `run` (INVALID_ARGUMENT when `run.index` is
  // not below `run.total`).
  boost::asio::awaitable<Result<RepairReport>> RepairRange(std::string keyspace, uint32_t partition,
                                                           uint32_t only_node, RepairRunTag run);

  // Closes all connections now. Later calls reconnect.
  void Close();

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// The blocking client: the same calls, each waiting for its answer. Thread-safe: any number of
// threads may call it at once; their requests share its pooled connections (one I/O thread).
class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Result<std::optional<Record>> Get(std::string key, ReadOptions options = ReadOptions());
  Result<Version> Put(std::string key, std::string value, WriteOptions options = WriteOptions());
  Result<Version> Delete(std::string key, WriteOptions options = WriteOptions());
  Result<CasResult> Cas(std::string key, CasCondition condition,
                        std::optional<std::string> new_value,
                        WriteOptions options = WriteOptions());
  Result<IncrementResult> Increment(std::string key, int64_t by,
                                    WriteOptions options = WriteOptions());
  Result<IncrementResult> IncrementByFloat(std::string key, std::string by,
                                           WriteOptions options = WriteOptions());
  Result<SplitCounterResult> SplitCounter(std::string keyspace, std::string key, uint32_t shards);
  Result<ScanPage> Scan(std::string prefix, ScanOptions options = ScanOptions());
  Result<std::vector<Result<std::optional<Record>>>> BatchGet(std::vector<std::string> keys,
                                                              ReadOptions options = ReadOptions());
  Result<std::vector<Result<Version>>> BatchPut(
      std::vector<std::pair<std::string, std::string>> items,
      WriteOptions options = WriteOptions());
  Result<KeyspaceInfo> CreateKeyspace(KeyspaceSpec spec, bool if_not_exists = false);
  Result<std::vector<KeyspaceInfo>> ListKeyspaces();
  Result<KeyspaceInfo> DescribeKeyspace(std::string name);
  Status DropKeyspace(std::string name, bool if_exists = false);
  Result<KeyspaceInfo> AlterKeyspace(std::string name, KeyspaceChange change);
  Result<ServerInfo> Ping();
  Result<std::map<std::string, uint64_t>> Metrics();
  Result<ClusterInfo> ClusterStatus();
  Result<ClusterInfo> ChangeNode(AsyncClient::NodeOperation op, uint32_t node_id);
  Result<CompactReport> Compact();
  Result<HotKeysInfo> HotKeys(std::string keyspace, uint32_t limit = 20);
  Result<UserChangeResult> ChangeUser(UserChange change);
  Result<std::vector<UserInfo>> ListUsers();
  Result<RepairReport> RepairRange(std::string keyspace, uint32_t partition,
                                   uint32_t only_node = 0);
  Result<RepairReport> RepairRange(std::string keyspace, uint32_t partition, uint32_t only_node,
                                   RepairRunTag run);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace cairn
