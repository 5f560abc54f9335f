#include "frontdoor/resp/resp_front_door.h"

#include <unistd.h>
#include <algorithm>

#include <deque>
#include <optional>
#include <unordered_map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "base/metrics.h"
#include "base/text.h"
#include "frontdoor/resp/commands.h"
#include "frontdoor/resp/reply_writer.h"
#include "frontdoor/resp/resp_parser.h"

// See native_front_door.cc: a g++ 12 false positive on asio's coroutine frames.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace cairn::frontdoor::resp {

using asio::ip::tcp;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr size_t kReadChunk = 64 * 1024;
// The Redis version whose commands and replies this front door follows (HELLO, INFO).
constexpr std::string_view kRedisVersion = "7.0.0";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A command's shape for arity checks and COMMAND INFO: Redis's arity (n: exactly n arguments
// with the name; -n: at least n), flags, and the positions of its keys.
struct CommandSpec {
  std::string_view name;
  int arity;
  std::string_view flags;  // space separated, as COMMAND INFO shows them
  int first_key, last_key, step;
  std::string_view group, summary;
};

// Every command this front door knows, data and connection commands alike.
constexpr CommandSpec kCommands[] = {
    {"get", 2, "readonly fast", 1, 1, 1, "string", "Returns the string value of a key."},
    {"set", -3, "write denyoom", 1, 1, 1, "string", "Sets the string value of a key."},
    {"setnx", 3, "write denyoom fast", 1, 1, 1, "string", "Set a key only when it does not exist."},
    {"setex", 4, "write denyoom", 1, 1, 1, "string", "Sets a value and its expiration in seconds."},
    {"psetex", 4, "write denyoom", 1, 1, 1, "string", "Sets a value and its expiration in ms."},
    {"getset", 3, "write denyoom fast", 1, 1, 1, "string", "Sets a key, returns the old value."},
    {"getdel", 2, "write fast", 1, 1, 1, "string", "Returns a key's value and deletes it."},
    {"getex", -2, "write fast", 1, 1, 1, "string", "Returns a key's value and sets its expiry."},
    {"mget", -2, "readonly fast", 1, -1, 1, "string", "Returns the values of keys."},
    {"mset", -3, "write denyoom", 1, -1, 2, "string", "Sets several keys (not atomically)."},
    {"msetnx", -3, "write denyoom", 1, -1, 2, "string", "Sets keys only when none exists."},
    {"del", -2, "write", 1, -1, 1, "keyspace", "Deletes keys."},
    {"unlink", -2, "write fast", 1, -1, 1, "keyspace", "Deletes keys."},
    {"exists", -2, "readonly fast", 1, -1, 1, "keyspace", "Counts the keys that exist."},
    {"touch", -2, "readonly fast", 1, -1, 1, "keyspace", "Counts the keys that exist."},
    {"type", 2, "readonly fast", 1, 1, 1, "keyspace", "Returns the type of a key."},
    {"expire", -3, "write fast", 1, 1, 1, "keyspace", "Sets a key's expiry in seconds."},
    {"pexpire", -3, "write fast", 1, 1, 1, "keyspace", "Sets a key's expiry in ms."},
    {"expireat", -3, "write fast", 1, 1, 1, "keyspace", "Sets a key's expiry as a Unix time."},
    {"pexpireat", -3, "write fast", 1, 1, 1, "keyspace", "Sets a key's expiry in Unix ms."},
    {"ttl", 2, "readonly fast", 1, 1, 1, "keyspace", "Returns a key's time to live in seconds."},
    {"pttl", 2, "readonly fast", 1, 1, 1, "keyspace", "Returns a key's time to live in ms."},
    {"expiretime", 2, "readonly fast", 1, 1, 1, "keyspace", "Returns a key's expiry time."},
    {"pexpiretime", 2, "readonly fast", 1, 1, 1, "keyspace", "Returns a key's expiry in ms."},
    {"persist", 2, "write fast", 1, 1, 1, "keyspace", "Removes a key's expiry."},
    {"incr", 2, "write denyoom fast", 1, 1, 1, "string", "Increments an integer value by one."},
    {"decr", 2, "write denyoom fast", 1, 1, 1, "string", "Decrements an integer value by one."},
    {"incrby", 3, "write denyoom fast", 1, 1, 1, "string", "Increments an integer value."},
    {"decrby", 3, "write denyoom fast", 1, 1, 1, "string", "Decrements an integer value."},
    {"incrbyfloat", 3, "write denyoom fast", 1, 1, 1, "string", "Increments a float value."},
    {"append", 3, "write denyoom fast", 1, 1, 1, "string", "Appends to a key's value."},
    {"strlen", 2, "readonly fast", 1, 1, 1, "string", "Returns the length of a value."},
    {"getrange", 4, "readonly", 1, 1, 1, "string", "Returns a substring of a value."},
    {"substr", 4, "readonly", 1, 1, 1, "string", "Returns a substring of a value."},
    {"setrange", 4, "write denyoom", 1, 1, 1, "string", "Overwrites part of a value."},
    {"scan", -2, "readonly", 0, 0, 0, "keyspace", "Iterates over the keys."},
    {"keys", 2, "readonly", 0, 0, 0, "keyspace", "Returns the keys matching a pattern."},
    {"dbsize", 1, "readonly", 0, 0, 0, "server", "Returns the number of keys."},
    {"randomkey", 1, "readonly", 0, 0, 0, "keyspace", "Returns a random key."},
    {"flushdb", -1, "write", 0, 0, 0, "server", "Deletes every key (needs --allow-flush)."},
    {"flushall", -1, "write", 0, 0, 0, "server", "Deletes every key (needs --allow-flush)."},
    {"ping", -1, "fast stale", 0, 0, 0, "connection", "Returns the server's liveliness."},
    {"echo", 2, "fast", 0, 0, 0, "connection", "Returns the given string."},
    {"hello", -1, "noauth fast stale", 0, 0, 0, "connection", "Handshakes with the server."},
    {"auth", -2, "noauth fast stale", 0, 0, 0, "connection", "Authenticates the connection."},
    {"select", 2, "fast stale", 0, 0, 0, "connection", "Selects database 0 (the only one)."},
    {"quit", -1, "noauth fast stale", 0, 0, 0, "connection", "Closes the connection."},
    {"reset", 1, "noauth fast stale", 0, 0, 0, "connection", "Resets the connection."},
    {"time", 1, "fast stale", 0, 0, 0, "server", "Returns the server time."},
    {"client", -2, "stale", 0, 0, 0, "connection", "Connection management."},
    {"command", -1, "stale", 0, 0, 0, "server", "Information about commands."},
    {"info", -1, "stale", 0, 0, 0, "server", "Information and statistics about the server."},
    {"config", -2, "stale", 0, 0, 0, "server", "CONFIG GET of the settings clients probe."},
    {"cairn.keyspace", -1, "fast", 0, 0, 0, "cairn", "Gets or sets the connection's keyspace."},
    {"cairn.consistency", -1, "fast", 0, 0, 0, "cairn", "Gets or sets the consistency levels."},
    {"cairn.getv", 2, "readonly fast", 1, 1, 1, "cairn", "Returns a value with its version."},
    {"cairn.cas", 4, "write", 1, 1, 1, "cairn", "Sets a value if its version matches."},
    {"cairn.status", 1, "stale", 0, 0, 0, "cairn", "Returns the cluster's nodes."},
};

const CommandSpec* FindSpec(std::string_view lower_name) {
  static const auto* index = [] {
    auto* m = new std::unordered_map<std::string_view, const CommandSpec*>;
    for (const CommandSpec& c : kCommands) (*m)[c.name] = &c;
    return m;
  }();
  auto it = index->find(lower_name);
  return it == index->end() ? nullptr : it->second;
}

bool ArityOk(const CommandSpec& spec, size_t argc) {
  const auto n = static_cast<size_t>(spec.arity < 0 ? -spec.arity : spec.arity);
  return spec.arity < 0 ? argc >= n : argc == n;
}

void WriteCommandInfo(ReplyWriter& w, const CommandSpec& c) {
  w.Array(10);
  w.Bulk(c.name);
  w.Integer(c.arity);
  std::vector<std::string_view> flags;
  for (size_t at = 0; at < c.flags.size();) {
    size_t end = c.flags.find(' ', at);
    if (end == std::string_view::npos) end = c.flags.size();
    flags.push_back(c.flags.substr(at, end - at));
    at = end + 1;
  }
  w.Set(flags.size());
  for (auto f : flags) w.Simple(f);
  w.Integer(c.first_key);
  w.Integer(c.last_key);
  w.Integer(c.step);
  w.Set(0);    // ACL categories
  w.Set(0);    // tips
  w.Array(0);  // key specs
  w.Array(0);  // subcommands
}

// Redis's error for a subcommand it does not know, or one it knows given the wrong arguments.
std::string SubcommandError(std::string_view command, const std::string& sub,
                            std::initializer_list<std::string_view> known) {
  const std::string lower = Lower(sub);
  for (std::string_view k : known) {
    if (k == lower) {
      return fmt::format("ERR wrong number of arguments for '{}|{}' command", command, lower);
    }
  }
  std::string upper(command);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return fmt::format("ERR unknown subcommand '{}'. Try {} HELP.", sub, upper);
}

bool ValidClientName(std::string_view name) {
  for (char c : name) {
    if (c < '!' || c > '~') return false;
  }
  return true;
}

}  // namespace

