#!/usr/bin/env python3
"""Summarise a bench/run.sh raw result file: medians over rounds, ratios vs mio-floor.

    report.py RAW.jsonl [--meta JSON] [--json OUT.json] [--md OUT.md]

RAW.jsonl holds one object per line: {"kind": "echo", "server", "round", "size", "rc", "run":
<gale-load echo --json line or null>} or {"kind": "idle", "server", "variant", "conns",
"rss_before_kb", "rss_after_kb", ...}. Standard library only.
"""

import argparse
import json
import statistics
import sys

BASELINE = "mio-floor"


def summarize(rows, meta):
    order = []  # servers in first-seen order
    for r in rows:
        if r["server"] not in order:
            order.append(r["server"])
    echo = {}
    for r in (r for r in rows if r.get("kind") == "echo"):
        echo.setdefault((r["server"], r["size"]), []).append(r)
    groups = []
    for (server, size), runs in echo.items():
        good = [r["run"] for r in runs if r["run"] and r["run"].get("ok")]
        failed = len(runs) - len(good)
        rates = [g["msgs_per_s"] for g in good]
        p99s = [g["p99_us"] for g in good]
        med = statistics.median(rates) if rates else None

        def median_of(key):
            vals = [g[key] for g in good if g.get(key) is not None]
            return statistics.median(vals) if vals else None

        groups.append({
            "server": server, "size": size, "runs": len(runs), "failed_runs": failed,
            "msgs_per_s": rates, "p99_us": p99s,
            "median_msgs_per_s": med,
            "median_p99_us": statistics.median(p99s) if p99s else None,
            "median_p50_us": median_of("p50_us"),
            "median_server_cpu_us_per_msg": median_of("server_cpu_us_per_msg"),
            "median_server_waiting": median_of("server_waiting"),
            "median_client_busy": median_of("client_busy"),
            "spread": (max(rates) - min(rates)) / med if rates and med else None,
            "mismatched_bytes": sum((r["run"] or {}).get("mismatched_bytes", 0) for r in runs),
        })
    base = {g["size"]: g for g in groups if g["server"] == BASELINE}

    def ratio(g, key):
        b = base.get(g["size"], {}).get(key)
        return g[key] / b if g[key] is not None and b else None

    # Paired: in each round, the server against the floor's run of the same round (runs a
    # few seconds apart), then the median over rounds. Load on a shared machine comes and
    # goes over tens of seconds; pairing cancels most of it, where a ratio of medians taken
    # over all rounds does not.
    runs = {(r["server"], r["size"], r["round"]): r["run"] for r in rows
            if r.get("kind") == "echo" and r["run"] and r["run"].get("ok")}

    def paired(g, key):
        vals = []
        for (server, size, rnd), run in runs.items():
            b = runs.get((BASELINE, size, rnd))
            if server == g["server"] and size == g["size"] and b and run.get(key) and b.get(key):
                vals.append(run[key] / b[key])
        return statistics.median(vals) if vals else None

    for g in groups:
        g["ratio_vs_floor"] = ratio(g, "median_msgs_per_s")
        g["cpu_ratio_vs_floor"] = ratio(g, "median_server_cpu_us_per_msg")
        g["paired_ratio_vs_floor"] = paired(g, "msgs_per_s")
        g["paired_cpu_ratio_vs_floor"] = paired(g, "server_cpu_us_per_msg")
    groups.sort(key=lambda g: (g["size"], order.index(g["server"])))
    idle = []
    for r in (r for r in rows if r.get("kind") == "idle"):
        d = dict(r)
        d["bytes_per_conn"] = (r["rss_after_kb"] - r["rss_before_kb"]) * 1024 / r["conns"]
        idle.append(d)
    return {"meta": meta, "baseline": BASELINE, "servers": order, "echo": groups, "idle": idle}


def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def pct(v):
    return "n/a" if v is None else f"{v * 100:.0f}%"


