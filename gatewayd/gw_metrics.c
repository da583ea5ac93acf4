/*
 * GET /metrics: one round asks the supervisor, raftd and storaged for
 * their metrics (MSG_METRICS), waits up to a second for their answers,
 * adds gatewayd's own and renders them all in Prometheus' text format.
 * Requests that arrive while a round is out share it.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "metrics.h"
#include "peer.h"
#include "stream.h"

#define CTYPE "text/plain; version=0.0.4; charset=utf-8"

static const enum proc_role asked[] = { PROC_SUPERVISOR, PROC_RAFTD,
					PROC_STORAGED };

/* The gRPC method behind each counted request kind. */
static const struct {
	const char *service, *method, *type;
} methods[] = {
	[PK_RANGE] = { "etcdserverpb.KV", "Range", "unary" },
	[PK_PUT] = { "etcdserverpb.KV", "Put", "unary" },
	[PK_DELETE] = { "etcdserverpb.KV", "DeleteRange", "unary" },
	[PK_TXN] = { "etcdserverpb.KV", "Txn", "unary" },
	[PK_COMPACT] = { "etcdserverpb.KV", "Compact", "unary" },
	[PK_MEMBER_LIST] = { "etcdserverpb.Cluster", "MemberList", "unary" },
	[PK_MEMBER_ADD] = { "etcdserverpb.Cluster", "MemberAdd", "unary" },
	[PK_MEMBER_REMOVE] = { "etcdserverpb.Cluster", "MemberRemove", "unary" },
	[PK_MEMBER_UPDATE] = { "etcdserverpb.Cluster", "MemberUpdate", "unary" },
	[PK_MEMBER_PROMOTE] = { "etcdserverpb.Cluster", "MemberPromote", "unary" },
	[PK_STATUS] = { "etcdserverpb.Maintenance", "Status", "unary" },
	[PK_LEASE_GRANT] = { "etcdserverpb.Lease", "LeaseGrant", "unary" },
	[PK_LEASE_REVOKE] = { "etcdserverpb.Lease", "LeaseRevoke", "unary" },
	[PK_LEASE_TTL] = { "etcdserverpb.Lease", "LeaseTimeToLive", "unary" },
	[PK_LEASE_LEASES] = { "etcdserverpb.Lease", "LeaseLeases", "unary" },
	[PK_WATCH] = { "etcdserverpb.Watch", "Watch", "bidi_stream" },
	[PK_KEEPALIVE] = { "etcdserverpb.Lease", "LeaseKeepAlive", "bidi_stream" },
};

static void add_own(struct gw *gw, struct metrics_out *o)
{
	static const char *const labels[] = { "grpc_method", "grpc_service",
					      "grpc_type", NULL };
	metrics_add_process(o, "gatewayd", 0);
	metrics_add(o, METRIC_GAUGE, "etcd_debugging_mvcc_watch_stream_total",
		    "Total number of watch streams.", (double)gw->n_streams,
		    NULL, NULL);
	for (size_t k = 0; k < sizeof(methods) / sizeof(methods[0]); k++) {
		if (!methods[k].method)
			continue;
		const char *values[] = { methods[k].method, methods[k].service,
					 methods[k].type, NULL };
		metrics_add(o, METRIC_COUNTER, "grpc_server_started_total",
			    "Total number of RPCs started on the server.",
			    (double)gw->m_started[k], labels, values);
	}
	pstat_render(gw, o);
}

static void finish_round(struct gw *gw)
{
	const Ipc__Metrics *parts[PROC_MAX + 1];
	struct metrics_out o;
	struct arena a;
	struct pending *p;
	size_t n = 0, len = 0;

	evtimer_del(gw->m_timer);
	arena_init(&a, 0);
	metrics_out_init(&o, &a);
	for (size_t i = 0; i < sizeof(asked) / sizeof(asked[0]); i++)
		if (gw->m_parts[asked[i]])
			parts[n++] = gw->m_parts[asked[i]];
	add_own(gw, &o);
	parts[n++] = &o.msg;
	char *text = metrics_render(parts, n, &len);

	while ((p = TAILQ_FIRST(&gw->m_wait))) {
		if (p->req && text) {
			char *copy = malloc(len ? len : 1);
			if (copy) {
				memcpy(copy, text, len);
				http_reply_body(p->req, 200, CTYPE, copy, len);
			} else {
				http_reply_error(p->req, 8,
						 "etcdserver: too many requests");
			}
			p->req = NULL;
		}
		/* Without text, pending_fail answers 500. */
		if (p->req)
			pending_fail(gw, p, 13, "etcdserver: no metrics");
		else
			pending_free(gw, p);
	}
	free(text);
	arena_done(&a);
	for (int r = 0; r < PROC_MAX; r++) {
		if (gw->m_parts[r])
			protobuf_c_message_free_unpacked(&gw->m_parts[r]->base,
							 NULL);
		gw->m_parts[r] = NULL;
	}
	gw->m_round = 0;
	gw->m_waiting = 0;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	/* Whoever has not answered by now is left out. */
	finish_round(arg);
}

void gwm_handle(struct gw *gw, struct evhttp_request *req, struct conn *c)
{
	struct pending *p = pending_new(gw, req, c, PK_METRICS,
					reqid_next(&gw->ids));
	if (!p) {
		http_reply_error(req, 8, "etcdserver: too many requests");
		return;
	}
	p->in_ri = 3;
	TAILQ_INSERT_TAIL(&gw->m_wait, p, rq);
	if (gw->m_round)
		return;
	if (!gw->m_timer &&
	    !(gw->m_timer = evtimer_new(gw->base, on_timer, gw))) {
		pending_fail(gw, p, 8, "etcdserver: too many requests");
		return;
	}
	gw->m_round = reqid_next(&gw->ids);
	gw->m_waiting = 0;
	for (size_t i = 0; i < sizeof(asked) / sizeof(asked[0]); i++)
		if (worker_send(gw->w, asked[i], MSG_METRICS, gw->m_round,
				NULL, 0) == 0)
			gw->m_waiting |= 1u << asked[i];
	if (!gw->m_waiting) {
		finish_round(gw);
		return;
	}
	struct timeval tv = { GW_METRICS_WAIT_MS / 1000,
			      (GW_METRICS_WAIT_MS % 1000) * 1000 };
	evtimer_add(gw->m_timer, &tv);
}

void gwm_on_resp(struct gw *gw, enum proc_role from, uint64_t id,
		 const uint8_t *body, size_t len)
{
	unsigned bit = 1u << from;
	if (!gw->m_round || id != gw->m_round || !(gw->m_waiting & bit))
		return; /* a late answer to a finished round */
	Ipc__Metrics *m = MSG_UNPACK(Ipc__Metrics, ipc__metrics, body, len);
	if (!m)
		worker_fatal(gw->w, "gatewayd: bad MSG_METRICS_RESP from %s",
			     proc_name(from));
	gw->m_parts[from] = m;
	gw->m_waiting &= ~bit;
	if (!gw->m_waiting)
		finish_round(gw);
}

void gwm_done(struct gw *gw)
{
	if (gw->m_round)
		finish_round(gw);
	if (gw->m_timer)
		event_free(gw->m_timer);
	gw->m_timer = NULL;
}
