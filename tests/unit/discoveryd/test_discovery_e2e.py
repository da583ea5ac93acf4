#!/usr/bin/env python3
"""discoveryd's etcd discovery client against a real etcd 3.4 (--enable-v2)
as the discovery service, on 127.0.0.102: three members bootstrapping
through one token, the guide's and etcd's failure cases (no size, bad
size, full with either fallback, duplicate name, previously registered),
the retries while the service is down, an http proxy (absolute-form
requests, the target's Host), an https service verified against a CA given
by SSL_CERT_FILE, and https through the proxy (CONNECT).
usage: test_discovery_e2e.py DISC_CLIENT   (exit 77 without etcd)"""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HOST = "127.0.0.102"
CPORT, PPORT = 12379, 12380      # plain etcd
TCPORT, TPPORT = 12381, 12382    # etcd with TLS on its client URL
PROXY_PORT = 12383
DEAD_PORT = 12384                # nothing listens here at first

client = sys.argv[1]
etcd_bin = shutil.which("etcd")
if not etcd_bin:
    print("no etcd binary: skipped")
    sys.exit(77)

tmp = tempfile.mkdtemp(prefix="disc-e2e-")
procs = []
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def start_etcd(name, cport, pport, scheme="http", extra=()):
    d = os.path.join(tmp, name)
    curl = "%s://%s:%d" % (scheme, HOST, cport)
    purl = "http://%s:%d" % (HOST, pport)
    p = subprocess.Popen([etcd_bin, "--enable-v2", "--name", name, "--data-dir", d,
                          "--listen-client-urls", curl, "--advertise-client-urls", curl,
                          "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
                          "--initial-cluster", "%s=%s" % (name, purl)] + list(extra),
                         stdout=subprocess.DEVNULL, stderr=open(d + ".log", "w"))
    procs.append(p)
    return p


def v2(base, method, path, value=None, ctx=None):
    data = urllib.parse.urlencode({"value": value}).encode() if value is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def wait_up(base, ctx=None):
    for _ in range(100):
        try:
            v2(base, "GET", "/v2/keys/", ctx=ctx)
            return
        except Exception:
            time.sleep(0.1)
    raise SystemExit("etcd at %s did not start" % base)


def member_id(urls, token):
    return "%x" % int.from_bytes(hashlib.sha1(("".join(sorted(urls)) + token).encode()).digest()[:8], "big")


