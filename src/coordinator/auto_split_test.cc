#include "coordinator/auto_split.h"

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace cairn::coordinator {
namespace {

using namespace std::chrono_literals;
using Clock = AutoSplitPolicy::Clock;

// A sketch that counts every operation (no sampling), over a 10 s window.
base::HotKeys Sketch() {
  base::HotKeys::Options o;
  o.sample = 1;
  return base::HotKeys(o);
}

base::KeyspaceDef Keyspace(std::string name, uint32_t id, uint32_t threshold,
                           uint32_t shards = 16) {
  base::KeyspaceDef ks;
  ks.name = std::move(name);
  ks.id = id;
  ks.auto_split_increments_per_s = threshold;
  ks.auto_split_shards = shards;
  return ks;
}

// `n` increments (or writes, or reads) of `key` within the second before `now`.
void Add(base::HotKeys& sketch, uint32_t keyspace, const std::string& key, int n,
         Clock::time_point now, bool increment = true, bool write = true) {
  for (int i = 0; i < n; ++i) {
    if (increment) {
      sketch.AddIncrementAt(keyspace, key, now);
    } else {
      sketch.AddAt(keyspace, key, write, now);
    }
  }
}

const AutoSplitPolicy::IsSplit kNoneSplit = [](const std::string&, std::string_view) {
  return false;
};

std::set<std::string> Keys(const std::vector<AutoSplitCandidate>& candidates) {
  std::set<std::string> out;
  for (const auto& c : candidates) out.insert(c.keyspace + "/" + c.key);
  return out;
}

// Rates are over at least a second of sketch time: n operations counted at `now` are n per
// second when `now` is the sketch's first second.
TEST(AutoSplitPolicyTest, ACounterPastTheThresholdIsACandidateAndOneBelowIsNot) {
  base::HotKeys sketch = Sketch();
  const Clock::time_point now = Clock::now();
  Add(sketch, 7, "hot", 80, now);
  Add(sketch, 7, "warm", 30, now);
  AutoSplitPolicy policy;
  auto c = policy.Candidates({Keyspace("events", 7, 50, 8)}, sketch, kNoneSplit, 1, now);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].keyspace, "events");
  EXPECT_EQ(c[0].key, "hot");
  EXPECT_EQ(c[0].threshold, 50u);
  EXPECT_EQ(c[0].shards, 8u);
  EXPECT_GE(c[0].local_increments_per_s, 50);
  // The cluster's sum decides.
  EXPECT_TRUE(AutoSplitPolicy::Passes(c[0], 50));
  EXPECT_FALSE(AutoSplitPolicy::Passes(c[0], 49.9));

  // With three coordinators, 30 a second here may be a third of 90 over the cluster: a
  // candidate, to be checked over the cluster.
  auto three = policy.Candidates({Keyspace("events", 7, 50)}, sketch, kNoneSplit, 3, now);
  ASSERT_EQ(three.size(), 1u);
  EXPECT_EQ(three[0].key, "hot") << "the hottest of the keyspace only";
  // A threshold above every rate: nothing.
  EXPECT_TRUE(policy.Candidates({Keyspace("events", 7, 1000)}, sketch, kNoneSplit, 3, now).empty());
}

TEST(AutoSplitPolicyTest, AKeyspaceWithoutTheOptionNeverHasCandidates) {
  base::HotKeys sketch = Sketch();
  const Clock::time_point now = Clock::now();
  Add(sketch, 7, "hot", 5000, now);
  Add(sketch, 8, "hot", 5000, now);
  AutoSplitPolicy policy;
  auto c =
      policy.Candidates({Keyspace("off", 7, 0), Keyspace("on", 8, 50)}, sketch, kNoneSplit, 1, now);
  EXPECT_EQ(Keys(c), (std::set<std::string>{"on/hot"}));
}

// Only increments count: a key SET (or read) at a high rate is not a counter, and an increment
// that a value refused is never counted as one (coordinator_test.cc checks that part).
TEST(AutoSplitPolicyTest, WritesAndReadsAreNotIncrements) {
  base::HotKeys sketch = Sketch();
  const Clock::time_point now = Clock::now();
  Add(sketch, 7, "set-often", 5000, now, /*increment=*/false, /*write=*/true);
  Add(sketch, 7, "read-often", 5000, now, /*increment=*/false, /*write=*/false);
  Add(sketch, 7, "counter", 60, now);
  AutoSplitPolicy policy;
  auto c = policy.Candidates({Keyspace("ks", 7, 50)}, sketch, kNoneSplit, 1, now);
  EXPECT_EQ(Keys(c), (std::set<std::string>{"ks/counter"}));
  // An increment is a write too, in the listing's figures.
  for (const base::HotKey& h : sketch.Top(7, 10, now)) {
    if (h.key == "counter") {
      EXPECT_EQ(h.writes_per_s, h.increments_per_s);
    } else {
      EXPECT_EQ(h.increments_per_s, 0) << h.key;
    }
  }
}

TEST(AutoSplitPolicyTest, SplitCountersSubCountersAndTruncatedKeysAreLeftAlone) {
  base::HotKeys sketch = Sketch();
  const Clock::time_point now = Clock::now();
  Add(sketch, 7, "split-already", 500, now);
  Add(sketch, 7, std::string("\xff\xfe") + "cairn-split{1.2.3}x", 400, now);
  Add(sketch, 7, std::string(300, 'k'), 300, now);
  Add(sketch, 7, "next", 200, now);
  AutoSplitPolicy policy;
  const AutoSplitPolicy::IsSplit is_split = [](const std::string& ks, std::string_view key) {
    return ks == "ks" && key == "split-already";
  };
  auto c = policy.Candidates({Keyspace("ks", 7, 50)}, sketch, is_split, 1, now);
  EXPECT_EQ(Keys(c), (std::set<std::string>{"ks/next"}));
}

TEST(AutoSplitPolicyTest, AttemptsAreSpacedPerKeyspaceAndRefusedCountersPause) {
  base::HotKeys sketch = Sketch();
  const Clock::time_point now = Clock::now();
  Add(sketch, 7, "a", 500, now);
  Add(sketch, 7, "b", 400, now);
  Add(sketch, 8, "c", 300, now);
  const std::vector<base::KeyspaceDef> keyspaces = {Keyspace("one", 7, 50), Keyspace("two", 8, 50)};
  AutoSplitPolicy policy;
  EXPECT_EQ(Keys(policy.Candidates(keyspaces, sketch, kNoneSplit, 1, now)),
            (std::set<std::string>{"one/a", "two/c"}));
  policy.Attempted("one", now);
  EXPECT_EQ(Keys(policy.Candidates(keyspaces, sketch, kNoneSplit, 1, now + 1s)),
            (std::set<std::string>{"two/c"}))
      << "one attempt per keyspace every few seconds";
  policy.Refused("one", "a", now);
  const Clock::time_point later = now + AutoSplitPolicy::kKeyspaceSpacing;
  EXPECT_EQ(Keys(policy.Candidates(keyspaces, sketch, kNoneSplit, 1, later)),
            (std::set<std::string>{"one/b", "two/c"}))
      << "a refused counter is skipped, the next one is not";
  // The refusal ends (the sketch, over 10-20 s windows, has forgotten the load by then: add it
  // again).
  const Clock::time_point after = now + AutoSplitPolicy::kRefusedPause;
  Add(sketch, 7, "a", 50'000, after);
  EXPECT_EQ(Keys(policy.Candidates(keyspaces, sketch, kNoneSplit, 1, after)),
            (std::set<std::string>{"one/a"}));
}

}  // namespace
}  // namespace cairn::coordinator
