// TLS on every door and between nodes (docs/security.md): a three-node cluster whose ports speak
// TLS only and whose nodes authenticate each other with certificates of one cluster CA. The C++
// client, redis-cli --tls and curl --cacert work against it; plain TCP clients are closed without
// hurting the node; a node with a certificate of another CA cannot join; SIGHUP reloads the
// certificate for new connections while open ones go on; bad files at start or reload are refused
// with the file and the reason.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/async.h"
#include "cairn/client.h"
#include "net/connection.h"
#include "net/tls.h"
#include "tests/harness/process.h"
#include "tests/support/options.h"
#include "tests/support/run_to_completion.h"
#include "tests/support/socket_read.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace cairn::testing {
namespace {

using namespace std::chrono_literals;

const std::string kCertScript = std::string(CAIRN_SOURCE_DIR) + "/scripts/tls-certs";

// Makes DIR/ca.crt (once) and DIR/NAME.crt + DIR/NAME.key for each name.
Status MakeCerts(const std::string& dir, const std::vector<std::string>& names) {
  std::vector<std::string> argv = {"/bin/bash", kCertScript, dir};
  argv.insert(argv.end(), names.begin(), names.end());
  CommandResult r = RunCommand(argv, "", 60s);
  if (r.exit_code != 0) return Status::Internal("tls-certs failed: " + r.err);
  return Status::Ok();
}

// A program's path when it is installed, else "".
std::string Program(const std::string& name) {
  for (const char* dir : {"/usr/bin/", "/bin/", "/usr/local/bin/"}) {
    const std::string path = std::string(dir) + name;
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

// The serial number of the certificate the server at `address` presents to a new connection.
Result<std::string> ServedSerial(const std::string& address, const std::string& ca) {
  const std::string openssl = Program("openssl");
  if (openssl.empty()) return Status::FailedPrecondition("openssl is not installed");
  CommandResult r = RunCommand(
      {"/bin/bash", "-c",
       fmt::format("{0} s_client -connect {1} -CAfile {2} -verify_return_error < /dev/null "
                   "2> /dev/null | {0} x509 -noout -serial",
                   openssl, address, ca)},
      "", 20s);
  if (r.exit_code != 0 || r.out.find("serial=") == std::string::npos) {
    return Status::Unavailable("no certificate from " + address + ": " + r.out + r.err);
  }
  return r.out.substr(r.out.find("serial=") + 7, r.out.find_first_of("\r\n") - 7);
}

Result<std::string> FileSerial(const std::string& cert) {
  CommandResult r = RunCommand({Program("openssl"), "x509", "-noout", "-serial", "-in", cert});
  if (r.exit_code != 0) return Status::Internal(r.err);
  return r.out.substr(7, r.out.find_first_of("\r\n") - 7);
}

std::vector<std::string> NodeTlsArgs(const TempDir& certs, const std::string& name) {
  return {"--tls-cert", certs.Sub(name + ".crt"), "--tls-key", certs.Sub(name + ".key"),
          "--tls-ca",   certs.Sub("ca.crt")};
}

std::unique_ptr<Client> TlsClient(const std::string& server, const std::string& ca) {
  ClientOptions o;
  o.servers = {server};
  o.connect_timeout = 2s;
  o.request_timeout = 5s;
  o.tls = true;
  o.tls_ca_file = ca;
  return std::make_unique<Client>(o);
}

WriteOptions Quorum() {
  WriteOptions o;
  o.consistency = Consistency::kQuorum;
  return o;
}

ReadOptions QuorumRead() {
  ReadOptions o;
  o.consistency = Consistency::kQuorum;
  return o;
}

// A plain TCP client that sends `bytes` to a TLS port is closed (the handshake fails) soon.
::testing::AssertionResult PlainClientIsClosed(const std::string& address,
                                               const std::string& bytes) {
  const int fd = ConnectTcp(address);
  if (fd < 0) return ::testing::AssertionFailure() << "cannot connect to " << address;
  SendAll(fd, bytes);
  SocketRead r = ReadUntilClosed(fd, 15s);
  ::close(fd);
  if (!r.closed) return ::testing::AssertionFailure() << address << " kept the connection open";
  if (r.bytes.find("PONG") != std::string::npos || r.bytes.find("HTTP/1.1") != std::string::npos) {
    return ::testing::AssertionFailure() << address << " answered in plain text: " << r.bytes;
  }
  return ::testing::AssertionSuccess();
}

class TlsCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(MakeCerts(certs_.path().string(), {"n1", "n2", "n3"}));
    ClusterOptions options;
    options.extra_args = {"--internode-tls", "--resp", "127.0.0.1:0", "--http", "127.0.0.1:0"};
    for (const std::string name : {"n1", "n2", "n3"}) {
      options.node_args.push_back(NodeTlsArgs(certs_, name));
    }
    options.cli_args = {"--cacert", ca()};
    auto cluster = LocalCluster::Start(dir_.Sub("cluster"), options);
    ASSERT_OK(cluster.status());
    cluster_ = std::move(*cluster);
  }

  std::string ca() const { return certs_.Sub("ca.crt"); }

  TempDir certs_;
  TempDir dir_;
  std::unique_ptr<LocalCluster> cluster_;
};

TEST_F(TlsCluster, TheClientWritesAndReadsAtQuorumOverTls) {
  auto writer = TlsClient(cluster_->address(0), ca());
  auto put = writer->Put("tls-key", "over tls", Quorum());
  ASSERT_OK(put.status());
  auto reader = TlsClient(cluster_->address(2), ca());
  auto got = reader->Get("tls-key", QuorumRead());
  ASSERT_OK(got.status());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->value, "over tls");

