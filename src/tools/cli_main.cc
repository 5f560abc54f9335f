// cairn: the command-line client. See docs/cli.md.
//
// Exit codes: 0 ok; 1 key not found or condition not met; 2 usage error or request rejected;
// 3 unavailable, timeout or server error.
//
// This file is the command line: the global options, the table of subcommands with their
// arguments, help and usage errors. It is the only one that includes CLI11 (about 6 s of compile
// time per file); what each subcommand does is in tools/cli/, on plain data (cli/context.h).
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "tools/cli/cluster_commands.h"
#include "tools/cli/data_commands.h"
#include "tools/cli/keyspace_commands.h"
#include "tools/cli/node_commands.h"
#include "tools/cli/repair_commands.h"
#include "tools/cli/user_commands.h"

namespace {

namespace cli = cairn::tools::cli;
using cli::Args;

// The level `name` names (nullopt for ""); a usage error for an unknown one.
std::optional<cairn::Consistency> LevelArg(const std::string& name, std::string_view flag) {
  auto level = cli::ParseLevel(name, flag);
  if (!level.ok()) throw CLI::ValidationError(level.status().message());
  return *level;
}

// ---- the arguments of each subcommand ---------------------------------------------------------

void DeclareKey(CLI::App& c, Args& a) { c.add_option("KEY", a.kv.key, "The key")->required(); }

void DeclarePut(CLI::App& c, Args& a) {
  DeclareKey(c, a);
  c.add_option("VALUE", a.kv.value, "The value, or '-' to read it from stdin")->required();
  c.add_option("--ttl", a.kv.ttl_seconds, "Expire the value after this many seconds");
}

void DeclareCas(CLI::App& c, Args& a) {
  c.add_option("KEY", a.cas.key, "The key")->required();
  auto* new_value =
      c.add_option("NEW", a.cas.new_value, "The new value, or '-' to read it from stdin");
  auto* ev = c.add_option("--expect-version", a.cas.expect_version,
                          "Only if the current version is V (as printed by get --json)");
  auto* eval = c.add_option("--expect-value", a.cas.expect_value, "Only if the current value is X");
  auto* ea = c.add_flag("--expect-absent", a.cas.expect_absent, "Only if KEY does not exist");
  auto* ep = c.add_flag("--expect-present", a.cas.expect_present, "Only if KEY exists");
  auto* del = c.add_flag("--delete", a.cas.delete_key, "Delete KEY instead of storing NEW");
  c.add_option("--ttl", a.cas.ttl_seconds, "Expire the new value after this many seconds");
  c.add_option("--commit-cl", a.cas.commit_level_name,
               "Level the applied value is committed at before the answer (default QUORUM, "
               "LOCAL_QUORUM under --cl LOCAL_SERIAL; none in a linearizable keyspace); "
               "--cl picks SERIAL (default) or LOCAL_SERIAL");
  ev->excludes(eval)->excludes(ea)->excludes(ep);
  eval->excludes(ea)->excludes(ep);
  ea->excludes(ep);
  del->excludes(new_value);
}

// What CLI11 cannot say: one condition, and NEW unless --delete.
void CheckCas(Args& a) {
  a.cas.commit_level = LevelArg(a.cas.commit_level_name, "--commit-cl");
  if (!a.cas.delete_key && !a.cas.new_value) {
    throw CLI::ValidationError("NEW", "cas needs NEW or --delete");
  }
  if (!a.cas.expect_absent && !a.cas.expect_present && !a.cas.expect_version &&
      !a.cas.expect_value) {
    throw CLI::ValidationError(
        "cas",
        "name a condition: --expect-version, --expect-value, --expect-absent or "
        "--expect-present");
  }
}

void DeclareScan(CLI::App& c, Args& a) {
  c.add_option("PREFIX", a.scan.prefix, "Key prefix ('' for all keys)")->required();
  c.add_option("--limit", a.scan.limit, "Print at most N keys")->capture_default_str();
  c.add_option("--cursor", a.scan.cursor, "Continue after this key (from a previous scan)");
}

void DeclareKeyspaceName(CLI::App& c, Args& a) {
  c.add_option("NAME", a.keyspace.name, "Keyspace name")->required();
}

void DeclareAutoSplit(CLI::App& c, Args& a) {
  c.add_option("--auto-split-increments-per-s", a.keyspace.auto_split_increments_per_s,
               "Split a counter automatically once it takes N increments a second over the "
               "cluster (10 to 10000000; 0: never, the default; docs/hot-keys.md)")
      ->check(CLI::NonNegativeNumber);
  c.add_option("--auto-split-shards", a.keyspace.auto_split_shards,
               "Sub-counters of an automatic split (2 to 64; default 16)")
      ->check(CLI::NonNegativeNumber);
}

void DeclareKeyspaceCreate(CLI::App& c, Args& a) {
  DeclareKeyspaceName(c, a);
  c.add_option("--rf", a.keyspace.replication,
               "Replicas: N in every data centre, or DC=N,DC=N per data centre")
      ->capture_default_str();
  c.add_option("--read-cl", a.keyspace.read_level_name,
               "Default read consistency (default QUORUM)");
  c.add_option("--write-cl", a.keyspace.write_level_name,
               "Default write consistency (default QUORUM)");
  c.add_flag("--if-not-exists", a.keyspace.if_not_exists, "Succeed if it already exists");
  c.add_flag("--linearizable", a.keyspace.linearizable,
             "Route every write through Paxos and every quorum read through SERIAL, so "
             "that plain writes and compare-and-swap are linearizable together");
  DeclareAutoSplit(c, a);
}

void DeclareKeyspaceAlter(CLI::App& c, Args& a) {
  DeclareKeyspaceName(c, a);
  auto* on = c.add_flag("--linearizable", a.keyspace.linearizable,
                        "Make it linearizable (see keyspace create --help)");
  auto* off =
      c.add_flag("--no-linearizable", a.keyspace.not_linearizable, "Make it an ordinary keyspace");
  on->excludes(off);
  c.add_option("--read-cl", a.keyspace.read_level_name, "New default read consistency");
  c.add_option("--write-cl", a.keyspace.write_level_name, "New default write consistency");
  DeclareAutoSplit(c, a);
}

void DeclareKeyspaceDrop(CLI::App& c, Args& a) {
  DeclareKeyspaceName(c, a);
  c.add_flag("--if-exists", a.keyspace.if_exists, "Succeed if it does not exist");
}

void DeclareNothing(CLI::App&, Args&) {}

void DeclareWait(CLI::App& c, Args& a) {
  c.add_flag("--wait", a.node.wait,
             "Wait until the change has finished, showing its progress (streams done, bytes)");
  c.add_option("--wait-timeout", a.node.wait_seconds,
               "With --wait: give up waiting after this many seconds (exit 3; the change goes "
               "on)");
}

void DeclareNodeId(CLI::App& c, Args& a) {
  c.add_option("ID", a.node.node_id, "The node's id (as `cairn status` shows it)")->required();
  DeclareWait(c, a);
}

void DeclareJoin(CLI::App& c, Args& a) {
  c.add_option("ADDRESS", a.node.address,
               "HOST:PORT of the new node (started with --join SEEDS --standby)")
      ->required();
  DeclareWait(c, a);
}

void DeclareReplace(CLI::App& c, Args& a) {
  c.add_option("ID", a.node.node_id, "The dead node's id (as `cairn status` shows it)")->required();
  c.add_option("--with", a.node.address,
               "HOST:PORT of the new node that takes its places (started with --join SEEDS "
               "--standby)")
      ->required();
  DeclareWait(c, a);
}

void DeclareHotKeys(CLI::App& c, Args& a) {
  c.add_option("--limit", a.hotkeys.limit, "How many keys (1 to 1000)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
}

void DeclareIncr(CLI::App& c, Args& a) {
  DeclareKey(c, a);
  c.add_option("BY", a.kv.value,
               "The increment: an integer (default 1), or a decimal such as 2.5 (INCRBYFLOAT)");
}

void DeclareSplit(CLI::App& c, Args& a) {
  DeclareKey(c, a);
  c.add_option("--shards", a.hotkeys.shards, "How many sub-counters (2 to 64)")
      ->required()
      ->check(CLI::Range(2, 64));
}

void DeclareRepair(CLI::App& c, Args& a) {
  c.add_option("--partition", a.repair.partition, "Only this partition (0 to partitions - 1)");
  c.add_option("--node", a.repair.node,
               "Only the ranges that have a replica on this node (its id, as `cairn status` "
               "shows it)");
}

void DeclareUserName(CLI::App& c, Args& a) {
  c.add_option("NAME", a.users.name, "User name")->required();
}

void DeclareUserAdd(CLI::App& c, Args& a) {
  DeclareUserName(c, a);
  c.add_flag("--superuser", a.users.superuser,
             "Every permission on every keyspace, and user administration");
  c.add_option("--password-file", a.users.password_file,
               "File whose first line is the new password (default: asked on the terminal)");
}

void DeclareUserPasswd(CLI::App& c, Args& a) {
  DeclareUserName(c, a);
  c.add_option("--password-file", a.users.password_file,
               "File whose first line is the new password (default: asked on the terminal)");
}

void DeclareUserGrant(CLI::App& c, Args& a) {
  DeclareUserName(c, a);
  c.add_option("KEYSPACE", a.users.keyspace, "A keyspace, or '*' for every keyspace")->required();
  c.add_option("PERMISSIONS", a.users.permissions,
               "read, write, admin or all, or several joined by ',' (admin includes read and "
               "write)")
      ->required();
}

// ---- the table --------------------------------------------------------------------------------

// One subcommand, or a group of them (`cairn keyspace create`). Adding a subcommand is a row here
// and its function in tools/cli/.
struct Subcommand {
  std::string_view group;  // the group it is in ("keyspace"), or "" for a top-level one
  std::string_view name;
  std::string_view help;
  void (*declare)(CLI::App& command, Args& args) = nullptr;  // its arguments and flags
  cli::Command run = nullptr;  // null for a group, which only holds subcommands
  // Usage rules that CLI11 cannot express; throws CLI::ValidationError. May be null.
  void (*check)(Args& args) = nullptr;
};

// In the order --help lists them; a group before its subcommands.
const Subcommand kSubcommands[] = {
    {"", "put", "Store VALUE under KEY (VALUE '-' reads stdin)", DeclarePut, cli::Put},
    {"", "get", "Print the value of KEY (exit 1 when absent)", DeclareKey, cli::Get},
    {"", "del", "Delete KEY", DeclareKey, cli::Del},
    {"", "cas", "Store NEW under KEY only if the condition holds (exit 1 when it does not)",
     DeclareCas, cli::Cas, CheckCas},
    {"", "scan", "List keys starting with PREFIX, in key order", DeclareScan, cli::Scan},
    {"", "incr",
     "Add BY (default 1) to the number at KEY, linearizably (at SERIAL; --cl LOCAL_SERIAL for "
     "this data centre's replicas), and print the result",
     DeclareIncr, cli::Incr},
    {"", "keyspace", "Create, list, describe or drop keyspaces"},
    {"keyspace", "create", "Create keyspace NAME", DeclareKeyspaceCreate, cli::KeyspaceCreate},
    {"keyspace", "alter", "Change the options of keyspace NAME (not its replication)",
     DeclareKeyspaceAlter, cli::KeyspaceAlter},
    {"keyspace", "list", "List keyspaces", DeclareNothing, cli::KeyspaceList},
    {"keyspace", "describe", "Show keyspace NAME", DeclareKeyspaceName, cli::KeyspaceDescribe},
    {"keyspace", "drop", "Drop keyspace NAME and all its data", DeclareKeyspaceDrop,
     cli::KeyspaceDrop},
    {"", "ping", "Check that the server answers", DeclareNothing, cli::Ping},
    {"", "metrics", "Print the node's counters since it started (Paxos operations, round trips)",
     DeclareNothing, cli::Metrics},
    {"", "status",
     "Show every node of the cluster: address, DC, rack, UP/DOWN, partitions, load, hints",
     DeclareNothing, cli::ClusterStatus},
    {"", "hotkeys",
     "List the keys the cluster sees most often (of --keyspace, or of every keyspace): reads/s "
     "and writes/s over the last 10-20 s, summed over the nodes that coordinated them",
     DeclareHotKeys, cli::HotKeys},
    {"hotkeys", "split",
     "Spread the counter KEY over --shards sub-counters on other partitions: its increments go "
     "to one each, a read sums them (docs/hot-keys.md)",
     DeclareSplit, cli::SplitCounter},
    {"hotkeys", "merge",
     "Fold the sub-counters of split counter KEY back into it (run again to finish an "
     "interrupted merge)",
     DeclareKey, cli::MergeCounter},
    {"", "node",
     "Change the cluster's members: join, replace, decommission, remove, cancel, ops (a new node "
     "joins with cairnd --join, or with --join --standby and then cairn node join)"},
    {"node", "join",
     "Tell the new node at ADDRESS (on standby) to join the cluster now: it takes its share of "
     "the partitions",
     DeclareJoin, cli::NodeJoin},
    {"node", "replace",
     "Tell the new node --with ADDRESS (on standby) to take exactly the places of dead node ID, "
     "streamed from the surviving replicas",
     DeclareReplace, cli::NodeReplace},
    {"node", "decommission",
     "Move the data of live node ID to the other nodes, then take it out of the cluster",
     DeclareNodeId, cli::NodeDecommission},
    {"node", "remove",
     "Take dead node ID out of the cluster; its data is streamed from the surviving replicas",
     DeclareNodeId, cli::NodeRemove},
    {"node", "cancel", "Roll back the change in progress (until reads have switched)", DeclareWait,
     cli::NodeCancel},
    {"node", "ops", "Show the change in progress and each node's streaming", DeclareWait,
     cli::NodeOps},
    {"", "repair",
     "Make the replicas of every range (of --keyspace, or of every keyspace) hold the same "
     "versions: each takes the newer versions it lacks; only keys that differ are sent",
     DeclareRepair, cli::Repair},
    {"", "compact",
     "Compact the data of the --server node, reclaiming the space of purged tombstones (run it "
     "on each node)",
     DeclareNothing, cli::Compact},
    {"", "user",
     "Users and their permissions (servers with --auth; needs ADMIN on '*'): add, del, grant, "
     "revoke, list, token, passwd"},
    {"user", "add", "Create user NAME with a password (--superuser: every permission)",
     DeclareUserAdd, cli::UserAdd},
    {"user", "del", "Delete user NAME", DeclareUserName, cli::UserDel},
    {"user", "grant", "Give user NAME PERMISSIONS on KEYSPACE", DeclareUserGrant, cli::UserGrant},
    {"user", "revoke", "Take PERMISSIONS on KEYSPACE away from user NAME", DeclareUserGrant,
     cli::UserRevoke},
    {"user", "list", "List the users and their grants (never a password or token)", DeclareNothing,
     cli::UserList},
    {"user", "token",
     "Issue a bearer token for user NAME (HTTP Authorization: Bearer); printed once, stored only "
     "as a digest",
     DeclareUserName, cli::UserToken},
    {"user", "clear-tokens", "Revoke every bearer token of user NAME", DeclareUserName,
     cli::UserClearTokens},
    {"user", "passwd", "Set a new password for user NAME", DeclareUserPasswd, cli::UserPasswd},
};

void DeclareGlobals(CLI::App& app, cli::Globals& g) {
  app.set_version_flag("--version", std::string("cairn ") + CAIRN_VERSION);
  app.require_subcommand(1);
  app.add_option("--server", g.server, "HOST:PORT of a Cairn node")
      ->envname("CAIRN_SERVER")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->capture_default_str();
  app.add_option("--keyspace,-k", g.keyspace, "Keyspace to use")->capture_default_str();
  app.add_option("--cl", g.level_name,
                 "Consistency level (ONE, QUORUM, ALL, ...); default: the keyspace's default");
  app.add_flag("--json", g.json, "Print results as JSON (values, versions and metadata)");
  app.add_option("--timeout", g.timeout_ms, "Request timeout in milliseconds")
      ->capture_default_str();
  app.add_option("--user", g.user,
                 "Log in as this user (servers with --auth); the password comes from "
                 "--password-file or the CAIRN_PASSWORD environment variable")
      ->envname("CAIRN_USER");
  app.add_option("--password-file", g.password_file,
                 "File whose first line is the --user's password");
  app.add_flag("--tls", g.tls,
               "Connect with TLS, verifying the server's certificate (against --cacert, or the "
               "system's trusted CAs)")
      ->envname("CAIRN_TLS");
  app.add_option("--cacert", g.cacert,
                 "PEM CA certificate the server's certificate must be signed by (implies --tls)")
      ->envname("CAIRN_CACERT");
}

// Adds every row of kSubcommands to `app`; returns the CLI11 command of each one that runs.
std::vector<std::pair<CLI::App*, const Subcommand*>> DeclareSubcommands(CLI::App& app, Args& args) {
  std::map<std::string_view, CLI::App*> groups;
  std::vector<std::pair<CLI::App*, const Subcommand*>> commands;
  for (const Subcommand& sub : kSubcommands) {
    CLI::App* parent = sub.group.empty() ? &app : groups.at(sub.group);
    CLI::App* command = parent->add_subcommand(std::string(sub.name), std::string(sub.help));
    // A group (no run of its own) needs one of its subcommands; a command that runs may hold
    // subcommands too (`hotkeys`, `hotkeys split`), and then takes at most one.
    if (sub.group.empty()) groups[sub.name] = command;
    if (sub.run == nullptr) {
      command->require_subcommand(1);
      continue;
    }
    if (!sub.group.empty() && parent->get_require_subcommand_min() == 0) {
      parent->require_subcommand(0, 1);
    }
    sub.declare(*command, args);
    commands.emplace_back(command, &sub);
  }
  return commands;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  CLI::App app{
      "cairn: command-line client for the Cairn key-value store.\n"
      "Exit codes: 0 ok; 1 key not found or condition not met; 2 usage error or request "
      "rejected; 3 unavailable, timeout or server error."};
  DeclareGlobals(app, args.globals);
  const auto commands = DeclareSubcommands(app, args);

  const Subcommand* chosen = nullptr;
  try {
    app.parse(argc, argv);
    args.globals.level = LevelArg(args.globals.level_name, "--cl");
    args.globals.keyspace_given = app.count("--keyspace") > 0;
    for (const auto& [command, sub] : commands) {
      if (command->parsed()) chosen = sub;
    }
    if (chosen != nullptr && chosen->check != nullptr) chosen->check(args);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::Error& e) {
    app.exit(e);  // prints the message and usage
    return cli::kExitRejected;
  }
  if (chosen == nullptr) return cli::kExitRejected;
  if (!args.globals.user.empty()) {
    auto password = cli::LoginPassword(args.globals.password_file);
    if (!password.ok()) return cli::Reject(password.status().message());
    args.globals.password = std::move(*password);
  }
  cli::Context context(args.globals);
  return chosen->run(context, args);
}
