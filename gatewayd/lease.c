/*
 * The lease API: grant and revoke are Raft proposals, time-to-live and the
 * lease list are linearizable reads of storaged's lessor, keepalive is a
 * stream of renewals answered by storaged (as etcd's leader renews them,
 * outside Raft).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "pbjson.h"
#include "stream.h"

/* etcd's lease.MaxLeaseTTL. */
#define MAX_LEASE_TTL 9000000000LL
#define ERR_TTL_TOO_LARGE "etcdserver: too large lease TTL"

void lease_handle(struct gw *gw, struct pending *p)
{
	switch (p->kind) {
	case PK_LEASE_GRANT: {
		Etcdserverpb__LeaseGrantRequest *r =
			(Etcdserverpb__LeaseGrantRequest *)p->msg;
		/* etcdserver's LeaseGrant, before anything is proposed. */
		if (r->ttl > MAX_LEASE_TTL) {
			pending_fail(gw, p, 11, ERR_TTL_TOO_LARGE);
			return;
		}
		/* The ID is chosen here, once, so that every member applies
		 * the same: etcd takes its request-ID generator's next value
		 * as a positive int64. */
		if (r->id == 0)
			r->id = (int64_t)(reqid_next(&gw->ids) & INT64_MAX);
		kv_propose(gw, p);
		return;
	}
	case PK_LEASE_REVOKE:
		kv_propose(gw, p);
		return;
	case PK_LEASE_TTL:
	case PK_LEASE_LEASES:
		/* etcd asks the leader's lessor: a read at a read index. */
		gw_read(gw, p, 1);
		return;
	default:
		pending_fail(gw, p, 13, "etcdserver: internal error");
		return;
	}
}

/*
 * POST /v3/lease/keepalive: one renewal per LeaseKeepAliveRequest of the
 * body, answered in order, then the response ends. A first request that
 * does not decode fails the call (500, code 2), a later one ends the
 * reading.
 */
void keepalive_handle(struct gw *gw, struct evhttp_request *req,
		      struct conn *c)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in), off = 0, start, end;
	const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
	const ProtobufCMessageDescriptor *d =
		&etcdserverpb__lease_keep_alive_request__descriptor;
	char err[GOJSON_ERRMAX];
	struct arena a;
	ProtobufCMessage *m = NULL;
	int r;

	if (!body) {
		http_reply_error(req, 8, "etcdserver: too many requests");
		return;
	}
	arena_init(&a, 4 * (gw->grpc_max + 4096));
	r = gojson_decode_first(body, len, &start, &end, err);
	if (r == 0)
		r = pbjson_decode_body(d, body + start, end - start, &a, &m, err);
	if (r < 0) {
		if (r != -EINVAL)
			snprintf(err, sizeof(err), "etcdserver: too many requests");
		http_reply_error(req, 2, err);
		arena_done(&a);
		return;
	}
	struct wstream *ws = stream_new(gw, WS_KEEPALIVE, req, c);
	if (!ws) {
		http_reply_error(req, 8, "etcdserver: too many requests");
		arena_done(&a);
		return;
	}
	ws->grpc_md = m != NULL;
	ws->hold = 1;
	while (m) {
		Etcdserverpb__LeaseKeepAliveRequest *ka =
			(Etcdserverpb__LeaseKeepAliveRequest *)m;
		Ipc__Query q = IPC__QUERY__INIT;
		q.query_case = IPC__QUERY__QUERY_LEASE_KEEP_ALIVE;
		q.lease_keep_alive = ka;
		stream_push_query(ws, &q, WQ_KEEPALIVE, ka->id, NULL);
		m = NULL;
		arena_clear(&a);
		off += end;
		if (gojson_decode_first(body + off, len - off, &start, &end,
					err) != 0 ||
		    pbjson_decode_body(d, body + off + start, end - start, &a,
				       &m, err) < 0)
			m = NULL;
	}
	arena_done(&a);
	ws->hold = 0;
	ws->body_done = 1;
	stream_flush(ws);
}
