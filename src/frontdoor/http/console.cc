#include "frontdoor/http/console.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace cairn::frontdoor::http::console {

namespace {

using Json = nlohmann::json;

std::string_view ContentTypeOf(std::string_view name) {
  if (name.ends_with(".html")) return "text/html; charset=utf-8";
  if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (name.ends_with(".css")) return "text/css; charset=utf-8";
  if (name.ends_with(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

Reply JsonReply(unsigned status, const Json& j) {
  Reply r;
  r.status = status;
  r.content_type = "application/json";
  r.body = j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  return r;
}

Reply Error(unsigned status, std::string_view code, std::string message) {
  return JsonReply(status, Json{{"error", {{"code", code}, {"message", std::move(message)}}}});
}

// The page's files: nothing from elsewhere may load, run or frame it (no CDN, no injected
// script), and browsers must not guess other types for them.
Reply AssetReply(const Asset& asset) {
  Reply r;
  r.content_type = std::string(ContentTypeOf(asset.name));
  r.body = std::string(asset.bytes);
  r.headers = {{"Content-Security-Policy",
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"},
               {"X-Content-Type-Options", "nosniff"},
               {"Referrer-Policy", "no-referrer"},
               // Small files, compiled into this very binary: always revalidate, so an upgraded
               // node never serves an old page from the browser's cache.
               {"Cache-Control", "no-cache"}};
  return r;
}

}  // namespace

std::optional<Reply> Route(std::string_view method, std::string_view path, const Query& query,
                           const coordinator::Coordinator& coordinator) {
  const bool partitions = path == "/v1/cluster/partitions";
  if (!partitions && path != "/ui" && !path.starts_with("/ui/")) return std::nullopt;
  if (method != "GET" && method != "HEAD") {
    Reply r = Error(405, "METHOD_NOT_ALLOWED",
                    fmt::format("{} is not allowed on {}; allowed: GET, HEAD", method, path));
    r.headers.emplace_back("Allow", "GET, HEAD");
    r.counted = partitions;
    return r;
  }
  if (partitions) {
    Reply r;
    if (Status s = query.OnlyThese({}); !s.ok()) {
      r = Error(400, "INVALID_ARGUMENT", s.message());
    } else {
      r = Reply{
          .status = 200, .content_type = "application/json", .body = PartitionMapJson(coordinator)};
    }
    r.counted = true;
    return r;
  }
  // The page reads its own query (?refresh_ms=), so any query is accepted here.
  std::string_view name = path.substr(std::min(path.size(), std::string_view("/ui/").size()));
  if (name.empty()) name = "index.html";
  for (const Asset& asset : Assets()) {
    if (asset.name == name) return AssetReply(asset);
  }
  return Error(404, "NOT_FOUND", fmt::format("no such file in the console: {}", path));
}

std::string PartitionMapJson(const coordinator::Coordinator& coordinator) {
  const coordinator::PartitionLayout layout = coordinator.Partitions();
  if (!layout.formed) {
    return Json{{"formed", false}, {"partitions", layout.partitions}, {"note", layout.note}}
               .dump() +
           "\n";
  }
  Json members = Json::array();
  for (const auto& m : layout.members) {
    members.push_back(
        {{"node_id", m.node_id}, {"address", m.address}, {"dc", m.dc}, {"rack", m.rack}});
  }
  Json dcs = Json::array();
  for (const auto& dc : layout.dcs) {
    Json moving = Json::array();
    for (const auto& [partition, to] : dc.moving) {
      moving.push_back({{"partition", partition}, {"to", to}});
    }
    dcs.push_back({{"name", dc.name},
                   {"replication", dc.replication},
                   {"replicas", dc.replicas},
                   {"moving", std::move(moving)}});
  }
  Json out = {{"formed", true},
              {"epoch", layout.epoch},
              {"partitions", layout.partitions},
              {"members", std::move(members)},
              {"dcs", std::move(dcs)}};
  if (!layout.change.empty()) {
    out["change"] = {{"description", layout.change}, {"stage", layout.stage}};
  }
  return out.dump() + "\n";
}

}  // namespace cairn::frontdoor::http::console
