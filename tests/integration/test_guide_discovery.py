"""The Clustering Guide's "etcd discovery" section, command by command, on loopback.

A discovery cluster (one member with --enable-v2 on 127.0.3.20, running ETCD_BIN; in
one test Debian's etcd 3.4 on 127.0.3.21) hosts a token made as the guide makes it
(curl -X PUT .../v2/keys/discovery/<token>/_config/size -d value=3); the guide's three
machines are 127.0.3.10-12 (127.0.3.13 for a fourth) with the guide's flags, except
that, as in test_guide_static.py, each listens on its own address only (three members
on one host cannot all listen on 127.0.0.1:2379). Then: the member list, the IDs
(sha1(peer URL + discovery URL)), the registrations in the token's directory,
ETCD_DISCOVERY, ETCD_DISCOVERY_PROXY through a recording HTTP proxy (127.0.3.22:3128),
retries when the discovery service fails, the error and warning cases with their exit
codes (etcd-facts/discovery.md), and our own `new?size=N` service (ours only).

Passes against etcd 3.4 (ETCD_BIN=/usr/bin/etcd) except where marked ours_only; the
"no size" case branches on the binary (the guide's line is ours: etcd 3.4 fails to print
it and prints the raw client error instead).
"""
import hashlib
import re
import secrets
import struct

import pytest

import etcdlib
from discoverylib import (REFERENCE_BIN, V2, ForwardProxy, event, go_json, hosts_free,
                          member_list, module_member, new_member, node, wait_exit, xindex)
from etcdlib import IS_REFERENCE, cluster_id, run_etcd, wait_until

HOSTS = ["127.0.3.10", "127.0.3.11", "127.0.3.12"]
EXTRA = "127.0.3.13"      # a fourth machine
DISC = "127.0.3.20"       # the discovery cluster (ETCD_BIN)
DISC_REF = "127.0.3.21"   # the discovery cluster of Debian's etcd 3.4 (one test)
PROXY = "127.0.3.22"      # ETCD_DISCOVERY_PROXY's proxy, port 3128

FULL_ERR = "failed to join discovery cluster (discovery: cluster is full)"
USED = ("discovery token %s was used, but failed to bootstrap the cluster.",
        "please generate a new discovery token and try to bootstrap again.")


@pytest.fixture(scope="module")
def disc(tmp_path_factory):
    """The discovery cluster: one member of ETCD_BIN with --enable-v2 (module scope)."""
    hosts_free([DISC])
    with module_member(tmp_path_factory.mktemp("disc"), "disc", DISC,
                       args=["--enable-v2"]) as m:
        yield m


@pytest.fixture
def guide_hosts_free():
    hosts_free(HOSTS + [EXTRA])


def new_token(host, size="3"):
    """The guide's custom discovery URL: PUT <token>/_config/size (curl -d value=3).
    Returns the discovery URL."""
    tok = secrets.token_hex(20)  # a 40-hex token, like the guide's
    key = "/discovery/%s/_config/size" % tok
    r = V2(host).put(key, {"value": str(size)})
    i = xindex(r)
    assert r.status == 201 and r.text == go_json(event("set", node(key, i, value=str(size)))), r
    return "http://%s:2379/v2/keys/discovery/%s" % (host, tok)


def token_of(url):
    return url.rsplit("/", 1)[1]


def id_of(peer_url, discovery_url):
    """etcd's member ID with discovery: sha1(peer URL + discovery URL), first 8 bytes."""
    return struct.unpack(">Q", hashlib.sha1((peer_url + discovery_url).encode())
                         .digest()[:8])[0]


def guide_flags(i, url=None, host=None, name=None):
    h = host or HOSTS[i]
    args = ["--name", name or "infra%d" % i,
            "--initial-advertise-peer-urls", "http://%s:2380" % h,
            "--listen-peer-urls", "http://%s:2380" % h,
            "--listen-client-urls", "http://%s:2379" % h,
            "--advertise-client-urls", "http://%s:2379" % h]
    if url:
        args += ["--discovery", url]
    return args


def guide_member(members, i, url=None, env=None, extra=(), host=None, name=None):
    """infra<i> with the guide's flags and its own data dir (absolute), not started."""
    wd = "infra%d" % i
    dd = members.tmp_path / wd / (wd + ".etcd")
    m = new_member(members, wd, plain=True, host=host or HOSTS[i], env=env, data_dir=dd,
                   args=guide_flags(i, url, host, name) + ["--data-dir", str(dd)] + list(extra))
    m.name_flag = name or wd
    return m


