// cairnd: the Cairn server.
#include <csignal>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>

#include "base/logging.h"
#include "server/allocator.h"
#include "server/config.h"
#include "server/server.h"

namespace {

using cairn::server::ServerOptions;

constexpr const char* kDescription =
    "cairnd: the Cairn key-value store server.\n"
    "Stores data durably under --data-dir and serves clients and other nodes on "
    "--listen.\nStop it with SIGTERM or Ctrl-C: it finishes requests in flight, then exits.";

// What the command line sets: ServerOptions itself where a flag is one of its fields, and the
// flags whose units differ (milliseconds, seconds, MiB), converted by ToOptions().
struct Flags {
  ServerOptions options;
  std::string log_level = "info";
  uint32_t node_id = 0;  // used only when --node-id is given
  uint32_t gossip_ms = 1000;
  uint64_t hint_window_s = 3 * 3600;
  uint32_t http_idle_ms = 30'000;
  uint32_t http_read_ms = 10'000;
  size_t read_cache_mb = options.read_cache_bytes >> 20;
  size_t request_memory_mb = options.max_request_memory_bytes >> 20;
  uint64_t stream_mb_per_s = options.stream_bytes_per_second >> 20;
  uint64_t dead_after_s = 0;
  uint64_t merge_window_s = 1;
  uint64_t repair_interval_s = 24 * 3600;
  uint64_t repair_mb_per_s = 16;
  uint64_t purge_margin_s = 600;
};

// The flag table. --help and --print-config list the flags in this order, and every flag is
// also a key of the --config file (server/config.h).
void AddFlags(CLI::App& app, Flags& flags) {
  ServerOptions& options = flags.options;
  app.set_version_flag("--version", std::string("cairnd ") + CAIRN_VERSION);
  app.add_option("--data-dir", options.data_dir,
                 "Directory for the node's data (created if missing)")
      ->required();
  app.add_option("--listen", options.listen,
                 "HOST:PORT for clients and other nodes; port 0 picks a free port (single node)")
      ->capture_default_str();
  app.add_option("--http", options.http_listen,
                 "HOST:PORT for the HTTP front door (REST API, /metrics, /health, /ready; see "
                 "docs/http.md); off unless given; port 0 picks a free port");
  app.add_option("--http-idle-timeout-ms", flags.http_idle_ms,
                 "Close a keep-alive HTTP connection idle this long")
      ->capture_default_str()
      ->check(CLI::Range(10u, 3'600'000u));
  app.add_option("--http-read-timeout-ms", flags.http_read_ms,
                 "An HTTP request must arrive in full this soon after its first byte (else 408)")
      ->capture_default_str()
      ->check(CLI::Range(10u, 3'600'000u));
  app.add_option("--peers", options.peers,
                 "Every initial member of the cluster as HOST:PORT, this node included, the same "
                 "list on every node (comma-separated); default: a cluster of this node alone")
      ->delimiter(',');
  auto* join = app.add_option(
      "--join", options.join,
      "Start as a new node of a running cluster: HOST:PORT of one or more of its members to ask "
      "(comma-separated); the node streams its share of the data, then serves (see "
      "docs/operations.md)");
  join->delimiter(',')->excludes("--peers");
  app.add_option("--replace", options.replace,
                 "With --join: take exactly the place of this dead member (its node id), "
                 "streaming its data from the surviving replicas")
      ->needs(join);
  app.add_flag("--standby", options.standby,
               "With --join: start, serve status, and wait to be told to join (cairn node join, "
               "or cairn node replace, naming this node's address) instead of asking at once")
      ->needs(join);
  app.add_option("--stream-mb-per-s", flags.stream_mb_per_s,
                 "Data this node streams in during node joins and removals, in MiB/s at most, "
                 "and serves to the nodes streaming from it, all of them together (0: no limit)")
      ->capture_default_str();
  // Durations in seconds, or with a unit: 90s, 10m, 2h.
  const auto with_unit =
      CLI::AsNumberWithUnit(std::map<std::string, uint64_t>{{"s", 1}, {"m", 60}, {"h", 3600}},
                            CLI::AsNumberWithUnit::CASE_SENSITIVE);
  app.add_option("--dead-after", flags.dead_after_s,
                 "Remove a member that has been DOWN this long and re-replicate its data from the "
                 "other replicas (seconds, or with a unit: 90s, 10m, 2h); 0: never (the default: "
                 "remove dead nodes with cairn node remove)")
      ->transform(with_unit)
      ->capture_default_str();
  app.add_option("--merge-window", flags.merge_window_s,
                 "How long a topology change waits before it starts moving data, so that joins "
                 "and decommissions asked for meanwhile (nodes started together) merge into it "
                 "and move their data in one round (seconds, or with a unit; 0: no waiting, "
                 "changes one after the other); the driving node's value counts")
      ->transform(with_unit)
      ->capture_default_str();
  app.add_option("--hot-key-ops-per-s", options.hot_key_ops_per_s,
                 "A key this node coordinates this many times a second or more is hot (listed "
                 "by cairn hotkeys either way): its reads tell native clients they may cache the "
                 "answer for --client-cache-ttl-ms")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--client-cache-ttl-ms", options.client_cache_ttl_ms,
                 "How long a native client may answer reads below SERIAL of a hot key from its "
                 "cache (milliseconds, at most 10000): the staleness it may see; 0: never")
      ->capture_default_str()
      ->check(CLI::Range(0u, 10000u));
  app.add_option("--repair-interval", flags.repair_interval_s,
                 "Background repair: every range this node is first replica of is compared with "
                 "its other replicas about this often (seconds, or 90s, 10m, 24h); 0: off (run "
                 "cairn repair instead)")
      ->transform(with_unit)
      ->capture_default_str();
  app.add_option("--repair-mb-per-s", flags.repair_mb_per_s,
                 "Background repair sends at most this many MiB/s of repaired records (0: no "
                 "limit)")
      ->capture_default_str();
  app.add_option("--purge-margin", flags.purge_margin_s,
                 "After a repair in which every replica agreed, purge the tombstones older than "
                 "the hint window and than this margin before the repair (seconds, or 90s, 10m, "
                 "2h)")
      ->transform(with_unit)
      ->capture_default_str();
  app.add_option("--dc", options.dc, "This node's data centre")->capture_default_str();
  app.add_option("--rack", options.rack, "This node's rack")->capture_default_str();
  app.add_option("--partitions", options.partitions,
                 "Partitions of a new cluster (a power of two; fixed once the cluster exists)")
      ->capture_default_str();
  app.add_option("--threads", options.threads, "Reactor threads (0: one per core, at most 4)")
      ->capture_default_str();
  app.add_option("--node-id", flags.node_id,
                 "This node's id, 1..4294967295 (default: generated on first start, then kept "
                 "in the data directory)");
  app.add_option("--max-value-bytes", options.max_value_bytes, "Largest value accepted, in bytes")
      ->capture_default_str()
      ->check(CLI::Range(size_t{0}, size_t{256} << 20));
  app.add_option("--read-cache-mb", flags.read_cache_mb,
                 "Memory for the cache of recently read values, in MiB (0: off); values over "
                 "16 KiB are not cached")
      ->capture_default_str()
      ->check(CLI::Range(size_t{0}, size_t{1} << 20));
  app.add_option("--max-connections", options.max_connections, "Connections at most")
      ->capture_default_str();
  app.add_option("--max-request-memory-mb", flags.request_memory_mb,
                 "Memory for client requests read and not yet answered and replies not yet "
                 "written, over all connections, in MiB: beyond it busy connections stop being "
                 "read and replies of reads are refused; one connection may hold an eighth of it, "
                 "and a larger request is refused")
      ->capture_default_str()
      ->check(CLI::Range(size_t{16}, size_t{1} << 20));
  app.add_option("--gossip-interval-ms", flags.gossip_ms, "Gossip round interval")
      ->capture_default_str()
      ->check(CLI::Range(10u, 60'000u));
  app.add_option("--phi-threshold", options.phi_threshold,
                 "Failure detector threshold: a peer is DOWN once phi reaches it")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 64.0));
  app.add_option("--hint-window", flags.hint_window_s,
                 "Seconds a hint for a DOWN replica is kept before it is dropped")
      ->capture_default_str();
  app.add_option("--resp", options.resp_listen,
                 "HOST:PORT for Redis clients (RESP2/RESP3; see docs/resp.md); default: off");
  app.add_flag("--allow-flush", options.allow_flush,
               "Let RESP FLUSHDB/FLUSHALL delete every key of a keyspace");
  app.add_option("--tracking-table-max-keys", options.tracking_table_max_keys,
                 "RESP client-side caching (CLIENT TRACKING): keys remembered for tracking "
                 "connections at most (Redis's tracking-table-max-keys); past it the oldest are "
                 "invalidated and forgotten")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{100'000'000}));
  app.add_option("--requirepass", options.requirepass,
                 "Password RESP clients must give with AUTH or HELLO (default: none, any "
                 "password is accepted)");
  app.add_flag("--auth", options.auth,
               "Require every client to log in as a user with the permissions its requests need "
               "(docs/security.md); default: off, for trusted networks only");
  app.add_option("--auth-bootstrap-file", options.auth_bootstrap_file,
                 "File holding USER:PASSWORD: the first superuser, created when the cluster has "
                 "no user (with --auth)");
  app.add_option("--tls-cert", options.tls.cert,
                 "PEM certificate chain this node presents; with --tls-key, every port of the node "
                 "(--listen, --resp, --http) speaks TLS only, and the node dials other nodes with "
                 "TLS. The certificate must name the addresses clients and nodes dial. Reloaded "
                 "on SIGHUP (docs/security.md)");
  app.add_option("--tls-key", options.tls.key, "PEM private key of --tls-cert");
  app.add_option("--tls-ca", options.tls.ca,
                 "PEM CA certificate(s) other nodes' certificates must be signed by (default: "
                 "the system's trusted CAs)");
  app.add_flag("--internode-tls", options.internode_tls,
               "Mutual TLS between nodes: present --tls-cert to the nodes this one dials, and "
               "serve the internode protocol only to nodes whose certificate --tls-ca signed");
  app.add_option("--debug-clock-skew-ms", options.debug_clock_skew_ms,
                 "Testing only: shift this node's wall clock by this many milliseconds");
  app.add_option("--log-level", flags.log_level, "trace, debug, info, warn, error, critical or off")
      ->capture_default_str();
}

