"""POST /v3/watch: message shapes, filters, history, compaction, cancel and progress,
bursts, many watchers, stalled readers and (ours) kill -9 of storaged or gatewayd
(v3api.md 5; every expected shape checked against etcd 3.4)."""
import http.client
import json
import os
import signal
import threading
import time

import pytest

from etcdlib import Client, alive, b64, unb64, wait_until
from streamlib import (KeepAliveConn, RawWatch, StreamClosed, cancel_req, create_req, ev_key,
                       ev_rev, ev_type, ev_value, progress_req, put_burst, watch)

HEADER = {"cluster_id", "member_id", "revision", "raft_term"}


def created(s, watch_id=None):
    """Wait for the created message; returns its result."""
    r = s.result()
    assert r.get("created") is True, r
    assert set(r["header"]) == HEADER, r
    if watch_id:
        assert r.get("watch_id") == watch_id, r
    else:
        assert "watch_id" not in r, r
    return r


def kv(key, value, create, mod, version):
    return {"key": b64(key), "create_revision": str(create), "mod_revision": str(mod),
            "version": str(version), "value": b64(value)}


def rev(resp):
    return int(resp["header"]["revision"])


# ------------------------------------------------------------------ shapes

def test_created_message_and_http_framing(client, pfx):
    cur = client.revision()
    with watch(client.host, [create_req(pfx + "k"), create_req(pfx + "k")]) as s:
        r0 = created(s)
        assert r0["header"]["revision"] == str(cur)
        assert set(r0) == {"header", "created"}
        r1 = created(s, "1")  # the second watch of a stream has watch_id 1
        assert set(r1) == {"header", "watch_id", "created"}
        assert s.status == 200
        assert s.headers.get("Content-Type") == "application/json"
        assert s.headers.get("Transfer-Encoding") == "chunked"
        # each message is one {"result":...} line
        assert s.raw[0].endswith(b"\n") and s.raw[0].startswith(b'{"result":{"header":')
        assert s.silent(0.3)


def test_live_put_and_delete_events(client, pfx):
    k = pfx + "k"
    with watch(client.host, [create_req(k)]) as s:
        created(s)
        r1 = rev(client.put(k, "v1"))
        r2 = rev(client.put(k, "v2"))
        r3 = rev(client.delete(k))
        m1, m2, m3 = s.result(), s.result(), s.result()
        assert m1 == {"header": dict(m1["header"], revision=str(r1)),
                      "events": [{"kv": kv(k, "v1", r1, r1, 1)}]}
        assert m2["events"] == [{"kv": kv(k, "v2", r1, r2, 2)}]
        assert m2["header"]["revision"] == str(r2)
        # a DELETE event's kv holds only key and mod_revision; no prev_kv unless asked
        assert m3["events"] == [{"type": "DELETE", "kv": {"key": b64(k),
                                                          "mod_revision": str(r3)}}]
        assert m3["header"]["revision"] == str(r3)
        assert s.silent(0.3)


def test_prev_kv(client, pfx):
    k = pfx + "k"
    with watch(client.host, [create_req(k, prev_kv=True)]) as s:
        created(s)
        r1 = rev(client.put(k, "v1"))
        r2 = rev(client.put(k, "v2"))
        r3 = rev(client.delete(k))
        e1, e2, e3 = (s.result()["events"] for _ in range(3))
        assert e1 == [{"kv": kv(k, "v1", r1, r1, 1)}]  # the key did not exist: no prev_kv
        assert e2 == [{"kv": kv(k, "v2", r1, r2, 2), "prev_kv": kv(k, "v1", r1, r1, 1)}]
        assert e3 == [{"type": "DELETE", "kv": {"key": b64(k), "mod_revision": str(r3)},
                       "prev_kv": kv(k, "v2", r1, r2, 2)}]


