"""TLS for clients and peers (issue 6): the Clustering Guide's TLS section on loopback, auto
TLS, http and https at once, --cipher-suites, start-up errors, hostile connections.

Certificates are made at test time with the openssl CLI (tlslib.py) in the test's temp
dir. The guide's three machines are 127.0.1.20, 127.0.1.21 and 127.0.1.22 (not
test_guide_static.py's 127.0.1.10-12, so the two files never collide) with the guide's
ports and flags, verbatim otherwise. One change: the guide also listens on
https://127.0.0.1:2379 on every machine, which three members on one host cannot all do,
so each member listens on its own address only. Every other test uses fresh loopback
hosts. Passes against etcd 3.4 (ETCD_BIN=/usr/bin/etcd).

What etcd 3.4.23 does that these tests pin (observed; see also etcd-facts/static.md):
- TLS 1.2 and 1.3, nothing older (a TLS 1.1 client gets a protocol_version alert).
- --client-cert-auth / --peer-client-cert-auth: no certificate, or one from a CA not in
  the trusted CA file: alert bad_certificate; with TLS 1.3 the client sees it on its
  first read. etcd logs `rejected connection from "<ip:port>" (error "...", ServerName "")`.
- The peer port also checks that a client certificate with IP SANs lists the IP the
  connection comes from (etcd's transport checkSAN): member certificates need
  IP:127.0.0.1 here, because on loopback the members dial from 127.0.0.1.
- A plain HTTP request to an https port gets no HTTP answer: the connection is closed
  (etcd's TLS listener does the handshake before HTTP sees anything).
"""
import os
import random
import shutil
import socket
import ssl
import stat
import threading
import time
import warnings

import pytest

import etcdlib
import tlslib
from etcdlib import IS_REFERENCE, b64, cluster_id, member_id, run_etcd, wait_until

GUIDE_HOSTS = ["127.0.1.20", "127.0.1.21", "127.0.1.22"]
INFRA3_HOST = "127.0.1.23"
TOKEN = "etcd-cluster-1"
GUIDE_CLUSTER = ",".join("infra%d=https://%s:2380" % (i, h) for i, h in enumerate(GUIDE_HOSTS))
# A client certificate refused: etcd (Go) always sends the bad_certificate alert; OpenSSL
# sends TLS 1.3's certificate_required for a missing one (handshake_failure in TLS 1.2) and
# unknown_ca for one from another CA. Any of them is a refusal before a byte is served.
# In TLS 1.3 the client's handshake is over before the server has judged its certificate,
# so the client may already have sent its request: the server's close then resets the
# connection and the alert can be lost on the way (seen under ASan's slower timing).
BAD_CERT = ("SSLV3_ALERT_BAD_CERTIFICATE", "TLSV13_ALERT_CERTIFICATE_REQUIRED",
            "SSLV3_ALERT_HANDSHAKE_FAILURE", "TLSV1_ALERT_UNKNOWN_CA",
            "EOF occurred in violation of protocol", "Connection reset by peer")
VERIFY_FAILED = "CERTIFICATE_VERIFY_FAILED"
REJECTED = 'rejected connection from "'


# ---------------------------------------------------------------- certificates

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """The guide's files under <dir>/path/to (a client CA and a peer CA, each member's
    client and peer certificate), a client certificate from the client CA, and the
    outsiders: a CA nobody trusts and certificates it signed."""
    d = tmp_path_factory.mktemp("pki") / "path" / "to"
    p = {"dir": d}
    p["ca_client"] = tlslib.CA(d, "ca-client")
    p["ca_peer"] = tlslib.CA(d, "ca-peer")
    p["other"] = tlslib.CA(d, "other-ca")
    for i, h in enumerate(GUIDE_HOSTS):
        for side in ("client", "peer"):
            p["ca_" + side].issue("infra%d-%s" % (i, side), cn="infra%d" % i,
                                  ips=[h, "127.0.0.1"], dns=["localhost"])
    p["client"] = p["ca_client"].issue("client", eku=("clientAuth",), kind="ec")
    p["other_client"] = p["other"].issue("other-client", eku=("clientAuth",), kind="ec")
    # a certificate from the peer CA: known to the members, but not for client traffic
    p["peer_ca_client"] = p["ca_peer"].issue("peer-ca-client", eku=("clientAuth",))
    for side in ("client", "peer"):
        p["infra3_" + side] = p["ca_" + side].issue("infra3-" + side, cn="infra3",
                                                    ips=[INFRA3_HOST, "127.0.0.1"])
    p["infra3_evil"] = p["other"].issue("infra3-peer-evil", cn="infra3",
                                        ips=[INFRA3_HOST, "127.0.0.1"])
    p["infra2_evil"] = p["other"].issue("infra2-peer-evil", cn="infra2",
                                        ips=[GUIDE_HOSTS[2], "127.0.0.1"])
    return p


def ctx_good(pki):
    return tlslib.context(ca=pki["ca_client"].crt, cert=pki["client"][0], key=pki["client"][1])


def ctx_peer(pki):
    """What a member presents to its peers (infra0's peer certificate)."""
    crt, key = pki["dir"] / "infra0-peer.crt", pki["dir"] / "infra0-peer.key"
    return tlslib.context(ca=pki["ca_peer"].crt, cert=crt, key=key)


