#!/usr/bin/python3
"""Baselines on drisk's exported snapshots (drisk export): XGBoost (hist) and
scikit-learn, trained on a train CSV and scored on a later test CSV.

  bench/compare.py --target late|lost|eta TRAIN.csv TEST.csv [--json OUT.json]
                   [--predictions NAME=FILE.csv ...] [--title TEXT]

Validation (as drisk train does it): shipments created in the last 15% of the training
period, where a shipment's creation time is taken as its first snapshot's as_of. Models
are fitted on the other 85% and not refitted; the validation set picks C / the number of
trees / the eta quantile offsets.

late, lost: XGBoost binary:logistic (no scale_pos_weight: it would distort the
probabilities that Brier, log loss and ECE judge), early stopping on validation log loss;
LogisticRegression(lbfgs) on StandardScaler'd features, unweighted, C from a grid.
eta: regression on log1p(hours) with squared error (XGBoost and Ridge); P50 / P90 are the
prediction shifted by the 0.5 / 0.9 quantiles of the validation residuals (log space).
--predictions adds another model's scores (drisk eval --predictions: shipment_id, as_of,
target, label, score) to the table, with the same metrics on the same rows.
early_auc and alert_lead (used by bench/matrix.py) add the AUC of the snapshots taken
at least 48 h before the promise and drisk eval's shipment-level alert lead time.
Time and memory per model: wall seconds of the fit (all C values for logreg) and the peak
RSS during it (VmHWM reset just before), which includes the data already loaded; the JSON
also has rss_before_mib. Threads: BENCH_JOBS (default 2).
"""
import argparse, json, os, resource, sys, time

os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # busy-waiting threads crawl on a shared box
import numpy as np
import pandas as pd
from sklearn import metrics
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
import xgboost as xgb

ID_COLS = ["shipment_id", "merchant_id", "as_of", "label"]
VALID_FRACTION = 0.15
N_JOBS = int(os.environ.get("BENCH_JOBS", "2"))


def load(path, dtype=np.float32):
    cols = pd.read_csv(path, nrows=0).columns
    dtypes = {c: dtype for c in cols if c not in ID_COLS}
    dtypes.update(shipment_id="category", merchant_id="category", as_of=str, label=np.float64)
    t = time.time()
    df = pd.read_csv(path, dtype=dtypes, engine="c")
    df["as_of"] = pd.to_datetime(df["as_of"], format="%Y-%m-%dT%H:%M:%SZ")
    print(f"read {path}: {len(df)} rows x {len(cols) - 4} features in {time.time() - t:.1f} s",
          file=sys.stderr)
    return df


def valid_mask(df, until=None):
    """Rows of shipments created in the last 15% of the training period."""
    created = df.groupby("shipment_id", observed=True)["as_of"].transform("min")
    first = created.min()
    end = pd.Timestamp(until) if until else created.max() + pd.Timedelta(seconds=1)
    return (created >= first + (1 - VALID_FRACTION) * (end - first)).to_numpy()


# --- memory: peak RSS during one fit (VmHWM reset via clear_refs, else process peak) ---
def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024


def timed_fit(fn):
    per_fit = reset_peak()
    before, t = rss_mib(), time.time()
    out = fn()
    return out, dict(fit_s=time.time() - t, peak_rss_mib=peak_mib(), rss_before_mib=before,
                     peak_is_per_fit=per_fit)


# --- metrics ---
def ece(y, p, bins=10):
    idx = np.minimum((p * bins).astype(int), bins - 1)
    n = np.bincount(idx, minlength=bins)
    sp = np.bincount(idx, weights=p, minlength=bins)
    sy = np.bincount(idx, weights=y, minlength=bins)
    nz = n > 0
    return float(np.sum(np.abs(sp[nz] - sy[nz])) / len(y))


def binary_metrics(y, p):
    p = np.clip(p.astype(np.float64), 1e-15, 1 - 1e-15)
    if y.min() == y.max():  # one class only: ranking metrics are undefined
        auc = ap = float("nan")
    else:
        auc, ap = metrics.roc_auc_score(y, p), metrics.average_precision_score(y, p)
    return dict(auc=auc, pr_auc=ap, brier=float(np.mean((p - y) ** 2)),
                log_loss=metrics.log_loss(y, p, labels=[0, 1]), ece=ece(y, p))


def early_auc(y, p, as_of, promised_at, hours=48):
    """AUC over the snapshots taken at least `hours` before the promise
    (as_of <= promised_at - hours): how well a model ranks while there is time to act.
    Returns (auc, rows); auc NaN when those rows hold one class only."""
    m = (np.asarray(as_of, dtype="datetime64[ns]")
         <= np.asarray(promised_at, dtype="datetime64[ns]") - np.timedelta64(hours, "h"))
    y, p = np.asarray(y)[m], np.asarray(p, dtype=np.float64)[m]
    if len(y) == 0 or y.min() == y.max():
        return float("nan"), int(m.sum())
    return float(metrics.roc_auc_score(y, p)), int(m.sum())


