#!/usr/bin/env python3
"""A frame-aware TCP proxy for the integration tests: it sits between two
jsd nodes and, on command, flips a bit in, drops, duplicates or cuts the
connection at one chosen frame, records frames, and replays recorded frames
on a new connection of its own.

Python 3 standard library only (asyncio).

Server:

  tamper_proxy.py --listen-host 127.0.0.20 --target-host 127.0.0.3 \\
      --ports 4455,56000-56009 --control DIR/ctl.sock [--ready-fd N] \\
      [--source-host HOST|client]

  Listens on LISTEN-HOST:P for every P of --ports and forwards each accepted
  connection to TARGET-HOST:P (the same port), both directions. The first
  port of --ports is the "node" port (the listener's handshake port); every
  other port is a "link" port (the queue-server port range). The streams
  are cut into frames (4-byte big-endian length + payload) to count them and
  to apply rules; a frame is forwarded once it is whole, and the bytes are
  forwarded unchanged unless a rule says otherwise. A length above 64 MiB
  makes that direction of that connection plain byte forwarding from there
  on (no more rules fire there; records get those bytes as "raw" entries).

  --ready-fd N: "ready\\n" is written to the inherited fd N once every port
  and the control socket listen, and N is closed. If the proxy cannot start
  it exits with status 2 without writing (the reader sees end of file).
  Usage from bash:  mkfifo f; tamper_proxy.py ... --ready-fd 3 3>f & read -r l < f

  --source-host: the local address the proxy's own connections to the
  target are made from: an IP, or "client" for the address of the client
  whose connection is forwarded (fine on loopback); default: the kernel's
  choice (127.0.0.1 for a loopback target).

  Runs until SIGTERM or SIGINT, then closes everything, removes the control
  socket and exits 0. Logs to stderr one line when a connection opens (or
  the target refuses it), one when it closes, one per rule set or fired,
  and one per replay start and end.

Control socket (--control, a Unix stream socket created with mode 0600):
one JSON object per line in, one JSON object per line out, any number of
commands on one connection. Every answer has "ok"; a failed command answers
{"ok": false, "error": "..."}.

  Connection selectors, used by "rule" and "record":
    "port": "node" | "link" | "any" | <a port number>   (default "any")
    "conn": N   (default 1) the N-th connection on that kind of port counting
                from when the command is given (1 = the next one). Only
                connections that reached the target are counted: one the
                target refused (the client gets a reset) is not.

  {"op":"rule", "dir":"c2s"|"s2c", "port":..., "conn":N, "frame":K,
   "action":"flip"|"drop"|"dup"|"close"|"hold", "offset":B, "mask":M, "rst":bool}
      A one-shot rule for frame K (0-based, counted per connection and
      direction from its start; "dir" c2s is what the accepted client sends).
      flip: XOR the byte at offset B (default 0) of the frame, counted from
        the first byte of the 4-byte header (so B=4 is the first payload
        byte; a negative B counts from the frame's end, -1 = its last byte)
        with M (default 1, 1-255). An offset outside the frame flips nothing
        (the rule still fires; "applied": false in stats).
      drop: the frame is not forwarded.
      dup:  the frame is forwarded twice.
      close: frames before K are forwarded (and flushed), frame K is not,
        and both sides of the connection are closed (FIN; with "rst": true
        they are reset instead).
      hold: frame K and everything after it in that direction wait (the
        proxy stops reading that side) until {"op":"release"} for this
        rule; the other direction goes on. A hold fires (for "wait") when
        frame K arrives.
      Several rules may hit the same frame: flips are applied first, then
      close wins over drop, drop over dup; a hold comes last.
      -> {"ok":true, "id":ID}
  {"op":"record", "port":..., "conn":N}
      Records every frame of that connection, both directions.
      -> {"ok":true, "id":ID}
  {"op":"get", "id":ID}
      -> {"ok":true, "state":"pending"|"open"|"closed", "port":P|null,
          "frames":[{"dir":"c2s", "index":K, "hex":"<header+payload>"}, ...]}
      Frames are as received by the proxy (before any rule), header included,
      in the order the proxy read them. Bytes forwarded raw (after an absurd
      length, or an incomplete frame at end of stream) appear as
      {"dir":..., "raw":true, "hex":...}.
  {"op":"wait", "id":ID, "timeout":S}   (default 10 s)
      For a rule: answers once it fired; for a record: once that connection
      closed. -> {"ok":true, "done":true|false} (false: timed out).
  {"op":"replay", "port":P|"node", "frames_hex":["..."], "read_frames":R,
   "timeout":S}
      Connects to TARGET-HOST:P directly (from --source-host if that is an
      IP), sends the frames (each hex string already includes its header,
      all sent at once, in order), reads up to R frames back (default 0)
      within S seconds (default 5) and closes.
      -> {"ok":true, "frames_hex":[...], "eof":bool, "timed_out":bool,
          "error":"..." (only if the connection failed part way),
          "trailing_hex":"..." (only if an incomplete frame was left)}
      Replays are not counted as proxied connections.
  {"op":"release", "id":ID}
      Lets a hold rule's frames go (also before it fired: then it does not
      hold at all). -> {"ok":true}
  {"op":"stats"}
      -> {"ok":true, "conns":{"4455":n, ...} (accepted per port),
          "forwarded":{...} (of those, reached the target), "refused":{...},
          "open":n, "replays":n, "rules_pending":[rule...],
          "rules_fired":[rule... with "conn_port", "applied"]}
  {"op":"clear"}
  {"op":"cut"}                      close every open proxied connection
      Removes every rule that has not fired. -> {"ok":true, "removed":n}
  {"op":"ping"} -> {"ok":true}

Client (for shell scripts):

  tamper_proxy.py --control DIR/ctl.sock --cmd JSON [--cmd JSON ...]

  Sends each command in turn on one connection and prints each answer on a
  line of its own; exits 0 if every answer has "ok": true, else 1.
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import stat
import struct
import sys
import time

MAX_FRAME = 64 << 20
READ_CHUNK = 256 * 1024
DIRS = ("c2s", "s2c")
ACTIONS = ("flip", "drop", "dup", "close", "hold")


def log(msg):
    t = time.time()
    sys.stderr.write("%s.%03d tamper_proxy: %s\n" % (time.strftime("%H:%M:%S", time.localtime(t)),
                                                     int(t * 1000) % 1000, msg))
    sys.stderr.flush()


def parse_ports(spec):
    ports = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            a, b = int(a), int(b)
            if a > b:
                raise ValueError("bad range %s" % part)
            ports.extend(range(a, b + 1))
        else:
            ports.append(int(part))
    if not ports:
        raise ValueError("no ports")
    for p in ports:
        if not 1 <= p <= 65535:
            raise ValueError("port %d out of range" % p)
    if len(set(ports)) != len(ports):
        raise ValueError("a port is listed twice")
    return ports


class CmdError(Exception):
    pass


class StartError(Exception):
    pass


class Rule:
    def __init__(self, rid, kind, target, conn, d, frame, action, offset, mask, rst):
        self.id, self.kind, self.target, self.conn = rid, kind, target, conn
        self.dir, self.frame, self.action = d, frame, action
        self.offset, self.mask, self.rst = offset, mask, rst
        self.fired = asyncio.Event()
        self.fired_info = None
        self.released = asyncio.Event()  # a hold's frames may go

    def describe(self):
        d = {"id": self.id, "port": self.kind, "conn": self.conn, "dir": self.dir,
             "frame": self.frame, "action": self.action}
        if self.action == "flip":
            d["offset"], d["mask"] = self.offset, self.mask
        if self.action == "close" and self.rst:
            d["rst"] = True
        if self.fired_info:
            d.update(self.fired_info)
        return d


class Record:
    def __init__(self, rid, kind, target):
        self.id, self.kind, self.target = rid, kind, target
        self.state = "pending"
        self.port = None
        self.frames = []
        self.closed = asyncio.Event()


class Direction:
    """One direction of a proxied connection: reads, cuts frames, applies
    rules, writes."""

    def __init__(self, conn, name, reader, writer):
        self.conn, self.name = conn, name
        self.reader, self.writer = reader, writer
        self.buf = bytearray()
        self.index = 0        # frames seen so far in this direction
        self.raw = False

    def rules_for(self, index):
        return [r for r in self.conn.rules if r.dir == self.name and r.frame == index
                and not r.fired.is_set()]

    async def run(self):
        r = await self.pump()
        if r == "error":
            self.conn.abort()
        return r

    async def pump(self):
        while True:
            try:
                data = await self.reader.read(READ_CHUNK)
            except (ConnectionError, OSError) as e:
                self.conn.note("%s read error: %s" % (self.name, e))
                return "error"
            if not data:
                if self.buf:
                    rest = bytes(self.buf)
                    self.buf.clear()
                    self.conn.record(self.name, None, rest)
                    self.writer.write(rest)
                try:
                    await self.writer.drain()
                    if self.writer.can_write_eof():
                        self.writer.write_eof()
                except (ConnectionError, OSError):
                    return "error"
                return "eof"
            if self.raw:
                self.conn.record(self.name, None, data)
                self.writer.write(data)
            else:
                self.buf += data
                if await self.cut_frames():
                    return "closed"
            try:
                await self.writer.drain()
            except (ConnectionError, OSError) as e:
                self.conn.note("%s write error: %s" % (self.name, e))
                return "error"

    async def cut_frames(self):
        """Forwards every whole frame in buf. True if a close rule fired."""
        pos = 0
        out = []
        buf = self.buf
        while len(buf) - pos >= 4:
            n = struct.unpack_from(">I", buf, pos)[0]
            if n > MAX_FRAME:
                self.conn.note("%s frame %d announces %d bytes: forwarding raw from here on"
                               % (self.name, self.index, n))
                self.raw = True
                rest = bytes(buf[pos:])
                self.conn.record(self.name, None, rest)
                out.append(rest)
                pos = len(buf)
                break
            if len(buf) - pos < 4 + n:
                break
            frame = bytes(buf[pos:pos + 4 + n])
            pos += 4 + n
            idx = self.index
            self.index += 1
            self.conn.record(self.name, idx, frame)
            rules = self.rules_for(idx) if self.conn.rules else []
            if not rules:
                out.append(frame)
                continue
            frame = bytearray(frame)
            close_rule = hold_rule = None
            drop = dup = False
            for r in rules:
                info = {"conn_port": self.conn.port, "conn_id": self.conn.cid, "applied": True}
                if r.action == "flip":
                    off = r.offset if r.offset >= 0 else len(frame) + r.offset
                    if 0 <= off < len(frame):
                        frame[off] ^= r.mask
                        what = "flipped 0x%02x at offset %d" % (r.mask, off)
                    else:
                        info["applied"] = False
                        what = "offset %d is outside the %d-byte frame, nothing flipped" % (r.offset, len(frame))
                elif r.action == "drop":
                    drop = True
                    what = "dropped"
                elif r.action == "dup":
                    dup = True
                    what = "duplicated"
                elif r.action == "hold":
                    hold_rule = r
                    what = "holding it and what follows until released"
                else:
                    close_rule = r
                    what = "closing the connection (%s)" % ("rst" if r.rst else "fin")
                r.fired_info = info
                r.fired.set()
                self.conn.proxy.fired.append(r)
                self.conn.note("rule %d fired: %s frame %d (%d bytes): %s"
                               % (r.id, self.name, idx, len(frame), what))
            if close_rule is not None:
                del buf[:pos]
                if out:
                    self.writer.write(b"".join(out))
                await self.conn.close_now(close_rule.rst, self)
                return True
            if hold_rule is not None:
                # What came before goes now; this frame and the rest of
                # buf wait (nothing more is read from this side meanwhile).
                if out:
                    self.writer.write(b"".join(out))
                    out = []
                    try:
                        await self.writer.drain()
                    except (ConnectionError, OSError):
                        pass
                await hold_rule.released.wait()
                self.conn.note("rule %d released: %s frame %d goes" % (hold_rule.id, self.name, idx))
            if drop:
                continue
            out.append(bytes(frame))
            if dup:
                out.append(bytes(frame))
        if pos:
            del buf[:pos]
        if out:
            self.writer.write(b"".join(out))
        return False


class Conn:
    def __init__(self, proxy, cid, port, peer, creader, cwriter):
        self.proxy, self.cid, self.port = proxy, cid, port
        self.kinds = {}       # kind -> this connection's ordinal, once forwarded
        self.peer = peer
        self.creader, self.cwriter = creader, cwriter
        self.swriter = None
        self.rules = []
        self.records = []
        self.tasks = []
        self.closing = False
        self.frames = {"c2s": 0, "s2c": 0}

    def label(self):
        if not self.kinds:
            return "conn %d (:%d)" % (self.cid, self.port)
        return "conn %d (:%d %s)" % (self.cid, self.port,
                                     " ".join("%s#%d" % (k, v) for k, v in self.kinds.items()
                                              if not isinstance(k, int)))

    def note(self, msg):
        log("%s: %s" % (self.label(), msg))

    def record(self, d, index, data):
        for rec in self.records:
            if index is None:
                rec.frames.append({"dir": d, "raw": True, "hex": data.hex()})
            else:
                rec.frames.append({"dir": d, "index": index, "hex": data.hex()})

    async def close_now(self, rst, caller):
        if self.closing:
            return
        self.closing = True
        for w in (self.cwriter, self.swriter):
            if w is None:
                continue
            try:
                if rst:
                    sock = w.get_extra_info("socket")
                    if sock is not None:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    w.transport.abort()
                else:
                    await w.drain()
                    w.close()
            except (ConnectionError, OSError):
                w.transport.abort()
        for t in self.tasks:
            if t is not asyncio.current_task():
                t.cancel()

    def abort(self):
        self.closing = True
        for w in (self.cwriter, self.swriter):
            if w is not None:
                w.transport.abort()

    async def run(self):
        p = self.proxy
        src = None
        if p.source_host == "client":
            src = (self.peer[0], 0)
        elif p.source_host:
            src = (p.source_host, 0)
        try:
            sreader, self.swriter = await asyncio.open_connection(p.target_host, self.port,
                                                                  local_addr=src)
        except (ConnectionError, OSError) as e:
            p.refused[self.port] += 1
            self.note("from %s:%d: cannot connect to %s:%d: %s; resetting the client (not counted)"
                      % (self.peer[0], self.peer[1], p.target_host, self.port, e))
            try:
                sock = self.cwriter.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            self.cwriter.transport.abort()
            self.finish(None)
            return
        p.attach(self)
        self.note("open from %s:%d to %s:%d" % (self.peer[0], self.peer[1], p.target_host, self.port))
        c2s = Direction(self, "c2s", self.creader, self.swriter)
        s2c = Direction(self, "s2c", sreader, self.cwriter)
        self.dirs = (c2s, s2c)
        self.tasks = [asyncio.ensure_future(c2s.run()), asyncio.ensure_future(s2c.run())]
        why = []
        for t, d in zip(self.tasks, self.dirs):
            try:
                r = await t
            except asyncio.CancelledError:
                if not t.cancelled():
                    raise
                r = "cancelled"
            why.append("%s %s" % (d.name, r))
        # Flush whatever is still queued, then close both sides.
        for w in (self.cwriter, self.swriter):
            try:
                if not self.closing:
                    await w.drain()
                w.close()
            except (ConnectionError, OSError):
                w.transport.abort()
        self.finish(", ".join(why) + "; frames c2s %d s2c %d" % (c2s.index, s2c.index))

    def finish(self, why):
        for rec in self.records:
            rec.state = "closed"
            rec.closed.set()
        self.proxy.open.discard(self)
        if why:
            self.note("closed: %s" % why)


class Proxy:
    def __init__(self, args, ports):
        self.listen_host, self.target_host = args.listen_host, args.target_host
        self.ports = ports
        self.node_port = ports[0]
        self.source_host = args.source_host
        self.control_path = args.control
        self.counters = {}    # kind -> connections accepted so far
        self.per_port = {p: 0 for p in ports}     # accepted
        self.forwarded = {p: 0 for p in ports}    # reached the target
        self.refused = {p: 0 for p in ports}      # the target refused
        self.next_cid = 1
        self.next_id = 1
        self.rules = []       # not yet attached to a connection
        self.records = []     # not yet attached
        self.all_rules = []
        self.all_records = {}
        self.fired = []
        self.open = set()
        self.replays = 0
        self.servers = []
        self.controls = set()
        self.tasks = set()    # connection and control handlers, awaited on shutdown
        self.stop = asyncio.Event()

    # -- proxied connections ------------------------------------------------

    def kinds_of(self, port):
        return ["any", "node" if port == self.node_port else "link", port]

    def attach(self, conn):
        """Numbers a connection that reached the target (connections the
        target refused are not counted) and gives it its rules and records."""
        kinds = conn.kinds
        for k in self.kinds_of(conn.port):
            self.counters[k] = self.counters.get(k, 0) + 1
            kinds[k] = self.counters[k]
        self.forwarded[conn.port] += 1
        for r in list(self.rules):
            if r.kind in kinds and kinds[r.kind] == r.target:
                self.rules.remove(r)
                conn.rules.append(r)
        for rec in list(self.records):
            if rec.kind in kinds and kinds[rec.kind] == rec.target:
                self.records.remove(rec)
                rec.state, rec.port = "open", conn.port
                conn.records.append(rec)

    def on_accept(self, port):
        async def handler(reader, writer):
            self.per_port[port] += 1
            cid = self.next_cid
            self.next_cid += 1
            peer = writer.get_extra_info("peername") or ("?", 0)
            conn = Conn(self, cid, port, peer, reader, writer)
            self.open.add(conn)
            self.tasks.add(asyncio.current_task())
            try:
                await conn.run()
            except Exception as e:  # keep the proxy up whatever happens to one connection
                conn.note("internal error: %r" % (e,))
                conn.abort()
                conn.finish("internal error")
            finally:
                self.tasks.discard(asyncio.current_task())
        return handler

    # -- control ------------------------------------------------------------

    def selector(self, cmd):
        kind = cmd.get("port", "any")
        if isinstance(kind, bool) or not (kind in ("node", "link", "any") or
                                          (isinstance(kind, int) and kind in self.per_port)):
            raise CmdError('"port" must be "node", "link", "any" or one of the proxied ports')
        n = cmd.get("conn", 1)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise CmdError('"conn" must be an integer >= 1')
        return kind, self.counters.get(kind, 0) + n, n

    def take_id(self):
        i = self.next_id
        self.next_id += 1
        return i

    def op_rule(self, cmd):
        kind, target, n = self.selector(cmd)
        d = cmd.get("dir")
        if d not in DIRS:
            raise CmdError('"dir" must be "c2s" or "s2c"')
        action = cmd.get("action")
        if action not in ACTIONS:
            raise CmdError('"action" must be one of ' + ", ".join(ACTIONS))
        frame = cmd.get("frame")
        if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
            raise CmdError('"frame" must be an integer >= 0')
        offset = cmd.get("offset", 0)
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise CmdError('"offset" must be an integer')
        mask = cmd.get("mask", 1)
        if isinstance(mask, bool) or not isinstance(mask, int) or not 1 <= mask <= 255:
            raise CmdError('"mask" must be an integer 1-255')
        rst = bool(cmd.get("rst", False))
        r = Rule(self.take_id(), kind, target, n, d, frame, action, offset, mask, rst)
        self.rules.append(r)
        self.all_rules.append(r)
        log("rule %d set: %s" % (r.id, json.dumps(r.describe())))
        return {"ok": True, "id": r.id}

    def op_record(self, cmd):
        kind, target, n = self.selector(cmd)
        rec = Record(self.take_id(), kind, target)
        self.records.append(rec)
        self.all_records[rec.id] = rec
        return {"ok": True, "id": rec.id}

    def lookup(self, cmd):
        i = cmd.get("id")
        rec = self.all_records.get(i) if isinstance(i, int) else None
        if rec is not None:
            return rec
        for r in self.all_rules:
            if r.id == i:
                return r
        raise CmdError("no rule or record with id %r" % (i,))

    def op_get(self, cmd):
        rec = self.lookup(cmd)
        if not isinstance(rec, Record):
            raise CmdError("id %r is a rule, not a record" % (rec.id,))
        return {"ok": True, "state": rec.state, "port": rec.port, "frames": list(rec.frames)}

    async def op_wait(self, cmd):
        obj = self.lookup(cmd)
        timeout = cmd.get("timeout", 10)
        ev = obj.closed if isinstance(obj, Record) else obj.fired
        try:
            await asyncio.wait_for(ev.wait(), timeout)
        except asyncio.TimeoutError:
            return {"ok": True, "done": False}
        return {"ok": True, "done": True}

    async def op_replay(self, cmd):
        port = cmd.get("port")
        if port == "node":
            port = self.node_port
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise CmdError('"port" must be a port number or "node"')
        hexes = cmd.get("frames_hex", [])
        if not isinstance(hexes, list):
            raise CmdError('"frames_hex" must be a list of hex strings')
        try:
            data = b"".join(bytes.fromhex(h) for h in hexes)
        except (TypeError, ValueError):
            raise CmdError('"frames_hex" must be a list of hex strings')
        want = cmd.get("read_frames", 0)
        if isinstance(want, bool) or not isinstance(want, int) or want < 0:
            raise CmdError('"read_frames" must be an integer >= 0')
        timeout = cmd.get("timeout", 5)
        src = (self.source_host, 0) if self.source_host and self.source_host != "client" else None
        self.replays += 1
        n = self.replays
        log("replay %d: %d frames (%d bytes) to %s:%d, reading up to %d"
            % (n, len(hexes), len(data), self.target_host, port, want))
        ans = {"ok": True, "frames_hex": [], "eof": False, "timed_out": False}
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.target_host, port, local_addr=src), timeout)
        except asyncio.TimeoutError:
            raise CmdError("replay: connecting to %s:%d timed out" % (self.target_host, port))
        except (ConnectionError, OSError) as e:
            raise CmdError("replay: cannot connect to %s:%d: %s" % (self.target_host, port, e))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        buf = bytearray()
        try:
            writer.write(data)
            await asyncio.wait_for(writer.drain(), max(0.0, deadline - loop.time()))
            while len(ans["frames_hex"]) < want:
                if len(buf) >= 4:
                    m = struct.unpack_from(">I", buf, 0)[0]
                    if m > MAX_FRAME:
                        ans["error"] = "a frame announces %d bytes" % m
                        break
                    if len(buf) >= 4 + m:
                        ans["frames_hex"].append(bytes(buf[:4 + m]).hex())
                        del buf[:4 + m]
                        continue
                left = deadline - loop.time()
                if left <= 0:
                    ans["timed_out"] = True
                    break
                try:
                    chunk = await asyncio.wait_for(reader.read(READ_CHUNK), left)
                except asyncio.TimeoutError:
                    ans["timed_out"] = True
                    break
                if not chunk:
                    ans["eof"] = True
                    break
                buf += chunk
        except asyncio.TimeoutError:
            ans["timed_out"] = True
        except (ConnectionError, OSError) as e:
            ans["error"] = str(e) or e.__class__.__name__
        finally:
            if "error" in ans:
                writer.transport.abort()
            else:
                writer.close()
        if buf:
            ans["trailing_hex"] = bytes(buf).hex()
        log("replay %d: got %d frames%s%s%s" % (n, len(ans["frames_hex"]),
                                                 ", eof" if ans["eof"] else "",
                                                 ", timed out" if ans["timed_out"] else "",
                                                 ", error: " + ans["error"] if "error" in ans else ""))
        return ans

    def op_release(self, cmd):
        r = self.lookup(cmd)
        if isinstance(r, Record) or r.action != "hold":
            raise CmdError("id %r is not a hold rule" % (cmd.get("id"),))
        r.released.set()
        log("rule %d: released" % r.id)
        return {"ok": True}

    def op_stats(self, cmd):
        return {"ok": True,
                "conns": {str(p): c for p, c in self.per_port.items() if c},
                "forwarded": {str(p): c for p, c in self.forwarded.items() if c},
                "refused": {str(p): c for p, c in self.refused.items() if c},
                "open": len(self.open),
                "replays": self.replays,
                "rules_pending": [r.describe() for r in self.all_rules if not r.fired.is_set()],
                "rules_fired": [r.describe() for r in self.fired]}

    def op_clear(self, cmd):
        self.rules = []
        for conn in self.open:
            conn.rules = [r for r in conn.rules if r.fired.is_set()]
        gone = [r for r in self.all_rules if not r.fired.is_set()]
        self.all_rules = [r for r in self.all_rules if r.fired.is_set()]
        log("cleared %d pending rules" % len(gone))
        return {"ok": True, "removed": len(gone)}

    async def command(self, line):
        try:
            cmd = json.loads(line)
        except ValueError as e:
            return {"ok": False, "error": "bad JSON: %s" % e}
        if not isinstance(cmd, dict):
            return {"ok": False, "error": "a command is a JSON object"}
        op = cmd.get("op")
        try:
            if op == "rule":
                return self.op_rule(cmd)
            if op == "record":
                return self.op_record(cmd)
            if op == "get":
                return self.op_get(cmd)
            if op == "wait":
                return await self.op_wait(cmd)
            if op == "replay":
                return await self.op_replay(cmd)
            if op == "release":
                return self.op_release(cmd)
            if op == "stats":
                return self.op_stats(cmd)
            if op == "clear":
                return self.op_clear(cmd)
            if op == "ping":
                return {"ok": True}
            if op == "cut":
                # Every open proxied connection goes (both sides): the
                # next connection numbers start fresh for new rules.
                conns = list(self.open)
                for c in conns:
                    await c.close_now(False, "cut")
                return {"ok": True, "closed": len(conns)}
            raise CmdError("unknown op %r" % (op,))
        except CmdError as e:
            return {"ok": False, "error": str(e)}

    async def on_control(self, reader, writer):
        self.controls.add(writer)
        self.tasks.add(asyncio.current_task())
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                if not line.strip():
                    continue
                # A command may wait (wait, replay): shutting down must not.
                job = asyncio.ensure_future(self.command(line))
                stop = asyncio.ensure_future(self.stop.wait())
                await asyncio.wait([job, stop], return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                if not job.done():
                    job.cancel()
                    break
                ans = job.result()
                writer.write(json.dumps(ans).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, OSError, ValueError, asyncio.LimitOverrunError):
            pass
        finally:
            self.controls.discard(writer)
            self.tasks.discard(asyncio.current_task())
            writer.close()

    # -- life cycle -----------------------------------------------------------

    async def start(self):
        for p in self.ports:
            try:
                srv = await asyncio.start_server(self.on_accept(p), self.listen_host, p,
                                                 reuse_address=True, backlog=128)
            except OSError as e:
                raise StartError("tamper_proxy: cannot listen on %s:%d: %s" % (self.listen_host, p, e.strerror or e))
            self.servers.append(srv)
        path = self.control_path
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)
        except FileNotFoundError:
            pass
        old = os.umask(0o177)
        try:
            srv = await asyncio.start_unix_server(self.on_control, path, limit=1 << 28)
        except OSError as e:
            raise StartError("tamper_proxy: cannot listen on %s: %s" % (path, e.strerror or e))
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        self.servers.append(srv)
        log("forwarding %s -> %s, ports %s (node port %d), control %s"
            % (self.listen_host, self.target_host, describe_ports(self.ports), self.node_port, path))

    async def shutdown(self):
        for r in self.all_rules:
            r.released.set()  # nothing waits on a hold any more
        for s in self.servers:
            s.close()
        for c in list(self.open):
            c.abort()
        for w in list(self.controls):
            w.transport.abort()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=2)
        try:
            os.unlink(self.control_path)
        except OSError:
            pass
        for s in self.servers:
            try:
                await asyncio.wait_for(s.wait_closed(), 2)
            except (asyncio.TimeoutError, Exception):
                pass


def describe_ports(ports):
    out, i = [], 0
    while i < len(ports):
        j = i
        while j + 1 < len(ports) and ports[j + 1] == ports[j] + 1:
            j += 1
        out.append(str(ports[i]) if i == j else "%d-%d" % (ports[i], ports[j]))
        i = j + 1
    return ",".join(out)


async def serve(args, ports):
    proxy = Proxy(args, ports)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, proxy.stop.set)
    await proxy.start()
    if args.ready_fd is not None:
        try:
            os.write(args.ready_fd, b"ready\n")
        finally:
            os.close(args.ready_fd)
        args.ready_fd = None
    await proxy.stop.wait()
    log("stopping (%d open connections)" % len(proxy.open))
    await proxy.shutdown()


def client(args):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(args.control)
    except OSError as e:
        sys.stderr.write("tamper_proxy: cannot connect to %s: %s\n" % (args.control, e))
        return 1
    f = s.makefile("rwb")
    ok = True
    for c in args.cmd:
        f.write(c.strip().encode() + b"\n")
        f.flush()
        line = f.readline()
        if not line:
            sys.stderr.write("tamper_proxy: the proxy closed the control connection\n")
            return 1
        sys.stdout.write(line.decode())
        sys.stdout.flush()
        try:
            ok = ok and json.loads(line).get("ok") is True
        except ValueError:
            ok = False
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description="Frame-aware tampering TCP proxy for the jsd integration tests.")
    ap.add_argument("--listen-host")
    ap.add_argument("--target-host")
    ap.add_argument("--ports", help="e.g. 4455,56000-56009; the first is the node port")
    ap.add_argument("--control", required=True, help="control Unix socket path")
    ap.add_argument("--ready-fd", type=int)
    ap.add_argument("--source-host", help='local address for connections to the target, or "client"')
    ap.add_argument("--cmd", action="append",
                    help="client mode: send this JSON command to --control and print the answer")
    args = ap.parse_args()
    if args.cmd:
        return client(args)
    if not (args.listen_host and args.target_host and args.ports):
        ap.error("--listen-host, --target-host and --ports are required")
    try:
        ports = parse_ports(args.ports)
    except ValueError as e:
        ap.error("--ports: %s" % e)
    if args.ready_fd is not None:
        try:
            os.fstat(args.ready_fd)
        except OSError:
            ap.error("--ready-fd %d is not an open file descriptor" % args.ready_fd)
    try:
        asyncio.run(serve(args, ports))
    except StartError as e:
        sys.stderr.write("%s\n" % e)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
