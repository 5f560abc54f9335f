// cairn-bench: a YCSB-style workload driver for Cairn (native protocol or RESP) and for Redis
// (one server or a Redis Cluster). It prints throughput and latency percentiles; it is a program
// for measuring, not a test. See docs/benchmarks.md. CLI parsing and printing live here; the
// workloads and drivers are in src/bench.
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/runner.h"
#include "cairn/client.h"
#include "tools/progress.h"

namespace {

using cairn::bench::Op;
using cairn::bench::RunConfig;
using cairn::bench::Tally;

struct Options {
  std::string driver = "native";
  std::string workload = "a";
  std::string distribution;  // empty: the workload's YCSB default
  std::string value_size = "100";
  std::vector<std::string> servers{"127.0.0.1:7400"};
  std::vector<double> sweep;  // percentages of the measured maximum, for open-loop runs
  bool load = true;
  bool baseline = false;
  bool json = false;
  std::string label;
  uint32_t timeout_ms = 5000;
  std::string token_aware = "on";
  std::string client_cache = "on";
};

struct Row {
  std::string phase;
  std::string op;
  uint64_t ops = 0;
  double ops_per_s = 0;
  double p50_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0;
  uint64_t errors = 0;
  double target = 0;  // open loop: the rate asked for
  uint64_t not_applied = 0, missed = 0;
};

Row MakeRow(const std::string& phase, std::string_view op, const cairn::base::Histogram& h,
            uint64_t errors, double seconds) {
  auto ms = [](uint64_t ns) { return static_cast<double>(ns) / 1e6; };
  return Row{.phase = phase,
             .op = std::string(op),
             .ops = h.count(),
             .ops_per_s = seconds > 0 ? static_cast<double>(h.count()) / seconds : 0,
             .p50_ms = ms(h.Percentile(50)),
             .p99_ms = ms(h.Percentile(99)),
             .p999_ms = ms(h.Percentile(99.9)),
             .max_ms = ms(h.max()),
             .errors = errors};
}

// A row per operation, and an "all" row (always in JSON; in the table when there are several).
std::vector<Row> Rows(const std::string& phase, const Tally& t, double seconds, double target) {
  std::vector<Row> rows;
  cairn::base::Histogram all;
  for (const auto& [op, h] : t.latency) {
    rows.push_back(
        MakeRow(phase, OpName(op), h, t.errors.contains(op) ? t.errors.at(op) : 0, seconds));
    all.Merge(h);
  }
  for (const auto& [op, n] : t.errors) {
    if (!t.latency.contains(op))
      rows.push_back(Row{.phase = phase, .op = std::string(OpName(op)), .errors = n});
  }
  Row total = MakeRow(phase, "all", all, t.total_errors(), seconds);
  total.target = target;
  total.not_applied = t.not_applied;
  total.missed = t.missed;
  rows.push_back(total);
  return rows;
}

void Print(const Options& o, const RunConfig& c, const std::vector<Row>& rows) {
  if (o.json) {
    for (const Row& r : rows) {
      nlohmann::ordered_json j{{"phase", r.phase},
                               {"op", r.op},
                               {"ops", r.ops},
                               {"ops_per_s", r.ops_per_s},
                               {"p50_ms", r.p50_ms},
                               {"p99_ms", r.p99_ms},
                               {"p999_ms", r.p999_ms},
                               {"max_ms", r.max_ms},
                               {"errors", r.errors},
                               {"label", o.label},
                               {"driver", o.driver},
                               {"workload", c.workload},
                               {"distribution", std::string(KeyDistributionName(c.distribution))},
                               {"records", c.records},
                               {"clients", c.clients},
                               {"value_size", c.value_sizes.ToString()},
                               {"read_cl", c.driver_options.read_cl},
                               {"write_cl", c.driver_options.write_cl}};
      if (c.driver == cairn::bench::DriverKind::kNative) {
        j["token_aware"] = c.driver_options.token_aware;
        j["client_cache"] = c.driver_options.client_cache;
      }
      if (c.hot_key_share > 0) j["hot_key_share"] = c.hot_key_share;
      if (r.op == "all") {
        j["target_ops_per_s"] = r.target;
        j["not_applied"] = r.not_applied;
        j["missed"] = r.missed;
      }
      std::cout << j.dump() << "\n";
    }
    return;
  }
  std::cout << fmt::format("{:<9} {:<6} {:>10} {:>11} {:>9} {:>9} {:>9} {:>9} {:>7}\n", "phase",
                           "op", "ops", "ops/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms",
                           "errors");
  std::map<std::string, int> per_phase;
  for (const Row& r : rows) ++per_phase[r.phase];
  for (const Row& r : rows) {
    if (r.op == "all" && per_phase[r.phase] == 2) continue;  // the same as its one operation
    std::cout << fmt::format(
        "{:<9} {:<6} {:>10} {:>11.1f} {:>9.3f} {:>9.3f} {:>9.3f} {:>9.3f} {:>7}\n", r.phase, r.op,
        r.ops, r.ops_per_s, r.p50_ms, r.p99_ms, r.p999_ms, r.max_ms, r.errors);
  }
  for (const Row& r : rows) {
    if (r.op != "all") continue;
    if (r.target > 0) {
      std::cout << fmt::format("{}: open loop at {:.0f} ops/s asked, {:.0f} done{}\n", r.phase,
                               r.target, r.ops_per_s,
                               r.missed ? fmt::format(", {} due but never sent", r.missed) : "");
    }
    if (r.not_applied > 0) {
      std::cout << fmt::format("{}: {} conditional writes not applied (lost to another client)\n",
                               r.phase, r.not_applied);
    }
  }
}

// The counters of every server, summed (empty when one does not answer).
std::map<std::string, uint64_t> ServerMetrics(const RunConfig& config) {
  std::map<std::string, uint64_t> sum;
  for (const std::string& server : config.driver_options.servers) {
    cairn::ClientOptions options;
    options.servers = {server};
    options.connections_per_server = 1;
    if (const char* user = std::getenv("CAIRN_USER")) options.user = user;
    if (const char* password = std::getenv("CAIRN_PASSWORD")) options.password = password;
    options.tls = config.driver_options.tls;
    options.tls_ca_file = config.driver_options.tls_ca_file;
    cairn::Client client(options);
    auto m = client.Metrics();
    if (!m.ok()) return {};
    for (const auto& [name, value] : *m) sum[name] += value;
  }
  return sum;
}

// How much a counter of ServerMetrics() grew between two readings (0 when one lacks it).
uint64_t CounterDelta(const std::map<std::string, uint64_t>& before,
                      const std::map<std::string, uint64_t>& after, const std::string& name) {
  auto a = after.find(name);
  auto b = before.find(name);
  if (a == after.end() || b == before.end()) return 0;
  return a->second - b->second;
}

// Paxos round trips per compare-and-swap, as the coordinators counted them over the run
// (warm-up included on both sides of the ratio).
void PrintPaxosRoundTrips(const std::map<std::string, uint64_t>& before,
                          const std::map<std::string, uint64_t>& after) {
  auto delta = [&](const std::string& name) {
    return static_cast<double>(CounterDelta(before, after, name));
  };
  const double cas = delta("paxos.cas");
  if (cas == 0) {
    std::cout << "Paxos round trips: no server metrics\n";
    return;
  }
  const double prepare = delta("paxos.prepare_round_trips") / cas;
  const double propose = delta("paxos.propose_round_trips") / cas;
  const double commit = delta("paxos.commit_round_trips") / cas;
  std::cout << fmt::format(
      "Paxos round trips per CAS (server metrics): {:.2f} prepare + {:.2f} propose + {:.2f} "
      "commit = {:.2f}; {:.3f} contended retries, {:.4f} timeouts per CAS\n",
      prepare, propose, commit, prepare + propose + commit, delta("paxos.contended_retries") / cas,
      delta("paxos.timeouts") / cas);
}

// Where the coordinators found the data of the reads over the run (warm-up included): on their
// own replica, or on another node's (a network hop that token-aware routing avoids).
void PrintReplicaReads(const std::map<std::string, uint64_t>& before,
                       const std::map<std::string, uint64_t>& after) {
  const uint64_t local = CounterDelta(before, after, "replica.local_reads");
  const uint64_t remote = CounterDelta(before, after, "replica.remote_reads");
  if (local + remote == 0) return;
  std::cout << fmt::format(
      "replica reads (server metrics): {} local, {} remote ({:.1f}% needed a hop to another "
      "node)\n",
      local, remote, 100.0 * static_cast<double>(remote) / static_cast<double>(local + remote));
}

void PrintErrorKinds(const std::string& phase, const Tally& t) {
  for (const auto& [kind, n] : t.error_kinds) {
    std::cerr << fmt::format("cairn-bench: {}: {} errors: {}\n", phase, n, kind);
  }
}

constexpr const char* kDescription =
    R"(cairn-bench: YCSB-style workload driver for Cairn and Redis-protocol servers.

Loads --keys records, then runs a workload for --duration seconds after --warmup and prints
ops/s and p50/p99/p99.9/max latency per operation (HDR-style histograms, < 0.8% error).

Workloads (YCSB core; keys zipfian unless --distribution says otherwise):
  a  50% read, 50% update          d  95% read of the latest keys, 5% insert
  b  95% read, 5% update           e  95% short prefix scan (1..--scan-length keys), 5% insert
  c  100% read                     f  50% read, 50% read-modify-write
  w  100% insert of new keys (no load phase)
  cas            compare-and-swap, a key per client (Cairn only)
  cas-contended  compare-and-swap on the --keys records shared by all clients (Cairn only)

Drivers:
  native         Cairn's native protocol through the client library: each single-key
                 request goes to a replica of its key (token-aware; --token-aware off spreads
                 them over the --server list, and each node coordinates what it gets)
  resp           RESP2 to each --server in turn, a connection per client (Cairn's RESP door,
                 redis-server)
  redis-cluster  Redis Cluster: --server is any node; keys go to the master of their slot

Closed loop by default (each client sends its next request when the last is answered: the
maximum throughput). --rate makes it open loop: requests are due at fixed intervals and latency
counts from when a request was due, so a stall is not hidden (no coordinated omission).

Examples:
  cairn-bench --server 127.0.0.1:7400 --workload a --duration 10
  cairn-bench --driver resp --server 127.0.0.1:6379 --workload b --rate 20000
  cairn-bench --server 127.0.0.1:7400 --workload c --sweep 25,50,75 --json)";

