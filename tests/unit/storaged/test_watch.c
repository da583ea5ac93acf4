/*
 * The watch hub over a real store: created answers, live events (one message
 * per revision, each event once, per-watcher hits), key/range/prefix/"\0"
 * matching, filters, prev_kv, history from an old revision in one message at
 * the current revision (also when writes go on during a chunked catch-up),
 * compaction cancels (at create and during catch-up), progress requests and
 * notifications, cancel, clear, resume, and 2,000 watchers at once.
 */
#include <errno.h>

#include "mvcc_helpers.h"
#include "watch.h"

#define MAXMSG 16384

static struct whub *h;
static Ipc__WatchEvents *msgs[MAXMSG];
static size_t nmsgs, taken;
static int too_large;

/* Every message goes through protobuf as it would over the link. */
static int capture(void *arg, const Ipc__WatchEvents *ev)
{
	(void)arg;
	if (too_large)
		return -EMSGSIZE;
	size_t len = ipc__watch_events__get_packed_size(ev);
	uint8_t *buf = malloc(len ? len : 1);
	ipc__watch_events__pack(ev, buf);
	CHECK(nmsgs < MAXMSG);
	msgs[nmsgs] = ipc__watch_events__unpack(NULL, len, buf);
	CHECK(msgs[nmsgs]);
	nmsgs++;
	free(buf);
	return 0;
}

static void drop_msgs(void)
{
	for (size_t i = 0; i < nmsgs; i++)
		ipc__watch_events__free_unpacked(msgs[i], NULL);
	nmsgs = taken = 0;
}

static Ipc__WatchEvents *next_msg(void)
{
	if (taken >= nmsgs) {
		fprintf(stderr, "expected a message, none left\n");
		exit(1);
	}
	return msgs[taken++];
}

static void no_more(void)
{
	CHECK_EQ(nmsgs - taken, 0);
}

static void open_hub(void)
{
	store_new();
	h = whub_new(m, capture, NULL);
	CHECK(h);
}

static void close_hub(void)
{
	whub_free(h);
	h = NULL;
	drop_msgs();
	store_destroy();
}

/* Applied writes reach the hub as storaged hands them over. */
static int64_t P(const char *k, const char *v)
{
	int64_t rev = put(k, v);
	CHECK(whub_apply(h) == 0);
	return rev;
}

static void D(const char *k, const char *end)
{
	del(k, end);
	CHECK(whub_apply(h) == 0);
}

enum { F_PREV = 1, F_NOPUT = 2, F_NODEL = 4, F_PROGRESS = 8, F_RESUME = 16 };

static void create(uint64_t id, const char *key, const char *end, int64_t start,
		   int flags)
{
	Etcdserverpb__WatchCreateRequest r = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
	Etcdserverpb__WatchCreateRequest__FilterType f[2];
	r.key = B(key);
	if (end)
		r.range_end = end[0] ? B(end) : (ProtobufCBinaryData){ 1, (uint8_t *)"" };
	r.start_revision = start;
	r.prev_kv = !!(flags & F_PREV);
	r.progress_notify = !!(flags & F_PROGRESS);
	if (flags & F_NOPUT)
		f[r.n_filters++] = ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NOPUT;
	if (flags & F_NODEL)
		f[r.n_filters++] = ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NODELETE;
	r.filters = f;
	Ipc__WatchCreate c = IPC__WATCH_CREATE__INIT;
	c.watcher = id;
	c.req = &r;
	c.resume = !!(flags & F_RESUME);
	CHECK(whub_create(h, &c) == 0);
}

static void expect_created(uint64_t id, int64_t rev)
{
	Ipc__WatchEvents *e = next_msg();
	CHECK_EQ(e->revision, rev);
	CHECK_EQ(e->n_hits, 1);
	CHECK_EQ(e->hits[0]->watcher, id);
	CHECK(e->hits[0]->created && !e->hits[0]->canceled);
	CHECK_EQ(e->hits[0]->n_events, 0);
}

static void sync_all(void)
{
	int r;
	while ((r = whub_sync(h)) == 1)
		;
	CHECK_EQ(r, 0);
}

