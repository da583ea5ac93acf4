/*
 * Log replication (thesis 3.5, AppendEntries; 10.2.1 pipelining with the
 * progress window), heartbeats (3.4), and commitment (3.6: an entry of the
 * leader's current term replicated on a majority).
 */
#include <stdlib.h>
#include <string.h>

#include "raft_impl.h"

int append_local(struct raft *r, struct raft_ent **ents, size_t n)
{
	uint64_t li = rlog_last(&r->log);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (rc == 0) {
			ents[i]->e.term = r->term;
			ents[i]->e.index = li + 1 + i;
			rc = rlog_append(&r->log, ents[i]);
		}
		raft_ent_unref(ents[i]);
	}
	/* The leader's own match advances when the driver has persisted the
	 * entries (raft_advance), never before. */
	return rc;
}

static bool send_snapshot(struct raft *r, struct progress *p)
{
	if (!p->recent_active)
		return false;
	Raftpb__Message *m = msg_new(r, RAFTPB__MESSAGE_TYPE__MsgSnap, p->id);
	Raftpb__Snapshot *s = calloc(1, sizeof(*s));
	Raftpb__SnapshotMetadata *md = calloc(1, sizeof(*md));
	Raftpb__ConfState *cs = calloc(1, sizeof(*cs));
	const struct raft_conf *c = &r->log.base_conf;
	uint64_t *v = calloc((size_t)c->n + 1, sizeof(*v));
	uint64_t *l = calloc((size_t)c->n + 1, sizeof(*l));
	if (!m || !s || !md || !cs || !v || !l) {
		raft_msg_free(m);
		free(s);
		free(md);
		free(cs);
		free(v);
		free(l);
		return false;
	}
	raftpb__snapshot__init(s);
	raftpb__snapshot_metadata__init(md);
	raftpb__conf_state__init(cs);
	for (int i = 0; i < c->n; i++) {
		if (c->learner[i])
			l[cs->n_learners++] = c->ids[i];
		else
			v[cs->n_voters++] = c->ids[i];
	}
	cs->voters = v;
	cs->learners = l;
	md->conf_state = cs;
	md->index = r->log.base_index;
	md->term = r->log.base_term;
	s->metadata = md;
	m->snapshot = s;
	pr_become_snapshot(p, md->index);
	msg_send(r, m);
	return true;
}

/* Sends p what it lacks (thesis 3.5). False when nothing was sent. */
bool send_append(struct raft *r, struct progress *p, bool if_empty)
{
	if (pr_is_paused(p))
		return false;
	struct raft_log *l = &r->log;
	uint64_t last = rlog_last(l);
	if (p->next > last + 1)
		p->next = last + 1;
	uint64_t prev_term;
	if (rlog_term(l, p->next - 1, &prev_term) < 0)
		return send_snapshot(r, p);
	size_t n = 0, bytes = 0;
	size_t first = (size_t)(p->next - l->base_index - 1);
	while (first + n < l->n) {
		size_t sz = l->ents[first + n]->e.data.len;
		if (n > 0 && bytes + sz > r->max_msg_bytes)
			break;
		bytes += sz;
		n++;
	}
	if (n == 0 && !if_empty)
		return false;
	Raftpb__Message *m = msg_new(r, RAFTPB__MESSAGE_TYPE__MsgApp, p->id);
	if (!m)
		return false;
	m->index = p->next - 1;
	m->logterm = prev_term;
	m->commit = l->committed;
	if (msg_add_entries(m, l->ents + first, n) < 0) {
		raft_msg_free(m);
		return false;
	}
	if (n > 0) {
		if (p->state == PR_REPLICATE) {
			uint64_t li = p->next - 1 + n;
			p->next = li + 1;
			ins_add(&p->ins, li);
		} else if (p->state == PR_PROBE) {
			p->probe_sent = true;
		}
	}
	msg_send(r, m);
	return true;
}

void bcast_append(struct raft *r)
{
	for (int i = 0; i < r->n_slots; i++)
		if (r->prs[i].id && r->prs[i].id != r->id)
			send_append(r, &r->prs[i], true);
}

void send_heartbeat(struct raft *r, struct progress *p, uint64_t ctx)
{
	Raftpb__Message *m = msg_new(r, RAFTPB__MESSAGE_TYPE__MsgHeartbeat, p->id);
	if (!m)
		return;
	/* Never tell a follower to commit past what it is known to hold. */
	m->commit = p->match < r->log.committed ? p->match : r->log.committed;
	if (ctx && msg_set_context(m, &ctx, sizeof(ctx)) < 0) {
		raft_msg_free(m);
		return;
	}
	msg_send(r, m);
}

/* ctx 0: the newest read round still waiting rides on the heartbeat, so a
 * lost round is retried by the next beat (as etcd does). */
void bcast_heartbeat(struct raft *r, uint64_t ctx)
{
	if (!ctx && r->n_reads)
		ctx = r->reads[r->n_reads - 1].round;
	for (int i = 0; i < r->n_slots; i++)
		if (r->prs[i].id && r->prs[i].id != r->id)
			send_heartbeat(r, &r->prs[i], ctx);
}

