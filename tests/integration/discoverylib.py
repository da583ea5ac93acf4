"""Helpers for the v2 keys API and etcd discovery tests (test_v2.py, test_guide_discovery.py).

A v2 keys client (form bodies as curl -d sends them), etcd's JSON shapes of nodes, events
and errors (built in the field order etcd writes and encoded as Go's encoder does),
members on fixed loopback hosts running any binary (the discovery cluster of one test is
always Debian's etcd 3.4), and a recording HTTP forward proxy for ETCD_DISCOVERY_PROXY.
Stdlib only; every wait bounded; processes stopped by PID through conftest's bookkeeping
(which reports their stderr when a test fails and turns sanitizer reports or leaked
workers into failures).
"""
import calendar
import contextlib
import http.client
import http.server
import json
import re
import socket
import threading
import time
import urllib.parse

import pytest

import conftest
import etcdlib
from etcdlib import HTTP_TIMEOUT, Member, Resp

REFERENCE_BIN = "/usr/bin/etcd"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


# ---------------------------------------------------------------- the v2 keys client

class V2:
    """/v2/keys/<path> on one member, one connection per request (as curl)."""

    def __init__(self, host, port=2379, timeout=HTTP_TIMEOUT):
        self.host, self.port, self.timeout = host, port, timeout

    def url(self, path, query=None):
        u = "/v2/keys" + urllib.parse.quote(path)
        if query:
            u += "?" + urllib.parse.urlencode(query)
        return u

    def request(self, method, path, query=None, form=None, timeout=None, headers=None):
        """form: dict (or list of pairs) sent as an x-www-form-urlencoded body."""
        body = None
        h = {}
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            h.update(FORM)
        h.update(headers or {})
        conn = http.client.HTTPConnection(self.host, self.port,
                                          timeout=timeout or self.timeout)
        try:
            conn.request(method, self.url(path, query), body=body, headers=h)
            r = conn.getresponse()
            return Resp(r.status, r.reason, r.headers, r.read())
        finally:
            conn.close()

    def get(self, path, timeout=None, **query):
        return self.request("GET", path, query=query, timeout=timeout)

    def put(self, path, form=None, **query):
        return self.request("PUT", path, query=query, form=form)

    def post(self, path, form=None, **query):
        return self.request("POST", path, query=query, form=form)

    def delete(self, path, **query):
        return self.request("DELETE", path, query=query)

    def index(self):
        """The store's current index (X-Etcd-Index of a GET of the root)."""
        r = self.get("/")
        assert r.status == 200, r
        return xindex(r)


def xindex(r):
    v = r.header("X-Etcd-Index")
    assert v is not None and re.fullmatch(r"[0-9]+", v), "X-Etcd-Index %r in %r" % (v, r)
    return int(v)


def q(**kw):
    """Query/form values as etcd's tests write them (True -> "true")."""
    return {k: ("true" if v is True else "false" if v is False else str(v))
            for k, v in kw.items()}


# ---------------------------------------------------------------- etcd's JSON shapes

def node(key, ci, mi=None, value=None, dir=False, nodes=None, expiration=None, ttl=None):
    """A node as etcd writes it: key, value, dir, expiration, ttl, nodes, modifiedIndex,
    createdIndex (value only for files; dir only when true)."""
    n = {}
    if key is not None:
        n["key"] = key
    if not dir and value is not None:
        n["value"] = value
    if dir:
        n["dir"] = True
    if expiration is not None:
        n["expiration"] = expiration
    if ttl is not None:
        n["ttl"] = ttl
    if nodes is not None:
        n["nodes"] = nodes
    n["modifiedIndex"] = ci if mi is None else mi
    n["createdIndex"] = ci
    return n


def event(action, n, prev=None):
    e = {"action": action, "node": n}
    if prev is not None:
        e["prevNode"] = prev
    return e


def error(code, message, cause, index):
    return {"errorCode": code, "message": message, "cause": cause, "index": index}