def markdown(s):
    m = s.get("meta") or {}
    p = m.get("params", {})
    out = [f"# gale loopback benchmark {m.get('stamp', '')}".rstrip() + "\n"]
    if m:
        out.append(
            f"git `{m.get('git')}`, {m.get('cpus')} CPUs ({m.get('cpu')}), "
            f"Linux {m.get('kernel')}; load average {m.get('loadavg_start')} at start, "
            f"{m.get('loadavg_end')} at end. Server pinned to CPU {p.get('SERVER_CPU')}, "
            f"load generator to CPU {p.get('LOAD_CPU')}.\n")
        out.append(
            f"## Echo: {p.get('CONNS')} connections, {p.get('PIPELINE')} in flight each\n\n"
            f"Median of {p.get('ROUNDS')} rounds x {p.get('DURATION')} s (after "
            f"{p.get('WARMUP')} s warm-up), servers alternated.")
    else:
        out.append("## Echo\n\nMedians over rounds.")
    out.append(
        "*vs floor*: msgs/s divided by mio-floor's at the same size (higher is better), paired: "
        "each round's run against the floor's run of the same round, median over rounds "
        "(*(med)*: the ratio of the medians instead, more exposed to load that changes between "
        "rounds). *CPU/msg*: the server's on-CPU time per message over the measured window "
        "(lower is better; the figure least disturbed by other load), and *x floor* that "
        "divided by mio-floor's, paired likewise. *wait*: share of the window the server was "
        "runnable but waiting for a CPU (other load on its core). *client*: share of a core "
        "the load generator used (near 100%: msgs/s is capped by the client, trust CPU/msg). "
        "*spread*: (max - min) / median of msgs/s over the rounds.\n")
    out.append("| server | size (B) | msgs/s | vs floor | (med) | CPU/msg (us) | x floor "
               "| p50 (us) | p99 (us) | wait | client | spread |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for g in s["echo"]:
        flag = f" ({g['failed_runs']} runs FAILED)" if g["failed_runs"] else ""
        out.append(
            f"| {g['server']}{flag} | {g['size']} | {fmt(g['median_msgs_per_s'], ',.0f')} | "
            f"{fmt(g['paired_ratio_vs_floor'], '.2f')} | {fmt(g['ratio_vs_floor'], '.2f')} | "
            f"{fmt(g['median_server_cpu_us_per_msg'], '.2f')} | "
            f"{fmt(g['paired_cpu_ratio_vs_floor'], '.2f')} | "
            f"{fmt(g['median_p50_us'], '.0f')} | {fmt(g['median_p99_us'], '.0f')} | "
            f"{pct(g['median_server_waiting'])} | {pct(g['median_client_busy'])} | "
            f"{pct(g['spread'])} |")
    if s["idle"]:
        out.append("")
        conns = s["idle"][0]["conns"]
        out.append(f"## Memory per idle connection ({conns:,} connections)\n")
        out.append(
            "Server VmRSS before and after the connections are open, divided by their number. "
            "*fresh*: connected, never spoke. *after echo*: each exchanged one 16-byte echo, "
            "then went idle. Kernel socket buffers are not in VmRSS.\n")
        out.append("| server | variant | VmRSS before (KiB) | VmRSS after (KiB) | bytes/conn |")
        out.append("|---|---|---:|---:|---:|")
        for d in s["idle"]:
            variant = "after echo" if d["variant"] == "ping" else d["variant"]
            out.append(
                f"| {d['server']} | {variant} | {d['rss_before_kb']:,} | {d['rss_after_kb']:,} | "
                f"{d['bytes_per_conn']:,.0f} |")
    skipped = m.get("skipped") or {}
    if skipped:
        out.append("\nSkipped:\n")
        for k, v in sorted(skipped.items()):
            out.append(f"- {k}: {v}")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("raw")
    ap.add_argument("--meta", default="{}", help="JSON object describing the run")
    ap.add_argument("--json", help="write the summary JSON here")
    ap.add_argument("--md", help="write the markdown report here")
    a = ap.parse_args()
    with open(a.raw) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    s = summarize(rows, json.loads(a.meta))
    md = markdown(s)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(s, f, indent=1)
            f.write("\n")
    if a.md:
        with open(a.md, "w") as f:
            f.write(md)
    if not a.md:
        sys.stdout.write(md)


if __name__ == "__main__":
    main()
