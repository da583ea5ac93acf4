/*
 * Snapshots, storaged's library part: a checkpoint made from a store with
 * keys, leases, members and a compaction; its files fed as chunks into a
 * receiver and installed in place of an older store, which then equals the
 * source, while watchers continue without gap or duplicate (or are canceled
 * when the new store compacted what they need); a flipped byte refused by
 * the checksum; the receiver's other refusals (order, names, files sent
 * twice, limits, chunks of a failed transfer, a new transfer replacing an
 * unfinished one); a transfer for a store already past the snapshot; the
 * apply of members' publish; recovery of interrupted installs at start.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "lease.h"
#include "mvcc_helpers.h"
#include "snap.h"
#include "watch.h"

static char root[] = "/tmp/test-snap-XXXXXX";
static char rdir[300], sdir[300]; /* member dirs: receiver, source */

/* root-relative paths, a few alive at once. */
static const char *path(const char *dir, const char *sub)
{
	static char buf[8][512];
	static int i;
	char *p = buf[i++ % 8];
	snprintf(p, sizeof(buf[0]), "%s/%s", dir, sub);
	return p;
}

static int exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

static int entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

static void sh(const char *fmt, const char *a1, const char *a2)
{
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), fmt, a1, a2);
	CHECK(system(cmd) == 0);
}

static void cleanup(void)
{
	char cmd[100];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", root);
}

static struct mvcc *open_at(const char *dir)
{
	struct mvcc *x;
	char *err = NULL;
	int r = mvcc_open(dir, NULL, &x, &err);
	if (r < 0)
		fprintf(stderr, "mvcc_open %s: %s\n", dir, err ? err : "?");
	CHECK(r == 0);
	return x;
}

/* The helpers of mvcc_helpers.h write to m. */
static void use(struct mvcc *x)
{
	m = x;
	next_index = mvcc_applied(x) + 1;
}

/* --- the store's writes --- */

static void conf_change(uint64_t id, const char *peer)
{
	Etcdserverpb__Member mb = ETCDSERVERPB__MEMBER__INIT;
	char *peers[1] = { (char *)peer };
	mb.id = id;
	mb.peerurls = peers;
	mb.n_peerurls = 1;
	Raftpb__ConfChange cc = RAFTPB__CONF_CHANGE__INIT;
	cc.nodeid = id;
	cc.context.len = etcdserverpb__member__get_packed_size(&mb);
	cc.context.data = arena_alloc(&a, cc.context.len);
	etcdserverpb__member__pack(&mb, cc.context.data);
	Raftpb__Entry *e = ARENA_NEW(&a, Raftpb__Entry, RAFTPB__ENTRY__INIT);
	e->index = next_index++;
	e->term = 2;
	e->type = RAFTPB__ENTRY_TYPE__EntryConfChange;
	e->data.len = raftpb__conf_change__get_packed_size(&cc);
	e->data.data = arena_alloc(&a, e->data.len);
	raftpb__conf_change__pack(&cc, e->data.data);
	apply_one(e);
}

static void publish(uint64_t id, const char *name, const char *url)
{
	char *urls[1] = { (char *)url };
	Etcdserverpb__Attributes at = ETCDSERVERPB__ATTRIBUTES__INIT;
	at.name = (char *)name;
	at.client_urls = urls;
	at.n_client_urls = 1;
	Etcdserverpb__ClusterMemberAttrSetRequest set =
		ETCDSERVERPB__CLUSTER_MEMBER_ATTR_SET_REQUEST__INIT;
	set.member_id = id;
	set.member_attributes = &at;
	Etcdserverpb__InternalRaftRequest r = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	r.cluster_member_attr_set = &set;
	Ipc__Result *res = apply_req(&r);
	CHECK(res && !res->error);
	CHECK_EQ(res->response_case, IPC__RESULT__RESPONSE__NOT_SET);
}