def go_json(obj):
    """obj encoded as Go's json.Encoder does: compact, UTF-8, <>& escaped, newline."""
    s = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    s = (s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
         .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    return s + "\n"


def check(r, status, body, index=None, exact=True):
    """r has this status, a JSON body equal to `body` (byte for byte if exact: etcd's
    field order and Go's escaping), Content-Type application/json and, if given, this
    X-Etcd-Index; returns r."""
    assert r.status == status, "want %d %r, got %r" % (status, body, r)
    assert r.header("Content-Type") == "application/json", r.headers
    assert r.json == body, "want %r\n got %r" % (body, r.json)
    if exact:
        assert r.text == go_json(body), "want %r\n got %r" % (go_json(body), r.text)
    else:
        assert r.text.endswith("\n"), r.text
    if index is not None:
        assert xindex(r) == index, "X-Etcd-Index %s, want %d: %r" % (
            r.header("X-Etcd-Index"), index, r)
    return r


def sort_nodes(n):
    """A copy of a node (or event) with every nodes list sorted by key, for comparing
    listings whose order etcd leaves unspecified."""
    if isinstance(n, list):
        return sorted((sort_nodes(x) for x in n), key=lambda x: x.get("key", ""))
    if isinstance(n, dict):
        return {k: sort_nodes(v) if k in ("node", "prevNode", "nodes") else v
                for k, v in n.items()}
    return n


_RFC3339NANO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")


def parse_expiration(s):
    """Go's RFC3339Nano UTC time (trailing zeros cut) -> unix seconds (float)."""
    assert _RFC3339NANO.fullmatch(s), "expiration %r is not RFC 3339 UTC" % s
    whole, _, frac = s[:-1].partition(".")
    t = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    assert not frac.endswith("0"), "Go cuts trailing zeros: %r" % s
    return t + (float("0." + frac) if frac else 0.0)


# ---------------------------------------------------------------- waits in a thread

class Waiter:
    """One long poll (GET with wait=true) in a thread, bounded by `timeout`."""

    def __init__(self, client, path, timeout=15, **query):
        self.resp = None
        self.exc = None
        self._t = threading.Thread(target=self._run, args=(client, path, timeout, query),
                                   daemon=True)
        self._t.start()

    def _run(self, client, path, timeout, query):
        try:
            self.resp = client.get(path, timeout=timeout, **query)
        except BaseException as e:  # reported by result()
            self.exc = e

    def done(self):
        return not self._t.is_alive()

    def result(self, timeout=20):
        self._t.join(timeout)
        assert not self._t.is_alive(), "the wait did not return within %ss" % timeout
        if self.exc is not None:
            raise AssertionError("the wait failed: %r" % (self.exc,))
        return self.resp


def wait_registered(delay=0.5):
    """Give a just-started wait time to reach the member before the write that answers
    it (etcd sends the headers at once, ours may not: nothing on the wire to wait for)."""
    time.sleep(delay)


# ---------------------------------------------------------------- members

def hosts_free(hosts):
    for h in hosts:
        for port in (2379, 2380):
            if not etcdlib._port_free(h, port):
                pytest.fail("%s:%d is taken; these tests need it" % (h, port), pytrace=False)


class BinMember(Member):
    """etcdlib's Member running `binary` (default: ETCD_BIN)."""

    def __init__(self, *a, binary=None, **kw):
        super().__init__(*a, **kw)
        self.binary = binary or etcdlib.ETCD_BIN

    def argv(self):
        a = super().argv()
        a[0] = self.binary
        return a


def new_member(members, name, binary=None, **kw):
    """Like members.new (conftest): stopped by PID at teardown, stderr shown on failure."""
    m = BinMember(members.tmp_path / name, name=name, binary=binary, **kw)
    members.made.append(m)
    conftest._test_members.append(m)
    conftest._live_members.append(m)
    return m


@contextlib.contextmanager
def module_member(workdir, name, host, args=(), binary=None):
    """A started member that outlives one test (a module fixture's), finished as
    conftest's shared_member is."""
    m = BinMember(workdir, name=name, host=host, args=args, binary=binary)
    conftest._live_members.append(m)
    try:
        m.start()
        yield m
    finally:
        try:
            conftest._finish(m)
        finally:
            conftest._live_members.remove(m)


def member_list(m):
    """{ID: (name, peerURLs, clientURLs)} from POST /v3/cluster/member/list on m."""
    got = m.client.ok("/v3/cluster/member/list", {})["members"]
    return {int(x["ID"]): (x.get("name", ""), x.get("peerURLs", []), x.get("clientURLs", []))
            for x in got}


def wait_exit(m, timeout=30):
    """m's exit status once it exits by itself; fails after `timeout` s."""
    try:
        return m.proc.wait(timeout)
    except Exception:
        raise AssertionError("%s did not exit within %ss:\n%s"
                             % (m.name, timeout, m.stderr_tail(30)))


# ---------------------------------------------------------------- the forward proxy

class ForwardProxy:
    """A threaded HTTP forward proxy on host:port, as ETCD_DISCOVERY_PROXY names one.

    Forwards absolute-form requests (GET http://h:p/path HTTP/1.1) to h:p and records
    each as a dict: method, target (the absolute URL), host (the Host header), time.
    Answers 400 to origin-form requests (recorded too). With fail_first=N the first N
    requests are answered by closing the connection (a flaky discovery service).
    """

    def __init__(self, host, port=3128, fail_first=0, upstream_timeout=60):
        self.requests = []
        self.lock = threading.Lock()
        self.fail_left = fail_first
        self.upstream_timeout = upstream_timeout
        self._upstreams = set()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                proxy._handle(self)
            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = http.server.ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.url = "http://%s:%d" % (host, port)
        self._t = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                   daemon=True)
        self._t.start()

    def _handle(self, h):
        n = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(n) if n else b""
        with self.lock:
            self.requests.append({"method": h.command, "target": h.path,
                                  "host": h.headers.get("Host"), "body": body,
                                  "time": time.monotonic()})
            fail = self.fail_left > 0
            if fail:
                self.fail_left -= 1
        if fail:
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        u = urllib.parse.urlsplit(h.path)
        if u.scheme != "http" or not u.netloc:
            h.send_response(400)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        fwd = {k: v for k, v in h.headers.items()
               if k.lower() not in ("connection", "proxy-connection", "keep-alive",
                                    "proxy-authorization", "te", "trailer",
                                    "transfer-encoding", "upgrade")}
        path = u.path + ("?" + u.query if u.query else "")
        conn = http.client.HTTPConnection(u.hostname, u.port or 80,
                                          timeout=self.upstream_timeout)
        with self.lock:
            self._upstreams.add(conn)
        try:
            conn.request(h.command, path, body=body if n else None, headers=fwd)
            r = conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException):
            h.send_response(502)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        finally:
            conn.close()
            with self.lock:
                self._upstreams.discard(conn)
        h.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "keep-alive", "transfer-encoding",
                                 "content-length", "date", "server"):
                h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def seen(self):
        with self.lock:
            return list(self.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            ups = list(self._upstreams)
        for c in ups:  # waits still pending upstream end now
            try:
                if c.sock is not None:
                    c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._t.join(5)
