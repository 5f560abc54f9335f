#include "tools/cli/output.h"

#include <chrono>
#include <ctime>
#include <iostream>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/text.h"

namespace cairn::tools::cli {

void PutBytes(Json& j, const std::string& name, std::string_view bytes) {
  if (base::IsUtf8(bytes)) {
    j[name] = std::string(bytes);
  } else {
    j[name + "_base64"] = base::Base64(bytes);
  }
}

namespace {

uint64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

int ExitCodeFor(const Status& s) {
  switch (s.code()) {
    case Code::kOk:
      return kExitOk;
    case Code::kNotFound:
    case Code::kConditionFailed:
      return kExitNotFound;
    case Code::kInvalidArgument:
    case Code::kTooLarge:
    case Code::kAlreadyExists:
    case Code::kFailedPrecondition:
    case Code::kUnauthenticated:
    case Code::kPermissionDenied:
      return kExitRejected;
    case Code::kUnavailable:
    case Code::kTimeout:
    case Code::kInternal:
      return kExitFailed;
  }
  return kExitFailed;
}

int Fail(const Status& s) {
  std::cerr << "cairn: " << s.ToString() << "\n";
  if (s.code() == Code::kTimeout) {
    std::cerr << "cairn: a timed-out write may or may not have been applied\n";
  }
  return ExitCodeFor(s);
}

void Note(std::string_view message) { std::cerr << "cairn: " << message << "\n"; }

int Reject(std::string_view message) {
  Note(message);
  return kExitRejected;
}

void PrintJson(const Json& j) { std::cout << j.dump() << "\n"; }

std::string Printable(std::string_view bytes) { return base::Printable(bytes); }

std::string IsoTime(uint64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", fmt::gmtime(secs), ms % 1000);
}

Json RecordJson(const std::string& key, const Record& r) {
  Json j;
  PutBytes(j, "key", key);
  PutBytes(j, "value", r.value);
  j["version"] = r.version.ToString();
  j["written_at"] = IsoTime(r.version.Millis());
  j["written_by_node"] = r.version.node;
  if (r.expires_at_ms != 0) {
    j["expires_at"] = IsoTime(r.expires_at_ms);
    const uint64_t now = NowMs();
    j["ttl_ms"] = r.expires_at_ms > now ? r.expires_at_ms - now : 0;
  } else {
    j["expires_at"] = nullptr;
  }
  return j;
}

Json KeyspaceJson(const KeyspaceInfo& k) {
  return Json{{"name", k.name},
              {"id", k.id},
              {"replication", ReplicationText(k.replication)},
              {"read_consistency", std::string(ConsistencyName(k.read_consistency))},
              {"write_consistency", std::string(ConsistencyName(k.write_consistency))},
              {"linearizable", k.linearizable},
              {"auto_split_increments_per_s", k.auto_split_increments_per_s},
              {"auto_split_shards", k.auto_split_shards},
              {"created_at", IsoTime(k.created_at_ms)}};
}

}  // namespace cairn::tools::cli
