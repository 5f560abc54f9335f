#include "storage/format.h"

#include <fmt/format.h>

#include "base/endian.h"

namespace cairn::storage {
namespace {

constexpr uint8_t kFormat = 1;
constexpr uint8_t kFlagTombstone = 1;
constexpr uint8_t kFlagExpiry = 2;
constexpr size_t kValueHeaderBytes = 1 + 1 + 8 + 4;

using base::GetBig32;
using base::GetBig64;
using base::PutBig32;
using base::PutBig64;

// Parses the header; returns the offset of the value bytes.
Result<size_t> ParseHeader(std::string_view in, StoredValue* out) {
  if (in.size() < kValueHeaderBytes || static_cast<uint8_t>(in[0]) != kFormat) {
    return Status::Internal(fmt::format("corrupt stored value ({} bytes, format byte {})",
                                        in.size(), in.empty() ? -1 : static_cast<uint8_t>(in[0])));
  }
  const uint8_t flags = static_cast<uint8_t>(in[1]);
  out->tombstone = flags & kFlagTombstone;
  out->version.hlc = GetBig64(in.data() + 2);
  out->version.node = GetBig32(in.data() + 10);
  size_t offset = kValueHeaderBytes;
  out->expires_at_ms = 0;
  if (flags & kFlagExpiry) {
    if (in.size() < offset + 8) return Status::Internal("corrupt stored value: truncated expiry");
    out->expires_at_ms = GetBig64(in.data() + offset);
    offset += 8;
  }
  return offset;
}

}  // namespace

std::string EncodeDataKey(uint32_t partition, uint32_t keyspace, std::string_view key) {
  std::string out;
  out.reserve(kKeyHeaderBytes + key.size());
  PutBig32(&out, partition);
  PutBig32(&out, keyspace);
  out.append(key);
  return out;
}

std::optional<DataKey> DecodeDataKey(std::string_view encoded) {
  if (encoded.size() < kKeyHeaderBytes) return std::nullopt;
  return DataKey{GetBig32(encoded.data()), GetBig32(encoded.data() + 4),
                 std::string(encoded.substr(kKeyHeaderBytes))};
}

std::optional<uint32_t> KeyspaceOfDataKey(std::string_view encoded) {
  if (encoded.size() < kKeyHeaderBytes) return std::nullopt;
  return GetBig32(encoded.data() + 4);
}

std::string EncodeValue(const StoredValue& v) {
  std::string out;
  out.reserve(kValueHeaderBytes + 8 + v.value.size());
  out.push_back(static_cast<char>(kFormat));
  out.push_back(static_cast<char>((v.tombstone ? kFlagTombstone : 0) |
                                  (v.expires_at_ms != 0 ? kFlagExpiry : 0)));
  PutBig64(&out, v.version.hlc);
  PutBig32(&out, v.version.node);
  if (v.expires_at_ms != 0) PutBig64(&out, v.expires_at_ms);
  out.append(v.value);
  return out;
}

Result<StoredValue> DecodeValue(std::string_view encoded) {
  StoredValue v;
  auto offset = ParseHeader(encoded, &v);
  if (!offset.ok()) return offset.status();
  v.value.assign(encoded.substr(*offset));
  return v;
}

Result<StoredValue> DecodeValueHeader(std::string_view encoded) {
  StoredValue v;
  auto offset = ParseHeader(encoded, &v);
  if (!offset.ok()) return offset.status();
  return v;
}

}  // namespace cairn::storage
