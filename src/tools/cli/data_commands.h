// The data subcommands: put, get, del, cas, scan (docs/cli.md).
#pragma once

#include "tools/cli/context.h"

namespace cairn::tools::cli {

// Prints "OK (version V)", or {"version"}.
int Put(Context& context, const Args& args);
// Prints the value's bytes exactly as stored (a newline added only at a terminal), or the record
// as JSON; exit 1 when the key is absent.
int Get(Context& context, const Args& args);
// Prints "OK", or the tombstone's {"version"}.
int Del(Context& context, const Args& args);
// Prints whether the compare-and-swap applied and the current version; exit 1 when it did not.
int Cas(Context& context, const Args& args);
// Prints the number after the increment (an estimate for a split counter, marked so).
int Incr(Context& context, const Args& args);
// Prints key TAB value per line (bytes escaped), up to --limit keys; says on stderr how to go on.
int Scan(Context& context, const Args& args);

}  // namespace cairn::tools::cli