static const Ipc__WatchHit *hit_of(const Ipc__WatchEvents *e, uint64_t id)
{
	for (size_t i = 0; i < e->n_hits; i++)
		if (e->hits[i]->watcher == id)
			return e->hits[i];
	return NULL;
}

/* The keys of id's events in e, "+k" for a put and "-k" for a delete. */
static const char *evs_of(const Ipc__WatchEvents *e, uint64_t id)
{
	static char buf[1 << 16];
	const Ipc__WatchHit *hit = hit_of(e, id);
	size_t off = 0;
	buf[0] = 0;
	for (size_t i = 0; hit && i < hit->n_events; i++) {
		CHECK(hit->events[i] < e->n_events);
		const Mvccpb__Event *ev = e->events[hit->events[i]];
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%c%.*s",
					i ? "," : "",
					ev->type == MVCCPB__EVENT__EVENT_TYPE__DELETE ? '-' : '+',
					(int)ev->kv->key.len, (const char *)ev->kv->key.data);
	}
	return buf;
}

#define CHECK_EVS(e, id, s)                                                    \
	do {                                                                   \
		const char *got_ = evs_of((e), (id));                         \
		if (strcmp(got_, (s)) != 0) {                                  \
			fprintf(stderr, "%s:%d: events %s, expected %s\n",     \
				__FILE__, __LINE__, got_, (s));                \
			exit(1);                                               \
		}                                                              \
	} while (0)

static void test_live(void)
{
	open_hub();
	P("a", "0");                             /* rev 2 */
	create(1, "a", NULL, 0, 0);              /* key a */
	create(2, "b", "d", 0, 0);               /* [b, d) */
	create(3, "c", "", 0, 0);                /* >= c */
	create(4, "", "", 0, 0);                 /* every key */
	for (uint64_t i = 1; i <= 4; i++)
		expect_created(i, 2);

	CHECK_EQ(P("a", "1"), 3);
	Ipc__WatchEvents *e = next_msg();
	CHECK_EQ(e->revision, 3);
	CHECK_EQ(e->n_events, 1);
	CHECK_EQ(e->n_hits, 2);
	CHECK_EVS(e, 1, "+a");
	CHECK_EVS(e, 4, "+a");
	Mvccpb__KeyValue *kv = e->events[0]->kv;
	CHECK_STR(kv->value, "1");
	CHECK_EQ(kv->mod_revision, 3);
	CHECK_EQ(kv->create_revision, 2);
	CHECK_EQ(kv->version, 2);
	CHECK(!e->events[0]->prev_kv);

	P("c", "1");                             /* rev 4 */
	e = next_msg();
	CHECK_EQ(e->n_hits, 3);
	CHECK_EVS(e, 2, "+c");
	CHECK_EVS(e, 3, "+c");
	CHECK_EVS(e, 4, "+c");
	P("d", "1");                             /* rev 5: not in [b, d) */
	e = next_msg();
	CHECK(!hit_of(e, 2));
	CHECK_EVS(e, 3, "+d");

	/* A txn: one message, its events in order, each once. */
	Etcdserverpb__PutRequest p1 = ETCDSERVERPB__PUT_REQUEST__INIT, p2 = p1;
	Etcdserverpb__DeleteRangeRequest d1 = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
	p1.key = B("b");
	p2.key = B("zz");
	d1.key = B("a");
	Etcdserverpb__RequestOp o[3] = { ETCDSERVERPB__REQUEST_OP__INIT,
		ETCDSERVERPB__REQUEST_OP__INIT, ETCDSERVERPB__REQUEST_OP__INIT };
	o[0].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	o[0].request_put = &p1;
	o[1].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
	o[1].request_delete_range = &d1;
	o[2].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	o[2].request_put = &p2;
	Etcdserverpb__RequestOp *ops[3] = { &o[0], &o[1], &o[2] };
	Etcdserverpb__TxnRequest t = ETCDSERVERPB__TXN_REQUEST__INIT;
	t.success = ops;
	t.n_success = 3;
	CHECK(!txn(&t)->error);                  /* rev 6 */
	CHECK(whub_apply(h) == 0);
	e = next_msg();
	CHECK_EQ(e->revision, 6);
	CHECK_EQ(e->n_events, 3);
	CHECK_EVS(e, 1, "-a");
	CHECK_EVS(e, 2, "+b");
	CHECK_EVS(e, 3, "+zz");
	CHECK_EVS(e, 4, "+b,-a,+zz");
	/* etcd's DELETE event: the key and the deleting revision. */
	const Ipc__WatchHit *hit = hit_of(e, 1);
	kv = e->events[hit->events[0]]->kv;
	CHECK_EQ(kv->mod_revision, 6);
	CHECK_EQ(kv->create_revision, 0);
	CHECK_EQ(kv->value.len, 0);

	/* Several revisions in one batch: one message each, in order. */
	CHECK(mvcc_batch_begin(m) == 0);
	for (int i = 0; i < 3; i++) {
		Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
		p.key = B(i == 1 ? "x" : "c");
		Etcdserverpb__InternalRaftRequest r = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
		r.put = &p;
		uint64_t id;
		Ipc__Result *res;
		CHECK(apply_entry(m, entry_of(&r), &a, &id, &res) == 0);
	}
	CHECK(mvcc_batch_commit(m) == 0);
	CHECK(whub_apply(h) == 0);
	for (int64_t rev = 7; rev <= 9; rev++) {
		e = next_msg();
		CHECK_EQ(e->revision, rev);
		CHECK_EVS(e, 4, rev == 8 ? "+x" : "+c");
	}
	no_more();

	/* Cancel: nothing more for it. */
	uint64_t ids[2] = { 4, 99 };
	whub_cancel(h, ids, 2);
	P("a", "2");
	e = next_msg();
	CHECK_EQ(e->n_hits, 1);
	CHECK_EVS(e, 1, "+a");
	struct whub_stats st;
	whub_stats(h, &st);
	CHECK_EQ(st.watchers, 3);
	CHECK_EQ(st.unsynced, 0);
	CHECK(st.events > 10);
	whub_clear(h);
	whub_stats(h, &st);
	CHECK_EQ(st.watchers, 0);
	P("a", "3");
	no_more();
	close_hub();
}

