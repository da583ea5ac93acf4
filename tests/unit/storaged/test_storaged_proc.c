/*
 * storaged as a process: runs storaged_main() in a child with its supervisor
 * link on fd 3 and links to a fake raftd and gatewayd over real socketpairs,
 * then checks the handshake, MSG_APPLIED at link-up and after sync, results
 * for this member's proposals only, queries waiting for min_applied,
 * member list and status, and a restart that resumes at the applied index;
 * then watch frames (created, live events, history), lease grant and put
 * with a lease, lease queries (a keepalive held until this member leads),
 * metrics, and the leader's revoke proposal of an expired lease, whose
 * apply deletes the key for the watchers without a result for gatewayd;
 * then membership changes answered to this member's proposals only; then
 * the v2 keys API (reads, waits, the leader's SYNC, a restart).
 */
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "ipc.pb-c.h"
#include "link.h"
#include "proc.h"
#include "raft_internal.pb-c.h"
#include "v2.pb-c.h"

#define MEMBER_ID 0x8e9e05c52164694dull
#define OUR_ID(n) (((MEMBER_ID & 0xffff) << 48) | (n))
#define OTHER_ID(n) ((0x1111ull << 48) | (n))

struct frame {
	struct msg_hdr hdr;
	uint8_t *body;
	struct frame *next;
};

struct peer {
	struct link *l;
	struct frame *head, **tail;
	int closed;
};

static struct event_base *base;
static struct peer sup, raft, gw;
static char datadir[] = "/tmp/test-storaged-proc-XXXXXX";
static pid_t child;

static void on_msg(struct link *l, const struct msg_hdr *h, const uint8_t *body,
		   int fd, void *arg)
{
	struct peer *p = arg;
	(void)l;
	CHECK(fd < 0);
	struct frame *f = calloc(1, sizeof(*f));
	f->hdr = *h;
	f->body = malloc(h->len + 1);
	memcpy(f->body, body, h->len);
	*p->tail = f;
	p->tail = &f->next;
}

static void on_close(struct link *l, void *arg)
{
	struct peer *p = arg;
	(void)l;
	p->closed = 1;
}

/* The next frame from p, waiting up to 5 s. Caller frees f->body and f. */
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

/* Whether p sends nothing for ms milliseconds. */
static int quiet(struct peer *p, int ms)
{
	struct timeval tv = { 0, ms * 1000 };
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	return p->head == NULL;
}

static void frame_free(struct frame *f)
{
	free(f->body);
	free(f);
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
	while (p->head)
		frame_free(next_frame(p));
	link_free(p->l);
	p->l = NULL;
}

static void start_child(void)
{
	int s[2], r[2], g[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, r) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, g) == 0);
	child = fork();
	CHECK(child >= 0);
	if (child == 0) {
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
	peer_init(&sup, s[0], "sup");
	peer_init(&raft, r[0], "raftd");
	peer_init(&gw, g[0], "gatewayd");

	Ipc__WorkerConfig cfg = IPC__WORKER_CONFIG__INIT;
	char *urls[1] = { "http://127.0.0.1:2379" };
	cfg.name = "node1";
	cfg.data_dir = datadir;
	cfg.member_id = MEMBER_ID;
	cfg.advertise_client_urls = urls;
	cfg.n_advertise_client_urls = 1;
	CHECK(link_send_pb(sup.l, MSG_CONFIG, 0, &cfg.base) == 0);
	Ipc__ProcFd pf = IPC__PROC_FD__INIT;
	pf.role = PROC_RAFTD;
	CHECK(link_send_fd(sup.l, MSG_PROCFD, 0, &pf.base, r[1]) == 0);
	pf.role = PROC_GATEWAYD;
	CHECK(link_send_fd(sup.l, MSG_PROCFD, 0, &pf.base, g[1]) == 0);
	CHECK(link_send(sup.l, MSG_START, 0, NULL, 0) == 0);

	struct frame *f = next_frame(&sup);
	CHECK_EQ(f->hdr.type, MSG_READY);
	frame_free(f);
}

