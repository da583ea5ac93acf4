/*
 * Snapshots and publish between two storaged processes, each run as
 * storaged_main() in a child over real socketpairs (the test plays raftd and
 * gatewayd for both): A, ahead, makes a snapshot (MSG_SNAP_MAKE -> one
 * MSG_SNAP_FILE per file with its descriptor, then the last with the applied
 * index); its files go to B as MSG_SNAP_CHUNKs, first with a flipped byte
 * (every chunk acknowledged, done refused, B unchanged), then whole: B
 * installs, acknowledges with the applied index, tells raftd, and then
 * answers ranges, status, leases and members as A does; B's watcher gets
 * the revisions it had not seen, once; B applies the next entry. A restart
 * of B after an install cut between its renames finds the store. Last, a
 * member that learns of a leader publishes its name and client URLs, and
 * once applied every member lists them.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "check.h"
#include "ipc.pb-c.h"
#include "link.h"
#include "proc.h"
#include "raft_internal.pb-c.h"

#define ID_A 0x1111000000000001ull
#define ID_B 0x2222000000000002ull
/* Request IDs of a third member: no results routed to either. */
#define REQ(n) ((0x3333ull << 48) | (n))

struct frame {
	struct msg_hdr hdr;
	uint8_t *body;
	int fd;
	struct frame *next;
};

struct peer {
	struct link *l;
	struct frame *head, **tail;
	int closed;
};

struct child {
	const char *name, *url;
	uint64_t id;
	char dir[64];
	pid_t pid;
	struct peer sup, raft, gw;
};

static struct event_base *base;
static struct child A = { "n1", "http://127.0.0.1:2379", ID_A, "", 0, {0}, {0}, {0} };
static struct child B = { "n2", "http://127.0.0.2:2379", ID_B, "", 0, {0}, {0}, {0} };
static pid_t test_pid;

static void on_msg(struct link *l, const struct msg_hdr *h, const uint8_t *body,
		   int fd, void *arg)
{
	struct peer *p = arg;
	(void)l;
	struct frame *f = calloc(1, sizeof(*f));
	f->hdr = *h;
	f->fd = fd;
	f->body = malloc(h->len + 1);
	memcpy(f->body, body, h->len);
	*p->tail = f;
	p->tail = &f->next;
}

static void on_close(struct link *l, void *arg)
{
	(void)l;
	((struct peer *)arg)->closed = 1;
}

static struct frame *next_frame(struct peer *p)
{
	time_t end = time(NULL) + 5;
	while (!p->head && !p->closed && time(NULL) < end) {
		struct timeval tv = { 0, 50000 };
		event_base_loopexit(base, &tv);
		event_base_loop(base, EVLOOP_ONCE);
	}
	struct frame *f = p->head;
	CHECK(f);
	p->head = f->next;
	if (!p->head)
		p->tail = &p->head;
	return f;
}

static void frame_free(struct frame *f)
{
	if (f->fd >= 0)
		close(f->fd);
	free(f->body);
	free(f);
}

/* The next frame of type from p, skipping others. */
static struct frame *next_of(struct peer *p, uint16_t type)
{
	for (;;) {
		struct frame *f = next_frame(p);
		if (f->hdr.type == type)
			return f;
		frame_free(f);
	}
}

static void peer_init(struct peer *p, int fd, const char *name)
{
	memset(p, 0, sizeof(*p));
	p->tail = &p->head;
	p->l = link_new(base, fd, name, 0, on_msg, on_close, p);
	CHECK(p->l);
}

static void peer_done(struct peer *p)
{
	while (p->head) {
		struct frame *f = p->head;
		p->head = f->next;
		frame_free(f);
	}
	p->tail = &p->head;
	link_free(p->l);
	p->l = NULL;
}

