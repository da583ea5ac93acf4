"""/v3/lease/*: grant, revoke, timetolive, leases, keepalive, put with a lease, expiry,
and leases across restarts (v3api.md 3 "Leases"; shapes checked against etcd 3.4)."""
import os
import signal
import time

import pytest

from etcdlib import alive, b64, wait_until
from streamlib import create_req, ev_key, ev_type, keepalive, watch

NOT_FOUND = "etcdserver: requested lease not found"
EXISTS = "etcdserver: lease already exists"
TOO_LARGE = "etcdserver: too large lease TTL"
HEADER = {"cluster_id", "member_id", "revision", "raft_term"}


def err(r, status, code, msg):
    assert r.status == status, r
    assert r.json == {"error": msg, "message": msg, "code": code}, r


def grant(c, ttl, lid=None):
    body = {"TTL": ttl}
    if lid is not None:
        body["ID"] = lid
    return c.ok("/v3/lease/grant", body)


def ttl_of(c, lid, keys=False):
    return c.ok("/v3/lease/timetolive", {"ID": lid, "keys": keys})


def rev(resp):
    return int(resp["header"]["revision"])


# ------------------------------------------------------------------ grant

def test_grant_shape_and_no_revision(client):
    cur = client.revision()
    g = grant(client, 60)
    assert set(g) == {"header", "ID", "TTL"}
    assert set(g["header"]) == HEADER
    assert g["TTL"] == "60"
    assert g["ID"].isdigit() and int(g["ID"]) > 0
    assert rev(g) == cur  # granting does not bump the revision
    assert client.revision() == cur
    g2 = grant(client, 60)
    assert g2["ID"] != g["ID"]


def test_grant_explicit_and_negative_id(client):
    g = grant(client, 30, 0x1234567)
    assert g["ID"] == str(0x1234567) and g["TTL"] == "30"
    g = grant(client, 30, -3)
    assert g["ID"] == "-3"
    t = ttl_of(client, -3)
    assert t["ID"] == "-3" and t["grantedTTL"] == "30"


@pytest.mark.parametrize("ttl", [1, 0, -5])
def test_grant_ttl_raised_to_minimum(client, ttl):
    g = grant(client, ttl)
    assert g["TTL"] == "2"
    assert ttl_of(client, g["ID"])["grantedTTL"] == "2"


def test_grant_duplicate_id_412(client):
    grant(client, 30, 777001)
    err(client.post("/v3/lease/grant", {"TTL": 30, "ID": 777001}), 412, 9, EXISTS)


def test_grant_too_large_ttl(client):
    err(client.post("/v3/lease/grant", {"TTL": 9000000001}), 400, 11, TOO_LARGE)
    g = grant(client, 9000000000)
    assert g["TTL"] == "9000000000"


# ------------------------------------------------------------------ revoke

def test_revoke_deletes_attached_keys_in_one_revision(client, pfx):
    g = grant(client, 60)
    lid = g["ID"]
    for k in ("c", "a", "b"):
        client.put(pfx + k, "v", lease=lid)
    client.put(pfx + "free", "v")
    with watch(client.host, [create_req(pfx, prefix=True)]) as s:
        assert s.result()["created"] is True
        cur = client.revision()
        r = client.ok("/v3/lease/revoke", {"ID": lid})
        assert set(r) == {"header"}
        assert rev(r) == cur + 1
        m = s.result()
        # one revision, the keys in sorted order, all DELETE
        assert m["header"]["revision"] == str(cur + 1)
        assert [(ev_type(e), ev_key(e)[len(pfx):]) for e in m["events"]] == \
            [("DELETE", "a"), ("DELETE", "b"), ("DELETE", "c")]
        assert {e["kv"]["mod_revision"] for e in m["events"]} == {str(cur + 1)}
        assert s.silent(0.3)
    keys = [kv["key"] for kv in client.range(pfx, range_end=b"%s\xff" % pfx.encode())
            .get("kvs", [])]
    assert keys == [b64(pfx + "free")]
    assert ttl_of(client, lid)["TTL"] == "-1"
    err(client.post("/v3/lease/revoke", {"ID": lid}), 404, 5, NOT_FOUND)


def test_revoke_without_keys_keeps_revision(client):
    lid = grant(client, 60)["ID"]
    cur = client.revision()
    r = client.ok("/v3/lease/revoke", {"ID": lid})
    assert rev(r) == cur
    assert client.revision() == cur


def test_revoke_unknown_404(client):
    err(client.post("/v3/lease/revoke", {"ID": 987654321}), 404, 5, NOT_FOUND)


