// The storage engine: one RocksDB instance per node holding Cairn's data, Paxos state, hints,
// metadata and the hash trees of its ranges, with last-writer-wins application and group commit.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/hlc.h"
#include "base/metrics.h"
#include "cairn/status.h"
#include "storage/format.h"
#include "storage/read_cache.h"
#include "storage/record_cache.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
class Env;
class EventListener;
class Statistics;
struct ReadOptions;
class Slice;
class Status;
class WriteBatch;
}  // namespace rocksdb

namespace cairn::storage {

struct EngineOptions {
  std::string path;
  // fsync every group commit before acknowledging it. Turning this off loses acknowledged
  // writes on power failure; only tests and benchmarks that say so do it.
  bool sync = true;
  size_t block_cache_bytes = size_t{256} << 20;
  // Values at least this large are stored in blob files, out of the LSM tree.
  size_t min_blob_bytes = size_t{64} << 10;
  // Upper bound on the bytes of one group commit; a larger backlog is committed in several.
  size_t max_group_bytes = size_t{64} << 20;
  // One plain data write in this many, chosen at random, is written as the key's whole value
  // instead of a merge operand (a "fold"), which bounds how many operands a read of a key
  // written often must fold. 1 folds every write (tests).
  uint32_t fold_every = 16;
  // Memory for the cache of recently read keys' values (0: no cache), and the largest value it
  // keeps. See read_cache.h.
  size_t read_cache_bytes = size_t{32} << 20;
  size_t read_cache_max_value_bytes = size_t{16} << 10;
  // Bytes of Paxos acceptor records the writer thread keeps in memory (0: none). See
  // record_cache.h.
  size_t paxos_cache_bytes = size_t{8} << 20;
  // Null: RocksDB's default environment. Tests pass a fault-injecting one.
  rocksdb::Env* env = nullptr;
  // Off only in cairn-engine-bench, to measure what the trees cost: group commits then still
  // read the versions they replace and write the key index, but change no tree, so the trees
  // (RangeTree) no longer say what the data holds. Never off in a node: repair needs them.
  bool maintain_trees = true;
  // Time for expiry (reads, compaction, purges). Null: the system clock.
  base::PhysicalClock* clock = nullptr;
};

// One last-writer-wins write of a key.
struct WriteOp {
  DataKey key;
  StoredValue value;
};

struct WriteOutcome {
  // The version written. Every op is written: last writer wins decides when the key is read (the
  // greatest version stored for it is its value), so an op older than the stored version is
  // written and simply never seen. Check-and-write goes through WriteRequest::txn.
  Version version;
};

// The column families: `data`, and the others, which hold small records keyed by their owners'
// layouts. Raw writes (RawWrite, GroupView::PutRaw) never go to kData, whose values are written
// through last-writer-wins merges only; kData names it for reads (ReadRange).
enum class Family { kMeta, kPaxos, kHints, kData };

struct MetaWrite {
  std::string key;
  std::optional<std::string> value;  // nullopt: delete the key
};

// A put or delete in one of the other column families.
struct RawWrite {
  Family family = Family::kMeta;
  std::string key;
  std::optional<std::string> value;  // nullopt: delete the key
};

// What a transaction (WriteRequest::txn) sees and does on the writer thread: reads see the
// store plus everything written earlier in the same group commit; writes join the group's batch
// (and are durable when the request's callback runs). Used for Paxos acceptor state, whose
// read-modify-writes must be atomic and fsynced before they are answered.
class GroupView {
 public:
  virtual ~GroupView() = default;
  // The key's current version (tombstones and expired values included), or nullopt.
  virtual Result<std::optional<StoredValue>> GetData(const DataKey& key) = 0;
  virtual Result<std::optional<std::string>> GetRaw(Family family, std::string_view key) = 0;
  // Adds a version of a key (last writer wins, like a plain write). Written as the key's whole
  // resulting value, which makes later reads of the key cheap.
  virtual void MergeData(const DataKey& key, StoredValue value) = 0;
  virtual void PutRaw(Family family, std::string key, std::string value) = 0;
  virtual void DeleteRaw(Family family, std::string key) = 0;
};

// Everything in one request is applied in the same atomic RocksDB write.
struct WriteRequest {
  std::vector<WriteOp> ops;
  std::vector<RawWrite> raw;
  // Removes all data of a keyspace id over `partitions` partitions, and remembers the id as
  // dropped so that compaction discards any write that still arrives for it.
  struct Drop {
    uint32_t keyspace = 0;
    uint32_t partitions = 0;
  };
  std::optional<Drop> drop;
  // Deletes every record of these (partition, keyspace) ranges, data and Paxos state alike: the
  // copies a node no longer holds after a topology change.
  struct RangeDelete {
    uint32_t partition = 0;
    uint32_t keyspace = 0;
    // The data and the tree only, not the Paxos acceptor records (a scrub that drops a corrupt
    // data file: the records are intact, and an acceptor must not forget its promises).
    bool keep_paxos = false;
  };
  std::vector<RangeDelete> range_deletes;
  // Removes a tombstone or an expired value for good, from the data and from its range's tree.
  // Who may purge what is the caller's decision (every replica must hold the tombstone first,
  // issue #16); the engine only makes it exact: a key is purged only if its stored version is
  // exactly `version` and that version is a tombstone or expired. Otherwise (a newer write
  // arrived, or the value is live) it is left as is, as is a key the same group writes or
  // deletes. Purges run after the group's other writes; Engine::purged() counts those done.
  struct Purge {
    DataKey key;
    Version version;
  };
  std::vector<Purge> purges;
  // Runs on the writer thread after the request's ops, raw writes and drop, atomically with
  // them; it reports its own results through what it captures. A non-OK status fails the group.
  std::function<Status(GroupView&)> txn;
};

// Runs on the engine's writer thread once the request is durable (or failed). `outcomes` has one
// entry per op, in order; it is empty when `status` is not OK.
using WriteCallback = std::function<void(Status status, std::vector<WriteOutcome> outcomes)>;

struct ScanItem {
  std::string key;  // user key
  StoredValue value;
};

// One stored record of a (partition, keyspace) range: its user key and its stored bytes (a data
// value as EncodeValue writes it, or a Paxos acceptor record).
struct RangeRecord {
  std::string key;
  std::string value;
};

// The digest of one (partition, keyspace) range as stored, the comparison repair starts from
// (issue #16): for each of kDigestSegments segments (a key's segment is its hash modulo the
// count), the XOR of DigestHashOf(key, version) over the keys in it. Replicas holding the same
// versions have equal digests whatever order their writes came in; a key held at another
// version changes its segment's hash only. Whether a version is a tombstone is not hashed:
// compaction turns an expired value into a tombstone of the same version, at its own time on
// each replica, and that must not make replicas' digests differ.
inline constexpr size_t kDigestSegments = 256;
struct RangeDigest {
  std::array<uint64_t, kDigestSegments> segments{};
  uint64_t keys = 0;  // keys in the range, tombstones included
  friend bool operator==(const RangeDigest&, const RangeDigest&) = default;
};
// The segment of `key` (a user key) in a RangeDigest.
size_t DigestSegmentOf(std::string_view key);
// The hash a stored version of `key` (a user key) adds to its segment.
uint64_t DigestHashOf(std::string_view key, Version version);

struct RangeChunk {
  std::vector<RangeRecord> records;  // in key order
  bool done = false;                 // no more records after these
  std::string last_key;              // resume after it
};

struct ScanResult {
  // In user-key order. Holds tombstones and expired values too (replicas reconcile them), but
  // only live ones count towards the limit.
  std::vector<ScanItem> items;
  // True when no more keys match; else resume after `last_key`.
  bool exhausted = false;
  std::string last_key;  // the last user key examined
};

// Engine owns the RocksDB instance and the group-commit writer thread.
//
// Thread safety: all methods may be called from any thread. Get() and the meta reads are short
// and may run on a reactor; Scan() and the synchronous meta writes block and must run elsewhere.
// Write() never blocks: the writer thread commits everything that arrived while the previous
// commit was syncing in one WriteBatch with one fsync.
class Engine {
 public:
  // Opens or creates the database at options.path with all column families.
  static Result<std::unique_ptr<Engine>> Open(const EngineOptions& options);
  // Commits everything already submitted, then closes the database.
  ~Engine();

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // The stored version of a key (tombstones and expired values included), or nullopt.
  Result<std::optional<StoredValue>> Get(const DataKey& key) const;

