/*
 * gatewayd's TLS over real sockets, with certificates the openssl CLI makes
 * in a temporary directory: https client and peer listeners next to http
 * ones, client certificate authentication (no certificate, another CA, a
 * revoked one, a wrong CN on the peer port), cipher suites, etcd's
 * "rejected connection" lines, garbage and stalled handshakes, and POST
 * /raft batches over TLS (gatewayd posting to its own peer listener), with
 * a peer of another CA refused.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "gw_tls.h"
#include "harness.h"
#include "peer.h"
#include "raft.pb-c.h"
#include "tls_ctx.h"
#include "certs.h"

#define PEER2 0x1c2d3e4f5a6b7c8dULL

static int tls_client_port, tls_peer_port;

/* gatewayd's log (stderr) into a file while a test looks at it. */
static int saved_err = -1;
static char logbuf[1 << 16];

static void cap_start(void)
{
	fflush(stderr);
	saved_err = dup(2);
	int fd = open(certs_path("log"), O_CREAT | O_TRUNC | O_WRONLY, 0600);
	assert(fd >= 0);
	dup2(fd, 2);
	close(fd);
}

static const char *cap_end(void)
{
	pump_ms(50); /* the server's side of what the client saw */
	fflush(stderr);
	dup2(saved_err, 2);
	close(saved_err);
	int fd = open(certs_path("log"), O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, logbuf, sizeof(logbuf) - 1) : -1;
	logbuf[n > 0 ? n : 0] = 0;
	if (fd >= 0)
		close(fd);
	return logbuf;
}

