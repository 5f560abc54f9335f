#include "storage/engine.h"

#include "base/endian.h"
#include "base/hash.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <chrono>
#include <cstring>
#include <deque>
#include <future>
#include <queue>
#include <unordered_map>

#include <fmt/format.h>
#include <rocksdb/cache.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_reader.h>
#include <rocksdb/statistics.h>
#include <rocksdb/table.h>
#include <rocksdb/table_properties.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

namespace cairn::storage {
namespace {

constexpr const char* kDataCf = "data";
constexpr const char* kPaxosCf = "paxos";
constexpr const char* kHintsCf = "hints";
constexpr const char* kMetaCf = "meta";
constexpr const char* kTreesCf = "trees";
constexpr std::string_view kDroppedPrefix = "dropped_keyspace/";
// Present once the trees column family holds the tree of every range (see LoadTrees): absent in
// a database created before trees existed, and while the first build of them is under way.
constexpr std::string_view kTreesVersionKey = "trees_version";
constexpr std::string_view kTreesVersion = "1";
constexpr const char* kKeysCf = "keys";
// Present once the keys column family indexes every data key (see Engine::LoadKeyIndex).
constexpr std::string_view kKeysVersionKey = "keys_version";
constexpr std::string_view kKeysVersion = "1";
// Scans over at most this many partitions seek each one (Engine::ScanPath::kMerge).
constexpr size_t kMergeScanMaxPartitions = 4;

// A key index record's key: the keyspace (big-endian, so that a keyspace's records are
// contiguous) and the user key; its value is the key's partition.
std::string IndexKey(uint32_t keyspace, std::string_view key) {
  std::string out;
  out.reserve(4 + key.size());
  base::PutBig32(&out, keyspace);
  out.append(key);
  return out;
}
std::string IndexValue(uint32_t partition) {
  std::string out;
  base::PutBig32(&out, partition);
  return out;
}
// The smallest string greater than every string that starts with `prefix` (empty: none).
std::string PrefixLimit(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) prefix.pop_back();
  if (!prefix.empty()) prefix.back() = static_cast<char>(prefix.back() + 1);
  return prefix;
}

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  return Status::Internal(fmt::format("{}: {}", what, s.ToString()));
}

// Counts the corruption errors of RocksDB's background work (a compaction that read a corrupt
// block): the engine then scrubs (Engine::corruptions_seen). And marks the garbage figures
// stale whenever the table files change.
class EngineListener final : public rocksdb::EventListener {
 public:
  EngineListener(std::atomic<uint64_t>* corruptions, std::atomic<bool>* garbage_stale)
      : corruptions_(corruptions), garbage_stale_(garbage_stale) {}
  void OnBackgroundError(rocksdb::BackgroundErrorReason, rocksdb::Status* error) override {
    if (error != nullptr && error->IsCorruption()) {
      corruptions_->fetch_add(1, std::memory_order_relaxed);
      spdlog::error("storage: background work met a corrupt file: {} (a scrub will drop it)",
                    error->ToString());
    }
  }
  void OnFlushCompleted(rocksdb::DB*, const rocksdb::FlushJobInfo&) override {
    garbage_stale_->store(true, std::memory_order_relaxed);
  }
  void OnCompactionCompleted(rocksdb::DB*, const rocksdb::CompactionJobInfo&) override {
    garbage_stale_->store(true, std::memory_order_relaxed);
  }

 private:
  std::atomic<uint64_t>* const corruptions_;
  std::atomic<bool>* const garbage_stale_;
};

// The user properties a data table file carries: its entries' bytes (key and value, before
// compression), and of those, the garbage's.
constexpr const char* kEntryBytesProperty = "cairn.entry-bytes";
constexpr const char* kDeadBytesProperty = "cairn.dead-bytes";
constexpr const char* kEntriesProperty = "cairn.entries";
constexpr const char* kDeadEntriesProperty = "cairn.dead-entries";

// Counts, in each data table file as it is written, the entries that are garbage: tombstones,
// values already expired at that time, and RocksDB deletions (purges). Large values (blob
// references) and merge operands count as live.
class GarbageCollector final : public rocksdb::TablePropertiesCollector {
 public:
  explicit GarbageCollector(uint64_t now_ms) : now_ms_(now_ms) {}
  rocksdb::Status AddUserKey(const rocksdb::Slice& key, const rocksdb::Slice& value,
                             rocksdb::EntryType type, rocksdb::SequenceNumber, uint64_t) override {
    const uint64_t bytes = key.size() + value.size();
    bytes_ += bytes;
    ++entries_;
    bool dead = type == rocksdb::kEntryDelete || type == rocksdb::kEntrySingleDelete;
    if (type == rocksdb::kEntryPut) {
      auto header = DecodeValueHeader(std::string_view(value.data(), value.size()));
      dead = header.ok() && !header->IsLive(now_ms_);
    }
    if (dead) {
      dead_bytes_ += bytes;
      ++dead_entries_;
    }
    return rocksdb::Status::OK();
  }
  rocksdb::Status Finish(rocksdb::UserCollectedProperties* properties) override {
    *properties = GetReadableProperties();
    return rocksdb::Status::OK();
  }
  rocksdb::UserCollectedProperties GetReadableProperties() const override {
    return {{kEntryBytesProperty, std::to_string(bytes_)},
            {kDeadBytesProperty, std::to_string(dead_bytes_)},
            {kEntriesProperty, std::to_string(entries_)},
            {kDeadEntriesProperty, std::to_string(dead_entries_)}};
  }
  const char* Name() const override { return "cairn.GarbageCollector"; }

 private:
  const uint64_t now_ms_;
  uint64_t bytes_ = 0, dead_bytes_ = 0, entries_ = 0, dead_entries_ = 0;
};

class GarbageCollectorFactory final : public rocksdb::TablePropertiesCollectorFactory {
 public:
  explicit GarbageCollectorFactory(base::PhysicalClock* clock) : clock_(clock) {}
  rocksdb::TablePropertiesCollector* CreateTablePropertiesCollector(
      rocksdb::TablePropertiesCollectorFactory::Context) override {
    return new GarbageCollector(clock_->NowMillis());
  }
  const char* Name() const override { return "cairn.GarbageCollectorFactory"; }

 private:
  base::PhysicalClock* const clock_;
};

uint64_t PropertyNumber(const rocksdb::UserCollectedProperties& p, const char* name) {
  auto it = p.find(name);
  return it == p.end() ? 0 : std::strtoull(it->second.c_str(), nullptr, 10);
}

std::string DroppedKey(uint32_t keyspace) { return fmt::format("{}{}", kDroppedPrefix, keyspace); }

// The trees column family: for each range, its segments' records, keyed by the range's data key
// prefix and the segment number (u16 big-endian), each holding the segment's hash and key count
// (u64 big-endian each; a segment with no keys has no record); and, keyed by the prefix alone, a
// mark that the range's tree is to be rebuilt from its data (see Engine::RebuildDirtyTrees).
constexpr size_t kTreeSegmentKeyBytes = kKeyHeaderBytes + 2;
constexpr size_t kTreeSegmentValueBytes = 16;
// The largest header of a stored value (format.h): format, flags, HLC, node id, expiry.
constexpr size_t kMaxValueHeaderBytes = 1 + 1 + 8 + 4 + 8;

std::string TreeMarkKey(uint32_t partition, uint32_t keyspace) {
  return EncodeDataKey(partition, keyspace, "");
}
// The end (exclusive) of a range's records, in the data and in the trees column families.
std::string RangeLimit(uint32_t partition, uint32_t keyspace) {
  return EncodeDataKey(partition, keyspace + 1, "");
}
// A segment record's key; on the stack, as every data write stores one.
struct TreeSegmentKey {
  TreeSegmentKey(uint32_t partition, uint32_t keyspace, size_t segment) {
    for (size_t i = 0; i < 4; ++i) {
      bytes[i] = static_cast<char>(partition >> (24 - 8 * i));
      bytes[4 + i] = static_cast<char>(keyspace >> (24 - 8 * i));
    }
    bytes[8] = static_cast<char>(segment >> 8);
    bytes[9] = static_cast<char>(segment & 0xff);
  }
  rocksdb::Slice slice() const { return rocksdb::Slice(bytes, sizeof(bytes)); }
  char bytes[kTreeSegmentKeyBytes];
};
// A segment record's value; on the stack, as every data write stores one.
struct TreeSegmentValue {
  TreeSegmentValue(uint64_t hash, uint64_t count) {
    for (size_t i = 0; i < 8; ++i) {
      bytes[i] = static_cast<char>(hash >> (56 - 8 * i));
      bytes[8 + i] = static_cast<char>(count >> (56 - 8 * i));
    }
  }
  rocksdb::Slice slice() const { return rocksdb::Slice(bytes, sizeof(bytes)); }
  char bytes[kTreeSegmentValueBytes];
};

// Drops the data of dropped keyspaces and turns values expired by TTL into tombstones of the
// same version. It removes no tombstone: that would leave the range's maintained tree counting a
// key that is gone (and a later write of the key would XOR it out twice). Tombstones go through
// WriteRequest::purges instead, on the writer thread, which keeps the tree exact. Neither change
// made here alters a tree: a dropped keyspace has none, and the hash of a version does not say
// whether it is a tombstone.
class GcFilter final : public rocksdb::CompactionFilter {
 public:
  GcFilter(uint64_t now_ms, std::shared_ptr<const std::set<uint32_t>> dropped, bool full_compaction)
      : now_ms_(now_ms), dropped_(std::move(dropped)), full_compaction_(full_compaction) {}