def run(url, name, peers, proxy="", fallback="", datadir="", env=None, timeout=30):
    return subprocess.Popen([client, url, name, peers, proxy, fallback, datadir or name + ".etcd"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def finish(p, timeout=30):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    return p.returncode, out.strip(), err


def lines(err):
    """The log lines without their time stamps: 'L | pkg: msg'."""
    return [l[27:] if len(l) > 27 and l[26] == " " else l for l in err.splitlines()]


# A logging HTTP proxy: absolute-form requests are forwarded (one upstream
# connection each), CONNECT makes a tunnel.
proxy_log = []


def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def read_head(f):
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        c = f.read(1)
        if not c:
            return None
        head += c
    return head.decode("latin-1")


def proxy_conn(c):
    f = c.makefile("rb")
    while True:
        head = read_head(f)
        if head is None:
            break
        first, *hdrs = head.split("\r\n")
        method, target, ver = first.split(" ")
        hv = {h.split(":", 1)[0].lower(): h.split(":", 1)[1].strip() for h in hdrs if ":" in h}
        proxy_log.append((method, target, hv.get("host")))
        if method == "CONNECT":
            h, p = target.rsplit(":", 1)
            u = socket.create_connection((h, int(p)))
            c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            threading.Thread(target=pipe, args=(u, c), daemon=True).start()
            pipe(c, u)
            return
        body = f.read(int(hv.get("content-length", "0")))
        pu = urllib.parse.urlsplit(target)
        u = socket.create_connection((pu.hostname, pu.port))
        path = pu.path + ("?" + pu.query if pu.query else "")
        rest = "".join(h + "\r\n" for h in hdrs if h and not h.lower().startswith("connection"))
        u.sendall(("%s %s %s\r\n%sConnection: close\r\n\r\n" % (method, path, ver, rest)).encode("latin-1") + body)
        while True:
            d = u.recv(65536)
            if not d:
                break
            c.sendall(d)
        u.close()
    c.close()


def proxy_serve(ls):
    while True:
        try:
            c, _ = ls.accept()
        except OSError:
            return
        threading.Thread(target=proxy_conn, args=(c,), daemon=True).start()


def main():
    base = "http://%s:%d" % (HOST, CPORT)
    start_etcd("disc", CPORT, PPORT)
    wait_up(base)

    # Three members, one token: all get the same list, in registration order.
    tok = base + "/v2/keys/discovery/tok3"
    v2(base, "PUT", "/v2/keys/discovery/tok3/_config/size", "3")
    peers = {"infra0": "http://127.0.3.10:2380", "infra1": "http://127.0.3.11:2380",
             "infra2": "https://127.0.3.12:2380,http://127.0.3.12:2381"}
    ps = {n: run(tok, n, u) for n, u in peers.items()}
    res = {n: finish(p) for n, p in ps.items()}
    _, d = v2(base, "GET", "/v2/keys/discovery/tok3")
    nodes = sorted(d["node"]["nodes"], key=lambda n: n["createdIndex"])
    want = "OK " + ",".join(
        ",".join("%s=%s" % (n["value"].split("=")[0], u) for u in
                 sorted(x.split("=", 1)[1] for x in n["value"].split(",")))
        for n in nodes)
    for n, (rc, out, err) in res.items():
        check(rc == 0 and out == want, "%s: %r, want %r; %s" % (n, out, want, err))
        ll = lines(err)
        myid = member_id(peers[n].split(","), tok)
        check("N | discovery: found self %s in the cluster" % myid in ll, "%s found self: %s" % (n, ll))
        check("N | discovery: found 3 needed peer(s)" in ll, "%s needed: %s" % (n, ll))
        check(any(l.startswith("N | discovery: found ") and "waiting for" in l for l in ll) or
              ll.count("N | discovery: found self %s in the cluster" % myid) == 1, n)
    keys = {k["key"].rsplit("/", 1)[1]: k["value"] for k in nodes}
    for n, u in peers.items():
        myid = member_id(u.split(","), tok)
        val = ",".join(sorted("%s=%s" % (n, x) for x in u.split(",")))
        check(keys.get(myid) == val, "key %s = %r, want %r" % (myid, keys.get(myid), val))

    # A fourth member: the cluster is full (fast path, no PUT).
    rc, out, err = finish(run(tok, "infra3", "http://127.0.3.13:2380", "", "exit"))
    ll = lines(err)
    check(rc == 1 and out == "ERROR" and ll == [
        "E | etcdmain: failed to join discovery cluster (discovery: cluster is full)",
        "I | etcdmain: discovery token %s was used, but failed to bootstrap the cluster." % tok,
        "I | etcdmain: please generate a new discovery token and try to bootstrap again."],
        "full/exit: %r %r" % (out, ll))
    rc, out, err = finish(run(tok, "infra3", "http://127.0.3.13:2380"))
    # the default fallback: a proxy in front of the first size registrations
    check(rc == 0 and out.startswith("OK(proxy) ") and
          all("infra%d=" % i in out for i in range(3)) and
          "infra3" not in out and
          lines(err) == ["N | etcdmain: discovery cluster full, falling back to proxy"],
          "full/proxy: %r %r" % (out, err))
    _, d = v2(base, "GET", "/v2/keys/discovery/tok3")
    check(len(d["node"]["nodes"]) == 3, "the full cluster got no registration")

    # infra0 again, data dir lost: its key is there (PUT 412/105).
    rc, out, err = finish(run(tok, "infra0", peers["infra0"], "", "", "/tmp/x0"))
    check(rc == 1 and out == "ERROR" and lines(err) == [
        'E | etcdmain: member "infra0" has previously registered with discovery service token (%s).' % tok,
        "E | etcdmain: But etcd could not find valid cluster configuration in the given data dir (/tmp/x0).",
        "I | etcdmain: Please check the given data dir path if the previous bootstrap succeeded",
        "I | etcdmain: or use a new discovery token if the previous bootstrap failed."],
        "dup id: %r %r" % (out, err))

    # No size: the guide's line.
    nos = base + "/v2/keys/discovery/nosize"
    rc, out, err = finish(run(nos, "infra0", peers["infra0"]))
    check(rc == 1 and out == "ERROR" and err == "etcd: error: the cluster doesn\u2019t have a "
          "size configuration value in %s/_config\n" % nos, "no size: %r %r" % (out, err))
    # A size that is not a number.
    v2(base, "PUT", "/v2/keys/discovery/badsize/_config/size", "three")
    rc, out, err = finish(run(base + "/v2/keys/discovery/badsize", "infra0", peers["infra0"]))
    check(rc == 1 and lines(err)[0] == "E | etcdmain: failed to join discovery cluster "
          "(discovery: size key is bad)", "bad size: %r" % err)

    # Two members with one name (size 2): both fail once both are there.
    dup = base + "/v2/keys/discovery/dupname"
    v2(base, "PUT", "/v2/keys/discovery/dupname/_config/size", "2")
    pa = run(dup, "infraX", "http://127.0.3.20:2380")
    pb = run(dup, "infraX", "http://127.0.3.21:2380")
    for p in (pa, pb):
        rc, out, err = finish(p)
        ll = lines(err)
        check(rc == 1 and ll[-3:] == [
            "E | etcdmain: member with duplicated name has registered with discovery service token(%s)." % dup,
            "E | etcdmain: please check (cURL) the discovery token for more information.",
            "E | etcdmain: please do not reuse the discovery token and generate a new one to bootstrap the cluster."],
            "dup name: %r" % ll)

    # The service is down at first: etcd's retry lines, then it works.
    dead = "http://%s:%d/v2/keys/discovery/late" % (HOST, DEAD_PORT)
    p = run(dead, "infra0", "http://127.0.3.30:2380")
    time.sleep(1)
    start_etcd("late", DEAD_PORT, DEAD_PORT + 10)
    wait_up("http://%s:%d" % (HOST, DEAD_PORT))
    v2("http://%s:%d" % (HOST, DEAD_PORT), "PUT", "/v2/keys/discovery/late/_config/size", "1")
    rc, out, err = finish(p)
    ll = lines(err)
    check(rc == 0 and out == "OK infra0=http://127.0.3.30:2380", "late: %r %r" % (out, ll))
    check(ll[:2] == ["E | discovery: error #0: dial tcp %s:%d: connect: connection refused" % (HOST, DEAD_PORT),
                     "I | discovery: cluster status check: error connecting to http://%s:%d, retrying in 2s"
                     % (HOST, DEAD_PORT)], "retry lines: %r" % ll)

    # The service goes away while a member waits: its watch fails, it
    # retries ("waiting for other nodes"), checks again and goes on.
    lbase = "http://%s:%d" % (HOST, DEAD_PORT)
    wtok = lbase + "/v2/keys/discovery/wait"
    v2(lbase, "PUT", "/v2/keys/discovery/wait/_config/size", "2")
    pa = run(wtok, "w0", "http://127.0.3.31:2380")
    time.sleep(0.5)
    procs[-1].terminate()
    procs[-1].wait()
    start_etcd("late", DEAD_PORT, DEAD_PORT + 10)
    wait_up(lbase)
    pb = run(wtok, "w1", "http://127.0.3.32:2380")
    (rc, out, err), (rcb, outb, _) = finish(pa), finish(pb)
    ll = lines(err)
    wid = member_id(["http://127.0.3.31:2380"], wtok)
    check(rc == 0 and rcb == 0 and out == outb == "OK w0=http://127.0.3.31:2380,w1=http://127.0.3.32:2380",
          "restart: %r %r" % (out, outb))
    check("E | discovery: error #0: unexpected EOF" in ll and
          "I | discovery: waiting for other nodes: error connecting to %s, retrying in 2s" % lbase in ll and
          ll.count("N | discovery: found self %s in the cluster" % wid) == 2, "restart lines: %r" % ll)
    procs[-1].terminate()
    procs[-1].wait()

    # A 503 is a ClusterError ("has no leader"); an endpoint that never
    # answers a GET fails it after 5 s, as Go's request context.
    def fake(port, answer):
        fs = socket.socket()
        fs.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        fs.bind((HOST, port))
        fs.listen(8)
        held = []

        def serve():
            while True:
                try:
                    c, _ = fs.accept()
                except OSError:
                    return
                held.append(c)
                if answer:
                    c.recv(65536)
                    c.sendall(answer)
        threading.Thread(target=serve, daemon=True).start()
        return fs
    f503 = fake(DEAD_PORT + 20, b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
    p = run("http://%s:%d/v2/keys/x" % (HOST, DEAD_PORT + 20), "infra0", "http://127.0.3.33:2380")
    time.sleep(1)
    p.terminate()
    _, _, err = finish(p)
    check(lines(err)[:2] == [
        "E | discovery: error #0: client: etcd member http://%s:%d has no leader" % (HOST, DEAD_PORT + 20),
        "I | discovery: cluster status check: error connecting to http://%s:%d, retrying in 2s"
        % (HOST, DEAD_PORT + 20)], "503: %r" % err)
    f503.close()
    fmute = fake(DEAD_PORT + 21, None)
    t0 = time.time()
    rc, out, err = finish(run("http://%s:%d/v2/keys/x" % (HOST, DEAD_PORT + 21), "infra0", "http://127.0.3.33:2380"))
    check(rc == 1 and 4.5 < time.time() - t0 < 8 and lines(err)[0] ==
          "E | etcdmain: failed to join discovery cluster (context deadline exceeded)", "mute: %r" % err)
    fmute.close()

    # Through an http proxy.
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((HOST, PROXY_PORT))
    ls.listen(16)
    threading.Thread(target=proxy_serve, args=(ls,), daemon=True).start()
    purl = "http://%s:%d" % (HOST, PROXY_PORT)
    ptok = base + "/v2/keys/discovery/viaproxy"
    v2(base, "PUT", "/v2/keys/discovery/viaproxy/_config/size", "2")
    pa = run(ptok, "p0", "http://127.0.3.40:2380", purl)
    pb = run(ptok, "p1", "http://127.0.3.41:2380", "%s:%d" % (HOST, PROXY_PORT))
    for p in (pa, pb):
        rc, out, err = finish(p)
        check(rc == 0 and out.startswith("OK ") and len(out.split(",")) == 2, "proxy: %r %r" % (out, err))
        check(lines(err)[0] == 'I | discovery: using proxy "%s"' % purl, "proxy line: %r" % err)
    hostport = "%s:%d" % (HOST, CPORT)
    check(all(m != "CONNECT" and t.startswith("http://" + hostport + "/v2/keys/discovery/viaproxy")
              and h == hostport for m, t, h in proxy_log) and len(proxy_log) >= 10,
          "proxy requests: %r" % proxy_log)
    id0 = member_id(["http://127.0.3.40:2380"], ptok)
    check(("PUT", "http://%s/v2/keys/discovery/viaproxy/%s?prevExist=false" % (hostport, id0), hostport)
          in proxy_log, "proxy PUT: %r" % proxy_log)
    check(("GET", "http://%s/v2/keys/discovery/viaproxy/_config/size?quorum=false&recursive=false&sorted=false"
           % hostport, hostport) == proxy_log[0], "first request: %r" % proxy_log[:1])

    # https: a private CA through SSL_CERT_FILE; without it, the x509 error.
    ca_key, ca, key, crt = (os.path.join(tmp, f) for f in ("ca.key", "ca.pem", "srv.key", "srv.pem"))
    ossl = lambda *a: subprocess.run(["openssl"] + list(a), check=True, capture_output=True)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
         "-days", "2", "-subj", "/CN=disc-test-ca")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt + ".csr", "-subj", "/CN=" + HOST)
    ext = os.path.join(tmp, "ext")
    open(ext, "w").write("subjectAltName=IP:%s\n" % HOST)
    ossl("x509", "-req", "-in", crt + ".csr", "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", crt, "-days", "2", "-extfile", ext)
    start_etcd("tls", TCPORT, TPPORT, "https", ["--cert-file", crt, "--key-file", key])
    import ssl
    sctx = ssl.create_default_context(cafile=ca)
    tbase = "https://%s:%d" % (HOST, TCPORT)
    wait_up(tbase, sctx)
    v2(tbase, "PUT", "/v2/keys/discovery/tls/_config/size", "2", ctx=sctx)
    ttok = tbase + "/v2/keys/discovery/tls"
    env = dict(os.environ, SSL_CERT_FILE=ca)
    proxy_log.clear()
    pa = run(ttok, "t0", "http://127.0.3.50:2380", env=env)
    pb = run(ttok, "t1", "http://127.0.3.51:2380", purl, env=env)
    for p in (pa, pb):
        rc, out, err = finish(p)
        check(rc == 0 and out.startswith("OK ") and len(out.split(",")) == 2, "tls: %r %r" % (out, err))
    check(proxy_log == [("CONNECT", "%s:%d" % (HOST, TCPORT), "%s:%d" % (HOST, TCPORT))],
          "CONNECT: %r" % proxy_log)
    env = dict(os.environ, SSL_CERT_FILE=os.path.join(tmp, "none.pem"))
    p = run(ttok, "t2", "http://127.0.3.52:2380", env=env)
    time.sleep(1)
    p.terminate()
    rc, out, err = finish(p)
    check(lines(err)[:2] == ["E | discovery: error #0: x509: certificate signed by unknown authority",
                             "I | discovery: cluster status check: error connecting to %s, retrying in 2s"
                             % tbase], "untrusted: %r" % err)


try:
    main()
finally:
    for p in procs:
        if p.poll() is None:
            p.terminate()
            p.wait()
    shutil.rmtree(tmp, ignore_errors=True)
if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("ok")
