// The fault-injection harness: a cluster of cairnd processes, each in a network namespace of its
// own, wired to one bridge, so that a test can crash, pause, restart and clock-skew nodes and also
// cut, split and restore the network between them; plus a seeded schedule of such faults that a
// test runs in the background while its workload runs in the foreground.
//
// Linux only, and root only (it creates network namespaces); tests call
// NetnsCluster::UnsupportedReason() first and skip when it is not empty.
//
// Layout. P is "cairnf<pid>-<n>" (this process's pid and a per-process counter), X is 1..250,
// derived from the same two numbers. Nothing is created or changed in the root namespace.
//
//   P-hub    the bridge br0, one veth end per node (n0, n1, ...) and one for the clients (cl)
//   P-n<i>   node i: lo, eth0 = 10.213.X.(i+1)/24; cairnd listens on 10.213.X.(i+1):7400
//   P-cl     the test's clients: lo, eth0 = 10.213.X.200/24
//
// The test process itself stays in the root namespace, where the nodes' addresses do not exist:
// it reaches them through NewClient(), RunInClientNetns(), StartClientThread() or Cli(), which
// all act from the client namespace.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cairn/client.h"
#include "cairn/status.h"
#include "tests/harness/process.h"

namespace cairn::testing {

// Thread safety: every method may be called from any thread. Faults are applied one at a time
// (one mutex), so a FaultSchedule and the test's own faults can be mixed.
class NetnsCluster {
 public:
  // The same options as a LocalCluster's (tests/harness/process.h).
  using Options = ClusterOptions;
  // Every node listens on this port, each on its own address.
  static constexpr uint16_t kPort = 7400;

  // Why the harness cannot run on this machine (not root, no `ip`, `ip netns` or veth/bridge
  // support), or an empty string when it can. Probed once per process.
  static std::string UnsupportedReason();

  // Removes the namespaces of earlier runs of this harness whose process is gone (and kills what
  // still runs in them), creates the namespaces and links, starts every node with its data
  // directory under `dir`, and waits until every node sees every node UP. On failure everything
  // created so far is removed again and the status carries the nodes' logs.
  // `spares` more nodes (indexes options.nodes and up) get their namespace, address and link but
  // are not started and not in the others' peer lists: Join() starts one as a new member.
  static Result<std::unique_ptr<NetnsCluster>> Start(const std::string& dir, Options options,
                                                     size_t spares = 0);
  // Kills every node (SIGKILL, reaped by pid) and deletes every namespace (which removes the
  // bridge and the veth links with them).
  ~NetnsCluster();
  NetnsCluster(const NetnsCluster&) = delete;
  NetnsCluster& operator=(const NetnsCluster&) = delete;

  // Every node, the spares included.
  size_t size() const { return addresses_.size(); }
  // The nodes the cluster formed with (0 .. members()-1); the spares come after them.
  size_t members() const { return options_.nodes; }
  // "10.213.X.(i+1):PORT": reachable from the client namespace and from the nodes.
  const std::string& address(size_t i) const { return addresses_[i]; }
  const std::vector<std::string>& addresses() const { return addresses_; }
  const std::string& hub_netns() const { return hub_ns_; }
  const std::string& client_netns() const { return client_ns_; }
  const std::string& node_netns(size_t i) const { return node_ns_[i]; }
  // Every namespace the cluster made: for tests that check the teardown.
  std::vector<std::string> netns_names() const;
  // The pid of node i's cairnd, or -1 while it is not running.
  pid_t pid(size_t i) const;
  bool running(size_t i) const { return pid(i) > 0; }
  // Node i's exit code once it has ended by itself (a decommissioned node exits 0), else nullopt;
  // it then counts as not running.
  std::optional<int> Exited(size_t i);
  // False when `nft` is missing: Partition() and CutOneWay() then fail with UNAVAILABLE (the
  // reason was logged at start); Isolate() and the process faults do not need it.
  bool can_filter() const { return can_filter_; }

