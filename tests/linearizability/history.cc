#include "tests/linearizability/history.h"

#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace cairn::checkers {
namespace {

using nlohmann::json;

constexpr std::string_view kFormat = "cairn-history";
constexpr int kFormatVersion = 1;
// Descriptions show at most this many bytes of a value: values may be megabytes long.
constexpr size_t kDescribedBytes = 48;

std::string_view KindName(OpKind kind) {
  switch (kind) {
    case OpKind::kRead:
      return "read";
    case OpKind::kWrite:
      return "write";
    case OpKind::kCas:
      return "cas";
  }
  return "?";
}

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kUnknown:
      return "unknown";
    case Outcome::kFailed:
      return "failed";
  }
  return "?";
}

// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF), which is what a JSON string may carry.
bool IsUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

json BytesToJson(const std::string& bytes) {
  if (IsUtf8(bytes)) return bytes;
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) fmt::format_to(std::back_inserter(hex), "{:02x}", c);
  return json{{"hex", hex}};
}

json ValueToJson(const Value& value) { return value ? BytesToJson(*value) : json(nullptr); }

// The inverse of BytesToJson. Returns false when `j` is neither form.
bool BytesFromJson(const json& j, std::string* out) {
  if (j.is_string()) {
    *out = j.get<std::string>();
    return true;
  }
  if (!j.is_object() || j.size() != 1 || !j.contains("hex") || !j["hex"].is_string()) return false;
  const std::string& hex = j["hex"].get_ref<const std::string&>();
  if (hex.size() % 2 != 0) return false;
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    unsigned byte = 0;
    for (size_t k = 0; k < 2; ++k) {
      const char c = hex[i + k];
      unsigned nibble;
      if (c >= '0' && c <= '9') {
        nibble = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        nibble = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        nibble = c - 'A' + 10;
      } else {
        return false;
      }
      byte = byte * 16 + nibble;
    }
    out->push_back(static_cast<char>(byte));
  }
  return true;
}

bool ValueFromJson(const json& j, Value* out) {
  if (j.is_null()) {
    out->reset();
    return true;
  }
  std::string bytes;
  if (!BytesFromJson(j, &bytes)) return false;
  *out = std::move(bytes);
  return true;
}

json OpToJson(const Op& op) {
  json j = {{"client", op.client}, {"key", BytesToJson(op.key)}, {"kind", KindName(op.kind)}};
  const bool answered = op.outcome == Outcome::kOk;
  switch (op.kind) {
    case OpKind::kRead:
      if (answered) j["value"] = ValueToJson(op.value);
      break;
    case OpKind::kWrite:
      j["value"] = ValueToJson(op.value);
      break;
    case OpKind::kCas:
      j["expected"] = ValueToJson(op.expected);
      j["value"] = ValueToJson(op.value);
      if (answered) j["applied"] = op.applied;
      if (answered && op.current) j["current"] = ValueToJson(*op.current);
      break;
  }
  j["call"] = op.call;
  j["return"] = op.ret;
  j["outcome"] = OutcomeName(op.outcome);
  return j;
}

// Parses one op line into `*op`; returns an empty string or what is wrong with it.
std::string OpFromJson(const json& j, Op* op) {
  if (!j.is_object()) return "not a JSON object";
  *op = Op();
  auto integer = [&](const char* name, int64_t* out) -> std::string {
    if (!j.contains(name)) return fmt::format("no \"{}\"", name);
    const json& v = j[name];
    if (!v.is_number_integer() ||
        (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))) {
      return fmt::format("\"{}\" is not a 64-bit integer", name);
    }
    *out = v.get<int64_t>();
    return "";
  };
  auto value = [&](const char* name, Value* out) -> std::string {
    if (!j.contains(name)) return fmt::format("no \"{}\"", name);
    if (!ValueFromJson(j[name], out)) return fmt::format("\"{}\" is not a value", name);
    return "";
  };
  std::string error;
  if (!j.contains("client") || !j["client"].is_number_unsigned()) return "no \"client\" number";
  op->client = j["client"].get<uint64_t>();
  if (!j.contains("key") || !BytesFromJson(j["key"], &op->key)) return "no \"key\" string";
  if (!j.contains("kind") || !j["kind"].is_string()) return "no \"kind\" string";
  if (!j.contains("outcome") || !j["outcome"].is_string()) return "no \"outcome\" string";
  const std::string& kind = j["kind"].get_ref<const std::string&>();
  const std::string& outcome = j["outcome"].get_ref<const std::string&>();
  if (outcome == "ok") {
    op->outcome = Outcome::kOk;
  } else if (outcome == "unknown") {
    op->outcome = Outcome::kUnknown;
  } else if (outcome == "failed") {
    op->outcome = Outcome::kFailed;
  } else {
    return fmt::format("unknown outcome \"{}\"", outcome);
  }
  const bool answered = op->outcome == Outcome::kOk;
  if (!(error = integer("call", &op->call)).empty()) return error;
  if (j.contains("return") || op->outcome != Outcome::kUnknown) {
    if (!(error = integer("return", &op->ret)).empty()) return error;
  } else {
    op->ret = op->call;
  }
  if (kind == "read") {
    op->kind = OpKind::kRead;
    if (answered && !(error = value("value", &op->value)).empty()) return error;
  } else if (kind == "write") {
    op->kind = OpKind::kWrite;
    if (!(error = value("value", &op->value)).empty()) return error;
  } else if (kind == "cas") {
    op->kind = OpKind::kCas;
    if (!(error = value("expected", &op->expected)).empty()) return error;
    if (!(error = value("value", &op->value)).empty()) return error;
    if (answered) {
      if (!j.contains("applied") || !j["applied"].is_boolean()) return "no \"applied\" boolean";
      op->applied = j["applied"].get<bool>();
      if (j.contains("current")) {
        Value current;
        if (!(error = value("current", &current)).empty()) return error;
        op->current = std::move(current);
      }
    }
  } else {
    return fmt::format("unknown kind \"{}\"", kind);
  }
  return "";
}

}  // namespace

