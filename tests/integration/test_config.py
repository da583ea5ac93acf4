"""Configuration: defaults, ETCD_* variables, flag precedence, --version/--help, bad input,
the guide's error cases, and flags of features that come later."""
import os

import pytest

from etcdlib import IS_REFERENCE, Member, _port_free, fresh_host, member_id, run_etcd


def member_args(host, name="m", data_dir=None, token=None):
    a = ["--name", name,
         "--listen-client-urls", "http://%s:2379" % host,
         "--advertise-client-urls", "http://%s:2379" % host,
         "--listen-peer-urls", "http://%s:2380" % host,
         "--initial-advertise-peer-urls", "http://%s:2380" % host,
         "--initial-cluster", "%s=http://%s:2380" % (name, host)]
    if data_dir:
        a += ["--data-dir", str(data_dir)]
    if token:
        a += ["--initial-cluster-token", token]
    return a


def member_list(m):
    return m.client.ok("/v3/cluster/member/list", {})


def nothing_written(d):
    """The run left no data dir behind (neither given nor default)."""
    return [p for p in os.listdir(d) if p.endswith(".etcd") or p == "dd"] == []


# ------------------------------------------------------------------ informational flags

def test_version(tmp_path):
    p = run_etcd(["--version"], cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == "etcd Version: 3.4.23"
    assert nothing_written(tmp_path)


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(tmp_path, flag):
    p = run_etcd([flag], cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    text = p.stdout + p.stderr
    for f in ("--name", "--data-dir", "--listen-client-urls", "--advertise-client-urls",
              "--listen-peer-urls", "--initial-advertise-peer-urls", "--initial-cluster",
              "--initial-cluster-state", "--initial-cluster-token", "--max-request-bytes"):
        assert f in text, f
    assert nothing_written(tmp_path)


# ------------------------------------------------------------------ bad input

BAD = [
    # (id, args, words expected on stderr, etcd 3.4's exit code)
    ("unknown-flag", ["--foo"], ["foo"], 2),
    ("malformed-url", ["--listen-client-urls", "http//bad:2379"], ["http//bad:2379"], 2),
    ("bad-scheme", ["--listen-client-urls", "ftp://127.0.0.1:2379"], ["ftp://127.0.0.1:2379"], 2),
    ("bad-number", ["--snapshot-count", "abc"], ["abc"], 2),
    ("negative-number", ["--max-request-bytes", "-5"], ["-5"], 2),
    ("bad-bool", ["--enable-v2=maybe"], ["maybe"], 2),
    ("bad-state", ["--initial-cluster-state", "bogus"], ["bogus"], 2),
    ("hostname-listen-client", ["--listen-client-urls", "http://example.com:2379",
                                "--advertise-client-urls", "http://example.com:2379"],
     ["expected IP in URL for binding (http://example.com:2379)"], 1),
    ("hostname-listen-peer", ["--listen-peer-urls", "http://example.com:2380"],
     ["expected IP in URL for binding (http://example.com:2380)"], 1),
    ("election-vs-heartbeat", ["--heartbeat-interval", "300", "--election-timeout", "1000"],
     ["--election-timeout[1000ms] should be at least as 5 times as "
      "--heartbeat-interval[300ms]"], 1),
    ("listen-without-advertise", ["--listen-client-urls", "http://127.0.9.8:2379"],
     ["--advertise-client-urls is required when --listen-client-urls is set explicitly"], 1),
    ("positional-arg", ["extra-arg"], ["'extra-arg' is not a valid flag"], 1),
]


@pytest.mark.parametrize("args,words,etcd_rc", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_exits_before_writing(tmp_path, args, words, etcd_rc):
    p = run_etcd(["--data-dir", "dd"] + args, cwd=tmp_path, timeout=10)
    # Go's flag package exits 2 on a parse error; the project exits 1 for every bad input.
    assert p.returncode == (etcd_rc if IS_REFERENCE else 1), p.stderr
    assert p.stdout == ""
    for w in words:
        assert w in p.stderr
    assert not (tmp_path / "dd").exists()
    assert nothing_written(tmp_path)


# ------------------------------------------------------------------ variables and defaults

def test_etcd_variables(tmp_path):
    h = fresh_host()
    env = {
        "ETCD_NAME": "envname",
        "ETCD_DATA_DIR": str(tmp_path / "envdir"),
        "ETCD_LISTEN_CLIENT_URLS": "http://%s:2379" % h,
        "ETCD_ADVERTISE_CLIENT_URLS": "http://%s:2379" % h,
        "ETCD_LISTEN_PEER_URLS": "http://%s:2380" % h,
        "ETCD_INITIAL_ADVERTISE_PEER_URLS": "http://%s:2380" % h,
        "ETCD_INITIAL_CLUSTER": "envname=http://%s:2380" % h,
        "ETCD_INITIAL_CLUSTER_TOKEN": "env-token",
        "ETCD_INITIAL_CLUSTER_STATE": "new",
    }
    m = Member(tmp_path, name="env", host=h, plain=True, env=env)
    try:
        m.start()
        j = member_list(m)
        assert j["members"][0]["name"] == "envname"
        assert j["members"][0]["peerURLs"] == ["http://%s:2380" % h]
        assert (tmp_path / "envdir" / "member").is_dir()
        assert j["header"]["member_id"] == str(member_id(["http://%s:2380" % h], "env-token"))
    finally:
        m.stop()


def test_flag_and_variable_for_the_same_setting(tmp_path):
    h = fresh_host()
    m = Member(tmp_path, name="both", host=h, plain=True, env={"ETCD_NAME": "envname"},
               args=member_args(h, name="flagname", data_dir=tmp_path / "d"))
    try:
        if IS_REFERENCE:
            # etcd 3.4 refuses the combination outright
            m.spawn()
            m.proc.wait(10)
            assert m.proc.returncode == 1
            assert 'conflicting environment variable "ETCD_NAME" is shadowed by ' \
                   'corresponding command-line flag' in m.stderr_text()
        else:
            # ours: the flag wins (README)
            m.start()
            assert member_list(m)["members"][0]["name"] == "flagname"
    finally:
        m.stop()


def test_data_dir_defaults_to_name_dot_etcd(tmp_path):
    h = fresh_host()
    m = Member(tmp_path, name="nm", host=h, plain=True, args=member_args(h, name="infra9"))
    try:
        m.start()
        assert (tmp_path / "infra9.etcd" / "member").is_dir()
        if not IS_REFERENCE:
            st = os.stat(tmp_path / "infra9.etcd")
            assert st.st_mode & 0o777 == 0o700
    finally:
        m.stop()


@pytest.mark.default_ports
def test_defaults(tmp_path):
    if not (_port_free("127.0.0.1", 2379) and _port_free("127.0.0.1", 2380)):
        pytest.skip("127.0.0.1:2379/2380 are in use")
    m = Member(tmp_path, name="default", host="127.0.0.1", plain=True, args=[])
    try:
        m.start()
        j = member_list(m)
        assert j["members"] == [{"ID": j["header"]["member_id"], "name": "default",
                                 "peerURLs": ["http://localhost:2380"],
                                 "clientURLs": ["http://localhost:2379"]}]
        assert (tmp_path / "default.etcd" / "member").is_dir()
        assert j["header"]["member_id"] == str(member_id(["http://localhost:2380"],
                                                         "etcd-cluster"))
        assert m.client.put("k", "v")
    finally:
        m.stop()


def test_restart_ignores_initial_cluster_flags(tmp_path):
    h = fresh_host()
    m = Member(tmp_path, name="r", host=h, plain=True,
               args=member_args(h, name="r", data_dir=tmp_path / "d", token="first"))
    try:
        m.start()
        before = member_list(m)
        m.client.put("k", "v")
        m.stop()
        # a different token and a cluster that does not even list us: ignored on restart
        m.extra = member_args(h, name="r", data_dir=tmp_path / "d", token="second")
        m.extra[m.extra.index("--initial-cluster") + 1] = "other=http://127.0.0.9:2380"
        m.start()
        after = member_list(m)
        assert after["header"]["cluster_id"] == before["header"]["cluster_id"]
        assert after["header"]["member_id"] == before["header"]["member_id"]
        assert m.client.get_value("k") == b"v"
    finally:
        m.stop()


# ------------------------------------------------------------------ the guide's error cases

def guide_hosts():
    return [fresh_host() for _ in range(3)]


def test_guide_case1_not_listed(tmp_path):
    h0, h1, _ = guide_hosts()
    args = ["--name", "infra1", "--data-dir", "dd",
            "--initial-advertise-peer-urls", "http://%s:2380" % h1,
            # the guide's https here (no certificates) is its typo; etcd then fails earlier
            "--listen-peer-urls", "http://%s:2380" % h1,
            "--listen-client-urls", "http://%s:2379" % h1,
            "--advertise-client-urls", "http://%s:2379" % h1,
            "--initial-cluster", "infra0=http://%s:2380" % h0,
            "--initial-cluster-state", "new"]
    p = run_etcd(args, cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    if IS_REFERENCE:
        assert 'couldn\'t find local name "infra1" in the initial cluster configuration' \
            in p.stderr
    else:
        assert "etcd: infra1 not listed in the initial cluster config" in p.stderr.splitlines()
        assert not (tmp_path / "dd").exists()


@pytest.mark.ours_only
def test_guide_case1_verbatim(tmp_path):
    """The guide's command as written (https listen URL, no certificates): the guide's line."""
    h0, h1, _ = guide_hosts()
    args = ["--name", "infra1", "--initial-advertise-peer-urls", "http://%s:2380" % h1,
            "--listen-peer-urls", "https://%s:2380" % h1,
            "--listen-client-urls", "http://%s:2379,http://127.0.0.1:2379" % h1,
            "--advertise-client-urls", "http://%s:2379" % h1,
            "--initial-cluster", "infra0=http://%s:2380" % h0,
            "--initial-cluster-state", "new"]
    p = run_etcd(args, cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    assert "etcd: infra1 not listed in the initial cluster config" in p.stderr.splitlines()
    assert nothing_written(tmp_path)


def test_guide_case2_different_advertised_urls(tmp_path):
    h0, h1, h2 = guide_hosts()
    args = ["--name", "infra0", "--data-dir", "dd",
            "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
            "--listen-peer-urls", "http://%s:2380" % h0,
            "--listen-client-urls", "http://%s:2379" % h0,
            "--advertise-client-urls", "http://%s:2379" % h0,
            "--initial-cluster", "infra0=http://%s:2380,infra1=http://%s:2380,"
                                 "infra2=http://%s:2380" % (h0, h1, h2),
            "--initial-cluster-state=new"]
    p = run_etcd(args, cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    if IS_REFERENCE:
        assert "--initial-cluster has infra0=http://%s:2380 but missing from " \
               "--initial-advertise-peer-urls=http://127.0.0.1:2380" % h0 in p.stderr
    else:
        assert ("etcd: error setting up initial cluster: infra0 has different advertised URLs "
                "in the cluster and advertised peer URLs list") in p.stderr.splitlines()
        assert not (tmp_path / "dd").exists()


# ------------------------------------------------------------------ later features

LATER = [
    ("config-file", ["--config-file", "etcd.conf.yml"], "--config-file"),
]


@pytest.mark.ours_only
@pytest.mark.parametrize("extra,flag", [x[1:] for x in LATER], ids=[x[0] for x in LATER])
def test_later_features_are_refused(tmp_path, extra, flag):
    h = fresh_host()
    p = run_etcd(member_args(h, data_dir="dd") + extra, cwd=tmp_path, timeout=10)
    assert p.returncode == 1, p.stderr
    assert "not supported yet" in p.stderr
    assert flag in p.stderr
    assert not (tmp_path / "dd").exists()


@pytest.mark.ours_only
def test_unix_url_is_refused(tmp_path):
    h = fresh_host()
    args = member_args(h, data_dir="dd")
    args[args.index("--listen-client-urls") + 1] = "unixs://%s:2379" % h
    p = run_etcd(args, cwd=tmp_path, timeout=10)
    assert p.returncode == 1, p.stderr
    assert "unix URLs (in --listen-client-urls) are not supported yet" in p.stderr
    assert not (tmp_path / "dd").exists()


@pytest.mark.ours_only
def test_grpc_proxy_is_refused(tmp_path):
    p = run_etcd(["grpc-proxy", "start"], cwd=tmp_path, timeout=10)
    assert p.returncode == 1, p.stderr
    assert "etcd grpc-proxy is not supported yet" in p.stderr


def test_existing_state_without_other_members_fails(tmp_path):
    """Joining needs a running member to ask: an --initial-cluster of only this member
    has none, and etcd says so without trying anything."""
    h = fresh_host()
    p = run_etcd(member_args(h, data_dir="dd") + ["--initial-cluster-state", "existing"],
                 cwd=tmp_path, timeout=10)
    assert p.returncode == 1, p.stderr
    assert ("C | etcdmain: cannot fetch cluster info from peer urls: could not retrieve "
            "cluster information from the given URLs") in p.stderr
    assert "could not get cluster response" not in p.stderr
    # nothing that would make the next start a restart
    assert not (tmp_path / "dd" / "member" / "wal").exists()


def test_port_in_use(tmp_path, members):
    a = members.start("a")
    p = run_etcd(member_args(a.host, name="b", data_dir=tmp_path / "b"), cwd=tmp_path,
                 timeout=15)
    assert p.returncode == 1, p.stderr
    assert "bind: address already in use" in p.stderr
    assert a.client.healthy()
