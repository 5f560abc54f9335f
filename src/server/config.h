// cairnd's configuration file: every command-line option of cairnd has a key in a TOML file, named
// as the flag without its dashes (`--gossip-interval-ms 500` is `gossip-interval-ms = 500`).
// The keys come from the CLI11 option table itself, so a flag added to main.cc has its key with no
// further code. Flags given on the command line override the file. docs/operations.md is the
// user-facing contract.
//
// CLI11 is a heavy header: only config.cc includes it besides main.cc.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/status.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace cairn::server {

// Thread safety: none needed; used once, at start-up, from main().
class ConfigFile {
 public:
  // Adds `--config FILE` and `--print-config` to `app`, whose other options must all be added
  // already. Options marked required() are relaxed for the parse, since the file may hold them;
  // Apply() checks them once the file is read.
  explicit ConfigFile(CLI::App& app);

  // Call after app.parse(). Reads the --config file (if given) into every option the command line
  // did not set, checks required options, and handles --print-config. Returns nullopt when the
  // program should go on, else its exit code: 0 after --print-config (printed to `out`), 2 when the
  // file or a value is bad or a required option is missing (the reason, with file:line:column, to
  // `err`).
  std::optional<int> Apply(std::ostream& out, std::ostream& err);

  // The parts of Apply(), for tests.
  // Reads TOML `text` (named `source` in messages) into the options the command line left unset.
  // INVALID_ARGUMENT, with every bad key as "source:line:column: reason" on its own line, for a
  // syntax error, an unknown key, a value of the wrong shape or one the option refuses.
  Status Load(std::string_view text, std::string_view source);
  // INVALID_ARGUMENT naming the required options that neither the command line nor the file set.
  Status CheckRequired() const;
  // The effective configuration as a TOML document that Load() accepts: every option with its
  // help text as a comment; options with no value are commented out; secrets are not shown.
  std::string Effective() const;

  // The key of `option`: its first long name. Empty for options that have no key (--help,
  // --version, --config, --print-config, positionals).
  static std::string KeyOf(const CLI::Option& option);

 private:
  CLI::Option* Find(std::string_view key) const;

  CLI::App& app_;
  std::string config_path_;
  bool print_ = false;
  CLI::Option* config_option_ = nullptr;
  CLI::Option* print_option_ = nullptr;
  std::vector<CLI::Option*> required_;  // relaxed by the constructor, checked by CheckRequired()
  std::string loaded_from_;             // the file Load() read, for Effective()'s header
};

}  // namespace cairn::server
