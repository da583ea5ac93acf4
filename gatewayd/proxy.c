/*
 * etcd's v2 proxy (--proxy on|readonly): which members to forward to. The
 * client URLs come from GET <peer URL>/members on the cluster's peer URLs,
 * refreshed every --proxy-refresh-interval (every second while none is
 * known), shuffled as etcd's director does; an endpoint that fails a
 * request is left out for --proxy-failure-wait. proxy_fwd.c forwards.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>

#include "gw.h"
#include "gw_tls.h"
#include "log.h"
#include "modes.h"
#include "proxy_int.h"

#define PKG "proxy/httpproxy"
#define MEMBERS_TIMEOUT_S 5
#define MEMBERS_MAX_BODY (4u << 20)

static void refresh(struct v2proxy *px);

static void free_conn(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evhttp_connection_free(arg);
}

void proxy_conn_free_later(struct v2proxy *px, struct evhttp_connection *evcon)
{
	static const struct timeval now = {0, 0};
	if (evcon && event_base_once(px->gw->base, -1, EV_TIMEOUT, free_conn,
				     evcon, &now) < 0)
		log_err(PKG, "cannot free a connection");
}

static void endpoints_free(struct v2proxy *px)
{
	for (size_t i = 0; i < px->n_eps; i++) {
		free(px->eps[i].url);
		free(px->eps[i].host);
	}
	free(px->eps);
	px->eps = NULL;
	px->n_eps = 0;
}

/* scheme://host:port into its parts; 0 or -EINVAL. */
int proxy_parse_url(const char *url, char **ret_host, int *ret_port,
		    int *ret_https)
{
	struct evhttp_uri *u = evhttp_uri_parse(url);
	if (!u)
		return -EINVAL;
	const char *scheme = evhttp_uri_get_scheme(u), *host = evhttp_uri_get_host(u);
	int port = evhttp_uri_get_port(u);
	int https = scheme && strcmp(scheme, "https") == 0;
	int r = -EINVAL;
	if (scheme && (https || strcmp(scheme, "http") == 0) && host && *host) {
		*ret_host = strdup(host);
		*ret_port = port > 0 ? port : https ? 443 : 80;
		*ret_https = https;
		r = *ret_host ? 0 : -ENOMEM;
	}
	evhttp_uri_free(u);
	return r;
}

/* The members' client URLs in a /members answer; the count, or -1. */
static int take_members(struct v2proxy *px, const char *body, size_t len)
{
	json_error_t je;
	/* Member IDs pass 2^63: read as reals, they are not used. */
	json_t *root = json_loadb(body, len, JSON_DECODE_INT_AS_REAL, &je);
	if (!json_is_array(root)) {
		json_decref(root);
		return -1;
	}
	size_t n = 0, i, k;
	json_t *m, *u;
	json_array_foreach(root, i, m)
		n += json_array_size(json_object_get(m, "clientURLs"));
	struct proxy_ep *eps = calloc(n ? n : 1, sizeof(*eps));
	size_t got = 0;
	json_array_foreach(root, i, m) {
		json_array_foreach(json_object_get(m, "clientURLs"), k, u) {
			const char *s = json_string_value(u);
			if (!eps || !s || got >= PROXY_MAX_ENDPOINTS)
				continue;
			struct proxy_ep *e = &eps[got];
			if (proxy_parse_url(s, &e->host, &e->port, &e->https) < 0) {
				log_info(PKG, "upstream URL invalid: %s", s);
				continue;
			}
			if (!(e->url = strdup(s))) {
				free(e->host);
				continue;
			}
			got++;
		}
	}
	json_decref(root);
	if (!eps)
		return -1;
	/* etcd's director shuffles, so that not every proxy sticks to the
	 * same member. */
	for (size_t j = got; j > 1; j--) {
		size_t r = (size_t)random() % j;
		struct proxy_ep t = eps[j - 1];
		eps[j - 1] = eps[r];
		eps[r] = t;
	}
	endpoints_free(px);
	px->eps = eps;
	px->n_eps = got;
	char list[4096];
	size_t o = (size_t)snprintf(list, sizeof(list), "[");
	for (size_t j = 0; j < got && o < sizeof(list); j++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s\"%s\"",
				      j ? " " : "", eps[j].url);
	if (o < sizeof(list))
		snprintf(list + o, sizeof(list) - o, "]");
	if (got)
		log_info(PKG, "endpoints found %s", list);
	return (int)got;
}

