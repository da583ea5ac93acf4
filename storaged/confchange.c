/* Membership changes at apply: etcd's validity rule, the change, its answer. */
#include <errno.h>
#include <string.h>

#include "apply.h"
#include "confchange.h"

static const Etcdserverpb__Member *find(Etcdserverpb__Member *const *v,
					size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (v[i]->id == id)
			return v[i];
	return NULL;
}

/* Whether a member other than skip_id has one of urls[0..nurls). */
static int urls_taken(Etcdserverpb__Member *const *v, size_t n,
		      uint64_t skip_id, char *const *urls, size_t nurls)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i]->id == skip_id)
			continue;
		for (size_t j = 0; j < v[i]->n_peerurls; j++)
			for (size_t k = 0; k < nurls; k++)
				if (strcmp(v[i]->peerurls[j], urls[k]) == 0)
					return 1;
	}
	return 0;
}

/* etcd's promote is AddNode with IsPromote in its context; ours is AddNode
 * with a context that names no peer URLs (an addition always has some:
 * etcd's MemberAdd refuses an empty list), as raftd's raft_cc_is_promote. */
static int is_promote(const Raftpb__ConfChange *cc,
		      const Etcdserverpb__Member *given)
{
	return cc->type == RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode &&
	       given && given->n_peerurls == 0;
}

int member_cc_check(Etcdserverpb__Member *const *members, size_t n,
		    int removed, const Raftpb__ConfChange *cc,
		    const Etcdserverpb__Member *given)
{
	const Etcdserverpb__Member *cur = find(members, n, cc->nodeid);
	char *const *urls = given ? given->peerurls : NULL;
	size_t nurls = given ? given->n_peerurls : 0;

	/* 0 is raft's "none": no member has it (raftd refuses it too). */
	if (cc->nodeid == 0)
		return -EINVAL;
	if (removed)
		return -MVCC_EMEMBERREMOVED;
	switch (cc->type) {
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode:
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddLearnerNode:
		if (is_promote(cc, given)) {
			if (!cur)
				return -MVCC_EMEMBERNOTFOUND;
			if (!cur->islearner)
				return -MVCC_ENOTLEARNER;
			return 0;
		}
		if (cur)
			return -MVCC_EMEMBEREXISTS;
		/* An ID that is no member cannot be skipped: 0 is none. */
		if (urls_taken(members, n, 0, urls, nurls))
			return -MVCC_EPEERURLEXISTS;
		if (cc->type == RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddLearnerNode) {
			size_t learners = 0;
			for (size_t i = 0; i < n; i++)
				learners += members[i]->islearner != 0;
			if (learners + 1 > MEMBERS_MAX_LEARNERS)
				return -MVCC_ETOOMANYLEARNERS;
		}
		return 0;
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode:
		return cur ? 0 : -MVCC_EMEMBERNOTFOUND;
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeUpdateNode:
		if (!cur)
			return -MVCC_EMEMBERNOTFOUND;
		if (urls_taken(members, n, cc->nodeid, urls, nurls))
			return -MVCC_EPEERURLEXISTS;
		return 0;
	default:
		return -EINVAL;
	}
}

/* The change itself, once allowed; cur is the member's record (a copy in
 * a) or NULL for an addition. */
static int change(struct mvcc *m, const Raftpb__ConfChange *cc,
		  Etcdserverpb__Member *cur, Etcdserverpb__Member *given,
		  struct arena *a)
{
	switch (cc->type) {
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode:
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddLearnerNode:
		if (is_promote(cc, given)) {
			cur->islearner = 0;
			return mvcc_member_put(m, cur);
		}
		if (!given)
			given = ARENA_NEW(a, Etcdserverpb__Member,
					  ETCDSERVERPB__MEMBER__INIT);
		/* The bootstrap entries carry names; runtime additions do
		 * not, the member publishes its own once it runs. */
		given->id = cc->nodeid;
		given->islearner =
			cc->type == RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddLearnerNode;
		return mvcc_member_put(m, given);
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode:
		return mvcc_member_delete(m, cc->nodeid);
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeUpdateNode:
		/* Only the peer URLs change: a learner stays one (etcd 3.4's
		 * UpdateRaftAttributes would clear IsLearner, while raft keeps
		 * the member a learner; we keep both in step). */
		cur->n_peerurls = given ? given->n_peerurls : 0;
		cur->peerurls = given ? given->peerurls : NULL;
		return mvcc_member_put(m, cur);
	default:
		return -EINVAL;
	}
}

