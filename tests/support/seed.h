// The seed of a randomised test, replayable: CAIRN_SEED=N makes the test draw the same numbers
// again. Every test whose run depends on a random draw takes its seed from a TestSeed:
//
//   const TestSeed seed;               // prints the seed and how to replay it
//   std::mt19937_64 rng(seed.value());
//
// Without CAIRN_SEED the seed is drawn at random. The constructor prints
//   "<Suite.Test> seed N; replay: CAIRN_SEED=N <this binary> --gtest_filter=<Suite.Test>"
// records the seed as the test's "seed" property (in --gtest_output=xml reports), and, while the
// object lives, adds "seed N" to every failure the test reports on this thread.
// CAIRN_FAULT_SEED, the fault tests' older name for it, is still read when CAIRN_SEED is not set.
#pragma once

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace cairn::testing {

class TestSeed {
 public:
  TestSeed() : value_(Draw()), trace_(__FILE__, __LINE__, fmt::format("seed {}", value_)) {
    const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
    const std::string name =
        test == nullptr ? "test" : fmt::format("{}.{}", test->test_suite_name(), test->name());
    std::error_code ec;
    std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
    if (ec) self = "<test binary>";
    std::cout << fmt::format("{} seed {}; replay: CAIRN_SEED={} {} --gtest_filter={}\n", name,
                             value_, value_, self, name)
              << std::flush;
    if (test != nullptr) ::testing::Test::RecordProperty("seed", std::to_string(value_));
  }
  TestSeed(const TestSeed&) = delete;
  TestSeed& operator=(const TestSeed&) = delete;

  uint64_t value() const { return value_; }

  // The seed in CAIRN_SEED (or CAIRN_FAULT_SEED), or nullopt when neither is set. A value that is
  // not a decimal number fails the test and counts as unset.
  static std::optional<uint64_t> FromEnvironment() {
    for (const char* name : {"CAIRN_SEED", "CAIRN_FAULT_SEED"}) {
      const char* text = std::getenv(name);
      if (text == nullptr || *text == '\0') continue;
      const std::string_view s(text);
      uint64_t seed = 0;
      const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), seed);
      if (ec == std::errc() && end == s.data() + s.size()) return seed;
      ADD_FAILURE() << name << "=" << s << " is not a seed (a decimal number below 2^64)";
      return std::nullopt;
    }
    return std::nullopt;
  }

 private:
  static uint64_t Draw() {
    if (auto seed = FromEnvironment()) return *seed;
    std::random_device rd;
    return (uint64_t{rd()} << 32) | rd();
  }

  const uint64_t value_;
  const ::testing::ScopedTrace trace_;
};

}  // namespace cairn::testing
