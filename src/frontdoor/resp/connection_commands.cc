#include "frontdoor/resp/connection_commands.h"

#include <unistd.h>

#include <algorithm>
#include <optional>

#include <fmt/format.h>

#include "frontdoor/resp/command_table.h"
#include "frontdoor/resp/glob.h"
#include "frontdoor/resp/resp_parser.h"

namespace cairn::frontdoor::resp {
namespace {

// Redis's error for a subcommand it does not know, or one it knows given the wrong arguments.
std::string SubcommandError(std::string_view command, const std::string& sub,
                            std::initializer_list<std::string_view> known) {
  const std::string lower = AsciiLower(sub);
  for (std::string_view k : known) {
    if (k == lower) {
      return fmt::format("ERR wrong number of arguments for '{}|{}' command", command, lower);
    }
  }
  std::string upper(command);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return fmt::format("ERR unknown subcommand '{}'. Try {} HELP.", CString(sub).substr(0, 128),
                     upper);
}

bool ValidClientName(std::string_view name) {
  for (char c : name) {
    if (c < '!' || c > '~') return false;
  }
  return true;
}

constexpr std::string_view kBadClientName =
    "ERR Client names cannot contain spaces, newlines or special characters.";

void WriteCommandInfo(ReplyWriter& w, const CommandSpec& c) {
  w.Array(10);
  w.Bulk(c.name);
  w.Integer(c.arity);
  const std::vector<std::string_view> flags = FlagNames(c.flags);
  w.Set(flags.size());
  for (auto f : flags) w.Simple(f);
  w.Integer(c.first_key);
  w.Integer(c.last_key);
  w.Integer(c.step);
  w.Set(0);    // ACL categories
  w.Set(0);    // tips
  w.Array(0);  // key specs
  w.Array(0);  // subcommands
}

void CommandDocs(ConnectionCall& call) {
  const std::vector<std::string>& argv = call.argv;
  std::vector<const CommandSpec*> wanted;
  if (argv.size() == 2) {
    for (const CommandSpec& c : AllCommands()) wanted.push_back(&c);
  } else {
    for (size_t i = 2; i < argv.size(); ++i) {
      if (const CommandSpec* c = FindCommand(AsciiLower(argv[i]))) wanted.push_back(c);
    }
  }
  ReplyWriter w = call.Reply();
  w.Map(wanted.size());
  for (const CommandSpec* c : wanted) {
    w.Bulk(c->name);
    w.Map(3);
    w.Bulk("summary");
    w.Bulk(c->summary);
    w.Bulk("since");
    w.Bulk("1.0.0");
    w.Bulk("group");
    w.Bulk(c->group);
  }
}

// CLIENT KILL addr (old form: OK or an error), or CLIENT KILL ID id | ADDR addr ... (new form:
// the number killed).
void ClientKill(ConnectionCall& call) {
  const std::vector<std::string>& argv = call.argv;
  ReplyWriter w = call.Reply();
  std::optional<uint64_t> id;
  std::optional<std::string> addr;
  const bool old_form = argv.size() == 3;
  if (old_form) {
    addr = argv[2];
  } else {
    if (argv.size() % 2 != 0) return w.Error("ERR syntax error");
    for (size_t i = 2; i + 1 < argv.size(); i += 2) {
      const std::string f = AsciiLower(argv[i]);
      if (f == "id") {
        auto v = ParseInt64(argv[i + 1]);
        if (!v || *v <= 0) return w.Error("ERR client-id should be greater than 0");
        id = static_cast<uint64_t>(*v);
      } else if (f == "addr") {
        addr = argv[i + 1];
      } else if (f == "skipme") {
        // The calling connection is never killed through a filter (SKIPME yes).
      } else {
        return w.Error("ERR syntax error");
      }
    }
  }
  std::vector<std::shared_ptr<Session>> victims;
  {
    std::lock_guard lock(call.server.mu);
    for (const auto& [cid, weak] : call.server.sessions) {
      auto c = weak.lock();
      if (!c || (id && cid != *id) || (addr && c->address() != *addr)) continue;
      if (!old_form && c.get() == &call.session) continue;
      victims.push_back(std::move(c));
    }
  }
  for (const auto& c : victims) {
    if (c.get() == &call.session) {
      call.session.stop_reading = true;
    } else {
      c->RequestClose();
    }
  }
  if (!old_form) return w.Integer(static_cast<int64_t>(victims.size()));
  if (victims.empty()) return w.Error("ERR No such client");
  w.Ok();
}

void ClientList(ConnectionCall& call) {
  std::vector<std::shared_ptr<Session>> all;
  {
    std::lock_guard lock(call.server.mu);
    for (const auto& [id, weak] : call.server.sessions) {
      if (auto c = weak.lock()) all.push_back(std::move(c));
    }
  }
  std::string text;
  for (const auto& c : all) text += c->Describe() + "\n";
  call.Reply().Verbatim(text);
}

void ClientSetInfo(ConnectionCall& call) {
  const std::vector<std::string>& argv = call.argv;
  ReplyWriter w = call.Reply();
  const std::string attr = AsciiLower(argv[2]);
  if (!ValidClientName(argv[3]) && !argv[3].empty()) {
    return w.Error(
        fmt::format("ERR {} cannot contain spaces, newlines or special characters.", argv[2]));
  }
  if (attr != "lib-name" && attr != "lib-ver") {
    return w.Error(fmt::format("ERR Unrecognized option '{}'", argv[2]));
  }
  call.session.Update(
      [&](Session::ClientInfo& c) { (attr == "lib-ver" ? c.lib_ver : c.lib_name) = argv[3]; });
  w.Ok();
}

// An option as Redis compares it (strcasecmp of a C string: a NUL byte ends it).
std::string OptionName(std::string_view arg) { return AsciiLower(CString(arg)); }

// Forgets the connection's tracking (CLIENT TRACKING off, RESET); the connection then tells the
// coordinator (call.stop_tracking).
void DisableTracking(ConnectionCall& call) {
  Session& s = call.session;
  if (!s.tracking) return;
  call.server.tracking->Disable(s.id());
  s.tracking = false;
  s.tracking_mode = TrackingMode();
  s.caching_next = false;
  s.Update([](Session::ClientInfo& c) {
    c.tracking = c.bcast = false;
    c.redirect = 0;
  });
  call.stop_tracking = true;
}

// Whether either of two prefixes starts with the other (Redis's stringCheckPrefix).
bool Overlap(std::string_view a, std::string_view b) {
  return a.size() < b.size() ? b.starts_with(a) : a.starts_with(b);
}

// CLIENT TRACKING on|off [REDIRECT id] [PREFIX p]... [BCAST] [OPTIN] [OPTOUT] [NOLOOP]: Redis
// 7.0's options, checks and error texts, in its order. Then Cairn's own: invalidations are
// RESP3 pushes only (there is no pub/sub for __redis__:invalidate), so a RESP2 connection must
// redirect them, and only to a connection that speaks RESP3.
void ClientTracking(ConnectionCall& call) {
  const std::vector<std::string>& argv = call.argv;
  ReplyWriter w = call.Reply();
  Session& s = call.session;
  TrackingMode mode;
  int64_t redirect = 0;
  std::shared_ptr<Session> target;
  std::vector<std::string> prefixes;
  for (size_t j = 3; j < argv.size(); ++j) {
    const bool more = j + 1 < argv.size();
    const std::string opt = OptionName(argv[j]);
    if (opt == "redirect" && more) {
      ++j;
      if (redirect != 0) return w.Error("ERR A client can only redirect to a single other client");
      auto id = ParseInt64(argv[j]);
      if (!id) return w.Error("ERR value is not an integer or out of range");
      redirect = *id;
      {
        std::lock_guard lock(call.server.mu);
        auto it = call.server.sessions.find(static_cast<uint64_t>(redirect));
        if (redirect > 0 && it != call.server.sessions.end()) target = it->second.lock();
      }
      if (target == nullptr)
        return w.Error("ERR The client ID you want redirect to does not exist");
    } else if (opt == "bcast") {
      mode.bcast = true;
    } else if (opt == "optin") {
      mode.optin = true;
    } else if (opt == "optout") {
      mode.optout = true;
    } else if (opt == "noloop") {
      mode.noloop = true;
    } else if (opt == "prefix" && more) {
      prefixes.push_back(argv[++j]);
    } else {
      return w.Error("ERR syntax error");
    }
  }
  const std::string onoff = OptionName(argv[2]);
  if (onoff == "off") {
    DisableTracking(call);
    return w.Ok();
  }
  if (onoff != "on") return w.Error("ERR syntax error");
  if (!mode.bcast && !prefixes.empty()) {
    return w.Error("ERR PREFIX option requires BCAST mode to be enabled");
  }
  if (s.tracking && s.tracking_mode.bcast != mode.bcast) {
    return w.Error(
        "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and "
        "then re-enabling it with a different mode.");
  }
  if (mode.bcast && (mode.optin || mode.optout)) {
    return w.Error("ERR OPTIN and OPTOUT are not compatible with BCAST");
  }
  if (mode.optin && mode.optout) {
    return w.Error("ERR You can't specify both OPTIN mode and OPTOUT mode");
  }
  if (s.tracking &&
      ((mode.optin && s.tracking_mode.optout) || (mode.optout && s.tracking_mode.optin))) {
    return w.Error(
        "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and "
        "then re-enabling it with a different mode.");
  }
  if (mode.bcast) {
    std::vector<std::string> existing;
    if (auto info = call.server.tracking->Info(s.id())) existing = info->prefixes;
    for (size_t i = 0; i < prefixes.size(); ++i) {
      for (const std::string& e : existing) {
        if (Overlap(e, prefixes[i])) {
          return w.Error(fmt::format(
              "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single "
              "client must not overlap.",
              CString(prefixes[i]), CString(e)));
        }
      }
      for (size_t j = i + 1; j < prefixes.size(); ++j) {
        if (Overlap(prefixes[i], prefixes[j])) {
          return w.Error(fmt::format(
              "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a "
              "single client must not overlap.",
              CString(prefixes[i]), CString(prefixes[j])));
        }
      }
    }
  }
  // Cairn's own: where the pushes would go must speak RESP3.
  if (target != nullptr && target->protocol() < 3) {
    return w.Error(
        "ERR the client ID you want redirect to speaks RESP2: Cairn sends invalidations only as "
        "RESP3 pushes (it has no pub/sub for __redis__:invalidate); redirect to a connection "
        "that sent HELLO 3");
  }
  if (target == nullptr && s.protocol() < 3) {
    return w.Error(
        "ERR client tracking needs RESP3: Cairn sends invalidations only as RESP3 pushes (it has "
        "no pub/sub for __redis__:invalidate); send HELLO 3 first, or REDIRECT to a connection "
        "that did");
  }
  mode.redirect = static_cast<uint64_t>(redirect);
  call.server.tracking->Enable(s.id(), mode, prefixes);
  call.start_tracking = !s.tracking;
  s.tracking = true;
  s.tracking_mode = mode;
  s.Update([&](Session::ClientInfo& c) {
    c.tracking = true;
    c.bcast = mode.bcast;
    c.redirect = mode.redirect;
  });
  w.Ok();
}

// CLIENT CACHING yes|no: whether the next command's keys are tracked (OPTIN / OPTOUT).
void ClientCaching(ConnectionCall& call) {
  ReplyWriter w = call.Reply();
  Session& s = call.session;
  if (!s.tracking) {
    return w.Error(
        "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or "
        "OPTOUT mode enabled");
  }
  const std::string opt = OptionName(call.argv[2]);
  if (opt == "yes") {
    if (!s.tracking_mode.optin) {
      return w.Error(
          "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.");
    }
  } else if (opt == "no") {
    if (!s.tracking_mode.optout) {
      return w.Error(
          "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.");
    }
  } else {
    return w.Error("ERR syntax error");
  }
  s.caching_next = true;
  w.Ok();
}

// CLIENT TRACKINGINFO: flags (a set), redirect, prefixes, as Redis 7.0 replies them.
void ClientTrackingInfo(ConnectionCall& call) {
  ReplyWriter w = call.Reply();
  const Session& s = call.session;
  const TrackingMode& m = s.tracking_mode;
  std::optional<TrackingTable::ClientInfo> info;
  if (s.tracking) info = call.server.tracking->Info(s.id());
  std::vector<std::string_view> flags = {s.tracking ? "on" : "off"};
  if (m.bcast) flags.push_back("bcast");
  if (m.optin) {
    flags.push_back("optin");
    if (s.caching_next) flags.push_back("caching-yes");
  }
  if (m.optout) {
    flags.push_back("optout");
    if (s.caching_next) flags.push_back("caching-no");
  }
  if (m.noloop) flags.push_back("noloop");
  if (info && info->broken_redirect) flags.push_back("broken_redirect");
  w.Map(3);
  w.Bulk("flags");
  w.Set(flags.size());
  for (std::string_view f : flags) w.Bulk(f);
  w.Bulk("redirect");
  w.Integer(s.tracking ? static_cast<int64_t>(m.redirect) : -1);
  w.Bulk("prefixes");
  const std::vector<std::string> none;
  const std::vector<std::string>& prefixes = info ? info->prefixes : none;
  w.Array(prefixes.size());
  for (const std::string& p : prefixes) w.Bulk(p);
}

// The INFO sections asked for by `argv`, as text; sets *keyspace when the keyspace section is
// among them (it is counted by the data handler).
std::string InfoText(ConnectionCall& call, bool* keyspace) {
  const std::vector<std::string>& argv = call.argv;
  bool all = argv.size() == 1;
  std::vector<std::string> sections;
  for (size_t i = 1; i < argv.size(); ++i) {
    const std::string s = AsciiLower(argv[i]);
    if (s == "all" || s == "everything") {
      all = true;
      *keyspace = true;
    } else if (s == "default") {
      all = true;
    } else {
      sections.push_back(s);
    }
  }
  auto want = [&](std::string_view s) {
    return all || std::find(sections.begin(), sections.end(), s) != sections.end();
  };
  if (std::find(sections.begin(), sections.end(), "keyspace") != sections.end()) *keyspace = true;
  const ServerState& server = call.server;
  const RespOptions& o = server.options;
  const TrackingTable::Figures server_tracking = server.tracking->figures();
  const coordinator::NodeInfo node = server.coordinator->Info();
  const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::steady_clock::now() - server.started)
                          .count();
  std::string text;
  auto section = [&](std::string_view title, const std::string& body) {
    if (!text.empty()) text += "\r\n";
    text += fmt::format("# {}\r\n{}", title, body);
  };
  if (want("server")) {
    section("Server",
            fmt::format("redis_version:{}\r\ncairn_version:{}\r\nredis_mode:standalone\r\n"
                        "os:Linux\r\narch_bits:64\r\nprocess_id:{}\r\ntcp_port:{}\r\n"
                        "uptime_in_seconds:{}\r\nuptime_in_days:{}\r\n",
                        kRedisVersion, node.server_version, getpid(), call.session.local().port(),
                        uptime, uptime / 86400));
  }
  if (want("clients")) {
    size_t resp_clients = 0;
    {
      std::lock_guard lock(call.server.mu);
      resp_clients = call.server.sessions.size();
    }
    const size_t total = o.server_connections ? o.server_connections() : resp_clients;
    section("Clients", fmt::format("connected_clients:{}\r\ncairn_server_connections:{}\r\n"
                                   "blocked_clients:0\r\ntracking_clients:{}\r\n",
                                   resp_clients, total, server_tracking.clients));
  }
  if (want("stats")) {
    section("Stats", fmt::format("total_connections_received:{}\r\ntotal_commands_processed:{}"
                                 "\r\ncairn_protocol_errors:{}\r\ntracking_total_keys:{}\r\n"
                                 "tracking_total_items:{}\r\ntracking_total_prefixes:{}\r\n",
                                 server.connections_received.load(), server.commands.value(),
                                 server.protocol_errors.load(), server_tracking.keys,
                                 server_tracking.items, server_tracking.prefixes));
  }
  if (want("cairn")) {
    const coordinator::ClusterInfo cluster = server.coordinator->Cluster();
    std::string body =
        fmt::format("node_id:{}\r\nresp_listen:{}\r\npartitions:{}\r\ncluster_formed:{}\r\n",
                    node.node_id, o.listen, cluster.partitions, cluster.formed ? 1 : 0);
    if (auto nodes = server.coordinator->ClusterStatus(); nodes.ok()) {
      size_t up = 0;
      for (const auto& n : *nodes) up += n.status.up ? 1 : 0;
      body += fmt::format("nodes:{}\r\nnodes_up:{}\r\n", nodes->size(), up);
    }
    for (const auto& [name, value] : server.coordinator->Metrics()) {
      body += fmt::format("{}:{}\r\n", name, value);
    }
    section("Cairn", body);
  }
  return text;
}

// Checks the AUTH option of HELLO (or the AUTH command): against the users with --auth, else
// against --requirepass. true when the pair is accepted, which authenticates the connection;
// nullopt when the password must be hashed first (call.login is set, nothing is replied).
std::optional<bool> Authenticate(ConnectionCall& call, const std::string& user,
                                 const std::string& pass) {
  if (base::AccessControl* access = call.server.options.access; access != nullptr) {
    std::optional<bool> accepted = call.login_verdict;
    if (!accepted) {
      auto cached = access->LoginCached(user, pass);
      if (!cached) {
        call.login.emplace(user, pass);
        return std::nullopt;
      }
      accepted = cached->ok();
    }
    if (*accepted) {
      call.session.user = user;
      call.session.authenticated = true;
    }
    return accepted;
  }
  const std::string& required = call.server.options.requirepass;
  if (!required.empty() && (pass != required || user != "default")) return false;
  call.session.authenticated = true;
  return true;
}

}  // namespace