/* The answer: the members after the change, as etcd's ClusterServer. */
static int answer(struct mvcc *m, const Raftpb__ConfChange *cc,
		  const Etcdserverpb__Member *given, struct arena *a,
		  Ipc__Result *res)
{
	Etcdserverpb__Member **v;
	size_t n;
	int err = mvcc_member_list(m, a, &v, &n);
	if (err < 0)
		return err;
	/* etcd's member responses carry cluster, member and term (filled
	 * by gatewayd), no revision. */
	Etcdserverpb__ResponseHeader *h = ARENA_NEW(
		a, Etcdserverpb__ResponseHeader,
		ETCDSERVERPB__RESPONSE_HEADER__INIT);
	switch (cc->type) {
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode:
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddLearnerNode:
		if (is_promote(cc, given)) {
			Etcdserverpb__MemberPromoteResponse *r = ARENA_NEW(
				a, Etcdserverpb__MemberPromoteResponse,
				ETCDSERVERPB__MEMBER_PROMOTE_RESPONSE__INIT);
			r->header = h;
			r->members = v;
			r->n_members = n;
			res->response_case = IPC__RESULT__RESPONSE_MEMBER_PROMOTE;
			res->member_promote = r;
		} else {
			Etcdserverpb__MemberAddResponse *r = ARENA_NEW(
				a, Etcdserverpb__MemberAddResponse,
				ETCDSERVERPB__MEMBER_ADD_RESPONSE__INIT);
			/* etcd answers the added member with ID, peer URLs
			 * and isLearner only. */
			Etcdserverpb__Member *mb = ARENA_NEW(
				a, Etcdserverpb__Member,
				ETCDSERVERPB__MEMBER__INIT);
			mb->id = cc->nodeid;
			mb->peerurls = given ? given->peerurls : NULL;
			mb->n_peerurls = given ? given->n_peerurls : 0;
			mb->islearner = cc->type ==
				RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddLearnerNode;
			r->header = h;
			r->member = mb;
			r->members = v;
			r->n_members = n;
			res->response_case = IPC__RESULT__RESPONSE_MEMBER_ADD;
			res->member_add = r;
		}
		return 0;
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode: {
		Etcdserverpb__MemberRemoveResponse *r = ARENA_NEW(
			a, Etcdserverpb__MemberRemoveResponse,
			ETCDSERVERPB__MEMBER_REMOVE_RESPONSE__INIT);
		r->header = h;
		r->members = v;
		r->n_members = n;
		res->response_case = IPC__RESULT__RESPONSE_MEMBER_REMOVE;
		res->member_remove = r;
		return 0;
	}
	default: {
		Etcdserverpb__MemberUpdateResponse *r = ARENA_NEW(
			a, Etcdserverpb__MemberUpdateResponse,
			ETCDSERVERPB__MEMBER_UPDATE_RESPONSE__INIT);
		r->header = h;
		r->members = v;
		r->n_members = n;
		res->response_case = IPC__RESULT__RESPONSE_MEMBER_UPDATE;
		res->member_update = r;
		return 0;
	}
	}
}

int apply_confchange(struct mvcc *m, const Raftpb__ConfChange *cc,
		     struct arena *a, Ipc__Result **ret_res)
{
	Etcdserverpb__Member *given = NULL, *cur = NULL;
	if (cc->context.len) {
		given = etcdserverpb__member__unpack(&a->pb, cc->context.len,
						     cc->context.data);
		if (!given)
			return APPLY_EBADENTRY;
	}
	Etcdserverpb__Member **v;
	size_t n;
	int err = mvcc_member_list(m, a, &v, &n);
	if (err < 0)
		return err;
	/*
	 * raftd applies the same change to its configuration, which knows
	 * only IDs and learner flags, so here only the rules that depend on
	 * those decide: a refusal for a taken peer URL or a removed ID that
	 * raftd did not also make would split the two views. Those two are
	 * checked before proposing (gatewayd asks for the member list; an
	 * added ID is a hash of the time and cannot be a removed one).
	 */
	err = member_cc_check(v, n, 0, cc, given);
	if (err == -MVCC_EPEERURLEXISTS)
		err = 0;
	if (err == -EINVAL)
		return APPLY_EBADENTRY;
	if (err == 0) {
		for (size_t i = 0; i < n; i++)
			if (v[i]->id == cc->nodeid)
				cur = v[i];
		int r = change(m, cc, cur, given, a);
		if (r < 0)
			return r;
	}
	if (!ret_res)
		return 0;
	Ipc__Result *res = ARENA_NEW(a, Ipc__Result, IPC__RESULT__INIT);
	if (err < 0) {
		apply_set_error(res, a, err);
	} else {
		int r = answer(m, cc, given, a, res);
		if (r < 0)
			return r;
	}
	*ret_res = res;
	return 0;
}
