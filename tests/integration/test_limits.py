"""Request size limits: --max-request-bytes 1.5 MiB and the 2 MiB receive limit (v3api.md 6)."""
import pytest

from etcdlib import b64

MIB = 1024 * 1024
LIMIT = 1572864  # default --max-request-bytes
RECV = LIMIT + 512 * 1024  # 2097152


def err(r, status, code, msg):
    assert r.status == status, r
    assert r.json == {"error": msg, "message": msg, "code": code}, r


def test_one_mib_value(client, pfx):
    v = b"\xa5" * MIB
    client.put(pfx + "1m", v)
    assert client.get_value(pfx + "1m") == v


def test_just_below_the_limit(client, pfx):
    v = b"x" * (LIMIT - 200)
    r = client.post("/v3/kv/put", {"key": b64(pfx + "below"), "value": b64(v)})
    assert r.status == 200, r
    assert client.get_value(pfx + "below") == v


@pytest.mark.parametrize("size", [LIMIT, LIMIT + 1, int(1.75 * MIB), RECV - 100])
def test_request_is_too_large(client, pfx, size):
    rev = client.revision()
    r = client.post("/v3/kv/put", {"key": b64(pfx + "big"), "value": b64(b"x" * size)})
    err(r, 400, 3, "etcdserver: request is too large")
    assert client.revision() == rev


def test_whole_request_counts_not_just_value(client, pfx):
    # a key and a value each well below the limit, together above it
    half = LIMIT // 2 + 100
    r = client.post("/v3/kv/put", {"key": b64(pfx + "k" * half), "value": b64(b"v" * half)})
    err(r, 400, 3, "etcdserver: request is too large")


def test_received_message_larger_than_max_value(client):
    # protobuf PutRequest size: key field 2+3, value field 1+4 (varint of 2.5 MiB) + 2.5 MiB
    r = client.post("/v3/kv/put", {"key": b64("big"), "value": b64(b"x" * (5 * MIB // 2))})
    err(r, 429, 8, "grpc: received message larger than max (2621450 vs. 2097152)")


def test_received_message_larger_than_max_key(client):
    r = client.post("/v3/kv/put", {"key": b64(b"k" * (9 * MIB // 4)), "value": b64("v")})
    err(r, 429, 8, "grpc: received message larger than max (2359304 vs. 2097152)")


def test_large_range_request_key(client):
    # the receive limit applies to every request, not just writes
    r = client.post("/v3/kv/range", {"key": b64(b"k" * (9 * MIB // 4))})
    assert r.status == 429, r
    assert r.json["code"] == 8
    assert r.json["error"].startswith("grpc: received message larger than max (")


def test_large_txn(client, pfx):
    ops = [{"request_put": {"key": b64(pfx + str(i)), "value": b64(b"v" * 100 * 1024)}}
           for i in range(22)]  # 2.15 MiB of values: over the receive limit
    r = client.post("/v3/kv/txn", {"success": ops})
    assert r.status == 429, r
    assert r.json["code"] == 8
    r = client.post("/v3/kv/txn", {"success": ops[:18]})  # 1.76 MiB: raft request too large
    err(r, 400, 3, "etcdserver: request is too large")
    r = client.post("/v3/kv/txn", {"success": ops[:12]})  # 1.2 MiB: under both limits
    assert r.status == 200, r


def test_member_serves_after_big_requests(client, pfx):
    client.post("/v3/kv/put", {"key": b64("big"), "value": b64(b"x" * (3 * MIB))})
    client.put(pfx + "after", "ok")
    assert client.get_value(pfx + "after") == b"ok"
