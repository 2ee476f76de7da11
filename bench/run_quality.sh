#!/usr/bin/env bash
# Quality and training-speed baselines on drisk's exported snapshots (issue 3, "What it must show").
#   bench/run_quality.sh [sim|olist|speed|matrix|all]   (default all)
# sim:   300,000-shipment simulated history over two years (seed 1, 2024-01-01 + 730 days);
#        train before 2025-05-26 (the first 70% of the time, one peak season included), test
#        from then on; late, lost, eta. (With one year, the first 70% holds no peak season
#        and every model is miscalibrated on the test's November and December.)
# olist: the Olist sample imported into its own store; train before 2018-01-01, test after;
#        late and eta (every Olist order was delivered: lost has no positives to learn).
# speed: scikit-learn LogisticRegression(lbfgs) on the largest train matrix (sim late, ~2.25M rows).
# Each table compares XGBoost (hist) and scikit-learn on the same files (bench/compare.py)
# with drisk's rows: logreg, svm_linear, svm_rbf, mlp, gbdt and auto (lognormal, mlp, auto
# for eta).
# matrix: the quality matrix (bench/matrix.py has the rows and every column's definition):
#        for each cell of CELLS (default "base many-places few-carriers drift sparse-scans
#        olist"; the first five are `drisk simulate --scenario NAME`, base without the flag)
#        MATRIX_SHIPMENTS shipments (default 100000, seed 1, 2024-01-01 + 730 days, split
#        2025-05-26; Olist as above), exported late / lost / eta train and test (Olist: late,
#        eta); drisk's default learner (`drisk train` without --model, or each of
#        MATRIX_MODEL="gbdt mlp ...", for eta MATRIX_ETA_MODEL if set, else the same)
#        trained and scored with `drisk eval --predictions`, and the same model walked
#        forward with `eval --recalibrate-every MATRIX_RECAL` (default 7 days; 0 skips);
#        XGBoost on the same files with the raw identities (carrier, service, origin,
#        destination, lane, merchant, current and previous facility) taken from the
#        interchange CSVs (`simulate --export`; Olist's own), encoded both as pandas
#        category columns (enable_categorical=True) and as integer codes, the encoding
#        with the lower validation loss kept (MATRIX_IDS_ENCODING=category or codes fits
#        only that one); plain XGBoost too (MATRIX_PLAIN=0 skips it). Work files in
#        bench/out/quality/matrix/CELL/, one table per cell plus the summary in
#        bench/out/quality/matrix.md and matrix.json, wall time of every step in
#        matrix/times.md. KEEP=1 reuses stores and exports made with the same settings (a
#        different MATRIX_SHIPMENTS rebuilds) and the XGBoost predictions of unchanged files
#        (XGB_REFIT=1 refits); drisk is always retrained. A scenario this drisk's simulate
#        does not know is skipped with a message. MATRIX_TARGETS (default "late lost eta")
#        runs only those targets, e.g. KEEP=1 MATRIX_TARGETS=eta after a change to eta alone.
#        MATRIX_SEED (default 1) simulates the cells with another seed: another seed is
#        another world (places, lanes, factors, merchants), so with a seed no setting was
#        chosen on, the matrix is a held-out check; work files in matrix-seedN/ and the
#        summary in matrix-seedN.md (seed 1 keeps matrix/ and matrix.md).
# DRISK (default ./build/drisk) picks the binary, e.g. DRISK=./build-bench/drisk.
# Needs a Release build in build/ and: apt-get install -y python3-xgboost python3-sklearn
# python3-pandas time. Work files and results go to bench/out/quality/ (tables.md, *.json).
# KEEP=1 reuses stores and exports already there (with DRISK_MODELS="mlp auto": only those
# rows are trained again, the other families' predictions are reused); NO_DRISK=1 skips
# drisk's own rows. BENCH_JOBS=1 runs the baselines on 1 thread.
set -euo pipefail
cd "$(dirname "$0")/.."
DRISK=${DRISK:-./build/drisk}
PY=/usr/bin/python3          # Debian's python, where python3-xgboost / -sklearn live
OUT=bench/out/quality
SIM_SPLIT=2025-05-26
OLIST_SPLIT=2018-01-01
OLIST=${OLIST:-../shared/datasets/olist}
mkdir -p "$OUT"
export OPENBLAS_NUM_THREADS=${BENCH_JOBS:-2} OMP_NUM_THREADS=${BENCH_JOBS:-2}

log() { echo "== $*" >&2; }

