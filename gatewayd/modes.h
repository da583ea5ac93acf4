/*
 * gatewayd's two other modes, where it runs alone under the supervisor
 * (no raftd or storaged): etcd's gateway (`etcd gateway start`, a TCP
 * forwarder, gateway*.c) and etcd's v2 proxy (--proxy, an HTTP reverse
 * proxy in front of the cluster's client URLs, proxy*.c).
 */
#ifndef ETCD_GATEWAYD_MODES_H
#define ETCD_GATEWAYD_MODES_H

#include <event2/http.h>

struct gw;
struct gw_listener;

/* WorkerConfig.gateway is set: state in gw->gateway. 0 or -errno. */
int gateway_init(struct gw *gw);
/* The --listen-addr socket (listening, from the supervisor; taken). */
int gateway_listen(struct gw *gw, int fd);
/* Closes every connection; NULL gw->gateway is a no-op. */
void gateway_done(struct gw *gw);

/* WorkerConfig.proxy is set: state in gw->proxy. 0 or -errno. */
int proxy_init(struct gw *gw);
/* A request on a client listener l: forwarded (or refused, readonly). */
void proxy_handle(struct gw *gw, struct evhttp_request *req,
		  struct gw_listener *l);
/* NULL gw->proxy is a no-op. */
void proxy_done(struct gw *gw);

#endif
