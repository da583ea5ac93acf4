/*
 * Revisions in and out of RocksDB: the batch of writes in progress (with the
 * key-values it wrote, readable before the commit), point reads, reads of many
 * revisions in revision order, and the write transaction that numbers writes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mvcc_int.h"
#include "v2store.h"

int mvcc_batch_begin(struct mvcc *m)
{
	if (m->in_batch)
		return -EBUSY;
	m->in_batch = 1;
	rocksdb_writebatch_clear(m->wb);
	m->npend = 0;
	m->nchg = 0;
	/* Kept until now: the last batch's changes point into it. */
	arena_clear(&m->pend_arena);
	m->phys_compact = 0;
	return 0;
}

void mvcc_batch_set_applied(struct mvcc *m, uint64_t index)
{
	m->applied = index;
}

int mvcc_batch_commit(struct mvcc *m)
{
	if (!m->in_batch)
		return -EINVAL;
	meta_put(m->wb, m, META_APPLIED, (int64_t)m->applied);
	meta_put(m->wb, m, META_REV, m->rev);
	if (m->v2)
		meta_put(m->wb, m, META_V2INDEX, (int64_t)v2_index(m->v2));
	char *err = NULL;
	rocksdb_write(m->db, m->wo, m->wb, &err);
	rocksdb_writebatch_clear(m->wb);
	m->npend = 0;
	m->in_batch = 0;
	if (err) {
		rocksdb_free(err);
		return -EIO;
	}
	if (m->phys_compact) {
		int64_t rev = m->phys_compact;
		m->phys_compact = 0;
		return mvcc_compact_physical(m, rev);
	}
	return 0;
}

/* Pending writes are appended in revision order: binary search. */
static const struct pending_kv *pending_find(const struct mvcc *m,
					     const struct kirev *r)
{
	size_t lo = 0, hi = m->npend;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct pending_kv *p = &m->pend[mid];
		if (p->main < r->main || (p->main == r->main && p->sub < r->sub))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < m->npend && m->pend[lo].main == r->main &&
	    m->pend[lo].sub == r->sub)
		return &m->pend[lo];
	return NULL;
}

int mvcc_kv_at(struct mvcc *m, const struct kirev *rev, struct arena *a,
	       Mvccpb__KeyValue **ret)
{
	const struct pending_kv *p = m->npend ? pending_find(m, rev) : NULL;
	if (!p) {
		int r = mvcc_kv_rev(m, rev->main, rev->sub, a, ret);
		/* The index names only revisions that are stored. */
		return r == -ENOENT ? -EIO : r;
	}
	Mvccpb__KeyValue *kv = mvccpb__key_value__unpack(&a->pb, p->len, p->data);
	if (!kv)
		return -EIO;
	*ret = kv;
	return 0;
}

/* Below this many, point lookups beat one iterator walking in rev order. */
#define KV_MANY_MIN 32

static int hit_rev_cmp(const void *pa, const void *pb, void *arg)
{
	const struct range_hit *hits = arg;
	const struct kirev *a = &hits[*(const uint32_t *)pa].rev;
	const struct kirev *b = &hits[*(const uint32_t *)pb].rev;
	if (a->main != b->main)
		return a->main < b->main ? -1 : 1;
	return a->sub < b->sub ? -1 : a->sub > b->sub;
}

