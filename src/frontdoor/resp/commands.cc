#include "frontdoor/resp/commands.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <random>
#include <unordered_map>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "frontdoor/resp/acl_commands.h"
#include "frontdoor/resp/connection_commands.h"
#include "frontdoor/resp/resp_parser.h"

namespace cairn::frontdoor::resp {
namespace {

using coordinator::CasCondition;
using coordinator::CasResult;

constexpr std::string_view kNotInteger = "ERR value is not an integer or out of range";
constexpr std::string_view kSyntax = "ERR syntax error";
constexpr std::string_view kNotFloat = "ERR value is not a valid float";
constexpr uint32_t kScanPage = 1000;

// Whether option `a` is `b`, as Redis compares options (strcasecmp on C strings: a NUL byte
// ends the argument).
bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  a = CString(a);
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// What is left of a record's time to live, for commands that keep it (INCR, APPEND, KEEPTTL).
uint64_t RemainingTtl(const Record& r, int64_t now) {
  if (r.expires_at_ms == 0) return 0;
  const int64_t left = static_cast<int64_t>(r.expires_at_ms) - now;
  return left > 0 ? static_cast<uint64_t>(left) : 1;
}

void ReplyStatusError(CommandContext& ctx, const Status& s) {
  ctx.outcome = s.code();
  ctx.Reply().Error(ErrorText(s));
}

// The value as a bulk string, or nil when there is none.
void ReplyValue(CommandContext& ctx, const std::optional<Record>& record) {
  ctx.Saw(record);
  if (record) {
    ctx.Reply().Bulk(record->value);
  } else {
    ctx.Reply().Null();
  }
}

// One read-modify-write step: what to do with the key given its current value.
struct Change {
  bool write = false;
  std::optional<std::string> value;  // nullopt: delete
  uint64_t ttl_ms = 0;
};
// Returns the change to make, or an error text to reply with (nothing is written then).
using Decide = std::function<std::variant<Change, std::string>(const std::optional<Record>&)>;

struct RmwOutcome {
  std::optional<Record> before;  // the value the change was decided on
  Change change;
  bool wrote = false;
  std::string error;  // set when Decide refused
};

// A change that stores `value` in place of `current`, keeping the time it has left to live.
Change Rewrite(const std::optional<Record>& current, std::string value, int64_t now) {
  Change c;
  c.write = true;
  c.value = std::move(value);
  c.ttl_ms = current ? RemainingTtl(*current, now) : 0;
  return c;
}

// Replies with the error of a read-modify-write that failed or was refused; false when it did
// neither and the command has its own reply to give.
bool ReplyRmwError(CommandContext& ctx, const Result<RmwOutcome>& r) {
  if (!r.ok()) {
    ReplyStatusError(ctx, r.status());
    return true;
  }
  if (!r->error.empty()) {
    ctx.Reply().Error(r->error);
    return true;
  }
  return false;
}

// Linearizable read-modify-write of one key: a SERIAL read, then compare-and-swap on the version
// read (or on absence), retried with the value that won until one applies or the deadline passes.
asio::awaitable<Result<RmwOutcome>> ReadModifyWrite(CommandContext& ctx, const std::string& key,
                                                    const Decide& decide) {
  auto read = co_await ctx.coordinator->Get(key, ctx.SerialOptions());
  if (!read.ok()) co_return read.status();
  RmwOutcome outcome;
  outcome.before = std::move(*read);
  while (true) {
    auto decision = decide(outcome.before);
    if (auto* error = std::get_if<std::string>(&decision)) {
      outcome.error = std::move(*error);
      co_return outcome;
    }
    outcome.change = std::get<Change>(std::move(decision));
    if (!outcome.change.write) co_return outcome;
    CasCondition condition;
    if (outcome.before) {
      condition.kind = CasCondition::Kind::kIfVersion;
      condition.version = outcome.before->version;
    } else {
      condition.kind = CasCondition::Kind::kIfNotExists;
    }
    const Consistency commit = ctx.CommitLevel();
    auto r = co_await ctx.coordinator->Cas(key, std::move(condition), outcome.change.value,
                                           outcome.change.ttl_ms, ctx.SerialOptions(), commit);
    if (!r.ok()) co_return r.status();
    if (r->applied) {
      outcome.wrote = true;
      co_return outcome;
    }
    outcome.before = std::move(r->current);
    if (base::Clock::now() >= ctx.deadline) {
      co_return Status::Timeout("the key kept changing until the deadline; nothing was written", 0);
    }
  }
}

// Runs `make(0)` ... `make(n - 1)` (each returning an awaitable<Result<T>>), at most `width` at a
// time, on this coroutine's executor, and waits for all of them; one result per op, in order. For
// commands over many keys (DEL, FLUSHDB): their writes share the engine's group commit instead of
// waiting for one fsync each, yet a command of 20,000 keys does not start 20,000 Paxos rounds in
// one turn of the reactor (it held the PINGs of that reactor for 0.7 s).
constexpr size_t kMaxConcurrentOps = 64;
template <typename T, typename Make>
asio::awaitable<std::vector<Result<T>>> Concurrently(size_t n, Make make,
                                                     size_t width = kMaxConcurrentOps) {
  auto executor = co_await asio::this_coro::executor;
  struct State {
    State(asio::any_io_executor e, size_t n)
        : results(n, Result<T>(Status::Internal("internal error; see the server log"))), done(e) {
      done.expires_at(asio::steady_timer::time_point::max());
    }
    std::vector<Result<T>> results;  // an op that threw keeps its internal error
    size_t next = 0;                 // the next op to start
    size_t workers = 0;              // still running
    asio::steady_timer done;         // cancelled when the last worker ends
  };
  auto state = std::make_shared<State>(executor, n);
  state->workers = std::min(width, n);
  for (size_t w = 0, workers = state->workers; w < workers; ++w) {
    // Each worker runs the next op not yet started until none is left.
    auto worker = [state, make]() -> asio::awaitable<void> {
      while (state->next < state->results.size()) {
        const size_t i = state->next++;
        state->results[i] = co_await make(i);
        if (base::SliceSpent()) co_await base::Yield();  // ops that answer without waiting
      }
    };
    auto finished = [state](std::exception_ptr) {
      if (--state->workers == 0) state->done.cancel();
    };
    asio::co_spawn(executor, std::move(worker), std::move(finished));
  }
  while (state->workers > 0) {
    co_await state->done.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  co_return std::move(state->results);
}

std::optional<int64_t> IntArg(const std::string& s) { return ParseInt64(s); }

// Redis's string2ld for INCRBYFLOAT (base/counter.h).
std::optional<long double> FloatArg(const std::string& s) { return base::ParseLongDouble(s); }

// ---- GET / SET family ----

asio::awaitable<void> CmdGet(CommandContext& ctx) {
  auto r = co_await ctx.coordinator->Get(ctx.argv[1], ctx.ReadOptions());
  if (!r.ok()) co_return ReplyStatusError(ctx, r.status());
  ReplyValue(ctx, *r);
}

// Expiry options shared by SET and GETEX: a relative ttl, an absolute time, or KEEPTTL/PERSIST.
struct Expiry {
  enum class Kind { kNone, kRelative, kAbsolute, kKeep, kPersist } kind = Kind::kNone;
  int64_t ms = 0;  // relative ms or absolute Unix ms
};

// The expiry options of SET, SETEX and GETEX: EX, PX, EXAT, PXAT.
enum class ExpireUnit { kNone, kEx, kPx, kExAt, kPxAt };

ExpireUnit ExpireUnitOf(std::string_view opt) {
  if (EqualsIgnoreCase(opt, "ex")) return ExpireUnit::kEx;
  if (EqualsIgnoreCase(opt, "px")) return ExpireUnit::kPx;
  if (EqualsIgnoreCase(opt, "exat")) return ExpireUnit::kExAt;
  if (EqualsIgnoreCase(opt, "pxat")) return ExpireUnit::kPxAt;
  return ExpireUnit::kNone;
}

// The expiry `arg` asks for in `unit`, checked as Redis 7.0 checks it
// (getExpireMillisecondsOrReply): an integer, above zero, whose time in milliseconds, plus now for
// EX and PX, fits in 64 bits. Returns an error text or "".
std::string CheckExpiry(const CommandContext& ctx, ExpireUnit unit, const std::string& arg,
                        Expiry* e) {
  auto v = IntArg(arg);
  if (!v) return std::string(kNotInteger);
  const bool seconds = unit == ExpireUnit::kEx || unit == ExpireUnit::kExAt;
  const bool relative = unit == ExpireUnit::kEx || unit == ExpireUnit::kPx;
  const std::string invalid = fmt::format("ERR invalid expire time in '{}' command", ctx.name);
  if (*v <= 0 || (seconds && *v > INT64_MAX / 1000)) return invalid;
  const int64_t ms = seconds ? *v * 1000 : *v;
  if (relative && ms > INT64_MAX - ctx.NowMs()) return invalid;  // Redis's sum overflows
  e->kind = relative ? Expiry::Kind::kRelative : Expiry::Kind::kAbsolute;
  e->ms = ms;
  return "";
}

// The ttl to store for `e`; sets *expired when an absolute time has already passed.
uint64_t TtlOf(const Expiry& e, const std::optional<Record>& current, bool* expired, int64_t now) {
  *expired = false;
  switch (e.kind) {
    case Expiry::Kind::kRelative:
      return static_cast<uint64_t>(e.ms);
    case Expiry::Kind::kAbsolute: {
      const int64_t left = e.ms - now;
      if (left <= 0) *expired = true;
      return left > 0 ? static_cast<uint64_t>(left) : 0;
    }
    case Expiry::Kind::kKeep:
      return current ? RemainingTtl(*current, now) : 0;
    default:
      return 0;
  }
}

// The options of SET (or of GETEX: `get_ex`) as Redis 7.0 parses them
// (parseExtendedStringArgumentsOrReply): an option may be given again, the last expiry of one
// unit wins, and the expiry's number is checked only after every option is known to be valid,
// so that a syntax error comes before a bad number.
struct StringOptions {
  bool nx = false, xx = false, get = false, keepttl = false, persist = false;
  std::optional<std::string> ifeq;  // Valkey 8.1's SET IFEQ
  ExpireUnit unit = ExpireUnit::kNone;
  const std::string* expire = nullptr;  // the argument of the last EX, PX, EXAT or PXAT

  // Parses argv[first...]; returns an error text or "".
  std::string Parse(const std::vector<std::string>& argv, size_t first, bool get_ex) {
    const bool set = !get_ex;
    for (size_t i = first; i < argv.size(); ++i) {
      const std::string& opt = argv[i];
      const bool next = i + 1 < argv.size();
      const ExpireUnit u = ExpireUnitOf(opt);
      if (set && EqualsIgnoreCase(opt, "nx") && !xx && !ifeq) {
        nx = true;
      } else if (set && EqualsIgnoreCase(opt, "xx") && !nx && !ifeq) {
        xx = true;
      } else if (set && EqualsIgnoreCase(opt, "get")) {
        get = true;
      } else if (set && EqualsIgnoreCase(opt, "keepttl") && unit == ExpireUnit::kNone) {
        keepttl = true;
      } else if (get_ex && EqualsIgnoreCase(opt, "persist") && unit == ExpireUnit::kNone) {
        persist = true;
      } else if (set && EqualsIgnoreCase(opt, "ifeq") && !nx && !xx && !ifeq && next) {
        ifeq = argv[++i];
      } else if (u != ExpireUnit::kNone && !keepttl && !persist &&
                 (unit == ExpireUnit::kNone || unit == u) && next) {
        unit = u;
        expire = &argv[++i];
      } else {
        return std::string(kSyntax);
      }
    }
    return "";
  }
  // The expiry asked for, checked (CheckExpiry); KEEPTTL and PERSIST as such.
  std::string ExpiryAsked(const CommandContext& ctx, Expiry* e) const {
    if (keepttl) e->kind = Expiry::Kind::kKeep;
    if (persist) e->kind = Expiry::Kind::kPersist;
    return expire ? CheckExpiry(ctx, unit, *expire, e) : "";
  }
};

asio::awaitable<void> CmdSet(CommandContext& ctx) {
  StringOptions a;
  if (std::string err = a.Parse(ctx.argv, 3, false); !err.empty()) co_return ctx.Reply().Error(err);
  Expiry expiry;
  if (std::string err = a.ExpiryAsked(ctx, &expiry); !err.empty()) co_return ctx.Reply().Error(err);
  const std::string& key = ctx.argv[1];
  const bool conditional = a.nx || a.xx || a.ifeq || a.get || a.keepttl;
  if (!conditional) {
    bool expired = false;
    const uint64_t ttl = TtlOf(expiry, std::nullopt, &expired, ctx.NowMs());
    if (expired) {
      auto d = co_await ctx.coordinator->Delete(key, ctx.WriteOptions());
      if (!d.ok()) co_return ReplyStatusError(ctx, d.status());
      co_return ctx.Reply().Ok();
    }
    // The value is not a key (the connection's conflict checks read the keys): move it.
    auto r = co_await ctx.coordinator->Put(key, std::move(ctx.argv[2]), ttl, ctx.WriteOptions());
    if (!r.ok()) co_return ReplyStatusError(ctx, r.status());
    co_return ctx.Reply().Ok();
  }
  const std::string& value = ctx.argv[2];
  const int64_t now = ctx.NowMs();
  Decide decide = [&a, &expiry, now,
                   &value](const std::optional<Record>& cur) -> std::variant<Change, std::string> {
    Change c;
    if (a.nx && cur) return c;
    if (a.xx && !cur) return c;
    if (a.ifeq && (!cur || cur->value != *a.ifeq)) return c;
    bool expired = false;
    c.ttl_ms = TtlOf(expiry, cur, &expired, now);
    c.write = true;
    if (!expired) c.value = value;
    return c;
  };
  auto r = co_await ReadModifyWrite(ctx, key, decide);
  if (!r.ok()) co_return ReplyStatusError(ctx, r.status());
  if (a.get) {
    ReplyValue(ctx, r->before);
  } else if (r->wrote) {
    ctx.Reply().Ok();
  } else {
    ctx.Reply().Null();
  }
}

asio::awaitable<void> CmdSetNx(CommandContext& ctx) {
  CasCondition condition;
  condition.kind = CasCondition::Kind::kIfNotExists;
  const Consistency commit = ctx.CommitLevel();
  auto r = co_await ctx.coordinator->Cas(ctx.argv[1], std::move(condition), ctx.argv[2], 0,
                                         ctx.SerialOptions(), commit);
  if (!r.ok()) co_return ReplyStatusError(ctx, r.status());
  ctx.Reply().Integer(r->applied ? 1 : 0);
}

// SETEX key seconds value / PSETEX key milliseconds value.
asio::awaitable<void> CmdSetEx(CommandContext& ctx) {
  Expiry e;
  const ExpireUnit unit = ctx.name == "setex" ? ExpireUnit::kEx : ExpireUnit::kPx;
  if (std::string err = CheckExpiry(ctx, unit, ctx.argv[2], &e); !err.empty()) {
    co_return ctx.Reply().Error(err);
  }
  auto r = co_await ctx.coordinator->Put(ctx.argv[1], ctx.argv[3], static_cast<uint64_t>(e.ms),
                                         ctx.WriteOptions());
  if (!r.ok()) co_return ReplyStatusError(ctx, r.status());
  ctx.Reply().Ok();
}

asio::awaitable<void> CmdGetSet(CommandContext& ctx) {
  const std::string& value = ctx.argv[2];
  const bool del = ctx.name == "getdel";
  Decide decide = [&value,
                   del](const std::optional<Record>& cur) -> std::variant<Change, std::string> {
    Change c;
    if (del) {
      c.write = cur.has_value();
      return c;
    }
    c.write = true;
    c.value = value;
    return c;
  };
  auto r = co_await ReadModifyWrite(ctx, ctx.argv[1], decide);
  if (!r.ok()) co_return ReplyStatusError(ctx, r.status());
  ReplyValue(ctx, r->before);
}

// GETEX key [EX s | PX ms | EXAT t | PXAT t | PERSIST]: as in Redis, an absent key answers nil
// before the expiry's number is checked.
asio::awaitable<void> CmdGetEx(CommandContext& ctx) {
  StringOptions o;
  if (std::string err = o.Parse(ctx.argv, 2, true); !err.empty()) co_return ctx.Reply().Error(err);
  if (!o.expire && !o.persist) co_return co_await CmdGet(ctx);
  Decide decide = [&](const std::optional<Record>& cur) -> std::variant<Change, std::string> {
    Change c;
    if (!cur) return c;
    Expiry e;
    if (std::string err = o.ExpiryAsked(ctx, &e); !err.empty()) return err;
    if (e.kind == Expiry::Kind::kPersist && cur->expires_at_ms == 0) return c;
    bool expired = false;
    c.ttl_ms = TtlOf(e, cur, &expired, ctx.NowMs());
    c.write = true;
    if (!expired) c.value = cur->value;
    return c;
  };
  auto r = co_await ReadModifyWrite(ctx, ctx.argv[1], decide);
  if (ReplyRmwError(ctx, r)) co_return;
  ReplyValue(ctx, r->before);
}

// Reads `keys` in Coordinator batches of at most its batch size, in order; a batch whose answer
// is over the Coordinator's byte limit is split in halves until it fits (one key always does).
// Redis takes any number of keys in one MGET; so does this.
asio::awaitable<Result<std::vector<Result<std::optional<Record>>>>> GetInBatches(
    CommandContext& ctx, std::vector<std::string> keys, coordinator::RequestOptions options) {
  std::vector<Result<std::optional<Record>>> out;
  out.reserve(keys.size());
  const size_t batch = std::max<size_t>(1, ctx.coordinator->options().max_batch_get_keys);
  // Spans [begin, end) still to read, the next one last.
  std::vector<std::pair<size_t, size_t>> todo;
  for (size_t end = keys.size(); end > 0;) {
    const size_t begin = end > batch ? end - batch : 0;
    todo.emplace_back(begin, end);
    end = begin;
  }
  while (!todo.empty()) {
    const auto [begin, end] = todo.back();
    todo.pop_back();
    std::vector<std::string> part(keys.begin() + static_cast<ptrdiff_t>(begin),
                                  keys.begin() + static_cast<ptrdiff_t>(end));
    auto r = co_await ctx.coordinator->BatchGet(std::move(part), options);
    if (!r.ok() && r.status().code() == Code::kTooLarge && end - begin > 1) {
      const size_t mid = begin + (end - begin) / 2;
      todo.emplace_back(mid, end);
      todo.emplace_back(begin, mid);
      continue;
    }
    if (!r.ok()) co_return r.status();
    for (auto& item : *r) {
      if (item.ok()) ctx.Saw(*item);
      out.push_back(std::move(item));
    }
  }
  co_return out;
}

asio::awaitable<void> CmdMGet(CommandContext& ctx) {
  std::vector<std::string> keys(ctx.argv.begin() + 1, ctx.argv.end());
  auto r = co_await GetInBatches(ctx, std::move(keys), ctx.ReadOptions());
  if (!r.ok()) co_return ReplyStatusError(ctx, r.status());
  for (const auto& item : *r) {
    if (!item.ok()) co_return ReplyStatusError(ctx, item.status());
  }
  ReplyWriter w = ctx.Reply();
  w.Array(r->size());
  for (const auto& item : *r) {
    if (*item) {
      w.Bulk((*item)->value);
    } else {
      w.Null();
    }
    if (base::SliceSpent()) co_await base::Yield();  // 100,000 values are a long reply
  }
}

// MSET writes its pairs in Coordinator batches, in order (Redis takes any number of pairs). As
// with one batch, it is not atomic across keys: an error part-way leaves the earlier keys set.
asio::awaitable<void> CmdMSet(CommandContext& ctx) {
  if (ctx.argv.size() % 2 != 1) {
    co_return ctx.Reply().Error(
        fmt::format("ERR wrong number of arguments for '{}' command", ctx.name));
  }
  const size_t batch = std::max<size_t>(1, ctx.coordinator->options().max_batch_items);
  for (size_t first = 1; first + 1 < ctx.argv.size(); first += 2 * batch) {
    std::vector<coordinator::PutItem> items;
    for (size_t i = first; i + 1 < ctx.argv.size() && items.size() < batch; i += 2) {
      coordinator::PutItem item;
      item.key = ctx.argv[i];
      item.value = ctx.argv[i + 1];
      items.push_back(std::move(item));
    }
    auto r = co_await ctx.coordinator->BatchPut(std::move(items), ctx.WriteOptions());
    if (!r.ok()) co_return ReplyStatusError(ctx, r.status());
    for (const auto& v : *r) {
      if (!v.ok()) co_return ReplyStatusError(ctx, v.status());
    }
  }
  ctx.Reply().Ok();
}

// MSETNX: 1 when no key existed and every key was set. Each key is set with IF NOT EXISTS; across
// keys (and partitions) it is not atomic: a failure part-way leaves the keys set so far.
asio::awaitable<void> CmdMSetNx(CommandContext& ctx) {
  if (ctx.argv.size() % 2 != 1) {
    co_return ctx.Reply().Error(
        fmt::format("ERR wrong number of arguments for '{}' command", ctx.name));
  }
  std::vector<std::string> keys;
  for (size_t i = 1; i < ctx.argv.size(); i += 2) keys.push_back(ctx.argv[i]);
  coordinator::RequestOptions serial = ctx.SerialOptions();
  auto existing = co_await GetInBatches(ctx, std::move(keys), serial);
  if (!existing.ok()) co_return ReplyStatusError(ctx, existing.status());
  for (const auto& item : *existing) {
    if (!item.ok()) co_return ReplyStatusError(ctx, item.status());
    if (item->has_value()) co_return ctx.Reply().Integer(0);
  }
  // A key named twice is set once, to its last value, as Redis's MSETNX leaves it (a second
  // IF NOT EXISTS on it would fail against the first).
  std::map<std::string_view, size_t> last;  // key -> argv index of its last value
  for (size_t i = 1; i + 1 < ctx.argv.size(); i += 2) last[ctx.argv[i]] = i + 1;
  bool all = true;
  for (const auto& [key, value_at] : last) {
    CasCondition condition;
    condition.kind = CasCondition::Kind::kIfNotExists;
    const Consistency commit = ctx.CommitLevel();
    auto r = co_await ctx.coordinator->Cas(std::string(key), std::move(condition),
                                           ctx.argv[value_at], 0, ctx.SerialOptions(), commit);
    if (!r.ok()) co_return ReplyStatusError(ctx, r.status());
    all = all && r->applied;
  }
  ctx.Reply().Integer(all ? 1 : 0);
}

// DEL / UNLINK: each key is deleted IF EXISTS, so the count is exact. Distinct keys are deleted
// concurrently (kMaxConcurrentOps at a time); a key named twice counts once, as in Redis.
asio::awaitable<void> CmdDel(CommandContext& ctx) {
  std::vector<std::string> keys(ctx.argv.begin() + 1, ctx.argv.end());
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  const Consistency commit = ctx.CommitLevel();
  auto del = [&ctx, &keys, commit](size_t i) {
    CasCondition condition;
    condition.kind = CasCondition::Kind::kIfExists;
    return ctx.coordinator->Cas(keys[i], std::move(condition), std::nullopt, 0, ctx.SerialOptions(),
                                commit);
  };
  auto results = co_await Concurrently<CasResult>(keys.size(), del);
  int64_t deleted = 0;
  for (const auto& r : results) {
    if (!r.ok()) co_return ReplyStatusError(ctx, r.status());
    if (r->applied) ++deleted;
  }
  ctx.Reply().Integer(deleted);
}

// EXISTS and TOUCH: how many of the keys (repeats counted) exist.
asio::awaitable<void> CmdExists(CommandContext& ctx) {
  std::vector<std::string> keys(ctx.argv.begin() + 1, ctx.argv.end());
  auto r = co_await GetInBatches(ctx, std::move(keys), ctx.ReadOptions());
  if (!r.ok()) co_return ReplyStatusError(ctx, r.status());
  int64_t n = 0;
  for (const auto& item : *r) {
    if (!item.ok()) co_return ReplyStatusError(ctx, item.status());
    if (item->has_value()) ++n;
  }
  ctx.Reply().Integer(n);
}

asio::awaitable<void> CmdType(CommandContext& ctx) {
  auto r = co_await ctx.coordinator->Get(ctx.argv[1], ctx.ReadOptions());
  if (!r.ok()) co_return ReplyStatusError(ctx, r.status());
  ctx.Saw(*r);
  ctx.Reply().Simple(*r ? "string" : "none");
}

// ---- expiry ----

// EXPIRE key seconds / PEXPIRE / EXPIREAT / PEXPIREAT, with NX | XX | GT | LT.
asio::awaitable<void> CmdExpire(CommandContext& ctx) {
  const bool absolute = ctx.name.ends_with("at");
  const int64_t unit = ctx.name[0] == 'p' ? 1 : 1000;
  // As Redis: the options are checked before the time.
  bool nx = false, xx = false, gt = false, lt = false;
  for (size_t i = 3; i < ctx.argv.size(); ++i) {
    const std::string& o = ctx.argv[i];
    if (EqualsIgnoreCase(o, "nx")) {
      nx = true;
    } else if (EqualsIgnoreCase(o, "xx")) {
      xx = true;
    } else if (EqualsIgnoreCase(o, "gt")) {
      gt = true;
    } else if (EqualsIgnoreCase(o, "lt")) {
      lt = true;
    } else {
      co_return ctx.Reply().Error(fmt::format("ERR Unsupported option {}", CString(o)));
    }
  }
  if (nx && (xx || gt || lt)) {
    co_return ctx.Reply().Error(
        "ERR NX and XX, GT or LT options at the same time are not compatible");
  }
  if (gt && lt) {
    co_return ctx.Reply().Error("ERR GT and LT options at the same time are not compatible");
  }
  auto v = IntArg(ctx.argv[2]);
  if (!v) co_return ctx.Reply().Error(kNotInteger);
  const __int128 at128 =
      static_cast<__int128>(*v) * unit + (absolute ? 0 : static_cast<__int128>(ctx.NowMs()));
  if (at128 > INT64_MAX || at128 < INT64_MIN || (*v > INT64_MAX / unit) ||
      (*v < INT64_MIN / unit)) {
    co_return ctx.Reply().Error(fmt::format("ERR invalid expire time in '{}' command", ctx.name));
  }
  const int64_t at = static_cast<int64_t>(at128);
  const int64_t now = ctx.NowMs();
  Decide decide = [=](const std::optional<Record>& cur) -> std::variant<Change, std::string> {
    Change c;
    if (!cur) return c;
    const bool has_ttl = cur->expires_at_ms != 0;
    const int64_t current_at = static_cast<int64_t>(cur->expires_at_ms);
    if (nx && has_ttl) return c;
    if (xx && !has_ttl) return c;
    if (gt && (!has_ttl || at <= current_at)) return c;  // no ttl counts as infinite
    if (lt && has_ttl && at >= current_at) return c;
    c.write = true;
    // A time already past deletes the key. `at` may be near INT64_MIN: compare before
    // subtracting.
    if (at > now) {
      c.value = cur->value;
      c.ttl_ms = static_cast<uint64_t>(at - now);
    }
    return c;
  };
  auto r = co_await ReadModifyWrite(ctx, ctx.argv[1], decide);
  if (!r.ok()) co_return ReplyStatusError(ctx, r.status());
  ctx.Reply().Integer(r->wrote ? 1 : 0);
}

// TTL / PTTL / EXPIRETIME / PEXPIRETIME: -2 when absent, -1 without expiry.
asio::awaitable<void> CmdTtl(CommandContext& ctx) {
  auto r = co_await ctx.coordinator->Get(ctx.argv[1], ctx.ReadOptions());
  if (!r.ok()) co_return ReplyStatusError(ctx, r.status());
  ctx.Saw(*r);
  if (!*r) co_return ctx.Reply().Integer(-2);
  const uint64_t at = (*r)->expires_at_ms;
  if (at == 0) co_return ctx.Reply().Integer(-1);
  if (ctx.name == "expiretime") co_return ctx.Reply().Integer(static_cast<int64_t>(at / 1000));
  if (ctx.name == "pexpiretime") co_return ctx.Reply().Integer(static_cast<int64_t>(at));
  const int64_t left = std::max<int64_t>(0, static_cast<int64_t>(at) - ctx.NowMs());
  ctx.Reply().Integer(ctx.name == "pttl" ? left : (left + 500) / 1000);
}

asio::awaitable<void> CmdPersist(CommandContext& ctx) {
  Decide decide = [](const std::optional<Record>& cur) -> std::variant<Change, std::string> {
    Change c;
    if (!cur || cur->expires_at_ms == 0) return c;
    c.write = true;
    c.value = cur->value;
    return c;
  };
  auto r = co_await ReadModifyWrite(ctx, ctx.argv[1], decide);
  if (!r.ok()) co_return ReplyStatusError(ctx, r.status());
  ctx.Reply().Integer(r->wrote ? 1 : 0);
}

// ---- counters and string edits ----

// INCR, DECR, INCRBY, DECRBY, INCRBYFLOAT: `delta` added to the key's number by the
// Coordinator's increment (a SERIAL read and a compare-and-swap keeping the time to live, or one
// sub-counter of a split counter, docs/hot-keys.md), with Redis's refusals.
asio::awaitable<void> Increment(CommandContext& ctx, base::CounterDelta delta) {
  coordinator::RequestOptions options = ctx.SerialOptions();
  auto r = co_await ctx.coordinator->Increment(ctx.argv[1], delta, std::move(options),
                                               ctx.CommitLevel());
  if (!r.ok()) co_return ReplyStatusError(ctx, r.status());
  if (r->refused != base::CounterRefusal::kNone) {
    co_return ctx.Reply().Error(base::CounterRefusalText(r->refused));
  }
  if (delta.is_float) co_return ctx.Reply().Bulk(r->value);
  ctx.Reply().Integer(base::ParseInt64(r->value).value_or(0));
}

asio::awaitable<void> CmdIncr(CommandContext& ctx) {
  base::CounterDelta delta;
  delta.by = 1;
  if (ctx.name == "decr") delta.by = -1;
  if (ctx.name == "incrby" || ctx.name == "decrby") {
    auto v = IntArg(ctx.argv[2]);
    if (!v) co_return ctx.Reply().Error(kNotInteger);
    if (ctx.name == "decrby") {
      if (*v == INT64_MIN) co_return ctx.Reply().Error("ERR decrement would overflow");
      delta.by = -*v;
    } else {
      delta.by = *v;
    }
  }
  co_await Increment(ctx, delta);
}

asio::awaitable<void> CmdIncrByFloat(CommandContext& ctx) {
  auto by = FloatArg(ctx.argv[2]);
  if (!by) co_return ctx.Reply().Error(kNotFloat);
  base::CounterDelta delta;
  delta.is_float = true;
  delta.by_float = *by;
  co_await Increment(ctx, delta);
}

constexpr std::string_view kTooBig = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

asio::awaitable<void> CmdAppend(CommandContext& ctx) {
  const std::string& suffix = ctx.argv[2];
  const size_t limit = ctx.max_value_bytes;
  size_t length = 0;
  Decide decide = [&](const std::optional<Record>& cur) -> std::variant<Change, std::string> {
    std::string v = cur ? cur->value : std::string();
    if (v.size() + suffix.size() > limit) return std::string(kTooBig);
    v += suffix;
    length = v.size();
    return Rewrite(cur, std::move(v), ctx.NowMs());
  };
  auto r = co_await ReadModifyWrite(ctx, ctx.argv[1], decide);
  if (ReplyRmwError(ctx, r)) co_return;
  ctx.Reply().Integer(static_cast<int64_t>(length));
}

asio::awaitable<void> CmdStrlen(CommandContext& ctx) {
  auto r = co_await ctx.coordinator->Get(ctx.argv[1], ctx.ReadOptions());
  if (!r.ok()) co_return ReplyStatusError(ctx, r.status());
  ctx.Saw(*r);
  ctx.Reply().Integer(*r ? static_cast<int64_t>((*r)->value.size()) : 0);
}

asio::awaitable<void> CmdGetRange(CommandContext& ctx) {
  auto start = IntArg(ctx.argv[2]);
  auto end = IntArg(ctx.argv[3]);
  if (!start || !end) co_return ctx.Reply().Error(kNotInteger);
  auto r = co_await ctx.coordinator->Get(ctx.argv[1], ctx.ReadOptions());
  if (!r.ok()) co_return ReplyStatusError(ctx, r.status());
  ctx.Saw(*r);
  const std::string v = *r ? (*r)->value : std::string();
  const int64_t len = static_cast<int64_t>(v.size());
  int64_t s = *start, e = *end;
  // As Redis: negative offsets count from the end; an empty or inverted range is "".
  if (s < 0 && e < 0 && s > e) co_return ctx.Reply().Bulk("");
  if (s < 0) s = std::max<int64_t>(0, len + s);
  if (e < 0) e = std::max<int64_t>(0, len + e);
  if (e >= len) e = len - 1;
  if (len == 0 || s > e) co_return ctx.Reply().Bulk("");
  ctx.Reply().Bulk(
      std::string_view(v).substr(static_cast<size_t>(s), static_cast<size_t>(e - s + 1)));
}

asio::awaitable<void> CmdSetRange(CommandContext& ctx) {
  auto offset = IntArg(ctx.argv[2]);
  if (!offset) co_return ctx.Reply().Error(kNotInteger);
  if (*offset < 0) co_return ctx.Reply().Error("ERR offset is out of range");
  const std::string& patch = ctx.argv[3];
  const size_t limit = ctx.max_value_bytes;
  const size_t at = static_cast<size_t>(*offset);
  size_t length = 0;
  Decide decide = [&](const std::optional<Record>& cur) -> std::variant<Change, std::string> {
    std::string v = cur ? cur->value : std::string();
    if (patch.empty()) {  // Redis answers the length and writes nothing
      length = v.size();
      return Change();
    }
    if (at > limit || at + patch.size() > limit) return std::string(kTooBig);
    if (v.size() < at + patch.size()) v.resize(at + patch.size(), '\0');
    v.replace(at, patch.size(), patch);
    length = v.size();
    return Rewrite(cur, std::move(v), ctx.NowMs());
  };
  auto r = co_await ReadModifyWrite(ctx, ctx.argv[1], decide);
  if (ReplyRmwError(ctx, r)) co_return;
  ctx.Reply().Integer(static_cast<int64_t>(length));
}

// ---- the keyspace as a whole ----

// The literal prefix of a glob pattern: the longest start without special characters.
std::string LiteralPrefix(std::string_view pattern) {
  std::string prefix;
  for (char c : pattern) {
    if (c == '*' || c == '?' || c == '[' || c == '\\') break;
    prefix.push_back(c);
  }
  return prefix;
}

// Yields the reactor, or fails with TIMEOUT when the command's deadline has passed.
asio::awaitable<Status> YieldUnlessLate(const CommandContext& ctx, size_t matched) {
  if (base::Clock::now() >= ctx.deadline) {
    co_return Status::Timeout(
        fmt::format("matching keys against the pattern did not finish before the deadline "
                    "({} keys matched so far)",
                    matched),
        0);
  }
  co_await base::Yield();
  co_return Status::Ok();
}

// Moves the keys of `entries` that match `pattern` (none: all) to `out`, in key order. Matching is
// O(pattern x key) steps per key at worst (0.1 s for one 16 KiB key, and a page holds a thousand
// keys), so it runs in bounded steps: it yields the reactor whenever the slice is spent, and gives
// up with TIMEOUT at the command's deadline.
asio::awaitable<Status> MatchKeys(CommandContext& ctx, const std::optional<std::string>& pattern,
                                  std::vector<std::pair<std::string, Record>>& entries,
                                  std::vector<std::string>* out) {
  constexpr size_t kStepsBetweenClockReads = 1 << 16;
  std::optional<GlobMatcher> matcher;
  if (pattern) matcher.emplace(*pattern);
  for (auto& [key, record] : entries) {
    bool keep = true;
    if (matcher) {
      matcher->Start(key);
      GlobMatcher::Outcome o;
      while ((o = matcher->Run(kStepsBetweenClockReads)) == GlobMatcher::Outcome::kUnfinished) {
        if (!base::SliceSpent()) continue;
        if (Status s = co_await YieldUnlessLate(ctx, out->size()); !s.ok()) co_return s;
      }
      keep = o == GlobMatcher::Outcome::kMatch;
    }
    if (keep) out->push_back(std::move(key));
    if (!base::SliceSpent()) continue;
    if (Status s = co_await YieldUnlessLate(ctx, out->size()); !s.ok()) co_return s;
  }
  co_return Status::Ok();
}

// Every live key that matches `pattern` (none: all), in key order. An empty pattern matches only
// the empty key, which Cairn never stores, as in Redis (only "*" matches everything). The scan
// pages are computed off the reactor (on the replicas' blocking pools), the matching in bounded
// steps (MatchKeys); each page and the matching stop at the command's deadline.
asio::awaitable<Result<std::vector<std::string>>> AllKeys(
    CommandContext& ctx, const std::optional<std::string>& pattern) {
  const std::string prefix = pattern ? LiteralPrefix(*pattern) : std::string();
  std::vector<std::string> keys;
  std::string cursor;
  while (true) {
    auto page = co_await ctx.coordinator->Scan(prefix, cursor, kScanPage, ctx.ReadOptions());
    if (!page.ok()) co_return page.status();
    if (Status s = co_await MatchKeys(ctx, pattern, page->entries, &keys); !s.ok()) {
      co_return s;
    }
    if (page->cursor.empty()) break;
    cursor = std::move(page->cursor);
  }
  co_return keys;
}

// Writes `keys` as an array reply, yielding the reactor between slices: a million keys take
// tens of milliseconds to encode.
asio::awaitable<void> ReplyKeys(CommandContext& ctx, const std::vector<std::string>& keys) {
  ReplyWriter w = ctx.Reply();
  w.Array(keys.size());
  for (const auto& k : keys) {
    w.Bulk(k);
    if (base::SliceSpent()) co_await base::Yield();
  }
}

// A SCAN cursor as Redis reads it (parseScanCursorOrReply: strtoul, so an optional sign, a
// negative one wrapped around, "" as 0, digits up to the first NUL byte), or nullopt.
std::optional<uint64_t> ParseCursor(const std::string& text) {
  if (!text.empty() && std::isspace(static_cast<unsigned char>(text[0]))) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (*end != '\0' || errno == ERANGE) return std::nullopt;
  return static_cast<uint64_t>(v);
}

// SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]. As in Redis, the cursor's syntax is checked
// first, then the options; a cursor this node did not issue (or has forgotten) is invalid.
asio::awaitable<void> CmdScan(CommandContext& ctx) {
  const std::optional<uint64_t> cursor_id = ParseCursor(ctx.argv[1]);
  if (!cursor_id) co_return ctx.Reply().Error("ERR invalid cursor");
  std::optional<std::string> pattern;  // none: every key
  uint32_t count = 10;
  std::optional<std::string> type;
  for (size_t i = 2; i < ctx.argv.size(); i += 2) {
    if (i + 1 >= ctx.argv.size()) co_return ctx.Reply().Error(kSyntax);
    if (EqualsIgnoreCase(ctx.argv[i], "match")) {
      pattern = ctx.argv[i + 1];
      if (*pattern == "*") pattern.reset();
    } else if (EqualsIgnoreCase(ctx.argv[i], "count")) {
      auto n = IntArg(ctx.argv[i + 1]);
      if (!n) co_return ctx.Reply().Error(kNotInteger);
      if (*n < 1) co_return ctx.Reply().Error(kSyntax);
      count = static_cast<uint32_t>(std::min<int64_t>(*n, 10'000));
    } else if (EqualsIgnoreCase(ctx.argv[i], "type")) {
      type = ctx.argv[i + 1];
    } else {
      co_return ctx.Reply().Error(kSyntax);
    }
  }
  std::string prefix = pattern ? LiteralPrefix(*pattern) : std::string();
  std::string cursor;
  if (*cursor_id != 0 && !ctx.cursors->Get(*cursor_id, &prefix, &cursor)) {
    co_return ctx.Reply().Error("ERR invalid cursor");
  }
  auto page = co_await ctx.coordinator->Scan(prefix, cursor, count, ctx.ReadOptions());
  if (!page.ok()) co_return ReplyStatusError(ctx, page.status());
  std::vector<std::string> keys;
  const bool strings = !type || EqualsIgnoreCase(*type, "string");
  if (strings) {
    if (Status s = co_await MatchKeys(ctx, pattern, page->entries, &keys); !s.ok()) {
      co_return ReplyStatusError(ctx, s);
    }
  }
  const uint64_t next =
      page->cursor.empty() ? 0 : ctx.cursors->Put(std::move(prefix), std::move(page->cursor));
  ReplyWriter w = ctx.Reply();
  w.Array(2);
  w.Bulk(std::to_string(next));
  w.Array(keys.size());
  for (const auto& k : keys) w.Bulk(k);
}

asio::awaitable<void> CmdKeys(CommandContext& ctx) {
  std::optional<std::string> pattern;
  if (ctx.argv[1] != "*") pattern = ctx.argv[1];
  auto keys = co_await AllKeys(ctx, pattern);
  if (!keys.ok()) co_return ReplyStatusError(ctx, keys.status());
  co_await ReplyKeys(ctx, *keys);
}

asio::awaitable<void> CmdDbSize(CommandContext& ctx) {
  auto n = co_await CountKeys(ctx);
  if (!n.ok()) co_return ReplyStatusError(ctx, n.status());
  ctx.Reply().Integer(static_cast<int64_t>(*n));
}

// A random key. Cairn has no index to pick uniformly from, but keys are spread over the
// partitions by hash: a random key of the first page of a random partition, tried a few times.
// A keyspace too small to fill the partitions it was tried on falls back to its first page.
asio::awaitable<void> CmdRandomKey(CommandContext& ctx) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  constexpr int kPartitionsTried = 8;
  const uint32_t partitions = ctx.coordinator->partition_count();
  for (int tried = 0; tried <= kPartitionsTried; ++tried) {
    std::optional<uint32_t> partition;  // none: the whole keyspace, the last try
    if (tried < kPartitionsTried && partitions > 0) {
      partition = static_cast<uint32_t>(rng() % partitions);
    }
    auto page = co_await ctx.coordinator->Scan("", "", kScanPage, ctx.ReadOptions(), partition);
    if (!page.ok()) co_return ReplyStatusError(ctx, page.status());
    if (!page->entries.empty()) {
      co_return ctx.Reply().Bulk(page->entries[rng() % page->entries.size()].first);
    }
    if (!partition) break;
  }
  ctx.Reply().Null();
}

asio::awaitable<void> CmdFlush(CommandContext& ctx) {
  if (ctx.argv.size() > 2 || (ctx.argv.size() == 2 && !EqualsIgnoreCase(ctx.argv[1], "async") &&
                              !EqualsIgnoreCase(ctx.argv[1], "sync"))) {
    co_return ctx.Reply().Error(kSyntax);
  }
  if (!ctx.allow_flush) {
    co_return ctx.Reply().Error(fmt::format(
        "ERR {} is disabled on this server (start cairnd with --allow-flush)", ctx.name));
  }
  // Client-side caching: every tracking client of every node drops what it cached (Redis's null
  // invalidation), before the deletes: a key read meanwhile is cached again and then invalidated
  // by its delete. The per-key invalidations of the deletes find nothing left to tell but BCAST
  // clients' prefixes.
  co_await ctx.coordinator->InvalidateAll();
  // Page by page: the keys of a page are deleted concurrently (kMaxConcurrentOps at a time), then
  // the scan goes on after them.
  std::string cursor;
  while (true) {
    auto page = co_await ctx.coordinator->Scan("", cursor, kScanPage, ctx.ReadOptions());
    if (!page.ok()) co_return ReplyStatusError(ctx, page.status());
    auto del = [&ctx, &entries = page->entries](size_t i) {
      return ctx.coordinator->Delete(std::move(entries[i].first), ctx.WriteOptions());
    };
    auto results = co_await Concurrently<Version>(page->entries.size(), del);
    for (const auto& r : results) {
      if (!r.ok()) co_return ReplyStatusError(ctx, r.status());
    }
    if (page->cursor.empty()) break;
    cursor = std::move(page->cursor);
  }
  ctx.Reply().Ok();
}

// ---- Cairn's own ----

asio::awaitable<void> CmdGetV(CommandContext& ctx) {
  auto r = co_await ctx.coordinator->Get(ctx.argv[1], ctx.ReadOptions());
  if (!r.ok()) co_return ReplyStatusError(ctx, r.status());
  ctx.Saw(*r);
  if (!*r) co_return ctx.Reply().NullArray();
  ReplyWriter w = ctx.Reply();
  w.Array(3);
  w.Bulk((*r)->value);
  w.Bulk((*r)->version.ToString());
  w.Integer(static_cast<int64_t>((*r)->expires_at_ms));
}

// CAIRN.CAS key expected-version value: sets the value if the key's version is the one given
// ("0": the key must not exist). Replies [applied 1|0, version]: the new version when applied,
// else the current one (nil when the key is absent).
asio::awaitable<void> CmdCas(CommandContext& ctx) {
  CasCondition condition;
  if (ctx.argv[2] == "0") {
    condition.kind = CasCondition::Kind::kIfNotExists;
  } else {
    auto v = Version::Parse(ctx.argv[2]);
    if (!v) {
      co_return ctx.Reply().Error(
          "ERR invalid version: expected <hlc>:<node> as CAIRN.GETV returns it, or 0");
    }
    condition.kind = CasCondition::Kind::kIfVersion;
    condition.version = *v;
  }
  const Consistency commit = ctx.CommitLevel();
  auto r = co_await ctx.coordinator->Cas(ctx.argv[1], std::move(condition), ctx.argv[3], 0,
                                         ctx.SerialOptions(), commit);
  if (!r.ok()) co_return ReplyStatusError(ctx, r.status());
  ReplyWriter w = ctx.Reply();
  w.Array(2);
  w.Integer(r->applied ? 1 : 0);
  if (r->applied) {
    w.Bulk(r->version.ToString());
  } else if (r->current) {
    w.Bulk(r->current->version.ToString());
  } else {
    w.Null();
  }
}

// INFO when the keyspace section is asked for: counting keys takes a scan.
asio::awaitable<void> CmdInfo(CommandContext& ctx) {
  auto n = co_await CountKeys(ctx);
  if (!n.ok()) co_return ReplyStatusError(ctx, n.status());
  std::string text = std::move(ctx.info_text);
  if (!text.empty()) text += "\r\n";
  text += "# Keyspace\r\n";
  if (*n > 0) text += fmt::format("db0:keys={},expires=0,avg_ttl=0\r\n", *n);
  ctx.Reply().Verbatim(text);
}

// SET's access: blind with at most an expiry, exclusive with any condition (NX, GET, KEEPTTL ...).
Access SetAccess(const std::vector<std::string>& argv) {
  // A plain SET (with at most EX/PX/EXAT/PXAT) overwrites without reading.
  for (size_t i = 3; i < argv.size(); ++i) {
    const std::string& o = argv[i];
    if (EqualsIgnoreCase(o, "ex") || EqualsIgnoreCase(o, "px") || EqualsIgnoreCase(o, "exat") ||
        EqualsIgnoreCase(o, "pxat")) {
      ++i;
      continue;
    }
    return Access::kExclusive;
  }
  return Access::kBlind;
}

// The command table (command_table.h): here, beside the data handlers it names; the connection
// handlers are declared in connection_commands.h.
constexpr uint32_t R = kFlagReadonly, W = kFlagWrite, M = kFlagDenyOom, F = kFlagFast,
                   S = kFlagStale, N = kFlagNoAuth;
constexpr Access kNone = Access::kNone, kRead = Access::kRead, kBlind = Access::kBlind,
                 kExcl = Access::kExclusive, kAll = Access::kGlobal;
using Op = base::metrics::Operation;

// Every command this front door knows, data and connection commands alike, in COMMAND's order.
// Columns: name, arity, flags, first key, last key, step, access, access from the arguments,
// operation in /metrics, connection handler, data handler, group, summary. One line each, so the
// table reads as one.
// clang-format off
constexpr CommandSpec kCommands[] = {
    {"get", 2, R | F, 1, 1, 1, kRead, nullptr, Op::kGet, nullptr, CmdGet, "string", "Returns the string value of a key."},
    {"set", -3, W | M, 1, 1, 1, kExcl, SetAccess, Op::kPut, nullptr, CmdSet, "string", "Sets the string value of a key."},
    {"setnx", 3, W | M | F, 1, 1, 1, kExcl, nullptr, Op::kCas, nullptr, CmdSetNx, "string", "Set a key only when it does not exist."},
    {"setex", 4, W | M, 1, 1, 1, kBlind, nullptr, Op::kPut, nullptr, CmdSetEx, "string", "Sets a value and its expiration in seconds."},
    {"psetex", 4, W | M, 1, 1, 1, kBlind, nullptr, Op::kPut, nullptr, CmdSetEx, "string", "Sets a value and its expiration in ms."},
    {"getset", 3, W | M | F, 1, 1, 1, kExcl, nullptr, Op::kCas, nullptr, CmdGetSet, "string", "Sets a key, returns the old value."},
    {"getdel", 2, W | F, 1, 1, 1, kExcl, nullptr, Op::kDelete, nullptr, CmdGetSet, "string", "Returns a key's value and deletes it."},
    {"getex", -2, W | F, 1, 1, 1, kExcl, nullptr, Op::kCas, nullptr, CmdGetEx, "string", "Returns a key's value and sets its expiry."},
    {"mget", -2, R | F, 1, -1, 1, kRead, nullptr, Op::kBatchGet, nullptr, CmdMGet, "string", "Returns the values of keys."},
    {"mset", -3, W | M, 1, -1, 2, kBlind, nullptr, Op::kBatchPut, nullptr, CmdMSet, "string", "Sets several keys (not atomically)."},
    {"msetnx", -3, W | M, 1, -1, 2, kExcl, nullptr, Op::kCas, nullptr, CmdMSetNx, "string", "Sets keys only when none exists."},
    {"del", -2, W, 1, -1, 1, kExcl, nullptr, Op::kDelete, nullptr, CmdDel, "keyspace", "Deletes keys."},
    {"unlink", -2, W | F, 1, -1, 1, kExcl, nullptr, Op::kDelete, nullptr, CmdDel, "keyspace", "Deletes keys."},
    {"exists", -2, R | F, 1, -1, 1, kRead, nullptr, Op::kGet, nullptr, CmdExists, "keyspace", "Counts the keys that exist."},
    {"touch", -2, R | F, 1, -1, 1, kRead, nullptr, Op::kGet, nullptr, CmdExists, "keyspace", "Counts the keys that exist."},
    {"type", 2, R | F, 1, 1, 1, kRead, nullptr, Op::kGet, nullptr, CmdType, "keyspace", "Returns the type of a key."},
    {"expire", -3, W | F, 1, 1, 1, kExcl, nullptr, Op::kCas, nullptr, CmdExpire, "keyspace", "Sets a key's expiry in seconds."},
    {"pexpire", -3, W | F, 1, 1, 1, kExcl, nullptr, Op::kCas, nullptr, CmdExpire, "keyspace", "Sets a key's expiry in ms."},
    {"expireat", -3, W | F, 1, 1, 1, kExcl, nullptr, Op::kCas, nullptr, CmdExpire, "keyspace", "Sets a key's expiry as a Unix time."},
    {"pexpireat", -3, W | F, 1, 1, 1, kExcl, nullptr, Op::kCas, nullptr, CmdExpire, "keyspace", "Sets a key's expiry in Unix ms."},
    {"ttl", 2, R | F, 1, 1, 1, kRead, nullptr, Op::kGet, nullptr, CmdTtl, "keyspace", "Returns a key's time to live in seconds."},
    {"pttl", 2, R | F, 1, 1, 1, kRead, nullptr, Op::kGet, nullptr, CmdTtl, "keyspace", "Returns a key's time to live in ms."},
    {"expiretime", 2, R | F, 1, 1, 1, kRead, nullptr, Op::kGet, nullptr, CmdTtl, "keyspace", "Returns a key's expiry time."},
    {"pexpiretime", 2, R | F, 1, 1, 1, kRead, nullptr, Op::kGet, nullptr, CmdTtl, "keyspace", "Returns a key's expiry in ms."},
    {"persist", 2, W | F, 1, 1, 1, kExcl, nullptr, Op::kCas, nullptr, CmdPersist, "keyspace", "Removes a key's expiry."},
    {"incr", 2, W | M | F, 1, 1, 1, kExcl, nullptr, Op::kCas, nullptr, CmdIncr, "string", "Increments an integer value by one."},
    {"decr", 2, W | M | F, 1, 1, 1, kExcl, nullptr, Op::kCas, nullptr, CmdIncr, "string", "Decrements an integer value by one."},
    {"incrby", 3, W | M | F, 1, 1, 1, kExcl, nullptr, Op::kCas, nullptr, CmdIncr, "string", "Increments an integer value."},
    {"decrby", 3, W | M | F, 1, 1, 1, kExcl, nullptr, Op::kCas, nullptr, CmdIncr, "string", "Decrements an integer value."},
    {"incrbyfloat", 3, W | M | F, 1, 1, 1, kExcl, nullptr, Op::kCas, nullptr, CmdIncrByFloat, "string", "Increments a float value."},
    {"append", 3, W | M | F, 1, 1, 1, kExcl, nullptr, Op::kCas, nullptr, CmdAppend, "string", "Appends to a key's value."},
    {"strlen", 2, R | F, 1, 1, 1, kRead, nullptr, Op::kGet, nullptr, CmdStrlen, "string", "Returns the length of a value."},
    {"getrange", 4, R, 1, 1, 1, kRead, nullptr, Op::kGet, nullptr, CmdGetRange, "string", "Returns a substring of a value."},
    {"substr", 4, R, 1, 1, 1, kRead, nullptr, Op::kGet, nullptr, CmdGetRange, "string", "Returns a substring of a value."},
    {"setrange", 4, W | M, 1, 1, 1, kExcl, nullptr, Op::kCas, nullptr, CmdSetRange, "string", "Overwrites part of a value."},
    {"scan", -2, R, 0, 0, 0, kAll, nullptr, Op::kScan, nullptr, CmdScan, "keyspace", "Iterates over the keys."},
    {"keys", 2, R, 0, 0, 0, kAll, nullptr, Op::kScan, nullptr, CmdKeys, "keyspace", "Returns the keys matching a pattern."},
    {"dbsize", 1, R, 0, 0, 0, kAll, nullptr, Op::kOther, nullptr, CmdDbSize, "server", "Returns the number of keys."},
    {"randomkey", 1, R, 0, 0, 0, kAll, nullptr, Op::kOther, nullptr, CmdRandomKey, "keyspace", "Returns a random key."},
    {"flushdb", -1, W, 0, 0, 0, kAll, nullptr, Op::kOther, nullptr, CmdFlush, "server", "Deletes every key (needs --allow-flush)."},
    {"flushall", -1, W, 0, 0, 0, kAll, nullptr, Op::kOther, nullptr, CmdFlush, "server", "Deletes every key (needs --allow-flush)."},
    {"ping", -1, F | S, 0, 0, 0, kNone, nullptr, Op::kOther, Ping, nullptr, "connection", "Returns the server's liveliness."},
    {"echo", 2, F, 0, 0, 0, kNone, nullptr, Op::kOther, Echo, nullptr, "connection", "Returns the given string."},
    {"hello", -1, N | F | S, 0, 0, 0, kNone, nullptr, Op::kOther, Hello, nullptr, "connection", "Handshakes with the server."},
    {"auth", -2, N | F | S, 0, 0, 0, kNone, nullptr, Op::kOther, Auth, nullptr, "connection", "Authenticates the connection."},
    {"select", 2, F | S, 0, 0, 0, kNone, nullptr, Op::kOther, Select, nullptr, "connection", "Selects database 0 (the only one)."},
    {"quit", -1, N | F | S, 0, 0, 0, kNone, nullptr, Op::kOther, Quit, nullptr, "connection", "Closes the connection."},
    {"reset", 1, N | F | S, 0, 0, 0, kNone, nullptr, Op::kOther, Reset, nullptr, "connection", "Resets the connection."},
    {"time", 1, F | S, 0, 0, 0, kNone, nullptr, Op::kOther, Time, nullptr, "server", "Returns the server time."},
    {"client", -2, S, 0, 0, 0, kNone, nullptr, Op::kOther, Client, nullptr, "connection", "Connection management."},
    {"command", -1, S, 0, 0, 0, kNone, nullptr, Op::kOther, Command, nullptr, "server", "Information about commands."},
    {"info", -1, S, 0, 0, 0, kAll, nullptr, Op::kOther, Info, CmdInfo, "server", "Information and statistics about the server."},
    {"config", -2, S, 0, 0, 0, kNone, nullptr, Op::kOther, Config, nullptr, "server", "CONFIG GET of the settings clients probe."},
    {"acl", -2, S, 0, 0, 0, kNone, nullptr, Op::kOther, Acl, CmdAcl, "server", "Users and their permissions (WHOAMI, LIST, USERS, CAT, SETUSER, DELUSER)."},
    {"cairn.keyspace", -1, F, 0, 0, 0, kNone, nullptr, Op::kOther, CairnKeyspace, nullptr, "cairn", "Gets or sets the connection's keyspace."},
    {"cairn.consistency", -1, F, 0, 0, 0, kNone, nullptr, Op::kOther, CairnConsistency, nullptr, "cairn", "Gets or sets the consistency levels."},
    {"cairn.getv", 2, R | F, 1, 1, 1, kRead, nullptr, Op::kGet, nullptr, CmdGetV, "cairn", "Returns a value with its version."},
    {"cairn.cas", 4, W, 1, 1, 1, kExcl, nullptr, Op::kCas, nullptr, CmdCas, "cairn", "Sets a value if its version matches."},
    {"cairn.status", 1, S, 0, 0, 0, kNone, nullptr, Op::kOther, CairnStatus, nullptr, "cairn", "Returns the cluster's nodes."},
};
// clang-format on

}  // namespace

uint64_t CursorTable::Put(std::string prefix, std::string cursor) {
  std::lock_guard lock(mu_);
  const uint64_t id = next_++;
  cursors_.emplace(id, std::make_pair(std::move(prefix), std::move(cursor)));
  while (cursors_.size() > kMaxCursors) cursors_.erase(cursors_.begin());
  return id;
}

bool CursorTable::Get(uint64_t id, std::string* prefix, std::string* cursor) {
  std::lock_guard lock(mu_);
  auto it = cursors_.find(id);
  if (it == cursors_.end()) return false;
  *prefix = it->second.first;
  *cursor = it->second.second;
  return true;
}

coordinator::RequestOptions CommandContext::ReadOptions() const {
  coordinator::RequestOptions o(keyspace, read_level, deadline);
  o.origin = origin;
  return o;
}

coordinator::RequestOptions CommandContext::WriteOptions() const {
  coordinator::RequestOptions o(keyspace, write_level, deadline);
  o.origin = origin;
  return o;
}

coordinator::RequestOptions CommandContext::SerialOptions() const {
  const Consistency serial =
      read_level == Consistency::kLocalSerial ? Consistency::kLocalSerial : Consistency::kSerial;
  coordinator::RequestOptions o(keyspace, serial, deadline);
  o.origin = origin;
  return o;
}

Consistency CommandContext::CommitLevel() const {
  // SERIAL levels are not commit levels; ANY is (no wait), as the Coordinator documents.
  if (write_level == Consistency::kSerial || write_level == Consistency::kLocalSerial) {
    return Consistency::kDefault;
  }
  return write_level;
}

bool IsPlainSet(std::string_view lower_name, const std::vector<std::string>& argv) {
  return argv.size() == 3 && lower_name == "set";
}

asio::awaitable<void> RunPlainSets(std::vector<std::shared_ptr<CommandContext>> batch) {
  // A batch refuses all its items for one bad one: SETs the Coordinator would refuse run alone,
  // to get their own error (they write nothing, so their order against the others is moot).
  std::vector<CommandContext*> together, alone;
  for (const auto& ctx : batch) {
    const std::string& key = ctx->argv[1];
    const bool ok =
        !key.empty() && key.size() <= kMaxKeyBytes && ctx->argv[2].size() <= ctx->max_value_bytes;
    (ok ? together : alone).push_back(ctx.get());
  }
  for (CommandContext* ctx : alone) co_await CmdSet(*ctx);
  if (together.empty()) co_return;
  std::vector<coordinator::PutItem> items;
  items.reserve(together.size());
  for (CommandContext* ctx : together) {
    // The value is not a key (the connection's conflict checks read the keys): move it.
    items.push_back(coordinator::PutItem{ctx->argv[1], std::move(ctx->argv[2]), 0});
  }
  const CommandContext& first = *together.front();
  auto results = co_await first.coordinator->BatchPut(std::move(items), first.WriteOptions());
  for (size_t i = 0; i < together.size(); ++i) {
    CommandContext& ctx = *together[i];
    if (!results.ok()) {
      ReplyStatusError(ctx, results.status());
    } else if (!(*results)[i].ok()) {
      ReplyStatusError(ctx, (*results)[i].status());
    } else {
      ctx.Reply().Ok();
    }
  }
}

bool TryRunAtOnce(CommandContext& ctx) {
  if (ctx.name != "get") return false;
  auto r = ctx.coordinator->TryGetLocal(ctx.argv[1], ctx.ReadOptions());
  if (!r) return false;
  if (!r->ok()) {
    ReplyStatusError(ctx, r->status());
  } else {
    ReplyValue(ctx, **r);
  }
  return true;
}

std::span<const CommandSpec> AllCommands() { return kCommands; }

std::string ErrorText(const Status& s) {
  switch (s.code()) {
    case Code::kUnavailable:
      return "UNAVAILABLE " + s.message();
    case Code::kTimeout:
      return fmt::format("TIMEOUT {} ({} acknowledged; a write may or may not have applied)",
                         s.message(), s.acks());
    case Code::kTooLarge:
      return "ERR " + s.message();
    default:
      return "ERR " + s.message();
  }
}

asio::awaitable<Result<uint64_t>> CountKeys(CommandContext& ctx) {
  uint64_t n = 0;
  std::string cursor;
  while (true) {
    auto page = co_await ctx.coordinator->Scan("", cursor, kScanPage, ctx.ReadOptions());
    if (!page.ok()) co_return page.status();
    n += page->entries.size();
    if (page->cursor.empty()) break;
    cursor = std::move(page->cursor);
  }
  co_return n;
}

}  // namespace cairn::frontdoor::resp
