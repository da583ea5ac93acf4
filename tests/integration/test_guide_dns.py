"""The Clustering Guide's DNS discovery section: three members bootstrap from SRV records.

A real DNS server from Debian's packages (dnsmasq, run in the foreground on its own
loopback address, stopped by PID) serves the guide's records for example.com:
_etcd-server._tcp.example.com SRV 0 0 2380 infra{0,1,2}.example.com., and A records
pointing infra{0,1,2}.example.com at the guide's machines, 127.0.1.10-12. The members
run the guide's commands (the variant advertising IP addresses; the variant listening on
host names would need the system resolver to know example.com) and learn the resolver
from ETCDC_RESOLVER (README). Ours only: etcd 3.4 reads only the system's resolver, and
cannot bootstrap from plain _etcd-server records at all (etcd-io/etcd#11321, facts file).
"""
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

import clusterlib
import etcdlib
import tlslib
from etcdlib import member_id, run_etcd, wait_until

pytestmark = pytest.mark.ours_only

cluster = clusterlib.cluster  # the fixture

HOSTS = ["127.0.1.10", "127.0.1.11", "127.0.1.12"]
TOKEN = "etcd-cluster-1"
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


def _udp_port_free(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _dnsmasq(service, hosts=HOSTS, port=2380):
    """dnsmasq answering for example.com (and nothing else) on a fresh loopback host:
    SRV records of `service` for infra{0,1,2}.example.com:<port>, A records to hosts."""
    if not os.path.exists(DNSMASQ):
        pytest.fail("dnsmasq is missing (tests/install-deps.sh installs dnsmasq-base)")
    host = next(h for h in ("127.0.3.53", "127.0.3.54", "127.0.3.55")
                if _udp_port_free(h, 53))
    args = [DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
            "--no-hosts", "--bind-interfaces", "--listen-address=" + host, "--port=53",
            "--local=/com/", "--user=root", "--pid-file="]
    for i, h in enumerate(hosts):
        args.append("--srv-host=%s.example.com,infra%d.example.com,%d,0,0"
                    % (service, i, port))
        args.append("--host-record=infra%d.example.com,%s" % (i, h))
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def answers():
            # a query on the wire: dnsmasq is bound and serving
            q = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
                 b"\x06infra0\x07example\x03com\x00\x00\x01\x00\x01")
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(0.2)
            try:
                s.sendto(q, (host, 53))
                return s.recv(512)[:2] == b"\x12\x34"
            except OSError:
                return False
            finally:
                s.close()
        wait_until(answers, 10, 0.05, "dnsmasq to answer on %s" % host)
        yield host
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


@pytest.fixture
def dns():
    yield from _dnsmasq("_etcd-server._tcp")


@pytest.fixture
def dns_ssl():
    yield from _dnsmasq("_etcd-server-ssl._tcp")


def guide_flags(i):
    h = HOSTS[i]
    return ["--name", "infra%d" % i, "--discovery-srv", "example.com",
            "--initial-advertise-peer-urls", "http://%s:2380" % h,
            "--initial-cluster-token", TOKEN, "--initial-cluster-state", "new",
            "--advertise-client-urls", "http://%s:2379" % h,
            "--listen-client-urls", "http://%s:2379" % h,
            "--listen-peer-urls", "http://%s:2380" % h]


def need_guide_ports():
    for h in HOSTS:
        for port in (2379, 2380):
            if not etcdlib._port_free(h, port):
                pytest.fail("%s:%d is taken; the guide's tests need it" % (h, port),
                            pytrace=False)


