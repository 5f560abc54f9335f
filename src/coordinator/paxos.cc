// The proposer side of per-key Paxos: compare-and-swap, SERIAL reads, and writes to
// linearizable keyspaces. ARCHITECTURE.md section 5; docs/consistency.md has the guarantees.
//
// One round: prepare with a ballot from the HLC at a quorum of the key's replicas, which also
// reads the key (so an uncontended compare-and-swap needs no separate read); finish any proposal
// a previous proposer left accepted but unsettled; decide the condition on the newest value; then
// propose the new value and, once a quorum accepted it (the value is chosen), commit it to every
// replica. The commit is awaited at the requested commit level, or sent in the background when
// none is needed (linearizable keyspaces, where every quorum read goes through Paxos too): an
// uncontended compare-and-swap then takes two round trips.

#include <algorithm>
#include <random>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "coordinator/cluster_coordinator.h"
#include "coordinator/replica_set.h"
#include "replica/internode_service.h"

namespace cairn::coordinator {

using base::kNoThrow;
using storage::StoredValue;

namespace {

// How long a losing proposer waits for the last refusals of its round (see PaxosProposeRound).
constexpr auto kStragglerWait = std::chrono::milliseconds(25);
// A key's lease (ClusterCoordinator::PaxosLease) is used, and a next promise asked for, only this
// soon after the key's last write here; at most kMaxLeases keys are remembered.
constexpr auto kLeaseLife = std::chrono::seconds(2);
constexpr size_t kMaxLeases = 10'000;
constexpr size_t kMaxLeaseValueBytes = 16 << 10;

Version VersionOf(const internode::Version& v) { return Version{v.hlc(), v.node()}; }
void SetVersion(const Version& v, internode::Version* out) {
  out->set_hlc(v.hlc);
  out->set_node(v.node);
}

}  // namespace

// The entry point of compare-and-swap: checks the request, then runs PaxosWrite.
asio::awaitable<Result<CasResult>> ClusterCoordinator::Cas(std::string key, CasCondition condition,
                                                           std::optional<std::string> new_value,
                                                           uint64_t ttl_ms, RequestOptions options,
                                                           Consistency commit) {
  auto ks = ResolveKeyspace(options.keyspace);
  if (!ks.ok()) co_return ks.status();
  if (Status s = ValidateKey(key); !s.ok()) co_return s;
  if (new_value) {
    if (Status s = ValidateValue(*new_value); !s.ok()) co_return s;
  }
  if (condition.kind == CasCondition::Kind::kIfValue) {
    if (Status s = ValidateValue(condition.value); !s.ok()) co_return s;
  }
  if (Status s = ValidateTtl(ttl_ms); !s.ok()) co_return s;
  Consistency serial = options.consistency;
  if (serial == Consistency::kDefault) serial = Consistency::kSerial;
  if (serial != Consistency::kSerial && serial != Consistency::kLocalSerial) {
    co_return Status::InvalidArgument(fmt::format(
        "compare-and-swap runs at SERIAL or LOCAL_SERIAL, not {}; the level its result is "
        "committed at is the separate commit consistency",
        ConsistencyName(serial)));
  }
  std::optional<Consistency> commit_level;
  if (commit == Consistency::kDefault) {
    if (!(*ks)->linearizable) {
      commit_level =
          serial == Consistency::kLocalSerial ? Consistency::kLocalQuorum : Consistency::kQuorum;
    }
  } else if (commit == Consistency::kSerial || commit == Consistency::kLocalSerial) {
    co_return Status::InvalidArgument(
        fmt::format("{} is not a commit level; use ONE .. ALL, LOCAL_*, EACH_QUORUM or ANY",
                    ConsistencyName(commit)));
  } else if (commit != Consistency::kAny) {
    commit_level = commit;
  }
  auto topology = Topology();
  if (!topology.ok()) co_return topology.status();
  if (SplitOf(**topology, **ks, key, options) != nullptr) co_return SplitKeyRefused(key);
  paxos_counters_.cas.fetch_add(1, std::memory_order_relaxed);
  if (options.count_hot_key) hot_keys_.Add((*ks)->id, key, /*write=*/true);
  const uint64_t expiry = new_value && ttl_ms > 0 ? wall_->NowMillis() + ttl_ms : 0;
  StoredValue value{Version{}, !new_value.has_value(), expiry, new_value.value_or("")};
  // The key is kept for client-side caching (beside a Paxos round, a copy costs nothing).
  storage::DataKey data_key = KeyOf(**ks, key);
  const ReplicaSet set = ReplicaSet::ForWrite(**topology, **ks, data_key.partition);
  auto r = co_await PaxosWrite(**topology, set, std::move(data_key), &condition, std::move(value),
                               serial, commit_level, options.deadline, ks->get());
  // Reported when it applied or may have (TIMEOUT); a swap whose condition failed changed nothing.
  if (invalidations_.active() && (r.ok() ? r->applied : MayHaveChanged(r.status()))) {
    auto here = co_await asio::this_coro::executor;
    ReportChanged(here, options, std::span(&key, 1));
  }
  co_return r;
}

// Answers of one Paxos phase from the participants, as they come in. Lives on one reactor.
template <typename Response>
class ClusterCoordinator::Phase {
 public:
  Phase(asio::any_io_executor ex, size_t participants, std::function<bool(const Phase&)> enough)
      : participants_(participants), enough_(std::move(enough)), wake_(std::move(ex)) {}

