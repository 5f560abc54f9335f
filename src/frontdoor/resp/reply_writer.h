// Encodes replies in RESP2 or RESP3. RESP3-only types (null, map, set, double, boolean, verbatim
// string) fall back to their RESP2 forms as Redis does, so command code writes one reply for both.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cairn::frontdoor::resp {

class ReplyWriter {
 public:
  ReplyWriter(std::string* out, int protocol) : out_(out), protocol_(protocol) {}

  int protocol() const { return protocol_; }
  std::string* buffer() const { return out_; }

  void Simple(std::string_view s);  // +OK
  // `message` starts with its code ("ERR ...", "WRONGTYPE ..."); newlines are replaced by spaces.
  void Error(std::string_view message);
  void Integer(int64_t v);
  void Bulk(std::string_view s);
  void Null();       // RESP2 $-1, RESP3 _
  void NullArray();  // RESP2 *-1, RESP3 _
  void Array(size_t n);
  void Map(size_t pairs);  // RESP2: an array of 2 * pairs
  void Set(size_t n);      // RESP2: an array
  void Double(double v);   // RESP2: a bulk string
  void Bool(bool v);       // RESP2: :1 / :0
  // Text for humans (INFO, CLIENT LIST): RESP3 "=" with format "txt", RESP2 a bulk string.
  void Verbatim(std::string_view text);
  void Ok() { Simple("OK"); }

 private:
  void Header(char type, int64_t n);
  std::string* const out_;
  const int protocol_;
};

// An argument as Redis writes it into an error text ("%s" of a C string): up to its first NUL byte.
inline std::string_view CString(std::string_view s) { return s.substr(0, s.find('\0')); }

// Formats a number as Redis does for INCRBYFLOAT replies ("%.17Lf", then no trailing zeros after
// the point): the full decimal expansion, never an exponent, so 1e308 is 309 digits and the
// largest long double about 4,950 characters. Infinities are "inf" / "-inf".
std::string FormatDouble(long double v);

// The longest text FormatDouble returns, with room to spare: Redis's MAX_LONG_DOUBLE_CHARS.
inline constexpr size_t kMaxLongDoubleChars = 5 * 1024;

}  // namespace cairn::frontdoor::resp
