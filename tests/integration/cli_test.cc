// The cairn CLI against a real cairnd: output, JSON, exit codes.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/harness/process.h"
#include "tests/support/temp_dir.h"

namespace cairn::testing {
namespace {

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = CairndProcess::Start({.data_dir = dir_.Sub("node")});
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    server_ = std::move(*p);
  }
  void TearDown() override {
    if (server_ && HasFailure()) std::cerr << "server log:\n" << server_->Log();
  }

  CommandResult Cli(std::vector<std::string> args, const std::string& input = "") {
    std::vector<std::string> argv = {CliPath(), "--server", server_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, input);
  }

  TempDir dir_;
  std::unique_ptr<CairndProcess> server_;
};

TEST_F(CliTest, PutGetDelete) {
  auto put = Cli({"put", "greeting", "hello world"});
  EXPECT_EQ(put.exit_code, 0) << put.err;
  EXPECT_NE(put.out.find("OK"), std::string::npos);

  auto get = Cli({"get", "greeting"});
  EXPECT_EQ(get.exit_code, 0);
  EXPECT_EQ(get.out, "hello world");  // raw bytes, nothing added when not a terminal

  EXPECT_EQ(Cli({"del", "greeting"}).exit_code, 0);
  auto gone = Cli({"get", "greeting"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_EQ(gone.out, "");
  EXPECT_NE(gone.err.find("not found"), std::string::npos);
}

TEST_F(CliTest, ValueFromStdinKeepsBinaryBytes) {
  const std::string binary("line1\nline2\0\xff\x01", 14);
  EXPECT_EQ(Cli({"put", "blob", "-"}, binary).exit_code, 0);
  auto get = Cli({"get", "blob"});
  EXPECT_EQ(get.exit_code, 0);
  EXPECT_EQ(get.out, binary);
  auto json = Cli({"--json", "get", "blob"});
  auto j = nlohmann::json::parse(json.out);
  EXPECT_TRUE(j.contains("value_base64"));  // not UTF-8: base64 in JSON
}

TEST_F(CliTest, JsonGetShowsVersionAndMetadata) {
  auto put = Cli({"--json", "put", "k", "v", "--ttl", "3600"});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  const std::string version = nlohmann::json::parse(put.out)["version"];
  auto get = Cli({"--json", "get", "k"});
  ASSERT_EQ(get.exit_code, 0);
  auto j = nlohmann::json::parse(get.out);
  EXPECT_EQ(j["value"], "v");
  EXPECT_EQ(j["version"], version);
  EXPECT_EQ(j["found"], true);
  EXPECT_EQ(j["written_by_node"], server_->node_id());
  EXPECT_GT(j["ttl_ms"].get<uint64_t>(), 3'500'000u);
  EXPECT_LE(j["ttl_ms"].get<uint64_t>(), 3'600'000u);
}

TEST_F(CliTest, CasConditionsAndExitCodes) {
  EXPECT_EQ(Cli({"cas", "lock", "a", "--expect-absent"}).exit_code, 0);
  auto taken = Cli({"cas", "lock", "b", "--expect-absent"});
  EXPECT_EQ(taken.exit_code, 1);
  EXPECT_NE(taken.out.find("not applied"), std::string::npos);

  auto get = Cli({"--json", "get", "lock"});
  const std::string version = nlohmann::json::parse(get.out)["version"];
  EXPECT_EQ(Cli({"cas", "lock", "c", "--expect-version", "1:1"}).exit_code, 1);
  auto by_version = Cli({"--json", "cas", "lock", "c", "--expect-version", version});
  EXPECT_EQ(by_version.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(by_version.out)["applied"], true);
  EXPECT_EQ(Cli({"cas", "lock", "d", "--expect-value", "c"}).exit_code, 0);
  EXPECT_EQ(Cli({"cas", "lock", "--delete", "--expect-present"}).exit_code, 0);
  EXPECT_EQ(Cli({"get", "lock"}).exit_code, 1);
  // Usage errors: no condition, two conditions, bad version text.
  EXPECT_EQ(Cli({"cas", "lock", "x"}).exit_code, 2);
  EXPECT_EQ(Cli({"cas", "lock", "x", "--expect-absent", "--expect-present"}).exit_code, 2);
  EXPECT_EQ(Cli({"cas", "lock", "x", "--expect-version", "yesterday"}).exit_code, 2);
  // Levels: the Paxos level with --cl, the commit level with --commit-cl.
  EXPECT_EQ(
      Cli({"--cl", "local_serial", "cas", "lock", "e", "--expect-absent", "--commit-cl", "all"})
          .exit_code,
      0);
  auto serial = Cli({"--cl", "serial", "get", "lock"});
  EXPECT_EQ(serial.exit_code, 0) << serial.err;
  EXPECT_EQ(serial.out, "e");
  auto wrong = Cli({"--cl", "quorum", "cas", "lock", "f", "--expect-value", "e"});
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_NE(wrong.err.find("SERIAL"), std::string::npos) << wrong.err;
  EXPECT_EQ(Cli({"cas", "lock", "f", "--expect-value", "e", "--commit-cl", "serial"}).exit_code, 2);
  EXPECT_EQ(Cli({"get", "lock"}).out, "e");  // neither rejected request changed anything
}

TEST_F(CliTest, ScanListsKeysInOrderWithLimit) {
  for (const char* k : {"user:3", "user:1", "user:2", "other"}) {
    ASSERT_EQ(Cli({"put", k, std::string("v-") + k}).exit_code, 0);
  }
  auto all = Cli({"scan", "user:"});
  EXPECT_EQ(all.exit_code, 0);
  EXPECT_EQ(all.out, "user:1\tv-user:1\nuser:2\tv-user:2\nuser:3\tv-user:3\n");
  auto limited = Cli({"scan", "user:", "--limit", "2"});
  EXPECT_EQ(limited.out, "user:1\tv-user:1\nuser:2\tv-user:2\n");
  EXPECT_NE(limited.err.find("--cursor"), std::string::npos);
  auto rest = Cli({"scan", "user:", "--cursor", "user:2"});
  EXPECT_EQ(rest.out, "user:3\tv-user:3\n");
  auto json = nlohmann::json::parse(Cli({"--json", "scan", ""}).out);
  EXPECT_EQ(json["entries"].size(), 4u);
  EXPECT_TRUE(json["cursor"].is_null());
}

TEST_F(CliTest, KeyspaceAdmin) {
  EXPECT_EQ(Cli({"keyspace", "create", "orders", "--rf", "1", "--read-cl", "one"}).exit_code, 0);
  EXPECT_EQ(Cli({"keyspace", "create", "orders"}).exit_code, 2);  // exists
  EXPECT_EQ(Cli({"keyspace", "create", "orders", "--if-not-exists"}).exit_code, 0);
  auto list = Cli({"keyspace", "list"});
  EXPECT_NE(list.out.find("orders"), std::string::npos);
  EXPECT_NE(list.out.find("default"), std::string::npos);
  auto desc = nlohmann::json::parse(Cli({"--json", "keyspace", "describe", "orders"}).out);
  EXPECT_EQ(desc["replication"], "1");
  EXPECT_EQ(desc["read_consistency"], "ONE");
  EXPECT_EQ(desc["write_consistency"], "QUORUM");

  EXPECT_EQ(Cli({"-k", "orders", "put", "o1", "x"}).exit_code, 0);
  EXPECT_EQ(Cli({"get", "o1"}).exit_code, 1);  // not in default
  EXPECT_EQ(Cli({"keyspace", "drop", "orders"}).exit_code, 0);
  EXPECT_EQ(Cli({"keyspace", "describe", "orders"}).exit_code, 1);
  EXPECT_EQ(Cli({"keyspace", "drop", "orders"}).exit_code, 1);
  EXPECT_EQ(Cli({"keyspace", "drop", "orders", "--if-exists"}).exit_code, 0);
  EXPECT_EQ(Cli({"keyspace", "drop", "default"}).exit_code, 2);
  EXPECT_EQ(Cli({"keyspace", "create", "bad name"}).exit_code, 2);
}

TEST_F(CliTest, MetricsCountPaxosRoundTrips) {
  auto before = nlohmann::json::parse(Cli({"--json", "metrics"}).out);
  ASSERT_EQ(Cli({"cas", "m", "1", "--expect-absent"}).exit_code, 0);
  ASSERT_EQ(Cli({"--cl", "serial", "get", "m"}).exit_code, 0);
  auto after = nlohmann::json::parse(Cli({"--json", "metrics"}).out);
  auto delta = [&](const char* name) {
    return after[name].get<uint64_t>() - before[name].get<uint64_t>();
  };
  EXPECT_EQ(delta("paxos.cas"), 1u);
  EXPECT_EQ(delta("paxos.serial_reads"), 1u);
  // Uncontended: one prepare, one propose and one commit for the swap, one prepare for the read.
  EXPECT_EQ(delta("paxos.prepare_round_trips"), 2u);
  EXPECT_EQ(delta("paxos.propose_round_trips"), 1u);
  EXPECT_EQ(delta("paxos.commit_round_trips"), 1u);
  EXPECT_EQ(delta("paxos.timeouts"), 0u);
  auto text = Cli({"metrics"});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("paxos.cas "), std::string::npos);
}

TEST_F(CliTest, LinearizableKeyspaceCreateAndAlter) {
  ASSERT_EQ(Cli({"keyspace", "create", "ledger", "--rf", "1", "--linearizable"}).exit_code, 0);
  auto desc = nlohmann::json::parse(Cli({"--json", "keyspace", "describe", "ledger"}).out);
  EXPECT_EQ(desc["linearizable"], true);
  EXPECT_NE(Cli({"keyspace", "list"}).out.find("yes"), std::string::npos);
  // Plain writes and reads work as usual there (through Paxos).
  EXPECT_EQ(Cli({"-k", "ledger", "put", "a", "1"}).exit_code, 0);
  EXPECT_EQ(Cli({"-k", "ledger", "get", "a"}).out, "1");
  EXPECT_EQ(Cli({"-k", "ledger", "cas", "a", "2", "--expect-value", "1"}).exit_code, 0);
  EXPECT_EQ(Cli({"-k", "ledger", "del", "a"}).exit_code, 0);
  EXPECT_EQ(Cli({"-k", "ledger", "get", "a"}).exit_code, 1);

  auto alter =
      Cli({"--json", "keyspace", "alter", "ledger", "--no-linearizable", "--read-cl", "one"});
  ASSERT_EQ(alter.exit_code, 0) << alter.err;
  auto altered = nlohmann::json::parse(alter.out);
  EXPECT_EQ(altered["linearizable"], false);
  EXPECT_EQ(altered["read_consistency"], "ONE");
  EXPECT_EQ(altered["write_consistency"], "QUORUM");  // unchanged
  EXPECT_EQ(altered["replication"], "1");
  EXPECT_EQ(Cli({"keyspace", "alter", "ledger", "--linearizable"}).exit_code, 0);
  desc = nlohmann::json::parse(Cli({"--json", "keyspace", "describe", "ledger"}).out);
  EXPECT_EQ(desc["linearizable"], true);
  EXPECT_EQ(desc["read_consistency"], "ONE");
  // Rejected: nothing to change, both flags, unknown keyspace, the default keyspace, bad level.
  EXPECT_EQ(Cli({"keyspace", "alter", "ledger"}).exit_code, 2);
  EXPECT_EQ(Cli({"keyspace", "alter", "ledger", "--linearizable", "--no-linearizable"}).exit_code,
            2);
  EXPECT_EQ(Cli({"keyspace", "alter", "nosuch", "--linearizable"}).exit_code, 1);
  auto def = Cli({"keyspace", "alter", "default", "--linearizable"});
  EXPECT_EQ(def.exit_code, 2);
  EXPECT_NE(def.err.find("default"), std::string::npos);
  EXPECT_EQ(Cli({"keyspace", "alter", "ledger", "--write-cl", "serial"}).exit_code, 2);
}

TEST_F(CliTest, RejectedRequestsExitTwo) {
  auto unknown = Cli({"-k", "nosuch", "get", "k"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("keyspace 'nosuch' does not exist"), std::string::npos);
  EXPECT_EQ(Cli({"put", "", "v"}).exit_code, 2);
  EXPECT_EQ(Cli({"put", std::string(16 * 1024 + 1, 'k'), "v"}).exit_code, 2);
  EXPECT_EQ(Cli({"--cl", "most", "get", "k"}).exit_code, 2);
  EXPECT_EQ(Cli({"--cl", "any", "get", "k"}).exit_code, 2);
  EXPECT_EQ(Cli({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(Cli({"get"}).exit_code, 2);
}

TEST_F(CliTest, HelpEverywhere) {
  for (auto args : std::vector<std::vector<std::string>>{
           {"--help"}, {"get", "--help"}, {"cas", "--help"}, {"keyspace", "create", "--help"}}) {
    auto r = Cli(args);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << args[0];
  }
}

TEST_F(CliTest, PingAndUnreachableServer) {
  auto ping = Cli({"ping"});
  EXPECT_EQ(ping.exit_code, 0);
  EXPECT_NE(ping.out.find("PONG from node " + std::to_string(server_->node_id())),
            std::string::npos);
  server_->Stop();
  auto down =
      RunCommand({CliPath(), "--server", server_->address(), "--timeout", "1000", "get", "k"});
  EXPECT_EQ(down.exit_code, 3);
  EXPECT_NE(down.err.find("UNAVAILABLE"), std::string::npos) << down.err;
}

}  // namespace
}  // namespace cairn::testing
