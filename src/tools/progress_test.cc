#include "tools/progress.h"

#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace cairn::tools {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using namespace std::chrono_literals;

// A ProgressLine on a fake clock that writes into `out`.
struct Fixture {
  ProgressLine::Clock::time_point now{std::chrono::hours(1)};
  std::string out;
  std::vector<std::string> writes;

  ProgressLine::Options Options(ProgressLine::Mode mode) {
    ProgressLine::Options o;
    o.label = "loading";
    o.unit = "records";
    o.mode = mode;
    o.width = 200;
    o.now = [this] { return now; };
    o.write = [this](std::string_view text) {
      out += text;
      writes.emplace_back(text);
    };
    return o;
  }
};

TEST(ProgressLineTest, ATerminalLineIsRedrawnInPlaceAtMostEveryInterval) {
  Fixture f;
  auto o = f.Options(ProgressLine::Mode::kTerminal);
  o.total = 100'000;
  ProgressLine line(o);
  f.now += 1s;
  line.Add(10'000, 10 << 20);
  ASSERT_EQ(f.writes.size(), 1u);
  EXPECT_THAT(f.writes[0], StartsWith("\rloading  10,000/100,000 records  10.0 MiB (10%)"));
  EXPECT_THAT(f.writes[0], EndsWith("\x1b[K"));  // erases what a longer line left

  f.now += 50ms;
  line.Add(500);  // too soon to redraw
  EXPECT_EQ(f.writes.size(), 1u);

  f.now += 950ms;
  line.Add(9'500, 10 << 20);  // 20,000 records in 2 s
  ASSERT_EQ(f.writes.size(), 2u);
  EXPECT_THAT(f.writes[1], HasSubstr("20,000/100,000 records"));
  EXPECT_THAT(f.writes[1], HasSubstr("10,000 records/s"));
  EXPECT_THAT(f.writes[1], HasSubstr("10.0 MiB/s"));
  EXPECT_THAT(f.writes[1], HasSubstr("ETA 8.0 s"));  // 80,000 to go at 10,000/s

  f.now += 8s;
  line.Set(100'000, 100 << 20);
  line.Finish();
  EXPECT_THAT(f.writes.back(), HasSubstr("100,000/100,000 records  100.0 MiB (100%)"));
  EXPECT_THAT(f.writes.back(), HasSubstr("done in 10 s"));
  EXPECT_THAT(f.writes.back(), EndsWith("\n"));  // the finished line stays
  const size_t count = f.writes.size();
  line.Finish();
  line.Add(1);
  EXPECT_EQ(f.writes.size(), count);  // nothing after the end
}

TEST(ProgressLineTest, TheRateFollowsTheRecentPaceAndAStallShows) {
  Fixture f;
  auto o = f.Options(ProgressLine::Mode::kTerminal);
  o.total = 1'000'000;
  ProgressLine line(o);
  for (int i = 0; i < 10; ++i) {
    f.now += 1s;
    line.Add(10'000);
  }
  EXPECT_THAT(f.writes.back(), HasSubstr("  10,000 records/s"));
  for (int i = 0; i < 10; ++i) {  // stalled: no progress for 10 s
    f.now += 1s;
    line.Add(0);
  }
  EXPECT_THAT(f.writes.back(), HasSubstr("  0 records/s"));
  EXPECT_THAT(f.writes.back(), Not(HasSubstr("ETA")));  // unknown while nothing moves
}

TEST(ProgressLineTest, WithoutATotalThereIsNoPercentageNorETA) {
  Fixture f;
  ProgressLine line(f.Options(ProgressLine::Mode::kTerminal));
  f.now += 2s;
  line.Add(42);
  EXPECT_EQ(f.writes.at(0), "\rloading  42 records  21 records/s\x1b[K");
}

TEST(ProgressLineTest, ALineNeverWrapsTheTerminal) {
  Fixture f;
  auto o = f.Options(ProgressLine::Mode::kTerminal);
  o.width = 30;
  o.total = 100;
  ProgressLine line(o);
  f.now += 1s;
  line.Add(1);
  EXPECT_EQ(f.writes.at(0), "\rloading  1/100 records (1%)\x1b[K");  // cut at 29 columns
}

TEST(ProgressLineTest, ClearErasesTheLineForOtherOutputAndTheNextStepRedraws) {
  Fixture f;
  ProgressLine line(f.Options(ProgressLine::Mode::kTerminal));
  f.now += 1s;
  line.Add(1);
  line.Clear();
  EXPECT_EQ(f.writes.back(), "\r\x1b[K");
  line.Add(1);  // at once, not after the interval
  EXPECT_THAT(f.writes.back(), HasSubstr("loading  2 records"));
}

TEST(ProgressLineTest, JsonLinesComeAtMostOncePerIntervalAndOnceAtTheEnd) {
  Fixture f;
  auto o = f.Options(ProgressLine::Mode::kJson);
  o.total = 300;
  ProgressLine line(o);
  f.now += 200ms;
  line.Add(10);  // before the first interval: nothing
  EXPECT_TRUE(f.writes.empty());
  f.now += 1s;
  line.Add(90, 4096);
  f.now += 100ms;
  line.Add(100);
  line.Finish();
  ASSERT_EQ(f.writes.size(), 2u);
  for (const std::string& w : f.writes) ASSERT_THAT(w, EndsWith("\n"));
  auto first = nlohmann::json::parse(f.writes[0]);
  EXPECT_EQ(first["progress"], "loading");
  EXPECT_EQ(first["unit"], "records");
  EXPECT_EQ(first["done"], 100);
  EXPECT_EQ(first["total"], 300);
  EXPECT_EQ(first["bytes"], 4096);
  EXPECT_EQ(first["finished"], false);
  EXPECT_TRUE(first.contains("eta_s"));
  auto last = nlohmann::json::parse(f.writes[1]);
  EXPECT_EQ(last["done"], 200);
  EXPECT_EQ(last["finished"], true);
  EXPECT_DOUBLE_EQ(last["elapsed_s"].get<double>(), 1.3);
  EXPECT_FALSE(last.contains("eta_s"));
}

TEST(ProgressLineTest, QuietWritesNothing) {
  Fixture f;
  ProgressLine line(f.Options(ProgressLine::Mode::kQuiet));
  f.now += 1s;
  line.Add(5);
  line.Finish();
  EXPECT_TRUE(f.out.empty());
  EXPECT_FALSE(line.visible());
}

TEST(ProgressLineTest, AutoIsQuietWhereTheOutputIsNotATerminal) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  {
    ProgressLine::Options o;
    o.mode = ProgressLine::Mode::kAuto;
    o.fd = fds[1];
    ProgressLine line(o);
    EXPECT_EQ(line.mode(), ProgressLine::Mode::kQuiet);
    line.Add(1);
  }
  ::close(fds[1]);
  char c;
  EXPECT_EQ(::read(fds[0], &c, 1), 0);  // nothing was written into the pipe
  ::close(fds[0]);
}

TEST(ProgressLineTest, FiguresReadAsPeopleWriteThem) {
  EXPECT_EQ(ProgressLine::FormatCount(0), "0");
  EXPECT_EQ(ProgressLine::FormatCount(999), "999");
  EXPECT_EQ(ProgressLine::FormatCount(1000), "1,000");
  EXPECT_EQ(ProgressLine::FormatCount(1234567), "1,234,567");
  EXPECT_EQ(ProgressLine::FormatBytes(512), "512 B");
  EXPECT_EQ(ProgressLine::FormatBytes(43253760), "41.2 MiB");
  EXPECT_EQ(ProgressLine::FormatDuration(7.44), "7.4 s");
  EXPECT_EQ(ProgressLine::FormatDuration(42), "42 s");
  EXPECT_EQ(ProgressLine::FormatDuration(200), "3 min 20 s");
  EXPECT_EQ(ProgressLine::FormatDuration(7500), "2 h 05 min");
}

}  // namespace
}  // namespace cairn::tools
