#include "server/server.h"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <filesystem>
#include <system_error>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "base/reactor.h"
#include "base/text.h"
#include "net/connection.h"
#include "server/allocator.h"
#include "server/auth.h"

namespace cairn::server {
namespace {

constexpr std::string_view kClockReservationKey = "hlc_reserved_ms";
using base::kNoThrow;
// A client must name its protocol this soon after connecting.
constexpr auto kPreambleTimeout = std::chrono::seconds(10);
constexpr size_t kInternodeFrameBytes = size_t{64} << 20;

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  std::unique_ptr<Server> server(new Server(options));
  if (Status s = server->Open(); !s.ok()) {
    server->Stop();
    return s;
  }
  return server;
}

std::string Server::address() const {
  return fmt::format("{}:{}", endpoint_.address().to_string(), endpoint_.port());
}

Result<std::unique_ptr<asio::ip::tcp::acceptor>> Server::OpenAcceptor(
    std::string_view flag, const std::string& host_port) {
  auto where = net::ParseHostPort(host_port);
  if (!where.ok()) {
    return Status::InvalidArgument(fmt::format("{}: {}", flag, where.status().message()));
  }
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(where->first, ec);
  if (ec) {
    return Status::InvalidArgument(
        fmt::format("{} needs an IP address, not '{}'", flag, where->first));
  }
  auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(reactors_[0]->io);
  const asio::ip::tcp::endpoint endpoint(address, where->second);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::Unavailable(
        fmt::format("cannot listen on {} ({}): {}", host_port, flag, ec.message()));
  }
  return acceptor;
}

Status Server::Listen() {
  auto where = net::ParseHostPort(options_.listen);
  if (where.ok() && where->second == 0 && !options_.peers.empty()) {
    return Status::InvalidArgument("--listen needs a fixed port when --peers is given");
  }
  auto acceptor = OpenAcceptor("--listen", options_.listen);
  if (!acceptor.ok()) return acceptor.status();
  acceptor_ = std::move(*acceptor);
  endpoint_ = acceptor_->local_endpoint();
  if (!options_.http_listen.empty()) {
    auto http = OpenAcceptor("--http", options_.http_listen);
    if (!http.ok()) return http.status();
    http_acceptor_ = std::move(*http);
    http_endpoint_ = http_acceptor_->local_endpoint();
  }
  if (!options_.resp_listen.empty()) {
    auto resp = OpenAcceptor("--resp", options_.resp_listen);
    if (!resp.ok()) return resp.status();
    resp_acceptor_ = std::move(*resp);
    resp_endpoint_ = resp_acceptor_->local_endpoint();
  }
  return Status::Ok();
}

std::string Server::http_address() const {
  if (!http_acceptor_) return "";
  return fmt::format("{}:{}", http_endpoint_.address().to_string(), http_endpoint_.port());
}

Status Server::Ready() const {
  if (!serving_.load()) return Status::Unavailable("the node is starting or shutting down");
  if (!engine_) return Status::Unavailable("the storage engine is not open");
  const coordinator::ClusterInfo info = coordinator_->Cluster();
  if (!info.formed) {
    return Status::Unavailable(info.note.empty() ? "the cluster has not formed yet" : info.note);
  }
  return Status::Ok();
}

std::string Server::resp_address() const {
  if (!resp_acceptor_) return "";
  return fmt::format("{}:{}", resp_endpoint_.address().to_string(), resp_endpoint_.port());
}

// --auth and its companions: refused combinations, and the bootstrap file read (its content is
// never logged).
Status Server::CheckAuthOptions() {
  if (!options_.auth) {
    if (!options_.auth_bootstrap_file.empty()) {
      return Status::InvalidArgument("--auth-bootstrap-file needs --auth");
    }
    return Status::Ok();
  }
  if (!options_.requirepass.empty()) {
    return Status::InvalidArgument(
        "--requirepass and --auth cannot be combined: with --auth, create a user named "
        "'default' for RESP clients that send AUTH with a password alone (docs/security.md)");
  }
  if (!options_.auth_bootstrap_file.empty()) {
    auto pair = ReadBootstrapFile(options_.auth_bootstrap_file);
    if (!pair.ok()) return pair.status();
    bootstrap_user_ = std::move(*pair);
  }
  return Status::Ok();
}

Status Server::Open() {
  if (options_.data_dir.empty()) return Status::InvalidArgument("--data-dir is required");
  if (options_.max_value_bytes > (size_t{256} << 20)) {
    return Status::InvalidArgument("--max-value-bytes is at most 268435456 (256 MiB)");
  }
  if (options_.partitions == 0 || options_.partitions > 65536 ||
      !std::has_single_bit(options_.partitions)) {
    return Status::InvalidArgument("--partitions must be a power of two from 1 to 65536");
  }
  if (Status s = CheckAuthOptions(); !s.ok()) return s;
  uint32_t threads = options_.threads;
  if (threads == 0) threads = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  if (threads > 64) return Status::InvalidArgument("--threads is at most 64");
  for (uint32_t i = 0; i < threads; ++i) {
    auto r = std::make_unique<Reactor>();
    r->work.emplace(r->io.get_executor());
    reactors_.push_back(std::move(r));
  }
  if (Status s = LoadTls(); !s.ok()) return s;
  if (Status s = Listen(); !s.ok()) return s;
  if (Status s = OpenStorage(); !s.ok()) return s;
  if (Status s = OpenCluster(); !s.ok()) return s;
  OpenCoordinator();
  OpenFrontDoors();
  StartServing();
  return Status::Ok();
}

Status Server::LoadTls() {
  const net::TlsFiles& files = options_.tls;
  if (files.cert.empty() && files.key.empty() && files.ca.empty() && !options_.internode_tls) {
    return Status::Ok();
  }
  if (files.cert.empty() || files.key.empty()) {
    return Status::InvalidArgument(
        "TLS needs both --tls-cert and --tls-key (--tls-ca and --internode-tls need them too)");
  }
  if (options_.internode_tls && files.ca.empty()) {
    return Status::InvalidArgument(
        "--internode-tls needs --tls-ca, the CA certificate that signs every node's certificate");
  }
  auto contexts = net::TlsContexts::Load(files, options_.internode_tls);
  if (!contexts.ok()) return Status::InvalidArgument("TLS: " + contexts.status().message());
  tls_ = std::move(*contexts);
  auto described = net::DescribeCertificateFile(files.cert);
  spdlog::info("TLS on every port{}; certificate {}",
               options_.internode_tls ? ", mutual TLS between nodes" : "",
               described.ok() ? *described : described.status().message());
  return Status::Ok();
}

