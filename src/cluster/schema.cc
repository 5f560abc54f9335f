#include "cluster/schema.h"

#include <algorithm>
#include <charconv>
#include <future>
#include <random>

#include <fmt/format.h>

#include "base/hash.h"
#include "cluster/placement.h"
#include "cluster/split_counters.h"
#include "proto/internode.pb.h"

namespace cairn::cluster {
namespace {

constexpr std::string_view kNodeIdKey = "node_id";
constexpr std::string_view kPartitionBitsKey = "partition_bits";
constexpr std::string_view kKeyspacePrefix = "keyspace/";

std::optional<uint32_t> ParseU32(std::string_view text) {
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
  return v;
}

bool ValidReadLevel(Consistency c) { return c != Consistency::kDefault && c != Consistency::kAny; }
bool ValidWriteLevel(Consistency c) {
  return c != Consistency::kDefault && c != Consistency::kSerial && c != Consistency::kLocalSerial;
}

bool ValidName(std::string_view name, size_t max) {
  auto ok_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  };
  const bool starts_with_letter =
      !name.empty() && ((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z'));
  return name.size() <= max && starts_with_letter && std::all_of(name.begin(), name.end(), ok_char);
}

// The automatic splitting options of `def`, as a create or an alter leaves them.
Status ValidateAutoSplit(const KeyspaceDef& def) {
  const uint32_t rate = def.auto_split_increments_per_s;
  if (rate != 0 && (rate < kMinAutoSplitIncrementsPerS || rate > kMaxAutoSplitIncrementsPerS)) {
    return Status::InvalidArgument(fmt::format(
        "auto_split_increments_per_s is 0 (off) or {} to {}, not {}: below {} a second the "
        "sampled counts cannot tell a hot counter",
        kMinAutoSplitIncrementsPerS, kMaxAutoSplitIncrementsPerS, rate,
        kMinAutoSplitIncrementsPerS));
  }
  if (def.auto_split_shards < kMinSplitShards || def.auto_split_shards > kMaxSplitShards) {
    return Status::InvalidArgument(fmt::format("auto_split_shards is {} to {}, not {}",
                                               kMinSplitShards, kMaxSplitShards,
                                               def.auto_split_shards));
  }
  if (rate != 0 && def.linearizable) {
    // A split counter's read is a sum of reads, not one linearizable read: only an operator
    // splits a counter of a linearizable keyspace, knowingly (cairn hotkeys split).
    return Status::InvalidArgument(
        "a linearizable keyspace cannot split counters automatically: a split counter's read is "
        "a sum, not a linearizable read");
  }
  return Status::Ok();
}

KeyspaceDef DefaultKeyspace() {
  KeyspaceDef def;
  def.name = std::string(kDefaultKeyspace);
  def.id = kDefaultKeyspaceId;
  return def;  // version {0, 0}: identical on every node, so it never conflicts
}

std::string MetaKey(std::string_view name) { return fmt::format("{}{}", kKeyspacePrefix, name); }

std::string Encode(const KeyspaceDef& def) {
  internode::KeyspaceRecord r;
  ToRecord(def, &r);
  return r.SerializeAsString();
}

Result<KeyspaceDef> Decode(std::string_view bytes) {
  internode::KeyspaceRecord r;
  if (!r.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Status::Internal("corrupt keyspace definition");
  }
  return FromRecord(r);
}

}  // namespace

void ToRecord(const KeyspaceDef& def, internode::KeyspaceRecord* r) {
  r->set_name(def.name);
  r->set_id(def.id);
  for (const auto& [dc, rf] : def.replication) (*r->mutable_replication())[dc] = rf;
  r->set_read_consistency(static_cast<uint32_t>(def.read_consistency));
  r->set_write_consistency(static_cast<uint32_t>(def.write_consistency));
  r->set_created_at_ms(def.created_at_ms);
  r->mutable_version()->set_hlc(def.version.hlc);
  r->mutable_version()->set_node(def.version.node);
  r->set_dropped(def.dropped);
  r->set_linearizable(def.linearizable);
  r->set_auto_split_increments_per_s(def.auto_split_increments_per_s);
  r->set_auto_split_shards(def.auto_split_shards);
}

Result<KeyspaceDef> FromRecord(const internode::KeyspaceRecord& r) {
  if (r.read_consistency() > static_cast<uint32_t>(Consistency::kLocalSerial) ||
      r.write_consistency() > static_cast<uint32_t>(Consistency::kLocalSerial)) {
    return Status::Internal("corrupt keyspace definition");
  }
  KeyspaceDef def;
  def.name = r.name();
  def.id = r.id();
  def.replication.clear();
  for (const auto& [dc, rf] : r.replication()) def.replication[dc] = rf;
  def.read_consistency = static_cast<Consistency>(r.read_consistency());
  def.write_consistency = static_cast<Consistency>(r.write_consistency());
  def.created_at_ms = r.created_at_ms();
  def.version = Version{r.version().hlc(), r.version().node()};
  def.dropped = r.dropped();
  def.linearizable = r.linearizable();
  def.auto_split_increments_per_s = r.auto_split_increments_per_s();
  if (r.auto_split_shards() != 0) def.auto_split_shards = r.auto_split_shards();
  return def;
}

Result<NodeIdentity> LoadOrCreateIdentity(storage::Engine& engine,
                                          std::optional<uint32_t> requested_id,
                                          uint32_t partition_bits_if_new) {
  if (requested_id && *requested_id == 0) {
    return Status::InvalidArgument("node id 0 is reserved; use 1 .. 4294967295");
  }
  auto stored_id = engine.GetMeta(kNodeIdKey);
  if (!stored_id.ok()) return stored_id.status();
  auto stored_bits = engine.GetMeta(kPartitionBitsKey);
  if (!stored_bits.ok()) return stored_bits.status();

  if (stored_id->has_value()) {
    auto id = ParseU32(**stored_id);
    auto bits = stored_bits->has_value() ? ParseU32(**stored_bits) : std::nullopt;
    if (!id || !bits) return Status::Internal("corrupt node identity in the meta column family");
    if (requested_id && *requested_id != *id) {
      return Status::InvalidArgument(
          fmt::format("this data directory belongs to node {}, not {}; a node's id cannot change",
                      *id, *requested_id));
    }
    return NodeIdentity{*id, *bits};
  }

  if (partition_bits_if_new > 16) {
    return Status::InvalidArgument("at most 65536 partitions (partition bits 0..16)");
  }
  NodeIdentity identity{requested_id.value_or(0), partition_bits_if_new};
  if (identity.node_id == 0) {
    std::random_device rd;
    while (identity.node_id == 0) identity.node_id = rd();
  }
  Status s =
      engine.WriteMeta({{std::string(kNodeIdKey), std::to_string(identity.node_id)},
                        {std::string(kPartitionBitsKey), std::to_string(identity.partition_bits)}});
  if (!s.ok()) return s;
  return identity;
}

Status ValidateKeyspaceName(std::string_view name) {
  if (!ValidName(name, 48)) {
    return Status::InvalidArgument(fmt::format(
        "invalid keyspace name '{}': use 1-48 letters, digits, '_' or '-', starting with a letter",
        name));
  }
  return Status::Ok();
}

Result<std::unique_ptr<Schema>> Schema::Load(storage::Engine* engine, uint32_t partitions) {
  std::unique_ptr<Schema> schema(new Schema(engine, partitions));
  auto listed = engine->ListMeta(kKeyspacePrefix);
  if (!listed.ok()) return listed.status();
  for (const auto& [key, value] : *listed) {
    auto def = Decode(value);
    if (!def.ok()) return def.status();
    schema->SetRecordLocked(*def);
  }
  schema->SetRecordLocked(DefaultKeyspace());
  return schema;
}

std::optional<KeyspaceDef> Schema::Find(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = records_.find(name);
  if (it == records_.end() || it->second.dropped) return std::nullopt;
  return it->second;
}

std::shared_ptr<const KeyspaceDef> Schema::Lookup(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = live_.find(name);
  return it == live_.end() ? nullptr : it->second;
}

void Schema::SetRecordLocked(const KeyspaceDef& def) {
  records_[def.name] = def;
  if (def.dropped) {
    if (auto it = live_.find(def.name); it != live_.end()) live_.erase(it);
  } else {
    live_[def.name] = std::make_shared<const KeyspaceDef>(def);
  }
}

std::vector<KeyspaceDef> Schema::List() const {
  std::lock_guard lock(mu_);
  std::vector<KeyspaceDef> out;
  for (const auto& [name, def] : records_) {
    if (!def.dropped) out.push_back(def);
  }
  return out;
}

std::vector<KeyspaceDef> Schema::Records() const {
  std::lock_guard lock(mu_);
  std::vector<KeyspaceDef> out;
  out.reserve(records_.size());
  for (const auto& [name, def] : records_) {
    if (name != kDefaultKeyspace) out.push_back(def);
  }
  return out;
}

Status Schema::Persist(const KeyspaceDef& def, std::optional<uint32_t> drop_data_of) {
  storage::WriteRequest request;
  request.raw.push_back({storage::Family::kMeta, MetaKey(def.name), Encode(def)});
  if (drop_data_of) {
    request.drop =
        storage::WriteRequest::Drop{.keyspace = *drop_data_of, .partitions = partitions_};
  }
  std::promise<Status> done;
  engine_->Write(std::move(request),
                 [&done](Status s, std::vector<storage::WriteOutcome>) { done.set_value(s); });
  return done.get_future().get();
}

Result<KeyspaceDef> PlanCreate(const std::vector<KeyspaceDef>& records,
                               const std::set<uint32_t>& dropped_ids, const KeyspaceDef& spec,
                               bool if_not_exists, uint64_t now_ms, Version version) {
  if (Status s = ValidateKeyspaceName(spec.name); !s.ok()) return s;
  uint32_t total = 0;
  for (const auto& [dc, rf] : spec.replication) {
    if (rf > kMaxReplicationFactor) {
      return Status::InvalidArgument(
          fmt::format("replication factor must be 0 .. {}, not {}", kMaxReplicationFactor, rf));
    }
    if (dc != kEveryDc && !ValidName(dc, 48)) {
      return Status::InvalidArgument(fmt::format("invalid data centre name '{}'", dc));
    }
    total += rf;
  }
  if (total == 0) return Status::InvalidArgument("a keyspace needs at least one replica");
  if (!ValidReadLevel(spec.read_consistency)) {
    return Status::InvalidArgument(
        fmt::format("{} is not a read consistency level", ConsistencyName(spec.read_consistency)));
  }
  if (!ValidWriteLevel(spec.write_consistency)) {
    return Status::InvalidArgument(fmt::format("{} is not a write consistency level",
                                               ConsistencyName(spec.write_consistency)));
  }
  if (Status s = ValidateAutoSplit(spec); !s.ok()) return s;
  const KeyspaceDef* existing = nullptr;
  for (const KeyspaceDef& r : records) {
    if (r.name == spec.name) existing = &r;
  }
  if (existing != nullptr && !existing->dropped) {
    if (if_not_exists) return *existing;
    return Status::AlreadyExists(fmt::format("keyspace '{}' already exists", spec.name));
  }
  KeyspaceDef def = spec;
  def.version = version;
  if (existing != nullptr && !(existing->version < version)) {
    def.version = Version{existing->version.hlc + 1, version.node};
  }
  def.created_at_ms = now_ms;
  def.dropped = false;
  // A hash of the name and of the version of the name's last drop (none: zero). Two nodes that
  // create the same keyspace at the same moment therefore pick the same id and no data is lost
  // when their definitions meet; a keyspace created again after a drop gets a new id.
  const Version last_drop = existing != nullptr ? existing->version : Version{};
  auto in_use = [&](uint32_t id) {
    if (id <= kDefaultKeyspaceId || dropped_ids.contains(id)) return true;
    for (const KeyspaceDef& other : records) {
      if (other.id == id) return true;
    }
    return false;
  };
  uint64_t salt = 0;
  do {
    def.id = static_cast<uint32_t>(
        base::Hash64(fmt::format("{}/{}/{}/{}", def.name, last_drop.hlc, last_drop.node, salt++)));
  } while (in_use(def.id));
  return def;
}

Result<KeyspaceDef> PlanAlter(const std::vector<KeyspaceDef>& records, std::string_view name,
                              const KeyspaceChange& change, Version version) {
  if (name == kDefaultKeyspace) {
    return Status::InvalidArgument(
        "the default keyspace cannot be altered; create a keyspace with the options you need");
  }
  if (change.read_consistency && !ValidReadLevel(*change.read_consistency)) {
    return Status::InvalidArgument(fmt::format("{} is not a read consistency level",
                                               ConsistencyName(*change.read_consistency)));
  }
  if (change.write_consistency && !ValidWriteLevel(*change.write_consistency)) {
    return Status::InvalidArgument(fmt::format("{} is not a write consistency level",
                                               ConsistencyName(*change.write_consistency)));
  }
  const KeyspaceDef* found = nullptr;
  for (const KeyspaceDef& r : records) {
    if (r.name == name && !r.dropped) found = &r;
  }
  if (found == nullptr) return Status::NotFound(fmt::format("keyspace '{}' does not exist", name));
  KeyspaceDef def = *found;
  if (change.linearizable) def.linearizable = *change.linearizable;
  if (change.read_consistency) def.read_consistency = *change.read_consistency;
  if (change.write_consistency) def.write_consistency = *change.write_consistency;
  if (change.auto_split_increments_per_s) {
    def.auto_split_increments_per_s = *change.auto_split_increments_per_s;
  }
  if (change.auto_split_shards) def.auto_split_shards = *change.auto_split_shards;
  if (Status s = ValidateAutoSplit(def); !s.ok()) return s;
  def.version = std::max(version, Version{found->version.hlc + 1, version.node});
  return def;
}

Result<std::optional<KeyspaceDef>> PlanDrop(const std::vector<KeyspaceDef>& records,
                                            std::string_view name, bool if_exists,
                                            Version version) {
  if (name == kDefaultKeyspace) {
    return Status::InvalidArgument("the default keyspace cannot be dropped");
  }
  const KeyspaceDef* found = nullptr;
  for (const KeyspaceDef& r : records) {
    if (r.name == name && !r.dropped) found = &r;
  }
  if (found == nullptr) {
    if (if_exists) return std::optional<KeyspaceDef>();
    return Status::NotFound(fmt::format("keyspace '{}' does not exist", name));
  }
  KeyspaceDef dropped = *found;
  dropped.dropped = true;
  dropped.version = std::max(version, Version{found->version.hlc + 1, version.node});
  return std::optional<KeyspaceDef>(std::move(dropped));
}

Result<KeyspaceDef> Schema::Create(const KeyspaceDef& spec, bool if_not_exists, uint64_t now_ms,
                                   Version version) {
  std::lock_guard change(change_mu_);
  std::vector<KeyspaceDef> records = Records();
  if (auto def = Find(kDefaultKeyspace)) records.push_back(*def);
  auto def = PlanCreate(records, engine_->DroppedKeyspaces(), spec, if_not_exists, now_ms, version);
  if (!def.ok()) return def.status();
  if (auto existing = Find(spec.name); existing && *existing == *def) return *def;
  if (Status s = Persist(*def, std::nullopt); !s.ok()) return s;
  std::lock_guard lock(mu_);
  SetRecordLocked(*def);
  return *def;
}

Result<KeyspaceDef> Schema::Alter(std::string_view name, const KeyspaceChange& change,
                                  Version version) {
  std::lock_guard change_lock(change_mu_);
  auto def = PlanAlter(List(), name, change, version);
  if (!def.ok()) return def.status();
  if (Status s = Persist(*def, std::nullopt); !s.ok()) return s;
  std::lock_guard lock(mu_);
  SetRecordLocked(*def);
  return *def;
}

Status Schema::Drop(std::string_view name, bool if_exists, Version version) {
  std::lock_guard change(change_mu_);
  auto dropped = PlanDrop(List(), name, if_exists, version);
  if (!dropped.ok()) return dropped.status();
  if (!dropped->has_value()) return Status::Ok();
  if (Status s = Persist(**dropped, (*dropped)->id); !s.ok()) return s;
  std::lock_guard lock(mu_);
  SetRecordLocked(**dropped);
  return Status::Ok();
}

bool Schema::HasNewer(const std::vector<KeyspaceDef>& records) const {
  std::lock_guard lock(mu_);
  for (const KeyspaceDef& r : records) {
    if (r.name == kDefaultKeyspace) continue;
    auto it = records_.find(r.name);
    if (it == records_.end() || it->second.version < r.version) return true;
  }
  return false;
}

Status Schema::Merge(const std::vector<KeyspaceDef>& records) { return Apply(records, false); }

Status Schema::Sync(const std::vector<KeyspaceDef>& records) { return Apply(records, true); }

Status Schema::Apply(const std::vector<KeyspaceDef>& records, bool decided) {
  std::lock_guard change(change_mu_);
  for (const KeyspaceDef& r : records) {
    if (r.name == kDefaultKeyspace || !ValidName(r.name, 48)) continue;
    std::optional<KeyspaceDef> current;
    {
      std::lock_guard lock(mu_);
      auto it = records_.find(r.name);
      if (it != records_.end()) {
        if (decided ? it->second == r : !(it->second.version < r.version)) continue;
        current = it->second;
      }
    }
    // The data of a keyspace that this definition drops or replaces goes.
    std::optional<uint32_t> dropped, replaced;
    if (r.dropped) dropped = r.id;
    if (current && !current->dropped && current->id != r.id) replaced = current->id;
    Status s = Persist(r, dropped);  // when nothing is dropped: persist only
    if (s.ok() && replaced) s = Persist(r, replaced);
    if (!s.ok()) return s;
    std::lock_guard lock(mu_);
    SetRecordLocked(r);
  }
  return Status::Ok();
}

}  // namespace cairn::cluster
