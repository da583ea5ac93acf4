/*
 * The TLS flags of both sides and etcd 3.4's checks of them, in its order
 * and with its words (etcd's embed and pkg/transport).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tls_ciphers.h"
#include "tls_conf.h"
#include "tls_files.h"


/* Go's %q for the ASCII a flag value is made of. */
static void go_quote(char *buf, size_t len, const char *s)
{
	size_t o = 0;
	if (len < 3)
		return;
	buf[o++] = '"';
	for (; *s && o + 6 < len; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			o += (size_t)snprintf(buf + o, len - o, "\\%c", ch);
		else if (ch == '\n')
			o += (size_t)snprintf(buf + o, len - o, "\\n");
		else if (ch == '\t')
			o += (size_t)snprintf(buf + o, len - o, "\\t");
		else if (ch < 0x20 || ch == 0x7f)
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", ch);
		else
			buf[o++] = (char)ch;
	}
	buf[o++] = '"';
	buf[o] = '\0';
}

/* Go's filepath.Join(dir, "fixtures", side), cleaned as Go cleans it. */
static char *fixtures_dir(const char *dir, const char *side)
{
	char *in, *out;
	if (asprintf(&in, "%s/fixtures/%s", dir, side) < 0)
		return NULL;
	out = calloc(1, strlen(in) + 2);
	if (!out) {
		free(in);
		return NULL;
	}
	bool abs = in[0] == '/';
	size_t o = 0;
	if (abs)
		out[o++] = '/';
	size_t base = o;
	for (char *save = NULL, *t = strtok_r(in, "/", &save); t;
	     t = strtok_r(NULL, "/", &save)) {
		if (strcmp(t, ".") == 0)
			continue;
		if (strcmp(t, "..") == 0) {
			/* Drop the last element unless it is itself "..". */
			char *slash = o > base ? strrchr(out + base, '/') : NULL;
			const char *last = slash ? slash + 1 : out + base;
			if (o > base && strcmp(last, "..") != 0) {
				o = slash ? (size_t)(slash - out) : base;
				out[o] = '\0';
				continue;
			}
			if (abs)
				continue;
		}
		if (o > base)
			out[o++] = '/';
		strcpy(out + o, t);
		o += strlen(t);
	}
	free(in);
	return out;
}

static int side_init(struct tls_side *s, const struct config *c, bool peer)
{
	enum flag_id cert = peer ? F_PEER_CERT_FILE : F_CERT_FILE;
	enum flag_id key = peer ? F_PEER_KEY_FILE : F_KEY_FILE;
	enum flag_id ca = peer ? F_PEER_TRUSTED_CA_FILE : F_TRUSTED_CA_FILE;
	enum flag_id crl = peer ? F_PEER_CRL_FILE : F_CLIENT_CRL_FILE;
	enum flag_id cca = peer ? F_PEER_CLIENT_CERT_AUTH : F_CLIENT_CERT_AUTH;
	enum flag_id host = peer ? F_PEER_CERT_ALLOWED_HOSTNAME :
				   F_CLIENT_CERT_ALLOWED_HOSTNAME;
	bool want_auto = c->v[peer ? F_PEER_AUTO_TLS : F_AUTO_TLS].b;

	s->cert_file = cfg_str(c, cert);
	s->key_file = cfg_str(c, key);
	s->trusted_ca_file = cfg_str(c, ca);
	s->crl_file = cfg_str(c, crl);
	s->client_cert_auth = c->v[cca].b;
	s->allowed_cn = peer ? cfg_str(c, F_PEER_CERT_ALLOWED_CN) : "";
	s->allowed_hostname = cfg_str(c, host);
	s->given = want_auto || s->cert_file[0] || s->key_file[0] ||
		   s->trusted_ca_file[0] || s->crl_file[0] ||
		   s->client_cert_auth || s->allowed_cn[0] ||
		   s->allowed_hostname[0];
	if (want_auto && tls_side_empty(s)) {
		s->auto_tls = true;
		s->auto_dir = fixtures_dir(config_data_dir(c), peer ? "peer" : "client");
		if (!s->auto_dir ||
		    asprintf(&s->auto_cert, "%s/cert.pem", s->auto_dir) < 0 ||
		    asprintf(&s->auto_key, "%s/key.pem", s->auto_dir) < 0) {
			s->auto_cert = NULL;
			return -ENOMEM;
		}
		s->cert_file = s->auto_cert;
		s->key_file = s->auto_key;
	} else {
		s->auto_ignored = want_auto;
	}
	return 0;
}

