#!/usr/bin/env python3
"""Turns the rows of scripts/bench (cairn-bench --json lines) into bench/report.md and its plots
(SVG, drawn by gnuplot). Run by scripts/bench; can be rerun on a report.jsonl alone."""

import argparse
import datetime
import json
import os
import platform
import subprocess

SYSTEMS = [  # label, what it is, its peer for the ratio column
    ("cairn-1", "Cairn, 1 node (native protocol)", "redis-always"),
    ("cairn-1-resp", "Cairn, 1 node (RESP door, Redis's driver)", "redis-always"),
    ("cairn-3-one", "Cairn, 3 nodes RF=3, ONE", "redis-cluster"),
    ("cairn-3-quorum", "Cairn, 3 nodes RF=3, QUORUM", "redis-cluster"),
    ("redis-always", "redis-server, appendfsync always", None),
    ("redis-everysec", "redis-server, appendfsync everysec", None),
    ("redis-cluster", "Redis Cluster, 3 masters + 3 replicas, everysec", None),
]
WORKLOADS = [
    ("a", "A: 50% read, 50% update"),
    ("b", "B: 95% read, 5% update"),
    ("c", "C: 100% read"),
    ("f", "F: 50% read, 50% read-modify-write"),
    ("e", "E: 95% short prefix scan, 5% insert (Cairn only)"),
]
SCALING = [(1, "cairn-1"), (3, "cairn-3-quorum"), (5, "cairn-5-quorum")]


def load_rows(path):
    rows = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            if r["op"] != "all":
                continue
            rows[(r["label"], r["workload"], r["phase"])] = r
    return rows


def machine(load_at_start):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} cores ({cpu}), {mem} RAM, {platform.system()} "
            f"{platform.release()}; load average {load_at_start} at the start, {load} at the end")


def redis_version():
    try:
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True)
        return out.stdout.split()[2].replace("v=", "")
    except (OSError, IndexError):
        return "?"


def fmt_rate(x):
    return f"{x:,.0f}"


def fmt_ms(x):
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def gnuplot(script, out_dir):
    try:
        subprocess.run(["gnuplot"], input=script, text=True, cwd=out_dir, check=True,
                       capture_output=True)
        return True
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"bench-report: gnuplot failed: {getattr(e, 'stderr', e)}")
        return False


SVG = 'set terminal svg size 900,420 dynamic font "sans,11" background rgb "white"\n'


def bar_plot(rows, labels, metric, title, ylabel, name, out_dir, logscale=False):
    data = os.path.join(out_dir, name + ".dat")
    with open(data, "w") as f:
        f.write("workload " + " ".join(labels) + "\n")
        for w, _ in WORKLOADS:
            vals = []
            for label in labels:
                r = rows.get((label, w, "run"))
                vals.append(f"{r[metric]:.4f}" if r and r["ops"] > 0 else "?")
            f.write(w.upper() + " " + " ".join(vals) + "\n")
    plots = ", ".join(
        f"'{name}.dat' using {i + 2}:xtic(1) title '{label}'" for i, label in enumerate(labels))
    script = (SVG + f"set output '{name}.svg'\nset title '{title}'\nset ylabel '{ylabel}'\n"
              "set style data histogram\nset style histogram clustered gap 1\n"
              "set style fill solid 0.8 border -1\nset datafile missing '?'\n"
              "set key outside right top\nset grid ytics\nset yrange [0:*]\n"
              + ("set logscale y\nset yrange [*:*]\n" if logscale else "")
              + f"plot {plots}\n")
    ok = gnuplot(script, out_dir)
    os.remove(data)
    return ok


