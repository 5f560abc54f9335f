#include "storage/engine.h"

#include "base/hash.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <deque>
#include <queue>
#include <unordered_map>

#include <fmt/format.h>
#include <rocksdb/cache.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/options.h>
#include <rocksdb/statistics.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

namespace cairn::storage {
namespace {

constexpr const char* kDataCf = "data";
constexpr const char* kPaxosCf = "paxos";
constexpr const char* kHintsCf = "hints";
constexpr const char* kMetaCf = "meta";
constexpr std::string_view kDroppedPrefix = "dropped_keyspace/";

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  return Status::Internal(fmt::format("{}: {}", what, s.ToString()));
}

std::string DroppedKey(uint32_t keyspace) { return fmt::format("{}{}", kDroppedPrefix, keyspace); }

// Drops the data of dropped keyspaces and turns values expired by TTL into tombstones of the
// same version. It removes no tombstone: when one may go is not a matter of its age but of
// whether every replica has it (issue #16), and a purge decides that, on the writer thread, for
// one exact version (WriteRequest::purges).
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

  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, small},
      {kDataCf, data},
      {kPaxosCf, small},
      {kHintsCf, small},
      {kMetaCf, small},
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
  if (!s.ok() && !s.IsNotFound()) return FromRocks(s, what);
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
    queue_.push_back(Pending{std::move(request), std::move(done), bytes});
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
    CommitGroup(group);
    group.clear();
  }
}

// One group commit in the making: its batch, and what it has written so far, so that reads
// during the group (conditions, transactions) see earlier writes of the same group as if they
// had been committed one by one.
class Engine::Group final : public GroupView {
 public:
  explicit Group(Engine& engine) : e_(engine) {}

  rocksdb::WriteBatch& batch() { return batch_; }
  // The newest version this group wrote of each data key, by encoded key.
  const std::unordered_map<std::string, const StoredValue*>& written() const { return written_; }

  Result<std::optional<StoredValue>> GetEncoded(const std::string& key) {
    // The cache holds what is committed: nothing of this group is visible before it is written.
    auto read = e_.ReadData(key, "read in a group commit");
    if (!read.ok()) return read.status();
    std::optional<StoredValue> stored = std::move(*read);
    if (auto it = written_.find(key);
        it != written_.end() && (!stored || stored->version < it->second->version)) {
      stored = *it->second;
    }
    return stored;
  }

  // Adds a version of `key` (owned by the caller until the group is committed).
  void Merge(std::string key, const StoredValue* value) {
    batch_.Merge(e_.data_, key, EncodeValue(*value));
    Wrote(std::move(key), value);
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
    auto current = GetEncoded(key);
    if (!current.ok()) {
      Merge(std::move(key), value);
      return;
    }
    const StoredValue* newest = value;
    if (*current && value->version < (*current)->version) {
      owned_.push_back(std::move(**current));
      newest = &owned_.back();
    }
    batch_.Put(e_.data_, key, EncodeValue(*newest));
    Wrote(std::move(key), newest);
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
      return FromRocks(s, "read in a group commit");
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
  void Wrote(std::string key, const StoredValue* value) {
    auto [it, inserted] = written_.try_emplace(std::move(key), value);
    if (!inserted && it->second->version < value->version) it->second = value;
  }

  static std::string RawKey(Family family, std::string_view key) {
    std::string out(1, static_cast<char>(family));
    out.append(key);
    return out;
  }

 public:
  std::set<uint32_t> dropped;        // keyspace ids this group drops, so far
  std::set<RangeId> deleted_ranges;  // (partition, keyspace) ranges this group deletes, so far
  std::vector<std::string> purged;   // the data keys the group purges, encoded

 private:
  Engine& e_;
  rocksdb::WriteBatch batch_;
  std::unordered_map<std::string, const StoredValue*> written_;  // newest version per data key
  std::unordered_map<std::string, std::optional<std::string>> raw_written_;
  std::deque<StoredValue> owned_;  // values written by transactions
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
      // not read the key first. One write in fold_every, chosen at random, folds instead: a key
      // written often gets a whole value every fold_every writes on average, which bounds the
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
      for (rocksdb::ColumnFamilyHandle* family : {data_, paxos_}) {
        group.batch().DeleteRange(family, EncodeDataKey(range.partition, range.keyspace, ""),
                                  EncodeDataKey(range.partition, range.keyspace + 1, ""));
      }
      group.deleted_ranges.insert({range.partition, range.keyspace});
    }
    if (request.drop) {
      const auto [keyspace, partitions] = *request.drop;
      for (uint32_t p = 0; p < partitions; ++p) {
        group.batch().DeleteRange(data_, EncodeDataKey(p, keyspace, ""),
                                  EncodeDataKey(p, keyspace + 1, ""));
      }
      group.batch().Put(meta_, DroppedKey(keyspace), "");
      dropped.insert(keyspace);
    }
    if (request.txn) status = request.txn(group);
  }

  // Purges come last: they read what is committed, and need to know everything the group
  // writes, deletes and drops.
  if (status.ok()) status = AddPurges(pending, group);

  const bool ranges_deleted = !group.deleted_ranges.empty();
  if (status.ok() && group.batch().Count() > 0) {
    // The read cache is told of every data key before the write (reads in flight must not
    // fill what they read) and after it is visible (the newest version the group wrote; a
    // purged key is gone, so its entry is dropped).
    for (const auto& [key, value] : group.written()) read_cache_.BeginWrite(key);
    for (const std::string& key : group.purged) read_cache_.BeginWrite(key);
    if (!dropped.empty() || ranges_deleted) read_cache_.Clear();
    rocksdb::WriteOptions write_options;
    write_options.sync = options_.sync;
    status = FromRocks(db_->Write(write_options, &group.batch()), "group commit");
    if (!status.ok()) spdlog::error("{}", status.ToString());
    for (const auto& [key, value] : group.written()) {
      read_cache_.EndWrite(key, status.ok() ? value : nullptr);
    }
    for (const std::string& key : group.purged) read_cache_.EndWrite(key, nullptr);
    if (!dropped.empty() || ranges_deleted) read_cache_.Clear();
    if (ranges_deleted) paxos_cache_.Clear();
    group.Committed(status.ok());
  }
  if (status.ok()) {
    if (!dropped.empty()) gc_factory_->AddDropped(dropped);
    purged_ += group.purged.size();
  }
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
      group.purged.push_back(std::move(key));
    }
  }
  return Status::Ok();
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
  if (!it->status().ok()) return FromRocks(it->status(), "range read");
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

