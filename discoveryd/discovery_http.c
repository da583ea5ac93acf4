/*
 * The discovery client's HTTP/1.1 connection, as etcd's Go transport makes
 * it: one request at a time, kept alive between requests, straight to the
 * endpoint or through an http proxy (absolute-form requests; a CONNECT
 * tunnel for an https endpoint), TLS verified against the system's roots
 * and the host name. A watch waits for its answer as long as it takes; the
 * other requests have a deadline. Failures are worded as Go's net/http
 * words them, since etcd logs them.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "discovery.h"
#include "tls_ctx.h"

enum conn_state { C_NONE, C_CONNECTING, C_TUNNEL, C_TLS, C_READY };
enum resp_state {
	R_IDLE, R_HEAD, R_BODY_LEN, R_CHUNK_SIZE, R_CHUNK_DATA, R_CHUNK_CRLF,
	R_TRAILER, R_BODY_CLOSE,
};

struct dhttp {
	struct event_base *base;
	const struct disc_url *target, *proxy; /* borrowed */
	SSL_CTX *tls;                          /* borrowed; NULL for http */
	struct bufferevent *bev; /* the socket, or the TLS filter over it */
	enum conn_state cs;
	char addr[80];           /* the dialed "ip:port", for Go's texts */
	struct event *deadline;  /* the request's own timeout */
	struct event *dial;      /* connect, tunnel and handshake timeout */
	struct event *kick;      /* starts a request from the event loop */
	/* The request in flight. */
	char *req;
	bool in_flight, reused, got_bytes;
	unsigned gen; /* counts requests: a callback may start the next */
	dhttp_cb cb;
	void *arg;
	/* Its response. */
	enum resp_state rs;
	int status;
	bool keep_alive, has_index;
	uint64_t index;
	char index_raw[32];
	size_t left;
	struct evbuffer *body;
};

static void start_connect(struct dhttp *h);
static void read_cb(struct bufferevent *bev, void *arg);
static void conn_closed(struct bufferevent *bev, short what, void *arg);

static void close_conn(struct dhttp *h)
{
	if (h->bev)
		bufferevent_free(h->bev);
	h->bev = NULL;
	h->cs = C_NONE;
	if (h->dial)
		evtimer_del(h->dial);
}

/* Ends the request in flight: the callback is the last thing that runs. */
static void finish(struct dhttp *h, int err, const char *why)
{
	struct dhttp_resp r = {0};
	struct evbuffer *body = h->body;
	dhttp_cb cb = h->cb;
	void *arg = h->arg;
	if (err || !h->keep_alive)
		close_conn(h);
	evtimer_del(h->deadline);
	h->in_flight = false;
	h->rs = R_IDLE;
	free(h->req);
	h->req = NULL;
	/* A fresh buffer: the callback may send the next request at once. */
	if (!(h->body = evbuffer_new())) {
		h->body = body;
		err = -EIO;
		why = "out of memory";
	}
	if (!err) {
		r.status = h->status;
		r.has_index = h->has_index;
		r.etcd_index = h->index;
		r.index_raw = h->index_raw[0] ? h->index_raw : NULL;
		r.len = evbuffer_get_length(body);
		r.body = r.len ? (const char *)evbuffer_pullup(body, -1) : "";
		if (!r.body) {
			err = -EIO;
			why = "out of memory";
		}
	}
	cb(arg, err, err ? NULL : &r, why);
	if (body != h->body)
		evbuffer_free(body);
}

/* Go's net errors: "connect: connection refused" (lowercase strerror). */
static void errno_text(int e, char *buf, size_t len)
{
	snprintf(buf, len, "%s", strerror(e));
	if (buf[0] >= 'A' && buf[0] <= 'Z')
		buf[0] = (char)(buf[0] - 'A' + 'a');
}

static void dial_failed(struct dhttp *h, const char *what)
{
	char why[512];
	snprintf(why, sizeof(why), "%sdial tcp %s: %s",
		 h->proxy ? "proxyconnect tcp: " : "", h->addr, what);
	finish(h, -EIO, why);
}