  Decision FilterV2(int /*level*/, const rocksdb::Slice& key, ValueType type,
                    const rocksdb::Slice& existing, std::string* new_value,
                    std::string* /*skip_until*/) const override {
    if (IsDropped(key)) return Decision::kRemove;
    // Merge operands (versions not yet folded into the key's value) are left to the merge
    // operator; expiry acts on folded values.
    if (type != ValueType::kValue) return Decision::kKeep;
    auto header = DecodeValueHeader(std::string_view(existing.data(), existing.size()));
    if (!header.ok()) return Decision::kKeep;  // never destroy what we cannot read
    const StoredValue& v = *header;
    if (v.tombstone) return Decision::kKeep;
    if (v.expires_at_ms != 0 && v.expires_at_ms <= now_ms_) {
      // Expired: keep a tombstone (deleted at the expiry time) until it is purged, so that an
      // older version replayed by a peer cannot bring the key back; it spares the value's bytes.
      *new_value = EncodeValue(StoredValue{
          .version = v.version, .tombstone = true, .expires_at_ms = v.expires_at_ms, .value = {}});
      return Decision::kChangeValue;
    }
    return Decision::kKeep;
  }

  // Values in blob files: decide by key where possible. Reading every blob in routine
  // compactions would cost a full read of all large values each time, so expiry of large values
  // is collected by full and manual compactions only (CompactAll).
  Decision FilterBlobByKey(int /*level*/, const rocksdb::Slice& key, std::string* /*new_value*/,
                           std::string* /*skip_until*/) const override {
    if (IsDropped(key)) return Decision::kRemove;
    return full_compaction_ ? Decision::kUndetermined : Decision::kKeep;
  }

  const char* Name() const override { return "cairn.GcFilter"; }

 private:
  bool IsDropped(const rocksdb::Slice& key) const {
    if (dropped_->empty()) return false;
    auto ks = KeyspaceOfDataKey(std::string_view(key.data(), key.size()));
    return ks && dropped_->count(*ks) > 0;
  }

  const uint64_t now_ms_;
  const std::shared_ptr<const std::set<uint32_t>> dropped_;
  const bool full_compaction_;
};

// Last writer wins, as a RocksDB merge operator: of a key's stored value and the values merged
// into it since, the greatest version is the key's value. Writes therefore need not read the
// key first: whatever order versions arrive in (a late hint, a repair), every replica ends up
// with the greatest one, now and after every compaction.
class LastWriterWins final : public rocksdb::MergeOperator {
 public:
  bool FullMergeV2(const MergeOperationInput& in, MergeOperationOutput* out) const override {
    const rocksdb::Slice* best = nullptr;
    Version best_version;
    auto consider = [&](const rocksdb::Slice* candidate) {
      auto header = DecodeValueHeader(std::string_view(candidate->data(), candidate->size()));
      if (!header.ok()) return false;
      if (best == nullptr || best_version < header->version) {
        best = candidate;
        best_version = header->version;
      }
      return true;
    };
    if (in.existing_value != nullptr && !consider(in.existing_value)) return false;
    for (const rocksdb::Slice& operand : in.operand_list) {
      if (!consider(&operand)) return false;
    }
    if (best == nullptr) return false;
    out->existing_operand = *best;
    return true;
  }

  bool PartialMergeMulti(const rocksdb::Slice& /*key*/, const std::deque<rocksdb::Slice>& operands,
                         std::string* new_value, rocksdb::Logger* /*logger*/) const override {
    const rocksdb::Slice* best = nullptr;
    Version best_version;
    for (const rocksdb::Slice& operand : operands) {
      auto header = DecodeValueHeader(std::string_view(operand.data(), operand.size()));
      if (!header.ok()) return false;
      if (best == nullptr || best_version < header->version) {
        best = &operand;
        best_version = header->version;
      }
    }
    if (best == nullptr) return false;
    new_value->assign(best->data(), best->size());
    return true;
  }

  const char* Name() const override { return "cairn.LastWriterWins"; }
};

}  // namespace

class Engine::GcFilterFactory final : public rocksdb::CompactionFilterFactory {
 public:
  explicit GcFilterFactory(base::PhysicalClock* clock)
      : clock_(clock), dropped_(std::make_shared<std::set<uint32_t>>()) {}

  std::unique_ptr<rocksdb::CompactionFilter> CreateCompactionFilter(
      const rocksdb::CompactionFilter::Context& context) override {
    return std::make_unique<GcFilter>(clock_->NowMillis(), Dropped(),
                                      context.is_full_compaction || context.is_manual_compaction);
  }
  const char* Name() const override { return "cairn.GcFilterFactory"; }

  std::shared_ptr<const std::set<uint32_t>> Dropped() const {
    std::lock_guard lock(mu_);
    return dropped_;
  }
  void AddDropped(const std::set<uint32_t>& ids) {
    std::lock_guard lock(mu_);
    auto next = std::make_shared<std::set<uint32_t>>(*dropped_);
    next->insert(ids.begin(), ids.end());
    dropped_ = std::move(next);
  }

 private:
  base::PhysicalClock* const clock_;
  mutable std::mutex mu_;
  std::shared_ptr<const std::set<uint32_t>> dropped_;  // guarded by mu_; copied on write
};

Engine::Engine(const EngineOptions& options)
    : options_(options),
      clock_(options.clock ? options.clock : &base::SystemClock()),
      read_cache_(options.read_cache_bytes, options.read_cache_max_value_bytes),
      paxos_cache_(options.paxos_cache_bytes) {}

Result<std::unique_ptr<Engine>> Engine::Open(const EngineOptions& options) {
  if (options.path.empty()) return Status::InvalidArgument("storage path is empty");
  std::unique_ptr<Engine> engine(new Engine(options));
  if (Status s = engine->OpenDb(); !s.ok()) return s;
  if (Status s = engine->LoadTrees(); !s.ok()) return s;
  if (Status s = engine->LoadKeyIndex(); !s.ok()) return s;
  engine->writer_ = std::thread([e = engine.get()] { e->WriterLoop(); });
  return engine;
}

Status Engine::OpenDb() {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  db_options.bytes_per_sync = 1 << 20;
  db_options.max_log_file_size = 16 << 20;
  db_options.keep_log_file_num = 4;
  if (options_.env != nullptr) db_options.env = options_.env;
  // Compactions run at the lowest CPU priority (nice 19): on a busy machine they take the CPU
  // that is left instead of delaying the reactor and writer threads that requests wait on. A
  // compaction that falls behind makes RocksDB slow writes down, which frees CPU for it again.
  if (rocksdb::Status s = db_options.env->LowerThreadPoolCPUPriority(rocksdb::Env::Priority::LOW,
                                                                     rocksdb::CpuPriority::kLow);
      !s.ok()) {
    spdlog::warn("cannot lower the priority of compaction threads: {}", s.ToString());
  }
  listener_ = std::make_shared<EngineListener>(&corruptions_, &garbage_stale_);
  db_options.listeners.push_back(listener_);
  statistics_ = rocksdb::CreateDBStatistics();
  statistics_->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);
  db_options.statistics = statistics_;

  gc_factory_ = std::make_shared<GcFilterFactory>(clock_);

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options_.block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.format_version = 5;

  rocksdb::ColumnFamilyOptions data;
  data.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  data.compaction_filter_factory = gc_factory_;
  data.table_properties_collector_factories.push_back(
      std::make_shared<GarbageCollectorFactory>(clock_));
  data.merge_operator = std::make_shared<LastWriterWins>();
  // A hot key's versions are folded into one value by the writer thread (see
  // EngineOptions::fold_every), so reads of it stay short. Not RocksDB's max_successive_merges:
  // that searches the memtable on every write, which cost a fifth of a plain write.
  data.level_compaction_dynamic_level_bytes = true;
  data.compression = rocksdb::kLZ4Compression;
  data.bottommost_compression = rocksdb::kZSTD;
  data.enable_blob_files = true;
  data.min_blob_size = options_.min_blob_bytes;
  data.blob_compression_type = rocksdb::kLZ4Compression;
  data.enable_blob_garbage_collection = true;
  data.write_buffer_size = 64 << 20;
  // Point reads of keys that are not in the memtable skip the skiplist search.
  data.memtable_whole_key_filtering = true;
  data.memtable_prefix_bloom_size_ratio = 0.05;

  rocksdb::ColumnFamilyOptions small;  // paxos, hints, meta: small records
  small.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  small.write_buffer_size = 8 << 20;

  // Every data write also writes its segment's record here, so an insert must cost little: an
  // unsorted vector is appended to, where a skiplist insert cost as much as the data's own (a
  // callgrind profile of the write path; Debian's librocksdb). Its records are only read by
  // iterating them at Open, which sorts the vector once. A vector memtable takes no concurrent
  // inserts; nothing needs them (one writer thread writes every group).
  rocksdb::ColumnFamilyOptions trees = small;
  trees.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
  db_options.allow_concurrent_memtable_write = false;
  // The key index is only walked in order (scans), never read by point lookups: no bloom filter.
  rocksdb::BlockBasedTableOptions keys_table = table;
  keys_table.filter_policy.reset();
  rocksdb::ColumnFamilyOptions keys = small;
  keys.table_factory.reset(rocksdb::NewBlockBasedTableFactory(keys_table));
  keys.compression = rocksdb::kLZ4Compression;

  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, small},
      {kDataCf, data},
      {kPaxosCf, small},
      {kHintsCf, small},
      {kMetaCf, small},
      {kTreesCf, trees},
      {kKeysCf, keys},
  };
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(db_options, options_.path, families, &handles_, &raw);
  if (!s.ok()) {
    return Status::Internal(
        fmt::format("cannot open the database at {}: {}", options_.path, s.ToString()));
  }
  db_.reset(raw);
  data_ = handles_[1];
  paxos_ = handles_[2];
  hints_ = handles_[3];
  meta_ = handles_[4];
  trees_cf_ = handles_[5];
  keys_cf_ = handles_[6];

  auto dropped = ListMeta(kDroppedPrefix);
  if (!dropped.ok()) return dropped.status();
  std::set<uint32_t> ids;
  for (const auto& [key, value] : *dropped) {
    uint32_t id = 0;
    std::string_view digits = std::string_view(key).substr(kDroppedPrefix.size());
    std::from_chars(digits.data(), digits.data() + digits.size(), id);
    ids.insert(id);
  }
  gc_factory_->AddDropped(ids);
  return Status::Ok();
}

