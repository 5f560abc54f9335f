// Hand-made histories with a known verdict, including the traps a naive checker falls into, and
// generated histories (from a simulated register with a known linearization) for scale.
#include "tests/linearizability/linearizability.h"

#include <chrono>
#include <iostream>
#include <queue>
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace cairn::checkers {
namespace {

const Value kAbsent = std::nullopt;

Op Read(uint64_t client, int64_t call, int64_t ret, Value returned, std::string key = "k") {
  return Op{.client = client,
            .key = std::move(key),
            .kind = OpKind::kRead,
            .value = std::move(returned),
            .call = call,
            .ret = ret};
}
Op Write(uint64_t client, int64_t call, int64_t ret, Value written, std::string key = "k") {
  return Op{.client = client,
            .key = std::move(key),
            .kind = OpKind::kWrite,
            .value = std::move(written),
            .call = call,
            .ret = ret};
}
Op Cas(uint64_t client, int64_t call, int64_t ret, Value expected, Value written, bool applied,
       std::string key = "k") {
  return Op{.client = client,
            .key = std::move(key),
            .kind = OpKind::kCas,
            .value = std::move(written),
            .expected = std::move(expected),
            .applied = applied,
            .call = call,
            .ret = ret};
}
// `op` with no answer: it may take effect at any time after its call, or never.
Op Unknown(Op op) {
  op.outcome = Outcome::kUnknown;
  op.ret = op.call;
  op.applied = false;
  if (op.kind == OpKind::kRead) op.value = kAbsent;
  return op;
}

Verdict Check(std::vector<Op> ops) { return CheckLinearizable(History{std::move(ops)}).verdict; }

constexpr Verdict kOk = Verdict::kLinearizable;
constexpr Verdict kBad = Verdict::kNotLinearizable;

TEST(Linearizability, EmptyHistoryIsLinearizable) { EXPECT_EQ(Check({}), kOk); }

TEST(Linearizability, ARegisterStartsAbsent) {
  EXPECT_EQ(Check({Read(1, 0, 10, kAbsent)}), kOk);
  EXPECT_EQ(Check({Read(1, 0, 10, "a")}), kBad);
}

TEST(Linearizability, SequentialWritesReadsAndDeletes) {
  EXPECT_EQ(
      Check({Write(1, 0, 10, "a"), Read(2, 20, 30, "a"), Write(1, 40, 50, kAbsent),
             Read(2, 60, 70, kAbsent), Cas(3, 80, 90, kAbsent, "b", true), Read(1, 100, 110, "b")}),
      kOk);
}

TEST(Linearizability, ConcurrentWritesMayBeSeenInEitherOrder) {
  // Both writes overlap; once both are done the winner is fixed, but either may win.
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), Write(2, 0, 10, "b"), Read(3, 20, 30, "a")}), kOk);
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), Write(2, 0, 10, "b"), Read(3, 20, 30, "b")}), kOk);
  // While they run, a reader may even see "b" and then "a": b at 4, first read at 5, a at 9.
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), Write(2, 0, 10, "b"), Read(3, 5, 15, "b"),
                   Read(3, 16, 25, "a")}),
            kOk);
  // But after both are done, the value no longer changes.
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), Write(2, 0, 10, "b"), Read(3, 20, 30, "a"),
                   Read(3, 40, 50, "b")}),
            kBad);
}

TEST(Linearizability, ReadOfAValueWrittenOnlyLaterIsIllegal) {
  EXPECT_EQ(Check({Read(1, 0, 10, "a"), Write(2, 20, 30, "a")}), kBad);
  // Overlapping is enough to make it legal.
  EXPECT_EQ(Check({Read(1, 0, 25, "a"), Write(2, 20, 30, "a")}), kOk);
}

TEST(Linearizability, StaleReadAfterACompletedWriteIsIllegal) {
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), Write(1, 20, 30, "b"), Read(2, 40, 50, "a")}), kBad);
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), Write(1, 20, 30, kAbsent), Read(2, 40, 50, "a")}), kBad);
}

