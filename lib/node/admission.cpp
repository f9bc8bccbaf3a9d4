#include "admission.h"

#include <algorithm>

namespace jsd {

Admission::Admission(AdmissionLimits limits, std::function<uint64_t()> clock)
    : limits_(limits), clock_(std::move(clock)) {}

const char* Admission::admit(const std::string& host) {
  uint64_t now = clock_();
  auto& b = rate_[host];
  double cap = 2.0 * limits_.per_address_per_second;
  b.tokens = b.used ? std::min(cap, b.tokens + double(now - b.last_ms) * limits_.per_address_per_second / 1000.0) : cap;
  b.last_ms = now;
  b.used = true;
  const char* why = nullptr;
  if (pending_ >= limits_.max_pending)
    why = "too many handshakes pending";
  else if (pending_by_host_[host] >= limits_.max_pending_per_address)
    why = "too many handshakes pending from one address";
  else if (b.tokens < 1.0)
    why = "too many new connections from one address";
  else
    b.tokens -= 1.0;
  if (pending_by_host_[host] == 0 && why) pending_by_host_.erase(host);
  // Bounded, not precise: a flood from many addresses forgets them all.
  if (rate_.size() > 4096) rate_.clear();
  if (why) return why;
  ++pending_by_host_[host];
  ++pending_;
  return nullptr;
}

void Admission::done(const std::string& host) {
  auto p = pending_by_host_.find(host);
  if (p == pending_by_host_.end()) return;
  if (--p->second == 0) pending_by_host_.erase(p);
  --pending_;
}

}  // namespace jsd
