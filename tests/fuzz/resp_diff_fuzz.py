#!/usr/bin/python3
"""Differential fuzzing of what RESP commands do: seeded random sequences of valid-looking
commands, over every command of docs/resp.md that Redis 7.0 also has, go to a Cairn node and to
a reference redis-server; the replies must be identical, byte for byte, apart from the intended
differences listed in docs/resp.md (INTENDED below is that list in code) and the normalisations
of what is nondeterministic (SCAN cursors, KEYS order, RANDOMKEY, TIME, INFO, client ids, TTLs
measured a moment apart).

Findings: a reply that differs (divergence), a Cairn that dies or drops the connection (crash),
a reply that takes longer than --stall-ms (stall: no request may stall a reactor). Each is
minimised (the shortest subsequence that still shows it, when practical) and, with --save,
written to the cases directory as a JSON regression case, which every later run replays first.

  resp_diff_fuzz.py --cairnd build/asan/bin/cairnd --seconds 30 --cases tests/fuzz/resp-diff-cases
  resp_diff_fuzz.py --cairnd ... --seed 1234 --sessions 1      # replay one session from its seed
  resp_diff_fuzz.py --cairnd ... --replay tests/fuzz/resp-diff-cases/x.json

Exit status: 0 no finding, 1 findings, 77 redis-server or cairnd missing (ctest: skipped).
"""
import argparse
import glob
import json
import os
import random
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fuzzlib  # noqa: E402

# ---------------------------------------------------------------------------------------------
# RESP encoding and parsing

def encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def encode_inline(args):
    """The inline form of a command (as typed into telnet), when its arguments allow it."""
    for a in args:
        if not a or len(a) > 200 or any(c in b" \t\r\n\"'\\" or c < 33 or c > 126 for c in a):
            return None
    return b" ".join(args) + b"\r\n"


class Incomplete(Exception):
    pass


