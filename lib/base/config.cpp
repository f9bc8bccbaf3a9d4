#include "config.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "log.h"
#include "names.h"

namespace jsd {

using nlohmann::json;

std::string Endpoint::str() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

bool parse_endpoint(const std::string& s, Endpoint& out, std::string& err) {
  std::string host, port;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      err = "'" + s + "' is not [address]:port";
      return false;
    }
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string::npos) {
      err = "'" + s + "' is not address:port";
      return false;
    }
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  unsigned char buf[16];
  if (inet_pton(AF_INET, host.c_str(), buf) != 1 && inet_pton(AF_INET6, host.c_str(), buf) != 1) {
    err = "'" + host + "' is not a numeric IPv4 or IPv6 address";
    return false;
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) == 0 || std::stoul(port) > 65535) {
    err = "'" + port + "' is not a port number (1-65535)";
    return false;
  }
  out.host = host;
  out.port = static_cast<uint16_t>(std::stoul(port));
  return true;
}

Config default_config() {
  Config c;
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  std::string h = host;
  if (auto dot = h.find('.'); dot != std::string::npos) h.resize(dot);
  if (!valid_name(h)) h = "localhost";
  c.node = h;
  c.listen = {"0.0.0.0", 4455};
  bool root = geteuid() == 0;
  const char* home = getenv("HOME");
  std::string base = root || !home ? std::string("/var/lib/jsd") : std::string(home) + "/.local/state/jsd";
  c.state_dir = base + "/" + c.node;
  c.key_file = root || !home ? std::string("/etc/jsd/node.key") : std::string(home) + "/.config/jsd/node.key";
  return c;
}