def test_prefix_watch_and_keys_outside(client, pfx):
    with watch(client.host, [create_req(pfx + "d/", prefix=True)]) as s:
        created(s)
        client.put(pfx + "d", "outside")
        client.put(pfx + "d0", "outside")
        r = rev(client.put(pfx + "d/a", "in"))
        client.put(pfx + "e/", "outside")
        r2 = rev(client.put(pfx + "d/\xff", "in"))
        m = s.result()
        assert [ev_key(e) for e in m["events"]] == [pfx + "d/a"]
        assert m["header"]["revision"] == str(r)
        m = s.result()
        assert [ev_key(e) for e in m["events"]] == [pfx + "d/\xff"]
        assert m["header"]["revision"] == str(r2)
        assert s.silent(0.3)


def test_range_watch_and_from_key(client, pfx):
    # [b, d) and every key >= pfx+"m" (range_end "\0")
    with watch(client.host, [create_req(pfx + "b", range_end=pfx + "d"),
                             create_req(pfx + "m", range_end=b"\0")]) as s:
        created(s)
        created(s, "1")
        for k in ("a", "b", "c", "cz", "d", "m", "z"):
            client.put(pfx + k, k)
        got = {}
        for _ in range(5):
            r = s.result()
            got.setdefault(r.get("watch_id", "0"), []).extend(ev_key(e)[len(pfx):]
                                                             for e in r["events"])
        assert got == {"0": ["b", "c", "cz"], "1": ["m", "z"]}
        assert s.silent(0.3)


def test_all_keys_watch(client, pfx):
    with watch(client.host, [create_req(None, all_keys=True)]) as s:
        created(s)
        r1 = rev(client.put(pfx + "x", "1"))
        r2 = rev(client.put("\0", "nul"))
        r3 = rev(client.put("\xff\xff", "ff"))
        evs, _ = s.events(3)
        assert [(ev_key(e), ev_rev(e)) for e in evs] == [(pfx + "x", r1), ("\0", r2),
                                                         ("\xff\xff", r3)]
    client.delete("\0")
    client.delete("\xff\xff")


def test_txn_is_one_message(client, pfx):
    with watch(client.host, [create_req(pfx, prefix=True)]) as s:
        created(s)
        client.put(pfx + "c", "old")
        s.result()
        t = client.ok("/v3/kv/txn", {"success": [
            {"request_put": {"key": b64(pfx + "b"), "value": b64("1")}},
            {"request_delete_range": {"key": b64(pfx + "c")}},
            {"request_put": {"key": b64(pfx + "a"), "value": b64("2")}}]})
        m = s.result()
        assert m["header"]["revision"] == t["header"]["revision"]
        assert [(ev_type(e), ev_key(e)[len(pfx):]) for e in m["events"]] == \
            [("PUT", "b"), ("DELETE", "c"), ("PUT", "a")]
        assert {ev_rev(e) for e in m["events"]} == {rev(t)}
        assert s.silent(0.3)


@pytest.mark.parametrize("filt", [["NOPUT"], [0]])
def test_filter_noput(client, pfx, filt):
    k = pfx + "k"
    with watch(client.host, [create_req(k, filters=filt)]) as s:
        created(s)
        client.put(k, "1")
        client.put(k, "2")
        r = rev(client.delete(k))
        m = s.result()
        assert m["events"] == [{"type": "DELETE", "kv": {"key": b64(k),
                                                         "mod_revision": str(r)}}]
        assert s.silent(0.3)


@pytest.mark.parametrize("filt", [["NODELETE"], [1]])
def test_filter_nodelete(client, pfx, filt):
    k = pfx + "k"
    with watch(client.host, [create_req(k, filters=filt)]) as s:
        created(s)
        r1 = rev(client.put(k, "1"))
        client.delete(k)
        r3 = rev(client.put(k, "3"))
        evs, _ = s.events(2)
        assert [(ev_type(e), ev_rev(e)) for e in evs] == [("PUT", r1), ("PUT", r3)]
        assert s.silent(0.3)