struct RespFrontDoor::Shared {
  coordinator::Coordinator* coordinator = nullptr;
  RespOptions options;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  CursorTable cursors;
  std::atomic<uint64_t> next_client_id{1};
  base::metrics::ShardedCounter commands;  // every command adds to it: per thread
  std::atomic<uint64_t> connections_received{0};
  std::atomic<uint64_t> protocol_errors{0};
  std::mutex mu;
  std::map<uint64_t, std::weak_ptr<Connection>> connections;  // guarded by mu
};

class RespFrontDoor::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<Shared> shared, tcp::socket socket)
      : shared_(std::move(shared)),
        socket_(std::move(socket)),
        parser_(Limits(shared_->options)),
        wake_writer_(socket_.get_executor()),
        wake_reader_(socket_.get_executor()),
        id_(shared_->next_client_id++),
        created_(std::chrono::steady_clock::now()) {
    boost::system::error_code ec;
    peer_ = socket_.remote_endpoint(ec);
    local_ = socket_.local_endpoint(ec);
    socket_.set_option(tcp::no_delay(true), ec);
    wake_writer_.expires_at(asio::steady_timer::time_point::max());
    wake_reader_.expires_at(asio::steady_timer::time_point::max());
    authenticated_ = shared_->options.requirepass.empty();
    parser_.set_authenticated(authenticated_);
  }

  uint64_t id() const { return id_; }
  std::string address() const {
    return fmt::format("{}:{}", peer_.address().to_string(), peer_.port());
  }
  auto executor() { return socket_.get_executor(); }

  asio::awaitable<void> Run();
  // Stops reading; closes once the commands read so far are answered. Any thread.
  void RequestClose() {
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
      self->stop_reading_ = true;
      boost::system::error_code ec;
      self->socket_.cancel(ec);
      self->wake_reader_.cancel();
    });
  }
  // One line of CLIENT LIST. Any thread.
  std::string Describe() const {
    std::lock_guard lock(info_mu_);
    const auto now = std::chrono::steady_clock::now();
    const auto age = std::chrono::duration_cast<std::chrono::seconds>(now - created_).count();
    const auto idle = std::chrono::duration_cast<std::chrono::seconds>(now - last_active_).count();
    return fmt::format(
        "id={} addr={} laddr={}:{} fd=-1 name={} age={} idle={} flags=N db=0 sub=0 psub=0 "
        "ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 "
        "tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={} "
        "keyspace={}",
        id_, address(), local_.address().to_string(), local_.port(), name_, age, idle,
        last_command_.empty() ? "NULL" : last_command_, protocol_, lib_name_, lib_ver_,
        keyspace_.empty() ? "default" : keyspace_);
  }

 private:
  struct Slot {
    std::string bytes;
    bool done = false;
    bool close_after = false;
  };

  static ParserLimits Limits(const RespOptions& o) {
    ParserLimits l;
    l.max_bulk_bytes = static_cast<int64_t>(o.max_value_bytes + (size_t{1} << 20));
    l.max_command_bytes = std::max<size_t>(size_t{256} << 20, 4 * o.max_value_bytes);
    return l;
  }

  asio::awaitable<void> ReadLoop();
  asio::awaitable<void> WriteLoop();
  // Runs one parsed command: at once when it needs no Coordinator, else as a coroutine of its own.
  // Returns false, consuming nothing, while an earlier command of this connection conflicts with
  // it on a key: the caller waits for a command to finish and tries again.
  bool Dispatch(std::vector<std::string>& argv);
  // Connection and server commands; true when handled (the reply is in `out`).
  bool RunLocal(const std::string& name, std::vector<std::string>& argv, Slot* slot);
  void Hello(std::vector<std::string>& argv, ReplyWriter& w);
  void Client(std::vector<std::string>& argv, ReplyWriter& w);
  void Command(std::vector<std::string>& argv, ReplyWriter& w);
  void Config(std::vector<std::string>& argv, ReplyWriter& w);
  void Info(std::vector<std::string>& argv, std::string* text, bool* keyspace);
  void CairnStatus(ReplyWriter& w);
  void CairnConsistency(std::vector<std::string>& argv, ReplyWriter& w);
  void CairnKeyspace(std::vector<std::string>& argv, ReplyWriter& w);

  Slot* NewSlot() {
    slots_.emplace_back();
    return &slots_.back();
  }
  void Finished(Slot* slot) {
    slot->done = true;
    reply_bytes_ += slot->bytes.size();
    wake_writer_.cancel();
  }
  bool Conflicts(Access access, const CommandSpec& spec,
                 const std::vector<std::string>& argv) const;
  bool KeyspaceIsLinearizable() const;
  // Sends the pending plain SETs as one batch.
  void FlushSets();
  // Ends a data command that ran on the Coordinator: counts it, replaces its reply with an
  // internal error if it threw, and frees its place.
  void Complete(CommandContext& ctx, uint64_t seq, Slot* slot, base::metrics::Operation op,
                Consistency level, std::exception_ptr e);
  // Replaces a command's reply with an internal error (it threw `e`), logged.
  void ReplyInternalError(CommandContext& ctx, Slot* slot, std::exception_ptr e);
  // Counts a finished data command in /metrics.
  void CountRequest(const CommandContext& ctx, const Slot& slot, base::metrics::Operation op,
                    Consistency level);
  void SetKeyspace(std::string keyspace);

  const std::shared_ptr<Shared> shared_;
  tcp::socket socket_;
  RequestParser parser_;
  asio::steady_timer wake_writer_;  // cancelled when a reply is ready or the reader ends
  asio::steady_timer wake_reader_;  // cancelled when a command finishes or replies are written
  const uint64_t id_;
  const std::chrono::steady_clock::time_point created_;
  tcp::endpoint peer_, local_;

  // Owned by the connection's executor.
  // Replies in command order. A deque keeps references valid across push_back and pop_front,
  // so running commands write into their slot through a pointer.
  std::deque<Slot> slots_;
  size_t reply_bytes_ = 0;  // of finished replies not yet written
  size_t inflight_ = 0;     // commands running on the Coordinator
  // The commands running on the Coordinator, for conflict checks, by dispatch order (seq): a
  // command finishing removes itself in constant time however deep the pipeline is.
  struct InFlight {
    Access access;
    const CommandSpec* spec;
    const std::vector<std::string>* argv;  // owned by the command's context
  };
  std::unordered_map<uint64_t, InFlight> running_;
  // Of running_, the blind writes and the commands that touch no key: a blind write conflicts
  // with none of them outside linearizable keyspaces (the common case of pipelined SETs).
  size_t blind_or_none_running_ = 0;
  uint64_t next_seq_ = 0;
  // Plain SETs read back to back and not yet sent: they go to the Coordinator as one batch when
  // a command of another kind comes, the read buffer runs dry, or kMaxSetBatch are waiting.
  struct PendingSets {
    std::vector<std::shared_ptr<CommandContext>> ctxs;
    std::vector<Slot*> slots;
    std::vector<uint64_t> seqs;
  };
  static constexpr size_t kMaxSetBatch = 64;
  PendingSets pending_sets_;
  std::string pending_info_;  // INFO's sections before its keyspace section is counted
  bool stop_reading_ = false;
  bool reading_done_ = false;
  bool broken_ = false;  // the socket failed or was closed
  bool authenticated_ = false;
  Consistency read_level_ = Consistency::kDefault;
  Consistency write_level_ = Consistency::kDefault;

  // Also read by Describe() from other threads.
  mutable std::mutex info_mu_;
  std::string name_;                                              // guarded by info_mu_
  std::string lib_name_, lib_ver_;                                // guarded by info_mu_
  std::string last_command_;                                      // guarded by info_mu_
  std::string keyspace_;                                          // guarded by info_mu_
  int protocol_ = 2;                                              // guarded by info_mu_
  std::chrono::steady_clock::time_point last_active_ = created_;  // guarded by info_mu_
};

