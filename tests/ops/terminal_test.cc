// Terminal manners: what the tools print at a terminal (a pseudo-terminal here) and what they
// print into a pipe. `cairn get` ends its output with a newline at a terminal and gives the exact
// bytes into a pipe; cairn-bench draws a progress line for its load phase at a terminal only.
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/harness/process.h"
#include "tests/support/temp_dir.h"

namespace cairn::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

struct TerminalRun {
  int exit_code = -1;
  std::string out;  // stdout and stderr, as the terminal shows them (\n arrives as \r\n)
};

// Runs `argv` with a pseudo-terminal as its stdin, stdout and stderr, until it exits (killed
// after `timeout`, exit code -1).
TerminalRun RunInTerminal(std::vector<std::string> argv, std::chrono::milliseconds timeout = 60s) {
  TerminalRun run;
  int master = -1;
  winsize size{};
  size.ws_col = 160;
  size.ws_row = 40;
  const pid_t pid = ::forkpty(&master, nullptr, nullptr, &size);
  if (pid < 0) return run;
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[4096];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) {
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = ::read(master, buffer, sizeof buffer);
    if (n > 0) {
      run.out.append(buffer, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;  // EIO: the child closed the terminal (it exited)
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(master);
  if (WIFEXITED(status) && std::chrono::steady_clock::now() < deadline) {
    run.exit_code = WEXITSTATUS(status);
  }
  return run;
}

class TerminalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto node = CairndProcess::Start({.data_dir = dir_.path().string() + "/node"});
    ASSERT_TRUE(node.ok()) << node.status().ToString();
    node_ = std::move(*node);
  }
  CommandResult Cli(std::vector<std::string> args) {
    args.insert(args.begin(), {CliPath(), "--server", node_->address()});
    return RunCommand(args);
  }

  TempDir dir_;
  std::unique_ptr<CairndProcess> node_;
};

TEST_F(TerminalTest, GetEndsWithANewlineAtATerminalAndGivesExactBytesToAPipe) {
  ASSERT_EQ(Cli({"put", "plain", "value"}).exit_code, 0);
  ASSERT_EQ(Cli({"put", "ending", "line\n"}).exit_code, 0);

  TerminalRun plain = RunInTerminal({CliPath(), "--server", node_->address(), "get", "plain"});
  EXPECT_EQ(plain.exit_code, 0);
  EXPECT_EQ(plain.out, "value\r\n");  // the terminal turns \n into \r\n
  // A value that ends its own line gets no second one.
  TerminalRun ending = RunInTerminal({CliPath(), "--server", node_->address(), "get", "ending"});
  EXPECT_EQ(ending.out, "line\r\n");

  EXPECT_EQ(Cli({"get", "plain"}).out, "value");  // piped: the value's bytes, nothing more
  EXPECT_EQ(Cli({"get", "ending"}).out, "line\n");
}

TEST_F(TerminalTest, BenchShowsItsLoadProgressAtATerminalOnly) {
  const std::vector<std::string> args = {
      CAIRN_BENCH_BIN, "--server", node_->address(), "--workload", "c",        "--keys", "3000",
      "--clients",     "4",        "--duration",     "0.2",        "--warmup", "0"};
  TerminalRun at_terminal = RunInTerminal(args);
  ASSERT_EQ(at_terminal.exit_code, 0) << at_terminal.out;
  // The final state of the line, drawn in place (\r) and kept with the time it took.
  EXPECT_THAT(at_terminal.out, HasSubstr("\rloading  3,000/3,000 records"));
  EXPECT_THAT(at_terminal.out, HasSubstr("(100%)"));
  EXPECT_THAT(at_terminal.out, HasSubstr("done in"));

  CommandResult piped = RunCommand(args);
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_THAT(piped.err, HasSubstr("loading 3000 records...\n"));
  EXPECT_THAT(piped.err + piped.out, Not(HasSubstr("\r")));
}

}  // namespace
}  // namespace cairn::testing
