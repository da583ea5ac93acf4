"""Streaming helpers for the integration suite: watch streams, lease keepalive, put bursts.

A WatchStream POSTs a body of WatchRequests to /v3/watch and a reader thread turns the
chunked answer into messages on a queue, so a test waits for the next message with a
bound (next(timeout)) and can also check that nothing arrives for a while, which a
timed-out read on the socket itself would not allow (a file object of a socket is
unusable after a timeout). Stdlib only; every wait is bounded.
"""
import http.client
import json
import queue
import socket
import threading
import time

from etcdlib import b64, prefix_end, unb64

# How long the reader thread's single socket read may block: long enough for a stalled
# server to be the test's failure, not ours; the queue waits of the test are shorter.
READ_TIMEOUT = 60.0


class StreamClosed(Exception):
    """The server ended the stream (or the connection broke)."""


def create_req(key, range_end=None, prefix=False, all_keys=False, **kw):
    """A create_request; key/range_end as str or bytes; prefix=True or all_keys=True."""
    if all_keys:
        key, range_end = b"\0", b"\0"
    elif prefix:
        range_end = prefix_end(key)
    r = {"key": b64(key)}
    if range_end is not None:
        r["range_end"] = b64(range_end)
    r.update(kw)
    return {"create_request": r}


def cancel_req(watch_id):
    return {"cancel_request": {"watch_id": watch_id}}


def progress_req():
    return {"progress_request": {}}


def _body(reqs):
    if isinstance(reqs, (bytes, str)):
        return reqs if isinstance(reqs, bytes) else reqs.encode()
    return b"\n".join(json.dumps(r, separators=(",", ":")).encode() for r in reqs)


class WatchStream:
    """One POST /v3/watch; messages (the decoded JSON objects) arrive on self.q.

    open() sends the body and returns at once; the HTTP status and headers come only
    with the first message (etcd's gateway), so the reader thread waits for them.
    """

    def __init__(self, host, reqs, port=2379):
        self.host, self.port = host, port
        self.body = _body(reqs)
        self.q = queue.Queue()
        self.status = None
        self.headers = None
        self.raw = []  # every raw line, in order (for byte-exact checks)
        self.closed = threading.Event()
        self.error = None
        self.conn = None
        self.sock = None
        self.thread = None

    def open(self):
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=READ_TIMEOUT)
        self.conn.request("POST", "/v3/watch", self.body,
                          {"Content-Type": "application/json"})
        self.sock = self.conn.sock
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        return self

    def _read(self):
        try:
            r = self.conn.getresponse()
            self.status = r.status
            self.headers = r.headers
            while True:
                line = r.readline()
                if not line:
                    break
                self.raw.append(line)
                try:
                    self.q.put(json.loads(line))
                except ValueError:
                    self.q.put({"_unparsable": line})
        except Exception as e:  # noqa: BLE001 -- any end of the stream is a close
            self.error = e
        finally:
            self.closed.set()
            self.q.put(StreamClosed())

    def next(self, timeout=10.0):
        """The next message; TimeoutError if none within timeout, StreamClosed at EOF."""
        try:
            m = self.q.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("no watch message within %.1fs" % timeout) from None
        if isinstance(m, StreamClosed):
            self.q.put(m)  # stays closed for later calls
            raise StreamClosed("watch stream closed (%r)" % (self.error,))
        return m

    def result(self, timeout=10.0):
        m = self.next(timeout)
        assert "result" in m, "not a result message: %r" % (m,)
        return m["result"]

    def silent(self, seconds):
        """True if no message arrives within seconds (a closed stream is not silence)."""
        try:
            m = self.next(seconds)
        except TimeoutError:
            return True
        except StreamClosed:
            return False
        self.q.queue.appendleft(m)  # put it back in front for the caller to inspect
        return False

    def events(self, n, timeout=10.0, deadline=None):
        """Collect results until n events have arrived; returns (events, results).

        timeout bounds each wait; deadline (monotonic) bounds the whole collection.
        """
        evs, results = [], []
        while len(evs) < n:
            wait = timeout
            if deadline is not None:
                wait = min(wait, max(0.01, deadline - time.monotonic()))
            try:
                res = self.result(wait)
            except TimeoutError:
                raise TimeoutError("got %d of %d events" % (len(evs), n)) from None
            results.append(res)
            evs.extend(res.get("events", []))
        return evs, results

    def close(self):
        """Shut the socket (the reader thread sees EOF), then free the connection."""
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self.thread is not None:
            self.thread.join(5)
        if self.conn is not None:
            self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RawWatch:
    """A watch stream over a bare socket with a small receive buffer, read only when the
    test says so: a stalled (or slow) client. read_results() parses the chunked body."""

    def __init__(self, host, reqs, rcvbuf=4096, port=2379):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect((host, port))
        body = _body(reqs)
        self.sock.sendall(b"POST /v3/watch HTTP/1.1\r\nHost: %s\r\n"
                          b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                          % (host.encode(), len(body)) + body)
        self.buf = bytearray()
        self.pos = 0  # parsed up to here
        self.head = None

    def _fill(self, deadline):
        self.sock.settimeout(max(0.05, min(10, deadline - time.monotonic())))
        try:
            d = self.sock.recv(1 << 20)
        except socket.timeout:
            d = None
        if d == b"":
            raise StreamClosed("raw watch stream closed")
        if d:
            # drop what was parsed, then append (no quadratic copying)
            del self.buf[:self.pos]
            self.pos = 0
            self.buf += d
        elif time.monotonic() >= deadline:
            raise TimeoutError("raw watch: nothing more before the deadline")

    def results(self, deadline):
        """Yield each result object in order until the deadline (TimeoutError then)."""
        # reading again: a large buffer now, so a big backlog is not read 4 KiB at a time
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        while self.head is None:
            i = self.buf.find(b"\r\n\r\n", self.pos)
            if i >= 0:
                self.head = bytes(self.buf[self.pos:i])
                self.pos = i + 4
                assert self.head.startswith(b"HTTP/1.1 200"), self.head[:200]
                assert b"chunked" in self.head.lower(), self.head
                break
            self._fill(deadline)
        pending = bytearray()
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i < 0:
                self._fill(deadline)
                continue
            size = int(bytes(self.buf[self.pos:i]).split(b";")[0], 16)
            if size == 0:
                raise StreamClosed("raw watch: last chunk")
            if len(self.buf) < i + 2 + size + 2:
                self._fill(deadline)
                continue
            pending += self.buf[i + 2:i + 2 + size]
            self.pos = i + 2 + size + 2
            start = 0
            while True:
                j = pending.find(b"\n", start)
                if j < 0:
                    break
                line = bytes(pending[start:j])
                start = j + 1
                if line.strip():
                    yield json.loads(line)["result"]
            del pending[:start]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def watch(host, reqs, port=2379):
    """Open a stream and return it (use as a context manager)."""
    return WatchStream(host, reqs, port).open()