def one_ca(tmp_path, hosts):
    """A CA, a server certificate for hosts (and 127.0.0.1), a client certificate."""
    ca = tlslib.CA(tmp_path / "pki", "ca")
    srv = ca.issue("server", ips=list(hosts) + ["127.0.0.1"])
    cli = ca.issue("client", eku=("clientAuth",), kind="ec")
    return ca, srv, cli


# ---------------------------------------------------------------- members

def guide_hosts_free():
    for h in GUIDE_HOSTS + [INFRA3_HOST]:
        for port in (2379, 2380):
            if not etcdlib._port_free(h, port):
                pytest.fail("%s:%d is taken; the guide's TLS tests need it" % (h, port),
                            pytrace=False)


def guide_tls_flags(i, pki, peer_crt=None, peer_key=None):
    """The guide's self-signed command line for infra<i>: /path/to is the pki dir, and
    --peer-trusted-ca-file=ca-peer.crt is relative, as in the guide (a copy sits in the
    member's working directory)."""
    h, d = GUIDE_HOSTS[i], pki["dir"]
    return ["--name", "infra%d" % i, "--initial-advertise-peer-urls", "https://%s:2380" % h,
            "--listen-peer-urls", "https://%s:2380" % h,
            "--listen-client-urls", "https://%s:2379" % h,
            "--advertise-client-urls", "https://%s:2379" % h,
            "--initial-cluster-token", TOKEN,
            "--initial-cluster", GUIDE_CLUSTER,
            "--initial-cluster-state", "new",
            "--client-cert-auth", "--trusted-ca-file=%s/ca-client.crt" % d,
            "--cert-file=%s/infra%d-client.crt" % (d, i),
            "--key-file=%s/infra%d-client.key" % (d, i),
            "--peer-client-cert-auth", "--peer-trusted-ca-file=ca-peer.crt",
            "--peer-cert-file=%s" % (peer_crt or "%s/infra%d-peer.crt" % (d, i)),
            "--peer-key-file=%s" % (peer_key or "%s/infra%d-peer.key" % (d, i))]


def guide_auto_flags(i):
    h = GUIDE_HOSTS[i]
    return ["--name", "infra%d" % i, "--initial-advertise-peer-urls", "https://%s:2380" % h,
            "--listen-peer-urls", "https://%s:2380" % h,
            "--listen-client-urls", "https://%s:2379" % h,
            "--advertise-client-urls", "https://%s:2379" % h,
            "--initial-cluster-token", TOKEN,
            "--initial-cluster", GUIDE_CLUSTER,
            "--initial-cluster-state", "new",
            "--auto-tls", "--peer-auto-tls"]


def new_guide_member(members, i, args, ctx, pki=None):
    m = members.new("infra%d" % i, plain=True, host=GUIDE_HOSTS[i], args=args)
    if pki is not None:
        shutil.copy(pki["ca_peer"].crt, m.workdir / "ca-peer.crt")
    m.client = tlslib.TlsClient(m.host, 2379, ctx)
    return m


def leader_of(m):
    try:
        r = m.client.post("/v3/maintenance/status", {}, timeout=2)
    except (OSError, ssl.SSLError):
        return None
    return r.json.get("leader") if r.status == 200 else None


def start_all(ms, timeout=etcdlib.START_TIMEOUT):
    for m in ms:
        m.spawn()
    for m in ms:
        m.wait_healthy(timeout)
    wait_until(lambda: len({leader_of(m) for m in ms}) == 1 and leader_of(ms[0]),
               timeout, 0.1, "the members to agree on a leader")


def put(m, key, value, timeout=None):
    return m.client.post("/v3/kv/put", {"key": b64(key), "value": b64(value)}, timeout=timeout)


def single(members, name, host, client_urls, peer_url, extra, ctx, client_host=None,
           client_port=2379):
    """A one-member cluster with a full command line of our choosing (plain Member)."""
    args = ["--name", name, "--data-dir", name + ".etcd",
            "--listen-client-urls", ",".join(client_urls),
            "--advertise-client-urls", ",".join(client_urls),
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", "%s=%s" % (name, peer_url),
            "--initial-cluster-token", "tok-" + host] + list(extra)
    m = members.new(name, plain=True, host=host, args=args)
    m.client = tlslib.TlsClient(client_host or host, client_port, ctx)
    return m


def rejections(m):
    """How many refused TLS connections m has logged. etcd 3.4 also logs connections
    closed before their handshake (error "EOF") this way: those are not counted."""
    return sum(1 for line in m.stderr_text().splitlines()
               if REJECTED in line and '(error "EOF"' not in line)


def refused(host, port, ctx, reason, **kw):
    err, line = tlslib.handshake(host, port, ctx, **kw)
    assert err is not None, "%s:%d answered %r; expected a refusal (%s)" % (
        host, port, line, reason)
    reasons = reason if isinstance(reason, tuple) else (reason,)
    assert any(tlslib.refused_with(err, r) for r in reasons), \
        "%s:%d: %r, expected %s" % (host, port, err, reason)


def answers(host, port, ctx, **kw):
    err, line = tlslib.handshake(host, port, ctx, **kw)
    assert err is None, "%s:%d refused: %r" % (host, port, err)
    assert line.startswith("HTTP/1.1 200"), line
    return line


# ---------------------------------------------------------------- 1. the guide's certificates

