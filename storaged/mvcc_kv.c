/*
 * Range, Put, DeleteRange and Compaction as etcd 3.4's applierV3backend and
 * mvcc store do them, with etcd's order of checks and its answers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mvcc_int.h"

static Etcdserverpb__ResponseHeader *header_new(struct arena *a, int64_t rev)
{
	Etcdserverpb__ResponseHeader *h = ARENA_NEW(
		a, Etcdserverpb__ResponseHeader, ETCDSERVERPB__RESPONSE_HEADER__INIT);
	h->revision = rev;
	return h;
}

static int cmp_i64(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

static int cmp_bytes(const ProtobufCBinaryData *a, const ProtobufCBinaryData *b)
{
	return ki_keycmp(a->data, a->len, b->data, b->len);
}

struct sort_by {
	Etcdserverpb__RangeRequest__SortTarget target;
	int desc;
};

/*
 * The sort etcd applies; equal elements keep their key order, as Go's
 * insertion sort keeps them for the small results that have ties.
 */
static int kv_sort_cmp(const void *pa, const void *pb, void *arg)
{
	const struct sort_by *by = arg;
	const Mvccpb__KeyValue *a = *(Mvccpb__KeyValue *const *)pa;
	const Mvccpb__KeyValue *b = *(Mvccpb__KeyValue *const *)pb;
	int sort_desc = by->desc;
	int c = 0;
	switch (by->target) {
	case ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VERSION:
		c = cmp_i64(a->version, b->version);
		break;
	case ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__CREATE:
		c = cmp_i64(a->create_revision, b->create_revision);
		break;
	case ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__MOD:
		c = cmp_i64(a->mod_revision, b->mod_revision);
		break;
	case ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VALUE:
		c = cmp_bytes(&a->value, &b->value);
		break;
	default:
		c = cmp_bytes(&a->key, &b->key);
		return sort_desc ? -c : c;
	}
	if (sort_desc)
		c = -c;
	return c ? c : cmp_bytes(&a->key, &b->key);
}

int mvcc_range_at(struct mvcc *m, const Etcdserverpb__RangeRequest *r,
		  int64_t cur, struct arena *a,
		  Etcdserverpb__RangeResponse **ret)
{
	int filtered = r->min_mod_revision || r->max_mod_revision ||
		       r->min_create_revision || r->max_create_revision;
	int64_t limit = r->limit;
	/* Sorting and filtering need everything; else one extra says "more". */
	if (r->sort_order != ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__NONE ||
	    filtered)
		limit = 0;
	if (limit > 0)
		limit++;

	int64_t rev = r->revision;
	if (rev > cur)
		return -MVCC_EFUTUREREV;
	if (rev <= 0)
		rev = cur;
	if (rev < m->compact_rev)
		return -MVCC_ECOMPACTED;

	struct krange kr = krange_of(r->key, r->range_end);
	ssize_t n = mvcc_collect(m, &kr, rev);
	if (n < 0)
		return (int)n;

	Etcdserverpb__RangeResponse *resp = ARENA_NEW(
		a, Etcdserverpb__RangeResponse, ETCDSERVERPB__RANGE_RESPONSE__INIT);
	resp->header = header_new(a, cur);
	resp->count = n;
	if (n == 0 || r->count_only) {
		*ret = resp;
		return 0;
	}

	size_t nkv = limit <= 0 || limit > n ? (size_t)n : (size_t)limit;
	Mvccpb__KeyValue **kvs = arena_alloc(a, nkv * sizeof(*kvs));
	int err = mvcc_kv_many(m, m->hits, nkv, MVCC_MAX_ANSWER, a, kvs);
	if (err < 0)
		return err;

	if (filtered) {
		size_t j = 0;
		for (size_t i = 0; i < nkv; i++) {
			const Mvccpb__KeyValue *kv = kvs[i];
			if (r->max_mod_revision &&
			    kv->mod_revision > r->max_mod_revision)
				continue;
			if (r->min_mod_revision &&
			    kv->mod_revision < r->min_mod_revision)
				continue;
			if (r->max_create_revision &&
			    kv->create_revision > r->max_create_revision)
				continue;
			if (r->min_create_revision &&
			    kv->create_revision < r->min_create_revision)
				continue;
			kvs[j++] = kvs[i];
		}
		nkv = j;
	}

	Etcdserverpb__RangeRequest__SortOrder order = r->sort_order;
	/* The store returns key order; other targets sort ascending by default. */
	if (r->sort_target != ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY &&
	    order == ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__NONE)
		order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND;
	if (order != ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__NONE && nkv > 1 &&
	    !(order == ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND &&
	      r->sort_target == ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY)) {
		struct sort_by by = {
			r->sort_target,
			order == ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND
		};
		qsort_r(kvs, nkv, sizeof(*kvs), kv_sort_cmp, &by);
	}

	if (r->limit > 0 && nkv > (size_t)r->limit) {
		nkv = (size_t)r->limit;
		resp->more = 1;
	}
	if (r->keys_only)
		for (size_t i = 0; i < nkv; i++) {
			kvs[i]->value.data = NULL;
			kvs[i]->value.len = 0;
		}
	resp->kvs = kvs;
	resp->n_kvs = nkv;
	*ret = resp;
	return 0;
}

