// cairn-bench: a load generator for Cairn's native protocol. It prints throughput and latency
// percentiles; it is a program for measuring, not a test. See docs/benchmarks.md.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include "base/histogram.h"
#include "cairn/client.h"

// See native_front_door.cc: a g++ 12 false positive on asio's coroutine frames.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using cairn::base::Histogram;

enum class Op { kGet, kPut, kCas, kPing };
const char* OpName(Op op) {
  switch (op) {
    case Op::kGet:
      return "GET";
    case Op::kPut:
      return "PUT";
    case Op::kCas:
      return "CAS";
    case Op::kPing:
      return "PING";
  }
  return "?";
}

bool IsCas(const std::string& workload) { return workload.starts_with("cas"); }

struct Config {
  std::vector<std::string> servers{"127.0.0.1:7400"};
  uint32_t clients = 64;
  uint32_t threads = 1;
  uint32_t connections = 4;
  std::string workload = "a";
  uint64_t keys = 100'000;
  uint32_t value_size = 100;
  double duration_s = 10;
  double warmup_s = 1;
  bool load = true;
  bool baseline = false;
  bool json = false;
  std::string keyspace = "default";
  std::string read_cl, write_cl, commit_cl;
  uint32_t timeout_ms = 5000;
};

// What one phase measured, per operation.
struct Tally {
  std::map<Op, Histogram> latency;  // nanoseconds
  std::map<Op, uint64_t> errors;
  std::map<std::string, uint64_t> error_kinds;
  uint64_t cas_not_applied = 0;  // answered, but the condition no longer held (contention)

  void Merge(const Tally& other) {
    cas_not_applied += other.cas_not_applied;
    for (const auto& [op, h] : other.latency) latency[op].Merge(h);
    for (const auto& [op, n] : other.errors) errors[op] += n;
    for (const auto& [k, n] : other.error_kinds) error_kinds[k] += n;
  }
};

double ReadFraction(const std::string& workload) {
  if (workload == "a") return 0.5;
  if (workload == "b") return 0.95;
  if (workload == "c") return 1.0;
  return 0.0;  // w
}

std::string KeyName(uint64_t i) { return fmt::format("bench:{:010}", i); }

// One I/O thread of the driver: its own io_context, client and tallies.
class Worker {
 public:
  Worker(const Config& config, uint32_t index, uint32_t clients)
      : config_(config), index_(index), clients_(clients) {
    cairn::ClientOptions options;
    options.servers = config.servers;
    options.connections_per_server = config.connections;
    options.keyspace = config.keyspace;
    options.request_timeout = std::chrono::milliseconds(config.timeout_ms);
    if (!config.read_cl.empty())
      options.read_consistency = *cairn::ParseConsistency(config.read_cl);
    if (!config.write_cl.empty())
      options.write_consistency = *cairn::ParseConsistency(config.write_cl);
    client_ = std::make_unique<cairn::AsyncClient>(io_.get_executor(), options);
  }

  // Writes keys [begin, end) in batches, spread over this worker's clients.
  void Load(uint64_t begin, uint64_t end) {
    std::atomic<uint64_t> next{begin};
    RunClients([&](uint32_t) { return LoadClient(next, end); });
  }

  // Runs the mixed workload (or pings) until `end`, measuring from `measure_from`.
  void Run(bool ping, Clock::time_point measure_from, Clock::time_point end) {
    RunClients([&](uint32_t c) { return RunClient(ping, c, measure_from, end); });
  }

  Tally TakeTally() { return std::exchange(tally_, Tally()); }

 private:
  // Runs one coroutine per client until all have finished. The pooled connections' own tasks
  // keep the io_context busy, so the last client stops it; they resume in the next phase.
  template <typename MakeClient>
  void RunClients(MakeClient make) {
    uint32_t running = clients_;
    for (uint32_t c = 0; c < clients_; ++c) {
      asio::co_spawn(io_, make(c), [this, &running](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
        if (--running == 0) io_.stop();
      });
    }
    io_.restart();
    io_.run();
  }

  void Count(Op op, const cairn::Status& s, Clock::duration took, bool measured) {
    if (!measured) return;
    if (s.ok()) {
      tally_.latency[op].Record(std::chrono::duration_cast<std::chrono::nanoseconds>(took).count());
    } else {
      ++tally_.errors[op];
      ++tally_.error_kinds[std::string(cairn::CodeName(s.code()))];
    }
  }