static void send_req(struct dhttp *h)
{
	h->rs = R_HEAD;
	h->got_bytes = false;
	h->keep_alive = true;
	h->has_index = false;
	h->index_raw[0] = '\0';
	bufferevent_setcb(h->bev, read_cb, NULL, conn_closed, h);
	if (bufferevent_write(h->bev, h->req, strlen(h->req)) < 0 ||
	    bufferevent_enable(h->bev, EV_READ | EV_WRITE) < 0)
		finish(h, -EIO, "cannot send the request");
}

/* x509 failures in Go's words where we know them. */
static void tls_text(struct dhttp *h, char *buf, size_t len)
{
	SSL *ssl = bufferevent_openssl_get_ssl(h->bev);
	long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	unsigned long e = bufferevent_get_openssl_error(h->bev);
	switch (vr) {
	case X509_V_OK:
		break;
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		snprintf(buf, len, "x509: certificate signed by unknown authority");
		return;
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		snprintf(buf, len, "x509: certificate is not valid for %s",
			 h->target->host);
		return;
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		snprintf(buf, len, "x509: certificate has expired or is not "
			 "yet valid");
		return;
	default:
		snprintf(buf, len, "x509: %s", X509_verify_cert_error_string(vr));
		return;
	}
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	if (r)
		snprintf(buf, len, "remote error: tls: %s", r);
	else if (EVUTIL_SOCKET_ERROR())
		errno_text(EVUTIL_SOCKET_ERROR(), buf, len);
	else
		snprintf(buf, len, "EOF");
}

static void tls_event(struct bufferevent *bev, short what, void *arg)
{
	struct dhttp *h = arg;
	char why[256];
	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		evtimer_del(h->dial);
		h->cs = C_READY;
		send_req(h);
		return;
	}
	tls_text(h, why, sizeof(why));
	finish(h, -EIO, why);
}

static void start_tls(struct dhttp *h)
{
	SSL *ssl = SSL_new(h->tls);
	if (!ssl || tls_client_set_host(ssl, h->target->host) < 0) {
		SSL_free(ssl);
		finish(h, -EIO, "out of memory");
		return;
	}
	struct bufferevent *f = bufferevent_openssl_filter_new(
		h->base, h->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
		BEV_OPT_CLOSE_ON_FREE);
	if (!f) {
		SSL_free(ssl);
		finish(h, -EIO, "out of memory");
		return;
	}
	/* A server may close without close_notify after a full answer. */
	bufferevent_openssl_set_allow_dirty_shutdown(f, 1);
	h->bev = f;
	h->cs = C_TLS;
	struct timeval tv = {DISC_TLS_TIMEOUT_S, 0};
	evtimer_add(h->dial, &tv);
	bufferevent_setcb(f, NULL, NULL, tls_event, h);
	bufferevent_enable(f, EV_READ | EV_WRITE);
}

/* The proxy's answer to CONNECT: 200, then the tunnel is ours. */
static void tunnel_read(struct bufferevent *bev, void *arg)
{
	struct dhttp *h = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (p.pos < 0) {
		if (evbuffer_get_length(in) > DISC_MAX_HEAD)
			finish(h, -EIO, "malformed HTTP response");
		return;
	}
	char line[256];
	size_t n = evbuffer_copyout(in, line, sizeof(line) - 1);
	line[n] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	evbuffer_drain(in, (size_t)p.pos + 4);
	int code = 0;
	if (sscanf(line, "HTTP/1.%*d %d", &code) != 1) {
		finish(h, -EIO, "malformed HTTP response");
		return;
	}
	if (code != 200) {
		/* Go: the status text after the code. */
		const char *t = strchr(line, ' ');
		t = t ? strchr(t + 1, ' ') : NULL;
		finish(h, -EIO, t ? t + 1 : "unknown status code");
		return;
	}
	start_tls(h);
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct dhttp *h = arg;
	char why[128];
	if (what & BEV_EVENT_CONNECTED) {
		if (h->tls && h->proxy) {
			char *c;
			if (disc_connect_format(h->target, &c) < 0) {
				finish(h, -EIO, "out of memory");
				return;
			}
			h->cs = C_TUNNEL;
			bufferevent_setcb(bev, tunnel_read, NULL, conn_event, h);
			int r = bufferevent_write(bev, c, strlen(c));
			free(c);
			if (r < 0 || bufferevent_enable(bev, EV_READ | EV_WRITE) < 0)
				finish(h, -EIO, "cannot send CONNECT");
		} else if (h->tls) {
			evtimer_del(h->dial);
			start_tls(h);
		} else {
			evtimer_del(h->dial);
			h->cs = C_READY;
			send_req(h);
		}
		return;
	}
	if (h->cs == C_TUNNEL) {
		finish(h, -EIO, "EOF");
		return;
	}
	int e = EVUTIL_SOCKET_ERROR();
	errno_text(e ? e : ECONNREFUSED, why, sizeof(why));
	char what_s[160];
	snprintf(what_s, sizeof(what_s), "connect: %s", why);
	dial_failed(h, what_s);
}