Engine::~Engine() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (db_) {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    auto s = db_->Close();
    if (!s.ok()) spdlog::error("closing the database: {}", s.ToString());
  }
}

Result<std::optional<StoredValue>> Engine::Get(const DataKey& key) const {
  return ReadData(EncodeDataKey(key), "read");
}

Result<std::optional<StoredValue>> Engine::ReadData(const std::string& key,
                                                    std::string_view what) const {
  ReadCache::Ticket ticket;
  if (auto cached = read_cache_.Find(key, &ticket)) return std::move(*cached);
  std::optional<StoredValue> stored;
  rocksdb::PinnableSlice raw;
  auto s = db_->Get(rocksdb::ReadOptions(), data_, key, &raw);
  if (!s.ok() && !s.IsNotFound()) return ReadFailed(s, what);
  if (s.ok()) {
    auto v = DecodeValue(std::string_view(raw.data(), raw.size()));
    if (!v.ok()) return v.status();
    stored = std::move(*v);
  }
  read_cache_.Fill(key, stored, ticket);
  return stored;
}

void Engine::Write(WriteRequest request, WriteCallback done) {
  size_t bytes = 64;
  for (const auto& op : request.ops) bytes += op.key.key.size() + op.value.value.size() + 32;
  for (const auto& w : request.raw) bytes += w.key.size() + (w.value ? w.value->size() : 0);
  for (const auto& purge : request.purges) bytes += purge.key.key.size() + 32;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      done(Status::Unavailable("the storage engine is shutting down"), {});
      return;
    }
    queue_.push_back(
        Pending{std::move(request), std::move(done), bytes, std::chrono::steady_clock::now()});
  }
  cv_.notify_one();
}

void Engine::WriterLoop() {
  std::vector<Pending> group;
  while (true) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything submitted is committed
      size_t bytes = 0;
      while (!queue_.empty() &&
             (group.empty() || bytes + queue_.front().bytes <= options_.max_group_bytes)) {
        bytes += queue_.front().bytes;
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    const auto began = std::chrono::steady_clock::now();
    for (const Pending& p : group) write_wait_.Record(began - p.queued);
    CommitGroup(group);
    group_commit_time_.Record(std::chrono::steady_clock::now() - began);
    group.clear();
  }
}

// One group commit in the making: its batch, and what it has written so far, so that reads
// during the group (conditions, transactions) see earlier writes of the same group as if they
// had been committed one by one.
class Engine::Group final : public GroupView {
 public:
  explicit Group(Engine& engine) : e_(engine) {}

  // What the group writes of one data key: its newest version, and the version committed before
  // the group when the group has read it already (folds do), so that the trees need not read it
  // again.
  struct WrittenKey {
    const StoredValue* newest = nullptr;
    bool committed_known = false;
    std::optional<Version> committed;
  };
  // A change of one segment of a range's tree: XOR `hash` into it, add `count` to its keys.
  struct TreeChange {
    RangeId range;
    uint16_t segment = 0;
    uint64_t hash = 0;
    int64_t count = 0;
  };

  rocksdb::WriteBatch& batch() { return batch_; }
  // The data keys this group writes, by encoded key.
  const std::unordered_map<std::string, WrittenKey>& written() const { return written_; }

  Result<std::optional<StoredValue>> GetEncoded(const std::string& key) {
    // The cache holds what is committed: nothing of this group is visible before it is written.
    auto read = e_.ReadData(key, "read in a group commit");
    if (!read.ok()) return read.status();
    std::optional<StoredValue> stored = std::move(*read);
    if (auto it = written_.find(key);
        it != written_.end() && (!stored || stored->version < it->second.newest->version)) {
      stored = *it->second.newest;
    }
    return stored;
  }

  // Adds a version of `key` (owned by the caller until the group is committed).
  void Merge(std::string key, const StoredValue* value) {
    batch_.Merge(e_.data_, key, EncodeValue(*value));
    Wrote(std::move(key), value, nullptr);
  }

  // Adds a version of `key` as Merge() does, but writes the key's resulting value whole: a put
  // of the newest of what is committed, what this group wrote before and `value`. Everything
  // older of the key (merge operands included) is then shadowed, so reads stop folding it.
  // Falls back to a merge when the key cannot be read, and in a keyspace this group drops (the
  // put would bring back what the drop's range deletion, not yet visible to reads, removes).
  // The read is a full one: a memory-only read (kBlockCacheTier) would spare the disk, but
  // RocksDB 7.8 has known cases where such a read answers OK or NotFound instead of Incomplete
  // (fixed later: RocksDB PRs 12443 and 12462), and a fold computed from a read that missed a
  // newer version would shadow it.
  void Fold(std::string key, uint32_t keyspace, const StoredValue* value) {
    if (dropped.contains(keyspace) || !deleted_ranges.empty()) {
      Merge(std::move(key), value);
      return;
    }
    auto committed = e_.ReadData(key, "read in a group commit");
    if (!committed.ok()) {
      Merge(std::move(key), value);
      return;
    }
    std::optional<Version> committed_version;
    if (*committed) committed_version = (*committed)->version;
    const StoredValue* newest = value;
    if (auto it = written_.find(key);
        it != written_.end() && newest->version < it->second.newest->version) {
      newest = it->second.newest;
    }
    if (*committed && newest->version < (*committed)->version) {
      owned_.push_back(std::move(**committed));
      newest = &owned_.back();
    }
    batch_.Put(e_.data_, key, EncodeValue(*newest));
    Wrote(std::move(key), newest, &committed_version);
  }

  // GroupView
  Result<std::optional<StoredValue>> GetData(const DataKey& key) override {
    return GetEncoded(EncodeDataKey(key));
  }
  Result<std::optional<std::string>> GetRaw(Family family, std::string_view key) override {
    if (auto it = raw_written_.find(RawKey(family, key)); it != raw_written_.end()) {
      return it->second;
    }
    const bool cached = family == Family::kPaxos;
    if (cached) {
      if (const std::optional<std::string>* hit = e_.paxos_cache_.Find(key)) return *hit;
    }
    std::string value;
    auto s = e_.db_->Get(rocksdb::ReadOptions(), e_.HandleOf(family), key, &value);
    std::optional<std::string> out;
    if (s.ok()) {
      out = std::move(value);
    } else if (!s.IsNotFound()) {
      return e_.ReadFailed(s, "read in a group commit");
    }
    // What is committed: this group's own writes are in raw_written_ until it is.
    if (cached) e_.paxos_cache_.Put(key, out);
    return out;
  }
  // After the group's write: keep the paxos cache in step with it (or drop what it holds).
  void Committed(bool ok) {
    if (!ok) {
      e_.paxos_cache_.Clear();
      return;
    }
    for (auto& [raw_key, value] : raw_written_) {
      if (static_cast<Family>(raw_key[0]) == Family::kPaxos) {
        e_.paxos_cache_.Put(std::string_view(raw_key).substr(1), std::move(value));
      }
    }
  }
  void MergeData(const DataKey& key, StoredValue value) override {
    // Transactions (Paxos commits) write keys that are read again soon, by the next round's
    // prepare: a whole value lets those reads stop at the first entry.
    owned_.push_back(std::move(value));
    Fold(EncodeDataKey(key), key.keyspace, &owned_.back());
  }
  void PutRaw(Family family, std::string key, std::string value) override {
    batch_.Put(e_.HandleOf(family), key, value);
    raw_written_[RawKey(family, key)] = std::move(value);
  }
  void DeleteRaw(Family family, std::string key) override {
    batch_.Delete(e_.HandleOf(family), key);
    raw_written_[RawKey(family, key)] = std::nullopt;
  }

 private:
  void Wrote(std::string key, const StoredValue* value, const std::optional<Version>* committed) {
    auto [it, inserted] = written_.try_emplace(std::move(key));
    WrittenKey& w = it->second;
    if (inserted || w.newest->version < value->version) w.newest = value;
    if (committed != nullptr && !w.committed_known) {
      w.committed_known = true;
      w.committed = *committed;
    }
  }

  static std::string RawKey(Family family, std::string_view key) {
    std::string out(1, static_cast<char>(family));
    out.append(key);
    return out;
  }

 public:
  std::set<uint32_t> dropped;        // keyspace ids this group drops, so far
  std::set<RangeId> deleted_ranges;  // (partition, keyspace) ranges this group deletes, so far
  // The tree changes of the group's purges, then of its writes (Engine::UpdateTrees).
  std::vector<TreeChange> tree_changes;
  // Ranges whose tree the group makes unknown (see Engine::UpdateTrees): marked in its batch.
  std::set<RangeId> marked;
  std::vector<std::string> purged;  // the data keys the group purges, encoded

 private:
  Engine& e_;
  rocksdb::WriteBatch batch_;
  std::unordered_map<std::string, WrittenKey> written_;  // by encoded key
  std::unordered_map<std::string, std::optional<std::string>> raw_written_;
  std::deque<StoredValue> owned_;  // values written by transactions, and folds' stored values
};