static void stop_child(void)
{
	int st;
	CHECK(kill(child, SIGTERM) == 0);
	CHECK(waitpid(child, &st, 0) == child);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	child = 0;
	peer_done(&sup);
	peer_done(&raft);
	peer_done(&gw);
}

static void expect_applied(uint64_t index, uint64_t durable)
{
	struct frame *f = next_frame(&raft);
	CHECK_EQ(f->hdr.type, MSG_APPLIED);
	Ipc__Applied *a = MSG_UNPACK(Ipc__Applied, ipc__applied, f->body, f->hdr.len);
	CHECK(a);
	CHECK_EQ(a->index, index);
	CHECK_EQ(a->durable_index, durable);
	protobuf_c_message_free_unpacked(&a->base, NULL);
	frame_free(f);
}

static Ipc__Result *expect_result(uint64_t id)
{
	struct frame *f = next_frame(&gw);
	CHECK_EQ(f->hdr.type, MSG_RESULT);
	CHECK_EQ(f->hdr.id, id);
	Ipc__Result *r = MSG_UNPACK(Ipc__Result, ipc__result, f->body, f->hdr.len);
	CHECK(r);
	frame_free(f);
	return r;
}

static void put_entry(Raftpb__Entry *e, uint64_t index, uint64_t id,
		      const char *k, const char *v)
{
	Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
	p.key.data = (uint8_t *)k;
	p.key.len = strlen(k);
	p.value.data = (uint8_t *)v;
	p.value.len = strlen(v);
	Etcdserverpb__InternalRaftRequest r = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	r.id = id;
	r.put = &p;
	raftpb__entry__init(e);
	e->index = index;
	e->term = 2;
	e->data.len = etcdserverpb__internal_raft_request__get_packed_size(&r);
	e->data.data = malloc(e->data.len);
	etcdserverpb__internal_raft_request__pack(&r, e->data.data);
}

static void send_batch(void)
{
	/* 1: this member joins (no name: it comes from the config);
	 * 2: our put; 3: another member's put; 4: our failing put. */
	Raftpb__Entry e[4];
	Etcdserverpb__Member mb = ETCDSERVERPB__MEMBER__INIT;
	char *peers[1] = { "http://127.0.0.1:2380" };
	mb.id = MEMBER_ID;
	mb.peerurls = peers;
	mb.n_peerurls = 1;
	Raftpb__ConfChange cc = RAFTPB__CONF_CHANGE__INIT;
	cc.nodeid = MEMBER_ID;
	cc.context.len = etcdserverpb__member__get_packed_size(&mb);
	cc.context.data = malloc(cc.context.len);
	etcdserverpb__member__pack(&mb, cc.context.data);
	raftpb__entry__init(&e[0]);
	e[0].index = 1;
	e[0].type = RAFTPB__ENTRY_TYPE__EntryConfChange;
	e[0].data.len = raftpb__conf_change__get_packed_size(&cc);
	e[0].data.data = malloc(e[0].data.len);
	raftpb__conf_change__pack(&cc, e[0].data.data);
	free(cc.context.data);
	put_entry(&e[1], 2, OUR_ID(1), "a", "1");
	put_entry(&e[2], 3, OTHER_ID(1), "b", "2");
	put_entry(&e[3], 4, OUR_ID(2), "c", "3");
	{
		/* Make entry 4 ask for a lease that does not exist. */
		Etcdserverpb__InternalRaftRequest *r =
			etcdserverpb__internal_raft_request__unpack(
				NULL, e[3].data.len, e[3].data.data);
		r->put->lease = 99;
		free(e[3].data.data);
		e[3].data.len = etcdserverpb__internal_raft_request__get_packed_size(r);
		e[3].data.data = malloc(e[3].data.len);
		etcdserverpb__internal_raft_request__pack(r, e[3].data.data);
		etcdserverpb__internal_raft_request__free_unpacked(r, NULL);
	}
	Raftpb__Entry *ep[4] = { &e[0], &e[1], &e[2], &e[3] };
	Ipc__ApplyBatch b = IPC__APPLY_BATCH__INIT;
	b.entries = ep;
	b.n_entries = 4;
	CHECK(link_send_pb(raft.l, MSG_APPLY, 0, &b.base) == 0);
	for (int i = 0; i < 4; i++)
		free(e[i].data.data);
}

