/*
 * raftd in a cluster, over real socketpairs: this test plays the supervisor,
 * gatewayd and storaged around a forked raftd_main, and the other members
 * as in-process Raft cores whose messages it carries over the gatewayd
 * link. Covered: the leader hand-over at stop (MSG_SHUTDOWN, proposals
 * refused meanwhile and after, the deadline, a lone member), snapshot
 * reports to a leader raftd (MSG_SNAP_STATUS), and a follower raftd
 * restoring a snapshot, with storaged resuming right after what it holds
 * whichever of storaged's MSG_APPLIED and the MsgSnap comes first;
 * membership changes proposed, applied and refused with etcd's errors, and
 * the leader removing itself (hand-over, then the stop).
 */
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipc.pb-c.h"
#include "link.h"
#include "proc.h"
#include "rpc.pb-c.h"
#include "sim.h"

#define RAFTD_ID 0x1234ull
#define MAX_PEERS 2

static struct event_base *base;
static char datadir[256];

/* Another member: a Raft core in this process. */
struct peer {
	uint64_t id;
	struct raft *r;
	bool cut;     /* messages between it and raftd are lost */
	bool frozen;  /* not ticked */
};

/* A message between members, packed, waiting for pump(). */
struct wire {
	uint64_t to;
	uint8_t *buf;
	size_t len;
};

static struct {
	pid_t pid;
	struct link *sup, *gw, *st;
	bool ready, fatal, shut_done;
	char fatal_msg[256];
	bool auto_applied;   /* storaged acknowledges every batch */
	int msgs_to_absent;  /* to members not simulated here */
	uint64_t leader, term, commit;
	uint64_t applied_next; /* next index storaged expects */
	int prop_errs;
	uint32_t err_code;
	char err_msg[128];
	/* raftd's MsgTimeoutNow and MsgSnap: counted; kept when told to. */
	int timeout_nows, snaps_out;
	bool hold_timeout_now, drop_timeout_now, hold_snaps_out;
	struct wire held_out;
	/* A member's MsgSnap to raftd, kept for the test to hand over. */
	bool hold_snap_in;
	struct wire held_in;
	int n_peers;
	struct peer peers[MAX_PEERS];
	struct wire *q;
	size_t n_q, cap_q;
} F;

static struct peer *peer_of(uint64_t id)
{
	for (int i = 0; i < F.n_peers; i++)
		if (F.peers[i].id == id)
			return &F.peers[i];
	return NULL;
}

static void wire_put(uint64_t to, const Raftpb__Message *m)
{
	if (F.n_q == F.cap_q) {
		F.cap_q = F.cap_q ? F.cap_q * 2 : 256;
		F.q = realloc(F.q, F.cap_q * sizeof(*F.q));
		CHECK(F.q);
	}
	struct wire *w = &F.q[F.n_q++];
	w->to = to;
	w->len = raftpb__message__get_packed_size(m);
	w->buf = malloc(w->len + 1);
	raftpb__message__pack(m, w->buf);
}

/* The peer's ready: sent, "persisted" (in memory), applied. */
static void peer_process(struct peer *p)
{
	while (raft_has_ready(p->r)) {
		struct raft_ready rd;
		CHECK(raft_ready(p->r, &rd) == 0);
		for (size_t i = 0; i < rd.n_msgs; i++)
			wire_put(rd.msgs[i]->to, rd.msgs[i]);
		for (size_t i = 0; i < rd.n_committed; i++) {
			const Raftpb__Entry *e = &rd.committed[i]->e;
			if (e->type != RAFTPB__ENTRY_TYPE__EntryConfChange)
				continue;
			Raftpb__ConfChange *cc = raftpb__conf_change__unpack(
				NULL, e->data.len, e->data.data);
			CHECK(cc);
			raft_apply_conf_change(p->r, cc);
			raftpb__conf_change__free_unpacked(cc, NULL);
		}
		raft_advance(p->r, &rd);
		raft_ready_clear(&rd);
	}
}

