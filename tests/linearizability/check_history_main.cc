// cairn-check-history: loads a history file (see history.h) and prints whether it is
// linearizable.
//
//   cairn-check-history [--max-steps N] [--no-explain] FILE
//
// Exit status: 0 linearizable, 1 not linearizable, 2 no verdict (search budget exhausted), a
// file that cannot be read or is not a history, or bad usage.
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "tests/linearizability/history.h"
#include "tests/linearizability/linearizability.h"

namespace {

constexpr int kLinearizable = 0;
constexpr int kNotLinearizable = 1;
constexpr int kNoVerdict = 2;

int Usage() {
  std::cerr << "usage: cairn-check-history [--max-steps N] [--no-explain] FILE\n"
               "Checks that the history in FILE (JSON lines, one op per line) is linearizable.\n"
               "Exit status: 0 linearizable, 1 not linearizable, 2 no verdict or bad input.\n";
  return kNoVerdict;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cairn::checkers;
  CheckOptions options;
  std::string path;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--max-steps" && i + 1 < argc) {
      char* end = nullptr;
      options.max_steps_per_key = std::strtoull(argv[++i], &end, 10);
      if (end == argv[i] || *end != '\0' || options.max_steps_per_key == 0) return Usage();
    } else if (arg == "--no-explain") {
      options.explain = false;
    } else if (arg == "-h" || arg == "--help" || arg.starts_with("-") || !path.empty()) {
      return Usage();
    } else {
      path = arg;
    }
  }
  if (path.empty()) return Usage();

  History history;
  std::string error;
  if (!LoadHistory(path, &history, &error)) {
    std::cerr << "cairn-check-history: " << error << "\n";
    return kNoVerdict;
  }
  const auto start = std::chrono::steady_clock::now();
  const CheckResult result = CheckLinearizable(history, options);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::cout << fmt::format("{}: {} ({} ops, {} keys, {} search steps, {:.3f} s)\n", path,
                           VerdictName(result.verdict), history.ops.size(), result.keys_checked,
                           result.steps, seconds);
  if (!result.explanation.empty()) std::cout << result.explanation << "\n";
  if (result.failed_keys.size() > 1) {
    std::cout << fmt::format("{} keys are not linearizable:", result.failed_keys.size());
    for (const std::string& key : result.failed_keys) std::cout << " " << DescribeValue(key);
    std::cout << "\n";
  }
  if (!result.undecided_keys.empty() && result.verdict != Verdict::kGaveUp) {
    std::cout << fmt::format("no verdict within the budget for {} key(s)\n",
                             result.undecided_keys.size());
  }
  switch (result.verdict) {
    case Verdict::kLinearizable:
      return kLinearizable;
    case Verdict::kNotLinearizable:
      return kNotLinearizable;
    case Verdict::kGaveUp:
    case Verdict::kInvalidHistory:
      return kNoVerdict;
  }
  return kNoVerdict;
}
