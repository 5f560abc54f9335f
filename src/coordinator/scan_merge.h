// The merge of a prefix scan's pages, one per node asked: a pure function, so that its rules are
// unit-tested apart from the network (scan_merge_test.cc).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/coordinator.h"
#include "storage/format.h"

namespace cairn::coordinator {

// What one node answered: key-ordered items of the partitions it was asked for (tombstones and
// expired values included), and whether it reached the end of them; if not, the last key it
// examined.
struct NodeScanPage {
  std::vector<std::pair<std::string, storage::StoredValue>> items;
  bool exhausted = false;
  std::string last_key;
};

// Merges `pages` into one page of at most `limit` live keys (live at `now_ms`):
// - a key is complete only up to the smallest point where some node stopped (the smallest
//   `last_key` of a page that is not exhausted), since a node that stopped may hold more keys
//   after it; keys beyond that point are left for the next page;
// - the newest version of each key among the pages wins, and only live ones are returned;
// - the cursor is the last key returned when the page is full, else that stopping point, else
//   empty (the scan is complete).
ScanPage MergeScanPages(std::vector<NodeScanPage> pages, uint32_t limit, uint64_t now_ms);

}  // namespace cairn::coordinator