static void schedule(struct v2proxy *px)
{
	unsigned ms = px->n_eps ? px->cfg->refresh_interval_ms : 1000;
	if (!ms)
		ms = 30000;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(px->timer, &tv);
}

static void on_members(struct evhttp_request *req, void *arg)
{
	struct v2proxy *px = arg;
	proxy_conn_free_later(px, px->fetch);
	px->fetch = NULL;
	struct evbuffer *b = req ? evhttp_request_get_input_buffer(req) : NULL;
	size_t len = b ? evbuffer_get_length(b) : 0;
	if (req && evhttp_request_get_response_code(req) == 200 && len &&
	    len <= MEMBERS_MAX_BODY &&
	    take_members(px, (const char *)evbuffer_pullup(b, -1), len) >= 0) {
		px->peer = 0;
		schedule(px);
		return;
	}
	/* etcd's GetClusterFromRemotePeers: the next peer URL. */
	if (++px->peer < px->cfg->n_peer_urls) {
		refresh(px);
		return;
	}
	log_warn("etcdmain", "proxy: could not retrieve cluster information from the given URLs");
	px->peer = 0;
	schedule(px);
}

/* GET /members from the current peer URL. */
static void refresh(struct v2proxy *px)
{
	const Ipc__ProxyConfig *c = px->cfg;
	while (px->peer < c->n_peer_urls) {
		char *host = NULL;
		int port, https;
		const char *url = c->peer_urls[px->peer];
		if (proxy_parse_url(url, &host, &port, &https) == 0) {
			struct evhttp_connection *evcon =
				gw_tls_connect(px->gw, host, port, https);
			struct evhttp_request *req =
				evcon ? evhttp_request_new(on_members, px) : NULL;
			if (req) {
				evhttp_connection_set_timeout(evcon, MEMBERS_TIMEOUT_S);
				evhttp_add_header(evhttp_request_get_output_headers(req),
						  "Host", host);
				if (evhttp_make_request(evcon, req, EVHTTP_REQ_GET,
							"/members") == 0) {
					px->fetch = evcon;
					free(host);
					return;
				}
			}
			/* A failed evhttp_make_request freed req. */
			if (evcon)
				evhttp_connection_free(evcon);
		}
		free(host);
		px->peer++;
	}
	px->peer = 0;
	schedule(px);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	refresh(arg);
}

int proxy_init(struct gw *gw)
{
	struct v2proxy *px = calloc(1, sizeof(*px));
	if (!px)
		return -ENOMEM;
	gw->proxy = px;
	px->gw = gw;
	px->cfg = gw->w->cfg->proxy;
	LIST_INIT(&px->fwds);
	px->timer = evtimer_new(gw->base, on_timer, px);
	if (!px->timer)
		return -ENOMEM;
	/* The first refresh once the loop runs (TLS is set up by then). */
	struct timeval now = {0, 0};
	evtimer_add(px->timer, &now);
	return 0;
}

struct proxy_ep *proxy_available(struct v2proxy *px, size_t *ret_n,
				 struct proxy_ep **out, size_t max)
{
	uint64_t now = gw_now_ms();
	size_t n = 0;
	for (size_t i = 0; i < px->n_eps && n < max; i++)
		if (px->eps[i].failed_until <= now)
			out[n++] = &px->eps[i];
	*ret_n = n;
	return n ? out[0] : NULL;
}

void proxy_failed(struct v2proxy *px, const char *url)
{
	for (size_t i = 0; i < px->n_eps; i++)
		if (strcmp(px->eps[i].url, url) == 0) {
			px->eps[i].failed_until = gw_now_ms() + px->cfg->failure_wait_ms;
			log_info(PKG, "marked endpoint %s unavailable", url);
		}
}

void proxy_done(struct gw *gw)
{
	struct v2proxy *px = gw->proxy;
	if (!px)
		return;
	proxy_fwd_all_done(px);
	if (px->fetch)
		evhttp_connection_free(px->fetch);
	if (px->timer)
		event_free(px->timer);
	endpoints_free(px);
	free(px);
	gw->proxy = NULL;
}
