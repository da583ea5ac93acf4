/*
 * The membership rule raftd and storaged share (raft_confcheck.c): which
 * changes are valid for a configuration, when a learner may be promoted,
 * and etcd's strict reconfiguration check; and that the core applies an
 * invalid change as a no-op.
 */
#include <errno.h>
#include <string.h>

#include "rpc.pb-c.h"
#include "sim.h"

static uint8_t ctx[64];

static Raftpb__ConfChange cc_of(Raftpb__ConfChangeType t, uint64_t id,
				const char *purl, bool with_ctx)
{
	Raftpb__ConfChange cc = RAFTPB__CONF_CHANGE__INIT;
	Etcdserverpb__Member m = ETCDSERVERPB__MEMBER__INIT;
	char *u = (char *)purl;
	cc.type = t;
	cc.nodeid = id;
	m.id = id;
	if (purl) {
		m.n_peerurls = 1;
		m.peerurls = &u;
	}
	if (with_ctx) {
		cc.context.data = ctx;
		cc.context.len = etcdserverpb__member__pack(&m, ctx);
	}
	return cc;
}

#define ADD RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode
#define ADDL RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddLearnerNode
#define DEL RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode
#define UPD RAFTPB__CONF_CHANGE_TYPE__ConfChangeUpdateNode

static enum raft_cc_err v(const struct raft_conf *c, Raftpb__ConfChangeType t,
			  uint64_t id, const char *purl, bool with_ctx)
{
	Raftpb__ConfChange cc = cc_of(t, id, purl, with_ctx);
	return raft_cc_validate(c, &cc);
}

static void test_validate(void)
{
	/* Voters 1, 2, 3; learner 4. */
	struct raft_conf c = {.n = 4, .ids = {1, 2, 3, 4},
			      .learner = {false, false, false, true}};
	const char *u = "http://127.0.0.1:5";
	CHECK(v(&c, ADD, 5, u, true) == RAFT_CC_OK);
	CHECK(v(&c, ADD, 5, NULL, false) == RAFT_CC_OK); /* raft-level add */
	CHECK(v(&c, ADD, 2, u, true) == RAFT_CC_ID_EXISTS);
	CHECK(v(&c, ADD, 4, u, true) == RAFT_CC_ID_EXISTS);
	CHECK(v(&c, ADD, 0, u, true) == RAFT_CC_BAD);
	/* Promotion: a Member context without peer URLs. */
	CHECK(v(&c, ADD, 4, NULL, true) == RAFT_CC_OK);
	CHECK(v(&c, ADD, 2, NULL, true) == RAFT_CC_NOT_LEARNER);
	CHECK(v(&c, ADD, 9, NULL, true) == RAFT_CC_NOT_FOUND);
	/* Learners: one at most (etcd 3.4). */
	CHECK(v(&c, ADDL, 6, u, true) == RAFT_CC_TOO_MANY_LEARNERS);
	CHECK(v(&c, ADDL, 4, u, true) == RAFT_CC_ID_EXISTS);
	CHECK(v(&c, ADDL, 1, u, true) == RAFT_CC_ID_EXISTS);
	struct raft_conf c3 = {.n = 3, .ids = {1, 2, 3}};
	CHECK(v(&c3, ADDL, 6, u, true) == RAFT_CC_OK);
	CHECK(v(&c, DEL, 3, NULL, false) == RAFT_CC_OK);
	CHECK(v(&c, DEL, 4, NULL, false) == RAFT_CC_OK);
	CHECK(v(&c, DEL, 9, NULL, false) == RAFT_CC_NOT_FOUND);
	CHECK(v(&c, UPD, 1, u, true) == RAFT_CC_OK);
	CHECK(v(&c, UPD, 9, u, true) == RAFT_CC_NOT_FOUND);
	Raftpb__ConfChange bad = cc_of(ADD, 5, u, true);
	bad.type = 99;
	CHECK(raft_cc_validate(&c, &bad) == RAFT_CC_BAD);

	uint32_t code = 0;
	CHECK(raft_cc_err_message(RAFT_CC_OK, &code) == NULL);
	CHECK(strcmp(raft_cc_err_message(RAFT_CC_NOT_FOUND, &code),
		     "etcdserver: member not found") == 0 && code == 5);
	CHECK(strcmp(raft_cc_err_message(RAFT_CC_ID_EXISTS, &code),
		     "etcdserver: member ID already exist") == 0 && code == 9);
	CHECK(strcmp(raft_cc_err_message(RAFT_CC_NOT_LEARNER, &code),
		     "etcdserver: can only promote a learner member") == 0 &&
	      code == 9);
	CHECK(strcmp(raft_cc_err_message(RAFT_CC_TOO_MANY_LEARNERS, &code),
		     "etcdserver: too many learner members in cluster") == 0 &&
	      code == 9);
}

