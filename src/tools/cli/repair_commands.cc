#include "tools/cli/repair_commands.h"

#include <chrono>
#include <iostream>
#include <limits>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/progress.h"

namespace cairn::tools::cli {

namespace {

// A random, non-zero id for one run of `cairn repair`.
uint64_t NewRunId() {
  std::random_device random;
  std::uniform_int_distribution<uint64_t> any(1, std::numeric_limits<uint64_t>::max());
  return any(random);
}

}  // namespace

int Repair(Context& context, const Args& args) {
  // What to repair: the keyspace named, or every one; each partition, or the one named.
  std::vector<std::string> keyspaces;
  if (context.keyspace_given()) {
    keyspaces.push_back(context.keyspace());
  } else {
    auto listed = context.client().ListKeyspaces();
    if (!listed.ok()) return Fail(listed.status());
    for (const KeyspaceInfo& k : *listed) keyspaces.push_back(k.name);
  }
  auto status = context.client().ClusterStatus();
  if (!status.ok()) return Fail(status.status());
  if (!status->formed) {
    return Fail(Status::Unavailable(fmt::format("the cluster has not formed: {}", status->note)));
  }
  const uint32_t partitions = status->partitions;
  if (args.repair.partition && *args.repair.partition >= partitions) {
    return Fail(Status::InvalidArgument(
        fmt::format("--partition {} is out of range: the cluster has {} partitions (0 to {})",
                    *args.repair.partition, partitions, partitions - 1)));
  }
  const uint32_t first = args.repair.partition.value_or(0);
  const uint32_t end = args.repair.partition ? first + 1 : partitions;
  const uint64_t total = uint64_t{end - first} * keyspaces.size();
  // The nodes that repair the ranges count them in this run's progress (GET /v1/repairs, the
  // web console), by this id.
  RepairRunTag run;
  run.id = NewRunId();
  run.total = total;
  run.keyspaces = keyspaces;
  run.partition = args.repair.partition;

  ProgressLine::Options o;
  o.label = "repairing";
  o.unit = "ranges";
  o.total = total;
  ProgressLine line(o);
  const auto start = std::chrono::steady_clock::now();
  uint64_t done = 0, repaired = 0, skipped = 0, agreed = 0, differing = 0, keys = 0, bytes = 0,
           purged = 0;
  Json ranges_with_work = Json::array();  // ranges that differed, were skipped or failed
  std::vector<std::string> problems;
  for (const std::string& ks : keyspaces) {
    for (uint32_t p = first; p < end; ++p) {
      run.index = done;
      auto r = context.long_client().RepairRange(ks, p, args.repair.node, run);
      ++done;
      if (!r.ok()) {
        // An unknown keyspace or a bad argument fails the same way for every range: stop.
        if (r.status().code() == Code::kInvalidArgument || r.status().code() == Code::kNotFound) {
          line.Clear();
          return Fail(r.status());
        }
        problems.push_back(
            fmt::format("keyspace {} partition {}: {}", ks, p, r.status().ToString()));
        ranges_with_work.push_back(
            Json{{"keyspace", ks}, {"partition", p}, {"error", r.status().ToString()}});
        line.Set(done, bytes);
        continue;
      }
      if (!r->skipped.empty()) {
        // A node filter skips most ranges by design: those are not worth a line.
        if (args.repair.node == 0 || r->skipped.find("holds no replica") == std::string::npos) {
          ++skipped;
          ranges_with_work.push_back(
              Json{{"keyspace", ks}, {"partition", p}, {"skipped", r->skipped}});
        }
        line.Set(done, bytes);
        continue;
      }
      ++repaired;
      agreed += r->agreed ? 1 : 0;
      keys += r->keys_repaired;
      bytes += r->bytes;
      purged += r->tombstones_purged;
      if (r->segments_differing > 0) {
        ++differing;
        ranges_with_work.push_back(Json{{"keyspace", ks},
                                        {"partition", p},
                                        {"replicas", r->replicas},
                                        {"answered", r->answered},
                                        {"segments_differing", r->segments_differing},
                                        {"keys_compared", r->keys_compared},
                                        {"keys_repaired", r->keys_repaired},
                                        {"bytes", r->bytes},
                                        {"agreed", r->agreed}});
      } else if (!r->agreed) {
        ranges_with_work.push_back(Json{{"keyspace", ks},
                                        {"partition", p},
                                        {"replicas", r->replicas},
                                        {"answered", r->answered},
                                        {"agreed", false}});
      }
      line.Set(done, bytes);
    }
  }
  line.Finish();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string run_id = fmt::format("{:016x}", run.id);
  Json summary{{"run_id", run_id},
               {"keyspaces", keyspaces},
               {"ranges", done},
               {"repaired", repaired},
               {"agreed", agreed},
               {"ranges_differing", differing},
               {"skipped", skipped},
               {"errors", problems.size()},
               {"keys_repaired", keys},
               {"bytes", bytes},
               {"tombstones_purged", purged},
               {"seconds", seconds},
               {"ranges_with_work", ranges_with_work}};
  std::string text = fmt::format(
      "repaired {} of {} ranges in {}: {} differed, {} keys ({}) sent to replicas that lacked "
      "them; {} agreed with every replica taking part\n",
      repaired, done, ProgressLine::FormatDuration(seconds), differing, keys,
      ProgressLine::FormatBytes(static_cast<double>(bytes)), agreed);
  if (purged > 0) {
    text += fmt::format("{} tombstones purged (every replica had them)\n", purged);
  }
  if (skipped > 0) text += fmt::format("{} ranges skipped (see --json for why)\n", skipped);
  text += fmt::format("repair run {} (GET /v1/repairs and the web console show it)\n", run_id);
  for (const std::string& p : problems) text += fmt::format("failed: {}\n", p);
  const int code = context.Reply(summary, text);
  if (!problems.empty()) return kExitFailed;
  return code;
}

int Compact(Context& context, const Args&) {
  if (!context.json()) Note("compacting the node's data (the node serves meanwhile)...");
  auto r = context.long_client().Compact();
  if (!r.ok()) return Fail(r.status());
  return context.Reply(
      Json{{"bytes_before", r->bytes_before},
           {"bytes_after", r->bytes_after},
           {"seconds", static_cast<double>(r->took.count()) / 1000}},
      fmt::format("compacted in {}: {} before, {} after\n",
                  ProgressLine::FormatDuration(static_cast<double>(r->took.count()) / 1000),
                  ProgressLine::FormatBytes(static_cast<double>(r->bytes_before)),
                  ProgressLine::FormatBytes(static_cast<double>(r->bytes_after))));
}

}  // namespace cairn::tools::cli