def registrations(disc_host, url):
    """{key: value} of the token's directory (as the discovery client reads it)."""
    r = V2(disc_host).get("/discovery/" + token_of(url), recursive="true")
    assert r.status == 200, r
    return {n["key"]: n.get("value") for n in r.json["node"].get("nodes", [])}


def check_bootstrapped(ms, url, disc_host):
    """The members formed the cluster the discovery URL describes (the guide's result)."""
    for m in ms:
        m.wait_healthy()
    ids = [id_of("http://%s:2380" % m.host, url) for m in ms]
    assert ids == [etcdlib.member_id(["http://%s:2380" % m.host], url) for m in ms]
    want = {mid: (m.name_flag, ["http://%s:2380" % m.host], ["http://%s:2379" % m.host])
            for mid, m in zip(ids, ms)}
    for m in ms:
        wait_until(lambda m=m: member_list(m) == want, 10, 0.1,
                   "%s to list the 3 members with their names and URLs" % m.name)
    for mid, m in zip(ids, ms):
        h = m.client.ok("/v3/maintenance/status", {})["header"]
        assert (int(h["member_id"]), int(h["cluster_id"])) == (mid, cluster_id(ids)), h
    # a put on one is read on another
    assert ms[0].client.put("disc/k", "v0")
    assert ms[-1].client.get_value("disc/k") == b"v0"
    assert ms[1].client.put("disc/k", "v1")
    assert ms[0].client.get_value("disc/k") == b"v1"
    # what each member registered: <token dir>/<hex ID> = name=peerURL
    tok = token_of(url)
    assert registrations(disc_host, url) == {
        "/discovery/%s/%x" % (tok, mid): "%s=http://%s:2380" % (m.name_flag, m.host)
        for mid, m in zip(ids, ms)}
    return ids


def start_guide_cluster(members, url, env=None, extra=()):
    """Spawn infra0-2 with the guide's flags; the URL by --discovery unless env gives
    ETCD_DISCOVERY."""
    flag = None if "ETCD_DISCOVERY" in (env or {}) else url
    ms = [guide_member(members, i, flag, env=env, extra=extra) for i in range(3)]
    for m in ms:
        m.spawn()
    return ms


# ------------------------------------------------------------------ the guide's path

def test_guide_custom_discovery_service(members, disc, guide_hosts_free):
    url = new_token(DISC)
    # the token's directory before anyone registers: only _config, which is hidden
    r = V2(DISC).get("/discovery/" + token_of(url))
    assert r.status == 200 and "nodes" not in r.json["node"] and r.json["node"]["dir"], r
    ms = start_guide_cluster(members, url)
    check_bootstrapped(ms, url, DISC)
    # the size is still there, unchanged
    r = V2(DISC).get("/discovery/%s/_config/size" % token_of(url))
    assert r.status == 200 and r.json["node"]["value"] == "3", r


def test_discovery_url_from_the_environment(members, disc, guide_hosts_free):
    url = new_token(DISC)
    ms = start_guide_cluster(members, url, env={"ETCD_DISCOVERY": url})
    check_bootstrapped(ms, url, DISC)
    for m in ms:
        assert "--discovery" not in m.extra
        assert "recognized and used environment variable ETCD_DISCOVERY=%s" % url \
            in m.stderr_text()


def test_discovery_proxy_from_the_environment(members, disc, guide_hosts_free):
    url = new_token(DISC)
    proxy = ForwardProxy(PROXY, 3128)
    try:
        ms = start_guide_cluster(members, url, env={"ETCD_DISCOVERY_PROXY": proxy.url})
        ids = check_bootstrapped(ms, url, DISC)
        seen = proxy.seen()
    finally:
        proxy.close()
    tok = token_of(url)
    # every request went through the proxy in absolute form, with the service as Host
    assert seen, "no request reached the proxy"
    for rq in seen:
        assert rq["target"].startswith("http://%s:2379/v2/keys/discovery/%s" % (DISC, tok)), rq
        assert rq["host"] == "%s:2379" % DISC, rq
    targets = [(rq["method"], rq["target"].split("?")[0]) for rq in seen]
    base = "http://%s:2379/v2/keys/discovery/%s" % (DISC, tok)
    assert ("GET", base + "/_config/size") in targets
    for mid, m in zip(ids, ms):
        assert ("PUT", "%s/%x" % (base, mid)) in targets, targets
    # the registrations themselves: form bodies, name=peerURL
    puts = {rq["target"].split("?")[0]: rq for rq in seen if rq["method"] == "PUT"}
    for mid, m in zip(ids, ms):
        rq = puts["%s/%x" % (base, mid)]
        assert "prevExist=false" in rq["target"], rq
        assert rq["body"] == ("value=infra%d%%3Dhttp%%3A%%2F%%2F%s%%3A2380"
                              % (ms.index(m), m.host)).encode(), rq


