// Options of the Cairn client library.
//
// These are classes with a default constructor rather than plain aggregates on purpose: g++ 12
// destroys aggregate temporaries twice when they appear in an expression that also holds
// co_await, and these are typically written inside co_await client.Get(..., options).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cairn/types.h"

namespace cairn {

struct ClientOptions {
  ClientOptions() = default;

  // HOST:PORT of one or more Cairn nodes. Requests are spread over them (or routed by key, see
  // token_aware); a node that cannot be reached is skipped until it can.
  std::vector<std::string> servers = {"127.0.0.1:7400"};
  // Connections kept open per server. Each connection carries many requests at once.
  size_t connections_per_server = 2;
  std::chrono::milliseconds connect_timeout{2000};
  // Default time a request may take, end to end (the server gets the same deadline).
  std::chrono::milliseconds request_timeout{5000};
  // Keyspace and consistency levels used when a call does not name its own. kDefault: the
  // keyspace's default level.
  std::string keyspace = "default";
  Consistency read_consistency = Consistency::kDefault;
  Consistency write_consistency = Consistency::kDefault;
  // Reads are retried on another connection this many times when a connection breaks before
  // the answer arrives. Writes are never retried by the library (they may have applied).
  int read_retries = 2;
  // Largest response accepted (a scan page of large values can be big).
  size_t max_frame_bytes = size_t{64} << 20;
  // Token-aware routing: send each Get, Put, Delete and Cas to a replica of its key, so that its
  // coordinator holds the data and a read at ONE or LOCAL_ONE is answered without a hop to
  // another node. Writes and SERIAL reads go to the first live replica in placement order; other
  // reads take the live replicas in turn, so that the reads of a hot key are spread over all of
  // them rather than all landing on the first. The client learns the cluster's layout
  // (members, partition map, keyspaces) on its first call, and again every `layout_refresh` and
  // soon after a routed request fails to connect or names a keyspace it does not know. It routes
  // only to nodes whose address is in `servers`, as the cluster lists them: list every node.
  // Requests go round robin instead while the layout is unknown, when no live replica is listed,
  // for scans and batches, and for a retry after a connection failure.
  bool token_aware = false;
  // Answer reads at ONE and LOCAL_ONE of a key the cluster finds hot from this client's cache,
  // for as long as the server's answer says (cairnd --client-cache-ttl-ms, 100 ms by default):
  // such a read may miss other clients' writes of the last 100 ms, on top of what ONE allows;
  // this client's writes drop what it cached of their keys. See docs/hot-keys.md.
  bool cache_hot_keys = true;
  // With token_aware, only replicas in this data centre are chosen (empty: any data centre).
  std::string local_dc;
  std::chrono::milliseconds layout_refresh{10000};
  // Servers started with --auth: each new connection logs in as `user` with `password` before
  // its first request (docs/security.md). Empty user: no login. A refused login fails the call
  // with UNAUTHENTICATED.
  std::string user;
  std::string password;
  // TLS: connect to every server with TLS and verify its certificate against the PEM CA
  // certificate(s) in tls_ca_file (empty: the system's trusted CAs). The certificate must name
  // the host or IP address of the server as written in `servers`. A missing or unreadable file
  // fails every call with INVALID_ARGUMENT, saying why.
  bool tls = false;
  std::string tls_ca_file;
};

// Per-call overrides for reads. Unset fields take the client's defaults.
struct ReadOptions {
  ReadOptions() = default;

  std::optional<std::string> keyspace;
  std::optional<Consistency> consistency;
  std::optional<std::chrono::milliseconds> timeout;
};

// Per-call overrides for writes.
struct WriteOptions {
  WriteOptions() = default;

  std::optional<std::string> keyspace;
  std::optional<Consistency> consistency;
  std::optional<std::chrono::milliseconds> timeout;
  // When non-zero the value expires this long after the write.
  std::chrono::milliseconds ttl{0};
  // Compare-and-swap only, where `consistency` is SERIAL (the default) or LOCAL_SERIAL: the level
  // the applied value is committed at before the answer (default QUORUM, or LOCAL_QUORUM under
  // LOCAL_SERIAL; none in a linearizable keyspace).
  std::optional<Consistency> commit_consistency;
};

struct ScanOptions {
  ScanOptions() = default;

  std::optional<std::string> keyspace;
  std::optional<Consistency> consistency;
  std::optional<std::chrono::milliseconds> timeout;
  uint32_t limit = 0;  // keys per page; 0: the server's default (100); at most 10,000
  std::string cursor;  // from the previous page; empty: start at the beginning
};

// The condition of a compare-and-swap, on the key's current live value.
class CasCondition {
 public:
  enum class Kind { kIfVersion, kIfValue, kIfNotExists, kIfExists };

  static CasCondition IfVersion(Version v) { return CasCondition(Kind::kIfVersion, v, {}); }
  static CasCondition IfValue(std::string value) {
    return CasCondition(Kind::kIfValue, {}, std::move(value));
  }
  static CasCondition IfNotExists() { return CasCondition(Kind::kIfNotExists, {}, {}); }
  static CasCondition IfExists() { return CasCondition(Kind::kIfExists, {}, {}); }

  Kind kind() const { return kind_; }
  const Version& version() const { return version_; }
  const std::string& value() const { return value_; }

 private:
  CasCondition(Kind kind, Version version, std::string value)
      : kind_(kind), version_(version), value_(std::move(value)) {}

  Kind kind_;
  Version version_;
  std::string value_;
};

// What to create with CreateKeyspace.
struct KeyspaceSpec {
  KeyspaceSpec() = default;
  explicit KeyspaceSpec(std::string n) : name(std::move(n)) {}

  std::string name;
  // Replicas per data centre ({"*": 3}: three in each; see ParseReplication in cairn/types.h).
  ReplicationMap replication = {{std::string(kEveryDc), 3}};
  Consistency read_consistency = Consistency::kQuorum;
  Consistency write_consistency = Consistency::kQuorum;
  // Every write goes through Paxos and every quorum read is SERIAL (docs/consistency.md).
  bool linearizable = false;
  // Split a counter automatically once it takes this many increments a second, summed over the
  // nodes that coordinate them (docs/hot-keys.md); 0: never. 10 to 10,000,000.
  uint32_t auto_split_increments_per_s = 0;
  uint32_t auto_split_shards = 16;  // the sub-counters of such a split, 2 to 64
};

// What AlterKeyspace changes; unset fields stay as they are.
struct KeyspaceChange {
  KeyspaceChange() = default;

  std::optional<bool> linearizable;
  std::optional<Consistency> read_consistency;
  std::optional<Consistency> write_consistency;
  std::optional<uint32_t> auto_split_increments_per_s;  // 0 turns automatic splitting off
  std::optional<uint32_t> auto_split_shards;
};

}  // namespace cairn
