// Histories of client operations on per-key registers, as recorded by the fault tests, and
// the JSON-lines files they are saved in so that a failing run can be re-checked later.
//
// The model: every key is an independent register holding a value or nothing ("absent").
// Clients read it, write it (a delete writes "absent") and compare-and-set it. An operation
// occupies the real-time interval [call, ret] measured on one clock shared by all clients of
// the run; only the order of the times matters, never their unit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cairn::checkers {

// A register's content: a value, or nullopt for "absent" (never written, or deleted).
using Value = std::optional<std::string>;

enum class OpKind : uint8_t {
  kRead,   // returns the register's value
  kWrite,  // sets it (a delete is a write of absent)
  kCas,    // sets it to `value` iff it holds `expected`; absent is a valid `expected`
};

enum class Outcome : uint8_t {
  // The client got an answer: the op took effect exactly once, somewhere in [call, ret], and
  // the recorded results (a read's value, a CAS's applied flag) are what it answered.
  kOk,
  // No answer (timeout, connection lost): the op may have taken effect once at any point after
  // its call, even long after the client gave up, or never. `ret` and the results are ignored;
  // the checkers treat the return time as +infinity.
  kUnknown,
  // A definite failure that guarantees no effect (e.g. UNAVAILABLE before any replica was
  // tried). The checkers ignore such ops; they are kept so that a saved history is complete.
  kFailed,
};

// One client operation on one key. Which fields mean something depends on `kind`:
//   kRead:  `value` is the value returned (only with kOk).
//   kWrite: `value` is the value written; nullopt for a delete.
//   kCas:   `expected` is the condition, `value` the new value (nullopt: a conditional delete),
//           `applied` the answer (only with kOk), and `current`, when the reply carried it, the
//           value the register held when a CAS was not applied (ignored when applied).
// A CAS on a version rather than a value can be recorded as a CAS on the value that version
// was written with, as long as the workload writes every value only once.
struct Op {
  uint64_t client = 0;
  std::string key;
  OpKind kind = OpKind::kRead;
  Value value;
  Value expected;
  bool applied = false;
  std::optional<Value> current;
  int64_t call = 0;
  int64_t ret = 0;  // must be >= call unless the outcome is kUnknown
  Outcome outcome = Outcome::kOk;

  friend bool operator==(const Op&, const Op&) = default;
};

// Real-time order: `a` precedes `b` iff a.ret < b.call. Ops whose intervals touch (a.ret ==
// b.call) count as concurrent, so a recorder with a coarse clock errs towards accepting.
struct History {
  std::vector<Op> ops;
};

// Returns an empty string when every op of `history` is well formed, else what is wrong with
// the first op that is not (ret before call).
std::string ValidateHistory(const History& history);

// A one-line human description of `op`, e.g. `#12 client 3 cas("a" -> "b") [100, 120] applied`,
// where 12 is `index`, the op's position in its history (in a history file, line index + 2:
// the header comes first).
std::string DescribeOp(const Op& op, size_t index);
// `value` quoted and escaped, or `absent`.
std::string DescribeValue(const Value& value);

// History files: JSON lines. The first line is the header {"format":"cairn-history",
// "version":1}; every further line is one op, in the order of History::ops, e.g.
//   {"client":3,"key":"k","kind":"cas","expected":"a","value":"b","applied":true,
//    "call":100,"return":120,"outcome":"ok"}
// Keys and values are JSON strings when they are valid UTF-8, else {"hex":"..."}; absent is
// null. Fields an op's kind and outcome do not use are left out (and read back as their
// defaults), so an op that only sets meaningful fields survives the round trip exactly. Readers
// accept a missing header (for hand-written files) and skip blank lines.
std::string HistoryToJsonLines(const History& history);
// Parses the text of a history file into `*history`. Returns false and sets `*error` (with the
// line number) when the text is not a well-formed history.
[[nodiscard]] bool HistoryFromJsonLines(std::string_view text, History* history,
                                        std::string* error);

// Writes `history` to the file `path`, replacing it. Returns false and sets `*error` when the
// file cannot be written.
[[nodiscard]] bool SaveHistory(const History& history, const std::string& path, std::string* error);
// Reads the file `path` into `*history`. Returns false and sets `*error` when the file cannot
// be read or is not a well-formed history.
[[nodiscard]] bool LoadHistory(const std::string& path, History* history, std::string* error);

}  // namespace cairn::checkers