asio::awaitable<void> RespFrontDoor::Connection::Run() {
  auto self = shared_from_this();
  auto writer = [self]() -> asio::awaitable<void> { co_await self->WriteLoop(); };
  auto on_writer_end = [self](std::exception_ptr e) {
    if (e) {
      spdlog::error("RESP connection {}: the reply writer failed", self->address());
      self->broken_ = true;
      boost::system::error_code ec;
      self->socket_.cancel(ec);  // ends a read that would wait for an idle client
      self->wake_reader_.cancel();
    }
  };
  asio::co_spawn(socket_.get_executor(), writer, on_writer_end);
  co_await ReadLoop();
  FlushSets();
  reading_done_ = true;
  // Let the commands in flight answer and the writer send everything (or fail).
  while (!broken_ && (inflight_ > 0 || !slots_.empty())) {
    wake_writer_.cancel();
    co_await wake_reader_.async_wait(kNoThrow);
  }
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  broken_ = true;
  wake_writer_.cancel();
  // Commands still in flight (a broken socket) hold `self`; they finish on their own.
  while (inflight_ > 0) co_await wake_reader_.async_wait(kNoThrow);
}

asio::awaitable<void> RespFrontDoor::Connection::ReadLoop() {
  const RespOptions& o = shared_->options;
  std::vector<std::string> argv;
  while (!stop_reading_ && !broken_) {
    // Backpressure: too much work in flight or too many replies not yet written.
    if (inflight_ >= o.max_inflight_per_connection) FlushSets();
    while ((inflight_ >= o.max_inflight_per_connection || reply_bytes_ >= o.max_reply_bytes) &&
           !stop_reading_ && !broken_) {
      co_await wake_reader_.async_wait(kNoThrow);
    }
    if (stop_reading_ || broken_) break;
    char* space = parser_.Prepare(kReadChunk);
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(space, kReadChunk), kNoThrow);
    parser_.Commit(ec ? 0 : n);
    if (ec) co_return;  // closed by the peer, an error, or RequestClose()
    {
      std::lock_guard lock(info_mu_);
      last_active_ = std::chrono::steady_clock::now();
    }
    while (!stop_reading_) {
      const auto outcome = parser_.Next(&argv);
      if (outcome == RequestParser::Outcome::kNeedMore) {
        FlushSets();  // nothing more to join them before the next read
        break;
      }
      if (outcome == RequestParser::Outcome::kError) {
        FlushSets();
        ++shared_->protocol_errors;
        spdlog::debug("RESP connection {}: protocol error: {}", address(), parser_.error_message());
        Slot* slot = NewSlot();
        if (!parser_.error_message().empty()) {
          ReplyWriter(&slot->bytes, 2).Error(parser_.error_message());
        }
        slot->close_after = true;
        Finished(slot);
        co_return;
      }
      while (!Dispatch(argv)) {
        co_await wake_reader_.async_wait(kNoThrow);
        if (broken_) co_return;  // nobody would read the reply
      }
      argv.clear();
    }
  }
}

