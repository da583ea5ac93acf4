/*
 * Unit test of the MVCC store's life: compaction (errors, data really gone
 * from RocksDB, reads at the compacted revision), restart (index rebuilt,
 * same answers), a compaction interrupted by a crash, the applied index,
 * and members from ConfChange entries.
 */
#include "mvcc_helpers.h"
#include "mvcc_int.h"

/* Revisions stored in the "key" family. */
static int count_revs(void)
{
	int n = 0;
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(m->db, m->ro,
							    m->cf[CF_KEY]);
	for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it))
		n++;
	rocksdb_iter_destroy(it);
	return n;
}

static void reopen(void)
{
	mvcc_close(m);
	store_open();
}

static void test_compaction(void)
{
	store_new();
	/* On a fresh store revisions 0 and 1 compact; then 1 is compacted. */
	CHECK(!compact(0)->error);
	check_err(compact(0), 11,
		  "etcdserver: mvcc: required revision has been compacted");
	CHECK(!compact(1)->error);
	check_err(compact(1), 11,
		  "etcdserver: mvcc: required revision has been compacted");
	check_err(compact(2), 11,
		  "etcdserver: mvcc: required revision is a future revision");

	for (int i = 0; i < 100; i++)
		put("hot", "value");     /* 2..101 */
	put("cold", "c");                /* 102 */
	put("gone", "g");                /* 103 */
	del("gone", NULL);               /* 104 */
	put("later", "l");               /* 105 */
	CHECK_EQ(count_revs(), 104); /* revisions 2..105 */

	Ipc__Result *res = compact(104);
	CHECK(!res->error);
	CHECK_EQ(res->compaction->header->revision, 105);
	CHECK_EQ(mvcc_compact_rev(m), 104);
	CHECK_EQ(mvcc_rev(m), 105); /* compaction writes nothing */
	/* Left: hot@101, cold@102, later@105. The tombstone went too. */
	CHECK_EQ(count_revs(), 3);
	CHECK_EQ(mvcc_key_count(m), 3);

	/* Reading at the compacted revision works, below it does not. */
	Etcdserverpb__RangeRequest q = ETCDSERVERPB__RANGE_REQUEST__INIT;
	q.key = B("a");
	q.range_end = B("z");
	q.revision = 104;
	Etcdserverpb__RangeResponse *rr = range_full(&q, NULL);
	CHECK_KEYS(rr, "cold,hot");
	CHECK_EQ(rr->kvs[1]->version, 100);
	q.revision = 103;
	int err;
	CHECK(range_full(&q, &err) == NULL);
	CHECK_EQ(err, -MVCC_ECOMPACTED);
	uint32_t code;
	const char *msg;
	mvcc_strerror(err, &code, &msg);
	CHECK_EQ(code, 11);
	CHECK(strcmp(msg, "etcdserver: mvcc: required revision has been compacted") == 0);

	check_err(compact(104), 11,
		  "etcdserver: mvcc: required revision has been compacted");
	check_err(compact(106), 11,
		  "etcdserver: mvcc: required revision is a future revision");

	/* A key goes on with its generation after compaction. */
	CHECK_EQ(put("hot", "v"), 106);
	CHECK_EQ(range("hot", NULL)->kvs[0]->version, 101);
	CHECK_EQ(range("hot", NULL)->kvs[0]->create_revision, 2);

	/* Compact everything away: the revision survives a restart. */
	del("", "");                     /* 107 */
	CHECK(!compact(107)->error);
	CHECK_EQ(count_revs(), 0);
	CHECK_EQ(mvcc_key_count(m), 0);
	reopen();
	CHECK_EQ(mvcc_rev(m), 107);
	CHECK_EQ(mvcc_compact_rev(m), 107);
	CHECK_EQ(put("x", "1"), 108);
	store_destroy();
}

static void test_space_freed(void)
{
	store_new();
	/* 4 MiB of old versions of one key, then compaction frees them. */
	static char big[64 * 1024];
	memset(big, 'x', sizeof(big) - 1);
	for (int i = 0; i < 64; i++)
		put("big", big);
	CHECK(mvcc_sync(m) == 0);
	CHECK(!compact(mvcc_rev(m))->error);
	uint64_t live = 0;
	CHECK(rocksdb_property_int_cf(m->db, m->cf[CF_KEY],
				      "rocksdb.estimate-live-data-size", &live) == 0);
	CHECK(live < 1024 * 1024);
	int64_t size, inuse;
	CHECK(mvcc_disk_usage(m, &size, &inuse) == 0);
	CHECK(size > 0 && inuse <= size);
	CHECK_EQ(range("big", NULL)->kvs[0]->value.len, sizeof(big) - 1);
	store_destroy();
}