static void send_query(uint64_t id, uint64_t min_applied, int what)
{
	Ipc__Query q = IPC__QUERY__INIT;
	Etcdserverpb__RangeRequest rr = ETCDSERVERPB__RANGE_REQUEST__INIT;
	Etcdserverpb__MemberListRequest ml = ETCDSERVERPB__MEMBER_LIST_REQUEST__INIT;
	Etcdserverpb__StatusRequest st = ETCDSERVERPB__STATUS_REQUEST__INIT;
	q.min_applied = min_applied;
	q.query_case = what;
	switch (what) {
	case IPC__QUERY__QUERY_RANGE:
		rr.key.data = (uint8_t *)"a";
		rr.key.len = 1;
		rr.range_end.data = (uint8_t *)"z";
		rr.range_end.len = 1;
		q.range = &rr;
		break;
	case IPC__QUERY__QUERY_MEMBER_LIST:
		q.member_list = &ml;
		break;
	default:
		q.status = &st;
		break;
	}
	CHECK(link_send_pb(gw.l, MSG_QUERY, id, &q.base) == 0);
}

/* The next frame of type from p, skipping others (MSG_APPLIED ticks). */
static struct frame *next_of(struct peer *p, uint16_t type)
{
	for (;;) {
		struct frame *f = next_frame(p);
		if (f->hdr.type == type)
			return f;
		frame_free(f);
	}
}

static void send_entries(Raftpb__Entry **ep, size_t n)
{
	Ipc__ApplyBatch b = IPC__APPLY_BATCH__INIT;
	b.entries = ep;
	b.n_entries = n;
	CHECK(link_send_pb(raft.l, MSG_APPLY, 0, &b.base) == 0);
}

/* An entry holding r (bytes malloc'd into e). */
static void req_entry(Raftpb__Entry *e, uint64_t index,
		      Etcdserverpb__InternalRaftRequest *r)
{
	raftpb__entry__init(e);
	e->index = index;
	e->term = 2;
	e->data.len = etcdserverpb__internal_raft_request__get_packed_size(r);
	e->data.data = malloc(e->data.len);
	etcdserverpb__internal_raft_request__pack(r, e->data.data);
}

static void send_watch(uint64_t watcher, const char *key, int64_t start)
{
	Etcdserverpb__WatchCreateRequest r = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
	r.key.data = (uint8_t *)key;
	r.key.len = strlen(key);
	r.start_revision = start;
	Ipc__WatchCreate c = IPC__WATCH_CREATE__INIT;
	c.watcher = watcher;
	c.req = &r;
	CHECK(link_send_pb(gw.l, MSG_WATCH_CREATE, 0, &c.base) == 0);
}

static Ipc__WatchEvents *expect_events(void)
{
	struct frame *f = next_frame(&gw);
	CHECK_EQ(f->hdr.type, MSG_WATCH_EVENTS);
	Ipc__WatchEvents *e = MSG_UNPACK(Ipc__WatchEvents, ipc__watch_events,
					 f->body, f->hdr.len);
	CHECK(e);
	frame_free(f);
	return e;
}

static void send_lease_query(uint64_t id, int what, int64_t lease)
{
	Ipc__Query q = IPC__QUERY__INIT;
	Etcdserverpb__LeaseTimeToLiveRequest t =
		ETCDSERVERPB__LEASE_TIME_TO_LIVE_REQUEST__INIT;
	Etcdserverpb__LeaseKeepAliveRequest k =
		ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
	Etcdserverpb__LeaseLeasesRequest l = ETCDSERVERPB__LEASE_LEASES_REQUEST__INIT;
	q.query_case = what;
	t.id = k.id = lease;
	t.keys = 1;
	q.lease_time_to_live = &t;
	if (what == IPC__QUERY__QUERY_LEASE_KEEP_ALIVE)
		q.lease_keep_alive = &k;
	else if (what == IPC__QUERY__QUERY_LEASE_LEASES)
		q.lease_leases = &l;
	CHECK(link_send_pb(gw.l, MSG_QUERY, id, &q.base) == 0);
}

