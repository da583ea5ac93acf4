/*
 * TLS for gatewayd's listeners and peer connections, on libevent's OpenSSL
 * bufferevents. Each TLS connection carries a small struct tls_conn (SSL
 * ex data, freed with the SSL) that the info callback uses to see the
 * handshake end: a server-side failure is logged as etcd logs it, a
 * client-side one kept for the peer sender's warning. Handshakes are
 * bounded in time (a sweep shuts slow ones down) and in number (the TLS
 * listeners pause).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "gw.h"
#include "gw_tls.h"
#include "log.h"
#include "tls_ctx.h"

struct tls_conn {
	struct gw_tls *t;
	SSL *ssl;                  /* the owner (borrowed) */
	uint64_t start_ms;
	int server;
	int in_hs;                 /* on t->hs */
	TAILQ_ENTRY(tls_conn) q;
	char *key;                 /* client: "host:port" of its session */
	char from[INET6_ADDRSTRLEN + 8]; /* server: the client's address */
	char err[200];             /* client: why the handshake failed */
};

struct sess {
	char *key;
	SSL_SESSION *s;
};

struct gw_tls {
	struct gw *gw;
	SSL_CTX *client_srv;       /* client listeners */
	SSL_CTX *peer_srv;         /* peer listeners */
	SSL_CTX *peer_cli;         /* connections to peers */
	TAILQ_HEAD(, tls_conn) hs; /* in their handshake, oldest first */
	size_t n_hs;
	unsigned hs_ms;            /* GW_TLS_HANDSHAKE_MS but in tests */
	int paused;
	struct event *sweep;
	uint64_t log_window_ms;
	unsigned log_count;
	uint64_t log_dropped;
	struct sess sess[GW_TLS_SESSIONS];
	unsigned sess_next;        /* the slot replaced next when full */
	/* The name every peer's certificate must carry instead of its URL's
	 * host: the SRV domain (see gw_tls_init), or NULL. */
	const char *peer_name;
};

static int conn_idx = -1;

static void hs_unlink(struct tls_conn *tc)
{
	struct gw_tls *t = tc->t;
	if (!tc->in_hs)
		return;
	TAILQ_REMOVE(&t->hs, tc, q);
	tc->in_hs = 0;
	t->n_hs--;
	if (t->paused && t->n_hs < GW_TLS_MAX_HANDSHAKES * 9 / 10) {
		t->paused = 0;
		http_listeners_update(t->gw);
	}
}

static void conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
		      long argl, void *argp)
{
	struct tls_conn *tc = ptr;
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (!tc)
		return;
	hs_unlink(tc);
	free(tc->key);
	free(tc);
}

/* Go's net.Addr text of the socket's peer (or own) address. */
static void addr_text(int fd, int peer, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	int r = peer ? getpeername(fd, (struct sockaddr *)&ss, &sl)
		     : getsockname(fd, (struct sockaddr *)&ss, &sl);
	if (fd >= 0 && r == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
			port = ntohs(a->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
			port = ntohs(a->sin6_port);
			snprintf(buf, len, "[%s]:%d", ip, port);
			return;
		}
	}
	snprintf(buf, len, "%s:%d", ip, port);
}

/* Go's %q of a list of names: ["a" "b"]. */
static void quoted_sans(X509 *c, int want_ip, char *out, size_t len)
{
	GENERAL_NAMES *gn = X509_get_ext_d2i(c, NID_subject_alt_name, NULL, NULL);
	size_t o = 0;
	o += (size_t)snprintf(out, len, "[");
	for (int i = 0; gn && i < sk_GENERAL_NAME_num(gn); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gn, i);
		char buf[INET6_ADDRSTRLEN] = "";
		if (want_ip && g->type == GEN_IPADD) {
			int l = ASN1_STRING_length(g->d.iPAddress);
			if (l != 4 && l != 16)
				continue;
			inet_ntop(l == 4 ? AF_INET : AF_INET6,
				  ASN1_STRING_get0_data(g->d.iPAddress), buf,
				  sizeof(buf));
		} else if (!want_ip && g->type == GEN_DNS) {
			int l = ASN1_STRING_length(g->d.dNSName);
			if (l <= 0 || (size_t)l >= sizeof(buf))
				continue;
			memcpy(buf, ASN1_STRING_get0_data(g->d.dNSName), (size_t)l);
			buf[l] = 0;
		} else {
			continue;
		}
		if (o + strlen(buf) + 4 < len)
			o += (size_t)snprintf(out + o, len - o, "%s\"%s\"",
					      o > 1 ? " " : "", buf);
	}
	if (o + 2 <= len)
		snprintf(out + o, len - o, "]");
	GENERAL_NAMES_free(gn);
}