int mvcc_kv_many(struct mvcc *m, const struct range_hit *hits, size_t n,
		 size_t max_bytes, struct arena *a, Mvccpb__KeyValue **out)
{
	int ret = 0;
	size_t bytes = 0;
	if (n < KV_MANY_MIN) {
		for (size_t i = 0; i < n && ret == 0; i++) {
			ret = mvcc_kv_at(m, &hits[i].rev, a, &out[i]);
			if (ret == 0 && (bytes += out[i]->key.len +
					 out[i]->value.len + 16) > max_bytes)
				ret = -MVCC_ETOOLARGE;
		}
		return ret;
	}
	/*
	 * Revisions of keys in key order are scattered over the store; read
	 * them in revision order instead, so that every block is decoded once
	 * (mostly with Next rather than Seek).
	 */
	uint32_t *order = malloc(n * sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		order[i] = (uint32_t)i;
	qsort_r(order, n, sizeof(*order), hit_rev_cmp, (void *)hits);

	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(m->db, m->ro,
							    m->cf[CF_KEY]);
	for (size_t j = 0; j < n && ret == 0; j++) {
		size_t i = order[j];
		const struct kirev *rev = &hits[i].rev;
		const struct pending_kv *p = m->npend ? pending_find(m, rev) : NULL;
		if (p) {
			out[i] = mvccpb__key_value__unpack(&a->pb, p->len, p->data);
			ret = out[i] ? 0 : -EIO;
			if ((bytes += p->len + 16) > max_bytes)
				ret = -MVCC_ETOOLARGE;
			continue;
		}
		uint8_t k[REVKEY_MAX];
		size_t klen = revkey_put(k, rev);
		int c = -1;
		for (int step = 0; step < 8 && rocksdb_iter_valid(it); step++) {
			size_t cl;
			const char *ck = rocksdb_iter_key(it, &cl);
			c = ki_keycmp((const uint8_t *)ck, cl, k, klen);
			if (c >= 0)
				break;
			rocksdb_iter_next(it);
		}
		if (c != 0) {
			rocksdb_iter_seek(it, (const char *)k, klen);
			size_t cl = 0;
			const char *ck = rocksdb_iter_valid(it)
						 ? rocksdb_iter_key(it, &cl) : NULL;
			if (!ck || ki_keycmp((const uint8_t *)ck, cl, k, klen)) {
				ret = -EIO; /* the index names a missing revision */
				break;
			}
		}
		size_t vlen;
		const char *v = rocksdb_iter_value(it, &vlen);
		if ((bytes += vlen + 16) > max_bytes) {
			ret = -MVCC_ETOOLARGE;
			break;
		}
		out[i] = mvccpb__key_value__unpack(&a->pb, vlen, (const uint8_t *)v);
		if (!out[i])
			ret = -EIO;
	}
	rocksdb_iter_destroy(it);
	free(order);
	return ret;
}

static int hits_push(struct mvcc *m, const struct ki_node *n,
		     const struct kirev *r)
{
	if (m->nhits == m->caphits) {
		size_t cap = m->caphits ? m->caphits * 2 : 64;
		struct range_hit *h = realloc(m->hits, cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		m->hits = h;
		m->caphits = cap;
	}
	m->hits[m->nhits].node = n;
	m->hits[m->nhits].rev = *r;
	m->nhits++;
	return 0;
}

ssize_t mvcc_collect(struct mvcc *m, const struct krange *r, int64_t at)
{
	struct kirev rev;
	m->nhits = 0;
	if (r->kind == RANGE_ONE) {
		const struct ki_node *n = ki_find(m->ki, r->key, r->klen);
		if (n && ki_get(n, at, &rev) == 0 && hits_push(m, n, &rev) < 0)
			return -ENOMEM;
		return (ssize_t)m->nhits;
	}
	for (const struct ki_node *n = ki_seek(m->ki, r->key, r->klen); n;
	     n = ki_next(n)) {
		if (r->kind == RANGE_SPAN &&
		    ki_keycmp(n->key, n->keylen, r->end, r->elen) >= 0)
			break;
		if (ki_get(n, at, &rev) == 0 && hits_push(m, n, &rev) < 0)
			return -ENOMEM;
	}
	return (ssize_t)m->nhits;
}

static int pending_push(struct mvcc *m, const struct kirev *r,
			const uint8_t *data, size_t len)
{
	if (m->npend == m->cappend) {
		size_t cap = m->cappend ? m->cappend * 2 : 256;
		struct pending_kv *p = realloc(m->pend, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		m->pend = p;
		m->cappend = cap;
	}
	struct pending_kv *p = &m->pend[m->npend++];
	p->main = r->main;
	p->sub = r->sub;
	p->len = (uint32_t)len;
	p->data = data;
	return 0;
}

const struct mvcc_change *mvcc_changes(const struct mvcc *m, size_t *ret_n)
{
	*ret_n = m->in_batch ? 0 : m->nchg;
	return m->chg;
}

/* Records a write for the watch hub; key is copied into the batch memory. */
static int change_push(struct mvcc *m, const struct kirev *rev,
		       const uint8_t *key, size_t klen, const uint8_t *kv,
		       size_t kvlen, const struct kirev *prev)
{
	if (m->nchg == m->capchg) {
		size_t cap = m->capchg ? m->capchg * 2 : 256;
		struct mvcc_change *c = realloc(m->chg, cap * sizeof(*c));
		if (!c)
			return -ENOMEM;
		m->chg = c;
		m->capchg = cap;
	}
	struct mvcc_change *c = &m->chg[m->nchg++];
	c->main = rev->main;
	c->sub = rev->sub;
	c->del = rev->tomb;
	c->key = klen ? arena_memdup(&m->pend_arena, key, klen) : NULL;
	c->klen = (uint32_t)klen;
	c->kv = kv;
	c->kvlen = (uint32_t)kvlen;
	c->prev_main = prev ? prev->main : 0;
	c->prev_sub = prev ? prev->sub : 0;
	return 0;
}

void wtxn_begin(struct mvcc *m, struct wtxn *t)
{
	t->begin = m->rev;
	t->changes = 0;
}

void wtxn_end(struct mvcc *m, struct wtxn *t)
{
	if (t->changes > 0)
		m->rev = t->begin + 1;
}

int wtxn_put(struct mvcc *m, struct wtxn *t, const uint8_t *key, size_t klen,
	     const uint8_t *val, size_t vlen, int64_t lease)
{
	struct kirev rev = { t->begin + 1, t->changes, 0 };
	struct ki_node *n;
	int ret = ki_put(m->ki, key, klen, rev.main, rev.sub, &n);
	if (ret < 0)
		return ret;
	/* A put inside a live generation replaces the revision before it. */
	const struct kirev *prev = n->create != rev.main && n->nrevs > 1
					   ? &n->revs[n->nrevs - 2] : NULL;
	if ((ret = lessor_attach(m, n, lease)) < 0)
		return ret;
	if (n->ver == 1)
		m->live_keys++;

	Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT;
	kv.key.data = (uint8_t *)key;
	kv.key.len = klen;
	kv.value.data = (uint8_t *)val;
	kv.value.len = vlen;
	kv.create_revision = n->create;
	kv.mod_revision = rev.main;
	kv.version = n->ver;
	kv.lease = lease;
	size_t len = mvccpb__key_value__get_packed_size(&kv);
	uint8_t *buf = arena_alloc(&m->pend_arena, len);
	mvccpb__key_value__pack(&kv, buf);
	/* Key-values are kept for reads later in this batch. */
	if ((ret = pending_push(m, &rev, buf, len)) < 0 ||
	    (ret = change_push(m, &rev, key, klen, buf, len, prev)) < 0)
		return ret;

	uint8_t k[REVKEY_MAX];
	size_t kl = revkey_put(k, &rev);
	rocksdb_writebatch_put_cf(m->wb, m->cf[CF_KEY], (const char *)k, kl,
				  (const char *)buf, len);
	t->changes++;
	return 0;
}

int wtxn_delete(struct mvcc *m, struct wtxn *t, const struct krange *r,
		int64_t *ret_n)
{
	ssize_t n = mvcc_collect(m, r, wtxn_read_rev(t));
	if (n < 0)
		return (int)n;
	for (ssize_t i = 0; i < n; i++) {
		struct ki_node *node = (struct ki_node *)m->hits[i].node;
		struct kirev rev = { t->begin + 1, t->changes, 1 };
		int ret = ki_tombstone(node, rev.main, rev.sub);
		if (ret < 0)
			return ret;
		m->live_keys--;
		if ((ret = lessor_attach(m, node, 0)) < 0 ||
		    (ret = change_push(m, &rev, node->key, node->keylen, NULL,
				       0, &m->hits[i].rev)) < 0)
			return ret;
		/* etcd stores a tombstone as a key-value with the key alone. */
		Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT;
		kv.key.data = node->key;
		kv.key.len = node->keylen;
		size_t len = mvccpb__key_value__get_packed_size(&kv);
		uint8_t *p = arena_alloc(&m->pend_arena, len);
		mvccpb__key_value__pack(&kv, p);
		uint8_t k[REVKEY_MAX];
		size_t kl = revkey_put(k, &rev);
		rocksdb_writebatch_put_cf(m->wb, m->cf[CF_KEY], (const char *)k,
					  kl, (const char *)p, len);
		t->changes++;
	}
	*ret_n = n;
	return 0;
}

