/*
 * Leadership transfer (thesis 3.10): the leader stops taking proposals,
 * brings the target's log up to date, then tells it to campaign at once
 * (MsgTimeoutNow). A transfer that does not finish within an election
 * timeout is abandoned (raft_election.c's heartbeat tick).
 */
#include "raft_impl.h"

void send_timeout_now(struct raft *r, uint64_t to)
{
	msg_send(r, msg_new(r, RAFTPB__MESSAGE_TYPE__MsgTimeoutNow, to));
}

void transfer_abort(struct raft *r)
{
	r->lead_transferee = RAFT_NONE;
}

/* m->from is the node that should lead (etcd's convention). */
void transfer_handle(struct raft *r, const Raftpb__Message *m)
{
	uint64_t to = m->from;
	struct progress *p = pr_get(r, to);
	if (!p || p->learner)
		return;
	if (r->lead_transferee != RAFT_NONE) {
		if (r->lead_transferee == to)
			return;
		transfer_abort(r);
	}
	if (to == r->id)
		return;
	r->election_elapsed = 0;
	r->lead_transferee = to;
	if (p->match == rlog_last(&r->log))
		send_timeout_now(r, to);
	else
		send_append(r, p, true);
}

void raft_transfer_leader(struct raft *r, uint64_t to)
{
	Raftpb__Message m = RAFTPB__MESSAGE__INIT;
	m.type = RAFTPB__MESSAGE_TYPE__MsgTransferLeader;
	m.from = to;
	m.to = r->id;
	step(r, &m);
}

uint64_t raft_transfer_target(const struct raft *r)
{
	const struct progress *best = NULL;
	if (r->role != RAFT_LEADER)
		return RAFT_NONE;
	for (int i = 0; i < r->n_slots; i++) {
		const struct progress *p = &r->prs[i];
		if (!p->id || p->id == r->id || p->learner)
			continue;
		if (!best || p->recent_active > best->recent_active ||
		    (p->recent_active == best->recent_active &&
		     p->match > best->match))
			best = p;
	}
	return best ? best->id : RAFT_NONE;
}
