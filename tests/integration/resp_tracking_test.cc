// RESP3 client-side caching (CLIENT TRACKING, issue #17; docs/resp.md, "Client-side caching")
// against three real cairnd processes on loopback: a tracking connection on one node hears of
// its keys changing through every door of every node (RESP, native writes, deletes, increments,
// split counters, batches, FLUSHDB, expiry), in default, OPTIN/OPTOUT, BCAST and NOLOOP modes,
// with REDIRECT; nodes without tracking clients get no invalidation traffic; a paused tracking
// node does not hold writes; node-redis's client-side cache and redis-cli -3 work with it.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cairn/client.h"
#include "tests/harness/process.h"
#include "tests/ops/http_get.h"
#include "tests/support/options.h"
#include "tests/support/resp_command.h"
#include "tests/support/socket_read.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace cairn::testing {
namespace {

using namespace std::chrono_literals;

// One RESP connection that tells replies from pushes. Frames are rendered compactly: simple
// strings, errors and integers as their line ("+OK", ":1"), bulk strings as their bytes, nulls as
// "(nil)", aggregates as "[a b]", pushes as ">[invalidate [k]]".
class RespConn {
 public:
  explicit RespConn(const std::string& address, int protocol = 3) : fd_(ConnectTcp(address)) {
    if (protocol == 3) hello_ = Call({"HELLO", "3"});
  }
  ~RespConn() { Close(); }
  RespConn(const RespConn&) = delete;
  RespConn& operator=(const RespConn&) = delete;

  bool connected() const { return fd_ >= 0 && hello_.starts_with("["); }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void Send(const std::vector<std::string>& args) { SendAll(fd_, Command(args)); }
  // Sends a command and returns its reply; pushes that arrive before it are kept for NextPush().
  std::string Call(const std::vector<std::string>& args) {
    Send(args);
    return Reply();
  }
  std::string Reply() {
    while (true) {
      std::string f = Frame(10s);
      if (!f.starts_with(">")) return f;
      pushes_.push_back(std::move(f));
    }
  }
  // The next push, waited for up to `wait`; "(none)" when none came.
  std::string NextPush(std::chrono::milliseconds wait = 10s) {
    if (!pushes_.empty()) {
      std::string p = std::move(pushes_.front());
      pushes_.pop_front();
      return p;
    }
    std::string f = Frame(wait);
    if (f == "(timeout)") return "(none)";
    return f.starts_with(">") ? f : "a reply where a push was expected: " + f;
  }
  size_t queued_pushes() const { return pushes_.size(); }

 private:
  std::string Line(std::chrono::milliseconds wait) {
    SocketRead got = ReadUntil(
        fd_, wait, [](const std::string& b) { return b.find("\r\n") != std::string::npos; },
        std::move(buffer_));
    buffer_ = std::move(got.bytes);
    const size_t end = buffer_.find("\r\n");
    if (end == std::string::npos) return "";
    std::string line = buffer_.substr(0, end);
    buffer_.erase(0, end + 2);
    return line;
  }
  std::string Bytes(size_t n, std::chrono::milliseconds wait) {
    SocketRead got = ReadUntil(
        fd_, wait, [n](const std::string& b) { return b.size() >= n + 2; }, std::move(buffer_));
    buffer_ = std::move(got.bytes);
    if (buffer_.size() < n + 2) return "(timeout)";
    std::string v = buffer_.substr(0, n);
    buffer_.erase(0, n + 2);
    return v;
  }
  std::string Frame(std::chrono::milliseconds wait) {
    const std::string line = Line(wait);
    if (line.empty()) return "(timeout)";
    const char type = line[0];
    switch (type) {
      case '+':
      case '-':
      case ':':
      case ',':
      case '#':
        return line;
      case '_':
        return "(nil)";
      case '$':
      case '=': {
        const long n = std::stol(line.substr(1));
        return n < 0 ? "(nil)" : Bytes(static_cast<size_t>(n), wait);
      }
      case '*':
      case '~':
      case '>':
      case '%': {
        long n = std::stol(line.substr(1));
        if (n < 0) return "(nil)";
        if (type == '%') n *= 2;
        std::string out = type == '>' ? ">[" : "[";
        for (long i = 0; i < n; ++i) out += (i ? " " : "") + Frame(wait);
        return out + "]";
      }
      default:
        return "(unexpected) " + line;
    }
  }

