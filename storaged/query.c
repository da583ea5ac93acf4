/* Answers to gatewayd's reads, and the queue of reads waiting for the apply. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lease.h"
#include "query.h"

static Etcdserverpb__ResponseHeader *header_new(struct arena *a, int64_t rev)
{
	Etcdserverpb__ResponseHeader *h = ARENA_NEW(
		a, Etcdserverpb__ResponseHeader, ETCDSERVERPB__RESPONSE_HEADER__INIT);
	h->revision = rev;
	return h;
}

static int answer_members(const struct query_ctx *c, struct arena *a,
			  Ipc__Result *res)
{
	Etcdserverpb__MemberListResponse *r = ARENA_NEW(
		a, Etcdserverpb__MemberListResponse,
		ETCDSERVERPB__MEMBER_LIST_RESPONSE__INIT);
	/* etcd's member list carries no revision. */
	r->header = header_new(a, 0);
	int err = mvcc_member_list(c->m, a, &r->members, &r->n_members);
	if (err < 0)
		return err;
	for (size_t i = 0; i < r->n_members; i++) {
		Etcdserverpb__Member *mb = r->members[i];
		if (mb->id != c->member_id)
			continue;
		/* Until our publish is applied, our own record lacks what
		 * the configuration says (a lone member shows its client
		 * URLs at once); other members show what they published. */
		if ((!mb->name || !mb->name[0]) && c->name)
			mb->name = (char *)c->name;
		if (mb->n_clienturls == 0) {
			mb->clienturls = c->client_urls;
			mb->n_clienturls = c->n_client_urls;
		}
	}
	res->response_case = IPC__RESULT__RESPONSE_MEMBER_LIST;
	res->member_list = r;
	size_t n;
	const uint64_t *removed = mvcc_members_removed(c->m, &n);
	if (n && !(res->removed_ids = arena_alloc(a, n * sizeof(uint64_t))))
		return -ENOMEM;
	if (n)
		memcpy(res->removed_ids, removed, n * sizeof(uint64_t));
	res->n_removed_ids = n;
	return 0;
}

static int answer_status(const struct query_ctx *c, struct arena *a,
			 Ipc__Result *res)
{
	Etcdserverpb__StatusResponse *r = ARENA_NEW(
		a, Etcdserverpb__StatusResponse, ETCDSERVERPB__STATUS_RESPONSE__INIT);
	r->header = header_new(a, mvcc_rev(c->m));
	int err = mvcc_disk_usage(c->m, &r->dbsize, &r->dbsizeinuse);
	if (err < 0)
		return err;
	r->raftappliedindex = mvcc_applied(c->m);
	res->response_case = IPC__RESULT__RESPONSE_STATUS;
	res->status = r;
	return 0;
}

int query_answer(const struct query_ctx *c, const Ipc__Query *q,
		 struct arena *a, Ipc__Result **ret_res)
{
	Ipc__Result *res = ARENA_NEW(a, Ipc__Result, IPC__RESULT__INIT);
	int err;
	switch (q->query_case) {
	case IPC__QUERY__QUERY_RANGE:
		res->response_case = IPC__RESULT__RESPONSE_RANGE;
		err = mvcc_range(c->m, q->range, a, &res->range);
		break;
	case IPC__QUERY__QUERY_TXN:
		/* gatewayd sends only write-free txns here; mvcc_txn refuses
		 * a write outside a batch anyway. */
		res->response_case = IPC__RESULT__RESPONSE_TXN;
		err = mvcc_txn(c->m, q->txn, a, &res->txn);
		break;
	case IPC__QUERY__QUERY_MEMBER_LIST:
		err = answer_members(c, a, res);
		break;
	case IPC__QUERY__QUERY_STATUS:
		err = answer_status(c, a, res);
		break;
	case IPC__QUERY__QUERY_LEASE_TIME_TO_LIVE:
		res->response_case = IPC__RESULT__RESPONSE_LEASE_TIME_TO_LIVE;
		err = lessor_time_to_live(c->m, q->lease_time_to_live, a,
					  &res->lease_time_to_live);
		break;
	case IPC__QUERY__QUERY_LEASE_LEASES:
		res->response_case = IPC__RESULT__RESPONSE_LEASE_LEASES;
		err = lessor_leases(c->m, a, &res->lease_leases);
		break;
	case IPC__QUERY__QUERY_LEASE_KEEP_ALIVE:
		/* The caller holds keepalives until this member leads. */
		res->response_case = IPC__RESULT__RESPONSE_LEASE_KEEP_ALIVE;
		err = lessor_keep_alive(c->m, q->lease_keep_alive, a,
					&res->lease_keep_alive);
		break;
	default:
		err = -MVCC_EUNSUPPORTED;
		break;
	}
	if (err <= -MVCC_EBASE) {
		uint32_t code;
		const char *msg;
		mvcc_strerror(err, &code, &msg);
		Ipc__Error *e = ARENA_NEW(a, Ipc__Error, IPC__ERROR__INIT);
		e->code = code;
		e->message = (char *)msg;
		res->error = e;
		res->response_case = IPC__RESULT__RESPONSE__NOT_SET;
	} else if (err < 0) {
		return err;
	}
	*ret_res = res;
	return 0;
}

int query_queue_push(struct query_queue *qq, uint64_t id, Ipc__Query *q)
{
	if (qq->n >= QUERY_QUEUE_MAX)
		return -ENOBUFS;
	if (qq->n == qq->cap) {
		size_t cap = qq->cap ? qq->cap * 2 : 64;
		struct query_wait *v = realloc(qq->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		qq->v = v;
		qq->cap = cap;
	}
	qq->v[qq->n].id = id;
	qq->v[qq->n].q = q;
	qq->n++;
	return 0;
}

void query_queue_drain(struct query_queue *qq, uint64_t applied,
		       void (*fn)(uint64_t id, Ipc__Query *q, void *arg),
		       void *arg)
{
	size_t j = 0;
	for (size_t i = 0; i < qq->n; i++) {
		if (qq->v[i].q->min_applied <= applied)
			fn(qq->v[i].id, qq->v[i].q, arg);
		else
			qq->v[j++] = qq->v[i];
	}
	qq->n = j;
}

void query_queue_clear(struct query_queue *qq)
{
	for (size_t i = 0; i < qq->n; i++)
		protobuf_c_message_free_unpacked(&qq->v[i].q->base, NULL);
	free(qq->v);
	qq->v = NULL;
	qq->n = qq->cap = 0;
}
