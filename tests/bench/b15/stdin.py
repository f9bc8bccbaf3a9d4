#!/usr/bin/env python3
"""Benchmark B15 (issue 21; was B12 until issue 20 named the 64-node mesh B12): standard input through jsd (jsd-submit -i).

  stdin.py BIN_DIR [--mib N] [--fan-mib N] [--nodes N] [--rounds N]

One link: N MiB (default 512) from a file into `jsd-submit -i beta sink`
(the job: cat > /dev/null) beside `ssh 127.0.0.1 'cat > /dev/null' < file`
through a private sshd with a throwaway key. To NODES nodes at once (default
16): N MiB (default 64) into `jsd-submit -i @all sink`, beside
`clush -w 127.0.3.[1-16] 'cat > /dev/null' < file` (ClusterShell, the same
bytes to every node over ssh) when clush is installed. Rounds alternate jsd
and the baseline; each figure is the median of its rounds, and the ratios
are taken from the medians of the same run.

Prints "B15 ..." lines, then one line "B15JSON {...}" for bench.py. Nodes
listen on 127.0.3.x; sshd on a free port of every such address; all in a
temp dir removed however the run ends.
"""
import atexit
import getpass
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BIN = os.path.abspath(sys.argv[1])


def opt(name, default):
    for i, a in enumerate(sys.argv):
        if a == name and i + 1 < len(sys.argv):
            return int(sys.argv[i + 1])
    return default


MIB, FAN_MIB, NODES, ROUNDS = opt("--mib", 512), opt("--fan-mib", 64), opt("--nodes", 16), opt("--rounds", 3)
TMP = tempfile.mkdtemp(prefix="jsd-b15.")
PROCS = []


def cleanup():
    for p in PROCS:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in PROCS:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
    shutil.rmtree(TMP, True)


atexit.register(cleanup)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def log(msg):
    print(f"B15 {msg}", flush=True)


def gen_key(name):
    k = os.path.join(TMP, f"{name}.key")
    pub = subprocess.run([f"{BIN}/jsd-listener", "--gen-key", k], check=True, capture_output=True, text=True)
    return k, pub.stdout.strip()


def start_nodes(n):
    names = ["alpha"] + [f"n{i}" for i in range(1, n + 1)]
    ips = {name: f"127.0.3.{i + 1}" for i, name in enumerate(names)}
    keys = {name: gen_key(name) for name in names}
    confs = {}
    for name in names:
        peers = {p: {"address": f"{ips[p]}:4455", "public_key": keys[p][1]} for p in names if p != name}
        cfg = {"node": name, "listen": f"{ips[name]}:4455", "state_dir": os.path.join(TMP, name),
               "key_file": keys[name][0], "peers": peers if name == "alpha" else {"alpha": peers["alpha"]},
               "jobs": {"sink": {"command": ["/bin/sh", "-c", "cat > /dev/null"], "stdin": True}}}
        confs[name] = os.path.join(TMP, f"{name}.json")
        with open(confs[name], "w") as f:
            json.dump(cfg, f)
        r, w = os.pipe()
        p = subprocess.Popen([f"{BIN}/jsd-listener", "--config", confs[name], "--ready-fd", str(w)], pass_fds=[w],
                             stderr=open(os.path.join(TMP, f"{name}.log"), "ab"), stdout=subprocess.DEVNULL)
        os.close(w)
        PROCS.append(p)
        with os.fdopen(r) as rf:
            if rf.readline().strip() != "ready":
                raise RuntimeError(f"node {name} did not start")
    return names[1:], ips, dict(os.environ, JSD_CONFIG=confs["alpha"])


def sshd(addrs):
    d = os.path.join(TMP, "ssh")
    os.makedirs(d)
    for k in ("host", "id"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/{k}"], check=True)
    shutil.copy(f"{d}/id.pub", f"{d}/authorized_keys")
    s = socket.socket()
    s.bind((addrs[0], 0))
    port = s.getsockname()[1]
    s.close()
    listen = "".join(f"ListenAddress {a}:{port}\n" for a in addrs)
    with open(f"{d}/sshd_config", "w") as f:
        f.write(f"{listen}HostKey {d}/host\nAuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/pid\n"
                f"StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                f"PermitRootLogin prohibit-password\nAllowUsers {getpass.getuser()}\nLogLevel ERROR\n"
                # clush opens NODES connections at once: sshd's default
                # MaxStartups (10:30:100) resets some of them at random.
                f"MaxStartups 200\n")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    PROCS.append(subprocess.Popen([shutil.which("sshd") or "/usr/sbin/sshd", "-D", "-e", "-f", f"{d}/sshd_config"],
                                  stderr=open(f"{d}/log", "w")))
    opts = ["-i", f"{d}/id", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no", "-o",
            "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-p", str(port)]
    for _ in range(100):
        if subprocess.run(["ssh"] + opts + [addrs[0], "true"], capture_output=True).returncode == 0:
            return opts
        time.sleep(0.05)
    return None


def timed(cmd, path, env=None):
    with open(path, "rb") as f:
        t0 = time.perf_counter()
        r = subprocess.run(cmd, stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({r.returncode}): {r.stderr.decode()[-300:]}")
    return dt


def main():
    for name, size in (("one", MIB), ("fan", FAN_MIB)):
        with open(os.path.join(TMP, name), "wb") as f:
            for _ in range(size):
                f.write(os.urandom(1 << 20))
    targets, ips, env = start_nodes(NODES)
    res = {"mib": MIB, "fan_mib": FAN_MIB, "nodes": NODES, "rounds": ROUNDS}
    ssh = sshd([ips[t] for t in targets]) if shutil.which("sshd") or os.path.exists("/usr/sbin/sshd") else None
    clush = shutil.which("clush") if ssh else None
    # Warm: every link up, every sshd key exchange path in the page cache.
    subprocess.run([f"{BIN}/jsd-submit", "-q", "-i", "@all", "sink"], stdin=subprocess.DEVNULL, env=env, check=True)
    one = os.path.join(TMP, "one")
    fan = os.path.join(TMP, "fan")
    j1, s1, jf, cf = [], [], [], []
    for r in range(ROUNDS):
        j1.append(MIB / timed([f"{BIN}/jsd-submit", "-q", "-i", targets[0], "sink"], one, env))
        if ssh:
            s1.append(MIB / timed(["ssh"] + ssh + [ips[targets[0]], "cat > /dev/null"], one))
        jf.append(NODES * FAN_MIB / timed([f"{BIN}/jsd-submit", "-q", "-i", "@all", "sink"], fan, env))
        if clush:
            nodes = ",".join(ips[t] for t in targets)
            cf.append(NODES * FAN_MIB / timed([clush, "-q", "-S", "-f", str(NODES), "-o", " ".join(ssh), "-w", nodes,
                                               "cat > /dev/null"], fan))
        log(f"round {r + 1}: one link jsd {j1[-1]:.0f} ssh {s1[-1] if s1 else 0:.0f} MiB/s; {NODES} nodes "
            f"jsd {jf[-1]:.0f} clush {cf[-1] if cf else 0:.0f} MiB/s (sum over nodes)")
    med = lambda xs: round(statistics.median(xs), 1) if xs else None
    res.update(one_jsd=med(j1), one_ssh=med(s1), fan_jsd=med(jf), fan_clush=med(cf),
               all=dict(one_jsd=j1, one_ssh=s1, fan_jsd=jf, fan_clush=cf))
    print("B15JSON " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
