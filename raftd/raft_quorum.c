/*
 * Majority rules over the voters (thesis 3.6 commitment, 3.4 elections,
 * 6.4 ReadIndex confirmations, 6.2 CheckQuorum). Learners never count.
 */
#include <stdlib.h>

#include "raft_impl.h"

int quorum_voters(const struct raft *r)
{
	int n = 0;
	for (int i = 0; i < r->n_slots; i++)
		if (r->prs[i].id && !r->prs[i].learner)
			n++;
	return n;
}

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

/* The highest index a majority of voters has persisted. */
uint64_t quorum_committed(const struct raft *r)
{
	uint64_t m[RAFT_MAX_NODES];
	int n = 0;
	for (int i = 0; i < r->n_slots; i++)
		if (r->prs[i].id && !r->prs[i].learner)
			m[n++] = r->prs[i].match;
	if (n == 0)
		return 0;
	qsort(m, (size_t)n, sizeof(m[0]), cmp_desc);
	return m[n / 2];
}

enum vote_result quorum_vote_result(const struct raft *r)
{
	int yes = 0, no = 0, n = 0;
	for (int i = 0; i < r->n_slots; i++) {
		const struct progress *p = &r->prs[i];
		if (!p->id || p->learner)
			continue;
		n++;
		if (p->vote > 0)
			yes++;
		else if (p->vote < 0)
			no++;
	}
	if (n == 0)
		return VOTE_LOST;
	if (yes > n / 2)
		return VOTE_WON;
	if (no > n / 2 || (n - no) <= n / 2)
		return VOTE_LOST;
	return VOTE_PENDING;
}

bool quorum_acked(const struct raft *r, uint64_t slots)
{
	int yes = 0, n = 0;
	for (int i = 0; i < r->n_slots; i++) {
		if (!r->prs[i].id || r->prs[i].learner)
			continue;
		n++;
		if (slots & (1ull << i))
			yes++;
	}
	return n > 0 && yes > n / 2;
}

/*
 * CheckQuorum: true if a majority of voters (this leader included) was heard
 * from since the last check; resets the marks for the next one.
 */
bool quorum_active(struct raft *r)
{
	int yes = 0, n = 0;
	for (int i = 0; i < r->n_slots; i++) {
		struct progress *p = &r->prs[i];
		if (!p->id)
			continue;
		if (!p->learner) {
			n++;
			if (p->id == r->id || p->recent_active)
				yes++;
		}
		if (p->id != r->id) {
			/* Kept for the strict reconfiguration check, which
			 * must not read "inactive" right after a reset. */
			p->prev_active = p->recent_active;
			p->recent_active = false;
		}
	}
	return yes > n / 2;
}
