// How the search works.
//
// Per key, the ops are split into "known" ones (the client got an answer: the op must be
// placed, inside its interval) and "unknown" ones (no answer: the op may be placed anywhere
// after its call, or not at all). Unknown reads constrain nothing and are dropped, as are
// failed ops.
//
// Wing & Gong's search builds a legal order one op at a time. The known ops' call and return
// events sit in time order in a doubly linked list. An op may come next iff it is called no
// later than the first return event still in the list (an op that returned before X was called
// must precede X): the candidates are the calls ahead of the first return event, plus the
// unknown ops called by then. The search places a candidate the register allows, unlinks it
// from the list and starts over from the new configuration; when nothing fits it backtracks: it
// undoes the last move and tries the candidate after it. It succeeds when every known op is
// placed: unknown ops left over are the ones that never took effect.
//
// Lowe's improvement: a configuration is the set of ops placed so far plus the register's value,
// and what can follow depends on nothing else. A configuration explored once fails again, so
// every configuration entered is recorded in a hash set (ConfigMemo) and never entered twice.
// The work is then bounded by the number of reachable configurations instead of the number of
// orders; for real histories that is about ops x concurrency x values in flight.
//
// Exact reductions on top (each keeps the verdict, see the proofs below):
//  1. Dominance in the memo. Placing an unknown op is optional, so a configuration that has
//     placed a subset of another's unknown ops (same known ops, same value) can do all the other
//     can: the memo prunes a configuration when it saw such a subset.
//  2. Forced moves. A known op that leaves the register as it is (a read, a CAS that did not
//     apply) and fits now is placed without trying anything else.
//  3. Unobserved values. Call a value observed when some op can only be placed while the
//     register holds it (a read returning it, a CAS expecting it, a CAS that did not apply and
//     reported it). After a write of an unobserved value, the only thing that can come next is
//     another blind write (a write, not a CAS), or nothing: the write's effect is never seen.
//     Hence an unknown write or CAS of an unobserved value is dropped (never taking effect is as
//     good), and a known write of an unobserved value ("absorbable") is never placed on its
//     own: when the search places a blind write, it first places every absorbable write that
//     is a candidate (and those that become candidates), as if each took effect just before the
//     blind write; and a configuration where only absorbable writes are left succeeds. This is
//     what keeps many concurrent writes cheap: values nobody read create no branches. A CAS that
//     did not apply and did not report the current value could follow any value but the one it
//     expected, so writes that such a CAS may follow are not treated as unobserved.
//  4. Unknown ops and blind writes are tried after the other candidates, and an unknown op never
//     where it changes nothing: "it never took effect" is tried first.
//  5. Unique values. When a value is written by one op only (fault tests write unique values),
//     that op must precede every op that observes the value: its interval is cut short at the
//     first observer's return, the observers' intervals start no earlier than its call, and an
//     unknown op whose value was observed did take effect and becomes a known one
//     (TightenUniqueValues). Fewer ops overlap, so there are fewer orders to try.
//
// Proof sketch for exactness. Moves 2 and 3 only reorder a legal completion: in any legal
// order, a non-mutating op that fits now can be moved to the front (it changes nothing, and
// placing an op earlier only relaxes the real-time constraints of the others), and an
// absorbable write, which is followed by a blind write or by nothing, can be moved to just
// before the first blind write after it fits (or dropped from the end). So a configuration has
// a legal completion iff it has one made of the search's moves. For the memo: suppose the search
// fails although some entered configuration X has a completion, and pick X with the shortest
// one. Its first move leads to Y, which was either entered (and failed, with a shorter
// completion: contradiction) or pruned because of an entered Z that can do all Y can, so Z has a
// completion no longer than Y's: contradiction again, since every entered configuration has
// failed by the time the search fails.
//
// The set of known ops placed is a bitset over the ops in call order. Ops are placed roughly in
// call order, so the set is "all ops before p" plus a few after p, p being the first op not
// placed; the memo stores only the words from p's to the last non-zero one, a handful however
// long the history is.
#include "tests/linearizability/linearizability.h"

#include <algorithm>
#include <bit>
#include <map>
#include <unordered_map>

#include <fmt/format.h>

