// The data commands of the RESP front door: each translates one Redis command onto Coordinator
// calls and writes its reply. Connection and server commands (HELLO, CLIENT, ...) are in
// connection_commands.h; command_table.cc names both kinds in one table.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "base/async.h"
#include "coordinator/coordinator.h"
#include "frontdoor/resp/command_table.h"
#include "frontdoor/resp/glob.h"
#include "frontdoor/resp/reply_writer.h"

namespace cairn::frontdoor::resp {

namespace asio = boost::asio;

// SCAN cursors: Redis clients expect an integer cursor (redis-py converts it with int()), while
// the Coordinator's cursor is the last key seen. This table maps one to the other; it is shared by
// the connections of one server, bounded, and forgets the oldest cursors first.
// Thread safety: any thread.
class CursorTable {
 public:
  uint64_t Put(std::string prefix, std::string cursor);
  // The prefix and cursor stored under `id`, or false when unknown (or forgotten).
  bool Get(uint64_t id, std::string* prefix, std::string* cursor);

 private:
  static constexpr size_t kMaxCursors = 65536;
  std::mutex mu_;
  uint64_t next_ = 1;                                                // guarded by mu_
  std::map<uint64_t, std::pair<std::string, std::string>> cursors_;  // guarded by mu_
};

// Everything a data command needs: the connection's settings when the command was read, its
// arguments, and where its reply goes.
struct CommandContext {
  coordinator::Coordinator* coordinator = nullptr;
  CursorTable* cursors = nullptr;
  size_t max_value_bytes = 0;
  bool allow_flush = false;
  std::string keyspace;  // empty: "default"
  Consistency read_level = Consistency::kDefault;
  Consistency write_level = Consistency::kDefault;
  base::Deadline deadline;
  std::vector<std::string> argv;
  std::string name;  // lower-case command name, for error texts
  std::string* out = nullptr;
  int protocol = 2;
  // INFO with its keyspace section: the other sections, already written by the connection.
  std::string info_text;
  // For /metrics: when the command was dispatched, and the code of the error it replied with
  // from the Coordinator (ReplyStatusError), if any.
  base::Clock::time_point started;
  Code outcome = Code::kOk;
  // Client-side caching: the connection, as the Coordinator hands it back with the keys a write
  // changed (NOLOOP); the keys this read remembered for a tracking connection; and the earliest
  // expiry among the values it read (Saw), at which they are invalidated.
  uint64_t origin = 0;
  std::vector<std::string> tracked_keys;
  uint64_t expires_at_ms = 0;
  void Saw(const std::optional<Record>& r) {
    if (r && r->expires_at_ms != 0 && (expires_at_ms == 0 || r->expires_at_ms < expires_at_ms)) {
      expires_at_ms = r->expires_at_ms;
    }
  }

  ReplyWriter Reply() const { return ReplyWriter(out, protocol); }
  // The node's wall clock (Unix ms), through the clock seam: TTLs follow injected skew.
  int64_t NowMs() const { return static_cast<int64_t>(coordinator->wall_clock().NowMillis()); }
  coordinator::RequestOptions ReadOptions() const;
  coordinator::RequestOptions WriteOptions() const;
  // For SERIAL reads and compare-and-swap: SERIAL, or LOCAL_SERIAL when that is the read level.
  coordinator::RequestOptions SerialOptions() const;
  // The commit level of compare-and-swap: the connection's write level (default: the
  // Coordinator's).
  Consistency CommitLevel() const;
};

// True for a SET with no option: such SETs, pipelined back to back, may be stored as one batch.
bool IsPlainSet(std::string_view lower_name, const std::vector<std::string>& argv);
// Runs plain SETs (IsPlainSet) as one Coordinator batch, each with its own reply. They share the
// connection's keyspace, write level and deadline (the first one's are used).
asio::awaitable<void> RunPlainSets(std::vector<std::shared_ptr<CommandContext>> batch);
// Runs a data command at once, without a coroutine, when it can: a GET this node alone answers.
// False, with nothing replied, leaves it to the command's handler.
bool TryRunAtOnce(CommandContext& ctx);

// The Redis reply text for a failed Coordinator call.
std::string ErrorText(const Status& s);

// Counts the live keys of the context's keyspace by scanning them all (DBSIZE, INFO keyspace).
asio::awaitable<Result<uint64_t>> CountKeys(CommandContext& ctx);

}  // namespace cairn::frontdoor::resp
