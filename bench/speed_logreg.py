#!/usr/bin/python3
"""scikit-learn LogisticRegression(lbfgs) on one exported snapshot matrix (drisk export):
fit time, peak memory and validation log loss, to set beside drisk train on the same data.

  bench/speed_logreg.py TRAIN.csv [--until T] [--C 1] [--class-weight balanced]
                        [--float32] [--json OUT.json]

The split is compare.py's (and drisk train's): shipments created in the last 15% of the
training period validate, the rest are fitted. The fit is StandardScaler + lbfgs, one per
--C value (comma-separated for a grid, like drisk's choice of L2 strength; all are timed).
Peak RSS is reported twice: the whole process (CSV loading included, as /usr/bin/time
would see it) and during the fits only.
"""
import argparse, json, os, resource, sys, time

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
import numpy as np
from sklearn import metrics
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import ID_COLS, load, valid_mask, reset_peak, peak_mib, rss_mib


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("train")
    ap.add_argument("--until", help="end of the training period (default: last creation)")
    ap.add_argument("--C", default="1.0", help="inverse L2 strength; a,b,c for a grid")
    ap.add_argument("--class-weight", choices=["none", "balanced"], default="none")
    ap.add_argument("--float32", action="store_true", help="fit on float32 (default float64)")
    ap.add_argument("--max-iter", type=int, default=1000)
    ap.add_argument("--json")
    a = ap.parse_args()

    t = time.time()
    df = load(a.train, np.float32 if a.float32 else np.float64)
    vm = valid_mask(df, a.until)
    feats = [c for c in df.columns if c not in ID_COLS]
    X, y = df[feats].to_numpy(), df["label"].to_numpy()
    del df
    Xf, yf, Xv, yv = X[~vm], y[~vm], X[vm], y[vm]
    del X
    load_s = time.time() - t

    per_fit, rss_before = reset_peak(), rss_mib()
    fits, t_all = [], time.time()
    for c in (float(v) for v in a.C.split(",")):
        t = time.time()
        m = make_pipeline(StandardScaler(), LogisticRegression(
            C=c, solver="lbfgs", max_iter=a.max_iter,
            class_weight=None if a.class_weight == "none" else "balanced"))
        m.fit(Xf, yf)
        fit_s = time.time() - t
        p = m.predict_proba(Xv)[:, 1]
        fits.append(dict(C=c, fit_s=fit_s, iterations=int(m[-1].n_iter_[0]),
                         valid_log_loss=metrics.log_loss(yv, p, labels=[0, 1]),
                         valid_auc=metrics.roc_auc_score(yv, p)))
        print(f"C={c:g}: fit {fit_s:.2f} s, {fits[-1]['iterations']} iterations, validation "
              f"log loss {fits[-1]['valid_log_loss']:.5f}, AUC {fits[-1]['valid_auc']:.4f}",
              file=sys.stderr)
    best = min(fits, key=lambda f: f["valid_log_loss"])
    out = dict(file=a.train, rows=len(y), fit_rows=len(yf), valid_rows=len(yv),
               features=len(feats), dtype=str(Xf.dtype), fit_positives=float(yf.mean()),
               class_weight=a.class_weight, load_s=load_s, fits=fits,
               fit_total_s=time.time() - t_all, best_C=best["C"],
               best_valid_log_loss=best["valid_log_loss"],
               rss_before_fit_mib=rss_before, peak_rss_fit_mib=peak_mib() if per_fit else None,
               peak_rss_process_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(f"sklearn LogisticRegression(lbfgs) on {len(yf)} x {len(feats)} ({out['dtype']}), "
          f"validated on {len(yv)}: fit {out['fit_total_s']:.1f} s for {len(fits)} C value(s), "
          f"best C={best['C']:g} validation log loss {best['valid_log_loss']:.5f}; "
          f"peak RSS {out['peak_rss_process_mib']:.0f} MiB process, "
          f"{out['peak_rss_fit_mib'] or float('nan'):.0f} MiB during fit (from {rss_before:.0f} MiB "
          f"with the data loaded); CSV load {load_s:.1f} s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
