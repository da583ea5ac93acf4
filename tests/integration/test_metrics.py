"""GET /metrics: Prometheus text format with etcd's metric names and real values
(checked against etcd 3.4); ours also reports each process's RSS and open fds."""
import math
import os
import re
import signal

import pytest

from etcdlib import wait_until
from streamlib import create_req, put_burst, watch

PROCESSES = ("supervisor", "raftd", "storaged", "gatewayd", "discoveryd")

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*')


class Metrics:
    """A parsed exposition: types[family], samples[(name, frozenset(labels))] = value."""

    def __init__(self, text):
        self.text = text
        self.types = {}
        self.type_lines = {}
        self.samples = {}
        self.order = []
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("# TYPE "):
                _, _, name, typ = line.split(None, 3)
                self.type_lines[name] = self.type_lines.get(name, 0) + 1
                self.types[name] = typ.strip()
                continue
            if line.startswith("#"):
                continue
            m = _SAMPLE.match(line)
            assert m, "unparsable metrics line %r" % line
            name, labels, value = m.group(1), m.group(3) or "", m.group(4)
            lab = dict(_LABEL.findall(labels))
            key = (name, frozenset(lab.items()))
            assert key not in self.samples, "sample twice: %r" % line
            self.samples[key] = float(value)
            self.order.append(key)

    def family(self, name):
        """The family a sample name belongs to (histogram/summary suffixes stripped)."""
        if name in self.types:
            return name
        for suf in ("_bucket", "_sum", "_count"):
            if name.endswith(suf) and name[:-len(suf)] in self.types:
                return name[:-len(suf)]
        return None

    def get(self, name, **labels):
        key = (name, frozenset(labels.items()))
        assert key in self.samples, "no sample %s%r in /metrics" % (name, labels)
        return self.samples[key]

    def with_name(self, name):
        return {k[1]: v for k, v in self.samples.items() if k[0] == name}

    def histogram(self, name, **labels):
        """(buckets [(le, count)], sum, count) after checking the histogram's invariants."""
        assert self.types.get(name) == "histogram", "%s is not a histogram" % name
        buckets = []
        for (n, lab), v in self.samples.items():
            d = dict(lab)
            if n == name + "_bucket" and all(d.get(k) == x for k, x in labels.items()):
                le = d["le"]
                buckets.append((math.inf if le == "+Inf" else float(le), v))
        buckets.sort()
        assert buckets and buckets[-1][0] == math.inf, "%s has no +Inf bucket" % name
        counts = [c for _, c in buckets]
        assert counts == sorted(counts), "%s buckets are not cumulative" % name
        total = self.get(name + "_count", **labels)
        assert buckets[-1][1] == total
        s = self.get(name + "_sum", **labels)
        assert s >= 0
        return buckets, s, total


def scrape(client):
    r = client.get("/metrics")
    assert r.status == 200, r
    assert r.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    return Metrics(r.text)


def test_format(client):
    m = scrape(client)
    assert m.samples
    # every family is declared by exactly one TYPE line, before its samples
    assert {n: c for n, c in m.type_lines.items() if c != 1} == {}
    for name, _ in m.order:
        assert m.family(name), "sample %s without a # TYPE line" % name
    assert set(m.types.values()) <= {"counter", "gauge", "histogram", "summary", "untyped"}
    for (name, _), v in m.samples.items():
        if m.types.get(m.family(name)) == "counter":
            assert v >= 0


def test_server_metrics(client):
    m = scrape(client)
    assert m.types["etcd_server_has_leader"] == "gauge"
    assert m.get("etcd_server_has_leader") == 1
    assert m.types["etcd_server_leader_changes_seen_total"] == "counter"
    assert m.get("etcd_server_leader_changes_seen_total") >= 1
    for name, typ in (("etcd_server_proposals_committed_total", "gauge"),
                      ("etcd_server_proposals_applied_total", "gauge"),
                      ("etcd_server_proposals_pending", "gauge"),
                      ("etcd_server_proposals_failed_total", "counter")):
        assert m.types[name] == typ, name
        assert m.get(name) >= 0
    assert m.get("etcd_server_proposals_pending") == 0


def test_proposals_increase_after_puts(client, pfx):
    before = scrape(client)
    for i in range(10):
        client.put(pfx + str(i), "v")
    after = scrape(client)
    for name in ("etcd_server_proposals_committed_total",
                 "etcd_server_proposals_applied_total"):
        assert after.get(name) >= before.get(name) + 10, name
    # a single member applies what it commits
    assert after.get("etcd_server_proposals_applied_total") <= \
        after.get("etcd_server_proposals_committed_total")