  int fd_ = -1;
  std::string hello_;
  std::string buffer_;
  std::deque<std::string> pushes_;
};

std::string Push(const std::string& keys) { return ">[invalidate [" + keys + "]]"; }

// The next `n` pushes, sorted (pushes of one change to several prefixes or keys come in any
// order).
std::vector<std::string> NextPushes(RespConn& c, size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.push_back(c.NextPush());
  std::sort(out.begin(), out.end());
  return out;
}

ClientOptions At(const LocalCluster& cluster, size_t node) {
  ClientOptions o;
  o.servers = {cluster.address(node)};
  o.token_aware = false;
  o.cache_hot_keys = false;
  o.request_timeout = 20s;
  return o;
}

// A coordinator counter of one node (Client::Metrics: "tracking.messages_received", ...).
uint64_t Counter(const LocalCluster& cluster, size_t node, const std::string& name) {
  Client c(At(cluster, node));
  auto m = c.Metrics();
  if (!m.ok() || !m->contains(name)) return ~uint64_t{0};
  return m->at(name);
}

// An unlabelled metric of one node's /metrics page; -1 when it is not there.
double PageMetric(LocalCluster& cluster, size_t node, const std::string& name) {
  const std::string page = HttpGet(cluster.node(node).http_address(), "/metrics").body;
  const size_t at = page.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stod(page.substr(at + name.size() + 2));
}

std::unique_ptr<LocalCluster> StartCluster(const std::string& dir) {
  ClusterOptions options;
  options.extra_args = {"--resp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--allow-flush"};
  auto started = LocalCluster::Start(dir, options);
  EXPECT_TRUE(started.ok()) << started.status().ToString();
  return started.ok() ? std::move(*started) : nullptr;
}

// One cluster for the tests that only read and write their own keys.
class RespTrackingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    cluster_ = StartCluster(dir_->Sub("cluster")).release();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
    delete dir_;
  }
  void SetUp() override { ASSERT_NE(cluster_, nullptr); }
  void TearDown() override {
    if (HasFailure() && cluster_ != nullptr) std::cerr << cluster_->Logs();
  }
  static std::string Resp(size_t node) { return cluster_->node(node).resp_address(); }

  static TempDir* dir_;
  static LocalCluster* cluster_;
};
TempDir* RespTrackingTest::dir_ = nullptr;
LocalCluster* RespTrackingTest::cluster_ = nullptr;

