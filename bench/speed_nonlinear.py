#!/usr/bin/python3
"""scikit-learn's SVC and MLPClassifier on one exported snapshot matrix (drisk export), to set
beside build/bench_fit svm_rbf|svm_linear|mlp on the same file: fit time, peak memory,
validation log loss / AUC / PR-AUC, and scoring latency of one row at a time.

  bench/speed_nonlinear.py TRAIN.csv --until T --model svc_rbf|svc_linear|mlp
                           [--max-rows 20000] [--C 1] [--hidden 64,32] [--epochs 30]
                           [--batch 512] [--lr 0.001] [--l2 1e-6] [--target-loss X]
                           [--json OUT.json]

The split is compare.py's (and drisk's): shipments created in the last 15% of the training
period validate, the rest are fitted.
svc_*: what drisk's svm learners do: a class-stratified sample of --max-rows fitted rows (the
rarer class keeping at least a quarter of them), features min-max scaled to [0, 1] on the
sample, gamma "scale", class_weight balanced, SVC (libsvm inside) with cache 512 MB; its
validation metrics use every 10th validation row (libsvm scores a row at a time).
mlp: MLPClassifier(relu, adam) with drisk's settings: the same layers, batch, step size, and
alpha = l2 * batch (scikit-learn divides its penalty by the batch size; drisk puts l2 on
the mean loss); one epoch per partial_fit call, the validation loss measured after each
epoch (outside the timed fit), stopping like drisk (patience 2 with the step size cut by 4
on a plateau is not available in scikit-learn's adam: it runs --epochs epochs, or stops as
soon as its validation log loss reaches --target-loss, the loss drisk reached).
"""
import argparse, json, os, resource, sys, time

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
import numpy as np
from sklearn import metrics
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import SVC

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import ID_COLS, load, valid_mask, reset_peak, peak_mib, rss_mib


def stratified_sample(y, cap, seed=1):
    n, pos = len(y), int(y.sum())
    if n <= cap:
        return np.arange(n)
    minority = min(pos, n - pos)
    share = int(round(cap * minority / n))
    if share < cap // 4:
        share = min(minority, cap // 4)
    take_pos, take_neg = (share, cap - share) if pos < n - pos else (cap - share, share)
    rng = np.random.default_rng(seed)
    idx_pos = rng.choice(np.flatnonzero(y == 1), take_pos, replace=False)
    idx_neg = rng.choice(np.flatnonzero(y == 0), take_neg, replace=False)
    return np.sort(np.concatenate([idx_pos, idx_neg]))


def latency_us(predict, Xv, n=20000):
    n = min(n, len(Xv))
    lat = np.empty(n)
    for i in range(n):
        t = time.perf_counter()
        predict(Xv[i:i + 1])
        lat[i] = (time.perf_counter() - t) * 1e6
    return float(np.median(lat)), float(np.percentile(lat, 99)), n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("train")
    ap.add_argument("--until")
    ap.add_argument("--model", choices=["svc_rbf", "svc_linear", "mlp"], required=True)
    ap.add_argument("--max-rows", type=int, default=20000)
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--hidden", default="64,32")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--l2", type=float, default=1e-6)
    ap.add_argument("--target-loss", type=float)
    ap.add_argument("--json")
    a = ap.parse_args()

    t = time.time()
    df = load(a.train, np.float64)
    vm = valid_mask(df, a.until)
    feats = [c for c in df.columns if c not in ID_COLS]
    X, y = df[feats].to_numpy(), df["label"].to_numpy()
    del df
    Xf, yf, Xv, yv = X[~vm], y[~vm], X[vm], y[vm]
    del X
    load_s = time.time() - t
    per_fit, rss_before = reset_peak(), rss_mib()
    out = dict(file=a.train, model=a.model, fit_rows=len(yf), valid_rows=len(yv),
               features=len(feats), load_s=load_s)
    if a.model.startswith("svc"):
        idx = stratified_sample(yf, a.max_rows)
        scaler = MinMaxScaler().fit(Xf[idx])
        Xs = scaler.transform(Xf[idx])
        kernel = a.model.split("_")[1]
        t = time.time()
        m = SVC(kernel=kernel, C=a.C, gamma="scale", class_weight="balanced", cache_size=512)
        m.fit(Xs, yf[idx])
        fit_s = time.time() - t
        peak = peak_mib() if per_fit else None
        # libsvm scores one sparse row at a time (~1 ms each with 13k support vectors): the
        # validation metrics use every 10th validation row
        Xv, yv = Xv[::10], yv[::10]
        Xvs = scaler.transform(Xv)
        s = m.decision_function(Xvs)
        p = 1 / (1 + np.exp(-s))
        out.update(sample_rows=len(idx), support_vectors=int(m.n_support_.sum()))
        predict = lambda r: m.decision_function(scaler.transform(r))
        detail = f"{out['support_vectors']} support vectors"
        epochs = None
    else:
        sc = StandardScaler().fit(Xf)
        Xs, Xvs = sc.transform(Xf), sc.transform(Xv)
        hidden = tuple(int(h) for h in a.hidden.split(","))
        m = MLPClassifier(hidden_layer_sizes=hidden, activation="relu", solver="adam",
                          alpha=a.l2 * a.batch, batch_size=a.batch, learning_rate_init=a.lr,
                          shuffle=True, random_state=1)
        fit_s, best, epochs, curve = 0.0, np.inf, 0, []
        for e in range(a.epochs):
            t = time.time()
            m.partial_fit(Xs, yf, classes=[0.0, 1.0])
            fit_s += time.time() - t
            vl = metrics.log_loss(yv, m.predict_proba(Xvs)[:, 1], labels=[0, 1])
            curve.append(dict(epoch=e + 1, fit_s=fit_s, valid_log_loss=vl))
            print(f"epoch {e + 1}: {fit_s:.1f} s, validation log loss {vl:.5f}", file=sys.stderr)
            best, epochs = min(best, vl), e + 1
            if a.target_loss is not None and vl <= a.target_loss:
                break
        peak = peak_mib() if per_fit else None
        p = m.predict_proba(Xvs)[:, 1]
        out.update(curve=curve, epochs=epochs, best_valid_log_loss=best)
        predict = lambda r: m.predict_proba(sc.transform(r))
        detail = f"{epochs} epochs"
    lat50, lat99, nl = latency_us(predict, Xv, 5000 if a.model.startswith("svc") else 20000)
    out.update(fit_s=fit_s, valid_log_loss=metrics.log_loss(yv, p, labels=[0, 1]),
               valid_auc=metrics.roc_auc_score(yv, p),
               valid_pr_auc=metrics.average_precision_score(yv, p),
               rss_before_fit_mib=rss_before, peak_rss_fit_mib=peak,
               peak_rss_process_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               score_us_p50=lat50, score_us_p99=lat99, latency_rows=nl)
    print(f"sklearn {a.model} on {len(yf)} x {len(feats)}, validated on {len(yv)}: fit "
          f"{fit_s:.2f} s ({detail}), validation log loss {out['valid_log_loss']:.5f}, AUC "
          f"{out['valid_auc']:.4f}, PR-AUC {out['valid_pr_auc']:.4f}; peak RSS "
          f"{peak or float('nan'):.0f} MiB during the fit (from {rss_before:.0f}); one row: "
          f"median {lat50:.1f} us, p99 {lat99:.1f} us over {nl}; CSV load {load_s:.1f} s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
