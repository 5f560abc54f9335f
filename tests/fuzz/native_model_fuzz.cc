// Model-based fuzzing of the native protocol: seeded random valid requests (and requests the
// contract refuses) go through the C++ client to one cairnd, and every answer is checked against
// a model of the store: values and versions read back, versions that only grow, compare-and-swap
// applied exactly when its condition holds on the model, scans and batches that agree with it,
// and the documented error codes for empty, oversized and over-limit keys and values; repairs,
// compactions and node operations the node must refuse (it is a lone member, not on standby)
// come in between, and the model must read back the same after them.
//
// CAIRN_FUZZ_SEED=N replays a run (the seed is printed); CAIRN_FUZZ_SECONDS=S runs longer
// (default 8); scripts/fuzz runs it for hours.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/counter.h"
#include "cairn/client.h"
#include "tests/harness/process.h"
#include "tests/support/temp_dir.h"

namespace cairn {
namespace {

using testing::CairndProcess;
using namespace std::chrono_literals;

constexpr size_t kMaxValue = 64 * 1024;  // cairnd runs with --max-value-bytes 65536

struct Stored {
  std::string value;
  Version version;
};

class NativeModelFuzz {
 public:
  NativeModelFuzz(Client& client, uint64_t seed) : client_(client), rng_(seed) {}

  // One random operation, checked; a failed check is reported through gtest with `step_`.
  void Step() {
    ++step_;
    using Operation = void (NativeModelFuzz::*)();
    static constexpr Operation kOperations[] = {
        &NativeModelFuzz::Put,           &NativeModelFuzz::Get,      &NativeModelFuzz::Delete,
        &NativeModelFuzz::Cas,           &NativeModelFuzz::Scan,     &NativeModelFuzz::BatchGet,
        &NativeModelFuzz::BatchPut,      &NativeModelFuzz::Refused,  &NativeModelFuzz::Maintenance,
        &NativeModelFuzz::NodeOperation, &NativeModelFuzz::Increment};
    (this->*kOperations[Pick({10, 10, 4, 8, 2, 3, 3, 2, 0.5, 0.5, 4})])();
  }
  uint64_t steps() const { return step_; }
  uint64_t node_operations() const { return node_operations_; }
  size_t keys() const { return model_.size(); }

 private:
  size_t Pick(std::initializer_list<double> weights) {
    std::discrete_distribution<size_t> d(weights);
    return d(rng_);
  }
  std::string Bytes(size_t n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(rng_() & 0xff);
    return s;
  }
  std::string Key() {
    static const std::vector<std::string> kKeys = {"a",      "b",       "user:1",
                                                   "user:2", "user:10", std::string("\0\xff", 2),
                                                   "{t}x",   "{t}y",    std::string(300, 'k')};
    switch (Pick({80, 15, 5})) {
      case 0:
        return kKeys[rng_() % kKeys.size()];
      case 1:
        return Bytes(1 + rng_() % 6);
      default:
        return std::string(kMaxKeyBytes, 'K');
    }
  }
  std::string Value() {
    switch (Pick({10, 50, 35, 5})) {
      case 0:
        return "";
      case 1:
        return Bytes(1 + rng_() % 64);
      case 2:
        return fmt::format("v{}", rng_() % 1000);
      default:
        return Bytes(1000 + rng_() % (kMaxValue - 1000));
    }
  }
  WriteOptions Write() {
    WriteOptions o;
    if (rng_() % 4 == 0) o.consistency = rng_() % 2 ? Consistency::kOne : Consistency::kAll;
    if (rng_() % 5 == 0) o.ttl = std::chrono::milliseconds(1'000'000 + rng_() % 1'000'000);
    return o;
  }
  ReadOptions Read() {
    ReadOptions o;
    if (rng_() % 4 == 0) {
      o.consistency = std::vector<Consistency>{Consistency::kOne, Consistency::kQuorum,
                                               Consistency::kAll, Consistency::kSerial}[rng_() % 4];
    }
    return o;
  }
  std::string Where(const std::string& key) const {
    return fmt::format("step {} key '{}'", step_, key.size() > 40 ? key.substr(0, 40) : key);
  }
  // A write answered `v` for `key`: it must be newer than what the model had.
  void Wrote(const std::string& key, std::string value, Version v) {
    if (auto it = model_.find(key); it != model_.end()) {
      EXPECT_LT(it->second.version, v) << Where(key) << ": a new version is not above the last";
    }
    model_[key] = Stored{std::move(value), v};
  }
  void ExpectRecord(const std::string& key, const std::optional<Record>& got) {
    auto it = model_.find(key);
    if (it == model_.end()) {
      EXPECT_FALSE(got.has_value()) << Where(key) << ": read a value the model does not have";
      return;
    }
    ASSERT_TRUE(got.has_value()) << Where(key) << ": the value written is gone";
    EXPECT_EQ(got->value, it->second.value) << Where(key);
    EXPECT_EQ(got->version, it->second.version) << Where(key);
  }

