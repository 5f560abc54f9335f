#include "coordinator/scan_merge.h"

#include <gtest/gtest.h>

namespace cairn::coordinator {
namespace {

using storage::StoredValue;

StoredValue Live(uint64_t hlc, std::string value) {
  return StoredValue{Version{hlc, 1}, false, 0, std::move(value)};
}
StoredValue Deleted(uint64_t hlc) { return StoredValue{Version{hlc, 1}, true, 0, {}}; }

std::vector<std::string> Keys(const ScanPage& page) {
  std::vector<std::string> keys;
  for (const auto& [key, record] : page.entries) keys.push_back(key);
  return keys;
}

TEST(ScanMergeTest, ExhaustedPagesMergeInKeyOrderAndComplete) {
  std::vector<NodeScanPage> pages(2);
  pages[0].items = {{"a", Live(1, "1")}, {"c", Live(1, "3")}};
  pages[0].exhausted = true;
  pages[1].items = {{"b", Live(1, "2")}, {"d", Live(1, "4")}};
  pages[1].exhausted = true;
  const ScanPage page = MergeScanPages(std::move(pages), 10, 0);
  EXPECT_EQ(Keys(page), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(page.cursor, "");
}

TEST(ScanMergeTest, NewestVersionWinsAndDeadKeysAreLeftOut) {
  std::vector<NodeScanPage> pages(2);
  pages[0].items = {{"a", Live(1, "old")}, {"b", Live(5, "kept")}, {"c", Live(1, "x")}};
  pages[0].exhausted = true;
  pages[1].items = {{"a", Live(2, "new")}, {"b", Deleted(4)}, {"c", Deleted(3)}};
  pages[1].exhausted = true;
  const ScanPage page = MergeScanPages(std::move(pages), 10, 0);
  ASSERT_EQ(Keys(page), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(page.entries[0].second.value, "new");
  EXPECT_EQ(page.entries[1].second.value, "kept");
}

TEST(ScanMergeTest, ExpiredValuesAreNotReturned) {
  std::vector<NodeScanPage> pages(1);
  StoredValue expiring = Live(1, "v");
  expiring.expires_at_ms = 100;
  pages[0].items = {{"a", expiring}, {"b", Live(1, "w")}};
  pages[0].exhausted = true;
  EXPECT_EQ(Keys(MergeScanPages(pages, 10, 99)), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(Keys(MergeScanPages(pages, 10, 100)), (std::vector<std::string>{"b"}));
}

// A node that stopped early may hold keys after its last one: nothing past the smallest such
// point is returned, and the scan resumes from it.
TEST(ScanMergeTest, KeysBeyondTheEarliestStopWaitForTheNextPage) {
  std::vector<NodeScanPage> pages(2);
  pages[0].items = {{"a", Live(1, "")}, {"b", Live(1, "")}};
  pages[0].exhausted = false;
  pages[0].last_key = "b";
  pages[1].items = {{"a", Live(1, "")}, {"c", Live(1, "")}, {"d", Live(1, "")}};
  pages[1].exhausted = true;
  const ScanPage page = MergeScanPages(std::move(pages), 10, 0);
  EXPECT_EQ(Keys(page), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(page.cursor, "b");
}

TEST(ScanMergeTest, AFullPageResumesAfterItsLastKey) {
  std::vector<NodeScanPage> pages(1);
  pages[0].items = {{"a", Live(1, "")}, {"b", Live(1, "")}, {"c", Live(1, "")}};
  pages[0].exhausted = true;
  const ScanPage page = MergeScanPages(std::move(pages), 2, 0);
  EXPECT_EQ(Keys(page), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(page.cursor, "b");
}

// A stop made only of tombstones still moves the cursor on, so that a scan over many deletes
// makes progress page by page instead of answering "done".
TEST(ScanMergeTest, AStopWithOnlyDeadKeysStillAdvances) {
  std::vector<NodeScanPage> pages(1);
  pages[0].items = {{"a", Deleted(1)}, {"b", Deleted(1)}};
  pages[0].exhausted = false;
  pages[0].last_key = "b";
  const ScanPage page = MergeScanPages(std::move(pages), 10, 0);
  EXPECT_TRUE(page.entries.empty());
  EXPECT_EQ(page.cursor, "b");
}

TEST(ScanMergeTest, NoPagesIsAnEmptyCompleteScan) {
  const ScanPage page = MergeScanPages({}, 10, 0);
  EXPECT_TRUE(page.entries.empty());
  EXPECT_EQ(page.cursor, "");
}

}  // namespace
}  // namespace cairn::coordinator
