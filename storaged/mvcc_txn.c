/*
 * Txn as etcd 3.4's applierV3backend.Txn does it: every compare (nested ones
 * too) is evaluated first against the store before the txn, giving the path
 * of branches taken; the ops on that path are checked; then they run in one
 * write transaction, so all writes share one revision.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mvcc_int.h"

typedef Etcdserverpb__RequestOp RequestOp;
typedef Etcdserverpb__TxnRequest TxnRequest;
typedef Etcdserverpb__TxnResponse TxnResponse;

/* Nested txns a path may hold: each level costs at least one op. */
#define TXN_MAX_PATH 4096

struct txn_path {
	uint8_t *taken; /* per txn on the path, in order: success branch? */
	size_t n, cap;
};

static int txn_is_write(const TxnRequest *t)
{
	for (int b = 0; b < 2; b++) {
		RequestOp **ops = b ? t->failure : t->success;
		size_t n = b ? t->n_failure : t->n_success;
		for (size_t i = 0; i < n; i++)
			switch (ops[i]->request_case) {
			case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
			case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
				return 1;
			case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
				if (txn_is_write(ops[i]->request_txn))
					return 1;
				break;
			default:
				break;
			}
	}
	return 0;
}

static int compare_kv(const Etcdserverpb__Compare *c, int64_t version,
		      int64_t create, int64_t mod, int64_t lease,
		      const ProtobufCBinaryData *value)
{
	int result = 0;
	int64_t want = 0;
	switch (c->target) {
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE: {
		ProtobufCBinaryData v = { 0, NULL };
		if (c->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE)
			v = c->value;
		result = ki_keycmp(value->data, value->len, v.data, v.len);
		break;
	}
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE:
		if (c->target_union_case ==
		    ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION)
			want = c->create_revision;
		result = create < want ? -1 : create > want;
		break;
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD:
		if (c->target_union_case ==
		    ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION)
			want = c->mod_revision;
		result = mod < want ? -1 : mod > want;
		break;
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION:
		if (c->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION)
			want = c->version;
		result = version < want ? -1 : version > want;
		break;
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__LEASE:
		if (c->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE)
			want = c->lease;
		result = lease < want ? -1 : lease > want;
		break;
	default:
		break;
	}
	switch (c->result) {
	case ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL:
		return result == 0;
	case ETCDSERVERPB__COMPARE__COMPARE_RESULT__NOT_EQUAL:
		return result != 0;
	case ETCDSERVERPB__COMPARE__COMPARE_RESULT__GREATER:
		return result > 0;
	case ETCDSERVERPB__COMPARE__COMPARE_RESULT__LESS:
		return result < 0;
	default:
		return 1;
	}
}

/*
 * One compare against the store at its current revision: it must hold for
 * every key of its range; a missing key compares as zeros, except on VALUE,
 * which always fails then. Version, create and mod revisions come from the
 * key index; value and lease need the stored key-value.
 */
static int apply_compare(struct mvcc *m, const Etcdserverpb__Compare *c,
			 struct arena *a, int *ret_ok)
{
	struct krange kr = krange_of(c->key, c->range_end);
	ssize_t n = mvcc_collect(m, &kr, m->rev);
	static const ProtobufCBinaryData empty = { 0, NULL };
	if (n < 0)
		return (int)n;
	if (n == 0) {
		*ret_ok = c->target != ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE &&
			  compare_kv(c, 0, 0, 0, 0, &empty);
		return 0;
	}
	int need_kv = c->target == ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE ||
		      c->target == ETCDSERVERPB__COMPARE__COMPARE_TARGET__LEASE;
	for (ssize_t i = 0; i < n; i++) {
		const struct range_hit *h = &m->hits[i];
		int ok;
		if (need_kv) {
			Mvccpb__KeyValue *kv;
			int err = mvcc_kv_at(m, &h->rev, a, &kv);
			if (err < 0)
				return err;
			ok = compare_kv(c, kv->version, kv->create_revision,
					kv->mod_revision, kv->lease, &kv->value);
		} else {
			/* At the current revision the hit is the live generation. */
			ok = compare_kv(c, h->node->ver, h->node->create,
					h->rev.main, 0, &empty);
		}
		if (!ok) {
			*ret_ok = 0;
			return 0;
		}
	}
	*ret_ok = 1;
	return 0;
}

static int path_push(struct txn_path *p, int taken)
{
	if (p->n == p->cap) {
		if (p->cap >= TXN_MAX_PATH)
			return -E2BIG;
		size_t cap = p->cap ? p->cap * 2 : 8;
		uint8_t *t = realloc(p->taken, cap);
		if (!t)
			return -ENOMEM;
		p->taken = t;
		p->cap = cap;
	}
	p->taken[p->n++] = (uint8_t)taken;
	return 0;
}

/* etcd's compareToPath: the branch of every txn on the path, depth first. */
static int compare_to_path(struct mvcc *m, const TxnRequest *t,
			   struct arena *a, struct txn_path *p)
{
	int ok = 1, err;
	for (size_t i = 0; i < t->n_compare && ok; i++)
		if ((err = apply_compare(m, t->compare[i], a, &ok)) < 0)
			return err;
	if ((err = path_push(p, ok)) < 0)
		return err;
	RequestOp **ops = ok ? t->success : t->failure;
	size_t n = ok ? t->n_success : t->n_failure;
	for (size_t i = 0; i < n; i++)
		if (ops[i]->request_case ==
			    ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN &&
		    (err = compare_to_path(m, ops[i]->request_txn, a, p)) < 0)
			return err;
	return 0;
}

