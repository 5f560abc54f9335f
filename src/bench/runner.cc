#include "bench/runner.h"

#include <atomic>
#include <cmath>
#include <exception>
#include <thread>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace cairn::bench {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

void Tally::Merge(const Tally& other) {
  for (const auto& [op, h] : other.latency) latency[op].Merge(h);
  for (const auto& [op, n] : other.errors) errors[op] += n;
  for (const auto& [k, n] : other.error_kinds) error_kinds[k] += n;
  not_applied += other.not_applied;
  missed += other.missed;
}

uint64_t Tally::ops() const {
  uint64_t n = 0;
  for (const auto& [op, h] : latency) n += h.count();
  return n;
}

uint64_t Tally::total_errors() const {
  uint64_t n = 0;
  for (const auto& [op, count] : errors) n += count;
  return n;
}

namespace {

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// The decimal digits a scan prefix leaves open so that a run of keys holds `length` of them.
int ScanDigits(uint32_t length) {
  int digits = 1;
  for (uint64_t run = 10; run < length && digits < 10; run *= 10) ++digits;
  return digits;
}

}  // namespace

// One driver thread: its own io_context, driver, sessions and tallies.
class Worker {
 public:
  Worker(const RunConfig& config, uint32_t first_client, uint32_t clients,
         std::atomic<uint64_t>* inserted)
      : config_(config),
        first_client_(first_client),
        clients_(clients),
        inserted_(inserted),
        chooser_(config.distribution, config.records, inserted, config.hot_key_share),
        rng_(config.seed * 7919 + first_client) {
    switch (config.driver) {
      case DriverKind::kNative:
        driver_ = MakeNativeDriver(io_.get_executor(), config.driver_options);
        break;
      case DriverKind::kResp:
        driver_ = MakeRespDriver(io_.get_executor(), config.driver_options);
        break;
      case DriverKind::kRedisCluster:
        driver_ = MakeRedisClusterDriver(io_.get_executor(), config.driver_options);
        break;
    }
    // Random letters, so that values do not compress better than real ones would.
    values_.resize(config.value_sizes.max() + kValueOffsets);
    for (char& c : values_) c = static_cast<char>('a' + rng_() % 26);
    if (auto w = FindWorkload(config.workload)) mix_ = w->mix;
  }

  Driver& driver() { return *driver_; }

  Status Start() {
    Status status;
    asio::co_spawn(io_, driver_->Start(), [&](std::exception_ptr e, Status s) {
      if (e) std::rethrow_exception(e);
      status = std::move(s);
      io_.stop();  // the native client's connections would keep run() going
    });
    io_.restart();
    io_.run();
    if (status.ok()) {
      for (uint32_t c = 0; c < clients_; ++c) sessions_.push_back(driver_->NewSession());
    }
    return status;
  }

  void Load(std::atomic<uint64_t>& next, uint64_t end, const Runner::LoadProgress& progress) {
    RunClients([&](uint32_t c) { return LoadClient(*sessions_[c], next, end, progress); });
  }

  void Run(bool ping, Clock::time_point phase_start, Clock::time_point measure_from,
           Clock::time_point end) {
    RunClients([&](uint32_t c) {
      return RunClient(*sessions_[c], first_client_ + c, ping, phase_start, measure_from, end);
    });
  }

  Tally TakeTally() { return std::exchange(tally_, Tally()); }

 private:
  static constexpr uint32_t kValueOffsets = 64;