Status Server::ReloadTls() {
  if (!tls_) {
    spdlog::info("SIGHUP: this node runs without TLS, nothing to reload");
    return Status::FailedPrecondition("this node runs without TLS");
  }
  if (Status s = tls_->Reload(); !s.ok()) {
    spdlog::error("TLS reload failed, the certificates in use stay: {}", s.message());
    return s;
  }
  auto described = net::DescribeCertificateFile(options_.tls.cert);
  spdlog::info("TLS reloaded: new connections use certificate {}",
               described.ok() ? *described : described.status().message());
  return Status::Ok();
}

asio::awaitable<std::optional<net::Stream>> Server::Accept(asio::ip::tcp::socket socket) {
  if (!tls_) co_return net::Stream(std::move(socket));
  boost::system::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  net::Stream stream(std::move(socket), tls_->server());
  Status s = co_await stream.Handshake(net::ssl::stream_base::server,
                                       base::Clock::now() + kPreambleTimeout);
  if (!s.ok()) {
    // A client speaking plain TCP to a TLS port, a certificate that does not verify, a port scan.
    spdlog::info("closing a connection from {}: {}", peer.address().to_string(), s.message());
    stream.Close();
    co_return std::nullopt;
  }
  co_return std::move(stream);
}

// The data directory, the storage engine, the node's identity, its clocks and the keyspaces.
Status Server::OpenStorage() {
  std::error_code fs_ec;
  std::filesystem::create_directories(options_.data_dir, fs_ec);
  if (fs_ec) {
    return Status::InvalidArgument(
        fmt::format("cannot create data directory {}: {}", options_.data_dir, fs_ec.message()));
  }
  wall_ = std::make_unique<base::OffsetClock>(&base::SystemClock(), options_.debug_clock_skew_ms);
  if (options_.debug_clock_skew_ms != 0) {
    spdlog::warn("this node's clock is skewed by {} ms (--debug-clock-skew-ms): for tests only",
                 options_.debug_clock_skew_ms);
  }
  storage::EngineOptions engine_options;
  engine_options.path = (std::filesystem::path(options_.data_dir) / "db").string();
  engine_options.clock = wall_.get();
  engine_options.read_cache_bytes = options_.read_cache_bytes;
  if (Status s = LockDataDirectory(); !s.ok()) return s;
  auto engine = storage::Engine::Open(engine_options);
  if (!engine.ok()) return engine.status();
  engine_ = std::move(*engine);

  auto identity = cluster::LoadOrCreateIdentity(
      *engine_, options_.node_id, static_cast<uint32_t>(std::countr_zero(options_.partitions)));
  if (!identity.ok()) return identity.status();
  identity_ = *identity;

  auto floor = engine_->GetMeta(kClockReservationKey);
  if (!floor.ok()) return floor.status();
  uint64_t floor_ms = 0;
  if (floor->has_value()) {
    std::from_chars((*floor)->data(), (*floor)->data() + (*floor)->size(), floor_ms);
  }
  storage::Engine* engine_ptr = engine_.get();
  clock_ =
      std::make_unique<base::HybridClock>(wall_.get(), floor_ms, [engine_ptr](uint64_t bound_ms) {
        Status s =
            engine_ptr->WriteMeta({{std::string(kClockReservationKey), std::to_string(bound_ms)}});
        if (!s.ok()) {
          // Issuing timestamps we could not reserve could break version order after a restart.
          spdlog::critical("cannot persist the clock reservation: {}", s.ToString());
          std::abort();
        }
      });
  clock_->MaintainReservation();

  auto schema = cluster::Schema::Load(engine_.get(), identity_.partitions());
  if (!schema.ok()) return schema.status();
  schema_ = std::move(*schema);
  return Status::Ok();
}

// The replica, the internode clients, the gossiper and the topology, hints, and the streamer.
Status Server::OpenCluster() {
  blocking_ = std::make_unique<asio::thread_pool>(2);
  replica_ = std::make_unique<replica::Replica>(engine_.get(), blocking_->get_executor());
  replica_->SetStreamServeRate(options_.stream_bytes_per_second);
  std::vector<cluster::InternodeClient*> clients;
  for (auto& r : reactors_) {
    std::function<std::shared_ptr<net::ssl::context>()> tls;
    if (tls_) tls = [t = tls_.get()] { return t->client(); };
    clients_.push_back(std::make_unique<cluster::InternodeClient>(
        r->io.get_executor(), identity_.node_id,
        std::max(kInternodeFrameBytes, 2 * options_.max_value_bytes + (size_t{1} << 20)),
        std::move(tls)));
    clients.push_back(clients_.back().get());
  }

  cluster::ClusterConfig config;
  config.self_address = address();
  config.dc = options_.dc;
  config.rack = options_.rack;
  config.peers = options_.peers.empty() ? std::vector<std::string>{address()} : options_.peers;
  config.partition_bits = identity_.partition_bits;
  config.standalone = options_.peers.empty();
  config.join = options_.join;
  cluster::GossipOptions gossip;
  gossip.interval = options_.gossip_interval;
  gossip.phi_threshold = options_.phi_threshold;
  gossiper_ = std::make_unique<cluster::Gossiper>(
      config, identity_, gossip, engine_.get(), schema_.get(), clock_.get(),
      reactors_[0]->io.get_executor(), blocking_->get_executor(), clients[0]);
  if (Status s = gossiper_->Init(); !s.ok()) return s;

  hints_ = std::make_unique<coordinator::HintStore>(engine_.get(), clock_.get(), wall_.get(),
                                                    options_.hint_window);
  if (Status s = hints_->Load(); !s.ok()) return s;
  replayer_ = std::make_unique<coordinator::HintReplayer>(hints_.get(), gossiper_.get(), clients[0],
                                                          reactors_[0]->io.get_executor(),
                                                          std::chrono::milliseconds(500));
  cluster::SelfFigures figures;
  figures.load_bytes = [engine = engine_.get()] { return engine->DiskBytes(); };
  figures.dead_bytes = [engine = engine_.get()] { return engine->TableGarbage().dead_bytes; };
  figures.hints = [hints = hints_.get()] { return hints->TotalPending(); };
  replica::StreamerOptions streamer_options;
  streamer_options.bytes_per_second = options_.stream_bytes_per_second;
  streamer_ = std::make_unique<replica::PartitionStreamer>(
      engine_.get(), gossiper_.get(), clients[0], identity_.node_id, streamer_options,
      reactors_[0]->io.get_executor(), blocking_->get_executor());
  figures.streaming = [s = streamer_.get()](internode::NodeState* state) { s->Report(state); };
  // The coordinator is made later (OpenCoordinator), before gossip runs (StartServing).
  figures.tracking = [this](internode::NodeState* state) {
    if (coordinator_) coordinator_->invalidations().Report(state);
  };
  gossiper_->SetSelfFigures(std::move(figures));
  // Every internode request carries this node's topology epoch; an answer from a node with a
  // newer one makes this node pull it (at most one pull at a time).
  for (auto& client : clients_) {
    client->WatchEpochs(
        [g = gossiper_.get()] { return g->epoch(); },
        [this](const std::string& address, uint64_t epoch) {
          uint64_t pulling = pulling_epoch_.load();
          while (epoch > pulling && !pulling_epoch_.compare_exchange_weak(pulling, epoch)) {
          }
          if (epoch <= pulling) return;
          asio::co_spawn(reactors_[0]->io, gossiper_->Pull(address), asio::detached);
        });
  }
  gossiper_->OnFatal([this](const Status& s) {
    if (options_.on_fatal) options_.on_fatal(s);
  });
  gossiper_->OnLeft([this] {
    if (options_.on_left) options_.on_left();
  });
  return Status::Ok();
}

