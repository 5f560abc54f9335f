#include "coordinator/scan_merge.h"

#include <map>
#include <optional>

namespace cairn::coordinator {

ScanPage MergeScanPages(std::vector<NodeScanPage> pages, uint32_t limit, uint64_t now_ms) {
  std::optional<std::string> bound;
  for (const NodeScanPage& page : pages) {
    if (!page.exhausted && (!bound || page.last_key < *bound)) bound = page.last_key;
  }
  std::map<std::string, storage::StoredValue> merged;
  for (NodeScanPage& page : pages) {
    for (auto& [key, value] : page.items) {
      if (bound && key > *bound) continue;
      auto it = merged.find(key);
      if (it == merged.end()) {
        merged.emplace(std::move(key), std::move(value));
      } else if (it->second.version < value.version) {
        it->second = std::move(value);
      }
    }
  }
  ScanPage out;
  for (auto& [key, value] : merged) {
    if (out.entries.size() == limit) break;
    if (!value.IsLive(now_ms)) continue;
    out.entries.emplace_back(key,
                             Record{std::move(value.value), value.version, value.expires_at_ms});
  }
  if (limit > 0 && out.entries.size() == limit) {
    out.cursor = out.entries.back().first;
  } else if (bound) {
    out.cursor = *bound;
  }
  return out;
}

}  // namespace cairn::coordinator
