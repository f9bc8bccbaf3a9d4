"""B14's measuring and arithmetic (tree.py): process trees, CPU, footprint,
and the 10,000-node estimate of jsd(7) "Scale" from the per-level figures."""
import datetime
import os
import resource
import statistics

TICK = os.sysconf("SC_CLK_TCK")


def since(s):
    return datetime.datetime.fromisoformat(s.rstrip("Z")).replace(tzinfo=datetime.timezone.utc).timestamp()


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def tree(pid):
    """pid and its descendants, pid first (the listener)."""
    pids = [pid]
    for c in children(pid):
        pids += tree(c)
    return pids


def cpu_snap(pids):
    """pid -> ns of CPU: the scheduler's own time on CPU (/proc/PID/schedstat;
    utime/stime are sampled at the tick and overcharge processes woken by
    timers), plus cutime + cstime (ticks) for children that ended (the jobs,
    reaped by their supervisor)."""
    snap = {}
    for p in pids:
        try:
            ns = int(open(f"/proc/{p}/schedstat").read().split()[0])
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            snap[p] = ns + (int(f[13]) + int(f[14])) * 1e9 / TICK
        except (OSError, ValueError, IndexError):
            continue
    return snap


def delta_ms(a, b):
    """CPU between two snapshots of one tree; a process new in b counts from 0,
    one gone from b is lost (except through its parent's cutime)."""
    return sum(v - a.get(p, 0) for p, v in b.items()) / 1e6


def footprint(pids):
    fds = pss = 0
    lst = {"fds": 0, "pss_kib": 0}
    for i, p in enumerate(pids):
        try:
            n = len(os.listdir(f"/proc/{p}/fd"))
            k = 0
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"):
                    k = int(line.split()[1])
                    break
        except OSError:
            continue
        fds, pss = fds + n, pss + k
        if i == 0:
            lst = {"fds": n, "pss_kib": k}
    return {"procs": len(pids), "fds": fds, "pss_kib": pss, "listener_fds": lst["fds"],
            "listener_pss_kib": lst["pss_kib"]}


def mean_of(fs):
    if not fs:
        return {}
    return {k: statistics.mean(f[k] for f in fs) for k in fs[0]}


def per_level(f):
    """Footprints per level: the hub's, and the mean gateway and leaf."""
    lv = {"hub": f["hub"], "gw": mean_of(f["gw"]), "leaf": mean_of(f["leaf"])}
    res = {}
    for name, x in lv.items():
        res[name] = {"procs": round(x["procs"], 2), "fds": round(x["fds"], 1), "pss_mib": round(x["pss_kib"] / 1024, 2),
                     "listener_fds": round(x["listener_fds"], 1),
                     "listener_pss_mib": round(x["listener_pss_kib"] / 1024, 2)}
    return res


def limits():
    mem = 0
    for line in open("/proc/meminfo"):
        if line.startswith("MemAvailable:"):
            mem = int(line.split()[1]) // 1024
    return {"nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0], "cpus": os.cpu_count(),
            "pid_max": int(open("/proc/sys/kernel/pid_max").read()), "mem_available_mib": mem,
            "file_max": int(open("/proc/sys/fs/file-max").read())}


