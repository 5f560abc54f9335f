#include "bench/resp_client.h"

#include <gtest/gtest.h>

namespace cairn::bench {
namespace {

TEST(RespEncodingTest, CommandsAreArraysOfBulkStrings) {
  std::string out;
  AppendCommand(&out, {"SET", "k", "v\r\n1"});
  EXPECT_EQ(out, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\nv\r\n1\r\n");
  AppendCommand(&out, std::vector<std::string_view>{"PING"});
  EXPECT_EQ(out.substr(out.size() - 14), "*1\r\n$4\r\nPING\r\n");
  std::string empty;
  AppendCommand(&empty, {"GET", ""});
  EXPECT_EQ(empty, "*2\r\n$3\r\nGET\r\n$0\r\n\r\n");
}

TEST(RespParsingTest, ParsesEveryReplyType) {
  RespReply r;
  EXPECT_EQ(ParseReply("+OK\r\n", &r), 5u);
  EXPECT_EQ(r.type, RespReply::Type::kSimple);
  EXPECT_EQ(r.text, "OK");
  EXPECT_EQ(ParseReply("-ERR no\r\n", &r), 9u);
  EXPECT_TRUE(r.is_error());
  EXPECT_EQ(r.text, "ERR no");
  EXPECT_EQ(ParseReply(":-42\r\n", &r), 6u);
  EXPECT_EQ(r.type, RespReply::Type::kInteger);
  EXPECT_EQ(r.integer, -42);
  EXPECT_EQ(ParseReply("$4\r\na\r\nb\r\n", &r), 10u);
  EXPECT_EQ(r.type, RespReply::Type::kBulk);
  EXPECT_EQ(r.text, "a\r\nb");
  EXPECT_EQ(ParseReply("$-1\r\n", &r), 5u);
  EXPECT_EQ(r.type, RespReply::Type::kNull);
  EXPECT_EQ(ParseReply("*-1\r\n", &r), 5u);
  EXPECT_EQ(r.type, RespReply::Type::kNull);
  const std::string nested = "*2\r\n:1\r\n*2\r\n$1\r\nx\r\n$-1\r\n";
  EXPECT_EQ(ParseReply(nested + "+next\r\n", &r), nested.size());
  ASSERT_EQ(r.type, RespReply::Type::kArray);
  ASSERT_EQ(r.elements.size(), 2u);
  EXPECT_EQ(r.elements[0].integer, 1);
  ASSERT_EQ(r.elements[1].elements.size(), 2u);
  EXPECT_EQ(r.elements[1].elements[0].text, "x");
  EXPECT_EQ(r.elements[1].elements[1].type, RespReply::Type::kNull);
}

TEST(RespParsingTest, EveryPrefixOfAReplyIsIncomplete) {
  const std::string reply = "*3\r\n$5\r\nhello\r\n:7\r\n*1\r\n+OK\r\n";
  RespReply r;
  for (size_t n = 0; n < reply.size(); ++n) {
    EXPECT_EQ(ParseReply(std::string_view(reply).substr(0, n), &r), 0u) << n;
  }
  EXPECT_EQ(ParseReply(reply, &r), reply.size());
}

TEST(RespParsingTest, RejectsWhatIsNotResp) {
  RespReply r;
  EXPECT_EQ(ParseReply("hello\r\n", &r), kMalformed);
  EXPECT_EQ(ParseReply(":12x\r\n", &r), kMalformed);
  EXPECT_EQ(ParseReply("$3\r\nabcd\r\n", &r), kMalformed);
  EXPECT_EQ(ParseReply("$-5\r\n", &r), kMalformed);
  EXPECT_EQ(ParseReply(std::string(20, '*').append("1\r\n"), &r), kMalformed);
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "*1\r\n";
  EXPECT_EQ(ParseReply(deep + ":1\r\n", &r), kMalformed);
}

TEST(ClusterSlotTest, Crc16KnownVectors) {
  EXPECT_EQ(Crc16("123456789"), 0x31C3);  // the check value in the Redis Cluster spec
  EXPECT_EQ(Crc16(""), 0);
  EXPECT_EQ(KeySlot("foo"), 12182);
  EXPECT_EQ(KeySlot("123456789"), 0x31C3 & 16383);
}

TEST(ClusterSlotTest, HashTagsPickTheSlot) {
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("user1000"));
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("{user1000}.followers"));
  EXPECT_EQ(KeySlot("foo{}{bar}"), KeySlot("foo{}{bar}"));
  EXPECT_NE(KeySlot("foo{}{bar}"), KeySlot("bar"));  // an empty first tag: the whole key
  EXPECT_EQ(KeySlot("foo{{bar}}zap"), KeySlot("{bar"));
  EXPECT_EQ(KeySlot("foo{bar}{zap}"), KeySlot("bar"));
}

TEST(ClusterSlotTest, ParsesRedirections) {
  auto moved = ParseRedirect("MOVED 3999 127.0.0.1:6381");
  ASSERT_TRUE(moved);
  EXPECT_FALSE(moved->ask);
  EXPECT_EQ(moved->slot, 3999);
  EXPECT_EQ(moved->address, "127.0.0.1:6381");
  auto ask = ParseRedirect("ASK 1 10.0.0.2:7000");
  ASSERT_TRUE(ask);
  EXPECT_TRUE(ask->ask);
  EXPECT_FALSE(ParseRedirect("ERR unknown command"));
  EXPECT_FALSE(ParseRedirect("MOVED 99999 h:1"));
  EXPECT_FALSE(ParseRedirect("MOVED 12"));
}

}  // namespace
}  // namespace cairn::bench
