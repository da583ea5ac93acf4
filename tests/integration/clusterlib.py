"""Clusters of real members for fault tests: start/stop/kill, a fault-injecting peer proxy.

Stdlib only, every wait bounded, processes stopped by PID (through conftest's Members
factory, which also fails the test on sanitizer reports or leaked workers).

Layout of member i (name infra<i>):
  L_i  the member's own loopback host: it listens for clients on L_i:2379 and for peers
       on L_i:2380;
  P_i  its advertised peer host (--initial-advertise-peer-urls, --initial-cluster): with
       a proxy, another fresh loopback host where PeerProxy listens on port 2380 and
       forwards to L_i:2380; without one, P_i = L_i.
Member IDs follow from P_i and the token (etcdlib.member_id), as etcd's do.

The proxy learns who sends on a connection from the first request's X-Server-From
header (our gatewayd's peer transport sets it, as etcd's rafthttp does) and knows the
receiver from the address the connection came in on, so it can cut (from, to) pairs.
A cut pair's connections are blackholed: nothing is read or forwarded in either
direction, the connections stay open (the sender's requests time out, as across a real
network cut), and new connections are accepted and held the same way. heal() resumes
forwarding on every held connection: what the senders wrote meanwhile is delivered late,
as when a real cut heals; a sender that gave up meanwhile closed its end, and the proxy
closes the other end once it has forwarded what was written before that.
"""
import hashlib
import http.client
import json
import math
import os
import random
import select
import signal
import socket
import subprocess
import threading
import time

import pytest

import etcdlib
import linearizability
from etcdlib import Client, b64, member_id, unb64, wait_until

PEER_PORT = 2380
CLIENT_PORT = 2379
# A peer connection's first request head larger than this is not an etcd peer's.
_HEAD_MAX = 64 * 1024
# How often blocked proxy threads look at the stop flag.
_POLL_S = 0.2


# ------------------------------------------------------------------ the peer proxy

