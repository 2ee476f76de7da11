#!/usr/bin/env bash
# Training time, peak memory and scoring latency of each learner family on one exported
# snapshot matrix, beside scikit-learn on the same file in the same run (issue 4's "What it
# must show"; issue 3's logistic-regression speed target):
#   bench/run_learners.sh [TRAIN.csv] [UNTIL]
# default: bench/out/quality/sim_late_train.csv (bench/run_quality.sh sim writes it), 2025-05-26.
# Pairs run one after the other, drisk first; logreg and mlp pairs REPEAT times (default 2),
# the rest once; results go
# to bench/out/learners/*.json and a markdown table on stdout.
#   logreg      build/bench_fit logreg C=1 tol=1e-6   vs  speed_logreg.py --C 1
#   mlp         build/bench_fit mlp (one network)      vs  speed_nonlinear.py --model mlp
#               (MLPClassifier, same layers/batch/step/L2, run until it reaches drisk's
#               validation log loss or 15 epochs)
#   svm_rbf     build/bench_fit svm_rbf                vs  speed_nonlinear.py --model svc_rbf
#   svm_linear  build/bench_fit svm_linear             vs  speed_nonlinear.py --model svc_linear
#   SVM cap     build/bench_fit svm_rbf svm_max_rows=5000,10000 (and the 20000 default above)
#   latency     build/bench_fit mlp members=5 (the default ensemble)
# Needs a Release build in build/ and python3-sklearn python3-pandas (Debian).
set -euo pipefail
cd "$(dirname "$0")/.."
TRAIN=${1:-bench/out/quality/sim_late_train.csv}
UNTIL=${2:-2025-05-26}
REPEAT=${REPEAT:-2}
OUT=bench/out/learners
PY=/usr/bin/python3
mkdir -p "$OUT"
export OPENBLAS_NUM_THREADS=${BENCH_JOBS:-2} OMP_NUM_THREADS=${BENCH_JOBS:-2}
[ -s "$TRAIN" ] || { echo "no $TRAIN: run bench/run_quality.sh sim first" >&2; exit 2; }

loss_of() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["valid_log_loss"])' "$1"; }

[ "${KEEP:-0}" = 1 ] || rm -f "$OUT"/*.json
# the SVM sample cap's cost in quality first (its timings matter least)
for cap in 5000 10000; do
  build/bench_fit svm_rbf "$TRAIN" "$UNTIL" balanced=1 svm_max_rows=$cap json="$OUT/drisk_svm_rbf_cap$cap.json"
done
# the speed targets (logreg, mlp) REPEAT times; the SVMs and the rest once
for r in $(seq 1 "$REPEAT"); do
  build/bench_fit logreg "$TRAIN" "$UNTIL" C=1 tol=1e-6 json="$OUT/drisk_logreg_$r.json"
  $PY bench/speed_logreg.py "$TRAIN" --until "$UNTIL" --C 1 --json "$OUT/sklearn_logreg_$r.json"
  build/bench_fit mlp "$TRAIN" "$UNTIL" json="$OUT/drisk_mlp_$r.json"
  $PY bench/speed_nonlinear.py "$TRAIN" --until "$UNTIL" --model mlp --epochs 15 \
    --target-loss "$(loss_of "$OUT/drisk_mlp_$r.json")" --json "$OUT/sklearn_mlp_$r.json"
done
build/bench_fit svm_rbf "$TRAIN" "$UNTIL" balanced=1 json="$OUT/drisk_svm_rbf_1.json"
$PY bench/speed_nonlinear.py "$TRAIN" --until "$UNTIL" --model svc_rbf --json "$OUT/sklearn_svc_rbf_1.json"
build/bench_fit svm_linear "$TRAIN" "$UNTIL" balanced=1 json="$OUT/drisk_svm_linear_1.json"
$PY bench/speed_nonlinear.py "$TRAIN" --until "$UNTIL" --model svc_linear --json "$OUT/sklearn_svc_linear_1.json"
build/bench_fit mlp "$TRAIN" "$UNTIL" members=5 json="$OUT/drisk_mlp5.json"
$PY - "$OUT" <<'EOF'
import glob, json, os, statistics, sys
out = sys.argv[1]
def norm(r):
    if "fits" in r:  # speed_logreg.py
        r.update(fit_s=r["fit_total_s"], valid_log_loss=r["best_valid_log_loss"],
                 valid_auc=r["fits"][0]["valid_auc"])
    return r
def rows(pattern):
    return [norm(json.load(open(f))) for f in sorted(glob.glob(os.path.join(out, pattern)))]
def num(v, fmt):
    return "—" if v != v else format(v, fmt)
def med(rs, k):
    v = [r[k] for r in rs if r.get(k) is not None]
    return statistics.median(v) if v else float("nan")
print("| learner | fit s (median) | peak RSS during fit MiB | validation log loss | AUC | PR-AUC | one snapshot p50 / p99 us |")
print("|---|---|---|---|---|---|---|")
for name, pat, rss in [("drisk logreg", "drisk_logreg_[0-9]*.json", "peak_rss_mib"),
                       ("sklearn LogisticRegression", "sklearn_logreg_[0-9]*.json", "peak_rss_fit_mib"),
                       ("drisk mlp (1 network)", "drisk_mlp_[0-9]*.json", "peak_rss_mib"),
                       ("sklearn MLPClassifier", "sklearn_mlp_[0-9]*.json", "peak_rss_fit_mib"),
                       ("drisk mlp (5 networks)", "drisk_mlp5.json", "peak_rss_mib"),
                       ("drisk svm_rbf", "drisk_svm_rbf_[0-9]*.json", "peak_rss_mib"),
                       ("sklearn SVC rbf", "sklearn_svc_rbf_[0-9]*.json", "peak_rss_fit_mib"),
                       ("drisk svm_linear", "drisk_svm_linear_[0-9]*.json", "peak_rss_mib"),
                       ("sklearn SVC linear", "sklearn_svc_linear_[0-9]*.json", "peak_rss_fit_mib")]:
    rs = rows(pat)
    if not rs:
        continue
    fits = ", ".join(format(r["fit_s"], ".1f") for r in rs)
    print(f"| {name} | {med(rs, 'fit_s'):.1f} ({fits}) | {num(med(rs, rss), '.0f')} | "
          f"{med(rs, 'valid_log_loss'):.5f} | {num(med(rs, 'valid_auc'), '.4f')} | "
          f"{num(med(rs, 'valid_pr_auc'), '.4f')} | {num(med(rs, 'score_us_p50'), '.1f')} / "
          f"{num(med(rs, 'score_us_p99'), '.1f')} |")
print()
print("| svm_rbf sample cap | fit s | support vectors | validation AUC | PR-AUC |")
print("|---|---|---|---|---|")
caps = []
for f in glob.glob(os.path.join(out, "drisk_svm_rbf_*.json")):
    cap = int(f.split("cap")[1].split(".")[0]) if "cap" in f else 20000
    caps.append((cap, json.load(open(f))))
for cap, r in sorted(caps, key=lambda c: c[0]):
    print(f"| {cap} | {r['fit_s']:.1f} | {r['detail']} | {r['valid_auc']:.4f} | {r['valid_pr_auc']:.4f} |")
EOF
