"""/v3/kv/txn: compares, ops, nested txns, revisions and errors (v3api.md 3, txn)."""
import pytest

from etcdlib import b64, prefix_end, unb64


def err(r, status, code, msg):
    assert r.status == status, r
    assert r.json == {"error": msg, "message": msg, "code": code}, r


def put_op(k, v, **kw):
    return {"request_put": dict(key=b64(k), value=b64(v), **kw)}


def range_op(k, **kw):
    return {"request_range": dict(key=b64(k), **kw)}


def del_op(k, **kw):
    return {"request_delete_range": dict(key=b64(k), **kw)}


def txn(client, compare=(), success=(), failure=()):
    body = {}
    if compare:
        body["compare"] = list(compare)
    if success:
        body["success"] = list(success)
    if failure:
        body["failure"] = list(failure)
    return client.post("/v3/kv/txn", body)


def test_empty_txn_succeeds_at_current_revision(client):
    rev = client.revision()
    r = client.post("/v3/kv/txn", {})
    assert r.status == 200
    assert r.json["succeeded"] is True
    assert r.json["header"]["revision"] == str(rev)
    assert "responses" not in r.json
    assert client.revision() == rev


def test_create_if_absent(client, pfx):
    k = pfx + "lock"
    cmp = [{"key": b64(k), "target": "CREATE", "result": "EQUAL", "create_revision": 0}]
    r = txn(client, cmp, [put_op(k, "first")], [range_op(k)])
    assert r.status == 200, r
    assert r.json["succeeded"] is True
    rev = r.json["header"]["revision"]
    assert r.json["responses"] == [{"response_put": {"header": {"revision": rev}}}]
    r = txn(client, cmp, [put_op(k, "second")], [range_op(k)])
    assert "succeeded" not in r.json
    resp = r.json["responses"][0]["response_range"]
    assert resp["header"] == {"revision": rev}
    assert resp["count"] == "1"
    assert unb64(resp["kvs"][0]["value"]) == b"first"
    assert r.json["header"]["revision"] == rev  # a read-only branch writes nothing


@pytest.mark.parametrize("target,field,result,operand,expect", [
    ("VALUE", "value", "EQUAL", "v2", True),
    ("VALUE", "value", "EQUAL", "v1", False),
    ("VALUE", "value", "NOT_EQUAL", "v1", True),
    ("VALUE", "value", "GREATER", "v1", True),
    ("VALUE", "value", "LESS", "v3", True),
    ("VERSION", "version", "EQUAL", 2, True),
    ("VERSION", "version", "GREATER", 2, False),
    ("VERSION", "version", "LESS", 3, True),
    ("VERSION", "version", "NOT_EQUAL", "2", False),
    ("LEASE", "lease", "EQUAL", 0, True),
    ("LEASE", "lease", "GREATER", 0, False),
])
def test_compare_targets(client, pfx, target, field, result, operand, expect):
    k = pfx + "c"
    client.put(k, "v1")
    client.put(k, "v2")
    if field == "value":
        operand = b64(operand)
    cmp = {"key": b64(k), "target": target, "result": result, field: operand}
    r = txn(client, [cmp])
    assert r.status == 200, r
    assert r.json.get("succeeded", False) is expect


def test_compare_mod_and_create_revision(client, pfx):
    k = pfx + "m"
    c = int(client.put(k, "1")["header"]["revision"])
    m = int(client.put(k, "2")["header"]["revision"])
    ok = [{"key": b64(k), "target": "MOD", "result": "EQUAL", "mod_revision": m},
          {"key": b64(k), "target": "CREATE", "result": "EQUAL", "create_revision": c}]
    assert txn(client, ok).json.get("succeeded") is True
    bad = [{"key": b64(k), "target": "MOD", "result": "LESS", "mod_revision": m}]
    assert "succeeded" not in txn(client, bad).json
    # numeric enums: MOD=2, GREATER=1
    num = [{"key": b64(k), "target": 2, "result": 1, "mod_revision": m - 1}]
    assert txn(client, num).json.get("succeeded") is True


def test_compare_default_target_is_version(client, pfx):
    k = pfx + "dflt"
    r = txn(client, [{"key": b64(k)}], [put_op(k, "x")])
    # VERSION EQUAL 0 on a missing key holds
    assert r.json.get("succeeded") is True
    r = txn(client, [{"key": b64(k)}], [put_op(k, "y")])
    assert "succeeded" not in r.json


def test_compare_over_a_range(client, pfx):
    for c in "abc":
        client.put(pfx + c, "same")
    cmp = {"key": b64(pfx), "range_end": b64(prefix_end(pfx)), "target": "VALUE",
           "result": "EQUAL", "value": b64("same")}
    assert txn(client, [cmp]).json.get("succeeded") is True
    client.put(pfx + "b", "other")
    assert "succeeded" not in txn(client, [cmp]).json