namespace {

template <typename T>
bool get_int(const json& v, const std::string& key, T lo, T hi, T& out, std::vector<std::string>& errors) {
  if (!v.is_number_integer()) {
    errors.push_back(key + ": must be an integer");
    return false;
  }
  auto n = v.get<long long>();
  if (n < static_cast<long long>(lo) || n > static_cast<long long>(hi)) {
    errors.push_back(key + ": " + std::to_string(n) + " is out of range " + std::to_string(lo) + "-" +
                     std::to_string(hi));
    return false;
  }
  out = static_cast<T>(n);
  return true;
}

bool get_string(const json& v, const std::string& key, std::string& out, std::vector<std::string>& errors) {
  if (!v.is_string()) {
    errors.push_back(key + ": must be a string");
    return false;
  }
  out = v.get<std::string>();
  return true;
}

bool get_strings(const json& v, const std::string& key, std::vector<std::string>& out, std::vector<std::string>& errors,
                 const std::string& what) {
  bool ok = v.is_array();
  if (ok)
    for (auto& x : v) ok = ok && x.is_string();
  if (!ok) {
    errors.push_back(key + ": must be an array of strings (" + what + ")");
    return false;
  }
  for (auto& x : v) out.push_back(x.get<std::string>());
  return true;
}

void parse_job(const std::string& name, const json& j, JobDef& d, std::vector<std::string>& errors) {
  std::string k = "jobs." + name;
  if (!valid_name(name)) errors.push_back(k + ": job names use only letters, digits and . _ - :");
  if (!j.is_object()) {
    errors.push_back(k + ": must be an object");
    return;
  }
  static const std::set<std::string> known = {"command", "cwd", "env", "timeout_s", "max_parallel", "allow"};
  for (auto& [key, v] : j.items())
    if (!known.count(key)) errors.push_back(k + ": unknown key '" + key + "'");
  if (!j.contains("command")) {
    errors.push_back(k + ".command: missing (an argv array such as [\"/bin/echo\", \"hello\"])");
  } else {
    const json& c = j["command"];
    if (!c.is_array() || c.empty()) {
      errors.push_back(k + ".command: must be a non-empty array of strings (argv)");
    } else {
      for (auto& a : c) {
        if (!a.is_string()) {
          errors.push_back(k + ".command: every element must be a string");
          d.command.clear();
          break;
        }
        d.command.push_back(a.get<std::string>());
      }
      if (!d.command.empty() && d.command[0].empty()) errors.push_back(k + ".command: argv[0] is empty");
    }
  }
  if (j.contains("cwd")) get_string(j["cwd"], k + ".cwd", d.cwd, errors);
  if (j.contains("env")) {
    if (!j["env"].is_object()) {
      errors.push_back(k + ".env: must be an object of strings");
    } else {
      for (auto& [ek, ev] : j["env"].items()) {
        if (!ev.is_string())
          errors.push_back(k + ".env." + ek + ": must be a string");
        else
          d.env[ek] = ev.get<std::string>();
      }
    }
  }
  if (j.contains("timeout_s")) {
    if (!j["timeout_s"].is_number() || j["timeout_s"].get<double>() < 0)
      errors.push_back(k + ".timeout_s: must be a number >= 0 (0 = no limit)");
    else
      d.timeout_s = j["timeout_s"].get<double>();
  }
  if (j.contains("max_parallel")) get_int(j["max_parallel"], k + ".max_parallel", 1, 10000, d.max_parallel, errors);
  if (j.contains("allow")) {
    d.has_allow = true;
    get_strings(j["allow"], k + ".allow", d.allow, errors, "peer names and @groups");
  }
}

void parse_peer(const std::string& name, const json& v, Config& c, std::vector<std::string>& errors) {
  std::string k = "peers." + name, addr, err;
  if (v.is_string()) {
    addr = v.get<std::string>();
  } else if (v.is_object()) {
    for (auto& [key, x] : v.items())
      if (key != "address" && key != "public_key") errors.push_back(k + ": unknown key '" + key + "'");
    if (!v.contains("address")) {
      errors.push_back(k + ".address: missing (\"host:port\")");
      return;
    }
    if (!get_string(v["address"], k + ".address", addr, errors)) return;
    if (v.contains("public_key")) {
      std::vector<std::string> keys;
      const json& pk = v["public_key"];
      if (pk.is_string())
        keys.push_back(pk.get<std::string>());
      else if (!get_strings(pk, k + ".public_key", keys, errors, "public keys"))
        return;
      for (auto& key : keys)
        if (!looks_like_key(key))
          errors.push_back(k + ".public_key: '" + key +
                           "' is not a public key (44 characters of base64, as jsd-listener --gen-key prints)");
      if (keys.empty()) errors.push_back(k + ".public_key: empty list");
      c.peer_keys[name] = keys;
    }
  } else {
    errors.push_back(k + ": must be \"host:port\" or {\"address\": \"host:port\", \"public_key\": \"KEY\"}");
    return;
  }
  Endpoint e;
  if (!parse_endpoint(addr, e, err))
    errors.push_back(k + ": " + err);
  else
    c.peers[name] = e;
}

}  // namespace

