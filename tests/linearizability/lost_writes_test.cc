#include "tests/linearizability/lost_writes.h"

#include <gtest/gtest.h>

namespace cairn::checkers {
namespace {

const Value kAbsent = std::nullopt;

TEST(LostWrites, NothingLostWhenEveryKeyHoldsItsWrite) {
  const std::vector<AckedWrite> acked = {{"a", "1", {1, 0}}, {"b", "2", {2, 0}}};
  const FinalState final_state = {{"a", {"1"}}, {"b", {"2"}}, {"unacked", {"x"}}};
  EXPECT_TRUE(FindLostWrites(acked, final_state).empty());
  EXPECT_TRUE(FindLostWrites({}, final_state).empty());
}

TEST(LostWrites, UniqueKeysReportsAbsentAndOtherValues) {
  const std::vector<AckedWrite> acked = {
      {"k1", "v1", {1, 0}}, {"k2", "v2", {2, 0}}, {"k3", "v3", {3, 0}}, {"k4", "v4", {4, 0}}};
  const FinalState final_state = {{"k1", {"v1"}}, {"k3", {"other"}}, {"k4", {kAbsent}}};
  const std::vector<LostWrite> lost = FindLostWrites(acked, final_state);
  ASSERT_EQ(lost.size(), 3u);
  EXPECT_EQ(lost[0].write.key, "k2");
  EXPECT_EQ(lost[0].kind, LostWrite::Kind::kMissing);
  EXPECT_EQ(lost[1].write.key, "k3");
  EXPECT_EQ(lost[1].kind, LostWrite::Kind::kOtherValue);
  EXPECT_EQ(lost[1].found.value, "other");
  EXPECT_EQ(lost[2].write.key, "k4");  // present in the map, but read as absent
  EXPECT_EQ(lost[2].kind, LostWrite::Kind::kMissing);
  EXPECT_EQ(DescribeLostWrite(lost[0]),
            "key \"k2\": acknowledged write of \"v2\" (stamp 2:0) is lost: the key is absent; "
            "read absent");
}

TEST(LostWrites, AcknowledgedDeleteMustLeaveTheKeyAbsent) {
  const std::vector<AckedWrite> acked = {
      {"gone", "v", {1, 0}}, {"gone", kAbsent, {2, 0}}, {"back", kAbsent, {1, 0}}};
  const FinalState final_state = {{"back", {"zombie"}}};
  const std::vector<LostWrite> lost = FindLostWrites(acked, final_state);
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_EQ(lost[0].write.key, "back");
  EXPECT_EQ(lost[0].kind, LostWrite::Kind::kOtherValue);
  EXPECT_NE(DescribeLostWrite(lost[0]).find("acknowledged delete"), std::string::npos);
}

TEST(LostWrites, OnlyTheNewestAcknowledgedWriteOfAKeyCounts) {
  // Listed out of order: the stamp decides which is newest.
  const std::vector<AckedWrite> acked = {{"k", "new", {5, 1}}, {"k", "old", {5, 0}}};
  EXPECT_TRUE(FindLostWrites(acked, {{"k", {"new"}}}).empty());
  const std::vector<LostWrite> lost = FindLostWrites(acked, {{"k", {"old"}}});
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_EQ(lost[0].write.value, "new");
  EXPECT_EQ(lost[0].kind, LostWrite::Kind::kOtherValue);
}

TEST(LostWrites, VersionsTellASupersedingWriteFromALostOne) {
  const std::vector<AckedWrite> acked = {{"k", "acked", {10, 2}}};
  // A newer write (one whose acknowledgement was lost, say) landed on top: not a loss.
  EXPECT_TRUE(FindLostWrites(acked, {{"k", {"newer", WriteStamp{11, 1}}}}).empty());
  EXPECT_TRUE(FindLostWrites(acked, {{"k", {kAbsent, WriteStamp{10, 3}}}}).empty());
  // The acknowledged write itself.
  EXPECT_TRUE(FindLostWrites(acked, {{"k", {"acked", WriteStamp{10, 2}}}}).empty());
  // Older: the acknowledged write was lost and an earlier one resurfaced.
  auto lost = FindLostWrites(acked, {{"k", {"older", WriteStamp{9, 7}}}});
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_EQ(lost[0].kind, LostWrite::Kind::kOlderVersion);
  // Same version, other value: corruption.
  lost = FindLostWrites(acked, {{"k", {"garbled", WriteStamp{10, 2}}}});
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_EQ(lost[0].kind, LostWrite::Kind::kOtherValue);
  EXPECT_EQ(DescribeLostWrite(lost[0]),
            "key \"k\": acknowledged write of \"acked\" (stamp 10:2) is lost: the key holds "
            "another value; read \"garbled\" (stamp 10:2)");
}

}  // namespace
}  // namespace cairn::checkers
