#!/usr/bin/env python3
"""Benchmark B14 (issue 20): a tree, one hub, G gateways, L leaves behind each.

  tree.py BIN_DIR [--gateways G] [--leaves L] [--warm N] [--idle-s S]
                  [--wave N] [--max-load X] [--limit S] [--keep]

A hub (127.60.0.1), G gateways (127.61.x.y, "gateway": true, each with its
L leaves as direct peers and the hub in connect_at_startup) and G*L leaves
(127.62.x.y, their gateway in connect_at_startup, without a link spawner).
The hub has only the gateways as direct peers and names every leaf as
"leafN": {"via": "gwK", "public_key": KEY}; each leaf pins the hub the same
way through its gateway and lets it run the job `true` (so do the
gateways). Every node is a real jsd-listener with its own key pair, all in
one network namespace of their own (the script re-runs itself under
`unshare -n`, so the loopback addresses collide with nobody's tests).
Nodes start in waves of --wave, each wave waiting for its "ready"s; a
watchdog aborts (cleanly, with what was measured so far) when the 1-minute
load average passes --max-load.

Measured, one line each, then "B14JSON {...}" for bench.py:
  - linked: every link of the hub and of every gateway up, ms after the last
    leaf's ready (the latest `since` of all link ends);
  - idle: CPU over --idle-s while every link sits idle, after one
    idle_heartbeat_ms: the hub, the mean gateway, all leaves together;
  - first: `jsd-submit @all true` from the hub (gateways and leaves), once,
    links up (it also starts every node's job supervisor);
  - warm: the same, median of --warm after it, and the CPU each level spent
    per run;
  - ping: `jsd-ping -c 1 @all` from the hub, median of --warm;
  - cold: the hub restarted, then `jsd-submit @all true` at once;
  - per level: processes, descriptors (/proc/PID/fd), PSS (smaps_rollup),
    and the 10,000-node estimate of jsd(7) "Scale" from these figures.
CPU is the scheduler's own time (/proc/PID/schedstat) summed over each
listener's process tree; a job that ended is counted through its
supervisor's cutime/cstime (this VM has no cgroup v2 CPU controller).
Needs root (unshare); prints a "skipped" line otherwise. Everything it
started goes however it ends (SIGTERM, an exception, --limit, the watchdog).
"""
import atexit
import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import treeutil as U  # noqa: E402

ARGS = sys.argv[1:]
BIN = os.path.abspath(ARGS[0]) if ARGS and not ARGS[0].startswith("--") else os.path.abspath("build/bin")