def check_client_refusals(m, pki):
    """No certificate, one from another CA, one from the peer CA: bad_certificate; a client
    that does not trust the client CA refuses the server."""
    before = rejections(m)
    d = pki["dir"]
    refused(m.host, 2379, tlslib.context(ca=pki["ca_client"].crt), BAD_CERT)
    refused(m.host, 2379, tlslib.context(ca=pki["ca_client"].crt, cert=pki["other_client"][0],
                                         key=pki["other_client"][1]), BAD_CERT)
    refused(m.host, 2379, tlslib.context(ca=pki["ca_client"].crt,
                                         cert=pki["peer_ca_client"][0],
                                         key=pki["peer_ca_client"][1]), BAD_CERT)
    # the same refusals over TLS 1.2, where they happen inside the handshake
    refused(m.host, 2379, tlslib.context(ca=pki["ca_client"].crt,
                                         tls_max=ssl.TLSVersion.TLSv1_2), BAD_CERT)
    # the client trusts another CA (or the peer CA, which did not sign the client port's
    # certificate): it refuses the server
    for ca in (pki["other"].crt, pki["ca_peer"].crt):
        refused(m.host, 2379, tlslib.context(ca=ca, cert=pki["client"][0],
                                             key=pki["client"][1]), VERIFY_FAILED)
    # the peer port: the peer CA only
    refused(m.host, 2380, tlslib.context(ca=pki["ca_peer"].crt), BAD_CERT)
    refused(m.host, 2380, tlslib.context(ca=pki["ca_peer"].crt, cert=pki["client"][0],
                                         key=pki["client"][1]), BAD_CERT)
    refused(m.host, 2380, tlslib.context(ca=pki["ca_client"].crt, cert=d / "infra0-peer.crt",
                                         key=d / "infra0-peer.key"), VERIFY_FAILED)
    answers(m.host, 2380, ctx_peer(pki))
    # each refusal by the member is logged the way etcd logs it
    wait_until(lambda: rejections(m) >= before + 6, 5, 0.05,
               "%s to log the rejected connections" % m.name)
    assert 'ServerName ' in m.stderr_text().split(REJECTED)[-1]


def test_guide_self_signed_cluster(members, pki):
    guide_hosts_free()
    ms = [new_guide_member(members, i, guide_tls_flags(i, pki), ctx_good(pki), pki)
          for i in range(3)]
    start_all(ms)

    ids = [member_id(["https://%s:2380" % h], TOKEN) for h in GUIDE_HOSTS]
    cid = cluster_id(ids)
    for i, m in enumerate(ms):
        h = m.client.ok("/v3/maintenance/status", {})["header"]
        assert (h["member_id"], h["cluster_id"]) == (str(ids[i]), str(cid))
    want = sorted(({"ID": str(ids[i]), "name": "infra%d" % i,
                    "peerURLs": ["https://%s:2380" % h], "clientURLs": ["https://%s:2379" % h]}
                   for i, h in enumerate(GUIDE_HOSTS)), key=lambda x: int(x["ID"]))
    wait_until(lambda: all(m.client.ok("/v3/cluster/member/list", {})["members"] == want
                           for m in ms), 10, 0.1, "every member to list all three")

    # a client with a certificate from the client CA writes and reads through every member
    for i, m in enumerate(ms):
        r = put(m, "tls/from%d" % i, "x%d" % i)
        assert r.status == 200, r
    for m in ms:
        for i in range(3):
            assert m.client.get_value("tls/from%d" % i) == b"x%d" % i

    for m in ms:
        check_client_refusals(m, pki)
    # the refusals changed nothing
    for m in ms:
        assert m.running()
        assert put(m, "tls/after", m.name).status == 200


def reconfigure(m, route, body, timeout=30):
    """A membership change, retried while etcd's strict reconfiguration check refuses it
    (every member must have been connected for 5 s)."""
    deadline = time.monotonic() + timeout
    while True:
        r = m.client.post("/v3/cluster/member/" + route, body, timeout=15)
        if r.status != 503 or time.monotonic() > deadline:
            return r
        time.sleep(0.5)


def infra3_join_flags(pki, peer, client):
    """The guide's TLS flags for infra3, added at runtime and joining with `existing`:
    peer and client are (certificate, key) paths."""
    url3 = "https://%s:2380" % INFRA3_HOST
    return ["--name", "infra3", "--initial-advertise-peer-urls", url3,
            "--listen-peer-urls", url3,
            "--listen-client-urls", "https://%s:2379" % INFRA3_HOST,
            "--advertise-client-urls", "https://%s:2379" % INFRA3_HOST,
            "--initial-cluster", GUIDE_CLUSTER + ",infra3=" + url3,
            "--initial-cluster-state", "existing",
            "--client-cert-auth", "--trusted-ca-file=%s/ca-client.crt" % pki["dir"],
            "--cert-file=%s" % client[0], "--key-file=%s" % client[1],
            "--peer-client-cert-auth", "--peer-trusted-ca-file=%s" % pki["ca_peer"].crt,
            "--peer-cert-file=%s" % peer[0], "--peer-key-file=%s" % peer[1]]