TEST(Linearizability, IntervalsThatTouchAreConcurrent) {
  // The write returns at 10 and the read is called at 10: either may come first.
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), Read(2, 10, 20, kAbsent)}), kOk);
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), Read(2, 11, 20, kAbsent)}), kBad);
}

TEST(Linearizability, CasNotAppliedAlthoughTheValueMatchedThroughoutIsIllegal) {
  // "a" is the value from 10 on, so the CAS at [20, 30] must have applied.
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), Cas(2, 20, 30, "a", "b", false), Read(3, 40, 50, "a")}),
            kBad);
  // A concurrent write that changes the value explains the failure...
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), Write(4, 15, 35, "c"), Cas(2, 20, 30, "a", "b", false),
                   Read(3, 40, 50, "c")}),
            kOk);
  // ...but a concurrent write of the same value does not.
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), Write(4, 15, 35, "a"), Cas(2, 20, 30, "a", "b", false),
                   Read(3, 40, 50, "a")}),
            kBad);
}

TEST(Linearizability, CasAppliedOnlyIfTheValueMatched) {
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), Cas(2, 20, 30, "x", "b", true)}), kBad);
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), Cas(2, 20, 30, "a", "b", true), Read(3, 40, 50, "b")}),
            kOk);
  // IF NOT EXISTS: expected absent.
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), Cas(2, 20, 30, kAbsent, "b", true)}), kBad);
  EXPECT_EQ(Check({Cas(2, 20, 30, kAbsent, "b", true), Cas(3, 40, 50, kAbsent, "c", false)}), kOk);
}

TEST(Linearizability, CasNotAppliedMustReportTheCurrentValue) {
  Op reported_a = Cas(2, 20, 30, "b", "c", false);
  reported_a.current = Value("a");
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), reported_a}), kOk);
  Op reported_z = Cas(2, 20, 30, "b", "c", false);
  reported_z.current = Value("z");
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), reported_z}), kBad);
  Op reported_absent = Cas(2, 20, 30, "b", "c", false);
  reported_absent.current = kAbsent;
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), reported_absent}), kBad);
  EXPECT_EQ(Check({reported_absent}), kOk);
}

TEST(Linearizability, UnknownWriteMayTakeEffectLongAfterLaterCompletedOps) {
  // The write of "x" timed out at 20; "b" was written and read after that, and only then does
  // "x" show up. It took effect late (a hint replayed, a slow replica), which is allowed.
  std::vector<Op> ops = {Write(1, 0, 10, "a"),     Unknown(Write(2, 20, 0, "x")),
                         Write(1, 30, 40, "b"),    Read(3, 50, 60, "b"),
                         Read(3, 1000, 1010, "x"), Read(1, 1020, 1030, "x")};
  EXPECT_EQ(Check(ops), kOk);
  // It takes effect at most once: "b" cannot come back.
  ops.push_back(Read(3, 1040, 1050, "b"));
  EXPECT_EQ(Check(ops), kBad);
}

TEST(Linearizability, UnknownWriteMayNeverTakeEffect) {
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), Unknown(Write(2, 20, 0, "x")), Read(3, 30, 40, "a"),
                   Read(3, 5000, 5010, "a")}),
            kOk);
  // But never before its call.
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), Read(3, 11, 15, "x"), Unknown(Write(2, 20, 0, "x"))}),
            kBad);
}

TEST(Linearizability, UnknownCasPlacedBetweenTwoReads) {
  // The CAS timed out; the reads show that it applied, between them: the only legal order.
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), Read(2, 20, 30, "a"),
                   Unknown(Cas(3, 25, 0, "a", "b", false)), Read(2, 40, 50, "b")}),
            kOk);
  // A CAS whose condition never held cannot explain the change.
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), Read(2, 20, 30, "a"),
                   Unknown(Cas(3, 25, 0, "z", "b", false)), Read(2, 40, 50, "b")}),
            kBad);
  // It takes effect at most once: it cannot explain "b" both before and after "a" is written
  // back.
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), Unknown(Cas(3, 5, 0, "a", "b", false)),
                   Read(2, 20, 30, "b"), Write(1, 35, 38, "a"), Read(2, 40, 50, "b")}),
            kBad);
}

