/*
 * The Raft core by deterministic simulation: scripted scenarios (single
 * node, election, ReadIndex, conf change, leader transfer, snapshot catch-up)
 * and thousands of seeded runs with loss, reordering, partitions,
 * crashes and lost snapshots, checking election safety, log matching, leader completeness and
 * state machine safety after every step, and liveness once healed.
 */
#include <errno.h>
#include <string.h>

#include "raft_impl.h"
#include "sim.h"

/* The three seeded runs of seed n use seeds n, n + SEED_SPAN, n + 2 SEED_SPAN. */
#define SEED_SPAN 100000

static void drain(struct sim *s)
{
	while (sim_deliver_one(s))
		;
}

/* Ticks everyone (delivering everything) until a leader emerges. */
static int elect(struct sim *s, int max_rounds)
{
	for (int k = 0; k < max_rounds; k++) {
		int l = sim_leader(s);
		if (l >= 0) {
			/* Let the heartbeat settle followers' view. */
			drain(s);
			return l;
		}
		for (int i = 0; i < s->n; i++)
			sim_tick(s, i);
		drain(s);
	}
	return -1;
}

static void test_single_node(void)
{
	struct sim s;
	sim_init(&s, 1, 1, 1);
	sim_settle(&s);
	struct raft *r = s.nodes[0].r;
	CHECK(raft_role(r) == RAFT_FOLLOWER && raft_voters(r) == 1);
	CHECK(raft_commit(r) == 1 && raft_applied(r) == 1);
	/* A read before the leader committed in its term waits for that. */
	raft_campaign(r);
	CHECK(raft_role(r) == RAFT_LEADER && raft_term(r) == 2);
	CHECK(raft_read_index(r, 7) == 0);
	CHECK(s.nodes[0].reads_done == 0);
	sim_process(&s, 0);
	CHECK(raft_commit(r) == 2 && raft_last_index(r) == 2);
	CHECK(s.nodes[0].reads_done == 1 && s.nodes[0].last_read_index == 2);
	/* Now a read is answered at once. */
	CHECK(raft_read_index(r, 8) == 0);
	sim_process(&s, 0);
	CHECK(s.nodes[0].reads_done == 2);
	uint64_t v;
	for (int i = 0; i < 10; i++)
		CHECK(sim_propose(&s, 0, &v) == 0);
	CHECK(raft_commit(r) == 12 && s.nodes[0].applied == 12);
	/* Restart: recovers term and log; wins again at once. */
	sim_crash(&s, 0);
	sim_restart(&s, 0);
	r = s.nodes[0].r;
	CHECK(raft_term(r) == 2 && raft_last_index(r) == 12);
	sim_settle(&s);
	raft_campaign(r);
	sim_settle(&s);
	CHECK(raft_role(r) == RAFT_LEADER && raft_term(r) == 3);
	CHECK(raft_commit(r) == 13);
	sim_done(&s);
}