static int count_of(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static int tcp_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((unsigned short)port);
	assert(fd >= 0);
	assert(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

/* One HTTPS GET as a client would do it, the loop pumped meanwhile. */
struct tget {
	const char *cert, *key, *ca; /* file names in dir, or NULL */
	int tls12;                   /* TLS 1.2 at most */
	const char *ciphers;         /* TLS 1.2 suites offered */
	int status;                  /* -1: failed, err says why */
	char body[1024];
	char err[256];
	int reused;
};

static void ssl_err(struct tget *g, const char *where)
{
	unsigned long e = ERR_get_error();
	char b[200];
	ERR_error_string_n(e, b, sizeof(b));
	snprintf(g->err, sizeof(g->err), "%s: %s", where, e ? b : "eof");
	ERR_clear_error();
}

static int drive(SSL *ssl, int r)
{
	int e = SSL_get_error(ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		pump_ms(1);
		return 1;
	}
	return 0;
}

static void tls_get(struct tget *g, int port, const char *path)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char resp[8192];
	size_t rl = 0;
	int r;
	g->status = -1;
	g->err[0] = g->body[0] = 0;
	if (g->tls12)
		SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	if (g->ciphers)
		SSL_CTX_set_cipher_list(ctx, g->ciphers);
	if (g->cert) {
		assert(SSL_CTX_use_certificate_file(ctx, certs_path(g->cert),
						    SSL_FILETYPE_PEM) == 1);
		assert(SSL_CTX_use_PrivateKey_file(ctx, certs_path(g->key),
						   SSL_FILETYPE_PEM) == 1);
	}
	if (g->ca) {
		assert(SSL_CTX_load_verify_locations(ctx, certs_path(g->ca), NULL));
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	SSL *ssl = SSL_new(ctx);
	int fd = tcp_connect(port);
	SSL_set_fd(ssl, fd);
	X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
	for (int i = 0; (r = SSL_connect(ssl)) != 1; i++) {
		if (i > 5000 || !drive(ssl, r)) {
			ssl_err(g, "handshake");
			goto out;
		}
	}
	char req[256];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n"
			 "Connection: close\r\n\r\n", path);
	for (int i = 0; (r = SSL_write(ssl, req, n)) <= 0; i++) {
		if (i > 5000 || !drive(ssl, r)) {
			ssl_err(g, "write");
			goto out;
		}
	}
	for (int i = 0; i < 5000; i++) {
		r = SSL_read(ssl, resp + rl, (int)(sizeof(resp) - 1 - rl));
		if (r > 0) {
			rl += (size_t)r;
			continue;
		}
		if (!drive(ssl, r))
			break;
	}
	resp[rl] = 0;
	if (!rl) {
		ssl_err(g, "read");
		goto out;
	}
	g->status = atoi(resp + 9);
	const char *b = strstr(resp, "\r\n\r\n");
	snprintf(g->body, sizeof(g->body), "%s", b ? b + 4 : "");
out:
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
}

#define VERSION_BODY "{\"etcdserver\":\"3.4.23\",\"etcdcluster\":\"3.4.0\"}"

static void test_client_port(void)
{
	struct tget g = { .cert = "client.crt", .key = "client.key", .ca = "ca.crt" };
	tls_get(&g, tls_client_port, "/version");
	CHECK(g.status == 200 && strcmp(g.body, VERSION_BODY) == 0,
	      "CA-signed client: %d %s %s", g.status, g.body, g.err);

	/* TLS 1.2 with the one suite allowed, and with another. */
	g.tls12 = 1;
	g.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";
	tls_get(&g, tls_client_port, "/version");
	CHECK(g.status == 200, "TLS 1.2, allowed suite: %d %s", g.status, g.err);
	g.ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384";
	cap_start();
	tls_get(&g, tls_client_port, "/version");
	const char *log = cap_end();
	CHECK(g.status == -1, "TLS 1.2, other suite: %d", g.status);
	CHECK(strstr(log, "(error \"tls: no cipher suite supported by both "
			  "client and server\", ServerName \"\")"),
	      "no shared suite logged: %s", log);

	/* The http listener next to it still answers. */
	struct exchange *x = http(EVHTTP_REQ_GET, "/version", NULL);
	EXPECT(x, 200, VERSION_BODY);
}

static void test_refused(void)
{
	struct tget g = { .ca = "ca.crt" };
	cap_start();
	tls_get(&g, tls_client_port, "/version");
	const char *log = cap_end();
	CHECK(g.status == -1, "no client certificate: %d %s", g.status, g.body);
	CHECK(strstr(log, " I | embed: rejected connection from \"127.0.0.1:") &&
	      strstr(log, "(error \"tls: client didn't provide a certificate\", "
			  "ServerName \"\")"),
	      "log: %s", log);

	g = (struct tget){ .cert = "other.crt", .key = "other.key", .ca = "ca.crt" };
	cap_start();
	tls_get(&g, tls_client_port, "/version");
	log = cap_end();
	CHECK(g.status == -1, "client of another CA: %d", g.status);
	CHECK(strstr(log, "(error \"tls: failed to verify client certificate: "
			  "x509: certificate signed by unknown authority\", "
			  "ServerName \"\")"), "log: %s", log);

	g = (struct tget){ .cert = "revoked.crt", .key = "revoked.key", .ca = "ca.crt" };
	cap_start();
	tls_get(&g, tls_client_port, "/version");
	log = cap_end();
	CHECK(g.status == -1, "revoked client: %d", g.status);
	CHECK(strstr(log, "(error \"revoked certificate\""), "log: %s", log);

	/* A client that does not trust our CA refuses us. */
	g = (struct tget){ .cert = "client.crt", .key = "client.key", .ca = "ca2.crt" };
	cap_start();
	tls_get(&g, tls_client_port, "/version");
	log = cap_end();
	CHECK(g.status == -1 && strstr(g.err, "certificate verify failed"),
	      "untrusting client: %d %s", g.status, g.err);
	CHECK(strstr(log, "(error \"remote error: tls: unknown certificate "
			  "authority\""), "log: %s", log);

	/* The peer port wants CN infra0. */
	g = (struct tget){ .cert = "m.crt", .key = "m.key", .ca = "ca.crt" };
	tls_get(&g, tls_peer_port, "/version");
	CHECK(g.status == 200, "peer with CN infra0: %d %s", g.status, g.err);
	g = (struct tget){ .cert = "client.crt", .key = "client.key", .ca = "ca.crt" };
	cap_start();
	tls_get(&g, tls_peer_port, "/version");
	log = cap_end();
	CHECK(g.status == -1, "peer with CN client: %d", g.status);
	CHECK(strstr(log, "(error \"client certificate authentication failed\""),
	      "log: %s", log);
}

static int wait_eof(int fd, int ms)
{
	char b[256];
	for (int i = 0; i < ms; i++) {
		ssize_t n = read(fd, b, sizeof(b));
		if (n == 0 || (n < 0 && errno != EAGAIN))
			return 1;
		pump_ms(1);
	}
	return 0;
}

static void test_garbage(void)
{
	/* Plain HTTP on the https port: closed, logged as etcd does. */
	cap_start();
	int fd = tcp_connect(tls_client_port);
	const char get[] = "GET /version HTTP/1.1\r\nHost: x\r\n\r\n";
	CHECK(write(fd, get, sizeof(get) - 1) == (ssize_t)sizeof(get) - 1, "write");
	CHECK(wait_eof(fd, 2000), "plain HTTP closed");
	close(fd);
	const char *log = cap_end();
	CHECK(strstr(log, "(error \"tls: first record does not look like a TLS "
			  "handshake\", ServerName \"\")"), "log: %s", log);

	/* Stalled handshakes, silent or cut short, end after the bound. */
	gw_tls_set_handshake_ms(&gw, 200);
	cap_start();
	int silent = tcp_connect(tls_client_port);
	int partial = tcp_connect(tls_client_port);
	CHECK(write(partial, "\x16\x03\x01\x00\x50", 5) == 5, "write");
	CHECK(wait_eof(silent, 3000), "silent handshake ended");
	CHECK(wait_eof(partial, 3000), "partial handshake ended");
	close(silent);
	close(partial);
	log = cap_end();
	CHECK(count_of(log, ": i/o timeout\", ServerName") == 2, "log: %s", log);
	gw_tls_set_handshake_ms(&gw, GW_TLS_HANDSHAKE_MS);

	/* A flood of garbage: a few lines, then a count. */
	cap_start();
	for (int i = 0; i < 40; i++) {
		fd = tcp_connect(tls_client_port);
		CHECK(write(fd, "garbage!", 8) == 8, "write");
		wait_eof(fd, 1000);
		close(fd);
	}
	pump_ms(1100);
	fd = tcp_connect(tls_client_port);
	close(fd);
	pump_ms(50);
	log = cap_end();
	int lines = count_of(log, "rejected connection from");
	CHECK(lines >= 2 && lines <= 2 * GW_TLS_LOG_PER_S + 1,
	      "rate limited: %d lines", lines);
	CHECK(strstr(log, "more rejected connections not logged"), "log: %s", log);

	/* And the member still serves. */
	struct tget g = { .cert = "client.crt", .key = "client.key", .ca = "ca.crt" };
	tls_get(&g, tls_client_port, "/version");
	CHECK(g.status == 200, "still serving: %d %s", g.status, g.err);
}

static size_t pack_msg(uint8_t *out, uint64_t to, uint64_t index)
{
	Raftpb__Message m = RAFTPB__MESSAGE__INIT;
	m.type = RAFTPB__MESSAGE_TYPE__MsgHeartbeat;
	m.to = to;
	m.from = MEMBER;
	m.term = 3;
	m.index = index;
	return raftpb__message__pack(&m, out);
}

/* An https server of another CA, standing in for a foreign peer. */
static int foreign_hits;

static void on_foreign(struct evhttp_request *req, void *arg)
{
	(void)arg;
	foreign_hits++;
	evhttp_send_reply(req, 204, "No Content", NULL);
}

static struct bufferevent *foreign_bev(struct event_base *b, void *arg)
{
	return bufferevent_openssl_socket_new(b, -1, SSL_new(arg),
		BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

static void test_peer_send(void)
{
	uint8_t m[64];
	size_t n;

	/* gatewayd posts to its own https peer listener. */
	extra_member_id = PEER2;
	snprintf(extra_member_url, sizeof(extra_member_url),
		 "https://127.0.0.1:%d", tls_peer_port);
	peer_storaged_up(&gw);
	pump_ms(30);
	n_raft_msgs = 0;
	n = pack_msg(m, PEER2, 41);
	link_send(fake_raft, MSG_RAFT_MSG, 0, m, n);
	for (int i = 0; i < 3000 && n_raft_msgs < 1; i++)
		pump_ms(1);
	CHECK(n_raft_msgs == 1 && raft_msg_len[0] == n &&
	      !memcmp(raft_msgs[0], m, n), "over TLS: %d messages", n_raft_msgs);
	/* The same connection carries the next batch. */
	n = pack_msg(m, PEER2, 42);
	link_send(fake_raft, MSG_RAFT_MSG, 0, m, n);
	for (int i = 0; i < 3000 && n_raft_msgs < 2; i++)
		pump_ms(1);
	CHECK(n_raft_msgs == 2, "second batch: %d", n_raft_msgs);

	/* A peer whose certificate another CA signed: refused, logged. */
	SSL_CTX *ctx;
	char err[256];
	Ipc__TlsInfo ti = IPC__TLS_INFO__INIT;
	ti.cert_file = certs_path("other.crt");
	ti.key_file = certs_path("other.key");
	assert(tls_ctx_server(&ti, NULL, 0, &ctx, err, sizeof(err)) == 0);
	struct evhttp *h = evhttp_new(base);
	evhttp_set_bevcb(h, foreign_bev, ctx);
	evhttp_set_gencb(h, on_foreign, NULL);
	struct evhttp_bound_socket *bs =
		evhttp_bind_socket_with_handle(h, "127.0.0.1", 0);
	assert(bs);
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&a, &alen);
	snprintf(extra_member_url, sizeof(extra_member_url),
		 "https://127.0.0.1:%d", ntohs(a.sin_port));
	peer_storaged_up(&gw);
	pump_ms(30);
	cap_start();
	n = pack_msg(m, PEER2, 43);
	link_send(fake_raft, MSG_RAFT_MSG, 0, m, n);
	pump_ms(300);
	const char *log = cap_end();
	CHECK(foreign_hits == 0, "the foreign peer got %d requests", foreign_hits);
	CHECK(strstr(log, "W | rafthttp: health check for peer 1c2d3e4f5a6b7c8d "
			  "could not connect: x509: certificate signed by "
			  "unknown authority"), "log: %s", log);

	/* Back to the real one: a new connection works. */
	snprintf(extra_member_url, sizeof(extra_member_url),
		 "https://127.0.0.1:%d", tls_peer_port);
	peer_storaged_up(&gw);
	pump_ms(2100); /* past the back-off */
	int before = n_raft_msgs;
	n = pack_msg(m, PEER2, 44);
	link_send(fake_raft, MSG_RAFT_MSG, 0, m, n);
	for (int i = 0; i < 3000 && n_raft_msgs == before; i++)
		pump_ms(1);
	CHECK(n_raft_msgs == before + 1, "after the foreign peer: %d/%d",
	      n_raft_msgs, before);
	evhttp_free(h);
	SSL_CTX_free(ctx);
	extra_member_id = 0;
}

static void test_ctx_errors(void)
{
	SSL_CTX *ctx = NULL;
	char err[256] = "";
	char *bad[] = { "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_NOPE" };
	Ipc__TlsInfo ti = IPC__TLS_INFO__INIT;
	ti.cert_file = certs_path("m.crt");
	ti.key_file = certs_path("m.key");
	CHECK(tls_ctx_server(&ti, bad, 2, &ctx, err, sizeof(err)) == -EINVAL &&
	      !ctx && strcmp(err, "unexpected TLS cipher suite \"TLS_NOPE\"") == 0,
	      "bad suite: %s", err);
	ti.key_file = certs_path("client.key");
	CHECK(tls_ctx_server(&ti, NULL, 0, &ctx, err, sizeof(err)) == -EINVAL &&
	      strstr(err, "does not match"), "key mismatch: %s", err);
	ti.key_file = certs_path("nope.key");
	CHECK(tls_ctx_server(&ti, NULL, 0, &ctx, err, sizeof(err)) == -EINVAL &&
	      strstr(err, "cannot load key"), "missing key: %s", err);
	Ipc__TlsInfo none = IPC__TLS_INFO__INIT;
	CHECK(tls_ctx_server(&none, NULL, 0, &ctx, err, sizeof(err)) == -EINVAL,
	      "no certificate");
	CHECK(!ctx, "ctx untouched on failure");
	/* A client context with auto TLS and no CA does not verify. */
	none.auto_tls = 1;
	CHECK(tls_ctx_client(&none, NULL, 0, &ctx, err, sizeof(err)) == 0 &&
	      SSL_CTX_get_verify_mode(ctx) == SSL_VERIFY_NONE, "auto TLS client");
	SSL_CTX_free(ctx);
}

/* A handshake between a server and a client context over a socketpair:
 * 1 if both ends completed it, else 0 with each end's error (Go's words). */
static int pair_handshake(SSL_CTX *sc, SSL_CTX *cc, const char *host,
			  char *serr, char *cerr, size_t len)
{
	int sp[2], sdone = 0, cdone = 0, sfail = 0, cfail = 0;
	assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0);
	fcntl(sp[0], F_SETFL, O_NONBLOCK);
	fcntl(sp[1], F_SETFL, O_NONBLOCK);
	SSL *s = SSL_new(sc), *c = SSL_new(cc);
	SSL_set_fd(s, sp[0]);
	SSL_set_fd(c, sp[1]);
	assert(tls_client_set_host(c, host) == 0);
	serr[0] = cerr[0] = 0;
	for (int i = 0; i < 1000 && !(sdone && cdone) && !sfail && !cfail; i++) {
		int r;
		if (!cdone && (r = SSL_connect(c)) == 1)
			cdone = 1;
		else if (!cdone && tls_handshake_error(c, r, cerr, len))
			cfail = 1;
		ERR_clear_error();
		if (!sdone && (r = SSL_accept(s)) == 1)
			sdone = 1;
		else if (!sdone && tls_handshake_error(s, r, serr, len))
			sfail = 1;
		ERR_clear_error();
	}
	/* TLS 1.3: the client learns of a refusal from its first read. */
	if (sdone && cdone) {
		char b[16];
		SSL_write(c, "x", 1);
		int r = SSL_read(s, b, sizeof(b));
		if (r <= 0 && tls_handshake_error(s, r, serr, len))
			sfail = 1;
		ERR_clear_error();
	}
	SSL_free(s);
	SSL_free(c);
	close(sp[0]);
	close(sp[1]);
	return sdone && cdone && !sfail && !cfail;
}

static void test_ctx_pairs(void)
{
	SSL_CTX *sc, *cc;
	char err[256], serr[256], cerr[256];
	Ipc__TlsInfo st = IPC__TLS_INFO__INIT, ct = IPC__TLS_INFO__INIT;
	st.cert_file = strdup(certs_path("m.crt"));
	st.key_file = strdup(certs_path("m.key"));
	st.trusted_ca_file = strdup(certs_path("ca.crt"));
	st.client_cert_auth = 1;
	ct = st;
	ct.client_cert_auth = 0;
	assert(tls_ctx_client(&ct, NULL, 0, &cc, err, sizeof(err)) == 0);

	/* --peer-cert-allowed-hostname: the client's SANs must have it. */
	st.allowed_hostname = "127.0.0.1";
	assert(tls_ctx_server(&st, NULL, 0, &sc, err, sizeof(err)) == 0);
	CHECK(pair_handshake(sc, cc, "127.0.0.1", serr, cerr, sizeof(serr)),
	      "allowed hostname: %s / %s", serr, cerr);
	SSL_CTX_free(sc);
	st.allowed_hostname = "infra9.example";
	assert(tls_ctx_server(&st, NULL, 0, &sc, err, sizeof(err)) == 0);
	CHECK(!pair_handshake(sc, cc, "127.0.0.1", serr, cerr, sizeof(serr)) &&
	      strcmp(serr, "client certificate authentication failed") == 0,
	      "other hostname: %s / %s", serr, cerr);
	SSL_CTX_free(sc);

	/* The client checks the server's SANs against the URL's host. */
	st.allowed_hostname = "";
	assert(tls_ctx_server(&st, NULL, 0, &sc, err, sizeof(err)) == 0);
	CHECK(!pair_handshake(sc, cc, "127.0.0.2", serr, cerr, sizeof(serr)) &&
	      strcmp(cerr, "x509: certificate is valid for 127.0.0.1, not "
			   "127.0.0.2") == 0, "wrong host: %s", cerr);
	CHECK(!pair_handshake(sc, cc, "infra0.example", serr, cerr, sizeof(serr)) &&
	      strstr(cerr, "x509: certificate is not valid for any names"),
	      "wrong name: %s", cerr);
	SSL_CTX_free(cc);

	/* Auto TLS: no CA, no verification, any host. */
	ct.trusted_ca_file = "";
	ct.auto_tls = 1;
	st.client_cert_auth = 0;
	SSL_CTX_free(sc);
	assert(tls_ctx_server(&st, NULL, 0, &sc, err, sizeof(err)) == 0);
	assert(tls_ctx_client(&ct, NULL, 0, &cc, err, sizeof(err)) == 0);
	CHECK(pair_handshake(sc, cc, "127.0.0.2", serr, cerr, sizeof(serr)),
	      "auto TLS: %s / %s", serr, cerr);
	SSL_CTX_free(sc);
	SSL_CTX_free(cc);
	free(st.cert_file);
	free(st.key_file);
	free(st.trusted_ca_file);
}

int main(void)
{
	static char *suites[] = { "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" };
	static Ipc__TlsInfo client = IPC__TLS_INFO__INIT, peer = IPC__TLS_INFO__INIT;
	certs_make();
	client.cert_file = strdup(certs_path("m.crt"));
	client.key_file = strdup(certs_path("m.key"));
	client.trusted_ca_file = strdup(certs_path("ca.crt"));
	client.client_cert_auth = 1;
	client.crl_file = strdup(certs_path("ca.crl"));
	peer = client;
	peer.crl_file = "";
	peer.allowed_cn = "infra0";
	harness_cfg.client_tls = &client;
	harness_cfg.peer_tls = &peer;
	harness_cfg.cipher_suites = suites;
	harness_cfg.n_cipher_suites = 1;
	harness_init();
	tls_client_port = harness_listen("https://127.0.0.1:0", 0);
	tls_peer_port = harness_listen("https://127.0.0.1:0", 1);

	test_ctx_errors();
	test_ctx_pairs();
	test_client_port();
	test_refused();
	test_garbage();
	test_peer_send();
	harness_done();
	certs_remove();
	free(client.cert_file);
	free(client.key_file);
	free(client.trusted_ca_file);
	free(client.crl_file);
	return failures ? 1 : 0;
}
