#!/usr/bin/env bash
# Several drisk serve nodes on one PostgreSQL, issue 14's figures, on a private server
# (tests/pg/with_pg.sh, fsync on):
#   bench/run_nodes.sh [N_SHIPMENTS] [DURATION]       (defaults 100000, 10s; REPEAT=3)
# Builds a store (a simulated history of N shipments ending today, late / lost / eta
# models), then, for 1, 2 and 3 nodes, runs wrk against every node at once, CONNS (48)
# connections divided between them (one wrk per node: two threads for one node, else one), POST /v1/score and POST /v1/scans (batches of 100
# new scans) alternating, REPEAT times; total requests/s, the worst node's p99, and every
# acknowledged scan checked in the store. Then the failure: three nodes under /v1/scans
# load, node 1 killed with kill -9 half-way; the others' errors and throughput, and every
# scan acknowledged by any node (the killed one included) checked in the store.
# Figures on stdout (markdown); work files in bench/out/nodes. DRISK picks the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DRISK_TEST_PG:-}" ]; then
  DRISK_PG_FSYNC=on DRISK_PG_OPTIONS="-c shared_buffers=512MB -c max_connections=400" \
    exec tests/pg/with_pg.sh "$0" "$@"
fi
N=${1:-100000}
DUR=${2:-10s}
REPEAT=${REPEAT:-3}
CONNS=${CONNS:-48}
OUT=bench/out/nodes
DRISK=${DRISK:-./build/drisk}
PSQL="$DRISK_TEST_PG_BIN/psql"
BASE_PORT=${PORT:-18190}
mkdir -p "$OUT"
command -v wrk >/dev/null || {
  sudo=(); [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq wrk >&2
}
export PGOPTIONS="-c client_min_messages=warning"
"$PSQL" -q -h "$DRISK_TEST_PG" -U postgres -d postgres -c "CREATE DATABASE nodes"
DB="postgresql://postgres@/nodes?host=$DRISK_TEST_PG"
q() { "$PSQL" -qAt "$DB" -c "$1"; }

START=$(date -u -d "-365 days" +%Y-%m-%d)
UNTIL=$(date -u -d "-30 days" +%Y-%m-%d)
echo "==> simulating $N shipments from $START to today, training" >&2
"$DRISK" simulate --db "$DB" --shipments "$N" --seed 7 --start "$START" --days 365 >&2
for t in late lost eta; do "$DRISK" train --db "$DB" --target $t --until "$UNTIL" >&2; done
"$DRISK" checkpoint --db "$DB" >&2
KEY=$("$DRISK" keys --db "$DB" create --merchant acme-outdoor | tail -1)
q "SELECT s.shipment_key FROM shipments s JOIN merchants m ON m.id = s.merchant_id
   WHERE m.name = 'acme-outdoor' ORDER BY s.created_at DESC LIMIT 200000" > "$OUT/ids.txt"
export DRISK_KEY=$KEY DRISK_IDS=$OUT/ids.txt DRISK_BATCH=100

PIDS=()
start_nodes() { # k: nodes on BASE_PORT .. BASE_PORT + k - 1, the sweep on (60 s)
  PIDS=()
  for i in $(seq 0 $(($1 - 1))); do
    "$DRISK" serve --db "$DB" --listen 127.0.0.1:$((BASE_PORT + i)) --access-log none \
      --sweep 60 2> "$OUT/serve_$1_$i.log" &
    PIDS+=($!)
  done
  for i in $(seq 0 $(($1 - 1))); do
    for _ in $(seq 600); do
      curl -sf http://127.0.0.1:$((BASE_PORT + i))/healthz >/dev/null 2>&1 && break
      sleep 0.2
    done
  done
}
stop_nodes() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap 'stop_nodes' EXIT
# load k nodes at once: route, k, tag; one wrk per node, CONNS / k connections each;
# its JSON line per node into $OUT/load_<tag>_<i>.json
RUN=0
load() {
  local route=$1 k=$2 tag=$3 c=$((CONNS / $2)) ws=() t=1
  [ "$k" -eq 1 ] && t=2 # two load threads at least, as bench/run_server.sh
  for i in $(seq 0 $((k - 1))); do
    RUN=$((RUN + 1))
    DRISK_RUN=$RUN DRISK_OFFSET=$((i * 60013)) wrk -t$t -c$c -d"$DUR" --timeout 10s -s bench/wrk/$route.lua \
      http://127.0.0.1:$((BASE_PORT + i)) > "$OUT/wrk_${tag}_$i.txt" &
    ws+=($!)
  done
  for w in "${ws[@]}"; do wait "$w" || true; done
  for i in $(seq 0 $((k - 1))); do tail -1 "$OUT/wrk_${tag}_$i.txt" > "$OUT/load_${tag}_$i.json"; done
}
acked() { # scans acknowledged in the load files given
  python3 -c "import json,sys; print(sum((json.load(open(f))['requests'] - json.load(open(f))['non2xx']) * 100 for f in sys.argv[1:]))" "$@"
}

: > "$OUT/runs.txt"
for k in 1 2 3; do
  echo "==> $k node(s)" >&2
  start_nodes $k
  before=$(q "SELECT count(*) FROM scans")
  files=()
  for rep in $(seq "$REPEAT"); do
    for route in score scans; do
      load $route $k "${k}_${route}_$rep"
      python3 - "$route" "$k" "$rep" "$OUT"/load_${k}_${route}_${rep}_*.json >> "$OUT/runs.txt" <<'PY'
import json, sys
route, k, rep, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
ds = [json.load(open(f)) for f in files]
print(json.dumps({"route": route, "nodes": k, "rep": rep, "rps": sum(d["rps"] for d in ds),
                  "p99_ms": max(d["p99_ms"] for d in ds), "p50_ms": max(d["p50_ms"] for d in ds),
                  "non2xx": sum(d["non2xx"] for d in ds), "errors": sum(d["socket_errors"] for d in ds),
                  "per_node": [round(d["rps"]) for d in ds]}))
PY
      [ $route = scans ] && files+=("$OUT"/load_${k}_scans_${rep}_*.json)
    done
  done
  followed=$(for i in $(seq 0 $((k - 1))); do curl -s http://127.0.0.1:$((BASE_PORT + i))/metrics | awk '/^drisk_followed_entries_total/ {print $2}'; done | awk '{s += $1} END {print s + 0}')
  stop_nodes
  after=$(q "SELECT count(*) FROM scans")
  ack=$(acked "${files[@]}")
  echo "{\"check\": 1, \"nodes\": $k, \"acked\": $ack, \"stored\": $((after - before)), \"followed\": $followed}" >> "$OUT/runs.txt"
done

echo "==> kill -9 of one node of three under /v1/scans load" >&2
start_nodes 3
before=$(q "SELECT count(*) FROM scans")
RUN=$((RUN + 1)); KR=$RUN
( load scans 3 kill ) &
LOADER=$!
DSECS=${DUR%s}
sleep $((DSECS / 2))
kill -9 "${PIDS[0]}"
KILLED_AT=$(date +%s.%N)
wait $LOADER || true
wait "${PIDS[0]}" 2>/dev/null || true
PIDS=("${PIDS[@]:1}")
# the survivors still answer both routes
SURV=$(for i in 1 2; do curl -s -o /dev/null -w '%{http_code} ' -X POST -H "Authorization: Bearer $KEY" \
  -H 'Content-Type: application/json' http://127.0.0.1:$((BASE_PORT + i))/v1/score \
  -d '{"carrier":"apex","service":"ground","origin":"R01","destination":"R05","created_at":"2026-01-01T00:00:00Z"}'; done)
stop_nodes
after=$(q "SELECT count(*) FROM scans")
echo "{\"kill\": 1, \"acked\": $(acked "$OUT"/load_kill_*.json), \"stored\": $((after - before)), \"survivors_score\": \"$SURV\"}" >> "$OUT/runs.txt"
trap - EXIT

python3 - "$OUT" <<'PY'
import json, statistics, sys, glob, os
out = sys.argv[1]
rows = [json.loads(l) for l in open(os.path.join(out, "runs.txt"))]
print("| nodes | route | req/s, all nodes (median) | worst node's p99 ms (median) | non-2xx | socket errors | runs (req/s) |")
print("|---|---|---|---|---|---|---|")
for k in (1, 2, 3):
    for route in ("score", "scans"):
        rs = [r for r in rows if r.get("route") == route and r.get("nodes") == k]
        if not rs:
            continue
        rps = statistics.median(r["rps"] for r in rs)
        extra = f" ({rps * 100:,.0f} scans/s)" if route == "scans" else ""
        print(f"| {k} | {route} | {rps:,.0f}{extra} | {statistics.median(r['p99_ms'] for r in rs):.1f} | "
              f"{sum(r['non2xx'] for r in rs)} | {sum(r['errors'] for r in rs)} | "
              + ", ".join(format(r["rps"], ",.0f") for r in rs) + " |")
print()
for r in rows:
    if r.get("check"):
        print(f"- {r['nodes']} node(s): scans acknowledged {r['acked']:,}, added to the store {r['stored']:,} "
              f"(acknowledged ones missing: {max(0, r['acked'] - r['stored'])}); "
              f"log entries the nodes followed from each other: {r['followed']:,}")
for r in rows:
    if r.get("kill"):
        ds = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(out, "load_kill_*.json")))]
        print(f"- kill -9 of node 1 of 3 half-way through {len(ds)} concurrent /v1/scans loads: "
              + "; ".join(f"node {i + 1}: {d['requests']:,} answered ({d['rps']:,.0f}/s), {d['non2xx']} non-2xx, "
                          f"{d['socket_errors']} socket errors" for i, d in enumerate(ds))
              + f". Scans acknowledged by all three {r['acked']:,}, added to the store {r['stored']:,} "
              f"(acknowledged ones missing: {max(0, r['acked'] - r['stored'])}); the survivors' "
              f"/v1/score afterwards: {r['survivors_score'].strip()}")
PY
