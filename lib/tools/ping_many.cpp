#include "ping_many.h"

#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "control.h"
#include "exit_codes.h"
#include "json_read.h"
#include "targets.h"
#include "uvx.h"

namespace jsd {
namespace {

using nlohmann::json;

struct NodePing {
  std::string node, error, error_kind, last_note;
  uint64_t sent = 0;
  std::map<uint64_t, uint64_t> sent_at;  // seq -> hrtime
  std::vector<std::pair<uint64_t, double>> rtts;
};

class ManyPinger {
 public:
  ManyPinger(uv_loop_t* loop, const PingOptions& o, const std::vector<TargetEntry>& targets)
      : loop_(loop), o_(o), tick_(loop), wait_(loop) {
    for (auto& t : targets) {
      nodes_.push_back({});
      nodes_.back().node = t.key;
      if (!t.error.empty()) {
        nodes_.back().error = t.error;
        nodes_.back().error_kind = "unknown_node";
      }
    }
  }

  int run() {
    std::string err;
    s_ = open_control_stream(loop_, o_.cfg, err);
    if (!s_) {
      fprintf(stderr, "jsd-ping: error: %s\n", err.c_str());
      return kExitJsdFailure;
    }
    s_->on_frame = [this](std::string_view p) { on_msg(p); };
    s_->on_close = [this](const std::string&) {
      s_ = nullptr;
      if (!done_) {
        fprintf(stderr, "jsd-ping: error: the local jsd-listener closed the connection\n");
        lost_ = true;
        finish();
      }
    };
    s_->start();
    sig_int_ = std::make_unique<Signal>(loop_, SIGINT, [this] { finish(); });
    sig_term_ = std::make_unique<Signal>(loop_, SIGTERM, [this] { finish(); });
    start_ = uv_hrtime();
    for (auto& n : nodes_)
      if (!n.error.empty() && !o_.json) fprintf(stderr, "jsd-ping: %s: error: %s\n", n.node.c_str(), n.error.c_str());
    if (!o_.json && !o_.quiet) printf("JSD-PING %zu nodes object %s\n", nodes_.size(), o_.object.c_str());
    round();
    if (!done_ && o_.count != 1 && o_.interval_s > 0)
      tick_.start(
          uint64_t(o_.interval_s * 1000), [this] { round(); }, uint64_t(std::max(1.0, o_.interval_s * 1000)));
    uv_run(loop_, UV_RUN_DEFAULT);
    return code_;
  }

 private:
  // Ids: the node's index above, its sequence number below.
  static constexpr int kSeqBits = 32;

  bool all_sent() const { return o_.count > 0 && round_ >= uint64_t(o_.count); }

  void round() {
    if (done_ || !s_) return;
    if (all_sent()) return;
    ++round_;
    for (size_t i = 0; i < nodes_.size(); ++i) send(i);
    if (all_sent()) {
      tick_.stop();
      arm_wait();
    } else if (o_.interval_s == 0) {
      wait_.start(uint64_t(o_.timeout_s * 1000), [this] { finish(); });
    }
  }

  void send(size_t i) {
    NodePing& n = nodes_[i];
    if (!n.error.empty()) return;
    uint64_t seq = ++n.sent;
    ControlMsg m;
    m.type = ControlType::send;
    m.ev.kind = Kind::call;
    m.ev.id = (uint64_t(i) << kSeqBits) | seq;
    m.ev.to = n.node;
    m.ev.object = o_.object;
    m.ev.body = json{{"seq", seq}}.dump();
    if (o_.size > m.ev.body.size()) {
      std::string base = json{{"seq", seq}, {"data", ""}}.dump();
      m.ev.body = json{{"seq", seq}, {"data", std::string(o_.size - std::min(o_.size, base.size()), 'x')}}.dump();
    }
    n.sent_at[seq] = uv_hrtime();
    s_->send(encode_control(m));
  }

  bool outstanding() const {
    for (auto& n : nodes_)
      if (n.error.empty() && !n.sent_at.empty()) return true;
    return false;
  }

  void arm_wait() {
    if (!outstanding()) return finish();
    wait_.start(uint64_t(o_.timeout_s * 1000), [this] { finish(); });
  }

