#!/usr/bin/python3
"""Quality matrix (bench/run_quality.sh matrix): drisk's default learner against XGBoost
on the same exported snapshots, one cell (a simulated scenario or Olist) and target at a
time, then one summary over every cell.

  bench/matrix.py cell --cell NAME --target late|lost|eta --until SPLIT TRAIN.csv TEST.csv
        --shipments SHIPMENTS.csv --scans SCANS.csv [--drisk NAME=PREFIX ...]
        [--cache DIR [--reuse-xgb]] [--no-plain] [--ids-encoding auto|category|codes]
        [--n-shipments N]
        --json OUT.json --md OUT.md
  bench/matrix.py summary --json OUT.json --md OUT.md RESULT.json ...

Rows (same test rows, same metric code: bench/compare.py's binary_metrics / eta_metrics /
early_auc / alert_lead):
  drisk[-MODEL]  `drisk train --until SPLIT` then `drisk eval --predictions` (run by the
                 shell script; PREFIX_pred.csv, PREFIX_train.time, PREFIX_train.json and
                 PREFIX_eval.json). Training time: wall seconds of `drisk train`, which
                 includes reading the store and building the snapshots and features.
  xgboost+ids    XGBoost on the exported features PLUS the raw identities
                 (bench/matrix_ids.py: carrier, service, origin, destination, lane,
                 merchant_id, current and previous facility), encoded two ways:
                   category  pandas category dtype, enable_categorical=True, tree_method
                             hist (xgboost's own categorical splits: one-hot below 4
                             categories, else partitions by gradient order, at most 64 per
                             split; its defaults)
                   codes     integer codes as ordinary numeric columns (the value's position
                             among the training file's sorted values)
                 Categories / codes come from the training file (fit + validation rows); a
                 test value not among them is missing (NaN). --ids-encoding auto (the
                 default) fits both and keeps the one with the lower validation loss (log
                 loss; eta: rmse of log1p hours); the settings column says which and both
                 losses, and its training time is both fits together. (On the 20,000-
                 shipment base history the category dtype overfit: validation log loss
                 0.0330 against 0.0291 for codes on lost.) Training time: wall seconds of
                 the fit (the CSV read and the identity join excluded).
  xgboost        the same without the identities (bench/compare.py's row); skipped with
                 --no-plain.
XGBoost settings are compare.py's (xgb_params: hist, depth 6, eta 0.1, subsample and
colsample 0.8, at most 500 rounds, early stopping after 30 on validation log loss /
rmse). Validation, as drisk train and compare.py: the shipments created in the last 15 %
of the training period (their first snapshot's as_of), not refitted. eta: squared error
on log1p(hours); P50 / P90 = the prediction shifted by the 0.5 / 0.9 quantiles of the
validation residuals. Nothing is chosen on the test rows.

Metrics (test rows):
  auc, pr_auc, ece      sklearn roc_auc_score, average_precision_score; ECE over 10 equal
                        width probability bins (sum |mean p - mean y| weighted by bin share)
  early_auc             AUC over the snapshots with as_of <= promised_at - 48 h
  median_lead_h         shipments flagged when any snapshot scores >= 0.5; lead = promised_at
                        - first such as_of, hours; median over the truly late (lost)
                        shipments that were flagged; alert_recall = their share of the truly
                        late (lost) shipments, alert_precision = truly late share of flagged
  mae_h                 eta: MEAN over snapshots of |P50 - actual hours| (compare.py's mae_h)
  p50_coverage / p90_coverage   share of snapshots with actual <= P50 / <= P90
With --cache DIR the XGBoost test predictions are kept (DIR/xgb_*.npz, with the sizes and
times of the files they came from); --reuse-xgb reuses them when those files are unchanged.
"""
import argparse, json, math, os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
import numpy as np
import pandas as pd
import xgboost as xgb

import compare as C
from matrix_ids import ID_COLUMNS, Interchange

CELLS = ["base", "many-places", "few-carriers", "drift", "sparse-scans", "olist"]
TARGETS = ["late", "lost", "eta"]


