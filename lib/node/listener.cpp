// jsd-listener: puts the node together (node port, link processes, router,
// jobs, control socket) and runs it until SIGTERM/SIGINT.
#include "listener.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <unordered_map>

#include "audit.h"
#include "check_config.h"
#include "control_msg.h"
#include "control_socket.h"
#include "exit_codes.h"
#include "files.h"
#include "identity.h"
#include "jobs.h"
#include "jsd_version.h"
#include "libexec.h"
#include "link_clients.h"
#include "link_servers.h"
#include "log.h"
#include "metrics.h"
#include "node_port.h"
#include "node_stop.h"
#include "outbox.h"
#include "peers.h"
#include "relay_keys.h"
#include "reload.h"
#include "router.h"
#include "sd_notify.h"
#include "trust.h"

namespace jsd {

namespace {

bool make_state_dir(const std::string& dir, std::string& err) {
  std::string cur;
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      cur = dir.substr(0, i);
      if (mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) {
        err = "cannot create state_dir " + cur + ": " + strerror(errno);
        return false;
      }
    }
  }
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    err = "state_dir " + dir + " is not a directory";
    return false;
  }
  if (st.st_uid != geteuid()) {
    err = "state_dir " + dir + " belongs to another user";
    return false;
  }
  if (st.st_mode & 077) chmod(dir.c_str(), 0700);
  return true;
}

// The outbox on disk as the router's durable store.
class OutboxStore : public DurableStore {
 public:
  explicit OutboxStore(const std::string& dir) : box_(dir) {}
  bool open(std::string& err) { return box_.open(err); }
  bool put(const OutboxEntry& e, std::string& err) override { return box_.put(e, err); }
  void remove(const std::string& id) override { box_.remove(id); }
  std::vector<OutboxEntry> load() override { return box_.load(); }
  void refuse(const std::string& id, const std::string& record) override { box_.refuse(id, record); }
  std::string refusal(const std::string& id) override { return box_.refusal(id); }

 private:
  Outbox box_;
};

// The node. The parts talk through the small interfaces they declare;
// this class is what connects them (and owns the control socket).
class Listener : public ClientEvents, public ServerEvents, public LocalObjects {
 public:
  Listener(uv_loop_t* loop, const ListenerOptions& o, std::unique_ptr<Trust> trust);
  ~Listener() override;
  int start();
  void shutdown(const std::string& why);

  // ClientEvents
  void link_state(const std::string& key, LinkState state, const std::string& detail) override {
    router_.on_link_state(key, state, detail);
    tell_manager("");
  }
  void too_big(const std::string& key, uint64_t event_id, const std::string& why) override {
    router_.undeliverable(key, event_id, why);
  }
  void child_gone() override {
    tell_manager("");
    maybe_finish_shutdown();
  }
  // ServerEvents
  bool joined(const std::string& peer, const LinkClaim& claim) override;
  uint64_t delivered(const std::string& peer, uint64_t instance, uint64_t seq, const Event& ev) override {
    uint64_t slow = router_.on_delivered(peer, instance, seq, ev);
    watch_calls();
    return slow;
  }
  size_t tool_backlog(uint64_t tool) const override { return control_.backlog(tool); }
  void link_up(const std::string& peer) override {
    tell_manager("");
    std::string key = peers_.client_key_for(peer);
    if (!key.empty() && !stopping_) clients_.ensure(key);
  }
  // LocalObjects
  void job_input(const std::string& from, std::string_view body) override { jobs_.input(from, body); }
  void job(const std::string& from, const std::string& body, ReplyFn reply) override {
    jobs_.handle(from, body, std::move(reply));
  }
  void job_via(const std::string& from, const std::vector<std::string>& via, const std::string& body,
               ReplyFn reply) override {
    jobs_.handle(from, body, std::move(reply), via);
  }
  std::string status() override;
  std::string metrics() override;

 private:
  void maybe_finish_shutdown();
  // Calls waiting for a link are checked once a second (Router::expire_calls)
  // while there are any: an idle node does not wake for them.
  void watch_calls();
  void tell_manager(const std::string& state);
  // Both directions' links, as --status shows them.
  nlohmann::json links_json() const {
    nlohmann::json links = clients_.links_json();
    for (auto& l : servers_.links_json()) links.push_back(l);
    return links;
  }
  void reload();

