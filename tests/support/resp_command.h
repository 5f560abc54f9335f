// Small pieces the RESP tests share: a command in RESP's wire form, and HOST:PORT split for the
// redis-* programs they drive.
#pragma once

#include <unistd.h>

#include <string>
#include <vector>

namespace cairn::testing {

// `args` as a RESP array of bulk strings, as a client sends a command.
inline std::string Command(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

inline bool HaveProgram(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }
inline std::string Host(const std::string& address) {
  return address.substr(0, address.rfind(':'));
}
inline std::string Port(const std::string& address) {
  return address.substr(address.rfind(':') + 1);
}

}  // namespace cairn::testing
