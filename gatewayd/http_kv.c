/*
 * The JSON API: decode the body (Go's errors), apply the gRPC size limit,
 * validate as etcd's API layer does, then send the request down the write
 * path (a proposal) or the read path (a query, after a read index unless
 * serializable).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "gw.h"
#include "pbjson.h"
#include "raft_internal.pb-c.h"
#include "validate.h"

#define ERR_TOO_MANY_REQUESTS "etcdserver: too many requests"

static size_t varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/*
 * Builds InternalRaftRequest {ID, header{ID}, op}, checks etcd's
 * --max-request-bytes on it and proposes it; p->msg is the op.
 */
void kv_propose(struct gw *gw, struct pending *p)
{
	Etcdserverpb__InternalRaftRequest irr =
		ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	Etcdserverpb__RequestHeader hdr = ETCDSERVERPB__REQUEST_HEADER__INIT;

	hdr.id = p->id;
	irr.header = &hdr;
	irr.id = p->id;
	switch (p->kind) {
	case PK_PUT:
		irr.put = (Etcdserverpb__PutRequest *)p->msg;
		break;
	case PK_DELETE:
		irr.delete_range = (Etcdserverpb__DeleteRangeRequest *)p->msg;
		break;
	case PK_TXN:
		irr.txn = (Etcdserverpb__TxnRequest *)p->msg;
		break;
	case PK_COMPACT:
		irr.compaction = (Etcdserverpb__CompactionRequest *)p->msg;
		break;
	case PK_LEASE_GRANT:
		irr.lease_grant = (Etcdserverpb__LeaseGrantRequest *)p->msg;
		break;
	case PK_LEASE_REVOKE:
		irr.lease_revoke = (Etcdserverpb__LeaseRevokeRequest *)p->msg;
		break;
	default:
		pending_fail(gw, p, 13, "etcdserver: internal error");
		return;
	}
	/* etcd leaves the top-level ID at 0 and measures without it; measure
	 * as etcd does, so the same requests pass. */
	size_t sz = protobuf_c_message_get_packed_size(&irr.base);
	if (sz - 1 - varint_len(p->id) > gw->max_request_bytes) {
		pending_fail(gw, p, 3, "etcdserver: request is too large");
		return;
	}
	gw_propose(gw, p, &irr.base);
}

/* etcd's isRPCSupportedForLearner: status and serializable ranges only
 * (a learner's state may lag; it cannot vouch for the latest). */
static int learner_serves(enum pkind kind, const ProtobufCMessage *m)
{
	return kind == PK_STATUS ||
	       (kind == PK_RANGE &&
		((const Etcdserverpb__RangeRequest *)m)->serializable);
}

static int backlogged(struct gw *gw)
{
	struct link *r = gw->w->peer[PROC_RAFTD], *s = gw->w->peer[PROC_STORAGED];
	return (r && link_queued(r) > GW_MAX_LINK_QUEUE) ||
	       (s && link_queued(s) > GW_MAX_LINK_QUEUE);
}

void kv_handle(struct gw *gw, struct evhttp_request *req, struct conn *c,
	       enum pkind kind, const ProtobufCMessageDescriptor *d)
{
	char err[GOJSON_ERRMAX];
	const char *msg;

	if (gw->pend.n >= GW_MAX_PENDING || backlogged(gw)) {
		http_reply_error(req, 8, ERR_TOO_MANY_REQUESTS);
		return;
	}
	struct pending *p = pending_new(gw, req, c, kind, reqid_next(&gw->ids));
	if (!p) {
		http_reply_error(req, 8, ERR_TOO_MANY_REQUESTS);
		return;
	}

	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
	if (!body) {
		pending_fail(gw, p, 8, ERR_TOO_MANY_REQUESTS);
		return;
	}
	int r = pbjson_decode_body(d, body, len, &p->arena, &p->msg, err);
	if (r < 0) {
		pending_fail(gw, p, 3, err);
		return;
	}
	size_t sz = protobuf_c_message_get_packed_size(p->msg);
	if (sz > gw->grpc_max) {
		snprintf(err, sizeof(err),
			 "grpc: received message larger than max (%zu vs. %llu)",
			 sz, (unsigned long long)gw->grpc_max);
		pending_fail(gw, p, 8, err);
		return;
	}

	if (gw->learner && !learner_serves(kind, p->msg)) {
		pending_fail(gw, p, 14, ERR_LEARNER);
		return;
	}
	r = 0;
	switch (kind) {
	case PK_RANGE: {
		Etcdserverpb__RangeRequest *rr = (Etcdserverpb__RangeRequest *)p->msg;
		if ((r = validate_range(rr, &msg)) == 0)
			gw_read(gw, p, !rr->serializable);
		break;
	}
	case PK_PUT:
		if ((r = validate_put((Etcdserverpb__PutRequest *)p->msg, &msg)) == 0)
			kv_propose(gw, p);
		break;
	case PK_DELETE:
		if ((r = validate_delete((Etcdserverpb__DeleteRangeRequest *)p->msg,
					 &msg)) == 0)
			kv_propose(gw, p);
		break;
	case PK_TXN: {
		/* As etcd: a txn without writes is a read (linearizable
		 * unless every range in it is serializable). */
		Etcdserverpb__TxnRequest *t = (Etcdserverpb__TxnRequest *)p->msg;
		if ((r = validate_txn(t, gw->max_txn_ops, &msg)) != 0)
			break;
		if (txn_is_read_only(t))
			gw_read(gw, p, !txn_is_serializable(t));
		else
			kv_propose(gw, p);
		break;
	}
	case PK_COMPACT:
		kv_propose(gw, p);
		break;
	case PK_STATUS:
	case PK_MEMBER_LIST:
		/* etcd 3.4 answers both from the member's local state. */
		gw_read(gw, p, 0);
		break;
	case PK_LEASE_GRANT:
	case PK_LEASE_REVOKE:
	case PK_LEASE_TTL:
	case PK_LEASE_LEASES:
		lease_handle(gw, p);
		break;
	case PK_MEMBER_ADD:
	case PK_MEMBER_REMOVE:
	case PK_MEMBER_UPDATE:
	case PK_MEMBER_PROMOTE:
		member_handle(gw, p);
		break;
	default:
		pending_fail(gw, p, 13, "etcdserver: internal error");
		break;
	}
	if (r == -EINVAL)
		pending_fail(gw, p, 3, msg);
	else if (r < 0)
		pending_fail(gw, p, 8, ERR_TOO_MANY_REQUESTS);
}

void health_handle(struct gw *gw, struct evhttp_request *req, struct conn *c)
{
	/* No leader, still joining (etcd serves no client before it has
	 * applied its own membership), or too busy to ask: unhealthy
	 * without waiting. */
	if (!gw->leader || !gw->member || gw->pend.n >= GW_MAX_PENDING) {
		http_reply_health(req, 0);
		return;
	}
	struct pending *p = pending_new(gw, req, c, PK_HEALTH,
					reqid_next(&gw->ids));
	if (!p) {
		http_reply_health(req, 0);
		return;
	}
	/* A read-index round, then a query at that index: the member has a
	 * leader that confirms it and a store that keeps up. */
	Etcdserverpb__RangeRequest *rr =
		arena_zalloc(&p->arena, sizeof(*rr));
	if (!rr) {
		pending_fail(gw, p, 14, "");
		return;
	}
	etcdserverpb__range_request__init(rr);
	rr->key.data = (uint8_t *)"health";
	rr->key.len = 6;
	rr->count_only = 1;
	p->msg = &rr->base;
	gw_read(gw, p, 1);
}