asio::awaitable<void> RespFrontDoor::Connection::WriteLoop() {
  std::string out;
  while (true) {
    if (broken_) co_return;
    if (slots_.empty() || !slots_.front().done) {
      co_await wake_writer_.async_wait(kNoThrow);
      continue;
    }
    // Let replies that finish in this same turn of the reactor join the write.
    co_await asio::post(socket_.get_executor(), asio::use_awaitable);
    out.clear();
    size_t taken = 0;
    bool close = false;
    for (const Slot& slot : slots_) {
      if (!slot.done) break;
      out += slot.bytes;
      ++taken;
      if (slot.close_after) {
        close = true;
        break;
      }
    }
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(out), kNoThrow);
    (void)n;
    for (size_t i = 0; i < taken; ++i) {
      reply_bytes_ -= slots_.front().bytes.size();
      slots_.pop_front();
    }
    wake_reader_.cancel();
    if (ec || close) {
      if (close) {
        stop_reading_ = true;
        boost::system::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.cancel(ignored);
      }
      broken_ = true;
      wake_reader_.cancel();
      co_return;
    }
  }
}

namespace {

// Calls fn(key) for each key of `argv` by the spec's key positions.
template <typename Fn>
void ForEachKey(const CommandSpec& spec, const std::vector<std::string>& argv, Fn fn) {
  if (spec.first_key <= 0) return;
  const int argc = static_cast<int>(argv.size());
  const int last = spec.last_key < 0 ? argc + spec.last_key : spec.last_key;
  for (int i = spec.first_key; i <= last && i < argc; i += spec.step) fn(argv[i]);
}

}  // namespace

bool RespFrontDoor::Connection::Conflicts(Access access, const CommandSpec& spec,
                                          const std::vector<std::string>& argv) const {
  if (access == Access::kGlobal) return !running_.empty();
  // Blind writes of one key may overlap: their versions are taken in dispatch order, so the last
  // one wins as if they had run one after another. Not so in a linearizable keyspace, where each
  // goes through Paxos (looked up now, once: a keyspace can be altered at any time).
  std::optional<bool> linearizable;
  auto is_linearizable = [&] {
    if (!linearizable) linearizable = KeyspaceIsLinearizable();
    return *linearizable;
  };
  if (access == Access::kBlind && blind_or_none_running_ == running_.size() && !is_linearizable()) {
    return false;
  }
  for (const auto& [seq, other] : running_) {
    if (other.access == Access::kGlobal) return true;
    if (access == Access::kNone || other.access == Access::kNone) continue;
    if (access == Access::kRead && other.access == Access::kRead) continue;
    const bool both_blind = access == Access::kBlind && other.access == Access::kBlind;
    bool overlap = false;
    ForEachKey(spec, argv, [&](const std::string& key) {
      if (overlap) return;
      ForEachKey(*other.spec, *other.argv, [&](const std::string& k) {
        if (k == key) overlap = true;
      });
    });
    if (!overlap) continue;
    if (both_blind && !is_linearizable()) continue;
    return true;
  }
  return false;
}

bool RespFrontDoor::Connection::KeyspaceIsLinearizable() const {
  std::string keyspace;
  {
    std::lock_guard lock(info_mu_);
    keyspace = keyspace_.empty() ? std::string(coordinator::kDefaultKeyspace) : keyspace_;
  }
  return shared_->coordinator->IsLinearizable(keyspace);
}

namespace {

// The operation a data command is counted under in /metrics.
base::metrics::Operation OperationOf(std::string_view name, Access access) {
  using base::metrics::Operation;
  if (name == "del" || name == "unlink" || name == "getdel") return Operation::kDelete;
  if (name == "mget") return Operation::kBatchGet;
  if (name == "mset") return Operation::kBatchPut;
  switch (access) {
    case Access::kRead:
      return Operation::kGet;
    case Access::kBlind:
      return Operation::kPut;
    case Access::kExclusive:
      return Operation::kCas;  // read-modify-write: a SERIAL read and a compare-and-swap
    case Access::kGlobal:
      return name == "scan" || name == "keys" ? Operation::kScan : Operation::kOther;
    case Access::kNone:
      break;
  }
  return Operation::kOther;
}

}  // namespace

