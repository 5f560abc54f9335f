// Runs the fuzz target without libFuzzer: every file of the corpus, then random inputs from a
// fixed seed (and mutations of the corpus). Used by ctest with any compiler. CAIRN_SEED=N draws
// the inputs from another seed (docs/testing.md); the seed is printed first.
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  uint64_t seed = 20261128;
  if (const char* env = std::getenv("CAIRN_SEED"); env != nullptr && *env != '\0') {
    const std::string_view s(env);
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), seed);
    if (ec != std::errc() || end != s.data() + s.size()) {
      std::fprintf(stderr, "CAIRN_SEED=%s is not a seed (a decimal number below 2^64)\n", env);
      return 2;
    }
  }
  std::string command = argv[0];
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
  std::printf("seed %llu; replay: CAIRN_SEED=%llu %s\n", static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(seed), command.c_str());
  std::fflush(stdout);
  std::vector<std::string> corpus;
  for (int i = 1; i < argc; ++i) {
    for (const auto& entry : std::filesystem::directory_iterator(argv[i])) {
      std::ifstream in(entry.path(), std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      corpus.push_back(ss.str());
    }
  }
  for (const auto& input : corpus) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  }
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 200'000; ++round) {
    std::string input;
    if (!corpus.empty() && round % 2 == 0) {
      input = corpus[rng() % corpus.size()];
      const int flips = 1 + static_cast<int>(rng() % 8);
      for (int f = 0; f < flips && !input.empty(); ++f) {
        input[rng() % input.size()] = static_cast<char>(rng());
      }
    } else {
      input.resize(rng() % 512);
      for (auto& c : input) c = static_cast<char>(rng());
    }
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  }
  std::printf("replayed %zu corpus inputs and 200000 generated ones\n", corpus.size());
  return 0;
}
