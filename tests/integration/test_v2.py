"""The v2 keys API (--enable-v2) as etcd 3.4 serves it (issue 7, part 1).

Keys and directories, in-order keys, prevExist/prevValue/prevIndex, TTLs (expiry,
removal, refresh), recursive and sorted listings, hidden "_" keys, wait=true long polls
(headers at once, stream=true, abandoned waits) and waitIndex (in the history, in the
future, cleared), the X-Etcd-Index header, error codes for bad input, and /v2/keys
without --enable-v2; then a 3-member cluster: a write
on one member read on another, a wait on one answered by a write on another, writes
surviving restarts.

Bodies are compared whole and byte for byte (etcd's field order, Go's JSON encoder's
escaping and final newline) wherever etcd's output is deterministic; listings whose
order etcd leaves unspecified are compared after sorting. Expected indexes come from the
X-Etcd-Index the member reported before, never from etcd's own numbering. All of it
passes against etcd 3.4 (ETCD_BIN=/usr/bin/etcd). Hosts: 127.0.3.2 (the module's
member), 127.0.3.3 (without --enable-v2), 127.0.3.4-6 (the cluster).
"""
import http.client
import re
import socket
import threading
import time

import pytest

import conftest
import etcdlib
from discoverylib import (V2, BinMember, Waiter, check, error, event, go_json, hosts_free,
                          module_member, new_member, node, parse_expiration, sort_nodes,
                          wait_registered, xindex)
from etcdlib import wait_until

HOST = "127.0.3.2"
HOST_NO_V2 = "127.0.3.3"
CLUSTER_HOSTS = ["127.0.3.4", "127.0.3.5", "127.0.3.6"]
STOPPED = (0, -15)  # SIGTERM: etcd 3.4 re-raises it after its shutdown, ours exits 0


@pytest.fixture(scope="module")
def v2member(tmp_path_factory):
    hosts_free([HOST])
    with module_member(tmp_path_factory.mktemp("v2"), "v2", HOST,
                       args=["--enable-v2"]) as m:
        yield m


@pytest.fixture
def kv(v2member):
    if not v2member.running():
        pytest.fail("the module's member exited (%s)" % v2member.proc.returncode,
                    pytrace=False)
    return V2(HOST)


@pytest.fixture
def d(request):
    """A directory path of this test's own on the shared member."""
    return "/" + re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)


def ttl_in(r, field, lo, hi):
    """The ttl of r.json[field] (node or prevNode), asserted to be in [lo, hi]."""
    t = r.json[field].get("ttl")
    assert t is not None and lo <= t <= hi, "ttl %r not in [%d, %d]: %r" % (t, lo, hi, r)
    return t


# ------------------------------------------------------------------ keys

def test_put_get_overwrite(kv, d):
    i = kv.index()
    k = d + "/a"
    r = check(kv.put(k, {"value": "1"}), 201, event("set", node(k, i + 1, value="1")), i + 1)
    assert re.fullmatch(r"[0-9a-f]+", r.header("X-Etcd-Cluster-Id") or ""), r.headers
    assert re.fullmatch(r"[0-9]+", r.header("X-Raft-Index") or ""), r.headers
    assert re.fullmatch(r"[0-9]+", r.header("X-Raft-Term") or ""), r.headers
    # reads do not move the index
    check(kv.get(k), 200, event("get", node(k, i + 1, value="1")), i + 1)
    check(kv.get(k, quorum="true"), 200, event("get", node(k, i + 1, value="1")), i + 1)
    # set over a file: 200, a new node (createdIndex too), the old one as prevNode
    check(kv.put(k, {"value": "2"}), 200,
          event("set", node(k, i + 2, value="2"), node(k, i + 1, value="1")), i + 2)
    # the value from the query string; a form value wins over it
    check(kv.put(k, value="3"), 200,
          event("set", node(k, i + 3, value="3"), node(k, i + 2, value="2")), i + 3)
    check(kv.put(k, {"value": "4"}, value="q"), 200,
          event("set", node(k, i + 4, value="4"), node(k, i + 3, value="3")), i + 4)
    # no value at all: the empty string
    check(kv.put(k), 200, event("set", node(k, i + 5, value=""), node(k, i + 4, value="4")),
          i + 5)
    # a form body without its Content-Type is not read (etcd): the value is ""
    conn = http.client.HTTPConnection(HOST, 2379, timeout=10)
    try:
        conn.request("PUT", "/v2/keys" + k, body=b"value=5")
        h = conn.getresponse()
        body = h.read().decode()
    finally:
        conn.close()
    assert h.status == 200 and body == go_json(
        event("set", node(k, i + 6, value=""), node(k, i + 5, value=""))), body


def test_values_and_keys_are_escaped_as_go_does(kv, d):
    i = kv.index()
    k = d + "/s p?q"  # quoted in the URL
    v = 'a<b>&c"\u00e9\nx\\\u2028'
    check(kv.put(k, {"value": v}), 201, event("set", node(k, i + 1, value=v)), i + 1)
    check(kv.get(k), 200, event("get", node(k, i + 1, value=v)), i + 1)