/* Delivers what the peers sent, until nothing is left. */
static void pump(void)
{
	for (int i = 0; i < F.n_peers; i++)
		peer_process(&F.peers[i]);
	while (F.n_q > 0) {
		struct wire w = F.q[0];
		memmove(F.q, F.q + 1, (--F.n_q) * sizeof(*F.q));
		Raftpb__Message *m = raftpb__message__unpack(NULL, w.len, w.buf);
		CHECK(m);
		struct peer *from = peer_of(m->from);
		if (w.to == RAFTD_ID) {
			if (F.hold_snap_in && m->type == RAFTPB__MESSAGE_TYPE__MsgSnap &&
			    !F.held_in.buf) {
				F.held_in = w;
				w.buf = NULL;
			} else if (!from->cut) {
				CHECK(link_send(F.gw, MSG_RAFT_MSG, 0, w.buf, w.len) == 0);
			}
		} else {
			struct peer *to = peer_of(w.to);
			CHECK(to);
			raft_step(to->r, m);
			peer_process(to);
		}
		raftpb__message__free_unpacked(m, NULL);
		free(w.buf);
	}
}

static void sup_msg(struct link *l, const struct msg_hdr *h, const uint8_t *b,
		    int fd, void *arg)
{
	(void)l, (void)arg, (void)fd, (void)b;
	if (h->type == MSG_READY)
		F.ready = true;
	else if (h->type == MSG_FATAL) {
		Ipc__Error *e = MSG_UNPACK(Ipc__Error, ipc__error, b, h->len);
		CHECK(e);
		snprintf(F.fatal_msg, sizeof(F.fatal_msg), "%s", e->message);
		protobuf_c_message_free_unpacked(&e->base, NULL);
		F.fatal = true;
	}
	else if (h->type == MSG_SHUTDOWN_DONE)
		F.shut_done = true;
}

/* raftd's message to a member. */
static void from_raftd(const struct msg_hdr *h, const uint8_t *b)
{
	Raftpb__Message *m = MSG_UNPACK(Raftpb__Message, raftpb__message, b,
					h->len);
	CHECK(m && m->from == RAFTD_ID);
	struct peer *p = peer_of(m->to);
	bool keep = false;
	if (!p) {
		/* A member added by a test, never started. */
		F.msgs_to_absent++;
		goto out;
	}
	if (m->type == RAFTPB__MESSAGE_TYPE__MsgTimeoutNow) {
		F.timeout_nows++;
		if (F.drop_timeout_now)
			goto out;
		keep = F.hold_timeout_now;
	}
	if (m->type == RAFTPB__MESSAGE_TYPE__MsgSnap) {
		F.snaps_out++;
		keep = F.hold_snaps_out;
	}
	if (keep) {
		free(F.held_out.buf);
		F.held_out.to = m->to;
		F.held_out.len = h->len;
		F.held_out.buf = malloc(h->len + 1);
		memcpy(F.held_out.buf, b, h->len);
	} else if (!p->cut) {
		raft_step(p->r, m);
		pump();
	}
out:
	protobuf_c_message_free_unpacked(&m->base, NULL);
}

static void gw_msg(struct link *l, const struct msg_hdr *h, const uint8_t *b,
		   int fd, void *arg)
{
	(void)l, (void)arg, (void)fd;
	switch (h->type) {
	case MSG_RAFT_STATE: {
		Ipc__RaftState *s = MSG_UNPACK(Ipc__RaftState, ipc__raft_state, b, h->len);
		CHECK(s);
		F.leader = s->leader;
		F.term = s->term;
		F.commit = s->commit;
		protobuf_c_message_free_unpacked(&s->base, NULL);
		break;
	}
	case MSG_PROPOSE_ERR: {
		Ipc__Error *e = MSG_UNPACK(Ipc__Error, ipc__error, b, h->len);
		CHECK(e);
		F.prop_errs++;
		F.err_code = e->code;
		snprintf(F.err_msg, sizeof(F.err_msg), "%s", e->message);
		protobuf_c_message_free_unpacked(&e->base, NULL);
		break;
	}
	case MSG_RAFT_MSG:
		from_raftd(h, b);
		break;
	default:
		CHECK(!"unexpected frame on the gatewayd link");
	}
}

