#include "replica/paxos_acceptor.h"

#include <future>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "replica/internode_service.h"
#include "tests/support/run_to_completion.h"
#include "tests/support/temp_dir.h"

namespace cairn::replica {
namespace {

using cairn::testing::TempDir;
using namespace std::chrono_literals;

internode::Version V(uint64_t hlc, uint32_t node = 1) {
  internode::Version v;
  v.set_hlc(hlc);
  v.set_node(node);
  return v;
}

Version VersionOf(const internode::Version& v) { return Version{v.hlc(), v.node()}; }

// A value of key "k" whose version is `version`.
internode::Mutation Value(uint64_t version, std::string value) {
  internode::Mutation m;
  storage::StoredValue v;
  v.version = Version{version, 1};
  v.value = std::move(value);
  ToMutation(storage::DataKey{0, 1, "k"}, v, &m);
  return m;
}

class PaxosAcceptorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto e = storage::Engine::Open(storage::EngineOptions{.path = dir_.Sub("db")});
    ASSERT_TRUE(e.ok());
    engine_ = std::move(*e);
    acceptor_ = std::make_unique<PaxosAcceptor>(engine_.get());
  }

  template <typename T>
  T Run(asio::awaitable<T> op) {
    return cairn::testing::RunToCompletion(io_, std::move(op));
  }

  // `lazy` with `expect_value`: an IF value = x swap's lazy prepare; lazy alone: a SERIAL read's.
  internode::PaxosPrepareResponse Prepare(uint64_t ballot, bool lazy = false,
                                          std::optional<std::string> expect_value = {}) {
    internode::PaxosPrepareRequest r;
    r.mutable_key()->set_keyspace(1);
    r.mutable_key()->set_key("k");
    *r.mutable_ballot() = V(ballot);
    r.set_lazy(lazy);
    if (expect_value) r.mutable_condition()->set_if_value(*expect_value);
    auto out = Run(acceptor_->Prepare(r, base::Clock::now() + 5s));
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? *out : internode::PaxosPrepareResponse();
  }
  bool Propose(uint64_t ballot, internode::Mutation value) {
    internode::PaxosProposeRequest r;
    *r.mutable_ballot() = V(ballot);
    *r.mutable_mutation() = std::move(value);
    auto out = Run(acceptor_->Propose(r, base::Clock::now() + 5s));
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() && out->accepted();
  }
  // Returns whether `next` (0: none asked) was promised with the commit.
  bool Commit(uint64_t ballot, internode::Mutation value, uint64_t next = 0) {
    internode::PaxosCommitRequest r;
    *r.mutable_ballot() = V(ballot);
    *r.mutable_mutation() = std::move(value);
    if (next != 0) *r.mutable_next_ballot() = V(next);
    auto out = Run(acceptor_->Commit(r, base::Clock::now() + 5s));
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() && out->next_promised();
  }
  size_t StateRecords() {
    auto list = engine_->List(storage::Family::kPaxos, "", "", 100);
    EXPECT_TRUE(list.ok());
    return list.ok() ? list->size() : 0;
  }
  std::optional<storage::StoredValue> Data() {
    auto r = engine_->Get(storage::DataKey{0, 1, "k"});
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : std::nullopt;
  }

  TempDir dir_;
  asio::io_context io_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<PaxosAcceptor> acceptor_;
};

TEST_F(PaxosAcceptorTest, PromisesOnlyIncreasingBallots) {
  EXPECT_TRUE(Prepare(10).promised());
  auto lower = Prepare(5);
  EXPECT_FALSE(lower.promised());
  EXPECT_EQ(lower.floor().hlc(), 10u);  // tells the proposer what to beat
  EXPECT_FALSE(Prepare(10).promised());
  EXPECT_TRUE(Prepare(11).promised());
}

TEST_F(PaxosAcceptorTest, PromiseIsDurable) {
  EXPECT_TRUE(Prepare(10).promised());
  acceptor_.reset();
  engine_.reset();
  auto e = storage::Engine::Open(storage::EngineOptions{.path = dir_.Sub("db")});
  ASSERT_TRUE(e.ok());
  engine_ = std::move(*e);
  acceptor_ = std::make_unique<PaxosAcceptor>(engine_.get());
  EXPECT_FALSE(Prepare(9).promised());
  EXPECT_FALSE(Propose(9, Value(9, "late")));
}

