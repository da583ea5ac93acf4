/*
 * The watch hub, as etcd 3.4's watchableStore: watchers made by gatewayd
 * (MSG_WATCH_CREATE), kept in a synced group (they have seen every revision
 * up to the current one: the apply of each batch hands them its events) and
 * an unsynced group (they still need history: whub_sync catches them up
 * from the store a bounded chunk at a time, then moves them to synced).
 * Applying never waits for a watcher.
 *
 * Everything leaves as ipc.WatchEvents messages through the send function:
 * one per revision for live events, each event once, with one WatchHit per
 * watcher listing the events it gets; history arrives in one message whose
 * revision is the current one (several only past WATCH_FLUSH_BYTES).
 * created/canceled/compact_revision/progress ride in hits too.
 */
#ifndef STORAGED_WATCH_H
#define STORAGED_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.pb-c.h"
#include "mvcc.h"

/* Watchers held at once; a create past it is answered created + canceled. */
#define WATCH_MAX 1000000
/* Unsynced watchers caught up together (etcd's maxWatchersPerSync). */
#define WATCH_ROUND_MAX 512
/* Stored revisions read per whub_sync call. */
#define WATCH_CHUNK 4096
/* History held for one catch-up before it is sent (at a revision end). */
#define WATCH_FLUSH_BYTES (16u << 20)
/* etcd's progress report interval. */
#define WATCH_PROGRESS_MS (10 * 60 * 1000)

/*
 * Sends ev (borrowed) to gatewayd: 0, -ENOTCONN (gone: the hub will be
 * cleared), or -EMSGSIZE (too large for a frame).
 */
typedef int whub_send_fn(void *arg, const Ipc__WatchEvents *ev);

struct whub;

/* m is borrowed and outlives the hub. NULL on no memory. */
struct whub *whub_new(struct mvcc *m, whub_send_fn *send, void *arg);
/* NULL is a no-op. */
void whub_free(struct whub *h);

/* gatewayd's requests. 0, or -ENOMEM. */
int whub_create(struct whub *h, const Ipc__WatchCreate *c);
void whub_cancel(struct whub *h, const uint64_t *ids, size_t n);
/* A hit {progress} at the current revision for each synced watcher named;
 * an unsynced one gets it once synced. */
void whub_progress(struct whub *h, const uint64_t *ids, size_t n);
/* gatewayd went away: every watcher goes (it re-creates them). */
void whub_clear(struct whub *h);

/*
 * The store was replaced by m (a snapshot was installed; the old one is
 * closed). Every watcher goes back to unsynced and catches up from m: a
 * synced one from revision seen + 1 (seen: the old store's current
 * revision, up to which it had every event), one in a catch-up round from
 * after what it was sent; one whose revision m has compacted is canceled
 * with m's compact revision, as at any catch-up.
 */
void whub_rebase(struct whub *h, struct mvcc *m, int64_t seen);

/* After each committed batch: its events to the synced watchers. */
int whub_apply(struct whub *h);
/*
 * One step of catching up unsynced watchers. Returns 1 when more remains
 * (call again soon, after other work), 0 when none is unsynced, or -errno
 * (reading the store failed).
 */
int whub_sync(struct whub *h);
/* etcd's progress notification: synced watchers that asked for it and got
 * no event since the last call get a hit {progress}. Call every
 * WATCH_PROGRESS_MS. */
void whub_progress_notify(struct whub *h);

struct whub_stats {
	size_t watchers;
	size_t unsynced;
	uint64_t events; /* events sent, counted per watcher, since start */
};
void whub_stats(const struct whub *h, struct whub_stats *ret);

#endif