bool AuthenticatedAtStart(const RespOptions& options) {
  return options.requirepass.empty() && options.access == nullptr;
}

std::string InvalidationPush(const Invalidation& inv) {
  std::string out;
  ReplyWriter w(&out, 3);
  w.Push(2);
  w.Bulk("invalidate");
  if (inv.all) {
    w.Null();
    return out;
  }
  w.Array(inv.keys.size());
  for (const std::string& k : inv.keys) w.Bulk(k);
  return out;
}

void Deliver(ServerState& server, std::vector<Invalidation> invalidations) {
  if (invalidations.empty()) return;
  std::vector<std::pair<std::shared_ptr<Session>, std::shared_ptr<Session>>> to;  // target, own
  to.reserve(invalidations.size());
  {
    std::lock_guard lock(server.mu);
    auto find = [&](uint64_t id) -> std::shared_ptr<Session> {
      auto it = server.sessions.find(id);
      return it == server.sessions.end() ? nullptr : it->second.lock();
    };
    for (const Invalidation& inv : invalidations) {
      to.emplace_back(find(inv.redirect != 0 ? inv.redirect : inv.client),
                      inv.redirect != 0 ? find(inv.client) : nullptr);
    }
  }
  for (size_t i = 0; i < invalidations.size(); ++i) {
    const Invalidation& inv = invalidations[i];
    auto& [target, own] = to[i];
    if (target == nullptr && inv.redirect != 0) {
      // As Redis: the tracking connection hears that its redirect has gone.
      server.tracking->MarkBrokenRedirect(inv.client);
      if (own == nullptr) continue;
      std::string out;
      ReplyWriter w(&out, 3);
      w.Push(2);
      w.Bulk("tracking-redir-broken");
      w.Integer(static_cast<int64_t>(inv.redirect));
      own->Push(std::move(out));
      continue;
    }
    if (target == nullptr) continue;  // closed meanwhile
    server.pushes.fetch_add(1, std::memory_order_relaxed);
    server.pushed_keys.fetch_add(inv.keys.size(), std::memory_order_relaxed);
    target->Push(InvalidationPush(inv));
  }
}