TEST_F(PaxosAcceptorTest, RefusesProposalsBelowItsPromise) {
  EXPECT_TRUE(Prepare(10).promised());
  EXPECT_FALSE(Propose(9, Value(9, "old")));
  EXPECT_TRUE(Propose(10, Value(10, "a")));
  // A later prepare learns the accepted value with its ballot.
  auto next = Prepare(12);
  EXPECT_TRUE(next.promised());
  ASSERT_TRUE(next.pending());
  EXPECT_EQ(next.accepted_ballot().hlc(), 10u);
  EXPECT_EQ(next.accepted().value(), "a");
  EXPECT_FALSE(next.found());
}

TEST_F(PaxosAcceptorTest, PrepareReadsTheCurrentValue) {
  EXPECT_TRUE(Prepare(10).promised());
  EXPECT_TRUE(Propose(10, Value(10, "a")));
  Commit(10, Value(10, "a"));
  auto next = Prepare(20);
  EXPECT_TRUE(next.promised());
  EXPECT_FALSE(next.pending());  // settled by the commit
  ASSERT_TRUE(next.found());
  EXPECT_EQ(next.current().value(), "a");
  EXPECT_EQ(next.current().version().hlc(), 10u);
}

TEST_F(PaxosAcceptorTest, CommitCleansUpTheState) {
  EXPECT_TRUE(Prepare(10).promised());
  EXPECT_TRUE(Propose(10, Value(10, "a")));
  EXPECT_EQ(StateRecords(), 1u);
  Commit(10, Value(10, "a"));
  EXPECT_EQ(StateRecords(), 0u);
  ASSERT_TRUE(Data().has_value());
  EXPECT_EQ(Data()->value, "a");
  // The data's version now refuses every older ballot by itself.
  EXPECT_FALSE(Prepare(10).promised());
  EXPECT_FALSE(Propose(7, Value(7, "older")));
}

TEST_F(PaxosAcceptorTest, CommitOfAReproposedValueKeepsTheLaterBallotPromised) {
  // A value first proposed at 10 is re-proposed (by another proposer) and committed at 20: its
  // version stays 10. A proposer holding ballot 15 must still be refused here.
  EXPECT_TRUE(Prepare(20).promised());
  EXPECT_TRUE(Propose(20, Value(10, "w")));
  Commit(20, Value(10, "w"));
  EXPECT_EQ(Data()->version.hlc, 10u);
  EXPECT_FALSE(Prepare(15).promised());
  EXPECT_FALSE(Propose(15, Value(15, "y")));
  EXPECT_TRUE(Prepare(21).promised());
}

TEST_F(PaxosAcceptorTest, RefusesValuesOlderThanTheData) {
  EXPECT_TRUE(Prepare(30).promised());
  EXPECT_TRUE(Propose(30, Value(30, "new")));
  Commit(30, Value(30, "new"));
  // A re-proposal of a value older than what is committed is refused even at a higher ballot.
  EXPECT_TRUE(Prepare(40).promised());
  EXPECT_FALSE(Propose(40, Value(12, "stale")));
  // The committed value itself may be accepted again (harmless).
  EXPECT_TRUE(Propose(40, Value(30, "new")));
}

TEST_F(PaxosAcceptorTest, PendingIsKeptUntilItsValueIsCommitted) {
  EXPECT_TRUE(Prepare(10).promised());
  EXPECT_TRUE(Propose(10, Value(10, "a")));
  // A late commit of an older value, chosen at a lower ballot, settles nothing. (A value
  // chosen at 10 would be "a": one ballot, one value.)
  Commit(5, Value(5, "older"));
  auto next = Prepare(11);
  ASSERT_TRUE(next.pending());
  EXPECT_EQ(next.accepted().value(), "a");
  Commit(11, Value(10, "a"));
  EXPECT_FALSE(Prepare(12).pending());
}

TEST_F(PaxosAcceptorTest, LazyPrepareReadsWithoutPromisingWhenItWillNotWrite) {
  EXPECT_TRUE(Prepare(10).promised());
  EXPECT_TRUE(Propose(10, Value(10, "a")));
  Commit(10, Value(10, "a"));
  // A swap whose condition fails here, and a SERIAL read: answered as reads, nothing promised.
  auto stale = Prepare(20, /*lazy=*/true, "b");
  EXPECT_TRUE(stale.skipped());
  EXPECT_FALSE(stale.promised());
  ASSERT_TRUE(stale.found());
  EXPECT_EQ(stale.current().value(), "a");
  EXPECT_TRUE(Prepare(30, /*lazy=*/true).skipped());
  EXPECT_EQ(StateRecords(), 0u);  // nothing written
  // A lower ballot than those is still promised: they took nothing.
  EXPECT_TRUE(Prepare(15).promised());
  // A swap whose condition holds here promises as usual.
  auto fresh = Prepare(16, /*lazy=*/true, "a");
  EXPECT_TRUE(fresh.promised());
  EXPECT_FALSE(fresh.skipped());
}