def parse(buf, pos=0):
    """Parses one reply at buf[pos:]; returns (tree, next_pos). Trees are tuples, so replies
    compare with ==. Raises Incomplete when more bytes are needed."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise Incomplete()
    t = buf[pos:pos + 1]
    line = buf[pos + 1:end]
    nxt = end + 2
    if t in (b"+", b"-", b",", b"#", b"("):
        return (t.decode(), line), nxt
    if t == b":":
        return (":", int(line)), nxt
    if t == b"_":
        return ("_",), nxt
    if t in (b"$", b"=", b"!"):
        n = int(line)
        if n < 0:
            return (t.decode(), None), nxt
        if len(buf) < nxt + n + 2:
            raise Incomplete()
        return (t.decode(), bytes(buf[nxt:nxt + n])), nxt + n + 2
    if t in (b"*", b"~", b">", b"%", b"|"):
        n = int(line)
        if n < 0:
            return (t.decode(), None), nxt
        items = []
        for _ in range(n * 2 if t in (b"%", b"|") else n):
            item, nxt = parse(buf, nxt)
            items.append(item)
        if t == b"|":  # an attribute precedes the real reply: skip it
            return parse(buf, nxt)
        return (t.decode(), tuple(items)), nxt
    raise ValueError("not a RESP reply: %r" % bytes(buf[pos:pos + 40]))


class Closed(Exception):
    pass


class Stall(Exception):
    pass


class Conn:
    def __init__(self, port, stall_s):
        self.port = port
        self.stall_s = stall_s
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pushes = 0

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise Closed(str(e))

    def reply(self):
        """The next reply: (raw bytes, tree, seconds waited). RESP3 pushes (CLIENT TRACKING's
        invalidations) are skipped: when each server sends them is its own business (a key's
        expiry: Redis when it reclaims the key, Cairn at the expiry time), so they cannot be
        compared one for one; `pushes` counts them."""
        start = time.monotonic()
        while True:
            try:
                tree, n = parse(self.buf)
                raw = bytes(self.buf[:n])
                del self.buf[:n]
                if tree[0] == ">":
                    self.pushes += 1
                    continue
                return raw, tree, time.monotonic() - start
            except Incomplete:
                pass
            waited = time.monotonic() - start
            # Wait up to 30 s in all: a slow reply is reported as a stall with its time, a
            # reply that never comes as a stall too.
            self.sock.settimeout(max(0.01, 30 - waited))
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                raise Stall("no reply in %.1f s" % (time.monotonic() - start))
            except OSError as e:
                raise Closed(str(e))
            if not chunk:
                raise Closed("connection closed")
            self.buf += chunk

    def call(self, args):
        self.send(encode(args))
        return self.reply()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

# ---------------------------------------------------------------------------------------------
# The generator: seeded, valid-looking commands with edge values

MAX_TTL_S = 10 * 365 * 86400  # Cairn refuses longer TTLs (about ten years; docs/resp.md)

KEYS = [b"k1", b"k2", b"k3", b"{t}1", b"{t}2", b"n", b"f", b"a" * 30, b"ab", b"a*b", b"[x",
        b"\x00\xff\r\n", b"k\\*", b"\xe2\x82\xac", b"k1\x00"]
RARE_KEYS = [b"", b"K" * 16384, b"K" * 16385]

INTS = ["0", "1", "-1", "2", "10", "-10", "100", "9223372036854775807", "-9223372036854775808",
        "9223372036854775806", "-9223372036854775807", "9223372036854775808",
        "-9223372036854775809", "18446744073709551616", "1.5", "-0", "+1", " 1", "1 ", "0x10",
        "1e3", "", "abc", "inf", "nan", "00", "007", "-", "4611686018427387904",
        "9223372036854775", "9223372036854776", "-9223372036854776"]

FLOATS = ["0", "1", "-1", "1.5", "0.1", "-0.1", "3.0", "1e308", "-1e308", "1e309", "1e-320",
          "1e-400", "inf", "-inf", "+inf", "nan", "NaN", "-nan", "1e", "e1", ".5", "5.", " 1",
          "1 ", "0x1p3", "1e4000", "-1e4000", "1e-4950", "17", "9223372036854775807",
          "-9223372036854775808", "1.7976931348623157e308", "4.9e-324", "0.30000000000000004",
          "123456789.123456789", "-0", "+0", "1E2", "5e-1", "10.50"]


def rand_bytes(rng, n):
    return bytes(rng.getrandbits(8) for _ in range(n))


class Generator:
    def __init__(self, rng):
        self.rng = rng

    def key(self):
        r = self.rng.random()
        if r < 0.01:
            return self.rng.choice(RARE_KEYS)
        if r < 0.04:
            return rand_bytes(self.rng, self.rng.randint(1, 8))
        return self.rng.choice(KEYS)

    def keys(self, lo=1, hi=5):
        n = self.rng.randint(lo, hi) if self.rng.random() < 0.95 else self.rng.randint(20, 60)
        return [self.key() for _ in range(n)]

    def value(self):
        rng = self.rng
        r = rng.random()
        if r < 0.3:
            return rng.choice(INTS + FLOATS).encode()
        if r < 0.45:
            return "".join(rng.choice("abcxyz01 ") for _ in range(rng.randint(1, 12))).encode()
        if r < 0.6:
            return rand_bytes(rng, rng.randint(0, 40))
        if r < 0.65:
            return b""
        if r < 0.85:
            return str(rng.randint(-10 ** rng.randint(1, 19), 10 ** rng.randint(1, 19))).encode()
        if r < 0.95:
            return repr(rng.uniform(-1e6, 1e6)).encode()
        if BUDGET_REFUSALS and r < 0.96:
            # Around a connection's share of a small budget (an eighth of 16 MiB: 2 MiB): a
            # pattern repeated, as random bytes of that size cost seconds to make here.
            return rand_bytes(rng, 64) * (rng.randint(1 << 20, 3 << 20) // 64)
        return rand_bytes(rng, rng.randint(1000, 20000))

    def integer(self):
        r = self.rng.random()
        if r < 0.4:
            return self.rng.choice(INTS).encode()
        if r < 0.85:
            return str(self.rng.randint(-50, 200)).encode()
        return str(self.rng.randint(-2 ** 63, 2 ** 63 - 1)).encode()

    def float(self):
        if self.rng.random() < 0.6:
            return self.rng.choice(FLOATS).encode()
        return repr(self.rng.uniform(-1e3, 1e3) * 10 ** self.rng.randint(-30, 30)).encode()

    def ttl(self, unit_ms, absolute):
        """An expiry argument: never one that runs out during the run (two servers cannot
        expire a key at the same instant), but zero, negative, past, far future, non-numbers
        and the int64 limits."""
        rng = self.rng
        now_s = int(time.time())
        r = rng.random()
        if r < 0.15:
            s = rng.choice(["0", "-1", "-100", "abc", "1.5", "", "9223372036854775807",
                            "-9223372036854775808", "9223372036854775806", "9223372036854775",
                            "9223372036854776", "18446744073709551616"])
            return s.encode()
        if r < 0.25:  # beyond Cairn's ten years: an intended difference
            secs = (now_s if absolute else 0) + MAX_TTL_S + rng.randint(1, 10 ** 9)
        elif absolute and r < 0.45:  # in the past
            secs = rng.choice([1, 1000, now_s - 100000, now_s - 1])
        else:
            secs = (now_s if absolute else 0) + rng.randint(1000, 10 ** 6)
        return str(secs if unit_ms == 1000 else secs * 1000).encode()

    def pattern(self):
        rng = self.rng
        r = rng.random()
        if r < 0.1:
            return b"*"
        if r < 0.25:
            n = rng.randint(3, 40)
            return rng.choice([b"a*" * n + b"b", b"*a" * n, b"a*" * n, b"*?" * n + b"x",
                               b"*[a-" * n])
        alphabet = [b"a", b"b", b"k", b"1", b"*", b"?", b"[", b"]", b"^", b"-", b"\\", b"{", b"}",
                    b"t", b"x", b"\x00", b"!"]
        return b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))

    def expire_options(self):
        return [self.rng.choice([b"NX", b"XX", b"GT", b"LT", b"nx", b"gt", b"FOO"])
                for _ in range(self.rng.choices([0, 1, 2], [6, 3, 1])[0])]

    def set_options(self):
        rng = self.rng
        opts = []
        for _ in range(rng.choices([0, 1, 2, 3], [4, 4, 2, 1])[0]):
            o = rng.choice(["NX", "XX", "GET", "KEEPTTL", "EX", "PX", "EXAT", "PXAT", "ex", "BOGUS"])
            opts.append(o.encode())
            if o.upper() in ("EX", "EXAT"):
                opts.append(self.ttl(1000, o.upper() == "EXAT"))
            elif o.upper() in ("PX", "PXAT"):
                opts.append(self.ttl(1, o.upper() == "PXAT"))
        return opts

    def command(self):
        """One command as a list of byte strings."""
        rng = self.rng
        k = self.key
        name, make = rng.choices(COMMANDS, weights=[w for _, w, _ in COMMANDS_W])[0]
        return [x if isinstance(x, bytes) else x.encode() for x in make(self, rng, k)]


def _getex_opts(g, rng):
    o = rng.choice(["", "EX", "PX", "EXAT", "PXAT", "PERSIST", "BOGUS", "EX+PERSIST"])
    if o == "":
        return []
    if o in ("EX", "EXAT"):
        return [o, g.ttl(1000, o == "EXAT")]
    if o in ("PX", "PXAT"):
        return [o, g.ttl(1, o == "PXAT")]
    if o == "EX+PERSIST":
        return ["EX", g.ttl(1000, False), "PERSIST"]
    return [o]


TRACKING_PREFIXES = [b"k", b"k1", b"a", b"", b"{t}", b"x\x00y", b"ab"]


def _client_tracking(g, rng):
    """CLIENT TRACKING / CACHING / TRACKINGINFO / GETREDIR, valid and not (client-side caching).
    REDIRECT names ids no client has: the two servers number their clients apart."""
    c = rng.random()
    if c < 0.5:
        args = ["TRACKING", rng.choice(["on", "on", "on", "off", "ON", "Off", "maybe"])]
        for _ in range(rng.choices([0, 1, 2, 3], [3, 4, 2, 1])[0]):
            o = rng.choice(["BCAST", "OPTIN", "OPTOUT", "NOLOOP", "PREFIX", "PREFIX", "REDIRECT",
                            "bcast", "BOGUS"])
            args.append(o)
            if o == "PREFIX":
                args.append(rng.choice(TRACKING_PREFIXES))
            elif o == "REDIRECT":
                args.append(rng.choice([b"999999", b"0", b"-1", b"x"]))
        return args
    if c < 0.75:
        return ["CACHING", rng.choice(["yes", "no", "YES", "maybe"])] + (
            [b"x"] if rng.random() < 0.05 else [])
    if c < 0.92:
        return ["TRACKINGINFO"] + ([b"x"] if rng.random() < 0.05 else [])
    return ["GETREDIR"]


def _scan_opts(g, rng):
    opts = []
    for _ in range(rng.choices([0, 1, 2, 3], [3, 4, 2, 1])[0]):
        o = rng.choice(["MATCH", "COUNT", "TYPE", "match", "FOO"])
        opts.append(o)
        if o.upper() == "MATCH":
            opts.append(g.pattern())
        elif o == "COUNT":
            opts.append(rng.choice([b"1", b"2", b"10", b"1000", b"0", b"-1", b"abc"]))
        elif o == "TYPE":
            opts.append(rng.choice([b"string", b"list", b"STRING", b"hash"]))
        elif o == "FOO":
            opts.append(b"x")
    return opts


SUPPORTED = ["get", "set", "setnx", "setex", "psetex", "getset", "getdel", "getex", "mget", "mset",
             "msetnx", "del", "unlink", "exists", "touch", "type", "expire", "pexpire", "expireat",
             "pexpireat", "ttl", "pttl", "expiretime", "pexpiretime", "persist", "incr", "decr",
             "incrby", "decrby", "incrbyfloat", "append", "strlen", "getrange", "substr",
             "setrange", "scan", "keys", "dbsize", "randomkey", "flushdb", "flushall", "ping",
             "echo", "hello", "auth", "select", "quit", "reset", "time", "client", "command",
             "info", "config"]

# (name, weight, maker). Every command of docs/resp.md that Redis 7.0 has (SET IFEQ and the
# CAIRN.* commands are Cairn's own: tests/integration covers them).
COMMANDS_W = [
    ("get", 8, lambda g, r, k: ["GET", k()]),
    ("set", 10, lambda g, r, k: ["SET", k(), g.value()] + g.set_options()),
    ("set-num", 5, lambda g, r, k: ["SET", r.choice([b"n", b"f"]), r.choice(INTS + FLOATS)]),
    ("setnx", 2, lambda g, r, k: ["SETNX", k(), g.value()]),
    ("setex", 2, lambda g, r, k: [r.choice(["SETEX", "PSETEX"]), k(),
                                  g.ttl(1000 if r.random() < 0.5 else 1, False), g.value()]),
    ("getset", 2, lambda g, r, k: ["GETSET", k(), g.value()]),
    ("getdel", 2, lambda g, r, k: ["GETDEL", k()]),
    ("getex", 3, lambda g, r, k: ["GETEX", k()] + _getex_opts(g, r)),
    ("mget", 3, lambda g, r, k: ["MGET"] + g.keys()),
    ("mset", 3, lambda g, r, k: ["MSET"] + [x for key in g.keys(1, 4) for x in (key, g.value())]
     + ([b"odd"] if r.random() < 0.05 else [])),
    ("msetnx", 2, lambda g, r, k: ["MSETNX"] + [x for key in g.keys(1, 3)
                                                 for x in (key, g.value())]),
    ("del", 3, lambda g, r, k: [r.choice(["DEL", "UNLINK"])] + g.keys(1, 3)),
    ("exists", 3, lambda g, r, k: [r.choice(["EXISTS", "TOUCH"])] + g.keys()),
    ("type", 1, lambda g, r, k: ["TYPE", k()]),
    ("expire", 5, lambda g, r, k: (lambda c: [c, k(), g.ttl(1 if c[0] == "P" else 1000,
                                                             c.endswith("AT"))]
                                   + g.expire_options())(
        r.choice(["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"]))),
    ("ttl", 5, lambda g, r, k: [r.choice(["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"]), k()]),
    ("persist", 2, lambda g, r, k: ["PERSIST", k()]),
    ("incr", 6, lambda g, r, k: (lambda c: [c, r.choice([b"n", b"f", k()])]
                                 + ([g.integer()] if c.endswith("BY") else []))(
        r.choice(["INCR", "DECR", "INCRBY", "DECRBY"]))),
    ("incrbyfloat", 6, lambda g, r, k: ["INCRBYFLOAT", r.choice([b"f", b"n", k()]), g.float()]),
    ("append", 3, lambda g, r, k: ["APPEND", k(), g.value()]),
    ("strlen", 2, lambda g, r, k: ["STRLEN", k()]),
    ("getrange", 3, lambda g, r, k: [r.choice(["GETRANGE", "SUBSTR"]), k(), g.integer(),
                                     g.integer()]),
    ("setrange", 3, lambda g, r, k: ["SETRANGE", k(),
                                     r.choice([str(r.randint(0, 300)).encode(), b"-1", b"abc",
                                               b"536870912", b"0",
                                               b"9223372036854775807"]), g.value()]),
    ("scan", 3, lambda g, r, k: ["SCAN", r.choice([b"0", b"0", b"0", b"abc", b"-1",
                                                   b"18446744073709551616"])] + _scan_opts(g, r)),
    ("keys", 3, lambda g, r, k: ["KEYS", g.pattern()]),
    ("dbsize", 1, lambda g, r, k: ["DBSIZE"] + ([b"x"] if r.random() < 0.1 else [])),
    ("randomkey", 1, lambda g, r, k: ["RANDOMKEY"]),
    ("flushdb", 0.3, lambda g, r, k: [r.choice(["FLUSHDB", "FLUSHALL"])]
     + ([r.choice([b"ASYNC", b"SYNC", b"sync", b"FOO"])] if r.random() < 0.4 else [])),
    ("ping", 1, lambda g, r, k: ["PING"] + [g.value() for _ in range(r.choices([0, 1, 2],
                                                                               [4, 4, 1])[0])]),
    ("echo", 1, lambda g, r, k: ["ECHO"] + [g.value() for _ in range(r.choices([1, 0, 2],
                                                                               [8, 1, 1])[0])]),
    ("hello", 1, lambda g, r, k: ["HELLO"] + r.choice([[], ["3"], ["2"], ["4"], ["x"],
                                                       ["3", "SETNAME", "fz"],
                                                       ["2", "AUTH", "default", "pw"],
                                                       ["3", "SETNAME", "a b"],
                                                       ["3", "BOGUS"]])),
    ("select", 0.5, lambda g, r, k: ["SELECT", r.choice([b"0", b"x", b"-1", b"99999"])]),
    ("quit", 0.3, lambda g, r, k: ["QUIT"]),
    ("reset", 0.3, lambda g, r, k: ["RESET"]),
    ("time", 0.5, lambda g, r, k: ["TIME"]),
    ("client", 2, lambda g, r, k: ["CLIENT"] + r.choice([
        ["ID"], ["GETNAME"], ["SETNAME", "fuzz"], ["SETNAME", "a b"], ["SETNAME", ""],
        ["LIST"], ["INFO"], ["BOGUS"], ["ID", "x"], ["KILL", "127.0.0.1:1"], ["KILL", "ID", "999999"], ["KILL", "ADDR", "1.2.3.4:5"],
        ["KILL", "ID", "0"], ["KILL", "FOO", "x"]])),
    ("tracking", 2, lambda g, r, k: ["CLIENT"] + _client_tracking(g, r)),
    ("command", 1, lambda g, r, k: ["COMMAND"] + r.choice([
        [], ["COUNT"], ["LIST"], ["INFO"], ["DOCS"], ["BOGUS"], ["COUNT", "x"],
        ["INFO"] + [r.choice(SUPPORTED + ["nosuch", "GET"]) for _ in range(r.randint(1, 4))],
        ["DOCS"] + [r.choice(SUPPORTED + ["nosuch"]) for _ in range(r.randint(1, 3))]])),
    ("info", 1, lambda g, r, k: ["INFO"] + r.choice([[], ["keyspace"], ["server"], ["all"],
                                                     ["stats", "clients"], ["bogus"],
                                                     ["default"], ["everything"]])),
    ("config", 1, lambda g, r, k: ["CONFIG"] + r.choice([
        ["GET"] + r.sample(CONFIG_NAMES, r.randint(1, 3)), ["GET"], ["BOGUS"],
        ["GET", "nosuchsetting"]])),
    ("unknown", 0.3, lambda g, r, k: [r.choice(["FOO", "GETT", "CAIRN.NOSUCH"])]
     + [g.value() for _ in range(r.randint(0, 3))]),
    ("arity", 0.5, lambda g, r, k: [r.choice(["GET", "SET", "INCR", "EXPIRE", "GETRANGE",
                                              "SETEX", "MGET", "TTL", "ECHO", "SELECT"])]
     + [k() for _ in range(r.randint(0, 5))]),
]
COMMANDS = [(n, m) for n, _, m in COMMANDS_W]
CONFIG_NAMES = ["appendonly", "appendfsync", "save", "databases", "maxmemory",
                "maxmemory-policy", "timeout", "proto-max-bulk-len", "cluster-enabled",
                "TIMEOUT", "save"]

# Key positions (first, last, step) as Redis 7.0 declares them, for resynchronising the two
# stores after an intended difference.
KEY_SPECS = {"get": (1, 1, 1), "set": (1, 1, 1), "setnx": (1, 1, 1), "setex": (1, 1, 1),
             "psetex": (1, 1, 1), "getset": (1, 1, 1), "getdel": (1, 1, 1), "getex": (1, 1, 1),
             "mget": (1, -1, 1), "mset": (1, -1, 2), "msetnx": (1, -1, 2), "del": (1, -1, 1),
             "unlink": (1, -1, 1), "exists": (1, -1, 1), "touch": (1, -1, 1), "type": (1, 1, 1),
             "expire": (1, 1, 1), "pexpire": (1, 1, 1), "expireat": (1, 1, 1),
             "pexpireat": (1, 1, 1), "ttl": (1, 1, 1), "pttl": (1, 1, 1),
             "expiretime": (1, 1, 1), "pexpiretime": (1, 1, 1), "persist": (1, 1, 1),
             "incr": (1, 1, 1), "decr": (1, 1, 1), "incrby": (1, 1, 1), "decrby": (1, 1, 1),
             "incrbyfloat": (1, 1, 1), "append": (1, 1, 1), "strlen": (1, 1, 1),
             "getrange": (1, 1, 1), "substr": (1, 1, 1), "setrange": (1, 1, 1)}


def keys_of(args):
    spec = KEY_SPECS.get(args[0].decode("latin-1").lower())
    if not spec:
        return []
    first, last, step = spec
    last = len(args) + last if last < 0 else last
    return [args[i] for i in range(first, min(last, len(args) - 1) + 1, step)]


def generate_session(seed, commands):
    """The session of `seed`: its protocol, whether it pipelines, and its batches of commands
    (a batch is sent in one write)."""
    rng = random.Random(seed)
    g = Generator(rng)
    protocol = rng.choice([2, 3])
    pipeline = rng.random() < 0.5
    batches = []
    if protocol == 3:
        batches.append([[b"HELLO", b"3"]])
    n = 0
    while n < commands:
        size = rng.choice([1, 1, 2, 3, 5, 8, 16, 32]) if pipeline else 1
        batch = [g.command() for _ in range(size)]
        batches.append(batch)
        n += size
    return {"seed": seed, "protocol": protocol, "pipeline": pipeline, "batches": batches}

# ---------------------------------------------------------------------------------------------
# Comparison: byte for byte, except the intended differences and the normalisations

SAME, INTENDED, DIVERGE = "same", "intended", "diverge"

# docs/resp.md, "Differences from Redis": each (name, test). A test gets the command and both
# replies and says whether the difference is that one.
def _strtoul(b):
    """A cursor as Redis reads it (strtoul: a leading sign, wrapping negatives), or None."""
    m = re.fullmatch(rb"[+-]?\d*", b)
    if not m or b[:1].isspace():
        return None
    digits = b.lstrip(b"+-")
    v = int(digits) if digits else 0
    if v >= 2 ** 64:
        return None
    return (-v) % 2 ** 64 if b.startswith(b"-") else v


# Set by --max-request-memory-mb: a node with a small request memory budget refuses what would
# not fit it (docs/resp.md), with an error that names the flag; everything else must still be
# Redis's answer.
BUDGET_REFUSALS = False
BUDGET_SHARE = 0  # bytes of arguments one connection may send in one command: an eighth


# The refusal after which Cairn closes the connection (docs/resp.md).
CLOSING_REFUSAL = b"bytes refused: this node's request memory budget allows"


def over_share(args):
    return BUDGET_REFUSALS and sum(len(a) for a in args) > BUDGET_SHARE


INTENDED_DIFFERENCES = [
    ("a request or reply the request memory budget cannot hold is refused "
     "(--max-request-memory-mb)",
     lambda a, c, r: BUDGET_REFUSALS and c[0] == "-" and b"(--max-request-memory-mb)" in c[1]),
    ("keys are 1 byte to 16 KiB: an empty key is an error",
     lambda a, c, r: c[0] == "-" and b"the key is empty" in c[1] and b"" in a[1:]),
    ("keys are 1 byte to 16 KiB: a longer key is an error",
     lambda a, c, r: c[0] == "-" and b"keys are at most 16384 bytes" in c[1]
     and any(len(x) > 16384 for x in a[1:])),
    ("a time to live is at most about ten years",
     lambda a, c, r: c[0] == "-" and b"is over the maximum" in c[1] and b"ttl of " in c[1]
     and r[0] != "-"),
    ("SCAN cursors are the node's own: one it did not issue is an invalid cursor",
     lambda a, c, r: a[0].lower() == b"scan" and c == ("-", b"ERR invalid cursor")
     and r[0] != "-" and _strtoul(a[1]) not in (None, 0)),
    ("only database 0 exists (SELECT)",
     lambda a, c, r: a[0].lower() == b"select" and c == ("-", b"ERR DB index is out of range")
     and r == ("+", b"OK")),
    ("client tracking needs RESP3: Cairn has no pub/sub for RESP2 invalidations",
     lambda a, c, r: a[0].lower() == b"client" and len(a) > 1 and a[1].lower() == b"tracking"
     and c[0] == "-" and c[1].startswith(b"ERR client tracking needs RESP3") and r == ("+", b"OK")),
    ("without --requirepass any user and password are accepted (AUTH, HELLO AUTH)",
     lambda a, c, r: (a[0].lower() == b"auth" or (a[0].lower() == b"hello"
                                                    and b"AUTH" in [x.upper() for x in a]))
     and c[0] != "-" and (r[0] == "-" and (r[1].startswith(b"ERR AUTH <password> called without any password")
                           or r[1].startswith(b"WRONGPASS")))),
]


def _text_of(tree):
    if tree[0] in ("$", "=", "+"):
        return tree[1] or b""
    return None


def _as_list(tree):
    if tree[0] in ("*", "~", ">") and tree[1] is not None:
        return list(tree[1])
    return None


def _as_dict(tree):
    if tree[0] == "%":
        items = tree[1]
    elif tree[0] == "*" and tree[1] is not None and len(tree[1]) % 2 == 0:
        items = tree[1]
    else:
        return None
    return {items[i]: items[i + 1] for i in range(0, len(items), 2)}


def _command_names(tree, docs):
    """The command names of a COMMAND / COMMAND INFO / DOCS / LIST reply."""
    if docs:
        d = _as_dict(tree)
        return None if d is None else {k[1] for k in d}
    items = _as_list(tree)
    if items is None:
        return None
    names = set()
    for it in items:
        if it[0] in ("$", "+"):
            names.add(it[1])
        elif _as_list(it):
            names.add(_as_list(it)[0][1])
    return names


def _command_shape(tree):
    """COMMAND INFO entries as [name, arity, first key, last key, step]: flags, ACL categories,
    tips and key specs are Redis's own (an intended difference)."""
    items = _as_list(tree)
    if items is None:
        return tree
    out = []
    for it in items:
        e = _as_list(it)
        out.append(tuple(e[i] for i in (0, 1, 3, 4, 5)) if e else it)
    return tuple(out)