Session::Session(uint64_t id, asio::ip::tcp::endpoint peer, asio::ip::tcp::endpoint local,
                 bool authenticated)
    : authenticated(authenticated), id_(id), peer_(std::move(peer)), local_(std::move(local)) {}

std::string Session::address() const {
  return fmt::format("{}:{}", peer_.address().to_string(), peer_.port());
}

std::string Session::Describe() const {
  std::lock_guard lock(mu_);
  const ClientInfo& c = info_;
  const auto now = std::chrono::steady_clock::now();
  const auto age = std::chrono::duration_cast<std::chrono::seconds>(now - created_).count();
  const auto idle = std::chrono::duration_cast<std::chrono::seconds>(now - c.last_active).count();
  return fmt::format(
      "id={} addr={} laddr={}:{} fd=-1 name={} age={} idle={} flags={} db=0 sub=0 psub=0 "
      "ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 "
      "tot-mem=0 events=r cmd={} user=default redir={} resp={} lib-name={} lib-ver={} "
      "keyspace={}",
      id_, address(), local_.address().to_string(), local_.port(), c.name, age, idle,
      c.tracking ? (c.bcast ? "tB" : "t") : "N", c.last_command.empty() ? "NULL" : c.last_command,
      c.tracking ? static_cast<int64_t>(c.redirect) : -1, c.protocol, c.lib_name, c.lib_ver,
      c.keyspace.empty() ? "default" : c.keyspace);
}

