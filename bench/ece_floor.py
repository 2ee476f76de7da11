#!/usr/bin/python3
"""How much of a model's miscalibration on a window could any Platt recalibration remove?

  bench/ece_floor.py PREDICTIONS.csv [--by month|week]

PREDICTIONS.csv is `drisk eval --predictions` output (shipment_id, as_of, target, label,
score) or any file with label and score columns. Printed, for the rows as given:
  ece          the model's ECE (bench/compare.py's: 10 equal-width bins)
  platt_fit    ECE after a Platt refit on these very rows (log loss, as drisk fits it)
  platt_best   the lowest ECE of any Platt map a*logit(p)+b on these rows (a grid over
               a in [0.5, 2], b in [-1.5, 1.5], then a finer one around the best)
and, per month (or week) of as_of, the rows, mean score and observed rate.

Both refits look at the labels they are scored on, so they are not models: they bound
what recalibrating with Platt's form could reach on this window at best. When even
platt_best is above a target, no recalibration of that form, however recent its labels,
reaches it; the gap is a shift inside the window (a month-to-month swing in the base
rate) that one monotone map cannot follow.
"""
import argparse, csv, os, sys

import numpy as np
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import ece  # noqa: E402  the matrix's own metric code


def platt(z, a, b):
    return 1.0 / (1.0 + np.exp(-(a * z + b)))


def best_platt(z, y):
    """The (ece, a, b) of the lowest-ECE map on a coarse grid, then a fine one around it."""
    def grid(a_lo, a_hi, b_lo, b_hi, steps, best):
        for a in np.linspace(a_lo, a_hi, steps):
            for b in np.linspace(b_lo, b_hi, steps):
                best = min(best, (ece(y, platt(z, a, b)), a, b))
        return best
    best = grid(0.5, 2.0, -1.5, 1.5, 31, (ece(y, platt(z, 1.0, 0.0)), 1.0, 0.0))
    return grid(best[1] - 0.05, best[1] + 0.05, best[2] - 0.1, best[2] + 0.1, 21, best)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("predictions")
    ap.add_argument("--by", choices=("month", "week"), default="month")
    a = ap.parse_args()
    with open(a.predictions, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit(f"{a.predictions}: no rows")
    y = np.array([float(r["label"]) for r in rows])
    p = np.clip(np.array([float(r["score"]) for r in rows]), 1e-6, 1 - 1e-6)
    z = np.log(p / (1 - p))
    fit = LogisticRegression(C=1e6).fit(z.reshape(-1, 1), y)
    e_fit = ece(y, fit.predict_proba(z.reshape(-1, 1))[:, 1])
    e_best, ba, bb = best_platt(z, y)
    print(f"rows {len(y)}  observed {y.mean():.4f}  mean score {p.mean():.4f}")
    print(f"ece {ece(y, p):.4f}  platt_fit {e_fit:.4f} (a {fit.coef_[0][0]:.3f}, "
          f"b {fit.intercept_[0]:.3f})  platt_best {e_best:.4f} (a {ba:.3f}, b {bb:.3f})")
    if "as_of" in rows[0]:
        import datetime as dt
        groups = {}
        for r, yi, pi in zip(rows, y, p):
            t = dt.datetime.strptime(r["as_of"][:10], "%Y-%m-%d")
            k = r["as_of"][:7] if a.by == "month" else "%d-W%02d" % t.isocalendar()[:2]
            g = groups.setdefault(k, [0, 0.0, 0.0])
            g[0] += 1
            g[1] += pi
            g[2] += yi
        print(f"{a.by:>8} {'rows':>7} {'score':>7} {'observed':>8}")
        for k in sorted(groups):
            n, s, o = groups[k]
            print(f"{k:>8} {n:>7} {s / n:>7.3f} {o / n:>8.3f}")


if __name__ == "__main__":
    main()