  uv_loop_t* loop_;
  ServiceStatus manager_{SdNotify::from_env()};  // systemd's Type=notify (sd_notify.h)
  ListenerOptions o_;
  const Config& cfg_;  // o_.cfg: every part reads it there, so a reload is one assignment
  std::unique_ptr<Trust> trust_;
  std::vector<std::unique_ptr<Trust>> old_trusts_;  // handshakes begun before a reload use them
  uint64_t instance_ = 0;
  std::string bin_dir_;
  double started_ = 0;
  Audit audit_;
  Audit refused_audit_;  // links refused at the handshake (before port_: it writes to it to the end)
  Peers peers_;
  OutboxStore outbox_;
  ControlSocket control_;  // the tools' connections (before router_, which talks to them)
  JobRunner jobs_;
  LinkSpawn spawn_;  // starts the link processes (before clients_, servers_: they use it)
  LinkClients clients_;
  LinkServers servers_;
  Router router_;
  NodeRelayKeys relay_keys_;
  NodePort port_;
  NodeMetrics metrics_;
  MetricsFile metrics_file_;
  NodeStop stop_;
  bool stopping_ = false;
  std::unique_ptr<Timer> expire_timer_;
  std::unique_ptr<Timer> flush_timer_;  // sends the relayed requests a turn gathered (Router::use_bundles)
  std::unique_ptr<Signal> sig_term_, sig_int_, sig_hup_;
};

uint64_t random_instance() {
  uint64_t v;
  randombytes_buf(&v, sizeof v);
  return v;
}

Listener::Listener(uv_loop_t* loop, const ListenerOptions& o, std::unique_ptr<Trust> trust)
    : loop_(loop),
      o_(o),
      cfg_(o_.cfg),
      trust_(std::move(trust)),
      instance_(random_instance()),
      bin_dir_(libexec_dir()),
      audit_(cfg_.audit_log(), cfg_.audit_max_bytes),
      refused_audit_(cfg_.state_dir + "/audit-refused.log", cfg_.audit_max_bytes),
      peers_(cfg_),
      outbox_(cfg_.state_dir + "/outbox"),
      control_(loop, cfg_),
      jobs_(loop, cfg_, bin_dir_),
      spawn_(loop, bin_dir_, cfg_.node, cfg_.link_spawner),
      clients_(loop, cfg_, peers_, bin_dir_, instance_, spawn_, *this),
      servers_(loop, cfg_, bin_dir_, spawn_, *this),
      router_(cfg_.node, peers_, clients_, control_, outbox_, *this),
      relay_keys_(
          cfg_, [this]() -> const Trust& { return *trust_; },
          [this](nlohmann::json entry) { audit_.record(std::move(entry), false); }),
      port_(loop, cfg_, *trust_, refused_audit_, servers_, clients_),
      metrics_file_(loop, [this] { return metrics(); }),
      stop_(loop, cfg_, clients_, servers_, spawn_, jobs_) {
  stop_.on_stopped = [this] {
    sig_term_.reset();
    sig_int_.reset();
    sig_hup_.reset();
    log_info("stopped");
    // Nothing of the node's is left to finish: what still has a handle open
    // (a timer for the refusal log, a tool's unread replies) must not keep the
    // process for seconds; close_loop() closes it.
    uv_stop(loop_);
  };
}

Listener::~Listener() = default;

