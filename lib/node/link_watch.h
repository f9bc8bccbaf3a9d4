// When a listener looks at its link processes (LinkClients::watch,
// LinkServers::watch) for one that has gone silent (stopped, hung).
//
// Issue 20 (B13): both watches ran every heartbeat_ms over every child,
// whatever the links did: a hub with 1,000 idle peers woke twice a second
// to walk 2,000 entries and find nothing. Now a child is judged by how long
// ago it was last heard from (not by ticks counted), each watch ticks every
// heartbeat_ms only while a child may be due that soon (a busy link, one
// forming or not up) and every idle period otherwise, and both watches tick
// on one grid of the loop's clock, so that their ticks share a wake-up.
// Where the kernel watches idle links (link/keepalive.h: the default
// times), an idle link's processes say nothing and are not judged at all
// (LinkClients::watch, LinkServers::watch); idle_limit is for sub-second
// settings, where they still report at each probe.
#pragma once

#include <algorithm>
#include <cstdint>

#include "config.h"

namespace jsd {

struct WatchTimes {
  uint64_t fine;        // tick while something may be due soon: heartbeat_ms
  uint64_t coarse;      // tick while every link is idle: a multiple of fine
  uint64_t busy_limit;  // silence that gets a busy (or not up) link's process killed
  uint64_t idle_limit;  // the same for an idle link's: it wakes once per idle_heartbeat_ms
};

inline WatchTimes watch_times(const Config& cfg) {
  WatchTimes t;
  t.fine = uint64_t(std::max(1, cfg.heartbeat_ms));
  // A multiple of fine, so that a coarse tick falls on a fine one's instant
  // (the other watch may tick fine meanwhile: still one wake-up).
  t.coarse = std::max<uint64_t>(1, uint64_t(cfg.idle_heartbeat_ms) / t.fine) * t.fine;
  // Twice what the link itself allows: the far end's heartbeat finds a hung
  // link process first (the usual path, and the one its log names); the
  // watch is the backstop for what that cannot see.
  t.busy_limit = std::max<uint64_t>(2 * t.fine, 2 * uint64_t(cfg.dead_after_ms));
  t.idle_limit = std::max<uint64_t>(t.busy_limit, 2 * (uint64_t(cfg.idle_heartbeat_ms) + uint64_t(cfg.dead_after_ms)));
  return t;
}

// Milliseconds from now (the loop's clock) to the next multiple of period:
// two watches of one loop with periods that divide each other tick at the
// same instants.
inline uint64_t watch_delay(uint64_t now, uint64_t period) {
  period = std::max<uint64_t>(1, period);
  return period - now % period;
}

// Heard from last at heard (ms): silent for longer than limit at now.
inline bool silent_too_long(uint64_t now, uint64_t heard, uint64_t limit) { return now > heard + limit; }

}  // namespace jsd