Result<RangeDigest> Engine::DigestRange(uint32_t partition, uint32_t keyspace) const {
  const std::string bound = EncodeDataKey(partition, keyspace, "");
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), data_));
  RangeDigest digest;
  for (it->Seek(bound); it->Valid() && it->key().starts_with(bound); it->Next()) {
    const std::string_view key(it->key().data() + kKeyHeaderBytes,
                               it->key().size() - kKeyHeaderBytes);
    auto value = DecodeValueHeader(std::string_view(it->value().data(), it->value().size()));
    if (!value.ok()) return value.status();
    digest.segments[DigestSegmentOf(key)] ^= DigestHashOf(key, value->version);
    ++digest.keys;
  }
  if (!it->status().ok()) return FromRocks(it->status(), "range digest");
  return digest;
}

Result<ScanResult> Engine::Scan(uint32_t keyspace, std::span<const uint32_t> partitions,
                                std::string_view prefix, std::string_view after, size_t limit,
                                size_t max_dead, size_t max_bytes) const {
  struct Source {
    std::unique_ptr<rocksdb::Iterator> it;
    std::string bound;  // encoded (partition, keyspace, prefix): keys outside it are done
    std::string_view user_key() const {
      return std::string_view(it->key().data(), it->key().size()).substr(kKeyHeaderBytes);
    }
    bool InRange() const { return it->Valid() && it->key().starts_with(bound); }
  };

  std::string start(prefix);
  if (!after.empty() && after >= prefix) {
    start.assign(after);
    start.push_back('\0');  // the smallest key greater than `after`
  }

  rocksdb::ReadOptions read_options;
  const rocksdb::Snapshot* snapshot = db_->GetSnapshot();
  read_options.snapshot = snapshot;
  struct ReleaseSnapshot {
    rocksdb::DB* db;
    const rocksdb::Snapshot* s;
    ~ReleaseSnapshot() { db->ReleaseSnapshot(s); }
  } release{db_.get(), snapshot};

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
    if (!src.it->status().ok()) return FromRocks(src.it->status(), "scan");
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
    if (!src.it->status().ok()) return FromRocks(src.it->status(), "scan");
    if (src.InRange()) heap.push(i);
  }
  result.exhausted = heap.empty();
  if (!result.items.empty()) result.last_key = result.items.back().key;
  return result;
}

Result<std::optional<std::string>> Engine::GetMeta(std::string_view key) const {
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), meta_, key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "meta read");
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
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), HandleOf(family)));
  std::string start(prefix);
  if (!after.empty() && after >= prefix) {
    start.assign(after);
    start.push_back('\0');
  }
  for (it->Seek(start); it->Valid() && it->key().starts_with(prefix) && out.size() < limit;
       it->Next()) {
    out.emplace_back(it->key().ToString(), it->value().ToString());
  }
  if (!it->status().ok()) return FromRocks(it->status(), "list");
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

Status Engine::CompactAll() {
  if (auto s = FromRocks(db_->Flush(rocksdb::FlushOptions(), data_), "flush"); !s.ok()) return s;
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  Status s = FromRocks(db_->CompactRange(options, data_, nullptr, nullptr), "compaction");
  // Reads after an explicit compaction see what it left (see read_cache.h on compaction).
  read_cache_.Clear();
  return s;
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