  // Submits a write to the group committer. `done` runs on the writer thread; keep it short.
  void Write(WriteRequest request, WriteCallback done);

  // How Scan finds its keys. kMerge seeks every partition's range and merges the cursors; kIndex
  // walks the key index (one key-ordered record per data key of the keyspace, whatever its
  // partition) and reads the values it names; kAuto takes the index for scans over more than a
  // few partitions. Both return the same items (tests compare them).
  enum class ScanPath { kAuto, kMerge, kIndex };
  // Keys of `keyspace` that start with `prefix` and sort after `after` (all when empty), merged
  // in key order across `partitions`: at most `limit` live items; stops early once more than
  // `max_dead` tombstones or expired values were examined, or once the items hold `max_bytes`
  // of keys and values (at least one item is returned). Blocking; run it off the reactors.
  Result<ScanResult> Scan(uint32_t keyspace, std::span<const uint32_t> partitions,
                          std::string_view prefix, std::string_view after, size_t limit,
                          size_t max_dead, size_t max_bytes = SIZE_MAX,
                          ScanPath path = ScanPath::kAuto) const;
  // The check of the key index: the data keys (keyspaces dropped aside) that have no index
  // record. Zero while the index is right; records of keys no longer held (left by a range
  // deletion) are allowed and skipped by scans. Reads every key: tests and checks only.
  Result<uint64_t> KeysMissingFromIndex() const;
  // Index records a scan met whose data key is no longer held (stale records, see above).
  uint64_t index_stale_skipped() const {
    return index_stale_skipped_.load(std::memory_order_relaxed);
  }
  uint64_t index_scans() const { return index_scans_.load(std::memory_order_relaxed); }

