#!/usr/bin/env python3
"""Aggregator tracking webhooks in, end to end: the providers' documented bodies
(tests/fixtures/inbound, SOURCES.md says where each came from) POSTed to a real drisk
server, signed the way each provider signs (computed here with Python's hmac, not drisk's
code).

  test_inbound.py DRISK_BINARY FIXTURES_DIR TMPDIR

Checks, for EasyPost, AfterShip and Shippo: an unknown tracking number creates the
shipment, promised by the carrier's estimate, which is kept and shown as carrier_eta;
each history entry becomes the drisk event docs/VOCABULARY.md names; a repeated delivery
stores nothing new; the later (delivered) body adds what is new and delivers the
shipment; entries naming no event are reported as skipped; wrong, missing or stale
signatures, a tampered body and an unknown merchant are refused with 401 and store
nothing; Shippo's URL token works where it does not sign; a merchant's key may relay a
body unsigned; other event types are answered 200 and ignored. Responses go to
TMPDIR/responses.jsonl for tests/spec_check.py."""
import base64, hashlib, hmac, json, os, shutil, sys, time

from drisk_harness import FAILS, Server, check, key_for, store_target

DRISK, FIX, TMP = sys.argv[1], sys.argv[2], sys.argv[3]
SECRET = "drisk-fixture-secret"


def body_of(name):
    with open(os.path.join(FIX, name), "rb") as f:
        return f.read()


def sign(provider, raw, secret=SECRET, t=None):
    mac = hmac.new(secret.encode(), raw, hashlib.sha256)
    if provider == "easypost":
        return {"X-Hmac-Signature": "hmac-sha256-hex=" + mac.hexdigest()}
    if provider == "aftership":
        return {"aftership-hmac-sha256": base64.b64encode(mac.digest()).decode()}
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), f"{t}.".encode() + raw, hashlib.sha256)
    return {"Shippo-Auth-Signature": f"t={t},v1={mac.hexdigest()}"}


