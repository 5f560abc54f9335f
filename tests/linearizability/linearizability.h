// A linearizability checker for histories of per-key registers (see history.h for the model).
//
// A history is linearizable iff every op that took effect can be given one instant inside its
// interval (for an op with an unknown outcome: any instant after its call, or none at all) such
// that, replayed in the order of those instants from an absent register, every answer the
// clients got is the answer the register gives. Registers are independent, so each key's
// sub-history is checked on its own (linearizability is compositional: a history is
// linearizable iff each key's sub-history is).
//
// The search is Wing & Gong's, with Lowe's memo of visited configurations and a few reductions
// that never change a verdict (see linearizability.cc). It is exact: "linearizable" and "not
// linearizable" are proofs, never guesses. Its worst case is exponential in the number of mutually
// concurrent ops, so it runs on a step budget and answers kGaveUp instead of hanging.
//
// Thread safety: CheckLinearizable is a pure function; concurrent calls are fine.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tests/linearizability/history.h"

namespace cairn::checkers {

struct CheckOptions {
  // Work allowed per key, in search steps (one step = one attempt to place an op next). A
  // linearizable history with a dozen clients on a key takes a few steps per op; the budget
  // matters for illegal histories with much concurrency, and for many dozens of clients on one
  // key. 10'000'000 steps take about a second and under 100 MB.
  uint64_t max_steps_per_key = 10'000'000;
  // When a key is not linearizable, find the shortest failing prefix of its sub-history and
  // describe the longest legal order of it the search found. Costs about log2(ops) more checks
  // of that key, each within the budget above.
  bool explain = true;
  // The search's exact reductions (forced moves, unobserved writes: see linearizability.cc).
  // They never change a verdict, only the work; turning them off is for cross-checking the
  // checker itself, and makes histories with many concurrent writes intractable.
  bool exact_reductions = true;
};

enum class Verdict : uint8_t {
  kLinearizable,
  kNotLinearizable,  // some key's sub-history has no legal order: `key` says which
  kGaveUp,           // no key failed, but the budget ran out on at least one (`key`)
  kInvalidHistory,   // an op returns before it is called: `explanation` says which
};

struct CheckResult {
  Verdict verdict = Verdict::kLinearizable;
  // The first key (in byte order) that is not linearizable or, with kGaveUp, that ran out of
  // budget.
  std::string key;
  // For a failure: the shortest failing prefix of `key`'s sub-history, the longest legal order
  // the search found for it, and why no remaining op can come next. Multi-line, for humans.
  std::string explanation;
  // For a failure: the positions in History::ops of the ops that the explanation names (the op
  // whose return ends the shortest failing prefix, the ops concurrent with it, the tail of the
  // longest legal order and the ops that could not follow it), ascending.
  std::vector<size_t> involved;
  // Every key that is not linearizable, and every key the budget ran out on, in byte order.
  std::vector<std::string> failed_keys;
  std::vector<std::string> undecided_keys;
  size_t keys_checked = 0;
  uint64_t steps = 0;  // search steps over all keys, explanations included

  bool linearizable() const { return verdict == Verdict::kLinearizable; }
};

// Checks `history`: every key's sub-history, each within `options.max_steps_per_key`.
// Deterministic: the same history and options give the same result.
CheckResult CheckLinearizable(const History& history, const CheckOptions& options = {});

// "linearizable", "not linearizable", ...
const char* VerdictName(Verdict verdict);

}  // namespace cairn::checkers