int mvcc_range(struct mvcc *m, const Etcdserverpb__RangeRequest *r,
	       struct arena *a, Etcdserverpb__RangeResponse **ret)
{
	return mvcc_range_at(m, r, m->rev, a, ret);
}

/* The live key-value of key as transaction t sees it, or NULL. */
static int get_live(struct mvcc *m, int64_t at, const ProtobufCBinaryData *key,
		    struct arena *a, Mvccpb__KeyValue **ret)
{
	const struct ki_node *n = ki_find(m->ki, key->data, key->len);
	struct kirev rev;
	*ret = NULL;
	if (!n || ki_get(n, at, &rev) < 0)
		return 0;
	return mvcc_kv_at(m, &rev, a, ret);
}

int mvcc_put_in(struct mvcc *m, struct wtxn *t,
		const Etcdserverpb__PutRequest *r, int strict, struct arena *a,
		Etcdserverpb__PutResponse **ret)
{
	Mvccpb__KeyValue *prev = NULL;
	int err;
	if (r->ignore_value || r->ignore_lease || r->prev_kv) {
		err = get_live(m, wtxn_read_rev(t), &r->key, a, &prev);
		if (err < 0)
			return err;
	}
	int ignore_value = r->ignore_value, ignore_lease = r->ignore_lease;
	if ((ignore_value || ignore_lease) && !prev) {
		if (strict)
			return -MVCC_EKEYNOTFOUND;
		/* Only a txn that deleted the key first gets here (the API
		 * refuses those); etcd panics, we write what was given. */
		ignore_value = ignore_lease = 0;
	}

	Etcdserverpb__PutResponse *resp = ARENA_NEW(
		a, Etcdserverpb__PutResponse, ETCDSERVERPB__PUT_RESPONSE__INIT);
	ProtobufCBinaryData val = ignore_value ? prev->value : r->value;
	int64_t lease = ignore_lease ? prev->lease : r->lease;
	if (r->prev_kv)
		resp->prev_kv = prev;
	err = wtxn_put(m, t, r->key.data, r->key.len, val.data, val.len, lease);
	if (err < 0)
		return err;
	resp->header = header_new(a, t->begin + 1);
	*ret = resp;
	return 0;
}

int mvcc_put(struct mvcc *m, const Etcdserverpb__PutRequest *r,
	     struct arena *a, Etcdserverpb__PutResponse **ret)
{
	if (!m->in_batch)
		return -EINVAL;
	if (!mvcc_lease_exists(m, r->lease))
		return -MVCC_ELEASENOTFOUND;
	struct wtxn t;
	wtxn_begin(m, &t);
	int err = mvcc_put_in(m, &t, r, 1, a, ret);
	wtxn_end(m, &t);
	return err;
}

int mvcc_delete_in(struct mvcc *m, struct wtxn *t,
		   const Etcdserverpb__DeleteRangeRequest *r, struct arena *a,
		   Etcdserverpb__DeleteRangeResponse **ret)
{
	struct krange kr = krange_of(r->key, r->range_end);
	Etcdserverpb__DeleteRangeResponse *resp = ARENA_NEW(
		a, Etcdserverpb__DeleteRangeResponse,
		ETCDSERVERPB__DELETE_RANGE_RESPONSE__INIT);
	int err;

	if (r->prev_kv) {
		ssize_t n = mvcc_collect(m, &kr, wtxn_read_rev(t));
		if (n < 0)
			return (int)n;
		if (n > 0) {
			resp->prev_kvs = arena_alloc(a, (size_t)n *
							 sizeof(*resp->prev_kvs));
			err = mvcc_kv_many(m, m->hits, (size_t)n,
					   MVCC_MAX_ANSWER, a, resp->prev_kvs);
			if (err < 0)
				return err;
			resp->n_prev_kvs = (size_t)n;
		}
	}
	if ((err = wtxn_delete(m, t, &kr, &resp->deleted)) < 0)
		return err;
	resp->header = header_new(a, t->begin + (t->changes > 0));
	*ret = resp;
	return 0;
}

int mvcc_delete_range(struct mvcc *m, const Etcdserverpb__DeleteRangeRequest *r,
		      struct arena *a, Etcdserverpb__DeleteRangeResponse **ret)
{
	if (!m->in_batch)
		return -EINVAL;
	struct wtxn t;
	wtxn_begin(m, &t);
	int err = mvcc_delete_in(m, &t, r, a, ret);
	wtxn_end(m, &t);
	return err;
}

int mvcc_compact(struct mvcc *m, const Etcdserverpb__CompactionRequest *r,
		 struct arena *a, Etcdserverpb__CompactionResponse **ret)
{
	if (!m->in_batch)
		return -EINVAL;
	if (r->revision <= m->compact_rev)
		return -MVCC_ECOMPACTED;
	if (r->revision > m->rev)
		return -MVCC_EFUTUREREV;
	int err = mvcc_compact_index(m, r->revision);
	if (err < 0)
		return err;
	m->compact_rev = r->revision;
	/* Recorded with the batch: a crash before the physical removal
	 * finishes is redone at the next open. */
	meta_put(m->wb, m, META_SCHEDULED, r->revision);
	m->phys_compact = r->revision;

	Etcdserverpb__CompactionResponse *resp = ARENA_NEW(
		a, Etcdserverpb__CompactionResponse,
		ETCDSERVERPB__COMPACTION_RESPONSE__INIT);
	resp->header = header_new(a, m->rev);
	*ret = resp;
	return 0;
}
