#include "tests/harness/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>

#include <fmt/format.h>

#include "tests/support/wait_until.h"

namespace cairn::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<char*> Argv(std::vector<std::string>& args) {
  std::vector<char*> out;
  for (auto& a : args) out.push_back(a.data());
  out.push_back(nullptr);
  return out;
}

// In the child after fork: die with the parent, then exec.
[[noreturn]] void Exec(std::vector<std::string> args) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  auto argv = Argv(args);
  ::execv(argv[0], argv.data());
  std::fprintf(stderr, "exec %s: %s\n", argv[0], std::strerror(errno));
  ::_exit(127);
}

}  // namespace

// The environment may name other binaries (a copy kept while the build tree is rebuilt, as in
// the loops of docs/testing.md); the build's own by default.
std::string CairndPath() {
  const char* path = std::getenv("CAIRN_TEST_CAIRND");
  return path != nullptr && *path != '\0' ? path : CAIRND_BIN;
}
std::string CliPath() {
  const char* path = std::getenv("CAIRN_TEST_CLI");
  return path != nullptr && *path != '\0' ? path : CAIRN_CLI_BIN;
}

Result<std::unique_ptr<CairndProcess>> CairndProcess::Start(Options options) {
  std::unique_ptr<CairndProcess> p(new CairndProcess());
  p->options_ = std::move(options);
  p->log_path_ = p->options_.data_dir + ".log";
  // CAIRN_TEST_LOG_LEVEL=debug makes every node trace its Paxos steps (docs/testing.md).
  const char* level = std::getenv("CAIRN_TEST_LOG_LEVEL");
  std::vector<std::string> args = {CairndPath(),
                                   "--data-dir",
                                   p->options_.data_dir,
                                   "--listen",
                                   p->options_.listen,
                                   "--log-level",
                                   level != nullptr && *level != '\0' ? level : "info"};
  args.insert(args.end(), p->options_.extra_args.begin(), p->options_.extra_args.end());

  int netns_fd = -1;
  if (!p->options_.netns.empty()) {
    const std::string path = "/run/netns/" + p->options_.netns;
    netns_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (netns_fd < 0) {
      return Status::Unavailable(fmt::format("open {}: {}", path, std::strerror(errno)));
    }
  }
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    if (netns_fd >= 0) ::close(netns_fd);
    return Status::Internal("pipe failed");
  }
  const int log_fd = ::open(p->log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const pid_t pid = ::fork();
  if (pid < 0) {
    for (int fd : {out[0], out[1], log_fd, netns_fd}) {
      if (fd >= 0) ::close(fd);
    }
    return Status::Internal("fork failed");
  }
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    if (log_fd >= 0) ::dup2(log_fd, STDERR_FILENO);
    if (netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0) {
      std::fprintf(stderr, "setns %s: %s\n", p->options_.netns.c_str(), std::strerror(errno));
      ::_exit(127);
    }
    Exec(args);
  }
  ::close(out[1]);
  if (log_fd >= 0) ::close(log_fd);
  if (netns_fd >= 0) ::close(netns_fd);
  p->pid_ = pid;

  // Wait for "... node N listening on HOST:PORT ...".
  std::string seen;
  const auto deadline = Clock::now() + p->options_.start_timeout;
  static const std::regex kReady(R"(node (\d+) listening on ([0-9.]+:\d+))");
  std::smatch m;
  while (!std::regex_search(seen, m, kReady)) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd pfd{out[0], POLLIN, 0};
    if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
      ::close(out[0]);
      return Status::Unavailable(fmt::format("cairnd did not start in time; log:\n{}", p->Log()));
    }
    char buf[512];
    const ssize_t n = ::read(out[0], buf, sizeof(buf));
    if (n <= 0) {
      ::close(out[0]);
      p->Reap(true);
      return Status::Unavailable(fmt::format("cairnd exited during start-up; log:\n{}", p->Log()));
    }
    seen.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  p->node_id_ = static_cast<uint32_t>(std::stoul(m[1]));
  p->address_ = m[2];
  static const std::regex kHttp(R"(, http on ([0-9.]+:\d+))");
  if (std::smatch h; std::regex_search(seen, h, kHttp)) p->http_address_ = h[1];
  // Printed before the line above when cairnd runs with --resp.
  static const std::regex kResp(R"(RESP \(Redis protocol\) on ([0-9.]+:\d+))");
  if (std::smatch r; std::regex_search(seen, r, kResp)) p->resp_address_ = r[1];
  return p;
}

CairndProcess::~CairndProcess() {
  if (pid_ > 0) Kill9();
}