namespace cairn::checkers {
namespace {

constexpr int32_t kAbsent = 0;        // value id of "absent"
constexpr int32_t kNotReported = -1;  // RegisterOp::current when the reply did not say
// How many ops of the longest legal order an explanation shows.
constexpr size_t kExplainedTail = 8;
// How many concurrent ops an explanation lists.
constexpr size_t kExplainedConcurrent = 16;

// One op of a key's sub-history with its values interned (ids into SubHistory::values).
struct RegisterOp {
  size_t index = 0;  // position in History::ops
  OpKind kind = OpKind::kRead;
  bool known = true;  // outcome kOk; otherwise kUnknown
  bool applied = false;
  bool absorbable = false;  // a known write of an unobserved value (reduction 3)
  int32_t value = kAbsent;  // read: returned; write and CAS: the new value
  int32_t expected = kAbsent;
  int32_t current = kNotReported;
  int64_t call = 0;
  int64_t ret = 0;  // known ops only
};

// The ops of one key, ready for the search.
struct SubHistory {
  std::vector<RegisterOp> known;    // in call order
  std::vector<RegisterOp> unknown;  // in call order
  std::vector<Value> values;        // by id; values[kAbsent] is absent
};

bool CallOrder(const RegisterOp& a, const RegisterOp& b) {
  return std::tie(a.call, a.index) < std::tie(b.call, b.index);
}

// Whether `op` may change the register. A known read or a known CAS that did not apply never
// does.
bool Mutates(const RegisterOp& op) {
  return op.kind == OpKind::kWrite || (op.kind == OpKind::kCas && (!op.known || op.applied));
}

SubHistory BuildSubHistory(const History& history, const std::vector<size_t>& indices) {
  SubHistory sub;
  sub.values.push_back(std::nullopt);
  std::unordered_map<std::string, int32_t> ids;
  auto intern = [&](const Value& v) -> int32_t {
    if (!v) return kAbsent;
    auto [it, added] = ids.emplace(*v, static_cast<int32_t>(sub.values.size()));
    if (added) sub.values.push_back(v);
    return it->second;
  };
  for (size_t i : indices) {
    const Op& op = history.ops[i];
    if (op.outcome == Outcome::kFailed) continue;
    if (op.outcome == Outcome::kUnknown && op.kind == OpKind::kRead) continue;
    RegisterOp r{.index = i,
                 .kind = op.kind,
                 .known = op.outcome == Outcome::kOk,
                 .applied = op.applied,
                 .value = intern(op.value),
                 .call = op.call,
                 .ret = op.ret};
    if (op.kind == OpKind::kCas) {
      r.expected = intern(op.expected);
      if (op.current) r.current = intern(*op.current);
    }
    (r.known ? sub.known : sub.unknown).push_back(r);
  }
  std::sort(sub.known.begin(), sub.known.end(), CallOrder);
  std::sort(sub.unknown.begin(), sub.unknown.end(), CallOrder);
  return sub;
}

// The sub-history as it stood at time `cutoff`: ops called later are gone, and ops still
// running then have not answered yet, so their outcome is unknown. If this prefix has no legal
// order, neither has the whole.
SubHistory Prefix(const SubHistory& sub, int64_t cutoff) {
  SubHistory prefix;
  prefix.values = sub.values;
  for (const RegisterOp& op : sub.known) {
    if (op.call > cutoff) continue;
    if (op.ret <= cutoff) {
      prefix.known.push_back(op);
    } else if (op.kind != OpKind::kRead) {
      RegisterOp pending = op;
      pending.known = false;
      pending.applied = false;
      pending.current = kNotReported;
      prefix.unknown.push_back(pending);
    }
  }
  for (const RegisterOp& op : sub.unknown) {
    if (op.call <= cutoff) prefix.unknown.push_back(op);
  }
  std::sort(prefix.unknown.begin(), prefix.unknown.end(), CallOrder);
  return prefix;
}

// Applies reduction 3 (see the top of this file) to `sub`: marks the absorbable known writes and
// drops the unknown ops of unobserved values.
void SetAsideUnobservedWrites(SubHistory* sub) {
  std::vector<bool> observed(sub->values.size(), false);
  // Known CASes that did not apply and did not say what they found can follow any value but
  // the one they expected; writes called before the last of them returns may be seen by one.
  int64_t blind_cas_until = INT64_MIN;
  for (const RegisterOp& op : sub->known) {
    switch (op.kind) {
      case OpKind::kRead:
        observed[op.value] = true;
        break;
      case OpKind::kWrite:
        break;
      case OpKind::kCas:
        if (op.applied) {
          observed[op.expected] = true;
        } else if (op.current != kNotReported) {
          observed[op.current] = true;
        } else {
          blind_cas_until = std::max(blind_cas_until, op.ret);
        }
        break;
    }
  }
  for (const RegisterOp& op : sub->unknown) {
    if (op.kind == OpKind::kCas) observed[op.expected] = true;
  }
  auto unobserved = [&](const RegisterOp& op) {
    return !observed[op.value] && op.call > blind_cas_until;
  };
  for (RegisterOp& op : sub->known) op.absorbable = op.kind == OpKind::kWrite && unobserved(op);
  std::erase_if(sub->unknown, unobserved);
}

// Applies reduction 5 (see the top of this file) to `sub`. A value other than absent that
// exactly one op writes (or sets by CAS) is unique; an op that can only be placed while the
// register holds it (a read returning it, a CAS expecting it, a CAS that did not apply and
// reported it) is a known observer of it. The writer of a unique value must take effect before
// each of its observers, which bounds both:
//   - an unknown writer of a unique value with a known observer did take effect: it becomes a
//     known op (a CAS: one that applied) that returns when its first observer returns;
//   - a writer's interval ends no later than its observers' do, and an observer's starts no
//     earlier than its writer's does.
// Bounds tightened this way hold in every legal order, so they never change the verdict; they
// only remove concurrency that could not have been. An op may end up returning before it is
// called: then no legal order exists, and the search finds none.
void TightenUniqueValues(SubHistory* sub) {
  const size_t nv = sub->values.size();
  std::vector<int> writers(nv, 0);
  for (const RegisterOp& op : sub->known) writers[op.value] += Mutates(op);
  for (const RegisterOp& op : sub->unknown) ++writers[op.value];
  auto unique = [&](int32_t v) { return v != kAbsent && writers[v] == 1; };
  // The value `op` observes, or -1.
  auto observed = [](const RegisterOp& op) -> int32_t {
    if (op.kind == OpKind::kRead) return op.value;
    if (op.kind == OpKind::kCas && op.applied) return op.expected;
    if (op.kind == OpKind::kCas) return op.current;  // kNotReported is -1 too
    return -1;
  };
  std::vector<int64_t> first_seen(nv);
  auto find_first_seen = [&] {
    std::fill(first_seen.begin(), first_seen.end(), INT64_MAX);
    for (const RegisterOp& op : sub->known) {
      if (const int32_t v = observed(op); v >= 0) first_seen[v] = std::min(first_seen[v], op.ret);
    }
  };
  find_first_seen();
  std::erase_if(sub->unknown, [&](RegisterOp& op) {
    if (!unique(op.value) || first_seen[op.value] == INT64_MAX) return false;
    op.known = true;
    op.applied = op.kind == OpKind::kCas;
    op.ret = first_seen[op.value];
    sub->known.push_back(op);
    return true;
  });
  // Bounds propagate along chains (a counter's CASes observe each other), so repeat; a few
  // rounds get most of the benefit, and stopping early is always sound.
  constexpr int kRounds = 16;
  std::vector<int64_t> written_from(nv);
  for (int round = 0; round < kRounds; ++round) {
    if (round > 0) find_first_seen();
    std::fill(written_from.begin(), written_from.end(), INT64_MIN);
    for (const RegisterOp& op : sub->known) {
      if (Mutates(op) && unique(op.value)) written_from[op.value] = op.call;
    }
    bool changed = false;
    for (RegisterOp& op : sub->known) {
      if (Mutates(op) && unique(op.value) && first_seen[op.value] < op.ret) {
        op.ret = first_seen[op.value];
        changed = true;
      }
      if (const int32_t v = observed(op); v >= 0 && unique(v) && written_from[v] > op.call) {
        op.call = written_from[v];
        changed = true;
      }
    }
    if (!changed) break;
  }
  std::sort(sub->known.begin(), sub->known.end(), CallOrder);
}

// Whether `op` can take effect on a register holding `state`; if so, sets `*next` to what the
// register holds afterwards. An unknown CAS can only take effect by applying: not applying is
// the same as not taking effect.
bool Step(const RegisterOp& op, int32_t state, int32_t* next) {
  switch (op.kind) {
    case OpKind::kRead:
      *next = state;
      return state == op.value;
    case OpKind::kWrite:
      *next = op.value;
      return true;
    case OpKind::kCas:
      if (!op.known || op.applied) {
        *next = op.value;
        return state == op.expected;
      }
      *next = state;
      return state != op.expected && (op.current == kNotReported || state == op.current);
  }
  return false;
}

uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

// The configurations the search has entered. A configuration is (known ops placed, unknown ops
// placed, register value); the known set arrives as a window of its bitset (see the top of this
// file), the unknown set as a whole bitset of `unknown_words` words. Per (known set, value) the
// memo keeps the unknown sets seen as an antichain: none is a subset of another.
class ConfigMemo {
 public:
  explicit ConfigMemo(size_t unknown_words) : unknown_words_(unknown_words), slots_(1024, 0) {}

