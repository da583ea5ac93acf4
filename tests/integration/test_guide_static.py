"""The Clustering Guide's static section, command by command, on loopback.

The guide's three machines are 127.0.1.10, 127.0.1.11 and 127.0.1.12 with the guide's
ports (client 2379, peer 2380) and flags. One change: the guide also listens on
http://127.0.0.1:2379 on every machine, which three members on one host cannot all do,
so each member listens on its own address only. Also passes against etcd 3.4
(ETCD_BIN=/usr/bin/etcd) except where marked ours_only (the guide's error case 3, which
etcd 3.4 does not implement: static.md).
"""
import signal
import time

import pytest

import etcdlib
from etcdlib import IS_REFERENCE, b64, cluster_id, member_id, run_etcd, wait_until

HOSTS = ["127.0.1.10", "127.0.1.11", "127.0.1.12"]
TOKEN = "etcd-cluster-1"
INITIAL_CLUSTER = ",".join("infra%d=http://%s:2380" % (i, h) for i, h in enumerate(HOSTS))
ELECTION_S = 1.0  # etcd's default --election-timeout


def guide_flags(i, host=None, cluster=True):
    """The guide's command line for infra<i> (without --initial-cluster* if not cluster)."""
    h = host or HOSTS[i]
    args = ["--name", "infra%d" % i, "--initial-advertise-peer-urls", "http://%s:2380" % h,
            "--listen-peer-urls", "http://%s:2380" % h,
            "--listen-client-urls", "http://%s:2379" % h,
            "--advertise-client-urls", "http://%s:2379" % h]
    if cluster:
        args += ["--initial-cluster-token", TOKEN, "--initial-cluster", INITIAL_CLUSTER,
                 "--initial-cluster-state", "new"]
    return args


@pytest.fixture
def guide_hosts_free():
    for h in HOSTS + ["127.0.1.13"]:
        for port in (2379, 2380):
            if not etcdlib._port_free(h, port):
                pytest.fail("%s:%d is taken; the guide's tests need it" % (h, port),
                            pytrace=False)


def new_member(members, i, args, env=None):
    m = members.new("infra%d" % i, plain=True, host=HOSTS[i], env=env,
                    args=args + ["--data-dir", "infra%d.etcd" % i])
    return m


def start_all(ms, timeout=etcdlib.START_TIMEOUT):
    for m in ms:
        m.spawn()
    for m in ms:
        m.wait_healthy(timeout)
    wait_until(lambda: len({leader_of(m) for m in ms} - {None}) == 1 and
               None not in {leader_of(m) for m in ms}, timeout, 0.1,
               "the members to agree on a leader")


def leader_of(m):
    try:
        r = m.client.post("/v3/maintenance/status", {}, timeout=2)
    except OSError:
        return None
    if r.status != 200:
        return None
    return r.json.get("leader")


def member_of(ms, mid):
    for m in ms:
        if m.client.ok("/v3/maintenance/status", {})["header"]["member_id"] == mid:
            return m
    raise AssertionError("no member has ID %s" % mid)


def put(m, key, value, timeout=None):
    """A put that may fail: the Resp."""
    return m.client.post("/v3/kv/put", {"key": b64(key), "value": b64(value)},
                         timeout=timeout)


def guide_ids():
    ids = [member_id(["http://%s:2380" % h], TOKEN) for h in HOSTS]
    return ids, cluster_id(ids)


