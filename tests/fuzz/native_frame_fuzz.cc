// Fuzz target for the bytes a native-protocol server reads from an untrusted client: the frame
// decoder, then the protobuf request parser. Built as a libFuzzer binary with clang
// (tests/fuzz/run_fuzz.sh) and, with any compiler, as a replay driver over the corpus plus
// random inputs (replay_main.cc).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "net/frame.h"
#include "proto/native.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks how the stream is split into reads, so that every boundary position
  // of the decoder's buffer handling gets exercised.
  const size_t chunk = 1 + data[0] % 64;
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  cairn::net::FrameDecoder decoder(1 << 16);
  size_t at = 0;
  while (true) {
    auto frame = decoder.Next();
    if (!frame.ok()) return 0;  // oversized: the server closes the connection
    if (*frame) {
      if ((*frame)->payload.size() > decoder.max_payload()) __builtin_trap();
      cairn::wire::Request request;
      if (request.ParseFromArray((*frame)->payload.data(),
                                 static_cast<int>((*frame)->payload.size()))) {
        // Whatever parsed must serialize again (no state the encoder cannot handle).
        std::string again;
        if (!request.SerializeToString(&again)) __builtin_trap();
      }
      continue;
    }
    if (at == stream.size()) break;
    auto space = decoder.Prepare();
    const size_t n = std::min({chunk, space.size(), stream.size() - at});
    std::memcpy(space.data(), stream.data() + at, n);
    decoder.Commit(n);
    at += n;
  }
  return 0;
}