int CairndProcess::Reap(bool block) {
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  if (r != pid_) return -1;
  pid_ = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::optional<int> CairndProcess::Exited() {
  if (pid_ <= 0) return exit_code_;
  const int code = Reap(false);
  if (pid_ > 0) return std::nullopt;
  exit_code_ = code;
  return code;
}

int CairndProcess::Stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGCONT);  // a paused process cannot handle SIGTERM
  ::kill(pid_, SIGTERM);
  int code = -1;
  const Status exited = WaitUntil(
      [&] {
        code = Reap(false);
        return pid_ <= 0;
      },
      grace, "cairnd to exit after SIGTERM");
  if (exited.ok()) return code;
  ::kill(pid_, SIGKILL);
  return Reap(true);
}

void CairndProcess::Kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  Reap(true);
}

namespace {

// Whether every thread of `pid` is stopped (state T or t in /proc/PID/task/TID/stat). False when
// the process is gone, so a caller waiting for it gives up at once.
bool AllThreadsStopped(pid_t pid) {
  std::error_code ec;
  const std::filesystem::path tasks = fmt::format("/proc/{}/task", pid);
  bool any = false;
  for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
    std::ifstream in(task.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // "tid (comm) S ...": the state follows the last ')' (comm may hold parentheses).
    const size_t close = stat.rfind(')');
    if (close == std::string::npos || close + 2 >= stat.size()) return false;
    const char state = stat[close + 2];
    if (state != 'T' && state != 't') return false;
    any = true;
  }
  return !ec && any;
}

}  // namespace

void CairndProcess::Pause() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGSTOP);
  // The signal is delivered asynchronously: a thread running on another core can still answer
  // a request or two after kill() returns. Wait until the process is really stopped (a process
  // that is gone gives up at once: AllThreadsStopped is then false, and so is the wait's result,
  // which a paused process's later behaviour shows anyway).
  (void)WaitUntil([&] { return AllThreadsStopped(pid_); }, std::chrono::seconds(5),
                  "every thread of cairnd to stop after SIGSTOP");
}

void CairndProcess::Resume() {
  if (pid_ > 0) ::kill(pid_, SIGCONT);
}

std::string CairndProcess::Log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

uint16_t FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

std::vector<std::string> ClusterNodeArgs(const ClusterOptions& options,
                                         const std::vector<std::string>& addresses, size_t i) {
  std::string peers;
  for (const auto& a : addresses) peers += (peers.empty() ? "" : ",") + a;
  std::vector<std::string> args = {"--peers",
                                   peers,
                                   "--gossip-interval-ms",
                                   std::to_string(options.gossip_interval.count()),
                                   "--phi-threshold",
                                   fmt::format("{}", options.phi_threshold)};
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
  if (i < options.node_args.size()) {
    args.insert(args.end(), options.node_args[i].begin(), options.node_args[i].end());
  }
  return args;
}

CairndProcess::Options LocalCluster::NodeOptions(size_t i) const {
  CairndProcess::Options o;
  o.data_dir = fmt::format("{}/node{}", dir_, i + 1);
  o.listen = addresses_[i];
  if (i < options_.nodes) {
    o.extra_args = ClusterNodeArgs(options_, addresses_, i);
    return o;
  }
  std::vector<std::string> seeds(addresses_.begin(),
                                 addresses_.begin() + static_cast<ptrdiff_t>(options_.nodes));
  o.extra_args = {"--join",
                  fmt::format("{}", fmt::join(seeds, ",")),
                  "--gossip-interval-ms",
                  std::to_string(options_.gossip_interval.count()),
                  "--phi-threshold",
                  fmt::format("{}", options_.phi_threshold)};
  o.extra_args.insert(o.extra_args.end(), options_.extra_args.begin(), options_.extra_args.end());
  const auto& added = added_args_[i - options_.nodes];
  o.extra_args.insert(o.extra_args.end(), added.begin(), added.end());
  return o;
}

std::string LocalCluster::NewAddress() const {
  // FreePort() gives back a port the kernel just let go of; asked twice in a row it may give
  // the same one, which two nodes of one cluster must not share.
  for (;;) {
    std::string address = fmt::format("127.0.0.1:{}", FreePort());
    if (std::find(addresses_.begin(), addresses_.end(), address) == addresses_.end()) {
      return address;
    }
  }
}

Result<size_t> LocalCluster::AddNode(std::vector<std::string> args, std::string address) {
  addresses_.push_back(address.empty() ? NewAddress() : std::move(address));
  added_args_.push_back(std::move(args));
  auto node = CairndProcess::Start(NodeOptions(addresses_.size() - 1));
  if (!node.ok()) {
    addresses_.pop_back();
    added_args_.pop_back();
    return node.status();
  }
  nodes_.push_back(std::move(*node));
  return nodes_.size() - 1;
}

