#include "net/frame.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/endian.h"

namespace cairn::net {
using base::GetBig32;
using base::GetBig64;

void AppendFrameHeader(std::string* out, uint64_t request_id, size_t payload_size) {
  base::PutBig32(out, static_cast<uint32_t>(payload_size));
  base::PutBig64(out, request_id);
}

boost::asio::mutable_buffer FrameDecoder::Prepare() {
  if (begin_ == end_) begin_ = end_ = 0;
  size_t want = kReadChunk;
  const size_t buffered = end_ - begin_;
  if (buffered >= 4) {
    // Room for more of the frame being received, growing with what has arrived (so a peer
    // that announces a large frame and sends nothing more makes us allocate little), up to
    // the whole frame. A frame over the limit fails in Next().
    const size_t len = GetBig32(buf_.data() + begin_);
    if (len <= max_payload_) {
      const size_t missing = kFrameHeaderBytes + len - std::min(buffered, kFrameHeaderBytes + len);
      want = std::max(want, std::min(missing, buffered));
    }
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
