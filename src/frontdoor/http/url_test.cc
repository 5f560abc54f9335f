#include "frontdoor/http/url.h"

#include <random>

#include <gtest/gtest.h>

namespace cairn::frontdoor::http {
namespace {

TEST(HttpUrlPercentDecode, DecodesEscapesInEitherCase) {
  EXPECT_EQ(*PercentDecode("a%2Fb%2fc", false), "a/b/c");
  EXPECT_EQ(*PercentDecode("%00%FF", false), std::string("\0\xff", 2));
  EXPECT_EQ(*PercentDecode("", false), "");
}

TEST(HttpUrlPercentDecode, PlusIsASpaceOnlyInQueries) {
  EXPECT_EQ(*PercentDecode("a+b", true), "a b");
  EXPECT_EQ(*PercentDecode("a+b", false), "a+b");
  EXPECT_EQ(*PercentDecode("a%2Bb", true), "a+b");
}

TEST(HttpUrlPercentDecode, RejectsTruncatedOrNonHexEscapes) {
  for (std::string_view bad : {"%", "%4", "a%zz", "%g0", "%%41"}) {
    auto r = PercentDecode(bad, false);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find("percent-escape"), std::string::npos);
  }
}

TEST(HttpUrlPercentDecode, RejectsRawControlSpaceAndHighBytes) {
  for (std::string_view bad : {std::string_view("a b"), std::string_view("\x01"),
                               std::string_view("\x7f"), std::string_view("\xc3\xa9")}) {
    EXPECT_FALSE(PercentDecode(bad, false).ok());
  }
}

TEST(HttpUrlPercentEncode, RoundTripsEveryByte) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  const std::string encoded = PercentEncode(all);
  EXPECT_EQ(*PercentDecode(encoded, false), all);
  EXPECT_EQ(*PercentDecode(encoded, true), all);  // '+' and ' ' are always escaped
  EXPECT_EQ(PercentEncode("a-b.c_d~e f/g"), "a-b.c_d~e%20f%2Fg");
}

TEST(HttpUrlQuery, ParsesNamesValuesAndEmptyPieces) {
  auto q = Query::Parse("cl=quorum&ttl=60&&flag&prefix=a%20b+c&empty=");
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->Get("cl"), "quorum");
  EXPECT_EQ(q->Get("ttl"), "60");
  EXPECT_EQ(q->Get("flag"), "");
  EXPECT_EQ(q->Get("prefix"), "a b c");
  EXPECT_EQ(q->Get("empty"), "");
  EXPECT_FALSE(q->Get("missing"));
  EXPECT_EQ(q->params().size(), 5u);
}

TEST(HttpUrlQuery, ValueMayHoldEqualsSigns) {
  auto q = Query::Parse("cursor=a=b");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->Get("cursor"), "a=b");
}

TEST(HttpUrlQuery, RejectsRepeatedNamesEmptyNamesAndBadEscapes) {
  EXPECT_NE(Query::Parse("cl=one&cl=all").status().message().find("more than once"),
            std::string::npos);
  EXPECT_NE(Query::Parse("=x").status().message().find("no name"), std::string::npos);
  EXPECT_NE(Query::Parse("a=%zz").status().message().find("'a'"), std::string::npos);
  EXPECT_FALSE(Query::Parse("%zz=1").ok());
}

TEST(HttpUrlQuery, OnlyTheseNamesTheUnknownParameter) {
  auto q = Query::Parse("cl=one&tll=5");
  ASSERT_TRUE(q.ok());
  Status s = q->OnlyThese({"cl", "ttl"});
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("'tll'"), std::string::npos) << s.message();
  EXPECT_TRUE(q->OnlyThese({"cl", "tll"}).ok());
}

TEST(HttpUrlParseTarget, SplitsPathAndQueryAndKeepsThePathEncoded) {
  auto t = ParseTarget("/v1/kv/default/a%2Fb?cl=one");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->path, "/v1/kv/default/a%2Fb");
  EXPECT_EQ(t->query.Get("cl"), "one");
  auto bare = ParseTarget("/health");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->path, "/health");
  EXPECT_TRUE(bare->query.params().empty());
}

TEST(HttpUrlParseTarget, RejectsAbsoluteFormsFragmentsAndBadQueries) {
  EXPECT_FALSE(ParseTarget("").ok());
  EXPECT_FALSE(ParseTarget("*").ok());
  EXPECT_FALSE(ParseTarget("http://host/x").ok());
  EXPECT_FALSE(ParseTarget("/x#frag").ok());
  EXPECT_FALSE(ParseTarget("/x?a=%").ok());
}

TEST(HttpUrlParseUint, AcceptsOnlyPlainDecimalsWithinTheLimit) {
  EXPECT_EQ(ParseUint("0", 10), 0u);
  EXPECT_EQ(ParseUint("10", 10), 10u);
  EXPECT_FALSE(ParseUint("11", 10));
  EXPECT_FALSE(ParseUint("", 10));
  EXPECT_FALSE(ParseUint("-1", 10));
  EXPECT_FALSE(ParseUint("+1", 10));
  EXPECT_FALSE(ParseUint("1x", 10));
  EXPECT_FALSE(ParseUint(" 1", 10));
  EXPECT_FALSE(ParseUint("99999999999999999999999", UINT64_MAX));
  EXPECT_EQ(ParseUint("18446744073709551615", UINT64_MAX), UINT64_MAX);
}

TEST(HttpUrlParseTarget, SurvivesRandomBytes) {
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string s = "/";
    const size_t n = rng() % 40;
    for (size_t k = 0; k < n; ++k) s.push_back("%a=&?+/0Fz\x01\xff"[rng() % 13]);
    auto t = ParseTarget(s);
    if (t.ok()) {
      EXPECT_EQ(t->path.front(), '/');
    }
  }
}

}  // namespace
}  // namespace cairn::frontdoor::http
