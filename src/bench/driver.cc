#include "bench/driver.h"

namespace cairn::bench {

boost::asio::awaitable<Result<bool>> Session::ReadModifyWrite(const std::string& key,
                                                              std::string_view value) {
  auto version = co_await ReadVersion(key);
  if (!version.ok()) co_return version.status();
  auto r = co_await Cas(key, *version, value);
  if (!r.ok()) co_return r.status();
  co_return r->applied;
}

}  // namespace cairn::bench
