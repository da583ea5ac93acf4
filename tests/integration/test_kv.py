"""/v3/kv/put, /v3/kv/range and /v3/kv/deleterange: every option and error (v3api.md 3)."""
import pytest

from etcdlib import b64, prefix_end, unb64


def keys_of(resp):
    return [unb64(kv["key"]).decode("latin-1") for kv in resp.get("kvs", [])]


def err(r, status, code, msg):
    assert r.status == status, r
    assert r.json == {"error": msg, "message": msg, "code": code}, r


# ------------------------------------------------------------------ put

def test_put_then_range_shapes(client, pfx):
    k = pfx + "foo"
    r = client.put(k, "bar")
    assert set(r) == {"header"}
    h = r["header"]
    assert set(h) == {"cluster_id", "member_id", "revision", "raft_term"}
    assert all(isinstance(v, str) and v.isdigit() for v in h.values())
    rev = h["revision"]
    g = client.range(k)
    assert g["count"] == "1"
    assert g["header"]["revision"] == rev
    assert g["kvs"] == [{"key": b64(k), "create_revision": rev, "mod_revision": rev,
                         "version": "1", "value": b64("bar")}]
    assert "more" not in g


def test_put_bumps_revision_by_one(client, pfx):
    r1 = int(client.put(pfx + "a", "1")["header"]["revision"])
    r2 = int(client.put(pfx + "b", "2")["header"]["revision"])
    assert r2 == r1 + 1


def test_overwrite_keeps_create_revision_and_counts_versions(client, pfx):
    k = pfx + "k"
    c = client.put(k, "1")["header"]["revision"]
    client.put(k, "2")
    m = client.put(k, "3")["header"]["revision"]
    kv = client.range(k)["kvs"][0]
    assert kv["create_revision"] == c
    assert kv["mod_revision"] == m
    assert kv["version"] == "3"
    assert unb64(kv["value"]) == b"3"


def test_put_prev_kv(client, pfx):
    k = pfx + "p"
    r = client.put(k, "old", prev_kv=True)
    assert "prev_kv" not in r  # the key did not exist
    rev = r["header"]["revision"]
    r = client.put(k, "new", prev_kv=True)
    assert r["prev_kv"] == {"key": b64(k), "create_revision": rev, "mod_revision": rev,
                            "version": "1", "value": b64("old")}
    # without prev_kv nothing is returned
    assert "prev_kv" not in client.put(k, "newer")


def test_empty_value_is_omitted(client, pfx):
    k = pfx + "empty"
    client.put(k, "")
    kv = client.range(k)["kvs"][0]
    assert "value" not in kv
    assert "lease" not in kv
    assert kv["version"] == "1"


def test_put_without_value_field(client, pfx):
    k = pfx + "novalue"
    r = client.post("/v3/kv/put", {"key": b64(k)})
    assert r.status == 200
    assert "value" not in client.range(k)["kvs"][0]


def test_binary_keys_and_values(client, pfx):
    k = pfx.encode() + bytes(range(256))
    v = bytes(range(255, -1, -1)) * 4
    client.put(k, v)
    kv = client.range(k)["kvs"][0]
    assert unb64(kv["key"]) == k
    assert unb64(kv["value"]) == v


def test_large_value_round_trips(client, pfx):
    k = pfx + "big"
    v = bytes(i % 251 for i in range(1024 * 1024))
    client.put(k, v)
    assert client.get_value(k) == v


@pytest.mark.parametrize("body", [{}, {"value": b64("v")}, {"key": ""}])
def test_put_key_not_provided(client, body):
    err(client.post("/v3/kv/put", body), 400, 3, "etcdserver: key is not provided")


def test_put_empty_body(client):
    err(client.post("/v3/kv/put", b""), 400, 3, "etcdserver: key is not provided")


def test_put_ignore_value(client, pfx):
    k = pfx + "iv"
    client.put(k, "keep")
    r1 = client.range(k)["kvs"][0]
    r = client.post("/v3/kv/put", {"key": b64(k), "ignore_value": True, "prev_kv": True})
    assert r.status == 200, r
    assert unb64(r.json["prev_kv"]["value"]) == b"keep"
    kv = client.range(k)["kvs"][0]
    assert unb64(kv["value"]) == b"keep"
    assert kv["version"] == "2"
    assert int(kv["mod_revision"]) > int(r1["mod_revision"])
    assert kv["mod_revision"] == r.json["header"]["revision"]


def test_put_ignore_value_errors(client, pfx):
    k = pfx + "ive"
    err(client.post("/v3/kv/put", {"key": b64(k), "ignore_value": True}),
        400, 3, "etcdserver: key not found")
    client.put(k, "x")
    err(client.post("/v3/kv/put", {"key": b64(k), "value": b64("y"), "ignore_value": True}),
        400, 3, "etcdserver: value is provided")
    assert client.get_value(k) == b"x"


