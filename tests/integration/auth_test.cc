// Users and permissions (docs/security.md) on a 3-node cluster started with --auth: users made
// on one node log in on another, bad passwords and wrong keyspaces are refused, refused requests
// change nothing, and the permission matrix: each role x each operation x each front door.
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "cairn/client.h"
#include "tests/harness/process.h"
#include "tests/support/options.h"
#include "tests/support/socket_read.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace cairn::testing {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kRootPassword = "root-pw-7d1e0b9a";
constexpr std::string_view kKeyspace = "orders";

// ---- a minimal RESP client on a raw socket -------------------------------------------------

// One reply, as text: "+OK", "-ERR ...", ":3", "$value" (bulk), "*" + elements joined by '\n'
// ("_" for a null).
class Resp {
 public:
  explicit Resp(const std::string& address) : fd_(ConnectTcp(address)) {}
  ~Resp() {
    if (fd_ >= 0) ::close(fd_);
  }
  std::string Call(const std::vector<std::string>& argv) {
    std::string out = fmt::format("*{}\r\n", argv.size());
    for (const std::string& a : argv) out += fmt::format("${}\r\n{}\r\n", a.size(), a);
    if (!SendAll(fd_, out)) return "<closed>";
    return Reply();
  }

 private:
  // Reads one line (without CRLF) from the buffer, reading more as needed.
  std::string Line() {
    auto r = ReadUntil(
        fd_, 10s, [](const std::string& b) { return b.find("\r\n") != std::string::npos; },
        std::move(buffer_));
    buffer_ = std::move(r.bytes);
    const size_t end = buffer_.find("\r\n");
    if (end == std::string::npos) return "<closed>";
    std::string line = buffer_.substr(0, end);
    buffer_.erase(0, end + 2);
    return line;
  }
  std::string Reply() {
    std::string line = Line();
    if (line.empty()) return line;
    const char type = line[0];
    if (type == '$') {
      const long n = std::stol(line.substr(1));
      if (n < 0) return "_";
      auto r = ReadUntil(
          fd_, 10s, [n](const std::string& b) { return b.size() >= static_cast<size_t>(n) + 2; },
          std::move(buffer_));
      buffer_ = std::move(r.bytes);
      std::string value = "$" + buffer_.substr(0, static_cast<size_t>(n));
      buffer_.erase(0, static_cast<size_t>(n) + 2);
      return value;
    }
    if (type == '*' || type == '%') {
      long n = std::stol(line.substr(1));
      if (type == '%') n *= 2;
      std::string all = "*";
      for (long i = 0; i < n; ++i) all += (i ? "\n" : "") + Reply();
      return all;
    }
    return line;
  }

  int fd_;
  std::string buffer_;
};

// ---- a minimal HTTP/1.1 client -------------------------------------------------------------

struct HttpAnswer {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;
};

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
  while (out.size() % 4 != 0) out += '=';
  return out;
}

HttpAnswer Http(const std::string& address, const std::string& method, const std::string& target,
                const std::string& authorization, const std::string& body = "",
                const std::vector<std::string>& headers = {}) {
  const int fd = ConnectTcp(address);
  HttpAnswer a;
  if (fd < 0) return a;
  std::string req =
      fmt::format("{} {} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n", method, target);
  if (!authorization.empty()) req += "Authorization: " + authorization + "\r\n";
  for (const std::string& h : headers) req += h + "\r\n";
  req += fmt::format("Content-Length: {}\r\n\r\n{}", body.size(), body);
  SendAll(fd, req);
  auto r = ReadUntilClosed(fd, 15s);
  ::close(fd);
  const size_t end = r.bytes.find("\r\n\r\n");
  if (r.bytes.size() < 12 || end == std::string::npos) return a;
  a.status = std::stoi(r.bytes.substr(9, 3));
  a.head = r.bytes.substr(0, end);
  a.body = r.bytes.substr(end + 4);
  return a;
}

std::string Basic(std::string_view user, std::string_view password) {
  return "Basic " + Base64(fmt::format("{}:{}", user, password));
}

// ---- the cluster -----------------------------------------------------------------------------

// The roles of the matrix: a user per role, with its password.
struct Role {
  std::string name;      // also the user's name
  std::string password;  // distinctive, so the leak check can look for it
  bool superuser = false;
  std::string keyspace;  // its grant's keyspace, if any
  uint32_t permissions = 0;
};