# --- XGBoost, plain and with identities ---
def categorical_frame(feats_df, ids, cats=None, codes=False):
    """Features (renamed f0..: xgboost refuses some characters in names) + identities as
    category columns; cats: categories per column (from the training file). codes: the
    identities as float integer codes instead (position among the training file's sorted
    values; unseen or absent: NaN, xgboost's missing)."""
    X = feats_df.copy()
    X.columns = [f"f{i}" for i in range(X.shape[1])]
    for c in ID_COLUMNS:
        col = pd.Categorical(ids[c], categories=None if cats is None else cats[c])
        X[f"id_{c}"] = (pd.Series(col.codes, index=X.index).replace(-1, np.nan).astype(np.float32)
                        if codes else col)
    return X


def fit_predict(classification, Xf, yf, Xv, yv, Xt, categorical):
    """Returns predictions on Xt, info (fit_s, peak RSS, params) and the validation loss
    at the kept round (log loss, or rmse of log1p hours)."""
    params = C.xgb_params(classification)
    if categorical:
        params.update(enable_categorical=True)
    if classification:
        m, info = C.timed_fit(lambda: xgb.XGBClassifier(**params).fit(
            Xf, yf, eval_set=[(Xv, yv)], verbose=False))
        info["params"] = f"hist, depth 6, eta 0.1, {C.trees(m)}"
        info["valid_loss"] = float(m.best_score)
        return dict(score=m.predict_proba(Xt)[:, 1]), info
    lf, lv = np.log1p(yf), np.log1p(yv)
    m, info = C.timed_fit(lambda: xgb.XGBRegressor(**params).fit(
        Xf, lf, eval_set=[(Xv, lv)], verbose=False))
    info["params"] = f"hist, depth 6, eta 0.1, squared error on log1p(h), {C.trees(m)}"
    info["valid_loss"] = float(m.best_score)
    r50, r90 = np.quantile(lv - m.predict(Xv), [0.5, 0.9])
    mu = m.predict(Xt).astype(np.float64)
    return dict(score=np.expm1(mu + r50), p90=np.expm1(mu + r90)), info


def fit_with_ids(classification, feats, train, test, ids_tr, ids_te, vm, yf, yv, encoding):
    """XGBoost + identities. encoding: "category" (pandas category dtype,
    enable_categorical), "codes" (integer codes as numbers), or "auto": both fitted, the
    one with the lower validation loss kept (its fit_s is the sum of both fits)."""
    tried = []
    for enc in (["category", "codes"] if encoding == "auto" else [encoding]):
        Xtr = categorical_frame(train[feats], ids_tr, codes=enc == "codes")
        cats = {c: pd.Categorical(ids_tr[c]).categories for c in ID_COLUMNS}
        Xt = categorical_frame(test[feats], ids_te, cats, codes=enc == "codes")
        print(f"fitting xgboost+ids ({enc}) on {len(yf)} rows", file=sys.stderr)
        pred, info = fit_predict(classification, Xtr[~vm], yf, Xtr[vm], yv, Xt, enc == "category")
        del Xtr, Xt
        info["encoding"] = enc
        tried.append((pred, info))
    pred, info = min(tried, key=lambda pi: pi[1]["valid_loss"])
    info = dict(info)
    if len(tried) > 1:
        loss = "log loss" if classification else "rmse of log1p(h)"
        info["encodings_tried"] = {i["encoding"]: dict(valid_loss=i["valid_loss"], fit_s=i["fit_s"],
                                                       params=i["params"]) for _, i in tried}
        info["fit_s"] = sum(i["fit_s"] for _, i in tried)
        info["peak_rss_mib"] = max(i["peak_rss_mib"] for _, i in tried)
        info["params"] = (f"ids as {info['encoding']} (validation {loss} "
                          + " vs ".join(f"{i['encoding']} {i['valid_loss']:.5f}" for _, i in tried)
                          + f"; train s: both fits), {info['params']}")
    else:
        info["params"] = f"ids as {info['encoding']}, {info['params']}"
    return pred, info


def file_key(*paths):
    return [[os.path.abspath(p), os.path.getsize(p), int(os.path.getmtime(p))] for p in paths]