static void test_watch_lease(void)
{
	start_child();
	expect_applied(4, 4);

	/* A watcher of "w" from now (revision 3). */
	send_watch(1, "w", 0);
	Ipc__WatchEvents *e = expect_events();
	CHECK_EQ(e->revision, 3);
	CHECK(e->n_hits == 1 && e->hits[0]->watcher == 1 && e->hits[0]->created);
	ipc__watch_events__free_unpacked(e, NULL);

	/* 5: grant lease 9 (TTL 1, raised to 2); 6: put w with it. */
	Etcdserverpb__LeaseGrantRequest g = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
	g.id = 9;
	g.ttl = 1;
	Etcdserverpb__InternalRaftRequest r = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	r.id = OUR_ID(10);
	r.lease_grant = &g;
	Raftpb__Entry e5, e6;
	req_entry(&e5, 5, &r);
	Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
	p.key.data = (uint8_t *)"w";
	p.key.len = 1;
	p.lease = 9;
	r = (Etcdserverpb__InternalRaftRequest)ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	r.id = OUR_ID(11);
	r.put = &p;
	req_entry(&e6, 6, &r);
	Raftpb__Entry *ep[2] = { &e5, &e6 };
	send_entries(ep, 2);
	free(e5.data.data);
	free(e6.data.data);
	Ipc__Result *res = expect_result(OUR_ID(10));
	CHECK(res->lease_grant && res->lease_grant->id == 9 &&
	      res->lease_grant->ttl == 2);
	CHECK_EQ(res->lease_grant->header->revision, 3);
	ipc__result__free_unpacked(res, NULL);
	res = expect_result(OUR_ID(11));
	CHECK(res->put && !res->error);
	ipc__result__free_unpacked(res, NULL);
	e = expect_events();
	CHECK_EQ(e->revision, 4);
	CHECK(e->n_events == 1 && e->events[0]->kv->lease == 9);
	ipc__watch_events__free_unpacked(e, NULL);

	/* Not leader yet: the keepalive waits; the others answer. */
	send_lease_query(200, IPC__QUERY__QUERY_LEASE_KEEP_ALIVE, 9);
	send_lease_query(201, IPC__QUERY__QUERY_LEASE_TIME_TO_LIVE, 9);
	res = expect_result(201);
	CHECK(res->lease_time_to_live && res->lease_time_to_live->ttl == 2);
	CHECK_EQ(res->lease_time_to_live->n_keys, 1);
	ipc__result__free_unpacked(res, NULL);
	send_lease_query(202, IPC__QUERY__QUERY_LEASE_LEASES, 0);
	res = expect_result(202);
	CHECK(res->lease_leases && res->lease_leases->n_leases == 1);
	ipc__result__free_unpacked(res, NULL);

	/* Leadership: the held keepalive is answered. */
	Ipc__RaftState rs = IPC__RAFT_STATE__INIT;
	rs.term = 2;
	rs.leader = MEMBER_ID;
	CHECK(link_send_pb(raft.l, MSG_RAFT_STATE, 0, &rs.base) == 0);
	res = expect_result(200);
	CHECK(res->lease_keep_alive && res->lease_keep_alive->id == 9 &&
	      res->lease_keep_alive->ttl == 2);
	ipc__result__free_unpacked(res, NULL);

	/* History from revision 1 of "w": one message at the current one. */
	send_watch(2, "w", 1);
	e = expect_events();
	CHECK(e->hits[0]->created);
	ipc__watch_events__free_unpacked(e, NULL);
	e = expect_events();
	CHECK_EQ(e->revision, 4);
	CHECK(e->n_hits == 1 && e->hits[0]->watcher == 2 &&
	      e->hits[0]->n_events == 1);
	ipc__watch_events__free_unpacked(e, NULL);

	/* Metrics. */
	CHECK(link_send(gw.l, MSG_METRICS, 77, NULL, 0) == 0);
	struct frame *f = next_frame(&gw);
	CHECK_EQ(f->hdr.type, MSG_METRICS_RESP);
	CHECK_EQ(f->hdr.id, 77);
	Ipc__Metrics *mt = MSG_UNPACK(Ipc__Metrics, ipc__metrics, f->body,
				      f->hdr.len);
	CHECK(mt);
	frame_free(f);
	int seen = 0;
	for (size_t i = 0; i < mt->n_metrics; i++) {
		const Ipc__Metric *x = mt->metrics[i];
		if (!strcmp(x->name, "etcd_debugging_mvcc_watcher_total"))
			seen += x->value == 2;
		else if (!strcmp(x->name, "etcd_debugging_lease_granted_total"))
			seen += x->value == 1;
		else if (!strcmp(x->name, "etcd_server_proposals_applied_total"))
			seen += x->value == 6;
		else if (!strcmp(x->name, "etcd_disk_backend_commit_duration_seconds"))
			seen += x->count >= 1;
		else if (!strcmp(x->name, "process_open_fds"))
			seen += 1;
	}
	CHECK_EQ(seen, 5);
	ipc__metrics__free_unpacked(mt, NULL);

	/* Expiry after its 2 s: a revoke proposed to raftd, under an ID
	 * that is not this member's. A leader being known, this member also
	 * publishes its attributes (its record has none), under such an ID
	 * too. */
	Etcdserverpb__InternalRaftRequest *rv;
	int published = 0;
	for (;;) {
		f = next_of(&raft, MSG_PROPOSE);
		rv = etcdserverpb__internal_raft_request__unpack(
			NULL, f->hdr.len, f->body);
		CHECK(rv);
		if (!rv->cluster_member_attr_set)
			break;
		const Etcdserverpb__ClusterMemberAttrSetRequest *as =
			rv->cluster_member_attr_set;
		CHECK_EQ(as->member_id, MEMBER_ID);
		CHECK(as->member_attributes &&
		      !strcmp(as->member_attributes->name, "node1") &&
		      as->member_attributes->n_client_urls == 1);
		CHECK_EQ(rv->id, f->hdr.id);
		CHECK(rv->header && rv->header->id == rv->id);
		CHECK((rv->id >> 48) != (MEMBER_ID & 0xffff));
		published++;
		etcdserverpb__internal_raft_request__free_unpacked(rv, NULL);
		frame_free(f);
	}
	CHECK(published >= 1);
	CHECK(rv->lease_revoke && rv->lease_revoke->id == 9);
	CHECK_EQ(rv->id, f->hdr.id);
	CHECK((rv->id >> 48) != (MEMBER_ID & 0xffff));
	frame_free(f);
	/* Applied: the key goes (both watchers see it), no result. */
	Raftpb__Entry e7;
	req_entry(&e7, 7, rv);
	etcdserverpb__internal_raft_request__free_unpacked(rv, NULL);
	Raftpb__Entry *ep7[1] = { &e7 };
	send_entries(ep7, 1);
	free(e7.data.data);
	e = expect_events();
	CHECK_EQ(e->revision, 5);
	CHECK_EQ(e->n_hits, 2);
	CHECK(e->n_events == 1 &&
	      e->events[0]->type == MVCCPB__EVENT__EVENT_TYPE__DELETE);
	ipc__watch_events__free_unpacked(e, NULL);
	CHECK(quiet(&gw, 200));
	send_lease_query(203, IPC__QUERY__QUERY_LEASE_TIME_TO_LIVE, 9);
	res = expect_result(203);
	CHECK_EQ(res->lease_time_to_live->ttl, -1);
	ipc__result__free_unpacked(res, NULL);
	stop_child();
}

