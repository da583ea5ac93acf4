"""Runtime reconfiguration as etcd's guide has it, through the real processes (issue 5,
parts 3 and 4): members joining with --initial-cluster-state existing and the
--initial-cluster that member add's answer gives, growing and shrinking a cluster under a
writer checked for linearizability and lost writes, replacing a dead member, a learner
catching up by snapshot on 100 MiB and promoted, moving a peer URL, removing the leader,
the refused joins, a removed member restarting, and the peer port's /members.

These tests describe etcd 3.4 (docs/etcd-observed/join.md, membership.md) and pass
against it (ETCD_BIN=/usr/bin/etcd). Membership changes go through clusterlib's Cluster
(add_member, remove_member, promote, update_peer_host), which waits out etcd's strict
reconfiguration check (a change is refused with 503 "unhealthy cluster" until every
voter has been connected for 5 s): that wait, not the work, is most of these tests' time.
"""
import json
import time

import clusterlib
import linearizability
from clusterlib import (PEER_PORT, Workload, bulk_put, check_history,
                        initial_cluster_from)
from etcdlib import IS_REFERENCE, b64, fresh_host, unb64, wait_until

cluster = clusterlib.cluster  # the fixture

REMOVED = "the member has been permanently removed from the cluster"
LEARNER_RPC = (503, "etcdserver: rpc not supported for learner", 14)


def listed(m):
    return m.client.ok("/v3/cluster/member/list", {})["members"]


def error_of(r):
    j = r.json if isinstance(r.json, dict) else {}
    return r.status, j.get("error"), j.get("code")


def since_last_start(m):
    """m's stderr written since its latest start (Member marks each start)."""
    t = m.stderr_text()
    return t[t.rfind("==== start %d:" % m.starts):]


def serves_value(m, key, value, serializable=True):
    j = m.client.range(key, serializable=serializable)
    return bool(j.get("kvs")) and unb64(j["kvs"][0]["value"]) == value


# ------------------------------------------------------------------ 1

def test_grow_1_3_5_then_shrink_to_3_under_load(cluster):
    c = cluster(n=1)
    rec = linearizability.Recorder()
    w = Workload(c, rec, clients=4).start()
    try:
        w.wait_acked(20, 20, "20 acknowledged puts on the single member")
        for size in (2, 3, 4, 5):
            # 1 -> 2 loses the quorum until the new member starts (etcd does the same)
            m = c.add_member()
            assert len(m.added["members"]) == size
            c.wait_leader()
            w.wait_acked(10, 30, "writes to go on with %d members" % size)
            wait_until(lambda: len(listed(m)) == size, 10, 0.1,
                       "%s to list %d members" % (m.name, size))
        lead = c.wait_leader()
        for victim in [x for x in c if x is not lead][:2]:
            r, rc = c.remove_member(victim, via=lead)
            assert rc == 0, "%s exited with %s" % (victim.name, rc)
            assert REMOVED in victim.stderr_text()
            assert str(victim.member_id) not in {x["ID"] for x in r.json["members"]}
            lead = c.wait_leader(exclude=[victim])
            w.wait_acked(10, 30, "writes to go on after removing %s" % victim.name)
    finally:
        w.stop()
    assert len(c) == 3 and all(m.running() for m in c)
    for m in c:
        assert sorted(int(x["ID"]) for x in listed(m)) == sorted(c.ids), m.name
    c.wait_converged(timeout=20)
    final = w.final_reads()
    n, acked = check_history(rec, final)
    print("1: %d operations, %d puts acknowledged" % (n, acked))


# ------------------------------------------------------------------ 2

def test_replace_dead_member(cluster):
    c = cluster(n=3)
    rec = linearizability.Recorder()
    w = Workload(c, rec, clients=3).start()
    try:
        for i in range(20):
            c[i % 3].client.put("rep/before/%02d" % i, "b%d" % i)
        w.wait_acked(20, 20, "20 acknowledged puts")
        lead = c.wait_leader()
        dead = [m for m in c if m is not lead][0]
        c.kill9(dead)
        for i in range(20):
            c.others(dead)[i % 2].client.put("rep/during/%02d" % i, "d%d" % i)
        # a member that is down may be removed (it is not part of the active quorum)
        r, rc = c.remove_member(dead)
        assert rc is None and len(r.json["members"]) == 2
        new = c.add_member()
        assert new.member_id != dead.member_id
        c.wait_leader()
        w.wait_acked(20, 30, "writes to go on with the new member")
    finally:
        w.stop()
    rev, digest, count = c.wait_converged(timeout=30)
    for i in range(20):
        assert serves_value(new, "rep/before/%02d" % i, b"b%d" % i)
        assert serves_value(new, "rep/during/%02d" % i, b"d%d" % i)
    assert c.digest(new, serializable=False) == (rev, digest, count)
    assert sorted(int(x["ID"]) for x in listed(new)) == sorted(c.ids)
    final = w.final_reads()
    check_history(rec, final)