# --- drisk's rows ---
def align(test, path):
    """drisk eval --predictions rows joined to the test rows on (shipment_id, as_of, k),
    k = repeat of one (shipment, as_of) in file order (as compare.external). Returns
    score (and p90 if the file has one) aligned with test, NaN where missing."""
    pr = pd.read_csv(path, dtype={"shipment_id": str, "as_of": str})
    pr["as_of"] = pd.to_datetime(pr["as_of"], format=C_TS)
    t = pd.DataFrame({"shipment_id": test["shipment_id"].astype(str).to_numpy(),
                      "as_of": test["as_of"].to_numpy(), "row": np.arange(len(test))})
    for d in (t, pr):
        d["k"] = d.groupby(["shipment_id", "as_of"]).cumcount()
    cols = [c for c in ("score", "p90") if c in pr]
    j = t.merge(pr[["shipment_id", "as_of", "k"] + cols], on=["shipment_id", "as_of", "k"],
                how="left").sort_values("row")
    return {("score" if c == "score" else "p90"): j[c].to_numpy(np.float64) for c in cols}


C_TS = "%Y-%m-%dT%H:%M:%SZ"


def drisk_row(spec, test):
    name, prefix = spec.split("=", 1)
    out = align(test, prefix + "_pred.csv")
    info = dict(source=prefix + "_pred.csv")
    try:
        with open(prefix + "_train.time") as f:
            w = f.read().split()
        info["fit_s"], info["peak_rss_mib"] = float(w[0]), float(w[2]) / 1024
    except (OSError, IndexError, ValueError):
        pass
    try:
        with open(prefix + "_train.json") as f:
            tj = json.load(f)
        info["model_id"], info["algorithm"] = tj.get("model_id"), tj.get("algorithm")
        info["params"] = f"drisk train: {tj.get('algorithm')} (model {tj.get('model_id')})"
    except (OSError, ValueError):
        info["params"] = "drisk train"
    try:
        with open(prefix + "_eval.json") as f:
            info["eval"] = json.load(f)
    except (OSError, ValueError):
        info["eval"] = {}
    return name, out, info


# --- metrics on the same rows ---
def score_metrics(classification, test, ids, pred, info):
    s = pred["score"]
    ok = ~np.isnan(s)
    n = len(s)
    if ok.sum() < n:
        print(f"warning: {info.get('source', '?')}: {int(ok.sum())} of {n} test rows have a "
              f"prediction; metrics over those", file=sys.stderr)
    y = test["label"].to_numpy()[ok]
    s = s[ok]
    m = dict(rows=int(ok.sum()), test_rows=n)
    if classification:
        m.update(C.binary_metrics(y, s))
        as_of = test["as_of"].to_numpy()[ok]
        prom = ids["promised_at"].to_numpy()[ok]
        m["early_auc"], m["early_rows"] = C.early_auc(y, s, as_of, prom)
        ship = (test["merchant_id"].astype(str) + "\x1f" + test["shipment_id"].astype(str)).to_numpy()[ok]
        m.update(C.alert_lead(ship, as_of, prom, y, s))
    else:
        p90 = pred.get("p90")
        m.update(C.eta_metrics(y, s, None if p90 is None else p90[ok]))
        m["p90_source"] = "predictions" if p90 is not None else None
        ev = info.get("eval", {}) if p90 is None else {}
        if p90 is None and ev.get("p90_coverage") is not None:
            # drisk eval --predictions has no P90 column: drisk eval's own figure, same
            # definition (share of snapshots with actual <= P90) over its rows
            m["p90_coverage"] = float(ev["p90_coverage"])
            m["p90_source"] = f"drisk eval --json ({ev.get('rows')} rows)"
    return m


# --- tables ---
def fmt(v, d=4):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.{d}f}"


CELL_COLS = [("AUC", "auc", 4), ("PR-AUC", "pr_auc", 4), ("ECE", "ece", 4),
             ("early AUC (≥48 h)", "early_auc", 4), ("alert recall", "alert_recall", 3),
             ("alert precision", "alert_precision", 3), ("median lead h", "median_lead_h", 1),
             ("P50 mean abs err h", "mae_h", 1), ("P50 cov", "p50_coverage", 3),
             ("P90 cov", "p90_coverage", 3), ("train s", "fit_s", 1),
             ("peak RSS MiB", "peak_rss_mib", 0)]