  // Answers that come in after Wait() returned are kept (WaitAll() may want them) but no longer
  // judged: `enough` may refer to the waiter's locals, gone by then.
  void Add(uint32_t node, Result<Response> r) {
    answers_.emplace_back(node, std::move(r));
    if (answers_.size() == participants_ || (!waited_ && enough_(*this))) wake_.cancel();
  }
  asio::awaitable<void> Wait(base::Deadline deadline) {
    if (answers_.size() != participants_ && !enough_(*this)) {
      wake_.expires_at(deadline);
      co_await wake_.async_wait(kNoThrow);
    }
    waited_ = true;
  }
  // After Wait(): waits for the rest of the answers, until `until` at the latest.
  asio::awaitable<void> WaitAll(base::Deadline until) {
    if (answers_.size() == participants_) co_return;
    wake_.expires_at(until);
    co_await wake_.async_wait(kNoThrow);
  }
  const std::vector<std::pair<uint32_t, Result<Response>>>& answers() const { return answers_; }
  size_t participants() const { return participants_; }

 private:
  const size_t participants_;
  const std::function<bool(const Phase&)> enough_;
  std::vector<std::pair<uint32_t, Result<Response>>> answers_;
  bool waited_ = false;  // Wait() has returned
  asio::steady_timer wake_;
};

// Sends `request` to each participant (the local acceptor directly) and gathers the answers
// until `enough` says so, all answered, or the deadline.
template <typename Response>
asio::awaitable<std::shared_ptr<ClusterCoordinator::Phase<Response>>>
ClusterCoordinator::PaxosPhase(const cluster::Topology& topology,
                               const std::vector<uint32_t>& participants,
                               internode::Request request,
                               std::function<bool(const Phase<Response>&)> enough,
                               base::Deadline deadline) {
  if constexpr (std::is_same_v<Response, internode::PaxosPrepareResponse>) {
    paxos_counters_.prepares.fetch_add(1, std::memory_order_relaxed);
  } else if constexpr (std::is_same_v<Response, internode::PaxosProposeResponse>) {
    paxos_counters_.proposes.fetch_add(1, std::memory_order_relaxed);
  } else {
    paxos_counters_.commits.fetch_add(1, std::memory_order_relaxed);
  }
  auto executor = co_await asio::this_coro::executor;
  auto phase = std::make_shared<Phase<Response>>(executor, participants.size(), std::move(enough));
  // One request for all the tasks, which run on this reactor: InternodeClient::Call leaves it
  // as it is, and the local acceptor copies what it keeps.
  request.set_topology_epoch(topology.epoch);
  auto shared = std::make_shared<const internode::Request>(std::move(request));
  for (uint32_t node : participants) {
    std::string address = AddressOf(topology, node);
    // Each task reports to the phase whatever happens: nothing escapes it.
    asio::co_spawn(
        executor,
        [this, phase, node, address = std::move(address), shared,
         deadline]() mutable -> asio::awaitable<void> {
          const internode::Request& request = *shared;
          Result<Response> r = Status::Unavailable("not sent");
          if (node == identity_.node_id) {
            if constexpr (std::is_same_v<Response, internode::PaxosPrepareResponse>) {
              r = co_await local_->paxos().Prepare(request.paxos_prepare(), deadline);
            } else if constexpr (std::is_same_v<Response, internode::PaxosProposeResponse>) {
              r = co_await local_->paxos().Propose(request.paxos_propose(), deadline);
            } else {
              r = co_await local_->paxos().Commit(request.paxos_commit(), deadline);
            }
          } else if (cluster::InternodeClient* client = Client()) {
            auto response = co_await client->Call(address, request, deadline);
            if (!response.ok()) {
              r = response.status();
            } else if constexpr (std::is_same_v<Response, internode::PaxosPrepareResponse>) {
              r = std::move(*response->mutable_paxos_prepare());
            } else if constexpr (std::is_same_v<Response, internode::PaxosProposeResponse>) {
              r = std::move(*response->mutable_paxos_propose());
            } else {
              r = std::move(*response->mutable_paxos_commit());
            }
          }
          phase->Add(node, std::move(r));
        },
        asio::detached);
  }
  co_await phase->Wait(deadline);
  co_return phase;
}

std::vector<uint32_t> ClusterCoordinator::PaxosParticipants(const ReplicaSet& set,
                                                            Consistency serial, Quorum* quorum,
                                                            cairn::Status* why) const {
  std::vector<uint32_t> members;
  quorum->groups.assign(set.group_count, {});
  for (size_t i = 0; i < set.nodes.size(); ++i) {
    if (serial != Consistency::kLocalSerial || static_cast<int>(set.dc_of[i]) == set.local_dc) {
      members.push_back(set.nodes[i]);
      for (uint8_t g = 0; g < set.group_count; ++g) {
        if (set.groups[i] >> g & 1) quorum->groups[g].push_back(set.nodes[i]);
      }
    }
  }
  std::vector<uint32_t> live;
  for (uint32_t node : members) {
    if (view_->IsUp(node)) live.push_back(node);
  }
  if (members.empty()) {
    *why = Status::Unavailable(fmt::format("{}: the keyspace has no replicas in this data centre",
                                           ConsistencyName(serial)));
  } else if (!quorum->Reached(live)) {
    *why = Status::Unavailable(fmt::format(
        "{} needs {} of {} replicas{}, and {} {} up; nothing was written", ConsistencyName(serial),
        quorum->Size(), members.size(),
        set.group_count > 1 ? " (a majority of both the old and the new replicas of a moving "
                              "partition)"
                            : "",
        live.size(), live.size() == 1 ? "is" : "are"));
  }
  return live;
}

asio::awaitable<void> ClusterCoordinator::Backoff(int attempt) {
  paxos_counters_.contended.fetch_add(1, std::memory_order_relaxed);
  // Randomised and growing, so that contending proposers stop preempting each other.
  thread_local std::mt19937_64 rng(std::random_device{}());
  const int cap_ms = std::min(100, 2 << std::min(attempt, 6));
  asio::steady_timer t(co_await asio::this_coro::executor,
                       std::chrono::milliseconds(1 + rng() % static_cast<uint64_t>(cap_ms)));
  co_await t.async_wait(kNoThrow);
}

asio::awaitable<cairn::Status> ClusterCoordinator::PaxosCommit(
    const cluster::Topology& topology, const ReplicaSet& set, Version ballot,
    internode::Mutation mutation, std::optional<Consistency> level, base::Deadline deadline,
    std::optional<Version> next_ballot, std::vector<uint32_t>* promised_by) {
  // Every replica gets the commit (those that are down, a hint of the value).
  // No co_await inside a co_spawn below: the lambda temporaries would be destroyed twice (the
  // g++ 12 note in coordinator.h).
  auto executor = co_await asio::this_coro::executor;
  std::vector<uint32_t> up, down;
  for (uint32_t node : set.nodes) (view_->IsUp(node) ? up : down).push_back(node);
  if (hints_ != nullptr) {
    for (uint32_t node : down) {
      std::vector<internode::Mutation> hint{mutation};
      asio::co_spawn(
          executor,
          [this, node, hint = std::move(hint)]() mutable -> asio::awaitable<void> {
            co_await hints_->Add(node, std::move(hint));
          },
          asio::detached);
    }
  }
  internode::Request request;
  SetVersion(ballot, request.mutable_paxos_commit()->mutable_ballot());
  *request.mutable_paxos_commit()->mutable_mutation() = std::move(mutation);
  if (next_ballot && level) {
    SetVersion(*next_ballot, request.mutable_paxos_commit()->mutable_next_ballot());
  }
  if (!level) {
    // Nothing waits: the value is chosen, and any later round finishes an unsettled commit.
    asio::co_spawn(
        executor,
        [this, topology_copy = view_->topology(), up, request,
         deadline]() mutable -> asio::awaitable<void> {
          if (topology_copy) {
            std::function<bool(const Phase<internode::PaxosCommitResponse>&)> all =
                [](const Phase<internode::PaxosCommitResponse>&) { return false; };
            co_await PaxosPhase<internode::PaxosCommitResponse>(
                *topology_copy, up, std::move(request), std::move(all), deadline);
          }
        },
        asio::detached);
    co_return Status::Ok();
  }
  auto req = Requirement::For(*level, set, true);
  if (!req.ok()) co_return req.status();
  // By value: the phase may outlive this frame (see Phase::Add).
  auto count = [set, req = *req](const Phase<internode::PaxosCommitResponse>& phase) {
    std::vector<uint32_t> acked;
    for (const auto& [node, r] : phase.answers()) {
      if (r.ok()) acked.push_back(node);
    }
    return std::make_pair(req.Met(set, acked), static_cast<uint32_t>(acked.size()));
  };
  std::function<bool(const Phase<internode::PaxosCommitResponse>&)> enough =
      [count](const Phase<internode::PaxosCommitResponse>& p) { return count(p).first; };
  auto phase = co_await PaxosPhase<internode::PaxosCommitResponse>(topology, up, std::move(request),
                                                                   std::move(enough), deadline);
  if (promised_by != nullptr) {
    for (const auto& [node, r] : phase->answers()) {
      if (r.ok() && r->next_promised()) promised_by->push_back(node);
    }
  }
  const auto [met, acks] = count(*phase);
  if (met) co_return Status::Ok();
  co_return Status::Timeout(
      fmt::format("the compare-and-swap was decided, but only {} of {} replicas committed it "
                  "before the deadline",
                  acks, req->Needed()),
      acks);
}

std::optional<ClusterCoordinator::PaxosLease> ClusterCoordinator::StartPaxosWrite(
    const std::string& key) {
  std::lock_guard lock(leases_mu_);
  ++writing_[key];
  auto it = leases_.find(key);
  if (it == leases_.end()) return std::nullopt;
  PaxosLease lease = std::move(it->second);
  leases_.erase(it);
  if (base::Clock::now() - lease.at > kLeaseLife) return std::nullopt;
  return lease;
}

void ClusterCoordinator::EndPaxosWrite(const std::string& key) {
  std::lock_guard lock(leases_mu_);
  auto it = writing_.find(key);
  if (it != writing_.end() && --it->second == 0) writing_.erase(it);
}

bool ClusterCoordinator::WritingAlone(const std::string& key) {
  std::lock_guard lock(leases_mu_);
  auto it = writing_.find(key);
  return it != writing_.end() && it->second == 1;
}

void ClusterCoordinator::KeepLease(const std::string& key, PaxosLease lease) {
  std::lock_guard lock(leases_mu_);
  if (leases_.size() >= kMaxLeases && !leases_.contains(key)) {
    // Full: forget the stale ones, or everything (a lease only saves a round trip).
    const auto now = base::Clock::now();
    std::erase_if(leases_, [now](const auto& entry) { return now - entry.second.at > kLeaseLife; });
    if (leases_.size() >= kMaxLeases) leases_.clear();
  }
  leases_.insert_or_assign(key, std::move(lease));
}

asio::awaitable<cairn::Status> ClusterCoordinator::PaxosCommitChosen(
    const cluster::Topology& topology, const ReplicaSet& set, Version ballot,
    const internode::Mutation& mutation, std::optional<Consistency> level, base::Deadline deadline,
    const std::string& lease_key, const std::vector<uint32_t>& participants, const Quorum& quorum,
    Consistency serial, bool ask_next) {
  PaxosLease lease;
  lease.participants = participants;
  lease.serial = serial;
  std::optional<Version> next;
  // A promise can only be counted from answers the commit waits for; a lease keeps the value.
  // Not while other writes of the key run here: the promise would pre-empt their rounds, and
  // the next swap would most likely not be ours to make anyway.
  if (ask_next && level && mutation.value().size() <= kMaxLeaseValueBytes &&
      WritingAlone(lease_key)) {
    next = Version{clock_->Now(), identity_.node_id};
  }
  std::vector<uint32_t> promised_by;
  Status committed =
      co_await PaxosCommit(topology, set, ballot, mutation, level, deadline, next, &promised_by);
  std::vector<uint32_t> promises;
  for (uint32_t node : promised_by) {
    if (std::find(participants.begin(), participants.end(), node) != participants.end()) {
      promises.push_back(node);
    }
  }
  if (committed.ok() && next && quorum.Reached(promises)) {
    lease.ballot = *next;
    lease.current = replica::FromMutation(internode::Mutation(mutation)).value;
  }
  lease.at = base::Clock::now();
  KeepLease(lease_key, std::move(lease));  // a promise, or just "written here recently"
  co_return committed;
}

asio::awaitable<Result<ClusterCoordinator::PaxosRead>> ClusterCoordinator::PaxosPrepareRound(
    const cluster::Topology& topology, const storage::DataKey& key,
    const std::vector<uint32_t>& participants, const Quorum& quorum, bool lazy,
    const CasCondition* condition, base::Deadline deadline) {
  internode::Request request;
  auto* prepare = request.mutable_paxos_prepare();
  prepare->mutable_key()->set_partition(key.partition);
  prepare->mutable_key()->set_keyspace(key.keyspace);
  prepare->mutable_key()->set_key(key.key);
  prepare->set_lazy(lazy);
  if (lazy && condition != nullptr) replica::ToProto(*condition, prepare->mutable_condition());
  int attempt = 0;
  while (base::Clock::now() < deadline) {
    const Version ballot{clock_->Now(), identity_.node_id};
    SetVersion(ballot, prepare->mutable_ballot());
    prepare->set_now_ms(wall_->NowMillis());
    // Done once a quorum promised, or a quorum answered and some of them as reads (the proposer
    // may not need promises), or too many refused.
    std::function<bool(const Phase<internode::PaxosPrepareResponse>&)> enough =
        [quorum](const Phase<internode::PaxosPrepareResponse>& p) {
          std::vector<uint32_t> yes, answered, no;
          for (const auto& [node, r] : p.answers()) {
            if (!r.ok()) continue;
            if (r->promised()) {
              yes.push_back(node);
              answered.push_back(node);
            } else if (r->skipped()) {
              answered.push_back(node);
            } else {
              no.push_back(node);
            }
          }
          return quorum.Reached(yes) ||
                 (answered.size() > yes.size() && quorum.Reached(answered)) || !quorum.Possible(no);
        };
    auto phase = co_await PaxosPhase<internode::PaxosPrepareResponse>(topology, participants,
                                                                      request, enough, deadline);
    PaxosRead read;
    read.ballot = ballot;
    std::vector<uint32_t> yes, answered;
    Version floor;
    Version committed;  // the greatest ballot any answer's data was chosen at
    // The data version of each replica that answered as a read.
    std::vector<std::pair<uint32_t, Version>> held;
    for (const auto& [node, r] : phase->answers()) {
      if (!r.ok()) continue;
      floor = std::max(floor, VersionOf(r->floor()));
      if (!r->promised() && !r->skipped()) continue;  // refused: its answer is not a read
      if (r->promised()) yes.push_back(node);
      answered.push_back(node);
      committed = std::max(committed, VersionOf(r->committed()));
      held.emplace_back(node, r->found() ? VersionOf(r->current().version()) : Version{});
      if (r->found()) {
        StoredValue v = replica::FromMutation(internode::Mutation(r->current())).value;
        if (!read.current || read.current->version < v.version) read.current = std::move(v);
      }
      if (r->pending() &&
          (!read.pending || read.pending_ballot < VersionOf(r->accepted_ballot()))) {
        read.pending = r->accepted();
        read.pending_ballot = VersionOf(r->accepted_ballot());
      }
    }
    if (quorum.Reached(yes) || (answered.size() > yes.size() && quorum.Reached(answered))) {
      read.promised = quorum.Reached(yes);
      if (read.current) {
        for (const auto& [node, version] : held) {
          if (version == read.current->version) read.current_holders.push_back(node);
        }
      }
      // A pending proposal is unsettled only if no answer's data has its value yet and no
      // value committed at one of them outranked it. (Paxos's "the highest accepted ballot
      // wins", with commits counting as accepts at the ballot they were chosen at: a value
      // completed by a later round keeps its first version, which alone would understate it.)
      if (read.pending && replica::PaxosProposalSettled(
                              VersionOf(read.pending->version()), read.pending_ballot,
                              read.current ? read.current->version : Version{}, committed)) {
        read.pending.reset();
      }
      co_return read;
    }
    // Replicas whose fence is past the topology this was planned with refuse it: no retry
    // with the same participants can succeed, the caller must plan again.
    for (const auto& [node, r] : phase->answers()) {
      if (!r.ok() && r.status().code() == Code::kFailedPrecondition) co_return r.status();
    }
    // Preempted (a higher ballot, or data newer than our clock): catch up and try again.
    clock_->Observe(floor.hlc);
    co_await Backoff(attempt++);
  }
  co_return Status::Timeout("no quorum of promises before the deadline (contention)", 0);
}

asio::awaitable<bool> ClusterCoordinator::PaxosProposeRound(
    const cluster::Topology& topology, const std::vector<uint32_t>& participants,
    const Quorum& quorum, Version ballot, const internode::Mutation& mutation,
    base::Deadline deadline, bool* maybe_accepted) {
  internode::Request request;
  SetVersion(ballot, request.mutable_paxos_propose()->mutable_ballot());
  *request.mutable_paxos_propose()->mutable_mutation() = mutation;
  std::function<bool(const Phase<internode::PaxosProposeResponse>&)> decided =
      [quorum](const Phase<internode::PaxosProposeResponse>& p) {
        std::vector<uint32_t> yes, no;
        for (const auto& [node, r] : p.answers()) {
          if (r.ok()) (r->accepted() ? yes : no).push_back(node);
        }
        return quorum.Reached(yes) || !quorum.Possible(no);
      };
  auto phase = co_await PaxosPhase<internode::PaxosProposeResponse>(
      topology, participants, std::move(request), decided, deadline);
  std::vector<uint32_t> yes, no;
  auto count = [&phase, &yes, &no] {
    yes.clear();
    no.clear();
    for (const auto& [node, r] : phase->answers()) {
      if (r.ok()) (r->accepted() ? yes : no).push_back(node);
    }
  };
  count();
  if (yes.empty() && no.size() < participants.size() &&
      phase->answers().size() < participants.size()) {
    // Refused by enough to lose, and accepted nowhere yet: the stragglers' refusals (usually a
    // millisecond away) would prove the proposal accepted nowhere, so that a retry need not
    // fear it was chosen. Wait for them a little.
    const base::Deadline until = std::min(deadline, base::Clock::now() + kStragglerWait);
    co_await phase->WaitAll(until);
    count();
  }
  Version floor;
  for (const auto& [node, r] : phase->answers()) {
    if (r.ok()) floor = std::max(floor, VersionOf(r->floor()));
  }
  // Anything short of an explicit refusal from everyone may have been accepted somewhere.
  if (no.size() < participants.size()) *maybe_accepted = true;
  const bool chosen = quorum.Reached(yes);
  if (!chosen) clock_->Observe(floor.hlc);
  co_return chosen;
}

// Long on purpose: one proposer's rounds, in the order Paxos takes them (lease, prepare, finish
// what is pending, propose, commit), share the state that makes the answer right (`mine`,
// `maybe_accepted`); split into functions, that state would travel through every signature.
asio::awaitable<Result<CasResult>> ClusterCoordinator::PaxosWrite(
    const cluster::Topology& planned, const ReplicaSet& planned_set, storage::DataKey key,
    const CasCondition* condition, StoredValue value, Consistency serial,
    std::optional<Consistency> commit, base::Deadline deadline, const cluster::KeyspaceDef* ks) {
  // The plan: the topology, the key's replicas and the Paxos participants among them. With `ks`
  // it is made again from a newer topology when replicas refuse this one (their fence passed
  // it); the proposals made so far (`mine`) stay ours whoever the participants are.
  const cluster::Topology* topology = &planned;
  std::shared_ptr<const cluster::Topology> newer;
  ReplicaSet set = planned_set;
  Quorum quorum;
  std::vector<uint32_t> participants;
  auto plan = [&]() -> Status {
    cairn::Status why;
    participants = PaxosParticipants(set, serial, &quorum, &why);
    if (!why.ok()) return why;
    if (commit) {
      auto req = Requirement::For(*commit, set, true);
      if (!req.ok()) return req.status();
      if (Status s = CheckLive(set, *req, *view_, *commit); !s.ok()) return s;
    }
    return Status::Ok();
  };
  if (Status s = plan(); !s.ok()) co_return s;

  std::vector<Version> mine;  // ballots (= versions) our value was proposed with
  bool maybe_accepted = false;
  auto ours = [&mine](const Version& v) {
    return std::find(mine.begin(), mine.end(), v) != mine.end();
  };
  auto record_of = [](const internode::Mutation& m) {
    StoredValue v = replica::FromMutation(internode::Mutation(m)).value;
    return v.tombstone ? std::optional<Record>()
                       : std::optional<Record>(Record{v.value, v.version, v.expires_at_ms});
  };
  // This coordinator's lease on the key, if any (taken: a ballot is proposed at most once).
  // Having one also means the key was written here recently: its commit asks for the next.
  const std::string lease_key = storage::EncodeDataKey(key);
  std::optional<PaxosLease> lease = StartPaxosWrite(lease_key);
  const bool recent = lease.has_value();
  // Counted until the write ends, however it ends (see WritingAlone).
  struct Ending {
    ClusterCoordinator* coordinator;
    const std::string* key;
    ~Ending() { coordinator->EndPaxosWrite(*key); }
  };
  const Ending ending{this, &lease_key};
  if (lease && lease->ballot.hlc != 0 && lease->serial == serial &&
      lease->participants == participants) {
    const StoredValue* current = lease->current ? &*lease->current : nullptr;
    if (condition == nullptr || replica::ConditionHolds(*condition, current, wall_->NowMillis())) {
      // The key's last commit from here was also the prepare of this ballot at a quorum, which
      // had nothing pending and `current` as the newest value: propose at once. A refusal means
      // another ballot came between; the swap then runs a full round below.
      paxos_counters_.leased.fetch_add(1, std::memory_order_relaxed);
      const Version ballot = lease->ballot;
      StoredValue proposal = value;
      proposal.version = ballot;
      internode::Mutation mutation;
      replica::ToMutation(key, proposal, &mutation);
      mine.push_back(ballot);
      auto accepted = co_await PaxosProposeRound(*topology, participants, quorum, ballot, mutation,
                                                 deadline, &maybe_accepted);
      if (accepted) {
        Status committed =
            co_await PaxosCommitChosen(*topology, set, ballot, mutation, commit, deadline,
                                       lease_key, participants, quorum, serial, /*ask_next=*/true);
        if (!committed.ok()) co_return committed;
        CasResult done;
        done.applied = true;
        done.current = record_of(mutation);
        done.version = ballot;
        co_return done;
      }
      paxos_counters_.lease_lost.fetch_add(1, std::memory_order_relaxed);
    }
  }
  int attempt = 0;
  // A conditional write starts lazily: when its condition fails, it answers from a quorum read
  // without taking promises away from a proposer that is about to win.
  bool lazy = condition != nullptr;
  while (base::Clock::now() < deadline) {
    auto read =
        co_await PaxosPrepareRound(*topology, key, participants, quorum, lazy, condition, deadline);
    if (!read.ok() && read.status().code() == Code::kFailedPrecondition && ks != nullptr) {
      newer = co_await NewerTopology(topology->epoch, deadline);
      if (!newer) break;
      topology = newer.get();
      set = ReplicaSet::ForWrite(*topology, *ks, key.partition);
      if (Status s = plan(); !s.ok()) co_return s;
      replica_counters_.replans.Add(1);
      continue;
    }
    if (!read.ok()) break;
    if (spdlog::should_log(spdlog::level::debug))
      spdlog::debug("paxos write {} b={}: promised={} current={} pending={}@{} mine={}",
                    std::string_view(key.key).substr(0, 64), read->ballot.ToString(),
                    read->promised, read->current ? read->current->version.ToString() : "none",
                    read->pending ? VersionOf(read->pending->version()).ToString() : "none",
                    read->pending ? read->pending_ballot.ToString() : "-", mine.size());
    if (read->pending && !read->promised) {
      lazy = false;  // something to finish: that needs promises
      continue;
    }
    if (read->pending) {
      // Finish what a previous round left accepted: it may have been chosen. It is proposed
      // again under this round's ballot, keeping its version.
      const bool was_ours = ours(VersionOf(read->pending->version()));
      if (!was_ours) paxos_counters_.unfinished.fetch_add(1, std::memory_order_relaxed);
      const internode::Mutation& again = *read->pending;
      // Only our own proposals count for `maybe_accepted`: finishing another one says nothing
      // about ours (and a pending one of ours already counted when we proposed it).
      bool finishing_accepted = false;
      auto accepted = co_await PaxosProposeRound(*topology, participants, quorum, read->ballot,
                                                 again, deadline, &finishing_accepted);
      if (accepted) {
        Status committed = co_await PaxosCommit(*topology, set, read->ballot, again,
                                                was_ours ? commit : Consistency::kQuorum, deadline);
        if (was_ours) {
          if (!committed.ok()) co_return committed;
          CasResult done;
          done.applied = true;
          done.current = record_of(again);
          done.version = VersionOf(again.version());
          co_return done;
        }
      }
      co_await Backoff(attempt++);
      continue;
    }
    if (read->current && ours(read->current->version)) {
      // Our value was chosen and committed by another round.
      CasResult done;
      done.applied = true;
      done.version = read->current->version;
      internode::Mutation m;
      replica::ToMutation(key, *read->current, &m);
      done.current = record_of(m);
      co_return done;
    }
    if (maybe_accepted && !mine.empty() && read->current && mine.front() < read->current->version) {
      // An earlier proposal of ours may have been chosen and since overwritten: the data holds
      // something newer than it, and nothing of ours is pending. Proposing our value again could
      // apply this one request twice (visible, overwritten, then back), and answering "applied"
      // could be wrong (if ours was never chosen, the newer value may be a swap whose condition
      // was decided without ours). Neither can be told apart from here: answer TIMEOUT, "may
      // have been applied". A proposal of ours that a commit outranked without the data
      // passing its version does not get here, and need not: it can never be chosen, so going
      // on applies this request at most once.
      break;
    }
    const uint64_t now = wall_->NowMillis();
    const StoredValue* current = read->current ? &*read->current : nullptr;
    if (condition != nullptr && !replica::ConditionHolds(*condition, current, now)) {
      if (maybe_accepted) break;  // an earlier proposal of ours might still be chosen
      CasResult result;
      if (current != nullptr) result.current = LiveRecord(*current, now);
      co_return result;
    }
    if (!read->promised) {
      lazy = false;  // the condition holds on the newest value: now take the promises
      continue;
    }
    StoredValue proposal = value;
    proposal.version = read->ballot;
    internode::Mutation mutation;
    replica::ToMutation(key, proposal, &mutation);
    mine.push_back(read->ballot);
    auto accepted = co_await PaxosProposeRound(*topology, participants, quorum, read->ballot,
                                               mutation, deadline, &maybe_accepted);
    if (spdlog::should_log(spdlog::level::debug))
      spdlog::debug("paxos write {} proposed {}: {} by a quorum of {}",
                    std::string_view(key.key).substr(0, 64), read->ballot.ToString(),
                    accepted ? "accepted" : "not accepted", participants.size());
    if (accepted) {
      // Chosen. Commit it (and wait at the commit level, when one is asked for).
      Status committed =
          co_await PaxosCommitChosen(*topology, set, read->ballot, mutation, commit, deadline,
                                     lease_key, participants, quorum, serial, recent);
      if (!committed.ok()) co_return committed;
      CasResult done;
      done.applied = true;
      done.current = record_of(mutation);
      done.version = read->ballot;
      co_return done;
    }
    co_await Backoff(attempt++);
  }
  paxos_counters_.timeouts.fetch_add(1, std::memory_order_relaxed);
  co_return Status::Timeout(
      maybe_accepted
          ? "the compare-and-swap was not decided before the deadline (contention or slow "
            "replicas); it may still be applied"
          : "the compare-and-swap was not decided before the deadline (contention or slow "
            "replicas); it was not applied",
      0);
}

asio::awaitable<std::vector<Result<Version>>> ClusterCoordinator::LinearizableWrites(
    const cluster::Topology& topology, const cluster::KeyspaceDef& ks,
    std::vector<std::pair<storage::DataKey, StoredValue>> writes, Consistency level,
    base::Deadline deadline, const RequestOptions& report) {
  const Consistency serial = level == Consistency::kLocalOne || level == Consistency::kLocalQuorum
                                 ? Consistency::kLocalSerial
                                 : Consistency::kSerial;
  struct Gather {
    explicit Gather(asio::any_io_executor ex, size_t n) : out(n), left(n), wake(std::move(ex)) {}
    std::vector<Result<Version>> out;
    size_t left;
    asio::steady_timer wake;
  };
  auto executor = co_await asio::this_coro::executor;
  auto gather = std::make_shared<Gather>(executor, writes.size());
  paxos_counters_.plain_writes.fetch_add(writes.size(), std::memory_order_relaxed);
  for (size_t i = 0; i < writes.size(); ++i) {
    asio::co_spawn(
        executor,
        [this, gather, i, &topology, &ks, &report, write = std::move(writes[i]), serial,
         deadline]() mutable -> asio::awaitable<void> {
          const ReplicaSet set = ReplicaSet::ForWrite(topology, ks, write.first.partition);
          // Kept for client-side caching: beside a Paxos round, a copy costs nothing.
          const std::string key = write.first.key;
          auto r =
              co_await PaxosWrite(topology, set, std::move(write.first), nullptr,
                                  std::move(write.second), serial, std::nullopt, deadline, &ks);
          if (invalidations_.active() && MayHaveChanged(r.ok() ? Status::Ok() : r.status())) {
            auto here = co_await asio::this_coro::executor;
            ReportChanged(here, report, std::span(&key, 1));
          }
          if (!r.ok()) {
            gather->out[i] = r.status();
          } else {
            gather->out[i] = r->version;
          }
          if (--gather->left == 0) gather->wake.cancel();
        },
        asio::detached);
  }
  // Every task ends by the deadline (PaxosWrite gives up then); `topology`, `ks` and `report`
  // outlive them because this coroutine waits for all of them.
  while (gather->left > 0) {
    gather->wake.expires_at(base::Deadline::max());
    co_await gather->wake.async_wait(kNoThrow);
  }
  co_return std::move(gather->out);
}

asio::awaitable<Result<std::optional<StoredValue>>> ClusterCoordinator::SerialRead(
    const cluster::Topology& topology, const cluster::KeyspaceDef& ks, storage::DataKey key,
    Consistency serial, base::Deadline deadline) {
  paxos_counters_.serial_reads.fetch_add(1, std::memory_order_relaxed);
  const ReplicaSet set = ReplicaSet::ForWrite(topology, ks, key.partition);
  Quorum quorum;
  cairn::Status why;
  const std::vector<uint32_t> participants = PaxosParticipants(set, serial, &quorum, &why);
  if (!why.ok()) co_return why;
  int attempt = 0;
  bool unused = false;
  bool lazy = true;  // a read promises nothing unless it has something to finish
  while (base::Clock::now() < deadline) {
    auto read =
        co_await PaxosPrepareRound(topology, key, participants, quorum, lazy, nullptr, deadline);
    if (!read.ok() && read.status().code() == Code::kFailedPrecondition) {
      // Fenced out: read again with the topology that fenced this one.
      auto newer = co_await NewerTopology(topology.epoch, deadline);
      if (!newer) co_return read.status();
      replica_counters_.replans.Add(1);
      co_return co_await SerialRead(*newer, ks, std::move(key), serial, deadline);
    }
    if (!read.ok()) co_return read.status();
    if (!read->pending) {
      if (read->current && !quorum.Reached(read->current_holders)) {
        // The newest value is on fewer than a quorum (a commit or a write cut short): complete
        // it, so that a QUORUM read that follows this one cannot miss it. Committed under its
        // own version, it promises nothing newer and so preempts no one.
        internode::Mutation m;
        replica::ToMutation(key, *read->current, &m);
        Status s = co_await PaxosCommit(topology, set, read->current->version, std::move(m),
                                        Consistency::kQuorum, deadline);
        if (!s.ok()) co_return s;
      }
      co_return std::move(read->current);
    }
    if (!read->promised) {
      lazy = false;
      continue;
    }
    // A proposal may have been chosen but not committed: finish it before answering, so that no
    // later read can see an older value than this one.
    const internode::Mutation& again = *read->pending;
    auto accepted = co_await PaxosProposeRound(topology, participants, quorum, read->ballot, again,
                                               deadline, &unused);
    if (accepted) {
      Status committed =
          co_await PaxosCommit(topology, set, read->ballot, again, Consistency::kQuorum, deadline);
      if (committed.ok()) {
        co_return std::optional<StoredValue>(
            replica::FromMutation(internode::Mutation(again)).value);
      }
    }
    co_await Backoff(attempt++);
  }
  paxos_counters_.timeouts.fetch_add(1, std::memory_order_relaxed);
  co_return Status::Timeout("the SERIAL read was not decided before the deadline (contention)", 0);
}

}  // namespace cairn::coordinator
