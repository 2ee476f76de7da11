#!/usr/bin/env bash
# 1,100 connections dripping request headers a byte a second from 127.0.0.2 while a
# well-behaved client on 127.0.0.1 asks /healthz: the server must keep answering it
# (p99 <= 50 ms, no failure), and its header deadline must cut the slow ones.
set -u
DRISK=$1 SCRIPT=$2 SCRATCH=$3
mkdir -p "$SCRATCH"
DB=$SCRATCH/slow.db
rm -f "$DB" "$DB"-wal "$DB"-shm
"$DRISK" simulate --db "$DB" --shipments 500 --seed 3 2>/dev/null || { echo "FAIL: simulate"; exit 1; }
LOG=$SCRATCH/serve.log
"$DRISK" serve --db "$DB" --listen 127.0.0.1:0 --access-log none --sweep 0 --header-timeout 2 2> "$LOG" &
SRV=$!
trap 'kill $SRV 2>/dev/null; wait $SRV 2>/dev/null' EXIT
PORT=
for _ in $(seq 100); do
  PORT=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$LOG" | grep -o '[0-9]*$')
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "$PORT" ] || { echo "FAIL: no port in $(cat "$LOG")"; exit 1; }
OUT=$(python3 "$SCRIPT" --port "$PORT" --connections 1100 --warmup 3 --seconds 6)
echo "$OUT"
python3 - "$OUT" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
bad = []
if r["probe_failures"] != 0 or r["p99_ms"] is None or r["p99_ms"] > 50:
    bad.append(f"healthz under attack: {r['probe_failures']} failures, p99 {r['p99_ms']} ms (want 0, <= 50)")
if r.get("server_header_timeouts", 0) < 1:
    bad.append("no connection was cut at the header deadline")
print("\n".join("FAIL: " + b for b in bad) or "slow_clients: ok")
sys.exit(1 if bad else 0)
PY