def cell_table(cell, results):
    lines = [f"### {cell}", "",
             "| target | model | " + " | ".join(h for h, _, _ in CELL_COLS) + " | test rows | settings |",
             "|---" * (len(CELL_COLS) + 4) + "|"]
    for r in results:
        for m in r["models"]:
            p90 = fmt(m.get("p90_coverage"), 3)
            if p90 and m.get("p90_source", "predictions") not in (None, "predictions"):
                p90 += "†"
            vals = [p90 if k == "p90_coverage" else fmt(m.get(k), d) for _, k, d in CELL_COLS]
            lines.append(f"| {r['target']} | {m['name']} | " + " | ".join(vals)
                         + f" | {m.get('rows', '')} | {m.get('params', '')} |")
    lines.append("")
    notes = []
    for r in results:
        notes.append(f"{r['target']}: {r['summary_line']}")
    lines += ["- " + n for n in notes]
    if any(m.get("p90_source") not in (None, "predictions") for r in results
           for m in r["models"] if r["target"] == "eta"):
        lines.append("- † drisk's P90 coverage from `drisk eval --json` (its predictions file "
                     "has no P90 column), same definition, over drisk eval's rows")
    return "\n".join(lines) + "\n"


SUM_COLS = [(t, k, h, d) for t in ("late", "lost") for k, h, d in
            [("auc", "AUC", 4), ("pr_auc", "PR-AUC", 4), ("ece", "ECE", 4),
             ("early_auc", "early AUC", 4), ("median_lead_h", "lead h", 1)]] + \
           [("eta", "mae_h", "P50 abs err h", 1), ("eta", "p50_coverage", "P50 cov", 3),
            ("eta", "p90_coverage", "P90 cov", 3)]


def family(name):
    return "drisk" if name.startswith("drisk") else name


def summary(paths, out_md, out_json):
    res = {}
    for p in paths:
        with open(p) as f:
            r = json.load(f)
        res.setdefault(r["cell"], {})[r["target"]] = r
    cells = [c for c in CELLS if c in res] + sorted(c for c in res if c not in CELLS)
    rows = []  # (cell, model) -> metrics
    for c in cells:
        names = []
        for t in TARGETS:
            for m in res[c].get(t, {}).get("models", []):
                if m["name"] not in names:
                    names.append(m["name"])
        for n in names:
            row = dict(cell=c, model=n)
            for t in TARGETS:
                for m in res[c].get(t, {}).get("models", []):
                    if m["name"] == n:
                        row[t] = m
            rows.append(row)
    hdr = ["cell", "N", "model"] + [f"{t} {h}" for t, _, h, _ in SUM_COLS] + \
          ["train s late / lost / eta"]
    lines = ["## Quality matrix", "",
             "| " + " | ".join(hdr) + " |", "|---" * len(hdr) + "|"]
    for row in rows:
        c = row["cell"]
        n = next((r.get("n_shipments") for r in res[c].values() if r.get("n_shipments")), "")
        vals = []
        for t, k, _, d in SUM_COLS:
            m = row.get(t, {})
            v = fmt(m.get(k), d)
            if k == "p90_coverage" and v and m.get("p90_source") not in (None, "predictions"):
                v += "†"
            vals.append(v)
        times = " / ".join(fmt(row.get(t, {}).get("fit_s"), 0) or "–" for t in TARGETS)
        alg = ""
        if family(row["model"]) == "drisk":
            algs = {row[t].get("algorithm") for t in TARGETS if t in row} - {None}
            alg = f" ({', '.join(sorted(algs))})" if algs else ""
        lines.append(f"| {c} | {n} | {row['model']}{alg} | " + " | ".join(vals) + f" | {times} |")
    # drisk minus XGBoost + ids, the bar the matrix is about
    dl = ["", "drisk − XGBoost+ids (positive: drisk better; ECE and abs err: negative better):",
          "", "| cell | model | late AUC | late PR-AUC | late early AUC | lost AUC | lost PR-AUC "
          "| lost early AUC | eta P50 abs err h |", "|---" * 9 + "|"]
    for row in rows:
        if family(row["model"]) != "drisk":
            continue
        ref = next((r for r in rows if r["cell"] == row["cell"] and r["model"] == "xgboost+ids"),
                   None)
        if not ref:
            continue
        vals = []
        for t, k, d in [("late", "auc", 4), ("late", "pr_auc", 4), ("late", "early_auc", 4),
                        ("lost", "auc", 4), ("lost", "pr_auc", 4), ("lost", "early_auc", 4),
                        ("eta", "mae_h", 1)]:
            a, b = row.get(t, {}).get(k), ref.get(t, {}).get(k)
            ok = a is not None and b is not None and not (math.isnan(a) or math.isnan(b))
            vals.append(f"{a - b:+.{d}f}" if ok else "")
        dl.append(f"| {row['cell']} | {row['model']} | " + " | ".join(vals) + " |")
    lines += dl
    lines += ["", "Columns: AUC, PR-AUC (average precision), ECE (10 equal-width bins) over "
              "every test snapshot; early AUC over the snapshots taken ≥ 48 h before the "
              "promise; lead h = median hours from a shipment's first snapshot scored ≥ 0.5 "
              "to its promise, over the truly late (lost) shipments that were flagged; P50 "
              "abs err = mean |P50 − actual| hours; P50 / P90 cov = share of snapshots "
              "delivered within P50 / P90; train s = `drisk train` wall (snapshot building "
              "included) or XGBoost fit wall (CSV read excluded). † from `drisk eval --json`. "
              "Olist has no lost column (every order delivered).", ""]
    lines += [cell_table(c, [res[c][t] for t in TARGETS if t in res[c]]) for c in cells]
    with open(out_md, "w") as f:
        f.write("\n".join(lines))
    with open(out_json, "w") as f:
        json.dump(dict(cells={c: res[c] for c in cells}), f, indent=1, default=float)
    print("\n".join(lines))


