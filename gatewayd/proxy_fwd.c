/*
 * The v2 proxy's forwarding, as etcd's reverseProxy: the client's request
 * (its body read whole, so it can be sent again) goes to the available
 * endpoints in turn until one answers; a failed one is left out for the
 * failure wait. The answer streams back as it arrives (a v2 wait may last
 * for hours), its hop-by-hop headers dropped and the proxy's CORS headers
 * added to the member's. readonly (--proxy readonly) answers anything but
 * GET with 501 and no body.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "gw.h"
#include "gw_tls.h"
#include "log.h"
#include "modes.h"
#include "proxy_int.h"

#define PKG "proxy/httpproxy"

struct target {
	char *url, *host;
	int port, https;
};

struct fwd {
	struct v2proxy *px;
	struct evhttp_request *creq;      /* the client's */
	struct evhttp_connection *cconn;
	struct evhttp_connection *bconn;  /* to the member */
	struct evhttp_request *breq;
	enum evhttp_cmd_type method;
	char *uri;
	struct evbuffer *body;
	struct target t[PROXY_MAX_ENDPOINTS];
	size_t n_t, next;
	int started;
	struct event *gone;               /* the client's EOF, before the reply */
	LIST_ENTRY(fwd) link;
};

/* Go's httputil hop-by-hop headers, which do not cross a proxy. */
static int hop_by_hop(const char *h)
{
	static const char *const v[] = {"Connection", "Keep-Alive",
		"Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailers",
		"Transfer-Encoding", "Upgrade"};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (strcasecmp(h, v[i]) == 0)
			return 1;
	return 0;
}

static void defer_free(struct fwd *f)
{
	proxy_conn_free_later(f->px, f->bconn);
	f->bconn = NULL;
	f->breq = NULL;
}

static void fwd_free(struct fwd *f)
{
	struct v2proxy *px = f->px;
	LIST_REMOVE(f, link);
	px->n_fwds--;
	if (f->gone)
		event_free(f->gone);
	if (f->cconn)
		evhttp_connection_set_closecb(f->cconn, NULL, NULL);
	if (f->breq)
		evhttp_cancel_request(f->breq);
	if (f->bconn)
		evhttp_connection_free(f->bconn);
	for (size_t i = 0; i < f->n_t; i++) {
		free(f->t[i].url);
		free(f->t[i].host);
	}
	if (f->body)
		evbuffer_free(f->body);
	free(f->uri);
	free(f);
}

/* etcd's httptypes.HTTPError: {"message":...} with the status. */
static void reply_error(struct evhttp_request *req, int status, const char *msg)
{
	http_cors(req);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/json");
	evbuffer_add_printf(evhttp_request_get_output_buffer(req),
			    "{\"message\":\"httpproxy: %s\"}", msg);
	evhttp_send_reply(req, status, http_reason(status), NULL);
}

/* The client went away: the member's request goes too. */
static void on_client_close(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	struct fwd *f = arg;
	f->cconn = NULL; /* being freed by evhttp, with its request */
	fwd_free(f);
}

/* evhttp reads nothing from a client whose request is outstanding: watch
 * its socket for EOF (Go's CloseNotify). */
static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct fwd *f = arg;
	char c;
	(void)what;
	ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	event_free(f->gone);
	f->gone = NULL;
	if (n <= 0 && f->cconn)
		evhttp_connection_free(f->cconn); /* calls on_client_close */
}

static void on_headers_done(struct fwd *f, struct evhttp_request *breq);
static int on_headers(struct evhttp_request *breq, void *arg);
static void on_chunk(struct evhttp_request *breq, void *arg);
static void on_done(struct evhttp_request *breq, void *arg);

/* Sends the request to the next target; none left: etcd's 502. */
static void try_next(struct fwd *f)
{
	struct v2proxy *px = f->px;
	const Ipc__ProxyConfig *c = px->cfg;
	while (f->next < f->n_t) {
		struct target *t = &f->t[f->next++];
		f->bconn = gw_tls_connect(px->gw, t->host, t->port, t->https);
		f->breq = f->bconn ? evhttp_request_new(on_done, f) : NULL;
		if (!f->breq) {
			if (f->bconn)
				evhttp_connection_free(f->bconn);
			f->bconn = NULL;
			continue;
		}
		/* Dial and write limits until the answer's headers. */
		unsigned ms = c->dial_timeout_ms + c->write_timeout_ms;
		struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
		if (ms)
			evhttp_connection_set_timeout_tv(f->bconn, &tv);
		evhttp_request_set_header_cb(f->breq, on_headers);
		evhttp_request_set_chunked_cb(f->breq, on_chunk);
		struct evkeyvalq *in = evhttp_request_get_input_headers(f->creq);
		struct evkeyvalq *out = evhttp_request_get_output_headers(f->breq);
		const char *xff = NULL;
		for (struct evkeyval *h = in->tqh_first; h; h = h->next.tqe_next) {
			if (strcasecmp(h->key, "X-Forwarded-For") == 0)
				xff = h->value;
			else if (!hop_by_hop(h->key) &&
				 strcasecmp(h->key, "Content-Length") != 0)
				evhttp_add_header(out, h->key, h->value);
		}
		char *ip = NULL;
		ev_uint16_t port;
		evhttp_connection_get_peer(f->cconn, &ip, &port);
		char fw[512];
		snprintf(fw, sizeof(fw), "%s%s%s", xff ? xff : "", xff ? ", " : "",
			 ip ? ip : "");
		evhttp_add_header(out, "X-Forwarded-For", fw);
		evbuffer_add(evhttp_request_get_output_buffer(f->breq),
			     evbuffer_pullup(f->body, -1), evbuffer_get_length(f->body));
		if (evhttp_make_request(f->bconn, f->breq, f->method, f->uri) == 0)
			return;
		/* evhttp freed the request. */
		f->breq = NULL;
		evhttp_connection_free(f->bconn);
		f->bconn = NULL;
		proxy_failed(px, t->url);
	}
	char msg[96];
	snprintf(msg, sizeof(msg), "unable to get response from %zu endpoint(s)", f->n_t);
	log_err(PKG, "%s", msg);
	if (f->creq)
		reply_error(f->creq, 502, msg);
	fwd_free(f);
}

