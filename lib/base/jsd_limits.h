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

// How deep arrays and objects may nest in any JSON a process reads from
// outside (messages, records, certificates, config). jsd's own documents
// nest a few levels; nlohmann's dump(), copies and comparisons recurse once
// per level, so a deeper document could overflow the stack of whatever
// touches it. parse_json (json_read.h) refuses it before it is built.
constexpr int kMaxJsonDepth = 32;
// Gateways a relayed request may pass (a via chain, and the hops a
// request has taken): deeper trees are a configuration mistake or a loop.
constexpr size_t kMaxRelayHops = 8;

// Fields of a job request, bounded before anything is stored, logged or
// run: what execve(2) on Linux takes per argument (MAX_ARG_STRLEN) for each
// argv element and parameter value, and counts far above any real command.
constexpr size_t kMaxArgBytes = size_t(128) << 10;  // 128 KiB
constexpr size_t kMaxArgs = 4096;
constexpr size_t kMaxParams = 256;

}  // namespace jsd