  // Repair of a range (a single node has nothing to compare with: it says so) or a compaction,
  // with arguments the contract refuses now and then; the model must read back the same after.
  void Maintenance() {
    if (rng_() % 4 == 0) {
      auto r = client_.Compact();
      ASSERT_TRUE(r.ok()) << "step " << step_ << ": compact: " << r.status().ToString();
    } else {
      const bool bad_partition = rng_() % 4 == 0, bad_keyspace = rng_() % 6 == 0;
      const uint32_t partition =
          bad_partition ? 1024 + static_cast<uint32_t>(rng_() % 100000) : rng_() % 1024;
      // Half the ranges are tagged as steps of a `cairn repair` run (GET /v1/repairs counts
      // them), some with a step no run can have: no total, or an index not below it.
      RepairRunTag run;
      bool bad_run = false;
      if (rng_() % 2 == 0) {
        run.id = 1 + rng_() % 4;
        run.total = rng_() % 8 == 0 ? 0 : 1 + rng_() % 2048;
        run.index =
            rng_() % 8 == 0 ? run.total + rng_() % 10 : rng_() % std::max<uint64_t>(1, run.total);
        // What the run says it repairs is only shown; any text will do, but it travels in a
        // protobuf string field, so bytes that are not UTF-8 make the request malformed.
        std::string name = "default";
        const int kind = static_cast<int>(rng_() % 4);
        if (kind == 1) name = fmt::format("ks-{}", rng_() % 1000);
        if (kind == 2) name = "\xff\xfe" + Bytes(1 + rng_() % 8);
        run.keyspaces = {name};
        if (rng_() % 2 == 0) run.partition = partition;
        bad_run = run.total == 0 || run.index >= run.total || kind == 2;
      }
      auto r = client_.RepairRange(bad_keyspace ? "no_such_keyspace" : "", partition, 0, run);
      if (bad_run) {
        ASSERT_FALSE(r.ok()) << "step " << step_ << ": repair run step " << run.index << " of "
                             << run.total;
        EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().ToString();
      } else if (bad_keyspace || bad_partition) {
        ASSERT_FALSE(r.ok()) << "step " << step_ << ": repair of partition " << partition;
        EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().ToString();
      } else {
        ASSERT_TRUE(r.ok()) << "step " << step_ << ": repair: " << r.status().ToString();
        EXPECT_FALSE(r->skipped.empty()) << "one node cannot repair: it has no other replica";
        EXPECT_EQ(r->keys_repaired, 0u);
      }
    }
    for (int i = 0; i < 4; ++i) Get();
  }

