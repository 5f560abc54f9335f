#include "cairn/status.h"

#include <fmt/format.h>

namespace cairn {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kNotFound:
      return "NOT_FOUND";
    case Code::kConditionFailed:
      return "CONDITION_FAILED";
    case Code::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case Code::kTooLarge:
      return "TOO_LARGE";
    case Code::kAlreadyExists:
      return "ALREADY_EXISTS";
    case Code::kUnavailable:
      return "UNAVAILABLE";
    case Code::kTimeout:
      return "TIMEOUT";
    case Code::kInternal:
      return "INTERNAL";
  }
  return "UNKNOWN";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out = fmt::format("{}: {}", CodeName(code_), message_);
  if (code_ == Code::kTimeout) {
    out += fmt::format(" ({} ack{})", acks_, acks_ == 1 ? "" : "s");
  }
  return out;
}

}  // namespace cairn