  // Records the configuration and returns true, or returns false when it was entered before or
  // is dominated by one that was (same known set and value, a subset of its unknown ops).
  bool Insert(uint32_t first_word, const uint64_t* window, uint32_t window_len,
              const uint64_t* unknown, int32_t state) {
    uint64_t h = Mix(static_cast<uint64_t>(static_cast<uint32_t>(state)) << 32 | first_word);
    for (uint32_t i = 0; i < window_len; ++i) h = Mix(h ^ window[i]);
    const size_t mask = slots_.size() - 1;
    size_t slot = h & mask;
    for (; slots_[slot] != 0; slot = (slot + 1) & mask) {
      Entry& e = entries_[slots_[slot] - 1];
      if (e.hash == h && e.state == state && e.first_word == first_word &&
          e.window_len == window_len &&
          std::equal(window, window + window_len, words_.begin() + e.offset)) {
        return AddVariant(&e, unknown);
      }
    }
    const size_t offset = words_.size();
    words_.insert(words_.end(), window, window + window_len);
    entries_.push_back(Entry{h, offset, first_word, window_len, state, kNone});
    AddVariant(&entries_.back(), unknown);
    slots_[slot] = static_cast<uint32_t>(entries_.size());
    if (entries_.size() * 2 > slots_.size()) Grow();
    return true;
  }

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  struct Entry {
    uint64_t hash;
    size_t offset;  // of the window in words_
    uint32_t first_word;
    uint32_t window_len;
    int32_t state;
    uint32_t variants;  // first of the list of unknown sets in variants_
  };
  struct Variant {
    size_t offset;  // of the unknown set in words_
    uint32_t next;
  };

  static bool Subset(const uint64_t* a, const uint64_t* b, size_t words) {
    for (size_t i = 0; i < words; ++i) {
      if ((a[i] & ~b[i]) != 0) return false;
    }
    return true;
  }