/* etcd's "rejected connection" line, at most GW_TLS_LOG_PER_S a second:
 * garbage from a client must not flood the log. */
static void log_reject(struct gw_tls *t, const SSL *ssl, const char *why)
{
	uint64_t now = gw_now_ms();
	if (now >= t->log_window_ms + 1000) {
		if (t->log_dropped)
			log_info("embed", "%llu more rejected connections not "
				 "logged", (unsigned long long)t->log_dropped);
		t->log_window_ms = now;
		t->log_count = 0;
		t->log_dropped = 0;
	}
	if (t->log_count >= GW_TLS_LOG_PER_S) {
		t->log_dropped++;
		return;
	}
	t->log_count++;
	struct tls_conn *tc = SSL_get_ex_data(ssl, conn_idx);
	const char *from = tc ? tc->from : "";
	const char *sn = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	X509 *c = SSL_get0_peer_certificate(ssl);
	if (!c) {
		log_info("embed", "rejected connection from \"%s\" (error \"%s\", "
			 "ServerName \"%s\")", from, why, sn ? sn : "");
		return;
	}
	char ips[256], dns[256];
	quoted_sans(c, 1, ips, sizeof(ips));
	quoted_sans(c, 0, dns, sizeof(dns));
	log_info("embed", "rejected connection from \"%s\" (error \"%s\", "
		 "ServerName \"%s\", IPAddresses %s, DNSNames %s)", from, why,
		 sn ? sn : "", ips, dns);
}

static void info_cb(const SSL *ssl, int where, int ret)
{
	struct tls_conn *tc = SSL_get_ex_data(ssl, conn_idx);
	char why[200];
	if (!tc || !tc->in_hs)
		return;
	/* Now, while the client is surely there to be named. */
	if (tc->server && !tc->from[0])
		addr_text(SSL_get_fd(ssl), 1, tc->from, sizeof(tc->from));
	if (where & SSL_CB_HANDSHAKE_DONE) {
		hs_unlink(tc);
		return;
	}
	if (!(where & SSL_CB_EXIT) || ret > 0 ||
	    !tls_handshake_error((SSL *)ssl, ret, why, sizeof(why)))
		return;
	hs_unlink(tc);
	if (tc->server)
		log_reject(tc->t, ssl, tc->err[0] ? tc->err : why);
	else
		snprintf(tc->err, sizeof(tc->err), "%s", why);
}

/* Client sessions, by host:port, for the next connection to resume. */
static int new_session(SSL *ssl, SSL_SESSION *s)
{
	struct tls_conn *tc = SSL_get_ex_data(ssl, conn_idx);
	struct gw_tls *t = tc ? tc->t : NULL;
	struct sess *slot = NULL;
	if (!t || !tc->key)
		return 0;
	for (int i = 0; i < GW_TLS_SESSIONS && !slot; i++)
		if (t->sess[i].key && strcmp(t->sess[i].key, tc->key) == 0)
			slot = &t->sess[i];
	for (int i = 0; i < GW_TLS_SESSIONS && !slot; i++)
		if (!t->sess[i].key)
			slot = &t->sess[i];
	if (!slot) {
		slot = &t->sess[t->sess_next];
		t->sess_next = (t->sess_next + 1) % GW_TLS_SESSIONS;
	}
	if (!slot->key && !(slot->key = strdup(tc->key)))
		return 0;
	if (strcmp(slot->key, tc->key) != 0) {
		char *k = strdup(tc->key);
		if (!k)
			return 0;
		free(slot->key);
		slot->key = k;
	}
	SSL_SESSION_free(slot->s);
	slot->s = s;
	return 1; /* the reference is ours */
}

static SSL_SESSION *find_session(struct gw_tls *t, const char *key)
{
	for (int i = 0; i < GW_TLS_SESSIONS; i++)
		if (t->sess[i].key && strcmp(t->sess[i].key, key) == 0)
			return t->sess[i].s;
	return NULL;
}

/* Handshakes past their time: shut down, so that the bufferevent sees EOF
 * and evhttp frees the connection. */
