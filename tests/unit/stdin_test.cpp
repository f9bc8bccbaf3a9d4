// Standard input to jobs (jsd-submit -i): the chunk and ack encodings
// (job_input.h), the node's side over a fake pipe (RunInput, job_stdin.h),
// the FIFO writer against a real FIFO, and the submitter's reader and its
// window (StdinFeed, stdin_feed.h) on a real loop.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "jobs/job_stdin.h"
#include "temp_dir.h"
#include "tools/stdin_feed.h"
#include "uvx.h"

using namespace jsd;

TEST(InputWire, ChunkRoundTripsBinaryBytes) {
  std::string data("\0\xff\n\r binary", 12);
  std::string body = encode_input_chunk("job-1", 12345, data, InputChunk::kEof);
  InputChunk c;
  std::string err;
  ASSERT_TRUE(decode_input_chunk(body, c, err)) << err;
  EXPECT_EQ(c.id, "job-1");
  EXPECT_EQ(c.offset, 12345u);
  EXPECT_TRUE(c.eof());
  EXPECT_FALSE(c.cut());
  EXPECT_EQ(c.data, data);
}

TEST(InputWire, MalformedChunksAreRefused) {
  InputChunk c;
  std::string err;
  EXPECT_FALSE(decode_input_chunk("", c, err));
  EXPECT_FALSE(decode_input_chunk(std::string(5, '\0'), c, err));                          // short header
  EXPECT_FALSE(decode_input_chunk(encode_input_chunk("", 0, "x"), c, err));                // no job
  EXPECT_FALSE(decode_input_chunk(encode_input_chunk("j", 0, "", 4), c, err));             // unknown flag
  EXPECT_FALSE(decode_input_chunk(encode_input_chunk("j", 0, "", 3), c, err));             // end and cut
  EXPECT_FALSE(decode_input_chunk(encode_input_chunk("j", UINT64_MAX, "xy"), c, err));     // offset overflows
  EXPECT_TRUE(decode_input_chunk(encode_input_chunk("j", UINT64_MAX - 2, "xy"), c, err));  // just fits
}

TEST(InputWire, AckRoundTrips) {
  InputAck a{1 << 30, true}, b;
  ASSERT_TRUE(decode_input_ack(encode_input_ack(a), b));
  EXPECT_EQ(b.acked, a.acked);
  EXPECT_TRUE(b.closed);
  EXPECT_FALSE(decode_input_ack("{\"acked\":-1}", b));
  EXPECT_FALSE(decode_input_ack("{\"closed\":true}", b));
  EXPECT_FALSE(decode_input_ack("[", b));
}

namespace {

// A job's stdin that takes what it is given when the test says so.
struct FakeInput : JobInput {
  std::string* written;
  bool* closed;
  uint64_t queued = 0, taken = 0;
  FakeInput(std::string* w, bool* c) : written(w), closed(c) {}
  void write(std::string_view d) override {
    written->append(d);
    queued += d.size();
  }
  void close() override { *closed = true; }
  size_t pending() const override { return size_t(queued - taken); }
  void take() {
    taken = queued;
    flushed(taken);
  }
};

struct NodeSide {
  std::string written;
  bool closed = false;
  FakeInput* in = nullptr;
  std::vector<InputAck> acks;
  std::vector<std::string> cuts;
  std::unique_ptr<RunInput> run;
  NodeSide() {
    auto f = std::make_unique<FakeInput>(&written, &closed);
    in = f.get();
    run = std::make_unique<RunInput>(
        std::move(f), [this](const InputAck& a) { acks.push_back(a); },
        [this](const std::string& why) {
          cuts.push_back(why);
          in = nullptr;  // gone with the input
        });
  }
  void chunk(uint64_t off, std::string_view d, uint8_t flags = 0) {
    std::string body = encode_input_chunk("j", off, d, flags), err;
    InputChunk c;
    ASSERT_TRUE(decode_input_chunk(body, c, err));
    run->chunk(c);
  }
};

}  // namespace

