/*
 * The core's public face: building a node from its recovered state,
 * proposals, compaction, and the ready/advance cycle that hands the driver
 * what to persist, send and apply (thesis 3.8 persistence before answers;
 * 10.2.1 a leader may send before its own write).
 */
#include <stdlib.h>
#include <string.h>

#include "raft_impl.h"

int raft_new(const struct raft_config *c, struct raft_boot *b,
	     struct raft **ret_r)
{
	struct raft *r = NULL;
	int rc = -EINVAL;
	if (c->id == RAFT_NONE || c->heartbeat_tick < 1 ||
	    c->election_tick <= c->heartbeat_tick || c->max_inflight < 1 ||
	    c->max_inflight > RAFT_MAX_INFLIGHT || c->max_msg_bytes == 0 ||
	    b->commit > b->base_index + b->n_ents || b->base_conf.n > RAFT_MAX_NODES)
		goto fail;
	for (size_t i = 0; i < b->n_ents; i++)
		if (b->ents[i]->e.index != b->base_index + 1 + i)
			goto fail;
	rc = -ENOMEM;
	r = calloc(1, sizeof(*r));
	if (!r)
		goto fail;
	r->id = c->id;
	r->election_tick = c->election_tick;
	r->heartbeat_tick = c->heartbeat_tick;
	r->pre_vote = c->pre_vote;
	r->check_quorum = c->check_quorum;
	r->max_msg_bytes = c->max_msg_bytes;
	r->max_inflight = c->max_inflight;
	r->prng = c->seed ? c->seed : 0x9E3779B97F4A7C15ull;
	rlog_init(&r->log, b->base_index, b->base_term);
	r->log.base_conf = b->base_conf;
	for (size_t i = 0; i < b->n_ents; i++) {
		if (rlog_append(&r->log, b->ents[i]) < 0)
			goto fail;
	}
	r->log.stable = rlog_last(&r->log);
	if (b->commit > r->log.committed)
		r->log.committed = b->commit;
	if (conf_load(r, &b->base_conf) < 0)
		goto fail;
	r->term = b->term;
	become_follower(r, b->term, RAFT_NONE);
	r->vote = b->vote;
	r->prev_term = r->term;
	r->prev_vote = r->vote;
	r->prev_commit = r->log.committed;
	r->prev_role = RAFT_FOLLOWER;
	rc = 0;
fail:
	for (size_t i = 0; i < b->n_ents; i++)
		raft_ent_unref(b->ents[i]);
	b->n_ents = 0;
	if (rc < 0) {
		raft_free(r);
		return rc;
	}
	*ret_r = r;
	return 0;
}

void raft_free(struct raft *r)
{
	if (!r)
		return;
	rlog_done(&r->log);
	for (size_t i = 0; i < r->n_out; i++)
		raft_msg_free(r->out[i]);
	free(r->out);
	free(r->rs);
	free(r->dropped);
	free(r->reads);
	free(r->reads_waiting);
	free(r);
}

static void unref_all(struct raft_ent **ents, size_t n)
{
	for (size_t i = 0; i < n; i++)
		raft_ent_unref(ents[i]);
}

int raft_propose(struct raft *r, struct raft_ent **ents, size_t n)
{
	if (n == 0)
		return 0;
	if (r->role != RAFT_LEADER) {
		if (r->lead == RAFT_NONE || r->role != RAFT_FOLLOWER) {
			unref_all(ents, n);
			return -ENOTCONN;
		}
		Raftpb__Message *m = msg_new(r, RAFTPB__MESSAGE_TYPE__MsgProp,
					     r->lead);
		if (!m || msg_add_entries(m, ents, n) < 0) {
			raft_msg_free(m);
			unref_all(ents, n);
			return -ENOMEM;
		}
		unref_all(ents, n);
		msg_send(r, m);
		return 0;
	}
	if (!promotable(r)) {
		unref_all(ents, n);
		return -EPERM;
	}
	if (r->lead_transferee != RAFT_NONE) {
		unref_all(ents, n);
		return -EBUSY;
	}
	/* Thesis 4.1: one membership change at a time. */
	uint64_t li = rlog_last(&r->log);
	uint64_t pci = r->pending_conf_index;
	for (size_t i = 0; i < n; i++) {
		if (ents[i]->e.type != RAFTPB__ENTRY_TYPE__EntryConfChange)
			continue;
		if (pci > r->log.applied) {
			unref_all(ents, n);
			return -EBUSY;
		}
		pci = li + 1 + i;
	}
	r->pending_conf_index = pci;
	int rc = append_local(r, ents, n);
	bcast_append(r);
	return rc;
}

