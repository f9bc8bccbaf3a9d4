// Writes the seed corpora of the fuzz harnesses from the real encoders:
//   build/tests/fuzz_make_seeds tests/fuzz/corpus
// Each seed is a valid input (or one step from it); the files are small and
// committed. Inputs that once crashed a harness are committed beside them
// by hand (crash-*), and this program never removes them.
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "control_msg.h"
#include "frame.h"
#include "fuzz_util.h"
#include "fuzz_world.h"
#include "handshake.h"
#include "job_supervisor.h"
#include "link_msg.h"
#include "pipe_msg.h"

namespace {

std::string root;

void put(const std::string& harness, const std::string& name, const std::string& bytes) {
  std::string dir = root + "/" + harness;
  mkdir(root.c_str(), 0755);
  mkdir(dir.c_str(), 0755);
  std::ofstream(dir + "/seed-" + name, std::ios::binary) << bytes;
}

std::string b(unsigned char c) { return std::string(1, static_cast<char>(c)); }

void frame_seeds() {
  std::string frames = jsd::make_frame("hello") + jsd::make_frame("") + jsd::make_frame(std::string(300, 'x'));
  put("frame_fuzz", "three", b(20) + b(7) + frames);
  put("frame_fuzz", "one-byte-chunks", b(20) + b(1) + frames);
  put("frame_fuzz", "too-large", b(8) + b(64) + jsd::make_frame(std::string(300, 'y')));
  put("frame_fuzz", "partial", b(20) + b(3) + frames.substr(0, frames.size() - 10));
}

void message_seeds() {
  jsd::Event call{jsd::Kind::call, 7, "alpha", "beta", "job", R"({"op":"submit","id":"j1","job":"hello"})", false};
  put("messages_fuzz", "data", jsd::encode_data(42, call));
  jsd::LinkMsg hello{jsd::LinkType::hello};
  hello.node = "alpha";
  hello.instance = 99;
  put("messages_fuzz", "link-hello", jsd::encode_link(hello));
  jsd::LinkMsg ack{jsd::LinkType::ack};
  ack.seq = 3;
  put("messages_fuzz", "link-ack", jsd::encode_link(ack));
  put("messages_fuzz", "heartbeat", jsd::encode_link({jsd::LinkType::heartbeat}));
  jsd::PipeMsg st;
  st.type = jsd::PipeType::state;
  st.state = jsd::LinkState::up;
  st.peer = "beta";
  st.detail = "link up";
  put("messages_fuzz", "pipe-state", jsd::encode_pipe(st));
  jsd::SessionKeys keys;
  put("messages_fuzz", "session", jsd::encode_session(keys));
  jsd::ControlMsg send;
  send.type = jsd::ControlType::send;
  send.durable = true;
  send.ev = call;
  put("messages_fuzz", "control-send", jsd::encode_control(send));
  jsd::ControlMsg e;
  e.type = jsd::ControlType::error;
  e.id = 5;
  e.why = "no such node";
  put("messages_fuzz", "control-error", jsd::encode_control(e));
  jsd::ControlMsg n;
  n.type = jsd::ControlType::notice;
  n.id = 5;
  n.node = "beta";
  n.state = jsd::LinkState::refused;
  n.detail = "key not known for alpha";
  put("messages_fuzz", "control-notice", jsd::encode_control(n));
  put("messages_fuzz", "sup-start",
      jsd::encode_sup_start({"j1", "/tmp", {"/bin/echo", "hi"}, {"PATH=/bin", "A=1"}, R"({"id":"j1"})"}));
  put("messages_fuzz", "sup-kill", jsd::encode_sup_job(jsd::SupMsg::kill, "j1", 15));
  put("messages_fuzz", "sup-output", jsd::encode_sup_output("j1", 1, "hello\n"));
  put("messages_fuzz", "sup-adopt", jsd::encode_sup_adopt("j1", 4242, true));
  put("messages_fuzz", "sup-reaped", jsd::encode_sup_reaped("j1", -1, 0));
  put("messages_fuzz", "sup-jobs", jsd::encode_sup_jobs({{"j1", 42, 6, 0}, {"j2", 43, 0, 0}}));
  jsd::JobEnd end;
  end.known = true;
  end.exit_code = 3;
  end.out_bytes = 6;
  put("messages_fuzz", "sup-end", jsd::encode_sup_end("j1", end));
}

void config_seeds() {
  put("config_fuzz", "empty", "{}");
  put("config_fuzz", "pair",
      R"({"node":"alpha","listen":"127.0.0.2:4455","port_range":[50000,50009],"state_dir":"/tmp/jsd/alpha",
"key_file":"/tmp/jsd/alpha.key","peers":{"beta":{"address":"127.0.0.3:4455",
"public_key":"QXtWBXEurDcP3xitJ1r8wTIEx41ya9ZSSiurzovFRnE="}},"connect_at_startup":["beta"],
"jobs":{"hello":{"command":["/bin/echo","hello"],"timeout_s":60,"max_parallel":4,"allow":["beta","@ops"],
"env":{"A":"1"},"cwd":"/tmp"}},"groups":{"ops":["beta"]},"allow_adhoc":["@ops"],"job_kill_grace_s":2.5})");
  put("config_fuzz", "ca",
      R"({"node":"gamma","listen":"[::1]:4455","cert_file":"/etc/jsd/gamma.cert",
"trusted_cas":["Re+1zrHGpNnjU3NLP1Ewtdq0QzJ6ycYoXRa3fA1BpwM="],"revoked":[],"peers":{"delta":"192.0.2.15:4455"},
"heartbeat_ms":500,"dead_after_ms":1500,"rekey_after_s":60,"reconnect_min_ms":10,"reconnect_max_ms":1000,
"max_frame":65536,"handshake_timeout_ms":2000,"log_level":"debug","syslog":true,"job_records_keep":10,
"job_records_max_age_s":3600,"audit_max_bytes":1048576,"psk_file":"/etc/jsd/psk"})");
  put("config_fuzz", "mistakes", R"({"nod":"x","listen":"nowhere","port_range":[9,1],"heartbeat_ms":"1"})");
}

