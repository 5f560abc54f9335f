#include "storage/format.h"

#include <gtest/gtest.h>

namespace cairn::storage {
namespace {

TEST(FormatTest, DataKeyRoundTrip) {
  const std::string enc = EncodeDataKey(3, 7, std::string("k\0y", 3));
  ASSERT_EQ(enc.size(), 8u + 3u);
  auto dec = DecodeDataKey(enc);
  ASSERT_TRUE(dec.has_value());
  EXPECT_EQ(dec->partition, 3u);
  EXPECT_EQ(dec->keyspace, 7u);
  EXPECT_EQ(dec->key, std::string("k\0y", 3));
  EXPECT_EQ(KeyspaceOfDataKey(enc), 7u);
  EXPECT_FALSE(DecodeDataKey("short").has_value());
}

TEST(FormatTest, PartitionIsOneContiguousRangeOrderedByKeyspaceThenKey) {
  // Big-endian partition first: every key of partition 1 sorts before every key of partition 2,
  // whatever the keyspace or user key; within a partition, keyspace then user key.
  EXPECT_LT(EncodeDataKey(1, 0xffffffff, "\xff\xff"), EncodeDataKey(2, 0, ""));
  EXPECT_LT(EncodeDataKey(256, 9, "z"), EncodeDataKey(257, 1, "a"));
  EXPECT_LT(EncodeDataKey(5, 1, "zzz"), EncodeDataKey(5, 2, "a"));
  EXPECT_LT(EncodeDataKey(5, 1, "a"), EncodeDataKey(5, 1, "b"));
}

TEST(FormatTest, ValueRoundTrip) {
  StoredValue v{.version = {0x0123456789abcdefull, 0xfeedbeef},
                .tombstone = false,
                .expires_at_ms = 1234567,
                .value = std::string("va\0lue", 6)};
  auto dec = DecodeValue(EncodeValue(v));
  ASSERT_TRUE(dec.ok());
  EXPECT_EQ(*dec, v);

  StoredValue t{.version = {1, 2}, .tombstone = true, .expires_at_ms = 0, .value = {}};
  auto dt = DecodeValue(EncodeValue(t));
  ASSERT_TRUE(dt.ok());
  EXPECT_EQ(*dt, t);

  auto header = DecodeValueHeader(EncodeValue(v));
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->version, v.version);
  EXPECT_EQ(header->expires_at_ms, v.expires_at_ms);
  EXPECT_TRUE(header->value.empty());
}

TEST(FormatTest, CorruptValueIsAnError) {
  EXPECT_EQ(DecodeValue("").status().code(), Code::kInternal);
  EXPECT_EQ(DecodeValue("\x02" + std::string(20, 'x')).status().code(), Code::kInternal);
  std::string truncated = EncodeValue(StoredValue{.version = {1, 1}, .expires_at_ms = 99});
  truncated.resize(truncated.size() - 1);
  EXPECT_EQ(DecodeValue(truncated).status().code(), Code::kInternal);
}

TEST(FormatTest, LivenessHonoursTombstonesAndExpiry) {
  StoredValue v{.version = {1, 1}, .expires_at_ms = 100};
  EXPECT_TRUE(v.IsLive(99));
  EXPECT_FALSE(v.IsLive(100));
  v.expires_at_ms = 0;
  EXPECT_TRUE(v.IsLive(1'000'000));
  v.tombstone = true;
  EXPECT_FALSE(v.IsLive(0));
}

}  // namespace
}  // namespace cairn::storage