  // Runs one coroutine per client until all have finished. The native client's pooled
  // connections keep the io_context busy, so the last client stops it; they resume next phase.
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
    if (clients_ > 0) io_.run();
  }

  std::string_view Value(Rng& rng) {
    const uint32_t size = config_.value_sizes.Next(rng);
    return std::string_view(values_).substr(rng() % kValueOffsets, size);
  }

  void Count(Op op, const Status& s, Clock::duration took, bool measured) {
    if (!measured) return;
    if (s.ok()) {
      tally_.latency[op].Record(std::chrono::duration_cast<std::chrono::nanoseconds>(took).count());
      return;
    }
    ++tally_.errors[op];
    ++tally_.error_kinds[fmt::format("{}: {}", CodeName(s.code()), s.message().substr(0, 120))];
  }

  asio::awaitable<void> LoadClient(Session& session, std::atomic<uint64_t>& next, uint64_t end,
                                   const Runner::LoadProgress& progress) {
    // 100 records a batch, fewer when they are large: a batch is one message of at most 4 MiB.
    const uint64_t batch =
        std::clamp<uint64_t>((4u << 20) / (config_.value_sizes.max() + 1), 1, 100);
    while (true) {
      const uint64_t first = next.fetch_add(batch);
      if (first >= end) co_return;
      std::vector<std::pair<std::string, std::string>> items;
      uint64_t bytes = 0;
      for (uint64_t i = first; i < std::min(first + batch, end); ++i) {
        items.emplace_back(KeyName(i), std::string(Value(rng_)));
        bytes += items.back().first.size() + items.back().second.size();
      }
      const auto start = Clock::now();
      Status s = co_await session.WriteBatch(items);
      Count(Op::kBatch, s, Clock::now() - start, true);
      if (progress) progress(items.size(), bytes);
    }
  }

  // One operation of the workload mix.
  asio::awaitable<Status> MixedOp(Session& session, Op op, bool* lost) {
    switch (op) {
      case Op::kRead: {
        const std::string key = KeyName(chooser_.Next(rng_));
        co_return co_await session.Read(key);
      }
      case Op::kUpdate: {
        const std::string key = KeyName(chooser_.Next(rng_));
        const std::string_view value = Value(rng_);
        co_return co_await session.Write(key, value);
      }
      case Op::kInsert: {
        const std::string key = KeyName(inserted_->fetch_add(1));
        const std::string_view value = Value(rng_);
        co_return co_await session.Write(key, value);
      }
      case Op::kScan: {
        const int digits = ScanDigits(config_.scan_length);
        const std::string prefix = ScanPrefix(chooser_.Next(rng_), digits);
        const uint32_t length =
            std::uniform_int_distribution<uint32_t>(1, config_.scan_length)(rng_);
        co_return co_await session.Scan(prefix, length);
      }
      case Op::kRmw: {
        const std::string key = KeyName(chooser_.Next(rng_));
        const std::string_view value = Value(rng_);
        auto r = co_await session.ReadModifyWrite(key, value);
        if (r.ok() && !*r) *lost = true;
        co_return r.status();
      }
      default:
        co_return Status::Internal("not a mixed operation");
    }
  }

  // CAS workloads: the version this client last saw per key. "cas" gives every client a key of
  // its own (uncontended: each swap applies); "cas-contended" shares the records among all.
  asio::awaitable<Status> CasOp(Session& session, const std::string& own_key,
                                std::map<std::string, std::optional<std::string>>& seen,
                                bool* lost) {
    const std::string key = config_.workload == "cas" ? own_key : KeyName(chooser_.Next(rng_));
    auto known = seen.find(key);
    std::optional<std::string> expected;
    if (known != seen.end()) expected = known->second;
    const std::string_view value = Value(rng_);
    auto r = co_await session.Cas(key, expected, value);
    if (r.ok()) {
      if (!r->applied) *lost = true;
      seen[key] = r->version;
    } else {
      seen.erase(key);
    }
    co_return r.status();
  }

  asio::awaitable<void> RunClient(Session& session, uint32_t client, bool ping,
                                  Clock::time_point phase_start, Clock::time_point measure_from,
                                  Clock::time_point end) {
    const bool open_loop = config_.rate > 0;
    // Open loop: client i of n is due at phase_start + (i + k n) / rate, k = 0, 1, ...
    const Clock::duration interval =
        open_loop ? Seconds(config_.clients / config_.rate) : Clock::duration::zero();
    Clock::time_point due =
        phase_start + (open_loop ? Seconds(client / config_.rate) : Clock::duration::zero());
    const Clock::time_point give_up = end + config_.driver_options.timeout;
    asio::steady_timer timer(io_);
    std::map<std::string, std::optional<std::string>> seen;
    const std::string own_key = fmt::format("bench:cas:{}", client);
    while (true) {
      Clock::time_point start;
      if (open_loop) {
        if (due >= end) co_return;
        const auto now = Clock::now();
        if (now > give_up) {
          // So far behind that the rest would start after the run: count them, do not run them.
          tally_.missed += static_cast<uint64_t>((end - std::max(due, measure_from)) / interval);
          co_return;
        }
        if (due > now) {
          timer.expires_at(due);
          co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        start = due;
        due += interval;
      } else {
        start = Clock::now();
        if (start >= end) co_return;
      }
      const bool measured = start >= measure_from;
      Op op = Op::kPing;
      Status s;
      bool lost = false;  // answered, but the condition no longer held
      if (ping) {
        s = co_await session.Ping();
      } else if (config_.is_cas()) {
        op = Op::kCas;
        s = co_await CasOp(session, own_key, seen, &lost);
      } else {
        op = NextOp(mix_, rng_);
        s = co_await MixedOp(session, op, &lost);
      }
      Count(op, s, Clock::now() - start, measured);
      if (measured && lost) ++tally_.not_applied;
    }
  }

  const RunConfig& config_;
  const uint32_t first_client_;
  const uint32_t clients_;
  std::atomic<uint64_t>* inserted_;
  KeyChooser chooser_;
  Rng rng_;
  Mix mix_;
  std::string values_;
  asio::io_context io_{1};
  std::unique_ptr<Driver> driver_;
  std::vector<std::unique_ptr<Session>> sessions_;
  Tally tally_;
};

