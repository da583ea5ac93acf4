"""Unit tests of linearizability.py on synthetic histories (no etcd member needed)."""
import math
import random
import threading

import pytest

from linearizability import Recorder, check

INF = math.inf


def op(client, kind, call, ret, key="k", arg=None, output=None, status=None):
    d = {"client": client, "op": kind, "key": key, "arg": arg, "output": output,
         "call": float(call), "return": float(ret)}
    if status:
        d["status"] = status
    return d


def put(c, call, ret, value, key="k"):
    return op(c, "put", call, ret, key, arg=value)


def get(c, call, ret, output, key="k"):
    return op(c, "get", call, ret, key, output=output)


def delete(c, call, ret, deleted=None, key="k"):
    return op(c, "delete", call, ret, key, output=deleted)


def cas(c, call, ret, expected, new, ok, key="k"):
    return op(c, "cas", call, ret, key, arg=(expected, new), output=ok)


def assert_ok(h):
    r = check(h, timeout_s=5)
    assert r.ok is True, str(r)


def assert_bad(h, key="k"):
    r = check(h, timeout_s=5)
    assert r.ok is False, "expected a violation, got %r" % (r,)
    assert r.key == key
    assert r.explanation
    return r


# ------------------------------------------------------------------ basic cases

def test_empty_and_sequential():
    assert_ok([])
    assert_ok([get(0, 0, 1, None)])
    assert_ok([put(0, 0, 1, "a"), get(0, 2, 3, "a"), put(1, 4, 5, "b"),
               get(2, 6, 7, "b"), delete(0, 8, 9, 1), get(1, 10, 11, None),
               delete(1, 12, 13, 0), put(2, 14, 15, "c"), get(0, 16, 17, "c")])


def test_sequential_wrong_read():
    assert_bad([put(0, 0, 1, "a"), get(0, 2, 3, "b")])
    assert_bad([put(0, 0, 1, "a"), delete(0, 2, 3), get(0, 4, 5, "a")])
    assert_bad([put(0, 0, 1, "a"), delete(0, 2, 3, 0)])     # deleted count wrong
    assert_bad([delete(0, 2, 3, 1)])


def test_concurrent_writes_every_order():
    # Two overlapping puts, a read overlapping both, then two reads after both.
    # Legal: the middle read sees None, a or b; the later reads agree with each other,
    # and if the middle read saw the final value's rival... it is still fine, since the
    # middle read may sit between the puts.  Enumerate and compare with the rules.
    for mid in (None, "a", "b"):
        for last1 in ("a", "b", None, "x"):
            for last2 in ("a", "b"):
                h = [put(0, 0, 10, "a"), put(1, 0, 10, "b"), get(2, 1, 11, mid),
                     get(2, 12, 13, last1), get(3, 14, 15, last2)]
                r = check(h, timeout_s=5)
                legal = last1 == last2 and last1 in ("a", "b")
                assert r.ok is legal, (mid, last1, last2, str(r))


def test_overlapping_read_may_see_old_or_new():
    for seen in (None, "a"):
        assert_ok([put(0, 0, 10, "a"), get(1, 1, 2, seen)])
        assert_ok([get(1, 0, 3, seen), put(0, 1, 2, "a")])
    # Two reads inside one write: once the new value is seen, no going back.
    assert_ok([put(0, 0, 10, "a"), get(1, 1, 2, None), get(1, 3, 4, "a")])
    assert_bad([put(0, 0, 10, "a"), get(1, 1, 2, "a"), get(1, 3, 4, None)])
    # Even if the reads come from different clients (real time orders them).
    assert_bad([put(0, 0, 10, "a"), get(1, 1, 2, "a"), get(2, 3, 4, None)])


def test_stale_read_after_completed_write():
    assert_bad([put(0, 0, 1, "a"), put(0, 2, 3, "b"), get(1, 4, 5, "a")])


def test_read_of_value_never_written():
    r = assert_bad([put(0, 0, 1, "a"), get(1, 0.5, 5, "zzz")])
    assert "zzz" in r.explanation


