"""Runtime reconfiguration through the JSON API (issue 5): member add, update, remove, promote
and their refusals, as etcd 3.4 answers them (docs/etcd-observed/membership.md). These
tests also pass against etcd 3.4 (ETCD_BIN=/usr/bin/etcd). Joining with
--initial-cluster-state existing and the procedures under load: test_reconfig.py."""
import hashlib
import struct
import time

import clusterlib
from etcdlib import wait_until

cluster = clusterlib.cluster  # the fixture

UNHEALTHY = "etcdserver: unhealthy cluster"


def post(m, route, body, timeout=15):
    return m.client.post("/v3/cluster/member/" + route, body, timeout=timeout)


def error_of(r):
    return (r.status, r.json.get("error"), r.json.get("code")) if r.json else (r.status, None, None)


def reconfigure(m, route, body, timeout=20):
    """A change, retried while the strict reconfiguration check refuses it: etcd waits
    until every member has been connected for 5 s."""
    deadline = time.monotonic() + timeout
    while True:
        r = post(m, route, body)
        if r.status != 503 or r.json.get("error") != UNHEALTHY or time.monotonic() > deadline:
            return r
        time.sleep(0.5)


def new_member_id(peer_urls, unix_s):
    """etcd's membership.NewMember as member add calls it: sha1 of the sorted peer URLs and
    the time in seconds (the cluster name it would also hash is "" there)."""
    b = "".join(sorted(peer_urls)).encode() + str(unix_s).encode()
    return struct.unpack(">Q", hashlib.sha1(b).digest()[:8])[0]


def listed(m):
    return m.client.ok("/v3/cluster/member/list", {})["members"]


def test_add_update_remove_a_member(cluster):
    c = cluster()
    m0 = c[0]
    before = listed(m0)
    t0 = int(time.time())
    r = reconfigure(m0, "add", {"peerURLs": ["http://127.0.9.9:2380"]})
    t1 = int(time.time())
    assert r.status == 200, r
    j = r.json
    assert set(j) == {"header", "member", "members"}
    assert set(j["header"]) == {"cluster_id", "member_id", "raft_term"}
    new = j["member"]
    assert set(new) == {"ID", "peerURLs"} and new["peerURLs"] == ["http://127.0.9.9:2380"]
    assert int(new["ID"]) in {new_member_id(["http://127.0.9.9:2380"], t)
                              for t in range(t0 - 1, t1 + 1)}
    assert sorted(j["members"], key=lambda x: int(x["ID"])) == \
        sorted(before + [new], key=lambda x: int(x["ID"]))
    # every member sees the change (it went through Raft)
    for m in c:
        wait_until(lambda m=m: new in listed(m), 5, 0.1, "%s to list the new member" % m.name)

    r = post(m0, "update", {"ID": new["ID"], "peerURLs": ["http://127.0.9.8:2380"]})
    assert r.status == 200, r
    assert {"ID": new["ID"], "peerURLs": ["http://127.0.9.8:2380"]} in r.json["members"]

    # three of four members up: a quorum, writes go on
    assert c[1].client.put("reconf/k", "v")

    r = post(m0, "remove", {"ID": new["ID"]})
    assert r.status == 200, r
    assert sorted(r.json["members"], key=lambda x: x["ID"]) == sorted(before, key=lambda x: x["ID"])
    assert error_of(post(m0, "remove", {"ID": new["ID"]})) == \
        (404, "etcdserver: member not found", 5)


def test_refusals(cluster):
    c = cluster()
    # the leader: a follower of ours cannot judge a promotion or the cluster's health and
    # lets the leader refuse (the client then times out); etcd asks the leader itself
    m0 = c.wait_leader()
    m1, m2 = [m for m in c if m is not m0]
    invalid = (400, "etcdserver: given member URLs are invalid", 3)
    assert error_of(post(m0, "add", {"peerURLs": ["bad"]})) == invalid
    assert error_of(post(m0, "add", {"peerURLs": []})) == invalid
    assert error_of(post(m0, "add", {})) == invalid
    not_found = (404, "etcdserver: member not found", 5)
    assert error_of(post(m0, "update", {"ID": "12345", "peerURLs": ["http://127.0.9.7:2380"]})) \
        == not_found
    assert error_of(post(m0, "remove", {"ID": "12345"})) == not_found
    assert error_of(post(m0, "promote", {"ID": "12345"})) == not_found
    assert error_of(post(m0, "promote", {"ID": str(m1.member_id)})) == \
        (412, "etcdserver: can only promote a learner member", 9)

    r = reconfigure(m0, "add", {"peerURLs": ["http://127.0.9.6:2380"], "isLearner": True})
    assert r.status == 200, r
    learner = r.json["member"]
    assert learner["isLearner"] is True
    assert error_of(post(m0, "add", {"peerURLs": ["http://127.0.9.5:2380"], "isLearner": True})) \
        == (412, "etcdserver: too many learner members in cluster", 9)
    # a learner that never started is not in sync with the leader
    assert error_of(post(m0, "promote", {"ID": learner["ID"]})) == \
        (412, "etcdserver: can only promote a learner member which is in sync with leader", 9)
    assert post(m0, "remove", {"ID": learner["ID"]}).status == 200

    # one member down: a change that needs it is refused (strict reconfiguration check)
    c.kill9(m2)
    time.sleep(1.5)  # the leader notices a silent member within a few heartbeats
    assert error_of(post(m0, "add", {"peerURLs": ["http://127.0.9.4:2380"]})) == \
        (503, UNHEALTHY, 14)
    assert error_of(post(m0, "remove", {"ID": str(m1.member_id)})) == (503, UNHEALTHY, 14)
    assert len(listed(m0)) == 3


NOT_STARTED = "etcdserver: re-configuration failed due to not enough started members"


def test_not_enough_started_members(cluster):
    """--strict-reconfig-check also wants a quorum of the voters after a change to have
    started (published their name): etcd's IsReadyToAdd/RemoveVotingMember."""
    c = cluster(n=1)
    m0 = c[0]
    # one started member of two may add (etcd's exception for restoring from one member)
    r = reconfigure(m0, "add", {"peerURLs": ["http://127.0.9.3:2380"]})
    assert r.status == 200, r
    # two voters, one started: a third voter would need two started members
    assert error_of(post(m0, "add", {"peerURLs": ["http://127.0.9.2:2380"]})) == \
        (500, NOT_STARTED, 2)
    # without m0, only the member that never started would be left
    assert error_of(post(m0, "remove", {"ID": str(m0.member_id)})) == (500, NOT_STARTED, 2)
    assert len(listed(m0)) == 2


def test_removed_member_stops(cluster):
    c = cluster()
    m0, m2 = c[0], c[2]
    r = reconfigure(m0, "remove", {"ID": str(m2.member_id)})
    assert r.status == 200, r
    assert str(m2.member_id) not in {x["ID"] for x in r.json["members"]}
    m2.proc.wait(20)
    assert m2.proc.returncode == 0  # etcd 3.4 exits 0 here
    err = m2.stderr_text()
    assert "the member has been permanently removed from the cluster" in err
    assert "the data-dir used by this member must be removed." in err
    # the other two go on as a cluster of two
    # (if m2 led, the others follow it until they elect one of themselves)
    c.wait_leader([c[0], c[1]], exclude=[m2])
    assert c[1].client.put("reconf/after", "ok")
    assert len(listed(c[1])) == 2
