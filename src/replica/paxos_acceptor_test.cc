#include "replica/paxos_acceptor.h"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "replica/internode_service.h"
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
    auto f = asio::co_spawn(io_, std::move(op), asio::use_future);
    io_.restart();
    io_.run();
    return f.get();
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
  void Commit(uint64_t ballot, internode::Mutation value) {
    internode::PaxosCommitRequest r;
    *r.mutable_ballot() = V(ballot);
    *r.mutable_mutation() = std::move(value);
    EXPECT_TRUE(Run(acceptor_->Commit(r, base::Clock::now() + 5s)).ok());
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
  // A commit of an older value settles nothing.
  Commit(10, Value(5, "older"));
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

}  // namespace
}  // namespace cairn::replica
