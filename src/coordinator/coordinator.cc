#include "coordinator/coordinator.h"

#include <fmt/format.h>
#include <boost/asio/post.hpp>

#include "base/hash.h"

namespace cairn::coordinator {
namespace {

using storage::StoredValue;
using storage::WriteOp;

// The live value a conditional write compares against: tombstones and expired values count as
// absent.
const StoredValue* Live(const StoredValue* v, uint64_t now_ms) {
  return v != nullptr && v->IsLive(now_ms) ? v : nullptr;
}

bool ConditionHolds(const CasCondition& c, const StoredValue* live) {
  switch (c.kind) {
    case CasCondition::Kind::kIfVersion:
      return live != nullptr && live->version == c.version;
    case CasCondition::Kind::kIfValue:
      return live != nullptr && live->value == c.value;
    case CasCondition::Kind::kIfNotExists:
      return live == nullptr;
    case CasCondition::Kind::kIfExists:
      return live != nullptr;
  }
  return false;
}

}  // namespace

std::optional<Record> LiveRecord(const StoredValue& v, uint64_t now_ms) {
  if (!v.IsLive(now_ms)) return std::nullopt;
  return Record{v.value, v.version, v.expires_at_ms};
}

Coordinator::Coordinator(CoordinatorOptions options, cluster::NodeIdentity identity,
                         cluster::Schema* schema, replica::Replica* local, base::HybridClock* clock,
                         base::PhysicalClock* wall, asio::any_io_executor blocking)
    : options_(options),
      identity_(identity),
      schema_(schema),
      local_(local),
      clock_(clock),
      wall_(wall),
      blocking_(std::move(blocking)) {}

Result<cluster::KeyspaceDef> Coordinator::ResolveKeyspace(const std::string& name) const {
  const std::string_view wanted = name.empty() ? cluster::kDefaultKeyspace : std::string_view(name);
  auto def = schema_->Find(wanted);
  if (!def) return Status::InvalidArgument(fmt::format("keyspace '{}' does not exist", wanted));
  return *def;
}

Status Coordinator::ValidateKey(std::string_view key) const {
  if (key.empty()) return Status::InvalidArgument("the key is empty");
  if (key.size() > kMaxKeyBytes) {
    return Status::TooLarge(
        fmt::format("the key is {} bytes; keys are at most {} bytes", key.size(), kMaxKeyBytes));
  }
  return Status::Ok();
}

Status Coordinator::ValidateValue(std::string_view value) const {
  if (value.size() > options_.max_value_bytes) {
    return Status::TooLarge(fmt::format("the value is {} bytes; this server takes at most {}",
                                        value.size(), options_.max_value_bytes));
  }
  return Status::Ok();
}

Status Coordinator::ValidateTtl(uint64_t ttl_ms) const {
  if (ttl_ms > options_.max_ttl_ms) {
    return Status::InvalidArgument(
        fmt::format("ttl of {} ms is over the maximum of {} ms", ttl_ms, options_.max_ttl_ms));
  }
  return Status::Ok();
}

Status Coordinator::ValidateReadLevel(Consistency level) const {
  if (level == Consistency::kAny) {
    return Status::InvalidArgument("ANY is a write consistency level; reads need at least ONE");
  }
  return Status::Ok();
}

Status Coordinator::ValidateWriteLevel(Consistency level) const {
  if (level == Consistency::kSerial || level == Consistency::kLocalSerial) {
    return Status::InvalidArgument(fmt::format(
        "{} applies to reads and compare-and-swap; plain writes take ONE .. ALL, LOCAL_*, "
        "EACH_QUORUM or ANY",
        ConsistencyName(level)));
  }
  return Status::Ok();
}

storage::DataKey Coordinator::KeyOf(const cluster::KeyspaceDef& ks, std::string key) const {
  const uint32_t partition = base::PartitionOfToken(base::Token(key), identity_.partition_bits);
  return storage::DataKey{partition, ks.id, std::move(key)};
}

uint64_t Coordinator::ExpiryFor(uint64_t ttl_ms) const {
  return ttl_ms == 0 ? 0 : wall_->NowMillis() + ttl_ms;
}

asio::awaitable<Result<std::vector<storage::WriteOutcome>>> Coordinator::ApplyLocal(
    std::vector<WriteOp> ops, base::Deadline deadline) {
  auto applied = co_await base::WithDeadline(local_->Apply(std::move(ops)), deadline);
  if (!applied) {
    co_return Status::Timeout(
        "the write was not acknowledged before the deadline; it may have been applied", 0);
  }
  co_return std::move(*applied);
}

asio::awaitable<Result<std::optional<Record>>> Coordinator::Get(std::string key,
                                                                RequestOptions options) {
  auto ks = ResolveKeyspace(options.keyspace);
  if (!ks.ok()) co_return ks.status();
  if (Status s = ValidateKey(key); !s.ok()) co_return s;
  if (Status s = ValidateReadLevel(options.consistency); !s.ok()) co_return s;
  auto stored = local_->Read(KeyOf(*ks, std::move(key)));
  if (!stored.ok()) co_return stored.status();
  if (!stored->has_value()) co_return std::optional<Record>();
  co_return LiveRecord(**stored, wall_->NowMillis());
}

asio::awaitable<Result<Version>> Coordinator::Put(std::string key, std::string value,
                                                  uint64_t ttl_ms, RequestOptions options) {
  auto ks = ResolveKeyspace(options.keyspace);
  if (!ks.ok()) co_return ks.status();
  if (Status s = ValidateKey(key); !s.ok()) co_return s;
  if (Status s = ValidateValue(value); !s.ok()) co_return s;
  if (Status s = ValidateTtl(ttl_ms); !s.ok()) co_return s;
  if (Status s = ValidateWriteLevel(options.consistency); !s.ok()) co_return s;
  const Version version{clock_->Now(), identity_.node_id};
  std::vector<WriteOp> ops(1);
  ops[0].key = KeyOf(*ks, std::move(key));
  ops[0].value = StoredValue{version, false, ExpiryFor(ttl_ms), std::move(value)};
  auto applied = co_await ApplyLocal(std::move(ops), options.deadline);
  if (!applied.ok()) co_return applied.status();
  co_return version;
}

asio::awaitable<Result<Version>> Coordinator::Delete(std::string key, RequestOptions options) {
  auto ks = ResolveKeyspace(options.keyspace);
  if (!ks.ok()) co_return ks.status();
  if (Status s = ValidateKey(key); !s.ok()) co_return s;
  if (Status s = ValidateWriteLevel(options.consistency); !s.ok()) co_return s;
  const Version version{clock_->Now(), identity_.node_id};
  std::vector<WriteOp> ops(1);
  ops[0].key = KeyOf(*ks, std::move(key));
  ops[0].value = StoredValue{version, true, 0, {}};
  auto applied = co_await ApplyLocal(std::move(ops), options.deadline);
  if (!applied.ok()) co_return applied.status();
  co_return version;
}

asio::awaitable<Result<CasResult>> Coordinator::Cas(std::string key, CasCondition condition,
                                                    std::optional<std::string> new_value,
                                                    uint64_t ttl_ms, RequestOptions options) {
  auto ks = ResolveKeyspace(options.keyspace);
  if (!ks.ok()) co_return ks.status();
  if (Status s = ValidateKey(key); !s.ok()) co_return s;
  if (new_value) {
    if (Status s = ValidateValue(*new_value); !s.ok()) co_return s;
  }
  if (condition.kind == CasCondition::Kind::kIfValue) {
    if (Status s = ValidateValue(condition.value); !s.ok()) co_return s;
  }
  if (Status s = ValidateTtl(ttl_ms); !s.ok()) co_return s;
  if (options.consistency == Consistency::kAny) {
    co_return Status::InvalidArgument("compare-and-swap cannot run at ANY");
  }
  const uint64_t now = wall_->NowMillis();
  const Version version{clock_->Now(), identity_.node_id};
  const uint64_t expiry = new_value && ttl_ms > 0 ? now + ttl_ms : 0;
  std::vector<WriteOp> ops(1);
  ops[0].key = KeyOf(*ks, std::move(key));
  ops[0].value = StoredValue{version, !new_value.has_value(), expiry, new_value.value_or("")};
  ops[0].precondition = [condition = std::move(condition), now](const StoredValue* current) {
    return ConditionHolds(condition, Live(current, now));
  };
  // Raised through the clock, so the version is unique: a later Put can never get it too.
  ops[0].raise_above = [clock = clock_, node = identity_.node_id](const Version& current) {
    clock->Observe(current.hlc);
    return Version{clock->Now(), node};
  };
  auto outcomes = co_await ApplyLocal(std::move(ops), options.deadline);
  if (!outcomes.ok()) co_return outcomes.status();
  const storage::WriteOutcome& outcome = (*outcomes)[0];
  CasResult result;
  result.applied = outcome.applied;
  if (outcome.applied) {
    if (new_value) result.current = Record{std::move(*new_value), outcome.version, expiry};
  } else if (outcome.current) {
    result.current = LiveRecord(*outcome.current, now);
  }
  co_return result;
}

asio::awaitable<Result<ScanPage>> Coordinator::Scan(std::string prefix, std::string cursor,
                                                    uint32_t limit, RequestOptions options) {
  auto ks = ResolveKeyspace(options.keyspace);
  if (!ks.ok()) co_return ks.status();
  if (Status s = ValidateReadLevel(options.consistency); !s.ok()) co_return s;
  if (prefix.size() > kMaxKeyBytes || cursor.size() > kMaxKeyBytes) {
    co_return Status::TooLarge(
        fmt::format("scan prefix and cursor are at most {} bytes", kMaxKeyBytes));
  }
  if (limit == 0) limit = options_.default_scan_limit;
  if (limit > options_.max_scan_limit) {
    co_return Status::InvalidArgument(
        fmt::format("scan limit {} is over the maximum of {}", limit, options_.max_scan_limit));
  }
  replica::Replica::ScanArgs args;
  args.keyspace = ks->id;
  if (auto tag = base::PrefixPartitionKey(prefix)) {
    // Every matching key has this hash tag: one partition holds them all.
    args.partitions.push_back(base::PartitionOfToken(base::Hash64(*tag), identity_.partition_bits));
  } else {
    args.partitions.resize(identity_.partitions());
    for (uint32_t p = 0; p < identity_.partitions(); ++p) args.partitions[p] = p;
  }
  args.prefix = std::move(prefix);
  args.after = std::move(cursor);
  args.limit = limit;
  args.max_dead = size_t{limit} * 10 + 1000;
  args.max_bytes = options_.max_answer_bytes;
  auto scanned = co_await base::WithDeadline(local_->Scan(std::move(args)), options.deadline);
  if (!scanned) co_return Status::Timeout("the scan did not finish before the deadline", 0);
  if (!scanned->ok()) co_return scanned->status();
  storage::ScanResult& result = **scanned;
  const uint64_t now = wall_->NowMillis();
  ScanPage page;
  page.entries.reserve(result.items.size());
  for (storage::ScanItem& item : result.items) {
    if (!item.value.IsLive(now)) continue;
    page.entries.emplace_back(
        std::move(item.key),
        Record{std::move(item.value.value), item.value.version, item.value.expires_at_ms});
  }
  if (!result.exhausted) page.cursor = std::move(result.last_key);
  co_return page;
}

asio::awaitable<Result<std::vector<Result<std::optional<Record>>>>> Coordinator::BatchGet(
    std::vector<std::string> keys, RequestOptions options) {
  auto ks = ResolveKeyspace(options.keyspace);
  if (!ks.ok()) co_return ks.status();
  if (Status s = ValidateReadLevel(options.consistency); !s.ok()) co_return s;
  if (keys.size() > options_.max_batch_get_keys) {
    co_return Status::TooLarge(fmt::format("a batch read holds at most {} keys, not {}",
                                           options_.max_batch_get_keys, keys.size()));
  }
  const uint64_t now = wall_->NowMillis();
  std::vector<Result<std::optional<Record>>> out;
  out.reserve(keys.size());
  size_t bytes = 0;
  for (std::string& key : keys) {
    if (bytes > options_.max_answer_bytes) {
      co_return Status::TooLarge(
          fmt::format("the values read are over {} bytes; read fewer keys per batch",
                      options_.max_answer_bytes));
    }
    if (Status s = ValidateKey(key); !s.ok()) {
      out.emplace_back(std::move(s));
      continue;
    }
    auto stored = local_->Read(KeyOf(*ks, std::move(key)));
    if (!stored.ok()) {
      out.emplace_back(stored.status());
    } else if (!stored->has_value()) {
      out.emplace_back(std::optional<Record>());
    } else {
      bytes += (*stored)->value.size();
      out.emplace_back(LiveRecord(**stored, now));
    }
  }
  co_return out;
}

asio::awaitable<Result<std::vector<Version>>> Coordinator::BatchPut(std::vector<PutItem> items,
                                                                    RequestOptions options) {
  auto ks = ResolveKeyspace(options.keyspace);
  if (!ks.ok()) co_return ks.status();
  if (Status s = ValidateWriteLevel(options.consistency); !s.ok()) co_return s;
  if (items.size() > options_.max_batch_items) {
    co_return Status::TooLarge(fmt::format("a batch holds at most {} items, not {}",
                                           options_.max_batch_items, items.size()));
  }
  for (size_t i = 0; i < items.size(); ++i) {
    Status s = ValidateKey(items[i].key);
    if (s.ok()) s = ValidateValue(items[i].value);
    if (s.ok()) s = ValidateTtl(items[i].ttl_ms);
    if (!s.ok()) {
      co_return Status(s.code(),
                       fmt::format("batch item {}: {}; nothing was written", i, s.message()));
    }
  }
  std::vector<Version> versions;
  std::vector<WriteOp> ops(items.size());
  versions.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    versions.push_back(Version{clock_->Now(), identity_.node_id});
    ops[i].key = KeyOf(*ks, std::move(items[i].key));
    ops[i].value =
        StoredValue{versions.back(), false, ExpiryFor(items[i].ttl_ms), std::move(items[i].value)};
  }
  auto applied = co_await ApplyLocal(std::move(ops), options.deadline);
  if (!applied.ok()) co_return applied.status();
  co_return versions;
}

