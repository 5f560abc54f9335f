// Small helpers the cluster and fault tests share: per-call options at a consistency level, and
// assertions on a cairn::Status that print it when it is not OK.
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

// Asserts (ASSERT_OK: fatally) that a Status is OK and prints it when not. EXPECT_OK may be used
// in a coroutine, where ASSERT_OK's `return` is not allowed.
#define ASSERT_OK(expr)                                               \
  do {                                                                \
    const ::cairn::Status status_ = (expr);                           \
    ASSERT_TRUE(status_.ok()) << #expr << ": " << status_.ToString(); \
  } while (0)
#define EXPECT_OK(expr)                                               \
  do {                                                                \
    const ::cairn::Status status_ = (expr);                           \
    EXPECT_TRUE(status_.ok()) << #expr << ": " << status_.ToString(); \
  } while (0)
