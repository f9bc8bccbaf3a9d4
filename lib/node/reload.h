// The configuration at run time: the copy the link processes read, the
// file read and checked again at SIGHUP, and the links a new configuration
// makes again. The listener (listener.cpp) swaps the configuration itself.
#pragma once

#include <string>
#include <vector>

#include "config.h"
#include "link_clients.h"
#include "link_servers.h"
#include "router.h"
#include "trust.h"

namespace jsd {

// STATE_DIR/config.running: the file's text as the listener read it; c
// learns its path (nothing is written for the embedded defaults).
bool write_running_config(Config& c, std::string& err);

// SIGHUP: path read and checked as at start, into next and trust; false
// with one line in errors per mistake (the running configuration stays).
// What the node is (its name, address and state) needs a restart.
bool read_config_again(const Config& running, const std::string& path, Config& next, Trust& trust,
                       std::vector<std::string>& errors);

// SIGHUP, as the listener does it: running's file read and checked again
// (read_config_again) and its copy written (write_running_config) into next
// and trust; false, each mistake logged in a line, if the running
// configuration stays.
bool reread_config(const Config& running, Config& next, Trust& trust);

// Links to peers that stay as they were are not touched. A removed peer's
// calls are answered with an error and its links close; a peer whose
// address or keys changed links again (its new client reads the new file).
void relink_after_reload(const Config& old, const Config& now, LinkClients& clients, LinkServers& servers,
                         Router& router);

}  // namespace jsd
