// Bad bytes on the native port: each gets a clear error or a closed connection, nothing is
// stored, and the server keeps serving everyone else.
#include <cstring>
#include <map>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "cairn/client.h"
#include "net/connection.h"
#include "net/frame.h"
#include "proto/native.pb.h"
#include "tests/harness/process.h"
#include "tests/support/socket_read.h"
#include "tests/support/temp_dir.h"

namespace cairn::testing {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = CairndProcess::Start(
        {.data_dir = dir_.Sub("node"), .extra_args = {"--max-value-bytes", "4096"}});
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    server_ = std::move(*p);
    auto where = net::ParseHostPort(server_->address());
    endpoint_ = tcp::endpoint(asio::ip::make_address(where->first), where->second);
    ClientOptions o;
    o.servers = {server_->address()};
    client_ = std::make_unique<Client>(o);
  }
  void TearDown() override {
    if (server_ && HasFailure()) std::cerr << "server log:\n" << server_->Log();
  }

  // A raw connection: writes `bytes`, then reads until EOF or `wait` passes.
  std::string Exchange(const std::string& bytes, std::chrono::milliseconds wait = 2s) {
    tcp::socket s(io_);
    s.connect(endpoint_);
    asio::write(s, asio::buffer(bytes));
    return ReadUntilClosed(s.native_handle(), wait).bytes;
  }

  static std::string Frame(uint64_t id, const wire::Request& request) {
    std::string out;
    net::AppendFrame(&out, id, request.SerializeAsString());
    return out;
  }

  // Decodes all complete response frames in `bytes`.
  static std::vector<std::pair<uint64_t, wire::Response>> Responses(const std::string& bytes) {
    std::vector<std::pair<uint64_t, wire::Response>> out;
    net::FrameDecoder d(64 << 20);
    size_t at = 0;
    while (true) {
      auto f = d.Next();
      if (!f.ok()) break;
      if (*f) {
        wire::Response r;
        r.ParseFromArray((*f)->payload.data(), static_cast<int>((*f)->payload.size()));
        out.emplace_back((*f)->request_id, r);
        continue;
      }
      if (at == bytes.size()) break;
      auto space = d.Prepare();
      const size_t n = std::min(space.size(), bytes.size() - at);
      std::memcpy(space.data(), bytes.data() + at, n);
      d.Commit(n);
      at += n;
    }
    return out;
  }

  void ExpectStillServing() {
    auto ping = client_->Ping();
    EXPECT_TRUE(ping.ok()) << ping.status().ToString();
  }

  TempDir dir_;
  std::unique_ptr<CairndProcess> server_;
  asio::io_context io_;
  tcp::endpoint endpoint_;
  std::unique_ptr<Client> client_;
};