def test_not_found_and_root(kv, d):
    i = kv.index()
    check(kv.get(d + "/nope"), 404, error(100, "Key not found", d, i), i)
    check(kv.put(d + "/f", {"value": "1"}), 201, event("set", node(d + "/f", i + 1, value="1")))
    # the first missing path component is the cause
    check(kv.get(d + "/nope/deeper/x"), 404, error(100, "Key not found", d + "/nope", i + 1),
          i + 1)
    check(kv.delete(d + "/nope"), 404, error(100, "Key not found", d + "/nope", i + 1), i + 1)
    # a path through a file: 104 with the file as the cause
    check(kv.get(d + "/f/x"), 400, error(104, "Not a directory", d + "/f", i + 1), i + 1)
    check(kv.put(d + "/f/x", {"value": "1"}), 400,
          error(104, "Not a directory", d + "/f", i + 1), i + 1)
    check(kv.delete(d + "/f/x/y"), 400, error(104, "Not a directory", d + "/f", i + 1), i + 1)
    # the root: a dir without key or indexes, read only
    r = kv.get("/")
    assert r.status == 200 and r.json["action"] == "get", r
    assert set(r.json["node"]) <= {"dir", "nodes"} and r.json["node"]["dir"] is True, r
    assert xindex(r) == i + 1
    assert {"key": d, "dir": True, "modifiedIndex": i + 1, "createdIndex": i + 1} in \
        r.json["node"]["nodes"], r
    check(kv.put("/", {"value": "1"}), 400, error(107, "Root is read only", "/", i + 1), i + 1)
    check(kv.delete("/"), 400, error(107, "Root is read only", "/", i + 1), i + 1)
    check(kv.delete("/", recursive="true", dir="true"), 400,
          error(107, "Root is read only", "/", i + 1), i + 1)
    # PATCH is not a v2 method
    conn = http.client.HTTPConnection(HOST, 2379, timeout=10)
    try:
        conn.request("PATCH", "/v2/keys" + d + "/f")
        h = conn.getresponse()
        assert (h.status, h.read()) == (405, b"Method Not Allowed\n")
    finally:
        conn.close()


def test_directories(kv, d):
    i = kv.index()
    D = d + "/dir"
    # the parent d is created at the same index as D
    check(kv.put(D, {"dir": "true"}), 201, event("set", node(D, i + 1, dir=True)), i + 1)
    check(kv.get(d), 200, event("get", node(d, i + 1, dir=True,
                                            nodes=[node(D, i + 1, dir=True)])), i + 1)
    check(kv.put(D, {"dir": "true"}), 403, error(102, "Not a file", D, i + 1), i + 1)
    check(kv.put(D, {"value": "x"}), 403, error(102, "Not a file", D, i + 1), i + 1)
    check(kv.put(D, {"dir": "true"}, prevExist="false"), 412,
          error(105, "Key already exists", D, i + 1), i + 1)
    check(kv.put(D + "/b/c", {"value": "1"}), 201,
          event("set", node(D + "/b/c", i + 2, value="1")), i + 2)
    check(kv.put(D + "/a", {"value": "2"}), 201, event("set", node(D + "/a", i + 3, value="2")),
          i + 3)
    check(kv.put(D + "/e", {"dir": "true"}), 201, event("set", node(D + "/e", i + 4, dir=True)),
          i + 4)
    a = node(D + "/a", i + 3, value="2")
    b = node(D + "/b", i + 2, dir=True)
    bc = node(D + "/b/c", i + 2, value="1")
    e = node(D + "/e", i + 4, dir=True)
    # a directory keeps its indexes when children change; a non-recursive listing
    # shows child directories without their nodes; unsorted order is unspecified
    r = kv.get(D)
    assert r.status == 200 and xindex(r) == i + 4, r
    assert sort_nodes(r.json) == event("get", node(D, i + 1, dir=True, nodes=[a, b, e])), r
    check(kv.get(D, sorted="true"), 200, event("get", node(D, i + 1, dir=True,
                                                          nodes=[a, b, e])), i + 4)
    b_full = node(D + "/b", i + 2, dir=True, nodes=[bc])
    check(kv.get(D, recursive="true", sorted="true"), 200,
          event("get", node(D, i + 1, dir=True, nodes=[a, b_full, e])), i + 4)
    r = kv.get(D, recursive="true")
    assert r.status == 200 and sort_nodes(r.json) == event(
        "get", node(D, i + 1, dir=True, nodes=[a, b_full, e])), r
    # a directory over an existing file replaces it (set)
    check(kv.put(D + "/a", {"dir": "true"}), 200,
          event("set", node(D + "/a", i + 5, dir=True), a), i + 5)
    check(kv.put(D + "/a", {"dir": "true"}, prevExist="true"), 200,
          event("update", node(D + "/a", i + 5, i + 6, dir=True), node(D + "/a", i + 5, dir=True)),
          i + 6)
    # deleting: a dir needs dir=true (102), a non-empty one recursive=true (108)
    check(kv.delete(D), 403, error(102, "Not a file", D, i + 6), i + 6)
    check(kv.delete(D, dir="true"), 403, error(108, "Directory not empty", D, i + 6), i + 6)
    check(kv.delete(D + "/e", dir="true"), 200,
          event("delete", node(D + "/e", i + 4, i + 7, dir=True), e), i + 7)
    # a file may be deleted with dir=true or recursive=true too
    check(kv.delete(D + "/b/c", dir="true"), 200,
          event("delete", node(D + "/b/c", i + 2, i + 8), bc), i + 8)
    check(kv.put(D + "/f", {"value": "v"}), 201, event("set", node(D + "/f", i + 9, value="v")))
    check(kv.delete(D + "/f", recursive="true"), 200,
          event("delete", node(D + "/f", i + 9, i + 10), node(D + "/f", i + 9, value="v")),
          i + 10)
    check(kv.delete(D, recursive="true"), 200,
          event("delete", node(D, i + 1, i + 11, dir=True), node(D, i + 1, dir=True)), i + 11)
    check(kv.get(D), 404, error(100, "Key not found", D, i + 11), i + 11)
    check(kv.delete(D, recursive="true"), 404, error(100, "Key not found", D, i + 11), i + 11)


