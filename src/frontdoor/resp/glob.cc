#include "frontdoor/resp/glob.h"

#include <cctype>
#include <utility>

namespace cairn::frontdoor::resp {

namespace {

char Fold(char c, bool nocase) {
  return nocase ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : c;
}

bool Match(std::string_view p, std::string_view s, bool nocase, int depth) {
  if (depth > 1000) return false;  // pathological patterns
  while (!p.empty()) {
    switch (p[0]) {
      case '*': {
        while (p.size() > 1 && p[1] == '*') p.remove_prefix(1);
        if (p.size() == 1) return true;
        for (size_t i = 0; i <= s.size(); ++i) {
          if (Match(p.substr(1), s.substr(i), nocase, depth + 1)) return true;
        }
        return false;
      }
      case '?':
        if (s.empty()) return false;
        s.remove_prefix(1);
        break;
      case '[': {
        p.remove_prefix(1);
        const bool negate = !p.empty() && p[0] == '^';
        if (negate) p.remove_prefix(1);
        bool matched = false;
        while (!p.empty() && p[0] != ']') {
          if (p[0] == '\\' && p.size() >= 2) {
            p.remove_prefix(1);
            if (!s.empty() && Fold(p[0], nocase) == Fold(s[0], nocase)) matched = true;
          } else if (p.size() >= 3 && p[1] == '-') {
            char lo = Fold(p[0], nocase), hi = Fold(p[2], nocase);
            if (lo > hi) std::swap(lo, hi);
            p.remove_prefix(2);
            if (!s.empty() && Fold(s[0], nocase) >= lo && Fold(s[0], nocase) <= hi) matched = true;
          } else if (!s.empty() && Fold(p[0], nocase) == Fold(s[0], nocase)) {
            matched = true;
          }
          p.remove_prefix(1);
        }
        if (negate) matched = !matched;
        if (!matched || s.empty()) return false;
        s.remove_prefix(1);
        if (p.empty()) return s.empty();  // unterminated class: Redis treats the end as ']'
        break;
      }
      case '\\':
        if (p.size() >= 2) p.remove_prefix(1);
        [[fallthrough]];
      default:
        if (s.empty() || Fold(p[0], nocase) != Fold(s[0], nocase)) return false;
        s.remove_prefix(1);
        break;
    }
    p.remove_prefix(1);
  }
  return s.empty();
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text, bool nocase) {
  return Match(pattern, text, nocase, 0);
}

}  // namespace cairn::frontdoor::resp
