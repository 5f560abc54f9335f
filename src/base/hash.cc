#include "base/hash.h"

#include <xxhash.h>

namespace cairn::base {
namespace {

// The hash tag of `key` if it has a non-empty one.
std::optional<std::string_view> HashTag(std::string_view key) {
  const size_t open = key.find('{');
  if (open == std::string_view::npos) return std::nullopt;
  const size_t close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return std::nullopt;
  return key.substr(open + 1, close - open - 1);
}

}  // namespace

std::string_view PartitionKey(std::string_view key) { return HashTag(key).value_or(key); }

std::optional<std::string_view> PrefixPartitionKey(std::string_view prefix) {
  // A key that starts with `prefix` has its first '{' where the prefix has it, and the first '}'
  // after that too, when both are inside the prefix: the tag is fixed by the prefix alone. An
  // empty tag "{}" is fixed as well, but then the whole key is hashed: not one partition.
  return HashTag(prefix);
}

uint64_t Hash64(std::string_view bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

uint64_t Token(std::string_view key) { return Hash64(PartitionKey(key)); }

}  // namespace cairn::base
