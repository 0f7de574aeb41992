#!/usr/bin/env bash
# permessage-deflate on the wire: JSON text echo with and without deflate on gale's websocket
# example (msgs/s, bytes on the wire per message, server CPU per message), and server memory
# per idle upgraded connection after one compressed message. See bench/DEFLATE.md.
#
#   flock /work/bench.lock bench/run-deflate.sh            # defaults below
#   DRIVERS="mio tokio" SIZES=4096 ROUNDS=1 bench/run-deflate.sh
#
# Method as run-ws.sh: server pinned to CPU $SERVER_CPU, `gale-load ws` to $LOAD_CPU, a fresh
# server per run on a fresh port, plain and deflate alternated (order flipped every round),
# medians over rounds. Quote ratios, not absolute numbers.
set -euo pipefail

: "${DURATION:=3}"                 # measured seconds per echo run
: "${WARMUP:=1}"                   # warm-up seconds per echo run
: "${ROUNDS:=3}"
: "${SIZES:=2048 4096 8192 16384}" # JSON message sizes in bytes
: "${CONNS:=50}"
: "${DRIVERS:=mio}"                # gale drivers to run (mio tokio smol)
: "${IDLE_CONNS:=1000}"            # upgraded connections for the memory figures (0 skips)
: "${PING_SIZE:=2048}"             # the one JSON message each idle connection exchanges
: "${SERVER_CPU:=0}"
: "${LOAD_CPU:=1}"
: "${PORT_BASE:=17800}"
: "${SKIP_BUILD:=0}"

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(dirname "$BENCH_DIR")
RESULTS_DIR="$BENCH_DIR/results"
note() { printf '%s\n' "run-deflate.sh: $*" >&2; }

target_dir() {
    cargo metadata --format-version 1 --no-deps --manifest-path "$1" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}

declare -a STARTED=()
cleanup() { local p; for p in "${STARTED[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM
forget() { local keep=() p; for p in "${STARTED[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done; STARTED=("${keep[@]}"); }

port_hex() { printf '%04X' "$1"; }
listening() { awk -v p="$(port_hex "$1")" 'FNR > 1 { split($2, a, ":"); if (a[length(a)] == p && $4 == "0A") f = 1 } END { exit !f }' /proc/net/tcp /proc/net/tcp6; }
port_used() { awk -v p="$(port_hex "$1")" 'FNR > 1 { split($2, a, ":"); if (a[length(a)] == p) f = 1 } END { exit !f }' /proc/net/tcp /proc/net/tcp6; }
NEXT_PORT=$PORT_BASE
next_port() { while port_used "$NEXT_PORT"; do NEXT_PORT=$((NEXT_PORT + 1)); done; PORT=$NEXT_PORT; NEXT_PORT=$((NEXT_PORT + 1)); }
now_us() { echo "${EPOCHREALTIME/[.,]/}"; }
deadline_in() { echo $(($(now_us) + $1 * 1000000)); }
before() { (($(now_us) < $1)); }

start_server() { # driver deflate(0|1): sets SERVER_PID, PORT
    local args=(--driver "$1" --loops 1) dl
    (($2)) && args+=(--deflate)
    next_port
    echo "== websocket ${args[*]} --port $PORT" >>"$LOG"
    taskset -c "$SERVER_CPU" "$ROOT_BIN/examples/websocket" "${args[@]}" --port "$PORT" >>"$LOG" 2>&1 &
    SERVER_PID=$!
    STARTED+=("$SERVER_PID")
    dl=$(deadline_in 10)
    until listening "$PORT"; do
        kill -0 "$SERVER_PID" 2>/dev/null && before "$dl" || { note "server did not start; see $LOG"; exit 1; }
        sleep 0.02
    done
}
stop_pid() {
    local pid=$1 dl
    kill -TERM "$pid" 2>/dev/null || true
    dl=$(deadline_in 5)
    while kill -0 "$pid" 2>/dev/null && before "$dl"; do sleep 0.02; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    forget "$pid"
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

if [[ $SKIP_BUILD != 1 ]]; then
    cargo build --release --manifest-path "$BENCH_DIR/Cargo.toml" -p gale-load
    (cd "$ROOT_DIR" && cargo build --release --example websocket)
fi
# LOAD and ROOT_BIN may be given (binaries built elsewhere, e.g. separate target dirs).
: "${LOAD:=$(target_dir "$BENCH_DIR/Cargo.toml")/release/gale-load}"
: "${ROOT_BIN:=$(target_dir "$ROOT_DIR/Cargo.toml")/release}"
mkdir -p "$RESULTS_DIR"
STAMP=deflate-$(date -u +%Y%m%dT%H%M%SZ)
LOG="$RESULTS_DIR/$STAMP.log"
RAW="$RESULTS_DIR/$STAMP.raw.jsonl"
: >"$LOG"
: >"$RAW"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
note "drivers: $DRIVERS; sizes: $SIZES; $ROUNDS rounds x ${DURATION}s; log $LOG"

for ((round = 1; round <= ROUNDS; round++)); do
    for size in $SIZES; do
        for driver in $DRIVERS; do
            modes=(0 1)
            ((round % 2)) || modes=(1 0)
            for deflate in "${modes[@]}"; do
                start_server "$driver" "$deflate"
                flags=(--payload json)
                ((deflate)) && flags+=(--deflate)
                set +e
                out=$(taskset -c "$LOAD_CPU" "$LOAD" ws --port "$PORT" --conns "$CONNS" \
                    --size "$size" --duration "$DURATION" --warmup "$WARMUP" \
                    --server-pid "$SERVER_PID" "${flags[@]}" --json 2>>"$LOG")
                rc=$?
                set -e
                stop_pid "$SERVER_PID"
                [[ -n $out ]] || out=null
                printf '{"kind":"echo","driver":"%s","deflate":%d,"round":%d,"size":%d,"rc":%d,"run":%s}\n' \
                    "$driver" "$deflate" "$round" "$size" "$rc" "$out" >>"$RAW"
                note "round $round $driver size $size deflate=$deflate: $(python3 -c 'import json,sys; r=json.loads(sys.argv[1]) or {}; print("%.0f msgs/s, %.0f/%.0f B/msg out/in%s" % (r.get("msgs_per_s",0), r.get("wire_out_per_msg",0), r.get("wire_in_per_msg",0), "" if r.get("ok") else "  FAILED"))' "$out")"
            done
        done
    done
done

if ((IDLE_CONNS > 0)); then
    first=${DRIVERS%% *}
    for variant in plain takeover no_context_takeover; do
        deflate=1
        flags=(--ws --ping --ping-size "$PING_SIZE" --payload json)
        case $variant in
            plain) deflate=0 ;;
            takeover) flags+=(--deflate) ;;
            no_context_takeover) flags+=(--deflate --no-context-takeover) ;;
        esac
        start_server "$first" "$deflate"
        rss0=$(rss_kb "$SERVER_PID")
        out="$RESULTS_DIR/$STAMP.idle.out"
        taskset -c "$LOAD_CPU" "$LOAD" idle --port "$PORT" --conns "$IDLE_CONNS" "${flags[@]}" \
            --hold 600 --connect-timeout 120 >"$out" 2>>"$LOG" &
        load_pid=$!
        STARTED+=("$load_pid")
        ok=1
        dl=$(deadline_in 150)
        until grep -q '^ready' "$out" 2>/dev/null; do
            if ! kill -0 "$load_pid" 2>/dev/null || ! before "$dl"; then ok=0; break; fi
            sleep 0.05
        done
        # "ready" means every connection's echo was verified: the server has done its work.
        ((ok)) && sleep 1
        rss1=$(rss_kb "$SERVER_PID")
        stop_pid "$load_pid"
        stop_pid "$SERVER_PID"
        rm -f "$out"
        ((ok)) || { note "idle $variant: connections not ready in time; see $LOG"; continue; }
        printf '{"kind":"idle","driver":"%s","variant":"%s","conns":%d,"ping_size":%d,"rss_before_kb":%d,"rss_after_kb":%d}\n' \
            "$first" "$variant" "$IDLE_CONNS" "$PING_SIZE" "$rss0" "$rss1" >>"$RAW"
        note "idle $first $variant: VmRSS $rss0 -> $rss1 KiB, $(((rss1 - rss0) * 1024 / IDLE_CONNS)) B/conn"
    done
