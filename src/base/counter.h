// Numbers stored as text, as Redis keeps counters: the parsing and arithmetic of INCRBY and
// INCRBYFLOAT, shared by the RESP door and the coordinator's increments (split counters
// included, docs/hot-keys.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cairn::base {

// Redis's string2ll: an optional '-', then digits without leading zeros, fitting an int64.
std::optional<int64_t> ParseInt64(std::string_view text);

// Redis's string2ld for INCRBYFLOAT: the whole text is a number, no leading space, at most 5 KiB;
// NaN, an overflow (infinite) or an underflow to zero is refused, a denormal result is kept.
std::optional<long double> ParseLongDouble(std::string_view text);

// Formats a number as Redis does for INCRBYFLOAT replies ("%.17Lf", then no trailing zeros after
// the point): the full decimal expansion, never an exponent, so 1e308 is 309 digits and the
// largest long double about 4,950 characters. Infinities are "inf" / "-inf".
std::string FormatLongDouble(long double v);

// The longest text FormatLongDouble returns, with room to spare: Redis's MAX_LONG_DOUBLE_CHARS.
inline constexpr size_t kMaxLongDoubleChars = 5 * 1024;

// An increment: INCRBY's integer or INCRBYFLOAT's decimal.
struct CounterDelta {
  bool is_float = false;
  int64_t by = 0;
  long double by_float = 0;
};

// Why an increment was refused (nothing is written then).
enum class CounterRefusal {
  kNone,
  kNotInteger,  // the value is not an integer (or out of range)
  kNotFloat,    // the value is not a valid float
  kOverflow,    // the integer sum does not fit in 64 bits
  kNanOrInf,    // the decimal sum is not finite
};

// Redis's error text for a refusal ("ERR value is not an integer or out of range", ...).
std::string_view CounterRefusalText(CounterRefusal refusal);

// `current` (nullopt: absent, counted as 0) plus `delta`, as stored text in `*out`; kNone when it
// was done.
CounterRefusal AddToCounter(std::optional<std::string_view> current, const CounterDelta& delta,
                            std::string* out);

// The sum of counter values (each as AddToCounter leaves them): an integer while every one is an
// integer, else a decimal. kOverflow / kNanOrInf when the sum does not fit, kNotFloat when one
// of them is not a number.
CounterRefusal SumCounters(const std::vector<std::string_view>& values, std::string* out);

}  // namespace cairn::base
