// Which reactor thread the caller runs on. Objects that keep one instance per reactor (such as
// internode connection pools) use it to pick theirs without locks.
#pragma once

#include <cstddef>

namespace cairn::base {

// Set once by each reactor thread when it starts; 0 on every other thread.
void SetReactorIndex(size_t index);
size_t ReactorIndex();

}  // namespace cairn::base
