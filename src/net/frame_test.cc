#include "net/frame.h"

#include <cstring>
#include <random>

#include <gtest/gtest.h>

namespace cairn::net {
namespace {

// Feeds `bytes` to the decoder in chunks of `chunk` and collects the frames.
std::vector<std::pair<uint64_t, std::string>> Decode(FrameDecoder& d, std::string_view bytes,
                                                     size_t chunk, Status* error = nullptr) {
  std::vector<std::pair<uint64_t, std::string>> frames;
  size_t at = 0;
  while (at < bytes.size()) {
    auto space = d.Prepare();
    const size_t n = std::min({chunk, space.size(), bytes.size() - at});
    std::memcpy(space.data(), bytes.data() + at, n);
    d.Commit(n);
    at += n;
    while (true) {
      auto f = d.Next();
      if (!f.ok()) {
        if (error) *error = f.status();
        return frames;
      }
      if (!*f) break;
      frames.emplace_back((*f)->request_id, std::string((*f)->payload));
    }
  }
  return frames;
}

TEST(FrameTest, HeaderLayoutIsBigEndianLengthThenId) {
  std::string out;
  AppendFrame(&out, 0x0102030405060708ull, "abc");
  ASSERT_EQ(out.size(), kFrameHeaderBytes + 3);
  EXPECT_EQ(out.substr(0, 4), std::string("\0\0\0\3", 4));
  EXPECT_EQ(out.substr(4, 8), "\x01\x02\x03\x04\x05\x06\x07\x08");
  EXPECT_EQ(out.substr(12), "abc");
}

TEST(FrameTest, DecodesFramesSplitAtEveryBoundary) {
  std::string stream;
  for (int i = 1; i <= 50; ++i) AppendFrame(&stream, i, std::string(i * 37, char('a' + i % 26)));
  AppendFrame(&stream, 51, "");  // empty payloads are frames too
  for (size_t chunk : {1, 2, 7, 13, 4096, 1 << 20}) {
    FrameDecoder d(1 << 20);
    auto frames = Decode(d, stream, chunk);
    ASSERT_EQ(frames.size(), 51u) << "chunk " << chunk;
    for (int i = 1; i <= 50; ++i) {
      EXPECT_EQ(frames[i - 1].first, static_cast<uint64_t>(i));
      EXPECT_EQ(frames[i - 1].second.size(), static_cast<size_t>(i * 37));
    }
    EXPECT_EQ(frames[50].second, "");
    EXPECT_EQ(d.buffered(), 0u);
  }
}

TEST(FrameTest, LargeFrameNeedsFewReads) {
  std::string stream;
  AppendFrame(&stream, 9, std::string(3 << 20, 'x'));
  FrameDecoder d(4 << 20);
  int reads = 0;
  size_t at = 0;
  std::optional<Frame> got;
  while (!got) {
    auto space = d.Prepare();
    const size_t n = std::min(space.size(), stream.size() - at);
    std::memcpy(space.data(), stream.data() + at, n);
    d.Commit(n);
    at += n;
    ++reads;
    auto f = d.Next();
    ASSERT_TRUE(f.ok());
    got = *f;
  }
  EXPECT_LE(reads, 8);  // 64 KiB, then doubling
  EXPECT_EQ(got->payload.size(), size_t{3} << 20);
}

TEST(FrameTest, OversizedFrameIsRejectedBeforeItsBodyArrives) {
  std::string header;
  AppendFrameHeader(&header, 1, 1000);
  FrameDecoder d(999);
  Status error;
  auto frames = Decode(d, header, 64, &error);
  EXPECT_TRUE(frames.empty());
  EXPECT_EQ(error.code(), Code::kTooLarge);
}

TEST(FrameTest, TruncatedFrameStaysBuffered) {
  std::string stream;
  AppendFrame(&stream, 1, "complete");
  AppendFrame(&stream, 2, "truncated");
  stream.resize(stream.size() - 3);
  FrameDecoder d(1024);
  auto frames = Decode(d, stream, 5);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_GT(d.buffered(), 0u);
}

TEST(FrameTest, AnnouncedFrameDoesNotAllocateBeforeBytesArrive) {
  std::string header;
  AppendFrameHeader(&header, 1, 16 << 20);
  FrameDecoder d(16 << 20);
  auto space = d.Prepare();
  std::memcpy(space.data(), header.data(), header.size());
  d.Commit(header.size());
  ASSERT_TRUE(d.Next().ok());
  EXPECT_LE(d.Prepare().size(), size_t{64} << 10);  // not 16 MiB
}

TEST(FrameTest, CorruptedStreamsNeverCrash) {
  std::mt19937 rng(12345);
  int frames_seen = 0;
  for (int round = 0; round < 2000; ++round) {
    // Valid frames with a few corrupted bytes, so headers are plausible and payloads decode.
    std::string stream;
    for (int i = 0; i < 1 + static_cast<int>(rng() % 5); ++i) {
      AppendFrame(&stream, rng(), std::string(rng() % 200, 'x'));
    }
    for (int flips = rng() % 4; flips > 0; --flips) stream[rng() % stream.size()] = char(rng());
    FrameDecoder d(256);
    Status error;
    auto frames = Decode(d, stream, 1 + rng() % 40, &error);
    for (const auto& f : frames) EXPECT_LE(f.second.size(), 256u);
    frames_seen += static_cast<int>(frames.size());
  }
  EXPECT_GT(frames_seen, 1000);  // most streams still hold decodable frames
}

}  // namespace
}  // namespace cairn::net