static int on_headers(struct evhttp_request *breq, void *arg)
{
	on_headers_done(arg, breq);
	return 0;
}

static void on_headers_done(struct fwd *f, struct evhttp_request *breq)
{
	const Ipc__ProxyConfig *c = f->px->cfg;
	struct evkeyvalq *in = evhttp_request_get_input_headers(breq);
	struct evkeyvalq *out = evhttp_request_get_output_headers(f->creq);
	/* The proxy's own CORS headers, then the member's (etcd's proxy
	 * sends both). */
	http_cors(f->creq);
	for (struct evkeyval *h = in->tqh_first; h; h = h->next.tqe_next)
		if (!hop_by_hop(h->key))
			evhttp_add_header(out, h->key, h->value);
	/* The answer may take as long as it takes (a v2 wait), unless
	 * --proxy-read-timeout says otherwise. */
	struct bufferevent *bev = evhttp_connection_get_bufferevent(f->bconn);
	struct timeval rt = {c->read_timeout_ms / 1000, (c->read_timeout_ms % 1000) * 1000};
	bufferevent_set_timeouts(bev, c->read_timeout_ms ? &rt : NULL, NULL);
	int status = evhttp_request_get_response_code(breq);
	const char *reason = evhttp_request_get_response_code_line(breq);
	evhttp_send_reply_start(f->creq, status, reason ? reason : http_reason(status));
	f->started = 1;
}

static void on_chunk(struct evhttp_request *breq, void *arg)
{
	struct fwd *f = arg;
	evhttp_send_reply_chunk(f->creq, evhttp_request_get_input_buffer(breq));
}

static void on_done(struct evhttp_request *breq, void *arg)
{
	struct fwd *f = arg;
	if (!breq || evhttp_request_get_response_code(breq) == 0 || !f->started) {
		/* No answer: evhttp frees the connection's request; the
		 * connection is ours, freed once this callback is over. */
		struct target *t = &f->t[f->next - 1];
		defer_free(f);
		if (f->started) {
			evhttp_send_reply_end(f->creq);
			fwd_free(f);
			return;
		}
		proxy_failed(f->px, t->url);
		try_next(f);
		return;
	}
	/* Whatever is left of the body, then the end. */
	struct evbuffer *rest = evhttp_request_get_input_buffer(breq);
	if (evbuffer_get_length(rest))
		evhttp_send_reply_chunk(f->creq, rest);
	evhttp_send_reply_end(f->creq);
	defer_free(f);
	fwd_free(f);
}

void proxy_handle(struct gw *gw, struct evhttp_request *req,
		  struct gw_listener *l)
{
	struct v2proxy *px = gw->proxy;
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	(void)l;
	if (px->cfg->readonly && m != EVHTTP_REQ_GET) {
		evhttp_send_reply(req, 501, "Not Implemented", NULL);
		return;
	}
	struct proxy_ep *av[PROXY_MAX_ENDPOINTS];
	size_t n;
	proxy_available(px, &n, av, PROXY_MAX_ENDPOINTS);
	if (n == 0) {
		log_err(PKG, "zero endpoints currently available");
		reply_error(req, 503, "zero endpoints currently available");
		return;
	}
	struct fwd *f = px->n_fwds < PROXY_MAX_FORWARDS ? calloc(1, sizeof(*f)) : NULL;
	if (!f) {
		reply_error(req, 503, "too many requests in flight");
		return;
	}
	LIST_INSERT_HEAD(&px->fwds, f, link);
	px->n_fwds++;
	f->px = px;
	f->creq = req;
	f->cconn = evhttp_request_get_connection(req);
	f->method = m;
	f->uri = strdup(evhttp_request_get_uri(req));
	f->body = evbuffer_new();
	for (size_t i = 0; i < n; i++) {
		f->t[i].url = strdup(av[i]->url);
		f->t[i].host = strdup(av[i]->host);
		f->t[i].port = av[i]->port;
		f->t[i].https = av[i]->https;
		f->n_t++;
		if (!f->t[i].url || !f->t[i].host)
			break;
	}
	if (!f->uri || !f->body || f->n_t < n || !f->t[n - 1].host || !f->cconn) {
		reply_error(req, 500, "out of memory");
		f->cconn = NULL;
		fwd_free(f);
		return;
	}
	evbuffer_add_buffer(f->body, evhttp_request_get_input_buffer(req));
	evhttp_connection_set_closecb(f->cconn, on_client_close, f);
	struct bufferevent *cb = evhttp_connection_get_bufferevent(f->cconn);
	evutil_socket_t fd = cb ? bufferevent_getfd(cb) : -1;
	if (fd >= 0 && (f->gone = event_new(gw->base, fd, EV_READ | EV_PERSIST,
					    on_readable, f)))
		event_add(f->gone, NULL);
	try_next(f);
}

void proxy_fwd_all_done(struct v2proxy *px)
{
	while (!LIST_EMPTY(&px->fwds)) {
		struct fwd *f = LIST_FIRST(&px->fwds);
		if (f->creq && !f->started)
			reply_error(f->creq, 503, "stopping");
		else if (f->creq)
			evhttp_send_reply_end(f->creq);
		fwd_free(f);
	}
}
