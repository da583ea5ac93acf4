/*
 * The lessor: grant (etcd's TTL rules and errors, no new revision), put with
 * a lease (must exist; attaching moves a key; ignore_lease keeps it; delete
 * detaches), revoke (every key deleted in one revision, in key order),
 * time to live, the lease list, keepalive, expiry only while primary,
 * promotion that extends, and the key sets rebuilt after a restart.
 */
#include <errno.h>

#include "lease.h"
#include "mvcc_helpers.h"

static int64_t now_ms = 1000000;

static int64_t fake_clock(void)
{
	return now_ms;
}

static void configure(void)
{
	lessor_configure(m, 1000, 100, fake_clock);
}

static Ipc__Result *grant(int64_t id, int64_t ttl)
{
	Etcdserverpb__LeaseGrantRequest g = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
	g.id = id;
	g.ttl = ttl;
	Etcdserverpb__InternalRaftRequest r = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	r.lease_grant = &g;
	return apply_req(&r);
}

static Ipc__Result *lrevoke(int64_t id)
{
	Etcdserverpb__LeaseRevokeRequest v = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
	v.id = id;
	Etcdserverpb__InternalRaftRequest r = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	r.lease_revoke = &v;
	return apply_req(&r);
}

static Ipc__Result *put_lease(const char *k, const char *v, int64_t lease,
			      int ignore_lease)
{
	Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
	p.key = B(k);
	p.value = B(v);
	p.lease = lease;
	p.ignore_lease = ignore_lease;
	return put_full(&p);
}

static Etcdserverpb__LeaseTimeToLiveResponse *ttl_of(int64_t id)
{
	Etcdserverpb__LeaseTimeToLiveRequest q =
		ETCDSERVERPB__LEASE_TIME_TO_LIVE_REQUEST__INIT;
	q.id = id;
	q.keys = 1;
	Etcdserverpb__LeaseTimeToLiveResponse *r = NULL;
	CHECK(lessor_time_to_live(m, &q, &a, &r) == 0);
	return r;
}

static Etcdserverpb__LeaseKeepAliveResponse *keepalive(int64_t id, int *ret)
{
	Etcdserverpb__LeaseKeepAliveRequest q =
		ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
	q.id = id;
	Etcdserverpb__LeaseKeepAliveResponse *r = NULL;
	*ret = lessor_keep_alive(m, &q, &a, &r);
	return r;
}

static void test_grant(void)
{
	store_new();
	configure();
	CHECK_EQ(lessor_min_ttl(m), 2);
	/* etcd: ceil(1.5 election timeouts) in whole seconds, in ticks. */
	lessor_configure(m, 5000, 300, fake_clock); /* 16 ticks: 24 * 300 ms */
	CHECK_EQ(lessor_min_ttl(m), 8);
	configure();

	Ipc__Result *res = grant(77, 10);
	CHECK(res && !res->error && res->lease_grant);
	CHECK_EQ(res->lease_grant->id, 77);
	CHECK_EQ(res->lease_grant->ttl, 10);
	/* No new revision. */
	CHECK_EQ(res->lease_grant->header->revision, 1);
	CHECK_EQ(mvcc_rev(m), 1);

	/* Below the minimum: raised; negative IDs are IDs. */
	res = grant(-3, 1);
	CHECK(res && !res->error);
	CHECK_EQ(res->lease_grant->ttl, 2);
	res = grant(5, -5);
	CHECK_EQ(res->lease_grant->ttl, 2);

	check_err(grant(77, 10), 9, "etcdserver: lease already exists");
	check_err(grant(78, 9000000001ll), 11, "etcdserver: too large lease TTL");
	check_err(grant(0, 10), 5, "etcdserver: requested lease not found");

	Etcdserverpb__LeaseLeasesResponse *ls = NULL;
	CHECK(lessor_leases(m, &a, &ls) == 0);
	CHECK_EQ(ls->n_leases, 3);
	CHECK_EQ(ls->leases[0]->id, -3);
	CHECK_EQ(ls->leases[1]->id, 5);
	CHECK_EQ(ls->leases[2]->id, 77);

	/* Not leader yet: time to live shows the full TTL. */
	Etcdserverpb__LeaseTimeToLiveResponse *t = ttl_of(77);
	CHECK_EQ(t->id, 77);
	CHECK_EQ(t->ttl, 10);
	CHECK_EQ(t->grantedttl, 10);
	CHECK_EQ(t->n_keys, 0);
	t = ttl_of(404);
	CHECK_EQ(t->id, 404);
	CHECK_EQ(t->ttl, -1);

	struct lessor_stats st;
	lessor_stats(m, &st);
	CHECK_EQ(st.leases, 3);
	CHECK_EQ(st.granted, 3);
	store_destroy();
}