def test_two_filters_on_one_stream(client, pfx):
    k = pfx + "k"
    with watch(client.host, [create_req(k, filters=["NOPUT"]),
                             create_req(k, filters=["NODELETE"], prev_kv=True)]) as s:
        created(s)
        created(s, "1")
        r1 = rev(client.put(k, "1"))
        r2 = rev(client.delete(k))
        a, b = s.result(), s.result()
        assert b.get("watch_id") == "1" or a.get("watch_id") == "1"
        byid = {m.get("watch_id", "0"): m for m in (a, b)}
        assert byid["0"]["events"] == [{"type": "DELETE", "kv": {"key": b64(k),
                                                                 "mod_revision": str(r2)}}]
        assert byid["1"]["events"] == [{"kv": kv(k, "1", r1, r1, 1)}]


# ------------------------------------------------------------------ history

def test_history_from_start_revision(client, pfx):
    k = pfx + "k"
    r1 = rev(client.put(k, "1"))
    r2 = rev(client.put(k, "2"))
    client.put(pfx + "other", "x")
    r3 = rev(client.delete(k))
    r4 = rev(client.put(k, "4"))
    cur = client.revision()
    with watch(client.host, [create_req(k, start_revision=r1, prev_kv=True)]) as s:
        c = created(s)
        assert c["header"]["revision"] == str(cur)
        # all past events in one message whose header is the current revision
        m = s.result()
        assert m["header"]["revision"] == str(cur)
        assert m["events"] == [
            {"kv": kv(k, "1", r1, r1, 1)},
            {"kv": kv(k, "2", r1, r2, 2), "prev_kv": kv(k, "1", r1, r1, 1)},
            {"type": "DELETE", "kv": {"key": b64(k), "mod_revision": str(r3)},
             "prev_kv": kv(k, "2", r1, r2, 2)},
            {"kv": kv(k, "4", r4, r4, 1)}]
        # then live events
        r5 = rev(client.put(k, "5"))
        m = s.result()
        assert [ev_rev(e) for e in m["events"]] == [r5]
        assert m["header"]["revision"] == str(r5)


def test_history_middle_and_filter(client, pfx):
    k = pfx + "k"
    client.put(k, "1")
    r2 = rev(client.put(k, "2"))
    r3 = rev(client.delete(k))
    client.put(k, "4")
    r5 = rev(client.delete(k))
    with watch(client.host, [create_req(k, start_revision=r2),
                             create_req(k, start_revision=r2, filters=["NOPUT"])]) as s:
        got = {}
        for _ in range(4):
            r = s.result()
            if r.get("created"):
                continue
            got[r.get("watch_id", "0")] = [(ev_type(e), ev_rev(e)) for e in r["events"]]
        assert got["0"] == [("PUT", r2), ("DELETE", r3), ("PUT", r3 + 1), ("DELETE", r5)]
        assert got["1"] == [("DELETE", r3), ("DELETE", r5)]
        assert s.silent(0.3)


def test_history_of_a_prefix_spanning_many_revisions(client, pfx):
    p = pfx + "h/"
    first = None
    for i in range(300):
        r = rev(client.put(p + "%03d" % (i % 50), str(i)))
        first = first or r
    cur = client.revision()
    with watch(client.host, [create_req(p, prefix=True, start_revision=first)]) as s:
        created(s)
        evs, _ = s.events(300)
        assert [ev_rev(e) for e in evs] == list(range(first, cur + 1))
        assert [ev_value(e) for e in evs] == [str(i) for i in range(300)]
        assert s.silent(0.3)


def test_future_start_revision_waits(client, pfx):
    k = pfx + "k"
    cur = client.revision()
    with watch(client.host, [create_req(k, start_revision=cur + 2)]) as s:
        created(s)
        client.put(k, "a")  # cur + 1: before the start revision
        assert s.silent(0.5)
        r = rev(client.put(k, "b"))
        m = s.result()
        assert [(ev_value(e), ev_rev(e)) for e in m["events"]] == [("b", r)]


