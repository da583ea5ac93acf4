/* The v2 proxy's state, shared by proxy.c (endpoints) and proxy_fwd.c
 * (forwarding). */
#ifndef ETCD_GATEWAYD_PROXY_INT_H
#define ETCD_GATEWAYD_PROXY_INT_H

#include <stdint.h>
#include <sys/queue.h>

#include "ipc.pb-c.h"

#define PROXY_MAX_ENDPOINTS 256
#define PROXY_MAX_FORWARDS 4096       /* requests in flight */
#define PROXY_MAX_QUEUED (4u << 20)   /* a client's unsent bytes: pause */

struct gw;

/* One member's client URL. */
struct proxy_ep {
	char *url, *host;
	int port, https;
	uint64_t failed_until; /* gw_now_ms; 0: available */
};

struct fwd;

struct v2proxy {
	struct gw *gw;
	const Ipc__ProxyConfig *cfg;
	struct proxy_ep *eps;
	size_t n_eps;
	size_t peer;                    /* the peer URL asked next */
	struct evhttp_connection *fetch; /* GET /members in flight */
	struct event *timer;
	LIST_HEAD(, fwd) fwds;
	size_t n_fwds;
};

/* proxy.c */
int proxy_parse_url(const char *url, char **ret_host, int *ret_port,
		    int *ret_https);
/* The endpoints not failed now, at most max, in out (borrowed: valid
 * until the next refresh); the first or NULL. */
struct proxy_ep *proxy_available(struct v2proxy *px, size_t *ret_n,
				 struct proxy_ep **out, size_t max);
/* Frees evcon once the callback running now returns (a connection cannot
 * be freed inside its own callback). */
void proxy_conn_free_later(struct v2proxy *px, struct evhttp_connection *evcon);
/* A request to url failed: left out for the failure wait. */
void proxy_failed(struct v2proxy *px, const char *url);

/* proxy_fwd.c: ends every forward (at stop). */
void proxy_fwd_all_done(struct v2proxy *px);

#endif
