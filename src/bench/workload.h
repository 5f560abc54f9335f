// What a YCSB-style workload asks for: which keys (uniform, zipfian, latest), how large the values
// are, and the mix of operations. Pure computation: no I/O, no clocks, so it is unit-tested alone.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace cairn::bench {

using Rng = std::mt19937_64;

// YCSB's ZipfianGenerator (Gray et al., "Quickly generating billion-record synthetic databases"):
// ranks in [0, n) where rank 0 is the most popular, P(rank k) proportional to 1/(k+1)^theta.
// Constant after construction; Next() may be called from any thread with its own Rng.
class ZipfianGenerator {
 public:
  static constexpr double kYcsbTheta = 0.99;

  explicit ZipfianGenerator(uint64_t n, double theta = kYcsbTheta);

  uint64_t Next(Rng& rng) const;
  uint64_t items() const { return n_; }
  // The share of draws the most popular rank gets: 1 / zeta(n, theta).
  double TopShare() const { return 1.0 / zetan_; }

 private:
  uint64_t n_;
  double theta_, alpha_, zetan_, eta_, half_pow_theta_;
};

// The names are in workload.cc, in this order.
enum class KeyDistribution { kUniform, kZipfian, kLatest };
std::optional<KeyDistribution> ParseKeyDistribution(std::string_view name);
std::string_view KeyDistributionName(KeyDistribution d);

// The index of the key to use next (the key itself is KeyName(index)). Keys [0, records) exist
// after the load phase; inserts append keys at `inserted`, which every chooser of a run shares.
//  - uniform: every existing key alike;
//  - zipfian: YCSB's scrambled zipfian: zipfian ranks over `records` keys, spread over the key
//    space by hashing the rank (FNV-1a), so the popular keys are not neighbours;
//  - latest: zipfian by recency, rank 0 being the newest insert (YCSB workload D). The skew is
//    computed for `records` keys and applied to the newest keys, however many have been inserted.
// With `hot_share` above 0, that share of choices is key 0, whatever the distribution: one hot key
// (issue #17's case of a key taking half the reads).
// Not thread-safe: one per client thread (the `inserted` counter is atomic).
class KeyChooser {
 public:
  KeyChooser(KeyDistribution d, uint64_t records, const std::atomic<uint64_t>* inserted,
             double hot_share = 0);

  uint64_t Next(Rng& rng) const;

 private:
  KeyDistribution distribution_;
  uint64_t records_;
  const std::atomic<uint64_t>* inserted_;
  double hot_share_;
  std::optional<ZipfianGenerator> zipf_;
};

// FNV-1a of the 8 bytes of `v` (YCSB's scrambling hash).
uint64_t Fnv1a64(uint64_t v);

// "bench:0000000042": fixed width, so keys sort by index and a prefix names a run of indexes.
std::string KeyName(uint64_t index);
// The prefix of the keys whose index shares all but its last `digits` decimal digits with
// `index`: workload E scans such a run of at most 10^digits keys.
std::string ScanPrefix(uint64_t index, int digits);

// Value sizes: fixed ("100") or uniform over a range ("100..4096"); sizes take K and M suffixes
// (binary: 1K = 1024), up to 64M.
class ValueSizes {
 public:
  // Nullopt when `spec` is not a size or a range min..max with min <= max.
  static std::optional<ValueSizes> Parse(std::string_view spec);
  ValueSizes() = default;
  ValueSizes(uint32_t min, uint32_t max) : min_(min), max_(max) {}

  uint32_t Next(Rng& rng) const;
  uint32_t min() const { return min_; }
  uint32_t max() const { return max_; }
  std::string ToString() const;

 private:
  uint32_t min_ = 100, max_ = 100;
};

// The operation mix of a workload, as fractions summing to 1.
struct Mix {
  double read = 0, update = 0, insert = 0, scan = 0, rmw = 0;
};

// The YCSB core workloads a..f and `w` (insert only).
struct WorkloadSpec {
  std::string name;
  Mix mix;
  KeyDistribution distribution = KeyDistribution::kZipfian;  // YCSB's default for it
  std::string summary;
  bool needs_load() const { return mix.read + mix.scan + mix.rmw + mix.update > 0; }
};
std::optional<WorkloadSpec> FindWorkload(std::string_view name);

// The names are in workload.cc, in this order.
enum class Op { kRead, kUpdate, kInsert, kScan, kRmw, kCas, kPing, kBatch };
std::string_view OpName(Op op);
// Draws the next operation from `mix`.
Op NextOp(const Mix& mix, Rng& rng);

}  // namespace cairn::bench