  // The records of `family` (kData or kPaxos) in one (partition, keyspace) range whose user keys
  // sort after `after` (all when empty) and, with `up_to`, not after it; in key order, stopping
  // once about `max_bytes` were read (at least one record). The range-transfer primitive's read:
  // streaming and repair. Blocking; run it off the reactors.
  Result<RangeChunk> ReadRange(Family family, uint32_t partition, uint32_t keyspace,
                               std::string_view after, std::optional<std::string_view> up_to,
                               size_t max_bytes) const;

  // The digest of one (partition, keyspace) range (see RangeDigest), from every record it holds.
  // Blocking, and reads the whole range: run it off the reactors, rate-limited. It is the check
  // of RangeTree(): both must agree on every range (keyspaces dropped since aside).
  Result<RangeDigest> DigestRange(uint32_t partition, uint32_t keyspace) const;

  // The digest of one range as the engine maintains it: every group commit updates the trees of
  // the ranges it writes in the same atomic batch as the data, so this equals DigestRange() of
  // what is committed, without reading the range. All zero for a range that holds nothing.
  // UNAVAILABLE while the range's tree is being rebuilt from its data (after a group that both
  // deleted the range and wrote into it; retry). Cheap: may be called on a reactor.
  Result<RangeDigest> RangeTree(uint32_t partition, uint32_t keyspace) const;
  // The (partition, keyspace) ranges whose tree is not empty (or is being rebuilt), in order.
  std::vector<std::pair<uint32_t, uint32_t>> TreeRanges() const;