  // Adds `unknown` to the antichain of `e` unless one there is a subset of it; drops the ones
  // it is a subset of.
  bool AddVariant(Entry* e, const uint64_t* unknown) {
    for (uint32_t v = e->variants; v != kNone; v = variants_[v].next) {
      if (Subset(words_.data() + variants_[v].offset, unknown, unknown_words_)) return false;
    }
    for (uint32_t* link = &e->variants; *link != kNone;) {
      if (Subset(unknown, words_.data() + variants_[*link].offset, unknown_words_)) {
        *link = variants_[*link].next;
      } else {
        link = &variants_[*link].next;
      }
    }
    // Copy before inserting: `unknown` does not point into words_, but appending may move it.
    const size_t offset = words_.size();
    words_.insert(words_.end(), unknown, unknown + unknown_words_);
    variants_.push_back(Variant{offset, e->variants});
    e->variants = static_cast<uint32_t>(variants_.size() - 1);
    return true;
  }

  void Grow() {
    std::vector<uint32_t> slots(slots_.size() * 2, 0);
    const size_t mask = slots.size() - 1;
    for (size_t id = 0; id < entries_.size(); ++id) {
      size_t slot = entries_[id].hash & mask;
      while (slots[slot] != 0) slot = (slot + 1) & mask;
      slots[slot] = static_cast<uint32_t>(id + 1);
    }
    slots_ = std::move(slots);
  }

  const size_t unknown_words_;
  std::vector<uint32_t> slots_;  // entry id + 1; 0 is empty
  std::vector<Entry> entries_;
  std::vector<Variant> variants_;
  std::vector<uint64_t> words_;  // windows and unknown sets
};

enum class SearchOutcome { kLinearizable, kNotLinearizable, kGaveUp };

// One run of the search over one key's sub-history (see the top of this file).
class RegisterSearch {
 public:
  // `sub` must outlive the search. `reduce`: apply reductions 2 and 4 (the caller applies 3 and
  // 5 to `sub`). `record_deepest`: remember the longest order found (for explanations).
  RegisterSearch(const SubHistory& sub, uint64_t max_steps, bool reduce, bool record_deepest)
      : sub_(sub),
        nk_(sub.known.size()),
        nu_(sub.unknown.size()),
        max_steps_(max_steps),
        reduce_(reduce),
        record_deepest_(record_deepest),
        known_bits_((nk_ + 63) / 64 + 1, 0),
        unknown_bits_((nu_ + 63) / 64, 0),
        memo_(unknown_bits_.size()) {
    for (const RegisterOp& op : sub.known) essential_ += !op.absorbable;
    // Events: node 2i is the call of known op i, 2i + 1 its return; head_ and tail_ are
    // sentinels. At equal times calls come first, so ops whose intervals touch are concurrent.
    std::vector<std::tuple<int64_t, int, size_t>> events;
    events.reserve(2 * nk_);
    for (size_t i = 0; i < nk_; ++i) {
      events.emplace_back(sub.known[i].call, 0, 2 * i);
      events.emplace_back(sub.known[i].ret, 1, 2 * i + 1);
    }
    std::sort(events.begin(), events.end());
    head_ = static_cast<int32_t>(2 * nk_);
    tail_ = head_ + 1;
    next_.assign(2 * nk_ + 2, 0);
    prev_.assign(2 * nk_ + 2, 0);
    int32_t last = head_;
    for (const auto& [time, is_return, node] : events) {
      next_[last] = static_cast<int32_t>(node);
      prev_[node] = last;
      last = static_cast<int32_t>(node);
    }
    next_[last] = tail_;
    prev_[tail_] = last;
  }