class PeerProxy:
    """Forwards peer connections P_j:2380 -> L_j:2380 and can cut (from, to) pairs."""

    def __init__(self):
        self._cv = threading.Condition()
        self._cut = set()           # (from id, to id) whose connections are held
        self._ids = set()           # every member id with a route
        self._stopping = False
        self._listeners = []
        self._socks = set()         # every open socket, shut down at close()
        self._threads = []
        self.conns = 0              # connections accepted (for messages)
        self.unknown = 0            # of which without X-Server-From

    # -- configuration
    def add_route(self, listen_host, to_id, target_host, port=PEER_PORT):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((listen_host, port))
        s.listen(64)
        with self._cv:
            self._ids.add(to_id)
            self._listeners.append(s)
        self._spawn(self._accept_loop, s, to_id, (target_host, port))

    def partition(self, groups):
        """Cut every pair of members in different groups (lists of member ids); pairs
        within a group, and members in no group, are left as they are."""
        where = {}
        for n, g in enumerate(groups):
            for mid in g:
                where[mid] = n
        with self._cv:
            for a in where:
                for b in where:
                    if where[a] != where[b]:
                        self._cut.add((a, b))
            self._cv.notify_all()

    def isolate(self, mid):
        """Cut mid from every other member, both ways."""
        with self._cv:
            for other in self._ids:
                if other != mid:
                    self._cut.add((mid, other))
                    self._cut.add((other, mid))
            self._cv.notify_all()

    def cut(self, frm, to):
        """Cut one direction only: frm's connections to `to`."""
        with self._cv:
            self._cut.add((frm, to))
            self._cv.notify_all()

    def heal(self):
        """Forward everything again, also on the connections held meanwhile."""
        with self._cv:
            self._cut.clear()
            self._cv.notify_all()

    def close(self):
        with self._cv:
            self._stopping = True
            self._cut.clear()
            self._cv.notify_all()
            socks = list(self._socks) + list(self._listeners)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(5)
        alive = [t for t in self._threads if t.is_alive()]
        assert not alive, "proxy threads did not stop: %r" % alive

    # -- internals
    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        with self._cv:
            self._threads = [x for x in self._threads if x.is_alive()]
            self._threads.append(t)
        t.start()

    def _track(self, s):
        with self._cv:
            if self._stopping:
                return False
            self._socks.add(s)
            return True

    def _drop(self, *socks):
        for s in socks:
            if s is None:
                continue
            with self._cv:
                self._socks.discard(s)
            try:
                s.close()
            except OSError:
                pass

    def _blocked(self, frm, to):
        # caller holds _cv. A connection without X-Server-From is held only while
        # its receiver is cut off from every other member.
        if frm is None:
            others = self._ids - {to}
            return bool(others) and all((o, to) in self._cut for o in others)
        return (frm, to) in self._cut

    def _wait_open(self, frm, to):
        """Block while (frm, to) is cut; False if the proxy is closing."""
        with self._cv:
            while not self._stopping and self._blocked(frm, to):
                self._cv.wait(_POLL_S)
            return not self._stopping

    def _accept_loop(self, ls, to_id, target):
        while True:
            r = self._readable(ls)
            if r is None:
                return
            if not r:
                continue
            try:
                c, _ = ls.accept()
            except OSError:
                if self._stopping:
                    return
                continue
            if not self._track(c):
                c.close()
                return
            with self._cv:
                self.conns += 1
            self._spawn(self._serve, c, to_id, target)

    def _readable(self, s):
        """True if s is readable, False after _POLL_S, None if closing or s is closed."""
        if self._stopping:
            return None
        try:
            r, _, _ = select.select([s], [], [], _POLL_S)
        except (OSError, ValueError):
            return None
        return bool(r)

    def _read_head(self, c):
        """The bytes up to the end of the first request's head, or None."""
        buf = b""
        while b"\r\n\r\n" not in buf:
            if len(buf) > _HEAD_MAX:
                return buf
            r = self._readable(c)
            if r is None:
                return None
            if not r:
                continue
            try:
                d = c.recv(65536)
            except OSError:
                return None
            if not d:
                return buf or None
            buf += d
        return buf

    @staticmethod
    def _sender(head):
        for line in head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"x-server-from":
                try:
                    return int(value.strip(), 16)
                except ValueError:
                    return None
        return None

    def _serve(self, c, to_id, target):
        head = self._read_head(c)
        if head is None:
            self._drop(c)
            return
        frm = self._sender(head)
        if frm is None:
            with self._cv:
                self.unknown += 1
        if not self._wait_open(frm, to_id):
            self._drop(c)
            return
        try:
            u = socket.create_connection(target, timeout=2)
            u.settimeout(None)
        except OSError:
            self._drop(c)  # the member is down: the sender sees a closed connection
            return
        if not self._track(u):
            self._drop(c, u)
            return
        done = threading.Event()
        self._spawn(self._pump, u, c, frm, to_id, b"", done)
        self._pump(c, u, frm, to_id, head, None)
        done.wait(60)
        self._drop(c, u)

    def _pump(self, src, dst, frm, to, pending, done):
        """Copy src -> dst while (frm, to) is open; nothing is read while it is cut."""
        try:
            while True:
                if pending:
                    if not self._wait_open(frm, to):
                        return
                    dst.sendall(pending)
                    pending = b""
                if not self._wait_open(frm, to):
                    return
                r = self._readable(src)
                if r is None:
                    return
                if not r:
                    continue
                pending = src.recv(65536)
                if not pending:
                    dst.shutdown(socket.SHUT_WR)
                    return
        except OSError:
            # a reset on one side resets the other
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        finally:
            if done is not None:
                done.set()


# ------------------------------------------------------------------ the cluster

# Refusals that runtime reconfiguration waits out (etcd 3.4's texts).
UNHEALTHY = "etcdserver: unhealthy cluster"
NOT_IN_SYNC = "etcdserver: can only promote a learner member which is in sync with leader"