static void test_learner_ready(void)
{
	CHECK(raft_cc_learner_ready(0, 0));
	CHECK(raft_cc_learner_ready(90, 100));
	CHECK(!raft_cc_learner_ready(89, 100));
	CHECK(raft_cc_learner_ready(100, 100));
	CHECK(!raft_cc_learner_ready(0, 1));
	CHECK(raft_cc_learner_ready(9, 10));
	CHECK(!raft_cc_learner_ready(8, 10));
	/* No overflow near the top. */
	CHECK(raft_cc_learner_ready(UINT64_MAX, UINT64_MAX));
	CHECK(!raft_cc_learner_ready(UINT64_MAX / 2, UINT64_MAX));
}

static void test_healthy(void)
{
	struct raft_conf c = {.n = 4, .ids = {1, 2, 3, 4},
			      .learner = {false, false, false, true}};
	bool all[4] = {true, true, true, false};
	bool one_down[4] = {true, true, false, false};
	const char *u = "http://127.0.0.1:5";
	Raftpb__ConfChange add = cc_of(ADD, 5, u, true);
	Raftpb__ConfChange addl = cc_of(ADDL, 5, u, true);
	Raftpb__ConfChange promote = cc_of(ADD, 4, NULL, true);
	/* Adding a voter needs every voter connected. */
	CHECK(raft_cc_healthy(&c, all, 1, &add));
	CHECK(!raft_cc_healthy(&c, one_down, 1, &add));
	CHECK(raft_cc_healthy(&c, one_down, 1, &addl));
	CHECK(raft_cc_healthy(&c, one_down, 1, &promote));
	/* Self counts as active even if its flag is not set. */
	bool self_unset[4] = {false, true, true, false};
	CHECK(raft_cc_healthy(&c, self_unset, 1, &add));
	/* Removing: a down voter (not self) or a learner always may go. */
	Raftpb__ConfChange del3 = cc_of(DEL, 3, NULL, false);
	Raftpb__ConfChange del2 = cc_of(DEL, 2, NULL, false);
	Raftpb__ConfChange del1 = cc_of(DEL, 1, NULL, false);
	Raftpb__ConfChange del4 = cc_of(DEL, 4, NULL, false);
	CHECK(raft_cc_healthy(&c, one_down, 1, &del3));
	CHECK(raft_cc_healthy(&c, one_down, 1, &del4));
	/* 3 voters, 2 active: removing an active one leaves 1 < 2. */
	CHECK(!raft_cc_healthy(&c, one_down, 1, &del2));
	CHECK(!raft_cc_healthy(&c, one_down, 1, &del1));
	CHECK(raft_cc_healthy(&c, all, 1, &del2));
	CHECK(raft_cc_healthy(&c, all, 1, &del1));
	/* Two voters: removing the other (active) one leaves one of one. */
	struct raft_conf c2 = {.n = 2, .ids = {1, 2}};
	bool both[2] = {true, true};
	CHECK(raft_cc_healthy(&c2, both, 1, &del2));
	CHECK(raft_cc_healthy(&c2, both, 1, &del1));
}

/* The core takes the same decision at apply time: no change. */
static void test_apply_noop(void)
{
	struct sim s;
	sim_init(&s, 3, 3, 42);
	int l = -1;
	for (int k = 0; k < 500 && l < 0; k++) {
		for (int i = 0; i < 3; i++)
			sim_tick(&s, i);
		while (sim_deliver_one(&s))
			sim_settle(&s);
		l = sim_leader(&s);
	}
	CHECK(l >= 0);
	struct raft *r = s.nodes[l].r;
	struct raft_conf before, after;
	raft_conf_get(r, &before);
	Raftpb__ConfChange cc = cc_of(DEL, 77, NULL, false);
	CHECK(raft_apply_conf_change(r, &cc) == -EINVAL);
	cc = cc_of(ADD, s.nodes[(l + 1) % 3].id, NULL, true); /* promote a voter */
	CHECK(raft_apply_conf_change(r, &cc) == -EINVAL);
	raft_conf_get(r, &after);
	CHECK(memcmp(&before, &after, sizeof(before)) == 0);
	cc = cc_of(ADDL, 9, "http://x:1", true);
	CHECK(raft_apply_conf_change(r, &cc) == 0);
	cc = cc_of(ADDL, 10, "http://x:2", true);
	CHECK(raft_apply_conf_change(r, &cc) == -EINVAL);
	raft_conf_get(r, &after);
	CHECK(after.n == before.n + 1);
	/* The pending-change view: nothing unapplied here. */
	CHECK(!raft_conf_pending(r));
	uint64_t m;
	bool on;
	CHECK(raft_peer_status(r, 9, &m, &on) == 0 && m == 0);
	CHECK(raft_peer_status(r, 77, &m, &on) == -ENOENT);
	CHECK(raft_peer_status(s.nodes[(l + 1) % 3].r, 9, &m, &on) == -ENOTCONN);
	sim_done(&s);
}

int main(void)
{
	test_validate();
	test_learner_ready();
	test_healthy();
	test_apply_noop();
	printf("conf check: all passed\n");
	return 0;
}