  SearchOutcome Run() {
    bool fresh = true;  // a configuration was just entered: nothing tried yet
    while (true) {
      if (fresh) {
        fresh = false;
        if (placed_essential_ == essential_) return SearchOutcome::kLinearizable;
        // Reduction 2: a forced move.
        int32_t forced = -1;
        for (int32_t e = next_[head_]; reduce_ && (e & 1) == 0; e = next_[e]) {
          const RegisterOp& op = sub_.known[e / 2];
          if (Mutates(op)) continue;
          if (++steps_ > max_steps_) return SearchOutcome::kGaveUp;
          int32_t next;
          if (Step(op, state_, &next)) {
            forced = e / 2;
            break;
          }
        }
        if (forced >= 0) {
          // A configuration entered before fails again, and this one has no other move.
          if (VisitKnown(forced, state_)) {
            Push(/*forced=*/true);
            PlaceKnown(forced, state_);
            fresh = true;
          } else if (!Backtrack()) {
            return SearchOutcome::kNotLinearizable;
          }
          continue;
        }
        scan_ = Scan{};
      }
      switch (scan_.phase) {
        case Phase::kKnownCas:
        case Phase::kKnownWrite: {
          // Known candidates (the calls ahead of the first return event), by earliest return
          // first: the op that is due soonest is the likeliest to have to come next.
          const bool writes = scan_.phase == Phase::kKnownWrite;
          int32_t best = -1;
          int32_t e = next_[head_];
          for (; (e & 1) == 0; e = next_[e]) {
            const int32_t op = e / 2;
            const RegisterOp& r = sub_.known[op];
            // Without reduction 2, known ops that change nothing are tried with the CASes.
            if ((reduce_ && !Mutates(r)) || r.absorbable || (r.kind == OpKind::kWrite) != writes) {
              continue;
            }
            const auto key = std::make_pair(r.ret, op);
            if (key > std::make_pair(scan_.last_ret, scan_.last_op) &&
                (best < 0 || key < std::make_pair(sub_.known[best].ret, best))) {
              best = op;
            }
          }
          if (best >= 0) {
            const RegisterOp& r = sub_.known[best];
            scan_.last_ret = r.ret;
            scan_.last_op = best;
            if (++steps_ > max_steps_) return SearchOutcome::kGaveUp;
            int32_t next;
            if (Step(r, state_, &next) && VisitKnown(best, next)) {
              Push(/*forced=*/false);
              PlaceKnown(best, next);
              fresh = true;
            }
            continue;
          }
          scan_.frontier = sub_.known[e / 2].ret;
          scan_.phase = writes ? Phase::kUnknownWrite : Phase::kUnknownCas;
          scan_.uidx = 0;
          continue;
        }
        case Phase::kUnknownCas:
        case Phase::kUnknownWrite: {
          // Unknown candidates: called no later than the first return event.
          const bool writes = scan_.phase == Phase::kUnknownWrite;
          for (; scan_.uidx < nu_ && sub_.unknown[scan_.uidx].call <= scan_.frontier;
               ++scan_.uidx) {
            const size_t u = scan_.uidx;
            const RegisterOp& r = sub_.unknown[u];
            if ((r.kind == OpKind::kWrite) != writes || (unknown_bits_[u / 64] >> (u % 64) & 1)) {
              continue;
            }
            if (++steps_ > max_steps_) return SearchOutcome::kGaveUp;
            int32_t next;
            // An op that changes nothing is the same as one that never took effect; after
            // absorbed writes, though, the register holds their value, not state_.
            if (!Step(r, state_, &next) || (reduce_ && next == state_ && !scan_.absorbed)) continue;
            unknown_bits_[u / 64] |= uint64_t{1} << (u % 64);
            const bool fresh_config = Visit(next);
            unknown_bits_[u / 64] &= ~(uint64_t{1} << (u % 64));
            if (!fresh_config) continue;
            ++scan_.uidx;
            Push(/*forced=*/false);
            PlaceUnknown(u, next);
            fresh = true;
            break;
          }
          if (fresh) continue;
          if (!writes) {
            // On to the blind writes, after the absorbable writes (reduction 3).
            scan_.phase = Phase::kKnownWrite;
            if (AnyAbsorbableCandidate()) {
              Push(/*forced=*/true);
              if (!Absorb()) return SearchOutcome::kGaveUp;
              scan_.absorbed = true;
            }
            scan_.last_ret = INT64_MIN;
            scan_.last_op = -1;
            continue;
          }
          // Nothing can come next.
          if (!Backtrack()) return SearchOutcome::kNotLinearizable;
          continue;
        }
      }
    }
  }

  uint64_t steps() const { return steps_; }
  // With record_deepest: the order of placements that placed the most known ops (op ids:
  // < known.size() a known op, else unknown op id - known.size()), and the value the register
  // held after it.
  const std::vector<int32_t>& deepest_order() const { return deepest_order_; }
  int32_t deepest_state() const { return deepest_state_; }

 private:
  // Where the scan of a configuration's candidates stands. The phases run in this order.
  enum class Phase : uint8_t {
    kKnownCas,      // known CASes that applied
    kUnknownCas,    // unknown CASes
    kKnownWrite,    // known writes that are not absorbable (after absorbing the others)
    kUnknownWrite,  // unknown writes
  };
  struct Scan {
    Phase phase = Phase::kKnownCas;
    // Known phases: the last candidate tried, as (return time, op); the next one is the
    // candidate that follows it in that order.
    int64_t last_ret = INT64_MIN;
    int32_t last_op = -1;
    size_t uidx = 0;        // unknown phases: the next unknown op to look at
    int64_t frontier = 0;   // unknown phases: the time of the first return event
    bool absorbed = false;  // write phases: absorbable writes were placed just before
  };
  // A move on the stack: enough to undo it and to resume the scan it interrupted.
  struct Frame {
    size_t order_size;  // order_.size() before the move
    int32_t state_before;
    uint32_t low_before;
    int32_t high_before;
    size_t placed_essential_before;
    Scan scan;    // resumes the scan of the configuration before the move
    bool forced;  // the only move from the configuration before it: undoing it fails that too
  };

  void Push(bool forced) {
    stack_.push_back(Frame{order_.size(), state_, low_, high_, placed_essential_, scan_, forced});
  }

  // Undoes moves up to and including the last one that was not forced, and resumes the scan it
  // interrupted. Returns false when there is none: the search failed.
  bool Backtrack() {
    while (!stack_.empty()) {
      const Frame f = stack_.back();
      stack_.pop_back();
      while (order_.size() > f.order_size) {
        const int32_t id = order_.back();
        order_.pop_back();
        if (static_cast<size_t>(id) < nk_) {
          Relink(2 * id + 1);  // the reverse order of Unlink restores the list exactly
          Relink(2 * id);
          known_bits_[id / 64] &= ~(uint64_t{1} << (id % 64));
        } else {
          const size_t u = id - nk_;
          unknown_bits_[u / 64] &= ~(uint64_t{1} << (u % 64));
        }
      }
      state_ = f.state_before;
      low_ = f.low_before;
      high_ = f.high_before;
      placed_essential_ = f.placed_essential_before;
      scan_ = f.scan;
      if (!f.forced) return true;
    }
    return false;
  }

