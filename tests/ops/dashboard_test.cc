// The Grafana dashboard (deploy/grafana/cairn-dashboard.json) queries only metrics that a live
// node exports: every cairn_* name in every query is a family in /metrics (histograms through
// their _bucket, _sum and _count series). A renamed or removed metric fails here, not on an
// operator's empty panel.
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/harness/process.h"
#include "tests/ops/http_get.h"
#include "tests/support/temp_dir.h"

namespace cairn::testing {
namespace {

using Json = nlohmann::json;

const std::string kDashboard =
    std::string(CAIRN_SOURCE_DIR) + "/deploy/grafana/cairn-dashboard.json";

// Every "expr" and templating "query" string anywhere in the dashboard.
void CollectQueries(const Json& j, std::vector<std::string>* out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if ((k == "expr" || k == "query" || k == "definition") && v.is_string()) {
        out->push_back(v.get<std::string>());
      }
      CollectQueries(v, out);
    }
  } else if (j.is_array()) {
    for (const Json& v : j) CollectQueries(v, out);
  }
}

TEST(DashboardTest, EveryMetricTheDashboardQueriesExistsInALiveNodesMetrics) {
  std::ifstream in(kDashboard);
  ASSERT_TRUE(in) << kDashboard;
  const Json dashboard = Json::parse(in, nullptr, false);
  ASSERT_FALSE(dashboard.is_discarded()) << kDashboard << " is not valid JSON";
  std::vector<std::string> queries;
  CollectQueries(dashboard, &queries);
  ASSERT_GT(queries.size(), 30u);

  TempDir dir;
  auto node = CairndProcess::Start(
      {.data_dir = dir.path().string() + "/node", .extra_args = {"--http", "127.0.0.1:0"}});
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  const std::string http = (*node)->http_address();
  // A few requests, so that the labelled request families have series too.
  ASSERT_EQ(HttpRequest(http, "PUT", "/v1/kv/default/k").status, 200);
  ASSERT_EQ(HttpGet(http, "/v1/kv/default/k").status, 200);
  HttpAnswer metrics = HttpGet(http, "/metrics");
  ASSERT_EQ(metrics.status, 200) << metrics.error;

  std::set<std::string> families;     // from # TYPE lines
  std::set<std::string> with_series;  // names that have at least one sample line
  std::istringstream lines(metrics.body);
  static const std::regex kType(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+))");
  static const std::regex kSample(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ])");
  std::map<std::string, std::string> types;
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_search(line, m, kType)) {
      families.insert(m[1]);
      types[m[1]] = m[2];
    } else if (std::regex_search(line, m, kSample)) {
      with_series.insert(m[1]);
    }
  }

  std::set<std::string> queried;
  static const std::regex kName(R"(\bcairn_[a-z0-9_]+)");
  for (const std::string& q : queries) {
    for (std::sregex_iterator it(q.begin(), q.end(), kName), end; it != end; ++it) {
      queried.insert(it->str());
    }
  }
  ASSERT_GT(queried.size(), 40u);
  // Present only where cairnd allocates with jemalloc (not in the sanitizer build).
  const std::set<std::string> jemalloc_only = {"cairn_memory_allocated_bytes",
                                               "cairn_memory_resident_bytes"};
  for (const std::string& name : queried) {
#ifndef CAIRN_WITH_JEMALLOC
    if (jemalloc_only.contains(name)) continue;
#endif
    std::string family = name;
    for (const std::string suffix : {"_bucket", "_sum", "_count"}) {
      if (name.ends_with(suffix)) {
        const std::string base = name.substr(0, name.size() - suffix.size());
        if (types.contains(base) && types[base] == "histogram") family = base;
      }
    }
    EXPECT_TRUE(families.contains(family))
        << name << " is queried by the dashboard but no node exports it";
    if (family != name) {
      EXPECT_TRUE(with_series.contains(name)) << name << ": the histogram has no such series";
    }
  }
}

TEST(DashboardTest, PanelsAreWellFormed) {
  std::ifstream in(kDashboard);
  const Json dashboard = Json::parse(in, nullptr, false);
  ASSERT_TRUE(dashboard.is_object());
  EXPECT_EQ(dashboard["uid"], "cairn-overview");
  std::set<int> ids;
  std::set<std::string> rows;
  for (const Json& panel : dashboard["panels"]) {
    EXPECT_TRUE(ids.insert(panel["id"].get<int>()).second) << "duplicate panel id " << panel["id"];
    ASSERT_TRUE(panel.contains("gridPos")) << panel.dump();
    const Json& pos = panel["gridPos"];
    EXPECT_LE(pos["x"].get<int>() + pos["w"].get<int>(), 24) << panel["title"];
    if (panel["type"] == "row") {
      rows.insert(panel["title"].get<std::string>());
      continue;
    }
    EXPECT_FALSE(panel["targets"].empty()) << panel["title"];
    for (const Json& t : panel["targets"]) {
      EXPECT_EQ(t["datasource"]["uid"], "${datasource}") << panel["title"];
    }
  }
  // The sections issue #19 asks for.
  for (const std::string section : {"Cluster overview", "Latency per node", "Replication",
                                    "Paxos (compare-and-swap, SERIAL reads)", "Storage"}) {
    EXPECT_TRUE(rows.contains(section)) << section;
  }
}

}  // namespace
}  // namespace cairn::testing