def initial_cluster_from(answer, name):
    """The --initial-cluster for the member that member add's JSON `answer` added, built
    as etcd's guide has it (what etcdctl member add prints as ETCD_INITIAL_CLUSTER):
    name=peerURL for every peer URL of every member, the new member under `name`; a member
    that has not started yet has no name and is listed with an empty one, as etcdctl does."""
    new_id = answer["member"]["ID"]
    out = []
    for mem in answer["members"]:
        n = name if mem["ID"] == new_id else mem.get("name", "")
        out.extend("%s=%s" % (n, u) for u in mem.get("peerURLs", []))
    return ",".join(out)


class Cluster:
    """N members infra0..infra<N-1> (see the module's comment for the addresses).

    members: conftest's Members factory (registers every member for teardown).
    args: extra flags for every member (e.g. ["--snapshot-count", "50"]).
    Members join (add_member: member add, then --initial-cluster-state existing) and leave
    (remove_member) as etcd's runtime-reconfiguration guide has it; `members` is replaced,
    not changed in place, so threads iterating it see one consistent list.
    """

    def __init__(self, members, n=3, args=(), proxy=False, token=None, prefix="infra",
                 heartbeat_ms=100, election_ms=1000):
        self.election_s = election_ms / 1000.0
        self.proxy = PeerProxy() if proxy else None
        self.members = []
        # for members that join later (add_member, joiner)
        self._factory = members
        self._args = list(args)
        self._timing = (heartbeat_ms, election_ms)
        self.prefix = prefix
        self._next_index = n
        hosts = []
        for _ in range(n):
            listen = etcdlib.fresh_host()
            adv = etcdlib.fresh_host() if proxy else listen
            hosts.append((listen, adv))
        self.token = token or "faults-" + hosts[0][0]
        initial = ",".join("%s%d=http://%s:%d" % (prefix, i, adv, PEER_PORT)
                           for i, (_, adv) in enumerate(hosts))
        for i, (listen, adv) in enumerate(hosts):
            name = "%s%d" % (prefix, i)
            data_dir = members.tmp_path / name / (name + ".etcd")
            argv = self._argv(name, listen, adv, initial, "new", data_dir, self._args)
            m = members.new(name, plain=True, host=listen, args=argv)
            m.index = i
            m.peer_host = adv
            m.member_id = member_id(["http://%s:%d" % (adv, PEER_PORT)], self.token)
            self.members.append(m)
            if self.proxy:
                self.proxy.add_route(adv, m.member_id, listen)

    def _argv(self, name, listen, adv, initial, state, data_dir, args):
        heartbeat_ms, election_ms = self._timing
        return ["--name", name,
                "--initial-advertise-peer-urls", "http://%s:%d" % (adv, PEER_PORT),
                "--listen-peer-urls", "http://%s:%d" % (listen, PEER_PORT),
                "--listen-client-urls", "http://%s:%d" % (listen, CLIENT_PORT),
                "--advertise-client-urls", "http://%s:%d" % (listen, CLIENT_PORT),
                "--initial-cluster-token", self.token,
                "--initial-cluster", initial,
                "--initial-cluster-state", state,
                "--data-dir", str(data_dir),
                "--heartbeat-interval", str(heartbeat_ms),
                "--election-timeout", str(election_ms)] + list(args)

    def __iter__(self):
        return iter(self.members)

    def __getitem__(self, i):
        return self.members[i]

    def __len__(self):
        return len(self.members)

    @property
    def ids(self):
        return [m.member_id for m in self.members]

    def by_id(self, mid):
        mid = int(mid)
        for m in self.members:
            if m.member_id == mid:
                return m
        return None

    def others(self, *ms):
        return [m for m in self.members if m not in ms]

    def running(self):
        return [m for m in self.members if m.running()]

    # -- starting and stopping
    def start(self, timeout=etcdlib.START_TIMEOUT):
        """Spawn every member, then wait until all serve /health and agree on a leader."""
        for m in self.members:
            m.spawn()
        deadline = time.monotonic() + timeout
        for m in self.members:
            m.wait_healthy(max(1.0, deadline - time.monotonic()))
        self.wait_leader(timeout=max(1.0, deadline - time.monotonic()), among=self.members)
        return self

    def stop(self, m, sig=signal.SIGTERM):
        return m.stop(sig)

    def kill9(self, m):
        return m.stop(signal.SIGKILL)

    def restart(self, m, wait=True, timeout=etcdlib.START_TIMEOUT):
        if m.running():
            m.stop()
        m.spawn()
        if wait:
            m.wait_healthy(timeout)
        return m

    def kill_worker(self, m, role, timeout=10):
        """kill -9 one worker of m; returns once the supervisor has restarted it."""
        pid = m.workers()[role]
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: m.workers().get(role, pid) != pid, timeout, 0.05,
                   "%s of %s to be restarted" % (role, m.name))
        return pid

    def close(self):
        """Heal, stop every member by PID (all at once: one waiting out a leader hand-over
        does not hold up the others), close the proxy."""
        try:
            if self.proxy:
                self.proxy.heal()
            errors = []

            def stop(m):
                try:
                    m.stop()
                except BaseException as e:  # reported below; teardown must go on
                    errors.append(e)
            ts = [threading.Thread(target=stop, args=(m,)) for m in self.members]
            for t in ts:
                t.start()
            for t in ts:
                t.join(etcdlib.STOP_TIMEOUT + 10)
            if errors:
                raise errors[0]
        finally:
            if self.proxy:
                self.proxy.close()

    # -- faults (need proxy=True)
    def _ids_of(self, ms):
        return [x if isinstance(x, int) else x.member_id for x in ms]

    def partition(self, *groups):
        """partition([m0], [m1, m2]): members (or ids) in different groups are cut."""
        assert self.proxy, "the cluster was made without proxy=True"
        self.proxy.partition([self._ids_of(g) for g in groups])

    def isolate(self, m):
        assert self.proxy, "the cluster was made without proxy=True"
        self.proxy.isolate(self._ids_of([m])[0])

    def heal(self):
        assert self.proxy, "the cluster was made without proxy=True"
        self.proxy.heal()

    # -- runtime reconfiguration (members joining and leaving a running cluster)
    def reconfigure(self, route, body, via=None, timeout=30):
        """POST /v3/cluster/member/<route> on `via` (default: the current leader), repeated
        (bounded) while the strict reconfiguration check answers 503 "unhealthy cluster":
        etcd refuses a change until every voter has been connected for 5 s, so right after
        a member (re)starts. Other answers, also errors, are returned as they are; a request
        that gets no answer raises (repeating it could apply the change twice)."""
        deadline = time.monotonic() + timeout
        while True:
            m = via or self.wait_leader(timeout=max(1.0, deadline - time.monotonic()))
            r = m.client.post("/v3/cluster/member/" + route, body, timeout=15)
            err = r.json.get("error") if isinstance(r.json, dict) else None
            if r.status != 503 or err != UNHEALTHY or time.monotonic() > deadline:
                return r
            time.sleep(0.25)

    def _new_name(self):
        name = "%s%d" % (self.prefix, self._next_index)
        self._next_index += 1
        return name

    def joiner(self, initial_cluster, name=None, host=None, args=None):
        """A member set up to join with --initial-cluster-state existing and the given
        --initial-cluster: its own fresh loopback host (unless given), a fresh data dir, the
        cluster's token and timing flags (and its extra args unless `args`). Not started and
        not part of the cluster object (add_member makes it part); stopped by PID at
        teardown by the Members factory."""
        assert not self.proxy, "joining behind the peer proxy is not supported"
        name = name or self._new_name()
        host = host or etcdlib.fresh_host()
        data_dir = self._factory.tmp_path / name / (name + ".etcd")
        argv = self._argv(name, host, host, initial_cluster, "existing", data_dir,
                          self._args if args is None else args)
        m = self._factory.new(name, plain=True, host=host, args=argv)
        m.peer_host = host
        return m

    def add_member(self, learner=False, via=None, start=True, args=None,
                   timeout=etcdlib.START_TIMEOUT):
        """etcd's guide: member add (through reconfigure) with a fresh loopback peer URL,
        then a joiner for it started with --initial-cluster-state existing and the
        --initial-cluster built from the answer (initial_cluster_from). The new member is
        part of the cluster object from then on; m.added is member add's JSON answer and
        m.member_id the ID it assigned. With start, spawns it and waits until it serves
        /health (a learner does too); otherwise m.spawn() is the caller's."""
        host = etcdlib.fresh_host()
        body = {"peerURLs": ["http://%s:%d" % (host, PEER_PORT)]}
        if learner:
            body["isLearner"] = True
        r = self.reconfigure("add", body, via=via)
        assert r.status == 200, "member add %r: %r" % (body, r)
        name = self._new_name()
        m = self.joiner(initial_cluster_from(r.json, name), name=name, host=host, args=args)
        m.index = int(name[len(self.prefix):])
        m.added = r.json
        m.member_id = int(r.json["member"]["ID"])
        self.members = self.members + [m]  # a new list: Workload threads read it unlocked
        if start:
            m.spawn()
            m.wait_healthy(timeout)
        return m

    def remove_member(self, m, via=None, timeout=30, exit_timeout=20):
        """member remove of m (through reconfigure; default on the leader, which may be m);
        m leaves the cluster object. If m was running and exit_timeout is not None, waits
        (bounded) until it exits by itself, as a removed etcd member does. Returns (answer,
        m's exit status or None)."""
        was_running = m.running()
        r = self.reconfigure("remove", {"ID": str(m.member_id)}, via=via, timeout=timeout)
        assert r.status == 200, "member remove %s: %r" % (m.name, r)
        self.members = [x for x in self.members if x is not m]
        rc = None
        if was_running and exit_timeout is not None:
            rc = self.wait_exit(m, exit_timeout)
        return r, rc

    def promote(self, m, via=None, timeout=30, interval=0.1):
        """member promote of learner m, repeated (bounded) while the leader answers that m
        is not in sync with it yet (412) or the strict check refuses (503). Returns (the
        last answer, the refusals seen on the way as (status, error) pairs)."""
        deadline = time.monotonic() + timeout
        refusals = []
        while True:
            r = self.reconfigure("promote", {"ID": str(m.member_id)}, via=via,
                                 timeout=max(1.0, deadline - time.monotonic()))
            err = r.json.get("error") if isinstance(r.json, dict) else None
            if r.status != 412 or err != NOT_IN_SYNC or time.monotonic() > deadline:
                return r, refusals
            refusals.append((r.status, err))
            time.sleep(interval)

    def update_peer_host(self, m, host=None, via=None):
        """etcd's guide for moving a member's peer URL: member update of m to
        http://<host>:2380 (default: a fresh loopback host), then m's flags
        (--listen-peer-urls, --initial-advertise-peer-urls, its own --initial-cluster entry)
        changed for its next start; restarting m is the caller's (restart(m)). Returns
        the answer."""
        assert not self.proxy, "moving a member behind the peer proxy is not supported"
        host = host or etcdlib.fresh_host()
        url = "http://%s:%d" % (host, PEER_PORT)
        r = self.reconfigure("update", {"ID": str(m.member_id), "peerURLs": [url]}, via=via)
        assert r.status == 200, "member update %s: %r" % (m.name, r)
        old = "http://%s:%d" % (m.peer_host, PEER_PORT)
        a = m.extra
        a[a.index("--listen-peer-urls") + 1] = url
        a[a.index("--initial-advertise-peer-urls") + 1] = url
        i = a.index("--initial-cluster") + 1
        a[i] = ",".join("%s=%s" % (n, url) if (n, u) == (m.name, old) else "%s=%s" % (n, u)
                        for n, u in (e.split("=", 1) for e in a[i].split(",")))
        m.peer_host = host
        return r

    @staticmethod
    def wait_exit(m, timeout=20):
        """m's exit status once it exits by itself; fails the test after `timeout` s."""
        try:
            return m.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s did not exit within %s s:\n%s"
                                 % (m.name, timeout, m.stderr_tail(30)))

    @staticmethod
    def peer_members(m, timeout=5):
        """GET http://<m's peer host>:2380/members, the list a joining member fetches."""
        return Client(m.peer_host, port=PEER_PORT, timeout=timeout).get("/members")

    # -- status
    @staticmethod
    def status(m, timeout=2):
        """m's /v3/maintenance/status JSON, or None if it does not answer 200."""
        if not m.running():
            return None
        try:
            r = m.client.post("/v3/maintenance/status", {}, timeout=timeout)
        except (OSError, http.client.HTTPException):
            return None
        return r.json if r.status == 200 and r.json else None

    def leader(self, among=None):
        """The member that every answering member of `among` (default: all running)
        names as leader, or None if none answers, one names no leader, or they differ."""
        among = [m for m in (among or self.members) if m.running()]
        seen = set()
        for m in among:
            st = self.status(m)
            if st is None:
                continue
            seen.add(int(st.get("leader") or 0))
        if len(seen) != 1 or 0 in seen:
            return None
        return self.by_id(seen.pop())

    def wait_leader(self, among=None, exclude=(), timeout=None):
        """Wait (bounded: default 10 election timeouts + 5 s) until the members of `among`
        that answer agree on a leader not in exclude, which is among the running."""
        timeout = timeout if timeout is not None else 10 * self.election_s + 5

        def ok():
            lead = self.leader(among)
            if lead is None or lead in exclude or not lead.running():
                return None
            return lead
        return wait_until(ok, timeout, 0.02, "a leader among %s" %
                          [m.name for m in (among or self.members)])

    @staticmethod
    def revision(m, serializable=True, timeout=5):
        r = m.client.post("/v3/kv/range", {"key": b64("\0"), "count_only": True,
                                            "serializable": serializable}, timeout=timeout)
        assert r.status == 200, "%s: %r" % (m.name, r)
        return int(r.json["header"]["revision"])

    @staticmethod
    def digest(m, serializable=True, page=1000, timeout=10):
        """(revision, sha256 over every key-value in key order, count), read by ranges of
        at most `page` keys at one revision."""
        h = hashlib.sha256()
        key, rev, n = b"\0", 0, 0
        while True:
            body = {"key": b64(key), "range_end": b64(b"\0"), "limit": page,
                    "serializable": serializable}
            if rev:
                body["revision"] = rev
            r = m.client.post("/v3/kv/range", body, timeout=timeout)
            assert r.status == 200, "%s: %r" % (m.name, r)
            j = r.json
            if not rev:
                rev = int(j["header"]["revision"])
            kvs = j.get("kvs", [])
            for kv in kvs:
                h.update(json.dumps([kv.get("key"), kv.get("value", ""),
                                     kv.get("create_revision"), kv.get("mod_revision"),
                                     kv.get("version"), kv.get("lease", "0")]).encode())
                n += 1
            if not j.get("more") or not kvs:
                return rev, h.hexdigest(), n
            key = unb64(kvs[-1]["key"]) + b"\0"

    def wait_converged(self, ms=None, timeout=30, page=1000):
        """Wait until the members (default: all running) read the same revision and the
        same data; returns (revision, digest, count). page: keys per range read (ours
        refuses an answer of more than 63 MiB: large values need smaller pages)."""
        ms = ms or self.running()
        last = {}

        def same():
            try:
                for m in ms:
                    last[m.name] = self.digest(m, page=page)
            except (OSError, http.client.HTTPException, AssertionError) as e:
                last["error"] = repr(e)
                return None
            last.pop("error", None)
            vals = set(last.values())
            return vals.pop() if len(vals) == 1 else None
        try:
            return wait_until(same, timeout, 0.2, "members to converge")
        except TimeoutError as e:
            raise AssertionError("%s: %r" % (e, last))


