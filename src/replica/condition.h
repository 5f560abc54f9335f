// Conditions of compare-and-swap, evaluated by the Paxos proposer on the newest value a quorum
// of the key's replicas holds.
#pragma once

#include <cstdint>
#include <string>

#include "base/model.h"
#include "cairn/types.h"
#include "proto/internode.pb.h"
#include "storage/format.h"

namespace cairn::replica {

using Condition = base::CasCondition;  // plain data, in base/model.h

// Whether `condition` holds for `current` (the stored version, null when there is none) at
// `now_ms`. Tombstones and expired values count as absent.
bool ConditionHolds(const Condition& condition, const storage::StoredValue* current,
                    uint64_t now_ms);

void ToProto(const Condition& condition, internode::Condition* out);
// nullopt when no condition is set.
std::optional<Condition> FromProto(const internode::Condition& proto);

}  // namespace cairn::replica
