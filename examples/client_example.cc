// A complete program using the Cairn client library; docs/client.md walks through it.
// Build: it is built with the project (target client_example). Run: client_example HOST:PORT
#include <cstdio>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "cairn/client.h"

// Blocking API: each call waits for its answer.
int BlockingTour(const std::string& server) {
  cairn::ClientOptions options;
  options.servers = {server};
  cairn::Client client(options);

  auto version = client.Put("greeting", "hello, Cairn");
  if (!version.ok()) {
    std::fprintf(stderr, "put failed: %s\n", version.status().ToString().c_str());
    return 1;
  }
  std::printf("stored with version %s\n", version->ToString().c_str());

  auto record = client.Get("greeting");
  if (!record.ok()) {
    std::fprintf(stderr, "get failed: %s\n", record.status().ToString().c_str());
    return 1;
  }
  if (!record->has_value()) {
    std::fprintf(stderr, "greeting is missing\n");
    return 1;
  }
  std::printf("read back: %s\n", (*record)->value.c_str());

  // Compare-and-swap on the version we read: succeeds once, then the version is stale.
  auto cas = client.Cas("greeting", cairn::CasCondition::IfVersion((*record)->version), "hi again");
  if (!cas.ok()) return 1;
  std::printf("compare-and-swap applied: %s\n", cas->applied ? "yes" : "no");
  auto stale = client.Cas("greeting", cairn::CasCondition::IfVersion((*record)->version), "lost");
  if (!stale.ok()) return 1;
  std::printf("stale compare-and-swap applied: %s (current value: %s)\n",
              stale->applied ? "yes" : "no", stale->current ? stale->current->value.c_str() : "-");

  // Per-call options: a short TTL and a stricter consistency level.
  cairn::WriteOptions session;
  session.ttl = std::chrono::minutes(30);
  session.consistency = cairn::Consistency::kAll;
  if (!client.Put("session:42", "token", session).ok()) return 1;

  // Errors are values with a code to branch on.
  auto bad = client.Put("", "empty keys are not allowed");
  std::printf("empty key: %s\n", bad.status().ToString().c_str());
  return bad.status().code() == cairn::Code::kInvalidArgument ? 0 : 1;
}

// Async API: coroutines on an io_context; many requests share a connection.
int AsyncTour(const std::string& server) {
  boost::asio::io_context io;
  cairn::ClientOptions options;
  options.servers = {server};
  cairn::AsyncClient client(io.get_executor(), options);
  int ok = 0;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        for (int i = 0; i < 100; ++i) {
          auto v = co_await client.Put("async:" + std::to_string(i), std::to_string(i * i));
          if (v.ok()) ++ok;
        }
        cairn::ScanOptions scan;
        scan.limit = 1000;
        auto page = co_await client.Scan("async:", scan);
        if (page.ok()) {
          std::printf("async: %d writes, scan found %zu keys\n", ok, page->entries.size());
        }
        client.Close();  // lets io.run() return
      },
      boost::asio::detached);
  io.run();
  return ok == 100 ? 0 : 1;
}

int main(int argc, char** argv) {
  const std::string server = argc > 1 ? argv[1] : "127.0.0.1:7400";
  if (int rc = BlockingTour(server); rc != 0) return rc;
  return AsyncTour(server);
}
