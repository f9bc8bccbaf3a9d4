// The messages between a listener and its job supervisor (job_supervisor.h).
// Decoders never throw and never read past their input: a supervisor trusts
// only its own user's processes, but a bug on either side must not become a
// crash on the other.
#include "job_supervisor.h"
#include "wire.h"

namespace jsd {

namespace {
size_t list_size(const std::vector<std::string>& v) {
  size_t n = 4;
  for (auto& s : v) n += WireWriter::str32_size(s);
  return n;
}
void put_list(WireWriter& w, const std::vector<std::string>& v) {
  w.u32(uint32_t(v.size()));
  for (auto& s : v) w.str32(s);
}
bool get_list(WireReader& r, std::vector<std::string>& v) {
  uint32_t n = r.u32();
  // Each element takes at least its 4-byte length: a count larger than
  // what is left is a lie, not an allocation to make.
  if (!r.ok() || n > r.left() / 4) return false;
  v.clear();
  v.reserve(n);
  for (uint32_t i = 0; i < n && r.ok(); ++i) v.emplace_back(r.str32());
  return r.ok();
}
bool typed(std::string_view msg, SupMsg t) { return !msg.empty() && msg[0] == char(t); }
}  // namespace

std::string encode_sup_start(const SupStart& s) {
  std::string out;
  WireWriter w(out, 1 + WireWriter::str32_size(s.id) + WireWriter::str32_size(s.cwd) + list_size(s.argv) +
                        list_size(s.env) + WireWriter::str32_size(s.record) + (s.input ? 1 : 0));
  w.u8(uint8_t(SupMsg::start));
  w.str32(s.id);
  w.str32(s.cwd);
  put_list(w, s.argv);
  put_list(w, s.env);
  w.str32(s.record);
  if (s.input) w.u8(1);  // a trailing flag: a start without it is one of before
  return out;
}

bool decode_sup_start(std::string_view msg, SupStart& s) {
  if (!typed(msg, SupMsg::start)) return false;
  WireReader r(msg.substr(1));
  s.id = r.str32();
  s.cwd = r.str32();
  if (!get_list(r, s.argv) || !get_list(r, s.env)) return false;
  s.record = r.str32();
  s.input = r.ok() && r.left() == 1;
  if (s.input && r.u8() != 1) return false;  // the flag is 1 or absent
  return r.done() && !s.id.empty() && !s.argv.empty();
}

std::string encode_sup_job(SupMsg type, std::string_view id, int sig) {
  std::string out;
  WireWriter w(out, 1 + WireWriter::str32_size(id) + 1);
  w.u8(uint8_t(type));
  w.str32(id);
  w.u8(uint8_t(sig));
  return out;
}

bool decode_sup_job(std::string_view msg, std::string_view& id, int& sig) {
  if (msg.empty()) return false;
  WireReader r(msg.substr(1));
  id = r.str32();
  sig = r.u8();
  return r.done() && !id.empty();
}

std::string encode_sup_adopt(std::string_view id, int pid, bool listener_reaps) {
  std::string out;
  WireWriter w(out, 1 + WireWriter::str32_size(id) + 4 + 1);
  w.u8(uint8_t(SupMsg::adopt));
  w.str32(id);
  w.u32(uint32_t(pid));
  w.u8(listener_reaps ? 1 : 0);
  return out;
}

bool decode_sup_adopt(std::string_view msg, std::string_view& id, int& pid, bool& listener_reaps) {
  if (!typed(msg, SupMsg::adopt)) return false;
  WireReader r(msg.substr(1));
  id = r.str32();
  uint32_t p = r.u32();
  uint8_t f = r.u8();
  pid = int(p);
  listener_reaps = f & 1;
  return r.done() && !id.empty() && p > 0 && p < (1u << 22) && f <= 1;
}

std::string encode_sup_reaped(std::string_view id, int code, int sig) {
  std::string out;
  WireWriter w(out, 1 + WireWriter::str32_size(id) + 4 + 1);
  w.u8(uint8_t(SupMsg::reaped));
  w.str32(id);
  w.u32(uint32_t(code));
  w.u8(uint8_t(sig));
  return out;
}

bool decode_sup_reaped(std::string_view msg, std::string_view& id, int& code, int& sig) {
  if (!typed(msg, SupMsg::reaped)) return false;
  WireReader r(msg.substr(1));
  id = r.str32();
  code = int32_t(r.u32());
  sig = r.u8();
  return r.done() && !id.empty() && code >= -1 && code <= 255 && sig < 128;
}

std::string encode_sup_output(std::string_view id, int fd, std::string_view bytes) {
  std::string out;
  WireWriter w(out, 1 + WireWriter::str32_size(id) + 1 + bytes.size());
  w.u8(uint8_t(SupMsg::output));
  w.str32(id);
  w.u8(uint8_t(fd));
  w.bytes(bytes);
  return out;
}

bool decode_sup_output(std::string_view msg, std::string_view& id, int& fd, std::string_view& bytes) {
  if (!typed(msg, SupMsg::output)) return false;
  WireReader r(msg.substr(1));
  id = r.str32();
  fd = r.u8();
  if (!r.ok() || (fd != 1 && fd != 2)) return false;
  bytes = msg.substr(1 + r.pos());
  return true;
}

std::string encode_sup_end(std::string_view id, const JobEnd& e) { return encode_sup_end_text(id, job_end_text(e)); }

std::string encode_sup_end_text(std::string_view id, std::string_view text) {
  std::string out;
  WireWriter w(out, 1 + WireWriter::str32_size(id) + text.size());
  w.u8(uint8_t(SupMsg::end));
  w.str32(id);
  w.bytes(text);
  return out;
}

bool decode_sup_end(std::string_view msg, std::string_view& id, JobEnd& e) {
  if (!typed(msg, SupMsg::end)) return false;
  WireReader r(msg.substr(1));
  id = r.str32();
  return r.ok() && parse_job_end_text(msg.substr(1 + r.pos()), e);
}

std::string encode_sup_jobs(const std::vector<SupJob>& jobs) {
  size_t n = 1 + 4;
  for (auto& j : jobs) n += WireWriter::str32_size(j.id) + 4 + 8 + 8;
  std::string out;
  WireWriter w(out, n);
  w.u8(uint8_t(SupMsg::jobs));
  w.u32(uint32_t(jobs.size()));
  for (auto& j : jobs) {
    w.str32(j.id);
    w.u32(uint32_t(j.pid));
    w.u64(j.out);
    w.u64(j.err);
  }
  return out;
}

bool decode_sup_jobs(std::string_view msg, std::vector<SupJob>& jobs) {
  if (!typed(msg, SupMsg::jobs)) return false;
  WireReader r(msg.substr(1));
  uint32_t n = r.u32();
  if (!r.ok() || n > msg.size() / 24) return false;
  jobs.clear();
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    SupJob j;
    j.id = r.str32();
    j.pid = int(r.u32());
    j.out = r.u64();
    j.err = r.u64();
    jobs.push_back(std::move(j));
  }
  return r.done();
}

}  // namespace jsd
