#!/usr/bin/env bash
# Start-up of drisk serve: the time from launch to the first answered request, with the
# whole history replayed (no checkpoint) and from a checkpoint (drisk checkpoint), on
# SQLite and on PostgreSQL (a private server: tests/pg/with_pg.sh, fsync on), at each
# history size given (issue 14):
#   bench/run_startup.sh [N_SHIPMENTS ...]      (default: 100000 1000000)
# Each history ends today and spans DAYS days (365): 1M shipments is ten times the daily
# volume of 100k, so what the checkpoint removes is the history before the shipments
# still alive; LONG=1 adds 1M shipments over ten years (the 100k daily volume, ten times
# the length). The PostgreSQL store is loaded with drisk import from the SQLite
# history's export. Median of REPEAT (3) starts each. Figures on stdout (markdown).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DRISK_TEST_PG:-}" ]; then
  DRISK_PG_FSYNC=on DRISK_PG_OPTIONS="-c shared_buffers=512MB" exec tests/pg/with_pg.sh "$0" "$@"
fi
SIZES=${*:-100000 1000000}
DAYS=${DAYS:-365}
REPEAT=${REPEAT:-3}
OUT=bench/out/startup
DRISK=${DRISK:-./build/drisk}
PORT=${PORT:-18190}
PSQL="$DRISK_TEST_PG_BIN/psql"
export PGOPTIONS="-c client_min_messages=warning"
mkdir -p "$OUT"

# seconds from launch to the first 200 of /healthz
start_once() {
  local db=$1 t0 t1
  t0=$(date +%s.%N)
  "$DRISK" serve --db "$db" --listen 127.0.0.1:$PORT --sweep 0 --access-log none 2>> "$OUT/serve.log" &
  local pid=$!
  until curl -sf http://127.0.0.1:$PORT/healthz >/dev/null 2>&1; do
    kill -0 $pid 2>/dev/null || { echo "drisk serve died: see $OUT/serve.log" >&2; exit 1; }
    sleep 0.02
  done
  t1=$(date +%s.%N)
  kill -TERM $pid; wait $pid || true
  python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$t0" "$t1"
}
median_start() {
  local runs=() i
  for i in $(seq "$REPEAT"); do runs+=("$(start_once "$1")"); done
  python3 -c "import statistics,sys; r=[float(x) for x in sys.argv[1:]]; print(f'{statistics.median(r):.2f} ({\", \".join(sys.argv[1:])})')" "${runs[@]}"
}

cases=()
for n in $SIZES; do cases+=("$n:$DAYS"); done
[ -n "${LONG:-}" ] && cases+=("1000000:3650")
echo "| shipments | days | store | start, whole history (s) | drisk checkpoint (s) | start from the checkpoint (s) | checkpoint bytes |"
echo "|---|---|---|---|---|---|---|"
for c in "${cases[@]}"; do
  n=${c%%:*}; days=${c##*:}
  lite=$OUT/h_${n}_${days}.db
  start=$(date -u -d "-$days days" +%Y-%m-%d)
  if [ ! -s "$lite" ] || [ -z "${KEEP:-}" ]; then
    rm -rf "$lite" "$lite"-wal "$lite"-shm "$OUT/csv_${n}_${days}"
    echo "==> $n shipments over $days days" >&2
    "$DRISK" simulate --db "$lite" --shipments "$n" --seed 5 --start "$start" --days "$days" \
      --export "$OUT/csv_${n}_${days}" >&2
  fi
  pgname=h_${n}_${days}
  "$PSQL" -q -h "$DRISK_TEST_PG" -U postgres -d postgres -c "DROP DATABASE IF EXISTS $pgname" -c "CREATE DATABASE $pgname"
  pg="postgresql://postgres@/$pgname?host=$DRISK_TEST_PG"
  echo "==> loading PostgreSQL" >&2
  "$DRISK" import --db "$pg" --shipments "$OUT/csv_${n}_${days}/shipments.csv" \
    --scans "$OUT/csv_${n}_${days}/scans.csv" >&2
  for store in sqlite postgresql; do
    db=$lite; [ $store = postgresql ] && db=$pg
    case $store in
      sqlite) sqlite3 "$db" "DELETE FROM network_checkpoints" ;;
      *) "$PSQL" -q "$db" -c "DELETE FROM network_checkpoints" ;;
    esac
    before=$(median_start "$db")
    t0=$(date +%s.%N)
    bytes=$("$DRISK" checkpoint --db "$db" --rebuild --json | python3 -c "import json,sys; print(json.load(sys.stdin)['bytes'])")
    t1=$(date +%s.%N)
    cp=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$t0" "$t1")
    after=$(median_start "$db")
    echo "| $n | $days | $store | $before | $cp | $after | $bytes |"
  done
done
