#include "frontdoor/resp/tracking.h"

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace cairn::frontdoor::resp {
namespace {

using Keys = std::vector<std::string>;

// What an invalidation says, compactly: "client:key,key" or "client:*" (every key), with
// "->redirect" when it goes elsewhere.
std::vector<std::string> Show(const std::vector<Invalidation>& invs) {
  std::vector<std::string> out;
  for (const Invalidation& inv : invs) {
    std::string s = std::to_string(inv.client) + ":";
    if (inv.all) {
      s += "*";
    } else {
      for (size_t i = 0; i < inv.keys.size(); ++i) s += (i ? "," : "") + inv.keys[i];
    }
    if (inv.redirect != 0) s += "->" + std::to_string(inv.redirect);
    out.push_back(s);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<Invalidation> Remember(TrackingTable& t, uint64_t client, const Keys& keys) {
  std::vector<Invalidation> evicted;
  t.Remember(client, keys, &evicted);
  return evicted;
}

TrackingMode Mode(bool bcast = false, bool noloop = false, uint64_t redirect = 0) {
  TrackingMode m;
  m.bcast = bcast;
  m.noloop = noloop;
  m.redirect = redirect;
  return m;
}

// Default mode: a change of a key read by two connections tells each once, then forgets the key:
// the next change of it tells nobody until it is read again.
TEST(TrackingTableTest, DefaultModeTellsEachReaderOnceThenForgets) {
  TrackingTable t(100);
  t.Enable(1, Mode(), {});
  t.Enable(2, Mode(), {});
  EXPECT_TRUE(Remember(t, 1, {"a", "b"}).empty());
  EXPECT_TRUE(Remember(t, 2, {"a"}).empty());
  EXPECT_TRUE(Remember(t, 2, {"a"}).empty());  // read twice: remembered once
  EXPECT_EQ(t.figures().keys, 2u);
  EXPECT_EQ(t.figures().items, 3u);

  const Keys changed = {"a", "c"};
  EXPECT_EQ(Show(t.KeysChanged(changed, 0)), (std::vector<std::string>{"1:a", "2:a"}));
  EXPECT_TRUE(t.KeysChanged(changed, 0).empty()) << "forgotten after the first change";
  EXPECT_EQ(t.figures().keys, 1u);
  EXPECT_EQ(t.figures().items, 1u);

  const Keys b = {"b"};
  EXPECT_EQ(Show(t.KeysChanged(b, 0)), (std::vector<std::string>{"1:b"}));
  // Read again: remembered again.
  EXPECT_TRUE(Remember(t, 2, {"b"}).empty());
  EXPECT_EQ(Show(t.KeysChanged(b, 0)), (std::vector<std::string>{"2:b"}));
}

// A connection not tracking (or in BCAST) remembers nothing.
TEST(TrackingTableTest, OnlyDefaultModeConnectionsRemember) {
  TrackingTable t(100);
  EXPECT_TRUE(Remember(t, 7, {"a"}).empty());
  t.Enable(8, Mode(/*bcast=*/true), {"x"});
  EXPECT_TRUE(Remember(t, 8, {"a"}).empty());
  EXPECT_EQ(t.figures().keys, 0u);
  const Keys a = {"a"};
  EXPECT_TRUE(t.KeysChanged(a, 0).empty());
}

// NOLOOP: the connection's own change is not sent to it, and the key is forgotten anyway (as
// Redis does); other readers are told. Without NOLOOP the writer is told too.
TEST(TrackingTableTest, NoLoopSkipsTheWritersOwnChanges) {
  TrackingTable t(100);
  t.Enable(1, Mode(false, /*noloop=*/true), {});
  t.Enable(2, Mode(), {});
  Remember(t, 1, {"k"});
  Remember(t, 2, {"k"});
  const Keys k = {"k"};
  EXPECT_EQ(Show(t.KeysChanged(k, /*origin=*/1)), (std::vector<std::string>{"2:k"}));
  EXPECT_EQ(t.figures().keys, 0u);
  Remember(t, 1, {"k"});
  Remember(t, 2, {"k"});
  EXPECT_EQ(Show(t.KeysChanged(k, /*origin=*/2)), (std::vector<std::string>{"1:k", "2:k"}));
}

// BCAST: every changed key under a prefix, one invalidation per prefix and change, nothing
// remembered; no prefix means every key; NOLOOP applies.
TEST(TrackingTableTest, BcastSendsEveryChangedKeyUnderItsPrefixes) {
  TrackingTable t(100);
  t.Enable(1, Mode(/*bcast=*/true), {"user:", "cart:"});
  t.Enable(2, Mode(/*bcast=*/true), {});
  t.Enable(3, Mode(/*bcast=*/true, /*noloop=*/true), {"user:"});
  const Keys changed = {"user:1", "cart:9", "other", "user:2"};
  EXPECT_EQ(
      Show(t.KeysChanged(changed, /*origin=*/3)),
      (std::vector<std::string>{"1:cart:9", "1:user:1,user:2", "2:user:1,cart:9,other,user:2"}));
  EXPECT_EQ(Show(t.KeysChanged(changed, 0)),
            (std::vector<std::string>{"1:cart:9", "1:user:1,user:2", "2:user:1,cart:9,other,user:2",
                                      "3:user:1,user:2"}));
  EXPECT_EQ(t.figures().prefixes, 4u);
  ASSERT_TRUE(t.Info(1).has_value());
  EXPECT_EQ(t.Info(1)->prefixes, (std::vector<std::string>{"cart:", "user:"}));
  ASSERT_TRUE(t.Info(2).has_value());
  EXPECT_EQ(t.Info(2)->prefixes, (std::vector<std::string>{""}));
  // Enabling again adds prefixes, as Redis does.
  t.Enable(1, Mode(/*bcast=*/true), {"z"});
  EXPECT_EQ(t.Info(1)->prefixes, (std::vector<std::string>{"cart:", "user:", "z"}));
}

// The redirect travels with each invalidation (the door sends it there).
TEST(TrackingTableTest, InvalidationsCarryTheRedirect) {
  TrackingTable t(100);
  t.Enable(1, Mode(false, false, /*redirect=*/9), {});
  Remember(t, 1, {"k"});
  const Keys k = {"k"};
  EXPECT_EQ(Show(t.KeysChanged(k, 0)), (std::vector<std::string>{"1:k->9"}));
  t.MarkBrokenRedirect(1);
  EXPECT_TRUE(t.Info(1)->broken_redirect);
}

// The bound: past max_keys the oldest key is forgotten, and its readers are told (they must not
// keep a key nobody would tell them about).
TEST(TrackingTableTest, TheBoundEvictsTheOldestKeyAndInvalidatesIt) {
  TrackingTable t(2);
  t.Enable(1, Mode(), {});
  t.Enable(2, Mode(), {});
  EXPECT_TRUE(Remember(t, 1, {"a", "b"}).empty());
  EXPECT_TRUE(Remember(t, 2, {"a"}).empty());
  EXPECT_EQ(Show(Remember(t, 2, {"c"})), (std::vector<std::string>{"1:a", "2:a"}));
  EXPECT_EQ(t.figures().keys, 2u);
  EXPECT_EQ(t.figures().evicted, 1u);
  EXPECT_EQ(Show(Remember(t, 1, {"d", "e"})), (std::vector<std::string>{"1:b", "2:c"}));
  EXPECT_EQ(t.figures().keys, 2u);
  const Keys all = {"a", "b", "c", "d", "e"};
  EXPECT_EQ(Show(t.KeysChanged(all, 0)), (std::vector<std::string>{"1:d", "1:e"}));
}

// Tracking off, or the connection closing, forgets everything it had; the keys others read stay.
TEST(TrackingTableTest, DisableFreesTheConnectionsKeys) {
  TrackingTable t(100);
  t.Enable(1, Mode(), {});
  t.Enable(2, Mode(), {});
  t.Enable(3, Mode(/*bcast=*/true), {"p"});
  Remember(t, 1, {"a", "b"});
  Remember(t, 2, {"b"});
  EXPECT_TRUE(t.Disable(1));
  EXPECT_FALSE(t.Disable(1));
  EXPECT_FALSE(t.Info(1).has_value());
  EXPECT_EQ(t.figures().keys, 1u);
  EXPECT_EQ(t.figures().items, 1u);
  const Keys ab = {"a", "b"};
  EXPECT_EQ(Show(t.KeysChanged(ab, 0)), (std::vector<std::string>{"2:b"}));
  EXPECT_TRUE(t.Disable(3));
  EXPECT_TRUE(t.Disable(2));
  const TrackingTable::Figures f = t.figures();
  EXPECT_EQ(f.clients, 0u);
  EXPECT_EQ(f.keys, 0u);
  EXPECT_EQ(f.items, 0u);
  EXPECT_EQ(f.prefixes, 0u);
  const Keys p = {"p1"};
  EXPECT_TRUE(t.KeysChanged(p, 0).empty());
}

// A flush tells every tracking connection (default and BCAST) to drop everything, and forgets
// every key.
TEST(TrackingTableTest, FlushSendsTheNullInvalidationToEveryone) {
  TrackingTable t(100);
  t.Enable(1, Mode(), {});
  t.Enable(2, Mode(/*bcast=*/true), {});
  Remember(t, 1, {"a"});
  EXPECT_EQ(Show(t.Flushed()), (std::vector<std::string>{"1:*", "2:*"}));
  EXPECT_EQ(t.figures().keys, 0u);
  const Keys a = {"a"};
  EXPECT_EQ(Show(t.KeysChanged(a, 0)), (std::vector<std::string>{"2:a"})) << "BCAST still on";
}

// A key read with a time to live is invalidated when it expires, once; one changed before that
// is not invalidated again at its expiry.
TEST(TrackingTableTest, ExpiringKeysAreInvalidatedAtTheirExpiry) {
  TrackingTable t(100);
  t.Enable(1, Mode(), {});
  Remember(t, 1, {"a", "b", "c"});
  const Keys a = {"a"}, b = {"b"}, c = {"c"};
  t.NoteExpiry(a, 1000);
  t.NoteExpiry(b, 2000);
  t.NoteExpiry(b, 3000);  // a later expiry seen by another read: the earlier one stays
  t.NoteExpiry(c, 1500);
  EXPECT_EQ(t.NextExpiry(), 1000u);
  EXPECT_TRUE(t.Expire(999).empty());
  EXPECT_EQ(Show(t.Expire(1000)), (std::vector<std::string>{"1:a"}));
  EXPECT_TRUE(t.Expire(1000).empty());
  EXPECT_EQ(Show(t.KeysChanged(c, 0)), (std::vector<std::string>{"1:c"}));
  EXPECT_EQ(t.NextExpiry(), 2000u);
  EXPECT_EQ(Show(t.Expire(5000)), (std::vector<std::string>{"1:b"}));
  EXPECT_FALSE(t.NextExpiry().has_value());
  // An expiry noted for a key nobody remembers is ignored.
  t.NoteExpiry(a, 10);
  EXPECT_FALSE(t.NextExpiry().has_value());
}

}  // namespace
}  // namespace cairn::frontdoor::resp