# ------------------------------------------------------------------ concurrent clients

# Errors of a write that say it was never proposed (etcd: ErrNoLeader, raft's
# ErrProposalDropped): definite failures. Any other error may hide a committed write.
_DEFINITE = ("etcdserver: no leader", "raft proposal dropped",
             "etcdserver: too many requests")


def outcome(resp=None, exc=None):
    """'ok', 'fail' (did certainly not take effect) or 'ambiguous'."""
    if exc is not None:
        # refused at connect: nothing was sent
        return "fail" if isinstance(exc, ConnectionRefusedError) else "ambiguous"
    if resp.status == 200:
        return "ok"
    if 400 <= resp.status < 500:
        return "fail"
    err = (resp.json or {}).get("error", "") if isinstance(resp.json, dict) else ""
    return "fail" if err in _DEFINITE else "ambiguous"


class Workload:
    """Client threads doing puts and linearizable gets on a few keys, recorded in a
    linearizability.Recorder. Client i starts on member i mod N; when its member refuses
    the connection or errs it moves on to the next running member (unless sticky).
    Put values are unique ("c<client>-<n>"), so a read names the put it saw."""

    def __init__(self, cluster, recorder, clients=4, keys=("k0", "k1", "k2"),
                 prefix="lin/", timeout=12, sticky=False, seed=1, pause=0.0):
        self.cluster = cluster
        self.rec = recorder
        self.keys = [prefix + k for k in keys]
        self.timeout = timeout   # above etcd's request timeout (5 s + 2 elections)
        self.sticky = sticky
        self.pause = pause
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.acked = 0
        self.reads = 0
        self.errors = []         # (client, member, op, status or exception, error body)
        self.threads = [threading.Thread(target=self._run, args=(i, seed + i), daemon=True)
                        for i in range(clients)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self, timeout=None):
        self.halt.set()
        deadline = time.monotonic() + (timeout or self.timeout + 5)
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        stuck = [t for t in self.threads if t.is_alive()]
        assert not stuck, "%d client threads did not stop" % len(stuck)

    def acked_count(self):
        with self.lock:
            return self.acked

    def wait_acked(self, more, timeout, what="writes to continue"):
        n = self.acked_count()
        wait_until(lambda: self.acked_count() >= n + more, timeout, 0.05, what)

    def _next(self, at):
        ms = self.cluster.members
        for k in range(1, len(ms) + 1):
            m = ms[(at + k) % len(ms)]
            if m.running():
                return (at + k) % len(ms)
        return at

    def _run(self, i, seed):
        rng = random.Random(seed)
        at = i % len(self.cluster)
        n = 0
        while not self.halt.is_set():
            ms = self.cluster.members  # members may join and leave meanwhile
            at %= len(ms)
            m = ms[at]
            c = Client(m.host, timeout=self.timeout)
            key = rng.choice(self.keys)
            op = "put" if rng.random() < 0.5 else "get"
            if op == "put":
                value = "c%d-%d" % (i, n)
                n += 1
                p = self.rec.invoke(i, "put", key, value)
                resp = exc = None
                try:
                    resp = c.post("/v3/kv/put", {"key": b64(key), "value": b64(value)})
                except (OSError, http.client.HTTPException) as e:
                    exc = e
                o = outcome(resp, exc)
                if o == "ok":
                    p.ok()
                    with self.lock:
                        self.acked += 1
                elif o == "fail":
                    p.fail()
                else:
                    p.ambiguous()
            else:
                p = self.rec.invoke(i, "get", key)
                resp = exc = None
                try:
                    resp = c.post("/v3/kv/range", {"key": b64(key)})
                except (OSError, http.client.HTTPException) as e:
                    exc = e
                if resp is not None and resp.status == 200:
                    kvs = resp.json.get("kvs", [])
                    p.ok(unb64(kvs[0].get("value")).decode() if kvs else None)
                    with self.lock:
                        self.reads += 1
                    o = "ok"
                else:
                    p.fail()  # a read without an answer constrains nothing
                    o = "fail"
            if o != "ok":
                with self.lock:
                    if len(self.errors) < 1000:
                        self.errors.append((i, m.name, op,
                                            exc if exc is not None else resp.status,
                                            None if resp is None else resp.json))
                if not self.sticky:
                    at = self._next(at)
                self.halt.wait(0.05)
            elif self.pause:
                self.halt.wait(self.pause)

    def final_reads(self, members=None):
        """After stop(): a linearizable get of every key on every running member, recorded
        (so a lost acknowledged write shows as a violation); returns {key: value} as read
        on the first member that answers."""
        final = {}
        for m in members or self.cluster.running():
            c = Client(m.host, timeout=self.timeout)
            for key in self.keys:
                p = self.rec.invoke("final-" + m.name, "get", key)
                try:
                    r = c.post("/v3/kv/range", {"key": b64(key)})
                except (OSError, http.client.HTTPException):
                    p.fail()
                    continue
                if r.status != 200:
                    p.fail()
                    continue
                kvs = r.json.get("kvs", [])
                v = unb64(kvs[0].get("value")).decode() if kvs else None
                p.ok(v)
                final.setdefault(key, v)
        return final


