#include "server/config.h"

#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <CLI/CLI.hpp>

namespace cairn::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A command line shaped like cairnd's: every kind of option it has.
struct Program {
  CLI::App app{"test program"};
  std::string data_dir;
  std::string listen = "127.0.0.1:7400";
  std::vector<std::string> peers;
  uint32_t threads = 0;
  uint32_t gossip_ms = 1000;
  double phi = 8;
  bool allow_flush = false;
  std::string requirepass;
  std::string http;
  std::unique_ptr<ConfigFile> config;

  Program() {
    app.add_option("--data-dir", data_dir, "Directory for the node's data")->required();
    app.add_option("--listen", listen, "HOST:PORT\nfor clients")->capture_default_str();
    app.add_option("--peers", peers, "Every initial member")->delimiter(',');
    app.add_option("--threads", threads, "Reactor threads")->capture_default_str();
    app.add_option("--gossip-interval-ms", gossip_ms, "Gossip round interval")
        ->capture_default_str()
        ->check(CLI::Range(10u, 60'000u));
    app.add_option("--phi-threshold", phi, "Failure detector threshold")->capture_default_str();
    app.add_flag("--allow-flush", allow_flush, "Let FLUSHDB delete");
    app.add_option("--requirepass", requirepass, "Password");
    app.add_option("--http", http, "HTTP door");
  }

  // Parses `args` (without the program name); then the config file can be applied.
  void Parse(std::vector<std::string> args) {
    config = std::make_unique<ConfigFile>(app);
    args.insert(args.begin(), "cairnd");
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    app.parse(static_cast<int>(argv.size()), argv.data());
  }
};

TEST(ConfigFileTest, FileSetsWhatTheCommandLineLeavesAndFlagsWin) {
  Program p;
  p.Parse({"--threads", "3"});
  Status s = p.config->Load(
      "data-dir = \"/var/lib/cairn\"\n"
      "threads = 5\n"
      "listen = \"127.0.0.1:7411\"\n"
      "phi-threshold = 12.5\n"
      "allow-flush = true\n",
      "cairn.toml");
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(p.threads, 3u);  // the command line's
  EXPECT_EQ(p.data_dir, "/var/lib/cairn");
  EXPECT_EQ(p.listen, "127.0.0.1:7411");
  EXPECT_DOUBLE_EQ(p.phi, 12.5);
  EXPECT_TRUE(p.allow_flush);
  EXPECT_EQ(p.gossip_ms, 1000u);  // in neither: the default
  EXPECT_TRUE(p.config->CheckRequired().ok());
  // What main() reads to know whether an option was given at all.
  EXPECT_EQ(p.app.count("--listen"), 1u);
  EXPECT_EQ(p.app.count("--http"), 0u);
}

TEST(ConfigFileTest, AFlagAddedLaterHasItsKeyWithoutFurtherCode) {
  Program p;
  double stream_mb = 0;
  p.app.add_option("--stream-mb-per-s", stream_mb, "Streaming throttle");
  p.Parse({"--data-dir", "d"});
  Status s = p.config->Load("stream-mb-per-s = 40\n", "cairn.toml");
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_DOUBLE_EQ(stream_mb, 40);
}

TEST(ConfigFileTest, UnknownKeyIsRefusedWithItsLineAndASuggestion) {
  Program p;
  p.Parse({"--data-dir", "d"});
  Status s = p.config->Load("listen = \"127.0.0.1:1\"\n\ngosip-interval-ms = 500\n", "cairn.toml");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(),
            "cairn.toml:3:1: unknown key 'gosip-interval-ms' (did you mean 'gossip-interval-ms'?)");
  // Options about the file itself have no key.
  Program q;
  q.Parse({"--data-dir", "d"});
  s = q.config->Load("config = \"other.toml\"\n", "cairn.toml");
  EXPECT_EQ(s.message(), "cairn.toml:1:1: 'config' is a command-line option only");
}

TEST(ConfigFileTest, BadValuesNameTheirLineAndWhy) {
  Program p;
  p.Parse({"--data-dir", "d"});
  Status s = p.config->Load("threads = \"many\"\n", "cairn.toml");
  EXPECT_EQ(s.message(), "cairn.toml:1:11: threads: 'many' is not a valid UINT");

  Program range;
  range.Parse({"--data-dir", "d"});
  s = range.config->Load("# comment\ngossip-interval-ms = 5\n", "cairn.toml");
  EXPECT_THAT(s.message(), HasSubstr("cairn.toml:2:22: gossip-interval-ms: "));
  EXPECT_THAT(s.message(), HasSubstr("not in range"));
}

TEST(ConfigFileTest, ValuesOfTheWrongShapeAreRefused) {
  Program p;
  p.Parse({"--data-dir", "d"});
  Status s = p.config->Load(
      "allow-flush = 1\n"
      "listen = [\"a\", \"b\"]\n"
      "[http]\n"
      "port = 8080\n",
      "cairn.toml");
  ASSERT_FALSE(s.ok());
  // Every problem, in file order, one per line.
  EXPECT_EQ(s.message(),
            "cairn.toml:1:15: allow-flush is a switch: true or false\n"
            "cairn.toml:2:10: listen takes one value, not an array\n"
            "cairn.toml:3:1: http is a table, but keys are flat, one per flag (e.g. http = "
            "\"127.0.0.1:8080\")");
}

TEST(ConfigFileTest, SyntaxErrorsNameTheirLine) {
  Program p;
  p.Parse({"--data-dir", "d"});
  Status s =
      p.config->Load("listen = \"127.0.0.1:7400\"\nthreads = = 4\n", "/etc/cairn/cairn.toml");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("/etc/cairn/cairn.toml:2:"));
}

