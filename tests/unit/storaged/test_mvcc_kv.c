/*
 * Unit test of the MVCC store's Put, Range and DeleteRange, applied as Raft
 * entries the way storaged applies them; expected answers are etcd 3.4's
 * (checked against the reference where the API notes say nothing).
 */
#include "mvcc_helpers.h"

static void test_put(void)
{
	store_new();
	CHECK_EQ(mvcc_rev(m), 1);
	Etcdserverpb__RangeResponse *rr = range("a", NULL);
	CHECK_EQ(rr->count, 0);
	CHECK_EQ(rr->n_kvs, 0);
	CHECK_EQ(rr->header->revision, 1);

	CHECK_EQ(put("a", "1"), 2);
	CHECK_EQ(mvcc_rev(m), 2);
	rr = range("a", NULL);
	CHECK_EQ(rr->count, 1);
	CHECK_STR(rr->kvs[0]->key, "a");
	CHECK_STR(rr->kvs[0]->value, "1");
	CHECK_EQ(rr->kvs[0]->create_revision, 2);
	CHECK_EQ(rr->kvs[0]->mod_revision, 2);
	CHECK_EQ(rr->kvs[0]->version, 1);
	CHECK_EQ(rr->header->revision, 2);

	/* prev_kv: the value before; none for a new key. */
	Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
	p.key = B("a");
	p.value = B("2");
	p.prev_kv = 1;
	Ipc__Result *res = put_full(&p);
	CHECK(!res->error && res->put->prev_kv);
	CHECK_STR(res->put->prev_kv->value, "1");
	CHECK_EQ(res->put->prev_kv->version, 1);
	CHECK_EQ(res->put->header->revision, 3);
	p.key = B("new");
	res = put_full(&p);
	CHECK(!res->error && !res->put->prev_kv);
	CHECK_EQ(res->put->header->revision, 4);

	rr = range("a", NULL);
	CHECK_EQ(rr->kvs[0]->create_revision, 2);
	CHECK_EQ(rr->kvs[0]->mod_revision, 3);
	CHECK_EQ(rr->kvs[0]->version, 2);

	/* ignore_value keeps the value, and still makes a new version. */
	Etcdserverpb__PutRequest iv = ETCDSERVERPB__PUT_REQUEST__INIT;
	iv.key = B("a");
	iv.ignore_value = 1;
	res = put_full(&iv);
	CHECK(!res->error);
	rr = range("a", NULL);
	CHECK_STR(rr->kvs[0]->value, "2");
	CHECK_EQ(rr->kvs[0]->version, 3);
	CHECK_EQ(rr->kvs[0]->mod_revision, 5);
	iv.key = B("missing");
	check_err(put_full(&iv), 3, "etcdserver: key not found");
	iv.ignore_value = 0;
	iv.ignore_lease = 1;
	check_err(put_full(&iv), 3, "etcdserver: key not found");
	iv.key = B("a");
	iv.value = B("3");
	res = put_full(&iv);
	CHECK(!res->error);
	CHECK_EQ(res->put->header->revision, 6);

	/* No lease exists yet. */
	Etcdserverpb__PutRequest pl = ETCDSERVERPB__PUT_REQUEST__INIT;
	pl.key = B("a");
	pl.value = B("x");
	pl.lease = 42;
	check_err(put_full(&pl), 5, "etcdserver: requested lease not found");
	/* Failed requests do not move the revision. */
	CHECK_EQ(mvcc_rev(m), 6);

	/* Empty values and binary keys. */
	const uint8_t bk[] = { 0, 'k', 0xff };
	Etcdserverpb__PutRequest pb = ETCDSERVERPB__PUT_REQUEST__INIT;
	pb.key.data = (uint8_t *)bk;
	pb.key.len = sizeof(bk);
	CHECK(!put_full(&pb)->error);
	Etcdserverpb__RangeRequest q = ETCDSERVERPB__RANGE_REQUEST__INIT;
	q.key = pb.key;
	rr = range_full(&q, NULL);
	CHECK_EQ(rr->count, 1);
	CHECK_EQ(rr->kvs[0]->value.len, 0);
	CHECK_EQ(rr->kvs[0]->key.len, 3);
	store_destroy();
}