static void start(struct child *c)
{
	int s[2], r[2], g[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, r) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, g) == 0);
	c->pid = fork();
	CHECK(c->pid >= 0);
	if (c->pid == 0) {
		close(s[0]);
		close(r[0]);
		close(g[0]);
		close(r[1]);
		close(g[1]);
		if (s[1] != PROC_SUPERVISOR_FD) {
			dup2(s[1], PROC_SUPERVISOR_FD);
			close(s[1]);
		}
		char *argv[] = { "etcd: storaged", NULL };
		exit(storaged_main(1, argv));
	}
	close(s[1]);
	peer_init(&c->sup, s[0], "sup");
	peer_init(&c->raft, r[0], "raftd");
	peer_init(&c->gw, g[0], "gatewayd");

	Ipc__WorkerConfig cfg = IPC__WORKER_CONFIG__INIT;
	char *urls[1] = { (char *)c->url };
	cfg.name = (char *)c->name;
	cfg.data_dir = c->dir;
	cfg.member_id = c->id;
	cfg.cluster_id = 0xc1;
	cfg.advertise_client_urls = urls;
	cfg.n_advertise_client_urls = 1;
	CHECK(link_send_pb(c->sup.l, MSG_CONFIG, 0, &cfg.base) == 0);
	Ipc__ProcFd pf = IPC__PROC_FD__INIT;
	pf.role = PROC_RAFTD;
	CHECK(link_send_fd(c->sup.l, MSG_PROCFD, 0, &pf.base, r[1]) == 0);
	pf.role = PROC_GATEWAYD;
	CHECK(link_send_fd(c->sup.l, MSG_PROCFD, 0, &pf.base, g[1]) == 0);
	CHECK(link_send(c->sup.l, MSG_START, 0, NULL, 0) == 0);
	struct frame *f = next_frame(&c->sup);
	CHECK_EQ(f->hdr.type, MSG_READY);
	frame_free(f);
}