def test_post_creates_in_order_keys(kv, d):
    i = kv.index()
    Q = d + "/queue"
    k1, k2, k3 = ("%s/%020d" % (Q, i + n) for n in (1, 2, 3))
    check(kv.post(Q, {"value": "job1"}), 201, event("create", node(k1, i + 1, value="job1")),
          i + 1)
    check(kv.post(Q, {"value": "job2"}), 201, event("create", node(k2, i + 2, value="job2")),
          i + 2)
    check(kv.post(Q, {"dir": "true"}), 201, event("create", node(k3, i + 3, dir=True)), i + 3)
    check(kv.get(Q, sorted="true"), 200, event("get", node(Q, i + 1, dir=True, nodes=[
        node(k1, i + 1, value="job1"), node(k2, i + 2, value="job2"), node(k3, i + 3, dir=True)])),
        i + 3)
    # POST to a file: its path is not a directory
    check(kv.post(k1, {"value": "x"}), 400, error(104, "Not a directory", k1, i + 3), i + 3)


def test_prev_exist(kv, d):
    i = kv.index()
    k = d + "/k"
    check(kv.put(k, {"value": "1"}, prevExist="false"), 201,
          event("create", node(k, i + 1, value="1")), i + 1)
    check(kv.put(k, {"value": "2"}, prevExist="false"), 412,
          error(105, "Key already exists", k, i + 1), i + 1)
    # prevExist=false wins over a prevValue
    check(kv.put(k, {"value": "2"}, prevExist="false", prevValue="1"), 412,
          error(105, "Key already exists", k, i + 1), i + 1)
    # update keeps createdIndex
    check(kv.put(k, {"value": "2"}, prevExist="true"), 200,
          event("update", node(k, i + 1, i + 2, value="2"), node(k, i + 1, value="1")), i + 2)
    check(kv.put(d + "/none", {"value": "2"}, prevExist="true"), 404,
          error(100, "Key not found", d + "/none", i + 2), i + 2)


def test_compare_and_swap(kv, d):
    i = kv.index()
    k = d + "/k"
    check(kv.put(k, {"value": "a"}), 201, event("set", node(k, i + 1, value="a")), i + 1)
    check(kv.put(k, {"value": "b"}, prevValue="a"), 200,
          event("compareAndSwap", node(k, i + 1, i + 2, value="b"), node(k, i + 1, value="a")),
          i + 2)
    check(kv.put(k, {"value": "c"}, prevValue="a"), 412,
          error(101, "Compare failed", "[a != b]", i + 2), i + 2)
    check(kv.put(k, {"value": "c"}, prevIndex=str(i + 2)), 200,
          event("compareAndSwap", node(k, i + 1, i + 3, value="c"),
                node(k, i + 1, i + 2, value="b")), i + 3)
    check(kv.put(k, {"value": "d"}, prevIndex="1"), 412,
          error(101, "Compare failed", "[1 != %d]" % (i + 3), i + 3), i + 3)
    check(kv.put(k, {"value": "d"}, prevValue="x", prevIndex="1"), 412,
          error(101, "Compare failed", "[x != c] [1 != %d]" % (i + 3), i + 3), i + 3)
    check(kv.put(k, {"value": "d"}, prevValue="c", prevIndex=str(i + 3)), 200,
          event("compareAndSwap", node(k, i + 1, i + 4, value="d"),
                node(k, i + 1, i + 3, value="c")), i + 4)
    # prevExist=true with a prevValue is a compare-and-swap too
    check(kv.put(k, {"value": "e"}, prevExist="true", prevValue="d"), 200,
          event("compareAndSwap", node(k, i + 1, i + 5, value="e"),
                node(k, i + 1, i + 4, value="d")), i + 5)
    # prevIndex=0 is no condition: a plain set
    check(kv.put(k, {"value": "f"}, prevIndex="0"), 200,
          event("set", node(k, i + 6, value="f"), node(k, i + 1, i + 5, value="e")), i + 6)
    check(kv.put(d + "/none", {"value": "x"}, prevValue="a"), 404,
          error(100, "Key not found", d + "/none", i + 6), i + 6)
    check(kv.put(d, {"value": "x"}, prevValue="a"), 403, error(102, "Not a file", d, i + 6),
          i + 6)


def test_compare_and_delete(kv, d):
    i = kv.index()
    k = d + "/k"
    check(kv.put(k, {"value": "x"}), 201, event("set", node(k, i + 1, value="x")), i + 1)
    check(kv.delete(k, prevValue="y"), 412, error(101, "Compare failed", "[y != x]", i + 1),
          i + 1)
    check(kv.delete(k, prevIndex="1"), 412,
          error(101, "Compare failed", "[1 != %d]" % (i + 1), i + 1), i + 1)
    check(kv.delete(k, prevValue="x"), 200,
          event("compareAndDelete", node(k, i + 1, i + 2), node(k, i + 1, value="x")), i + 2)
    check(kv.put(k, {"value": "x"}), 201, event("set", node(k, i + 3, value="x")), i + 3)
    check(kv.delete(k, prevIndex=str(i + 3)), 200,
          event("compareAndDelete", node(k, i + 3, i + 4), node(k, i + 3, value="x")), i + 4)
    check(kv.delete(k, prevValue="x"), 404, error(100, "Key not found", k, i + 4), i + 4)
    check(kv.delete(d, prevValue="x"), 403, error(102, "Not a file", d, i + 4), i + 4)


# ------------------------------------------------------------------ TTL

