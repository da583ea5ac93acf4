/*
 * Reads from gatewayd (ipc.Query): range, member list, status and the
 * lessor's queries (time to live, leases, keepalive), answered
 * once the store has applied the query's min_applied. Queries that must wait
 * sit in a bounded queue.
 */
#ifndef STORAGED_QUERY_H
#define STORAGED_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "ipc.pb-c.h"
#include "mvcc.h"

/* Queries waiting for the apply to catch up, at most. */
#define QUERY_QUEUE_MAX 16384

struct query_wait {
	uint64_t id;
	Ipc__Query *q; /* owned */
};

struct query_queue {
	struct query_wait *v;
	size_t n, cap;
};

/* What the answers need besides the store: this member (borrowed). */
struct query_ctx {
	struct mvcc *m;
	uint64_t member_id;
	const char *name;
	char **client_urls;
	size_t n_client_urls;
};

/*
 * Answers q into a: *ret_res is a response, or an Error. Returns 0 or a
 * negative errno (out of memory, I/O) when no answer could be built.
 */
int query_answer(const struct query_ctx *c, const Ipc__Query *q,
		 struct arena *a, Ipc__Result **ret_res);

/* Queues q (ownership transferred on success). -ENOBUFS when full. */
int query_queue_push(struct query_queue *qq, uint64_t id, Ipc__Query *q);
/*
 * Removes every query with min_applied <= applied and hands it to fn
 * (ownership transferred), in arrival order. fn must not touch qq.
 */
void query_queue_drain(struct query_queue *qq, uint64_t applied,
		       void (*fn)(uint64_t id, Ipc__Query *q, void *arg),
		       void *arg);
/* Frees every queued query. */
void query_queue_clear(struct query_queue *qq);

#endif
