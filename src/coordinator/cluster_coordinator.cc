// ClusterCoordinator: construction and what every operation shares (keyspace, key and level
// checks, the topology). The operations are in write.cc, read.cc, scan.cc, paxos.cc and admin.cc.
#include "coordinator/cluster_coordinator.h"

#include <algorithm>
#include <map>
#include <tuple>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/hash.h"
#include "base/reactor.h"
#include "coordinator/replica_set.h"
#include "replica/internode_service.h"

namespace cairn::coordinator {

using base::kNoThrow;
using storage::StoredValue;
using storage::WriteOp;

std::optional<Record> LiveRecord(const StoredValue& v, uint64_t now_ms) {
  if (!v.IsLive(now_ms)) return std::nullopt;
  return Record{v.value, v.version, v.expires_at_ms};
}

ClusterCoordinator::ClusterCoordinator(CoordinatorOptions options, cluster::NodeIdentity identity,
                                       cluster::Schema* schema, const cluster::ClusterView* view,
                                       replica::Replica* local, base::HybridClock* clock,
                                       base::PhysicalClock* wall, asio::any_io_executor blocking,
                                       std::vector<cluster::InternodeClient*> clients,
                                       HintStore* hints)
    : options_(options),
      identity_(identity),
      schema_(schema),
      view_(view),
      local_(local),
      clock_(clock),
      wall_(wall),
      blocking_(std::move(blocking)),
      clients_(std::move(clients)),
      hints_(hints),
      hot_keys_(HotKeysOptionsOf(options)),
      invalidations_(identity_.node_id, view_, clock_, clients_) {}

base::HotKeys::Options ClusterCoordinator::HotKeysOptionsOf(const CoordinatorOptions& options) {
  base::HotKeys::Options o;
  o.hot_ops_per_s = options.client_cache_ms == 0 ? 0 : options.hot_key_ops_per_s;
  return o;
}

cluster::InternodeClient* ClusterCoordinator::Client() const {
  const size_t i = base::ReactorIndex();
  return i < clients_.size() ? clients_[i] : nullptr;
}

asio::awaitable<void> ClusterCoordinator::AskLivePeers(
    const internode::Request& request, std::chrono::milliseconds timeout,
    const std::function<bool(uint32_t, internode::Response&)>& take, std::string_view what,
    uint32_t* asked, std::vector<uint32_t>* missing) {
  for (const cluster::NodeStatus& n : view_->Nodes()) {
    if (n.self || n.node_id == 0 || !n.up || n.dead) continue;
    ++*asked;
    cluster::InternodeClient* client = Client();
    if (client == nullptr) {
      missing->push_back(n.node_id);
      continue;
    }
    auto response = co_await client->Call(n.address, request, base::Clock::now() + timeout);
    if (!response.ok()) {
      spdlog::debug("{} of node {}: {}", what, n.node_id, response.status().ToString());
      missing->push_back(n.node_id);
    } else if (!take(n.node_id, *response)) {
      spdlog::debug("{} of node {}: the answer holds none", what, n.node_id);
      missing->push_back(n.node_id);
    }
  }
}

std::string ClusterCoordinator::AddressOf(const cluster::Topology& topology, uint32_t node) const {
  const cluster::Member* m = topology.Find(node);
  return m == nullptr ? std::string() : m->address;
}

Result<std::shared_ptr<const cluster::Topology>> ClusterCoordinator::Topology() const {
  auto topology = view_->topology();
  if (!topology) return Status::Unavailable(view_->NotFormedReason());
  return topology;
}

Consistency ClusterCoordinator::Resolve(Consistency level, const cluster::KeyspaceDef& ks,
                                        bool write) const {
  if (level != Consistency::kDefault) return level;
  return write ? ks.write_consistency : ks.read_consistency;
}

Result<std::shared_ptr<const cluster::KeyspaceDef>> ClusterCoordinator::ResolveKeyspace(
    const std::string& name) const {
  const std::string_view wanted = name.empty() ? cluster::kDefaultKeyspace : std::string_view(name);
  auto def = schema_->Lookup(wanted);
  if (!def) return Status::InvalidArgument(fmt::format("keyspace '{}' does not exist", wanted));
  return def;
}

Status ClusterCoordinator::ValidateKey(std::string_view key) const {
  if (key.empty()) return Status::InvalidArgument("the key is empty");
  if (key.size() > kMaxKeyBytes) {
    return Status::TooLarge(
        fmt::format("the key is {} bytes; keys are at most {} bytes", key.size(), kMaxKeyBytes));
  }
  return Status::Ok();
}

Status ClusterCoordinator::ValidateValue(std::string_view value) const {
  if (value.size() > options_.max_value_bytes) {
    return Status::TooLarge(fmt::format("the value is {} bytes; this server takes at most {}",
                                        value.size(), options_.max_value_bytes));
  }
  return Status::Ok();
}

Status ClusterCoordinator::ValidateTtl(uint64_t ttl_ms) const {
  if (ttl_ms > options_.max_ttl_ms) {
    return Status::InvalidArgument(
        fmt::format("ttl of {} ms is over the maximum of {} ms", ttl_ms, options_.max_ttl_ms));
  }
  return Status::Ok();
}

Status ClusterCoordinator::ValidateReadLevel(Consistency level) const {
  if (level == Consistency::kAny) {
    return Status::InvalidArgument("ANY is a write consistency level; reads need at least ONE");
  }
  return Status::Ok();
}

Status ClusterCoordinator::ValidateWriteLevel(Consistency level) const {
  if (level == Consistency::kSerial || level == Consistency::kLocalSerial) {
    return Status::InvalidArgument(fmt::format(
        "{} applies to reads and compare-and-swap; plain writes take ONE .. ALL, LOCAL_*, "
        "EACH_QUORUM or ANY",
        ConsistencyName(level)));
  }
  return Status::Ok();
}

storage::DataKey ClusterCoordinator::KeyOf(const cluster::KeyspaceDef& ks, std::string key) const {
  const uint32_t partition = base::PartitionOfToken(base::Token(key), identity_.partition_bits);
  return storage::DataKey{partition, ks.id, std::move(key)};
}

uint64_t ClusterCoordinator::ExpiryFor(uint64_t ttl_ms) const {
  return ttl_ms == 0 ? 0 : wall_->NowMillis() + ttl_ms;
}
asio::awaitable<std::shared_ptr<const cluster::Topology>> ClusterCoordinator::NewerTopology(
    uint64_t epoch, base::Deadline deadline) {
  const base::Deadline until = std::min(deadline, base::Clock::now() + std::chrono::seconds(2));
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (true) {
    auto topology = view_->topology();
    if (topology && topology->epoch > epoch) co_return topology;
    if (base::Clock::now() >= until) co_return nullptr;
    timer.expires_after(std::chrono::milliseconds(2));
    co_await timer.async_wait(base::kNoThrow);
  }
}

}  // namespace cairn::coordinator
