// The on-disk layout of Cairn's data column family: storage keys and value headers.
//
// Storage key = partition (u32 big-endian) + keyspace id (u32 big-endian) + user key, so one
// partition is one contiguous range, and within it one keyspace is one contiguous range.
//
// Stored value = format byte (1) + flags byte + HLC (u64 BE) + node id (u32 BE)
//                [+ expiry in Unix ms (u64 BE) when the expiry flag is set] + value bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cairn/status.h"
#include "cairn/types.h"

namespace cairn::storage {

inline constexpr size_t kKeyHeaderBytes = 8;

struct DataKey {
  uint32_t partition = 0;
  uint32_t keyspace = 0;
  std::string key;

  friend bool operator==(const DataKey&, const DataKey&) = default;
};

std::string EncodeDataKey(uint32_t partition, uint32_t keyspace, std::string_view key);
inline std::string EncodeDataKey(const DataKey& k) {
  return EncodeDataKey(k.partition, k.keyspace, k.key);
}
// nullopt when `encoded` is shorter than the key header.
std::optional<DataKey> DecodeDataKey(std::string_view encoded);
// The keyspace id of an encoded key, without copying it (nullopt when malformed).
std::optional<uint32_t> KeyspaceOfDataKey(std::string_view encoded);

// A version of a key as the storage engine keeps it: a value or a tombstone.
struct StoredValue {
  Version version;
  bool tombstone = false;
  uint64_t expires_at_ms = 0;  // 0: never expires
  std::string value;

  // A value a read should return at `now_ms`: not a tombstone and not expired.
  bool IsLive(uint64_t now_ms) const {
    return !tombstone && (expires_at_ms == 0 || expires_at_ms > now_ms);
  }

  friend bool operator==(const StoredValue&, const StoredValue&) = default;
};

std::string EncodeValue(const StoredValue& v);
// INTERNAL when the bytes are not a stored value of a format this build knows.
Result<StoredValue> DecodeValue(std::string_view encoded);
// Only the header fields (version, tombstone, expiry), without copying the value bytes.
Result<StoredValue> DecodeValueHeader(std::string_view encoded);

}  // namespace cairn::storage
