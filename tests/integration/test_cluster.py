"""/v3/cluster/member/list and /v3/maintenance/status shapes; deterministic IDs (static.md)."""
from etcdlib import cluster_id, member_id


def test_member_list(shared_member):
    m = shared_member
    r = m.client.post("/v3/cluster/member/list", {})
    assert r.status == 200, r
    j = r.json
    assert set(j) == {"header", "members"}
    assert set(j["header"]) == {"cluster_id", "member_id", "raft_term"}  # no revision
    assert j["members"] == [{
        "ID": j["header"]["member_id"],
        "name": m.name,
        "peerURLs": ["http://%s:2380" % m.host],
        "clientURLs": ["http://%s:2379" % m.host],
    }]


def test_member_list_empty_body(shared_member):
    r = shared_member.client.post("/v3/cluster/member/list", b"")
    assert r.status == 200, r
    assert len(r.json["members"]) == 1


def test_ids_are_etcds(shared_member):
    m = shared_member
    h = m.client.ok("/v3/cluster/member/list", {})["header"]
    mid = member_id(["http://%s:2380" % m.host], "tok-" + m.host)
    assert h["member_id"] == str(mid)
    assert h["cluster_id"] == str(cluster_id([mid]))


def test_known_member_id():
    # the value static.md checked against etcd 3.4
    assert member_id(["http://127.0.2.10:2380"], "etcd-cluster-1") == 14288156331571396022


def test_status(shared_member):
    c = shared_member.client
    rev = c.revision()
    r = c.post("/v3/maintenance/status", {})
    assert r.status == 200, r
    j = r.json
    assert set(j) == {"header", "version", "dbSize", "leader", "raftIndex", "raftTerm",
                      "raftAppliedIndex", "dbSizeInUse"}
    assert j["version"] == "3.4.23"
    assert j["leader"] == j["header"]["member_id"]
    assert j["header"]["revision"] == str(rev)
    assert int(j["raftTerm"]) >= 1 and j["raftTerm"] == j["header"]["raft_term"]
    assert int(j["raftIndex"]) >= int(j["raftAppliedIndex"]) >= 1
    assert int(j["dbSize"]) > 0 and int(j["dbSizeInUse"]) > 0


def test_raft_index_advances_with_writes(shared_member):
    c = shared_member.client
    a = int(c.ok("/v3/maintenance/status", {})["raftIndex"])
    c.put("t/status/x", "1")
    c.put("t/status/x", "2")
    b = int(c.ok("/v3/maintenance/status", {})["raftIndex"])
    assert b >= a + 2


def test_fresh_member_is_at_revision_1(member):
    assert member.client.revision() == 1
    r = member.client.range("anything")
    assert r["header"]["revision"] == "1"
