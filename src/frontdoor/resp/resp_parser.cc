#include "frontdoor/resp/resp_parser.h"

#include <algorithm>
#include <cstring>

#include "base/text.h"

namespace cairn::frontdoor::resp {

namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f';
}

}  // namespace

std::optional<std::vector<std::string>> SplitArgs(std::string_view line) {
  std::vector<std::string> args;
  size_t i = 0;
  const size_t n = line.size();
  while (true) {
    while (i < n && IsSpace(line[i])) ++i;
    if (i == n) return args;
    bool in_double = false;
    bool in_single = false;
    bool done = false;
    std::string current;
    while (!done) {
      if (in_double) {
        if (i == n) return std::nullopt;  // unterminated quotes
        if (line[i] == '\\' && i + 3 < n && line[i + 1] == 'x' &&
            base::HexDigit(line[i + 2]) >= 0 && base::HexDigit(line[i + 3]) >= 0) {
          current.push_back(
              static_cast<char>(base::HexDigit(line[i + 2]) * 16 + base::HexDigit(line[i + 3])));
          i += 3;
        } else if (line[i] == '\\' && i + 1 < n) {
          ++i;
          char c = line[i];
          switch (c) {
            case 'n':
              c = '\n';
              break;
            case 'r':
              c = '\r';
              break;
            case 't':
              c = '\t';
              break;
            case 'b':
              c = '\b';
              break;
            case 'a':
              c = '\a';
              break;
            default:
              break;
          }
          current.push_back(c);
        } else if (line[i] == '"') {
          // The closing quote must be followed by a space or nothing.
          if (i + 1 < n && !IsSpace(line[i + 1])) return std::nullopt;
          done = true;
        } else {
          current.push_back(line[i]);
        }
      } else if (in_single) {
        if (i == n) return std::nullopt;
        if (line[i] == '\\' && i + 1 < n && line[i + 1] == '\'') {
          ++i;
          current.push_back('\'');
        } else if (line[i] == '\'') {
          if (i + 1 < n && !IsSpace(line[i + 1])) return std::nullopt;
          done = true;
        } else {
          current.push_back(line[i]);
        }
      } else {
        if (i == n) {
          done = true;
          break;
        }
        switch (line[i]) {
          case ' ':
          case '\n':
          case '\r':
          case '\t':
          case '\0':
            done = true;
            break;
          case '"':
            in_double = true;
            break;
          case '\'':
            in_single = true;
            break;
          default:
            current.push_back(line[i]);
            break;
        }
      }
      if (i < n) ++i;
    }
    args.push_back(std::move(current));
  }
}

