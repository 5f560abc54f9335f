#include "frontdoor/resp/running_commands.h"

#include <optional>

namespace cairn::frontdoor::resp {
namespace {

bool BlindOrNone(Access a) { return a == Access::kBlind || a == Access::kNone; }

}  // namespace

uint64_t RunningCommands::Add(Access access, const CommandSpec& spec,
                              const std::vector<std::string>* argv) {
  const uint64_t seq = next_seq_++;
  running_.emplace(seq, Entry{access, &spec, argv});
  if (BlindOrNone(access)) ++blind_or_none_;
  return seq;
}

void RunningCommands::Remove(uint64_t seq) {
  auto it = running_.find(seq);
  if (it == running_.end()) return;
  if (BlindOrNone(it->second.access)) --blind_or_none_;
  running_.erase(it);
}

bool RunningCommands::Conflicts(Access access, const CommandSpec& spec,
                                const std::vector<std::string>& argv,
                                const std::function<bool()>& linearizable) const {
  if (access == Access::kGlobal) return !running_.empty();
  std::optional<bool> known;
  auto is_linearizable = [&] {
    if (!known) known = linearizable();
    return *known;
  };
  if (access == Access::kBlind && blind_or_none_ == running_.size() && !is_linearizable()) {
    return false;
  }
  for (const auto& [seq, other] : running_) {
    if (other.access == Access::kGlobal) return true;
    if (access == Access::kNone || other.access == Access::kNone) continue;
    if (access == Access::kRead && other.access == Access::kRead) continue;
    const bool both_blind = access == Access::kBlind && other.access == Access::kBlind;
    bool overlap = false;
    ForEachKey(spec, argv, [&](const std::string& key) {
      if (overlap) return;
      ForEachKey(*other.spec, *other.argv, [&](const std::string& k) {
        if (k == key) overlap = true;
      });
    });
    if (!overlap) continue;
    if (both_blind && !is_linearizable()) continue;
    return true;
  }
  return false;
}

}  // namespace cairn::frontdoor::resp
