// Metrics in the Prometheus text exposition format (version 0.0.4): counters, gauges and
// histograms with fixed buckets, a writer that renders families of samples, a registry of
// collectors that a scrape renders, and the request counters every front door records into.
//
// Recording is lock-free (relaxed atomics), so the hot path of a request costs a few atomic
// adds; rendering walks everything and is meant for a scrape every few seconds.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cairn/status.h"
#include "cairn/types.h"

namespace cairn::base::metrics {

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool IsValidMetricName(std::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*, and not starting with "__" (reserved).
bool IsValidLabelName(std::string_view name);
// A label value with backslash, double quote and line feed escaped.
std::string EscapeLabelValue(std::string_view value);
// A HELP text with backslash and line feed escaped.
std::string EscapeHelp(std::string_view help);
// A sample value: integers without a fraction, "+Inf", "-Inf", "NaN", else shortest round-trip.
std::string FormatValue(double value);

using Labels = std::vector<std::pair<std::string, std::string>>;

enum class Type { kCounter, kGauge, kHistogram };

// A monotonically increasing count. Thread safety: any thread.
class Counter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// Counts that every request adds to are kept per thread: one shared count would have the cores
// pass its cache line back and forth on each request. ThreadSlot() is the calling thread's slot,
// 0 .. kThreadSlots - 1, given out in the order threads first ask (the reactors get one each);
// threads beyond kThreadSlots share slots, which stays exact since the slots are atomic.
inline constexpr size_t kThreadSlots = 4;
size_t ThreadSlot();

// A Counter for hot paths: one slot per thread slot, each on a cache line of its own, added up
// when read. Thread safety: any thread.
class ShardedCounter {
 public:
  void Add(uint64_t n = 1) { slots_[ThreadSlot()].value.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const {
    uint64_t sum = 0;
    for (const Slot& slot : slots_) sum += slot.value.load(std::memory_order_relaxed);
    return sum;
  }

 private:
  struct alignas(64) Slot {
    std::atomic<uint64_t> value{0};
  };
  std::array<Slot, kThreadSlots> slots_;
};

// What a histogram held at one moment: cumulative counts per upper bound, as Prometheus wants.
struct HistogramSnapshot {
  std::vector<double> bounds;        // upper bounds, ascending, +Inf not included
  std::vector<uint64_t> cumulative;  // one per bound, then one for +Inf (== count)
  double sum = 0;
  uint64_t count = 0;
};

// Latency buckets from 100 us to 10 s, in seconds.
std::span<const double> LatencyBuckets();

// A histogram of durations with fixed bucket bounds (seconds). Thread safety: any thread.
class LatencyHistogram {
 public:
  explicit LatencyHistogram(std::span<const double> bounds = LatencyBuckets());
  void Record(std::chrono::nanoseconds d);
  HistogramSnapshot Snapshot() const;
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  const std::vector<double> bounds_;
  std::vector<std::atomic<uint64_t>> counts_;  // per bucket (not cumulative), +Inf last
  std::atomic<uint64_t> sum_ns_{0};
  std::atomic<uint64_t> count_{0};
};

// Renders families of samples in the text format. Each family must be written in one piece
// (Family, then its samples); writing a family name twice is a bug and is skipped, as are invalid
// metric or label names (a scraper would reject the whole page).
class Exposition {
 public:
  // Writes the HELP and TYPE lines of a family; false (and its samples are dropped) when the name
  // is invalid or already written.
  bool Family(std::string_view name, std::string_view help, Type type);
  // One sample of the current family; `suffix` is appended to the family name ("_total", "_sum").
  void Sample(const Labels& labels, double value, std::string_view suffix = "");
  // The _bucket, _sum and _count samples of a histogram of the current family.
  void Histogram(const Labels& labels, const HistogramSnapshot& h);
  // A family of one sample without labels.
  void Single(std::string_view name, std::string_view help, Type type, double value);
  // A histogram family of one series without labels.
  void Single(std::string_view name, std::string_view help, const HistogramSnapshot& h);

  const std::string& text() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  void Line(std::string_view suffix, const Labels& labels, std::string_view extra_name,
            std::string_view extra_value, double value);

  std::string out_;
  std::string current_;  // the family being written; empty when it was refused
  std::set<std::string, std::less<>> written_;
};

// The collectors a scrape runs, in the order they were added. Thread safety: Add() and Render()
// may be called from any thread; collectors run on the caller of Render().
class Registry {
 public:
  using Collector = std::function<void(Exposition&)>;
  void Add(Collector collector);
  std::string Render() const;

 private:
  mutable std::mutex mu_;
  std::vector<Collector> collectors_;  // guarded by mu_
};

// ----------------------------------------------------------------------------------------------
// Client requests, as every front door counts them.

enum class FrontDoor : uint8_t { kNative, kHttp, kResp };
inline constexpr size_t kFrontDoors = 3;
std::string_view FrontDoorName(FrontDoor f);  // "native", "http", "resp"

enum class Operation : uint8_t {
  kGet,
  kPut,
  kDelete,
  kCas,
  kScan,
  kBatchGet,
  kBatchPut,
  kKeyspaceCreate,
  kKeyspaceList,
  kKeyspaceDescribe,
  kKeyspaceAlter,
  kKeyspaceDrop,
  kClusterStatus,
  kPing,
  kMetrics,
  kNodeOperation,
  kRepair,
  kCompact,
  kHotKeys,
  kOther,  // malformed or unknown requests
};
inline constexpr size_t kOperations = 20;
std::string_view OperationName(Operation op);  // "get", "keyspace_create", ...

inline constexpr size_t kLevels = 12;    // Consistency::kDefault .. kLocalSerial
inline constexpr size_t kOutcomes = 12;  // Code::kOk .. kPermissionDenied

// Requests by front door, operation, consistency level and outcome, and their latency by front
// door and operation. Thread safety: any thread.
class RequestMetrics {
 public:
  RequestMetrics();
  void Record(FrontDoor door, Operation op, Consistency level, Code outcome,
              std::chrono::nanoseconds latency);
  uint64_t Count(FrontDoor door, Operation op, Consistency level, Code outcome) const;
  // Writes cairn_requests_total and cairn_request_duration_seconds.
  void Collect(Exposition& out) const;

 private:
  // Every request is recorded, by whichever reactor answered it: with one set of counts, the
  // reactors' cores would pass the same cache lines back and forth on each request (4% of GETs
  // per second at redis-benchmark -P 16 on two cores). So each thread slot (ThreadSlot()) has
  // a shard of its own, and reading adds the shards up.
  struct Shard {
    Shard();
    std::vector<Counter> requests;            // kFrontDoors * kOperations * kLevels * kOutcomes
    std::vector<LatencyHistogram> latencies;  // kFrontDoors * kOperations
  };

  static size_t Index(FrontDoor door, Operation op, Consistency level, Code outcome);
  Shard& Mine();
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace cairn::base::metrics
