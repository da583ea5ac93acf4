/*
 * Message dispatch: the term rules every message goes through first
 * (thesis 3.3: a newer term demotes, an older one is refused; 9.6 PreVote
 * and 6.2 leader leases change which), then one step function per role.
 */
#include <stdlib.h>
#include <string.h>

#include "raft_impl.h"

static bool is_transfer(const Raftpb__Message *m)
{
	return m->context.len == sizeof(RAFT_CAMPAIGN_TRANSFER) - 1 &&
	       memcmp(m->context.data, RAFT_CAMPAIGN_TRANSFER,
		      m->context.len) == 0;
}

/*
 * The transport finished sending a snapshot to m->from (reject: it failed).
 * Either way the follower is probed again, from after the snapshot if it
 * arrived; but not at once (etcd's ProbeSent): after a success its MsgAppResp
 * says where it stands, after a failure the next heartbeat response retries,
 * so a peer that cannot take snapshots is not sent one after another.
 */
static void snap_status(struct raft *r, const Raftpb__Message *m)
{
	struct progress *p = pr_get(r, m->from);
	if (!p || p->state != PR_SNAPSHOT)
		return;
	/* Cleared first, or the probe would start past a snapshot that the
	 * follower never got. */
	if (m->reject)
		p->pending_snapshot = 0;
	pr_become_probe(p);
	p->probe_sent = true;
}

static void step_leader(struct raft *r, const Raftpb__Message *m)
{
	switch (m->type) {
	case RAFTPB__MESSAGE_TYPE__MsgReadIndex:
		if (m->context.len == sizeof(uint64_t)) {
			uint64_t ctx;
			memcpy(&ctx, m->context.data, sizeof(ctx));
			read_request(r, ctx, m->from);
		}
		return;
	case RAFTPB__MESSAGE_TYPE__MsgAppResp:
		handle_append_resp(r, m);
		return;
	case RAFTPB__MESSAGE_TYPE__MsgHeartbeatResp:
		handle_heartbeat_resp(r, m);
		return;
	case RAFTPB__MESSAGE_TYPE__MsgTransferLeader:
		transfer_handle(r, m);
		return;
	case RAFTPB__MESSAGE_TYPE__MsgSnapStatus:
		snap_status(r, m);
		return;
	case RAFTPB__MESSAGE_TYPE__MsgUnreachable: {
		/* Optimistic appends to it were probably lost: probe. A
		 * snapshot in flight ends with its own status report. */
		struct progress *p = pr_get(r, m->from);
		if (p && p->state == PR_REPLICATE)
			pr_become_probe(p);
		return;
	}
	default:
		return;
	}
}

static void step_candidate(struct raft *r, const Raftpb__Message *m)
{
	Raftpb__MessageType mine = r->role == RAFT_PRE_CANDIDATE
					   ? RAFTPB__MESSAGE_TYPE__MsgPreVoteResp
					   : RAFTPB__MESSAGE_TYPE__MsgVoteResp;
	switch (m->type) {
	case RAFTPB__MESSAGE_TYPE__MsgApp:
		become_follower(r, m->term, m->from);
		handle_append(r, m);
		return;
	case RAFTPB__MESSAGE_TYPE__MsgHeartbeat:
		become_follower(r, m->term, m->from);
		handle_heartbeat(r, m);
		return;
	case RAFTPB__MESSAGE_TYPE__MsgSnap:
		become_follower(r, m->term, m->from);
		handle_snapshot(r, m);
		return;
	default:
		if (m->type == mine)
			handle_vote_resp(r, m);
		return;
	}
}

static void step_follower(struct raft *r, const Raftpb__Message *m)
{
	switch (m->type) {
	case RAFTPB__MESSAGE_TYPE__MsgApp:
		r->election_elapsed = 0;
		r->lead = m->from;
		handle_append(r, m);
		return;
	case RAFTPB__MESSAGE_TYPE__MsgHeartbeat:
		r->election_elapsed = 0;
		r->lead = m->from;
		handle_heartbeat(r, m);
		return;
	case RAFTPB__MESSAGE_TYPE__MsgSnap:
		r->election_elapsed = 0;
		r->lead = m->from;
		handle_snapshot(r, m);
		return;
	case RAFTPB__MESSAGE_TYPE__MsgTransferLeader:
		if (r->lead != RAFT_NONE && r->lead != m->from) {
			Raftpb__Message *f = msg_new(r, m->type, r->lead);
			if (f) {
				f->from = m->from;
				msg_send(r, f);
			}
		}
		return;
	case RAFTPB__MESSAGE_TYPE__MsgTimeoutNow:
		/* Thesis 3.10: no pre-vote, the leader asked for this. */
		if (promotable(r))
			campaign(r, CAMPAIGN_TRANSFER);
		return;
	case RAFTPB__MESSAGE_TYPE__MsgReadIndexResp:
		read_resp(r, m);
		return;
	default:
		return;
	}
}

