"""Three-member clusters under faults: kill -9 of members and workers, partitions through
the peer proxy, catch-up by snapshot; concurrent clients checked for linearizability and
for acknowledged writes lost. Every test makes its own cluster (clusterlib)."""
import re
import threading
import time

import pytest

import clusterlib
import linearizability
from clusterlib import Workload, bulk_put, check_history
from etcdlib import ROLES, b64, unb64, wait_until

cluster = clusterlib.cluster  # the fixture

# Answers a member cut off from the quorum may give to a write or a linearizable read
# (etcd's ErrTimeout, ErrNoLeader, ErrProposalDropped, ErrLeaderChanged, and the
# "context deadline exceeded" 500 that etcd 3.4's gateway answers when its own deadline
# passes first); no answer within the client's timeout is acceptable too. A 200 is not.
REFUSALS = ("etcdserver: request timed out", "etcdserver: no leader",
            "raft proposal dropped", "etcdserver: leader changed",
            "etcdserver: request timed out, possibly due to previous leader failure",
            "context deadline exceeded")


def refused(m, path, body, timeout=15):
    """(True, what) if m does not serve path/body: an error answer or no answer."""
    try:
        r = m.client.post(path, body, timeout=timeout)
    except OSError as e:
        return True, "no answer (%r)" % e
    if r.status == 200:
        return False, r
    err = (r.json or {}).get("error") if isinstance(r.json, dict) else r.text
    return r.status >= 500 and err in REFUSALS, (r.status, err)


def minority_attempts(m, key):
    """A write and a linearizable read on m (cut off from the quorum) at the same time;
    asserts neither succeeds and returns what m answered."""
    put, get = in_parallel(
        lambda: refused(m, "/v3/kv/put", {"key": b64(key), "value": b64("x")}),
        lambda: refused(m, "/v3/kv/range", {"key": b64(key)}))
    assert put[0], "%s served a write without a quorum: %r" % (m.name, put[1])
    assert get[0], "%s served a linearizable read without a quorum: %r" % (m.name, get[1])
    return [put[1], get[1]]


class Background(threading.Thread):
    """fn(*args) in a thread; result() joins (bounded) and returns or raises its outcome."""

    def __init__(self, fn, *args):
        super().__init__(daemon=True)
        self.fn, self.args, self.out, self.exc = fn, args, None, None
        self.start()

    def run(self):
        try:
            self.out = self.fn(*self.args)
        except BaseException as e:  # re-raised in result()
            self.exc = e

    def result(self, timeout=60):
        self.join(timeout)
        assert not self.is_alive(), "%s did not finish" % self.fn.__name__
        if self.exc is not None:
            raise self.exc
        return self.out