  // Whether the configuration after placing known op `op` (register then holding `next`) is new.
  bool VisitKnown(int32_t op, int32_t next) {
    known_bits_[op / 64] |= uint64_t{1} << (op % 64);
    const uint32_t low = low_;
    const int32_t high = high_;
    AdvanceBounds(op);
    const bool fresh = Visit(next);
    known_bits_[op / 64] &= ~(uint64_t{1} << (op % 64));
    low_ = low;
    high_ = high;
    return fresh;
  }

  // Whether the current sets of placed ops, with the register holding `state`, are new.
  bool Visit(int32_t state) {
    const uint32_t first_word = low_ / 64;
    const uint32_t end_word =
        std::max<uint32_t>(first_word, high_ < 0 ? 0 : static_cast<uint32_t>(high_) / 64 + 1);
    return memo_.Insert(first_word, known_bits_.data() + first_word, end_word - first_word,
                        unknown_bits_.data(), state);
  }

  // Keeps low_ (first known op not placed) and high_ (last known op placed) up to date after
  // known op `op` was added to known_bits_.
  void AdvanceBounds(int32_t op) {
    high_ = std::max(high_, op);
    if (static_cast<uint32_t>(op) != low_) return;
    while (low_ < nk_) {
      const uint64_t rest = ~known_bits_[low_ / 64] >> (low_ % 64);
      if (rest != 0) {
        low_ += std::countr_zero(rest);
        break;
      }
      low_ = (low_ / 64 + 1) * 64;
    }
    low_ = std::min<uint32_t>(low_, nk_);
  }

  void PlaceKnown(int32_t op, int32_t next) {
    known_bits_[op / 64] |= uint64_t{1} << (op % 64);
    AdvanceBounds(op);
    Unlink(2 * op);
    Unlink(2 * op + 1);
    order_.push_back(op);
    state_ = next;
    if (!sub_.known[op].absorbable) ++placed_essential_;
    if (record_deepest_ && placed_essential_ > deepest_placed_) RecordDeepest();
  }

  void PlaceUnknown(size_t u, int32_t next) {
    unknown_bits_[u / 64] |= uint64_t{1} << (u % 64);
    order_.push_back(static_cast<int32_t>(nk_ + u));
    state_ = next;
  }

  bool AnyAbsorbableCandidate() const {
    for (int32_t e = next_[head_]; (e & 1) == 0; e = next_[e]) {
      if (sub_.known[e / 2].absorbable) return true;
    }
    return false;
  }

  // Places every absorbable write that is a candidate, until none is left. The register's value
  // is left alone: only a blind write may follow. Returns false when the budget ran out.
  bool Absorb() {
    bool again = true;
    while (again) {
      again = false;
      for (int32_t e = next_[head_]; (e & 1) == 0; e = next_[e]) {
        if (!sub_.known[e / 2].absorbable) continue;
        if (++steps_ > max_steps_) return false;
        PlaceKnown(e / 2, state_);
        again = true;
        break;
      }
    }
    return true;
  }

  void Unlink(int32_t node) {
    next_[prev_[node]] = next_[node];
    prev_[next_[node]] = prev_[node];
  }
  void Relink(int32_t node) {
    next_[prev_[node]] = node;
    prev_[next_[node]] = node;
  }

  void RecordDeepest() {
    deepest_placed_ = placed_essential_;
    deepest_state_ = state_;
    deepest_order_ = order_;
  }

