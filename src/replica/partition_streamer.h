// The range-transfer primitive and the node's part in topology changes.
//
// The primitive: one (partition, keyspace) range, read in checksummed chunks from another
// replica (ReadStreamChunk on the source, the `stream` internode request) and applied here with
// last writer wins, the range's Paxos acceptor records merged (PaxosAcceptor::Absorb) and the
// progress recorded in the same atomic write, so a chunk is applied once and a stream resumes
// after its last applied chunk whatever process is killed. Streaming for topology changes uses
// it for whole ranges; repair will use it for the keys that differ.
//
// PartitionStreamer is this node's actor in a topology change (ARCHITECTURE.md section 6):
// - while the change is at write-both/read-old and the fence shows every live member writes to
//   both maps, it streams every range it gains from a quorum of the replicas that hold it (so
//   that no write acknowledged at QUORUM before the change is missed), throttled: the first in
//   full, the others reconciled by digest (TakeFrom), so that the range moves about once;
// - once the change reaches use-new (fenced), it deletes the ranges it no longer holds; after a
//   rollback, the ranges it had started to gain (writes planned with a target the change had
//   before another merged into it count as gained too);
// - it reports its progress in its gossip state, which the node driving the change reads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "cairn/status.h"
#include "cluster/gossiper.h"
#include "cluster/internode_client.h"
#include "proto/internode.pb.h"
#include "replica/replica.h"
#include "storage/engine.h"

namespace cairn::replica {

namespace asio = boost::asio;

// The checksum a stream chunk carries: xxh3 of its items and records, serialized, in order.
uint64_t StreamChecksum(const internode::StreamResponse& chunk);

// The source side: one chunk of a range, read from this node's engine. Blocking (run it on the
// blocking pool).
Result<internode::StreamResponse> ReadStreamChunk(const storage::Engine& engine,
                                                  const internode::StreamRequest& request);

struct StreamerOptions {
  StreamerOptions() = default;
  size_t chunk_bytes = size_t{1} << 20;
  // Bytes per second this node streams in, at most (0: no limit): --stream-mb-per-s.
  uint64_t bytes_per_second = uint64_t{64} << 20;
  std::chrono::milliseconds poll{500};
};

// What one stream (a range from one source) has applied, over every process that ran it.
struct StreamCounts {
  uint64_t chunks = 0;
  uint64_t bytes = 0;
};

// What PartitionStreamer has done for the change in progress (for gossip, metrics, `cairn node
// ops`).
struct StreamProgress {
  uint64_t transition = 0;
  bool planned = false;  // `total` is known
  uint32_t total = 0;    // ranges to stream in
  uint32_t done = 0;
  // Chunks and bytes applied for this change, those applied before a restart of this process
  // included (they are recorded with each range's progress): the finished streams' and the
  // current one's.
  uint64_t chunks = 0;
  uint64_t bytes = 0;
  // Bytes per second this process has streamed in for this change since its first chunk.
  uint64_t rate = 0;
  // The range streaming now, if one is.
  std::optional<internode::StreamingRange> current;
  internode::TransitionStage cleaned = internode::STAGE_NONE;
};

// Thread safety: Run() and the streams run on `executor`; Wake(), Report() and progress() may be
// called from any thread.
class PartitionStreamer {
 public:
  PartitionStreamer(storage::Engine* engine, cluster::Gossiper* gossiper,
                    cluster::InternodeClient* client, uint32_t self, StreamerOptions options,
                    asio::any_io_executor executor, asio::any_io_executor blocking);

  asio::awaitable<void> Run();
  void Stop();
  // A new topology epoch was adopted: look again now.
  void Wake();
  // Fills this node's gossip state with its progress.
  void Report(internode::NodeState* state) const;
  StreamProgress progress() const;
  // Bytes streamed in since start, over every change (for /metrics).
  uint64_t bytes_total() const { return bytes_total_.load(std::memory_order_relaxed); }
  // Bytes pulled by repair since start.
  uint64_t repair_bytes_total() const {
    return repair_bytes_total_.load(std::memory_order_relaxed);
  }

  // Repair's transfer: pulls the records of `keys` of one range from node `source` and applies
  // them here (last writer wins; Paxos acceptor records merged). Any thread; the node that runs
  // the repair paces it (not the streams' throttle).
  struct Pulled {
    uint32_t records = 0;
    uint64_t bytes = 0;
  };
  // A repair's pull request from the node running the repair: PullKeys on this streamer's
  // executor (its internode client belongs to that reactor), from any executor.
  asio::awaitable<Result<internode::RepairPullResponse>> HandleRepairPull(
      internode::RepairPullRequest request, base::Deadline deadline);
  asio::awaitable<Result<Pulled>> PullKeys(const std::string& source_address, uint32_t source,
                                           uint32_t partition, uint32_t keyspace,
                                           std::vector<std::string> keys, base::Deadline deadline);