/* A ConfChange entry (bytes malloc'd into e) with a request ID. */
static void cc_entry(Raftpb__Entry *e, uint64_t index, int type,
		     uint64_t nodeid, uint64_t reqid, const char *peer)
{
	Etcdserverpb__Member mb = ETCDSERVERPB__MEMBER__INIT;
	char *peers[1] = { (char *)peer };
	mb.id = nodeid;
	mb.peerurls = peers;
	mb.n_peerurls = peer ? 1 : 0;
	Raftpb__ConfChange cc = RAFTPB__CONF_CHANGE__INIT;
	cc.type = type;
	cc.nodeid = nodeid;
	cc.id = reqid;
	cc.context.len = etcdserverpb__member__get_packed_size(&mb);
	cc.context.data = malloc(cc.context.len + 1);
	etcdserverpb__member__pack(&mb, cc.context.data);
	raftpb__entry__init(e);
	e->index = index;
	e->term = 2;
	e->type = RAFTPB__ENTRY_TYPE__EntryConfChange;
	e->data.len = raftpb__conf_change__get_packed_size(&cc);
	e->data.data = malloc(e->data.len + 1);
	raftpb__conf_change__pack(&cc, e->data.data);
	free(cc.context.data);
}

/* Membership changes: answers for this member's only, in order; the member
 * list after them shows the learner and not the removed member. */
