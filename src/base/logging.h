// Process-wide logging set-up. Code logs through spdlog's default logger (spdlog::info(...)).
#pragma once

#include <string_view>

#include "cairn/status.h"

namespace cairn::base {

// Sets the default logger to stderr with timestamps and the given level: trace, debug, info,
// warn, error, critical or off. INVALID_ARGUMENT for any other name.
Status InitLogging(std::string_view level);

}  // namespace cairn::base