def estimate(res, g2, l2):
    """The 10,000-node estimate (jsd(7) "Scale"). From one run of G gateways x
    L leaves:
      per direct peer, each resource r (processes, descriptors, PSS) of a node
      grows by s_r = (gateway_r - leaf_r) / L (a gateway has L more direct
      peers than a leaf); the hub then holds hub_r + s_r (g2 - G), a gateway
      gw_r + s_r (l2 - L), a leaf leaf_r;
      CPU per `@all true`: the hub's per target (a fan-out sends one relayed
      request per target) x (g2 + g2 l2), a gateway's per leaf x l2, a leaf's
      own; time on this VM (every node on its CPUs) scales with the total CPU,
      and with a host per node it is at least the hub's CPU (and a gateway's);
      idle CPU: the hub's per gateway x g2, a gateway's per direct peer x (l2 + 1);
      the hub's listener PSS also grows by what a via peer costs it (its PSS
      beyond the direct peers' slope, over its G L - 1 more via peers than a
      leaf's)."""
    G, L = res["gateways"], res["leaves_per_gateway"]
    pl, c, idle = res["per_level"], res["warm_cpu_ms"], res["idle"]
    est = {"gateways": g2, "leaves_per_gateway": l2, "nodes": 1 + g2 + g2 * l2, "from_nodes": res["nodes"]}
    for r in ("procs", "fds", "pss_mib", "listener_fds", "listener_pss_mib"):
        s = (pl["gw"][r] - pl["leaf"][r]) / L
        est[f"per_peer_{r}"] = round(s, 3)
        est[f"hub_{r}"] = round(pl["hub"][r] + s * (g2 - G), 1)
        est[f"gw_{r}"] = round(pl["gw"][r] + s * (l2 - L), 1)
        est[f"total_{r}"] = round(est[f"hub_{r}"] + g2 * est[f"gw_{r}"] + g2 * l2 * pl["leaf"][r], 1)
    # The hub's listener also holds every via peer (G L of them; a leaf's 1):
    # what its PSS has beyond the direct peers' slope, per via peer.
    via = (pl["hub"]["listener_pss_mib"] - pl["leaf"]["listener_pss_mib"]
           - est["per_peer_listener_pss_mib"] * (G - 1)) / max(1, G * L - 1)
    est["per_via_peer_pss_kib"] = round(max(0.0, via) * 1024, 2)
    add = max(0.0, via) * (g2 * l2 - G * L)
    for k in ("hub_pss_mib", "hub_listener_pss_mib", "total_pss_mib", "total_listener_pss_mib"):
        est[k] = round(est[k] + add, 1)
    hub_per_target = c["hub"] / (G + G * L)
    gw_per_leaf = c["gw_mean"] / L
    est["hub_cpu_ms_per_target"] = round(hub_per_target, 3)
    est["gw_cpu_ms_per_leaf"] = round(gw_per_leaf, 3)
    est["leaf_cpu_ms"] = c["leaf_mean"]
    est["hub_cpu_s"] = round(hub_per_target * (g2 + g2 * l2) / 1000, 2)
    est["gw_cpu_s"] = round(gw_per_leaf * l2 / 1000, 3)
    total_now = c["hub"] + G * c["gw_mean"] + G * L * c["leaf_mean"]
    total_est = est["hub_cpu_s"] * 1000 + g2 * est["gw_cpu_s"] * 1000 + g2 * l2 * c["leaf_mean"]
    est["total_cpu_s"] = round(total_est / 1000, 1)
    est["warm_s_this_vm"] = round(res["warm_ms"] * total_est / total_now / 1000, 1) if total_now else None
    est["warm_s_host_per_node_min"] = round(max(est["hub_cpu_s"], est["gw_cpu_s"]), 2)
    est["idle_hub_pct"] = round(idle["hub_pct"] / G * g2, 2)
    est["idle_gw_pct"] = round(idle["gw_pct_mean"] / (L + 1) * (l2 + 1), 2)
    # What bounds the leaves one machine like this holds: per leaf, its own
    # footprint and its share of its gateway's (the per-peer slope).
    lim = res.get("limits", {})
    cap = {}
    for r, key in (("procs", "pid_max"), ("pss_mib", "mem_available_mib"), ("fds", "file_max")):
        per_leaf = pl["leaf"][r] + est[f"per_peer_{r}"]
        if lim.get(key) and per_leaf > 0:
            cap[key] = int(lim[key] / per_leaf)
    est["leaves_this_vm_holds"] = cap
    return est


def estimate_line(e):
    return (f"{e['nodes']} nodes: warm @all true ~{e['warm_s_this_vm']} s on this VM (total CPU {e['total_cpu_s']} s), "
            f">= {e['warm_s_host_per_node_min']} s with a host per node; hub CPU {e['hub_cpu_s']} s and a gateway's "
            f"{e['gw_cpu_s']} s per run; idle hub {e['idle_hub_pct']} %, gateway {e['idle_gw_pct']} %; hub "
            f"{e['hub_procs']:.0f} processes / {e['hub_fds']:.0f} fds ({e['hub_listener_fds']:.0f} in its listener) / "
            f"{e['hub_pss_mib']} MiB, a gateway {e['gw_procs']:.0f} / {e['gw_fds']:.0f} ({e['gw_listener_fds']:.0f}) / "
            f"{e['gw_pss_mib']} MiB; all nodes {e['total_procs']:.0f} processes, {e['total_fds']:.0f} fds, "
            f"{e['total_pss_mib'] / 1024:.1f} GiB; this VM holds about {e['leaves_this_vm_holds']} leaves by each "
            f"limit")


