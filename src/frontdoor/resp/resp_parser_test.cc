#include "frontdoor/resp/resp_parser.h"

#include <cstring>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cairn::frontdoor::resp {
namespace {

using ::testing::ElementsAre;
using Outcome = RequestParser::Outcome;

// Feeds `bytes` and returns every command parsed, plus the error text if parsing failed.
struct Parsed {
  std::vector<std::vector<std::string>> commands;
  std::optional<std::string> error;
};

Parsed ParseAll(RequestParser& p, std::string_view bytes, size_t chunk = 0) {
  Parsed out;
  if (chunk == 0) chunk = bytes.size() == 0 ? 1 : bytes.size();
  std::vector<std::string> argv;
  for (size_t at = 0; at < bytes.size() || at == 0; at += chunk) {
    const size_t n = std::min(chunk, bytes.size() - at);
    std::memcpy(p.Prepare(n), bytes.data() + at, n);
    p.Commit(n);
    while (true) {
      const Outcome o = p.Next(&argv);
      if (o == Outcome::kNeedMore) break;
      if (o == Outcome::kError) {
        out.error = p.error_message();
        return out;
      }
      out.commands.push_back(argv);
    }
    if (bytes.empty()) break;
  }
  return out;
}

Parsed ParseAll(std::string_view bytes, size_t chunk = 0, ParserLimits limits = {}) {
  RequestParser p(limits);
  return ParseAll(p, bytes, chunk);
}

TEST(RespParserTest, MultibulkCommandsInOneRead) {
  auto r = ParseAll("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
  ASSERT_FALSE(r.error);
  ASSERT_EQ(r.commands.size(), 2u);
  EXPECT_THAT(r.commands[0], ElementsAre("GET", "k"));
  EXPECT_THAT(r.commands[1], ElementsAre("SET", "k", ""));
}

TEST(RespParserTest, EveryByteBoundaryGivesTheSameCommands) {
  const std::string stream =
      "*3\r\n$3\r\nSET\r\n$5\r\nkey\r\n\r\n$10\r\n0123456789\r\nPING\r\n*1\r\n$4\r\nPING\r\n";
  for (size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    auto r = ParseAll(stream, chunk);
    ASSERT_FALSE(r.error) << chunk;
    ASSERT_EQ(r.commands.size(), 3u) << chunk;
    EXPECT_THAT(r.commands[0], ElementsAre("SET", "key\r\n", "0123456789"));
    EXPECT_THAT(r.commands[1], ElementsAre("PING"));
    EXPECT_THAT(r.commands[2], ElementsAre("PING"));
  }
}

TEST(RespParserTest, BinarySafeBulkStrings) {
  const std::string value("a\0b\r\nc", 6);
  auto r = ParseAll("*2\r\n$4\r\nECHO\r\n$6\r\n" + value + "\r\n");
  ASSERT_EQ(r.commands.size(), 1u);
  EXPECT_EQ(r.commands[0][1], value);
}

TEST(RespParserTest, InlineCommandsWithQuotes) {
  auto r = ParseAll("set k \"a b\\n\\x41\"\r\nget 'it\\'s'\nPING\r\n\r\n\n");
  ASSERT_FALSE(r.error);
  ASSERT_EQ(r.commands.size(), 3u);
  EXPECT_THAT(r.commands[0], ElementsAre("set", "k", "a b\nA"));
  EXPECT_THAT(r.commands[1], ElementsAre("get", "it's"));
  EXPECT_THAT(r.commands[2], ElementsAre("PING"));
}

TEST(RespParserTest, EmptyArraysAreSkipped) {
  auto r = ParseAll("*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n");
  ASSERT_FALSE(r.error);
  ASSERT_EQ(r.commands.size(), 1u);
}

TEST(RespParserTest, RedisErrorTexts) {
  EXPECT_EQ(ParseAll("*abc\r\n").error, "ERR Protocol error: invalid multibulk length");
  EXPECT_EQ(ParseAll("*99999999999\r\n").error, "ERR Protocol error: invalid multibulk length");
  EXPECT_EQ(ParseAll("*2\r\n+GET\r\n").error, "ERR Protocol error: expected '$', got '+'");
  EXPECT_EQ(ParseAll("*1\r\n$-1\r\n").error, "ERR Protocol error: invalid bulk length");
  EXPECT_EQ(ParseAll("*1\r\n$x\r\n").error, "ERR Protocol error: invalid bulk length");
  EXPECT_EQ(ParseAll("set k \"abc\r\n").error, "ERR Protocol error: unbalanced quotes in request");
  EXPECT_EQ(ParseAll("set k \"a\"b\r\n").error, "ERR Protocol error: unbalanced quotes in request");
  EXPECT_EQ(ParseAll(std::string(70 * 1024, 'a')).error,
            "ERR Protocol error: too big inline request");
  EXPECT_EQ(ParseAll("*" + std::string(70 * 1024, '1')).error,
            "ERR Protocol error: too big mbulk count string");
  EXPECT_EQ(ParseAll("*1\r\n$" + std::string(70 * 1024, '1')).error,
            "ERR Protocol error: too big bulk count string");
}

TEST(RespParserTest, OversizedBulkIsRefusedBeforeItArrives) {
  ParserLimits limits;
  limits.max_bulk_bytes = 1000;
  EXPECT_EQ(ParseAll("*2\r\n$3\r\nGET\r\n$1001\r\n", 0, limits).error,
            "ERR Protocol error: invalid bulk length");
  auto ok = ParseAll("*2\r\n$3\r\nGET\r\n$1000\r\n" + std::string(1000, 'x') + "\r\n", 7, limits);
  EXPECT_FALSE(ok.error);
  EXPECT_EQ(ok.commands.size(), 1u);
}

TEST(RespParserTest, CommandsBeforeAnErrorAreKept) {
  auto r = ParseAll("PING\r\n*1\r\n$4\r\nPING\r\n*x\r\n*1\r\n$4\r\nPING\r\n");
  EXPECT_EQ(r.commands.size(), 2u);
  EXPECT_EQ(r.error, "ERR Protocol error: invalid multibulk length");
}

TEST(RespParserTest, ErrorIsSticky) {
  RequestParser p;
  auto r = ParseAll(p, "*x\r\n");
  ASSERT_TRUE(r.error);
  std::vector<std::string> argv;
  p.Append("PING\r\n");
  EXPECT_EQ(p.Next(&argv), Outcome::kError);
}

TEST(RespParserTest, CommandOverTheQueryLimitClosesWithoutReply) {
  ParserLimits limits;
  limits.max_bulk_bytes = 100;
  limits.max_command_bytes = 250;
  auto r = ParseAll("*4\r\n$3\r\nSET\r\n$100\r\n" + std::string(100, 'a') + "\r\n$100\r\n" +
                        std::string(100, 'b') + "\r\n$100\r\n",
                    0, limits);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(*r.error, "");
}

TEST(RespParserTest, UnauthenticatedLimits) {
  RequestParser p;
  p.set_authenticated(false);
  EXPECT_EQ(ParseAll(p, "*11\r\n").error, "ERR Protocol error: unauthenticated multibulk length");
  RequestParser q;
  q.set_authenticated(false);
  EXPECT_EQ(ParseAll(q, "*2\r\n$4\r\nAUTH\r\n$16385\r\n").error,
            "ERR Protocol error: unauthenticated bulk length");
}

TEST(RespParserTest, ParseInt64IsStrict) {
  EXPECT_EQ(ParseInt64("0"), 0);
  EXPECT_EQ(ParseInt64("-12"), -12);
  EXPECT_EQ(ParseInt64("9223372036854775807"), INT64_MAX);
  EXPECT_EQ(ParseInt64("-9223372036854775808"), INT64_MIN);
  EXPECT_FALSE(ParseInt64("9223372036854775808"));
  EXPECT_FALSE(ParseInt64("01"));
  EXPECT_FALSE(ParseInt64("+1"));
  EXPECT_FALSE(ParseInt64(" 1"));
  EXPECT_FALSE(ParseInt64("-"));
  EXPECT_FALSE(ParseInt64("-0"));
  EXPECT_FALSE(ParseInt64(""));
  EXPECT_FALSE(ParseInt64("1.5"));
}

TEST(RespParserTest, SplitArgs) {
  EXPECT_THAT(*SplitArgs("  a  b\tc "), ElementsAre("a", "b", "c"));
  EXPECT_THAT(*SplitArgs("\"\""), ElementsAre(""));
  EXPECT_THAT(*SplitArgs("'a\"b'"), ElementsAre("a\"b"));
  EXPECT_TRUE(SplitArgs("")->empty());
  EXPECT_FALSE(SplitArgs("'abc"));
}

}  // namespace
}  // namespace cairn::frontdoor::resp