TEST_F(PaxosAcceptorTest, LazyPrepareStillPromisesWhenSomethingIsUnfinished) {
  EXPECT_TRUE(Prepare(10).promised());
  EXPECT_TRUE(Propose(10, Value(10, "a")));  // accepted, never committed
  auto read = Prepare(20, /*lazy=*/true);
  EXPECT_FALSE(read.skipped());
  EXPECT_TRUE(read.promised());  // the reader will have to finish it, which needs the promise
  EXPECT_TRUE(read.pending());
}

// A commit that also promises the next ballot is that ballot's prepare: it holds off every
// lower ballot, lets the promised one propose without a prepare, and is kept durably.
TEST_F(PaxosAcceptorTest, CommitPromisesTheNextBallotWhenAPrepareWould) {
  ASSERT_TRUE(Prepare(10).promised());
  ASSERT_TRUE(Propose(10, Value(10, "a")));
  EXPECT_TRUE(Commit(10, Value(10, "a"), /*next=*/20));
  EXPECT_EQ(StateRecords(), 1u);  // the promise is kept, not deleted with the settled proposal
  auto between = Prepare(15);
  EXPECT_FALSE(between.promised());
  EXPECT_EQ(between.floor().hlc(), 20u);
  EXPECT_FALSE(Propose(15, Value(15, "x")));
  EXPECT_TRUE(Propose(20, Value(20, "b")));  // no prepare needed
  EXPECT_FALSE(Commit(20, Value(20, "b")));  // no next asked for
  EXPECT_EQ(Data()->value, "b");
  EXPECT_EQ(StateRecords(), 0u);
}

TEST_F(PaxosAcceptorTest, CommitPromisesNoNextBallotWhenAPrepareWouldSaySomethingElse) {
  // The data already holds a newer version than the value committed: that is what a prepare
  // would report as current, not the committed value.
  Commit(30, Value(30, "newer"));
  EXPECT_FALSE(Commit(10, Value(10, "older"), /*next=*/40));
  EXPECT_TRUE(Prepare(35).promised());  // nothing promised beyond what the data says

  // Something accepted under a newer version stays pending after the commit.
  ASSERT_TRUE(Prepare(50).promised());
  ASSERT_TRUE(Propose(50, Value(50, "pending")));
  EXPECT_FALSE(Commit(45, Value(45, "settles nothing"), /*next=*/60));
  auto prepare = Prepare(61);
  EXPECT_TRUE(prepare.promised());
  EXPECT_TRUE(prepare.pending());

  // A next ballot not above the promise already given (here the commit's own) is refused.
  EXPECT_FALSE(Commit(61, Value(61, "c"), /*next=*/61));
  ASSERT_TRUE(Prepare(70).promised());
  EXPECT_FALSE(Commit(62, Value(62, "d"), /*next=*/65));
  EXPECT_FALSE(Prepare(69).promised());  // the promise of 70 still stands
}

// One acceptor on its own engine, driven step by step.
struct AcceptorNode {
  TempDir dir;
  asio::io_context io;
  std::unique_ptr<storage::Engine> engine;
  std::unique_ptr<PaxosAcceptor> acceptor;
  AcceptorNode() {
    auto e = storage::Engine::Open(storage::EngineOptions{.path = dir.Sub("db")});
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    if (!e.ok()) return;
    engine = std::move(*e);
    acceptor = std::make_unique<PaxosAcceptor>(engine.get());
  }
  // The value arrives as a plain replica write, as a hint or a read repair delivers it.
  void WriteData(const internode::Mutation& m) {
    storage::WriteRequest request;
    request.ops.push_back(FromMutation(internode::Mutation(m)));
    std::promise<Status> done;
    auto written = done.get_future();
    engine->Write(std::move(request), [&done](Status s, std::vector<storage::WriteOutcome>) {
      done.set_value(std::move(s));
    });
    EXPECT_TRUE(written.get().ok());
  }
  template <typename T>
  T Run(asio::awaitable<T> op) {
    return cairn::testing::RunToCompletion(io, std::move(op));
  }
  internode::PaxosPrepareResponse Prepare(uint64_t ballot) {
    internode::PaxosPrepareRequest r;
    r.mutable_key()->set_keyspace(1);
    r.mutable_key()->set_key("k");
    *r.mutable_ballot() = V(ballot);
    auto out = Run(acceptor->Prepare(r, base::Clock::now() + 5s));
    EXPECT_TRUE(out.ok());
    return out.ok() ? *out : internode::PaxosPrepareResponse();
  }
  bool Propose(uint64_t ballot, const internode::Mutation& m) {
    internode::PaxosProposeRequest r;
    *r.mutable_ballot() = V(ballot);
    *r.mutable_mutation() = m;
    auto out = Run(acceptor->Propose(r, base::Clock::now() + 5s));
    return out.ok() && out->accepted();
  }
  void Commit(uint64_t ballot, const internode::Mutation& m) {
    internode::PaxosCommitRequest r;
    *r.mutable_ballot() = V(ballot);
    *r.mutable_mutation() = m;
    EXPECT_TRUE(Run(acceptor->Commit(r, base::Clock::now() + 5s)).ok());
  }
};

