// Writes the seed corpus of the frame fuzzer: valid streams of real requests, so the fuzzer
// starts from the protocol rather than from noise. Run by CMake at build time.
#include <fstream>
#include <string>

#include "net/frame.h"
#include "proto/native.pb.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::string dir = argv[1];
  int n = 0;
  auto write = [&](const std::string& stream) {
    std::ofstream out(dir + "/seed-" + std::to_string(n++), std::ios::binary);
    out << '\x07' << stream;  // first byte: chunking
  };
  cairn::wire::Request get;
  get.set_keyspace("default");
  get.set_consistency(cairn::wire::QUORUM);
  get.mutable_get()->set_key("user:42");
  cairn::wire::Request put;
  put.mutable_put()->set_key("k");
  put.mutable_put()->set_value(std::string(100, 'v'));
  put.mutable_put()->set_ttl_ms(1000);
  cairn::wire::Request cas;
  cas.mutable_cas()->set_key("k");
  cas.mutable_cas()->mutable_if_version()->set_hlc(12345);
  cas.mutable_cas()->set_new_value("x");
  cairn::wire::Request scan;
  scan.mutable_scan()->set_prefix("{user:1}:");
  scan.mutable_scan()->set_limit(10);
  cairn::wire::Request batch;
  for (int i = 0; i < 3; ++i)
    batch.mutable_batch_put()->add_items()->set_key("b" + std::to_string(i));
  cairn::wire::Request ks;
  ks.mutable_keyspace_create()->mutable_keyspace()->set_name("orders");
  std::string all;
  uint64_t id = 1;
  for (const auto* r : {&get, &put, &cas, &scan, &batch, &ks}) {
    std::string one;
    cairn::net::AppendFrame(&one, id++, r->SerializeAsString());
    write(one);
    all += one;
  }
  write(all);
  return 0;
}
