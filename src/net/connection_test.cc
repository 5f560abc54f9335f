#include "net/connection.h"

#include <atomic>
#include <functional>
#include <future>
#include <map>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <cstring>

#include "tests/support/options.h"
#include "tests/support/run_to_completion.h"
#include "tests/support/socket_read.h"
#include "tests/support/wait_until.h"

namespace cairn::net {
namespace {

using namespace std::chrono_literals;
using cairn::testing::CoWaitUntil;
using cairn::testing::RunToCompletion;
using cairn::testing::WaitUntil;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

// Answers each frame with its own payload. A payload "sleep:N" is answered after N ms.
class EchoServer {
 public:
  // `on_request` (optional) sees each request's payload as it arrives, on the server's thread.
  using OnRequest = std::function<void(EchoServer&, std::string_view payload)>;
  explicit EchoServer(ConnectionOptions options = {}, OnRequest on_request = nullptr)
      : options_(std::move(options)),
        on_request_(std::move(on_request)),
        acceptor_(io_, tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(io_, Accept(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~EchoServer() {
    io_.stop();
    thread_.join();
  }

  uint16_t port() const { return port_; }
  // Asks every connection to finish what is in flight and close (as at server shutdown).
  void StopReadingAll() {
    asio::post(io_, [this] {
      for (auto& weak : connections_) {
        if (auto c = weak.lock()) c->StopReading();
      }
    });
  }
  std::vector<Status> ended() {
    std::lock_guard lock(mu_);
    return ended_;
  }
  // Waits until `n` connections have ended.
  std::vector<Status> WaitEnded(size_t n) {
    EXPECT_OK(WaitUntil([&] { return ended().size() >= n; }, 5s,
                        fmt::format("{} connections to end", n)));
    return ended();
  }
  // How many "sleep:N" requests have been answered.
  int delayed_answers() const { return delayed_answers_; }
  // Whether a connection has stopped reading (backpressure). Asked on the server's thread.
  bool AnyReadingPaused() {
    std::promise<bool> paused;
    asio::post(io_, [&] {
      bool any = false;
      for (auto& weak : connections_) {
        if (auto c = weak.lock()) any = any || c->reading_paused();
      }
      paused.set_value(any);
    });
    return paused.get_future().get();
  }

 private:
  asio::awaitable<void> Accept() {
    while (true) {
      auto [ec, socket] = co_await acceptor_.async_accept(kNoThrow);
      if (ec) co_return;
      auto conn = std::make_shared<FrameConnection>(Stream(std::move(socket)), options_);
      connections_.push_back(conn);
      asio::co_spawn(io_, Serve(conn), asio::detached);
    }
  }

  asio::awaitable<void> Serve(std::shared_ptr<FrameConnection> conn) {
    auto on_frame = [this, conn](uint64_t id, std::string_view payload) {
      if (on_request_) on_request_(*this, payload);
      std::string body(payload);
      if (body.starts_with("big:")) {  // answer with that many bytes
        const size_t n = std::stoul(body.substr(4));
        conn->Send(id, n, [n](char* d) { std::memset(d, 'b', n); });
        return;
      }
      if (body.starts_with("sleep:")) {
        const int ms = std::stoi(body.substr(6));
        asio::co_spawn(
            io_,
            [this, conn, id, body, ms]() -> asio::awaitable<void> {
              asio::steady_timer t(co_await asio::this_coro::executor,
                                   std::chrono::milliseconds(ms));
              co_await t.async_wait(kNoThrow);
              conn->Send(id, body.size(),
                         [&](char* d) { std::memcpy(d, body.data(), body.size()); });
              ++delayed_answers_;
            },
            asio::detached);
        return;
      }
      conn->Send(id, body.size(), [&](char* d) { std::memcpy(d, body.data(), body.size()); });
    };
    auto on_error = [conn](const Status& s) {
      const std::string msg = s.ToString();
      conn->Send(0, msg.size(), [&](char* d) { std::memcpy(d, msg.data(), msg.size()); });
    };
    Status s = co_await conn->Run(on_frame, on_error);
    std::lock_guard lock(mu_);
    ended_.push_back(s);
  }

  const ConnectionOptions options_;
  const OnRequest on_request_;
  std::atomic<int> delayed_answers_{0};
  asio::io_context io_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Status> ended_;
  std::vector<std::weak_ptr<FrameConnection>> connections_;  // on io_ only
};

asio::awaitable<Result<std::shared_ptr<MuxConnection>>> Dial(uint16_t port) {
  ConnectionOptions options;
  co_return co_await MuxConnection::Connect(
      "127.0.0.1", port, std::move(options),
      [](std::string_view payload) { return Status::Unavailable(std::string(payload)); },
      base::Clock::now() + 2s);
}

asio::awaitable<Result<std::string>> Call(MuxConnection& c, std::string payload,
                                          std::chrono::milliseconds timeout = 2s) {
  co_return co_await c.Call(
      payload.size(), [&](char* d) { std::memcpy(d, payload.data(), payload.size()); },
      base::Clock::now() + timeout);
}

// Makes `n` concurrent calls of `payload(i)` on one connection to `server`, each checked to come
// back as sent, and returns how many were answered. The last call to end closes the connection
// (every call ends: at the latest at its deadline), so the io_context runs out of work.
int EchoCalls(const EchoServer& server, int n, std::function<std::string(int)> payload) {
  int answered = 0;
  RunToCompletion([&]() -> asio::awaitable<void> {
    auto conn = co_await Dial(server.port());
    EXPECT_TRUE(conn.ok()) << conn.status().ToString();
    if (!conn.ok()) co_return;
    auto c = *conn;
    auto ex = co_await asio::this_coro::executor;
    auto ended = std::make_shared<int>(0);
    for (int i = 0; i < n; ++i) {
      asio::co_spawn(
          ex,
          [c, n, sent = payload(i), &answered, ended]() -> asio::awaitable<void> {
            auto r = co_await Call(*c, sent);
            EXPECT_TRUE(r.ok()) << r.status().ToString();
            if (r.ok()) {
              EXPECT_EQ(*r, sent);
              ++answered;
            }
            if (++*ended == n) c->Close();
          },
          asio::detached);
    }
  }());
  return answered;
}

TEST(ConnectionTest, PipelinedCallsAreAnsweredInAnyOrder) {
  EchoServer server;
  // One call in ten answered late, the later the earlier it was sent.
  EXPECT_EQ(EchoCalls(server, 300,
                      [](int i) {
                        return i % 10 == 0 ? fmt::format("sleep:{}", 30 - i / 10)
                                           : fmt::format("p{}", i);
                      }),
            300);
}

TEST(ConnectionTest, DeadlineGivesTimeoutAndLateAnswerIsIgnored) {
  EchoServer server;
  RunToCompletion([&]() -> asio::awaitable<void> {
    auto c = *co_await Dial(server.port());
    // TIMEOUT, not the answer the server sends after 300 ms: the deadline ended the call.
    auto slow = co_await Call(*c, "sleep:300", 50ms);
    EXPECT_EQ(slow.status().code(), Code::kTimeout);
    // The connection stays usable; the late answer to the slow call goes nowhere. Once the server
    // has sent it, the next answer comes behind it on the stream.
    auto fast = co_await Call(*c, "hello");
    EXPECT_TRUE(fast.ok());
    EXPECT_OK(co_await CoWaitUntil([&] { return server.delayed_answers() == 1; }, 5s,
                                   "the server's late answer"));
    auto again = co_await Call(*c, "again");
    EXPECT_TRUE(again.ok());
    if (again.ok()) {
      EXPECT_EQ(*again, "again");
    }
    c->Close();
  }());
}

TEST(ConnectionTest, OversizedFrameGetsAnErrorFrameThenClose) {
  EchoServer server(ConnectionOptions{.max_payload = 1024});
  RunToCompletion([&]() -> asio::awaitable<void> {
    auto c = *co_await Dial(server.port());
    auto big = co_await Call(*c, std::string(2000, 'x'));
    EXPECT_FALSE(big.ok());
    auto next = co_await Call(*c, "small");
    EXPECT_EQ(next.status().code(), Code::kUnavailable);
    EXPECT_NE(next.status().message().find("over the limit"), std::string::npos)
        << next.status().ToString();
  }());
  auto ended = server.WaitEnded(1);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].code(), Code::kTooLarge);
}

// A raw client that writes `bytes`, optionally half-closes, and reads until the server closes
// the connection or `wait` passes.
cairn::testing::SocketRead RawExchange(uint16_t port, std::string bytes, bool half_close,
                                       std::chrono::milliseconds wait = 5s) {
  asio::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::address_v4::loopback(), port));
  asio::write(s, asio::buffer(bytes));
  if (half_close) s.shutdown(tcp::socket::shutdown_send);
  return cairn::testing::ReadUntilClosed(s.native_handle(), wait);
}

TEST(ConnectionTest, UnknownPreambleIsClosedWithoutAnswer) {
  EchoServer server;
  const auto got = RawExchange(server.port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n", false);
  EXPECT_TRUE(got.closed);
  EXPECT_EQ(got.bytes, "");
  auto ended = server.WaitEnded(1);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].code(), Code::kInvalidArgument);
}

