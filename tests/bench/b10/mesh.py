#!/usr/bin/env python3
"""Benchmark B10 (issue 13): how fast a mesh of nodes links up.

  mesh.py BIN_DIR [--runs N] [--nodes N] [--limit SECONDS] [--run-limit SECONDS]
          [--id B10|B12] [--no-spawner] [--debug] [--keep]

--id B12 (issue 20) is the same measurement on a 64-node full mesh (4,032
directed links): its own namespaces (jsdb12...), and besides the time it
reports the mesh's CPU seconds and link process starts per directed link
(from each listener's status: forked by its link spawner, or by exec) and
the memory (PSS) of each node's processes once linked.

NODES (default 16) nodes, each in its own network namespace, joined through
veth pairs to one bridge in a hub namespace (nothing touches the host's own
network):

  netns jsdb10n1: eth0 198.51.100.1/24 --veth-- b10v1 \
  ...                                                  bridge b10br (netns jsdb10h)
  netns jsdb10n16: eth0 198.51.100.16/24 --veth-- b10v16 /

Each node has its own key pair, pins every other node's public key, lists
all the others as peers and in connect_at_startup, and gets a fresh state dir
every run.  All listeners are started back to back; a run measures the time
from the last listener's "ready" (--ready-fd) until every node's
`jsd-listener --status --json` shows every other node up in both directions
(out: its jsd-client; in: the peer's link to its queue-server).  The moment
the mesh became complete is the latest "since" of those links (the status
gives it with milliseconds), so polling adds nothing to the figure: the logs
are watched for the clients' "link to X is up" lines, then the status of all
nodes is read (again every 50 ms if a link is still missing).

Prints "B10 ..." lines, then one line "B10JSON {...}" for bench.py.  Needs
root and `ip netns`; prints one "B10 ... skipped: ..." line (and a JSON line
with "skipped") otherwise.  Namespaces, processes and the temp dir go however
the run ends (SIGTERM, SIGINT, an exception).  --debug runs the nodes at
log_level debug and prints, per run, where the time went; --keep keeps the
temp dir (configs, logs).  The whole run is bounded by --limit (default 240 s):
runs that would start after 2/3 of it are left out, and at the limit it stops
and cleans up.
"""
import atexit
import datetime
import json
import os
import re
import select
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


RUNS = int(opt("--runs", "5"))
LIMIT_S = int(opt("--limit", "240"))
BID = opt("--id", "B10")
TAG = BID.lower()
N = int(opt("--nodes", "64" if BID == "B12" else "16"))
DEBUG = "--debug" in ARGS
NO_SPAWNER = "--no-spawner" in ARGS  # link processes by exec, as before issue 20 (for before/after)
KEEP = "--keep" in ARGS
HUB = f"jsd{TAG}h"
NS = [f"jsd{TAG}n{i}" for i in range(1, N + 1)]
IP = [f"198.51.100.{i}" for i in range(1, N + 1)]
NAMES = [f"m{i:02d}" for i in range(1, N + 1)]
LABEL = f"{BID} mesh of {N} nodes in namespaces, fully linked after the last listener is ready"
RUN_LIMIT_S = int(opt("--run-limit", "30"))
# A mesh that does not form on this VM can take it down with it (issue 20:
# a 64-node run reached a load average of 700 and stalled the machine for
# ten minutes): a run stops once the load average passes --max-load.
MAX_LOAD = float(opt("--max-load", "150"))
T = None
PROCS = []  # every listener we started (Popen), so cleanup can end them by pid
NS_MADE = []


def out(msg):
    print(msg, flush=True)


def log(msg):
    print(f"{TAG}: {msg}", file=sys.stderr, flush=True)


def skip(why):
    out(f"{LABEL}: skipped: {why}")
    out(f"{BID}JSON " + json.dumps({"skipped": why}))
    sys.exit(0)


