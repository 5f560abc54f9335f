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

std::optional<ReplicationMap> ParseReplication(std::string_view text) {
  auto valid_dc = [](std::string_view dc) {
    if (dc.empty() || dc.size() > 48 || !std::isalpha(static_cast<unsigned char>(dc[0]))) {
      return false;
    }
    for (char c : dc) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
    }
    return true;
  };
  ReplicationMap out;
  if (text.find('=') == std::string_view::npos) {
    uint32_t n = 0;
    if (!ParseDecimal(text, &n) || n == 0 || n > kMaxReplicationFactor) return std::nullopt;
    out[std::string(kEveryDc)] = n;
    return out;
  }
  uint32_t total = 0;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (comma != std::string_view::npos && text.empty()) return std::nullopt;  // "dc1=3,"
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string_view dc = item.substr(0, eq);
    uint32_t n = 0;
    if (!valid_dc(dc) || !ParseDecimal(item.substr(eq + 1), &n) || n > kMaxReplicationFactor ||
        out.contains(dc)) {
      return std::nullopt;
    }
    out[std::string(dc)] = n;
    total += n;
  }
  if (total == 0) return std::nullopt;
  return out;
}

std::string ReplicationText(const ReplicationMap& replication) {
  if (replication.size() == 1 && replication.begin()->first == kEveryDc) {
    return std::to_string(replication.begin()->second);
  }
  std::string out;
  for (const auto& [dc, rf] : replication) {
    if (!out.empty()) out += ",";
    out += fmt::format("{}={}", dc, rf);
  }
  return out;
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
