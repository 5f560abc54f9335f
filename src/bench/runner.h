// Runs a workload: driver threads, each with its own io_context, driver and simulated clients,
// through a load phase and measured run phases. Closed loop (each client sends its next request
// when the last is answered: maximum throughput) or open loop (requests are due at fixed
// intervals whatever the answers; latency counts from when a request was due, so a stall shows
// up in the latency of every request it delayed, not only the one that met it).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/histogram.h"
#include "bench/driver.h"
#include "bench/workload.h"
#include "cairn/status.h"

namespace cairn::bench {

enum class DriverKind { kNative, kResp, kRedisCluster };

struct RunConfig {
  DriverKind driver = DriverKind::kNative;
  DriverOptions driver_options;
  uint32_t clients = 64;
  uint32_t threads = 1;
  // a..f, w (YCSB), or cas (a key per client) / cas-contended (the clients share the records).
  std::string workload = "a";
  uint64_t records = 100'000;
  KeyDistribution distribution = KeyDistribution::kZipfian;
  double hot_key_share = 0;  // this share of key choices is one key (KeyChooser)
  ValueSizes value_sizes;
  uint32_t scan_length = 100;  // YCSB E: scans read 1..scan_length keys (uniform)
  double duration_s = 10;
  double warmup_s = 1;
  double rate = 0;  // ops/s over all clients; 0: closed loop
  uint64_t seed = 1;

  bool is_cas() const { return workload.starts_with("cas"); }
};

// What a phase measured, per operation.
struct Tally {
  std::map<Op, base::Histogram> latency;  // nanoseconds
  std::map<Op, uint64_t> errors;
  std::map<std::string, uint64_t> error_kinds;  // "UNAVAILABLE: ..." -> count (first message)
  uint64_t not_applied = 0;  // RMW and CAS answered, but the condition no longer held
  uint64_t missed = 0;       // open loop: due in the window, never started (far behind)

  void Merge(const Tally& other);
  uint64_t ops() const;
  uint64_t total_errors() const;
};

class Worker;

class Runner {
 public:
  // Makes the driver threads and checks each can reach the servers. Errors say what is wrong
  // (server down: UNAVAILABLE; a workload the server cannot run: INVALID_ARGUMENT).
  static Result<std::unique_ptr<Runner>> Create(RunConfig config);
  ~Runner();

  // Writes records [0, records) in batches of up to 100 (4 MiB). `seconds` gets the time it took.
  // `progress`, when set, is called after each batch with its records and bytes (keys and values),
  // from the driver threads, concurrently.
  using LoadProgress = std::function<void(uint64_t records, uint64_t bytes)>;
  Tally Load(double* seconds, const LoadProgress& progress = {});
  // A warm-up, then `duration_s` measured, of the workload (or of PING when `ping`).
  Tally Run(bool ping);
  // Open loop: the rate for the next Run() calls (0: closed loop).
  void set_rate(double rate) { config_.rate = rate; }

  const RunConfig& config() const { return config_; }
  const std::string& description() const { return description_; }
  const std::string& rmw_meaning() const { return rmw_meaning_; }

 private:
  explicit Runner(RunConfig config);
  template <typename Body>
  void OnAllWorkers(Body body);
  Tally Collect();

  RunConfig config_;
  std::string description_, rmw_meaning_;
  std::atomic<uint64_t> inserted_{0};  // the next key index to insert, shared by all workers
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace cairn::bench