def ev_key(ev):
    return unb64(ev["kv"]["key"]).decode()


def ev_value(ev):
    return unb64(ev["kv"].get("value")).decode()


def ev_type(ev):
    return ev.get("type", "PUT")


def ev_rev(ev):
    return int(ev["kv"].get("mod_revision", 0))


class KeepAliveConn:
    """One keep-alive HTTP/1.1 connection for many small JSON POSTs (bursts of puts)."""

    def __init__(self, host, port=2379, timeout=15.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = None

    def post(self, path, obj):
        body = json.dumps(obj).encode()
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port,
                                                       timeout=self.timeout)
            try:
                self.conn.request("POST", path, body, {"Content-Type": "application/json"})
                r = self.conn.getresponse()
                data = r.read()
                return r.status, data
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def put_burst(host, keys_values, threads=16):
    """Put every (key, value) over `threads` keep-alive connections; returns the
    list of (key, status) of failures (empty when all got a 200)."""
    items = list(keys_values)
    failures = []
    lock = threading.Lock()

    def work(part):
        c = KeepAliveConn(host)
        try:
            for k, v in part:
                try:
                    st, _ = c.post("/v3/kv/put", {"key": b64(k), "value": b64(v)})
                except (OSError, http.client.HTTPException) as e:
                    st = repr(e)
                if st != 200:
                    with lock:
                        failures.append((k, st))
        finally:
            c.close()
    ts = [threading.Thread(target=work, args=(items[i::threads],), daemon=True)
          for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(300)
    assert not any(t.is_alive() for t in ts), "put burst threads did not finish"
    return failures


def keepalive(host, reqs, timeout=10.0, port=2379):
    """POST /v3/lease/keepalive with the given request objects; returns (status,
    [decoded lines], raw body). The gateway ends the response after the body's
    requests are answered."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", "/v3/lease/keepalive", _body(reqs),
                     {"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        lines = [json.loads(x) for x in data.split(b"\n") if x.strip()]
        return r.status, lines, data, r.headers
    finally:
        conn.close()