static void test_keys(void)
{
	store_new();
	configure();
	CHECK(!grant(1, 10)->error);
	CHECK(!grant(2, 10)->error);

	check_err(put_lease("a", "x", 99, 0), 5,
		  "etcdserver: requested lease not found");
	CHECK_EQ(mvcc_rev(m), 1);
	CHECK(!put_lease("c", "1", 1, 0)->error);  /* rev 2 */
	CHECK(!put_lease("a", "1", 1, 0)->error);  /* rev 3 */
	CHECK(!put_lease("b", "1", 1, 0)->error);  /* rev 4 */
	CHECK(!put_lease("d", "1", 2, 0)->error);  /* rev 5 */
	Etcdserverpb__LeaseTimeToLiveResponse *t = ttl_of(1);
	CHECK_EQ(t->n_keys, 3);
	CHECK_STR(t->keys[0], "a");
	CHECK_STR(t->keys[1], "b");
	CHECK_STR(t->keys[2], "c");

	/* Moving b to lease 2; ignore_lease keeps c's; d back to none. */
	CHECK(!put_lease("b", "2", 2, 0)->error);  /* rev 6 */
	CHECK(!put_lease("c", "2", 0, 1)->error);  /* rev 7 */
	CHECK(!put_lease("d", "2", 0, 0)->error);  /* rev 8 */
	Etcdserverpb__RangeResponse *rr = range("c", NULL);
	CHECK_EQ(rr->kvs[0]->lease, 1);
	t = ttl_of(1);
	CHECK_EQ(t->n_keys, 2);
	CHECK_STR(t->keys[0], "a");
	CHECK_STR(t->keys[1], "c");
	t = ttl_of(2);
	CHECK_EQ(t->n_keys, 1);
	CHECK_STR(t->keys[0], "b");

	/* A delete detaches: revoking 2 then deletes nothing. */
	del("b", NULL);                             /* rev 9 */
	CHECK_EQ(ttl_of(2)->n_keys, 0);
	Ipc__Result *res = lrevoke(2);
	CHECK(res && !res->error && res->lease_revoke);
	CHECK_EQ(res->lease_revoke->header->revision, 9);
	CHECK_EQ(mvcc_rev(m), 9);

	/* A txn's put checks the lease too. */
	Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
	p.key = B("e");
	p.lease = 2;
	Etcdserverpb__RequestOp op = ETCDSERVERPB__REQUEST_OP__INIT;
	op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	op.request_put = &p;
	Etcdserverpb__RequestOp *ops[1] = { &op };
	Etcdserverpb__TxnRequest tr = ETCDSERVERPB__TXN_REQUEST__INIT;
	tr.success = ops;
	tr.n_success = 1;
	check_err(txn(&tr), 5, "etcdserver: requested lease not found");

	/* Revoke of 1: a and c go in one revision, in key order. */
	res = lrevoke(1);
	CHECK(res && !res->error);
	CHECK_EQ(res->lease_revoke->header->revision, 10);
	size_t n;
	const struct mvcc_change *c = mvcc_changes(m, &n);
	CHECK_EQ(n, 2);
	CHECK(c[0].del && c[1].del);
	CHECK_EQ(c[0].main, 10);
	CHECK_EQ(c[1].main, 10);
	CHECK_EQ(c[0].sub, 0);
	CHECK_EQ(c[1].sub, 1);
	CHECK(c[0].klen == 1 && c[0].key[0] == 'a');
	CHECK(c[1].klen == 1 && c[1].key[0] == 'c');
	CHECK_EQ(range("a", "z")->count, 1); /* d */
	check_err(lrevoke(1), 5, "etcdserver: requested lease not found");
	CHECK_EQ(ttl_of(1)->ttl, -1);
	struct lessor_stats st;
	lessor_stats(m, &st);
	CHECK_EQ(st.revoked, 2);
	CHECK_EQ(st.leases, 0);
	store_destroy();
}

