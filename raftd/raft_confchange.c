/*
 * Membership changes one server at a time (thesis 4.1, 4.2.1 learners as
 * non-voting members that catch up before promotion). A change takes effect
 * when its entry is applied; the leader allows one unapplied change at once
 * (raft.c's proposal path).
 */
#include <string.h>

#include "raft_impl.h"

static int find(const struct raft_conf *c, uint64_t id)
{
	for (int i = 0; i < c->n; i++)
		if (c->ids[i] == id)
			return i;
	return -1;
}

/*
 * Applies cc to c: 0, -EINVAL (refused by raft_cc_validate: the change is
 * a no-op, as storaged treats it), -ENOSPC.
 */
int conf_apply(struct raft_conf *c, const Raftpb__ConfChange *cc)
{
	if (raft_cc_validate(c, cc) != RAFT_CC_OK)
		return -EINVAL;
	int i = find(c, cc->nodeid);
	switch (cc->type) {
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode:
		if (i >= 0) {
			c->learner[i] = false; /* promotion, or a repeat */
			return 0;
		}
		if (c->n == RAFT_MAX_NODES)
			return -ENOSPC;
		c->learner[c->n] = false;
		c->ids[c->n++] = cc->nodeid;
		return 0;
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddLearnerNode:
		if (i >= 0)
			return c->learner[i] ? 0 : -EINVAL;
		if (c->n == RAFT_MAX_NODES)
			return -ENOSPC;
		c->learner[c->n] = true;
		c->ids[c->n++] = cc->nodeid;
		return 0;
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode:
		if (i >= 0) {
			c->n--;
			memmove(&c->ids[i], &c->ids[i + 1],
				(size_t)(c->n - i) * sizeof(c->ids[0]));
			memmove(&c->learner[i], &c->learner[i + 1],
				(size_t)(c->n - i) * sizeof(c->learner[0]));
		}
		return 0;
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeUpdateNode:
		return 0; /* only the member's URLs change: storaged's business */
	default:
		return -EINVAL;
	}
}

void conf_of(const struct raft *r, struct raft_conf *ret_c)
{
	struct raft_conf c = {0};
	for (int i = 0; i < r->n_slots; i++) {
		if (!r->prs[i].id)
			continue;
		c.ids[c.n] = r->prs[i].id;
		c.learner[c.n++] = r->prs[i].learner;
	}
	*ret_c = c;
}

static struct progress *add_slot(struct raft *r, uint64_t id, bool learner)
{
	int s;
	for (s = 0; s < r->n_slots; s++)
		if (!r->prs[s].id)
			break;
	if (s == RAFT_MAX_NODES)
		return NULL;
	if (s == r->n_slots)
		r->n_slots++;
	struct progress *p = &r->prs[s];
	pr_reset(p, id, rlog_last(&r->log) + 1, r->max_inflight, learner);
	if (id == r->id)
		p->match = r->log.stable;
	/* A new member counts as active, or CheckQuorum could depose the
	 * leader before the member had a chance to answer. */
	p->recent_active = p->prev_active = true;
	read_forget_slot(r, s);
	return p;
}

static void drop_slot(struct raft *r, struct progress *p)
{
	int s = pr_slot(r, p);
	p->id = RAFT_NONE;
	read_forget_slot(r, s);
	while (r->n_slots > 0 && !r->prs[r->n_slots - 1].id)
		r->n_slots--;
}

/* Makes the progress table match c (a restart, or a snapshot). */
int conf_load(struct raft *r, const struct raft_conf *c)
{
	for (int i = 0; i < r->n_slots; i++)
		r->prs[i].id = RAFT_NONE;
	r->n_slots = 0;
	for (int i = 0; i < c->n; i++)
		if (!add_slot(r, c->ids[i], c->learner[i]))
			return -ENOSPC;
	return 0;
}

int raft_apply_conf_change(struct raft *r, const Raftpb__ConfChange *cc)
{
	struct raft_conf c;
	conf_of(r, &c);
	int rc = conf_apply(&c, cc);
	if (rc < 0)
		return rc;
	/* Bring the table to c: drop, add, promote. */
	for (int i = 0; i < r->n_slots; i++) {
		struct progress *p = &r->prs[i];
		if (!p->id)
			continue;
		bool found = false;
		for (int j = 0; j < c.n; j++)
			if (c.ids[j] == p->id) {
				p->learner = c.learner[j];
				found = true;
			}
		if (!found)
			drop_slot(r, p);
	}
	for (int j = 0; j < c.n; j++)
		if (!pr_get(r, c.ids[j]) && !add_slot(r, c.ids[j], c.learner[j]))
			return -ENOSPC;

	if (r->role != RAFT_LEADER)
		return 0;
	if (!promotable(r)) {
		/* A removed leader steps down; the others elect a successor. */
		become_follower(r, r->term, RAFT_NONE);
		return 0;
	}
	if (r->lead_transferee && !pr_get(r, r->lead_transferee))
		transfer_abort(r);
	/* A smaller quorum may commit more now. */
	if (maybe_commit(r))
		bcast_append(r);
	else
		for (int i = 0; i < r->n_slots; i++)
			if (r->prs[i].id && r->prs[i].id != r->id)
				send_append(r, &r->prs[i], false);
	return 0;
}

int raft_conf_at(const struct raft *r, uint64_t index, struct raft_conf *ret_c)
{
	if (index < r->log.base_index || index > r->log.committed)
		return -EINVAL;
	struct raft_conf c = r->log.base_conf;
	for (uint64_t i = r->log.base_index + 1; i <= index; i++) {
		const struct raft_ent *x = rlog_at(&r->log, i);
		if (x->e.type != RAFTPB__ENTRY_TYPE__EntryConfChange)
			continue;
		Raftpb__ConfChange *cc = raftpb__conf_change__unpack(
			NULL, x->e.data.len, x->e.data.data);
		if (!cc)
			continue; /* refused at apply time too */
		conf_apply(&c, cc);
		raftpb__conf_change__free_unpacked(cc, NULL);
	}
	*ret_c = c;
	return 0;
}

void raft_conf_get(const struct raft *r, struct raft_conf *ret_c)
{
	conf_of(r, ret_c);
}
