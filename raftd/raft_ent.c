/* Reference-counted log entries: one allocation per entry, data inline. */
#include <stdlib.h>
#include <string.h>

#include "raft_ent.h"

struct raft_ent *raft_ent_new(uint64_t term, uint64_t index,
			      Raftpb__EntryType type, const void *data,
			      size_t len)
{
	struct raft_ent *x = malloc(sizeof(*x) + len);
	if (!x)
		return NULL;
	raftpb__entry__init(&x->e);
	x->e.term = term;
	x->e.index = index;
	x->e.type = type;
	x->e.data.len = len;
	x->e.data.data = len ? x->data : NULL;
	if (len)
		memcpy(x->data, data, len);
	x->refs = 1;
	return x;
}

void raft_ent_unref(struct raft_ent *x)
{
	if (x && --x->refs == 0)
		free(x);
}
