// Hinted handoff: mutations for replicas that were down or did not answer, kept durably on the
// coordinator (the `hints` column family) and replayed when the replica is UP again.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "base/hlc.h"
#include "cairn/status.h"
#include "proto/internode.pb.h"
#include "storage/engine.h"

namespace cairn::coordinator {

namespace asio = boost::asio;

// Thread safety: all methods may be called from any thread; Add() and Remove() never block (the
// engine's group commit does the writing).
class HintStore {
 public:
  struct Hint {
    std::string key;  // its key in the hints column family
    internode::Mutation mutation;
  };

  // Hints older than `window` are dropped instead of replayed (the replica is then repaired by
  // anti-entropy, later work).
  HintStore(storage::Engine* engine, base::HybridClock* clock, base::PhysicalClock* wall,
            std::chrono::milliseconds window);

  // Counts the hints already stored (at start-up).
  Status Load();

  // Durably records `mutations` for `target`.
  asio::awaitable<Status> Add(uint32_t target, std::vector<internode::Mutation> mutations);

  // The oldest hints for `target`, at most `max`. Expired hints met on the way are deleted.
  Result<std::vector<Hint>> Next(uint32_t target, size_t max);

  // Deletes delivered hints.
  asio::awaitable<Status> Remove(uint32_t target, std::vector<std::string> keys);

  uint64_t Pending(uint32_t target) const;
  uint64_t TotalPending() const;
  std::map<uint32_t, uint64_t> PendingByTarget() const;  // targets with hints only
  uint64_t replayed() const;
  void CountReplayed(uint64_t n);

 private:
  void Adjust(uint32_t target, int64_t delta);

  storage::Engine* const engine_;
  base::HybridClock* const clock_;
  base::PhysicalClock* const wall_;
  const std::chrono::milliseconds window_;

  mutable std::mutex mu_;
  std::map<uint32_t, uint64_t> pending_;  // guarded by mu_
  uint64_t replayed_ = 0;                 // guarded by mu_
};

}  // namespace cairn::coordinator