void Ping(ConnectionCall& call) {
  ReplyWriter w = call.Reply();
  if (call.argv.size() > 2) return w.Error("ERR wrong number of arguments for 'ping' command");
  if (call.argv.size() == 2) return w.Bulk(call.argv[1]);
  w.Simple("PONG");
}

void Echo(ConnectionCall& call) { call.Reply().Bulk(call.argv[1]); }

// HELLO [protover [AUTH user pass] [SETNAME name]]: switches the protocol and replies the
// server's description in the protocol chosen.
void Hello(ConnectionCall& call) {
  const std::vector<std::string>& argv = call.argv;
  ReplyWriter w = call.Reply();
  int protocol = call.session.protocol();
  size_t i = 1;
  if (argv.size() > 1) {
    auto v = ParseInt64(argv[1]);
    if (!v) return w.Error("ERR Protocol version is not an integer or out of range");
    if (*v != 2 && *v != 3) return w.Error("NOPROTO unsupported protocol version");
    protocol = static_cast<int>(*v);
    i = 2;
  }
  std::optional<std::string> client_name;
  for (; i < argv.size(); ++i) {
    const std::string opt = AsciiLower(argv[i]);
    if (opt == "auth" && i + 2 < argv.size()) {
      const std::optional<bool> accepted = Authenticate(call, argv[i + 1], argv[i + 2]);
      if (!accepted) return;  // verified off the reactor; HELLO runs again then
      if (!*accepted) {
        return w.Error("WRONGPASS invalid username-password pair or user is disabled.");
      }
      i += 2;
    } else if (opt == "setname" && i + 1 < argv.size()) {
      if (!ValidClientName(argv[i + 1])) return w.Error(kBadClientName);
      client_name = argv[i + 1];
      ++i;
    } else {
      return w.Error(fmt::format("ERR Syntax error in HELLO option '{}'", CString(argv[i])));
    }
  }
  if (!call.session.authenticated) {
    return w.Error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
        "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
        "select the RESP protocol version at the same time");
  }
  call.session.Update([&](Session::ClientInfo& c) {
    c.protocol = protocol;
    if (client_name) c.name = *client_name;
  });
  // The reply already speaks the protocol chosen.
  ReplyWriter r = call.Reply();
  r.Map(7);
  r.Bulk("server");
  r.Bulk("redis");
  r.Bulk("version");
  r.Bulk(kRedisVersion);
  r.Bulk("proto");
  r.Integer(protocol);
  r.Bulk("id");
  r.Integer(static_cast<int64_t>(call.session.id()));
  r.Bulk("mode");
  r.Bulk("standalone");
  r.Bulk("role");
  r.Bulk("master");
  r.Bulk("modules");
  r.Array(0);
}