// The coordinator, and the driver of topology changes beside it.
void Server::OpenCoordinator() {
  std::vector<cluster::InternodeClient*> clients;
  for (auto& c : clients_) clients.push_back(c.get());
  coordinator::CoordinatorOptions coordinator_options;
  coordinator_options.max_value_bytes = options_.max_value_bytes;
  coordinator_options.hint_window = options_.hint_window;
  coordinator_options.purge_margin = options_.purge_margin;
  coordinator_options.hot_key_ops_per_s = options_.hot_key_ops_per_s;
  coordinator_options.client_cache_ms = options_.client_cache_ttl_ms;
  coordinator_ = std::make_unique<coordinator::ClusterCoordinator>(
      coordinator_options, identity_, schema_.get(), gossiper_.get(), replica_.get(), clock_.get(),
      wall_.get(), blocking_->get_executor(), clients, hints_.get());
  coordinator_->SetTopologyStore(gossiper_.get());
  internode::NodeInfo self;
  self.set_node_id(identity_.node_id);
  self.set_address(address());
  self.set_dc(options_.dc);
  self.set_rack(options_.rack);
  coordinator::DriverOptions driver_options;
  driver_options.join = options_.join;
  driver_options.replace = options_.replace;
  driver_options.standby = options_.standby;
  driver_options.dead_after = options_.dead_after;
  driver_options.merge_window = options_.merge_window;
  driver_ = std::make_unique<coordinator::TopologyDriver>(
      coordinator_.get(), gossiper_.get(), clients[0], std::move(self), driver_options,
      reactors_[0]->io.get_executor());
  coordinator_->SetJoinCommand(
      [driver = driver_.get()](uint32_t replace) { return driver->JoinOnCommand(replace); });
  // A node back UP is dialled at once by every reactor's internode client, not after the rest of
  // a backoff that began while it was down.
  gossiper_->OnUp([this](const std::string& peer) {
    for (size_t i = 0; i < reactors_.size(); ++i) {
      asio::post(reactors_[i]->io,
                 [client = clients_[i].get(), peer] { client->ResetBackoff(peer); });
    }
  });
  // A new epoch: the streamer and the driver look at once rather than at their next poll.
  coordinator::BackgroundRepairOptions repair_options;
  repair_options.interval = options_.repair_interval;
  repair_options.bytes_per_second = options_.repair_bytes_per_second;
  repairer_ = std::make_unique<coordinator::BackgroundRepairer>(coordinator_.get(), replica_.get(),
                                                                identity_.node_id, repair_options,
                                                                reactors_[0]->io.get_executor());
  // Hot counters of keyspaces that ask for it are split automatically (docs/hot-keys.md).
  auto_splitter_ = std::make_unique<coordinator::AutoSplitter>(coordinator_.get(), gossiper_.get(),
                                                               reactors_[0]->io.get_executor());
  gossiper_->OnTopology([s = streamer_.get(), d = driver_.get()](auto) {
    s->Wake();
    d->Wake();
  });
}

// What clients and other nodes talk to: the native, RESP, internode and HTTP doors.
void Server::OpenFrontDoors() {
  request_memory_ = std::make_unique<base::MemoryBudget>(options_.max_request_memory_bytes);
  if (options_.auth) {
    access_ =
        std::make_unique<base::AccessControl>([c = coordinator_.get()] { return c->Users(); });
  }
  frontdoor::native::NativeOptions native_options;
  native_options.metrics = &requests_;
  native_options.memory = request_memory_.get();
  native_options.access = access_.get();
  // Room for a compare-and-swap of the largest value (expected and new value) plus the rest.
  native_options.max_frame_bytes =
      std::max<size_t>(size_t{16} << 20, 2 * options_.max_value_bytes + (size_t{1} << 20));
  native_ =
      std::make_unique<frontdoor::native::NativeFrontDoor>(coordinator_.get(), native_options);
  if (resp_acceptor_) {
    frontdoor::resp::RespOptions resp_options;
    resp_options.max_value_bytes = options_.max_value_bytes;
    resp_options.allow_flush = options_.allow_flush;
    resp_options.requirepass = options_.requirepass;
    resp_options.listen = resp_address();
    resp_options.server_connections = [this] { return open_connections_.load(); };
    resp_options.metrics = &requests_;
    resp_options.memory = request_memory_.get();
    resp_options.access = access_.get();
    resp_options.tracking_table_max_keys = options_.tracking_table_max_keys;
    resp_ = std::make_unique<frontdoor::resp::RespFrontDoor>(coordinator_.get(), resp_options);
  }
  internode_ = std::make_unique<replica::InternodeService>(
      replica_.get(), gossiper_.get(), clock_.get(), wall_.get(), identity_.node_id,
      std::max(kInternodeFrameBytes, native_options.max_frame_bytes), blocking_->get_executor());
  internode_->SetJoinHandler(
      [d = driver_.get()](internode::JoinRequest request, base::Deadline deadline) {
        return d->HandleJoin(std::move(request), deadline);
      });
  internode_->SetHotKeys(&coordinator_->hot_keys());
  internode_->SetRepairRunsHandler([c = coordinator_.get()](internode::RepairRunsResponse* out) {
    for (const coordinator::RepairRunReport& r : c->repair_runs().Snapshot()) {
      coordinator::ToEntry(r, out->add_runs());
    }
  });
  internode_->SetTrackingHandler(
      [t = &coordinator_->invalidations()](uint32_t from, const internode::Request& request) {
        if (request.has_keys_changed()) t->Receive(from, request.keys_changed());
        if (request.has_tracking()) t->Receive(from, request.tracking());
      });
  internode_->SetRepairPullHandler(
      [s = streamer_.get()](internode::RepairPullRequest request, base::Deadline deadline) {
        return s->HandleRepairPull(std::move(request), deadline);
      });

  if (http_acceptor_) {
    frontdoor::http::HttpOptions http_options;
    http_options.max_body_bytes = options_.max_value_bytes;
    http_options.idle_timeout = options_.http_idle_timeout;
    http_options.read_timeout = options_.http_read_timeout;
    http_options.memory = request_memory_.get();
    http_options.access = access_.get();
    http_ = std::make_unique<frontdoor::http::HttpFrontDoor>(
        coordinator_.get(), &metrics_, &requests_, [this] { return Ready(); }, http_options);
  }
  RegisterMetrics();
}

