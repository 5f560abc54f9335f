// The HTTP front door end to end: real cairnd processes on loopback with --http, driven with curl
// (and a raw socket where curl cannot misbehave on purpose). Every status code the front door
// answers is provoked here at least once. Skipped, saying why, when curl is not installed.
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "net/connection.h"
#include "tests/harness/process.h"
#include "tests/support/options.h"
#include "tests/support/socket_read.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace cairn::testing {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using Json = nlohmann::json;
using namespace std::chrono_literals;

// curl's full path from $PATH (the harness execs without a PATH search), or "".
const std::string& CurlPath() {
  static const std::string path = [] {
    const char* env = std::getenv("PATH");
    std::string_view dirs = env != nullptr ? env : "/usr/bin:/bin";
    while (!dirs.empty()) {
      const size_t colon = dirs.find(':');
      std::string candidate = std::string(dirs.substr(0, colon)) + "/curl";
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
      if (colon == std::string_view::npos) break;
      dirs.remove_prefix(colon + 1);
    }
    return std::string();
  }();
  return path;
}

bool HaveCurl() {
  return !CurlPath().empty() && RunCommand({CurlPath(), "--version"}, "", 10s).exit_code == 0;
}

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string error;  // curl's complaint when it got no answer

  Json json() const { return Json::parse(body, nullptr, false); }
  // The "code" of a JSON error body, or "" when there is none.
  std::string code() const {
    Json j = json();
    if (!j.is_object() || !j.contains("error")) return "";
    return j["error"].value("code", "");
  }
  std::string message() const {
    Json j = json();
    if (!j.is_object() || !j.contains("error")) return "";
    return j["error"].value("message", "");
  }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

std::string Describe(const Reply& r) {
  return "status " + std::to_string(r.status) + ", body: " + r.body.substr(0, 500) +
         (r.error.empty() ? "" : ", curl: " + r.error);
}

// curl -i: parses the status line, headers and body of the last response (after any 100s).
Reply Curl(const std::string& method, const std::string& url,
           const std::vector<std::string>& extra = {}, std::optional<std::string> body = {}) {
  std::vector<std::string> argv = {CurlPath(), "-sS", "-i", "--max-time", "20", "-X", method};
  for (const auto& e : extra) argv.push_back(e);
  if (body) {
    argv.push_back("--data-binary");
    argv.push_back("@-");
    argv.push_back("-H");
    argv.push_back("Content-Type: application/octet-stream");
  }
  argv.push_back("--globoff");
  argv.push_back(url);
  CommandResult run = RunCommand(argv, body.value_or(""), 30s);
  Reply r;
  r.error = run.err;
  std::string_view out = run.out;
  while (true) {
    const size_t end = out.find("\r\n\r\n");
    if (end == std::string_view::npos || !out.starts_with("HTTP/")) return r;
    std::string_view head = out.substr(0, end);
    out.remove_prefix(end + 4);
    const size_t sp = head.find(' ');
    r.status = std::stoi(std::string(head.substr(sp + 1, 3)));
    if (r.status >= 100 && r.status < 200) continue;
    r.headers.clear();
    size_t at = head.find("\r\n");
    while (at != std::string_view::npos) {
      head.remove_prefix(at + 2);
      at = head.find("\r\n");
      std::string_view line = head.substr(0, at);
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string name(line.substr(0, colon));
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      r.headers[name] = std::string(value);
    }
    r.body = std::string(out);
    return r;
  }
}

// Writes `bytes` on a fresh connection, then reads until the server closes or `wait` passes.
std::string RawExchange(const std::string& address, const std::string& bytes,
                        std::chrono::milliseconds wait, bool* closed = nullptr) {
  asio::io_context io;
  auto where = net::ParseHostPort(address);
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address(where->first), where->second));
  if (!bytes.empty()) asio::write(s, asio::buffer(bytes));
  SocketRead got = ReadUntilClosed(s.native_handle(), wait);
  if (closed) *closed = got.closed;
  return std::move(got.bytes);
}

class HttpApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveCurl()) GTEST_SKIP() << "curl is not installed (apt-get install curl)";
    auto p =
        CairndProcess::Start({.data_dir = dir_.Sub("node"),
                              .extra_args = {"--http", "127.0.0.1:0", "--resp", "127.0.0.1:0",
                                             "--max-value-bytes", "4096", "--http-idle-timeout-ms",
                                             "1000", "--http-read-timeout-ms", "700"}});
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    server_ = std::move(*p);
    ASSERT_FALSE(server_->http_address().empty()) << "no 'http on' in the start line";
    base_ = "http://" + server_->http_address();
    // A single node forms its cluster right after start; wait for /ready.
    ASSERT_OK(WaitUntil(
        [&] {
          const auto ready = Curl("GET", base_ + "/ready");
          return ::testing::AssertionResult(ready.status == 200)
                 << ready.status << " " << ready.body;
        },
        10s, "GET /ready to answer 200"));
  }
  void TearDown() override {
    if (server_ && HasFailure()) std::cerr << "server log:\n" << server_->Log();
  }

  std::string Kv(const std::string& key_path) const { return base_ + "/v1/kv/default/" + key_path; }

  TempDir dir_;
  std::unique_ptr<CairndProcess> server_;
  std::string base_;
};

