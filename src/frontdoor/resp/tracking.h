// Client-side caching (RESP3 CLIENT TRACKING, as Redis 7 does it; docs/resp.md, "Client-side
// caching"): which connections track which keys, and whom a change of a key must be told.
//
// Default mode: a tracking connection's reads remember their keys here (before the read runs, so
// that a change that lands while it runs is reported); a change of a key sends one invalidation
// per connection that remembered it, then forgets the key for all of them (they remember it
// again when they read it again). OPTIN/OPTOUT decide which reads remember (the door's business,
// CLIENT CACHING). BCAST: nothing is remembered; every changed key that starts with one of the
// connection's prefixes is sent, one invalidation per prefix and change. NOLOOP: a connection is
// not told of the changes it made itself.
//
// Keys are names: as in Redis, where tracking ignores the database, a change of a key in any
// keyspace invalidates that name.
//
// The table is bounded (Redis's tracking-table-max-keys): remembering a key past the bound
// forgets the oldest one, and its connections get its invalidation (they must not go on caching
// a key nobody will tell them about). A key read with a time to live is invalidated when it
// expires (Expire()), since nothing else changes it then.
//
// Thread safety: every method may be called from any thread (one mutex).
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace cairn::frontdoor::resp {

// What CLIENT TRACKING on asked for.
struct TrackingMode {
  bool bcast = false;
  bool optin = false;
  bool optout = false;
  bool noloop = false;
  uint64_t redirect = 0;  // the connection the invalidations go to; 0: the tracking one itself
};

// One invalidation push for tracking connection `client` (to be sent to its redirect, if any):
// `keys`, or every key (Redis's null invalidation: the client drops its whole cache).
struct Invalidation {
  uint64_t client = 0;
  uint64_t redirect = 0;
  std::vector<std::string> keys;
  bool all = false;
};

class TrackingTable {
 public:
  explicit TrackingTable(size_t max_keys) : max_keys_(max_keys) {}

  // Tracking on for `client` (or its mode changed, prefixes added: the caller has checked the
  // combination as Redis does). BCAST without prefixes tracks the empty prefix (every key).
  void Enable(uint64_t client, const TrackingMode& mode, const std::vector<std::string>& prefixes);
  // Tracking off (or the connection closed): forgets its keys and prefixes. False when it was
  // not tracking.
  bool Disable(uint64_t client);

  struct ClientInfo {
    TrackingMode mode;
    std::vector<std::string> prefixes;  // sorted
    bool broken_redirect = false;
    size_t keys = 0;  // remembered for it
  };
  std::optional<ClientInfo> Info(uint64_t client) const;
  // The connection `client` redirects to has gone (TRACKINGINFO says broken_redirect).
  void MarkBrokenRedirect(uint64_t client);

  // Default mode: `client` is about to read `keys`. Appends to `evicted` the invalidations of
  // keys forgotten to stay within the bound.
  void Remember(uint64_t client, std::span<const std::string> keys,
                std::vector<Invalidation>* evicted);
  // The reads of `keys` found them expiring at `expires_at_ms` (Unix ms): they are invalidated
  // then, if still remembered.
  void NoteExpiry(std::span<const std::string> keys, uint64_t expires_at_ms);

  // `keys` changed, through connection `origin` of this door (0: elsewhere): the invalidations
  // to send.
  std::vector<Invalidation> KeysChanged(std::span<const std::string> keys, uint64_t origin);
  // Every key may have changed: every tracking connection gets the null invalidation, and
  // everything remembered is forgotten.
  std::vector<Invalidation> Flushed();
  // Keys remembered with an expiry at or before `now_ms`: their invalidations; they are
  // forgotten.
  std::vector<Invalidation> Expire(uint64_t now_ms);
  // The earliest expiry of a remembered key (Unix ms), if any.
  std::optional<uint64_t> NextExpiry() const;

  struct Figures {
    size_t clients = 0;    // connections tracking
    size_t keys = 0;       // keys remembered (tracking_total_keys)
    size_t items = 0;      // (key, connection) pairs (tracking_total_items)
    size_t prefixes = 0;   // BCAST prefixes (tracking_total_prefixes)
    uint64_t evicted = 0;  // keys forgotten for the bound, since start
  };
  Figures figures() const;

 private:
  struct Entry {
    std::string key;
    std::vector<uint64_t> clients;
    uint64_t expires_at_ms = 0;
    std::multimap<uint64_t, Entry*>::iterator expiry;  // valid when expires_at_ms != 0
  };
  using Entries = std::list<Entry>;  // oldest first: the bound forgets from the front
  struct Client {
    TrackingMode mode;
    std::vector<std::string> prefixes;
    bool broken_redirect = false;
    std::unordered_set<Entry*> keys;
  };

  // Forgets `e` for every client; mu_ held.
  void EraseLocked(Entries::iterator e);
  // Invalidations of the remembered keys `keys` (one per key and client, as Redis sends them),
  // which are forgotten; mu_ held.
  void InvalidateLocked(std::span<const std::string> keys, uint64_t origin,
                        std::vector<Invalidation>* out);

  const size_t max_keys_;
  mutable std::mutex mu_;
  Entries entries_;                                                // guarded by mu_
  std::unordered_map<std::string_view, Entries::iterator> index_;  // guarded by mu_
  std::unordered_map<uint64_t, Client> clients_;                   // guarded by mu_
  std::multimap<uint64_t, Entry*> expiries_;                       // guarded by mu_
  size_t items_ = 0;                                               // guarded by mu_
  size_t bcast_clients_ = 0;                                       // guarded by mu_
  uint64_t evicted_ = 0;                                           // guarded by mu_
};

}  // namespace cairn::frontdoor::resp
