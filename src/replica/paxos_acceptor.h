// The acceptor side of per-key Paxos. Each step is one atomic read-modify-write of the key's
// acceptor state (and, for commits, its data) on the storage engine's writer thread, durable
// (fsynced with its group) before it is answered.
#pragma once

#include <functional>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "base/async.h"
#include "cairn/status.h"
#include "cairn/types.h"
#include "proto/internode.pb.h"
#include "storage/engine.h"

namespace cairn::replica {

namespace asio = boost::asio;

// Whether a proposal accepted at `accepted_ballot` with version `accepted_version` is settled,
// given a replica's data version and the greatest ballot a value committed there was chosen at:
// either its value is in the data (or was overwritten), or a value chosen at a ballot at least
// as high outranked it. A later key's proposals all carry ballots above the last chosen one
// (a quorum promised it), so an outranked proposal is this value or one that lost to it.
// Completing a value keeps its first version, so only the ballot tells the second case.
// Used by the acceptor (what it reports and clears) and the proposer (what it finishes).
inline bool PaxosProposalSettled(const Version& accepted_version, const Version& accepted_ballot,
                                 const Version& data_version, const Version& committed_ballot) {
  return !(data_version < accepted_version) || !(committed_ballot < accepted_ballot);
}

// Thread safety: any reactor; the engine's writer thread serialises the steps.
class PaxosAcceptor {
 public:
  explicit PaxosAcceptor(storage::Engine* engine) : engine_(engine) {}

  // Promises never to accept a ballot below `ballot` if it exceeds everything seen for the key
  // (its promise and its data's version); answers with any accepted-but-uncommitted proposal and
  // the key's current value either way.
  asio::awaitable<Result<internode::PaxosPrepareResponse>> Prepare(
      const internode::PaxosPrepareRequest& request, base::Deadline deadline);

  // Accepts the proposal unless a higher ballot was promised or the data is already newer.
  asio::awaitable<Result<internode::PaxosProposeResponse>> Propose(
      const internode::PaxosProposeRequest& request, base::Deadline deadline);

  // Applies a chosen value to the data and clears what it settles; the acceptor state is deleted
  // when nothing remains pending. With a `next_ballot`, also promises it when a prepare of it
  // would now answer "nothing pending, current = this value" (then the state keeps the promise).
  asio::awaitable<Result<internode::PaxosCommitResponse>> Commit(
      const internode::PaxosCommitRequest& request, base::Deadline deadline);

  // The transaction that takes in acceptor states copied from other replicas of the same keys
  // (a partition streamed to this node), each merged into what is here: the higher promise, the
  // higher committed ballot, and the pending proposal accepted at the higher ballot. Merging only
  // adds what some acceptor of the key already said, so every guarantee the copied states gave
  // still holds, and a proposal a quorum accepted stays visible to the next prepare here. Run it
  // as a WriteRequest's txn (with the chunk's data, atomically).
  // The acceptor record of one key as stored (a serialized PaxosState), or nullopt: for copies
  // of it (repair's pulls) and for checks outside a group commit (a purge skips pending keys).
  static Result<std::optional<std::string>> StoredState(const storage::Engine& engine,
                                                        const storage::DataKey& key);

  static std::function<Status(storage::GroupView&)> Absorb(
      uint32_t partition, uint32_t keyspace, std::vector<internode::PaxosRecord> records);

 private:
  template <typename Response, typename Step>
  asio::awaitable<Result<Response>> Run(Step step, base::Deadline deadline);

  storage::Engine* const engine_;
};

}  // namespace cairn::replica
