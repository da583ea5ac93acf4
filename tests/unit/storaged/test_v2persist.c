/*
 * The v2 store through storaged's apply and RocksDB: v2 requests applied as
 * Raft entries (PUT, POST, DELETE, QGET, SYNC, and an unknown method), the
 * answers in Result.v2, and a store closed and opened again (a restart, or
 * a snapshot install, which opens another directory the same way) holding
 * exactly what was applied and committed, with its index.
 */
#include <errno.h>
#include <time.h>

#include "mvcc_helpers.h"
#include "v2store.h"

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static Etcdserverpb__InternalRaftRequest *v2req(const char *method,
						const char *path,
						const char *val)
{
	Etcdserverpb__InternalRaftRequest *r = ARENA_NEW(
		&a, Etcdserverpb__InternalRaftRequest,
		ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT);
	Etcdserverpb__Request *q = ARENA_NEW(&a, Etcdserverpb__Request,
					     ETCDSERVERPB__REQUEST__INIT);
	q->method = (char *)method;
	q->path = (char *)path;
	q->val = (char *)val;
	r->v2 = q;
	return r;
}

static void check_v2(const Ipc__Result *res, uint32_t status, uint64_t index,
		     const char *body)
{
	CHECK(res && res->v2 && !res->error);
	size_t n = strlen(body);
	if (res->v2->status != status || res->v2->etcd_index != index ||
	    res->v2->body.len != n + 1 ||
	    memcmp(res->v2->body.data, body, n) != 0) {
		fprintf(stderr, "got %u [%llu] %.*s\nwanted %u [%llu] %s\n",
			res->v2->status, (unsigned long long)res->v2->etcd_index,
			(int)res->v2->body.len, (const char *)res->v2->body.data,
			status, (unsigned long long)index, body);
		exit(1);
	}
}

/* The whole tree as a recursive GET shows it. */
static char *dump(void)
{
	struct v2_out o;
	CHECK(v2_get(mvcc_v2(m), "/", 1, 1, &a, &o) == 0);
	char *s = malloc(o.len + 1);
	CHECK(s);
	memcpy(s, o.body, o.len);
	s[o.len] = 0;
	return s;
}

static void reopen(void)
{
	mvcc_close(m);
	store_open();
}

