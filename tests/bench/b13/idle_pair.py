#!/usr/bin/env python3
"""Wake-ups of one idle link pair (issue 20, B13), counted by strace.

  idle_pair.py BIN_DIR [--idle-s S]

Two nodes, alpha (127.0.0.2) and beta (127.0.0.3), with the default timers
(heartbeat_ms 1000, dead_after_ms 3000, idle_heartbeat_ms 15000), in a
network namespace of their own (the script re-runs itself under
`unshare -n`). One ping links them both ways; after one idle_heartbeat_ms
(what the ping left busy settles), `strace -f -c` follows alpha's listener
and its link processes for --idle-s seconds (default 60): the epoll_wait
calls per program are its wake-ups. Needs root and strace; prints one
line per program and "IDLEPAIRJSON {...}".
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ARGS = sys.argv[1:]
BIN = os.path.abspath(ARGS[0]) if ARGS and not ARGS[0].startswith("--") else os.path.abspath("build/bin")
IDLE_S = float(ARGS[ARGS.index("--idle-s") + 1]) if "--idle-s" in ARGS else 60.0


def inner():
    t = tempfile.mkdtemp(prefix="jsd-idlepair-")
    procs = []
    env = dict(os.environ, PATH=BIN + ":" + os.environ["PATH"])
    try:
        keys = {}
        for n in ("alpha", "beta"):
            subprocess.run([f"{BIN}/jsd-listener", "--gen-key", f"{t}/{n}.key"], check=True, capture_output=True)
            keys[n] = subprocess.run([f"{BIN}/jsd-listener", "--public-key", f"{t}/{n}.key"], check=True,
                                     capture_output=True, text=True).stdout.strip()
        ip = {"alpha": "127.0.0.2", "beta": "127.0.0.3"}
        for n, o in (("alpha", "beta"), ("beta", "alpha")):
            os.makedirs(f"{t}/{n}/state")
            cfg = {"node": n, "listen": f"{ip[n]}:4455", "state_dir": f"{t}/{n}/state", "key_file": f"{t}/{n}.key",
                   "peers": {o: {"address": f"{ip[o]}:4455", "public_key": keys[o]}}}
            with open(f"{t}/{n}.json", "w") as f:
                json.dump(cfg, f)
        for n in ("alpha", "beta"):
            r, w = os.pipe()
            p = subprocess.Popen([f"{BIN}/jsd-listener", "--config", f"{t}/{n}.json", "--ready-fd", str(w)],
                                 pass_fds=(w,), env=env, stderr=open(f"{t}/{n}.log", "w"))
            os.close(w)
            procs.append(p)
            with os.fdopen(r) as f:
                if f.readline().strip() != "ready":
                    sys.exit(f"{n} did not become ready")
        subprocess.run([f"{BIN}/jsd-ping", "-c", "1", "-W", "10", "-q", "beta"], check=True, env=dict(
            env, JSD_CONFIG=f"{t}/alpha.json"))
        time.sleep(16)  # one idle_heartbeat_ms: the ping's busy beats end
        alpha = procs[0].pid
        st = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=epoll_wait,epoll_pwait,epoll_pwait2", "-o", f"{t}/strace",
                               "-ff", "-p", str(alpha)] +
                              sum((["-p", c] for c in open(f"/proc/{alpha}/task/{alpha}/children").read().split()), []),
                              stderr=subprocess.DEVNULL)
        time.sleep(IDLE_S)
        st.send_signal(signal.SIGINT)
        st.wait()
        by = {}
        for fn in os.listdir(t):
            if not fn.startswith("strace."):
                continue
            pid = fn.split(".")[1]
            try:
                comm = open(f"/proc/{pid}/comm").read().strip()
            except OSError:
                comm = "gone"
            n = sum(1 for line in open(f"{t}/{fn}") if re.match(r"epoll_p?wait2?\(", line))
            by[comm] = by.get(comm, 0) + n
        for k, v in sorted(by.items()):
            print(f"idle pair, alpha's {k}: {v} wake-ups in {IDLE_S:.0f} s ({v / IDLE_S * 15:.2f} per 15 s)")
        print("IDLEPAIRJSON " + json.dumps({"idle_s": IDLE_S, "wakeups": by}), flush=True)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(t, ignore_errors=True)


if __name__ == "__main__":
    if os.geteuid() != 0 or not shutil.which("strace"):
        print("idle pair: skipped: needs root and strace")
    elif os.environ.get("JSD_IDLEPAIR_INNER") != "1":
        os.execvp("unshare", ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                              "env", "JSD_IDLEPAIR_INNER=1", sys.executable] + sys.argv)
    else:
        inner()