static void test_three_nodes(void)
{
	struct sim s;
	sim_init(&s, 3, 3, 2);
	sim_settle(&s);
	int l = elect(&s, 100);
	CHECK(l >= 0);
	struct raft *lr = s.nodes[l].r;
	int f = (l + 1) % 3;
	/* A follower forwards proposals to the leader. */
	uint64_t v;
	CHECK(sim_propose(&s, f, &v) == 0);
	drain(&s);
	for (int k = 0; k < 3; k++)
		sim_tick(&s, l); /* heartbeats carry the new commit */
	drain(&s);
	for (int i = 0; i < 3; i++)
		CHECK(raft_commit(s.nodes[i].r) == raft_last_index(lr));

	/* ReadIndex on the leader: needs a heartbeat round. */
	CHECK(raft_read_index(lr, 100) == 0);
	sim_process(&s, l);
	CHECK(s.nodes[l].reads_done == 0);
	drain(&s);
	CHECK(s.nodes[l].reads_done == 1);
	CHECK(s.nodes[l].last_read_index == raft_commit(lr));
	/* Many reads share one round. */
	for (uint64_t c = 0; c < 5; c++)
		CHECK(raft_read_index(lr, 200 + c) == 0);
	sim_process(&s, l);
	drain(&s);
	CHECK(s.nodes[l].reads_done == 6);
	/* ReadIndex on a follower: forwarded. */
	CHECK(raft_read_index(s.nodes[f].r, 300) == 0);
	sim_process(&s, f);
	drain(&s);
	CHECK(s.nodes[f].reads_done == 1);

	/* An isolated leader cannot confirm reads, and steps down
	 * (CheckQuorum); its pending read is dropped. */
	s.nodes[l].isolated = true;
	CHECK(raft_read_index(lr, 400) == 0);
	sim_process(&s, l);
	for (int k = 0; k < 21; k++)
		sim_tick(&s, l);
	CHECK(raft_role(lr) == RAFT_FOLLOWER);
	CHECK(s.nodes[l].reads_dropped == 1);
	CHECK(raft_read_index(lr, 401) == -ENOTCONN);
	/* The others elect a new leader; the old one rejoins. */
	for (int k = 0; k < 100 && sim_leader(&s) < 0; k++) {
		for (int i = 0; i < 3; i++)
			if (i != l)
				sim_tick(&s, i);
		drain(&s);
	}
	int l2 = sim_leader(&s);
	CHECK(l2 >= 0 && l2 != l);
	s.nodes[l].isolated = false;
	for (int k = 0; k < 5; k++) {
		sim_tick(&s, l2);
		drain(&s);
	}
	CHECK(raft_lead(lr) == s.nodes[l2].id);
	CHECK(raft_commit(lr) == raft_commit(s.nodes[l2].r));
	sim_check_log_matching(&s);
	sim_done(&s);
}

static void test_transfer(void)
{
	struct sim s;
	sim_init(&s, 3, 3, 3);
	sim_settle(&s);
	int l = elect(&s, 100);
	CHECK(l >= 0);
	int t = (l + 2) % 3;
	uint64_t term = raft_term(s.nodes[l].r);
	raft_transfer_leader(s.nodes[l].r, s.nodes[t].id);
	sim_process(&s, l);
	/* Proposals are refused while the transfer runs. */
	drain(&s);
	CHECK(sim_leader(&s) == t);
	CHECK(raft_term(s.nodes[t].r) == term + 1);
	/* Through a follower (forwarded to the leader). */
	raft_transfer_leader(s.nodes[l].r, s.nodes[l].id);
	sim_process(&s, l);
	drain(&s);
	CHECK(sim_leader(&s) == l);
	/* A transfer to a node that cannot catch up is refused proposals
	 * meanwhile, and abandoned after an election timeout. */
	int u = (l + 1) % 3;
	s.nodes[u].isolated = true;
	for (int i = 0; i < 3; i++)
		sim_propose(&s, l, NULL);
	raft_transfer_leader(s.nodes[l].r, s.nodes[u].id);
	sim_process(&s, l);
	CHECK(sim_propose(&s, l, NULL) == -EBUSY);
	for (int k = 0; k < 11; k++) {
		sim_tick(&s, l);
		drain(&s);
	}
	CHECK(raft_role(s.nodes[l].r) == RAFT_LEADER);
	CHECK(sim_propose(&s, l, NULL) == 0);
	sim_done(&s);
}

