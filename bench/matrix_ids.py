#!/usr/bin/python3
"""The raw identities behind drisk's exported snapshots, for the quality matrix's
"XGBoost + ids" row (bench/matrix.py).

`drisk export` writes shipment_id, merchant_id, as_of, label and the features; the
identities are taken from the interchange CSVs the store was filled from (CONTRACT §2:
`drisk simulate --export DIR` writes DIR/shipments.csv and DIR/scans.csv; Olist's are
../shared/datasets/olist/{shipments,scans}.csv):

  carrier, service           shipments.csv, lower-cased (drisk compares them case-insensitively)
  origin, destination        shipments.csv
  lane                       origin + "|" + destination
  merchant_id                the export's own column
  facility                   location of the last scan with ts <= as_of that has a location
  prev_facility              the distinct location visited before that one
                             (engine/features.c's before_loc: scans without a location are
                             skipped, repeats of the current location do not count)
and promised_at (for the early AUC and the alert lead time).

Facilities: pandas merge_asof by shipment, on as_of against the scan ts, direction
backward, exact matches allowed (a snapshot taken right after a scan has as_of = its ts).
Scans without merchant_id belong to the one shipment of that shipment_id (as drisk import
matches them). Encoding (bench/matrix.py): pandas category dtype whose categories are the
values seen in the training file; a test value not among them becomes missing (NaN).
"""
import sys
import time

import numpy as np
import pandas as pd

ID_COLUMNS = ["carrier", "service", "origin", "destination", "lane", "merchant_id",
              "facility", "prev_facility"]
TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _ts(s):
    """RFC 3339 text -> naive UTC datetime64[s precision], as the store keeps it."""
    try:
        t = pd.to_datetime(s, format=TS_FORMAT)
    except (ValueError, TypeError):
        t = pd.to_datetime(s, utc=True).dt.tz_convert(None)
    return t.dt.floor("s")


class Interchange:
    """shipments.csv and scans.csv, keyed by (merchant_id, shipment_id)."""

    def __init__(self, shipments_csv, scans_csv):
        t0 = time.time()
        want = {"shipment_id", "merchant_id", "carrier", "service", "origin", "destination",
                "promised_at"}
        sh = pd.read_csv(shipments_csv, dtype=str, keep_default_na=False,
                         usecols=lambda c: c in want)
        if "merchant_id" not in sh:
            sh["merchant_id"] = ""
        sh["merchant_id"] = sh["merchant_id"].replace("", "default")
        for c in ("carrier", "service"):
            sh[c] = sh[c].str.strip().str.lower()
        sh["lane"] = sh["origin"] + "|" + sh["destination"]
        sh["promised_at"] = _ts(sh["promised_at"])
        sh["key"] = sh["merchant_id"] + "\x1f" + sh["shipment_id"]
        if not sh["key"].is_unique:
            sys.exit(f"{shipments_csv}: a (merchant_id, shipment_id) appears twice")
        self.shipments = sh.set_index("key")

        sc = pd.read_csv(scans_csv, dtype=str, keep_default_na=False,
                         usecols=lambda c: c in {"shipment_id", "merchant_id", "ts", "location"})
        sc = sc[sc["location"].str.len() > 0]  # only located scans move the facility
        if "merchant_id" in sc and (sc["merchant_id"] != "").all():
            sc["key"] = sc["merchant_id"] + "\x1f" + sc["shipment_id"]
        else:  # match by shipment_id alone, as drisk import does without merchant_id
            by_id = sh.drop_duplicates("shipment_id", keep=False).set_index("shipment_id")["key"]
            key = sc["shipment_id"].map(by_id)
            if "merchant_id" in sc:
                has = sc["merchant_id"] != ""
                key[has] = sc["merchant_id"][has] + "\x1f" + sc["shipment_id"][has]
            sc["key"] = key
            sc = sc[sc["key"].notna()]
        sc = sc.assign(ts=_ts(sc["ts"]))
        sc = sc.sort_values(["key", "ts"], kind="stable")[["key", "ts", "location"]]
        # previous distinct facility at each scan: the location before the current run
        same = sc["key"].eq(sc["key"].shift())
        change = sc["location"].ne(sc["location"].shift()) | ~same
        prev = sc["location"].shift().where(change & same)
        sc["prev_facility"] = prev.groupby(change.cumsum()).transform("first")
        self.scans = sc.rename(columns={"location": "facility"}).sort_values("ts", kind="stable")
        print(f"interchange: {len(sh)} shipments, {len(sc)} located scans in "
              f"{time.time() - t0:.1f} s", file=sys.stderr)

    def identities(self, rows):
        """rows: DataFrame with shipment_id, merchant_id, as_of (datetime64). Returns a
        DataFrame aligned with rows (same index): ID_COLUMNS as str (NaN when unknown)
        and promised_at."""
        key = rows["merchant_id"].astype(str) + "\x1f" + rows["shipment_id"].astype(str)
        sh = self.shipments
        missing = ~key.isin(sh.index)
        if missing.any():
            sys.exit(f"{int(missing.sum())} exported rows have no shipment in shipments.csv "
                     f"(first: {key[missing].iloc[0]!r}): export and CSVs from different data?")
        out = pd.DataFrame(index=rows.index)
        for c in ("carrier", "service", "origin", "destination", "lane", "promised_at"):
            out[c] = sh[c].reindex(key.to_numpy()).to_numpy()
        out["merchant_id"] = rows["merchant_id"].astype(str).to_numpy()
        left = pd.DataFrame({"key": key.to_numpy(), "ts": rows["as_of"].to_numpy(),
                             "row": np.arange(len(rows))}).sort_values("ts", kind="stable")
        j = pd.merge_asof(left, self.scans, on="ts", by="key", direction="backward",
                          allow_exact_matches=True).sort_values("row")
        out["facility"] = j["facility"].to_numpy()
        out["prev_facility"] = j["prev_facility"].to_numpy()
        return out