/* MsgProp from a follower: entries to append as the leader's own. */
static void step_prop(struct raft *r, const Raftpb__Message *m)
{
	if (r->role != RAFT_LEADER || m->n_entries == 0 || m->n_entries > 65536)
		return;
	struct raft_ent **xs = calloc(m->n_entries, sizeof(*xs));
	if (!xs)
		return;
	size_t n = 0;
	for (; n < m->n_entries; n++) {
		const Raftpb__Entry *e = m->entries[n];
		xs[n] = raft_ent_new(0, 0, e->type, e->data.data, e->data.len);
		if (!xs[n])
			break;
	}
	if (n == m->n_entries)
		raft_propose(r, xs, n);
	else
		while (n > 0)
			raft_ent_unref(xs[--n]);
	free(xs);
}

int step(struct raft *r, const Raftpb__Message *m)
{
	bool vote_req = m->type == RAFTPB__MESSAGE_TYPE__MsgVote ||
			m->type == RAFTPB__MESSAGE_TYPE__MsgPreVote;
	if (m->term > r->term) {
		if (vote_req) {
			/* Thesis 6.2/4.2.3: while a leader is heard from, a
			 * disruptive candidate gets no hearing. */
			bool in_lease = r->check_quorum && r->lead != RAFT_NONE &&
					r->election_elapsed < r->election_tick;
			if (!is_transfer(m) && in_lease)
				return 0;
		}
		if (m->type == RAFTPB__MESSAGE_TYPE__MsgPreVote) {
			/* Never change our term for a pre-vote. */
		} else if (m->type == RAFTPB__MESSAGE_TYPE__MsgPreVoteResp &&
			   !m->reject) {
			/* Granted for a future term: counted below. */
		} else if (m->type == RAFTPB__MESSAGE_TYPE__MsgApp ||
			   m->type == RAFTPB__MESSAGE_TYPE__MsgHeartbeat ||
			   m->type == RAFTPB__MESSAGE_TYPE__MsgSnap) {
			become_follower(r, m->term, m->from);
		} else {
			become_follower(r, m->term, RAFT_NONE);
		}
	} else if (m->term < r->term && m->term != 0) {
		if ((r->check_quorum || r->pre_vote) &&
		    (m->type == RAFTPB__MESSAGE_TYPE__MsgHeartbeat ||
		     m->type == RAFTPB__MESSAGE_TYPE__MsgApp)) {
			/* A stale leader (perhaps back from a partition) learns
			 * the new term from this and steps down. */
			msg_send(r, msg_new(r, RAFTPB__MESSAGE_TYPE__MsgAppResp,
					    m->from));
		} else if (m->type == RAFTPB__MESSAGE_TYPE__MsgPreVote) {
			Raftpb__Message *resp = msg_new(
				r, RAFTPB__MESSAGE_TYPE__MsgPreVoteResp, m->from);
			if (resp) {
				resp->term = r->term;
				resp->reject = true;
				msg_send(r, resp);
			}
		}
		return 0;
	}

	switch (m->type) {
	case RAFTPB__MESSAGE_TYPE__MsgVote:
	case RAFTPB__MESSAGE_TYPE__MsgPreVote:
		handle_vote(r, m);
		return 0;
	case RAFTPB__MESSAGE_TYPE__MsgProp:
		if (r->role == RAFT_LEADER)
			step_prop(r, m);
		else if (r->lead != RAFT_NONE && r->role == RAFT_FOLLOWER)
			return -ENOTCONN; /* no forwarding of forwards */
		return 0;
	default:
		break;
	}
	switch (r->role) {
	case RAFT_LEADER:
		step_leader(r, m);
		break;
	case RAFT_CANDIDATE:
	case RAFT_PRE_CANDIDATE:
		step_candidate(r, m);
		break;
	default:
		step_follower(r, m);
	}
	return 0;
}

int raft_step(struct raft *r, const Raftpb__Message *m)
{
	switch (m->type) {
	case RAFTPB__MESSAGE_TYPE__MsgHup:
	case RAFTPB__MESSAGE_TYPE__MsgBeat:
	case RAFTPB__MESSAGE_TYPE__MsgCheckQuorum:
	case RAFTPB__MESSAGE_TYPE__MsgUnreachable:
	case RAFTPB__MESSAGE_TYPE__MsgSnapStatus:
		return -EINVAL; /* local events, never from the network */
	default:
		break;
	}
	if (m->from == RAFT_NONE || m->from == r->id)
		return -EINVAL;
	return step(r, m);
}

void raft_report_snapshot(struct raft *r, uint64_t id, bool failed)
{
	Raftpb__Message m = RAFTPB__MESSAGE__INIT;
	m.type = RAFTPB__MESSAGE_TYPE__MsgSnapStatus;
	m.from = id;
	m.to = r->id;
	m.reject = failed;
	if (r->role == RAFT_LEADER && id != r->id)
		step(r, &m);
}

void raft_report_unreachable(struct raft *r, uint64_t id)
{
	Raftpb__Message m = RAFTPB__MESSAGE__INIT;
	m.type = RAFTPB__MESSAGE_TYPE__MsgUnreachable;
	m.from = id;
	m.to = r->id;
	if (r->role == RAFT_LEADER && id != r->id)
		step(r, &m);
}
