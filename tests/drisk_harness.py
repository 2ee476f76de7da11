"""What the Python API tests share: the real drisk binary as a server on a free port, its
responses logged for tests/spec_check.py, keys, times, and a failure tally. Imported by
test_webhooks.py and test_inbound.py (the folder is on sys.path as the scripts' own)."""
import json, os, signal, socket, subprocess, time, urllib.error, urllib.request

FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what, flush=True)
    return cond


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def store_target(tmp, name):
    """The --db of store name: a SQLite file in tmp, or, under tests/pg/with_pg.sh
    (DRISK_TEST_PG set), a fresh PostgreSQL database of that name (as tests/store_target.h)."""
    sock = os.environ.get("DRISK_TEST_PG")
    if not sock:
        return os.path.join(tmp, name)
    db = "t_" + "".join(c if c.isalnum() else "_" for c in name.lower())
    psql = os.path.join(os.environ["DRISK_TEST_PG_BIN"], "psql")
    subprocess.run([psql, "-q", "-h", sock, "-U", "postgres", "-d", "postgres",
                    "-c", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", "-c", f"CREATE DATABASE {db}"],
                   check=True, capture_output=True, env={**os.environ, "PGOPTIONS": "-c client_min_messages=warning"})
    return f"postgresql://postgres@/{db}?host={sock}"


def key_for(drisk, db, merchant):
    out = subprocess.run([drisk, "keys", "--db", db, "create", "--merchant", merchant, "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["key"]


def wait_for(cond, seconds, what):
    end = time.time() + seconds
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return check(False, "timed out waiting for " + what)


class Server:
    """drisk serve on 127.0.0.1 (no sweep, no access log); every answer of call() is
    appended to TMP/responses.jsonl."""

    def __init__(self, drisk, db, tmp, extra=()):
        self.tmp = tmp
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(tmp, f"serve-{self.port}.log"), "w")
        self.p = subprocess.Popen([drisk, "serve", "--db", db, "--listen", f"127.0.0.1:{self.port}",
                                   "--sweep", "0", "--access-log", "none", *extra],
                                  stdout=self.log, stderr=self.log)
        for _ in range(200):
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=1).read()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("drisk serve did not come up")

    def call(self, method, path, key=None, body=None, raw=None, headers=None):
        """body: JSON to send; raw: bytes sent as they are. Answers (status, JSON or None)."""
        data = raw if raw is not None else json.dumps(body).encode() if body is not None else None
        h = {"Content-Type": "application/json", **(headers or {})}
        if key:
            h["Authorization"] = "Bearer " + key
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, ct, text = r.status, r.headers.get("Content-Type"), r.read().decode()
        except urllib.error.HTTPError as e:
            status, ct, text = e.code, e.headers.get("Content-Type"), e.read().decode()
        with open(os.path.join(self.tmp, "responses.jsonl"), "a") as f:
            f.write(json.dumps({"method": method, "path": path.split("?")[0], "status": status,
                                "content_type": ct, "body": text}) + "\n")
        return status, (json.loads(text) if text else None)

    def kill9(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()

    def stop(self):
        """SIGTERM: the server must stop cleanly (exit 0) and, in a sanitizer build, its
        log must hold no AddressSanitizer, LeakSanitizer or UBSan report."""
        self.p.terminate()
        rc = self.p.wait(timeout=30)
        self.log.flush()
        text = open(self.log.name, errors="replace").read()
        bad = [m for m in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
               if m in text]
        check(rc == 0 and not bad, f"drisk serve on port {self.port} stopped with {rc} {bad}: "
                                   f"see {self.log.name}")