const std::vector<Role>& Roles() {
  static const std::vector<Role> roles = {
      {"nobody", "pw-nobody-41c2", false, "", 0},
      {"reader", "pw-reader-9f3c", false, std::string(kKeyspace), UserChange::kRead},
      {"writer", "pw-writer-2b7e", false, std::string(kKeyspace), UserChange::kWrite},
      {"admin", "pw-admin-c0d5", false, "*", UserChange::kAdmin},
      {"super", "pw-super-e81a", true, "", 0},
  };
  return roles;
}

ClientOptions ClientAs(const std::string& server, std::string user, std::string password) {
  ClientOptions o;
  o.servers = {server};
  o.keyspace = std::string(kKeyspace);
  o.connections_per_server = 1;
  o.read_retries = 0;
  o.user = std::move(user);
  o.password = std::move(password);
  return o;
}

class AuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const std::string bootstrap = dir_->Sub("bootstrap");
    std::ofstream(bootstrap) << "root:" << kRootPassword << "\n";
    // The harness waits for the cluster with `cairn status`, which must log in too; until the
    // bootstrap user exists it is refused, and the harness tries again.
    ::setenv("CAIRN_USER", "root", 1);
    ::setenv("CAIRN_PASSWORD", std::string(kRootPassword).c_str(), 1);
    LocalCluster::Options options;
    options.nodes = 3;
    options.extra_args = {"--auth",     "--auth-bootstrap-file", bootstrap,
                          "--resp",     "127.0.0.1:0",           "--http",
                          "127.0.0.1:0"};
    auto cluster = LocalCluster::Start(dir_->Sub("cluster"), options);
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    cluster_ = cluster->release();

    root_ = new Client(ClientAs(cluster_->address(0), "root", std::string(kRootPassword)));
    ASSERT_OK(
        WaitUntil([&] { return root_->Ping().status(); }, 30s, "the bootstrap user to log in"));
    KeyspaceSpec spec{std::string(kKeyspace)};
    ASSERT_TRUE(root_->CreateKeyspace(spec, true).ok());
    UserChange holder;
    holder.kind = UserChange::kAdd;
    holder.name = "tokenholder";
    holder.password = "pw-tokenholder-5";
    ASSERT_TRUE(root_->ChangeUser(holder).ok());
    for (const Role& role : Roles()) {
      UserChange add;
      add.kind = UserChange::kAdd;
      add.name = role.name;
      add.password = role.password;
      add.superuser = role.superuser;
      auto added = root_->ChangeUser(add);
      ASSERT_TRUE(added.ok()) << added.status().ToString();
      if (role.permissions != 0) {
        UserChange grant;
        grant.kind = UserChange::kGrant;
        grant.name = role.name;
        grant.keyspace = role.keyspace;
        grant.permissions = role.permissions;
        ASSERT_TRUE(root_->ChangeUser(grant).ok());
      }
    }
  }
  static void TearDownTestSuite() {
    delete root_;
    root_ = nullptr;
    delete cluster_;  // stops every node, by pid
    cluster_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (cluster_ == nullptr || root_ == nullptr) GTEST_SKIP() << "the cluster did not start";
  }

  // The value of `key` in the test keyspace as root reads it (QUORUM): "" when absent.
  static std::string RootGet(const std::string& key) {
    ReadOptions r;
    r.consistency = Consistency::kQuorum;
    auto v = root_->Get(key, r);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() && v->has_value() ? (*v)->value : "";
  }
  static void RootPut(const std::string& key, const std::string& value) {
    WriteOptions w;
    w.consistency = Consistency::kAll;
    ASSERT_TRUE(root_->Put(key, value, w).ok());
  }
  static bool KeyspaceExists(const std::string& name) { return root_->DescribeKeyspace(name).ok(); }
  static bool UserExists(const std::string& name) {
    auto users = root_->ListUsers();
    EXPECT_TRUE(users.ok());
    if (!users.ok()) return false;
    for (const UserInfo& u : *users) {
      if (u.name == name) return true;
    }
    return false;
  }

  static TempDir* dir_;
  static LocalCluster* cluster_;
  static Client* root_;
};

TempDir* AuthTest::dir_ = nullptr;
LocalCluster* AuthTest::cluster_ = nullptr;
Client* AuthTest::root_ = nullptr;

