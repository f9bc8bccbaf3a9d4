#include "ping.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "control.h"
#include "event.h"
#include "exit_codes.h"
#include "json_read.h"
#include "uvx.h"

namespace jsd {
namespace {

using nlohmann::json;

// Milliseconds to the microsecond, what the clock can honestly tell: 3.496,
// not 3.4962060000000004 (the JSON shows the shortest form of the double).
double to_us(double ms) { return std::round(ms * 1000) / 1000; }

class Pinger {
 public:
  Pinger(uv_loop_t* loop, const PingOptions& o)
      : loop_(loop),
        o_(o),
        tick_(loop),
        wait_(loop),
        sig_int_(loop, SIGINT, [this] { finish(); }),
        sig_term_(loop, SIGTERM, [this] { finish(); }) {}

  int run() {
    std::string err;
    Target t;
    if (!resolve_target(o_.cfg, o_.node, t, err)) return fail(err);
    s_ = open_control_stream(loop_, o_.cfg, err);
    if (!s_) return fail(err);
    s_->on_frame = [this](std::string_view p) { on_msg(p); };
    s_->on_close = [this](const std::string&) {
      s_ = nullptr;
      if (!done_) fail("the local jsd-listener closed the connection");
    };
    s_->start();
    start_ = uv_hrtime();
    if (!o_.json && !o_.quiet)
      printf("JSD-PING %s (%s) object %s\n", o_.node.c_str(),
             t.via.empty() ? t.addr.str().c_str() : ("via " + t.via).c_str(), o_.object.c_str());
    probe();
    send_one();
    if (o_.count != 1 && o_.interval_s > 0)
      tick_.start(
          uint64_t(o_.interval_s * 1000), [this] { send_one(); }, uint64_t(std::max(1.0, o_.interval_s * 1000)));
    uv_run(loop_, UV_RUN_DEFAULT);
    return code_;
  }

 private:
  int fail(const std::string& why) {
    if (!failed_) fprintf(stderr, "jsd-ping: error: %s\n", why.c_str());
    failed_ = true;
    code_ = kExitJsdFailure;
    shutdown();
    return kExitJsdFailure;
  }

  void send_one() {
    if (done_ || !s_) return;
    if (o_.count > 0 && sent_ >= uint64_t(o_.count)) return;
    uint64_t seq = ++sent_;
    ControlMsg m;
    m.type = ControlType::send;
    m.ev.kind = Kind::call;
    m.ev.id = seq;
    m.ev.to = o_.node;
    m.ev.object = o_.object;
    m.ev.body = json{{"seq", seq}}.dump();
    if (o_.size > m.ev.body.size()) {
      std::string base = json{{"seq", seq}, {"data", ""}}.dump();
      std::string pad;
      pad.resize(o_.size - std::min(o_.size, base.size()), 'x');
      m.ev.body = json{{"seq", seq}, {"data", pad}}.dump();
    }
    sent_at_[seq] = uv_hrtime();
    s_->send(encode_control(m));
    if (!probe_at_ && uv_hrtime() - probe_answered_ >= kProbeEveryNs) probe();
    if (o_.count > 0 && sent_ >= uint64_t(o_.count)) {
      tick_.stop();
      arm_wait();
    } else if (o_.interval_s == 0) {
      // Adaptive mode: the reply sends the next call; a lost one ends it.
      wait_.start(uint64_t(o_.timeout_s * 1000), [this] { finish(); });
    }
  }

  // A status request now and then, so that at the end an unanswered call
  // can be told from a local listener that does not answer at all (hung or
  // stopped: the kernel still takes our connection and our bytes).
  void probe() {
    if (!s_) return;
    ControlMsg m;
    m.type = ControlType::status;
    probe_at_ = uv_hrtime();
    s_->send(encode_control(m));
  }

  // After the last call: wait for what is outstanding, at most -W.
  void arm_wait() {
    if (sent_at_.empty()) return finish();
    wait_.start(uint64_t(o_.timeout_s * 1000), [this] { finish(); });
  }