static void test_conf_change(void)
{
	struct sim s;
	sim_init(&s, 4, 3, 4);
	sim_settle(&s);
	int l = elect(&s, 100);
	CHECK(l >= 0);
	struct raft *lr = s.nodes[l].r;
	CHECK(sim_propose_conf(&s, l, RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddLearnerNode, 4) == 0);
	/* One change at a time. */
	CHECK(sim_propose_conf(&s, l, RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode, 4) == -EBUSY);
	for (int k = 0; k < 20; k++) {
		sim_tick(&s, l);
		drain(&s);
	}
	struct raft *n4 = s.nodes[3].r;
	CHECK(raft_voters(lr) == 3 && raft_is_learner(n4));
	CHECK(raft_commit(n4) == raft_commit(lr));
	CHECK(sim_propose_conf(&s, l, RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode, 4) == 0);
	for (int k = 0; k < 5; k++) {
		sim_tick(&s, l);
		drain(&s);
	}
	CHECK(raft_voters(lr) == 4 && !raft_is_learner(n4) && raft_voters(n4) == 4);
	/* Remove a follower; the rest keep committing. */
	int gone = l == 2 ? 1 : 2;
	CHECK(sim_propose_conf(&s, l, RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode,
			       s.nodes[gone].id) == 0);
	for (int k = 0; k < 5; k++) {
		sim_tick(&s, l);
		drain(&s);
	}
	CHECK(raft_voters(lr) == 3);
	struct raft_conf c;
	CHECK(raft_conf_at(lr, raft_applied(lr), &c) == 0 && c.n == 3);
	s.nodes[gone].isolated = true;
	CHECK(sim_propose(&s, l, NULL) == 0);
	for (int k = 0; k < 3; k++) {
		sim_tick(&s, l);
		drain(&s);
	}
	CHECK(raft_commit(lr) == raft_last_index(lr));
	/* Removing the leader itself: it steps down, the others go on. */
	CHECK(sim_propose_conf(&s, l, RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode,
			       s.nodes[l].id) == 0);
	for (int k = 0; k < 3; k++) {
		sim_tick(&s, l);
		drain(&s);
	}
	CHECK(raft_role(lr) != RAFT_LEADER);
	s.nodes[l].isolated = true;
	int l2 = -1;
	for (int k = 0; k < 200 && l2 < 0; k++) {
		for (int i = 0; i < 4; i++)
			if (i != l && i != gone)
				sim_tick(&s, i);
		drain(&s);
		l2 = sim_leader(&s);
		if (l2 == l)
			l2 = -1;
	}
	CHECK(l2 >= 0 && raft_voters(s.nodes[l2].r) == 2);
	sim_done(&s);
}

static void test_snapshot_catch_up(void)
{
	struct sim s;
	sim_init(&s, 3, 3, 5);
	sim_settle(&s);
	int l = elect(&s, 100);
	CHECK(l >= 0);
	int f = (l + 1) % 3;
	s.nodes[f].isolated = true;
	for (int i = 0; i < 50; i++) {
		CHECK(sim_propose(&s, l, NULL) == 0);
		drain(&s);
	}
	struct raft *lr = s.nodes[l].r;
	uint64_t ci = raft_commit(lr);
	CHECK(ci >= 50);
	CHECK(raft_compact(lr, ci + 1) == -EINVAL);
	CHECK(raft_compact(lr, ci - 5) == 0);
	CHECK(raft_base_index(lr) == ci - 5 && raft_entry(lr, ci - 5) == NULL);
	struct raft_conf c;
	CHECK(raft_conf_at(lr, ci - 5, &c) == 0 && c.n == 3);
	s.nodes[f].isolated = false;
	for (int k = 0; k < 30; k++) {
		sim_tick(&s, l);
		drain(&s);
	}
	struct raft *fr = s.nodes[f].r;
	CHECK(raft_base_index(fr) >= ci - 5);
	CHECK(raft_commit(fr) == raft_commit(lr));
	sim_check_log_matching(&s);
	sim_done(&s);
}

/* Delivers every message except MsgSnap, which go to held[] (the test
 * decides their fate); returns how many are held. */
static size_t drain_but_snaps(struct sim *s, struct sim_packet *held,
			      size_t n_held, size_t max)
{
	for (;;) {
		for (size_t k = 0; k < s->n_net;) {
			if (s->net[k].snap) {
				CHECK(n_held < max);
				held[n_held++] = s->net[k];
				s->net[k] = s->net[--s->n_net];
			} else {
				k++;
			}
		}
		if (s->n_net == 0)
			return n_held;
		sim_deliver_one(s);
	}
}

/* Delivers held[i] alone and holds what its receiver answers. */
static void deliver_held(struct sim *s, struct sim_packet *held, size_t i,
			 struct sim_packet *ret_answer)
{
	CHECK(s->n_net == 0);
	s->net[s->n_net++] = held[i];
	CHECK(sim_deliver_one(s));
	CHECK(s->n_net == 1);
	*ret_answer = s->net[--s->n_net];
}

