"""Error responses: shape, HTTP status per gRPC code, JSON and base64 decode errors (v3api.md 2, 4)."""
import pytest

from etcdlib import b64


def err(r, status, code, msg):
    assert r.status == status, r
    assert r.json == {"error": msg, "message": msg, "code": code}, r


def test_error_shape(client):
    r = client.post("/v3/kv/range", {})
    assert r.status == 400
    assert r.header("Content-Type") == "application/json"
    assert set(r.json) == {"error", "message", "code"}  # no "details"
    assert isinstance(r.json["code"], int)


@pytest.mark.parametrize("body,msg", [
    ("{bad", "invalid character 'b' looking for beginning of object key string"),
    ('{"key":"Zm9v"', "unexpected EOF"),
    ("[]", "json: cannot unmarshal array into Go value of type map[string]json.RawMessage"),
    ('{"key":123}', "json: cannot unmarshal number into Go value of type []uint8"),
    ('{"key":"Zm9v","keys_only":"yes"}',
     "json: cannot unmarshal string into Go value of type bool"),
    ('{"key":"Zm9v","sort_order":"BOGUS"}',
     'unknown value "BOGUS" for enum etcdserverpb.RangeRequest_SortOrder'),
    ('{"key":"!!!"}', "illegal base64 data at input byte 0"),
    ('{"key":"eA"}', "illegal base64 data at input byte 0"),
    ('{"key":"a-_="}', "illegal base64 data at input byte 1"),
    ('{"key":"Zm9v","range_end":"Zm9"}', "illegal base64 data at input byte 0"),
])
def test_range_decode_errors(client, body, msg):
    err(client.post("/v3/kv/range", body), 400, 3, msg)


@pytest.mark.parametrize("path", ["/v3/kv/put", "/v3/kv/deleterange", "/v3/kv/txn",
                                  "/v3/kv/compaction"])
def test_bad_json_on_every_kv_endpoint(client, path):
    err(client.post(path, "{bad"), 400, 3,
        "invalid character 'b' looking for beginning of object key string")


def test_bad_base64_value_in_put_writes_nothing(client, pfx):
    rev = client.revision()
    err(client.post("/v3/kv/put", {"key": b64(pfx + "k"), "value": "%%%"}), 400, 3,
        "illegal base64 data at input byte 0")
    assert client.revision() == rev
    assert client.get_value(pfx + "k") is None


def test_bad_base64_in_txn_compare(client, pfx):
    r = client.post("/v3/kv/txn", {"compare": [{"key": b64(pfx), "target": "VALUE",
                                                "value": "!!"}]})
    err(r, 400, 3, "illegal base64 data at input byte 0")


@pytest.mark.parametrize("path", ["/v3/kv/range", "/v3/kv/put", "/v3/kv/deleterange"])
def test_key_not_provided_everywhere(client, path):
    err(client.post(path, {}), 400, 3, "etcdserver: key is not provided")


def test_errors_do_not_break_the_member(client, pfx):
    for body in ("{bad", "[]", '{"key":1}', "", "null"):
        client.post("/v3/kv/put", body)
    client.put(pfx + "ok", "fine")
    assert client.get_value(pfx + "ok") == b"fine"