static void st_msg(struct link *l, const struct msg_hdr *h, const uint8_t *b,
		   int fd, void *arg)
{
	(void)l, (void)arg, (void)fd;
	if (h->type == MSG_RAFT_STATE)
		return;
	CHECK(h->type == MSG_APPLY);
	Ipc__ApplyBatch *a = MSG_UNPACK(Ipc__ApplyBatch, ipc__apply_batch, b, h->len);
	CHECK(a && a->n_entries > 0);
	for (size_t i = 0; i < a->n_entries; i++) {
		/* In order, never an entry storaged holds, never a gap. */
		if (a->entries[i]->index != F.applied_next)
			fprintf(stderr, "storaged got %llu, expected %llu\n",
				(unsigned long long)a->entries[i]->index,
				(unsigned long long)F.applied_next);
		CHECK(a->entries[i]->index == F.applied_next);
		F.applied_next++;
	}
	protobuf_c_message_free_unpacked(&a->base, NULL);
	if (F.auto_applied) {
		Ipc__Applied ap = IPC__APPLIED__INIT;
		ap.index = ap.durable_index = F.applied_next - 1;
		CHECK(link_send_pb(F.st, MSG_APPLIED, 0, &ap.base) == 0);
	}
}

static void on_close(struct link *l, void *arg)
{
	(void)l, (void)arg;
}

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* Runs the loop (ticking the peers every 10 ms, as raftd ticks) until cond
 * holds or ms pass. */
static bool wait_for(bool (*cond)(void), int ms)
{
	uint64_t t0 = now_ms(), last_tick = t0;
	for (;;) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		pump();
		if (cond && cond())
			return true;
		uint64_t t = now_ms();
		if (t - last_tick >= 10) {
			last_tick = t;
			for (int i = 0; i < F.n_peers; i++)
				if (!F.peers[i].frozen)
					raft_tick(F.peers[i].r);
			pump();
		}
		if (t - t0 > (uint64_t)ms)
			return false;
		usleep(300);
	}
}

static struct raft_ent *add_node(uint64_t index, uint64_t id)
{
	Raftpb__ConfChange cc = RAFTPB__CONF_CHANGE__INIT;
	uint8_t buf[64];
	cc.type = RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode;
	cc.nodeid = id;
	size_t len = raftpb__conf_change__pack(&cc, buf);
	return raft_ent_new(1, index, RAFTPB__ENTRY_TYPE__EntryConfChange, buf, len);
}

/* Members raftd and peers 2..n_peers+1, bootstrapped as raftd does
 * (AddNode per member, sorted by ID, committed at term 1). */