def line_plot(series, title, xlabel, ylabel, name, out_dir):
    """series: [(title, [(x, y), ...])]"""
    files = []
    for i, (_, points) in enumerate(series):
        path = os.path.join(out_dir, f"{name}.{i}.dat")
        with open(path, "w") as f:
            for x, y in points:
                f.write(f"{x} {y}\n")
        files.append(path)
    plots = ", ".join(f"'{os.path.basename(p)}' using 1:2 with linespoints lw 2 title '{t}'"
                      for p, (t, _) in zip(files, series))
    script = (SVG + f"set output '{name}.svg'\nset title '{title}'\nset xlabel '{xlabel}'\n"
              f"set ylabel '{ylabel}'\nset key outside right top\nset grid\nset yrange [0:*]\n"
              f"plot {plots}\n")
    ok = gnuplot(script, out_dir)
    for p in files:
        os.remove(p)
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--elapsed", type=int, default=0)
    ap.add_argument("--mode", default="full")
    ap.add_argument("--records", default="?")
    ap.add_argument("--clients", default="?")
    ap.add_argument("--duration", default="?")
    ap.add_argument("--warmup", default="?")
    ap.add_argument("--load-at-start", default="?")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rows = load_rows(a.rows)
    present = [s for s in SYSTEMS if any(k[0] == s[0] for k in rows)]
    labels = [s[0] for s in present]
    md = []
    add = md.append
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = "./scripts/bench" + (" --quick" if a.mode == "quick" else "")
    add("# Cairn benchmark report\n")
    add(f"Written by `{command}` on {now}, in {a.elapsed // 60} min {a.elapsed % 60} s.\n")
    add(f"- Machine: {machine(a.load_at_start)}. Every server and the driver (`cairn-bench`) share it.")
    add(f"- Cairn release build (RelWithDebInfo); Redis {redis_version()} from Debian.")
    add(f"- {a.records} records, {a.clients} closed-loop clients, {a.warmup} s warm-up then "
        f"{a.duration} s measured per run; 100-byte values; keys zipfian (YCSB's scrambled "
        "zipfian, theta 0.99).")
    add("- Durability: Cairn fsyncs every group commit on every replica; `redis-always` fsyncs "
        "every write (the same promise), `redis-everysec` and the Redis Cluster once a second "
        "(a crash loses up to a second of acknowledged writes).")
    add("- Latency is measured at the client from when a request was due (open loop) or sent "
        "(closed loop), in ms. Compare figures within one report only.\n")

    add("## Throughput and latency per workload\n")
    add("Ratio: the system's ops/s over its peer's in this run (single node: `redis-always`; "
        "three nodes: `redis-cluster`).\n")
    for w, title in WORKLOADS:
        add(f"### {title}\n")
        add("| System | ops/s | p50 ms | p99 ms | p99.9 ms | errors | ratio to peer |")
        add("|---|---:|---:|---:|---:|---:|---|")
        for label, what, peer in present:
            r = rows.get((label, w, "run"))
            if not r:
                continue
            ratio = ""
            p = rows.get((peer, w, "run")) if peer else None
            if p and p["ops_per_s"] > 0:
                ratio = f"{r['ops_per_s'] / p['ops_per_s']:.2f} × {peer}"
            add(f"| {what} | {fmt_rate(r['ops_per_s'])} | {fmt_ms(r['p50_ms'])} | "
                f"{fmt_ms(r['p99_ms'])} | {fmt_ms(r['p999_ms'])} | {r['errors']} | {ratio} |")
        add("")
    if bar_plot(rows, labels, "ops_per_s", "Throughput per workload (closed loop)", "ops/s",
                "throughput", a.out):
        add("![Throughput per workload](throughput.svg)\n")
    if bar_plot(rows, labels, "p99_ms", "p99 latency per workload (closed loop)", "p99 ms (log)",
                "latency", a.out, logscale=True):
        add("![p99 latency per workload](latency.svg)\n")
    add("Read-modify-write (F): on Cairn a read, then a compare-and-swap on the version read "
        "(SERIAL, per-key Paxos; a lost race is counted as not applied); on Redis a GET, then a "
        "SET (not atomic: Redis has no compare-and-swap on a version, so it does less work and "
        "promises less). E (prefix scans) runs on Cairn only: Redis's SCAN walks the whole "
        "keyspace. Its prefixes (`bench:00000123`) hold no hash tag, so Cairn asks every "
        "partition (1,024 by default) for each scan: E measures that fan-out; keys that share "
        "a `{hash tag}` would be scanned in one partition.\n")

    add("## Latency under load (workload A, open loop)\n")
    add("Requests at a fixed rate of 25%, 50% and 75% of the closed-loop maximum measured just "
        "before, latency counted from when each request was due. A stall (an fsync, a flush, "
        "another process taking the cores) delays every request due during it, so these "
        "percentiles can exceed the closed-loop ones, where a stalled client simply sends "
        "less.\n")
    add("| System | max ops/s | at | asked ops/s | done ops/s | p50 ms | p99 ms | p99.9 ms |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|")
    series = []
    for label, what, _ in present:
        peak = rows.get((label, "a", "run"))
        if not peak:
            continue
        points = []
        for pct in (25, 50, 75):
            r = rows.get((label, "a", f"at-{pct}%"))
            if not r:
                continue
            add(f"| {what} | {fmt_rate(peak['ops_per_s'])} | {pct}% | "
                f"{fmt_rate(r['target_ops_per_s'])} | {fmt_rate(r['ops_per_s'])} | "
                f"{fmt_ms(r['p50_ms'])} | {fmt_ms(r['p99_ms'])} | {fmt_ms(r['p999_ms'])} |")
            points.append((pct, r["p99_ms"]))
        if points:
            series.append((label, points))
    add("")
    if series and line_plot(series, "p99 latency under load, workload A",
                            "offered load, % of the measured closed-loop maximum",
                            "p99 ms", "load", a.out):
        add("![p99 under load](load.svg)\n")

    add("## Scaling: workload A on 1, 3 and 5 nodes (RF=3, QUORUM)\n")
    add("**All nodes share the same 2 cores** (and the driver runs on them too), so more nodes "
        "do not add capacity here: this shows what each replica costs, not how Cairn scales on "
        "real machines. One node holds one replica of each key; three and five hold three.\n")
    add("| Nodes | ops/s | p50 ms | p99 ms | p99.9 ms |")
    add("|---:|---:|---:|---:|---:|")
    points = []
    for n, label in SCALING:
        r = rows.get((label, "a", "run"))
        if not r:
            continue
        add(f"| {n} | {fmt_rate(r['ops_per_s'])} | {fmt_ms(r['p50_ms'])} | "
            f"{fmt_ms(r['p99_ms'])} | {fmt_ms(r['p999_ms'])} |")
        points.append((n, r["ops_per_s"]))
    add("")
    if points and line_plot([("Cairn, workload A", points)],
                            "Workload A vs nodes (same 2 cores: overhead, not capacity)",
                            "nodes", "ops/s", "scaling", a.out):
        add("![Scaling](scaling.svg)\n")
    add("Every row of every run is in `report.jsonl` (one JSON object per operation and phase).")
    with open(os.path.join(a.out, "report.md"), "w") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