/*
 * etcd's ReportSnapshot: while a snapshot is in flight the leader sends the
 * follower nothing but heartbeats; a failure sends it back to probing from
 * its match after the next heartbeat response (never at once), a success
 * from after the snapshot.
 */
static void test_report_snapshot(void)
{
	struct sim s;
	struct sim_packet held[8], ans;
	size_t n = 0;
	sim_init(&s, 3, 3, 6);
	s.no_snap_reports = true;
	sim_settle(&s);
	int l = elect(&s, 100);
	CHECK(l >= 0);
	int f = (l + 1) % 3;
	struct raft *lr = s.nodes[l].r;
	uint64_t fid = s.nodes[f].id;
	s.nodes[f].isolated = true;
	for (int i = 0; i < 30; i++) {
		CHECK(sim_propose(&s, l, NULL) == 0);
		drain(&s);
	}
	uint64_t base = raft_commit(lr) - 2;
	CHECK(raft_compact(lr, base) == 0);
	s.nodes[f].isolated = false;
	struct progress *p = pr_get(lr, fid);
	/* Reports about a peer that is not being sent a snapshot, or to a
	 * follower, change nothing. */
	enum pr_state st = p->state;
	raft_report_snapshot(lr, fid, true);
	raft_report_snapshot(s.nodes[f].r, s.nodes[l].id, false);
	CHECK(p->state == st);
	for (int k = 0; k < 40 && p->state != PR_SNAPSHOT; k++) {
		sim_tick(&s, l);
		n = drain_but_snaps(&s, held, n, 8);
	}
	CHECK(p->state == PR_SNAPSHOT && p->pending_snapshot == base && n == 1);
	/* In flight: heartbeats only, however long it takes. */
	for (int k = 0; k < 30; k++) {
		sim_tick(&s, l);
		n = drain_but_snaps(&s, held, n, 8);
	}
	CHECK(p->state == PR_SNAPSHOT && n == 1);

	/* It failed: probe from the match, after the next heartbeat. */
	uint64_t match = p->match;
	raft_report_snapshot(lr, fid, true);
	CHECK(p->state == PR_PROBE && p->pending_snapshot == 0);
	CHECK(p->next == match + 1 && p->probe_sent);
	sim_process(&s, l);
	CHECK(s.n_net == 0);
	sim_tick(&s, l);
	n = drain_but_snaps(&s, held, n, 8);
	CHECK(n == 2 && p->state == PR_SNAPSHOT && p->pending_snapshot == base);

	/* The second one arrives; the follower takes it. */
	free(held[0].buf);
	deliver_held(&s, held, 1, &ans);
	struct raft *fr = s.nodes[f].r;
	CHECK(raft_base_index(fr) == base && raft_commit(fr) == base);
	/* Reported before the follower's answer: probe after the snapshot,
	 * and wait for that answer. */
	raft_report_snapshot(lr, fid, false);
	CHECK(p->state == PR_PROBE && p->next == base + 1 && p->probe_sent);
	sim_process(&s, l);
	CHECK(s.n_net == 0);
	s.net[s.n_net++] = ans;
	drain(&s);
	CHECK(p->state == PR_REPLICATE && p->match == raft_last_index(lr));
	/* A late duplicate report about a replicating peer is ignored. */
	raft_report_snapshot(lr, fid, true);
	CHECK(p->state == PR_REPLICATE);
	for (int k = 0; k < 3; k++) {
		sim_tick(&s, l);
		drain(&s);
	}
	CHECK(raft_commit(fr) == raft_commit(lr));
	sim_check_log_matching(&s);
	sim_done(&s);
}