static void test_members(void)
{
	start_child();
	expect_applied(7, 7);
	Raftpb__Entry e[4];
	cc_entry(&e[0], 8, RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddLearnerNode,
		 0x99, OUR_ID(20), "http://127.0.0.1:2390");
	cc_entry(&e[1], 9, RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode,
		 0x98, OTHER_ID(21), "http://127.0.0.1:2391");
	cc_entry(&e[2], 10, RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode,
		 0x98, OUR_ID(22), "http://127.0.0.1:2392");
	cc_entry(&e[3], 11, RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode,
		 0x98, OUR_ID(23), NULL);
	Raftpb__Entry *ep[4] = { &e[0], &e[1], &e[2], &e[3] };
	send_entries(ep, 4);
	for (int i = 0; i < 4; i++)
		free(e[i].data.data);

	Ipc__Result *r = expect_result(OUR_ID(20));
	CHECK(r->member_add && !r->error);
	CHECK_EQ(r->member_add->member->id, 0x99);
	CHECK(r->member_add->member->islearner);
	CHECK_EQ(r->member_add->n_members, 2);
	ipc__result__free_unpacked(r, NULL);
	r = expect_result(OUR_ID(22)); /* not OTHER_ID(21)'s */
	CHECK(r->error && r->error->code == 9);
	CHECK(strcmp(r->error->message,
		     "etcdserver: member ID already exist") == 0);
	ipc__result__free_unpacked(r, NULL);
	r = expect_result(OUR_ID(23));
	CHECK(r->member_remove && r->member_remove->n_members == 2);
	ipc__result__free_unpacked(r, NULL);

	send_query(300, 11, IPC__QUERY__QUERY_MEMBER_LIST);
	r = expect_result(300);
	CHECK(r->member_list && r->member_list->n_members == 2);
	CHECK_EQ(r->member_list->members[0]->id, 0x99);
	CHECK(r->member_list->members[0]->islearner);
	CHECK_EQ(r->member_list->members[1]->id, MEMBER_ID);
	CHECK(!r->member_list->members[1]->islearner);
	ipc__result__free_unpacked(r, NULL);
	CHECK(quiet(&gw, 150));
	stop_child();
}

static void send_v2_query(uint64_t id, const char *path, int wait,
			  int recursive, int stream, uint64_t since)
{
	Etcdserverpb__Request r = ETCDSERVERPB__REQUEST__INIT;
	r.method = "GET";
	r.path = (char *)path;
	r.has_wait = r.wait = wait;
	r.has_recursive = r.recursive = recursive;
	r.has_stream = r.stream = stream;
	r.has_since = 1;
	r.since = since;
	Ipc__Query q = IPC__QUERY__INIT;
	q.query_case = IPC__QUERY__QUERY_V2;
	q.v2 = &r;
	CHECK(link_send_pb(gw.l, MSG_QUERY, id, &q.base) == 0);
}

/* The next result for id: a v2 answer with status, more and a body
 * holding what (if not NULL). */