ServerOptions ToOptions(const Flags& flags, bool node_id_given) {
  ServerOptions options = flags.options;
  if (node_id_given) options.node_id = flags.node_id;
  options.gossip_interval = std::chrono::milliseconds(flags.gossip_ms);
  options.read_cache_bytes = flags.read_cache_mb << 20;
  options.max_request_memory_bytes = flags.request_memory_mb << 20;
  options.http_idle_timeout = std::chrono::milliseconds(flags.http_idle_ms);
  options.http_read_timeout = std::chrono::milliseconds(flags.http_read_ms);
  options.hint_window = std::chrono::seconds(flags.hint_window_s);
  options.stream_bytes_per_second = flags.stream_mb_per_s << 20;
  options.dead_after = std::chrono::seconds(flags.dead_after_s);
  options.merge_window = std::chrono::seconds(flags.merge_window_s);
  options.repair_interval = std::chrono::seconds(flags.repair_interval_s);
  options.repair_bytes_per_second = flags.repair_mb_per_s << 20;
  options.purge_margin = std::chrono::seconds(flags.purge_margin_s);
  return options;
}

// Starts the node, prints the line that scripts and tests wait for, and serves until SIGTERM or
// SIGINT (exit 0) or a fatal error (exit 2). Exit 2 too when the options are refused, 1 when the
// node cannot start.
int Serve(ServerOptions options) {
  // Installed before the server starts, so a signal that arrives during start-up is not lost.
  boost::asio::io_context signals_io;
  boost::asio::signal_set signals(signals_io, SIGINT, SIGTERM);
  // SIGHUP reloads the TLS certificates and keys (and is otherwise logged and ignored).
  boost::asio::signal_set reload(signals_io, SIGHUP);

  int exit_code = 0;
  options.on_fatal = [&](const cairn::Status& s) {
    boost::asio::post(signals_io, [&, s] {
      std::cerr << "cairnd: " << s.message() << "\n";
      exit_code = 2;
      signals_io.stop();
    });
  };
  options.on_left = [&] {
    boost::asio::post(signals_io, [&] {
      std::cerr << "cairnd: this node has left the cluster; its data directory is no longer "
                   "needed (a node joins again with an empty one and --join)\n";
      signals_io.stop();
    });
  };
  auto server = cairn::server::Server::Start(options);
  if (!server.ok()) {
    std::cerr << "cairnd: " << server.status().message() << "\n";
    return server.status().code() == cairn::Code::kInvalidArgument ? 2 : 1;
  }
  const std::string where = (*server)->address();
  const std::string http = (*server)->http_address();
  const std::string http_part = http.empty() ? "" : ", http on " + http;
  // Before the line below, so whoever waits for that one has this too.
  if (const std::string resp = (*server)->resp_address(); !resp.empty()) {
    std::printf("cairnd RESP (Redis protocol) on %s\n", resp.c_str());
  }
  // Scripts and tests wait for this line.
  std::printf("cairnd %s node %u listening on %s%s, data in %s, %u reactor threads\n",
              CAIRN_VERSION, (*server)->node_id(), where.c_str(), http_part.c_str(),
              options.data_dir.c_str(), (*server)->reactor_threads());
  std::fflush(stdout);
  spdlog::info("node {} serving on {} (dc {}, rack {}, {} peers; heap allocator: {})",
               (*server)->node_id(), where, options.dc, options.rack,
               options.peers.empty() ? 1 : options.peers.size(), cairn::server::AllocatorName());

  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (!ec) spdlog::info("received {}, shutting down", signal == SIGINT ? "SIGINT" : "SIGTERM");
    signals_io.stop();  // the SIGHUP wait would keep run() going
  });
  std::function<void()> wait_for_reload = [&] {
    reload.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      (void)(*server)->ReloadTls();  // logs its outcome
      wait_for_reload();
    });
  };
  wait_for_reload();
  signals_io.run();
  (*server)->Stop();
  spdlog::info("stopped {}", exit_code == 0 ? "cleanly" : "after a fatal error");
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  CLI::App app{kDescription};
  AddFlags(app, flags);
  // Gives every flag a key in the --config file; after all flags are added, before parsing.
  cairn::server::ConfigFile config_file(app);
  CLI11_PARSE(app, argc, argv);
  if (auto exit_code = config_file.Apply(std::cout, std::cerr)) return *exit_code;

  if (auto s = cairn::base::InitLogging(flags.log_level); !s.ok()) {
    std::cerr << "cairnd: " << s.message() << "\n";
    return 2;
  }
  return Serve(ToOptions(flags, app.count("--node-id") > 0));
}