void Engine::CommitGroup(std::vector<Pending>& pending) {
  Group group(*this);
  std::vector<std::vector<WriteOutcome>> outcomes(pending.size());
  std::set<uint32_t>& dropped = group.dropped;
  Status status;

  // Write absorption: a key written more than once in the group is written once, with its newest
  // version. The group is one atomic batch, so no reader sees the others, and last writer wins
  // would hide them afterwards anyway; a hot key then costs one memtable insert per group instead
  // of one per write. Not in groups with transactions or drops: their reads inside the group see
  // the group's earlier writes one by one.
  std::vector<std::vector<std::string>> keys(pending.size());
  std::unordered_map<std::string, std::pair<size_t, size_t>> newest;  // key -> (request, op)
  bool absorb = true;
  size_t ops = 0;
  for (const Pending& p : pending) {
    ops += p.request.ops.size();
    if (p.request.txn || p.request.drop || !p.request.range_deletes.empty()) absorb = false;
  }
  absorb = absorb && ops > 1;
  if (absorb) {
    newest.reserve(ops);
    for (size_t i = 0; i < pending.size(); ++i) {
      const std::vector<WriteOp>& request_ops = pending[i].request.ops;
      keys[i].reserve(request_ops.size());
      for (size_t j = 0; j < request_ops.size(); ++j) {
        keys[i].push_back(EncodeDataKey(request_ops[j].key));
        auto [it, inserted] = newest.try_emplace(keys[i].back(), i, j);
        if (!inserted) {
          const auto [bi, bj] = it->second;
          if (pending[bi].request.ops[bj].value.version < request_ops[j].value.version) {
            it->second = {i, j};
          }
        }
      }
    }
  }

  for (size_t i = 0; i < pending.size() && status.ok(); ++i) {
    WriteRequest& request = pending[i].request;
    outcomes[i].reserve(request.ops.size());
    for (size_t j = 0; j < request.ops.size(); ++j) {
      WriteOp& op = request.ops[j];
      if (absorb && newest.at(keys[i][j]) != std::make_pair(i, j)) {
        // A newer version of the key is written by this group: this one would never be seen.
        ++absorbed_;
        outcomes[i].push_back(WriteOutcome{op.value.version});
        continue;
      }
      std::string key = absorb ? std::move(keys[i][j]) : EncodeDataKey(op.key);
      // Merged, not put: the merge operator keeps the greatest version, so a plain write need
      // not carry the key's stored value. One write in fold_every, chosen at random, folds instead:
      // a key written often gets a whole value every fold_every writes on average, which bounds the
      // merge operands a read of it must fold, whatever the pattern of writes (a count per
      // bucket of keys could be dodged by keys written in turns).
      fold_random_ ^= fold_random_ << 13;  // xorshift64
      fold_random_ ^= fold_random_ >> 7;
      fold_random_ ^= fold_random_ << 17;
      if (fold_random_ % std::max<uint32_t>(options_.fold_every, 1) != 0) {
        group.Merge(std::move(key), &op.value);
      } else {
        ++folds_;
        group.Fold(std::move(key), op.key.keyspace, &op.value);
      }
      outcomes[i].push_back(WriteOutcome{op.value.version});
    }
    if (!status.ok()) break;
    for (RawWrite& w : request.raw) {
      if (w.value) {
        group.PutRaw(w.family, std::move(w.key), std::move(*w.value));
      } else {
        group.DeleteRaw(w.family, std::move(w.key));
      }
    }
    for (const WriteRequest::RangeDelete& range : request.range_deletes) {
      // The range's tree (its segments, and a mark for a rebuild) goes with its records.
      for (rocksdb::ColumnFamilyHandle* family : {data_, paxos_, trees_cf_}) {
        if (family == paxos_ && range.keep_paxos) continue;
        group.batch().DeleteRange(family, EncodeDataKey(range.partition, range.keyspace, ""),
                                  RangeLimit(range.partition, range.keyspace));
      }
      group.deleted_ranges.insert({range.partition, range.keyspace});
    }
    if (request.drop) {
      const auto [keyspace, partitions] = *request.drop;
      for (uint32_t p = 0; p < partitions; ++p) {
        for (rocksdb::ColumnFamilyHandle* family : {data_, trees_cf_}) {
          group.batch().DeleteRange(family, EncodeDataKey(p, keyspace, ""),
                                    RangeLimit(p, keyspace));
        }
      }
      // Every tree of the keyspace goes, whatever `partitions` says (the writer thread reads the
      // trees without their lock: it is the only one that changes them).
      std::set<RangeId> beyond;
      for (const auto& [range, tree] : trees_) {
        if (range.second == keyspace && range.first >= partitions) beyond.insert(range);
      }
      for (const RangeId& range : dirty_) {
        if (range.second == keyspace && range.first >= partitions) beyond.insert(range);
      }
      for (const auto& [p, ks] : beyond) {
        group.batch().DeleteRange(trees_cf_, TreeMarkKey(p, ks), RangeLimit(p, ks));
      }
      if (std::string limit = PrefixLimit(IndexKey(keyspace, "")); !limit.empty()) {
        group.batch().DeleteRange(keys_cf_, IndexKey(keyspace, ""), limit);
      }
      group.batch().Put(meta_, DroppedKey(keyspace), "");
      dropped.insert(keyspace);
    }
    if (request.txn) status = request.txn(group);
  }

  // Purges and the trees come last: they read what is committed, and need to know everything
  // the group writes, deletes and drops.
  if (status.ok()) status = AddPurges(pending, group);
  std::vector<SegmentState> segments;
  if (status.ok()) {
    auto updated = UpdateTrees(group);
    if (updated.ok()) {
      segments = std::move(*updated);
    } else {
      status = updated.status();
    }
  }

  const bool ranges_deleted = !group.deleted_ranges.empty();
  if (status.ok() && group.batch().Count() > 0) {
    // The read cache is told of every data key before the write (reads in flight must not
    // fill what they read) and after it is visible (the newest version the group wrote; a
    // purged key is gone, so its entry is dropped).
    for (const auto& [key, written] : group.written()) read_cache_.BeginWrite(key);
    for (const std::string& key : group.purged) read_cache_.BeginWrite(key);
    if (!dropped.empty() || ranges_deleted) read_cache_.Clear();
    rocksdb::WriteOptions write_options;
    write_options.sync = options_.sync;
    status = FromRocks(db_->Write(write_options, &group.batch()), "group commit");
    if (!status.ok()) spdlog::error("{}", status.ToString());
    for (const auto& [key, written] : group.written()) {
      read_cache_.EndWrite(key, status.ok() ? written.newest : nullptr);
    }
    for (const std::string& key : group.purged) read_cache_.EndWrite(key, nullptr);
    if (!dropped.empty() || ranges_deleted) read_cache_.Clear();
    if (ranges_deleted) paxos_cache_.Clear();
    group.Committed(status.ok());
  }
  if (status.ok()) {
    if (!dropped.empty()) gc_factory_->AddDropped(dropped);
    purged_ += group.purged.size();
    // Only now: the trees in memory never hold what a failed group would have changed.
    std::lock_guard lock(trees_mu_);
    for (const RangeId& range : group.deleted_ranges) {
      trees_.erase(range);
      dirty_.erase(range);
    }
    for (uint32_t keyspace : dropped) {
      std::erase_if(trees_,
                    [keyspace](const auto& entry) { return entry.first.second == keyspace; });
      std::erase_if(dirty_, [keyspace](const RangeId& range) { return range.second == keyspace; });
    }
    std::vector<RangeId> emptied;
    for (const SegmentState& s : segments) {
      Tree* tree = s.tree;
      if (tree == nullptr) {
        std::unique_ptr<Tree>& slot = trees_[s.range];
        if (!slot) slot = std::make_unique<Tree>();
        tree = slot.get();
      }
      Segment& segment = tree->segments[s.segment];
      tree->keys = tree->keys - segment.count + s.value.count;
      segment = s.value;
      if (tree->keys == 0) emptied.push_back(s.range);
    }
    // Only now: the states hold pointers to the trees.
    for (const RangeId& range : emptied) {
      if (auto it = trees_.find(range); it != trees_.end() && it->second->keys == 0) {
        trees_.erase(it);
      }
    }
    dirty_.insert(group.marked.begin(), group.marked.end());
  }
  // Before the callbacks, so that a write acknowledged is in RangeTree(). Normally only ranges
  // this group marked; ranges whose rebuild failed before are tried again.
  if (!dirty_.empty()) (void)RebuildDirtyTrees();  // it logs its failures
  {
    std::lock_guard lock(mu_);
    ++group_commits_;
  }
  for (size_t i = 0; i < pending.size(); ++i) {
    if (status.ok()) {
      pending[i].done(status, std::move(outcomes[i]));
    } else {
      pending[i].done(status, {});
    }
  }
}

Status Engine::AddPurges(std::vector<Pending>& pending, Group& group) {
  const uint64_t now = clock_->NowMillis();
  std::shared_ptr<const std::set<uint32_t>> dropped;
  std::set<std::string> seen;  // a key purged twice in one group would be taken out twice
  for (const Pending& p : pending) {
    for (const WriteRequest::Purge& purge : p.request.purges) {
      const RangeId range{purge.key.partition, purge.key.keyspace};
      if (!dropped) dropped = gc_factory_->Dropped();
      // A range the group deletes, or a keyspace dropped, loses the key anyway.
      if (group.deleted_ranges.contains(range) || group.dropped.contains(range.second) ||
          dropped->contains(range.second)) {
        continue;
      }
      std::string key = EncodeDataKey(purge.key);
      // A key the group writes is left for a later purge: the tombstone (or the write) might be
      // the only thing that keeps an older version from coming back.
      if (group.written().contains(key) || !seen.insert(key).second) continue;
      auto stored = ReadData(key, "read for a purge");
      if (!stored.ok()) return stored.status();
      if (!*stored || (*stored)->version != purge.version || (*stored)->IsLive(now)) continue;
      // A RocksDB deletion, not a compaction filter's removal: it shadows every older version of
      // the key at every level, where a removal could expose one still in a lower level.
      group.batch().Delete(data_, key);
      group.batch().Delete(keys_cf_, IndexKey(purge.key.keyspace, purge.key.key));
      if (!dirty_.contains(range)) {  // a dirty range's tree is rebuilt from data after the commit
        group.tree_changes.push_back(
            Group::TreeChange{.range = range,
                              .segment = static_cast<uint16_t>(DigestSegmentOf(purge.key.key)),
                              .hash = DigestHashOf(purge.key.key, purge.version),
                              .count = -1});
      }
      group.purged.push_back(std::move(key));
    }
  }
  return Status::Ok();
}

