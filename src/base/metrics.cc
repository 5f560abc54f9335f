#include "base/metrics.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <iterator>

#include <fmt/format.h>

namespace cairn::base::metrics {
namespace {

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

constexpr std::array<double, 16> kLatencyBuckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                 0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                 1,      2.5,     5,      10};

std::string_view TypeName(Type t) {
  switch (t) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

bool IsValidMetricName(std::string_view name) {
  if (name.empty() || !(IsNameStart(name[0]) || name[0] == ':')) return false;
  for (char c : name) {
    if (!(IsNameStart(c) || IsDigit(c) || c == ':')) return false;
  }
  return true;
}

bool IsValidLabelName(std::string_view name) {
  if (name.empty() || !IsNameStart(name[0]) || name.starts_with("__")) return false;
  for (char c : name) {
    if (!(IsNameStart(c) || IsDigit(c))) return false;
  }
  return true;
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Integers up to 2^53 print exactly without a fraction or exponent.
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {
    return fmt::format("{}", static_cast<int64_t>(value));
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, end);
}

size_t ThreadSlot() {
  static std::atomic<size_t> next{0};
  thread_local const size_t slot = next.fetch_add(1, std::memory_order_relaxed) % kThreadSlots;
  return slot;
}

std::span<const double> LatencyBuckets() { return kLatencyBuckets; }

LatencyHistogram::LatencyHistogram(std::span<const double> bounds)
    : bounds_(bounds.begin(), bounds.end()), counts_(bounds.size() + 1) {}

void LatencyHistogram::Record(std::chrono::nanoseconds d) {
  const int64_t ns = std::max<int64_t>(d.count(), 0);
  const double seconds = static_cast<double>(ns) / 1e9;
  size_t i = 0;
  while (i < bounds_.size() && seconds > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

HistogramSnapshot LatencyHistogram::Snapshot() const {
  HistogramSnapshot s;
  s.bounds = bounds_;
  uint64_t running = 0;
  for (const auto& c : counts_) {
    running += c.load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  // Recorded concurrently, count_ may run ahead of the buckets; the page must stay consistent
  // (the +Inf bucket equals _count), so the count is taken from the buckets.
  s.count = running;
  s.sum = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return s;
}

bool Exposition::Family(std::string_view name, std::string_view help, Type type) {
  current_.clear();
  if (!IsValidMetricName(name) || written_.contains(name)) return false;
  written_.emplace(name);
  current_ = name;
  fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, EscapeHelp(help),
                 name, TypeName(type));
  return true;
}

void Exposition::Line(std::string_view suffix, const Labels& labels, std::string_view extra_name,
                      std::string_view extra_value, double value) {
  if (current_.empty()) return;
  for (const auto& [k, v] : labels) {
    if (!IsValidLabelName(k)) return;
  }
  out_ += current_;
  out_ += suffix;
  if (!labels.empty() || !extra_name.empty()) {
    out_ += '{';
    bool first = true;
    auto add = [&](std::string_view k, std::string_view v) {
      if (!first) out_ += ',';
      first = false;
      out_ += k;
      out_ += "=\"";
      out_ += EscapeLabelValue(v);
      out_ += '"';
    };
    for (const auto& [k, v] : labels) add(k, v);
    if (!extra_name.empty()) add(extra_name, extra_value);
    out_ += '}';
  }
  out_ += ' ';
  out_ += FormatValue(value);
  out_ += '\n';
}

void Exposition::Sample(const Labels& labels, double value, std::string_view suffix) {
  Line(suffix, labels, "", "", value);
}

void Exposition::Histogram(const Labels& labels, const HistogramSnapshot& h) {
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    Line("_bucket", labels, "le", FormatValue(h.bounds[i]), static_cast<double>(h.cumulative[i]));
  }
  Line("_bucket", labels, "le", "+Inf", static_cast<double>(h.count));
  Line("_sum", labels, "", "", h.sum);
  Line("_count", labels, "", "", static_cast<double>(h.count));
}

void Exposition::Single(std::string_view name, std::string_view help, Type type, double value) {
  if (Family(name, help, type)) Sample({}, value);
}

void Exposition::Single(std::string_view name, std::string_view help, const HistogramSnapshot& h) {
  if (Family(name, help, Type::kHistogram)) Histogram({}, h);
}

void Registry::Add(Collector collector) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collector));
}

std::string Registry::Render() const {
  std::vector<Collector> collectors;
  {
    std::lock_guard lock(mu_);
    collectors = collectors_;
  }
  Exposition out;
  for (const auto& c : collectors) c(out);
  return out.Take();
}

// ----------------------------------------------------------------------------------------------

std::string_view FrontDoorName(FrontDoor f) {
  switch (f) {
    case FrontDoor::kNative:
      return "native";
    case FrontDoor::kHttp:
      return "http";
    case FrontDoor::kResp:
      return "resp";
  }
  return "unknown";
}

