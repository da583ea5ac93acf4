"""JSON encoding rules of the v3 gateway: names, int64 strings, enums, zero values (v3api.md 2)."""
import json

import pytest

from etcdlib import b64, prefix_end, unb64


def test_int64_are_strings(client, pfx):
    client.put(pfx + "a", "1")
    r = client.range(pfx + "a")
    for v in r["header"].values():
        assert isinstance(v, str)
    kv = r["kvs"][0]
    for f in ("create_revision", "mod_revision", "version"):
        assert isinstance(kv[f], str) and kv[f].isdigit()
    assert r["count"] == "1"


def test_int64_input_as_string_or_number(client, pfx):
    for c in "abc":
        client.put(pfx + c, c)
    end = b64(prefix_end(pfx))
    for lim in (1, "1"):
        r = client.ok("/v3/kv/range", {"key": b64(pfx), "range_end": end, "limit": lim})
        assert len(r["kvs"]) == 1
    rev = client.revision()
    r = client.ok("/v3/kv/range", {"key": b64(pfx + "a"), "revision": str(rev)})
    assert len(r["kvs"]) == 1


@pytest.mark.parametrize("snake,camel", [
    ("range_end", "rangeEnd"), ("keys_only", "keysOnly"), ("count_only", "countOnly"),
    ("sort_order", "sortOrder"), ("max_mod_revision", "maxModRevision"),
])
def test_camel_case_input_names(client, pfx, snake, camel):
    for c in "ab":
        client.put(pfx + c, c)
    vals = {"range_end": b64(prefix_end(pfx)), "keys_only": True, "count_only": True,
            "sort_order": "DESCEND", "max_mod_revision": client.revision()}
    base = {"key": b64(pfx), "range_end": b64(prefix_end(pfx))}
    a = client.ok("/v3/kv/range", dict(base, **{snake: vals[snake]}))
    b = client.ok("/v3/kv/range", dict(base, **{camel: vals[snake]}))
    assert a == b


def test_camel_case_prev_kv(client, pfx):
    k = pfx + "k"
    client.put(k, "1")
    r = client.ok("/v3/kv/put", {"key": b64(k), "value": b64("2"), "prevKv": True})
    assert unb64(r["prev_kv"]["value"]) == b"1"


def test_output_uses_proto_names(client, pfx):
    k = pfx + "k"
    client.put(k, "1")
    r = client.ok("/v3/kv/put", {"key": b64(k), "value": b64("2"), "prev_kv": True})
    assert "prev_kv" in r and "prevKv" not in r
    assert set(r["prev_kv"]) == {"key", "create_revision", "mod_revision", "version", "value"}
    assert set(r["header"]) == {"cluster_id", "member_id", "revision", "raft_term"}


def test_unknown_fields_are_ignored(client, pfx):
    k = pfx + "u"
    r = client.post("/v3/kv/put", {"key": b64(k), "value": b64("v"), "bogus": [1, {"x": 2}],
                                   "another": None})
    assert r.status == 200, r
    assert client.get_value(k) == b"v"


def test_anything_after_the_first_object_is_ignored(client, pfx):
    k = pfx + "t"
    body = json.dumps({"key": b64(k), "value": b64("v")}) + ' {"key":"garbage"} trailing junk'
    r = client.post("/v3/kv/put", body)
    assert r.status == 200, r
    assert client.get_value(k) == b"v"


def test_booleans_only_when_true(client, pfx):
    k = pfx + "b"
    client.put(k, "v")
    r = client.range(k, limit=1)
    assert "more" not in r
    r = client.ok("/v3/kv/txn", {"compare": [{"key": b64(k), "target": "VALUE",
                                              "value": b64("x")}]})
    assert "succeeded" not in r


def test_null_and_false_and_zero_mean_default(client, pfx):
    k = pfx + "n"
    client.put(k, "v")
    r = client.ok("/v3/kv/range", {"key": b64(k), "range_end": None, "keys_only": False,
                                   "limit": 0, "revision": None})
    assert unb64(r["kvs"][0]["value"]) == b"v"


def test_padding_variants_of_base64(client, pfx):
    # "a" -> "YQ==" (two pad chars), "ab" -> "YWI=", "abc" -> "YWJj"
    for s in ("a", "ab", "abc"):
        k = pfx + s
        client.put(k, s * 3)
        assert client.get_value(k) == (s * 3).encode()


def test_status_and_member_list_ints_are_strings(client):
    s = client.ok("/v3/maintenance/status", {})
    for f in ("dbSize", "leader", "raftIndex", "raftTerm", "raftAppliedIndex", "dbSizeInUse"):
        assert isinstance(s[f], str) and s[f].isdigit(), f
    m = client.ok("/v3/cluster/member/list", {})
    assert isinstance(m["members"][0]["ID"], str)
