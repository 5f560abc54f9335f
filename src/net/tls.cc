#include "net/tls.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>

#include "net/stream.h"

namespace cairn::net {
namespace {

// OpenSSL's reason for `ec` ("no start line", "key values mismatch"), without its library name.
std::string Reason(const boost::system::error_code& ec) { return ec.message(); }

// INVALID_ARGUMENT unless `path` can be opened for reading.
Status CheckReadable(std::string_view what, const std::string& path) {
  if (path.empty()) return Status::InvalidArgument(fmt::format("no {} file given", what));
  std::ifstream in(path);
  if (!in) {
    return Status::InvalidArgument(
        fmt::format("cannot read the {} file {}: {}", what, path, std::strerror(errno)));
  }
  return Status::Ok();
}

// TLS 1.2 and 1.3 only, no compression, no renegotiation.
void SetCommonOptions(ssl::context& context) {
  context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                      ssl::context::no_compression);
  SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_2_VERSION);
  SSL_CTX_set_options(context.native_handle(), SSL_OP_NO_RENEGOTIATION);
}

Status UseCertificateAndKey(ssl::context& context, const TlsFiles& files) {
  if (Status s = CheckReadable("certificate", files.cert); !s.ok()) return s;
  if (Status s = CheckReadable("private key", files.key); !s.ok()) return s;
  boost::system::error_code ec;
  context.use_certificate_chain_file(files.cert, ec);
  if (ec) {
    return Status::InvalidArgument(fmt::format(
        "the certificate file {} holds no usable PEM certificate: {}", files.cert, Reason(ec)));
  }
  context.use_private_key_file(files.key, ssl::context::pem, ec);
  if (ec && ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH) {
    return Status::InvalidArgument(fmt::format(
        "the private key in {} does not match the certificate in {}", files.key, files.cert));
  }
  if (ec) {
    return Status::InvalidArgument(fmt::format(
        "the private key file {} holds no usable PEM private key: {}", files.key, Reason(ec)));
  }
  if (SSL_CTX_check_private_key(context.native_handle()) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument(fmt::format(
        "the private key in {} does not match the certificate in {}", files.key, files.cert));
  }
  return Status::Ok();
}

Status UseCa(ssl::context& context, const std::string& ca) {
  boost::system::error_code ec;
  if (ca.empty()) {
    context.set_default_verify_paths(ec);
    if (ec)
      return Status::InvalidArgument("cannot load the system's CA certificates: " + Reason(ec));
    return Status::Ok();
  }
  if (Status s = CheckReadable("CA certificate", ca); !s.ok()) return s;
  context.load_verify_file(ca, ec);
  if (ec) {
    return Status::InvalidArgument(
        fmt::format("the CA file {} holds no usable PEM certificate: {}", ca, Reason(ec)));
  }
  return Status::Ok();
}

std::string Describe(X509* cert) {
  std::string out;
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    BIO_puts(bio, ", serial ");
    if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), nullptr)) {
      if (char* hex = BN_bn2hex(bn)) {
        BIO_puts(bio, hex);
        OPENSSL_free(hex);
      }
      BN_free(bn);
    }
    BIO_puts(bio, ", expires ");
    ASN1_TIME_print(bio, X509_get0_notAfter(cert));
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    if (n > 0) out.assign(data, static_cast<size_t>(n));
    BIO_free(bio);
  }
  return out;
}

}  // namespace

Result<std::shared_ptr<ssl::context>> MakeServerContext(const TlsFiles& files,
                                                        bool request_peer_cert) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SetCommonOptions(*context);
  if (Status s = UseCertificateAndKey(*context, files); !s.ok()) return s;
  if (request_peer_cert) {
    if (files.ca.empty()) {
      return Status::InvalidArgument("mutual TLS needs the CA certificate that signs the peers'");
    }
    if (Status s = UseCa(*context, files.ca); !s.ok()) return s;
    // Asked of every client, required of none here: clients of the client protocols have no
    // certificate, and the internode protocol checks Stream::PeerVerified() itself.
    context->set_verify_mode(ssl::verify_peer);
    // Without a session id context, OpenSSL fails the handshake of any client that resumes a
    // session (curl does) once client certificates are asked for.
    static constexpr unsigned char kSessionContext[] = "cairn";
    SSL_CTX_set_session_id_context(context->native_handle(), kSessionContext,
                                   sizeof kSessionContext - 1);
    // The CA's name in the request lets a client holding several certificates pick the right one.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.ca.c_str())) {
      SSL_CTX_set_client_CA_list(context->native_handle(), names);
    }
    ERR_clear_error();
  }
  return context;
}

