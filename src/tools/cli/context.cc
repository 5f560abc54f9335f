#include "tools/cli/context.h"

#include <chrono>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace cairn::tools::cli {

namespace {

ClientOptions ClientOptionsFor(const Globals& globals) {
  ClientOptions options;
  options.servers = {globals.server};
  options.connections_per_server = 1;
  options.keyspace = globals.keyspace;
  options.request_timeout = std::chrono::milliseconds(globals.timeout_ms);
  options.read_retries = 1;
  options.user = globals.user;
  options.password = globals.password;
  options.tls = globals.tls || !globals.cacert.empty();
  options.tls_ca_file = globals.cacert;
  return options;
}

}  // namespace

Result<std::optional<Consistency>> ParseLevel(const std::string& name, std::string_view flag) {
  if (name.empty()) return std::optional<Consistency>();
  auto level = ParseConsistency(name);
  if (!level) {
    return Status::InvalidArgument(
        fmt::format("{}: unknown consistency level '{}' (ONE, TWO, THREE, QUORUM, ALL, "
                    "LOCAL_ONE, LOCAL_QUORUM, EACH_QUORUM, ANY, SERIAL, LOCAL_SERIAL)",
                    flag, name));
  }
  return std::optional<Consistency>(level);
}

Context::Context(const Globals& globals) : globals_(globals), client_(ClientOptionsFor(globals)) {}

Client& Context::long_client() {
  if (!long_client_) {
    ClientOptions options = ClientOptionsFor(globals_);
    options.request_timeout = std::chrono::minutes(10);
    long_client_ = std::make_unique<Client>(options);
  }
  return *long_client_;
}

Client& Context::client_of(const std::string& server) {
  std::unique_ptr<Client>& client = others_[server];
  if (!client) {
    ClientOptions options = ClientOptionsFor(globals_);
    options.servers = {server};
    client = std::make_unique<Client>(options);
  }
  return *client;
}

ReadOptions Context::Read() const {
  ReadOptions options;
  options.consistency = globals_.level;
  return options;
}

WriteOptions Context::Write(uint64_t ttl_seconds) const {
  WriteOptions options;
  options.consistency = globals_.level;
  options.ttl = std::chrono::seconds(ttl_seconds);
  return options;
}

int Context::Reply(const Json& j, std::string_view text) const {
  if (json()) {
    PrintJson(j);
  } else {
    std::cout << text;
  }
  return kExitOk;
}

}  // namespace cairn::tools::cli