@pytest.mark.parametrize("name", ["etcd_disk_wal_fsync_duration_seconds",
                                  "etcd_disk_backend_commit_duration_seconds"])
def test_disk_histograms(client, pfx, name):
    _, s0, n0 = scrape(client).histogram(name)
    for i in range(5):
        client.put(pfx + str(i), "v")
    # etcd commits its backend every 100 ms, not per put: poll
    wait_until(lambda: scrape(client).histogram(name)[2] >= n0 + 1, 5, 0.05,
               "%s_count to grow" % name)
    buckets, s1, n1 = scrape(client).histogram(name)
    assert s1 >= s0
    # etcd's buckets: 0.001 doubling up to 8.192 s
    assert [b for b, _ in buckets][:3] == [0.001, 0.002, 0.004]


def test_db_size(client, pfx):
    m = scrape(client)
    assert m.types["etcd_mvcc_db_total_size_in_bytes"] == "gauge"
    assert m.get("etcd_mvcc_db_total_size_in_bytes") > 0


def test_keys_total_counts_keys(member):
    c = member.client
    assert scrape(c).get("etcd_debugging_mvcc_keys_total") == 0
    for i in range(25):
        c.put("k%02d" % i, "v")
    c.put("k00", "again")  # an overwrite is no new key
    assert scrape(c).get("etcd_debugging_mvcc_keys_total") == 25
    c.delete("k0", range_end=b"k1")
    assert scrape(c).get("etcd_debugging_mvcc_keys_total") == 15


@pytest.mark.slow
def test_db_size_grows(member):
    c = member.client
    s0 = scrape(c).get("etcd_mvcc_db_total_size_in_bytes")
    v = "x" * 4000
    assert not put_burst(member.host, (("big/%04d" % i, v) for i in range(2000)), 8)
    wait_until(lambda: scrape(c).get("etcd_mvcc_db_total_size_in_bytes") >= s0 + 4e6, 10,
               0.2, "the db size to grow by 4 MB")


def test_watcher_gauge(client, pfx):
    base = scrape(client).get("etcd_debugging_mvcc_watcher_total")
    with watch(client.host, [create_req(pfx + str(i)) for i in range(3)]) as s:
        for _ in range(3):
            assert s.result()["created"] is True
        assert scrape(client).get("etcd_debugging_mvcc_watcher_total") == base + 3
        s2 = watch(client.host, [create_req(pfx + "x"), {"cancel_request": {"watch_id": 0}}])
        assert s2.result()["created"] is True
        assert s2.result()["canceled"] is True
        assert scrape(client).get("etcd_debugging_mvcc_watcher_total") == base + 3
        s2.close()
    # closing the stream cancels its watchers
    wait_until(lambda: scrape(client).get("etcd_debugging_mvcc_watcher_total") == base, 5,
               0.05, "the watcher gauge to go back to %d" % base)


@pytest.mark.ours_only
def test_process_metrics_of_each_process(member):
    m = scrape(member.client)
    for fam in ("process_resident_memory_bytes", "process_open_fds"):
        assert m.type_lines.get(fam) == 1, fam
        assert m.types[fam] == "gauge"
        got = {dict(lab).get("process"): v for lab, v in m.with_name(fam).items()}
        assert set(PROCESSES) <= set(got), "%s: %r" % (fam, got)
        for p in PROCESSES:
            assert got[p] > 0, (fam, p)
    rss = {dict(lab)["process"]: v
           for lab, v in m.with_name("process_resident_memory_bytes").items()}
    # RSS in bytes, not pages or KiB: every process holds at least 256 KiB
    assert all(v >= 256 * 1024 for p, v in rss.items() if p in PROCESSES), rss
    # the pids behind the labels are the member's own: the workers' fds count too
    fds = {dict(lab)["process"]: v for lab, v in m.with_name("process_open_fds").items()}
    assert fds["gatewayd"] >= 3


@pytest.mark.ours_only
def test_metrics_after_worker_restart(member):
    """A restarted storaged reports again (gatewayd asks the new one)."""
    c = member.client
    c.put("a", "x")
    pid = member.workers()["storaged"]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: member.workers().get("storaged", pid) != pid, 10,
               what="a restarted storaged")
    wait_until(c.healthy, 10, what="health")

    def ok():
        r = c.get("/metrics")
        if r.status != 200:
            return False
        m = Metrics(r.text)
        return ("etcd_debugging_mvcc_keys_total", frozenset()) in m.samples and \
            m.get("etcd_debugging_mvcc_keys_total") == 1
    wait_until(ok, 10, 0.1, "storaged's metrics after its restart")
