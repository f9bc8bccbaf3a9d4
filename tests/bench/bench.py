#!/usr/bin/env python3
"""jsd benchmarks (issue 4): jsd beside ssh, raw TCP and a local spawn, in one run.

Every benchmark starts real nodes on 127.0.2.x / 127.0.1.x, cleans up after
itself and is bounded in time. Prints one table and writes the same as JSON.
B10 (a 16-node mesh, tests/bench/b10/mesh.py) needs root for its network
namespaces and is skipped without; B11 measures re-linking after a restart;
B12 a 64-node full mesh (tests/bench/b10/mesh.py --nodes 64, root only), B13 one
node with 1,000 direct peers (tests/bench/b13/hub.py, root only), B14 a tree of
a hub, 10 gateways and 1,000 leaves (tests/bench/b14/tree.py, root only; 4 x 50
with --quick), B15 standard
input (jsd-submit -i) beside ssh and clush (tests/bench/b15/stdin.py; it was
B12 before issue 20 named the mesh B12).
Usage: bench.py BIN_DIR BENCH_DIR [--quick] [--only=B1,B3,...]
"""
import atexit
import getpass
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BIN, BENCH = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
QUICK = "--quick" in sys.argv
ONLY = None
for a in sys.argv:
    if a.startswith("--only="):
        ONLY = set(a.split("=", 1)[1].split(","))
TMP = tempfile.mkdtemp(prefix="jsd-bench.")
# Removed however the run ends (an exception, a timeout's SIGTERM).
atexit.register(shutil.rmtree, TMP, True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
RESULTS = []
NODES = []
DEADLINE = time.time() + 1260  # the whole suite stays under 30 minutes (B12, B13 and B14's tree take minutes)


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def record(bid, metric, jsd, baseline, unit, target, met, note=""):
    ratio = (jsd / baseline) if (jsd is not None and baseline) else None
    RESULTS.append(dict(id=bid, metric=metric, jsd=jsd, baseline=baseline, ratio=ratio, unit=unit,
                        target=target, met=met, note=note))
    log(f"{bid} {metric}: jsd={jsd} baseline={baseline} {unit} target {target}: {'met' if met else 'MISSED' if met is False else '-'}")


KEYS = {}


def node_key(name):
    """Every node has its own key pair: (private key file, public key)."""
    if name not in KEYS:
        os.makedirs(os.path.join(TMP, "keys"), exist_ok=True)
        k = os.path.join(TMP, "keys", f"{name}.key")
        pub = subprocess.run([f"{BIN}/jsd-listener", "--gen-key", k], check=True, capture_output=True,
                             text=True).stdout.strip()
        KEYS[name] = (k, pub)
    return KEYS[name]


class Node:
    def __init__(self, name, ip, key, peers, extra=None):
        # key is ignored: each node's own key, and its peers' keys pinned.
        key = node_key(name)[0]
        peers = {n: {"address": a, "public_key": node_key(n)[1]} for n, a in peers.items()}
        self.name, self.ip = name, ip
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir, exist_ok=True)
        cfg = {"node": name, "listen": f"{ip}:4455", "state_dir": os.path.join(self.dir, "state"),
               "key_file": key, "peers": peers,
               "jobs": {"true": {"command": ["/bin/true"], "max_parallel": 64}}}
        cfg.update(extra or {})
        self.conf = os.path.join(self.dir, "jsd.json")
        with open(self.conf, "w") as f:
            json.dump(cfg, f)
        self.proc = None

    def env(self):
        return dict(os.environ, JSD_CONFIG=self.conf)

    def start(self):
        r, w = os.pipe()
        self.log = open(os.path.join(self.dir, "log"), "ab")
        self.proc = subprocess.Popen([f"{BIN}/jsd-listener", "--config", self.conf, "--ready-fd", str(w)],
                                     pass_fds=[w], stderr=self.log, stdout=subprocess.DEVNULL)
        os.close(w)
        with os.fdopen(r) as rf:
            if rf.readline().strip() != "ready":
                raise RuntimeError(f"node {self.name} did not start; see {self.dir}/log")
        NODES.append(self)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self in NODES:
            NODES.remove(self)


