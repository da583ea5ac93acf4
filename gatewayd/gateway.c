/*
 * etcd's gateway (`etcd gateway start`): a TCP forwarder, as etcd's
 * tcpproxy. Each accepted connection goes to the next active endpoint in
 * round robin; an endpoint that cannot be dialled is made inactive and the
 * next one is tried for the same connection; every retry delay the
 * inactive ones are dialled again. Bytes pass through untouched (TLS too),
 * each direction back-pressured by the other side's buffer, and a
 * half-close is passed on (etcd closes both directions instead).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/listener.h>

#include "gw.h"
#include "log.h"
#include "modes.h"

#define PKG "tcpproxy"
#define GATEWAY_MAX_CONNS 20000      /* each costs two descriptors */
#define GATEWAY_DIAL_TIMEOUT_S 5      /* etcd's dial has none: the OS's */
#define GATEWAY_HIGH (1u << 20)       /* a side's queued bytes: stop reading */
#define GATEWAY_LOW (256u << 10)      /* ... and read again below this */

struct endpoint {
	char *addr;   /* "host:port" as given (etcd logs it) */
	char *host;   /* without brackets */
	int port;
	int active;
	struct bufferevent *probe; /* the monitor's dial in flight */
};

struct pair {
	struct gateway *g;
	struct bufferevent *in, *out; /* the client, the endpoint */
	size_t ep;                    /* the endpoint being dialled or used */
	size_t tried;                 /* endpoints tried for this connection */
	int in_eof, out_eof;          /* that side sent FIN */
	LIST_ENTRY(pair) link;
};

struct gateway {
	struct gw *gw;
	struct endpoint *eps;
	size_t n_eps;
	uint64_t picks;               /* round robin counter */
	unsigned retry_ms;
	struct evconnlistener *lis;
	struct event *monitor;
	struct evdns_base *dns;       /* gw->dns, or our own for names */
	int own_dns;
	LIST_HEAD(, pair) pairs;
	size_t n_pairs;
};

static void dial(struct pair *p);

