/*
 * Roles and elections: thesis 3.4 (randomized election timeouts, one vote
 * per term, 3.6.1 up-to-date check), 9.6 (PreVote: a pre-election that
 * does not disturb the cluster's term), 3.10 (forced election on
 * MsgTimeoutNow), and the ticks that drive heartbeats and CheckQuorum (6.2).
 */
#include "raft_impl.h"

bool promotable(const struct raft *r)
{
	const struct progress *p = pr_get((struct raft *)r, r->id);
	return p && !p->learner;
}

static void reset(struct raft *r, uint64_t term)
{
	if (r->term != term) {
		r->term = term;
		r->vote = RAFT_NONE;
	}
	r->lead = RAFT_NONE;
	r->election_elapsed = 0;
	r->heartbeat_elapsed = 0;
	/* Thesis 3.4: a timeout drawn from [T, 2T) splits votes rarely. */
	r->rand_election_tick =
		r->election_tick + (int)(prng_next(r) % (uint64_t)r->election_tick);
	transfer_abort(r);
	read_drop_all(r);
	uint64_t next = rlog_last(&r->log) + 1;
	for (int i = 0; i < r->n_slots; i++) {
		struct progress *p = &r->prs[i];
		if (!p->id)
			continue;
		pr_reset(p, p->id, next, r->max_inflight, p->learner);
		if (p->id == r->id)
			p->match = r->log.stable;
	}
	r->pending_conf_index = 0;
}

void become_follower(struct raft *r, uint64_t term, uint64_t lead)
{
	reset(r, term);
	r->lead = lead;
	r->role = RAFT_FOLLOWER;
}

static void become_candidate(struct raft *r)
{
	reset(r, r->term + 1);
	r->vote = r->id;
	r->role = RAFT_CANDIDATE;
}

/* PreVote: campaign for term+1 without taking it, so a partitioned node
 * that cannot win does not force the cluster's term up when it returns. */
static void become_pre_candidate(struct raft *r)
{
	for (int i = 0; i < r->n_slots; i++)
		r->prs[i].vote = 0;
	r->lead = RAFT_NONE;
	r->role = RAFT_PRE_CANDIDATE;
}

void become_leader(struct raft *r)
{
	reset(r, r->term);
	r->lead = r->id;
	r->role = RAFT_LEADER;
	r->lead_since = r->ticks;
	struct progress *self = pr_get(r, r->id);
	if (self)
		pr_become_replicate(self);
	/* Conf changes in the uncommitted tail may be pending: allow none
	 * until they are applied. */
	r->pending_conf_index = rlog_last(&r->log);
	/* Thesis 3.6.2 / 6.4: an entry of its own term lets the new leader
	 * commit (and learn the commit index for reads). */
	struct raft_ent *x = raft_ent_new(0, 0, RAFTPB__ENTRY_TYPE__EntryNormal,
					  NULL, 0);
	if (x)
		append_local(r, &x, 1);
}

static void poll_self(struct raft *r)
{
	struct progress *p = pr_get(r, r->id);
	if (p)
		p->vote = 1;
}

void campaign(struct raft *r, enum campaign_kind k)
{
	Raftpb__MessageType t;
	uint64_t term;
	if (k == CAMPAIGN_PRE) {
		become_pre_candidate(r);
		t = RAFTPB__MESSAGE_TYPE__MsgPreVote;
		term = r->term + 1;
	} else {
		become_candidate(r);
		t = RAFTPB__MESSAGE_TYPE__MsgVote;
		term = r->term;
	}
	poll_self(r);
	if (quorum_vote_result(r) == VOTE_WON) {
		/* A lone voter wins at once. */
		if (k == CAMPAIGN_PRE)
			campaign(r, CAMPAIGN_ELECTION);
		else
			become_leader(r);
		return;
	}
	for (int i = 0; i < r->n_slots; i++) {
		struct progress *p = &r->prs[i];
		if (!p->id || p->learner || p->id == r->id)
			continue;
		Raftpb__Message *m = msg_new(r, t, p->id);
		if (!m)
			continue;
		m->term = term;
		m->index = rlog_last(&r->log);
		m->logterm = rlog_last_term(&r->log);
		if (k == CAMPAIGN_TRANSFER &&
		    msg_set_context(m, RAFT_CAMPAIGN_TRANSFER,
				    sizeof(RAFT_CAMPAIGN_TRANSFER) - 1) < 0) {
			raft_msg_free(m);
			continue;
		}
		msg_send(r, m);
	}
}