def opt(name, default):
    for i, a in enumerate(ARGS):
        if a == name and i + 1 < len(ARGS):
            return ARGS[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return default


G = int(opt("--gateways", "10"))
L = int(opt("--leaves", "100"))
WARM = int(opt("--warm", "3"))
IDLE_S = float(opt("--idle-s", "20"))
WAVE = int(opt("--wave", "50"))
# A warm @all on 1,011 nodes runs the load average up to ~200 on this VM
# (64 jobs in flight, each a few processes at a leaf, a gateway's link
# processes): 400 still stops a run that grows without bound (the mesh that
# stalled the VM passed 700) and does not stop the measurement itself.
MAX_LOAD = float(opt("--max-load", "400"))
LOAD_LIMIT = MAX_LOAD  # what the watchdog allows now
WIDE_LOAD = 1.5  # ... while every leaf starts its job at once (measure_wide)
LIMIT_S = int(opt("--limit", "900"))
KEEP = "--keep" in ARGS
T = None
PROCS = {}  # name -> Popen
RES = {"gateways": G, "leaves_per_gateway": L, "nodes": 1 + G + G * L}
PRINTED = []
CLEANING = []  # set once the clean-up began: the watchdog stands down
MAX_SEEN = [0.0]


def out(msg):
    print(msg, flush=True)


def log(msg):
    print(f"b14: {msg}", file=sys.stderr, flush=True)


def skip(why):
    out(f"B14 tree of {1 + G + G * L} nodes: skipped: {why}")
    out("B14JSON " + json.dumps({"skipped": why}))
    sys.exit(0)


def gw(k):
    return f"gw{k:03d}"


def leaf(n):
    return f"leaf{n:05d}"


def gw_ip(k):
    return f"127.61.{k // 250}.{k % 250 + 1}"


def leaf_ip(n):
    return f"127.62.{n // 250}.{n % 250 + 1}"


def leaves_of(k):
    return [leaf(n) for n in range((k - 1) * L + 1, k * L + 1)]


def stop_all(names, wait_s=20):
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
    # Nothing may cut the clean-up short: the watchdog and the time limit
    # raise SystemExit, and the stop of 1,000 nodes loads the machine past
    # --max-load (a run left 975 listeners behind that way).
    CLEANING.append(1)
    signal.alarm(0)
    for s in (signal.SIGUSR1, signal.SIGALRM, signal.SIGTERM, signal.SIGINT):
        signal.signal(s, signal.SIG_IGN)
    emit()
    try:
        stop_all(list(PROCS))
    finally:
        kill_own_netns()
    if T and not KEEP:
        shutil.rmtree(T, ignore_errors=True)
    elif T:
        log(f"kept {T}")


def kill_own_netns():
    """Whatever still runs in this run's own network namespace (the script
    re-ran itself under `unshare -n`, so only what it started is there)
    goes by SIGKILL: a listener's children included."""
    if "--inner" not in ARGS:
        return
    me = os.getpid()
    try:
        ns = os.readlink("/proc/self/ns/net")
    except OSError:
        return
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            if os.readlink(f"/proc/{d}/ns/net") == ns:
                os.kill(int(d), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass


def emit():
    """The JSON line, once, with whatever was measured (an abort included)."""
    if not PRINTED:
        PRINTED.append(1)
        RES["max_load1"] = round(MAX_SEEN[0], 1)
        out("B14JSON " + json.dumps(RES))


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


def write(name, cfg):
    os.makedirs(f"{T}/{name}")
    base = {"node": name, "state_dir": f"{T}/{name}/state", "key_file": f"{T}/keys/{name}.key", "log_level": "warn"}
    with open(f"{T}/{name}/jsd.json", "w") as f:
        json.dump({**base, **cfg}, f)


def write_configs(keys):
    job = {"true": {"command": ["/bin/true"], "allow": ["hub"]}}
    hub_peers = {}
    for k in range(1, G + 1):
        hub_peers[gw(k)] = {"address": f"{gw_ip(k)}:4455", "public_key": keys[gw(k)]}
        for lf in leaves_of(k):
            hub_peers[lf] = {"via": gw(k), "public_key": keys[lf]}
    write("hub", {"listen": "127.60.0.1:4455", "port_range": [20000, 59999], "peers": hub_peers})
    for k in range(1, G + 1):
        peers = {"hub": {"address": "127.60.0.1:4455", "public_key": keys["hub"]}}
        for n in range((k - 1) * L + 1, k * L + 1):
            peers[leaf(n)] = {"address": f"{leaf_ip(n)}:4455", "public_key": keys[leaf(n)]}
        write(gw(k), {"listen": f"{gw_ip(k)}:4455", "port_range": [20000, 59999], "gateway": True, "peers": peers,
                      "connect_at_startup": ["hub"], "jobs": job})
        for n in range((k - 1) * L + 1, k * L + 1):
            write(leaf(n), {"listen": f"{leaf_ip(n)}:4455", "link_spawner": False, "connect_at_startup": [gw(k)],
                            "peers": {gw(k): {"address": f"{gw_ip(k)}:4455", "public_key": keys[gw(k)]},
                                      "hub": {"via": gw(k), "public_key": keys["hub"]}}, "jobs": job})


def start(name):
    d = f"{T}/{name}"
    rfd, wfd = os.pipe()
    with open(f"{d}/log", "ab") as err:
        p = subprocess.Popen([f"{BIN}/jsd-listener", "--config", f"{d}/jsd.json", "--ready-fd", str(wfd)],
                             pass_fds=[wfd], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    os.close(wfd)
    PROCS[name] = p
    return rfd


def wait_ready(rfd, what, timeout=60):
    r, _, _ = select.select([rfd], [], [], timeout)
    data = os.read(rfd, 64) if r else b""
    os.close(rfd)
    if data.strip() != b"ready":
        raise RuntimeError(f"{what} did not get ready; see {T}")


def start_waves(names):
    for i in range(0, len(names), WAVE):
        fds = [(n, start(n)) for n in names[i:i + WAVE]]
        for n, fd in fds:
            wait_ready(fd, n)


def status(name):
    try:
        r = subprocess.run([f"{BIN}/jsd-listener", "--status", "--json", "-f", f"{T}/{name}/jsd.json"],
                           capture_output=True, text=True, timeout=60)
        return json.loads(r.stdout) if r.returncode == 0 else None
    except (subprocess.TimeoutExpired, ValueError):
        return None


def wait_linked(t_last):
    """Until the hub has G links up each way and every gateway L + 1: the
    latest `since` of them all, in ms after t_last (None if not linked)."""
    want = {"hub": G, **{gw(k): L + 1 for k in range(1, G + 1)}}
    latest, todo = {}, set(want)
    deadline = time.time() + max(60, LIMIT_S / 3)
    while todo and time.time() < deadline:
        for n in sorted(todo):
            st = status(n)
            if st is None:
                continue
            up = [l for l in st.get("links", []) if l.get("state") == "up"]
            if sum(l["direction"] == "in" for l in up) >= want[n] and sum(l["direction"] == "out" for l in up) >= want[n]:
                latest[n] = max(U.since(l["since"]) for l in up)
                todo.discard(n)
        if todo:
            time.sleep(0.5)
    RES["not_linked"] = sorted(todo)
    return None if todo else round((max(latest.values()) - t_last) * 1000, 1)


def trees():
    """The process trees: hub, every gateway, every leaf."""
    return {n: U.tree(p.pid) for n, p in PROCS.items() if p.poll() is None}


def levels(snap_fn):
    t = trees()
    gws = [gw(k) for k in range(1, G + 1)]
    lvs = [n for n in t if n.startswith("leaf")]
    return {"hub": snap_fn(t.get("hub", [])), "gw": [snap_fn(t[n]) for n in gws if n in t],
            "leaf": [snap_fn(t[n]) for n in lvs]}


def cpu_levels():
    return levels(U.cpu_snap)


def cpu_delta(a, b):
    """ms of CPU per level between two cpu_levels() snapshots."""
    return {"hub": U.delta_ms(a["hub"], b["hub"]),
            "gw": [U.delta_ms(x, y) for x, y in zip(a["gw"], b["gw"])],
            "leaf": [U.delta_ms(x, y) for x, y in zip(a["leaf"], b["leaf"])]}


def run_timed(cmd):
    t = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=max(60, LIMIT_S / 2))
    return (time.time() - t) * 1000, r.returncode, r.stderr.strip()[-300:]


def submit_all(*extra):
    return run_timed([f"{BIN}/jsd-submit", "-f", f"{T}/hub/jsd.json", "-q", *extra, "@all", "true"])


def hub_metric(name):
    r = subprocess.run([f"{BIN}/jsd-listener", "-f", f"{T}/hub/jsd.json", "--metrics"], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def ping_all():
    return run_timed([f"{BIN}/jsd-ping", "-f", f"{T}/hub/jsd.json", "-q", "-c", "1", "-W", "120", "@all"])


def watchdog():
    main = threading.main_thread().ident
    while not CLEANING:
        l1 = os.getloadavg()[0]
        MAX_SEEN[0] = max(MAX_SEEN[0], l1)
        if l1 > LOAD_LIMIT:
            RES["aborted"] = f"load average {l1:.0f} > {LOAD_LIMIT:.0f}"
            signal.pthread_kill(main, signal.SIGUSR1)
            return
        time.sleep(2)


def measure_idle():
    time.sleep(16)  # one idle_heartbeat_ms (15 s): what linking left busy settles
    a, w0 = cpu_levels(), time.time()
    time.sleep(IDLE_S)
    b, w1 = cpu_levels(), time.time()
    d, secs = cpu_delta(a, b), w1 - w0
    pct = lambda ms: round(ms / 10 / secs, 3)  # noqa: E731
    RES["idle"] = {"s": round(secs, 1), "hub_pct": pct(d["hub"]), "gw_pct_mean": pct(statistics.mean(d["gw"])),
                   "gw_pct_max": pct(max(d["gw"])), "leaves_pct_sum": pct(sum(d["leaf"])),
                   "leaf_pct_mean": pct(statistics.mean(d["leaf"]))}
    i = RES["idle"]
    out(f"B14 idle over {i['s']} s, % of one CPU: hub {i['hub_pct']}, a gateway {i['gw_pct_mean']} (max "
        f"{i['gw_pct_max']}), all {G * L} leaves {i['leaves_pct_sum']} ({i['leaf_pct_mean']} each)")


def measure_footprint():
    f = levels(U.footprint)
    RES["per_level"] = U.per_level(f)
    pl = RES["per_level"]
    out(f"B14 per level: hub {pl['hub']['procs']} processes / {pl['hub']['fds']} fds / {pl['hub']['pss_mib']} MiB; "
        f"a gateway {pl['gw']['procs']} / {pl['gw']['fds']} / {pl['gw']['pss_mib']} MiB; a leaf {pl['leaf']['procs']}"
        f" / {pl['leaf']['fds']} / {pl['leaf']['pss_mib']} MiB (means; PSS)")


def measure_warm():
    # The first @all also starts every node's job supervisor (a process start
    # per node): timed on its own, then the warm runs proper.
    ms, rc, err = submit_all()
    RES["first_ms"], RES["first_rc"] = round(ms, 1), rc
    out(f"B14 first: jsd-submit @all true, links warm, job supervisors not yet started: {RES['first_ms']} ms (exit {rc})")
    warm, cpu = [], []
    for _ in range(WARM):
        a = cpu_levels()
        ms, rc, err = submit_all()
        cpu.append(cpu_delta(a, cpu_levels()))
        if rc != 0:
            log(f"warm @all true exited {rc}: {err}")
        warm.append(ms)
        RES.setdefault("warm_rc", []).append(rc)
    RES["warm_all_ms"] = [round(x, 1) for x in warm]
    RES["warm_ms"] = round(statistics.median(warm), 1)
    RES["warm_cpu_ms"] = {"hub": round(statistics.median(c["hub"] for c in cpu), 1),
                          "gw_mean": round(statistics.median(statistics.mean(c["gw"]) for c in cpu), 1),
                          "leaf_mean": round(statistics.median(statistics.mean(c["leaf"]) for c in cpu), 2)}
    c = RES["warm_cpu_ms"]
    out(f"B14 warm: jsd-submit @all true to {G + G * L} nodes: median {RES['warm_ms']} ms ({RES['warm_all_ms']}, exit "
        f"{RES['warm_rc']}); CPU per run: hub {c['hub']} ms, a gateway {c['gw_mean']} ms, a leaf {c['leaf_mean']} ms")


def measure_wide():
    # The warm @all with a --fanout window as wide as the tree: the hub sends
    # one bundle of requests per gateway (relay.h) instead of a sliding
    # window. Every leaf starts its job at once: a burst of runnable
    # processes the load watchdog is told to allow (WIDE_LOAD x --max-load);
    # it runs last, so that an abort here loses no other figure.
    global LOAD_LIMIT
    LOAD_LIMIT = MAX_LOAD * WIDE_LOAD
    wide, wcpu, b0 = [], [], hub_metric("jsd_relay_bundles_sent_total")
    for _ in range(WARM):
        a = cpu_levels()
        ms, rc, err = submit_all("--fanout", str(G + G * L))
        wcpu.append(cpu_delta(a, cpu_levels())["hub"])
        if rc != 0:
            log(f"warm --fanout {G + G * L} @all true exited {rc}: {err}")
        wide.append(ms)
        RES.setdefault("wide_rc", []).append(rc)
    b1 = hub_metric("jsd_relay_bundles_sent_total")
    RES["wide_all_ms"] = [round(x, 1) for x in wide]
    RES["wide_ms"] = round(statistics.median(wide), 1)
    RES["wide_hub_cpu_ms"] = round(statistics.median(wcpu), 1)
    RES["wide_bundles"] = None if b0 is None or b1 is None else round((b1 - b0) / WARM, 1)
    out(f"B14 warm, --fanout {G + G * L}: median {RES['wide_ms']} ms ({RES['wide_all_ms']}, exit {RES['wide_rc']}); "
        f"hub CPU {RES['wide_hub_cpu_ms']} ms; bundles per run {RES['wide_bundles']}")
    LOAD_LIMIT = MAX_LOAD


def measure_ping():
    pings = []
    for _ in range(WARM):
        ms, rc, err = ping_all()
        if rc != 0:
            log(f"ping -c 1 @all exited {rc}: {err}")
        pings.append(ms)
        RES.setdefault("ping_rc", []).append(rc)
    RES["ping_all_ms"] = [round(x, 1) for x in pings]
    RES["ping_ms"] = round(statistics.median(pings), 1)
    out(f"B14 ping: jsd-ping -c 1 @all ({G + G * L} nodes): median {RES['ping_ms']} ms ({RES['ping_all_ms']}, exit "
        f"{RES['ping_rc']})")


def measure_cold():
    stop_all(["hub"])
    wait_ready(start("hub"), "the hub (restarted)")
    ms, rc, err = submit_all()
    if rc != 0:
        log(f"cold @all true exited {rc}: {err}")
    RES["cold_ms"], RES["cold_rc"] = round(ms, 1), rc
    out(f"B14 cold: jsd-submit @all true right after the hub's restart: {RES['cold_ms']} ms (exit {rc})")


def inner():
    global T
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    T = tempfile.mkdtemp(prefix="jsd-b14.")
    os.chmod(T, 0o755)
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *_: (RES.setdefault("aborted", "SIGTERM"), sys.exit(143)))
    signal.signal(signal.SIGINT, lambda *_: (RES.setdefault("aborted", "SIGINT"), sys.exit(130)))
    signal.signal(signal.SIGUSR1, lambda *_: (log(RES["aborted"]), sys.exit(125)))
    signal.signal(signal.SIGALRM, lambda *_: (RES.setdefault("aborted", f"out of time ({LIMIT_S} s)"),
                                              log(RES["aborted"]), sys.exit(124)))
    signal.alarm(LIMIT_S)
    threading.Thread(target=watchdog, daemon=True).start()
    RES["limits"] = U.limits()
    RES["load_at_start"] = [round(x, 1) for x in os.getloadavg()]
    gws = [gw(k) for k in range(1, G + 1)]
    lvs = [leaf(n) for n in range(1, G * L + 1)]
    t0 = time.time()
    write_configs(gen_keys(["hub"] + gws + lvs))
    log(f"{1 + G + G * L} keys and configs in {time.time() - t0:.1f} s")
    wait_ready(start("hub"), "the hub")
    t_first = time.time()
    start_waves(gws)
    start_waves(lvs)
    t_last = time.time()
    RES["start_s"] = round(t_last - t_first, 1)
    log(f"{G} gateways and {G * L} leaves started and ready in {RES['start_s']} s")
    RES["linked_ms"] = wait_linked(t_last)
    out(f"B14 linked: hub + {G} gateways + {G * L} leaves ({RES['nodes']} nodes), every link of the hub and the "
        f"gateways up {RES['linked_ms']} ms after the last leaf's ready (all started in {RES['start_s']} s)"
        + (f"; NOT linked: {RES['not_linked'][:5]}" if RES["not_linked"] else ""))
    if RES["not_linked"]:
        return  # figures taken while links still form would say nothing
    measure_idle()
    measure_warm()
    measure_ping()
    measure_footprint()  # after the warm runs: every node's supervisor is there
    measure_cold()
    RES["estimate"] = U.estimate(RES, 100, 100)
    e = RES["estimate"]
    out(f"B14 estimate for 100 gateways x 100 leaves: {U.estimate_line(e)}")
    measure_wide()


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
    # unshare execs the inner run (no --fork): a signal to this process is
    # passed on to it, so that it cleans up (dying here would orphan it).
    p = subprocess.Popen([unshare, "-n", "--", sys.executable, os.path.abspath(__file__)] + ARGS + ["--inner"])
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda n, _: p.send_signal(n))
    sys.exit(p.wait())


if __name__ == "__main__":
    main()