TEST(ConnectionTest, DisconnectMidFrameIsNoticedAndOthersKeepWorking) {
  EchoServer server;
  std::string partial(kNativePreamble);
  AppendFrame(&partial, 1, "this frame will be cut");
  partial.resize(partial.size() - 5);
  const auto got = RawExchange(server.port(), partial, true);
  EXPECT_TRUE(got.closed);
  EXPECT_EQ(got.bytes, "");
  auto ended = server.WaitEnded(1);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_NE(ended[0].message().find("middle of a frame"), std::string::npos);
  RunToCompletion([&]() -> asio::awaitable<void> {
    auto c = *co_await Dial(server.port());
    auto r = co_await Call(*c, "still serving");
    EXPECT_TRUE(r.ok());
    c->Close();
  }());
}

TEST(ConnectionTest, HalfClosedPeerStillGetsItsAnswers) {
  EchoServer server;
  std::string bytes(kNativePreamble);
  AppendFrame(&bytes, 1, "sleep:20");
  AppendFrame(&bytes, 2, "two");
  AppendFrame(&bytes, 3, "three");
  const std::string got = RawExchange(server.port(), bytes, true).bytes;
  FrameDecoder d(1024);
  auto space = d.Prepare();
  ASSERT_GE(space.size(), got.size());
  std::memcpy(space.data(), got.data(), got.size());
  d.Commit(got.size());
  std::map<uint64_t, std::string> answers;
  while (true) {
    auto f = d.Next();
    ASSERT_TRUE(f.ok());
    if (!*f) break;
    answers[(*f)->request_id] = std::string((*f)->payload);
  }
  EXPECT_EQ(answers, (std::map<uint64_t, std::string>{{1, "sleep:20"}, {2, "two"}, {3, "three"}}));
}