void Auth(ConnectionCall& call) {
  const std::vector<std::string>& argv = call.argv;
  ReplyWriter w = call.Reply();
  if (argv.size() > 3) return w.Error("ERR syntax error");
  // No password configured: any is accepted (docs/resp.md).
  if (AuthenticatedAtStart(call.server.options)) return w.Ok();
  const std::string user = argv.size() == 2 ? "default" : argv[1];
  const std::optional<bool> accepted = Authenticate(call, user, argv.back());
  if (!accepted) return;  // verified off the reactor; AUTH runs again then
  if (!*accepted) {
    return w.Error("WRONGPASS invalid username-password pair or user is disabled.");
  }
  w.Ok();
}

void Select(ConnectionCall& call) {
  ReplyWriter w = call.Reply();
  auto db = ParseInt64(call.argv[1]);
  if (!db) return w.Error("ERR value is not an integer or out of range");
  if (*db != 0) return w.Error("ERR DB index is out of range");
  w.Ok();
}

void Quit(ConnectionCall& call) {
  call.Reply().Ok();
  call.close_after = true;
  call.session.stop_reading = true;
}

void Reset(ConnectionCall& call) {
  Session& s = call.session;
  s.Update([](Session::ClientInfo& c) {
    c.protocol = 2;
    c.name.clear();
    c.keyspace.clear();
  });
  s.read_level = s.write_level = Consistency::kDefault;
  DisableTracking(call);
  s.authenticated = AuthenticatedAtStart(call.server.options);
  s.user.clear();
  call.Reply().Simple("RESET");
}