/* Conf changes committed but not yet applied: a node that would campaign
 * must first know the configuration it campaigns in. */
static bool pending_conf(const struct raft *r)
{
	for (uint64_t i = r->log.applied + 1; i <= r->log.committed; i++) {
		const struct raft_ent *x = rlog_at(&r->log, i);
		if (x && x->e.type == RAFTPB__ENTRY_TYPE__EntryConfChange)
			return true;
	}
	return false;
}

void hup(struct raft *r, enum campaign_kind k)
{
	if (r->role == RAFT_LEADER || !promotable(r) || pending_conf(r))
		return;
	campaign(r, k);
}

void handle_vote(struct raft *r, const Raftpb__Message *m)
{
	bool pre = m->type == RAFTPB__MESSAGE_TYPE__MsgPreVote;
	bool can = r->vote == m->from ||
		   (r->vote == RAFT_NONE && r->lead == RAFT_NONE) ||
		   (pre && m->term > r->term);
	Raftpb__Message *resp =
		msg_new(r, pre ? RAFTPB__MESSAGE_TYPE__MsgPreVoteResp
			       : RAFTPB__MESSAGE_TYPE__MsgVoteResp, m->from);
	if (!resp)
		return;
	if (can && rlog_up_to_date(&r->log, m->index, m->logterm)) {
		/* A pre-vote answer carries the term asked for, so that the
		 * pre-candidate counts it; a vote is recorded (persisted before
		 * the answer leaves, as the ready's ordering guarantees). */
		resp->term = m->term;
		if (!pre) {
			r->election_elapsed = 0;
			r->vote = m->from;
		}
	} else {
		resp->term = r->term;
		resp->reject = true;
	}
	msg_send(r, resp);
}

void handle_vote_resp(struct raft *r, const Raftpb__Message *m)
{
	struct progress *p = pr_get(r, m->from);
	if (p && p->vote == 0)
		p->vote = m->reject ? -1 : 1;
	switch (quorum_vote_result(r)) {
	case VOTE_WON:
		if (r->role == RAFT_PRE_CANDIDATE) {
			campaign(r, CAMPAIGN_ELECTION);
		} else {
			become_leader(r);
			bcast_append(r);
		}
		break;
	case VOTE_LOST:
		become_follower(r, r->term, RAFT_NONE);
		break;
	default:
		break;
	}
}

static void tick_election(struct raft *r)
{
	r->election_elapsed++;
	if (promotable(r) && r->election_elapsed >= r->rand_election_tick) {
		r->election_elapsed = 0;
		hup(r, r->pre_vote ? CAMPAIGN_PRE : CAMPAIGN_ELECTION);
	}
}

static void tick_heartbeat(struct raft *r)
{
	r->heartbeat_elapsed++;
	r->election_elapsed++;
	if (r->election_elapsed >= r->election_tick) {
		r->election_elapsed = 0;
		/* Thesis 6.2: a leader that cannot reach a majority steps down,
		 * so clients go looking for the real one. */
		if (r->check_quorum && !quorum_active(r)) {
			become_follower(r, r->term, RAFT_NONE);
			return;
		}
		/* Thesis 3.10: a transfer that took an election timeout failed. */
		transfer_abort(r);
	}
	if (r->heartbeat_elapsed >= r->heartbeat_tick) {
		r->heartbeat_elapsed = 0;
		bcast_heartbeat(r, 0);
	}
}

void raft_tick(struct raft *r)
{
	r->ticks++;
	if (r->role == RAFT_LEADER)
		tick_heartbeat(r);
	else
		tick_election(r);
}