TEST_F(AuthTest, UsersReplicateToEveryNode) {
  // Made on node 0, the users log in on node 2 (they came with the topology epochs).
  for (const Role& role : Roles()) {
    Client client(ClientAs(cluster_->address(2), role.name, role.password));
    ASSERT_OK(WaitUntil([&] { return client.Ping().status(); }, 20s,
                        fmt::format("{} to log in on node 2", role.name)));
  }
  auto users = root_->ListUsers();
  ASSERT_TRUE(users.ok());
  EXPECT_GE(users->size(), Roles().size() + 2);  // and root and tokenholder
}

TEST_F(AuthTest, BadPasswordUnknownUserAndNoLoginAreRefused) {
  Client wrong(ClientAs(cluster_->address(1), "reader", "not-the-password"));
  EXPECT_EQ(wrong.Get("k").status().code(), Code::kUnauthenticated);
  Client unknown(ClientAs(cluster_->address(1), "mallory", "x"));
  EXPECT_EQ(unknown.Get("k").status().code(), Code::kUnauthenticated);
  Client anonymous(ClientAs(cluster_->address(1), "", ""));
  auto r = anonymous.Get("k");
  EXPECT_EQ(r.status().code(), Code::kUnauthenticated);
  EXPECT_NE(r.status().message().find("log in"), std::string::npos) << r.status().message();
  // The error never says which of user and password was wrong, nor echoes them.
  auto bad = wrong.Get("k");
  EXPECT_EQ(bad.status().message().find("not-the-password"), std::string::npos);
}

TEST_F(AuthTest, WrongKeyspaceIsRefusedAndARefusedWriteWritesNothing) {
  RootPut("guarded", "original");
  ClientOptions o = ClientAs(cluster_->address(1), "reader", "pw-reader-9f3c");
  Client reader(o);
  auto got = reader.Get("guarded");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ((*got)->value, "original");
  ReadOptions other;
  other.keyspace = "default";
  EXPECT_EQ(reader.Get("guarded", other).status().code(), Code::kPermissionDenied);
  auto put = reader.Put("guarded", "overwritten");
  EXPECT_EQ(put.status().code(), Code::kPermissionDenied);
  EXPECT_NE(put.status().message().find("write"), std::string::npos) << put.status().message();
  EXPECT_EQ(reader.Put("new-key", "x").status().code(), Code::kPermissionDenied);
  EXPECT_EQ(RootGet("guarded"), "original");
  EXPECT_EQ(RootGet("new-key"), "");
}

TEST_F(AuthTest, RevokedGrantTakesEffectOnOpenConnections) {
  UserChange add;
  add.kind = UserChange::kAdd;
  add.name = "temp";
  add.password = "pw-temp-1";
  ASSERT_TRUE(root_->ChangeUser(add).ok());
  UserChange grant;
  grant.kind = UserChange::kGrant;
  grant.name = "temp";
  grant.keyspace = std::string(kKeyspace);
  grant.permissions = UserChange::kRead;
  ASSERT_TRUE(root_->ChangeUser(grant).ok());
  Client temp(ClientAs(cluster_->address(0), "temp", "pw-temp-1"));
  ASSERT_TRUE(temp.Get("k").ok());
  grant.kind = UserChange::kRevoke;
  ASSERT_TRUE(root_->ChangeUser(grant).ok());
  EXPECT_EQ(temp.Get("k").status().code(), Code::kPermissionDenied);  // same connection
  UserChange del;
  del.kind = UserChange::kDelete;
  del.name = "temp";
  ASSERT_TRUE(root_->ChangeUser(del).ok());
  EXPECT_EQ(temp.Get("k").status().code(), Code::kUnauthenticated);
}

// ---- the permission matrix ---------------------------------------------------------------

enum class Op { kGet, kPut, kDelete, kCas, kScan, kKeyspaceCreate, kUserAdd };
constexpr Op kOps[] = {Op::kGet,    Op::kPut, Op::kDelete, Op::kCas, Op::kScan, Op::kKeyspaceCreate,
                       Op::kUserAdd};

std::string_view OpName(Op op) {
  switch (op) {
    case Op::kGet:
      return "get";
    case Op::kPut:
      return "put";
    case Op::kDelete:
      return "delete";
    case Op::kCas:
      return "cas";
    case Op::kScan:
      return "scan";
    case Op::kKeyspaceCreate:
      return "keyspace-create";
    case Op::kUserAdd:
      return "user-add";
  }
  return "?";
}

