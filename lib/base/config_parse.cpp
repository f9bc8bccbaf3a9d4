// Reading a configuration's JSON into a Config: every value through a typed
// accessor that never throws and reports one line naming its key; then the
// checks across keys. (config.cpp has the endpoints, defaults, files and
// targets.)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "config.h"
#include "config_values.h"
#include "jsd_limits.h"
#include "json_read.h"
#include "log.h"
#include "names.h"
#include "node_name.h"
#include "safe_path.h"

namespace jsd {

using nlohmann::json;

namespace {

using namespace config_values;

// A name taken from the file, for a message: no control characters.
std::string nm(const std::string& s) { return printable(s, 80); }

void parse_job(const std::string& name, const json& j, JobDef& d, Errors& errors) {
  std::string k = "jobs." + nm(name);
  if (!valid_name(name)) errors.push_back(k + ": job names use only letters, digits and . _ - :");
  if (!j.is_object()) {
    errors.push_back(k + ": must be an object");
    return;
  }
  static const std::set<std::string> known = {"command",      "cwd",   "env",         "timeout_s",
                                              "max_parallel", "allow", "description", "stdin"};
  for (auto& [key, v] : j.items())
    if (!known.count(key)) errors.push_back(k + ": unknown key '" + nm(key) + "'");
  if (!j.contains("command")) {
    errors.push_back(k + ".command: missing (an argv array such as [\"/bin/echo\", \"hello\"])");
  } else if (const json& c = j["command"]; !c.is_array() || c.empty()) {
    errors.push_back(k + ".command: must be a non-empty array of strings (argv)");
  } else if (get_strings(c, k + ".command", d.command, errors, "argv") && d.command[0].empty()) {
    errors.push_back(k + ".command: argv[0] is empty");
  }
  if (j.contains("cwd")) get_string(j["cwd"], k + ".cwd", d.cwd, errors);
  if (j.contains("description") && get_string(j["description"], k + ".description", d.description, errors) &&
      (d.description.size() > 1024 || d.description.find_first_of(std::string("\0\n\r", 3)) != std::string::npos))
    errors.push_back(k + ".description: must be one line of at most 1024 bytes");
  if (j.contains("env")) {
    if (!j["env"].is_object()) {
      errors.push_back(k + ".env: must be an object of strings");
    } else {
      for (auto& [ek, ev] : j["env"].items()) {
        std::string val;
        if (ek.find('\0') != std::string::npos || ek.find('=') != std::string::npos || ek.empty())
          errors.push_back(k + ".env: '" + nm(ek) + "' is not a variable name");
        else if (ek.rfind("JSD_", 0) == 0)  // the job would silently get jsd's value instead (job_run.cpp)
          errors.push_back(k + ".env: '" + nm(ek) + "' is reserved: jsd sets the JSD_* variables itself");
        else if (get_string(ev, k + ".env." + nm(ek), val, errors))
          d.env[ek] = val;
      }
    }
  }
  // The timer counts milliseconds in 64 bits: ten years is plenty.
  if (j.contains("timeout_s"))
    get_number(j["timeout_s"], k + ".timeout_s", 0, 315360000, "seconds", d.timeout_s, errors);
  if (j.contains("max_parallel")) get_int(j["max_parallel"], k + ".max_parallel", 1, 10000, d.max_parallel, errors);
  if (j.contains("stdin")) get_bool(j["stdin"], k + ".stdin", d.reads_stdin, errors);
  if (j.contains("allow")) {
    d.has_allow = true;
    get_strings(j["allow"], k + ".allow", d.allow, errors, "peer names and @groups");
  }
}

void parse_peer(const std::string& name, const json& v, Config& c, Errors& errors) {
  std::string k = "peers." + name, addr, err;
  if (v.is_string()) {
    if (!get_string(v, k, addr, errors)) return;
  } else if (v.is_object()) {
    for (auto& [key, x] : v.items())
      if (key != "address" && key != "public_key" && key != "via")
        errors.push_back(k + ": unknown key '" + nm(key) + "'");
    bool via = v.contains("via");
    if (via && v.contains("address")) {
      errors.push_back(k +
                       ": \"via\" and \"address\" both given: a peer is reached either at its address or "
                       "through the peer named by via, not both");
      return;
    }
    if (!via && !v.contains("address")) {
      errors.push_back(k + ".address: missing (\"host:port\", or \"via\": PEER for a peer reached through a gateway)");
      return;
    }
    if (via) {
      std::string gw;
      if (!get_string(v["via"], k + ".via", gw, errors)) return;
      if (!valid_node_name(gw)) {
        errors.push_back(k + ".via: '" + nm(gw) + "' is not a node name (" + kNodeNameRule + ")");
        return;
      }
      c.via[name] = gw;
    } else if (!get_string(v["address"], k + ".address", addr, errors)) {
      return;
    }
    if (v.contains("public_key")) {
      std::vector<std::string> keys;
      const json& pk = v["public_key"];
      if (pk.is_string()) {
        keys.emplace_back();
        if (!get_string(pk, k + ".public_key", keys.back(), errors)) return;
      } else if (!get_strings(pk, k + ".public_key", keys, errors, "public keys")) {
        return;
      }
      for (auto& key : keys)
        if (!looks_like_key(key))
          errors.push_back(k + ".public_key: '" + nm(key) +
                           "' is not a public key (44 characters of base64, as jsd-listener --gen-key prints)");
      if (keys.empty()) errors.push_back(k + ".public_key: empty list");
      c.peer_keys[name] = keys;
    }
  } else {
    errors.push_back(k + ": must be \"host:port\" or {\"address\": \"host:port\", \"public_key\": \"KEY\"}");
    return;
  }
  if (c.via.count(name)) return;
  Endpoint e;
  if (!parse_endpoint(addr, e, err))
    errors.push_back(k + ": " + err);
  else
    c.peers[name] = e;
}

void parse_port_range(const json& r, Config& c, Errors& errors) {
  if (!r.is_array() || r.size() != 2) {
    errors.push_back("port_range: must be [first, last], two port numbers");
    return;
  }
  uint16_t a = 0, b = 0;
  bool ok = get_int(r[0], "port_range: first", 1, 65535, a, errors);
  ok = get_int(r[1], "port_range: last", 1, 65535, b, errors) && ok;
  if (!ok) return;
  if (a > b) {
    errors.push_back("port_range: [" + std::to_string(a) + ", " + std::to_string(b) +
                     "] is not a range (first must not exceed last)");
    return;
  }
  c.port_min = a;
  c.port_max = b;
}

const std::set<std::string> kKnownKeys = {"node",
                                          "listen",
                                          "port_range",
                                          "state_dir",
                                          "user",
                                          "key_file",
                                          "peers",
                                          "allow_unknown_peers",
                                          "connect_at_startup",
                                          "max_frame",
                                          "handshake_timeout_ms",
                                          "heartbeat_ms",
                                          "dead_after_ms",
                                          "idle_heartbeat_ms",
                                          "rekey_after_s",
                                          "rekey_after_frames",
                                          "handshakes_per_address",
                                          "handshake_rate_per_address",
                                          "reconnect_min_ms",
                                          "reconnect_max_ms",
                                          "log_level",
                                          "syslog",
                                          "link_spawner",
                                          "jobs",
                                          "allow_adhoc",
                                          "job_records_keep",
                                          "job_records_max_age_s",
                                          "job_kill_grace_s",
                                          "job_output_keep",
                                          "job_supervisor_slow_s",
                                          "idle_client_s",
                                          "psk_file",
                                          "cert_file",
                                          "trusted_cas",
                                          "revoked",
                                          "groups",
                                          "audit_max_bytes",
                                          "metrics_file",
                                          "metrics_interval_s",
                                          "gateway",
                                          "relay_window_s"};

// Each key on its own.
void parse_keys(const json& j, Config& c, Errors& errors) {
  for (auto& [k, v] : j.items())
    if (!kKnownKeys.count(k)) errors.push_back("unknown key '" + nm(k) + "'");

  bool state_dir_set = j.contains("state_dir");
  if (j.contains("node") && get_string(j["node"], "node", c.node, errors) && !valid_node_name(c.node))
    errors.push_back("node: '" + nm(c.node) + "' is not a node name (" + kNodeNameRule + ")");
  if (!state_dir_set)
    c.state_dir = default_config().state_dir.substr(0, default_config().state_dir.rfind('/')) + "/" + c.node;
  if (j.contains("listen")) {
    std::string s, err;
    if (get_string(j["listen"], "listen", s, errors) && !parse_endpoint(s, c.listen, err))
      errors.push_back("listen: " + err);
  }
  if (j.contains("port_range")) parse_port_range(j["port_range"], c, errors);
  if (state_dir_set && get_string(j["state_dir"], "state_dir", c.state_dir, errors) &&
      (c.state_dir.empty() || c.state_dir[0] != '/'))
    errors.push_back("state_dir: must be an absolute path");
  uid_t uid = 0;
  if (j.contains("user") && get_string(j["user"], "user", c.user, errors) && !user_id(c.user, uid))
    errors.push_back("user: no such user '" + nm(c.user) + "'");
  if (j.contains("key_file") && get_string(j["key_file"], "key_file", c.key_file, errors) && (c.key_file.empty()))
    errors.push_back("key_file: must not be empty");
  if (j.contains("peers")) {
    if (!j["peers"].is_object()) {
      errors.push_back("peers: must be an object of name -> {\"address\": \"host:port\", \"public_key\": \"KEY\"}");
    } else {
      for (auto& [name, v] : j["peers"].items()) {
        if (!valid_node_name(name))
          errors.push_back("peers: '" + nm(name) + "' is not a node name (" + kNodeNameRule + ")");
        else
          parse_peer(name, v, c, errors);
      }
    }
  }
  // Every node has its own key now: a switch that let any holder of the
  // cluster key in under any name has no safe meaning any more.
  if (j.contains("allow_unknown_peers"))
    errors.push_back(
        "allow_unknown_peers: no longer supported: pin the peer's public_key in peers, or certify it with a CA in "
        "trusted_cas");
  for (const char* key : {"psk_file", "cert_file"}) {
    std::string v;
    if (j.contains(key) && get_string(j[key], key, v, errors)) {
      if (v.empty()) errors.push_back(std::string(key) + ": must not be empty");
      (std::string(key) == "psk_file" ? c.psk_file : c.cert_file) = v;
    }
  }
  for (const char* key : {"trusted_cas", "revoked"}) {
    if (!j.contains(key)) continue;
    auto& list = std::string(key) == "revoked" ? c.revoked : c.trusted_cas;
    if (get_strings(j[key], key, list, errors, "public keys"))
      for (auto& v : list)
        if (!looks_like_key(v))
          errors.push_back(std::string(key) + ": '" + nm(v) + "' is not a public key (44 characters of base64)");
  }
  if (j.contains("groups")) {
    if (!j["groups"].is_object())
      errors.push_back("groups: must be an object of group -> [peer names]");
    else
      for (auto& [g, v] : j["groups"].items()) {
        if (!valid_name(g))
          errors.push_back("groups: '" + nm(g) + "' is not a valid group name");
        else if (get_strings(v, "groups." + g, c.groups[g], errors, "peer names"))
          for (auto& n : c.groups[g])
            if (!valid_node_name(n))
              errors.push_back("groups." + g + ": '" + nm(n) + "' is not a node name (" + kNodeNameRule + ")");
      }
  }
  if (j.contains("audit_max_bytes"))
    get_int(j["audit_max_bytes"], "audit_max_bytes", 4096, 1LL << 40, c.audit_max_bytes, errors);
  if (j.contains("connect_at_startup"))
    get_strings(j["connect_at_startup"], "connect_at_startup", c.connect_at_startup, errors, "peer names");
  if (j.contains("max_frame")) get_int(j["max_frame"], "max_frame", 1024, 64 << 20, c.max_frame, errors);
  if (j.contains("handshake_timeout_ms"))
    get_int(j["handshake_timeout_ms"], "handshake_timeout_ms", 100, 600000, c.handshake_timeout_ms, errors);
  if (j.contains("heartbeat_ms")) get_int(j["heartbeat_ms"], "heartbeat_ms", 50, 600000, c.heartbeat_ms, errors);
  if (j.contains("idle_client_s")) get_int(j["idle_client_s"], "idle_client_s", 1, 604800, c.idle_client_s, errors);
  if (j.contains("rekey_after_s")) get_int(j["rekey_after_s"], "rekey_after_s", 1, 86400, c.rekey_after_s, errors);
  if (j.contains("rekey_after_frames"))
    get_int(j["rekey_after_frames"], "rekey_after_frames", 16, 1 << 20, c.rekey_after_frames, errors);
  if (j.contains("handshakes_per_address"))
    get_int(j["handshakes_per_address"], "handshakes_per_address", 1, 512, c.handshakes_per_address, errors);
  if (j.contains("handshake_rate_per_address"))
    get_int(j["handshake_rate_per_address"], "handshake_rate_per_address", 1, 100000, c.handshake_rate_per_address,
            errors);
  if (j.contains("dead_after_ms")) get_int(j["dead_after_ms"], "dead_after_ms", 100, 3600000, c.dead_after_ms, errors);
  if (j.contains("idle_heartbeat_ms"))
    get_int(j["idle_heartbeat_ms"], "idle_heartbeat_ms", 50, 3600000, c.idle_heartbeat_ms, errors);
  else  // a configuration that slowed heartbeat_ms down is not made wrong by this default
    c.idle_heartbeat_ms = std::max(c.idle_heartbeat_ms, c.heartbeat_ms);
  if (j.contains("reconnect_min_ms"))
    get_int(j["reconnect_min_ms"], "reconnect_min_ms", 1, 600000, c.reconnect_min_ms, errors);
  if (j.contains("reconnect_max_ms"))
    get_int(j["reconnect_max_ms"], "reconnect_max_ms", 1, 3600000, c.reconnect_max_ms, errors);
  if (j.contains("log_level")) {
    Level lv;
    if (get_string(j["log_level"], "log_level", c.log_level, errors) && !parse_level(c.log_level, lv))
      errors.push_back("log_level: '" + nm(c.log_level) + "' is not one of debug, info, warn, error");
  }
  if (j.contains("syslog")) get_bool(j["syslog"], "syslog", c.syslog, errors);
  if (j.contains("link_spawner")) get_bool(j["link_spawner"], "link_spawner", c.link_spawner, errors);
  if (j.contains("gateway")) get_bool(j["gateway"], "gateway", c.gateway, errors);
  if (j.contains("relay_window_s")) get_int(j["relay_window_s"], "relay_window_s", 5, 86400, c.relay_window_s, errors);
  if (j.contains("metrics_file") && get_string(j["metrics_file"], "metrics_file", c.metrics_file, errors) &&
      (c.metrics_file.empty() || c.metrics_file[0] != '/'))
    errors.push_back("metrics_file: must be an absolute path");
  if (j.contains("metrics_interval_s"))
    get_int(j["metrics_interval_s"], "metrics_interval_s", 1, 3600, c.metrics_interval_s, errors);
  if (j.contains("jobs")) {
    if (!j["jobs"].is_object())
      errors.push_back("jobs: must be an object of name -> job");
    else
      for (auto& [name, v] : j["jobs"].items()) parse_job(name, v, c.jobs[name], errors);
  }
  if (j.contains("allow_adhoc")) {
    std::vector<std::string> names;
    if (get_strings(j["allow_adhoc"], "allow_adhoc", names, errors, "peer names, @groups or \"*\""))
      for (auto& n : names) c.allow_adhoc[n] = true;
  }
  if (j.contains("job_records_keep"))
    get_int(j["job_records_keep"], "job_records_keep", 1, 10000000, c.job_records_keep, errors);
  if (j.contains("job_records_max_age_s"))
    get_int(j["job_records_max_age_s"], "job_records_max_age_s", 60, 100LL * 365 * 86400, c.job_records_max_age_s,
            errors);
  if (j.contains("job_kill_grace_s"))
    get_number(j["job_kill_grace_s"], "job_kill_grace_s", 0, 3600, "seconds", c.job_kill_grace_s, errors);
  if (j.contains("job_output_keep"))
    get_int(j["job_output_keep"], "job_output_keep", 4096, 1LL << 34, c.job_output_keep, errors);
  if (j.contains("job_supervisor_slow_s"))
    get_int(j["job_supervisor_slow_s"], "job_supervisor_slow_s", 1, 86400, c.job_supervisor_slow_s, errors);
}

// The checks across keys.
void check_refs(const Config& c, Errors& errors) {
  if (c.dead_after_ms <= c.heartbeat_ms)
    errors.push_back("dead_after_ms (" + std::to_string(c.dead_after_ms) + ") must be larger than heartbeat_ms (" +
                     std::to_string(c.heartbeat_ms) + ")");
  if (c.idle_heartbeat_ms < c.heartbeat_ms)
    errors.push_back("idle_heartbeat_ms (" + std::to_string(c.idle_heartbeat_ms) +
                     ") must not be smaller than heartbeat_ms (" + std::to_string(c.heartbeat_ms) + ")");
  if (c.reconnect_min_ms > c.reconnect_max_ms) errors.push_back("reconnect_min_ms must not exceed reconnect_max_ms");
  for (auto& n : c.connect_at_startup)
    if (!c.peers.count(n)) errors.push_back("connect_at_startup: '" + nm(n) + "' is not in peers");
  if (c.peers.count(c.node) || c.via.count(c.node)) errors.push_back("peers: '" + c.node + "' is this node's own name");
  // Every via chain ends at a peer with an address, without a loop.
  for (auto& [name, gw] : c.via) {
    std::string err;
    if (first_hop(c, name, err).empty()) errors.push_back("peers." + name + ".via: " + err);
  }
  // Names in allow lists: a peer, a group, "*" (adhoc only); a name known
  // only from certificates cannot be checked here and is accepted.
  auto check_allow = [&](const std::string& where, const std::string& n, bool star) {
    if (n.size() > 1 && n[0] == '@') {
      // With a CA, a group may exist only in certificates.
      if (n != "@all" && !c.groups.count(n.substr(1)) && c.trusted_cas.empty())
        errors.push_back(where + ": group '" + nm(n.substr(1)) +
                         "' is not in groups (and no trusted_cas could certify it)");
    } else if (!(star && n == "*") && !valid_name(n)) {
      errors.push_back(where + ": '" + nm(n) + "' is not a node name or @group");
    }
  };
  for (auto& [name, d] : c.jobs)
    for (auto& n : d.allow) check_allow("jobs." + nm(name) + ".allow", n, false);
  for (auto& [n, on] : c.allow_adhoc) check_allow("allow_adhoc", n, true);
}

// The key being read when the JSON parser gave up, from the parser's events:
// "jobs.backup.timeout_s" for a number it cannot represent.
class KeyTracker {
 public:
  bool on_event(int depth, json::parse_event_t event, const json& parsed) {
    switch (event) {
      case json::parse_event_t::key:
        path_.resize(static_cast<size_t>(depth > 0 ? depth - 1 : 0));
        path_.push_back(parsed.is_string() ? parsed.get<std::string>() : "?");
        break;
      case json::parse_event_t::object_end:
        path_.resize(static_cast<size_t>(depth > 0 ? depth : 0));
        break;
      default:
        break;
    }
    return true;
  }
  std::string key() const {
    std::string s;
    for (auto& p : path_) s += (s.empty() ? "" : ".") + nm(p);
    return s;
  }

