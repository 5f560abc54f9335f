// Small helpers the cluster and fault tests share: per-call options at a consistency level, and
// an assertion on a cairn::Status that prints it when it is not OK.
#pragma once

#include <gtest/gtest.h>

#include "cairn/options.h"
#include "cairn/status.h"

namespace cairn::testing {

inline WriteOptions WriteAt(Consistency level) {
  WriteOptions w;
  w.consistency = level;
  return w;
}

inline ReadOptions ReadAt(Consistency level) {
  ReadOptions r;
  r.consistency = level;
  return r;
}

}  // namespace cairn::testing

// Asserts that a Status is OK and prints it when not.
#define ASSERT_OK(expr)                                               \
  do {                                                                \
    const ::cairn::Status status_ = (expr);                           \
    ASSERT_TRUE(status_.ok()) << #expr << ": " << status_.ToString(); \
  } while (0)