static void test_create_rules(void)
{
	open_hub();
	P("a", "1");                             /* rev 2 */
	/* range_end < key: created and canceled at once. */
	create(1, "b", "a", 0, 0);
	Ipc__WatchEvents *e = next_msg();
	CHECK_EQ(e->revision, 2);
	CHECK(e->hits[0]->created && e->hits[0]->canceled);
	CHECK(strcmp(e->hits[0]->cancel_reason, "mvcc: watcher range is empty") == 0);
	create(2, "a", "a", 0, 0);
	CHECK(next_msg()->hits[0]->canceled);

	/* A future start: created, then silence until it is reached. */
	create(3, "a", NULL, 4, 0);
	expect_created(3, 2);
	P("a", "2");                             /* rev 3 */
	no_more();
	P("a", "3");                             /* rev 4 */
	CHECK_EVS(next_msg(), 3, "+a");

	/* Resume: no created; history as any other. */
	create(4, "a", NULL, 3, F_RESUME);
	no_more();
	sync_all();
	e = next_msg();
	CHECK_EQ(e->revision, 4);
	CHECK_EVS(e, 4, "+a,+a");

	/* The same watcher id again replaces the first. */
	create(4, "b", NULL, 0, F_RESUME);
	P("a", "4");
	e = next_msg();
	CHECK(!hit_of(e, 4));
	P("b", "1");
	CHECK_EVS(next_msg(), 4, "+b");

	/* No key is "\0"; "\0" as range end is every key from key on. */
	create(5, "", NULL, 0, F_RESUME);
	create(6, "", "", 0, F_RESUME);
	P("\001", "x");
	e = next_msg();
	CHECK(!hit_of(e, 5));
	CHECK_EVS(e, 6, "+\001");
	close_hub();
}

