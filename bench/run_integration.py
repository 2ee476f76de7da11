#!/usr/bin/env python3
"""Merchant integration under load (issue 12's figures), on one server, in one run:

  bench/run_integration.py [--shipments 20000] [--duration 10] [--rate 200] [--repeat 3]

1. Webhooks while scans stream in. A receiver in its own process (asyncio, keep-alive,
   answers 200 at once, records the arrival time of every body; signatures are checked
   after the run) and one endpoint for alert.opened. Each scan POSTed is an exception on
   a shipment that had none, so each opens exactly one alert, hence one event.
   - steady: --rate scans (events) per second in batches every 0.1 s for --duration s;
     the delay from the moment a scan's POST was sent to its event's arrival, p50 / p99,
     split into the POST's own time (its durable commit) and what follows its answer;
   - flood: two senders POST batches of 100 as fast as the server takes them for
     --duration s; events delivered per second (all of them, from the first send to the
     last arrival), the scans per second that went in meanwhile, and the backlog left
     when the senders stopped.
2. Tracking webhooks in against POST /v1/scans: the same tracking updates (an EasyPost
   tracker.updated body of 5 scans for a new tracking number, signed as EasyPost signs)
   POSTed to /v1/inbound/easypost, and as 5-scan batches to /v1/scans for shipments
   created beforehand; wrk, 2 threads, 16 connections, --duration s each, alternating,
   --repeat times; payloads per second, medians.

A store with a simulated history of --shipments (models trained) is built first, as in
bench/run_server.sh. Figures: bench/out/integration/summary.json, a table on stdout."""
import argparse, asyncio, hashlib, hmac, http.client, json, multiprocessing, os, signal
import statistics, subprocess, sys, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from drisk_harness import free_port, iso  # noqa: E402
MERCHANT = "acme-outdoor"



# ---- the receiver (its own process) ----

def receiver_main(port, out_path, secret_path, ready, count):
    recs = []

    async def handle(reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                clen, sig = 0, b""
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.partition(b":")
                    k = k.strip().lower()
                    if k == b"content-length":
                        clen = int(v)
                    elif k == b"drisk-signature":
                        sig = v.strip()
                body = await reader.readexactly(clen)
                recs.append((time.time(), sig, body))
                if b'"carrier_exception"' in body: # the ones the senders cause, one each
                    with count.get_lock():
                        count.value += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        writer.close()

    async def main():
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        ready.set()
        await stop.wait()
        server.close()

    asyncio.run(main())
    secret = open(secret_path).read().strip().encode()
    bad = 0
    with open(out_path, "w") as f:
        for t, sig, body in recs:
            parts = dict(p.split(b"=", 1) for p in sig.split(b",") if b"=" in p)
            want = hmac.new(secret, parts.get(b"t", b"") + b"." + body, hashlib.sha256).hexdigest()
            bad += want.encode() != parts.get(b"v1")
            ev = json.loads(body)
            f.write(json.dumps({"t": t, "id": ev["id"], "type": ev["type"],
                                "alert": ev["data"]["alert"]["type"],
                                "shipment_id": ev["data"]["shipment_id"]}) + "\n")
    with open(out_path + ".bad", "w") as f:
        f.write(str(bad))


# ---- a small keep-alive client ----

class Client:
    """Keep-alive; a connection the server closed while idle (--header-timeout) is
    reopened once."""

    def __init__(self, port, key):
        self.port = port
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.h = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}

    def call(self, method, path, obj):
        for attempt in (0, 1):
            try:
                self.c.request(method, path, json.dumps(obj), self.h)
                r = self.c.getresponse()
                body = r.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.c.close()
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt:
                    raise
        if r.status >= 300:
            raise SystemExit(f"{method} {path}: {r.status} {body[:300]!r}")
        return json.loads(body)

    def post(self, path, obj):
        return self.call("POST", path, obj)


def create_shipments(client, prefix, n, now):
    for i in range(0, n, 1000):
        client.post("/v1/shipments", {"shipments": [
            {"shipment_id": f"{prefix}{j}", "carrier": "parcelco", "service": "ground",
             "origin": "R01", "destination": "R07", "created_at": iso(now - 86400),
             "promised_at": iso(now + 4 * 86400)} for j in range(i, min(n, i + 1000))]})


def exception_batch(ids, now):
    return {"scans": [{"shipment_id": s, "ts": iso(now - 3600), "event": "exception",
                       "reason": "damaged", "location": "R01-HUB"} for s in ids]}


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