  asio::awaitable<void> LoadClient(std::atomic<uint64_t>& next, uint64_t end) {
    const std::string value(config_.value_size, 'v');
    constexpr uint64_t kBatch = 100;
    while (true) {
      const uint64_t first = next.fetch_add(kBatch);
      if (first >= end) co_return;
      std::vector<std::pair<std::string, std::string>> items;
      for (uint64_t i = first; i < std::min(first + kBatch, end); ++i) {
        items.emplace_back(KeyName(i), value);
      }
      const auto start = Clock::now();
      auto r = co_await client_->BatchPut(std::move(items));
      cairn::Status s = r.status();
      for (size_t i = 0; r.ok() && s.ok() && i < r->size(); ++i) s = (*r)[i].status();
      Count(Op::kPut, s, Clock::now() - start, true);
    }
  }

  asio::awaitable<void> RunClient(bool ping, uint32_t client, Clock::time_point measure_from,
                                  Clock::time_point end) {
    std::mt19937_64 rng((uint64_t{index_} << 32) | client);
    std::uniform_int_distribution<uint64_t> key_dist(0, config_.keys - 1);
    std::uniform_real_distribution<double> coin(0.0, 1.0);
    const double reads = ReadFraction(config_.workload);
    std::string value(config_.value_size, '\0');
    for (auto& c : value) c = static_cast<char>('a' + rng() % 26);
    // CAS workloads: the version this client last saw per key. "cas" gives every client a key of
    // its own (uncontended: each swap applies); "cas-contended" shares --keys keys among all.
    std::map<std::string, std::optional<cairn::Version>> seen;
    const std::string own_key = fmt::format("bench:cas:{}:{}", index_, client);
    while (true) {
      const auto start = Clock::now();
      if (start >= end) co_return;
      const bool measured = start >= measure_from;
      if (!ping && IsCas(config_.workload)) {
        std::string key = config_.workload == "cas" ? own_key : KeyName(key_dist(rng));
        auto known = seen.find(key);
        cairn::CasCondition condition = known != seen.end() && known->second
                                            ? cairn::CasCondition::IfVersion(*known->second)
                                            : cairn::CasCondition::IfNotExists();
        cairn::WriteOptions options;
        if (!config_.commit_cl.empty()) {
          options.commit_consistency = cairn::ParseConsistency(config_.commit_cl);
        }
        auto r = co_await client_->Cas(key, condition, value, std::move(options));
        Count(Op::kCas, r.status(), Clock::now() - start, measured);
        if (r.ok()) {
          if (measured && !r->applied) ++tally_.cas_not_applied;
          seen[key] =
              r->current ? std::optional<cairn::Version>(r->current->version) : std::nullopt;
        } else {
          seen.erase(key);
        }
      } else if (ping) {
        auto r = co_await client_->Ping();
        Count(Op::kPing, r.status(), Clock::now() - start, measured);
      } else if (coin(rng) < reads) {
        auto r = co_await client_->Get(KeyName(key_dist(rng)));
        Count(Op::kGet, r.status(), Clock::now() - start, measured);
      } else {
        auto r = co_await client_->Put(KeyName(key_dist(rng)), value);
        Count(Op::kPut, r.status(), Clock::now() - start, measured);
      }
    }
  }

  const Config& config_;
  const uint32_t index_;
  const uint32_t clients_;
  asio::io_context io_{1};
  std::unique_ptr<cairn::AsyncClient> client_;
  Tally tally_;
};

struct Row {
  std::string phase;
  std::string op;
  uint64_t ops = 0;
  double ops_per_s = 0;
  double p50_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0;
  uint64_t errors = 0;
};

std::vector<Row> Rows(const std::string& phase, const Tally& t, double seconds) {
  std::vector<Row> rows;
  Histogram all;
  uint64_t all_errors = 0;
  auto ms = [](uint64_t ns) { return ns / 1e6; };
  for (const auto& [op, h] : t.latency) {
    const uint64_t errors = t.errors.contains(op) ? t.errors.at(op) : 0;
    rows.push_back(Row{phase, OpName(op), h.count(), h.count() / seconds, ms(h.Percentile(50)),
                       ms(h.Percentile(99)), ms(h.Percentile(99.9)), ms(h.max()), errors});
    all.Merge(h);
    all_errors += errors;
  }
  for (const auto& [op, n] : t.errors) {
    if (!t.latency.contains(op)) rows.push_back(Row{phase, OpName(op), 0, 0, 0, 0, 0, 0, n});
  }
  if (t.latency.size() > 1) {
    rows.push_back(Row{phase, "all", all.count(), all.count() / seconds, ms(all.Percentile(50)),
                       ms(all.Percentile(99)), ms(all.Percentile(99.9)), ms(all.max()),
                       all_errors});
  }
  return rows;
}