/* The shutdown hand-over's choice: the most up-to-date voter. */
static void test_transfer_target(void)
{
	struct sim s;
	sim_init(&s, 4, 3, 8);
	sim_settle(&s);
	int l = elect(&s, 100);
	CHECK(l >= 0);
	struct raft *lr = s.nodes[l].r;
	CHECK(raft_transfer_target(s.nodes[(l + 1) % 3].r) == 0);
	CHECK(sim_propose_conf(&s, l, RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddLearnerNode, 4) == 0);
	for (int k = 0; k < 5; k++) {
		sim_tick(&s, l);
		drain(&s);
	}
	/* One voter falls behind; the learner is never chosen. */
	int behind = (l + 1) % 3, ahead = (l + 2) % 3;
	s.nodes[behind].isolated = true;
	for (int i = 0; i < 5; i++) {
		CHECK(sim_propose(&s, l, NULL) == 0);
		drain(&s);
	}
	CHECK(raft_transfer_target(lr) == s.nodes[ahead].id);
	s.nodes[behind].isolated = false;
	for (int k = 0; k < 5; k++) {
		sim_tick(&s, l);
		drain(&s);
	}
	uint64_t t = raft_transfer_target(lr);
	CHECK(t == s.nodes[ahead].id || t == s.nodes[behind].id);
	sim_done(&s);
}

static uint64_t total_snap_reports;

/* A seeded run: chaos, then healing; the safety checks run inside sim. */
static void random_run(uint64_t seed, int nodes, int voters, int steps)
{
	struct sim s;
	sim_init(&s, nodes, voters, seed);
	snprintf(sim_failure_note, sizeof(sim_failure_note),
		 "in the seeded run of seed %llu (%d nodes, %d voters); replay "
		 "with: test_raft 1 %llu\n", (unsigned long long)seed, nodes,
		 voters, (unsigned long long)(seed % SEED_SPAN));
	s.loss_pct = 10;
	s.crash_mid_pct = 5;
	sim_settle(&s);
	uint64_t proposals = 0;
	for (int step = 0; step < steps; step++) {
		uint64_t x = sim_rand(&s) % 1000;
		int i = (int)(sim_rand(&s) % (uint64_t)nodes);
		if (x < 500) {
			sim_deliver_one(&s);
		} else if (x < 800) {
			sim_tick(&s, i);
		} else if (x < 900) {
			if (sim_propose(&s, i, NULL) == 0)
				proposals++;
		} else if (x < 930) {
			if (s.nodes[i].r) {
				raft_read_index(s.nodes[i].r, step);
				sim_process(&s, i);
			}
		} else if (x < 932) {
			/* Partitions come and go. */
			s.nodes[i].isolated = true;
		} else if (x < 935) {
			for (int k = 0; k < nodes; k++)
				s.nodes[k].isolated = false;
		} else if (x < 936) {
			if (s.nodes[i].r)
				sim_crash(&s, i);
		} else if (x < 938) {
			if (!s.nodes[i].r)
				sim_restart(&s, i);
		} else if (x < 943) {
			if (s.nodes[i].r) {
				uint64_t to = 1 + sim_rand(&s) % (uint64_t)nodes;
				raft_transfer_leader(s.nodes[i].r, to);
				sim_process(&s, i);
			}
		} else if (x < 950 && nodes > voters) {
			static const Raftpb__ConfChangeType t[] = {
				RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddLearnerNode,
				RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode,
				RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode,
			};
			uint64_t id = (uint64_t)voters + 1 +
				      sim_rand(&s) % (uint64_t)(nodes - voters);
			sim_propose_conf(&s, i, t[sim_rand(&s) % 3], id);
		} else if (x < 955) {
			struct raft *r = s.nodes[i].r;
			if (r && raft_applied(r) > raft_base_index(r) + 10) {
				uint64_t ci = raft_applied(r) - 5;
				CHECK(raft_compact(r, ci) == 0);
			}
		} else {
			sim_deliver_one(&s);
		}
		if (step % 64 == 0)
			sim_check_log_matching(&s);
	}
	if (getenv("SIM_VERBOSE"))
		fprintf(stderr, "queue %zu ", s.n_net);
	/* Heal and check liveness: a leader, and a new entry committed. */
	s.loss_pct = 0;
	s.crash_mid_pct = 0;
	for (int i = 0; i < nodes; i++) {
		s.nodes[i].isolated = false;
		if (!s.nodes[i].r)
			sim_restart(&s, i);
	}
	sim_settle(&s);
	bool ok = false;
	for (int k = 0; k < 400 && !ok; k++) {
		for (int i = 0; i < nodes; i++)
			sim_tick(&s, i);
		drain(&s);
		int l = sim_leader(&s);
		if (l < 0)
			continue;
		uint64_t v;
		if (sim_propose(&s, l, &v) != 0)
			continue;
		uint64_t idx = raft_last_index(s.nodes[l].r);
		for (int j = 0; j < 5; j++) {
			sim_tick(&s, l);
			drain(&s);
		}
		ok = raft_commit(s.nodes[l].r) >= idx;
	}
	if (!ok) {
		fprintf(stderr, "seed %llu: no progress after healing\n",
			(unsigned long long)seed);
		for (int i = 0; i < nodes; i++) {
			struct raft *r = s.nodes[i].r;
			struct raft_conf c;
			raft_conf_get(r, &c);
			fprintf(stderr, "  node %d: %s term %llu lead %llu commit %llu applied %llu last %llu (term %llu) conf",
				i + 1, raft_role_name(raft_role(r)),
				(unsigned long long)raft_term(r),
				(unsigned long long)raft_lead(r),
				(unsigned long long)raft_commit(r),
				(unsigned long long)raft_applied(r),
				(unsigned long long)raft_last_index(r),
				(unsigned long long)(raft_last_index(r) > raft_base_index(r) ? raft_entry(r, raft_last_index(r))->term : raft_base_term(r)));
			for (int k = 0; k < c.n; k++)
				fprintf(stderr, " %llu%s", (unsigned long long)c.ids[k],
					c.learner[k] ? "L" : "");
			fprintf(stderr, "\n");
		}
	}
	CHECK(ok);
	sim_check_log_matching(&s);
	total_snap_reports += s.snap_reports;
	if (getenv("SIM_VERBOSE")) {
		int l = sim_leader(&s);
		uint64_t reads = 0;
		for (int i = 0; i < nodes; i++)
			reads += s.nodes[i].reads_done;
		fprintf(stderr, "seed %llu: %llu proposals, commit %llu, term %llu, %llu reads\n",
			(unsigned long long)seed, (unsigned long long)proposals,
			(unsigned long long)raft_commit(s.nodes[l].r),
			(unsigned long long)raft_term(s.nodes[l].r),
			(unsigned long long)reads);
	}
	sim_done(&s);
	sim_failure_note[0] = 0;
}