  // A client that does not trust the cluster's CA refuses the server, and says why.
  TempDir other;
  ASSERT_OK(MakeCerts(other.path().string(), {"x"}));
  auto stranger = TlsClient(cluster_->address(1), other.Sub("ca.crt"));
  auto refused = stranger->Get("tls-key");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("certificate verify failed"), std::string::npos)
      << refused.status().ToString();

  // A missing CA file is an error that names it.
  auto lost = TlsClient(cluster_->address(1), certs_.Sub("missing.crt"));
  auto no_ca = lost->Get("tls-key");
  ASSERT_FALSE(no_ca.ok());
  EXPECT_EQ(no_ca.status().code(), Code::kInvalidArgument);
  EXPECT_NE(no_ca.status().message().find("missing.crt"), std::string::npos);

  // The CLI too.
  CommandResult cli =
      RunCommand({CliPath(), "--server", cluster_->address(1), "--cacert", ca(), "get", "tls-key"});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_NE(cli.out.find("over tls"), std::string::npos) << cli.out;
}

TEST_F(TlsCluster, PlainTcpClientsAreClosedAndTheNodeServesOn) {
  CairndProcess& node = cluster_->node(0);
  EXPECT_TRUE(PlainClientIsClosed(node.address(), "CRNC plain bytes"));
  EXPECT_TRUE(PlainClientIsClosed(node.resp_address(), "PING\r\n"));
  EXPECT_TRUE(PlainClientIsClosed(node.http_address(), "GET /health HTTP/1.1\r\n\r\n"));
  // A plain client of the library gets an error, not a hang.
  ClientOptions plain;
  plain.servers = {node.address()};
  plain.request_timeout = 3s;
  Client client(plain);
  auto refused = client.Get("k");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("TLS"), std::string::npos)
      << refused.status().ToString();
  // The node is unharmed.
  auto tls = TlsClient(node.address(), ca());
  ASSERT_OK(tls->Put("after-plain", "v", Quorum()).status());
  EXPECT_EQ(node.Exited(), std::nullopt);
}

