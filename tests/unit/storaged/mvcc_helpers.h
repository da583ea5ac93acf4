/*
 * Helpers of the MVCC tests: a store in a temporary directory, and requests
 * applied the way storaged applies them (as Raft entries carrying a packed
 * InternalRaftRequest, one batch each unless said otherwise).
 */
#ifndef TESTS_STORAGED_MVCC_HELPERS_H
#define TESTS_STORAGED_MVCC_HELPERS_H

#include <stdint.h>
#include <unistd.h>

#include "apply.h"
#include "check.h"
#include "mvcc.h"
#include "raft_internal.pb-c.h"

static __attribute__((unused)) struct mvcc *m;
static __attribute__((unused)) struct arena a;
static char dbdir[256];
static uint64_t next_index = 1;

static __attribute__((unused)) inline ProtobufCBinaryData B(const char *s)
{
	ProtobufCBinaryData b = { strlen(s), (uint8_t *)s };
	return b;
}

static __attribute__((unused)) void store_open(void)
{
	char *err = NULL;
	int r = mvcc_open(dbdir, NULL, &m, &err);
	if (r < 0)
		fprintf(stderr, "mvcc_open: %s\n", err ? err : "?");
	CHECK(r == 0);
	next_index = mvcc_applied(m) + 1;
}

/* A failed check exits: the temporary directory goes anyway. */
static void remove_dbdir(void)
{
	char cmd[300];
	if (!dbdir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dbdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dbdir);
	dbdir[0] = 0;
}

static __attribute__((unused)) void store_new(void)
{
	static int registered;
	if (!registered++)
		atexit(remove_dbdir);
	snprintf(dbdir, sizeof(dbdir), "/tmp/test-storaged-XXXXXX");
	CHECK(mkdtemp(dbdir));
	arena_init(&a, 0);
	store_open();
}

static __attribute__((unused)) void store_destroy(void)
{
	mvcc_close(m);
	m = NULL;
	remove_dbdir();
	arena_done(&a);
}

/* An entry holding r, at the next index (bytes in the arena). */
static Raftpb__Entry *entry_of(Etcdserverpb__InternalRaftRequest *r)
{
	Raftpb__Entry *e = ARENA_NEW(&a, Raftpb__Entry, RAFTPB__ENTRY__INIT);
	e->index = next_index++;
	e->term = 2;
	e->type = RAFTPB__ENTRY_TYPE__EntryNormal;
	e->data.len = etcdserverpb__internal_raft_request__get_packed_size(r);
	e->data.data = arena_alloc(&a, e->data.len);
	etcdserverpb__internal_raft_request__pack(r, e->data.data);
	return e;
}

static __attribute__((unused)) Ipc__Result *apply_one(Raftpb__Entry *e)
{
	uint64_t id = 0;
	Ipc__Result *res = NULL;
	CHECK(mvcc_batch_begin(m) == 0);
	CHECK(apply_entry(m, e, &a, &id, &res) == 0);
	CHECK(mvcc_batch_commit(m) == 0);
	return res;
}

static __attribute__((unused)) Ipc__Result *apply_req(Etcdserverpb__InternalRaftRequest *r)
{
	r->id = next_index;
	return apply_one(entry_of(r));
}

static __attribute__((unused)) void check_err(const Ipc__Result *res, uint32_t code, const char *msg)
{
	CHECK(res && res->error);
	CHECK_EQ(res->error->code, code);
	if (strcmp(res->error->message, msg) != 0) {
		fprintf(stderr, "error \"%s\", expected \"%s\"\n",
			res->error->message, msg);
		exit(1);
	}
}

static __attribute__((unused)) Ipc__Result *put_full(Etcdserverpb__PutRequest *p)
{
	Etcdserverpb__InternalRaftRequest r = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	r.put = p;
	return apply_req(&r);
}

/* Puts k=v and returns the revision of the write. */
static __attribute__((unused)) int64_t put(const char *k, const char *v)
{
	Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
	p.key = B(k);
	p.value = B(v);
	Ipc__Result *res = put_full(&p);
	CHECK(res && !res->error && res->response_case == IPC__RESULT__RESPONSE_PUT);
	return res->put->header->revision;
}

static __attribute__((unused)) Ipc__Result *del_full(Etcdserverpb__DeleteRangeRequest *d)
{
	Etcdserverpb__InternalRaftRequest r = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	r.delete_range = d;
	return apply_req(&r);
}

static __attribute__((unused)) Etcdserverpb__DeleteRangeResponse *del(const char *k, const char *end)
{
	Etcdserverpb__DeleteRangeRequest d = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
	d.key = B(k);
	if (end) /* "" stands for "\0": every key from k on */
		d.range_end = end[0] ? B(end) : (ProtobufCBinaryData){ 1, (uint8_t *)"" };
	Ipc__Result *res = del_full(&d);
	CHECK(res && !res->error);
	return res->delete_range;
}

static __attribute__((unused)) Ipc__Result *compact(int64_t rev)
{
	Etcdserverpb__CompactionRequest c = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
	c.revision = rev;
	Etcdserverpb__InternalRaftRequest r = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	r.compaction = &c;
	return apply_req(&r);
}

static __attribute__((unused)) Ipc__Result *txn(Etcdserverpb__TxnRequest *t)
{
	Etcdserverpb__InternalRaftRequest r = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	r.txn = t;
	return apply_req(&r);
}

/* A range read (as a query: outside any batch). */
static __attribute__((unused)) Etcdserverpb__RangeResponse *range_full(Etcdserverpb__RangeRequest *q,
					       int *ret_err)
{
	Etcdserverpb__RangeResponse *resp = NULL;
	int err = mvcc_range(m, q, &a, &resp);
	if (ret_err)
		*ret_err = err;
	else
		CHECK(err == 0);
	return resp;
}

static __attribute__((unused)) Etcdserverpb__RangeResponse *range(const char *k, const char *end)
{
	Etcdserverpb__RangeRequest q = ETCDSERVERPB__RANGE_REQUEST__INIT;
	q.key = B(k);
	if (end)
		q.range_end = end[0] ? B(end) : (ProtobufCBinaryData){ 1, (uint8_t *)"" };
	return range_full(&q, NULL);
}

/* The keys of a response, joined by ",". */
static __attribute__((unused)) const char *keys_of(Mvccpb__KeyValue **kvs, size_t n)
{
	static char buf[4096];
	size_t off = 0;
	buf[0] = 0;
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%.*s",
					i ? "," : "", (int)kvs[i]->key.len,
					(const char *)kvs[i]->key.data);
	return buf;
}

#define CHECK_KEYS(resp, s) CHECK(strcmp(keys_of((resp)->kvs, (resp)->n_kvs), s) == 0)

#endif
