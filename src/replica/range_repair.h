// The replica's side of repair (anti-entropy, issue #16): what a node answers about one
// (partition, keyspace) range so that the node running the repair can find what differs between
// the range's replicas without reading every record. The transfer of the records that differ is
// the range-transfer primitive's (partition_streamer.h: StreamRequest.keys, PullKeys).
#pragma once

#include <cstdint>

#include "cairn/status.h"
#include "proto/internode.pb.h"
#include "storage/engine.h"

namespace cairn::replica {

// The range's digest: one hash per segment of its keys (storage::RangeDigest), as the engine
// maintains it, with their root hash and the key count; with `root_only`, the root and the
// count alone (replicas that agree compare 16 bytes, not 2 KiB).
Result<internode::DigestResponse> ReadDigest(const storage::Engine& engine, uint32_t partition,
                                             uint32_t keyspace, bool root_only = false);
// The root hash of a digest's segments.
uint64_t DigestRoot(const storage::RangeDigest& digest);

// The keys of the range in the segments asked for, with their stored versions, in key order
// after `request.after`, at most `request.max_keys` (clamped to 1..10,000). Blocking.
Result<internode::RangeKeysResponse> ReadRangeKeys(const storage::Engine& engine,
                                                   const internode::RangeKeysRequest& request);

// Purges the range's tombstones and expired values that were deleted (or expired) before
// `horizon_ms`, except keys with a Paxos proposal still pending here (its value could still be
// committed below the tombstone). Safe only when every replica of the range holds them (a repair
// in which all took part and agreed) and no older version can still arrive (hints past the hint
// window, no movement): the node that ran the repair decides that. Submits the purges to the
// engine, waits for them, and returns how many keys were removed. Blocking.
Result<uint64_t> PurgeRange(storage::Engine& engine, uint32_t partition, uint32_t keyspace,
                            uint64_t horizon_ms, uint64_t now_ms);

}  // namespace cairn::replica
