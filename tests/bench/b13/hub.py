#!/usr/bin/env python3
"""Benchmark B13 (issue 20): one node with 1,000 direct peers.

  hub.py BIN_DIR [--peers N] [--idle-s S] [--warm N] [--limit S] [--keep]

A hub (127.50.0.1) and N spokes (127.51.x.y), each a real jsd-listener with
its own key pair, all in one network namespace of their own (the script
re-runs itself under `unshare -n`, so the loopback addresses collide with
nobody's tests). Every spoke pins the hub's key, has the hub in
connect_at_startup and a job `true` the hub may run; the hub pins every
spoke. Spokes run without a link spawner (two link processes each).

Measured (one line each, then "B13JSON {...}" for bench.py):
  - links up: all 2N links of the hub (N in, N out) up, in ms after the last
    spoke was started;
  - idle: the CPU of the hub (its listener and every child) over --idle-s
    seconds while all links sit idle, as % of one CPU (target <= 2 %), after
    one idle_heartbeat_ms has passed; and of all spokes together;
  - warm: `jsd-submit @all true` from the hub, median of --warm runs;
  - cold: the hub restarted, then `jsd-submit @all true` at once (its links
    are made on demand);
  - memory: PSS of the hub's processes per peer.
Needs root (unshare); prints a "skipped" line otherwise. Everything it
started goes however it ends (SIGTERM, an exception, --limit).
"""
import atexit
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ARGS = sys.argv[1:]
BIN = os.path.abspath(ARGS[0]) if ARGS and not ARGS[0].startswith("--") else os.path.abspath("build/bin")