  void on_msg(std::string_view p) {
    ControlMsg m;
    std::string err;
    if (!decode_control(p, m, err)) {
      fprintf(stderr, "jsd-ping: error: malformed answer from the listener: %s\n", err.c_str());
      lost_ = true;
      return finish();
    }
    uint64_t id = m.type == ControlType::reply ? m.ev.id : m.id;
    size_t i = size_t(id >> kSeqBits);
    uint64_t seq = id & ((uint64_t(1) << kSeqBits) - 1);
    if (i >= nodes_.size() || !nodes_[i].error.empty()) return;
    NodePing& n = nodes_[i];
    std::string text;
    switch (read_control_notice(m, n.node, text)) {
      case ControlNotice::fatal:
        return node_error(n, m.type == ControlType::error ? "refused" : "refused", text);
      case ControlNotice::note:
        if (!o_.json && !o_.quiet && text != n.last_note)
          fprintf(stderr, "jsd-ping: %s: link %s (calls wait in the queue)\n", n.node.c_str(), text.c_str());
        n.last_note = text;
        return;
      case ControlNotice::none:
        break;
    }
    if (m.type != ControlType::reply) return;
    auto it = n.sent_at.find(seq);
    if (it == n.sent_at.end()) return;
    double ms = double(uv_hrtime() - it->second) / 1e6;
    n.sent_at.erase(it);
    if (m.ev.body.find("\"error\"") != std::string::npos) {
      json body;
      parse_json(m.ev.body, body);
      if (body.is_object() && body.contains("error") && body["error"].is_string())
        return node_error(n, "refused", body["error"].get<std::string>());
    }
    n.rtts.push_back({seq, ms});
    if (!o_.json && !o_.quiet) {
      printf("reply from %s: seq=%llu time=%.3f ms\n", n.node.c_str(), static_cast<unsigned long long>(seq), ms);
      fflush(stdout);
    }
    if (all_sent() && !outstanding()) return finish();
    if (o_.interval_s == 0 && !outstanding()) round();
  }

  void node_error(NodePing& n, const std::string& kind, const std::string& why) {
    n.error = why;
    n.error_kind = kind;
    n.sent_at.clear();
    if (!o_.json) fprintf(stderr, "jsd-ping: %s: error: %s\n", n.node.c_str(), why.c_str());
    if (all_sent() && !outstanding()) finish();
  }

  void finish() {
    if (done_) return;
    done_ = true;
    double total_ms = double(uv_hrtime() - start_) / 1e6;
    bool any_error = lost_, any_silent = false;
    size_t answered = 0;
    if (!o_.json && !o_.quiet) printf("\n--- %zu nodes, jsd-ping statistics ---\n", nodes_.size());
    for (auto& n : nodes_) {
      if (!n.error.empty()) {
        any_error = true;
        if (o_.json)
          std::cout << dump_json({{"node", n.node},
                                  {"object", o_.object},
                                  {"sent", n.sent},
                                  {"received", 0},
                                  {"error", n.error},
                                  {"error_kind", n.error_kind}})
                    << "\n";
        else
          printf("%s: error: %s\n", n.node.c_str(), n.error.c_str());
        continue;
      }
      size_t k = n.rtts.size();
      double mn = 0, mx = 0, sum = 0, sq = 0;
      for (size_t j = 0; j < k; ++j) {
        double r = n.rtts[j].second;
        mn = j ? std::min(mn, r) : r;
        mx = j ? std::max(mx, r) : r;
        sum += r;
        sq += r * r;
      }
      double avg = k ? sum / double(k) : 0, mdev = k ? std::sqrt(std::max(0.0, sq / double(k) - avg * avg)) : 0;
      double lost = n.sent ? 100.0 * double(n.sent - k) / double(n.sent) : 0;
      if (k)
        ++answered;
      else
        any_silent = true;
      if (o_.json) {
        json replies = json::array();
        for (auto& [seq, r] : n.rtts) replies.push_back({{"seq", seq}, {"rtt_ms", r}});
        json j = {{"node", n.node},   {"object", o_.object}, {"sent", n.sent},    {"received", k},
                  {"lost_pct", lost}, {"time_ms", total_ms}, {"replies", replies}};
        if (k) j["rtt_ms"] = {{"min", mn}, {"avg", avg}, {"max", mx}, {"mdev", mdev}};
        if (!k) j["error_kind"] = n.last_note.empty() ? "timeout" : "unreachable";
        std::cout << dump_json(j) << "\n";
      } else {
        printf("%s: %llu sent, %zu received, %.0f%% lost", n.node.c_str(), static_cast<unsigned long long>(n.sent), k,
               lost);
        if (k) printf(", rtt min/avg/max/mdev = %.3f/%.3f/%.3f/%.3f ms", mn, avg, mx, mdev);
        if (!k && !n.last_note.empty()) printf(" (link %s)", n.last_note.c_str());
        printf("\n");
      }
    }
    if (!o_.json) printf("%zu of %zu nodes answered, time %.0f ms\n", answered, nodes_.size(), total_ms);
    std::cout << std::flush;
    code_ = any_error ? kExitJsdFailure : any_silent ? kExitNoReply : kExitOk;
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
  std::unique_ptr<Signal> sig_int_, sig_term_;
  std::vector<NodePing> nodes_;
  uint64_t round_ = 0, start_ = 0;
  bool done_ = false, lost_ = false;
  int code_ = kExitJsdFailure;
};

}  // namespace

int run_ping_many(const PingOptions& o) {
  std::vector<TargetEntry> targets;
  std::string err;
  if (!read_target_set(o.node, o.cfg, targets, err)) {
    fprintf(stderr, "jsd-ping: error: %s\n", err.c_str());
    return kExitJsdFailure;
  }
  return with_loop([&](uv_loop_t* loop) { return ManyPinger(loop, o, targets).run(); }, kExitJsdFailure);
}

}  // namespace jsd
