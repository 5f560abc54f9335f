// No request may stall a reactor (issue #13): while one connection runs a command whose cost grows
// with the data or the pattern, PING answers within 50 ms on every other connection, on every
// reactor. Real cairnd, real sockets; the heavy command and the pings run at the same time.
//
// Measured before the fix (this test against the cairnd of 3cc4484, --threads 2, 2 cores; the
// slowest PING of each of three runs), and after it:
//   KEYS "a*" + 8,000 a's + "b" over 20 keys of 16,004 a's     2,024 / 1,981 / 2,001 ms    8 ms
//   SCAN 0 MATCH (the same) COUNT 100                          1,963 / 1,922 / 1,951 ms    9 ms
//   MGET of 100,000 keys                                         325 /   103 /   100 ms   12 ms
//   DEL of 20,000 absent keys                                    360 /   348 /   283 ms    5 ms
//   DEL of 20,000 keys pipelined after another DEL of 20,000     404 /   359 /   295 ms    8 ms
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tests/harness/process.h"
#include "tests/support/resp_command.h"
#include "tests/support/socket_read.h"
#include "tests/support/temp_dir.h"

namespace cairn::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kReactors = 2;
// Connections are handed to the reactors in turn, so any kReactors consecutive ones cover them
// all; two rounds of them make sure.
constexpr int kPingers = 2 * kReactors;
constexpr double kMaxPingMs = 50;

// Under ASan and UBSan every step costs 3 to 30 times more (the glob loop the most), so no time
// bound holds there: the sanitizer build runs the same commands over less data, checks their
// replies (the memory safety of the sliced paths is what it is for) and prints the PING
// figures without judging them.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kTimed = false;
constexpr size_t kLongKeys = 1;
constexpr size_t kManyKeys = 10'000;
#else
constexpr bool kTimed = true;
constexpr size_t kLongKeys = 20;       // of 16 KiB, for the costly pattern
constexpr size_t kManyKeys = 100'000;  // for MGET; DEL takes a fifth of it
#endif

// The length of the complete RESP reply at the start of `b`, or npos while it is incomplete.
size_t ReplyLength(std::string_view b, size_t at = 0) {
  const size_t eol = b.find("\r\n", at);
  if (eol == std::string_view::npos || at >= b.size()) return std::string_view::npos;
  const char type = b[at];
  if (type != '$' && type != '*') return eol + 2 - at;
  const long n = std::stol(std::string(b.substr(at + 1, eol - at - 1)));
  size_t end = eol + 2;
  if (type == '$') {
    if (n < 0) return end - at;
    end += static_cast<size_t>(n) + 2;
    return end <= b.size() ? end - at : std::string_view::npos;
  }
  for (long i = 0; i < n; ++i) {
    const size_t len = ReplyLength(b, end);
    if (len == std::string_view::npos) return len;
    end += len;
  }
  return end - at;
}