def test_all_writes_share_one_revision(client, pfx):
    client.put(pfx + "gone", "x")
    rev = client.revision()
    r = txn(client, [], [put_op(pfx + "1", "a"), put_op(pfx + "2", "b"),
                         del_op(pfx + "gone", prev_kv=True), range_op(pfx + "1")])
    assert r.status == 200, r
    new = str(rev + 1)
    assert r.json["header"]["revision"] == new
    res = r.json["responses"]
    assert res[0] == {"response_put": {"header": {"revision": new}}}
    assert res[1] == {"response_put": {"header": {"revision": new}}}
    d = res[2]["response_delete_range"]
    assert d["deleted"] == "1" and unb64(d["prev_kvs"][0]["value"]) == b"x"
    # a range inside the txn sees the txn's own earlier writes
    rr = res[3]["response_range"]
    assert unb64(rr["kvs"][0]["value"]) == b"a"
    assert rr["kvs"][0]["mod_revision"] == new
    for k in ("1", "2"):
        assert client.range(pfx + k)["kvs"][0]["mod_revision"] == new


def test_put_prev_kv_in_txn(client, pfx):
    k = pfx + "pk"
    client.put(k, "old")
    r = txn(client, [], [put_op(k, "new", prev_kv=True)])
    assert unb64(r.json["responses"][0]["response_put"]["prev_kv"]["value"]) == b"old"


def test_failure_branch(client, pfx):
    k = pfx + "f"
    cmp = [{"key": b64(k), "target": "VALUE", "result": "EQUAL", "value": b64("nope")}]
    r = txn(client, cmp, [put_op(k, "success")], [put_op(k, "failure")])
    assert "succeeded" not in r.json
    assert client.get_value(k) == b"failure"


def test_nested_txn(client, pfx):
    k = pfx + "n"
    inner = {"request_txn": {"compare": [{"key": b64(k), "target": "VERSION",
                                          "result": "EQUAL", "version": 0}],
                             "success": [put_op(k, "inner")]}}
    r = txn(client, [], [inner])
    assert r.status == 200, r
    rt = r.json["responses"][0]["response_txn"]
    assert rt["header"] == {}
    assert rt["succeeded"] is True
    assert "response_put" in rt["responses"][0]
    assert client.get_value(k) == b"inner"


def test_txn_range_options(client, pfx):
    for c in "abc":
        client.put(pfx + c, c)
    r = txn(client, [], [range_op(pfx, range_end=b64(prefix_end(pfx)), limit=1,
                                  sort_order="DESCEND", keys_only=True)])
    rr = r.json["responses"][0]["response_range"]
    assert [unb64(kv["key"]).decode() for kv in rr["kvs"]] == [pfx + "c"]
    assert "value" not in rr["kvs"][0]
    assert rr["more"] is True and rr["count"] == "3"


@pytest.mark.parametrize("ops", [
    [put_op("dup", "1"), put_op("dup", "2")],
    [put_op("dup", "1"), del_op("dup")],
    [del_op("dup"), put_op("dup", "1")],
    [put_op("dup", "1"), {"request_txn": {"success": [put_op("dup", "2")]}}],
    [del_op("du", range_end=b64("dv")), put_op("dup", "1")],
])
def test_duplicate_key(client, ops):
    rev = client.revision()
    err(txn(client, [], ops), 400, 3, "etcdserver: duplicate key given in txn request")
    assert client.revision() == rev


def test_same_key_in_success_and_failure_is_fine(client, pfx):
    k = pfx + "sf"
    r = txn(client, [], [put_op(k, "s")], [put_op(k, "f")])
    assert r.status == 200 and client.get_value(k) == b"s"


def test_two_deletes_of_same_key_are_fine(client, pfx):
    k = pfx + "dd"
    r = txn(client, [], [del_op(k), del_op(k)])
    assert r.status == 200, r


def test_op_with_empty_key(client):
    err(txn(client, [], [{"request_put": {"value": b64("v")}}]),
        400, 3, "etcdserver: key is not provided")
    err(txn(client, [], [{"request_range": {}}]), 400, 3, "etcdserver: key is not provided")
    err(txn(client, [], [], [{"request_delete_range": {"key": ""}}]),
        400, 3, "etcdserver: key is not provided")


def test_empty_op(client):
    err(txn(client, [], [{}]), 400, 3, "etcdserver: key not found")


def test_txn_unknown_lease(client, pfx):
    k = pfx + "l"
    rev = client.revision()
    err(txn(client, [], [put_op(k, "v", lease=424242), put_op(k + "2", "v")]),
        404, 5, "etcdserver: requested lease not found")
    assert client.revision() == rev
    assert client.get_value(k + "2") is None


def test_txn_future_revision_range(client, pfx):
    rev = client.revision()
    err(txn(client, [], [range_op(pfx, revision=rev + 100)]),
        400, 11, "etcdserver: mvcc: required revision is a future revision")


def test_txn_ignore_value_errors(client, pfx):
    err(txn(client, [], [put_op(pfx + "nokey", "", ignore_value=True)]),
        400, 3, "etcdserver: key not found")


def test_max_txn_ops(client, pfx):
    ops = [put_op(pfx + "%03d" % i, "v") for i in range(128)]
    r = txn(client, [], ops)
    assert r.status == 200, r
    assert len(r.json["responses"]) == 128
    ops.append(put_op(pfx + "129", "v"))
    err(txn(client, [], ops), 400, 3, "etcdserver: too many operations in txn request")
    # the limit counts each branch, not their sum
    r = txn(client, [], ops[:100], [range_op(pfx + "%03d" % i) for i in range(100)])
    assert r.status == 200, r
