/*
 * ReadIndex (thesis 6.4): the leader records its commit index for a read,
 * confirms it is still the leader with a round of heartbeats acknowledged by
 * a majority, and then releases the read at that index. A new leader first
 * commits an entry of its term (6.4 step 1), so reads wait for that. Many
 * reads share one round; a follower forwards its reads to the leader (6.4.1).
 */
#include <stdlib.h>
#include <string.h>

#include "raft_impl.h"

int read_state_add(struct raft *r, uint64_t index, uint64_t ctx)
{
	if (r->n_rs == r->cap_rs) {
		size_t cap = r->cap_rs ? r->cap_rs * 2 : 16;
		struct raft_read_state *p = realloc(r->rs, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		r->rs = p;
		r->cap_rs = cap;
	}
	r->rs[r->n_rs].index = index;
	r->rs[r->n_rs].ctx = ctx;
	r->n_rs++;
	return 0;
}

void read_dropped_add(struct raft *r, uint64_t ctx)
{
	if (r->n_dropped == r->cap_dropped) {
		size_t cap = r->cap_dropped ? r->cap_dropped * 2 : 16;
		uint64_t *p = realloc(r->dropped, cap * sizeof(*p));
		if (!p)
			return; /* the driver's own timeout answers it */
		r->dropped = p;
		r->cap_dropped = cap;
	}
	r->dropped[r->n_dropped++] = ctx;
}

/* Hands a confirmed read to its requester. */
static void release(struct raft *r, uint64_t ctx, uint64_t from, uint64_t index)
{
	if (from == r->id || from == RAFT_NONE) {
		if (read_state_add(r, index, ctx) < 0)
			read_dropped_add(r, ctx);
		return;
	}
	Raftpb__Message *m =
		msg_new(r, RAFTPB__MESSAGE_TYPE__MsgReadIndexResp, from);
	if (!m)
		return;
	m->index = index;
	if (msg_set_context(m, &ctx, sizeof(ctx)) < 0) {
		raft_msg_free(m);
		return;
	}
	msg_send(r, m);
}

static bool committed_in_term(const struct raft *r)
{
	return rlog_term0(&r->log, r->log.committed) == r->term;
}

/* Queues a read into the round being formed; the caller broadcasts. */
static void enqueue(struct raft *r, uint64_t ctx, uint64_t from, uint64_t round)
{
	struct read_req *q = &r->reads[r->n_reads++];
	q->ctx = ctx;
	q->from = from;
	q->index = r->log.committed;
	q->round = round;
	struct progress *self = pr_get(r, r->id);
	q->acks = self && !self->learner ? 1ull << pr_slot(r, self) : 0;
}

static int ensure_space(struct raft *r)
{
	if (r->n_reads + r->n_reads_waiting >= RAFT_MAX_READS)
		return -ENOBUFS;
	if (!r->reads) {
		r->reads = calloc(RAFT_MAX_READS, sizeof(*r->reads));
		r->reads_waiting = calloc(RAFT_MAX_READS, sizeof(*r->reads_waiting));
		if (!r->reads || !r->reads_waiting) {
			free(r->reads);
			free(r->reads_waiting);
			r->reads = r->reads_waiting = NULL;
			return -ENOMEM;
		}
	}
	return 0;
}

/* The leader got a read request (its own, or a follower's). */
int read_request(struct raft *r, uint64_t ctx, uint64_t from)
{
	int rc = ensure_space(r);
	if (rc < 0)
		return rc;
	if (!committed_in_term(r)) {
		struct read_req *q = &r->reads_waiting[r->n_reads_waiting++];
		memset(q, 0, sizeof(*q));
		q->ctx = ctx;
		q->from = from;
		return 0;
	}
	/* A lone voter is the majority: nobody can have replaced it. */
	struct progress *self = pr_get(r, r->id);
	if (quorum_voters(r) == 1 && self && !self->learner) {
		release(r, ctx, from, r->log.committed);
		return 0;
	}
	uint64_t round = ++r->read_round;
	enqueue(r, ctx, from, round);
	bcast_heartbeat(r, round);
	return 0;
}

/* The leader's first commit in its term: reads held back go now, all in
 * one round. */
void read_committed_in_term(struct raft *r)
{
	if (r->n_reads_waiting == 0 || !committed_in_term(r))
		return;
	struct progress *self = pr_get(r, r->id);
	bool alone = quorum_voters(r) == 1 && self && !self->learner;
	uint64_t round = alone ? 0 : ++r->read_round;
	size_t n = r->n_reads_waiting;
	r->n_reads_waiting = 0;
	for (size_t i = 0; i < n; i++) {
		const struct read_req *w = &r->reads_waiting[i];
		if (alone)
			release(r, w->ctx, w->from, r->log.committed);
		else
			enqueue(r, w->ctx, w->from, round);
	}
	if (!alone)
		bcast_heartbeat(r, round);
}

/* A heartbeat response carrying a round: count it, release what a majority
 * has confirmed (every read of that round and of the rounds before it). */
void read_ack(struct raft *r, const Raftpb__Message *m)
{
	uint64_t round;
	memcpy(&round, m->context.data, sizeof(round));
	struct progress *p = pr_get(r, m->from);
	if (!p || r->n_reads == 0)
		return;
	uint64_t bit = 1ull << pr_slot(r, p);
	size_t last = r->n_reads;
	for (size_t i = 0; i < r->n_reads; i++) {
		if (r->reads[i].round == round) {
			r->reads[i].acks |= bit;
			last = i;
		}
	}
	if (last == r->n_reads || !quorum_acked(r, r->reads[last].acks))
		return;
	size_t k = last + 1;
	for (size_t i = 0; i < k; i++)
		release(r, r->reads[i].ctx, r->reads[i].from, r->reads[i].index);
	memmove(r->reads, r->reads + k, (r->n_reads - k) * sizeof(*r->reads));
	r->n_reads -= k;
}

/* No longer leader: the reads asked here are answered as dropped;
 * followers' forwarded reads time out at their driver. */
void read_drop_all(struct raft *r)
{
	for (size_t i = 0; i < r->n_reads; i++)
		if (r->reads[i].from == r->id)
			read_dropped_add(r, r->reads[i].ctx);
	for (size_t i = 0; i < r->n_reads_waiting; i++)
		if (r->reads_waiting[i].from == r->id)
			read_dropped_add(r, r->reads_waiting[i].ctx);
	r->n_reads = r->n_reads_waiting = 0;
}

void read_resp(struct raft *r, const Raftpb__Message *m)
{
	uint64_t ctx;
	if (m->context.len != sizeof(ctx))
		return;
	memcpy(&ctx, m->context.data, sizeof(ctx));
	if (read_state_add(r, m->index, ctx) < 0)
		read_dropped_add(r, ctx);
}

/* A slot changes hands: acknowledgements from its old member are void. */
void read_forget_slot(struct raft *r, int slot)
{
	for (size_t i = 0; i < r->n_reads; i++)
		r->reads[i].acks &= ~(1ull << slot);
}

int raft_read_index(struct raft *r, uint64_t ctx)
{
	if (r->role == RAFT_LEADER)
		return read_request(r, ctx, r->id);
	if (r->lead == RAFT_NONE)
		return -ENOTCONN;
	Raftpb__Message *m = msg_new(r, RAFTPB__MESSAGE_TYPE__MsgReadIndex,
				     r->lead);
	if (!m)
		return -ENOMEM;
	if (msg_set_context(m, &ctx, sizeof(ctx)) < 0) {
		raft_msg_free(m);
		return -ENOMEM;
	}
	msg_send(r, m);
	return 0;
}