asio::awaitable<Result<cluster::KeyspaceDef>> Coordinator::CreateKeyspace(cluster::KeyspaceDef spec,
                                                                          bool if_not_exists) {
  co_return co_await base::AwaitCallback<Result<cluster::KeyspaceDef>>(
      [&](auto done) {
        asio::post(blocking_, [this, spec = std::move(spec), if_not_exists, done] {
          done(schema_->Create(spec, if_not_exists, wall_->NowMillis(),
                               Version{clock_->Now(), identity_.node_id}));
        });
      },
      Status::Timeout("keyspace creation did not finish in time", 0));
}

Result<std::vector<cluster::KeyspaceDef>> Coordinator::ListKeyspaces() const {
  return schema_->List();
}

Result<cluster::KeyspaceDef> Coordinator::DescribeKeyspace(std::string_view name) const {
  auto def = schema_->Find(name);
  if (!def) return Status::NotFound(fmt::format("keyspace '{}' does not exist", name));
  return *def;
}

asio::awaitable<Status> Coordinator::DropKeyspace(std::string name, bool if_exists) {
  co_return co_await base::AwaitCallback<Status>(
      [&](auto done) {
        asio::post(blocking_, [this, name = std::move(name), if_exists, done] {
          done(schema_->Drop(name, if_exists, Version{clock_->Now(), identity_.node_id}));
        });
      },
      Status::Timeout("keyspace drop did not finish in time", 0));
}

NodeInfo Coordinator::Info() const { return NodeInfo{identity_.node_id, CAIRN_VERSION}; }

}  // namespace cairn::coordinator
