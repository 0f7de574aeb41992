#!/usr/bin/env bash
# gale WebSocket loopback benchmark: binary-message echo throughput/latency and memory per idle
# upgraded connection, gale's websocket example (mio, tokio, smol drivers) against
# fastwebsockets and tokio-tungstenite. See bench/WEBSOCKET.md.
#
#   bench/run-ws.sh                       # everything, defaults below
#   DURATION=5 ROUNDS=5 bench/run-ws.sh   # longer
#   ONLY="gale-mio fastws-echo" SIZES=512 IDLE_CONNS=0 bench/run-ws.sh
#
# Same method as run.sh: servers pinned to CPU $SERVER_CPU, `gale-load ws` to $LOAD_CPU, a fresh
# server per run on a fresh port, servers alternated round-robin (order rotated every round),
# medians over rounds. Quote ratios, not absolute numbers.
set -euo pipefail

: "${DURATION:=3}"           # measured seconds per echo run
: "${WARMUP:=1}"             # warm-up seconds per echo run
: "${ROUNDS:=3}"             # rounds; every server runs every size once per round
: "${SIZES:=64 512 4096}"    # binary message payload sizes in bytes
: "${CONNS:=50}"             # WebSocket connections
: "${PIPELINE:=1}"           # messages in flight per connection (1 = ping-pong)
: "${PREPARED:=16}"          # distinct messages prepared, cycled by every connection (0 = generate each)
: "${IDLE_CONNS:=10000}"     # upgraded connections for the memory measurement (0 = skip it)
: "${SERVER_CPU:=0}"
: "${LOAD_CPU:=1}"
: "${PORT_BASE:=17600}"
: "${START_TIMEOUT:=10}"     # seconds for a server to listen
: "${SKIP_BUILD:=0}"
: "${ONLY:=}"                # space-separated server names to run (default: all)

export DURATION WARMUP ROUNDS SIZES CONNS PIPELINE PREPARED IDLE_CONNS SERVER_CPU LOAD_CPU

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(dirname "$BENCH_DIR")
export ROOT_DIR
RESULTS_DIR="$BENCH_DIR/results"

# The compared servers: "name|command" ({bench}, {root}: release dirs; {port}: port on 127.0.0.1).
SERVERS=(
    "gale-mio|{root}/examples/websocket --driver mio --port {port} --loops 1"
    "gale-tokio|{root}/examples/websocket --driver tokio --port {port} --loops 1"
    "gale-smol|{root}/examples/websocket --driver smol --port {port} --loops 1"
    "fastws-echo|{bench}/fastws-echo --port {port}"
    "tungstenite-echo|{bench}/tungstenite-echo --port {port}"
)

note() { printf '%s\n' "run-ws.sh: $*" >&2; }

target_dir() { # manifest -> target directory (honours CARGO_TARGET_DIR and config)
    cargo metadata --format-version 1 --no-deps --manifest-path "$1" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}

# ---------------------------------------------------------------- processes and ports

declare -a STARTED=()   # pids this script started and has not reaped yet
cleanup() {
    local pid
    for pid in "${STARTED[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget() { # pid: drop from STARTED
    local keep=() p
    for p in "${STARTED[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    STARTED=("${keep[@]}")
}

port_hex() { printf '%04X' "$1"; }

listening() { # port -> 0 if some socket listens on it (IPv4 or IPv6)
    awk -v p="$(port_hex "$1")" '
        FNR > 1 { split($2, a, ":"); if (a[length(a)] == p && $4 == "0A") found = 1 }
        END { exit !found }' /proc/net/tcp /proc/net/tcp6
}

port_used() { # port -> 0 if any socket (any state) has it as local port
    awk -v p="$(port_hex "$1")" '
        FNR > 1 { split($2, a, ":"); if (a[length(a)] == p) found = 1 }
        END { exit !found }' /proc/net/tcp /proc/net/tcp6
}

NEXT_PORT=$PORT_BASE
next_port() { # sets PORT to a port no socket uses
    while port_used "$NEXT_PORT"; do NEXT_PORT=$((NEXT_PORT + 1)); done
    PORT=$NEXT_PORT
    NEXT_PORT=$((NEXT_PORT + 1))
}

now_us() { echo "${EPOCHREALTIME/[.,]/}"; }                     # bash >= 5
deadline_in() { echo $(($(now_us) + $1 * 1000000)); }              # whole seconds -> deadline
before() { (($(now_us) < $1)); }                                   # deadline -> still before it?

