#!/usr/bin/env bash
# Load on the scoring server with wrk (a second process, loopback), issue 5's figures:
#   bench/run_server.sh [N_SHIPMENTS] [DURATION]     (defaults 100000, 10s; REPEAT=3)
# Builds a store with a simulated history of N shipments ending today, trains the late,
# lost and eta models (logreg / lognormal, trained before today - 30 days), creates a
# key, starts build/drisk serve (sweep off, access log off) and runs, at 1, 16, 64 and
# 256 connections: GET /healthz (the ceiling), POST /v1/score (one parcel inline, three
# scans) and POST /v1/scans (batches of 100 new scans, each for a different shipment of
# the IDS (200000) most recent of one merchant: spread wide, so the bench does not pile
# hundreds of scans on a few parcels, which real parcels never carry).
# Afterwards it checks that every acknowledged scan is in the store, and reports the
# server's peak RSS. Figures: bench/out/server/*.json, summary on stdout.
# KEEP=1 reuses the store (and its models) from an earlier run of the same N.
# DB=postgresql://... runs the same on a PostgreSQL store (bench/run_store.sh does, on a
# private server); the default is a SQLite file in OUT.
# DRISK picks the binary (default ./build/drisk), OUT the work folder (bench/out/server),
# CONNS the connection counts ("1 16 64 256"): two binaries side by side are two runs
# with their own OUT.
#   MEM=1 bench/run_server.sh 1000000    only the memory figure: the server's peak RSS
#                                         with N shipments in the store, after the load
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
DUR=${2:-10s}
OUT=${OUT:-bench/out/server}
PORT=${PORT:-18090}
DRISK=${DRISK:-./build/drisk}
mkdir -p "$OUT"

command -v wrk >/dev/null || {
  echo "==> installing wrk (Debian package)" >&2
  sudo=(); [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq wrk >&2
}
command -v sqlite3 >/dev/null || { echo "install the Debian package sqlite3" >&2; exit 1; }
case "${DB:-}" in postgres*://*) command -v psql >/dev/null ||
  { echo "install the Debian package postgresql-client" >&2; exit 1; } ;; esac
[ -x "$DRISK" ] || { echo "build first: ./drisk.sh test (or cmake --build build)" >&2; exit 1; }

DB=${DB:-$OUT/srv_$N.db}
case "$DB" in
  postgres*://*) q() { psql -qAt "$DB" -c "$1"; }
                 fresh() { [ -z "${KEEP:-}" ] || [ "$(q "SELECT count(*) FROM models" 2>/dev/null || echo 0)" -lt 3 ]; }
                 wipe() { q "DROP SCHEMA public CASCADE; CREATE SCHEMA public" >/dev/null; } ;;
  *) q() { sqlite3 "$DB" "$1"; }
     fresh() { [ ! -s "$DB" ] || [ -z "${KEEP:-}" ]; }
     wipe() { rm -f "$DB" "$DB"-wal "$DB"-shm; } ;;
esac
if fresh; then
  wipe
  START=$(date -u -d "-365 days" +%Y-%m-%d)
  UNTIL=$(date -u -d "-30 days" +%Y-%m-%d)
  echo "==> simulating $N shipments from $START to today" >&2
  "$DRISK" simulate --db "$DB" --shipments "$N" --seed 7 --start "$START" --days 365 >&2
  for t in late lost eta; do
    "$DRISK" train --db "$DB" --target $t --until "$UNTIL" >&2
  done
fi
KEY=$("$DRISK" keys --db "$DB" create --merchant acme-outdoor | tail -1)
q "SELECT s.shipment_key FROM shipments s JOIN merchants m ON m.id = s.merchant_id
   WHERE m.name = 'acme-outdoor' ORDER BY s.created_at DESC LIMIT ${IDS:-200000}" > "$OUT/ids.txt"

"$DRISK" serve --db "$DB" --listen 127.0.0.1:$PORT --access-log none --sweep 0 \
  2> "$OUT/serve.log" &
SRV=$!
trap 'kill $SRV 2>/dev/null || true' EXIT
for _ in $(seq 600); do
  curl -sf http://127.0.0.1:$PORT/healthz >/dev/null 2>&1 && break
  sleep 0.2
done
echo "==> server up (pid $SRV): $(grep -o 'replayed.*' "$OUT/serve.log")" >&2

scans() { q "SELECT count(*) FROM scans"; }
export DRISK_KEY=$KEY DRISK_IDS=$OUT/ids.txt DRISK_BATCH=100
REPEAT=${REPEAT:-3}
RUN=0
ACK=0
BEFORE=$(scans)
: > "$OUT/runs.txt"
# the routes alternate within each repeat, so the ceiling and the work share the same
# moments of a noisy machine; medians over the repeats
for c in ${CONNS:-1 16 64 256}; do
  for rep in $(seq "$REPEAT"); do
    for route in healthz score scans; do
      [ -n "${MEM:-}" ] && [ "$route" != scans ] && continue
      RUN=$((RUN + 1))
      t=2; [ "$c" -lt 2 ] && t=1
      DRISK_RUN=$RUN wrk -t$t -c$c -d"$DUR" --timeout 10s -s bench/wrk/$route.lua \
        http://127.0.0.1:$PORT > "$OUT/wrk.txt"
      line=$(tail -1 "$OUT/wrk.txt")
      echo "$route $c $rep $line" | tee -a "$OUT/runs.txt"
      if [ "$route" = scans ]; then
        ACK=$((ACK + $(echo "$line" | python3 -c "import json,sys;d=json.load(sys.stdin);print(d['requests']-d['non2xx'])") * 100))
      fi
    done
  done
done
python3 - "$OUT/runs.txt" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    route, c, rep, js = line.split(" ", 3)
    runs.setdefault((route, int(c)), []).append(json.loads(js))
print("| connections | route | req/s (median) | p50 ms | p99 ms | vs /healthz (paired runs, median) | runs (req/s) |")
print("|---|---|---|---|---|---|---|")
for c in sorted({k[1] for k in runs}):
    ceiling = runs.get(("healthz", c))
    for route in ("healthz", "score", "scans"):
        if (route, c) not in runs:
            continue
        rs = runs[(route, c)]
        rps = statistics.median(r["rps"] for r in rs)
        extra = f" ({rps * 100:,.0f} scans/s)" if route == "scans" else ""
        ratio = ""
        if ceiling and route != "scans":
            ratio = format(statistics.median(r["rps"] / h["rps"] for r, h in zip(rs, ceiling)), ".0%")
        print(f"| {c} | {route} | {rps:,.0f}{extra} | {statistics.median(r['p50_ms'] for r in rs):.2f} | "
              f"{statistics.median(r['p99_ms'] for r in rs):.2f} | {ratio} | "
              + ", ".join(format(r["rps"], ",.0f") for r in rs) + " |")
PY
AFTER=$(scans)
RSS=$(awk '/VmHWM/ {print $2}' /proc/$SRV/status)
ANON=$(awk '/RssAnon/ {print $2}' /proc/$SRV/status)
FILE=$(awk '/RssFile/ {print $2}' /proc/$SRV/status)
kill -TERM $SRV
wait $SRV || true
trap - EXIT
echo "scans acknowledged $ACK, scans added to the store $((AFTER - BEFORE)) (acknowledged ones missing: $((ACK > AFTER - BEFORE ? ACK - (AFTER - BEFORE) : 0)))"
echo "server peak RSS $((RSS / 1024)) MiB with $N shipments ($(scans) scans) in the store;" \
     "at the end $((ANON / 1024)) MiB private (heap, page caches) + $((FILE / 1024)) MiB of the mapped database file and libraries"