// The scenario on raw sockets: a RESP3 connection on node 0 tracks what it reads; writes
// of those keys through node 1 (RESP) and node 2 (native client: put, delete, increment), a
// batch, a split counter's increments, an expiry and a FLUSHDB each reach it as a push. A key is
// reported once and then forgotten until it is read again.
TEST_F(RespTrackingTest, WritesThroughAnyNodeAndDoorInvalidate) {
  RespConn a(Resp(0));
  ASSERT_TRUE(a.connected());
  RespConn b(Resp(1));
  Client native(At(*cluster_, 2));
  ASSERT_EQ(a.Call({"CLIENT", "TRACKING", "on"}), "+OK");

  EXPECT_EQ(a.Call({"GET", "t1:k"}), "(nil)");
  EXPECT_EQ(b.Call({"SET", "t1:k", "v1"}), "+OK");
  EXPECT_EQ(a.NextPush(), Push("t1:k"));
  // Forgotten: the next change of t1:k is not reported (the push after it is another key's).
  EXPECT_EQ(b.Call({"SET", "t1:k", "v2"}), "+OK");
  EXPECT_EQ(a.Call({"GET", "t1:other"}), "(nil)");
  EXPECT_EQ(b.Call({"SET", "t1:other", "x"}), "+OK");
  EXPECT_EQ(a.NextPush(), Push("t1:other"));

  // The native door of a third node: put, delete.
  EXPECT_EQ(a.Call({"GET", "t1:k"}), "v2");
  ASSERT_OK(native.Put("t1:k", "v3").status());
  EXPECT_EQ(a.NextPush(), Push("t1:k"));
  EXPECT_EQ(a.Call({"GET", "t1:k"}), "v3");
  ASSERT_OK(native.Delete("t1:k").status());
  EXPECT_EQ(a.NextPush(), Push("t1:k"));

  // Increments (Paxos): RESP INCR through node 1, a native increment through node 2.
  EXPECT_EQ(a.Call({"GET", "t1:n"}), "(nil)");
  EXPECT_EQ(b.Call({"INCR", "t1:n"}), ":1");
  EXPECT_EQ(a.NextPush(), Push("t1:n"));
  EXPECT_EQ(a.Call({"GET", "t1:n"}), "1");
  ASSERT_OK(native.Increment("t1:n", 5).status());
  EXPECT_EQ(a.NextPush(), Push("t1:n"));

  // A split counter: its increments land on sub-counters, the push names the counter.
  ASSERT_OK(native.Increment("t1:hits", 1).status());
  ASSERT_OK(native.SplitCounter("", "t1:hits", 2).status());
  EXPECT_EQ(a.Call({"GET", "t1:hits"}), "1");
  auto inc = b.Call({"INCR", "t1:hits"});
  EXPECT_TRUE(inc.starts_with(":")) << inc;
  EXPECT_EQ(a.NextPush(), Push("t1:hits"));

  // A batch: one push per key, as Redis sends them in default mode.
  EXPECT_EQ(a.Call({"MGET", "t1:m1", "t1:m2", "t1:m3"}), "[(nil) (nil) (nil)]");
  EXPECT_EQ(b.Call({"MSET", "t1:m1", "1", "t1:m2", "2", "t1:unread", "3"}), "+OK");
  EXPECT_EQ(NextPushes(a, 2), (std::vector<std::string>{Push("t1:m1"), Push("t1:m2")}));

  // DEL through node 1 (a compare-and-swap), and a DEL that deletes nothing reports nothing.
  EXPECT_EQ(a.Call({"GET", "t1:m3"}), "(nil)");
  EXPECT_EQ(a.Call({"GET", "t1:m1"}), "1");
  EXPECT_EQ(b.Call({"DEL", "t1:m3"}), ":0");
  EXPECT_EQ(b.Call({"DEL", "t1:m1"}), ":1");
  EXPECT_EQ(a.NextPush(), Push("t1:m1"));

  // A key read with a time to live is invalidated when it expires (3 s: long enough that the
  // read before it is not late on a loaded machine).
  EXPECT_EQ(b.Call({"SET", "t1:ttl", "v", "PX", "3000"}), "+OK");
  EXPECT_EQ(a.Call({"GET", "t1:ttl"}), "v");
  EXPECT_EQ(a.NextPush(), Push("t1:ttl"));
  EXPECT_EQ(a.Call({"GET", "t1:ttl"}), "(nil)");

  EXPECT_EQ(a.queued_pushes(), 0u) << "a push came before the reply of a read";
}

// OPTIN: only the read after CLIENT CACHING yes is tracked; OPTOUT: every read but the one after
// CLIENT CACHING no.
TEST_F(RespTrackingTest, OptinAndOptout) {
  RespConn in(Resp(0));
  RespConn out(Resp(0));
  RespConn b(Resp(1));
  ASSERT_EQ(in.Call({"CLIENT", "TRACKING", "on", "OPTIN"}), "+OK");
  ASSERT_EQ(out.Call({"CLIENT", "TRACKING", "on", "OPTOUT"}), "+OK");

  EXPECT_EQ(in.Call({"GET", "t2:a"}), "(nil)");
  EXPECT_EQ(in.Call({"CLIENT", "CACHING", "yes"}), "+OK");
  EXPECT_EQ(in.Call({"GET", "t2:b"}), "(nil)");
  EXPECT_EQ(in.Call({"GET", "t2:c"}), "(nil)");  // CACHING applies to one command

  EXPECT_EQ(out.Call({"CLIENT", "CACHING", "no"}), "+OK");
  EXPECT_EQ(out.Call({"GET", "t2:a"}), "(nil)");
  EXPECT_EQ(out.Call({"GET", "t2:c"}), "(nil)");

  EXPECT_EQ(b.Call({"MSET", "t2:a", "1", "t2:b", "1", "t2:c", "1"}), "+OK");
  EXPECT_EQ(in.NextPush(), Push("t2:b"));
  EXPECT_EQ(out.NextPush(), Push("t2:c"));
  // Nothing else came: the next push of each is a later key.
  EXPECT_EQ(in.Call({"CLIENT", "CACHING", "yes"}), "+OK");
  EXPECT_EQ(in.Call({"GET", "t2:z"}), "(nil)");
  EXPECT_EQ(out.Call({"GET", "t2:z"}), "(nil)");
  EXPECT_EQ(b.Call({"SET", "t2:z", "1"}), "+OK");
  EXPECT_EQ(in.NextPush(), Push("t2:z"));
  EXPECT_EQ(out.NextPush(), Push("t2:z"));
  EXPECT_EQ(in.Call({"CLIENT", "TRACKINGINFO"}), "[flags [on optin] redirect :0 prefixes []]");
}

