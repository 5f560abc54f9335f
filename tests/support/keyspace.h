// Conditions on keyspaces for WaitUntil (tests/support/wait_until.h), shared by the cluster and
// fault tests: a keyspace definition reaches the other nodes by gossip, a moment after it is made.
#pragma once

#include <string>

#include <gtest/gtest.h>

#include "cairn/client.h"

namespace cairn::testing {

// Whether the server `client` asks knows keyspace `name` (with `linearizable`: knows it as a
// linearizable keyspace); if not, why not.
inline ::testing::AssertionResult KnowsKeyspace(Client& client, const std::string& name,
                                                bool linearizable = false) {
  auto d = client.DescribeKeyspace(name);
  if (!d.ok()) return ::testing::AssertionFailure() << d.status().ToString();
  if (linearizable && !d->linearizable) {
    return ::testing::AssertionFailure() << "keyspace " << name << " is not linearizable (yet)";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace cairn::testing
