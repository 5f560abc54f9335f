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

void ToProto(const Condition& c, internode::Condition* out) { base::ConditionToProto(c, out); }

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
