#include "cairn/status.h"

#include <gtest/gtest.h>

#include "cairn/types.h"

namespace cairn {
namespace {

TEST(StatusTest, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, TimeoutCarriesAcks) {
  Status s = Status::Timeout("write timed out", 1);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kTimeout);
  EXPECT_EQ(s.acks(), 1u);
  EXPECT_EQ(s.ToString(), "TIMEOUT: write timed out (1 ack)");
  EXPECT_EQ(Status::Timeout("x", 2).ToString(), "TIMEOUT: x (2 acks)");
}

TEST(StatusTest, CodeNames) {
  EXPECT_EQ(CodeName(Code::kTooLarge), "TOO_LARGE");
  EXPECT_EQ(CodeName(Code::kUnavailable), "UNAVAILABLE");
  EXPECT_EQ(Status::InvalidArgument("bad key").ToString(), "INVALID_ARGUMENT: bad key");
}

TEST(ResultTest, HoldsValueOrError) {
  Result<int> good(7);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  EXPECT_TRUE(good.status().ok());

  Result<int> bad(Status::NotFound("nope"));
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kNotFound);
}

TEST(VersionTest, RoundTripsThroughText) {
  Version v{116027195034353664ull, 7};
  EXPECT_EQ(v.ToString(), "116027195034353664:7");
  auto parsed = Version::Parse(v.ToString());
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(*parsed, v);
}

TEST(VersionTest, RejectsMalformedText) {
  for (const char* bad :
       {"", ":", "1:", ":1", "1", "1:2:3", "x:1", "1:y", "-1:2", "1 :2", "1:99999999999"}) {
    EXPECT_FALSE(Version::Parse(bad).has_value()) << bad;
  }
}

TEST(VersionTest, OrdersByTimestampThenNode) {
  EXPECT_LT((Version{1, 9}), (Version{2, 1}));
  EXPECT_LT((Version{2, 1}), (Version{2, 2}));
  EXPECT_TRUE(Version{}.IsZero());
  EXPECT_LT(Version{}, (Version{0, 1}));
  EXPECT_EQ((Version{uint64_t{5} << 16 | 3, 1}).Millis(), 5u);
}

TEST(ConsistencyTest, ParsesNamesInAnyCase) {
  EXPECT_EQ(ParseConsistency("quorum"), Consistency::kQuorum);
  EXPECT_EQ(ParseConsistency("LOCAL_QUORUM"), Consistency::kLocalQuorum);
  EXPECT_EQ(ParseConsistency("local-serial"), Consistency::kLocalSerial);
  EXPECT_EQ(ParseConsistency("Each_Quorum"), Consistency::kEachQuorum);
  EXPECT_FALSE(ParseConsistency("most").has_value());
  EXPECT_EQ(ConsistencyName(Consistency::kAny), "ANY");
}

}  // namespace
}  // namespace cairn
