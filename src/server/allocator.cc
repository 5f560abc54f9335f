#include "server/allocator.h"

#ifdef CAIRN_WITH_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

namespace cairn::server {

#ifdef CAIRN_WITH_JEMALLOC

std::string AllocatorName() {
  const char* version = nullptr;
  size_t size = sizeof(version);
  if (mallctl("version", &version, &size, nullptr, 0) != 0 || version == nullptr) {
    return "jemalloc";
  }
  return std::string("jemalloc ") + version;
}

std::optional<AllocatorStats> ReadAllocatorStats() {
  // jemalloc's totals are a snapshot taken when the epoch advances.
  uint64_t epoch = 1;
  size_t size = sizeof(epoch);
  if (mallctl("epoch", &epoch, &size, &epoch, size) != 0) return std::nullopt;
  AllocatorStats stats;
  size_t allocated = 0, resident = 0;
  size = sizeof(size_t);
  if (mallctl("stats.allocated", &allocated, &size, nullptr, 0) != 0) return std::nullopt;
  size = sizeof(size_t);
  if (mallctl("stats.resident", &resident, &size, nullptr, 0) != 0) return std::nullopt;
  stats.allocated = allocated;
  stats.resident = resident;
  return stats;
}

#else

std::string AllocatorName() { return "the C library's malloc"; }

std::optional<AllocatorStats> ReadAllocatorStats() { return std::nullopt; }

#endif

}  // namespace cairn::server
