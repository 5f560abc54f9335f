// Increments, and split counters: cluster/split_counters.h has the design and the argument that
// no increment is lost or counted twice; this file runs it.
#include <algorithm>
#include <random>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/text.h"
#include "cluster/split_counters.h"
#include "cluster/topology_state.h"
#include "coordinator/cluster_coordinator.h"

namespace cairn::coordinator {
namespace {

using cluster::SplitEntry;
using internode::SplitPhase;

// A split or merge step waits this long for its epoch and its barrier.
constexpr auto kSplitChangeTime = std::chrono::seconds(20);
// How old the sub-counter values behind a split counter's increment answer may be.
constexpr auto kEstimateAge = std::chrono::seconds(1);
// A read of a split counter that a phase change overtook is made again, this many times.
constexpr int kSplitReadTries = 5;

// Counts an increment in flight on one sub-counter for as long as it lives.
class InFlightGuard {
 public:
  explicit InFlightGuard(std::atomic<uint32_t>* n) : n_(n) { n_->fetch_add(1); }
  ~InFlightGuard() { n_->fetch_sub(1); }
  InFlightGuard(const InFlightGuard&) = delete;
  InFlightGuard& operator=(const InFlightGuard&) = delete;

 private:
  std::atomic<uint32_t>* n_;
};

// The time to live `current` has left, for a rewrite that keeps it.
uint64_t RemainingTtl(const std::optional<Record>& current, uint64_t now_ms) {
  if (!current || current->expires_at_ms == 0) return 0;
  return current->expires_at_ms > now_ms ? current->expires_at_ms - now_ms : 1;
}

}  // namespace

Status ClusterCoordinator::SplitKeyRefused(std::string_view key) {
  return Status::FailedPrecondition(fmt::format(
      "'{}' is a split counter: it takes increments and reads only; merge it (cairn hotkeys "
      "merge) to write it otherwise",
      base::Printable(key.substr(0, 200))));
}

const SplitEntry* ClusterCoordinator::SplitOf(const cluster::Topology& topology,
                                              const cluster::KeyspaceDef& ks, std::string_view key,
                                              const RequestOptions& options) const {
  if (!topology.splits || options.split_key_itself) return nullptr;
  return topology.splits->Find(ks.name, key);
}

bool ClusterCoordinator::IsSplitCounter(const std::string& keyspace, std::string_view key) const {
  auto topology = view_->topology();
  if (!topology || !topology->splits) return false;
  auto ks = ResolveKeyspace(keyspace);
  return ks.ok() && topology->splits->Find((*ks)->name, key) != nullptr;
}

asio::awaitable<Result<ClusterCoordinator::CounterStep>> ClusterCoordinator::ReadModifyWrite(
    std::string key, RequestOptions options, Consistency commit, const CounterDecide& decide) {
  options.split_key_itself = true;
  options.count_hot_key = false;  // the operation it serves counts itself
  if (options.consistency == Consistency::kDefault) options.consistency = Consistency::kSerial;
  auto read = co_await Get(key, options);
  if (!read.ok()) co_return read.status();
  std::optional<Record> current = std::move(*read);
  while (true) {
    CounterStep step = decide(current);
    if (!step.write && !step.erase) co_return step;
    CasCondition condition;
    if (current) {
      condition.kind = CasCondition::Kind::kIfVersion;
      condition.version = current->version;
    } else {
      condition.kind = CasCondition::Kind::kIfNotExists;
    }
    const uint64_t ttl = RemainingTtl(current, wall_->NowMillis());
    std::optional<std::string> value;  // none: delete
    if (!step.erase) value = *step.write;
    auto r = co_await Cas(key, std::move(condition), std::move(value), ttl, options, commit);
    if (!r.ok()) co_return r.status();
    if (r->applied) co_return step;
    current = std::move(r->current);
    if (base::Clock::now() >= options.deadline) {
      co_return Status::Timeout("the key kept changing until the deadline; nothing was written", 0);
    }
  }
}

asio::awaitable<Result<ClusterCoordinator::CounterStep>>
ClusterCoordinator::IdempotentReadModifyWrite(std::string key, RequestOptions options,
                                              const CounterDecide& decide) {
  for (int attempt = 0;; ++attempt) {
    auto r = co_await ReadModifyWrite(key, options, Consistency::kDefault, decide);
    if (r.ok() || r.status().code() != Code::kTimeout ||
        base::Clock::now() + std::chrono::milliseconds(100) >= options.deadline) {
      co_return r;
    }
    // Contention with the increments the key takes meanwhile: the step is idempotent (it reads
    // what a timed-out attempt may have left), so it goes again after a pause.
    asio::steady_timer pause(co_await asio::this_coro::executor);
    pause.expires_after(std::chrono::milliseconds(10 + 10 * std::min(attempt, 9)));
    co_await pause.async_wait(base::kNoThrow);
  }
}

asio::awaitable<Result<IncrementOutcome>> ClusterCoordinator::Increment(std::string key,
                                                                        base::CounterDelta delta,
                                                                        RequestOptions options,
                                                                        Consistency commit) {
  auto ks = ResolveKeyspace(options.keyspace);
  if (!ks.ok()) co_return ks.status();
  const uint32_t keyspace_id = (*ks)->id;
  // The counter's key, whichever sub-counter took the increment: what the hot-key sketch counts
  // and what client-side caching reports (beside Paxos rounds, a copy costs nothing).
  const std::string counted = key;
  auto r = co_await IncrementUncounted(std::move(key), delta, options, commit);
  // Counted once it is known to be a counter's increment: applied, or perhaps applied (TIMEOUT).
  // One that the value refused (not a number) is not, so that automatic splitting never takes
  // such a key for a counter.
  const bool counter =
      r.ok() ? r->refused == base::CounterRefusal::kNone : r.status().code() == Code::kTimeout;
  if (counter) hot_keys_.AddIncrement(keyspace_id, counted);
  if (counter && invalidations_.active()) {
    auto here = co_await asio::this_coro::executor;
    ReportChanged(here, options, std::span(&counted, 1));
  }
  co_return r;
}

asio::awaitable<Result<IncrementOutcome>> ClusterCoordinator::IncrementUncounted(
    std::string key, base::CounterDelta delta, RequestOptions options, Consistency commit) {
  auto ks = ResolveKeyspace(options.keyspace);
  if (!ks.ok()) co_return ks.status();
  if (Status s = ValidateKey(key); !s.ok()) co_return s;
  auto topology = Topology();
  if (!topology.ok()) co_return topology.status();
  const SplitEntry* split = SplitOf(**topology, **ks, key, options);
  IncrementOutcome outcome;
  if (split == nullptr) {
    CounterDecide plain = [&](const std::optional<Record>& cur) {
      CounterStep step;
      std::optional<std::string_view> number;
      if (cur) number = cur->value;
      step.refused = base::AddToCounter(number, delta, &step.value);
      if (step.refused == base::CounterRefusal::kNone) step.write = step.value;
      return step;
    };
    auto r = co_await ReadModifyWrite(key, options, commit, plain);
    if (!r.ok()) co_return r.status();
    // Split while this increment read and retried (its compare-and-swap planned again with the
    // newer topology): the key may hold a merge's fold marks. Again, as a split counter's.
    if (r->refused != base::CounterRefusal::kNone && IsSplitCounter(options.keyspace, key)) {
      co_return co_await IncrementUncounted(std::move(key), delta, std::move(options), commit);
    }
    outcome.value = std::move(r->value);
    outcome.refused = r->refused;
    co_return outcome;
  }
  const uint32_t shards = split->shards;
  const SplitPhase phase = split->phase;
  const std::string map_key = cluster::SplitCounterId((*ks)->name, key);
  std::optional<uint32_t> changed;  // the sub-counter the increment went to
  // Until the split is fenced, a node that has not heard of it may still read the key alone:
  // increments go to the key meanwhile.
  if (phase == internode::SPLIT_ACTIVE && split->since_epoch <= (*topology)->fence) {
    std::shared_ptr<SplitInFlight> in_flight = InFlightOf(map_key);
    const uint32_t shard = PickShard(**topology, shards, *in_flight);
    InFlightGuard counted(&in_flight->n[shard]);
    std::vector<std::string> parts =
        cluster::SplitPartKeys(key, shards, (*topology)->state->partition_bits());
    // A sub-counter that is absent (never made, or deleted by a merge) or frozen (a merge took
    // it) is not written: the increment goes to the key.
    CounterDecide part = [&](const std::optional<Record>& cur) {
      CounterStep step;
      if (!cur || cluster::FrozenNumber(cur->value)) {
        step.redirect = true;
        return step;
      }
      step.refused = base::AddToCounter(cur->value, delta, &step.value);
      if (step.refused == base::CounterRefusal::kNone) step.write = step.value;
      return step;
    };
    auto r = co_await ReadModifyWrite(std::move(parts[shard]), options, commit, part);
    if (!r.ok()) co_return r.status();
    if (!r->redirect) {
      if (r->refused != base::CounterRefusal::kNone) {
        outcome.refused = r->refused;
        co_return outcome;
      }
      changed = shard;
      outcome.value = std::move(r->value);
    } else {
      split_counters_.redirected.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (!changed) {
    // The key itself: merging (its fold marks kept), or an increment sent back from a
    // sub-counter.
    CounterDecide whole = [&](const std::optional<Record>& cur) {
      CounterStep step;
      cluster::FoldedBase base = cluster::ParseFoldedBase(cur ? cur->value : "");
      std::optional<std::string_view> number;
      if (cur && !base.number.empty()) number = base.number;
      step.refused = base::AddToCounter(number, delta, &step.value);
      if (step.refused != base::CounterRefusal::kNone) return step;
      base.number = step.value;
      step.write = cluster::FormatFoldedBase(base);
      return step;
    };
    auto r = co_await ReadModifyWrite(key, options, commit, whole);
    if (!r.ok()) co_return r.status();
    if (r->refused != base::CounterRefusal::kNone) {
      outcome.refused = r->refused;
      co_return outcome;
    }
    outcome.value = std::move(r->value);
    if (phase == internode::SPLIT_STRIPPING) co_return outcome;  // the key holds it all
  }
  split_counters_.increments.fetch_add(1, std::memory_order_relaxed);
  // The answer: this sub-counter (or the key) exact, the rest as last read here.
  outcome.estimate = true;
  auto estimate = co_await SplitEstimate(**ks, key, *split, map_key, changed, outcome.value);
  if (estimate.ok()) outcome.value = std::move(*estimate);
  co_return outcome;
}

std::shared_ptr<ClusterCoordinator::SplitInFlight> ClusterCoordinator::InFlightOf(
    const std::string& map_key) {
  std::lock_guard lock(split_estimates_mu_);
  std::shared_ptr<SplitInFlight>& slot = split_in_flight_[map_key];
  if (!slot) {
    if (split_in_flight_.size() > 2 * cluster::kMaxSplitCounters) {
      // Dropped entries only lose their counts: choices stay valid, just less spread.
      split_in_flight_.clear();
      return std::make_shared<SplitInFlight>();
    }
    slot = std::make_shared<SplitInFlight>();
  }
  return slot;
}

uint32_t ClusterCoordinator::PickShard(const cluster::Topology& topology, uint32_t shards,
                                       const SplitInFlight& in_flight) const {
  // This node's share: the sub-counters i with i % members == its rank among the members, so
  // that two coordinators seldom propose on one sub-counter (contending Paxos rounds preempt each
  // other, and one may end in TIMEOUT); all of them when there are fewer than members. Within it,
  // the one with the fewest of this node's increments in flight, ties broken at random.
  std::vector<uint32_t> ids;
  ids.reserve(topology.by_id.size());
  for (const auto& [id, member] : topology.by_id) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  const uint32_t members = std::max<uint32_t>(1, static_cast<uint32_t>(ids.size()));
  const uint32_t rank =
      static_cast<uint32_t>(std::find(ids.begin(), ids.end(), identity_.node_id) - ids.begin());
  const bool shared = shards < members || rank >= members;
  thread_local std::minstd_rand random(std::random_device{}());
  const uint32_t start = static_cast<uint32_t>(random() % shards);
  uint32_t best = start;
  uint32_t fewest = UINT32_MAX;
  for (uint32_t k = 0; k < shards; ++k) {
    const uint32_t i = (start + k) % shards;
    if (!shared && i % members != rank) continue;
    const uint32_t n = in_flight.n[i].load(std::memory_order_relaxed);
    if (n < fewest) {
      fewest = n;
      best = i;
    }
  }
  return best;
}

asio::awaitable<Result<std::string>> ClusterCoordinator::SplitEstimate(
    const cluster::KeyspaceDef& ks, const std::string& key, SplitEntry split,
    const std::string& map_key, std::optional<uint32_t> changed, const std::string& value) {
  std::optional<SplitSnapshot> snapshot;
  {
    std::lock_guard lock(split_estimates_mu_);
    auto it = split_estimates_.find(map_key);
    if (it != split_estimates_.end() && it->second.parts.size() == split.shards &&
        base::Clock::now() - it->second.read_at < kEstimateAge) {
      snapshot = it->second;
    }
  }
  if (!snapshot) {
    RequestOptions one(ks.name, Consistency::kOne, base::Clock::now() + std::chrono::seconds(2));
    auto read = co_await ReadSplitValues(key, split, one);
    if (!read.ok()) co_return read.status();
    snapshot = std::move(*read);
    snapshot->read_at = base::Clock::now();
  }
  if (changed) {
    snapshot->parts[*changed] = value;
  } else {
    snapshot->base = value;
  }
  {
    std::lock_guard lock(split_estimates_mu_);
    if (split_estimates_.size() >= cluster::kMaxSplitCounters) split_estimates_.clear();
    split_estimates_[map_key] = *snapshot;
  }
  std::vector<std::string_view> numbers;
  if (!snapshot->base.empty()) numbers.push_back(snapshot->base);
  for (const std::string& p : snapshot->parts) {
    if (!p.empty()) numbers.push_back(p);
  }
  std::string sum;
  if (base::SumCounters(numbers, &sum) != base::CounterRefusal::kNone) co_return value;
  co_return sum;
}

asio::awaitable<Result<ClusterCoordinator::SplitSnapshot>> ClusterCoordinator::ReadSplitValues(
    const std::string& key, SplitEntry split, RequestOptions options) {
  options.split_key_itself = true;
  auto topology = Topology();
  if (!topology.ok()) co_return topology.status();
  SplitSnapshot out;
  out.parts.assign(split.shards, std::string());
  if (split.phase != internode::SPLIT_STRIPPING) {
    // The sub-counters first, then the key (cluster/split_counters.h says why).
    std::vector<std::string> parts =
        cluster::SplitPartKeys(key, split.shards, (*topology)->state->partition_bits());
    auto read = co_await GetMany(std::move(parts), options);
    for (size_t i = 0; i < read.size(); ++i) {
      if (!read[i].ok()) co_return read[i].status();
      if (!read[i]->has_value()) continue;
      const std::string& v = (**read[i]).value;
      auto frozen = cluster::FrozenNumber(v);
      out.parts[i] = frozen ? std::string(*frozen) : v;
    }
  }
  auto base_read = co_await Get(key, options);
  if (!base_read.ok()) co_return base_read.status();
  if (base_read->has_value()) {
    out.present = true;
    out.version = (*base_read)->version;
    cluster::FoldedBase base = cluster::ParseFoldedBase((*base_read)->value);
    out.base = std::move(base.number);
    for (uint32_t i = 0; i < split.shards; ++i) {
      if (split.phase == internode::SPLIT_STRIPPING || (base.folded >> i & 1) != 0) {
        out.parts[i].clear();
      }
    }
  }
  for (const std::string& p : out.parts) out.present = out.present || !p.empty();
  co_return out;
}

asio::awaitable<std::vector<Result<std::optional<Record>>>> ClusterCoordinator::GetMany(
    std::vector<std::string> keys, RequestOptions options) {
  struct Gather {
    explicit Gather(asio::any_io_executor ex) : done(std::move(ex)) {}
    std::vector<Result<std::optional<Record>>> results;
    size_t left = 0;
    asio::steady_timer done;
  };
  auto executor = co_await asio::this_coro::executor;
  auto gather = std::make_shared<Gather>(executor);
  gather->results.assign(keys.size(), Status::Internal("internal error; see the server log"));
  gather->left = keys.size();
  gather->done.expires_at(asio::steady_timer::time_point::max());
  for (size_t i = 0; i < keys.size(); ++i) {
    asio::co_spawn(
        executor,
        [this, gather, i, key = std::move(keys[i]), options]() -> asio::awaitable<void> {
          gather->results[i] = co_await Get(key, options);
          if (--gather->left == 0) gather->done.cancel();
        },
        asio::detached);
  }
  while (gather->left > 0) co_await gather->done.async_wait(base::kNoThrow);
  co_return std::move(gather->results);
}

asio::awaitable<Result<std::optional<Record>>> ClusterCoordinator::ReadSplit(
    const cluster::KeyspaceDef& ks, std::string key, RequestOptions options) {
  for (int attempt = 0;; ++attempt) {
    auto topology = Topology();
    if (!topology.ok()) co_return topology.status();
    const SplitEntry* found = SplitOf(**topology, ks, key, options);
    if (found == nullptr) {
      // Merged meanwhile: the key alone.
      RequestOptions itself = options;
      itself.split_key_itself = true;
      co_return co_await Get(std::move(key), std::move(itself));
    }
    const SplitEntry split = *found;
    if (attempt == 0) hot_keys_.Add(ks.id, key, /*write=*/false);
    auto values = co_await ReadSplitValues(key, split, options);
    if (!values.ok()) co_return values.status();
    // A phase change that overtook the read makes it again: its reads may straddle a fold.
    auto after = Topology();
    if (!after.ok()) co_return after.status();
    const SplitEntry* now = SplitOf(**after, ks, key, options);
    const bool same = now != nullptr && now->phase == split.phase && now->shards == split.shards;
    if (!same && attempt + 1 < kSplitReadTries) continue;
    if (!same) {
      co_return Status::Unavailable("the split counter kept changing phase during the read");
    }
    split_counters_.reads.fetch_add(1, std::memory_order_relaxed);
    if (!values->present) co_return std::optional<Record>();
    std::vector<std::string_view> numbers;
    if (!values->base.empty()) numbers.push_back(values->base);
    for (const std::string& p : values->parts) {
      if (!p.empty()) numbers.push_back(p);
    }
    std::string sum;
    const base::CounterRefusal refused = base::SumCounters(numbers, &sum);
    if (refused != base::CounterRefusal::kNone) {
      co_return Status::FailedPrecondition(
          fmt::format("the split counter's sum: {}", base::CounterRefusalText(refused).substr(4)));
    }
    Record record;
    record.value = std::move(sum);
    record.version = values->version;
    co_return std::optional(std::move(record));
  }
}

asio::awaitable<Status> ClusterCoordinator::FenceTo(uint64_t epoch) {
  const base::Deadline deadline = base::Clock::now() + kSplitChangeTime;
  std::shared_ptr<const internode::TopologyState> state = store_->state();
  if (!state) co_return Status::Unavailable("this node has no topology yet");
  if (state->fence() >= epoch) co_return Status::Ok();
  // The barrier: every member has this state (so `epoch`), then refuses requests planned with
  // an older one.
  const std::vector<uint32_t> nodes = cluster::BarrierNodes(*state);
  Status s = co_await Broadcast(*state, 0, nodes, deadline);
  if (s.ok()) s = co_await Broadcast(*state, state->epoch(), nodes, deadline);
  if (!s.ok()) {
    co_return Status::Unavailable(fmt::format(
        "the split counter's change is decided (epoch {}), but not every member has it yet: {}; "
        "run the command again once they are up",
        epoch, s.message()));
  }
  const uint64_t fence = state->epoch();
  TopologyChange raise = [fence](const internode::TopologyState& current)
      -> Result<std::optional<internode::TopologyState>> {
    if (current.fence() >= fence) return std::optional<internode::TopologyState>();
    return std::optional(cluster::WithFence(current, fence));
  };
  auto fenced = co_await ChangeTopology(std::move(raise), deadline);
  co_return fenced.status();
}

asio::awaitable<Status> ClusterCoordinator::CommitSplitChange(TopologyChange change,
                                                              const std::string& keyspace,
                                                              const std::string& key) {
  auto changed = co_await ChangeTopology(std::move(change), base::Clock::now() + kSplitChangeTime);
  if (!changed.ok()) co_return changed.status();
  // Its phase is acted on once fenced (so also a phase whose barrier failed before). The
  // removal of an entry needs no fence: a node that has not heard of it reads the key alone,
  // which then holds everything.
  auto entry = cluster::FindSplit(**changed, keyspace, key);
  if (!entry) co_return Status::Ok();
  co_return co_await FenceTo(entry->since_epoch);
}

asio::awaitable<Result<SplitOutcome>> ClusterCoordinator::SplitCounter(std::string key,
                                                                       uint32_t shards,
                                                                       RequestOptions options) {
  if (store_ == nullptr) co_return Status::FailedPrecondition("this node keeps no topology log");
  auto ks_result = ResolveKeyspace(options.keyspace);
  if (!ks_result.ok()) co_return ks_result.status();
  const std::shared_ptr<const cluster::KeyspaceDef> ks = *ks_result;
  if (Status s = ValidateKey(key); !s.ok()) co_return s;
  if (cluster::IsSplitPartKey(key)) {
    co_return Status::InvalidArgument("that key is a sub-counter of a split counter");
  }
  auto topology = Topology();
  if (!topology.ok()) co_return topology.status();
  const uint32_t bits = (*topology)->state->partition_bits();
  RequestOptions itself(ks->name, Consistency::kSerial, options.deadline);
  itself.split_key_itself = true;
  const std::string name = ks->name;
  bool unchanged = false;  // a split that found the counter split so already
  if (shards > 0) {
    if (shards < cluster::kMinSplitShards || shards > cluster::kMaxSplitShards) {
      co_return Status::InvalidArgument(
          fmt::format("a counter splits into {} to {} sub-counters, not {}",
                      cluster::kMinSplitShards, cluster::kMaxSplitShards, shards));
    }
    const auto existing = cluster::FindSplit(*(*topology)->state, name, key);
    if (!existing) {
      // The key must hold an integer or a decimal without a time to live.
      auto current = co_await Get(key, itself);
      if (!current.ok()) co_return current.status();
      if (current->has_value()) {
        if ((*current)->expires_at_ms != 0) {
          co_return Status::FailedPrecondition("a counter with a time to live cannot be split");
        }
        std::string ignored;
        if (base::SumCounters({(*current)->value}, &ignored) != base::CounterRefusal::kNone) {
          co_return Status::FailedPrecondition("the key does not hold a number");
        }
      }
      // The sub-counters exist, at 0, before any increment can go to them.
      std::vector<std::string> parts = cluster::SplitPartKeys(key, shards, bits);
      for (std::string& part : parts) {
        CasCondition always;
        always.kind = CasCondition::Kind::kIfNotExists;
        auto made = co_await Cas(part, always, std::string("0"), 0, itself, Consistency::kDefault);
        if (!made.ok()) co_return made.status();
        // One that exists holding a number is left alone: a split that never took effect left
        // it at 0, or another split of the same counter racing this one made it and increments
        // may already be in it (resetting it would lose them). A frozen one belongs to a merge
        // of the counter that this split did not see (its topology was older than that split
        // and merge): the merge may still have to fold it, so it is left alone too, and the
        // split fails (it would be refused anyway while the merge runs). Anything else (not a
        // counter's: nothing writes such a value under the reserved prefix) is reset.
        std::string ignored;
        const bool number = made->current && base::SumCounters({made->current->value}, &ignored) ==
                                                 base::CounterRefusal::kNone;
        if (!made->applied && made->current && cluster::FrozenNumber(made->current->value)) {
          co_return Status::Unavailable(
              "a merge of this counter is in progress; split it again once the merge has "
              "finished");
        }
        if (!made->applied && !number) {
          CasCondition same;
          same.kind = CasCondition::Kind::kIfVersion;
          same.version = made->current ? made->current->version : Version{};
          auto reset = co_await Cas(part, same, std::string("0"), 0, itself, Consistency::kDefault);
          if (!reset.ok()) co_return reset.status();
          if (!reset->applied) co_return Status::Unavailable("a sub-counter changed meanwhile");
        }
      }
    }
    TopologyChange plan = [&](const internode::TopologyState& current)
        -> Result<std::optional<internode::TopologyState>> {
      auto next = cluster::PlanSplit(current, name, key, shards);
      unchanged = next.ok() && !next->has_value();
      return next;
    };
    Status s = co_await CommitSplitChange(std::move(plan), name, key);
    if (!s.ok()) co_return s;
    if (!unchanged) {
      spdlog::info("split counter '{}' of keyspace {} into {}", base::Printable(key), name, shards);
    }
  } else {
    Status s = co_await MergeCounter(*ks, key, bits, itself);
    if (!s.ok()) co_return s;
    spdlog::info("merged split counter '{}' of keyspace {}", base::Printable(key), name);
  }
  {
    std::lock_guard lock(split_estimates_mu_);
    split_estimates_.erase(cluster::SplitCounterId(name, key));
  }
  SplitOutcome outcome;
  outcome.shards = shards;
  outcome.unchanged = unchanged;
  RequestOptions quorum(name, Consistency::kQuorum, options.deadline);
  auto value = co_await Get(key, quorum);
  if (!value.ok()) co_return value.status();
  if (value->has_value()) outcome.value = (*value)->value;
  co_return outcome;
}

asio::awaitable<Status> ClusterCoordinator::MergeCounter(const cluster::KeyspaceDef& ks,
                                                         const std::string& key, uint32_t bits,
                                                         RequestOptions itself) {
  const std::string name = ks.name;
  auto phase_change = [&](SplitPhase from, SplitPhase to) {
    TopologyChange plan = [&, from, to](const internode::TopologyState& current) {
      return cluster::PlanSplitPhase(current, name, key, from, to);
    };
    return CommitSplitChange(std::move(plan), name, key);
  };
  auto topology = Topology();
  if (!topology.ok()) co_return topology.status();
  auto entry = cluster::FindSplit(*(*topology)->state, name, key);
  if (!entry) co_return Status::NotFound("the key is not a split counter");
  const uint32_t shards = entry->shards;
  // A phase whose barrier failed (a member was down) is fenced before anything is done in it.
  if (Status s = co_await FenceTo(entry->since_epoch); !s.ok()) co_return s;
  if (entry->phase == internode::SPLIT_ACTIVE) {
    if (Status s = co_await phase_change(internode::SPLIT_ACTIVE, internode::SPLIT_MERGING);
        !s.ok()) {
      co_return s;
    }
    entry->phase = internode::SPLIT_MERGING;
  }
  const std::vector<std::string> parts = cluster::SplitPartKeys(key, shards, bits);
  if (entry->phase == internode::SPLIT_MERGING) {
    for (uint32_t i = 0; i < shards; ++i) {
      // Freeze: an increment planned before the fence finds the mark and goes to the key.
      std::string frozen_number;
      CounterDecide freeze = [&](const std::optional<Record>& cur) {
        CounterStep step;
        if (!cur) {
          frozen_number.clear();
          step.write = cluster::FrozenPart("");
        } else if (auto number = cluster::FrozenNumber(cur->value)) {
          frozen_number = std::string(*number);
        } else {
          frozen_number = cur->value;
          step.write = cluster::FrozenPart(cur->value);
        }
        return step;
      };
      auto frozen = co_await IdempotentReadModifyWrite(parts[i], itself, freeze);
      if (!frozen.ok()) co_return frozen.status();
      // Fold: the key gains the number and the mark that says so, in one write.
      base::CounterRefusal refused = base::CounterRefusal::kNone;
      CounterDecide fold = [&](const std::optional<Record>& cur) {
        CounterStep step;
        cluster::FoldedBase base = cluster::ParseFoldedBase(cur ? cur->value : "");
        if ((base.folded >> i & 1) != 0) return step;  // folded before
        std::vector<std::string_view> numbers;
        if (!base.number.empty()) numbers.push_back(base.number);
        if (!frozen_number.empty()) numbers.push_back(frozen_number);
        std::string sum = "0";
        if (!numbers.empty()) refused = base::SumCounters(numbers, &sum);
        if (refused != base::CounterRefusal::kNone) return step;
        base.number = std::move(sum);
        base.folded |= uint64_t{1} << i;
        step.write = cluster::FormatFoldedBase(base);
        return step;
      };
      auto folded = co_await IdempotentReadModifyWrite(key, itself, fold);
      if (!folded.ok()) co_return folded.status();
      if (refused != base::CounterRefusal::kNone) {
        co_return Status::FailedPrecondition(
            fmt::format("folding sub-counter {} into the key: {}", i,
                        base::CounterRefusalText(refused).substr(4)));
      }
    }
    if (Status s = co_await phase_change(internode::SPLIT_MERGING, internode::SPLIT_STRIPPING);
        !s.ok()) {
      co_return s;
    }
  }
  // STRIPPING: reads take the key alone. The sub-counters go, then the fold marks.
  CounterDecide erase = [](const std::optional<Record>& cur) {
    CounterStep step;
    step.erase = cur.has_value();
    return step;
  };
  for (const std::string& part : parts) {
    auto gone = co_await IdempotentReadModifyWrite(part, itself, erase);
    if (!gone.ok()) co_return gone.status();
  }
  CounterDecide strip = [&](const std::optional<Record>& cur) {
    CounterStep step;
    if (!cur) return step;
    cluster::FoldedBase base = cluster::ParseFoldedBase(cur->value);
    if (base.folded == 0) return step;
    base.folded = 0;
    step.write = cluster::FormatFoldedBase(base);
    return step;
  };
  auto stripped = co_await IdempotentReadModifyWrite(key, itself, strip);
  if (!stripped.ok()) co_return stripped.status();
  co_return co_await phase_change(internode::SPLIT_STRIPPING, internode::SPLIT_PHASE_UNSPECIFIED);
}

}  // namespace cairn::coordinator
