#include "frontdoor/resp/command_table.h"

#include <unordered_map>

namespace cairn::frontdoor::resp {
namespace {

// Redis's flag names, in the order COMMAND INFO lists them.
constexpr std::pair<CommandFlag, std::string_view> kFlagNames[] = {
    {kFlagReadonly, "readonly"}, {kFlagWrite, "write"}, {kFlagNoAuth, "noauth"},
    {kFlagDenyOom, "denyoom"},   {kFlagFast, "fast"},   {kFlagStale, "stale"},
};

}  // namespace

std::vector<std::string_view> FlagNames(uint32_t flags) {
  std::vector<std::string_view> names;
  for (const auto& [flag, name] : kFlagNames) {
    if (flags & flag) names.push_back(name);
  }
  return names;
}

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

const CommandSpec* FindCommand(std::string_view lower_name) {
  static const auto* index = [] {
    auto* m = new std::unordered_map<std::string_view, const CommandSpec*>;
    for (const CommandSpec& c : AllCommands()) (*m)[c.name] = &c;
    return m;
  }();
  auto it = index->find(lower_name);
  return it == index->end() ? nullptr : it->second;
}

bool ArityOk(const CommandSpec& spec, size_t argc) {
  const auto n = static_cast<size_t>(spec.arity < 0 ? -spec.arity : spec.arity);
  return spec.arity < 0 ? argc >= n : argc == n;
}

Access AccessOf(const CommandSpec& spec, const std::vector<std::string>& argv) {
  return spec.access_of ? spec.access_of(argv) : spec.access;
}

base::metrics::Operation OperationOf(const CommandSpec& spec, Access access) {
  // A write counted as a put that reads first (SET NX, SET GET ...) is a SERIAL read and a
  // compare-and-swap.
  if (spec.op == base::metrics::Operation::kPut && access == Access::kExclusive) {
    return base::metrics::Operation::kCas;
  }
  return spec.op;
}

}  // namespace cairn::frontdoor::resp
