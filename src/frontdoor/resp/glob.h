// Redis's glob patterns (stringmatchlen), for SCAN MATCH, KEYS and CONFIG GET.
#pragma once

#include <string_view>

namespace cairn::frontdoor::resp {

// Whether `text` matches `pattern`: * ? [abc] [^a-z] and \ escapes.
bool GlobMatch(std::string_view pattern, std::string_view text, bool nocase = false);

}  // namespace cairn::frontdoor::resp