void Time(ConnectionCall& call) {
  const uint64_t us = call.server.coordinator->wall_clock().NowMicros();
  ReplyWriter w = call.Reply();
  w.Array(2);
  w.Bulk(std::to_string(us / 1'000'000));
  w.Bulk(std::to_string(us % 1'000'000));
}

void Client(ConnectionCall& call) {
  const std::vector<std::string>& argv = call.argv;
  ReplyWriter w = call.Reply();
  const std::string sub = AsciiLower(argv[1]);
  if (sub == "id" && argv.size() == 2) {
    w.Integer(static_cast<int64_t>(call.session.id()));
  } else if (sub == "setname" && argv.size() == 3) {
    if (!ValidClientName(argv[2])) return w.Error(kBadClientName);
    call.session.Update([&](Session::ClientInfo& c) { c.name = argv[2]; });
    w.Ok();
  } else if (sub == "getname" && argv.size() == 2) {
    const std::string name = call.session.Read([](const Session::ClientInfo& c) { return c.name; });
    if (name.empty()) return w.Null();
    w.Bulk(name);
  } else if (sub == "setinfo" && argv.size() == 4) {
    ClientSetInfo(call);
  } else if (sub == "info" && argv.size() == 2) {
    w.Verbatim(call.session.Describe() + "\n");
  } else if (sub == "list" && argv.size() == 2) {
    ClientList(call);
  } else if (sub == "kill" && argv.size() >= 3) {
    ClientKill(call);
  } else if (sub == "tracking" && argv.size() >= 3) {
    ClientTracking(call);
  } else if (sub == "caching" && argv.size() == 3) {
    ClientCaching(call);
  } else if (sub == "trackinginfo" && argv.size() == 2) {
    ClientTrackingInfo(call);
  } else if (sub == "getredir" && argv.size() == 2) {
    const Session& s = call.session;
    w.Integer(s.tracking ? static_cast<int64_t>(s.tracking_mode.redirect) : -1);
  } else {
    w.Error(SubcommandError("client", argv[1],
                            {"id", "setname", "getname", "setinfo", "list", "info", "kill",
                             "tracking", "caching", "trackinginfo", "getredir"}));
  }
}

