#include "server/config.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <ostream>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>
#include <CLI/CLI.hpp>

namespace cairn::server {

namespace {

// Options that configure the configuration itself, or only print and exit: no key.
bool HasNoKey(std::string_view name) {
  return name == "help" || name == "help-all" || name == "version" || name == "config" ||
         name == "print-config";
}

// A flag takes no value on the command line (`--allow-flush`); in the file it is true or false.
bool IsFlag(const CLI::Option& o) { return o.get_items_expected_max() == 0; }
// Takes a list (`--peers a,b`): in the file an array of strings, or one comma-separated string.
bool IsList(const CLI::Option& o) { return o.get_items_expected_max() > 1; }

// Values nobody should find in a printed configuration or a terminal's scroll-back.
bool IsSecret(std::string_view key) {
  return key.find("pass") != std::string_view::npos ||
         key.find("secret") != std::string_view::npos ||
         key.find("token") != std::string_view::npos;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// TOML's basic string: quotes, backslashes and control characters escaped.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          out += fmt::format("\\u{:04X}", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

bool IsNumber(std::string_view s) {
  if (s.empty()) return false;
  double d = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  return ec == std::errc() && end == s.data() + s.size();
}

// One value as TOML: numbers bare where the option takes a number, everything else a string.
std::string TomlValue(const CLI::Option& o, std::string_view value) {
  const bool text = o.get_type_name().starts_with("TEXT");
  return !text && IsNumber(value) ? std::string(value) : Quote(value);
}

// A scalar TOML value as the text CLI11 converts; nullopt (with `why`) for dates, times, tables
// and arrays.
std::optional<std::string> ScalarText(const toml::node& node, std::string* why) {
  if (auto s = node.as_string()) return s->get();
  if (auto i = node.as_integer()) return std::to_string(i->get());
  if (auto f = node.as_floating_point()) return fmt::format("{}", f->get());
  if (auto b = node.as_boolean()) return b->get() ? "true" : "false";
  if (node.is_table()) {
    *why = "is a table, but keys are flat, one per flag (e.g. http = \"127.0.0.1:8080\")";
  } else if (node.is_array()) {
    *why = "takes one value, not an array";
  } else {
    *why = "takes a string, a number or a boolean, not a date or time";
  }
  return std::nullopt;
}

struct Problem {
  toml::source_position where;
  std::string what;
};

}  // namespace

ConfigFile::ConfigFile(CLI::App& app) : app_(app) {
  for (CLI::Option* o : app_.get_options()) {
    if (!o->get_required()) continue;
    required_.push_back(o);
    o->required(false);
    o->description(o->get_description() + " (required, here or in the --config file)");
  }
  config_option_ = app_.add_option(
      "--config", config_path_,
      "Read options from this TOML file: each key is a flag without its dashes (data-dir = "
      "\"/var/lib/cairn\"); flags on the command line override it (docs/operations.md)");
  print_option_ = app_.add_flag(
      "--print-config", print_,
      "Print the effective configuration (defaults, the --config file and flags merged) as TOML, "
      "then exit");
}

std::string ConfigFile::KeyOf(const CLI::Option& option) {
  const auto& names = option.get_lnames();
  if (names.empty() || option.get_positional() || HasNoKey(names.front())) return "";
  return names.front();
}

CLI::Option* ConfigFile::Find(std::string_view key) const {
  for (CLI::Option* o : app_.get_options()) {
    if (KeyOf(*o).empty()) continue;
    for (const std::string& name : o->get_lnames()) {
      if (name == key) return o;
    }
  }
  return nullptr;
}

Status ConfigFile::Load(std::string_view text, std::string_view source) {
  loaded_from_ = std::string(source);
  toml::table table;
  try {
    table = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return Status::InvalidArgument(fmt::format("{}:{}:{}: {}", source, e.source().begin.line,
                                               e.source().begin.column, e.description()));
  }

  std::vector<Problem> problems;
  for (auto&& [k, node] : table) {
    const std::string key(k.str());
    CLI::Option* o = Find(key);
    if (o == nullptr) {
      std::string what = fmt::format("unknown key '{}'", key);
      if (HasNoKey(key)) {
        what = fmt::format("'{}' is a command-line option only", key);
      } else {
        std::string best;
        size_t best_distance = 3;  // suggest only close misspellings
        for (CLI::Option* candidate : app_.get_options()) {
          const std::string name = KeyOf(*candidate);
          if (name.empty()) continue;
          if (size_t d = EditDistance(key, name); d < best_distance) {
            best_distance = d;
            best = name;
          }
        }
        if (!best.empty()) what += fmt::format(" (did you mean '{}'?)", best);
      }
      problems.push_back({k.source().begin, what});
      continue;
    }
    if (o->count() > 0) continue;  // given on the command line, which wins

    std::string why;
    std::vector<std::string> values;
    if (IsFlag(*o)) {
      if (!node.is_boolean()) {
        why = "is a switch: true or false";
      } else {
        values.push_back(o->get_flag_value(key, node.as_boolean()->get() ? "true" : "false"));
      }
    } else if (IsList(*o) && node.is_array()) {
      for (const toml::node& item : *node.as_array()) {
        auto v = ScalarText(item, &why);
        if (!v || item.is_array()) {
          why = "takes an array of strings";
          break;
        }
        values.push_back(std::move(*v));
      }
    } else if (auto v = ScalarText(node, &why)) {
      values.push_back(std::move(*v));
    }
    if (!why.empty()) {
      problems.push_back({node.source().begin, fmt::format("{} {}", key, why)});
      continue;
    }
    try {
      o->add_result(values);
      o->run_callback();  // the option's own checks and conversion, as for a flag
    } catch (const CLI::ParseError& e) {
      o->clear();
      std::string reason = e.what();
      // CLI11 names the flag ("--threads: ..."); the key says it here.
      for (const std::string& prefix : {o->get_name() + ": ", "--" + key + ": "}) {
        if (reason.starts_with(prefix)) reason.erase(0, prefix.size());
      }
      if (dynamic_cast<const CLI::ConversionError*>(&e) != nullptr) {
        std::string type = o->get_type_name();
        type = type.substr(0, type.find(':'));
        reason = fmt::format("'{}' is not a valid {}", fmt::join(values, ","), type);
      }
      problems.push_back({node.source().begin, fmt::format("{}: {}", key, reason)});
    }
  }
  if (problems.empty()) return Status::Ok();
  std::sort(problems.begin(), problems.end(), [](const Problem& a, const Problem& b) {
    return std::pair(a.where.line, a.where.column) < std::pair(b.where.line, b.where.column);
  });
  std::string message;
  for (const Problem& p : problems) {
    if (!message.empty()) message += '\n';
    message += fmt::format("{}:{}:{}: {}", source, p.where.line, p.where.column, p.what);
  }
  return Status::InvalidArgument(message);
}

Status ConfigFile::CheckRequired() const {
  std::vector<std::string> missing;
  for (const CLI::Option* o : required_) {
    if (o->count() == 0) missing.push_back(o->get_name());
  }
  if (missing.empty()) return Status::Ok();
  return Status::InvalidArgument(
      fmt::format("{} {} required: give {} on the command line or in the --config file",
                  fmt::join(missing, ", "), missing.size() == 1 ? "is" : "are",
                  missing.size() == 1 ? "it" : "them"));
}

std::string ConfigFile::Effective() const {
  std::string out = "# The effective configuration of cairnd " CAIRN_VERSION ": defaults";
  if (!loaded_from_.empty()) out += ", then " + loaded_from_;
  out +=
      ", then the command line.\n# Each key is a command-line flag without its dashes; "
      "docs/operations.md explains them.\n";
  for (const CLI::Option* o : app_.get_options()) {
    const std::string key = KeyOf(*o);
    if (key.empty()) continue;
    out += "\n";
    std::istringstream help(o->get_description());
    for (std::string line; std::getline(help, line);) out += "# " + line + "\n";

    const auto& results = o->results();
    if (IsSecret(key)) {
      out += fmt::format("# {} = ({})\n", key, results.empty() ? "not set" : "set, not shown");
    } else if (IsFlag(*o)) {
      const bool on = !results.empty() && results.back() == o->get_flag_value(key, "true");
      out += fmt::format("{} = {}\n", key, on ? "true" : "false");
    } else if (IsList(*o)) {
      if (results.empty()) {
        out += fmt::format("# {} = []  (not set)\n", key);
      } else {
        std::vector<std::string> quoted;
        for (const std::string& r : results) quoted.push_back(Quote(r));
        out += fmt::format("{} = [{}]\n", key, fmt::join(quoted, ", "));
      }
    } else if (!results.empty()) {
      out += fmt::format("{} = {}\n", key, TomlValue(*o, results.back()));
    } else if (!o->get_default_str().empty()) {
      out += fmt::format("{} = {}\n", key, TomlValue(*o, o->get_default_str()));
    } else {
      out += fmt::format("# {} =  (not set)\n", key);
    }
  }
  return out;
}

std::optional<int> ConfigFile::Apply(std::ostream& out, std::ostream& err) {
  std::string program = app_.get_name();
  program = program.substr(program.find_last_of('/') + 1);
  if (program.empty()) program = "cairnd";
  if (!config_path_.empty()) {
    std::ifstream in(config_path_, std::ios::binary);
    if (!in) {
      err << fmt::format("{}: cannot read the config file {}: {}\n", program, config_path_,
                         std::strerror(errno));
      return 2;
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (Status s = Load(text.str(), config_path_); !s.ok()) {
      std::istringstream lines(s.message());
      for (std::string line; std::getline(lines, line);) err << program << ": " << line << "\n";
      return 2;
    }
  }
  if (print_) {
    out << Effective();
    out.flush();
    return 0;
  }
  if (Status s = CheckRequired(); !s.ok()) {
    err << program << ": " << s.message() << "\nRun with --help for more information.\n";
    return 2;
  }
  return std::nullopt;
}

}  // namespace cairn::server
