#include "replica/condition.h"

namespace cairn::replica {

bool ConditionHolds(const Condition& c, const storage::StoredValue* current, uint64_t now_ms) {
  const storage::StoredValue* live =
      current != nullptr && current->IsLive(now_ms) ? current : nullptr;
  switch (c.kind) {
    case Condition::Kind::kIfVersion:
      return live != nullptr && live->version == c.version;
    case Condition::Kind::kIfValue:
      return live != nullptr && live->value == c.value;
    case Condition::Kind::kIfNotExists:
      return live == nullptr;
    case Condition::Kind::kIfExists:
      return live != nullptr;
  }
  return false;
}

void ToProto(const Condition& c, internode::Condition* out) {
  switch (c.kind) {
    case Condition::Kind::kIfVersion:
      out->mutable_if_version()->set_hlc(c.version.hlc);
      out->mutable_if_version()->set_node(c.version.node);
      break;
    case Condition::Kind::kIfValue:
      out->set_if_value(c.value);
      break;
    case Condition::Kind::kIfNotExists:
      out->set_if_not_exists(true);
      break;
    case Condition::Kind::kIfExists:
      out->set_if_exists(true);
      break;
  }
}

std::optional<Condition> FromProto(const internode::Condition& p) {
  Condition c;
  switch (p.kind_case()) {
    case internode::Condition::kIfVersion:
      c.kind = Condition::Kind::kIfVersion;
      c.version = Version{p.if_version().hlc(), p.if_version().node()};
      return c;
    case internode::Condition::kIfValue:
      c.kind = Condition::Kind::kIfValue;
      c.value = p.if_value();
      return c;
    case internode::Condition::kIfNotExists:
      c.kind = Condition::Kind::kIfNotExists;
      return c;
    case internode::Condition::kIfExists:
      c.kind = Condition::Kind::kIfExists;
      return c;
    case internode::Condition::KIND_NOT_SET:
      break;
  }
  return std::nullopt;
}

}  // namespace cairn::replica