bool RespFrontDoor::Connection::Dispatch(std::vector<std::string>& argv) {
  std::string name = Lower(argv[0]);
  const bool plain_set = IsPlainSet(name, argv) && authenticated_;
  if (!plain_set) FlushSets();  // commands run in the order they came
  const CommandSpec* spec = FindSpec(name);
  CommandHandler handler = nullptr;
  Access access = Access::kNone;
  const bool local = spec == nullptr || !ArityOk(*spec, argv.size()) ||
                     (!authenticated_ && spec->flags.find("noauth") == std::string_view::npos) ||
                     (handler = FindDataCommand(name)) == nullptr;
  if (!local) {
    access = AccessOf(name, argv);
    if (Conflicts(access, *spec, argv)) {
      FlushSets();  // it may wait for one of them
      return false;
    }
  }
  shared_->commands.Add();
  {
    std::lock_guard lock(info_mu_);
    last_command_ = spec ? name : "NULL";
  }
  Slot* slot = NewSlot();
  ReplyWriter w(&slot->bytes, protocol_);
  if (spec == nullptr) {
    // Redis's text, byte for byte: the arguments quoted, up to about 128 bytes of them.
    std::string args;
    for (size_t i = 1; i < argv.size() && args.size() < 128; ++i) {
      args += fmt::format("'{}' ", std::string_view(argv[i]).substr(0, 128 - args.size()));
    }
    w.Error(fmt::format("ERR unknown command '{}', with args beginning with: {}",
                        std::string_view(argv[0]).substr(0, 128), args));
    // As Redis: an HTTP request sent to the port is an attack or a mistake; drop it.
    if (name == "post" || name == "host:") {
      slot->bytes.clear();
      slot->close_after = true;
      stop_reading_ = true;
    }
    Finished(slot);
    return true;
  }
  if (!ArityOk(*spec, argv.size())) {
    w.Error(fmt::format("ERR wrong number of arguments for '{}' command", name));
    Finished(slot);
    return true;
  }
  if (!authenticated_ && spec->flags.find("noauth") == std::string_view::npos) {
    w.Error("NOAUTH Authentication required.");
    Finished(slot);
    return true;
  }
  // Data commands other than INFO are not connection commands: skip RunLocal's comparisons.
  if ((handler == nullptr || name == "info") && RunLocal(name, argv, slot)) {
    Finished(slot);
    return true;
  }
  if (handler == nullptr) {
    // INFO with its keyspace section: RunLocal handed it on.
    handler = FindDataCommand(name);
    if (handler == nullptr) {
      w.Error(fmt::format("ERR unknown command '{}'", name));
      Finished(slot);
      return true;
    }
  }
  auto ctx = std::make_shared<CommandContext>();
  ctx->coordinator = shared_->coordinator;
  ctx->cursors = &shared_->cursors;
  ctx->max_value_bytes = shared_->options.max_value_bytes;
  ctx->allow_flush = shared_->options.allow_flush;
  {
    std::lock_guard lock(info_mu_);
    ctx->keyspace = keyspace_;
    ctx->protocol = protocol_;
  }
  ctx->read_level = read_level_;
  ctx->write_level = write_level_;
  const bool whole_keyspace = access == Access::kGlobal || name == "info";
  ctx->deadline = base::Clock::now() +
                  (whole_keyspace ? shared_->options.keyspace_timeout : shared_->options.timeout);
  ctx->argv = std::move(argv);
  ctx->name = std::move(name);
  ctx->out = &slot->bytes;
  ctx->info_text = std::move(pending_info_);
  ctx->started = base::Clock::now();
  const base::metrics::Operation op = OperationOf(ctx->name, access);
  const Consistency level = access == Access::kRead ? read_level_ : write_level_;
  std::exception_ptr failed;
  bool answered = false;
  try {
    answered = TryRunAtOnce(*ctx);
  } catch (...) {
    failed = std::current_exception();
    answered = true;
  }
  if (answered) {
    if (failed) ReplyInternalError(*ctx, slot, failed);
    CountRequest(*ctx, *slot, op, level);
    Finished(slot);
    return true;
  }
  const uint64_t seq = next_seq_++;
  running_.emplace(seq, InFlight{access, spec, &ctx->argv});
  if (access == Access::kBlind || access == Access::kNone) ++blind_or_none_running_;
  ++inflight_;
  if (plain_set) {
    pending_sets_.ctxs.push_back(std::move(ctx));
    pending_sets_.slots.push_back(slot);
    pending_sets_.seqs.push_back(seq);
    if (pending_sets_.ctxs.size() >= kMaxSetBatch) FlushSets();
    return true;
  }
  auto done = [self = shared_from_this(), ctx, seq, slot, op, level](std::exception_ptr e) {
    self->Complete(*ctx, seq, slot, op, level, e);
    self->wake_reader_.cancel();
  };
  // `ctx` outlives the command: `done` holds it.
  asio::co_spawn(socket_.get_executor(), handler(*ctx), std::move(done));
  return true;
}

void RespFrontDoor::Connection::FlushSets() {
  if (pending_sets_.ctxs.empty()) return;
  auto batch = std::make_shared<PendingSets>(std::move(pending_sets_));
  pending_sets_ = PendingSets();
  auto done = [self = shared_from_this(), batch](std::exception_ptr e) {
    for (size_t i = 0; i < batch->ctxs.size(); ++i) {
      CommandContext& ctx = *batch->ctxs[i];
      self->Complete(ctx, batch->seqs[i], batch->slots[i], base::metrics::Operation::kPut,
                     ctx.write_level, e);
    }
    self->wake_reader_.cancel();
  };
  asio::co_spawn(socket_.get_executor(), RunPlainSets(batch->ctxs), std::move(done));
}

void RespFrontDoor::Connection::Complete(CommandContext& ctx, uint64_t seq, Slot* slot,
                                         base::metrics::Operation op, Consistency level,
                                         std::exception_ptr e) {
  if (e) ReplyInternalError(ctx, slot, e);
  CountRequest(ctx, *slot, op, level);
  if (auto it = running_.find(seq); it != running_.end()) {
    if (it->second.access == Access::kBlind || it->second.access == Access::kNone) {
      --blind_or_none_running_;
    }
    running_.erase(it);
  }
  --inflight_;
  Finished(slot);
}

void RespFrontDoor::Connection::ReplyInternalError(CommandContext& ctx, Slot* slot,
                                                   std::exception_ptr e) {
  ctx.outcome = Code::kInternal;
  spdlog::error("RESP command {} from {} failed: {}", ctx.name, address(), base::ExceptionText(e));
  slot->bytes.clear();
  ReplyWriter(&slot->bytes, ctx.protocol).Error("ERR internal error; see the server log");
}

void RespFrontDoor::Connection::CountRequest(const CommandContext& ctx, const Slot& slot,
                                             base::metrics::Operation op, Consistency level) {
  base::metrics::RequestMetrics* metrics = shared_->options.metrics;
  if (metrics == nullptr) return;
  // An error reply that did not come from the Coordinator is a refusal of the request itself
  // (syntax, not an integer, too big ...).
  Code outcome = ctx.outcome;
  if (outcome == Code::kOk && !slot.bytes.empty() && slot.bytes[0] == '-') {
    outcome = Code::kInvalidArgument;
  }
  metrics->Record(base::metrics::FrontDoor::kResp, op, level, outcome,
                  base::Clock::now() - ctx.started);
}

void RespFrontDoor::Connection::SetKeyspace(std::string keyspace) {
  std::lock_guard lock(info_mu_);
  keyspace_ = std::move(keyspace);
}