static void grant(int64_t id, int64_t ttl)
{
	Etcdserverpb__LeaseGrantRequest g = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
	g.id = id;
	g.ttl = ttl;
	Etcdserverpb__InternalRaftRequest r = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	r.lease_grant = &g;
	Ipc__Result *res = apply_req(&r);
	CHECK(res && !res->error);
}

static void put_lease(const char *k, int64_t lease)
{
	Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
	p.key = B(k);
	p.value = B("v");
	p.lease = lease;
	Ipc__Result *res = put_full(&p);
	CHECK(res && !res->error);
}

/* --- comparing stores --- */

static size_t packed(const ProtobufCMessage *msg, uint8_t **ret)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	*ret = arena_alloc(&a, len + 1);
	protobuf_c_message_pack(msg, *ret);
	return len;
}

static void same_msg(const ProtobufCMessage *x, const ProtobufCMessage *y)
{
	uint8_t *bx, *by;
	size_t lx = packed(x, &bx), ly = packed(y, &by);
	CHECK(lx == ly && memcmp(bx, by, lx) == 0);
}

static void same_range(struct mvcc *x, struct mvcc *y, int64_t rev)
{
	Etcdserverpb__RangeRequest q = ETCDSERVERPB__RANGE_REQUEST__INIT;
	q.key = (ProtobufCBinaryData){ 1, (uint8_t *)"" };
	q.range_end = q.key;
	q.revision = rev;
	Etcdserverpb__RangeResponse *rx, *ry;
	CHECK(mvcc_range(x, &q, &a, &rx) == 0);
	CHECK(mvcc_range(y, &q, &a, &ry) == 0);
	same_msg(&rx->base, &ry->base);
}

static void same_store(struct mvcc *x, struct mvcc *y)
{
	CHECK_EQ(mvcc_applied(x), mvcc_applied(y));
	CHECK_EQ(mvcc_rev(x), mvcc_rev(y));
	CHECK_EQ(mvcc_compact_rev(x), mvcc_compact_rev(y));
	CHECK_EQ(mvcc_key_count(x), mvcc_key_count(y));
	CHECK_EQ(mvcc_live_keys(x), mvcc_live_keys(y));
	same_range(x, y, 0);
	same_range(x, y, mvcc_compact_rev(x));

	Etcdserverpb__LeaseLeasesResponse *lx, *ly;
	CHECK(lessor_leases(x, &a, &lx) == 0);
	CHECK(lessor_leases(y, &a, &ly) == 0);
	CHECK_EQ(lx->n_leases, ly->n_leases);
	for (size_t i = 0; i < lx->n_leases; i++) {
		Etcdserverpb__LeaseTimeToLiveRequest t =
			ETCDSERVERPB__LEASE_TIME_TO_LIVE_REQUEST__INIT;
		t.id = lx->leases[i]->id;
		t.keys = 1;
		Etcdserverpb__LeaseTimeToLiveResponse *tx, *ty;
		CHECK(lessor_time_to_live(x, &t, &a, &tx) == 0);
		CHECK(lessor_time_to_live(y, &t, &a, &ty) == 0);
		CHECK(ty->ttl != -1);
		CHECK_EQ(tx->grantedttl, ty->grantedttl);
		CHECK_EQ(tx->n_keys, ty->n_keys);
		for (size_t k = 0; k < tx->n_keys; k++)
			CHECK(tx->keys[k].len == ty->keys[k].len &&
			      !memcmp(tx->keys[k].data, ty->keys[k].data,
				      tx->keys[k].len));
	}

	Etcdserverpb__Member **mx, **my;
	size_t nx, ny;
	CHECK(mvcc_member_list(x, &a, &mx, &nx) == 0);
	CHECK(mvcc_member_list(y, &a, &my, &ny) == 0);
	CHECK_EQ(nx, ny);
	for (size_t i = 0; i < nx; i++)
		same_msg(&mx[i]->base, &my[i]->base);
}

/* --- snapshots --- */

#define FILES_MAX 256

struct blob {
	char name[SNAP_NAME_MAX + 1];
	uint8_t *data;
	size_t len;
};

static struct blob snapf[FILES_MAX];
static size_t nsnapf;
static uint64_t snap_applied;