/* Keys b..f with histories: b x1, c x2, d x3, e x1, f x2. */
static void fill(void)
{
	put("b", "v5");  /* 2 */
	put("c", "v4");  /* 3 */
	put("d", "v3");  /* 4 */
	put("e", "v2");  /* 5 */
	put("f", "v1");  /* 6 */
	put("c", "v4");  /* 7 */
	put("d", "v3");  /* 8 */
	put("d", "v3");  /* 9 */
	put("f", "v0");  /* 10 */
}

static void test_range(void)
{
	store_new();
	fill();
	CHECK_EQ(mvcc_rev(m), 10);
	Etcdserverpb__RangeResponse *rr;

	CHECK_KEYS(range("b", "e"), "b,c,d");
	CHECK_KEYS(range("c", ""), "c,d,e,f");   /* range_end "\0": >= key */
	CHECK_KEYS(range("", ""), "b,c,d,e,f");
	{
		/* key "\0", range_end "\0": every key */
		Etcdserverpb__RangeRequest q = ETCDSERVERPB__RANGE_REQUEST__INIT;
		q.key = (ProtobufCBinaryData){ 1, (uint8_t *)"" };
		q.range_end = q.key;
		CHECK_KEYS(range_full(&q, NULL), "b,c,d,e,f");
	}
	CHECK_KEYS(range("d", "c"), "");          /* end before key: nothing */
	CHECK_KEYS(range("c", NULL), "c");
	CHECK_KEYS(range("cc", NULL), "");

	Etcdserverpb__RangeRequest q = ETCDSERVERPB__RANGE_REQUEST__INIT;
	q.key = B("a");
	q.range_end = B("z");
	q.limit = 2;
	rr = range_full(&q, NULL);
	CHECK_KEYS(rr, "b,c");
	CHECK(rr->more);
	CHECK_EQ(rr->count, 5);
	q.limit = 5;
	rr = range_full(&q, NULL);
	CHECK(!rr->more);
	CHECK_EQ(rr->n_kvs, 5);
	q.limit = -1;
	CHECK_EQ(range_full(&q, NULL)->n_kvs, 5);
	q.limit = 0;

	/* History. */
	q.revision = 4;
	rr = range_full(&q, NULL);
	CHECK_KEYS(rr, "b,c,d");
	CHECK_EQ(rr->header->revision, 10); /* the current one */
	CHECK_EQ(rr->kvs[1]->version, 1);
	q.revision = 1;
	CHECK_EQ(range_full(&q, NULL)->count, 0);
	q.revision = 11;
	int err;
	CHECK(range_full(&q, &err) == NULL);
	CHECK_EQ(err, -MVCC_EFUTUREREV);
	q.revision = 0;

	/* Sort targets and orders; ties keep key order. */
	q.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VERSION;
	CHECK_KEYS(range_full(&q, NULL), "b,e,c,f,d"); /* NONE: ascending */
	q.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
	CHECK_KEYS(range_full(&q, NULL), "d,c,f,b,e");
	q.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__CREATE;
	CHECK_KEYS(range_full(&q, NULL), "f,e,d,c,b");
	q.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__MOD;
	CHECK_KEYS(range_full(&q, NULL), "f,d,c,e,b");
	q.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND;
	CHECK_KEYS(range_full(&q, NULL), "b,e,c,d,f");
	q.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VALUE;
	CHECK_KEYS(range_full(&q, NULL), "f,e,d,c,b");
	q.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY;
	q.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
	q.limit = 2;
	rr = range_full(&q, NULL);
	CHECK_KEYS(rr, "f,e");
	CHECK(rr->more);
	/* etcd's quirk: a target without an order sorts only limit+1 keys. */
	q.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__NONE;
	q.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VERSION;
	rr = range_full(&q, NULL);
	CHECK_KEYS(rr, "b,c");
	CHECK(rr->more);
	q.key = B("c");
	rr = range_full(&q, NULL);
	CHECK_KEYS(rr, "e,c");                 /* c, d, e sorted: e, c, d */
	q.key = B("a");
	q.limit = 0;
	q.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY;

	/* keys_only, count_only. */
	q.keys_only = 1;
	rr = range_full(&q, NULL);
	CHECK_EQ(rr->n_kvs, 5);
	CHECK_EQ(rr->kvs[0]->value.len, 0);
	CHECK_EQ(rr->kvs[0]->mod_revision, 2);
	q.keys_only = 0;
	q.count_only = 1;
	q.limit = 1;
	rr = range_full(&q, NULL);
	CHECK_EQ(rr->n_kvs, 0);
	CHECK_EQ(rr->count, 5);
	CHECK(!rr->more);
	q.count_only = 0;
	q.limit = 0;

	/* Filters come after count. */
	q.max_mod_revision = 5;
	rr = range_full(&q, NULL);
	CHECK_KEYS(rr, "b,e");
	CHECK_EQ(rr->count, 5);
	q.max_mod_revision = 0;
	q.min_mod_revision = 8;
	CHECK_KEYS(range_full(&q, NULL), "d,f");
	q.min_mod_revision = 0;
	q.min_create_revision = 4;
	CHECK_KEYS(range_full(&q, NULL), "d,e,f");
	q.max_create_revision = 5;
	CHECK_KEYS(range_full(&q, NULL), "d,e");
	q.min_create_revision = 0;
	q.max_create_revision = 0;
	q.min_mod_revision = 4;
	q.limit = 1;
	rr = range_full(&q, NULL);
	CHECK_KEYS(rr, "c");
	CHECK(rr->more);
	CHECK_EQ(rr->count, 5);
	store_destroy();
}