# ------------------------------------------------------------------ timetolive, leases

def test_timetolive(client, pfx):
    lid = grant(client, 100)["ID"]
    client.put(pfx + "b", "1", lease=lid)
    client.put(pfx + "a", "2", lease=lid)
    t = ttl_of(client, lid, keys=True)
    assert set(t) == {"header", "ID", "TTL", "grantedTTL", "keys"}
    assert t["ID"] == lid and t["grantedTTL"] == "100"
    assert 98 <= int(t["TTL"]) <= 100
    assert sorted(t["keys"]) == [b64(pfx + "a"), b64(pfx + "b")]
    t = ttl_of(client, lid)
    assert set(t) == {"header", "ID", "TTL", "grantedTTL"}
    # a key put again without the lease leaves it
    client.put(pfx + "a", "3")
    assert ttl_of(client, lid, keys=True)["keys"] == [b64(pfx + "b")]


def test_timetolive_unknown_is_minus_one(client):
    r = client.post("/v3/lease/timetolive", {"ID": 55555, "keys": True})
    assert r.status == 200
    assert set(r.json) == {"header", "ID", "TTL"}
    assert r.json["ID"] == "55555" and r.json["TTL"] == "-1"


def test_timetolive_counts_down(client):
    lid = grant(client, 20)["ID"]
    t0 = int(ttl_of(client, lid)["TTL"])
    time.sleep(2.1)
    t1 = int(ttl_of(client, lid)["TTL"])
    assert t0 - 3 <= t1 <= t0 - 1


def test_leases_list(client):
    a = grant(client, 60)["ID"]
    b = grant(client, 60)["ID"]
    r = client.ok("/v3/lease/leases", {})
    ids = [x["ID"] for x in r["leases"]]
    assert all(set(x) == {"ID"} for x in r["leases"])
    assert a in ids and b in ids
    client.ok("/v3/lease/revoke", {"ID": a})
    ids = [x["ID"] for x in client.ok("/v3/lease/leases", {})["leases"]]
    assert a not in ids and b in ids


def test_leases_list_empty(member):
    r = member.client.ok("/v3/lease/leases", {})
    assert set(r) == {"header"}


# ------------------------------------------------------------------ keepalive

def test_keepalive_stream_shape(client):
    lid = grant(client, 30)["ID"]
    st, lines, raw, headers = keepalive(client.host, [{"ID": int(lid)}, {"ID": 424242}, {}])
    assert st == 200
    assert headers.get("Content-Type") == "application/json"
    assert headers.get("Transfer-Encoding") == "chunked"
    assert raw.endswith(b"}}\n") and raw.count(b"\n") == 3
    a, b, c = (x["result"] for x in lines)
    assert set(a) == {"header", "ID", "TTL"} and a["ID"] == lid and a["TTL"] == "30"
    assert set(a["header"]) == HEADER
    assert set(b) == {"header", "ID"} and b["ID"] == "424242"  # unknown: no TTL, no error
    assert set(c) == {"header"}


@pytest.mark.slow
def test_keepalive_keeps_a_lease_alive(client, pfx):
    lid = grant(client, 2)["ID"]
    client.put(pfx + "k", "v", lease=lid)
    end = time.monotonic() + 7  # more than three TTLs
    while time.monotonic() < end:
        st, lines, _, _ = keepalive(client.host, [{"ID": int(lid)}])
        assert st == 200 and lines[0]["result"].get("TTL") == "2", lines
        assert client.get_value(pfx + "k") == b"v"
        time.sleep(0.5)
    t = int(ttl_of(client, lid)["TTL"])
    assert 1 <= t <= 2
    # and without keepalives it expires
    stopped = time.monotonic()
    wait_until(lambda: client.get_value(pfx + "k") is None, 4, 0.05, "the lease to expire")
    assert time.monotonic() - stopped <= 3.0


# ------------------------------------------------------------------ put with a lease

def test_put_with_lease(client, pfx):
    lid = grant(client, 60)["ID"]
    r = client.put(pfx + "k", "v", lease=lid)
    kv = client.range(pfx + "k")["kvs"][0]
    assert kv["lease"] == lid
    assert kv == {"key": b64(pfx + "k"), "create_revision": r["header"]["revision"],
                  "mod_revision": r["header"]["revision"], "version": "1",
                  "value": b64("v"), "lease": lid}


