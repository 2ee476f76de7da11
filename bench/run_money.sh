#!/usr/bin/env bash
# The claim policy backtested in money (docs/REPORT.md) for the default model, beside
# always waiting, the naive rules and an oracle: a simulated history (base scenario,
# 100,000 shipments over two years, train before 2025-05-26, late and lost) and Olist
# (train before 2018-01-01, late). Prints one line per case and writes the eval JSON
# under OUT (default bench/out/money).
#   bench/run_money.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DRISK=${DRISK:-build/drisk}
OUT=${OUT:-bench/out/money}
mkdir -p "$OUT"
summary() { # case target json
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
case, target, path = sys.argv[1:]
j = json.load(open(path))
m = j["money"]; p = m["per_1000_shipments"]
acted = ", ".join(f"{k} {v}" for k, v in m["actions"].items() if k != "wait" and v)
print(f"| {case} | {target} | {m['shipments']} | {m['late']} | {m['lost']} | {p['model_policy']:.0f} | "
      f"{p['always_wait']:.0f} | {p['naive_rule']:.0f} | {p['oracle']:.0f} | "
      f"{p['always_wait'] - p['model_policy']:.0f} | {p['naive_rule'] - p['model_policy']:.0f} | {acted} |")
PY
}
SIM=$OUT/base.db
if [ ! -f "$SIM" ]; then
  "$DRISK" --quiet simulate --db "$SIM" --shipments 100000 --seed 1 --start 2024-01-01 --days 730
fi
for t in late lost; do
  "$DRISK" --quiet train --db "$SIM" --target "$t" --until 2025-05-26 --activate >/dev/null 2>&1
  "$DRISK" --quiet eval --db "$SIM" --target "$t" --from 2025-05-26 --json >"$OUT/base_$t.json" 2>/dev/null
done
OL=$OUT/olist.db
if [ ! -f "$OL" ]; then
  "$DRISK" --quiet import --db "$OL" --shipments ../shared/datasets/olist/shipments.csv \
    --scans ../shared/datasets/olist/scans.csv >/dev/null
fi
"$DRISK" --quiet train --db "$OL" --target late --until 2018-01-01 --activate >/dev/null 2>&1
"$DRISK" --quiet eval --db "$OL" --target late --from 2018-01-01 --json >"$OUT/olist_late.json" 2>/dev/null
echo "| history | target | shipments | late | lost | policy on drisk | always wait | naive rule | oracle | saved vs wait | saved vs naive | acted |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
summary "simulated base" late "$OUT/base_late.json"
summary "simulated base" lost "$OUT/base_lost.json"
summary "Olist" late "$OUT/olist_late.json"
