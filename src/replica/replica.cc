#include "replica/replica.h"

#include "replica/partition_streamer.h"
#include "replica/range_repair.h"

#include <boost/asio/post.hpp>

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
  co_return co_await base::AwaitCallback<Result<internode::StreamResponse>>(
      [&](auto done) {
        asio::post(blocking_, [this, request = std::move(request), done] {
          done(ReadStreamChunk(*engine_, request));
        });
      },
      Status::Timeout("the range read did not finish in time", 0));
}

asio::awaitable<Result<internode::DigestResponse>> Replica::Digest(uint32_t partition,
                                                                   uint32_t keyspace) {
  co_return co_await base::AwaitCallback<Result<internode::DigestResponse>>(
      [&](auto done) {
        asio::post(blocking_, [this, partition, keyspace, done] {
          done(ReadDigest(*engine_, partition, keyspace));
        });
      },
      Status::Timeout("the range digest did not finish in time", 0));
}

asio::awaitable<Result<uint64_t>> Replica::Purge(uint32_t partition, uint32_t keyspace,
                                                 uint64_t horizon_ms, uint64_t now_ms) {
  co_return co_await base::AwaitCallback<Result<uint64_t>>(
      [&](auto done) {
        asio::post(blocking_, [this, partition, keyspace, horizon_ms, now_ms, done] {
          done(PurgeRange(*engine_, partition, keyspace, horizon_ms, now_ms));
        });
      },
      Status::Timeout("the purge did not finish in time", 0));
}

asio::awaitable<Result<internode::RangeKeysResponse>> Replica::RangeKeys(
    internode::RangeKeysRequest request) {
  co_return co_await base::AwaitCallback<Result<internode::RangeKeysResponse>>(
      [&](auto done) {
        asio::post(blocking_, [this, request = std::move(request), done] {
          done(ReadRangeKeys(*engine_, request));
        });
      },
      Status::Timeout("listing the range's keys did not finish in time", 0));
}

}  // namespace cairn::replica
