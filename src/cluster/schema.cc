#include "cluster/schema.h"

#include <algorithm>
#include <charconv>
#include <future>
#include <random>

#include <fmt/format.h>

#include "proto/meta.pb.h"

namespace cairn::cluster {
namespace {

constexpr std::string_view kNodeIdKey = "node_id";
constexpr std::string_view kPartitionBitsKey = "partition_bits";
constexpr std::string_view kNextKeyspaceIdKey = "keyspace_next_id";
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

std::string Encode(const KeyspaceDef& def) {
  meta::KeyspaceDef m;
  m.set_name(def.name);
  m.set_id(def.id);
  m.set_replication_factor(def.replication_factor);
  m.set_read_consistency(static_cast<uint32_t>(def.read_consistency));
  m.set_write_consistency(static_cast<uint32_t>(def.write_consistency));
  m.set_created_at_ms(def.created_at_ms);
  return m.SerializeAsString();
}

Result<KeyspaceDef> Decode(std::string_view bytes) {
  meta::KeyspaceDef m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) ||
      m.read_consistency() > static_cast<uint32_t>(Consistency::kLocalSerial) ||
      m.write_consistency() > static_cast<uint32_t>(Consistency::kLocalSerial)) {
    return Status::Internal("corrupt keyspace definition in the meta column family");
  }
  return KeyspaceDef{.name = m.name(),
                     .id = m.id(),
                     .replication_factor = m.replication_factor(),
                     .read_consistency = static_cast<Consistency>(m.read_consistency()),
                     .write_consistency = static_cast<Consistency>(m.write_consistency()),
                     .created_at_ms = m.created_at_ms()};
}

}  // namespace

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
  auto ok_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  };
  const bool starts_with_letter =
      !name.empty() && ((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z'));
  if (name.size() > 48 || !starts_with_letter || !std::all_of(name.begin(), name.end(), ok_char)) {
    return Status::InvalidArgument(fmt::format(
        "invalid keyspace name '{}': use 1-48 letters, digits, '_' or '-', starting with a letter",
        name));
  }
  return Status::Ok();
}

Result<std::unique_ptr<Schema>> Schema::Load(storage::Engine* engine, uint32_t partitions,
                                             uint64_t now_ms) {
  std::unique_ptr<Schema> schema(new Schema(engine, partitions));
  auto next = engine->GetMeta(kNextKeyspaceIdKey);
  if (!next.ok()) return next.status();
  auto listed = engine->ListMeta(kKeyspacePrefix);
  if (!listed.ok()) return listed.status();
  for (const auto& [key, value] : *listed) {
    auto def = Decode(value);
    if (!def.ok()) return def.status();
    schema->keyspaces_.emplace(def->name, *def);
  }
  if (next->has_value()) {
    auto id = ParseU32(**next);
    if (!id) return Status::Internal("corrupt keyspace id counter in the meta column family");
    schema->next_id_ = *id;
  }
  if (!schema->keyspaces_.contains(kDefaultKeyspace)) {
    KeyspaceDef def{.name = std::string(kDefaultKeyspace)};
    auto created = schema->Create(def, /*if_not_exists=*/true, now_ms);
    if (!created.ok()) return created.status();
  }
  return schema;
}

std::optional<KeyspaceDef> Schema::Find(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = keyspaces_.find(name);
  if (it == keyspaces_.end()) return std::nullopt;
  return it->second;
}

std::vector<KeyspaceDef> Schema::List() const {
  std::lock_guard lock(mu_);
  std::vector<KeyspaceDef> out;
  out.reserve(keyspaces_.size());
  for (const auto& [name, def] : keyspaces_) out.push_back(def);
  return out;
}

Status Schema::Persist(const KeyspaceDef& def, uint32_t next_id) {
  return engine_->WriteMeta({{fmt::format("{}{}", kKeyspacePrefix, def.name), Encode(def)},
                             {std::string(kNextKeyspaceIdKey), std::to_string(next_id)}});
}

Result<KeyspaceDef> Schema::Create(const KeyspaceDef& spec, bool if_not_exists, uint64_t now_ms) {
  if (Status s = ValidateKeyspaceName(spec.name); !s.ok()) return s;
  if (spec.replication_factor < 1 || spec.replication_factor > kMaxReplicationFactor) {
    return Status::InvalidArgument(fmt::format("replication factor must be 1 .. {}, not {}",
                                               kMaxReplicationFactor, spec.replication_factor));
  }
  if (!ValidReadLevel(spec.read_consistency)) {
    return Status::InvalidArgument(
        fmt::format("{} is not a read consistency level", ConsistencyName(spec.read_consistency)));
  }
  if (!ValidWriteLevel(spec.write_consistency)) {
    return Status::InvalidArgument(fmt::format("{} is not a write consistency level",
                                               ConsistencyName(spec.write_consistency)));
  }
  std::lock_guard change(change_mu_);
  uint32_t id;
  {
    std::lock_guard lock(mu_);
    if (auto it = keyspaces_.find(spec.name); it != keyspaces_.end()) {
      if (if_not_exists) return it->second;
      return Status::AlreadyExists(fmt::format("keyspace '{}' already exists", spec.name));
    }
    id = next_id_;
  }
  // Skip ids that a dropped keyspace used (a counter lost with an old meta record, say).
  const auto dropped = engine_->DroppedKeyspaces();
  while (dropped.contains(id)) ++id;
  KeyspaceDef def = spec;
  def.id = id;
  def.created_at_ms = now_ms;
  if (Status s = Persist(def, id + 1); !s.ok()) return s;
  std::lock_guard lock(mu_);
  next_id_ = id + 1;
  keyspaces_.emplace(def.name, def);
  return def;
}

Status Schema::Drop(std::string_view name, bool if_exists) {
  if (name == kDefaultKeyspace) {
    return Status::InvalidArgument("the default keyspace cannot be dropped");
  }
  std::lock_guard change(change_mu_);
  std::optional<KeyspaceDef> def = Find(name);
  if (!def) {
    if (if_exists) return Status::Ok();
    return Status::NotFound(fmt::format("keyspace '{}' does not exist", name));
  }
  {
    // Requests stop finding it now; the data goes with the write below.
    std::lock_guard lock(mu_);
    keyspaces_.erase(keyspaces_.find(name));
  }
  std::promise<Status> done;
  storage::WriteRequest request;
  request.raw.push_back(
      {storage::Family::kMeta, fmt::format("{}{}", kKeyspacePrefix, name), std::nullopt});
  request.drop = storage::WriteRequest::Drop{.keyspace = def->id, .partitions = partitions_};
  engine_->Write(std::move(request),
                 [&done](Status s, std::vector<storage::WriteOutcome>) { done.set_value(s); });
  Status s = done.get_future().get();
  if (!s.ok()) {
    std::lock_guard lock(mu_);
    keyspaces_.emplace(def->name, *def);  // not dropped after all
  }
  return s;
}

}  // namespace cairn::cluster
