#include "submit_session.h"

#include <cstdio>

#include "exit_codes.h"

namespace jsd {

SubmitSession::SubmitSession(uv_loop_t* loop, const SubmitOptions& o, ControlChannel* channel)
    : loop_(loop),
      o_(o),
      own_(channel ? nullptr : std::make_unique<ControlSession>(loop, o.cfg)),
      ch_(channel ? *channel : *own_) {}

int SubmitSession::fail(const std::string& why) {
  if (!done_) fprintf(stderr, "jsd-submit: error: %s\n", why.c_str());
  exit_with(kExitJsdFailure);
  return kExitJsdFailure;
}

// The last thing we sent (a cancel, a withdraw) must reach the listener
// before we go.
void SubmitSession::exit_with(int code) {
  if (done_) return;
  code_ = code;
  done_ = true;
  on_exit();
  ch_.close();
}

nlohmann::json submit_body(const SubmitOptions& o, const std::string& id, double submitted) {
  nlohmann::json body = {
      {"op", "submit"}, {"id", id}, {"params", o.params}, {"stream", !o.no_wait}, {"durable", o.no_wait}};
  if (o.argv.empty())
    body["job"] = o.job;
  else
    body["argv"] = o.argv;
  body["submitted"] = submitted;
  if (o.input) body["stdin"] = true;  // the node refuses it unless the job takes input
  // A submission that arrives after we gave up must not run (and must not
  // use up its id, so that a retry with --id runs it).
  if (o.timeout_s > 0 && !o.no_wait) body["expires"] = submitted + o.timeout_s;
  return body;
}

const char* not_run_how(bool queued) {
  return queued ? "it was cancelled before it started: the job did not run"
                : "the request was withdrawn: the job was not run";
}

std::string fmt_secs(double s) {
  char b[32];
  snprintf(b, sizeof b, "%g", s);
  return b;
}

}  // namespace jsd