Result<std::unique_ptr<LocalCluster>> LocalCluster::Start(const std::string& dir, Options options) {
  std::unique_ptr<LocalCluster> c(new LocalCluster());
  c->dir_ = dir;
  // The nodes' logs are files beside their data directories: the first node's would otherwise
  // have no directory to go in (and its log would go to the test's own stderr).
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  c->options_ = std::move(options);
  for (size_t i = 0; i < c->options_.nodes; ++i) c->addresses_.push_back(c->NewAddress());
  for (size_t i = 0; i < c->options_.nodes; ++i) {
    auto node = CairndProcess::Start(c->NodeOptions(i));
    if (!node.ok()) return node.status();
    c->nodes_.push_back(std::move(*node));
  }
  for (size_t i = 0; i < c->size(); ++i) {
    for (size_t j = 0; j < c->size(); ++j) {
      if (Status s = c->WaitForState(i, j, "UP", c->options_.form_timeout); !s.ok()) {
        return Status(s.code(), s.message() + "\n" + c->Logs());
      }
    }
  }
  return c;
}

Status LocalCluster::Restart(size_t i) {
  nodes_[i].reset();  // reaps it if it still runs
  auto node = CairndProcess::Start(NodeOptions(i));
  if (!node.ok()) return node.status();
  nodes_[i] = std::move(*node);
  return Status::Ok();
}

Status LocalCluster::WaitForState(size_t observer, size_t subject, const std::string& state,
                                  std::chrono::milliseconds timeout) {
  return WaitUntil(
      [&] {
        std::vector<std::string> argv = {CliPath(),   "--server", addresses_[observer],
                                         "--timeout", "1000",     "--json"};
        argv.insert(argv.end(), options_.cli_args.begin(), options_.cli_args.end());
        argv.push_back("status");
        auto r = RunCommand(argv);
        if (r.exit_code != 0) return ::testing::AssertionFailure() << r.err;
        // Find the subject's entry and its state without a JSON dependency in the harness.
        const std::string needle = fmt::format("\"address\":\"{}\"", addresses_[subject]);
        const size_t at = r.out.find(needle);
        const size_t st = at == std::string::npos ? at : r.out.find("\"state\":\"", at);
        return ::testing::AssertionResult(st != std::string::npos &&
                                          r.out.compare(st + 9, state.size(), state) == 0 &&
                                          r.out.find("\"formed\":true") != std::string::npos)
               << "status " << r.out;
      },
      timeout, fmt::format("node {} to see node {} {}", observer + 1, subject + 1, state));
}

Status LocalCluster::WaitForQuiet(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto left = [&] {
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
  };
  for (size_t i = 0; i < size(); ++i) {
    if (!nodes_[i] || !nodes_[i]->running()) continue;
    for (size_t j = 0; j < size(); ++j) {
      if (!nodes_[j] || !nodes_[j]->running()) continue;
      if (Status s = WaitForState(i, j, "UP", left()); !s.ok()) return s;
    }
  }
  return WaitUntil(
      [&] {
        for (size_t i = 0; i < size(); ++i) {
          if (!nodes_[i] || !nodes_[i]->running()) continue;
          std::vector<std::string> argv = {CliPath(),   "--server", addresses_[i],
                                           "--timeout", "1000",     "--json"};
          argv.insert(argv.end(), options_.cli_args.begin(), options_.cli_args.end());
          argv.push_back("status");
          auto r = RunCommand(argv);
          if (r.exit_code != 0 ||
              r.out.find("\"hints_pending\":0,\"self\":true") == std::string::npos) {
            return ::testing::AssertionFailure() << "node " << i + 1 << ": " << r.out << r.err;
          }
        }
        return ::testing::AssertionSuccess();
      },
      left(), "every running node to have replayed its hints");
}

std::string LocalCluster::Logs() const {
  std::string out;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i])
      out += fmt::format("--- node {} ({}) log:\n{}", i + 1, addresses_[i], nodes_[i]->Log());
  }
  return out;
}

CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& input,
                         std::chrono::milliseconds timeout) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    return {};
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    Exec(argv);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  // Small inputs only: the child reads stdin before it writes much.
  size_t written = 0;
  while (written < input.size()) {
    const ssize_t n = ::write(in[1], input.data() + written, input.size() - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  ::close(in[1]);

  CommandResult result;
  const auto deadline = Clock::now() + timeout;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  bool timed_out = false;
  while (open_fds > 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    if (::poll(fds, 2, static_cast<int>(left.count())) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      char buf[4096];
      const ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = timed_out           ? -1
                     : WIFEXITED(status) ? WEXITSTATUS(status)
                                         : 128 + WTERMSIG(status);
  return result;
}

}  // namespace cairn::testing