def sh(*cmd, check=True):
    r = subprocess.run(list(cmd), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r


def ns_pids(ns):
    r = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    return [int(p) for p in r.stdout.split()] if r.returncode == 0 else []


def stop_all(procs, wait_s=10):
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    end = time.time() + wait_s
    for p in procs:
        try:
            p.wait(timeout=max(0.1, end - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def cleanup():
    stop_all([p for p in PROCS if p.poll() is None])
    # Anything still in our own namespaces was started by this script (a
    # listener's children): end it by pid, then drop the namespaces (their
    # veth pairs and the bridge go with them).
    for ns in NS_MADE:
        for p in ns_pids(ns):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for ns in NS_MADE:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    NS_MADE.clear()
    if T and not KEEP:
        shutil.rmtree(T, ignore_errors=True)
    elif T:
        log(f"kept {T}")


# ---- network namespaces ------------------------------------------------------

def make_network():
    for ns in [HUB] + NS:
        if os.path.exists(f"/run/netns/{ns}"):  # left over by a killed run
            for p in ns_pids(ns):
                os.kill(p, signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    for ns in [HUB] + NS:
        r = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
        if r.returncode != 0:
            skip(f"cannot create network namespace {ns}: {r.stderr.strip()}")
        NS_MADE.append(ns)
    no6 = "net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1".split()
    hub = ["link set lo up", f"link add {TAG}br type bridge", f"link set {TAG}br up"]
    for i, ns in enumerate(NS, 1):
        hub += [f"link add {TAG}v{i} type veth peer name eth0 netns {ns}", f"link set {TAG}v{i} master {TAG}br",
                f"link set {TAG}v{i} up"]
    batch(HUB, hub)
    subprocess.run(["ip", "netns", "exec", HUB, "sysctl", "-qw"] + no6, capture_output=True)
    for i, ns in enumerate(NS):
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw"] + no6, capture_output=True)
        batch(ns, ["link set lo up", f"addr add {IP[i]}/24 dev eth0", "link set eth0 up"])
    # Static neighbours: no ARP inside any measurement.
    macs = [sh("ip", "netns", "exec", ns, "cat", "/sys/class/net/eth0/address").stdout.strip() for ns in NS]
    for i, ns in enumerate(NS):
        batch(ns, [f"neigh replace {IP[j]} lladdr {macs[j]} dev eth0 nud permanent" for j in range(N) if j != i])
    # The path works: a TCP connect from the first node to the last (no ping needed).
    sh("ip", "netns", "exec", NS[0], sys.executable, "-c",
       f"import socket,sys\ns=socket.socket();s.settimeout(2)\n"
       f"try: s.connect(('{IP[-1]}', 9))\nexcept ConnectionRefusedError: sys.exit(0)\nsys.exit(1)")


def batch(ns, cmds):
    r = subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(cmds) + "\n", capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"ip -n {ns} -batch: {r.stderr.strip()}")


NSENTER = shutil.which("nsenter") or "nsenter"


# ---- the nodes ----------------------------------------------------------------

def gen_keys():
    keys = []
    os.makedirs(f"{T}/keys")
    for n in NAMES:
        k = f"{T}/keys/{n}.key"
        pub = sh(f"{BIN}/jsd-listener", "--gen-key", k).stdout.strip()
        keys.append((k, pub))
    return keys


def write_configs(run_dir, keys):
    confs = []
    for i, n in enumerate(NAMES):
        d = f"{run_dir}/{n}"
        os.makedirs(d)
        peers = {NAMES[j]: {"address": f"{IP[j]}:4455", "public_key": keys[j][1]} for j in range(N) if j != i}
        cfg = {"node": n, "listen": f"{IP[i]}:4455", "state_dir": f"{d}/state", "key_file": keys[i][0],
               "peers": peers, "connect_at_startup": sorted(peers)}
        if DEBUG:
            cfg["log_level"] = "debug"
        if NO_SPAWNER:
            cfg["link_spawner"] = False
        with open(f"{d}/jsd.json", "w") as f:
            json.dump(cfg, f)
        confs.append(f"{d}/jsd.json")
    return confs


def parse_ts(s):
    # "2026-11-22T15:50:38.123Z" (status "since", log stamps)
    s = s.rstrip("Z")
    return datetime.datetime.fromisoformat(s).replace(tzinfo=datetime.timezone.utc).timestamp()


UP_LINE = re.compile(r"link to (\S+) is up")


def status_all(confs):
    ps = [subprocess.Popen([f"{BIN}/jsd-listener", "--status", "--json", "-f", c], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True) for c in confs]
    res = []
    for p in ps:
        o, _ = p.communicate(timeout=10)
        try:
            res.append(json.loads(o))
        except ValueError:
            res.append({})
    return res


def complete(statuses):
    """(all links up?, latest since, links up)"""
    latest, up = 0.0, 0
    ok = True
    for i, st in enumerate(statuses):
        want = set(NAMES) - {NAMES[i]}
        seen = {"out": set(), "in": set()}
        for l in st.get("links", []):
            if l.get("state") == "up" and l.get("peer") in want:
                seen[l["direction"]].add(l["peer"])
                latest = max(latest, parse_ts(l["since"]))
        up += len(seen["out"]) + len(seen["in"])
        if seen["out"] != want or seen["in"] != want:
            ok = False
    return ok, latest, up


TICK = os.sysconf("SC_CLK_TCK")


def cpu_stat():
    """(busy, total) jiffies of the whole machine."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = f[3] + f[4]
    return sum(f) - idle, sum(f)


def mesh_cpu_s():
    """CPU seconds used so far by every process of the mesh: the live ones in
    our namespaces, and the children the listeners have reaped; and the same
    by program (user+system, and how many processes)."""
    total, by = 0, {}
    for ns in NS:
        for pid in ns_pids(ns):
            try:
                head, tail = open(f"/proc/{pid}/stat").read().rsplit(")", 1)
            except OSError:
                continue
            f = tail.split()
            own = int(f[11]) + int(f[12])  # utime stime
            reaped = int(f[13]) + int(f[14])  # cutime cstime
            total += own + reaped
            comm = head.split("(", 1)[1]
            b = by.setdefault(comm, [0, 0, 0])
            b[0] += own
            b[1] += int(f[12])
            b[2] += 1
            if reaped:
                by.setdefault("reaped children", [0, 0, 0])[0] += reaped
    return total / TICK, {k: dict(cpu_s=v[0] / TICK, sys_s=v[1] / TICK, n=v[2]) for k, v in by.items()}


def ns_pss_kib(ns):
    """PSS of every process in network namespace ns (KiB)."""
    total = 0
    for pid in ns_pids(ns):
        try:
            for line in open(f"/proc/{pid}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            pass
    return total


def one_run(r, keys):
    run_dir = f"{T}/run{r}"
    load = open("/proc/loadavg").read().split()[0]
    confs = write_configs(run_dir, keys)
    logs = [f"{os.path.dirname(c)}/log" for c in confs]
    procs, readers, spawn_t = [], {}, []
    busy0, tot0 = cpu_stat()
    t_first = time.time()
    for i, c in enumerate(confs):
        rfd, wfd = os.pipe()
        with open(logs[i], "wb") as err:
            # nsenter, not a preexec_fn: Popen then uses vfork (a fork of
            # this Python costs ~60 ms on a loaded VM; vfork + nsenter ~1 ms).
            p = subprocess.Popen([NSENTER, f"--net=/run/netns/{NS[i]}", f"{BIN}/jsd-listener", "--config", c,
                                  "--ready-fd", str(wfd)], pass_fds=[wfd], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=err)
        os.close(wfd)
        spawn_t.append(time.time())
        procs.append(p)
        PROCS.append(p)
        readers[rfd] = i
    ready = [None] * N
    pending = dict(readers)
    deadline = time.time() + 10
    while pending and time.time() < deadline:
        rs, _, _ = select.select(list(pending), [], [], 0.5)
        now = time.time()
        for fd in rs:
            data = os.read(fd, 64)
            i = pending.pop(fd)
            os.close(fd)
            if data.strip() == b"ready":
                ready[i] = now
    for fd in pending:
        os.close(fd)
    if any(x is None for x in ready):
        bad = [NAMES[i] for i in range(N) if ready[i] is None]
        raise RuntimeError(f"listeners {bad} did not get ready; see {run_dir}")
    t_last_ready = max(ready)
    # Watch the logs for every client's "link to X is up", then confirm by status.
    seen = set()
    offs = [0] * N
    t_end = t_last_ready + RUN_LIMIT_S
    trace, next_sample, aborted = [], 0.0, None
    while len(seen) < N * (N - 1) and time.time() < t_end:
        now = time.time()
        if now >= next_sample:
            # /proc/loadavg: 1-minute load, and runnable/all tasks of the machine.
            f = open("/proc/loadavg").read().split()
            run_q, tasks = (int(x) for x in f[3].split("/"))
            trace.append((round(now - t_last_ready, 1), len(seen), float(f[0]), run_q, tasks))
            next_sample = now + 1.0
            if float(f[0]) > MAX_LOAD:
                aborted = f"load average {f[0]} > {MAX_LOAD:g} after {now - t_last_ready:.0f} s ({len(seen)} links up, {tasks} tasks)"
                log(f"run {r}: stopped: {aborted}")
                t_end = now
                break
        for i in range(N):
            with open(logs[i], "rb") as f:
                f.seek(offs[i])
                chunk = f.read()
            cut = chunk.rfind(b"\n") + 1
            offs[i] += cut
            for line in chunk[:cut].decode(errors="replace").splitlines():
                m = UP_LINE.search(line)
                if m:
                    seen.add((i, m.group(1)))
        time.sleep(0.01)
    busy1, tot1 = cpu_stat()
    mesh_cpu, cpu_by = mesh_cpu_s()
    machine_cpu = (busy1 - busy0) / TICK
    ok, latest, up = False, 0.0, 0
    statuses = []
    while time.time() < t_end:
        statuses = status_all(confs)
        ok, latest, up = complete(statuses)
        if ok:
            break
        time.sleep(0.05)
    # How the link processes were started (forked by the link spawner, or
    # by exec), and each node's memory once linked.
    forked = sum(st.get("link_spawner", {}).get("forked", 0) for st in statuses)
    execs = sum(st.get("link_spawner", {}).get("exec", 0) for st in statuses)
    pss = [ns_pss_kib(ns) for ns in NS]
    res = dict(run=r, ok=ok, load=float(load), mesh_cpu_s=round(mesh_cpu, 2),
               others_cpu_s=round(max(0.0, machine_cpu - mesh_cpu), 2),
               window_cpu_s=round((tot1 - tot0) / TICK, 2), links_up=up, links=2 * N * (N - 1), spawn_span_ms=(spawn_t[-1] - t_first) * 1000,
               ready_span_ms=(t_last_ready - t_first) * 1000,
               linked_ms=(latest - t_last_ready) * 1000 if ok else None,
               linked_from_first_spawn_ms=(latest - t_first) * 1000 if ok else None,
               forked=forked, execs=execs, pss_node_kib=statistics.median(pss) if pss else None,
               pss_node_max_kib=max(pss) if pss else None, aborted=aborted, trace=trace)
    if DEBUG:
        res["profile"] = profile(logs, t_first, spawn_t, ready)
        res["profile"]["cpu_by"] = cpu_by
    stop_all(procs)
    for p in procs:
        PROCS.remove(p)
    return res


# ---- where the time went (--debug) ---------------------------------------------

LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT[\d:.]+Z?) (\S+)\[(\d+)\]:? (.*)$")


HS_LINE = re.compile(r"^(\S+) \(.*passed the handshake")


def profile(logs, t0, spawn_t, ready):
    """Per directed link a->b, from the debug logs (ms after the first spawn):
    a's client started, its failed attempts, a kick ("peer b is back"), b's
    listener passing a's handshake, b's queue-server seeing the link up, a's
    client seeing it up."""
    links = {}

    def L(a, b):
        return links.setdefault((a, b), dict(start=None, fails=[], kicks=[], hs=None, srv_up=None, up=None))

    for i, path in enumerate(logs):
        me = NAMES[i]
        for line in open(path, errors="replace"):
            m = LOG_LINE.match(line.strip())
            if not m:
                continue
            ts, prog, _pid, text = m.groups()
            t = round((parse_ts(ts) - t0) * 1000, 1)
            text = text.split(": ", 1)[1] if ": " in text else text  # drop the level
            if prog == "jsd-listener":
                if text.startswith("started QueueClient_"):
                    L(me, text.split("_", 1)[1].split()[0])["start"] = t
                elif (h := HS_LINE.match(text)) and L(h.group(1), me)["hs"] is None:
                    L(h.group(1), me)["hs"] = t
            elif prog.startswith("QueueClient_"):
                l = L(me, prog.split("_", 1)[1])
                if l["up"] is not None:
                    continue
                if UP_LINE.search(text):
                    l["up"] = t
                elif "is back" in text:
                    l["kicks"].append(t)
                else:
                    l["fails"].append((t, text[:100]))
            elif prog.startswith("QueueServer_") and "is up" in text:
                l = L(prog.split("_", 1)[1], me)
                if l["srv_up"] is None:
                    l["srv_up"] = t
    return dict(spawn_ms=[round((s - t0) * 1000, 1) for s in spawn_t],
                ready_ms=[round((x - t0) * 1000, 1) for x in ready], links=links)


def summarize_profile(p):
    rd = dict(zip(NAMES, p["ready_ms"]))
    last_ready = max(p["ready_ms"])
    rows = []
    for (a, b), l in p["links"].items():
        if l["up"] is None or l["srv_up"] is None:
            continue
        both = max(rd[a], rd[b])  # from here on the link could have been made
        fail_before = [f for f in l["fails"] if f[0] <= both]
        fail_after = [f for f in l["fails"] if f[0] > both]
        kick = [k for k in l["kicks"] if k >= rd[b]]
        rows.append(dict(link=f"{a}->{b}", both=both, done=max(l["up"], l["srv_up"]), hs=l["hs"], start=l["start"],
                         after_both=max(l["up"], l["srv_up"]) - both,
                         hs_wait=(l["hs"] - max(both, l["start"] or 0)) if l["hs"] is not None else None,
                         hs_to_up=max(l["up"], l["srv_up"]) - l["hs"] if l["hs"] is not None else None,
                         nfail=len(l["fails"]), fail_after=len(fail_after), kick=bool(kick),
                         last_fail=l["fails"][-1][0] if l["fails"] else None))
    rows.sort(key=lambda r: r["done"])
    q = lambda xs, f: sorted(xs)[min(len(xs) - 1, int(len(xs) * f))] if xs else float("nan")
    ab = [r["after_both"] for r in rows]
    hw = [r["hs_wait"] for r in rows if r["hs_wait"] is not None]
    hu = [r["hs_to_up"] for r in rows if r["hs_to_up"] is not None]
    lines = [f"  listeners spawned at 0..{max(p['spawn_ms']):.0f} ms, ready at {min(p['ready_ms']):.0f}.."
             f"{last_ready:.0f} ms (ms after the first spawn)",
             f"  {len(rows)} directed links; up in both processes at {rows[0]['done']:.0f}..{rows[-1]['done']:.0f} ms"
             if rows else "  no link came up",
             f"  per link, from the moment both ends were ready: up after median {q(ab, .5):.0f} / p90 {q(ab, .9):.0f} / "
             f"max {max(ab, default=0):.0f} ms; of which until the peer passed the handshake (from both ready and "
             f"the client started) median {q(hw, .5):.0f} / p90 {q(hw, .9):.0f} / max {max(hw, default=0):.0f} ms, "
             f"handshake passed -> up at both ends median {q(hu, .5):.0f} / p90 {q(hu, .9):.0f} / "
             f"max {max(hu, default=0):.0f} ms",
             f"  {sum(r['nfail'] for r in rows)} failed attempts before the links were up "
             f"({sum(r['fail_after'] for r in rows)} of them after both ends were ready); "
             f"{sum(r['kick'] for r in rows)} links retried at a kick (peer is back)"]
    lines.append("  CPU until linked, by program: " + ", ".join(
        f"{k} {v['cpu_s']:.2f} s ({v['sys_s']:.2f} system, {v['n']} processes)" for k, v in p["cpu_by"].items()))
    kinds = {}
    for (a, b), l in p["links"].items():
        for t, text in l["fails"]:
            k = re.sub(r"m\d\d \(198\.51\.100\.\d+:4455\)|198\.51\.100\.\d+:\d+|m\d\d", "PEER", text)
            k = re.sub(r"\d+", "N", k) + (" (after both ready)" if t > max(rd[a], rd[b]) else "")
            kinds[k] = kinds.get(k, 0) + 1
    for k, n in sorted(kinds.items(), key=lambda x: -x[1])[:6]:
        lines.append(f"  {n:4d} x {k}")
    for r in rows[-6:]:
        lines.append(f"    {r['link']}: both ready {r['both']:.0f}, client started {r['start']}, last failure "
                     f"{r['last_fail']}, handshake passed {r['hs']}, up {r['done']:.0f} ms ({r['nfail']} failures, "
                     f"kick {'yes' if r['kick'] else 'no'})")
    return "\n".join(lines)


def main():
    global T, BIN
    if os.geteuid() != 0:
        skip("not root (needs network namespaces)")
    if not shutil.which("ip") or subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        skip("no `ip netns` (iproute2)")
    if not shutil.which("nsenter"):
        skip("no nsenter (util-linux)")
    if not os.access(f"{BIN}/jsd-listener", os.X_OK):
        skip(f"no jsd binaries in {BIN}")
    lock = open(f"/run/jsd{TAG}.lock", "w")
    import fcntl
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        skip(f"another {BID} run holds /run/jsd{TAG}.lock")
    T = tempfile.mkdtemp(prefix=f"jsd-{TAG}.")
    os.chmod(T, 0o755)
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
    signal.signal(signal.SIGALRM, lambda *_: (log(f"out of time ({LIMIT_S} s)"), sys.exit(124)))
    signal.alarm(LIMIT_S)
    t_begin = time.time()
    # A snapshot of the binaries: BIN_DIR may be rebuilt while this runs (the
    # listener starts jsd-client, jsd-queue-server and jsd-job from its own
    # folder when all three are there: a build tree).
    os.makedirs(f"{T}/bin")
    for b in ("jsd-listener", "jsd-client", "jsd-queue-server", "jsd-job"):
        shutil.copy2(f"{BIN}/{b}", f"{T}/bin/{b}")
    BIN = f"{T}/bin"
    try:
        make_network()
    except RuntimeError as e:
        skip(f"cannot build the namespaces: {e}")
    keys = gen_keys()
    results = []
    for r in range(1, RUNS + 1):
        if r > 1 and time.time() - t_begin > LIMIT_S * 2 / 3:
            log(f"stopping after {r - 1} runs: time")
            break
        res = one_run(r, keys)
        results.append(res)
        if res["ok"]:
            log(f"run {r}: fully linked {res['linked_ms']:.0f} ms after the last ready ({res['linked_from_first_spawn_ms']:.0f} ms "
                f"after the first spawn; spawns took {res['spawn_span_ms']:.0f} ms, all ready after {res['ready_span_ms']:.0f} ms; "
                f"load average {res['load']} before; CPU until linked: mesh {res['mesh_cpu_s']} s, others "
                f"{res['others_cpu_s']} s of {res['window_cpu_s']} s available)")
        else:
            log(f"run {r}: NOT fully linked within {RUN_LIMIT_S} s ({res['links_up']}/{res['links']} links up)")
        # How it went, every few seconds: links up, load, runnable and all tasks.
        log(f"run {r} trace (s after the last ready, links up, load, runnable, tasks): " +
            " ".join(f"{t}:{u}/{l:g}/{q}/{k}" for t, u, l, q, k in res["trace"][::5]))
        if DEBUG:
            out(f"B10 run {r} profile:\n" + summarize_profile(res["profile"]))
        time.sleep(0.3)
    good = [x["linked_ms"] for x in results if x["ok"]]
    links = N * (N - 1)
    p90 = sorted(good)[min(len(good) - 1, int(len(good) * 0.9))] if good else None
    summary = dict(runs=len(results), ok_runs=len(good), nodes=N, directed_links=links,
                   median_ms=round(statistics.median(good), 1) if good else None,
                   p90_ms=round(p90, 1) if good else None,
                   cpu_ms_per_link=[round(r["mesh_cpu_s"] * 1000 / links, 2) for r in results],
                   starts_per_link=[round((r["forked"] + r["execs"]) / links, 2) for r in results],
                   forked=[r["forked"] for r in results], execs=[r["execs"] for r in results],
                   pss_node_mib=[round(r["pss_node_kib"] / 1024, 1) if r["pss_node_kib"] else None for r in results],
                   pss_node_max_mib=[round(r["pss_node_max_kib"] / 1024, 1) if r["pss_node_max_kib"] else None
                                     for r in results],
                   max_ms=round(max(good), 1) if good else None,
                   all_ms=[round(x, 1) if x is not None else None for x in (r["linked_ms"] for r in results)],
                   ready_span_ms=[round(r["ready_span_ms"], 1) for r in results],
                   from_first_spawn_ms=[round(r["linked_from_first_spawn_ms"], 1) if r["ok"] else None for r in results],
                   load=[r["load"] for r in results], mesh_cpu_s=[r["mesh_cpu_s"] for r in results],
                   others_cpu_s=[r["others_cpu_s"] for r in results], target_ms=1000,
                   aborted=[r["aborted"] for r in results if r["aborted"]])
    summary["met"] = bool(good) and len(good) == len(results) and (BID != "B10" or p90 <= 1000)
    if good:
        out(f"{LABEL}: median {summary['median_ms']} ms, p90 {summary['p90_ms']} ms, max {summary['max_ms']} ms over {len(good)} runs "
            f"(runs: {summary['all_ms']} ms; all listeners ready {summary['ready_span_ms']} ms after the first spawn; "
            f"CPU used by the mesh until fully linked {summary['mesh_cpu_s']} s, by other work meanwhile "
            f"{summary['others_cpu_s']} s; per directed link: CPU {summary['cpu_ms_per_link']} ms, process starts "
            f"{summary['starts_per_link']} (forked {summary['forked']}, exec {summary['execs']}); PSS per node median "
            f"{summary['pss_node_mib']} MiB, max {summary['pss_node_max_mib']} MiB)")
    else:
        why = f" (stopped: {summary['aborted'][0]})" if summary["aborted"] else ""
        out(f"{LABEL}: FAILED: no run linked fully within {RUN_LIMIT_S} s{why}")
    out(f"{BID}JSON " + json.dumps(summary))


if __name__ == "__main__":
    main()