def test_put_ignore_lease_errors(client, pfx):
    k = pfx + "il"
    err(client.post("/v3/kv/put", {"key": b64(k), "lease": 123, "ignore_lease": True}),
        400, 3, "etcdserver: lease is provided")
    # ignore_lease on a key without a lease keeps lease 0
    client.put(k, "a")
    r = client.post("/v3/kv/put", {"key": b64(k), "value": b64("b"), "ignore_lease": True})
    assert r.status == 200
    kv = client.range(k)["kvs"][0]
    assert unb64(kv["value"]) == b"b" and "lease" not in kv


def test_put_unknown_lease_is_404(client, pfx):
    k = pfx + "lease"
    rev = client.revision()
    err(client.post("/v3/kv/put", {"key": b64(k), "value": b64("v"), "lease": 987654321}),
        404, 5, "etcdserver: requested lease not found")
    assert client.range(k).get("kvs") is None
    assert client.revision() == rev


def test_failed_put_does_not_bump_revision(client, pfx):
    rev = client.revision()
    client.post("/v3/kv/put", {"key": b64(pfx + "x"), "ignore_value": True})
    client.post("/v3/kv/put", {})
    assert client.revision() == rev


# ------------------------------------------------------------------ range

@pytest.fixture
def abc(client, pfx):
    """Keys pfx+a..pfx+e, written in order a..e; returns (prefix, {key: mod_rev})."""
    revs = {}
    for i, c in enumerate("abcde"):
        revs[c] = int(client.put(pfx + c, "v" + str(i))["header"]["revision"])
    return pfx, revs


def test_range_miss_has_only_header(client, pfx):
    r = client.range(pfx + "missing")
    assert set(r) == {"header"}


def test_range_prefix(client, abc):
    p, _ = abc
    r = client.range(p, range_end=prefix_end(p))
    assert keys_of(r) == [p + c for c in "abcde"]
    assert r["count"] == "5"


def test_range_half_open(client, abc):
    p, _ = abc
    r = client.range(p + "b", range_end=(p + "d").encode())
    assert keys_of(r) == [p + "b", p + "c"]


def test_range_from_key_with_nul_end(client, abc):
    p, _ = abc
    r = client.range(p + "c", range_end=b"\0")
    ks = keys_of(r)
    assert ks[:3] == [p + "c", p + "d", p + "e"]
    assert all(k >= p + "c" for k in ks)


def test_range_all_keys(client, abc):
    p, _ = abc
    r = client.range("\0", range_end=b"\0")
    ks = keys_of(r)
    assert set(p + c for c in "abcde") <= set(ks)
    assert ks == sorted(ks)
    assert int(r["count"]) == len(ks)


def test_range_end_below_key_is_empty(client, abc):
    p, _ = abc
    r = client.range(p + "d", range_end=(p + "b").encode())
    assert "kvs" not in r and "count" not in r


def test_range_limit_and_more(client, abc):
    p, _ = abc
    end = prefix_end(p)
    r = client.range(p, range_end=end, limit=2)
    assert keys_of(r) == [p + "a", p + "b"]
    assert r["more"] is True
    assert r["count"] == "5"
    r = client.range(p, range_end=end, limit=5)
    assert len(r["kvs"]) == 5 and "more" not in r
    r = client.range(p, range_end=end, limit=-1)
    assert len(r["kvs"]) == 5 and "more" not in r
    r = client.range(p, range_end=end, limit="3")  # int64 as a string
    assert len(r["kvs"]) == 3 and r["more"] is True


def test_range_count_only_and_keys_only(client, abc):
    p, _ = abc
    end = prefix_end(p)
    r = client.range(p, range_end=end, count_only=True)
    assert "kvs" not in r and r["count"] == "5"
    r = client.range(p, range_end=end, keys_only=True)
    assert len(r["kvs"]) == 5
    for kv in r["kvs"]:
        assert "value" not in kv
        assert set(kv) == {"key", "create_revision", "mod_revision", "version"}


@pytest.mark.parametrize("target,order,expect", [
    ("KEY", "ASCEND", "abcde"),
    ("KEY", "DESCEND", "edcba"),
    ("MOD", "DESCEND", "edcba"),
    ("CREATE", "ASCEND", "abcde"),
    ("VALUE", "DESCEND", "edcba"),
    ("KEY", "NONE", "abcde"),
])
def test_range_sort(client, abc, target, order, expect):
    p, _ = abc
    r = client.range(p, range_end=prefix_end(p), sort_target=target, sort_order=order)
    assert keys_of(r) == [p + c for c in expect]


def test_range_sort_by_version_and_numeric_enums(client, pfx):
    for k, n in (("x", 3), ("y", 1), ("z", 2)):
        for i in range(n):
            client.put(pfx + k, str(i))
    r = client.range(pfx, range_end=prefix_end(pfx), sort_target="VERSION",
                     sort_order="DESCEND")
    assert keys_of(r) == [pfx + "x", pfx + "z", pfx + "y"]
    # enums by number: VERSION=1, ASCEND=1
    r = client.range(pfx, range_end=prefix_end(pfx), sort_target=1, sort_order=1)
    assert keys_of(r) == [pfx + "y", pfx + "z", pfx + "x"]


