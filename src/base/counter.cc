#include "base/counter.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace cairn::base {

std::optional<int64_t> ParseInt64(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  size_t i = 0;
  bool negative = false;
  if (s[0] == '-') {
    negative = true;
    i = 1;
    if (s.size() == 1) return std::nullopt;
  }
  if (s.size() == 1 && s[0] == '0') return 0;
  if (s[i] == '0') return std::nullopt;  // leading zeros, "-0"
  uint64_t v = 0;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  if (negative) {
    if (v > uint64_t{1} << 63) return std::nullopt;
    if (v == uint64_t{1} << 63) return INT64_MIN;
    return -static_cast<int64_t>(v);
  }
  if (v > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
  return static_cast<int64_t>(v);
}

std::optional<long double> ParseLongDouble(std::string_view text) {
  if (text.empty() || text.size() >= kMaxLongDoubleChars ||
      std::isspace(static_cast<unsigned char>(text[0]))) {
    return std::nullopt;
  }
  const std::string s(text);  // strtold needs the terminating NUL
  char* end = nullptr;
  errno = 0;
  const long double v = std::strtold(s.c_str(), &end);
  if (end != s.c_str() + s.size() || std::isnan(v)) return std::nullopt;
  if (errno == ERANGE && (std::isinf(v) || v == 0)) return std::nullopt;
  return v;
}

std::string FormatLongDouble(long double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (std::isnan(v)) return "nan";
  // snprintf returns the length it would have written: the text is taken only up to what the
  // buffer holds. (A 64-byte buffer and that would-be length once copied stack memory into the
  // reply, and INCRBYFLOAT stored it as the key's value.)
  std::string s(kMaxLongDoubleChars, '\0');
  const int n = std::snprintf(s.data(), s.size(), "%.17Lf", v);
  if (n < 0) return "nan";
  s.resize(std::min(static_cast<size_t>(n), s.size() - 1));
  if (s.find('.') != std::string::npos) {
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return s;
}

std::string_view CounterRefusalText(CounterRefusal refusal) {
  switch (refusal) {
    case CounterRefusal::kNone:
      return "";
    case CounterRefusal::kNotInteger:
      return "ERR value is not an integer or out of range";
    case CounterRefusal::kNotFloat:
      return "ERR value is not a valid float";
    case CounterRefusal::kOverflow:
      return "ERR increment or decrement would overflow";
    case CounterRefusal::kNanOrInf:
      return "ERR increment would produce NaN or Infinity";
  }
  return "ERR";
}

CounterRefusal AddToCounter(std::optional<std::string_view> current, const CounterDelta& delta,
                            std::string* out) {
  if (!delta.is_float) {
    int64_t old = 0;
    if (current) {
      auto v = ParseInt64(*current);
      if (!v) return CounterRefusal::kNotInteger;
      old = *v;
    }
    const int64_t by = delta.by;
    if ((by < 0 && old < INT64_MIN - by) || (by > 0 && old > INT64_MAX - by)) {
      return CounterRefusal::kOverflow;
    }
    *out = std::to_string(old + by);
    return CounterRefusal::kNone;
  }
  long double old = 0;
  if (current) {
    auto v = ParseLongDouble(*current);
    if (!v) return CounterRefusal::kNotFloat;
    old = *v;
  }
  const long double sum = old + delta.by_float;
  if (std::isnan(sum) || std::isinf(sum)) return CounterRefusal::kNanOrInf;
  *out = FormatLongDouble(sum);
  return CounterRefusal::kNone;
}

CounterRefusal SumCounters(const std::vector<std::string_view>& values, std::string* out) {
  __int128 sum = 0;
  bool integers = true;
  for (std::string_view v : values) {
    auto i = ParseInt64(v);
    if (!i) {
      integers = false;
      break;
    }
    sum += *i;
  }
  if (integers) {
    if (sum > INT64_MAX || sum < INT64_MIN) return CounterRefusal::kOverflow;
    *out = std::to_string(static_cast<int64_t>(sum));
    return CounterRefusal::kNone;
  }
  long double total = 0;
  for (std::string_view v : values) {
    auto d = ParseLongDouble(v);
    if (!d) return CounterRefusal::kNotFloat;
    total += *d;
  }
  if (std::isnan(total) || std::isinf(total)) return CounterRefusal::kNanOrInf;
  *out = FormatLongDouble(total);
  return CounterRefusal::kNone;
}

}  // namespace cairn::base
