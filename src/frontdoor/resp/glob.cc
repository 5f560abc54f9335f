#include "frontdoor/resp/glob.h"

#include <cctype>
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

bool GlobMatch(std::string_view pattern, std::string_view text, bool nocase) {
  if (InnerStars(pattern) > kMaxStars) return false;
  constexpr size_t kNone = std::string_view::npos;
  size_t p = 0, s = 0;
  size_t star_p = kNone, star_s = 0;  // the pattern after the last star, and where it was tried
  while (s < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      while (p < pattern.size() && pattern[p] == '*') ++p;
      if (p == pattern.size()) return true;
      star_p = p;
      star_s = s;
      continue;
    }
    size_t next = p;
    if (p < pattern.size() && MatchToken(pattern, &next, text[s], nocase)) {
      p = next;
      ++s;
      continue;
    }
    if (star_p == kNone) return false;
    p = star_p;  // the last star absorbs one more character
    s = ++star_s;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace cairn::frontdoor::resp