static void test_delete(void)
{
	store_new();
	fill();
	/* Nothing to delete: no new revision. */
	Etcdserverpb__DeleteRangeResponse *dr = del("x", NULL);
	CHECK_EQ(dr->deleted, 0);
	CHECK_EQ(dr->header->revision, 10);
	CHECK_EQ(mvcc_rev(m), 10);

	dr = del("b", NULL);
	CHECK_EQ(dr->deleted, 1);
	CHECK_EQ(dr->header->revision, 11);
	CHECK_EQ(dr->n_prev_kvs, 0);

	Etcdserverpb__DeleteRangeRequest d = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
	d.key = B("c");
	d.range_end = B("e");
	d.prev_kv = 1;
	Ipc__Result *res = del_full(&d);
	CHECK(!res->error);
	dr = res->delete_range;
	CHECK_EQ(dr->deleted, 2);
	CHECK_EQ(dr->header->revision, 12);
	CHECK_EQ(dr->n_prev_kvs, 2);
	CHECK_STR(dr->prev_kvs[0]->key, "c");
	CHECK_EQ(dr->prev_kvs[1]->version, 3);
	CHECK_KEYS(range("", ""), "e,f");

	/* Both keys went at one revision: readable just before it. */
	Etcdserverpb__RangeRequest q = ETCDSERVERPB__RANGE_REQUEST__INIT;
	q.key = B("a");
	q.range_end = B("z");
	q.revision = 11;
	CHECK_KEYS(range_full(&q, NULL), "c,d,e,f");
	q.revision = 10;
	CHECK_KEYS(range_full(&q, NULL), "b,c,d,e,f");

	/* A key put again starts a new generation. */
	CHECK_EQ(put("d", "again"), 13);
	Etcdserverpb__RangeResponse *rr = range("d", NULL);
	CHECK_EQ(rr->kvs[0]->version, 1);
	CHECK_EQ(rr->kvs[0]->create_revision, 13);

	/* Delete everything from a key on. */
	dr = del("e", "");
	CHECK_EQ(dr->deleted, 2);
	CHECK_KEYS(range("", ""), "d");
	store_destroy();
}

