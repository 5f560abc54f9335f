#include "frontdoor/resp/commands.h"

#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "frontdoor/resp/command_table.h"
#include "frontdoor/resp/running_commands.h"

namespace cairn::frontdoor::resp {
namespace {

Access Of(std::string_view name, const std::vector<std::string>& argv) {
  const CommandSpec* spec = FindCommand(name);
  return spec ? AccessOf(*spec, argv) : Access::kNone;
}

// Which pipelined commands may overlap depends on this classification: a plain SET (with at
// most a relative or absolute expiry) overwrites blindly; any condition makes it read first.
TEST(AccessOfTest, PlainSetIsBlindConditionalSetIsExclusive) {
  EXPECT_EQ(Of("set", {"SET", "k", "v"}), Access::kBlind);
  EXPECT_EQ(Of("set", {"SET", "k", "v", "EX", "10"}), Access::kBlind);
  EXPECT_EQ(Of("set", {"SET", "k", "v", "pxat", "123"}), Access::kBlind);
  EXPECT_EQ(Of("set", {"SET", "k", "v", "NX"}), Access::kExclusive);
  EXPECT_EQ(Of("set", {"SET", "k", "v", "EX", "10", "GET"}), Access::kExclusive);
  EXPECT_EQ(Of("set", {"SET", "k", "v", "KEEPTTL"}), Access::kExclusive);
  EXPECT_EQ(Of("set", {"SET", "k", "v", "IFEQ", "x"}), Access::kExclusive);
  // An option value that looks like a condition is not one.
  EXPECT_EQ(Of("set", {"SET", "k", "v", "EX", "NX"}), Access::kBlind);
}

TEST(AccessOfTest, OtherCommands) {
  EXPECT_EQ(Of("get", {"GET", "k"}), Access::kRead);
  EXPECT_EQ(Of("mget", {"MGET", "a", "b"}), Access::kRead);
  EXPECT_EQ(Of("mset", {"MSET", "a", "1"}), Access::kBlind);
  EXPECT_EQ(Of("incr", {"INCR", "k"}), Access::kExclusive);
  EXPECT_EQ(Of("del", {"DEL", "k"}), Access::kExclusive);
  EXPECT_EQ(Of("scan", {"SCAN", "0"}), Access::kGlobal);
  EXPECT_EQ(Of("flushdb", {"FLUSHDB"}), Access::kGlobal);
  EXPECT_EQ(FindCommand("nosuch"), nullptr);
  ASSERT_NE(FindCommand("incrbyfloat"), nullptr);
  EXPECT_NE(FindCommand("incrbyfloat")->run, nullptr);
}

// The table is the only declaration of a command: each entry must be usable by every consumer.
TEST(CommandTableTest, EveryEntryIsComplete) {
  std::set<std::string_view> names;
  for (const CommandSpec& c : AllCommands()) {
    SCOPED_TRACE(std::string(c.name));
    EXPECT_TRUE(names.insert(c.name).second) << "declared twice";
    EXPECT_EQ(AsciiLower(c.name), c.name);
    EXPECT_EQ(FindCommand(c.name), &c);
    EXPECT_TRUE(c.run != nullptr || c.run_at_once != nullptr) << "no handler";
    EXPECT_NE(c.arity, 0);
    EXPECT_FALSE(c.summary.empty());
    EXPECT_FALSE(FlagNames(c.flags).empty());
    if (c.first_key > 0) {
      EXPECT_GT(c.step, 0);
      EXPECT_NE(c.run, nullptr) << "a command with keys runs on the Coordinator";
      EXPECT_NE(c.access, Access::kNone);
      EXPECT_NE(c.access, Access::kGlobal);
    } else if (c.run != nullptr && c.run_at_once == nullptr) {
      EXPECT_EQ(c.access, Access::kGlobal) << "a data command without keys spans the keyspace";
    }
    if (c.run == nullptr) {
      EXPECT_EQ(c.access, Access::kNone);
    }
  }
}

TEST(CommandTableTest, KeysByPosition) {
  std::vector<std::string> keys;
  const std::vector<std::string> mset = {"MSET", "a", "1", "b", "2"};
  ForEachKey(*FindCommand("mset"), mset, [&](const std::string& k) { keys.push_back(k); });
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "b"}));
  keys.clear();
  const std::vector<std::string> del = {"DEL", "a", "b", "c"};
  ForEachKey(*FindCommand("del"), del, [&](const std::string& k) { keys.push_back(k); });
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "b", "c"}));
  keys.clear();
  ForEachKey(*FindCommand("ping"), {"PING", "x"}, [&](const std::string& k) { keys.push_back(k); });
  EXPECT_TRUE(keys.empty());
}

TEST(CommandTableTest, CountedInMetricsByWhatTheCallDoes) {
  using base::metrics::Operation;
  const CommandSpec& set = *FindCommand("set");
  EXPECT_EQ(OperationOf(set, Access::kBlind), Operation::kPut);
  EXPECT_EQ(OperationOf(set, Access::kExclusive), Operation::kCas);
  EXPECT_EQ(OperationOf(*FindCommand("getdel"), Access::kExclusive), Operation::kDelete);
  EXPECT_EQ(OperationOf(*FindCommand("keys"), Access::kGlobal), Operation::kScan);
}

