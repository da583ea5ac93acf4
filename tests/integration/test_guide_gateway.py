"""The Clustering Guide's Gateway and Proxy sections: `etcd gateway start` (a TCP
forwarder) and the v2 proxy (`--proxy on|readonly`), in front of a three-member
cluster, as a user who only knows the gateway's or the proxy's address would use them.

The gateway and the proxy listen on port 2379 of a fresh loopback host, so the
harness's Member (which talks to <host>:2379) drives them like any member. Log
assertions look at the message text only: etcd 3.4's gateway logs zap JSON.
"""
import selectors
import socket
import threading
import time

import pytest

import clusterlib
import etcdlib
from etcdlib import IS_REFERENCE, b64, fresh_host, run_etcd, wait_until
from streamlib import WatchStream, create_req

cluster = clusterlib.cluster  # the fixture


def gateway(members, endpoints, *extra, name="gw"):
    h = fresh_host()
    args = ["gateway", "start", "--endpoints", ",".join(endpoints),
            "--listen-addr", "%s:2379" % h] + list(extra)
    return members.new(name, plain=True, host=h, args=args)


def eps(c):
    return ["http://%s:2379" % m.host for m in c]


def put_until_ok(client, key, value, timeout=15):
    """A put retried while the cluster elects (a refused or failed connection, 5xx):
    True once acknowledged."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = client.post("/v3/kv/put", {"key": b64(key), "value": b64(value)}, timeout=5)
            if r.status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def test_gateway_round_robin_and_a_killed_member(cluster, members):
    c = cluster(3)
    gw = gateway(members, eps(c), "--retry-delay", "1s").start()
    # round robin per connection: three connections reach three members
    seen = set()
    for i in range(3):
        r = gw.client.ok("/v3/kv/put", {"key": b64("rr%d" % i), "value": b64("v")})
        seen.add(r["header"]["member_id"])
    assert len(seen) == 3, seen
    # one member killed under a client that only knows the gateway: every put is
    # acknowledged (retried while the cluster elects) and none is lost
    victim = c[1]
    c.kill9(victim)
    acked = [k for k in ("after%d" % i for i in range(20)) if put_until_ok(gw.client, k, "v")]
    assert len(acked) == 20, acked
    wait_until(lambda: "deactivated endpoint" in gw.stderr_text(), 10, 0.1,
               "the gateway to take the dead member out")
    c.restart(victim)
    wait_until(lambda: "activated" in gw.stderr_text().split("deactivated endpoint")[-1],
               15, 0.2, "the gateway to take the member back")
    for k in acked:
        r = gw.client.ok("/v3/kv/range", {"key": b64(k)})
        assert r.get("count") == "1", (k, r)


def test_gateway_carries_a_watch_and_two_thousand_connections(cluster, members):
    c = cluster(3)
    gw = gateway(members, eps(c)).start()
    w = WatchStream(gw.host, [create_req("gw-watch")]).open()
    try:
        assert w.result()["created"]
        c[2].client.put("gw-watch", "x")
        ev = w.result()["events"][0]
        assert ev["kv"]["value"] == b64("x")
    finally:
        w.close()
    n, sel, socks = 2000, selectors.DefaultSelector(), []
    req = b"GET /version HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"
    try:
        for _ in range(n):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((gw.host, 2379))
            socks.append(s)
            sel.register(s, selectors.EVENT_WRITE, [b"", False])
        done, deadline = 0, time.monotonic() + 60
        while done < n and time.monotonic() < deadline:
            for key, ev in sel.select(timeout=1):
                s, st = key.fileobj, key.data
                if ev & selectors.EVENT_WRITE and not st[1]:
                    s.send(req)
                    st[1] = True
                    sel.modify(s, selectors.EVENT_READ, st)
                    continue
                try:
                    chunk = s.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                st[0] += chunk
                if not chunk:
                    sel.unregister(s)
                    done += 1
        assert done == n, "%d of %d connections ended in time" % (done, n)
    finally:
        for s in socks:
            s.close()
        sel.close()
    # and the gateway still serves
    assert gw.client.get("/version").status == 200


def test_all_endpoints_down_closes_the_connection(members):
    dead = fresh_host()
    gw = gateway(members, ["%s:2379" % dead]).spawn()
    wait_until(lambda: "ready to proxy client requests" in gw.stderr_text(), 20, 0.1,
               "the gateway to listen")
    with pytest.raises((OSError, etcdlib.http.client.HTTPException)):
        gw.client.get("/version", timeout=5)
    assert gw.proc.poll() is None, "the gateway stopped"
    wait_until(lambda: "deactivated endpoint" in gw.stderr_text(), 10, 0.1,
               "the deactivation to be logged")


@pytest.mark.parametrize("args,want", [
    (["--endpoints="], "no endpoints found"),
    (["--foo"], "Error: unknown flag: --foo"),
    (["--retry-delay", "xx"],
     'Error: invalid argument "xx" for "--retry-delay" flag: time: invalid duration "xx"'),
], ids=["no-endpoints", "unknown-flag", "bad-delay"])
def test_gateway_bad_input(tmp_path, args, want):
    h = fresh_host()
    p = run_etcd(["gateway", "start", "--listen-addr", "%s:23790" % h] + args,
                 cwd=tmp_path, timeout=10)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert want in p.stdout + p.stderr, (p.stdout, p.stderr)


def test_gateway_endpoint_on_its_own_address(tmp_path):
    h = fresh_host()
    p = run_etcd(["gateway", "start", "--listen-addr", "%s:23790" % h,
                  "--endpoints", "%s:23790" % h], cwd=tmp_path, timeout=10)
    assert p.returncode == 1
    assert ("SRV or endpoint (%s:23790->%s:23790) should not resolve to the gateway "
            "listen addr (%s:23790)" % (h, h, h)) in p.stdout, p.stdout


# ------------------------------------------------------------------ the v2 proxy

def proxy(members, c, mode="on", name="px"):
    h = fresh_host()
    initial = ",".join("%s=http://%s:2380" % (m.name, m.peer_host) for m in c)
    args = ["--proxy", mode, "--data-dir", str(members.tmp_path / name / "px.etcd"),
            "--listen-client-urls", "http://%s:2379" % h, "--initial-cluster", initial]
    return members.new(name, plain=True, host=h, args=args)


def v2(m, method, key, body=None, timeout=10):
    h = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
    return m.client.request(method, "/v2/keys/" + key, body, h, timeout=timeout)


def serving(px):
    try:
        return v2(px, "GET", "", timeout=2).status == 200
    except OSError:
        return False


def test_proxy_forwards_the_v2_api_and_waits_readonly_refuses(cluster, members):
    c = cluster(3, args=["--enable-v2"])
    px = proxy(members, c).spawn()
    wait_until(lambda: serving(px), 20, 0.2, "the proxy to serve")
    r = v2(px, "PUT", "p/a", b"value=1")
    assert r.status == 201, r
    assert r.json["node"]["value"] == "1"
    # the proxy's CORS headers come on top of the member's
    assert len(r.headers.get_all("Access-Control-Allow-Origin")) == 2
    assert v2(c[2], "GET", "p/a").json["node"]["value"] == "1"
    # a wait through the proxy, answered by a write made on a member
    idx = int(r.headers["X-Etcd-Index"])
    got = {}
    t = threading.Thread(target=lambda: got.update(
        r=v2(px, "GET", "p/w?wait=true&waitIndex=%d" % (idx + 1), timeout=20)))
    t.start()
    time.sleep(0.5)
    assert v2(c[0], "PUT", "p/w", b"value=x").status == 201
    t.join(20)
    assert got["r"].status == 200 and got["r"].json["node"]["value"] == "x", got
    # v3 paths pass through too
    assert px.client.post("/v3/kv/range", {"key": b64("p")}).status == 200
    assert (members.tmp_path / "px" / "px.etcd" / "proxy" / "cluster").exists()
    # a readonly proxy in front of the same cluster
    ro = proxy(members, c, mode="readonly", name="ro").spawn()
    wait_until(lambda: serving(ro), 20, 0.2, "the readonly proxy to serve")
    assert v2(ro, "GET", "p/a").json["node"]["value"] == "1"
    for method in ("PUT", "POST", "DELETE"):
        r = v2(ro, method, "p/a", b"value=2")
        assert r.status == 501 and r.body == b"", (method, r)
    assert v2(c[1], "GET", "p/a").json["node"]["value"] == "1"


def test_proxy_survives_a_killed_member_and_restarts_from_its_file(cluster, members):
    c = cluster(3, args=["--enable-v2"])
    px = proxy(members, c).spawn()
    wait_until(lambda: serving(px), 20, 0.2, "the proxy to serve")
    c.kill9(c[0])
    for i in range(10):
        ok = False
        deadline = time.monotonic() + 15
        while not ok and time.monotonic() < deadline:
            try:
                ok = v2(px, "PUT", "k/%d" % i, b"value=v", timeout=5).status == 201
            except OSError:
                pass
        assert ok, "put %d through the proxy" % i
    px.stop()
    px.spawn()
    wait_until(lambda: serving(px), 20, 0.2, "the restarted proxy to serve")
    assert "from cluster file" in px.stderr_text()


@pytest.mark.skipif(IS_REFERENCE, reason="one test of each is enough against etcd")
def test_proxy_without_members_says_so(members):
    h = fresh_host()
    px = members.new("lone", plain=True, host=h, args=[
        "--proxy", "on", "--data-dir", str(members.tmp_path / "lone.etcd"),
        "--listen-client-urls", "http://%s:2379" % h,
        "--initial-cluster", "x=http://%s:2380" % fresh_host()]).spawn()
    def answers():
        try:
            return px.client.request("GET", "/v2/keys/", timeout=2).status == 503
        except OSError:
            return False
    wait_until(answers, 20, 0.2, "the proxy to answer")
    r = px.client.get("/v2/keys/")
    assert r.body == b'{"message":"httpproxy: zero endpoints currently available"}', r
