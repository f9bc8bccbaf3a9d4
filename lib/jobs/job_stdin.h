// A job's standard input on its node (jsd-submit -i; the wire is
// job_input.h): RunInput takes the submitter's chunks in stream order,
// writes them into the job's stdin (a JobInput) and acknowledges what the
// job's pipe took; it cuts the input, once, on anything that would let the
// job read a stream that is not the one sent (a gap, a sender over its
// window, the submitter's cut). FifoInput is the real JobInput: the write
// end of the job's stdin FIFO (job_files.h), on the loop.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "job_input.h"
#include "job_io.h"

namespace jsd {

class RunInput {
 public:
  // ack: tell the submitter (a partial reply "job.stdin"); cut: stop the
  // job, its input was cut (why, for its record). Either may be called
  // from within chunk().
  RunInput(std::unique_ptr<JobInput> in, std::function<void(const InputAck&)> ack,
           std::function<void(const std::string& why)> cut);
  void chunk(const InputChunk& c);
  // No more input will be taken: complete, closed by the job, or cut.
  bool over() const { return over_; }
  uint64_t received() const { return next_; }

 private:
  void do_cut(const std::string& why);
  std::unique_ptr<JobInput> in_;
  std::function<void(const InputAck&)> ack_;
  std::function<void(const std::string&)> cut_;
  uint64_t next_ = 0;  // the stream offset of the next byte expected
  bool eof_ = false, over_ = false;
};

// Opens path (a FIFO whose reader is the running job) for writing, without
// waiting; done() once the input was closed after all of it was taken.
std::unique_ptr<JobInput> open_fifo_input(uv_loop_t* loop, const std::string& path, std::function<void()> done,
                                          std::string& err);

}  // namespace jsd
