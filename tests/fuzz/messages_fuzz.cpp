// libFuzzer harness: the decoders of every channel's messages (link_msg,
// pipe_msg, control_msg, the data message and the session keys). Each is
// fed the same bytes; whatever one accepts must re-encode to exactly those
// bytes (the encodings are canonical), so nothing is read that the encoder
// could not have written.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "control_msg.h"
#include "fuzz_util.h"
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
  return 0;
}
