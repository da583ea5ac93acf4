/*
 * The apply of committed Raft entries to the store: normal entries carry an
 * etcdserverpb.InternalRaftRequest, ConfChange entries change the members.
 * No event loop and no logging here; storaged.c sends the results.
 */
#ifndef STORAGED_APPLY_H
#define STORAGED_APPLY_H

#include <stdint.h>

#include "arena.h"
#include "ipc.pb-c.h"
#include "mvcc.h"
#include "raft.pb-c.h"

/* Why an entry was not applied (it still counts as applied). */
#define APPLY_EBADENTRY 1

/*
 * Applies entry e inside the current batch of m and marks it applied.
 * Entries at or below mvcc_applied() are skipped (0, nothing returned).
 * For a request entry, and a ConfChange entry with a request ID
 * (ConfChange.ID), *ret_id is its request ID and *ret_res its result, built
 * in a (a response, or an Error with etcd's code and message); both are
 * left untouched otherwise. An invalid ConfChange (confchange.h) changes
 * nothing and answers its error.
 *
 * Returns 0; APPLY_EBADENTRY when the entry could not be decoded (skipped);
 * or a negative errno after which the store is unusable (I/O failure or out
 * of memory in the middle of a write): the process must exit.
 */
int apply_entry(struct mvcc *m, const Raftpb__Entry *e, struct arena *a,
		uint64_t *ret_id, Ipc__Result **ret_res);

/* Fills res->error with err's code and message (err: negative MVCC_E*). */
void apply_set_error(Ipc__Result *res, struct arena *a, int err);

#endif
