#include "replica/replica.h"

#include <algorithm>

#include "replica/partition_streamer.h"
#include "replica/range_repair.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/async.h"

namespace cairn::replica {

using storage::WriteOutcome;

asio::awaitable<Result<std::vector<WriteOutcome>>> Replica::Apply(std::vector<storage::WriteOp> ops,
                                                                  base::Deadline deadline) {
  storage::WriteRequest request;
  request.ops = std::move(ops);
  auto start = [&](auto done) {
    engine_->Write(std::move(request), [done](Status s, std::vector<WriteOutcome> outcomes) {
      if (s.ok()) {
        done(std::move(outcomes));
      } else {
        done(std::move(s));
      }
    });
  };
  Status late =
      Status::Timeout("the write was not acknowledged before the deadline; it may still apply", 0);
  if (deadline == base::Deadline::max()) {
    co_return co_await base::AwaitCallback<Result<std::vector<WriteOutcome>>>(start, late);
  }
  co_return co_await base::AwaitCallbackUntil<Result<std::vector<WriteOutcome>>>(start, late,
                                                                                 deadline);
}

void Replica::ApplyThen(std::vector<storage::WriteOp> ops, asio::any_io_executor executor,
                        std::function<void(Status)> done) {
  storage::WriteRequest request;
  request.ops = std::move(ops);
  engine_->Write(std::move(request), [executor = std::move(executor), done = std::move(done)](
                                         Status s, std::vector<WriteOutcome>) mutable {
    asio::post(executor, [done = std::move(done), s = std::move(s)] { done(s); });
  });
}

asio::awaitable<Result<storage::ScanResult>> Replica::Scan(ScanArgs args) {
  co_return co_await base::AwaitCallback<Result<storage::ScanResult>>(
      [&](auto done) {
        asio::post(blocking_, [this, args = std::move(args), done] {
          done(engine_->Scan(args.keyspace, args.partitions, args.prefix, args.after, args.limit,
                             args.max_dead, args.max_bytes));
        });
      },
      Status::Timeout("the scan did not finish before the deadline", 0));
}

asio::awaitable<Result<internode::StreamResponse>> Replica::StreamChunk(
    internode::StreamRequest request) {
  // Named first: g++ 12 destroys a temporary closure in a co_await statement twice.
  const bool range = request.keys_size() == 0;
  auto work = [this, request = std::move(request)] { return ReadStreamChunk(*engine_, request); };
  auto chunk = co_await OnBlocking<internode::StreamResponse>(
      std::move(work), "the range read did not finish in time");
  if (chunk.ok() && range) {
    const size_t bytes = chunk->ByteSizeLong();
    chunks_served_.fetch_add(1, std::memory_order_relaxed);
    bytes_served_.fetch_add(bytes, std::memory_order_relaxed);
    if (const auto delay = ServeDelay(bytes); delay > std::chrono::steady_clock::duration::zero()) {
      asio::steady_timer hold(co_await asio::this_coro::executor, delay);
      co_await hold.async_wait(base::kNoThrow);
    }
  }
  co_return chunk;
}

namespace {

// The longest a served chunk is held back for the stream rate (see Replica::ServeDelay); well
// under the 10 s a node streaming in waits for a chunk.
constexpr std::chrono::steady_clock::duration kMaxServeHold = std::chrono::seconds(2);

}  // namespace

std::chrono::steady_clock::duration Replica::ServeDelay(size_t bytes) {
  const uint64_t rate = serve_rate_.load(std::memory_order_relaxed);
  if (rate == 0) return std::chrono::steady_clock::duration::zero();
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(serve_mu_);
  // A chunk leaves when the ones before it have used their share of the rate; it then uses
  // bytes / rate of it. A node that served nothing for a while starts afresh (no saved burst).
  // No chunk is held longer than kMaxServeHold: with many nodes streaming from this one at a low
  // rate, the rate is then exceeded rather than the receivers' requests timing out.
  const auto leaves = std::clamp(serve_free_, now, now + kMaxServeHold);
  serve_free_ =
      leaves +
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::duration<double>(static_cast<double>(bytes) / static_cast<double>(rate)));
  return leaves - now;
}

Result<internode::DigestResponse> Replica::Digest(uint32_t partition, uint32_t keyspace,
                                                  bool root_only) const {
  return ReadDigest(*engine_, partition, keyspace, root_only);
}

asio::awaitable<Result<uint64_t>> Replica::Purge(uint32_t partition, uint32_t keyspace,
                                                 uint64_t horizon_ms, uint64_t now_ms) {
  auto work = [this, partition, keyspace, horizon_ms, now_ms] {
    return PurgeRange(*engine_, partition, keyspace, horizon_ms, now_ms);
  };
  co_return co_await OnBlocking<uint64_t>(std::move(work), "the purge did not finish in time");
}

asio::awaitable<Result<internode::RangeKeysResponse>> Replica::RangeKeys(
    internode::RangeKeysRequest request) {
  auto work = [this, request = std::move(request)] { return ReadRangeKeys(*engine_, request); };
  co_return co_await OnBlocking<internode::RangeKeysResponse>(
      std::move(work), "listing the range's keys did not finish in time");
}

asio::awaitable<Result<storage::Engine::FileCheck>> Replica::ScrubFile(
    storage::Engine::TableFile file) {
  auto work = [this, file = std::move(file)] { return engine_->ScrubFile(file); };
  co_return co_await OnBlocking<storage::Engine::FileCheck>(std::move(work),
                                                            "the scrub did not finish in time");
}

asio::awaitable<Result<Replica::Compacted>> Replica::Compact() {
  auto work = [this]() -> Result<Compacted> {
    Compacted c;
    c.bytes_before = engine_->DiskBytes();
    const auto start = base::Clock::now();
    if (Status s = engine_->CompactAll(); !s.ok()) return s;
    c.took = std::chrono::duration_cast<std::chrono::milliseconds>(base::Clock::now() - start);
    c.bytes_after = engine_->DiskBytes();
    return c;
  };
  co_return co_await OnBlocking<Compacted>(std::move(work),
                                           "the compaction did not finish in time");
}

}  // namespace cairn::replica
