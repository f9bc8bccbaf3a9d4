// What a SIGHUP changes beside the listener's own parts (reload.h).
#include "reload.h"

#include <set>

#include "check_config.h"
#include "files.h"
#include "log.h"

namespace jsd {

// The link processes read the configuration the listener runs, not the
// file: that may have been edited since, or refused at a reload, and a
// client started again later must not link by other rules than its
// listener's. The copy is the file's text as it was read.
bool write_running_config(Config& c, std::string& err) {
  if (c.path.empty()) return true;  // the embedded defaults: the link processes have them too
  std::string path = c.state_dir + "/config.running";
  if (!write_file_atomic(path, c.text, false, err)) return false;
  c.running_path = path;
  return true;
}

bool reread_config(const Config& running, Config& next, Trust& trust) {
  std::string path = running.path;
  if (path.empty()) {
    log_error("SIGHUP: no configuration file to re-read (the listener runs on the embedded defaults)");
    return false;
  }
  std::vector<std::string> errors;
  read_config_again(running, path, next, trust, errors);
  std::string werr;
  if (errors.empty() && !write_running_config(next, werr)) errors.push_back(werr);
  if (!errors.empty()) {
    for (auto& e : errors) log_error("SIGHUP: " + e);
    log_error("SIGHUP: configuration not reloaded (" + std::to_string(errors.size()) +
              (errors.size() == 1 ? " mistake" : " mistakes") + "); the running one stays");
    return false;
  }
  return true;
}

bool read_config_again(const Config& running, const std::string& path, Config& next, Trust& trust,
                       std::vector<std::string>& errors) {
  load_config(path, next, errors);
  if (!errors.empty()) return false;
  auto fixed = [&](const char* key, const std::string& was, const std::string& now) {
    if (was != now)
      errors.push_back(path + ": " + key + ": cannot change from '" + was + "' to '" + now +
                       "' while the listener runs (restart it)");
  };
  fixed("node", running.node, next.node);
  fixed("listen", running.listen.str(), next.listen.str());
  fixed("state_dir", running.state_dir, next.state_dir);
  PathOwners owners;
  std::string err;
  if (!node_file_owners(next, true, owners, err))
    errors.push_back(err);
  else
    check_node_files(next, owners, errors);
  load_trust(next, trust, errors);
  return errors.empty();
}

// Links to peers that stay as they were are not touched. A removed peer's
// calls are answered with an error and its links close; a peer whose
// address or keys changed links again (its new client reads the new file).
void relink_after_reload(const Config& old, const Config& now, LinkClients& clients, LinkServers& servers,
                         Router& router) {
  auto keys_of = [](const Config& c, const std::string& n) {
    auto it = c.peer_keys.find(n);
    return it == c.peer_keys.end() ? std::vector<std::string>() : it->second;
  };
  // Who may link at all changed: every link is made again under the new rules.
  bool all = old.trusted_cas != now.trusted_cas || old.revoked != now.revoked || old.psk_file != now.psk_file;
  std::set<std::string> changed;
  if (all) {
    for (auto& k : clients.keys()) changed.insert(k);
    for (auto& p : servers.peers()) changed.insert(p);
  }
  for (auto& [name, addr] : old.peers) {
    auto it = now.peers.find(name);
    if (it == now.peers.end()) {
      log_info("peer " + name + " left the configuration: its links close");
      router.peer_removed(name);
      clients.remove(name);
      servers.retire_peer(name);
      changed.erase(name);
    } else if (it->second.str() != addr.str() || keys_of(old, name) != keys_of(now, name)) {
      changed.insert(name);
    }
  }
  for (auto& name : changed) {
    log_info("peer " + name + ": its address or keys changed: it links again");
    clients.restart(name);
    servers.retire_peer(name);
  }
  for (auto& peer : now.connect_at_startup) clients.ensure(peer);
}

}  // namespace jsd