def test_compacted_start_revision(member):
    c = member.client
    revs = [rev(c.put("k", str(i))) for i in range(5)]
    assert c.post("/v3/kv/compaction", {"revision": revs[2]}).status == 200
    with watch(member.host, [create_req("k", start_revision=revs[1])]) as s:
        h = created(s)["header"]
        r = s.result()
        # the header has no revision; no cancel_reason, no watch_id for watch 0
        assert r == {"header": {"cluster_id": h["cluster_id"], "member_id": h["member_id"],
                                "raft_term": h["raft_term"]},
                     "canceled": True, "compact_revision": str(revs[2])}
        c.put("k", "after")
        assert s.silent(0.5)
    # at the compacted revision itself history is still there
    with watch(member.host, [create_req("k", start_revision=revs[2])]) as s:
        created(s)
        evs, _ = s.events(4)
        assert [ev_rev(e) for e in evs] == [revs[2], revs[3], revs[4], revs[4] + 1]
        assert ev_value(evs[-1]) == "after"


def test_fragment_splits_a_large_history(member):
    c = member.client
    for i in range(3):
        c.put("f/%d" % i, "x" * (1 << 20))
    cur = c.revision()

    def shape(r):
        return (r.get("fragment", False), [ev_rev(e) for e in r["events"]],
                r["header"]["revision"])
    with watch(member.host, [create_req("f/", prefix=True, start_revision=2)]) as s:
        created(s)
        assert shape(s.result()) == (False, [2, 3, 4], str(cur))
        assert s.silent(0.3)
    # with fragment, a message above the request size limit goes out in pieces; all
    # but the last say fragment:true
    with watch(member.host, [create_req("f/", prefix=True, start_revision=2,
                                        fragment=True)]) as s:
        created(s)
        assert [shape(s.result()) for _ in range(3)] == [
            (True, [2], str(cur)), (True, [3], str(cur)), (False, [4], str(cur))]
        assert s.silent(0.3)


# ------------------------------------------------------------------ requests

def test_range_end_below_key(client, pfx):
    with watch(client.host, [create_req(pfx + "b", range_end=pfx + "a")]) as s:
        r = s.result()
        assert set(r["header"]) == HEADER
        assert {k: v for k, v in r.items() if k != "header"} == {
            "watch_id": "-1", "created": True, "canceled": True,
            "cancel_reason": "mvcc: watcher range is empty"}
        client.put(pfx + "a", "x")
        assert s.silent(0.3)


def test_cancel_request(client, pfx):
    k = pfx + "k"
    with watch(client.host, [create_req(k), create_req(k), cancel_req(0)]) as s:
        created(s)
        created(s, "1")
        r = s.result()
        assert set(r) == {"header", "canceled"} and r["canceled"] is True, r
        assert set(r["header"]) == HEADER
        # watch 1 still runs, watch 0 is gone
        client.put(k, "v")
        r = s.result()
        assert r.get("watch_id") == "1" and len(r["events"]) == 1, r
        assert s.silent(0.3)


def test_progress_request(client, pfx):
    cur = client.revision()
    with watch(client.host, [create_req(pfx + "k"), progress_req()]) as s:
        created(s)
        r = s.result()
        # etcd 3.4 answers a progress request with watch_id -1 and the current revision
        assert r == {"header": dict(r["header"], revision=str(cur)), "watch_id": "-1"}
        assert set(r["header"]) == HEADER


def test_progress_request_without_watchers(client):
    cur = client.revision()
    with watch(client.host, [progress_req()]) as s:
        r = s.result()
        assert r == {"header": dict(r["header"], revision=str(cur)), "watch_id": "-1"}


def test_many_requests_in_one_body_unseparated(client, pfx):
    body = "".join(json.dumps(create_req(pfx + str(i))) for i in range(3))
    with watch(client.host, body) as s:
        created(s)
        created(s, "1")
        created(s, "2")
        client.put(pfx + "2", "x")
        assert s.result()["watch_id"] == "2"


@pytest.mark.parametrize("body,msg", [
    (b'{"create_request":{"key":', "unexpected EOF"),
    (b'{"create_request":{"key":"!!"}}', "illegal base64 data at input byte 0")])
def test_bad_body_is_500_and_ends_the_stream(client, body, msg):
    with watch(client.host, body) as s:
        m = s.next()
        assert s.status == 500
        assert m == {"error": msg, "message": msg, "code": 2}
        assert s.raw == [json.dumps(m, separators=(",", ":")).encode()]  # no newline
        with pytest.raises(StreamClosed):
            s.next(5)