void cert_seeds() {
  auto& w = jsd_fuzz::world();
  put("cert_fuzz", "text", b(0) + w.beta_cert);
  put("cert_fuzz", "body",
      b(1) + R"({"v":1,"name":"beta","groups":["ops","db"],"key":")" + jsd::key_to_text(w.beta_kp.pub) + R"(","ca":")" +
          jsd::key_to_text(w.ca.pub) + R"(","nb":0,"na":253402300799})");
  put("cert_fuzz", "key", b(2) + jsd::key_to_text(w.alpha_kp.pub));
}

void handshake_seeds() {
  auto& w = jsd_fuzz::world();
  jsd::Hello h{"alpha", "127.0.0.2:4455", "beta", w.alpha_cert};
  put("handshake_fuzz", "hello", b(0) + b(0) + jsd::hello_to_json(h));
  // Raw frames: a real first message of each kind (its ephemeral key is
  // random, so only its shape matters), a refusal.
  for (bool ik : {false, true}) {
    std::optional<jsd::Key32> key;
    if (ik) key = w.beta_kp.pub;
    jsd::LinkInitiator in(w.alpha, {"alpha", "127.0.0.2:4455", "", ""}, "beta", key);
    std::string m1, err;
    in.first(m1, err);
    put("handshake_fuzz", ik ? "raw-ik" : "raw-xx", b(1) + b(0) + m1);
  }
  put("handshake_fuzz", "raw-refused", b(2) + b(1) + jsd::LinkResponder::refuse("no"));
  put("handshake_fuzz", "ik-accept", b(3) + b(0) + R"({"node":"beta","port":50000})");
  put("handshake_fuzz", "xx-answer",
      b(4) + b(0) + jsd_fuzz::join({R"({"node":"beta","cert":")" + w.beta_cert + "\"}", R"({"port":50000})", "beta"}));
  put("handshake_fuzz", "xx-answer-any", b(4) + b(0) + jsd_fuzz::join({R"({"node":"beta"})", R"({"port":1})", ""}));
  put("handshake_fuzz", "hello-xx", b(5) + b(0) + jsd::hello_to_json(h));
  put("handshake_fuzz", "hello-ik", b(5) + b(1) + jsd::hello_to_json({"alpha", "127.0.0.2:4455", "beta", ""}));
}

