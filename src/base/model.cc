#include "base/model.h"

namespace cairn {

uint32_t ReplicationIn(const ReplicationMap& replication, std::string_view dc) {
  if (auto it = replication.find(dc); it != replication.end()) return it->second;
  if (auto it = replication.find(kEveryDc); it != replication.end()) return it->second;
  return 0;
}

}  // namespace cairn