def test_ttl_set_remove_refresh(kv, d):
    i = kv.index()
    k = d + "/k"
    t0 = time.time()
    r = kv.put(k, {"value": "1", "ttl": "100"})
    t1 = time.time()
    exp1 = r.json["node"]["expiration"]
    assert t0 + 99 <= parse_expiration(exp1) <= t1 + 101, (exp1, t0, t1)
    check(r, 201, event("set", node(k, i + 1, value="1", expiration=exp1, ttl=100)), i + 1)
    r = kv.get(k)
    check(r, 200, event("get", node(k, i + 1, value="1", expiration=exp1,
                                    ttl=ttl_in(r, "node", 99, 100))), i + 1)
    # ttl= (empty) removes the TTL
    r = kv.put(k, {"value": "2", "ttl": ""}, prevExist="true")
    check(r, 200, event("update", node(k, i + 1, i + 2, value="2"), node(
        k, i + 1, value="1", expiration=exp1, ttl=ttl_in(r, "prevNode", 99, 100))), i + 2)
    check(kv.get(k), 200, event("get", node(k, i + 1, i + 2, value="2")), i + 2)
    # so does a set without ttl
    r = kv.put(k, {"value": "3", "ttl": "100"})
    exp3 = r.json["node"]["expiration"]
    check(r, 200, event("set", node(k, i + 3, value="3", expiration=exp3, ttl=100),
                        node(k, i + 1, i + 2, value="2")), i + 3)
    r = kv.put(k, {"value": "3"})
    check(r, 200, event("set", node(k, i + 4, value="3"), node(
        k, i + 3, value="3", expiration=exp3, ttl=ttl_in(r, "prevNode", 99, 100))), i + 4)
    # refresh: a new TTL, the same value, no event for watchers
    r = kv.put(k, {"value": "4", "ttl": "100"})
    exp5 = r.json["node"]["expiration"]
    check(r, 200, event("set", node(k, i + 5, value="4", expiration=exp5, ttl=100),
                        node(k, i + 4, value="3")), i + 5)
    w = Waiter(kv, k, wait="true")
    wait_registered()
    r = kv.put(k, ttl="50", refresh="true", prevExist="true")
    exp6 = r.json["node"]["expiration"]
    assert parse_expiration(exp6) < parse_expiration(exp5) - 40, (exp5, exp6)
    check(r, 200, event("update", node(k, i + 5, i + 6, value="4", expiration=exp6, ttl=50),
                        node(k, i + 5, value="4", expiration=exp5,
                             ttl=ttl_in(r, "prevNode", 99, 100))), i + 6)
    # refresh with prevValue: a compare-and-swap of the TTL only
    r = kv.put(k, ttl="60", refresh="true", prevValue="4")
    exp7 = r.json["node"]["expiration"]
    check(r, 200, event("compareAndSwap", node(k, i + 5, i + 7, value="4", expiration=exp7,
                                               ttl=60),
                        node(k, i + 5, i + 6, value="4", expiration=exp6,
                             ttl=ttl_in(r, "prevNode", 49, 50))), i + 7)
    check(kv.put(k, ttl="60", refresh="true", prevValue="9"), 412,
          error(101, "Compare failed", "[9 != 4]", i + 7), i + 7)
    check(kv.put(d + "/none", ttl="60", refresh="true"), 404,
          error(100, "Key not found", d + "/none", i + 7), i + 7)
    time.sleep(0.3)
    assert not w.done(), "a refresh answered a wait: %r" % w.resp
    r = kv.put(k, {"value": "5"})
    check(r, 200, event("set", node(k, i + 8, value="5"), node(
        k, i + 5, i + 7, value="4", expiration=exp7, ttl=ttl_in(r, "prevNode", 59, 60))), i + 8)
    rw = w.result()
    assert rw.status == 200 and rw.json["node"] == node(k, i + 8, value="5"), rw
    assert xindex(rw) == i + 5, rw
    # the refreshes are not in the history either: waitIndex past them finds the set
    rh = kv.get(k, wait="true", waitIndex=str(i + 6))
    assert rh.status == 200 and rh.json["action"] == "set" and \
        rh.json["node"]["modifiedIndex"] == i + 8, rh
    check(kv.delete(k), 200, event("delete", node(k, i + 8, i + 9), node(k, i + 8, value="5")),
          i + 9)


def test_ttl_expires(kv, d):
    i = kv.index()
    k = d + "/short"
    t0 = time.monotonic()
    r = kv.put(k, {"value": "v", "ttl": "1"})
    exp = r.json["node"]["expiration"]
    check(r, 201, event("set", node(k, i + 1, value="v", expiration=exp, ttl=1)), i + 1)
    # waitIndex i+2: the expiry is found even if it happens before the wait arrives
    rw = Waiter(kv, k, timeout=10, wait="true", waitIndex=str(i + 2)).result(12)
    # the expired node's prevNode has its expiration, no ttl (it is not positive)
    check(rw, 200, event("expire", node(k, i + 1, i + 2),
                         node(k, i + 1, value="v", expiration=exp)))
    assert time.monotonic() - t0 < 5, "expired after %.1fs" % (time.monotonic() - t0)
    check(kv.get(k), 404, error(100, "Key not found", k, i + 2), i + 2)
    # ttl=0 is a TTL too: an expiration of now, expired at once
    r = kv.put(k, {"value": "w", "ttl": "0"})
    exp = r.json["node"]["expiration"]
    check(r, 201, event("set", node(k, i + 3, value="w", expiration=exp)), i + 3)
    rw = Waiter(kv, k, timeout=10, wait="true", waitIndex=str(i + 4)).result(12)
    check(rw, 200, event("expire", node(k, i + 3, i + 4),
                         node(k, i + 3, value="w", expiration=exp)))
    # an expiring directory takes its children with it
    r = kv.put(d + "/tdir", {"dir": "true", "ttl": "1"})
    exp = r.json["node"]["expiration"]
    check(r, 201, event("set", node(d + "/tdir", i + 5, dir=True, expiration=exp, ttl=1)), i + 5)
    check(kv.put(d + "/tdir/c", {"value": "1"}), 201,
          event("set", node(d + "/tdir/c", i + 6, value="1")), i + 6)
    rw = Waiter(kv, d + "/tdir/c", timeout=10, wait="true", waitIndex=str(i + 7)).result(12)
    assert rw.status == 200 and rw.json["action"] == "expire", rw
    assert rw.json["node"] == node(d + "/tdir", i + 5, i + 7, dir=True), rw
    check(kv.get(d + "/tdir/c"), 404, error(100, "Key not found", d + "/tdir", i + 7), i + 7)


