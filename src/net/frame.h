// Framing shared by the native client protocol and (later) internode messaging:
//   u32 big-endian payload length | u64 big-endian request id | payload
// A connection starts with a 4-byte preamble from the connecting side that names the protocol
// and its version. Messaging knows nothing of what a payload means.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>

#include "cairn/status.h"

namespace cairn::net {

inline constexpr size_t kFrameHeaderBytes = 12;
inline constexpr size_t kPreambleBytes = 4;
// The native client protocol, version 1.
inline constexpr std::string_view kNativePreamble = "CRN1";
// Internode messaging (its messages carry their own protocol version).
inline constexpr std::string_view kInternodePreamble = "CRNI";

struct Frame {
  uint64_t request_id = 0;
  std::string_view payload;  // valid until the decoder's next Prepare()
};

// Appends a frame header for a payload of `payload_size` bytes; the caller appends the payload.
void AppendFrameHeader(std::string* out, uint64_t request_id, size_t payload_size);

// Appends a whole frame whose payload is written by `serialize(char* dest)`, which must write
// exactly `payload_size` bytes (e.g. protobuf's SerializeWithCachedSizesToArray).
template <typename Serialize>
void AppendFrame(std::string* out, uint64_t request_id, size_t payload_size,
                 Serialize&& serialize) {
  AppendFrameHeader(out, request_id, payload_size);
  const size_t at = out->size();
  out->resize(at + payload_size);
  serialize(out->data() + at);
}

inline void AppendFrame(std::string* out, uint64_t request_id, std::string_view payload) {
  AppendFrame(out, request_id, payload.size(),
              [&](char* dest) { std::memcpy(dest, payload.data(), payload.size()); });
}

// Splits a byte stream into frames, incrementally. Use: read into Prepare(), Commit() what was
// read, then call Next() until it returns nullopt.
// Not thread-safe; one per connection.
class FrameDecoder {
 public:
  explicit FrameDecoder(size_t max_payload) : max_payload_(max_payload) {}

  // Space to read into: at least 64 KiB; while a large frame arrives, up to as much again as
  // has arrived of it, so a large frame takes a logarithmic number of reads and a peer must
  // send bytes to make the buffer grow.
  boost::asio::mutable_buffer Prepare();
  void Commit(size_t bytes) { end_ += bytes; }

  // The next complete frame; nullopt when more bytes are needed. TOO_LARGE when the next frame
  // announces a payload over the limit: the stream cannot be resynchronised, close it.
  Result<std::optional<Frame>> Next();

  // Bytes received but not yet returned as frames (non-zero at EOF means a truncated frame).
  size_t buffered() const { return end_ - begin_; }

  size_t max_payload() const { return max_payload_; }

 private:
  static constexpr size_t kReadChunk = 64 * 1024;

  const size_t max_payload_;
  std::vector<char> buf_;
  size_t begin_ = 0;  // first unconsumed byte
  size_t end_ = 0;    // one past the last received byte
};

}  // namespace cairn::net