# --- one cell and target ---
def run_cell(a):
    classification = a.target != "eta"
    t0 = time.time()
    train, test = C.load(a.train), C.load(a.test)
    feats = [c for c in train.columns if c not in C.ID_COLS]
    if list(test.columns) != list(train.columns):
        sys.exit("train and test files have different columns: export them from one store")
    ic = Interchange(a.shipments, a.scans)
    ids_tr, ids_te = ic.identities(train), ic.identities(test)
    print(f"identities joined in {time.time() - t0:.1f} s (with the CSV reads)", file=sys.stderr)
    vm = C.valid_mask(train, a.until)
    y, yt = train["label"].to_numpy(), test["label"].to_numpy()
    yf, yv = y[~vm], y[vm]
    summ = dict(cell=a.cell, target=a.target, until=a.until, train=a.train, test=a.test,
                n_shipments=a.n_shipments, features=len(feats),
                fit_rows=int((~vm).sum()), valid_rows=int(vm.sum()), test_rows=len(yt),
                test_shipments=int(test["shipment_id"].nunique()),
                id_categories={c: int(ids_tr[c].nunique()) for c in ID_COLUMNS},
                id_test_unseen_share={c: float((~ids_te[c].isin(set(ids_tr[c].dropna()))
                                                & ids_te[c].notna()).mean()) for c in ID_COLUMNS})
    if classification:
        summ.update(fit_pos=float(yf.mean()), valid_pos=float(yv.mean()), test_pos=float(yt.mean()))
        line = (f"rows fit {summ['fit_rows']}, valid {summ['valid_rows']}, test "
                f"{summ['test_rows']}; positives fit {summ['fit_pos']:.4f}, valid "
                f"{summ['valid_pos']:.4f}, test {summ['test_pos']:.4f}")
    else:
        line = (f"rows fit {summ['fit_rows']}, valid {summ['valid_rows']}, test "
                f"{summ['test_rows']}; median hours fit {np.median(yf):.1f}, test "
                f"{np.median(yt):.1f}")
    line += ("; identities in train: " + ", ".join(f"{c} {summ['id_categories'][c]}"
                                                   for c in ID_COLUMNS))
    summ["summary_line"] = line
    print(json.dumps({k: v for k, v in summ.items() if k != "summary_line"}), file=sys.stderr)

    models = []
    if classification and yf.min() == yf.max():
        print(f"training labels all {yf[0]:g}: no XGBoost", file=sys.stderr)
    else:
        variants = [("xgboost+ids", a.ids_encoding)] + ([] if a.no_plain else [("xgboost", None)])
        for name, encoding in variants:
            key = dict(files=file_key(a.train, a.test, a.shipments, a.scans),
                       params=C.xgb_params(classification), encoding=encoding,
                       xgboost=xgb.__version__)
            cache = (os.path.join(a.cache, f"xgb_{a.target}_{'ids' if encoding else 'plain'}.npz")
                     if a.cache else None)
            pred = info = None
            if cache and a.reuse_xgb and os.path.exists(cache):
                z = np.load(cache, allow_pickle=False)
                if json.loads(str(z["key"])) == json.loads(json.dumps(key, default=float)):
                    pred = {k: z[k] for k in ("score", "p90") if k in z}
                    info = json.loads(str(z["info"]))
                    info["params"] += " (reused: same files)"
                    print(f"{name}: reusing {cache}", file=sys.stderr)
            if pred is None:
                if encoding:
                    pred, info = fit_with_ids(classification, feats, train, test, ids_tr,
                                              ids_te, vm, yf, yv, encoding)
                else:
                    Xtr = train[feats].to_numpy()
                    print(f"fitting {name} on {len(yf)} rows", file=sys.stderr)
                    pred, info = fit_predict(classification, Xtr[~vm], yf, Xtr[vm], yv,
                                             test[feats].to_numpy(), False)
                    del Xtr
                if cache:
                    np.savez(cache, key=json.dumps(key, default=float), info=json.dumps(info),
                             **pred)
            models.append((name, pred, info))
    for spec in a.drisk:
        try:
            models.append(drisk_row(spec, test))
        except (OSError, ValueError, KeyError) as e:
            print(f"warning: {spec}: {e}: no row", file=sys.stderr)
    # drisk first, then XGBoost + ids, then plain XGBoost
    models.sort(key=lambda m: (not m[0].startswith("drisk"), m[0] != "xgboost+ids"))
    out = []
    for name, pred, info in models:
        m = score_metrics(classification, test, ids_te, pred, info)
        rec = dict(name=name, **m, **{k: v for k, v in info.items() if k != "eval"})
        if info.get("eval"):
            rec["drisk_eval"] = {k: info["eval"].get(k) for k in
                                 ("rows", "auc", "pr_auc", "ece", "mae_h", "p50_coverage",
                                  "p90_coverage", "alerts") if k in info["eval"]}
        out.append(rec)
    res = dict(summ, models=out)
    with open(a.json, "w") as f:
        json.dump(res, f, indent=1, default=float)
    table = cell_table(f"{a.cell}, {a.target}", [res])
    with open(a.md, "w") as f:
        f.write(table)
    print(table)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cell")
    c.add_argument("train"), c.add_argument("test")
    c.add_argument("--cell", required=True)
    c.add_argument("--target", required=True, choices=TARGETS)
    c.add_argument("--until", required=True)
    c.add_argument("--shipments", required=True), c.add_argument("--scans", required=True)
    c.add_argument("--drisk", action="append", default=[], metavar="NAME=PREFIX")
    c.add_argument("--cache"), c.add_argument("--reuse-xgb", action="store_true")
    c.add_argument("--no-plain", action="store_true")
    c.add_argument("--ids-encoding", choices=["auto", "category", "codes"], default="auto")
    c.add_argument("--n-shipments", type=int)
    c.add_argument("--json", required=True), c.add_argument("--md", required=True)
    s = sub.add_parser("summary")
    s.add_argument("results", nargs="+")
    s.add_argument("--json", required=True), s.add_argument("--md", required=True)
    a = ap.parse_args()
    if a.cmd == "cell":
        run_cell(a)
    else:
        summary(a.results, a.md, a.json)


if __name__ == "__main__":
    main()
