// Redis's glob patterns (stringmatchlen), for SCAN MATCH, KEYS and CONFIG GET.
#pragma once

#include <string_view>

namespace cairn::frontdoor::resp {

// Whether `text` matches `pattern`: * ? [abc] [^a-z] and \ escapes, with Redis 7.0's answers in
// every corner (an unterminated class ends at the pattern's end, a trailing backslash is a
// literal, escapes inside a class ignore `nocase`, a pattern with more than 1000 stars that are
// followed by something never matches).
// Cost: O(pattern size x text size) steps at worst, never exponential. A star only ever
// re-tries from the most recent star (every other token matches exactly one character, so an
// earlier star gains nothing by absorbing more): the backtracking recursion this replaces spent
// 1.4 s on 14 stars against a 30-byte key and grew without bound (as Redis did before
// CVE-2022-36021).
bool GlobMatch(std::string_view pattern, std::string_view text, bool nocase = false);

}  // namespace cairn::frontdoor::resp
