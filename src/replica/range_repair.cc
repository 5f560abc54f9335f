#include "replica/range_repair.h"

#include <algorithm>
#include <bitset>
#include <future>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <xxhash.h>

#include "base/endian.h"
#include "replica/paxos_acceptor.h"
#include "storage/format.h"

namespace cairn::replica {

uint64_t DigestRoot(const storage::RangeDigest& digest) {
  std::string bytes;
  bytes.reserve(digest.segments.size() * 8);
  for (uint64_t segment : digest.segments) base::PutBig64(&bytes, segment);
  return XXH3_64bits(bytes.data(), bytes.size());
}

Result<internode::DigestResponse> ReadDigest(const storage::Engine& engine, uint32_t partition,
                                             uint32_t keyspace, bool root_only) {
  // The maintained tree: no read of the range (UNAVAILABLE for the moment it is rebuilt).
  auto digest = engine.RangeTree(partition, keyspace);
  if (!digest.ok()) return digest.status();
  internode::DigestResponse out;
  out.set_keys(digest->keys);
  out.set_root(DigestRoot(*digest));
  if (root_only) return out;
  out.mutable_segments()->Reserve(static_cast<int>(digest->segments.size()));
  for (uint64_t segment : digest->segments) out.add_segments(segment);
  return out;
}

Result<internode::RangeKeysResponse> ReadRangeKeys(const storage::Engine& engine,
                                                   const internode::RangeKeysRequest& request) {
  std::bitset<storage::kDigestSegments> wanted;
  for (uint32_t segment : request.segments()) {
    if (segment >= storage::kDigestSegments) {
      return Status::InvalidArgument(
          fmt::format("segment {} is not below {}", segment, storage::kDigestSegments));
    }
    wanted.set(segment);
  }
  const size_t max_keys = std::clamp<size_t>(request.max_keys(), 1, 10'000);
  internode::RangeKeysResponse out;
  std::string after = request.after();
  while (true) {
    auto chunk = engine.ReadRange(storage::Family::kData, request.partition(), request.keyspace(),
                                  after, std::nullopt, size_t{1} << 20);
    if (!chunk.ok()) return chunk.status();
    for (storage::RangeRecord& r : chunk->records) {
      after = r.key;
      if (!wanted.test(storage::DigestSegmentOf(r.key))) continue;
      auto header = storage::DecodeValueHeader(r.value);
      if (!header.ok()) return header.status();
      internode::KeyVersion* item = out.add_items();
      item->set_key(std::move(r.key));
      item->mutable_version()->set_hlc(header->version.hlc);
      item->mutable_version()->set_node(header->version.node);
      if (static_cast<size_t>(out.items_size()) == max_keys) {
        out.set_last_key(item->key());
        // Done only if this was the range's last record.
        out.set_done(chunk->done && &r == &chunk->records.back());
        return out;
      }
    }
    if (chunk->done || chunk->records.empty()) break;
  }
  out.set_last_key(after);
  out.set_done(true);
  return out;
}

Result<uint64_t> PurgeRange(storage::Engine& engine, uint32_t partition, uint32_t keyspace,
                            uint64_t horizon_ms, uint64_t now_ms) {
  uint64_t purged = 0;
  std::string after;
  while (true) {
    auto chunk = engine.ReadRange(storage::Family::kData, partition, keyspace, after, std::nullopt,
                                  size_t{1} << 20);
    if (!chunk.ok()) return chunk.status();
    storage::WriteRequest request;
    for (const storage::RangeRecord& r : chunk->records) {
      auto header = storage::DecodeValueHeader(r.value);
      if (!header.ok()) return header.status();
      const storage::StoredValue& v = *header;
      const bool expired = v.expires_at_ms != 0 && v.expires_at_ms <= now_ms;
      if (!v.tombstone && !expired) continue;
      const uint64_t gone_at = std::max(v.version.Millis(), v.expires_at_ms);
      if (gone_at >= horizon_ms) continue;
      const storage::DataKey key{partition, keyspace, r.key};
      // A proposal pending here may still be committed with a version below the tombstone's.
      auto stored = PaxosAcceptor::StoredState(engine, key);
      if (!stored.ok()) return stored.status();
      if (stored->has_value()) {
        internode::PaxosState state;
        if (!state.ParseFromString(**stored) || state.pending()) continue;
      }
      request.purges.push_back({key, v.version});
    }
    if (!request.purges.empty()) {
      std::vector<storage::DataKey> keys;
      keys.reserve(request.purges.size());
      for (const auto& p : request.purges) keys.push_back(p.key);
      std::promise<Status> done;
      auto written = done.get_future();
      engine.Write(std::move(request), [&done](Status s, std::vector<storage::WriteOutcome>) {
        done.set_value(std::move(s));
      });
      if (Status s = written.get(); !s.ok()) return s;
      // A purge leaves a key that was written again meanwhile: count only those now gone.
      for (const storage::DataKey& key : keys) {
        auto stored = engine.Get(key);
        if (stored.ok() && !stored->has_value()) ++purged;
      }
    }
    if (chunk->done || chunk->records.empty()) break;
    after = chunk->last_key;
  }
  spdlog::debug("purge of partition {} of keyspace {} below {}: {} removed", partition, keyspace,
                horizon_ms, purged);
  return purged;
}

}  // namespace cairn::replica
