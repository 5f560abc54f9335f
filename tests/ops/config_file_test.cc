// cairnd --config and --print-config against the real binary: every flag has a key, the example
// configuration in deploy/ is valid, bad files are refused with file, line and reason, and a node
// started from a file runs with the file's settings where no flag overrides them.
#include <fstream>
#include <regex>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/harness/process.h"
#include "tests/ops/http_get.h"
#include "tests/support/temp_dir.h"

namespace cairn::testing {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

const std::string kExample = std::string(CAIRN_SOURCE_DIR) + "/deploy/cairn.toml";

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

TEST(ConfigFileTest, EveryFlagOfTheHelpHasAKeyInThePrintedConfiguration) {
  CommandResult help = RunCommand({CairndPath(), "--help"});
  ASSERT_EQ(help.exit_code, 0) << help.err;
  CommandResult printed = RunCommand({CairndPath(), "--print-config"});
  ASSERT_EQ(printed.exit_code, 0) << printed.err;

  std::set<std::string> flags;
  static const std::regex kFlag(R"((?:^|[\s,])--([a-z][a-z0-9-]*))");
  for (std::sregex_iterator it(help.out.begin(), help.out.end(), kFlag), end; it != end; ++it) {
    flags.insert((*it)[1]);
  }
  ASSERT_GT(flags.size(), 15u) << help.out;
  for (const std::string& flag : flags) {
    if (flag == "help" || flag == "version" || flag == "config" || flag == "print-config") continue;
    const std::regex key("(^|\\n)(# )?" + flag + " = ");
    EXPECT_TRUE(std::regex_search(printed.out, key))
        << "--" << flag << " has no key in --print-config:\n"
        << printed.out;
  }
}

TEST(ConfigFileTest, TheExampleConfigurationIsValidAndSaysWhatItSets) {
  CommandResult r = RunCommand({CairndPath(), "--config", kExample, "--print-config"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("then " + kExample + ", then the command line"));
  EXPECT_THAT(r.out, HasSubstr("\ndata-dir = \"/var/lib/cairn\"\n"));
  EXPECT_THAT(r.out, HasSubstr("\nlisten = \"127.0.0.1:7400\"\n"));
  EXPECT_THAT(r.out, HasSubstr("\nhttp = \"127.0.0.1:8080\"\n"));
  EXPECT_THAT(r.out, HasSubstr("\nlog-level = \"info\"\n"));
  EXPECT_THAT(r.out, HasSubstr("\n# peers = []  (not set)\n"));
  // A flag wins over the file.
  CommandResult flag =
      RunCommand({CairndPath(), "--config", kExample, "--rack", "r7", "--print-config"});
  EXPECT_THAT(flag.out, HasSubstr("\nrack = \"r7\"\n"));
}

TEST(ConfigFileTest, BadFilesAreRefusedAtStartWithFileLineAndReason) {
  TempDir dir;
  const std::string file = dir.path().string() + "/cairn.toml";
  WriteFile(file,
            "listen = \"127.0.0.1:0\"\n"
            "gossip-interval-ms = 1\n"
            "gosip-interval-ms = 500\n"
            "threads = \"four\"\n");
  CommandResult r =
      RunCommand({CairndPath(), "--config", file, "--data-dir", dir.path().string() + "/d"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("cairnd: " + file +
                               ":2:22: gossip-interval-ms: Value 1 not in range 10 to 60000\n"));
  EXPECT_THAT(r.err, HasSubstr("cairnd: " + file +
                               ":3:1: unknown key 'gosip-interval-ms' (did you mean "
                               "'gossip-interval-ms'?)\n"));
  EXPECT_THAT(r.err, HasSubstr("cairnd: " + file + ":4:11: threads: 'four' is not a valid UINT\n"));

  WriteFile(file, "listen = 127.0.0.1:7400\n");  // not quoted: a TOML syntax error
  r = RunCommand({CairndPath(), "--config", file, "--data-dir", dir.path().string() + "/d"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("cairnd: " + file + ":1:"));

  r = RunCommand({CairndPath(), "--config", dir.path().string() + "/missing.toml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err,
              HasSubstr("cannot read the config file " + dir.path().string() + "/missing.toml"));

  WriteFile(file, "listen = \"127.0.0.1:0\"\n");  // no data-dir anywhere
  r = RunCommand({CairndPath(), "--config", file});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--data-dir is required"));
}

TEST(ConfigFileTest, ANodeRunsWithTheFilesSettingsWhereNoFlagOverridesThem) {
  TempDir dir;
  const std::string file = dir.path().string() + "/cairn.toml";
  WriteFile(file, "data-dir = \"" + dir.path().string() +
                      "/from-file\"\n"
                      "http = \"127.0.0.1:0\"\n"
                      "dc = \"east\"\n"
                      "rack = \"r1\"\n"
                      "partitions = 64\n");
  // The harness passes --data-dir and --listen itself; --rack overrides the file's.
  auto node = CairndProcess::Start({.data_dir = dir.path().string() + "/from-flag",
                                    .extra_args = {"--config", file, "--rack", "r2"}});
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  ASSERT_FALSE((*node)->http_address().empty()) << "the file's http key did not apply";
  HttpAnswer a = HttpGet((*node)->http_address(), "/v1/cluster");
  ASSERT_EQ(a.status, 200) << a.error << a.body;
  Json cluster = Json::parse(a.body);
  EXPECT_EQ(cluster["partitions"], 64);
  ASSERT_EQ(cluster["nodes"].size(), 1u);
  EXPECT_EQ(cluster["nodes"][0]["dc"], "east");
  EXPECT_EQ(cluster["nodes"][0]["rack"], "r2");
  EXPECT_EQ((*node)->Stop(), 0);
  EXPECT_TRUE(std::filesystem::exists(dir.path().string() + "/from-flag/db"));
  EXPECT_FALSE(std::filesystem::exists(dir.path().string() + "/from-file"));
}

}  // namespace
}  // namespace cairn::testing
