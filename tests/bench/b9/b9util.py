#!/usr/bin/env python3
"""Helpers for tests/bench/b9/run.sh (benchmark B9, cold first call over 20 ms RTT).

  b9util.py time -- CMD [ARG]...     run CMD, print "T0 T1 MS RC" (epoch seconds, wall ms)
  b9util.py ping-summary FILE         parse ping output: print "MIN AVG MAX N"
  b9util.py tcprtt IP PORT N          TCP connect times (SYN/SYN-ACK) in ms, one a line
  b9util.py analyze PCAP T0 T1 RTT_MS RTT_MIN_MS A_IP LABEL
                                      read a capture taken on A's side of the link, print
                                      the packets of [T0, T1] as a timeline on stderr and
                                      one JSON summary on stdout
  b9util.py median X...               print the median
"""
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time


def cmd_time(argv):
    if argv and argv[0] == "--":
        argv = argv[1:]
    t0 = time.time()
    p0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ)
    _, status = os.waitpid(pid, 0)
    p1 = time.perf_counter()
    t1 = time.time()
    rc = os.waitstatus_to_exitcode(status)
    print(f"{t0:.6f} {t1:.6f} {(p1 - p0) * 1000:.3f} {rc}")
    return 0


def cmd_ping_summary(path):
    rtts = [float(m.group(1)) for m in re.finditer(r"time=([0-9.]+) ms", open(path).read())]
    if not rtts:
        print("- - - 0")
        return 1
    print(f"{min(rtts):.3f} {statistics.mean(rtts):.3f} {max(rtts):.3f} {len(rtts)}")
    return 0


def cmd_tcprtt(ip, port, n):
    for _ in range(int(n)):
        s = socket.socket()
        t = time.perf_counter()
        s.connect((ip, int(port)))
        print(f"{(time.perf_counter() - t) * 1000:.3f}")
        s.close()
        time.sleep(0.1)
    return 0


LINE = re.compile(r"^(\d+\.\d+) IP (\d+\.\d+\.\d+\.\d+)\.(\d+) > (\d+\.\d+\.\d+\.\d+)\.(\d+): Flags \[([^\]]*)\].*?length (\d+)")


