#include "frontdoor/resp/resp_front_door.h"

#include <algorithm>
#include <deque>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "base/metrics.h"
#include "base/text.h"
#include "frontdoor/resp/acl_commands.h"
#include "frontdoor/resp/command_table.h"
#include "frontdoor/resp/commands.h"
#include "frontdoor/resp/connection_commands.h"
#include "frontdoor/resp/reply_writer.h"
#include "frontdoor/resp/resp_parser.h"
#include "frontdoor/resp/running_commands.h"
#include "frontdoor/resp/tracking.h"

namespace cairn::frontdoor::resp {

using asio::ip::tcp;

namespace {

using base::kNoThrow;
constexpr size_t kReadChunk = 64 * 1024;

tcp::endpoint Endpoint(const tcp::socket& socket, bool remote) {
  boost::system::error_code ec;
  return remote ? socket.remote_endpoint(ec) : socket.local_endpoint(ec);
}

// Redis's text for an unknown command, byte for byte: the arguments quoted, up to about 128
// bytes of them, each as a C string (up to its first NUL byte).
std::string UnknownCommandError(const std::vector<std::string>& argv) {
  std::string args;
  for (size_t i = 1; i < argv.size() && args.size() < 128; ++i) {
    args += fmt::format("'{}' ", CString(argv[i]).substr(0, 128 - args.size()));
  }
  return fmt::format("ERR unknown command '{}', with args beginning with: {}",
                     CString(argv[0]).substr(0, 128), args);
}

// A read changes nothing, so its reply may be refused for memory (and the read retried); a
// write's reply is always kept, so that an error never hides a write that was applied.
bool IsRead(const CommandSpec& spec) {
  return (spec.flags & kFlagReadonly) != 0 && (spec.flags & kFlagWrite) == 0;
}

std::string RefusedForMemory(size_t bytes) {
  if (bytes == 0) {
    return "ERR read refused: this node's request memory is full (--max-request-memory-mb); "
           "retry later";
  }
  return fmt::format(
      "ERR reply of {} bytes refused: this node's request memory is full "
      "(--max-request-memory-mb); retry later",
      bytes);
}

}  // namespace

// One client connection: reads commands, runs them in order (pipelined ones concurrently when
// they touch different keys, see RunningCommands), and writes the replies in command order.
class RespFrontDoor::Connection : public Session, public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<ServerState> shared, net::Stream stream)
      : Session(shared->next_client_id++, Endpoint(stream.socket(), true),
                Endpoint(stream.socket(), false), AuthenticatedAtStart(shared->options)),
        shared_(std::move(shared)),
        stream_(std::move(stream)),
        parser_(Limits(shared_->options)),
        memory_(shared_->options.memory),
        wake_writer_(stream_.get_executor()),
        wake_reader_(stream_.get_executor()) {
    boost::system::error_code ec;
    stream_.socket().set_option(tcp::no_delay(true), ec);
    wake_writer_.expires_at(asio::steady_timer::time_point::max());
    wake_reader_.expires_at(asio::steady_timer::time_point::max());
    parser_.set_authenticated(authenticated);
  }

  asio::awaitable<void> Run();
  // Stops reading; closes once the commands read so far are answered. Any thread.
  void RequestClose() override {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      self->stop_reading = true;
      boost::system::error_code ec;
      self->stream_.socket().cancel(ec);
      self->wake_reader_.cancel();
    });
  }
  // Any thread: the push joins the replies on the connection's own.
  void Push(std::string bytes) override {
    asio::post(stream_.get_executor(),
               [self = shared_from_this(), bytes = std::move(bytes)]() { self->AddPush(bytes); });
  }

 private:
  struct Slot {
    std::string bytes;
    size_t request_bytes = 0;  // of the command's request, held until its reply is produced
    bool done = false;
    bool close_after = false;
    bool may_refuse = false;  // a read: its reply may be refused for memory
    bool refused = false;     // it was
  };

  static ParserLimits Limits(const RespOptions& o) {
    ParserLimits l;
    l.max_bulk_bytes = static_cast<int64_t>(o.max_value_bytes + (size_t{1} << 20));
    l.max_command_bytes = std::max<size_t>(size_t{256} << 20, 4 * o.max_value_bytes);
    if (o.memory != nullptr) l.max_budget_bytes = o.memory->per_connection();
    return l;
  }

  asio::awaitable<void> ReadLoop();
  asio::awaitable<void> WriteLoop();
  // A push goes after every reply of the commands read so far. A client that does not read its
  // replies gets no more pushes past the reply bound; once it has read, one null invalidation
  // stands for those it missed.
  void AddPush(const std::string& bytes);
  // Client-side caching: a tracking connection's read remembers its keys before it runs (then a
  // change that lands while it runs is reported after its reply); OPTIN/OPTOUT with CLIENT
  // CACHING decide which reads. The keys remembered, or none.
  std::vector<std::string> RememberKeys(const CommandSpec& spec,
                                        const std::vector<std::string>& argv, bool caching);
  // Expiring keys among those a tracked read remembered are invalidated when they expire.
  void NoteExpiry(const CommandContext& ctx);
  // CLIENT TRACKING on turned tracking on: the reply (already in `slot`) goes once the
  // coordinator has told the other nodes; no later command is read meanwhile.
  void StartTracking(Slot* slot);
  // Tracking off (CLIENT TRACKING off, RESET, the connection closing): the coordinator is told.
  void StopTracking();
  // Runs one parsed command: at once when it needs no Coordinator, else as a coroutine of its own.
  // Returns false, consuming nothing, while an earlier command of this connection conflicts with
  // it on a key: the caller waits for a command to finish and tries again.
  bool Dispatch(std::vector<std::string>& argv);
  // Replies without running the command when it is unknown, has the wrong number of arguments
  // or needs authentication first; false when it may run.
  bool Refuse(const CommandSpec* spec, const std::string& name,
              const std::vector<std::string>& argv, Slot* slot);
  // Verifies the password of an AUTH or HELLO ... AUTH off the reactor (base/access.h), then runs
  // the command again with the verdict; the connection reads no further command meanwhile.
  void StartLogin(const CommandSpec& spec, std::vector<std::string> argv, Slot* slot,
                  std::pair<std::string, std::string> login);
  // Starts a data command on the Coordinator (or answers it at once when it can).
  void StartDataCommand(const CommandSpec& spec, Access access, std::vector<std::string>& argv,
                        std::string name, bool plain_set, bool keyspace_wide, Slot* slot,
                        std::vector<std::string> tracked);

  // The slot of the command parsed last, which holds the bytes of its request.
  Slot* NewSlot() {
    slots_.emplace_back();
    slots_.back().request_bytes = std::exchange(request_bytes_, 0);
    return &slots_.back();
  }
  // The reply is complete: it takes the place of the request in the memory budget (a read's
  // reply that does not fit is replaced by an error), and goes to the writer.
  void Finished(Slot* slot);
  // Whether the connection has commands in flight or replies not yet written.
  bool Busy() const { return inflight_ > 0 || !slots_.empty(); }
  // Backpressure for the node's memory budget: a busy connection waits while the node or the
  // connection holds too much (an idle one never does: see base/memory_budget.h).
  bool MustWaitForMemory() const { return Busy() && memory_.MustWait(); }
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

  const std::shared_ptr<ServerState> shared_;
  net::Stream stream_;  // plain TCP or TLS
  RequestParser parser_;
  base::MemoryShare memory_;        // bytes read and not answered, replies not yet written
  asio::steady_timer wake_writer_;  // cancelled when a reply is ready or the reader ends
  asio::steady_timer wake_reader_;  // cancelled when a command finishes or replies are written

  // Owned by the connection's executor.
  // Replies in command order. A deque keeps references valid across push_back and pop_front,
  // so running commands write into their slot through a pointer.
  std::deque<Slot> slots_;
  size_t reply_bytes_ = 0;    // of finished replies not yet written
  size_t request_bytes_ = 0;  // consumed by the parser since the last complete command
  size_t inflight_ = 0;       // commands running on the Coordinator
  RunningCommands running_;
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
  bool reading_done_ = false;
  bool broken_ = false;            // the socket failed or was closed
  bool login_pending_ = false;     // a StartLogin runs
  bool tracking_pending_ = false;  // a StartTracking runs
  bool tracking_started_ = false;  // Coordinator::StartTracking was called (and not stopped)
  bool pushes_dropped_ = false;    // pushes dropped for the reply bound (AddPush)
};

