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
    auto s = Schema::Load(engine_.get(), 16, 1000);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    schema_ = std::move(*s);
  }
  void SetUp() override { Open(); }

  TempDir dir_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<Schema> schema_;
};

TEST_F(SchemaTest, DefaultKeyspaceExists) {
  auto def = schema_->Find("default");
  ASSERT_TRUE(def.has_value());
  EXPECT_EQ(def->replication_factor, 3u);
  EXPECT_EQ(def->read_consistency, Consistency::kQuorum);
  EXPECT_EQ(schema_->Drop("default", false).code(), Code::kInvalidArgument);
}

TEST_F(SchemaTest, CreateListDescribeDropSurviveRestart) {
  auto created = schema_->Create(KeyspaceDef{.name = "orders",
                                             .replication_factor = 1,
                                             .read_consistency = Consistency::kOne,
                                             .write_consistency = Consistency::kAll},
                                 false, 5000);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->created_at_ms, 5000u);
  EXPECT_NE(created->id, schema_->Find("default")->id);
  EXPECT_EQ(schema_->Create(KeyspaceDef{.name = "orders"}, false, 0).status().code(),
            Code::kAlreadyExists);
  auto again = schema_->Create(KeyspaceDef{.name = "orders"}, true, 0);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *created);  // if-not-exists returns what is there

  Open();
  ASSERT_EQ(schema_->List().size(), 2u);
  EXPECT_EQ(*schema_->Find("orders"), *created);

  ASSERT_TRUE(schema_->Drop("orders", false).ok());
  EXPECT_FALSE(schema_->Find("orders").has_value());
  EXPECT_EQ(schema_->Drop("orders", false).code(), Code::kNotFound);
  EXPECT_TRUE(schema_->Drop("orders", true).ok());
  Open();
  EXPECT_FALSE(schema_->Find("orders").has_value());
}

TEST_F(SchemaTest, IdsAreNeverReused) {
  auto a = schema_->Create(KeyspaceDef{.name = "a"}, false, 0);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(schema_->Drop("a", false).ok());
  auto b = schema_->Create(KeyspaceDef{.name = "a"}, false, 0);
  ASSERT_TRUE(b.ok());
  EXPECT_GT(b->id, a->id);
  EXPECT_TRUE(engine_->DroppedKeyspaces().contains(a->id));
}

TEST_F(SchemaTest, RejectsBadDefinitions) {
  for (const char* bad : {"", "1abc", "has space", "dot.name", "-x",
                          "a123456789012345678901234567890123456789012345678"}) {
    EXPECT_EQ(schema_->Create(KeyspaceDef{.name = bad}, false, 0).status().code(),
              Code::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(
      schema_->Create(KeyspaceDef{.name = "x", .replication_factor = 0}, false, 0).status().code(),
      Code::kInvalidArgument);
  EXPECT_EQ(
      schema_->Create(KeyspaceDef{.name = "x", .replication_factor = 16}, false, 0).status().code(),
      Code::kInvalidArgument);
  EXPECT_EQ(
      schema_->Create(KeyspaceDef{.name = "x", .read_consistency = Consistency::kAny}, false, 0)
          .status()
          .code(),
      Code::kInvalidArgument);
  EXPECT_EQ(
      schema_->Create(KeyspaceDef{.name = "x", .write_consistency = Consistency::kSerial}, false, 0)
          .status()
          .code(),
      Code::kInvalidArgument);
  EXPECT_TRUE(schema_->Create(KeyspaceDef{.name = "Ok_name-2"}, false, 0).ok());
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