# ---- phase 1: webhooks ----

def steady(port, key, rate, duration, now, sent, acked, post_ms):
    """rate events/s for duration s; sent[shipment_id] = send time, acked[...] = when its
    POST was answered; post_ms: each POST's time."""
    cl = Client(port, key)
    per_tick = max(1, rate // 10)
    ticks = int(duration * 10)
    ids = [f"WS-{i}" for i in range(per_tick * ticks)]
    create_shipments(cl, "WS-", len(ids), now)
    start = time.time()
    for k in range(ticks):
        delay = start + k * 0.1 - time.time()
        if delay > 0:
            time.sleep(delay)
        batch = ids[k * per_tick:(k + 1) * per_tick]
        t = time.time()
        for s in batch:
            sent[s] = t
        cl.post("/v1/scans", exception_batch(batch, now))
        t2 = time.time()
        post_ms.append((t2 - t) * 1000)
        for s in batch:
            acked[s] = t2
    return len(ids)


def flood(port, key, duration, now, sent, pool):
    """Two senders, batches of 100, as fast as accepted; returns (scans, seconds)."""
    lock = threading.Lock()
    nxt = [0]
    stop_at = time.time() + duration
    total = [0]

    def sender():
        cl = Client(port, key)
        while time.time() < stop_at:
            with lock:
                a = nxt[0]
                nxt[0] += 100
            if a + 100 > len(pool):
                break
            batch = pool[a:a + 100]
            t = time.time()
            for s in batch:
                sent[s] = t
            cl.post("/v1/scans", exception_batch(batch, now))
            with lock:
                total[0] += 100

    t0 = time.time()
    th = [threading.Thread(target=sender) for _ in range(2)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    return total[0], time.time() - t0


# ---- phase 2: inbound vs scans ----

def easypost_body(tracking, now):
    details = []
    steps = [("pre_transit", "label_created", "Label created"), ("in_transit", "received_at_origin_facility", "Origin Scan"),
             ("in_transit", "departed_origin_facility", "Departed"), ("in_transit", "arrived_at_facility", "Arrived"),
             ("out_for_delivery", "out_for_delivery", "Out For Delivery")]
    for i, (st, detail, msg) in enumerate(steps):
        details.append({"object": "TrackingDetail", "message": msg, "description": msg, "status": st,
                        "status_detail": detail, "datetime": iso(now - 86400 * 2 + i * 6 * 3600),
                        "source": "UPS", "carrier_code": "XX",
                        "tracking_location": {"object": "TrackingLocation", "city": "EDISON",
                                              "state": "NJ", "country": "US", "zip": f"0{8837 + i}"}})
    return {"description": "tracker.updated", "mode": "production", "object": "Event",
            "id": f"evt_{tracking}", "result": {
                "id": f"trk_{tracking}", "object": "Tracker", "mode": "production",
                "tracking_code": tracking, "status": "out_for_delivery", "carrier": "UPS",
                "est_delivery_date": iso(now + 86400), "created_at": iso(now - 86400 * 2 - 60),
                "tracking_details": details,
                "carrier_detail": {"object": "CarrierDetail", "service": "Ground",
                                   "destination_tracking_location": {"zip": "43215"}}}}


def scans_of(body):
    r = body["result"]
    return {"scans": [{"shipment_id": r["tracking_code"], "ts": d["datetime"], "event": d["status_detail"]
                       if d["status_detail"] != "received_at_origin_facility" else "picked_up",
                       "location": d["tracking_location"]["zip"]} for d in r["tracking_details"]]}


def wrk(port, key, bodies, duration, skip):
    env = dict(os.environ, DRISK_KEY=key, DRISK_BODIES=bodies, DRISK_THREADS="2", DRISK_SKIP=str(skip))
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{max(1, int(duration))}s", "--timeout", "10s", "-s",
                          "bench/wrk/bodies.lua", f"http://127.0.0.1:{port}"],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shipments", type=int, default=20000)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--drisk", default=os.path.join(ROOT, "build/drisk"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/out/integration"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if subprocess.run(["which", "wrk"], capture_output=True).returncode:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    db = os.path.join(a.out, "integration.db")
    for f in (db, db + "-wal", db + "-shm"):
        if os.path.exists(f):
            os.remove(f)
    now = int(time.time())
    start = time.strftime("%Y-%m-%d", time.gmtime(now - 365 * 86400))
    until = time.strftime("%Y-%m-%d", time.gmtime(now - 30 * 86400))
    run = lambda *args: subprocess.run([a.drisk, *args, "--db", db, "--quiet"], check=True,
                                       capture_output=True, text=True).stdout
    print(f"==> simulating {a.shipments} shipments, training late and lost", file=sys.stderr)
    run("simulate", "--shipments", str(a.shipments), "--seed", "7", "--start", start, "--days", "365")
    for t in ("late", "lost"):
        run("train", "--target", t, "--until", until)
    key = subprocess.run([a.drisk, "keys", "--db", db, "create", "--merchant", MERCHANT],
                         check=True, capture_output=True, text=True).stdout.split()[-1]

    # the receiver
    rport = free_port()
    rec_path, secret_path = os.path.join(a.out, "received.jsonl"), os.path.join(a.out, "secret")
    ready, count = multiprocessing.Event(), multiprocessing.Value("l", 0)
    recv = multiprocessing.Process(target=receiver_main, args=(rport, rec_path, secret_path, ready, count))
    recv.start()
    ready.wait(10)

    port = free_port()
    log = open(os.path.join(a.out, "serve.log"), "w")
    srv = subprocess.Popen([a.drisk, "serve", "--db", db, "--listen", f"127.0.0.1:{port}",
                            "--sweep", "0", "--access-log", "none", "--webhook-allow-private"],
                           stdout=log, stderr=log)
    for _ in range(600):
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
            break
        except OSError:
            time.sleep(0.1)
    time.sleep(0.5)

    def cleanup():
        if srv.poll() is None:
            srv.kill()
        if recv.is_alive():
            recv.kill()
    import atexit
    atexit.register(cleanup)
    cl = Client(port, key)
    hook = cl.post("/v1/webhooks", {"url": f"http://127.0.0.1:{rport}/drisk", "events": ["alert.opened"]})
    open(secret_path, "w").write(hook["secret"])
    summary = {"shipments": a.shipments, "duration_s": a.duration, "rate": a.rate}

    def drain(expected, seconds=120):
        end = time.time() + seconds
        while count.value < expected and time.time() < end:
            time.sleep(0.02)
        return count.value

    sent, acked, post_ms = {}, {}, []
    print(f"==> steady: {a.rate} events/s for {a.duration} s", file=sys.stderr)
    n = steady(port, key, a.rate, a.duration, now, sent, acked, post_ms)
    drain(n)
    steady_ids = set(sent)
    print("==> flood", file=sys.stderr)
    pool = [f"WF-{i}" for i in range(int(a.duration * 8000))]
    create_shipments(cl, "WF-", len(pool), now)
    before = count.value
    t_start = time.time()
    flood_sent = {}
    scans, secs = flood(port, key, a.duration, now, flood_sent, pool)
    backlog = scans - (count.value - before)
    got = drain(before + scans)
    t_end = time.time()
    sent.update(flood_sent)

    # phase 2: inbound vs scans, the same updates
    secret = "bench-easypost-secret"
    cl.call("PUT", "/v1/inbound/easypost/secret", {"secret": secret})
    per_run = 25000
    total = per_run * a.repeat
    inbound_lines, scan_lines = os.path.join(a.out, "inbound.txt"), os.path.join(a.out, "scans.txt")
    print(f"==> preparing {total} tracking updates both ways", file=sys.stderr)
    with open(inbound_lines, "w") as fi, open(scan_lines, "w") as fs:
        for i in range(total):
            body = json.dumps(easypost_body(f"1ZBENCH{i:09d}", now), separators=(",", ":"))
            mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
            fi.write(f"/v1/inbound/easypost?merchant={MERCHANT}\tX-Hmac-Signature: hmac-sha256-hex={mac}\t{body}\n")
            fs.write(f"/v1/scans\t-\t{json.dumps(scans_of(easypost_body(f'SCB{i:09d}', now)), separators=(',', ':'))}\n")
    for i in range(0, total, 1000):
        cl.post("/v1/shipments", {"shipments": [
            {"shipment_id": f"SCB{j:09d}", "carrier": "ups", "service": "Ground", "origin": "08837",
             "destination": "43215", "created_at": iso(now - 86400 * 2 - 60), "promised_at": iso(now + 86400)}
            for j in range(i, min(total, i + 1000))]})
    runs = {"inbound": [], "scans": []}
    for rep in range(a.repeat):
        for route, path in (("inbound", inbound_lines), ("scans", scan_lines)):
            r = wrk(port, key, path, a.duration, rep * per_run)
            runs[route].append(r)
            print(f"  {route} rep {rep + 1}: {r['rps']:,.0f} payloads/s, p99 {r['p99_ms']:.1f} ms, non-2xx {r['non2xx']}",
                  file=sys.stderr)
    srv.terminate()
    srv.wait(30)
    recv.terminate()
    recv.join(60)

    # figures
    arrivals = {}
    for line in open(rec_path):
        r = json.loads(line)
        if r["alert"] == "carrier_exception":
            arrivals.setdefault(r["shipment_id"], r["t"])
    delays = [(arrivals[s] - t) * 1000 for s, t in sent.items() if s in steady_ids and s in arrivals]
    after_ack = [(arrivals[s] - t) * 1000 for s, t in acked.items() if s in arrivals]
    missing = [s for s in sent if s not in arrivals]
    last = max(arrivals[s] for s in flood_sent if s in arrivals)
    summary["steady"] = {"events": len(steady_ids), "delivered": len(delays),
                         "delay_p50_ms": pct(delays, 0.5), "delay_p99_ms": pct(delays, 0.99),
                         "delay_max_ms": max(delays) if delays else None,
                         "post_p50_ms": pct(post_ms, 0.5), "post_p99_ms": pct(post_ms, 0.99),
                         "after_answer_p50_ms": pct(after_ack, 0.5),
                         "after_answer_p99_ms": pct(after_ack, 0.99)}
    summary["flood"] = {"scans": scans, "seconds": secs, "scans_per_s": scans / secs,
                        "backlog_when_senders_stopped": backlog,
                        "delivered_per_s": len([s for s in flood_sent if s in arrivals]) / (last - t_start),
                        "drained_s_after_senders": last - (t_start + secs)}
    summary["missing_events"] = len(missing)
    summary["bad_signatures"] = int(open(rec_path + ".bad").read())
    summary["inbound_vs_scans"] = {
        route: {"payloads_per_s_median": statistics.median(r["rps"] for r in rs),
                "p99_ms_median": statistics.median(r["p99_ms"] for r in rs),
                "runs": [round(r["rps"]) for r in rs], "non2xx": sum(r["non2xx"] for r in rs)}
        for route, rs in runs.items()}
    summary["inbound_over_scans_paired_median"] = statistics.median(
        i["rps"] / s["rps"] for i, s in zip(runs["inbound"], runs["scans"]))
    json.dump(summary, open(os.path.join(a.out, "summary.json"), "w"), indent=1)
    st, fl, ivs = summary["steady"], summary["flood"], summary["inbound_vs_scans"]
    print(f"| webhooks, steady {a.rate}/s | {st['delivered']}/{st['events']} delivered | delay p50 "
          f"{st['delay_p50_ms']:.1f} ms, p99 {st['delay_p99_ms']:.1f} ms, max {st['delay_max_ms']:.0f} ms | "
          f"the scan POST itself p50 {st['post_p50_ms']:.1f} ms, p99 {st['post_p99_ms']:.1f} ms; from its "
          f"answer to the event p50 {st['after_answer_p50_ms']:.1f} ms, p99 {st['after_answer_p99_ms']:.1f} ms |")
    print(f"| webhooks, flood | {fl['delivered_per_s']:,.0f} events/s delivered while {fl['scans_per_s']:,.0f} "
          f"scans/s went in | backlog {fl['backlog_when_senders_stopped']} when the senders stopped, drained "
          f"{fl['drained_s_after_senders']:.1f} s later |")
    print(f"| inbound (EasyPost, 5 scans) | {ivs['inbound']['payloads_per_s_median']:,.0f} payloads/s | "
          f"/v1/scans, same 5 scans: {ivs['scans']['payloads_per_s_median']:,.0f}/s | ratio "
          f"{summary['inbound_over_scans_paired_median']:.2f} (paired median) |")
    print(f"missing events {len(missing)}, bad signatures {summary['bad_signatures']}, "
          f"non-2xx {ivs['inbound']['non2xx']} / {ivs['scans']['non2xx']}")
    return 1 if missing or summary["bad_signatures"] else 0


if __name__ == "__main__":
    sys.exit(main())