TEST(RunInput, WritesInOrderAcksWhatThePipeTookAndCloses) {
  NodeSide n;
  n.chunk(0, "hello ");
  n.chunk(6, "world");
  EXPECT_EQ(n.written, "hello world");
  EXPECT_TRUE(n.acks.empty());  // nothing taken yet
  n.in->take();
  ASSERT_EQ(n.acks.size(), 1u);
  EXPECT_EQ(n.acks[0].acked, 11u);
  EXPECT_FALSE(n.acks[0].closed);
  n.chunk(11, "", InputChunk::kEof);
  EXPECT_TRUE(n.closed);
  n.in->take();
  EXPECT_TRUE(n.acks.back().closed);
  EXPECT_TRUE(n.run->over());
  EXPECT_TRUE(n.cuts.empty());
}

TEST(RunInput, ResentBytesGoInOnce) {
  NodeSide n;
  n.chunk(0, "abcd");
  n.chunk(2, "cdef");  // overlaps
  n.chunk(0, "ab");    // all seen
  EXPECT_EQ(n.written, "abcdef");
  EXPECT_EQ(n.run->received(), 6u);
}

TEST(RunInput, AGapCutsTheInput) {
  NodeSide n;
  n.chunk(0, "abc");
  n.chunk(10, "xyz");
  ASSERT_EQ(n.cuts.size(), 1u);
  EXPECT_NE(n.cuts[0].find("never arrived"), std::string::npos);
  EXPECT_EQ(n.written, "abc");
  EXPECT_FALSE(n.closed);  // never an end of input
  n.chunk(3, "def", InputChunk::kEof);
  EXPECT_EQ(n.cuts.size(), 1u);  // once
}

TEST(RunInput, TheSubmittersCutStopsTheJobWithItsReason) {
  NodeSide n;
  n.chunk(0, "abc");
  n.chunk(3, "the link to beta went down", InputChunk::kCut);
  ASSERT_EQ(n.cuts.size(), 1u);
  EXPECT_EQ(n.cuts[0], "the link to beta went down");
  EXPECT_FALSE(n.closed);
}

TEST(RunInput, ASenderBeyondItsWindowIsCut) {
  NodeSide n;
  std::string chunk(kInputChunk, 'x');
  uint64_t off = 0;
  while (n.cuts.empty() && off < 2 * kInputWindow) {
    n.chunk(off, chunk);
    off += chunk.size();
  }
  ASSERT_EQ(n.cuts.size(), 1u);
  EXPECT_LE(off, kInputWindow + 2 * kInputChunk);
}

TEST(RunInput, AJobThatClosesItsStdinEndsTheInput) {
  NodeSide n;
  n.chunk(0, "abc");
  n.in->failed("broken pipe");
  ASSERT_EQ(n.acks.size(), 1u);
  EXPECT_TRUE(n.acks[0].closed);
  EXPECT_TRUE(n.run->over());
  n.chunk(3, "def");
  EXPECT_EQ(n.written, "abc");
  EXPECT_TRUE(n.cuts.empty());
}

