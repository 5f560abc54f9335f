// Bytes as text: for answers that must carry arbitrary bytes in JSON (base64 unless the bytes
// are UTF-8) and for opaque tokens in URLs (hex). Pure functions; Unhex parses untrusted input.
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <string_view>

namespace cairn::base {

// Whether `s` is well-formed UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF
// (what a strict JSON encoder accepts).
bool IsUtf8(std::string_view s);

// Standard base64 (RFC 4648, with '=' padding).
std::string Base64(std::string_view bytes);

// Bytes for a terminal line or a metric label: printable ASCII as is, a backslash doubled, the
// rest as \xNN.
std::string Printable(std::string_view bytes);

// Lower-case hex, two digits a byte; Unhex takes either case and returns nullopt for an odd
// length or a non-hex digit.
std::string Hex(std::string_view bytes);
std::optional<std::string> Unhex(std::string_view hex);

// The value of one hex digit of either case, or -1 (inline: the parsers' fuzz builds compile
// without this library).
inline int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// What an escaped exception says (its what()), or "unknown" for one that is not a std::exception:
// for the logs of handlers that must answer whatever happened.
std::string ExceptionText(std::exception_ptr e);

}  // namespace cairn::base