# ------------------------------------------------------------------ 3

BIG_VALUES = 400            # 400 x 256 KiB = 100 MiB (etcd's request limit: 1.5 MiB)
BIG_SIZE = 256 * 1024
SNAPSHOT_COUNT = 100
CATCH_UP_ENTRIES = 5000     # etcd 3.4 (and raftd) keep this many entries after a snapshot
SMALL_VALUES = CATCH_UP_ENTRIES + 3 * SNAPSHOT_COUNT


def test_learner_catches_up_100mib_then_promote(cluster):
    # A small --snapshot-count makes the leader snapshot and compact its log often, and
    # CATCH_UP_ENTRIES small writes after the big ones push the compaction point past the
    # big writes: the log no longer holds what the learner (starting empty) needs, so it
    # catches up by a snapshot of the whole 100 MiB store rather than by log replay.
    c = cluster(n=1, args=["--snapshot-count", str(SNAPSHOT_COUNT)])
    lead = c[0]
    block = bytes(range(256)) * (BIG_SIZE // 256)
    big = [("big/%03d" % i, b"%03d" % i + block[3:]) for i in range(BIG_VALUES)]
    assert bulk_put(lead.host, big, threads=4, timeout=30) == BIG_VALUES
    del big
    small = [("small/%05d" % i, "s%d" % i) for i in range(SMALL_VALUES)]
    assert bulk_put(lead.host, small, threads=8) == SMALL_VALUES

    learner = c.add_member(learner=True, start=False)
    assert learner.added["member"]["isLearner"] is True
    # adding a learner does not change the quorum
    assert c.leader() is lead and lead.client.put("l/while-added", "1")
    learner.spawn()
    learner.wait_healthy()
    st = c.status(learner)
    assert st and st.get("isLearner") is True, st
    assert error_of(learner.client.post("/v3/kv/range", {"key": b64("big/000")})) == \
        LEARNER_RPC
    assert error_of(learner.client.post("/v3/kv/put", {"key": b64("l/x"), "value": b64("1")})) \
        == LEARNER_RPC
    r = learner.client.post("/v3/kv/range", {"key": b64("big/000"), "serializable": True})
    assert r.status == 200, r

    t0 = time.monotonic()
    r, refusals = c.promote(learner, timeout=40)
    took = time.monotonic() - t0
    assert r.status == 200, r
    promoted = [x for x in r.json["members"] if int(x["ID"]) == learner.member_id]
    assert promoted and "isLearner" not in promoted[0], r.json
    wait_until(lambda: c.status(learner) and not c.status(learner).get("isLearner"), 10,
               0.1, "the promoted member to know it votes")
    c.wait_leader()
    assert learner.client.get_value("big/399")[:3] == b"399"
    # pages of 100 keys: 25 MiB answers (ours refuse one over 63 MiB)
    rev, digest, count = c.wait_converged(timeout=30, page=100)
    assert count == BIG_VALUES + SMALL_VALUES + 1
    assert c.digest(learner, serializable=False, page=100) == (rev, digest, count)
    if IS_REFERENCE:
        # etcd's learner logs the snapshot it applied: the test does what it says
        assert "applied incoming snapshot" in learner.stderr_text(), learner.stderr_tail()
    print("3: promoted %.2f s after the first promote; %d not-in-sync answers before"
          % (took, len(refusals)))


# ------------------------------------------------------------------ 4

def test_update_peer_url(cluster):
    c = cluster(n=3)
    lead = c.wait_leader()
    m = [x for x in c if x is not lead][0]
    old_url = "http://%s:%d" % (m.peer_host, PEER_PORT)
    r = c.update_peer_host(m, via=lead)
    new_url = "http://%s:%d" % (m.peer_host, PEER_PORT)
    assert new_url != old_url
    mine = [x for x in r.json["members"] if int(x["ID"]) == m.member_id]
    assert mine and mine[0]["peerURLs"] == [new_url], r.json
    c.restart(m)  # same data dir, listening on (and advertising) the new peer URL
    c.wait_leader()
    other, third = [x for x in c if x is not m]
    rev = int(other.client.put("upd/k", "v1")["header"]["revision"])
    wait_until(lambda: serves_value(m, "upd/k", b"v1"), 10, 0.05,
               "the write through %s on %s" % (other.name, m.name))
    j = m.client.range("upd/k")
    assert unb64(j["kvs"][0]["value"]) == b"v1" and int(j["header"]["revision"]) >= rev
    for x in c:
        urls = {int(e["ID"]): e["peerURLs"] for e in listed(x)}
        assert urls[m.member_id] == [new_url], (x.name, urls)
    # it is a working voter on the new URL: with the third member stopped, a write
    # commits only if it appends too
    c.stop(third)
    assert c.wait_leader(among=[other, m]).client.put("upd/after", "v2")
    c.wait_converged(ms=[other, m], timeout=10)
    assert serves_value(m, "upd/after", b"v2")


# ------------------------------------------------------------------ 5

def test_remove_leader(cluster):
    c = cluster(n=3)
    rec = linearizability.Recorder()
    w = Workload(c, rec, clients=4).start()
    try:
        w.wait_acked(20, 20, "20 acknowledged puts")
        old = c.wait_leader()
        t0 = time.monotonic()
        r, rc = c.remove_member(old, via=old)
        t1 = time.monotonic()
        assert str(old.member_id) not in {x["ID"] for x in r.json["members"]}
        assert rc == 0, "the removed leader exited with %s" % rc
        assert REMOVED in old.stderr_text()
        new = c.wait_leader(exclude=[old])
        t2 = time.monotonic()
        assert new is not old
        w.wait_acked(20, 30, "writes to go on under %s" % new.name)
        t3 = time.monotonic()
    finally:
        w.stop()
    for m in c:
        assert sorted(int(x["ID"]) for x in listed(m)) == sorted(c.ids)
    c.wait_converged(timeout=20)
    final = w.final_reads()
    n, acked = check_history(rec, final)
    print("5: removed (and exited) %.2f s after the first remove request, new leader "
          "%.2f s later, 20 more writes %.2f s later; %d operations, %d puts acknowledged"
          % (t1 - t0, t2 - t1, t3 - t2, n, acked))


# ------------------------------------------------------------------ 6

def test_join_refusals(cluster):
    c = cluster(n=2)
    lead = c.wait_leader()
    urls = ["%s=http://%s:%d" % (m.name, m.peer_host, PEER_PORT) for m in c]
    before = sorted(int(x["ID"]) for x in listed(lead))

    def refused_join(name, initial, host, want):
        j = c.joiner(initial(name, host), name=name, host=host)
        j.spawn()
        rc = c.wait_exit(j, 20)
        err = j.stderr_text()
        assert rc == 1, "%s: exit %s\n%s" % (name, rc, j.stderr_tail(20))
        assert want in err, "%s: %r not in\n%s" % (name, want, j.stderr_tail(20))
        # the cluster is unaffected
        assert all(m.running() for m in c)
        assert sorted(int(x["ID"]) for x in listed(c[1])) == before
        assert c.wait_leader().client.put("join/after-" + name, "ok")
        return err

    def own(name, host):
        return "%s=http://%s:%d" % (name, host, PEER_PORT)

    # a: nobody listens at the peer URLs given
    nobody = fresh_host()
    refused_join("ja", lambda n, h: "%s,infra0=http://%s:%d" % (own(n, h), nobody, PEER_PORT),
                 fresh_host(), "cannot fetch cluster info from peer urls: could not retrieve "
                 "cluster information from the given URLs")
    # b: never added; --initial-cluster has one member more than the cluster
    refused_join("jb", lambda n, h: ",".join(urls + [own(n, h)]), fresh_host(),
                 "member count is unequal")
    # c: never added; same count, but its peer URL is not a member's
    refused_join("jc", lambda n, h: ",".join(urls[:1] + [own(n, h)]), fresh_host(),
                 "PeerURLs: no match found for existing member")
    assert sorted(int(x["ID"]) for x in listed(lead)) == before


# ------------------------------------------------------------------ 7

def test_removed_member_cannot_rejoin(cluster):
    c = cluster(n=3)
    gone = [m for m in c if m is not c.wait_leader()][0]
    r, rc = c.remove_member(gone)
    assert rc == 0, "the removed member exited with %s" % rc
    assert REMOVED in gone.stderr_text()
    gone.spawn()  # same flags, old data dir
    rc = c.wait_exit(gone, 20)
    assert rc == 0, "the removed member restarted and exited with %s" % rc
    assert REMOVED in since_last_start(gone), gone.stderr_tail(30)
    lead = c.wait_leader()
    assert lead.client.put("rm/after", "ok")
    for m in c:
        assert serves_value(m, "rm/after", b"ok", serializable=False)
        assert sorted(int(x["ID"]) for x in listed(m)) == sorted(c.ids)


# ------------------------------------------------------------------ 8

MEMBER_KEYS = ("id", "peerURLs", "isLearner", "name", "clientURLs")  # etcd's order


def peer_members(m, cid):
    r = clusterlib.Cluster.peer_members(m)
    assert r.status == 200, r
    assert r.header("Content-Type") == "application/json"
    assert r.header("X-Etcd-Cluster-Id") == "%x" % cid
    pairs = json.loads(r.text, object_pairs_hook=lambda kv: kv)
    for e in pairs:
        keys = [k for k, _ in e]
        assert keys == [k for k in MEMBER_KEYS if k in keys], keys
    body = json.loads(r.text)
    assert isinstance(body, list)
    assert [e["id"] for e in body] == sorted(e["id"] for e in body)
    return body



def test_peer_members_endpoint(cluster):
    c = cluster(n=1)
    m0 = c[0]
    cid = int(m0.client.ok("/v3/cluster/member/list", {})["header"]["cluster_id"])
    assert peer_members(m0, cid) == [{
        "id": m0.member_id, "peerURLs": ["http://%s:%d" % (m0.peer_host, PEER_PORT)],
        "name": m0.name, "clientURLs": ["http://%s:2379" % m0.host]}]
    # a learner, then a voter, both added and not started: no name, no clientURLs
    learner = c.add_member(learner=True, start=False)
    voter = c.add_member(start=False)
    body = peer_members(m0, cid)
    assert {e["id"] for e in body} == set(c.ids)
    by_id = {e["id"]: e for e in body}
    assert by_id[learner.member_id] == {
        "id": learner.member_id, "isLearner": True,
        "peerURLs": ["http://%s:%d" % (learner.peer_host, PEER_PORT)]}
    assert by_id[voter.member_id] == {
        "id": voter.member_id, "peerURLs": ["http://%s:%d" % (voter.peer_host, PEER_PORT)]}
    assert by_id[m0.member_id]["name"] == m0.name
    # the voter joins (the cluster had no quorum without it); it answers the same list
    # once it has published its name
    voter.spawn()
    voter.wait_healthy()
    c.wait_leader(among=[m0, voter])

    def named():
        b = peer_members(voter, cid)
        e = {x["id"]: x for x in b}.get(voter.member_id, {})
        # both answer the same list once the publish is applied on both
        return b if e.get("name") == voter.name and b == peer_members(m0, cid) else None
    body = wait_until(named, 10, 0.1, "both members to list the joined one with its name")
    assert {x["id"]: x for x in body}[voter.member_id]["clientURLs"] == \
        ["http://%s:2379" % voter.host]
    assert "name" not in {x["id"]: x for x in body}[learner.member_id]


def test_initial_cluster_from_member_add_answer():
    """The --initial-cluster built from member add's answer as etcdctl prints it."""
    answer = {"member": {"ID": "3", "peerURLs": ["http://h3:2380"]},
              "members": [{"ID": "1", "name": "a", "peerURLs": ["http://h1:2380"]},
                          {"ID": "2", "peerURLs": ["http://h2:2380"]},
                          {"ID": "3", "peerURLs": ["http://h3:2380"]}]}
    assert initial_cluster_from(answer, "c") == \
        "a=http://h1:2380,=http://h2:2380,c=http://h3:2380"
