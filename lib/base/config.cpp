// Endpoints, the embedded defaults, finding and reading the file, NODE
// arguments, and the configuration as JSON. (config_parse.cpp reads the
// JSON into a Config.)
#include "config.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "jsd_limits.h"
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
      err = "'" + printable(s, 80) + "' is not [address]:port";
      return false;
    }
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string::npos) {
      err = "'" + printable(s, 80) + "' is not address:port";
      return false;
    }
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  unsigned char buf[16];
  if (host.find('\0') != std::string::npos ||
      (inet_pton(AF_INET, host.c_str(), buf) != 1 && inet_pton(AF_INET6, host.c_str(), buf) != 1)) {
    err = "'" + printable(host, 80) + "' is not a numeric IPv4 or IPv6 address";
    return false;
  }
  unsigned long n = 0;
  bool digits = !port.empty() && port.size() <= 5;
  for (char ch : port) {
    digits = digits && ch >= '0' && ch <= '9';
    if (digits) n = n * 10 + static_cast<unsigned long>(ch - '0');
  }
  if (!digits || n == 0 || n > 65535) {
    err = "'" + printable(port, 20) + "' is not a port number (1-65535)";
    return false;
  }
  out.host = host;
  out.port = static_cast<uint16_t>(n);
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

bool load_config(const std::string& explicit_path, Config& out, std::vector<std::string>& errors, bool* json_read) {
  out = default_config();
  if (json_read) *json_read = false;
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
  if (path.empty()) {
    if (json_read) *json_read = true;  // the embedded defaults
    return true;
  }
  std::ifstream f(path);
  if (!f) {
    if (must_exist) errors.push_back(path + ": cannot open: " + std::string(strerror(errno)));
    return false;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  std::vector<std::string> errs;
  bool ok = parse_config_text(ss.str(), out, errs);
  out.text = ss.str();
  if (json_read) *json_read = json::accept(ss.str());
  for (auto& e : errs) errors.push_back(path + ": " + e);
  if (path[0] == '/')
    out.path = path;
  else {
    char cwd[4096];
    out.path = getcwd(cwd, sizeof cwd) ? std::string(cwd) + "/" + path : path;
  }
  return ok;
}

std::string first_hop(const Config& c, const std::string& name, std::string& err) {
  std::string at = name;
  std::vector<std::string> chain = {name};
  for (size_t i = 0; i <= kMaxRelayHops; ++i) {
    auto v = c.via.find(at);
    if (v == c.via.end()) break;
    at = v->second;
    if (std::find(chain.begin(), chain.end(), at) != chain.end()) {
      std::string path;
      for (auto& n : chain) path += n + " -> ";
      err = "'" + name + "' is reached through a loop (" + path + at + ")";
      return "";
    }
    chain.push_back(at);
  }
  if (c.via.count(at)) {
    err = "'" + name + "' is more than " + std::to_string(kMaxRelayHops) + " gateways away";
    return "";
  }
  if (at == c.node) {
    err = "'" + name + "' is reached through this node itself";
    return "";
  }
  if (!c.peers.count(at)) {
    err = "'" + at + "' (the gateway to " + name + ") is not a peer with an address";
    return "";
  }
  return at;
}

bool resolve_target(const Config& c, const std::string& arg, Target& out, std::string& err) {
  if (auto it = c.peers.find(arg); it != c.peers.end()) {
    out = {it->first, it->second};
    return true;
  }
  if (c.via.count(arg)) {
    std::string why;
    std::string hop = first_hop(c, arg, why);
    if (hop.empty()) {
      err = "cannot reach " + arg + ": " + why;
      return false;
    }
    out = {arg, Endpoint{}, hop};
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
  if (!c.user.empty()) j["user"] = c.user;
  j["key_file"] = c.key_file;
  j["peers"] = json::object();
  for (auto& [n, e] : c.peers) {
    auto k = c.peer_keys.find(n);
    if (k == c.peer_keys.end())
      j["peers"][n] = e.str();
    else
      j["peers"][n] = {{"address", e.str()}, {"public_key", k->second}};
  }
  for (auto& [n, gw] : c.via) {
    j["peers"][n] = {{"via", gw}};
    if (auto k = c.peer_keys.find(n); k != c.peer_keys.end()) j["peers"][n]["public_key"] = k->second;
  }
  if (c.gateway) j["gateway"] = true;
  j["relay_window_s"] = c.relay_window_s;
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
  j["idle_heartbeat_ms"] = c.idle_heartbeat_ms;
  j["rekey_after_s"] = c.rekey_after_s;
  j["rekey_after_frames"] = c.rekey_after_frames;
  j["handshakes_per_address"] = c.handshakes_per_address;
  j["handshake_rate_per_address"] = c.handshake_rate_per_address;
  j["reconnect_min_ms"] = c.reconnect_min_ms;
  j["reconnect_max_ms"] = c.reconnect_max_ms;
  j["log_level"] = c.log_level;
  j["syslog"] = c.syslog;
  j["link_spawner"] = c.link_spawner;
  if (!c.metrics_file.empty()) j["metrics_file"] = c.metrics_file;
  j["metrics_interval_s"] = c.metrics_interval_s;
  j["jobs"] = json::object();
  for (auto& [n, d] : c.jobs) {
    json jd;
    jd["command"] = d.command;
    if (!d.cwd.empty()) jd["cwd"] = d.cwd;
    if (!d.env.empty()) jd["env"] = d.env;
    jd["timeout_s"] = d.timeout_s;
    jd["max_parallel"] = d.max_parallel;
    if (d.has_allow) jd["allow"] = d.allow;
    if (!d.description.empty()) jd["description"] = d.description;
    if (d.reads_stdin) jd["stdin"] = true;
    j["jobs"][n] = jd;
  }
  j["allow_adhoc"] = json::array();
  for (auto& [n, b] : c.allow_adhoc) j["allow_adhoc"].push_back(n);
  j["job_records_keep"] = c.job_records_keep;
  j["job_records_max_age_s"] = c.job_records_max_age_s;
  j["job_kill_grace_s"] = c.job_kill_grace_s;
  j["job_output_keep"] = c.job_output_keep;
  j["job_supervisor_slow_s"] = c.job_supervisor_slow_s;
  j["idle_client_s"] = c.idle_client_s;
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

}  // namespace jsd