/* Makes a snapshot of src and reads its files through the descriptors. */
static void snapshot(struct mvcc *src)
{
	for (size_t i = 0; i < nsnapf; i++)
		free(snapf[i].data);
	nsnapf = 0;
	struct snap_files *f = NULL;
	char *err = NULL;
	int r = snap_make(src, path(sdir, SNAP_DIR), &f, &err);
	if (r < 0)
		fprintf(stderr, "snap_make: %s\n", err ? err : strerror(-r));
	CHECK(r == 0);
	CHECK(f->n > 0 && f->n <= FILES_MAX);
	int current = 0;
	for (size_t i = 0; i < f->n; i++) {
		struct snap_file *sf = &f->v[i];
		struct blob *b = &snapf[nsnapf++];
		if (i)
			CHECK(strcmp(f->v[i - 1].name, sf->name) < 0);
		current |= !strcmp(sf->name, "CURRENT");
		snprintf(b->name, sizeof(b->name), "%s", sf->name);
		b->len = sf->size;
		b->data = malloc(b->len + 1);
		size_t off = 0;
		while (off < b->len) {
			ssize_t n = pread(sf->fd, b->data + off, b->len - off,
					  (off_t)off);
			CHECK(n > 0);
			off += (size_t)n;
		}
		CHECK(pread(sf->fd, b->data, 1, (off_t)off) == 0);
		/* Read-only. */
		CHECK(write(sf->fd, "x", 1) < 0);
	}
	CHECK(current);
	snap_applied = f->applied;
	CHECK_EQ(snap_applied, mvcc_applied(src));
	snap_files_free(f);
	/* The checkpoint directory is gone; the descriptors kept the files. */
	CHECK_EQ(entries(path(sdir, SNAP_DIR)), 0);
}

static void checksum(uint8_t out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int len;
	CHECK(EVP_DigestInit_ex(md, EVP_sha256(), NULL));
	for (size_t i = 0; i < nsnapf; i++) {
		EVP_DigestUpdate(md, snapf[i].name, strlen(snapf[i].name) + 1);
		EVP_DigestUpdate(md, snapf[i].data, snapf[i].len);
	}
	CHECK(EVP_DigestFinal_ex(md, out, &len) && len == 32);
	EVP_MD_CTX_free(md);
}

/*
 * Feeds the snapshot as transfer id, in chunks of at most chunk bytes, with
 * byte flip (of all contents in a row; -1: none) flipped. Returns what the
 * done chunk returned.
 */
static int feed(struct snap_recv *r, uint64_t id, uint64_t index,
		uint64_t applied, size_t chunk, long flip, const char **msg)
{
	uint8_t sum[32];
	long pos = 0;
	checksum(sum);
	for (size_t i = 0; i < nsnapf; i++) {
		const struct blob *b = &snapf[i];
		size_t off = 0;
		do {
			size_t n = b->len - off < chunk ? b->len - off : chunk;
			uint8_t *tmp = malloc(n + 1);
			memcpy(tmp, b->data + off, n);
			if (flip >= pos + (long)off && flip < pos + (long)(off + n))
				tmp[flip - pos - (long)off] ^= 1;
			Ipc__SnapChunk c = IPC__SNAP_CHUNK__INIT;
			c.from = 1;
			c.index = index;
			c.term = 2;
			c.name = (char *)b->name;
			c.offset = off;
			c.data = (ProtobufCBinaryData){ n, tmp };
			int ret = snap_recv_chunk(r, id, &c, applied, msg);
			free(tmp);
			CHECK_EQ(ret, 0);
			off += n;
		} while (off < b->len);
		pos += (long)b->len;
	}
	Ipc__SnapChunk c = IPC__SNAP_CHUNK__INIT;
	c.from = 1;
	c.index = index;
	c.term = 2;
	c.done = 1;
	c.sha256 = (ProtobufCBinaryData){ 32, sum };
	return snap_recv_chunk(r, id, &c, applied, msg);
}