def check_guide_cluster(ms):
    """The guide's cluster works: IDs, member list, writes seen everywhere."""
    ids, cid = guide_ids()
    for i, m in enumerate(ms):
        h = m.client.ok("/v3/maintenance/status", {})["header"]
        assert h["member_id"] == str(ids[i])
        assert h["cluster_id"] == str(cid)

    # every member publishes its client URLs; the list is sorted by ID
    want = sorted(({"ID": str(ids[i]), "name": "infra%d" % i,
                    "peerURLs": ["http://%s:2380" % h], "clientURLs": ["http://%s:2379" % h]}
                   for i, h in enumerate(HOSTS)), key=lambda x: int(x["ID"]))

    def listed():
        return all(m.client.ok("/v3/cluster/member/list", {})["members"] == want for m in ms)
    wait_until(listed, 10, 0.1, "every member to list all three with their client URLs")

    r = put(ms[0], "guide/k", "v0")
    assert r.status == 200, r
    rev = r.json["header"]["revision"]
    for m in ms:
        j = m.client.ok("/v3/kv/range", {"key": b64("guide/k")})
        assert etcdlib.unb64(j["kvs"][0]["value"]) == b"v0" and j["header"]["revision"] == rev

    # a write on each member, read back everywhere (linearizable and serializable)
    for i, m in enumerate(ms):
        assert put(m, "guide/from%d" % i, "x%d" % i).status == 200
    for m in ms:
        for i in range(3):
            assert m.client.get_value("guide/from%d" % i) == b"x%d" % i
    for m in ms:
        def seen(m=m):
            j = m.client.ok("/v3/kv/range", {"key": b64("guide/from"),
                                              "range_end": b64(etcdlib.prefix_end("guide/from")),
                                              "serializable": True})
            return j.get("count") == "3"
        wait_until(seen, 5, 0.05, "a serializable read on %s to see all writes" % m.name)


