#include "net/frame.h"

#include <algorithm>

#include <fmt/format.h>

namespace cairn::net {
namespace {

uint32_t GetBig32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = v << 8 | static_cast<uint8_t>(p[i]);
  return v;
}
uint64_t GetBig64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | static_cast<uint8_t>(p[i]);
  return v;
}

}  // namespace

void AppendFrameHeader(std::string* out, uint64_t request_id, size_t payload_size) {
  char header[kFrameHeaderBytes];
  const auto len = static_cast<uint32_t>(payload_size);
  for (int i = 0; i < 4; ++i) header[i] = static_cast<char>(len >> (24 - 8 * i));
  for (int i = 0; i < 8; ++i) header[4 + i] = static_cast<char>(request_id >> (56 - 8 * i));
  out->append(header, kFrameHeaderBytes);
}

boost::asio::mutable_buffer FrameDecoder::Prepare() {
  if (begin_ == end_) begin_ = end_ = 0;
  size_t want = kReadChunk;
  if (end_ - begin_ >= 4) {
    // Room for the whole frame being received, up to the limit (a larger one fails in Next()).
    const size_t len = GetBig32(buf_.data() + begin_);
    if (len <= max_payload_) want = std::max(want, kFrameHeaderBytes + len - (end_ - begin_));
  }
  if (buf_.size() - end_ < want) {
    if (begin_ > 0) {
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (buf_.size() - end_ < want) buf_.resize(end_ + want);
  }
  return boost::asio::buffer(buf_.data() + end_, buf_.size() - end_);
}

Result<std::optional<Frame>> FrameDecoder::Next() {
  const size_t available = end_ - begin_;
  if (available < 4) return std::optional<Frame>();
  const size_t len = GetBig32(buf_.data() + begin_);
  if (len > max_payload_) {
    return Status::TooLarge(
        fmt::format("frame of {} bytes is over the limit of {} bytes", len, max_payload_));
  }
  if (available < kFrameHeaderBytes + len) return std::optional<Frame>();
  Frame frame;
  frame.request_id = GetBig64(buf_.data() + begin_ + 4);
  frame.payload = std::string_view(buf_.data() + begin_ + kFrameHeaderBytes, len);
  begin_ += kFrameHeaderBytes + len;
  return std::optional<Frame>(frame);
}

}  // namespace cairn::net