def test_discovery_service_of_etcd_34(members, guide_hosts_free, tmp_path):
    """Debian's etcd 3.4 (always /usr/bin/etcd here) hosts the token for ETCD_BIN's
    members: a token is read and written the same way by both."""
    hosts_free([DISC_REF])
    ref = new_member(members, "discref", binary=REFERENCE_BIN, host=DISC_REF,
                     args=["--enable-v2"]).start()
    url = new_token(ref.host)
    ms = start_guide_cluster(members, url)
    check_bootstrapped(ms, url, ref.host)


def test_retries_while_the_discovery_service_fails(members, disc, guide_hosts_free):
    """A flaky discovery service: the first two requests get their connection closed;
    the member retries with a backoff (2 s, then 4 s in etcd) and bootstraps."""
    url = new_token(DISC, size=1)
    proxy = ForwardProxy(PROXY, 3128, fail_first=2)
    try:
        m = guide_member(members, 0, url, extra=["--discovery-proxy", proxy.url])
        m.spawn()
        m.wait_healthy(30)
        seen = proxy.seen()
    finally:
        proxy.close()
    mid = id_of("http://%s:2380" % m.host, url)
    assert member_list(m) == {mid: ("infra0", ["http://%s:2380" % m.host],
                                    ["http://%s:2379" % m.host])}
    sizes = [rq for rq in seen if rq["target"].split("?")[0].endswith("/_config/size")]
    assert len(sizes) >= 3, seen
    gaps = [b["time"] - a["time"] for a, b in zip(sizes, sizes[1:3])]
    # etcd's backoff: 2 s, then 4 s
    assert gaps[0] >= 1.5 and gaps[1] >= 1.5 * gaps[0], "retried after %r s" % gaps
    t = m.stderr_text()
    assert 'I | discovery: using proxy "%s"' % proxy.url in t, t[-3000:]
    for s in (2, 4):
        assert ("I | discovery: cluster status check: error connecting to http://%s:2379, "
                "retrying in %ds" % (DISC, s)) in t, t[-3000:]


# ------------------------------------------------------------------ error and warning cases

def test_no_size_configured(members, disc, guide_hosts_free, tmp_path):
    """The guide: "the cluster doesn't have a size configuration value in <url>/_config",
    exit 1. etcd 3.4 fails to print that line (facts) and prints the raw client error."""
    tok = secrets.token_hex(20)
    url = "http://%s:2379/v2/keys/discovery/%s" % (DISC, tok)
    dd = tmp_path / "infra0.etcd"
    p = run_etcd(guide_flags(0, url) + ["--data-dir", str(dd)], cwd=tmp_path, timeout=30)
    assert p.returncode == 1, p.stderr
    if IS_REFERENCE:
        assert re.search(r"E \| etcdmain: failed to join discovery cluster \(100: Key not "
                         r"found \(/discovery/%s\) \[\d+\]\)" % tok, p.stderr), p.stderr
        assert "I | etcdmain: " + USED[0] % url in p.stderr, p.stderr
        assert "I | etcdmain: " + USED[1] in p.stderr, p.stderr
    else:
        want = "etcd: error: the cluster doesn\u2019t have a size configuration value in " \
               "%s/_config" % url
        assert any(line.endswith(want) for line in p.stderr.splitlines()), p.stderr
    # nothing registered, nothing bootstrapped
    r = V2(DISC).get("/discovery/" + tok)
    assert r.status == 404 and r.json["errorCode"] == 100, r
    assert not (dd / "member" / "wal").exists()


def test_size_not_a_number(members, disc, guide_hosts_free, tmp_path):
    url = new_token(DISC, size="three")
    p = run_etcd(guide_flags(0, url) + ["--data-dir", str(tmp_path / "infra0.etcd")],
                 cwd=tmp_path, timeout=30)
    assert p.returncode == 1, p.stderr
    assert "E | etcdmain: failed to join discovery cluster (discovery: size key is bad)" \
        in p.stderr, p.stderr
    assert registrations(DISC, url) == {}


