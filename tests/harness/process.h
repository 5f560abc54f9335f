// The test harness for real processes: starts cairnd on a free loopback port, stops it (SIGTERM),
// kills it (SIGKILL), pauses and resumes it (SIGSTOP/SIGCONT), and always reaps it by pid, also
// when a test fails or the test binary dies (the child gets PR_SET_PDEATHSIG).
// PR_SET_PDEATHSIG fires when the *thread* that started the child ends, not the process: start
// long-lived processes from a thread that lives as long as they should (the test's main thread,
// or a launcher thread as in tests/fault/netns_cluster.cc).
// Also runs short commands such as the cairn CLI and captures their output.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cairn/status.h"

namespace cairn::testing {

// Paths of the binaries under test, set by CMake.
std::string CairndPath();
std::string CliPath();

class CairndProcess {
 public:
  struct Options {
    std::string data_dir;
    std::string listen = "127.0.0.1:0";   // port 0: a free port, read back from the start line
    std::vector<std::string> extra_args;  // e.g. {"--max-value-bytes", "1024"}
    // A network namespace (a name under /run/netns) to run cairnd in; empty: the caller's.
    std::string netns;
    std::chrono::milliseconds start_timeout{20'000};
  };

  // Starts cairnd with `options.listen` and waits for its "listening on" line.
  static Result<std::unique_ptr<CairndProcess>> Start(Options options);
  // Kills the process if it still runs and reaps it.
  ~CairndProcess();

  CairndProcess(const CairndProcess&) = delete;
  CairndProcess& operator=(const CairndProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& address() const { return address_; }  // "127.0.0.1:PORT"
  // "127.0.0.1:PORT" of the HTTP front door (started with --http); empty when it is off.
  const std::string& http_address() const { return http_address_; }
  // The RESP front door's "127.0.0.1:PORT" when started with --resp, else empty.
  const std::string& resp_address() const { return resp_address_; }
  uint32_t node_id() const { return node_id_; }
  const Options& options() const { return options_; }
  bool running() const { return pid_ > 0; }

  // SIGTERM and wait (SIGKILL after `grace`). Returns the exit code (128+signal if killed).
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds(10));
  // SIGKILL and reap: a crash.
  void Kill9();
  // The exit code (128+signal if killed) once the process has ended by itself, else nullopt.
  std::optional<int> Exited();
  void Pause();   // SIGSTOP, and wait until every thread is stopped
  void Resume();  // SIGCONT
  // What the server wrote to stderr so far (its log).
  std::string Log() const;

 private:
  CairndProcess() = default;
  int Reap(bool block);

  Options options_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;  // once Exited() saw it end
  std::string address_;
  std::string http_address_;
  std::string resp_address_;
  uint32_t node_id_ = 0;
  std::string log_path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (for nodes that must know their peers'
// ports before they start).
uint16_t FreePort();

// How a test cluster is made: LocalCluster (loopback) and NetnsCluster (tests/fault, network
// namespaces) both take these.
struct ClusterOptions {
  size_t nodes = 3;
  std::chrono::milliseconds gossip_interval{100};
  // Higher than the default 8, so a node that a loaded (or sanitizer-slowed) machine stalls for a
  // second is not taken for dead: with 100 ms gossip, DOWN after about 4 s of silence.
  double phi_threshold = 12;
  std::vector<std::string> extra_args;              // for every node
  std::vector<std::vector<std::string>> node_args;  // per node (dc, rack, clock skew ...)
  // How long Start() waits for every node to see every node UP.
  std::chrono::milliseconds form_timeout{30'000};
  // Given to every cairn CLI command the harness runs against the nodes (e.g. {"--cacert",
  // "ca.crt"} for a cluster that speaks TLS).
  std::vector<std::string> cli_args;
};

// The cairnd arguments of node `i` of a cluster made with `options` whose nodes listen on
// `addresses`: the peer list, gossip and failure detector settings, then `extra_args` and the
// node's own `node_args`.
std::vector<std::string> ClusterNodeArgs(const ClusterOptions& options,
                                         const std::vector<std::string>& addresses, size_t i);

// N cairnd processes on loopback forming one cluster. Every node is stopped (by pid) when the
// LocalCluster goes away.
class LocalCluster {
 public:
  using Options = ClusterOptions;

  // Starts every node in `dir` and waits until each sees all of them UP.
  static Result<std::unique_ptr<LocalCluster>> Start(const std::string& dir, Options options);

  size_t size() const { return nodes_.size(); }
  CairndProcess& node(size_t i) { return *nodes_[i]; }
  const std::string& address(size_t i) const { return addresses_[i]; }
  const std::vector<std::string>& addresses() const { return addresses_; }

  // Starts node `i` again on its data directory and port (after Kill9() or Stop()).
  Status Restart(size_t i);
  // Starts a new node that joins the running cluster (cairnd --join, asking every node of the
  // cluster), with `args` besides, at `address` (default: a free port); returns its index. It is
  // not waited for.
  Result<size_t> AddNode(std::vector<std::string> args = {}, std::string address = "");
  // Waits until node `observer` sees node `subject` in `state` ("UP" or "DOWN").
  Status WaitForState(size_t observer, size_t subject, const std::string& state,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Waits until every running node sees every running node UP and no node holds hints.
  Status WaitForQuiet(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Every node's log, for failure messages.
  std::string Logs() const;

 private:
  CairndProcess::Options NodeOptions(size_t i) const;
  // A free loopback address no node of this cluster has.
  std::string NewAddress() const;

  std::string dir_;
  Options options_;
  std::vector<std::string> addresses_;
  std::vector<std::unique_ptr<CairndProcess>> nodes_;
  std::vector<std::vector<std::string>> added_args_;  // of each node AddNode() started
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `argv` with `input` on stdin and waits up to `timeout` (then kills it; exit code -1).
CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& input = "",
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace cairn::testing
