/*
 * raftd's sends to peers and its guards against what peers send, in
 * process over a real socketpair: a full gatewayd link drops messages and
 * reports their peer unreachable to the core (the leader probes it), a
 * dropped MsgSnap is a failed snapshot, the network cannot forge those
 * local reports, and read-index contexts start
 * from the clock so a restarted raftd never reuses an earlier run's.
 */
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "raft_impl.h"
#include "raftd.h"
#include "sim.h"

static void drain(struct sim *s)
{
	while (sim_deliver_one(s))
		;
}

static void on_msg(struct link *l, const struct msg_hdr *h, const uint8_t *b,
		   int fd, void *arg)
{
	(void)l, (void)h, (void)b, (void)fd, (void)arg;
}

static void on_close(struct link *l, void *arg)
{
	(void)l, (void)arg;
}

/* Elects a leader of two voters and replicates, so the follower's progress
 * is in the replicate state. Returns the leader's index. */
static int two_nodes(struct sim *s)
{
	sim_init(s, 2, 2, 7);
	for (int k = 0; k < 200 && sim_leader(s) < 0; k++) {
		for (int i = 0; i < s->n; i++)
			sim_tick(s, i);
		drain(s);
	}
	int l = sim_leader(s);
	CHECK(l >= 0);
	uint64_t data;
	CHECK(sim_propose(s, l, &data) == 0);
	drain(s);
	uint64_t peer = s->nodes[1 - l].id;
	CHECK(pr_get(s->nodes[l].r, peer)->state == PR_REPLICATE);
	return l;
}

static void test_full_link(void)
{
	struct sim s;
	int l = two_nodes(&s);
	struct raft *r = s.nodes[l].r;
	uint64_t peer = s.nodes[1 - l].id;

	struct event_base *base = event_base_new();
	int sp[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0);
	struct worker w;
	memset(&w, 0, sizeof(w));
	w.base = base;
	/* Nobody reads sp[1]: what raftd queues stays queued. */
	w.peer[PROC_GATEWAYD] = link_new(base, sp[0], "gw", 0, on_msg, on_close,
					 NULL);
	CHECK(w.peer[PROC_GATEWAYD]);
	struct raftd d;
	memset(&d, 0, sizeof(d));
	d.w = &w;
	d.r = r;
	d.id = s.nodes[l].id;
	d.gw_queue_max = 1u << 20;

	Raftpb__Message m = RAFTPB__MESSAGE__INIT;
	Raftpb__Message *mp = &m;
	m.type = RAFTPB__MESSAGE_TYPE__MsgHeartbeat;
	m.from = d.id;
	m.to = peer;
	m.term = raft_term(r);
	/* Below the limit: queued, nobody unreachable. */
	raftd_send_msgs(&d, &mp, 1);
	size_t q = link_queued(w.peer[PROC_GATEWAYD]);
	CHECK(q > 0 && d.n_unreach == 0 && d.msgs_dropped == 0);
	raftd_report_unreachable(&d);
	CHECK(pr_get(r, peer)->state == PR_REPLICATE);

	/* Past the limit: dropped, and the leader falls back to probing. */
	static uint8_t junk[256 << 10];
	while (link_queued(w.peer[PROC_GATEWAYD]) <= d.gw_queue_max)
		CHECK(link_send(w.peer[PROC_GATEWAYD], MSG_RAFT_MSG, 0, junk,
				sizeof(junk)) == 0);
	q = link_queued(w.peer[PROC_GATEWAYD]);
	raftd_send_msgs(&d, &mp, 1);
	raftd_send_msgs(&d, &mp, 1);
	CHECK(link_queued(w.peer[PROC_GATEWAYD]) == q);
	CHECK(d.msgs_dropped == 2 && d.n_unreach == 1 && d.unreach[0] == peer);
	raftd_report_unreachable(&d);
	CHECK(d.n_unreach == 0);
	CHECK(pr_get(r, peer)->state == PR_PROBE);

	/* A link that is down drops as well. */
	link_free(w.peer[PROC_GATEWAYD]);
	w.peer[PROC_GATEWAYD] = NULL;
	raftd_send_msgs(&d, &mp, 1);
	CHECK(d.msgs_dropped == 3 && d.n_unreach == 1);
	raftd_report_unreachable(&d);

	close(sp[1]);
	event_base_free(base);
	sim_done(&s);
}

