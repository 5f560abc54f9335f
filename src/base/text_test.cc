#include "base/text.h"

#include <stdexcept>

#include <gtest/gtest.h>

namespace cairn::base {
namespace {

TEST(TextTest, Utf8AcceptsTextAndRejectsMalformedSequences) {
  EXPECT_TRUE(IsUtf8(""));
  EXPECT_TRUE(IsUtf8("plain ascii"));
  EXPECT_TRUE(IsUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));  // é € 😀
  EXPECT_FALSE(IsUtf8("\xff"));
  EXPECT_FALSE(IsUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsUtf8("\xc3\x28"));          // bad continuation
  EXPECT_FALSE(IsUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsUtf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(IsUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_TRUE(IsUtf8(std::string("a\0b", 3)));
}

TEST(TextTest, Base64PadsLikeRfc4648) {
  EXPECT_EQ(Base64(""), "");
  EXPECT_EQ(Base64("f"), "Zg==");
  EXPECT_EQ(Base64("fo"), "Zm8=");
  EXPECT_EQ(Base64("foo"), "Zm9v");
  EXPECT_EQ(Base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64("\xff\xfe"), "//4=");
}

TEST(TextTest, HexRoundTripsAndRejectsBadDigits) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  EXPECT_EQ(Unhex(Hex(all)), all);
  EXPECT_EQ(Hex("k\x01"), "6b01");
  EXPECT_EQ(Unhex("6B01"), "k\x01");
  EXPECT_FALSE(Unhex("abc"));
  EXPECT_FALSE(Unhex("zz"));
  EXPECT_EQ(Unhex(""), "");
}

TEST(TextTest, ExceptionTextSaysWhatEscaped) {
  EXPECT_EQ(ExceptionText(std::make_exception_ptr(std::runtime_error("disk on fire"))),
            "disk on fire");
  EXPECT_EQ(ExceptionText(std::make_exception_ptr(42)), "unknown");
}

}  // namespace
}  // namespace cairn::base