void Command(ConnectionCall& call) {
  const std::vector<std::string>& argv = call.argv;
  ReplyWriter w = call.Reply();
  const std::span<const CommandSpec> all = AllCommands();
  const std::string sub = argv.size() > 1 ? AsciiLower(argv[1]) : "";
  if (argv.size() == 1 || (sub == "info" && argv.size() == 2)) {
    w.Array(all.size());
    for (const CommandSpec& c : all) WriteCommandInfo(w, c);
  } else if (sub == "count" && argv.size() == 2) {
    w.Integer(static_cast<int64_t>(all.size()));
  } else if (sub == "info") {
    w.Array(argv.size() - 2);
    for (size_t i = 2; i < argv.size(); ++i) {
      if (const CommandSpec* c = FindCommand(AsciiLower(argv[i]))) {
        WriteCommandInfo(w, *c);
      } else {
        w.Null();  // Redis: a null bulk (RESP3 null) for an unknown command
      }
    }
  } else if (sub == "docs") {
    CommandDocs(call);
  } else if (sub == "list" && argv.size() == 2) {
    w.Array(all.size());
    for (const CommandSpec& c : all) w.Bulk(c.name);
  } else {
    w.Error(SubcommandError("command", argv[1], {"count", "info", "docs", "list"}));
  }
}

void Config(ConnectionCall& call) {
  const std::vector<std::string>& argv = call.argv;
  ReplyWriter w = call.Reply();
  const std::string sub = AsciiLower(argv[1]);
  if (sub != "get") {
    if (sub == "set" || sub == "resetstat" || sub == "rewrite") {
      return w.Error(
          fmt::format("ERR CONFIG {} is not supported by Cairn; use cairnd's flags", argv[1]));
    }
    return w.Error(SubcommandError("config", argv[1], {}));
  }
  if (argv.size() < 3) return w.Error("ERR wrong number of arguments for 'config|get' command");
  const RespOptions& o = call.server.options;
  const std::vector<std::pair<std::string, std::string>> settings = {
      {"appendonly", "yes"},  // every acknowledged write is on the write-ahead log
      {"appendfsync", "always"},
      {"save", ""},
      {"databases", "1"},
      {"maxmemory", "0"},
      {"maxmemory-policy", "noeviction"},
      {"timeout", "0"},
      {"proto-max-bulk-len", std::to_string(o.max_value_bytes + (size_t{1} << 20))},
      {"cluster-enabled", "no"},
  };
  // As Redis 7.0's configGetCommand: a name without glob characters is looked up and answered
  // as it was given; a pattern answers the settings' own names; a setting comes up once.
  std::vector<std::pair<std::string, std::string>> found;
  auto already = [&](std::string_view name) {
    for (const auto& [k, v] : found) {
      if (AsciiLower(k) == AsciiLower(name)) return true;
    }
    return false;
  };
  for (size_t i = 2; i < argv.size(); ++i) {
    const bool pattern = CString(argv[i]).find_first_of("[*?") != std::string_view::npos;
    for (const auto& [key, value] : settings) {
      if (already(key)) continue;
      if (pattern ? GlobMatch(argv[i], key, /*nocase=*/true) : AsciiLower(argv[i]) == key) {
        found.emplace_back(pattern ? key : argv[i], value);
      }
    }
  }
  w.Map(found.size());
  for (const auto& [key, value] : found) {
    w.Bulk(key);
    w.Bulk(value);
  }
}