char* RequestParser::Prepare(size_t n) {
  Compact();
  if (capacity_ - end_ < n) {
    // Grow geometrically, keeping only the unparsed bytes.
    const size_t want = std::max(end_ - pos_ + n, 2 * capacity_);
    std::unique_ptr<char[]> bigger(new char[want]);  // not zero-filled
    if (end_ > pos_) std::memcpy(bigger.get(), buffer_.get() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
    buffer_ = std::move(bigger);
    capacity_ = want;
  }
  return buffer_.get() + end_;
}

// An idle connection keeps a buffer up to this size.
constexpr size_t kKeepBytes = size_t{1} << 20;

void RequestParser::Compact() {
  if (pos_ == 0) return;
  if (pos_ == end_) {
    pos_ = end_ = 0;
    if (capacity_ > kKeepBytes) {  // after a large command, give the memory back
      buffer_.reset();
      capacity_ = 0;
    }
    return;
  }
  // Move the unparsed tail to the front only when it is small next to what was consumed, so a
  // large bulk string arriving in many reads is not copied over and over.
  if (end_ - pos_ <= pos_) {
    std::memmove(buffer_.get(), buffer_.get() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
  }
}

RequestParser::Outcome RequestParser::Fail(std::string message) {
  failed_ = true;
  error_ = std::move(message);
  pending_.clear();
  return Outcome::kError;
}

RequestParser::Outcome RequestParser::Next(std::vector<std::string>* argv) {
  if (failed_) return Outcome::kError;
  while (true) {
    if (pos_ == end_) return Outcome::kNeedMore;
    Outcome o = (multibulk_remaining_ > 0 || buffer_[pos_] == '*') ? ParseMultibulk(argv)
                                                                   : ParseInline(argv);
    if (o != Outcome::kCommand || !argv->empty()) return o;
    // An empty line or an empty array: nothing to run; look further.
  }
}

RequestParser::Outcome RequestParser::ParseInline(std::vector<std::string>* argv) {
  const char* start = buffer_.get() + pos_;
  const char* nl = static_cast<const char*>(std::memchr(start, '\n', end_ - pos_));
  if (nl == nullptr) {
    if (end_ - pos_ > limits_.max_inline_bytes) {
      return Fail("ERR Protocol error: too big inline request");
    }
    return Outcome::kNeedMore;
  }
  size_t len = static_cast<size_t>(nl - start);
  const size_t consumed = len + 1;
  if (len > 0 && start[len - 1] == '\r') --len;
  auto args = SplitArgs(std::string_view(start, len));
  if (!args) return Fail("ERR Protocol error: unbalanced quotes in request");
  pos_ += consumed;
  *argv = std::move(*args);
  return Outcome::kCommand;
}

RequestParser::Outcome RequestParser::ParseMultibulk(std::vector<std::string>* argv) {
  if (multibulk_remaining_ == 0) {
    // The "*<count>\r\n" header.
    const char* start = buffer_.get() + pos_;
    const char* cr = static_cast<const char*>(std::memchr(start, '\r', end_ - pos_));
    if (cr == nullptr) {
      if (end_ - pos_ > limits_.max_inline_bytes) {
        return Fail("ERR Protocol error: too big mbulk count string");
      }
      return Outcome::kNeedMore;
    }
    if (static_cast<size_t>(cr - start) + 2 > end_ - pos_) return Outcome::kNeedMore;  // "\n"
    auto count = ParseInt64(std::string_view(start + 1, static_cast<size_t>(cr - start - 1)));
    if (!count || *count > limits_.max_multibulk_count) {
      return Fail("ERR Protocol error: invalid multibulk length");
    }
    if (*count > 10 && !authenticated_) {
      return Fail("ERR Protocol error: unauthenticated multibulk length");
    }
    pos_ += static_cast<size_t>(cr - start) + 2;
    if (*count <= 0) {
      argv->clear();
      return Outcome::kCommand;  // skipped by Next()
    }
    multibulk_remaining_ = *count;
    pending_.clear();
    pending_.reserve(static_cast<size_t>(std::min<int64_t>(*count, 1024)));
    command_bytes_ = 0;
    bulk_len_ = -1;
  }
  while (multibulk_remaining_ > 0) {
    if (bulk_len_ == -1) {
      if (pos_ == end_) return Outcome::kNeedMore;
      const char* start = buffer_.get() + pos_;
      const char* cr = static_cast<const char*>(std::memchr(start, '\r', end_ - pos_));
      if (cr == nullptr) {
        if (end_ - pos_ > limits_.max_inline_bytes) {
          return Fail("ERR Protocol error: too big bulk count string");
        }
        return Outcome::kNeedMore;
      }
      if (static_cast<size_t>(cr - start) + 2 > end_ - pos_) return Outcome::kNeedMore;
      if (start[0] != '$') {
        return Fail(std::string("ERR Protocol error: expected '$', got '") + start[0] + "'");
      }
      auto len = ParseInt64(std::string_view(start + 1, static_cast<size_t>(cr - start - 1)));
      if (!len || *len < 0 || *len > limits_.max_bulk_bytes) {
        return Fail("ERR Protocol error: invalid bulk length");
      }
      if (*len > 16384 && !authenticated_) {
        return Fail("ERR Protocol error: unauthenticated bulk length");
      }
      command_bytes_ += static_cast<size_t>(*len);
      if (command_bytes_ > limits_.max_command_bytes) return Fail("");
      if (command_bytes_ > limits_.max_budget_bytes) {
        over_budget_ = true;
        return Fail("ERR request of over " + std::to_string(command_bytes_) +
                    " bytes refused: this node's request memory budget allows " +
                    std::to_string(limits_.max_budget_bytes) +
                    " bytes per connection (--max-request-memory-mb)");
      }
      pos_ += static_cast<size_t>(cr - start) + 2;
      bulk_len_ = *len;
    }
    const size_t need = static_cast<size_t>(bulk_len_) + 2;
    // Nothing is reserved for the announced length: the bytes must arrive first.
    if (end_ - pos_ < need) return Outcome::kNeedMore;
    pending_.emplace_back(buffer_.get() + pos_, static_cast<size_t>(bulk_len_));
    pos_ += need;
    bulk_len_ = -1;
    --multibulk_remaining_;
  }
  *argv = std::move(pending_);
  pending_.clear();
  return Outcome::kCommand;
}

}  // namespace cairn::frontdoor::resp