# export_pair DB TARGET SPLIT PREFIX: PREFIX_TARGET_{train,test}.csv
export_pair() {
  local db=$1 t=$2 split=$3 p=$4
  if [ "${KEEP:-0}" = 1 ] && [ -s "$OUT/${p}_${t}_test.csv" ]; then return; fi
  nice "$DRISK" export --db "$db" --target "$t" --until "$split" --out "$OUT/${p}_${t}_train.csv"
  nice "$DRISK" export --db "$db" --target "$t" --from "$split" --out "$OUT/${p}_${t}_test.csv"
}

# drisk_predictions DB TARGET SPLIT PREFIX: drisk's own rows, one per learner family (and
# --model auto): trains on the same window, writes the test predictions and echoes
# "--predictions drisk-MODEL=FILE" for compare.py (same rows, same metric code as the
# baselines). Training wall time and peak RSS (snapshot building included) go to
# $OUT/PREFIX_TARGET_MODEL_train.time and one line each in $OUT/train_times.md.
# DRISK_MODELS overrides the families (e.g. DRISK_MODELS="logreg mlp").
drisk_predictions() {
  local db=$1 t=$2 split=$3 p=$4 id m models
  [ "${NO_DRISK:-0}" = 1 ] && return 0
  if [ "$t" = eta ]; then models=${DRISK_MODELS:-lognormal mlp auto}
  else models=${DRISK_MODELS:-logreg svm_linear svm_rbf mlp gbdt auto}; fi
  for m in $models; do
    [ "$t" = eta ] && case $m in svm_*|logreg|gbdt) continue ;; esac
    [ "$t" != eta ] && [ "$m" = lognormal ] && continue
    local f="$OUT/${p}_${t}_${m}"
    if nice /usr/bin/time -f "%e s %M KB" -o "${f}_train.time" \
         "$DRISK" train --db "$db" --target "$t" --model "$m" --until "$split" --json > "${f}_train.json" &&
       id=$($PY -c 'import json,sys; print(json.load(sys.stdin)["model_id"])' < "${f}_train.json") &&
       nice "$DRISK" eval --db "$db" --target "$t" --model "$id" --from "$split" --json \
         --predictions "${f}_pred.csv" > "${f}_eval.json"; then
      echo "| $p | $t | $m | $(cat "${f}_train.time") |" >> "$OUT/train_times.md"
      echo "--predictions drisk-$m=${f}_pred.csv"
    else
      log "drisk train/eval --model $m failed for $p $t: table without its row"
    fi
  done
  # KEEP=1 with DRISK_MODELS: the other families' predictions from the last run stay in
  # the table (their code unchanged, fits deterministic)
  if [ "${KEEP:-0}" = 1 ] && [ -n "${DRISK_MODELS:-}" ]; then
    local all="logreg svm_linear svm_rbf mlp gbdt auto"
    [ "$t" = eta ] && all="lognormal mlp auto"
    for m in $all; do
      case " $models " in *" $m "*) continue ;; esac
      [ -s "$OUT/${p}_${t}_${m}_pred.csv" ] && echo "--predictions drisk-$m=$OUT/${p}_${t}_${m}_pred.csv"
    done
  fi
  return 0
}

# compare DB TARGET SPLIT PREFIX TITLE: one table, appended to tables.md
compare() {
  local db=$1 t=$2 split=$3 p=$4 title=$5 extra
  extra=$(drisk_predictions "$db" "$t" "$split" "$p" | tr '\n' ' ')
  log "$title"
  # shellcheck disable=SC2086
  nice $PY bench/compare.py --target "$t" --until "$split" --title "$title" $extra \
    --json "$OUT/${p}_${t}.json" "$OUT/${p}_${t}_train.csv" "$OUT/${p}_${t}_test.csv" \
    | tee -a "$OUT/tables.md"
}

run_sim() {
  local db=$OUT/sim300k.db t
  if [ "${KEEP:-0}" != 1 ] || [ ! -s "$db" ]; then
    rm -f "$db" "$db"-wal "$db"-shm
    nice "$DRISK" simulate --db "$db" --shipments 300000 --seed 1 --start 2024-01-01 --days 730 \
      --json > "$OUT/sim300k.json"
  fi
  for t in late lost eta; do
    export_pair "$db" "$t" "$SIM_SPLIT" sim
    compare "$db" "$t" "$SIM_SPLIT" sim "simulated 300k, $t (train < $SIM_SPLIT, test >= $SIM_SPLIT)"
  done
}

run_olist() {
  local db=$OUT/olist.db t
  if [ "${KEEP:-0}" != 1 ] || [ ! -s "$db" ]; then
    rm -f "$db" "$db"-wal "$db"-shm
    "$DRISK" import --db "$db" --shipments "$OLIST/shipments.csv" --scans "$OLIST/scans.csv" --json > "$OUT/olist_import.json"
  fi
  for t in late eta; do
    export_pair "$db" "$t" "$OLIST_SPLIT" olist
    compare "$db" "$t" "$OLIST_SPLIT" olist "Olist, $t (train < $OLIST_SPLIT, test >= $OLIST_SPLIT)"
  done
  echo "Olist, lost: not evaluated; every Olist order in the sample was delivered (no positives)." \
    | tee -a "$OUT/tables.md"
}

