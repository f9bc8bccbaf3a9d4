// libFuzzer harness: the message decoder of lib/link/event.h (decode and
// decode_view), which reads every link, pipe and control frame. Kept to one
// small file: Msg is about to become one message type per channel.
// Checks that both decoders agree, and that what decodes re-encodes to
// something that decodes to the same message.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "event.h"
#include "fuzz_util.h"

namespace {
bool same(const jsd::Msg& a, const jsd::Msg& b) {
  return a.type == b.type && a.seq == b.seq && a.instance == b.instance && a.peer == b.peer && a.text == b.text &&
         a.ev.kind == b.ev.kind && a.ev.id == b.ev.id && a.ev.from == b.ev.from && a.ev.to == b.ev.to &&
         a.ev.object == b.ev.object && a.ev.body == b.ev.body && a.ev.more == b.ev.more;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  jsd::Msg m;
  jsd::MsgView v;
  std::string err, verr;
  bool ok = jsd::decode(in, m, err);
  bool vok = jsd::decode_view(in, v, verr);
  FUZZ_CHECK(ok == vok);
  if (!ok) return 0;
  std::string wire = jsd::encode(m);
  jsd::Msg m2;
  FUZZ_CHECK(jsd::decode(wire, m2, err));
  FUZZ_CHECK(same(m, m2));
  std::string vwire;
  jsd::encode_view_into(vwire, v);
  FUZZ_CHECK(vwire == wire);
  return 0;
}