// ---- the command line ---------------------------------------------------------------------------

void AddFlags(CLI::App& app, Options& o, RunConfig& c) {
  app.get_formatter()->column_width(34);
  app.set_version_flag("--version", std::string("cairn-bench ") + CAIRN_VERSION);
  app.add_option("--driver", o.driver, "native, resp or redis-cluster")
      ->capture_default_str()
      ->check(CLI::IsMember({"native", "resp", "redis-cluster"}));
  app.add_option("--server", o.servers, "HOST:PORT of a node (repeat for several)")
      ->capture_default_str();
  app.add_option("--workload", c.workload, "a, b, c, d, e, f, w, cas or cas-contended")
      ->capture_default_str()
      ->check(CLI::IsMember({"a", "b", "c", "d", "e", "f", "w", "cas", "cas-contended"}));
  app.add_option("--keys,--records", c.records, "Records loaded and chosen from")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  app.add_option("--distribution", o.distribution,
                 "Key choice: uniform, zipfian (theta 0.99, scrambled as YCSB) or latest "
                 "(default: the workload's, as in YCSB)")
      ->check(CLI::IsMember({"uniform", "zipfian", "latest"}));
  app.add_option("--hot-key-share", c.hot_key_share,
                 "This share of key choices (0 to 1) is one key, bench:0000000000, on top of "
                 "--distribution: a hot key")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--value-size", o.value_size,
                 "Value bytes: fixed (100, 4K, 1M) or uniform in a range (100..4K), at most 64M")
      ->capture_default_str();
  app.add_option("--scan-length", c.scan_length, "Workload e: scans read 1..N keys")
      ->capture_default_str()
      ->check(CLI::Range(1u, 10'000u));
  app.add_option("--clients", c.clients, "Concurrent clients (each one request at a time)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100'000u));
  app.add_option("--threads", c.threads, "Driver I/O threads")
      ->capture_default_str()
      ->check(CLI::Range(1u, 64u));
  app.add_option("--connections", c.driver_options.connections,
                 "native: connections per server per thread (RESP: one per client)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1024u));
  app.add_option("--duration", c.duration_s, "Measured seconds per run")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 86400.0));
  app.add_option("--warmup", c.warmup_s, "Unmeasured seconds before measuring")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--rate", c.rate, "Open loop: ops/s over all clients (0: closed loop)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--sweep", o.sweep,
                 "Latency under load: after the closed-loop run, open-loop runs at these "
                 "percentages of its throughput, e.g. 25,50,75")
      ->delimiter(',')
      ->check(CLI::Range(1.0, 100.0));
  app.add_flag("!--no-load", o.load, "Skip the load phase (the records exist already)");
  app.add_flag("--baseline", o.baseline,
               "Also run PING for the same time and print the ratio (protocol cost baseline)");
  app.add_flag("--json", o.json, "Print one JSON object per row instead of a table");
  app.add_option("--label", o.label, "A name put into every JSON row (e.g. the system's)");
  app.add_option("--keyspace", c.driver_options.keyspace, "Keyspace (Cairn)")
      ->capture_default_str();
  app.add_option("--read-cl", c.driver_options.read_cl, "Consistency level of reads (Cairn)");
  app.add_option("--write-cl", c.driver_options.write_cl, "Consistency level of writes (Cairn)");
  app.add_option("--commit-cl", c.driver_options.commit_cl,
                 "Commit level of compare-and-swap (native; default: the server's, QUORUM)");
  app.add_option("--token-aware", o.token_aware,
                 "native: send each key's requests to a replica of it (list every node with "
                 "--server), or spread them over the servers (off)")
      ->capture_default_str()
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--client-cache", o.client_cache,
                 "native: answer reads at ONE of keys the cluster finds hot from the client's "
                 "cache for the TTL the servers give (on), or always ask the servers (off)")
      ->capture_default_str()
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--timeout", o.timeout_ms, "Request timeout in ms")->capture_default_str();
  app.add_option("--seed", c.seed, "Random seed of key and operation choice")
      ->capture_default_str();
  app.add_flag("--tls", c.driver_options.tls,
               "native: connect with TLS, verifying the servers (against --cacert, or the "
               "system's trusted CAs)");
  app.add_option("--cacert", c.driver_options.tls_ca_file,
                 "native: PEM CA certificate the servers' certificates must be signed by "
                 "(implies --tls)");
}