bool RespFrontDoor::Connection::RunLocal(const std::string& name, std::vector<std::string>& argv,
                                         Slot* slot) {
  ReplyWriter w(&slot->bytes, protocol_);
  if (name == "ping") {
    if (argv.size() > 2) {
      w.Error("ERR wrong number of arguments for 'ping' command");
    } else if (argv.size() == 2) {
      w.Bulk(argv[1]);
    } else {
      w.Simple("PONG");
    }
  } else if (name == "echo") {
    w.Bulk(argv[1]);
  } else if (name == "hello") {
    Hello(argv, w);
  } else if (name == "auth") {
    if (argv.size() > 3) {
      w.Error("ERR syntax error");
    } else if (shared_->options.requirepass.empty()) {
      w.Ok();  // no password configured: any is accepted (docs/resp.md)
    } else if (argv.back() == shared_->options.requirepass &&
               (argv.size() == 2 || argv[1] == "default")) {
      authenticated_ = true;
      parser_.set_authenticated(true);
      w.Ok();
    } else {
      w.Error("WRONGPASS invalid username-password pair or user is disabled.");
    }
  } else if (name == "select") {
    auto db = ParseInt64(argv[1]);
    if (!db) {
      w.Error("ERR value is not an integer or out of range");
    } else if (*db != 0) {
      w.Error("ERR DB index is out of range");
    } else {
      w.Ok();
    }
  } else if (name == "quit") {
    w.Ok();
    slot->close_after = true;
    stop_reading_ = true;
  } else if (name == "reset") {
    {
      std::lock_guard lock(info_mu_);
      protocol_ = 2;
      name_.clear();
    }
    SetKeyspace("");
    read_level_ = write_level_ = Consistency::kDefault;
    authenticated_ = shared_->options.requirepass.empty();
    parser_.set_authenticated(authenticated_);
    ReplyWriter(&slot->bytes, 2).Simple("RESET");
  } else if (name == "time") {
    const int64_t us = NowMicros();
    w.Array(2);
    w.Bulk(std::to_string(us / 1'000'000));
    w.Bulk(std::to_string(us % 1'000'000));
  } else if (name == "client") {
    Client(argv, w);
  } else if (name == "command") {
    Command(argv, w);
  } else if (name == "config") {
    Config(argv, w);
  } else if (name == "info") {
    std::string text;
    bool keyspace = false;
    Info(argv, &text, &keyspace);
    // The keyspace section counts keys with a scan: only on request (INFO keyspace / all).
    if (keyspace) {
      pending_info_ = std::move(text);
      return false;
    }
    w.Verbatim(text);
  } else if (name == "cairn.keyspace") {
    CairnKeyspace(argv, w);
  } else if (name == "cairn.consistency") {
    CairnConsistency(argv, w);
  } else if (name == "cairn.status") {
    CairnStatus(w);
  } else {
    return false;
  }
  return true;
}

void RespFrontDoor::Connection::Hello(std::vector<std::string>& argv, ReplyWriter& w) {
  int protocol = protocol_;
  size_t i = 1;
  if (argv.size() > 1) {
    auto v = ParseInt64(argv[1]);
    if (!v) {
      w.Error("ERR Protocol version is not an integer or out of range");
      return;
    }
    if (*v != 2 && *v != 3) {
      w.Error("NOPROTO unsupported protocol version");
      return;
    }
    protocol = static_cast<int>(*v);
    i = 2;
  }
  std::optional<std::string> client_name;
  for (; i < argv.size(); ++i) {
    const std::string opt = Lower(argv[i]);
    if (opt == "auth" && i + 2 < argv.size()) {
      const std::string& pass = argv[i + 2];
      if (!shared_->options.requirepass.empty() &&
          (pass != shared_->options.requirepass || argv[i + 1] != "default")) {
        w.Error("WRONGPASS invalid username-password pair or user is disabled.");
        return;
      }
      authenticated_ = true;
      parser_.set_authenticated(true);
      i += 2;
    } else if (opt == "setname" && i + 1 < argv.size()) {
      if (!ValidClientName(argv[i + 1])) {
        w.Error("ERR Client names cannot contain spaces, newlines or special characters.");
        return;
      }
      client_name = argv[i + 1];
      ++i;
    } else {
      w.Error(fmt::format("ERR Syntax error in HELLO option '{}'", argv[i]));
      return;
    }
  }
  if (!authenticated_) {
    w.Error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
        "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
        "select the RESP protocol version at the same time");
    return;
  }
  {
    std::lock_guard lock(info_mu_);
    protocol_ = protocol;
    if (client_name) name_ = *client_name;
  }
  // The reply already speaks the protocol chosen.
  ReplyWriter r(w.buffer(), protocol);
  r.Map(7);
  r.Bulk("server");
  r.Bulk("redis");
  r.Bulk("version");
  r.Bulk(kRedisVersion);
  r.Bulk("proto");
  r.Integer(protocol);
  r.Bulk("id");
  r.Integer(static_cast<int64_t>(id_));
  r.Bulk("mode");
  r.Bulk("standalone");
  r.Bulk("role");
  r.Bulk("master");
  r.Bulk("modules");
  r.Array(0);
}