# start_server NAME CMD: starts CMD pinned to SERVER_CPU on a fresh port; sets SERVER_PID and
# PORT. Returns 1 (with REASON set) if it exits or does not listen within START_TIMEOUT.
start_server() {
    local name=$1 cmd=$2 dl
    next_port
    cmd=${cmd//\{port\}/$PORT}
    echo "== $name: $cmd" >>"$LOG"
    # shellcheck disable=SC2086  # the command is a word list by design
    taskset -c "$SERVER_CPU" $cmd >>"$LOG" 2>&1 &
    SERVER_PID=$!
    STARTED+=("$SERVER_PID")
    dl=$(deadline_in "$START_TIMEOUT")
    until listening "$PORT"; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            wait "$SERVER_PID" 2>/dev/null && REASON="exited before listening" ||
                REASON="exited with status $? before listening"
            forget "$SERVER_PID"
            return 1
        fi
        if ! before "$dl"; then
            REASON="not listening on $PORT after ${START_TIMEOUT}s"
            stop_pid "$SERVER_PID"
            return 1
        fi
        sleep 0.02
    done
}

stop_pid() { # pid: TERM, then KILL after 5 s, then reap
    local pid=$1 dl
    kill -TERM "$pid" 2>/dev/null || true
    dl=$(deadline_in 5)
    while kill -0 "$pid" 2>/dev/null && before "$dl"; do sleep 0.02; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    forget "$pid"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# ---------------------------------------------------------------- build

ROOT_BUILD_FAILED=0
if [[ $SKIP_BUILD != 1 ]]; then
    note "building the bench workspace (release)"
    cargo build --release --manifest-path "$BENCH_DIR/Cargo.toml"
    note "building gale's websocket example (release)"
    if ! (cd "$ROOT_DIR" && cargo build --release --example websocket); then
        note "gale's websocket example did not build; gale servers will be skipped"
        ROOT_BUILD_FAILED=1
    fi
fi
BENCH_BIN="$(target_dir "$BENCH_DIR/Cargo.toml")/release"
ROOT_BIN="$(target_dir "$ROOT_DIR/Cargo.toml")/release"
LOAD="$BENCH_BIN/gale-load"
[[ -x $LOAD ]] || { note "missing $LOAD"; exit 1; }

mkdir -p "$RESULTS_DIR"
STAMP=ws-$(date -u +%Y%m%dT%H%M%SZ)
LOG="$RESULTS_DIR/$STAMP.log"
RAW="$RESULTS_DIR/$STAMP.raw.jsonl"
: >"$LOG"
: >"$RAW"

# Resolve the server list; servers whose binary is missing are skipped with a note.
declare -a NAMES=() CMDS=()
declare -A SKIPPED=()
for entry in "${SERVERS[@]}"; do
    name=${entry%%|*}
    cmd=${entry#*|}
    if [[ -n $ONLY && " $ONLY " != *" $name "* ]]; then continue; fi
    if ((ROOT_BUILD_FAILED)) && [[ $cmd == *"{root}"* ]]; then
        # Never run a stale binary from an earlier build.
        SKIPPED[$name]="cargo build --release --example websocket failed (see the build output)"
        note "skipping $name: ${SKIPPED[$name]}"
        continue
    fi
    cmd=${cmd//\{bench\}/$BENCH_BIN}
    cmd=${cmd//\{root\}/$ROOT_BIN}
    bin=${cmd%% *}
    if [[ ! -x $bin ]]; then
        SKIPPED[$name]="binary $bin not found"
        note "skipping $name: ${SKIPPED[$name]}"
        continue
    fi
    NAMES+=("$name")
    CMDS+=("$cmd")
done
[[ ${#NAMES[@]} -gt 0 ]] || { note "no server to run"; exit 1; }

# More file descriptors for children (10k idle connections); the binaries raise it too.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

META_LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
note "servers: ${NAMES[*]}; sizes: $SIZES; $ROUNDS rounds x ${DURATION}s (+${WARMUP}s warm-up)"
note "log: $LOG"

# ---------------------------------------------------------------- echo rounds

n=${#NAMES[@]}
for ((round = 1; round <= ROUNDS; round++)); do
    for size in $SIZES; do
        for ((k = 0; k < n; k++)); do
            idx=$(((k + round - 1) % n)) # rotate the order every round
            name=${NAMES[$idx]}
            [[ -z ${SKIPPED[$name]:-} ]] || continue
            if ! start_server "$name" "${CMDS[$idx]}"; then
                SKIPPED[$name]=$REASON
                note "skipping $name: $REASON"
                continue
            fi
            set +e
            out=$(taskset -c "$LOAD_CPU" "$LOAD" ws --port "$PORT" --conns "$CONNS" \
                --size "$size" --pipeline "$PIPELINE" --prepared "$PREPARED" --duration "$DURATION" \
                --warmup "$WARMUP" --server-pid "$SERVER_PID" --json 2>>"$LOG")
            rc=$?
            set -e
            stop_pid "$SERVER_PID"
            [[ -n $out ]] || out=null
            printf '{"kind":"echo","server":"%s","round":%d,"size":%d,"rc":%d,"run":%s}\n' \
                "$name" "$round" "$size" "$rc" "$out" >>"$RAW"
            summary=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]) or {}; print("%.0f msgs/s, p99 %.0f us, server %.2f us/msg%s" % (r.get("msgs_per_s",0), r.get("p99_us",0), r.get("server_cpu_us_per_msg") or 0, "" if r.get("ok") else "  FAILED"))' "$out")
            note "round $round size $size $name: $summary"
        done
    done
done

# ---------------------------------------------------------------- idle memory

if ((IDLE_CONNS > 0)); then
    for ((idx = 0; idx < n; idx++)); do
        name=${NAMES[$idx]}
        [[ -z ${SKIPPED[$name]:-} ]] || continue
        for variant in upgraded; do
            if ! start_server "$name" "${CMDS[$idx]}"; then
                note "idle $name: $REASON"
                continue
            fi
            fds0=$(fd_count "$SERVER_PID")
            rss0=$(rss_kb "$SERVER_PID")
            flag=(--ws)
            out="$RESULTS_DIR/$STAMP.idle.out"
            taskset -c "$LOAD_CPU" "$LOAD" idle --port "$PORT" --conns "$IDLE_CONNS" \
                "${flag[@]}" --hold 600 --connect-timeout 60 >"$out" 2>>"$LOG" &
            load_pid=$!
            STARTED+=("$load_pid")
            ok=1
            dl=$(deadline_in 90)
            until grep -q '^ready' "$out" 2>/dev/null; do
                if ! kill -0 "$load_pid" 2>/dev/null || ! before "$dl"; then ok=0; break; fi
                sleep 0.05
            done
            # "ready" means every connection got its 101, so the server has accepted and
            # upgraded all of them; give it a moment to finish any post-upgrade work.
            ((ok)) && sleep 1
            rss1=$(rss_kb "$SERVER_PID")
            fds1=$(fd_count "$SERVER_PID")
            stop_pid "$load_pid"
            stop_pid "$SERVER_PID"
            rm -f "$out"
            if ((!ok)); then
                note "idle $name ($variant): connections not established in time; see $LOG"
                continue
            fi
            printf '{"kind":"idle","server":"%s","variant":"%s","conns":%d,"rss_before_kb":%d,"rss_after_kb":%d,"fds_before":%d,"fds_after":%d}\n' \
                "$name" "$variant" "$IDLE_CONNS" "$rss0" "$rss1" "$fds0" "$fds1" >>"$RAW"
            note "idle $name ($variant): VmRSS ${rss0} -> ${rss1} KiB, $(((rss1 - rss0) * 1024 / IDLE_CONNS)) B/conn"
        done
    done
fi

# ---------------------------------------------------------------- report

skipped_json=$(for k in "${!SKIPPED[@]}"; do printf '%s\t%s\n' "$k" "${SKIPPED[$k]}"; done |
    python3 -c 'import json, sys; print(json.dumps(dict(l.rstrip("\n").split("\t", 1) for l in sys.stdin if l.strip())))')
meta=$(python3 - "$STAMP" "$META_LOAD_START" "$(cut -d' ' -f1-3 /proc/loadavg)" "$skipped_json" <<'EOF'
import json, os, platform, subprocess, sys
def sh(*a):
    try:
        return subprocess.run(a, capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return None
cpu = None
try:
    cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
except Exception:
    pass
print(json.dumps({
    "stamp": sys.argv[1],
    "git": sh("git", "-C", os.environ["ROOT_DIR"], "rev-parse", "--short", "HEAD"),
    "kernel": platform.release(), "cpu": cpu, "cpus": os.cpu_count(),
    "loadavg_start": sys.argv[2], "loadavg_end": sys.argv[3],
    "params": {k: os.environ[k] for k in ("DURATION", "WARMUP", "ROUNDS", "SIZES", "CONNS",
               "PIPELINE", "PREPARED", "IDLE_CONNS", "SERVER_CPU", "LOAD_CPU")},
    "skipped": json.loads(sys.argv[4]),
}))
EOF
)
python3 "$BENCH_DIR/ws_report.py" "$RAW" --meta "$meta" \
    --json "$RESULTS_DIR/$STAMP.json" --md "$RESULTS_DIR/$STAMP.md"
cp "$RESULTS_DIR/$STAMP.md" "$RESULTS_DIR/latest-ws.md"
cat "$RESULTS_DIR/$STAMP.md"
note "wrote $RESULTS_DIR/$STAMP.{json,md,raw.jsonl,log} and latest-ws.md"

# Non-zero if any echo run saw a mismatched byte or a broken connection.
python3 -c 'import json, sys; sys.exit(any(r.get("kind") == "echo" and not (r["run"] or {}).get("ok") for r in map(json.loads, open(sys.argv[1]))))' "$RAW"