 private:
  struct Task {
    uint32_t partition = 0;
    uint32_t keyspace = 0;
    std::vector<uint32_t> sources;  // node ids, live ones first
    uint32_t live = 0;              // live replicas of the range in the old map
  };
  // What the current state asks of this node.
  asio::awaitable<void> Step(std::shared_ptr<const cluster::Topology> topology);
  std::vector<Task> TasksOf(const cluster::Topology& topology) const;
  // One range from one source, resuming after its recorded progress; once done, what it applied
  // in all. `whole`: the range in full, in chunks; else (a further source of the quorum) the
  // source's Paxos acceptor records in full, then Reconcile(). A source found begun one way
  // after a restart goes on that way. Either way this node then holds all the source held.
  asio::awaitable<Result<StreamCounts>> TakeFrom(const cluster::Topology& topology,
                                                 uint64_t transition, const Task& task,
                                                 uint32_t source, bool whole);
  // One range from one source, as TakeFrom goes through it.
  struct RangeStream {
    std::string address;
    uint32_t source = 0;
    const Task& task;
    std::string key;  // of its progress record
    StreamCounts counts;
  };
  // The range's chunks after `after` (its acceptor records alone with `paxos_only`) until the
  // last, each applied with its progress.
  asio::awaitable<Status> StreamChunks(RangeStream& stream, std::string after, bool paxos_only);
  // Only the records the source holds newer than this node (or that this node lacks), found by
  // comparing the range's digests and the keys of the segments that differ.
  asio::awaitable<Result<StreamCounts>> Reconcile(RangeStream& stream);
  // The transfer of PullKeys, a page of keys per request and per write. With `stream` (a
  // reconciliation), each page also writes the stream's progress, counts as streamed bytes and
  // is throttled, and each request has its own ChunkDeadline() instead of `deadline`.
  asio::awaitable<Result<Pulled>> PullPages(const std::string& source_address, uint32_t source,
                                            uint32_t partition, uint32_t keyspace,
                                            std::vector<std::string> keys, base::Deadline deadline,
                                            RangeStream* stream);
  // Counts `bytes` streamed in (metrics, the rate in progress_).
  void Account(size_t bytes);
  // Shows the range streaming now, and what it has brought so far, in progress_.
  void ShowCurrent(const Task& task, uint32_t source, StreamCounts counts);
  // A stream request to node `source` at `address`, answered with a chunk whose checksum holds.
  asio::awaitable<Result<internode::StreamResponse>> Fetch(const std::string& address,
                                                           uint32_t source,
                                                           const internode::Request& request,
                                                           base::Deadline deadline);
  // How long a chunk may take to come.
  static base::Deadline ChunkDeadline();
  // Deletes the ranges this node holds copies of but no longer keeps: going forward, those the
  // old map or a target the change had before a merge gave it and the new map does not; after
  // a rollback, those the new map or an earlier target gave it and the old map does not.
  asio::awaitable<Status> Cleanup(const cluster::Topology& topology);
  // Applies one chunk of a range, with `progress` (a stream's resume point) in the same write.
  asio::awaitable<Status> ApplyChunk(uint32_t partition, uint32_t keyspace,
                                     internode::StreamResponse chunk,
                                     std::optional<storage::RawWrite> progress);
  asio::awaitable<void> Throttle(size_t bytes);

  // Constant after construction.
  storage::Engine* const engine_;
  cluster::Gossiper* const gossiper_;
  cluster::InternodeClient* const client_;
  const uint32_t self_;
  const StreamerOptions options_;
  const asio::any_io_executor executor_;
  const asio::any_io_executor blocking_;

  asio::steady_timer timer_;    // on executor_
  bool stopping_ = false;       // on executor_
  uint64_t reported_done_ = 0;  // on executor_: the change whose streams were logged as done
  std::chrono::steady_clock::time_point budget_start_;  // on executor_: throttle window
  uint64_t budget_bytes_ = 0;                           // on executor_

  std::atomic<uint64_t> bytes_total_{0};
  std::atomic<uint64_t> repair_bytes_total_{0};
  mutable std::mutex mu_;
  StreamProgress progress_;  // guarded by mu_
  // Guarded by mu_: the chunks and bytes of the streams finished in this Step() (progress_
  // shows them plus the current stream's), and the bytes this process streamed in for the
  // change since `rate_start` (for progress_.rate).
  StreamCounts finished_;
  std::optional<std::chrono::steady_clock::time_point> rate_start_;
  uint64_t rate_bytes_ = 0;
};

}  // namespace cairn::replica