// Whether `role` may do `op` (docs/security.md): reads need READ on the keyspace, writes WRITE,
// keyspace creation ADMIN on it (the admin role holds ADMIN on "*"), user administration ADMIN
// on "*".
bool Allowed(const Role& role, Op op) {
  if (role.superuser) return true;
  uint32_t bits = role.permissions;
  if (bits & UserChange::kAdmin) bits |= UserChange::kRead | UserChange::kWrite;
  switch (op) {
    case Op::kGet:
    case Op::kScan:
      return bits & UserChange::kRead;
    case Op::kPut:
    case Op::kDelete:
    case Op::kCas:
      return bits & UserChange::kWrite;
    case Op::kKeyspaceCreate:
    case Op::kUserAdd:
      return (bits & UserChange::kAdmin) && role.keyspace == "*";
  }
  return false;
}

// What an operation's outcome was: allowed (did it), refused for permissions, or something
// else (a failure of the test's own).
enum class Outcome { kDone, kRefused, kOther };

struct Trial {
  Outcome outcome = Outcome::kOther;
  std::string detail;
};

// Each trial touches its own names, so allowed ones do not disturb the others; refused ones
// aim at the sentinel key, which must keep its value.
struct Names {
  std::string key, keyspace, user;
};
Names NamesOf(const Role& role, std::string_view door) {
  return {fmt::format("k-{}-{}", role.name, door), fmt::format("ks_{}_{}", role.name, door),
          fmt::format("u-{}-{}", role.name, door)};
}

Trial FromStatus(const Status& s) {
  if (s.ok()) return {Outcome::kDone, ""};
  if (s.code() == Code::kPermissionDenied) return {Outcome::kRefused, s.ToString()};
  return {Outcome::kOther, s.ToString()};
}

Trial NativeTrial(const std::string& server, const Role& role, Op op, bool allowed) {
  Client c(ClientAs(server, role.name, role.password));
  const Names n = NamesOf(role, "native");
  const std::string key = allowed ? n.key : "sentinel";
  switch (op) {
    case Op::kGet:
      return FromStatus(c.Get(key).status());
    case Op::kPut:
      return FromStatus(c.Put(key, "changed").status());
    case Op::kDelete:
      return FromStatus(c.Delete(key).status());
    case Op::kCas:
      return FromStatus(c.Cas(key, CasCondition::IfExists(), std::string("changed")).status());
    case Op::kScan:
      return FromStatus(c.Scan("").status());
    case Op::kKeyspaceCreate: {
      KeyspaceSpec spec{n.keyspace};
      return FromStatus(c.CreateKeyspace(spec).status());
    }
    case Op::kUserAdd: {
      UserChange add;
      add.kind = UserChange::kAdd;
      add.name = n.user;
      add.password = "pw-new-user";
      return FromStatus(c.ChangeUser(add).status());
    }
  }
  return {};
}

Trial FromResp(const std::string& reply) {
  if (reply.starts_with("-NOPERM")) return {Outcome::kRefused, reply};
  if (reply.starts_with("-")) return {Outcome::kOther, reply};
  return {Outcome::kDone, reply};
}

// RESP has no keyspace creation: that cell of the matrix is skipped (nullopt).
std::optional<Trial> RespTrial(const std::string& server, const Role& role, Op op, bool allowed) {
  Resp r(server);
  const std::string auth = r.Call({"AUTH", role.name, role.password});
  if (auth != "+OK") return Trial{Outcome::kOther, "AUTH: " + auth};
  const std::string ks = r.Call({"CAIRN.KEYSPACE", std::string(kKeyspace)});
  if (ks.starts_with("-")) return Trial{Outcome::kOther, "CAIRN.KEYSPACE: " + ks};
  const Names n = NamesOf(role, "resp");
  const std::string key = allowed ? n.key : "sentinel";
  switch (op) {
    case Op::kGet:
      return FromResp(r.Call({"GET", key}));
    case Op::kPut:
      return FromResp(r.Call({"SET", key, "changed"}));
    case Op::kDelete:
      return FromResp(r.Call({"DEL", key}));
    case Op::kCas:
      return FromResp(r.Call({"SET", key, "changed", "XX"}));
    case Op::kScan:
      return FromResp(r.Call({"SCAN", "0"}));
    case Op::kKeyspaceCreate:
      return std::nullopt;
    case Op::kUserAdd:
      return FromResp(r.Call({"ACL", "SETUSER", n.user, "on", ">pw-new-user"}));
  }
  return std::nullopt;
}