TEST_F(BadInputTest, GarbageBytesGetTheConnectionClosed) {
  EXPECT_EQ(Exchange("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "");
  EXPECT_EQ(Exchange("*1\r\n$4\r\nPING\r\n"), "");
  std::string junk(10'000, '\0');
  for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>(i * 7919);
  EXPECT_EQ(Exchange(junk), "");
  ExpectStillServing();
}

TEST_F(BadInputTest, OversizedFrameGetsTooLargeThenClose) {
  std::string bytes(net::kNativePreamble);
  net::AppendFrameHeader(&bytes, 1, size_t{1} << 30);  // announces 1 GiB
  auto responses = Responses(Exchange(bytes));
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(responses[0].first, 0u);  // connection-level
  EXPECT_EQ(responses[0].second.error().code(), wire::TOO_LARGE);
  EXPECT_NE(responses[0].second.error().message().find("over the limit"), std::string::npos);
  ExpectStillServing();
}

TEST_F(BadInputTest, MalformedPayloadGetsAnErrorAndTheConnectionStaysUsable) {
  std::string bytes(net::kNativePreamble);
  net::AppendFrame(&bytes, 7, std::string("\xff\xff\xff\xff not protobuf", 17));
  wire::Request ping;
  ping.mutable_ping();
  bytes += Frame(8, ping);
  auto responses = Responses(Exchange(bytes, 500ms));
  ASSERT_EQ(responses.size(), 2u);
  std::map<uint64_t, wire::Response> by_id(responses.begin(), responses.end());
  EXPECT_EQ(by_id[7].error().code(), wire::INVALID_ARGUMENT);
  EXPECT_TRUE(by_id[8].has_ping());
}

TEST_F(BadInputTest, RequestsThatMakeNoSenseAreRejectedAndStoreNothing) {
  std::string bytes(net::kNativePreamble);
  wire::Request empty;  // no operation
  bytes += Frame(1, empty);
  wire::Request bad_level;
  bad_level.set_consistency(static_cast<wire::Consistency>(99));
  bad_level.mutable_get()->set_key("k");
  bytes += Frame(2, bad_level);
  wire::Request big_value;
  big_value.mutable_put()->set_key("big");
  big_value.mutable_put()->set_value(std::string(4097, 'x'));
  bytes += Frame(3, big_value);
  wire::Request big_key;
  big_key.mutable_put()->set_key(std::string(16 * 1024 + 1, 'k'));
  bytes += Frame(4, big_key);
  wire::Request unknown_keyspace;
  unknown_keyspace.set_keyspace("nosuch");
  unknown_keyspace.mutable_put()->set_key("k");
  bytes += Frame(5, unknown_keyspace);
  wire::Request cas_without_condition;
  cas_without_condition.mutable_cas()->set_key("k");
  cas_without_condition.mutable_cas()->set_new_value("v");
  bytes += Frame(6, cas_without_condition);
  wire::Request empty_key;
  empty_key.mutable_put();
  bytes += Frame(7, empty_key);

  auto responses = Responses(Exchange(bytes, 500ms));
  std::map<uint64_t, wire::Response> by_id(responses.begin(), responses.end());
  ASSERT_EQ(by_id.size(), 7u);
  EXPECT_EQ(by_id[1].error().code(), wire::INVALID_ARGUMENT);
  EXPECT_EQ(by_id[2].error().code(), wire::INVALID_ARGUMENT);
  EXPECT_EQ(by_id[3].error().code(), wire::TOO_LARGE);
  EXPECT_EQ(by_id[4].error().code(), wire::TOO_LARGE);
  EXPECT_EQ(by_id[5].error().code(), wire::INVALID_ARGUMENT);
  EXPECT_EQ(by_id[6].error().code(), wire::INVALID_ARGUMENT);
  EXPECT_EQ(by_id[7].error().code(), wire::INVALID_ARGUMENT);
  for (auto& [id, r] : by_id) EXPECT_FALSE(r.error().message().empty()) << id;
  EXPECT_FALSE(client_->Get("big")->has_value());
  EXPECT_TRUE(client_->Scan("")->entries.empty());
}

TEST_F(BadInputTest, ClientThatDisconnectsMidFrameHarmsNoOne) {
  for (int i = 0; i < 20; ++i) {
    tcp::socket s(io_);
    s.connect(endpoint_);
    std::string bytes(net::kNativePreamble);
    wire::Request put;
    put.mutable_put()->set_key("half");
    put.mutable_put()->set_value("written?");
    bytes += Frame(1, put);
    bytes.resize(bytes.size() - 4);  // cut before the end of the frame
    asio::write(s, asio::buffer(bytes));
    s.close();
  }
  ExpectStillServing();
  EXPECT_FALSE(client_->Get("half")->has_value());  // the cut request never ran
}

TEST_F(BadInputTest, ServerKeepsServingWhileBadClientsHammerIt) {
  std::atomic<bool> stop{false};
  std::thread hammer([&] {
    while (!stop) {
      try {
        asio::io_context io;
        tcp::socket s(io);
        s.connect(endpoint_);
        std::string bytes(net::kNativePreamble);
        net::AppendFrameHeader(&bytes, 1, 100);
        bytes += "short";
        asio::write(s, asio::buffer(bytes));
      } catch (...) {
      }
      std::this_thread::sleep_for(1ms);
    }
  });
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(client_->Put("k" + std::to_string(i), "v").ok());
  }
  stop = true;
  hammer.join();
  EXPECT_EQ(client_->Scan("k", ScanOptions())->entries.size(), 100u);  // default page size
}

}  // namespace
}  // namespace cairn::testing