TEST_F(TlsCluster, RedisCliAndCurlWorkWithTheClusterCa) {
  auto writer = TlsClient(cluster_->address(0), ca());
  ASSERT_OK(writer->Put("shared", "from the client", Quorum()).status());

  const std::string redis_cli = Program("redis-cli");
  if (redis_cli.empty()) {
    std::cout << "[ SKIPPED ] redis-cli is not installed (apt-get install redis-tools)\n";
  } else {
    const std::string resp = cluster_->node(1).resp_address();
    const std::string port = resp.substr(resp.rfind(':') + 1);
    CommandResult set = RunCommand({redis_cli, "--tls", "--cacert", ca(), "-h", "127.0.0.1", "-p",
                                    port, "SET", "via-redis", "tls"});
    EXPECT_EQ(set.exit_code, 0) << set.err;
    EXPECT_NE(set.out.find("OK"), std::string::npos) << set.out << set.err;
    CommandResult get = RunCommand(
        {redis_cli, "--tls", "--cacert", ca(), "-h", "127.0.0.1", "-p", port, "GET", "shared"});
    EXPECT_NE(get.out.find("from the client"), std::string::npos) << get.out << get.err;
    // Without the CA, redis-cli refuses the node's certificate.
    CommandResult untrusted =
        RunCommand({redis_cli, "--tls", "-h", "127.0.0.1", "-p", port, "PING"});
    EXPECT_EQ(untrusted.out.find("PONG"), std::string::npos) << untrusted.out;
  }

  const std::string curl = Program("curl");
  if (curl.empty()) {
    std::cout << "[ SKIPPED ] curl is not installed\n";
  } else {
    const std::string http = "https://" + cluster_->node(2).http_address();
    CommandResult get =
        RunCommand({curl, "-sS", "--cacert", ca(), http + "/v1/kv/default/shared?cl=QUORUM"});
    EXPECT_EQ(get.exit_code, 0) << get.err;
    EXPECT_NE(get.out.find("from the client"), std::string::npos) << get.out;
    CommandResult ui = RunCommand(
        {curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca(), http + "/ui"});
    EXPECT_EQ(ui.out, "200") << ui.err;
    // Keep-alive: several requests on one TLS connection.
    CommandResult two = RunCommand(
        {curl, "-sS", "--cacert", ca(), http + "/health", http + "/v1/kv/default/shared"});
    EXPECT_EQ(two.exit_code, 0) << two.err;
    EXPECT_NE(two.out.find("from the client"), std::string::npos) << two.out;
    // A second connection resumes the first one's TLS session (regression: under mutual TLS
    // OpenSSL failed such handshakes, "session id context uninitialized").
    CommandResult resumed = RunCommand({curl, "-sS", "--cacert", ca(), "-H", "Connection: close",
                                        http + "/health", http + "/v1/kv/default/shared"});
    EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
    EXPECT_NE(resumed.out.find("from the client"), std::string::npos) << resumed.out;
  }
}

