#!/usr/bin/env python3
"""Summarise a bench/run-ws.sh raw result file: medians over rounds, ratios vs fastwebsockets
and vs tokio-tungstenite, RSS per idle upgraded connection.

    ws_report.py RAW.jsonl [--meta JSON] [--json OUT.json] [--md OUT.md]

Same raw format as report.py (it reuses report.summarize for the medians). Standard library
only.
"""

import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (bench/report.py: medians over rounds)

FASTWS = "fastws-echo"
TUNGSTENITE = "tungstenite-echo"


def summarize(rows, meta):
    report.BASELINE = FASTWS
    s = report.summarize(rows, meta)
    by = {(g["server"], g["size"]): g for g in s["echo"]}
    for g in s["echo"]:
        for key, base in (("vs_fastws", FASTWS), ("vs_tungstenite", TUNGSTENITE)):
            b = by.get((base, g["size"]), {})
            bm, bc = b.get("median_msgs_per_s"), b.get("median_server_cpu_us_per_msg")
            gm, gc = g["median_msgs_per_s"], g["median_server_cpu_us_per_msg"]
            g[key] = gm / bm if gm and bm else None
            g["cpu_" + key] = gc / bc if gc and bc else None
    s["baselines"] = [FASTWS, TUNGSTENITE]
    s["paired"] = paired(rows)
    return s


def paired(rows):
    """Per-round ratios of msgs/s, each server against each baseline in the same round and
    size (seconds apart, so slow drifts of the machine cancel): their median, geometric mean,
    range, and in how many rounds the server was at least as fast."""
    runs = {}
    for r in rows:
        run = r.get("run") or {}
        if r.get("kind") != "echo" or not run.get("ok") or not run.get("msgs_per_s"):
            continue
        runs[(r["server"], r["size"], r["round"])] = run["msgs_per_s"]
    servers = sorted({k[0] for k in runs} - {FASTWS, TUNGSTENITE})
    out = []
    for size in sorted({k[1] for k in runs}):
        for server in servers:
            for base in (FASTWS, TUNGSTENITE):
                ratios = [runs[(server, size, rnd)] / runs[(base, size, rnd)]
                          for (sv, sz, rnd) in sorted(runs)
                          if sv == server and sz == size and (base, size, rnd) in runs]
                if not ratios:
                    continue
                srt = sorted(ratios)
                mid = len(srt) // 2
                median = srt[mid] if len(srt) % 2 else (srt[mid - 1] + srt[mid]) / 2
                geo = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
                out.append({"size": size, "server": server, "baseline": base,
                            "ratios": ratios, "median": median, "geomean": geo,
                            "min": srt[0], "max": srt[-1],
                            "at_least_1": sum(1 for x in ratios if x >= 1.0)})
    return out


def markdown(s):
    f = report.fmt
    out = []
    m = s.get("meta", {})
    p = m.get("params", {})
    out.append("## WebSocket echo (binary messages, %s connections, pipeline %s, "
               "%s prepared messages)\n"
               % (p.get("CONNS", "?"), p.get("PIPELINE", "?"), p.get("PREPARED", "0")))
    out.append("%s rounds x %s s (+%s s warm-up); medians over rounds. git %s, %s, %s CPUs, "
               "loadavg %s -> %s.\n" % (p.get("ROUNDS"), p.get("DURATION"), p.get("WARMUP"),
                                        m.get("git"), m.get("cpu"), m.get("cpus"),
                                        m.get("loadavg_start"), m.get("loadavg_end")))
    out.append("| size | server | msgs/s | p50 µs | p99 µs | server CPU µs/msg | "
               "x fastws | x tungstenite | CPU x fastws | CPU x tungstenite | spread | runs ok |")
    out.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for g in s["echo"]:
        out.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d/%d |" % (
            g["size"], g["server"], f(g["median_msgs_per_s"], ",.0f"),
            f(g["median_p50_us"], ".0f"), f(g["median_p99_us"], ".0f"),
            f(g["median_server_cpu_us_per_msg"], ".2f"),
            f(g["vs_fastws"], ".2f"), f(g["vs_tungstenite"], ".2f"),
            f(g["cpu_vs_fastws"], ".2f"), f(g["cpu_vs_tungstenite"], ".2f"),
            report.pct(g["spread"]), g["runs"] - g["failed_runs"], g["runs"]))
    out.append("")
    out.append("x = ratio of msgs/s (higher is better); CPU x = ratio of server CPU per message "
               "(lower is better).\n")
    if s.get("paired"):
        out.append("## Paired by round (msgs/s of the server / the baseline in the same round)\n")
        out.append("| size | server | baseline | median | geomean | min | max | rounds >= 1.0 |")
        out.append("|---:|---|---|---:|---:|---:|---:|---:|")
        for d in s["paired"]:
            out.append("| %d | %s | %s | %.2f | %.2f | %.2f | %.2f | %d/%d |" % (
                d["size"], d["server"], d["baseline"], d["median"], d["geomean"], d["min"],
                d["max"], d["at_least_1"], len(d["ratios"])))
        out.append("")
    if s["idle"]:
        out.append("## Memory per idle upgraded WebSocket connection\n")
        out.append("| server | variant | connections | VmRSS before KiB | after KiB | B/conn |")
        out.append("|---|---|---:|---:|---:|---:|")
        for d in s["idle"]:
            out.append("| %s | %s | %d | %d | %d | %.0f |" % (
                d["server"], d["variant"], d["conns"], d["rss_before_kb"],
                d["rss_after_kb"], d["bytes_per_conn"]))
        out.append("")
    if m.get("skipped"):
        out.append("Skipped: " + "; ".join("%s (%s)" % kv for kv in m["skipped"].items()) + "\n")
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