static void on_dial_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct dhttp *h = arg;
	(void)fd;
	(void)what;
	if (h->cs == C_TLS)
		finish(h, -EIO, "net/http: TLS handshake timeout");
	else
		dial_failed(h, "i/o timeout");
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct dhttp *h = arg;
	(void)fd;
	(void)what;
	finish(h, -ETIMEDOUT, "context deadline exceeded");
}

/* The request goes out from the loop: its callback never runs inside
 * dhttp_request. */
static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct dhttp *h = arg;
	(void)fd;
	(void)what;
	if (!h->in_flight)
		return;
	if (h->cs == C_READY) {
		h->reused = true;
		send_req(h);
	} else {
		start_connect(h);
	}
}

static void start_connect(struct dhttp *h)
{
	const struct disc_url *to = h->proxy ? h->proxy : h->target;
	struct addrinfo hints = {0}, *ai = NULL;
	char port[8];
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", to->port);
	/* Blocking, as the SRV lookups are: a discovery endpoint is an
	 * address or a name the system resolves at once. */
	if (getaddrinfo(to->host, port, &hints, &ai) != 0 || !ai) {
		char why[300];
		snprintf(why, sizeof(why), "%sdial tcp: lookup %s: no such host",
			 h->proxy ? "proxyconnect tcp: " : "", to->host);
		if (ai)
			freeaddrinfo(ai);
		finish(h, -EIO, why);
		return;
	}
	char ip[INET6_ADDRSTRLEN] = "?";
	if (ai->ai_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr,
			  ip, sizeof(ip));
		snprintf(h->addr, sizeof(h->addr), "[%s]:%s", ip, port);
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr,
			  ip, sizeof(ip));
		snprintf(h->addr, sizeof(h->addr), "%s:%s", ip, port);
	}
	h->bev = bufferevent_socket_new(h->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!h->bev) {
		freeaddrinfo(ai);
		finish(h, -EIO, "out of memory");
		return;
	}
	h->cs = C_CONNECTING;
	h->reused = false;
	bufferevent_setcb(h->bev, NULL, NULL, conn_event, h);
	struct timeval tv = {DISC_DIAL_TIMEOUT_S, 0};
	evtimer_add(h->dial, &tv);
	int r = bufferevent_socket_connect(h->bev, ai->ai_addr,
					   (int)ai->ai_addrlen);
	int e = errno;
	freeaddrinfo(ai);
	if (r < 0) {
		char why[128], w2[160];
		errno_text(e, why, sizeof(why));
		snprintf(w2, sizeof(w2), "connect: %s", why);
		dial_failed(h, w2);
	}
}

/* One header of the response head. */
static void take_header(struct dhttp *h, const char *name, size_t nl,
			const char *v, bool *chunked, long long *clen)
{
	if (nl == 14 && strncasecmp(name, "Content-Length", nl) == 0) {
		char *end;
		errno = 0;
		long long n = strtoll(v, &end, 10);
		*clen = (errno || end == v || *end || n < 0) ? -2 : n;
	} else if (nl == 17 && strncasecmp(name, "Transfer-Encoding", nl) == 0) {
		*chunked = strcasecmp(v, "chunked") == 0;
	} else if (nl == 10 && strncasecmp(name, "Connection", nl) == 0) {
		if (strcasecmp(v, "close") == 0)
			h->keep_alive = false;
	} else if (nl == 12 && strncasecmp(name, "X-Etcd-Index", nl) == 0) {
		char *end;
		errno = 0;
		unsigned long long n = strtoull(v, &end, 10);
		h->has_index = !errno && end != v && !*end && v[0] != '-';
		h->index = h->has_index ? n : 0;
		snprintf(h->index_raw, sizeof(h->index_raw), "%s",
			 h->has_index ? "" : v);
	}
}

