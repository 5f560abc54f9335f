// The data model shared by the server and the client library: versions, consistency levels,
// records and the limits on keys and values.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace cairn {

// Keys are 1 byte .. 16 KiB of arbitrary bytes.
inline constexpr size_t kMaxKeyBytes = 16 * 1024;
// Values are 0 .. 8 MiB by default; a server may be configured with another limit.
inline constexpr size_t kDefaultMaxValueBytes = 8 * 1024 * 1024;

// The version of a stored value: a hybrid-logical-clock timestamp plus the id of the node that
// assigned it. Versions are totally ordered (timestamp first, node id breaks ties); between two
// plain writes of a key the greater version wins everywhere (last writer wins).
struct Version {
  uint64_t hlc = 0;   // Unix milliseconds << 16 | logical counter
  uint32_t node = 0;  // 0 only in the zero version, which precedes every real one

  friend auto operator<=>(const Version&, const Version&) = default;

  bool IsZero() const { return hlc == 0 && node == 0; }
  // Wall-clock milliseconds since the Unix epoch at which the version was assigned.
  uint64_t Millis() const { return hlc >> 16; }
  // "<hlc>:<node>" in decimal, e.g. "116027195034353664:7". Parse() accepts exactly this form.
  std::string ToString() const;
  static std::optional<Version> Parse(std::string_view text);
};

// Per-operation consistency level. kDefault means the keyspace's default for that operation.
enum class Consistency : uint8_t {
  kDefault = 0,
  kOne = 1,
  kTwo = 2,
  kThree = 3,
  kQuorum = 4,
  kAll = 5,
  kLocalOne = 6,
  kLocalQuorum = 7,
  kEachQuorum = 8,
  kAny = 9,  // writes only
  kSerial = 10,
  kLocalSerial = 11,
};

// "ONE", "LOCAL_QUORUM", ...; ParseConsistency accepts these names in any letter case.
std::string_view ConsistencyName(Consistency level);
std::optional<Consistency> ParseConsistency(std::string_view name);

// Replicas of a keyspace per data centre. The key "*" (kEveryDc) gives the factor of every data
// centre not named: {"*": 3} is three replicas in each DC.
using ReplicationMap = std::map<std::string, uint32_t, std::less<>>;
inline constexpr std::string_view kEveryDc = "*";
inline constexpr uint32_t kMaxReplicationFactor = 15;

// Parses "3" (that many replicas in every DC) or "dc1=3,dc2=2" (per DC; others get none).
// nullopt for anything else, a factor over kMaxReplicationFactor, or no replica at all.
std::optional<ReplicationMap> ParseReplication(std::string_view text);
// The text ParseReplication reads: "3" or "dc1=3,dc2=2".
std::string ReplicationText(const ReplicationMap& replication);

// A live value as returned by reads.
struct Record {
  std::string value;
  Version version;
  uint64_t expires_at_ms = 0;  // Unix milliseconds; 0 when the value never expires

  friend bool operator==(const Record&, const Record&) = default;
};

}  // namespace cairn
