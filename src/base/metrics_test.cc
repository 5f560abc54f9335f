#include "base/metrics.h"

#include <cmath>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace cairn::base::metrics {
namespace {

using namespace std::chrono_literals;

TEST(MetricsNames, ValidNamesFollowThePrometheusGrammar) {
  EXPECT_TRUE(IsValidMetricName("cairn_requests_total"));
  EXPECT_TRUE(IsValidMetricName("a:b_c9"));
  EXPECT_FALSE(IsValidMetricName(""));
  EXPECT_FALSE(IsValidMetricName("9lives"));
  EXPECT_FALSE(IsValidMetricName("paxos.cas"));
  EXPECT_FALSE(IsValidMetricName("with-dash"));
  EXPECT_TRUE(IsValidLabelName("frontdoor"));
  EXPECT_FALSE(IsValidLabelName("__reserved"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
  EXPECT_FALSE(IsValidLabelName("1a"));
}

TEST(MetricsEscaping, LabelValuesAndHelpAreEscaped) {
  EXPECT_EQ(EscapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(EscapeHelp("a\\b\"c\nd"), "a\\\\b\"c\\nd");  // quotes stay in HELP
}

TEST(MetricsValues, FormatsIntegersFractionsAndSpecials) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(42), "42");
  EXPECT_EQ(FormatValue(-3), "-3");
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
}

TEST(Exposition, WritesHelpTypeAndLabelledSamples) {
  Exposition e;
  ASSERT_TRUE(e.Family("cairn_x_total", "Things\ncounted", Type::kCounter));
  e.Sample({{"a", "1"}, {"b", "q\"uote"}}, 7);
  e.Sample({}, 1);
  e.Single("cairn_y", "A gauge", Type::kGauge, 0.5);
  EXPECT_EQ(e.text(),
            "# HELP cairn_x_total Things\\ncounted\n"
            "# TYPE cairn_x_total counter\n"
            "cairn_x_total{a=\"1\",b=\"q\\\"uote\"} 7\n"
            "cairn_x_total 1\n"
            "# HELP cairn_y A gauge\n"
            "# TYPE cairn_y gauge\n"
            "cairn_y 0.5\n");
}

TEST(Exposition, RefusesInvalidAndRepeatedFamiliesAndBadLabels) {
  Exposition e;
  EXPECT_FALSE(e.Family("bad.name", "x", Type::kGauge));
  e.Sample({}, 1);  // dropped: no family is open
  EXPECT_TRUE(e.Family("ok", "x", Type::kGauge));
  e.Sample({{"bad-label", "v"}}, 1);  // dropped: the label name is invalid
  EXPECT_FALSE(e.Family("ok", "again", Type::kGauge));
  e.Sample({}, 2);  // dropped: the family was refused
  EXPECT_EQ(e.text(), "# HELP ok x\n# TYPE ok gauge\n");
}

TEST(LatencyHistogram, BucketsAreCumulativeAndEndWithInf) {
  const std::array<double, 3> bounds{0.001, 0.01, 0.1};
  LatencyHistogram h(bounds);
  h.Record(500us);  // <= 0.001
  h.Record(1ms);    // == 0.001: "le" is inclusive
  h.Record(50ms);   // <= 0.1
  h.Record(3s);     // +Inf only
  const HistogramSnapshot s = h.Snapshot();
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{2, 2, 3, 4}));
  EXPECT_EQ(s.count, 4u);
  EXPECT_NEAR(s.sum, 3.0515, 1e-9);

  Exposition e;
  ASSERT_TRUE(e.Family("lat_seconds", "l", Type::kHistogram));
  e.Histogram({{"op", "get"}}, s);
  EXPECT_EQ(e.text(),
            "# HELP lat_seconds l\n# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{op=\"get\",le=\"0.001\"} 2\n"
            "lat_seconds_bucket{op=\"get\",le=\"0.01\"} 2\n"
            "lat_seconds_bucket{op=\"get\",le=\"0.1\"} 3\n"
            "lat_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n"
            "lat_seconds_sum{op=\"get\"} 3.0515\n"
            "lat_seconds_count{op=\"get\"} 4\n");

