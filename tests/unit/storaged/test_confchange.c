/*
 * Unit test of membership changes at apply: add, add a learner, promote,
 * update, remove, each of etcd's refusals (which change nothing), removed
 * IDs kept across a restart, and which entries carry an answer (a request
 * ID) and what it holds.
 */
#include <errno.h>

#include "confchange.h"
#include "mvcc_helpers.h"

#define A_ID 0x1000
#define B_ID 0x2000
#define C_ID 0x3000
#define L_ID 0x4000
#define L2_ID 0x5000

/* Set: the next ConfChange entries have no context at all. */
static int no_context;

/* A ConfChange entry at the next index (a context but for a removal, as
 * gatewayd sends them); peer NULL: a context with no peer URLs. */
static Raftpb__Entry *cc_entry(int type, uint64_t nodeid, uint64_t reqid,
			       const char *name, const char *peer)
{
	Raftpb__ConfChange cc = RAFTPB__CONF_CHANGE__INIT;
	cc.type = type;
	cc.nodeid = nodeid;
	cc.id = reqid;
	if (type != RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode &&
	    !no_context) {
		Etcdserverpb__Member mb = ETCDSERVERPB__MEMBER__INIT;
		char **peers = arena_alloc(&a, sizeof(*peers));
		peers[0] = (char *)peer;
		mb.id = nodeid;
		mb.name = (char *)(name ? name : "");
		mb.peerurls = peers;
		mb.n_peerurls = peer ? 1 : 0;
		mb.islearner =
			type == RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddLearnerNode;
		cc.context.len = etcdserverpb__member__get_packed_size(&mb);
		cc.context.data = arena_alloc(&a, cc.context.len + 1);
		etcdserverpb__member__pack(&mb, cc.context.data);
	}
	Raftpb__Entry *e = ARENA_NEW(&a, Raftpb__Entry, RAFTPB__ENTRY__INIT);
	e->index = next_index++;
	e->term = 2;
	e->type = RAFTPB__ENTRY_TYPE__EntryConfChange;
	e->data.len = raftpb__conf_change__get_packed_size(&cc);
	e->data.data = arena_alloc(&a, e->data.len + 1);
	raftpb__conf_change__pack(&cc, e->data.data);
	return e;
}

/* Applies e alone; *ret_id and the result as apply_entry gives them. */
static Ipc__Result *apply_cc(Raftpb__Entry *e, uint64_t *ret_id)
{
	uint64_t id = ret_id ? *ret_id : 0;
	Ipc__Result *res = NULL;
	CHECK(mvcc_batch_begin(m) == 0);
	CHECK(apply_entry(m, e, &a, &id, &res) == 0);
	CHECK(mvcc_batch_commit(m) == 0);
	CHECK_EQ(mvcc_applied(m), e->index);
	if (ret_id)
		*ret_id = id;
	return res;
}

static Etcdserverpb__Member **members(size_t *ret_n)
{
	Etcdserverpb__Member **v;
	CHECK(mvcc_member_list(m, &a, &v, ret_n) == 0);
	return v;
}

/* The packed members column family's members, for "nothing changed". */
static char *snapshot_members(void)
{
	size_t n;
	Etcdserverpb__Member **v = members(&n);
	size_t cap = 4096, len = 0;
	char *s = arena_alloc(&a, cap);
	for (size_t i = 0; i < n; i++) {
		len += (size_t)snprintf(s + len, cap - len, "%llx:%s:%d:",
					(unsigned long long)v[i]->id,
					v[i]->name ? v[i]->name : "",
					v[i]->islearner);
		for (size_t j = 0; j < v[i]->n_peerurls; j++)
			len += (size_t)snprintf(s + len, cap - len, "%s,",
						v[i]->peerurls[j]);
		len += (size_t)snprintf(s + len, cap - len, ";");
	}
	return s;
}

/* The bootstrap: A and B, as raftd writes them (no request ID). */
static void bootstrap(void)
{
	uint64_t id = 7;
	CHECK(apply_cc(cc_entry(RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode,
				A_ID, 0, "a", "http://a:2380"), &id) == NULL);
	CHECK_EQ(id, 7); /* untouched */
	CHECK(apply_cc(cc_entry(RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode,
				B_ID, 0, "b", "http://b:2380"), NULL) == NULL);
}