static long total_bytes(void)
{
	long n = 0;
	for (size_t i = 0; i < nsnapf; i++)
		n += (long)snapf[i].len;
	return n;
}

/* --- the receiver's watchers --- */

#define MAXMSG 256
static Ipc__WatchEvents *msgs[MAXMSG];
static size_t nmsgs;

static int capture(void *arg, const Ipc__WatchEvents *ev)
{
	(void)arg;
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
	nmsgs = 0;
}

static void watch(struct whub *h, uint64_t id, const char *key,
		  const char *end, int64_t start)
{
	Etcdserverpb__WatchCreateRequest r = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
	r.key = B(key);
	if (end)
		r.range_end = B(end);
	r.start_revision = start;
	Ipc__WatchCreate c = IPC__WATCH_CREATE__INIT;
	c.watcher = id;
	c.req = &r;
	c.resume = 1;
	CHECK(whub_create(h, &c) == 0);
}

static void sync_all(struct whub *h)
{
	int r;
	while ((r = whub_sync(h)) == 1)
		;
	CHECK_EQ(r, 0);
}

/* What watcher id got in the captured messages: "+key@rev" or "-key@rev",
 * comma-separated, then "!C" for a compaction cancel at C. */
static const char *got(uint64_t id)
{
	static char buf[4096];
	size_t off = 0;
	buf[0] = 0;
	for (size_t i = 0; i < nmsgs; i++)
		for (size_t j = 0; j < msgs[i]->n_hits; j++) {
			const Ipc__WatchHit *hit = msgs[i]->hits[j];
			if (hit->watcher != id)
				continue;
			for (size_t k = 0; k < hit->n_events; k++) {
				const Mvccpb__Event *ev = msgs[i]->events[hit->events[k]];
				off += (size_t)snprintf(
					buf + off, sizeof(buf) - off, "%s%c%.*s@%lld",
					off ? "," : "",
					ev->type == MVCCPB__EVENT__EVENT_TYPE__DELETE ? '-' : '+',
					(int)ev->kv->key.len,
					(const char *)ev->kv->key.data,
					(long long)ev->kv->mod_revision);
			}
			if (hit->canceled)
				off += (size_t)snprintf(buf + off, sizeof(buf) - off,
							"%s!%lld", off ? "," : "",
							(long long)hit->compact_revision);
		}
	return buf;
}

#define CHECK_GOT(id, s)                                                       \
	do {                                                                   \
		const char *g_ = got(id);                                      \
		if (strcmp(g_, (s)) != 0) {                                    \
			fprintf(stderr, "%s:%d: watcher %d got %s, expected %s\n", \
				__FILE__, __LINE__, (int)(id), g_, (s));       \
			exit(1);                                               \
		}                                                              \
	} while (0)

/* Installs the received snapshot in place of old (closed here). */
static struct mvcc *install_into(struct mvcc *old, struct whub *h)
{
	int64_t seen = mvcc_rev(old);
	mvcc_close(old);
	CHECK(snap_install(rdir) == 0);
	CHECK(!exists(path(rdir, SNAP_DB_OLD)));
	CHECK(!exists(path(rdir, SNAP_DIR "/" SNAP_INCOMING)));
	struct mvcc *n = open_at(path(rdir, SNAP_DB));
	if (h)
		whub_rebase(h, n, seen);
	return n;
}