TEST(Linearizability, UnknownReadsAndFailedOpsConstrainNothing) {
  Op failed = Write(2, 20, 30, "zzz");
  failed.outcome = Outcome::kFailed;
  EXPECT_EQ(
      Check({Write(1, 0, 10, "a"), Unknown(Read(3, 12, 0, kAbsent)), failed, Read(1, 40, 50, "a")}),
      kOk);
}

// Counter increments by compare-and-set, values "0", "1", ...
TEST(Linearizability, CounterIncrementsByCas) {
  std::vector<Op> ops = {
      Write(1, 0, 5, "0"),
      Cas(1, 10, 20, "0", "1", true),
      Cas(2, 12, 22, "0", "1", false),  // lost the race with client 1
      Read(2, 25, 30, "1"),
      Cas(2, 31, 40, "1", "2", true),
      Cas(3, 32, 42, "1", "2", false),
      Read(3, 44, 46, "2"),
      Cas(3, 47, 49, "2", "3", true),
      Read(1, 50, 60, "3"),
  };
  EXPECT_EQ(Check(ops), kOk);

  // One increment lost: client 2's applied CAS to "2" is followed by a read of "1".
  std::vector<Op> lost = ops;
  lost[6] = Read(3, 44, 46, "1");
  lost[7] = Cas(3, 47, 49, "1", "2", true);
  lost[8] = Read(1, 50, 60, "2");
  EXPECT_EQ(Check(lost), kBad);

  // Two clients both told that their increment from "0" applied: one of them was lost.
  std::vector<Op> both = {Write(1, 0, 5, "0"), Cas(1, 10, 20, "0", "1", true),
                          Cas(2, 12, 22, "0", "1", true), Read(3, 30, 40, "1")};
  EXPECT_EQ(Check(both), kBad);
}

// Naive checker trap 1: a checker that compares each read with the last write completed before
// the read was called. Here the last completed write is "a", yet "b" is right: the write of "b"
// was running and may take effect before the read. A naive checker rejects a legal history.
TEST(Linearizability, NaiveTrapReadOfAWriteStillRunning) {
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), Write(2, 5, 30, "b"), Read(3, 15, 20, "b")}), kOk);
}

// Naive checker trap 2: the same naive checker accepts the second read below ("a" is the last
// write completed before it, and the one running may not have taken effect), but the first read
// already saw "b", so "b" took effect before 30 and "a" can no longer be read at 40. A naive
// checker accepts an illegal history.
TEST(Linearizability, NaiveTrapReadGoesBackInTime) {
  EXPECT_EQ(Check({Write(1, 0, 10, "a"), Write(2, 15, 100, "b"), Read(3, 20, 30, "b"),
                   Read(3, 40, 50, "a")}),
            kBad);
}

// Naive checker trap 3: a checker that orders ops by call time. The write of "a" is called
// first, but it runs long and may take effect after the write of "b": reading "a" is legal.
// Ordering by call time puts "b" last and rejects a legal history.
TEST(Linearizability, NaiveTrapLongWriteCalledFirstTakesEffectLast) {
  EXPECT_EQ(Check({Write(1, 0, 100, "a"), Write(2, 10, 20, "b"), Read(3, 30, 40, "a")}), kOk);
}

// Naive checker trap 4: a greedy checker that linearizes each op at the first legal moment and
// never backtracks. Both reads overlap both writes; placing the write of "a" first (call order)
// satisfies the first read, but then the second read ("a" after "b") cannot be satisfied. Only
// the order b, read b, a, read a works, which needs backtracking.
TEST(Linearizability, NaiveTrapGreedyOrderNeedsBacktracking) {
  EXPECT_EQ(Check({Write(1, 0, 100, "a"), Write(2, 1, 100, "b"), Read(3, 2, 50, "b"),
                   Read(3, 51, 101, "a")}),
            kOk);
}

