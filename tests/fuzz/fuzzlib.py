"""What the model-based and differential fuzzers share: starting and stopping the servers they
test (cairnd, redis-server) on 127.0.0.1, by pid, and waiting on conditions rather than sleeps.

Every process started here is killed and reaped by pid when the fuzzer ends, also when it fails
or is interrupted (Servers is a context manager and SIGTERM/SIGINT unwind through it), and dies
with the fuzzer if the fuzzer itself is killed (PR_SET_PDEATHSIG).
"""
import ctypes
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77  # ctest's SKIP_RETURN_CODE for the fuzz tests

_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def free_port():
    """A port the kernel reports free on 127.0.0.1 (another process may still take it first:
    callers that bind it retry)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, what):
    """Calls predicate() with a short backoff until it is true or `timeout` seconds pass; then
    raises with `what`."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise RuntimeError("timed out waiting for " + what)
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def can_connect(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Process:
    """One child process, stopped by its pid."""

    def __init__(self, name, args, log_path, stdout=None):
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=stdout if stdout is not None else self.log,
                                     stderr=self.log, preexec_fn=_die_with_parent)
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGKILL):
        """Stops the process with `sig` (SIGKILL after 10 s) and returns its exit status."""
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def log_tail(self, n=60):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return ""


def start_cairnd(binary, data_dir, extra_args=(), timeout=60):
    """Starts cairnd with --listen 127.0.0.1:0 (and whatever extra_args ask for, e.g. --resp
    127.0.0.1:0 or --http 127.0.0.1:0) and waits for its start-up line. Returns the Process and
    a dict of the addresses it printed: listen, resp, http."""
    os.makedirs(data_dir, exist_ok=True)
    args = [binary, "--data-dir", data_dir, "--listen", "127.0.0.1:0", "--log-level", "warn"]
    args += list(extra_args)
    p = Process("cairnd", args, data_dir + ".log", stdout=subprocess.PIPE)
    seen = b""
    deadline = time.monotonic() + timeout
    ready = re.compile(rb"node (\d+) listening on ([0-9.]+:\d+)")
    while not ready.search(seen):
        left = deadline - time.monotonic()
        if left <= 0 or not p.alive() and not select.select([p.proc.stdout], [], [], 0)[0]:
            p.stop()
            raise RuntimeError("cairnd did not start; log:\n" + p.log_tail())
        r, _, _ = select.select([p.proc.stdout], [], [], min(left, 0.5))
        if r:
            chunk = os.read(p.proc.stdout.fileno(), 4096)
            if not chunk:
                p.stop()
                raise RuntimeError("cairnd exited during start-up; log:\n" + p.log_tail())
            seen += chunk
    # Keep draining what cairnd prints, so that it never blocks on a full pipe.
    def drain(out, path):
        with open(path, "ab") as f:
            f.write(seen)
            while True:
                chunk = out.read1(65536) if hasattr(out, "read1") else out.read(65536)
                if not chunk:
                    return
                f.write(chunk)
                f.flush()
    threading.Thread(target=drain, args=(p.proc.stdout, data_dir + ".stdout"),
                     daemon=True).start()
    addresses = {"listen": ready.search(seen).group(2).decode()}
    m = re.search(rb"RESP \(Redis protocol\) on ([0-9.]+:\d+)", seen)
    if m:
        addresses["resp"] = m.group(1).decode()
    m = re.search(rb"http on ([0-9.]+:\d+)", seen)
    if m:
        addresses["http"] = m.group(1).decode()
    return p, addresses


def start_redis(binary, work_dir, timeout=30):
    """Starts redis-server on a free 127.0.0.1 port, without persistence. Returns (Process,
    port)."""
    os.makedirs(work_dir, exist_ok=True)
    for _ in range(5):
        port = free_port()
        p = Process("redis-server", [binary, "--port", str(port), "--bind", "127.0.0.1",
                                     "--save", "", "--appendonly", "no", "--dir", work_dir,
                                     "--protected-mode", "no"],
                    os.path.join(work_dir, "redis.log"))
        try:
            wait_until(lambda: can_connect(port) or not p.alive(), timeout, "redis-server")
        except RuntimeError:
            p.stop()
            raise
        if p.alive():
            return p, port
        p.stop()  # the port was taken in between: try another
    raise RuntimeError("redis-server did not start")


class Servers:
    """Owns the processes of one fuzz run and a scratch directory; stops them all on exit."""

    def __init__(self, keep_dir=None):
        self.processes = []
        self.dir = keep_dir or tempfile.mkdtemp(prefix="cairn-fuzz-")
        self._own_dir = keep_dir is None

    def add(self, process):
        self.processes.append(process)
        return process

    def __enter__(self):
        def unwind(signum, frame):
            raise KeyboardInterrupt("signal %d" % signum)
        signal.signal(signal.SIGTERM, unwind)
        return self

    def __exit__(self, *exc):
        for p in reversed(self.processes):
            p.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        return False


def log(*args):
    print(*args, flush=True)
    sys.stdout.flush()


def stop_cairnd(p):
    """Stops cairnd with SIGTERM, so that a sanitizer build reports leaks and errors as it exits;
    returns what went wrong (its exit status and log tail), or None."""
    status = p.stop(signal.SIGTERM)
    if status in (0, None):
        return None
    return "cairnd exited with status %s; log tail:\n%s" % (status, p.log_tail())


def run_main(main):
    """Runs a fuzzer's main() as the program: its return value is the exit status; ^C is 130."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
