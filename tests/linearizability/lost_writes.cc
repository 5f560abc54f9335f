#include "tests/linearizability/lost_writes.h"

#include <fmt/format.h>

namespace cairn::checkers {

std::vector<LostWrite> FindLostWrites(const std::vector<AckedWrite>& acked,
                                      const FinalState& final_state) {
  std::map<std::string, const AckedWrite*> newest;
  for (const AckedWrite& w : acked) {
    auto [it, added] = newest.emplace(w.key, &w);
    if (!added && it->second->stamp < w.stamp) it->second = &w;
  }
  std::vector<LostWrite> lost;
  for (const auto& [key, w] : newest) {
    auto it = final_state.find(key);
    const FinalRecord found = it == final_state.end() ? FinalRecord{} : it->second;
    LostWrite::Kind kind;
    if (found.stamp) {
      if (*found.stamp > w->stamp) continue;  // a newer write landed on top
      if (*found.stamp == w->stamp && found.value == w->value) continue;
      kind =
          *found.stamp < w->stamp ? LostWrite::Kind::kOlderVersion : LostWrite::Kind::kOtherValue;
    } else {
      if (found.value == w->value) continue;
      kind = found.value ? LostWrite::Kind::kOtherValue : LostWrite::Kind::kMissing;
    }
    lost.push_back(LostWrite{.write = *w, .found = found, .kind = kind});
  }
  return lost;
}

std::string DescribeLostWrite(const LostWrite& lost) {
  auto stamp = [](const WriteStamp& s) { return fmt::format("{}:{}", s.major, s.minor); };
  const std::string what = lost.write.value
                               ? fmt::format("write of {}", DescribeValue(lost.write.value))
                               : std::string("delete");
  std::string found = DescribeValue(lost.found.value);
  if (lost.found.stamp) found += fmt::format(" (stamp {})", stamp(*lost.found.stamp));
  const char* how = "";
  switch (lost.kind) {
    case LostWrite::Kind::kMissing:
      how = "the key is absent";
      break;
    case LostWrite::Kind::kOtherValue:
      how = "the key holds another value";
      break;
    case LostWrite::Kind::kOlderVersion:
      how = "the key holds an older version";
      break;
  }
  return fmt::format("key {}: acknowledged {} (stamp {}) is lost: {}; read {}",
                     DescribeValue(lost.write.key), what, stamp(lost.write.stamp), how, found);
}

}  // namespace cairn::checkers
