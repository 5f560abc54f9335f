#include "base/reactor.h"

namespace cairn::base {
namespace {
thread_local size_t reactor_index = 0;
}  // namespace

void SetReactorIndex(size_t index) { reactor_index = index; }
size_t ReactorIndex() { return reactor_index; }

}  // namespace cairn::base
