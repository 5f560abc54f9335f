// Status and Result: how every Cairn API, inside the server and in the client library, reports
// an expected failure. Exceptions never cross a module boundary.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace cairn {

// One table of error codes for the whole system. The numbers are part of the native protocol
// (proto/native.proto mirrors them). Each code says what a caller may do next.
enum class Code : uint8_t {
  kOk = 0,
  // The key (or keyspace, for admin calls) does not exist. Not an error for a read: reads return
  // an empty optional; this code is for places that need a code, such as a CLI exit status.
  kNotFound = 1,
  // A conditional write's condition did not hold. Never retry unchanged.
  kConditionFailed = 2,
  // The request is malformed or names something that does not exist. Never retry unchanged.
  kInvalidArgument = 3,
  // A key, value, batch or frame is over its limit. Never retry unchanged.
  kTooLarge = 4,
  // Create of something that exists. Never retry unchanged.
  kAlreadyExists = 5,
  // Not enough live replicas to try, or the server is shutting down. Nothing was written: retry,
  // preferably elsewhere or later.
  kUnavailable = 6,
  // Tried, but not enough replicas answered before the deadline. A write may or may not have been
  // applied: retry only if the write is idempotent. acks() says how many replicas answered.
  kTimeout = 7,
  // A bug or an I/O failure on the server. The request may be retried; report it.
  kInternal = 8,
  // The cluster is not in a state that allows the request (a node operation that would leave a
  // partition with fewer replicas than its keyspaces need, a node refused by a cluster it does
  // not belong to, a data directory in use). Nothing was done. Fix the state first; retrying
  // unchanged will fail the same way.
  kFailedPrecondition = 9,
  // Authentication is on and the request came before a successful login, or the login itself
  // failed (unknown user or wrong password: the message never says which). Nothing was read or
  // written. Log in, then retry.
  kUnauthenticated = 10,
  // The logged-in user lacks the permission the request needs (docs/security.md). Nothing was
  // read or written. Never retry unchanged: grant the permission first.
  kPermissionDenied = 11,
};

// "OK", "NOT_FOUND", ... as used on the wire docs, in logs and in CLI output.
std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message, uint32_t acks = 0)
      : code_(code), acks_(acks), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status ConditionFailed(std::string m) { return {Code::kConditionFailed, std::move(m)}; }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status TooLarge(std::string m) { return {Code::kTooLarge, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status Timeout(std::string m, uint32_t acks) {
    return {Code::kTimeout, std::move(m), acks};
  }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }
  static Status FailedPrecondition(std::string m) {
    return {Code::kFailedPrecondition, std::move(m)};
  }
  static Status Unauthenticated(std::string m) { return {Code::kUnauthenticated, std::move(m)}; }
  static Status PermissionDenied(std::string m) { return {Code::kPermissionDenied, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // For kTimeout: the number of replicas that acknowledged before the deadline.
  uint32_t acks() const { return acks_; }

  // "TIMEOUT: write timed out (1 of 2 acks)" style text for logs and CLI errors.
  std::string ToString() const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.acks_ == b.acks_ && a.message_ == b.message_;
  }

 private:
  Code code_ = Code::kOk;
  uint32_t acks_ = 0;
  std::string message_;
};

// A status from a code carried on the wire (native or internode protocol). A code this build does
// not know (from a newer peer) is INTERNAL, with the number in the message.
Status StatusFromCode(uint32_t code, std::string message, uint32_t acks = 0);

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  static_assert(!std::is_same_v<std::remove_cvref_t<T>, Status>, "Result<Status> is meaningless");

  // An error until assigned (asio needs default-constructible results for co_spawn).
  Result() : v_(std::in_place_index<0>, Status(Code::kInternal, "no result")) {}
  Result(T value) : v_(std::in_place_index<1>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::in_place_index<0>, std::move(status)) {}  // NOLINT

  bool ok() const { return v_.index() == 1; }
  // The error, or an OK status when a value is held.
  Status status() const { return ok() ? Status() : std::get<0>(v_); }

  T& value() & { return std::get<1>(v_); }
  const T& value() const& { return std::get<1>(v_); }
  T&& value() && { return std::get<1>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<Status, T> v_;
};

}  // namespace cairn