  // A node operation the lone node refuses, with the code the contract names; the topology must
  // not change (the same epoch, no change in progress) and the model must read back the same.
  // JOIN and REPLACE go to a node started on standby, which this one is not; it cannot leave or
  // be removed (it holds the only replicas, and it is alive); there is no change to cancel; an
  // id that is no member is not found, and an operation that names no node is malformed.
  void NodeOperation() {
    using Op = AsyncClient::NodeOperation;
    const auto before = client_.ClusterStatus();
    ASSERT_TRUE(before.ok()) << "step " << step_ << ": status: " << before.status().ToString();
    uint32_t self = 0;
    for (const NodeInfo& n : before->nodes) {
      if (n.self) self = n.node_id;
    }
    ASSERT_NE(self, 0u) << "step " << step_ << ": the node does not say which one it is";
    const uint32_t stranger = self + 1 + static_cast<uint32_t>(rng_() % 1000);
    struct Case {
      Op op;
      uint32_t node;
      Code code;
    };
    const std::vector<Case> cases = {
        {Op::kJoin, 0, Code::kFailedPrecondition},
        {Op::kReplace, stranger, Code::kFailedPrecondition},
        {Op::kReplace, self, Code::kFailedPrecondition},
        {Op::kDecommission, self, Code::kFailedPrecondition},
        {Op::kRemove, self, Code::kFailedPrecondition},
        {Op::kCancel, 0, Code::kFailedPrecondition},
        {Op::kDecommission, stranger, Code::kNotFound},
        {Op::kRemove, stranger, Code::kNotFound},
        {Op::kDecommission, 0, Code::kInvalidArgument},
        {Op::kReplace, 0, Code::kInvalidArgument},
    };
    const Case& c = cases[rng_() % cases.size()];
    auto r = client_.ChangeNode(c.op, c.node);
    ++node_operations_;
    ASSERT_FALSE(r.ok()) << "step " << step_ << ": node operation " << static_cast<int>(c.op)
                         << " on node " << c.node << " was not refused";
    EXPECT_EQ(r.status().code(), c.code)
        << "step " << step_ << ": node operation " << static_cast<int>(c.op) << " on node "
        << c.node << ": " << r.status().ToString();
    const auto after = client_.ClusterStatus();
    ASSERT_TRUE(after.ok()) << "step " << step_ << ": status: " << after.status().ToString();
    EXPECT_EQ(after->topology_epoch, before->topology_epoch)
        << "step " << step_ << ": a refused node operation changed the topology";
    EXPECT_EQ(after->change, "") << "step " << step_;
    EXPECT_EQ(after->nodes.size(), before->nodes.size()) << "step " << step_;
    for (int i = 0; i < 4; ++i) Get();
  }

