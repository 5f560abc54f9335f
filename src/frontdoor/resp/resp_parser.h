// The RESP request parser: turns the bytes a Redis client sends (multibulk arrays of bulk strings,
// or inline commands typed into telnet) into argument vectors, with Redis's limits and Redis's
// exact error texts, since clients and tools match on them. The input is untrusted: every length
// is checked before anything is allocated for it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/counter.h"

namespace cairn::frontdoor::resp {

struct ParserLimits {
  // Longest inline command, and longest "*N" / "$N" header line (Redis: PROTO_INLINE_MAX_SIZE).
  size_t max_inline_bytes = 64 * 1024;
  // Most arguments in one multibulk command (above it: "invalid multibulk length").
  int64_t max_multibulk_count = 1024 * 1024;
  // Largest bulk string (above it: "invalid bulk length"; Redis's proto-max-bulk-len).
  int64_t max_bulk_bytes = int64_t{512} << 20;
  // Most bytes of arguments one command may hold in total (the query buffer limit).
  size_t max_command_bytes = size_t{1} << 30;
  // Most bytes of arguments the node's request memory budget lets one command hold: above it the
  // command is refused with an error that says so (base/memory_budget.h).
  size_t max_budget_bytes = SIZE_MAX;
};

// Parses one connection's byte stream. Feed bytes with Append() (or write into Prepare() and
// Commit()), then call Next() until it returns kNeedMore or kError. After kError the connection
// is to be closed once the error reply (error_message(), without the leading '-') is sent:
// the stream cannot be resynchronised. Not thread safe; one per connection.
class RequestParser {
 public:
  enum class Outcome { kCommand, kNeedMore, kError };

  explicit RequestParser(ParserLimits limits = {}) : limits_(limits) {}

  void Append(std::string_view bytes) {
    std::memcpy(Prepare(bytes.size()), bytes.data(), bytes.size());
    Commit(bytes.size());
  }
  // Space for at least `n` more bytes at the end of the buffer; Commit() says how many were
  // written.
  char* Prepare(size_t n);
  void Commit(size_t n) { end_ += n; }

  // Parses the next complete command into `argv` (replacing its contents). Empty inline lines
  // and "*0" / "*-1" arrays are skipped, as Redis does.
  Outcome Next(std::vector<std::string>* argv);

  // While false (a password is required and the client has not authenticated yet), commands are
  // held to 10 arguments of at most 16 KiB each, as in Redis.
  void set_authenticated(bool yes) { authenticated_ = yes; }

  // The error reply (without the leading '-'); empty when the connection is to be closed
  // without one (a command over max_command_bytes, as Redis does for its query buffer limit).
  const std::string& error_message() const { return error_; }
  // Bytes received but not yet consumed by a complete command.
  size_t buffered() const { return end_ - pos_; }
  // Whether the error was a command over ParserLimits::max_budget_bytes.
  bool over_budget() const { return over_budget_; }

 private:
  Outcome Fail(std::string message);
  Outcome ParseInline(std::vector<std::string>* argv);
  Outcome ParseMultibulk(std::vector<std::string>* argv);
  void Compact();

  const ParserLimits limits_;
  // Bytes [pos_, end_) are unparsed; [end_, capacity_) is room for the next read. Not a string:
  // growing one would zero-fill the room on every read.
  std::unique_ptr<char[]> buffer_;
  size_t capacity_ = 0;
  size_t pos_ = 0;
  size_t end_ = 0;
  // A multibulk command in progress (arguments parsed so far).
  int64_t multibulk_remaining_ = 0;
  int64_t bulk_len_ = -1;  // the length of the bulk string being read, -1 before its header
  size_t command_bytes_ = 0;
  std::vector<std::string> pending_;
  std::string error_;
  bool failed_ = false;
  bool over_budget_ = false;
  bool authenticated_ = true;
};

// Redis's string2ll (base/counter.h).
using base::ParseInt64;

// Redis's sdssplitargs: splits an inline command line into arguments, honouring "double quotes"
// (with \n \r \t \b \a \\ \" \xHH escapes) and 'single quotes' (with \'). nullopt for unbalanced
// quotes or a closing quote not followed by a space.
std::optional<std::vector<std::string>> SplitArgs(std::string_view line);

}  // namespace cairn::frontdoor::resp