  // A family of one series without labels, in one call.
  Exposition single;
  single.Single("wait_seconds", "w", s);
  EXPECT_EQ(single.text(),
            "# HELP wait_seconds w\n# TYPE wait_seconds histogram\n"
            "wait_seconds_bucket{le=\"0.001\"} 2\n"
            "wait_seconds_bucket{le=\"0.01\"} 2\n"
            "wait_seconds_bucket{le=\"0.1\"} 3\n"
            "wait_seconds_bucket{le=\"+Inf\"} 4\n"
            "wait_seconds_sum 3.0515\n"
            "wait_seconds_count 4\n");
}

TEST(RequestMetrics, CountsByEveryLabelAndRendersOnlyWhatHappened) {
  RequestMetrics m;
  m.Record(FrontDoor::kHttp, Operation::kGet, Consistency::kQuorum, Code::kOk, 2ms);
  m.Record(FrontDoor::kHttp, Operation::kGet, Consistency::kQuorum, Code::kOk, 3ms);
  m.Record(FrontDoor::kNative, Operation::kCas, Consistency::kSerial, Code::kConditionFailed, 1ms);
  EXPECT_EQ(m.Count(FrontDoor::kHttp, Operation::kGet, Consistency::kQuorum, Code::kOk), 2u);
  EXPECT_EQ(m.Count(FrontDoor::kHttp, Operation::kGet, Consistency::kOne, Code::kOk), 0u);
  Exposition e;
  m.Collect(e);
  const std::string& t = e.text();
  EXPECT_NE(t.find("cairn_requests_total{frontdoor=\"http\",op=\"get\",level=\"quorum\","
                   "outcome=\"ok\"} 2\n"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("cairn_requests_total{frontdoor=\"native\",op=\"cas\",level=\"serial\","
                   "outcome=\"condition_failed\"} 1\n"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("cairn_request_duration_seconds_count{frontdoor=\"http\",op=\"get\"} 2\n"),
            std::string::npos)
      << t;
  EXPECT_EQ(t.find("op=\"put\""), std::string::npos) << t;
}

TEST(ShardedCounter, AddsUpWhatEveryThreadAdded) {
  ShardedCounter c;
  EXPECT_EQ(c.value(), 0u);
  c.Add(5);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2 * static_cast<int>(kThreadSlots) + 1; ++t) {
    threads.emplace_back([&c] {
      for (int i = 0; i < 1000; ++i) c.Add();
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(c.value(), 5u + (2 * kThreadSlots + 1) * 1000);
  EXPECT_LT(ThreadSlot(), kThreadSlots);
}

// Each thread records into a shard of its own, more threads than shards share them: the totals
// and the histogram add every shard up.
TEST(RequestMetrics, RecordsFromManyThreadsAddUp) {
  RequestMetrics m;
  constexpr int kThreads = 7, kEach = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&m, t] {
      for (int i = 0; i < kEach; ++i) {
        m.Record(FrontDoor::kResp, Operation::kGet, Consistency::kDefault, Code::kOk,
                 t % 2 == 0 ? 2ms : 200ms);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(m.Count(FrontDoor::kResp, Operation::kGet, Consistency::kDefault, Code::kOk),
            uint64_t{kThreads * kEach});
  Exposition e;
  m.Collect(e);
  const std::string& t = e.text();
  // Threads 0, 2, 4 and 6 recorded 2 ms, the other three 200 ms.
  for (const std::string line :
       {"cairn_request_duration_seconds_count{frontdoor=\"resp\",op=\"get\"} 14000\n",
        "cairn_request_duration_seconds_bucket{frontdoor=\"resp\",op=\"get\",le=\"0.0025\"} "
        "8000\n",
        "cairn_request_duration_seconds_bucket{frontdoor=\"resp\",op=\"get\",le=\"+Inf\"} "
        "14000\n",
        "cairn_request_duration_seconds_sum{frontdoor=\"resp\",op=\"get\"} 1216\n",
        "cairn_requests_total{frontdoor=\"resp\",op=\"get\",level=\"default\",outcome=\"ok\"} "
        "14000\n"}) {
    EXPECT_NE(t.find(line), std::string::npos) << line << " in\n" << t;
  }
}

TEST(Registry, RendersCollectorsInOrder) {
  Registry r;
  r.Add([](Exposition& e) { e.Single("a", "first", Type::kGauge, 1); });
  r.Add([](Exposition& e) { e.Single("b", "second", Type::kCounter, 2); });
  EXPECT_EQ(r.Render(),
            "# HELP a first\n# TYPE a gauge\na 1\n# HELP b second\n# TYPE b counter\nb 2\n");
}

}  // namespace
}  // namespace cairn::base::metrics