TEST(ConnectionTest, BackpressureResumesReading) {
  EchoServer server(ConnectionOptions{.max_inflight = 4});
  EXPECT_EQ(EchoCalls(server, 64, [](int) { return std::string("sleep:5"); }), 64);
}

TEST(ConnectionTest, GracefulCloseAnswersRequestsInFlight) {
  // The server is told to close the moment "sleep:50" arrives: it is then in flight.
  EchoServer server({}, [](EchoServer& self, std::string_view payload) {
    if (payload == "sleep:50") self.StopReadingAll();
  });
  RunToCompletion([&]() -> asio::awaitable<void> {
    auto c = *co_await Dial(server.port());
    auto slow = co_await Call(*c, "sleep:50");
    EXPECT_TRUE(slow.ok()) << slow.status().ToString();
    // Then the server closes: the connection breaks.
    EXPECT_OK(co_await CoWaitUntil([&] { return c->broken(); }, 5s,
                                   "the server to close the connection"));
    c->Close();  // if it did not, so that the io_context ends
  }());
}

// A client that stops reading its answers makes the server stop reading its requests; once the
// client reads again, the server must resume, also when nothing is left in flight.
TEST(ConnectionTest, OutputBackpressureResumesReading) {
  EchoServer server(ConnectionOptions{.max_buffered_output = 256 << 10});
  asio::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::address_v4::loopback(), server.port()));
  std::string bytes(kNativePreamble);
  // 20 MB of answers: more than the kernel's socket buffers take, now that the server stops
  // handling the frames it has read, not only reading, while its output backs up.
  for (uint64_t id = 1; id <= 200; ++id) AppendFrame(&bytes, id, "big:100000");
  asio::write(s, asio::buffer(bytes));
  // Not reading: the server's output backs up, and it stops reading.
  ASSERT_OK(WaitUntil([&] { return server.AnyReadingPaused(); }, 5s,
                      "the server to stop reading while its answers back up"));
  // Reads until `want` whole frames arrived (or 5 s passed); returns how many did.
  auto read_frames = [&](size_t want) {
    FrameDecoder d(1 << 20);
    size_t got = 0, decoded = 0;  // frames; bytes fed to the decoder
    cairn::testing::ReadUntil(s.native_handle(), 5s, [&](const std::string& bytes) {
      while (decoded < bytes.size()) {
        auto space = d.Prepare();
        const size_t n = std::min(space.size(), bytes.size() - decoded);
        std::memcpy(space.data(), bytes.data() + decoded, n);
        d.Commit(n);
        decoded += n;
        for (auto f = d.Next(); f.ok() && *f; f = d.Next()) ++got;
      }
      return got >= want;
    });
    return got;
  };
  EXPECT_EQ(read_frames(200), 200u);
  std::string last;
  AppendFrame(&last, 201, "after the backlog");
  asio::write(s, asio::buffer(last));
  EXPECT_EQ(read_frames(1), 1u);
}

