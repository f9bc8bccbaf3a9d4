// Node configuration: one JSON file per node. Every key has an embedded
// default, so a node starts with no file at all. Validation reports one line
// per mistake and the node refuses to start on any of them.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "json_out.h"

namespace jsd {

struct Endpoint {
  std::string host;
  uint16_t port = 0;
  std::string str() const;
};
// "host:port" or "[v6]:port"; host must be a numeric address.
bool parse_endpoint(const std::string& s, Endpoint& out, std::string& err);

struct JobDef {
  std::vector<std::string> command;
  std::string cwd;
  std::map<std::string, std::string> env;
  double timeout_s = 0;  // 0: no limit
  int max_parallel = 4;
  // Who may run it: peer names and @groups. Unset: every authenticated peer.
  bool has_allow = false;
  std::vector<std::string> allow;
  std::string description = {};  // one line for jsd-submit --jobs (optional)
  bool reads_stdin = false;      // it reads standard input (jsd-submit -i); else /dev/null
};

struct Config {
  std::string path;  // file it came from; empty for embedded defaults
  std::string text;  // what that file held when it was read
  // The listener's copy of the configuration it runs (STATE_DIR/config.running),
  // which its link processes read: the file may have been edited since, or
  // refused at a reload.
  std::string running_path;
  std::string node;
  Endpoint listen;
  uint16_t port_min = 50000, port_max = 59999;
  std::string state_dir;
  // The user the listener runs as (a name or uid). Tools accept a control
  // socket served by root, by themselves or by this user; unset, by the
  // owner of state_dir. Files the node trusts belong to root or this user.
  std::string user;
  std::string key_file;
  std::map<std::string, Endpoint> peers;  // name -> address
  // Pinned public keys (base64 text), several during a key rollover. A peer
  // without any is authenticated by a certificate from trusted_cas.
  std::map<std::string, std::vector<std::string>> peer_keys;
  // Peers reached through a gateway (no address, no link of their own):
  // name -> the peer their requests go to next ("via"), itself a peer with
  // an address or another via peer. Their keys are in peer_keys.
  std::map<std::string, std::string> via;
  // This node relays requests between its peers ("gateway": true).
  bool gateway = false;
  // A relayed request sealed further than this from the target's clock is
  // refused (its replay window).
  int relay_window_s = 300;
  std::string psk_file;                                    // optional second factor (Noise psk)
  std::string cert_file;                                   // this node's certificate
  std::vector<std::string> trusted_cas;                    // CA public keys (base64)
  std::vector<std::string> revoked;                        // node public keys refused always
  std::map<std::string, std::vector<std::string>> groups;  // group -> peer names
  size_t audit_max_bytes = 16 << 20;                       // audit.log is rotated past this
  std::vector<std::string> connect_at_startup;
  size_t max_frame = 1 << 20;
  int handshake_timeout_ms = 5000;
  int heartbeat_ms = 1000;
  int dead_after_ms = 3000;
  // An idle link (nothing waiting for an answer) is probed this often: its
  // processes sleep in between (issue 20: no wake-up per link per second).
  int idle_heartbeat_ms = 15000;
  // Link processes are forked by a spawner started once (issue 20), not
  // each started by exec.
  bool link_spawner = true;
  int rekey_after_s = 120;                          // a link's keys are replaced at least this often
  uint64_t rekey_after_frames = uint64_t(1) << 20;  // ... and after this many frames each way
  // The node port's admission (NodePortLimits): handshakes pending from one
  // source address, and new connections per second from one (bursts of twice).
  size_t handshakes_per_address = 32;
  int handshake_rate_per_address = 50;
  int reconnect_min_ms = 20;
  int reconnect_max_ms = 2000;
  std::string log_level = "info";
  bool syslog = false;
  std::map<std::string, JobDef> jobs;
  std::map<std::string, bool> allow_adhoc;  // peer or @group -> allowed ("*" for all)
  size_t job_records_keep = 1000;           // finished job records kept, newest first
  long job_records_max_age_s = 7 * 86400;   // finished records older than this go
  double job_kill_grace_s = 5;              // SIGTERM -> SIGKILL on timeout/cancel
  size_t job_output_keep = 1 << 20;         // bytes of each output stream kept per job, newest
  int job_supervisor_slow_s = 5;            // a request the job supervisor has not answered this long: it is slow
  // A jsd-client with nothing queued ends after this long without use; a
  // call queued this long for a target that never came up is answered
  // with an error.
  int idle_client_s = 300;
  // The node's metrics (Prometheus text format), written atomically to
  // this file every metrics_interval_s for node_exporter's textfile
  // collector; empty: not written.
  std::string metrics_file;
  int metrics_interval_s = 15;

  std::string control_socket() const { return state_dir + "/control.sock"; }
  std::string audit_log() const { return state_dir + "/audit.log"; }
};

// The embedded defaults (node = short host name, etc.).
Config default_config();

// Picks the file: explicit path, else $JSD_CONFIG, else /etc/jsd/jsd.conf if
// it exists, else none (embedded defaults). Returns false with one message
// per mistake in errors. json_read (when given) tells whether out holds what
// the file says, mistakes in its keys aside (the file was JSON), or the
// embedded defaults: whether it is worth checking further (-t).
bool load_config(const std::string& explicit_path, Config& out, std::vector<std::string>& errors,
                 bool* json_read = nullptr);
// The text of a configuration file (JSON) onto out. Never throws: a value of
// the wrong type, out of range or not representable (1e1100) is one message
// naming its key.
bool parse_config_text(std::string_view text, Config& out, std::vector<std::string>& errors);
// The same from parsed JSON. Never throws.
bool parse_config(const nlohmann::json& j, Config& out, std::vector<std::string>& errors);

// The shape of a key as text: 44 characters of standard base64 (32 bytes).
bool looks_like_key(const std::string& s);

// A NODE argument: a peer name from the config, this node's own name, or
// host:port. name is empty when only an address is known.
struct Target {
  std::string name;
  Endpoint addr;
  // A via peer: the direct peer its requests go to first (its gateway,
  // the end of a via chain); empty for a node linked directly.
  std::string via = {};
  std::string key() const { return name.empty() ? addr.str() : name; }
  // The link a request to it goes over.
  std::string link() const { return via.empty() ? key() : via; }
};
// The direct peer a via chain from name ends at ("" with err: unknown
// peer, a loop, or longer than kMaxRelayHops).
std::string first_hop(const Config& c, const std::string& name, std::string& err);
bool resolve_target(const Config& c, const std::string& arg, Target& out, std::string& err);

nlohmann::json config_to_json(const Config& c);

}  // namespace jsd
