/*
 * The HTTP side: one evhttp per listening socket handed over by the
 * supervisor, client connections tracked (for the limit, and so that a
 * request whose client went away is never answered), and the routes of
 * etcd's client and peer ports.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/http.h>
#include <event2/listener.h>

#include "gw.h"
#include "gw_tls.h"
#include "stream.h"
#include "log.h"
#include "modes.h"
#include "peer.h"
#include "rpc.pb-c.h"

#define MAX_HEADERS_SIZE (64u << 10)

void http_listeners_update(struct gw *gw)
{
	for (struct gw_listener *l = gw->listeners; l; l = l->next) {
		struct evconnlistener *el = evhttp_bound_socket_get_listener(l->bound);
		if (!el)
			continue;
		if ((l->peer || gw->accepting) && !(l->tls && gw_tls_paused(gw)))
			evconnlistener_enable(el);
		else
			evconnlistener_disable(el);
	}
}

/* The listeners accept only while we are below the connection limit. */
static void set_accepting(struct gw *gw, int on)
{
	if (gw->accepting == on)
		return;
	gw->accepting = on;
	http_listeners_update(gw);
	if (!on)
		log_warn("embed", "%zu client connections: not accepting more for now",
			 gw->conns.n);
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
	struct conn *c = arg;
	struct gw *gw = c->gw;
	u64map_del(&gw->conns, (uint64_t)(uintptr_t)evcon);
	if (c->ws) {
		/* A stream's request is ours to free if evhttp let go of it
		 * (the client closed while we were streaming). */
		struct evhttp_request *req = c->ws->req;
		stream_conn_gone(c);
		if (req && !evhttp_request_get_connection(req))
			evhttp_request_free(req);
	}
	if (c->pending) {
		/* The client is gone: the request is answered by nobody. If
		 * evhttp let go of it, it is ours to free. */
		struct pending *p = c->pending;
		if (p->req && !evhttp_request_get_connection(p->req))
			evhttp_request_free(p->req);
		p->req = NULL;
		p->conn = NULL;
		/* A v2 wait would never end by itself. */
		if (p->kind == PK_V2 && p->dq == &gw->dq_none)
			v2_wait_gone(gw, p);
	}
	free(c);
	if (gw->conns.n < GW_MAX_CONNS * 9 / 10)
		set_accepting(gw, 1);
}

static struct conn *conn_get(struct gw *gw, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	if (!evcon)
		return NULL;
	struct conn *c = u64map_get(&gw->conns, (uint64_t)(uintptr_t)evcon);
	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->gw = gw;
	c->evcon = evcon;
	if (u64map_put(&gw->conns, (uint64_t)(uintptr_t)evcon, c) < 0) {
		free(c);
		return NULL;
	}
	evhttp_connection_set_closecb(evcon, on_conn_close, c);
	if (gw->conns.n >= GW_MAX_CONNS)
		set_accepting(gw, 0);
	return c;
}

struct route {
	const char *path; /* after /v3/ or /v3beta/ */
	int kind;         /* enum pkind, or -1: not supported yet */
	const ProtobufCMessageDescriptor *desc;
};