def cmd_analyze(pcap, t0, t1, rtt, rtt_min, a_ip, label):
    t0, t1, rtt, rtt_min = float(t0), float(t1), float(rtt), float(rtt_min)
    out = subprocess.run(["tcpdump", "-r", pcap, "-nn", "-tt", "tcp"], capture_output=True, text=True).stdout
    pkts = []
    for line in out.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        ts, sip, sport, dip, dport, flags, ln = m.groups()
        ts = float(ts)
        if ts < t0 or ts > t1:
            continue
        pkts.append(dict(t=(ts - t0) * 1000, out=(sip == a_ip), src=(sip, int(sport)), dst=(dip, int(dport)),
                         flags=flags, len=int(ln)))
    # Name each connection by who opened it and the port it went to.
    conns = {}
    names = {}
    for p in pkts:
        key = frozenset((p["src"], p["dst"]))
        if key not in conns:
            if "S" in p["flags"] and "." not in p["flags"]:
                opener, server = ("a" if p["out"] else "b"), p["dst"][1]
            else:  # opened before the window: guess the server by the lower port
                server = min(p["src"][1], p["dst"][1])
                opener = "a" if (p["out"] and p["dst"][1] == server) or (not p["out"] and p["src"][1] == server) else "b"
            kind = "node port" if server == 4455 else ("ssh" if server == 22 else "queue-server port")
            n = sum(1 for c in conns.values() if c.startswith(f"{opener}->"))
            conns[key] = f"{opener}->{'b' if opener == 'a' else 'a'}:{server} ({kind}) #{n + 1}"
        names[id(p)] = conns[key]
    # Round trips: the direction flips a->b then b->a, ignoring pure ACKs and
    # FINs (they answer nothing anyone waits for), counted when the b->a packet
    # arrives at least RTT/2 after a's last packet (it could be an answer to it).
    flips, flips_all, last_dir, last_out_t = 0, 0, None, None
    meaningful = [p for p in pkts if not (p["len"] == 0 and p["flags"] in (".", "F.", "F"))]
    for p in meaningful:
        d = "ab" if p["out"] else "ba"
        if last_dir == "ab" and d == "ba":
            flips_all += 1
            if p["t"] - last_out_t >= rtt / 2:
                flips += 1
        if d == "ab":
            last_out_t = p["t"]
        last_dir = d
    print(f"--- B9 {label}: packets on a's side of the link, ms after the command started "
          f"(pure ACKs marked with '.') ---", file=sys.stderr)
    for p in pkts:
        pure = p["len"] == 0 and p["flags"] == "."
        arrow = "a -> b" if p["out"] else "a <- b"
        print(f"  {p['t']:8.1f} ms  {'.' if pure else ' '} {arrow}  {p['flags']:>4} {p['len']:5d} B  "
              f"{names[id(p)]}", file=sys.stderr)
    # Per connection, its bursts of packets that carry something, in order:
    # direction, what, and the time since the other side's last burst.
    print(f"--- B9 {label}: per connection, bursts (SYN, data, FIN) and the wait before each ---", file=sys.stderr)
    for key, cname in conns.items():
        bursts = []
        for p in meaningful:
            if frozenset((p["src"], p["dst"])) != key:
                continue
            d = ">" if p["out"] else "<"
            what = "SYN" if p["flags"] == "S" else "SYN-ACK" if p["flags"] == "S." else \
                ("FIN" if "F" in p["flags"] and p["len"] == 0 else f"{p['len']}B")
            if bursts and bursts[-1]["d"] == d:
                bursts[-1]["what"].append(what)
                bursts[-1]["end"] = p["t"]
            else:
                bursts.append(dict(d=d, what=[what], t=p["t"], end=p["t"]))
        parts = []
        for i, b in enumerate(bursts):
            gap = f" +{b['t'] - bursts[i - 1]['end']:.1f}" if i else ""
            parts.append(f"{'a>b' if b['d'] == '>' else 'b>a'} {'+'.join(b['what'])} @{b['t']:.1f}{gap}")
        print(f"  {cname}: " + " | ".join(parts), file=sys.stderr)
    # The critical path, walked back from the last packet b sent: a packet
    # from b was caused by the latest packet a sent at least one RTT (minus
    # a little slack) before it arrived; a packet from a by the latest packet
    # from b before it.  Each step back from b's packet to its cause is one
    # round trip the call waited for.
    chain, rts, wait_ms, local_ms = [], 0, 0.0, 0.0
    slack = min(1.0, rtt_min / 4)
    for i, p in enumerate(meaningful):
        p["i"] = i
    cur = next((p for p in reversed(meaningful) if not p["out"]), None)
    while cur is not None:
        chain.append(cur)
        before = meaningful[:cur["i"]]  # strictly earlier in the capture: the walk always ends
        if not cur["out"]:
            cause = [p for p in before if p["out"] and p["t"] <= cur["t"] - (rtt_min - slack)]
            if cause:
                rts += 1
                wait_ms += cur["t"] - cause[-1]["t"]
        else:
            cause = [p for p in before if not p["out"]]
            if cause:
                local_ms += cur["t"] - cause[-1]["t"]
        cur = cause[-1] if cause else None
    print(f"--- B9 {label}: critical path, back from b's last packet: {rts} round trips ---", file=sys.stderr)
    for p in reversed(chain):
        what = "SYN" if p["flags"] == "S" else "SYN-ACK" if p["flags"] == "S." else f"{p['len']}B"
        print(f"  {p['t']:8.1f} ms  {'a -> b' if p['out'] else 'a <- b'}  {what:>7}  {names[id(p)]}", file=sys.stderr)
    first = meaningful[0]["t"] if meaningful else None
    last_in = max((p["t"] for p in meaningful if not p["out"]), default=None)
    res = dict(label=label, packets=len(pkts), connections=len(conns), flips=flips, flips_all=flips_all,
               critical_rtts=rts, critical_wait_ms=round(wait_ms, 1), critical_local_ms=round(local_ms, 1),
               first_packet_ms=round(first, 1) if first is not None else None,
               last_in_ms=round(last_in, 1) if last_in is not None else None,
               span_ms=round(last_in - first, 1) if first is not None and last_in is not None else None,
               span_rtt=round((last_in - first) / rtt, 2) if first is not None and last_in is not None else None,
               wall_ms=round((t1 - t0) * 1000, 1))
    print(json.dumps(res))
    return 0


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "time":
        return cmd_time(args)
    if cmd == "ping-summary":
        return cmd_ping_summary(*args)
    if cmd == "tcprtt":
        return cmd_tcprtt(*args)
    if cmd == "analyze":
        return cmd_analyze(*args)
    if cmd == "median":
        print(f"{statistics.median(float(x) for x in args):.1f}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
