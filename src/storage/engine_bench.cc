// cairn-engine-bench: what the storage engine's group commits cost with the hash trees of
// issue #16 maintained and without them, in one invocation (the two alternate, each on a fresh
// database). A program for measuring, not a test; see docs/benchmarks.md.
//
// Each write is a plain last-writer-wins write of a random key (mostly new keys, as workload w
// writes) of one keyspace spread over --partitions ranges; requests of --group writes are
// submitted one at a time, so that every group commit holds exactly one request (the same
// groups in both, which keeps instruction counts comparable under callgrind). "Without trees"
// still reads the versions the writes replace and writes the key index, as a node always does:
// the difference is the trees alone. CPU is the process's (getrusage), background flushes and
// compactions included.
#include <sys/resource.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "storage/engine.h"

namespace {

using cairn::storage::DataKey;
using cairn::storage::Engine;
using cairn::storage::EngineOptions;
using cairn::storage::WriteOp;
using cairn::storage::WriteRequest;

struct Options {
  uint64_t writes = 400'000;
  uint32_t group = 8;
  uint32_t value_bytes = 100;
  uint64_t keys = 0;  // 0: 100 times --writes (almost every write a new key)
  uint32_t partitions = 1024;
  uint32_t rounds = 3;
  bool sync = false;
  std::string only;  // "trees" or "none": one configuration, once (callgrind runs)
  std::string dir;
};

constexpr std::string_view kUsage = R"(usage: cairn-engine-bench [options]
  --writes N        writes per run (default 400000)
  --group N         writes per request, and so per group commit (default 8)
  --value-bytes N   value size (default 100)
  --keys N          keys drawn from (default 100 x --writes: nearly all new)
  --partitions N    ranges the keys spread over (default 1024)
  --rounds N        runs of each configuration, alternating (default 3)
  --sync            fsync every group commit (default off: CPU, not the disk, is measured)
  --only trees|none one configuration, one run (for valgrind --tool=callgrind)
  --dir PATH        where the databases go (default: a new directory under /tmp)
)";

uint64_t SplitMix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

struct RunResult {
  double writes_per_s = 0;
  double cpu_us_per_write = 0;
};

