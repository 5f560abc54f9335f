// Cross-checks CheckLinearizable against a reference checker written straight from the
// definition (try every order of every subset of the unknown ops, no memo, no reductions) on
// thousands of small random histories, legal and illegal, with repeated and unique values. The
// search's reductions are subtle; this is what says they never change a verdict.
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tests/linearizability/linearizability.h"

namespace cairn::checkers {
namespace {

// The definition, for one key: can the ops be placed one after another, each unknown op placed
// at most once (or never), an op never before one that returned before it was called, every
// answer matching the register's?
class Reference {
 public:
  explicit Reference(std::vector<Op> ops) : ops_(std::move(ops)), placed_(ops_.size(), false) {}

  bool Linearizable() { return Place(Value()); }

 private:
  bool Known(const Op& op) const { return op.outcome == Outcome::kOk; }

  bool Place(const Value& state) {
    bool all_known_placed = true;
    for (size_t i = 0; i < ops_.size(); ++i) {
      if (!placed_[i] && Known(ops_[i])) all_known_placed = false;
    }
    if (all_known_placed) return true;
    for (size_t i = 0; i < ops_.size(); ++i) {
      const Op& op = ops_[i];
      if (placed_[i] || op.outcome == Outcome::kFailed) continue;
      bool may_go_next = true;
      for (size_t j = 0; j < ops_.size(); ++j) {
        if (j != i && !placed_[j] && Known(ops_[j]) && ops_[j].ret < op.call) may_go_next = false;
      }
      if (!may_go_next) continue;
      // The register states this op may leave, if it may take effect now.
      std::vector<Value> after;
      switch (op.kind) {
        case OpKind::kRead:
          if (!Known(op) || state == op.value) after.push_back(state);
          break;
        case OpKind::kWrite:
          after.push_back(op.value);
          break;
        case OpKind::kCas:
          if (!Known(op)) {
            after.push_back(state == op.expected ? op.value : state);
          } else if (op.applied) {
            if (state == op.expected) after.push_back(op.value);
          } else if (state != op.expected && (!op.current || *op.current == state)) {
            after.push_back(state);
          }
          break;
      }
      for (const Value& next : after) {
        placed_[i] = true;
        const bool ok = Place(next);
        placed_[i] = false;
        if (ok) return true;
      }
    }
    return false;
  }

  std::vector<Op> ops_;
  std::vector<bool> placed_;
};

// Random single-key histories of up to `max_ops` ops. Half are legal by construction (each op
// takes effect at a random instant of its interval, or, with an unknown outcome, at some
// instant after its call or never); a third of those then get one answer changed.
class Generator {
 public:
  // `report_current`: a CAS that did not apply always reports the current value (as Cairn's
  // does), which lets the search set aside unobserved writes; otherwise half of them do.
  Generator(uint32_t seed, bool report_current) : rng_(seed), report_current_(report_current) {}

  History Next(size_t max_ops, bool unique_values) {
    const size_t n = Uniform(1, static_cast<int>(max_ops));
    History h;
    int written = 0;
    auto value = [&](bool for_write) -> Value {
      if (unique_values) {
        if (for_write) return fmt::format("v{}", ++written);
        const int pick = Uniform(0, written + 1);
        return pick == 0 ? Value() : Value(fmt::format("v{}", pick));
      }
      const int pick = Uniform(0, 3);
      return pick == 0 ? Value() : Value(std::string(1, static_cast<char>('a' + pick - 1)));
    };
    for (size_t i = 0; i < n; ++i) {
      Op op{.client = i, .key = "k"};
      const int kind = Uniform(0, 2);
      op.kind = kind == 0 ? OpKind::kRead : kind == 1 ? OpKind::kWrite : OpKind::kCas;
      op.call = Uniform(0, 30);
      op.ret = op.call + Uniform(0, 12);
      const int outcome = Uniform(0, 19);
      op.outcome = outcome < 15   ? Outcome::kOk
                   : outcome < 19 ? Outcome::kUnknown
                                  : Outcome::kFailed;
      if (op.kind != OpKind::kRead) op.value = value(true);
      if (op.kind == OpKind::kCas) op.expected = value(false);
      h.ops.push_back(op);
    }
    if (Uniform(0, 1) == 0) {
      FillLegally(&h);
      if (Uniform(0, 2) == 0) Mutate(&h, unique_values, written);
    } else {
      for (Op& op : h.ops) {
        if (op.outcome != Outcome::kOk) continue;
        if (op.kind == OpKind::kRead) op.value = value(false);
        if (op.kind == OpKind::kCas) {
          op.applied = Uniform(0, 1) == 0;
          if (!op.applied && (report_current_ || Uniform(0, 1) == 0)) op.current = value(false);
        }
      }
    }
    return h;
  }

