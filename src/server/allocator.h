// The heap allocator cairnd runs with, for its start-up log and /metrics.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace cairn::server {

// cairnd links jemalloc (CMake option CAIRN_JEMALLOC, on unless sanitizing), as Redis and RocksDB
// recommend: a node allocates and frees small blocks for every request (coroutine frames,
// messages), and glibc's malloc spent a quarter of a SET's instructions on them.
struct AllocatorStats {
  uint64_t allocated = 0;  // bytes handed out to the program and not yet freed
  uint64_t resident = 0;   // bytes of the allocator's pages resident in memory
};

// "jemalloc <version>", or "the C library's malloc" in builds without jemalloc.
std::string AllocatorName();

// The allocator's current figures; nullopt without jemalloc (glibc keeps no such totals cheaply).
std::optional<AllocatorStats> ReadAllocatorStats();

}  // namespace cairn::server
