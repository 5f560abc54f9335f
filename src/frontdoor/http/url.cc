#include "frontdoor/http/url.h"

#include <charconv>

#include <fmt/format.h>

#include "base/text.h"

namespace cairn::frontdoor::http {
namespace {

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

}  // namespace

Result<std::string> PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '%') {
      const int hi = i + 1 < text.size() ? base::HexDigit(text[i + 1]) : -1;
      const int lo = i + 2 < text.size() ? base::HexDigit(text[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return Status::InvalidArgument(fmt::format(
            "bad percent-escape at offset {}: '%' must be followed by two hex digits", i));
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c <= 0x20 || c >= 0x7f) {
      return Status::InvalidArgument(fmt::format(
          "byte 0x{:02x} at offset {} must be percent-encoded in a URL", static_cast<int>(c), i));
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::string PercentEncode(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(bytes.size());
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Result<Query> Query::Parse(std::string_view query) {
  Query q;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view piece = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (piece.empty()) continue;
    const size_t eq = piece.find('=');
    auto name = PercentDecode(piece.substr(0, eq), true);
    if (!name.ok()) {
      return Status::InvalidArgument("bad query parameter name: " + name.status().message());
    }
    if (name->empty()) return Status::InvalidArgument("a query parameter has no name");
    Result<std::string> value = std::string();
    if (eq != std::string_view::npos) value = PercentDecode(piece.substr(eq + 1), true);
    if (!value.ok()) {
      return Status::InvalidArgument(
          fmt::format("bad value of query parameter '{}': {}", *name, value.status().message()));
    }
    if (q.Get(*name)) {
      return Status::InvalidArgument(
          fmt::format("query parameter '{}' is given more than once", *name));
    }
    q.params_.emplace_back(std::move(*name), std::move(*value));
  }
  return q;
}

std::optional<std::string_view> Query::Get(std::string_view name) const {
  for (const auto& [k, v] : params_) {
    if (k == name) return std::string_view(v);
  }
  return std::nullopt;
}

Status Query::OnlyThese(std::initializer_list<std::string_view> allowed) const {
  for (const auto& [k, v] : params_) {
    bool known = false;
    for (std::string_view a : allowed) known = known || a == k;
    if (!known) {
      std::string list;
      for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return Status::InvalidArgument(
          fmt::format("unknown query parameter '{}' (this endpoint takes: {})", k,
                      list.empty() ? "none" : list));
    }
  }
  return Status::Ok();
}

Result<Target> ParseTarget(std::string_view target) {
  if (target.empty() || target[0] != '/') {
    return Status::InvalidArgument("the request target must be a path starting with '/'");
  }
  if (target.find('#') != std::string_view::npos) {
    return Status::InvalidArgument("a request target cannot hold a fragment ('#')");
  }
  Target t;
  const size_t q = target.find('?');
  t.path = target.substr(0, q);
  if (q != std::string_view::npos) {
    auto query = Query::Parse(target.substr(q + 1));
    if (!query.ok()) return query.status();
    t.query = std::move(*query);
  }
  return t;
}

std::optional<uint64_t> ParseUint(std::string_view text, uint64_t max) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v > max) return std::nullopt;
  return v;
}

}  // namespace cairn::frontdoor::http