 private:
  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  // Gives every op an instant (times are scaled so that instants fall strictly inside), plays
  // them in that order and records the answers.
  void FillLegally(History* h) {
    std::vector<std::pair<int64_t, size_t>> instants;
    for (size_t i = 0; i < h->ops.size(); ++i) {
      const Op& op = h->ops[i];
      if (op.outcome == Outcome::kFailed) continue;
      if (op.outcome == Outcome::kUnknown) {
        if (Uniform(0, 2) == 0) continue;  // never takes effect
        instants.emplace_back(op.call * 100 + Uniform(1, 4000), i);
      } else {
        instants.emplace_back(op.call * 100 + Uniform(0, static_cast<int>(op.ret - op.call) * 100),
                              i);
      }
    }
    std::sort(instants.begin(), instants.end());
    Value state;
    for (const auto& [instant, i] : instants) {
      Op& op = h->ops[i];
      switch (op.kind) {
        case OpKind::kRead:
          op.value = state;
          break;
        case OpKind::kWrite:
          state = op.value;
          break;
        case OpKind::kCas:
          op.applied = state == op.expected;
          if (!op.applied && (report_current_ || Uniform(0, 1) == 0)) op.current = state;
          if (op.applied) state = op.value;
          break;
      }
      if (op.outcome == Outcome::kUnknown) {
        op.applied = false;
        op.current.reset();
        if (op.kind == OpKind::kRead) op.value.reset();
      }
    }
  }

  void Mutate(History* h, bool unique_values, int written) {
    Op& op = h->ops[Uniform(0, static_cast<int>(h->ops.size()) - 1)];
    if (op.outcome != Outcome::kOk) return;
    auto other = [&]() -> Value {
      const int pick = Uniform(0, unique_values ? written : 3);
      if (pick == 0) return Value();
      return unique_values ? Value(fmt::format("v{}", pick))
                           : Value(std::string(1, static_cast<char>('a' + pick - 1)));
    };
    if (op.kind == OpKind::kRead) op.value = other();
    if (op.kind == OpKind::kCas) {
      op.applied = !op.applied;
      if (op.applied) op.current.reset();
      if (!op.applied && report_current_) op.current = other();
    }
    if (op.kind == OpKind::kWrite) op.ret = op.call;  // shrink its interval to an instant
  }

  std::mt19937 rng_;
  const bool report_current_;
};

void CrossCheck(uint32_t seed, int histories, size_t max_ops, bool unique_values,
                bool report_current) {
  Generator gen(seed, report_current);
  int legal = 0;
  for (int n = 0; n < histories; ++n) {
    const History h = gen.Next(max_ops, unique_values);
    const bool expected = Reference(h.ops).Linearizable();
    legal += expected;
    for (bool reduce : {true, false}) {
      const CheckResult r = CheckLinearizable(h, CheckOptions{.exact_reductions = reduce});
      ASSERT_EQ(r.linearizable(), expected)
          << "history " << n << (reduce ? " with" : " without") << " reductions:\n"
          << HistoryToJsonLines(h) << r.explanation;
      if (!expected) {
        ASSERT_FALSE(r.involved.empty()) << HistoryToJsonLines(h) << r.explanation;
        for (size_t i : r.involved) ASSERT_LT(i, h.ops.size());
      }
    }
  }
  // Both verdicts well represented.
  EXPECT_GT(legal, histories / 5);
  EXPECT_LT(legal, histories * 4 / 5);
}

TEST(CrossCheck, RepeatedValuesAgreeWithTheDefinition) { CrossCheck(1, 2000, 7, false, false); }

TEST(CrossCheck, UniqueValuesAgreeWithTheDefinition) { CrossCheck(2, 2000, 7, true, false); }

TEST(CrossCheck, CasReportingTheCurrentValueAgreesWithTheDefinition) {
  CrossCheck(3, 2000, 7, false, true);
  CrossCheck(4, 2000, 7, true, true);
}

}  // namespace
}  // namespace cairn::checkers
