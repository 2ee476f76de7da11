#!/usr/bin/env python3
"""Slow clients against drisk serve (issue 15): N connections from one address send a
request's headers one byte a second and never finish them (reconnecting when the server
closes one), while a well-behaved client from another address asks GET /healthz every
--interval seconds. Prints one JSON object: the probe's p50 / p99 / max latency in ms,
how many probes failed (refused, or no answer within --timeout), and how many attacking
connections were open at most and were closed by the server.

  bench/slow_clients.py --port 8080 [--connections 1100] [--seconds 20]
                        [--attack-from 127.0.0.2] [--probe-from 127.0.0.1]

Linux routes all of 127/8 to loopback, so the two clients have different addresses on
one machine. Standard library only."""
import argparse
import json
import selectors
import socket
import threading
import time

HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4096


def attack(a, stop, stats):
    sel = selectors.DefaultSelector()
    conns = {}  # socket -> bytes sent

    def connect():
        s = socket.socket()
        s.setblocking(False)
        try:
            s.bind((a.attack_from, 0))
            s.connect_ex((a.host, a.port))
        except OSError:
            s.close()
            stats["connect_errors"] += 1
            return
        conns[s] = 0
        sel.register(s, selectors.EVENT_READ)

    last_drip = 0.0
    while not stop.is_set():
        while len(conns) < a.connections and not stop.is_set():
            connect()
            if stats["connect_errors"] > 100000:
                break
        stats["open_max"] = max(stats["open_max"], len(conns))
        for key, _ in sel.select(timeout=0.1):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:  # closed by the server (or it answered): count, drop, reconnect
                sel.unregister(s)
                s.close()
                conns.pop(s, None)
                stats["closed_by_server"] += 1
        now = time.monotonic()
        if now - last_drip >= 1.0:  # one more byte of headers on every connection
            last_drip = now
            for s in list(conns):
                i = conns[s]
                try:
                    s.send(HEAD[i:i + 1] if i < len(HEAD) else b"a")
                    conns[s] = i + 1
                except OSError:
                    pass
    for s in conns:
        s.close()


def get(a, path):
    """The whole answer to GET path, from the well-behaved client's address."""
    s = socket.create_connection((a.host, a.port), timeout=a.timeout, source_address=(a.probe_from, 0))
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    got = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
    s.close()
    return got


def probe(a, stop, lat, fails):
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            got = get(a, "/healthz")
            if got.startswith(b"HTTP/1.1 200"):
                lat.append((time.monotonic() - t0) * 1e3)
            else:
                fails.append("status")
        except OSError as e:
            fails.append(type(e).__name__)
        time.sleep(max(0.0, a.interval - (time.monotonic() - t0)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--connections", type=int, default=1100)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--warmup", type=float, default=5, help="attack alone before probing")
    p.add_argument("--interval", type=float, default=0.05)
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("--attack-from", default="127.0.0.2")
    p.add_argument("--probe-from", default="127.0.0.1")
    a = p.parse_args()
    stop, pstop = threading.Event(), threading.Event()
    stats = {"open_max": 0, "closed_by_server": 0, "connect_errors": 0}
    t = threading.Thread(target=attack, args=(a, stop, stats), daemon=True)
    t.start()
    time.sleep(a.warmup)
    lat, fails = [], []
    pt = threading.Thread(target=probe, args=(a, pstop, lat, fails), daemon=True)
    pt.start()
    time.sleep(a.seconds)
    pstop.set()
    pt.join()
    stop.set()
    t.join()
    lat.sort()
    # the server's own count of connections cut at the header deadline
    try:
        for line in get(a, "/metrics").decode("utf-8", "replace").splitlines():
            if line.startswith("drisk_http_header_timeouts_total "):
                stats["server_header_timeouts"] = int(line.split()[1])
    except OSError:
        pass

    def q(f):
        return round(lat[min(len(lat) - 1, int(f * len(lat)))], 2) if lat else None
    print(json.dumps({"connections": a.connections, "seconds": a.seconds, "probes": len(lat) + len(fails),
                      "probe_failures": len(fails), "p50_ms": q(0.5), "p99_ms": q(0.99),
                      "max_ms": round(lat[-1], 2) if lat else None, **stats}))


if __name__ == "__main__":
    main()
