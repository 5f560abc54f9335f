// Fuzz target for the bytes a RESP (Redis protocol) server reads from an untrusted client: the
// request parser (multibulk and inline), under small limits so that the limit paths are reached,
// then the glob matcher SCAN and KEYS run on client patterns. Built as a libFuzzer binary with
// clang (tests/fuzz/run_fuzz.sh ... resp_request) and, with any compiler, as a replay driver over
// the corpus plus random inputs (replay_main.cc).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "frontdoor/resp/glob.h"
#include "frontdoor/resp/reply_writer.h"
#include "frontdoor/resp/resp_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks how the stream is split into reads, so that every boundary position of
  // the parser's buffer handling gets exercised.
  const size_t chunk = 1 + data[0] % 64;
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  cairn::frontdoor::resp::ParserLimits limits;
  limits.max_inline_bytes = 256;
  limits.max_multibulk_count = 64;
  limits.max_bulk_bytes = 512;
  limits.max_command_bytes = 2048;
  cairn::frontdoor::resp::RequestParser parser(limits);
  std::vector<std::string> argv;
  size_t at = 0;
  size_t consumed_commands = 0;
  while (true) {
    const auto outcome = parser.Next(&argv);
    if (outcome == cairn::frontdoor::resp::RequestParser::Outcome::kError) {
      // Sticky: a broken stream never yields another command.
      if (parser.Next(&argv) != cairn::frontdoor::resp::RequestParser::Outcome::kError) {
        __builtin_trap();
      }
      break;
    }
    if (outcome == cairn::frontdoor::resp::RequestParser::Outcome::kCommand) {
      if (argv.empty() || argv.size() > 64 * 1024) __builtin_trap();
      size_t total = 0;
      for (const auto& a : argv) total += a.size();
      if (total > at) __builtin_trap();  // cannot hold more than it was given
      if (argv.size() >= 2) {
        (void)cairn::frontdoor::resp::GlobMatch(argv[1].substr(0, 64), argv[0].substr(0, 64));
      }
      std::string reply;
      cairn::frontdoor::resp::ReplyWriter w(&reply, 2 + static_cast<int>(consumed_commands % 2));
      w.Array(argv.size());
      for (const auto& a : argv) w.Bulk(a);
      ++consumed_commands;
      continue;
    }
    if (parser.buffered() > limits.max_command_bytes + 2 * limits.max_inline_bytes + 4096) {
      __builtin_trap();  // buffering beyond the limits
    }
    if (at == stream.size()) break;
    const size_t n = std::min(chunk, stream.size() - at);
    std::memcpy(parser.Prepare(n), stream.data() + at, n);
    parser.Commit(n);
    at += n;
  }
  return 0;
}
