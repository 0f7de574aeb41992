#!/usr/bin/env python3
"""Draw a bench/run.sh summary as an SVG bar chart (standard library only).

    chart.py SUMMARY.json OUT.svg

Left: echo msgs/s per message size, one bar per server, as a ratio to mio-floor (each round's
run against the floor's run of the same round, median over rounds; labelled with the median
msgs/s). Middle: the server's CPU time per message. Right: server memory per idle
connection (bytes), if measured.
"""

import json
import math
import sys
from xml.sax.saxutils import escape

COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1"]
FONT = 'font-family="sans-serif"'


def text(x, y, s, size=12, anchor="middle", weight="normal", fill="#222"):
    return (f'<text x="{x:.1f}" y="{y:.1f}" {FONT} font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{fill}">{escape(str(s))}</text>')


def rect(x, y, w, h, fill):
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" fill="{fill}"/>'


def line(x1, y1, x2, y2, stroke="#ccc", dash=None):
    d = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}"{d}/>'


def short(n):
    if n is None:
        return "n/a"
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e3:
        return f"{n / 1e3:.0f}k"
    return f"{n:.0f}"


def echo_panel(s, x0, y0, w, h, color_of, key, title, label, ref=None):
    """Grouped bars: one group per message size, one bar per server, height `g[key]`."""
    out = [text(x0 + w / 2, y0 + 16, title, 14, weight="bold")]
    groups = [g for g in s["echo"] if g.get(key) is not None]
    sizes = sorted({g["size"] for g in groups})
    servers = [srv for srv in s["servers"] if any(g["server"] == srv for g in groups)]
    if not groups:
        out.append(text(x0 + w / 2, y0 + h / 2, "no data"))
        return out
    top = max(g[key] for g in groups) * 1.15
    if ref is not None:
        top = max(top, ref * 1.2)
    step = nice_step(top / 5)
    px, py, pw, ph = x0 + 50, y0 + 40, w - 60, h - 90
    for i in range(int(top / step) + 1):
        v = i * step
        yy = py + ph - v / top * ph
        out.append(line(px, yy, px + pw, yy, "#ddd", "3,3"))
        out.append(text(px - 6, yy + 4, f"{v:g}", 11, "end"))
    if ref is not None:
        yy = py + ph - ref / top * ph
        out.append(line(px, yy, px + pw, yy, "#1a1a1a"))
    gw = pw / len(sizes)
    bw = min(48, gw * 0.8 / max(len(servers), 1))
    for gi, size in enumerate(sizes):
        gx = px + gi * gw + (gw - bw * len(servers)) / 2
        for si, srv in enumerate(servers):
            g = next((g for g in groups if g["server"] == srv and g["size"] == size), None)
            if g is None:
                continue
            bh = g[key] / top * ph
            bx = gx + si * bw
            out.append(rect(bx + 2, py + ph - bh, bw - 4, bh, color_of[srv]))
            out.append(text(bx + bw / 2, py + ph - bh - 4, label(g), 10))
        out.append(text(px + gi * gw + gw / 2, py + ph + 18, f"{size} B", 12))
    lx = px
    for srv in servers:
        out.append(rect(lx, y0 + h - 22, 12, 12, color_of[srv]))
        out.append(text(lx + 16, y0 + h - 12, srv, 12, "start"))
        lx += 24 + 7.5 * len(srv)
    return out


def nice_step(raw):
    """The smallest of 1, 2, 2.5, 5 x 10^k that is >= raw."""
    if raw <= 0:
        return 1
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def idle_panel(s, x0, y0, w, h, color_of):
    out = [text(x0 + w / 2, y0 + 16, "Memory per idle connection (bytes)", 14, weight="bold")]
    rows = s["idle"]
    if not rows:
        out.append(text(x0 + w / 2, y0 + h / 2, "not measured"))
        return out
    label_w = 150
    px, py, pw = x0 + label_w, y0 + 40, w - label_w - 60
    bh = min(26, (h - 60) / len(rows))
    top = max(max(r["bytes_per_conn"] for r in rows), 1)
    for i, r in enumerate(rows):
        yy = py + i * bh
        variant = "after echo" if r["variant"] == "ping" else r["variant"]
        out.append(text(px - 6, yy + bh * 0.65, f"{r['server']} ({variant})", 11, "end"))
        bw = max(r["bytes_per_conn"], 0) / top * pw
        out.append(rect(px, yy + 3, bw, bh - 6, color_of.get(r["server"], "#999")))
        out.append(text(px + bw + 4, yy + bh * 0.65, f"{r['bytes_per_conn']:,.0f}", 11, "start"))
    return out


def render(s):
    servers = s["servers"]
    color_of = {srv: COLORS[i % len(COLORS)] for i, srv in enumerate(servers)}
    W, H = 1500, 420
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H + 30}" '
             f'viewBox="0 0 {W} {H + 30}">', rect(0, 0, W, H + 30, "#fff")]
    parts += echo_panel(s, 10, 10, 540, H, color_of, "paired_ratio_vs_floor",
                        "Echo msgs/s vs mio-floor, paired by round (higher is better)",
                        lambda g: short(g["median_msgs_per_s"]), ref=1.0)
    parts += echo_panel(s, 560, 10, 520, H, color_of, "median_server_cpu_us_per_msg",
                        "Server CPU per message, us (lower is better)",
                        lambda g: f"{g['median_server_cpu_us_per_msg']:.2f}")
    parts += idle_panel(s, 1090, 10, 400, H, color_of)
    m = s.get("meta") or {}
    p = m.get("params", {})
    parts.append(text(W / 2, H + 22,
                      f"{m.get('stamp', '')}  git {m.get('git')}  {p.get('CONNS')} conns, "
                      f"{p.get('ROUNDS')} rounds x {p.get('DURATION')} s, medians; server on CPU "
                      f"{p.get('SERVER_CPU')}, load on CPU {p.get('LOAD_CPU')}; loopback, shared "
                      f"machine: compare ratios", 11, fill="#666"))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        s = json.load(f)
    with open(sys.argv[2], "w") as f:
        f.write(render(s))


if __name__ == "__main__":
    main()
