// Builds and runs examples/client_example.cc (the program in docs/client.md) against a real
// server, so the documented example always works.
#include <gtest/gtest.h>

#include "tests/harness/process.h"
#include "tests/support/temp_dir.h"

namespace cairn::testing {
namespace {

TEST(ExampleTest, DocumentedClientExampleRuns) {
  TempDir dir;
  auto server = CairndProcess::Start({.data_dir = dir.Sub("node")});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto r = RunCommand({CAIRN_EXAMPLE_BIN, (*server)->address()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("read back: hello, Cairn"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("compare-and-swap applied: yes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("stale compare-and-swap applied: no"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("async: 100 writes"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace cairn::testing