static void test_apply_and_reload(void)
{
	store_new();
	Ipc__Result *res = apply_req(v2req("PUT", "/discovery/tok/_config/size",
					   "3"));
	check_v2(res, 201, 1,
		 "{\"action\":\"set\",\"node\":{\"key\":"
		 "\"/discovery/tok/_config/size\",\"value\":\"3\","
		 "\"modifiedIndex\":1,\"createdIndex\":1}}");
	/* prevExist=false: Create. */
	Etcdserverpb__InternalRaftRequest *r = v2req("PUT", "/discovery/tok/abc",
						     "infra0=http://h:2380");
	r->v2->has_prevexist = 1;
	r->v2->prevexist = 0;
	check_v2(apply_req(r), 201, 2,
		 "{\"action\":\"create\",\"node\":{\"key\":\"/discovery/tok/abc\","
		 "\"value\":\"infra0=http://h:2380\",\"modifiedIndex\":2,"
		 "\"createdIndex\":2}}");
	check_v2(apply_req(r), 412, 2,
		 "{\"errorCode\":105,\"message\":\"Key already exists\",\"cause\":"
		 "\"/discovery/tok/abc\",\"index\":2}");
	/* prevExist=true with prevValue: CompareAndSwap. */
	r = v2req("PUT", "/discovery/tok/abc", "v2");
	r->v2->has_prevexist = 1;
	r->v2->prevexist = 1;
	r->v2->prevvalue = "nope";
	check_v2(apply_req(r), 412, 2,
		 "{\"errorCode\":101,\"message\":\"Compare failed\",\"cause\":"
		 "\"[nope != infra0=http://h:2380]\",\"index\":2}");
	res = apply_req(v2req("POST", "/queue", "job"));
	check_v2(res, 201, 3,
		 "{\"action\":\"create\",\"node\":{\"key\":"
		 "\"/queue/00000000000000000003\",\"value\":\"job\","
		 "\"modifiedIndex\":3,\"createdIndex\":3}}");
	r = v2req("PUT", "/ttl", "t");
	r->v2->has_expiration = 1;
	r->v2->expiration = now_ns() + 3600LL * 1000000000;
	CHECK(apply_req(r)->v2->status == 201);
	r = v2req("PUT", "/gone", "t");
	r->v2->has_expiration = 1;
	r->v2->expiration = now_ns() - 1;
	CHECK(apply_req(r)->v2->status == 201);
	r = v2req("DELETE", "/queue", NULL);
	check_v2(apply_req(r), 403, 5,
		 "{\"errorCode\":102,\"message\":\"Not a file\",\"cause\":"
		 "\"/queue\",\"index\":5}");
	r = v2req("PUT", "/d/x", "1");
	CHECK(apply_req(r)->v2->status == 201);
	r = v2req("DELETE", "/d", NULL);
	r->v2->has_recursive = r->v2->recursive = 1;
	CHECK(apply_req(r)->v2->status == 200);
	/* QGET through Raft reads and does not count. */
	res = apply_req(v2req("QGET", "/discovery/tok", NULL));
	check_v2(res, 200, 7,
		 "{\"action\":\"get\",\"node\":{\"key\":\"/discovery/tok\","
		 "\"dir\":true,\"nodes\":[{\"key\":\"/discovery/tok/abc\","
		 "\"value\":\"infra0=http://h:2380\",\"modifiedIndex\":2,"
		 "\"createdIndex\":2}],\"modifiedIndex\":1,\"createdIndex\":1}}");
	res = apply_req(v2req("FROB", "/x", NULL));
	check_v2(res, 500, 0,
		 "{\"errorCode\":300,\"message\":\"Raft Internal Error\","
		 "\"cause\":\"etcdserver: unknown method\",\"index\":0}");
	CHECK(v2_next_expiry(mvcc_v2(m)) != 0);

	/* Restart: the same tree, the same index, TTLs still due. */
	char *before = dump();
	uint64_t applied = mvcc_applied(m);
	reopen();
	CHECK_EQ(mvcc_applied(m), applied);
	CHECK_EQ(v2_index(mvcc_v2(m)), 7);
	char *after = dump();
	if (strcmp(before, after) != 0) {
		fprintf(stderr, "before: %s\nafter: %s\n", before, after);
		exit(1);
	}
	free(before);
	free(after);
	CHECK_EQ(v2_node_count(mvcc_v2(m)), 9);
	/* No history survives: older wait indexes are cleared. */
	struct v2_out o;
	int pending;
	CHECK(v2_watch(mvcc_v2(m), 1, "/ttl", 0, 0, 7, &a, &o, &pending) == 0);
	CHECK(!pending && o.status == 400);
	CHECK(strstr((const char *)o.body, "cleared [8/7]"));
	CHECK(v2_watch(mvcc_v2(m), 1, "/ttl", 0, 0, 8, &a, &o, &pending) == 0);
	CHECK(pending);
	v2_unwatch(mvcc_v2(m), 1);

	/* The leader's SYNC removes what expired, through the apply. */
	r = v2req("SYNC", NULL, NULL);
	r->v2->has_time = 1;
	r->v2->time = now_ns();
	res = apply_req(r);
	CHECK(res && !res->v2 && !res->error);
	CHECK_EQ(v2_index(mvcc_v2(m)), 8);
	reopen();
	CHECK_EQ(v2_index(mvcc_v2(m)), 8);
	CHECK(v2_get(mvcc_v2(m), "/gone", 0, 0, &a, &o) == 0 && o.status == 404);
	CHECK(v2_get(mvcc_v2(m), "/ttl", 0, 0, &a, &o) == 0 && o.status == 200);
	CHECK(v2_get(mvcc_v2(m), "/d", 0, 0, &a, &o) == 0 && o.status == 404);
	arena_clear(&a);
	store_destroy();
}

static void test_uncommitted_batch(void)
{
	/* What a batch applied but did not commit is not there after a
	 * crash: raftd sends those entries again. */
	store_new();
	CHECK(apply_req(v2req("PUT", "/a", "1"))->v2->status == 201);
	uint64_t applied = mvcc_applied(m);
	Raftpb__Entry *e = entry_of(v2req("PUT", "/b", "2"));
	uint64_t id = 0;
	Ipc__Result *res = NULL;
	CHECK(mvcc_batch_begin(m) == 0);
	CHECK(apply_entry(m, e, &a, &id, &res) == 0);
	CHECK_EQ(v2_index(mvcc_v2(m)), 2);
	reopen();
	CHECK_EQ(mvcc_applied(m), applied);
	CHECK_EQ(v2_index(mvcc_v2(m)), 1);
	struct v2_out o;
	CHECK(v2_get(mvcc_v2(m), "/b", 0, 0, &a, &o) == 0 && o.status == 404);
	/* Applied again, it gives the same answer; applied twice, nothing. */
	next_index = e->index;
	res = apply_one(e);
	CHECK(res && res->v2 && res->v2->status == 201 &&
	      res->v2->etcd_index == 2);
	res = apply_one(e);
	CHECK(res == NULL);
	CHECK_EQ(v2_index(mvcc_v2(m)), 2);
	arena_clear(&a);
	store_destroy();
}

int main(void)
{
	test_apply_and_reload();
	test_uncommitted_batch();
	return 0;
}
