#!/usr/bin/env python3
"""Checks a jsd metrics text (Prometheus text exposition format 0.0.4) and
prints the values asked for.

    check_metrics.py FILE [SERIES ...]

FILE is parsed by prometheus_client's parser (an independent one: Debian's
python3-prometheus-client) and checked more strictly than it does: every
family has HELP and TYPE before its samples, every name starts with jsd_,
no series twice, counters end in _total and are not negative, histogram
buckets are cumulative and end in +Inf equal to _count. If promtool is on
PATH, `promtool check metrics` must pass too.

Each SERIES is `name` or `name{label=value,...}` (labels in any order); its
value is printed, one per line, or the check fails if it is absent.
Exit 0: all good; 1: a mistake (one line on stderr each); 77: no parser.
"""
import math
import re
import shutil
import subprocess
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    sys.stderr.write("check_metrics: prometheus_client is not installed (python3-prometheus-client)\n")
    sys.exit(77)

NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def key(name, labels):
    return name + "{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"


def main():
    path, queries = sys.argv[1], sys.argv[2:]
    text = open(path, encoding="utf-8").read()
    errors = []

    # The layout: HELP then TYPE then the family's samples, each family once.
    declared, typed, seen_families, current = set(), {}, set(), None
    for n, line in enumerate(text.splitlines(), 1):
        if not line:
            errors.append(f"line {n}: empty line")
            continue
        m = re.match(r"^# (HELP|TYPE) (\S+) (.*)$", line)
        if m:
            kind, fam, rest = m.groups()
            if kind == "HELP":
                if fam in declared:
                    errors.append(f"line {n}: second HELP for {fam}")
                declared.add(fam)
            else:
                if fam not in declared:
                    errors.append(f"line {n}: TYPE of {fam} without HELP before it")
                if rest not in ("counter", "gauge", "histogram"):
                    errors.append(f"line {n}: unexpected type {rest}")
                typed[fam] = rest
                current = fam
            if not fam.startswith("jsd_"):
                errors.append(f"line {n}: {fam} does not start with jsd_")
            continue
        if line.startswith("#"):
            errors.append(f"line {n}: stray comment")
            continue
        name = re.match(r"^([^{ ]+)", line).group(1)
        base = re.sub(r"_(bucket|sum|count)$", "", name) if current and typed.get(current) == "histogram" else name
        if base != current:
            errors.append(f"line {n}: sample {name} is not in the family declared last ({current})")

    values = {}
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser's own verdict
        print(f"check_metrics: prometheus_client cannot parse {path}: {e}", file=sys.stderr)
        return 1
    for fam in families:
        if not NAME.match(fam.name) or not fam.name.startswith("jsd_"):
            errors.append(f"bad family name {fam.name}")
        if fam.type == "counter" and not any(s.name.endswith("_total") for s in fam.samples) and fam.samples:
            errors.append(f"counter {fam.name} has no _total sample")
        buckets = []
        for s in fam.samples:
            k = key(s.name, s.labels)
            if k in values:
                errors.append(f"series {k} twice")
            values[k] = s.value
            if math.isnan(s.value):
                errors.append(f"series {k} is NaN")
            if fam.type == "counter" and s.value < 0:
                errors.append(f"counter {k} is negative")
            if s.name.endswith("_bucket"):
                buckets.append((float(s.labels["le"]), s.value))
        if fam.type == "histogram":
            if not buckets or not math.isinf(buckets[-1][0]):
                errors.append(f"histogram {fam.name} has no +Inf bucket last")
            for (a, va), (b, vb) in zip(buckets, buckets[1:]):
                if b <= a or vb < va:
                    errors.append(f"histogram {fam.name}: bucket le={b} ({vb}) after le={a} ({va})")
            count = values.get(key(fam.name + "_count", {}))
            if buckets and count != buckets[-1][1]:
                errors.append(f"histogram {fam.name}: _count {count} != +Inf bucket {buckets[-1][1]}")

    promtool = shutil.which("promtool")
    if promtool:
        r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
        if r.returncode != 0:
            errors.append("promtool check metrics: " + (r.stdout + r.stderr).strip().replace("\n", "; "))

    for q in queries:
        m = re.match(r"^([^{]+)(?:\{(.*)\})?$", q)
        labels = dict(p.split("=", 1) for p in m.group(2).split(",")) if m.group(2) else {}
        k = key(m.group(1), labels)
        if k not in values:
            errors.append(f"no series {k}")
        else:
            v = values[k]
            print(int(v) if v == int(v) else v)
    for e in errors:
        print(f"check_metrics: {path}: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