def test_duplicate_names(members, disc, guide_hosts_free):
    """The guide: "Each member must have a different name flag specified ... Or discovery
    will fail due to duplicated name." All three register, then all three fail."""
    url = new_token(DISC)
    ms = [guide_member(members, i, url, name="infra1" if i == 2 else None) for i in range(3)]
    for m in ms:
        m.spawn()
    for m in ms:
        assert wait_exit(m, 30) == 1, m.stderr_tail(20)
    for m in ms:
        t = m.stderr_text()
        assert ("E | etcdmain: member with duplicated name has registered with discovery "
                "service token(%s)." % url) in t, m.stderr_tail(20)
        assert "E | etcdmain: please check (cURL) the discovery token for more information." \
            in t
        assert ("E | etcdmain: please do not reuse the discovery token and generate a new "
                "one to bootstrap the cluster.") in t
    assert len(registrations(DISC, url)) == 3


def _single(members, url, i=0, extra=()):
    """infra<i> bootstrapped alone from a size-1 token."""
    m = guide_member(members, i, url, extra=extra)
    m.spawn()
    m.wait_healthy()
    return m


def test_full_cluster_with_fallback_exit(members, disc, guide_hosts_free):
    url = new_token(DISC, size=1)
    _single(members, url)
    before = registrations(DISC, url)
    late = guide_member(members, 1, url, extra=["--discovery-fallback", "exit"])
    late.spawn()
    assert wait_exit(late, 30) == 1, late.stderr_tail(20)
    t = late.stderr_text()
    assert "E | etcdmain: " + FULL_ERR in t, late.stderr_tail(20)
    assert "I | etcdmain: " + USED[0] % url in t and "I | etcdmain: " + USED[1] in t
    # the full check comes before registering: nothing written
    assert registrations(DISC, url) == before
    assert not (late.data_dir / "member" / "wal").exists()


def test_full_cluster_falls_back_to_a_proxy_by_default(members, disc, guide_hosts_free):
    """--discovery-fallback defaults to proxy: the late member serves the cluster's v2 API
    as a proxy (etcd 3.4; facts section 4)."""
    url = new_token(DISC, size=1)
    first = _single(members, url, extra=["--enable-v2"])
    late = guide_member(members, 1, url)
    late.spawn()
    wait_until(lambda: _serves_v2(late), 30, 0.2, "the proxy to serve /v2/keys")
    t = late.stderr_text()
    assert "N | etcdmain: discovery cluster full, falling back to proxy" in t, t[-3000:]
    r = V2(first.host).put("/through", {"value": "proxy"})
    assert r.status == 201, r
    r2 = V2(late.host).get("/through")
    assert r2.status == 200 and r2.json == event("get", r.json["node"]), r2
    assert (late.data_dir / "proxy" / "cluster").exists()
    assert registrations(DISC, url) == {
        "/discovery/%s/%x" % (token_of(url), id_of("http://%s:2380" % HOSTS[0], url)):
        "infra0=http://%s:2380" % HOSTS[0]}


def _serves_v2(m):
    if m.proc.poll() is not None:
        raise AssertionError("%s exited with %s:\n%s" % (m.name, m.proc.returncode,
                                                         m.stderr_tail(20)))
    try:
        return V2(m.host).get("/", timeout=1).status == 200
    except OSError:
        return False


def test_restart_warns_and_ignores_the_token(members, disc, guide_hosts_free):
    """The guide's warning: the discovery URL is ignored on a restart (no request at all:
    the restart goes through a recording proxy that sees nothing)."""
    url = new_token(DISC, size=1)
    m = _single(members, url)
    assert m.client.put("disc/keep", "1")
    m.stop()
    proxy = ForwardProxy(PROXY, 3128)
    try:
        m.env = {"ETCD_DISCOVERY_PROXY": proxy.url}
        m.spawn()
        m.wait_healthy()
        seen = proxy.seen()
    finally:
        proxy.close()
    assert seen == [], seen
    t = m.stderr_text()
    t = t[t.rfind("==== start 2:"):]
    assert "discovery token ignored since a cluster has already been initialized. " \
           "Valid log found at" in t, t[-3000:]
    assert m.client.get_value("disc/keep") == b"1"
    mid = id_of("http://%s:2380" % m.host, url)
    assert int(m.client.ok("/v3/maintenance/status", {})["header"]["member_id"]) == mid