static void test_filters_prev(void)
{
	open_hub();
	create(1, "k", NULL, 0, F_NOPUT);
	create(2, "k", NULL, 0, F_NODEL | F_PREV);
	create(3, "k", NULL, 0, 0);
	for (uint64_t i = 1; i <= 3; i++)
		expect_created(i, 1);
	P("k", "1");                             /* rev 2 */
	Ipc__WatchEvents *e = next_msg();
	CHECK(!hit_of(e, 1));
	CHECK_EQ(e->n_events, 1);
	CHECK(!e->events[0]->prev_kv);           /* no value before */
	P("k", "2");                             /* rev 3 */
	e = next_msg();
	/* One event, with prev_kv since a watcher wants it; both get it. */
	CHECK_EQ(e->n_events, 1);
	CHECK_EQ(e->n_hits, 2);
	CHECK(e->events[0]->prev_kv);
	CHECK_STR(e->events[0]->prev_kv->value, "1");
	CHECK_EQ(e->events[0]->prev_kv->mod_revision, 2);
	D("k", NULL);                            /* rev 4 */
	e = next_msg();
	CHECK_EQ(e->n_hits, 2);
	CHECK_EVS(e, 1, "-k");
	CHECK_EVS(e, 3, "-k");
	CHECK(!hit_of(e, 2));
	no_more();

	/* History honours filters and prev_kv too. */
	create(4, "k", NULL, 2, F_NOPUT);
	create(5, "k", NULL, 2, F_PREV);
	expect_created(4, 4);
	expect_created(5, 4);
	sync_all();
	e = next_msg();
	CHECK_EQ(e->revision, 4);
	CHECK_EVS(e, 4, "-k");
	CHECK_EVS(e, 5, "+k,+k,-k");
	const Ipc__WatchHit *hit = hit_of(e, 5);
	CHECK(!e->events[hit->events[0]]->prev_kv);
	CHECK_STR(e->events[hit->events[1]]->prev_kv->value, "1");
	CHECK_STR(e->events[hit->events[2]]->prev_kv->value, "2");
	CHECK_EQ(e->events[hit->events[2]]->kv->mod_revision, 4);
	no_more();
	close_hub();
}

static void test_history(void)
{
	open_hub();
	/* More revisions than one catch-up step reads. */
	int total = WATCH_CHUNK + 1000;
	char key[32];
	for (int i = 0; i < total; i++) {
		snprintf(key, sizeof(key), "p/%05d", i);
		P(key, "v");                     /* revs 2 .. total + 1 */
	}
	P("q", "other");
	int64_t cur = mvcc_rev(m);
	create(1, "p/", "p0", 2, 0);
	create(2, "p/00010", NULL, 2, 0);
	create(3, "p/", "p0", cur, 0);           /* only what comes next */
	expect_created(1, cur);
	expect_created(2, cur);
	expect_created(3, cur);
	struct whub_stats st;
	whub_stats(h, &st);
	CHECK_EQ(st.unsynced, 3);

	/* One step, then writes go on while the round is half way. */
	CHECK_EQ(whub_sync(h), 1);
	no_more();
	P("p/new", "1");
	P("p/00010", "again");
	no_more();                               /* unsynced: nothing live */
	sync_all();
	/* Everything in one message at the current revision. */
	Ipc__WatchEvents *e = next_msg();
	CHECK_EQ(e->revision, mvcc_rev(m));
	const Ipc__WatchHit *hit = hit_of(e, 1);
	CHECK_EQ(hit->n_events, total + 2);
	int64_t last = 0;
	for (size_t i = 0; i < hit->n_events; i++) {
		int64_t rev = e->events[hit->events[i]]->kv->mod_revision;
		CHECK(rev > last);
		last = rev;
	}
	CHECK_EQ(last, mvcc_rev(m));
	CHECK_EVS(e, 2, "+p/00010,+p/00010");
	CHECK_EVS(e, 3, "+p/new,+p/00010");
	no_more();
	whub_stats(h, &st);
	CHECK_EQ(st.unsynced, 0);

	/* Synced now: the next write arrives once, live. */
	P("p/z", "1");
	e = next_msg();
	CHECK_EQ(e->revision, mvcc_rev(m));
	CHECK_EVS(e, 1, "+p/z");
	CHECK_EVS(e, 3, "+p/z");
	no_more();
	close_hub();
}

