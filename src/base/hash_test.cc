#include "base/hash.h"

#include <map>
#include <string>

#include <gtest/gtest.h>

namespace cairn::base {
namespace {

TEST(HashTest, HashTagSelectsPartitionKey) {
  EXPECT_EQ(PartitionKey("{user:42}:profile"), "user:42");
  EXPECT_EQ(PartitionKey("{user:42}:cart"), "user:42");
  EXPECT_EQ(Token("{user:42}:profile"), Token("{user:42}:cart"));
  EXPECT_EQ(Token("{user:42}:profile"), Hash64("user:42"));
}

TEST(HashTest, EmptyOrOpenTagHashesWholeKey) {
  EXPECT_EQ(PartitionKey("{}abc"), "{}abc");
  EXPECT_EQ(PartitionKey("abc{"), "abc{");
  EXPECT_EQ(PartitionKey("plain"), "plain");
  // Only the first '{' counts, with the first '}' after it.
  EXPECT_EQ(PartitionKey("a{b}{c}"), "b");
  EXPECT_EQ(PartitionKey("{}{x}"), "{}{x}");
}

TEST(HashTest, PrefixWithCompleteTagFixesPartition) {
  EXPECT_EQ(PrefixPartitionKey("{user:42}:"), "user:42");
  EXPECT_EQ(PrefixPartitionKey("x{t}"), "t");
  EXPECT_FALSE(PrefixPartitionKey("{user:4").has_value());
  EXPECT_FALSE(PrefixPartitionKey("user:").has_value());
  EXPECT_FALSE(PrefixPartitionKey("{}").has_value());
  EXPECT_FALSE(PrefixPartitionKey("").has_value());
}

TEST(HashTest, PartitionIsTopBitsOfToken) {
  EXPECT_EQ(PartitionOfToken(0xffffffffffffffffull, 10), 1023u);
  EXPECT_EQ(PartitionOfToken(0x0000ffffffffffffull, 10), 0u);
  EXPECT_EQ(PartitionOfToken(0x8000000000000000ull, 1), 1u);
  EXPECT_EQ(PartitionOfToken(0x8000000000000000ull, 0), 0u);
}

TEST(HashTest, KeysSpreadEvenlyOverPartitions) {
  std::map<uint32_t, int> counts;
  constexpr int kKeys = 64 * 1024;
  for (int i = 0; i < kKeys; ++i) counts[PartitionOfToken(Token("key" + std::to_string(i)), 6)]++;
  ASSERT_EQ(counts.size(), 64u);
  for (const auto& [p, n] : counts) {
    EXPECT_GT(n, 1024 * 0.8) << p;
    EXPECT_LT(n, 1024 * 1.2) << p;
  }
}

}  // namespace
}  // namespace cairn::base