def test_put_with_unknown_lease_404(client, pfx):
    cur = client.revision()
    r = client.post("/v3/kv/put", {"key": b64(pfx + "k"), "value": b64("v"), "lease": 31337})
    err(r, 404, 5, NOT_FOUND)
    assert client.revision() == cur
    r = client.post("/v3/kv/txn", {"success": [{"request_put": {
        "key": b64(pfx + "k"), "value": b64("v"), "lease": 31337}}]})
    err(r, 404, 5, NOT_FOUND)


# ------------------------------------------------------------------ expiry

@pytest.mark.slow
def test_expiry_deletes_keys_and_emits_deletes(client, pfx):
    with watch(client.host, [create_req(pfx, prefix=True)]) as s:
        assert s.result()["created"] is True
        t0 = time.monotonic()
        lid = grant(client, 2)["ID"]
        client.put(pfx + "b", "1", lease=lid)
        client.put(pfx + "a", "2", lease=lid)
        client.put(pfx + "free", "3")
        s.events(3)
        # still there a little before the TTL ends
        time.sleep(max(0, t0 + 1.5 - time.monotonic()))
        assert client.get_value(pfx + "a") == b"2"
        # gone within TTL + 1 s, in one revision, as DELETE events
        m = s.result(timeout=max(0.1, t0 + 3.0 - time.monotonic()))
        gone = time.monotonic() - t0
        assert gone <= 3.0, "expired after %.2fs" % gone
        assert [(ev_type(e), ev_key(e)[len(pfx):]) for e in m["events"]] == \
            [("DELETE", "a"), ("DELETE", "b")]
        assert len({e["kv"]["mod_revision"] for e in m["events"]}) == 1
    assert client.get_value(pfx + "a") is None and client.get_value(pfx + "b") is None
    assert client.get_value(pfx + "free") == b"3"
    assert ttl_of(client, lid)["TTL"] == "-1"
    ids = [x["ID"] for x in client.ok("/v3/lease/leases", {}).get("leases", [])]
    assert lid not in ids


# ------------------------------------------------------------------ restarts

def keys_alive(c, keys):
    return all(c.get_value(k) is not None for k in keys)


@pytest.mark.slow
def test_member_restart_does_not_expire_leases_early(member):
    c = member.client
    lid = grant(c, 10)["ID"]
    c.put("l/a", "1", lease=lid)
    c.put("l/b", "2", lease=lid)
    time.sleep(4)  # without a refresh, 6 s would be left
    member.stop()
    member.start()
    restarted = time.monotonic()
    c = member.client
    assert keys_alive(c, ["l/a", "l/b"]), "keys expired at restart"
    t = ttl_of(c, lid, keys=True)
    assert int(t["TTL"]) >= 8, "remaining TTL not refreshed after restart: %r" % t
    assert t["grantedTTL"] == "10"
    assert sorted(t["keys"]) == [b64("l/a"), b64("l/b")]
    # not before about a TTL after the restart, but eventually
    time.sleep(max(0, restarted + 7.5 - time.monotonic()))
    assert keys_alive(c, ["l/a", "l/b"]), "expired early after the restart"
    wait_until(lambda: c.get_value("l/a") is None and c.get_value("l/b") is None,
               max(0.5, restarted + 13 - time.monotonic()), 0.1, "the lease to expire")
    assert ttl_of(c, lid)["TTL"] == "-1"


@pytest.mark.ours_only
@pytest.mark.slow
def test_kill9_of_storaged_does_not_expire_leases_early(member):
    c = member.client
    lid = grant(c, 6)["ID"]
    short = grant(c, 2)["ID"]
    c.put("l/a", "1", lease=lid)
    c.put("l/s", "1", lease=short)
    granted = time.monotonic()
    time.sleep(1)
    pid = member.workers()["storaged"]
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    wait_until(lambda: not alive(pid), 5, what="storaged to die")
    wait_until(lambda: member.workers().get("storaged", pid) != pid, 10,
               what="a restarted storaged")
    wait_until(c.healthy, 10, what="health after the restart")
    # the long lease survives at least its own TTL from the grant
    while time.monotonic() < granted + 5.5:
        assert c.get_value("l/a") == b"1", "expired early after storaged's restart"
        time.sleep(0.2)
    # and both expire eventually, through the log
    wait_until(lambda: c.get_value("l/a") is None, max(0.5, killed + 6 + 4 - time.monotonic()),
               0.1, "the long lease to expire")
    wait_until(lambda: c.get_value("l/s") is None, 5, 0.1, "the short lease to expire")
    assert ttl_of(c, lid)["TTL"] == "-1"
    assert member.running()