/* The status line and headers: -1 if malformed, -2 if too large. */
static int parse_head(struct dhttp *h, char *head)
{
	int minor = 0;
	if (sscanf(head, "HTTP/1.%d %3d", &minor, &h->status) != 2 ||
	    h->status < 100)
		return -1;
	h->keep_alive = minor >= 1;
	bool chunked = false;
	long long clen = -1;
	for (char *l = strstr(head, "\r\n"); l && l[2];) {
		l += 2;
		char *e = strstr(l, "\r\n");
		if (!e)
			break;
		*e = '\0';
		char *colon = strchr(l, ':');
		if (colon) {
			char *v = colon + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			size_t vl = strlen(v);
			while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				v[--vl] = '\0';
			take_header(h, l, (size_t)(colon - l), v, &chunked, &clen);
		}
		l = e;
	}
	if (clen == -2)
		return -1;
	if (h->status < 200) {
		h->rs = R_HEAD; /* 1xx: the real answer follows */
	} else if (h->status == 204 || h->status == 304) {
		h->rs = R_BODY_LEN;
		h->left = 0;
	} else if (chunked) {
		h->rs = R_CHUNK_SIZE;
	} else if (clen >= 0) {
		if ((unsigned long long)clen > DISC_MAX_BODY)
			return -2;
		h->rs = R_BODY_LEN;
		h->left = (size_t)clen;
	} else {
		h->rs = R_BODY_CLOSE;
		h->keep_alive = false;
	}
	return 0;
}

/* Moves up to h->left bytes of in to the body. */
static void take_body(struct dhttp *h, struct evbuffer *in)
{
	size_t n = evbuffer_get_length(in);
	if (n > h->left)
		n = h->left;
	evbuffer_remove_buffer(in, h->body, n);
	h->left -= n;
}

/* Advances the response parser: 1 done, 0 needs more, -1/-2 bad/large. */
static int parse(struct dhttp *h, struct evbuffer *in)
{
	for (;;) {
		switch (h->rs) {
		case R_IDLE:
			return 0;
		case R_HEAD: {
			struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
			if (p.pos < 0)
				return evbuffer_get_length(in) > DISC_MAX_HEAD ? -2 : 0;
			if ((size_t)p.pos + 4 > DISC_MAX_HEAD)
				return -2;
			char *head = malloc((size_t)p.pos + 5);
			if (!head)
				return -1;
			evbuffer_remove(in, head, (size_t)p.pos + 4);
			head[p.pos + 4] = '\0';
			int r = parse_head(h, head);
			free(head);
			if (r < 0)
				return r;
			break;
		}
		case R_BODY_LEN:
			take_body(h, in);
			if (h->left)
				return 0;
			return 1;
		case R_CHUNK_SIZE: {
			size_t n;
			char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
			if (!line)
				return evbuffer_get_length(in) > 1024 ? -1 : 0;
			char *end;
			errno = 0;
			unsigned long long sz = strtoull(line, &end, 16);
			bool ok = end != line && !errno &&
				  (*end == '\0' || *end == ';' || *end == ' ');
			free(line);
			if (!ok)
				return -1;
			if (sz > DISC_MAX_BODY ||
			    evbuffer_get_length(h->body) + sz > DISC_MAX_BODY)
				return -2;
			h->left = (size_t)sz;
			h->rs = sz ? R_CHUNK_DATA : R_TRAILER;
			break;
		}
		case R_CHUNK_DATA:
			take_body(h, in);
			if (h->left)
				return 0;
			h->rs = R_CHUNK_CRLF;
			break;
		case R_CHUNK_CRLF: {
			char crlf[2];
			if (evbuffer_get_length(in) < 2)
				return 0;
			evbuffer_remove(in, crlf, 2);
			if (crlf[0] != '\r' || crlf[1] != '\n')
				return -1;
			h->rs = R_CHUNK_SIZE;
			break;
		}
		case R_TRAILER: {
			size_t n;
			char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
			if (!line)
				return evbuffer_get_length(in) > DISC_MAX_HEAD ? -2 : 0;
			free(line);
			if (n == 0)
				return 1;
			break;
		}
		case R_BODY_CLOSE:
			evbuffer_add_buffer(h->body, in);
			return evbuffer_get_length(h->body) > DISC_MAX_BODY ? -2 : 0;
		}
	}
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct dhttp *h = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	if (!h->in_flight) {
		/* Nothing is asked: a server talking now is not HTTP. */
		if (evbuffer_get_length(in))
			close_conn(h);
		return;
	}
	if (evbuffer_get_length(in))
		h->got_bytes = true;
	int r = parse(h, in);
	if (r == 1)
		finish(h, 0, NULL);
	else if (r == -2)
		finish(h, -EMSGSIZE, "response too large");
	else if (r < 0)
		finish(h, -EIO, "malformed HTTP response");
}

