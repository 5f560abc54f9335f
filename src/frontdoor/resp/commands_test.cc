#include "frontdoor/resp/commands.h"

#include <gtest/gtest.h>

namespace cairn::frontdoor::resp {
namespace {

// Which pipelined commands may overlap depends on this classification: a plain SET (with at
// most a relative or absolute expiry) overwrites blindly; any condition makes it read first.
TEST(AccessOfTest, PlainSetIsBlindConditionalSetIsExclusive) {
  EXPECT_EQ(AccessOf("set", {"SET", "k", "v"}), Access::kBlind);
  EXPECT_EQ(AccessOf("set", {"SET", "k", "v", "EX", "10"}), Access::kBlind);
  EXPECT_EQ(AccessOf("set", {"SET", "k", "v", "pxat", "123"}), Access::kBlind);
  EXPECT_EQ(AccessOf("set", {"SET", "k", "v", "NX"}), Access::kExclusive);
  EXPECT_EQ(AccessOf("set", {"SET", "k", "v", "EX", "10", "GET"}), Access::kExclusive);
  EXPECT_EQ(AccessOf("set", {"SET", "k", "v", "KEEPTTL"}), Access::kExclusive);
  EXPECT_EQ(AccessOf("set", {"SET", "k", "v", "IFEQ", "x"}), Access::kExclusive);
  // An option value that looks like a condition is not one.
  EXPECT_EQ(AccessOf("set", {"SET", "k", "v", "EX", "NX"}), Access::kBlind);
}

TEST(AccessOfTest, OtherCommands) {
  EXPECT_EQ(AccessOf("get", {"GET", "k"}), Access::kRead);
  EXPECT_EQ(AccessOf("mget", {"MGET", "a", "b"}), Access::kRead);
  EXPECT_EQ(AccessOf("mset", {"MSET", "a", "1"}), Access::kBlind);
  EXPECT_EQ(AccessOf("incr", {"INCR", "k"}), Access::kExclusive);
  EXPECT_EQ(AccessOf("del", {"DEL", "k"}), Access::kExclusive);
  EXPECT_EQ(AccessOf("scan", {"SCAN", "0"}), Access::kGlobal);
  EXPECT_EQ(AccessOf("flushdb", {"FLUSHDB"}), Access::kGlobal);
  EXPECT_EQ(AccessOf("nosuch", {"NOSUCH"}), Access::kNone);
  EXPECT_EQ(FindDataCommand("nosuch"), nullptr);
  EXPECT_NE(FindDataCommand("incrbyfloat"), nullptr);
}

TEST(ErrorTextTest, CodesCallersBranchOn) {
  EXPECT_EQ(ErrorText(Status::InvalidArgument("bad key")), "ERR bad key");
  EXPECT_EQ(ErrorText(Status::Unavailable("2 of 3 replicas are down")),
            "UNAVAILABLE 2 of 3 replicas are down");
  EXPECT_EQ(ErrorText(Status::Timeout("late", 1)),
            "TIMEOUT late (1 acknowledged; a write may or may not have applied)");
}

}  // namespace
}  // namespace cairn::frontdoor::resp