static void test_install(void)
{
	/* The receiver's store is a prefix of the source's history. */
	struct mvcc *rm = open_at(path(rdir, SNAP_DB));
	use(rm);
	conf_change(1, "http://127.0.0.1:2380");   /* index 1 */
	CHECK_EQ(put("w", "a"), 2);
	CHECK_EQ(put("x", "1"), 3);
	mvcc_close(rm);
	sh("cp -a %s %s", path(rdir, SNAP_DB), path(sdir, SNAP_DB));
	rm = open_at(path(rdir, SNAP_DB));
	struct mvcc *sm = open_at(path(sdir, SNAP_DB));

	use(sm);
	conf_change(2, "http://127.0.0.2:2380");
	publish(1, "n1", "http://127.0.0.1:2379");
	/* A member that is not (or no longer) there: ignored. */
	publish(0x99, "ghost", "http://127.0.0.9:2379");
	Etcdserverpb__Member *mb;
	CHECK(mvcc_member_get(sm, 0x99, &a, &mb) == -ENOENT);
	CHECK_EQ(mvcc_member_attr_equal(sm, 1, "n1",
					(char *[]){ "http://127.0.0.1:2379" }, 1), 1);
	CHECK_EQ(mvcc_member_attr_equal(sm, 2, "n2",
					(char *[]){ "http://127.0.0.2:2379" }, 1), 0);
	grant(5, 60);
	grant(6, 100);
	put_lease("k1", 5);                       /* rev 4 */
	put_lease("k2", 5);                       /* rev 5 */
	CHECK_EQ(put("w", "b"), 6);
	CHECK_EQ(put("w", "c"), 7);
	del("x", NULL);                           /* rev 8 */
	CHECK(compact(4) && mvcc_compact_rev(sm) == 4);
	CHECK_EQ(put("w", "d"), 9);

	/* The receiver's watchers: "w" from now, "x" caught up from 2, the
	 * "k" range from now. */
	struct whub *h = whub_new(rm, capture, NULL);
	CHECK(h);
	watch(h, 1, "w", NULL, 0);
	watch(h, 2, "x", NULL, 2);
	watch(h, 3, "k", "l", 0);
	sync_all(h);
	CHECK_GOT(2, "+x@3");
	drop_msgs();

	snapshot(sm);
	struct snap_recv *r = snap_recv_new(path(rdir, SNAP_DIR));
	CHECK(r);
	const char *msg = NULL;

	/* One flipped byte: refused at done, nothing left behind, and the
	 * transfer's later chunks are refused too. */
	CHECK_EQ(feed(r, 100, snap_applied, mvcc_applied(rm), 4096,
		      total_bytes() / 2, &msg), -EBADMSG);
	CHECK(!strcmp(msg, "snapshot: checksum mismatch"));
	CHECK_EQ(entries(path(rdir, SNAP_DIR)), 0);
	Ipc__SnapChunk c = IPC__SNAP_CHUNK__INIT;
	c.name = "CURRENT";
	CHECK_EQ(snap_recv_chunk(r, 100, &c, 0, &msg), -EINVAL);
	CHECK(!strcmp(msg, "snapshot: transfer already failed"));
	CHECK_EQ(mvcc_applied(rm), 3);

	/* The same, whole: installed, the store is the source's. */
	CHECK_EQ(feed(r, 101, snap_applied, mvcc_applied(rm), 1000, -1, &msg),
		 SNAP_RECV_COMPLETE);
	CHECK(snap_recv_written(r));
	CHECK_EQ(entries(path(rdir, SNAP_DIR "/" SNAP_INCOMING)), (int)nsnapf);
	rm = install_into(rm, h);
	snap_recv_finish(r);
	same_store(rm, sm);

	/* The watchers continue from the new store: every revision after
	 * the one they had seen, once. */
	sync_all(h);
	CHECK_GOT(1, "+w@6,+w@7,+w@9");
	CHECK_GOT(2, "-x@8");
	CHECK_GOT(3, "+k1@4,+k2@5");
	drop_msgs();

	/* The same entry applied on both: live events go on. */
	use(sm);
	CHECK_EQ(put("w", "e"), 10);
	use(rm);
	CHECK_EQ(put("w", "e"), 10);
	CHECK(whub_apply(h) == 0);
	CHECK_GOT(1, "+w@10");
	drop_msgs();
	same_store(rm, sm);

	/* A transfer for a store already past the snapshot is checked, not
	 * written: nothing to install. */
	snapshot(sm);
	CHECK_EQ(feed(r, 102, snap_applied, mvcc_applied(rm), 1 << 20, -1, &msg),
		 SNAP_RECV_COMPLETE);
	CHECK(!snap_recv_written(r));
	snap_recv_finish(r);
	CHECK_EQ(entries(path(rdir, SNAP_DIR)), 0);

	/* The source compacts past what the watchers have seen: after the
	 * install, each is canceled with the new compacted revision. */
	use(sm);
	CHECK_EQ(put("w", "f"), 11);
	CHECK_EQ(put("w", "g"), 12);
	CHECK(compact(12));
	snapshot(sm);
	CHECK_EQ(feed(r, 103, snap_applied, mvcc_applied(rm), 1 << 20, -1, &msg),
		 SNAP_RECV_COMPLETE);
	rm = install_into(rm, h);
	snap_recv_finish(r);
	same_store(rm, sm);
	sync_all(h);
	CHECK_GOT(1, "!12");
	CHECK_GOT(2, "!12");
	CHECK_GOT(3, "!12");
	struct whub_stats ws;
	whub_stats(h, &ws);
	CHECK_EQ(ws.watchers, 0);
	drop_msgs();

	snap_recv_free(r);
	whub_free(h);
	mvcc_close(rm);
	mvcc_close(sm);
	m = NULL;
	for (size_t i = 0; i < nsnapf; i++)
		free(snapf[i].data);
	nsnapf = 0;
}

