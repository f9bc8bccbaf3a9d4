#include "job_input.h"

#include <nlohmann/json.hpp>

#include "json_read.h"
#include "wire.h"

namespace jsd {

std::string encode_input_chunk(std::string_view id, uint64_t offset, std::string_view data, uint8_t flags) {
  std::string out;
  out.reserve(1 + 8 + WireWriter::str8_size(id) + data.size());
  WireWriter w(out, 1 + 8 + WireWriter::str8_size(id) + data.size());
  w.u8(flags);
  w.u64(offset);
  w.str8(id);
  w.bytes(data);
  return out;
}

bool decode_input_chunk(std::string_view body, InputChunk& c, std::string& err) {
  WireReader r(body);
  c.flags = r.u8();
  c.offset = r.u64();
  c.id = r.str8();
  if (!r.ok()) return err = "a stdin chunk is shorter than its header", false;
  if (c.flags & ~(InputChunk::kEof | InputChunk::kCut)) return err = "a stdin chunk has unknown flags", false;
  if (c.eof() && c.cut()) return err = "a stdin chunk is marked both end and cut", false;
  if (c.id.empty()) return err = "a stdin chunk names no job", false;
  if (c.offset > UINT64_MAX - r.left()) return err = "a stdin chunk's offset is out of range", false;
  c.data = r.bytes(r.left());
  return true;
}

std::string encode_input_ack(const InputAck& a) {
  return nlohmann::json{{"acked", a.acked}, {"closed", a.closed}}.dump();
}

bool decode_input_ack(std::string_view body, InputAck& a) {
  nlohmann::json j;
  if (!parse_json(body, j) || !j.is_object()) return false;
  if (!j.contains("acked") || !j["acked"].is_number_unsigned()) return false;
  a.acked = j["acked"].get<uint64_t>();
  a.closed = j.contains("closed") && j["closed"].is_boolean() && j["closed"].get<bool>();
  return true;
}

}  // namespace jsd
