"""Black-box helpers for the integration suite: start an etcd member, talk JSON to it.

Stdlib only. Works against any etcd binary (ETCD_BIN): ours (build/etcd) or the
reference etcd 3.4 (/usr/bin/etcd). Every wait here has a bound, and processes are
only ever stopped by PID.
"""
import base64
import ctypes
import hashlib
import http.client
import itertools
import json
import os
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _etcd_bin():
    b = os.environ.get("ETCD_BIN") or "build/etcd"
    p = Path(b)
    if not p.is_absolute():
        p = REPO / p
    return str(p)


ETCD_BIN = _etcd_bin()


def _is_reference():
    # ETCD_IMPL=reference|ours overrides; otherwise Debian's etcd is the reference.
    impl = os.environ.get("ETCD_IMPL")
    if impl:
        return impl == "reference"
    try:
        return os.path.realpath(ETCD_BIN) == os.path.realpath("/usr/bin/etcd")
    except OSError:
        return False


IS_REFERENCE = _is_reference()

# Start-up may be slow under ASan or on a loaded 2-core machine.
START_TIMEOUT = float(os.environ.get("ETCD_START_TIMEOUT", "30"))
STOP_TIMEOUT = 15.0
HTTP_TIMEOUT = 15.0

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:", "WARNING: ThreadSanitizer")

ROLES = ("raftd", "storaged", "gatewayd", "discoveryd")


# ---------------------------------------------------------------- encoding

def b64(s):
    """Standard base64 (with padding) of a str or bytes, as etcd's JSON wants."""
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def unb64(s):
    """Decode etcd's base64 field to bytes ("" or None -> b"")."""
    return base64.b64decode(s or "")


def prefix_end(p):
    """The range_end that selects every key starting with p (etcd's GetPrefixRangeEnd)."""
    if isinstance(p, str):
        p = p.encode()
    b = bytearray(p)
    for i in range(len(b) - 1, -1, -1):
        if b[i] < 0xFF:
            b[i] += 1
            return bytes(b[:i + 1])
    return b"\0"


def member_id(peer_urls, token):
    """etcd's member ID: first 8 bytes (big-endian) of sha1(sorted peer URLs + token)."""
    h = hashlib.sha1(("".join(sorted(peer_urls)) + token).encode()).digest()
    return struct.unpack(">Q", h[:8])[0]


def cluster_id(ids):
    h = hashlib.sha1(b"".join(struct.pack(">Q", i) for i in sorted(ids))).digest()
    return struct.unpack(">Q", h[:8])[0]


# ---------------------------------------------------------------- addresses

_addr_counter = itertools.count()
# Per-process base so two suites running at once (build/ and build-asan/, or another
# engineer's run) do not pick the same loopback hosts.
_addr_base = 100 + os.getpid() % 100