TTL_TOLERANCE = {b"ttl": 2, b"pttl": 2000, b"expiretime": 2, b"pexpiretime": 2000}


def normalise(args, tree):
    """What of a reply must be equal on both sides, for commands whose replies are partly
    nondeterministic. Errors are always compared as they are."""
    if tree[0] == "-":
        return tree
    name = args[0].lower()
    sub = args[1].lower() if len(args) > 1 else b""
    if name == b"time":
        items = _as_list(tree)
        return ("time", items is not None and len(items) == 2
                and all(i[0] == "$" and i[1].isdigit() for i in items))
    if name == b"info":
        # The sections' contents are each server's own; the number of keys must agree when the
        # keyspace section is asked for (Cairn's default INFO leaves it out: docs/resp.md).
        text = _text_of(tree)
        if text is None:
            return tree
        asked = {x.lower() for x in args[1:]}
        if not asked & {b"keyspace", b"all", b"everything"}:
            return ("info",)
        m = re.search(rb"db0:keys=(\d+)", text)
        return ("info", m.group(1) if m else None)
    if name == b"randomkey":
        return ("randomkey", tree[1] is not None) if tree[0] == "$" else tree
    if name == b"keys":
        items = _as_list(tree)
        return ("keys", tuple(sorted(items))) if items is not None else tree
    if name == b"hello":
        d = _as_dict(tree)
        if d is None:
            return tree
        return ("hello", tree[0], tuple(sorted((k, v) for k, v in d.items()
                                               if k[1] not in (b"id", b"version"))))
    if name == b"client" and sub in (b"id", b"list", b"info"):
        return ("client", sub, tree[0])
    if name == b"command":
        if sub == b"count":
            return ("command count", tree[0])
        if sub == b"info" and len(args) > 2:
            return ("command info", _command_shape(tree))
        if sub == b"docs" and len(args) > 2:
            return ("command docs", frozenset(_command_names(tree, True) or ()))
        if sub in (b"", b"info", b"docs", b"list"):
            return ("command list",)  # checked as a subset by compare()
    if name == b"config" and sub == b"get":
        d = _as_dict(tree)
        if d is None:
            return tree
        # Cairn's settings differ on purpose for these (docs/resp.md).
        differ = {b"databases", b"appendonly", b"appendfsync", b"proto-max-bulk-len"}
        return ("config", tuple(sorted((k[1], v if k[1] not in differ else None)
                                       for k, v in d.items())))
    return tree