 private:
  std::vector<std::string> path_;
};

}  // namespace

bool parse_config(const json& j, Config& c, std::vector<std::string>& errors) {
  size_t before = errors.size();
  if (!j.is_object()) {
    errors.push_back("the configuration must be a JSON object");
    return false;
  }
  // The accessors do not throw; this is the boundary that makes sure.
  try {
    parse_keys(j, c, errors);
    check_refs(c, errors);
  } catch (const std::exception& e) {
    errors.push_back(std::string("cannot read the configuration: ") + printable(e.what()));
  }
  return errors.size() == before;
}

bool parse_config_text(std::string_view text, Config& c, std::vector<std::string>& errors) {
  // The same depth bound as every other JSON read from outside (json_read.h).
  if (!json_depth_within(text, kMaxJsonDepth)) {
    errors.push_back("not valid JSON: nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    return false;
  }
  KeyTracker keys;
  json j;
  try {
    j = json::parse(text,
                    [&](int depth, json::parse_event_t ev, json& parsed) { return keys.on_event(depth, ev, parsed); });
  } catch (const json::out_of_range& e) {
    // 406: a number beyond double's range (1e1100).
    std::string what = e.what();
    auto p = what.find("number overflow parsing '");
    std::string num = p == std::string::npos ? "" : what.substr(p + 25, what.find('\'', p + 25) - p - 25);
    std::string key = keys.key();
    errors.push_back((key.empty() ? std::string("a value") : key) + ": " +
                     (num.empty() ? printable(what) : "the number " + printable(num, 40) + " is out of range"));
    return false;
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (auto p = what.find("parse error"); p != std::string::npos) what = what.substr(p);
    errors.push_back("not valid JSON: " + printable(what));
    return false;
  }
  return parse_config(j, c, errors);
}

}  // namespace jsd