Result<std::vector<Engine::SegmentState>> Engine::UpdateTrees(Group& group) {
  std::shared_ptr<const std::set<uint32_t>> dropped;
  std::vector<Group::TreeChange>& changes = group.tree_changes;
  changes.reserve(changes.size() + group.written().size());
  // The keys whose tree changes, and the version committed of each: from the group (folds read
  // it), else from the read cache, else from RocksDB, in one MultiGet for the group.
  struct Tracked {
    const std::string* key;
    const Group::WrittenKey* written;
    RangeId range;
    std::optional<Version> committed;
    ReadCache::Ticket ticket;
  };
  std::vector<Tracked> tracked;
  tracked.reserve(group.written().size());
  std::vector<size_t> unread;  // indices into `tracked`
  for (const auto& [key, written] : group.written()) {
    const RangeId range{base::GetBig32(key.data()), base::GetBig32(key.data() + 4)};
    if (!dropped) dropped = gc_factory_->Dropped();
    // Writes to a dropped keyspace are not tracked: it has no tree, and its id is never reused.
    if (dropped->contains(range.second) || group.dropped.contains(range.second)) continue;
    if (group.deleted_ranges.contains(range)) {
      // Deleted and written in one group: whether a key survives depends on the order of the
      // two in the batch. Rather than follow it, the range is rebuilt from its data once the
      // group is committed; the mark in the batch makes Open do it if the node stops first.
      group.marked.insert(range);
      continue;
    }
    if (dirty_.contains(range)) continue;  // rebuilt from data after the commit
    Tracked& t = tracked.emplace_back(Tracked{&key, &written, range, std::nullopt, {}});
    if (written.committed_known) {
      t.committed = written.committed;
      continue;
    }
    if (auto cached = read_cache_.FindVersion(key, &t.ticket)) {
      t.committed = *cached;
      continue;
    }
    unread.push_back(tracked.size() - 1);
  }
  if (!unread.empty()) {
    // One MultiGet, in key order: RocksDB then looks each table up once for all of them, which
    // made the writes of new keys about 4% faster than a Get per key (cairn-bench workload w, one
    // node).
    std::sort(unread.begin(), unread.end(),
              [&tracked](size_t a, size_t b) { return *tracked[a].key < *tracked[b].key; });
    std::vector<rocksdb::Slice> keys;
    keys.reserve(unread.size());
    for (size_t i : unread) keys.emplace_back(*tracked[i].key);
    std::vector<rocksdb::PinnableSlice> values(unread.size());
    std::vector<rocksdb::Status> statuses(unread.size());
    db_->MultiGet(rocksdb::ReadOptions(), data_, keys.size(), keys.data(), values.data(),
                  statuses.data(), /*sorted_input=*/true);
    for (size_t j = 0; j < unread.size(); ++j) {
      // The absence of a new key is not kept in the read cache: a stream of writes of new keys
      // would push out what readers read (and cost a cache insert per write). A key that exists
      // is: its next write then finds its version in memory, where a RocksDB read of a key with
      // merge operands costs more than the rest of the write (callgrind of the write path).
      Tracked& t = tracked[unread[j]];
      if (statuses[j].IsNotFound()) continue;
      if (!statuses[j].ok()) return ReadFailed(statuses[j], "read for the hash trees");
      const std::string_view raw(values[j].data(), values[j].size());
      if (raw.size() > options_.read_cache_max_value_bytes + kMaxValueHeaderBytes) {
        // Too large for the cache: only the header is decoded, not the value copied.
        auto header = DecodeValueHeader(raw);
        if (!header.ok()) return header.status();
        t.committed = header->version;
        continue;
      }
      auto value = DecodeValue(raw);
      if (!value.ok()) return value.status();
      t.committed = value->version;
      read_cache_.Fill(*t.key, std::move(*value), t.ticket);
    }
  }

  for (const Tracked& t : tracked) {
    const Version& version = t.written->newest->version;
    // Last writer wins: the stored version changes only if the group's is newer.
    if (t.committed && !(*t.committed < version)) continue;
    const std::string_view user_key = std::string_view(*t.key).substr(kKeyHeaderBytes);
    // A key new to the range gets its index record in the same batch (and keeps it until a purge
    // removes the key); a key already held has one.
    if (!t.committed) {
      group.batch().Put(keys_cf_, IndexKey(t.range.second, user_key), IndexValue(t.range.first));
    }
    if (!options_.maintain_trees) continue;
    uint64_t hash = DigestHashOf(user_key, version);
    if (t.committed) hash ^= DigestHashOf(user_key, *t.committed);
    changes.push_back(Group::TreeChange{.range = t.range,
                                        .segment = static_cast<uint16_t>(DigestSegmentOf(user_key)),
                                        .hash = hash,
                                        .count = t.committed ? 0 : 1});
  }

  std::sort(changes.begin(), changes.end(), [](const auto& a, const auto& b) {
    return std::tie(a.range, a.segment) < std::tie(b.range, b.segment);
  });
  std::vector<SegmentState> states;
  states.reserve(changes.size());
  Tree* tree = nullptr;  // the current tree of the range of changes[i] (null: none)
  for (size_t i = 0; i < changes.size();) {
    SegmentState s{.range = changes[i].range, .segment = changes[i].segment};
    if (i == 0 || changes[i - 1].range != s.range) {
      auto it = trees_.find(s.range);  // the writer thread reads trees_ without its lock
      tree = it == trees_.end() ? nullptr : it->second.get();
    }
    s.tree = tree;
    if (tree != nullptr) s.value = tree->segments[s.segment];
    int64_t count = static_cast<int64_t>(s.value.count);
    for (; i < changes.size() && changes[i].range == s.range && changes[i].segment == s.segment;
         ++i) {
      s.value.hash ^= changes[i].hash;
      count += changes[i].count;
    }
    if (count < 0 || (count == 0 && s.value.hash != 0)) {
      // Cannot happen while the tree is exact; if it ever is not, say so and rebuild it.
      spdlog::error(
          "the hash tree of partition {} keyspace {} disagrees with its data; rebuilding it",
          s.range.first, s.range.second);
      group.marked.insert(s.range);
      count = 0;
    }
    s.value.count = static_cast<uint64_t>(count);
    const TreeSegmentKey key(s.range.first, s.range.second, s.segment);
    if (s.value.count == 0) {
      group.batch().Delete(trees_cf_, key.slice());
    } else {
      group.batch().Put(trees_cf_, key.slice(),
                        TreeSegmentValue(s.value.hash, s.value.count).slice());
    }
    states.push_back(s);
  }
  for (const auto& [p, ks] : group.marked) group.batch().Put(trees_cf_, TreeMarkKey(p, ks), "");
  return states;
}

Status Engine::RebuildDirtyTrees() {
  std::vector<RangeId> ranges;
  {
    std::lock_guard lock(trees_mu_);
    ranges.assign(dirty_.begin(), dirty_.end());
  }
  Status first;
  for (const RangeId& range : ranges) {
    // The range's keys written while it was dirty got no index record (UpdateTrees skips them):
    // the rebuild writes one for every key it holds, with the tree.
    rocksdb::WriteBatch batch;
    auto tree = BuildTree(range, &batch);
    Status s = tree.status();
    if (s.ok()) {
      // The old records and the mark go, the rebuilt records come, atomically. Not synced: the
      // mark was written with the group that made it, so a crash that loses this write leaves
      // the mark, and Open rebuilds the range again; and the log is written in order, so a later
      // synced group makes this durable too.
      batch.DeleteRange(trees_cf_, TreeMarkKey(range.first, range.second),
                        RangeLimit(range.first, range.second));
      for (size_t segment = 0; segment < kDigestSegments; ++segment) {
        const Segment& value = tree->segments[segment];
        if (value.count == 0) continue;
        batch.Put(trees_cf_, TreeSegmentKey(range.first, range.second, segment).slice(),
                  TreeSegmentValue(value.hash, value.count).slice());
      }
      s = FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "storing a rebuilt hash tree");
    }
    if (!s.ok()) {
      spdlog::error("rebuilding the hash tree of partition {} keyspace {}: {}", range.first,
                    range.second, s.ToString());
      if (first.ok()) first = s;
      continue;
    }
    std::lock_guard lock(trees_mu_);
    if (tree->keys == 0) {
      trees_.erase(range);
    } else {
      trees_[range] = std::make_unique<Tree>(*tree);
    }
    dirty_.erase(range);
  }
  return first;
}
Result<RangeChunk> Engine::ReadRange(Family family, uint32_t partition, uint32_t keyspace,
                                     std::string_view after, std::optional<std::string_view> up_to,
                                     size_t max_bytes) const {
  rocksdb::ColumnFamilyHandle* handle = HandleOf(family);
  const std::string bound = EncodeDataKey(partition, keyspace, "");
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handle));
  if (after.empty()) {
    it->Seek(bound);
  } else {
    std::string start = EncodeDataKey(partition, keyspace, after);
    start.push_back('\0');  // the smallest key greater than `after`
    it->Seek(start);
  }
  RangeChunk chunk;
  size_t bytes = 0;
  for (; it->Valid() && it->key().starts_with(bound); it->Next()) {
    std::string_view key(it->key().data() + kKeyHeaderBytes, it->key().size() - kKeyHeaderBytes);
    if (up_to && key > *up_to) {
      chunk.done = true;
      break;
    }
    if (bytes >= max_bytes && !chunk.records.empty()) break;
    bytes += key.size() + it->value().size();
    chunk.records.push_back(RangeRecord{std::string(key), it->value().ToString()});
  }
  if (!it->status().ok()) return ReadFailed(it->status(), "range read");
  if (!it->Valid() || !it->key().starts_with(bound)) chunk.done = true;
  if (!chunk.records.empty()) chunk.last_key = chunk.records.back().key;
  return chunk;
}

size_t DigestSegmentOf(std::string_view key) {
  return static_cast<size_t>(base::Hash64(key) % kDigestSegments);
}

uint64_t DigestHashOf(std::string_view key, Version version) {
  // The key's length first, so that no two records differ only in where the key ends, then the
  // version, then the key; fixed-width little-endian, so that every platform hashes the same.
  constexpr size_t kFieldBytes = 3 * sizeof(uint64_t);
  char small[256];
  std::string large;
  const size_t size = kFieldBytes + key.size();
  char* out = small;
  if (size > sizeof(small)) {
    large.resize(size);
    out = large.data();
  }
  const uint64_t fields[] = {key.size(), version.hlc, version.node};
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(out, fields, kFieldBytes);
  } else {
    for (size_t f = 0; f < 3; ++f) {
      for (size_t b = 0; b < sizeof(uint64_t); ++b) {
        out[f * sizeof(uint64_t) + b] = static_cast<char>(fields[f] >> (8 * b));
      }
    }
  }
  std::memcpy(out + kFieldBytes, key.data(), key.size());
  return base::Hash64(std::string_view(out, size));
}

