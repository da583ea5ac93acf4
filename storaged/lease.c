/*
 * The lessor's state and its applied writes: leases in the "lease" family
 * and in memory, the keys attached to each, Grant and Revoke as etcd 3.4's
 * lessor and applier do them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lease_int.h"

static int64_t clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int lease_eq(const struct smap_node *n, const void *key)
{
	return smap_entry(n, struct lease, hn)->id == *(const int64_t *)key;
}

struct lease *lessor_find(const struct lessor *ls, int64_t id)
{
	struct smap_node *n = smap_find(&ls->by_id, smap_hash_u64((uint64_t)id),
					lease_eq, &id);
	return n ? smap_entry(n, struct lease, hn) : NULL;
}

int mvcc_lease_exists(struct mvcc *m, int64_t id)
{
	return id == 0 || lessor_find(m->ls, id) != NULL;
}

static void detach(struct lessor *ls, struct ki_node *n)
{
	struct lease *l = lessor_find(ls, n->lease);
	n->lease = 0;
	if (!l)
		return;
	/* The last key takes the place of the one leaving. */
	uint32_t slot = n->lease_slot;
	struct ki_node *last = l->keys[--l->nkeys];
	l->keys[slot] = last;
	last->lease_slot = slot;
}

int lessor_attach(struct mvcc *m, struct ki_node *n, int64_t id)
{
	struct lessor *ls = m->ls;
	if (n->lease == id)
		return 0;
	if (n->lease)
		detach(ls, n);
	struct lease *l = id ? lessor_find(ls, id) : NULL;
	if (!l)
		return 0;
	if (l->nkeys == l->capkeys) {
		uint32_t cap = l->capkeys ? l->capkeys * 2 : 4;
		struct ki_node **k = realloc(l->keys, cap * sizeof(*k));
		if (!k)
			return -ENOMEM;
		l->keys = k;
		l->capkeys = cap;
	}
	n->lease = id;
	n->lease_slot = l->nkeys;
	l->keys[l->nkeys++] = n;
	return 0;
}

static void lease_key(uint8_t out[8], int64_t id)
{
	be64_put(out, (uint64_t)id);
}

static struct lease *lease_new(struct lessor *ls, int64_t id, int64_t ttl)
{
	struct lease *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->id = id;
	l->ttl = ttl;
	if (smap_add(&ls->by_id, &l->hn, smap_hash_u64((uint64_t)id)) < 0) {
		free(l);
		return NULL;
	}
	return l;
}

static void lease_free(struct lessor *ls, struct lease *l)
{
	smap_del(&ls->by_id, &l->hn);
	for (uint32_t i = 0; i < l->nkeys; i++)
		l->keys[i]->lease = 0;
	free(l->keys);
	free(l);
}

static void refresh(const struct lessor *ls, struct lease *l, int64_t now,
		    int64_t extend_ms)
{
	/* A follower's leases never expire: only the leader decides. */
	l->expiry = ls->primary ? now + extend_ms + l->ttl * 1000 : 0;
	l->retry = 0;
}

void lessor_configure(struct mvcc *m, uint32_t election_ms,
		      uint32_t heartbeat_ms, lessor_clock_fn *clock)
{
	struct lessor *ls = m->ls;
	if (!heartbeat_ms)
		heartbeat_ms = 100;
	if (!election_ms)
		election_ms = 1000;
	/* etcd: minTTL = (3 * electionTicks) / 2 heartbeats, rounded up to
	 * whole seconds. */
	int64_t ticks = election_ms / heartbeat_ms;
	int64_t min_ms = (3 * ticks) / 2 * heartbeat_ms;
	ls->min_ttl = (min_ms + 999) / 1000;
	if (ls->min_ttl < 1)
		ls->min_ttl = 1;
	ls->clock = clock ? clock : clock_ms;
}

int64_t lessor_min_ttl(const struct mvcc *m)
{
	return m->ls->min_ttl;
}

static Etcdserverpb__ResponseHeader *header_new(struct arena *a, int64_t rev)
{
	Etcdserverpb__ResponseHeader *h = ARENA_NEW(
		a, Etcdserverpb__ResponseHeader, ETCDSERVERPB__RESPONSE_HEADER__INIT);
	h->revision = rev;
	return h;
}

int lessor_grant(struct mvcc *m, const Etcdserverpb__LeaseGrantRequest *r,
		 struct arena *a, Etcdserverpb__LeaseGrantResponse **ret)
{
	struct lessor *ls = m->ls;
	if (!m->in_batch)
		return -EINVAL;
	/* etcd's lessor.Grant, in its order. */
	if (r->id == 0)
		return -MVCC_ELEASENOTFOUND;
	if (r->ttl > LEASE_MAX_TTL)
		return -MVCC_ETTLTOOLARGE;
	if (lessor_find(ls, r->id))
		return -MVCC_ELEASEEXISTS;
	if (ls->by_id.n >= LEASE_MAX)
		return -MVCC_ETOOMANYLEASES;
	int64_t ttl = r->ttl < ls->min_ttl ? ls->min_ttl : r->ttl;
	struct lease *l = lease_new(ls, r->id, ttl);
	if (!l)
		return -ENOMEM;
	refresh(ls, l, ls->clock(), 0);

