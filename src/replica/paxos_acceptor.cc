#include "replica/paxos_acceptor.h"

#include <algorithm>
#include <memory>

#include <spdlog/spdlog.h>

#include "replica/condition.h"
#include "replica/internode_service.h"

namespace cairn::replica {
namespace {

Version VersionOf(const internode::Version& v) { return Version{v.hlc(), v.node()}; }
void SetVersion(const Version& v, internode::Version* out) {
  out->set_hlc(v.hlc);
  out->set_node(v.node);
}

// For the debug trace (CAIRN_TEST_LOG_LEVEL=debug in the fault tests): a key, shortened.
std::string_view Shown(const std::string& key) { return std::string_view(key).substr(0, 64); }
std::string Shown(const std::optional<storage::StoredValue>& v) {
  return v ? v->version.ToString() : "none";
}

storage::DataKey KeyOf(const internode::Mutation& m) {
  return storage::DataKey{m.partition(), m.keyspace(), m.key()};
}

// The acceptor state of `key` and the key's data version, read inside the group.
struct Loaded {
  internode::PaxosState state;
  bool exists = false;  // whether a state record is stored
  std::optional<storage::StoredValue> current;
  std::string state_key;

  Version Floor() const {
    Version floor = VersionOf(state.promised());
    if (current && floor < current->version) floor = current->version;
    return floor;
  }
  Version DataVersion() const { return current ? current->version : Version{}; }
  // The greatest ballot a value committed here was chosen at (the data's version at least).
  // A pending proposal whose value the data already holds counts too: the data may have come
  // without its commit (a hint, a read repair under the value's own version), and the ballot
  // it was accepted at still outranks every other proposal below it (as in Commit).
  Version Committed() const {
    const Version base = std::max(VersionOf(state.committed()), DataVersion());
    if (!state.pending()) return base;
    const Version ballot = VersionOf(state.accepted_ballot());
    return PaxosProposalSettled(VersionOf(state.accepted().version()), ballot, DataVersion(), base)
               ? std::max(base, ballot)
               : base;
  }
  // Whether `state` holds a proposal that no commit here has settled yet.
  bool Unsettled() const {
    return state.pending() &&
           !PaxosProposalSettled(VersionOf(state.accepted().version()),
                                 VersionOf(state.accepted_ballot()), DataVersion(), Committed());
  }
};

// `with_data`: also read the key's data (commits do without here; their write folds, which
// reads it in the engine).
Result<Loaded> Load(storage::GroupView& group, const storage::DataKey& key, bool with_data = true) {
  Loaded out;
  out.state_key = storage::EncodeDataKey(key);
  auto raw = group.GetRaw(storage::Family::kPaxos, out.state_key);
  if (!raw.ok()) return raw.status();
  out.exists = raw->has_value();
  if (out.exists && !out.state.ParseFromString(**raw)) {
    return Status::Internal("corrupt Paxos state");
  }
  if (!with_data) return out;
  auto current = group.GetData(key);
  if (!current.ok()) return current.status();
  out.current = std::move(*current);
  return out;
}

}  // namespace

template <typename Response, typename Step>
asio::awaitable<Result<Response>> PaxosAcceptor::Run(Step step, base::Deadline deadline) {
  // The step fills `response` on the writer thread; the callback runs after the group's fsync.
  auto response = std::make_shared<Response>();
  storage::WriteRequest request;
  request.txn = [step = std::move(step), response](storage::GroupView& group) mutable {
    return step(group, *response);
  };
  auto start = [&](auto done) {
    engine_->Write(std::move(request),
                   [done, response](Status s, std::vector<storage::WriteOutcome>) {
                     if (s.ok()) {
                       done(std::move(*response));
                     } else {
                       done(std::move(s));
                     }
                   });
  };
  Status late = Status::Timeout("the Paxos step was not durable before the deadline", 0);
  co_return co_await base::AwaitCallbackUntil<Result<Response>>(start, std::move(late), deadline);
}

asio::awaitable<Result<internode::PaxosPrepareResponse>> PaxosAcceptor::Prepare(
    const internode::PaxosPrepareRequest& request, base::Deadline deadline) {
  const storage::DataKey key = KeyOf(request.key());
  const Version ballot = VersionOf(request.ballot());
  // A lazy prepare without a condition (a SERIAL read) never needs the promise for itself.
  std::optional<Condition> condition;
  if (request.lazy() && request.has_condition()) condition = FromProto(request.condition());
  const bool lazy = request.lazy();
  const uint64_t now_ms = request.now_ms();
  // Named, not a temporary: see the g++ 12 note in coordinator.h.
  auto step = [key, ballot, lazy, condition = std::move(condition), now_ms](
                  storage::GroupView& group, internode::PaxosPrepareResponse& out) -> Status {
    auto loaded = Load(group, key);
    if (!loaded.ok()) return loaded.status();
    const Version floor = loaded->Floor();
    const internode::PaxosState& state = loaded->state;
    // An accepted proposal whose value the data already holds (or has passed), or that a
    // committed value outranked, is settled.
    const bool unsettled = loaded->Unsettled();
    const storage::StoredValue* current = loaded->current ? &*loaded->current : nullptr;
    if (lazy && !unsettled && !(condition && ConditionHolds(*condition, current, now_ms))) {
      // Answered as a read: nothing here for the proposer to finish, and its condition fails
      // on this data, so it will most likely not write. No promise, nothing written.
      out.set_skipped(true);
      SetVersion(floor, out.mutable_floor());
    } else if (floor < ballot) {
      SetVersion(ballot, loaded->state.mutable_promised());
      group.PutRaw(storage::Family::kPaxos, loaded->state_key, loaded->state.SerializeAsString());
      out.set_promised(true);
      SetVersion(ballot, out.mutable_floor());
    } else {
      out.set_promised(false);
      SetVersion(floor, out.mutable_floor());
    }
    if (unsettled) {
      out.set_pending(true);
      *out.mutable_accepted_ballot() = state.accepted_ballot();
      *out.mutable_accepted() = state.accepted();
    }
    if (loaded->current) {
      out.set_found(true);
      ToMutation(key, *loaded->current, out.mutable_current());
    }
    SetVersion(loaded->Committed(), out.mutable_committed());
    if (spdlog::should_log(spdlog::level::debug))
      spdlog::debug(
          "paxos acceptor prepare {} b={} -> {} floor={} data={} committed={} pending={}@{}",
          Shown(key.key), ballot.ToString(),
          out.skipped() ? "skipped" : (out.promised() ? "promised" : "refused"),
          VersionOf(out.floor()).ToString(), Shown(loaded->current),
          VersionOf(out.committed()).ToString(),
          unsettled ? VersionOf(state.accepted().version()).ToString() : "none",
          unsettled ? VersionOf(state.accepted_ballot()).ToString() : "-");
    return Status::Ok();
  };
  co_return co_await Run<internode::PaxosPrepareResponse>(std::move(step), deadline);
}

asio::awaitable<Result<internode::PaxosProposeResponse>> PaxosAcceptor::Propose(
    const internode::PaxosProposeRequest& request, base::Deadline deadline) {
  const Version ballot = VersionOf(request.ballot());
  internode::Mutation mutation = request.mutation();
  // Named, not a temporary: see the g++ 12 note in coordinator.h.
  auto step = [ballot, mutation = std::move(mutation)](
                  storage::GroupView& group, internode::PaxosProposeResponse& out) -> Status {
    const storage::DataKey key = KeyOf(mutation);
    auto loaded = Load(group, key);
    if (!loaded.ok()) return loaded.status();
    const Version promised = VersionOf(loaded->state.promised());
    // Data newer than the value means a later value was chosen; the same version means
    // this value was committed here already (accepting it again is harmless).
    const bool data_newer =
        loaded->current && VersionOf(mutation.version()) < loaded->current->version;
    if (ballot < promised || data_newer) {
      out.set_accepted(false);
      SetVersion(loaded->Floor(), out.mutable_floor());
      if (spdlog::should_log(spdlog::level::debug))
        spdlog::debug("paxos acceptor propose {} {}@{} -> refused promised={} data={}",
                      Shown(key.key), VersionOf(mutation.version()).ToString(), ballot.ToString(),
                      promised.ToString(), Shown(loaded->current));
      return Status::Ok();
    }
    internode::PaxosState& state = loaded->state;
    SetVersion(ballot, state.mutable_promised());
    state.set_pending(true);
    SetVersion(ballot, state.mutable_accepted_ballot());
    *state.mutable_accepted() = mutation;
    group.PutRaw(storage::Family::kPaxos, loaded->state_key, state.SerializeAsString());
    out.set_accepted(true);
    SetVersion(ballot, out.mutable_floor());
    if (spdlog::should_log(spdlog::level::debug))
      spdlog::debug("paxos acceptor propose {} {}@{} -> accepted data={}", Shown(key.key),
                    VersionOf(mutation.version()).ToString(), ballot.ToString(),
                    Shown(loaded->current));
    return Status::Ok();
  };
  co_return co_await Run<internode::PaxosProposeResponse>(std::move(step), deadline);
}

asio::awaitable<Result<internode::PaxosCommitResponse>> PaxosAcceptor::Commit(
    const internode::PaxosCommitRequest& request, base::Deadline deadline) {
  const Version ballot = VersionOf(request.ballot());
  const std::optional<Version> next = request.has_next_ballot()
                                          ? std::optional<Version>(VersionOf(request.next_ballot()))
                                          : std::nullopt;
  internode::Mutation mutation = request.mutation();
  // Named, not a temporary: see the g++ 12 note in coordinator.h.
  auto step = [ballot, next, mutation = std::move(mutation)](
                  storage::GroupView& group,
                  internode::PaxosCommitResponse& out) mutable -> Status {
    const storage::DataKey key = KeyOf(mutation);
    auto loaded = Load(group, key, /*with_data=*/false);
    if (!loaded.ok()) return loaded.status();
    storage::WriteOp op = FromMutation(std::move(mutation));
    // The data's version after the merge is at least the value's (counting only that may keep
    // a state record that could have gone; never the other way round).
    const Version value_version = op.value.version;
    const Version data_version = value_version;
    if (spdlog::should_log(spdlog::level::debug))
      spdlog::debug("paxos acceptor commit {} {}@{} pending={}", Shown(key.key),
                    value_version.ToString(), ballot.ToString(),
                    loaded->state.pending()
                        ? VersionOf(loaded->state.accepted().version()).ToString() + "@" +
                              VersionOf(loaded->state.accepted_ballot()).ToString()
                        : std::string("none"));
    group.MergeData(op.key, std::move(op.value));
    internode::PaxosState& state = loaded->state;
    // Remembered past the data's version: a completed value keeps its first version, and the
    // ballot it was chosen at is what tells later rounds which proposals it outranked.
    Version committed = std::max(VersionOf(state.committed()), ballot);
    // The proposal accepted here is settled when it is this value or an older one, or lost to
    // it (see PaxosProposalSettled). Its ballot is kept when it is cleared: a quorum promised
    // that ballot, so every other proposal accepted below it is settled too, and this commit
    // may carry a lower ballot than the one this value was chosen at (a SERIAL read's repair
    // commits under the value's own version).
    if (state.pending()) {
      const Version accepted_ballot = VersionOf(state.accepted_ballot());
      if (PaxosProposalSettled(VersionOf(state.accepted().version()), accepted_ballot, data_version,
                               committed)) {
        committed = std::max(committed, accepted_ballot);
        state.clear_pending();
        state.clear_accepted_ballot();
        state.clear_accepted();
      }
    }
    SetVersion(committed, state.mutable_committed());
    // The commit's ballot is a promise too: a value re-proposed under a later ballot keeps
    // its older version, and a ballot between the two must still be refused here.
    Version promised = std::max(VersionOf(state.promised()), ballot);
    if (next && promised < *next && !state.pending()) {
      // Also a prepare of `next`: granted when it would answer "promised, nothing pending,
      // current = this value" (the data, which the merge just wrote, holds nothing newer).
      auto data = group.GetData(key);
      if (!data.ok()) return data.status();
      if (*data && (*data)->version == value_version) {
        SetVersion(*next, state.mutable_promised());
        group.PutRaw(storage::Family::kPaxos, loaded->state_key, state.SerializeAsString());
        out.set_next_promised(true);
        return Status::Ok();
      }
    }
    if (!state.pending() && !(data_version < promised)) {
      // Nothing pending, and the data's version alone keeps every older ballot out (and stands
      // for the committed ballot, which the promise bounds).
      if (loaded->exists) group.DeleteRaw(storage::Family::kPaxos, loaded->state_key);
    } else {
      SetVersion(promised, state.mutable_promised());
      group.PutRaw(storage::Family::kPaxos, loaded->state_key, state.SerializeAsString());
    }
    return Status::Ok();
  };
  co_return co_await Run<internode::PaxosCommitResponse>(std::move(step), deadline);
}

Result<std::optional<std::string>> PaxosAcceptor::StoredState(const storage::Engine& engine,
                                                              const storage::DataKey& key) {
  return engine.GetRaw(storage::Family::kPaxos, storage::EncodeDataKey(key));
}

std::function<Status(storage::GroupView&)> PaxosAcceptor::Absorb(
    uint32_t partition, uint32_t keyspace, std::vector<internode::PaxosRecord> records) {
  return [partition, keyspace, records = std::move(records)](storage::GroupView& group) -> Status {
    for (const internode::PaxosRecord& record : records) {
      internode::PaxosState incoming;
      if (!incoming.ParseFromString(record.state())) {
        return Status::Internal("corrupt Paxos state in a streamed chunk");
      }
      auto loaded = Load(group, storage::DataKey{partition, keyspace, record.key()},
                         /*with_data=*/false);
      if (!loaded.ok()) return loaded.status();
      internode::PaxosState merged = loaded->state;
      if (VersionOf(merged.promised()) < VersionOf(incoming.promised())) {
        *merged.mutable_promised() = incoming.promised();
      }
      if (VersionOf(merged.committed()) < VersionOf(incoming.committed())) {
        *merged.mutable_committed() = incoming.committed();
      }
      if (incoming.pending() && (!merged.pending() || VersionOf(merged.accepted_ballot()) <
                                                          VersionOf(incoming.accepted_ballot()))) {
        merged.set_pending(true);
        *merged.mutable_accepted_ballot() = incoming.accepted_ballot();
        *merged.mutable_accepted() = incoming.accepted();
      }
      group.PutRaw(storage::Family::kPaxos, loaded->state_key, merged.SerializeAsString());
    }
    return Status::Ok();
  };
}

}  // namespace cairn::replica