  const SubHistory& sub_;
  const size_t nk_, nu_;
  const uint64_t max_steps_;
  const bool reduce_;
  const bool record_deepest_;
  size_t essential_ = 0;  // known ops that are not absorbable
  uint64_t steps_ = 0;
  // The event list (see the constructor).
  std::vector<int32_t> next_, prev_;
  int32_t head_ = 0, tail_ = 0;
  // The configuration: placed ops, the bounds of the known set, the register's value.
  std::vector<uint64_t> known_bits_;  // one spare word, so a window may end past the last op
  std::vector<uint64_t> unknown_bits_;
  uint32_t low_ = 0;
  int32_t high_ = -1;
  int32_t state_ = kAbsent;
  size_t placed_essential_ = 0;
  std::vector<int32_t> order_;  // op ids in the order placed
  std::vector<Frame> stack_;
  Scan scan_;
  ConfigMemo memo_;
  size_t deepest_placed_ = 0;
  int32_t deepest_state_ = kAbsent;
  std::vector<int32_t> deepest_order_;
};

// Why `op` cannot come next on a register holding `state`.
std::string WhyNot(const SubHistory& sub, const RegisterOp& op, int32_t state) {
  const std::string held = DescribeValue(sub.values[state]);
  int32_t next;
  if (Step(op, state, &next)) {
    if (!op.known && next == state) return "would change nothing";
    return fmt::format("would leave {}, from which nothing legal follows",
                       DescribeValue(sub.values[next]));
  }
  switch (op.kind) {
    case OpKind::kRead:
      return fmt::format("the register holds {}", held);
    case OpKind::kWrite:
      break;
    case OpKind::kCas:
      if (!op.known || op.applied) {
        return fmt::format("applying needs {}, but the register holds {}",
                           DescribeValue(sub.values[op.expected]), held);
      }
      if (state == op.expected) return fmt::format("the register holds {}, as expected", held);
      return fmt::format("it reported {}, but the register holds {}",
                         DescribeValue(sub.values[op.current]), held);
  }
  return "";
}

// Describes why the failing sub-history `prefix` (the prefix of `key`'s sub-history up to
// `cutoff`) has no legal order, from the deepest point `search` reached, and adds the ops named
// to `involved`.
std::string Explain(const History& history, const std::string& key, const SubHistory& prefix,
                    int64_t cutoff, const RegisterSearch& search, std::vector<size_t>* involved) {
  const size_t nk = prefix.known.size();
  auto op_of = [&](int32_t id) -> const RegisterOp& {
    return static_cast<size_t>(id) < nk ? prefix.known[id] : prefix.unknown[id - nk];
  };
  std::string out = fmt::format("key {}: not linearizable.\n", DescribeValue(key));

  // The ops whose return ends the prefix, and the ops running at the same time, by the times
  // recorded (the search may have narrowed them, see TightenUniqueValues).
  std::vector<size_t> last, concurrent;
  int64_t last_call = cutoff;
  for (const RegisterOp& op : prefix.known) {
    const Op& recorded = history.ops[op.index];
    if (recorded.outcome == Outcome::kOk && recorded.ret == cutoff) {
      last.push_back(op.index);
      last_call = std::min(last_call, recorded.call);
    }
  }
  for (const RegisterOp& op : prefix.known) {
    const Op& recorded = history.ops[op.index];
    if (recorded.outcome != Outcome::kOk || (recorded.ret != cutoff && recorded.ret >= last_call)) {
      concurrent.push_back(op.index);
    }
  }
  for (const RegisterOp& op : prefix.unknown) concurrent.push_back(op.index);
  std::sort(concurrent.begin(), concurrent.end());
  out += fmt::format("Shortest failing prefix: the key's history up to t={}, when {} returns:\n",
                     cutoff, last.size() == 1 ? "this op" : "these ops");
  for (size_t i : last) out += fmt::format("  {}\n", DescribeOp(history.ops[i], i));
  involved->insert(involved->end(), last.begin(), last.end());
  if (!concurrent.empty()) {
    out += "running concurrently with it, or with their outcome unknown at that time:\n";
    for (size_t k = 0; k < concurrent.size() && k < kExplainedConcurrent; ++k) {
      out += fmt::format("  {}\n", DescribeOp(history.ops[concurrent[k]], concurrent[k]));
      involved->push_back(concurrent[k]);
    }
    if (concurrent.size() > kExplainedConcurrent) {
      out += fmt::format("  ({} more)\n", concurrent.size() - kExplainedConcurrent);
    }
  }

  // The longest legal order found, and what stops it.
  std::vector<int32_t> order = search.deepest_order();
  int32_t state = search.deepest_state();
  size_t placed = 0;
  std::vector<bool> done_known(nk, false), done_unknown(prefix.unknown.size(), false);
  for (int32_t id : order) {
    if (static_cast<size_t>(id) < nk) {
      ++placed;
      done_known[id] = true;
    } else {
      done_unknown[id - nk] = true;
    }
  }
  // The search places absorbable writes only together with the blind write after them; show
  // those that are due (that return first among the ops left) as placed.
  while (true) {
    int32_t due = -1;
    for (size_t i = 0; i < nk; ++i) {
      if (!done_known[i] && (due < 0 || prefix.known[i].ret < prefix.known[due].ret)) {
        due = static_cast<int32_t>(i);
      }
    }
    if (due < 0 || !prefix.known[due].absorbable) break;
    order.push_back(due);
    done_known[due] = true;
    state = prefix.known[due].value;
    ++placed;
  }
  out += fmt::format("The longest legal order found places {} of its {} answered ops", placed, nk);
  if (order.empty()) {
    out += ".\n";
  } else {
    out += ":\n";
    if (order.size() > kExplainedTail) {
      out += fmt::format("  ({} earlier ops)\n", order.size() - kExplainedTail);
    }
    for (size_t k = order.size() > kExplainedTail ? order.size() - kExplainedTail : 0;
         k < order.size(); ++k) {
      const RegisterOp& op = op_of(order[k]);
      out += fmt::format("  {}\n", DescribeOp(history.ops[op.index], op.index));
      involved->push_back(op.index);
    }
  }
  out += fmt::format("after which the register holds {}, and no remaining op can come next:\n",
                     DescribeValue(prefix.values[state]));
  // The candidates: known ops called before the first return of an unplaced known op, and
  // unknown ops called by then.
  int64_t frontier = INT64_MAX;
  for (size_t i = 0; i < nk; ++i) {
    if (!done_known[i]) frontier = std::min(frontier, prefix.known[i].ret);
  }
  // Who wrote each value, to say where a value a read wanted came from.
  std::vector<std::vector<size_t>> writers(prefix.values.size());
  for (const auto* ops : {&prefix.known, &prefix.unknown}) {
    for (const RegisterOp& op : *ops) {
      if (op.kind == OpKind::kWrite || op.kind == OpKind::kCas)
        writers[op.value].push_back(op.index);
    }
  }
  for (size_t i = 0; i < nk; ++i) {
    const RegisterOp& op = prefix.known[i];
    if (done_known[i] || op.call > frontier) continue;
    out += fmt::format("  {}: {}\n", DescribeOp(history.ops[op.index], op.index),
                       WhyNot(prefix, op, state));
    involved->push_back(op.index);
    // The value it wanted, if one op wrote it.
    const int32_t wanted = op.kind == OpKind::kRead                 ? op.value
                           : op.kind == OpKind::kCas && op.applied  ? op.expected
                           : op.kind == OpKind::kCas && !op.applied ? op.current
                                                                    : kNotReported;
    if (wanted > kAbsent && wanted != state && writers[wanted].size() == 1) {
      const size_t w = writers[wanted].front();
      out += fmt::format("    ({} was written by {})\n", DescribeValue(prefix.values[wanted]),
                         DescribeOp(history.ops[w], w));
      involved->push_back(w);
    }
  }
  size_t unknown_listed = 0, unknown_left = 0;
  for (size_t i = 0; i < prefix.unknown.size(); ++i) {
    const RegisterOp& op = prefix.unknown[i];
    if (done_unknown[i] || op.call > frontier) continue;
    if (unknown_listed == kExplainedConcurrent) {
      ++unknown_left;
      continue;
    }
    ++unknown_listed;
    out += fmt::format("  {}: {}\n", DescribeOp(history.ops[op.index], op.index),
                       WhyNot(prefix, op, state));
  }
  if (unknown_left > 0) out += fmt::format("  ({} more with unknown outcome)\n", unknown_left);
  return out;
}

}  // namespace

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kLinearizable:
      return "linearizable";
    case Verdict::kNotLinearizable:
      return "not linearizable";
    case Verdict::kGaveUp:
      return "gave up (search budget exhausted)";
    case Verdict::kInvalidHistory:
      return "invalid history";
  }
  return "?";
}

