// How many of a node's links form at once (issue 20, B12): a window, as in
// TCP's congestion control, but driven by how long a link takes to form.
#pragma once

#include <algorithm>
#include <cstdint>

namespace jsd {

// A node on its own machine forms its links fast: each that comes up
// quickly widens the window by one, up to kMax. Links that take long to
// form (a handshake of seconds: the machine, or the peers', cannot keep
// up) halve it, down to one, so that nodes sharing an overloaded machine
// (64 nodes on 2 CPUs in B12) start fewer link processes instead of more:
// with a fixed width of 8 they kept 512 handshakes in flight, timed out,
// retried and reached a load average of 700. An attempt that fails fast
// (a peer that is down: connection refused) says nothing about load and
// leaves the width as it is.
class FormingWindow {
 public:
  static constexpr int kStart = 4;
  static constexpr int kMax = 16;
  static constexpr uint64_t kQuickMs = 1000;  // up within this: widen
  static constexpr uint64_t kSlowMs = 3000;   // still forming after this: narrow

  int width() const { return width_; }
  // A link's first attempt ended after took_ms: up (ok) or not.
  void ended(bool ok, uint64_t took_ms) {
    if (took_ms >= kSlowMs)
      width_ = std::max(1, width_ / 2);
    else if (ok && took_ms <= kQuickMs)
      width_ = std::min(kMax, width_ + 1);
  }

 private:
  int width_ = kStart;
};

}  // namespace jsd
