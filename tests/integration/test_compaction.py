"""/v3/kv/compaction and reads around the compacted revision (each test its own member)."""
from etcdlib import b64, prefix_end, unb64

COMPACTED = "etcdserver: mvcc: required revision has been compacted"
FUTURE = "etcdserver: mvcc: required revision is a future revision"


def err(r, status, code, msg):
    assert r.status == status, r
    assert r.json == {"error": msg, "message": msg, "code": code}, r


def compact(c, rev, **kw):
    return c.post("/v3/kv/compaction", dict(revision=rev, **kw))


def test_fresh_store(member):
    c = member.client
    assert c.revision() == 1
    r = c.post("/v3/kv/compaction", {})
    assert r.status == 200, r
    assert set(r.json) == {"header"}
    r = compact(c, 1)
    assert r.status == 200, r
    err(compact(c, 1), 400, 11, COMPACTED)


def test_compaction_errors_and_reads(member):
    c = member.client
    revs = [int(c.put("k", str(i))["header"]["revision"]) for i in range(5)]  # 2..6
    err(compact(c, revs[-1] + 1), 400, 11, FUTURE)
    r = compact(c, revs[2])
    assert r.status == 200, r
    assert r.json["header"]["revision"] == str(revs[-1])  # compaction writes no revision
    assert c.revision() == revs[-1]
    # repeating it, or going back, fails
    err(compact(c, revs[2]), 400, 11, COMPACTED)
    err(compact(c, revs[1]), 400, 11, COMPACTED)
    # reads below the compacted revision fail, at it and above work
    err(c.post("/v3/kv/range", {"key": b64("k"), "revision": revs[1]}), 400, 11, COMPACTED)
    r = c.range("k", revision=revs[2])
    assert unb64(r["kvs"][0]["value"]) == b"2"
    assert r["kvs"][0]["version"] == "3"
    r = c.range("k", revision=revs[3])
    assert unb64(r["kvs"][0]["value"]) == b"3"
    # the latest value is kept, with its full history counters
    kv = c.range("k")["kvs"][0]
    assert kv["version"] == "5" and kv["create_revision"] == str(revs[0])
    # a txn range at a compacted revision fails too
    r = c.post("/v3/kv/txn", {"success": [{"request_range": {"key": b64("k"),
                                                             "revision": revs[0]}}]})
    err(r, 400, 11, COMPACTED)
    # compacting up to the current revision works
    assert compact(c, revs[-1]).status == 200
    assert c.range("k", revision=revs[-1])["kvs"][0]["version"] == "5"


def test_physical_compaction_and_deleted_keys(member):
    c = member.client
    for i in range(20):
        c.put("p/%02d" % i, "x" * 100)
    c.delete("p/", range_end=prefix_end("p/"))
    c.put("p/00", "back")
    rev = c.revision()
    r = compact(c, rev, physical=True)
    assert r.status == 200, r
    r = c.range("p/", range_end=prefix_end("p/"))
    assert [unb64(kv["key"]) for kv in r["kvs"]] == [b"p/00"]
    assert r["kvs"][0]["version"] == "1"
    assert r["count"] == "1"
    # writes continue after a compaction
    assert int(c.put("after", "1")["header"]["revision"]) == rev + 1


def test_compaction_survives_restart(member):
    c = member.client
    for i in range(4):
        c.put("r", str(i))
    rev = c.revision()
    assert compact(c, rev - 1).status == 200
    member.stop()
    member.start()
    c = member.client
    assert c.revision() == rev
    err(c.post("/v3/kv/range", {"key": b64("r"), "revision": rev - 2}), 400, 11, COMPACTED)
    err(compact(c, rev - 1), 400, 11, COMPACTED)
    assert c.get_value("r") == b"3"
