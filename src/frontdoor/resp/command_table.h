// The RESP front door's one command table, after Redis 7's: each command is declared once, as
// data (name, arity, flags, key positions, access kind, handler), and dispatch, arity checks,
// authentication, COMMAND / COMMAND INFO / COMMAND COUNT / COMMAND DOCS, conflict checks between
// pipelined commands and /metrics all read that entry. Adding a command is adding one entry.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "base/metrics.h"

namespace cairn::frontdoor::resp {

struct CommandContext;
struct ConnectionCall;

// How a command touches keys, so that a connection can run independent pipelined commands at the
// same time while commands on the same key keep their order.
enum class Access {
  kNone,       // no key (runs at once)
  kRead,       // reads its keys; runs beside other reads of them
  kBlind,      // overwrites its keys without reading; runs beside other blind writes of them
  kExclusive,  // reads and writes: waits for every earlier command on its keys
  kGlobal,     // the whole keyspace (SCAN, FLUSHDB, INFO): waits for everything before it
};

// Command flags, as COMMAND INFO shows them (Redis's names).
enum CommandFlag : uint32_t {
  kFlagReadonly = 1u << 0,
  kFlagWrite = 1u << 1,
  kFlagDenyOom = 1u << 2,
  kFlagFast = 1u << 3,
  kFlagStale = 1u << 4,
  kFlagNoAuth = 1u << 5,  // allowed before AUTH on a server with --requirepass
};

// Each flag of `flags` by its Redis name, in the order COMMAND INFO lists them.
std::vector<std::string_view> FlagNames(uint32_t flags);

// A data command: runs on the Coordinator as a coroutine of its own and writes its reply into
// the context's buffer.
using CommandHandler = boost::asio::awaitable<void> (*)(CommandContext&);
// A connection or server command: runs at once, in order, on the connection's thread, and may
// change the connection's state (protocol, name, keyspace, levels, authentication).
using ConnectionHandler = void (*)(ConnectionCall&);
// The access of a command whose kind depends on its arguments (SET with or without conditions).
using AccessOfArgs = Access (*)(const std::vector<std::string>& argv);

struct CommandSpec {
  std::string_view name;  // lower case
  // Redis's arity: n, exactly n arguments counting the name; -n, at least n.
  int arity;
  uint32_t flags;  // CommandFlag bits
  // Redis's key positions: argv[first_key], then every `step`-th up to last_key (negative: from
  // the end, -1 the last argument). first_key 0: no keys.
  int first_key, last_key, step;
  Access access;
  AccessOfArgs access_of;  // null: `access` whatever the arguments
  // What a data command is counted as in /metrics (a SET that reads first counts as a CAS).
  base::metrics::Operation op;
  // One of these, or both (INFO: the connection writes its sections at once and hands the
  // keyspace section, which needs a scan, to the data handler).
  ConnectionHandler run_at_once;
  CommandHandler run;
  std::string_view group, summary;  // COMMAND DOCS
};

// `s` with ASCII letters in lower case: command and option names match case-insensitively.
std::string AsciiLower(std::string_view s);

// Every command, in COMMAND's order. The table is at the end of commands.cc, beside the data
// handlers it names.
std::span<const CommandSpec> AllCommands();
// The command named `lower_name`, or null.
const CommandSpec* FindCommand(std::string_view lower_name);

bool ArityOk(const CommandSpec& spec, size_t argc);
// The access of this call of the command.
Access AccessOf(const CommandSpec& spec, const std::vector<std::string>& argv);
// What this call, of the given access, is counted as in /metrics.
base::metrics::Operation OperationOf(const CommandSpec& spec, Access access);

// Calls fn(key) for each key of `argv` by the spec's key positions.
template <typename Fn>
void ForEachKey(const CommandSpec& spec, const std::vector<std::string>& argv, Fn fn) {
  if (spec.first_key <= 0) return;
  const int argc = static_cast<int>(argv.size());
  const int last = spec.last_key < 0 ? argc + spec.last_key : spec.last_key;
  for (int i = spec.first_key; i <= last && i < argc; i += spec.step) fn(argv[i]);
}

}  // namespace cairn::frontdoor::resp