int Listener::start() {
  std::string err;
  started_ = wall_time();
  // Before the records are loaded: a job that ended while the node was
  // down is counted when its end is recorded.
  jobs_.on_save = [this](const JobRecord& r) { metrics_.job_record(r); };
  control_.on_msg = [this](uint64_t tool, std::string_view msg) {
    router_.on_tool_msg(tool, msg);
    watch_calls();
  };
  control_.on_gone = [this](uint64_t tool) { router_.tool_gone(tool); };
  if (!make_state_dir(cfg_.state_dir, err) || !control_.claim(err) || !write_running_config(o_.cfg, err) ||
      !audit_.open(err) || !refused_audit_.open(err)) {
    log_error(err);
    return kExitStartupError;
  }
  // The runner's hooks before it opens: the jobs queued before a restart
  // start in open(), and their starts are judged and audited like any.
  jobs_.peer_ok = [this](const std::string& from, const std::string& key, bool& known, std::string& why) {
    return peer_may_run(cfg_, peers_, from, key, known, why);
  };
  jobs_.key_of = [this](const std::string& from) { return peers_.fingerprint(from); };
  jobs_.on_idle = [this] { maybe_finish_shutdown(); };
  spawn_.on_gone = [this] { maybe_finish_shutdown(); };
  jobs_.in_group = [this](const std::string& peer, const std::string& group) { return peers_.in_group(peer, group); };
  jobs_.audit = [this](nlohmann::json entry, bool sync) {
    std::string fp = peers_.fingerprint(entry.value("peer", ""));
    if (!fp.empty()) entry["key"] = fp;
    return audit_.record(std::move(entry), sync);
  };
  // A job's output waits in the queue to its submitter until acknowledged:
  // the runner stops reading a job whose submitter's queue is this full.
  jobs_.backlog = [this](const std::string& from) { return clients_.backlog(peers_.client_key_for(from)); };
  relay_keys_.on_opened = [this](const std::string& origin, const NodeRelayKeys::Opened& o) {
    peers_.relayed(origin, o.key_fp,
                   o.by_cert ? std::optional<RelayedCert>(RelayedCert{o.groups, o.ca, o.not_after}) : std::nullopt);
  };
  router_.use_relay(&relay_keys_);
  // A timer of 0 runs in the loop's next turn, after the tool's burst of
  // requests read in this one: one bundle per gateway.
  flush_timer_ = std::make_unique<Timer>(loop_);
  router_.use_bundles([this] {
    if (flush_timer_ && !flush_timer_->active()) flush_timer_->start(0, [this] { router_.flush_bundles(); });
  });
  if (!jobs_.open(err) || !outbox_.open(err) || !relay_keys_.open(err)) {
    log_error(err);
    return kExitStartupError;
  }
  // Node port first: if it is taken, fail before touching anything else.
  if (!port_.open(err) || !control_.open(err)) {
    log_error(err);
    return kExitStartupError;
  }
  sig_term_ = std::make_unique<Signal>(loop_, SIGTERM, [this] { shutdown("SIGTERM"); });
  sig_int_ = std::make_unique<Signal>(loop_, SIGINT, [this] { shutdown("SIGINT"); });
  sig_hup_ = std::make_unique<Signal>(loop_, SIGHUP, [this] { reload(); });
  log_info("node " + cfg_.node + " listening on " + cfg_.listen.str() + ", control socket " + cfg_.control_socket());
  // Before the first link: they are forked by it, already past exec.
  if (cfg_.link_spawner && !spawn_.open(err)) log_warn(err + " (link processes start by exec)");
  for (auto& peer : cfg_.connect_at_startup) clients_.ensure(peer);
  router_.replay_outbox();
  expire_timer_ = std::make_unique<Timer>(loop_);
  watch_calls();
  metrics_file_.start(cfg_.metrics_file, cfg_.metrics_interval_s);
  if (o_.ready_fd >= 0) {
    ssize_t n = write(o_.ready_fd, "ready\n", 6);
    (void)n;  // nobody to tell if the reader is gone
    ::close(o_.ready_fd);
  }
  tell_manager("READY=1\n");
  return kExitOk;
}

// A peer's ticket arrived at its joining queue-server: on record first
// (not flushed on its own: a link by itself runs nothing, and the job line
// that anything run over it needs is flushed before the job starts, taking
// this one to disk with it), then what its handshake said counts.
bool Listener::joined(const std::string& peer, const LinkClaim& c) {
  nlohmann::json entry = {
      {"what", "link"}, {"peer", peer}, {"key", c.key_fp}, {"address", c.from}, {"verdict", "allowed"}};
  if (c.by_cert) entry["by"] = "certificate";
  if (!audit_.record(entry, false)) {
    log_error("link from " + peer + " dropped: cannot write the audit log");
    return false;
  }
  peers_.joined(peer, c.key_fp, c.by_cert, c.groups);
  if (c.learn_addr) {
    // A certified peer that comes back from another address: its client
    // (started with the old --address) is restarted with the new one.
    if (peers_.learn_address(peer, c.addr)) clients_.restart(peer);
    router_.forget_targets();  // an address may name this peer now
  }
  clients_.kick(peer);
  return true;
}

// SIGHUP: the configuration file again, checked as at start; a bad one is
// refused with one line per mistake and the running one stays. Peers,
// groups, jobs, allow lists, log level and keys take effect at once; what
// the node is (its name, address and state) needs a restart.
void Listener::reload() {
  if (stopping_) return;
  Config next;
  auto trust = std::make_unique<Trust>();
  if (!reread_config(cfg_, next, *trust)) return;
  Config old = cfg_;
  o_.cfg = std::move(next);
  old_trusts_.push_back(std::move(trust_));
  trust_ = std::move(trust);
  port_.set_trust(*trust_);
  relay_keys_.forget_shared_keys();
  Level lv = Level::info;
  parse_level(cfg_.log_level, lv);
  log_init({"jsd-listener", lv, cfg_.syslog});
  router_.forget_targets();
  relink_after_reload(old, cfg_, clients_, servers_, router_);
  metrics_file_.start(cfg_.metrics_file, cfg_.metrics_interval_s);
  log_info("configuration reloaded from " + old.path + ": " + std::to_string(cfg_.peers.size()) + " peers, " +
           std::to_string(cfg_.jobs.size()) + " jobs");
}