static void test_changes(void)
{
	store_new();
	bootstrap();
	uint64_t id;

	/* Add C: the answer names C and lists A, B, C. */
	Ipc__Result *r = apply_cc(cc_entry(
		RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode, C_ID, 0xabcd000000000001ull,
		NULL, "http://c:2380"), &id);
	CHECK_EQ(id, 0xabcd000000000001ull);
	CHECK(r && !r->error);
	CHECK_EQ(r->response_case, IPC__RESULT__RESPONSE_MEMBER_ADD);
	CHECK(r->member_add->header && r->member_add->header->revision == 0);
	CHECK_EQ(r->member_add->member->id, C_ID);
	CHECK(!r->member_add->member->islearner);
	CHECK(r->member_add->member->n_peerurls == 1 &&
	      strcmp(r->member_add->member->peerurls[0], "http://c:2380") == 0);
	CHECK_EQ(r->member_add->n_members, 3);
	CHECK_EQ(r->member_add->members[2]->id, C_ID);
	CHECK(strcmp(r->member_add->members[0]->name, "a") == 0);

	/* Add learner L. */
	r = apply_cc(cc_entry(RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddLearnerNode,
			      L_ID, 2, NULL, "http://l:2380"), &id);
	CHECK_EQ(id, 2);
	CHECK_EQ(r->response_case, IPC__RESULT__RESPONSE_MEMBER_ADD);
	CHECK(r->member_add->member->islearner);
	CHECK_EQ(r->member_add->n_members, 4);
	CHECK(r->member_add->members[3]->islearner);

	/* Promote L: AddNode with a context without peer URLs. */
	r = apply_cc(cc_entry(RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode, L_ID,
			      3, NULL, NULL), &id);
	CHECK_EQ(r->response_case, IPC__RESULT__RESPONSE_MEMBER_PROMOTE);
	CHECK(r->member_promote->header);
	CHECK_EQ(r->member_promote->n_members, 4);
	CHECK(!r->member_promote->members[3]->islearner);
	CHECK(strcmp(r->member_promote->members[3]->peerurls[0],
		     "http://l:2380") == 0);

	/* Update C's peer URL (its own old one may stay: only others'
	 * count). */
	r = apply_cc(cc_entry(RAFTPB__CONF_CHANGE_TYPE__ConfChangeUpdateNode,
			      C_ID, 4, NULL, "http://c2:2380"), &id);
	CHECK_EQ(r->response_case, IPC__RESULT__RESPONSE_MEMBER_UPDATE);
	CHECK(strcmp(r->member_update->members[2]->peerurls[0],
		     "http://c2:2380") == 0);
	r = apply_cc(cc_entry(RAFTPB__CONF_CHANGE_TYPE__ConfChangeUpdateNode,
			      C_ID, 5, NULL, "http://c2:2380"), &id);
	CHECK(r && !r->error);

	/* Remove C: gone from the list. */
	r = apply_cc(cc_entry(RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode,
			      C_ID, 6, NULL, NULL), &id);
	CHECK_EQ(r->response_case, IPC__RESULT__RESPONSE_MEMBER_REMOVE);
	CHECK_EQ(r->member_remove->n_members, 3);
	for (size_t i = 0; i < 3; i++)
		CHECK(r->member_remove->members[i]->id != C_ID);
	CHECK(mvcc_member_removed(m, C_ID));
	CHECK(!mvcc_member_removed(m, A_ID));

	/* A restart keeps the members and the removed IDs. */
	mvcc_close(m);
	store_open();
	size_t n;
	Etcdserverpb__Member **v = members(&n);
	CHECK_EQ(n, 3);
	CHECK(!v[2]->islearner && v[2]->id == L_ID);
	CHECK(mvcc_member_removed(m, C_ID));

	/* At apply only the ID rules decide, as in raftd's configuration:
	 * a removed ID and a taken peer URL are refused before proposing. */
	r = apply_cc(cc_entry(RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode, C_ID,
			      7, NULL, "http://a:2380"), &id);
	CHECK(r && !r->error);
	store_destroy();
}

static void refused(int type, uint64_t nodeid, const char *peer,
		    uint32_t code, const char *msg)
{
	const char *before = snapshot_members();
	uint64_t id = 0;
	Ipc__Result *r = apply_cc(cc_entry(type, nodeid, 0x77, NULL, peer), &id);
	CHECK_EQ(id, 0x77);
	check_err(r, code, msg);
	CHECK_EQ(r->response_case, IPC__RESULT__RESPONSE__NOT_SET);
	CHECK(strcmp(before, snapshot_members()) == 0);
}