// The start of the histories below: X accepted by B alone at 265, Y by A alone at 267.
void AcceptXOnBAndYOnA(AcceptorNode& a, AcceptorNode& b, const internode::Mutation& x,
                       const internode::Mutation& y) {
  ASSERT_TRUE(b.Prepare(265).promised());
  ASSERT_TRUE(a.Prepare(267).promised());
  ASSERT_TRUE(b.Propose(265, x));
  ASSERT_TRUE(a.Propose(267, y));
}

// The history the fault workload found (seed 8519547383775478707), step by step on three
// acceptors. X is accepted by B alone at 265, Y by A alone at 267; a round at 871 finds only X
// (from B) and completes it: X is chosen at 871, so Y can never be. X keeps its first version
// (265 < 267), so a later round that meets Y pending on A (X's commit not there yet) must learn
// from B the ballot X was committed at, or it would choose Y after X.
TEST(PaxosReproposalTest, ACompletedValueSupersedesEveryProposalItsRoundOutranked) {
  AcceptorNode a, b, c;
  const internode::Mutation x = Value(265, "X"), y = Value(267, "Y");
  ASSERT_NO_FATAL_FAILURE(AcceptXOnBAndYOnA(a, b, x, y));
  // The round at 871 hears from B and C: X pending on B, nothing on C. It completes X.
  auto from_b = b.Prepare(871);
  ASSERT_TRUE(from_b.promised() && from_b.pending());
  ASSERT_TRUE(c.Prepare(871).promised());
  const internode::Mutation completed = from_b.accepted();
  ASSERT_TRUE(b.Propose(871, completed));
  ASSERT_TRUE(c.Propose(871, completed));  // chosen
  b.Commit(871, completed);
  c.Commit(871, completed);
  // A round at 952 hears from A and B: Y still pending on A.
  auto from_a = a.Prepare(952);
  auto from_b2 = b.Prepare(952);
  ASSERT_TRUE(from_a.pending());
  ASSERT_TRUE(from_b2.found());
  EXPECT_EQ(from_b2.current().value(), "X");
  EXPECT_EQ(VersionOf(from_b2.current().version()).hlc, 265u) << "a completion keeps its version";
  EXPECT_EQ(VersionOf(from_b2.committed()).hlc, 871u);
  EXPECT_FALSE(from_b2.pending());
  EXPECT_TRUE(PaxosProposalSettled(
      VersionOf(from_a.accepted().version()), VersionOf(from_a.accepted_ballot()),
      VersionOf(from_b2.current().version()), VersionOf(from_b2.committed())))
      << "B's commit at 871 must show Y (pending on A at 267) outranked";
  // X's commit reaching A settles Y there too, although Y's version is the newer one.
  a.Commit(871, completed);
  auto from_a2 = a.Prepare(990);
  EXPECT_FALSE(from_a2.pending());
  EXPECT_EQ(from_a2.current().value(), "X");
  EXPECT_EQ(VersionOf(from_a2.committed()).hlc, 871u);
}

// The same history, but X's commit at 871 reaches B only, and C, which accepted X at 871,
// gets X's data another way: a SERIAL read's repair, committed under X's own version (265), or a
// plain write (a hint, a read repair). C must still report 871, or a round that hears A (Y
// pending at 267) and C alone chooses Y after X (found in review).
class PaxosDataWithoutItsCommitTest : public ::testing::TestWithParam<bool> {};