CheckResult CheckLinearizable(const History& history, const CheckOptions& options) {
  CheckResult result;
  if (std::string invalid = ValidateHistory(history); !invalid.empty()) {
    result.verdict = Verdict::kInvalidHistory;
    result.explanation = invalid;
    return result;
  }
  std::map<std::string, std::vector<size_t>> by_key;
  for (size_t i = 0; i < history.ops.size(); ++i) by_key[history.ops[i].key].push_back(i);

  for (const auto& [key, indices] : by_key) {
    ++result.keys_checked;
    const SubHistory whole = BuildSubHistory(history, indices);
    // The sub-history (or a prefix of it) as searched.
    auto reduced = [&](SubHistory part) {
      if (options.exact_reductions) {
        TightenUniqueValues(&part);
        SetAsideUnobservedWrites(&part);
      }
      return part;
    };
    const SubHistory sub = reduced(whole);
    RegisterSearch search(sub, options.max_steps_per_key, options.exact_reductions,
                          /*record_deepest=*/false);
    const SearchOutcome outcome = search.Run();
    result.steps += search.steps();
    if (outcome == SearchOutcome::kGaveUp) {
      result.undecided_keys.push_back(key);
      continue;
    }
    if (outcome == SearchOutcome::kLinearizable) continue;
    result.failed_keys.push_back(key);
    if (result.failed_keys.size() > 1) continue;  // only the first failure is explained

    result.key = key;
    if (!options.explain) {
      result.explanation =
          fmt::format("key {}: not linearizable ({} ops).", DescribeValue(key), indices.size());
      continue;
    }
    // The shortest failing prefix, by binary search over the return times: a prefix that fails
    // makes every longer one fail. A prefix the budget ran out on counts as not failing. Index
    // cuts.size() stands for the whole sub-history, which is known to fail.
    std::vector<int64_t> cuts;
    for (const RegisterOp& op : whole.known) cuts.push_back(op.ret);
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    size_t lo = 0, hi = cuts.size();
    while (lo < hi) {
      const size_t mid = lo + (hi - lo) / 2;
      const SubHistory probed_prefix = reduced(Prefix(whole, cuts[mid]));
      RegisterSearch probe(probed_prefix, options.max_steps_per_key, options.exact_reductions,
                           /*record_deepest=*/false);
      const SearchOutcome probed = probe.Run();
      result.steps += probe.steps();
      if (probed == SearchOutcome::kNotLinearizable) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    const SubHistory prefix = hi < cuts.size() ? reduced(Prefix(whole, cuts[hi])) : sub;
    // The search is deterministic: on a sub-history it failed on, it fails again, this time
    // remembering how far it got.
    RegisterSearch deepest(prefix, options.max_steps_per_key, options.exact_reductions,
                           /*record_deepest=*/true);
    (void)deepest.Run();
    result.steps += deepest.steps();
    result.explanation = Explain(history, key, prefix, cuts[std::min(hi, cuts.size() - 1)], deepest,
                                 &result.involved);
    std::sort(result.involved.begin(), result.involved.end());
    result.involved.erase(std::unique(result.involved.begin(), result.involved.end()),
                          result.involved.end());
  }

  if (!result.failed_keys.empty()) {
    result.verdict = Verdict::kNotLinearizable;
  } else if (!result.undecided_keys.empty()) {
    result.verdict = Verdict::kGaveUp;
    result.key = result.undecided_keys.front();
    result.explanation = fmt::format(
        "key {}: no verdict within {} search steps; {} key(s) undecided.",
        DescribeValue(result.key), options.max_steps_per_key, result.undecided_keys.size());
  }
  return result;
}

}  // namespace cairn::checkers