Result<std::shared_ptr<ssl::context>> MakeClientContext(const TlsFiles& files) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
  SetCommonOptions(*context);
  if (Status s = UseCa(*context, files.ca); !s.ok()) return s;
  context->set_verify_mode(ssl::verify_peer);
  if (!files.cert.empty() || !files.key.empty()) {
    if (Status s = UseCertificateAndKey(*context, files); !s.ok()) return s;
  }
  return context;
}

Result<std::string> DescribeCertificateFile(const std::string& path) {
  if (Status s = CheckReadable("certificate", path); !s.ok()) return s;
  BIO* bio = BIO_new_file(path.c_str(), "r");
  if (bio == nullptr) return Status::InvalidArgument(fmt::format("cannot open {}", path));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ERR_clear_error();
  if (cert == nullptr) {
    return Status::InvalidArgument(fmt::format("{} holds no PEM certificate", path));
  }
  std::string out = Describe(cert);
  X509_free(cert);
  return out;
}

Result<std::unique_ptr<TlsContexts>> TlsContexts::Load(TlsFiles files, bool mutual) {
  std::unique_ptr<TlsContexts> contexts(new TlsContexts(std::move(files), mutual));
  if (Status s = contexts->Reload(); !s.ok()) return s;
  return contexts;
}

Status TlsContexts::Reload() {
  auto server = MakeServerContext(files_, mutual_);
  if (!server.ok()) return server.status();
  // Without mutual TLS a node dials others as any client does: verifying them, presenting
  // nothing.
  TlsFiles client_files = files_;
  if (!mutual_) client_files.cert = client_files.key = "";
  auto client = MakeClientContext(client_files);
  if (!client.ok()) return client.status();
  std::lock_guard lock(mu_);
  server_ = std::move(*server);
  client_ = std::move(*client);
  return Status::Ok();
}

std::shared_ptr<ssl::context> TlsContexts::server() const {
  std::lock_guard lock(mu_);
  return server_;
}

std::shared_ptr<ssl::context> TlsContexts::client() const {
  std::lock_guard lock(mu_);
  return client_;
}

// ---------------------------------------------------------------------------------------------
// Stream's TLS parts

Status Stream::ExpectPeerName(const std::string& host) {
  if (!tls_) return Status::Ok();
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  // SNI carries names only (RFC 6066).
  if (ec && SSL_set_tlsext_host_name(tls_->native_handle(), host.c_str()) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument(fmt::format("'{}' is not a valid TLS server name", host));
  }
  tls_->set_verify_callback(ssl::host_name_verification(host), ec);
  if (ec) return Status::Internal("cannot set the TLS verification: " + ec.message());
  return Status::Ok();
}

asio::awaitable<Status> Stream::Handshake(ssl::stream_base::handshake_type type,
                                          base::Deadline deadline) {
  if (!tls_) co_return Status::Ok();
  auto done = co_await base::WithDeadline(tls_->async_handshake(type, base::kNoThrow), deadline);
  if (!done) co_return Status::Unavailable("the TLS handshake did not finish in time");
  auto [ec] = *done;
  if (!ec) co_return Status::Ok();
  std::string why = ec.message();
  // A certificate that did not verify: say why, not only "certificate verify failed".
  const long verify = SSL_get_verify_result(tls_->native_handle());
  if (verify != X509_V_OK && type == ssl::stream_base::client) {
    why += fmt::format(" ({})", X509_verify_cert_error_string(verify));
  }
  co_return Status::Unavailable("TLS handshake failed: " + why);
}

bool Stream::PeerVerified() const {
  if (!tls_) return false;
  SSL* ssl = const_cast<ssl::stream<tcp::socket>&>(*tls_).native_handle();
  return SSL_get0_peer_certificate(ssl) != nullptr && SSL_get_verify_result(ssl) == X509_V_OK;
}

std::string Stream::PeerCertificate() const {
  if (!tls_) return "";
  SSL* ssl = const_cast<ssl::stream<tcp::socket>&>(*tls_).native_handle();
  X509* cert = SSL_get0_peer_certificate(ssl);
  return cert == nullptr ? "" : Describe(cert);
}

}  // namespace cairn::net