def records(res):
    """bench.py's rows for B14: (id, metric, jsd, baseline, unit, target, met, note)."""
    g, lv = res["gateways"], res["leaves_per_gateway"]
    what = f"hub, {g} gateways x {lv} leaves ({res['nodes']} nodes)"
    rows = []

    def row(bid, metric, value, unit, target="-", met=None, note=""):
        rows.append((bid, metric, value, None, unit, target, met, note))

    if res.get("aborted"):
        row("B14", what, None, "-", met=False, note=f"aborted: {res['aborted']} (max load {res.get('max_load1')})")
    row("B14a", f"{what}: every link of the hub and the gateways up after the last leaf's ready", res.get("linked_ms"),
        "ms")
    if res.get("idle"):
        i = res["idle"]
        row("B14b", f"{what}: idle CPU of the hub over {i['s']} s (a gateway {i['gw_pct_mean']} %, all leaves "
            f"{i['leaves_pct_sum']} %)", i["hub_pct"], "% of one CPU")
    if res.get("first_ms") is not None:
        row("B14f", f"{what}: the first jsd-submit @all true, links up, every node's job supervisor started by it "
            f"(exit {res['first_rc']})", res["first_ms"], "ms")
    if res.get("warm_ms") is not None:
        c = res["warm_cpu_ms"]
        met = (res["warm_ms"] <= 2000 and not any(res["warm_rc"])) if g * lv >= 1000 else None
        row("B14c", f"{what}: jsd-submit @all true to {g + g * lv} nodes, warm, median of {len(res['warm_all_ms'])} "
            f"(CPU per run: hub {c['hub']} ms, a gateway {c['gw_mean']} ms, a leaf {c['leaf_mean']} ms; exit "
            f"{res['warm_rc']})", res["warm_ms"], "ms", "<= 2000 ms at 1,000 nodes", met)
    if res.get("wide_ms") is not None:
        row("B14w", f"{what}: the same with --fanout {g + g * lv} (one bundle per gateway: {res['wide_bundles']} "
            f"bundles per run; hub CPU {res['wide_hub_cpu_ms']} ms; exit {res['wide_rc']})", res["wide_ms"], "ms")
    if res.get("ping_ms") is not None:
        row("B14d", f"{what}: jsd-ping -c 1 @all, median of {len(res['ping_all_ms'])} (exit {res['ping_rc']})",
            res["ping_ms"], "ms")
    if res.get("cold_ms") is not None:
        row("B14e", f"{what}: jsd-submit @all true right after the hub's restart (exit {res['cold_rc']})",
            res["cold_ms"], "ms")
    for lvl, name in (("hub", "the hub"), ("gw", "a gateway"), ("leaf", "a leaf")):
        x = res.get("per_level", {}).get(lvl)
        if x:
            row(f"B14m{lvl}", f"{what}: {name}: {x['procs']} processes, {x['fds']} descriptors; PSS", x["pss_mib"],
                "MiB")
    if res.get("estimate"):
        e = res["estimate"]
        row("B14x", f"estimate from {res['nodes']} nodes for {e['nodes']} (jsd(7) Scale): warm @all true on this VM "
            f"(at least {e['warm_s_host_per_node_min']} s with a host per node; hub {e['hub_cpu_s']} s CPU, a gateway "
            f"{e['gw_cpu_s']} s; hub {e['hub_fds']:.0f} fds, {e['hub_pss_mib']} MiB; all {e['total_procs']:.0f} "
            f"processes, {e['total_pss_mib'] / 1024:.1f} GiB)", e["warm_s_this_vm"], "s")
    return rows