Runner::Runner(RunConfig config) : config_(std::move(config)) {}
Runner::~Runner() = default;

Result<std::unique_ptr<Runner>> Runner::Create(RunConfig config) {
  const auto spec = FindWorkload(config.workload);
  if (!spec && !config.is_cas()) {
    return Status::InvalidArgument("unknown workload " + config.workload);
  }
  config.threads = std::max<uint32_t>(1, std::min(config.threads, config.clients));
  std::unique_ptr<Runner> runner(new Runner(std::move(config)));
  const RunConfig& c = runner->config_;
  runner->inserted_ = c.records;
  uint32_t first = 0;
  for (uint32_t t = 0; t < c.threads; ++t) {
    const uint32_t share = c.clients / c.threads + (t < c.clients % c.threads);
    runner->workers_.push_back(std::make_unique<Worker>(c, first, share, &runner->inserted_));
    first += share;
  }
  for (auto& w : runner->workers_) {
    Status s = w->Start();
    if (!s.ok()) return s;
  }
  Driver& driver = runner->workers_.front()->driver();
  runner->description_ = driver.description();
  runner->rmw_meaning_ = driver.rmw_meaning();
  if (spec && spec->mix.scan > 0 && !driver.has_scan()) {
    return Status::InvalidArgument(fmt::format(
        "workload {} needs prefix scans, which {} lacks (Redis's SCAN walks the whole keyspace); "
        "run it with --driver native or against Cairn's RESP door",
        c.workload, driver.description()));
  }
  if (c.is_cas() && !driver.has_cas()) {
    return Status::InvalidArgument(
        fmt::format("workload {} needs compare-and-swap on versions, which {} lacks", c.workload,
                    driver.description()));
  }
  return runner;
}

template <typename Body>
void Runner::OnAllWorkers(Body body) {
  std::vector<std::thread> threads;
  for (auto& w : workers_) threads.emplace_back([&body, &w] { body(*w); });
  for (auto& t : threads) t.join();
}

Tally Runner::Collect() {
  Tally total;
  for (auto& w : workers_) total.Merge(w->TakeTally());
  return total;
}

Tally Runner::Load(double* seconds, const LoadProgress& progress) {
  std::atomic<uint64_t> next{0};
  const auto start = Clock::now();
  OnAllWorkers([&](Worker& w) { w.Load(next, config_.records, progress); });
  *seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return Collect();
}

Tally Runner::Run(bool ping) {
  const auto phase_start = Clock::now();
  const auto measure_from = phase_start + Seconds(config_.warmup_s);
  const auto end = measure_from + Seconds(config_.duration_s);
  OnAllWorkers([&](Worker& w) { w.Run(ping, phase_start, measure_from, end); });
  return Collect();
}

}  // namespace cairn::bench
