#include "tests/fault/netns_cluster.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <random>
#include <regex>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tests/support/wait_until.h"

namespace cairn::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kPrefix = "cairnf";
constexpr const char* kNftTable = "inet cairn_fault";

// Where iproute2 and nftables put their tools on Debian (the test's PATH may lack sbin).
std::string FindTool(const std::string& name) {
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
    const std::string path = dir + name;
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

std::string IpPath() {
  static const std::string path = FindTool("ip");
  return path;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string Joined(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) out += (out.empty() ? "" : " ") + a;
  return out;
}

// Runs `ip ARGS...`; UNAVAILABLE with its stderr when it fails.
Status RunIp(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {IpPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r = RunCommand(argv, "", std::chrono::seconds(20));
  if (r.exit_code != 0) {
    return Status::Unavailable(
        fmt::format("ip {} failed ({}): {}", Joined(args), r.exit_code, Trim(r.err)));
  }
  return Status::Ok();
}

// Moves the calling thread into the network namespace `name`. Only this thread moves; threads
// and processes it creates afterwards start in that namespace.
Status JoinNetns(const std::string& name) {
  const std::string path = "/run/netns/" + name;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Unavailable(fmt::format("open {}: {}", path, std::strerror(errno)));
  const int rc = ::setns(fd, CLONE_NEWNET);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return Status::Unavailable(fmt::format("setns {}: {}", name, std::strerror(err)));
  return Status::Ok();
}

// Runs `fn` on a new thread inside namespace `name` and waits for it.
Status RunInNetns(const std::string& name, const std::function<void()>& fn) {
  Status status;
  std::thread thread([&] {
    status = JoinNetns(name);
    if (status.ok()) fn();
  });
  thread.join();
  return status;
}

std::string WallTime() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  const auto ms = std::chrono::duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  return fmt::format("{:02}:{:02}:{:02}.{:03}", tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

std::string NodeList(const std::vector<size_t>& nodes) {
  std::string out;
  for (size_t n : nodes) out += (out.empty() ? "" : ",") + std::to_string(n);
  return "{" + out + "}";
}

// Namespaces named by this harness in a process that is gone: "cairnf<pid>-...".
std::vector<std::string> StaleNamespaces() {
  std::vector<std::string> stale;
  std::error_code ec;
  static const std::regex kOurs(std::string("^") + kPrefix + R"((\d+)-)");
  for (const auto& entry : std::filesystem::directory_iterator("/run/netns", ec)) {
    const std::string name = entry.path().filename().string();
    std::smatch m;
    if (!std::regex_search(name, m, kOurs)) continue;
    const pid_t owner = static_cast<pid_t>(std::stol(m[1]));
    if (owner == ::getpid()) continue;
    if (::kill(owner, 0) == 0 || errno != ESRCH) continue;  // the owner still runs
    stale.push_back(name);
  }
  return stale;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Launcher: one long-lived thread that forks every cairnd (see the header for why).

class NetnsCluster::Launcher {
 public:
  Launcher() : thread_([this] { Loop(); }) {}
  ~Launcher() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

  // Runs `fn` on the launcher thread and waits for it.
  void Run(const std::function<void()>& fn) {
    std::promise<void> finished;
    std::future<void> f = finished.get_future();
    {
      std::lock_guard lock(mu_);
      tasks_.push_back([&] {
        fn();
        finished.set_value();
      });
    }
    cv_.notify_one();
    f.get();
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return done_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // guarded by mu_
  bool done_ = false;                        // guarded by mu_
  std::thread thread_;                       // last: starts after the members above exist
};

// ---------------------------------------------------------------------------------------------
// NetnsCluster: set-up and teardown.

std::string NetnsCluster::UnsupportedReason() {
  static std::once_flag once;
  static std::string reason;
  std::call_once(once, [] {
    if (::geteuid() != 0) {
      reason = "not root: the fault harness creates network namespaces";
      return;
    }
    if (IpPath().empty()) {
      reason = "no `ip` command (Debian package iproute2)";
      return;
    }
    const std::string probe = fmt::format("{}{}-probe", kPrefix, ::getpid());
    if (Status s = RunIp({"netns", "add", probe}); !s.ok()) {
      reason = "`ip netns` does not work here: " + s.message();
      return;
    }
    if (Status s = RunIp({"-n", probe, "link", "add", "br0", "type", "bridge"}); !s.ok()) {
      reason = "cannot create a bridge in a namespace: " + s.message();
    } else if (Status v =
                   RunIp({"-n", probe, "link", "add", "v0", "type", "veth", "peer", "name", "v1"});
               !v.ok()) {
      reason = "cannot create veth links: " + v.message();
    }
    if (Status s = RunIp({"netns", "del", probe}); !s.ok() && reason.empty()) {
      reason = "`ip netns del` does not work here: " + s.message();
    }
  });
  return reason;
}

Result<std::unique_ptr<NetnsCluster>> NetnsCluster::Start(const std::string& dir, Options options,
                                                          size_t spares) {
  if (std::string reason = UnsupportedReason(); !reason.empty()) {
    return Status::Unavailable(reason);
  }
  if (options.nodes == 0 || options.nodes + spares > 199) {
    return Status::InvalidArgument("a NetnsCluster has 1 to 199 nodes, spares included");
  }
  static std::atomic<int> instances{0};
  const int instance = instances++;
  std::unique_ptr<NetnsCluster> c(new NetnsCluster());
  c->dir_ = dir;
  c->options_ = std::move(options);
  c->prefix_ = fmt::format("{}{}-{}", kPrefix, ::getpid(), instance);
  c->subnet_ = 1 + static_cast<int>((static_cast<unsigned>(::getpid()) + 97u * instance) % 250u);
  c->hub_ns_ = c->prefix_ + "-hub";
  c->client_ns_ = c->prefix_ + "-cl";
  const size_t members = c->options_.nodes;
  const size_t n = members + spares;
  for (size_t i = 0; i < n; ++i) {
    c->node_ns_.push_back(fmt::format("{}-n{}", c->prefix_, i));
    c->node_ips_.push_back(fmt::format("10.213.{}.{}", c->subnet_, i + 1));
    c->addresses_.push_back(fmt::format("{}:{}", c->node_ips_.back(), kPort));
  }
  c->nodes_.resize(n);
  c->skew_ms_.assign(n, 0);
  c->isolated_.assign(n, false);
  c->filtered_.assign(n, false);
  c->Note(fmt::format("NetnsCluster {}: {} nodes and {} spares on 10.213.{}.0/24, data in {}",
                      c->prefix_, members, spares, c->subnet_, dir));

  for (const std::string& name : StaleNamespaces()) {
    // What still runs there was started by a harness that is gone: kill it, then the name.
    CommandResult pids = RunCommand({IpPath(), "netns", "pids", name});
    std::istringstream in(pids.out);
    for (pid_t pid; in >> pid;) ::kill(pid, SIGKILL);
    const Status s = RunIp({"netns", "del", name});
    c->Note(fmt::format("removed stale namespace {} (its process is gone){}", name,
                        s.ok() ? "" : ": " + s.message()));
  }

  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  c->launcher_ = std::make_unique<Launcher>();
  if (Status s = c->SetUp(); !s.ok()) return s;  // ~NetnsCluster removes what was made
  {
    std::lock_guard lock(c->mu_);
    for (size_t i = 0; i < members; ++i) {
      if (Status s = c->StartNode(i); !s.ok()) return s;
    }
  }
  if (Status s = c->WaitForAllUp(c->options_.form_timeout); !s.ok()) {
    return Status(s.code(), s.message() + "\n" + c->Logs());
  }
  c->Note(fmt::format("cluster formed: {}", Joined(c->member_addresses())));
  return c;
}

Status NetnsCluster::SetUp() {
  auto add_netns = [&](const std::string& name) -> Status {
    if (Status s = Ip({"netns", "add", name}); !s.ok()) return s;
    created_ns_.push_back(name);
    return Status::Ok();
  };
  if (Status s = add_netns(hub_ns_); !s.ok()) return s;
  if (Status s = Ip({"-n", hub_ns_, "link", "add", "br0", "type", "bridge"}); !s.ok()) return s;
  if (Status s = Ip({"-n", hub_ns_, "link", "set", "br0", "up"}); !s.ok()) return s;

  // One veth pair per endpoint: PORT in the hub on the bridge, eth0 in the endpoint.
  auto attach = [&](const std::string& ns, const std::string& port,
                    const std::string& ip) -> Status {
    if (Status s = add_netns(ns); !s.ok()) return s;
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"-n", hub_ns_, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns",
              ns},
             {"-n", hub_ns_, "link", "set", port, "master", "br0", "up"},
             {"-n", ns, "addr", "add", ip + "/24", "dev", "eth0"},
             {"-n", ns, "link", "set", "eth0", "up"},
             // A node reaches its own address through lo.
             {"-n", ns, "link", "set", "lo", "up"}}) {
      if (Status s = Ip(args); !s.ok()) return s;
    }
    return Status::Ok();
  };
  for (size_t i = 0; i < size(); ++i) {
    if (Status s = attach(node_ns_[i], HubPort(i), node_ips_[i]); !s.ok()) return s;
  }
  if (Status s = attach(client_ns_, "cl", fmt::format("10.213.{}.200", subnet_)); !s.ok()) {
    return s;
  }

  // The packet filters for Partition() and CutOneWay(): an empty input chain per node.
  if (FindTool("nft").empty()) {
    Note(
        "nft not found (Debian package nftables; scripts/setup installs it): Partition() and "
        "CutOneWay() will fail with UNAVAILABLE");
    return Status::Ok();
  }
  can_filter_ = true;
  for (size_t i = 0; i < size(); ++i) {
    const std::string script = fmt::format(
        "add table {0}\n"
        "add chain {0} input {{ type filter hook input priority 0; policy accept; }}\n",
        kNftTable);
    if (Status s = Nft(i, script); !s.ok()) {
      can_filter_ = false;
      Note("nftables does not work in the namespaces, Partition() and CutOneWay() will fail: " +
           s.message());
      break;
    }
  }
  return Status::Ok();
}

NetnsCluster::~NetnsCluster() { TearDown(); }

void NetnsCluster::TearDown() {
  {
    std::lock_guard lock(mu_);
    for (auto& node : nodes_) node.reset();  // SIGKILL and reap, by pid
  }
  std::string failed;
  for (auto it = created_ns_.rbegin(); it != created_ns_.rend(); ++it) {
    if (Status s = Ip({"netns", "del", *it}); !s.ok()) failed += "\n  " + s.message();
  }
  if (!created_ns_.empty()) {
    Note(fmt::format("NetnsCluster {} torn down{}", prefix_,
                     failed.empty() ? "" : "; could not delete:" + failed));
  }
  created_ns_.clear();
}

std::vector<std::string> NetnsCluster::netns_names() const {
  std::vector<std::string> names = {hub_ns_, client_ns_};
  names.insert(names.end(), node_ns_.begin(), node_ns_.end());
  return names;
}

std::optional<int> NetnsCluster::Exited(size_t i) {
  std::lock_guard lock(mu_);
  if (i >= nodes_.size() || !nodes_[i]) return std::nullopt;
  return nodes_[i]->Exited();
}

pid_t NetnsCluster::pid(size_t i) const {
  std::lock_guard lock(mu_);
  if (i >= nodes_.size() || !nodes_[i] || !nodes_[i]->running()) return -1;
  return nodes_[i]->pid();
}

Status NetnsCluster::Ip(const std::vector<std::string>& args) { return RunIp(args); }

Status NetnsCluster::Nft(size_t node, const std::string& script) {
  static const std::string nft = FindTool("nft");
  if (nft.empty()) return Status::Unavailable("nft is not installed");
  CommandResult r;
  Status joined = RunInNetns(node_ns_[node], [&] { r = RunCommand({nft, "-f", "-"}, script); });
  if (!joined.ok()) return joined;
  if (r.exit_code != 0) {
    return Status::Unavailable(fmt::format("nft -f - in {} failed ({}): {}; script:\n{}",
                                           node_ns_[node], r.exit_code, Trim(r.err), script));
  }
  return Status::Ok();
}

std::string NetnsCluster::HubPort(size_t i) const { return fmt::format("n{}", i); }

CairndProcess::Options NetnsCluster::NodeOptions(size_t i) const {
  CairndProcess::Options o;
  o.data_dir = fmt::format("{}/node{}", dir_, i);
  o.listen = addresses_[i];
  o.netns = node_ns_[i];
  const std::vector<std::string> members = member_addresses();
  if (i < members.size()) {
    o.extra_args = ClusterNodeArgs(options_, members, i);
  } else {
    std::string seeds;
    for (const std::string& a : members) seeds += (seeds.empty() ? "" : ",") + a;
    o.extra_args = {"--join",
                    seeds,
                    "--gossip-interval-ms",
                    std::to_string(options_.gossip_interval.count()),
                    "--phi-threshold",
                    fmt::format("{}", options_.phi_threshold)};
    o.extra_args.insert(o.extra_args.end(), options_.extra_args.begin(), options_.extra_args.end());
  }
  // "=" so that a negative skew is not taken for an option.
  if (skew_ms_[i] != 0)
    o.extra_args.push_back(fmt::format("--debug-clock-skew-ms={}", skew_ms_[i]));
  return o;
}

Status NetnsCluster::StartNode(size_t i) {
  Result<std::unique_ptr<CairndProcess>> started;
  const CairndProcess::Options options = NodeOptions(i);
  launcher_->Run([&] { started = CairndProcess::Start(options); });
  if (!started.ok()) {
    return Status(started.status().code(),
                  fmt::format("node {} did not start: {}", i, started.status().message()));
  }
  nodes_[i] = std::move(*started);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// The client side.

Result<std::unique_ptr<Client>> NetnsCluster::NewClient(std::vector<size_t> nodes,
                                                        ClientOptions options) {
  options.servers.clear();
  if (nodes.empty()) {
    options.servers = member_addresses();
  } else {
    for (size_t i : nodes) {
      if (i >= size()) return Status::InvalidArgument(fmt::format("no node {}", i));
      options.servers.push_back(addresses_[i]);
    }
  }
  std::unique_ptr<Client> client;
  // The client's I/O thread starts in its constructor, so it is born in the client namespace.
  Status s = RunInNetns(client_ns_, [&] { client = std::make_unique<Client>(options); });
  if (!s.ok()) return s;
  return client;
}

Status NetnsCluster::RunInClientNetns(const std::function<void()>& fn) {
  return RunInNetns(client_ns_, fn);
}

Result<std::thread> NetnsCluster::StartClientThread(std::function<void()> fn) {
  std::promise<Status> joined;
  std::future<Status> result = joined.get_future();
  std::thread thread([ns = client_ns_, fn = std::move(fn), joined = std::move(joined)]() mutable {
    Status s = JoinNetns(ns);
    const bool ok = s.ok();
    joined.set_value(std::move(s));
    if (ok) fn();
  });
  Status s = result.get();
  if (!s.ok()) {
    thread.join();
    return s;
  }
  return thread;
}

CommandResult NetnsCluster::Cli(size_t node, const std::vector<std::string>& args) {
  if (node >= size()) {
    CommandResult none;
    none.err = fmt::format("no node {} in a cluster of {}", node, size());
    return none;
  }
  std::vector<std::string> argv = {CliPath(), "--server", addresses_[node], "--timeout", "1000"};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r;
  Status s = RunInClientNetns([&] { r = RunCommand(argv, "", std::chrono::seconds(10)); });
  if (!s.ok()) r.err = s.ToString();
  return r;
}

Result<ClusterInfo> NetnsCluster::ClusterStatus(size_t observer) {
  CommandResult r = Cli(observer, {"--json", "status"});
  if (r.exit_code != 0) {
    return Status::Unavailable(fmt::format("cairn status on node {} failed ({}): {}", observer,
                                           r.exit_code, Trim(r.err + r.out)));
  }
  const auto json = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return Status::Internal("cairn status printed no JSON object: " + r.out);
  }
  try {
    ClusterInfo info;
    info.formed = json.value("formed", false);
    info.partitions = json.value("partitions", 0u);
    info.note = json.value("note", "");
    info.topology_epoch = json.value("topology_epoch", uint64_t{0});
    info.change = json.value("change", "");
    for (const auto& n : json.value("nodes", nlohmann::json::array())) {
      NodeInfo node;
      node.node_id = n.value("node_id", 0u);
      node.address = n.value("address", "");
      node.dc = n.value("dc", "");
      node.rack = n.value("rack", "");
      node.up = n.value("state", "") == "UP";
      node.partitions = n.value("partitions", 0u);
      node.load_bytes = n.value("load_bytes", uint64_t{0});
      node.hints_pending = n.value("hints_pending", uint64_t{0});
      node.self = n.value("self", false);
      node.member_state = n.value("member", "");
      info.nodes.push_back(std::move(node));
    }
    return info;
  } catch (const nlohmann::json::exception& e) {
    return Status::Internal(fmt::format("unexpected cairn status JSON ({}): {}", e.what(), r.out));
  }
}

Status NetnsCluster::WaitForState(size_t observer, size_t subject, const std::string& state,
                                  std::chrono::milliseconds timeout) {
  if (observer >= size() || subject >= size()) return Status::InvalidArgument("no such node");
  return WaitUntil(
      [&]() -> ::testing::AssertionResult {
        auto info = ClusterStatus(observer);
        if (!info.ok()) return ::testing::AssertionFailure() << info.status().ToString();
        bool seen = false;
        std::string states = info->formed ? "" : "not formed (" + info->note + "); ";
        for (const NodeInfo& n : info->nodes) {
          states += fmt::format("{} {}; ", n.address, n.up ? "UP" : "DOWN");
          seen = seen || (n.address == addresses_[subject] && (n.up ? "UP" : "DOWN") == state);
        }
        return ::testing::AssertionResult(info->formed && seen) << states;
      },
      timeout, fmt::format("node {} to see node {} {}", observer, subject, state));
}

Status NetnsCluster::WaitForAllUp(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::vector<size_t> up;
  for (size_t i = 0; i < size(); ++i) {
    // A node that ended by itself (a decommissioned one exits) is no longer running.
    if (!Exited(i) && running(i)) up.push_back(i);
  }
  for (size_t i : up) {
    for (size_t j : up) {
      const auto left = std::max(milliseconds(0),
                                 std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
      if (Status s = WaitForState(i, j, "UP", left); !s.ok()) return s;
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Faults.

Status NetnsCluster::CheckNode(size_t i) const {
  if (i >= size()) {
    return Status::InvalidArgument(fmt::format("no node {} in a cluster of {}", i, size()));
  }
  return Status::Ok();
}

Status NetnsCluster::Kill9(size_t i) {
  if (Status s = CheckNode(i); !s.ok()) return s;
  std::lock_guard lock(mu_);
  if (!nodes_[i] || !nodes_[i]->running()) {
    return Status::InvalidArgument(fmt::format("Kill9: node {} is not running", i));
  }
  const pid_t pid = nodes_[i]->pid();
  nodes_[i]->Kill9();
  Note(fmt::format("Kill9(node {}): SIGKILL to pid {}, reaped", i, pid));
  return Status::Ok();
}

Status NetnsCluster::Restart(size_t i) {
  if (Status s = CheckNode(i); !s.ok()) return s;
  std::lock_guard lock(mu_);
  if (nodes_[i] && nodes_[i]->running()) {
    const pid_t pid = nodes_[i]->pid();
    nodes_[i]->Kill9();
    Note(fmt::format("Restart(node {}): still running, SIGKILL to pid {} first", i, pid));
  }
  if (Status s = StartNode(i); !s.ok()) {
    Note(fmt::format("Restart(node {}) failed: {}", i, s.message()));
    return s;
  }
  Note(fmt::format("Restart(node {}): pid {} on {} in {}{}", i, nodes_[i]->pid(), addresses_[i],
                   node_ns_[i],
                   skew_ms_[i] == 0 ? "" : fmt::format(", clock skew {} ms", skew_ms_[i])));
  return Status::Ok();
}

Status NetnsCluster::Join(size_t i) {
  if (Status s = CheckNode(i); !s.ok()) return s;
  std::lock_guard lock(mu_);
  if (i < members() || nodes_[i]) {
    return Status::InvalidArgument(
        fmt::format("node {} is not a spare that was never started: it cannot join", i));
  }
  if (Status s = StartNode(i); !s.ok()) {
    Note(fmt::format("Join(node {}) failed: {}", i, s.message()));
    return s;
  }
  Note(fmt::format("Join(node {}): pid {} on {} in {}, joining", i, nodes_[i]->pid(), addresses_[i],
                   node_ns_[i]));
  return Status::Ok();
}

Status NetnsCluster::Pause(size_t i) {
  if (Status s = CheckNode(i); !s.ok()) return s;
  std::lock_guard lock(mu_);
  if (!nodes_[i] || !nodes_[i]->running()) {
    return Status::InvalidArgument(fmt::format("Pause: node {} is not running", i));
  }
  nodes_[i]->Pause();
  Note(fmt::format("Pause(node {}): SIGSTOP to pid {}", i, nodes_[i]->pid()));
  return Status::Ok();
}

Status NetnsCluster::Resume(size_t i) {
  if (Status s = CheckNode(i); !s.ok()) return s;
  std::lock_guard lock(mu_);
  if (!nodes_[i] || !nodes_[i]->running()) {
    return Status::InvalidArgument(fmt::format("Resume: node {} is not running", i));
  }
  nodes_[i]->Resume();
  Note(fmt::format("Resume(node {}): SIGCONT to pid {}", i, nodes_[i]->pid()));
  return Status::Ok();
}

Status NetnsCluster::Isolate(size_t i) {
  if (Status s = CheckNode(i); !s.ok()) return s;
  std::lock_guard lock(mu_);
  const std::vector<std::string> args = {"-n", hub_ns_, "link", "set", HubPort(i), "down"};
  if (Status s = Ip(args); !s.ok()) return s;
  isolated_[i] = true;
  Note(fmt::format("Isolate(node {}): ip {}", i, Joined(args)));
  return Status::Ok();
}

Status NetnsCluster::Heal() {
  std::lock_guard lock(mu_);
  std::vector<size_t> linked, unfiltered;
  Status first;
  for (size_t i = 0; i < size(); ++i) {
    if (isolated_[i]) {
      Status s = Ip({"-n", hub_ns_, "link", "set", HubPort(i), "up"});
      if (s.ok()) {
        isolated_[i] = false;
        linked.push_back(i);
      } else if (first.ok()) {
        first = s;
      }
    }
    if (filtered_[i]) {
      Status s = Nft(i, fmt::format("flush chain {} input\n", kNftTable));
      if (s.ok()) {
        filtered_[i] = false;
        unfiltered.push_back(i);
      } else if (first.ok()) {
        first = s;
      }
    }
  }
  Note(fmt::format("Heal(): links up for nodes {}, drop rules flushed on nodes {}{}",
                   NodeList(linked), NodeList(unfiltered),
                   first.ok() ? "" : "; failed: " + first.message()));
  return first;
}

Status NetnsCluster::Partition(const std::vector<std::vector<size_t>>& groups) {
  if (!can_filter_) {
    Note("Partition(): not possible without nftables");
    return Status::Unavailable("Partition needs nftables (nft), which is missing or not working");
  }
  std::vector<int> group_of(size(), -1);
  std::string shape;
  for (size_t g = 0; g < groups.size(); ++g) {
    for (size_t i : groups[g]) {
      if (Status s = CheckNode(i); !s.ok()) return s;
      if (group_of[i] >= 0) {
        return Status::InvalidArgument(fmt::format("Partition: node {} is in two groups", i));
      }
      group_of[i] = static_cast<int>(g);
    }
    shape += (shape.empty() ? "" : " | ") + NodeList(groups[g]);
  }
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < size(); ++i) {
    std::vector<std::string> cut;
    for (size_t j = 0; j < size(); ++j) {
      if (j != i && (group_of[i] < 0 || group_of[j] != group_of[i])) cut.push_back(node_ips_[j]);
    }
    if (cut.empty() && !filtered_[i]) continue;
    std::string script = fmt::format("flush chain {} input\n", kNftTable);
    if (!cut.empty()) {
      std::string set;
      for (const auto& ip : cut) set += (set.empty() ? "" : ", ") + ip;
      script += fmt::format("add rule {} input ip saddr {{ {} }} drop\n", kNftTable, set);
    }
    if (Status s = Nft(i, script); !s.ok()) return s;
    filtered_[i] = !cut.empty();
  }
  Note(
      fmt::format("Partition({}): in each node's namespace, nft drops input from the nodes "
                  "outside its group; clients reach every node",
                  shape));
  return Status::Ok();
}

Status NetnsCluster::CutOneWay(size_t from, size_t to) {
  if (Status s = CheckNode(from); !s.ok()) return s;
  if (Status s = CheckNode(to); !s.ok()) return s;
  if (from == to) return Status::InvalidArgument("CutOneWay: from and to are the same node");
  if (!can_filter_) {
    Note(fmt::format("CutOneWay(node {} -> node {}): not possible without nftables", from, to));
    return Status::Unavailable("CutOneWay needs nftables (nft), which is missing or not working");
  }
  std::lock_guard lock(mu_);
  const std::string rule =
      fmt::format("add rule {} input ip saddr {} drop\n", kNftTable, node_ips_[from]);
  if (Status s = Nft(to, rule); !s.ok()) return s;
  filtered_[to] = true;
  Note(fmt::format("CutOneWay(node {} -> node {}): in {}: nft {}", from, to, node_ns_[to],
                   Trim(rule)));
  return Status::Ok();
}

Status NetnsCluster::RestartWithClockSkew(size_t i, int64_t skew_ms) {
  if (Status s = CheckNode(i); !s.ok()) return s;
  std::lock_guard lock(mu_);
  skew_ms_[i] = skew_ms;
  if (nodes_[i] && nodes_[i]->running()) {
    const pid_t pid = nodes_[i]->pid();
    nodes_[i]->Kill9();
    Note(fmt::format("RestartWithClockSkew(node {}, {} ms): SIGKILL to pid {}", i, skew_ms, pid));
  }
  if (Status s = StartNode(i); !s.ok()) {
    Note(fmt::format("RestartWithClockSkew(node {}) failed: {}", i, s.message()));
    return s;
  }
  Note(fmt::format("RestartWithClockSkew(node {}, {} ms): pid {}", i, skew_ms, nodes_[i]->pid()));
  return Status::Ok();
}

void NetnsCluster::Note(const std::string& what) {
  const double elapsed = std::chrono::duration<double>(Clock::now() - started_at_).count();
  std::string line = fmt::format("[fault {} +{:.3f}s] {}", WallTime(), elapsed, what);
  std::fprintf(stderr, "%s\n", line.c_str());
  std::lock_guard lock(log_mu_);
  fault_log_.push_back(std::move(line));
}

std::vector<std::string> NetnsCluster::FaultLog() const {
  std::lock_guard lock(log_mu_);
  return fault_log_;
}

std::string NetnsCluster::Logs() const {
  std::string out;
  for (size_t i = 0; i < size(); ++i) {
    std::ifstream in(fmt::format("{}/node{}.log", dir_, i));
    std::stringstream ss;
    ss << in.rdbuf();
    out += fmt::format("--- node {} ({}, {}) log:\n{}", i, addresses_[i], node_ns_[i], ss.str());
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// FaultSchedule.

std::string FaultEvent::ToString() const {
  const std::string when =
      fmt::format("+{:.3f}s for {:.3f}s: ", at.count() / 1000.0, duration.count() / 1000.0);
  switch (kind) {
    case Kind::kKillRestart:
      return when + fmt::format("kill -9 node {}, then restart", nodes.at(0));
    case Kind::kPauseResume:
      return when + fmt::format("pause node {}, then resume", nodes.at(0));
    case Kind::kIsolateHeal:
      return when + fmt::format("isolate node {}, then heal", nodes.at(0));
    case Kind::kPartition: {
      std::string shape;
      for (const auto& g : groups) shape += (shape.empty() ? "" : " | ") + NodeList(g);
      return when + fmt::format("partition {}, then heal", shape);
    }
    case Kind::kCutOneWay:
      return when +
             fmt::format("cut node {} -> node {} one way, then heal", nodes.at(0), nodes.at(1));
    case Kind::kSkewRestart:
      return when + fmt::format("restart node {} with clock skew {} ms, then without", nodes.at(0),
                                skew_ms);
  }
  return when + "?";
}

FaultSchedule::FaultSchedule(uint64_t seed, Options options)
    : seed_(seed), options_(std::move(options)) {
  using Kind = FaultEvent::Kind;
  const size_t n = options_.nodes;
  size_t max_down = options_.max_down != 0 ? options_.max_down : (n == 0 ? 0 : (n - 1) / 2);
  max_down = std::min(max_down, n == 0 ? 0 : n - 1);  // someone must stay up
  if (max_down == 0 || options_.kinds.empty()) return;

  // Draws only through rng() and %, which are the same on every platform.
  std::mt19937_64 rng(seed);
  auto draw = [&rng](uint64_t lo, uint64_t hi) { return lo + rng() % (hi - lo + 1); };
  auto draw_ms = [&](milliseconds lo, milliseconds hi) {
    return milliseconds(static_cast<int64_t>(
        draw(static_cast<uint64_t>(lo.count()), static_cast<uint64_t>(std::max(lo, hi).count()))));
  };
  auto pick = [&](const std::vector<size_t>& from) { return from[draw(0, from.size() - 1)]; };
  auto affected = [](const FaultEvent& e) {
    return e.kind == Kind::kCutOneWay ? std::vector<size_t>{e.nodes[0]} : e.nodes;
  };

  const milliseconds end = options_.duration - options_.quiet_end;
  for (milliseconds t = draw_ms(options_.min_gap, options_.max_gap); t + options_.min_fault <= end;
       t += draw_ms(options_.min_gap, options_.max_gap)) {
    // What is in force at t.
    std::vector<bool> down(n, false), busy(n, false);
    bool network = false;
    for (const FaultEvent& e : events_) {
      if (e.at > t || t >= e.at + e.duration) continue;
      for (size_t x : affected(e)) down[x] = true;
      if (e.network()) {
        network = true;
      } else {
        busy[e.nodes[0]] = true;
      }
    }
    const size_t down_count = static_cast<size_t>(std::count(down.begin(), down.end(), true));
    // Nodes that may be affected without going over the budget.
    std::vector<size_t> allowed;
    for (size_t x = 0; x < n; ++x) {
      if (down[x] || down_count < max_down) allowed.push_back(x);
    }

    FaultEvent e;
    e.kind = options_.kinds[draw(0, options_.kinds.size() - 1)];
    e.at = t;
    e.duration = std::min(draw_ms(options_.min_fault, options_.max_fault), end - t);
    switch (e.kind) {
      case Kind::kKillRestart:
      case Kind::kPauseResume:
      case Kind::kSkewRestart: {
        std::vector<size_t> free;
        for (size_t x : allowed) {
          if (!busy[x]) free.push_back(x);
        }
        if (free.empty()) continue;
        e.nodes = {pick(free)};
        if (e.kind == Kind::kSkewRestart) {
          const int64_t max_skew = std::max<int64_t>(1, options_.max_skew_ms);
          e.skew_ms =
              static_cast<int64_t>(draw(static_cast<uint64_t>(std::max<int64_t>(1, max_skew / 4)),
                                        static_cast<uint64_t>(max_skew)));
          if (draw(0, 1) == 1) e.skew_ms = -e.skew_ms;
        }
        break;
      }
      case Kind::kIsolateHeal:
        if (network || allowed.empty()) continue;
        e.nodes = {pick(allowed)};
        break;
      case Kind::kCutOneWay: {
        if (network || allowed.empty()) continue;
        const size_t from = pick(allowed);
        std::vector<size_t> others;
        for (size_t x = 0; x < n; ++x) {
          if (x != from) others.push_back(x);
        }
        e.nodes = {from, pick(others)};
        break;
      }
      case Kind::kPartition: {
        if (network) continue;
        // A random minority; when that would take too many nodes down, one that holds the nodes
        // already down (which always fits).
        const size_t k = draw(1, max_down);
        std::vector<size_t> order(n);
        for (size_t x = 0; x < n; ++x) order[x] = x;
        for (size_t x = n - 1; x > 0; --x) std::swap(order[x], order[draw(0, x)]);
        std::vector<size_t> minority(order.begin(), order.begin() + static_cast<ptrdiff_t>(k));
        size_t total = down_count;
        for (size_t x : minority) total += down[x] ? 0 : 1;
        if (total > max_down) {
          std::stable_partition(order.begin(), order.end(), [&](size_t x) { return down[x]; });
          minority.assign(order.begin(), order.begin() + static_cast<ptrdiff_t>(k));
        }
        std::sort(minority.begin(), minority.end());
        std::vector<size_t> majority;
        for (size_t x = 0; x < n; ++x) {
          if (!std::binary_search(minority.begin(), minority.end(), x)) majority.push_back(x);
        }
        e.nodes = minority;
        e.groups = {minority, majority};
        break;
      }
    }
    events_.push_back(std::move(e));
  }
}

std::string FaultSchedule::ToString() const {
  std::string out = fmt::format("fault schedule seed {}: {} events\n", seed_, events_.size());
  for (const FaultEvent& e : events_) out += "  " + e.ToString() + "\n";
  return out;
}

struct FaultRun::State {
  std::thread thread;
  Status first_error;  // written by the thread, read after join
};

FaultRun::FaultRun(std::unique_ptr<State> state) : state_(std::move(state)) {}

FaultRun::~FaultRun() {
  if (state_ && state_->thread.joinable()) state_->thread.join();
}

Status FaultRun::Wait() {
  if (!state_) return Status::Ok();
  if (state_->thread.joinable()) state_->thread.join();
  return state_->first_error;
}

FaultRun FaultSchedule::Run(NetnsCluster& cluster, std::chrono::milliseconds duration,
                            const std::atomic<bool>& stop) const {
  auto state = std::make_unique<FaultRun::State>();
  FaultRun::State* st = state.get();
  const std::vector<FaultEvent> events = events_;
  const uint64_t seed = seed_;
  std::printf("fault schedule seed %llu (CAIRN_SEED=%llu replays it)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  st->thread = std::thread([st, events, seed, duration, &cluster, &stop] {
    using Kind = FaultEvent::Kind;
    const auto start = Clock::now();
    cluster.Note(fmt::format("fault schedule seed {}: {} events, running for {:.1f}s", seed,
                             events.size(), duration.count() / 1000.0));
    auto record = [&](size_t k, const char* phase, Status s) {
      if (s.ok()) return;
      cluster.Note(fmt::format("event {} {} failed: {}", k + 1, phase, s.ToString()));
      if (st->first_error.ok()) {
        st->first_error =
            Status(s.code(), fmt::format("fault schedule seed {}, event {} ({}) {}: {}", seed,
                                         k + 1, events[k].ToString(), phase, s.message()));
      }
    };
    auto apply = [&](size_t k) -> bool {
      const FaultEvent& e = events[k];
      if (e.network() && e.kind != Kind::kIsolateHeal && !cluster.can_filter()) {
        cluster.Note(fmt::format("event {} skipped (needs nftables): {}", k + 1, e.ToString()));
        return false;
      }
      cluster.Note(fmt::format("event {} begins: {}", k + 1, e.ToString()));
      Status s;
      switch (e.kind) {
        case Kind::kKillRestart:
          s = cluster.Kill9(e.nodes[0]);
          break;
        case Kind::kPauseResume:
          s = cluster.Pause(e.nodes[0]);
          break;
        case Kind::kIsolateHeal:
          s = cluster.Isolate(e.nodes[0]);
          break;
        case Kind::kPartition:
          s = cluster.Partition(e.groups);
          break;
        case Kind::kCutOneWay:
          s = cluster.CutOneWay(e.nodes[0], e.nodes[1]);
          break;
        case Kind::kSkewRestart:
          s = cluster.RestartWithClockSkew(e.nodes[0], e.skew_ms);
          break;
      }
      record(k, "begin", s);
      return true;  // undo even after a failure: the undo of a half-done fault is harmless
    };
    auto undo = [&](size_t k) {
      const FaultEvent& e = events[k];
      cluster.Note(fmt::format("event {} ends", k + 1));
      Status s;
      switch (e.kind) {
        case Kind::kKillRestart:
          s = cluster.Restart(e.nodes[0]);
          break;
        case Kind::kPauseResume:
          s = cluster.Resume(e.nodes[0]);
          break;
        case Kind::kIsolateHeal:
        case Kind::kPartition:
        case Kind::kCutOneWay:
          s = cluster.Heal();
          break;
        case Kind::kSkewRestart:
          s = cluster.RestartWithClockSkew(e.nodes[0], 0);
          break;
      }
      record(k, "undo", s);
    };

    // Undos before starts at the same moment, so the down budget holds at every instant.
    struct Action {
      milliseconds at;
      bool undo;
      size_t event;
    };
    std::vector<Action> actions;
    for (size_t k = 0; k < events.size(); ++k) {
      if (events[k].at >= duration) continue;
      actions.push_back({events[k].at, false, k});
      actions.push_back({events[k].at + events[k].duration, true, k});
    }
    std::stable_sort(actions.begin(), actions.end(), [](const Action& a, const Action& b) {
      return a.at != b.at ? a.at < b.at : a.undo > b.undo;
    });
    std::vector<bool> in_force(events.size(), false);
    bool cut_short = false;
    for (const Action& a : actions) {
      if (a.undo && !in_force[a.event]) continue;
      while (Clock::now() < start + a.at) {
        if (stop.load() || Clock::now() >= start + duration) {
          cut_short = true;
          break;
        }
        std::this_thread::sleep_for(milliseconds(20));
      }
      if (cut_short) break;
      if (a.undo) {
        undo(a.event);
        in_force[a.event] = false;
      } else {
        in_force[a.event] = apply(a.event);
      }
    }
    // Leave the cluster whole: undo what is still in force, latest first.
    for (size_t k = events.size(); k-- > 0;) {
      if (in_force[k]) undo(k);
    }
    while (!cut_short && !stop.load() && Clock::now() < start + duration) {
      std::this_thread::sleep_for(milliseconds(20));
    }
    cluster.Note(fmt::format("fault schedule seed {} done{}", seed,
                             st->first_error.ok() ? "" : ": " + st->first_error.ToString()));
  });
  return FaultRun(std::move(state));
}

}  // namespace cairn::testing
