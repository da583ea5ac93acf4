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
#include "snap.h"
#include "stor_metrics.h"
#include "watch.h"
#include "worker.h"

/* Snapshots being sent at once (one per follower in practice). */
#define SNAP_MAKE_MAX 8

/* A snapshot being handed to gatewayd, file after file. */
struct snap_out {
	uint64_t id;             /* the transfer's */
	struct snap_files *f;    /* owned */
	size_t next;             /* the next file to send */
};

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
	uint64_t leader_id;     /* the leader, 0 if none known */
	uint64_t publish_id;    /* our publish's request ID, 0 until proposed */
	int published;          /* and seen applied */
	uint64_t revoke_seq;    /* the lessor's own request IDs */
	struct event *sync_ev;
	struct event *watch_ev;
	struct event *lease_ev;
	struct event *progress_ev;
	struct event *publish_ev;
	struct event *v2sync_ev;
	/* Snapshots (storaged_snap.c); paths under <data-dir>/member. */
	char *memberdir, *snapdir, *dbpath;
	struct snap_recv *recv;
	struct snap_out snap_out[SNAP_MAKE_MAX];
	size_t nsnap_out;
	struct event *snap_ev;
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
/* The lessor of a store just opened: timing, and leadership if we lead. */
void storaged_lessor_setup(struct storaged *st);
/* A request ID for storaged's own proposals (lease revokes, publish): it
 * never routes a result to gatewayd. */
uint64_t storaged_own_id(struct storaged *st);

/* storaged.c: MSG_APPLIED to raftd; reads waiting for the applied index. */
void storaged_send_applied(struct storaged *st);
void storaged_drain_queries(struct storaged *st);

/* Snapshots (storaged_snap.c). */
int storaged_snap_start(struct storaged *st);
void storaged_snap_stop(struct storaged *st);
void storaged_snap_make(struct storaged *st, const struct msg_hdr *hdr,
			const uint8_t *body);
void storaged_snap_chunk(struct storaged *st, const struct msg_hdr *hdr,
			 const uint8_t *body);
/* gatewayd went away: what was being sent or received is dropped. */
void storaged_snap_gw_down(struct storaged *st);

/* etcd's publish (storaged_publish.c): proposes this member's name and
 * client URLs once a leader is known, until seen applied. */
void storaged_publish(struct storaged *st);
/* Our publish (request st->publish_id) was applied. */
void storaged_published(struct storaged *st);

/* The v2 keys API (storaged_v2.c). */
int storaged_v2_start(struct storaged *st);
void storaged_v2_stop(struct storaged *st);
/* A Query.v2 from gatewayd (ownership of q transferred). */
void storaged_v2_query(struct storaged *st, uint64_t id, Ipc__Query *q);
/* MSG_V2_CANCEL: the client of wait id went away. */
void storaged_v2_cancel(struct storaged *st, uint64_t id);
/* After an apply batch is committed: answers the waits it fired. */
void storaged_v2_flush(struct storaged *st);
void storaged_v2_gw_down(struct storaged *st);
/* Before the store is replaced by a snapshot: ends every wait. */
void storaged_v2_recovery(struct storaged *st);

#endif