  // Meta column family: small records of the node itself (node id, clock reservation,
  // keyspaces). GetMeta/ListMeta are short reads.
  Result<std::optional<std::string>> GetMeta(std::string_view key) const;
  // One record of `family` by its exact key (a point lookup: bloom filters, no iteration).
  Result<std::optional<std::string>> GetRaw(Family family, std::string_view key) const;
  Result<std::vector<std::pair<std::string, std::string>>> ListMeta(std::string_view prefix) const;
  // Records of `family` whose keys start with `prefix` and sort after `after` (all when empty),
  // in key order, at most `limit` of them.
  Result<std::vector<std::pair<std::string, std::string>>> List(Family family,
                                                                std::string_view prefix,
                                                                std::string_view after,
                                                                size_t limit) const;
  // Synchronous and fsynced: for start-up and the clock's reservations, not for request paths.
  Status WriteMeta(const std::vector<MetaWrite>& writes);

  // Keyspace ids dropped so far (never to be reused).
  std::set<uint32_t> DroppedKeyspaces() const;

  // Forces a flush and compaction of the data column family (tests and `cairn compact`).
  Status CompactAll();

  // Scrubbing: the table files of the data column family, and the check of one of them.
  struct TableFile {
    std::string name;  // as RocksDB names it ("/000123.sst")
    uint64_t bytes = 0;
  };
  std::vector<TableFile> DataFiles() const;
  // Reads the file and checks every block against its checksum. A corrupt file is taken out:
  // first every range its keys span is deleted from the data and the trees (the acceptor
  // records stay), so that no older version in a lower level comes back and the trees stay
  // exact; then the file itself is dropped (RocksDB DeleteFile) and a background error it caused
  // is cleared. The ranges dropped are to be repaired from the other replicas (the caller's
  // business). A file RocksDB cannot drop (a level-0 file that is not the oldest) is reported
  // and left; its ranges are deleted all the same, so reads no longer reach it. Blocking: run
  // it off the reactors. A file compacted away meanwhile checks as clean.
  struct FileCheck {
    std::string corrupt;  // why the file is corrupt; empty: it is not
    bool dropped = false;
    std::vector<std::pair<uint32_t, uint32_t>> ranges_dropped;  // (partition, keyspace)
  };
  Result<FileCheck> ScrubFile(const TableFile& file);
  // Corruption errors met by reads and by RocksDB's background work since open: a reason to
  // scrub now rather than at the next scheduled scrub.
  uint64_t corruptions_seen() const { return corruptions_.load(std::memory_order_relaxed); }

  // Bytes of the data: table and blob files on disk, and memtables (a node's load, and what
  // `cairn compact` reports before and after).
  uint64_t DiskBytes() const;
  // What of the data's table files is garbage: tombstones, values already expired when their
  // file was written, and purges' deletions, counted per file as it is written (a table
  // properties collector) and summed over the live files. Memtables, blob files, and older
  // versions a newer one shadows are not counted; a value that expires after its file was
  // written counts as live until a compaction rewrites it.
  struct Garbage {
    uint64_t table_bytes = 0;  // the table files' size
    uint64_t dead_bytes = 0;   // of which garbage (each file's size times its dead share)
    uint64_t dead_entries = 0;
    uint64_t entries = 0;
  };
  Garbage TableGarbage() const;

  // A RocksDB property of the data column family, e.g. "rocksdb.estimate-num-keys".
  std::optional<std::string> Property(std::string_view name) const;

  uint64_t group_commits() const;  // number of fsynced groups so far
  // How long writes waited in the writer thread's queue before their group began, and how long
  // each group commit took (its reads, batch, write and fsync): where a write's storage time goes.
  base::metrics::HistogramSnapshot write_wait() const { return write_wait_.Snapshot(); }
  base::metrics::HistogramSnapshot group_commit_time() const {
    return group_commit_time_.Snapshot();
  }
  uint64_t folds() const { return folds_.load(std::memory_order_relaxed); }  // see fold_every
  // Writes not applied because the same group wrote a newer version of their key.
  uint64_t absorbed() const { return absorbed_.load(std::memory_order_relaxed); }
  // Keys removed by WriteRequest::purges (those left as they were do not count).
  uint64_t purged() const { return purged_.load(std::memory_order_relaxed); }