static void test_expiry(void)
{
	int64_t ids[8];
	int err;
	store_new();
	configure();
	/* A follower's leases never expire here. */
	CHECK(!grant(1, 5)->error);
	now_ms += 60000;
	CHECK_EQ(lessor_expired(m, ids, 8), 0);
	CHECK(keepalive(1, &err) == NULL && err == -EAGAIN);

	/* Promotion: TTL + the election timeout from now. */
	lessor_promote(m, 1000);
	CHECK(lessor_primary(m));
	CHECK_EQ(ttl_of(1)->ttl, 6);
	now_ms += 5999;
	CHECK_EQ(lessor_expired(m, ids, 8), 0);
	CHECK_EQ(ttl_of(1)->ttl, 0);

	/* Keepalive renews to now + TTL. */
	Etcdserverpb__LeaseKeepAliveResponse *k = keepalive(1, &err);
	CHECK(err == 0 && k);
	CHECK_EQ(k->id, 1);
	CHECK_EQ(k->ttl, 5);
	CHECK_EQ(ttl_of(1)->ttl, 5);
	k = keepalive(42, &err);
	CHECK(err == 0 && k->id == 42 && k->ttl == 0);

	/* A lease granted by the leader expires TTL from now. */
	CHECK(!grant(2, 3)->error);
	now_ms += 3000;
	CHECK_EQ(lessor_expired(m, ids, 8), 1);
	CHECK_EQ(ids[0], 2);
	/* Reported once, then again after the retry interval. */
	CHECK_EQ(lessor_expired(m, ids, 8), 0);
	now_ms += LEASE_RETRY_MS;
	CHECK_EQ(lessor_expired(m, ids, 8), 2);
	/* An expired lease is not renewed (its revoke is on its way). */
	k = keepalive(2, &err);
	CHECK(err == 0 && k->ttl == 0);
	CHECK_EQ(lessor_expired(m, ids, 1), 0);

	/* Demotion stops expiry; a later promotion starts over. */
	lessor_demote(m);
	now_ms += 100000;
	CHECK_EQ(lessor_expired(m, ids, 8), 0);
	lessor_promote(m, 1000);
	CHECK_EQ(lessor_expired(m, ids, 8), 0);
	now_ms += 4000;
	CHECK_EQ(lessor_expired(m, ids, 8), 1);
	CHECK_EQ(ids[0], 2);
	store_destroy();
}

static void test_restart(void)
{
	store_new();
	configure();
	CHECK(!grant(7, 30)->error);
	CHECK(!grant(8, 40)->error);
	CHECK(!put_lease("k1", "v", 7, 0)->error);
	CHECK(!put_lease("k2", "v", 7, 0)->error);
	CHECK(!put_lease("k3", "v", 8, 0)->error);
	CHECK(!put_lease("k3", "v", 0, 0)->error);
	CHECK(!put_lease("k4", "v", 8, 0)->error);
	del("k4", NULL);
	CHECK(!lrevoke(8)->error);
	CHECK_EQ(mvcc_live_keys(m), 3);
	mvcc_close(m);
	store_open();
	configure();
	CHECK_EQ(mvcc_live_keys(m), 3);
	CHECK_EQ(mvcc_key_count(m), 4);
	Etcdserverpb__LeaseTimeToLiveResponse *t = ttl_of(7);
	CHECK_EQ(t->grantedttl, 30);
	CHECK_EQ(t->n_keys, 2);
	CHECK_STR(t->keys[0], "k1");
	CHECK_STR(t->keys[1], "k2");
	CHECK_EQ(ttl_of(8)->ttl, -1);
	int64_t rev = mvcc_rev(m);
	CHECK(!lrevoke(7)->error);
	CHECK_EQ(mvcc_rev(m), rev + 1);
	CHECK_EQ(range("k", "l")->count, 1); /* k3 */
	CHECK_EQ(mvcc_live_keys(m), 1);
	store_destroy();
}

int main(void)
{
	test_grant();
	test_keys();
	test_expiry();
	test_restart();
	return 0;
}