def metric(m, line_start):
    """The value of the first /metrics sample whose line starts with line_start."""
    for line in m.client.get("/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_static_by_flags(members, guide_hosts_free):
    ms = [new_member(members, i, guide_flags(i)) for i in range(3)]
    start_all(ms)
    check_guide_cluster(ms)

    # /metrics: leadership and peer traffic, labelled with hex member IDs as etcd does
    ids, _ = guide_ids()
    lead_id = int(leader_of(ms[0]))
    lead = ms[ids.index(lead_id)]
    for m in ms:
        assert metric(m, "etcd_server_has_leader ") == 1
        assert metric(m, "etcd_server_is_leader ") == (1 if m is lead else 0)
        assert metric(m, "etcd_server_leader_changes_seen_total ") >= 1
    for i, m in enumerate(ms):
        if m is lead:
            continue
        assert metric(lead, 'etcd_network_peer_sent_bytes_total{To="%x"} ' % ids[i]) > 0
        assert metric(lead, 'etcd_network_peer_received_bytes_total{From="%x"} ' % ids[i]) > 0
        assert metric(m, 'etcd_network_peer_sent_bytes_total{To="%x"} ' % lead_id) > 0


def test_static_by_environment(members, guide_hosts_free):
    env = {"ETCD_INITIAL_CLUSTER": INITIAL_CLUSTER, "ETCD_INITIAL_CLUSTER_STATE": "new",
           "ETCD_INITIAL_CLUSTER_TOKEN": TOKEN}
    ms = [new_member(members, i, guide_flags(i, cluster=False), env=env) for i in range(3)]
    start_all(ms)
    check_guide_cluster(ms)


def test_restart_ignores_initial_cluster_flags(members, guide_hosts_free):
    """The guide: --initial-cluster* are ignored on later runs; remove or change them."""
    ms = [new_member(members, i, guide_flags(i)) for i in range(3)]
    start_all(ms)
    ids, cid = guide_ids()
    assert put(ms[1], "guide/keep", "1").status == 200
    for m in ms:
        m.stop()
    # infra0: flags removed; infra1: a bogus cluster without it; infra2: another token
    ms[0].extra = guide_flags(0, cluster=False) + ["--data-dir", "infra0.etcd"]
    ms[1].extra = guide_flags(1, cluster=False) + [
        "--initial-cluster", "infra9=http://127.0.1.19:2380", "--initial-cluster-state", "new",
        "--data-dir", "infra1.etcd"]
    ms[2].extra = guide_flags(2, cluster=False) + [
        "--initial-cluster-token", "another", "--initial-cluster", INITIAL_CLUSTER,
        "--data-dir", "infra2.etcd"]
    start_all(ms)
    for i, m in enumerate(ms):
        h = m.client.ok("/v3/maintenance/status", {})["header"]
        assert (h["member_id"], h["cluster_id"]) == (str(ids[i]), str(cid))
        assert m.client.get_value("guide/keep") == b"1"


def test_quorum_loss_and_return(members, guide_hosts_free):
    ms = [new_member(members, i, guide_flags(i)) for i in range(3)]
    start_all(ms)
    assert put(ms[0], "guide/q", "1").status == 200
    ms[1].kill9()
    # one member down: the other two still have a quorum
    wait_until(lambda: put(ms[0], "guide/q", "2").status == 200, 10 * ELECTION_S, 0.1,
               "a write with two of three members")
    ms[2].kill9()
    # no quorum: /health says so at once (static.md), writes are not acknowledged
    wait_until(lambda: ms[0].client.get("/health", timeout=5).status == 503,
               10 * ELECTION_S, 0.1, "/health to report no leader")
    r = ms[0].client.get("/health", timeout=5)
    assert (r.status, r.body) == (503, b'{"health":"false"}\n')
    st = ms[0].client.ok("/v3/maintenance/status", {})
    assert "leader" not in st and st["errors"] == ["etcdserver: no leader"]
    r = put(ms[0], "guide/q", "3", timeout=20)
    assert r.status != 200, r
    # the members come back; nothing acknowledged is lost, the refused write did nothing
    ms[1].spawn()
    ms[2].spawn()
    for m in ms:
        m.wait_healthy()
    for m in ms:
        wait_until(lambda m=m: m.client.get_value("guide/q") == b"2", 10, 0.1,
                   "%s to read the last acknowledged write" % m.name)


def test_sigterm_of_the_leader_hands_leadership_over(members, guide_hosts_free):
    ms = [new_member(members, i, guide_flags(i)) for i in range(3)]
    start_all(ms)
    lead_id = leader_of(ms[0])
    lead = member_of(ms, lead_id)
    others = [m for m in ms if m is not lead]
    assert put(lead, "guide/t", "before").status == 200
    t0 = time.monotonic()
    rc = lead.stop(signal.SIGTERM)
    stopped = time.monotonic() - t0
    if IS_REFERENCE:
        assert rc == -signal.SIGTERM  # etcd 3.4 re-raises the signal (static.md)
    else:
        assert rc == 0, lead.stderr_tail()
        assert "leadership transfer" in lead.stderr_text()
    assert stopped < 10, stopped
    # the others have a leader at once (no election timeout to wait out)
    new = leader_of(others[0])
    assert new and new != lead_id and new == leader_of(others[1])
    assert others[0].client.get_value("guide/t") == b"before"
    assert put(others[1], "guide/t", "after").status == 200
    lead.spawn()
    lead.wait_healthy()
    wait_until(lambda: lead.client.get_value("guide/t") == b"after", 10, 0.1,
               "the restarted member to catch up")


@pytest.mark.ours_only
def test_case3_conflicting_cluster_id(members, guide_hosts_free, tmp_path):
    """The guide's third error case: infra3 with another initial cluster exits 1."""
    ms = [new_member(members, i, guide_flags(i)) for i in range(3)]
    start_all(ms)
    ids, cid = guide_ids()
    h3 = "127.0.1.13"
    args = ["--name", "infra3", "--initial-advertise-peer-urls", "http://%s:2380" % h3,
            "--listen-peer-urls", "http://%s:2380" % h3,
            "--listen-client-urls", "http://%s:2379" % h3,
            "--advertise-client-urls", "http://%s:2379" % h3,
            "--initial-cluster", "infra0=http://%s:2380,infra1=http://%s:2380,"
                                 "infra3=http://%s:2380" % (HOSTS[0], HOSTS[1], h3),
            "--initial-cluster-state=new"]
    p = run_etcd(args, cwd=tmp_path, timeout=30)
    assert p.returncode == 1, p.stderr
    # the default token applies: infra3's view gives other IDs than the real cluster's
    ids3 = [member_id(["http://%s:2380" % h], "etcd-cluster") for h in (HOSTS[0], HOSTS[1], h3)]
    want = "etcd: conflicting cluster ID to the target cluster (%016x != %016x). Exiting." % (
        cid, cluster_id(ids3))
    assert want in p.stderr.splitlines(), p.stderr
    # the cluster is unchanged
    for i, m in enumerate(ms):
        h = m.client.ok("/v3/maintenance/status", {})["header"]
        assert h["cluster_id"] == str(cid)
        assert len(m.client.ok("/v3/cluster/member/list", {})["members"]) == 3
    assert put(ms[0], "guide/after3", "ok").status == 200