def lost_writes(history, final):
    """Acknowledged puts that the final values contradict: for each key, the final value
    must come from a put P (acknowledged or ambiguous) and no acknowledged put of that key
    may have begun after P returned (it would have overwritten P)."""
    lost = []
    for key, v in final.items():
        puts = [d for d in history if d["op"] == "put" and d["key"] == key and
                d["status"] in ("ok", "ambiguous")]
        acked = [d for d in puts if d["status"] == "ok"]
        if v is None:
            lost.extend(acked)
            continue
        src = [d for d in puts if d["arg"] == v]
        if not src:
            lost.append({"key": key, "final": v, "error": "value never written"})
            continue
        end = src[0]["return"] if src[0]["status"] == "ok" else math.inf
        lost.extend(d for d in acked if d["call"] > end)
    return lost


def check_history(rec, final):
    """The recorded history is linearizable and the final values lose no acked put."""
    hist = rec.history()
    acked = [d for d in hist if d["op"] == "put" and d["status"] == "ok"]
    assert acked, "no put was acknowledged"
    res = linearizability.check(hist, timeout_s=60)
    assert res.ok, str(res)
    lost = lost_writes(hist, final)
    assert not lost, "%d acknowledged puts lost, e.g. %r" % (len(lost), lost[:3])
    return len(hist), len(acked)


