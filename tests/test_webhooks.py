#!/usr/bin/env python3
"""Webhooks out, end to end: the real drisk binary serving, a real HTTP receiver on
127.0.0.1 that verifies every signature the way a merchant's receiver would (Python's own
hmac, not drisk's code), and the failures a receiver shows in the wild.

  test_webhooks.py DRISK_BINARY TMPDIR

Checks: the secret is shown once; bodies are signed as CONTRACT §6 says; a receiver that
is down (nothing listening), answers 500 or hangs gets the events later, in order per
shipment, while scans are answered at once; 410 Gone disables the endpoint; `kill -9` of
the server with retries pending loses nothing (all delivered after the restart);
merchants never see each other's events; loopback, private and non-http(s) endpoints
are refused unless --webhook-allow-private, also when a name only resolves to loopback
at connection time; recommendations' events, and outcomes moving a carrier's claim rate.
Every API response is logged to TMPDIR/responses.jsonl and every event body received to
TMPDIR/events.jsonl, for tests/spec_check.py."""
import hashlib, hmac, http.server, json, os, shutil, socket, subprocess, sys, threading, time
import urllib.request

from drisk_harness import FAILS, Server as _Server, check, free_port, iso, key_for as _key_for, store_target, wait_for

DRISK, TMP = sys.argv[1], sys.argv[2]


def Server(db, extra=()):
    return _Server(DRISK, db, TMP, extra)


def key_for(db, merchant):
    return _key_for(DRISK, db, merchant)


# ---- the receiver ----

class Receiver:
    """Records signed events per path; mode per path: ok, fail (500), slow (sleeps), gone (410)."""

    def __init__(self, secrets, port=None):
        self.secrets = secrets          # path -> secret
        self.mode = {}                  # path -> mode
        self.got = {}                   # path -> [event], first delivery of each id only
        self.bad = []                   # signature failures
        self.hits = 0
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                path = self.path
                with outer.lock:
                    outer.hits += 1
                    mode = outer.mode.get(path, "ok")
                if mode == "slow":
                    time.sleep(3)
                    mode = "fail"
                if mode in ("fail", "gone"):
                    self.send_response(500 if mode == "fail" else 410)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                ok = outer.verify(path, self.headers.get("Drisk-Signature", ""), body)
                self.send_response(200 if ok else 400)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.port = port or free_port()
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def verify(self, path, header, body):
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        secret = self.secrets.get(path, "")
        want = hmac.new(secret.encode(), parts.get("t", "").encode() + b"." + body,
                        hashlib.sha256).hexdigest()
        fresh = abs(time.time() - int(parts.get("t", "0"))) < 300  # a receiver's replay window
        if not (secret and hmac.compare_digest(want, parts.get("v1", "")) and fresh):
            with self.lock:
                self.bad.append((path, header))
            return False
        ev = json.loads(body)
        with self.lock:
            seen = self.got.setdefault(path, [])
            if all(e["id"] != ev["id"] for e in seen):  # at least once: dedupe by id
                seen.append(ev)
            with open(os.path.join(TMP, "events.jsonl"), "a") as f:
                f.write(json.dumps(ev) + "\n")
        return True

    def events(self, path):
        with self.lock:
            return list(self.got.get(path, []))

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def shipment(srv, key, sid):
    now = int(time.time())
    st, body = srv.call("POST", "/v1/shipments", key, {
        "shipment_id": sid, "carrier": "apex", "service": "ground", "origin": "R01",
        "destination": "R02", "created_at": iso(now - 86400), "promised_at": iso(now + 4 * 86400)})
    check(st == 200, f"POST /v1/shipments {sid}: {st} {body}")


def scan(srv, key, sid, event, dt, reason=None):
    sc = {"shipment_id": sid, "ts": iso(int(time.time()) - dt), "event": event, "location": "R01-HUB"}
    if reason:
        sc["reason"] = reason
    t0 = time.monotonic()
    st, body = srv.call("POST", "/v1/scans", key, {"scans": [sc]})
    check(st == 200, f"POST /v1/scans {sid} {event}: {st} {body}")
    return time.monotonic() - t0