def test_lost_acknowledged_write():
    assert_bad([put(0, 0, 1, "a"), get(1, 2, 3, None)])
    assert_bad([put(0, 0, 1, "a"), put(1, 2, 3, "b"), get(0, 4, 5, "a"), get(1, 6, 7, "a")])


def test_read_from_the_future():
    assert_bad([get(1, 0, 1, "a"), put(0, 2, 3, "a")])


# ------------------------------------------------------------------ ambiguous and failed

@pytest.mark.parametrize("seen", [None, "a"])
def test_ambiguous_write_may_or_may_not_appear(seen):
    assert_ok([put(0, 0, INF, "a"), get(1, 5, 6, seen), get(1, 7, 8, seen)])
    # also written as status=ambiguous with a bogus return time and output
    amb = op(0, "put", 0, 1, arg="a", output="junk", status="ambiguous")
    assert_ok([amb, get(1, 5, 6, seen)])


def test_ambiguous_write_appears_once_for_good():
    # Once someone has seen it, it cannot vanish (nothing else writes).
    assert_bad([put(0, 0, INF, "a"), get(1, 5, 6, "a"), get(1, 7, 8, None)])
    # But it may appear late, after an earlier read missed it, even after other writes.
    assert_ok([put(0, 0, INF, "a"), get(1, 5, 6, None), put(2, 7, 8, "b"),
               get(1, 9, 10, "a")])


def test_ambiguous_write_cannot_take_effect_before_its_call():
    assert_bad([get(1, 0, 1, "a"), put(0, 2, INF, "a")])


def test_definite_failure_is_dropped():
    failed = op(0, "put", 0, 1, arg="a", status="fail")
    assert_ok([failed, get(1, 2, 3, None)])
    assert_bad([failed, get(1, 2, 3, "a")])


def test_ambiguous_ops_only():
    assert_ok([put(0, 0, INF, "a"), delete(1, 0, INF), cas(2, 1, INF, "a", "b", None),
               get(3, 0, INF, None)])


# ------------------------------------------------------------------ compare-and-set

def test_cas():
    assert_ok([put(0, 0, 1, "a"), cas(0, 2, 3, "a", "b", True), get(0, 4, 5, "b")])
    assert_ok([put(0, 0, 1, "a"), cas(0, 2, 3, "x", "b", False), get(0, 4, 5, "a")])
    assert_ok([cas(0, 0, 1, None, "a", True), cas(1, 2, 3, None, "b", False),
               get(0, 4, 5, "a")])
    assert_bad([put(0, 0, 1, "a"), cas(0, 2, 3, "a", "b", False)])
    assert_bad([put(0, 0, 1, "a"), cas(0, 2, 3, "x", "b", True)])
    assert_bad([put(0, 0, 1, "a"), cas(0, 2, 3, "a", "b", True), get(0, 4, 5, "a")])


def test_concurrent_cas_only_one_wins():
    two_winners = [put(0, 0, 1, 0), cas(1, 2, 5, 0, 1, True), cas(2, 2, 5, 0, 1, True)]
    assert_bad(two_winners)
    assert_ok([put(0, 0, 1, 0), cas(1, 2, 5, 0, 1, True), cas(2, 2, 5, 0, 1, False),
               get(0, 6, 7, 1)])
    # An ambiguous cas may have won: a later read of its value is fine, and so is not.
    for seen in (0, 1):
        assert_ok([put(0, 0, 1, 0), cas(1, 2, INF, 0, 1, None), get(0, 6, 7, seen)])
    assert_bad([put(0, 0, 1, 0), cas(1, 2, INF, 5, 1, None), get(0, 6, 7, 1)])


# ------------------------------------------------------------------ several keys

def test_only_the_bad_key_is_reported():
    h = []
    for k in ("a", "b", "c", "d"):
        h += [put(0, 0, 1, "v", key=k), get(1, 2, 3, "v", key=k)]
    h.append(get(2, 4, 5, "nope", key="c"))
    r = assert_bad(h, key="c")
    assert r.bad_keys == ["c"]
    assert "'c'" in r.explanation