// Hands the keys the coordinator reports changed to the tracking table and the pushes to the
// connections. Called on any thread.
class RespFrontDoor::Listener final : public coordinator::KeyChangeListener {
 public:
  explicit Listener(std::shared_ptr<ServerState> server) : server_(std::move(server)) {}
  void KeysChanged(std::span<const std::string> keys, uint64_t origin) override {
    Deliver(*server_, server_->tracking->KeysChanged(keys, origin));
  }
  void Flushed() override { Deliver(*server_, server_->tracking->Flushed()); }

 private:
  const std::shared_ptr<ServerState> server_;
};

namespace {

// Invalidates tracked keys as they expire, while any is remembered with an expiry; started by
// the first such key (ServerState::sweeping). Times are the node's wall clock (the clock seam).
asio::awaitable<void> SweepExpiries(std::shared_ptr<ServerState> server) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  base::PhysicalClock& clock = server->coordinator->wall_clock();
  while (true) {
    std::optional<uint64_t> next = server->tracking->NextExpiry();
    if (!next) {
      server->sweeping = false;
      // A key noted between the look and the flag would have found the sweeper still running.
      if (!server->tracking->NextExpiry() || server->sweeping.exchange(true)) co_return;
      continue;
    }
    const uint64_t now = clock.NowMillis();
    if (*next > now) {
      // At most a second at a time: an earlier expiry noted meanwhile is not missed by more.
      const uint64_t wait_ms = std::min<uint64_t>(*next - now, 1000);
      timer.expires_after(std::chrono::milliseconds(wait_ms));
      co_await timer.async_wait(kNoThrow);
      continue;
    }
    Deliver(*server, server->tracking->Expire(now));
  }
}

}  // namespace