def bulk_put(host, items, threads=8, timeout=15):
    """Put every (key, value) of items with `threads` keep-alive connections; returns how
    many were acknowledged. For filling a log quickly, not for checking outcomes."""
    items = list(items)
    lock = threading.Lock()
    state = {"next": 0, "ok": 0, "errors": 0}

    def run():
        conn = None
        while True:
            with lock:
                if state["next"] >= len(items) or state["errors"] > 100:
                    break
                k, v = items[state["next"]]
                state["next"] += 1
            body = json.dumps({"key": b64(k), "value": b64(v)}).encode()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, CLIENT_PORT, timeout=timeout)
                conn.request("POST", "/v3/kv/put", body=body,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                good = r.status == 200
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                good = False
                if conn is not None:
                    conn.close()
                conn = None
            with lock:
                state["ok" if good else "errors"] += 1
        if conn is not None:
            conn.close()
    ts = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout * 2 + len(items) / 50.0)
    assert not any(t.is_alive() for t in ts), "bulk_put threads did not finish"
    return state["ok"]


# ------------------------------------------------------------------ fixture

@pytest.fixture
def cluster(members):
    """Factory: cluster(n=3, args=(), proxy=False, start=True, **kw) -> Cluster.

    At teardown every cluster is healed, its members stopped by PID and its proxy
    closed; then conftest's `members` teardown turns sanitizer reports and leaked
    workers into a failure."""
    made = []

    def factory(n=3, args=(), proxy=False, start=True, **kw):
        kw.setdefault("prefix", "infra" if not made else "c%d-infra" % len(made))
        c = Cluster(members, n=n, args=args, proxy=proxy, **kw)
        made.append(c)
        if start:
            c.start()
        return c
    yield factory
    errors = []
    for c in made:
        try:
            c.close()
        except BaseException as e:
            errors.append(e)
    if errors:
        raise errors[0]
