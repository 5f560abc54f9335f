#include "cairn/types.h"

#include <array>
#include <cctype>
#include <charconv>
#include <utility>

#include <fmt/format.h>

namespace cairn {
namespace {

template <typename T>
bool ParseDecimal(std::string_view text, T* out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

constexpr std::array<std::pair<Consistency, std::string_view>, 12> kLevelNames{{
    {Consistency::kDefault, "DEFAULT"},
    {Consistency::kOne, "ONE"},
    {Consistency::kTwo, "TWO"},
    {Consistency::kThree, "THREE"},
    {Consistency::kQuorum, "QUORUM"},
    {Consistency::kAll, "ALL"},
    {Consistency::kLocalOne, "LOCAL_ONE"},
    {Consistency::kLocalQuorum, "LOCAL_QUORUM"},
    {Consistency::kEachQuorum, "EACH_QUORUM"},
    {Consistency::kAny, "ANY"},
    {Consistency::kSerial, "SERIAL"},
    {Consistency::kLocalSerial, "LOCAL_SERIAL"},
}};

}  // namespace

std::string Version::ToString() const { return fmt::format("{}:{}", hlc, node); }

std::optional<Version> Version::Parse(std::string_view text) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  Version v;
  if (!ParseDecimal(text.substr(0, colon), &v.hlc) ||
      !ParseDecimal(text.substr(colon + 1), &v.node)) {
    return std::nullopt;
  }
  return v;
}

std::string_view ConsistencyName(Consistency level) {
  for (const auto& [l, name] : kLevelNames) {
    if (l == level) return name;
  }
  return "UNKNOWN";
}

std::optional<Consistency> ParseConsistency(std::string_view name) {
  std::string upper;
  upper.reserve(name.size());
  for (char c : name) {
    upper.push_back(c == '-' ? '_'
                             : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  for (const auto& [level, n] : kLevelNames) {
    if (n == upper) return level;
  }
  return std::nullopt;
}

}  // namespace cairn