def test_range_sort_with_limit(client, abc):
    p, _ = abc
    r = client.range(p, range_end=prefix_end(p), sort_order="DESCEND", limit=2)
    assert keys_of(r) == [p + "e", p + "d"]
    assert r["more"] is True and r["count"] == "5"


def test_range_mod_and_create_revision_filters(client, abc):
    p, revs = abc
    end = prefix_end(p)
    r = client.range(p, range_end=end, max_mod_revision=revs["b"])
    assert keys_of(r) == [p + "a", p + "b"]
    assert r["count"] == "5"  # count is taken before the filters
    assert "more" not in r
    r = client.range(p, range_end=end, min_mod_revision=revs["d"])
    assert keys_of(r) == [p + "d", p + "e"]
    r = client.range(p, range_end=end, min_create_revision=revs["b"],
                     max_create_revision=revs["c"])
    assert keys_of(r) == [p + "b", p + "c"]


def test_range_at_revision(client, pfx):
    k = pfx + "hist"
    r1 = client.put(k, "one")["header"]["revision"]
    client.put(k, "two")
    old = client.range(k, revision=r1)
    assert unb64(old["kvs"][0]["value"]) == b"one"
    assert old["kvs"][0]["version"] == "1"
    # the header carries the current revision, not the requested one
    assert int(old["header"]["revision"]) > int(r1)
    assert unb64(client.range(k, revision=0)["kvs"][0]["value"]) == b"two"
    assert unb64(client.range(k, revision=-5)["kvs"][0]["value"]) == b"two"
    # before the key existed
    assert "kvs" not in client.range(k, revision=int(r1) - 1)


def test_range_future_revision(client, pfx):
    rev = client.revision()
    err(client.post("/v3/kv/range", {"key": b64(pfx), "revision": rev + 10}),
        400, 11, "etcdserver: mvcc: required revision is a future revision")
    r = client.post("/v3/kv/range", {"key": b64(pfx), "revision": rev})
    assert r.status == 200


@pytest.mark.parametrize("body", [{}, {"key": ""}, {"range_end": b64("z")}])
def test_range_key_not_provided(client, body):
    err(client.post("/v3/kv/range", body), 400, 3, "etcdserver: key is not provided")


def test_range_empty_body(client):
    err(client.post("/v3/kv/range", b""), 400, 3, "etcdserver: key is not provided")


def test_range_serializable(client, pfx):
    client.put(pfx + "s", "v")
    r = client.range(pfx + "s", serializable=True)
    assert unb64(r["kvs"][0]["value"]) == b"v"


def test_range_does_not_bump_revision(client, abc):
    p, revs = abc
    before = client.revision()
    client.range(p, range_end=prefix_end(p))
    assert client.revision() == before == revs["e"]


# ------------------------------------------------------------------ deleterange

def test_delete_single(client, pfx):
    k = pfx + "d"
    client.put(k, "v")
    r = client.delete(k)
    assert r["deleted"] == "1"
    assert "prev_kvs" not in r
    assert "kvs" not in client.range(k)


def test_delete_prev_kv(client, pfx):
    k = pfx + "d"
    rev = client.put(k, "v")["header"]["revision"]
    r = client.delete(k, prev_kv=True)
    assert r["prev_kvs"] == [{"key": b64(k), "create_revision": rev, "mod_revision": rev,
                              "version": "1", "value": b64("v")}]


def test_delete_nothing_keeps_revision(client, pfx):
    rev = client.revision()
    r = client.delete(pfx + "nothing", prev_kv=True)
    assert "deleted" not in r and "prev_kvs" not in r
    assert r["header"]["revision"] == str(rev)
    assert client.revision() == rev


def test_delete_range_uses_one_revision(client, abc):
    p, revs = abc
    r = client.delete(p + "b", range_end=(p + "e").encode(), prev_kv=True)
    assert r["deleted"] == "3"
    assert [unb64(kv["key"]).decode() for kv in r["prev_kvs"]] == [p + "b", p + "c", p + "d"]
    assert int(r["header"]["revision"]) == revs["e"] + 1
    assert keys_of(client.range(p, range_end=prefix_end(p))) == [p + "a", p + "e"]
    # the old values are still readable at the old revision
    old = client.range(p, range_end=prefix_end(p), revision=revs["e"])
    assert len(old["kvs"]) == 5


def test_delete_prefix_and_recreate(client, abc):
    p, _ = abc
    r = client.delete(p, range_end=prefix_end(p))
    assert r["deleted"] == "5"
    rev = client.put(p + "a", "again")["header"]["revision"]
    kv = client.range(p + "a")["kvs"][0]
    assert kv["version"] == "1"  # a tombstone resets version
    assert kv["create_revision"] == rev


@pytest.mark.parametrize("body", [{}, {"key": ""}, {"prev_kv": True}])
def test_delete_key_not_provided(client, body):
    err(client.post("/v3/kv/deleterange", body), 400, 3, "etcdserver: key is not provided")