def lifecycle(srv, key, sid):
    """alert.opened (exception), alert.escalated (a second one), alert.cleared (delivered)."""
    shipment(srv, key, sid)
    scan(srv, key, sid, "exception", 3000, "weather_delay")
    scan(srv, key, sid, "exception", 2000, "damaged")
    scan(srv, key, sid, "delivered", 1000)


def alert_types(events, sid):
    """The life of sid's carrier_exception alert, as received (a model may open a
    delay_risk alert beside it, depending on its score)."""
    return [e["type"] for e in events if e["data"]["shipment_id"] == sid and
            e["type"].startswith("alert.") and e["data"]["alert"]["type"] == "carrier_exception"]


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    db = store_target(TMP, "hooks.db")
    # a small simulated history ending today and models: recommendations need scores. The
    # history ends now so that the network state the parcels below are scored with is the
    # same whatever the date (a history ending on a fixed day grows older every day, its
    # outcome counts decay and the scores drift with the calendar)
    start = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 365 * 86400))
    for cmd in (["simulate", "--shipments", "3000", "--start", start, "--days", "365"],
                ["train", "--target", "late"]):
        subprocess.run([DRISK, cmd[0], "--db", db, "--quiet", *cmd[1:]], check=True,
                       capture_output=True)
    key_a, key_b = key_for(db, "shop-a"), key_for(db, "shop-b")
    fast = ["--webhook-allow-private", "--webhook-retry-base", "200", "--webhook-timeout", "1"]

    # -- SSRF: without --webhook-allow-private --
    srv = Server(db)
    for url in ("http://127.0.0.1:9/h", "http://10.1.2.3/h", "http://[::1]:8/h", "http://localhost/h",
                "http://127.1/h", "http://2130706433/h", "http://[::ffff:127.0.0.1]/h",
                "http://169.254.169.254/latest", "ftp://example.com/h", "not a url", "http://192.168.1.1/"):
        st, body = srv.call("POST", "/v1/webhooks", key_a, {"url": url, "events": ["alert.opened"]})
        check(st == 422 and body["error"]["code"] == "invalid_url", f"{url} refused: {st} {body}")
    st, body = srv.call("POST", "/v1/webhooks", key_a, {"url": "https://hooks.example.com/x",
                                                        "events": ["nope"]})
    check(st == 422 and body["error"]["code"] == "invalid_event", f"unknown event refused: {st} {body}")
    # a name that passes the literal check but resolves to loopback (this machine's name, in
    # /etc/hosts) is refused when connecting
    recv0 = Receiver({})
    name = socket.gethostname()
    try:
        local = socket.getaddrinfo(name, None)[0][4][0].startswith(("127.", "10.", "192.168.", "172."))
    except OSError:
        local = False
    if not local:
        print(f"skipped: {name} does not resolve to a loopback or private address here")
    st, hook = (srv.call("POST", "/v1/webhooks", key_a, {"url": f"http://{name}:{recv0.port}/r"})
                if local else (0, None))
    if local and check(st == 201, f"a name is accepted at creation: {st} {hook}"):
        shipment(srv, key_a, "SSRF-1")
        scan(srv, key_a, "SSRF-1", "exception", 100, "damaged")
        wait_for(lambda: (srv.call("GET", f"/v1/webhooks/{hook['id']}/deliveries", key_a)[1]
                          ["deliveries"] or [{}])[0].get("attempts", 0) >= 1, 10, "the refused attempt")
        st, log = srv.call("GET", f"/v1/webhooks/{hook['id']}/deliveries", key_a)
        d = log["deliveries"][0]
        check(d["status"] == "pending" and "refused" in (d["last_error"] or ""),
              f"connection-time SSRF guard: {d}")
        check(recv0.hits == 0, f"the loopback receiver got nothing ({recv0.hits} hits)")
        srv.call("DELETE", f"/v1/webhooks/{hook['id']}", key_a)
    recv0.stop()
    srv.stop()

    # -- endpoints, secrets, signatures, two merchants --
    recv = Receiver({})
    srv = Server(db, fast)
    hooks = {}
    for name, key, events in (("a", key_a, ["*"]), ("b", key_b, ["alert.opened", "alert.cleared"])):
        st, h = srv.call("POST", "/v1/webhooks", key, {"url": f"http://127.0.0.1:{recv.port}/{name}",
                                                       "events": events})
        check(st == 201 and h["secret"].startswith("whsec_") and len(h["secret"]) == 70,
              f"create answers the secret: {st} {h}")
        recv.secrets["/" + name] = h["secret"]
        hooks[name] = h
        st, got = srv.call("GET", f"/v1/webhooks/{h['id']}", key)
        check(st == 200 and "secret" not in got and got["url"] == h["url"], f"the secret is shown once: {got}")
    st, lst = srv.call("GET", "/v1/webhooks", key_a)
    check(st == 200 and [w["id"] for w in lst["webhooks"]] == [hooks["a"]["id"]] and
          lst["has_more"] is False, f"a merchant lists its own endpoints only: {lst}")
    st, other = srv.call("GET", f"/v1/webhooks/{hooks['b']['id']}", key_a)
    check(st == 404, f"another merchant's endpoint is not there: {st}")
    st, other = srv.call("DELETE", f"/v1/webhooks/{hooks['b']['id']}", key_a)
    check(st == 404, f"nor can it be deleted: {st}")

    lifecycle(srv, key_a, "A-1")
    lifecycle(srv, key_b, "B-1")
    wait_for(lambda: len(alert_types(recv.events("/a"), "A-1")) >= 3 and
             len(alert_types(recv.events("/b"), "B-1")) >= 2, 15, "the first events")
    check(alert_types(recv.events("/a"), "A-1") == ["alert.opened", "alert.escalated", "alert.cleared"],
          f"shop-a gets its alert's life in order: {alert_types(recv.events('/a'), 'A-1')}")
    check(alert_types(recv.events("/b"), "B-1") == ["alert.opened", "alert.cleared"],
          f"shop-b gets only the types it subscribed to: {alert_types(recv.events('/b'), 'B-1')}")
    check(all(e["data"]["shipment_id"].startswith("A-") for e in recv.events("/a")) and
          all(e["data"]["shipment_id"].startswith("B-") for e in recv.events("/b")),
          "nobody receives another merchant's events")
    ev = recv.events("/a")[0]
    check(ev["id"].startswith("evt_") and ev["data"]["alert"]["type"] == "carrier_exception" and
          "risk" in ev["data"] and ev["created_at"].endswith("Z"), f"event body: {ev}")
    check(not recv.bad, f"every signature verified: {recv.bad[:3]}")

    # -- recommendations: created for an overdue parcel, changed when the carrier declares
    # it lost (a claim), closed when another turns up delivered --
    now = int(time.time())
    for sid in ("A-REC1", "A-REC2"):
        st, body = srv.call("POST", "/v1/shipments", key_a, {
            "shipment_id": sid, "carrier": "apex", "service": "ground", "origin": "R01",
            "destination": "R02", "created_at": iso(now - 9 * 86400),
            "promised_at": iso(now - 3 * 86400)})
        # past its promise and undelivered: late, whatever the model would say
        risk = body["shipments"][0]["risk"] if st == 200 else {}
        check(risk.get("risk_level") == "high" and risk.get("p_late") == 1,
              f"an overdue parcel: {body}")
    scan(srv, key_a, "A-REC1", "lost", 3600)
    scan(srv, key_a, "A-REC2", "delivered", 60)

    def recs(sid):
        return [e for e in recv.events("/a") if e["data"]["shipment_id"] == sid and
                e["type"].startswith("recommendation.")]
    wait_for(lambda: len(recs("A-REC1")) >= 2 and len(recs("A-REC2")) >= 2, 15,
             "the recommendations' events")
    r1, r2 = recs("A-REC1"), recs("A-REC2")
    check([e["type"] for e in r1] == ["recommendation.created", "recommendation.changed"] and
          r1[1]["data"]["recommendation"]["action"] == "file_carrier_claim" and
          r1[0]["data"]["recommendation"]["action"] != "file_carrier_claim",
          f"created, then changed to a claim once lost: {[(e['type'], e['data']['recommendation']) for e in r1]}")
    check([e["type"] for e in r2] == ["recommendation.created", "recommendation.closed"] and
          r2[1]["data"]["recommendation"] == {"shipment_id": "A-REC2", "status": "closed",
                                              "reason": "delivered"},
          f"created, then closed because delivered: {[(e['type'], e['data']['recommendation']) for e in r2]}")

    # -- outcomes: what the merchant did, and settled claims moving the carrier's rate --
    rec_id = r1[1]["data"]["recommendation"]["id"]
    st, b = srv.call("POST", f"/v1/recommendations/{rec_id}/outcome", key_a, {"outcome": "claim_filed"})
    check(st == 200 and b["outcome"]["outcome"] == "claim_filed" and b["outcome"]["amount"] is None,
          f"claim_filed recorded: {st} {b}")
    st, b = srv.call("POST", f"/v1/recommendations/{rec_id}/outcome", key_a, {"outcome": "claim_paid"})
    check(st == 422, f"claim_paid without its amount: {st} {b}")
    st, b = srv.call("POST", f"/v1/recommendations/{rec_id}/outcome", key_a,
                     {"outcome": "claim_filed", "amount": 3})
    check(st == 422, f"an amount on anything but claim_paid: {st} {b}")
    st, b = srv.call("POST", f"/v1/recommendations/{rec_id}/outcome", key_a, {"outcome": "refused"})
    check(st == 400, f"an unknown outcome: {st} {b}")
    st, b = srv.call("POST", f"/v1/recommendations/{rec_id}/outcome", key_b, {"outcome": "accepted"})
    check(st == 404, f"another merchant's recommendation: {st}")
    before = r1[1]["data"]["recommendation"]["expected_costs"]["file_carrier_claim"]
    # five more lost parcels with apex, whose claims the merchant reports denied
    ids = []
    for i in range(5):
        sid = f"A-CLM{i}"
        srv.call("POST", "/v1/shipments", key_a, {
            "shipment_id": sid, "carrier": "apex", "service": "ground", "origin": "R01",
            "destination": "R02", "created_at": iso(now - 9 * 86400), "promised_at": iso(now - 3 * 86400)})
        scan(srv, key_a, sid, "lost", 3600)
        st, v = srv.call("GET", f"/v1/shipments/{sid}", key_a)
        ids.append(v["recommendation"]["id"])
    for rid in ids:
        st, b = srv.call("POST", f"/v1/recommendations/{rid}/outcome", key_a, {"outcome": "claim_denied"})
        check(st == 200 and b["outcome"]["outcome"] == "claim_denied", f"claim_denied: {st} {b}")
    st, b = srv.call("POST", f"/v1/recommendations/{rec_id}/outcome", key_a,
                     {"outcome": "claim_paid", "amount": 42.5, "note": "paid by cheque"})
    check(st == 200 and b["outcome"] == {"outcome": "claim_paid", "amount": 42.5, "at": b["outcome"]["at"]},
          f"claim_paid with its amount: {b}")
    # 1 paid of 6 settled against a prior of 0.9 worth 10 claims: (9 + 1) / 16 = 0.625
    sid = "A-CLM-NEXT"
    srv.call("POST", "/v1/shipments", key_a, {
        "shipment_id": sid, "carrier": "apex", "service": "ground", "origin": "R01",
        "destination": "R02", "created_at": iso(now - 9 * 86400), "promised_at": iso(now - 3 * 86400)})
    scan(srv, key_a, sid, "lost", 3600)
    st, v = srv.call("GET", f"/v1/shipments/{sid}", key_a)
    rec = v["recommendation"]
    after = rec["expected_costs"]["file_carrier_claim"]
    check("0.62" in rec["why"] and "apex paid 1 of your 6 settled claims" in rec["why"],
          f"the carrier's observed claim success in the reasoning: {rec['why']}")
    check(abs((after - before) - (0.9 - 0.625) * 50) < 0.5,
          f"a claim's expected cost rose by p_lost x (0.9 - 0.625) x value: {before} -> {after}")

    # -- a receiver that answers 500, then comes back: retried, in order --
    recv.mode["/a"] = "fail"
    lifecycle(srv, key_a, "A-2")
    wait_for(lambda: any(d["attempts"] >= 2 for d in
                         srv.call("GET", f"/v1/webhooks/{hooks['a']['id']}/deliveries?status=pending",
                                  key_a)[1]["deliveries"]), 10, "retries after 500")
    st, log = srv.call("GET", f"/v1/webhooks/{hooks['a']['id']}/deliveries?status=pending", key_a)
    tried = [d for d in log["deliveries"] if d["attempts"]]
    check(st == 200 and tried and tried[0]["last_status_code"] == 500 and tried[0]["next_attempt_at"] and
          "500" in tried[0]["last_error"], f"the log shows the 500 and the next try: {log}")
    check(all(d["attempts"] == 0 for d in log["deliveries"] if d["id"] > tried[0]["id"]),
          "later events of the shipment wait behind the one retried (order per shipment)")
    recv.mode["/a"] = "ok"
    wait_for(lambda: len(alert_types(recv.events("/a"), "A-2")) >= 3, 20, "delivery after 500s")
    check(alert_types(recv.events("/a"), "A-2") == ["alert.opened", "alert.escalated", "alert.cleared"],
          f"in order per shipment after retries: {alert_types(recv.events('/a'), 'A-2')}")

    # -- a receiver that hangs: scans are answered at once meanwhile --
    recv.mode["/a"] = "slow"
    shipment(srv, key_a, "A-3")
    slowest = max(scan(srv, key_a, "A-3", "exception", 3000 - 100 * i, "damaged") for i in range(5))
    check(slowest < 0.5, f"scans answered while the receiver hangs (slowest {slowest:.3f} s)")
    recv.mode["/a"] = "ok"
    wait_for(lambda: alert_types(recv.events("/a"), "A-3")[:2] == ["alert.opened", "alert.escalated"],
             20, "delivery after timeouts")

    # -- redelivery on request --
    st, log = srv.call("GET", f"/v1/webhooks/{hooks['a']['id']}/deliveries?status=delivered&limit=1", key_a)
    did = log["deliveries"][0]["id"]
    hits = recv.hits
    st, d = srv.call("POST", f"/v1/webhooks/{hooks['a']['id']}/deliveries/{did}/redeliver", key_a)
    check(st == 202 and d["status"] == "pending", f"redeliver: {st} {d}")
    wait_for(lambda: recv.hits > hits, 5, "the redelivery")

    # -- kill -9 with retries pending: everything arrives after the restart --
    recv.mode["/a"] = "fail"
    for i in range(4):
        lifecycle(srv, key_a, f"K-{i}")
    wait_for(lambda: sum(d["attempts"] >= 1 for d in
                         srv.call("GET", f"/v1/webhooks/{hooks['a']['id']}/deliveries?status=pending&limit=100",
                                  key_a)[1]["deliveries"]) >= 4, 10, "attempts before the kill")
    st, log = srv.call("GET", f"/v1/webhooks/{hooks['a']['id']}/deliveries?status=pending&limit=100", key_a)
    pending = {f"evt_{d['event_id'][4:]}" for d in log["deliveries"]}
    check(len(pending) >= 12, f"12 events pending before the kill ({len(pending)})")
    srv.kill9()
    recv.mode["/a"] = "ok"
    srv = Server(db, fast)
    wait_for(lambda: pending <= {e["id"] for e in recv.events("/a")}, 30, "every pending event after kill -9")
    for i in range(4):
        check(alert_types(recv.events("/a"), f"K-{i}") == ["alert.opened", "alert.escalated", "alert.cleared"],
              f"K-{i} in order across the restart: {alert_types(recv.events('/a'), f'K-{i}')}")

    # -- a receiver that is down (nothing listening), then comes up on its port --
    key_c = key_for(db, "shop-c")
    down_port = free_port()
    st, hc = srv.call("POST", "/v1/webhooks", key_c, {"url": f"http://127.0.0.1:{down_port}/c"})
    check(st == 201, f"shop-c's endpoint: {st} {hc}")
    lifecycle(srv, key_c, "C-1")
    wait_for(lambda: any(d["attempts"] >= 2 for d in
                         srv.call("GET", f"/v1/webhooks/{hc['id']}/deliveries", key_c)[1]["deliveries"]),
             10, "retries while the receiver is down")
    st, log = srv.call("GET", f"/v1/webhooks/{hc['id']}/deliveries", key_c)
    tried = [d for d in log["deliveries"] if d["attempts"]]
    check(tried and tried[0]["last_status_code"] is None and "onnect" in (tried[0]["last_error"] or ""),
          f"no answer: no status, the connection error: {tried[:1]}")
    recv_c = Receiver({"/c": hc["secret"]}, port=down_port)
    wait_for(lambda: len(alert_types(recv_c.events("/c"), "C-1")) >= 3, 20, "delivery once it is up")
    check(alert_types(recv_c.events("/c"), "C-1") == ["alert.opened", "alert.escalated", "alert.cleared"],
          f"in order once the receiver is up: {alert_types(recv_c.events('/c'), 'C-1')}")
    check(not recv_c.bad and not recv.events("/c") and
          all(not e["data"]["shipment_id"].startswith("C-") for e in recv.events("/a") + recv.events("/b")),
          "shop-c's events went to shop-c's receiver only")
    recv_c.stop()

    # -- 410 Gone disables the endpoint --
    recv.mode["/b"] = "gone"
    lifecycle(srv, key_b, "B-2")
    wait_for(lambda: srv.call("GET", f"/v1/webhooks/{hooks['b']['id']}", key_b)[1]["status"] == "disabled",
             10, "410 disabling the endpoint")
    st, w = srv.call("GET", f"/v1/webhooks/{hooks['b']['id']}", key_b)
    check(w["disabled_reason"] and "410" in w["disabled_reason"], f"disabled with its reason: {w}")
    st, log = srv.call("GET", f"/v1/webhooks/{hooks['b']['id']}/deliveries?status=pending", key_b)
    check(st == 200 and not log["deliveries"], f"nothing left pending for a disabled endpoint: {log}")
    st, d = srv.call("POST", f"/v1/webhooks/{hooks['b']['id']}/deliveries/999999/redeliver", key_b)
    check(st == 404, f"redeliver of an unknown delivery: {st}")
    st, log = srv.call("GET", f"/v1/webhooks/{hooks['b']['id']}/deliveries?limit=1", key_b)
    st, d = srv.call("POST", f"/v1/webhooks/{hooks['b']['id']}/deliveries/{log['deliveries'][0]['id']}/redeliver",
                     key_b)
    check(st == 409 and d["error"]["code"] == "webhook_disabled", f"redeliver to a disabled endpoint: {st} {d}")
    st, d = srv.call("GET", f"/v1/webhooks/{hooks['b']['id']}/deliveries?status=lost", key_b)
    check(st == 400, f"an unknown delivery status filter: {st}")
    # at most 16 endpoints a merchant (shop-c has one)
    codes = [srv.call("POST", "/v1/webhooks", key_c, {"url": f"https://hooks.example.com/{i}"})[0]
             for i in range(16)]
    check(codes == [201] * 15 + [409], f"the 17th endpoint is refused: {codes}")

    # -- metrics, deletion --
    text = urllib.request.urlopen(srv.base + "/metrics").read().decode()
    check('drisk_webhook_attempts_total{result="delivered"}' in text, "webhook metrics exported")
    st, d = srv.call("DELETE", f"/v1/webhooks/{hooks['a']['id']}", key_a)
    check(st == 200 and d["deleted"] is True, f"delete: {st} {d}")
    st, d = srv.call("GET", f"/v1/webhooks/{hooks['a']['id']}", key_a)
    check(st == 404, f"gone after delete: {st}")
    srv.stop()
    recv.stop()
    print(f"{len(FAILS)} failures")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
