#!/usr/bin/python3
"""The RESP conformance scenario, driven by Python's `redis` package (Debian python3-redis).

Usage: resp_scenario.py HOST PORT [PREFIX]
Exits 0 when every check passed, 1 on the first failure (printing it), 77 when the `redis`
package is not installed (the test then skips). Keys are prefixed with PREFIX so that runs against
one server do not collide.
"""
import sys
import time

try:
    import redis
except ImportError:
    print("SKIPPED: the python3 'redis' package is not installed (apt-get install python3-redis)")
    sys.exit(77)

host, port = sys.argv[1], int(sys.argv[2])
p = sys.argv[3] if len(sys.argv) > 3 else "py:"


def check(what, got, want):
    if got != want:
        print(f"FAILED {what}: got {got!r}, want {want!r}")
        sys.exit(1)


def check_error(what, fn, text):
    try:
        fn()
    except redis.ResponseError as e:
        if text not in str(e):
            print(f"FAILED {what}: error {str(e)!r} does not contain {text!r}")
            sys.exit(1)
        return
    print(f"FAILED {what}: no error, wanted one containing {text!r}")
    sys.exit(1)


r = redis.Redis(host=host, port=port, socket_timeout=10)
check("ping", r.ping(), True)
check("echo", r.echo("hi"), b"hi")

# Strings and SET's options.
check("set", r.set(p + "a", "1"), True)
check("get", r.get(p + "a"), b"1")
check("get missing", r.get(p + "missing"), None)
check("set nx on existing", r.set(p + "a", "2", nx=True), None)
check("set xx on missing", r.set(p + "b", "2", xx=True), None)
check("set nx on missing", r.set(p + "b", "2", nx=True), True)
check("set get", r.set(p + "b", "3", get=True), b"2")
check("set ex", r.set(p + "e", "v", ex=100), True)
ttl = r.ttl(p + "e")
check("ttl in range", 98 <= ttl <= 100, True)
check("set keepttl", r.set(p + "e", "w", keepttl=True), True)
check("ttl kept", r.ttl(p + "e") > 0, True)
check("set without keepttl drops the ttl", r.set(p + "e", "x") and r.ttl(p + "e"), -1)
check("set px then expired", r.set(p + "short", "v", px=50), True)
time.sleep(0.2)
check("expired key is gone", r.get(p + "short"), None)
check("ttl of missing", r.ttl(p + "missing"), -2)
check("execute IFEQ mismatch", r.execute_command("SET", p + "b", "4", "IFEQ", "nope"), None)
check("execute IFEQ match", r.execute_command("SET", p + "b", "4", "IFEQ", "3"), True)
check("get after ifeq", r.get(p + "b"), b"4")
check_error("set nx xx", lambda: r.execute_command("SET", p + "a", "1", "NX", "XX"), "syntax error")
check_error("set ex 0", lambda: r.execute_command("SET", p + "a", "1", "EX", "0"),
            "invalid expire time in 'set' command")
check("setnx", r.setnx(p + "a", "x"), False)
check("getset", r.getset(p + "a", "9"), b"1")
check("getdel", r.getdel(p + "a"), b"9")
check("getdel gone", r.get(p + "a"), None)
check("setex", r.setex(p + "sx", 50, "v"), True)
check("pttl", 0 < r.pttl(p + "sx") <= 50000, True)
check("persist", r.persist(p + "sx"), True)
check("ttl after persist", r.ttl(p + "sx"), -1)
check("expire", r.expire(p + "sx", 100), True)
check("expire nx on a key with ttl", r.execute_command("EXPIRE", p + "sx", 10, "NX"), 0)
check("expire gt", r.execute_command("EXPIRE", p + "sx", 200, "GT"), 1)
check("expiretime", r.execute_command("EXPIRETIME", p + "sx") > time.time() + 150, True)
check("expire on missing", r.expire(p + "missing", 10), False)
check("getex persist", r.execute_command("GETEX", p + "sx", "PERSIST"), b"v")
check("ttl after getex persist", r.ttl(p + "sx"), -1)

# Counters and edits.
check("incr new", r.incr(p + "n"), 1)
check("incrby", r.incrby(p + "n", 10), 11)
check("decr", r.decr(p + "n"), 10)
check("decrby", r.decrby(p + "n", 3), 7)
check("incrbyfloat", r.incrbyfloat(p + "f", 10.5), 10.5)
check("incrbyfloat again", r.incrbyfloat(p + "f", 0.1), 10.6)
r.set(p + "s", "abc")
check_error("incr non integer", lambda: r.incr(p + "s"), "value is not an integer or out of range")
r.set(p + "max", str(2**63 - 1))
check_error("incr overflow", lambda: r.incr(p + "max"), "increment or decrement would overflow")
check("append", r.append(p + "s", "def"), 6)
check("strlen", r.strlen(p + "s"), 6)
check("getrange", r.getrange(p + "s", 1, -2), b"bcde")
check("setrange", r.setrange(p + "s", 8, "Z"), 9)
check("setrange padded", r.get(p + "s"), b"abcdef\x00\x00Z")