  void on_msg(std::string_view p) {
    ControlMsg m;
    std::string err;
    if (!decode_control(p, m, err)) return (void)fail("malformed answer from the listener: " + err);
    std::string text;
    switch (read_control_notice(m, o_.node, text)) {
      case ControlNotice::fatal:
        return (void)fail(text);
      case ControlNotice::note:
        if (!o_.json && !o_.quiet && text != last_note_)  // once per state, not per retry
          fprintf(stderr, "jsd-ping: %s: link %s (calls wait in the queue)\n", o_.node.c_str(), text.c_str());
        last_note_ = text;
        return;
      case ControlNotice::none:
        break;
    }
    if (m.type == ControlType::status_reply) {
      probe_at_ = 0;
      probe_answered_ = uv_hrtime();
      return;
    }
    if (m.type != ControlType::reply) return;
    auto it = sent_at_.find(m.ev.id);
    if (it == sent_at_.end()) return;
    double ms = double(uv_hrtime() - it->second) / 1e6;
    sent_at_.erase(it);
    // Only an error reply needs parsing; an echo of a large body does not.
    if (m.ev.body.find("\"error\"") != std::string::npos) {
      json body;
      parse_json(m.ev.body, body);
      if (body.is_object() && body.contains("error") && body["error"].is_string())
        return (void)fail(body["error"].get<std::string>());
    }
    rtts_.push_back({m.ev.id, ms});
    if (!o_.json && !o_.quiet)
      printf("reply from %s: seq=%llu time=%.3f ms\n", m.ev.from.c_str(), static_cast<unsigned long long>(m.ev.id), ms);
    fflush(stdout);
    if (o_.count > 0 && sent_ >= uint64_t(o_.count) && sent_at_.empty()) return finish();
    if (o_.interval_s == 0 && sent_at_.empty()) send_one();
  }

  void finish() {
    if (done_) return;
    // Calls unanswered, and our own listener has not answered its status
    // request for a second (or all of -W): the failure is here, not there.
    uint64_t wait_ns = uint64_t(o_.timeout_s * 1e9);
    if (!sent_at_.empty() && probe_at_ && uv_hrtime() - probe_at_ >= std::min(kProbeEveryNs, wait_ns))
      return (void)fail("the local jsd-listener did not answer for " +
                        std::to_string((uv_hrtime() - probe_at_) / 1000000) + " ms");
    done_ = true;
    double total_ms = double(uv_hrtime() - start_) / 1e6;
    double mn = 0, mx = 0, sum = 0, sq = 0;
    for (size_t i = 0; i < rtts_.size(); ++i) {
      double r = rtts_[i].second;
      mn = i ? std::min(mn, r) : r;
      mx = i ? std::max(mx, r) : r;
      sum += r;
      sq += r * r;
    }
    size_t n = rtts_.size();
    double avg = n ? sum / double(n) : 0, mdev = n ? std::sqrt(std::max(0.0, sq / double(n) - avg * avg)) : 0;
    double lost = sent_ ? 100.0 * double(sent_ - n) / double(sent_) : 0;
    if (!failed_) {
      if (o_.json) {
        json replies = json::array();
        for (auto& [seq, r] : rtts_) replies.push_back({{"seq", seq}, {"rtt_ms", to_us(r)}});
        json j = {{"node", o_.node},
                  {"object", o_.object},
                  {"sent", sent_},
                  {"received", n},
                  {"lost_pct", std::round(lost * 1000) / 1000},
                  {"time_ms", to_us(total_ms)},
                  {"replies", replies}};
        if (n) j["rtt_ms"] = {{"min", to_us(mn)}, {"avg", to_us(avg)}, {"max", to_us(mx)}, {"mdev", to_us(mdev)}};
        std::cout << j.dump() << std::endl;
      } else {
        printf("%s--- %s jsd-ping statistics ---\n", o_.quiet ? "" : "\n", o_.node.c_str());
        printf("%llu calls sent, %zu replies received, %.0f%% lost, time %.0f ms\n",
               static_cast<unsigned long long>(sent_), n, lost, total_ms);
        if (n) printf("rtt min/avg/max/mdev = %.3f/%.3f/%.3f/%.3f ms\n", mn, avg, mx, mdev);
      }
      code_ = n ? kExitOk : kExitNoReply;
    }
    shutdown();
  }

  void shutdown() {
    done_ = true;
    tick_.stop();
    wait_.stop();
    if (s_) s_->discard();
    s_ = nullptr;
    sig_int_.reset();
    sig_term_.reset();
  }

  uv_loop_t* loop_;
  const PingOptions& o_;
  Stream* s_ = nullptr;
  Timer tick_, wait_;
  struct SigBox {
    std::unique_ptr<Signal> p;
    SigBox(uv_loop_t* l, int s, std::function<void()> f) : p(std::make_unique<Signal>(l, s, std::move(f))) {}
    void reset() { p.reset(); }
  } sig_int_, sig_term_;
  uint64_t sent_ = 0, start_ = 0;
  static constexpr uint64_t kProbeEveryNs = 1000000000;
  uint64_t probe_at_ = 0, probe_answered_ = 0;  // uv_hrtime(); probe_at_ 0: none outstanding
  std::map<uint64_t, uint64_t> sent_at_;
  std::vector<std::pair<uint64_t, double>> rtts_;
  bool done_ = false, failed_ = false;
  std::string last_note_;
  int code_ = kExitNoReply;
};

}  // namespace

int run_ping(const PingOptions& o) {
  return with_loop([&](uv_loop_t* loop) { return Pinger(loop, o).run(); }, kExitJsdFailure);
}

}  // namespace jsd