static void expect_v2(uint64_t id, uint32_t status, int more, const char *what)
{
	Ipc__Result *r = expect_result(id);
	CHECK(r->v2 && !r->error);
	CHECK_EQ(r->v2->status, status);
	CHECK_EQ(r->v2->more, more);
	if (!what[0]) {
		/* A wait's headers: no body yet. */
		CHECK(r->v2->body.len == 0);
		ipc__result__free_unpacked(r, NULL);
		return;
	}
	CHECK(r->v2->body.len && r->v2->body.data[r->v2->body.len - 1] == '\n');
	if (what && !memmem(r->v2->body.data, r->v2->body.len, what,
			    strlen(what))) {
		fprintf(stderr, "%llu: %.*s lacks %s\n", (unsigned long long)id,
			(int)r->v2->body.len, (char *)r->v2->body.data, what);
		exit(1);
	}
	ipc__result__free_unpacked(r, NULL);
}

/*
 * The v2 keys API: a local GET, waits answered by an applied write (one
 * shot, stream, canceled), the leader's SYNC proposed once a TTL is due
 * and its expire event, and a restart keeping the store and its index.
 */
static void test_v2(void)
{
	start_child();
	expect_applied(11, 11);
	send_v2_query(400, "/k", 0, 0, 0, 0);
	expect_v2(400, 404, 0, "\"errorCode\":100");
	/* A wait that stays: its headers' frame (empty body, the index it
	 * began at, more) at once. */
	send_v2_query(401, "/k", 1, 0, 0, 0);
	expect_v2(401, 200, 1, "");
	send_v2_query(402, "/", 1, 1, 1, 0);
	expect_v2(402, 200, 1, "");
	send_v2_query(403, "/k", 1, 0, 0, 0);
	expect_v2(403, 200, 1, "");
	CHECK(link_send(gw.l, MSG_V2_CANCEL, 403, NULL, 0) == 0);
	CHECK(quiet(&gw, 100));

	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	Etcdserverpb__Request v2 = ETCDSERVERPB__REQUEST__INIT;
	v2.method = "PUT";
	v2.path = "/k";
	v2.val = "v";
	v2.has_expiration = 1;
	v2.expiration = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec +
			500000000;
	Etcdserverpb__InternalRaftRequest r = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	r.id = OUR_ID(30);
	r.v2 = &v2;
	Raftpb__Entry e12, *ep[1] = { &e12 };
	req_entry(&e12, 12, &r);
	send_entries(ep, 1);
	free(e12.data.data);
	expect_v2(OUR_ID(30), 201, 0, "\"action\":\"set\"");
	/* The waits on "/" first: etcd walks the key's prefixes. */
	expect_v2(402, 200, 1, "\"key\":\"/k\"");
	expect_v2(401, 200, 0, "\"key\":\"/k\"");
	CHECK(quiet(&gw, 100));

	/* As leader, the SYNC once /k is due (500 ms ticks). */
	Ipc__RaftState rs = IPC__RAFT_STATE__INIT;
	rs.term = 3;
	rs.leader = MEMBER_ID;
	CHECK(link_send_pb(raft.l, MSG_RAFT_STATE, 0, &rs.base) == 0);
	Etcdserverpb__InternalRaftRequest *sync = NULL;
	struct frame *f;
	for (;;) {
		f = next_of(&raft, MSG_PROPOSE);
		sync = etcdserverpb__internal_raft_request__unpack(
			NULL, f->hdr.len, f->body);
		CHECK(sync);
		if (sync->v2)
			break;
		etcdserverpb__internal_raft_request__free_unpacked(sync, NULL);
		frame_free(f);
	}
	CHECK(strcmp(sync->v2->method, "SYNC") == 0);
	CHECK(sync->v2->time >= v2.expiration);
	CHECK(sync->id >> 48 != (MEMBER_ID & 0xffff));
	Raftpb__Entry e13;
	raftpb__entry__init(&e13);
	e13.index = 13;
	e13.term = 3;
	e13.data.len = f->hdr.len;
	e13.data.data = f->body;
	ep[0] = &e13;
	send_entries(ep, 1);
	etcdserverpb__internal_raft_request__free_unpacked(sync, NULL);
	frame_free(f);
	expect_v2(402, 200, 1, "\"action\":\"expire\"");
	CHECK(quiet(&gw, 100));
	stop_child();

	/* A restart: the store is back at index 2, no history before it. */
	start_child();
	expect_applied(13, 13);
	send_v2_query(404, "/k", 0, 0, 0, 0);
	expect_v2(404, 404, 0, "\"index\":2}");
	send_v2_query(405, "/k", 1, 0, 0, 1);
	expect_v2(405, 400, 0, "cleared [3/1]");
	stop_child();
}