// Starts accepting, gossiping and the background work, and the reactor threads.
void Server::StartServing() {
  // Everything below reports its own failures (logs, hints, on_fatal_): detached is right.
  serving_ = true;
  asio::co_spawn(reactors_[0]->io, AcceptLoop(acceptor_.get(), Port::kMain), asio::detached);
  if (http_acceptor_) {
    asio::co_spawn(reactors_[0]->io, AcceptLoop(http_acceptor_.get(), Port::kHttp), asio::detached);
  }
  if (resp_acceptor_) {
    asio::co_spawn(reactors_[0]->io, AcceptLoop(resp_acceptor_.get(), Port::kResp), asio::detached);
  }
  asio::co_spawn(reactors_[0]->io, gossiper_->Run(), asio::detached);
  asio::co_spawn(reactors_[0]->io, replayer_->Run(), asio::detached);
  asio::co_spawn(reactors_[0]->io, streamer_->Run(), asio::detached);
  asio::co_spawn(reactors_[0]->io, driver_->Run(), asio::detached);
  asio::co_spawn(reactors_[0]->io, repairer_->Run(), asio::detached);
  asio::co_spawn(reactors_[0]->io, coordinator_->invalidations().Run(), asio::detached);
  asio::co_spawn(reactors_[0]->io, auto_splitter_->Run(), asio::detached);
  if (bootstrap_user_) {
    asio::co_spawn(
        reactors_[0]->io,
        BootstrapFirstUser(coordinator_.get(), bootstrap_user_->first, bootstrap_user_->second),
        asio::detached);
  }
  for (size_t i = 0; i < reactors_.size(); ++i) {
    asio::co_spawn(reactors_[i]->io, WatchReactorLag(i), asio::detached);
  }
  for (size_t i = 0; i < reactors_.size(); ++i) {
    reactors_[i]->thread = std::thread([i, io = &reactors_[i]->io] {
      base::SetReactorIndex(i);
      io->run();
    });
  }
  ticker_ = std::thread([this] { ReservationTicker(); });
}

namespace {

// What each of Coordinator::Metrics()'s counters means, for the HELP line of
// cairn_<name with '.' as '_'>_total. Unknown names still get exported, with a generic help.
constexpr std::pair<std::string_view, std::string_view> kCoordinatorHelp[] = {
    {"paxos.cas", "Compare-and-swap operations coordinated by this node"},
    {"paxos.serial_reads", "SERIAL and LOCAL_SERIAL reads coordinated by this node"},
    {"paxos.linearizable_writes", "Plain writes to linearizable keyspaces (each one Paxos round)"},
    {"paxos.prepare_round_trips", "Paxos prepare round trips"},
    {"paxos.propose_round_trips", "Paxos propose round trips"},
    {"paxos.commit_round_trips", "Paxos commit round trips, awaited or not"},
    {"paxos.contended_retries", "Paxos rounds retried after a refusal or a timeout (contention)"},
    {"paxos.completed_others", "Unfinished Paxos proposals of other coordinators completed"},
    {"paxos.leased_proposals",
     "Compare-and-swaps proposed without a prepare round, under the promise of the key's last "
     "commit here"},
    {"paxos.leases_lost", "Of those, refused because another ballot came between (then prepared)"},
    {"paxos.timeouts", "Paxos operations that ran out of time"},
    {"replica.writes", "Mutations sent to a replica, this node included"},
    {"replica.write_failures", "Mutations a replica did not acknowledge (hinted or lost)"},
    {"replica.reads", "Reads asked of a replica, this node included"},
    {"replica.local_reads", "Reads this node served from its own replica (no network hop)"},
    {"replica.remote_reads", "Reads this node sent to another node's replica"},
    {"replica.replans",
     "Requests planned again with a newer topology after replicas refused the older one"},
    {"replica.read_repairs", "Stale replicas sent the newest version by a read (read repair)"},
    {"replica.speculative_reads",
     "Spare replicas a read asked because a chosen one had not answered in time"},
    {"hints.stored", "Mutations stored as hints for a replica that was down or slow"},
    {"split_counters.increments", "Increments of split counters this node coordinated"},
    {"split_counters.redirected",
     "Of those, sent from a sub-counter to the key (the sub-counter was frozen or absent)"},
    {"split_counters.reads", "Reads of split counters this node summed"},
    {"split_counters.auto",
     "Counters this node split automatically (keyspaces with auto_split_increments_per_s)"},
    {"tracking.messages_sent",
     "Messages with changed keys (client-side caching) sent to nodes that have tracking clients"},
    {"tracking.keys_sent", "Keys in those messages"},
    {"tracking.messages_failed",
     "Of those messages, not answered in time (the node is then owed a flush)"},
    {"tracking.flushes_sent",
     "Of those messages, flushes: the node's tracking clients drop everything they cached"},
    {"tracking.messages_received", "Messages with changed keys received from other nodes"},
    {"tracking.keys_received", "Keys in those messages"},
    {"tracking.announcements",
     "Messages telling other nodes that this node has (or no longer has) tracking clients"},
};

// RocksDB properties of the data column family exported as gauges.
constexpr std::array<std::array<std::string_view, 3>, 8> kRocksDbGauges{{
    {"cairn_rocksdb_memtable_bytes", "rocksdb.cur-size-all-mem-tables",
     "Bytes in the active and unflushed immutable memtables"},
    {"cairn_rocksdb_immutable_memtables", "rocksdb.num-immutable-mem-table",
     "Immutable memtables not yet flushed"},
    {"cairn_rocksdb_pending_compaction_bytes", "rocksdb.estimate-pending-compaction-bytes",
     "Estimated bytes compaction has to rewrite to settle the LSM tree"},
    {"cairn_rocksdb_running_compactions", "rocksdb.num-running-compactions",
     "Compactions running now"},
    {"cairn_rocksdb_sst_bytes", "rocksdb.live-sst-files-size", "Bytes of live SST files"},
    {"cairn_rocksdb_blob_bytes", "rocksdb.live-blob-file-size", "Bytes of live blob files"},
    {"cairn_rocksdb_estimated_keys", "rocksdb.estimate-num-keys",
     "Estimated keys (versions and tombstones included)"},
    {"cairn_rocksdb_block_cache_bytes", "rocksdb.block-cache-usage",
     "Bytes held in the block cache"},
}};

}  // namespace