std::string_view OperationName(Operation op) {
  static constexpr std::array<std::string_view, kOperations> kNames{"get",
                                                                    "put",
                                                                    "delete",
                                                                    "cas",
                                                                    "scan",
                                                                    "batch_get",
                                                                    "batch_put",
                                                                    "keyspace_create",
                                                                    "keyspace_list",
                                                                    "keyspace_describe",
                                                                    "keyspace_alter",
                                                                    "keyspace_drop",
                                                                    "cluster_status",
                                                                    "ping",
                                                                    "metrics",
                                                                    "node_operation",
                                                                    "repair",
                                                                    "compact",
                                                                    "hot_keys",
                                                                    "other"};
  const auto i = static_cast<size_t>(op);
  return i < kNames.size() ? kNames[i] : "other";
}

RequestMetrics::Shard::Shard()
    : requests(kFrontDoors * kOperations * kLevels * kOutcomes),
      latencies(kFrontDoors * kOperations) {}

RequestMetrics::RequestMetrics() {
  for (size_t i = 0; i < kThreadSlots; ++i) shards_.push_back(std::make_unique<Shard>());
}

RequestMetrics::Shard& RequestMetrics::Mine() { return *shards_[ThreadSlot()]; }

size_t RequestMetrics::Index(FrontDoor door, Operation op, Consistency level, Code outcome) {
  const size_t d = std::min<size_t>(static_cast<size_t>(door), kFrontDoors - 1);
  const size_t o = std::min<size_t>(static_cast<size_t>(op), kOperations - 1);
  // Out-of-range values (a future code or level) are counted under the last one, never lost.
  const size_t l = std::min<size_t>(static_cast<size_t>(level), kLevels - 1);
  const size_t c = std::min<size_t>(static_cast<size_t>(outcome), kOutcomes - 1);
  return ((d * kOperations + o) * kLevels + l) * kOutcomes + c;
}

void RequestMetrics::Record(FrontDoor door, Operation op, Consistency level, Code outcome,
                            std::chrono::nanoseconds latency) {
  Shard& shard = Mine();
  shard.requests[Index(door, op, level, outcome)].Add();
  const size_t d = std::min<size_t>(static_cast<size_t>(door), kFrontDoors - 1);
  const size_t o = std::min<size_t>(static_cast<size_t>(op), kOperations - 1);
  shard.latencies[d * kOperations + o].Record(latency);
}

uint64_t RequestMetrics::Count(FrontDoor door, Operation op, Consistency level,
                               Code outcome) const {
  uint64_t n = 0;
  for (const auto& shard : shards_) n += shard->requests[Index(door, op, level, outcome)].value();
  return n;
}

void RequestMetrics::Collect(Exposition& out) const {
  auto lower = [](std::string_view s) {
    std::string r(s);
    for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return r;
  };
  if (out.Family("cairn_requests_total",
                 "Client requests answered, by front door, operation, requested consistency level "
                 "(default: the keyspace's) and outcome (ok or the error code)",
                 Type::kCounter)) {
    for (size_t d = 0; d < kFrontDoors; ++d) {
      for (size_t o = 0; o < kOperations; ++o) {
        for (size_t l = 0; l < kLevels; ++l) {
          for (size_t c = 0; c < kOutcomes; ++c) {
            const auto door = static_cast<FrontDoor>(d);
            const auto op = static_cast<Operation>(o);
            const auto level = static_cast<Consistency>(l);
            const auto code = static_cast<Code>(c);
            const uint64_t n = Count(door, op, level, code);
            if (n == 0) continue;
            out.Sample({{"frontdoor", std::string(FrontDoorName(door))},
                        {"op", std::string(OperationName(op))},
                        {"level", lower(ConsistencyName(level))},
                        {"outcome", lower(CodeName(code))}},
                       static_cast<double>(n));
          }
        }
      }
    }
  }
  if (out.Family("cairn_request_duration_seconds",
                 "Time from a parsed request to its answer, by front door and operation",
                 Type::kHistogram)) {
    for (size_t d = 0; d < kFrontDoors; ++d) {
      for (size_t o = 0; o < kOperations; ++o) {
        HistogramSnapshot sum;
        for (const auto& shard : shards_) {
          const LatencyHistogram& h = shard->latencies[d * kOperations + o];
          if (h.count() == 0) continue;
          HistogramSnapshot part = h.Snapshot();
          if (sum.count == 0) {
            sum = std::move(part);
            continue;
          }
          for (size_t b = 0; b < sum.cumulative.size(); ++b)
            sum.cumulative[b] += part.cumulative[b];
          sum.sum += part.sum;
          sum.count += part.count;
        }
        if (sum.count == 0) continue;
        out.Histogram({{"frontdoor", std::string(FrontDoorName(static_cast<FrontDoor>(d)))},
                       {"op", std::string(OperationName(static_cast<Operation>(o)))}},
                      sum);
      }
    }
  }
}

}  // namespace cairn::base::metrics
