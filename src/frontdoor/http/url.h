// The parts of an HTTP request target the REST front door reads: the path and the query, with
// percent-escapes decoded. These parse untrusted bytes: every function is total (no input
// crashes or loops), and rejects what it cannot decode with INVALID_ARGUMENT and a message that
// says what was wrong. Free of Beast so that it can be unit-tested and fuzzed on its own.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cairn/status.h"

namespace cairn::frontdoor::http {

// Decodes %XX escapes (hex digits in either case). With `plus_is_space` (query components, as in
// HTML forms) '+' decodes to a space; in paths it stays '+'. Decoded bytes may be anything,
// NUL included: keys are arbitrary bytes. Fails on a '%' not followed by two hex digits and on
// raw control characters, spaces and bytes >= 0x80 (which a client must escape).
Result<std::string> PercentDecode(std::string_view text, bool plus_is_space);

// Escapes every byte except the unreserved ones (A-Z a-z 0-9 - . _ ~), so the result can be put in
// a path segment or a query value. PercentDecode(PercentEncode(x)) == x for every x.
std::string PercentEncode(std::string_view bytes);

// The query of a request target, decoded, in order. Names are unique (a repeated name is an
// error: which one would apply is ambiguous).
class Query {
 public:
  // Parses "a=1&b=&c": a name without '=' has an empty value; empty pieces ("a=1&&b=2") are
  // skipped.
  static Result<Query> Parse(std::string_view query);

  // The value of `name`, if present.
  std::optional<std::string_view> Get(std::string_view name) const;
  // INVALID_ARGUMENT naming the first parameter not in `allowed` (catches typos such as "?tll=").
  Status OnlyThese(std::initializer_list<std::string_view> allowed) const;
  const std::vector<std::pair<std::string, std::string>>& params() const { return params_; }

 private:
  std::vector<std::pair<std::string, std::string>> params_;
};

// An origin-form request target ("/path?query"), split. `path` stays percent-encoded, so that
// callers can split it on '/' before decoding (an escaped "%2F" is part of a segment).
struct Target {
  std::string_view path;
  Query query;
};
// INVALID_ARGUMENT unless `target` starts with '/' and its query decodes. A fragment ('#') is
// not allowed in a request target.
Result<Target> ParseTarget(std::string_view target);

// Parses a non-negative decimal integer of at most `max` (no sign, no spaces, no leading '+').
std::optional<uint64_t> ParseUint(std::string_view text, uint64_t max);

}  // namespace cairn::frontdoor::http