def compare(args, craw, ctree, rraw, rtree, slack_s=0.0):
    """SAME, INTENDED (with its name) or DIVERGE, and what to show. `slack_s` is how far apart
    in time the two servers may have answered (TTLs may differ by that much more)."""
    if craw == rraw:
        return SAME, None
    for name, test in INTENDED_DIFFERENCES:
        if test(args, ctree, rtree):
            return INTENDED, name
    cn, rn = normalise(args, ctree), normalise(args, rtree)
    if cn == rn:
        if cn == ("command list",):
            docs = len(args) > 1 and args[1].lower() == b"docs"
            cnames, rnames = _command_names(ctree, docs), _command_names(rtree, docs)
            if cnames is None or rnames is None or not cnames <= rnames | {
                    n for n in cnames if n.startswith(b"cairn.")}:
                return DIVERGE, "COMMAND lists commands redis-server does not have"
        return SAME, None
    name = args[0].lower()
    if name in TTL_TOLERANCE and ctree[0] == rtree[0] == ":" and ctree[1] >= 0 and rtree[1] >= 0:
        unit_s = 1 if name in (b"ttl", b"expiretime") else 1000
        if abs(ctree[1] - rtree[1]) <= TTL_TOLERANCE[name] + slack_s * unit_s:
            return SAME, None
    return DIVERGE, None