# ------------------------------------------------------------------ listings

def test_hidden_keys_are_not_listed(kv, d):
    i = kv.index()
    check(kv.put(d + "/_hidden", {"value": "h"}), 201,
          event("set", node(d + "/_hidden", i + 1, value="h")), i + 1)
    check(kv.put(d + "/vis", {"value": "v"}), 201,
          event("set", node(d + "/vis", i + 2, value="v")), i + 2)
    check(kv.put(d + "/_hd/x", {"value": "x"}), 201,
          event("set", node(d + "/_hd/x", i + 3, value="x")), i + 3)
    vis = node(d + "/vis", i + 2, value="v")
    check(kv.get(d), 200, event("get", node(d, i + 1, dir=True, nodes=[vis])), i + 3)
    check(kv.get(d, recursive="true", sorted="true"), 200,
          event("get", node(d, i + 1, dir=True, nodes=[vis])), i + 3)
    r = kv.get("/", recursive="true")
    mine = [n for n in r.json["node"]["nodes"] if n.get("key") == d]
    assert mine == [node(d, i + 1, dir=True, nodes=[vis])], mine
    # hidden keys are read directly
    check(kv.get(d + "/_hidden"), 200, event("get", node(d + "/_hidden", i + 1, value="h")))
    check(kv.get(d + "/_hd"), 200, event("get", node(d + "/_hd", i + 3, dir=True, nodes=[
        node(d + "/_hd/x", i + 3, value="x")])))
    # a top-level hidden directory is left out of the root's listing
    top = "/_" + d[1:]
    check(kv.put(top + "/x", {"value": "1"}), 201,
          event("set", node(top + "/x", i + 4, value="1")), i + 4)
    r = kv.get("/")
    assert [n for n in r.json["node"]["nodes"] if n.get("key") == top] == [], r
    check(kv.delete(top, recursive="true"), 200,
          event("delete", node(top, i + 4, i + 5, dir=True), node(top, i + 4, dir=True)), i + 5)


# ------------------------------------------------------------------ waits

def test_wait_answered_by_a_later_write(kv, d):
    i = kv.index()
    k = d + "/k"
    w = Waiter(kv, k, wait="true")
    wait_registered()
    assert not w.done(), w.resp
    check(kv.put(k, {"value": "1"}), 201, event("set", node(k, i + 1, value="1")), i + 1)
    # X-Etcd-Index of a wait: the index when it started
    check(w.result(), 200, event("set", node(k, i + 1, value="1")), i)
    # a delete answers a wait on the key too
    w = Waiter(kv, k, wait="true")
    wait_registered()
    check(kv.delete(k), 200, event("delete", node(k, i + 1, i + 2), node(k, i + 1, value="1")))
    check(w.result(), 200, event("delete", node(k, i + 1, i + 2), node(k, i + 1, value="1")),
          i + 1)


def test_wait_on_a_directory(kv, d):
    i = kv.index()
    D = d + "/dir"
    check(kv.put(D, {"dir": "true"}), 201, event("set", node(D, i + 1, dir=True)), i + 1)
    flat = Waiter(kv, D, timeout=2, wait="true")
    deep = Waiter(kv, D, wait="true", recursive="true")
    wait_registered()
    check(kv.post(D, {"value": "x"}), 201,
          event("create", node("%s/%020d" % (D, i + 2), i + 2, value="x")), i + 2)
    check(deep.result(), 200, event("create", node("%s/%020d" % (D, i + 2), i + 2, value="x")),
          i + 1)
    # a non-recursive wait on a directory is not answered by a child's change
    flat._t.join(5)
    assert flat.done() and flat.resp is None and \
        isinstance(flat.exc, (socket.timeout, TimeoutError)), (flat.resp, flat.exc)


