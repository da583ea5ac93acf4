/*
 * Log entries shared by reference: one allocation holds a Raftpb__Entry and
 * its data, and the log, the outgoing messages and the ready bundle all point
 * at the same bytes. An entry never changes once it is in the log.
 */
#ifndef ETCD_RAFTD_RAFT_ENT_H
#define ETCD_RAFTD_RAFT_ENT_H

#include <stddef.h>
#include <stdint.h>

#include "raft.pb-c.h"

struct raft_ent {
	Raftpb__Entry e; /* first member: a Raftpb__Entry * we made is a raft_ent * */
	uint32_t refs;
	uint8_t data[];
};

/* A new entry holding a copy of data (len bytes), one reference. NULL on ENOMEM. */
struct raft_ent *raft_ent_new(uint64_t term, uint64_t index,
			      Raftpb__EntryType type, const void *data,
			      size_t len);
static inline struct raft_ent *raft_ent_ref(struct raft_ent *x)
{
	x->refs++;
	return x;
}
/* Drops one reference; frees at zero. NULL is a no-op. */
void raft_ent_unref(struct raft_ent *x);

/* The entry e, which must be the first member of a raft_ent. */
static inline struct raft_ent *raft_ent_of(const Raftpb__Entry *e)
{
	return (struct raft_ent *)(uintptr_t)e;
}

#endif
