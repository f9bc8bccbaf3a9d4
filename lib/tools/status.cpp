// `jsd-listener --status`: the node's links, for people or (--json) scripts.
#include "status.h"

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "control.h"
#include "exit_codes.h"
#include "json_read.h"

namespace jsd {

int print_status(const Config& cfg, bool as_json, const std::string& prog) {
  ControlMsg req, rep;
  req.type = ControlType::status;
  std::string err;
  if (!control_request(cfg, req, rep, 5000, err)) {
    fprintf(stderr, "%s: error: %s\n", prog.c_str(), err.c_str());
    return kExitJsdFailure;
  }
  nlohmann::json j;
  parse_json(rep.status, j);
  if (rep.type != ControlType::status_reply || !j.is_object()) {
    fprintf(stderr, "%s: error: the listener sent a malformed status\n", prog.c_str());
    return kExitJsdFailure;
  }
  if (as_json) {
    std::cout << j.dump() << "\n";
    return kExitOk;
  }
  // Read field by field with defaults: a listener of another version (or a
  // broken one) gets a partial table, never an exception.
  auto str = [](const nlohmann::json& o, const char* k) {
    auto it = o.find(k);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string("-");
  };
  auto num = [](const nlohmann::json& o, const char* k) {
    auto it = o.find(k);
    return it != o.end() && it->is_number_integer() ? it->get<long long>() : 0LL;
  };
  printf("node %s (pid %lld) listening on %s since %s\n", str(j, "node").c_str(), num(j, "pid"),
         str(j, "listen").c_str(), str(j, "since").c_str());
  // The job supervisor, when it is slow: jobs wait for it (jsd-job(8)).
  auto jobs = j.find("jobs");
  if (jobs != j.end() && jobs->is_object()) {
    auto sup = jobs->find("supervisor");
    bool slow = sup != jobs->end() && sup->is_object() && sup->contains("slow") && (*sup)["slow"] == true;
    if (slow)
      printf("job supervisor (pid %lld) is slow: %lld request(s) unanswered for %lld s; jobs wait for it\n",
             num(*sup, "pid"), num(*sup, "waiting"), num(*sup, "waiting_ms") / 1000);
  }
  printf("%-16s %-4s %-28s %-8s %-11s %6s  %s\n", "PEER", "DIR", "PROCESS", "PID", "STATE", "QUEUED", "SINCE");
  auto links = j.find("links");
  if (links != j.end() && links->is_array())
    for (auto& l : *links) {
      if (!l.is_object()) continue;
      printf("%-16s %-4s %-28s %-8lld %-11s %6lld  %s\n", str(l, "peer").c_str(), str(l, "direction").c_str(),
             str(l, "process").c_str(), num(l, "pid"), str(l, "state").c_str(), num(l, "queued"),
             str(l, "since").c_str());
    }
  // Every peer, linked or not ("idle"): which configured nodes are up.
  auto peers = j.find("peers");
  if (peers == j.end() || !peers->is_array()) return kExitOk;
  auto list = [](const nlohmann::json& o, const char* k) {
    std::string s;
    auto it = o.find(k);
    if (it != o.end() && it->is_array())
      for (auto& g : *it)
        if (g.is_string()) s += (s.empty() ? "@" : ",@") + g.get<std::string>();
    return s;
  };
  printf("\n%-16s %-22s %-11s %-11s %s\n", "PEER", "ADDRESS", "BY", "STATE", "GROUPS");
  for (auto& p : *peers) {
    if (!p.is_object()) continue;
    std::string groups = list(p, "groups"), cert = list(p, "cert_groups");
    if (!cert.empty()) groups += (groups.empty() ? "" : ",") + cert;
    printf("%-16s %-22s %-11s %-11s %s\n", str(p, "peer").c_str(), str(p, "address").c_str(), str(p, "by").c_str(),
           str(p, "state").c_str(), groups.empty() ? "-" : groups.c_str());
  }
  return kExitOk;
}

int print_metrics(const Config& cfg, const std::string& prog) {
  ControlMsg req, rep;
  req.type = ControlType::metrics;
  std::string err;
  if (!control_request(cfg, req, rep, 5000, err)) {
    fprintf(stderr, "%s: error: %s\n", prog.c_str(), err.c_str());
    return kExitJsdFailure;
  }
  if (rep.type != ControlType::metrics_text || rep.status.empty()) {
    fprintf(stderr, "%s: error: the listener sent no metrics (is it older than this jsd-listener?)\n", prog.c_str());
    return kExitJsdFailure;
  }
  fwrite(rep.status.data(), 1, rep.status.size(), stdout);
  return fflush(stdout) == 0 ? kExitOk : kExitJsdFailure;
}

}  // namespace jsd