	uint8_t k[8], v[8];
	lease_key(k, l->id);
	be64_put(v, (uint64_t)ttl);
	rocksdb_writebatch_put_cf(m->wb, m->cf[CF_LEASE], (const char *)k,
				  sizeof(k), (const char *)v, sizeof(v));
	ls->granted++;

	Etcdserverpb__LeaseGrantResponse *resp = ARENA_NEW(
		a, Etcdserverpb__LeaseGrantResponse,
		ETCDSERVERPB__LEASE_GRANT_RESPONSE__INIT);
	resp->header = header_new(a, m->rev);
	resp->id = l->id;
	resp->ttl = ttl;
	*ret = resp;
	return 0;
}

static int node_key_cmp(const void *pa, const void *pb)
{
	const struct ki_node *a = *(struct ki_node *const *)pa;
	const struct ki_node *b = *(struct ki_node *const *)pb;
	return ki_keycmp(a->key, a->keylen, b->key, b->keylen);
}

int lessor_revoke(struct mvcc *m, const Etcdserverpb__LeaseRevokeRequest *r,
		  struct arena *a, Etcdserverpb__LeaseRevokeResponse **ret)
{
	struct lessor *ls = m->ls;
	if (!m->in_batch)
		return -EINVAL;
	struct lease *l = lessor_find(ls, r->id);
	if (!l)
		return -MVCC_ELEASENOTFOUND;

	/* Deleting detaches, which reorders l->keys: work on a sorted copy.
	 * All the deletes share one write transaction, hence one revision. */
	size_t n = l->nkeys;
	struct ki_node **keys = NULL;
	if (n) {
		keys = arena_alloc(a, n * sizeof(*keys));
		memcpy(keys, l->keys, n * sizeof(*keys));
		qsort(keys, n, sizeof(*keys), node_key_cmp);
	}
	struct wtxn t;
	wtxn_begin(m, &t);
	for (size_t i = 0; i < n; i++) {
		struct krange kr = { keys[i]->key, keys[i]->keylen, NULL, 0,
				     RANGE_ONE };
		int64_t deleted;
		int err = wtxn_delete(m, &t, &kr, &deleted);
		if (err < 0) {
			wtxn_end(m, &t);
			return err;
		}
	}
	wtxn_end(m, &t);

	uint8_t k[8];
	lease_key(k, l->id);
	rocksdb_writebatch_delete_cf(m->wb, m->cf[CF_LEASE], (const char *)k,
				     sizeof(k));
	lease_free(ls, l);
	ls->revoked++;

	Etcdserverpb__LeaseRevokeResponse *resp = ARENA_NEW(
		a, Etcdserverpb__LeaseRevokeResponse,
		ETCDSERVERPB__LEASE_REVOKE_RESPONSE__INIT);
	resp->header = header_new(a, m->rev);
	*ret = resp;
	return 0;
}

/* Reads the "lease" family back. */
static int load_leases(struct mvcc *m)
{
	struct lessor *ls = m->ls;
	int ret = 0;
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(m->db, m->ro,
							    m->cf[CF_LEASE]);
	for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
		const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
		if (klen != 8 || vlen != 8) {
			ret = -EINVAL;
			break;
		}
		if (!lease_new(ls, (int64_t)be64_get(k), (int64_t)be64_get(v))) {
			ret = -ENOMEM;
			break;
		}
	}
	if (ret == 0) {
		char *err = NULL;
		rocksdb_iter_get_error(it, &err);
		if (err) {
			rocksdb_free(err);
			ret = -EIO;
		}
	}
	rocksdb_iter_destroy(it);
	return ret;
}

int lessor_open(struct mvcc *m)
{
	m->ls = calloc(1, sizeof(*m->ls));
	if (!m->ls)
		return -ENOMEM;
	lessor_configure(m, 0, 0, NULL);
	int ret = load_leases(m);
	if (ret < 0)
		return ret;
	/* The index rebuild left each live key's lease in node->lease. */
	for (struct ki_node *n = ki_seek(m->ki, NULL, 0); n; n = ki_next(n)) {
		int64_t id = n->lease;
		if (!id)
			continue;
		n->lease = 0;
		if ((ret = lessor_attach(m, n, id)) < 0)
			return ret;
	}
	return 0;
}

void lessor_free(struct mvcc *m)
{
	struct lessor *ls = m->ls;
	if (!ls)
		return;
	size_t it;
	struct smap_node *n = smap_first(&ls->by_id, &it);
	while (n) {
		struct smap_node *next = smap_next(&ls->by_id, n, &it);
		struct lease *l = smap_entry(n, struct lease, hn);
		free(l->keys);
		free(l);
		n = next;
	}
	smap_clear(&ls->by_id);
	free(ls);
	m->ls = NULL;
}