void RespFrontDoor::Connection::Client(std::vector<std::string>& argv, ReplyWriter& w) {
  const std::string sub = Lower(argv[1]);
  if (sub == "id" && argv.size() == 2) {
    w.Integer(static_cast<int64_t>(id_));
  } else if (sub == "setname" && argv.size() == 3) {
    if (!ValidClientName(argv[2])) {
      w.Error("ERR Client names cannot contain spaces, newlines or special characters.");
      return;
    }
    std::lock_guard lock(info_mu_);
    name_ = argv[2];
    w.Ok();
  } else if (sub == "getname" && argv.size() == 2) {
    std::lock_guard lock(info_mu_);
    if (name_.empty()) {
      w.Null();
    } else {
      w.Bulk(name_);
    }
  } else if (sub == "setinfo" && argv.size() == 4) {
    const std::string attr = Lower(argv[2]);
    if (!ValidClientName(argv[3]) && !argv[3].empty()) {
      w.Error(
          fmt::format("ERR {} cannot contain spaces, newlines or special characters.", argv[2]));
      return;
    }
    std::lock_guard lock(info_mu_);
    if (attr == "lib-name") {
      lib_name_ = argv[3];
    } else if (attr == "lib-ver") {
      lib_ver_ = argv[3];
    } else {
      w.Error(fmt::format("ERR Unrecognized option '{}'", argv[2]));
      return;
    }
    w.Ok();
  } else if ((sub == "list" || sub == "info") && argv.size() == 2) {
    if (sub == "info") {
      w.Verbatim(Describe() + "\n");
      return;
    }
    std::vector<std::shared_ptr<Connection>> all;
    {
      std::lock_guard lock(shared_->mu);
      for (const auto& [id, weak] : shared_->connections) {
        if (auto c = weak.lock()) all.push_back(std::move(c));
      }
    }
    std::string text;
    for (const auto& c : all) text += c->Describe() + "\n";
    w.Verbatim(text);
  } else if (sub == "kill" && argv.size() >= 3) {
    // CLIENT KILL addr (old form: OK or an error), or CLIENT KILL ID id | ADDR addr ... (new
    // form: the number killed).
    std::optional<uint64_t> id;
    std::optional<std::string> addr;
    const bool old_form = argv.size() == 3;
    if (old_form) {
      addr = argv[2];
    } else {
      if (argv.size() % 2 != 0) {
        w.Error("ERR syntax error");
        return;
      }
      for (size_t i = 2; i + 1 < argv.size(); i += 2) {
        const std::string f = Lower(argv[i]);
        if (f == "id") {
          auto v = ParseInt64(argv[i + 1]);
          if (!v || *v <= 0) {
            w.Error("ERR client-id should be greater than 0");
            return;
          }
          id = static_cast<uint64_t>(*v);
        } else if (f == "addr") {
          addr = argv[i + 1];
        } else if (f == "skipme") {
          // The calling connection is never killed through a filter (SKIPME yes).
        } else {
          w.Error("ERR syntax error");
          return;
        }
      }
    }
    std::vector<std::shared_ptr<Connection>> victims;
    {
      std::lock_guard lock(shared_->mu);
      for (const auto& [cid, weak] : shared_->connections) {
        auto c = weak.lock();
        if (!c || (id && cid != *id) || (addr && c->address() != *addr)) continue;
        if (!old_form && c.get() == this) continue;
        victims.push_back(std::move(c));
      }
    }
    for (const auto& c : victims) {
      if (c.get() == this) {
        stop_reading_ = true;
      } else {
        c->RequestClose();
      }
    }
    if (old_form) {
      if (victims.empty()) {
        w.Error("ERR No such client");
      } else {
        w.Ok();
      }
    } else {
      w.Integer(static_cast<int64_t>(victims.size()));
    }
  } else {
    w.Error(SubcommandError("client", argv[1],
                            {"id", "setname", "getname", "setinfo", "list", "info", "kill"}));
  }
}

void RespFrontDoor::Connection::Command(std::vector<std::string>& argv, ReplyWriter& w) {
  const std::string sub = argv.size() > 1 ? Lower(argv[1]) : "";
  if (argv.size() == 1 || (sub == "info" && argv.size() == 2)) {
    w.Array(std::size(kCommands));
    for (const CommandSpec& c : kCommands) WriteCommandInfo(w, c);
  } else if (sub == "count" && argv.size() == 2) {
    w.Integer(static_cast<int64_t>(std::size(kCommands)));
  } else if (sub == "info") {
    w.Array(argv.size() - 2);
    for (size_t i = 2; i < argv.size(); ++i) {
      const CommandSpec* c = FindSpec(Lower(argv[i]));
      if (c) {
        WriteCommandInfo(w, *c);
      } else {
        w.NullArray();
      }
    }
  } else if (sub == "docs") {
    std::vector<const CommandSpec*> wanted;
    if (argv.size() == 2) {
      for (const CommandSpec& c : kCommands) wanted.push_back(&c);
    } else {
      for (size_t i = 2; i < argv.size(); ++i) {
        if (const CommandSpec* c = FindSpec(Lower(argv[i]))) wanted.push_back(c);
      }
    }
    w.Map(wanted.size());
    for (const CommandSpec* c : wanted) {
      w.Bulk(c->name);
      w.Map(3);
      w.Bulk("summary");
      w.Bulk(c->summary);
      w.Bulk("since");
      w.Bulk("1.0.0");
      w.Bulk("group");
      w.Bulk(c->group);
    }
  } else if (sub == "list" && argv.size() == 2) {
    w.Array(std::size(kCommands));
    for (const CommandSpec& c : kCommands) w.Bulk(c.name);
  } else {
    w.Error(SubcommandError("command", argv[1], {"count", "info", "docs", "list"}));
  }
}

void RespFrontDoor::Connection::Config(std::vector<std::string>& argv, ReplyWriter& w) {
  const std::string sub = Lower(argv[1]);
  if (sub != "get") {
    if (sub == "set" || sub == "resetstat" || sub == "rewrite") {
      w.Error(fmt::format("ERR CONFIG {} is not supported by Cairn; use cairnd's flags", argv[1]));
    } else {
      w.Error(fmt::format("ERR unknown subcommand '{}'. Try CONFIG HELP.", argv[1]));
    }
    return;
  }
  if (argv.size() < 3) {
    w.Error("ERR wrong number of arguments for 'config|get' command");
    return;
  }
  const RespOptions& o = shared_->options;
  const std::vector<std::pair<std::string, std::string>> settings = {
      {"appendonly", "yes"},  // every acknowledged write is on the write-ahead log
      {"appendfsync", "always"},
      {"save", ""},
      {"databases", "1"},
      {"maxmemory", "0"},
      {"maxmemory-policy", "noeviction"},
      {"timeout", "0"},
      {"proto-max-bulk-len", std::to_string(o.max_value_bytes + (size_t{1} << 20))},
      {"cluster-enabled", "no"},
  };
  std::vector<std::pair<std::string, std::string>> found;
  for (const auto& [key, value] : settings) {
    for (size_t i = 2; i < argv.size(); ++i) {
      if (GlobMatch(argv[i], key, /*nocase=*/true)) {
        found.emplace_back(key, value);
        break;
      }
    }
  }
  w.Map(found.size());
  for (const auto& [key, value] : found) {
    w.Bulk(key);
    w.Bulk(value);
  }
}