/* etcd's checkRequests: puts and ranges on the path would succeed. */
static int check_path(struct mvcc *m, const TxnRequest *t,
		      const struct txn_path *p, size_t *pos, int is_write)
{
	int taken = p->taken[(*pos)++];
	RequestOp **ops = taken ? t->success : t->failure;
	size_t n = taken ? t->n_success : t->n_failure;
	for (size_t i = 0; i < n; i++) {
		const RequestOp *op = ops[i];
		int err;
		switch (op->request_case) {
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT: {
			const Etcdserverpb__PutRequest *r = op->request_put;
			if (!is_write)
				break;
			if (r->ignore_value || r->ignore_lease) {
				const struct ki_node *nd =
					ki_find(m->ki, r->key.data, r->key.len);
				struct kirev rev;
				if (!nd || ki_get(nd, m->rev, &rev) < 0)
					return -MVCC_EKEYNOTFOUND;
			}
			if (!mvcc_lease_exists(m, r->lease))
				return -MVCC_ELEASENOTFOUND;
			break;
		}
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE: {
			int64_t rev = op->request_range->revision;
			if (rev == 0)
				break;
			if (rev > m->rev)
				return -MVCC_EFUTUREREV;
			if (rev < m->compact_rev)
				return -MVCC_ECOMPACTED;
			break;
		}
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
			if ((err = check_path(m, op->request_txn, p, pos,
					      is_write)) < 0)
				return err;
			break;
		case ETCDSERVERPB__REQUEST_OP__REQUEST__NOT_SET:
			/* The API layer refuses an empty op as etcd's does. */
			return -MVCC_EKEYNOTFOUND;
		default:
			break;
		}
	}
	return 0;
}

static TxnResponse *txn_resp_new(struct arena *a)
{
	TxnResponse *resp = ARENA_NEW(a, TxnResponse,
				      ETCDSERVERPB__TXN_RESPONSE__INIT);
	/* Nested txns answer with an empty header, as etcd does. */
	resp->header = ARENA_NEW(a, Etcdserverpb__ResponseHeader,
				 ETCDSERVERPB__RESPONSE_HEADER__INIT);
	return resp;
}

static int apply_ops(struct mvcc *m, struct wtxn *t, int64_t read_only_rev,
		     const TxnRequest *tr, const struct txn_path *p,
		     size_t *pos, struct arena *a, TxnResponse *resp)
{
	int taken = p->taken[(*pos)++];
	RequestOp **ops = taken ? tr->success : tr->failure;
	size_t n = taken ? tr->n_success : tr->n_failure;
	resp->succeeded = taken;
	resp->n_responses = n;
	resp->responses = n ? arena_alloc(a, n * sizeof(*resp->responses)) : NULL;
	for (size_t i = 0; i < n; i++) {
		const RequestOp *op = ops[i];
		Etcdserverpb__ResponseOp *ro = ARENA_NEW(
			a, Etcdserverpb__ResponseOp,
			ETCDSERVERPB__RESPONSE_OP__INIT);
		resp->responses[i] = ro;
		int err = 0;
		switch (op->request_case) {
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
			ro->response_case =
				ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE;
			err = mvcc_range_at(m, op->request_range,
					    t ? wtxn_read_rev(t) : read_only_rev,
					    a, &ro->response_range);
			break;
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
			ro->response_case =
				ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT;
			err = mvcc_put_in(m, t, op->request_put, 0, a,
					  &ro->response_put);
			break;
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
			ro->response_case =
				ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE;
			err = mvcc_delete_in(m, t, op->request_delete_range, a,
					     &ro->response_delete_range);
			break;
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
			ro->response_case =
				ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN;
			ro->response_txn = txn_resp_new(a);
			err = apply_ops(m, t, read_only_rev, op->request_txn, p,
					pos, a, ro->response_txn);
			break;
		default:
			break;
		}
		if (err < 0)
			return err;
	}
	return 0;
}

int mvcc_txn(struct mvcc *m, const TxnRequest *r, struct arena *a,
	     TxnResponse **ret)
{
	struct txn_path p = { 0 };
	int is_write = txn_is_write(r);
	int err;
	size_t pos;

	if (is_write && !m->in_batch)
		return -EINVAL;
	if ((err = compare_to_path(m, r, a, &p)) < 0)
		goto out;
	pos = 0;
	if ((err = check_path(m, r, &p, &pos, is_write)) < 0)
		goto out;

	TxnResponse *resp = txn_resp_new(a);
	struct wtxn t;
	wtxn_begin(m, &t);
	pos = 0;
	err = apply_ops(m, is_write ? &t : NULL, m->rev, r, &p, &pos, a, resp);
	/*
	 * The checks above leave nothing to fail here but memory and I/O,
	 * after which the caller stops the process: the index may be half
	 * written.
	 */
	wtxn_end(m, &t);
	if (err < 0)
		goto out;
	resp->header->revision = m->rev;
	*ret = resp;
out:
	free(p.taken);
	return err;
}