// What CLI11 cannot check: the consistency levels and --value-size (into `c`). Throws
// CLI::ValidationError.
void CheckFlags(const Options& o, RunConfig& c) {
  for (const auto* level :
       {&c.driver_options.read_cl, &c.driver_options.write_cl, &c.driver_options.commit_cl}) {
    if (!level->empty() && !cairn::ParseConsistency(*level)) {
      throw CLI::ValidationError("--read-cl/--write-cl/--commit-cl",
                                 "unknown consistency level " + *level);
    }
  }
  if (!c.driver_options.tls_ca_file.empty()) c.driver_options.tls = true;
  if (c.driver_options.tls && o.driver != "native") {
    throw CLI::ValidationError("--tls", "TLS is implemented by the native driver only");
  }
  auto sizes = cairn::bench::ValueSizes::Parse(o.value_size);
  if (!sizes) {
    throw CLI::ValidationError(
        "--value-size", "expected a size (100, 4K, 1M) or a range min..max, got " + o.value_size);
  }
  c.value_sizes = *sizes;
}

// The rest of the RunConfig from the options: the driver, and the key distribution (the
// workload's unless --distribution names one).
void Configure(const Options& o, RunConfig& c) {
  c.driver = o.driver == "native" ? cairn::bench::DriverKind::kNative
             : o.driver == "resp" ? cairn::bench::DriverKind::kResp
                                  : cairn::bench::DriverKind::kRedisCluster;
  c.driver_options.servers = o.servers;
  c.driver_options.timeout = std::chrono::milliseconds(o.timeout_ms);
  c.driver_options.token_aware = o.token_aware == "on";
  c.driver_options.client_cache = o.client_cache == "on";
  if (auto spec = cairn::bench::FindWorkload(c.workload)) c.distribution = spec->distribution;
  if (c.workload == "cas-contended") c.distribution = cairn::bench::KeyDistribution::kUniform;
  if (!o.distribution.empty()) c.distribution = *cairn::bench::ParseKeyDistribution(o.distribution);
}

