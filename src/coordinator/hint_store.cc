#include "coordinator/hint_store.h"

#include <fmt/format.h>

#include "base/async.h"
#include "base/endian.h"

namespace cairn::coordinator {
namespace {

std::string TargetPrefix(uint32_t target) {
  std::string out;
  base::PutBig32(&out, target);
  return out;
}

}  // namespace

HintStore::HintStore(storage::Engine* engine, base::HybridClock* clock, base::PhysicalClock* wall,
                     std::chrono::milliseconds window)
    : engine_(engine), clock_(clock), wall_(wall), window_(window) {}

Status HintStore::Load() {
  auto all = engine_->List(storage::Family::kHints, "", "", SIZE_MAX);
  if (!all.ok()) return all.status();
  std::lock_guard lock(mu_);
  pending_.clear();
  for (const auto& [key, value] : *all) {
    if (key.size() >= 4) ++pending_[base::GetBig32(key.data())];
  }
  return Status::Ok();
}

asio::awaitable<Status> HintStore::Add(uint32_t target,
                                       std::vector<internode::Mutation> mutations) {
  storage::WriteRequest request;
  for (const internode::Mutation& m : mutations) {
    // Key: target, then a timestamp of this node's clock (unique, and in creation order).
    std::string key = TargetPrefix(target);
    base::PutBig64(&key, clock_->Now());
    request.raw.push_back({storage::Family::kHints, std::move(key), m.SerializeAsString()});
  }
  const int64_t count = static_cast<int64_t>(mutations.size());
  // Counted before the write: the replayer (another reactor) may deliver and remove a hint
  // before this coroutine resumes, and must not drive the count below what is stored.
  Adjust(target, count);
  Status s = co_await base::AwaitCallback<Status>(
      [&](auto done) {
        engine_->Write(std::move(request), [done](Status s, std::vector<storage::WriteOutcome>) {
          done(std::move(s));
        });
      },
      Status::Timeout("the hint was not stored in time", 0));
  if (!s.ok() && s.code() != Code::kTimeout) Adjust(target, -count);
  co_return s;
}

Result<std::vector<HintStore::Hint>> HintStore::Next(uint32_t target, size_t max) {
  std::vector<Hint> out;
  std::vector<std::string> expired;
  std::string after;
  const uint64_t oldest_ms = wall_->NowMillis() - static_cast<uint64_t>(window_.count());
  while (out.size() < max) {
    auto batch = engine_->List(storage::Family::kHints, TargetPrefix(target), after, max);
    if (!batch.ok()) return batch.status();
    if (batch->empty()) break;
    for (auto& [key, value] : *batch) {
      after = key;
      const uint64_t created_ms = key.size() >= 12 ? (base::GetBig64(key.data() + 4) >> 16) : 0;
      Hint hint;
      if (created_ms < oldest_ms || !hint.mutation.ParseFromString(value)) {
        expired.push_back(key);
        continue;
      }
      hint.key = std::move(key);
      out.push_back(std::move(hint));
      if (out.size() == max) break;
    }
  }
  if (!expired.empty()) {
    storage::WriteRequest request;
    for (auto& key : expired) request.raw.push_back({storage::Family::kHints, key, std::nullopt});
    // Fire and forget: an expired hint that survives a crash is dropped again next time.
    engine_->Write(std::move(request), [](Status, std::vector<storage::WriteOutcome>) {});
    Adjust(target, -static_cast<int64_t>(expired.size()));
  }
  return out;
}

asio::awaitable<Status> HintStore::Remove(uint32_t target, std::vector<std::string> keys) {
  storage::WriteRequest request;
  for (auto& key : keys) {
    request.raw.push_back({storage::Family::kHints, std::move(key), std::nullopt});
  }
  const int64_t count = static_cast<int64_t>(request.raw.size());
  Status s = co_await base::AwaitCallback<Status>(
      [&](auto done) {
        engine_->Write(std::move(request), [done](Status s, std::vector<storage::WriteOutcome>) {
          done(std::move(s));
        });
      },
      Status::Timeout("removing delivered hints took too long", 0));
  if (s.ok()) Adjust(target, -count);
  co_return s;
}

void HintStore::Adjust(uint32_t target, int64_t delta) {
  std::lock_guard lock(mu_);
  uint64_t& n = pending_[target];
  n = delta < 0 ? n - std::min<uint64_t>(n, static_cast<uint64_t>(-delta)) : n + delta;
  if (n == 0) pending_.erase(target);
}

uint64_t HintStore::Pending(uint32_t target) const {
  std::lock_guard lock(mu_);
  auto it = pending_.find(target);
  return it == pending_.end() ? 0 : it->second;
}

uint64_t HintStore::TotalPending() const {
  std::lock_guard lock(mu_);
  uint64_t total = 0;
  for (const auto& [t, n] : pending_) total += n;
  return total;
}

std::map<uint32_t, uint64_t> HintStore::PendingByTarget() const {
  std::lock_guard lock(mu_);
  return pending_;
}

uint64_t HintStore::replayed() const {
  std::lock_guard lock(mu_);
  return replayed_;
}

void HintStore::CountReplayed(uint64_t n) {
  std::lock_guard lock(mu_);
  replayed_ += n;
}

}  // namespace cairn::coordinator