def alert_lead(shipment, as_of, promised_at, y, p, threshold=0.5):
    """Shipment-level alerts, as drisk eval computes them (training/metrics.c,
    drisk_metrics_lead_time): a shipment is flagged when any of its snapshots scores
    >= threshold, first at the earliest such as_of; its lead time is promised_at minus
    that first alert in hours (negative when the first alert came after the promise).
    median_lead_h / mean_lead_h are over the flagged positives (truly late / lost
    shipments); precision and recall count shipments, each once."""
    d = pd.DataFrame(dict(s=np.asarray(shipment), y=np.asarray(y),
                          t=np.where(np.asarray(p) >= threshold, np.asarray(as_of, dtype="datetime64[ns]"),
                                     np.datetime64("NaT")),
                          pr=np.asarray(promised_at, dtype="datetime64[ns]")))
    g = d.groupby("s", sort=False, observed=True).agg(y=("y", "max"), t=("t", "min"),
                                                      pr=("pr", "first"))
    flagged, pos = g["t"].notna(), g["y"] == 1
    lead = (g["pr"] - g["t"])[flagged & pos].dt.total_seconds() / 3600.0
    nf, npos = int(flagged.sum()), int(pos.sum())
    return dict(alert_threshold=threshold, alert_shipments=len(g), alert_positives=npos,
                alert_precision=float((flagged & pos).sum() / nf) if nf else float("nan"),
                alert_recall=float((flagged & pos).sum() / npos) if npos else float("nan"),
                median_lead_h=float(lead.median()) if len(lead) else float("nan"),
                mean_lead_h=float(lead.mean()) if len(lead) else float("nan"))


def eta_metrics(h, p50, p90=None):
    m = dict(mae_h=float(np.mean(np.abs(p50 - h))), p50_coverage=float(np.mean(h <= p50)))
    if p90 is not None:
        m["p90_coverage"] = float(np.mean(h <= p90))
    return m


# --- models ---
def xgb_params(classification):
    return dict(tree_method="hist", n_estimators=500, max_depth=6, learning_rate=0.1,
                subsample=0.8, colsample_bytree=0.8, min_child_weight=1, max_bin=256,
                early_stopping_rounds=30, n_jobs=N_JOBS, random_state=1,
                objective="binary:logistic" if classification else "reg:squarederror",
                eval_metric="logloss" if classification else "rmse")


def trees(m):
    n = m.best_iteration + 1
    return f"{n} trees ({'early stop' if n < m.n_estimators else 'cap hit, no early stop'})"


def run_classification(Xf, yf, Xv, yv, Xt, yt):
    rows = []
    m, info = timed_fit(lambda: xgb.XGBClassifier(**xgb_params(True)).fit(
        Xf, yf, eval_set=[(Xv, yv)], verbose=False))
    info["params"] = f"hist, depth 6, eta 0.1, {trees(m)}"
    rows.append(("xgboost", m.predict_proba(Xt)[:, 1], info))

    def fit_logreg():
        best = None
        for c in (0.01, 0.1, 1.0, 10.0):
            lr = make_pipeline(StandardScaler(), LogisticRegression(C=c, solver="lbfgs",
                                                                    max_iter=500))
            lr.fit(Xf, yf)
            ll = metrics.log_loss(yv, lr.predict_proba(Xv)[:, 1], labels=[0, 1])
            print(f"  logreg C={c}: validation log loss {ll:.5f}, "
                  f"{lr[-1].n_iter_[0]} iterations", file=sys.stderr)
            if best is None or ll < best[0]:
                best = (ll, c, lr)
        return best
    (ll, c, lr), info = timed_fit(fit_logreg)
    info["params"] = f"lbfgs, StandardScaler, C={c} (of 4, all timed)"
    rows.append(("sklearn logreg", lr.predict_proba(Xt)[:, 1], info))
    return [(n, binary_metrics(yt, p), i) for n, p, i in rows]


def run_regression(Xf, hf, Xv, hv, Xt, ht):
    lf, lv = np.log1p(hf), np.log1p(hv)
    rows = []
    m, info = timed_fit(lambda: xgb.XGBRegressor(**xgb_params(False)).fit(
        Xf, lf, eval_set=[(Xv, lv)], verbose=False))
    info["params"] = f"hist, depth 6, eta 0.1, squared error on log1p(h), {trees(m)}"
    rows.append(("xgboost", m, info))
    m, info = timed_fit(lambda: make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(Xf, lf))
    info["params"] = "Ridge(alpha=1) on StandardScaler'd features, log1p(h)"
    rows.append(("sklearn ridge", m, info))
    out = []
    for name, m, info in rows:
        r50, r90 = np.quantile(lv - m.predict(Xv), [0.5, 0.9])
        mu = m.predict(Xt).astype(np.float64)
        out.append((name, eta_metrics(ht, np.expm1(mu + r50), np.expm1(mu + r90)), info))
    return out