void Server::RegisterMetrics() {
  using base::metrics::Exposition;
  using base::metrics::Type;
  if (access_) metrics_.Add([a = access_.get()](Exposition& out) { a->Collect(out); });
  metrics_.Add([this](Exposition& out) {
    out.Single("cairn_up", "1 while the node serves (the gauge is absent when it is down)",
               Type::kGauge, 1);
    if (out.Family("cairn_build_info", "The server's version and node id", Type::kGauge)) {
      out.Sample({{"version", CAIRN_VERSION}, {"node_id", std::to_string(identity_.node_id)}}, 1);
    }
    out.Single("cairn_ready", "1 when the node serves clients (see /ready), else 0", Type::kGauge,
               Ready().ok() ? 1 : 0);
  });
  metrics_.Add([this](Exposition& out) { requests_.Collect(out); });
  metrics_.Add([this](Exposition& out) {
    auto state = gossiper_->state();
    out.Single("cairn_topology_epoch", "The newest topology epoch this node has adopted",
               Type::kGauge, static_cast<double>(state ? state->epoch() : 0));
    out.Single("cairn_topology_change_in_progress",
               "1 while a topology change (join, decommission, removal) runs, else 0", Type::kGauge,
               state && state->has_transition() ? 1 : 0);
    const replica::StreamProgress p = streamer_->progress();
    out.Single("cairn_stream_ranges_pending",
               "Ranges this node has still to stream in for the change in progress", Type::kGauge,
               static_cast<double>(p.total - std::min(p.total, p.done)));
    out.Single("cairn_stream_bytes_total", "Bytes this node has streamed in for topology changes",
               Type::kCounter, static_cast<double>(streamer_->bytes_total()));
    out.Single("cairn_stream_chunks_served_total",
               "Range chunks this node has served to nodes streaming in", Type::kCounter,
               static_cast<double>(replica_->stream_chunks_served()));
    out.Single("cairn_stream_bytes_served_total", "Bytes of those chunks", Type::kCounter,
               static_cast<double>(replica_->stream_bytes_served()));
    const auto r = repairer_->counters();
    out.Single("cairn_repair_ranges_total",
               "Ranges this node's background repair compared with their other replicas",
               Type::kCounter, static_cast<double>(r.ranges));
    out.Single("cairn_repair_ranges_agreed_total",
               "Of those, ranges whose every replica took part and agreed after the repair",
               Type::kCounter, static_cast<double>(r.ranges_agreed));
    out.Single("cairn_repair_segments_compared_total",
               "Digest segments background repair compared (per replica beyond the first)",
               Type::kCounter, static_cast<double>(r.segments_compared));
    out.Single("cairn_repair_segments_differing_total",
               "Digest segments background repair found differing", Type::kCounter,
               static_cast<double>(r.segments_differing));
    out.Single("cairn_repair_keys_repaired_total",
               "Records background repair sent to replicas that lacked them", Type::kCounter,
               static_cast<double>(r.keys_repaired));
    out.Single("cairn_repair_bytes_total", "Bytes of those records", Type::kCounter,
               static_cast<double>(r.bytes));
    out.Single("cairn_repair_bytes_pulled_total",
               "Bytes this node pulled from other replicas for repairs (any node's)",
               Type::kCounter, static_cast<double>(streamer_->repair_bytes_total()));
    out.Single("cairn_tombstones_purged_total",
               "Tombstones and expired values background repair had purged on every replica",
               Type::kCounter, static_cast<double>(r.tombstones_purged));
    out.Single("cairn_repair_cycles_total", "Full background repair cycles this node finished",
               Type::kCounter, static_cast<double>(r.cycles));
    out.Single("cairn_repair_last_cycle_seconds",
               "How long this node's last full background repair cycle took (0: none yet)",
               Type::kGauge, r.last_cycle_seconds);
    out.Single("cairn_scrubs_total", "Scrubs of every table file of this node's data finished",
               Type::kCounter, static_cast<double>(r.scrubs));
    out.Single("cairn_scrub_files_total", "Table files the scrub checked against their checksums",
               Type::kCounter, static_cast<double>(r.files_scrubbed));
    out.Single("cairn_scrub_bytes_total", "Bytes of those files", Type::kCounter,
               static_cast<double>(r.bytes_scrubbed));
    out.Single("cairn_scrub_corrupt_files_total",
               "Table files found corrupt and dropped with the ranges they held", Type::kCounter,
               static_cast<double>(r.corrupt_files));
    out.Single("cairn_scrub_ranges_dropped_total", "Ranges dropped with corrupt files",
               Type::kCounter, static_cast<double>(r.ranges_dropped));
    out.Single("cairn_scrub_ranges_to_repair",
               "Ranges dropped with corrupt files and not yet repaired from the other replicas",
               Type::kGauge, static_cast<double>(r.ranges_to_repair));
    out.Single("cairn_storage_corruptions_total",
               "Corruption errors reads and compactions met in this node's data", Type::kCounter,
               static_cast<double>(replica_->corruptions_seen()));
  });
  metrics_.Add([](Exposition& out) {
    const std::optional<AllocatorStats> heap = ReadAllocatorStats();
    if (!heap) return;  // a build without jemalloc
    out.Single("cairn_memory_allocated_bytes",
               "Heap bytes the node has allocated and not freed (jemalloc's stats.allocated)",
               Type::kGauge, static_cast<double>(heap->allocated));
    out.Single("cairn_memory_resident_bytes",
               "Bytes of the heap allocator's pages resident in memory (jemalloc's "
               "stats.resident)",
               Type::kGauge, static_cast<double>(heap->resident));
  });
  metrics_.Add([this](Exposition& out) {
    if (out.Family("cairn_open_connections", "Client connections open now, by front door",
                   Type::kGauge)) {
      out.Sample({{"frontdoor", "native"}}, static_cast<double>(native_->open_connections()));
      if (http_)
        out.Sample({{"frontdoor", "http"}}, static_cast<double>(http_->open_connections()));
      if (resp_)
        out.Sample({{"frontdoor", "resp"}}, static_cast<double>(resp_->open_connections()));
    }
    if (resp_) {
      const frontdoor::resp::RespFrontDoor::TrackingFigures t = resp_->tracking_figures();
      out.Single("cairn_resp_tracking_connections",
                 "RESP connections with client-side caching on (CLIENT TRACKING)", Type::kGauge,
                 static_cast<double>(t.connections));
      out.Single("cairn_resp_tracking_keys",
                 "Keys remembered for tracking RESP connections (default mode)", Type::kGauge,
                 static_cast<double>(t.keys));
      out.Single("cairn_resp_tracking_prefixes", "BCAST prefixes of tracking RESP connections",
                 Type::kGauge, static_cast<double>(t.prefixes));
      out.Single("cairn_resp_invalidations_total",
                 "Invalidation pushes sent to RESP clients (null ones included)", Type::kCounter,
                 static_cast<double>(t.pushes));
      out.Single("cairn_resp_invalidated_keys_total", "Keys in those pushes", Type::kCounter,
                 static_cast<double>(t.pushed_keys));
      out.Single("cairn_resp_tracking_evictions_total",
                 "Tracked keys forgotten (and invalidated) for --tracking-table-max-keys",
                 Type::kCounter, static_cast<double>(t.evicted));
    }
    const base::MemoryBudget& memory = *request_memory_;
    out.Single("cairn_request_memory_bytes",
               "Bytes of client requests read and not yet answered and of replies not yet "
               "written, over every connection (what --max-request-memory-mb bounds)",
               Type::kGauge, static_cast<double>(memory.used()));
    out.Single("cairn_request_memory_limit_bytes",
               "The request memory budget (--max-request-memory-mb)", Type::kGauge,
               static_cast<double>(memory.limit()));
    out.Single("cairn_request_memory_paused_connections",
               "Client connections not read now because the node or the connection holds too "
               "much request memory (slow readers, deep pipelines)",
               Type::kGauge, static_cast<double>(memory.paused()));
    out.Single("cairn_request_memory_refused_total",
               "Requests over the per-connection part of the budget and replies of reads that did "
               "not fit it, refused with an error",
               Type::kCounter, static_cast<double>(memory.refused()));
    out.Single("cairn_port_connections",
               "Connections open now on the client and internode port and the HTTP and RESP ports, "
               "those still to name their protocol included (what --max-connections limits)",
               Type::kGauge, static_cast<double>(open_connections_.load()));
  });
  metrics_.Add([this](Exposition& out) {
    // The node's five hottest keys (cairn hotkeys has the cluster's view): a key label of at
    // most 64 printable bytes, so that a series per key stays cheap; five series a node.
    if (out.Family("cairn_hot_key_ops_per_second",
                   "Reads and writes per second of the five keys this node coordinates most "
                   "often (estimates from sampled operations over the last 10-20 s)",
                   Type::kGauge)) {
      std::map<uint32_t, std::string> names;
      if (auto listed = coordinator_->ListKeyspaces(); listed.ok()) {
        for (const auto& def : *listed) names[def.id] = def.name;
      }
      int rank = 0;
      for (const base::HotKey& h : coordinator_->hot_keys().Top(0, 5)) {
        const std::string r = std::to_string(++rank);
        std::string key = base::Printable(std::string_view(h.key).substr(0, 64));
        const std::string& ks = names.contains(h.keyspace) ? names[h.keyspace] : "";
        out.Sample({{"rank", r}, {"keyspace", ks}, {"key", key}, {"op", "read"}}, h.reads_per_s);
        out.Sample({{"rank", r}, {"keyspace", ks}, {"key", key}, {"op", "write"}}, h.writes_per_s);
      }
    }
  });
  metrics_.Add([this](Exposition& out) {
    for (const auto& [name, value] : coordinator_->Metrics()) {
      std::string metric = "cairn_" + name + "_total";
      std::replace(metric.begin(), metric.end(), '.', '_');
      std::string_view help = "A coordinator counter (docs/metrics.md)";
      for (const auto& [n, h] : kCoordinatorHelp) {
        if (n == name) help = h;
      }
      if (out.Family(metric, help, Type::kCounter)) out.Sample({}, static_cast<double>(value));
    }
  });
  metrics_.Add([this](Exposition& out) {
    size_t up = 0, down = 0;
    for (const cluster::NodeStatus& n : gossiper_->Nodes()) (n.up ? up : down)++;
    if (out.Family("cairn_nodes",
                   "Cluster members by state as this node's failure detector sees "
                   "them (itself included)",
                   Type::kGauge)) {
      out.Sample({{"state", "up"}}, static_cast<double>(up));
      out.Sample({{"state", "down"}}, static_cast<double>(down));
    }
    const coordinator::ClusterInfo info = coordinator_->Cluster();
    out.Single("cairn_cluster_formed", "1 once the cluster has formed (a partition map exists)",
               Type::kGauge, info.formed ? 1 : 0);
    out.Single("cairn_partitions", "Partitions of the cluster", Type::kGauge, info.partitions);
  });
  metrics_.Add([this](Exposition& out) {
    out.Single("cairn_hints_pending", "Hints stored on this node, waiting to be replayed",
               Type::kGauge, static_cast<double>(hints_->TotalPending()));
    out.Single("cairn_hints_replayed_total", "Hints replayed to their replica since start",
               Type::kCounter, static_cast<double>(hints_->replayed()));
  });
  metrics_.Add([this](Exposition& out) {
    for (const auto& [metric, property, help] : kRocksDbGauges) {
      auto value = engine_->Property(property);
      if (!value) continue;
      out.Single(metric, help, Type::kGauge, std::strtod(value->c_str(), nullptr));
    }
    const storage::Engine::Counters c = engine_->StatisticsCounters();
    out.Single("cairn_rocksdb_block_cache_hits_total", "Block cache hits since start",
               Type::kCounter, static_cast<double>(c.block_cache_hits));
    out.Single("cairn_rocksdb_block_cache_misses_total", "Block cache misses since start",
               Type::kCounter, static_cast<double>(c.block_cache_misses));
    const uint64_t lookups = c.block_cache_hits + c.block_cache_misses;
    out.Single("cairn_rocksdb_block_cache_hit_ratio",
               "Block cache hits / lookups since start (0 before the first lookup)", Type::kGauge,
               lookups == 0 ? 0.0 : static_cast<double>(c.block_cache_hits) / lookups);
    out.Single("cairn_rocksdb_wal_syncs_total", "WAL fsyncs since start", Type::kCounter,
               static_cast<double>(c.wal_syncs));
    const storage::ReadCache::Counters rc = engine_->ReadCacheCounters();
    out.Single("cairn_storage_read_cache_hits_total",
               "Reads of a key answered from the read cache since start", Type::kCounter,
               static_cast<double>(rc.hits));
    out.Single("cairn_storage_read_cache_misses_total",
               "Reads of a key that went to RocksDB since start", Type::kCounter,
               static_cast<double>(rc.misses));
    out.Single("cairn_storage_read_cache_entries", "Keys held in the read cache", Type::kGauge,
               static_cast<double>(rc.entries));
    out.Single("cairn_storage_read_cache_bytes",
               "Bytes the read cache holds (keys, values and bookkeeping)", Type::kGauge,
               static_cast<double>(rc.bytes));
    out.Single("cairn_storage_paxos_cache_hits_total",
               "Paxos acceptor records read in group commits from memory since start",
               Type::kCounter, static_cast<double>(engine_->paxos_cache_hits()));
    out.Single("cairn_storage_paxos_cache_misses_total",
               "Paxos acceptor records read in group commits from RocksDB since start",
               Type::kCounter, static_cast<double>(engine_->paxos_cache_misses()));
    const storage::Engine::Garbage garbage = engine_->TableGarbage();
    out.Single("cairn_storage_table_bytes", "Size of the data's table files", Type::kGauge,
               static_cast<double>(garbage.table_bytes));
    out.Single("cairn_storage_dead_bytes",
               "Of those, garbage: tombstones and values expired when their file was written "
               "(purged by repair, then reclaimed by compaction)",
               Type::kGauge, static_cast<double>(garbage.dead_bytes));
    out.Single("cairn_storage_table_entries", "Entries in the data's table files", Type::kGauge,
               static_cast<double>(garbage.entries));
    out.Single("cairn_storage_dead_entries", "Of those, tombstones and expired values",
               Type::kGauge, static_cast<double>(garbage.dead_entries));
    out.Single("cairn_storage_writes_absorbed_total",
               "Writes not applied because their group commit wrote a newer version of the key "
               "(hot keys)",
               Type::kCounter, static_cast<double>(engine_->absorbed()));
    out.Single("cairn_reactor_lag_seconds",
               "How late the reactor threads woke for a timer set 50 ms ahead: a blocked or "
               "CPU-starved reactor delays every request it serves",
               reactor_lag_.Snapshot());
    out.Single("cairn_storage_write_wait_seconds",
               "Time writes waited in the storage writer's queue before their group commit began",
               engine_->write_wait());
    out.Single("cairn_storage_group_commit_seconds",
               "Time each group commit took: reads, batch, write and fsync",
               engine_->group_commit_time());
    out.Single("cairn_storage_index_scans_total",
               "Scans over many partitions answered by walking the key index", Type::kCounter,
               static_cast<double>(engine_->index_scans()));
    out.Single("cairn_storage_index_stale_skipped_total",
               "Key index records a scan skipped because their key is no longer held here (left "
               "by a range moved away)",
               Type::kCounter, static_cast<double>(engine_->index_stale_skipped()));
    out.Single("cairn_storage_group_commits_total",
               "Group commits since start: one WriteBatch and one WAL fsync for every write that "
               "arrived meanwhile",
               Type::kCounter, static_cast<double>(engine_->group_commits()));
  });
}

