#!/usr/bin/env bash
# drisk benchmarks (not timed tests): run by hand, results go into bench/RESULTS.md.
#   bench/run.sh sim    [N] [RUNS]  drisk simulate --shipments N (default 1,000,000): time, peak RSS, rates
#   bench/run.sh import [N] [RUNS]  drisk import of the N-shipment export vs sqlite3's .import
#                                   of the same scans.csv into a bare table (the ceiling),
#                                   alternating runs; medians
# Needs a Release build in build/ (./drisk.sh test or cmake). Work files go to bench/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
DRISK=./build/drisk
OUT=bench/out
mkdir -p "$OUT"
command -v /usr/bin/time >/dev/null || { echo "install the Debian package 'time'" >&2; exit 1; }

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# timed LABEL CMD...: runs CMD under /usr/bin/time, appends "label seconds maxrss_kb" to $OUT/times
timed() {
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$OUT/t.$$" "$@"
  echo "$label $(cat "$OUT/t.$$")" >> "$OUT/times"
  rm -f "$OUT/t.$$"
}

report() { # report LABEL ROWS
  local s m
  s=$(awk -v l="$1" '$1==l {print $2}' "$OUT/times" | median)
  m=$(awk -v l="$1" '$1==l {print $3}' "$OUT/times" | median)
  awk -v l="$1" -v s="$s" -v m="$m" -v n="$2" -v runs="$(awk -v l="$1" '$1==l {printf "%s ", $2}' "$OUT/times")" \
    'BEGIN {printf "%-14s median %7.2f s  %10.0f rows/s  peak RSS %6.0f MiB  (runs: %s)\n", l, s, n / s, m / 1024, runs}'

}

case "${1:-}" in
  sim)
    N=${2:-1000000}; RUNS=${3:-3}
    : > "$OUT/times"
    for r in $(seq "$RUNS"); do
      rm -f "$OUT/sim.db"*
      timed simulate "$DRISK" simulate --db "$OUT/sim.db" --shipments "$N" --seed 1 --json > "$OUT/sim.json"
    done
    echo "drisk simulate --shipments $N ($(nproc) cores, $(uname -m))"
    report simulate "$N"
    cat "$OUT/sim.json"
    "$DRISK" stats --db "$OUT/sim.db"
    ;;
  import)
    N=${2:-1000000}; RUNS=${3:-3}
    EX="$OUT/export_$N"
    if [ ! -s "$EX/scans.csv" ]; then
      mkdir -p "$EX"
      "$DRISK" simulate --db "$OUT/export.db" --shipments "$N" --seed 1 --export "$EX" > /dev/null
      rm -f "$OUT/export.db"*
    fi
    SCANS=$(($(wc -l < "$EX/scans.csv") - 1))
    : > "$OUT/times"
    for r in $(seq "$RUNS"); do
      rm -f "$OUT/imp.db"* "$OUT/bare.db"*
      timed drisk_ships "$DRISK" import --db "$OUT/imp.db" --shipments "$EX/shipments.csv" > /dev/null
      timed drisk_scans "$DRISK" import --db "$OUT/imp.db" --scans "$EX/scans.csv" --json > "$OUT/imp.json"
      sqlite3 "$OUT/bare.db" 'CREATE TABLE scans(shipment_id TEXT, merchant_id TEXT, ts TEXT, event TEXT,
                               location TEXT, reason TEXT, description TEXT)'
      timed sqlite3_import sqlite3 "$OUT/bare.db" ".import --csv --skip 1 $EX/scans.csv scans"
    done
    echo "import of $SCANS scan rows ($N shipments) ($(nproc) cores, $(uname -m))"
    report drisk_ships "$N"
    report drisk_scans "$SCANS"
    report sqlite3_import "$SCANS"
    d=$(awk '$1=="drisk_scans" {print $2}' "$OUT/times" | median)
    s=$(awk '$1=="sqlite3_import" {print $2}' "$OUT/times" | median)
    awk -v d="$d" -v s="$s" 'BEGIN {printf "drisk scan import speed / sqlite3 .import speed = %.2f\n", s / d}'
    cat "$OUT/imp.json"
    ;;
  *)
    sed -n '2,8p' "$0" >&2
    exit 2
    ;;
esac