void Print(const Config& config, const std::vector<Row>& rows) {
  if (config.json) {
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
                               {"workload", config.workload},
                               {"clients", config.clients},
                               {"value_size", config.value_size}};
      std::cout << j.dump() << "\n";
    }
    return;
  }
  std::cout << fmt::format("{:<9} {:<5} {:>10} {:>11} {:>9} {:>9} {:>9} {:>9} {:>7}\n", "phase",
                           "op", "ops", "ops/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms",
                           "errors");
  for (const Row& r : rows) {
    std::cout << fmt::format(
        "{:<9} {:<5} {:>10} {:>11.1f} {:>9.3f} {:>9.3f} {:>9.3f} {:>9.3f} {:>7}\n", r.phase, r.op,
        r.ops, r.ops_per_s, r.p50_ms, r.p99_ms, r.p999_ms, r.max_ms, r.errors);
  }
}

// The counters of every server, summed (empty when one does not answer).
std::map<std::string, uint64_t> ServerMetrics(const Config& config) {
  std::map<std::string, uint64_t> sum;
  for (const std::string& server : config.servers) {
    cairn::ClientOptions options;
    options.servers = {server};
    options.connections_per_server = 1;
    cairn::Client client(options);
    auto m = client.Metrics();
    if (!m.ok()) return {};
    for (const auto& [name, value] : *m) sum[name] += value;
  }
  return sum;
}

// Paxos round trips per compare-and-swap, as the coordinators counted them over the run
// (warm-up included on both sides of the ratio).
void PrintPaxosRoundTrips(const std::map<std::string, uint64_t>& before,
                          const std::map<std::string, uint64_t>& after) {
  auto delta = [&](const std::string& name) -> double {
    auto a = after.find(name);
    auto b = before.find(name);
    if (a == after.end() || b == before.end()) return 0;
    return static_cast<double>(a->second - b->second);
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

// Runs `body(worker)` on every worker at once, one thread each.
template <typename Body>
void OnAllWorkers(std::vector<std::unique_ptr<Worker>>& workers, Body body) {
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&body, &w] { body(*w); });
  for (auto& t : threads) t.join();
}

