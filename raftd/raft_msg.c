/*
 * Outgoing messages: built by the core, queued in its outbox, handed to the
 * driver in the ready bundle. Entries are shared with the log by reference.
 */
#include <stdlib.h>
#include <string.h>

#include "raft_impl.h"

Raftpb__Message *msg_new(struct raft *r, Raftpb__MessageType type, uint64_t to)
{
	Raftpb__Message *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	raftpb__message__init(m);
	m->type = type;
	m->to = to;
	m->from = r->id;
	return m;
}

int msg_set_context(Raftpb__Message *m, const void *p, size_t len)
{
	uint8_t *c = malloc(len ? len : 1);
	if (!c)
		return -ENOMEM;
	memcpy(c, p, len);
	free(m->context.data);
	m->context.data = c;
	m->context.len = len;
	return 0;
}

int msg_add_entries(Raftpb__Message *m, struct raft_ent **ents, size_t n)
{
	if (n == 0)
		return 0;
	Raftpb__Entry **e = realloc(m->entries,
				    (m->n_entries + n) * sizeof(*e));
	if (!e)
		return -ENOMEM;
	m->entries = e;
	for (size_t i = 0; i < n; i++)
		e[m->n_entries++] = &raft_ent_ref(ents[i])->e;
	return 0;
}

void raft_msg_free(Raftpb__Message *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_entries; i++)
		raft_ent_unref(raft_ent_of(m->entries[i]));
	free(m->entries);
	free(m->context.data);
	if (m->snapshot) {
		if (m->snapshot->metadata) {
			Raftpb__ConfState *cs = m->snapshot->metadata->conf_state;
			if (cs) {
				free(cs->voters);
				free(cs->learners);
				free(cs);
			}
			free(m->snapshot->metadata);
		}
		free(m->snapshot);
	}
	free(m);
}

/*
 * Queues m (transferred). The term is stamped here as etcd's send does:
 * requests carry the node's term, except MsgProp and MsgReadIndex (term 0,
 * local-looking forwards) and vote traffic, which sets its own.
 */
void msg_send(struct raft *r, Raftpb__Message *m)
{
	if (!m)
		return;
	switch (m->type) {
	case RAFTPB__MESSAGE_TYPE__MsgVote:
	case RAFTPB__MESSAGE_TYPE__MsgPreVote:
	case RAFTPB__MESSAGE_TYPE__MsgVoteResp:
	case RAFTPB__MESSAGE_TYPE__MsgPreVoteResp:
		break;
	case RAFTPB__MESSAGE_TYPE__MsgProp:
	case RAFTPB__MESSAGE_TYPE__MsgReadIndex:
		m->term = 0;
		break;
	default:
		m->term = r->term;
	}
	if (r->n_out == r->cap_out) {
		size_t cap = r->cap_out ? r->cap_out * 2 : 64;
		Raftpb__Message **p = realloc(r->out, cap * sizeof(*p));
		if (!p) {
			/* A lost message is a case Raft already handles. */
			raft_msg_free(m);
			return;
		}
		r->out = p;
		r->cap_out = cap;
	}
	r->out[r->n_out++] = m;
}

/* xorshift64*: the election-timeout randomizer, seeded by the caller. */
uint64_t prng_next(struct raft *r)
{
	uint64_t x = r->prng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->prng = x;
	return x * 0x2545F4914F6CDD1Dull;
}
