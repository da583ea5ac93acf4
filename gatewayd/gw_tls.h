/*
 * gatewayd's TLS: the contexts built from WorkerConfig.client_tls, peer_tls
 * and cipher_suites, TLS on https listeners (a handshake per accepted
 * connection, bounded in time and number, failures logged as etcd logs
 * them), and TLS connections to https peer URLs.
 */
#ifndef ETCD_GATEWAYD_GW_TLS_H
#define ETCD_GATEWAYD_GW_TLS_H

#include <event2/http.h>

struct gw;
struct gw_listener;

/* A handshake gets this long to complete. */
#define GW_TLS_HANDSHAKE_MS 10000
/* Connections in their handshake beyond which the TLS listeners pause. */
#define GW_TLS_MAX_HANDSHAKES 1024
/* Rejected handshakes logged per second; the rest are counted. */
#define GW_TLS_LOG_PER_S 10
/* Peers whose TLS session is kept for resumption. */
#define GW_TLS_SESSIONS 64

/* Tests shorten the handshake bound. */
void gw_tls_set_handshake_ms(struct gw *gw, unsigned ms);

/* Builds the contexts from gw->w->cfg: 0, or -errno with the reason
 * logged. */
int gw_tls_init(struct gw *gw);
/* After every connection is gone. */
void gw_tls_done(struct gw *gw);

/* Serves l (an https URL) over TLS, with the client or peer settings:
 * 0, or -EINVAL (logged) if that side has no certificate. */
int gw_tls_listen(struct gw *gw, struct gw_listener *l);
/* Whether TLS listeners are paused (too many handshakes). */
int gw_tls_paused(struct gw *gw);

/* A connection to a peer at host:port, over TLS if https, or NULL. */
struct evhttp_connection *gw_tls_connect(struct gw *gw, const char *host,
					 int port, int https);
/* Why the last TLS handshake of evcon failed (Go's words), or NULL. */
const char *gw_tls_conn_error(struct evhttp_connection *evcon);

#endif