  void Put() {
    const std::string key = Key(), value = Value();
    auto r = client_.Put(key, value, Write());
    ASSERT_TRUE(r.ok()) << Where(key) << ": " << r.status().ToString();
    Wrote(key, value, *r);
  }
  void Get() {
    const std::string key = Key();
    auto r = client_.Get(key, Read());
    ASSERT_TRUE(r.ok()) << Where(key) << ": " << r.status().ToString();
    ExpectRecord(key, *r);
  }
  void Delete() {
    const std::string key = Key();
    auto r = client_.Delete(key, Write());
    ASSERT_TRUE(r.ok()) << Where(key) << ": " << r.status().ToString();
    model_.erase(key);
  }
  void Cas() {
    const std::string key = Key();
    auto it = model_.find(key);
    const bool exists = it != model_.end();
    std::optional<CasCondition> condition;
    bool holds = false;
    switch (rng_() % 5) {
      case 0:
        condition = CasCondition::IfNotExists(), holds = !exists;
        break;
      case 1:
        condition = CasCondition::IfExists(), holds = exists;
        break;
      case 2:
        condition = CasCondition::IfVersion(exists ? it->second.version : Version{1, 1});
        holds = exists;
        break;
      case 3:
        condition = CasCondition::IfVersion(Version{rng_() % 1'000'000 + 1, 3});
        holds = false;
        break;
      default: {
        const std::string v = exists && rng_() % 2 ? it->second.value : Value();
        holds = exists && it->second.value == v;
        condition = CasCondition::IfValue(v);
      }
    }
    std::optional<std::string> new_value;
    if (rng_() % 4 != 0) new_value = Value();
    auto r = client_.Cas(key, *condition, new_value, WriteOptions());
    ASSERT_TRUE(r.ok()) << Where(key) << ": " << r.status().ToString();
    ASSERT_EQ(r->applied, holds) << Where(key) << ": applied is not what the condition says";
    if (!holds) {
      ExpectRecord(key, r->current);
      return;
    }
    if (!new_value) {
      EXPECT_FALSE(r->current.has_value()) << Where(key) << ": a CAS delete answered a value";
      model_.erase(key);
      return;
    }
    ASSERT_TRUE(r->current.has_value()) << Where(key) << ": an applied CAS answered no value";
    EXPECT_EQ(r->current->value, *new_value) << Where(key);
    Wrote(key, *new_value, r->current->version);
  }
  // An increment: applied exactly as Redis's INCRBY / INCRBYFLOAT arithmetic says on the model's
  // value (base/counter.h), or refused with the model unchanged; a decimal that is not one is
  // INVALID_ARGUMENT.
  void Increment() {
    const std::string key = Key();
    if (rng_() % 3 == 0) {  // often a number, so that increments apply
      WriteOptions o;
      const std::string start = std::to_string(static_cast<int64_t>(rng_() % 2000) - 1000);
      auto put = client_.Put(key, start, o);
      ASSERT_TRUE(put.ok()) << Where(key) << ": " << put.status().ToString();
      Wrote(key, start, *put);
    }
    auto it = model_.find(key);
    std::optional<std::string_view> current;
    if (it != model_.end()) current = it->second.value;
    base::CounterDelta delta;
    std::string by_float;
    Result<IncrementResult> r = Status::Internal("unset");
    const bool decimal = rng_() % 3 == 0;
    if (decimal) {
      static const std::vector<std::string> kFloats = {
          "1.5", "-0.25", "3", "1e308", "-1e308", "0", "abc", "nan", "inf", " 1", ""};
      by_float = kFloats[rng_() % kFloats.size()];
      auto parsed = base::ParseLongDouble(by_float);
      r = client_.IncrementByFloat(key, by_float);
      if (!parsed) {
        if (by_float.empty()) {  // empty means "an integer increment of 0" on the wire
          delta.by = 0;
        } else {
          ASSERT_EQ(r.status().code(), Code::kInvalidArgument)
              << Where(key) << ": increment by '" << by_float << "': " << r.status().ToString();
          return;
        }
      } else {
        delta.is_float = true;
        delta.by_float = *parsed;
      }
    } else {
      static const std::vector<int64_t> kInts = {1, -1, 7, 1000, INT64_MAX, INT64_MIN, 0};
      delta.by = rng_() % 2 ? kInts[rng_() % kInts.size()] : static_cast<int64_t>(rng_());
      r = client_.Increment(key, delta.by);
    }
    std::string want;
    const base::CounterRefusal refused = base::AddToCounter(current, delta, &want);
    if (refused != base::CounterRefusal::kNone) {
      ASSERT_EQ(r.status().code(), Code::kFailedPrecondition)
          << Where(key) << ": an increment the arithmetic refuses: " << r.status().ToString();
      EXPECT_NE(r.status().message().find(base::CounterRefusalText(refused).substr(4)),
                std::string::npos)
          << Where(key) << ": " << r.status().ToString();
      return;
    }
    ASSERT_TRUE(r.ok()) << Where(key) << ": " << r.status().ToString();
    EXPECT_EQ(r->value, want) << Where(key);
    EXPECT_FALSE(r->estimate) << Where(key);
    // The answer has no version: read it, and it must be newer than the model's.
    auto read = client_.Get(key, ReadOptions());
    ASSERT_TRUE(read.ok() && read->has_value()) << Where(key) << ": the increment is gone";
    EXPECT_EQ((*read)->value, want) << Where(key);
    Wrote(key, want, (*read)->version);
  }
  void Scan() {
    const std::vector<std::string> prefixes = {"", "user:", "user:1", "{t}", "a", "zz"};
    const std::string prefix = prefixes[rng_() % prefixes.size()];
    ScanOptions o;
    o.limit = std::vector<uint32_t>{1, 2, 7, 100}[rng_() % 4];
    std::vector<std::pair<std::string, std::string>> seen;
    for (int pages = 0; pages < 100'000; ++pages) {
      auto page = client_.Scan(prefix, o);
      ASSERT_TRUE(page.ok()) << "step " << step_ << " scan: " << page.status().ToString();
      EXPECT_LE(page->entries.size(), o.limit);
      for (auto& [k, rec] : page->entries) seen.emplace_back(k, rec.value);
      if (page->done()) break;
      o.cursor = page->cursor;
    }
    std::vector<std::pair<std::string, std::string>> want;
    for (const auto& [k, s] : model_) {
      if (k.starts_with(prefix)) want.emplace_back(k, s.value);
    }
    EXPECT_EQ(seen, want) << "step " << step_ << ": scan of '" << prefix << "'";
  }
  void BatchGet() {
    std::vector<std::string> keys;
    for (size_t n = 1 + rng_() % 8; n > 0; --n) keys.push_back(Key());
    auto r = client_.BatchGet(keys, Read());
    ASSERT_TRUE(r.ok()) << "step " << step_ << ": " << r.status().ToString();
    ASSERT_EQ(r->size(), keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      ASSERT_TRUE((*r)[i].ok()) << Where(keys[i]) << ": " << (*r)[i].status().ToString();
      ExpectRecord(keys[i], *(*r)[i]);
    }
  }
  void BatchPut() {
    std::vector<std::pair<std::string, std::string>> items;
    for (size_t n = 1 + rng_() % 8; n > 0; --n) items.emplace_back(Key(), Value());
    auto r = client_.BatchPut(items, Write());
    ASSERT_TRUE(r.ok()) << "step " << step_ << ": " << r.status().ToString();
    ASSERT_EQ(r->size(), items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      ASSERT_TRUE((*r)[i].ok()) << Where(items[i].first) << ": " << (*r)[i].status().ToString();
      Wrote(items[i].first, items[i].second, *(*r)[i]);
    }
  }
  // Requests the contract refuses, with the code it names; nothing may be written.
  void Refused() {
    struct Case {
      std::string key, value;
      Code code;
    };
    const std::vector<Case> cases = {
        {"", "v", Code::kInvalidArgument},
        {std::string(kMaxKeyBytes + 1, 'K'), "v", Code::kTooLarge},
        {"big", std::string(kMaxValue + 1, 'v'), Code::kTooLarge},
    };
    const Case& c = cases[rng_() % cases.size()];
    Status s;
    switch (rng_() % 3) {
      case 0:
        s = client_.Put(c.key, c.value).status();
        break;
      case 1:
        s = client_.Cas(c.key, CasCondition::IfNotExists(), c.value).status();
        break;
      default: {
        auto r = client_.BatchPut({{"ok-key", "v"}, {c.key, c.value}});
        s = r.status();
      }
    }
    EXPECT_EQ(s.code(), c.code) << "step " << step_ << ": " << s.ToString();
  }