namespace {

// Adds one stored record of a range to its tree: the only way a tree is computed from data, for
// DigestRange, rebuilds and the first build alike, and what Engine::UpdateTrees follows write by
// write.
template <typename Tree>
void AddToTree(Tree& tree, std::string_view user_key, Version version) {
  auto& segment = tree.segments[DigestSegmentOf(user_key)];
  segment.hash ^= DigestHashOf(user_key, version);
  ++segment.count;
  ++tree.keys;
}

}  // namespace

Result<Engine::Tree> Engine::BuildTree(RangeId range, rocksdb::WriteBatch* index) const {
  const std::string bound = EncodeDataKey(range.first, range.second, "");
  rocksdb::ReadOptions read_options;
  read_options.fill_cache = false;  // a scan read once: it should not evict what reads use
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, data_));
  Tree tree;
  for (it->Seek(bound); it->Valid() && it->key().starts_with(bound); it->Next()) {
    auto value = DecodeValueHeader(std::string_view(it->value().data(), it->value().size()));
    if (!value.ok()) return value.status();
    const std::string_view user_key =
        std::string_view(it->key().data(), it->key().size()).substr(kKeyHeaderBytes);
    AddToTree(tree, user_key, value->version);
    if (index != nullptr) {
      index->Put(keys_cf_, IndexKey(range.second, user_key), IndexValue(range.first));
    }
  }
  if (!it->status().ok()) return ReadFailed(it->status(), "range digest");
  return tree;
}

RangeDigest Engine::Tree::Digest() const {
  RangeDigest digest;
  for (size_t i = 0; i < kDigestSegments; ++i) digest.segments[i] = segments[i].hash;
  digest.keys = keys;
  return digest;
}

Result<RangeDigest> Engine::DigestRange(uint32_t partition, uint32_t keyspace) const {
  auto tree = BuildTree({partition, keyspace});
  if (!tree.ok()) return tree.status();
  return tree->Digest();
}

Result<RangeDigest> Engine::RangeTree(uint32_t partition, uint32_t keyspace) const {
  {
    std::lock_guard lock(trees_mu_);
    if (!dirty_.contains({partition, keyspace})) {
      auto it = trees_.find({partition, keyspace});
      return it == trees_.end() ? RangeDigest{} : it->second->Digest();
    }
  }
  return Status::Unavailable(fmt::format(
      "the hash tree of partition {} keyspace {} is being rebuilt", partition, keyspace));
}

std::vector<std::pair<uint32_t, uint32_t>> Engine::TreeRanges() const {
  std::lock_guard lock(trees_mu_);
  std::vector<RangeId> out;
  out.reserve(trees_.size() + dirty_.size());
  for (const auto& [range, tree] : trees_) out.push_back(range);
  out.insert(out.end(), dirty_.begin(), dirty_.end());  // trees_ is unordered
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Status Engine::LoadTrees() {
  auto version = GetMeta(kTreesVersionKey);
  if (!version.ok()) return version.status();
  if (!*version) return BuildAllTrees();
  if (**version != kTreesVersion) {
    return Status::FailedPrecondition(
        fmt::format("the hash trees at {} are of version {}, which this build does not know",
                    options_.path, **version));
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), trees_cf_));
  {
    std::lock_guard lock(trees_mu_);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string_view key(it->key().data(), it->key().size());
      const std::string_view value(it->value().data(), it->value().size());
      const RangeId range{base::GetBig32(key.data()), base::GetBig32(key.data() + 4)};
      if (key.size() == kKeyHeaderBytes) {
        dirty_.insert(range);
        continue;
      }
      if (key.size() != kTreeSegmentKeyBytes || value.size() != kTreeSegmentValueBytes) {
        return Status::Internal(fmt::format("a malformed hash tree record at {}", options_.path));
      }
      const size_t segment = static_cast<uint8_t>(key[8]) << 8 | static_cast<uint8_t>(key[9]);
      if (segment >= kDigestSegments) {
        return Status::Internal(
            fmt::format("a hash tree segment out of range at {}", options_.path));
      }
      std::unique_ptr<Tree>& tree = trees_[range];
      if (!tree) tree = std::make_unique<Tree>();
      tree->segments[segment] = {base::GetBig64(value.data()), base::GetBig64(value.data() + 8)};
      tree->keys += tree->segments[segment].count;
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "loading the hash trees");
  return RebuildDirtyTrees();
}

Status Engine::BuildAllTrees() {
  const auto start = std::chrono::steady_clock::now();
  auto last_report = start;
  const std::shared_ptr<const std::set<uint32_t>> dropped = gc_factory_->Dropped();
  rocksdb::WriteBatch batch;
  // Whatever an interrupted build left.
  batch.DeleteRange(trees_cf_, "", std::string(kTreeSegmentKeyBytes + 1, '\xff'));
  rocksdb::WriteOptions unsynced;  // the last batch, with the marker, is synced (and the log is
                                   // written in order)
  TreeMap trees;
  Tree* tree = nullptr;
  RangeId range;
  auto store = [&]() -> Status {
    if (tree == nullptr) return Status::Ok();
    for (size_t segment = 0; segment < kDigestSegments; ++segment) {
      const Segment& value = tree->segments[segment];
      if (value.count == 0) continue;
      batch.Put(trees_cf_, TreeSegmentKey(range.first, range.second, segment).slice(),
                TreeSegmentValue(value.hash, value.count).slice());
    }
    if (batch.GetDataSize() < (size_t{4} << 20)) return Status::Ok();
    Status s = FromRocks(db_->Write(unsynced, &batch), "storing the hash trees");
    batch.Clear();
    return s;
  };

  rocksdb::ReadOptions read_options;
  read_options.fill_cache = false;  // a scan read once: it should not evict what reads use
  uint64_t keys = 0;
  Status walked = ForEachDataKey(
      read_options, "building the hash trees",
      [&](RangeId key_range, std::string_view key, const rocksdb::Slice& stored) -> Status {
        if (dropped->contains(key_range.second)) return Status::Ok();  // see UpdateTrees
        if (keys == 0) {
          // Said only when there is data: a new database has none, and its trees start empty.
          spdlog::info(
              "building the hash tree of every range from the data at {} (a database "
              "created before trees existed)",
              options_.path);
        }
        if (tree == nullptr || key_range != range) {
          if (Status s = store(); !s.ok()) return s;
          range = key_range;
          std::unique_ptr<Tree>& slot = trees[range];
          slot = std::make_unique<Tree>();
          tree = slot.get();
        }
        auto value = DecodeValueHeader(std::string_view(stored.data(), stored.size()));
        if (!value.ok()) return value.status();
        AddToTree(*tree, key, value->version);
        if (++keys % 4096 == 0 &&
            std::chrono::steady_clock::now() - last_report >= std::chrono::seconds(5)) {
          last_report = std::chrono::steady_clock::now();
          spdlog::info("building hash trees: {} keys in {} ranges so far (partition {})", keys,
                       trees.size(), range.first);
        }
        return Status::Ok();
      });
  if (!walked.ok()) return walked;
  if (Status s = store(); !s.ok()) return s;
  batch.Put(meta_, kTreesVersionKey, kTreesVersion);
  rocksdb::WriteOptions synced;
  synced.sync = true;
  if (Status s = FromRocks(db_->Write(synced, &batch), "storing the hash trees"); !s.ok()) return s;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (keys > 0) {
    spdlog::info("built the hash trees of {} ranges ({} keys) in {:.1f} s", trees.size(), keys,
                 seconds);
  }
  std::lock_guard lock(trees_mu_);
  trees_ = std::move(trees);
  dirty_.clear();
  return Status::Ok();
}

Result<ScanResult> Engine::Scan(uint32_t keyspace, std::span<const uint32_t> partitions,
                                std::string_view prefix, std::string_view after, size_t limit,
                                size_t max_dead, size_t max_bytes, ScanPath path) const {
  std::string start(prefix);
  if (!after.empty() && after >= prefix) {
    start.assign(after);
    start.push_back('\0');  // the smallest key greater than `after`
  }
  if (path == ScanPath::kAuto) {
    // A seek per partition costs about what the index costs per key read through it (a point
    // read of the value): the index wins from a few partitions on. A range whose tree is being
    // rebuilt may hold keys its index records do not name yet (UpdateTrees skips such ranges;
    // the rebuild writes them): those scans merge. Checked before the scan's snapshot is taken,
    // so a range found clean has its rebuilt records in the snapshot.
    path = partitions.size() > kMergeScanMaxPartitions ? ScanPath::kIndex : ScanPath::kMerge;
    if (path == ScanPath::kIndex) {
      std::lock_guard lock(trees_mu_);
      for (const RangeId& range : dirty_) {
        if (range.second == keyspace &&
            std::find(partitions.begin(), partitions.end(), range.first) != partitions.end()) {
          path = ScanPath::kMerge;
          break;
        }
      }
    }
  }
  if (path == ScanPath::kIndex) {
    return ScanIndex(keyspace, partitions, start, prefix, limit, max_dead, max_bytes);
  }
  return ScanMerge(keyspace, partitions, start, prefix, limit, max_dead, max_bytes);
}

namespace {
// Releases a snapshot when the scan ends.
struct ScopedSnapshot {
  ScopedSnapshot(rocksdb::DB* db) : db(db), snapshot(db->GetSnapshot()) {}
  ~ScopedSnapshot() { db->ReleaseSnapshot(snapshot); }
  ScopedSnapshot(const ScopedSnapshot&) = delete;
  ScopedSnapshot& operator=(const ScopedSnapshot&) = delete;
  rocksdb::DB* const db;
  const rocksdb::Snapshot* const snapshot;
};
}  // namespace

