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

}  // namespace cairn::replica
