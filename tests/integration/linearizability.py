"""Linearizability checker for key-value histories (Wing & Gong / Lowe, porcupine style).

Concurrent client threads record operations through a Recorder; check(history) then
decides whether some total order of the operations, consistent with real time, explains
every observed output under a per-key register model. Stdlib only.

A history is a list of dicts, one per operation:

    client   any label (for messages only)
    op       'put' | 'get' | 'delete' | 'cas'
    key      the key (hashable); the history is split per key (P-compositionality:
             a history is linearizable iff each key's sub-history is)
    arg      put: the value written; cas: (expected, new) or {'expected', 'new'};
             get, delete: unused.  Alias: 'value'.
    output   get: the value read, None when the key is absent;
             cas: True if the compare succeeded (the new value was written);
             delete: the number of keys deleted (0/1), or None to not check it;
             put: ignored.  Alias: 'result'.
    call     time.monotonic() before the request was sent (alias 'call_time')
    return   time.monotonic() after the answer arrived (alias 'return_time');
             math.inf when the outcome is unknown
    status   optional: 'ok' (default), 'ambiguous' or 'fail'

An ambiguous operation (timeout, connection reset, 503: it may or may not have taken
effect) has return = inf and an unknown output; it may be linearized anywhere after its
call, and linearizing it after everything else is the same as it never having happened.
A definite failure (a 4xx error, status 'fail') is dropped before checking.

The model is a register per key: it holds a value or None (absent); put sets it, delete
sets None, get must return the current value, cas(expected, new) succeeds iff the current
value equals expected (None: the key must be absent) and then sets new.

The search is porcupine's: call and return entries in one doubly linked list ordered by
time; at each step try to linearize a pending call whose effect the model accepts, lifting
it and its return out of the list; on meeting a return entry (an operation that would
have to be linearized by now but cannot be), backtrack. Failed (linearized bitmask,
state) pairs are cached, which bounds the search by the number of distinct frontiers;
for ambiguous operations the cache also prunes by subset (see _check_key).
"""
import bisect
import math
import threading
import time

__all__ = ["check", "Result", "Recorder", "UNKNOWN"]


class _Unknown:
    """The output of an operation whose outcome was not observed."""

    def __repr__(self):
        return "?"


UNKNOWN = _Unknown()

OPS = ("put", "get", "delete", "cas")

# How many steps of the search run between two looks at the clock.
_CLOCK_EVERY = 2048
# How many operations an explanation lists at most, per list.
_SHOW = 12


class Result:
    """The verdict of check().

    ok           True (linearizable), False (not), None (timed out before deciding)
    key          the first key found not linearizable (or timed out), else None
    bad_keys     every key found not linearizable
    explanation  a few lines saying why, for an assertion message
    """

    def __init__(self, ok, key=None, bad_keys=(), explanation="", keys_checked=0):
        self.ok = ok
        self.key = key
        self.bad_keys = list(bad_keys)
        self.explanation = explanation
        self.keys_checked = keys_checked

    def __repr__(self):
        return "Result(ok=%r, key=%r)" % (self.ok, self.key)

    def __str__(self):
        if self.ok:
            return "linearizable (%d keys)" % self.keys_checked
        return self.explanation


# ------------------------------------------------------------------ normalising input

class _Op:
    __slots__ = ("idx", "client", "op", "key", "arg", "output", "call", "ret")

    def __init__(self, idx, client, op, key, arg, output, call, ret):
        self.idx = idx          # position in the caller's history, for messages
        self.client = client
        self.op = op
        self.key = key
        self.arg = arg
        self.output = output
        self.call = call
        self.ret = ret

    def describe(self, t0):
        if self.op == "put":
            what = "put(%r)" % (self.arg,)
        elif self.op == "cas":
            what = "cas(%r -> %r)" % self.arg
        else:
            what = self.op + "()"
        if self.ret == math.inf:
            out, end = "?", "never"
        else:
            out, end = repr(self.output), "%.6f" % (self.ret - t0)
        return "#%d client %r %s -> %s  [%.6f, %s]" % (
            self.idx, self.client, what, out, self.call - t0, end)