TEST(ConnectionTest, FrameThatNeverCompletesIsCutOff) {
  EchoServer server(ConnectionOptions{.frame_timeout = 200ms});
  std::string partial(kNativePreamble);
  AppendFrameHeader(&partial, 1, 1000);
  partial += "only a little";
  // Closed by the 200 ms frame timeout (the default is 30 s), with no answer.
  const auto got = RawExchange(server.port(), partial, false, 3s);
  EXPECT_TRUE(got.closed) << "not closed within 3 s";
  EXPECT_EQ(got.bytes, "");
  auto ended = server.WaitEnded(1);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_NE(ended[0].message().find("in time"), std::string::npos) << ended[0].ToString();
}

TEST(ConnectionTest, ConnectToClosedPortIsUnavailable) {
  uint16_t port;
  {
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    port = a.local_endpoint().port();
  }
  RunToCompletion([&]() -> asio::awaitable<void> {
    auto c = co_await Dial(port);
    EXPECT_EQ(c.status().code(), Code::kUnavailable);
  }());
}

TEST(ParseHostPortTest, AcceptsHostsAndRejectsGarbage) {
  auto a = ParseHostPort("127.0.0.1:7400");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->first, "127.0.0.1");
  EXPECT_EQ(a->second, 7400);
  EXPECT_EQ(ParseHostPort("[::1]:80")->first, "::1");
  EXPECT_EQ(ParseHostPort("localhost:0")->second, 0);
  for (const char* bad : {"", "7400", "host:", ":80", "h:99999", "h:8a", "[::1]80", "[::1]:"}) {
    EXPECT_FALSE(ParseHostPort(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace cairn::net