Trial FromHttp(const HttpAnswer& a) {
  if (a.status == 403) return {Outcome::kRefused, a.body};
  if (a.status >= 200 && a.status < 300) return {Outcome::kDone, ""};
  if (a.status == 404 && a.body.find("NOT_FOUND") != std::string::npos) {
    return {Outcome::kDone, ""};  // a GET of an absent key
  }
  return {Outcome::kOther, fmt::format("{} {}", a.status, a.body)};
}

// HTTP's user administration: a bearer token for another user, "tokenholder" (users are added with
// cairn user).
Trial HttpTrial(const std::string& server, const Role& role, Op op, bool allowed) {
  const std::string auth = Basic(role.name, role.password);
  const Names n = NamesOf(role, "http");
  const std::string key = allowed ? n.key : "sentinel";
  const std::string path = fmt::format("/v1/kv/{}/{}", kKeyspace, key);
  switch (op) {
    case Op::kGet:
      return FromHttp(Http(server, "GET", path, auth));
    case Op::kPut:
      return FromHttp(Http(server, "PUT", path, auth, "changed"));
    case Op::kDelete:
      return FromHttp(Http(server, "DELETE", path, auth));
    case Op::kCas:
      return FromHttp(Http(server, "PUT", path, auth, "changed", {"If-Match: *"}));
    case Op::kScan:
      return FromHttp(Http(server, "GET", fmt::format("/v1/kv/{}", kKeyspace), auth));
    case Op::kKeyspaceCreate:
      return FromHttp(Http(server, "POST", "/v1/keyspaces", auth,
                           fmt::format(R"({{"name": "{}"}})", n.keyspace)));
    case Op::kUserAdd:
      return FromHttp(Http(server, "POST", "/v1/users/tokenholder/tokens", auth));
  }
  return {};
}