# ---------------------------------------------------------------------------------------------
# Running a session against both servers

class Finding(Exception):
    def __init__(self, kind, index, detail):
        super().__init__("%s at command %d: %s" % (kind, index, detail))
        self.kind, self.index, self.detail = kind, index, detail


def show(b, n=300):
    s = repr(b)
    return s if len(s) <= n else s[:n] + "... (%d bytes)" % len(b)


def fmt_args(args):
    return " ".join(show(a, 60) for a in args)


class Sides:
    """A connection to each server, remade after QUIT."""

    pushes = [0, 0]  # RESP3 pushes skipped over every session (Cairn's, Redis's)

    def __init__(self, cairn_port, redis_port, stall_s):
        self.ports = (cairn_port, redis_port)
        self.stall_s = stall_s
        self.c = Conn(cairn_port, stall_s)
        self.r = Conn(redis_port, stall_s)

    def reconnect(self):
        self.close()
        self.c = Conn(self.ports[0], self.stall_s)
        self.r = Conn(self.ports[1], self.stall_s)

    def close(self):
        """Closes both connections once every command sent on them has been answered: a
        command still running on a server would otherwise change the next session's keys."""
        for conn in (self.c, self.r):
            try:
                conn.send(encode([b"ECHO", b"drained"]))
                while conn.reply()[1] != ("$", b"drained"):
                    pass
            except (Closed, Stall, ValueError):
                pass
            conn.close()
        Sides.pushes[0] += self.c.pushes
        Sides.pushes[1] += self.r.pushes
        self.c.pushes = self.r.pushes = 0

    def both(self, args):
        """Sends a command to both without comparing (resynchronisation, checks)."""
        return self.c.call(args)[1], self.r.call(args)[1]


