#include "cluster/schema.h"

#include <future>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace cairn::cluster {
namespace {

using cairn::testing::TempDir;

class SchemaTest : public ::testing::Test {
 protected:
  void Open() {
    schema_.reset();
    engine_.reset();
    auto e = storage::Engine::Open(storage::EngineOptions{.path = dir_.Sub("db")});
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
    auto s = Schema::Load(engine_.get(), 16);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    schema_ = std::move(*s);
  }
  void SetUp() override { Open(); }

  Result<KeyspaceDef> Create(KeyspaceDef spec, uint64_t hlc = 100, bool if_not_exists = false) {
    return schema_->Create(spec, if_not_exists, 5000, Version{hlc, 1});
  }

  TempDir dir_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<Schema> schema_;
};

TEST_F(SchemaTest, DefaultKeyspaceExistsEverywhereWithTheSameId) {
  auto def = schema_->Find("default");
  ASSERT_TRUE(def.has_value());
  EXPECT_EQ(def->id, kDefaultKeyspaceId);
  EXPECT_EQ(def->ReplicationIn("any-dc"), 3u);
  EXPECT_EQ(def->read_consistency, Consistency::kQuorum);
  EXPECT_EQ(schema_->Drop("default", false, Version{1, 1}).code(), Code::kInvalidArgument);
  EXPECT_EQ(Create(KeyspaceDef{.name = "default"}).status().code(), Code::kAlreadyExists);
  EXPECT_TRUE(schema_->Records().empty());  // nothing to gossip about `default`
}

TEST_F(SchemaTest, CreateListDescribeDropSurviveRestart) {
  auto created = Create(KeyspaceDef{.name = "orders",
                                    .replication = {{"dc1", 3}, {"dc2", 2}},
                                    .read_consistency = Consistency::kOne,
                                    .write_consistency = Consistency::kAll});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->created_at_ms, 5000u);
  EXPECT_EQ(created->ReplicationIn("dc2"), 2u);
  EXPECT_EQ(created->ReplicationIn("dc3"), 0u);
  EXPECT_NE(created->id, kDefaultKeyspaceId);
  EXPECT_EQ(Create(KeyspaceDef{.name = "orders"}).status().code(), Code::kAlreadyExists);
  auto again = Create(KeyspaceDef{.name = "orders"}, 200, /*if_not_exists=*/true);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *created);

  Open();
  ASSERT_EQ(schema_->List().size(), 2u);
  EXPECT_EQ(*schema_->Find("orders"), *created);

  ASSERT_TRUE(schema_->Drop("orders", false, Version{300, 1}).ok());
  EXPECT_FALSE(schema_->Find("orders").has_value());
  EXPECT_EQ(schema_->Drop("orders", false, Version{301, 1}).code(), Code::kNotFound);
  EXPECT_TRUE(schema_->Drop("orders", true, Version{302, 1}).ok());
  Open();
  EXPECT_FALSE(schema_->Find("orders").has_value());
  ASSERT_EQ(schema_->Records().size(), 1u);  // the drop itself is kept, to spread it
  EXPECT_TRUE(schema_->Records()[0].dropped);
}

TEST_F(SchemaTest, IdsAreNeverReused) {
  auto a = Create(KeyspaceDef{.name = "a"}, 100);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(schema_->Drop("a", false, Version{150, 1}).ok());
  auto b = Create(KeyspaceDef{.name = "a"}, 200);
  ASSERT_TRUE(b.ok());
  EXPECT_NE(b->id, a->id);
  EXPECT_TRUE(engine_->DroppedKeyspaces().contains(a->id));
}