static void test_restart(void)
{
	store_new();
	put("a", "1");           /* 2 */
	put("b", "2");           /* 3 */
	put("a", "3");           /* 4 */
	del("b", NULL);          /* 5 */
	put("b", "4");           /* 6 */
	put("c", "5");           /* 7 */
	CHECK(!compact(4)->error);
	uint64_t applied = mvcc_applied(m);

	reopen();
	CHECK_EQ(mvcc_applied(m), applied);
	CHECK_EQ(next_index, applied + 1);
	CHECK_EQ(mvcc_rev(m), 7);
	CHECK_EQ(mvcc_compact_rev(m), 4);
	Etcdserverpb__RangeResponse *rr = range("", "");
	CHECK_KEYS(rr, "a,b,c");
	CHECK_EQ(rr->kvs[0]->version, 2);
	CHECK_EQ(rr->kvs[0]->create_revision, 2);
	CHECK_EQ(rr->kvs[1]->version, 1);
	CHECK_EQ(rr->kvs[1]->create_revision, 6);

	Etcdserverpb__RangeRequest q = ETCDSERVERPB__RANGE_REQUEST__INIT;
	q.key = B("b");
	q.revision = 5;
	CHECK_EQ(range_full(&q, NULL)->count, 0);
	q.revision = 4;
	int err;
	/* Compacted at 4: b@3 is what 4 reads, so it stayed. */
	CHECK_EQ(range_full(&q, NULL)->count, 1);
	q.revision = 3;
	range_full(&q, &err);
	CHECK_EQ(err, -MVCC_ECOMPACTED);

	/* Writes go on from the restored versions. */
	Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
	p.key = B("a");
	p.value = B("5");
	p.prev_kv = 1;
	Ipc__Result *res = put_full(&p);
	CHECK_STR(res->put->prev_kv->value, "3");
	CHECK_EQ(res->put->header->revision, 8);
	CHECK_EQ(range("a", NULL)->kvs[0]->version, 3);

	/* Replaying entries at or below the applied index changes nothing. */
	Etcdserverpb__PutRequest old = ETCDSERVERPB__PUT_REQUEST__INIT;
	old.key = B("a");
	old.value = B("stale");
	Etcdserverpb__InternalRaftRequest r = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	r.put = &old;
	uint64_t save = next_index;
	next_index = 3;
	Raftpb__Entry *e = entry_of(&r);
	next_index = save;
	CHECK(apply_one(e) == NULL);
	CHECK_STR(range("a", NULL)->kvs[0]->value, "5");
	CHECK_EQ(mvcc_rev(m), 8);
	store_destroy();
}

/* A crash after the batch with a compaction, before its physical half. */
static void test_interrupted_compaction(void)
{
	store_new();
	for (int i = 0; i < 10; i++)
		put("k", "v");   /* 2..11 */
	put("d", "1");           /* 12 */
	del("d", NULL);          /* 13 */
	Etcdserverpb__CompactionRequest c = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
	c.revision = 13;
	Etcdserverpb__CompactionResponse *cr;
	CHECK(mvcc_batch_begin(m) == 0);
	CHECK(mvcc_compact(m, &c, &a, &cr) == 0);
	m->phys_compact = 0; /* "crash" before the removal */
	CHECK(mvcc_batch_commit(m) == 0);
	CHECK_EQ(count_revs(), 12);

	reopen();
	CHECK_EQ(mvcc_compact_rev(m), 13);
	CHECK_EQ(count_revs(), 1);
	CHECK_EQ(mvcc_key_count(m), 1);
	CHECK_EQ(range("k", NULL)->kvs[0]->version, 10);
	CHECK_EQ(mvcc_rev(m), 13);
	store_destroy();
}

