#include "base/counter.h"

#include <gtest/gtest.h>

namespace cairn::base {
namespace {

CounterDelta By(int64_t n) {
  CounterDelta d;
  d.by = n;
  return d;
}

CounterDelta ByFloat(long double n) {
  CounterDelta d;
  d.is_float = true;
  d.by_float = n;
  return d;
}

TEST(CounterTest, IntegerIncrementsFollowRedis) {
  std::string out;
  EXPECT_EQ(AddToCounter(std::nullopt, By(5), &out), CounterRefusal::kNone);
  EXPECT_EQ(out, "5");
  EXPECT_EQ(AddToCounter("-3", By(1), &out), CounterRefusal::kNone);
  EXPECT_EQ(out, "-2");
  EXPECT_EQ(AddToCounter("1.5", By(1), &out), CounterRefusal::kNotInteger);
  EXPECT_EQ(AddToCounter(" 1", By(1), &out), CounterRefusal::kNotInteger);
  EXPECT_EQ(AddToCounter("9223372036854775807", By(1), &out), CounterRefusal::kOverflow);
  EXPECT_EQ(AddToCounter("-9223372036854775808", By(-1), &out), CounterRefusal::kOverflow);
  EXPECT_EQ(CounterRefusalText(CounterRefusal::kNotInteger),
            "ERR value is not an integer or out of range");
}

TEST(CounterTest, FloatIncrementsFollowRedis) {
  std::string out;
  EXPECT_EQ(AddToCounter("10", ByFloat(0.5L), &out), CounterRefusal::kNone);
  EXPECT_EQ(out, "10.5");
  EXPECT_EQ(AddToCounter("abc", ByFloat(1), &out), CounterRefusal::kNotFloat);
  EXPECT_EQ(AddToCounter(std::nullopt, ByFloat(1e308L), &out), CounterRefusal::kNone);
  // The full decimal expansion, as Redis, never an exponent.
  EXPECT_GE(out.size(), 308u);
  EXPECT_EQ(out.find_first_not_of("0123456789"), std::string::npos) << out;
  EXPECT_FALSE(ParseLongDouble("nan").has_value());
  EXPECT_FALSE(ParseLongDouble("1e99999").has_value());
}

TEST(CounterTest, SumsStayIntegersUntilADecimalJoins) {
  std::string out;
  EXPECT_EQ(SumCounters({"1", "2", "-4"}, &out), CounterRefusal::kNone);
  EXPECT_EQ(out, "-1");
  EXPECT_EQ(SumCounters({}, &out), CounterRefusal::kNone);
  EXPECT_EQ(out, "0");
  EXPECT_EQ(SumCounters({"1", "0.25"}, &out), CounterRefusal::kNone);
  EXPECT_EQ(out, "1.25");
  EXPECT_EQ(SumCounters({"9223372036854775807", "1"}, &out), CounterRefusal::kOverflow);
  EXPECT_EQ(SumCounters({"1", "x"}, &out), CounterRefusal::kNotFloat);
}

}  // namespace
}  // namespace cairn::base