void raft_campaign(struct raft *r)
{
	hup(r, r->pre_vote ? CAMPAIGN_PRE : CAMPAIGN_ELECTION);
}

int raft_compact(struct raft *r, uint64_t index)
{
	struct raft_log *l = &r->log;
	if (index <= l->base_index)
		return 0;
	if (index > l->applied || index > l->stable)
		return -EINVAL;
	struct raft_conf c;
	int rc = raft_conf_at(r, index, &c);
	if (rc < 0)
		return rc;
	rlog_compact(l, index, rlog_term0(l, index));
	l->base_conf = c;
	return 0;
}

bool raft_has_ready(const struct raft *r)
{
	const struct raft_log *l = &r->log;
	return r->lead != r->prev_lead || r->role != r->prev_role ||
	       r->term != r->prev_term || r->vote != r->prev_vote ||
	       l->committed != r->prev_commit || r->has_snap ||
	       l->stable < rlog_last(l) || r->n_out || l->committed > l->applied ||
	       r->n_rs || r->n_dropped;
}

/* Which messages may leave before the ready is on disk. */
static bool early(const Raftpb__Message *m)
{
	switch (m->type) {
	case RAFTPB__MESSAGE_TYPE__MsgApp:
	case RAFTPB__MESSAGE_TYPE__MsgHeartbeat:
	case RAFTPB__MESSAGE_TYPE__MsgSnap:
	case RAFTPB__MESSAGE_TYPE__MsgProp:
	case RAFTPB__MESSAGE_TYPE__MsgReadIndex:
	case RAFTPB__MESSAGE_TYPE__MsgTimeoutNow:
	case RAFTPB__MESSAGE_TYPE__MsgTransferLeader:
		return true;
	default:
		return false;
	}
}

static struct raft_ent **ref_range(const struct raft_log *l, uint64_t lo,
				   uint64_t hi, size_t *ret_n)
{
	*ret_n = 0;
	if (hi < lo)
		return NULL;
	size_t n = (size_t)(hi - lo + 1);
	struct raft_ent **v = malloc(n * sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < n; i++)
		v[i] = raft_ent_ref(rlog_at(l, lo + i));
	*ret_n = n;
	return v;
}

int raft_ready(struct raft *r, struct raft_ready *ret_rd)
{
	struct raft_log *l = &r->log;
	struct raft_ready rd;
	memset(&rd, 0, sizeof(rd));
	rd.lead = r->lead;
	rd.role = r->role;
	rd.soft_changed = r->lead != r->prev_lead || r->role != r->prev_role;
	rd.term = r->term;
	rd.vote = r->vote;
	rd.commit = l->committed;
	bool tv = r->term != r->prev_term || r->vote != r->prev_vote;
	rd.hs_changed = tv || l->committed != r->prev_commit;
	rd.must_sync = tv;
	if (r->has_snap) {
		rd.has_snap = true;
		rd.snap_index = l->base_index;
		rd.snap_term = l->base_term;
		rd.snap_conf = l->base_conf;
		rd.must_sync = true;
	}
	uint64_t last = rlog_last(l);
	if (l->stable < last) {
		rd.ents = ref_range(l, l->stable + 1, last, &rd.n_ents);
		if (!rd.ents)
			return -ENOMEM;
		rd.must_sync = true;
	}
	if (l->committed > l->applied) {
		rd.committed = ref_range(l, l->applied + 1, l->committed,
					 &rd.n_committed);
		if (!rd.committed) {
			raft_ready_clear(&rd);
			return -ENOMEM;
		}
	}
	/* Early messages first, keeping each group's order. */
	rd.msgs = r->out;
	rd.n_msgs = r->n_out;
	r->out = NULL;
	r->n_out = r->cap_out = 0;
	size_t k = 0;
	if (!tv && !rd.has_snap) {
		for (size_t i = 0; i < rd.n_msgs; i++) {
			if (!early(rd.msgs[i]))
				continue;
			Raftpb__Message *m = rd.msgs[i];
			memmove(&rd.msgs[k + 1], &rd.msgs[k],
				(i - k) * sizeof(*rd.msgs));
			rd.msgs[k++] = m;
		}
	}
	rd.n_early = k;
	rd.reads = r->rs;
	rd.n_reads = r->n_rs;
	r->rs = NULL;
	r->n_rs = r->cap_rs = 0;
	rd.dropped_reads = r->dropped;
	rd.n_dropped_reads = r->n_dropped;
	r->dropped = NULL;
	r->n_dropped = r->cap_dropped = 0;
	*ret_rd = rd;
	return 0;
}

