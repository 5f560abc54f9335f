// cairn: the command-line client. See docs/cli.md.
//
// Exit codes: 0 ok; 1 key not found or condition not met; 2 usage error or request rejected;
// 3 unavailable, timeout or server error.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <string>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "base/text.h"
#include "cairn/client.h"

namespace {

using cairn::Code;
using cairn::Consistency;
using cairn::Record;
using cairn::Status;
using Json = nlohmann::ordered_json;

constexpr int kExitOk = 0;
constexpr int kExitNotFound = 1;
constexpr int kExitRejected = 2;
constexpr int kExitFailed = 3;

int ExitCodeFor(const Status& s) {
  switch (s.code()) {
    case Code::kOk:
      return kExitOk;
    case Code::kNotFound:
    case Code::kConditionFailed:
      return kExitNotFound;
    case Code::kInvalidArgument:
    case Code::kTooLarge:
    case Code::kAlreadyExists:
    case Code::kFailedPrecondition:
      return kExitRejected;
    case Code::kUnavailable:
    case Code::kTimeout:
    case Code::kInternal:
      return kExitFailed;
  }
  return kExitFailed;
}

int Fail(const Status& s) {
  std::cerr << "cairn: " << s.ToString() << "\n";
  if (s.code() == Code::kTimeout) {
    std::cerr << "cairn: a timed-out write may or may not have been applied\n";
  }
  return ExitCodeFor(s);
}

// Bytes as a JSON field: `name` when they are UTF-8 text, else `name_base64`.
void PutBytes(Json& j, const std::string& name, std::string_view bytes) {
  if (cairn::base::IsUtf8(bytes)) {
    j[name] = std::string(bytes);
  } else {
    j[name + "_base64"] = cairn::base::Base64(bytes);
  }
}

// Bytes for a terminal line: printable ASCII as is, the rest as \xNN.
std::string Printable(std::string_view bytes) {
  std::string out;
  for (char c : bytes) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(c);
    } else if (c == '\\') {
      out += "\\\\";
    } else {
      out += fmt::format("\\x{:02x}", static_cast<uint8_t>(c));
    }
  }
  return out;
}

std::string IsoTime(uint64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", fmt::gmtime(secs), ms % 1000);
}

uint64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

Json RecordJson(const std::string& key, const Record& r) {
  Json j;
  PutBytes(j, "key", key);
  PutBytes(j, "value", r.value);
  j["version"] = r.version.ToString();
  j["written_at"] = IsoTime(r.version.Millis());
  j["written_by_node"] = r.version.node;
  if (r.expires_at_ms != 0) {
    j["expires_at"] = IsoTime(r.expires_at_ms);
    const uint64_t now = NowMs();
    j["ttl_ms"] = r.expires_at_ms > now ? r.expires_at_ms - now : 0;
  } else {
    j["expires_at"] = nullptr;
  }
  return j;
}

Json KeyspaceJson(const cairn::KeyspaceInfo& k) {
  return Json{{"name", k.name},
              {"id", k.id},
              {"replication", cairn::ReplicationText(k.replication)},
              {"read_consistency", std::string(cairn::ConsistencyName(k.read_consistency))},
              {"write_consistency", std::string(cairn::ConsistencyName(k.write_consistency))},
              {"linearizable", k.linearizable},
              {"created_at", IsoTime(k.created_at_ms)}};
}

void PrintJson(const Json& j) { std::cout << j.dump() << "\n"; }

// Reads VALUE: the argument itself, or all of stdin for "-".
std::string ValueArg(const std::string& arg) {
  if (arg != "-") return arg;
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

std::optional<Consistency> LevelArg(const std::string& name, const char* flag) {
  if (name.empty()) return std::nullopt;
  auto level = cairn::ParseConsistency(name);
  if (!level) {
    throw CLI::ValidationError(
        flag, fmt::format("unknown consistency level '{}' (ONE, TWO, THREE, QUORUM, ALL, "
                          "LOCAL_ONE, LOCAL_QUORUM, EACH_QUORUM, ANY, SERIAL, LOCAL_SERIAL)",
                          name));
  }
  return level;
}

struct Globals {
  std::string server = "127.0.0.1:7400";
  std::string keyspace = "default";
  std::string level;
  bool json = false;
  uint32_t timeout_ms = 5000;
};

}  // namespace

