/*
 * Which membership changes are allowed (etcd 3.4's
 * ValidateConfigurationChange, isLearnerReady and its strict
 * reconfiguration check), as pure functions of a configuration: raftd
 * refuses with them before proposing, and applies an invalid change as a
 * no-op, which is what storaged does with the same entry.
 */
#include <string.h>

#include "raft_impl.h"
#include "rpc.pb-c.h"

static int find(const struct raft_conf *c, uint64_t id)
{
	for (int i = 0; i < c->n; i++)
		if (c->ids[i] == id)
			return i;
	return -1;
}

bool raft_cc_is_promote(const Raftpb__ConfChange *cc)
{
	if (cc->type != RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode ||
	    cc->context.len == 0)
		return false;
	Etcdserverpb__Member *m = etcdserverpb__member__unpack(
		NULL, cc->context.len, cc->context.data);
	if (!m)
		return false;
	bool promote = m->n_peerurls == 0;
	etcdserverpb__member__free_unpacked(m, NULL);
	return promote;
}

enum raft_cc_err raft_cc_validate(const struct raft_conf *c,
				  const Raftpb__ConfChange *cc)
{
	if (cc->nodeid == RAFT_NONE)
		return RAFT_CC_BAD;
	int i = find(c, cc->nodeid);
	switch (cc->type) {
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode:
		if (raft_cc_is_promote(cc)) {
			if (i < 0)
				return RAFT_CC_NOT_FOUND;
			return c->learner[i] ? RAFT_CC_OK : RAFT_CC_NOT_LEARNER;
		}
		return i < 0 ? RAFT_CC_OK : RAFT_CC_ID_EXISTS;
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddLearnerNode: {
		if (i >= 0)
			return RAFT_CC_ID_EXISTS;
		int learners = 0;
		for (int k = 0; k < c->n; k++)
			learners += c->learner[k];
		return learners + 1 > RAFT_MAX_LEARNERS ? RAFT_CC_TOO_MANY_LEARNERS
							: RAFT_CC_OK;
	}
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode:
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeUpdateNode:
		return i < 0 ? RAFT_CC_NOT_FOUND : RAFT_CC_OK;
	default:
		return RAFT_CC_BAD;
	}
}

/* etcd's rpctypes errors (api/v3rpc/rpctypes/error.go). */
const char *raft_cc_err_message(enum raft_cc_err e, uint32_t *ret_code)
{
	switch (e) {
	case RAFT_CC_OK:
		return NULL;
	case RAFT_CC_ID_EXISTS:
		*ret_code = 9; /* FailedPrecondition */
		return "etcdserver: member ID already exist";
	case RAFT_CC_NOT_FOUND:
		*ret_code = 5; /* NotFound */
		return "etcdserver: member not found";
	case RAFT_CC_NOT_LEARNER:
		*ret_code = 9;
		return "etcdserver: can only promote a learner member";
	case RAFT_CC_TOO_MANY_LEARNERS:
		*ret_code = 9;
		return "etcdserver: too many learner members in cluster";
	case RAFT_CC_BAD:
	default:
		*ret_code = 3; /* InvalidArgument */
		return "etcdserver: invalid membership change";
	}
}

bool raft_cc_learner_ready(uint64_t learner_match, uint64_t leader_match)
{
	/* float64(learnerMatch) < float64(leaderMatch)*0.9, in integers. */
	return (unsigned __int128)learner_match * 100 >=
	       (unsigned __int128)leader_match * RAFT_LEARNER_READY_PERCENT;
}

bool raft_cc_healthy(const struct raft_conf *c, const bool *active,
		     uint64_t self, const Raftpb__ConfChange *cc)
{
	int voters = 0, up = 0, i = find(c, cc->nodeid);
	for (int k = 0; k < c->n; k++) {
		if (c->learner[k])
			continue;
		voters++;
		up += c->ids[k] == self || active[k];
	}
	switch (cc->type) {
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode:
		/* mayAddMember: connected to every voter. A promotion has no
		 * such check in etcd (only its "started" count). */
		if (raft_cc_is_promote(cc))
			return true;
		return up == voters;
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode:
		/* mayRemoveMember: a learner, or a voter that is down and not
		 * this member, may go; otherwise the active voters left must
		 * be a quorum of the voters left. */
		if (i < 0 || c->learner[i])
			return true;
		if (cc->nodeid != self && !active[i])
			return true;
		return up - 1 >= 1 + (voters - 1) / 2;
	default:
		return true;
	}
}

bool raft_conf_pending(const struct raft *r)
{
	for (uint64_t i = r->log.applied + 1; i <= rlog_last(&r->log); i++) {
		const struct raft_ent *x = rlog_at(&r->log, i);
		if (x && x->e.type == RAFTPB__ENTRY_TYPE__EntryConfChange)
			return true;
	}
	return false;
}

int raft_peer_status(const struct raft *r, uint64_t id, uint64_t *ret_match,
		     bool *ret_active)
{
	if (r->role != RAFT_LEADER)
		return -ENOTCONN;
	for (int i = 0; i < r->n_slots; i++) {
		const struct progress *p = &r->prs[i];
		if (p->id != id)
			continue;
		*ret_match = p->match;
		/*
		 * Answered within two heartbeats (or the leader is that new):
		 * a member that stopped answering counts as gone within a few
		 * hundred milliseconds, where CheckQuorum's flags would take
		 * up to two election timeouts.
		 */
		uint64_t seen = p->heard_tick > r->lead_since ? p->heard_tick
							      : r->lead_since;
		*ret_active = id == r->id ||
			      r->ticks - seen <= (uint64_t)(2 * r->heartbeat_tick + 2);
		return 0;
	}
	return -ENOENT;
}
