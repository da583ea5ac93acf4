"""Plain endpoints and HTTP routing: /health, /version, 404/405, OPTIONS, CORS, aliases."""
import pytest

from etcdlib import b64

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS, PUT, DELETE",
    "Access-Control-Allow-Headers": "accept, content-type, authorization",
}


def assert_cors(r):
    for k, v in CORS.items():
        assert r.header(k) == v, "%s missing or wrong in %r" % (k, dict(r.headers))


def test_health(client):
    r = client.get("/health")
    assert r.status == 200
    assert r.body == b'{"health":"true"}'
    assert r.header("Content-Type") == "text/plain; charset=utf-8"
    assert_cors(r)


def test_version(client):
    r = client.get("/version")
    assert r.status == 200
    assert r.header("Content-Type") == "application/json"
    assert r.json == {"etcdserver": "3.4.23", "etcdcluster": "3.4.0"}
    assert_cors(r)


@pytest.mark.parametrize("path", ["/health", "/version"])
def test_post_on_plain_endpoint_is_405(client, path):
    r = client.post(path, {})
    assert r.status == 405
    assert r.body == b"Method Not Allowed\n"
    assert r.header("Content-Type") == "text/plain; charset=utf-8"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/v3/kv/range", "/v3/kv/put", "/v3/kv/txn",
                                  "/v3/maintenance/status"])
def test_wrong_method_on_v3_is_405(client, method, path):
    r = client.request(method, path, b"{}" if method != "GET" else None)
    assert r.status == 405
    assert r.body == b"Method Not Allowed\n"
    assert r.header("Content-Type") == "text/plain; charset=utf-8"
    assert_cors(r)


@pytest.mark.parametrize("path", ["/v3/kv/nothing", "/v3/kv/range/", "/v3/nothing"])
def test_unknown_v3_path_is_404_not_found(client, path):
    r = client.post(path, {"key": b64("a")})
    assert r.status == 404
    assert r.body == b"Not Found\n"
    assert r.header("Content-Type") == "text/plain; charset=utf-8"
    assert_cors(r)


@pytest.mark.parametrize("path", ["/v3alpha/kv/range", "/nothing", "/v4/kv/range"])
def test_unknown_path_is_404_page_not_found(client, path):
    r = client.post(path, {"key": b64("a")})
    assert r.status == 404
    assert r.body == b"404 page not found\n"


@pytest.mark.parametrize("path", ["/v3/kv/range", "/health", "/version", "/v3/kv/put",
                                  "/nothing"])
def test_options_is_200_empty(client, path):
    r = client.request("OPTIONS", path)
    assert r.status == 200
    assert r.body == b""
    assert_cors(r)


def test_v3beta_is_an_alias(client, pfx):
    k = pfx + "beta"
    r = client.post("/v3beta/kv/put", {"key": b64(k), "value": b64("v")})
    assert r.status == 200, r
    rev = r.json["header"]["revision"]
    r = client.post("/v3beta/kv/range", {"key": b64(k)})
    assert r.status == 200
    assert r.json["kvs"][0]["value"] == b64("v")
    assert r.json["kvs"][0]["mod_revision"] == rev
    # and the plain /v3 path sees the same key
    assert client.get_value(k) == b"v"


def test_gateway_headers_on_success(client, pfx):
    r = client.post("/v3/kv/put", {"key": b64(pfx + "h"), "value": b64("v")})
    assert r.status == 200
    assert r.header("Content-Type") == "application/json"
    assert r.header("Grpc-Metadata-Content-Type") == "application/grpc"
    assert_cors(r)


def test_cors_on_errors(client):
    r = client.post("/v3/kv/range", {})
    assert r.status == 400
    assert_cors(r)


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_request_content_type_is_not_checked(client, pfx, ctype):
    k = pfx + "ct"
    body = ('{"key":"%s","value":"%s"}' % (b64(k), b64("x"))).encode()
    headers = {"Content-Type": ctype} if ctype else {}
    r = client.request("POST", "/v3/kv/put", body, headers)
    assert r.status == 200, r
    assert client.get_value(k) == b"x"


def test_keepalive_connection_serves_many_requests(shared_member, pfx):
    import http.client
    conn = http.client.HTTPConnection(shared_member.host, 2379, timeout=10)
    try:
        for i in range(20):
            conn.request("POST", "/v3/kv/put",
                         body=('{"key":"%s","value":"%s"}' % (b64(pfx + str(i)), b64(str(i)))))
            r = conn.getresponse()
            r.read()
            assert r.status == 200
        conn.request("GET", "/health")
        r = conn.getresponse()
        assert r.read() == b'{"health":"true"}'
    finally:
        conn.close()


def test_v2_is_off_by_default(client):
    r = client.get("/v2/keys/foo")
    assert r.status == 404
    assert r.body == b"404 page not found\n"


@pytest.mark.ours_only
@pytest.mark.parametrize("method,path,body", [
    ("POST", "/v3/auth/enable", b'{}'),
    ("POST", "/v3/maintenance/defragment", b'{}'),
])
def test_later_features_answer_not_supported_yet(client, method, path, body):
    r = client.request(method, path, body)
    assert r.status == 501, r
    assert r.json["code"] == 12
    assert r.json["error"].startswith("etcdserver: ")
    assert r.json["error"].endswith(" is not supported yet")
