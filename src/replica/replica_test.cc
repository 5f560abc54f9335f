#include "replica/replica.h"

#include <chrono>
#include <string>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>

#include "tests/support/run_to_completion.h"
#include "tests/support/temp_dir.h"

namespace cairn::replica {
namespace {

using cairn::testing::TempDir;
using Clock = std::chrono::steady_clock;

class ReplicaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto e = storage::Engine::Open(storage::EngineOptions{.path = dir_.Sub("db"), .sync = false});
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
    replica_ = std::make_unique<Replica>(engine_.get(), pool_.get_executor());
  }
  void TearDown() override { pool_.join(); }

  // `count` values of 10 KiB in partition `partition` of keyspace 1.
  void Fill(uint32_t partition, int count) {
    std::vector<storage::WriteOp> ops;
    for (int i = 0; i < count; ++i) {
      storage::StoredValue value;
      value.version = Version{100, 1};
      value.value = std::string(10 << 10, static_cast<char>('a' + i % 26));
      ops.push_back(storage::WriteOp{
          storage::DataKey{partition, 1, "key" + std::to_string(1000 + i)}, std::move(value)});
    }
    auto applied = cairn::testing::RunToCompletion(replica_->Apply(std::move(ops)));
    ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  }

  // Streams partition `partition` of keyspace 1 in chunks of 128 KiB; the bytes served.
  asio::awaitable<size_t> StreamAll(uint32_t partition) {
    size_t bytes = 0;
    std::string after;
    while (true) {
      internode::StreamRequest request;
      request.set_partition(partition);
      request.set_keyspace(1);
      request.set_after(after);
      request.set_max_bytes(128 << 10);
      auto chunk = co_await replica_->StreamChunk(std::move(request));
      EXPECT_TRUE(chunk.ok()) << chunk.status().ToString();
      if (!chunk.ok()) co_return bytes;
      bytes += chunk->ByteSizeLong();
      if (chunk->done()) co_return bytes;
      after = chunk->last_key();
    }
  }

  TempDir dir_;
  std::unique_ptr<storage::Engine> engine_;
  asio::thread_pool pool_{1};
  std::unique_ptr<Replica> replica_;
};

// --stream-mb-per-s also bounds how fast a node serves the nodes streaming from it, every
// stream together: a leaving node is the source of every range it held at once. Only the lower
// bound on the time is checked (a slow machine only makes it longer).
TEST_F(ReplicaTest, ServesRangeChunksNoFasterThanItsStreamRate) {
  Fill(0, 110);  // over 1 MiB in each of two ranges
  Fill(1, 110);
  constexpr uint64_t kRate = 4 << 20;
  replica_->SetStreamServeRate(kRate);
  asio::io_context io;
  const auto start = Clock::now();
  auto first = asio::co_spawn(io, StreamAll(0), asio::use_future);
  auto second = asio::co_spawn(io, StreamAll(1), asio::use_future);
  io.run();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const size_t bytes = first.get() + second.get();
  EXPECT_GT(bytes, size_t{2} << 20);
  EXPECT_EQ(replica_->stream_bytes_served(), bytes);
  // The first chunk leaves at once; the rest at the rate, both streams sharing it.
  const double least = static_cast<double>(bytes - (160 << 10)) / kRate;
  EXPECT_GE(seconds, least) << bytes << " bytes served in " << seconds << " s";

  // Without a limit the same ranges are served as they are read.
  replica_->SetStreamServeRate(0);
  const auto again = Clock::now();
  auto all = asio::co_spawn(io, StreamAll(0), asio::use_future);
  io.restart();
  io.run();
  EXPECT_GT(all.get(), size_t{1} << 20);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - again).count(), least * 10);
}

// A chunk is held back 2 s at most, however far the rate is exceeded: many nodes streaming from
// one at a low rate must not time out (they wait 10 s for a chunk).
TEST_F(ReplicaTest, HoldsAServedChunkTwoSecondsAtMost) {
  Fill(2, 3);                             // 30 KiB: one chunk
  replica_->SetStreamServeRate(1 << 10);  // 30 s of budget per chunk
  asio::io_context io;
  const auto start = Clock::now();
  auto first = asio::co_spawn(io, StreamAll(2), asio::use_future);  // leaves at once
  auto second = asio::co_spawn(io, StreamAll(2), asio::use_future);
  io.run();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_GT(first.get(), size_t{30} << 10);
  EXPECT_GT(second.get(), size_t{30} << 10);
  EXPECT_GE(seconds, 1.9);
  EXPECT_LT(seconds, 8.0);  // not the 30 s the rate would ask for
}

}  // namespace
}  // namespace cairn::replica
