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
    case Code::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case Code::kUnauthenticated:
      return "UNAUTHENTICATED";
    case Code::kPermissionDenied:
      return "PERMISSION_DENIED";
  }
  return "UNKNOWN";
}

Status StatusFromCode(uint32_t code, std::string message, uint32_t acks) {
  if (code == 0) return Status::Ok();
  if (code > static_cast<uint32_t>(Code::kPermissionDenied)) {
    return Status::Internal(
        fmt::format("error code {} (unknown to this version): {}", code, message));
  }
  return Status(static_cast<Code>(code), std::move(message), acks);
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
