// The web console at /ui: the files the HTTP door serves from its binary, the partition map they
// draw, and the page itself in a real browser (headless Chromium driven by playwright-core,
// browser/console_browser.mjs) against a 3-node cluster: every node rendered, a `cairn repair` run
// shown with its progress, a killed node shown DOWN, no console errors, screenshots kept under
// build/<preset>/test-artifacts/.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/harness/process.h"
#include "tests/ops/http_get.h"
#include "tests/support/temp_dir.h"

namespace cairn::testing {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;
using namespace std::chrono_literals;

const std::string kBrowserDir = std::string(CAIRN_SOURCE_DIR) + "/tests/ops/browser";

// `name`'s full path from $PATH, or "".
std::string FindProgram(const std::string& name) {
  const char* env = std::getenv("PATH");
  std::string_view dirs = env != nullptr ? env : "/usr/bin:/bin";
  while (!dirs.empty()) {
    const size_t colon = dirs.find(':');
    std::string candidate = std::string(dirs.substr(0, colon)) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  return "";
}

class ConsoleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    LocalCluster::Options options;
    options.nodes = 3;
    options.extra_args = {"--http", "127.0.0.1:0", "--partitions", "256"};
    options.node_args = {{"--rack", "r1"}, {"--rack", "r2"}, {"--rack", "r3"}};
    auto cluster = LocalCluster::Start(dir_->path(), options);
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    cluster_ = cluster->release();
  }
  static void TearDownTestSuite() {
    delete cluster_;  // stops every node by its pid
    cluster_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(cluster_, nullptr) << "the cluster did not start"; }

  static std::string Http(size_t i) { return cluster_->node(i).http_address(); }

  static TempDir* dir_;
  static LocalCluster* cluster_;
};
TempDir* ConsoleTest::dir_ = nullptr;
LocalCluster* ConsoleTest::cluster_ = nullptr;

