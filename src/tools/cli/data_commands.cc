// put, get, del, cas, scan.
#include "tools/cli/data_commands.h"

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <iterator>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/counter.h"

namespace cairn::tools::cli {

namespace {

// Reads VALUE: the argument itself, or all of stdin for "-".
std::string ValueArg(const std::string& arg) {
  if (arg != "-") return arg;
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

// The condition the cas flags name; INVALID_ARGUMENT for a version that does not parse.
Result<CasCondition> ConditionOf(const CasArgs& a) {
  if (a.expect_version) {
    auto v = Version::Parse(*a.expect_version);
    if (!v) {
      return Status::InvalidArgument(
          "--expect-version wants a version like 116027195034353664:7 (from get --json)");
    }
    return CasCondition::IfVersion(*v);
  }
  if (a.expect_value) return CasCondition::IfValue(*a.expect_value);
  if (a.expect_absent) return CasCondition::IfNotExists();
  return CasCondition::IfExists();
}

}  // namespace

int Put(Context& context, const Args& args) {
  const KeyArgs& a = args.kv;
  auto v = context.client().Put(a.key, ValueArg(a.value), context.Write(a.ttl_seconds));
  if (!v.ok()) return Fail(v.status());
  return context.Reply(Json{{"version", v->ToString()}}, "OK (version " + v->ToString() + ")\n");
}

int Get(Context& context, const Args& args) {
  const KeyArgs& a = args.kv;
  auto r = context.client().Get(a.key, context.Read());
  if (!r.ok()) return Fail(r.status());
  if (!r->has_value()) {
    if (context.json()) PrintJson(Json{{"found", false}});
    Note("key not found");
    return kExitNotFound;
  }
  if (context.json()) {
    Json j = RecordJson(a.key, **r);
    j["found"] = true;
    PrintJson(j);
  } else {
    std::cout << (*r)->value;
    // At a terminal the prompt must not land on the value's line; piped, the bytes are exact.
    if (::isatty(STDOUT_FILENO) && !(*r)->value.ends_with('\n')) std::cout << "\n";
  }
  return kExitOk;
}

int Incr(Context& context, const Args& args) {
  const std::string& by = args.kv.value;
  Result<IncrementResult> r = Status::Internal("unset");
  if (by.empty()) {
    r = context.client().Increment(args.kv.key, 1, context.Write());
  } else if (auto n = base::ParseInt64(by)) {
    r = context.client().Increment(args.kv.key, *n, context.Write());
  } else if (base::ParseLongDouble(by)) {
    r = context.client().IncrementByFloat(args.kv.key, by, context.Write());
  } else {
    return Reject(fmt::format("BY must be an integer or a decimal number, not '{}'", by));
  }
  if (!r.ok()) return Fail(r.status());
  return context.Reply(Json{{"value", r->value}, {"estimate", r->estimate}},
                       r->estimate ? fmt::format("{} (split counter: an estimate; get KEY sums "
                                                 "it)\n",
                                                 r->value)
                                   : r->value + "\n");
}

int Del(Context& context, const Args& args) {
  auto v = context.client().Delete(args.kv.key, context.Write());
  if (!v.ok()) return Fail(v.status());
  return context.Reply(Json{{"version", v->ToString()}}, "OK\n");
}

int Cas(Context& context, const Args& args) {
  const CasArgs& a = args.cas;
  auto condition = ConditionOf(a);
  if (!condition.ok()) return Reject(condition.status().message());
  std::optional<std::string> new_value;
  if (!a.delete_key) new_value = ValueArg(a.new_value.value_or(""));
  WriteOptions options = context.Write(a.ttl_seconds);
  options.commit_consistency = a.commit_level;
  auto r = context.client().Cas(a.key, *condition, std::move(new_value), options);
  if (!r.ok()) return Fail(r.status());
  if (context.json()) {
    Json j{{"applied", r->applied}};
    j["current"] = r->current ? RecordJson(a.key, *r->current) : Json(nullptr);
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

int Scan(Context& context, const Args& args) {
  const ScanArgs& a = args.scan;
  uint32_t printed = 0;
  std::string next = a.cursor;
  Json entries = Json::array();
  while (printed < a.limit) {
    ScanOptions so;
    so.consistency = context.level();
    so.cursor = next;
    so.limit = std::min<uint32_t>(a.limit - printed, 1000);
    auto page = context.client().Scan(a.prefix, so);
    if (!page.ok()) return Fail(page.status());
    for (const auto& [k, rec] : page->entries) {
      if (context.json()) {
        entries.push_back(RecordJson(k, rec));
      } else {
        std::cout << Printable(k) << "\t" << Printable(rec.value) << "\n";
      }
      ++printed;
    }
    next = page->cursor;
    if (page->done()) break;
  }
  if (context.json()) {
    PrintJson(Json{{"entries", entries}, {"cursor", next.empty() ? Json(nullptr) : Json(next)}});
  } else if (!next.empty()) {
    Note("more keys follow; continue with --cursor '" + Printable(next) + "'");
  }
  return kExitOk;
}

}  // namespace cairn::tools::cli