// ---- the run ------------------------------------------------------------------------------------

// What is measured, with what, before the table.
void PrintHeader(const cairn::bench::Runner& r) {
  const RunConfig& config = r.config();
  const auto spec = cairn::bench::FindWorkload(config.workload);
  std::cout << fmt::format(
      "cairn-bench {}: {}\nworkload {} ({}), {} keys {}, {} clients on {} thread(s), "
      "{}-byte values, {} for {:g} s (+{:g} s warm-up)\n",
      CAIRN_VERSION, r.description(), config.workload,
      spec ? spec->summary : std::string("compare-and-swap"), config.records,
      KeyDistributionName(config.distribution), config.clients, config.threads,
      config.value_sizes.ToString(),
      config.rate > 0 ? fmt::format("open loop at {:g} ops/s", config.rate)
                      : std::string("closed loop"),
      config.duration_s, config.warmup_s);
  if (spec && spec->mix.rmw > 0) std::cout << "read-modify-write: " << r.rmw_meaning() << "\n";
}

// Writes the records, with a progress line at a terminal (on stderr: stdout keeps the results;
// elsewhere one line). Adds the phase's rows; false when some records could not be written.
bool LoadPhase(const Options& o, cairn::bench::Runner& r, std::vector<Row>* rows) {
  const RunConfig& config = r.config();
  cairn::tools::ProgressLine progress(
      {.label = "loading", .unit = "records", .total = config.records});
  if (!o.json && !progress.visible()) {
    std::cerr << "loading " << config.records << " records...\n";
  }
  double seconds = 0;
  Tally load = r.Load(&seconds, [&](uint64_t n, uint64_t bytes) { progress.Add(n, bytes); });
  progress.Finish();
  PrintErrorKinds("load", load);
  for (Row row : Rows("load", load, seconds, 0)) rows->push_back(row);
  return load.total_errors() == 0;
}

