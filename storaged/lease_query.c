/*
 * The lessor seen from clients and from the leader's clock: time to live,
 * the lease list, keepalive (renewal on the primary, without Raft, as etcd's
 * leader does), promotion and demotion, and the search for expired leases.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lease_int.h"

static Etcdserverpb__ResponseHeader *header_new(struct arena *a, int64_t rev)
{
	Etcdserverpb__ResponseHeader *h = ARENA_NEW(
		a, Etcdserverpb__ResponseHeader, ETCDSERVERPB__RESPONSE_HEADER__INIT);
	h->revision = rev;
	return h;
}

static int bin_cmp(const void *pa, const void *pb)
{
	const ProtobufCBinaryData *a = pa, *b = pb;
	return ki_keycmp(a->data, a->len, b->data, b->len);
}

/* etcd's Lease.Remaining() in whole seconds, truncated as Go converts it. */
static int64_t remaining_s(const struct lessor *ls, const struct lease *l)
{
	if (!l->expiry)
		return l->ttl;
	int64_t ms = l->expiry - ls->clock();
	return ms / 1000;
}

int lessor_time_to_live(struct mvcc *m,
			const Etcdserverpb__LeaseTimeToLiveRequest *r,
			struct arena *a,
			Etcdserverpb__LeaseTimeToLiveResponse **ret)
{
	Etcdserverpb__LeaseTimeToLiveResponse *resp = ARENA_NEW(
		a, Etcdserverpb__LeaseTimeToLiveResponse,
		ETCDSERVERPB__LEASE_TIME_TO_LIVE_RESPONSE__INIT);
	resp->header = header_new(a, m->rev);
	resp->id = r->id;
	const struct lease *l = lessor_find(m->ls, r->id);
	if (!l) {
		resp->ttl = -1;
		*ret = resp;
		return 0;
	}
	resp->ttl = remaining_s(m->ls, l);
	resp->grantedttl = l->ttl;
	if (r->keys && l->nkeys) {
		/* etcd's order is a Go map's; ours is sorted. */
		resp->keys = arena_alloc(a, l->nkeys * sizeof(*resp->keys));
		for (uint32_t i = 0; i < l->nkeys; i++) {
			resp->keys[i].data = arena_memdup(a, l->keys[i]->key,
							  l->keys[i]->keylen);
			resp->keys[i].len = l->keys[i]->keylen;
		}
		resp->n_keys = l->nkeys;
		qsort(resp->keys, resp->n_keys, sizeof(*resp->keys), bin_cmp);
	}
	*ret = resp;
	return 0;
}

static int status_cmp(const void *pa, const void *pb)
{
	const Etcdserverpb__LeaseStatus *a = *(Etcdserverpb__LeaseStatus *const *)pa;
	const Etcdserverpb__LeaseStatus *b = *(Etcdserverpb__LeaseStatus *const *)pb;
	return a->id < b->id ? -1 : a->id > b->id;
}

int lessor_leases(struct mvcc *m, struct arena *a,
		  Etcdserverpb__LeaseLeasesResponse **ret)
{
	const struct lessor *ls = m->ls;
	Etcdserverpb__LeaseLeasesResponse *resp = ARENA_NEW(
		a, Etcdserverpb__LeaseLeasesResponse,
		ETCDSERVERPB__LEASE_LEASES_RESPONSE__INIT);
	resp->header = header_new(a, m->rev);
	if (ls->by_id.n) {
		resp->leases = arena_alloc(a, ls->by_id.n * sizeof(*resp->leases));
		Etcdserverpb__LeaseStatus *st = arena_alloc(
			a, ls->by_id.n * sizeof(*st));
		size_t it, i = 0;
		for (struct smap_node *n = smap_first(&ls->by_id, &it); n;
		     n = smap_next(&ls->by_id, n, &it), i++) {
			etcdserverpb__lease_status__init(&st[i]);
			st[i].id = smap_entry(n, struct lease, hn)->id;
			resp->leases[i] = &st[i];
		}
		resp->n_leases = i;
		qsort(resp->leases, i, sizeof(*resp->leases), status_cmp);
	}
	*ret = resp;
	return 0;
}

int lessor_keep_alive(struct mvcc *m,
		      const Etcdserverpb__LeaseKeepAliveRequest *r,
		      struct arena *a,
		      Etcdserverpb__LeaseKeepAliveResponse **ret)
{
	struct lessor *ls = m->ls;
	if (!ls->primary)
		return -EAGAIN;
	Etcdserverpb__LeaseKeepAliveResponse *resp = ARENA_NEW(
		a, Etcdserverpb__LeaseKeepAliveResponse,
		ETCDSERVERPB__LEASE_KEEP_ALIVE_RESPONSE__INIT);
	resp->header = header_new(a, m->rev);
	resp->id = r->id;
	struct lease *l = lessor_find(ls, r->id);
	int64_t now = ls->clock();
	/* An expired lease is on its way out (etcd waits for the revoke and
	 * then answers "not found", which is what we answer at once). */
	if (l && l->expiry > now) {
		l->expiry = now + l->ttl * 1000;
		l->retry = 0;
		resp->ttl = l->ttl;
		ls->renewed++;
	}
	*ret = resp;
	return 0;
}

void lessor_promote(struct mvcc *m, int64_t extend_ms)
{
	struct lessor *ls = m->ls;
	int64_t now = ls->clock();
	ls->primary = 1;
	size_t it;
	for (struct smap_node *n = smap_first(&ls->by_id, &it); n;
	     n = smap_next(&ls->by_id, n, &it)) {
		struct lease *l = smap_entry(n, struct lease, hn);
		l->expiry = now + extend_ms + l->ttl * 1000;
		l->retry = 0;
	}
}

void lessor_demote(struct mvcc *m)
{
	struct lessor *ls = m->ls;
	ls->primary = 0;
	size_t it;
	for (struct smap_node *n = smap_first(&ls->by_id, &it); n;
	     n = smap_next(&ls->by_id, n, &it))
		smap_entry(n, struct lease, hn)->expiry = 0;
}

int lessor_primary(const struct mvcc *m)
{
	return m->ls->primary;
}

size_t lessor_expired(struct mvcc *m, int64_t *ids, size_t max)
{
	struct lessor *ls = m->ls;
	if (!ls->primary)
		return 0;
	/* A scan every 500 ms: leases are few next to keys, and a heap
	 * would cost on every keepalive instead. */
	int64_t now = ls->clock();
	size_t k = 0, it;
	for (struct smap_node *n = smap_first(&ls->by_id, &it); n && k < max;
	     n = smap_next(&ls->by_id, n, &it)) {
		struct lease *l = smap_entry(n, struct lease, hn);
		if (!l->expiry || l->expiry > now || l->retry > now)
			continue;
		l->retry = now + LEASE_RETRY_MS;
		ids[k++] = l->id;
	}
	return k;
}

void lessor_stats(const struct mvcc *m, struct lessor_stats *ret)
{
	const struct lessor *ls = m->ls;
	ret->leases = ls->by_id.n;
	ret->granted = ls->granted;
	ret->revoked = ls->revoked;
	ret->renewed = ls->renewed;
}