  // RocksDB's own counters since open (for /metrics).
  struct Counters {
    uint64_t block_cache_hits = 0;
    uint64_t block_cache_misses = 0;
    uint64_t wal_syncs = 0;  // WAL fsyncs RocksDB made
  };
  Counters StatisticsCounters() const;
  ReadCache::Counters ReadCacheCounters() const { return read_cache_.counters(); }
  // Reads of Paxos acceptor records in group commits answered from memory, and not.
  uint64_t paxos_cache_hits() const { return paxos_cache_.hits(); }
  uint64_t paxos_cache_misses() const { return paxos_cache_.misses(); }

 private:
  struct Pending {
    WriteRequest request;
    WriteCallback done;
    size_t bytes = 0;
    std::chrono::steady_clock::time_point queued;
  };
  class GcFilterFactory;
  class Group;
  using RangeId = std::pair<uint32_t, uint32_t>;  // (partition, keyspace)
  struct RangeIdHash {
    size_t operator()(const RangeId& r) const {
      return std::hash<uint64_t>()(uint64_t{r.first} << 32 | r.second);
    }
  };
  // One segment of a range's tree: the XOR of its keys' hashes, and how many keys it has (stored
  // with the hash, so that a segment record alone says how many keys it covers).
  struct Segment {
    uint64_t hash = 0;
    uint64_t count = 0;
  };
  // The maintained tree of one range. A segment's hash and count side by side: a write touches
  // one segment, and reads one cache line of it.
  struct Tree {
    std::array<Segment, kDigestSegments> segments{};
    uint64_t keys = 0;
    RangeDigest Digest() const;
  };
  // Heap-allocated, so that a group commit can keep pointers to the trees it changes.
  using TreeMap = std::unordered_map<RangeId, std::unique_ptr<Tree>, RangeIdHash>;
  // One segment's new state, as a group commit computes it before writing it. `tree` is the
  // range's tree when it has one.
  struct SegmentState {
    RangeId range;
    uint16_t segment = 0;
    Segment value;
    Tree* tree = nullptr;
  };

  Engine(const EngineOptions& options);
  Status OpenDb();
  // FromRocks for reads, counting corruption errors (corruptions_seen()).
  Status ReadFailed(const rocksdb::Status& s, std::string_view what) const;
  // Writes `request` and waits for it (for blocking callers off the writer thread).
  Status WriteAndWait(WriteRequest request);
  // Open: loads the trees, or builds them all from the data when the database has none yet
  // (created before trees existed), and rebuilds the ranges left marked for a rebuild.
  Status LoadTrees();
  Status BuildAllTrees();
  // The tree of one range, from its data (what DigestRange computes, with segment counts). With
  // `index`, also adds to it the key index records of every key of the range.
  Result<Tree> BuildTree(RangeId range, rocksdb::WriteBatch* index = nullptr) const;
  // Calls `visit` with the range, user key and stored value of every data key, in key order (on
  // the iterator's storage: copy what must outlive the call); stops at the first error.
  Status ForEachDataKey(
      const rocksdb::ReadOptions& read_options, std::string_view what,
      const std::function<Status(RangeId, std::string_view, const rocksdb::Slice&)>& visit) const;
  // Open: builds the key index from the data when the database has none yet (created before
  // the index existed, or the first build was interrupted).
  Status LoadKeyIndex();
  Result<ScanResult> ScanMerge(uint32_t keyspace, std::span<const uint32_t> partitions,
                               std::string_view start, std::string_view prefix, size_t limit,
                               size_t max_dead, size_t max_bytes) const;
  Result<ScanResult> ScanIndex(uint32_t keyspace, std::span<const uint32_t> partitions,
                               std::string_view start, std::string_view prefix, size_t limit,
                               size_t max_dead, size_t max_bytes) const;
  // Rebuilds from data the trees of dirty_ ranges, stores them and clears their marks. On the
  // writer thread (or in Open); a range that fails stays dirty for the next attempt, and the
  // first failure is returned.
  Status RebuildDirtyTrees();
  // The group's changes to the trees: reads the committed version of every data key the group
  // wrote, adds the touched segments' records to its batch and returns their new states.
  Result<std::vector<SegmentState>> UpdateTrees(Group& group);
  // Adds to the group's batch the deletes of the purges (WriteRequest::purges) that apply, and
  // to its tree changes the keys they remove.
  Status AddPurges(std::vector<Pending>& pending, Group& group);
  void WriterLoop();
  void CommitGroup(std::vector<Pending>& pending);
  rocksdb::ColumnFamilyHandle* HandleOf(Family family) const;
  // Reads an encoded data key through the read cache; `what` names the read in errors.
  Result<std::optional<StoredValue>> ReadData(const std::string& key, std::string_view what) const;