TEST_F(SchemaTest, RejectsBadDefinitions) {
  for (const char* bad : {"", "1abc", "has space", "dot.name", "-x",
                          "a123456789012345678901234567890123456789012345678"}) {
    EXPECT_EQ(Create(KeyspaceDef{.name = bad}).status().code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_EQ(Create(KeyspaceDef{.name = "x", .replication = {{"*", 0}}}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(Create(KeyspaceDef{.name = "x", .replication = {{"*", 16}}}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(Create(KeyspaceDef{.name = "x", .replication = {{"bad dc", 1}}}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(Create(KeyspaceDef{.name = "x", .read_consistency = Consistency::kAny}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(
      Create(KeyspaceDef{.name = "x", .write_consistency = Consistency::kSerial}).status().code(),
      Code::kInvalidArgument);
  EXPECT_TRUE(Create(KeyspaceDef{.name = "Ok_name-2"}).ok());
}

// Automatic splitting of hot counters (docs/hot-keys.md): off by default, its threshold and shard
// count checked on create and on alter with errors that name the range, kept across a restart.
TEST_F(SchemaTest, AutoSplitOptionIsCheckedAndKept) {
  auto plain = Create(KeyspaceDef{.name = "plain"});
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->auto_split_increments_per_s, 0u) << "off by default";
  EXPECT_EQ(plain->auto_split_shards, 16u);

  auto created = Create(
      KeyspaceDef{.name = "hot", .auto_split_increments_per_s = 500, .auto_split_shards = 8});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->auto_split_increments_per_s, 500u);
  EXPECT_EQ(created->auto_split_shards, 8u);
  Open();
  EXPECT_EQ(schema_->Find("hot")->auto_split_increments_per_s, 500u);
  EXPECT_EQ(schema_->Find("hot")->auto_split_shards, 8u);

  struct Bad {
    uint32_t rate, shards;
    bool linearizable;
    const char* says;
  };
  for (const Bad& bad :
       {Bad{9, 16, false, "0 (off) or 10 to 10000000, not 9"},
        Bad{10'000'001, 16, false, "not 10000001"},
        Bad{100, 1, false, "auto_split_shards is 2 to 64, not 1"}, Bad{100, 65, false, "not 65"},
        Bad{0, 0, false, "not 0"}, Bad{100, 16, true, "linearizable keyspace cannot split"}}) {
    auto r = Create(KeyspaceDef{.name = "bad",
                                .linearizable = bad.linearizable,
                                .auto_split_increments_per_s = bad.rate,
                                .auto_split_shards = bad.shards});
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad.rate << " " << bad.shards;
    EXPECT_NE(r.status().message().find(bad.says), std::string::npos) << r.status().message();
  }
  EXPECT_FALSE(schema_->Find("bad").has_value());
  // The limits themselves are allowed, and a linearizable keyspace may keep it off.
  EXPECT_TRUE(
      Create(KeyspaceDef{.name = "low", .auto_split_increments_per_s = 10, .auto_split_shards = 2})
          .ok());
  EXPECT_TRUE(Create(KeyspaceDef{.name = "high",
                                 .auto_split_increments_per_s = 10'000'000,
                                 .auto_split_shards = 64})
                  .ok());
  EXPECT_TRUE(Create(KeyspaceDef{.name = "lin", .linearizable = true}).ok());

  // Alter: each field alone, the result checked as a whole.
  KeyspaceChange on;
  on.auto_split_increments_per_s = 50;
  auto altered = schema_->Alter("plain", on, Version{400, 1});
  ASSERT_TRUE(altered.ok()) << altered.status().ToString();
  EXPECT_EQ(altered->auto_split_increments_per_s, 50u);
  EXPECT_EQ(altered->auto_split_shards, 16u);
  KeyspaceChange shards;
  shards.auto_split_shards = 4;
  EXPECT_EQ(schema_->Alter("plain", shards, Version{401, 1})->auto_split_shards, 4u);
  EXPECT_EQ(schema_->Find("plain")->auto_split_increments_per_s, 50u) << "left as it was";
  KeyspaceChange too_many;
  too_many.auto_split_shards = 100;
  EXPECT_EQ(schema_->Alter("plain", too_many, Version{402, 1}).status().code(),
            Code::kInvalidArgument);
  KeyspaceChange linearizable;
  linearizable.linearizable = true;
  EXPECT_EQ(schema_->Alter("plain", linearizable, Version{403, 1}).status().code(),
            Code::kInvalidArgument)
      << "a keyspace that splits counters automatically cannot become linearizable";
  EXPECT_EQ(schema_->Alter("lin", on, Version{404, 1}).status().code(), Code::kInvalidArgument);
  KeyspaceChange off;
  off.auto_split_increments_per_s = 0;
  EXPECT_EQ(schema_->Alter("plain", off, Version{405, 1})->auto_split_increments_per_s, 0u);
  EXPECT_EQ(schema_->Find("plain")->auto_split_shards, 4u);
}

TEST_F(SchemaTest, MergeAdoptsNewerDefinitionsOnly) {
  auto local = Create(KeyspaceDef{.name = "t", .replication = {{"*", 1}}}, 100);
  ASSERT_TRUE(local.ok());
  // An older definition of the same name from another node loses.
  KeyspaceDef older = *local;
  older.id = 12345;
  older.version = Version{50, 2};
  EXPECT_FALSE(schema_->HasNewer({older}));
  ASSERT_TRUE(schema_->Merge({older}).ok());
  EXPECT_EQ(schema_->Find("t")->id, local->id);

  // A newer one (another node created the same name later) wins everywhere.
  KeyspaceDef newer = *local;
  newer.id = 777;
  newer.version = Version{500, 2};
  newer.replication = {{"*", 2}};
  KeyspaceDef other{.name = "fresh", .id = 888, .version = Version{10, 3}};
  EXPECT_TRUE(schema_->HasNewer({newer, other}));
  ASSERT_TRUE(schema_->Merge({newer, other}).ok());
  EXPECT_EQ(schema_->Find("t")->id, 777u);
  EXPECT_EQ(schema_->Find("fresh")->id, 888u);
  EXPECT_TRUE(engine_->DroppedKeyspaces().contains(local->id));  // the loser's data goes

  // A drop spreads the same way, and survives a restart.
  KeyspaceDef drop = newer;
  drop.dropped = true;
  drop.version = Version{600, 2};
  ASSERT_TRUE(schema_->Merge({drop}).ok());
  EXPECT_FALSE(schema_->Find("t").has_value());
  EXPECT_TRUE(engine_->DroppedKeyspaces().contains(777u));
  EXPECT_FALSE(schema_->HasNewer({drop, other}));
  Open();
  EXPECT_FALSE(schema_->Find("t").has_value());
  EXPECT_EQ(schema_->Find("fresh")->id, 888u);
}

TEST_F(SchemaTest, ConcurrentCreatesOfOneNameAgreeOnTheId) {
  // Another node's schema, on its own engine, creates the same keyspace at about the same time.
  TempDir other_dir;
  auto other_engine = storage::Engine::Open(storage::EngineOptions{.path = other_dir.Sub("db")});
  ASSERT_TRUE(other_engine.ok());
  auto other = Schema::Load(other_engine->get(), 16);
  ASSERT_TRUE(other.ok());
  auto mine = Create(KeyspaceDef{.name = "events"}, 100);
  auto theirs = (*other)->Create(KeyspaceDef{.name = "events", .replication = {{"*", 2}}}, false,
                                 5000, Version{101, 2});
  ASSERT_TRUE(mine.ok() && theirs.ok());
  EXPECT_EQ(mine->id, theirs->id);
  // When the definitions meet, the newer settings win and no data is dropped.
  ASSERT_TRUE(schema_->Merge({*theirs}).ok());
  EXPECT_EQ(schema_->Find("events")->ReplicationIn("dc1"), 2u);
  EXPECT_FALSE(engine_->DroppedKeyspaces().contains(mine->id));
}

TEST(ReplicationTest, ParsesAndPrints) {
  EXPECT_EQ(ParseReplication("3"), (ReplicationMap{{"*", 3}}));
  EXPECT_EQ(ParseReplication("dc1=3,dc2=2"), (ReplicationMap{{"dc1", 3}, {"dc2", 2}}));
  EXPECT_EQ(ReplicationText(*ParseReplication("dc2=2,dc1=3")), "dc1=3,dc2=2");
  EXPECT_EQ(ReplicationText(*ParseReplication("5")), "5");
  for (const char* bad : {"", "0", "16", "x", "dc1", "dc1=", "=3", "dc1=3,dc1=2", "dc1=0", "dc1=3,",
                          "1dc=2", "dc1=99"}) {
    EXPECT_FALSE(ParseReplication(bad).has_value()) << bad;
  }
}

TEST_F(SchemaTest, IdentityIsCreatedOnceAndNeverChanges) {
  auto first = LoadOrCreateIdentity(*engine_, std::nullopt, 10);
  ASSERT_TRUE(first.ok());
  EXPECT_NE(first->node_id, 0u);
  EXPECT_EQ(first->partitions(), 1024u);
  auto second = LoadOrCreateIdentity(*engine_, std::nullopt, 4);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->node_id, first->node_id);
  EXPECT_EQ(second->partition_bits, 10u);  // fixed at creation
  EXPECT_TRUE(LoadOrCreateIdentity(*engine_, first->node_id, 10).ok());
  auto other = LoadOrCreateIdentity(*engine_, first->node_id + 1, 10);
  EXPECT_EQ(other.status().code(), Code::kInvalidArgument);
}

TEST(IdentityTest, RequestedIdIsUsedOnNewDirectory) {
  TempDir dir;
  auto e = storage::Engine::Open(storage::EngineOptions{.path = dir.Sub("db")});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(LoadOrCreateIdentity(**e, 0, 10).status().code(), Code::kInvalidArgument);
  auto id = LoadOrCreateIdentity(**e, 42, 10);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->node_id, 42u);
}

}  // namespace
}  // namespace cairn::cluster
