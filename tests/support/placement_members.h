// Cluster members for placement tests and benchmarks: node ids as a real cluster would pick them,
// racks and data centres of given sizes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/hash.h"
#include "cluster/placement.h"

namespace cairn::testing {

// Node ids as LoadOrCreateIdentity would pick them: random, but the same in every run.
inline uint32_t NodeId(uint32_t i) {
  return static_cast<uint32_t>(base::Hash64("node" + std::to_string(i)) >> 32) | 1;
}

inline cluster::Member MakeMember(uint32_t i, std::string dc, std::string rack) {
  return cluster::Member{.node_id = NodeId(i),
                         .address = "10.0.0." + std::to_string(i) + ":7000",
                         .dc = std::move(dc),
                         .rack = std::move(rack)};
}

// Nodes first, first+1, ... of `dc`, rack_sizes[r] of them in rack "r<r>".
inline std::vector<cluster::Member> DcMembers(const std::string& dc,
                                              const std::vector<uint32_t>& rack_sizes,
                                              uint32_t first = 0) {
  std::vector<cluster::Member> members;
  for (size_t r = 0; r < rack_sizes.size(); ++r) {
    for (uint32_t i = 0; i < rack_sizes[r]; ++i) {
      members.push_back(MakeMember(first++, dc, "r" + std::to_string(r)));
    }
  }
  return members;
}

}  // namespace cairn::testing