def external(spec, test, classification):
    """NAME=FILE: another model's per-snapshot predictions joined on (shipment_id, as_of)."""
    name, path = spec.split("=", 1)
    pr = pd.read_csv(path, dtype={"shipment_id": str, "as_of": str})
    pr["as_of"] = pd.to_datetime(pr["as_of"], format="%Y-%m-%dT%H:%M:%SZ")
    key = ["shipment_id", "as_of", "k"]  # k: repeats of one (shipment, as_of) in file order
    t = test[["shipment_id", "as_of", "label"]].astype({"shipment_id": str})
    for d in (t, pr):
        d["k"] = d.groupby(["shipment_id", "as_of"]).cumcount()
    j = t.merge(pr[key + ["score"]], on=key, how="inner")
    if len(j) != len(test):
        print(f"warning: {name}: {len(j)} of {len(test)} test rows have a prediction",
              file=sys.stderr)
    y, s = j["label"].to_numpy(), j["score"].to_numpy(np.float64)
    m = binary_metrics(y, s) if classification else eta_metrics(y, s)
    return name, m, dict(params=f"predictions from {path} ({len(j)} rows)")


def table(title, res, classification):
    keys = (["auc", "pr_auc", "brier", "log_loss", "ece"] if classification
            else ["mae_h", "p50_coverage", "p90_coverage"])
    lines = [f"### {title}", "",
             "| model | " + " | ".join(keys) + " | fit s | peak RSS MiB | settings |",
             "|---" * (len(keys) + 4) + "|"]
    for name, m, info in res:
        vals = [f"{m[k]:.4f}" if k in m else "" for k in keys]
        fit = f"{info['fit_s']:.1f}" if "fit_s" in info else ""
        mem = f"{info['peak_rss_mib']:.0f}" if "peak_rss_mib" in info else ""
        lines.append(f"| {name} | " + " | ".join(vals) + f" | {fit} | {mem} | {info['params']} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("train"), ap.add_argument("test")
    ap.add_argument("--target", required=True, choices=["late", "lost", "eta"])
    ap.add_argument("--until", help="end of the training period (default: last creation)")
    ap.add_argument("--json", help="also write the results as JSON here")
    ap.add_argument("--title", help="table heading")
    ap.add_argument("--predictions", action="append", default=[], metavar="NAME=FILE")
    a = ap.parse_args()
    classification = a.target != "eta"

    train, test = load(a.train), load(a.test)
    feats = [c for c in train.columns if c not in ID_COLS]
    if list(test.columns) != list(train.columns):
        sys.exit("train and test files have different columns: export them from one store "
                 "with --until T and --from T")
    vm = valid_mask(train, a.until)
    X, y = train[feats].to_numpy(), train["label"].to_numpy()
    Xt, yt = test[feats].to_numpy(), test["label"].to_numpy()
    Xf, yf, Xv, yv = X[~vm], y[~vm], X[vm], y[vm]
    const = [f for f, s in zip(feats, X.std(axis=0)) if s == 0]
    summary = dict(target=a.target, train=a.train, test=a.test, features=len(feats),
                   constant_features=const, fit_rows=int((~vm).sum()), valid_rows=int(vm.sum()),
                   test_rows=len(yt), train_shipments=int(train["shipment_id"].nunique()),
                   test_shipments=int(test["shipment_id"].nunique()),
                   rss_after_load_mib=rss_mib())
    if classification:
        summary.update(fit_pos=float(yf.mean()), valid_pos=float(yv.mean()),
                       test_pos=float(yt.mean()))
    else:
        summary.update(fit_median_h=float(np.median(yf)), test_median_h=float(np.median(yt)),
                       test_min_h=float(yt.min()))
    print(json.dumps(summary), file=sys.stderr)
    del train, X, y  # keep only what the fits need
    test = test[ID_COLS]

    if classification and yf.min() == yf.max():
        print(f"the training labels are all {yf[0]:g}: no classifier to train", file=sys.stderr)
        res = []
    elif classification:
        res = run_classification(Xf, yf, Xv, yv, Xt, yt)
    else:
        res = run_regression(Xf, yf, Xv, yv, Xt, yt)
    res += [external(s, test, classification) for s in a.predictions]

    title = a.title or f"{a.target}: {os.path.basename(a.train)} -> {os.path.basename(a.test)}"
    print(table(title, res, classification))
    rate = (f"positives: fit {summary['fit_pos']:.4f}, valid {summary['valid_pos']:.4f}, "
            f"test {summary['test_pos']:.4f}" if classification else
            f"median hours: fit {summary['fit_median_h']:.1f}, test {summary['test_median_h']:.1f}")
    print(f"\nrows: fit {summary['fit_rows']}, valid {summary['valid_rows']}, test "
          f"{summary['test_rows']}; {rate}; {len(const)} of {len(feats)} features constant "
          f"in train{': ' + ', '.join(const) if const else ''}\n")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(summary, models=[dict(name=n, **m, **i) for n, m, i in res]), f,
                      indent=1, default=float)


if __name__ == "__main__":
    main()