static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct gw_tls *t = arg;
	struct tls_conn *tc;
	uint64_t now = gw_now_ms();
	(void)fd;
	(void)what;
	while ((tc = TAILQ_FIRST(&t->hs)) &&
	       tc->start_ms + t->hs_ms <= now) {
		int sfd = SSL_get_fd(tc->ssl);
		char why[160], local[INET6_ADDRSTRLEN + 8], remote[INET6_ADDRSTRLEN + 8];
		hs_unlink(tc);
		addr_text(sfd, 0, local, sizeof(local));
		addr_text(sfd, 1, remote, sizeof(remote));
		if (tc->server && !tc->from[0])
			snprintf(tc->from, sizeof(tc->from), "%s", remote);
		/* Go's words for a read past its deadline. */
		snprintf(why, sizeof(why), "read tcp %s->%s: i/o timeout", local,
			 remote);
		if (tc->server)
			log_reject(t, tc->ssl, why);
		else
			snprintf(tc->err, sizeof(tc->err), "%s", why);
		if (sfd >= 0)
			shutdown(sfd, SHUT_RDWR);
	}
}

static int new_conn(struct gw_tls *t, SSL *ssl, int server)
{
	struct tls_conn *tc = calloc(1, sizeof(*tc));
	if (!tc)
		return -ENOMEM;
	tc->t = t;
	tc->ssl = ssl;
	tc->server = server;
	tc->start_ms = gw_now_ms();
	if (!SSL_set_ex_data(ssl, conn_idx, tc)) {
		free(tc);
		return -ENOMEM;
	}
	TAILQ_INSERT_TAIL(&t->hs, tc, q);
	tc->in_hs = 1;
	t->n_hs++;
	if (server && !t->paused && t->n_hs >= GW_TLS_MAX_HANDSHAKES) {
		t->paused = 1;
		log_warn("embed", "%zu TLS handshakes in progress: not accepting "
			 "more for now", t->n_hs);
		http_listeners_update(t->gw);
	}
	return 0;
}

/* evhttp's bufferevent for a connection accepted on a TLS listener. */
static struct bufferevent *accept_bev(struct event_base *base, void *arg)
{
	struct gw_listener *l = arg;
	struct gw_tls *t = l->gw->tls;
	SSL *ssl = SSL_new(l->peer ? t->peer_srv : t->client_srv);
	struct bufferevent *bev = NULL;
	if (ssl && new_conn(t, ssl, 1) == 0)
		bev = bufferevent_openssl_socket_new(base, -1, ssl,
			BUFFEREVENT_SSL_ACCEPTING,
			BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!bev) {
		/* Returning NULL would serve plain HTTP on an https port. */
		SSL_free(ssl);
		worker_fatal(l->gw->w, "gatewayd: out of memory");
	}
	/* Go neither sends nor needs close_notify. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

int gw_tls_listen(struct gw *gw, struct gw_listener *l)
{
	struct gw_tls *t = gw->tls;
	if (!(l->peer ? t->peer_srv : t->client_srv)) {
		/* etcd's words; the supervisor normally refuses this first. */
		log_crit("etcdmain", "cannot listen on TLS for %s: KeyFile and "
			 "CertFile are not presented", l->url);
		return -EINVAL;
	}
	l->tls = 1;
	evhttp_set_bevcb(l->http, accept_bev, l);
	return 0;
}

void gw_tls_set_handshake_ms(struct gw *gw, unsigned ms)
{
	if (gw->tls)
		gw->tls->hs_ms = ms;
}

int gw_tls_paused(struct gw *gw)
{
	return gw->tls && gw->tls->paused;
}