TEST_F(ConsoleTest, ThePageComesFromTheBinaryAndLoadsNothingFromElsewhere) {
  for (const std::string target : {"/ui", "/ui/", "/ui/index.html", "/ui/?refresh_ms=500"}) {
    HttpAnswer page = HttpGet(Http(0), target);
    ASSERT_EQ(page.status, 200) << target << ": " << page.error << page.body;
    EXPECT_EQ(page.header("content-type"), "text/html; charset=utf-8");
    EXPECT_THAT(page.body, HasSubstr("<title>Cairn console</title>"));
    // The browser may load and connect to this node only.
    EXPECT_THAT(page.header("content-security-policy"), HasSubstr("default-src 'none'"));
    EXPECT_THAT(page.header("content-security-policy"), HasSubstr("connect-src 'self'"));
    EXPECT_EQ(page.header("x-content-type-options"), "nosniff");
  }
  HttpAnswer script = HttpGet(Http(1), "/ui/console.js");
  ASSERT_EQ(script.status, 200);
  EXPECT_EQ(script.header("content-type"), "text/javascript; charset=utf-8");
  // Byte for byte the file in the source tree.
  std::ifstream in(std::string(CAIRN_SOURCE_DIR) + "/src/frontdoor/http/console/console.js",
                   std::ios::binary);
  const std::string source((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(script.body, source);
  EXPECT_EQ(HttpGet(Http(0), "/ui/console.css").header("content-type"), "text/css; charset=utf-8");
  // No http:// or https:// address in any file (but SVG's namespace name): nothing from a CDN.
  for (const std::string file : {"/ui/", "/ui/console.js", "/ui/console.css"}) {
    std::string body = HttpGet(Http(0), file).body;
    static const std::string kSvgNamespace = "http://www.w3.org/2000/svg";
    for (size_t at; (at = body.find(kSvgNamespace)) != std::string::npos;) {
      body.erase(at, kSvgNamespace.size());
    }
    EXPECT_EQ(body.find("http://"), std::string::npos) << file;
    EXPECT_EQ(body.find("https://"), std::string::npos) << file;
  }

  HttpAnswer missing = HttpGet(Http(0), "/ui/nothing.js");
  EXPECT_EQ(missing.status, 404);
  EXPECT_THAT(missing.body, HasSubstr("NOT_FOUND"));
  HttpAnswer post = HttpRequest(Http(0), "POST", "/ui/");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.header("allow"), "GET, HEAD");
  HttpAnswer head = HttpRequest(Http(0), "HEAD", "/ui/console.css");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
}

TEST_F(ConsoleTest, ThePartitionMapGivesEveryPartitionsReplicasInPreferenceOrder) {
  HttpAnswer a = HttpGet(Http(2), "/v1/cluster/partitions");
  ASSERT_EQ(a.status, 200) << a.error << a.body;
  EXPECT_EQ(a.header("content-type"), "application/json");
  const Json map = Json::parse(a.body);
  EXPECT_EQ(map["formed"], true);
  EXPECT_EQ(map["partitions"], 256);
  ASSERT_EQ(map["members"].size(), 3u);
  std::set<uint32_t> members;
  for (const Json& m : map["members"]) members.insert(m["node_id"].get<uint32_t>());
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(members.contains(cluster_->node(i).node_id()));
  ASSERT_EQ(map["dcs"].size(), 1u);
  const Json& dc = map["dcs"][0];
  EXPECT_EQ(dc["name"], "dc1");
  EXPECT_EQ(dc["replication"], 3);  // the default keyspace's factor
  ASSERT_EQ(dc["replicas"].size(), 256u);
  std::map<uint32_t, int> primaries;
  for (const Json& replicas : dc["replicas"]) {
    ASSERT_EQ(replicas.size(), 3u);
    std::set<uint32_t> distinct;
    for (const Json& id : replicas) distinct.insert(id.get<uint32_t>());
    EXPECT_EQ(distinct, members);  // three nodes, RF 3: each holds every partition
    ++primaries[replicas[0].get<uint32_t>()];
  }
  // Primary ownership is balanced (the map's contract), so the grid shows three even colours.
  for (const auto& [node, count] : primaries) {
    EXPECT_NEAR(count, 256.0 / 3, 3) << "node " << node;
  }
  // Every node answers the same map.
  EXPECT_EQ(Json::parse(HttpGet(Http(0), "/v1/cluster/partitions").body), map);
  // It is an API call like /v1/cluster: counted, and strict about its query.
  EXPECT_EQ(HttpGet(Http(2), "/v1/cluster/partitions?dc=x").status, 400);
  HttpAnswer metrics = HttpGet(Http(2), "/metrics");
  EXPECT_THAT(metrics.body, HasSubstr("frontdoor=\"http\",op=\"cluster_status\""));
}

// A running program with pipes to its stdin and stdout, stopped by its pid when this goes away.
class Child {
 public:
  Child(std::vector<std::string> argv, const std::string& cwd, const std::string& log_path) {
    int in[2], out[2];
    if (::pipe(in) != 0 || ::pipe(out) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::setpgid(0, 0);  // its own group, so that the browser it starts is stopped with it
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (log >= 0) ::dup2(log, 2);
      ::close(in[1]);
      ::close(out[0]);
      if (::chdir(cwd.c_str()) != 0) ::_exit(126);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    to_ = in[1];
    from_ = out[0];
  }
  ~Child() {
    if (to_ >= 0) ::close(to_);
    if (from_ >= 0) ::close(from_);
    if (pid_ > 0) {
      // Playwright starts Chromium in a process group of its own and closes it on SIGTERM, so
      // SIGTERM first; SIGKILL for whatever is left of the script's group after 5 s.
      ::kill(pid_, SIGTERM);
      if (Wait(std::chrono::seconds(5)) == -1 && pid_ > 0) {
        ::kill(-pid_, SIGKILL);
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
      }
    }
  }
  bool started() const { return pid_ > 0 && from_ >= 0; }

  // The next line it writes, or "" at end of output or after `timeout`.
  std::string ReadLine(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      if (size_t nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left <= 0ms) return "";
      pollfd p{from_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::read(from_, chunk, sizeof chunk);
      if (n <= 0) return "";
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  void WriteLine(const std::string& line) {
    const std::string text = line + "\n";
    [[maybe_unused]] ssize_t n = ::write(to_, text.data(), text.size());
  }
  // Waits up to `timeout` for it to exit; its exit code, or -1 (then the destructor kills it).
  int Wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (pid_ > 0) {
      int status = 0;
      const pid_t done = ::waitpid(pid_, &status, WNOHANG);
      if (done == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      if (done < 0 || std::chrono::steady_clock::now() >= deadline) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polls the exit
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  std::string buffer_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// Runs last in this suite: it kills node 2.
TEST_F(ConsoleTest, TheBrowserRendersEveryNodeAndShowsAKilledNodeDown) {
  const std::string node = FindProgram("node");
  const char* chromium_env = std::getenv("CAIRN_TEST_CHROMIUM");
  const std::string chromium = chromium_env != nullptr ? chromium_env : "/usr/bin/chromium";
  if (node.empty()) GTEST_SKIP() << "node (Node.js) is not installed: no browser test";
  if (::access(chromium.c_str(), X_OK) != 0) {
    GTEST_SKIP() << chromium << " is missing (scripts/setup installs Debian's chromium)";
  }
  if (!std::filesystem::exists(kBrowserDir + "/node_modules/playwright-core")) {
    GTEST_SKIP() << "playwright-core is not installed in tests/ops/browser (scripts/test runs "
                    "npm ci there; the npm registry may have been unreachable)";
  }
  const std::string artifacts = CAIRN_ARTIFACT_DIR;
  std::filesystem::create_directories(artifacts);
  for (const char* f : {"console-all-up.png", "console-node-down.png"}) {
    std::filesystem::remove(artifacts + "/" + f);
  }
  std::string ids;
  for (size_t i = 0; i < 3; ++i) {
    ids += (i ? "," : "") + std::to_string(cluster_->node(i).node_id());
  }
  // A hot key for the hot-key panel: read over and over through node 1 (absent: a read all
  // the same) until the page has rendered.
  std::atomic<bool> rendering{true};
  std::thread reader([&] {
    while (rendering) (void)HttpGet(Http(1), "/v1/kv/default/console-hot");
  });
  struct Join {
    std::atomic<bool>& flag;
    std::thread& t;
    ~Join() {
      flag = false;
      t.join();
    }
  } join{rendering, reader};
  // A `cairn repair` run by hand through node 2, for the repair-run panel of node 1's page.
  CommandResult repair = RunCommand({CliPath(), "--server", cluster_->address(1), "--keyspace",
                                     "default", "--json", "repair", "--partition", "5"},
                                    "", 60s);
  ASSERT_EQ(repair.exit_code, 0) << repair.out << repair.err;
  const std::string run_id = Json::parse(repair.out)["run_id"].get<std::string>();
  const std::string url = "http://" + Http(0) + "/ui/?refresh_ms=250";
  const std::string log = artifacts + "/console-browser.log";
  Child browser({node, "console_browser.mjs", url, artifacts, ids, run_id, chromium}, kBrowserDir,
                log);
  ASSERT_TRUE(browser.started());

  const std::string rendered = browser.ReadLine(60s);
  rendering = false;
  ASSERT_TRUE(rendered.starts_with("RENDERED ")) << rendered << "\n" << ReadFile(log);
  const Json seen = Json::parse(rendered.substr(9));
  EXPECT_EQ(seen["cells"], 256);  // one square per partition
  EXPECT_EQ(seen["doors"], Json::array({"native", "http", "resp"}));

  const uint32_t killed = cluster_->node(2).node_id();
  cluster_->node(2).Kill9();
  browser.WriteLine("KILLED " + std::to_string(killed));

  const std::string verdict = browser.ReadLine(60s);
  EXPECT_EQ(verdict, "OK") << ReadFile(log);
  EXPECT_EQ(browser.Wait(30s), 0);
  for (const char* f : {"console-all-up.png", "console-node-down.png"}) {
    const std::string png = ReadFile(artifacts + "/" + f);
    ASSERT_GT(png.size(), 1000u) << f;
    EXPECT_EQ(png.substr(1, 3), "PNG") << f;
  }
  std::cout << "screenshots: " << artifacts << "/console-all-up.png, console-node-down.png\n";
}

}  // namespace
}  // namespace cairn::testing