std::string Listener::status() {
  nlohmann::json links = links_json();
  nlohmann::json j = {{"node", cfg_.node},           {"version", JSD_VERSION},      {"pid", getpid()},
                      {"listen", cfg_.listen.str()}, {"since", iso_time(started_)}, {"links", links}};
  j["peers"] = peers_.directory_json(links);
  j["jobs"] = jobs_.status_json();
  // How its link processes were started (issue 20): forked by the spawner,
  // or by exec when it was not there.
  j["link_spawner"] = {{"pid", spawn_.spawner_pid()}, {"forked", spawn_.forked()}, {"exec", spawn_.execs()}};
  return dump_json(j);
}

std::string Listener::metrics() {
  MetricsSnapshot s;
  s.node = cfg_.node;
  s.version = JSD_VERSION;
  s.started = started_;
  s.links = links_json();
  s.handshakes = port_.outcomes();
  s.audit = audit_.decisions();
  for (auto& [k, n] : port_.refused_decisions()) s.audit[k] += n;
  nlohmann::json jobs = jobs_.status_json();
  s.jobs_running = jobs_.running();
  s.jobs_queued = jobs.value("queued", size_t(0));
  auto sup = jobs.find("supervisor");
  if (sup != jobs.end() && sup->is_object()) {
    s.supervisor_waiting = sup->value("waiting", size_t(0));
    s.supervisor_slow = sup->value("slow", false);
  }
  s.fds_open = open_descriptors();
  s.fds_limit = descriptor_limit();
  s.relayed_sent = router_.relayed_sent();
  s.relay_bundles = router_.relay_bundles();
  s.relayed_bundled = router_.relayed_bundled();
  return metrics_.render(s);
}

// The service manager (systemd, Type=notify) learns that the node answers
// (READY=1), that it stops (STOPPING=1), and how many links are up, which
// `systemctl status` shows. Not run by one: nothing happens.
void Listener::tell_manager(const std::string& state) {
  if (!manager_.enabled()) return;
  size_t up = 0, all = 0;
  for (auto& l : links_json()) {
    ++all;
    up += l.value("state", "") == "up";
  }
  manager_.tell(state, up, all);
}

void Listener::shutdown(const std::string& why) {
  if (stopping_) return;
  stopping_ = true;
  tell_manager("STOPPING=1\n");
  log_info("stopping (" + why + "): ending " + std::to_string(clients_.live() + servers_.live()) + " children");
  port_.close();
  control_.close_all();
  spawn_.close();
  expire_timer_.reset();
  router_.flush_bundles();  // what was gathered is queued like the rest
  flush_timer_.reset();
  // A stopped node's metrics would say its links are up: its file goes,
  // and the jsd_ series with it (absent() alerts on that).
  metrics_file_.stop();
  stop_.begin();
}

void Listener::maybe_finish_shutdown() { stop_.check(); }

void Listener::watch_calls() {
  if (!expire_timer_ || expire_timer_->active() || !router_.waiting()) return;
  expire_timer_->start(
      1000,
      [this] {
        router_.expire_calls(now_ms(), uint64_t(cfg_.idle_client_s) * 1000);
        if (!router_.waiting()) expire_timer_->stop();
      },
      1000);
}

}  // namespace

int run_listener(const ListenerOptions& o) {
  Level lv = Level::info;
  parse_level(o.cfg.log_level, lv);
  log_init({"jsd-listener", lv, o.cfg.syslog});
  // A --ready-fd that is not open would be closed later under another
  // owner's feet (the loop's own descriptors take the lowest numbers).
  if (o.ready_fd >= 0 && fcntl(o.ready_fd, F_GETFD) < 0) {
    log_error("--ready-fd " + std::to_string(o.ready_fd) + ": not an open descriptor");
    return kExitStartupError;
  }
  // Whatever the shell or service manager left open here (ready_fd too)
  // must not reach the link processes or jobs: they get exactly what they
  // are handed.
  if (!cloexec_from(3)) log_warn(std::string("cannot mark inherited descriptors close-on-exec: ") + strerror(errno));
  // Descriptors are what a flood exhausts first: take all we may have.
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) log_debug("cannot raise the descriptor limit");
  }
  std::vector<std::string> errors;
  // What the node reads and where it keeps its state must be the service
  // user's (or root's) alone, before anything is read from there.
  PathOwners owners;
  std::string err;
  if (!node_file_owners(o.cfg, true, owners, err))
    errors.push_back(err);
  else
    check_node_files(o.cfg, owners, errors);
  auto trust = std::make_unique<Trust>();
  if (!load_trust(o.cfg, *trust, errors) || !errors.empty()) {
    for (auto& e : errors) log_error(e);
    return kExitStartupError;
  }
  return with_loop([&](uv_loop_t* loop) {
    Listener l(loop, o, std::move(trust));
    int rc = l.start();
    if (rc != 0) l.shutdown("start-up failed");
    uv_run(loop, UV_RUN_DEFAULT);
    return rc;
  });
}

}  // namespace jsd
