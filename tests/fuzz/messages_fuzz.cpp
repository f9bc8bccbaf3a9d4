// libFuzzer harness: the decoders of every channel's messages (link_msg,
// pipe_msg, control_msg, the data message, the session keys, and the
// messages between a listener and its job supervisor). Each is
// fed the same bytes; whatever one accepts must re-encode to exactly those
// bytes (the encodings are canonical), so nothing is read that the encoder
// could not have written.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "control_msg.h"
#include "fuzz_util.h"
#include "job_supervisor.h"
#include "link_msg.h"
#include "pipe_msg.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string err;
  uint64_t seq = 0;
  jsd::EventView ev;
  if (jsd::decode_data(in, seq, ev, err)) {
    std::string again;
    jsd::encode_data_into(again, seq, ev);
    FUZZ_CHECK(again == in);
  }
  jsd::LinkMsg l;
  if (jsd::decode_link(in, l, err) && l.type != jsd::LinkType::data) FUZZ_CHECK(jsd::encode_link(l) == in);
  jsd::PipeMsg p;
  if (jsd::decode_pipe(in, p, err) && p.type != jsd::PipeType::data) FUZZ_CHECK(jsd::encode_pipe(p) == in);
  jsd::SessionKeys k;
  if (jsd::decode_session(in, k, err)) FUZZ_CHECK(jsd::encode_session(k) == in);
  jsd::ControlMsg c;
  if (jsd::decode_control(in, c, err)) FUZZ_CHECK(jsd::encode_control(c) == in);
  bool durable = false;
  if (jsd::decode_send(in, durable, ev, err)) FUZZ_CHECK(jsd::decode_control(in, c, err) && c.durable == durable);

  jsd::SupStart st;
  if (jsd::decode_sup_start(in, st)) FUZZ_CHECK(jsd::encode_sup_start(st) == in);
  std::string_view id, bytes;
  int sig = 0, fd = 0;
  if (!in.empty() && jsd::decode_sup_job(in, id, sig))
    FUZZ_CHECK(jsd::encode_sup_job(static_cast<jsd::SupMsg>(in[0]), id, sig) == in);
  if (jsd::decode_sup_output(in, id, fd, bytes)) FUZZ_CHECK(jsd::encode_sup_output(id, fd, bytes) == in);
  int pid = 0, code = 0;
  bool reaps = false;
  if (jsd::decode_sup_adopt(in, id, pid, reaps)) FUZZ_CHECK(jsd::encode_sup_adopt(id, pid, reaps) == in);
  if (jsd::decode_sup_reaped(in, id, code, sig)) FUZZ_CHECK(jsd::encode_sup_reaped(id, code, sig) == in);
  std::vector<jsd::SupJob> jobs;
  if (jsd::decode_sup_jobs(in, jobs)) FUZZ_CHECK(jsd::encode_sup_jobs(jobs) == in);
  jsd::JobEnd end, again;
  if (jsd::decode_sup_end(in, id, end)) {
    // The end's JSON need not be canonical; what it says must survive.
    std::string_view id2;
    std::string id_copy(id);
    FUZZ_CHECK(jsd::decode_sup_end(jsd::encode_sup_end(id_copy, end), id2, again));
    FUZZ_CHECK(again.exit_code == end.exit_code && again.signal == end.signal && again.error == end.error);
  }
  return 0;
}