TEST(ConfigFileTest, ListsTakeArraysOrCommaSeparatedText) {
  Program p;
  p.Parse({"--data-dir", "d"});
  ASSERT_TRUE(p.config->Load("peers = [\"a:1\", \"b:2\", \"c:3\"]\n", "f").ok());
  EXPECT_EQ(p.peers, (std::vector<std::string>{"a:1", "b:2", "c:3"}));

  Program q;
  q.Parse({"--data-dir", "d"});
  ASSERT_TRUE(q.config->Load("peers = \"a:1,b:2\"\n", "f").ok());
  EXPECT_EQ(q.peers, (std::vector<std::string>{"a:1", "b:2"}));

  Program r;
  r.Parse({"--data-dir", "d", "--peers", "x:1"});  // the command line's list wins whole
  ASSERT_TRUE(r.config->Load("peers = [\"a:1\", \"b:2\"]\n", "f").ok());
  EXPECT_EQ(r.peers, (std::vector<std::string>{"x:1"}));
}

TEST(ConfigFileTest, SwitchesCanBeTurnedOffInTheFile) {
  Program p;
  p.Parse({"--data-dir", "d"});
  ASSERT_TRUE(p.config->Load("allow-flush = false\n", "f").ok());
  EXPECT_FALSE(p.allow_flush);
}

TEST(ConfigFileTest, RequiredOptionsMayComeFromEitherPlace) {
  Program p;
  p.Parse({});  // --data-dir is required, but the file may give it: no parse error
  Status s = p.config->CheckRequired();
  EXPECT_EQ(s.message(),
            "--data-dir is required: give it on the command line or in the --config file");
  ASSERT_TRUE(p.config->Load("data-dir = \"/srv/cairn\"\n", "f").ok());
  EXPECT_TRUE(p.config->CheckRequired().ok());
  EXPECT_EQ(p.data_dir, "/srv/cairn");
}

TEST(ConfigFileTest, TheEffectiveConfigurationReadsBackAsTheSame) {
  Program p;
  p.Parse({"--data-dir", "/data dir/\"quoted\"", "--peers", "a:1,b:2", "--requirepass", "hunter2"});
  ASSERT_TRUE(p.config->Load("threads = 2\nallow-flush = true\nphi-threshold = 9.5\n", "f").ok());
  const std::string text = p.config->Effective();
  EXPECT_THAT(text, HasSubstr("# HOST:PORT\n# for clients\nlisten = \"127.0.0.1:7400\"\n"));
  EXPECT_THAT(text, HasSubstr("\nthreads = 2\n"));
  EXPECT_THAT(text, HasSubstr("\npeers = [\"a:1\", \"b:2\"]\n"));
  EXPECT_THAT(text, HasSubstr("\n# http =  (not set)\n"));
  EXPECT_THAT(text, HasSubstr("\n# requirepass = (set, not shown)\n"));
  EXPECT_THAT(text, Not(HasSubstr("hunter2")));
  EXPECT_THAT(text, Not(HasSubstr("print-config =")));

  Program q;
  q.Parse({});
  Status s = q.config->Load(text, "printed.toml");
  ASSERT_TRUE(s.ok()) << s.message() << "\n" << text;
  EXPECT_EQ(q.data_dir, p.data_dir);
  EXPECT_EQ(q.peers, p.peers);
  EXPECT_EQ(q.threads, 2u);
  EXPECT_TRUE(q.allow_flush);
  EXPECT_DOUBLE_EQ(q.phi, 9.5);
  EXPECT_EQ(q.gossip_ms, 1000u);
  EXPECT_EQ(q.requirepass, "");  // never printed, so never read back
}

TEST(ConfigFileTest, ApplyPrintsTheConfigurationOrTheReasonAndAnExitCode) {
  Program p;
  p.Parse({"--config", "/nonexistent/cairn.toml"});
  std::ostringstream out, err;
  EXPECT_EQ(p.config->Apply(out, err), 2);
  EXPECT_THAT(err.str(), HasSubstr("cannot read the config file /nonexistent/cairn.toml"));

  Program q;
  q.Parse({"--print-config"});
  std::ostringstream out2, err2;
  EXPECT_EQ(q.config->Apply(out2, err2), 0);
  EXPECT_THAT(out2.str(), HasSubstr("# data-dir =  (not set)"));

  Program r;
  r.Parse({});
  std::ostringstream out3, err3;
  EXPECT_EQ(r.config->Apply(out3, err3), 2);
  EXPECT_THAT(err3.str(), HasSubstr("--data-dir is required"));

  Program ok;
  ok.Parse({"--data-dir", "d"});
  std::ostringstream out4, err4;
  EXPECT_EQ(ok.config->Apply(out4, err4), std::nullopt);
}

}  // namespace
}  // namespace cairn::server