# Commands whose replies depend on every key.
WHOLE_KEYSPACE = {b"keys", b"scan", b"dbsize", b"randomkey", b"info", b"flushdb", b"flushall"}


class Runner:
    def __init__(self, cairn, redis_port, stall_ms, verbose=False):
        self.cairn = cairn  # {"process":..., "port":...}
        self.redis_port = redis_port
        self.stall_s = stall_ms / 1000.0
        self.verbose = verbose
        self.executed = 0
        self.skipped = 0  # not compared: they read keys an intended difference made differ
        self.lingering = False  # redis-server may hold expired keys it has not reclaimed
        self.batch_started = time.monotonic()
        self.intended = {}
        self.closed_by_refusal = False  # in this batch (run_plain)

    def fresh(self):
        self.lingering = False
        sides = Sides(self.cairn["port"], self.redis_port, self.stall_s)
        for conn in (sides.c, sides.r):
            _, tree, _ = conn.call([b"FLUSHALL"])
            if tree != ("+", b"OK"):
                raise RuntimeError("FLUSHALL failed: %r (is cairnd started with --allow-flush?)"
                                   % (tree,))
        return sides

    def cairn_reply(self, sides, index, args):
        try:
            raw, tree, waited = sides.c.reply()
        except Stall as e:
            raise Finding("stall", index, "%s: %s" % (fmt_args(args), e))
        except Closed as e:
            if not self.cairn["process"].alive():
                raise Finding("crash", index, "cairnd died after %s: %s\n%s" % (
                    fmt_args(args), e, self.cairn["process"].log_tail()))
            return None, ("closed",), 0
        if waited > self.stall_s:
            raise Finding("stall", index, "%s took %.2f s" % (fmt_args(args), waited))
        return raw, tree, waited

    def run(self, session, stop_at=None):
        """Runs a session (FLUSHALL first); raises Finding on the first finding."""
        sides = self.fresh()
        try:
            index = 0
            for batch in session["batches"]:
                index = self.run_batch(sides, batch, index)
                if stop_at is not None and index > stop_at:
                    return
        finally:
            sides.close()

    def run_batch(self, sides, batch, index):
        # SCAN (iterated to its end), QUIT and RANDOMKEY (whose key is looked up in redis-server
        # right after) run on their own.
        plain = []
        for args in batch:
            if args[0].lower() in (b"scan", b"quit", b"randomkey"):
                index = self.run_plain(sides, plain, index)
                plain = []
                if args[0].lower() == b"randomkey":
                    index = self.run_plain(sides, [args], index)
                else:
                    index = self.run_special(sides, args, index)
            else:
                plain.append(args)
        return self.run_plain(sides, plain, index)

    def send(self, sides, cmds):
        data = b"".join((encode_inline(a) if len(cmds) == 1 and a[0] == b"PING" and
                         encode_inline(a) else encode(a)) for a in cmds)
        try:
            sides.c.send(data)
        except Closed as e:
            # Cairn refuses a command over its budget share as soon as its size is announced,
            # and closes the connection: the rest of the batch may not be sendable.
            if not (any(over_share(a) for a in cmds) and self.cairn["process"].alive()):
                raise Finding("crash", self.executed, "could not send to cairnd: %s" % e)
        sides.r.send(data)

    def reclaim_expired(self, sides):
        """Redis keeps a key SET with an EXAT/PXAT in the past until it reclaims it (lazily),
        and counts it in DBSIZE and INFO meanwhile; Cairn never counts an expired key (an
        intended difference). A full SCAN makes redis-server reclaim every expired key."""
        cursor = b"0"
        while True:
            _, tree, _ = sides.r.call([b"SCAN", cursor, b"COUNT", b"1000"])
            cursor = _as_list(tree)[0][1]
            if cursor == b"0":
                break
        self.lingering = False

    def run_plain(self, sides, cmds, index):
        if not cmds:
            return index
        counts = [a for a in cmds if a[0].lower() in (b"dbsize", b"info")]
        if counts and self.lingering:
            self.reclaim_expired(sides)
        self.batch_started = time.monotonic()
        self.send(sides, cmds)
        after = []  # what to send once every reply of the batch is in
        # Keys an intended difference left different on the two sides, until the resync after
        # the batch: later commands of the batch that read them (or the whole keyspace) are not
        # compared.
        tainted = set()
        self.closed_by_refusal = False
        for args in cmds:
            craw, ctree, _ = self.cairn_reply(sides, index, args)
            rraw, rtree, _ = sides.r.reply()
            name = args[0].lower()
            if (BUDGET_REFUSALS and ctree[0] == "-" and isinstance(ctree[1], bytes)
                    and CLOSING_REFUSAL in ctree[1] and not self.closed_by_refusal):
                # Refused and closed (as documented), whether or not the command's keys were
                # tainted by an earlier intended difference: nothing else of the batch reaches
                # Cairn, and the two stores are made equal again below.
                why = INTENDED_DIFFERENCES[0][0]
                self.intended[why] = self.intended.get(why, 0) + 1
                self.executed += 1
                self.closed_by_refusal = True
                index += 1
                continue
            if ctree == ("closed",) and any(over_share(a) for a in cmds):
                # Closed for a command over the budget share of this batch; the refusal itself
                # may be lost with the rest of the stream when the client is still sending.
                self.closed_by_refusal = True
            if self.closed_by_refusal:
                # Cairn closed the connection after refusing a request too large for its
                # budget (as documented); redis-server runs the rest of the batch alone.
                self.executed += 1
                self.skipped += 1
                index += 1
                continue
            if name == b"set" and any(o.upper() in (b"EXAT", b"PXAT") for o in args[3:]):
                self.lingering = True  # reclaim_expired; until then DBSIZE and INFO may differ
                tainted.add(b"*expired*")
            if tainted and (name in WHOLE_KEYSPACE or tainted & set(keys_of(args))
                            or (name == b"client" and b"*tracking*" in tainted)):
                # Its keys may differ now too.
                self.executed += 1
                self.skipped += 1
                tainted.update(keys_of(args))
                after.append(lambda a=args: self.resync(sides, a))
            else:
                todo = self.check(sides, index, args, craw, ctree, rraw, rtree)
                if todo and compare(args, craw, ctree, rraw, rtree)[0] == INTENDED:
                    tainted.update(keys_of(args) or [b"*"])
                    if name == b"client":
                        tainted.add(b"*tracking*")  # the two connections track apart
                after += todo
            index += 1
        if self.closed_by_refusal:
            # The two stores differ by what redis-server alone ran: both start again empty.
            sides.reconnect()
            for conn in (sides.c, sides.r):
                conn.call([b"FLUSHALL"])
            self.lingering = False
            return index
        try:
            for fn in after:
                fn()
        except Closed as e:
            # Cairn closed the connection without a reply that said so: allowed only for a
            # batch with a command over the budget share (the refusal may be lost with the rest
            # of the stream); anything else is a finding.
            if not (any(over_share(a) for a in cmds) and self.cairn["process"].alive()):
                raise Finding("divergence", index, "cairn closed the connection after a batch "
                              "with no command over the budget: %s" % e)
            sides.reconnect()
            for conn in (sides.c, sides.r):
                conn.call([b"FLUSHALL"])
            self.lingering = False
        return index

    def check(self, sides, index, args, craw, ctree, rraw, rtree):
        """Raises Finding on a divergence; returns what to do once the batch's replies are
        read (resynchronising after an intended difference, checking RANDOMKEY's key)."""
        self.executed += 1
        if ctree == ("closed",):
            raise Finding("divergence", index, "%s\n   cairn: closed the connection\n   redis: %s"
                          % (fmt_args(args), show(rraw)))
        verdict, why = compare(args, craw, ctree, rraw, rtree,
                               time.monotonic() - self.batch_started)
        if self.verbose:
            print(index, verdict, fmt_args(args), show(craw, 120), show(rraw, 120))
        if verdict == DIVERGE:
            raise Finding("divergence", index, "%s\n   cairn: %s\n   redis: %s%s" % (
                fmt_args(args), show(craw), show(rraw), "\n   " + why if why else ""))
        name = args[0].lower()
        if verdict == INTENDED:
            self.intended[why] = self.intended.get(why, 0) + 1
            if BUDGET_REFUSALS and CLOSING_REFUSAL in ctree[1]:
                self.closed_by_refusal = True
                return []
            return [lambda: self.resync(sides, args)]
        if name == b"randomkey" and ctree[0] == "$" and ctree[1] is not None:
            def exists_in_redis():
                _, exists = sides.r.call([b"EXISTS", ctree[1]])[:2]
                if exists != (":", 1):
                    raise Finding("divergence", index, "RANDOMKEY replied %s, which "
                                  "redis-server does not have" % show(ctree[1]))
            return [exists_in_redis]
        return []

    def resync(self, sides, args):
        """After an intended difference, makes both stores agree again: the command's keys are
        deleted on both sides; a SELECT that redis-server obeyed is undone."""
        name = args[0].lower()
        if name == b"select":
            sides.r.call([b"SELECT", b"0"])
            return
        if name == b"client":
            # Tracking refused on one side (RESP2): both stop tracking.
            sides.both([b"CLIENT", b"TRACKING", b"off"])
            return
        keys = [k for k in keys_of(args) if 0 < len(k) <= 16384]
        if b"" in args[1:] or any(len(k) > 16384 for k in args[1:]):
            sides.r.call([b"DEL"] + [k for k in args[1:] if k == b"" or len(k) > 16384])
        if keys:
            sides.both([b"DEL"] + keys)

    def run_special(self, sides, args, index):
        name = args[0].lower()
        self.batch_started = time.monotonic()
        if name == b"quit":
            sides.c.send(encode(args))
            sides.r.send(encode(args))
            craw, ctree, _ = self.cairn_reply(sides, index, args)
            rraw, rtree, _ = sides.r.reply()
            for fn in self.check(sides, index, args, craw, ctree, rraw, rtree):
                fn()
            sides.reconnect()
            return index + 1
        # SCAN: the first call is compared as sent; a cursor is then followed to its end on
        # each side, and the sets of keys must be equal (cursors and pages are the servers' own).
        sides.c.send(encode(args))
        sides.r.send(encode(args))
        craw, ctree, _ = self.cairn_reply(sides, index, args)
        rraw, rtree, _ = sides.r.reply()
        if ctree[0] == "-" or rtree[0] == "-" or ctree == ("closed",):
            for fn in self.check(sides, index, args, craw, ctree, rraw, rtree):
                fn()
            return index + 1
        found = []
        for conn, tree, label in ((sides.c, ctree, "cairn"), (sides.r, rtree, "redis")):
            keys = set()
            pages = 0
            while True:
                cursor, page = _as_list(tree)
                keys.update(x[1] for x in _as_list(page))
                if cursor[1] == b"0":
                    break
                pages += 1
                if pages > 100000:
                    raise Finding("divergence", index, "%s: %s's SCAN never ends"
                                  % (fmt_args(args), label))
                conn.send(encode([args[0], cursor[1]] + args[2:]))
                if conn is sides.c:
                    _, tree, _ = self.cairn_reply(sides, index, args)
                    if tree == ("closed",) or tree[0] == "-":
                        raise Finding("divergence", index, "%s: a continued SCAN replied %r"
                                      % (fmt_args(args), tree))
                else:
                    _, tree, _ = conn.reply()
            found.append(keys)
        self.executed += 1
        if found[0] != found[1]:
            raise Finding("divergence", index, "%s\n   cairn scanned: %s\n   redis scanned: %s" % (
                fmt_args(args), show(sorted(found[0])), show(sorted(found[1]))))
        return index + 1

