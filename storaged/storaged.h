/*
 * storaged's process state, shared by its main file (storaged.c: links,
 * apply, queries) and storaged_timers.c (watch catch-up, lease expiry,
 * progress notifications).
 */
#ifndef STORAGED_STORAGED_H
#define STORAGED_STORAGED_H

#include <stdint.h>

#include "mvcc.h"
#include "query.h"
#include "stor_metrics.h"
#include "watch.h"
#include "worker.h"

/* Keepalives waiting for this member to lead, at most. */
#define KEEPALIVE_WAIT_MAX 4096
/* Past this many bytes queued towards gatewayd, catch-up waits. */
#define WATCH_BACKLOG_MAX (32u << 20)

struct storaged {
	struct worker *w;
	struct mvcc *m;
	struct whub *hub;
	struct arena batch;     /* one MSG_APPLY: the entries and results */
	struct arena qa;        /* one query's answer */
	uint64_t durable;       /* applied and synced */
	uint16_t prefix;        /* request IDs this member made start with it */
	int leader;             /* this member leads (from MSG_RAFT_STATE) */
	uint64_t revoke_seq;    /* the lessor's own request IDs */
	struct event *sync_ev;
	struct event *watch_ev;
	struct event *lease_ev;
	struct event *progress_ev;
	struct query_queue queue;
	struct query_queue keepalives; /* waiting for leadership */
	struct query_ctx qctx;
	struct stor_counters counters;
};

/* Timers (storaged_timers.c). */
int storaged_timers_start(struct storaged *st);
void storaged_timers_stop(struct storaged *st);
/* Catch-up of unsynced watchers: run soon (after pending frames). */
void storaged_watch_kick(struct storaged *st);
/* The hub's send function. */
int storaged_send_events(void *arg, const Ipc__WatchEvents *ev);
/* MSG_RAFT_STATE: leadership changes promote or demote the lessor. */
void storaged_raft_state(struct storaged *st, const Ipc__RaftState *rs);

#endif
