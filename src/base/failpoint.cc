#include "base/failpoint.h"

#include <cstdlib>
#include <map>
#include <string>

#include <spdlog/spdlog.h>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include "base/async.h"

namespace cairn::base::failpoint {
namespace {

// "a=10,b=20" -> {a: 10, b: 20}; a malformed entry is logged and skipped.
std::map<std::string, std::chrono::milliseconds, std::less<>> Parse(std::string_view text) {
  std::map<std::string, std::chrono::milliseconds, std::less<>> out;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view entry = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const size_t eq = entry.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      spdlog::warn("CAIRN_FAILPOINTS: ignoring '{}' (want name=milliseconds)", entry);
      continue;
    }
    char* end = nullptr;
    const std::string value(entry.substr(eq + 1));
    const long long ms = std::strtoll(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || ms < 0) {
      spdlog::warn("CAIRN_FAILPOINTS: ignoring '{}' (want name=milliseconds)", entry);
      continue;
    }
    out[std::string(entry.substr(0, eq))] = std::chrono::milliseconds(ms);
    spdlog::warn("fail point {} is on: {} ms", entry.substr(0, eq), ms);
  }
  return out;
}

const std::map<std::string, std::chrono::milliseconds, std::less<>>& Table() {
  static const auto table = [] {
    const char* text = std::getenv("CAIRN_FAILPOINTS");
    return Parse(text == nullptr ? std::string_view() : std::string_view(text));
  }();
  return table;
}

}  // namespace

bool Any() { return !Table().empty(); }

std::chrono::milliseconds Delay(std::string_view name) {
  const auto& table = Table();
  if (table.empty()) return std::chrono::milliseconds(0);
  auto it = table.find(name);
  return it == table.end() ? std::chrono::milliseconds(0) : it->second;
}

boost::asio::awaitable<void> Pause(std::string_view name) {
  const auto delay = Delay(name);
  if (delay.count() == 0) co_return;
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, delay);
  co_await timer.async_wait(kNoThrow);
}

}  // namespace cairn::base::failpoint