int main(int argc, char** argv) {
  Globals g;
  CLI::App app{
      "cairn: command-line client for the Cairn key-value store.\n"
      "Exit codes: 0 ok; 1 key not found or condition not met; 2 usage error or request "
      "rejected; 3 unavailable, timeout or server error."};
  app.set_version_flag("--version", std::string("cairn ") + CAIRN_VERSION);
  app.require_subcommand(1);
  app.add_option("--server", g.server, "HOST:PORT of a Cairn node")
      ->envname("CAIRN_SERVER")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->capture_default_str();
  app.add_option("--keyspace,-k", g.keyspace, "Keyspace to use")->capture_default_str();
  app.add_option("--cl", g.level,
                 "Consistency level (ONE, QUORUM, ALL, ...); default: the keyspace's default");
  app.add_flag("--json", g.json, "Print results as JSON (values, versions and metadata)");
  app.add_option("--timeout", g.timeout_ms, "Request timeout in milliseconds")
      ->capture_default_str();

  std::string key, value, prefix, cursor, expect_version, expect_value;
  uint64_t ttl_seconds = 0;
  uint32_t limit = 100;
  bool expect_absent = false, expect_present = false, cas_delete = false;

  auto* put = app.add_subcommand("put", "Store VALUE under KEY (VALUE '-' reads stdin)");
  put->add_option("KEY", key, "The key")->required();
  put->add_option("VALUE", value, "The value, or '-' to read it from stdin")->required();
  put->add_option("--ttl", ttl_seconds, "Expire the value after this many seconds");

  auto* get = app.add_subcommand("get", "Print the value of KEY (exit 1 when absent)");
  get->add_option("KEY", key, "The key")->required();

  auto* del = app.add_subcommand("del", "Delete KEY");
  del->add_option("KEY", key, "The key")->required();

  auto* cas = app.add_subcommand(
      "cas", "Store NEW under KEY only if the condition holds (exit 1 when it does not)");
  cas->add_option("KEY", key, "The key")->required();
  auto* cas_new = cas->add_option("NEW", value, "The new value, or '-' to read it from stdin");
  auto* ev = cas->add_option("--expect-version", expect_version,
                             "Only if the current version is V (as printed by get --json)");
  auto* eval = cas->add_option("--expect-value", expect_value, "Only if the current value is X");
  auto* ea = cas->add_flag("--expect-absent", expect_absent, "Only if KEY does not exist");
  auto* ep = cas->add_flag("--expect-present", expect_present, "Only if KEY exists");
  auto* cd = cas->add_flag("--delete", cas_delete, "Delete KEY instead of storing NEW");
  cas->add_option("--ttl", ttl_seconds, "Expire the new value after this many seconds");
  std::string commit_cl;
  cas->add_option("--commit-cl", commit_cl,
                  "Level the applied value is committed at before the answer (default QUORUM, "
                  "LOCAL_QUORUM under --cl LOCAL_SERIAL; none in a linearizable keyspace); "
                  "--cl picks SERIAL (default) or LOCAL_SERIAL");
  ev->excludes(eval)->excludes(ea)->excludes(ep);
  eval->excludes(ea)->excludes(ep);
  ea->excludes(ep);
  cd->excludes(cas_new);

  auto* scan = app.add_subcommand("scan", "List keys starting with PREFIX, in key order");
  scan->add_option("PREFIX", prefix, "Key prefix ('' for all keys)")->required();
  scan->add_option("--limit", limit, "Print at most N keys")->capture_default_str();
  scan->add_option("--cursor", cursor, "Continue after this key (from a previous scan)");

  auto* ks = app.add_subcommand("keyspace", "Create, list, describe or drop keyspaces");
  ks->require_subcommand(1);
  std::string ks_name, read_cl, write_cl, rf = "3";
  bool if_not_exists = false, if_exists = false;
  auto* ks_create = ks->add_subcommand("create", "Create keyspace NAME");
  ks_create->add_option("NAME", ks_name, "Keyspace name")->required();
  ks_create
      ->add_option("--rf", rf, "Replicas: N in every data centre, or DC=N,DC=N per data centre")
      ->capture_default_str();
  ks_create->add_option("--read-cl", read_cl, "Default read consistency (default QUORUM)");
  ks_create->add_option("--write-cl", write_cl, "Default write consistency (default QUORUM)");
  ks_create->add_flag("--if-not-exists", if_not_exists, "Succeed if it already exists");
  bool linearizable = false, not_linearizable = false;
  ks_create->add_flag("--linearizable", linearizable,
                      "Route every write through Paxos and every quorum read through SERIAL, so "
                      "that plain writes and compare-and-swap are linearizable together");
  auto* ks_alter =
      ks->add_subcommand("alter", "Change the options of keyspace NAME (not its replication)");
  ks_alter->add_option("NAME", ks_name, "Keyspace name")->required();
  auto* alter_lin = ks_alter->add_flag("--linearizable", linearizable,
                                       "Make it linearizable (see keyspace create --help)");
  auto* alter_nolin =
      ks_alter->add_flag("--no-linearizable", not_linearizable, "Make it an ordinary keyspace");
  alter_lin->excludes(alter_nolin);
  ks_alter->add_option("--read-cl", read_cl, "New default read consistency");
  ks_alter->add_option("--write-cl", write_cl, "New default write consistency");
  auto* ks_list = ks->add_subcommand("list", "List keyspaces");
  auto* ks_describe = ks->add_subcommand("describe", "Show keyspace NAME");
  ks_describe->add_option("NAME", ks_name, "Keyspace name")->required();
  auto* ks_drop = ks->add_subcommand("drop", "Drop keyspace NAME and all its data");
  ks_drop->add_option("NAME", ks_name, "Keyspace name")->required();
  ks_drop->add_flag("--if-exists", if_exists, "Succeed if it does not exist");

  auto* ping = app.add_subcommand("ping", "Check that the server answers");
  auto* metrics = app.add_subcommand(
      "metrics", "Print the node's counters since it started (Paxos operations, round trips)");
  auto* status = app.add_subcommand(
      "status",
      "Show every node of the cluster: address, DC, rack, UP/DOWN, partitions, load, hints");

  std::optional<Consistency> level, commit_level;
  try {
    app.parse(argc, argv);
    level = LevelArg(g.level, "--cl");
    commit_level = LevelArg(commit_cl, "--commit-cl");
    if (*cas && !cas_delete && cas_new->count() == 0) {
      throw CLI::ValidationError("NEW", "cas needs NEW or --delete");
    }
    if (*cas && !expect_absent && !expect_present && ev->count() == 0 && eval->count() == 0) {
      throw CLI::ValidationError(
          "cas",
          "name a condition: --expect-version, --expect-value, --expect-absent or "
          "--expect-present");
    }
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::Error& e) {
    app.exit(e);  // prints the message and usage
    return kExitRejected;
  }

  cairn::ClientOptions options;
  options.servers = {g.server};
  options.connections_per_server = 1;
  options.keyspace = g.keyspace;
  options.request_timeout = std::chrono::milliseconds(g.timeout_ms);
  options.read_retries = 1;
  cairn::Client client(options);

  cairn::ReadOptions ro;
  ro.consistency = level;
  cairn::WriteOptions wo;
  wo.consistency = level;
  wo.ttl = std::chrono::seconds(ttl_seconds);

  if (*put) {
    auto v = client.Put(key, ValueArg(value), wo);
    if (!v.ok()) return Fail(v.status());
    if (g.json) {
      PrintJson(Json{{"version", v->ToString()}});
    } else {
      std::cout << "OK (version " << v->ToString() << ")\n";
    }
    return kExitOk;
  }
  if (*get) {
    auto r = client.Get(key, ro);
    if (!r.ok()) return Fail(r.status());
    if (!r->has_value()) {
      if (g.json) PrintJson(Json{{"found", false}});
      std::cerr << "cairn: key not found\n";
      return kExitNotFound;
    }
    if (g.json) {
      Json j = RecordJson(key, **r);
      j["found"] = true;
      PrintJson(j);
    } else {
      std::cout << (*r)->value;
      // At a terminal the prompt must not land on the value's line; piped, the bytes are exact.
      if (::isatty(STDOUT_FILENO) && !(*r)->value.ends_with('\n')) std::cout << "\n";
    }
    return kExitOk;
  }
  if (*del) {
    auto v = client.Delete(key, wo);
    if (!v.ok()) return Fail(v.status());
    if (g.json) {
      PrintJson(Json{{"version", v->ToString()}});
    } else {
      std::cout << "OK\n";
    }
    return kExitOk;
  }
  if (*cas) {
    std::optional<cairn::CasCondition> condition;
    if (ev->count() > 0) {
      auto v = cairn::Version::Parse(expect_version);
      if (!v) {
        std::cerr << "cairn: --expect-version wants a version like 116027195034353664:7 (from "
                     "get --json)\n";
        return kExitRejected;
      }
      condition = cairn::CasCondition::IfVersion(*v);
    } else if (eval->count() > 0) {
      condition = cairn::CasCondition::IfValue(expect_value);
    } else if (expect_absent) {
      condition = cairn::CasCondition::IfNotExists();
    } else {
      condition = cairn::CasCondition::IfExists();
    }
    std::optional<std::string> new_value;
    if (!cas_delete) new_value = ValueArg(value);
    wo.commit_consistency = commit_level;
    auto r = client.Cas(key, *condition, std::move(new_value), wo);
    if (!r.ok()) return Fail(r.status());
    if (g.json) {
      Json j{{"applied", r->applied}};
      j["current"] = r->current ? RecordJson(key, *r->current) : Json(nullptr);
      PrintJson(j);
    } else if (r->applied) {
      std::cout << "applied"
                << (r->current ? " (version " + r->current->version.ToString() + ")" : "") << "\n";
    } else {
      std::cout << "not applied: "
                << (r->current ? "current version " + r->current->version.ToString()
                               : std::string("the key does not exist"))
                << "\n";
    }
    return r->applied ? kExitOk : kExitNotFound;
  }
  if (*scan) {
    uint32_t printed = 0;
    std::string next = cursor;
    Json entries = Json::array();
    while (printed < limit) {
      cairn::ScanOptions so;
      so.consistency = level;
      so.cursor = next;
      so.limit = std::min<uint32_t>(limit - printed, 1000);
      auto page = client.Scan(prefix, so);
      if (!page.ok()) return Fail(page.status());
      for (const auto& [k, rec] : page->entries) {
        if (g.json) {
          entries.push_back(RecordJson(k, rec));
        } else {
          std::cout << Printable(k) << "\t" << Printable(rec.value) << "\n";
        }
        ++printed;
      }
      next = page->cursor;
      if (page->done()) break;
    }
    if (g.json) {
      PrintJson(Json{{"entries", entries}, {"cursor", next.empty() ? Json(nullptr) : Json(next)}});
    } else if (!next.empty()) {
      std::cerr << "cairn: more keys follow; continue with --cursor '" << Printable(next) << "'\n";
    }
    return kExitOk;
  }
  if (*ks_create) {
    cairn::KeyspaceSpec spec(ks_name);
    auto replication = cairn::ParseReplication(rf);
    if (!replication) {
      std::cerr << "cairn: --rf wants N or DC=N,DC=N (N up to " << cairn::kMaxReplicationFactor
                << "), not '" << rf << "'\n";
      return kExitRejected;
    }
    spec.replication = *replication;
    try {
      if (auto l = LevelArg(read_cl, "--read-cl")) spec.read_consistency = *l;
      if (auto l = LevelArg(write_cl, "--write-cl")) spec.write_consistency = *l;
    } catch (const CLI::Error& e) {
      std::cerr << "cairn: " << e.what() << "\n";
      return kExitRejected;
    }
    spec.linearizable = linearizable;
    auto r = client.CreateKeyspace(spec, if_not_exists);
    if (!r.ok()) return Fail(r.status());
    if (g.json) {
      PrintJson(KeyspaceJson(*r));
    } else {
      std::cout << "created keyspace " << r->name << "\n";
    }
    return kExitOk;
  }
  if (*ks_alter) {
    cairn::KeyspaceChange change;
    if (linearizable) change.linearizable = true;
    if (not_linearizable) change.linearizable = false;
    try {
      change.read_consistency = LevelArg(read_cl, "--read-cl");
      change.write_consistency = LevelArg(write_cl, "--write-cl");
    } catch (const CLI::Error& e) {
      std::cerr << "cairn: " << e.what() << "\n";
      return kExitRejected;
    }
    if (!change.linearizable && !change.read_consistency && !change.write_consistency) {
      std::cerr << "cairn: keyspace alter needs --linearizable, --no-linearizable, --read-cl or "
                   "--write-cl\n";
      return kExitRejected;
    }
    auto r = client.AlterKeyspace(ks_name, change);
    if (!r.ok()) return Fail(r.status());
    if (g.json) {
      PrintJson(KeyspaceJson(*r));
    } else {
      std::cout << "altered keyspace " << r->name << "\n";
    }
    return kExitOk;
  }
  if (*ks_list) {
    auto r = client.ListKeyspaces();
    if (!r.ok()) return Fail(r.status());
    if (g.json) {
      Json list = Json::array();
      for (const auto& k : *r) list.push_back(KeyspaceJson(k));
      PrintJson(list);
    } else {
      std::cout << fmt::format("{:<24} {:<16} {:<13} {:<13} {:<12} {}\n", "NAME", "REPLICATION",
                               "READ", "WRITE", "LINEARIZABLE", "CREATED");
      for (const auto& k : *r) {
        std::cout << fmt::format("{:<24} {:<16} {:<13} {:<13} {:<12} {}\n", k.name,
                                 cairn::ReplicationText(k.replication),
                                 cairn::ConsistencyName(k.read_consistency),
                                 cairn::ConsistencyName(k.write_consistency),
                                 k.linearizable ? "yes" : "no", IsoTime(k.created_at_ms));
      }
    }
    return kExitOk;
  }
  if (*ks_describe) {
    auto r = client.DescribeKeyspace(ks_name);
    if (!r.ok()) return Fail(r.status());
    if (g.json) {
      PrintJson(KeyspaceJson(*r));
    } else {
      std::cout << "name:               " << r->name << "\n"
                << "replication:        " << cairn::ReplicationText(r->replication) << "\n"
                << "read consistency:   " << cairn::ConsistencyName(r->read_consistency) << "\n"
                << "write consistency:  " << cairn::ConsistencyName(r->write_consistency) << "\n"
                << "linearizable:       " << (r->linearizable ? "yes" : "no") << "\n"
                << "created:            " << IsoTime(r->created_at_ms) << "\n"
                << "id:                 " << r->id << "\n";
    }
    return kExitOk;
  }
  if (*ks_drop) {
    Status s = client.DropKeyspace(ks_name, if_exists);
    if (!s.ok()) return Fail(s);
    if (g.json) {
      PrintJson(Json{{"dropped", ks_name}});
    } else {
      std::cout << "dropped keyspace " << ks_name << "\n";
    }
    return kExitOk;
  }
  if (*status) {
    auto r = client.ClusterStatus();
    if (!r.ok()) return Fail(r.status());
    if (g.json) {
      Json nodes = Json::array();
      for (const auto& n : r->nodes) {
        nodes.push_back(Json{{"node_id", n.node_id},
                             {"address", n.address},
                             {"dc", n.dc},
                             {"rack", n.rack},
                             {"state", n.up ? "UP" : "DOWN"},
                             {"partitions", n.partitions},
                             {"load_bytes", n.load_bytes},
                             {"hints_pending", n.hints_pending},
                             {"self", n.self}});
      }
      PrintJson(Json{{"formed", r->formed},
                     {"partitions", r->partitions},
                     {"note", r->note},
                     {"nodes", nodes}});
      return kExitOk;
    }
    auto human = [](uint64_t bytes) {
      const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
      double v = static_cast<double>(bytes);
      int u = 0;
      while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
      }
      return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, units[u]);
    };
    std::cout << fmt::format("Cluster of {} nodes, {} partitions{}\n", r->nodes.size(),
                             r->partitions, r->formed ? "" : " (not formed: " + r->note + ")");
    std::map<std::string, std::vector<const cairn::NodeInfo*>> by_dc;
    for (const auto& n : r->nodes) by_dc[n.dc.empty() ? "?" : n.dc].push_back(&n);
    for (const auto& [dc, nodes] : by_dc) {
      std::cout << "\nDatacenter: " << dc << "\n";
      std::cout << fmt::format("{:<6} {:<22} {:<11} {:<10} {:>10} {:>10} {:>8}\n", "STATE",
                               "ADDRESS", "NODE", "RACK", "LOAD", "PARTITIONS", "HINTS");
      for (const auto* n : nodes) {
        std::cout << fmt::format("{:<6} {:<22} {:<11} {:<10} {:>10} {:>10} {:>8}{}\n",
                                 n->up ? "UP" : "DOWN", n->address,
                                 n->node_id == 0 ? std::string("?") : std::to_string(n->node_id),
                                 n->rack.empty() ? "?" : n->rack, human(n->load_bytes),
                                 n->partitions, n->hints_pending, n->self ? "  (this node)" : "");
      }
    }
    return kExitOk;
  }
  if (*metrics) {
    auto r = client.Metrics();
    if (!r.ok()) return Fail(r.status());
    if (g.json) {
      PrintJson(Json(*r));
    } else {
      for (const auto& [name, value] : *r) std::cout << name << " " << value << "\n";
    }
    return kExitOk;
  }
  if (*ping) {
    const auto start = std::chrono::steady_clock::now();
    auto r = client.Ping();
    if (!r.ok()) return Fail(r.status());
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (g.json) {
      PrintJson(Json{{"node", r->node_id}, {"version", r->version}, {"round_trip_ms", ms}});
    } else {
      std::cout << fmt::format("PONG from node {} (cairnd {}) in {:.2f} ms\n", r->node_id,
                               r->version, ms);
    }
    return kExitOk;
  }
  return kExitRejected;
}
