#include "dialer.h"

#include "log.h"

namespace jsd {

Dialer::Dialer(uv_loop_t* loop, const Config& cfg, const Trust& trust, const Target& target, size_t max_batch,
               std::function<void(DialResult)> up, std::function<void(LinkState, const std::string&)> failed)
    : loop_(loop),
      cfg_(cfg),
      trust_(trust),
      target_(target),
      max_batch_(max_batch),
      up_(std::move(up)),
      failed_(std::move(failed)) {}

Dialer::~Dialer() { end_conn(); }

void Dialer::end_conn() {
  if (!conn_) return;
  Stream* c = conn_;
  conn_ = nullptr;
  c->discard();
}

// Ends the attempt: what the caller does next may destroy this Dialer.
void Dialer::fail(LinkState state, const std::string& why) {
  end_conn();
  auto failed = failed_;
  failed(state, why);
}

void Dialer::start() {
  conn_ = Stream::tcp(loop_);
  if (!conn_) return fail(LinkState::down, "cannot make a socket");
  Stream* c = conn_;
  c->on_close = [this](const std::string& why) {
    conn_ = nullptr;
    fail(LinkState::down,
         "connection to " + target_.addr.str() + " lost during handshake" + (why.empty() ? "" : ": " + why));
  };
  bind_source(c);
  int rc = c->connect(target_.addr, [this, c](int status) {
    if (status != 0)
      return fail(LinkState::down,
                  "cannot reach " + target_.key() + " (" + target_.addr.str() + "): " + uv_error(status));
    uv_tcp_nodelay(c->tcp_handle(), 1);  // best effort: only latency depends on it
    c->on_frame = [this](std::string_view p) { on_handshake(p); };
    c->start(64 * 1024);
    // One pinned key: IK, one round trip. Several (a key rollover) or
    // none (a certified peer): XX, and the answer's key is checked.
    std::optional<Key32> server_key;
    if (auto* keys = trust_.pinned(target_.name); keys && keys->size() == 1) server_key = keys->front();
    hs_ =
        std::make_unique<LinkInitiator>(trust_, Hello{cfg_.node, cfg_.listen.str(), "", ""}, target_.name, server_key);
    std::string first, err;
    if (!hs_->first(first, err)) return fail(LinkState::down, "handshake with " + target_.key() + ": " + err);
    c->send(first);
  });
  if (rc != 0) fail(LinkState::down, "cannot connect to " + target_.addr.str() + ": " + uv_error(rc));
}

// Connect from this node's own address when it has one, so the peer sees
// (and firewalls can match) the node rather than whatever the route picks.
void Dialer::bind_source(Stream* c) {
  const std::string& h = cfg_.listen.host;
  if (h == "0.0.0.0" || h == "::") return;
  struct sockaddr_storage ss {};
  if (uv_ip4_addr(h.c_str(), 0, reinterpret_cast<sockaddr_in*>(&ss)) != 0 &&
      uv_ip6_addr(h.c_str(), 0, reinterpret_cast<sockaddr_in6*>(&ss)) != 0)
    return;
  int rc = uv_tcp_bind(c->tcp_handle(), reinterpret_cast<sockaddr*>(&ss), 0);
  if (rc != 0) log_debug("cannot bind source address " + h + ": " + uv_error(rc));
}

void Dialer::on_handshake(std::string_view p) {
  std::string out, err;
  if (!hs_ || !conn_) return;
  switch (hs_->on_frame(p, out, err)) {
    case LinkInitiator::Step::send:
      conn_->send(out);
      return;
    case LinkInitiator::Step::refused:
      return fail(LinkState::refused, err);
    case LinkInitiator::Step::failed:
      return fail(LinkState::rejected, err);
    case LinkInitiator::Step::done:
      break;
  }
  server_node_ = hs_->server_node();
  server_max_frame_ = hs_->server_max_frame();
  // Step 4: the handshake connection has done its job; the link goes to
  // the port the remote listener bound for our queue-server.
  end_conn();
  join(hs_->port());
}

void Dialer::join(uint16_t port) {
  auto keys = hs_->take_keys();
  hs_.reset();
  link_ = std::make_unique<SealedLink>(keys.c2s, keys.c2s_n, keys.s2c, keys.s2c_n,
                                       RekeyLimits{uint64_t(cfg_.rekey_after_s) * 1000, cfg_.rekey_after_frames},
                                       max_batch_, "link to " + target_.key());
  keys.wipe();
  conn_ = Stream::tcp(loop_);
  if (!conn_) return fail(LinkState::down, "cannot make a socket");
  Stream* c = conn_;
  c->on_close = [this](const std::string& why) {
    conn_ = nullptr;
    fail(LinkState::down, why.empty() ? "closed" : why);
  };
  bind_source(c);
  int rc = c->connect(Endpoint{target_.addr.host, port}, [this, c, port](int status) {
    if (status != 0)
      return fail(LinkState::down, "cannot connect to " + target_.key() + "'s queue-server port " +
                                       std::to_string(port) + ": " + uv_error(status));
    uv_tcp_nodelay(c->tcp_handle(), 1);
    c->on_close = nullptr;
    conn_ = nullptr;  // the caller's now
    DialResult r{c, std::move(link_), port, server_node_, server_max_frame_};
    auto up = up_;
    up(std::move(r));
  });
  if (rc != 0) fail(LinkState::down, "cannot connect to port " + std::to_string(port) + ": " + uv_error(rc));
}

}  // namespace jsd