  // Constant after Open().
  EngineOptions options_;
  base::PhysicalClock* clock_ = nullptr;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* data_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  rocksdb::ColumnFamilyHandle* paxos_ = nullptr;
  rocksdb::ColumnFamilyHandle* hints_ = nullptr;
  rocksdb::ColumnFamilyHandle* trees_cf_ = nullptr;
  // The key index: (keyspace, user key) -> partition, one record per data key, written in the
  // same batch as the data (see UpdateTrees), so that a prefix scan over many partitions is one
  // ordered walk instead of a seek per partition.
  rocksdb::ColumnFamilyHandle* keys_cf_ = nullptr;
  std::shared_ptr<GcFilterFactory> gc_factory_;
  std::shared_ptr<rocksdb::Statistics> statistics_;  // tickers only, no timers (cheap)

  // The writer thread's queue.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  // One data write in options_.fold_every is folded (see CommitGroup); the choice is random.
  uint64_t fold_random_ = 0x9e3779b97f4a7c15;  // xorshift64 state (writer thread only)
  std::atomic<uint64_t> folds_{0};
  std::atomic<uint64_t> absorbed_{0};
  base::metrics::LatencyHistogram write_wait_;
  base::metrics::LatencyHistogram group_commit_time_;
  std::atomic<uint64_t> purged_{0};
  mutable std::atomic<uint64_t> index_scans_{0};
  mutable std::atomic<uint64_t> index_stale_skipped_{0};
  mutable std::atomic<uint64_t> corruptions_{0};
  // Set when the table files change (flushes, compactions, a scrub's drop): TableGarbage()
  // sums the files' properties again.
  mutable std::atomic<bool> garbage_stale_{true};
  mutable std::mutex garbage_mu_;
  mutable Garbage garbage_;  // guarded by garbage_mu_
  // Counts background corruption errors, and marks garbage_ stale.
  std::shared_ptr<rocksdb::EventListener> listener_;
  // Exact: the writer thread keeps it in step with every data write (see read_cache.h).
  mutable ReadCache read_cache_;
  // The paxos family's records, exact: only group commits write the family (record_cache.h).
  RecordCache paxos_cache_;

  // The maintained trees of the ranges that hold keys. Changed only by the writer thread (and by
  // Open), under trees_mu_, after the group that changes them is committed; the writer thread
  // reads them without the lock, other threads (RangeTree) with it.
  mutable std::mutex trees_mu_;
  TreeMap trees_;  // guarded by trees_mu_
  // Ranges whose tree is rebuilt from data (see RangeTree): marked so in the trees column
  // family too, in the batch that made the tree unknown, until the rebuild is stored.
  std::set<RangeId> dirty_;  // guarded by trees_mu_

  std::deque<Pending> queue_;   // guarded by mu_
  bool stopping_ = false;       // guarded by mu_
  uint64_t group_commits_ = 0;  // guarded by mu_
  std::thread writer_;
};

}  // namespace cairn::storage