TEST(FifoInput, WritesThroughAFifoAndClosesIt) {
  jsd_test::TempDir d("stdin");
  std::string path = d.file("stdin.pipe");
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  int rd = open(path.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(rd, 0);
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  bool done = false;
  uint64_t taken = 0;
  std::string err;
  {
    auto in = open_fifo_input(
        &loop, path, [&] { done = true; }, err);
    ASSERT_TRUE(in) << err;
    in->flushed = [&](uint64_t n) { taken = n; };
    in->write("some bytes");
    in->close();
    uv_run(&loop, UV_RUN_DEFAULT);
    EXPECT_TRUE(done);
    EXPECT_EQ(taken, 10u);
  }
  char buf[64];
  ssize_t n = read(rd, buf, sizeof buf);
  EXPECT_EQ(std::string(buf, size_t(n > 0 ? n : 0)), "some bytes");
  EXPECT_EQ(read(rd, buf, sizeof buf), 0);  // the writer is gone: end of input
  close(rd);
  EXPECT_EQ(close_loop(&loop), 0);
}

TEST(FifoInput, NoReaderIsAnError) {
  jsd_test::TempDir d("stdin");
  std::string path = d.file("stdin.pipe");
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  std::string err;
  EXPECT_FALSE(open_fifo_input(&loop, path, nullptr, err));
  EXPECT_NE(err.find("No such device"), std::string::npos) << err;
  EXPECT_EQ(close_loop(&loop), 0);
}

namespace {

// Runs a feed over fd to the nodes given; acks as the test's policy says.
struct FeedRun {
  uv_loop_t loop;
  std::map<std::string, std::string> got;  // node -> bytes
  std::map<std::string, bool> eof, cut;
  std::unique_ptr<StdinFeed> feed;
  explicit FeedRun(int fd) {
    EXPECT_EQ(uv_loop_init(&loop), 0);
    feed = std::make_unique<StdinFeed>(&loop, fd, [this](const std::string& node, const std::string& body) {
      InputChunk c;
      std::string err;
      EXPECT_TRUE(decode_input_chunk(body, c, err)) << err;
      EXPECT_EQ(c.offset, got[node].size());
      got[node].append(c.data);
      if (c.eof()) eof[node] = true;
      if (c.cut()) cut[node] = true;
      return true;
    });
  }
  ~FeedRun() {
    feed.reset();
    EXPECT_EQ(close_loop(&loop), 0);
  }
};

}  // namespace

TEST(StdinFeed, AFileGoesWholeToEveryNodeWithinTheWindow) {
  jsd_test::TempDir d("stdin");
  std::string path = d.file("in");
  std::string data;
  for (size_t i = 0; i < 3 * kInputWindow + 123; ++i) data += char(i * 7 + i / 251);
  {
    FILE* f = fopen(path.c_str(), "w");
    ASSERT_TRUE(f);
    fwrite(data.data(), 1, data.size(), f);
    fclose(f);
  }
  int fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  {
    FeedRun r(fd);
    r.feed->add("beta", "j1");
    r.feed->add("gamma", "j2");
    std::string err;
    ASSERT_TRUE(r.feed->start(err)) << err;
    // No acks: it stops at the window.
    uv_run(&r.loop, UV_RUN_DEFAULT);
    EXPECT_GE(r.got["beta"].size(), kInputWindow);
    EXPECT_LT(r.got["beta"].size(), kInputWindow + kInputChunk);
    EXPECT_EQ(r.got["gamma"].size(), r.got["beta"].size());
    // beta acks everything; gamma holds the window: still paused.
    r.feed->on_ack("beta", {r.got["beta"].size(), false});
    uv_run(&r.loop, UV_RUN_NOWAIT);
    EXPECT_LT(r.got["beta"].size(), kInputWindow + kInputChunk);
    // Both ack as they go: all of it, then the end.
    while (!r.eof["beta"]) {
      r.feed->on_ack("beta", {r.got["beta"].size(), false});
      r.feed->on_ack("gamma", {r.got["gamma"].size(), false});
      uv_run(&r.loop, UV_RUN_DEFAULT);
    }
    EXPECT_EQ(r.got["beta"], data);
    EXPECT_EQ(r.got["gamma"], data);
    EXPECT_TRUE(r.eof["gamma"]);
    EXPECT_TRUE(r.feed->in_progress("beta"));  // until its end is acknowledged
    r.feed->on_ack("beta", {data.size(), true});
    EXPECT_FALSE(r.feed->in_progress("beta"));
  }
  close(fd);
}

TEST(StdinFeed, APipeIsReadAndACutNodeGetsNoMore) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  {
    FeedRun r(p[0]);
    r.feed->add("beta", "j1");
    r.feed->add("gamma", "j2");
    std::string err;
    ASSERT_TRUE(r.feed->start(err)) << err;
    ASSERT_EQ(write(p[1], "abc", 3), 3);
    while (r.got["gamma"].size() < 3) uv_run(&r.loop, UV_RUN_ONCE);
    r.feed->cut("beta", "the link went down");
    EXPECT_TRUE(r.cut["beta"]);
    EXPECT_FALSE(r.feed->in_progress("beta"));
    ASSERT_EQ(write(p[1], "def", 3), 3);
    close(p[1]);
    while (!r.eof["gamma"]) uv_run(&r.loop, UV_RUN_ONCE);
    EXPECT_EQ(r.got["gamma"], "abcdef");
    EXPECT_EQ(r.got["beta"], "abcthe link went down");  // the cut's reason rides in its data
    EXPECT_FALSE(r.eof["beta"]);
  }
}