static void test_refusals(void)
{
	store_new();
	bootstrap();
	const int add = RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode;
	const int learner = RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddLearnerNode;
	const int rm = RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode;
	const int upd = RAFTPB__CONF_CHANGE_TYPE__ConfChangeUpdateNode;

	refused(add, A_ID, "http://new:2380", 9,
		"etcdserver: member ID already exist");
	refused(learner, B_ID, "http://new:2380", 9,
		"etcdserver: member ID already exist");
	refused(rm, C_ID, NULL, 5, "etcdserver: member not found");
	refused(upd, C_ID, "http://c:2380", 5, "etcdserver: member not found");
	/* Promotions: of an unknown member, of a voter. */
	refused(add, C_ID, NULL, 5, "etcdserver: member not found");
	refused(add, A_ID, NULL, 9,
		"etcdserver: can only promote a learner member");

	/* One learner, not two. */
	CHECK(!apply_cc(cc_entry(learner, L_ID, 0x78, NULL, "http://l:2380"),
			NULL)->error);
	refused(learner, L2_ID, "http://l2:2380", 9,
		"etcdserver: too many learner members in cluster");
	/* Adding a learner again is "exists", promoting twice is refused. */
	refused(learner, L_ID, "http://l9:2380", 9,
		"etcdserver: member ID already exist");
	CHECK(!apply_cc(cc_entry(add, L_ID, 0x79, NULL, NULL), NULL)->error);
	refused(add, L_ID, NULL, 9,
		"etcdserver: can only promote a learner member");
	/* With L a voter, a new learner is fine. */
	CHECK(!apply_cc(cc_entry(learner, L2_ID, 0x7a, NULL, "http://l2:2380"),
			NULL)->error);

	/* Removed: remove, update and promote are "member not found" (an
	 * addition of a removed ID is refused before proposing). */
	CHECK(!apply_cc(cc_entry(rm, B_ID, 0x7b, NULL, NULL), NULL)->error);
	refused(rm, B_ID, NULL, 5, "etcdserver: member not found");
	refused(upd, B_ID, "http://b:2380", 5, "etcdserver: member not found");
	refused(add, B_ID, NULL, 5, "etcdserver: member not found");
	/* B's peer URL is free again for a new ID. */
	CHECK(!apply_cc(cc_entry(add, C_ID, 0x7c, NULL, "http://b:2380"),
			NULL)->error);

	/* AddNode without a context is an addition, not a promotion (as
	 * raftd reads it). */
	no_context = 1;
	refused(add, A_ID, NULL, 9, "etcdserver: member ID already exist");
	no_context = 0;
	/* Node ID 0 (raft's none) is a bad entry, like an unknown type. */
	uint64_t id0 = 0;
	Ipc__Result *res0 = NULL;
	Raftpb__Entry *e0 = cc_entry(add, 0, 0x7e, NULL, "http://zero:2380");
	CHECK(mvcc_batch_begin(m) == 0);
	CHECK_EQ(apply_entry(m, e0, &a, &id0, &res0), APPLY_EBADENTRY);
	CHECK(mvcc_batch_commit(m) == 0);
	CHECK(res0 == NULL);

	/* An unknown type is a bad entry: applied, nothing changed. */
	const char *before = snapshot_members();
	uint64_t id = 0;
	Ipc__Result *res = NULL;
	Raftpb__Entry *e = cc_entry(99, A_ID, 0x7d, NULL, NULL);
	CHECK(mvcc_batch_begin(m) == 0);
	CHECK_EQ(apply_entry(m, e, &a, &id, &res), APPLY_EBADENTRY);
	CHECK(mvcc_batch_commit(m) == 0);
	CHECK(res == NULL && id == 0);
	CHECK_EQ(mvcc_applied(m), e->index);
	CHECK(strcmp(before, snapshot_members()) == 0);
	store_destroy();
}

/* The pure rule on its own (what raftd must decide alike). */
static void test_check(void)
{
	Etcdserverpb__Member x = ETCDSERVERPB__MEMBER__INIT;
	Etcdserverpb__Member y = ETCDSERVERPB__MEMBER__INIT;
	char *xp[1] = { "http://x" }, *yp[1] = { "http://y" };
	x.id = 1;
	x.peerurls = xp;
	x.n_peerurls = 1;
	y.id = 2;
	y.peerurls = yp;
	y.n_peerurls = 1;
	y.islearner = 1;
	Etcdserverpb__Member *v[2] = { &x, &y };
	Raftpb__ConfChange cc = RAFTPB__CONF_CHANGE__INIT;
	Etcdserverpb__Member g = ETCDSERVERPB__MEMBER__INIT;

	cc.type = RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode;
	cc.nodeid = 2;
	CHECK_EQ(member_cc_check(v, 2, 0, &cc, &g), 0); /* promote y */
	CHECK_EQ(member_cc_check(v, 2, 1, &cc, &g), -MVCC_EMEMBERREMOVED);
	CHECK_EQ(member_cc_check(v, 2, 0, &cc, NULL), -MVCC_EMEMBEREXISTS);
	cc.nodeid = 1;
	CHECK_EQ(member_cc_check(v, 2, 0, &cc, &g), -MVCC_ENOTLEARNER);
	cc.nodeid = 3;
	g.peerurls = yp;
	g.n_peerurls = 1;
	CHECK_EQ(member_cc_check(v, 2, 0, &cc, &g), -MVCC_EPEERURLEXISTS);
	g.peerurls = xp;
	cc.type = RAFTPB__CONF_CHANGE_TYPE__ConfChangeUpdateNode;
	cc.nodeid = 1;
	CHECK_EQ(member_cc_check(v, 2, 0, &cc, &g), 0);
	cc.type = RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddLearnerNode;
	cc.nodeid = 3;
	g.peerurls = (char *[]){ "http://z" };
	CHECK_EQ(member_cc_check(v, 2, 0, &cc, &g), -MVCC_ETOOMANYLEARNERS);
	CHECK_EQ(member_cc_check(v, 1, 0, &cc, &g), 0);
	cc.type = 42;
	CHECK_EQ(member_cc_check(v, 2, 0, &cc, &g), -EINVAL);
}

int main(void)
{
	test_check();
	test_changes();
	test_refusals();
	return 0;
}