def test_explicit_and_duplicate_watch_id(client, pfx):
    k = pfx + "k"
    with watch(client.host, [create_req(k, watch_id=7), create_req(k, watch_id=7),
                             cancel_req(99), create_req(k)]) as s:
        created(s, "7")
        r = s.result()
        assert {k: v for k, v in r.items() if k != "header"} == {
            "watch_id": "-1", "created": True, "canceled": True,
            "cancel_reason": "mvcc: duplicate watch ID provided on the WatchStream"}
        # canceling an unknown watch answers nothing; the next automatic ID is 0
        created(s)
        client.put(k, "v")
        got = sorted(s.result().get("watch_id", "0") for _ in range(2))
        assert got == ["0", "7"]
        assert s.silent(0.3)


def test_closing_the_stream_frees_the_watcher(client, pfx):
    """Opening and closing many streams leaves the member serving watches."""
    for i in range(50):
        s = watch(client.host, [create_req(pfx + "k")])
        created(s)
        s.close()
    with watch(client.host, [create_req(pfx + "k")]) as s:
        created(s)
        client.put(pfx + "k", "v")
        assert len(s.result()["events"]) == 1


# ------------------------------------------------------------------ load

@pytest.mark.slow
def test_burst_of_10000_puts_exactly_once_in_order(member):
    n = 10000
    with watch(member.host, [create_req("b/", prefix=True)]) as s, \
            watch(member.host, [create_req("b/", prefix=True, prev_kv=True)]) as s2:
        created(s)
        created(s2)
        start = member.client.revision()
        fails = put_burst(member.host, (("b/%05d" % (i % 5000), "v%d" % i) for i in range(n)))
        assert not fails, fails[:5]
        end = member.client.revision()
        assert end == start + n
        for w in (s, s2):
            evs, results = w.events(n, timeout=20, deadline=time.monotonic() + 60)
            revs = [ev_rev(e) for e in evs]
            assert revs == list(range(start + 1, end + 1)), "gap, duplicate or disorder"
            # one message per revision, its header at that revision
            assert all(len(r["events"]) == 1 and r["header"]["revision"] ==
                       r["events"][0]["kv"]["mod_revision"] for r in results)
            assert w.silent(0.3)
        # prev_kv of an overwrite is the value before it
        seen = {}
        for r in results:
            e = r["events"][0]
            k = ev_key(e)
            if k in seen:
                assert unb64(e["prev_kv"]["value"]).decode() == seen[k]
            else:
                assert "prev_kv" not in e
            seen[k] = ev_value(e)


@pytest.mark.slow
@pytest.mark.parametrize("streams,per", [
    # etcd 3.4's gateway sometimes stops reading a long body once it has begun to answer
    # (seen: 12, 51 or 90 of 100 creates taken), so 100 watches per stream is ours only
    pytest.param(10, 100, marks=pytest.mark.ours_only),
    (100, 10), (1000, 1)])
def test_1000_watchers_all_get_the_event(member, streams, per):
    ss = []
    reqs = [create_req("p/", prefix=True) if j % 2 else create_req("p/k")
            for j in range(per)]
    try:
        for i in range(streams):
            ss.append(watch(member.host, reqs))
        for s in ss:
            for _ in range(per):
                assert s.result(20).get("created") is True
        r = rev(member.client.put("p/k", "v"))
        for s in ss:
            ids = set()
            for _ in range(per):
                m = s.result(20)
                assert [ev_rev(e) for e in m["events"]] == [r]
                ids.add(m.get("watch_id", "0"))
            assert ids == {str(j) for j in range(per)}
        time.sleep(0.3)
        assert all(s.q.empty() for s in ss), "a watcher got more than its event"
    finally:
        for s in ss:
            s.close()


