// How `cairn` answers: exit codes, error lines on stderr, and records and keyspaces as JSON
// (--json) or as text. Every subcommand prints through these, so the formats in docs/cli.md are
// written once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "cairn/client.h"

namespace cairn::tools::cli {

// Keys in the order they were set, as docs/cli.md shows them.
using Json = nlohmann::ordered_json;

// The exit codes (docs/cli.md): a script branches on them.
constexpr int kExitOk = 0;
constexpr int kExitNotFound = 1;  // the key is absent, or a condition did not hold
constexpr int kExitRejected = 2;  // a usage error, or the server refused the request as it is
constexpr int kExitFailed = 3;    // unavailable, timed out or a server error: may work later

int ExitCodeFor(const Status& s);

// Prints "cairn: <code>: <message>" to stderr (and, for a timeout, that a write may have
// applied); returns ExitCodeFor(s).
int Fail(const Status& s);
// Prints "cairn: <message>" to stderr.
void Note(std::string_view message);
// Note(message); returns kExitRejected.
int Reject(std::string_view message);

void PrintJson(const Json& j);

// Bytes as a JSON field: `name` when they are UTF-8 text, else `name_base64`.
void PutBytes(Json& j, const std::string& name, std::string_view bytes);
// Bytes for a terminal line: printable ASCII as is, the rest as \xNN.
std::string Printable(std::string_view bytes);
// Unix milliseconds as 2024-06-17T16:37:41.123Z.
std::string IsoTime(uint64_t ms);

// A record as JSON: key, value (base64 when not UTF-8), version, when and by which node it was
// written, when it expires.
Json RecordJson(const std::string& key, const Record& r);
Json KeyspaceJson(const KeyspaceInfo& k);

}  // namespace cairn::tools::cli