run_speed() {
  local db=$OUT/sim300k.db
  export_pair "$db" late "$SIM_SPLIT" sim
  log "sklearn LogisticRegression(lbfgs) on $OUT/sim_late_train.csv"
  nice $PY bench/speed_logreg.py "$OUT/sim_late_train.csv" --until "$SIM_SPLIT" \
    --C 0.01,0.1,1,10 --json "$OUT/speed_sklearn.json" 2>&1 | tee -a "$OUT/speed.txt"
  # drisk's side, once `drisk train` exists: the same window under /usr/bin/time, e.g.
  #   /usr/bin/time -f "%e s %M KB" $DRISK train --db $db --target late --until $SIM_SPLIT --json
  # (training reads the store, not the CSV: its time includes building the snapshots).
}

# ---- quality matrix ----
MATRIX_SEED=${MATRIX_SEED:-1}
MNAME=matrix; [ "$MATRIX_SEED" != 1 ] && MNAME=matrix-seed$MATRIX_SEED
MOUT=$OUT/$MNAME
MATRIX_SHIPMENTS=${MATRIX_SHIPMENTS:-100000}
MATRIX_CELLS="base many-places few-carriers drift sparse-scans olist"

# step CELL NAME CMD...: runs CMD and adds its wall seconds to $MOUT/times.md
step() {
  local c=$1 n=$2 t0 rc=0; shift 2
  t0=$(date +%s.%N)
  "$@" || rc=$?
  echo "| $c | $n | $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') | ${rc/#0/ok} |" \
    >> "$MOUT/times.md"
  return $rc
}

