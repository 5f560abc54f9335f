#include "storage/record_cache.h"

#include <gtest/gtest.h>

namespace cairn::storage {
namespace {

TEST(RecordCacheTest, AnswersWhatWasPutIncludingAbsence) {
  RecordCache cache(1 << 20);
  EXPECT_EQ(cache.Find("a"), nullptr);
  cache.Put("a", std::string("one"));
  cache.Put("b", std::nullopt);  // known to have no record
  const std::optional<std::string>* a = cache.Find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(*a, std::optional<std::string>("one"));
  const std::optional<std::string>* b = cache.Find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_FALSE(b->has_value());
  cache.Put("a", std::string("two"));
  EXPECT_EQ(*cache.Find("a"), std::optional<std::string>("two"));
  EXPECT_EQ(cache.entries(), 2u);
  EXPECT_EQ(cache.hits(), 3u);
  EXPECT_EQ(cache.misses(), 1u);
  cache.Clear();
  EXPECT_EQ(cache.Find("a"), nullptr);
  EXPECT_EQ(cache.entries(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
}

TEST(RecordCacheTest, EvictsTheLeastRecentlyUsedBeyondItsCapacity) {
  // Room for about three entries of this size (key + record + overhead).
  const std::string record(100, 'x');
  RecordCache cache(3 * (1 + record.size() + 96) + 10);
  cache.Put("a", record);
  cache.Put("b", record);
  cache.Put("c", record);
  ASSERT_NE(cache.Find("a"), nullptr);  // a is now the most recently used
  cache.Put("d", record);               // evicts b
  EXPECT_EQ(cache.Find("b"), nullptr);
  EXPECT_NE(cache.Find("a"), nullptr);
  EXPECT_NE(cache.Find("c"), nullptr);
  EXPECT_NE(cache.Find("d"), nullptr);
  EXPECT_EQ(cache.entries(), 3u);
  EXPECT_LE(cache.bytes(), 3 * (1 + record.size() + 96) + 10);
  // A record that grows is accounted for too.
  cache.Put("a", std::string(1000, 'y'));
  EXPECT_LE(cache.bytes(), 3 * (1 + record.size() + 96) + 10);
}

TEST(RecordCacheTest, ZeroCapacityKeepsNothing) {
  RecordCache cache(0);
  cache.Put("a", std::string("one"));
  EXPECT_EQ(cache.Find("a"), nullptr);
  EXPECT_EQ(cache.entries(), 0u);
}

}  // namespace
}  // namespace cairn::storage
