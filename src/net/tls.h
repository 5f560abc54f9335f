// TLS contexts from certificate and key files: what a node presents to clients and other nodes,
// what it verifies them with, and the reload of both when the files change (SIGHUP).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "cairn/status.h"

namespace cairn::net {

namespace ssl = boost::asio::ssl;

// The PEM files a TLS context is made from.
struct TlsFiles {
  std::string cert;  // certificate chain, the holder's own certificate first
  std::string key;   // the private key of `cert`
  std::string ca;    // CA certificate(s) the peer's certificate must be signed by; empty: the
                     // system's trusted CAs (clients only)
};

// A server's context: presents `cert` with `key` (both required). With `request_peer_cert`, it
// also asks every client for a certificate and refuses the handshake of one that sends a
// certificate not signed by `ca`; a client that sends none is still accepted, and whoever needs
// one checks Stream::PeerVerified() (the internode protocol, under mutual TLS).
// INVALID_ARGUMENT naming the file and the reason when a file is missing, unreadable, not PEM, or
// the key does not match the certificate.
Result<std::shared_ptr<ssl::context>> MakeServerContext(const TlsFiles& files,
                                                        bool request_peer_cert);
// A client's context: verifies the server's certificate against `ca` (or the system's CAs), and
// presents `cert` with `key` when given (mutual TLS). Errors as MakeServerContext's.
Result<std::shared_ptr<ssl::context>> MakeClientContext(const TlsFiles& files);

// "subject CN=..., serial 0A1B..., expires 2027-01-01" of the first certificate in a PEM file;
// an error when there is none.
Result<std::string> DescribeCertificateFile(const std::string& path);

// A node's TLS: the context its ports serve with and the one it dials other nodes with, rebuilt
// from the same files by Reload(). Connections take the current context when they open, so a
// reload applies to new connections and open ones continue with the context they started with.
// Thread safety: every method may be called from any thread.
class TlsContexts {
 public:
  // With `mutual`, nodes authenticate each other: the server context asks for client
  // certificates and the client context presents the node's own (`ca` is then required).
  static Result<std::unique_ptr<TlsContexts>> Load(TlsFiles files, bool mutual);

  // Reads the files again. On an error the contexts in use stay, and the error says why.
  Status Reload();

  std::shared_ptr<ssl::context> server() const;
  std::shared_ptr<ssl::context> client() const;
  const TlsFiles& files() const { return files_; }
  bool mutual() const { return mutual_; }

 private:
  TlsContexts(TlsFiles files, bool mutual) : files_(std::move(files)), mutual_(mutual) {}

  const TlsFiles files_;
  const bool mutual_;
  mutable std::mutex mu_;
  std::shared_ptr<ssl::context> server_;  // guarded by mu_
  std::shared_ptr<ssl::context> client_;  // guarded by mu_
};

}  // namespace cairn::net