// Accepts on reactor 0 and hands each connection to the next reactor in turn: to Route() on the
// client/internode port, to the HTTP or RESP front door on theirs. One --max-connections budget
// covers them all.
asio::awaitable<void> Server::AcceptLoop(asio::ip::tcp::acceptor* acceptor, Port port) {
  size_t next = 0;
  while (true) {
    Reactor& target = *reactors_[next];
    next = (next + 1) % reactors_.size();
    auto [ec, socket] = co_await acceptor->async_accept(target.io, kNoThrow);
    if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
    if (ec) {
      // Out of file descriptors and the like: say so and back off instead of spinning.
      spdlog::warn("accept failed: {}", ec.message());
      asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(100));
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    if (open_connections_.load() >= options_.max_connections) {
      spdlog::warn("refusing a connection from {}: {} connections are open (--max-connections)",
                   socket.remote_endpoint(ec).address().to_string(), options_.max_connections);
      socket.close(ec);
      continue;
    }
    // Each ends when the connection does and reports nothing: detached is right here.
    if (port == Port::kHttp) {
      asio::co_spawn(target.io, ServeHttp(std::move(socket)), asio::detached);
    } else if (port == Port::kResp) {
      asio::co_spawn(target.io, ServeResp(std::move(socket)), asio::detached);
    } else {
      asio::co_spawn(target.io, Route(std::move(socket)), asio::detached);
    }
  }
}