# matrix_store CELL DIR: DIR/store.db (and for simulated cells DIR/interchange/); 1 if the
# cell cannot be built with this drisk
matrix_store() {
  local c=$1 d=$2 stamp
  if [ "$c" = olist ]; then
    stamp="import $OLIST"
  else
    stamp="simulate --shipments $MATRIX_SHIPMENTS --seed $MATRIX_SEED --start 2024-01-01 --days 730"
    if [ "$c" != base ]; then
      local help; help=$("$DRISK" simulate --help 2>&1 || true)
      if ! grep -q -- --scenario <<< "$help"; then
        log "matrix $c: this drisk's simulate has no --scenario; cell skipped"
        return 1
      fi
      stamp="$stamp --scenario $c"
    fi
  fi
  if [ "${KEEP:-0}" = 1 ] && [ -s "$d/store.db" ] && [ "$(cat "$d/stamp" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  rm -rf "$d" && mkdir -p "$d"
  if [ "$c" = olist ]; then
    # shellcheck disable=SC2086
    step "$c" import nice "$DRISK" import --db "$d/store.db" --shipments "$OLIST/shipments.csv" \
      --scans "$OLIST/scans.csv" --json > "$d/import.json" || return 1
  else
    # shellcheck disable=SC2086
    step "$c" simulate nice "$DRISK" ${stamp%% *} --db "$d/store.db" ${stamp#simulate } \
      --export "$d/interchange" --json > "$d/simulate.json" || { log "matrix $c: simulate failed"; return 1; }
  fi
  echo "$stamp" > "$d/stamp"
}

# matrix_drisk CELL DIR TARGET SPLIT: trains and scores drisk's rows, echoes --drisk args
matrix_drisk() {
  local c=$1 d=$2 t=$3 split=$4 m f id name models=${MATRIX_MODEL:-}
  [ "$t" = eta ] && models=${MATRIX_ETA_MODEL-$models}
  for m in ${models:-default}; do
    f="$d/drisk_${t}_$m"
    name=drisk; [ "$m" != default ] && name="drisk-$m"
    rm -f "${f}"_*
    local model_arg=(); [ "$m" != default ] && model_arg=(--model "$m")
    if step "$c" "drisk train $t ${m}" nice /usr/bin/time -f "%e s %M KB" -o "${f}_train.time" \
         "$DRISK" train --db "$d/store.db" --target "$t" "${model_arg[@]}" --until "$split" --json \
         > "${f}_train.json" &&
       id=$($PY -c 'import json,sys; print(json.load(sys.stdin)["model_id"])' < "${f}_train.json") &&
       step "$c" "drisk eval $t ${m}" nice "$DRISK" eval --db "$d/store.db" --target "$t" \
         --model "$id" --from "$split" --json --predictions "${f}_pred.csv" > "${f}_eval.json"; then
      echo "--drisk $name=$f"
      # the same model walked forward with its calibration refitted every MATRIX_RECAL days
      # on the labels known by then (drisk recalibrate's rule; 0 skips)
      if [ "${MATRIX_RECAL:-7}" != 0 ] &&
         step "$c" "drisk eval $t ${m} recal" nice "$DRISK" eval --db "$d/store.db" --target "$t" \
           --model "$id" --from "$split" --recalibrate-every "${MATRIX_RECAL:-7}" --json \
           --predictions "${f}_recal_pred.csv" > "${f}_recal_eval.json"; then
        cp "${f}_train.json" "${f}_recal_train.json"
        cp "${f}_train.time" "${f}_recal_train.time"
        echo "--drisk $name-recal${MATRIX_RECAL:-7}=${f}_recal"
      fi
    else
      log "matrix $c: drisk train/eval ${m} failed for $t: table without its row"
    fi
  done
  return 0
}

matrix_cell() {
  local c=$1 d=$MOUT/$1 split targets ships scans n t extra reuse=()
  matrix_store "$c" "$d" || return 0
  if [ "$c" = olist ]; then
    split=$OLIST_SPLIT targets="late eta" ships=$OLIST/shipments.csv scans=$OLIST/scans.csv
  else
    split=$SIM_SPLIT targets="late lost eta" ships=$d/interchange/shipments.csv scans=$d/interchange/scans.csv
  fi
  n=$(($(wc -l < "$ships") - 1))
  [ "${KEEP:-0}" = 1 ] && [ "${XGB_REFIT:-0}" != 1 ] && reuse=(--reuse-xgb)
  [ "${MATRIX_PLAIN:-1}" = 0 ] && reuse+=(--no-plain)
  reuse+=(--ids-encoding "${MATRIX_IDS_ENCODING:-auto}")
  for t in $targets; do
    case " ${MATRIX_TARGETS:-late lost eta} " in *" $t "*) ;; *) continue ;; esac
    if [ "${KEEP:-0}" != 1 ] || [ ! -s "$d/${t}_test.csv" ]; then
      if ! { step "$c" "export $t" nice "$DRISK" export --db "$d/store.db" --target "$t" \
               --until "$split" --out "$d/${t}_train.csv" &&
             step "$c" "export $t test" nice "$DRISK" export --db "$d/store.db" --target "$t" \
               --from "$split" --out "$d/${t}_test.csv"; }; then
        log "matrix $c: export $t failed"; rm -f "$d/${t}_test.csv"; continue
      fi
    fi
    extra=$(matrix_drisk "$c" "$d" "$t" "$split" | tr '\n' ' ')
    log "matrix $c, $t"
    # shellcheck disable=SC2086
    step "$c" "xgboost + metrics $t" nice $PY bench/matrix.py cell --cell "$c" --target "$t" \
      --until "$split" --shipments "$ships" --scans "$scans" --n-shipments "$n" --cache "$d" \
      "${reuse[@]}" $extra --json "$d/result_$t.json" --md "$d/result_$t.md" \
      "$d/${t}_train.csv" "$d/${t}_test.csv" || log "matrix $c: bench/matrix.py failed for $t"
  done
  [ "$c" = olist ] && echo "olist, lost: not evaluated; every Olist order in the sample was delivered (no positives)." >&2
  return 0
}

run_matrix() {
  local c results
  mkdir -p "$MOUT"
  echo "| cell | step | wall s | status |" > "$MOUT/times.md"
  echo "|---|---|---|---|" >> "$MOUT/times.md"
  for c in ${CELLS:-$MATRIX_CELLS}; do
    case " $MATRIX_CELLS " in *" $c "*) ;; *) log "matrix: unknown cell $c (one of: $MATRIX_CELLS)"; exit 2 ;; esac
    matrix_cell "$c"
  done
  results=$(ls "$MOUT"/*/result_*.json 2>/dev/null || true)
  if [ -z "$results" ]; then log "matrix: no results"; return 1; fi
  # shellcheck disable=SC2086
  $PY bench/matrix.py summary --md "$OUT/$MNAME.md" --json "$OUT/$MNAME.json" $results > /dev/null
  log "matrix: $OUT/$MNAME.md, $OUT/$MNAME.json; step times in $MOUT/times.md"
  cat "$MOUT/times.md" >&2
}

case "${1:-all}" in
  sim) run_sim ;;
  olist) run_olist ;;
  speed) run_speed ;;
  matrix) run_matrix ;;
  all) : > "$OUT/tables.md"; : > "$OUT/speed.txt"; : > "$OUT/train_times.md"; run_sim; run_olist; run_speed
       run_matrix ;;
  *) echo "usage: $0 [sim|olist|speed|matrix|all]" >&2; exit 2 ;;
esac
