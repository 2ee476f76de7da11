#!/usr/bin/env python3
"""What shadow scoring costs: the scoring server's CPU per /v1/score request and its own
scoring time (drisk_scoring_duration_seconds) with no shadow, with a shadow reading the
same feature schema (the features are built once), and with one reading another schema
(built twice), side by side, alternating, medians of REPEAT rounds.
  python3 bench/shadow_cost.py [--shipments 20000] [--requests 3000] [--repeat 3]
"""
import argparse, http.client, json, os, re, statistics, subprocess, sys, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument("--drisk", default="build/drisk")
ap.add_argument("--shipments", type=int, default=20000)
ap.add_argument("--requests", type=int, default=3000)
ap.add_argument("--repeat", type=int, default=3)
a = ap.parse_args()
D = a.drisk
work = tempfile.mkdtemp(prefix="drisk-shadow-")
db = os.path.join(work, "s.db")

def drisk(*args):
    out = subprocess.run([D, "--quiet", *args], capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"drisk {' '.join(args)}: {out.stderr}")
    return out.stdout

drisk("simulate", "--db", db, "--shipments", str(a.shipments), "--seed", "3", "--days", "180")
ids = {}
for t in ("late", "lost", "eta"):
    ids[t] = json.loads(drisk("train", "--db", db, "--target", t, "--until", "2025-06-01", "--json"))["model_id"]
same = json.loads(drisk("train", "--db", db, "--target", "late", "--until", "2025-06-01", "--seed", "7",
                        "--json"))["model_id"]           # same window: the same feature schema
other = json.loads(drisk("train", "--db", db, "--target", "late", "--until", "2025-05-01",
                         "--min-count", "100000", "--json"))["model_id"]  # another schema
key = drisk("keys", "--db", db, "create", "--merchant", "acme-outdoor").strip().splitlines()[-1]
now = int(time.time()); c = now - 3 * 86400
f = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
body = json.dumps({"carrier": "apex", "service": "ground", "origin": "R01", "destination": "R05",
                   "declared_value": 120, "weight_kg": 1.5, "created_at": f(c), "promised_at": f(c + 4 * 86400),
                   "scans": [{"ts": f(c), "event": "label_created", "location": "R01-WH-CASA"},
                             {"ts": f(c + 3600), "event": "picked_up", "location": "R01-WH-CASA"},
                             {"ts": f(c + 7200), "event": "arrived_at_facility", "location": "R01-HUB"}]})

def cpu_s(pid):
    v = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")

def metric(text, name):
    m = re.search(r"^" + re.escape(name) + r"(?:\{\})? ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else float("nan")

def round_(shadow):
    drisk("models", "--db", db, "unshadow", str(same)); drisk("models", "--db", db, "unshadow", str(other))
    if shadow:
        drisk("models", "--db", db, "shadow", str(shadow))
    p = subprocess.Popen([D, "--quiet", "serve", "--db", db, "--listen", "127.0.0.1:0", "--threads", "1",
                          "--access-log", "none", "--sweep", "0"], stderr=subprocess.PIPE, text=True)
    port = None
    while port is None:
        line = p.stderr.readline()
        m = re.search(r"listening on http://127.0.0.1:(\d+)", line)
        if m: port = int(m.group(1))
        if not line and p.poll() is not None: sys.exit("server did not start")
    conn = http.client.HTTPConnection("127.0.0.1", port)
    hdr = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
    for _ in range(200):  # warm-up
        conn.request("POST", "/v1/score", body, hdr); conn.getresponse().read()
    conn.request("GET", "/metrics"); m0 = conn.getresponse().read().decode()
    c0 = cpu_s(p.pid)
    for _ in range(a.requests):
        conn.request("POST", "/v1/score", body, hdr); r = conn.getresponse(); r.read()
        assert r.status == 200
    c1 = cpu_s(p.pid)
    conn.request("GET", "/metrics"); m1 = conn.getresponse().read().decode()
    p.terminate(); p.wait()
    n = metric(m1, "drisk_scoring_duration_seconds_count") - metric(m0, "drisk_scoring_duration_seconds_count")
    s = metric(m1, "drisk_scoring_duration_seconds_sum") - metric(m0, "drisk_scoring_duration_seconds_sum")
    shadowed = metric(m1, "drisk_shadow_scorings_total") - metric(m0, "drisk_shadow_scorings_total")
    return (c1 - c0) / a.requests * 1e6, s / n * 1e6, shadowed

res = {"none": [], "same schema": [], "other schema": []}
for _ in range(a.repeat):
    for name, sid in (("none", 0), ("same schema", same), ("other schema", other)):
        res[name].append(round_(sid))
base_cpu = statistics.median(r[0] for r in res["none"])
base_sc = statistics.median(r[1] for r in res["none"])
print(f"{a.requests} POST /v1/score per round, {a.repeat} rounds alternating, 1 server thread; "
      f"active late={ids['late']} lost={ids['lost']} eta={ids['eta']}")
print("| shadow | server CPU µs / request (median) | × none | scoring µs (median) | × none | shadow scorings / round |")
print("|---|---|---|---|---|---|")
for name, rs in res.items():
    cpu = statistics.median(r[0] for r in rs); sc = statistics.median(r[1] for r in rs)
    print(f"| {name} | {cpu:.1f} | {cpu / base_cpu:.2f} | {sc:.1f} | {sc / base_sc:.2f} | {int(rs[-1][2])} |")