def opt(name, default):
    for i, a in enumerate(ARGS):
        if a == name and i + 1 < len(ARGS):
            return ARGS[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return default


N = int(opt("--peers", "1000"))
IDLE_S = float(opt("--idle-s", "30"))
WARM = int(opt("--warm", "3"))
LIMIT_S = int(opt("--limit", "500"))
KEEP = "--keep" in ARGS
TICK = os.sysconf("SC_CLK_TCK")
T = None
PROCS = {}  # name -> Popen


def out(msg):
    print(msg, flush=True)


def log(msg):
    print(f"b13: {msg}", file=sys.stderr, flush=True)


def skip(why):
    out(f"B13 hub with {N} direct peers: skipped: {why}")
    out("B13JSON " + json.dumps({"skipped": why}))
    sys.exit(0)


def spoke_ip(i):
    return f"127.51.{i // 250}.{i % 250 + 1}"


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def tree(pid):
    pids = [pid]
    for c in children(pid):
        pids += tree(c)
    return pids


def cpu_ticks(pids):
    """CPU time of pids in ticks, from /proc/PID/schedstat (the scheduler's own
    nanoseconds on CPU): utime/stime are sampled at the timer tick, and a
    process woken by a timer runs right at a tick, so they charge an idle
    link process far more than it used."""
    total = 0
    for p in pids:
        try:
            total += int(open(f"/proc/{p}/schedstat").read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total * TICK / 1e9


def cpu_by_comm(pids):
    by = {}
    for p in pids:
        try:
            head, tail = open(f"/proc/{p}/stat").read().rsplit(")", 1)
        except OSError:
            continue
        comm = head.split("(", 1)[1]
        by[comm] = by.get(comm, 0) + cpu_ticks([p])
    return by


def wakeups_by_comm(pids):
    """Voluntary context switches by program: one each time a process sleeps
    in epoll_wait, so the difference over a window counts its wake-ups."""
    by = {}
    for p in pids:
        try:
            comm = open(f"/proc/{p}/comm").read().strip().split("_", 1)[0]  # QueueClient_<peer>: QueueClient
            for line in open(f"/proc/{p}/status"):
                if line.startswith("voluntary_ctxt_switches:"):
                    by[comm] = by.get(comm, 0) + int(line.split()[1])
        except (OSError, ValueError):
            continue
    return by


def pss_kib(pids):
    total = 0
    for p in pids:
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            pass
    return total


def stop_all(names, wait_s=15):
    for n in names:
        p = PROCS.get(n)
        if p and p.poll() is None:
            p.send_signal(signal.SIGTERM)
    end = time.time() + wait_s
    for n in names:
        p = PROCS.get(n)
        if not p:
            continue
        try:
            p.wait(timeout=max(0.1, end - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def cleanup():
    stop_all(list(PROCS))
    if T and not KEEP:
        shutil.rmtree(T, ignore_errors=True)
    elif T:
        log(f"kept {T}")


def gen_keys(names):
    keys = {}
    os.makedirs(f"{T}/keys", exist_ok=True)
    batch = []
    for n in names:
        batch.append((n, subprocess.Popen([f"{BIN}/jsd-listener", "--gen-key", f"{T}/keys/{n}.key"],
                                          stdout=subprocess.PIPE, text=True)))
        if len(batch) >= 8:
            for m, p in batch:
                keys[m] = p.communicate()[0].strip()
            batch = []
    for m, p in batch:
        keys[m] = p.communicate()[0].strip()
    return keys


def write_configs(names, keys):
    spokes = names[1:]
    hub = {"node": "hub", "listen": "127.50.0.1:4455", "state_dir": f"{T}/hub/state", "key_file": f"{T}/keys/hub.key",
           "log_level": "warn", "port_range": [20000, 59999],
           "peers": {s: {"address": f"{spoke_ip(i)}:4455", "public_key": keys[s]} for i, s in enumerate(spokes)}}
    os.makedirs(f"{T}/hub")
    with open(f"{T}/hub/jsd.json", "w") as f:
        json.dump(hub, f)
    for i, s in enumerate(spokes):
        os.makedirs(f"{T}/{s}")
        cfg = {"node": s, "listen": f"{spoke_ip(i)}:4455", "state_dir": f"{T}/{s}/state",
               "key_file": f"{T}/keys/{s}.key", "log_level": "warn", "link_spawner": False,
               "peers": {"hub": {"address": "127.50.0.1:4455", "public_key": keys["hub"]}},
               "connect_at_startup": ["hub"],
               "jobs": {"true": {"command": ["/bin/true"], "allow": ["hub"]}}}
        with open(f"{T}/{s}/jsd.json", "w") as f:
            json.dump(cfg, f)


def start(name):
    d = f"{T}/{name}"
    rfd, wfd = os.pipe()
    with open(f"{d}/log", "ab") as err:
        p = subprocess.Popen([f"{BIN}/jsd-listener", "--config", f"{d}/jsd.json", "--ready-fd", str(wfd)],
                             pass_fds=[wfd], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    os.close(wfd)
    PROCS[name] = p
    return rfd


def wait_ready(rfd, what, timeout=30):
    import select
    r, _, _ = select.select([rfd], [], [], timeout)
    data = os.read(rfd, 64) if r else b""
    os.close(rfd)
    if data.strip() != b"ready":
        raise RuntimeError(f"{what} did not get ready; see {T}")


def hub_status():
    """The hub's status, or None when it did not answer (a busy hub, on a loaded machine)."""
    try:
        r = subprocess.run([f"{BIN}/jsd-listener", "--status", "--json", "-f", f"{T}/hub/jsd.json"],
                           capture_output=True, text=True, timeout=60)
        return json.loads(r.stdout) if r.returncode == 0 else None
    except (subprocess.TimeoutExpired, ValueError):
        return None


def links_up(st):
    up = {"in": 0, "out": 0}
    for l in st.get("links", []):
        if l.get("state") == "up":
            up[l["direction"]] += 1
    return up


def submit_all():
    t = time.time()
    r = subprocess.run([f"{BIN}/jsd-submit", "-f", f"{T}/hub/jsd.json", "-q", "@all", "true"], capture_output=True,
                       text=True, timeout=300)
    return (time.time() - t) * 1000, r.returncode, r.stderr.strip()[-300:]


def inner():
    global T
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    T = tempfile.mkdtemp(prefix="jsd-b13.")
    os.chmod(T, 0o755)
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
    signal.signal(signal.SIGALRM, lambda *_: (log(f"out of time ({LIMIT_S} s)"), sys.exit(124)))
    signal.alarm(LIMIT_S)
    names = ["hub"] + [f"s{i:04d}" for i in range(1, N + 1)]
    t0 = time.time()
    keys = gen_keys(names)
    write_configs(names, keys)
    log(f"{N + 1} keys and configs in {time.time() - t0:.1f} s")
    wait_ready(start("hub"), "the hub")
    hub_pid = PROCS["hub"].pid
    t_first = time.time()
    pending = []
    for s in names[1:]:
        pending.append((s, start(s)))
        if len(pending) >= 50:
            for n, fd in pending:
                wait_ready(fd, n)
            pending = []
    for n, fd in pending:
        wait_ready(fd, n)
    t_last = time.time()
    log(f"{N} spokes started and ready in {t_last - t_first:.1f} s")
    res = dict(peers=N)
    deadline = t_last + LIMIT_S / 3
    st = {}
    while time.time() < deadline:
        st = hub_status() or st
        up = links_up(st)
        if up["in"] >= N and up["out"] >= N:
            break
        time.sleep(0.5)
    up = links_up(st)
    res["links_up"] = up
    if up["in"] >= N and up["out"] >= N:
        import datetime
        latest = max(datetime.datetime.fromisoformat(l["since"].rstrip("Z")).replace(
            tzinfo=datetime.timezone.utc).timestamp() for l in st["links"])
        res["linked_ms"] = round((latest - t_last) * 1000, 1)
        res["linked_from_first_ms"] = round((latest - t_first) * 1000, 1)
    out(f"B13 links: {up['in']} in + {up['out']} out of {2 * N} up at the hub"
        + (f", {res['linked_ms']} ms after the last spoke was ready ({res['linked_from_first_ms']} ms after the "
           f"first was started)" if "linked_ms" in res else ""))
    if up["in"] < N or up["out"] < N:
        # An idle figure taken while links still form would say nothing.
        out("B13JSON " + json.dumps(res))
        return
    # Idle: let one idle heartbeat pass (what linking left busy settles), then measure.
    time.sleep(16)
    hub_pids = tree(hub_pid)
    spoke_pids = [p for n, pr in PROCS.items() if n != "hub" for p in tree(pr.pid)]
    c0, s0, w0, b0 = cpu_ticks(hub_pids), cpu_ticks(spoke_pids), time.time(), cpu_by_comm(hub_pids)
    k0 = wakeups_by_comm(hub_pids)
    time.sleep(IDLE_S)
    c1, s1, w1, b1 = cpu_ticks(hub_pids), cpu_ticks(spoke_pids), time.time(), cpu_by_comm(hub_pids)
    k1 = wakeups_by_comm(hub_pids)
    # Summed over a program's processes.
    res["idle_wakeups_per_s_by_program"] = {k: round((v - k0.get(k, 0)) / (w1 - w0), 2) for k, v in k1.items()}
    res["idle_cpu_pct_by_program"] = {k: round((v - b0.get(k, 0)) / TICK / (w1 - w0) * 100, 2) for k, v in b1.items()}
    res["idle_s"] = round(w1 - w0, 1)
    res["idle_cpu_pct"] = round((c1 - c0) / TICK / (w1 - w0) * 100, 2)
    res["spokes_idle_cpu_pct"] = round((s1 - s0) / TICK / (w1 - w0) * 100, 2)
    res["hub_processes"] = len(hub_pids)
    res["hub_pss_mib"] = round(pss_kib(hub_pids) / 1024, 1)
    res["hub_pss_per_peer_kib"] = round(pss_kib(hub_pids) / N, 1)
    out(f"B13 idle: hub {res['idle_cpu_pct']} % of one CPU over {res['idle_s']} s ({len(hub_pids)} processes), "
        f"all {N} spokes together {res['spokes_idle_cpu_pct']} % (hub by program: {res['idle_cpu_pct_by_program']}); hub PSS {res['hub_pss_mib']} MiB "
        f"({res['hub_pss_per_peer_kib']} KiB per peer); hub wake-ups per s: {res['idle_wakeups_per_s_by_program']}")
    warm = []
    for _ in range(WARM):
        ms, rc, err = submit_all()
        if rc != 0:
            log(f"warm @all true exited {rc}: {err}")
        warm.append(ms)
    res["warm_all_ms"] = [round(x, 1) for x in warm]
    res["warm_ms"] = round(statistics.median(warm), 1) if warm else None
    res["warm_n"] = len(warm)
    out(f"B13 warm: jsd-submit @all true to {N} peers: median {res['warm_ms']} ms ({res['warm_all_ms']})")
    # Cold: the hub restarted; its links are made on demand by the fan-out.
    stop_all(["hub"])
    wait_ready(start("hub"), "the hub (restarted)")
    ms, rc, err = submit_all()
    if rc != 0:
        log(f"cold @all true exited {rc}: {err}")
    res["cold_ms"] = round(ms, 1)
    res["cold_rc"] = rc
    out(f"B13 cold: jsd-submit @all true to {N} peers right after the hub's restart: {res['cold_ms']} ms (exit {rc})")
    out("B13JSON " + json.dumps(res))


def main():
    if "--inner" in ARGS:
        return inner()
    if os.geteuid() != 0:
        skip("not root (needs its own network namespace)")
    if not os.access(f"{BIN}/jsd-listener", os.X_OK):
        skip(f"no jsd binaries in {BIN}")
    unshare = shutil.which("unshare")
    if not unshare:
        skip("no unshare (util-linux)")
    r = subprocess.run([unshare, "-n", "--", sys.executable, os.path.abspath(__file__)] + ARGS + ["--inner"])
    sys.exit(r.returncode)


if __name__ == "__main__":
    main()
