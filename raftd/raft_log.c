/*
 * The in-memory log: entries after a compaction point (thesis 5.1), with the
 * committed, applied and persisted marks, and the append rule of AppendEntries
 * (thesis 3.5: consistency check, conflict truncation).
 */
#include <stdlib.h>
#include <string.h>

#include "raft_impl.h"

int rlog_init(struct raft_log *l, uint64_t base_index, uint64_t base_term)
{
	memset(l, 0, sizeof(*l));
	l->base_index = base_index;
	l->base_term = base_term;
	l->committed = l->applied = l->stable = base_index;
	return 0;
}

void rlog_done(struct raft_log *l)
{
	for (size_t i = 0; i < l->n; i++)
		raft_ent_unref(l->ents[i]);
	free(l->ents);
	l->ents = NULL;
	l->n = l->cap = 0;
}

int rlog_term(const struct raft_log *l, uint64_t i, uint64_t *ret_t)
{
	if (i < l->base_index)
		return -ENOENT;
	if (i > rlog_last(l))
		return -ERANGE;
	*ret_t = i == l->base_index ? l->base_term
				    : l->ents[i - l->base_index - 1]->e.term;
	return 0;
}

uint64_t rlog_term0(const struct raft_log *l, uint64_t i)
{
	uint64_t t = 0;
	rlog_term(l, i, &t);
	return t;
}

uint64_t rlog_last_term(const struct raft_log *l)
{
	return rlog_term0(l, rlog_last(l));
}

struct raft_ent *rlog_at(const struct raft_log *l, uint64_t i)
{
	if (i <= l->base_index || i > rlog_last(l))
		return NULL;
	return l->ents[i - l->base_index - 1];
}

int rlog_append(struct raft_log *l, struct raft_ent *x)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		struct raft_ent **p = realloc(l->ents, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->ents = p;
		l->cap = cap;
	}
	l->ents[l->n++] = raft_ent_ref(x);
	return 0;
}

void rlog_truncate(struct raft_log *l, uint64_t after)
{
	while (rlog_last(l) > after && l->n > 0)
		raft_ent_unref(l->ents[--l->n]);
	if (l->stable > after)
		l->stable = after;
}

bool rlog_match_term(const struct raft_log *l, uint64_t i, uint64_t t)
{
	uint64_t have;
	return rlog_term(l, i, &have) == 0 && have == t;
}

/* Thesis 3.6.1: the log with the later last term, or the longer one on a tie. */
bool rlog_up_to_date(const struct raft_log *l, uint64_t i, uint64_t t)
{
	uint64_t lt = rlog_last_term(l);
	return t > lt || (t == lt && i >= rlog_last(l));
}

/* The first entry whose term differs from ours (or that we lack), or 0. */
static size_t find_conflict(const struct raft_log *l, Raftpb__Entry *const *ents,
			    size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ents[i]->index > l->base_index &&
		    !rlog_match_term(l, ents[i]->index, ents[i]->term))
			return i + 1;
	return 0;
}

int rlog_maybe_append(struct raft_log *l, uint64_t idx, uint64_t term,
		      uint64_t commit, Raftpb__Entry *const *ents, size_t n,
		      uint64_t *ret_last)
{
	if (!rlog_match_term(l, idx, term))
		return -ESRCH;
	uint64_t last_new = idx + n;
	size_t c = find_conflict(l, ents, n);
	if (c) {
		const Raftpb__Entry *first = ents[c - 1];
		/* Entries up to our base are committed, hence equal, and skipped. */
		if (first->index <= l->committed)
			return -EINVAL; /* a leader would overwrite a committed entry */
		rlog_truncate(l, first->index - 1);
		for (size_t i = c - 1; i < n; i++) {
			if (ents[i]->index <= l->base_index)
				continue;
			struct raft_ent *x = raft_ent_new(ents[i]->term,
							  ents[i]->index,
							  ents[i]->type,
							  ents[i]->data.data,
							  ents[i]->data.len);
			if (!x)
				return -ENOMEM;
			int rc = rlog_append(l, x);
			raft_ent_unref(x);
			if (rc < 0)
				return rc;
		}
	}
	rlog_commit_to(l, commit < last_new ? commit : last_new);
	*ret_last = last_new;
	return 0;
}

void rlog_commit_to(struct raft_log *l, uint64_t i)
{
	if (i > l->committed && i <= rlog_last(l))
		l->committed = i;
}

/* Drops entries up to i, which becomes the base with term. */
void rlog_compact(struct raft_log *l, uint64_t i, uint64_t term)
{
	if (i <= l->base_index)
		return;
	size_t k = (size_t)(i - l->base_index);
	if (k > l->n)
		k = l->n;
	for (size_t j = 0; j < k; j++)
		raft_ent_unref(l->ents[j]);
	memmove(l->ents, l->ents + k, (l->n - k) * sizeof(*l->ents));
	l->n -= k;
	l->base_index = i;
	l->base_term = term;
}

/* Forgets the whole log for a snapshot at (index, term). */
void rlog_reset(struct raft_log *l, uint64_t index, uint64_t term)
{
	rlog_truncate(l, l->base_index);
	l->base_index = index;
	l->base_term = term;
	l->committed = l->applied = l->stable = index;
}
