// The lost-write checker: after a fault run, is every write the cluster acknowledged at QUORUM
// or above still there?
//
// The fault tests record the writes that were acknowledged (at a level that promises
// durability: QUORUM, ALL, ...), let the cluster settle, and read every key back. A key must
// then hold the newest acknowledged write to it, or something newer: a write whose
// acknowledgement was lost (timeout) may legitimately have landed on top. The checker cannot
// know about such writes unless the final read carries a version, so for keys written more than
// once, record the final versions; for unique-key workloads (each key written once) values
// suffice.
//
// Thread safety: pure functions.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tests/linearizability/history.h"

namespace cairn::checkers {

// Orders the writes of one key: Cairn's Version as {hlc, node}, or a workload's own sequence
// number as {seq, 0}. Greater is newer.
struct WriteStamp {
  uint64_t major = 0;
  uint64_t minor = 0;
  friend auto operator<=>(const WriteStamp&, const WriteStamp&) = default;
};

// A write the cluster acknowledged. `value` nullopt is an acknowledged delete.
struct AckedWrite {
  std::string key;
  Value value;
  WriteStamp stamp;
};

// What the final read found for a key. Keys missing from a FinalState were read as absent.
struct FinalRecord {
  Value value;
  // The version the read returned, when it returned one (absent keys usually have none).
  std::optional<WriteStamp> stamp;
};
using FinalState = std::map<std::string, FinalRecord>;

struct LostWrite {
  enum class Kind : uint8_t {
    kMissing,       // the key is absent, though the write stored a value
    kOtherValue,    // the key holds another value (or is present though the write deleted it)
    kOlderVersion,  // the key's version is older than the acknowledged write's
  };
  AckedWrite write;   // the newest acknowledged write to the key
  FinalRecord found;  // what the final read returned
  Kind kind = Kind::kMissing;
};

// Returns, in key order, the keys whose newest acknowledged write is missing from `final_state`.
// Per key, only the newest acknowledged write (greatest stamp; the first of equals in `acked`)
// is checked: it supersedes the older ones. It counts as present when
//   - the final record has a stamp: the stamp is newer, or equal with the same value;
//   - the final record has no stamp: the value is the same (absent for a delete).
std::vector<LostWrite> FindLostWrites(const std::vector<AckedWrite>& acked,
                                      const FinalState& final_state);

// A one-line description, e.g.
// `key "k7": acknowledged write of "v7" (stamp 12:3) is lost: the key is absent; read absent`.
std::string DescribeLostWrite(const LostWrite& lost);

}  // namespace cairn::checkers