TEST_F(HttpApiTest, PutGetDeleteRoundTripWithVersionsAsETags) {
  Reply put = Curl("PUT", Kv("greeting"), {}, "hello, world");
  ASSERT_EQ(put.status, 200) << Describe(put);
  const std::string version = put.json().value("version", "");
  ASSERT_FALSE(version.empty());
  EXPECT_EQ(put.header("etag"), "\"" + version + "\"");

  Reply get = Curl("GET", Kv("greeting"));
  ASSERT_EQ(get.status, 200) << Describe(get);
  EXPECT_EQ(get.body, "hello, world");
  EXPECT_EQ(get.header("etag"), "\"" + version + "\"");
  EXPECT_EQ(get.header("content-type"), "application/octet-stream");

  Reply not_modified = Curl("GET", Kv("greeting"), {"-H", "If-None-Match: \"" + version + "\""});
  EXPECT_EQ(not_modified.status, 304) << Describe(not_modified);

  Reply del = Curl("DELETE", Kv("greeting"));
  ASSERT_EQ(del.status, 200) << Describe(del);
  Reply gone = Curl("GET", Kv("greeting"));
  EXPECT_EQ(gone.status, 404) << Describe(gone);
  EXPECT_EQ(gone.code(), "NOT_FOUND");
  EXPECT_EQ(gone.header("content-type"), "application/json");
}

TEST_F(HttpApiTest, KeysArePercentDecodedAndMayHoldSlashes) {
  ASSERT_EQ(Curl("PUT", Kv("a%2Fb%20c"), {}, "1").status, 200);
  ASSERT_EQ(Curl("PUT", Kv("dir/file"), {}, "2").status, 200);
  EXPECT_EQ(Curl("GET", Kv("a%2fb%20c")).body, "1");  // lower-case hex escapes too
  EXPECT_EQ(Curl("GET", Kv("a/b%20c")).body, "1");    // the same key, slash unescaped
  EXPECT_EQ(Curl("GET", Kv("dir%2Ffile")).body, "2");
  Reply scan = Curl("GET", base_ + "/v1/kv/default?prefix=a%2F");
  ASSERT_EQ(scan.status, 200) << Describe(scan);
  ASSERT_EQ(scan.json()["items"].size(), 1u);
  EXPECT_EQ(scan.json()["items"][0]["key"], "a/b c");
}

TEST_F(HttpApiTest, BinaryValuesRoundTripAndScanShowsThemAsBase64) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  ASSERT_EQ(Curl("PUT", Kv("bin%00key%FF"), {}, bytes).status, 200);
  Reply get = Curl("GET", Kv("bin%00key%FF"));
  ASSERT_EQ(get.status, 200);
  EXPECT_EQ(get.body, bytes);
  Reply scan = Curl("GET", base_ + "/v1/kv/default?prefix=bin");
  ASSERT_EQ(scan.status, 200) << Describe(scan);
  const Json item = scan.json()["items"][0];
  EXPECT_TRUE(item.contains("key_base64")) << item.dump();
  EXPECT_EQ(item["key_base64"], "YmluAGtlef8=");
  EXPECT_TRUE(item.contains("value_base64"));
}