TEST_F(AuthTest, PermissionMatrix) {
  RootPut("sentinel", "original");
  int cells = 0;
  for (const Role& role : Roles()) {
    for (Op op : kOps) {
      const bool allowed = Allowed(role, op);
      // Allowed CAS (IF EXISTS) and delete need their key.
      if (allowed) {
        for (std::string_view door : {"native", "resp", "http"}) {
          RootPut(NamesOf(role, door).key, "original");
        }
      }
      std::map<std::string, Trial> trials;
      trials["native"] = NativeTrial(cluster_->address(cells % 3), role, op, allowed);
      if (auto t = RespTrial(cluster_->node(cells % 3).resp_address(), role, op, allowed)) {
        trials["resp"] = *t;
      }
      trials["http"] = HttpTrial(cluster_->node(cells % 3).http_address(), role, op, allowed);
      for (const auto& [door, trial] : trials) {
        ++cells;
        const Outcome expected = allowed ? Outcome::kDone : Outcome::kRefused;
        EXPECT_EQ(trial.outcome, expected)
            << role.name << " x " << OpName(op) << " x " << door << ": " << trial.detail;
        if (allowed) continue;
        // Refused: nothing changed.
        EXPECT_EQ(RootGet("sentinel"), "original")
            << role.name << " x " << OpName(op) << " x " << door;
        const Names n = NamesOf(role, door);
        if (op == Op::kKeyspaceCreate) {
          EXPECT_FALSE(KeyspaceExists(n.keyspace)) << door;
        }
        if (op == Op::kUserAdd && door != "http") {
          EXPECT_FALSE(UserExists(n.user)) << door;
        }
        if (op == Op::kUserAdd && door == "http") {
          auto users = root_->ListUsers();
          ASSERT_TRUE(users.ok());
          for (const UserInfo& u : *users) {
            if (u.name == "tokenholder") {
              EXPECT_EQ(u.tokens, 0u) << role.name;
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(cells, 5 * 7 * 3 - 5);  // RESP has no keyspace creation
}

TEST_F(AuthTest, RespLoginCommands) {
  Resp r(cluster_->node(1).resp_address());
  EXPECT_EQ(r.Call({"GET", "k"}), "-NOAUTH Authentication required.");
  EXPECT_EQ(r.Call({"AUTH", "reader", "wrong"}),
            "-WRONGPASS invalid username-password pair or user is disabled.");
  EXPECT_EQ(r.Call({"AUTH", "wrong-password-alone"}),
            "-WRONGPASS invalid username-password pair or user is disabled.");
  const std::string hello = r.Call({"HELLO", "3", "AUTH", "reader", "pw-reader-9f3c"});
  EXPECT_TRUE(hello.starts_with("*")) << hello;
  EXPECT_EQ(r.Call({"ACL", "WHOAMI"}), "$reader");
  EXPECT_TRUE(r.Call({"ACL", "LIST"}).starts_with("-NOPERM")) << "ACL LIST needs ADMIN";
  EXPECT_TRUE(r.Call({"SET", "k", "v"}).starts_with("-NOPERM"));

  Resp admin(cluster_->node(2).resp_address());
  ASSERT_EQ(admin.Call({"AUTH", "root", std::string(kRootPassword)}), "+OK");
  const std::string list = admin.Call({"ACL", "LIST"});
  EXPECT_NE(list.find("user reader on +@read:orders"), std::string::npos) << list;
  EXPECT_NE(list.find("user root on superuser"), std::string::npos) << list;
  EXPECT_EQ(list.find(std::string(kRootPassword)), std::string::npos);
  EXPECT_EQ(admin.Call({"ACL", "SETUSER", "carol", "on", ">pw-carol-1", "+@write:orders"}), "+OK");
  Resp carol(cluster_->node(0).resp_address());
  ASSERT_OK(WaitUntil(
      [&] {
        return carol.Call({"AUTH", "carol", "pw-carol-1"}) == "+OK";
      },
      20s, "carol to log in on node 0"));
  ASSERT_FALSE(carol.Call({"CAIRN.KEYSPACE", std::string(kKeyspace)}).starts_with("-"));
  EXPECT_EQ(carol.Call({"SET", "carol-key", "v"}), "+OK");
  EXPECT_TRUE(carol.Call({"GET", "carol-key"}).starts_with("-NOPERM"));
  EXPECT_EQ(admin.Call({"ACL", "DELUSER", "carol", "nobody-such"}), ":1");
  const std::string cat = admin.Call({"ACL", "CAT"});
  EXPECT_NE(cat.find("$read"), std::string::npos) << cat;
}

TEST_F(AuthTest, HttpAuthentication) {
  const std::string server = cluster_->node(0).http_address();
  HttpAnswer none = Http(server, "GET", "/v1/kv/orders/x", "");
  EXPECT_EQ(none.status, 401);
  EXPECT_NE(none.head.find("WWW-Authenticate: Basic realm=\"cairn\""), std::string::npos)
      << none.head;
  EXPECT_NE(none.body.find("UNAUTHENTICATED"), std::string::npos) << none.body;
  EXPECT_EQ(Http(server, "GET", "/v1/kv/orders/x", Basic("reader", "wrong")).status, 401);
  EXPECT_EQ(Http(server, "GET", "/health", "").status, 200);
  EXPECT_EQ(Http(server, "GET", "/ui", "").status, 401);
  EXPECT_EQ(Http(server, "GET", "/v1/kv/default/x", Basic("reader", "pw-reader-9f3c")).status, 403);
  // The progress of repair runs: counts and keyspace names, for any logged-in user.
  EXPECT_EQ(Http(server, "GET", "/v1/repairs", "").status, 401);
  HttpAnswer repairs = Http(server, "GET", "/v1/repairs", Basic("reader", "pw-reader-9f3c"));
  EXPECT_EQ(repairs.status, 200) << repairs.body;
  EXPECT_NE(repairs.body.find("\"runs\""), std::string::npos) << repairs.body;

  // A bearer token: issued once, then good for requests.
  HttpAnswer token =
      Http(server, "POST", "/v1/users/reader/tokens", Basic("reader", "pw-reader-9f3c"));
  ASSERT_EQ(token.status, 200) << token.body;
  const size_t at = token.body.find("cairn_");
  ASSERT_NE(at, std::string::npos) << token.body;
  const std::string bearer = "Bearer " + token.body.substr(at, 6 + 64);
  EXPECT_EQ(Http(server, "GET", "/v1/kv/orders/x", bearer).status, 404);  // allowed; absent
  EXPECT_EQ(Http(server, "PUT", "/v1/kv/orders/x", bearer, "v").status, 403);
  EXPECT_EQ(Http(server, "GET", "/v1/kv/orders/x", "Bearer cairn_0000").status, 401);
}

TEST_F(AuthTest, CliManagesUsers) {
  const std::string server = cluster_->address(1);
  const std::string pw = dir_->Sub("dave.pw");
  std::ofstream(pw) << "pw-dave-77\n";
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {CliPath(), "--server", server});
    return RunCommand(args);  // as root: CAIRN_USER and CAIRN_PASSWORD
  };
  auto added = cli({"user", "add", "dave", "--password-file", pw});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  auto granted = cli({"user", "grant", "dave", std::string(kKeyspace), "read,write"});
  ASSERT_EQ(granted.exit_code, 0) << granted.err;
  EXPECT_NE(granted.out.find("orders=read,write"), std::string::npos) << granted.out;
  auto token = cli({"user", "token", "dave"});
  ASSERT_EQ(token.exit_code, 0) << token.err;
  EXPECT_TRUE(token.out.starts_with("cairn_")) << token.out;
  // dave logs in with --password-file, on the command line of any node.
  auto put =
      RunCommand({CliPath(), "--server", cluster_->address(2), "--keyspace", std::string(kKeyspace),
                  "--user", "dave", "--password-file", pw, "put", "dave-key", "v"});
  EXPECT_EQ(put.exit_code, 0) << put.err;
  auto denied = RunCommand({CliPath(), "--server", cluster_->address(2), "--user", "dave",
                            "--password-file", pw, "keyspace", "create", "daves"});
  EXPECT_EQ(denied.exit_code, 2) << denied.err;
  EXPECT_NE(denied.err.find("PERMISSION_DENIED"), std::string::npos) << denied.err;
  auto revoked = cli({"user", "revoke", "dave", std::string(kKeyspace), "write"});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  ASSERT_EQ(cli({"user", "clear-tokens", "dave"}).exit_code, 0);
  auto list = cli({"--json", "user", "list"});
  EXPECT_NE(
      list.out.find(
          R"({"name":"dave","superuser":false,"disabled":false,"grants":{"orders":"read"},"tokens":0})"),
      std::string::npos)
      << list.out;
  ASSERT_EQ(cli({"user", "del", "dave"}).exit_code, 0);
  EXPECT_EQ(cli({"user", "del", "dave"}).exit_code, 1);  // NOT_FOUND
}

TEST_F(AuthTest, PasswordsAppearNowhere) {
  // Make sure every password has been used on every door at least once (logins, failures).
  for (const Role& role : Roles()) {
    Client c(ClientAs(cluster_->address(0), role.name, role.password));
    (void)c.Ping();
  }
  const auto metrics =
      Http(cluster_->node(0).http_address(), "GET", "/metrics", Basic("root", kRootPassword));
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("cairn_auth_failures_total"), std::string::npos);
  auto status = RunCommand({CliPath(), "--server", cluster_->address(0), "--json", "status"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  auto users = RunCommand({CliPath(), "--server", cluster_->address(0), "--json", "user", "list"});
  ASSERT_EQ(users.exit_code, 0) << users.err;
  EXPECT_NE(users.out.find("\"reader\""), std::string::npos) << users.out;
  std::vector<std::string> secrets = {
      std::string(kRootPassword), "not-the-password", "pw-new-user", "pw-carol-1", "pw-temp-1",
      "pw-tokenholder-5",         "pw-dave-77"};
  for (const Role& role : Roles()) secrets.push_back(role.password);
  for (const std::string& secret : secrets) {
    for (size_t i = 0; i < cluster_->size(); ++i) {
      EXPECT_EQ(cluster_->node(i).Log().find(secret), std::string::npos)
          << "node " << i << "'s log holds a password";
    }
    EXPECT_EQ(metrics.body.find(secret), std::string::npos);
    EXPECT_EQ(status.out.find(secret), std::string::npos);
    EXPECT_EQ(status.err.find(secret), std::string::npos);
    EXPECT_EQ(users.out.find(secret), std::string::npos);
  }
}

}  // namespace
}  // namespace cairn::testing