def test_keys_are_independent():
    # Per key each read is fine; a single global register would reject this.
    assert_ok([put(0, 0, 1, "x", key="a"), put(0, 2, 3, "y", key="b"),
               get(1, 4, 5, "x", key="a"), get(1, 6, 7, "y", key="b")])


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        check([{"op": "put", "key": "k", "call": 0.0}])
    with pytest.raises(ValueError):
        check([put(0, 2, 1, "a")])
    with pytest.raises(ValueError):
        check([op(0, "incr", 0, 1)])


# ------------------------------------------------------------------ against brute force

def brute_force(h):
    """Linearizable by trying every order consistent with real time (tiny histories).
    An ambiguous op placed last is the same as it never happening."""
    ops = []
    for d in h:
        amb = d.get("status") == "ambiguous" or d["return"] == INF
        if d.get("status") == "fail" or (amb and d["op"] == "get"):
            continue
        ops.append((d, amb, INF if amb else d["return"]))

    def step(state, d, amb):
        kind = d["op"]
        if kind == "put":
            return True, d["arg"]
        if kind == "get":
            return d["output"] == state, state
        if kind == "delete":
            ok = amb or d["output"] is None or d["output"] == (state is not None)
            return ok, None
        exp, new = d["arg"]
        hit = state == exp
        return (amb or d["output"] == hit), (new if hit else state)

    def dfs(left, state):
        if not left:
            return True
        first_ret = min(ops[i][2] for i in left)
        for i in left:
            d, amb, _ = ops[i]
            if d["call"] > first_ret:
                continue            # someone else must come first
            ok, s = step(state, d, amb)
            if ok and dfs(left - {i}, s):
                return True
        return False

    return dfs(frozenset(range(len(ops))), None)


def random_small_history(rng):
    h = []
    for c in range(rng.randint(1, 6)):
        call = rng.randint(0, 8)
        ret = call + rng.randint(0, 6)
        kind = rng.choice(("put", "put", "get", "get", "delete", "cas"))
        vals = (None, 1, 2)
        if rng.random() < 0.2:
            ret = INF
        if kind == "put":
            h.append(put(c, call, ret, rng.choice((1, 2))))
        elif kind == "get":
            h.append(get(c, call, ret, rng.choice(vals)))
        elif kind == "delete":
            h.append(delete(c, call, ret, rng.choice((None, 0, 1))))
        else:
            h.append(cas(c, call, ret, rng.choice(vals), rng.choice((1, 2)),
                         rng.choice((True, False))))
    return h


def test_agrees_with_brute_force():
    rng = random.Random(1234)
    seen = {True: 0, False: 0}
    for _ in range(3000):
        h = random_small_history(rng)
        want = brute_force(h)
        r = check(h, timeout_s=5)
        assert r.ok is want, (h, str(r))
        seen[want] += 1
    assert seen[True] > 300 and seen[False] > 300, seen


# ------------------------------------------------------------------ randomized, larger