static void start(int n_peers, bool bootstrap)
{
	int sp[2], gp[2], stp[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, gp) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, stp) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(sp[0]), close(gp[0]), close(gp[1]), close(stp[0]), close(stp[1]);
		if (sp[1] != PROC_SUPERVISOR_FD) {
			dup2(sp[1], PROC_SUPERVISOR_FD);
			close(sp[1]);
		}
		char *argv[] = {"raftd", NULL};
		exit(raftd_main(1, argv));
	}
	close(sp[1]);
	F.pid = pid;
	F.ready = F.fatal = F.shut_done = false;
	F.leader = F.term = F.commit = 0;
	F.sup = link_new(base, sp[0], "sup", 0, sup_msg, on_close, NULL);
	F.gw = link_new(base, gp[0], "gw", 0, gw_msg, on_close, NULL);
	F.st = link_new(base, stp[0], "st", 0, st_msg, on_close, NULL);

	if (bootstrap) {
		F.n_peers = n_peers;
		for (int i = 0; i < n_peers; i++) {
			struct peer *p = &F.peers[i];
			memset(p, 0, sizeof(*p));
			p->id = (uint64_t)i + 2;
			struct raft_config c = {
				.id = p->id, .election_tick = 10, .heartbeat_tick = 1,
				.pre_vote = true, .check_quorum = true,
				.seed = p->id * 7919, .max_msg_bytes = 1u << 20,
				.max_inflight = 256,
			};
			struct raft_ent *ents[MAX_PEERS + 1];
			for (int k = 0; k < n_peers; k++)
				ents[k] = add_node((uint64_t)k + 1, (uint64_t)k + 2);
			ents[n_peers] = add_node((uint64_t)n_peers + 1, RAFTD_ID);
			struct raft_boot b = {
				.term = 1, .commit = (uint64_t)n_peers + 1,
				.ents = ents, .n_ents = (size_t)n_peers + 1,
			};
			CHECK(raft_new(&c, &b, &p->r) == 0);
		}
		pump();
	}

	Etcdserverpb__Member m[MAX_PEERS + 1], *ms[MAX_PEERS + 1];
	char *purl = "http://127.0.0.1:2380";
	for (int i = 0; i <= n_peers; i++) {
		etcdserverpb__member__init(&m[i]);
		m[i].id = i == n_peers ? RAFTD_ID : (uint64_t)i + 2;
		m[i].name = "m";
		m[i].n_peerurls = 1;
		m[i].peerurls = &purl;
		ms[i] = &m[i];
	}
	Ipc__WorkerConfig c = IPC__WORKER_CONFIG__INIT;
	c.name = "m";
	c.data_dir = datadir;
	c.member_id = RAFTD_ID;
	c.cluster_id = 0x5678;
	c.bootstrap = bootstrap;
	c.n_initial_members = (size_t)n_peers + 1;
	c.initial_members = ms;
	c.heartbeat_interval_ms = 10;
	c.election_timeout_ms = 100;
	c.snapshot_count = 100;
	c.strict_reconfig_check = true;
	CHECK(link_send_pb(F.sup, MSG_CONFIG, 0, &c.base) == 0);
	Ipc__ProcFd pf = IPC__PROC_FD__INIT;
	pf.role = PROC_GATEWAYD;
	CHECK(link_send_fd(F.sup, MSG_PROCFD, 0, &pf.base, gp[1]) == 0);
	pf.role = PROC_STORAGED;
	CHECK(link_send_fd(F.sup, MSG_PROCFD, 0, &pf.base, stp[1]) == 0);
	CHECK(link_send(F.sup, MSG_START, 0, NULL, 0) == 0);
}