TEST_F(TlsCluster, ANodeWithACertificateOfAnotherCaCannotJoin) {
  TempDir rogue;
  ASSERT_OK(MakeCerts(rogue.path().string(), {"rogue"}));
  // It trusts the cluster's CA, so it would accept the members; they do not accept it.
  auto added = cluster_->AddNode({"--tls-cert", rogue.Sub("rogue.crt"), "--tls-key",
                                  rogue.Sub("rogue.key"), "--tls-ca", ca(), "--internode-tls"});
  ASSERT_OK(added.status());
  ASSERT_OK(WaitUntil(
      [&] {
        const std::string logs = cluster_->Logs();
        return logs.find("certificate verify failed") != std::string::npos ||
               logs.find("unknown ca") != std::string::npos;
      },
      30s, "a member to refuse the rogue node's certificate"));
  // The cluster still has its three members, all UP, and serves at QUORUM.
  CommandResult status = RunCommand(
      {CliPath(), "--server", cluster_->address(0), "--cacert", ca(), "--json", "status"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_EQ(status.out.find(cluster_->address(*added)), std::string::npos) << status.out;
  for (size_t i = 0; i < 3; ++i) ASSERT_OK(cluster_->WaitForState(0, i, "UP", 10s));
  auto client = TlsClient(cluster_->address(1), ca());
  ASSERT_OK(client->Put("still-serving", "yes", Quorum()).status());
}

TEST_F(TlsCluster, AnInternodeConnectionWithoutACertificateIsRefused) {
  // TLS that verifies the node, but no certificate of its own: a client, not a member.
  net::TlsFiles files;
  files.ca = ca();
  auto context = net::MakeClientContext(files);
  ASSERT_OK(context.status());
  net::ConnectionOptions options;
  options.preamble = std::string(net::kInternodePreamble);
  options.tls = [c = *context] { return c; };
  auto where = net::ParseHostPort(cluster_->address(0));
  ASSERT_OK(where.status());
  Status answer = RunToCompletion([&]() -> boost::asio::awaitable<Status> {
    auto conn = co_await net::MuxConnection::Connect(where->first, where->second, options, nullptr,
                                                     base::Clock::now() + 5s);
    if (!conn.ok()) co_return conn.status();
    auto reply = co_await (*conn)->Call(
        3, [](char* out) { std::memcpy(out, "abc", 3); }, base::Clock::now() + 5s);
    (*conn)->Close();
    co_return reply.status();
  }());
  EXPECT_FALSE(answer.ok());
  ASSERT_OK(WaitUntil(
      [&] {
        return cluster_->node(0).Log().find("refusing internode connection") != std::string::npos;
      },
      10s, "node 1 to log the refused internode connection"));
  // The members still talk to each other.
  auto client = TlsClient(cluster_->address(0), ca());
  ASSERT_OK(client->Put("members-still-talk", "yes", Quorum()).status());
}

// One node with TLS (no cluster needed): the certificate is replaced and SIGHUP sent.
TEST(TlsTest, SighupReloadsTheCertificateForNewConnectionsAndKeepsItOnBadFiles) {
  if (Program("openssl").empty()) GTEST_SKIP() << "openssl is not installed";
  TempDir certs, data;
  ASSERT_OK(MakeCerts(certs.path().string(), {"node", "renewed"}));
  const std::string ca = certs.Sub("ca.crt");
  CairndProcess::Options o;
  o.data_dir = data.Sub("node");
  o.extra_args = NodeTlsArgs(certs, "node");
  auto started = CairndProcess::Start(o);
  ASSERT_OK(started.status());
  CairndProcess& node = **started;

  auto old_serial = FileSerial(certs.Sub("node.crt"));
  auto new_serial = FileSerial(certs.Sub("renewed.crt"));
  ASSERT_OK(old_serial.status());
  ASSERT_OK(new_serial.status());
  auto served = ServedSerial(node.address(), ca);
  ASSERT_OK(served.status());
  EXPECT_EQ(*served, *old_serial);

  // An open connection, made before the reload.
  auto client = TlsClient(node.address(), ca);
  ASSERT_OK(client->Put("before", "reload").status());

  std::filesystem::copy_file(certs.Sub("renewed.key"), certs.Sub("node.key"),
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(certs.Sub("renewed.crt"), certs.Sub("node.crt"),
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_EQ(::kill(node.pid(), SIGHUP), 0);
  ASSERT_OK(WaitUntil(
      [&] {
        auto now = ServedSerial(node.address(), ca);
        if (!now.ok()) return now.status();
        return *now == *new_serial ? Status::Ok() : Status::Unavailable("still " + *now);
      },
      20s, "new connections to get the renewed certificate"));
  EXPECT_NE(node.Log().find("TLS reloaded"), std::string::npos) << node.Log();
  // The old connection goes on.
  auto read = client->Get("before");
  ASSERT_OK(read.status());
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->value, "reload");

  // A broken certificate file: the reload fails, says why, and the renewed certificate stays.
  { std::ofstream(certs.Sub("node.crt"), std::ios::trunc) << "not a certificate\n"; }
  ASSERT_EQ(::kill(node.pid(), SIGHUP), 0);
  ASSERT_OK(WaitUntil([&] { return node.Log().find("TLS reload failed") != std::string::npos; },
                      20s, "the node to log the failed reload"));
  EXPECT_NE(node.Log().find(certs.Sub("node.crt")), std::string::npos);
  auto still = ServedSerial(node.address(), ca);
  ASSERT_OK(still.status());
  EXPECT_EQ(*still, *new_serial);
  auto fresh = TlsClient(node.address(), ca);
  ASSERT_OK(fresh->Put("after", "bad reload").status());
  EXPECT_EQ(node.Exited(), std::nullopt);
}

// Start refuses missing, unreadable or mismatched files with the file and the reason.
TEST(TlsTest, StartRefusesBadFilesNamingThem) {
  TempDir certs, data;
  ASSERT_OK(MakeCerts(certs.path().string(), {"a", "b"}));
  auto start = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {CairndPath(), "--data-dir", data.Sub("d"), "--listen",
                                     "127.0.0.1:0"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, "", 30s);
  };
  CommandResult missing =
      start({"--tls-cert", certs.Sub("nope.crt"), "--tls-key", certs.Sub("a.key")});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("nope.crt"), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("No such file"), std::string::npos) << missing.err;

  CommandResult mismatched =
      start({"--tls-cert", certs.Sub("a.crt"), "--tls-key", certs.Sub("b.key")});
  EXPECT_EQ(mismatched.exit_code, 2);
  EXPECT_NE(mismatched.err.find("b.key"), std::string::npos) << mismatched.err;
  EXPECT_NE(mismatched.err.find("does not match"), std::string::npos) << mismatched.err;

  CommandResult not_pem =
      start({"--tls-cert", certs.Sub("a.key"), "--tls-key", certs.Sub("a.key")});
  EXPECT_EQ(not_pem.exit_code, 2);
  EXPECT_NE(not_pem.err.find("a.key"), std::string::npos) << not_pem.err;

  CommandResult half = start({"--tls-cert", certs.Sub("a.crt")});
  EXPECT_EQ(half.exit_code, 2);
  EXPECT_NE(half.err.find("--tls-key"), std::string::npos) << half.err;

  CommandResult no_ca =
      start({"--tls-cert", certs.Sub("a.crt"), "--tls-key", certs.Sub("a.key"), "--internode-tls"});
  EXPECT_EQ(no_ca.exit_code, 2);
  EXPECT_NE(no_ca.err.find("--tls-ca"), std::string::npos) << no_ca.err;
}

}  // namespace
}  // namespace cairn::testing