def test_wait_index_in_the_history_and_the_future(kv, d):
    i = kv.index()
    k = d + "/k"
    check(kv.put(k, {"value": "1"}), 201, event("set", node(k, i + 1, value="1")), i + 1)
    check(kv.put(k, {"value": "2"}), 200,
          event("set", node(k, i + 2, value="2"), node(k, i + 1, value="1")), i + 2)
    check(kv.put(d + "/other", {"value": "o"}), 201,
          event("set", node(d + "/other", i + 3, value="o")), i + 3)
    # past events at once; X-Etcd-Index is the current index
    check(kv.get(k, wait="true", waitIndex=str(i + 1)), 200,
          event("set", node(k, i + 1, value="1")), i + 3)
    check(kv.get(k, wait="true", waitIndex=str(i + 2)), 200,
          event("set", node(k, i + 2, value="2"), node(k, i + 1, value="1")), i + 3)
    # waitIndex 0 is "from the next event"
    # recursive: the first event at or after waitIndex anywhere below
    check(kv.get(d, wait="true", recursive="true", waitIndex=str(i + 2)), 200,
          event("set", node(k, i + 2, value="2"), node(k, i + 1, value="1")), i + 3)
    check(kv.get(d, wait="true", recursive="true", waitIndex=str(i + 3)), 200,
          event("set", node(d + "/other", i + 3, value="o")), i + 3)
    # no event on k at or after i+3 yet: it waits
    w = Waiter(kv, k, wait="true", waitIndex=str(i + 3))
    # and in the future: answered by the write at that index, not the ones before
    fut = Waiter(kv, k, wait="true", waitIndex=str(i + 6))
    zero = Waiter(kv, k, wait="true", waitIndex="0")
    wait_registered()
    assert not w.done() and not fut.done() and not zero.done()
    check(kv.put(k, {"value": "3"}), 200,
          event("set", node(k, i + 4, value="3"), node(k, i + 2, value="2")), i + 4)
    check(w.result(), 200, event("set", node(k, i + 4, value="3"), node(k, i + 2, value="2")),
          i + 3)
    check(zero.result(), 200,
          event("set", node(k, i + 4, value="3"), node(k, i + 2, value="2")), i + 3)
    check(kv.put(k, {"value": "4"}), 200,
          event("set", node(k, i + 5, value="4"), node(k, i + 4, value="3")), i + 5)
    time.sleep(0.2)
    assert not fut.done(), fut.resp
    check(kv.put(k, {"value": "5"}), 200,
          event("set", node(k, i + 6, value="5"), node(k, i + 5, value="4")), i + 6)
    check(fut.result(), 200, event("set", node(k, i + 6, value="5"), node(k, i + 5, value="4")),
          i + 3)


def _open_wait(path, query, timeout=5):
    """A wait's request sent on its own connection; the caller reads and closes it."""
    conn = http.client.HTTPConnection(HOST, 2379, timeout=timeout)
    conn.request("GET", V2(HOST).url(path, query))
    return conn


def test_wait_headers_are_sent_at_once(kv, d):
    """etcd answers a wait's status and headers at once (X-Etcd-Index: the index when it
    started) and sends the body when the event comes."""
    i = kv.index()
    k = d + "/k"
    conn = _open_wait(k, {"wait": "true"}, timeout=3)
    try:
        r = conn.getresponse()  # before any write: bounded by the 3 s timeout
        assert r.status == 200, r.status
        assert r.getheader("X-Etcd-Index") == str(i), r.getheaders()
        assert r.getheader("Content-Type") == "application/json", r.getheaders()
        check(kv.put(k, {"value": "1"}), 201, event("set", node(k, i + 1, value="1")), i + 1)
        assert r.read().decode() == go_json(event("set", node(k, i + 1, value="1")))
    finally:
        conn.close()


def test_wait_stream(kv, d):
    """stream=true: every event, one JSON object per line, on one chunked reply."""
    i = kv.index()
    k = d + "/k"
    conn = _open_wait(k, {"wait": "true", "stream": "true"})
    try:
        wait_registered()
        check(kv.put(k, {"value": "1"}), 201, event("set", node(k, i + 1, value="1")), i + 1)
        check(kv.put(k, {"value": "2"}), 200,
              event("set", node(k, i + 2, value="2"), node(k, i + 1, value="1")), i + 2)
        check(kv.delete(k), 200,
              event("delete", node(k, i + 2, i + 3), node(k, i + 2, value="2")), i + 3)
        r = conn.getresponse()
        assert r.status == 200 and r.getheader("X-Etcd-Index") == str(i), r.getheaders()
        got = [r.readline().decode() for _ in range(3)]
        assert got == [go_json(event("set", node(k, i + 1, value="1"))),
                       go_json(event("set", node(k, i + 2, value="2"),
                                     node(k, i + 1, value="1"))),
                       go_json(event("delete", node(k, i + 2, i + 3),
                                     node(k, i + 2, value="2")))], got
    finally:
        conn.close()
    # with a waitIndex in the history: the first event at or after it comes at once (etcd
    # 3.4 then sends nothing more on that stream: its watcher hub answers a wait from the
    # history without registering it; not asserted here)
    conn = _open_wait(k, {"wait": "true", "stream": "true", "waitIndex": str(i + 2)})
    try:
        r = conn.getresponse()
        assert r.status == 200 and r.getheader("X-Etcd-Index") == str(i + 3), r.getheaders()
        assert r.readline().decode() == go_json(
            event("set", node(k, i + 2, value="2"), node(k, i + 1, value="1")))
    finally:
        conn.close()


def test_abandoned_waits_are_dropped(kv, d):
    """Clients that go away while waiting leave nothing behind that answers later: 50
    waits opened and closed, then the key is written and waited on again."""
    i = kv.index()
    k = d + "/k"
    conns = [_open_wait(k, {"wait": "true"}) for _ in range(50)]
    wait_registered()
    for c in conns:
        c.close()
    time.sleep(0.2)
    w = Waiter(kv, k, wait="true")
    wait_registered()
    check(kv.put(k, {"value": "1"}), 201, event("set", node(k, i + 1, value="1")), i + 1)
    check(w.result(), 200, event("set", node(k, i + 1, value="1")), i)
    check(kv.get(k, wait="true", waitIndex=str(i + 1)), 200,
          event("set", node(k, i + 1, value="1")), i + 1)


