#include "cluster/split_counters.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "base/hash.h"

namespace cairn::cluster {
namespace {

using internode::SplitPhase;
using internode::TopologyState;

// Fold marks and frozen marks start with a NUL byte, which no number holds.
constexpr std::string_view kFoldedMark{"\0folded:", 8};
constexpr std::string_view kFrozenMark{"\0frozen:", 8};

// Salts tried per sub-counter for a partition of its own before one is shared.
constexpr uint32_t kMaxSalts = 64;

std::string PartKey(std::string_view key, uint64_t key_hash, uint32_t index, uint32_t salt) {
  // The hash tag comes first, so the sub-counter's partition depends on it alone.
  return fmt::format("{}{}.{}.{:016x}}}{}", kSplitPartPrefix, index, salt, key_hash, key);
}

uint32_t PartitionOf(std::string_view key, uint32_t partition_bits) {
  return base::PartitionOfToken(base::Token(key), partition_bits);
}

TopologyState Next(const TopologyState& s) {
  TopologyState next = s;
  next.set_epoch(s.epoch() + 1);
  return next;
}

}  // namespace

std::string SplitCounterId(std::string_view keyspace, std::string_view key) {
  std::string out;
  out.reserve(keyspace.size() + 1 + key.size());
  out.append(keyspace);
  out.push_back('\0');
  out.append(key);
  return out;
}

std::vector<std::string> SplitPartKeys(std::string_view key, uint32_t shards,
                                       uint32_t partition_bits) {
  const uint64_t key_hash = base::Hash64(key);
  std::set<uint32_t> taken{PartitionOf(key, partition_bits)};
  std::vector<std::string> out;
  out.reserve(shards);
  for (uint32_t i = 0; i < shards; ++i) {
    std::string chosen = PartKey(key, key_hash, i, 0);
    for (uint32_t salt = 0; salt < kMaxSalts; ++salt) {
      std::string candidate = PartKey(key, key_hash, i, salt);
      if (!taken.contains(PartitionOf(candidate, partition_bits))) {
        chosen = std::move(candidate);
        break;
      }
    }
    taken.insert(PartitionOf(chosen, partition_bits));
    out.push_back(std::move(chosen));
  }
  return out;
}

std::shared_ptr<const SplitCounters> SplitCounters::Of(const TopologyState& state) {
  if (state.split_counters().empty()) return nullptr;
  auto out = std::make_shared<SplitCounters>();
  for (const internode::SplitCounterRecord& r : state.split_counters()) {
    out->by_key_[SplitCounterId(r.keyspace(), r.key())] =
        SplitEntry{r.shards(), r.phase(), r.since_epoch()};
  }
  return out;
}

const SplitEntry* SplitCounters::Find(std::string_view keyspace, std::string_view key) const {
  auto it = by_key_.find(SplitCounterId(keyspace, key));
  return it == by_key_.end() ? nullptr : &it->second;
}

std::optional<SplitEntry> FindSplit(const TopologyState& state, std::string_view keyspace,
                                    std::string_view key) {
  for (const internode::SplitCounterRecord& r : state.split_counters()) {
    if (r.keyspace() == keyspace && r.key() == key) {
      return SplitEntry{r.shards(), r.phase(), r.since_epoch()};
    }
  }
  return std::nullopt;
}

Result<std::optional<TopologyState>> PlanSplit(const TopologyState& state,
                                               std::string_view keyspace, std::string_view key,
                                               uint32_t shards) {
  if (shards < kMinSplitShards || shards > kMaxSplitShards) {
    return Status::InvalidArgument(
        fmt::format("a counter splits into {} to {} sub-counters, not {}", kMinSplitShards,
                    kMaxSplitShards, shards));
  }
  if (IsSplitPartKey(key)) {
    return Status::InvalidArgument("a sub-counter of a split counter cannot be split itself");
  }
  if (auto entry = FindSplit(state, keyspace, key)) {
    if (entry->phase == internode::SPLIT_ACTIVE && entry->shards == shards) {
      return std::optional<TopologyState>();
    }
    if (entry->phase == internode::SPLIT_ACTIVE) {
      return Status::FailedPrecondition(
          fmt::format("the counter is already split into {}; merge it first to split it into {}",
                      entry->shards, shards));
    }
    return Status::FailedPrecondition(
        "the counter is being merged; run the merge again to finish it, then split it");
  }
  if (state.has_transition()) {
    return Status::FailedPrecondition(
        "a node operation is moving partitions; split the counter once it is done");
  }
  if (static_cast<size_t>(state.split_counters_size()) >= kMaxSplitCounters) {
    return Status::FailedPrecondition(
        fmt::format("the cluster has {} split counters, the most it keeps; merge some first",
                    kMaxSplitCounters));
  }
  TopologyState next = Next(state);
  internode::SplitCounterRecord* r = next.add_split_counters();
  r->set_keyspace(std::string(keyspace));
  r->set_key(std::string(key));
  r->set_shards(shards);
  r->set_phase(internode::SPLIT_ACTIVE);
  r->set_since_epoch(next.epoch());
  return std::optional(std::move(next));
}

Result<std::optional<TopologyState>> PlanSplitPhase(const TopologyState& state,
                                                    std::string_view keyspace, std::string_view key,
                                                    SplitPhase from, SplitPhase to) {
  TopologyState next = Next(state);
  auto* list = next.mutable_split_counters();
  for (int i = 0; i < list->size(); ++i) {
    internode::SplitCounterRecord& r = list->at(i);
    if (r.keyspace() != keyspace || r.key() != key) continue;
    if (r.phase() != from) {
      if (r.phase() > from) return std::optional<TopologyState>();  // already done
      return Status::FailedPrecondition(fmt::format("the split counter is at phase {}, not {}",
                                                    SplitPhase_Name(r.phase()),
                                                    SplitPhase_Name(from)));
    }
    if (to == internode::SPLIT_PHASE_UNSPECIFIED) {
      list->DeleteSubrange(i, 1);
    } else {
      r.set_phase(to);
      r.set_since_epoch(next.epoch());
    }
    return std::optional(std::move(next));
  }
  if (from != internode::SPLIT_ACTIVE) return std::optional<TopologyState>();  // removed: done
  return Status::NotFound("the key is not a split counter");
}

TopologyState WithoutSplitsOf(TopologyState state, std::string_view keyspace) {
  auto* list = state.mutable_split_counters();
  for (int i = list->size() - 1; i >= 0; --i) {
    if (list->at(i).keyspace() == keyspace) list->DeleteSubrange(i, 1);
  }
  return state;
}

FoldedBase ParseFoldedBase(std::string_view stored) {
  FoldedBase out;
  const size_t mark = stored.find(kFoldedMark);
  if (mark == std::string_view::npos) {
    out.number = std::string(stored);
    return out;
  }
  out.number = std::string(stored.substr(0, mark));
  const std::string_view bits = stored.substr(mark + kFoldedMark.size());
  out.folded = std::strtoull(std::string(bits).c_str(), nullptr, 16);
  return out;
}

std::string FormatFoldedBase(const FoldedBase& base) {
  if (base.folded == 0) return base.number;
  return fmt::format("{}{}{:x}", base.number, kFoldedMark, base.folded);
}

std::string FrozenPart(std::string_view number) {
  std::string out(kFrozenMark);
  out.append(number);
  return out;
}

std::optional<std::string_view> FrozenNumber(std::string_view stored) {
  if (!stored.starts_with(kFrozenMark)) return std::nullopt;
  return stored.substr(kFrozenMark.size());
}

}  // namespace cairn::cluster
