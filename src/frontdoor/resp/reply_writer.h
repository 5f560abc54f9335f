// Encodes replies in RESP2 or RESP3. RESP3-only types (null, map, set, double, boolean, verbatim
// string) fall back to their RESP2 forms as Redis does, so command code writes one reply for both.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/counter.h"

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
  // An out-of-band push of `n` elements (RESP3 only: callers never push to RESP2 connections).
  void Push(size_t n);

 private:
  void Header(char type, int64_t n);
  std::string* const out_;
  const int protocol_;
};

// An argument as Redis writes it into an error text ("%s" of a C string): up to its first NUL byte.
inline std::string_view CString(std::string_view s) { return s.substr(0, s.find('\0')); }

// Formats a number as Redis does for INCRBYFLOAT replies (base/counter.h).
inline std::string FormatDouble(long double v) { return base::FormatLongDouble(v); }
using base::kMaxLongDoubleChars;

}  // namespace cairn::frontdoor::resp