def test_guide_dns_srv_bootstrap(members, dns):
    need_guide_ports()
    env = {"ETCDC_RESOLVER": dns}
    ms = [members.new("infra%d" % i, plain=True, host=HOSTS[i], env=env,
                      args=guide_flags(i) + ["--data-dir", "infra%d.etcd" % i])
          for i in range(3)]
    for m in ms:
        m.spawn()
    for m in ms:
        m.wait_healthy()
    # the initial cluster is the SRV records': host-name peer URLs, IDs from them and
    # the token (the member list shows them), names as the members publish them
    want = {member_id(["http://infra%d.example.com:2380" % i], TOKEN): i for i in range(3)}

    def listed():
        got = ms[0].client.ok("/v3/cluster/member/list", {})["members"]
        return {int(x["ID"]): (x.get("name"), x["peerURLs"]) for x in got}
    wait_until(lambda: listed() == {mid: ("infra%d" % i, ["http://infra%d.example.com:2380" % i])
                                    for mid, i in want.items()}, 10, 0.1,
               "every member to be listed with its name and SRV peer URL")
    for i, m in enumerate(ms):
        assert m.client.put("dns/k%d" % i, "v")
    for m in ms:
        wait_until(lambda m=m: m.client.get_value("dns/k2") == b"v", 10, 0.1,
                   "%s to read the writes" % m.name)
    for m in ms:
        assert "got bootstrap from DNS for etcd-server at infra" in m.stderr_text()


def lone_flags(name, domain, tmp_path):
    """A member on a fresh host that is in no SRV record, bootstrapping from domain."""
    h = etcdlib.fresh_host()
    return ["--name", name, "--discovery-srv", domain,
            "--initial-advertise-peer-urls", "http://%s:2380" % h,
            "--listen-peer-urls", "http://%s:2380" % h,
            "--listen-client-urls", "http://%s:2379" % h,
            "--advertise-client-urls", "http://%s:2379" % h,
            "--data-dir", str(tmp_path / "dd")]


def test_member_not_in_the_records(members, dns, tmp_path):
    args = lone_flags("infra9", "example.com", tmp_path)
    p = run_etcd(args, cwd=tmp_path, timeout=20, env={"ETCDC_RESOLVER": dns})
    assert p.returncode == 1, p.stderr
    assert ('C | etcdmain: error setting up initial cluster: cannot find local etcd member '
            '"infra9" in SRV records') in p.stderr, p.stderr
    assert not (tmp_path / "dd" / "member" / "wal").exists()


def test_unknown_domain(members, dns, tmp_path):
    args = lone_flags("infra0", "nowhere.com", tmp_path)
    t0 = time.monotonic()
    p = run_etcd(args, cwd=tmp_path, timeout=60, env={"ETCDC_RESOLVER": dns})
    assert p.returncode == 1, p.stderr
    assert "error querying DNS SRV records for _etcd-server" in p.stderr, p.stderr
    assert time.monotonic() - t0 < 30


def tls_members(members, dns_ssl, tmp_path, with_domain):
    """The guide's three members over https peers, bootstrapped from
    _etcd-server-ssl records, with certificates of a test CA that the members trust
    as their system roots (SSL_CERT_FILE) and no --peer-trusted-ca-file: then a
    peer's certificate must name the SRV domain itself (the guide's SAN rule)."""
    need_guide_ports()
    ca = tlslib.CA(tmp_path / "pki", "srv-ca")
    ms = []
    for i, h in enumerate(HOSTS):
        names = ["infra%d.example.com" % i] + (["example.com"] if with_domain else [])
        crt, key = ca.issue("infra%d" % i, ips=[h], dns=names)
        env = {"ETCDC_RESOLVER": dns_ssl, "SSL_CERT_FILE": str(ca.crt)}
        args = ["--name", "infra%d" % i, "--discovery-srv", "example.com",
                "--initial-advertise-peer-urls", "https://%s:2380" % h,
                "--initial-cluster-token", TOKEN, "--initial-cluster-state", "new",
                "--advertise-client-urls", "http://%s:2379" % h,
                "--listen-client-urls", "http://%s:2379" % h,
                "--listen-peer-urls", "https://%s:2380" % h,
                "--peer-cert-file", str(crt), "--peer-key-file", str(key),
                "--data-dir", "infra%d.etcd" % i]
        ms.append(members.new("infra%d" % i, plain=True, host=h, env=env, args=args))
    for m in ms:
        m.spawn()
    return ms


def test_srv_tls_peers_with_the_domain_in_their_certificates(members, dns_ssl, tmp_path):
    ms = tls_members(members, dns_ssl, tmp_path, with_domain=True)
    for m in ms:
        m.wait_healthy()
    got = ms[0].client.ok("/v3/cluster/member/list", {})["members"]
    assert sorted(u for x in got for u in x["peerURLs"]) == \
        ["https://infra%d.example.com:2380" % i for i in range(3)]
    assert ms[0].client.put("srv-tls", "v")
    wait_until(lambda: ms[2].client.get_value("srv-tls") == b"v", 10, 0.1,
               "infra2 to read the write")