def test_previously_registered_after_a_wiped_data_dir(members, disc, guide_hosts_free):
    import shutil
    url = new_token(DISC, size=1)
    m = _single(members, url)
    m.stop()
    shutil.rmtree(m.data_dir)
    m.spawn()
    assert wait_exit(m, 30) == 1, m.stderr_tail(20)
    t = m.stderr_text()
    t = t[t.rfind("==== start 2:"):]
    assert ('E | etcdmain: member "infra0" has previously registered with discovery service '
            'token (%s).' % url) in t, t[-3000:]
    assert ("E | etcdmain: But etcd could not find valid cluster configuration in the given "
            "data dir (%s)." % m.data_dir) in t, t[-3000:]
    assert "I | etcdmain: Please check the given data dir path if the previous bootstrap " \
           "succeeded" in t, t[-3000:]
    assert "I | etcdmain: or use a new discovery token if the previous bootstrap failed." in t


MULTI = ('E | etcdmain: error verifying flags, multiple discovery or bootstrap flags are set. '
         'Choose one of "initial-cluster", "discovery" or "discovery-srv". '
         "See 'etcd --help'.")


@pytest.mark.parametrize("how", ["initial-cluster", "discovery-srv", "env"])
def test_multiple_bootstrap_flags(tmp_path, guide_hosts_free, how):
    url = "http://%s:2379/v2/keys/discovery/%s" % (DISC, secrets.token_hex(20))
    args = guide_flags(0) + ["--data-dir", str(tmp_path / "dd")]
    env = None
    if how == "initial-cluster":
        args += ["--discovery", url, "--initial-cluster", "infra0=http://%s:2380" % HOSTS[0]]
    elif how == "discovery-srv":
        args += ["--discovery", url, "--discovery-srv", "example.com"]
    else:
        env = {"ETCD_DISCOVERY": url}
        args += ["--initial-cluster", "infra0=http://%s:2380" % HOSTS[0]]
    p = run_etcd(args, cwd=tmp_path, env=env, timeout=20)
    assert p.returncode == 1, p.stderr
    assert MULTI in p.stderr, p.stderr
    assert not (tmp_path / "dd").exists()


def test_bad_discovery_fallback(tmp_path):
    url = "http://%s:2379/v2/keys/discovery/%s" % (DISC, secrets.token_hex(20))
    p = run_etcd(["--discovery", url, "--discovery-fallback", "foo",
                  "--data-dir", str(tmp_path / "dd")], cwd=tmp_path, timeout=20)
    # etcd exits 2 on a flag syntax error (Go's flag package); we exit 1 on every bad
    # input, as test_config.py checks for the other flags
    assert p.returncode == (2 if IS_REFERENCE else 1), p.stderr
    assert 'invalid value "foo" for flag -discovery-fallback: invalid value' in p.stderr, \
        p.stderr


# ------------------------------------------------------------------ our discovery service

@pytest.mark.ours_only
def test_our_new_endpoint(members, disc, guide_hosts_free):
    """Our own discovery service (etcd 3.4 answers 404): `curl <member>/new?size=3` makes a
    token directory with its size in the member's v2 store and returns its URL; without
    size the size is 3. Three members bootstrap through the URL it gave."""
    c = etcdlib.Client(DISC)
    r = c.get("/new?size=3")
    assert r.status == 200, r
    m = re.fullmatch(r"http://%s:2379/v2/keys/discovery/([0-9a-f]{32})\n" % re.escape(DISC),
                     r.text)
    assert m, r.text
    url = r.text.strip()
    size = V2(DISC).get("/discovery/%s/_config/size" % m.group(1))
    assert size.status == 200 and size.json["node"]["value"] == "3", size
    # a fresh token each time; the default size is 3
    r2 = c.get("/new")
    assert r2.status == 200 and r2.text != r.text, r2
    m2 = re.fullmatch(r"http://%s:2379/v2/keys/discovery/([0-9a-f]{32})\n" % re.escape(DISC),
                      r2.text)
    assert m2, r2.text
    size2 = V2(DISC).get("/discovery/%s/_config/size" % m2.group(1))
    assert size2.status == 200 and size2.json["node"]["value"] == "3", size2
    r5 = c.get("/new?size=5")
    m5 = re.fullmatch(r"http://%s:2379/v2/keys/discovery/([0-9a-f]{32})\n" % re.escape(DISC),
                      r5.text)
    assert r5.status == 200 and m5, r5
    assert V2(DISC).get("/discovery/%s/_config/size" % m5.group(1)).json["node"]["value"] \
        == "5"
    ms = start_guide_cluster(members, url)
    check_bootstrapped(ms, url, DISC)