void sealed_link_seeds() {
  // Part modes: 0 sealed batch, 1 raw, 2 sealed and altered, 3 replay.
  jsd::Event call{jsd::Kind::call, 7, "alpha", "beta", "job", R"({"op":"submit","id":"j1","job":"hello"})", false};
  jsd::LinkMsg hello{jsd::LinkType::hello};
  hello.node = "alpha";
  hello.instance = 99;
  std::string batch = jsd::make_frame(jsd::encode_link(hello)) + jsd::make_frame(jsd::encode_data(1, call)) +
                      jsd::make_frame(jsd::encode_link({jsd::LinkType::heartbeat}));
  std::string rekey =
      jsd::make_frame(jsd::encode_data(2, call)) + jsd::make_frame(jsd::encode_link({jsd::LinkType::rekey}));
  std::string after = jsd::make_frame(jsd::encode_link({jsd::LinkType::bye}));
  put("sealed_link_fuzz", "batch", b(0) + batch);
  put("sealed_link_fuzz", "rekey", jsd_fuzz::join({b(0) + batch, b(0) + rekey, b(0) + after}));
  put("sealed_link_fuzz", "malformed", b(0) + batch.substr(0, batch.size() - 3));
  put("sealed_link_fuzz", "altered", jsd_fuzz::join({b(0) + batch, b(2) + b(17) + after}));
  put("sealed_link_fuzz", "replay", jsd_fuzz::join({b(0) + batch, b(3)}));
  put("sealed_link_fuzz", "raw", b(1) + std::string(40, 'x'));
}

}  // namespace

// json_depth_fuzz: COUNT FF FE OPEN FF FE CLOSE FF FE CORE (the document is
// OPEN x COUNT, CORE, CLOSE x COUNT): the issue-24 reproducer and its
// neighbours at the depth limit.
void json_depth_seeds() {
  auto count = [](unsigned n) { return std::string{char(n & 0xff), char((n >> 8) & 0xff), char((n >> 16) & 0xff)}; };
  auto doc = [&](unsigned n, const std::string& open, const std::string& close, const std::string& core) {
    return jsd_fuzz::join({count(n), open, close, core});
  };
  put("json_depth_fuzz", "at_limit", doc(31, "[", "]", "[1]"));
  put("json_depth_fuzz", "past_limit", doc(32, "[", "]", "[1]"));
  put("json_depth_fuzz", "deep_error", doc(200000, "[", "]", R"({"id":"deep1"})"));
  put("json_depth_fuzz", "deep_objects", doc(100000, R"({"error":)", "}", "null"));
  put("json_depth_fuzz", "in_strings", doc(1000, R"(["\\","[[\"",)", "]", R"("]]")"));
  put("json_depth_fuzz", "job_request", doc(40, R"({"op":"submit","id":"j1","argv":[)", "]}", R"("true")"));
  put("json_depth_fuzz", "unbalanced", doc(50000, "]", "[", "0"));
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s CORPUS_DIR (tests/fuzz/corpus)\n", argv[0]);
    return 2;
  }
  root = argv[1];
  frame_seeds();
  message_seeds();
  config_seeds();
  cert_seeds();
  handshake_seeds();
  sealed_link_seeds();
  json_depth_seeds();
  return 0;
}