static void test_compaction(void)
{
	open_hub();
	for (int i = 0; i < 5; i++)
		P("k", "v");                     /* revs 2..6 */
	CHECK(!compact(4)->error);
	/* Below the compaction: created, then canceled, header without
	 * revision. */
	create(1, "k", NULL, 3, 0);
	expect_created(1, 6);
	Ipc__WatchEvents *e = next_msg();
	CHECK_EQ(e->revision, 0);
	CHECK(e->hits[0]->canceled);
	CHECK_EQ(e->hits[0]->compact_revision, 4);
	/* At the compaction: history from there. */
	create(2, "k", NULL, 4, 0);
	expect_created(2, 6);
	sync_all();
	e = next_msg();
	CHECK_EVS(e, 2, "+k,+k,+k");
	no_more();

	/* A compaction while a watcher catches up cancels it. */
	char key[32];
	for (int i = 0; i < WATCH_CHUNK + 100; i++) {
		snprintf(key, sizeof(key), "x%05d", i);
		P(key, "v");
	}
	drop_msgs();
	create(3, "x", "y", 7, 0);
	expect_created(3, mvcc_rev(m));
	CHECK_EQ(whub_sync(h), 1);
	CHECK(!compact(mvcc_rev(m) - 10)->error);
	CHECK_EQ(whub_sync(h), 0);
	e = next_msg();
	CHECK_EQ(e->hits[0]->watcher, 3);
	CHECK(e->hits[0]->canceled);
	CHECK_EQ(e->hits[0]->compact_revision, mvcc_rev(m) - 10);
	no_more();
	struct whub_stats st;
	whub_stats(h, &st);
	CHECK_EQ(st.watchers, 1);
	close_hub();
}

static void test_progress(void)
{
	open_hub();
	P("a", "1");                             /* rev 2 */
	create(1, "a", NULL, 0, F_PROGRESS);
	create(2, "b", NULL, 0, F_PROGRESS);
	create(3, "a", NULL, 2, 0);              /* unsynced */
	drop_msgs();
	uint64_t ids[3] = { 1, 3, 77 };
	whub_progress(h, ids, 3);
	Ipc__WatchEvents *e = next_msg();
	CHECK_EQ(e->revision, 2);
	CHECK_EQ(e->n_hits, 1);
	CHECK(e->hits[0]->watcher == 1 && e->hits[0]->progress);
	no_more();
	/* The unsynced one answers once synced, after its history. */
	sync_all();
	e = next_msg();
	CHECK_EVS(e, 3, "+a");
	e = next_msg();
	CHECK(e->hits[0]->watcher == 3 && e->hits[0]->progress);
	CHECK_EQ(e->revision, 2);
	no_more();

	/* Notifications: only to idle watchers that asked. */
	P("a", "2");
	drop_msgs();
	whub_progress_notify(h);
	e = next_msg();
	CHECK_EQ(e->n_hits, 1);
	CHECK(e->hits[0]->watcher == 2 && e->hits[0]->progress);
	whub_progress_notify(h);
	e = next_msg();
	CHECK_EQ(e->n_hits, 2);
	no_more();
	close_hub();
}

static void test_many(void)
{
	open_hub();
	char key[32];
	/* 1,000 watchers on one prefix and 1,000 on single keys. */
	for (uint64_t i = 0; i < 1000; i++)
		create(1000 + i, "pre/", "pre0", 0, i % 2 ? F_PREV : 0);
	for (uint64_t i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "pre/%04d", (int)i);
		create(5000 + i, key, NULL, 0, 0);
	}
	CHECK_EQ(nmsgs, 2000);
	drop_msgs();
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 1000; i++) {
			snprintf(key, sizeof(key), "pre/%04d", i);
			P(key, "v");
			Ipc__WatchEvents *e = next_msg();
			CHECK_EQ(e->n_events, 1);
			CHECK_EQ(e->n_hits, 1001);
			CHECK(hit_of(e, 5000 + (uint64_t)i));
			CHECK_EQ(!!e->events[0]->prev_kv, round > 0);
			drop_msgs();
		}
	struct whub_stats st;
	whub_stats(h, &st);
	CHECK_EQ(st.watchers, 2000);
	CHECK_EQ(st.events, 3000 * 1001);

	/* A frame too large cancels the watchers of that message. */
	too_large = 1;
	P("pre/0001", "big");
	too_large = 0;
	whub_stats(h, &st);
	CHECK_EQ(st.watchers, 999);
	close_hub();
}

int main(void)
{
	test_live();
	test_create_rules();
	test_filters_prev();
	test_history();
	test_compaction();
	test_progress();
	test_many();
	return 0;
}