/* Only the test's own process removes the directory (not a child). */
static pid_t test_pid;

static void remove_datadir(void)
{
	if (getpid() != test_pid)
		return;
	if (child > 0)
		kill(child, SIGKILL);
	char cmd[100];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", datadir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", datadir);
}

int main(void)
{
	CHECK(mkdtemp(datadir));
	test_pid = getpid();
	atexit(remove_datadir);
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();

	start_child();
	expect_applied(0, 0);

	/* A read at applied index 3 waits; one at 0 is answered at once. */
	send_query(100, 3, IPC__QUERY__QUERY_RANGE);
	send_query(101, 0, IPC__QUERY__QUERY_RANGE);
	Ipc__Result *r = expect_result(101);
	CHECK(r->range && r->range->count == 0);
	CHECK_EQ(r->range->header->revision, 1);
	ipc__result__free_unpacked(r, NULL);

	send_batch();
	r = expect_result(OUR_ID(1));
	CHECK(!r->error && r->put);
	CHECK_EQ(r->put->header->revision, 2);
	ipc__result__free_unpacked(r, NULL);
	r = expect_result(OUR_ID(2));
	CHECK(r->error && r->error->code == 5);
	CHECK(strcmp(r->error->message, "etcdserver: requested lease not found") == 0);
	ipc__result__free_unpacked(r, NULL);
	r = expect_result(100);
	CHECK(r->range && r->range->count == 2);
	CHECK_EQ(r->range->header->revision, 3);
	ipc__result__free_unpacked(r, NULL);
	expect_applied(4, 0);
	/* Synced within ~100 ms. */
	expect_applied(4, 4);

	send_query(102, 0, IPC__QUERY__QUERY_MEMBER_LIST);
	r = expect_result(102);
	CHECK(r->member_list && r->member_list->n_members == 1);
	CHECK_EQ(r->member_list->header->revision, 0);
	Etcdserverpb__Member *mb = r->member_list->members[0];
	CHECK_EQ(mb->id, MEMBER_ID);
	CHECK(strcmp(mb->name, "node1") == 0);
	CHECK(mb->n_clienturls == 1 &&
	      strcmp(mb->clienturls[0], "http://127.0.0.1:2379") == 0);
	CHECK(mb->n_peerurls == 1);
	ipc__result__free_unpacked(r, NULL);

	send_query(103, 0, IPC__QUERY__QUERY_STATUS);
	r = expect_result(103);
	CHECK(r->status);
	CHECK_EQ(r->status->raftappliedindex, 4);
	CHECK_EQ(r->status->header->revision, 3);
	CHECK(r->status->dbsize > 0);
	CHECK(r->status->dbsizeinuse <= r->status->dbsize);
	ipc__result__free_unpacked(r, NULL);
	CHECK(quiet(&gw, 150));
	stop_child();

	/* A new storaged resumes at the applied index; a replay is a no-op. */
	start_child();
	expect_applied(4, 4);
	send_batch();
	expect_applied(4, 4);
	CHECK(quiet(&gw, 200));
	send_query(104, 0, IPC__QUERY__QUERY_RANGE);
	r = expect_result(104);
	CHECK(r->range && r->range->count == 2);
	CHECK_EQ(r->range->header->revision, 3);
	ipc__result__free_unpacked(r, NULL);
	stop_child();

	test_watch_lease();
	test_members();
	test_v2();
	event_base_free(base);
	return 0;
}