struct evhttp_connection *gw_tls_connect(struct gw *gw, const char *host,
					 int port, int https)
{
	struct gw_tls *t = gw->tls;
	if (!https)
		return evhttp_connection_base_new(gw->base, gw->dns, host,
						  (unsigned short)port);
	if (!t || !t->peer_cli)
		return NULL;
	SSL *ssl = SSL_new(t->peer_cli);
	char key[300];
	if (!ssl)
		return NULL;
	snprintf(key, sizeof(key), "%s:%d", host, port);
	if (new_conn(t, ssl, 0) < 0 ||
	    tls_client_set_host(ssl, t->peer_name ? t->peer_name : host) < 0) {
		SSL_free(ssl);
		return NULL;
	}
	struct tls_conn *tc = SSL_get_ex_data(ssl, conn_idx);
	SSL_SESSION *s = find_session(t, key);
	if (!(tc->key = strdup(key)) || (s && !SSL_set_session(ssl, s))) {
		SSL_free(ssl);
		return NULL;
	}
	struct bufferevent *bev = bufferevent_openssl_socket_new(gw->base, -1,
		ssl, BUFFEREVENT_SSL_CONNECTING,
		BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!bev) {
		SSL_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	struct evhttp_connection *evcon = evhttp_connection_base_bufferevent_new(
		gw->base, gw->dns, bev, host, (unsigned short)port);
	if (!evcon)
		bufferevent_free(bev);
	return evcon;
}

const char *gw_tls_conn_error(struct evhttp_connection *evcon)
{
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon)
					: NULL;
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	struct tls_conn *tc = ssl ? SSL_get_ex_data(ssl, conn_idx) : NULL;
	return tc && tc->err[0] ? tc->err : NULL;
}

/* tls_ctx's verification, which the peer check below adds to. */
static int (*peer_verify_next)(int, X509_STORE_CTX *);

/* 1 if the IP SAN (4 or 16 bytes) is the address in ss. */
static int same_ip(const ASN1_OCTET_STRING *san, const struct sockaddr_storage *ss)
{
	const unsigned char *b = ASN1_STRING_get0_data(san);
	int l = ASN1_STRING_length(san);
	if (ss->ss_family == AF_INET && l == 4)
		return memcmp(b, &((const struct sockaddr_in *)ss)->sin_addr, 4) == 0;
	if (ss->ss_family == AF_INET6 && l == 16)
		return memcmp(b, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16) == 0;
	if (ss->ss_family == AF_INET6 && l == 4) { /* ::ffff:a.b.c.d */
		const unsigned char *a =
			((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0,
							 0, 0, 0xff, 0xff};
		return memcmp(a, mapped, 12) == 0 && memcmp(a + 12, b, 4) == 0;
	}
	return 0;
}

/*
 * etcd's checkCertSAN on the peer port: a verified client certificate that
 * names IP addresses must name the one the connection comes from (a stolen
 * member certificate is of no use elsewhere). A certificate that names
 * only DNS names is accepted: etcd resolves them, which would block this
 * event loop; the chain was verified all the same.
 */
static int peer_verify_cb(int ok, X509_STORE_CTX *xs)
{
	if (peer_verify_next)
		ok = peer_verify_next(ok, xs);
	if (!ok || X509_STORE_CTX_get_error_depth(xs) != 0)
		return ok;
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_conn *tc = ssl ? SSL_get_ex_data(ssl, conn_idx) : NULL;
	X509 *c = X509_STORE_CTX_get_current_cert(xs);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (!tc || !c || getpeername(SSL_get_fd(ssl), (struct sockaddr *)&ss, &sl) < 0)
		return ok;
	GENERAL_NAMES *gn = X509_get_ext_d2i(c, NID_subject_alt_name, NULL, NULL);
	int ips = 0, dns = 0, match = 0;
	char list[160] = "";
	size_t o = 0;
	for (int i = 0; gn && i < sk_GENERAL_NAME_num(gn); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gn, i);
		if (g->type == GEN_DNS) {
			dns = 1;
			continue;
		}
		if (g->type != GEN_IPADD)
			continue;
		int l = ASN1_STRING_length(g->d.iPAddress);
		char ip[INET6_ADDRSTRLEN] = "";
		if (l == 4 || l == 16)
			inet_ntop(l == 4 ? AF_INET : AF_INET6,
				  ASN1_STRING_get0_data(g->d.iPAddress), ip,
				  sizeof(ip));
		if (o + strlen(ip) + 3 < sizeof(list))
			o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s",
					      ips ? ", " : "", ip);
		ips = 1;
		match |= same_ip(g->d.iPAddress, &ss);
	}
	GENERAL_NAMES_free(gn);
	if (!ips || match || dns)
		return 1;
	char from[INET6_ADDRSTRLEN] = "?";
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, from,
			  sizeof(from));
	else if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, from,
			  sizeof(from));
	snprintf(tc->err, sizeof(tc->err), "x509: certificate is valid for %s, not %s",
		 list, from);
	X509_STORE_CTX_set_error(xs, X509_V_ERR_IP_ADDRESS_MISMATCH);
	return 0;
}

