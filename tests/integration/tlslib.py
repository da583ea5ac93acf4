"""TLS helpers for the integration suite: certificates made at test time, https clients.

Certificates and keys are generated with the openssl CLI into the test's temp dir (no key
is ever committed). TlsClient is etcdlib.Client over https, with an optional client
certificate; handshake() reports how a bare TLS handshake ends. Stdlib only.
"""
import http.client
import os
import socket
import ssl
import subprocess
from pathlib import Path

import etcdlib

OPENSSL = "openssl"
OPENSSL_TIMEOUT = 30


def openssl(*args, cwd=None, input=None):
    """Run the openssl CLI; return its stdout (str) or raise with its stderr."""
    p = subprocess.run([OPENSSL] + [str(a) for a in args], cwd=cwd, input=input,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=None if input is not None else subprocess.DEVNULL,
                       timeout=OPENSSL_TIMEOUT)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(map(str, args)),
                                                      p.stderr.decode(errors="replace")))
    return p.stdout.decode(errors="replace")


def _newkey(path, kind):
    if kind == "rsa":
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                "-out", path)
    elif kind == "ec":
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", path)
    else:
        raise ValueError(kind)
    os.chmod(path, 0o600)


class CA:
    """A self-signed CA (RSA-2048, CA:TRUE) in directory d; issue() signs leaf certs."""

    def __init__(self, d, name):
        self.dir = Path(d)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.crt = self.dir / ("%s.crt" % name)
        self.key = self.dir / ("%s.key" % name)
        _newkey(self.key, "rsa")
        ext = self.dir / ("%s.ext" % name)
        ext.write_text("[v3]\nbasicConstraints=critical,CA:TRUE\n"
                       "keyUsage=critical,keyCertSign,cRLSign\n"
                       "subjectKeyIdentifier=hash\n")
        openssl("req", "-x509", "-new", "-key", self.key, "-sha256", "-days", "2",
                "-subj", "/O=etcd-tests/CN=%s" % name, "-out", self.crt,
                "-config", ext, "-extensions", "v3")
        ext.unlink()
        self._serial = 1

    def issue(self, name, cn=None, ips=(), dns=(), eku=("serverAuth", "clientAuth"),
              kind="rsa", out_dir=None):
        """A certificate and key signed by this CA: (crt path, key path)."""
        d = Path(out_dir) if out_dir else self.dir
        d.mkdir(parents=True, exist_ok=True)
        crt, key = d / ("%s.crt" % name), d / ("%s.key" % name)
        csr, ext = d / ("%s.csr" % name), d / ("%s.ext" % name)
        _newkey(key, kind)
        openssl("req", "-new", "-key", key, "-subj", "/CN=%s" % (cn or name), "-out", csr)
        lines = ["basicConstraints=critical,CA:FALSE",
                 "keyUsage=critical,digitalSignature,keyEncipherment",
                 "authorityKeyIdentifier=keyid"]
        if eku:
            lines.append("extendedKeyUsage=" + ",".join(eku))
        sans = ["IP:%s" % i for i in ips] + ["DNS:%s" % n for n in dns]
        if sans:
            lines.append("subjectAltName=" + ",".join(sans))
        ext.write_text("\n".join(lines) + "\n")
        self._serial += 1
        openssl("x509", "-req", "-in", csr, "-CA", self.crt, "-CAkey", self.key,
                "-set_serial", "%d" % (self._serial * 1000 + os.getpid() % 1000),
                "-days", "2", "-sha256", "-extfile", ext, "-out", crt)
        csr.unlink()
        ext.unlink()
        return crt, key


def cert_text(path):
    """`openssl x509 -text` of a PEM certificate."""
    return openssl("x509", "-in", path, "-noout", "-text")


def cert_serial(path):
    return openssl("x509", "-in", path, "-noout", "-serial").strip()


# ---------------------------------------------------------------- client side

def context(ca=None, cert=None, key=None, verify=True, ciphers=None, tls_max=None,
            tls_min=None):
    """An ssl.SSLContext for a client: trust ca (a file) or nothing; verify or not;
    present cert/key if given; optionally limit TLS 1.2 ciphers (OpenSSL names) and
    the protocol versions (ssl.TLSVersion)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        if ca:
            ctx.load_verify_locations(cafile=str(ca))
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(str(cert), str(key))
    if ciphers:
        ctx.set_ciphers(ciphers)
    if tls_max:
        ctx.maximum_version = tls_max
    if tls_min:
        ctx.minimum_version = tls_min
    return ctx


class TlsClient(etcdlib.Client):
    """etcdlib.Client over https: one connection per request, bounded by a timeout."""

    def __init__(self, host, port=2379, ctx=None, timeout=etcdlib.HTTP_TIMEOUT):
        super().__init__(host, port, timeout)
        self.ctx = ctx

    @property
    def url(self):
        return "https://%s:%d" % (self.host, self.port)

    def request(self, method, path, body=None, headers=None, timeout=None):
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                           timeout=timeout or self.timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            return etcdlib.Resp(r.status, r.reason, r.headers, data)
        finally:
            conn.close()

    def healthy(self, timeout=1.0):
        try:
            r = self.get("/health", timeout=timeout)
        except (OSError, http.client.HTTPException, ssl.SSLError):
            return False
        return r.status == 200 and r.json == {"health": "true"}


def handshake(host, port, ctx, timeout=10.0, request=True, source=None):
    """Handshake with ctx, then (if request) send GET /version and read the answer.

    Returns (None, status line) on success or (exception, None) on failure. With TLS 1.3
    the server checks the client certificate after the client thinks the handshake is
    done, so a refusal may only show when reading: request=True reads once. source: the
    local address to connect from.
    """
    s = socket.create_connection((host, port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    try:
        t = ctx.wrap_socket(s, server_hostname=host)
        s = t
        if request:
            t.sendall(b"GET /version HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                      % host.encode())
            data = b""
            while b"\r\n" not in data:
                chunk = t.recv(4096)
                if not chunk:
                    raise ConnectionError("connection closed without an answer")
                data += chunk
            return None, data.split(b"\r\n", 1)[0].decode(errors="replace")
        return None, t.version()
    except (OSError, ssl.SSLError) as e:
        return e, None
    finally:
        s.close()


def refused_with(err, reason):
    """True if err (from handshake()) is an SSL error whose reason is `reason`
    (e.g. "SSLV3_ALERT_BAD_CERTIFICATE", "CERTIFICATE_VERIFY_FAILED")."""
    if err is None:
        return False
    if isinstance(err, ssl.SSLError) and getattr(err, "reason", None) == reason:
        return True
    return reason.lower() in str(err).lower()