def simulate(rng, n_clients=6, n_ops=120, keys=("x", "y", "z"), ambiguous=0.05):
    """A history of a real register: every op takes effect at a random instant inside
    its interval (or, when ambiguous, maybe never), and outputs come from that order."""
    events = []             # (linearization point, op dict, takes effect)
    serial = 0
    for c in range(n_clients):
        t = rng.random()
        for _ in range(n_ops // n_clients):
            call = t + rng.random() * 0.5
            ret = call + rng.expovariate(1.0)
            point = rng.uniform(call, ret)
            key = rng.choice(keys)
            kind = rng.choice(("put", "put", "get", "get", "get", "delete", "cas"))
            serial += 1
            value = "v%d-%d" % (c, serial)
            if kind == "put":
                d = put(c, call, ret, value, key)
            elif kind == "get":
                d = get(c, call, ret, None, key)
            elif kind == "delete":
                d = delete(c, call, ret, None, key)
            else:
                d = cas(c, call, ret, None, value, None, key)
            effect = True
            if kind != "get" and rng.random() < ambiguous:
                d["return"] = INF
                d["output"] = None
                effect = rng.random() < 0.5
            events.append((point, d, effect))
            t = ret
    state = {}
    written = {k: [None] for k in keys}
    for point, d, effect in sorted(events, key=lambda e: e[0]):
        k = d["key"]
        cur = state.get(k)
        if d["op"] == "put":
            if effect:
                state[k] = d["arg"]
                written[k].append(d["arg"])
        elif d["op"] == "get":
            d["output"] = cur
        elif d["op"] == "delete":
            if effect:
                state[k] = None
            if d["return"] != INF:
                d["output"] = 0 if cur is None else 1
        else:
            # expect the current value or one written before (so some fail)
            exp = rng.choice(written[k][-3:])
            d["arg"] = (exp, d["arg"][1])
            hit = cur == exp
            if effect and hit:
                state[k] = d["arg"][1]
                written[k].append(d["arg"][1])
            if d["return"] != INF:
                d["output"] = hit
    return [d for _, d, _ in events]


def test_random_register_histories_are_linearizable():
    for seed in range(25):
        rng = random.Random(seed)
        h = simulate(rng)
        r = check(h, timeout_s=10)
        assert r.ok is True, "seed %d: %s" % (seed, r)


def test_random_histories_with_a_corrupted_read_are_not():
    bad = 0
    for seed in range(25):
        rng = random.Random(1000 + seed)
        h = simulate(rng)
        reads = [d for d in h if d["op"] == "get" and d["return"] != INF]
        if seed % 2:
            # a value nobody ever wrote
            victim = rng.choice(reads)
            victim["output"] = "never-written"
        else:
            # a value from the future: written by a put called after the read returned
            pairs = [(g, p) for g in reads for p in h
                     if p["op"] == "put" and p["key"] == g["key"]
                     and p["call"] > g["return"]]
            if not pairs:
                continue
            victim, p = rng.choice(pairs)
            victim["output"] = p["arg"]
        r = check(h, timeout_s=10)
        assert r.ok is False, "seed %d: corruption not found" % seed
        assert r.key == victim["key"]
        bad += 1
    assert bad >= 20


def test_timeout_gives_no_verdict():
    # Many concurrent ambiguous writes and reads that never settle: a big search.
    rng = random.Random(7)
    h = [put(c, 0, INF, c) for c in range(40)]
    h += [get(100 + i, 1 + i, 1.5 + i, rng.randrange(40)) for i in range(40)]
    h.append(get(999, 100, 101, "impossible"))
    r = check(h, timeout_s=0.2)
    assert r.ok in (None, False)
    if r.ok is None:
        assert r.key == "k" and "no verdict" in r.explanation


# ------------------------------------------------------------------ the recorder

def test_recorder_from_threads():
    rec = Recorder()
    lock = threading.Lock()
    reg = {}

    def client(c):
        for i in range(200):
            key = "k%d" % (i % 3)
            if i % 2:
                p = rec.invoke(c, "put", key, "%d-%d" % (c, i))
                with lock:
                    reg[key] = "%d-%d" % (c, i)
                p.ok()
            else:
                p = rec.invoke(c, "get", key)
                with lock:
                    v = reg.get(key)
                p.ok(v)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(rec) == 800
    r = rec.check(timeout_s=10)
    assert r.ok is True, str(r)


def test_recorder_ambiguous_fail_and_unfinished():
    rec = Recorder()
    rec.invoke(0, "put", "k", "a").ok()
    rec.invoke(0, "put", "k", "b").fail()
    rec.invoke(0, "put", "k", "c").ambiguous()
    rec.invoke(1, "put", "k", "d")          # never finished: counts as ambiguous
    rec.invoke(2, "get", "k").ok("d")
    h = rec.history()
    assert [d["status"] for d in h] == ["ok", "fail", "ambiguous", "ambiguous", "ok"]
    assert h[2]["return"] == INF and h[3]["return"] == INF
    assert rec.check().ok is True
    rec.invoke(2, "get", "k").ok("b")        # the failed write can never be seen
    r = rec.check()
    assert r.ok is False and r.key == "k"
    with pytest.raises(ValueError):
        rec.invoke(0, "incr", "k")
