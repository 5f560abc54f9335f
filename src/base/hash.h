// Hashing of keys to tokens and partitions (ARCHITECTURE.md section 3).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace cairn::base {

// The part of `key` that decides its partition: the bytes inside the first `{...}` when that
// hash tag is non-empty (the Redis Cluster convention), else the whole key. So
// "{user:42}:profile" and "{user:42}:cart" share a partition.
std::string_view PartitionKey(std::string_view key);

// When every key that starts with `prefix` has the same partition key, returns it (the prefix
// holds a complete non-empty hash tag); otherwise nullopt (the keys spread over all partitions).
std::optional<std::string_view> PrefixPartitionKey(std::string_view prefix);

// xxh3-64 of the key's partition key.
uint64_t Token(std::string_view key);

// The partition of a token when there are 2^partition_bits partitions: its top bits.
inline uint32_t PartitionOfToken(uint64_t token, uint32_t partition_bits) {
  return partition_bits == 0 ? 0 : static_cast<uint32_t>(token >> (64 - partition_bits));
}

// 64-bit xxh3 of arbitrary bytes.
uint64_t Hash64(std::string_view bytes);

}  // namespace cairn::base