@pytest.mark.slow
def test_guide_peer_from_another_ca_cannot_join(members, pki):
    """infra3 is added with member add, then started with a peer certificate from a CA the
    others do not trust (it trusts theirs): it never joins, the cluster is unaffected,
    and it can be removed again."""
    guide_hosts_free()
    ms = [new_guide_member(members, i, guide_tls_flags(i, pki), ctx_good(pki), pki)
          for i in range(3)]
    start_all(ms)
    assert put(ms[0], "tls/before", "1").status == 200

    url3 = "https://%s:2380" % INFRA3_HOST
    r = reconfigure(ms[0], "add", {"peerURLs": [url3]})
    assert r.status == 200, r
    id3 = r.json["member"]["ID"]
    seen = [rejections(m) for m in ms]

    d = pki["dir"]
    args = infra3_join_flags(pki, pki["infra3_evil"],
                             ("%s/infra0-client.crt" % d, "%s/infra0-client.key" % d))
    m3 = members.new("infra3", plain=True, host=INFRA3_HOST, args=args)
    m3.client = tlslib.TlsClient(INFRA3_HOST, 2379, ctx_good(pki))
    m3.spawn()

    # the others refuse its certificate (and log it)
    wait_until(lambda: any(rejections(m) > seen[i] for i, m in enumerate(ms)), 20, 0.1,
               "a member to reject infra3's certificate")
    # it never joins: within 10 s it has exited (etcd 3.4: it cannot fetch the cluster
    # from its peers) or it is still not serving
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and m3.running():
        assert not m3.client.healthy(), "infra3 joined with an untrusted certificate"
        time.sleep(0.2)
    if not m3.running():
        assert m3.proc.returncode == 1, m3.stderr_tail()
        if IS_REFERENCE:
            assert "could not retrieve cluster information from the given URLs" in \
                m3.stderr_text()
    # the cluster is unaffected: three live members of four are a quorum
    for i, m in enumerate(ms):
        assert put(m, "tls/during%d" % i, "1", timeout=20).status == 200
        assert m.client.get_value("tls/before") == b"1"
    m3.stop()
    r = reconfigure(ms[1], "remove", {"ID": id3})
    assert r.status == 200, r
    for m in ms:
        wait_until(lambda m=m: len(m.client.ok("/v3/cluster/member/list", {})["members"]) == 3,
                   10, 0.1, "infra3 to be gone from %s's list" % m.name)
        assert put(m, "tls/after", m.name).status == 200


def test_guide_join_over_https(members, pki):
    """Runtime reconfiguration over TLS: infra3, added with member add and holding a peer
    certificate from the cluster's CA, fetches the membership from an https peer port
    (with its certificate as client certificate) and joins."""
    guide_hosts_free()
    ms = [new_guide_member(members, i, guide_tls_flags(i, pki), ctx_good(pki), pki)
          for i in range(3)]
    start_all(ms)
    assert put(ms[0], "tls/join-before", "1").status == 200
    url3 = "https://%s:2380" % INFRA3_HOST
    r = reconfigure(ms[0], "add", {"peerURLs": [url3]})
    assert r.status == 200, r
    args = infra3_join_flags(pki, pki["infra3_peer"], pki["infra3_client"])
    m3 = members.new("infra3", plain=True, host=INFRA3_HOST, args=args)
    m3.client = tlslib.TlsClient(INFRA3_HOST, 2379, ctx_good(pki))
    m3.spawn()
    m3.wait_healthy()
    assert m3.client.get_value("tls/join-before") == b"1"
    assert put(m3, "tls/join-after", "1").status == 200
    for m in ms:
        wait_until(lambda m=m: m.client.get_value("tls/join-after") == b"1", 10, 0.1,
                   "%s to read the write made through infra3" % m.name)
    names = {x.get("name") for x in m3.client.ok("/v3/cluster/member/list", {})["members"]}
    assert names == {"infra0", "infra1", "infra2", "infra3"}


@pytest.mark.slow
def test_guide_initial_member_from_another_ca(members, pki):
    """infra2 of the guide's initial cluster starts with a peer certificate from another CA:
    infra0 and infra1 form the cluster without it (two of three) and refuse it both ways;
    restarted with its own certificate, it joins."""
    guide_hosts_free()
    ctx = ctx_good(pki)
    evil_crt, evil_key = pki["infra2_evil"]
    ms = [new_guide_member(members, 0, guide_tls_flags(0, pki), ctx, pki),
          new_guide_member(members, 1, guide_tls_flags(1, pki), ctx, pki),
          new_guide_member(members, 2, guide_tls_flags(2, pki, evil_crt, evil_key), ctx, pki)]
    for m in ms:
        m.spawn()
    for m in ms[:2]:
        m.wait_healthy()
    wait_until(lambda: leader_of(ms[0]) and leader_of(ms[0]) == leader_of(ms[1]), 20, 0.1,
               "infra0 and infra1 to elect a leader")
    wait_until(lambda: rejections(ms[0]) > 0 and rejections(ms[1]) > 0, 20, 0.1,
               "infra0 and infra1 to reject infra2's certificate")
    assert put(ms[0], "tls/two", "2").status == 200
    # infra2 cannot get into the cluster: no leader, no data
    time.sleep(2)
    assert ms[2].running(), ms[2].stderr_tail()
    assert not ms[2].client.healthy(timeout=2)
    assert leader_of(ms[2]) is None

    ms[2].stop()
    ms[2].extra = guide_tls_flags(2, pki)
    ms[2].spawn()
    ms[2].wait_healthy()
    wait_until(lambda: ms[2].client.get_value("tls/two") == b"2", 20, 0.1,
               "infra2 to catch up once it has its own certificate")
    assert put(ms[2], "tls/three", "3").status == 200
    assert ms[0].client.get_value("tls/three") == b"3"


# ---------------------------------------------------------------- 2. the guide's auto TLS cluster

def auto_fixtures(m):
    return {side: (m.workdir / ("infra%s.etcd" % m.name[-1]) / "fixtures" / side)
            for side in ("client", "peer")}