# what each fixture must become: (provider, in-transit file, delivered file, tracking number,
# carrier, carrier_eta after the first body, the first events in order)
CASES = [
    ("easypost", "easypost_tracker_updated.json", "easypost_delivered.json", "1Z4W78310361927051",
     "ups", "2026-11-19T23:59:59Z",
     ["label_created", "picked_up", "departed_facility"]),
    ("aftership", "aftership_tracking_update.json", "aftership_delivered.json",
     "9405511206218430372193", "usps", "2026-11-19T23:59:59Z",
     ["label_created", "in_transit"]),
    ("shippo", "shippo_track_updated.json", "shippo_delivered.json", "783610950241", "fedex",
     None, ["label_created", "picked_up"]),
]


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    db = store_target(TMP, "inbound.db")
    key_a, key_b = key_for(DRISK, db, "shop-a"), key_for(DRISK, db, "shop-b")
    srv = Server(DRISK, db, TMP)
    for provider, *_ in CASES:
        st, b = srv.call("PUT", f"/v1/inbound/{provider}/secret", key_a, {"secret": SECRET})
        check(st == 200 and b["configured"] and b["path"].startswith(f"/v1/inbound/{provider}?merchant=shop-a"),
              f"{provider}: secret set: {st} {b}")
    st, b = srv.call("PUT", "/v1/inbound/fedex/secret", key_a, {"secret": SECRET})
    check(st == 404, f"an unknown provider: {st}")
    st, b = srv.call("PUT", "/v1/inbound/easypost/secret", key_a, {"secret": "short"})
    check(st == 400, f"a secret too short: {st}")

    for provider, first, later, tracking, carrier, eta, events in CASES:
        raw = body_of(first)
        url = f"/v1/inbound/{provider}?merchant=shop-a"
        # refused: nothing stored
        bad = dict(sign(provider, raw, "another-secret-entirely"))
        st, b = srv.call("POST", url, raw=raw, headers=bad)
        check(st == 401 and b["error"]["code"] == "bad_signature", f"{provider}: wrong secret: {st} {b}")
        tampered = raw.replace(b"\"", b"\"", 1)[:-2] + b" }\n" if raw.endswith(b"}\n") else raw + b" "
        st, b = srv.call("POST", url, raw=tampered, headers=sign(provider, raw))
        check(st == 401, f"{provider}: a body changed after signing: {st} {b}")
        if provider != "shippo":
            st, b = srv.call("POST", url, raw=raw)
            check(st == 401, f"{provider}: unsigned: {st} {b}")
        st, b = srv.call("POST", f"/v1/inbound/{provider}?merchant=nobody", raw=raw,
                         headers=sign(provider, raw))
        check(st == 401, f"{provider}: a merchant without a secret: {st} {b}")
        st, b = srv.call("POST", f"/v1/inbound/{provider}", raw=raw, headers=sign(provider, raw))
        check(st == 401, f"{provider}: no merchant named: {st} {b}")
        st, b = srv.call("GET", f"/v1/shipments/{tracking}", key_a)
        check(st == 404, f"{provider}: nothing stored by refused requests: {st}")

        # the in-transit body: the shipment is created
        st, b = srv.call("POST", url, raw=raw, headers=sign(provider, raw))
        if not check(st == 200, f"{provider}: signed body taken: {st} {b}"):
            continue
        n_scans = b["inserted"]
        check(b["created"] is True and b["shipment_id"] == tracking and n_scans >= 3 and
              b["duplicates"] == 0 and n_scans + len(b["skipped"]) == b["received"],
              f"{provider}: created with its scans: {b}")
        if eta:
            check(b["carrier_eta"] == eta, f"{provider}: the carrier's estimate kept: {b['carrier_eta']}")
        st, v = srv.call("GET", f"/v1/shipments/{tracking}", key_a)
        sh = v["shipment"]
        check(sh["carrier"] == carrier and sh["carrier_eta"] == b["carrier_eta"] and
              (eta is None or sh["promised_at"] == eta),
              f"{provider}: shipment as stored (carrier, estimate, promise): {sh}")
        got = [t["event"] for t in sh["timeline"]]
        check(got[:len(events)] == events and len(got) == n_scans,
              f"{provider}: events mapped through the vocabulary: {got}")

        # the same body again: idempotent
        st, b = srv.call("POST", url, raw=raw, headers=sign(provider, raw))
        check(st == 200 and b["inserted"] == 0 and b["duplicates"] == n_scans and b["created"] is False,
              f"{provider}: a repeated delivery stores nothing new: {b}")

        # the delivered body: the history grows, the shipment is delivered
        raw2 = body_of(later)
        st, b = srv.call("POST", url, raw=raw2, headers=sign(provider, raw2))
        check(st == 200 and b["inserted"] > 0 and b["duplicates"] == n_scans,
              f"{provider}: the later body adds only what is new: {b}")
        st, v = srv.call("GET", f"/v1/shipments/{tracking}", key_a)
        check(v["shipment"]["outcome"] == "delivered" and v["shipment"]["delivered_at"],
              f"{provider}: delivered: {v['shipment']['outcome']}")
        if provider == "easypost":
            check(any(s["status"] == "unknown" for s in b["skipped"]),
                  f"easypost: the 'unknown' entry is reported, not stored: {b['skipped']}")

        # another merchant's same tracking number is its own shipment
        st, b = srv.call("POST", f"/v1/inbound/{provider}", key_b, raw=raw)
        check(st == 200 and b["created"] is True, f"{provider}: shop-b relays with its key: {st} {b}")
        st, v = srv.call("GET", f"/v1/shipments/{tracking}", key_b)
        check(st == 200 and v["shipment"]["outcome"] is None,
              f"{provider}: shop-b's shipment is not shop-a's: {v['shipment']['outcome']}")

    # a shipment the merchant created keeps its own fields: only the carrier's estimate moves
    own = {"shipment_id": "1Z4W78310361927051", "carrier": "ups", "service": "next_day",
           "origin": "10001", "destination": "43215", "created_at": "2026-11-16T12:00:00Z",
           "promised_at": "2026-11-18T23:00:00Z"}
    key_c = key_for(DRISK, db, "shop-c")
    srv.call("PUT", "/v1/inbound/easypost/secret", key_c, {"secret": SECRET})
    st, b = srv.call("POST", "/v1/shipments", key_c, own)
    raw = body_of("easypost_tracker_updated.json")
    st, b = srv.call("POST", "/v1/inbound/easypost?merchant=shop-c", raw=raw, headers=sign("easypost", raw))
    check(st == 200 and b["created"] is False and b["inserted"] > 0, f"known shipment: {st} {b}")
    st, v = srv.call("GET", f"/v1/shipments/{own['shipment_id']}", key_c)
    sh = v["shipment"]
    check(all(sh[k] == own[k] for k in ("service", "origin", "promised_at", "created_at")) and
          sh["carrier_eta"] == "2026-11-19T23:59:59Z",
          f"its fields kept, the estimate stored: {sh}")

    # Shippo: a stale signature, and the URL token (its default) instead of a signature
    raw = body_of("shippo_track_updated.json")
    st, b = srv.call("POST", "/v1/inbound/shippo?merchant=shop-a", raw=raw,
                     headers=sign("shippo", raw, t=int(time.time()) - 3600))
    check(st == 401 and "from now" in b["error"]["message"], f"shippo: a replayed signature: {st} {b}")
    st, b = srv.call("POST", f"/v1/inbound/shippo?merchant=shop-a&token={SECRET}", raw=raw)
    check(st == 200 and b["duplicates"] > 0, f"shippo: the URL token: {st} {b}")
    st, b = srv.call("POST", "/v1/inbound/shippo?merchant=shop-a&token=wrong-token-x", raw=raw)
    check(st == 401, f"shippo: a wrong URL token: {st} {b}")

    # other event types: 200, ignored
    other = json.dumps({"description": "batch.created", "result": {"id": "batch_1"}}).encode()
    st, b = srv.call("POST", "/v1/inbound/easypost?merchant=shop-a", raw=other,
                     headers=sign("easypost", other))
    check(st == 200 and b.get("ignored") == "batch.created", f"an event that is not a tracker: {st} {b}")
    st, b = srv.call("POST", "/v1/inbound/ups?merchant=shop-a", raw=other)
    check(st == 404, f"an unknown provider's route: {st}")
    # a shape that is not the provider's
    junk = b'{"hello": "world"}'
    st, b = srv.call("POST", "/v1/inbound/aftership?merchant=shop-a", raw=junk,
                     headers=sign("aftership", junk))
    check(st == 422, f"not a tracking body: {st} {b}")
    st, b = srv.call("DELETE", "/v1/inbound/aftership/secret", key_a)
    check(st == 200 and b["configured"] is False, f"secret removed: {st} {b}")
    raw = body_of("aftership_delivered.json")
    st, b = srv.call("POST", "/v1/inbound/aftership?merchant=shop-a", raw=raw,
                     headers=sign("aftership", raw))
    check(st == 401, f"no longer taken once the secret is removed: {st}")
    srv.stop()
    print(f"{len(FAILS)} failures")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