/* Thesis 3.6.2: only entries of the current term commit by counting. */
bool maybe_commit(struct raft *r)
{
	uint64_t mci = quorum_committed(r);
	if (mci <= r->log.committed || rlog_term0(&r->log, mci) != r->term)
		return false;
	rlog_commit_to(&r->log, mci);
	read_committed_in_term(r);
	return true;
}

static void reply_append(struct raft *r, const Raftpb__Message *m,
			 uint64_t index, bool reject, uint64_t hint)
{
	Raftpb__Message *resp = msg_new(r, RAFTPB__MESSAGE_TYPE__MsgAppResp,
					m->from);
	if (!resp)
		return;
	resp->index = index;
	resp->reject = reject;
	resp->rejecthint = hint;
	msg_send(r, resp);
}

void handle_append(struct raft *r, const Raftpb__Message *m)
{
	struct raft_log *l = &r->log;
	if (m->index < l->committed) {
		reply_append(r, m, l->committed, false, 0);
		return;
	}
	uint64_t last;
	int rc = rlog_maybe_append(l, m->index, m->logterm, m->commit,
				   m->entries, m->n_entries, &last);
	if (rc == 0)
		reply_append(r, m, last, false, 0);
	else if (rc == -ESRCH)
		reply_append(r, m, m->index, true, rlog_last(l));
	/* Otherwise out of memory, or a leader breaking Raft: no answer. */
}

void handle_heartbeat(struct raft *r, const Raftpb__Message *m)
{
	rlog_commit_to(&r->log, m->commit);
	Raftpb__Message *resp =
		msg_new(r, RAFTPB__MESSAGE_TYPE__MsgHeartbeatResp, m->from);
	if (!resp)
		return;
	if (m->context.len &&
	    msg_set_context(resp, m->context.data, m->context.len) < 0) {
		raft_msg_free(resp);
		return;
	}
	msg_send(r, resp);
}

static int conf_from_pb(const Raftpb__ConfState *cs, struct raft_conf *ret)
{
	struct raft_conf c = {0};
	if (!cs || cs->n_voters + cs->n_learners > RAFT_MAX_NODES)
		return -EINVAL;
	for (size_t i = 0; i < cs->n_voters; i++)
		c.ids[c.n++] = cs->voters[i];
	for (size_t i = 0; i < cs->n_learners; i++) {
		c.learner[c.n] = true;
		c.ids[c.n++] = cs->learners[i];
	}
	*ret = c;
	return 0;
}

/* Thesis 5.1, InstallSnapshot: the leader no longer holds what we lack. */
void handle_snapshot(struct raft *r, const Raftpb__Message *m)
{
	struct raft_log *l = &r->log;
	const Raftpb__SnapshotMetadata *md =
		m->snapshot ? m->snapshot->metadata : NULL;
	struct raft_conf c;
	if (!md || conf_from_pb(md->conf_state, &c) < 0)
		return;
	if (md->index <= l->committed) {
		reply_append(r, m, l->committed, false, 0);
		return;
	}
	if (rlog_match_term(l, md->index, md->term)) {
		/* We hold it all: fast-forward the commit index instead. */
		rlog_commit_to(l, md->index);
		reply_append(r, m, l->committed, false, 0);
		return;
	}
	rlog_reset(l, md->index, md->term);
	l->base_conf = c;
	conf_load(r, &c);
	r->has_snap = true;
	reply_append(r, m, rlog_last(l), false, 0);
}

void handle_append_resp(struct raft *r, const Raftpb__Message *m)
{
	struct progress *p = pr_get(r, m->from);
	if (!p)
		return;
	p->recent_active = true;
	p->heard_tick = r->ticks;
	if (m->reject) {
		if (pr_maybe_decr_to(p, m->index, m->rejecthint)) {
			if (p->state == PR_REPLICATE)
				pr_become_probe(p);
			send_append(r, p, true);
		}
		return;
	}
	bool old_paused = pr_is_paused(p);
	if (!pr_maybe_update(p, m->index))
		return;
	if (p->state == PR_PROBE)
		pr_become_replicate(p);
	else if (p->state == PR_SNAPSHOT && p->match >= p->pending_snapshot)
		pr_become_probe(p);
	else if (p->state == PR_REPLICATE)
		ins_free_le(&p->ins, m->index);
	if (maybe_commit(r))
		bcast_append(r);
	else if (old_paused)
		send_append(r, p, true);
	while (send_append(r, p, false))
		;
	if (m->from == r->lead_transferee && p->match == rlog_last(&r->log))
		send_timeout_now(r, m->from);
}

void handle_heartbeat_resp(struct raft *r, const Raftpb__Message *m)
{
	struct progress *p = pr_get(r, m->from);
	if (!p)
		return;
	p->recent_active = true;
	p->heard_tick = r->ticks;
	/* A snapshot in flight is not resent from here: the transport
	 * reports how it ended (raft_report_snapshot). */
	p->probe_sent = false;
	if (p->state == PR_REPLICATE && ins_full(&p->ins))
		ins_free_first(&p->ins);
	if (p->match < rlog_last(&r->log))
		send_append(r, p, true);
	if (m->context.len == sizeof(uint64_t))
		read_ack(r, m);
}
