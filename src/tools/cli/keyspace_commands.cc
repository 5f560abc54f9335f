// keyspace create, alter, list, describe, drop.
#include "tools/cli/keyspace_commands.h"

#include <algorithm>
#include <cstdint>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace cairn::tools::cli {
namespace {

// A count from the command line for the server to check: one too large for 32 bits stays too
// large, so the server's range error names it.
uint32_t Clamped(int64_t n) { return static_cast<uint32_t>(std::min<int64_t>(n, UINT32_MAX)); }

// "16 sub-counters at 500 incr/s" or "off".
std::string AutoSplitText(const KeyspaceInfo& k) {
  if (k.auto_split_increments_per_s == 0) return "off";
  return fmt::format("{} incr/s -> {}", k.auto_split_increments_per_s, k.auto_split_shards);
}

}  // namespace

int KeyspaceCreate(Context& context, const Args& args) {
  const KeyspaceArgs& a = args.keyspace;
  KeyspaceSpec spec(a.name);
  auto replication = ParseReplication(a.replication);
  if (!replication) {
    return Reject(fmt::format("--rf wants N or DC=N,DC=N (N up to {}), not '{}'",
                              kMaxReplicationFactor, a.replication));
  }
  spec.replication = *replication;
  auto read_level = ParseLevel(a.read_level_name, "--read-cl");
  if (!read_level.ok()) return Reject(read_level.status().message());
  if (*read_level) spec.read_consistency = **read_level;
  auto write_level = ParseLevel(a.write_level_name, "--write-cl");
  if (!write_level.ok()) return Reject(write_level.status().message());
  if (*write_level) spec.write_consistency = **write_level;
  spec.linearizable = a.linearizable;
  if (a.auto_split_increments_per_s >= 0) {
    spec.auto_split_increments_per_s = Clamped(a.auto_split_increments_per_s);
  }
  if (a.auto_split_shards >= 0) spec.auto_split_shards = Clamped(a.auto_split_shards);
  auto r = context.client().CreateKeyspace(spec, a.if_not_exists);
  if (!r.ok()) return Fail(r.status());
  return context.Reply(KeyspaceJson(*r), "created keyspace " + r->name + "\n");
}

int KeyspaceAlter(Context& context, const Args& args) {
  const KeyspaceArgs& a = args.keyspace;
  KeyspaceChange change;
  if (a.linearizable) change.linearizable = true;
  if (a.not_linearizable) change.linearizable = false;
  auto read_level = ParseLevel(a.read_level_name, "--read-cl");
  if (!read_level.ok()) return Reject(read_level.status().message());
  change.read_consistency = *read_level;
  auto write_level = ParseLevel(a.write_level_name, "--write-cl");
  if (!write_level.ok()) return Reject(write_level.status().message());
  change.write_consistency = *write_level;
  if (a.auto_split_increments_per_s >= 0) {
    change.auto_split_increments_per_s = Clamped(a.auto_split_increments_per_s);
  }
  if (a.auto_split_shards >= 0) change.auto_split_shards = Clamped(a.auto_split_shards);
  if (!change.linearizable && !change.read_consistency && !change.write_consistency &&
      !change.auto_split_increments_per_s && !change.auto_split_shards) {
    return Reject(
        "keyspace alter needs --linearizable, --no-linearizable, --read-cl, --write-cl, "
        "--auto-split-increments-per-s or --auto-split-shards");
  }
  auto r = context.client().AlterKeyspace(a.name, change);
  if (!r.ok()) return Fail(r.status());
  return context.Reply(KeyspaceJson(*r), "altered keyspace " + r->name + "\n");
}

int KeyspaceList(Context& context, const Args&) {
  auto r = context.client().ListKeyspaces();
  if (!r.ok()) return Fail(r.status());
  if (context.json()) {
    Json list = Json::array();
    for (const auto& k : *r) list.push_back(KeyspaceJson(k));
    PrintJson(list);
    return kExitOk;
  }
  std::cout << fmt::format("{:<24} {:<16} {:<13} {:<13} {:<12} {:<20} {}\n", "NAME", "REPLICATION",
                           "READ", "WRITE", "LINEARIZABLE", "AUTO-SPLIT", "CREATED");
  for (const auto& k : *r) {
    std::cout << fmt::format("{:<24} {:<16} {:<13} {:<13} {:<12} {:<20} {}\n", k.name,
                             ReplicationText(k.replication), ConsistencyName(k.read_consistency),
                             ConsistencyName(k.write_consistency), k.linearizable ? "yes" : "no",
                             AutoSplitText(k), IsoTime(k.created_at_ms));
  }
  return kExitOk;
}

int KeyspaceDescribe(Context& context, const Args& args) {
  auto r = context.client().DescribeKeyspace(args.keyspace.name);
  if (!r.ok()) return Fail(r.status());
  return context.Reply(
      KeyspaceJson(*r),
      fmt::format("name:               {}\n"
                  "replication:        {}\n"
                  "read consistency:   {}\n"
                  "write consistency:  {}\n"
                  "linearizable:       {}\n"
                  "auto split:         {}\n"
                  "created:            {}\n"
                  "id:                 {}\n",
                  r->name, ReplicationText(r->replication), ConsistencyName(r->read_consistency),
                  ConsistencyName(r->write_consistency), r->linearizable ? "yes" : "no",
                  r->auto_split_increments_per_s == 0
                      ? std::string("off")
                      : fmt::format("at {} increments/s of a counter, into {} sub-counters",
                                    r->auto_split_increments_per_s, r->auto_split_shards),
                  IsoTime(r->created_at_ms), r->id));
}

int KeyspaceDrop(Context& context, const Args& args) {
  const KeyspaceArgs& a = args.keyspace;
  if (Status s = context.client().DropKeyspace(a.name, a.if_exists); !s.ok()) return Fail(s);
  return context.Reply(Json{{"dropped", a.name}}, "dropped keyspace " + a.name + "\n");
}

}  // namespace cairn::tools::cli
