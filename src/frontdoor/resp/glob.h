// Redis's glob patterns (stringmatchlen), for SCAN MATCH, KEYS and CONFIG GET.
#pragma once

#include <string_view>

namespace cairn::frontdoor::resp {

// A glob match that can be run in steps of bounded cost, so that a reactor can match a page of
// keys against a costly pattern without stalling: Start() it on a text, then Run() it until it
// answers. A step compares one token of the pattern with one character of the text (a class
// costs its length). The pattern and the text must outlive the match.
class GlobMatcher {
 public:
  enum class Outcome { kMatch, kNoMatch, kUnfinished };

  explicit GlobMatcher(std::string_view pattern, bool nocase = false);
  void Start(std::string_view text);
  // Goes on with the match for at most about `steps` steps.
  Outcome Run(size_t steps);

 private:
  std::string_view pattern_;
  std::string_view text_;
  bool nocase_;
  bool never_matches_;  // more than 1000 inner stars, as Redis
  size_t p_ = 0;        // where the match is in the pattern ...
  size_t s_ = 0;        // ... and in the text
  size_t star_p_ = 0;   // the pattern after the last star (npos: no star yet) ...
  size_t star_s_ = 0;   // ... and where in the text it was last tried
};

// Whether `text` matches `pattern`: * ? [abc] [^a-z] and \ escapes, with Redis 7.0's answers in
// every corner (an unterminated class ends at the pattern's end, a trailing backslash is a
// literal, escapes inside a class ignore `nocase`, a pattern with more than 1000 stars that are
// followed by something never matches), in one go.
// Cost: O(pattern size x text size) steps at worst, never exponential. A star only ever
// re-tries from the most recent star (every other token matches exactly one character, so an
// earlier star gains nothing by absorbing more): the backtracking recursion this replaces spent
// 1.4 s on 14 stars against a 30-byte key and grew without bound (as Redis did before
// CVE-2022-36021). Still, "a*" followed by 8,000 a's and a b against a 16 KiB key of a's takes
// about 0.1 s: code matching many keys uses GlobMatcher and yields between steps.
bool GlobMatch(std::string_view pattern, std::string_view text, bool nocase = false);
}  // namespace cairn::frontdoor::resp