int tls_conf_init(struct tls_conf *t, const struct config *c)
{
	int r;
	if ((r = side_init(&t->client, c, false)) < 0 ||
	    (r = side_init(&t->peer, c, true)) < 0)
		return r;
	/*
	 * etcd's StringsFlag: unset is no list, but a value (even "") is
	 * split on commas, and every piece must be a known suite.
	 */
	if (!c->v[F_CIPHER_SUITES].set)
		return 0;
	const char *s = cfg_str(c, F_CIPHER_SUITES);
	size_t n = 1;
	for (const char *p = s; *p; p++)
		n += *p == ',';
	if (n > TLS_CIPHERS_MAX)
		return -E2BIG;
	t->ciphers = calloc(n, sizeof(*t->ciphers));
	if (!t->ciphers)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t len = strcspn(s, ",");
		if (!(t->ciphers[i] = strndup(s, len)))
			return -ENOMEM;
		t->n_ciphers++;
		s += len + (s[len] == ',');
	}
	return 0;
}

static void side_clear(struct tls_side *s)
{
	free(s->auto_dir);
	free(s->auto_cert);
	free(s->auto_key);
}

void tls_conf_clear(struct tls_conf *t)
{
	if (!t)
		return;
	side_clear(&t->client);
	side_clear(&t->peer);
	for (size_t i = 0; i < t->n_ciphers; i++)
		free(t->ciphers[i]);
	free(t->ciphers);
	memset(t, 0, sizeof(*t));
}

bool tls_side_empty(const struct tls_side *s)
{
	return !s->cert_file[0] && !s->key_file[0];
}

void tls_side_string(const struct tls_side *s, char *buf, size_t len)
{
	snprintf(buf, len,
		 "cert = %s, key = %s, trusted-ca = %s, client-cert-auth = %s, crl-file = %s",
		 s->cert_file, s->key_file, s->trusted_ca_file,
		 s->client_cert_auth ? "true" : "false", s->crl_file);
}

