#include "tools/cli/node_commands.h"

#include <chrono>
#include <iostream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/cli/cluster_commands.h"
#include "tools/progress.h"

namespace cairn::tools::cli {
namespace {

using Op = AsyncClient::NodeOperation;

constexpr auto kPoll = std::chrono::milliseconds(500);

// Follows the change in progress until none is left: each stage on its own line (stderr), the
// streaming as a progress line, the cluster's status at the end (stdout).
int Follow(Context& context, const Args& args, Client& client) {
  const auto start = std::chrono::steady_clock::now();
  std::string shown;
  std::unique_ptr<ProgressLine> line;
  uint64_t streams_total = 0;
  while (true) {
    auto status = client.ClusterStatus();
    if (!status.ok()) return Fail(status.status());
    if (status->change.empty()) {
      if (line) line->Finish();
      if (!context.json()) {
        std::cout << fmt::format("no change in progress (topology epoch {})\n\n",
                                 status->topology_epoch);
      }
      return context.Reply(ClusterJson(*status), ClusterText(*status));
    }
    if (status->change != shown) {
      if (line) line->Clear();
      Note(fmt::format("topology epoch {}: {}", status->topology_epoch, status->change));
      shown = status->change;
    }
    uint64_t total = 0, done = 0, bytes = 0;
    for (const NodeInfo& n : status->nodes) {
      total += n.streams_total;
      done += n.streams_done;
      bytes += n.stream_bytes;
    }
    if (total > 0 && total != streams_total) {
      if (line) line->Finish();
      ProgressLine::Options o;
      o.label = "streaming";
      o.unit = "ranges";
      o.total = total;
      line = std::make_unique<ProgressLine>(o);
      streams_total = total;
    }
    if (line) line->Set(done, bytes);
    if (args.node.wait_seconds > 0 &&
        std::chrono::steady_clock::now() - start > std::chrono::seconds(args.node.wait_seconds)) {
      if (line) line->Clear();
      return Fail(Status::Timeout(
          fmt::format("the change is still running after {} s (it goes on: cairn node ops --wait "
                      "follows it)",
                      args.node.wait_seconds),
          0));
    }
    std::this_thread::sleep_for(kPoll);
  }
}

int Start(Context& context, const Args& args, Op op) {
  // A join or a replacement is the new node's to ask for: it is told to, at its own address.
  Client& client = op == Op::kJoin || op == Op::kReplace ? context.client_of(args.node.address)
                                                         : context.client();
  auto r = client.ChangeNode(op, args.node.node_id);
  if (!r.ok()) return Fail(r.status());
  if (args.node.wait) return Follow(context, args, client);
  return context.Reply(
      Json{{"topology_epoch", r->topology_epoch}, {"change", r->change}},
      fmt::format("topology epoch {}: {}\nit runs on by itself; follow it with: cairn node ops "
                  "--wait\n",
                  r->topology_epoch, r->change.empty() ? "no change in progress" : r->change));
}

}  // namespace

int NodeDecommission(Context& context, const Args& args) {
  return Start(context, args, Op::kDecommission);
}
int NodeRemove(Context& context, const Args& args) { return Start(context, args, Op::kRemove); }
int NodeCancel(Context& context, const Args& args) { return Start(context, args, Op::kCancel); }
int NodeJoin(Context& context, const Args& args) { return Start(context, args, Op::kJoin); }
int NodeReplace(Context& context, const Args& args) { return Start(context, args, Op::kReplace); }

int NodeOps(Context& context, const Args& args) {
  if (args.node.wait) return Follow(context, args, context.client());
  auto status = context.client().ClusterStatus();
  if (!status.ok()) return Fail(status.status());
  Json nodes = Json::array();
  std::string text = fmt::format("topology epoch {}: {}\n", status->topology_epoch,
                                 status->change.empty() ? "no change in progress" : status->change);
  for (const NodeInfo& n : status->nodes) {
    if (n.streams_total == 0) continue;
    std::string now;
    if (const auto& r = n.streaming) {
      now = fmt::format("\n    now: partition {} of keyspace {} from node {}, {} chunks, {}",
                        r->partition, r->keyspace, r->source, r->chunks,
                        ProgressLine::FormatBytes(static_cast<double>(r->bytes)));
    }
    nodes.push_back(NodeJson(n));
    text += fmt::format("  node {} ({}): {}/{} ranges streamed, {} chunks, {} at {}/s{}\n",
                        n.node_id, n.address, n.streams_done, n.streams_total, n.stream_chunks,
                        ProgressLine::FormatBytes(static_cast<double>(n.stream_bytes)),
                        ProgressLine::FormatBytes(static_cast<double>(n.stream_rate)), now);
  }
  return context.Reply(Json{{"topology_epoch", status->topology_epoch},
                            {"change", status->change},
                            {"streaming", nodes}},
                       text);
}

}  // namespace cairn::tools::cli
