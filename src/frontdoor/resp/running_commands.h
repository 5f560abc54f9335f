// The commands of one RESP connection that run on the Coordinator at a time, for the conflict
// checks that let pipelined commands overlap when they touch different keys while commands on
// the same key keep their order.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "frontdoor/resp/command_table.h"

namespace cairn::frontdoor::resp {

// Thread safety: owned by the connection's thread.
class RunningCommands {
 public:
  // Records a command that starts running; returns its sequence number for Remove(). `argv` is
  // owned by the command and outlives its entry.
  uint64_t Add(Access access, const CommandSpec& spec, const std::vector<std::string>* argv);
  // Forgets a finished command, in constant time however deep the pipeline is.
  void Remove(uint64_t seq);

  // True when a command with this access and these arguments must wait for one that runs:
  // a whole-keyspace command waits for all and all wait for it; reads run beside reads; blind
  // writes of one key run beside each other (their versions are taken in dispatch order, so the
  // last one wins as if they had run one after another) except in a linearizable keyspace, where
  // each goes through Paxos. `linearizable` is asked at most once, and only when it matters.
  bool Conflicts(Access access, const CommandSpec& spec, const std::vector<std::string>& argv,
                 const std::function<bool()>& linearizable) const;

  bool empty() const { return running_.empty(); }

 private:
  struct Entry {
    Access access;
    const CommandSpec* spec;
    const std::vector<std::string>* argv;
  };
  std::unordered_map<uint64_t, Entry> running_;
  // Of running_, the blind writes and the commands that touch no key: a blind write conflicts
  // with none of them outside linearizable keyspaces (the common case of pipelined SETs).
  size_t blind_or_none_ = 0;
  uint64_t next_seq_ = 0;
};

}  // namespace cairn::frontdoor::resp
