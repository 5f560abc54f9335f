// The connection and server commands of the RESP front door (PING, HELLO, AUTH, CLIENT, INFO,
// COMMAND, CONFIG, SELECT, QUIT, RESET, TIME, CAIRN.KEYSPACE ...): they need no Coordinator call
// (or only a local, non-blocking one), run at once and in order on the connection's thread, and
// read or change the state of the connection (its Session) or report on the server (ServerState).
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "base/metrics.h"
#include "frontdoor/resp/commands.h"
#include "frontdoor/resp/reply_writer.h"
#include "frontdoor/resp/resp_front_door.h"
#include "frontdoor/resp/tracking.h"

namespace cairn::frontdoor::resp {

// The Redis version whose commands and replies this front door follows (HELLO, INFO).
inline constexpr std::string_view kRedisVersion = "7.0.0";

// What Redis keeps in its client struct: the state of one connection that commands read and
// change. The connection derives from it.
// Thread safety: the fields under "owned by the connection's thread" are used only there; those
// under mu_ are also read by CLIENT LIST from other connections' threads.
class Session {
 public:
  Session(uint64_t id, asio::ip::tcp::endpoint peer, asio::ip::tcp::endpoint local,
          bool authenticated);
  virtual ~Session() = default;

  // Asks the connection to stop reading and to close once what it has read is answered. Any
  // thread.
  virtual void RequestClose() = 0;
  // Sends `bytes`, a RESP3 push (an invalidation), to the client out of band: after the replies
  // of the commands read so far (a read that ran while its key changed is answered before the
  // invalidation of that key). Dropped when the connection speaks RESP2 or has closed. Any
  // thread.
  virtual void Push(std::string bytes) = 0;

  uint64_t id() const { return id_; }
  std::string address() const;  // the peer, ip:port, as CLIENT LIST and CLIENT KILL name it
  const asio::ip::tcp::endpoint& local() const { return local_; }
  // One line of CLIENT LIST. Any thread.
  std::string Describe() const;

  // What CLIENT LIST shows of the connection besides its id and addresses.
  struct ClientInfo {
    std::string name;
    std::string lib_name, lib_ver;  // CLIENT SETINFO
    std::string last_command;
    std::string keyspace;  // the connection's keyspace; empty means "default"
    int protocol = 2;
    std::chrono::steady_clock::time_point last_active = std::chrono::steady_clock::now();
    // CLIENT TRACKING, as CLIENT LIST shows it (flags t and B, redir).
    bool tracking = false;
    bool bcast = false;
    uint64_t redirect = 0;
  };
  // Calls fn(const ClientInfo&) under the session's mutex and returns what it returns.
  template <typename Fn>
  auto Read(Fn fn) const {
    std::lock_guard lock(mu_);
    return fn(info_);
  }
  // Calls fn(ClientInfo&) under the session's mutex, to change it.
  template <typename Fn>
  void Update(Fn fn) {
    std::lock_guard lock(mu_);
    fn(info_);
  }
  int protocol() const {
    return Read([](const ClientInfo& c) { return c.protocol; });
  }
  std::string keyspace() const {
    return Read([](const ClientInfo& c) { return c.keyspace; });
  }

  // Owned by the connection's thread.
  bool authenticated = false;
  std::string user;  // with --auth: who logged in (empty: nobody)
  bool stop_reading = false;
  Consistency read_level = Consistency::kDefault;
  Consistency write_level = Consistency::kDefault;
  // Client-side caching (CLIENT TRACKING): the mode this connection asked for (the tracking
  // table has what invalidations need), and CLIENT CACHING yes/no, which applies to the next
  // command other than CLIENT.
  bool tracking = false;
  TrackingMode tracking_mode;
  bool caching_next = false;

 private:
  const uint64_t id_;
  const asio::ip::tcp::endpoint peer_, local_;
  const std::chrono::steady_clock::time_point created_ = std::chrono::steady_clock::now();

  mutable std::mutex mu_;
  ClientInfo info_;  // guarded by mu_
};

// What the connections of one RESP server share.
// Thread safety: any thread; `sessions` under `mu`.
struct ServerState {
  coordinator::Coordinator* coordinator = nullptr;
  RespOptions options;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  CursorTable cursors;
  std::atomic<uint64_t> next_client_id{1};
  base::metrics::ShardedCounter commands;  // every command adds to it: per thread
  std::atomic<uint64_t> connections_received{0};
  std::atomic<uint64_t> protocol_errors{0};
  std::mutex mu;
  std::map<uint64_t, std::weak_ptr<Session>> sessions;  // guarded by mu
  // Client-side caching: which connections track which keys (made with the options' bound).
  std::unique_ptr<TrackingTable> tracking;
  std::atomic<uint64_t> pushes{0};       // invalidation pushes sent (null ones included)
  std::atomic<uint64_t> pushed_keys{0};  // keys in them
  std::atomic<bool> sweeping{false};     // a coroutine invalidates expiring tracked keys
};

// Sends each invalidation to its connection (or the one it redirects to), as a RESP3 push.
// A redirect to a connection that has gone sends `tracking-redir-broken` to the tracking one
// instead, as Redis does. Any thread.
void Deliver(ServerState& server, std::vector<Invalidation> invalidations);
// The RESP3 push of one invalidation (keys, or null for every key).
std::string InvalidationPush(const Invalidation& inv);

// One call of a connection command: its arguments, the connection it came on, and its reply.
struct ConnectionCall {
  ConnectionCall(Session& session, ServerState& server, std::vector<std::string>& argv,
                 std::string* out)
      : session(session), server(server), argv(argv), out(out) {}

  Session& session;
  ServerState& server;
  std::vector<std::string>& argv;
  std::string* out;
  bool close_after = false;  // close the connection once this reply is written (QUIT)
  // Set by INFO when the keyspace section is wanted: `info_text` holds the other sections and
  // the command's data handler finishes the reply (counting keys takes a scan).
  bool hand_on = false;
  std::string info_text;
  // With --auth: AUTH or HELLO ... AUTH whose password is not in the login cache sets `login`
  // (user, password) and replies nothing; the connection verifies it off the reactor and calls
  // the command again with `login_verdict` set.
  std::optional<std::pair<std::string, std::string>> login;
  std::optional<bool> login_verdict;
  // Set by CLIENT TRACKING on when it turned tracking on for this connection: the connection
  // answers (and reads on) once Coordinator::StartTracking() has told the other nodes.
  bool start_tracking = false;
  // Set by CLIENT TRACKING off (or RESET) when it turned tracking off.
  bool stop_tracking = false;

  // A writer in the connection's protocol at the time of the call.
  ReplyWriter Reply() const { return ReplyWriter(out, session.protocol()); }
};

void Ping(ConnectionCall& call);
void Echo(ConnectionCall& call);
void Hello(ConnectionCall& call);
void Auth(ConnectionCall& call);
void Select(ConnectionCall& call);
void Quit(ConnectionCall& call);
void Reset(ConnectionCall& call);
void Time(ConnectionCall& call);
void Client(ConnectionCall& call);
void Command(ConnectionCall& call);
void Config(ConnectionCall& call);
void Info(ConnectionCall& call);
void CairnKeyspace(ConnectionCall& call);
void CairnConsistency(ConnectionCall& call);
void CairnStatus(ConnectionCall& call);
// Whether a new connection (or one after RESET) starts authenticated: no --requirepass, no --auth.
bool AuthenticatedAtStart(const RespOptions& options);

}  // namespace cairn::frontdoor::resp
