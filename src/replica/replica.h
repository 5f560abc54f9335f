// The replica side of the data path: applies mutations (last writer wins, group-committed) and
// serves reads and scans of the partitions this node holds. Coordinators call it directly when
// they are a replica themselves; in a cluster, peers reach it through internode messaging.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>

#include "base/async.h"
#include "base/hlc.h"
#include "cairn/status.h"
#include "replica/condition.h"
#include "replica/paxos_acceptor.h"
#include "storage/engine.h"

namespace cairn::replica {

namespace asio = boost::asio;

// Thread safety: all methods may be called from any reactor.
class Replica {
 public:
  // `blocking` runs work that may block (scans); it must outlive the replica.
  Replica(storage::Engine* engine, asio::any_io_executor blocking)
      : engine_(engine), blocking_(std::move(blocking)), paxos_(engine) {}

  // This node's Paxos acceptor (for the coordinator here and for other nodes' proposers).
  PaxosAcceptor& paxos() { return paxos_; }

  // The stored version of a key, tombstones and expired values included. A point read is short
  // (bloom filter, block cache), so it runs on the caller's thread.
  Result<std::optional<storage::StoredValue>> Read(const storage::DataKey& key) const {
    return engine_->Get(key);
  }

  // Applies `ops` durably (fsynced, unless the engine was opened without sync). When `deadline`
  // passes or the waiting coroutine is cancelled first, returns TIMEOUT: the ops may still apply.
  asio::awaitable<Result<std::vector<storage::WriteOutcome>>> Apply(
      std::vector<storage::WriteOp> ops, base::Deadline deadline = base::Deadline::max());

  // Apply() without a coroutine, for a coordinator that is itself a replica: `done` runs on
  // `executor` with the outcome once the ops are durable (or failed). No deadline: the caller's
  // wait has its own.
  void ApplyThen(std::vector<storage::WriteOp> ops, asio::any_io_executor executor,
                 std::function<void(Status)> done);

  struct ScanArgs {
    uint32_t keyspace = 0;
    std::vector<uint32_t> partitions;
    std::string prefix;
    std::string after;
    size_t limit = 100;
    size_t max_dead = 1000;
    size_t max_bytes = SIZE_MAX;
  };
  // A merged, key-ordered page over the given partitions (see storage::Engine::Scan), computed
  // on the blocking executor.
  asio::awaitable<Result<storage::ScanResult>> Scan(ScanArgs args);

  // One chunk of a (partition, keyspace) range for another node (the range-transfer primitive,
  // partition_streamer.h), read on the blocking executor.
  asio::awaitable<Result<internode::StreamResponse>> StreamChunk(internode::StreamRequest request);
  // Limits how fast this node serves range chunks to nodes streaming from it, all streams
  // together (0: no limit; --stream-mb-per-s, which limits streaming in as well): a node that
  // leaves serves every range it held at once, to every node that takes one. A chunk is held
  // back 2 s at most, so that many receivers at a low rate do not time out waiting.
  void SetStreamServeRate(uint64_t bytes_per_second) {
    serve_rate_.store(bytes_per_second, std::memory_order_relaxed);
  }
  // The range chunks (not repair's key lists) this node has served since start, and their bytes.
  uint64_t stream_chunks_served() const { return chunks_served_.load(std::memory_order_relaxed); }
  uint64_t stream_bytes_served() const { return bytes_served_.load(std::memory_order_relaxed); }

  // Repair's comparison (range_repair.h): a range's digest (the engine's maintained tree: cheap,
  // on the caller's thread), and the keys and versions of some of its segments (a range read, on
  // the blocking executor).
  Result<internode::DigestResponse> Digest(uint32_t partition, uint32_t keyspace,
                                           bool root_only) const;
  asio::awaitable<Result<internode::RangeKeysResponse>> RangeKeys(
      internode::RangeKeysRequest request);

  // Scrubbing (Engine::DataFiles, Engine::ScrubFile): each file is checked, and dropped if
  // corrupt, on the blocking executor; the caller paces them and repairs the ranges dropped.
  std::vector<storage::Engine::TableFile> DataFiles() const { return engine_->DataFiles(); }
  asio::awaitable<Result<storage::Engine::FileCheck>> ScrubFile(storage::Engine::TableFile file);
  uint64_t corruptions_seen() const { return engine_->corruptions_seen(); }

  // Compacts the data (Engine::CompactAll) on the blocking executor: `cairn compact`.
  struct Compacted {
    uint64_t bytes_before = 0, bytes_after = 0;  // Engine::DiskBytes()
    std::chrono::milliseconds took{0};
  };
  asio::awaitable<Result<Compacted>> Compact();

  // Purges the range's tombstones gone before `horizon_ms` (range_repair.h: PurgeRange), on the
  // blocking executor.
  asio::awaitable<Result<uint64_t>> Purge(uint32_t partition, uint32_t keyspace,
                                          uint64_t horizon_ms, uint64_t now_ms);

  storage::Engine* engine() const { return engine_; }

 private:
  // Runs `work` (returning Result<T>) on the blocking executor and waits for it.
  template <typename T, typename Work>
  asio::awaitable<Result<T>> OnBlocking(Work work, const char* too_long) {
    co_return co_await base::AwaitCallback<Result<T>>(
        [&](auto done) {
          asio::post(blocking_, [work = std::move(work), done]() mutable { done(work()); });
        },
        Status::Timeout(too_long, 0));
  }

  // How long to hold a served chunk of `bytes` so that chunks leave at serve_rate_ at most.
  std::chrono::steady_clock::duration ServeDelay(size_t bytes);

  storage::Engine* const engine_;
  const asio::any_io_executor blocking_;
  std::atomic<uint64_t> serve_rate_{0};  // bytes per second; 0: no limit
  std::mutex serve_mu_;
  // When the chunks already served (or held back) will have used up the rate: the next one leaves
  // then, or now if that is past. Guarded by serve_mu_.
  std::chrono::steady_clock::time_point serve_free_;
  PaxosAcceptor paxos_;
  std::atomic<uint64_t> chunks_served_{0};
  std::atomic<uint64_t> bytes_served_{0};
};

}  // namespace cairn::replica
