"""pytest fixtures for the integration suite: members started per test or per module.

ETCD_BIN selects the binary (default build/etcd under the repo root). Against the
reference etcd 3.4 (/usr/bin/etcd, or ETCD_IMPL=reference) the tests marked
`ours_only` are skipped: they describe where we deliberately differ from etcd 3.4 or
need our process layout.
"""
import os
import re

import pytest

import etcdlib
from etcdlib import IS_REFERENCE, Member

# Members created by the running test (function scope) and those alive across tests.
_test_members = []
_live_members = []


def pytest_configure(config):
    config.addinivalue_line("markers", "ours_only: our behaviour or process layout; "
                            "skipped against the reference etcd 3.4")
    config.addinivalue_line("markers", "default_ports: uses etcd's default ports on "
                            "127.0.0.1 (2379/2380); skipped if they are taken")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


def pytest_report_header(config):
    return "etcd binary: %s (%s)" % (etcdlib.ETCD_BIN,
                                      "reference etcd 3.4" if IS_REFERENCE else "ours")


def pytest_collection_modifyitems(config, items):
    if not IS_REFERENCE:
        return
    skip = pytest.mark.skip(reason="ours only (differs from etcd 3.4 on purpose, "
                            "or needs our process layout)")
    for item in items:
        if "ours_only" in item.keywords:
            item.add_marker(skip)


_outcomes = {}


def pytest_runtest_logreport(report):
    """With ETCD_TEST_RESULTS set, append "<outcome> <test id>" per finished test, as it
    finishes: tests/run.sh counts these, so a run cut short by its time limit still counts."""
    path = os.environ.get("ETCD_TEST_RESULTS")
    if not path:
        return
    o = _outcomes.get(report.nodeid, "passed")
    if report.failed:
        o = "failed"
    elif report.skipped and o != "failed":
        o = "skipped"
    _outcomes[report.nodeid] = o
    if report.when == "teardown":
        with open(path, "a") as f:
            f.write("%s %s\n" % (o, report.nodeid))
        del _outcomes[report.nodeid]


def pytest_runtest_setup(item):
    del _test_members[:]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    seen = []
    for m in _test_members + _live_members:
        if m in seen:
            continue
        seen.append(m)
        rep.sections.append(("etcd stderr: %s (%s)" % (m.name, m.host), m.stderr_tail(80)))


def _finish(m):
    """Stop m by PID and turn sanitizer reports or leaked workers into a failure."""
    m.stop()
    problems = []
    if m.sanitizer_reports():
        problems.append("sanitizer report in stderr of %s:\n%s" % (m.name, m.stderr_tail(120)))
    if m.leftovers:
        problems.append("workers of %s outlived their supervisor: %r" % (m.name, m.leftovers))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


class Members:
    """Factory fixture: new(...) makes a Member in the test's temp dir."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.made = []

    def new(self, name="m", **kw):
        m = Member(self.tmp_path / name, name=name, **kw)
        self.made.append(m)
        _test_members.append(m)
        _live_members.append(m)
        return m

    def start(self, name="m", **kw):
        return self.new(name, **kw).start()

    def finish(self):
        errors = []
        for m in self.made:
            try:
                _finish(m)
            except BaseException as e:  # stop every member even if one fails
                errors.append(e)
            finally:
                if m in _live_members:
                    _live_members.remove(m)
        if errors:
            raise errors[0]


@pytest.fixture
def members(tmp_path):
    f = Members(tmp_path)
    yield f
    f.finish()


@pytest.fixture
def member(members):
    """A fresh single member for this test only."""
    return members.start("m")


@pytest.fixture(scope="module")
def shared_member(tmp_path_factory, request):
    """One member for a whole module; tests keep apart by key prefix."""
    name = re.sub(r"[^A-Za-z0-9]", "", request.module.__name__)[-20:] or "shared"
    m = Member(tmp_path_factory.mktemp(name), name=name)
    _live_members.append(m)
    try:
        m.start()
        yield m
    finally:
        try:
            _finish(m)
        finally:
            _live_members.remove(m)


@pytest.fixture
def client(shared_member):
    # Fail fast rather than let every test of the module wait for its HTTP timeouts.
    m = shared_member
    if not m.running():
        pytest.fail("the module's member exited (%s)" % m.proc.returncode, pytrace=False)
    try:
        etcdlib.wait_until(m.client.healthy, 10, 0.1, "the module's member to be healthy")
    except TimeoutError as e:
        pytest.fail(str(e), pytrace=False)
    return m.client


@pytest.fixture
def pfx(request):
    """A key prefix unique to this test, so tests can share a member."""
    return "t/%s/" % re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
