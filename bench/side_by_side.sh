#!/usr/bin/env bash
# Two drisk binaries' scoring and ingestion throughput, side by side on a noisy machine:
#   bench/side_by_side.sh OLD_BINARY [N_SHIPMENTS] [DURATION] [ROUNDS]
#                                             (defaults 100000, 5s, 3; NEW=./build/drisk)
# Runs bench/run_server.sh for OLD and NEW in turn, ROUNDS times (the order flips every
# round, so neither always goes first), each with its own store (the schema may differ),
# at CONNS connections ("16 64"), one repeat each. Prints, per route and connection
# count, each binary's median req/s and the median of the paired ratios NEW / OLD.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=$1
N=${2:-100000}
DUR=${3:-5s}
ROUNDS=${4:-3}
NEW=${NEW:-./build/drisk}
OUT=${OUT:-bench/out/side_by_side}
mkdir -p "$OUT"
: > "$OUT/runs.txt"
for r in $(seq "$ROUNDS"); do
  order="old new"; [ $((r % 2)) -eq 0 ] && order="new old"
  for which in $order; do
    bin=$OLD; [ "$which" = new ] && bin=$NEW
    keep=1; [ "$r" -eq 1 ] && keep=
    echo "==> round $r: $which ($bin)" >&2
    KEEP=$keep DRISK=$bin OUT=$OUT/$which CONNS=${CONNS:-16 64} REPEAT=1 \
      bench/run_server.sh "$N" "$DUR" > "$OUT/$which.txt" 2>> "$OUT/log.txt"
    sed "s/^/$which $r /" "$OUT/$which/runs.txt" >> "$OUT/runs.txt"
  done
done
python3 - "$OUT/runs.txt" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    which, rnd, route, c, rep, js = line.split(" ", 5)
    runs.setdefault((route, int(c)), {}).setdefault(which, {})[int(rnd)] = json.loads(js)["rps"]
print("| route | connections | old req/s (median) | new req/s (median) | new / old (paired median) | rounds new/old |")
print("|---|---|---|---|---|---|")
for (route, c) in sorted(runs, key=lambda k: (k[0] != "healthz", k[0], k[1])):
    o, n = runs[(route, c)]["old"], runs[(route, c)]["new"]
    ratios = [n[r] / o[r] for r in sorted(o) if r in n]
    print(f"| {route} | {c} | {statistics.median(o.values()):,.0f} | {statistics.median(n.values()):,.0f} | "
          f"{statistics.median(ratios):.2f} | " + ", ".join(f"{x:.2f}" for x in ratios) + " |")
PY