def _bulk_set(host, path, n):
    """n sets of path on one keep-alive connection; the last X-Etcd-Index."""
    conn = http.client.HTTPConnection(host, 2379, timeout=15)
    last = None
    try:
        for j in range(n):
            conn.request("PUT", "/v2/keys" + path, body=("value=%d" % j).encode(),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            r = conn.getresponse()
            r.read()
            assert r.status in (200, 201), r.status
            last = int(r.getheader("X-Etcd-Index"))
    finally:
        conn.close()
    return last


def test_wait_index_cleared_from_the_history(kv, d):
    i = kv.index()
    k = d + "/k"
    check(kv.put(k, {"value": "first"}), 201, event("set", node(k, i + 1, value="first")), i + 1)
    c = _bulk_set(HOST, d + "/fill", 1000)
    assert c == i + 1001
    # the history keeps the last 1000 events: c-999 .. c
    start = c - 999
    check(kv.get(k, wait="true", waitIndex=str(i + 1)), 400,
          error(401, "The event in requested index is outdated and cleared",
                "the requested history has been cleared [%d/%d]" % (start, i + 1), c), c)
    check(kv.get(d, wait="true", recursive="true", waitIndex=str(start - 1)), 400,
          error(401, "The event in requested index is outdated and cleared",
                "the requested history has been cleared [%d/%d]" % (start, start - 1), c), c)
    assert start == i + 2  # the oldest event kept is the first of the 1000 sets
    check(kv.get(d + "/fill", wait="true", waitIndex=str(start)), 200,
          event("set", node(d + "/fill", start, value="0")), c)
    check(kv.get(d, wait="true", recursive="true", waitIndex=str(start)), 200,
          event("set", node(d + "/fill", start, value="0")), c)


# ------------------------------------------------------------------ bad input

BAD = [
    # (method, query, form, errorCode, message, cause)
    ("PUT", {"prevIndex": "abc"}, {"value": "1"}, 203,
     "The given index in POST form is not a number", 'invalid value for "prevIndex"'),
    ("PUT", {"prevIndex": "-1"}, {"value": "1"}, 203,
     "The given index in POST form is not a number", 'invalid value for "prevIndex"'),
    ("PUT", {"prevIndex": ""}, {"value": "1"}, 203,
     "The given index in POST form is not a number", 'invalid value for "prevIndex"'),
    ("DELETE", {"prevIndex": "abc"}, None, 203,
     "The given index in POST form is not a number", 'invalid value for "prevIndex"'),
    ("PUT", {"ttl": "abc"}, {"value": "1"}, 202,
     "The given TTL in POST form is not a number", 'invalid value for "ttl"'),
    ("PUT", {"ttl": "-1"}, {"value": "1"}, 202,
     "The given TTL in POST form is not a number", 'invalid value for "ttl"'),
    ("POST", {}, {"value": "1", "ttl": "1.5"}, 202,
     "The given TTL in POST form is not a number", 'invalid value for "ttl"'),
    ("GET", {"wait": "true", "waitIndex": "abc"}, None, 203,
     "The given index in POST form is not a number", 'invalid value for "waitIndex"'),
    ("GET", {"wait": "abc"}, None, 209, "Invalid field", 'invalid value for "wait"'),
    ("GET", {"recursive": "abc"}, None, 209, "Invalid field", 'invalid value for "recursive"'),
    ("GET", {"sorted": "abc"}, None, 209, "Invalid field", 'invalid value for "sorted"'),
    ("GET", {"quorum": "abc"}, None, 209, "Invalid field", 'invalid value for "quorum"'),
    ("GET", {"stream": "abc"}, None, 209, "Invalid field", 'invalid value for "stream"'),
    ("PUT", {"dir": "abc"}, None, 209, "Invalid field", 'invalid value for "dir"'),
    ("PUT", {"dir": ""}, None, 209, "Invalid field", 'invalid value for "dir"'),
    ("PUT", {"prevExist": "abc"}, {"value": "1"}, 209, "Invalid field",
     "invalid value for prevExist"),
    ("PUT", {"prevExist": ""}, {"value": "1"}, 209, "Invalid field",
     "invalid value for prevExist"),
    ("PUT", {"refresh": "abc"}, None, 209, "Invalid field", "invalid value for refresh"),
    ("PUT", {"refresh": "true", "ttl": "5"}, {"value": "1"}, 211, "Value provided on refresh",
     "A value was provided on a refresh"),
    ("PUT", {"refresh": "true"}, None, 212, "A TTL must be provided on refresh",
     "No TTL value set"),
    ("PUT", {"prevValue": ""}, {"value": "1"}, 201, "PrevValue is Required in POST form",
     '"prevValue" cannot be empty'),
]


@pytest.mark.parametrize("method,query,form,code,message,cause", BAD,
                         ids=["%s-%s" % (b[0], "-".join("%s=%s" % kv for kv in
                                                         sorted(b[1].items()) +
                                                         sorted((b[2] or {}).items())))
                              for b in BAD])
def test_bad_parameters(kv, d, method, query, form, code, message, cause):
    i = kv.index()
    # refused before the store: index 0 in the body and in X-Etcd-Index, nothing written
    check(kv.request(method, d + "/k", query=query, form=form), 400,
          error(code, message, cause, 0), 0)
    assert kv.index() == i


def test_keys_need_enable_v2(members):
    hosts_free([HOST_NO_V2])
    m = new_member(members, "nov2", host=HOST_NO_V2).start()
    c = V2(HOST_NO_V2)
    for method in ("GET", "PUT", "POST", "DELETE"):
        r = c.request(method, "/foo", form={"value": "1"} if method in ("PUT", "POST") else None)
        assert (r.status, r.text) == (404, "404 page not found\n"), (method, r)
    assert m.client.put("v3/still", "works")


# ------------------------------------------------------------------ a cluster

@pytest.fixture(scope="module")
def v2cluster(tmp_path_factory):
    """Three members with --enable-v2 on 127.0.3.4-6 (etcd's default timing)."""
    hosts_free(CLUSTER_HOSTS)
    work = tmp_path_factory.mktemp("v2cluster")
    initial = ",".join("c%d=http://%s:2380" % (n, h) for n, h in enumerate(CLUSTER_HOSTS))
    ms = []
    try:
        for n, h in enumerate(CLUSTER_HOSTS):
            name = "c%d" % n
            dd = work / name / (name + ".etcd")
            args = ["--name", name, "--data-dir", str(dd), "--enable-v2",
                    "--listen-client-urls", "http://%s:2379" % h,
                    "--advertise-client-urls", "http://%s:2379" % h,
                    "--listen-peer-urls", "http://%s:2380" % h,
                    "--initial-advertise-peer-urls", "http://%s:2380" % h,
                    "--initial-cluster", initial, "--initial-cluster-token", "v2-cluster",
                    "--initial-cluster-state", "new"]
            m = BinMember(work / name, name=name, host=h, plain=True, args=args, data_dir=dd)
            conftest._live_members.append(m)
            ms.append(m)
        for m in ms:
            m.spawn()
        for m in ms:
            m.wait_healthy()
        yield ms
    finally:
        errors = []

        def fin(m):
            try:
                conftest._finish(m)
            except BaseException as e:
                errors.append(e)
        ts = [threading.Thread(target=fin, args=(m,)) for m in ms]
        for t in ts:
            t.start()
        for t in ts:
            t.join(etcdlib.STOP_TIMEOUT + 10)
        for m in ms:
            conftest._live_members.remove(m)
        if errors:
            raise errors[0]


def _same_everywhere(ms, path, want, timeout=10):
    """Every member (bounded wait) answers a local GET of path with body `want`."""
    for m in ms:
        wait_until(lambda m=m: V2(m.host).get(path).text == want, timeout, 0.05,
                   "%s to read %s as %r" % (m.name, path, want))


def test_cluster_write_on_one_read_on_another(v2cluster):
    a, b, c = v2cluster
    ka, kb = V2(a.host), V2(b.host)
    i = ka.index()
    k = "/cluster/k"
    r = check(ka.put(k, {"value": "1"}), 201, event("set", node(k, i + 1, value="1")), i + 1)
    # a quorum read on another member sees it at once
    check(kb.get(k, quorum="true"), 200, event("get", node(k, i + 1, value="1")), i + 1)
    _same_everywhere(v2cluster, k, go_json(event("get", node(k, i + 1, value="1"))))
    # conditions are checked the same wherever the write comes in
    check(V2(c.host).put(k, {"value": "2"}, prevValue="1"), 200,
          event("compareAndSwap", node(k, i + 1, i + 2, value="2"), node(k, i + 1, value="1")),
          i + 2)
    check(kb.put(k, {"value": "3"}, prevValue="1"), 412,
          error(101, "Compare failed", "[1 != 2]", i + 2), i + 2)
    assert r.header("X-Etcd-Cluster-Id") == kb.get(k).header("X-Etcd-Cluster-Id")


def test_cluster_wait_on_one_answered_by_a_write_on_another(v2cluster):
    a, b, c = v2cluster
    kb, kc = V2(b.host), V2(c.host)
    k = "/cluster/w"
    i = kb.index()
    w = Waiter(kb, k, wait="true")
    wait_registered()
    r = kc.put(k, {"value": "x"})
    check(r, 201, event("set", node(k, i + 1, value="x")), i + 1)
    check(w.result(), 200, event("set", node(k, i + 1, value="x")), i)
    # the history is replicated too: a waitIndex on a finds the write made on c
    _same_everywhere(v2cluster, k, go_json(event("get", node(k, i + 1, value="x"))))
    r = V2(a.host).get(k, wait="true", waitIndex=str(i + 1))
    assert r.status == 200 and r.json == event("set", node(k, i + 1, value="x")), r


def test_cluster_writes_survive_restarts(v2cluster):
    a, b, c = v2cluster
    ka = V2(a.host)
    r1 = ka.put("/restart/k1", {"value": "1"}, prevExist="false")
    assert r1.status == 201, r1
    assert c.stop() in STOPPED, c.proc.returncode
    # written while c is down: c catches up when it returns
    r2 = ka.put("/restart/k2", {"value": "2"}, prevExist="false")
    assert r2.status == 201, r2
    c.spawn()
    c.wait_healthy()
    want = {p: go_json(event("get", r.json["node"]))
            for p, r in (("/restart/k1", r1), ("/restart/k2", r2))}
    for p, body in want.items():
        _same_everywhere([c], p, body)
    # every member stopped, then started again: the v2 store is read back
    errs = []
    ts = [threading.Thread(target=lambda m=m: errs.append(m.stop())) for m in v2cluster]
    for t in ts:
        t.start()
    for t in ts:
        t.join(etcdlib.STOP_TIMEOUT + 10)
    assert all(e in STOPPED for e in errs) and len(errs) == 3, errs
    for m in v2cluster:
        m.spawn()
    for m in v2cluster:
        m.wait_healthy()
    for p, body in want.items():
        _same_everywhere(v2cluster, p, body)
    # and it takes writes again, at a higher index
    r3 = V2(b.host).put("/restart/k1", {"value": "3"}, prevValue="1")
    assert r3.status == 200 and r3.json["prevNode"] == r1.json["node"], r3
    assert xindex(r3) > xindex(r2)
