// The net layer's TLS without processes: certificates made with OpenSSL's API into a temporary
// directory, a framed echo server over Stream, and the MuxConnection client dialling it.
#include "net/tls.h"

#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "net/connection.h"
#include "net/stream.h"
#include "tests/support/options.h"
#include "tests/support/run_to_completion.h"
#include "tests/support/temp_dir.h"

namespace cairn::net {
namespace {

using namespace std::chrono_literals;
using cairn::testing::RunToCompletion;
using cairn::testing::TempDir;

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* x) const { X509_free(x); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;

void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  ASSERT_NE(ext, nullptr);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `key` named `cn`, signed by `issuer` (null: self-signed, a CA).
Cert MakeCert(EVP_PKEY* key, const std::string& cn, long serial, X509* issuer,
              EVP_PKEY* issuer_key) {
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509* signer = issuer ? issuer : cert.get();
  if (issuer == nullptr) {
    AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    AddExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExtension(cert.get(), signer, NID_basic_constraints, "CA:FALSE");
    AddExtension(cert.get(), signer, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
  }
  X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256());
  return cert;
}

void WritePem(const std::string& path, X509* cert, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  if (cert != nullptr) PEM_write_X509(f, cert);
  if (key != nullptr) PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

// DIR/ca.crt, and DIR/NAME.crt + DIR/NAME.key for each `Issue`.
class Authority {
 public:
  Authority(const TempDir& dir, const std::string& name) : dir_(dir) {
    key_.reset(EVP_EC_gen("P-256"));
    cert_ = MakeCert(key_.get(), name, 1, nullptr, nullptr);
    WritePem(ca(), cert_.get(), nullptr);
  }
  std::string ca() const { return dir_.Sub("ca.crt"); }
  TlsFiles Issue(const std::string& name, long serial) {
    Key key(EVP_EC_gen("P-256"));
    Cert cert = MakeCert(key.get(), name, serial, cert_.get(), key_.get());
    WritePem(dir_.Sub(name + ".crt"), cert.get(), nullptr);
    WritePem(dir_.Sub(name + ".key"), nullptr, key.get());
    return TlsFiles{dir_.Sub(name + ".crt"), dir_.Sub(name + ".key"), ca()};
  }

 private:
  const TempDir& dir_;
  Key key_;
  Cert cert_;
};

// Accepts one TLS connection with `context`, echoes its frames, and reports the peer's state.
struct EchoOverTls {
  explicit EchoOverTls(std::shared_ptr<ssl::context> context)
      : context(std::move(context)),
        acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {}

  asio::awaitable<void> Serve() {
    auto [ec, socket] = co_await acceptor.async_accept(base::kNoThrow);
    if (ec) co_return;
    Stream stream(std::move(socket), context);
    handshake = co_await stream.Handshake(ssl::stream_base::server, base::Clock::now() + 5s);
    if (!handshake.ok()) co_return;
    peer_verified = stream.PeerVerified();
    ConnectionOptions options;
    auto conn = std::make_shared<FrameConnection>(std::move(stream), options);
    auto on_frame = [conn](uint64_t id, std::string_view payload) {
      std::string body(payload);
      conn->Send(id, body.size(), [&](char* d) { std::memcpy(d, body.data(), body.size()); });
    };
    co_await conn->Run(on_frame, [](const Status&) {});
  }

  // Dials with `client`, sends "hello" and returns the echo (or why not).
  Result<std::string> Call(std::shared_ptr<ssl::context> client) {
    asio::co_spawn(io, Serve(), asio::detached);
    const uint16_t port = acceptor.local_endpoint().port();
    return RunToCompletion(io, [&]() -> asio::awaitable<Result<std::string>> {
      ConnectionOptions options;
      options.tls = [client] { return client; };
      auto conn = co_await MuxConnection::Connect("127.0.0.1", port, options, nullptr,
                                                  base::Clock::now() + 5s);
      acceptor.close();
      if (!conn.ok()) co_return conn.status();
      auto reply = co_await (*conn)->Call(
          5, [](char* d) { std::memcpy(d, "hello", 5); }, base::Clock::now() + 5s);
      (*conn)->Close();
      co_return reply;
    }());
  }

  std::shared_ptr<ssl::context> context;
  asio::io_context io;
  tcp::acceptor acceptor;
  Status handshake;
  bool peer_verified = false;
};

TEST(TlsTest, FramesRoundTripOverTlsAndMutualTlsVerifiesTheClient) {
  TempDir dir;
  Authority authority(dir, "cluster CA");
  const TlsFiles server = authority.Issue("server", 10);
  const TlsFiles member = authority.Issue("member", 11);

  auto server_context = MakeServerContext(server, /*request_peer_cert=*/true);
  ASSERT_OK(server_context.status());
  // A client with no certificate: served, but not verified (the internode door refuses it).
  {
    auto client = MakeClientContext(TlsFiles{"", "", authority.ca()});
    ASSERT_OK(client.status());
    EchoOverTls echo(*server_context);
    auto reply = echo.Call(*client);
    ASSERT_OK(reply.status());
    EXPECT_EQ(*reply, "hello");
    EXPECT_FALSE(echo.peer_verified);
  }
  // A member presenting its certificate is verified.
  {
    auto client = MakeClientContext(member);
    ASSERT_OK(client.status());
    EchoOverTls echo(*server_context);
    auto reply = echo.Call(*client);
    ASSERT_OK(reply.status());
    EXPECT_TRUE(echo.peer_verified);
  }
}

TEST(TlsTest, CertificatesOfAnotherCaAreRefusedBothWays) {
  TempDir dir, other_dir;
  Authority authority(dir, "cluster CA"), other(other_dir, "another CA");
  const TlsFiles server = authority.Issue("server", 10);
  const TlsFiles stranger = other.Issue("stranger", 20);
  auto server_context = MakeServerContext(server, true);
  ASSERT_OK(server_context.status());

  // The client does not trust the server's CA.
  auto distrustful = MakeClientContext(TlsFiles{"", "", other.ca()});
  ASSERT_OK(distrustful.status());
  EchoOverTls echo1(*server_context);
  auto refused = echo1.Call(*distrustful);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("certificate verify failed"), std::string::npos)
      << refused.status().ToString();

  // The client trusts the server, but presents a certificate of another CA: the server refuses.
  TlsFiles mixed = stranger;
  mixed.ca = authority.ca();
  auto intruder = MakeClientContext(mixed);
  ASSERT_OK(intruder.status());
  EchoOverTls echo2(*server_context);
  EXPECT_FALSE(echo2.Call(*intruder).ok());
  EXPECT_FALSE(echo2.handshake.ok());
}

TEST(TlsTest, ReloadSwapsTheContextsAndKeepsThemWhenAFileIsBad) {
  TempDir dir;
  Authority authority(dir, "cluster CA");
  const TlsFiles files = authority.Issue("node", 10);
  auto contexts = TlsContexts::Load(files, /*mutual=*/true);
  ASSERT_OK(contexts.status());
  const auto first = (*contexts)->server();

  { std::ofstream(files.cert, std::ios::trunc) << "garbage\n"; }
  Status bad = (*contexts)->Reload();
  EXPECT_EQ(bad.code(), Code::kInvalidArgument);
  EXPECT_NE(bad.message().find(files.cert), std::string::npos) << bad.ToString();
  EXPECT_EQ((*contexts)->server(), first);

  authority.Issue("node", 11);  // renewed: same files, a new certificate and key
  ASSERT_OK((*contexts)->Reload());
  EXPECT_NE((*contexts)->server(), first);
  auto described = DescribeCertificateFile(files.cert);
  ASSERT_OK(described.status());
  EXPECT_NE(described->find("serial 0B"), std::string::npos) << *described;
}

TEST(TlsTest, MissingFilesAreNamed) {
  TempDir dir;
  auto missing = MakeServerContext(TlsFiles{dir.Sub("no.crt"), dir.Sub("no.key"), ""}, false);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no.crt"), std::string::npos);
  auto mutual_without_ca = TlsContexts::Load(TlsFiles{dir.Sub("a"), dir.Sub("b"), ""}, true);
  EXPECT_FALSE(mutual_without_ca.ok());
}

}  // namespace
}  // namespace cairn::net
