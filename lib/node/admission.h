// Admission to the node port, before a peer has said anything: how many
// handshakes may be pending in all and per source address, and how fast one
// address may open new ones (a token bucket). Pure bookkeeping with an
// injected clock, so a test can drive each bound to its edge.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace jsd {

struct AdmissionLimits {
  size_t max_pending = 512;             // handshakes pending on the node port
  size_t max_pending_per_address = 32;  // ... from one source address
  double per_address_per_second = 50;   // new connections from one address (bursts of twice that)
};

class Admission {
 public:
  // clock: milliseconds, monotonic.
  Admission(AdmissionLimits limits, std::function<uint64_t()> clock);
  // nullptr: admitted, and pending until done(host); else why not.
  const char* admit(const std::string& host);
  void done(const std::string& host);
  size_t pending() const { return pending_; }
  const AdmissionLimits& limits() const { return limits_; }
  // New limits (a reload) apply from the next admit().
  void set_limits(const AdmissionLimits& l) { limits_ = l; }

 private:
  struct Bucket {
    double tokens = 0;
    uint64_t last_ms = 0;
    bool used = false;
  };
  AdmissionLimits limits_;
  std::function<uint64_t()> clock_;
  std::map<std::string, Bucket> rate_;
  std::map<std::string, size_t> pending_by_host_;
  size_t pending_ = 0;
};

}  // namespace jsd
