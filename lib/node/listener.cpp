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
#include "outbox.h"
#include "peers.h"
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

// True if a live process answers on the Unix socket.
bool socket_answers(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
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
class Listener : public ClientEvents, public ServerEvents, public RouterTools, public LocalObjects {
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
  void child_gone() override {
    tell_manager("");
    maybe_finish_shutdown();
  }
  // ServerEvents
  bool joined(const std::string& peer, const LinkClaim& claim) override;
  uint64_t delivered(const std::string& peer, uint64_t instance, uint64_t seq, const Event& ev) override {
    return router_.on_delivered(peer, instance, seq, ev);
  }
  size_t tool_backlog(uint64_t tool) const override { return backlog(tool); }
  void link_up(const std::string& peer) override {
    tell_manager("");
    std::string key = peers_.client_key_for(peer);
    if (!key.empty() && !stopping_) clients_.ensure(key);
  }
  // RouterTools
  void send(uint64_t tool, const std::string& msg) override {
    if (auto it = tools_.find(tool); it != tools_.end()) it->second->send(msg);
  }
  void close(uint64_t tool) override {
    if (auto it = tools_.find(tool); it != tools_.end()) it->second->close();
  }
  size_t backlog(uint64_t tool) const override {
    auto it = tools_.find(tool);
    return it == tools_.end() ? 0 : it->second->pending_bytes();
  }
  // LocalObjects
  void job_input(const std::string& from, std::string_view body) override { jobs_.input(from, body); }
  void job(const std::string& from, const std::string& body, ReplyFn reply) override {
    jobs_.handle(from, body, std::move(reply));
  }
  std::string status() override;
  std::string metrics() override;

 private:
  bool claim_control_socket(std::string& err);
  bool write_running_config(Config& c, std::string& err);
  bool open_control_socket(std::string& err);
  void on_control_connection(int status);
  void maybe_finish_shutdown();
  void tell_manager(const std::string& state);
  void reload();
  bool peer_may_run(const std::string& from, const std::string& submitted_with, bool& known, std::string& why);
  void reload_links(const Config& old);
  void write_metrics_file();
  void start_metrics_file();

  uv_loop_t* loop_;
  SdNotify notify_ = SdNotify::from_env();  // systemd's Type=notify (sd_notify.h)
  bool notify_failed_ = false;
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
  JobRunner jobs_;
  LinkClients clients_;
  LinkServers servers_;
  Router router_;
  NodePort port_;
  NodeMetrics metrics_;
  std::unique_ptr<Timer> metrics_timer_;
  std::string metrics_written_;  // the metrics_file this listener wrote last
  bool metrics_failed_ = false;
  Stream* control_ = nullptr;  // the listening control socket (uvx.h's box)
  bool control_bound_ = false;
  std::unordered_map<uint64_t, Stream*> tools_;
  uint64_t next_tool_ = 0;
  bool stopping_ = false, stopped_ = false;
  std::unique_ptr<Timer> kill_timer_, job_kill_timer_, abandon_timer_, expire_timer_;
  static constexpr uint64_t kLinkStopMs = 2000;          // SIGTERM -> SIGKILL for link processes
  static constexpr uint64_t kSupervisorAnswerMs = 2000;  // SIGKILL sent -> the jobs' ends
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
      jobs_(loop, cfg_, bin_dir_),
      clients_(loop, cfg_, peers_, bin_dir_, instance_, *this),
      servers_(loop, cfg_, bin_dir_, *this),
      router_(cfg_.node, peers_, clients_, *this, outbox_, *this),
      port_(loop, cfg_, *trust_, refused_audit_, servers_, clients_) {}

Listener::~Listener() {
  for (auto& [id, s] : tools_) s->discard();
  if (control_) control_->discard();
}

int Listener::start() {
  std::string err;
  started_ = wall_time();
  // Before the records are loaded: a job that ended while the node was
  // down is counted when its end is recorded.
  jobs_.on_save = [this](const JobRecord& r) { metrics_.job_record(r); };
  if (!make_state_dir(cfg_.state_dir, err) || !claim_control_socket(err) || !write_running_config(o_.cfg, err) ||
      !audit_.open(err) || !refused_audit_.open(err)) {
    log_error(err);
    return kExitStartupError;
  }
  // The runner's hooks before it opens: the jobs queued before a restart
  // start in open(), and their starts are judged and audited like any.
  jobs_.peer_ok = [this](const std::string& from, const std::string& key, bool& known, std::string& why) {
    return peer_may_run(from, key, known, why);
  };
  jobs_.key_of = [this](const std::string& from) { return peers_.fingerprint(from); };
  jobs_.on_idle = [this] { maybe_finish_shutdown(); };
  jobs_.in_group = [this](const std::string& peer, const std::string& group) { return peers_.in_group(peer, group); };
  jobs_.audit = [this](nlohmann::json entry, bool sync) {
    std::string fp = peers_.fingerprint(entry.value("peer", ""));
    if (!fp.empty()) entry["key"] = fp;
    return audit_.record(std::move(entry), sync);
  };
  // A job's output waits in the queue to its submitter until acknowledged:
  // the runner stops reading a job whose submitter's queue is this full.
  jobs_.backlog = [this](const std::string& from) { return clients_.backlog(peers_.client_key_for(from)); };
  if (!jobs_.open(err) || !outbox_.open(err)) {
    log_error(err);
    return kExitStartupError;
  }
  // Node port first: if it is taken, fail before touching anything else.
  if (!port_.open(err) || !open_control_socket(err)) {
    log_error(err);
    return kExitStartupError;
  }
  sig_term_ = std::make_unique<Signal>(loop_, SIGTERM, [this] { shutdown("SIGTERM"); });
  sig_int_ = std::make_unique<Signal>(loop_, SIGINT, [this] { shutdown("SIGINT"); });
  sig_hup_ = std::make_unique<Signal>(loop_, SIGHUP, [this] { reload(); });
  log_info("node " + cfg_.node + " listening on " + cfg_.listen.str() + ", control socket " + cfg_.control_socket());
  for (auto& peer : cfg_.connect_at_startup) clients_.ensure(peer);
  router_.replay_outbox();
  expire_timer_ = std::make_unique<Timer>(loop_);
  expire_timer_->start(
      1000, [this] { router_.expire_calls(now_ms(), uint64_t(cfg_.idle_client_s) * 1000); }, 1000);
  start_metrics_file();
  if (o_.ready_fd >= 0) {
    ssize_t n = write(o_.ready_fd, "ready\n", 6);
    (void)n;  // nobody to tell if the reader is gone
    ::close(o_.ready_fd);
  }
  tell_manager("READY=1\n");
  return kExitOk;
}

// The link processes read the configuration the listener runs, not the
// file: that may have been edited since, or refused at a reload, and a
// client started again later must not link by other rules than its
// listener's. The copy is the file's text as it was read.
bool Listener::write_running_config(Config& c, std::string& err) {
  if (c.path.empty()) return true;  // the embedded defaults: the link processes have them too
  std::string path = c.state_dir + "/config.running";
  if (!write_file_atomic(path, c.text, false, err)) return false;
  c.running_path = path;
  return true;
}

// Before anything else of the node's is touched: one listener per node.
bool Listener::claim_control_socket(std::string& err) {
  std::string sock = cfg_.control_socket();
  if (sock.size() >= sizeof(sockaddr_un::sun_path)) {
    err = "control socket path " + sock + " is too long; choose a shorter state_dir";
    return false;
  }
  if (socket_answers(sock)) {
    err = "another jsd-listener is running for this node (" + sock + " answers)";
    return false;
  }
  unlink(sock.c_str());
  return true;
}

bool Listener::open_control_socket(std::string& err) {
  std::string sock = cfg_.control_socket();
  control_ = Stream::pipe(loop_);
  if (!control_) {
    err = "cannot make the control socket";
    return false;
  }
  mode_t old = umask(077);  // the socket is born 0600
  int rc = uv_pipe_bind(control_->pipe_handle(), sock.c_str());
  umask(old);
  control_bound_ = rc == 0;
  if (rc == 0) rc = chmod(sock.c_str(), 0600) == 0 ? 0 : uv_translate_sys_error(errno);
  if (rc == 0) rc = control_->listen(128, [this](int st) { on_control_connection(st); });
  if (rc != 0) err = "cannot listen on control socket " + sock + ": " + uv_error(rc);
  return rc == 0;
}

void Listener::on_control_connection(int status) {
  if (status != 0 || stopping_) return;
  Stream* s = Stream::pipe(loop_);
  if (!s) return;
  if (control_->accept(s) != 0) {
    s->close();
    return;
  }
  uint64_t id = ++next_tool_;
  tools_[id] = s;
  s->on_frame = [this, id](std::string_view p) { router_.on_tool_msg(id, p); };
  s->on_close = [this, id](const std::string&) {
    tools_.erase(id);
    router_.tool_gone(id);
  };
  s->start(cfg_.max_frame + kControlSlack);
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

// At a job's start (JobRunner::peer_ok), under the configuration of that
// moment: a peer no longer in peers, whose key is revoked, or whose key is
// no longer pinned for it, may not run anything. A certified peer that has
// not linked since this node started cannot be judged again (its
// certificate is not known until it links): the decision made when its
// job was accepted stands, allow list included (known = false).
bool Listener::peer_may_run(const std::string& from, const std::string& submitted_with, bool& known, std::string& why) {
  // The key it links with now, else the one it submitted with (a restart
  // forgets who linked with what until the peer links again).
  std::string fp = peers_.fingerprint(from);
  if (fp.empty()) fp = submitted_with;
  auto fp_of = [](const std::string& text) {
    Key32 k;
    return key_from_text(text, k) ? key_fingerprint(k) : std::string();
  };
  std::set<std::string> revoked;
  for (auto& r : cfg_.revoked) revoked.insert(fp_of(r));
  for (auto& k : {fp, submitted_with})
    if (!k.empty() && revoked.count(k)) {
      why = "the key of " + from + " (" + k + ") is revoked";
      return false;
    }
  if (cfg_.peers.count(from)) {
    auto pk = cfg_.peer_keys.find(from);
    if (pk == cfg_.peer_keys.end() || pk->second.empty()) return true;  // certified, at a configured address
    std::set<std::string> pinned;
    for (auto& k : pk->second)
      if (!revoked.count(fp_of(k))) pinned.insert(fp_of(k));
    if (pinned.empty()) {
      why = "every key pinned for " + from + " is revoked";
      return false;
    }
    if (!fp.empty() && !pinned.count(fp)) {
      why = "the key " + from + " linked with (" + fp + ") is no longer pinned for it";
      return false;
    }
    return true;
  }
  if (peers_.learnt_address(from)) return true;  // certified, linked since this node started
  if (!fp.empty() || cfg_.trusted_cas.empty()) {
    why = from + " is no longer a peer of " + cfg_.node;
    return false;
  }
  known = false;
  return true;
}

// SIGHUP: the configuration file again, checked as at start; a bad one is
// refused with one line per mistake and the running one stays. Peers,
// groups, jobs, allow lists, log level and keys take effect at once; what
// the node is (its name, address and state) needs a restart.
void Listener::reload() {
  if (stopping_) return;
  std::string path = cfg_.path;
  if (path.empty()) {
    log_error("SIGHUP: no configuration file to re-read (the listener runs on the embedded defaults)");
    return;
  }
  Config next;
  std::vector<std::string> errors;
  load_config(path, next, errors);
  auto trust = std::make_unique<Trust>();
  if (errors.empty()) {
    auto fixed = [&](const char* key, const std::string& was, const std::string& now) {
      if (was != now)
        errors.push_back(path + ": " + key + ": cannot change from '" + was + "' to '" + now +
                         "' while the listener runs (restart it)");
    };
    fixed("node", cfg_.node, next.node);
    fixed("listen", cfg_.listen.str(), next.listen.str());
    fixed("state_dir", cfg_.state_dir, next.state_dir);
    PathOwners owners;
    std::string err;
    if (!node_file_owners(next, true, owners, err))
      errors.push_back(err);
    else
      check_node_files(next, owners, errors);
    load_trust(next, *trust, errors);
  }
  std::string werr;
  if (errors.empty() && !write_running_config(next, werr)) errors.push_back(werr);
  if (!errors.empty()) {
    for (auto& e : errors) log_error("SIGHUP: " + e);
    log_error("SIGHUP: configuration not reloaded (" + std::to_string(errors.size()) +
              (errors.size() == 1 ? " mistake" : " mistakes") + "); the running one stays");
    return;
  }
  Config old = cfg_;
  o_.cfg = std::move(next);
  old_trusts_.push_back(std::move(trust_));
  trust_ = std::move(trust);
  port_.set_trust(*trust_);
  Level lv = Level::info;
  parse_level(cfg_.log_level, lv);
  log_init({"jsd-listener", lv, cfg_.syslog});
  router_.forget_targets();
  reload_links(old);
  start_metrics_file();
  log_info("configuration reloaded from " + path + ": " + std::to_string(cfg_.peers.size()) + " peers, " +
           std::to_string(cfg_.jobs.size()) + " jobs");
}

// Links to peers that stay as they were are not touched. A removed peer's
// calls are answered with an error and its links close; a peer whose
// address or keys changed links again (its new client reads the new file).
void Listener::reload_links(const Config& old) {
  auto keys_of = [](const Config& c, const std::string& n) {
    auto it = c.peer_keys.find(n);
    return it == c.peer_keys.end() ? std::vector<std::string>() : it->second;
  };
  // Who may link at all changed: every link is made again under the new rules.
  bool all = old.trusted_cas != cfg_.trusted_cas || old.revoked != cfg_.revoked || old.psk_file != cfg_.psk_file;
  std::set<std::string> changed;
  if (all) {
    for (auto& k : clients_.keys()) changed.insert(k);
    for (auto& p : servers_.peers()) changed.insert(p);
  }
  for (auto& [name, addr] : old.peers) {
    auto now = cfg_.peers.find(name);
    if (now == cfg_.peers.end()) {
      log_info("peer " + name + " left the configuration: its links close");
      router_.peer_removed(name);
      clients_.remove(name);
      servers_.retire_peer(name);
      changed.erase(name);
    } else if (now->second.str() != addr.str() || keys_of(old, name) != keys_of(cfg_, name)) {
      changed.insert(name);
    }
  }
  for (auto& name : changed) {
    log_info("peer " + name + ": its address or keys changed: it links again");
    clients_.restart(name);
    servers_.retire_peer(name);
  }
  for (auto& peer : cfg_.connect_at_startup) clients_.ensure(peer);
}

std::string Listener::status() {
  nlohmann::json links = clients_.links_json();
  for (auto& l : servers_.links_json()) links.push_back(l);
  nlohmann::json j = {{"node", cfg_.node},           {"version", JSD_VERSION},      {"pid", getpid()},
                      {"listen", cfg_.listen.str()}, {"since", iso_time(started_)}, {"links", links}};
  j["peers"] = peers_.directory_json(links);
  j["jobs"] = jobs_.status_json();
  return dump_json(j);
}

std::string Listener::metrics() {
  MetricsSnapshot s;
  s.node = cfg_.node;
  s.version = JSD_VERSION;
  s.started = started_;
  s.links = clients_.links_json();
  for (auto& l : servers_.links_json()) s.links.push_back(l);
  s.handshakes = port_.outcomes();
  s.audit = audit_.decisions();
  nlohmann::json jobs = jobs_.status_json();
  s.jobs_running = jobs_.running();
  s.jobs_queued = jobs.value("queued", size_t(0));
  s.fds_open = open_descriptors();
  s.fds_limit = descriptor_limit();
  return metrics_.render(s);
}

// metrics_file for node_exporter's textfile collector: written whole
// (temporary file and rename, so a scrape never reads half of it), 0644 so
// that node_exporter's user reads it, every metrics_interval_s.
void Listener::write_metrics_file() {
  std::string err;
  if (write_file_atomic(cfg_.metrics_file, metrics(), false, err, ".tmp", 0644)) {
    metrics_written_ = cfg_.metrics_file;
  } else if (!metrics_failed_) {
    log_warn("metrics_file: " + err + " (said once until it works again)");
  }
  metrics_failed_ = !err.empty();
}

void Listener::start_metrics_file() {
  if (!metrics_written_.empty() && metrics_written_ != cfg_.metrics_file) {
    unlink(metrics_written_.c_str());  // a reload moved or ended it
    metrics_written_.clear();
  }
  metrics_timer_.reset();
  if (cfg_.metrics_file.empty()) return;
  metrics_timer_ = std::make_unique<Timer>(loop_);
  uint64_t ms = uint64_t(cfg_.metrics_interval_s) * 1000;
  write_metrics_file();
  metrics_timer_->start(
      ms, [this] { write_metrics_file(); }, ms);
}

// The service manager (systemd, Type=notify) learns that the node answers
// (READY=1), that it stops (STOPPING=1), and how many links are up, which
// `systemctl status` shows. Not run by one: nothing happens.
void Listener::tell_manager(const std::string& state) {
  if (!notify_.enabled()) return;
  size_t up = 0, all = 0;
  auto count = [&](const nlohmann::json& links) {
    for (auto& l : links) {
      ++all;
      up += l.value("state", "") == "up";
    }
  };
  count(clients_.links_json());
  count(servers_.links_json());
  std::string err;
  if (!notify_.send(state + "STATUS=" + std::to_string(up) + " of " + std::to_string(all) + " links up", err) &&
      !notify_failed_)
    log_warn(err + " (said once)");
  notify_failed_ = notify_failed_ || !err.empty();
}

void Listener::shutdown(const std::string& why) {
  if (stopping_) return;
  stopping_ = true;
  tell_manager("STOPPING=1\n");
  log_info("stopping (" + why + "): ending " + std::to_string(clients_.live() + servers_.live()) + " children");
  port_.close();
  if (control_) {
    control_->discard();
    control_ = nullptr;
  }
  // Only ours to remove: a listener that failed to start must not take
  // the socket away from the one that is running.
  if (control_bound_) unlink(cfg_.control_socket().c_str());
  for (auto& [id, s] : std::unordered_map<uint64_t, Stream*>(tools_)) s->close();
  expire_timer_.reset();
  // A stopped node's metrics would say its links are up: its file goes,
  // and the jsd_ series with it (absent() alerts on that).
  metrics_timer_.reset();
  if (!metrics_written_.empty()) unlink(metrics_written_.c_str());
  metrics_written_.clear();
  // Children that ignore SIGTERM get SIGKILL: nothing is left behind. A
  // link process ends at once (SIGCONT wakes a stopped one); a job has its
  // job_kill_grace_s from its own run, and the backstop here waits for that
  // only while jobs run: the stop takes what its children need, no more.
  // (Armed first: with nothing left to end, stop_all() finishes the stop.)
  kill_timer_ = std::make_unique<Timer>(loop_);
  kill_timer_->start(kLinkStopMs, [this] {
    clients_.kill();
    servers_.kill();
  });
  if (jobs_.running() > 0) {
    job_kill_timer_ = std::make_unique<Timer>(loop_);
    job_kill_timer_->start(uint64_t(cfg_.job_kill_grace_s * 1000) + 1000, [this] {
      jobs_.kill_all();
      // A supervisor that does not pass the SIGKILL on in this time is
      // hung: the node stops anyway, killing the jobs itself.
      abandon_timer_ = std::make_unique<Timer>(loop_);
      abandon_timer_->start(kSupervisorAnswerMs, [this] {
        if (size_t n = jobs_.abandon())
          log_error("the job supervisor does not answer: " + std::to_string(n) +
                    " job(s) killed without it; their ends are settled at the next start");
        maybe_finish_shutdown();
      });
    });
  }
  clients_.stop();
  servers_.stop();
  jobs_.stop_all();
  maybe_finish_shutdown();
}

void Listener::maybe_finish_shutdown() {
  if (!stopping_ || stopped_ || clients_.live() > 0 || servers_.live() > 0 || jobs_.running() > 0) return;
  stopped_ = true;
  kill_timer_.reset();
  job_kill_timer_.reset();
  abandon_timer_.reset();
  clients_.clear();
  servers_.clear();
  sig_term_.reset();
  sig_int_.reset();
  sig_hup_.reset();
  log_info("stopped");
  // Nothing of the node's is left to finish: what still has a handle open
  // (a timer for the refusal log, a tool's unread replies) must not keep the
  // process for seconds; close_loop() closes it.
  uv_stop(loop_);
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