static const struct route routes[] = {
	{ "kv/range", PK_RANGE, &etcdserverpb__range_request__descriptor },
	{ "kv/put", PK_PUT, &etcdserverpb__put_request__descriptor },
	{ "kv/deleterange", PK_DELETE, &etcdserverpb__delete_range_request__descriptor },
	{ "kv/txn", PK_TXN, &etcdserverpb__txn_request__descriptor },
	{ "kv/compaction", PK_COMPACT, &etcdserverpb__compaction_request__descriptor },
	{ "maintenance/status", PK_STATUS, &etcdserverpb__status_request__descriptor },
	{ "cluster/member/list", PK_MEMBER_LIST, &etcdserverpb__member_list_request__descriptor },
	{ "cluster/member/add", PK_MEMBER_ADD, &etcdserverpb__member_add_request__descriptor },
	{ "cluster/member/remove", PK_MEMBER_REMOVE, &etcdserverpb__member_remove_request__descriptor },
	{ "cluster/member/update", PK_MEMBER_UPDATE, &etcdserverpb__member_update_request__descriptor },
	{ "cluster/member/promote", PK_MEMBER_PROMOTE, &etcdserverpb__member_promote_request__descriptor },
	{ "watch", PK_WATCH, NULL },
	{ "lease/grant", PK_LEASE_GRANT, &etcdserverpb__lease_grant_request__descriptor },
	{ "lease/revoke", PK_LEASE_REVOKE, &etcdserverpb__lease_revoke_request__descriptor },
	{ "lease/keepalive", PK_KEEPALIVE, NULL },
	{ "lease/timetolive", PK_LEASE_TTL, &etcdserverpb__lease_time_to_live_request__descriptor },
	{ "lease/leases", PK_LEASE_LEASES, &etcdserverpb__lease_leases_request__descriptor },
	/* etcd 3.4's gateway also serves these older paths. */
	{ "kv/lease/revoke", PK_LEASE_REVOKE, &etcdserverpb__lease_revoke_request__descriptor },
	{ "kv/lease/timetolive", PK_LEASE_TTL, &etcdserverpb__lease_time_to_live_request__descriptor },
	{ "kv/lease/leases", PK_LEASE_LEASES, &etcdserverpb__lease_leases_request__descriptor },
	/* etcd 3.4's other gateway routes: known, not served yet. */
	{ "maintenance/alarm", -1, NULL },
	{ "maintenance/defragment", -1, NULL },
	{ "maintenance/hash", -1, NULL },
	{ "maintenance/snapshot", -1, NULL },
	{ "maintenance/transfer-leadership", -1, NULL },
	{ "auth/enable", -1, NULL },
	{ "auth/disable", -1, NULL },
	{ "auth/authenticate", -1, NULL },
	{ "auth/user/add", -1, NULL },
	{ "auth/user/get", -1, NULL },
	{ "auth/user/list", -1, NULL },
	{ "auth/user/delete", -1, NULL },
	{ "auth/user/changepw", -1, NULL },
	{ "auth/user/grant", -1, NULL },
	{ "auth/user/revoke", -1, NULL },
	{ "auth/role/add", -1, NULL },
	{ "auth/role/get", -1, NULL },
	{ "auth/role/list", -1, NULL },
	{ "auth/role/delete", -1, NULL },
	{ "auth/role/grant", -1, NULL },
	{ "auth/role/revoke", -1, NULL },
};

static const char *after(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);
	return strncmp(path, prefix, n) == 0 ? path + n : NULL;
}

static void reply_version(struct evhttp_request *req)
{
	static const char v[] = "{\"etcdserver\":\"" ETCD_VERSION
				"\",\"etcdcluster\":\"" ETCD_CLUSTER_VERSION "\"}";
	char *body = strdup(v);
	http_reply_json(req, body, body ? strlen(body) : 0, 0);
}