Result<ScanResult> Engine::ScanMerge(uint32_t keyspace, std::span<const uint32_t> partitions,
                                     std::string_view start, std::string_view prefix, size_t limit,
                                     size_t max_dead, size_t max_bytes) const {
  struct Source {
    std::unique_ptr<rocksdb::Iterator> it;
    std::string bound;  // encoded (partition, keyspace, prefix): keys outside it are done
    std::string_view user_key() const {
      return std::string_view(it->key().data(), it->key().size()).substr(kKeyHeaderBytes);
    }
    bool InRange() const { return it->Valid() && it->key().starts_with(bound); }
  };

  const ScopedSnapshot snapshot(db_.get());
  rocksdb::ReadOptions read_options;
  read_options.snapshot = snapshot.snapshot;

  std::vector<Source> sources;
  sources.reserve(partitions.size());
  auto later = [&sources](size_t a, size_t b) {
    return sources[a].user_key() > sources[b].user_key();
  };
  std::priority_queue<size_t, std::vector<size_t>, decltype(later)> heap(later);
  for (uint32_t p : partitions) {
    Source src{std::unique_ptr<rocksdb::Iterator>(db_->NewIterator(read_options, data_)),
               EncodeDataKey(p, keyspace, prefix)};
    src.it->Seek(EncodeDataKey(p, keyspace, start));
    if (!src.it->status().ok()) return ReadFailed(src.it->status(), "scan");
    sources.push_back(std::move(src));
    if (sources.back().InRange()) heap.push(sources.size() - 1);
  }

  const uint64_t now = clock_->NowMillis();
  ScanResult result;
  size_t live = 0, dead = 0, bytes = 0;
  while (!heap.empty() && live < limit && dead <= max_dead && bytes < max_bytes) {
    const size_t i = heap.top();
    heap.pop();
    Source& src = sources[i];
    auto value = DecodeValue(std::string_view(src.it->value().data(), src.it->value().size()));
    if (!value.ok()) return value.status();
    (value->IsLive(now) ? live : dead)++;
    bytes += src.user_key().size() + value->value.size();
    result.items.push_back(ScanItem{std::string(src.user_key()), std::move(*value)});
    src.it->Next();
    if (!src.it->status().ok()) return ReadFailed(src.it->status(), "scan");
    if (src.InRange()) heap.push(i);
  }
  result.exhausted = heap.empty();
  if (!result.items.empty()) result.last_key = result.items.back().key;
  return result;
}

Result<ScanResult> Engine::ScanIndex(uint32_t keyspace, std::span<const uint32_t> partitions,
                                     std::string_view start, std::string_view prefix, size_t limit,
                                     size_t max_dead, size_t max_bytes) const {
  index_scans_.fetch_add(1, std::memory_order_relaxed);
  std::vector<bool> wanted(
      partitions.empty() ? 0 : size_t{*std::max_element(partitions.begin(), partitions.end())} + 1);
  for (uint32_t p : partitions) wanted[p] = true;

  // The index and the data from one snapshot: a group commit writes a key's record and its
  // value in one batch, so every value the snapshot holds has its record in it.
  const ScopedSnapshot snapshot(db_.get());
  rocksdb::ReadOptions index_options;
  index_options.snapshot = snapshot.snapshot;
  const std::string upper = PrefixLimit(IndexKey(keyspace, prefix));
  const rocksdb::Slice upper_slice(upper);
  if (!upper.empty()) index_options.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(index_options, keys_cf_));
  it->Seek(IndexKey(keyspace, start));
  rocksdb::ReadOptions data_options;
  data_options.snapshot = snapshot.snapshot;

  const uint64_t now = clock_->NowMillis();
  ScanResult result;
  size_t live = 0, dead = 0, bytes = 0;
  std::vector<std::string> user_keys, data_keys;
  std::vector<rocksdb::Slice> slices;
  std::vector<rocksdb::PinnableSlice> values;
  std::vector<rocksdb::Status> statuses;
  bool more = true;  // the index may name more keys
  while (more && live < limit && dead <= max_dead && bytes < max_bytes) {
    // The next keys the index names in wanted partitions, read in one MultiGet: as many as live
    // items are still wanted (and at least a few, for the tombstones and stale records met).
    const size_t batch = std::clamp<size_t>(limit - live, 8, 256);
    user_keys.clear();
    data_keys.clear();
    for (; it->Valid() && user_keys.size() < batch; it->Next()) {
      const rocksdb::Slice key = it->key();
      const rocksdb::Slice value = it->value();
      if (key.size() < 4 || value.size() != 4) {
        return Status::Internal(fmt::format("a malformed key index record at {}", options_.path));
      }
      const uint32_t partition = base::GetBig32(value.data());
      if (partition >= wanted.size() || !wanted[partition]) continue;
      std::string_view user_key(key.data() + 4, key.size() - 4);
      user_keys.emplace_back(user_key);
      data_keys.push_back(EncodeDataKey(partition, keyspace, user_key));
    }
    if (!it->status().ok()) return ReadFailed(it->status(), "scan");
    more = it->Valid();
    if (user_keys.empty()) break;
    slices.assign(data_keys.begin(), data_keys.end());
    values.clear();
    values.resize(slices.size());
    statuses.assign(slices.size(), rocksdb::Status());
    db_->MultiGet(data_options, data_, slices.size(), slices.data(), values.data(), statuses.data(),
                  /*sorted_input=*/false);
    for (size_t j = 0; j < user_keys.size(); ++j) {
      if (!(live < limit && dead <= max_dead && bytes < max_bytes)) {
        more = true;  // keys named but not examined
        break;
      }
      if (statuses[j].IsNotFound()) {
        // The range was deleted here (its partition moved away, or a scrub dropped it) and the
        // record stayed: skipped. The next write of the key writes a record again.
        index_stale_skipped_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (!statuses[j].ok()) return ReadFailed(statuses[j], "scan");
      auto value = DecodeValue(std::string_view(values[j].data(), values[j].size()));
      if (!value.ok()) return value.status();
      (value->IsLive(now) ? live : dead)++;
      bytes += user_keys[j].size() + value->value.size();
      result.items.push_back(ScanItem{std::move(user_keys[j]), std::move(*value)});
    }
  }
  result.exhausted = !more;
  if (!result.items.empty()) result.last_key = result.items.back().key;
  return result;
}

Result<uint64_t> Engine::KeysMissingFromIndex() const {
  const std::shared_ptr<const std::set<uint32_t>> dropped = gc_factory_->Dropped();
  const ScopedSnapshot snapshot(db_.get());
  rocksdb::ReadOptions read_options;
  read_options.snapshot = snapshot.snapshot;
  read_options.fill_cache = false;
  uint64_t missing = 0;
  std::string value;
  Status s = ForEachDataKey(
      read_options, "checking the key index",
      [&](RangeId range, std::string_view key, const rocksdb::Slice&) -> Status {
        if (dropped->contains(range.second)) return Status::Ok();
        auto got = db_->Get(read_options, keys_cf_, IndexKey(range.second, key), &value);
        if (got.IsNotFound() || (got.ok() && value != IndexValue(range.first))) {
          ++missing;
        } else if (!got.ok()) {
          return ReadFailed(got, "checking the key index");
        }
        return Status::Ok();
      });
  if (!s.ok()) return s;
  return missing;
}

Status Engine::ForEachDataKey(
    const rocksdb::ReadOptions& read_options, std::string_view what,
    const std::function<Status(RangeId, std::string_view, const rocksdb::Slice&)>& visit) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, data_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string_view key(it->key().data(), it->key().size());
    if (key.size() < kKeyHeaderBytes) {
      return Status::Internal(fmt::format("a malformed data key at {}", options_.path));
    }
    const RangeId range{base::GetBig32(key.data()), base::GetBig32(key.data() + 4)};
    if (Status s = visit(range, key.substr(kKeyHeaderBytes), it->value()); !s.ok()) return s;
  }
  if (!it->status().ok()) return ReadFailed(it->status(), what);
  return Status::Ok();
}

Status Engine::LoadKeyIndex() {
  auto version = GetMeta(kKeysVersionKey);
  if (!version.ok()) return version.status();
  if (*version) {
    if (**version == kKeysVersion) return Status::Ok();
    return Status::FailedPrecondition(
        fmt::format("the key index at {} is of version {}, which this build does not know",
                    options_.path, **version));
  }
  // Built from the data, in batches; the marker goes with the last, synced one. An interrupted
  // build leaves no marker and is done again (its records are rewritten as they were).
  const auto began = std::chrono::steady_clock::now();
  auto last_report = began;
  const std::shared_ptr<const std::set<uint32_t>> dropped = gc_factory_->Dropped();
  rocksdb::WriteBatch batch;
  rocksdb::ReadOptions read_options;
  read_options.fill_cache = false;  // a scan read once: it should not evict what reads use
  uint64_t keys = 0;
  Status built = ForEachDataKey(
      read_options, "building the key index",
      [&](RangeId range, std::string_view key, const rocksdb::Slice&) -> Status {
        if (dropped->contains(range.second)) return Status::Ok();
        if (keys == 0) {
          spdlog::info("building the key index from the data at {} (a database created before it)",
                       options_.path);
        }
        batch.Put(keys_cf_, IndexKey(range.second, key), IndexValue(range.first));
        if (batch.GetDataSize() >= (size_t{4} << 20)) {
          Status s =
              FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "building the key index");
          batch.Clear();
          if (!s.ok()) return s;
        }
        if (++keys % 4096 == 0 &&
            std::chrono::steady_clock::now() - last_report >= std::chrono::seconds(5)) {
          last_report = std::chrono::steady_clock::now();
          spdlog::info("building the key index: {} keys so far (partition {})", keys, range.first);
        }
        return Status::Ok();
      });
  if (!built.ok()) return built;
  batch.Put(meta_, kKeysVersionKey, kKeysVersion);
  rocksdb::WriteOptions synced;
  synced.sync = true;
  if (Status s = FromRocks(db_->Write(synced, &batch), "building the key index"); !s.ok()) return s;
  if (keys > 0) {
    spdlog::info("built the key index of {} keys in {:.1f} s", keys,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
  }
  return Status::Ok();
}