@pytest.mark.slow
def test_stalled_reader_does_not_stall_puts(member):
    stalled = [RawWatch(member.host, [create_req("s/", prefix=True)]) for _ in range(3)]
    n = 1500
    try:
        with watch(member.host, [create_req("s/", prefix=True)]) as live:
            created(live)
            time.sleep(0.2)  # let the stalled streams be created too
            value = "x" * 8192
            c = KeepAliveConn(member.host)
            lat = []
            start = member.client.revision()
            for i in range(n):  # ~12 MB of events per stalled stream
                t = time.monotonic()
                st, body = c.post("/v3/kv/put", {"key": b64("s/%04d" % (i % 100)),
                                                 "value": b64(value)})
                lat.append(time.monotonic() - t)
                assert st == 200, body
            c.close()
            lat.sort()
            assert lat[-1] < 2.0, "slowest put took %.2fs" % lat[-1]
            assert lat[len(lat) * 99 // 100] < 0.5, "p99 %.3fs" % lat[len(lat) * 99 // 100]
            # the reading watcher got everything, in order
            evs, _ = live.events(n, timeout=20, deadline=time.monotonic() + 60)
            assert [ev_rev(e) for e in evs] == list(range(start + 1, start + n + 1))
        assert member.client.healthy()
        # a stalled client that reads again gets every event once, in order, uncanceled
        for s in stalled:
            revs = []
            deadline = time.monotonic() + 60
            for r in s.results(deadline):
                assert not r.get("canceled"), r
                revs.extend(ev_rev(e) for e in r.get("events", []))
                if revs and revs[-1] >= start + n:
                    break
            assert revs == list(range(start + 1, start + n + 1))
    finally:
        for s in stalled:
            s.close()
    # and the member still serves new watches after the stalled streams went away
    with watch(member.host, [create_req("s/0000")]) as s:
        created(s)
        member.client.put("s/0000", "y")
        assert len(s.result()["events"]) == 1


# ------------------------------------------------------------------ crashes (ours)

class Writer(threading.Thread):
    """Puts c/<n> one after the other; remembers the revision of every acked put."""

    def __init__(self, host):
        super().__init__(daemon=True)
        self.client = Client(host, timeout=3)
        self.acked = {}  # key -> revision
        self.halt = threading.Event()

    def run(self):
        n = 0
        while not self.halt.is_set():
            k = "c/%06d" % n
            n += 1
            try:
                r = self.client.post("/v3/kv/put", {"key": b64(k), "value": b64(k)})
            except (OSError, http.client.HTTPException):  # the crash cut this one
                time.sleep(0.02)
                continue
            if r.status == 200:
                self.acked[k] = int(r.json["header"]["revision"])
            else:
                time.sleep(0.02)

    def stop(self):
        self.halt.set()
        self.join(10)
        assert not self.is_alive()


class Resumer:
    """A client that watches c/ and, when its stream ends or is canceled, opens a new one
    from the revision after the last event it got."""

    def __init__(self, host, start=None):
        self.host = host
        self.events = []  # (revision, type, key) in arrival order
        self.resumes = 0
        self.stream = None
        self.open(start)

    def last(self):
        return self.events[-1][0] if self.events else None

    def open(self, start):
        deadline = time.monotonic() + 15
        while True:
            kw = {"start_revision": start} if start else {}
            s = watch(self.host, [create_req("c/", prefix=True, **kw)])
            try:
                r = s.result(5)
                if r.get("created") and not r.get("canceled"):
                    self.stream = s
                    return
            except (TimeoutError, StreamClosed, AssertionError):
                pass
            s.close()
            if time.monotonic() > deadline:
                raise TimeoutError("could not re-open the watch")
            time.sleep(0.1)

    def pump(self, until_rev, timeout, messages=None):
        """Read (resuming as needed) until an event at until_rev or later arrived, or
        `messages` event messages were read."""
        deadline = time.monotonic() + timeout
        got = 0
        while self.last() is None or self.last() < until_rev:
            if messages is not None and got >= messages:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("watch reached %s, not %d" % (self.last(), until_rev))
            try:
                r = self.stream.result(min(2, max(0.05, deadline - time.monotonic())))
            except TimeoutError:
                continue
            except StreamClosed:
                self.resume()
                continue
            if r.get("canceled"):
                self.resume()
                continue
            evs = r.get("events", [])
            got += bool(evs)
            self.events.extend((ev_rev(e), ev_type(e), ev_key(e)) for e in evs)

    def resume(self):
        self.stream.close()
        self.resumes += 1
        # a revision may come in several messages only with fragment, which is off:
        # every message ends a revision, so the next one is where to go on
        self.open(self.last() + 1 if self.last() else self.first)

    first = None

    def close(self):
        if self.stream:
            self.stream.close()


def truth(host, start, end):
    """The events of c/ from start to end as one uninterrupted watch sees them."""
    with watch(host, [create_req("c/", prefix=True, start_revision=start)]) as s:
        created(s)
        out = []
        deadline = time.monotonic() + 60
        while not out or out[-1][0] < end:
            r = s.result(max(0.1, deadline - time.monotonic()))
            out.extend((ev_rev(e), ev_type(e), ev_key(e)) for e in r.get("events", []))
        return out


def check_against_truth(host, res, acked, start, end):
    got = res.events
    assert len(got) == len(set(got)), "duplicated events"
    want = truth(host, start, end)
    if got != want:
        missing = [e for e in want if e not in set(got)]
        extra = [e for e in got if e not in set(want)]
        raise AssertionError("resumed watch differs from the history: %d missing (e.g. %s), "
                             "%d extra (e.g. %s), %d resumes"
                             % (len(missing), missing[:3], len(extra), extra[:3],
                                res.resumes))
    seen = {k for _, _, k in got}
    lost = [k for k in acked if k not in seen]
    assert not lost, "acked puts never seen by the watch: %s" % lost[:5]


def kill_and_wait(member, role):
    pid = member.workers()[role]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not alive(pid), 5, what=role + " to die")
    wait_until(lambda: member.workers().get(role, pid) != pid, 10,
               what="a restarted " + role)


