// Standard input to a job (jsd-submit -i): the wire between a submitter and
// the node that runs the job. The submitter sends the bytes of its stdin as
// events to the node's object "job.stdin" (notify: one chunk each, raw
// bytes at a stream offset, the last one marked end-of-input); the node
// writes them into the job's stdin FIFO and acknowledges, as a partial
// reply "job.stdin" to the submission, how far the job's pipe has taken
// the stream. The submitter sends only within kInputWindow bytes of the
// last acknowledgement, so a job that does not read makes everybody wait
// with a bounded amount in flight, never buffer without bound.
//
// A submitter that cannot finish the stream (its link broke, its listener
// went) sends a chunk marked cut: the node stops the job with a record that
// says its input was cut. A job never sees end-of-input it was not sent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace jsd {

// A chunk's payload, and the most a sender may have sent and not seen
// acknowledged (a node cuts the input of a sender that exceeds it).
constexpr size_t kInputChunk = size_t(64) << 10;  // 64 KiB
constexpr size_t kInputWindow = size_t(4) << 20;  // 4 MiB

struct InputChunk {
  static constexpr uint8_t kEof = 1, kCut = 2;
  std::string_view id;  // the job's id
  uint64_t offset = 0;  // the stream offset of data's first byte
  uint8_t flags = 0;
  std::string_view data;
  bool eof() const { return flags & kEof; }
  bool cut() const { return flags & kCut; }
};

// The body of a "job.stdin" event: flags u8, offset u64, id str8, data (the rest).
std::string encode_input_chunk(std::string_view id, uint64_t offset, std::string_view data, uint8_t flags = 0);
// Never throws: false with err on a body that is not one chunk (unknown
// flags, a short body, an empty or too long id, eof and cut at once).
bool decode_input_chunk(std::string_view body, InputChunk& c, std::string& err);

// The acknowledgement: the stream offset the job's pipe has taken, and
// closed once end-of-input reached the job (its stdin is closed).
struct InputAck {
  uint64_t acked = 0;
  bool closed = false;
};
std::string encode_input_ack(const InputAck& a);
bool decode_input_ack(std::string_view body, InputAck& a);

}  // namespace jsd