asio::awaitable<void> RespFrontDoor::Connection::Run() {
  auto self = shared_from_this();
  auto writer = [self]() -> asio::awaitable<void> { co_await self->WriteLoop(); };
  auto on_writer_end = [self](std::exception_ptr e) {
    if (e) {
      spdlog::error("RESP connection {}: the reply writer failed", self->address());
      self->broken_ = true;
      boost::system::error_code ec;
      self->stream_.socket().cancel(ec);  // ends a read that would wait for an idle client
      self->wake_reader_.cancel();
    }
  };
  asio::co_spawn(stream_.get_executor(), writer, on_writer_end);
  co_await ReadLoop();
  FlushSets();
  reading_done_ = true;
  // Let the commands in flight answer and the writer send everything (or fail).
  while (!broken_ && (inflight_ > 0 || !slots_.empty())) {
    wake_writer_.cancel();
    co_await wake_reader_.async_wait(kNoThrow);
  }
  boost::system::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.socket().close(ec);
  broken_ = true;
  wake_writer_.cancel();
  // Everything the connection tracked is forgotten.
  if (tracking) shared_->tracking->Disable(id());
  tracking = false;
  // Commands still in flight (a broken socket) hold `self`; they finish on their own.
  while (inflight_ > 0) co_await wake_reader_.async_wait(kNoThrow);
  // After them: a StartTracking in flight has counted this connection by now.
  StopTracking();
}