// A blocking loopback connection that sends commands and reads whole replies.
class Connection {
 public:
  explicit Connection(const std::string& address)
      : fd_(ConnectTcp(address)), connected_(fd_ >= 0) {}
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool connected() const { return connected_; }
  void Send(const std::string& bytes) { SendAll(fd_, bytes); }
  // One whole reply, or what arrived of it when `wait` passed or the server closed.
  std::string Reply(std::chrono::milliseconds wait) {
    SocketRead got = ReadUntil(
        fd_, wait, [](const std::string& b) { return ReplyLength(b) != std::string::npos; },
        std::move(pending_));
    pending_.clear();
    const size_t len = ReplyLength(got.bytes);
    if (len != std::string::npos && len < got.bytes.size()) {
      pending_ = got.bytes.substr(len);
      got.bytes.resize(len);
    }
    return std::move(got.bytes);
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string pending_;
};

struct StallRun {
  std::string reply;       // the heavy command's reply (its first 200 bytes)
  double seconds = 0;      // how long the heavy command took
  double max_ping_ms = 0;  // the slowest PING on any connection meanwhile
  std::string per_pinger;  // "max/count" per connection, for the failure message
};

class RespStallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = CairndProcess::Start(
        {.data_dir = dir_.Sub("node"),
         .extra_args = {"--resp", "127.0.0.1:0", "--threads", std::to_string(kReactors)}});
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    server_ = std::move(*p);
    resp_ = server_->resp_address();
    ASSERT_FALSE(resp_.empty()) << "cairnd did not report its RESP address";
  }
  void TearDown() override {
    if (server_ && HasFailure()) std::cerr << "server log:\n" << server_->Log();
  }

  void Run(const std::string& command, std::string_view want) {
    Connection c(resp_);
    ASSERT_TRUE(c.connected());
    c.Send(command);
    ASSERT_EQ(c.Reply(60s).substr(0, want.size()), want);
  }

  // Sends `command` (`replies` pipelined commands) on a connection of its own while kPingers other
  // connections PING in a loop, each waiting for its PONG before the next, until every reply
  // has come.
  StallRun PingWhile(const std::string& command, int replies) {
    StallRun run;
    std::atomic<bool> done{false};
    std::atomic<int> warmed{0};
    std::vector<double> max_ms(kPingers, 0);
    std::vector<int> count(kPingers, 0);
    std::vector<std::string> errors(kPingers);
    std::vector<std::thread> pingers;
    std::vector<std::unique_ptr<Connection>> conns;
    for (int i = 0; i < kPingers; ++i) conns.push_back(std::make_unique<Connection>(resp_));
    for (int i = 0; i < kPingers; ++i) {
      pingers.emplace_back([&, i] {
        Connection& c = *conns[i];
        while (!done) {
          const auto start = Clock::now();
          c.Send("PING\r\n");
          const std::string reply = c.Reply(30s);
          const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
          if (reply != "+PONG\r\n") {
            errors[i] = fmt::format("PING replied {:?}", reply);
            return;
          }
          max_ms[i] = std::max(max_ms[i], ms);
          if (++count[i] == 1) ++warmed;
          // Pacing, not waiting for anything: a PING per millisecond and connection measures
          // the reactors without keeping both cores of a small machine busy with PINGs alone.
          std::this_thread::sleep_for(1ms);
        }
      });
    }
    // Every pinger has had its first PONG before the command starts (a condition, not a sleep).
    const auto warm_deadline = Clock::now() + 10s;
    while (warmed < kPingers && Clock::now() < warm_deadline) std::this_thread::yield();
    Connection heavy(resp_);
    const auto start = Clock::now();
    heavy.Send(command);
    for (int i = 0; i < replies; ++i) run.reply += heavy.Reply(120s).substr(0, 200);
    run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    done = true;
    for (auto& t : pingers) t.join();
    for (int i = 0; i < kPingers; ++i) {
      EXPECT_EQ(errors[i], "") << "pinger " << i;
      EXPECT_GT(count[i], 0) << "pinger " << i << " never had a PONG";
      run.max_ping_ms = std::max(run.max_ping_ms, max_ms[i]);
      run.per_pinger += fmt::format("{}{:.1f}/{}", i ? " " : "", max_ms[i], count[i]);
    }
    return run;
  }

  // PingWhile, asserting the slowest PING within kMaxPingMs. A reactor held by the command stalls
  // every run the same way; a machine busy with other work can delay one PING by itself, so a run
  // over the bound is tried again, twice at most, and all runs are printed.
  void ExpectNoStall(const std::string& what, const std::string& command,
                     std::string_view want_reply, int replies = 1) {
    std::string runs;
    for (int attempt = 0; attempt < 3; ++attempt) {
      StallRun run = PingWhile(command, replies);
      EXPECT_EQ(run.reply.substr(0, want_reply.size()), want_reply) << what;
      runs += fmt::format(
          "\n  run {}: {} took {:.2f} s; PING max {:.1f} ms (max/PINGs per "
          "connection: {})",
          attempt + 1, what, run.seconds, run.max_ping_ms, run.per_pinger);
      if (run.max_ping_ms <= kMaxPingMs || !kTimed) {
        std::printf("%s\n", runs.c_str() + 1);
        return;
      }
    }
    ADD_FAILURE() << "a PING waited over " << kMaxPingMs << " ms in every run:" << runs;
  }

  TempDir dir_;
  std::unique_ptr<CairndProcess> server_;
  std::string resp_;
};