static void stop(void)
{
	kill(F.pid, SIGTERM);
	int status;
	CHECK(waitpid(F.pid, &status, 0) == F.pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	link_free(F.sup);
	link_free(F.gw);
	link_free(F.st);
}

static void forget_peers(void)
{
	for (int i = 0; i < F.n_peers; i++)
		raft_free(F.peers[i].r);
	F.n_peers = 0;
	for (size_t i = 0; i < F.n_q; i++)
		free(F.q[i].buf);
	F.n_q = 0;
	free(F.held_in.buf);
	free(F.held_out.buf);
	F.held_in.buf = F.held_out.buf = NULL;
	F.hold_snap_in = F.hold_snaps_out = false;
	F.hold_timeout_now = F.drop_timeout_now = false;
	F.timeout_nows = F.snaps_out = F.prop_errs = 0;
	F.auto_applied = false;
	F.msgs_to_absent = 0;
}

static void new_datadir(void)
{
	char cmd[400];
	if (datadir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", datadir);
		CHECK(system(cmd) == 0);
	}
	snprintf(datadir, sizeof(datadir), "/tmp/test_raftd_cluster.XXXXXX");
	CHECK(mkdtemp(datadir));
}

static void applied(uint64_t index)
{
	Ipc__Applied a = IPC__APPLIED__INIT;
	a.index = index;
	a.durable_index = index;
	CHECK(link_send_pb(F.st, MSG_APPLIED, 0, &a.base) == 0);
}

static void propose(uint64_t v)
{
	CHECK(link_send(F.gw, MSG_PROPOSE, 1000 + v, &v, sizeof(v)) == 0);
}

static uint64_t want;
static bool c_ready(void) { return F.ready || F.fatal; }
static bool c_raftd_leads(void) { return F.leader == RAFTD_ID; }
static bool c_shut(void) { return F.shut_done; }
static bool c_held_out(void) { return F.held_out.buf != NULL; }
static bool c_held_in(void) { return F.held_in.buf != NULL; }
static bool c_err(void) { return F.prop_errs > 0; }
static bool c_applied(void) { return F.applied_next >= want; }
static bool c_commit(void) { return F.commit >= want; }
static bool c_snaps(void) { return (uint64_t)F.snaps_out >= want; }

/* A proposal now is refused with code and message. */
static void check_refused(uint32_t code, const char *msg)
{
	F.prop_errs = 0;
	propose(999999);
	CHECK(wait_for(c_err, 2000));
	if (F.err_code != code || strcmp(F.err_msg, msg) != 0)
		fprintf(stderr, "refused with %u %s\n", F.err_code, F.err_msg);
	CHECK(F.err_code == code && strcmp(F.err_msg, msg) == 0);
}

/* raftd leads the cluster and storaged is in sync. */
static void raftd_leads(int n_peers)
{
	new_datadir();
	start(n_peers, true);
	CHECK(wait_for(c_ready, 5000) && !F.fatal);
	/* The peers wait, so raftd campaigns first. */
	for (int i = 0; i < F.n_peers; i++)
		F.peers[i].frozen = true;
	/* Generous: under ASan on a loaded machine an election took over 5 s. */
	CHECK(wait_for(c_raftd_leads, 15000));
	for (int i = 0; i < F.n_peers; i++)
		F.peers[i].frozen = false;
	F.applied_next = 1;
	applied(0);
	want = (uint64_t)n_peers + 3; /* the AddNodes and the leader's entry */
	CHECK(wait_for(c_applied, 5000));
}

/* A lone member has no one to hand over to: done at once. */
static void test_shutdown_alone(void)
{
	raftd_leads(0);
	CHECK(link_send(F.sup, MSG_SHUTDOWN, 0, NULL, 0) == 0);
	CHECK(wait_for(c_shut, 2000));
	check_refused(14, "etcdserver: server stopped");
	stop();
	forget_peers();
}

static void test_shutdown_handover(void)
{
	raftd_leads(2);
	for (uint64_t v = 0; v < 10; v++)
		propose(v);
	want = F.applied_next + 10;
	CHECK(wait_for(c_applied, 5000));
	/* The transfer starts: proposals are dropped while it runs. */
	F.hold_timeout_now = true;
	CHECK(link_send(F.sup, MSG_SHUTDOWN, 0, NULL, 0) == 0);
	CHECK(wait_for(c_held_out, 2000));
	uint64_t to = F.held_out.to;
	CHECK(to == 2 || to == 3);
	check_refused(2, "raft proposal dropped");
	CHECK(!F.shut_done);
	/* The transferee campaigns; raftd follows it and is done. */
	struct peer *p = peer_of(to);
	Raftpb__Message *m = raftpb__message__unpack(NULL, F.held_out.len,
						     F.held_out.buf);
	CHECK(m);
	raft_step(p->r, m);
	raftpb__message__free_unpacked(m, NULL);
	free(F.held_out.buf);
	F.held_out.buf = NULL;
	CHECK(wait_for(c_shut, 2000));
	CHECK(raft_role(p->r) == RAFT_LEADER);
	CHECK(F.leader == to);
	check_refused(14, "etcdserver: server stopped");
	stop();
	forget_peers();
}

/* The transferee never campaigns: done after two election timeouts, still
 * leader. */
static void test_shutdown_timeout(void)
{
	raftd_leads(2);
	F.drop_timeout_now = true;
	uint64_t t0 = now_ms();
	CHECK(link_send(F.sup, MSG_SHUTDOWN, 0, NULL, 0) == 0);
	CHECK(wait_for(c_shut, 3000));
	uint64_t took = now_ms() - t0;
	CHECK(F.timeout_nows >= 1);
	CHECK(took >= 150 && took < 2000);
	CHECK(F.leader == RAFTD_ID);
	check_refused(14, "etcdserver: server stopped");
	stop();
	forget_peers();
}

/*
 * raftd leads; member 3 was away while raftd compacted its log, so it needs
 * a snapshot. raftd sends one MsgSnap and waits for its report however long
 * that takes; a failure makes it try again (after a heartbeat answer), a
 * success lets member 3 catch up from the log.
 */
static void test_snap_status(void)
{
	raftd_leads(2);
	struct peer *p3 = peer_of(3);
	p3->cut = true;
	F.hold_snaps_out = true;
	/* Past the 5000-entry margin and snapshot_count (100). */
	for (uint64_t v = 0; v < 5200; v++)
		propose(v);
	want = F.applied_next + 5200;
	CHECK(wait_for(c_applied, 20000));
	applied(F.applied_next - 1); /* durable: raftd compacts */
	CHECK(!wait_for(c_held_out, 100));
	p3->cut = false;
	CHECK(wait_for(c_held_out, 3000));
	CHECK(F.snaps_out == 1);
	/* No report: no second snapshot, only heartbeats. */
	CHECK(!wait_for(NULL, 300));
	CHECK(F.snaps_out == 1);
	/* Failed: sent again. */
	Ipc__SnapStatus st = IPC__SNAP_STATUS__INIT;
	st.to = 3;
	st.failed = true;
	CHECK(link_send_pb(F.gw, MSG_SNAP_STATUS, 0, &st.base) == 0);
	want = 2;
	CHECK(wait_for(c_snaps, 2000));
	CHECK(!wait_for(NULL, 200));
	CHECK(F.snaps_out == 2);
	/* Delivered (storaged would have installed the data first). */
	Raftpb__Message *m = raftpb__message__unpack(NULL, F.held_out.len,
						     F.held_out.buf);
	CHECK(m && m->snapshot && m->snapshot->metadata);
	uint64_t snap_index = m->snapshot->metadata->index;
	CHECK(snap_index > 100);
	F.hold_snaps_out = false;
	raft_step(p3->r, m);
	raftpb__message__free_unpacked(m, NULL);
	CHECK(raft_base_index(p3->r) == snap_index);
	st.failed = false;
	CHECK(link_send_pb(F.gw, MSG_SNAP_STATUS, 0, &st.base) == 0);
	pump();
	for (int i = 0; i < 300 && raft_commit(p3->r) < F.commit; i++)
		wait_for(NULL, 10);
	CHECK(raft_commit(p3->r) == F.commit && F.snaps_out == 2);
	stop();
	forget_peers();
}

/* Member 2 leads; raftd, cut off meanwhile, needs a snapshot. Returns the
 * MsgSnap's index (the MsgSnap is held in F.held_in). */
static uint64_t snapshot_for_raftd(struct peer *lead, int entries)
{
	for (int i = 0; i < F.n_peers; i++)
		F.peers[i].cut = true;
	for (int i = 0; i < entries; i++) {
		uint64_t v = (uint64_t)i;
		struct raft_ent *x = raft_ent_new(0, 0, RAFTPB__ENTRY_TYPE__EntryNormal,
						  &v, sizeof(v));
		CHECK(raft_propose(lead->r, &x, 1) == 0);
		pump();
	}
	uint64_t index = raft_applied(lead->r) - 3;
	CHECK(raft_compact(lead->r, index) == 0);
	F.hold_snap_in = true;
	for (int i = 0; i < F.n_peers; i++)
		F.peers[i].cut = false;
	CHECK(wait_for(c_held_in, 3000));
	F.hold_snap_in = false;
	return index;
}

static void give_snap(struct peer *lead)
{
	CHECK(link_send(F.gw, MSG_RAFT_MSG, 0, F.held_in.buf, F.held_in.len) == 0);
	free(F.held_in.buf);
	F.held_in.buf = NULL;
	raft_report_snapshot(lead->r, RAFTD_ID, false);
}

static void test_follower_snapshot(void)
{
	new_datadir();
	start(2, true);
	CHECK(wait_for(c_ready, 5000) && !F.fatal);
	struct peer *lead = peer_of(2);
	raft_campaign(lead->r);
	pump();
	CHECK(raft_role(lead->r) == RAFT_LEADER);
	F.applied_next = 1;
	applied(0);
	want = 5; /* the AddNodes and the leader's entry */
	CHECK(wait_for(c_applied, 5000));

	/* storaged's MSG_APPLIED (it installed the snapshot, and its store
	 * is a little past the snapshot point) comes first. */
	uint64_t i1 = snapshot_for_raftd(lead, 40);
	uint64_t a1 = i1 + 2;
	applied(a1);
	F.applied_next = a1 + 1;
	wait_for(NULL, 20);
	give_snap(lead);
	want = raft_last_index(lead->r) + 1;
	CHECK(wait_for(c_applied, 5000));

	/* The MsgSnap comes first: raftd holds entries back until storaged
	 * says it holds the snapshot. */
	uint64_t i2 = snapshot_for_raftd(lead, 40);
	uint64_t a2 = i2 + 1;
	F.applied_next = a2 + 1;
	give_snap(lead);
	want = i2;
	CHECK(wait_for(c_commit, 5000));
	CHECK(!wait_for(NULL, 100)); /* st_msg checks nothing came */
	applied(a2);
	want = raft_last_index(lead->r) + 1;
	CHECK(wait_for(c_applied, 5000));

	/* Restart: the WAL starts at the snapshot; storaged resumes. */
	stop();
	start(2, false);
	CHECK(wait_for(c_ready, 5000) && !F.fatal);
	applied(F.applied_next - 1);
	for (int i = 0; i < 5; i++) {
		uint64_t v = 7;
		struct raft_ent *x = raft_ent_new(0, 0, RAFTPB__ENTRY_TYPE__EntryNormal,
						  &v, sizeof(v));
		CHECK(raft_propose(lead->r, &x, 1) == 0);
	}
	pump();
	want = raft_last_index(lead->r) + 1;
	CHECK(wait_for(c_applied, 5000));
	stop();
	forget_peers();
}

/* gatewayd's MSG_CONF_CHANGE for request rid; purl NULL: no peer URLs
 * (a promotion's context), and no context at all for a removal. */
static void conf_change(uint64_t rid, Raftpb__ConfChangeType t, uint64_t node,
			const char *purl)
{
	Raftpb__ConfChange cc = RAFTPB__CONF_CHANGE__INIT;
	Etcdserverpb__Member m = ETCDSERVERPB__MEMBER__INIT;
	uint8_t ctx[256], buf[512];
	char *u = (char *)purl;
	cc.id = rid;
	cc.type = t;
	cc.nodeid = node;
	m.id = node;
	if (purl) {
		m.n_peerurls = 1;
		m.peerurls = &u;
	}
	if (t != RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode) {
		cc.context.data = ctx;
		cc.context.len = etcdserverpb__member__pack(&m, ctx);
	}
	size_t len = raftpb__conf_change__pack(&cc, buf);
	CHECK(link_send(F.gw, MSG_CONF_CHANGE, rid, buf, len) == 0);
}

static void cc_refused(Raftpb__ConfChangeType t, uint64_t node,
		       const char *purl, uint32_t code, const char *msg)
{
	F.prop_errs = 0;
	conf_change(7000 + node, t, node, purl);
	CHECK(wait_for(c_err, 2000));
	if (F.err_code != code || strcmp(F.err_msg, msg) != 0)
		fprintf(stderr, "refused with %u %s\n", F.err_code, F.err_msg);
	CHECK(F.err_code == code && strcmp(F.err_msg, msg) == 0);
}

/* Is id in peer 2's configuration (as a learner if learner)? */
static int in_conf(uint64_t id)
{
	struct raft_conf c;
	raft_conf_get(F.peers[0].r, &c);
	for (int i = 0; i < c.n; i++)
		if (c.ids[i] == id)
			return c.learner[i] ? 2 : 1;
	return 0;
}

static uint64_t watch_id;
static int watch_state;
static bool c_conf(void) { return in_conf(watch_id) == watch_state; }
static bool c_fatal(void) { return F.fatal; }
static bool c_never(void) { return false; }

#define ADD RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode
#define ADDL RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddLearnerNode
#define DEL RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode
#define UPD RAFTPB__CONF_CHANGE_TYPE__ConfChangeUpdateNode

/* Proposed, applied by the members; etcd's refusals before proposing. */
static void test_conf_change(void)
{
	raftd_leads(2);
	F.auto_applied = true;
	applied(F.applied_next - 1);
	conf_change(1, ADDL, 9, "http://127.0.0.1:9");
	watch_id = 9, watch_state = 2;
	CHECK(wait_for(c_conf, 2000));
	CHECK(F.prop_errs == 0);
	cc_refused(ADDL, 10, "http://127.0.0.1:10", 9,
		   "etcdserver: too many learner members in cluster");
	/* 9 never answers: its match is far behind the leader's. */
	cc_refused(ADD, 9, NULL, 9, "etcdserver: can only promote a learner "
		   "member which is in sync with leader");
	cc_refused(ADD, 2, NULL, 9,
		   "etcdserver: can only promote a learner member");
	cc_refused(ADD, 77, NULL, 5, "etcdserver: member not found");
	cc_refused(DEL, 77, NULL, 5, "etcdserver: member not found");
	cc_refused(UPD, 77, "http://127.0.0.1:77", 5,
		   "etcdserver: member not found");
	cc_refused(ADD, 2, "http://127.0.0.1:2", 9,
		   "etcdserver: member ID already exist");
	/* A second change while one is in flight. */
	F.prop_errs = 0;
	conf_change(2, DEL, 9, NULL);
	conf_change(3, UPD, 2, "http://127.0.0.1:22");
	CHECK(wait_for(c_err, 2000) && F.err_code == 14 &&
	      strcmp(F.err_msg, "etcdserver: request timed out") == 0);
	watch_state = 0;
	CHECK(wait_for(c_conf, 2000));
	CHECK(F.prop_errs == 1);
	/* Strict reconfiguration: with peer 3 silent, adding a voter or
	 * removing the other live one would leave no active quorum. */
	F.peers[1].cut = true;
	wait_for(c_never, 400);
	cc_refused(ADD, 11, "http://127.0.0.1:11", 14,
		   "etcdserver: unhealthy cluster");
	cc_refused(DEL, 2, NULL, 14, "etcdserver: unhealthy cluster");
	/* A learner may come and go whatever the health. */
	F.prop_errs = 0;
	conf_change(4, ADDL, 12, "http://127.0.0.1:12");
	watch_id = 12, watch_state = 2;
	CHECK(wait_for(c_conf, 2000) && F.prop_errs == 0);
	/* Removing the silent voter is allowed: it is not in the quorum. */
	conf_change(5, DEL, 3, NULL);
	watch_id = 3, watch_state = 0;
	CHECK(wait_for(c_conf, 2000) && F.prop_errs == 0);
	CHECK(!F.fatal);
	stop();
	forget_peers();
}

/* The leader removing itself hands leadership over, then the removal is
 * committed and applied, and raftd stops with etcd's message. */
static void test_remove_leader(void)
{
	raftd_leads(2);
	F.auto_applied = true;
	applied(F.applied_next - 1);
	wait_for(c_never, 200);
	F.timeout_nows = 0;
	conf_change(1, DEL, RAFTD_ID, NULL);
	CHECK(wait_for(c_fatal, 5000));
	CHECK(F.prop_errs == 0 && F.timeout_nows >= 1);
	CHECK(strcmp(F.fatal_msg, "the member has been permanently removed "
		     "from the cluster") == 0);
	watch_id = RAFTD_ID, watch_state = 0;
	CHECK(c_conf());
	int status;
	CHECK(waitpid(F.pid, &status, 0) == F.pid);
	/* etcd 3.4 exits 0 when removed (the message says why). */
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	link_free(F.sup);
	link_free(F.gw);
	link_free(F.st);
	/* It refuses to start again from its data dir. */
	start(2, false);
	CHECK(wait_for(c_fatal, 5000));
	CHECK(strcmp(F.fatal_msg, "the member has been permanently removed "
		     "from the cluster") == 0);
	CHECK(waitpid(F.pid, &status, 0) == F.pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	link_free(F.sup);
	link_free(F.gw);
	link_free(F.st);
	forget_peers();
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	test_shutdown_alone();
	test_shutdown_handover();
	test_shutdown_timeout();
	test_follower_snapshot();
	test_snap_status();
	test_conf_change();
	test_remove_leader();
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", datadir);
	CHECK(system(cmd) == 0);
	free(F.q);
	event_base_free(base);
	printf("raftd cluster: all passed\n");
	return 0;
}
