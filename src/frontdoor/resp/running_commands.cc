#include "frontdoor/resp/running_commands.h"

#include <optional>

namespace cairn::frontdoor::resp {
namespace {

bool BlindOrNone(Access a) { return a == Access::kBlind || a == Access::kNone; }

bool HasKeys(Access a) {
  return a == Access::kRead || a == Access::kBlind || a == Access::kExclusive;
}

}  // namespace

uint64_t RunningCommands::Add(Access access, const CommandSpec& spec,
                              const std::vector<std::string>* argv) {
  const uint64_t seq = next_seq_++;
  running_.emplace(seq, Entry{access, &spec, argv, false});
  if (BlindOrNone(access)) ++blind_or_none_;
  if (access == Access::kGlobal) ++global_;
  if (HasKeys(access)) ++unindexed_;
  return seq;
}

void RunningCommands::Remove(uint64_t seq) {
  auto it = running_.find(seq);
  if (it == running_.end()) return;
  if (BlindOrNone(it->second.access)) --blind_or_none_;
  if (it->second.access == Access::kGlobal) --global_;
  if (it->second.indexed) {
    Index(it->second, -1);
  } else if (HasKeys(it->second.access)) {
    --unindexed_;
  }
  running_.erase(it);
}

void RunningCommands::Index(const Entry& e, int delta) {
  if (!HasKeys(e.access)) return;  // no key (kNone), or every key (kGlobal, counted apart)
  auto count = [&e](KeyUse& use) -> uint32_t& {
    if (e.access == Access::kRead) return use.read;
    if (e.access == Access::kBlind) return use.blind;
    return use.exclusive;
  };
  ForEachKey(*e.spec, *e.argv, [&](const std::string& key) {
    auto it = keys_.find(std::string_view(key));
    if (delta > 0) {
      if (it == keys_.end()) it = keys_.emplace(key, KeyUse{}).first;
      ++count(it->second);
      return;
    }
    if (it == keys_.end()) return;
    --count(it->second);
    if (it->second.read == 0 && it->second.blind == 0 && it->second.exclusive == 0) {
      keys_.erase(it);
    }
  });
}

bool RunningCommands::Conflicts(Access access, const CommandSpec& spec,
                                const std::vector<std::string>& argv,
                                const std::function<bool()>& linearizable) {
  if (access == Access::kGlobal) return !running_.empty();
  if (global_ > 0) return true;
  if (access == Access::kNone) return false;
  std::optional<bool> known;
  auto is_linearizable = [&] {
    if (!known) known = linearizable();
    return *known;
  };
  if (access == Access::kBlind && blind_or_none_ == running_.size() && !is_linearizable()) {
    return false;
  }
  if (unindexed_ > 0) {
    for (auto& [seq, e] : running_) {
      if (e.indexed || !HasKeys(e.access)) continue;
      Index(e, +1);
      e.indexed = true;
    }
    unindexed_ = 0;
  }
  bool conflict = false;
  ForEachKey(spec, argv, [&](const std::string& key) {
    if (conflict) return;
    auto it = keys_.find(std::string_view(key));
    if (it == keys_.end()) return;
    const KeyUse& use = it->second;
    switch (access) {
      case Access::kRead:  // reads run beside reads
        conflict = use.blind > 0 || use.exclusive > 0;
        break;
      case Access::kBlind:  // blind writes beside blind writes, outside linearizable keyspaces
        conflict = use.read > 0 || use.exclusive > 0 || (use.blind > 0 && is_linearizable());
        break;
      default:
        conflict = true;
        break;
    }
  });
  return conflict;
}

}  // namespace cairn::frontdoor::resp