TEST_F(HttpApiTest, ConditionalWritesGoThroughCasAndAnswer412WithTheCurrentETag) {
  Reply created = Curl("PUT", Kv("c"), {"-H", "If-None-Match: *"}, "v1");
  ASSERT_EQ(created.status, 201) << Describe(created);
  const std::string etag1 = created.header("etag");
  ASSERT_FALSE(etag1.empty());

  Reply again = Curl("PUT", Kv("c"), {"-H", "If-None-Match: *"}, "other");
  EXPECT_EQ(again.status, 412) << Describe(again);
  EXPECT_EQ(again.code(), "CONDITION_FAILED");
  EXPECT_EQ(again.header("etag"), etag1);
  EXPECT_EQ(Curl("GET", Kv("c")).body, "v1");  // nothing was written

  Reply swapped = Curl("PUT", Kv("c"), {"-H", "If-Match: " + etag1}, "v2");
  ASSERT_EQ(swapped.status, 200) << Describe(swapped);
  const std::string etag2 = swapped.header("etag");
  EXPECT_NE(etag2, etag1);
  EXPECT_EQ(Curl("GET", Kv("c")).header("etag"), etag2);

  Reply stale = Curl("PUT", Kv("c"), {"-H", "If-Match: " + etag1}, "v3");
  EXPECT_EQ(stale.status, 412) << Describe(stale);
  EXPECT_EQ(stale.header("etag"), etag2);
  EXPECT_EQ(stale.json()["error"]["current_version"], etag2.substr(1, etag2.size() - 2));
  EXPECT_EQ(Curl("GET", Kv("c")).body, "v2");

  Reply stale_delete = Curl("DELETE", Kv("c"), {"-H", "If-Match: " + etag1});
  EXPECT_EQ(stale_delete.status, 412) << Describe(stale_delete);
  EXPECT_EQ(Curl("GET", Kv("c")).body, "v2");
  Reply deleted = Curl("DELETE", Kv("c"), {"-H", "If-Match: " + etag2});
  EXPECT_EQ(deleted.status, 200) << Describe(deleted);
  EXPECT_EQ(Curl("GET", Kv("c")).status, 404);

  Reply must_exist = Curl("PUT", Kv("c"), {"-H", "If-Match: *"}, "v4");
  EXPECT_EQ(must_exist.status, 412) << Describe(must_exist);
  EXPECT_EQ(Curl("GET", Kv("c")).status, 404);

  // The Paxos counters saw these operations.
  Reply metrics = Curl("GET", base_ + "/metrics");
  EXPECT_NE(metrics.body.find("\ncairn_paxos_cas_total "), std::string::npos);
  EXPECT_EQ(metrics.body.find("\ncairn_paxos_cas_total 0\n"), std::string::npos);
  // Every step after the first of key c read its acceptor record from the writer's cache.
  EXPECT_NE(metrics.body.find("\ncairn_storage_paxos_cache_hits_total "), std::string::npos);
  EXPECT_EQ(metrics.body.find("\ncairn_storage_paxos_cache_hits_total 0\n"), std::string::npos);
  EXPECT_NE(metrics.body.find("\ncairn_storage_paxos_cache_misses_total "), std::string::npos);
  // The storage writer's histograms saw these writes, the reactors' lag its timer's ticks.
  for (std::string count :
       {"cairn_storage_write_wait_seconds_count ", "cairn_storage_group_commit_seconds_count ",
        "cairn_reactor_lag_seconds_count "}) {
    EXPECT_NE(metrics.body.find("\n" + count), std::string::npos) << count;
    EXPECT_EQ(metrics.body.find("\n" + count + "0\n"), std::string::npos) << count;
  }
  EXPECT_NE(
      metrics.body.find("cairn_requests_total{frontdoor=\"http\",op=\"cas\",level=\"default\","
                        "outcome=\"condition_failed\"} 4\n"),
      std::string::npos)
      << metrics.body;
}

TEST_F(HttpApiTest, TtlAndConsistencyLevelsAreTakenFromTheQuery) {
  Reply put = Curl("PUT", Kv("t?ttl=100&cl=one"), {}, "x");
  ASSERT_EQ(put.status, 200) << Describe(put);
  Reply get = Curl("GET", Kv("t?cl=ALL"));
  ASSERT_EQ(get.status, 200) << Describe(get);
  const uint64_t expires = std::stoull(get.header("x-cairn-expires-at-ms"));
  const uint64_t now_ms =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  EXPECT_GT(expires, now_ms + 90'000);
  EXPECT_LT(expires, now_ms + 110'000);
  EXPECT_EQ(Curl("GET", Kv("t?cl=serial")).status, 200);
}

TEST_F(HttpApiTest, ScanPagesFollowTheCursorInKeyOrder) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(Curl("PUT", Kv("p:" + std::to_string(i)), {}, "v" + std::to_string(i)).status, 200);
  }
  ASSERT_EQ(Curl("PUT", Kv("q:0"), {}, "other").status, 200);
  std::vector<std::string> keys;
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    std::string url = base_ + "/v1/kv/default?prefix=p:&limit=2";
    if (!cursor.empty()) url += "&cursor=" + cursor;
    Reply r = Curl("GET", url);
    ASSERT_EQ(r.status, 200) << Describe(r);
    Json j = r.json();
    EXPECT_LE(j["items"].size(), 2u);
    for (const auto& item : j["items"]) {
      keys.push_back(item["key"]);
      EXPECT_EQ(item["value"], "v" + keys.back().substr(2));
      EXPECT_FALSE(item["version"].get<std::string>().empty());
    }
    if (j["cursor"].is_null()) break;
    cursor = j["cursor"];
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"p:0", "p:1", "p:2", "p:3", "p:4"}));
}