  Client& client_;
  std::mt19937_64 rng_;
  std::map<std::string, Stored> model_;
  uint64_t step_ = 0;
  uint64_t node_operations_ = 0;
};

uint64_t SeedFromEnvironment() {
  if (const char* s = std::getenv("CAIRN_FUZZ_SEED"); s != nullptr && *s != '\0') {
    return std::strtoull(s, nullptr, 10);
  }
  return std::random_device{}() * uint64_t{0x9e3779b97f4a7c15} ^ std::random_device{}();
}

TEST(NativeModelFuzz, RandomRequestsAgreeWithTheModel) {
  const uint64_t seed = SeedFromEnvironment();
  double seconds = 8;
  if (const char* s = std::getenv("CAIRN_FUZZ_SECONDS"); s != nullptr && *s != '\0') {
    seconds = std::strtod(s, nullptr);
  }
  std::printf("native_model_fuzz seed %llu (replay: CAIRN_FUZZ_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  cairn::testing::TempDir dir;
  CairndProcess::Options options;
  options.data_dir = dir.Sub("node");
  options.extra_args = {"--max-value-bytes", std::to_string(kMaxValue)};
  auto node = CairndProcess::Start(options);
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  ClientOptions client_options;
  client_options.servers = {(*node)->address()};
  Client client(client_options);
  NativeModelFuzz fuzz(client, seed);
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end && !::testing::Test::HasFailure()) fuzz.Step();
  std::printf(
      "native_model_fuzz seed %llu: %llu requests (%llu node operations), %zu keys in the "
      "model%s\n",
      static_cast<unsigned long long>(seed), static_cast<unsigned long long>(fuzz.steps()),
      static_cast<unsigned long long>(fuzz.node_operations()), fuzz.keys(),
      ::testing::Test::HasFailure() ? ", FAILED" : "");
}

}  // namespace
}  // namespace cairn