void Info(ConnectionCall& call) {
  bool keyspace = false;
  std::string text = InfoText(call, &keyspace);
  // The keyspace section counts keys with a scan: only on request (INFO keyspace / all).
  if (keyspace) {
    call.info_text = std::move(text);
    call.hand_on = true;
    return;
  }
  call.Reply().Verbatim(text);
}

// CAIRN.KEYSPACE [name]: sets (and replies) the keyspace of the connection's commands.
void CairnKeyspace(ConnectionCall& call) {
  const std::vector<std::string>& argv = call.argv;
  ReplyWriter w = call.Reply();
  if (argv.size() > 2) return w.Error("ERR wrong number of arguments for 'cairn.keyspace' command");
  if (argv.size() == 2) {
    auto def = call.server.coordinator->DescribeKeyspace(argv[1]);
    if (!def.ok()) return w.Error(ErrorText(def.status()));
    call.session.Update([&](Session::ClientInfo& c) {
      c.keyspace = argv[1] == "default" ? std::string() : argv[1];
    });
  }
  const std::string keyspace = call.session.keyspace();
  w.Bulk(keyspace.empty() ? "default" : keyspace);
}

// CAIRN.CONSISTENCY [READ level] [WRITE level]: sets the connection's levels (DEFAULT: the
// keyspace's) and replies the levels in force.
void CairnConsistency(ConnectionCall& call) {
  const std::vector<std::string>& argv = call.argv;
  ReplyWriter w = call.Reply();
  Consistency read = call.session.read_level, write = call.session.write_level;
  if (argv.size() % 2 != 1) return w.Error("ERR syntax error");
  for (size_t i = 1; i + 1 < argv.size(); i += 2) {
    const std::string which = AsciiLower(argv[i]);
    std::optional<Consistency> level;
    if (AsciiLower(argv[i + 1]) == "default") {
      level = Consistency::kDefault;
    } else {
      level = ParseConsistency(argv[i + 1]);
    }
    if (!level) return w.Error(fmt::format("ERR unknown consistency level '{}'", argv[i + 1]));
    if (which == "read") {
      if (*level == Consistency::kAny) return w.Error("ERR ANY is a write level only");
      read = *level;
    } else if (which == "write") {
      write = *level;
    } else {
      return w.Error("ERR syntax error");
    }
  }
  call.session.read_level = read;
  call.session.write_level = write;
  w.Map(2);
  w.Bulk("read");
  w.Bulk(read == Consistency::kDefault ? "DEFAULT" : ConsistencyName(read));
  w.Bulk("write");
  w.Bulk(write == Consistency::kDefault ? "DEFAULT" : ConsistencyName(write));
}

void CairnStatus(ConnectionCall& call) {
  ReplyWriter w = call.Reply();
  auto nodes = call.server.coordinator->ClusterStatus();
  if (!nodes.ok()) return w.Error(ErrorText(nodes.status()));
  w.Array(nodes->size());
  for (const auto& n : *nodes) {
    w.Map(8);
    w.Bulk("node_id");
    w.Integer(n.status.node_id);
    w.Bulk("address");
    w.Bulk(n.status.address);
    w.Bulk("dc");
    w.Bulk(n.status.dc);
    w.Bulk("rack");
    w.Bulk(n.status.rack);
    w.Bulk("state");
    w.Bulk(n.status.up ? "UP" : "DOWN");
    w.Bulk("partitions");
    w.Integer(n.partitions);
    w.Bulk("hints_pending");
    w.Integer(static_cast<int64_t>(n.status.hints_pending));
    w.Bulk("self");
    w.Integer(n.status.self ? 1 : 0);
  }
}

}  // namespace cairn::frontdoor::resp