static void conn_closed(struct bufferevent *bev, short what, void *arg)
{
	struct dhttp *h = arg;
	char why[160];
	if (!h->in_flight || bev != h->bev) {
		close_conn(h);
		return;
	}
	unsigned gen = h->gen;
	read_cb(bev, h);
	if (!h->in_flight || gen != h->gen || bev != h->bev)
		return;
	if (h->rs == R_BODY_CLOSE && (what & BEV_EVENT_EOF)) {
		finish(h, 0, NULL);
		return;
	}
	/* A kept connection the server closed meanwhile: Go dials again. */
	if (h->reused && !h->got_bytes) {
		close_conn(h);
		start_connect(h);
		return;
	}
	int e = EVUTIL_SOCKET_ERROR();
	if ((what & BEV_EVENT_ERROR) && e) {
		char t[100];
		errno_text(e, t, sizeof(t));
		snprintf(why, sizeof(why), "read tcp %s: read: %s", h->addr, t);
	} else {
		snprintf(why, sizeof(why), "%s", h->got_bytes ? "unexpected EOF" : "EOF");
	}
	finish(h, -EIO, why);
}

int dhttp_request(struct dhttp *h, const char *method, const char *path_query,
		  const char *form_body, unsigned timeout_s, dhttp_cb cb,
		  void *arg)
{
	if (h->in_flight)
		return -EBUSY;
	int r = disc_request_format(h->target, h->proxy && !h->tls, method,
				    path_query, form_body, &h->req);
	if (r < 0)
		return r;
	evbuffer_drain(h->body, evbuffer_get_length(h->body));
	h->cb = cb;
	h->arg = arg;
	h->in_flight = true;
	h->gen++;
	if (timeout_s) {
		struct timeval tv = {timeout_s, 0};
		evtimer_add(h->deadline, &tv);
	}
	event_active(h->kick, EV_TIMEOUT, 0);
	return 0;
}

struct dhttp *dhttp_new(struct event_base *base, const struct disc_url *target,
			const struct disc_url *proxy, SSL_CTX *tls)
{
	struct dhttp *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->base = base;
	h->target = target;
	h->proxy = proxy;
	h->tls = tls;
	h->deadline = evtimer_new(base, on_deadline, h);
	h->dial = evtimer_new(base, on_dial_timeout, h);
	h->kick = evtimer_new(base, on_kick, h);
	h->body = evbuffer_new();
	if (!h->deadline || !h->dial || !h->kick || !h->body) {
		dhttp_free(h);
		return NULL;
	}
	return h;
}

void dhttp_free(struct dhttp *h)
{
	if (!h)
		return;
	if (h->bev)
		bufferevent_free(h->bev);
	if (h->deadline)
		event_free(h->deadline);
	if (h->dial)
		event_free(h->dial);
	if (h->kick)
		event_free(h->kick);
	if (h->body)
		evbuffer_free(h->body);
	free(h->req);
	free(h);
}