TEST(Linearizability, KeysAreIndependent) {
  // As one register this would be illegal; as two it is fine.
  EXPECT_EQ(Check({Write(1, 0, 10, "a", "x"), Write(1, 20, 30, "b", "y"), Read(2, 40, 50, "a", "x"),
                   Read(2, 60, 70, "b", "y")}),
            kOk);
}

TEST(Linearizability, ReportsEveryFailingKeyAndExplainsTheFirst) {
  History h{{Write(1, 0, 10, "a", "good"), Read(2, 20, 30, "a", "good"),
             Write(1, 0, 10, "a", "stale"), Write(1, 20, 30, "b", "stale"),
             Read(2, 40, 50, "a", "stale"), Read(2, 40, 50, "ghost", "phantom")}};
  const CheckResult r = CheckLinearizable(h);
  EXPECT_EQ(r.verdict, kBad);
  EXPECT_EQ(r.key, "phantom");  // byte order: "phantom" < "stale"
  EXPECT_EQ(r.failed_keys, (std::vector<std::string>{"phantom", "stale"}));
  EXPECT_EQ(r.keys_checked, 3u);
  EXPECT_EQ(r.involved, (std::vector<size_t>{5}));
  EXPECT_NE(r.explanation.find("#5 client 2 read -> \"ghost\""), std::string::npos)
      << r.explanation;
  EXPECT_NE(r.explanation.find("the register holds absent"), std::string::npos) << r.explanation;
}

TEST(Linearizability, ExplanationNamesTheStaleReadAndTheWriteItMissed) {
  History h{
      {Write(1, 0, 10, "a"), Write(1, 20, 30, "b"), Read(2, 40, 50, "a"), Read(2, 60, 70, "b")}};
  const CheckResult r = CheckLinearizable(h);
  ASSERT_EQ(r.verdict, kBad);
  // The shortest failing prefix ends with the stale read; the last read plays no part.
  EXPECT_EQ(r.involved, (std::vector<size_t>{0, 1, 2})) << r.explanation;
  EXPECT_NE(
      r.explanation.find("up to t=50, when this op returns:\n  #2 client 2 read -> \"a\" [40, 50]"),
      std::string::npos)
      << r.explanation;
  EXPECT_NE(r.explanation.find("#2 client 2 read -> \"a\" [40, 50]: the register holds \"b\""),
            std::string::npos)
      << r.explanation;
  EXPECT_EQ(r.explanation.find("#3"), std::string::npos) << r.explanation;
}

TEST(Linearizability, InvalidHistoryIsReported) {
  const CheckResult r = CheckLinearizable(History{{Read(1, 10, 5, kAbsent)}});
  EXPECT_EQ(r.verdict, Verdict::kInvalidHistory);
  EXPECT_NE(r.explanation.find("#0"), std::string::npos);
}