  // ---- The client side ------------------------------------------------------------------------
  // A blocking client whose I/O thread, and so every connection it opens, lives in the client
  // namespace; it may then be used from any thread (cairn::Client is thread-safe). `nodes` are
  // the servers it talks to (when empty: the nodes the cluster formed with, not the spares);
  // `options.servers` is overwritten. For a
  // concurrent workload, share one client among threads or make one per thread.
  Result<std::unique_ptr<Client>> NewClient(std::vector<size_t> nodes = {},
                                            ClientOptions options = ClientOptions());
  // Runs `fn` on a new thread that has joined the client namespace and waits for it. Sockets
  // made inside `fn`, threads it starts and processes it forks all live in the client namespace:
  // raw sockets, an AsyncClient on an io_context run inside `fn`, RunCommand().
  Status RunInClientNetns(const std::function<void()>& fn);
  // The same without waiting: the thread runs `fn` and ends; the caller joins it.
  Result<std::thread> StartClientThread(std::function<void()> fn);
  // Runs `cairn --server ADDRESS(node) --timeout 1000 ARGS...` in the client namespace.
  CommandResult Cli(size_t node, const std::vector<std::string>& args);
  // The cluster as node `observer` sees it (through `cairn --json status`).
  Result<ClusterInfo> ClusterStatus(size_t observer);
  // Waits until node `observer` reports node `subject` in `state` ("UP" or "DOWN") and the
  // cluster formed.
  Status WaitForState(size_t observer, size_t subject, const std::string& state,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Waits until every running node sees every running node UP (after Heal(), nothing paused).
  Status WaitForAllUp(std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // ---- Faults ---------------------------------------------------------------------------------
  // Each logs what it did, with the time, to stderr and to FaultLog(). INVALID_ARGUMENT for a
  // node index out of range or a node in the wrong state (Kill9 of a stopped node); UNAVAILABLE
  // when a command failed or the tool is missing; Restart carries the node's log on failure.

  // SIGKILL and reap: a crash. The node stays down until Restart().
  Status Kill9(size_t i);
  // Starts node i again on the same data directory and address, with the clock skew it last had
  // (see RestartWithClockSkew). A node that still runs is killed first (SIGKILL).
  Status Restart(size_t i);
  // SIGSTOP / SIGCONT: the process hangs with its connections open.
  Status Pause(size_t i);
  Status Resume(size_t i);
  // Cuts node i off from everyone, the clients included: its veth end in the hub is set down, so
  // nothing crosses its link in either direction (connections hang, new ones fail).
  Status Isolate(size_t i);
  // Undoes every network fault: every link up, every packet filter rule removed.
  Status Heal();
  // Nodes reach only the nodes of their own group; nodes in no group reach no node. The clients
  // still reach every node (so a test can watch both sides). Implemented with nftables: in each
  // node's namespace, a rule drops packets from the nodes outside its group as they arrive, so
  // senders see silence, as on a real partition. Replaces earlier Partition/CutOneWay rules.
  Status Partition(const std::vector<std::vector<size_t>>& groups);
  // Drops every packet from node `from` to node `to` (a rule in `to`'s namespace); the other
  // direction still flows. Over TCP both directions of their connections then stall, but bytes
  // `to` sends on an open connection still reach `from` (requests arrive, answers are lost).
  // With a third node, gossip still carries `from`'s heartbeat to `to`, so `to` may keep seeing
  // `from` UP while its own requests to `from` time out. Adds to earlier rules.
  Status CutOneWay(size_t from, size_t to);
  // Starts spare node i (see Start) as a new node that joins the cluster: cairnd --join with the
  // nodes the cluster formed with as seeds. Not waited for. Restart() of it later starts it with
  // the same arguments (a joining node resumes its join). INVALID_ARGUMENT for a node that is not
  // a spare or was started before.
  Status Join(size_t i);
  // Kills node i (SIGKILL) and starts it with --debug-clock-skew-ms=`skew_ms` (0: no skew). The
  // skew sticks to the node for later Restart()s until set again.
  Status RestartWithClockSkew(size_t i, int64_t skew_ms);

  // Adds a line to the fault log (e.g. "workload started"), so that the log is one timeline.
  void Note(const std::string& what);
  // Every line logged so far.
  std::vector<std::string> FaultLog() const;
  // Every node's log, for failure messages.
  std::string Logs() const;

 private:
  NetnsCluster() = default;
  class Launcher;

  Status SetUp();
  void TearDown();
  Status Ip(const std::vector<std::string>& args);
  Status Nft(size_t node, const std::string& script);
  Status CheckNode(size_t i) const;
  std::string HubPort(size_t i) const;  // node i's veth end in the hub
  CairndProcess::Options NodeOptions(size_t i) const;
  Status StartNode(size_t i);  // requires mu_
  std::vector<std::string> member_addresses() const {
    return {addresses_.begin(), addresses_.begin() + static_cast<ptrdiff_t>(members())};
  }

  // Constant after Start().
  std::string dir_;
  Options options_;
  std::string prefix_;
  int subnet_ = 0;  // X in 10.213.X.0/24
  std::string hub_ns_, client_ns_;
  std::vector<std::string> node_ns_;
  std::vector<std::string> node_ips_;    // "10.213.X.(i+1)"
  std::vector<std::string> addresses_;   // node_ips_ with the port
  std::vector<std::string> created_ns_;  // in creation order
  bool can_filter_ = false;
  std::chrono::steady_clock::time_point started_at_ = std::chrono::steady_clock::now();
  // Every cairnd is forked by this one long-lived thread: a child's PR_SET_PDEATHSIG fires when
  // the *thread* that forked it ends, so a node restarted from a short-lived thread (a
  // FaultSchedule run) would otherwise die with that thread.
  std::unique_ptr<Launcher> launcher_;

  // Guarded by mu_: the nodes and the network faults in force.
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<CairndProcess>> nodes_;
  std::vector<int64_t> skew_ms_;
  std::vector<bool> isolated_;
  std::vector<bool> filtered_;  // the node's namespace holds drop rules

  mutable std::mutex log_mu_;
  std::vector<std::string> fault_log_;  // guarded by log_mu_
};

// One timed fault of a FaultSchedule.
struct FaultEvent {
  enum class Kind {
    kKillRestart,  // Kill9(nodes[0]), later Restart
    kPauseResume,  // Pause(nodes[0]), later Resume
    kIsolateHeal,  // Isolate(nodes[0]), later Heal
    kPartition,    // Partition(groups), later Heal; nodes = the minority side
    kCutOneWay,    // CutOneWay(nodes[0], nodes[1]), later Heal
    kSkewRestart,  // RestartWithClockSkew(nodes[0], skew_ms), later back to no skew
  };
  Kind kind = Kind::kKillRestart;
  std::chrono::milliseconds at{0};        // from the start of the run
  std::chrono::milliseconds duration{0};  // until it is undone
  std::vector<size_t> nodes;
  std::vector<std::vector<size_t>> groups;  // kPartition only
  int64_t skew_ms = 0;                      // kSkewRestart only

  bool network() const {
    return kind == Kind::kIsolateHeal || kind == Kind::kPartition || kind == Kind::kCutOneWay;
  }
  std::string ToString() const;
  friend bool operator==(const FaultEvent&, const FaultEvent&) = default;
};

class FaultRun;

// A deterministic sequence of timed faults drawn from a seed: the same seed and options give the
// same events, on any machine (the draws use std::mt19937_64 and no distribution classes). At any
// moment at most `max_down` nodes are affected (killed, paused, restarting, isolated, on the
// minority side of a partition, or the sending side of a one-way cut), at most one network fault
// is in force, and every fault is undone `quiet_end` before `duration` ends.
class FaultSchedule {
 public:
  struct Options {
    Options() = default;
    size_t nodes = 3;
    std::chrono::milliseconds duration{60'000};
    // 0: a minority of the nodes, (nodes - 1) / 2. With 5 nodes and replication factor 3, two
    // nodes down can be two replicas of some keys: set 1 where every key must stay at QUORUM.
    size_t max_down = 0;
    std::chrono::milliseconds min_fault{2'000}, max_fault{8'000};  // how long a fault lasts
    std::chrono::milliseconds min_gap{1'000}, max_gap{5'000};      // from one start to the next
    std::chrono::milliseconds quiet_end{3'000};  // nothing in force during the last stretch
    int64_t max_skew_ms = 5'000;                 // |skew| of a skew restart, at least 1/4 of it
    std::vector<FaultEvent::Kind> kinds = {
        FaultEvent::Kind::kKillRestart, FaultEvent::Kind::kPauseResume,
        FaultEvent::Kind::kIsolateHeal, FaultEvent::Kind::kPartition,
        FaultEvent::Kind::kCutOneWay,   FaultEvent::Kind::kSkewRestart};
  };

  // Draws the events. Tests take `seed` from a TestSeed (tests/support/seed.h), so that
  // CAIRN_SEED replays a schedule.
  FaultSchedule(uint64_t seed, Options options);

  uint64_t seed() const { return seed_; }
  const Options& options() const { return options_; }
  const std::vector<FaultEvent>& events() const { return events_; }
  std::string ToString() const;  // one event per line

  // Prints "fault schedule seed N" to stdout, then applies the events on a background thread,
  // each at its time from now, until `duration` has passed or `stop` turns true; then undoes
  // whatever is still in force (resume, restart, heal, clocks back to no skew), so the cluster
  // ends whole. Events that begin after `duration` are not run.
  // Partitions and one-way cuts are skipped, with a logged reason, when the cluster cannot
  // filter (no nftables).
  // `cluster` and `stop` must outlive the returned run.
  FaultRun Run(NetnsCluster& cluster, std::chrono::milliseconds duration,
               const std::atomic<bool>& stop) const;

 private:
  uint64_t seed_;
  Options options_;
  std::vector<FaultEvent> events_;
};

// A FaultSchedule running in the background. Wait() (or the destructor) joins it.
class FaultRun {
 public:
  FaultRun(FaultRun&&) = default;
  FaultRun& operator=(FaultRun&&) = delete;
  ~FaultRun();

  // Waits for the run to end; OK, or the first fault that failed (the run goes on after one).
  Status Wait();

 private:
  friend class FaultSchedule;
  struct State;
  explicit FaultRun(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace cairn::testing
