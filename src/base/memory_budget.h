// MemoryBudget bounds the memory clients make a node hold: bytes of requests read but not yet
// answered, and bytes of replies produced but not yet written to the client, summed over every
// connection of every front door on every reactor (cairnd --max-request-memory-mb). Each
// connection keeps its part in a MemoryShare, which gives it all back when the connection ends.
//
// What a front door does with it (docs/operations.md, "Limits"):
//  - back-pressure: a connection that has commands in flight or replies waiting stops reading
//    and stops starting the commands it has read while the node is over the budget or the
//    connection alone holds more than per_connection(). It resumes as its own replies are
//    written, so no cross-thread wake-up is needed.
//  - fairness: a connection with nothing in flight and nothing waiting (a client that waits for
//    its answers) is never paused, so clients that pipeline into a full budget, or never read,
//    cannot starve the others; it reads one chunk and runs its next command.
//  - refusal: the reply of a read that would take the node over the budget is replaced by a short
//    error (the client may retry; nothing was changed), unless it is small (kSmallReplyBytes).
//    A single request over per_connection() is refused with an error when its size is known.
//
// Thread safety: MemoryBudget may be used from any thread (relaxed atomics: the figure is a
// bound, not a synchronisation point). A MemoryShare belongs to its connection's reactor.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace cairn::base {

class MemoryBudget {
 public:
  // Replies up to this size are kept even over the budget: a connection holds at most a few of
  // them (it stops after its first while the budget is full), and refusing a PONG or an OK
  // would free nothing.
  static constexpr size_t kSmallReplyBytes = 1024;
  // A connection alone may hold this fraction of the budget.
  static constexpr size_t kConnectionShare = 8;

  explicit MemoryBudget(size_t limit_bytes)
      : limit_(limit_bytes), per_connection_(limit_bytes / kConnectionShare) {}

  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  size_t limit() const { return limit_; }
  // The most one connection may hold before it is paused, and the largest single request.
  size_t per_connection() const { return per_connection_; }
  size_t used() const { return used_.load(std::memory_order_relaxed); }
  bool over() const { return used() >= limit_; }

  void Charge(size_t n) { used_.fetch_add(n, std::memory_order_relaxed); }
  void Release(size_t n) { used_.fetch_sub(n, std::memory_order_relaxed); }
  // Charges `n` when the node stays within the budget with it; otherwise charges nothing, counts
  // a refusal and returns false. One atomic add (and a second to undo it when refused).
  bool TryCharge(size_t n) {
    const size_t before = used_.fetch_add(n, std::memory_order_relaxed);
    if (before + n <= limit_) return true;
    used_.fetch_sub(n, std::memory_order_relaxed);
    CountRefusal();
    return false;
  }

  // What a reply of a connection that has had none yet is expected to take: the last large reply
  // of the node, decaying. Updated rarely (only when a reply is much larger or smaller).
  size_t estimate() const { return estimate_.load(std::memory_order_relaxed); }
  void Learn(size_t reply_bytes) {
    const size_t e = estimate();
    if (reply_bytes > e || reply_bytes < e / 4) {
      estimate_.store(std::max(reply_bytes, e / 2), std::memory_order_relaxed);
    }
  }

  // Requests and replies refused for memory, since start (cairn_request_memory_refused_total).
  void CountRefusal() { refused_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }
  // Connections paused now because of the budget (cairn_request_memory_paused_connections).
  size_t paused() const { return paused_.load(std::memory_order_relaxed); }

 private:
  friend class MemoryShare;

  const size_t limit_;
  const size_t per_connection_;
  std::atomic<size_t> used_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<size_t> paused_{0};
  std::atomic<size_t> estimate_{0};
};