// One run on a fresh database at `path`; exits on an engine error.
RunResult Run(const Options& o, bool trees, const std::string& path) {
  std::filesystem::remove_all(path);
  EngineOptions options;
  options.path = path;
  options.sync = o.sync;
  options.maintain_trees = trees;
  auto opened = Engine::Open(options);
  if (!opened.ok()) {
    fmt::print(stderr, "cairn-engine-bench: {}\n", opened.status().ToString());
    std::exit(1);
  }
  std::unique_ptr<Engine> engine = std::move(*opened);
  const uint64_t keys = o.keys != 0 ? o.keys : o.writes * 100;
  const std::string value(o.value_bytes, 'v');
  uint64_t random = 42;  // the same keys in every run
  const uint64_t hlc_base =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count())
      << 16;
  std::mutex mu;
  std::condition_variable cv;
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = CpuSeconds();
  uint64_t written = 0;
  while (written < o.writes) {
    WriteRequest request;
    for (uint32_t i = 0; i < o.group && written < o.writes; ++i, ++written) {
      const uint64_t k = SplitMix(random) % keys;
      WriteOp op;
      op.key = DataKey{static_cast<uint32_t>(k % o.partitions), 1, fmt::format("user:{:016x}", k)};
      op.value.version = cairn::Version{hlc_base + written, 1};
      op.value.value = value;
      request.ops.push_back(std::move(op));
    }
    bool done = false;
    cairn::Status status;
    engine->Write(std::move(request),
                  [&](cairn::Status s, std::vector<cairn::storage::WriteOutcome>) {
                    std::lock_guard lock(mu);
                    status = std::move(s);
                    done = true;
                    cv.notify_one();
                  });
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
    if (!status.ok()) {
      fmt::print(stderr, "cairn-engine-bench: write failed: {}\n", status.ToString());
      std::exit(1);
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = CpuSeconds() - cpu_start;
  engine.reset();
  std::filesystem::remove_all(path);
  return RunResult{.writes_per_s = static_cast<double>(o.writes) / seconds,
                   .cpu_us_per_write = cpu * 1e6 / static_cast<double>(o.writes)};
}

bool ParseNumber(const char* text, uint64_t& out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0') return false;
  out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto number = [&](auto& field, uint64_t min, uint64_t max) {
      uint64_t v = 0;
      if (i + 1 >= argc || !ParseNumber(argv[i + 1], v) || v < min || v > max) {
        fmt::print(stderr, "cairn-engine-bench: {} takes a number from {} to {}\n{}", arg, min, max,
                   kUsage);
        std::exit(2);
      }
      field = static_cast<std::remove_reference_t<decltype(field)>>(v);
      ++i;
    };
    if (arg == "--writes") {
      number(o.writes, 1, uint64_t{1} << 32);
    } else if (arg == "--group") {
      number(o.group, 1, 100'000);
    } else if (arg == "--value-bytes") {
      number(o.value_bytes, 0, 16 << 20);
    } else if (arg == "--keys") {
      number(o.keys, 1, uint64_t{1} << 48);
    } else if (arg == "--partitions") {
      number(o.partitions, 1, 1 << 20);
    } else if (arg == "--rounds") {
      number(o.rounds, 1, 1000);
    } else if (arg == "--sync") {
      o.sync = true;
    } else if (arg == "--only" && i + 1 < argc &&
               (std::string_view(argv[i + 1]) == "trees" ||
                std::string_view(argv[i + 1]) == "none")) {
      o.only = argv[++i];
    } else if (arg == "--dir" && i + 1 < argc) {
      o.dir = argv[++i];
    } else if (arg == "--help" || arg == "-h") {
      fmt::print("{}", kUsage);
      return 0;
    } else {
      fmt::print(stderr, "cairn-engine-bench: unknown or incomplete option {}\n{}", arg, kUsage);
      return 2;
    }
  }
  std::string base = o.dir;
  if (base.empty()) {
    std::string pattern = (std::filesystem::temp_directory_path() / "cairn-engine-bench.XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) {
      fmt::print(stderr, "cairn-engine-bench: cannot create a directory under /tmp\n");
      return 1;
    }
    base = pattern;
  }
  const std::string path = (std::filesystem::path(base) / "db").string();

  fmt::print("{} writes of {} B values in groups of {}, {} ranges, sync {}\n", o.writes,
             o.value_bytes, o.group, o.partitions, o.sync ? "on" : "off");
  if (!o.only.empty()) {
    const RunResult r = Run(o, o.only == "trees", path);
    fmt::print("{:14} {:>10.0f} writes/s {:>7.2f} us CPU per write\n", o.only, r.writes_per_s,
               r.cpu_us_per_write);
  } else {
    double sum[2][2] = {};
    for (uint32_t round = 1; round <= o.rounds; ++round) {
      for (int trees = 0; trees < 2; ++trees) {
        const RunResult r = Run(o, trees == 1, path);
        sum[trees][0] += r.writes_per_s;
        sum[trees][1] += r.cpu_us_per_write;
        fmt::print("round {} {:14} {:>10.0f} writes/s {:>7.2f} us CPU per write\n", round,
                   trees ? "with trees" : "without trees", r.writes_per_s, r.cpu_us_per_write);
        std::fflush(stdout);
      }
    }
    const double n = o.rounds;
    fmt::print(
        "mean without trees {:.0f} writes/s, {:.2f} us CPU per write; with trees {:.0f} writes/s "
        "({:.3f}x), {:.2f} us CPU per write ({:+.1f}%)\n",
        sum[0][0] / n, sum[0][1] / n, sum[1][0] / n, sum[1][0] / sum[0][0], sum[1][1] / n,
        (sum[1][1] / sum[0][1] - 1) * 100);
  }
  if (o.dir.empty()) std::filesystem::remove_all(base);
  return 0;
}