static Raftpb__Entry *confchange(int type, uint64_t id, const char *name,
				 const char *peer)
{
	Etcdserverpb__Member mb = ETCDSERVERPB__MEMBER__INIT;
	char *peers[1] = { (char *)peer };
	mb.id = id;
	mb.name = (char *)name;
	mb.peerurls = peers;
	mb.n_peerurls = peer ? 1 : 0;
	Raftpb__ConfChange cc = RAFTPB__CONF_CHANGE__INIT;
	cc.type = type;
	cc.nodeid = id;
	cc.context.len = etcdserverpb__member__get_packed_size(&mb);
	cc.context.data = arena_alloc(&a, cc.context.len);
	etcdserverpb__member__pack(&mb, cc.context.data);
	Raftpb__Entry *e = ARENA_NEW(&a, Raftpb__Entry, RAFTPB__ENTRY__INIT);
	e->index = next_index++;
	e->type = RAFTPB__ENTRY_TYPE__EntryConfChange;
	e->data.len = raftpb__conf_change__get_packed_size(&cc);
	e->data.data = arena_alloc(&a, e->data.len);
	raftpb__conf_change__pack(&cc, e->data.data);
	return e;
}

static void test_members(void)
{
	store_new();
	/* The bootstrap entries come in one batch. */
	Raftpb__Entry *e[3] = {
		confchange(RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode,
			   0xffffffffffffff00ull, "big", "http://h3:2380"),
		confchange(RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode, 5, "five",
			   "http://h1:2380"),
		confchange(RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddLearnerNode, 7,
			   "seven", "http://h2:2380"),
	};
	uint64_t id;
	Ipc__Result *res = NULL;
	CHECK(mvcc_batch_begin(m) == 0);
	for (int i = 0; i < 3; i++)
		CHECK(apply_entry(m, e[i], &a, &id, &res) == 0);
	CHECK(res == NULL);
	CHECK(mvcc_batch_commit(m) == 0);
	CHECK_EQ(mvcc_applied(m), 3);
	CHECK_EQ(mvcc_rev(m), 1);

	Etcdserverpb__Member **v;
	size_t n;
	CHECK(mvcc_member_list(m, &a, &v, &n) == 0);
	CHECK_EQ(n, 3);
	CHECK_EQ(v[0]->id, 5);
	CHECK_EQ(v[1]->id, 7);
	CHECK(v[1]->islearner);
	CHECK_EQ(v[2]->id, 0xffffffffffffff00ull);
	CHECK(strcmp(v[2]->name, "big") == 0);

	/* Promote 7, update 5's peer URLs, remove the big one; restart. */
	apply_one(confchange(RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode, 7,
			     "", NULL));
	apply_one(confchange(RAFTPB__CONF_CHANGE_TYPE__ConfChangeUpdateNode, 5,
			     "", "http://new:2380"));
	apply_one(confchange(RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode,
			     0xffffffffffffff00ull, "", NULL));
	reopen();
	CHECK(mvcc_member_list(m, &a, &v, &n) == 0);
	CHECK_EQ(n, 2);
	CHECK(!v[1]->islearner);
	CHECK(strcmp(v[1]->name, "seven") == 0);
	CHECK(strcmp(v[0]->name, "five") == 0);
	CHECK_EQ(v[0]->n_peerurls, 1);
	CHECK(strcmp(v[0]->peerurls[0], "http://new:2380") == 0);
	CHECK_EQ(mvcc_applied(m), 6);
	store_destroy();
}

static void test_bad_entries(void)
{
	store_new();
	Raftpb__Entry e = RAFTPB__ENTRY__INIT;
	e.index = next_index++;
	e.data.data = (uint8_t *)"\xff\xff\xff";
	e.data.len = 3;
	uint64_t id;
	Ipc__Result *res = NULL;
	CHECK(mvcc_batch_begin(m) == 0);
	CHECK(apply_entry(m, &e, &a, &id, &res) == APPLY_EBADENTRY);
	CHECK(mvcc_batch_commit(m) == 0);
	/* Skipped, but counted: raftd will not resend it. */
	CHECK_EQ(mvcc_applied(m), 1);

	/* Lease checkpoints are not served yet: refused, consistently. */
	Etcdserverpb__LeaseCheckpointRequest c =
		ETCDSERVERPB__LEASE_CHECKPOINT_REQUEST__INIT;
	Etcdserverpb__InternalRaftRequest r = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	r.lease_checkpoint = &c;
	res = apply_req(&r);
	CHECK(res && res->error && res->error->code == 12);
	store_destroy();
}

int main(void)
{
	test_compaction();
	test_space_freed();
	test_restart();
	test_interrupted_compaction();
	test_members();
	test_bad_entries();
	return 0;
}
