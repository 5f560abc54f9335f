#include "frontdoor/resp/glob.h"

#include <cctype>
#include <cstdint>
#include <utility>

namespace cairn::frontdoor::resp {

namespace {

// Redis stops matching at a star nested more than this deep in its recursion ("protection
// against abusive patterns"); the same patterns fail here, so replies stay the same.
constexpr size_t kMaxStars = 1000;

char Fold(char c, bool nocase) {
  return nocase ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : c;
}

// Matches the one-character token at p[*at] (a literal, an escape, ? or a class) against c and
// moves *at past it. The caller has checked that p[*at] is not '*'.
bool MatchToken(std::string_view p, size_t* at, char c, bool nocase) {
  size_t i = *at;
  switch (p[i]) {
    case '?':
      *at = i + 1;
      return true;
    case '[': {
      ++i;
      const bool negate = i < p.size() && p[i] == '^';
      if (negate) ++i;
      bool matched = false;
      while (i < p.size() && p[i] != ']') {
        if (p[i] == '\\' && i + 1 < p.size()) {
          ++i;
          if (p[i] == c) matched = true;  // Redis compares escapes exactly, even with nocase
        } else if (i + 2 < p.size() && p[i + 1] == '-') {
          int lo = p[i], hi = p[i + 2], x = c;  // as Redis: plain chars, swapped, then folded
          if (lo > hi) std::swap(lo, hi);
          if (nocase) {
            lo = Fold(static_cast<char>(lo), true);
            hi = Fold(static_cast<char>(hi), true);
            x = Fold(c, true);
          }
          if (x >= lo && x <= hi) matched = true;
          i += 2;
        } else if (Fold(p[i], nocase) == Fold(c, nocase)) {
          matched = true;
        }
        ++i;
      }
      // An unterminated class ends at the pattern's end, as in Redis.
      *at = i < p.size() ? i + 1 : i;
      return matched != negate;
    }
    case '\\':
      if (i + 1 < p.size()) ++i;  // a trailing backslash is a literal backslash
      [[fallthrough]];
    default:
      *at = i + 1;
      return Fold(p[i], nocase) == Fold(c, nocase);
  }
}

// Stars followed by something else; runs of stars count once.
size_t InnerStars(std::string_view p) {
  size_t n = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\\') {
      ++i;
    } else if (p[i] == '*') {
      while (i + 1 < p.size() && p[i + 1] == '*') ++i;
      if (i + 1 < p.size()) ++n;
    } else if (p[i] == '[') {
      // Skip the class: a '*' inside it is a literal.
      ++i;
      if (i < p.size() && p[i] == '^') ++i;
      while (i < p.size() && p[i] != ']') {
        if (p[i] == '\\' && i + 1 < p.size())
          ++i;
        else if (i + 2 < p.size() && p[i + 1] == '-')
          i += 2;
        ++i;
      }
    }
  }
  return n;
}

}  // namespace

GlobMatcher::GlobMatcher(std::string_view pattern, bool nocase)
    : pattern_(pattern), nocase_(nocase), never_matches_(InnerStars(pattern) > kMaxStars) {}

void GlobMatcher::Start(std::string_view text) {
  text_ = text;
  p_ = 0;
  s_ = 0;
  star_p_ = std::string_view::npos;
  star_s_ = 0;
}

GlobMatcher::Outcome GlobMatcher::Run(size_t steps) {
  if (never_matches_) return Outcome::kNoMatch;
  constexpr size_t kNone = std::string_view::npos;
  const std::string_view pattern = pattern_;
  size_t spent = 0;
  while (s_ < text_.size()) {
    if (spent >= steps) return Outcome::kUnfinished;
    if (p_ < pattern.size() && pattern[p_] == '*') {
      const size_t from = p_;
      while (p_ < pattern.size() && pattern[p_] == '*') ++p_;
      spent += p_ - from;
      if (p_ == pattern.size()) return Outcome::kMatch;
      star_p_ = p_;
      star_s_ = s_;
      continue;
    }
    size_t next = p_;
    const bool matched = p_ < pattern.size() && MatchToken(pattern, &next, text_[s_], nocase_);
    spent += 1 + (next - p_);
    if (matched) {
      p_ = next;
      ++s_;
      continue;
    }
    if (star_p_ == kNone) return Outcome::kNoMatch;
    p_ = star_p_;  // the last star absorbs one more character
    s_ = ++star_s_;
  }
  while (p_ < pattern.size() && pattern[p_] == '*') ++p_;
  return p_ == pattern.size() ? Outcome::kMatch : Outcome::kNoMatch;
}

bool GlobMatch(std::string_view pattern, std::string_view text, bool nocase) {
  GlobMatcher matcher(pattern, nocase);
  matcher.Start(text);
  return matcher.Run(SIZE_MAX) == GlobMatcher::Outcome::kMatch;
}
}  // namespace cairn::frontdoor::resp