// BCAST: every change under a prefix, one push per prefix; other keys never.
TEST_F(RespTrackingTest, BcastWithPrefixes) {
  RespConn a(Resp(0));
  RespConn b(Resp(1));
  Client native(At(*cluster_, 2));
  ASSERT_EQ(
      a.Call({"CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "t3:user:", "PREFIX", "t3:cart:"}),
      "+OK");
  EXPECT_EQ(b.Call({"MSET", "t3:user:1", "a", "t3:other", "b", "t3:cart:9", "c", "t3:user:2", "d"}),
            "+OK");
  EXPECT_EQ(NextPushes(a, 2),
            (std::vector<std::string>{Push("t3:cart:9"), Push("t3:user:1 t3:user:2")}));
  EXPECT_EQ(b.Call({"SET", "t3:other", "x"}), "+OK");
  ASSERT_OK(native.Put("t3:user:3", "y").status());
  EXPECT_EQ(a.NextPush(), Push("t3:user:3"));
  EXPECT_EQ(a.Call({"CLIENT", "TRACKINGINFO"}),
            "[flags [on bcast] redirect :0 prefixes [t3:cart: t3:user:]]");
}

// NOLOOP: a connection's own writes are not reported to it (and forget the key); without it,
// they are, after the write's reply, as Redis 7 does.
TEST_F(RespTrackingTest, NoLoopSkipsOwnWrites) {
  RespConn quiet(Resp(0));
  RespConn loud(Resp(0));
  RespConn b(Resp(1));
  ASSERT_EQ(quiet.Call({"CLIENT", "TRACKING", "on", "NOLOOP"}), "+OK");
  ASSERT_EQ(loud.Call({"CLIENT", "TRACKING", "on"}), "+OK");

  EXPECT_EQ(quiet.Call({"GET", "t4:k"}), "(nil)");
  EXPECT_EQ(quiet.Call({"SET", "t4:k", "mine"}), "+OK");
  EXPECT_EQ(b.Call({"SET", "t4:k", "theirs"}), "+OK");  // forgotten by the own write
  EXPECT_EQ(quiet.Call({"GET", "t4:s"}), "(nil)");
  EXPECT_EQ(b.Call({"SET", "t4:s", "1"}), "+OK");
  EXPECT_EQ(quiet.NextPush(), Push("t4:s"));

  EXPECT_EQ(loud.Call({"GET", "t4:j"}), "(nil)");
  EXPECT_EQ(loud.Call({"SET", "t4:j", "mine"}), "+OK");
  EXPECT_EQ(loud.queued_pushes(), 0u) << "the push came before the write's reply";
  EXPECT_EQ(loud.NextPush(), Push("t4:j"));
}

// REDIRECT: a RESP2 connection (which cannot receive pushes) tracks with its invalidations sent
// to a RESP3 one; when that one goes, the tracking connection hears tracking-redir-broken.
// Without REDIRECT, RESP2 tracking is refused with the reason.
TEST_F(RespTrackingTest, RedirectAndResp2) {
  RespConn target(Resp(0));
  RespConn resp2(Resp(0), 2);
  RespConn b(Resp(1));
  const std::string id = target.Call({"CLIENT", "ID"}).substr(1);
  const std::string refused = resp2.Call({"CLIENT", "TRACKING", "on"});
  EXPECT_TRUE(refused.starts_with("-ERR client tracking needs RESP3")) << refused;
  EXPECT_EQ(resp2.Call({"CLIENT", "TRACKING", "on", "REDIRECT", "999999"}),
            "-ERR The client ID you want redirect to does not exist");
  ASSERT_EQ(resp2.Call({"CLIENT", "TRACKING", "on", "REDIRECT", id}), "+OK");
  EXPECT_EQ(resp2.Call({"CLIENT", "GETREDIR"}), ":" + id);
  EXPECT_EQ(resp2.Call({"CLIENT", "TRACKINGINFO"}),
            "[flags [on] redirect :" + id + " prefixes []]");
  EXPECT_EQ(resp2.Call({"GET", "t5:k"}), "(nil)");
  EXPECT_EQ(b.Call({"SET", "t5:k", "1"}), "+OK");
  EXPECT_EQ(target.NextPush(), Push("t5:k"));

  // A redirect to a RESP2 connection is refused: nothing could be sent there.
  RespConn other(Resp(0), 2);
  const std::string resp2_id = resp2.Call({"CLIENT", "ID"}).substr(1);
  const std::string to_resp2 = other.Call({"CLIENT", "TRACKING", "on", "REDIRECT", resp2_id});
  EXPECT_TRUE(to_resp2.starts_with("-ERR the client ID you want redirect to speaks RESP2"))
      << to_resp2;

  // The target goes: a RESP3 tracker redirecting there hears so.
  RespConn tracker(Resp(0));
  ASSERT_EQ(tracker.Call({"CLIENT", "TRACKING", "on", "REDIRECT", id}), "+OK");
  EXPECT_EQ(tracker.Call({"GET", "t5:j"}), "(nil)");
  target.Close();
  ASSERT_OK(WaitUntil(
      [&] {
        return tracker.Call({"CLIENT", "LIST"}).find("id=" + id + " ") == std::string::npos;
      },
      10s, "the redirect target's connection to close"));
  EXPECT_EQ(b.Call({"SET", "t5:j", "1"}), "+OK");
  EXPECT_EQ(tracker.NextPush(), ">[tracking-redir-broken :" + id + "]");
  EXPECT_EQ(tracker.Call({"CLIENT", "TRACKINGINFO"}),
            "[flags [on broken_redirect] redirect :" + id + " prefixes []]");
}

// FLUSHDB through another node: every tracking connection drops everything (null invalidation),
// whatever keyspace it reads (tracking goes by key names, as Redis's ignores databases).
TEST_F(RespTrackingTest, FlushSendsTheNullInvalidation) {
  Client native(At(*cluster_, 0));
  KeyspaceSpec spec;
  spec.name = "flushed";
  ASSERT_OK(native.CreateKeyspace(spec, /*if_not_exists=*/true).status());
  RespConn a(Resp(0));
  RespConn bcast(Resp(2));
  RespConn b(Resp(1));
  ASSERT_OK(WaitUntil(
      [&] {
        return b.Call({"CAIRN.KEYSPACE", "flushed"}) == "flushed";
      },
      10s, "node 1 to know keyspace flushed"));
  ASSERT_EQ(a.Call({"CLIENT", "TRACKING", "on"}), "+OK");
  ASSERT_EQ(bcast.Call({"CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "t6:"}), "+OK");
  EXPECT_EQ(a.Call({"GET", "t6:k"}), "(nil)");
  EXPECT_EQ(b.Call({"FLUSHDB"}), "+OK");
  EXPECT_EQ(a.NextPush(), ">[invalidate (nil)]");
  EXPECT_EQ(bcast.NextPush(), ">[invalidate (nil)]");
}

// node-redis's client-side cache: two reads cost one server read; a write through another node
// invalidates; the next read goes to the server (tests/integration/resp_tracking.js).
TEST_F(RespTrackingTest, NodeRedisClientSideCache) {
  if (!HaveProgram("/usr/bin/node")) GTEST_SKIP() << "node is not installed";
  // scripts/test installs the redis package there (npm ci, pinned by tests/node/package-lock.json).
  const std::string node_path =
      "NODE_PATH=" + std::string(CAIRN_SOURCE_DIR) + "/tests/node/node_modules";
  auto probe = RunCommand({"/usr/bin/env", node_path, "/usr/bin/node", "-e",
                           "if (!require('redis').BasicClientSideCache) process.exit(1)"});
  if (probe.exit_code != 0) {
    GTEST_SKIP() << "the redis package (node-redis 5, with clientSideCache) is not installed for "
                    "node (scripts/test installs it into tests/node with npm ci; the test itself "
                    "never downloads)";
  }
  const std::string script = std::string(CAIRN_SOURCE_DIR) + "/tests/integration/resp_tracking.js";
  auto r = RunCommand({"/usr/bin/env", node_path, "/usr/bin/node", script, Host(Resp(0)),
                       Port(Resp(0)), Port(Resp(1)), Port(cluster_->node(0).http_address())},
                      "", 60s);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("all checks passed"), std::string::npos) << r.out << r.err;
}

// A child process with its stdin and stdout on pipes, killed by pid when it goes.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv) {
    int in[2], out[2];
    if (::pipe(in) != 0 || ::pipe(out) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::dup2(out[1], 2);
      ::close(in[1]);
      ::close(out[0]);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
  }
  ~Child() {
    if (stdin_ >= 0) ::close(stdin_);
    if (stdout_ >= 0) ::close(stdout_);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  void Write(const std::string& s) { (void)!::write(stdin_, s.data(), s.size()); }
  // Everything it printed so far, waiting up to `wait` until `want` is in it.
  std::string OutputWith(const std::string& want, std::chrono::milliseconds wait = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (output_.find(want) == std::string::npos) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd pfd{stdout_, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(stdout_, buf, sizeof buf);
      if (n <= 0) break;  // it exited
      output_.append(buf, static_cast<size_t>(n));
    }
    return output_;
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1, stdout_ = -1;
  std::string output_;
};

// redis-cli in RESP3 mode parses every tracking reply and prints the invalidation of a write
// made through another node, as it does with Redis ("-> invalidate: 'key'").
TEST_F(RespTrackingTest, RedisCliResp3PrintsInvalidations) {
  if (!HaveProgram("/usr/bin/redis-cli")) {
    GTEST_SKIP() << "redis-cli is not installed (apt-get install redis-tools)";
  }
  if (!HaveProgram("/usr/bin/stdbuf")) GTEST_SKIP() << "stdbuf (coreutils) is not installed";
  // stdbuf: redis-cli's output to a pipe would otherwise wait in its buffer until it exits.
  Child cli({"/usr/bin/stdbuf", "-o0", "/usr/bin/redis-cli", "-3", "-h", Host(Resp(0)), "-p",
             Port(Resp(0)), "--no-raw", "--show-pushes", "yes"});
  cli.Write("CLIENT TRACKING on\nGET t7:k\n");
  std::string out = cli.OutputWith("(nil)\n");
  EXPECT_EQ(out, "OK\n(nil)\n");
  RespConn b(Resp(1));
  const double pushed = PageMetric(*cluster_, 0, "cairn_resp_invalidated_keys_total");
  ASSERT_GE(pushed, 0);
  EXPECT_EQ(b.Call({"SET", "t7:k", "v"}), "+OK");
  // redis-cli prints a push when it reads the next reply: the push must be out first.
  ASSERT_OK(WaitUntil(
      [&] { return PageMetric(*cluster_, 0, "cairn_resp_invalidated_keys_total") > pushed; }, 10s,
      "node 0 to push the invalidation"));
  cli.Write("CLIENT TRACKINGINFO\nCLIENT GETREDIR\nGET t7:k\nPING\n");
  out = cli.OutputWith("PONG\n");
  EXPECT_EQ(out,
            "OK\n(nil)\n"
            "-> invalidate: 't7:k'\n"
            "1# \"flags\" => 1~ \"on\"\n"
            "2# \"redirect\" => (integer) 0\n"
            "3# \"prefixes\" => (empty array)\n"
            "(integer) 0\n"
            "\"v\"\n"
            "PONG\n");
}

// Nodes without tracking clients get no invalidation traffic: none at all while nobody tracks,
// then only the node with the tracking client receives any.
TEST(RespTrackingTrafficTest, OnlyNodesWithTrackingClientsReceiveInvalidations) {
  TempDir dir;
  auto cluster = StartCluster(dir.Sub("cluster"));
  ASSERT_NE(cluster, nullptr);
  auto write_everywhere = [&](const std::string& prefix) {
    for (size_t node = 0; node < 3; ++node) {
      RespConn w(cluster->node(node).resp_address());
      for (int i = 0; i < 10; ++i) {
        EXPECT_EQ(w.Call({"SET", prefix + std::to_string(node) + ":" + std::to_string(i), "v"}),
                  "+OK");
      }
    }
  };
  write_everywhere("before:");
  for (size_t node = 0; node < 3; ++node) {
    EXPECT_EQ(Counter(*cluster, node, "tracking.messages_sent"), 0u) << "node " << node;
    EXPECT_EQ(Counter(*cluster, node, "tracking.messages_received"), 0u) << "node " << node;
  }

  RespConn a(cluster->node(0).resp_address());
  ASSERT_EQ(a.Call({"CLIENT", "TRACKING", "on"}), "+OK");
  write_everywhere("after:");
  // Every write through nodes 1 and 2 was sent to node 0 (one message per reactor turn).
  ASSERT_OK(WaitUntil([&] { return Counter(*cluster, 0, "tracking.keys_received") == 20; }, 10s,
                      "node 0 to receive the 20 keys written through nodes 1 and 2"));
  EXPECT_GT(Counter(*cluster, 1, "tracking.messages_sent"), 0u);
  EXPECT_GT(Counter(*cluster, 2, "tracking.messages_sent"), 0u);
  EXPECT_EQ(Counter(*cluster, 0, "tracking.messages_sent"), 0u) << "nobody else tracks";
  EXPECT_EQ(Counter(*cluster, 1, "tracking.messages_received"), 0u);
  EXPECT_EQ(Counter(*cluster, 2, "tracking.messages_received"), 0u);

  // Once the tracking connection closes, the others stop sending.
  a.Close();
  ASSERT_OK(WaitUntil(
      [&] {
        const uint64_t before = Counter(*cluster, 1, "tracking.messages_sent");
        RespConn w(cluster->node(1).resp_address());
        w.Call({"SET", "late", "v"});
        w.Call({"PING"});
        return Counter(*cluster, 1, "tracking.messages_sent") == before;
      },
      20s, "node 1 to stop sending changed keys"));
}

// A tracking node that does not answer (SIGSTOP) holds no write: the invalidation is sent after
// the answer and never waited for. Once it runs again its client hears of the change (the key,
// or a flush for a message that was lost).
TEST(RespTrackingTrafficTest, APausedTrackingNodeDoesNotHoldWrites) {
  TempDir dir;
  auto cluster = StartCluster(dir.Sub("cluster"));
  ASSERT_NE(cluster, nullptr);
  RespConn a(cluster->node(0).resp_address());
  ASSERT_EQ(a.Call({"CLIENT", "TRACKING", "on"}), "+OK");
  EXPECT_EQ(a.Call({"GET", "p:k"}), "(nil)");
  RespConn b(cluster->node(1).resp_address());
  EXPECT_EQ(b.Call({"SET", "p:warm", "v"}), "+OK");

  cluster->node(0).Pause();
  const auto start = std::chrono::steady_clock::now();
  const std::string set = b.Call({"SET", "p:k", "v"});
  const auto took = std::chrono::steady_clock::now() - start;
  cluster->node(0).Resume();
  EXPECT_EQ(set, "+OK");
  // A keys-changed message waits up to 2 s for its answer: the write must not have waited for it.
  EXPECT_LT(took, 1500ms) << "the write waited for the paused tracking node";
  const std::string push = a.NextPush(20s);
  EXPECT_TRUE(push == Push("p:k") || push == ">[invalidate (nil)]") << push;
}

// What a lost invalidation costs is a whole cache, never a stale value kept for good: a node
// that dies (it may have acknowledged writes it never reported) makes the tracking nodes' clients
// drop everything once it is seen DOWN, and again once it is back (told again that they track).
TEST(RespTrackingTrafficTest, ANodeThatDiesOrRestartsFlushesTrackingClients) {
  TempDir dir;
  auto cluster = StartCluster(dir.Sub("cluster"));
  ASSERT_NE(cluster, nullptr);
  RespConn a(cluster->node(0).resp_address());
  ASSERT_EQ(a.Call({"CLIENT", "TRACKING", "on"}), "+OK");
  EXPECT_EQ(a.Call({"GET", "r:k"}), "(nil)");
  cluster->node(1).Kill9();
  EXPECT_EQ(a.NextPush(30s), ">[invalidate (nil)]") << "when node 1 is seen DOWN";
  EXPECT_EQ(a.Call({"GET", "r:k"}), "(nil)");
  ASSERT_OK(cluster->Restart(1));
  EXPECT_EQ(a.NextPush(30s), ">[invalidate (nil)]") << "when node 1 is back and told again";
  // And node 1 reports its writes again.
  EXPECT_EQ(a.Call({"GET", "r:k"}), "(nil)");
  ASSERT_OK(WaitUntil(
      [&] {
        RespConn w(cluster->node(1).resp_address());
        return w.Call({"SET", "r:k", "v"}) == "+OK";
      },
      20s, "node 1 to take writes"));
  EXPECT_EQ(a.NextPush(), Push("r:k"));
}

}  // namespace
}  // namespace cairn::testing