def check_auto_fixture(d, host):
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700, oct(os.stat(d).st_mode)
    crt, key = d / "cert.pem", d / "key.pem"
    assert stat.S_IMODE(os.stat(crt).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN EC PRIVATE KEY-----")
    t = tlslib.cert_text(crt)
    assert "Subject: O = etcd\n" in t and "Issuer: O = etcd\n" in t, t
    assert "Version: 3 (0x2)" in t
    assert "NIST CURVE: P-521" in t and "ecdsa-with-SHA512" in t, t
    assert "TLS Web Server Authentication" in t
    assert "TLS Web Client Authentication" not in t
    assert "CA:FALSE" in t
    assert "Digital Signature, Key Encipherment" in t
    san = t.split("X509v3 Subject Alternative Name:")[1].splitlines()[1].strip()
    assert "IP Address:%s" % host in san.split(", "), san
    tlslib.openssl("verify", "-check_ss_sig", "-CAfile", crt, crt)
    # valid for one year from start-up
    nb = tlslib.openssl("x509", "-in", crt, "-noout", "-startdate").strip().split("=", 1)[1]
    na = tlslib.openssl("x509", "-in", crt, "-noout", "-enddate").strip().split("=", 1)[1]
    fmt = "%b %d %H:%M:%S %Y GMT"
    tb, ta = time.strptime(" ".join(nb.split()), fmt), time.strptime(" ".join(na.split()), fmt)
    assert (ta.tm_year, ta.tm_mon, ta.tm_mday, ta.tm_hour, ta.tm_min) == \
        (tb.tm_year + 1, tb.tm_mon, tb.tm_mday, tb.tm_hour, tb.tm_min), (nb, na)
    assert abs(time.mktime(tb) - time.mktime(time.gmtime())) < 3600 * 2
    return tlslib.cert_serial(crt)


def served_cert(host, port):
    """The DER certificate a TLS server presents (no verification)."""
    ctx = tlslib.context(verify=False)
    with socket.create_connection((host, port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname=host) as t:
            return t.getpeercert(binary_form=True)


def test_guide_auto_tls_cluster(members):
    guide_hosts_free()
    insecure = tlslib.context(verify=False)
    ms = [new_guide_member(members, i, guide_auto_flags(i), insecure) for i in range(3)]
    start_all(ms)
    ids = [member_id(["https://%s:2380" % h], TOKEN) for h in GUIDE_HOSTS]
    for i, m in enumerate(ms):
        h = m.client.ok("/v3/maintenance/status", {})["header"]
        assert h["member_id"] == str(ids[i]) and h["cluster_id"] == str(cluster_id(ids))
    # a client that skips verification writes and reads through every member
    for i, m in enumerate(ms):
        assert put(m, "auto/k%d" % i, "v%d" % i).status == 200
    for m in ms:
        for i in range(3):
            assert m.client.get_value("auto/k%d" % i) == b"v%d" % i
    # one that verifies (the system's trust store) refuses the server
    for m in ms:
        refused(m.host, 2379, tlslib.context(), VERIFY_FAILED)
        refused(m.host, 2380, tlslib.context(), VERIFY_FAILED)
    # no client certificate is required
    for m in ms:
        answers(m.host, 2380, insecure)

    serials = {}
    for m in ms:
        f = auto_fixtures(m)
        assert stat.S_IMODE(os.stat(f["client"].parent).st_mode) & 0o077 == 0
        sc, sp = check_auto_fixture(f["client"], m.host), check_auto_fixture(f["peer"], m.host)
        assert sc != sp, "the client and peer certificates are distinct"
        serials[m.name] = (sc, sp)
        # the served certificates are the files
        for side, port in (("client", 2379), ("peer", 2380)):
            pem = (f[side] / "cert.pem").read_text()
            assert served_cert(m.host, port) == ssl.PEM_cert_to_DER_cert(pem)
    assert len({s for pair in serials.values() for s in pair}) == 6

    # a restart reuses the files (same serials), and the cluster still works
    for m in ms:
        m.stop()
    start_all(ms)
    for m in ms:
        f = auto_fixtures(m)
        assert (tlslib.cert_serial(f["client"] / "cert.pem"),
                tlslib.cert_serial(f["peer"] / "cert.pem")) == serials[m.name]
        assert m.client.get_value("auto/k0") == b"v0"
    assert put(ms[2], "auto/after", "1").status == 200


# ---------------------------------------------------------------- 3. http and https at once

def test_http_and_https_client_listeners(members, tmp_path):
    h_http, h_https = etcdlib.fresh_host(), etcdlib.fresh_host()
    ca, srv, cli = one_ca(tmp_path, [h_https])
    ctx = tlslib.context(ca=ca.crt)
    m = single(members, "mixed", h_https,
               ["http://%s:2379" % h_http, "https://%s:2379" % h_https],
               "http://%s:2380" % h_https,
               ["--cert-file", str(srv[0]), "--key-file", str(srv[1])], ctx)
    m.start()
    plain = etcdlib.Client(h_http)
    assert plain.healthy()
    plain.put("mix/a", "over http")
    assert m.client.get_value("mix/a") == b"over http"
    m.client.put("mix/b", "over https")
    assert plain.get_value("mix/b") == b"over https"
    # no client-cert-auth: a client without a certificate is served
    answers(h_https, 2379, ctx)
    # each listener speaks only its own protocol
    refused(h_http, 2379, ctx, "")  # TLS to the http port: no handshake
    check_plain_http_refused(h_https, 2379)
    assert plain.healthy() and m.client.healthy()


def check_plain_http_refused(host, port):
    """Plain HTTP to an https port: etcd 3.4 closes the connection without an answer; a
    TLS alert before the close, or a 400, would also do, but never a served request."""
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(b"GET /version HTTP/1.1\r\nHost: %s\r\n\r\n" % host.encode())
        data = b""
        try:
            while len(data) < 65536:
                c = s.recv(4096)
                if not c:
                    break
                data += c
        except (ConnectionResetError, socket.timeout):
            pass
    ok = (data == b"" or data.startswith((b"HTTP/1.0 400", b"HTTP/1.1 400")) or
          (data[:1] == b"\x15" and len(data) <= 7 * 4))  # alert records only
    assert ok, data[:200]


# ---------------------------------------------------------------- 4. --cipher-suites

def test_cipher_suites(members, tmp_path):
    host = etcdlib.fresh_host()
    ca, srv, cli = one_ca(tmp_path, [host])
    m = single(members, "ciphers", host, ["https://%s:2379" % host], "https://%s:2380" % host,
               ["--cert-file", str(srv[0]), "--key-file", str(srv[1]),
                "--peer-cert-file", str(srv[0]), "--peer-key-file", str(srv[1]),
                "--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
               tlslib.context(ca=ca.crt))
    m.start()
    tls12 = ssl.TLSVersion.TLSv1_2
    for port in (2379, 2380):
        # TLS 1.2: only the listed suite
        answers(host, port, tlslib.context(ca=ca.crt, tls_max=tls12,
                                           ciphers="ECDHE-RSA-AES128-GCM-SHA256"))
        for other in ("ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"):
            refused(host, port, tlslib.context(ca=ca.crt, tls_max=tls12, ciphers=other),
                    "SSLV3_ALERT_HANDSHAKE_FAILURE")
        # --cipher-suites does not touch TLS 1.3 (Go's TLS 1.3 suites are not
        # configurable): a TLS 1.3 client is served as before
        v13 = ssl.TLSVersion.TLSv1_3
        answers(host, port, tlslib.context(ca=ca.crt, tls_min=v13, tls_max=v13))
    assert m.client.put("c/k", "v")


@pytest.mark.parametrize("flag", ["--peer-cert-allowed-cn", "--peer-cert-allowed-hostname"])
def test_peer_cert_allowed_cn_and_hostname(members, tmp_path, flag):
    """--peer-cert-allowed-cn admits only peer certificates with that common name,
    --peer-cert-allowed-hostname only those naming that host (in the SANs); both on top of
    the CA's signature."""
    host = etcdlib.fresh_host()
    ca, srv, cli = one_ca(tmp_path, [host])
    ok_args = {"--peer-cert-allowed-cn": dict(cn="member.example"),
               "--peer-cert-allowed-hostname": dict(cn="x", dns=["member.example"])}[flag]
    bad_args = {"--peer-cert-allowed-cn": dict(cn="intruder.example"),
                "--peer-cert-allowed-hostname": dict(cn="x", dns=["intruder.example"])}[flag]
    # the connection's own address in the SANs too: the peer port checks it (etcd's
    # checkCertSAN), and it would otherwise resolve the DNS names to compare
    good = ca.issue("allowed", eku=("clientAuth",), ips=["127.0.0.1"], **ok_args)
    bad = ca.issue("denied", eku=("clientAuth",), ips=["127.0.0.1"], **bad_args)
    m = single(members, "allowed", host, ["https://%s:2379" % host], "https://%s:2380" % host,
               ["--cert-file", str(srv[0]), "--key-file", str(srv[1]),
                "--peer-cert-file", str(srv[0]), "--peer-key-file", str(srv[1]),
                "--peer-client-cert-auth", "--peer-trusted-ca-file", str(ca.crt),
                flag, "member.example"],
               tlslib.context(ca=ca.crt))
    m.start()
    answers(host, 2380, tlslib.context(ca=ca.crt, cert=good[0], key=good[1]))
    before = rejections(m)
    err, line = tlslib.handshake(host, 2380, tlslib.context(ca=ca.crt, cert=bad[0], key=bad[1]))
    assert err is not None, "a peer certificate for another name was served: %r" % line
    wait_until(lambda: rejections(m) > before, 5, 0.05, "the refusal to be logged")
    # the client port is not concerned
    assert m.client.put("allowed/k", "v")


def test_tls_versions(members, tmp_path):
    """TLS 1.2 and 1.3 are served (default suites); TLS 1.0/1.1 are refused."""
    host = etcdlib.fresh_host()
    ca, srv, cli = one_ca(tmp_path, [host])
    m = single(members, "versions", host, ["https://%s:2379" % host], "https://%s:2380" % host,
               ["--cert-file", str(srv[0]), "--key-file", str(srv[1]),
                "--peer-cert-file", str(srv[0]), "--peer-key-file", str(srv[1])],
               tlslib.context(ca=ca.crt))
    m.start()
    for port in (2379, 2380):
        for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            c = tlslib.context(ca=ca.crt, tls_max=v, tls_min=v)
            answers(host, port, c)
        # without --cipher-suites, etcd serves Go's default TLS 1.2 suites
        for s in ("ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"):
            answers(host, port, tlslib.context(ca=ca.crt, tls_max=ssl.TLSVersion.TLSv1_2,
                                               ciphers=s))
        # TLS 1.0/1.1 (this machine's OpenSSL still offers them at security level 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old = tlslib.context(ca=ca.crt, tls_max=ssl.TLSVersion.TLSv1_1,
                                 tls_min=ssl.TLSVersion.TLSv1, ciphers="DEFAULT:@SECLEVEL=0")
        refused(host, port, old, "TLSV1_ALERT_PROTOCOL_VERSION")


# ---------------------------------------------------------------- 5. start-up errors

def error_cases():
    # (id, client URL scheme, peer URL scheme, flags, message) with {p} the pki dir
    # (relative to the working directory) and {h} the host; etcd 3.4 prints the message
    # after "C | etcdmain: " and exits 1.
    good = ["--cert-file", "{p}/server.crt", "--key-file", "{p}/server.key"]
    pgood = ["--peer-cert-file", "{p}/server.crt", "--peer-key-file", "{p}/server.key"]
    return [
        ("https-client-no-cert", "https", "http", [],
         "TLS key/cert (--cert-file, --key-file) must be provided for client url "
         "https://{h}:2379 with HTTPS scheme"),
        ("https-peer-no-cert", "http", "https", [],
         "cannot listen on TLS for {h}:2380: KeyFile and CertFile are not presented"),
        ("missing-cert", "https", "http",
         ["--cert-file", "{p}/nope.crt", "--key-file", "{p}/server.key"],
         "open {p}/nope.crt: no such file or directory"),
        ("missing-key", "https", "http",
         ["--cert-file", "{p}/server.crt", "--key-file", "{p}/nope.key"],
         "open {p}/nope.key: no such file or directory"),
        ("key-mismatch", "https", "http",
         ["--cert-file", "{p}/server.crt", "--key-file", "{p}/server2.key"],
         "tls: private key does not match public key"),
        ("key-type-mismatch", "https", "http",
         ["--cert-file", "{p}/server.crt", "--key-file", "{p}/client.key"],
         "tls: private key type does not match public key type"),
        ("cert-not-pem", "https", "http",
         ["--cert-file", "{p}/garbage.pem", "--key-file", "{p}/server.key"],
         "tls: failed to find any PEM data in certificate input"),
        ("key-not-pem", "https", "http",
         ["--cert-file", "{p}/server.crt", "--key-file", "{p}/garbage.pem"],
         "tls: failed to find any PEM data in key input"),
        ("missing-ca", "https", "http",
         good + ["--client-cert-auth", "--trusted-ca-file", "{p}/nope-ca.crt"],
         "open {p}/nope-ca.crt: no such file or directory"),
        ("unreadable-ca", "https", "http",
         good + ["--client-cert-auth", "--trusted-ca-file", "{p}"],
         "read {p}: is a directory"),
        ("unknown-cipher-suite", "https", "http", good + ["--cipher-suites", "FOO"],
         'unexpected TLS cipher suite "FOO"'),
        ("missing-peer-cert", "http", "https",
         ["--peer-cert-file", "{p}/nope.crt", "--peer-key-file", "{p}/server.key"],
         "open {p}/nope.crt: no such file or directory"),
        ("peer-key-mismatch", "http", "https",
         ["--peer-cert-file", "{p}/server.crt", "--peer-key-file", "{p}/server2.key"],
         "tls: private key does not match public key"),
        ("missing-peer-ca", "http", "https",
         pgood + ["--peer-client-cert-auth", "--peer-trusted-ca-file", "{p}/nope-ca.crt"],
         "open {p}/nope-ca.crt: no such file or directory"),
    ]


@pytest.mark.parametrize("case", error_cases(), ids=[c[0] for c in error_cases()])
def test_start_up_errors(tmp_path, case):
    _, cs, ps, flags, msg = case
    host = etcdlib.fresh_host()
    ca, srv, cli = one_ca(tmp_path, [host])
    ca.issue("server2", ips=[host])  # an RSA key like the server's, but another one
    (tmp_path / "pki" / "garbage.pem").write_text("garbage\n")
    p = "pki"
    args = ["--name", "bad", "--data-dir", "bad.etcd",
            "--listen-client-urls", "%s://%s:2379" % (cs, host),
            "--advertise-client-urls", "%s://%s:2379" % (cs, host),
            "--listen-peer-urls", "%s://%s:2380" % (ps, host),
            "--initial-advertise-peer-urls", "%s://%s:2380" % (ps, host),
            "--initial-cluster", "bad=%s://%s:2380" % (ps, host)]
    args += [f.format(p=p, h=host) for f in flags]
    t0 = time.monotonic()
    r = run_etcd(args, cwd=tmp_path, timeout=30)
    took = time.monotonic() - t0
    assert "[test harness: killed" not in r.stderr, r.stderr[-2000:]
    assert r.returncode == 1, r.stderr[-2000:]
    want = msg.format(p=p, h=host)
    assert want in r.stderr, "want %r in:\n%s" % (want, r.stderr[-2000:])
    assert r.stdout == ""
    assert took < 20, took
    # nothing left running: run_etcd waited for every holder of its pipes; the ports
    # are free again
    for port in (2379, 2380):
        assert etcdlib._port_free(host, port)


# ---------------------------------------------------------------- 6. hostile connections

def client_hello(host):
    """The bytes of a real TLS ClientHello (from an SSLObject that never gets an answer)."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    o = tlslib.context(verify=False).wrap_bio(inc, out, server_hostname=host)
    try:
        o.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def abort(s):
    """Close with a RST (SO_LINGER 0)."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()


def hostile_round(host, port, rng, hello):
    """One of each: random garbage, a TLS record header announcing 64 KiB then garbage, a
    ClientHello then RST, a ClientHello, the server's answer read in part, then RST, a
    truncated ClientHello then close."""
    kinds = []
    for kind in ("garbage", "bigrecord", "hello-rst", "hello-read-rst", "hello-half"):
        try:
            s = socket.create_connection((host, port), timeout=5)
        except OSError as e:
            raise AssertionError("%s:%d refused a connection: %r" % (host, port, e))
        try:
            if kind == "garbage":
                s.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096))))
            elif kind == "bigrecord":
                s.sendall(b"\x16\x03\x01\xff\xff" + bytes(rng.getrandbits(8) for _ in range(512)))
            elif kind == "hello-rst":
                s.sendall(hello)
            elif kind == "hello-read-rst":
                s.sendall(hello)
                s.recv(100)
            elif kind == "hello-half":
                s.sendall(hello[:len(hello) // 2])
                s.close()
                continue
        except OSError:
            pass  # the server may close first, which is fine
        abort(s)
        kinds.append(kind)
    return kinds


def test_hostile_connections(members, tmp_path):
    """Garbage, half-open connections, plain HTTP and aborted handshakes on the https
    client and peer ports: the member serves TLS clients throughout and after."""
    host = etcdlib.fresh_host()
    ca, srv, cli = one_ca(tmp_path, [host])
    good = tlslib.context(ca=ca.crt, cert=cli[0], key=cli[1])
    m = single(members, "hostile", host, ["https://%s:2379" % host], "https://%s:2380" % host,
               ["--cert-file", str(srv[0]), "--key-file", str(srv[1]),
                "--client-cert-auth", "--trusted-ca-file", str(ca.crt),
                "--peer-cert-file", str(srv[0]), "--peer-key-file", str(srv[1]),
                "--peer-client-cert-auth", "--peer-trusted-ca-file", str(ca.crt)], good)
    m.start()
    rng = random.Random(6)
    hello = client_hello(host)

    # half-open: connected, never a byte; held for the whole test
    held = []
    for port in (2379, 2380):
        for _ in range(8):
            held.append(socket.create_connection((host, port), timeout=5))
    # one that sent half a ClientHello and stopped
    for port in (2379, 2380):
        s = socket.create_connection((host, port), timeout=5)
        s.sendall(hello[:20])
        held.append(s)

    stop = threading.Event()
    errors = []
    rounds = [0]

    def attack():
        try:
            while not stop.is_set() and rounds[0] < 200:
                for port in (2379, 2380):
                    hostile_round(host, port, rng, hello)
                rounds[0] += 1
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    t = threading.Thread(target=attack, daemon=True)
    t0 = time.monotonic()
    t.start()
    worst, n = 0.0, 0
    try:
        while t.is_alive() and time.monotonic() - t0 < 60:
            a = time.monotonic()
            m.client.put("hostile/k", "v%d" % n)
            assert m.client.get_value("hostile/k") == b"v%d" % n
            answers(host, 2380, good)
            worst = max(worst, time.monotonic() - a)
            n += 1
            for port in (2379, 2380):
                check_plain_http_refused(host, port)
    finally:
        stop.set()
        t.join(30)
    assert not errors, errors
    assert rounds[0] >= 20, "only %d hostile rounds ran" % rounds[0]
    assert n >= 5
    assert worst < 5, "a good request took %.1fs during the attack" % worst

    # after: still serving, while the half-open connections are still held
    assert m.running()
    for i in range(20):
        m.client.put("hostile/after%d" % i, "x")
    answers(host, 2379, good)
    answers(host, 2380, good)
    refused(host, 2379, tlslib.context(ca=ca.crt), BAD_CERT)
    for s in held:
        s.close()
    assert m.client.get_value("hostile/after19") == b"x"
    assert REJECTED in m.stderr_text()


# ---------------------------------------------------------------- the peer port's SAN check

def test_peer_port_checks_the_ip_of_client_certificates(members, tmp_path):
    """etcd's peer listener also checks a client certificate's IP SANs against the address
    the connection comes from; the client port does not."""
    host, elsewhere = etcdlib.fresh_host(), etcdlib.fresh_host()
    ca = tlslib.CA(tmp_path / "pki", "ca")
    srv = ca.issue("server", ips=[host])
    pinned = ca.issue("pinned", ips=[elsewhere])  # a member certificate of another host
    ctx = tlslib.context(ca=ca.crt, cert=pinned[0], key=pinned[1])
    m = single(members, "san", host, ["https://%s:2379" % host], "https://%s:2380" % host,
               ["--cert-file", str(srv[0]), "--key-file", str(srv[1]),
                "--client-cert-auth", "--trusted-ca-file", str(ca.crt),
                "--peer-cert-file", str(srv[0]), "--peer-key-file", str(srv[1]),
                "--peer-client-cert-auth", "--peer-trusted-ca-file", str(ca.crt)], ctx)
    m.start()
    answers(host, 2379, ctx)  # any source address on the client port
    answers(host, 2380, ctx, source=elsewhere)  # from the certificate's own IP
    before = rejections(m)
    err, line = tlslib.handshake(host, 2380, ctx, source="127.0.0.1")
    assert err is not None, line  # refused: the certificate is not 127.0.0.1's
    wait_until(lambda: rejections(m) > before, 5, 0.05, "the rejection to be logged")
