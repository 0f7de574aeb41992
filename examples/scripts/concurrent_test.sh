#!/usr/bin/env bash
# GSEAsyncServer's concurrent_test.sh for gale's async-server: fires N requests at once with
# curl, waits for every answer, then prints them in order.
#
#   cargo run --release --example async-server -- --port 8080 &
#   bash examples/scripts/concurrent_test.sh 30                  # 127.0.0.1:8080
#   bash examples/scripts/concurrent_test.sh 500 127.0.0.1:8080
#
# Each answer is printed as "try I ..." then the body and the HTTP status, as GSEAsyncServer's
# script printed them. With more requests than --work-channel-len + --max-waiting, or a
# --demo-work-ms longer than --process-max-timeout, some answers are 503s.
set -euo pipefail

n=${1:?usage: $0 N [HOST:PORT]}
addr=${2:-127.0.0.1:8080}
url="http://$addr/task/v1/message"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

start=$(date +%s.%N)
for i in $(seq 1 "$n"); do
  curl -sS --max-time 120 -o "$dir/$i.body" -w '%{http_code}' \
    -H 'Content-Type: application/json' \
    -d "{\"msg\":\"test message $i\"}" "$url" >"$dir/$i.code" 2>"$dir/$i.err" &
done
wait
end=$(date +%s.%N)

ok=0
for i in $(seq 1 "$n"); do
  echo "try $i ..."
  code=$(cat "$dir/$i.code" 2>/dev/null || true)
  if [ -s "$dir/$i.body" ]; then
    tr -d '\n' <"$dir/$i.body"
    echo " [$code]"
  else
    echo "no answer [$code] $(cat "$dir/$i.err")"
  fi
  [ "$code" = 200 ] && ok=$((ok + 1))
done
awk -v ok="$ok" -v n="$n" -v s="$start" -v e="$end" 'BEGIN { printf "%d of %d answered 200 in %.2f s\n", ok, n, e - s }'
