/*
 * The leader's view of each member (thesis 3.5: nextIndex and matchIndex),
 * with etcd's flow control: probe one MsgApp at a time until the follower's
 * log matches, then replicate optimistically within a window of inflight
 * messages (thesis 10.2.1 pipelining), or wait for a snapshot.
 */
#include <string.h>

#include "raft_impl.h"

void pr_reset(struct progress *p, uint64_t id, uint64_t next, int max_inflight,
	      bool learner)
{
	memset(p, 0, offsetof(struct progress, ins));
	p->id = id;
	p->next = next;
	p->learner = learner;
	p->state = PR_PROBE;
	p->ins.start = p->ins.count = 0;
	p->ins.size = max_inflight;
}

static void reset_state(struct progress *p, enum pr_state s)
{
	p->probe_sent = false;
	p->pending_snapshot = 0;
	p->state = s;
	p->ins.start = p->ins.count = 0;
}

void pr_become_probe(struct progress *p)
{
	/* After a snapshot, resume right after it (or after what matched). */
	if (p->state == PR_SNAPSHOT) {
		uint64_t ps = p->pending_snapshot;
		reset_state(p, PR_PROBE);
		p->next = (p->match > ps ? p->match : ps) + 1;
	} else {
		reset_state(p, PR_PROBE);
		p->next = p->match + 1;
	}
}

void pr_become_replicate(struct progress *p)
{
	reset_state(p, PR_REPLICATE);
	p->next = p->match + 1;
}

void pr_become_snapshot(struct progress *p, uint64_t snapi)
{
	reset_state(p, PR_SNAPSHOT);
	p->pending_snapshot = snapi;
}

/* An acknowledgement up to n: false if it is stale. */
bool pr_maybe_update(struct progress *p, uint64_t n)
{
	bool updated = false;
	if (p->match < n) {
		p->match = n;
		updated = true;
		p->probe_sent = false;
	}
	if (p->next < n + 1)
		p->next = n + 1;
	return updated;
}

/*
 * A rejection of the MsgApp at index rejected; hint is the follower's last
 * index. False if the rejection is stale.
 */
bool pr_maybe_decr_to(struct progress *p, uint64_t rejected, uint64_t hint)
{
	if (p->state == PR_REPLICATE) {
		if (rejected <= p->match)
			return false;
		p->next = p->match + 1;
		return true;
	}
	if (p->next - 1 != rejected)
		return false;
	uint64_t n = rejected < hint + 1 ? rejected : hint + 1;
	p->next = n < 1 ? 1 : n;
	p->probe_sent = false;
	return true;
}

bool pr_is_paused(const struct progress *p)
{
	switch (p->state) {
	case PR_PROBE:
		return p->probe_sent;
	case PR_REPLICATE:
		return ins_full(&p->ins);
	default:
		return true;
	}
}

void ins_add(struct inflights *in, uint64_t i)
{
	if (ins_full(in))
		return;
	int k = (in->start + in->count) % in->size;
	in->buf[k] = i;
	in->count++;
}

/* Frees the inflight messages whose last index is at most i. */
void ins_free_le(struct inflights *in, uint64_t i)
{
	while (in->count > 0 && in->buf[in->start] <= i) {
		in->start = (in->start + 1) % in->size;
		in->count--;
	}
	if (in->count == 0)
		in->start = 0;
}

void ins_free_first(struct inflights *in)
{
	if (in->count > 0)
		ins_free_le(in, in->buf[in->start]);
}

struct progress *pr_get(struct raft *r, uint64_t id)
{
	if (id == RAFT_NONE)
		return NULL;
	for (int i = 0; i < r->n_slots; i++)
		if (r->prs[i].id == id)
			return &r->prs[i];
	return NULL;
}

int pr_slot(const struct raft *r, const struct progress *p)
{
	return (int)(p - r->prs);
}
