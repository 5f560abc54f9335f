// What every subcommand of `cairn` works with: the command line as plain data (Args) and a
// Context to reach the server and print through. A subcommand is one function
//   int Name(Context& context, const Args& args)   // returns the exit code (output.h)
// in the file of its group (data_commands, keyspace_commands, cluster_commands). The command line
// itself (CLI11: flags, help, usage errors) is src/tools/cli_main.cc, whose one table
// (kSubcommands) declares each subcommand's arguments and names its function.
//
// Adding a subcommand: its fields in Args, its function, its row in kSubcommands.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "cairn/client.h"
#include "tools/cli/output.h"

namespace cairn::tools::cli {

// The options before the subcommand.
struct Globals {
  std::string server = "127.0.0.1:7400";
  std::string keyspace = "default";
  bool keyspace_given = false;  // --keyspace was on the command line
  std::string level_name;       // --cl as given; `level` once parsed
  std::optional<Consistency> level;
  bool json = false;
  uint32_t timeout_ms = 5000;
  // --user: log in as this user (servers with --auth); the password from --password-file or
  // the CAIRN_PASSWORD environment variable (never a flag's value, which `ps` would show).
  std::string user;
  std::string password_file;
  std::string password;  // resolved by the command line
  bool tls = false;      // --tls, or implied by --cacert
  std::string cacert;    // CA the server's certificate must be signed by; empty: the system's
};

// put, get, del.
struct KeyArgs {
  std::string key;
  std::string value;  // "-": read it from stdin
  uint64_t ttl_seconds = 0;
};

struct CasArgs {
  std::string key;
  std::optional<std::string> new_value;  // "-": read it from stdin; none with --delete
  bool delete_key = false;
  // The condition: exactly one of these (the command line checks it).
  std::optional<std::string> expect_version;
  std::optional<std::string> expect_value;
  bool expect_absent = false;
  bool expect_present = false;
  uint64_t ttl_seconds = 0;
  std::string commit_level_name;  // --commit-cl as given; `commit_level` once parsed
  std::optional<Consistency> commit_level;
};

struct ScanArgs {
  std::string prefix;
  uint32_t limit = 100;
  std::string cursor;
};

// keyspace create, alter, list, describe, drop.
struct KeyspaceArgs {
  std::string name;
  std::string replication = "3";
  std::string read_level_name;  // checked by the command, which says which flag is wrong
  std::string write_level_name;
  bool linearizable = false;
  bool not_linearizable = false;
  // -1: not given (alter leaves it; create takes the default).
  int64_t auto_split_increments_per_s = -1;
  int64_t auto_split_shards = -1;
  bool if_not_exists = false;
  bool if_exists = false;
};

// repair.
// hotkeys.
struct HotKeysArgs {
  uint32_t limit = 20;
  uint32_t shards = 0;  // split
};

struct RepairArgs {
  std::optional<uint32_t> partition;  // only this partition
  uint32_t node = 0;                  // only ranges with a replica on this node (0: all)
};

// node decommission, remove, cancel, ops, join, replace.
struct NodeArgs {
  uint32_t node_id = 0;
  std::string address;        // join, replace --with: the new node, on standby
  bool wait = false;          // until the change has finished, with progress
  uint32_t wait_seconds = 0;  // give up waiting after this long (0: no limit)
};

// user add, del, grant, revoke, list, token, passwd.
struct UserArgs {
  std::string name;
  std::string keyspace;       // grant, revoke: a keyspace or "*"
  std::string permissions;    // grant, revoke: read,write,admin or all
  bool superuser = false;     // add
  std::string password_file;  // add, passwd: the new password (else a prompt on a terminal)
};

// Everything the command line can say; a command reads the part that is its own.
struct Args {
  Globals globals;
  KeyArgs kv;
  CasArgs cas;
  ScanArgs scan;
  KeyspaceArgs keyspace;
  NodeArgs node;
  RepairArgs repair;
  HotKeysArgs hotkeys;
  UserArgs users;
};

// The consistency level `name` names: nullopt for "", INVALID_ARGUMENT (naming `flag` and the
// levels there are) for an unknown name.
Result<std::optional<Consistency>> ParseLevel(const std::string& name, std::string_view flag);

// The client a command talks to (one connection to --server, the --keyspace, the --timeout), the
// request options at the --cl level, and the output in the format --json chose.
// `globals` must outlive the Context. One thread: the client's calls block until answered.
class Context {
 public:
  explicit Context(const Globals& globals);

  Client& client() { return client_; }
  // The same server with a request timeout of 10 minutes, for requests the server may work on
  // that long (repairing one range); opened on first use.
  Client& long_client();
  // A client of another node (`server`, HOST:PORT) with the same options, opened on first use.
  Client& client_of(const std::string& server);
  bool json() const { return globals_.json; }
  const std::string& keyspace() const { return globals_.keyspace; }
  bool keyspace_given() const { return globals_.keyspace_given; }
  std::optional<Consistency> level() const { return globals_.level; }
  ReadOptions Read() const;
  WriteOptions Write(uint64_t ttl_seconds = 0) const;

  // Prints `j` under --json, else `text`; returns kExitOk.
  int Reply(const Json& j, std::string_view text) const;

 private:
  const Globals& globals_;
  Client client_;
  std::unique_ptr<Client> long_client_;
  std::map<std::string, std::unique_ptr<Client>> others_;
};

// A subcommand: runs it, returns the exit code (output.h).
using Command = int (*)(Context& context, const Args& args);

}  // namespace cairn::tools::cli
