// kill -9 in the middle of a write load: every write the server acknowledged is there after
// the restart, with its value and its version. The kill point and the values come from the
// test's seed: CAIRN_SEED=N replays them (docs/testing.md).
#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "cairn/client.h"
#include "tests/harness/process.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"

namespace cairn::testing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr int kClients = 16;
constexpr int kWrites = 20'000;

TEST(CrashTest, AcknowledgedWritesSurviveKill9) {
  const TestSeed seed;
  std::mt19937_64 rng(seed.value());
  // Kill after somewhere between 10% and 90% of the writes were acknowledged.
  const int kill_after = kWrites / 10 + static_cast<int>(rng() % (kWrites * 8 / 10));
  std::cout << "kill -9 after " << kill_after << " acks\n";
  SCOPED_TRACE(fmt::format("kill after {} acks", kill_after));

  TempDir dir;
  auto started = CairndProcess::Start({.data_dir = dir.Sub("node")});
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  std::unique_ptr<CairndProcess> server = std::move(*started);

  struct Ack {
    std::string value;
    Version version;
  };
  std::map<std::string, Ack> acked;  // only touched on the io thread
  int attempted = 0, failed = 0, finished = 0;
  bool killed = false;

  asio::io_context io;
  ClientOptions options;
  options.servers = {server->address()};
  options.connections_per_server = 4;
  options.request_timeout = 5s;
  AsyncClient client(io.get_executor(), options);
  for (int c = 0; c < kClients; ++c) {
    asio::co_spawn(
        io,
        [&, c]() -> asio::awaitable<void> {
          std::mt19937_64 local(seed.value() + c);
          while (attempted < kWrites && !killed) {
            const int i = attempted++;
            const std::string key = fmt::format("crash:{:05}", i);
            const std::string value = fmt::format("value-{}-{}-{}", c, i, local());
            auto v = co_await client.Put(key, value);
            if (!v.ok()) {
              ++failed;  // only after the kill: the write may or may not have landed
              continue;
            }
            // The ack reached the client: this write must survive.
            acked[key] = Ack{value, *v};
            if (static_cast<int>(acked.size()) == kill_after && !killed) {
              killed = true;
              server->Kill9();
            }
          }
          if (++finished == kClients) client.Close();
        },
        asio::detached);
  }
  io.run();
  ASSERT_TRUE(killed) << "the server was never killed";
  EXPECT_GE(static_cast<int>(acked.size()), kill_after);
  std::cout << "acknowledged " << acked.size() << " writes before the kill; " << failed
            << " in flight failed\n";

  // Restart on the same data directory and read everything back.
  auto restarted = CairndProcess::Start({.data_dir = dir.Sub("node")});
  ASSERT_TRUE(restarted.ok()) << restarted.status().ToString();
  ClientOptions read_options;
  read_options.servers = {(*restarted)->address()};
  Client reader(read_options);
  std::vector<std::string> keys;
  int lost = 0, wrong = 0;
  auto check = [&] {
    auto got = reader.BatchGet(keys);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    for (size_t i = 0; i < keys.size(); ++i) {
      const Ack& want = acked[keys[i]];
      const auto& r = (*got)[i];
      if (!r.ok() || !r->has_value()) {
        ++lost;
        if (lost < 5) ADD_FAILURE() << "lost acknowledged write " << keys[i];
      } else if ((*r)->value != want.value || (*r)->version != want.version) {
        ++wrong;
        if (wrong < 5) ADD_FAILURE() << "wrong value or version for " << keys[i];
      }
    }
    keys.clear();
  };
  for (const auto& [key, ack] : acked) {
    keys.push_back(key);
    if (keys.size() == 1000) check();
  }
  check();
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(wrong, 0);
  // The restarted node issues versions above everything before the crash.
  Version newest;
  for (const auto& [key, ack] : acked) newest = std::max(newest, ack.version);
  auto after = reader.Put("after-crash", "x");
  ASSERT_TRUE(after.ok());
  EXPECT_GT(*after, newest);
}

}  // namespace
}  // namespace cairn::testing
