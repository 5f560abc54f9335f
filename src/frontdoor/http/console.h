// The web console: the static page served at /ui (HTML, CSS and JavaScript compiled into the
// binary, so the node needs no files and the browser no network beyond this node), and the
// partition map it draws (/v1/cluster/partitions). Everything else the page shows it reads from
// the node's own API: /v1/cluster for the nodes and /metrics for request rates and latency.
// docs/operations.md ("The web console") is the user-facing description.
//
// Free of Beast: the HTTP front door routes requests here and turns the Reply into its response,
// so the console's requests pass the same checks as every other request of the door.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coordinator/coordinator.h"
#include "frontdoor/http/url.h"

namespace cairn::frontdoor::http::console {

// One file of the page, as compiled in by cmake/embed_assets.cmake.
struct Asset {
  std::string_view name;  // "index.html", "console.js", ...
  std::string_view bytes;
};
// Every file of the page (defined in the generated console_assets.cc).
std::span<const Asset> Assets();

struct Reply {
  unsigned status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // beyond Content-Type
  // Whether the request counts in cairn_requests_total (as op cluster_status): the partition map
  // does, like /v1/cluster; the page's static files do not, like /metrics.
  bool counted = false;
};

// Answers GET and HEAD of /ui, /ui/ (the page), /ui/<file> and /v1/cluster/partitions; other
// methods get 405 with Allow. nullopt for every other path: not the console's.
std::optional<Reply> Route(std::string_view method, std::string_view path, const Query& query,
                           const coordinator::Coordinator& coordinator);

// The JSON of /v1/cluster/partitions: for each data centre, each partition's replicas in
// preference order (the first is its primary owner), for the largest replication factor of any
// keyspace there; and the members. {"formed": false, "note": ...} before the cluster has formed.
std::string PartitionMapJson(const coordinator::Coordinator& coordinator);

}  // namespace cairn::frontdoor::http::console