/*
 * A snapshot in flight ends only with a report: a lost heartbeat leaves it
 * alone, a MsgSnap that never reached gatewayd is a failure (as etcd's peer
 * reports one it cannot queue), and so is every transfer of a gatewayd that
 * went away.
 */
static void test_snap_reports(void)
{
	struct sim s;
	int l = two_nodes(&s);
	struct raft *r = s.nodes[l].r;
	uint64_t peer = s.nodes[1 - l].id;
	struct progress *p = pr_get(r, peer);
	struct worker w;
	memset(&w, 0, sizeof(w));
	struct raftd d;
	memset(&d, 0, sizeof(d));
	d.w = &w; /* gatewayd's link is down: everything is dropped */
	d.r = r;
	d.id = s.nodes[l].id;

	Raftpb__Message m = RAFTPB__MESSAGE__INIT;
	Raftpb__Message *mp = &m;
	m.from = d.id;
	m.to = peer;
	m.term = raft_term(r);
	m.type = RAFTPB__MESSAGE_TYPE__MsgHeartbeat;
	pr_become_snapshot(p, 3);
	raftd_send_msgs(&d, &mp, 1);
	CHECK(d.n_unreach == 1 && d.n_snap_failed == 0);
	raftd_report_unreachable(&d);
	CHECK(p->state == PR_SNAPSHOT && p->pending_snapshot == 3);

	m.type = RAFTPB__MESSAGE_TYPE__MsgSnap;
	raftd_send_msgs(&d, &mp, 1);
	raftd_send_msgs(&d, &mp, 1);
	CHECK(d.n_snap_failed == 1 && d.snap_failed[0] == peer);
	raftd_report_unreachable(&d);
	CHECK(d.n_snap_failed == 0);
	CHECK(p->state == PR_PROBE && p->pending_snapshot == 0 && p->probe_sent);

	pr_become_snapshot(p, 3);
	raftd_snap_gw_down(&d);
	CHECK(p->state == PR_PROBE && p->next == p->match + 1);
	sim_done(&s);
}

/* MsgUnreachable is the driver's to report; from a peer it is refused. */
static void test_forged_unreachable(void)
{
	struct sim s;
	int l = two_nodes(&s);
	struct raft *r = s.nodes[l].r;
	uint64_t peer = s.nodes[1 - l].id;
	Raftpb__Message m = RAFTPB__MESSAGE__INIT;
	m.type = RAFTPB__MESSAGE_TYPE__MsgUnreachable;
	m.from = peer;
	m.to = s.nodes[l].id;
	m.term = raft_term(r);
	CHECK(raft_step(r, &m) < 0);
	m.type = RAFTPB__MESSAGE_TYPE__MsgSnapStatus;
	CHECK(raft_step(r, &m) < 0);
	CHECK(pr_get(r, peer)->state == PR_REPLICATE);
	sim_done(&s);
}

static void test_read_seq(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	uint64_t a = raftd_read_seq_start();
	CHECK((a & 0xffff) == 0);
	CHECK(a >> 16 >= now && a >> 16 < now + 1000);
	usleep(3000);
	/* A later run starts past every id an earlier one handed out in its
	 * first 65536 rounds per millisecond. */
	CHECK(raftd_read_seq_start() > a + 0xffff);
}

static void test_warn_rate(void)
{
	struct raftd_warn rl;
	memset(&rl, 0, sizeof(rl));
	uint64_t more = 99;
	CHECK(raftd_warn_ok(&rl, &more) && more == 0);
	for (int i = 0; i < 10; i++)
		CHECK(!raftd_warn_ok(&rl, &more));
	CHECK(rl.suppressed == 10);
}

int main(void)
{
	test_full_link();
	test_forged_unreachable();
	test_snap_reports();
	test_read_seq();
	test_warn_rate();
	printf("raftd_send: all passed\n");
	return 0;
}