def _port_free(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # as etcd's listeners do: connections in TIME_WAIT do not make a port taken
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def fresh_host():
    """A loopback address 127.B.X.Y whose ports 2379 and 2380 are both free."""
    for _ in range(5000):
        n = next(_addr_counter)
        host = "127.%d.%d.%d" % (_addr_base, (n // 250) % 250, n % 250 + 2)
        if _port_free(host, 2379) and _port_free(host, 2380):
            return host
    raise RuntimeError("no free loopback address found")


# ---------------------------------------------------------------- /proc

def proc_state(pid):
    """The one-letter state of pid, or None if it does not exist."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(")") + 2]


def alive(pid):
    s = proc_state(pid)
    return s is not None and s not in ("Z", "X")


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read()
    except OSError:
        return b""


def children(pid):
    """Direct children of pid (over all its threads)."""
    out = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                out.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return out


def descendants(pid):
    seen, todo = [], [pid]
    while todo:
        for c in children(todo.pop()):
            if c not in seen:
                seen.append(c)
                todo.append(c)
    return seen


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Poll pred() until it is truthy; return its value or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def _pdeathsig():
    # If pytest dies, the member gets SIGKILL instead of leaking (ours then must not
    # leave workers behind: they watch their supervisor link).
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except OSError:
        pass


# ---------------------------------------------------------------- HTTP

class Resp:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # http.client.HTTPMessage, case-insensitive get()
        self.body = body
        self.text = body.decode("utf-8", "replace")
        try:
            self.json = json.loads(self.text) if body else None
        except ValueError:
            self.json = None

    def header(self, name):
        return self.headers.get(name)

    def __repr__(self):
        return "<Resp %d %r>" % (self.status, self.text[:300])


class Client:
    """One HTTP/1.1 connection per request (as curl would), bounded by a timeout."""

    def __init__(self, host, port=2379, timeout=HTTP_TIMEOUT):
        self.host, self.port, self.timeout = host, port, timeout

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def request(self, method, path, body=None, headers=None, timeout=None):
        conn = http.client.HTTPConnection(self.host, self.port,
                                          timeout=timeout or self.timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            return Resp(r.status, r.reason, r.headers, data)
        finally:
            conn.close()

    def post(self, path, obj=None, headers=None, timeout=None):
        """POST obj (dict/list -> JSON; str/bytes sent as is)."""
        if obj is None:
            body = b""
        elif isinstance(obj, (bytes, bytearray)):
            body = bytes(obj)
        elif isinstance(obj, str):
            body = obj.encode()
        else:
            body = json.dumps(obj).encode()
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.request("POST", path, body, h, timeout=timeout)

    def get(self, path, timeout=None):
        return self.request("GET", path, timeout=timeout)

    # Convenience wrappers that insist on success and return the JSON object.
    def ok(self, path, obj):
        r = self.post(path, obj)
        assert r.status == 200, "%s %s -> %r" % (path, obj, r)
        return r.json

    def put(self, key, value="", **kw):
        return self.ok("/v3/kv/put", dict(key=b64(key), value=b64(value), **kw))

    def range(self, key, **kw):
        if "range_end" in kw and not isinstance(kw["range_end"], str):
            kw["range_end"] = b64(kw["range_end"])
        return self.ok("/v3/kv/range", dict(key=b64(key), **kw))

    def get_value(self, key):
        kvs = self.range(key).get("kvs", [])
        return unb64(kvs[0].get("value")) if kvs else None

    def delete(self, key, **kw):
        if "range_end" in kw and not isinstance(kw["range_end"], str):
            kw["range_end"] = b64(kw["range_end"])
        return self.ok("/v3/kv/deleterange", dict(key=b64(key), **kw))

    def revision(self):
        r = self.ok("/v3/kv/range", {"key": b64("\0"), "count_only": True})
        return int(r["header"]["revision"])

    def healthy(self, timeout=1.0):
        try:
            r = self.get("/health", timeout=timeout)
        except (OSError, http.client.HTTPException):
            return False
        return r.status == 200 and r.json == {"health": "true"}


# ---------------------------------------------------------------- member

class Member:
    """One single-node member on its own loopback host, data dir under workdir.

    start() waits (bounded) until /health answers; stop() is SIGTERM, bounded wait,
    SIGKILL, then any leftover worker of ours is killed by PID too.
    """

    def __init__(self, workdir, name="m", host=None, args=(), env=None,
                 data_dir=None, cwd=None, plain=False):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.host = host or fresh_host()
        self.data_dir = Path(data_dir) if data_dir else self.workdir / (name + ".etcd")
        self.extra = list(args)
        self.env = env
        self.cwd = cwd
        self.plain = plain  # no generated flags at all: args are the whole command line
        self.proc = None
        self.starts = 0
        self.stderr_path = self.workdir / ("%s.stderr" % name)
        self.stdout_path = self.workdir / ("%s.stdout" % name)
        self.leftovers = []  # workers found alive after the supervisor exited
        self.client = Client(self.host)

    # -- command line
    def argv(self):
        if self.plain:
            return [ETCD_BIN] + self.extra
        h = self.host
        return [ETCD_BIN, "--name", self.name, "--data-dir", str(self.data_dir),
                "--listen-client-urls", "http://%s:2379" % h,
                "--advertise-client-urls", "http://%s:2379" % h,
                "--listen-peer-urls", "http://%s:2380" % h,
                "--initial-advertise-peer-urls", "http://%s:2380" % h,
                "--initial-cluster", "%s=http://%s:2380" % (self.name, h),
                "--initial-cluster-token", "tok-" + h] + self.extra

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def spawn(self):
        """Start the process without waiting for it to serve."""
        assert self.proc is None or self.proc.poll() is not None
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("ETCD_"):  # our harness's own settings are not etcd's
                del env[k]
        if self.env:
            env.update(self.env)
        self.starts += 1
        with open(self.stderr_path, "ab") as err, open(self.stdout_path, "ab") as out:
            err.write(b"==== start %d: %s\n" % (self.starts, " ".join(self.argv()).encode()))
            err.flush()
            self.proc = subprocess.Popen(self.argv(), stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, env=env,
                                         cwd=self.cwd or str(self.workdir),
                                         preexec_fn=_pdeathsig)
        return self

    def start(self, timeout=START_TIMEOUT):
        self.spawn()
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout=START_TIMEOUT):
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("etcd exited with %s during start-up:\n%s"
                                   % (self.proc.returncode, self.stderr_tail()))
            return self.client.healthy()
        wait_until(ready, timeout, 0.1, "member %s to serve /health" % self.host)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # -- our process layout
    def workers(self):
        """role -> pid of each live worker (children whose cmdline is 'etcd: <role>')."""
        out = {}
        if not self.running():
            return out
        for c in children(self.pid):
            cl = cmdline(c)
            for role in ROLES:
                if cl.startswith(("etcd: " + role).encode()) and alive(c):
                    out[role] = c
        return out

    def all_pids(self):
        if not self.running():
            return []
        return [self.pid] + descendants(self.pid)

    def total_rss_kib(self):
        return sum(rss_kib(p) for p in self.all_pids())

    # -- stopping
    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Stop by PID; returns the exit status (or None if it was not running)."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            self._reap_leftovers(self._known_desc)
            return self.proc.returncode
        desc = [(p, cmdline(p)) for p in descendants(self.pid)]
        self._known_desc = desc
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(5)
        self._reap_leftovers(desc)
        return self.proc.returncode

    _known_desc = []

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def _reap_leftovers(self, desc, timeout=5.0):
        """Kill (by PID) descendants that outlived the supervisor; remember them."""
        if not desc:
            return
        deadline = time.monotonic() + timeout
        live = [(p, c) for p, c in desc if alive(p) and cmdline(p) == c]
        while live and time.monotonic() < deadline:
            time.sleep(0.05)
            live = [(p, c) for p, c in live if alive(p) and cmdline(p) == c]
        for p, c in live:
            self.leftovers.append((p, c))
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._known_desc = []

    # -- output
    def stderr_text(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def stderr_tail(self, n=60):
        return "\n".join(self.stderr_text().splitlines()[-n:])

    def sanitizer_reports(self):
        t = self.stderr_text()
        return [m for m in SANITIZER_MARKERS if m in t]


def run_etcd(args, cwd, env=None, timeout=20):
    """Run the binary to completion (for --version, --help, config errors).

    Returns CompletedProcess; if it is still running after timeout it is killed and
    returncode is None-like (-9) with stderr marked.
    """
    e = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
    e.update(env or {})
    p = subprocess.Popen([ETCD_BIN] + list(args), cwd=cwd, env=e, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=_pdeathsig)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        desc = descendants(p.pid)
        p.kill()
        out, err = p.communicate(5)
        for d in desc:
            try:
                os.kill(d, signal.SIGKILL)
            except ProcessLookupError:
                pass
        err += b"\n[test harness: killed after %ds]" % timeout
    return subprocess.CompletedProcess(p.args, p.returncode, out.decode("utf-8", "replace"),
                                       err.decode("utf-8", "replace"))