/* --- refusals --- */

static int ch(struct snap_recv *r, uint64_t id, const char *name,
	      uint64_t off, const char *data, const char **msg)
{
	Ipc__SnapChunk c = IPC__SNAP_CHUNK__INIT;
	c.from = 1;
	c.index = 50;
	c.term = 2;
	c.name = (char *)name;
	c.offset = off;
	c.data = (ProtobufCBinaryData){ strlen(data), (uint8_t *)data };
	return snap_recv_chunk(r, id, &c, 10, msg);
}

static int done(struct snap_recv *r, uint64_t id, const char *const *names,
		const char *const *datas, size_t n, const char **msg)
{
	uint8_t sum[32];
	unsigned int len;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	for (size_t i = 0; i < n; i++) {
		EVP_DigestUpdate(md, names[i], strlen(names[i]) + 1);
		EVP_DigestUpdate(md, datas[i], strlen(datas[i]));
	}
	EVP_DigestFinal_ex(md, sum, &len);
	EVP_MD_CTX_free(md);
	Ipc__SnapChunk c = IPC__SNAP_CHUNK__INIT;
	c.from = 1;
	c.index = 50;
	c.term = 2;
	c.done = 1;
	c.sha256 = (ProtobufCBinaryData){ 32, sum };
	return snap_recv_chunk(r, id, &c, 10, msg);
}