static void route_v3(struct gw *gw, struct evhttp_request *req, const char *rest)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *r = &routes[i];
		if (strcmp(rest, r->path) != 0)
			continue;
		if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
			http_reply_text(req, 405, "Method Not Allowed\n", NULL);
			return;
		}
		if (r->kind < 0) {
			char msg[128];
			snprintf(msg, sizeof(msg),
				 "etcdserver: %s is not supported yet", r->path);
			http_reply_error(req, 12, msg);
			return;
		}
		struct conn *c = conn_get(gw, req);
		if (!c) {
			http_reply_error(req, 8, "etcdserver: too many requests");
			return;
		}
		gw->m_started[r->kind]++;
		if (gw->learner && (r->kind == PK_WATCH || r->kind == PK_KEEPALIVE))
			/* etcd refuses every stream on a learner. */
			http_reply_error(req, 14, ERR_LEARNER);
		else if (r->kind == PK_WATCH)
			watch_handle(gw, req, c);
		else if (r->kind == PK_KEEPALIVE)
			keepalive_handle(gw, req, c);
		else
			kv_handle(gw, req, c, (enum pkind)r->kind, r->desc);
		return;
	}
	/* grpc-gateway's own 404. */
	http_reply_text(req, 404, "Not Found\n", NULL);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct gw_listener *l = arg;
	struct gw *gw = l->gw;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	const char *rest;

	if (!path || !*path)
		path = "/";
	if (l->peer) {
		if (strcmp(path, "/raft") == 0) {
			peer_recv_handle(gw, req);
		} else if (strcmp(path, "/raft/snapshot") == 0) {
			snap_recv_handle(gw, req);
		} else if (strcmp(path, "/members") == 0) {
			peer_members_handle(gw, req, conn_get(gw, req));
		} else if (strcmp(path, "/version") == 0) {
			if (m == EVHTTP_REQ_GET)
				reply_version(req);
			else
				http_reply_text(req, 405, "Method Not Allowed\n", "GET");
		} else {
			http_reply_text(req, 404, "404 page not found\n", NULL);
		}
		return;
	}
	if (m == EVHTTP_REQ_OPTIONS) {
		http_reply_text(req, 200, NULL, NULL);
		return;
	}
	if (gw->proxy) {
		/* The v2 proxy forwards everything else, as etcd's does. */
		proxy_handle(gw, req, l);
		return;
	}
	if ((rest = after(path, "/v3/")) || (rest = after(path, "/v3beta/"))) {
		route_v3(gw, req, rest);
		return;
	}
	if (strcmp(path, "/version") == 0 || strcmp(path, "/health") == 0) {
		if (m != EVHTTP_REQ_GET) {
			http_reply_text(req, 405, "Method Not Allowed\n", "GET");
		} else if (path[1] == 'v') {
			reply_version(req);
		} else {
			struct conn *c = conn_get(gw, req);
			if (c)
				health_handle(gw, req, c);
			else
				http_reply_health(req, 0);
		}
		return;
	}
	if (strcmp(path, "/metrics") == 0) {
		struct conn *c = conn_get(gw, req);
		if (c)
			gwm_handle(gw, req, c);
		else
			http_reply_error(req, 8, "etcdserver: too many requests");
		return;
	}
	if (gw->w->cfg->enable_v2 &&
	    (strcmp(path, "/v2/keys") == 0 || (rest = after(path, "/v2/keys/")))) {
		v2_keys_handle(gw, req, conn_get(gw, req), path + 8);
		return;
	}
	if (gw->w->cfg->enable_v2 && strcmp(path, "/new") == 0) {
		v2_new_handle(gw, req, conn_get(gw, req), l);
		return;
	}
	/* /v2 without --enable-v2, /v3alpha and anything else: Go's mux 404. */
	http_reply_text(req, 404, "404 page not found\n", NULL);
}

int http_listen(struct gw *gw, const char *url, int peer, int fd)
{
	struct gw_listener *l = calloc(1, sizeof(*l));
	if (!l) {
		close(fd);
		return -ENOMEM;
	}
	l->gw = gw;
	l->peer = peer;
	l->url = strdup(url);
	l->http = evhttp_new(gw->base);
	if (!l->url || !l->http)
		goto fail;
	evhttp_set_allowed_methods(l->http,
		EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
		EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
		EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	/* Bodies far beyond the gRPC limit cannot be valid requests: evhttp
	 * refuses them (413) before they are buffered. Peers send batches
	 * and snapshot chunks, bounded by the transport's own limits. */
	evhttp_set_max_body_size(l->http, peer ? (ev_ssize_t)PEER_MAX_BODY
		: (ev_ssize_t)(GW_BODY_FACTOR * gw->grpc_max));
	evhttp_set_max_headers_size(l->http, MAX_HEADERS_SIZE);
	evhttp_set_timeout(l->http, GW_IDLE_TIMEOUT_S);
	evhttp_set_gencb(l->http, on_request, l);
	if (strncmp(url, "https:", 6) == 0 && gw_tls_listen(gw, l) < 0) {
		evhttp_free(l->http);
		free(l->url);
		free(l);
		close(fd);
		return -EINVAL;
	}
	/* libevent accepts in a loop until EAGAIN: the socket must not block,
	 * whatever the supervisor made it. */
	if (evutil_make_socket_nonblocking(fd) < 0)
		goto fail;
	l->bound = evhttp_accept_socket_with_handle(l->http, fd);
	if (!l->bound)
		goto fail;
	l->next = gw->listeners;
	gw->listeners = l;
	http_listeners_update(gw);
	return 0;
fail:
	if (l->http)
		evhttp_free(l->http);
	free(l->url);
	free(l);
	close(fd);
	return -ENOMEM;
}

void http_close_all(struct gw *gw)
{
	struct gw_listener *l = gw->listeners;
	while (l) {
		struct gw_listener *next = l->next;
		evhttp_free(l->http);
		free(l->url);
		free(l);
		l = next;
	}
	gw->listeners = NULL;
}
