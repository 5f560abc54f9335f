// Fuzz target for the bytes the HTTP front door decodes from an untrusted request target: the
// target splitter, the query parser and percent-decoding. Built as a libFuzzer binary with clang
// (run_fuzz.sh http_url) and, with any compiler, as a replay driver (replay_main.cc).
#include <cstddef>
#include <cstdint>
#include <string>

#include "frontdoor/http/url.h"

using namespace cairn::frontdoor::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto target = ParseTarget(text);
  if (target.ok()) {
    // The path is a prefix of the input and starts with '/'; every parsed name is non-empty and
    // unique.
    if (target->path.empty() || target->path[0] != '/' || !text.starts_with(target->path)) {
      __builtin_trap();
    }
    const auto& params = target->query.params();
    for (size_t i = 0; i < params.size(); ++i) {
      if (params[i].first.empty()) __builtin_trap();
      if (target->query.Get(params[i].first) != params[i].second) __builtin_trap();
    }
  }
  for (bool plus : {false, true}) {
    auto decoded = PercentDecode(text, plus);
    // Decoding never grows the input, and encoding then decoding gives the same bytes back.
    if (decoded.ok() && decoded->size() > text.size()) __builtin_trap();
    auto again = PercentDecode(PercentEncode(text), plus);
    if (!again.ok() || *again != text) __builtin_trap();
  }
  (void)ParseUint(text, UINT64_MAX);
  return 0;
}
