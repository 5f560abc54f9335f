// cairnd: the Cairn server.
#include <csignal>
#include <cstdio>
#include <iostream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "base/logging.h"
#include "server/server.h"

int main(int argc, char** argv) {
  using cairn::server::ServerOptions;
  ServerOptions options;
  std::string log_level = "info";
  uint32_t node_id = 0;

  CLI::App app{
      "cairnd: the Cairn key-value store server.\n"
      "Stores data durably under --data-dir and serves the native protocol on --listen.\n"
      "Stop it with SIGTERM or Ctrl-C: it finishes requests in flight, then exits."};
  app.set_version_flag("--version", std::string("cairnd ") + CAIRN_VERSION);
  app.add_option("--data-dir", options.data_dir,
                 "Directory for the node's data (created if missing)")
      ->required();
  app.add_option("--listen", options.listen,
                 "HOST:PORT for the native protocol; port 0 picks a free port")
      ->capture_default_str();
  app.add_option("--threads", options.threads, "Reactor threads (0: one per core, at most 4)")
      ->capture_default_str();
  app.add_option("--node-id", node_id,
                 "This node's id, 1..4294967295 (default: generated on first start, then kept "
                 "in the data directory)");
  app.add_option("--max-value-bytes", options.max_value_bytes, "Largest value accepted, in bytes")
      ->capture_default_str()
      ->check(CLI::Range(size_t{0}, size_t{256} << 20));
  app.add_option("--max-connections", options.max_connections, "Client connections at most")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (auto s = cairn::base::InitLogging(log_level); !s.ok()) {
    std::cerr << "cairnd: " << s.message() << "\n";
    return 2;
  }
  if (app.count("--node-id") > 0) options.node_id = node_id;

  // Installed before the server starts, so a signal that arrives during start-up is not lost.
  boost::asio::io_context signals_io;
  boost::asio::signal_set signals(signals_io, SIGINT, SIGTERM);

  auto server = cairn::server::Server::Start(options);
  if (!server.ok()) {
    std::cerr << "cairnd: " << server.status().message() << "\n";
    return server.status().code() == cairn::Code::kInvalidArgument ? 2 : 1;
  }
  const auto& ep = (*server)->native_endpoint();
  const std::string where = fmt::format("{}:{}", ep.address().to_string(), ep.port());
  // Scripts and tests wait for this line.
  std::printf(
      "cairnd %s node %u listening on %s (native protocol), data in %s, %u reactor threads\n",
      CAIRN_VERSION, (*server)->node_id(), where.c_str(), options.data_dir.c_str(),
      (*server)->reactor_threads());
  std::fflush(stdout);
  spdlog::info("node {} serving the native protocol on {}", (*server)->node_id(), where);

  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (!ec) spdlog::info("received {}, shutting down", signal == SIGINT ? "SIGINT" : "SIGTERM");
  });
  signals_io.run();
  (*server)->Stop();
  spdlog::info("stopped cleanly");
  return 0;
}