TEST_F(HttpApiTest, BadInputGets400WithAMessageAndChangesNothing) {
  struct Case {
    std::string method, path;
    std::vector<std::string> headers;
    std::string expect_in_message;
  };
  const std::vector<Case> cases = {
      {"PUT", "/v1/kv/default/k%zz", {}, "percent-escape"},
      {"PUT", "/v1/kv/default/k?tll=5", {}, "unknown query parameter 'tll'"},
      {"PUT", "/v1/kv/default/k?ttl=-1", {}, "ttl"},
      {"PUT", "/v1/kv/default/k?cl=MOST", {}, "unknown consistency level 'MOST'"},
      {"PUT", "/v1/kv/default/k?cl=serial", {}, "SERIAL"},
      {"PUT", "/v1/kv/default/k?cl=one&cl=all", {}, "more than once"},
      {"PUT", "/v1/kv/default/k?timeout_ms=0", {}, "timeout_ms"},
      {"PUT", "/v1/kv/default/k", {"-H", "If-Match: 12"}, "If-Match"},
      {"PUT", "/v1/kv/default/k", {"-H", "If-None-Match: \"1:1\""}, "If-None-Match"},
      {"PUT", "/v1/kv/default/k", {"-H", "If-Match: *", "-H", "If-None-Match: *"}, "not both"},
      {"PUT", "/v1/kv/default/k?commit_cl=ONE", {}, "commit_cl"},
      {"PUT", "/v1/kv//k", {}, "no keyspace"},
      {"PUT", "/v1/kv/default/", {}, "empty"},
      {"GET", "/v1/kv/default?limit=0", {}, "limit"},
      {"GET", "/v1/kv/default?cursor=xyz", {}, "cursor"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> extra = c.headers;
    Reply r = Curl(c.method, base_ + c.path, extra, "value");
    EXPECT_EQ(r.status, 400) << c.path << ": " << Describe(r);
    EXPECT_EQ(r.code(), "INVALID_ARGUMENT") << c.path;
    EXPECT_NE(r.message().find(c.expect_in_message), std::string::npos)
        << c.path << ": " << r.message();
  }
  EXPECT_EQ(Curl("GET", Kv("k")).status, 404);  // nothing was written
  Reply scan = Curl("GET", base_ + "/v1/kv/default");
  EXPECT_TRUE(scan.json()["items"].empty()) << scan.body;
}

// HEAD answers what GET would, headers only: Content-Length of the value, the version as ETag.
TEST_F(HttpApiTest, HeadIsGetWithoutTheBody) {
  Reply put = Curl("PUT", Kv("h"), {}, "twelve bytes");
  ASSERT_EQ(put.status, 200) << Describe(put);
  Reply head = Curl("HEAD", Kv("h"), {"--head"});
  EXPECT_EQ(head.status, 200) << Describe(head);
  EXPECT_EQ(head.header("content-length"), "12");
  EXPECT_EQ(head.header("etag"), put.header("etag"));
  EXPECT_TRUE(head.body.empty()) << head.body;
  Reply missing = Curl("HEAD", Kv("nothing-here"), {"--head"});
  EXPECT_EQ(missing.status, 404) << Describe(missing);
  EXPECT_TRUE(missing.body.empty()) << missing.body;
  EXPECT_EQ(Curl("HEAD", base_ + "/health", {"--head"}).status, 200);
  // No body bytes follow a HEAD answer, so the next answer on the connection starts right after
  // its headers.
  const std::string got =
      RawExchange(server_->http_address(),
                  "HEAD /v1/kv/default/h HTTP/1.1\r\nHost: t\r\n\r\n"
                  "GET /v1/kv/default/h HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                  5s);
  const size_t first_end = got.find("\r\n\r\n");
  ASSERT_NE(first_end, std::string::npos) << got;
  EXPECT_EQ(got.substr(first_end + 4, 12), "HTTP/1.1 200") << got;
  EXPECT_TRUE(got.ends_with("\r\n\r\ntwelve bytes")) << got;
}

TEST_F(HttpApiTest, UnknownThingsGet404AndWrongMethods405) {
  Reply no_ks = Curl("GET", base_ + "/v1/kv/nosuch/k");
  EXPECT_EQ(no_ks.status, 404) << Describe(no_ks);
  EXPECT_NE(no_ks.message().find("keyspace 'nosuch' does not exist"), std::string::npos);
  EXPECT_EQ(Curl("PUT", base_ + "/v1/kv/nosuch/k", {}, "v").status, 404);
  EXPECT_EQ(Curl("GET", base_ + "/v1/kv/nosuch").status, 404);
  Reply no_path = Curl("GET", base_ + "/v2/whatever");
  EXPECT_EQ(no_path.status, 404);
  EXPECT_EQ(no_path.code(), "NOT_FOUND");

  Reply post = Curl("POST", Kv("k"), {}, "v");
  EXPECT_EQ(post.status, 405) << Describe(post);
  EXPECT_EQ(post.header("allow"), "GET, HEAD, PUT, DELETE");
  EXPECT_EQ(post.code(), "METHOD_NOT_ALLOWED");
  EXPECT_EQ(Curl("DELETE", base_ + "/metrics").status, 405);
  EXPECT_EQ(Curl("PUT", base_ + "/v1/kv/default", {}, "v").status, 405);
  EXPECT_EQ(Curl("PUT", base_ + "/v1/cluster", {}, "v").status, 405);
}

TEST_F(HttpApiTest, LimitsGet413And431) {
  Reply big = Curl("PUT", Kv("big"), {}, std::string(5000, 'x'));  // --max-value-bytes 4096
  EXPECT_EQ(big.status, 413) << Describe(big);
  EXPECT_EQ(big.code(), "TOO_LARGE");
  EXPECT_EQ(Curl("PUT", Kv("fits"), {}, std::string(4096, 'x')).status, 200);

  const std::string long_key(16 * 1024 + 1, 'k');
  Reply key = Curl("PUT", Kv(long_key), {}, "v");
  EXPECT_EQ(key.status, 413) << Describe(key);
  EXPECT_NE(key.message().find("key"), std::string::npos);

  Reply header = Curl("GET", Kv("fits"), {"-H", "X-Padding: " + std::string(70'000, 'h')});
  EXPECT_EQ(header.status, 431) << Describe(header);
  EXPECT_EQ(Curl("GET", Kv("big")).status, 404);
}

TEST_F(HttpApiTest, KeyspaceAdminCreatesDescribesAltersAndDrops) {
  Reply created = Curl("POST", base_ + "/v1/keyspaces", {},
                       R"({"name": "users", "replication": 1, "write_consistency": "ONE"})");
  ASSERT_EQ(created.status, 201) << Describe(created);
  EXPECT_EQ(created.json()["name"], "users");
  EXPECT_EQ(created.json()["replication"], "1");
  EXPECT_EQ(created.json()["write_consistency"], "ONE");

  Reply dup = Curl("POST", base_ + "/v1/keyspaces", {}, R"({"name": "users"})");
  EXPECT_EQ(dup.status, 409) << Describe(dup);
  EXPECT_EQ(dup.code(), "ALREADY_EXISTS");
  EXPECT_EQ(Curl("POST", base_ + "/v1/keyspaces", {}, R"({"name": "users", "if_not_exists": true})")
                .status,
            201);

  Reply list = Curl("GET", base_ + "/v1/keyspaces");
  ASSERT_EQ(list.status, 200);
  std::vector<std::string> names;
  const Json listed = list.json();
  for (const auto& ks : listed["keyspaces"]) names.push_back(ks["name"]);
  EXPECT_NE(std::find(names.begin(), names.end(), "users"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "default"), names.end());

  Reply altered =
      Curl("PATCH", base_ + "/v1/keyspaces/users", {}, R"({"read_consistency": "one"})");
  ASSERT_EQ(altered.status, 200) << Describe(altered);
  EXPECT_EQ(altered.json()["read_consistency"], "ONE");
  EXPECT_EQ(Curl("GET", base_ + "/v1/keyspaces/users").json()["read_consistency"], "ONE");

  ASSERT_EQ(Curl("PUT", base_ + "/v1/kv/users/alice", {}, "a").status, 200);
  EXPECT_EQ(Curl("GET", base_ + "/v1/kv/users/alice").body, "a");

  for (const std::string& bad : {std::string("not json"), std::string(R"({"name": 5})"),
                                 std::string(R"({"name": "x", "colour": "red"})"),
                                 std::string(R"({"name": "x", "replication": 99})"),
                                 std::string(R"({"name": "x", "read_consistency": "MOST"})")}) {
    Reply r = Curl("POST", base_ + "/v1/keyspaces", {}, bad);
    EXPECT_EQ(r.status, 400) << bad << ": " << Describe(r);
  }
  EXPECT_EQ(Curl("GET", base_ + "/v1/keyspaces/x").status, 404);

  Reply dropped = Curl("DELETE", base_ + "/v1/keyspaces/users");
  ASSERT_EQ(dropped.status, 200) << Describe(dropped);
  EXPECT_EQ(Curl("GET", base_ + "/v1/keyspaces/users").status, 404);
  EXPECT_EQ(Curl("GET", base_ + "/v1/kv/users/alice").status, 404);
  EXPECT_EQ(Curl("DELETE", base_ + "/v1/keyspaces/users").status, 404);
  EXPECT_EQ(Curl("DELETE", base_ + "/v1/keyspaces/users?if_exists=true").status, 200);
  EXPECT_EQ(Curl("PUT", base_ + "/v1/keyspaces/users", {}, "{}").status, 405);
}

TEST_F(HttpApiTest, HealthReadyClusterAndMetrics) {
  Reply health = Curl("GET", base_ + "/health");
  ASSERT_EQ(health.status, 200);
  EXPECT_EQ(health.json()["status"], "alive");
  EXPECT_EQ(health.json()["node_id"], server_->node_id());
  EXPECT_EQ(Curl("GET", base_ + "/ready").json()["status"], "ready");

  Reply cluster = Curl("GET", base_ + "/v1/cluster");
  ASSERT_EQ(cluster.status, 200) << Describe(cluster);
  EXPECT_EQ(cluster.json()["formed"], true);
  ASSERT_EQ(cluster.json()["nodes"].size(), 1u);
  EXPECT_EQ(cluster.json()["nodes"][0]["state"], "UP");
  EXPECT_EQ(cluster.json()["nodes"][0]["address"], server_->address());
  EXPECT_GT(cluster.json()["partitions"].get<int>(), 0);

  ASSERT_EQ(Curl("PUT", Kv("m"), {}, "v").status, 200);
  ASSERT_EQ(Curl("GET", Kv("m?cl=one")).status, 200);
  // The native front door counts into the same metrics.
  CommandResult native = RunCommand({CliPath(), "--server", server_->address(), "get", "m"});
  ASSERT_EQ(native.exit_code, 0) << native.err;
  EXPECT_EQ(native.out, "v");
  // And so does the RESP front door: a SET, a GET, and an INCR of a value that is not a number
  // (a read-modify-write refused by the front door itself).
  const bool have_redis_cli = ::access("/usr/bin/redis-cli", X_OK) == 0;
  if (have_redis_cli) {
    const std::string resp = server_->resp_address();
    ASSERT_FALSE(resp.empty());
    const std::string host = resp.substr(0, resp.rfind(':'));
    const std::string port = resp.substr(resp.rfind(':') + 1);
    for (std::vector<std::string> args :
         {std::vector<std::string>{"set", "r", "v"}, std::vector<std::string>{"get", "r"},
          std::vector<std::string>{"incr", "r"}}) {
      std::vector<std::string> argv = {"/usr/bin/redis-cli", "-h", host, "-p", port};
      argv.insert(argv.end(), args.begin(), args.end());
      CommandResult r = RunCommand(argv);
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
  } else {
    std::cout << "redis-cli is not installed: the RESP lines of /metrics are not checked\n";
  }
  Reply m = Curl("GET", base_ + "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::string& t = m.body;
  if (have_redis_cli) {
    for (const char* needle :
         {"cairn_requests_total{frontdoor=\"resp\",op=\"put\",level=\"default\",outcome=\"ok\"} "
          "1\n",
          "cairn_requests_total{frontdoor=\"resp\",op=\"get\",level=\"default\",outcome=\"ok\"} "
          "1\n",
          "cairn_requests_total{frontdoor=\"resp\",op=\"cas\",level=\"default\",outcome=\"invalid_"
          "argument\"} 1\n",
          "cairn_request_duration_seconds_count{frontdoor=\"resp\",op=\"get\"} 1\n",
          "cairn_open_connections{frontdoor=\"resp\"} "}) {
      EXPECT_NE(t.find(needle), std::string::npos) << "missing: " << needle;
    }
  }
  for (const char* needle :
       {"# TYPE cairn_requests_total counter\n",
        "cairn_requests_total{frontdoor=\"http\",op=\"put\",level=\"default\",outcome=\"ok\"} 1\n",
        "cairn_requests_total{frontdoor=\"http\",op=\"get\",level=\"one\",outcome=\"ok\"} 1\n",
        "cairn_requests_total{frontdoor=\"native\",op=\"get\",level=\"default\",outcome=\"ok\"} "
        "1\n",
        "cairn_request_duration_seconds_count{frontdoor=\"native\",op=\"get\"} 1\n",
        "# TYPE cairn_request_duration_seconds histogram\n",
        "cairn_request_duration_seconds_bucket{frontdoor=\"http\",op=\"put\",le=\"+Inf\"} 1\n",
        "cairn_open_connections{frontdoor=\"http\"} ", "cairn_nodes{state=\"up\"} 1\n",
        "cairn_nodes{state=\"down\"} 0\n", "cairn_ready 1\n",
        "# TYPE cairn_paxos_cas_total counter\n", "# TYPE cairn_replica_writes_total counter\n",
        "# TYPE cairn_hints_pending gauge\n", "# TYPE cairn_rocksdb_memtable_bytes gauge\n",
        "# TYPE cairn_rocksdb_pending_compaction_bytes gauge\n",
        "# TYPE cairn_rocksdb_block_cache_hit_ratio gauge\n",
        "# TYPE cairn_rocksdb_wal_syncs_total counter\n"}) {
    EXPECT_NE(t.find(needle), std::string::npos) << "missing: " << needle;
  }
#ifdef CAIRN_WITH_JEMALLOC
  // The heap's figures, which a node of any size has above zero.
  for (const std::string name : {"cairn_memory_allocated_bytes ", "cairn_memory_resident_bytes "}) {
    const size_t at = t.find("\n" + name);
    ASSERT_NE(at, std::string::npos) << "missing: " << name;
    EXPECT_GT(std::stod(t.substr(at + 1 + name.size())), 1e6) << name;
  }
#else
  EXPECT_EQ(t.find("cairn_memory_allocated_bytes"), std::string::npos);
  EXPECT_EQ(t.find("cairn_memory_resident_bytes"), std::string::npos);
#endif
  // Every line is a comment or "name{labels} value" with a valid name.
  std::istringstream lines(t);
  std::string line;
  const std::regex sample(
      R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")"
      R"((,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})? ([-+0-9.eE]+|[-+]Inf|NaN)$)");
  while (std::getline(lines, line)) {
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) continue;
    EXPECT_TRUE(std::regex_match(line, sample)) << line;
  }
}

TEST_F(HttpApiTest, PipelinedRequestsAreAnsweredInOrderOnOneConnection) {
  ASSERT_EQ(Curl("PUT", Kv("one"), {}, "1").status, 200);
  ASSERT_EQ(Curl("PUT", Kv("two"), {}, "2").status, 200);
  const std::string requests =
      "GET /v1/kv/default/one HTTP/1.1\r\nHost: x\r\n\r\n"
      "PUT /v1/kv/default/three HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n3"
      "GET /v1/kv/default/two HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /v1/kv/default/three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  bool closed = false;
  const std::string got = RawExchange(server_->http_address(), requests, 5s, &closed);
  EXPECT_TRUE(closed) << "Connection: close was not honoured";
  std::vector<std::string> bodies;
  size_t at = 0;
  while ((at = got.find("HTTP/1.1 ", at)) != std::string::npos) {
    const size_t head_end = got.find("\r\n\r\n", at);
    const size_t cl = got.find("Content-Length: ", at);
    ASSERT_NE(head_end, std::string::npos);
    ASSERT_LT(cl, head_end);
    const size_t length = std::stoul(got.substr(cl + 16));
    bodies.push_back(got.substr(at, 12) + got.substr(head_end + 4, length));
    at = head_end + 4 + length;
  }
  ASSERT_EQ(bodies.size(), 4u) << got;
  EXPECT_EQ(bodies[0], "HTTP/1.1 2001");
  EXPECT_EQ(bodies[1].substr(0, 12), "HTTP/1.1 200");
  EXPECT_EQ(bodies[2], "HTTP/1.1 2002");
  EXPECT_EQ(bodies[3], "HTTP/1.1 2003");
}

TEST_F(HttpApiTest, SlowAndIdleClientsAreCutOffAndGarbageGets400) {
  // A request that stops half way gets 408 after --http-read-timeout-ms (700 ms), well within the
  // 5 s this client waits.
  bool closed = false;
  std::string got = RawExchange(server_->http_address(), "GET /health HTTP/1.1\r\nHo", 5s, &closed);
  EXPECT_TRUE(got.starts_with("HTTP/1.1 408")) << got;
  EXPECT_NE(got.find("REQUEST_TIMEOUT"), std::string::npos);
  EXPECT_TRUE(closed);

  // An idle connection is closed without a word after --http-idle-timeout-ms (1000 ms).
  got = RawExchange(server_->http_address(), "", 5s, &closed);
  EXPECT_EQ(got, "");
  EXPECT_TRUE(closed);

  // Bytes that are not HTTP get 400 and a closed connection.
  got = RawExchange(server_->http_address(), "\x01\x02 garbage\r\n\r\n", 3s, &closed);
  EXPECT_TRUE(got.starts_with("HTTP/1.1 400")) << got;
  EXPECT_TRUE(closed);

  // And the server still serves everyone else.
  EXPECT_EQ(Curl("GET", base_ + "/health").status, 200);
}

TEST_F(HttpApiTest, StopsCleanlyWithAnIdleKeepAliveConnectionOpen) {
  asio::io_context io;
  auto where = net::ParseHostPort(server_->http_address());
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address(where->first), where->second));
  // 0: it exited on SIGTERM by itself within 5 s (else Stop() kills it: 137).
  EXPECT_EQ(server_->Stop(5s), 0);
}

TEST(HttpReadyTest, NotReadyUntilTheClusterFormsButAlive) {
  if (!HaveCurl()) GTEST_SKIP() << "curl is not installed (apt-get install curl)";
  TempDir dir;
  const std::string self = "127.0.0.1:" + std::to_string(FreePort());
  const std::string absent = "127.0.0.1:" + std::to_string(FreePort());
  auto p = CairndProcess::Start(
      {.data_dir = dir.Sub("lonely"),
       .listen = self,
       .extra_args = {"--http", "127.0.0.1:0", "--peers", self + "," + absent}});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  const std::string base = "http://" + (*p)->http_address();
  EXPECT_EQ(Curl("GET", base + "/health").status, 200);
  Reply ready = Curl("GET", base + "/ready");
  EXPECT_EQ(ready.status, 503) << Describe(ready);
  EXPECT_EQ(ready.code(), "UNAVAILABLE");
  EXPECT_NE(ready.message().find("not formed"), std::string::npos) << ready.message();
  Reply put = Curl("PUT", base + "/v1/kv/default/k", {}, "v");
  EXPECT_EQ(put.status, 503) << Describe(put);
  Reply metrics = Curl("GET", base + "/metrics");
  EXPECT_NE(metrics.body.find("\ncairn_ready 0\n"), std::string::npos);
  EXPECT_NE(metrics.body.find("cairn_nodes{state=\"down\"} 1\n"), std::string::npos);
}

// ---- three nodes
// ---------------------------------------------------------------------------------

class HttpClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveCurl()) GTEST_SKIP() << "curl is not installed (apt-get install curl)";
    LocalCluster::Options o;
    o.nodes = 3;
    o.extra_args = {"--http", "127.0.0.1:0"};
    auto c = LocalCluster::Start(dir_.Sub("cluster"), o);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cluster_ = std::move(*c);
  }
  void TearDown() override {
    if (cluster_ && HasFailure()) std::cerr << cluster_->Logs();
  }
  std::string Base(size_t i) { return "http://" + cluster_->node(i).http_address(); }

  TempDir dir_;
  std::unique_ptr<LocalCluster> cluster_;
};

TEST_F(HttpClusterTest, WritesOnOneNodeAreReadOnAnotherAndFailuresMapTo503And504) {
  Reply cluster = Curl("GET", Base(1) + "/v1/cluster");
  ASSERT_EQ(cluster.status, 200) << Describe(cluster);
  ASSERT_EQ(cluster.json()["nodes"].size(), 3u);
  const Json status = cluster.json();
  for (const auto& n : status["nodes"]) EXPECT_EQ(n["state"], "UP");

  Reply put = Curl("PUT", Base(0) + "/v1/kv/default/shared?cl=QUORUM", {}, "across");
  ASSERT_EQ(put.status, 200) << Describe(put);
  Reply get = Curl("GET", Base(2) + "/v1/kv/default/shared?cl=QUORUM");
  ASSERT_EQ(get.status, 200) << Describe(get);
  EXPECT_EQ(get.body, "across");
  EXPECT_EQ(get.header("etag"), put.header("etag"));
  Reply all = Curl("GET", Base(1) + "/v1/kv/default/shared?cl=ALL");
  EXPECT_EQ(all.body, "across");

  Reply metrics = Curl("GET", Base(0) + "/metrics");
  EXPECT_NE(metrics.body.find("cairn_nodes{state=\"up\"} 3\n"), std::string::npos);
  EXPECT_EQ(metrics.body.find("\ncairn_replica_writes_total 0\n"), std::string::npos);

  // A paused node still looks UP for a while: ALL times out (504), the write may have applied.
  cluster_->node(2).Pause();
  Reply slow = Curl("PUT", Base(0) + "/v1/kv/default/k?cl=ALL&timeout_ms=300", {}, "v");
  EXPECT_EQ(slow.status, 504) << Describe(slow);
  EXPECT_EQ(slow.code(), "TIMEOUT");
  EXPECT_EQ(slow.json()["error"]["may_have_applied"], true);
  // Once it is seen DOWN, ALL is refused up front (503) while QUORUM still works.
  ASSERT_TRUE(cluster_->WaitForState(0, 2, "DOWN").ok());
  Reply down = Curl("PUT", Base(0) + "/v1/kv/default/k?cl=ALL", {}, "v");
  EXPECT_EQ(down.status, 503) << Describe(down);
  EXPECT_EQ(down.code(), "UNAVAILABLE");
  EXPECT_EQ(Curl("PUT", Base(0) + "/v1/kv/default/k?cl=QUORUM", {}, "v").status, 200);
  Reply m2 = Curl("GET", Base(0) + "/metrics");
  EXPECT_NE(m2.body.find("cairn_nodes{state=\"down\"} 1\n"), std::string::npos) << m2.body;
  cluster_->node(2).Resume();
}

}  // namespace
}  // namespace cairn::testing