Result<std::optional<std::string>> Engine::GetMeta(std::string_view key) const {
  return GetRaw(Family::kMeta, key);
}

Result<std::optional<std::string>> Engine::GetRaw(Family family, std::string_view key) const {
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), HandleOf(family), key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return ReadFailed(s, "read");
  return std::optional<std::string>(std::move(value));
}

Result<std::vector<std::pair<std::string, std::string>>> Engine::ListMeta(
    std::string_view prefix) const {
  return List(Family::kMeta, prefix, "", SIZE_MAX);
}

Result<std::vector<std::pair<std::string, std::string>>> Engine::List(Family family,
                                                                      std::string_view prefix,
                                                                      std::string_view after,
                                                                      size_t limit) const {
  std::vector<std::pair<std::string, std::string>> out;
  // Bounded to the prefix: an iterator that runs past it skips every deleted record beyond it
  // (a Paxos family full of cleaned-up records made each listing cost milliseconds).
  std::string limit_key(prefix);
  while (!limit_key.empty() && static_cast<unsigned char>(limit_key.back()) == 0xff) {
    limit_key.pop_back();
  }
  if (!limit_key.empty()) limit_key.back() = static_cast<char>(limit_key.back() + 1);
  const rocksdb::Slice upper(limit_key);
  rocksdb::ReadOptions read;
  if (!limit_key.empty()) read.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, HandleOf(family)));
  std::string start(prefix);
  if (!after.empty() && after >= prefix) {
    start.assign(after);
    start.push_back('\0');
  }
  for (it->Seek(start); it->Valid() && it->key().starts_with(prefix) && out.size() < limit;
       it->Next()) {
    out.emplace_back(it->key().ToString(), it->value().ToString());
  }
  if (!it->status().ok()) return ReadFailed(it->status(), "list");
  return out;
}

rocksdb::ColumnFamilyHandle* Engine::HandleOf(Family family) const {
  switch (family) {
    case Family::kMeta:
      return meta_;
    case Family::kPaxos:
      return paxos_;
    case Family::kHints:
      return hints_;
    case Family::kData:
      return data_;
  }
  return meta_;
}

Status Engine::WriteMeta(const std::vector<MetaWrite>& writes) {
  rocksdb::WriteBatch batch;
  for (const MetaWrite& m : writes) {
    if (m.value) {
      batch.Put(meta_, m.key, *m.value);
    } else {
      batch.Delete(meta_, m.key);
    }
  }
  rocksdb::WriteOptions write_options;
  write_options.sync = true;
  return FromRocks(db_->Write(write_options, &batch), "meta write");
}

std::set<uint32_t> Engine::DroppedKeyspaces() const { return *gc_factory_->Dropped(); }

Status Engine::ReadFailed(const rocksdb::Status& s, std::string_view what) const {
  if (s.IsCorruption()) corruptions_.fetch_add(1, std::memory_order_relaxed);
  return FromRocks(s, what);
}

Status Engine::WriteAndWait(WriteRequest request) {
  std::promise<Status> done;
  std::future<Status> result = done.get_future();
  Write(std::move(request),
        [&done](Status s, std::vector<WriteOutcome>) { done.set_value(std::move(s)); });
  return result.get();
}

std::vector<Engine::TableFile> Engine::DataFiles() const {
  std::vector<rocksdb::LiveFileMetaData> files;
  db_->GetLiveFilesMetaData(&files);
  std::vector<TableFile> out;
  for (const rocksdb::LiveFileMetaData& f : files) {
    if (f.column_family_name == kDataCf) out.push_back(TableFile{f.name, f.size});
  }
  return out;
}

Result<Engine::FileCheck> Engine::ScrubFile(const TableFile& table) {
  FileCheck check;
  std::vector<rocksdb::LiveFileMetaData> files;
  db_->GetLiveFilesMetaData(&files);
  auto it = std::find_if(files.begin(), files.end(), [&](const rocksdb::LiveFileMetaData& f) {
    return f.name == table.name && f.column_family_name == kDataCf;
  });
  if (it == files.end()) return check;  // compacted away meanwhile
  const rocksdb::LiveFileMetaData& file = *it;
  const std::string path = file.db_path + file.name;
  rocksdb::SstFileReader reader(db_->GetOptions(data_));
  rocksdb::Status verified = reader.Open(path);
  if (verified.ok()) verified = reader.VerifyChecksum();
  if (verified.ok() || verified.IsNotFound() || verified.IsPathNotFound()) return check;
  if (!verified.IsCorruption()) return FromRocks(verified, "checking " + path);
  corruptions_.fetch_add(1, std::memory_order_relaxed);
  check.corrupt = verified.ToString();
  if (file.smallestkey.size() < kKeyHeaderBytes || file.largestkey.size() < kKeyHeaderBytes) {
    return Status::Internal(fmt::format("{} is corrupt and holds keys Cairn did not write", path));
  }
  // Every range between the file's first and last key, of every keyspace this node holds keys
  // of: not only those with a tree now, as a range whose keys were all purged has none, and the
  // file may hold the purges' deletions, which dropping it would undo.
  const RangeId first{base::GetBig32(file.smallestkey.data()),
                      base::GetBig32(file.smallestkey.data() + 4)};
  const RangeId last{base::GetBig32(file.largestkey.data()),
                     base::GetBig32(file.largestkey.data() + 4)};
  std::set<uint32_t> keyspaces{first.second, last.second};
  {
    std::lock_guard lock(trees_mu_);
    for (const auto& [range, tree] : trees_) keyspaces.insert(range.second);
    for (const RangeId& range : dirty_) keyspaces.insert(range.second);
  }
  std::set<RangeId> ranges;
  for (uint32_t p = first.first; p <= last.first; ++p) {
    for (uint32_t ks : keyspaces) {
      if (first <= RangeId{p, ks} && RangeId{p, ks} <= last) ranges.insert({p, ks});
    }
  }
  WriteRequest request;
  for (const auto& [partition, keyspace] : ranges) {
    request.range_deletes.push_back({partition, keyspace, /*keep_paxos=*/true});
    check.ranges_dropped.emplace_back(partition, keyspace);
  }
  if (Status s = WriteAndWait(std::move(request)); !s.ok()) return s;
  const rocksdb::Status dropped = db_->DeleteFile(file.name);
  check.dropped = dropped.ok();
  garbage_stale_ = true;
  if (check.dropped) {
    spdlog::error("scrub: {} was corrupt ({}); dropped it and the {} ranges its keys span", path,
                  check.corrupt, ranges.size());
  } else {
    spdlog::error(
        "scrub: {} is corrupt ({}) and RocksDB would not drop it ({}); its {} ranges were "
        "deleted, so reads no longer reach it",
        path, check.corrupt, dropped.ToString(), ranges.size());
  }
  // A background error the corrupt file caused stops writes until it is cleared.
  if (rocksdb::Status resumed = db_->Resume(); !resumed.ok() && !resumed.IsNotSupported()) {
    spdlog::warn("scrub: resuming after {}: {}", path, resumed.ToString());
  }
  return check;
}

Status Engine::CompactAll() {
  if (auto s = FromRocks(db_->Flush(rocksdb::FlushOptions(), data_), "flush"); !s.ok()) return s;
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  Status s = FromRocks(db_->CompactRange(options, data_, nullptr, nullptr), "compaction");
  // Reads after an explicit compaction see what it left (see read_cache.h on compaction).
  read_cache_.Clear();
  return s;
}

Engine::Garbage Engine::TableGarbage() const {
  std::lock_guard lock(garbage_mu_);
  if (!garbage_stale_.exchange(false)) return garbage_;
  rocksdb::TablePropertiesCollection tables;
  if (rocksdb::Status s = db_->GetPropertiesOfAllTables(data_, &tables); !s.ok()) {
    garbage_stale_ = true;
    spdlog::warn("storage: reading the table files' properties: {}", s.ToString());
    return garbage_;
  }
  Garbage g;
  for (const auto& [name, properties] : tables) {
    const rocksdb::UserCollectedProperties& user = properties->user_collected_properties;
    const uint64_t size = properties->data_size + properties->index_size + properties->filter_size;
    const uint64_t entry_bytes = PropertyNumber(user, kEntryBytesProperty);
    const uint64_t dead = PropertyNumber(user, kDeadBytesProperty);
    g.table_bytes += size;
    if (entry_bytes > 0) {
      g.dead_bytes += static_cast<uint64_t>(static_cast<double>(size) *
                                            static_cast<double>(std::min(dead, entry_bytes)) /
                                            static_cast<double>(entry_bytes));
    }
    g.entries += PropertyNumber(user, kEntriesProperty);
    g.dead_entries += PropertyNumber(user, kDeadEntriesProperty);
  }
  garbage_ = g;
  return g;
}

uint64_t Engine::DiskBytes() const {
  uint64_t total = 0;
  for (const char* p : {"rocksdb.total-sst-files-size", "rocksdb.total-blob-file-size",
                        "rocksdb.cur-size-all-mem-tables"}) {
    if (auto v = Property(p)) total += std::strtoull(v->c_str(), nullptr, 10);
  }
  return total;
}

std::optional<std::string> Engine::Property(std::string_view name) const {
  std::string value;
  if (!db_->GetProperty(data_, rocksdb::Slice(name.data(), name.size()), &value)) {
    return std::nullopt;
  }
  return value;
}

Engine::Counters Engine::StatisticsCounters() const {
  Counters c;
  if (!statistics_) return c;
  c.block_cache_hits = statistics_->getTickerCount(rocksdb::BLOCK_CACHE_HIT);
  c.block_cache_misses = statistics_->getTickerCount(rocksdb::BLOCK_CACHE_MISS);
  c.wal_syncs = statistics_->getTickerCount(rocksdb::WAL_FILE_SYNCED);
  return c;
}

uint64_t Engine::group_commits() const {
  std::lock_guard lock(mu_);
  return group_commits_;
}

}  // namespace cairn::storage
