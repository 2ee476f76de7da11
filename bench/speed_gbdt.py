#!/usr/bin/env python3
"""XGBoost hist on a drisk export with drisk gbdt's own settings (depth 6, shrinkage 0.05,
row and column samples 0.8, early stopping after 30 rounds on validation log loss, the
same validation rows as drisk: shipments created in the last 15 % of the period), so that
`build/bench_fit gbdt` and XGBoost fit the same thing. One line of JSON: fit seconds
(the CSV read excluded), trees, validation log loss and AUC.

  bench/speed_gbdt.py TRAIN.csv UNTIL [--threads 2]"""
import argparse
import json
import time

import numpy as np
import xgboost as xgb
from sklearn import metrics

import compare as C


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train")
    ap.add_argument("until")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    df = C.load(a.train)
    v = C.valid_mask(df, a.until)
    X = df.drop(columns=[c for c in C.ID_COLS if c in df]).to_numpy(np.float32)
    y = df["label"].to_numpy()
    t = time.time()
    m = xgb.XGBClassifier(tree_method="hist", n_estimators=2000, max_depth=6, learning_rate=0.05,
                          subsample=0.8, colsample_bytree=0.8, max_bin=256,
                          early_stopping_rounds=30, n_jobs=a.threads, random_state=1,
                          objective="binary:logistic", eval_metric="logloss")
    m.fit(X[~v], y[~v], eval_set=[(X[v], y[v])], verbose=False)
    fit_s = time.time() - t
    p = m.predict_proba(X[v])[:, 1]
    print(json.dumps({"learner": "xgboost hist", "fit_s": round(fit_s, 2), "trees": m.best_iteration + 1,
                      "valid_log_loss": round(float(metrics.log_loss(y[v], p)), 5),
                      "valid_auc": round(float(metrics.roc_auc_score(y[v], p)), 4)}))


if __name__ == "__main__":
    main()