bool parse_config(const json& j, Config& c, std::vector<std::string>& errors) {
  size_t before = errors.size();
  if (!j.is_object()) {
    errors.push_back("the configuration must be a JSON object");
    return false;
  }
  static const std::set<std::string> known = {"node",
                                              "listen",
                                              "port_range",
                                              "state_dir",
                                              "key_file",
                                              "peers",
                                              "allow_unknown_peers",
                                              "connect_at_startup",
                                              "max_frame",
                                              "handshake_timeout_ms",
                                              "heartbeat_ms",
                                              "dead_after_ms",
                                              "rekey_after_s",
                                              "reconnect_min_ms",
                                              "reconnect_max_ms",
                                              "log_level",
                                              "syslog",
                                              "jobs",
                                              "allow_adhoc",
                                              "job_records_keep",
                                              "job_records_max_age_s",
                                              "job_kill_grace_s",
                                              "psk_file",
                                              "cert_file",
                                              "trusted_cas",
                                              "revoked",
                                              "groups",
                                              "audit_max_bytes"};
  for (auto& [k, v] : j.items())
    if (!known.count(k)) errors.push_back("unknown key '" + k + "'");

  bool state_dir_set = j.contains("state_dir");
  if (j.contains("node") && get_string(j["node"], "node", c.node, errors) && !valid_name(c.node))
    errors.push_back("node: '" + c.node + "' is not a valid name (1-64 of letters, digits, . _ - :)");
  if (!state_dir_set)
    c.state_dir = default_config().state_dir.substr(0, default_config().state_dir.rfind('/')) + "/" + c.node;
  if (j.contains("listen")) {
    std::string s, err;
    if (get_string(j["listen"], "listen", s, errors) && !parse_endpoint(s, c.listen, err))
      errors.push_back("listen: " + err);
  }
  if (j.contains("port_range")) {
    const json& r = j["port_range"];
    if (!r.is_array() || r.size() != 2 || !r[0].is_number_integer() || !r[1].is_number_integer()) {
      errors.push_back("port_range: must be [first, last], two port numbers");
    } else {
      long long a = r[0].get<long long>(), b = r[1].get<long long>();
      if (a < 1 || b > 65535 || a > b)
        errors.push_back("port_range: [" + std::to_string(a) + ", " + std::to_string(b) +
                         "] is not a range within 1-65535");
      else {
        c.port_min = static_cast<uint16_t>(a);
        c.port_max = static_cast<uint16_t>(b);
      }
    }
  }
  if (state_dir_set && get_string(j["state_dir"], "state_dir", c.state_dir, errors) &&
      (c.state_dir.empty() || c.state_dir[0] != '/'))
    errors.push_back("state_dir: must be an absolute path");
  if (j.contains("key_file") && get_string(j["key_file"], "key_file", c.key_file, errors) && (c.key_file.empty()))
    errors.push_back("key_file: must not be empty");
  if (j.contains("peers")) {
    if (!j["peers"].is_object()) {
      errors.push_back("peers: must be an object of name -> {\"address\": \"host:port\", \"public_key\": \"KEY\"}");
    } else {
      for (auto& [name, v] : j["peers"].items()) {
        if (!valid_name(name))
          errors.push_back("peers: '" + name + "' is not a valid node name");
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
          errors.push_back(std::string(key) + ": '" + v + "' is not a public key (44 characters of base64)");
  }
  if (j.contains("groups")) {
    if (!j["groups"].is_object())
      errors.push_back("groups: must be an object of group -> [peer names]");
    else
      for (auto& [g, v] : j["groups"].items()) {
        if (!valid_name(g))
          errors.push_back("groups: '" + g + "' is not a valid group name");
        else if (get_strings(v, "groups." + g, c.groups[g], errors, "peer names"))
          for (auto& n : c.groups[g])
            if (!valid_name(n)) errors.push_back("groups." + g + ": '" + n + "' is not a valid node name");
      }
  }
  if (j.contains("audit_max_bytes"))
    get_int(j["audit_max_bytes"], "audit_max_bytes", size_t(4096), size_t(1) << 40, c.audit_max_bytes, errors);
  if (j.contains("connect_at_startup")) {
    const json& a = j["connect_at_startup"];
    if (!a.is_array())
      errors.push_back("connect_at_startup: must be an array of peer names");
    else
      for (auto& v : a) {
        if (!v.is_string()) {
          errors.push_back("connect_at_startup: must be an array of peer names");
          break;
        }
        c.connect_at_startup.push_back(v.get<std::string>());
      }
  }
  if (j.contains("max_frame"))
    get_int(j["max_frame"], "max_frame", size_t(1024), size_t(64 << 20), c.max_frame, errors);
  if (j.contains("handshake_timeout_ms"))
    get_int(j["handshake_timeout_ms"], "handshake_timeout_ms", 100, 600000, c.handshake_timeout_ms, errors);
  if (j.contains("heartbeat_ms")) get_int(j["heartbeat_ms"], "heartbeat_ms", 50, 600000, c.heartbeat_ms, errors);
  if (j.contains("rekey_after_s")) get_int(j["rekey_after_s"], "rekey_after_s", 1, 86400, c.rekey_after_s, errors);
  if (j.contains("dead_after_ms")) get_int(j["dead_after_ms"], "dead_after_ms", 100, 3600000, c.dead_after_ms, errors);
  if (j.contains("reconnect_min_ms"))
    get_int(j["reconnect_min_ms"], "reconnect_min_ms", 1, 600000, c.reconnect_min_ms, errors);
  if (j.contains("reconnect_max_ms"))
    get_int(j["reconnect_max_ms"], "reconnect_max_ms", 1, 3600000, c.reconnect_max_ms, errors);
  if (j.contains("log_level")) {
    Level lv;
    if (get_string(j["log_level"], "log_level", c.log_level, errors) && !parse_level(c.log_level, lv))
      errors.push_back("log_level: '" + c.log_level + "' is not one of debug, info, warn, error");
  }
  if (j.contains("syslog")) {
    if (!j["syslog"].is_boolean())
      errors.push_back("syslog: must be true or false");
    else
      c.syslog = j["syslog"].get<bool>();
  }
  if (j.contains("jobs")) {
    if (!j["jobs"].is_object())
      errors.push_back("jobs: must be an object of name -> job");
    else
      for (auto& [name, v] : j["jobs"].items()) parse_job(name, v, c.jobs[name], errors);
  }
  if (j.contains("allow_adhoc")) {
    const json& a = j["allow_adhoc"];
    std::vector<std::string> names;
    if (get_strings(a, "allow_adhoc", names, errors, "peer names, @groups or \"*\""))
      for (auto& n : names) c.allow_adhoc[n] = true;
  }
  if (j.contains("job_records_keep"))
    get_int(j["job_records_keep"], "job_records_keep", size_t(1), size_t(10000000), c.job_records_keep, errors);
  if (j.contains("job_records_max_age_s"))
    get_int(j["job_records_max_age_s"], "job_records_max_age_s", 60L, 100L * 365 * 86400, c.job_records_max_age_s,
            errors);
  if (j.contains("job_kill_grace_s")) {
    if (!j["job_kill_grace_s"].is_number() || j["job_kill_grace_s"].get<double>() < 0 ||
        j["job_kill_grace_s"].get<double>() > 3600)
      errors.push_back("job_kill_grace_s: must be a number of seconds, 0-3600");
    else
      c.job_kill_grace_s = j["job_kill_grace_s"].get<double>();
  }
  // Cross-key checks.
  if (c.dead_after_ms <= c.heartbeat_ms)
    errors.push_back("dead_after_ms (" + std::to_string(c.dead_after_ms) + ") must be larger than heartbeat_ms (" +
                     std::to_string(c.heartbeat_ms) + ")");
  if (c.reconnect_min_ms > c.reconnect_max_ms) errors.push_back("reconnect_min_ms must not exceed reconnect_max_ms");
  for (auto& n : c.connect_at_startup)
    if (!c.peers.count(n)) errors.push_back("connect_at_startup: '" + n + "' is not in peers");
  if (c.peers.count(c.node)) errors.push_back("peers: '" + c.node + "' is this node's own name");
  // Names in allow lists: a peer, a group, "*" (adhoc only); a name known
  // only from certificates cannot be checked here and is accepted.
  auto check_allow = [&](const std::string& where, const std::string& n, bool star) {
    if (n.size() > 1 && n[0] == '@') {
      // With a CA, a group may exist only in certificates.
      if (n != "@all" && !c.groups.count(n.substr(1)) && c.trusted_cas.empty())
        errors.push_back(where + ": group '" + n.substr(1) +
                         "' is not in groups (and no trusted_cas could certify it)");
    } else if (!(star && n == "*") && !valid_name(n)) {
      errors.push_back(where + ": '" + n + "' is not a node name or @group");
    }
  };
  for (auto& [name, d] : c.jobs)
    for (auto& n : d.allow) check_allow("jobs." + name + ".allow", n, false);
  for (auto& [n, on] : c.allow_adhoc) check_allow("allow_adhoc", n, true);
  return errors.size() == before;
}

bool load_config(const std::string& explicit_path, Config& out, std::vector<std::string>& errors) {
  out = default_config();
  std::string path = explicit_path;
  bool must_exist = !path.empty();
  if (path.empty()) {
    if (const char* e = getenv("JSD_CONFIG"); e && *e) {
      path = e;
      must_exist = true;
    } else if (access("/etc/jsd/jsd.conf", F_OK) == 0) {
      path = "/etc/jsd/jsd.conf";
      must_exist = true;
    }
  }
  if (path.empty()) return true;
  std::ifstream f(path);
  if (!f) {
    if (must_exist) errors.push_back(path + ": cannot open: " + std::string(strerror(errno)));
    return false;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  json j;
  try {
    j = json::parse(ss.str());
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    if (auto p = what.find("parse error"); p != std::string::npos) what = what.substr(p);
    errors.push_back(path + ": not valid JSON: " + what);
    return false;
  }
  std::vector<std::string> errs;
  bool ok = parse_config(j, out, errs);
  for (auto& e : errs) errors.push_back(path + ": " + e);
  if (path[0] == '/')
    out.path = path;
  else {
    char cwd[4096];
    out.path = getcwd(cwd, sizeof cwd) ? std::string(cwd) + "/" + path : path;
  }
  return ok;
}

bool resolve_target(const Config& c, const std::string& arg, Target& out, std::string& err) {
  if (auto it = c.peers.find(arg); it != c.peers.end()) {
    out = {it->first, it->second};
    return true;
  }
  if (arg == c.node) {
    out = {c.node, c.listen};
    return true;
  }
  Endpoint e;
  std::string perr;
  if (arg.find(':') != std::string::npos && parse_endpoint(arg, e, perr)) {
    for (auto& [name, ep] : c.peers)
      if (ep.host == e.host && ep.port == e.port) {
        out = {name, ep};
        return true;
      }
    out = {"", e};
    return true;
  }
  err = "unknown node '" + arg + "': not in peers of " + (c.path.empty() ? "the embedded configuration" : c.path) +
        " and not address:port";
  return false;
}

json config_to_json(const Config& c) {
  json j;
  j["node"] = c.node;
  j["listen"] = c.listen.str();
  j["port_range"] = {c.port_min, c.port_max};
  j["state_dir"] = c.state_dir;
  j["key_file"] = c.key_file;
  j["peers"] = json::object();
  for (auto& [n, e] : c.peers) {
    auto k = c.peer_keys.find(n);
    if (k == c.peer_keys.end())
      j["peers"][n] = e.str();
    else
      j["peers"][n] = {{"address", e.str()}, {"public_key", k->second}};
  }
  if (!c.psk_file.empty()) j["psk_file"] = c.psk_file;
  if (!c.cert_file.empty()) j["cert_file"] = c.cert_file;
  j["trusted_cas"] = c.trusted_cas;
  j["revoked"] = c.revoked;
  j["groups"] = json::object();
  for (auto& [g, v] : c.groups) j["groups"][g] = v;
  j["audit_max_bytes"] = c.audit_max_bytes;
  j["connect_at_startup"] = c.connect_at_startup;
  j["max_frame"] = c.max_frame;
  j["handshake_timeout_ms"] = c.handshake_timeout_ms;
  j["heartbeat_ms"] = c.heartbeat_ms;
  j["dead_after_ms"] = c.dead_after_ms;
  j["rekey_after_s"] = c.rekey_after_s;
  j["reconnect_min_ms"] = c.reconnect_min_ms;
  j["reconnect_max_ms"] = c.reconnect_max_ms;
  j["log_level"] = c.log_level;
  j["syslog"] = c.syslog;
  j["jobs"] = json::object();
  for (auto& [n, d] : c.jobs) {
    json jd;
    jd["command"] = d.command;
    if (!d.cwd.empty()) jd["cwd"] = d.cwd;
    if (!d.env.empty()) jd["env"] = d.env;
    jd["timeout_s"] = d.timeout_s;
    jd["max_parallel"] = d.max_parallel;
    if (d.has_allow) jd["allow"] = d.allow;
    j["jobs"][n] = jd;
  }
  j["allow_adhoc"] = json::array();
  for (auto& [n, b] : c.allow_adhoc) j["allow_adhoc"].push_back(n);
  j["job_records_keep"] = c.job_records_keep;
  j["job_records_max_age_s"] = c.job_records_max_age_s;
  j["job_kill_grace_s"] = c.job_kill_grace_s;
  return j;
}

bool looks_like_key(const std::string& s) {
  if (s.size() != 44 || s[43] != '=' || s[42] == '=') return false;
  for (size_t i = 0; i < 43; ++i) {
    char ch = s[i];
    if (!isalnum(static_cast<unsigned char>(ch)) && ch != '+' && ch != '/') return false;
  }
  return true;
}

std::string dump_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace jsd