# Several keys.
check("mset", r.mset({p + "m1": "1", p + "m2": "2"}), True)
check("mget", r.mget([p + "m1", p + "nope", p + "m2"]), [b"1", None, b"2"])
check("msetnx refused", r.msetnx({p + "m1": "x", p + "m3": "3"}), False)
check("msetnx refused wrote nothing", r.get(p + "m3"), None)
check("exists", r.exists(p + "m1", p + "m2", p + "nope", p + "m1"), 3)
check("type", r.type(p + "m1"), b"string")
check("type none", r.type(p + "nope"), b"none")
check("del", r.delete(p + "m1", p + "m2", p + "nope"), 2)
check("del again", r.delete(p + "m1"), 0)

# Scans.
for i in range(25):
    r.set(f"{p}scan:{i:02d}", i)
found = sorted(k.decode() for k in r.scan_iter(match=p + "scan:*", count=7))
check("scan_iter", found, [f"{p}scan:{i:02d}" for i in range(25)])
check("scan match glob", sorted(r.scan_iter(match=p + "scan:1?")), [f"{p}scan:1{i}".encode() for i in range(10)])
check("keys", len(r.keys(p + "scan:*")), 25)
check("dbsize", r.dbsize() >= 25, True)

# Connection commands.
check("client setname", r.client_setname("scenario"), True)
check("client getname", r.client_getname(), "scenario")
check("client id", isinstance(r.client_id(), int), True)
check("client list has us", any(c.get("name") == "scenario" for c in r.client_list()), True)
check("select 0", r.execute_command("SELECT", 0), True)
check_error("select 1", lambda: r.execute_command("SELECT", 1), "DB index is out of range")
check("time", len(r.time()), 2)
info = r.info()
check("info redis_version", "redis_version" in info, True)
check("info cairn node", "node_id" in r.info("cairn"), True)
check("config get", r.config_get("appendonly"), {"appendonly": "yes"})
check("command count", r.command_count() > 50, True)
check("command info", "get" in r.command(), True)

# Errors with Redis's texts.
check_error("unknown command", lambda: r.execute_command("FOO", "a", "b"),
            "unknown command 'FOO', with args beginning with: 'a' 'b'")
check_error("wrong arity", lambda: r.execute_command("GET"),
            "wrong number of arguments for 'get' command")

# Cairn's own commands.
check("cairn.keyspace", r.execute_command("CAIRN.KEYSPACE"), b"default")
check_error("cairn.keyspace unknown", lambda: r.execute_command("CAIRN.KEYSPACE", "nope"), "nope")
levels = r.execute_command("CAIRN.CONSISTENCY", "READ", "ALL", "WRITE", "QUORUM")
check("cairn.consistency", levels, [b"read", b"ALL", b"write", b"QUORUM"])
r.set(p + "v", "one")
value, version, expires = r.execute_command("CAIRN.GETV", p + "v")
check("cairn.getv value", value, b"one")
check("cairn.cas stale", r.execute_command("CAIRN.CAS", p + "v", "1:1", "two")[0], 0)
applied, new_version = r.execute_command("CAIRN.CAS", p + "v", version, "two")
check("cairn.cas applied", applied, 1)
check("cairn.cas new version differs", new_version != version, True)
check("cairn.cas value", r.get(p + "v"), b"two")
check("cairn.cas if absent", r.execute_command("CAIRN.CAS", p + "new", "0", "x")[0], 1)
check("cairn.status", len(r.execute_command("CAIRN.STATUS")) >= 1, True)

# Pipelining: replies in order, reads see the writes before them.
pipe = r.pipeline(transaction=False)
for i in range(200):
    pipe.set(p + "pipe", i)
    pipe.get(p + "pipe")
    pipe.incr(p + "pipe:n")
out = pipe.execute()
for i in range(200):
    check(f"pipelined get {i}", out[3 * i + 1], str(i).encode())
    check(f"pipelined incr {i}", out[3 * i + 2], i + 1)

# RESP3 is checked over a raw socket and with redis-cli -3: python3-redis 4.3 speaks RESP2 only.
check_error("hello 4", lambda: r.execute_command("HELLO", "4"), "unsupported protocol version")
print("python redis scenario: all checks passed")