TEST_P(PaxosDataWithoutItsCommitTest, KeepsTheBallotTheValueWasAcceptedAt) {
  const bool repair_commit = GetParam();
  AcceptorNode a, b, c;
  const internode::Mutation x = Value(265, "X"), y = Value(267, "Y");
  ASSERT_NO_FATAL_FAILURE(AcceptXOnBAndYOnA(a, b, x, y));
  ASSERT_TRUE(b.Prepare(871).pending());
  ASSERT_TRUE(c.Prepare(871).promised());
  ASSERT_TRUE(b.Propose(871, x));
  ASSERT_TRUE(c.Propose(871, x));  // chosen at 871
  b.Commit(871, x);                // the commit reaches B only
  if (repair_commit) {
    c.Commit(265, x);  // SerialRead's repair: X under its own version
  } else {
    c.WriteData(x);  // a hint
  }
  auto from_a = a.Prepare(952), from_c = c.Prepare(952);
  ASSERT_TRUE(from_a.pending());
  EXPECT_FALSE(from_c.pending()) << "X is in C's data";
  EXPECT_EQ(VersionOf(from_c.committed()).hlc, 871u);
  const Version data =
      std::max(VersionOf(from_a.current().version()), VersionOf(from_c.current().version()));
  const Version committed = std::max(VersionOf(from_a.committed()), VersionOf(from_c.committed()));
  EXPECT_TRUE(PaxosProposalSettled(VersionOf(from_a.accepted().version()),
                                   VersionOf(from_a.accepted_ballot()), data, committed))
      << "Y (pending on A at 267) would be chosen after X";
}

INSTANTIATE_TEST_SUITE_P(RepairCommitOrPlainWrite, PaxosDataWithoutItsCommitTest,
                         ::testing::Bool());

TEST(PaxosProposalSettledTest, ByTheDataOrByAnOutrankingCommit) {
  const Version v10{10, 1}, v20{20, 1}, v30{30, 1}, none{};
  // Nothing committed: unsettled.
  EXPECT_FALSE(PaxosProposalSettled(v10, v10, none, none));
  // Its value (or a newer one) is in the data.
  EXPECT_TRUE(PaxosProposalSettled(v10, v20, v10, v10));
  EXPECT_TRUE(PaxosProposalSettled(v10, v20, v30, v30));
  // An older value in the data, committed at a ballot below this proposal's: unsettled.
  EXPECT_FALSE(PaxosProposalSettled(v20, v20, v10, v10));
  EXPECT_FALSE(PaxosProposalSettled(v20, v30, v10, v20)) << "completed at 30, above 20";
  // An older value in the data, but chosen at a ballot at least as high: outranked.
  EXPECT_TRUE(PaxosProposalSettled(v20, v20, v10, v30));
  EXPECT_TRUE(PaxosProposalSettled(v20, v30, v10, v30)) << "the same ballot: the same value";
}

// A streamed range's acceptor records merge into what this replica has: the higher promise and
// the proposal accepted at the higher ballot win, so a value chosen (or about to be) on the old
// replicas is seen by the next prepare here, and a stale record never lowers a promise.
TEST_F(PaxosAcceptorTest, AbsorbedRecordsKeepTheHigherPromiseAndAcceptedProposal) {
  ASSERT_TRUE(Prepare(10).promised());
  auto absorb = [&](const internode::PaxosState& state) {
    internode::PaxosRecord record;
    record.set_key("k");
    record.set_state(state.SerializeAsString());
    storage::WriteRequest request;
    request.txn = PaxosAcceptor::Absorb(0, 1, {record});
    std::promise<Status> done;
    engine_->Write(std::move(request),
                   [&done](Status s, std::vector<storage::WriteOutcome>) { done.set_value(s); });
    return done.get_future().get();
  };
  internode::PaxosState streamed;
  *streamed.mutable_promised() = V(20);
  streamed.set_pending(true);
  *streamed.mutable_accepted_ballot() = V(15);
  *streamed.mutable_accepted() = Value(15, "chosen elsewhere");
  ASSERT_TRUE(absorb(streamed).ok());
  EXPECT_FALSE(Prepare(12).promised());  // the streamed promise (20) outranks ours (10)

  internode::PaxosState stale;
  *stale.mutable_promised() = V(5);
  ASSERT_TRUE(absorb(stale).ok());
  EXPECT_FALSE(Prepare(18).promised());  // a stale record does not lower the promise

  auto next = Prepare(30);
  ASSERT_TRUE(next.promised());
  ASSERT_TRUE(next.pending());
  EXPECT_EQ(VersionOf(next.accepted_ballot()), (Version{15, 1}));
  EXPECT_EQ(next.accepted().value(), "chosen elsewhere");
}

}  // namespace
}  // namespace cairn::replica