def _field(d, *names, default=KeyError):
    for n in names:
        if n in d:
            return d[n]
    if default is KeyError:
        raise ValueError("operation %r lacks field %r" % (d, names[0]))
    return default


def _hashable(v):
    """Values become part of the cached state: make lists and dicts hashable."""
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    if isinstance(v, bytearray):
        return bytes(v)
    return v


def _normalise(history):
    """The operations to check, grouped per key; definite failures dropped."""
    per_key = {}
    for i, d in enumerate(history):
        status = d.get("status", "ok")
        if status in ("fail", "failed", "error"):
            continue
        op = _field(d, "op")
        if op not in OPS:
            raise ValueError("operation #%d: unknown op %r" % (i, op))
        call = float(_field(d, "call", "call_time"))
        ret = float(_field(d, "return", "return_time", "ret"))
        ambiguous = status == "ambiguous" or ret == math.inf
        if status not in ("ok", "ambiguous"):
            raise ValueError("operation #%d: unknown status %r" % (i, status))
        if ambiguous:
            ret = math.inf
            output = UNKNOWN
        else:
            output = _field(d, "output", "result", default=None)
            if ret < call:
                raise ValueError("operation #%d returns (%r) before its call (%r)" %
                                 (i, ret, call))
        arg = _field(d, "arg", "value", default=None)
        if op == "cas":
            if isinstance(arg, dict):
                arg = (arg["expected"], arg["new"])
            if not isinstance(arg, (tuple, list)) or len(arg) != 2:
                raise ValueError("operation #%d: cas needs arg (expected, new), not %r" %
                                 (i, arg))
            arg = (_hashable(arg[0]), _hashable(arg[1]))
            if output is not UNKNOWN and not isinstance(output, bool):
                raise ValueError("operation #%d: cas output must be a bool, not %r" %
                                 (i, output))
        else:
            arg = _hashable(arg)
        if op == "get":
            if output is UNKNOWN:
                continue    # a read that returned nothing constrains nothing
            output = _hashable(output)
        key = _hashable(_field(d, "key"))
        per_key.setdefault(key, []).append(
            _Op(i, d.get("client"), op, key, arg, output, call, ret))
    return per_key


# ------------------------------------------------------------------ the model

def _step(state, o):
    """(accepted, new state) for operation o applied to register value `state`."""
    op = o.op
    if op == "get":
        return o.output == state, state
    if op == "put":
        return True, o.arg
    if op == "delete":
        out = o.output
        if out is UNKNOWN or out is None:
            return True, None
        return out == (0 if state is None else 1), None
    expected, new = o.arg       # cas
    hit = state == expected
    if o.output is not UNKNOWN and o.output != hit:
        return False, state
    return True, (new if hit else state)


# ------------------------------------------------------------------ the search

class _Timeout(Exception):
    """Out of time; args[0] is the explanation of the longest prefix so far, or None."""