/*
 * test_raft [SEEDS [FIRST]]: the scenarios, then SEEDS seeded runs of three
 * clusters each from seed FIRST (1). A failing run prints its seed and the
 * command that replays it alone ("test_raft 1 SEED").
 */
int main(int argc, char **argv)
{
	long seeds = argc > 1 ? strtol(argv[1], NULL, 10) : 1500;
	long first = argc > 2 ? strtol(argv[2], NULL, 10) : 1;
	if (seeds < 0 || first < 1 || first + seeds > SEED_SPAN) {
		fprintf(stderr, "usage: test_raft [SEEDS [FIRST]] (FIRST >= 1, "
			"FIRST + SEEDS <= %d)\n", SEED_SPAN);
		return 2;
	}
	if (argc <= 2) {
		test_single_node();
		test_three_nodes();
		test_transfer();
		test_conf_change();
		test_snapshot_catch_up();
		test_report_snapshot();
		test_transfer_target();
	}
	for (long seed = first; seed < first + seeds; seed++) {
		random_run((uint64_t)seed, 3, 3, 4000);
		random_run((uint64_t)seed + SEED_SPAN, 5, 5, 4000);
		random_run((uint64_t)seed + 2 * SEED_SPAN, 5, 3, 5000);
	}
	/* The seeded runs exercise snapshots, and their reports, too. */
	if (seeds >= 100)
		CHECK(total_snap_reports > 0);
	printf("raft core: %s%ld seeds from %ld x 3 runs passed (%llu snapshot "
	       "reports)\n", argc <= 2 ? "scenarios and " : "", seeds, first,
	       (unsigned long long)total_snap_reports);
	return 0;
}