# ---------------------------------------------------------------------------------------------
# Minimising and keeping cases

def flatten(session):
    return [(bi, args) for bi, batch in enumerate(session["batches"]) for args in batch]


def rebuild(session, items):
    batches = {}
    for bi, args in items:
        batches.setdefault(bi, []).append(args)
    s = dict(session)
    s["batches"] = [batches[k] for k in sorted(batches)]
    return s


def minimise(runner, session, finding, budget_s):
    """The shortest subsequence of the session (ddmin, within `budget_s`) that still shows a
    finding of the same kind at the same command."""
    items = flatten(session)
    target = items[finding.index] if finding.index < len(items) else None
    items = items[:finding.index + 1]
    deadline = time.monotonic() + budget_s

    def still_fails(candidate):
        if target is not None and target not in candidate:
            return None
        try:
            runner.run(rebuild(session, candidate))
        except Finding as f:
            flat = flatten(rebuild(session, candidate))
            same_place = f.index < len(flat) and flat[f.index][1] == target[1]
            return f if f.kind == finding.kind and same_place else None
        except (Closed, Stall, OSError):
            return None
        return None

    chunk = max(1, len(items) // 2)
    best = finding
    while chunk >= 1 and time.monotonic() < deadline:
        i = 0
        removed = False
        while i < len(items) and time.monotonic() < deadline:
            candidate = items[:i] + items[i + chunk:]
            f = still_fails(candidate)
            if f is not None:
                items, best, removed = candidate, f, True
            else:
                i += chunk
        if not removed:
            chunk //= 2
    return rebuild(session, items), best


def case_to_json(session, finding, note):
    def s(b):
        return b.decode("latin-1")
    return {
        "finding": finding.kind,
        "detail": finding.detail[:2000],
        "note": note,
        "seed": session.get("seed"),
        "protocol": session.get("protocol", 2),
        "pipeline": session.get("pipeline", False),
        "batches": [[[s(a) for a in args] for args in batch] for batch in session["batches"]],
    }


def case_from_json(d):
    return {"seed": d.get("seed"), "protocol": d.get("protocol", 2),
            "pipeline": d.get("pipeline", False),
            "batches": [[[a.encode("latin-1") for a in args] for args in batch]
                        for batch in d["batches"]]}


def save_case(cases_dir, session, finding, note=""):
    os.makedirs(cases_dir, exist_ok=True)
    items = flatten(session)
    head = items[-1][1][0].decode("latin-1", "replace").lower() if items else "empty"
    head = re.sub(r"[^a-z0-9]+", "-", head)[:20]
    path = os.path.join(cases_dir, "%s-%s-%s.json" % (finding.kind, head, session.get("seed")))
    with open(path, "w") as f:
        json.dump(case_to_json(session, finding, note), f, indent=1)
        f.write("\n")
    return path

# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cairnd", help="the cairnd binary (an ASan build finds more)")
    ap.add_argument("--redis-server", default="/usr/bin/redis-server")
    ap.add_argument("--seed", type=int, help="the first session's seed (default: random)")
    ap.add_argument("--seconds", type=float, default=30, help="stop starting sessions after this")
    ap.add_argument("--sessions", type=int, default=0, help="stop after this many (0: no limit)")
    ap.add_argument("--commands", type=int, default=300, help="commands per session")
    ap.add_argument("--cases", help="regression cases: replayed first; --save writes new ones")
    ap.add_argument("--save", action="store_true", help="save findings as cases (minimised)")
    ap.add_argument("--replay", help="replay this one case file and stop")
    ap.add_argument("--keep-going", action="store_true", help="go on after a finding")
    ap.add_argument("--stall-ms", type=float, default=1000)
    ap.add_argument("--minimise-seconds", type=float, default=60)
    ap.add_argument("--work-dir", help="where the servers keep their files (default: temporary)")
    ap.add_argument("--max-request-memory-mb", type=int,
                    help="run cairnd with this request memory budget; its refusals are allowed")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    budget_args = []
    if a.max_request_memory_mb is not None:
        global BUDGET_REFUSALS, BUDGET_SHARE
        BUDGET_REFUSALS = True
        BUDGET_SHARE = (a.max_request_memory_mb << 20) // 8
        budget_args = ["--max-request-memory-mb", str(a.max_request_memory_mb)]

    if not os.access(a.redis_server, os.X_OK):
        print("SKIPPED: %s is not installed (apt-get install redis-server)" % a.redis_server)
        return fuzzlib.SKIP
    if not a.cairnd or not os.access(a.cairnd, os.X_OK):
        print("SKIPPED: no cairnd binary (--cairnd)")
        return fuzzlib.SKIP

    with fuzzlib.Servers(a.work_dir) as servers:
        redis, redis_port = fuzzlib.start_redis(a.redis_server, os.path.join(servers.dir, "redis"))
        servers.add(redis)
        cairn = {}

        def start_cairn():
            p, addresses = fuzzlib.start_cairnd(
                a.cairnd, os.path.join(servers.dir, "cairn-%d" % time.monotonic_ns()),
                ["--resp", "127.0.0.1:0", "--allow-flush"] + budget_args)
            servers.add(p)
            cairn["process"] = p
            cairn["port"] = int(addresses["resp"].rsplit(":", 1)[1])
        start_cairn()
        runner = Runner(cairn, redis_port, a.stall_ms, a.verbose)
        findings = 0

        def report(session, f, label):
            nonlocal findings
            findings += 1
            fuzzlib.log("FINDING (%s, seed %s): %s" % (label, session.get("seed"), f))
            if not cairn["process"].alive():
                fuzzlib.log("cairnd died; log tail:\n" + cairn["process"].log_tail())
                start_cairn()

        case_files = []
        if a.replay:
            case_files = [a.replay]
        elif a.cases:
            case_files = sorted(glob.glob(os.path.join(a.cases, "*.json")))
        for path in case_files:
            with open(path) as f:
                session = case_from_json(json.load(f))
            try:
                runner.run(session)
                fuzzlib.log("case %s: passes" % os.path.basename(path))
            except Finding as f:
                report(session, f, "regression case " + os.path.basename(path))
        if a.replay:
            return 1 if findings else 0

        seed = a.seed if a.seed is not None else random.SystemRandom().randrange(2 ** 63)
        fuzzlib.log("resp_diff_fuzz: first seed %d (replay a session with --seed N --sessions 1)"
                    % seed)
        started = time.monotonic()
        sessions = 0
        while True:
            if a.sessions and sessions >= a.sessions:
                break
            if not a.sessions and time.monotonic() - started >= a.seconds:
                break
            session = generate_session(seed, a.commands)
            sessions += 1
            try:
                runner.run(session)
            except Finding as f:
                report(session, f, "session")
                if a.save and a.cases and f.kind != "crash":
                    small, f2 = minimise(runner, session, f, a.minimise_seconds)
                    path = save_case(a.cases, small, f2)
                    fuzzlib.log("minimised to %d commands: %s\n%s" % (
                        len(flatten(small)), path, f2))
                elif a.save and a.cases:
                    path = save_case(a.cases, rebuild(session, flatten(session)[:f.index + 1]), f)
                    fuzzlib.log("saved: %s" % path)
                if not cairn["process"].alive():
                    start_cairn()
                if not a.keep_going:
                    break
            seed = random.Random(seed).randrange(2 ** 63)
        fuzzlib.log("resp_diff_fuzz: %d sessions, %d commands (%d not compared after an "
                    "intended difference), %d findings, %.0f s; intended differences seen: %s; "
                    "invalidation pushes skipped: cairn %d, redis %d" % (
                        sessions, runner.executed, runner.skipped, findings,
                        time.monotonic() - started, json.dumps(runner.intended), *Sides.pushes))
        exit_problem = fuzzlib.stop_cairnd(cairn["process"])
        if exit_problem:
            fuzzlib.log(exit_problem)
            findings += 1
    return 1 if findings else 0


if __name__ == "__main__":
    fuzzlib.run_main(main)
