#!/usr/bin/env bash
# The cost of the store: the same work on SQLite and on PostgreSQL, side by side in one
# run, on a private PostgreSQL server (tests/pg/with_pg.sh, fsync on: commits durable as
# in production), issue 14's figures:
#   bench/run_store.sh [N_SHIPMENTS] [DURATION]      (defaults 100000, 5s)
# 1. Import of one simulated history's CSVs (drisk simulate --export): drisk import into
#    SQLite and into PostgreSQL (COPY through staging tables, idempotent), beside psql
#    \copy of the same CSVs into bare tables of text columns (the ceiling the issue names)
#    and \copy of the resolved scans into a table indexed like drisk's scans (the ceiling
#    with the idempotency key).
# 2. drisk train --target late on both stores.
# 3. The scoring server on both (bench/run_server.sh: /v1/score, /v1/scans at 16 and 64
#    connections, every acknowledged scan checked in the store).
# Figures on stdout (markdown); work files in bench/out/store.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DRISK_TEST_PG:-}" ]; then
  DRISK_PG_FSYNC=on DRISK_PG_OPTIONS="-c shared_buffers=512MB" exec tests/pg/with_pg.sh "$0" "$@"
fi
N=${1:-100000}
DUR=${2:-5s}
OUT=bench/out/store
DRISK=${DRISK:-./build/drisk}
PSQL="$DRISK_TEST_PG_BIN/psql"
mkdir -p "$OUT"
export PGOPTIONS="-c client_min_messages=warning"
pgdb() { "$PSQL" -q -h "$DRISK_TEST_PG" -U postgres -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
         echo "postgresql://postgres@/$1?host=$DRISK_TEST_PG"; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$@"; }
now() { date +%s.%N; }

echo "==> $N shipments to CSV" >&2
rm -rf "$OUT/csv" "$OUT/gen.db"
"$DRISK" simulate --db "$OUT/gen.db" --shipments "$N" --seed 11 --export "$OUT/csv" >&2
SHIPS=$(($(wc -l < "$OUT/csv/shipments.csv") - 1))
SCANS=$(($(wc -l < "$OUT/csv/scans.csv") - 1))
ROWS=$((SHIPS + SCANS))

echo "==> import" >&2
rm -f "$OUT"/imp.db*
t0=$(now); "$DRISK" import --db "$OUT/imp.db" --shipments "$OUT/csv/shipments.csv" --scans "$OUT/csv/scans.csv" >&2; t1=$(now)
T_SQLITE=$(secs "$t0" "$t1")
PG=$(pgdb drisk_imp)
t0=$(now); "$DRISK" import --db "$PG" --shipments "$OUT/csv/shipments.csv" --scans "$OUT/csv/scans.csv" >&2; t1=$(now)
T_PG=$(secs "$t0" "$t1")
BARE=$(pgdb bare)
"$PSQL" -q "$BARE" -c "CREATE TABLE s (shipment_id text, merchant_id text, order_id text, carrier text, service text,
  origin text, destination text, weight_kg text, declared_value text, created_at text, promised_at text,
  delivered_at text, outcome text); CREATE TABLE c (shipment_id text, merchant_id text, ts text, event text,
  location text, reason text, description text)"
t0=$(now); "$PSQL" -q "$BARE" -c "\\copy s from '$OUT/csv/shipments.csv' csv header" -c "\\copy c from '$OUT/csv/scans.csv' csv header"; t1=$(now)
T_BARE=$(secs "$t0" "$t1")
# the resolved scans into a table with drisk's scan keys (primary key, location index)
"$PSQL" -q "$PG" -c "\\copy (SELECT shipment_id, ts, event, location_id, reason, description FROM scans) to '$OUT/resolved.tsv'"
"$PSQL" -q "$PG" -c "CREATE TABLE scans_copy (LIKE scans INCLUDING INDEXES)"
t0=$(now); "$PSQL" -q "$PG" -c "\\copy scans_copy (shipment_id, ts, event, location_id, reason, description) from '$OUT/resolved.tsv'"; t1=$(now)
T_KEYED=$(secs "$t0" "$t1")
"$PSQL" -q "$PG" -c "DROP TABLE scans_copy"
python3 - "$ROWS" "$SCANS" "$T_SQLITE" "$T_PG" "$T_BARE" "$T_KEYED" <<'PY'
import sys
rows, scans = int(sys.argv[1]), int(sys.argv[2])
sq, pg, bare, keyed = map(float, sys.argv[3:7])
print(f"Import of {rows:,} rows ({scans:,} scans):\n")
print("| what | seconds | rows/s | vs psql \\copy into bare tables |")
print("|---|---|---|---|")
for name, t, n in (("drisk import, SQLite", sq, rows), ("drisk import, PostgreSQL", pg, rows),
                   ("psql \\copy, bare text tables (the ceiling)", bare, rows),
                   ("psql \\copy of the resolved scans into drisk's keyed scans table", keyed, scans)):
    print(f"| {name} | {t:.2f} | {n / t:,.0f} | {(n / t) / (rows / bare):.2f} |")
PY

echo "==> train late" >&2
UNTIL=$(python3 -c "import csv,sys; r=[row['created_at'] for row in csv.DictReader(open('$OUT/csv/shipments.csv'))]; r.sort(); print(r[int(len(r)*0.8)][:10])")
t0=$(now); "$DRISK" train --db "$OUT/imp.db" --target late --until "$UNTIL" --json > "$OUT/train_sqlite.json"; t1=$(now)
TR_SQLITE=$(secs "$t0" "$t1")
t0=$(now); "$DRISK" train --db "$PG" --target late --until "$UNTIL" --json > "$OUT/train_pg.json"; t1=$(now)
TR_PG=$(secs "$t0" "$t1")
echo
echo "| drisk train --target late --until $UNTIL | SQLite | PostgreSQL |"
echo "|---|---|---|"
echo "| seconds | $TR_SQLITE | $TR_PG |"
echo "| validation log loss | $(python3 -c "import json;print(json.load(open('$OUT/train_sqlite.json'))['validation']['log_loss'])") | $(python3 -c "import json;print(json.load(open('$OUT/train_pg.json'))['validation']['log_loss'])") |"

echo "==> serve" >&2
SRV=$(pgdb drisk_srv)
for store in sqlite pg; do
  db=$OUT/srv_$N.db; [ $store = pg ] && db=$SRV
  echo
  echo "Server on $store:"
  echo
  DB=$db DRISK=$DRISK OUT=$OUT/server_$store CONNS=${CONNS:-16 64} REPEAT=${REPEAT:-2} \
    bench/run_server.sh "$N" "$DUR"
done