def in_parallel(*fns):
    out = [None] * len(fns)

    def run(i, f):
        out[i] = f()
    ts = [threading.Thread(target=run, args=(i, f), daemon=True) for i, f in enumerate(fns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not any(t.is_alive() for t in ts), "requests did not finish"
    return out


# ------------------------------------------------------------------ a

def test_write_on_one_read_on_all(cluster):
    c = cluster()
    for i, w in enumerate(c):
        r = w.client.put("a/from%d" % i, "v%d" % i)
        rev = int(r["header"]["revision"])
        for m in c:
            # linearizable: at once, at least at the write's revision
            j = m.client.range("a/from%d" % i)
            assert unb64(j["kvs"][0]["value"]) == b"v%d" % i, (m.name, j)
            assert int(j["header"]["revision"]) >= rev

            # serializable: the member's own applied state, soon
            def seen(m=m, i=i):
                j = m.client.range("a/from%d" % i, serializable=True)
                return j.get("kvs") and unb64(j["kvs"][0]["value"]) == b"v%d" % i
            wait_until(seen, 5, 0.02, "a serializable read on %s" % m.name)
    ids = {m.client.ok("/v3/maintenance/status", {})["header"]["cluster_id"] for m in c}
    assert len(ids) == 1
    c.wait_converged(timeout=10)


# ------------------------------------------------------------------ b

def test_kill9_leader_under_load(cluster):
    c = cluster()
    rec = linearizability.Recorder()
    w = Workload(c, rec, clients=4).start()
    try:
        w.wait_acked(30, 20, "30 acknowledged puts")
        old = c.wait_leader()
        t0 = time.monotonic()
        c.kill9(old)
        new = c.wait_leader(among=c.others(old), exclude=[old], timeout=10 * c.election_s)
        took = time.monotonic() - t0
        assert new is not old
        assert took < 3 * c.election_s, "a new leader took %.2f s" % took
        w.wait_acked(30, 10, "writes to continue on the new leader")
        c.restart(old)
        w.wait_acked(30, 10, "writes to continue after the restart")
        # the old leader catches up, also with what is written while it does
        rev = c.revision(new, serializable=False)
        wait_until(lambda: c.revision(old) >= rev, 15, 0.05, "the old leader to catch up")
    finally:
        w.stop()
    c.wait_converged(timeout=15)
    final = w.final_reads()
    n, acked = check_history(rec, final)
    print("b: new leader in %.2f s; %d operations, %d puts acknowledged" % (took, n, acked))


# ------------------------------------------------------------------ c

def test_partition_isolating_the_leader(cluster):
    c = cluster(proxy=True)
    rec = linearizability.Recorder()
    w = Workload(c, rec, clients=4).start()
    answers = []
    try:
        w.wait_acked(30, 20, "30 acknowledged puts")
        old = c.wait_leader()
        majority = c.others(old)
        c.isolate(old)
        t0 = time.monotonic()
        # at once (the old leader may still believe it leads): nothing succeeds there
        first = Background(minority_attempts, old, "c/minority")
        # meanwhile the majority elects a new leader and serves
        new = c.wait_leader(among=majority, exclude=[old], timeout=10 * c.election_s)
        took = time.monotonic() - t0
        assert new in majority
        r = new.client.put("c/majority", "y")
        assert int(r["header"]["revision"]) > 1
        w.wait_acked(30, 15, "writes to continue on the majority")
        answers += first.result()
        # later (the old leader has stepped down by now): still nothing
        answers += minority_attempts(old, "c/minority")
        c.heal()
        # the old leader rejoins as a follower of the new one
        wait_until(lambda: c.leader() is new, 10 * c.election_s, 0.05,
                   "every member to follow %s" % new.name)
        w.wait_acked(30, 15, "writes to continue after the heal")
    finally:
        w.stop()
    c.wait_converged(timeout=15)
    for m in c:
        assert m.client.get_value("c/majority") == b"y"
        assert m.client.get_value("c/minority") is None
    final = w.final_reads()
    n, acked = check_history(rec, final)
    print("c: new majority leader in %.2f s; %d operations, %d puts acknowledged; "
          "the minority answered %r" % (took, n, acked, answers))


# ------------------------------------------------------------------ d

@pytest.mark.ours_only
def test_kill9_workers_of_the_leader_under_load(cluster):
    c = cluster()
    rec = linearizability.Recorder()
    w = Workload(c, rec, clients=4).start()
    try:
        w.wait_acked(30, 20, "30 acknowledged puts")
        for role in ("raftd", "storaged"):
            lead = c.wait_leader()
            assert set(lead.workers()) == set(ROLES), lead.workers()
            c.kill_worker(lead, role)
            assert lead.running(), "the supervisor of %s exited" % lead.name
            c.wait_leader(timeout=10 * c.election_s)
            w.wait_acked(30, 15, "writes to continue after kill -9 of the leader's " + role)
    finally:
        w.stop()
    assert all(m.running() for m in c)
    c.wait_converged(timeout=15)
    final = w.final_reads()
    check_history(rec, final)


# ------------------------------------------------------------------ e

RAFTD_CATCH_UP_ENTRIES = 5000   # raftd/raftd.h: entries kept for slow followers
SNAPSHOT_COUNT = 50


def compacted_at(m):
    """The highest index m's raftd reports having compacted its log at."""
    found = [int(x) for x in re.findall(r"compacted raft log at (\d+)", m.stderr_text())]
    return max(found, default=0)


def test_restarted_member_catches_up_by_snapshot(cluster):
    c = cluster(args=["--snapshot-count", str(SNAPSHOT_COUNT)])
    lead = c.wait_leader()
    behind = c.others(lead)[0]
    for i in range(20):
        lead.client.put("e/before/%02d" % i, "b%d" % i)
    c.wait_converged(timeout=10)
    index = int(c.status(behind)["raftIndex"])
    c.stop(behind)
    # more than the leader keeps for slow followers, so it must compact past `behind`
    n = RAFTD_CATCH_UP_ENTRIES + 3 * SNAPSHOT_COUNT + 300
    items = [("e/k/%05d" % (i % 2000), "v%d" % i) for i in range(n)]
    ok = bulk_put(lead.host, items, threads=8)
    assert ok >= n - 50, "only %d of %d puts acknowledged" % (ok, n)
    lead.client.delete("e/before/00")
    wait_until(lambda: compacted_at(lead) > index, 10, 0.1,
               "the leader to compact its log past %d (it reports %d)" %
               (index, compacted_at(lead)))
    want = c.digest(lead, serializable=False)
    c.restart(behind)
    got = {}

    def caught_up():
        got["d"] = c.digest(behind)
        return got["d"] == want
    try:
        wait_until(caught_up, 60, 0.2, "%s to catch up by snapshot" % behind.name)
    except TimeoutError as e:
        raise AssertionError("%s: leader %r, %s %r" % (e, want, behind.name, got.get("d")))
    assert behind.client.get_value("e/before/00") is None
    assert behind.client.get_value("e/before/01") == b"b1"
    # and it is a working voter afterwards: with the third member stopped, a write
    # commits only if it appends too
    third = c.others(lead, behind)[0]
    c.stop(third)
    r = c.wait_leader(among=[lead, behind]).client.post(
        "/v3/kv/put", {"key": b64("e/after"), "value": b64("1")})
    assert r.status == 200, r
    wait_until(lambda: behind.client.range("e/after", serializable=True).get("kvs"), 10,
               0.05, "the write after the snapshot on %s" % behind.name)
    c.wait_converged(timeout=15)


# ------------------------------------------------------------------ f

def test_minority_has_no_divergent_data_after_heal(cluster):
    c = cluster(proxy=True)
    for i in range(10):
        c[i % 3].client.put("f/%d" % i, "before")
    c.wait_converged(timeout=10)
    old = c.wait_leader()
    majority = c.others(old)
    c.isolate(old)
    # writes sent to the cut-off leader get appended to its log, never committed
    results = []

    def minority_writes():
        for i in range(3):
            results.append(refused(old, "/v3/kv/put",
                                   {"key": b64("f/minority/%d" % i), "value": b64("lost")}))
            results.append(refused(old, "/v3/kv/deleterange", {"key": b64("f/%d" % i)}))
    t = threading.Thread(target=minority_writes, daemon=True)
    t.start()
    new = c.wait_leader(among=majority, exclude=[old], timeout=10 * c.election_s)
    for i in range(20):
        majority[i % 2].client.put("f/%d" % (i % 12), "after%d" % i)
    t.join(120)
    assert not t.is_alive()
    assert all(ok for ok, _ in results), [what for ok, what in results if not ok]
    c.heal()
    wait_until(lambda: c.leader() is new, 10 * c.election_s, 0.05,
               "every member to follow %s" % new.name)
    rev, digest, count = c.wait_converged(timeout=20)
    for m in c:
        assert c.digest(m, serializable=False) == (rev, digest, count), m.name
        j = m.client.range("f/minority/", range_end=b64(b"f/minority0"), serializable=True)
        assert not j.get("kvs"), "%s kept a write of the cut-off leader: %r" % (m.name, j)
        assert m.client.get_value("f/0") is not None
    assert count == 12