// One connection's part of a MemoryBudget. A null budget (internode connections, unit tests)
// makes every call free and every charge fit. Not thread safe: the connection's reactor only.
class MemoryShare {
 public:
  explicit MemoryShare(MemoryBudget* budget)
      : budget_(budget), per_connection_(budget != nullptr ? budget->per_connection() : 0) {}
  ~MemoryShare() {
    SetPaused(false);
    if (budget_ != nullptr && held_ > 0) budget_->Release(held_);
  }
  MemoryShare(const MemoryShare&) = delete;
  MemoryShare& operator=(const MemoryShare&) = delete;

  MemoryBudget* budget() const { return budget_; }
  size_t held() const { return held_; }

  // Bytes that are in memory already (read from the socket): always charged.
  void Charge(size_t n) {
    held_ += n;
    if (budget_ != nullptr) budget_->Charge(n);
  }
  void Release(size_t n) {
    n = std::min(n, held_);
    held_ -= n;
    if (budget_ != nullptr && n > 0) budget_->Release(n);
  }
  // Turns `from` held bytes (a request) into `to` (its reply) with one atomic operation. When
  // `may_refuse` and the reply is not small, it must fit the budget: false then, and nothing
  // changed (the caller replaces the reply with a short error and calls this again).
  bool Replace(size_t from, size_t to, bool may_refuse) {
    from = std::min(from, held_);
    if (to <= from) {
      Release(from - to);
      return true;
    }
    const size_t more = to - from;
    if (budget_ != nullptr) {
      if (may_refuse && to > MemoryBudget::kSmallReplyBytes) {
        if (!budget_->TryCharge(more)) return false;
      } else {
        budget_->Charge(more);
      }
    }
    held_ += more;
    return true;
  }

  // Reserves room for the reply of a read about to run, the size of which is known only once the
  // value is read (and held meanwhile): this connection's recent replies, else the node's. The
  // reservation is what the read's reply replaces (Replace(request + reservation, reply)).
  // `busy`: the connection has work outstanding, and was let through by MustWait(), so the
  // reservation is charged; an idle connection's must fit, else nothing is reserved and false
  // (the caller refuses the read). Small reservations always fit.
  // Small replies are not reserved (they always fit), which keeps small reads at one atomic
  // operation each (Replace).
  bool Reserve(bool busy, size_t* reserved) {
    *reserved = 0;
    if (budget_ == nullptr) return true;
    const size_t want = estimate_ > 0 ? estimate_ : budget_->estimate();
    if (want <= MemoryBudget::kSmallReplyBytes) return true;
    if (busy) {
      budget_->Charge(want);
    } else if (!budget_->TryCharge(want)) {
      return false;
    }
    held_ += want;
    *reserved = want;
    return true;
  }
  // A reply of `bytes` was produced: the estimate for the next (it follows growth at once, and
  // halves per reply when they shrink). The node's estimate hears of large ones only.
  void Learn(size_t bytes) {
    if (budget_ == nullptr) return;
    if (bytes > MemoryBudget::kSmallReplyBytes || estimate_ > MemoryBudget::kSmallReplyBytes) {
      budget_->Learn(bytes);
    }
    estimate_ = std::max(bytes, estimate_ / 2);
  }

  // Whether a connection that has work outstanding (commands in flight or replies waiting)
  // should wait for it before reading or starting more. An idle connection never waits.
  bool MustWait() const {
    return budget_ != nullptr && (held_ >= per_connection_ || budget_->over());
  }
  // Counts this connection in MemoryBudget::paused() while `yes`.
  void SetPaused(bool yes) {
    if (budget_ == nullptr || yes == paused_) return;
    paused_ = yes;
    if (yes) {
      budget_->paused_.fetch_add(1, std::memory_order_relaxed);
    } else {
      budget_->paused_.fetch_sub(1, std::memory_order_relaxed);
    }
  }

 private:
  MemoryBudget* const budget_;
  const size_t per_connection_;
  size_t held_ = 0;
  size_t estimate_ = 0;  // of the next reply; 0: none yet (the node's is used)
  bool paused_ = false;
};

}  // namespace cairn::base