static int make_ctx(int server, const Ipc__TlsInfo *ti,
		    const Ipc__WorkerConfig *cfg, SSL_CTX **ret_ctx,
		    const char *what)
{
	char err[512];
	SSL_CTX *ctx;
	int r = server ? tls_ctx_server(ti, cfg->cipher_suites,
					cfg->n_cipher_suites, &ctx, err,
					sizeof(err))
		       : tls_ctx_client(ti, cfg->cipher_suites,
					cfg->n_cipher_suites, &ctx, err,
					sizeof(err));
	if (r < 0) {
		log_crit("etcdmain", "%s TLS: %s", what, err);
		return r;
	}
	SSL_CTX_set_info_callback(ctx, info_cb);
	if (!server)
		SSL_CTX_sess_set_new_cb(ctx, new_session);
	*ret_ctx = ctx;
	return 0;
}

int gw_tls_init(struct gw *gw)
{
	const Ipc__WorkerConfig *cfg = gw->w->cfg;
	struct gw_tls *t = calloc(1, sizeof(*t));
	int r = -ENOMEM;
	if (!t)
		return -ENOMEM;
	t->gw = gw;
	t->hs_ms = GW_TLS_HANDSHAKE_MS;
	TAILQ_INIT(&t->hs);
	gw->tls = t;
	if (conn_idx < 0)
		conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free);
	t->sweep = event_new(gw->base, -1, EV_PERSIST, on_sweep, t);
	if (conn_idx < 0 || !t->sweep)
		goto fail;
	struct timeval tv = { 1, 0 };
	event_add(t->sweep, &tv);
	/*
	 * DNS SRV discovery over TLS without a peer CA: peers are checked
	 * against the system's roots for the SRV domain itself, as etcd sets
	 * ServerName to it: "server will only authenticate peers/clients when
	 * the provided certs have root domain example.com as an entry in
	 * Subject Alternative Name (SAN) field" (the guide). etcd does it on
	 * a member's first start only; we do it on every start, so a
	 * restart does not relax the rule.
	 */
	const Ipc__TlsInfo *pt = cfg->peer_tls;
	if (cfg->discovery_srv && cfg->discovery_srv[0] && pt &&
	    !(pt->trusted_ca_file && pt->trusted_ca_file[0]) && !pt->auto_tls)
		t->peer_name = cfg->discovery_srv;
	/* A side without a certificate has no server context: its https
	 * listeners are refused. Connections to https peers always work,
	 * verified against the system's roots without peer settings. */
	if (cfg->client_tls && cfg->client_tls->cert_file &&
	    cfg->client_tls->cert_file[0] &&
	    (r = make_ctx(1, cfg->client_tls, cfg, &t->client_srv, "client")) < 0)
		goto fail;
	if (cfg->peer_tls && cfg->peer_tls->cert_file &&
	    cfg->peer_tls->cert_file[0] &&
	    (r = make_ctx(1, cfg->peer_tls, cfg, &t->peer_srv, "peer")) < 0)
		goto fail;
	if (t->peer_srv && cfg->peer_tls->client_cert_auth) {
		peer_verify_next = SSL_CTX_get_verify_callback(t->peer_srv);
		SSL_CTX_set_verify(t->peer_srv, SSL_CTX_get_verify_mode(t->peer_srv),
				   peer_verify_cb);
	}
	if ((r = make_ctx(0, cfg->peer_tls, cfg, &t->peer_cli, "peer")) < 0)
		goto fail;
	return 0;
fail:
	gw_tls_done(gw);
	return r;
}

void gw_tls_done(struct gw *gw)
{
	struct gw_tls *t = gw->tls;
	if (!t)
		return;
	t->paused = 0; /* the listeners are gone: nothing to resume */
	/* Connections still listed (none, after http_close_all) forget us. */
	while (!TAILQ_EMPTY(&t->hs))
		hs_unlink(TAILQ_FIRST(&t->hs));
	if (t->sweep)
		event_free(t->sweep);
	for (int i = 0; i < GW_TLS_SESSIONS; i++) {
		free(t->sess[i].key);
		SSL_SESSION_free(t->sess[i].s);
	}
	SSL_CTX_free(t->client_srv);
	SSL_CTX_free(t->peer_srv);
	SSL_CTX_free(t->peer_cli);
	free(t);
	gw->tls = NULL;
}