/* Several writes in one batch read each other before RocksDB has them. */
static void test_batch(void)
{
	store_new();
	Etcdserverpb__PutRequest p1 = ETCDSERVERPB__PUT_REQUEST__INIT;
	p1.key = B("k");
	p1.value = B("one");
	Etcdserverpb__PutRequest p2 = p1;
	p2.value = B("two");
	p2.prev_kv = 1;
	Etcdserverpb__DeleteRangeRequest d = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
	d.key = B("k");
	d.prev_kv = 1;
	Etcdserverpb__InternalRaftRequest r1 = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	Etcdserverpb__InternalRaftRequest r2 = r1, r3 = r1;
	r1.put = &p1;
	r2.put = &p2;
	r3.delete_range = &d;
	Raftpb__Entry *e[4] = { entry_of(&r1), entry_of(&r2), entry_of(&r3), NULL };
	Raftpb__Entry empty = RAFTPB__ENTRY__INIT; /* a new leader's entry */
	empty.index = next_index++;
	e[3] = &empty;

	Ipc__Result *res[4] = { 0 };
	uint64_t id;
	CHECK(mvcc_batch_begin(m) == 0);
	for (int i = 0; i < 4; i++)
		CHECK(apply_entry(m, e[i], &a, &id, &res[i]) == 0);
	CHECK(mvcc_batch_commit(m) == 0);
	CHECK(res[3] == NULL);
	CHECK_STR(res[1]->put->prev_kv->value, "one");
	CHECK_EQ(res[2]->delete_range->deleted, 1);
	CHECK_STR(res[2]->delete_range->prev_kvs[0]->value, "two");
	CHECK_EQ(res[2]->delete_range->prev_kvs[0]->version, 2);
	CHECK_EQ(mvcc_rev(m), 4);
	CHECK_EQ(mvcc_applied(m), 4);

	Etcdserverpb__RangeRequest q = ETCDSERVERPB__RANGE_REQUEST__INIT;
	q.key = B("k");
	q.revision = 3;
	Etcdserverpb__RangeResponse *rr = range_full(&q, NULL);
	CHECK_STR(rr->kvs[0]->value, "two");

	/* The same batch again changes nothing (replay after a crash). */
	CHECK(mvcc_batch_begin(m) == 0);
	for (int i = 0; i < 4; i++) {
		Ipc__Result *r = NULL;
		CHECK(apply_entry(m, e[i], &a, &id, &r) == 0);
		CHECK(r == NULL);
	}
	CHECK(mvcc_batch_commit(m) == 0);
	CHECK_EQ(mvcc_rev(m), 4);
	CHECK_EQ(mvcc_applied(m), 4);
	store_destroy();
}

/* Ranges over many keys read in revision order; the batch's own writes too. */
static void test_many(void)
{
	store_new();
	char k[16], v[16];
	for (int i = 0; i < 300; i++) {
		int n = (i * 7919) % 300;
		snprintf(k, sizeof(k), "k%03d", n);
		snprintf(v, sizeof(v), "v%d", n);
		put(k, v);
	}
	Etcdserverpb__RangeResponse *rr = range("k", "l");
	CHECK_EQ(rr->n_kvs, 300);
	for (int i = 0; i < 300; i++) {
		snprintf(k, sizeof(k), "k%03d", i);
		snprintf(v, sizeof(v), "v%d", i);
		CHECK_STR(rr->kvs[i]->key, k);
		CHECK_STR(rr->kvs[i]->value, v);
	}

	/* One batch: overwrite half the keys, then delete all with prev_kv. */
	static Etcdserverpb__PutRequest p[150];
	static Etcdserverpb__InternalRaftRequest r[151];
	static char keys[150][16];
	uint64_t id;
	Ipc__Result *res = NULL;
	CHECK(mvcc_batch_begin(m) == 0);
	for (int i = 0; i < 150; i++) {
		etcdserverpb__put_request__init(&p[i]);
		etcdserverpb__internal_raft_request__init(&r[i]);
		snprintf(keys[i], sizeof(keys[i]), "k%03d", 2 * i);
		p[i].key = B(keys[i]);
		p[i].value = B("new");
		r[i].put = &p[i];
		CHECK(apply_entry(m, entry_of(&r[i]), &a, &id, &res) == 0);
	}
	Etcdserverpb__DeleteRangeRequest d = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
	d.key = B("k");
	d.range_end = B("l");
	d.prev_kv = 1;
	etcdserverpb__internal_raft_request__init(&r[150]);
	r[150].delete_range = &d;
	CHECK(apply_entry(m, entry_of(&r[150]), &a, &id, &res) == 0);
	CHECK(mvcc_batch_commit(m) == 0);
	CHECK(!res->error);
	CHECK_EQ(res->delete_range->deleted, 300);
	for (int i = 0; i < 300; i++) {
		Mvccpb__KeyValue *kv = res->delete_range->prev_kvs[i];
		snprintf(k, sizeof(k), "k%03d", i);
		snprintf(v, sizeof(v), "v%d", i);
		CHECK_STR(kv->key, k);
		CHECK_STR(kv->value, i % 2 ? v : "new");
		CHECK_EQ(kv->version, i % 2 ? 1 : 2);
	}
	CHECK_EQ(range("k", "l")->count, 0);
	store_destroy();
}

int main(void)
{
	test_many();
	test_put();
	test_range();
	test_delete();
	test_batch();
	return 0;
}