fi

python3 - "$RAW" >"$RESULTS_DIR/$STAMP.md" <<'PY'
import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
echo = [r for r in rows if r["kind"] == "echo" and r["run"]]
bad = [r for r in echo if not r["run"].get("ok")]
print("| driver | JSON size | plain msgs/s | deflate msgs/s | ratio | plain B/msg on the wire (out+in) | deflate B/msg (out+in) | bytes ratio | server us/msg plain / deflate |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
keys = sorted({(r["driver"], r["size"]) for r in echo}, key=lambda k: (k[0], k[1]))
for d, s in keys:
    def med(flag, f):
        v = [r["run"][f] for r in echo if r["driver"] == d and r["size"] == s and r["deflate"] == flag and r["run"].get(f) is not None]
        return st.median(v) if v else float("nan")
    p, z = med(0, "msgs_per_s"), med(1, "msgs_per_s")
    pb = med(0, "wire_out_per_msg") + med(0, "wire_in_per_msg")
    zb = med(1, "wire_out_per_msg") + med(1, "wire_in_per_msg")
    print(f"| {d} | {s} | {p:.0f} | {z:.0f} | {z/p:.2f} | {pb:.0f} | {zb:.0f} | {zb/pb:.2f} | {med(0,'server_cpu_us_per_msg'):.1f} / {med(1,'server_cpu_us_per_msg'):.1f} |")
idle = [r for r in rows if r["kind"] == "idle"]
if idle:
    print()
    print("| idle connections (one JSON message each) | conns | VmRSS delta | per connection |")
    print("|---|---:|---:|---:|")
    for r in idle:
        d = r["rss_after_kb"] - r["rss_before_kb"]
        print(f"| {r['driver']}, {r['variant']} | {r['conns']} | {d} KiB | {d*1024/r['conns']:.0f} B |")
if bad:
    print(f"\n{len(bad)} run(s) FAILED (mismatched bytes or broken connections); see the log")
PY
cat "$RESULTS_DIR/$STAMP.md"
note "wrote $RESULTS_DIR/$STAMP.{md,raw.jsonl,log}"
python3 -c 'import json, sys; sys.exit(any(r["kind"] == "echo" and not (r["run"] or {}).get("ok") for r in map(json.loads, open(sys.argv[1]))))' "$RAW"
