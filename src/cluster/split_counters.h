// Split counters (docs/hot-keys.md): a hot counter's increments spread over sub-counters on
// other partitions, summed on read. Which counters are split lives in the topology state, so
// every node agrees, and each change of it is fenced (coordinator/counters.cc): a coordinator
// that plans with an older topology is refused by the replicas and plans again.
//
// The life of one counter, and why no increment is lost or counted twice:
//   ACTIVE    increments go to one sub-counter each (Paxos on that key); a read sums the key and
//             every sub-counter. The sub-counters are written as "0" before the counter becomes
//             ACTIVE, and an increment never creates one: an absent or frozen sub-counter sends
//             the increment to the key itself.
//   MERGING   increments go to the key. Each sub-counter is frozen (Paxos: "v" becomes a frozen
//             mark holding v, so a late increment planned before the fence sees the mark and goes
//             to the key instead), then folded: one Paxos write of the key adds v and records
//             that sub-counter in the key's fold marks, so a fold done twice adds once. A read
//             sums the sub-counters first, then the key, skipping those the key says are folded.
//   STRIPPING every sub-counter is folded and deleted: a read takes the key alone (its fold marks
//             ignored); the marks are removed, then the entry.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cairn/status.h"
#include "proto/internode.pb.h"

namespace cairn::cluster {

inline constexpr uint32_t kMinSplitShards = 2;
inline constexpr uint32_t kMaxSplitShards = 64;  // the fold marks are one 64-bit word
inline constexpr size_t kMaxSplitCounters = 1000;
// A keyspace's auto_split_increments_per_s, when not 0 (off).
inline constexpr uint32_t kMinAutoSplitIncrementsPerS = 10;
inline constexpr uint32_t kMaxAutoSplitIncrementsPerS = 10'000'000;

// Sub-counter keys start with these bytes; scans never show such keys.
inline constexpr std::string_view kSplitPartPrefix =
    "\xff\xfe"
    "cairn-split{";
inline bool IsSplitPartKey(std::string_view key) { return key.starts_with(kSplitPartPrefix); }

// The keys of `key`'s `shards` sub-counters: each on a partition of its own (among the
// 2^partition_bits) other than the key's, as far as the partitions allow. A pure function: every
// node computes the same keys.
std::vector<std::string> SplitPartKeys(std::string_view key, uint32_t shards,
                                       uint32_t partition_bits);

// One name for a split counter in maps: its keyspace, a NUL byte, its key.
std::string SplitCounterId(std::string_view keyspace, std::string_view key);

struct SplitEntry {
  uint32_t shards = 0;
  internode::SplitPhase phase = internode::SPLIT_PHASE_UNSPECIFIED;
  uint64_t since_epoch = 0;  // the epoch that set `phase`; acted on once the fence reaches it
};

// The split counters of one topology state, for lookups on the request path.
class SplitCounters {
 public:
  // Null when the state has none (the common case costs one pointer test per request).
  static std::shared_ptr<const SplitCounters> Of(const internode::TopologyState& state);
  const SplitEntry* Find(std::string_view keyspace, std::string_view key) const;
  size_t size() const { return by_key_.size(); }

 private:
  std::unordered_map<std::string, SplitEntry> by_key_;  // keyspace, NUL, key
};

// The entry of (keyspace, key) in `state`, if any.
std::optional<SplitEntry> FindSplit(const internode::TopologyState& state,
                                    std::string_view keyspace, std::string_view key);

// The next state with (keyspace, key) split into `shards` (ACTIVE); nullopt when it already is.
// INVALID_ARGUMENT for a shard count out of range; FAILED_PRECONDITION when it is split with
// another count or being merged, when a topology change is in progress, or when the cluster
// already has kMaxSplitCounters.
Result<std::optional<internode::TopologyState>> PlanSplit(const internode::TopologyState& state,
                                                          std::string_view keyspace,
                                                          std::string_view key, uint32_t shards);
// The next state with the entry's phase moved from `from` to `to` (SPLIT_PHASE_UNSPECIFIED
// removes it); nullopt when it is already past `from` (the change was made). NOT_FOUND when
// the counter is not split.
Result<std::optional<internode::TopologyState>> PlanSplitPhase(
    const internode::TopologyState& state, std::string_view keyspace, std::string_view key,
    internode::SplitPhase from, internode::SplitPhase to);

// `state` without the split counters of keyspace `keyspace` (dropped with it).
internode::TopologyState WithoutSplitsOf(internode::TopologyState state, std::string_view keyspace);

// A split counter's key while it is merged: its number and the sub-counters folded into it.
struct FoldedBase {
  std::string number;   // empty: absent (counts as 0)
  uint64_t folded = 0;  // bit i: sub-counter i is in `number`
};
FoldedBase ParseFoldedBase(std::string_view stored);
// The stored text: the number alone when nothing is folded.
std::string FormatFoldedBase(const FoldedBase& base);

// A frozen sub-counter: the number it held when the merge froze it.
std::string FrozenPart(std::string_view number);
std::optional<std::string_view> FrozenNumber(std::string_view stored);

}  // namespace cairn::cluster
