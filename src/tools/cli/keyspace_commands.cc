// keyspace create, alter, list, describe, drop.
#include "tools/cli/keyspace_commands.h"

#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace cairn::tools::cli {

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
  if (!change.linearizable && !change.read_consistency && !change.write_consistency) {
    return Reject(
        "keyspace alter needs --linearizable, --no-linearizable, --read-cl or --write-cl");
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
  std::cout << fmt::format("{:<24} {:<16} {:<13} {:<13} {:<12} {}\n", "NAME", "REPLICATION", "READ",
                           "WRITE", "LINEARIZABLE", "CREATED");
  for (const auto& k : *r) {
    std::cout << fmt::format("{:<24} {:<16} {:<13} {:<13} {:<12} {}\n", k.name,
                             ReplicationText(k.replication), ConsistencyName(k.read_consistency),
                             ConsistencyName(k.write_consistency), k.linearizable ? "yes" : "no",
                             IsoTime(k.created_at_ms));
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
                  "created:            {}\n"
                  "id:                 {}\n",
                  r->name, ReplicationText(r->replication), ConsistencyName(r->read_consistency),
                  ConsistencyName(r->write_consistency), r->linearizable ? "yes" : "no",
                  IsoTime(r->created_at_ms), r->id));
}

int KeyspaceDrop(Context& context, const Args& args) {
  const KeyspaceArgs& a = args.keyspace;
  if (Status s = context.client().DropKeyspace(a.name, a.if_exists); !s.ok()) return Fail(s);
  return context.Reply(Json{{"dropped", a.name}}, "dropped keyspace " + a.name + "\n");
}

}  // namespace cairn::tools::cli