void RespFrontDoor::Connection::Info(std::vector<std::string>& argv, std::string* text,
                                     bool* keyspace) {
  bool all = argv.size() == 1;
  std::vector<std::string> sections;
  for (size_t i = 1; i < argv.size(); ++i) {
    const std::string s = Lower(argv[i]);
    if (s == "all" || s == "everything") {
      all = true;
      *keyspace = true;
    } else if (s == "default") {
      all = true;
    } else {
      sections.push_back(s);
    }
  }
  auto want = [&](std::string_view s) {
    return all || std::find(sections.begin(), sections.end(), s) != sections.end();
  };
  if (std::find(sections.begin(), sections.end(), "keyspace") != sections.end()) *keyspace = true;
  const RespOptions& o = shared_->options;
  const coordinator::NodeInfo node = shared_->coordinator->Info();
  const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::steady_clock::now() - shared_->started)
                          .count();
  auto section = [&](std::string_view title, const std::string& body) {
    if (!text->empty()) *text += "\r\n";
    *text += fmt::format("# {}\r\n{}", title, body);
  };
  if (want("server")) {
    section("Server",
            fmt::format("redis_version:{}\r\ncairn_version:{}\r\nredis_mode:standalone\r\n"
                        "os:Linux\r\narch_bits:64\r\nprocess_id:{}\r\ntcp_port:{}\r\n"
                        "uptime_in_seconds:{}\r\nuptime_in_days:{}\r\n",
                        kRedisVersion, node.server_version, getpid(), local_.port(), uptime,
                        uptime / 86400));
  }
  if (want("clients")) {
    size_t resp_clients = 0;
    {
      std::lock_guard lock(shared_->mu);
      resp_clients = shared_->connections.size();
    }
    const size_t total = o.server_connections ? o.server_connections() : resp_clients;
    section("Clients", fmt::format("connected_clients:{}\r\ncairn_server_connections:{}\r\n"
                                   "blocked_clients:0\r\n",
                                   resp_clients, total));
  }
  if (want("stats")) {
    section("Stats", fmt::format("total_connections_received:{}\r\ntotal_commands_processed:{}"
                                 "\r\ncairn_protocol_errors:{}\r\n",
                                 shared_->connections_received.load(), shared_->commands.value(),
                                 shared_->protocol_errors.load()));
  }
  if (want("cairn")) {
    const coordinator::ClusterInfo cluster = shared_->coordinator->Cluster();
    std::string body =
        fmt::format("node_id:{}\r\nresp_listen:{}\r\npartitions:{}\r\ncluster_formed:{}\r\n",
                    node.node_id, o.listen, cluster.partitions, cluster.formed ? 1 : 0);
    if (auto nodes = shared_->coordinator->ClusterStatus(); nodes.ok()) {
      size_t up = 0;
      for (const auto& n : *nodes) up += n.status.up ? 1 : 0;
      body += fmt::format("nodes:{}\r\nnodes_up:{}\r\n", nodes->size(), up);
    }
    for (const auto& [name, value] : shared_->coordinator->Metrics()) {
      body += fmt::format("{}:{}\r\n", name, value);
    }
    section("Cairn", body);
  }
}

void RespFrontDoor::Connection::CairnStatus(ReplyWriter& w) {
  auto nodes = shared_->coordinator->ClusterStatus();
  if (!nodes.ok()) {
    w.Error(ErrorText(nodes.status()));
    return;
  }
  w.Array(nodes->size());
  for (const auto& n : *nodes) {
    w.Map(8);
    w.Bulk("node_id");
    w.Integer(n.status.node_id);
    w.Bulk("address");
    w.Bulk(n.status.address);
    w.Bulk("dc");
    w.Bulk(n.status.dc);
    w.Bulk("rack");
    w.Bulk(n.status.rack);
    w.Bulk("state");
    w.Bulk(n.status.up ? "UP" : "DOWN");
    w.Bulk("partitions");
    w.Integer(n.partitions);
    w.Bulk("hints_pending");
    w.Integer(static_cast<int64_t>(n.status.hints_pending));
    w.Bulk("self");
    w.Integer(n.status.self ? 1 : 0);
  }
}

// CAIRN.CONSISTENCY [READ level] [WRITE level]: sets the connection's levels (DEFAULT: the
// keyspace's) and replies the levels in force.
void RespFrontDoor::Connection::CairnConsistency(std::vector<std::string>& argv, ReplyWriter& w) {
  Consistency read = read_level_, write = write_level_;
  if (argv.size() % 2 != 1) {
    w.Error("ERR syntax error");
    return;
  }
  for (size_t i = 1; i + 1 < argv.size(); i += 2) {
    const std::string which = Lower(argv[i]);
    std::optional<Consistency> level;
    if (Lower(argv[i + 1]) == "default") {
      level = Consistency::kDefault;
    } else {
      level = ParseConsistency(argv[i + 1]);
    }
    if (!level) {
      w.Error(fmt::format("ERR unknown consistency level '{}'", argv[i + 1]));
      return;
    }
    if (which == "read") {
      if (*level == Consistency::kAny) {
        w.Error("ERR ANY is a write level only");
        return;
      }
      read = *level;
    } else if (which == "write") {
      write = *level;
    } else {
      w.Error("ERR syntax error");
      return;
    }
  }
  read_level_ = read;
  write_level_ = write;
  w.Map(2);
  w.Bulk("read");
  w.Bulk(read == Consistency::kDefault ? "DEFAULT" : ConsistencyName(read));
  w.Bulk("write");
  w.Bulk(write == Consistency::kDefault ? "DEFAULT" : ConsistencyName(write));
}

// CAIRN.KEYSPACE [name]: sets (and replies) the keyspace of the connection's commands.
void RespFrontDoor::Connection::CairnKeyspace(std::vector<std::string>& argv, ReplyWriter& w) {
  if (argv.size() > 2) {
    w.Error("ERR wrong number of arguments for 'cairn.keyspace' command");
    return;
  }
  if (argv.size() == 2) {
    auto def = shared_->coordinator->DescribeKeyspace(argv[1]);
    if (!def.ok()) {
      w.Error(ErrorText(def.status()));
      return;
    }
    SetKeyspace(argv[1] == "default" ? std::string() : argv[1]);
  }
  std::lock_guard lock(info_mu_);
  w.Bulk(keyspace_.empty() ? "default" : keyspace_);
}

RespFrontDoor::RespFrontDoor(coordinator::Coordinator* coordinator, RespOptions options)
    : shared_(std::make_shared<Shared>()) {
  shared_->coordinator = coordinator;
  shared_->options = std::move(options);
}

RespFrontDoor::~RespFrontDoor() = default;

asio::awaitable<void> RespFrontDoor::Serve(tcp::socket socket) {
  auto conn = std::make_shared<Connection>(shared_, std::move(socket));
  ++shared_->connections_received;
  {
    std::lock_guard lock(shared_->mu);
    shared_->connections[conn->id()] = conn;
  }
  ++open_;
  co_await conn->Run();
  {
    std::lock_guard lock(shared_->mu);
    shared_->connections.erase(conn->id());
  }
  --open_;
}

void RespFrontDoor::CloseAll() {
  std::lock_guard lock(shared_->mu);
  for (const auto& [id, weak] : shared_->connections) {
    if (auto c = weak.lock()) c->RequestClose();
  }
}

}  // namespace cairn::frontdoor::resp