static int is_ip(const char *h)
{
	unsigned char b[16];
	return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

/* A resolver for a host name: ETCDC_RESOLVER's, else the system's
 * (resolv.conf and /etc/hosts), made on first use. NULL for an IP. */
static struct evdns_base *dns_for(struct gateway *g, const char *host)
{
	if (is_ip(host))
		return NULL;
	if (!g->dns) {
		g->dns = evdns_base_new(g->gw->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
		g->own_dns = g->dns != NULL;
	}
	return g->dns;
}

static void nodelay(struct bufferevent *b)
{
	int one = 1;
	evutil_socket_t fd = bufferevent_getfd(b);
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void pair_free(struct pair *p)
{
	struct gateway *g = p->g;
	LIST_REMOVE(p, link);
	g->n_pairs--;
	if (p->in)
		bufferevent_free(p->in);
	if (p->out)
		bufferevent_free(p->out);
	free(p);
	if (g->n_pairs + 1 == GATEWAY_MAX_CONNS && g->lis)
		evconnlistener_enable(g->lis);
}

/* The next active endpoint in round robin, or -1 (etcd's pick). */
static long pick(struct gateway *g)
{
	size_t active = 0;
	for (size_t i = 0; i < g->n_eps; i++)
		active += g->eps[i].active;
	if (!active)
		return -1;
	size_t k = (size_t)(g->picks++ % active);
	for (size_t i = 0; i < g->n_eps; i++)
		if (g->eps[i].active && k-- == 0)
			return (long)i;
	return -1;
}

static struct bufferevent *side(const struct pair *p, struct bufferevent *b)
{
	return b == p->in ? p->out : p->in;
}

/* Both directions over: done. A side's FIN reaches the other once its
 * bytes are written. */
static void maybe_done(struct pair *p)
{
	if (p->in_eof && p->out_eof &&
	    !evbuffer_get_length(bufferevent_get_output(p->in)) &&
	    !evbuffer_get_length(bufferevent_get_output(p->out)))
		pair_free(p);
}

static void pass_fin(struct bufferevent *to)
{
	if (!evbuffer_get_length(bufferevent_get_output(to))) {
		evutil_socket_t fd = bufferevent_getfd(to);
		if (fd >= 0)
			shutdown(fd, SHUT_WR);
	}
}

static void on_read(struct bufferevent *b, void *arg)
{
	struct pair *p = arg;
	struct bufferevent *to = side(p, b);
	struct evbuffer *out = bufferevent_get_output(to);
	evbuffer_add_buffer(out, bufferevent_get_input(b));
	/* The other side is slow: stop reading until it drains. */
	if (evbuffer_get_length(out) >= GATEWAY_HIGH)
		bufferevent_disable(b, EV_READ);
}

/* to's output went below the low mark (or empty). */
static void on_write(struct bufferevent *to, void *arg)
{
	struct pair *p = arg;
	struct bufferevent *from = side(p, to);
	int from_eof = from == p->in ? p->in_eof : p->out_eof;
	if (!from_eof)
		bufferevent_enable(from, EV_READ);
	else if (!evbuffer_get_length(bufferevent_get_output(to)))
		pass_fin(to);
	maybe_done(p);
}

static void on_event(struct bufferevent *b, short what, void *arg)
{
	struct pair *p = arg;
	if (what & BEV_EVENT_EOF && !(what & BEV_EVENT_ERROR)) {
		/* What it sent before its FIN goes on first. */
		on_read(b, p);
		if (b == p->in)
			p->in_eof = 1;
		else
			p->out_eof = 1;
		bufferevent_disable(b, EV_READ);
		pass_fin(side(p, b));
		maybe_done(p);
		return;
	}
	pair_free(p);
}

static void on_dial(struct bufferevent *b, short what, void *arg)
{
	struct pair *p = arg;
	struct gateway *g = p->g;
	if (what & BEV_EVENT_CONNECTED) {
		nodelay(b);
		bufferevent_set_timeouts(b, NULL, NULL);
		bufferevent_setcb(p->out, on_read, on_write, on_event, p);
		bufferevent_setcb(p->in, on_read, on_write, on_event, p);
		bufferevent_setwatermark(p->in, EV_WRITE, GATEWAY_LOW, 0);
		bufferevent_setwatermark(p->out, EV_WRITE, GATEWAY_LOW, 0);
		bufferevent_enable(p->out, EV_READ | EV_WRITE);
		bufferevent_enable(p->in, EV_READ | EV_WRITE);
		return;
	}
	struct endpoint *ep = &g->eps[p->ep];
	int err = bufferevent_socket_get_dns_error(b);
	char why[256];
	if (err)
		snprintf(why, sizeof(why), "dial tcp: lookup %s: %s", ep->host,
			 evutil_gai_strerror(err));
	else if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof(why), "dial tcp %s: i/o timeout", ep->addr);
	else
		snprintf(why, sizeof(why), "dial tcp %s: connect: %s", ep->addr,
			 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	/* Go's error texts are strerror's in lower case. */
	char *c = strstr(why, "connect: ");
	if (c && c[9] >= 'A' && c[9] <= 'Z')
		c[9] = (char)(c[9] - 'A' + 'a');
	if (ep->active) {
		ep->active = 0;
		log_warn(PKG, "deactivated endpoint, address: %s, interval: %.0fs, error: %s",
			 ep->addr, g->retry_ms / 1000.0, why);
	}
	bufferevent_free(p->out);
	p->out = NULL;
	dial(p);
}

/* Dials the next active endpoint for p; none left: the client's
 * connection is closed, as etcd's. */
static void dial(struct pair *p)
{
	struct gateway *g = p->g;
	long i = p->tried++ < g->n_eps ? pick(g) : -1;
	if (i < 0) {
		pair_free(p);
		return;
	}
	struct endpoint *ep = &g->eps[i];
	p->ep = (size_t)i;
	/* Deferred: a connect that fails at once must not call back
	 * inside bufferevent_socket_connect_hostname. */
	p->out = bufferevent_socket_new(g->gw->base, -1,
					BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!p->out) {
		pair_free(p);
		return;
	}
	struct timeval tv = {GATEWAY_DIAL_TIMEOUT_S, 0};
	bufferevent_set_timeouts(p->out, NULL, &tv);
	bufferevent_setcb(p->out, NULL, NULL, on_dial, p);
	bufferevent_socket_connect_hostname(p->out, dns_for(g, ep->host),
					    AF_UNSPEC, ep->host, ep->port);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
		      struct sockaddr *sa, int slen, void *arg)
{
	struct gateway *g = arg;
	(void)sa;
	(void)slen;
	struct pair *p = calloc(1, sizeof(*p));
	if (!p) {
		close(fd);
		return;
	}
	p->g = g;
	p->in = bufferevent_socket_new(g->gw->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!p->in) {
		close(fd);
		free(p);
		return;
	}
	nodelay(p->in);
	LIST_INSERT_HEAD(&g->pairs, p, link);
	if (++g->n_pairs >= GATEWAY_MAX_CONNS)
		evconnlistener_disable(l);
	/* The client's bytes wait in the kernel until the endpoint is up. */
	bufferevent_disable(p->in, EV_READ);
	dial(p);
}

static void on_probe(struct bufferevent *b, short what, void *arg)
{
	struct endpoint *ep = arg;
	(void)b;
	if (what & BEV_EVENT_CONNECTED) {
		ep->active = 1;
		log_info(PKG, "activated, address: %s", ep->addr);
	} else {
		log_warn(PKG, "failed to activate endpoint (stay inactive for another interval), address: %s",
			 ep->addr);
	}
	bufferevent_free(ep->probe);
	ep->probe = NULL;
}

/* etcd's runMonitor: every retry delay, dial each inactive endpoint. */
static void on_monitor(evutil_socket_t fd, short what, void *arg)
{
	struct gateway *g = arg;
	(void)fd;
	(void)what;
	for (size_t i = 0; i < g->n_eps; i++) {
		struct endpoint *ep = &g->eps[i];
		if (ep->active || ep->probe)
			continue;
		ep->probe = bufferevent_socket_new(g->gw->base, -1,
			BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (!ep->probe)
			continue;
		struct timeval tv = {GATEWAY_DIAL_TIMEOUT_S, 0};
		bufferevent_set_timeouts(ep->probe, NULL, &tv);
		bufferevent_setcb(ep->probe, NULL, NULL, on_probe, ep);
		bufferevent_socket_connect_hostname(ep->probe, dns_for(g, ep->host),
						    AF_UNSPEC, ep->host, ep->port);
	}
}

/* "host:port" or "[v6]:port" into ep. 0 or -EINVAL. */
static int parse_endpoint(const char *s, struct endpoint *ep)
{
	const char *colon = strrchr(s, ':');
	if (!colon || !colon[1])
		return -EINVAL;
	const char *h = s, *he = colon;
	if (*s == '[' && colon > s && colon[-1] == ']') {
		h++;
		he--;
	}
	ep->addr = strdup(s);
	ep->host = strndup(h, (size_t)(he - h));
	ep->port = atoi(colon + 1);
	ep->active = 1;
	return ep->addr && ep->host && ep->port > 0 && ep->port < 65536 ? 0 : -EINVAL;
}

int gateway_init(struct gw *gw)
{
	const Ipc__GatewayConfig *c = gw->w->cfg->gateway;
	struct gateway *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	gw->gateway = g;
	g->gw = gw;
	g->dns = gw->dns;
	g->retry_ms = c->retry_delay_ms ? c->retry_delay_ms : 60000;
	LIST_INIT(&g->pairs);
	g->eps = calloc(c->n_endpoints ? c->n_endpoints : 1, sizeof(*g->eps));
	if (!g->eps)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_endpoints; i++) {
		g->n_eps++;
		if (parse_endpoint(c->endpoints[i], &g->eps[i]) < 0) {
			log_crit(PKG, "bad endpoint %s", c->endpoints[i]);
			return -EINVAL;
		}
	}
	g->monitor = event_new(gw->base, -1, EV_PERSIST, on_monitor, g);
	if (!g->monitor)
		return -ENOMEM;
	struct timeval tv = {g->retry_ms / 1000, (g->retry_ms % 1000) * 1000};
	event_add(g->monitor, &tv);
	return 0;
}

int gateway_listen(struct gw *gw, int fd)
{
	struct gateway *g = gw->gateway;
	if (evutil_make_socket_nonblocking(fd) < 0) {
		close(fd);
		return -errno;
	}
	g->lis = evconnlistener_new(gw->base, on_accept, g,
				    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
				    -1, fd);
	if (!g->lis) {
		close(fd);
		return -ENOMEM;
	}
	size_t len = 3;
	for (size_t i = 0; i < g->n_eps; i++)
		len += strlen(g->eps[i].addr) + 1;
	char *list = malloc(len);
	if (list) {
		strcpy(list, "[");
		for (size_t i = 0; i < g->n_eps; i++) {
			if (i)
				strcat(list, " ");
			strcat(list, g->eps[i].addr);
		}
		strcat(list, "]");
	}
	log_info(PKG, "ready to proxy client requests, endpoints: %s",
		 list ? list : "");
	free(list);
	return 0;
}

void gateway_done(struct gw *gw)
{
	struct gateway *g = gw->gateway;
	if (!g)
		return;
	while (!LIST_EMPTY(&g->pairs))
		pair_free(LIST_FIRST(&g->pairs));
	if (g->lis)
		evconnlistener_free(g->lis);
	if (g->monitor)
		event_free(g->monitor);
	for (size_t i = 0; i < g->n_eps; i++) {
		if (g->eps[i].probe)
			bufferevent_free(g->eps[i].probe);
		free(g->eps[i].addr);
		free(g->eps[i].host);
	}
	free(g->eps);
	if (g->own_dns)
		evdns_base_free(g->dns, 1);
	free(g);
	gw->gateway = NULL;
}