std::string ValidateHistory(const History& history) {
  for (size_t i = 0; i < history.ops.size(); ++i) {
    const Op& op = history.ops[i];
    if (op.outcome != Outcome::kUnknown && op.ret < op.call) {
      return fmt::format("{}: returns before it is called", DescribeOp(op, i));
    }
  }
  return "";
}

std::string DescribeValue(const Value& value) {
  if (!value) return "absent";
  std::string out = "\"";
  const size_t shown = std::min(value->size(), kDescribedBytes);
  for (size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>((*value)[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7F) {
      fmt::format_to(std::back_inserter(out), "\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  if (shown < value->size())
    fmt::format_to(std::back_inserter(out), "...({} bytes)", value->size());
  return out;
}

std::string DescribeOp(const Op& op, size_t index) {
  std::string what;
  switch (op.kind) {
    case OpKind::kRead:
      what = op.outcome == Outcome::kOk ? fmt::format("read -> {}", DescribeValue(op.value))
                                        : std::string("read");
      break;
    case OpKind::kWrite:
      what = fmt::format("write({})", DescribeValue(op.value));
      break;
    case OpKind::kCas:
      what = fmt::format("cas({} -> {})", DescribeValue(op.expected), DescribeValue(op.value));
      if (op.outcome == Outcome::kOk) {
        what += op.applied ? " applied" : " not applied";
        if (!op.applied && op.current)
          what += fmt::format(", current {}", DescribeValue(*op.current));
      }
      break;
  }
  std::string when;
  switch (op.outcome) {
    case Outcome::kOk:
      when = fmt::format("[{}, {}]", op.call, op.ret);
      break;
    case Outcome::kUnknown:
      when = fmt::format("[{}, ?] outcome unknown", op.call);
      break;
    case Outcome::kFailed:
      when = fmt::format("[{}, {}] failed", op.call, op.ret);
      break;
  }
  return fmt::format("#{} client {} {} {}", index, op.client, what, when);
}

std::string HistoryToJsonLines(const History& history) {
  std::string out = json{{"format", kFormat}, {"version", kFormatVersion}}.dump();
  out += '\n';
  for (const Op& op : history.ops) {
    out += OpToJson(op).dump();
    out += '\n';
  }
  return out;
}

bool HistoryFromJsonLines(std::string_view text, History* history, std::string* error) {
  history->ops.clear();
  size_t line_number = 0;
  bool first = true;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      *error = fmt::format("line {}: not JSON", line_number);
      return false;
    }
    if (first && j.is_object() && j.contains("format")) {
      first = false;
      if (j["format"] != kFormat || !j.contains("version") || j["version"] != kFormatVersion) {
        *error =
            fmt::format("line {}: not a version {} {} file", line_number, kFormatVersion, kFormat);
        return false;
      }
      continue;
    }
    first = false;
    Op op;
    if (std::string why = OpFromJson(j, &op); !why.empty()) {
      *error = fmt::format("line {}: {}", line_number, why);
      return false;
    }
    history->ops.push_back(std::move(op));
  }
  return true;
}

bool SaveHistory(const History& history, const std::string& path, std::string* error) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (out) out << HistoryToJsonLines(history);
  out.flush();
  if (!out) {
    *error = fmt::format("cannot write {}", path);
    return false;
  }
  return true;
}

bool LoadHistory(const std::string& path, History* history, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  if (!in) {
    *error = fmt::format("cannot read {}", path);
    return false;
  }
  if (!HistoryFromJsonLines(text.str(), history, error)) {
    *error = fmt::format("{}: {}", path, *error);
    return false;
  }
  return true;
}

}  // namespace cairn::checkers
