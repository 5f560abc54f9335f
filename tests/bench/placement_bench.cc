// How long PartitionMap::Compute takes for a few cluster shapes (Google Benchmark). Was a "test"
// that printed timings (PlacementTest.ComputeIsFast); a figure is a benchmark's to print, and a
// slow machine must not fail the suite. ctest runs each case once (bench.placement_smoke), which
// checks that every shape computes (the exit status is 1 when one did not); run it by hand for the
// figures:
//
//   build/release/bin/cairn_placement_bench
#include <benchmark/benchmark.h>

#include <atomic>
#include <string>
#include <vector>

#include "cluster/placement.h"
#include "tests/support/placement_members.h"

namespace cairn::cluster {
namespace {

using cairn::testing::DcMembers;

std::atomic<int> failures{0};

void Compute(benchmark::State& state, const std::vector<Member>& members, uint32_t bits) {
  for (auto _ : state) {
    auto map = PartitionMap::Compute(members, bits);
    if (!map.ok()) {
      ++failures;
      state.SkipWithError(map.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(map);
  }
  state.counters["nodes"] = static_cast<double>(members.size());
  state.counters["partitions"] = static_cast<double>(uint32_t{1} << bits);
}

std::vector<Member> ThreeDcs() {
  std::vector<Member> members;
  for (uint32_t d = 0; d < 3; ++d) {
    for (Member& m : DcMembers("dc" + std::to_string(d), {4, 4, 4}, 100 * d)) {
      members.push_back(std::move(m));
    }
  }
  return members;
}

BENCHMARK_CAPTURE(Compute, 12_nodes_3_racks, DcMembers("dc1", {4, 4, 4}), 10)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Compute, 12_nodes_1_rack, DcMembers("dc1", {12}), 10)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Compute, 3_dcs_of_12_nodes, ThreeDcs(), 10)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Compute, 48_nodes_3_racks, DcMembers("dc1", {16, 16, 16}), 10)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Compute, 12_nodes_3_racks_65536_partitions, DcMembers("dc1", {4, 4, 4}), 16)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace cairn::cluster

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return cairn::cluster::failures > 0 ? 1 : 0;
}