Tally Collect(std::vector<std::unique_ptr<Worker>>& workers) {
  Tally total;
  for (auto& w : workers) total.Merge(w->TakeTally());
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  Config config;
  CLI::App app{
      "cairn-bench: load generator for Cairn (native protocol).\n"
      "Prints ops/s and p50/p99/p99.9 latency per operation. Workloads: a = 50% GET / "
      "50% PUT, b = 95% GET / 5% PUT, c = 100% GET, w = 100% PUT, cas = compare-and-swap on a "
      "key per client, cas-contended = compare-and-swap on --keys shared keys (with the Paxos "
      "round trips per swap from the servers' metrics)."};
  app.add_option("--server", config.servers, "HOST:PORT of a node (repeat for several)")
      ->capture_default_str();
  app.add_option("--clients", config.clients, "Concurrent clients (each one request at a time)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100'000u));
  app.add_option("--threads", config.threads, "Driver I/O threads")
      ->capture_default_str()
      ->check(CLI::Range(1u, 64u));
  app.add_option("--connections", config.connections, "Connections per server per thread")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1024u));
  app.add_option("--workload", config.workload,
                 "a, b, c, w; cas (compare-and-swap, a key per client) or cas-contended (all "
                 "clients swap the --keys keys)")
      ->capture_default_str()
      ->check(CLI::IsMember({"a", "b", "c", "w", "cas", "cas-contended"}));
  app.add_option("--keys", config.keys, "Number of distinct keys")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  app.add_option("--value-size", config.value_size, "Value size in bytes")->capture_default_str();
  app.add_option("--duration", config.duration_s, "Measured seconds")->capture_default_str();
  app.add_option("--warmup", config.warmup_s, "Unmeasured seconds before measuring")
      ->capture_default_str();
  app.add_flag("!--no-load", config.load, "Skip the load phase (keys must already exist)");
  app.add_flag("--baseline", config.baseline,
               "Also run PING for the same time and print the ratio (protocol cost baseline)");
  app.add_flag("--json", config.json, "Print one JSON object per row");
  app.add_option("--keyspace", config.keyspace, "Keyspace")->capture_default_str();
  app.add_option("--read-cl", config.read_cl, "Consistency level of reads");
  app.add_option("--write-cl", config.write_cl, "Consistency level of writes");
  app.add_option("--commit-cl", config.commit_cl,
                 "Commit level of compare-and-swap (default: the server's, QUORUM)");
  app.add_option("--timeout", config.timeout_ms, "Request timeout in ms")->capture_default_str();
  try {
    app.parse(argc, argv);
    for (const auto* level : {&config.read_cl, &config.write_cl, &config.commit_cl}) {
      if (!level->empty() && !cairn::ParseConsistency(*level)) {
        throw CLI::ValidationError("--read-cl/--write-cl/--commit-cl",
                                   "unknown consistency level " + *level);
      }
    }
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  config.threads = std::min(config.threads, config.clients);
  std::vector<std::unique_ptr<Worker>> workers;
  for (uint32_t t = 0; t < config.threads; ++t) {
    const uint32_t share = config.clients / config.threads + (t < config.clients % config.threads);
    workers.push_back(std::make_unique<Worker>(config, t, share));
  }
  if (!config.json) {
    const std::string mix =
        IsCas(config.workload)
            ? std::string(config.workload == "cas" ? "compare-and-swap, one key per client"
                                                   : "compare-and-swap on shared keys")
            : fmt::format("{:.0f}% GET, {:.0f}% PUT", ReadFraction(config.workload) * 100,
                          (1 - ReadFraction(config.workload)) * 100);
    std::cout << fmt::format(
        "cairn-bench {}: workload {} ({}), {} clients on {} thread(s) x {} connection(s) per "
        "server, {} keys, {}-byte values, {:.0f} s (+{:.0f} s warm-up)\n",
        CAIRN_VERSION, config.workload, mix, config.clients, config.threads, config.connections,
        IsCas(config.workload) && config.workload == "cas" ? uint64_t{config.clients} : config.keys,
        config.value_size, config.duration_s, config.warmup_s);
  }

  std::vector<Row> rows;
  int exit_code = 0;
  if (config.load && !IsCas(config.workload) && ReadFraction(config.workload) > 0) {
    if (!config.json) std::cerr << "loading " << config.keys << " keys...\n";
    const auto start = Clock::now();
    const uint64_t per = (config.keys + config.threads - 1) / config.threads;
    uint32_t i = 0;
    OnAllWorkers(workers, [&](Worker& w) {
      const uint32_t me = i++;  // workers start in order: each takes its own slice
      w.Load(std::min<uint64_t>(config.keys, me * per),
             std::min<uint64_t>(config.keys, (me + 1) * per));
    });
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    Tally load = Collect(workers);
    for (Row r : Rows("load", load, seconds)) {
      r.op = "BATCH";  // each op is a batch of 100 PUTs
      rows.push_back(r);
    }
    if (!load.errors.empty()) exit_code = 3;
  }

  uint64_t cas_not_applied = 0;
  auto run_phase = [&](const std::string& name, bool ping) {
    const auto measure_from = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                 std::chrono::duration<double>(config.warmup_s));
    const auto end = measure_from + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(config.duration_s));
    OnAllWorkers(workers, [&](Worker& w) { w.Run(ping, measure_from, end); });
    Tally t = Collect(workers);
    if (!ping) cas_not_applied = t.cas_not_applied;
    auto phase_rows = Rows(name, t, config.duration_s);
    rows.insert(rows.end(), phase_rows.begin(), phase_rows.end());
    for (const auto& [kind, n] : t.error_kinds) {
      std::cerr << fmt::format("{}: {} errors of kind {}\n", name, n, kind);
    }
    uint64_t ops = 0;
    for (const auto& [op, h] : t.latency) ops += h.count();
    return ops / config.duration_s;
  };
  const auto before = ServerMetrics(config);
  const double run_rate = run_phase("run", false);
  const auto after = ServerMetrics(config);
  double ping_rate = 0;
  if (config.baseline) ping_rate = run_phase("baseline", true);

  Print(config, rows);
  if (IsCas(config.workload) && !config.json) {
    uint64_t swaps = 0;
    for (const Row& r : rows) {
      if (r.phase == "run" && r.op == "CAS") swaps = r.ops;
    }
    std::cout << fmt::format(
        "CAS answered {} times: {} applied, {} not applied (condition lost "
        "to another client)\n",
        swaps, swaps - cas_not_applied, cas_not_applied);
    PrintPaxosRoundTrips(before, after);
  }
  if (config.baseline && !config.json && ping_rate > 0) {
    std::cout << fmt::format(
        "run/baseline throughput ratio: {:.2f} (workload {} vs PING, same "
        "clients and connections)\n",
        run_rate / ping_rate, config.workload);
  }
  return exit_code;
}