TEST(Linearizability, GivesUpWithinTheBudgetOnAHardIllegalHistory) {
  // 24 concurrent writes, each value seen by a concurrent read, then two reads that see the
  // value change after all of them ended: illegal, but only after trying the orders of the
  // writes, which the memo cannot shrink below 2^24 configurations.
  std::vector<Op> ops;
  for (int i = 0; i < 24; ++i) {
    ops.push_back(Write(i, 0, 100, fmt::format("v{}", i)));
    ops.push_back(Read(100 + i, 0, 100, fmt::format("v{}", i)));
  }
  ops.push_back(Read(99, 200, 210, "v1"));
  ops.push_back(Read(99, 220, 230, "v2"));
  const CheckResult r = CheckLinearizable(History{ops}, CheckOptions{.max_steps_per_key = 100'000});
  EXPECT_EQ(r.verdict, Verdict::kGaveUp);
  EXPECT_EQ(r.key, "k");
  EXPECT_EQ(r.undecided_keys, (std::vector<std::string>{"k"}));
  EXPECT_EQ(r.steps, 100'001u);
}

// A simulated register: clients issue ops, each takes effect at a random instant inside its
// interval (or, for a timed-out write, at some instant after its call or never), so the recorded
// history is linearizable by construction.
struct Simulation {
  int clients = 8;
  int ops = 2000;
  double unknown_rate = 0.0;   // share of writes and CASes that time out
  bool counter = false;        // clients increment a counter by read + CAS instead
  bool report_current = true;  // a CAS that did not apply reports the value (as Cairn's does)
  uint32_t seed = 1;
  int max_latency = 10;  // call -> effect and effect -> return, each in [1, max_latency]
};

History Simulate(const Simulation& sim) {
  std::mt19937 rng(sim.seed);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  struct Event {
    int64_t time;
    uint64_t seq;
    int kind;  // 0: a client issues its next op; 1: op takes effect; 2: op returns
    size_t op;
    bool operator>(const Event& o) const { return std::tie(time, seq) > std::tie(o.time, o.seq); }
  };
  std::priority_queue<Event, std::vector<Event>, std::greater<>> queue;
  uint64_t seq = 0;
  History h;
  Value reg;                                           // the register
  std::vector<Value> last_seen(sim.clients, kAbsent);  // what each client last read
  int issued = 0;
  for (int c = 0; c < sim.clients; ++c) queue.push({uniform(0, 5), seq++, 0, size_t(c)});
  while (!queue.empty()) {
    const Event e = queue.top();
    queue.pop();
    if (e.kind == 0) {
      if (issued == sim.ops) continue;
      ++issued;
      const uint64_t client = e.op;
      Op op{.client = client, .key = "k", .call = e.time};
      if (sim.counter) {
        // Read, then try to increment what was read.
        if (h.ops.empty() || !last_seen[client] || uniform(0, 3) == 0) {
          op.kind = OpKind::kRead;
        } else {
          op.kind = OpKind::kCas;
          op.expected = last_seen[client];
          op.value = std::to_string(std::stoi(*last_seen[client]) + 1);
        }
        if (h.ops.empty()) {  // the very first op initialises the counter
          op.kind = OpKind::kWrite;
          op.value = "0";
        }
      } else {
        const int roll = uniform(0, 9);
        if (roll < 5) {
          op.kind = OpKind::kRead;
        } else if (roll < 8) {
          op.kind = OpKind::kWrite;
          op.value = roll == 7 && uniform(0, 3) == 0
                         ? kAbsent
                         : Value(fmt::format("c{}-{}", client, h.ops.size()));
        } else {
          op.kind = OpKind::kCas;
          op.expected = last_seen[client];
          op.value = fmt::format("c{}-{}", client, h.ops.size());
        }
      }
      const bool unknown = op.kind != OpKind::kRead &&
                           std::uniform_real_distribution<double>(0, 1)(rng) < sim.unknown_rate;
      const int64_t effect = e.time + uniform(1, sim.max_latency);
      const size_t index = h.ops.size();
      if (unknown) {
        op.outcome = Outcome::kUnknown;
        op.ret = op.call;
        h.ops.push_back(op);
        // Takes effect late (up to 20 latencies on) or never; the client moves on after a
        // timeout.
        if (uniform(0, 2) != 0) {
          queue.push({e.time + uniform(1, 20 * sim.max_latency), seq++, 1, index});
        }
        queue.push({e.time + 3 * sim.max_latency, seq++, 0, size_t(client)});
        continue;
      }
      h.ops.push_back(op);
      queue.push({effect, seq++, 1, index});
      queue.push({effect + uniform(1, sim.max_latency), seq++, 2, index});
    } else if (e.kind == 1) {
      Op& op = h.ops[e.op];
      switch (op.kind) {
        case OpKind::kRead:
          op.value = reg;
          break;
        case OpKind::kWrite:
          reg = op.value;
          break;
        case OpKind::kCas:
          op.applied = reg == op.expected;
          if (op.applied) reg = op.value;
          if (!op.applied && sim.report_current) op.current = reg;
          if (op.outcome == Outcome::kUnknown) {
            op.applied = false;
            op.current.reset();
          }
          break;
      }
    } else {
      Op& op = h.ops[e.op];
      op.ret = e.time;
      if (op.kind == OpKind::kRead) last_seen[op.client] = op.value;
      if (op.kind == OpKind::kCas) {
        if (op.applied) {
          last_seen[op.client] = op.value;
        } else if (op.current) {
          last_seen[op.client] = *op.current;
        } else if (sim.counter) {
          last_seen[op.client] = kAbsent;  // the increment failed: read the counter again
        }
      }
      queue.push({e.time + uniform(0, 3), seq++, 0, size_t(op.client)});
    }
  }
  return h;
}

void ExpectLinearizableQuickly(const Simulation& sim, const char* what) {
  const History h = Simulate(sim);
  const auto start = std::chrono::steady_clock::now();
  const CheckResult r = CheckLinearizable(h);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.verdict, kOk) << what << "\n" << r.explanation;
  // Roughly ops x concurrency; far below the default budget.
  EXPECT_LT(r.steps, 50u * h.ops.size()) << what;
  std::cout << fmt::format("{}: {} ops, {} steps, {:.1f} ms\n", what, h.ops.size(), r.steps, ms);
}

TEST(Linearizability, GeneratedRegisterHistoryOf2000OpsIsLinearizable) {
  ExpectLinearizableQuickly(Simulation{}, "register, 8 clients");
  ExpectLinearizableQuickly(Simulation{.clients = 24, .seed = 2}, "register, 24 clients");
  ExpectLinearizableQuickly(Simulation{.unknown_rate = 0.05, .seed = 3},
                            "register, 8 clients, 5% unknown outcomes");
}

TEST(Linearizability, GeneratedCounterHistoryOf2000OpsIsLinearizable) {
  ExpectLinearizableQuickly(Simulation{.counter = true, .seed = 4}, "counter, 8 clients");
  ExpectLinearizableQuickly(Simulation{.unknown_rate = 0.05, .counter = true, .seed = 5},
                            "counter, 8 clients, 5% unknown outcomes");
}

TEST(Linearizability, GeneratedHistoryWithOneBadReadIsCaughtAndPinpointed) {
  History h = Simulate(Simulation{.seed = 6});
  // A read in the middle returns a value nobody wrote.
  size_t bad = h.ops.size() / 2;
  while (h.ops[bad].kind != OpKind::kRead) ++bad;
  h.ops[bad].value = "never written";
  const CheckResult r = CheckLinearizable(h);
  ASSERT_EQ(r.verdict, kBad);
  EXPECT_NE(std::find(r.involved.begin(), r.involved.end(), bad), r.involved.end());
  // The shortest failing prefix ends when the bad read returns.
  EXPECT_NE(r.explanation.find(fmt::format("up to t={},", h.ops[bad].ret)), std::string::npos)
      << r.explanation;
  EXPECT_NE(r.explanation.find(fmt::format("  {}\n", DescribeOp(h.ops[bad], bad))),
            std::string::npos)
      << r.explanation;
  // Deterministic, explanation included.
  EXPECT_EQ(CheckLinearizable(h).explanation, r.explanation);
}

TEST(Linearizability, GeneratedCounterWithOneLostIncrementIsCaught) {
  History h = Simulate(Simulation{.counter = true, .seed = 7});
  // A final read, after everything, of one less than the counter reached.
  int64_t end = 0;
  int top = 0;
  for (const Op& op : h.ops) {
    end = std::max(end, op.ret);
    if (op.kind == OpKind::kCas && op.applied) top = std::max(top, std::stoi(*op.value));
  }
  ASSERT_GT(top, 10);
  h.ops.push_back(Read(99, end + 1, end + 2, std::to_string(top)));
  EXPECT_EQ(CheckLinearizable(h).verdict, kOk);
  h.ops.back().value = std::to_string(top - 1);
  const CheckResult r = CheckLinearizable(h);
  EXPECT_EQ(r.verdict, kBad);
  EXPECT_EQ(r.involved.back(), h.ops.size() - 1);
}

}  // namespace
}  // namespace cairn::checkers
