// The node's control socket (STATE_DIR/control.sock): the one listener of
// a node claims it, and each tool that connects (jsd-submit, jsd-ping,
// --status) is a frame stream the router talks to by its id (RouterTools).
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "config.h"
#include "router.h"

namespace jsd {

class Stream;

class ControlSocket : public RouterTools {
 public:
  ControlSocket(uv_loop_t* loop, const Config& cfg) : loop_(loop), cfg_(cfg) {}
  ~ControlSocket() override;
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;

  // Before anything else of the node's is touched: one listener per node
  // (a socket that answers is another listener's; one that does not is a
  // dead one's, and goes).
  bool claim(std::string& err);
  // Binds (0600) and listens.
  bool open(std::string& err);
  // Takes no more tools, removes the socket (only if this one bound it: a
  // listener that failed to start must not take it from the one that
  // runs), and closes every tool's connection.
  void close_all();

  // A tool's frame, and a tool gone.
  std::function<void(uint64_t tool, std::string_view msg)> on_msg;
  std::function<void(uint64_t tool)> on_gone;

  // RouterTools
  void send(uint64_t tool, const std::string& msg) override;
  void close(uint64_t tool) override;
  size_t backlog(uint64_t tool) const override;

 private:
  void on_connection(int status);
  uv_loop_t* loop_;
  const Config& cfg_;            // the running one (a reload changes it, not its state_dir)
  Stream* listening_ = nullptr;  // uvx.h's box
  bool bound_ = false, closed_ = false;
  std::unordered_map<uint64_t, Stream*> tools_;
  uint64_t next_tool_ = 0;
};

}  // namespace jsd