static void stop(struct child *c)
{
	int st;
	CHECK(kill(c->pid, SIGTERM) == 0);
	CHECK(waitpid(c->pid, &st, 0) == c->pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	c->pid = 0;
	peer_done(&c->sup);
	peer_done(&c->raft);
	peer_done(&c->gw);
}

/* MSG_APPLIED with index (durable at least index, once synced). */
static void expect_applied(struct child *c, uint64_t index)
{
	for (;;) {
		struct frame *f = next_of(&c->raft, MSG_APPLIED);
		Ipc__Applied *a = MSG_UNPACK(Ipc__Applied, ipc__applied,
					     f->body, f->hdr.len);
		CHECK(a);
		int ok = a->index == index && a->durable_index == index;
		CHECK(a->index <= index);
		protobuf_c_message_free_unpacked(&a->base, NULL);
		frame_free(f);
		if (ok)
			return;
	}
}

/* --- the log both apply (indexes from 1) --- */

#define NENT 12
static Raftpb__Entry ents[NENT + 1];

static void req_entry(uint64_t index, Etcdserverpb__InternalRaftRequest *r)
{
	Raftpb__Entry *e = &ents[index];
	raftpb__entry__init(e);
	e->index = index;
	e->term = 2;
	r->id = REQ(index);
	e->data.len = etcdserverpb__internal_raft_request__get_packed_size(r);
	e->data.data = malloc(e->data.len);
	etcdserverpb__internal_raft_request__pack(r, e->data.data);
}

static void cc_entry(uint64_t index, uint64_t id, const char *peer)
{
	Etcdserverpb__Member mb = ETCDSERVERPB__MEMBER__INIT;
	char *peers[1] = { (char *)peer };
	mb.id = id;
	mb.peerurls = peers;
	mb.n_peerurls = 1;
	Raftpb__ConfChange cc = RAFTPB__CONF_CHANGE__INIT;
	cc.nodeid = id;
	cc.context.len = etcdserverpb__member__get_packed_size(&mb);
	cc.context.data = malloc(cc.context.len);
	etcdserverpb__member__pack(&mb, cc.context.data);
	Raftpb__Entry *e = &ents[index];
	raftpb__entry__init(e);
	e->index = index;
	e->term = 2;
	e->type = RAFTPB__ENTRY_TYPE__EntryConfChange;
	e->data.len = raftpb__conf_change__get_packed_size(&cc);
	e->data.data = malloc(e->data.len);
	raftpb__conf_change__pack(&cc, e->data.data);
	free(cc.context.data);
}

static void put_entry(uint64_t index, const char *k, const char *v,
		      int64_t lease)
{
	Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
	p.key = (ProtobufCBinaryData){ strlen(k), (uint8_t *)k };
	p.value = (ProtobufCBinaryData){ strlen(v), (uint8_t *)v };
	p.lease = lease;
	Etcdserverpb__InternalRaftRequest r = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	r.put = &p;
	req_entry(index, &r);
}

static void make_log(void)
{
	cc_entry(1, ID_A, "http://127.0.0.1:2380");
	cc_entry(2, ID_B, "http://127.0.0.2:2380");
	put_entry(3, "w", "a", 0);                       /* rev 2 */
	put_entry(4, "x", "1", 0);                       /* rev 3 */
	{
		/* A published. */
		char *urls[1] = { (char *)A.url };
		Etcdserverpb__Attributes at = ETCDSERVERPB__ATTRIBUTES__INIT;
		at.name = (char *)A.name;
		at.client_urls = urls;
		at.n_client_urls = 1;
		Etcdserverpb__ClusterMemberAttrSetRequest set =
			ETCDSERVERPB__CLUSTER_MEMBER_ATTR_SET_REQUEST__INIT;
		set.member_id = ID_A;
		set.member_attributes = &at;
		Etcdserverpb__InternalRaftRequest r =
			ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
		r.cluster_member_attr_set = &set;
		req_entry(5, &r);
	}
	{
		Etcdserverpb__LeaseGrantRequest g =
			ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
		g.id = 5;
		g.ttl = 100;
		Etcdserverpb__InternalRaftRequest r =
			ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
		r.lease_grant = &g;
		req_entry(6, &r);
	}
	put_entry(7, "k1", "v", 5);                      /* rev 4 */
	put_entry(8, "w", "b", 0);                       /* rev 5 */
	{
		Etcdserverpb__DeleteRangeRequest d =
			ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
		d.key = (ProtobufCBinaryData){ 1, (uint8_t *)"x" };
		Etcdserverpb__InternalRaftRequest r =
			ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
		r.delete_range = &d;
		req_entry(9, &r);                        /* rev 6 */
	}
	put_entry(10, "w", "c", 0);                      /* rev 7 */
	{
		Etcdserverpb__CompactionRequest cp =
			ETCDSERVERPB__COMPACTION_REQUEST__INIT;
		cp.revision = 3;
		Etcdserverpb__InternalRaftRequest r =
			ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
		r.compaction = &cp;
		req_entry(11, &r);
	}
	put_entry(12, "w", "d", 0);                      /* rev 8 */
}

static void send_entries(struct child *c, uint64_t from, uint64_t to)
{
	Raftpb__Entry *ep[NENT];
	size_t n = 0;
	for (uint64_t i = from; i <= to; i++)
		ep[n++] = &ents[i];
	Ipc__ApplyBatch b = IPC__APPLY_BATCH__INIT;
	b.entries = ep;
	b.n_entries = n;
	CHECK(link_send_pb(c->raft.l, MSG_APPLY, 0, &b.base) == 0);
}

/* --- queries --- */

static Ipc__Result *query(struct child *c, uint64_t id, Ipc__Query *q)
{
	CHECK(link_send_pb(c->gw.l, MSG_QUERY, id, &q->base) == 0);
	struct frame *f = next_of(&c->gw, MSG_RESULT);
	CHECK_EQ(f->hdr.id, id);
	Ipc__Result *r = MSG_UNPACK(Ipc__Result, ipc__result, f->body, f->hdr.len);
	CHECK(r && !r->error);
	frame_free(f);
	return r;
}

static Ipc__Result *q_range(struct child *c, int64_t rev)
{
	Etcdserverpb__RangeRequest rr = ETCDSERVERPB__RANGE_REQUEST__INIT;
	rr.key = (ProtobufCBinaryData){ 1, (uint8_t *)"" };
	rr.range_end = rr.key;
	rr.revision = rev;
	Ipc__Query q = IPC__QUERY__INIT;
	q.query_case = IPC__QUERY__QUERY_RANGE;
	q.range = &rr;
	return query(c, 1, &q);
}

static Ipc__Result *q_status(struct child *c)
{
	Etcdserverpb__StatusRequest s = ETCDSERVERPB__STATUS_REQUEST__INIT;
	Ipc__Query q = IPC__QUERY__INIT;
	q.query_case = IPC__QUERY__QUERY_STATUS;
	q.status = &s;
	return query(c, 2, &q);
}

static Ipc__Result *q_ttl(struct child *c, int64_t lease)
{
	Etcdserverpb__LeaseTimeToLiveRequest t =
		ETCDSERVERPB__LEASE_TIME_TO_LIVE_REQUEST__INIT;
	t.id = lease;
	t.keys = 1;
	Ipc__Query q = IPC__QUERY__INIT;
	q.query_case = IPC__QUERY__QUERY_LEASE_TIME_TO_LIVE;
	q.lease_time_to_live = &t;
	return query(c, 3, &q);
}

static Ipc__Result *q_members(struct child *c)
{
	Etcdserverpb__MemberListRequest ml = ETCDSERVERPB__MEMBER_LIST_REQUEST__INIT;
	Ipc__Query q = IPC__QUERY__INIT;
	q.query_case = IPC__QUERY__QUERY_MEMBER_LIST;
	q.member_list = &ml;
	return query(c, 4, &q);
}

static int same_packed(const ProtobufCMessage *x, const ProtobufCMessage *y)
{
	size_t lx = protobuf_c_message_get_packed_size(x);
	size_t ly = protobuf_c_message_get_packed_size(y);
	uint8_t *bx = malloc(lx + 1), *by = malloc(ly + 1);
	protobuf_c_message_pack(x, bx);
	protobuf_c_message_pack(y, by);
	int same = lx == ly && memcmp(bx, by, lx) == 0;
	free(bx);
	free(by);
	return same;
}

/* The member with id in a member list answer, checked. */
static void check_member(const Ipc__Result *r, uint64_t id, const char *name,
			 const char *url)
{
	const Etcdserverpb__MemberListResponse *ml = r->member_list;
	CHECK(ml);
	for (size_t i = 0; i < ml->n_members; i++) {
		const Etcdserverpb__Member *mb = ml->members[i];
		if (mb->id != id)
			continue;
		CHECK(!strcmp(mb->name, name));
		if (url)
			CHECK(mb->n_clienturls == 1 &&
			      !strcmp(mb->clienturls[0], url));
		else
			CHECK_EQ(mb->n_clienturls, 0);
		return;
	}
	CHECK(!"member not listed");
}

static void same_answers(void)
{
	Ipc__Result *x, *y;
	for (int64_t rev = 0; rev <= 3; rev += 3) {
		x = q_range(&A, rev);
		y = q_range(&B, rev);
		CHECK(same_packed(&x->range->base, &y->range->base));
		ipc__result__free_unpacked(x, NULL);
		ipc__result__free_unpacked(y, NULL);
	}
	x = q_status(&A);
	y = q_status(&B);
	CHECK_EQ(x->status->raftappliedindex, y->status->raftappliedindex);
	CHECK_EQ(x->status->header->revision, y->status->header->revision);
	ipc__result__free_unpacked(x, NULL);
	ipc__result__free_unpacked(y, NULL);
	x = q_ttl(&A, 5);
	y = q_ttl(&B, 5);
	CHECK(y->lease_time_to_live->ttl > 0);
	CHECK_EQ(y->lease_time_to_live->grantedttl, 100);
	CHECK_EQ(y->lease_time_to_live->n_keys, 1);
	CHECK_EQ(x->lease_time_to_live->n_keys, 1);
	ipc__result__free_unpacked(x, NULL);
	ipc__result__free_unpacked(y, NULL);
	/* The same records; each member fills in its own configuration
	 * until its publish is applied. */
	x = q_members(&A);
	y = q_members(&B);
	CHECK_EQ(x->member_list->n_members, 2);
	CHECK_EQ(y->member_list->n_members, 2);
	check_member(x, ID_A, A.name, A.url);
	check_member(y, ID_A, A.name, A.url);
	check_member(x, ID_B, "", NULL);
	check_member(y, ID_B, B.name, B.url);
	ipc__result__free_unpacked(x, NULL);
	ipc__result__free_unpacked(y, NULL);
}

/* --- the snapshot --- */

#define FILES_MAX 256
static struct {
	char *name;
	uint8_t *data;
	size_t len;
} files[FILES_MAX];
static size_t nfiles;

static void files_free(void)
{
	for (size_t i = 0; i < nfiles; i++) {
		free(files[i].name);
		free(files[i].data);
	}
	nfiles = 0;
}

/* A makes a snapshot (transfer id); its files are read through their
 * descriptors. */
static uint64_t make_snapshot(uint64_t id, uint64_t index)
{
	files_free();
	Ipc__SnapMake mk = IPC__SNAP_MAKE__INIT;
	mk.to = ID_B;
	mk.index = index;
	mk.term = 2;
	CHECK(link_send_pb(A.gw.l, MSG_SNAP_MAKE, id, &mk.base) == 0);
	for (;;) {
		struct frame *f = next_of(&A.gw, MSG_SNAP_FILE);
		CHECK_EQ(f->hdr.id, id);
		Ipc__SnapFile *sf = MSG_UNPACK(Ipc__SnapFile, ipc__snap_file,
					       f->body, f->hdr.len);
		CHECK(sf);
		if (sf->last) {
			CHECK(f->fd < 0 && !sf->error);
			uint64_t applied = sf->applied_index;
			protobuf_c_message_free_unpacked(&sf->base, NULL);
			frame_free(f);
			CHECK(nfiles > 0);
			return applied;
		}
		CHECK(f->fd >= 0 && (f->hdr.flags & MSG_F_FD));
		CHECK(nfiles < FILES_MAX);
		if (nfiles)
			CHECK(strcmp(files[nfiles - 1].name, sf->name) < 0);
		files[nfiles].name = strdup(sf->name);
		files[nfiles].len = sf->size;
		files[nfiles].data = malloc(sf->size + 1);
		size_t off = 0;
		while (off < sf->size) {
			ssize_t n = pread(f->fd, files[nfiles].data + off,
					  sf->size - off, (off_t)off);
			CHECK(n > 0);
			off += (size_t)n;
		}
		nfiles++;
		protobuf_c_message_free_unpacked(&sf->base, NULL);
		frame_free(f);
	}
}

static Ipc__SnapAck *next_ack(uint64_t id)
{
	struct frame *f = next_of(&B.gw, MSG_SNAP_ACK);
	CHECK_EQ(f->hdr.id, id);
	Ipc__SnapAck *a = MSG_UNPACK(Ipc__SnapAck, ipc__snap_ack, f->body,
				     f->hdr.len);
	CHECK(a);
	frame_free(f);
	return a;
}

/* Sends the snapshot to B as transfer id (byte flip flipped, -1: none),
 * chunks acknowledged one by one; returns the ack of done. */
static Ipc__SnapAck *transfer(uint64_t id, long flip)
{
	uint8_t sum[32];
	unsigned int len;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	long pos = 0;
	for (size_t i = 0; i < nfiles; i++) {
		EVP_DigestUpdate(md, files[i].name, strlen(files[i].name) + 1);
		EVP_DigestUpdate(md, files[i].data, files[i].len);
		size_t off = 0;
		do {
			size_t n = files[i].len - off < 3000 ? files[i].len - off
							      : 3000;
			uint8_t *tmp = malloc(n + 1);
			memcpy(tmp, files[i].data + off, n);
			if (flip >= pos + (long)off && flip < pos + (long)(off + n))
				tmp[flip - pos - (long)off] ^= 0x40;
			Ipc__SnapChunk c = IPC__SNAP_CHUNK__INIT;
			c.from = ID_A;
			c.index = 11;
			c.term = 2;
			c.name = files[i].name;
			c.offset = off;
			c.data = (ProtobufCBinaryData){ n, tmp };
			CHECK(link_send_pb(B.gw.l, MSG_SNAP_CHUNK, id, &c.base) == 0);
			free(tmp);
			Ipc__SnapAck *a = next_ack(id);
			CHECK(!a->error);
			ipc__snap_ack__free_unpacked(a, NULL);
			off += n;
		} while (off < files[i].len);
		pos += (long)files[i].len;
	}
	EVP_DigestFinal_ex(md, sum, &len);
	EVP_MD_CTX_free(md);
	Ipc__SnapChunk c = IPC__SNAP_CHUNK__INIT;
	c.from = ID_A;
	c.index = 11;
	c.term = 2;
	c.done = 1;
	c.sha256 = (ProtobufCBinaryData){ 32, sum };
	CHECK(link_send_pb(B.gw.l, MSG_SNAP_CHUNK, id, &c.base) == 0);
	return next_ack(id);
}

/* The watch events B sends watcher 1, as "+key@rev" joined by ",". */
static const char *watch_events(void)
{
	static char buf[1024];
	struct frame *f = next_of(&B.gw, MSG_WATCH_EVENTS);
	Ipc__WatchEvents *e = MSG_UNPACK(Ipc__WatchEvents, ipc__watch_events,
					 f->body, f->hdr.len);
	CHECK(e && e->n_hits == 1 && e->hits[0]->watcher == 1);
	size_t off = 0;
	buf[0] = 0;
	for (size_t i = 0; i < e->hits[0]->n_events; i++) {
		const Mvccpb__Event *ev = e->events[e->hits[0]->events[i]];
		off += (size_t)snprintf(buf + off, sizeof(buf) - off,
					"%s%c%.*s@%lld", off ? "," : "",
					ev->type ? '-' : '+', (int)ev->kv->key.len,
					(const char *)ev->kv->key.data,
					(long long)ev->kv->mod_revision);
	}
	ipc__watch_events__free_unpacked(e, NULL);
	frame_free(f);
	return buf;
}

static void remove_dirs(void)
{
	if (getpid() != test_pid)
		return;
	struct child *cs[2] = { &A, &B };
	for (int i = 0; i < 2; i++) {
		if (cs[i]->pid > 0)
			kill(cs[i]->pid, SIGKILL);
		char cmd[100];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", cs[i]->dir);
		if (cs[i]->dir[0] && system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", cs[i]->dir);
	}
}

static int exists(const char *dir, const char *sub)
{
	char p[200];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	return stat(p, &st) == 0;
}

int main(void)
{
	snprintf(A.dir, sizeof(A.dir), "/tmp/test-snap-a-XXXXXX");
	snprintf(B.dir, sizeof(B.dir), "/tmp/test-snap-b-XXXXXX");
	CHECK(mkdtemp(A.dir) && mkdtemp(B.dir));
	test_pid = getpid();
	atexit(remove_dirs);
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	make_log();

	start(&A);
	start(&B);
	expect_applied(&A, 0);
	expect_applied(&B, 0);
	/* A makes snapshots as it goes: each flushes RocksDB's memtables,
	 * so the last has more files than leave in one burst. */
	uint64_t upto[] = { 4, 6, 8, 9, 10, 11 };
	for (size_t i = 0; i < sizeof(upto) / sizeof(upto[0]); i++) {
		send_entries(&A, i ? upto[i - 1] + 1 : 1, upto[i]);
		expect_applied(&A, upto[i]);
		CHECK_EQ(make_snapshot(70 + i, upto[i]), upto[i]);
	}
	CHECK(nfiles > 8);
	send_entries(&B, 1, 4);
	expect_applied(&B, 4);

	/* B's watcher of "w" from now: it has seen revision 3. */
	Etcdserverpb__WatchCreateRequest wr = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
	wr.key = (ProtobufCBinaryData){ 1, (uint8_t *)"w" };
	Ipc__WatchCreate wc = IPC__WATCH_CREATE__INIT;
	wc.watcher = 1;
	wc.req = &wr;
	CHECK(link_send_pb(B.gw.l, MSG_WATCH_CREATE, 0, &wc.base) == 0);
	CHECK(!strcmp(watch_events(), ""));


	/* A flipped byte: every chunk is written, done is refused, and B
	 * serves what it had. */
	long total = 0;
	for (size_t i = 0; i < nfiles; i++)
		total += (long)files[i].len;
	Ipc__SnapAck *ack = transfer(500, total / 3);
	CHECK(ack->error && ack->error->code == 3 &&
	      !strcmp(ack->error->message, "snapshot: checksum mismatch"));
	ipc__snap_ack__free_unpacked(ack, NULL);
	Ipc__Result *r = q_range(&B, 0);
	CHECK_EQ(r->range->count, 2);
	CHECK_EQ(r->range->header->revision, 3);
	ipc__result__free_unpacked(r, NULL);
	CHECK(!exists(B.dir, "member/snap/incoming"));

	/* Whole: installed; raftd hears of the new applied index. */
	ack = transfer(501, -1);
	CHECK(!ack->error);
	CHECK_EQ(ack->applied_index, 11);
	ipc__snap_ack__free_unpacked(ack, NULL);
	expect_applied(&B, 11);
	CHECK(!exists(B.dir, "member/db.old"));
	CHECK(!exists(B.dir, "member/snap/incoming"));

	/* The watcher: what it had not seen, once. */
	CHECK(!strcmp(watch_events(), "+w@5,+w@7"));
	same_answers();

	/* The log goes on from the snapshot. */
	send_entries(&A, 12, 12);
	send_entries(&B, 12, 12);
	expect_applied(&A, 12);
	expect_applied(&B, 12);
	CHECK(!strcmp(watch_events(), "+w@8"));
	same_answers();

	/* The same snapshot again: B is past it; acknowledged, not
	 * installed. */
	ack = transfer(502, -1);
	CHECK(!ack->error);
	CHECK_EQ(ack->applied_index, 12);
	ipc__snap_ack__free_unpacked(ack, NULL);

	/* A crash between the install's renames: the store is found at the
	 * next start, the leftovers are gone. */
	stop(&B);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "mv %s/member/db %s/member/db.old && "
		 "mkdir -p %s/member/snap/incoming && "
		 "touch %s/member/snap/incoming/CURRENT",
		 B.dir, B.dir, B.dir, B.dir);
	CHECK(system(cmd) == 0);
	start(&B);
	expect_applied(&B, 12);
	CHECK(exists(B.dir, "member/db") && !exists(B.dir, "member/db.old"));
	CHECK(!exists(B.dir, "member/snap/incoming"));
	same_answers();

	/* Publish: each member, once it knows a leader, proposes its name
	 * and client URLs (as etcd does at every start) under an ID that
	 * routes no result, until it sees that request applied. */
	Ipc__RaftState rs = IPC__RAFT_STATE__INIT;
	rs.term = 2;
	rs.leader = ID_A;
	CHECK(link_send_pb(B.raft.l, MSG_RAFT_STATE, 0, &rs.base) == 0);
	CHECK(link_send_pb(A.raft.l, MSG_RAFT_STATE, 0, &rs.base) == 0);
	struct child *cs[2] = { &B, &A };
	Raftpb__Entry pe[2];
	Raftpb__Entry *ep[2] = { &pe[0], &pe[1] };
	struct frame *pf[2];
	for (int i = 0; i < 2; i++) {
		pf[i] = next_of(&cs[i]->raft, MSG_PROPOSE);
		Etcdserverpb__InternalRaftRequest *p =
			etcdserverpb__internal_raft_request__unpack(
				NULL, pf[i]->hdr.len, pf[i]->body);
		CHECK(p && p->cluster_member_attr_set);
		CHECK_EQ(p->cluster_member_attr_set->member_id, cs[i]->id);
		CHECK(!strcmp(p->cluster_member_attr_set->member_attributes->name,
			      cs[i]->name));
		CHECK(p->header && p->header->id == p->id);
		CHECK_EQ(p->id, pf[i]->hdr.id);
		CHECK((p->id >> 48) != (cs[i]->id & 0xffff));
		etcdserverpb__internal_raft_request__free_unpacked(p, NULL);
		/* Committed as entries 13 and 14 on both. */
		pe[i] = (Raftpb__Entry)RAFTPB__ENTRY__INIT;
		pe[i].index = 13 + (uint64_t)i;
		pe[i].term = 2;
		pe[i].data = (ProtobufCBinaryData){ pf[i]->hdr.len, pf[i]->body };
	}
	Ipc__ApplyBatch b = IPC__APPLY_BATCH__INIT;
	b.entries = ep;
	b.n_entries = 2;
	CHECK(link_send_pb(A.raft.l, MSG_APPLY, 0, &b.base) == 0);
	CHECK(link_send_pb(B.raft.l, MSG_APPLY, 0, &b.base) == 0);
	frame_free(pf[0]);
	frame_free(pf[1]);
	expect_applied(&A, 14);
	expect_applied(&B, 14);
	for (int i = 0; i < 2; i++) {
		r = q_members(cs[i]);
		check_member(r, ID_A, A.name, A.url);
		check_member(r, ID_B, B.name, B.url);
		ipc__result__free_unpacked(r, NULL);
	}
	/* Nothing more to publish: no proposal from either within 1.5 s. */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		struct timeval tv = { 0, 50000 };
		event_base_loopexit(base, &tv);
		event_base_loop(base, EVLOOP_ONCE);
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while ((t1.tv_sec - t0.tv_sec) * 1000 +
		 (t1.tv_nsec - t0.tv_nsec) / 1000000 < 1500);
	for (struct frame *g = A.raft.head; g; g = g->next)
		CHECK(g->hdr.type != MSG_PROPOSE);
	for (struct frame *g = B.raft.head; g; g = g->next)
		CHECK(g->hdr.type != MSG_PROPOSE);

	stop(&A);
	stop(&B);
	files_free();
	for (int i = 1; i <= NENT; i++)
		free(ents[i].data.data);
	event_base_free(base);
	return 0;
}