static void test_refusals(void)
{
	const char *inc = path(rdir, SNAP_DIR "/" SNAP_INCOMING);
	struct snap_recv *r = snap_recv_new(path(rdir, SNAP_DIR));
	const char *msg;
	CHECK(r);

	/* A transfer begins with a file at offset 0, naming its snapshot. */
	Ipc__SnapChunk c = IPC__SNAP_CHUNK__INIT;
	c.name = "a";
	CHECK_EQ(snap_recv_chunk(r, 90, &c, 10, &msg), -EINVAL);
	CHECK(!strcmp(msg, "snapshot: no index"));
	CHECK_EQ(ch(r, 1, "a", 5, "x", &msg), -EINVAL);
	CHECK(!strcmp(msg, "snapshot: transfer does not begin at a file's start"));
	CHECK_EQ(done(r, 2, NULL, NULL, 0, &msg), -EINVAL);

	/* Offsets follow each other without holes or repeats. */
	CHECK_EQ(ch(r, 3, "a", 0, "xx", &msg), 0);
	CHECK_EQ(ch(r, 3, "a", 2, "yy", &msg), 0);
	CHECK_EQ(ch(r, 3, "a", 2, "yy", &msg), -EINVAL);
	CHECK(!strcmp(msg, "snapshot: chunk out of order"));
	CHECK(!exists(inc));
	CHECK_EQ(ch(r, 3, "a", 4, "zz", &msg), -EINVAL);
	CHECK_EQ(ch(r, 4, "a", 0, "xx", &msg), 0);
	CHECK_EQ(ch(r, 4, "b", 1, "xx", &msg), -EINVAL);

	/* Plain names only. */
	char longname[SNAP_NAME_MAX + 2];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	const char *bad[] = { "", ".", "..", "a/b", "../db", longname };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ(ch(r, 10 + i, bad[i], 0, "x", &msg), -EINVAL);
		CHECK(!strcmp(msg, "snapshot: bad file name"));
	}
	longname[SNAP_NAME_MAX] = 0;
	CHECK_EQ(ch(r, 20, longname, 0, "x", &msg), 0);

	/* A file sent twice. */
	CHECK_EQ(ch(r, 21, "a", 0, "x", &msg), 0);
	CHECK_EQ(ch(r, 21, "b", 0, "x", &msg), 0);
	CHECK_EQ(ch(r, 21, "a", 0, "x", &msg), -EINVAL);
	CHECK(!strcmp(msg, "snapshot: file sent twice"));

	/* A new transfer replaces an unfinished one, whose files go. */
	CHECK_EQ(ch(r, 22, "a", 0, "x", &msg), 0);
	CHECK_EQ(ch(r, 23, "b", 0, "x", &msg), 0);
	CHECK_EQ(entries(inc), 1);
	CHECK(exists(path(inc, "b")));
	/* A stale chunk of a failed transfer leaves the current one be. */
	CHECK_EQ(ch(r, 21, "c", 0, "x", &msg), -EINVAL);
	CHECK_EQ(ch(r, 23, "b", 1, "y", &msg), 0);
	/* Chunks of one transfer are of one snapshot. */
	c = (Ipc__SnapChunk)IPC__SNAP_CHUNK__INIT;
	c.index = 51;
	c.name = "b";
	c.offset = 2;
	CHECK_EQ(snap_recv_chunk(r, 23, &c, 10, &msg), -EINVAL);
	CHECK(!strcmp(msg, "snapshot: chunk of another snapshot"));
	CHECK(!exists(inc));

	/* Limits: bytes, files. */
	snap_recv_set_limits(r, 10, 2);
	CHECK_EQ(ch(r, 30, "a", 0, "123456", &msg), 0);
	CHECK_EQ(ch(r, 30, "b", 0, "12345", &msg), -EFBIG);
	CHECK_EQ(ch(r, 31, "a", 0, "1", &msg), 0);
	CHECK_EQ(ch(r, 31, "b", 0, "", &msg), 0);
	CHECK_EQ(ch(r, 31, "c", 0, "", &msg), -EFBIG);
	CHECK(!strcmp(msg, "snapshot: too many files"));
	snap_recv_set_limits(r, SNAP_BYTES_MAX, SNAP_FILES_MAX);

	/* done carries no data. */
	CHECK_EQ(ch(r, 39, "a", 0, "x", &msg), 0);
	c = (Ipc__SnapChunk)IPC__SNAP_CHUNK__INIT;
	c.from = 1;
	c.index = 50;
	c.term = 2;
	c.done = 1;
	c.data = (ProtobufCBinaryData){ 1, (uint8_t *)"x" };
	CHECK_EQ(snap_recv_chunk(r, 39, &c, 10, &msg), -EINVAL);
	CHECK(!strcmp(msg, "snapshot: done out of order"));

	/* A complete one, an empty file among them: written and synced. */
	const char *names[] = { "a", "b", "c" };
	const char *datas[] = { "xyz", "", "0123456789" };
	CHECK_EQ(ch(r, 40, "a", 0, "xy", &msg), 0);
	CHECK_EQ(ch(r, 40, "a", 2, "z", &msg), 0);
	CHECK_EQ(ch(r, 40, "b", 0, "", &msg), 0);
	CHECK_EQ(ch(r, 40, "c", 0, "01234", &msg), 0);
	CHECK_EQ(ch(r, 40, "c", 5, "", &msg), 0);
	/* Later chunks may leave the snapshot's fields out. */
	c = (Ipc__SnapChunk)IPC__SNAP_CHUNK__INIT;
	c.name = "c";
	c.offset = 5;
	c.data = (ProtobufCBinaryData){ 5, (uint8_t *)"56789" };
	CHECK_EQ(snap_recv_chunk(r, 40, &c, 10, &msg), 0);
	CHECK_EQ(done(r, 40, names, datas, 3, &msg), SNAP_RECV_COMPLETE);
	uint64_t from, index;
	snap_recv_source(r, &from, &index);
	CHECK(from == 1 && index == 50);
	CHECK(snap_recv_written(r));
	struct stat st;
	CHECK(stat(path(inc, "a"), &st) == 0 && st.st_size == 3);
	CHECK(stat(path(inc, "b"), &st) == 0 && st.st_size == 0);
	CHECK(stat(path(inc, "c"), &st) == 0 && st.st_size == 10);
	CHECK_EQ(ch(r, 40, "d", 0, "", &msg), -EINVAL);
	CHECK(!strcmp(msg, "snapshot: chunk after done"));
	CHECK(!exists(inc));

	/* Not installed: finish removes it. */
	CHECK_EQ(ch(r, 42, "a", 0, "xyz", &msg), 0);
	CHECK_EQ(ch(r, 42, "b", 0, "", &msg), 0);
	CHECK_EQ(ch(r, 42, "c", 0, "0123456789", &msg), 0);
	CHECK_EQ(done(r, 42, names, datas, 3, &msg), SNAP_RECV_COMPLETE);
	snap_recv_finish(r);
	CHECK(!exists(inc));

	/* Freed in the middle of a transfer: its files go. */
	CHECK_EQ(ch(r, 43, "a", 0, "x", &msg), 0);
	snap_recv_free(r);
	CHECK(!exists(inc));
}