// Loads (unless --no-load, or the workload needs no records), runs the workload, the --sweep and
// the --baseline, and prints what they measured. Returns the exit code: 3 when loading failed.
int Bench(const Options& o, cairn::bench::Runner& r) {
  const RunConfig& config = r.config();
  const auto spec = cairn::bench::FindWorkload(config.workload);
  if (!o.json) PrintHeader(r);

  std::vector<Row> rows;
  int exit_code = 0;
  if (o.load && !config.is_cas() && spec && spec->needs_load()) {
    if (!LoadPhase(o, r, &rows)) exit_code = 3;
  }

  // Returns the phase's throughput.
  auto run_phase = [&](const std::string& name, bool ping, double rate) {
    r.set_rate(rate);
    Tally t = r.Run(ping);
    PrintErrorKinds(name, t);
    for (Row row : Rows(name, t, config.duration_s, rate)) rows.push_back(row);
    return static_cast<double>(t.ops()) / config.duration_s;
  };
  const bool server_metrics = config.driver == cairn::bench::DriverKind::kNative;
  const bool cas_metrics = config.is_cas() && server_metrics;
  std::map<std::string, uint64_t> before, after;
  if (server_metrics) before = ServerMetrics(config);
  const double run_rate = run_phase("run", false, config.rate);
  if (server_metrics) after = ServerMetrics(config);
  for (double percent : o.sweep) {
    run_phase(fmt::format("at-{:g}%", percent), false, run_rate * percent / 100);
  }
  double ping_rate = 0;
  if (o.baseline) ping_rate = run_phase("baseline", true, config.rate);

  Print(o, config, rows);
  if (cas_metrics && !o.json) PrintPaxosRoundTrips(before, after);
  if (server_metrics && !o.json) PrintReplicaReads(before, after);
  if (o.baseline && !o.json && ping_rate > 0) {
    std::cout << fmt::format(
        "run/baseline throughput ratio: {:.2f} (workload {} vs PING, same clients and "
        "connections)\n",
        run_rate / ping_rate, config.workload);
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  RunConfig c;
  CLI::App app{kDescription};
  AddFlags(app, o, c);
  try {
    app.parse(argc, argv);
    CheckFlags(o, c);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  Configure(o, c);
  auto runner = cairn::bench::Runner::Create(c);
  if (!runner.ok()) {
    std::cerr << "cairn-bench: " << runner.status().ToString() << "\n";
    return 1;
  }
  return Bench(o, **runner);
}
