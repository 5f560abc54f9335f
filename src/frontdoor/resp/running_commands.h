// The commands of one RESP connection that run on the Coordinator at a time, for the conflict
// checks that let pipelined commands overlap when they touch different keys while commands on
// the same key keep their order.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "frontdoor/resp/command_table.h"

namespace cairn::frontdoor::resp {

// Thread safety: owned by the connection's thread.
class RunningCommands {
 public:
  // Records a command that starts running; returns its sequence number for Remove(). `argv` is
  // owned by the command and outlives its entry; its keys do not change meanwhile.
  uint64_t Add(Access access, const CommandSpec& spec, const std::vector<std::string>* argv);
  // Forgets a finished command, in time proportional to its keys (when indexed) however deep the
  // pipeline is.
  void Remove(uint64_t seq);

  // True when a command with this access and these arguments must wait for one that runs:
  // a whole-keyspace command waits for all and all wait for it; reads run beside reads; blind
  // writes of one key run beside each other (their versions are taken in dispatch order, so the
  // last one wins as if they had run one after another) except in a linearizable keyspace, where
  // each goes through Paxos. `linearizable` is asked at most once, and only when it matters.
  // Cost: one lookup per key of this command (the key index); comparing every key with every
  // key of every running command held the reactor for a second when two DELs of 20,000 keys
  // were pipelined. A command's keys are indexed only when a later command is checked against
  // them, so a lone MGET of 100,000 keys does not pay for an index nobody asks.
  bool Conflicts(Access access, const CommandSpec& spec, const std::vector<std::string>& argv,
                 const std::function<bool()>& linearizable);

  bool empty() const { return running_.empty(); }

 private:
  struct Entry {
    Access access;
    const CommandSpec* spec;
    const std::vector<std::string>* argv;
    bool indexed;  // its keys are in keys_
  };
  // How the running commands use one key (each occurrence of it counted).
  struct KeyUse {
    uint32_t read = 0;
    uint32_t blind = 0;
    uint32_t exclusive = 0;
  };
  // Adds `delta` to the use of each key of `e` (read, blind or exclusive access).
  void Index(const Entry& e, int delta);

  std::unordered_map<uint64_t, Entry> running_;
  // Hashes std::string and std::string_view alike, so a key is looked up without a copy.
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  // The keys of the running reads and writes. Owned copies: a key outlives the command that
  // first named it while a later one still holds it.
  std::unordered_map<std::string, KeyUse, KeyHash, std::equal_to<>> keys_;
  size_t global_ = 0;     // running whole-keyspace commands
  size_t unindexed_ = 0;  // running commands with keys not yet in keys_
  // Of running_, the blind writes and the commands that touch no key: a blind write conflicts
  // with none of them outside linearizable keyspaces (the common case of pipelined SETs).
  size_t blind_or_none_ = 0;
  uint64_t next_seq_ = 0;
};

}  // namespace cairn::frontdoor::resp
