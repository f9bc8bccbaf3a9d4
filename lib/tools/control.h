// The local control socket, seen from a tool (jsd-ping, jsd-submit,
// jsd-listener --status).
#pragma once

#include <uv.h>

#include <string>

#include "config.h"
#include "control_msg.h"

namespace jsd {

// Connects to the node's listener; returns a connected fd, or -1 with a
// one-line reason in err.
int connect_control(const Config& cfg, std::string& err);

// The same, as a Stream on loop (null with err): for tools that wait for
// events (jsd-ping, jsd-submit).
class Stream;
Stream* open_control_stream(uv_loop_t* loop, const Config& cfg, std::string& err);

// What a tool makes of a message from its listener that is not a reply:
// fatal (an error, or the link to NODE was refused: text says why), a note
// (another link state: text is "STATE: detail"), or nothing to say.
enum class ControlNotice { none, fatal, note };
ControlNotice read_control_notice(const ControlMsg& m, const std::string& node, std::string& text);

// One request, one answer, blocking (for --status).
bool control_request(const Config& cfg, const ControlMsg& req, ControlMsg& reply, int timeout_ms, std::string& err);

}  // namespace jsd