def test_srv_tls_peers_without_the_domain_are_refused(members, dns_ssl, tmp_path):
    ms = tls_members(members, dns_ssl, tmp_path, with_domain=False)
    # certificates valid for their own host names and addresses only: no member
    # accepts another's, so no leader is ever elected
    time.sleep(4)
    for m in ms:
        assert not m.client.healthy(), m.stderr_text()
    assert any("not example.com" in m.stderr_text() for m in ms), ms[0].stderr_text()


def test_gateway_endpoints_from_client_srv_records(cluster, members):
    """`etcd gateway start --discovery-srv`: _etcd-client._tcp records name the members'
    client ports. Plain-http records are used only with --insecure-discovery (as etcd);
    without it the gateway falls back to --endpoints."""
    c = cluster(3)
    gen = _dnsmasq("_etcd-client._tcp", hosts=[m.host for m in c], port=2379)
    dns_host = next(gen)
    try:
        env = {"ETCDC_RESOLVER": dns_host}
        h = etcdlib.fresh_host()
        gw = members.new("gw", plain=True, host=h, env=env, args=[
            "gateway", "start", "--discovery-srv", "example.com", "--insecure-discovery",
            "--listen-addr", "%s:2379" % h]).start()
        seen = set()
        for i in range(3):
            r = gw.client.ok("/v3/kv/put", {"key": etcdlib.b64("srv%d" % i), "value": ""})
            seen.add(r["header"]["member_id"])
        assert len(seen) == 3, seen
        assert "discovered the cluster" in gw.stderr_text()
        assert "infra0.example.com.:2379" in gw.stderr_text()
        # without --insecure-discovery the http records are thrown away: --endpoints
        h2 = etcdlib.fresh_host()
        gw2 = members.new("gw2", plain=True, host=h2, env=env, args=[
            "gateway", "start", "--discovery-srv", "example.com",
            "--endpoints", "%s:2379" % c[1].host, "--listen-addr", "%s:2379" % h2]).start()
        for i in range(3):
            r = gw2.client.ok("/v3/kv/range", {"key": etcdlib.b64("srv0")})
            assert int(r["header"]["member_id"]) == c[1].member_id, r
        assert "is insecure" in gw2.stderr_text()
    finally:
        gen.close()


def test_guide_dns_srv_with_host_names(members):
    """The guide's first DNS variant: members advertise host names (infraN.example.com),
    which the SRV targets resolve to. They listen on the addresses (as etcd 3.4 too, a
    listen URL must be an IP), and reach each other by name through ETCDC_RESOLVER."""
    hosts = [etcdlib.fresh_host() for _ in range(3)]
    gen = _dnsmasq("_etcd-server._tcp", hosts=hosts)
    dns_host = next(gen)
    try:
        env = {"ETCDC_RESOLVER": dns_host}
        ms = []
        for i, h in enumerate(hosts):
            name = "infra%d.example.com" % i
            args = ["--name", "infra%d" % i, "--discovery-srv", "example.com",
                    "--initial-advertise-peer-urls", "http://%s:2380" % name,
                    "--initial-cluster-token", TOKEN, "--initial-cluster-state", "new",
                    "--advertise-client-urls", "http://%s:2379" % name,
                    "--listen-client-urls", "http://%s:2379" % h,
                    "--listen-peer-urls", "http://%s:2380" % h,
                    "--data-dir", "infra%d.etcd" % i]
            ms.append(members.new("infra%d" % i, plain=True, host=h, env=env, args=args))
        for m in ms:
            m.spawn()
        for m in ms:
            m.wait_healthy()
        got = ms[0].client.ok("/v3/cluster/member/list", {})["members"]
        assert sorted(u for x in got for u in x["peerURLs"]) == \
            ["http://infra%d.example.com:2380" % i for i in range(3)]
        assert ms[0].client.put("names", "v")
        wait_until(lambda: ms[2].client.get_value("names") == b"v", 10, 0.1,
                   "infra2 to read the write")
    finally:
        gen.close()