asio::awaitable<void> Server::ServeHttp(asio::ip::tcp::socket socket) {
  ++open_connections_;
  struct Release {
    std::atomic<size_t>& n;
    ~Release() { --n; }
  } release{open_connections_};
  auto stream = co_await Accept(std::move(socket));
  if (stream) co_await http_->Serve(std::move(*stream));
}

// Reads the preamble and hands the connection to the protocol it names.
asio::awaitable<void> Server::Route(asio::ip::tcp::socket socket) {
  ++open_connections_;
  struct Release {
    std::atomic<size_t>& n;
    ~Release() { --n; }
  } release{open_connections_};
  auto accepted = co_await Accept(std::move(socket));
  if (!accepted) co_return;
  net::Stream& stream = *accepted;
  auto preamble =
      co_await base::WithDeadline(net::ReadPreamble(stream), base::Clock::now() + kPreambleTimeout);
  if (!preamble || !preamble->ok()) co_return;  // silent or gone: nothing to answer
  boost::system::error_code ec;
  if (**preamble == net::kNativePreamble) {
    co_await native_->Serve(std::move(stream));
  } else if (**preamble == net::kInternodePreamble) {
    if (tls_ && tls_->mutual() && !stream.PeerVerified()) {
      // A client, or a node without a certificate of the cluster's CA: not a member.
      spdlog::warn(
          "refusing internode connection from {}: it presented no certificate signed "
          "by the cluster CA (--internode-tls)",
          stream.socket().remote_endpoint(ec).address().to_string());
      stream.Close();
      co_return;
    }
    if (stream.tls()) {
      spdlog::debug("internode connection from {} (certificate {})",
                    stream.socket().remote_endpoint(ec).address().to_string(),
                    stream.PeerCertificate());
    }
    co_await internode_->Serve(std::move(stream));
  } else {
    // Not our protocol (a browser, redis-cli, random bytes): nothing it would understand.
    spdlog::debug("closing a connection from {} with an unknown preamble",
                  stream.socket().remote_endpoint(ec).address().to_string());
  }
}