/* --- recovery --- */

static void test_recover(void)
{
	const char *db = path(rdir, SNAP_DB), *old = path(rdir, SNAP_DB_OLD);
	struct mvcc *x = open_at(db);
	uint64_t applied = mvcc_applied(x);
	int64_t rev = mvcc_rev(x);
	mvcc_close(x);
	CHECK_EQ(snap_recover(rdir), 0);

	/* Crashed between the renames: the old store comes back; what a
	 * transfer and a making left goes. */
	CHECK(rename(db, old) == 0);
	sh("mkdir -p %s/" SNAP_INCOMING " %s/make-x/db", path(rdir, SNAP_DIR),
	   path(rdir, SNAP_DIR));
	sh("touch %s/" SNAP_INCOMING "/CURRENT %s/make-x/db/1.sst",
	   path(rdir, SNAP_DIR), path(rdir, SNAP_DIR));
	CHECK_EQ(snap_recover(rdir), SNAP_RECOVER_ROLLBACK | SNAP_RECOVER_LEFTOVER);
	CHECK(exists(db) && !exists(old));
	CHECK_EQ(entries(path(rdir, SNAP_DIR)), 0);
	x = open_at(db);
	CHECK_EQ(mvcc_applied(x), applied);
	CHECK_EQ(mvcc_rev(x), rev);
	mvcc_close(x);

	/* Crashed after the new store was in place: the old one goes. */
	sh("cp -a %s %s", db, old);
	CHECK_EQ(snap_recover(rdir), SNAP_RECOVER_OLD);
	CHECK(exists(db) && !exists(old));
	x = open_at(db);
	CHECK_EQ(mvcc_applied(x), applied);
	mvcc_close(x);

	CHECK_EQ(snap_recover(path(root, "nothing-here")), 0);
}

int main(void)
{
	CHECK(mkdtemp(root));
	atexit(cleanup);
	arena_init(&a, 0);
	snprintf(rdir, sizeof(rdir), "%s/r", root);
	snprintf(sdir, sizeof(sdir), "%s/s", root);
	CHECK(mkdir(rdir, 0700) == 0 && mkdir(sdir, 0700) == 0);
	test_install();
	test_refusals();
	test_recover();
	arena_done(&a);
	return 0;
}
