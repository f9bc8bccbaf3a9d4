// Limits shared by more than one part of jsd, defined once. (Not named
// limits.h: lib/base is on the include path, and <climits> includes the
// system's <limits.h>.)
#pragma once

#include <cstddef>

namespace jsd {

// Output waiting for a slow reader (a job's submitter, a local tool): above
// the high water mark the producer is paused until the backlog is below the
// low water mark, so a node's memory does not grow with a slow link.
constexpr size_t kOutputHighWater = size_t(8) << 20;  // 8 MiB
constexpr size_t kOutputLowWater = size_t(2) << 20;   // 2 MiB

}  // namespace jsd