def _check_key(ops, deadline, t0):
    """None if ops is linearizable, else an explanation; raises _Timeout."""
    n = len(ops)
    # Entries: 0 is the list head; call of op i is 1 + 2i, its return 2 + 2i.
    # Sorted by time, a call before a return at the same instant (treat as overlapping).
    # Only a call's place among returns matters (it may be linearized once the calls
    # before the first remaining return are); among calls, the list order is the order
    # tried.  An ambiguous call is moved to just before the next return, so that
    # configurations without it are searched (and fail, and are cached) first.
    rets = sorted(o.ret for o in ops if o.ret != math.inf)

    def sort_key(e):
        o = ops[(e - 1) >> 1]
        if not e & 1:
            return (o.ret, 1, 0)
        if o.ret != math.inf:
            return (o.call, 0, 0)
        j = bisect.bisect_left(rets, o.call)
        return (rets[j] if j < len(rets) else math.inf, 0, 1)

    order = sorted(range(1, 2 * n + 1), key=sort_key)
    size = 2 * n + 1
    nxt = [-1] * size
    prv = [-1] * size
    prev = 0
    for e in order:
        nxt[prev] = e
        prv[e] = prev
        prev = e
    infinite = [o.ret == math.inf for o in ops]

    state = None
    fin = 0             # linearized operations that returned (bitmask)
    amb = 0             # linearized ambiguous operations (bitmask)
    calls = []          # stack of (op index, state before it)
    # (fin, state) -> ambiguous masks of configurations whose search failed.  A config
    # (fin, a, s) is hopeless if some failed (fin, a', s) has a' a subset of a: any
    # completion of the former completes the latter too, with the ambiguous ops of
    # a - a' appended at the end.  With a' == a this is porcupine's cache; the subset
    # rule spares the 2^k subsets of k pending ambiguous operations.  Only finished
    # (failed) configurations are recorded, never ones still on the stack.
    failed = {}
    best = -1           # longest linearized prefix seen at a dead end
    why = None
    steps = 0
    entry = nxt[0]
    while nxt[0] != -1:
        steps += 1
        if steps % _CLOCK_EVERY == 0 and time.monotonic() > deadline:
            raise _Timeout(why)
        i = (entry - 1) >> 1
        if entry & 1:                       # a call: try to linearize it now
            ok, new_state = _step(state, ops[i])
            if ok:
                if infinite[i]:
                    new_fin, new_amb = fin, amb | (1 << i)
                else:
                    new_fin, new_amb = fin | (1 << i), amb
                seen = failed.get((new_fin, new_state))
                if seen is None or not any(a & ~new_amb == 0 for a in seen):
                    calls.append((i, state))
                    state = new_state
                    fin, amb = new_fin, new_amb
                    # lift the call and its return out of the list
                    r = entry + 1
                    nxt[prv[entry]] = nxt[entry]
                    prv[nxt[entry]] = prv[entry]
                    nxt[prv[r]] = nxt[r]
                    if nxt[r] != -1:
                        prv[nxt[r]] = prv[r]
                    entry = nxt[0]
                    continue
            entry = nxt[entry]
            continue
        # A return: op i had to be linearized by now.  Only ambiguous operations
        # left (their returns sort last): linearize them at the end, in any order;
        # with unknown outputs every model accepts them.
        if infinite[i]:
            return None
        if len(calls) > best:
            best = len(calls)
            why = _explain(ops, calls, state, i, entry, nxt, t0)
        if not calls:
            return why
        # The configuration (fin, amb, state) failed: remember it, keeping only
        # the minimal ambiguous masks.
        k = (fin, state)
        seen = failed.get(k)
        if seen is None:
            failed[k] = [amb]
        else:
            seen[:] = [a for a in seen if a & ~amb != 0]   # drop supersets of amb
            seen.append(amb)
        i, state = calls.pop()
        if infinite[i]:
            amb &= ~(1 << i)
        else:
            fin &= ~(1 << i)
        entry = 1 + 2 * i
        r = entry + 1
        # unlift: put the return back, then the call
        nxt[prv[r]] = r
        if nxt[r] != -1:
            prv[nxt[r]] = r
        nxt[prv[entry]] = entry
        prv[nxt[entry]] = entry
        entry = nxt[entry]
    return None