TEST(RunningCommandsTest, SameKeyWaitsOtherKeysOverlap) {
  RunningCommands running;
  const std::vector<std::string> incr_a = {"INCR", "a"};
  const uint64_t seq = running.Add(Access::kExclusive, *FindCommand("incr"), &incr_a);
  auto never = [] { return false; };
  EXPECT_TRUE(running.Conflicts(Access::kRead, *FindCommand("get"), {"GET", "a"}, never));
  EXPECT_FALSE(running.Conflicts(Access::kRead, *FindCommand("get"), {"GET", "b"}, never));
  EXPECT_TRUE(running.Conflicts(Access::kGlobal, *FindCommand("keys"), {"KEYS", "*"}, never));
  EXPECT_FALSE(running.Conflicts(Access::kNone, *FindCommand("info"), {"INFO"}, never));
  running.Remove(seq);
  EXPECT_TRUE(running.empty());
  EXPECT_FALSE(running.Conflicts(Access::kGlobal, *FindCommand("keys"), {"KEYS", "*"}, never));
}

TEST(RunningCommandsTest, BlindWritesOfOneKeyOverlapUnlessLinearizable) {
  RunningCommands running;
  const std::vector<std::string> set_a = {"SET", "a", "1"};
  running.Add(Access::kBlind, *FindCommand("set"), &set_a);
  const std::vector<std::string> again = {"SET", "a", "2"};
  int asked = 0;
  auto no = [&] { return ++asked, false; };
  auto yes = [&] { return ++asked, true; };
  EXPECT_FALSE(running.Conflicts(Access::kBlind, *FindCommand("set"), again, no));
  EXPECT_TRUE(running.Conflicts(Access::kBlind, *FindCommand("set"), again, yes));
  EXPECT_EQ(asked, 2);  // at most once per check
  EXPECT_TRUE(running.Conflicts(Access::kExclusive, *FindCommand("incr"), {"INCR", "a"}, no));
}

// The key index counts each running command's use of a key: a key stays taken until the last
// command on it has finished, and a key named twice by one command is released once it ends.
TEST(RunningCommandsTest, AKeyIsTakenUntilItsLastCommandEnds) {
  RunningCommands running;
  auto never = [] { return false; };
  const std::vector<std::string> del_ab = {"DEL", "a", "b", "a"};
  const std::vector<std::string> get_b = {"GET", "b"};
  const uint64_t del = running.Add(Access::kExclusive, *FindCommand("del"), &del_ab);
  const uint64_t get = running.Add(Access::kRead, *FindCommand("get"), &get_b);
  EXPECT_TRUE(running.Conflicts(Access::kBlind, *FindCommand("set"), {"SET", "a", "1"}, never));
  running.Remove(del);
  EXPECT_FALSE(running.Conflicts(Access::kBlind, *FindCommand("set"), {"SET", "a", "1"}, never));
  EXPECT_FALSE(running.Conflicts(Access::kRead, *FindCommand("get"), {"GET", "b"}, never));
  EXPECT_TRUE(running.Conflicts(Access::kBlind, *FindCommand("set"), {"SET", "b", "1"}, never));
  running.Remove(get);
  EXPECT_FALSE(running.Conflicts(Access::kExclusive, *FindCommand("del"), del_ab, never));
}

// Regression: the index held views into the argv of the command that first named a key; when
// that command ended before another one on the key, the view dangled, and depending on what
// reused the memory a key stayed taken forever (a pipelined write after it hung: found by
// fuzz.resp_diff) or was missed. Under ASan the old index fails here with a use after free.
TEST(RunningCommandsTest, AKeyOutlivesTheCommandThatFirstNamedIt) {
  RunningCommands running;
  auto never = [] { return false; };
  auto first = std::make_unique<std::vector<std::string>>(std::vector<std::string>{"GET", "k"});
  auto second = std::make_unique<std::vector<std::string>>(std::vector<std::string>{"GET", "k"});
  const uint64_t a = running.Add(Access::kRead, *FindCommand("get"), first.get());
  const uint64_t b = running.Add(Access::kRead, *FindCommand("get"), second.get());
  running.Remove(a);
  first.reset();
  EXPECT_TRUE(running.Conflicts(Access::kExclusive, *FindCommand("incr"), {"INCR", "k"}, never));
  running.Remove(b);
  second.reset();
  EXPECT_FALSE(running.Conflicts(Access::kExclusive, *FindCommand("incr"), {"INCR", "k"}, never));
}

TEST(ErrorTextTest, CodesCallersBranchOn) {
  EXPECT_EQ(ErrorText(Status::InvalidArgument("bad key")), "ERR bad key");
  EXPECT_EQ(ErrorText(Status::Unavailable("2 of 3 replicas are down")),
            "UNAVAILABLE 2 of 3 replicas are down");
  EXPECT_EQ(ErrorText(Status::Timeout("late", 1)),
            "TIMEOUT late (1 acknowledged; a write may or may not have applied)");
}

}  // namespace
}  // namespace cairn::frontdoor::resp
