// `jsd-listener --status`: the node's links, for people or (--json) scripts.
#include "status.h"

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "control.h"
#include "exit_codes.h"

namespace jsd {

int print_status(const Config& cfg, bool as_json, const std::string& prog) {
  ControlMsg req, rep;
  req.type = ControlType::status;
  std::string err;
  if (!control_request(cfg, req, rep, 5000, err)) {
    fprintf(stderr, "%s: error: %s\n", prog.c_str(), err.c_str());
    return kExitJsdFailure;
  }
  auto j = nlohmann::json::parse(rep.status, nullptr, false);
  if (rep.type != ControlType::status_reply || !j.is_object()) {
    fprintf(stderr, "%s: error: the listener sent a malformed status\n", prog.c_str());
    return kExitJsdFailure;
  }
  if (as_json) {
    std::cout << j.dump() << "\n";
    return kExitOk;
  }
  printf("node %s (pid %d) listening on %s since %s\n", j["node"].get<std::string>().c_str(), j["pid"].get<int>(),
         j["listen"].get<std::string>().c_str(), j["since"].get<std::string>().c_str());
  printf("%-16s %-4s %-28s %-8s %-11s %6s  %s\n", "PEER", "DIR", "PROCESS", "PID", "STATE", "QUEUED", "SINCE");
  for (auto& l : j["links"]) {
    printf("%-16s %-4s %-28s %-8d %-11s %6zu  %s\n", l["peer"].get<std::string>().c_str(),
           l["direction"].get<std::string>().c_str(), l["process"].get<std::string>().c_str(), l["pid"].get<int>(),
           l["state"].get<std::string>().c_str(), l["queued"].get<size_t>(), l["since"].get<std::string>().c_str());
  }
  return kExitOk;
}

}  // namespace jsd