std::vector<std::string> Keys(const std::string& prefix, size_t n) {
  std::vector<std::string> keys;
  for (size_t i = 0; i < n; ++i) keys.push_back(fmt::format("{}{:06}", prefix, i));
  return keys;
}

// Matching is O(pattern x key) at worst: this pattern costs about 0.1 s against each 16 KiB key
// of a's, and one page of the scan used to be matched in one go, holding its reactor for the
// whole command.
TEST_F(RespStallTest, KeysWithACostlyPatternLeavesEveryReactorAnswering) {
  std::vector<std::string> mset = {"MSET"};
  for (const std::string& k : Keys(std::string(16'000, 'a'), kLongKeys)) {
    mset.push_back(k);
    mset.push_back("v");
  }
  Run(Command(mset), "+OK");
  const std::string pattern = "a*" + std::string(8'000, 'a') + "b";
  ExpectNoStall("KEYS <costly pattern>", Command({"KEYS", pattern}), "*0\r\n");
  // SCAN MATCH matches the same way, within one page.
  ExpectNoStall("SCAN 0 MATCH <costly pattern> COUNT 100",
                Command({"SCAN", "0", "MATCH", pattern, "COUNT", "100"}), "*2\r\n$1\r\n0\r\n");
}

// A batch read of keys this node holds answers each read without waiting; the batch used to be
// read in one step of the reactor.
TEST_F(RespStallTest, LargeMgetLeavesEveryReactorAnswering) {
  const std::vector<std::string> keys = Keys("key:", kManyKeys);
  for (size_t at = 0; at < keys.size(); at += 10'000) {
    std::vector<std::string> mset = {"MSET"};
    for (size_t i = at; i < at + 10'000; ++i) {
      mset.push_back(keys[i]);
      mset.push_back("v");
    }
    Run(Command(mset), "+OK");
  }
  std::vector<std::string> mget = {"MGET"};
  mget.insert(mget.end(), keys.begin(), keys.end());
  ExpectNoStall(fmt::format("MGET of {} keys", kManyKeys), Command(mget),
                fmt::format("*{}\r\n", kManyKeys));
}

// DEL runs one compare-and-swap per key; it used to start all of them in one turn of the reactor.
TEST_F(RespStallTest, DelOfManyKeysLeavesEveryReactorAnswering) {
  std::vector<std::string> del = {"DEL"};
  const std::vector<std::string> keys = Keys("gone:", kManyKeys / 5);
  del.insert(del.end(), keys.begin(), keys.end());
  ExpectNoStall(fmt::format("DEL of {} absent keys", keys.size()), Command(del), ":0\r\n");
}

// A pipelined command waits for a running one that shares a key with it; finding out compared
// every key of one with every key of the other (two DELs of 20,000 keys: 400 million
// comparisons in one step).
TEST_F(RespStallTest, PipelinedCommandsOfManyKeysLeaveEveryReactorAnswering) {
  std::vector<std::string> first = {"DEL"}, second = {"DEL"};
  for (const std::string& k : Keys("x:", kManyKeys / 5)) first.push_back(k);
  for (const std::string& k : Keys("y:", kManyKeys / 5)) second.push_back(k);
  ExpectNoStall(fmt::format("DEL of {} keys pipelined after another", kManyKeys / 5),
                Command(first) + Command(second), ":0\r\n:0\r\n", 2);
}

}  // namespace
}  // namespace cairn::testing