def keyfile():
    k = os.path.join(TMP, "cluster.key")
    if not os.path.exists(k):
        subprocess.run([f"{BIN}/jsd-listener", "--gen-key", k], check=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return k


def pair(tag, ip_a, ip_b):
    k = keyfile()
    a = Node(f"a{tag}", ip_a, k, {f"b{tag}": f"{ip_b}:4455"})
    b = Node(f"b{tag}", ip_b, k, {f"a{tag}": f"{ip_a}:4455"})
    return a, b


def wall(cmd, env, check=True):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if check and r.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({r.returncode}): {r.stderr.decode()[:300]}")
    return dt


# ---- ssh baseline ---------------------------------------------------------

class Sshd:
    def __init__(self, listen="127.0.0.1", tag="ssh"):
        self.ok = False
        self.why = ""
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        if not os.path.exists(sshd) or not shutil.which("ssh"):
            self.why = "sshd not installed (make -f Makefile.dist bench-deps installs openssh-server)"
            return
        d = os.path.join(TMP, tag)
        self.dir = d
        os.makedirs(d)
        for k in ("host", "id"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/{k}"], check=True)
        shutil.copy(f"{d}/id.pub", f"{d}/authorized_keys")
        os.chmod(f"{d}/authorized_keys", 0o600)
        s = socket.socket()
        s.bind((listen, 0))
        self.port = s.getsockname()[1]
        s.close()
        with open(f"{d}/sshd_config", "w") as f:
            f.write(f"""Port {self.port}
ListenAddress {listen}
HostKey {d}/host
AuthorizedKeysFile {d}/authorized_keys
PidFile {d}/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers {getpass.getuser()}
LogLevel ERROR
""")
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        cmd = [sshd, "-D", "-e", "-f", f"{d}/sshd_config"]
        self.note = ""
        if os.geteuid() == 0 and shutil.which("unshare"):
            # The remote shell would source the user's rc files (here ~100 ms
            # of pyenv set-up): mask them with empty files inside a private
            # mount namespace, so the baseline measures ssh, not .bashrc.
            home = os.path.expanduser("~")
            masks = "; ".join(f"[ -e {home}/{f} ] && mount --bind /dev/null {home}/{f}"
                              for f in (".bashrc", ".profile", ".bash_profile", ".bash_login"))
            cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", masks + '; exec "$@"', "sh"] + cmd
            self.note = "remote rc files masked"
        self.proc = subprocess.Popen(cmd, stderr=open(f"{d}/log", "w"))
        self.base = ["ssh", "-i", f"{d}/id", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
                     "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
                     "-p", str(self.port)]
        self.cm = ["-o", "ControlMaster=auto", "-o", f"ControlPath={d}/cm", "-o", "ControlPersist=120"]
        for _ in range(100):
            if subprocess.run(self.base + ["-o", "ControlPath=none", "127.0.0.1", "true"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
                self.ok = True
                return
            time.sleep(0.05)
        self.why = f"private sshd did not answer; see {d}/log"

    def cold(self):
        return self.base + ["-o", "ControlPath=none", "127.0.0.1", "true"]

    def warm(self):
        return self.base + self.cm + ["127.0.0.1", "true"]

    def stop(self):
        if self.ok or hasattr(self, "proc"):
            subprocess.run(self.base + self.cm + ["-O", "exit", "127.0.0.1"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            self.proc.terminate()
            self.proc.wait()


def time_wait(port_filter):
    out = subprocess.run(["ss", "-tan", "state", "time-wait"], capture_output=True, text=True).stdout
    return sum(1 for line in out.splitlines()[1:] if port_filter(line))


def want(bid):
    return (ONLY is None or bid in ONLY) and time.time() < DEADLINE


# ---- the benchmarks --------------------------------------------------------

def b1_b7(sshd):
    a, b = pair("w", "127.0.2.2", "127.0.2.3")
    a.start(), b.start()
    env = a.env()
    submit = [f"{BIN}/jsd-submit", "-q", "bw", "true"]
    wall(submit, env)
    if want("B1"):
        # jsd and ssh alternate in rounds of 20, so a noisy minute hits both.
        rounds = 3 if QUICK else 5
        jsd, base_l = [], []
        if sshd.ok:
            wall(sshd.warm(), None)
        for _ in range(rounds):
            jsd += [wall(submit, env) * 1000 for _ in range(20)]
            if sshd.ok:
                base_l += [wall(sshd.warm(), None) * 1000 for _ in range(20)]
        base = statistics.median(base_l) if base_l else None
        med = statistics.median(jsd)
        record("B1", f"warm jsd-submit NODE true, median of {len(jsd)} in {rounds} alternating rounds (p99 {pct(jsd, 99):.2f})",
               round(med, 3), round(base, 3) if base else None, "ms", "<= 0.3 x ssh ControlMaster",
               (med <= 0.3 * base) if base else None, sshd.note if base else sshd.why)
    if want("B7"):
        n = 500 if QUICK else 2000
        before = time_wait(lambda l: "127.0.2.2" in l or "127.0.2.3" in l)
        for _ in range(n):
            wall(submit, env)
        tw = time_wait(lambda l: "127.0.2.2" in l or "127.0.2.3" in l) - before
        base = None
        note = f"{n} jsd submissions"
        if sshd.ok:
            m = 100 if QUICK else 200
            sb = time_wait(lambda l: f":{sshd.port}" in l)
            for _ in range(m):
                wall(sshd.cold(), None)
            base = (time_wait(lambda l: f":{sshd.port}" in l) - sb) * (n / m)
            note += f"; ssh: {m} cold runs scaled x{n // m}"
        record("B7", f"TIME_WAIT sockets after {n} submissions to one peer", max(tw, 0), base, "sockets",
               "<= 2 per peer", tw <= 2, note)
    a.stop(), b.stop()


def b2(sshd):
    n = 5 if QUICK else 20
    sub, ping = [], []
    for i in range(n):
        for kind, store in (("submit", sub), ("ping", ping)):
            a, b = pair(f"c{i}{kind[0]}", "127.0.2.4", "127.0.2.5")
            a.start(), b.start()
            cmd = ([f"{BIN}/jsd-submit", "-q", f"bc{i}{kind[0]}", "true"] if kind == "submit"
                   else [f"{BIN}/jsd-ping", "-c", "1", "-q", f"bc{i}{kind[0]}"])
            store.append(wall(cmd, a.env()) * 1000)
            a.stop(), b.stop()
    base = statistics.median([wall(sshd.cold(), None) * 1000 for _ in range(n)]) if sshd.ok else None
    med = statistics.median(sub)
    record("B2", f"cold first jsd-submit NODE true on a fresh pair, median of {n}", round(med, 2),
           round(base, 2) if base else None, "ms", "<= 0.1 x cold ssh", (med <= 0.1 * base) if base else None,
           sshd.note if base else sshd.why)
    record("B2p", f"cold first jsd-ping -c 1 on a fresh pair, median of {n} (max {max(ping):.1f})",
           round(statistics.median(ping), 2), None, "ms", "-", None)


def b3_b4_b5():
    a, b = pair("h", "127.0.2.6", "127.0.2.7")
    a.start(), b.start()
    env = a.env()
    if want("B3"):
        # This VM's loopback round trip wanders between runs (14-67 us), so
        # jsd and raw TCP alternate in short rounds and each side's figure is
        # the median of its round medians.
        for size in (16, 1024):
            n = 500 if QUICK else 1000
            jsd_m, raw_m, all_rtts, raw_p99 = [], [], [], []
            for _ in range(3 if QUICK else 5):
                out = subprocess.run([f"{BIN}/jsd-ping", "--json", "-c", str(n), "-i", "0", "-s", str(size), "bh"],
                                     env=env, capture_output=True, text=True, check=True).stdout
                rtts = [r["rtt_ms"] * 1000 for r in json.loads(out)["replies"]]
                all_rtts += rtts
                jsd_m.append(statistics.median(rtts))
                raw = json.loads(subprocess.run([f"{BENCH}/raw_tcp", "pingpong", str(size), str(n)],
                                                capture_output=True, text=True, check=True).stdout)
                raw_m.append(raw["median_us"])
                raw_p99.append(raw["p99_us"])
            med, rmed = statistics.median(jsd_m), statistics.median(raw_m)
            record("B3", f"call round trip, warm link, {size} B body, median of {len(jsd_m)} alternating rounds "
                   f"(p99 {pct(all_rtts, 99):.0f} / raw {statistics.median(raw_p99):.0f})",
                   round(med, 1), round(rmed, 2), "us", "<= 3 x raw TCP", med <= 3 * rmed)
    if want("B4"):
        n = 100000 if QUICK else 300000
        # Alternating rounds again: the raw stream moves between 4 and 10 M/s.
        runs, raw = [], []
        for _ in range(3 if QUICK else 5):
            runs.append(json.loads(subprocess.run([f"{BENCH}/jsd_bench", "notify", "bh", str(n), "100"], env=env,
                                                  capture_output=True, text=True, check=True).stdout)["per_s"])
            # The same frame size on the wire: a 100 B body is a ~170 B sealed frame.
            raw.append(json.loads(subprocess.run([f"{BENCH}/raw_tcp", "stream", "170", str(n * 4)],
                                                 capture_output=True, text=True, check=True).stdout)["per_s"])
        j, r = statistics.median(runs), statistics.median(raw)
        record("B4", f"one-way notifications/s on one link, 100 B bodies (median of {len(runs)} alternating rounds)",
               round(j), round(r), "per s", ">= 300000/s and >= 25 % of raw", j >= 300000 and j >= 0.25 * r)
    if want("B5"):
        n = 256 if QUICK else 512
        local_l, drv_l = [], []
        for _ in range(3):
            local_l.append(json.loads(subprocess.run([f"{BENCH}/spawn_loop", str(n), "64"], capture_output=True,
                                                     text=True, check=True).stdout)["per_s"])
            drv_l.append(json.loads(subprocess.run([f"{BENCH}/jsd_bench", "submit", "bh", str(n), "64", "true"],
                                                   env=env, capture_output=True, text=True, check=True).stdout)["per_s"])
        local, drv = statistics.median(local_l), statistics.median(drv_l)
        record("B5", f"jobs/s, 64 concurrent true submissions ({n} jobs, one control connection; median of 3 alternating rounds)",
               round(drv, 1), round(local, 1), "per s", ">= 50 % of local", drv >= 0.5 * local)
        # The literal form: 64 jsd-submit processes at a time.
        t0 = time.perf_counter()
        rounds = 2 if QUICK else 4
        for _ in range(rounds):
            ps = [subprocess.Popen([f"{BIN}/jsd-submit", "-q", "bh", "true"], env=env) for _ in range(64)]
            if any(p.wait() != 0 for p in ps):
                raise RuntimeError("a jsd-submit failed")
        per_s = 64 * rounds / (time.perf_counter() - t0)
        record("B5p", "jobs/s, 64 concurrent jsd-submit processes (each a process start too)", round(per_s, 1),
               round(local, 1), "per s", ">= 50 % of local", per_s >= 0.5 * local)
    a.stop(), b.stop()


def b6():
    n = 20 if QUICK else 100
    k = keyfile()
    hub_ip = "127.0.1.200"
    spokes = [Node(f"s{i}", f"127.0.1.{i}", k, {"hub": f"{hub_ip}:4455"}) for i in range(1, n + 1)]
    for s in spokes:
        s.start()
    hub = Node("hub", hub_ip, k, {s.name: f"{s.ip}:4455" for s in spokes},
               {"connect_at_startup": [s.name for s in spokes]})
    t0 = time.perf_counter()
    hub.start()
    up = 0
    while time.perf_counter() - t0 < 30:
        st = json.loads(subprocess.run([f"{BIN}/jsd-listener", "--status", "--json"], env=hub.env(),
                                       capture_output=True, text=True).stdout or "{}")
        up = sum(1 for l in st.get("links", []) if l["state"] == "up")
        if up == 2 * n:
            break
        time.sleep(0.005)
    dt = time.perf_counter() - t0
    rss = {}
    for line in subprocess.run(["ps", "-eo", "rss=,args="], capture_output=True, text=True).stdout.splitlines():
        kb, args = line.strip().split(None, 1)
        if TMP in args and args.startswith(("QueueClient_", "QueueServer_")):
            rss.setdefault(args.split()[0].split("_")[0], []).append(int(kb))
    worst = max(max(v) for v in rss.values()) / 1024 if rss else None
    record("B6", f"hub linked both ways to {n} peers ({up}/{2 * n} links up)", round(dt * 1000, 1), None, "ms",
           "<= 1000 ms", up == 2 * n and dt <= 1.0)
    record("B6m", "max RSS of a queue-server or client process "
           + ", ".join(f"{k}: median {statistics.median(v) / 1024:.2f}" for k, v in rss.items()),
           round(worst, 2) if worst else None, None, "MiB", "<= 4 MiB", worst is not None and worst <= 4)
    for s in [hub] + spokes:
        s.stop()


def b10():
    """B10: a 16-node mesh in network namespaces (tests/bench/b10/mesh.py; root only)."""
    runs = 2 if QUICK else 5
    mesh = os.path.join(os.path.dirname(os.path.abspath(__file__)), "b10", "mesh.py")
    # mesh.py bounds itself (--limit) and cleans up on SIGTERM: never SIGKILL it
    # first, or its namespaces and nodes would outlive it.
    limit = int(max(60, min(240, DEADLINE - time.time() + 60)))
    p = subprocess.Popen([sys.executable, mesh, BIN, "--runs", str(runs), "--limit", str(limit)],
                         stdout=subprocess.PIPE, text=True)
    try:
        stdout, _ = p.communicate(timeout=limit + 30)
    except subprocess.TimeoutExpired:
        p.terminate()
        stdout, _ = p.communicate()
    res = None
    for line in stdout.splitlines():
        if line.startswith("B10JSON "):
            res = json.loads(line[8:])
        else:
            log(line)
    metric = "16-node mesh in namespaces (a key pair each, all peers at startup): fully linked after the last listener's ready"
    if res is None:
        record("B10", metric, None, None, "ms", "<= 1000 ms", False, f"mesh.py failed (exit {p.returncode})")
    elif "skipped" in res:
        log(f"B10 skipped: {res['skipped']}")
        record("B10", metric, None, None, "ms", "<= 1000 ms", None, f"skipped: {res['skipped']}")
    else:
        record("B10", f"{metric}, p90 of {res['ok_runs']}/{res['runs']} runs (median {fmt(res['median_ms'])}, max "
               f"{fmt(res['max_ms'])}; runs {', '.join(fmt(x) for x in res['all_ms'])}; process starts per link "
               f"{res['starts_per_link']})", res["p90_ms"], None, "ms", "p90 <= 1000 ms (goal 300)", res["met"])


def b12():
    """B12 (issue 20): a 64-node full mesh in network namespaces (tests/bench/b10/mesh.py --id B12; root only)."""
    mesh = os.path.join(os.path.dirname(os.path.abspath(__file__)), "b10", "mesh.py")
    limit = int(max(120, min(400, DEADLINE - time.time() + 120)))
    p = subprocess.Popen([sys.executable, mesh, BIN, "--id", "B12", "--nodes", "64", "--runs", "1", "--limit",
                          str(limit), "--run-limit", str(limit - 60)], stdout=subprocess.PIPE, text=True)
    try:
        stdout, _ = p.communicate(timeout=limit + 30)
    except subprocess.TimeoutExpired:
        p.terminate()
        stdout, _ = p.communicate()
    res = None
    for line in stdout.splitlines():
        if line.startswith("B12JSON "):
            res = json.loads(line[8:])
        else:
            log(line)
    metric = "64-node full mesh in namespaces (4,032 directed links): fully linked after the last listener's ready"
    if res is None:
        record("B12", metric, None, None, "ms", "links completely", False, f"mesh.py failed (exit {p.returncode})")
    elif "skipped" in res:
        record("B12", metric, None, None, "ms", "links completely", None, f"skipped: {res['skipped']}")
    elif not res["ok_runs"]:
        why = f"not fully linked; stopped: {res['aborted'][0]}" if res.get("aborted") else "not fully linked"
        record("B12", metric, None, None, "ms", "links completely", False, why)
    else:
        record("B12", f"{metric}; CPU {res['cpu_ms_per_link'][0]} ms and {res['starts_per_link'][0]} process starts "
               f"per link (forked {res['forked'][0]}, exec {res['execs'][0]}), PSS per node median "
               f"{res['pss_node_mib'][0]} MiB (max {res['pss_node_max_mib'][0]})", res["median_ms"], None, "ms",
               "links completely", True)


def b13():
    """B13 (issue 20): one node with 1,000 direct peers (tests/bench/b13/hub.py; root only)."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "b13", "hub.py")
    if not os.path.exists(script):
        record("B13", "hub with 1,000 direct peers", None, None, "-", "-", None, "not built yet")
        return
    limit = int(max(120, min(500, DEADLINE - time.time() + 200)))
    p = subprocess.Popen([sys.executable, script, BIN, "--limit", str(limit)], stdout=subprocess.PIPE, text=True)
    try:
        stdout, _ = p.communicate(timeout=limit + 30)
    except subprocess.TimeoutExpired:
        p.terminate()
        stdout, _ = p.communicate()
    res = None
    for line in stdout.splitlines():
        if line.startswith("B13JSON "):
            res = json.loads(line[8:])
        else:
            log(line)
    if res is None or "skipped" in res:
        why = f"skipped: {res['skipped']}" if res else f"hub.py failed (exit {p.returncode})"
        record("B13", "hub with 1,000 direct peers", None, None, "-", "-", None if res else False, why)
        return
    n = res["peers"]
    record("B13a", f"hub with {n} direct peers: all {2 * n} links up after the last spoke's ready",
           res.get("linked_ms"), None, "ms", "-", None)
    record("B13b", f"hub CPU while all {2 * n} links sit idle ({res.get('idle_s')} s)", res.get("idle_cpu_pct"),
           None, "% of one CPU", "<= 2 %", res.get("idle_cpu_pct") is not None and res["idle_cpu_pct"] <= 2)
    if res.get("warm_ms") is not None:
        record("B13c", f"jsd-submit @all true to {n} peers, warm links (median of {res.get('warm_n')})",
               res["warm_ms"], None, "ms", "-", None)
    if res.get("cold_ms") is not None:
        record("B13d", f"jsd-submit @all true to {n} peers, the hub freshly restarted (links made on demand)",
               res["cold_ms"], None, "ms", "-", None)
    if res.get("hub_pss_per_peer_kib") is not None:
        record("B13m", f"hub memory per peer (PSS of the hub's listener and link processes / {n})",
               res["hub_pss_per_peer_kib"], None, "KiB", "-", None)


def b14():
    """B14 (issue 20): a tree, one hub, gateways and 1,000 leaves behind them (tests/bench/b14/tree.py; root only)."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "b14", "tree.py")
    metric = "tree: a hub, gateways and leaves behind them"
    if not os.path.exists(script):
        record("B14", metric, None, None, "-", "-", None, "not built yet")
        return
    size = ["--gateways", "4", "--leaves", "50", "--warm", "2"] if QUICK else ["--gateways", "10", "--leaves", "100"]
    limit = int(max(180, min(600, DEADLINE - time.time() + 240)))
    p = subprocess.Popen([sys.executable, script, BIN, "--limit", str(limit)] + size, stdout=subprocess.PIPE, text=True)
    try:
        stdout, _ = p.communicate(timeout=limit + 60)
    except subprocess.TimeoutExpired:
        p.terminate()
        stdout, _ = p.communicate()
    res = None
    for line in stdout.splitlines():
        if line.startswith("B14JSON "):
            res = json.loads(line[8:])
        else:
            log(line)
    if res is None or "skipped" in res:
        why = f"skipped: {res['skipped']}" if res else f"tree.py failed (exit {p.returncode})"
        record("B14", metric, None, None, "-", "-", None if res else False, why)
        return
    sys.path.insert(0, os.path.dirname(script))
    import treeutil  # noqa: E402 (beside tree.py)
    for r in treeutil.records(res):
        record(*r)


def b15():
    """B15: jsd-submit -i through one link and to 16 nodes, beside ssh and clush (tests/bench/b15/stdin.py)."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "b15", "stdin.py")
    args = ["--mib", "128", "--fan-mib", "16", "--rounds", "2"] if QUICK else ["--mib", "512", "--fan-mib", "64"]
    p = subprocess.run([sys.executable, script, BIN] + args, stdout=subprocess.PIPE, text=True, timeout=400)
    res = None
    for line in p.stdout.splitlines():
        if line.startswith("B15JSON "):
            res = json.loads(line[8:])
        else:
            log(line)
    if res is None:
        record("B15", "jsd-submit -i throughput", None, None, "MiB/s", "-", False, f"stdin.py failed (exit {p.returncode})")
        return
    n = res["rounds"]
    record("B15a", f"jsd-submit -i NODE, {res['mib']} MiB through one link, beside ssh host 'cat > /dev/null', "
           f"median of {n} alternating rounds", res["one_jsd"], res["one_ssh"], "MiB/s", ">= ssh",
           res["one_ssh"] is not None and res["one_jsd"] >= res["one_ssh"])
    record("B15b", f"jsd-submit -i @all, {res['fan_mib']} MiB to each of {res['nodes']} nodes at once (sum over "
           f"nodes), beside clush -w NODES 'cat > /dev/null', median of {n} alternating rounds", res["fan_jsd"],
           res["fan_clush"], "MiB/s", ">= clush", res["fan_clush"] is not None and res["fan_jsd"] >= res["fan_clush"])


def utc(t):
    return time.strftime("%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}"


def b11():
    """B11: re-linking after a peer restarts. alpha and beta linked both ways;
    beta's listener gets SIGTERM and is started again at once. Measured from
    beta's "ready" (--ready-fd) to the end of the first successful jsd-ping:
      q: alpha -> beta, one jsd-ping (-W 20) started before beta comes back
         (it waits in alpha's queue: the case of a node that has work for a
         restarting peer);
      r: alpha -> beta, the jsd-ping started at beta's ready;
      v: beta -> alpha, the jsd-ping started at beta's ready (the reverse
         direction: beta's new client links, and the reply comes back over
         alpha's client to beta)."""
    n = 3 if QUICK else 8
    # JSD_BENCH_LOGS=DIR: the two nodes log at debug level, their logs are
    # copied to DIR, and each run's moments are logged in UTC (to find them).
    keep = os.environ.get("JSD_BENCH_LOGS")
    extra = {"log_level": "debug"} if keep else None
    a = Node("ra", "127.0.2.8", None, {"rb": "127.0.2.9:4455"}, extra)
    b = Node("rb", "127.0.2.9", None, {"ra": "127.0.2.8:4455"}, extra)
    a.start(), b.start()
    ping_ab = [f"{BIN}/jsd-ping", "-c", "1", "-W", "20", "-q", "--json", "rb"]
    ping_ba = [f"{BIN}/jsd-ping", "-c", "1", "-W", "20", "-q", "--json", "ra"]

    def launch(cmd, env):
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        done = []
        th = threading.Thread(target=lambda: (p.wait(), done.append(time.perf_counter())))
        th.start()
        return p, th, done

    def settle():
        for cmd, env in ((ping_ab, a.env()), (ping_ba, b.env())):
            subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True, timeout=30)
        time.sleep(0.3)

    res = {"q": [], "r": [], "v": []}
    start_ms = []
    settle()
    for i in range(n):
        for v in ("q", "r", "v"):
            if time.time() > DEADLINE:
                break
            w_stop = time.time()
            b.stop()
            w_stopped = time.time()
            job = launch(ping_ab, a.env()) if v == "q" else None
            t0 = time.perf_counter()
            b.start()
            t_ready = time.perf_counter()
            w_ready = time.time()
            start_ms.append((t_ready - t0) * 1000)
            if v == "r":
                job = launch(ping_ab, a.env())
            elif v == "v":
                job = launch(ping_ba, b.env())
            p, th, done = job
            th.join(30)
            reply = json.loads(p.stdout.read() or "{}")
            if p.returncode != 0 or reply.get("received") != 1:
                raise RuntimeError(f"B11 {v} run {i}: jsd-ping failed ({p.returncode}): {reply}")
            res[v].append((done[0] - t_ready) * 1000)
            log(f"B11 {v} run {i + 1}: {res[v][-1]:.1f} ms after beta's ready"
                + (f" (UTC: stop {utc(w_stop)}, stopped {utc(w_stopped)}, ready {utc(w_ready)})" if keep else ""))
            settle()
    a.stop(), b.stop()
    if keep:
        os.makedirs(keep, exist_ok=True)
        for nd in (a, b):
            shutil.copy(os.path.join(nd.dir, "log"), os.path.join(keep, f"b11-{nd.name}.log"))
    what = {"q": "alpha -> beta, jsd-ping queued before beta's restart",
            "r": "alpha -> beta, jsd-ping started at beta's ready",
            "v": "beta -> alpha (reverse), jsd-ping started at beta's ready"}
    for v, xs in res.items():
        if not xs:
            continue
        med = statistics.median(xs)
        record(f"B11{v}", f"re-link after a peer restart: {what[v]}; first reply after beta's listener ready, median of "
               f"{len(xs)} (max {max(xs):.1f}; beta's start to ready median {statistics.median(start_ms):.1f})",
               round(med, 1), None, "ms", "<= 100 ms", max(xs) <= 100)


def b8():
    """B8: `true` on 63 nodes from one, one jsd-submit over warm links, beside
    pdsh over ssh with ControlMaster connections open, against the same 63
    loopback addresses (127.0.3.2-64); cold against cold; memory; hub CPU."""
    n_leaves = 63
    pdsh = shutil.which("pdsh")
    # OpenSSH listens on at most 16 addresses: this sshd takes any address,
    # on a random port, for this user's key only, for the minute B8 runs.
    sshd = Sshd(listen="0.0.0.0", tag="ssh8") if pdsh else None
    why = ("pdsh not installed (make -f Makefile.dist bench-deps installs it)" if not pdsh
           else "" if sshd.ok else sshd.why)
    ips = [f"127.0.3.{i}" for i in range(2, 2 + n_leaves)]
    names = [f"l{i}" for i in range(1, 1 + n_leaves)]
    hub_ip = "127.0.3.1"

    def make_nodes():
        leaves = [Node(n, ip, None, {"hub8": f"{hub_ip}:4455"}) for n, ip in zip(names, ips)]
        hub = Node("hub8", hub_ip, None, {n: f"{ip}:4455" for n, ip in zip(names, ips)})
        return hub, leaves

    def start(hub, leaves):
        for nd in leaves + [hub]:
            nd.start()

    def stop(hub, leaves):
        for nd in [hub] + leaves:
            nd.stop()
        for nd in [hub] + leaves:
            shutil.rmtree(os.path.join(nd.dir, "state"), ignore_errors=True)

    submit = [f"{BIN}/jsd-submit", "-q", "@all", "true"]
    hub, leaves = make_nodes()
    # Cold: every listener just started, no link exists; one jsd-submit
    # brings up all 63 pairs of links and runs the job everywhere.
    cold = []
    for _ in range(1 if QUICK else 3):
        start(hub, leaves)
        cold.append(wall(submit, hub.env()) * 1000)
        if len(cold) < (1 if QUICK else 3):
            stop(hub, leaves)
    # Warm: the links are up.
    wall(submit, hub.env())
    rounds = 3 if QUICK else 5
    jsd, base = [], []
    if sshd and sshd.ok:
        args = " ".join(sshd.base[1:-2] + ["-p", str(sshd.port), "-o", "ControlMaster=auto",
                                          "-o", f"ControlPath={sshd.dir}/cm-%h", "-o", "ControlPersist=120",
                                          "-l%u", "%h"])
        pd_env = dict(os.environ, PDSH_SSH_ARGS=args, PDSH_RCMD_TYPE="ssh")
        cold_args = args.replace(f"ControlPath={sshd.dir}/cm-%h", "ControlPath=none")
        pd_cold_env = dict(os.environ, PDSH_SSH_ARGS=cold_args, PDSH_RCMD_TYPE="ssh")
        pd = [pdsh, "-R", "ssh", "-f", "64", "-w", ",".join(ips), "true"]
        pd_cold = [wall(pd, pd_cold_env) * 1000 for _ in range(1 if QUICK else 3)]
        wall(pd, pd_env)  # opens the 63 masters
    # CPU of the hub's processes (listener, its link processes) and memory
    # of every jsd process, over the warm fan-outs.
    def tree_pids():
        pids, kids = [], {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                    kids.setdefault(ppid, []).append(int(d))
                except (OSError, ValueError, IndexError):
                    pass
        return kids

    def descendants(pid, kids):
        out, todo = [], [pid]
        while todo:
            p = todo.pop()
            out.append(p)
            todo += kids.get(p, [])
        return out

    def cpu_s(pids):
        t = 0
        for p in pids:
            try:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                t += int(fields[11]) + int(fields[12])
            except (OSError, ValueError, IndexError):
                pass
        return t / os.sysconf("SC_CLK_TCK")

    kids = tree_pids()
    hub_pids = descendants(hub.proc.pid, kids)
    cpu0 = cpu_s(hub_pids)
    for _ in range(rounds):
        jsd += [wall(submit, hub.env()) * 1000 for _ in range(10)]
        if sshd and sshd.ok:
            base += [wall(pd, pd_env) * 1000 for _ in range(10)]
    hub_cpu_ms = (cpu_s(hub_pids) - cpu0) * 1000 / len(jsd)
    kids = tree_pids()
    rss = pss = 0
    nproc = 0
    for nd in [hub] + leaves:
        for p in descendants(nd.proc.pid, kids):
            try:
                with open(f"/proc/{p}/smaps_rollup") as f:
                    for line in f:
                        if line.startswith("Rss:"):
                            rss += int(line.split()[1])
                        elif line.startswith("Pss:"):
                            pss += int(line.split()[1])
                nproc += 1
            except OSError:
                pass
    if sshd and sshd.ok:
        for ip in ips:
            subprocess.run(sshd.base[:-2] + ["-p", str(sshd.port), "-o", f"ControlPath={sshd.dir}/cm-%h",
                                             "-O", "exit", ip], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        sshd.stop()
    stop(hub, leaves)
    med = statistics.median(jsd)
    b = statistics.median(base) if base else None
    record("B8", f"warm jsd-submit @all true on {n_leaves} nodes (one process, warm links), median of {len(jsd)} "
           f"in {rounds} alternating rounds (p99 {pct(jsd, 99):.1f})", round(med, 2), round(b, 2) if b else None, "ms",
           "<= 0.1 x pdsh -R ssh -f 64 over ControlMaster", (med <= 0.1 * b) if b else None,
           "pdsh " + sshd.note if b and sshd.note else why)
    cb = statistics.median(pd_cold) if base else None
    record("B8c", f"cold jsd-submit @all true on {n_leaves} freshly started nodes (126 links made), median of "
           f"{len(cold)}", round(statistics.median(cold), 1), round(cb, 1) if cb else None, "ms",
           "- (cold pdsh, no ControlMaster)", None, why)
    record("B8m", f"memory of all {nproc} jsd processes of the {n_leaves + 1} nodes (hub: 1 listener + "
           f"{2 * n_leaves} link processes), RSS; PSS {pss / 1024:.1f} MiB", round(rss / 1024, 1), None, "MiB",
           "-", None)
    record("B8cpu", f"hub CPU time (listener + its link processes) per warm fan-out to {n_leaves} nodes",
           round(hub_cpu_ms, 2), None, "ms", "-", None)


def main():
    t_start = time.time()
    sshd = Sshd() if (ONLY is None or ONLY & {"B1", "B2", "B7"}) else None
    if sshd and not sshd.ok:
        log(f"ssh baselines skipped: {sshd.why}")
    try:
        if ONLY is None or ONLY & {"B1", "B7"}:
            b1_b7(sshd)
        if want("B2"):
            b2(sshd)
        if ONLY is None or ONLY & {"B3", "B4", "B5"}:
            b3_b4_b5()
        if want("B6"):
            b6()
        if want("B8"):
            b8()
        if want("B11"):
            b11()
        if want("B10"):
            b10()
        if want("B12"):
            b12()
        if want("B13"):
            b13()
        if want("B14"):
            b14()
        if want("B15"):
            b15()
    finally:
        for nd in list(NODES):
            nd.stop()
        if sshd:
            sshd.stop()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    meta = {"commit": commit, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "nproc": os.cpu_count(),
            "kernel": platform.release(), "cpu": cpu_model(), "seconds": round(time.time() - t_start, 1),
            "quick": QUICK}
    out = os.path.join(BENCH, "results.json")
    with open(out, "w") as f:
        json.dump({"meta": meta, "results": RESULTS}, f, indent=2)
    print(f"\njsd benchmarks — commit {commit}, {meta['date']}, {meta['nproc']} CPUs ({meta['cpu']}), "
          f"kernel {meta['kernel']}, {meta['seconds']} s")
    print(f"| id | metric | jsd | baseline | ratio | target | met |")
    print(f"|---|---|---|---|---|---|---|")
    for r in RESULTS:
        print(row(r))
    hs = subprocess.run([f"{BENCH}/handshake_bench", "3000"], capture_output=True, text=True)
    print(hs.stdout.strip() if hs.returncode == 0 else "handshake_bench failed")
    rb = subprocess.run([f"{BENCH}/relay_box_bench", "2000"], capture_output=True, text=True)
    print(rb.stdout.strip() if rb.returncode == 0 else "relay_box_bench failed")
    print(f"\n(JSON: {out})")
    shutil.rmtree(TMP, ignore_errors=True)
    if want("B9") and os.path.exists(b9 := os.path.join(os.path.dirname(os.path.abspath(__file__)), "b9", "run.sh")): subprocess.run(["bash", b9, BIN])  # B9: cold call over 20 ms RTT, root only


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.3f}".rstrip("0").rstrip(".")
    return f"{v:,}"


def row(r):
    unit = r["unit"]
    met = "-" if r["met"] is None else ("yes" if r["met"] else "**no**")
    metric = r["metric"] + (f" ({r['note']})" if r["note"] else "")
    base = "-" if r["baseline"] is None else f"{fmt(r['baseline'])} {unit}"
    ratio = "-" if r["ratio"] is None else f"{r['ratio']:.3f}"
    return f"| {r['id']} | {metric} | {fmt(r['jsd'])} {unit} | {base} | {ratio} | {r['target']} | {met} |"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


if __name__ == "__main__":
    main()
