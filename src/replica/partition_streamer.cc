#include "replica/partition_streamer.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <xxhash.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "base/async.h"
#include "base/endian.h"
#include "cluster/topology_state.h"
#include "replica/internode_service.h"
#include "replica/paxos_acceptor.h"
#include "replica/range_repair.h"

namespace cairn::replica {
namespace {

using base::kNoThrow;

// Progress of one range from one source, in `meta`: "R" + the chunks and bytes applied so far
// (two u64, big endian) + the last key applied, or "E" + the chunks and bytes once done.
// Records of earlier versions ("C" + the last key, "D") read with no counts. A source reconciled
// by digest (PartitionStreamer::Reconcile) records "P" + counts + the last acceptor record's
// key while its Paxos records come, then "Q" + counts while the keys that differ are pulled.
std::string ProgressKey(uint64_t transition, uint32_t partition, uint32_t keyspace,
                        uint32_t source) {
  return fmt::format("stream/{:020}/{:05}/{}/{}", transition, partition, keyspace, source);
}

struct RecordedProgress {
  bool done = false;
  char phase = 'R';   // 'R': the range's data in full; 'P', 'Q': reconciled (see above)
  std::string after;  // resume after this key
  StreamCounts counts;
};

std::string EncodeProgress(bool done, StreamCounts counts, std::string_view last,
                           char phase = 'R') {
  std::string out(1, done ? 'E' : phase);
  base::PutBig64(&out, counts.chunks);
  base::PutBig64(&out, counts.bytes);
  if (!done) out.append(last);
  return out;
}

Result<RecordedProgress> DecodeProgress(std::string_view v) {
  RecordedProgress p;
  if (v == "D") {
    p.done = true;
  } else if (!v.empty() && v[0] == 'C') {
    p.after = v.substr(1);
  } else if (v.size() >= 17 && (v[0] == 'R' || v[0] == 'E' || v[0] == 'P' || v[0] == 'Q')) {
    p.done = v[0] == 'E';
    p.phase = p.done ? 'R' : v[0];
    p.counts = {base::GetBig64(v.data() + 1), base::GetBig64(v.data() + 9)};
    p.after = v.substr(17);
  } else {
    return Status::Internal("a stream progress record is malformed");
  }
  return p;
}

// The replicas of (partition, keyspace) in `map`, every DC.
std::vector<uint32_t> ReplicasOf(const cluster::PartitionMap& map, uint32_t partition,
                                 const cluster::KeyspaceDef& ks) {
  return map.Replicas(partition, ks.replication);
}

bool Contains(const std::vector<uint32_t>& v, uint32_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

uint64_t StreamChecksum(const internode::StreamResponse& chunk) {
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  std::string bytes;
  for (const internode::Mutation& m : chunk.items()) {
    bytes.clear();
    m.SerializeToString(&bytes);
    XXH3_64bits_update(state, bytes.data(), bytes.size());
  }
  for (const internode::PaxosRecord& r : chunk.paxos()) {
    bytes.clear();
    r.SerializeToString(&bytes);
    XXH3_64bits_update(state, bytes.data(), bytes.size());
  }
  const uint64_t sum = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return sum;
}

namespace {

// The keys mode of ReadStreamChunk (repair): the records of exactly the keys asked for.
Result<internode::StreamResponse> ReadKeys(const storage::Engine& engine,
                                           const internode::StreamRequest& request) {
  if (request.keys_size() > 10'000) {
    return Status::InvalidArgument(
        fmt::format("a stream request names {} keys; at most 10000", request.keys_size()));
  }
  internode::StreamResponse out;
  for (const std::string& key : request.keys()) {
    const storage::DataKey data{request.partition(), request.keyspace(), key};
    auto stored = engine.Get(data);
    if (!stored.ok()) return stored.status();
    if (stored->has_value()) ToMutation(data, **stored, out.add_items());
    if (!request.with_paxos()) continue;
    auto state = PaxosAcceptor::StoredState(engine, data);
    if (!state.ok()) return state.status();
    if (state->has_value()) {
      internode::PaxosRecord* record = out.add_paxos();
      record->set_key(key);
      record->set_state(std::move(**state));
    }
  }
  out.set_done(true);
  out.set_checksum(StreamChecksum(out));
  return out;
}

}  // namespace

Result<internode::StreamResponse> ReadStreamChunk(const storage::Engine& engine,
                                                  const internode::StreamRequest& request) {
  if (request.keys_size() > 0) return ReadKeys(engine, request);
  const size_t max_bytes =
      std::clamp<size_t>(request.max_bytes(), size_t{4} << 10, size_t{16} << 20);
  if (request.paxos_only()) {
    auto paxos = engine.ReadRange(storage::Family::kPaxos, request.partition(), request.keyspace(),
                                  request.after(), std::nullopt, max_bytes);
    if (!paxos.ok()) return paxos.status();
    internode::StreamResponse out;
    for (storage::RangeRecord& r : paxos->records) {
      internode::PaxosRecord* record = out.add_paxos();
      record->set_key(std::move(r.key));
      record->set_state(std::move(r.value));
    }
    out.set_done(paxos->done);
    out.set_last_key(paxos->last_key);
    out.set_checksum(StreamChecksum(out));
    return out;
  }
  auto data = engine.ReadRange(storage::Family::kData, request.partition(), request.keyspace(),
                               request.after(), std::nullopt, max_bytes);
  if (!data.ok()) return data.status();
  internode::StreamResponse out;
  for (storage::RangeRecord& r : data->records) {
    auto value = storage::DecodeValue(r.value);
    if (!value.ok()) return value.status();
    ToMutation(storage::DataKey{request.partition(), request.keyspace(), std::move(r.key)}, *value,
               out.add_items());
  }
  out.set_done(data->done);
  out.set_last_key(data->last_key);
  if (request.with_paxos()) {
    // The acceptor records of the same keys: after `after`, up to the chunk's last key (to the
    // range's end with the last chunk).
    std::optional<std::string_view> up_to;
    if (!data->done) up_to = out.last_key();
    std::string after = request.after();
    while (true) {
      auto paxos = engine.ReadRange(storage::Family::kPaxos, request.partition(),
                                    request.keyspace(), after, up_to, max_bytes);
      if (!paxos.ok()) return paxos.status();
      for (storage::RangeRecord& r : paxos->records) {
        internode::PaxosRecord* record = out.add_paxos();
        record->set_key(std::move(r.key));
        record->set_state(std::move(r.value));
      }
      if (paxos->done || paxos->records.empty()) break;
      after = paxos->last_key;
    }
  }
  out.set_checksum(StreamChecksum(out));
  return out;
}

PartitionStreamer::PartitionStreamer(storage::Engine* engine, cluster::Gossiper* gossiper,
                                     cluster::InternodeClient* client, uint32_t self,
                                     StreamerOptions options, asio::any_io_executor executor,
                                     asio::any_io_executor blocking)
    : engine_(engine),
      gossiper_(gossiper),
      client_(client),
      self_(self),
      options_(options),
      executor_(executor),
      blocking_(std::move(blocking)),
      timer_(executor) {}

void PartitionStreamer::Wake() {
  asio::post(executor_, [this] { timer_.cancel(); });
}

void PartitionStreamer::Stop() {
  asio::post(executor_, [this] {
    stopping_ = true;
    timer_.cancel();
  });
}

StreamProgress PartitionStreamer::progress() const {
  std::lock_guard lock(mu_);
  return progress_;
}

void PartitionStreamer::Report(internode::NodeState* state) const {
  const StreamProgress p = progress();
  state->set_transition(p.transition);
  state->set_streams_planned(p.planned);
  state->set_streams_total(p.total);
  state->set_streams_done(p.done);
  state->set_stream_bytes(p.bytes);
  state->set_stream_chunks(p.chunks);
  state->set_stream_rate(p.rate);
  if (p.current) *state->mutable_streaming() = *p.current;
  state->set_cleaned_stage(p.cleaned);
}

asio::awaitable<void> PartitionStreamer::Run() {
  while (!stopping_) {
    if (auto topology = gossiper_->topology()) co_await Step(std::move(topology));
    if (stopping_) break;
    timer_.expires_after(options_.poll);
    co_await timer_.async_wait(kNoThrow);
  }
}

std::vector<PartitionStreamer::Task> PartitionStreamer::TasksOf(
    const cluster::Topology& topology) const {
  const internode::TopologyState& state = *topology.state;
  std::vector<Task> tasks;
  if (!topology.base || !topology.target) return tasks;
  const cluster::PartitionMap& base = *topology.base;
  const cluster::PartitionMap& target = *topology.target;
  std::set<uint32_t> dead;
  for (const auto& m : state.members()) {
    if (m.dead()) dead.insert(m.info().node_id());
  }
  for (const cluster::KeyspaceDef& ks : cluster::KeyspacesOf(state)) {
    if (ks.dropped) continue;
    for (uint32_t p = 0; p < base.partitions(); ++p) {
      const std::vector<uint32_t> old_set = ReplicasOf(base, p, ks);
      const std::vector<uint32_t> new_set = ReplicasOf(target, p, ks);
      if (!Contains(new_set, self_) || Contains(old_set, self_)) continue;
      Task task{p, ks.id, {}};
      // Live sources first, in preference order; dead ones are no sources at all.
      for (uint32_t node : old_set) {
        if (!dead.contains(node) && gossiper_->IsUp(node)) task.sources.push_back(node);
      }
      for (uint32_t node : old_set) {
        if (!dead.contains(node) && !gossiper_->IsUp(node)) task.sources.push_back(node);
      }
      // A quorum of the old replicas holds every write acknowledged at QUORUM.
      const size_t quorum = old_set.size() / 2 + 1;
      if (task.sources.size() > quorum) task.sources.resize(quorum);
      task.live =
          static_cast<uint32_t>(std::count_if(old_set.begin(), old_set.end(), [&](uint32_t node) {
            return !dead.contains(node) && gossiper_->IsUp(node);
          }));
      tasks.push_back(std::move(task));
    }
  }
  // The ranges with the fewest live replicas first: they are the closest to being lost.
  std::stable_sort(tasks.begin(), tasks.end(),
                   [](const Task& a, const Task& b) { return a.live < b.live; });
  return tasks;
}

asio::awaitable<void> PartitionStreamer::Step(std::shared_ptr<const cluster::Topology> topology) {
  const internode::TopologyState& state = *topology->state;
  if (!state.has_transition()) co_return;
  const internode::Transition& t = state.transition();
  // Nothing moves until a barrier has made every live member plan with this stage.
  if (state.fence() < t.stage_epoch()) co_return;
  {
    std::lock_guard lock(mu_);
    if (progress_.transition != t.id()) {
      progress_ = StreamProgress{t.id()};
      rate_start_.reset();
      rate_bytes_ = 0;
    }
  }
  if (t.stage() == internode::USE_NEW || t.stage() == internode::ROLLBACK) {
    if (progress().cleaned == t.stage()) co_return;
    Status cleaned = co_await Cleanup(*topology);
    if (cleaned.ok()) {
      std::lock_guard lock(mu_);
      progress_.cleaned = t.stage();
    } else {
      spdlog::error("cleanup after topology change {}: {}", t.id(), cleaned.ToString());
    }
    co_return;
  }
  if (t.stage() != internode::WRITE_BOTH_READ_OLD) co_return;
  const std::vector<Task> tasks = TasksOf(*topology);
  {
    std::lock_guard lock(mu_);
    progress_.total = static_cast<uint32_t>(tasks.size());
    progress_.planned = true;
    finished_ = StreamCounts{};
  }
  uint32_t done = 0;
  for (const Task& task : tasks) {
    if (stopping_) co_return;
    // Still the same change at the same stage? (It may have been cancelled meanwhile.)
    auto now = gossiper_->topology();
    if (!now || !now->state->has_transition() || now->state->transition().id() != t.id() ||
        now->state->transition().stage() != internode::WRITE_BOTH_READ_OLD) {
      co_return;
    }
    bool complete = !task.sources.empty();
    for (size_t i = 0; i < task.sources.size(); ++i) {
      // The range's data comes in full from the first source; every other one adds only what it
      // holds newer (a quorum's union, at the cost of one copy).
      const uint32_t source = task.sources[i];
      auto streamed = co_await TakeFrom(*topology, t.id(), task, source, /*whole=*/i == 0);
      std::lock_guard lock(mu_);
      progress_.current.reset();
      if (!streamed.ok()) {
        spdlog::warn("streaming partition {} of keyspace {} from node {}: {} (will retry)",
                     task.partition, task.keyspace, source, streamed.status().ToString());
        complete = false;
        continue;
      }
      finished_.chunks += streamed->chunks;
      finished_.bytes += streamed->bytes;
      progress_.chunks = finished_.chunks;
      progress_.bytes = finished_.bytes;
    }
    if (task.sources.empty()) {
      spdlog::error("partition {} of keyspace {} has no live replica to stream from",
                    task.partition, task.keyspace);
    }
    if (complete) ++done;
    std::lock_guard lock(mu_);
    progress_.done = done;
  }
  // Said once per change (Step runs every poll until the change moves on).
  if (done == tasks.size() && reported_done_ != t.id()) {
    reported_done_ = t.id();
    const StreamProgress p = progress();
    spdlog::info("topology change {}: streamed all {} ranges: {} chunks, {} bytes", t.id(),
                 tasks.size(), p.chunks, p.bytes);
  }
}

asio::awaitable<Result<StreamCounts>> PartitionStreamer::TakeFrom(const cluster::Topology& topology,
                                                                  uint64_t transition,
                                                                  const Task& task, uint32_t source,
                                                                  bool whole) {
  const std::string key = ProgressKey(transition, task.partition, task.keyspace, source);
  auto recorded = engine_->GetMeta(key);
  if (!recorded.ok()) co_return recorded.status();
  RecordedProgress start;
  start.phase = whole ? 'R' : 'P';
  if (recorded->has_value()) {
    auto decoded = DecodeProgress(**recorded);
    if (!decoded.ok()) co_return decoded.status();
    start = std::move(*decoded);
    if (start.done) co_return start.counts;
    // A source goes on the way it began (it may have been the first source then, or not): both
    // ways end with this node holding all the source held.
    spdlog::info(
        "topology change {}: resuming partition {} of keyspace {} from node {} after "
        "its last applied chunk ({} chunks, {} bytes applied before)",
        transition, task.partition, task.keyspace, source, start.counts.chunks, start.counts.bytes);
  }
  const cluster::Member* member = topology.Find(source);
  if (member == nullptr) co_return Status::Unavailable("the source is not a member");
  RangeStream stream{member->address, source, task, key, start.counts};
  ShowCurrent(task, source, stream.counts);
  if (start.phase == 'R') {
    Status s = co_await StreamChunks(stream, std::move(start.after), /*paxos_only=*/false);
    if (!s.ok()) co_return s;
    co_return stream.counts;
  }
  if (start.phase == 'P') {
    // Every acceptor record of the range: a proposal accepted by this source alone must not be
    // lost (the data's digest does not cover them).
    Status s = co_await StreamChunks(stream, std::move(start.after), /*paxos_only=*/true);
    if (!s.ok()) co_return s;
  }
  co_return co_await Reconcile(stream);
}

asio::awaitable<Status> PartitionStreamer::StreamChunks(RangeStream& stream, std::string after,
                                                        bool paxos_only) {
  const Task& task = stream.task;
  while (!stopping_) {
    internode::Request request;
    internode::StreamRequest* ask = request.mutable_stream();
    ask->set_partition(task.partition);
    ask->set_keyspace(task.keyspace);
    ask->set_after(after);
    ask->set_max_bytes(static_cast<uint32_t>(options_.chunk_bytes));
    ask->set_with_paxos(true);
    ask->set_paxos_only(paxos_only);
    auto chunk = co_await Fetch(stream.address, stream.source, request, ChunkDeadline());
    if (!chunk.ok()) co_return chunk.status();
    const bool done = chunk->done();
    std::string last = chunk->last_key();
    const size_t bytes = chunk->ByteSizeLong();
    const StreamCounts next{stream.counts.chunks + 1, stream.counts.bytes + bytes};
    // The whole range ends done; the acceptor records end where the reconciliation begins.
    std::string recorded = paxos_only
                               ? EncodeProgress(false, next, done ? "" : last, done ? 'Q' : 'P')
                               : EncodeProgress(done, next, last);
    storage::RawWrite progress{storage::Family::kMeta, stream.key, std::move(recorded)};
    if (Status s = co_await ApplyChunk(task.partition, task.keyspace, std::move(*chunk),
                                       std::move(progress));
        !s.ok()) {
      co_return s;
    }
    stream.counts = next;
    Account(bytes);
    ShowCurrent(task, stream.source, stream.counts);
    co_await Throttle(bytes);
    if (done) co_return Status::Ok();
    after = std::move(last);
  }
  co_return Status::Unavailable("stopping");
}

base::Deadline PartitionStreamer::ChunkDeadline() {
  return base::Clock::now() + std::chrono::seconds(10);
}

asio::awaitable<Result<internode::StreamResponse>> PartitionStreamer::Fetch(
    const std::string& address, uint32_t source, const internode::Request& request,
    base::Deadline deadline) {
  auto response = co_await client_->Call(address, request, deadline);
  if (!response.ok()) co_return response.status();
  internode::StreamResponse chunk = std::move(*response->mutable_stream());
  if (StreamChecksum(chunk) != chunk.checksum()) {
    co_return Status::Internal(fmt::format("a chunk from node {} failed its checksum", source));
  }
  co_return chunk;
}

void PartitionStreamer::ShowCurrent(const Task& task, uint32_t source, StreamCounts counts) {
  internode::StreamingRange current;
  current.set_partition(task.partition);
  current.set_keyspace(task.keyspace);
  current.set_source(source);
  current.set_chunks(counts.chunks);
  current.set_bytes(counts.bytes);
  std::lock_guard lock(mu_);
  progress_.current = std::move(current);
  progress_.chunks = finished_.chunks + counts.chunks;
  progress_.bytes = finished_.bytes + counts.bytes;
}

void PartitionStreamer::Account(size_t bytes) {
  bytes_total_.fetch_add(bytes, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  if (!rate_start_) rate_start_ = now;
  rate_bytes_ += bytes;
  const double seconds = std::chrono::duration<double>(now - *rate_start_).count();
  progress_.rate =
      seconds > 0.1 ? static_cast<uint64_t>(static_cast<double>(rate_bytes_) / seconds) : 0;
}

asio::awaitable<Result<StreamCounts>> PartitionStreamer::Reconcile(RangeStream& stream) {
  const Task& task = stream.task;
  const std::string& address = stream.address;
  const uint32_t source = stream.source;
  // The segments whose digests differ, their keys and versions on both sides, and
  // the records of the keys the source holds newer (or that are missing here). This node's
  // digest already has what the first source sent and the writes of the change's write-both
  // stage; a write in flight may make a segment differ for nothing, which costs a listing.
  internode::Request digest_request;
  digest_request.mutable_digest()->set_partition(task.partition);
  digest_request.mutable_digest()->set_keyspace(task.keyspace);
  auto theirs = co_await client_->Call(address, digest_request, ChunkDeadline());
  if (!theirs.ok()) co_return theirs.status();
  auto mine = engine_->RangeTree(task.partition, task.keyspace);
  if (!mine.ok()) co_return mine.status();
  const internode::DigestResponse& digest = theirs->digest();
  if (digest.segments_size() != static_cast<int>(storage::kDigestSegments)) {
    co_return Status::Internal(fmt::format("node {} answered a digest of {} segments, not {}",
                                           source, digest.segments_size(),
                                           storage::kDigestSegments));
  }
  internode::RangeKeysRequest list;
  list.set_partition(task.partition);
  list.set_keyspace(task.keyspace);
  list.set_max_keys(10'000);
  for (uint32_t i = 0; i < storage::kDigestSegments; ++i) {
    if (digest.segments(static_cast<int>(i)) != mine->segments[i]) list.add_segments(i);
  }
  std::vector<std::string> wanted;
  if (list.segments_size() > 0) {
    // Their keys of those segments, then ours, page by page.
    std::map<std::string, Version> newest;  // key -> the source's version
    while (true) {
      internode::Request request;
      *request.mutable_range_keys() = list;
      auto page = co_await client_->Call(address, request, ChunkDeadline());
      if (!page.ok()) co_return page.status();
      for (const internode::KeyVersion& kv : page->range_keys().items()) {
        newest[kv.key()] = Version{kv.version().hlc(), kv.version().node()};
      }
      if (page->range_keys().done() || page->range_keys().items_size() == 0) break;
      list.set_after(page->range_keys().last_key());
    }
    list.clear_after();
    while (!newest.empty()) {
      auto page = co_await base::AwaitCallback<Result<internode::RangeKeysResponse>>(
          [&](auto done) {
            asio::post(blocking_, [this, list, done] { done(ReadRangeKeys(*engine_, list)); });
          },
          Status::Timeout("listing this node's keys took too long", 0));
      if (!page.ok()) co_return page.status();
      for (const internode::KeyVersion& kv : page->items()) {
        auto it = newest.find(kv.key());
        if (it != newest.end() &&
            !(Version{kv.version().hlc(), kv.version().node()} < it->second)) {
          newest.erase(it);  // as new here
        }
      }
      if (page->done() || page->items_size() == 0) break;
      list.set_after(page->last_key());
    }
    wanted.reserve(newest.size());
    for (auto& [k, version] : newest) wanted.push_back(k);
  }
  // The records, each page's write with the progress.
  auto pulled = co_await PullPages(address, source, task.partition, task.keyspace,
                                   std::move(wanted), ChunkDeadline(), &stream);
  if (!pulled.ok()) co_return pulled.status();
  storage::RawWrite finished{storage::Family::kMeta, stream.key,
                             EncodeProgress(true, stream.counts, "")};
  if (Status s = co_await ApplyChunk(task.partition, task.keyspace, internode::StreamResponse{},
                                     std::move(finished));
      !s.ok()) {
    co_return s;
  }
  co_return stream.counts;
}

asio::awaitable<Status> PartitionStreamer::ApplyChunk(uint32_t partition, uint32_t keyspace,
                                                      internode::StreamResponse chunk,
                                                      std::optional<storage::RawWrite> progress) {
  storage::WriteRequest request;
  request.ops.reserve(chunk.items_size());
  for (internode::Mutation& m : *chunk.mutable_items())
    request.ops.push_back(FromMutation(std::move(m)));
  std::vector<internode::PaxosRecord> records(chunk.mutable_paxos()->begin(),
                                              chunk.mutable_paxos()->end());
  if (!records.empty()) {
    request.txn = PaxosAcceptor::Absorb(partition, keyspace, std::move(records));
  }
  // The progress goes in the same atomic write as the data: a chunk is applied exactly once.
  if (progress) request.raw.push_back(std::move(*progress));
  co_return co_await base::AwaitCallback<Status>(
      [&](auto done) {
        engine_->Write(std::move(request), [done](Status s, std::vector<storage::WriteOutcome>) {
          done(std::move(s));
        });
      },
      Status::Timeout("applying a streamed chunk took too long", 0));
}

asio::awaitable<Result<internode::RepairPullResponse>> PartitionStreamer::HandleRepairPull(
    internode::RepairPullRequest request, base::Deadline deadline) {
  if (request.keys_size() > 100'000) {
    co_return Status::InvalidArgument(
        fmt::format("a repair pull names {} keys; at most 100000", request.keys_size()));
  }
  std::vector<std::string> keys(std::make_move_iterator(request.mutable_keys()->begin()),
                                std::make_move_iterator(request.mutable_keys()->end()));
  auto pulled = co_await asio::co_spawn(
      executor_,
      PullKeys(request.source_address(), request.source(), request.partition(), request.keyspace(),
               std::move(keys), deadline),
      asio::use_awaitable);
  if (!pulled.ok()) co_return pulled.status();
  internode::RepairPullResponse out;
  out.set_records(pulled->records);
  out.set_bytes(pulled->bytes);
  co_return out;
}

asio::awaitable<Result<PartitionStreamer::Pulled>> PartitionStreamer::PullKeys(
    const std::string& source_address, uint32_t source, uint32_t partition, uint32_t keyspace,
    std::vector<std::string> keys, base::Deadline deadline) {
  co_return co_await PullPages(source_address, source, partition, keyspace, std::move(keys),
                               deadline, /*stream=*/nullptr);
}

asio::awaitable<Result<PartitionStreamer::Pulled>> PartitionStreamer::PullPages(
    const std::string& source_address, uint32_t source, uint32_t partition, uint32_t keyspace,
    std::vector<std::string> keys, base::Deadline deadline, RangeStream* stream) {
  Pulled pulled;
  // A page of keys per request keeps each answer within a frame and each write small.
  constexpr size_t kPage = 1000;
  for (size_t start = 0; start < keys.size(); start += kPage) {
    if (stopping_) co_return Status::Unavailable("stopping");
    internode::Request request;
    internode::StreamRequest* ask = request.mutable_stream();
    ask->set_partition(partition);
    ask->set_keyspace(keyspace);
    ask->set_with_paxos(true);
    for (size_t i = start; i < std::min(keys.size(), start + kPage); ++i) {
      ask->add_keys(std::move(keys[i]));
    }
    auto chunk = co_await Fetch(source_address, source, request,
                                stream != nullptr ? ChunkDeadline() : deadline);
    if (!chunk.ok()) co_return chunk.status();
    const size_t bytes = chunk->ByteSizeLong();
    pulled.records += static_cast<uint32_t>(chunk->items_size());
    pulled.bytes += bytes;
    std::optional<storage::RawWrite> progress;
    // Pages of keys are not counted as chunks: a source counts only the range chunks it serves.
    const StreamCounts next =
        stream != nullptr ? StreamCounts{stream->counts.chunks, stream->counts.bytes + bytes}
                          : StreamCounts{};
    if (stream != nullptr) {
      progress = storage::RawWrite{storage::Family::kMeta, stream->key,
                                   EncodeProgress(false, next, "", 'Q')};
    }
    if (Status s = co_await ApplyChunk(partition, keyspace, std::move(*chunk), std::move(progress));
        !s.ok()) {
      co_return s;
    }
    if (stream == nullptr) {
      repair_bytes_total_.fetch_add(bytes, std::memory_order_relaxed);
      continue;
    }
    stream->counts = next;
    Account(bytes);
    ShowCurrent(stream->task, source, next);
    co_await Throttle(bytes);
  }
  co_return pulled;
}

asio::awaitable<Status> PartitionStreamer::Cleanup(const cluster::Topology& topology) {
  const internode::TopologyState& state = *topology.state;
  if (!topology.base || !topology.target) co_return Status::Ok();  // no transition
  const cluster::PartitionMap& base = *topology.base;
  const cluster::PartitionMap& target = *topology.target;
  // The targets the change had before others merged into it: writes planned with them may have
  // left copies of ranges this node gains under none of the maps it ends with.
  std::vector<cluster::PartitionMap> earlier;
  std::vector<std::vector<cluster::Member>> earlier_members = cluster::EarlierTargetMembers(state);
  for (std::vector<cluster::Member>& members : earlier_members) {
    auto map = cluster::PartitionMap::Compute(std::move(members), state.partition_bits());
    if (!map.ok()) co_return map.status();
    earlier.push_back(std::move(*map));
  }
  // Going forward, the ranges the map it ends with does not give this node; rolling back,
  // those the old map does not.
  const bool forward = state.transition().stage() == internode::USE_NEW;
  storage::WriteRequest request;
  for (const cluster::KeyspaceDef& ks : cluster::KeyspacesOf(state)) {
    if (ks.dropped) continue;
    for (uint32_t p = 0; p < base.partitions(); ++p) {
      const bool in_old = Contains(ReplicasOf(base, p, ks), self_);
      const bool in_new = Contains(ReplicasOf(target, p, ks), self_);
      bool in_earlier = false;
      for (const cluster::PartitionMap& map : earlier) {
        in_earlier = in_earlier || Contains(ReplicasOf(map, p, ks), self_);
      }
      if (forward ? (!in_new && (in_old || in_earlier)) : (!in_old && (in_new || in_earlier))) {
        request.range_deletes.push_back({p, ks.id});
      }
    }
  }
  if (request.range_deletes.empty()) co_return Status::Ok();
  const size_t ranges = request.range_deletes.size();
  Status s = co_await base::AwaitCallback<Status>(
      [&](auto done) {
        engine_->Write(std::move(request), [done](Status st, std::vector<storage::WriteOutcome>) {
          done(std::move(st));
        });
      },
      Status::Timeout("deleting moved ranges took too long", 0));
  if (s.ok()) {
    spdlog::info("topology change {}: deleted {} range{} this node no longer holds",
                 state.transition().id(), ranges, ranges == 1 ? "" : "s");
  }
  co_return s;
}

asio::awaitable<void> PartitionStreamer::Throttle(size_t bytes) {
  if (options_.bytes_per_second == 0) co_return;
  const auto now = std::chrono::steady_clock::now();
  if (now - budget_start_ > std::chrono::seconds(1)) {
    budget_start_ = now;
    budget_bytes_ = 0;
  }
  budget_bytes_ += bytes;
  if (budget_bytes_ < options_.bytes_per_second) co_return;
  // Over this second's budget: wait for the rest of the second (on a timer of its own: Wake()
  // cancels timer_).
  asio::steady_timer wait(executor_, budget_start_ + std::chrono::seconds(1));
  co_await wait.async_wait(kNoThrow);
  budget_start_ = std::chrono::steady_clock::now();
  budget_bytes_ = 0;
}

}  // namespace cairn::replica
