#!/usr/bin/python3
"""Model-based fuzzing of the HTTP API against its contract (docs/http.md): seeded random valid
and invalid requests go to one Cairn node; every answer is checked against a model of the store
and the documented status codes, JSON shapes and ETag / If-Match / If-None-Match semantics.

Findings: an answer the contract does not allow (wrong status, shape, value, version order), a
Cairn that dies or drops a connection it should keep, an answer slower than --stall-ms.

  http_model_fuzz.py --cairnd build/asan/bin/cairnd --seconds 20
  http_model_fuzz.py --cairnd ... --seed N --requests 2000      # replay a run from its seed

Exit status: 0 no finding, 1 findings, 77 no cairnd (ctest: skipped).
"""
import argparse
import json
import os
import random
import re
import socket
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fuzzlib  # noqa: E402

MAX_KEY = 16384
LEVELS = ["ONE", "QUORUM", "ALL", "LOCAL_ONE", "LOCAL_QUORUM", "one", "Quorum"]
VERSION = re.compile(r"^\d+:\d+$")


class Finding(Exception):
    pass


class Http:
    """One keep-alive HTTP/1.1 connection, raw, so that invalid requests go out as written."""

    def __init__(self, host, port, stall_s):
        self.addr = (host, port)
        self.stall_s = stall_s
        self.sock = None
        self.buf = b""

    def connect(self):
        self.close()
        self.sock = socket.create_connection(self.addr, timeout=30)
        self.buf = b""

    def close(self):
        if self.sock:
            self.sock.close()
        self.sock = None

    def request(self, method, target, headers=(), body=None):
        if self.sock is None:
            self.connect()
        lines = ["%s %s HTTP/1.1" % (method, target), "Host: 127.0.0.1"]
        lines += ["%s: %s" % h for h in headers]
        if body is not None:
            lines.append("Content-Length: %d" % len(body))
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        start = time.monotonic()
        self.sock.sendall(data)
        status, hdrs, payload = self.read(method == "HEAD")
        took = time.monotonic() - start
        if took > self.stall_s:
            raise Finding("stall: %s %s took %.2f s" % (method, target[:100], took))
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return status, hdrs, payload

    def read(self, head):
        while b"\r\n\r\n" not in self.buf:
            self.recv()
        header, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = header.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = 0 if head or status in (204, 304) else int(hdrs.get("content-length", "0"))
        while len(self.buf) < n:
            self.recv()
        payload, self.buf = self.buf[:n], self.buf[n:]
        return status, hdrs, payload

    def recv(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise Finding("the server closed a keep-alive connection without an answer")
        self.buf += chunk


def quote(key):
    return urllib.parse.quote(key, safe="")


class Model:
    """What the default keyspace holds: key -> (value, version)."""

    def __init__(self):
        self.data = {}

    def check_version_newer(self, key, version):
        old = self.data.get(key)
        if old and version_tuple(version) <= version_tuple(old[1]):
            raise Finding("key %r: new version %s is not above the previous %s"
                          % (key[:40], version, old[1]))


def version_tuple(v):
    hlc, node = v.split(":")
    return int(hlc), int(node)


def expect(cond, what):
    if not cond:
        raise Finding(what)


def error_code(payload):
    try:
        e = json.loads(payload)["error"]
    except (ValueError, KeyError, TypeError):
        raise Finding("an error answer is not {\"error\": {...}}: %r" % payload[:200])
    expect(isinstance(e.get("code"), str) and isinstance(e.get("message"), str),
           "an error lacks code or message: %r" % payload[:200])
    return e


def etag_version(hdrs):
    tag = hdrs.get("etag")
    expect(tag is not None and tag.startswith('"') and tag.endswith('"'),
           "missing or malformed ETag: %r" % tag)
    v = tag[1:-1]
    expect(VERSION.match(v), "ETag is not \"hlc:node\": %r" % tag)
    return v


class Fuzzer:
    def __init__(self, http, rng):
        self.http = http
        self.rng = rng
        self.model = Model()
        self.requests = 0
        self.keys = [b"a", b"b", b"user:1", b"user:2", b"user:10", b"x/y", b"\x00\xff", b" sp",
                     "€".encode(), b"%41", b"k" * 300]

    def key(self):
        r = self.rng.random()
        if r < 0.02:
            return b"K" * MAX_KEY
        if r < 0.1:
            return bytes(self.rng.getrandbits(8) for _ in range(self.rng.randint(1, 6)))
        return self.rng.choice(self.keys)

    def value(self):
        r = self.rng.random()
        if r < 0.1:
            return b""
        if r < 0.5:
            return bytes(self.rng.getrandbits(8) for _ in range(self.rng.randint(1, 64)))
        if r < 0.95:
            return "".join(self.rng.choice("abc xyz\n{}\"") for _ in range(
                self.rng.randint(1, 30))).encode()
        return bytes(self.rng.getrandbits(8) for _ in range(self.rng.randint(1000, 200000)))

    def call(self, method, target, headers=(), body=None):
        self.requests += 1
        return self.http.request(method, target, headers, body)

    def params(self, allow_ttl=False):
        p = []
        if self.rng.random() < 0.3:
            p.append(("cl", self.rng.choice(LEVELS)))
        if self.rng.random() < 0.1:
            p.append(("timeout_ms", str(self.rng.choice([1000, 5000, 120000]))))
        if allow_ttl and self.rng.random() < 0.2:
            p.append(("ttl", str(self.rng.randint(1000, 10 ** 6))))
        return p

    @staticmethod
    def target(key, params):
        t = "/v1/kv/default/" + quote(key)
        if params:
            t += "?" + "&".join("%s=%s" % kv for kv in params)
        return t

    # ---- valid requests, checked against the model ----

    def put(self):
        key, value = self.key(), self.value()
        params = self.params(allow_ttl=True)
        status, hdrs, payload = self.call("PUT", self.target(key, params), body=value)
        expect(status == 200, "PUT %r: %d %r" % (key[:40], status, payload[:200]))
        v = json.loads(payload)["version"]
        expect(VERSION.match(v) and etag_version(hdrs) == v, "PUT: version and ETag disagree")
        self.model.check_version_newer(key, v)
        self.model.data[key] = (value, v)

    def get(self, method="GET"):
        key = self.key()
        params = self.params()
        cur = self.model.data.get(key)
        headers = []
        if cur and self.rng.random() < 0.3:
            headers.append(("If-None-Match", '"%s"' % cur[1]))
        status, hdrs, payload = self.call(method, self.target(key, params), headers)
        if cur is None:
            expect(status == 404, "%s of absent key %r: %d" % (method, key[:40], status))
            if method == "GET":
                expect(error_code(payload)["code"] == "NOT_FOUND", "404 without NOT_FOUND")
            return
        if headers:
            expect(status == 304, "GET with If-None-Match of the current version: %d" % status)
            return
        expect(status == 200, "%s %r: %d %r" % (method, key[:40], status, payload[:200]))
        expect(etag_version(hdrs) == cur[1], "%s %r: ETag %s, the last write was %s"
               % (method, key[:40], hdrs.get("etag"), cur[1]))
        if method == "GET":
            expect(payload == cur[0], "GET %r: the value differs from the one written" % key[:40])
        expect(int(hdrs.get("content-length", -1)) == len(cur[0]),
               "%s %r: Content-Length %s, the value is %d bytes" % (
                   method, key[:40], hdrs.get("content-length"), len(cur[0])))

    def delete(self):
        key = self.key()
        status, hdrs, payload = self.call("DELETE", self.target(key, self.params()))
        expect(status == 200, "DELETE %r: %d %r" % (key[:40], status, payload[:200]))
        v = json.loads(payload)["version"]
        expect(VERSION.match(v), "DELETE: no version")
        self.model.data.pop(key, None)

    def conditional(self):
        key = self.key()
        cur = self.model.data.get(key)
        kind = self.rng.choice(["none-match", "match", "match-stale", "match-any", "match-bad"])
        method = self.rng.choice(["PUT", "PUT", "DELETE"])
        if kind == "none-match":
            header = ("If-None-Match", "*")
            if method == "DELETE":
                header = ("If-Match", "*")
                kind = "match-any"
            holds = cur is None if kind == "none-match" else cur is not None
        elif kind == "match":
            version = cur[1] if cur else "1:1"
            header = ("If-Match", '"%s"' % version)
            holds = cur is not None
        elif kind == "match-stale":
            header = ("If-Match", '"%d:%d"' % (self.rng.randint(1, 10 ** 12), 7))
            holds = False
        elif kind == "match-any":
            header = ("If-Match", "*")
            holds = cur is not None
        else:
            header = ("If-Match", self.rng.choice(["abc", '"x:y"', 'W/"1:1"', '"1:1", "2:2"']))
            status, hdrs, payload = self.call(method, self.target(key, []), [header],
                                              body=b"v" if method == "PUT" else None)
            expect(status == 400, "malformed If-Match %r: %d" % (header[1], status))
            return
        value = self.value() if method == "PUT" else None
        status, hdrs, payload = self.call(method, self.target(key, []), [header], body=value)
        if holds:
            want = 201 if method == "PUT" and header == ("If-None-Match", "*") else 200
            expect(status == want, "%s %s: %r holds, answer %d %r" % (
                method, header, key[:40], status, payload[:200]))
            if method == "PUT":
                v = etag_version(hdrs)
                self.model.check_version_newer(key, v)
                self.model.data[key] = (value, v)
            else:
                self.model.data.pop(key, None)
        else:
            expect(status == 412, "%s %s on %r does not hold, answer %d %r" % (
                method, header, key[:40], status, payload[:200]))
            e = error_code(payload)
            expect(e["code"] == "CONDITION_FAILED", "412 without CONDITION_FAILED")
            if cur:
                expect(e.get("current_version") == cur[1] and etag_version(hdrs) == cur[1],
                       "412 on %r: current version %r, the model has %s"
                       % (key[:40], e.get("current_version"), cur[1]))

    def scan(self):
        prefix = self.rng.choice([b"", b"user:", b"user:1", b"a", b"\x00", b"zzz"])
        limit = self.rng.choice([1, 2, 3, 10, 100])
        cursor = None
        seen = []
        for _ in range(10000):
            t = "/v1/kv/default?prefix=%s&limit=%d" % (quote(prefix), limit)
            if cursor:
                t += "&cursor=" + cursor
            status, hdrs, payload = self.call("GET", t)
            expect(status == 200, "scan %r: %d %r" % (prefix, status, payload[:200]))
            page = json.loads(payload)
            expect(len(page["items"]) <= limit, "a scan page is over its limit")
            for item in page["items"]:
                k = item["key"].encode() if "key" in item else \
                    __import__("base64").b64decode(item["key_base64"])
                v = item["value"].encode() if "value" in item else \
                    __import__("base64").b64decode(item["value_base64"])
                seen.append((k, v, item["version"]))
            cursor = page["cursor"]
            if cursor is None:
                break
        want = sorted((k, v, ver) for k, (v, ver) in self.model.data.items()
                      if k.startswith(prefix))
        expect(seen == want, "scan of %r: %d entries, the model has %d (first difference: %r)" % (
            prefix, len(seen), len(want),
            next(((a[0][:30], b[0][:30]) for a, b in zip(seen, want) if a != b), None)))

    # ---- invalid requests, with the contract's status and code ----

    def invalid(self):
        key = quote(self.rng.choice(self.keys))
        cases = [
            ("GET", "/v1/kv/default/%s?bogus=1" % key, 400, "INVALID_ARGUMENT"),
            ("GET", "/v1/kv/default/%s?cl=ONE&cl=ALL" % key, 400, "INVALID_ARGUMENT"),
            ("GET", "/v1/kv/default/%s?cl=NOPE" % key, 400, "INVALID_ARGUMENT"),
            ("PUT", "/v1/kv/default/%s?ttl=abc" % key, 400, "INVALID_ARGUMENT"),
            ("PUT", "/v1/kv/default/%s?ttl=-5" % key, 400, "INVALID_ARGUMENT"),
            ("GET", "/v1/kv/default/%s?timeout_ms=0" % key, 400, "INVALID_ARGUMENT"),
            ("GET", "/v1/kv/default/%s?timeout_ms=999999" % key, 400, "INVALID_ARGUMENT"),
            ("GET", "/v1/kv/default/%zz", 400, "INVALID_ARGUMENT"),
            ("GET", "/v1/kv/default/%4", 400, "INVALID_ARGUMENT"),
            ("PUT", "/v1/kv/default/", 400, "INVALID_ARGUMENT"),
            ("PUT", "/v1/kv/default/" + "K" * (MAX_KEY + 1), 413, "TOO_LARGE"),
            ("GET", "/v1/kv/default?limit=0", 400, "INVALID_ARGUMENT"),
            ("GET", "/v1/kv/default?limit=abc", 400, "INVALID_ARGUMENT"),
            ("GET", "/v1/kv/default?cursor=zz", 400, "INVALID_ARGUMENT"),
            ("GET", "/v1/kv/nosuchkeyspace/%s" % key, 404, "NOT_FOUND"),
            ("GET", "/v1/nothing", 404, "NOT_FOUND"),
            ("POST", "/v1/kv/default/%s" % key, 405, "METHOD_NOT_ALLOWED"),
            ("PATCH", "/v1/cluster", 405, "METHOD_NOT_ALLOWED"),
            ("GET", "/v1/keyspaces/nosuchkeyspace", 404, "NOT_FOUND"),
            ("POST", "/v1/keyspaces", 400, "INVALID_ARGUMENT"),
            ("PUT", "/v1/kv/default/%s?cl=SERIAL" % key, 400, "INVALID_ARGUMENT"),
            ("GET", "/v1/repairs?limit=1", 400, "INVALID_ARGUMENT"),
            ("POST", "/v1/repairs", 405, "METHOD_NOT_ALLOWED"),
        ]
        method, target, want, code = self.rng.choice(cases)
        body = b"{not json" if method == "POST" else (b"v" if method == "PUT" else None)
        status, hdrs, payload = self.call(method, target, body=body)
        expect(status == want, "%s %s: %d, the contract says %d (%r)" % (
            method, target[:80], status, want, payload[:200]))
        if method != "HEAD":
            expect(error_code(payload)["code"] == code, "%s %s: code %r, the contract says %s" % (
                method, target[:80], error_code(payload)["code"], code))
        if want == 405:
            expect("allow" in hdrs, "405 without Allow")

    def admin(self):
        status, hdrs, payload = self.call("GET", "/v1/keyspaces")
        expect(status == 200, "GET /v1/keyspaces: %d" % status)
        names = [k["name"] for k in json.loads(payload)["keyspaces"]]
        expect("default" in names, "keyspace default is not listed")
        status, hdrs, payload = self.call("GET", "/v1/cluster")
        expect(status == 200 and isinstance(json.loads(payload).get("nodes"), list),
               "GET /v1/cluster: %d %r" % (status, payload[:200]))
        # A lone node that nobody ran `cairn repair` against: no run, itself the only node asked.
        status, hdrs, payload = self.call("GET", "/v1/repairs")
        expect(status == 200, "GET /v1/repairs: %d %r" % (status, payload[:200]))
        runs = json.loads(payload)
        expect(runs.get("runs") == [] and runs.get("nodes_asked") == 1 and
               runs.get("nodes_missing") == [] and isinstance(runs.get("now_ms"), int),
               "GET /v1/repairs: %r" % payload[:200])
        status, _, _ = self.call("GET", "/health")
        expect(status == 200, "/health: %d" % status)

    def step(self):
        op = self.rng.choices(
            [self.put, self.get, lambda: self.get("HEAD"), self.delete, self.conditional,
             self.scan, self.invalid, self.admin],
            [10, 10, 2, 3, 8, 2, 5, 0.5])[0]
        op()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cairnd")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--requests", type=int, default=0, help="stop after this many (0: --seconds)")
    ap.add_argument("--stall-ms", type=float, default=1000)
    ap.add_argument("--work-dir")
    a = ap.parse_args()
    if not a.cairnd or not os.access(a.cairnd, os.X_OK):
        print("SKIPPED: no cairnd binary (--cairnd)")
        return fuzzlib.SKIP
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(2 ** 63)
    fuzzlib.log("http_model_fuzz: seed %d (replay with --seed %d)" % (seed, seed))
    with fuzzlib.Servers(a.work_dir) as servers:
        p, addresses = fuzzlib.start_cairnd(a.cairnd, os.path.join(servers.dir, "cairn"),
                                            ["--http", "127.0.0.1:0"])
        servers.add(p)
        host, port = addresses["http"].rsplit(":", 1)
        http = Http(host, int(port), a.stall_ms / 1000.0)
        f = Fuzzer(http, random.Random(seed))
        started = time.monotonic()
        finding = None
        try:
            while True:
                if a.requests and f.requests >= a.requests:
                    break
                if not a.requests and time.monotonic() - started >= a.seconds:
                    break
                f.step()
        except Finding as e:
            finding = e
        except (OSError, ValueError, KeyError) as e:
            finding = Finding("%s: %s%s" % (type(e).__name__, e, "" if p.alive() else
                                            "\ncairnd died:\n" + p.log_tail()))
        http.close()
        exit_problem = fuzzlib.stop_cairnd(p)
        if finding is None and exit_problem:
            finding = Finding(exit_problem)
        fuzzlib.log("http_model_fuzz: seed %d: %d requests, %d keys in the model, %.0f s: %s" % (
            seed, f.requests, len(f.model.data), time.monotonic() - started,
            "FINDING: %s" % finding if finding else "no finding"))
    return 1 if finding else 0


if __name__ == "__main__":
    fuzzlib.run_main(main)
