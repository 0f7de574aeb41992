#!/usr/bin/env bash
# User-space instructions per echoed WebSocket message, counted with valgrind's cachegrind:
# a repeatable complement to run-ws.sh, whose msgs/s move by 30% with the machine's load.
# See bench/WEBSOCKET.md ("Instructions per message").
#
#   bench/icount-ws.sh                          # gale-mio, fastws-echo; 64 512 4096 B
#   ONLY="gale-mio" SIZES=4096 bench/icount-ws.sh
#
# Each server runs under `valgrind --tool=cachegrind --cache-sim=no` (user space only: the
# kernel's share, ~90% of a real run's CPU, is not counted) while `gale-load ws` drives it
# for SHORT and then LONG seconds; (Ir_long - Ir_short) / (msgs_long - msgs_short) removes
# start-up and handshakes. Under valgrind a server is ~30x slower, so epoll returns more
# events per call than in a real run and the loop's fixed costs weigh a little less.
set -euo pipefail

: "${SIZES:=64 512 4096}"
: "${ONLY:=gale-mio fastws-echo}"
: "${CONNS:=50}"
: "${SHORT:=2}"
: "${LONG:=6}"
: "${PORT:=17900}"
: "${SKIP_BUILD:=0}"

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(dirname "$BENCH_DIR")

command -v valgrind >/dev/null || { echo "icount-ws.sh: valgrind is needed (apt-get install valgrind)" >&2; exit 1; }

target_dir() {
    cargo metadata --format-version 1 --no-deps --manifest-path "$1" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}
if [ "$SKIP_BUILD" != 1 ]; then
    cargo build --release --quiet --manifest-path "$BENCH_DIR/Cargo.toml"
    cargo build --release --quiet --manifest-path "$ROOT_DIR/Cargo.toml" --example websocket
fi
BENCH_BIN=$(target_dir "$BENCH_DIR/Cargo.toml")/release
ROOT_BIN=$(target_dir "$ROOT_DIR/Cargo.toml")/release

server_cmd() { # name port
    case $1 in
        gale-mio) echo "$ROOT_BIN/examples/websocket --driver mio --port $2 --loops 1" ;;
        gale-tokio) echo "$ROOT_BIN/examples/websocket --driver tokio --port $2 --loops 1" ;;
        gale-smol) echo "$ROOT_BIN/examples/websocket --driver smol --port $2 --loops 1" ;;
        fastws-echo) echo "$BENCH_BIN/fastws-echo --port $2" ;;
        tungstenite-echo) echo "$BENCH_BIN/tungstenite-echo --port $2" ;;
        *) echo "icount-ws.sh: unknown server $1" >&2; exit 1 ;;
    esac
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# one NAME SIZE SECONDS PORT_OFFSET -> "messages instructions"
one() {
    local out="$work/cg.out" port=$(($PORT + $4)) vpid msgs
    # shellcheck disable=SC2046
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$out" \
        $(server_cmd "$1" "$port") >"$work/server.log" 2>&1 &
    vpid=$!
    local deadline=$((SECONDS + 60))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || { echo "icount-ws.sh: $1 did not listen" >&2; kill $vpid; exit 1; }
        sleep 0.1
    done
    msgs=$("$BENCH_BIN/gale-load" ws --port "$port" --conns "$CONNS" --size "$2" \
        --duration "$3" --warmup 0 --json 2>/dev/null |
        python3 -c 'import json, sys; print(json.loads(sys.stdin.read())["msgs"])')
    # gale stops on SIGINT; the baselines end on SIGTERM (valgrind writes its counts either way).
    kill -INT $vpid
    for _ in $(seq 50); do kill -0 $vpid 2>/dev/null || break; sleep 0.1; done
    kill -TERM $vpid 2>/dev/null || true
    wait $vpid 2>/dev/null || true
    echo "$msgs $(awk '/^summary:/ {print $2}' "$out")"
}

printf '| size | server | instructions/msg |\n|---:|---|---:|\n'
for size in $SIZES; do
    for name in $ONLY; do
        read -r m1 i1 < <(one "$name" "$size" "$SHORT" 0)
        read -r m2 i2 < <(one "$name" "$size" "$LONG" 1)
        printf '| %s | %s | %d |\n' "$size" "$name" $(((i2 - i1) / (m2 - m1)))
    done
done
