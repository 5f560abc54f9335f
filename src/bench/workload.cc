#include "bench/workload.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace cairn::bench {

namespace {

double Zeta(uint64_t n, double theta) {
  double sum = 0;
  for (uint64_t i = 1; i <= n; ++i) sum += 1.0 / std::pow(static_cast<double>(i), theta);
  return sum;
}

double Uniform01(Rng& rng) { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); }

// "4096", "4K", "1M" -> bytes; nullopt when malformed or over 64 MiB.
std::optional<uint32_t> ParseSize(std::string_view s) {
  uint64_t multiplier = 1;
  if (!s.empty() && (s.back() == 'K' || s.back() == 'k')) multiplier = 1024;
  if (!s.empty() && (s.back() == 'M' || s.back() == 'm')) multiplier = 1024 * 1024;
  if (multiplier != 1) s.remove_suffix(1);
  if (s.empty() || s.size() > 9) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  v *= multiplier;
  if (v > (uint64_t{64} << 20)) return std::nullopt;
  return static_cast<uint32_t>(v);
}

}  // namespace

ZipfianGenerator::ZipfianGenerator(uint64_t n, double theta)
    : n_(std::max<uint64_t>(n, 1)),
      theta_(theta),
      alpha_(1.0 / (1.0 - theta)),
      zetan_(Zeta(n_, theta)),
      half_pow_theta_(std::pow(0.5, theta)) {
  const double zeta2 = Zeta(2, theta);
  eta_ = (1.0 - std::pow(2.0 / static_cast<double>(n_), 1.0 - theta)) / (1.0 - zeta2 / zetan_);
}

uint64_t ZipfianGenerator::Next(Rng& rng) const {
  const double u = Uniform01(rng);
  const double uz = u * zetan_;
  if (uz < 1.0 || n_ == 1) return 0;
  if (uz < 1.0 + half_pow_theta_) return 1;
  const auto rank =
      static_cast<uint64_t>(static_cast<double>(n_) * std::pow(eta_ * u - eta_ + 1, alpha_));
  return std::min(rank, n_ - 1);
}

// Indexed by the enumerators' values.
constexpr std::string_view kDistributionNames[] = {"uniform", "zipfian", "latest"};
constexpr std::string_view kOpNames[] = {"READ", "UPDATE", "INSERT", "SCAN",
                                         "RMW",  "CAS",    "PING",   "BATCH"};

std::optional<KeyDistribution> ParseKeyDistribution(std::string_view name) {
  for (size_t i = 0; i < std::size(kDistributionNames); ++i) {
    if (kDistributionNames[i] == name) return static_cast<KeyDistribution>(i);
  }
  return std::nullopt;
}

std::string_view KeyDistributionName(KeyDistribution d) {
  return kDistributionNames[static_cast<size_t>(d)];
}

uint64_t Fnv1a64(uint64_t v) {
  uint64_t hash = 0xCBF29CE484222325ULL;
  for (int i = 0; i < 8; ++i) {
    hash ^= v & 0xff;
    hash *= 1099511628211ULL;
    v >>= 8;
  }
  return hash;
}

KeyChooser::KeyChooser(KeyDistribution d, uint64_t records, const std::atomic<uint64_t>* inserted,
                       double hot_share)
    : distribution_(d),
      records_(std::max<uint64_t>(records, 1)),
      inserted_(inserted),
      hot_share_(hot_share) {
  if (d != KeyDistribution::kUniform) zipf_.emplace(records_);
}

uint64_t KeyChooser::Next(Rng& rng) const {
  if (hot_share_ > 0 && Uniform01(rng) < hot_share_) return 0;
  switch (distribution_) {
    case KeyDistribution::kUniform:
      return std::uniform_int_distribution<uint64_t>(0, records_ - 1)(rng);
    case KeyDistribution::kZipfian:
      return Fnv1a64(zipf_->Next(rng)) % records_;
    case KeyDistribution::kLatest: {
      const uint64_t newest = std::max(inserted_->load(std::memory_order_relaxed), records_);
      return newest - 1 - std::min(zipf_->Next(rng), newest - 1);
    }
  }
  return 0;
}

std::string KeyName(uint64_t index) { return fmt::format("bench:{:010}", index); }

std::string ScanPrefix(uint64_t index, int digits) {
  std::string key = KeyName(index);
  key.resize(key.size() - static_cast<size_t>(std::clamp(digits, 0, 10)));
  return key;
}

std::optional<ValueSizes> ValueSizes::Parse(std::string_view spec) {
  const size_t dots = spec.find("..");
  if (dots == std::string_view::npos) {
    auto v = ParseSize(spec);
    if (!v) return std::nullopt;
    return ValueSizes(*v, *v);
  }
  auto lo = ParseSize(spec.substr(0, dots));
  auto hi = ParseSize(spec.substr(dots + 2));
  if (!lo || !hi || *lo > *hi) return std::nullopt;
  return ValueSizes(*lo, *hi);
}

uint32_t ValueSizes::Next(Rng& rng) const {
  if (min_ == max_) return min_;
  return std::uniform_int_distribution<uint32_t>(min_, max_)(rng);
}

std::string ValueSizes::ToString() const {
  return min_ == max_ ? fmt::format("{}", min_) : fmt::format("{}..{}", min_, max_);
}

std::optional<WorkloadSpec> FindWorkload(std::string_view name) {
  using D = KeyDistribution;
  static const WorkloadSpec kWorkloads[] = {
      {"a", {.read = 0.5, .update = 0.5}, D::kZipfian, "50% read, 50% update"},
      {"b", {.read = 0.95, .update = 0.05}, D::kZipfian, "95% read, 5% update"},
      {"c", {.read = 1.0}, D::kZipfian, "100% read"},
      {"d", {.read = 0.95, .insert = 0.05}, D::kLatest, "95% read of the latest, 5% insert"},
      {"e", {.insert = 0.05, .scan = 0.95}, D::kZipfian, "95% short prefix scan, 5% insert"},
      {"f", {.read = 0.5, .rmw = 0.5}, D::kZipfian, "50% read, 50% read-modify-write"},
      {"w", {.insert = 1.0}, D::kUniform, "100% insert of new keys"},
  };
  for (const WorkloadSpec& w : kWorkloads) {
    if (w.name == name) return w;
  }
  return std::nullopt;
}

std::string_view OpName(Op op) { return kOpNames[static_cast<size_t>(op)]; }

Op NextOp(const Mix& mix, Rng& rng) {
  double u = Uniform01(rng);
  if ((u -= mix.read) < 0) return Op::kRead;
  if ((u -= mix.update) < 0) return Op::kUpdate;
  if ((u -= mix.insert) < 0) return Op::kInsert;
  if ((u -= mix.scan) < 0) return Op::kScan;
  // Rounding left a sliver: the last operation of the mix takes it.
  if (mix.rmw > 0) return Op::kRmw;
  if (mix.scan > 0) return Op::kScan;
  if (mix.insert > 0) return Op::kInsert;
  return mix.update > 0 ? Op::kUpdate : Op::kRead;
}

}  // namespace cairn::bench