void raft_advance(struct raft *r, const struct raft_ready *rd)
{
	struct raft_log *l = &r->log;
	if (rd->has_snap)
		r->has_snap = false;
	if (rd->n_ents) {
		const Raftpb__Entry *e = &rd->ents[rd->n_ents - 1]->e;
		/* Unless a newer leader replaced them meanwhile. */
		if (e->index > l->stable && rlog_match_term(l, e->index, e->term))
			l->stable = e->index;
	}
	if (rd->n_committed) {
		uint64_t a = rd->committed[rd->n_committed - 1]->e.index;
		if (a > l->applied)
			l->applied = a;
	}
	r->prev_term = rd->term;
	r->prev_vote = rd->vote;
	r->prev_commit = rd->commit;
	r->prev_lead = rd->lead;
	r->prev_role = rd->role;
	if (r->role == RAFT_LEADER) {
		struct progress *self = pr_get(r, r->id);
		if (self && pr_maybe_update(self, l->stable) && maybe_commit(r))
			bcast_append(r);
	}
}

void raft_ready_clear(struct raft_ready *rd)
{
	for (size_t i = 0; i < rd->n_ents; i++)
		raft_ent_unref(rd->ents[i]);
	free(rd->ents);
	for (size_t i = 0; i < rd->n_committed; i++)
		raft_ent_unref(rd->committed[i]);
	free(rd->committed);
	for (size_t i = 0; i < rd->n_msgs; i++)
		raft_msg_free(rd->msgs[i]);
	free(rd->msgs);
	free(rd->reads);
	free(rd->dropped_reads);
	memset(rd, 0, sizeof(*rd));
}

uint64_t raft_id(const struct raft *r) { return r->id; }
uint64_t raft_term(const struct raft *r) { return r->term; }
uint64_t raft_lead(const struct raft *r) { return r->lead; }
enum raft_role raft_role(const struct raft *r) { return r->role; }
uint64_t raft_commit(const struct raft *r) { return r->log.committed; }
uint64_t raft_applied(const struct raft *r) { return r->log.applied; }
uint64_t raft_last_index(const struct raft *r) { return rlog_last(&r->log); }
uint64_t raft_base_index(const struct raft *r) { return r->log.base_index; }
uint64_t raft_base_term(const struct raft *r) { return r->log.base_term; }

const Raftpb__Entry *raft_entry(const struct raft *r, uint64_t index)
{
	const struct raft_ent *x = rlog_at(&r->log, index);
	return x ? &x->e : NULL;
}

bool raft_is_member(const struct raft *r)
{
	return pr_get((struct raft *)r, r->id) != NULL;
}

bool raft_is_learner(const struct raft *r)
{
	const struct progress *p = pr_get((struct raft *)r, r->id);
	return p && p->learner;
}

int raft_voters(const struct raft *r)
{
	return quorum_voters(r);
}

const char *raft_role_name(enum raft_role role)
{
	static const char *const names[] = {
		[RAFT_FOLLOWER] = "StateFollower",
		[RAFT_CANDIDATE] = "StateCandidate",
		[RAFT_LEADER] = "StateLeader",
		[RAFT_PRE_CANDIDATE] = "StatePreCandidate",
	};
	return (unsigned)role < 4 ? names[role] : "StateUnknown";
}