@pytest.mark.ours_only
@pytest.mark.slow
@pytest.mark.parametrize("role", ["storaged", "gatewayd"])
def test_kill9_during_watch(member, role):
    start = member.client.revision() + 1
    res = Resumer(member.host)
    res.first = start
    w = Writer(member.host)
    w.start()
    try:
        wait_until(lambda: len(w.acked) >= 30, 20, what="30 acked puts")
        res.pump(min(w.acked.values()) + 20, 20)
        kill_and_wait(member, role)
        n = len(w.acked)
        wait_until(lambda: len(w.acked) >= n + 30, 20, what="writes after the restart")
    finally:
        w.stop()
    end = member.client.revision()
    try:
        res.pump(end, 30)
        assert res.stream.silent(0.3)
    finally:
        res.close()
    assert res.events[0][0] == start
    check_against_truth(member.host, res, w.acked, start, end)
    if role == "gatewayd":
        assert res.resumes >= 1, "the stream outlived its gatewayd"


@pytest.mark.ours_only
@pytest.mark.slow
@pytest.mark.parametrize("role", ["storaged", "gatewayd"])
def test_kill9_during_history_catch_up(member, role):
    """The watcher is far behind (20,000 events of 1 KiB in history) when the kill comes."""
    c = member.client
    start = c.revision() + 1
    v = b64("v" * 1024)
    for t in range(200):
        c.ok("/v3/kv/txn", {"success": [{"request_put": {
            "key": b64("c/%03d/%03d" % (t, i)), "value": v}} for i in range(100)]})
    res = Resumer(member.host, start)
    res.first = start
    w = Writer(member.host)
    w.start()
    try:
        res.pump(start + 1000, 30, messages=1)  # the first history message is in
        behind = res.last() < c.revision()
        kill_and_wait(member, role)
        n = len(w.acked)
        wait_until(lambda: len(w.acked) >= n + 20, 20, what="writes after the restart")
    finally:
        w.stop()
    end = c.revision()
    try:
        res.pump(end, 60)
        assert res.stream.silent(0.3)
    finally:
        res.close()
    check_against_truth(member.host, res, w.acked, start, end)
    if role == "gatewayd" and behind:
        assert res.resumes >= 1, "the stream outlived its gatewayd"
