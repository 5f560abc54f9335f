#include "tests/linearizability/history.h"

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>

#include "tests/linearizability/linearizability.h"
#include "tests/support/temp_dir.h"

namespace cairn::checkers {
namespace {

// One op of every kind and outcome, with awkward bytes in keys and values.
History EveryKindOfOp() {
  History h;
  h.ops.push_back(
      {.client = 1, .key = "k", .kind = OpKind::kWrite, .value = "a", .call = 0, .ret = 10});
  h.ops.push_back(
      {.client = 2, .key = "k", .kind = OpKind::kRead, .value = "a", .call = 20, .ret = 30});
  h.ops.push_back({.client = 3,
                   .key = "k",
                   .kind = OpKind::kWrite,
                   .value = std::nullopt,
                   .call = 40,
                   .ret = 50});
  h.ops.push_back({.client = 2,
                   .key = "k",
                   .kind = OpKind::kRead,
                   .value = std::nullopt,
                   .call = 60,
                   .ret = 70});
  h.ops.push_back({.client = 1,
                   .key = "k",
                   .kind = OpKind::kCas,
                   .value = "b",
                   .expected = std::nullopt,
                   .applied = true,
                   .call = 80,
                   .ret = 90});
  h.ops.push_back({.client = 1,
                   .key = "k",
                   .kind = OpKind::kCas,
                   .value = "c",
                   .expected = "a",
                   .applied = false,
                   .current = Value("b"),
                   .call = 100,
                   .ret = 110});
  h.ops.push_back({.client = 1,
                   .key = "k",
                   .kind = OpKind::kCas,
                   .value = "c",
                   .expected = "a",
                   .applied = false,
                   .current = Value(std::nullopt),
                   .call = 100,
                   .ret = 110});
  h.ops.push_back({.client = 4,
                   .key = "k",
                   .kind = OpKind::kCas,
                   .value = "d",
                   .expected = "b",
                   .call = 120,
                   .ret = 125,
                   .outcome = Outcome::kUnknown});
  h.ops.push_back({.client = 4,
                   .key = "k",
                   .kind = OpKind::kRead,
                   .call = 130,
                   .ret = 131,
                   .outcome = Outcome::kUnknown});
  h.ops.push_back({.client = 5,
                   .key = "k",
                   .kind = OpKind::kWrite,
                   .value = "e",
                   .call = 140,
                   .ret = 141,
                   .outcome = Outcome::kFailed});
  // Not UTF-8, NUL bytes, quotes and newlines, negative and huge times and client ids.
  h.ops.push_back({.client = UINT64_MAX,
                   .key = std::string("bin\0\xff\xfe", 6),
                   .kind = OpKind::kWrite,
                   .value = std::string("\x80\n\"\\", 4),
                   .call = INT64_MIN,
                   .ret = INT64_MAX});
  h.ops.push_back({.client = 0,
                   .key = "ключ",
                   .kind = OpKind::kWrite,
                   .value = "\u00e9\U0001F600",
                   .call = -5,
                   .ret = -1});
  h.ops.push_back(
      {.client = 0, .key = "", .kind = OpKind::kWrite, .value = "", .call = 0, .ret = 0});
  return h;
}

TEST(HistoryFile, RoundTripsEveryKindOfOp) {
  testing::TempDir dir;
  const History h = EveryKindOfOp();
  std::string error;
  ASSERT_TRUE(SaveHistory(h, dir.Sub("h.jsonl"), &error)) << error;
  History back;
  ASSERT_TRUE(LoadHistory(dir.Sub("h.jsonl"), &back, &error)) << error;
  ASSERT_EQ(back.ops.size(), h.ops.size());
  for (size_t i = 0; i < h.ops.size(); ++i) {
    EXPECT_EQ(back.ops[i], h.ops[i])
        << DescribeOp(h.ops[i], i) << " came back as " << DescribeOp(back.ops[i], i);
  }
  // Saving again gives the same bytes.
  EXPECT_EQ(HistoryToJsonLines(back), HistoryToJsonLines(h));
}

TEST(HistoryFile, FormatIsOneOpPerLineWithAHeader) {
  History h;
  h.ops.push_back({.client = 3,
                   .key = "k",
                   .kind = OpKind::kCas,
                   .value = "b",
                   .expected = "a",
                   .applied = true,
                   .call = 100,
                   .ret = 120});
  h.ops.push_back({.client = 1,
                   .key = std::string("\xff", 1),
                   .kind = OpKind::kWrite,
                   .value = std::nullopt,
                   .call = 5,
                   .ret = 9,
                   .outcome = Outcome::kUnknown});
  EXPECT_EQ(HistoryToJsonLines(h),
            "{\"format\":\"cairn-history\",\"version\":1}\n"
            "{\"applied\":true,\"call\":100,\"client\":3,\"expected\":\"a\",\"key\":\"k\","
            "\"kind\":\"cas\",\"outcome\":\"ok\",\"return\":120,\"value\":\"b\"}\n"
            "{\"call\":5,\"client\":1,\"key\":{\"hex\":\"ff\"},\"kind\":\"write\","
            "\"outcome\":\"unknown\",\"return\":9,\"value\":null}\n");
}

TEST(HistoryFile, HandWrittenFilesNeedNoHeader) {
  History h;
  std::string error;
  ASSERT_TRUE(HistoryFromJsonLines(
      "\n{\"client\":1,\"key\":\"k\",\"kind\":\"write\",\"value\":\"a\",\"call\":0,"
      "\"return\":10,\"outcome\":\"ok\"}\n\n"
      "{\"client\":2,\"key\":\"k\",\"kind\":\"read\",\"call\":5,\"outcome\":\"unknown\"}",
      &h, &error))
      << error;
  ASSERT_EQ(h.ops.size(), 2u);
  EXPECT_EQ(h.ops[0].value, "a");
  EXPECT_EQ(h.ops[1].outcome, Outcome::kUnknown);
  EXPECT_EQ(h.ops[1].ret, 5);  // no "return": the call time
}

TEST(HistoryFile, MalformedInputIsRejectedWithTheLine) {
  const std::string header = "{\"format\":\"cairn-history\",\"version\":1}\n";
  const std::string good =
      "{\"client\":1,\"key\":\"k\",\"kind\":\"read\",\"value\":null,\"call\":0,\"return\":1,"
      "\"outcome\":\"ok\"}\n";
  auto error_of = [](const std::string& text) {
    History h;
    std::string error;
    EXPECT_FALSE(HistoryFromJsonLines(text, &h, &error));
    return error;
  };
  EXPECT_EQ(error_of(header + good + "{not json\n"), "line 3: not JSON");
  EXPECT_EQ(error_of("{\"format\":\"cairn-history\",\"version\":2}\n"),
            "line 1: not a version 1 cairn-history file");
  EXPECT_EQ(error_of(header + "{\"client\":1,\"key\":\"k\",\"kind\":\"read\",\"call\":0,"
                              "\"return\":1,\"outcome\":\"ok\"}\n"),
            "line 2: no \"value\"");
  EXPECT_EQ(error_of(header + "{\"client\":1,\"key\":\"k\",\"kind\":\"cas\",\"expected\":\"a\","
                              "\"value\":\"b\",\"call\":0,\"return\":1,\"outcome\":\"ok\"}\n"),
            "line 2: no \"applied\" boolean");
  EXPECT_EQ(error_of(header + "{\"client\":1,\"key\":\"k\",\"kind\":\"swap\",\"call\":0,"
                              "\"return\":1,\"outcome\":\"ok\"}\n"),
            "line 2: unknown kind \"swap\"");
  EXPECT_EQ(error_of(header + "{\"client\":1,\"key\":\"k\",\"kind\":\"read\",\"value\":null,"
                              "\"call\":1.5,\"return\":2,\"outcome\":\"ok\"}\n"),
            "line 2: \"call\" is not a 64-bit integer");
  EXPECT_EQ(error_of(header + "{\"client\":1,\"key\":{\"hex\":\"f\"},\"kind\":\"read\","
                              "\"value\":null,\"call\":1,\"return\":2,\"outcome\":\"ok\"}\n"),
            "line 2: no \"key\" string");
  EXPECT_EQ(error_of("[1,2]\n"), "line 1: not a JSON object");

  History h;
  std::string error;
  EXPECT_FALSE(LoadHistory("/nonexistent/cairn/history.jsonl", &h, &error));
  EXPECT_EQ(error, "cannot read /nonexistent/cairn/history.jsonl");
}

// cairn-check-history: the verdict as its exit status.
int RunChecker(const std::string& args) {
  const int status =
      std::system((std::string(CAIRN_CHECK_HISTORY_BIN) + " " + args + " >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(CheckHistoryTool, ExitStatusIsTheVerdict) {
  testing::TempDir dir;
  std::string error;
  History good;
  good.ops.push_back(
      {.client = 1, .key = "k", .kind = OpKind::kWrite, .value = "a", .call = 0, .ret = 10});
  good.ops.push_back(
      {.client = 2, .key = "k", .kind = OpKind::kRead, .value = "a", .call = 20, .ret = 30});
  ASSERT_TRUE(SaveHistory(good, dir.Sub("good.jsonl"), &error)) << error;
  History bad = good;
  bad.ops[1].value = "b";
  ASSERT_TRUE(SaveHistory(bad, dir.Sub("bad.jsonl"), &error)) << error;
  std::ofstream(dir.Sub("garbage.jsonl")) << "garbage\n";

  EXPECT_EQ(RunChecker(dir.Sub("good.jsonl")), 0);
  EXPECT_EQ(RunChecker(dir.Sub("bad.jsonl")), 1);
  EXPECT_EQ(RunChecker("--no-explain " + dir.Sub("bad.jsonl")), 1);
  EXPECT_EQ(RunChecker("--max-steps 1 " + dir.Sub("good.jsonl")), 2);
  EXPECT_EQ(RunChecker(dir.Sub("garbage.jsonl")), 2);
  EXPECT_EQ(RunChecker(dir.Sub("missing.jsonl")), 2);
  EXPECT_EQ(RunChecker(""), 2);
}

}  // namespace
}  // namespace cairn::checkers