static void emit(tls_note_fn *note, void *arg, enum log_level lvl,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void emit(tls_note_fn *note, void *arg, enum log_level lvl,
		 const char *fmt, ...)
{
	char text[4096];
	va_list ap;
	if (!note)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	note(arg, lvl, "embed", text);
}

/* A "C | etcdmain: ..." error. */
static int fatal(struct cfg_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int fatal(struct cfg_error *err, const char *fmt, ...)
{
	va_list ap;
	memset(err, 0, sizeof(*err));
	err->kind = CFG_ERR_FATAL;
	snprintf(err->pkg, sizeof(err->pkg), "etcdmain");
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Auto TLS files that are not there yet are made after the checks. */
static bool pending(const struct tls_side *s)
{
	struct stat st;
	return s->auto_tls &&
	       (stat(s->cert_file, &st) < 0 || stat(s->key_file, &st) < 0);
}

/* What etcd loads of a side: its certificate pair, then its CA. */
static int check_files(const struct tls_side *s, bool pair, char *e,
		       size_t elen)
{
	int r;
	if (pair && !tls_side_empty(s) && !pending(s)) {
		if (!s->cert_file[0] || !s->key_file[0])
			return tls_fail(e, elen, "KeyFile and CertFile must both be present[key: %s, cert: %s]",
				    s->key_file, s->cert_file);
		if ((r = tls_check_keypair(s->cert_file, s->key_file, e, elen)) < 0)
			return r;
	}
	if (s->trusted_ca_file[0] &&
	    (r = tls_check_ca(s->trusted_ca_file, e, elen)) < 0)
		return r;
	/* Ours: etcd would read it at the first handshake. */
	if (s->crl_file[0]) {
		char *buf;
		size_t len;
		if ((r = tls_read_file(s->crl_file, &buf, &len, e, elen)) < 0)
			return r;
		free(buf);
	}
	return 0;
}

/* u.Host as Go prints it. */
static void host_port(const struct url *u, char *buf, size_t len)
{
	bool v6 = strchr(u->host, ':') != NULL;
	snprintf(buf, len, "%s%s%s%s%s", v6 ? "[" : "", u->host, v6 ? "]" : "",
		 u->port[0] ? ":" : "", u->port);
}

int tls_conf_check(const struct tls_conf *t, const struct config *c,
		   tls_note_fn *note, void *arg, struct cfg_error *err)
{
	const struct tls_side *p = &t->peer, *cl = &t->client;
	const struct url_list *lp = cfg_urls(c, F_LISTEN_PEER_URLS);
	const struct url_list *lc = cfg_urls(c, F_LISTEN_CLIENT_URLS);
	char e[4096], q[512];

	for (size_t i = 0; i < t->n_ciphers; i++)
		if (!tls_cipher_openssl_name(t->ciphers[i])) {
			go_quote(q, sizeof(q), t->ciphers[i]);
			return fatal(err, "unexpected TLS cipher suite %s", q);
		}

	/* etcd's configurePeerListeners. */
	if (p->auto_ignored)
		emit(note, arg, LOG_WARN, "ignoring peer auto TLS since certs given");
	if (!tls_side_empty(p)) {
		tls_side_string(p, e, sizeof(e));
		emit(note, arg, LOG_INFO, "peerTLS: %s", e);
	}
	for (size_t i = 0; i < lp->n; i++) {
		const struct url *u = &lp->v[i];
		if (strcmp(u->scheme, "http") == 0) {
			if (!tls_side_empty(p))
				emit(note, arg, LOG_WARN, "The scheme of peer url %s is HTTP while peer key/cert files are presented. Ignored peer key/cert files.",
				     u->str);
			if (p->client_cert_auth)
				emit(note, arg, LOG_WARN, "The scheme of peer url %s is HTTP while client cert auth (--peer-client-cert-auth) is enabled. Ignored client cert auth for this url.",
				     u->str);
		} else if (strcmp(u->scheme, "https") == 0 && tls_side_empty(p)) {
			host_port(u, q, sizeof(q));
			return fatal(err, "cannot listen on TLS for %s: KeyFile and CertFile are not presented",
					   q);
		}
	}
	/* Peers dial out with the certificate and CA whatever the scheme. */
	if (check_files(p, true, e, sizeof(e)) < 0)
		return fatal(err, "%s", e);

	/* etcd's configureClientListeners. */
	if (cl->auto_ignored)
		emit(note, arg, LOG_WARN, "ignoring client auto TLS since certs given");
	bool https = false;
	for (size_t i = 0; i < lc->n; i++) {
		const struct url *u = &lc->v[i];
		if (strcmp(u->scheme, "http") == 0 || strcmp(u->scheme, "unix") == 0) {
			if (!tls_side_empty(cl))
				emit(note, arg, LOG_WARN, "The scheme of client url %s is HTTP while peer key/cert files are presented. Ignored key/cert files.",
				     u->str);
			if (cl->client_cert_auth)
				emit(note, arg, LOG_WARN, "The scheme of client url %s is HTTP while client cert auth (--client-cert-auth) is enabled. Ignored client cert auth for this url.",
				     u->str);
		} else if (strcmp(u->scheme, "https") == 0) {
			if (tls_side_empty(cl))
				return fatal(err, "TLS key/cert (--cert-file, --key-file) must be provided for client url %s with HTTPS scheme",
						   u->str);
			https = true;
		}
	}
	/* The client side's files are loaded only to serve https. */
	if (https && check_files(cl, true, e, sizeof(e)) < 0) {
		char line[sizeof(e) + 64];
		/* etcd has printed its ClientTLS line by the time it fails. */
		tls_side_string(cl, line, sizeof(line));
		emit(note, arg, LOG_INFO, "ClientTLS: %s", line);
		return fatal(err, "%s", e);
	}
	return 0;
}