asio::awaitable<void> RespFrontDoor::Connection::ReadLoop() {
  const RespOptions& o = shared_->options;
  std::vector<std::string> argv;
  while (!stop_reading && !broken_) {
    // Backpressure: too much work in flight, too many replies not yet written, or the node's
    // memory budget.
    auto must_wait = [&] {
      return inflight_ >= o.max_inflight_per_connection || reply_bytes_ >= o.max_reply_bytes ||
             MustWaitForMemory();
    };
    if (must_wait()) FlushSets();
    while (must_wait() && !stop_reading && !broken_) {
      memory_.SetPaused(MustWaitForMemory());
      co_await wake_reader_.async_wait(kNoThrow);
    }
    memory_.SetPaused(false);
    if (stop_reading || broken_) break;
    char* space = parser_.Prepare(kReadChunk);
    auto [ec, n] = co_await stream_.async_read_some(asio::buffer(space, kReadChunk), kNoThrow);
    parser_.Commit(ec ? 0 : n);
    if (ec) co_return;  // closed by the peer, an error, or RequestClose()
    memory_.Charge(n);
    Update([](ClientInfo& c) { c.last_active = std::chrono::steady_clock::now(); });
    while (!stop_reading) {
      // Commands already read wait for the budget too: one read holds thousands of them.
      if (MustWaitForMemory()) {
        FlushSets();
        memory_.SetPaused(true);
        while (MustWaitForMemory() && !stop_reading && !broken_) {
          co_await wake_reader_.async_wait(kNoThrow);
        }
        memory_.SetPaused(false);
        if (stop_reading || broken_) break;
      }
      const size_t buffered = parser_.buffered();
      const auto outcome = parser_.Next(&argv);
      request_bytes_ += buffered - parser_.buffered();
      if (outcome == RequestParser::Outcome::kNeedMore) {
        FlushSets();  // nothing more to join them before the next read
        break;
      }
      if (outcome == RequestParser::Outcome::kError) {
        FlushSets();
        ++shared_->protocol_errors;
        if (parser_.over_budget() && memory_.budget() != nullptr) memory_.budget()->CountRefusal();
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
  // Small batches of replies are copied into one buffer (cheapest for the syscall); larger ones
  // are written from their slots (a deque: they stay put while more are added), not copied,
  // which would double the memory of a slow reader's replies and keep a large buffer per
  // connection.
  constexpr size_t kCopyBytes = 64 * 1024;
  std::string small;
  std::vector<asio::const_buffer> out;
  while (true) {
    if (broken_) co_return;
    if (slots_.empty() || !slots_.front().done) {
      co_await wake_writer_.async_wait(kNoThrow);
      continue;
    }
    // Let replies that finish in this same turn of the reactor join the write.
    co_await asio::post(stream_.get_executor(), asio::use_awaitable);
    out.clear();
    small.clear();
    size_t taken = 0;
    size_t total = 0;
    bool close = false;
    for (const Slot& slot : slots_) {
      if (!slot.done) break;
      if (!slot.bytes.empty()) out.push_back(asio::buffer(slot.bytes));
      total += slot.bytes.size();
      ++taken;
      if (slot.close_after) {
        close = true;
        break;
      }
    }
    if (total <= kCopyBytes && out.size() > 1) {
      for (const asio::const_buffer& b : out) {
        small.append(static_cast<const char*>(b.data()), b.size());
      }
      out.assign(1, asio::buffer(small));
    }
    auto [ec, n] = co_await asio::async_write(stream_, out, kNoThrow);
    (void)n;
    size_t written = 0;
    for (size_t i = 0; i < taken; ++i) {
      written += slots_.front().bytes.size();
      slots_.pop_front();
    }
    reply_bytes_ -= written;
    memory_.Release(written);
    wake_reader_.cancel();
    if (pushes_dropped_ && !ec && reply_bytes_ < shared_->options.max_reply_bytes / 2) {
      pushes_dropped_ = false;
      Invalidation all;
      all.all = true;
      AddPush(InvalidationPush(all));
    }
    if (ec || close) {
      if (close) {
        stop_reading = true;
        boost::system::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.socket().cancel(ignored);
      }
      broken_ = true;
      wake_reader_.cancel();
      co_return;
    }
  }
}

bool RespFrontDoor::Connection::KeyspaceIsLinearizable() const {
  std::string ks = keyspace();
  if (ks.empty()) ks = std::string(coordinator::kDefaultKeyspace);
  return shared_->coordinator->IsLinearizable(ks);
}

bool RespFrontDoor::Connection::Dispatch(std::vector<std::string>& argv) {
  // Later commands run as whoever it logs in, or once the other nodes know this one tracks.
  if (login_pending_ || tracking_pending_) return false;
  std::string name = AsciiLower(argv[0]);
  const bool plain_set = IsPlainSet(name, argv) && authenticated;
  if (!plain_set) FlushSets();  // commands run in the order they came
  const CommandSpec* spec = FindCommand(name);
  const bool refused = spec == nullptr || !ArityOk(*spec, argv.size()) ||
                       (!authenticated && (spec->flags & kFlagNoAuth) == 0);
  Access access = Access::kNone;
  if (!refused && spec->run != nullptr) {
    access = AccessOf(*spec, argv);
    if (running_.Conflicts(access, *spec, argv, [this] { return KeyspaceIsLinearizable(); })) {
      FlushSets();  // it may wait for one of them
      return false;
    }
  }
  // A read holds its value from storage until its reply is written: room for it is reserved
  // before it runs (base/memory_budget.h).
  size_t reserved = 0;
  bool no_memory = false;
  if (!refused && spec->run != nullptr && IsRead(*spec)) {
    no_memory = !memory_.Reserve(Busy(), &reserved);
  }
  shared_->commands.Add();
  Update([&](ClientInfo& c) { c.last_command = spec ? name : "NULL"; });
  // CLIENT CACHING yes/no applies to the next command (CLIENT subcommands leave it be).
  const bool caching = caching_next;
  if (name != "client") caching_next = false;
  Slot* slot = NewSlot();
  slot->request_bytes += reserved;
  if (no_memory) {
    slot->refused = true;
    ReplyWriter(&slot->bytes, protocol()).Error(RefusedForMemory(0));
    Finished(slot);
    return true;
  }
  if (Refuse(spec, name, argv, slot)) {
    Finished(slot);
    return true;
  }
  std::vector<std::string> tracked;
  if (tracking) tracked = RememberKeys(*spec, argv, caching);
  bool keyspace_wide = access == Access::kGlobal;
  if (spec->run_at_once != nullptr) {
    ConnectionCall call(*this, *shared_, argv, &slot->bytes);
    spec->run_at_once(call);
    if (call.login) {
      StartLogin(*spec, argv, slot, std::move(*call.login));
      return true;
    }
    parser_.set_authenticated(authenticated);  // AUTH, HELLO ... AUTH and RESET change it
    slot->close_after = call.close_after;
    if (call.stop_tracking) StopTracking();
    if (call.start_tracking) {
      StartTracking(slot);
      return true;
    }
    if (!call.hand_on) {
      Finished(slot);
      return true;
    }
    // INFO with its keyspace section: the data handler counts the keys, over the keyspace.
    pending_info_ = std::move(call.info_text);
    keyspace_wide = true;
  }
  StartDataCommand(*spec, access, argv, std::move(name), plain_set, keyspace_wide, slot,
                   std::move(tracked));
  return true;
}

std::vector<std::string> RespFrontDoor::Connection::RememberKeys(
    const CommandSpec& spec, const std::vector<std::string>& argv, bool caching) {
  std::vector<std::string> keys;
  if (tracking_mode.bcast || (spec.flags & kFlagReadonly) == 0) return keys;
  if ((tracking_mode.optin && !caching) || (tracking_mode.optout && caching)) return keys;
  ForEachKey(spec, argv, [&](const std::string& k) { keys.push_back(k); });
  if (keys.empty()) return keys;
  std::vector<Invalidation> evicted;
  shared_->tracking->Remember(id(), keys, &evicted);
  Deliver(*shared_, std::move(evicted));
  return keys;
}

void RespFrontDoor::Connection::NoteExpiry(const CommandContext& ctx) {
  if (ctx.tracked_keys.empty() || ctx.expires_at_ms == 0) return;
  shared_->tracking->NoteExpiry(ctx.tracked_keys, ctx.expires_at_ms);
  if (!shared_->sweeping.exchange(true)) {
    asio::co_spawn(stream_.get_executor(), SweepExpiries(shared_), [](std::exception_ptr e) {
      if (e) spdlog::error("RESP tracking: the expiry sweeper failed: {}", base::ExceptionText(e));
    });
  }
}

void RespFrontDoor::Connection::AddPush(const std::string& bytes) {
  if (broken_ || reading_done_ || protocol() < 3) return;
  if (reply_bytes_ >= shared_->options.max_reply_bytes) {
    pushes_dropped_ = true;
    return;
  }
  slots_.emplace_back();
  Slot* slot = &slots_.back();
  slot->bytes = bytes;
  Finished(slot);
}

void RespFrontDoor::Connection::StartTracking(Slot* slot) {
  tracking_pending_ = true;
  tracking_started_ = true;
  ++inflight_;
  auto self = shared_from_this();
  auto run = [self]() -> asio::awaitable<void> {
    co_await self->shared_->coordinator->StartTracking();
  };
  auto done = [self, slot](std::exception_ptr e) {
    if (e)
      spdlog::error("RESP connection {}: telling the other nodes it tracks failed: {}",
                    self->address(), base::ExceptionText(e));
    self->tracking_pending_ = false;
    --self->inflight_;
    self->Finished(slot);
    self->wake_reader_.cancel();
  };
  asio::co_spawn(stream_.get_executor(), std::move(run), std::move(done));
}

void RespFrontDoor::Connection::StopTracking() {
  if (!tracking_started_) return;
  tracking_started_ = false;
  shared_->coordinator->StopTracking();
}

bool RespFrontDoor::Connection::Refuse(const CommandSpec* spec, const std::string& name,
                                       const std::vector<std::string>& argv, Slot* slot) {
  ReplyWriter w(&slot->bytes, protocol());
  if (spec == nullptr) {
    w.Error(UnknownCommandError(argv));
    // As Redis: an HTTP request sent to the port is an attack or a mistake; drop it.
    if (name == "post" || name == "host:") {
      slot->bytes.clear();
      slot->close_after = true;
      stop_reading = true;
    }
    return true;
  }
  if (!ArityOk(*spec, argv.size())) {
    w.Error(fmt::format("ERR wrong number of arguments for '{}' command", name));
    return true;
  }
  if (!authenticated && (spec->flags & kFlagNoAuth) == 0) {
    w.Error("NOAUTH Authentication required.");
    return true;
  }
  if (const base::AccessControl* access = shared_->options.access; access != nullptr) {
    if (Status s = AuthorizeCommand(*access, user, *spec, argv, keyspace()); !s.ok()) {
      w.Error(RefusalText(s, name));
      return true;
    }
  }
  return false;
}

void RespFrontDoor::Connection::StartLogin(const CommandSpec& spec, std::vector<std::string> argv,
                                           Slot* slot, std::pair<std::string, std::string> login) {
  login_pending_ = true;
  ++inflight_;
  auto self = shared_from_this();
  auto run = [self, &spec, argv = std::move(argv), slot,
              login = std::move(login)]() mutable -> asio::awaitable<void> {
    auto user = co_await self->shared_->options.access->Login(std::move(login.first),
                                                              std::move(login.second));
    ConnectionCall call(*self, *self->shared_, argv, &slot->bytes);
    call.login_verdict = user.ok();
    spec.run_at_once(call);  // replies as the verdict says
    self->parser_.set_authenticated(self->authenticated);
  };
  auto done = [self, slot](std::exception_ptr e) {
    if (e) {
      spdlog::error("RESP connection {}: a login failed: {}", self->address(),
                    base::ExceptionText(e));
      slot->bytes.clear();
      ReplyWriter(&slot->bytes, self->protocol()).Error("ERR internal error; see the server log");
    }
    self->login_pending_ = false;
    --self->inflight_;
    self->Finished(slot);
    self->wake_reader_.cancel();
  };
  asio::co_spawn(stream_.get_executor(), std::move(run), std::move(done));
}

void RespFrontDoor::Connection::StartDataCommand(const CommandSpec& spec, Access access,
                                                 std::vector<std::string>& argv, std::string name,
                                                 bool plain_set, bool keyspace_wide, Slot* slot,
                                                 std::vector<std::string> tracked) {
  auto ctx = std::make_shared<CommandContext>();
  ctx->origin = id();
  ctx->tracked_keys = std::move(tracked);
  ctx->coordinator = shared_->coordinator;
  ctx->cursors = &shared_->cursors;
  ctx->max_value_bytes = shared_->options.max_value_bytes;
  ctx->allow_flush = shared_->options.allow_flush;
  ctx->keyspace = keyspace();
  ctx->protocol = protocol();
  ctx->read_level = read_level;
  ctx->write_level = write_level;
  ctx->deadline = base::Clock::now() +
                  (keyspace_wide ? shared_->options.keyspace_timeout : shared_->options.timeout);
  ctx->argv = std::move(argv);
  ctx->name = std::move(name);
  ctx->out = &slot->bytes;
  ctx->info_text = std::move(pending_info_);
  ctx->started = base::Clock::now();
  const base::metrics::Operation op = OperationOf(spec, access);
  const Consistency level = access == Access::kRead ? read_level : write_level;
  slot->may_refuse = IsRead(spec);
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
    Finished(slot);
    CountRequest(*ctx, *slot, op, level);
    NoteExpiry(*ctx);
    return;
  }
  const uint64_t seq = running_.Add(access, spec, &ctx->argv);
  ++inflight_;
  if (plain_set) {
    pending_sets_.ctxs.push_back(std::move(ctx));
    pending_sets_.slots.push_back(slot);
    pending_sets_.seqs.push_back(seq);
    if (pending_sets_.ctxs.size() >= kMaxSetBatch) FlushSets();
    return;
  }
  auto done = [self = shared_from_this(), ctx, seq, slot, op, level](std::exception_ptr e) {
    self->Complete(*ctx, seq, slot, op, level, e);
    self->wake_reader_.cancel();
  };
  // `ctx` outlives the command: `done` holds it.
  asio::co_spawn(stream_.get_executor(), spec.run(*ctx), std::move(done));
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
  asio::co_spawn(stream_.get_executor(), RunPlainSets(batch->ctxs), std::move(done));
}

void RespFrontDoor::Connection::Complete(CommandContext& ctx, uint64_t seq, Slot* slot,
                                         base::metrics::Operation op, Consistency level,
                                         std::exception_ptr e) {
  if (e) ReplyInternalError(ctx, slot, e);
  running_.Remove(seq);
  --inflight_;
  Finished(slot);
  CountRequest(ctx, *slot, op, level);
  NoteExpiry(ctx);
}

void RespFrontDoor::Connection::Finished(Slot* slot) {
  slot->done = true;
  if (slot->may_refuse) memory_.Learn(slot->bytes.size());
  if (!memory_.Replace(slot->request_bytes, slot->bytes.size(), slot->may_refuse)) {
    const size_t size = slot->bytes.size();
    slot->refused = true;
    slot->bytes = std::string();  // gives the memory back
    ReplyWriter(&slot->bytes, protocol()).Error(RefusedForMemory(size));
    (void)memory_.Replace(slot->request_bytes, slot->bytes.size(), false);
  }
  reply_bytes_ += slot->bytes.size();
  wake_writer_.cancel();
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
  Code outcome = slot.refused ? Code::kUnavailable : ctx.outcome;
  if (outcome == Code::kOk && !slot.bytes.empty() && slot.bytes[0] == '-') {
    outcome = Code::kInvalidArgument;
  }
  metrics->Record(base::metrics::FrontDoor::kResp, op, level, outcome,
                  base::Clock::now() - ctx.started);
}

RespFrontDoor::RespFrontDoor(coordinator::Coordinator* coordinator, RespOptions options)
    : shared_(std::make_shared<ServerState>()) {
  shared_->coordinator = coordinator;
  shared_->options = std::move(options);
  shared_->tracking = std::make_unique<TrackingTable>(
      std::max<size_t>(1, shared_->options.tracking_table_max_keys));
  listener_ = std::make_unique<Listener>(shared_);
  coordinator->SetKeyChangeListener(listener_.get());
}

RespFrontDoor::~RespFrontDoor() { shared_->coordinator->SetKeyChangeListener(nullptr); }

RespFrontDoor::TrackingFigures RespFrontDoor::tracking_figures() const {
  const TrackingTable::Figures t = shared_->tracking->figures();
  TrackingFigures f;
  f.connections = t.clients;
  f.keys = t.keys;
  f.prefixes = t.prefixes;
  f.evicted = t.evicted;
  f.pushes = shared_->pushes.load(std::memory_order_relaxed);
  f.pushed_keys = shared_->pushed_keys.load(std::memory_order_relaxed);
  return f;
}

asio::awaitable<void> RespFrontDoor::Serve(net::Stream stream) {
  auto conn = std::make_shared<Connection>(shared_, std::move(stream));
  ++shared_->connections_received;
  {
    std::lock_guard lock(shared_->mu);
    shared_->sessions[conn->id()] = conn;
  }
  ++open_;
  co_await conn->Run();
  {
    std::lock_guard lock(shared_->mu);
    shared_->sessions.erase(conn->id());
  }
  --open_;
}

void RespFrontDoor::CloseAll() {
  std::lock_guard lock(shared_->mu);
  for (const auto& [id, weak] : shared_->sessions) {
    if (auto c = weak.lock()) c->RequestClose();
  }
}

}  // namespace cairn::frontdoor::resp