def _explain(ops, calls, state, blocked, ret_entry, nxt, t0):
    lines = ["longest linearizable prefix: %d of %d operations, leaving the value %r%s" %
             (len(calls), len(ops), state, ":" if calls else "")]
    shown = calls[-_SHOW:]
    if len(calls) > len(shown):
        lines.append("    ... %d earlier" % (len(calls) - len(shown)))
    for i, _ in shown:
        lines.append("    " + ops[i].describe(t0))
    lines.append("then this operation cannot take effect before it returned:")
    lines.append("    " + ops[blocked].describe(t0))
    pending = []
    e = nxt[0]
    while e != -1 and e != ret_entry:
        if e & 1 and (e - 1) >> 1 != blocked:
            pending.append((e - 1) >> 1)
        e = nxt[e]
    if pending:
        lines.append("nor can any of the operations open at that point come first:")
        for i in pending[:_SHOW]:
            lines.append("    " + ops[i].describe(t0))
        if len(pending) > _SHOW:
            lines.append("    ... %d more" % (len(pending) - _SHOW))
    return "\n".join(lines)


def check(history, timeout_s=60.0):
    """Check a whole history (see the module's comment) key by key.

    Keys are checked until the first one found not linearizable; timeout_s bounds the
    whole check, and a check cut short returns ok=None naming the key it was on.
    """
    deadline = time.monotonic() + timeout_s
    per_key = _normalise(history)
    t0 = min((o.call for ops in per_key.values() for o in ops), default=0.0)
    checked = 0
    for key in sorted(per_key, key=repr):
        try:
            why = _check_key(per_key[key], deadline, t0)
        except _Timeout as e:
            why = e.args[0] if e.args else None
            return Result(None, key=key, keys_checked=checked,
                          explanation="key %r: no verdict within %.1f s (%d operations)%s"
                          % (key, timeout_s, len(per_key[key]),
                             "; so far the " + why if why else ""))
        checked += 1
        if why is not None:
            return Result(False, key=key, bad_keys=[key], keys_checked=checked,
                          explanation="key %r is not linearizable (times from the "
                          "first call, in s)\n%s" % (key, why))
    return Result(True, keys_checked=checked)


# ------------------------------------------------------------------ recording

class Pending:
    """One operation in flight: finish it with ok(output), ambiguous() or fail()."""

    __slots__ = ("_rec", "_d")

    def __init__(self, rec, d):
        self._rec = rec
        self._d = d

    def ok(self, output=None):
        """The answer arrived: output is what it says (see the module's comment)."""
        self._rec._finish(self._d, time.monotonic(), "ok", output)

    def ambiguous(self):
        """No answer, or an answer that does not say (timeout, reset, 503)."""
        self._rec._finish(self._d, math.inf, "ambiguous", None)

    def fail(self):
        """A definite refusal (4xx): the operation did not take effect."""
        self._rec._finish(self._d, time.monotonic(), "fail", None)


class Recorder:
    """A thread-safe history: each client thread calls invoke() right before sending a
    request and finishes the returned Pending right after the answer.  Operations never
    finished (a thread died) count as ambiguous."""

    def __init__(self):
        self._lock = threading.Lock()
        self._ops = []

    def invoke(self, client, op, key, arg=None):
        if op not in OPS:
            raise ValueError("unknown op %r" % (op,))
        d = {"client": client, "op": op, "key": key, "arg": arg, "output": None,
             "call": time.monotonic(), "return": math.inf, "status": "pending"}
        with self._lock:
            self._ops.append(d)
        return Pending(self, d)

    def _finish(self, d, ret, status, output):
        with self._lock:
            if d["status"] != "pending":
                raise RuntimeError("operation finished twice: %r" % (d,))
            d["return"] = ret
            d["status"] = status
            d["output"] = output

    def history(self):
        """A copy of the operations so far, pending ones as ambiguous."""
        with self._lock:
            out = []
            for d in self._ops:
                d = dict(d)
                if d["status"] == "pending":
                    d["status"] = "ambiguous"
                    d["return"] = math.inf
                out.append(d)
            return out

    def __len__(self):
        with self._lock:
            return len(self._ops)

    def check(self, timeout_s=60.0):
        return check(self.history(), timeout_s)