// A RESP connection has no preamble: Redis clients speak first with a command.
asio::awaitable<void> Server::ServeResp(asio::ip::tcp::socket socket) {
  ++open_connections_;
  struct Release {
    std::atomic<size_t>& n;
    ~Release() { --n; }
  } release{open_connections_};
  auto stream = co_await Accept(std::move(socket));
  if (stream) co_await resp_->Serve(std::move(*stream));
}

asio::awaitable<void> Server::WatchReactorLag(size_t index) {
  constexpr auto kLagTick = std::chrono::milliseconds(50);
  constexpr auto kWarnLag = std::chrono::milliseconds(250);
  asio::steady_timer timer(co_await asio::this_coro::executor);
  std::optional<std::chrono::steady_clock::time_point> last_warning;
  while (true) {
    const auto due = std::chrono::steady_clock::now() + kLagTick;
    timer.expires_at(due);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;  // stopping
    const auto now = std::chrono::steady_clock::now();
    const auto lag = now - due;
    reactor_lag_.Record(lag);
    if (lag >= kWarnLag && (!last_warning || now - *last_warning >= std::chrono::seconds(10))) {
      last_warning = now;
      spdlog::warn(
          "reactor thread {} ran {} ms late: something blocked it, or the machine is short of "
          "CPU (cairn_reactor_lag_seconds; further warnings held for 10 s)",
          index, std::chrono::duration_cast<std::chrono::milliseconds>(lag).count());
    }
  }
}

void Server::ReservationTicker() {
  std::unique_lock lock(ticker_mu_);
  while (!stopping_) {
    lock.unlock();
    clock_->MaintainReservation();
    lock.lock();
    ticker_cv_.wait_for(lock, std::chrono::milliseconds(200), [this] { return stopping_; });
  }
}

void Server::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (acceptor_ && !reactors_.empty()) {
    asio::post(reactors_[0]->io, [a = acceptor_.get(), r = resp_acceptor_.get()] {
      boost::system::error_code ec;
      a->close(ec);
      if (r) r->close(ec);
    });
  }
  serving_ = false;
  if (http_acceptor_ && !reactors_.empty()) {
    asio::post(reactors_[0]->io, [a = http_acceptor_.get()] {
      boost::system::error_code ec;
      a->close(ec);
    });
  }
  if (gossiper_) gossiper_->Stop();
  if (replayer_) replayer_->Stop();
  if (streamer_) streamer_->Stop();
  if (driver_) driver_->Stop();
  if (repairer_) repairer_->Stop();
  if (auto_splitter_) auto_splitter_->Stop();
  if (native_) native_->CloseAll();
  if (http_) http_->CloseAll();
  if (resp_) resp_->CloseAll();
  if (internode_) internode_->CloseAll();
  // Let requests in flight answer; connections close once they have.
  for (int i = 0; i < 200 && open_connections_.load() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (size_t i = 0; i < clients_.size(); ++i) {
    asio::post(reactors_[i]->io, [c = clients_[i].get()] { c->CloseAll(); });
  }
  for (auto& r : reactors_) {
    r->work.reset();
    r->io.stop();
  }
  for (auto& r : reactors_) {
    if (r->thread.joinable()) r->thread.join();
  }
  {
    std::lock_guard lock(ticker_mu_);
    stopping_ = true;
  }
  ticker_cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  if (blocking_) blocking_->join();
  // The engine drains its writer queue; completions go to reactors that are stopped but alive.
  internode_.reset();
  http_.reset();
  native_.reset();
  resp_.reset();
  driver_.reset();
  auto_splitter_.reset();
  repairer_.reset();
  streamer_.reset();
  coordinator_.reset();
  replayer_.reset();
  hints_.reset();
  gossiper_.reset();
  clients_.clear();
  replica_.reset();
  schema_.reset();
  engine_.reset();
  acceptor_.reset();
  http_acceptor_.reset();
  resp_acceptor_.reset();
  reactors_.clear();
}

Server::~Server() {
  Stop();
  if (dir_lock_fd_ >= 0) ::close(dir_lock_fd_);
}

Status Server::LockDataDirectory() {
  const std::string path = (std::filesystem::path(options_.data_dir) / "cairnd.lock").string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status::InvalidArgument(
        fmt::format("cannot open {}: {}", path, std::system_category().message(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    char holder[32] = {};
    const ssize_t n = ::pread(fd, holder, sizeof holder - 1, 0);
    ::close(fd);
    if (error == EWOULDBLOCK) {
      return Status::FailedPrecondition(
          fmt::format("data directory {} is in use by another cairnd (pid {})", options_.data_dir,
                      n > 0 ? std::string(holder, static_cast<size_t>(n)) : "unknown"));
    }
    return Status::Internal(
        fmt::format("cannot lock {}: {}", path, std::system_category().message(error)));
  }
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    spdlog::warn("cannot record this process's pid in {}", path);
  }
  dir_lock_fd_ = fd;
  return Status::Ok();
}

}  // namespace cairn::server
