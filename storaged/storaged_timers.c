/*
 * storaged's timed work: catching up unsynced watchers a step at a time
 * between other events, etcd's progress notifications every 10 minutes,
 * the leader's lease expiry check every 500 ms, which proposes the revoke of
 * every expired lease through Raft (no key is deleted here), and the retry
 * of this member's publish every second.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lease.h"
#include "log.h"
#include "raft_internal.pb-c.h"
#include "storaged.h"

/* etcd revokes at most 1000 expired leases a second (leaseRevokeRate). */
#define LEASE_CHECK_MS 500
#define LEASE_REVOKES_PER_CHECK 500
/* Between catch-up steps while a round runs, and between idle checks
 * (etcd's syncWatchersLoop runs every 100 ms). */
#define WATCH_IDLE_MS 100
#define WATCH_BACKLOG_RETRY_MS 10
/* A publish not applied yet is proposed again after this (etcd retries
 * its publish until it succeeds). */
#define PUBLISH_RETRY_MS 1000

static void add_ms(struct event *ev, long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	event_add(ev, &tv);
}

int storaged_send_events(void *arg, const Ipc__WatchEvents *ev)
{
	struct storaged *st = arg;
	return worker_send_pb(st->w, PROC_GATEWAYD, MSG_WATCH_EVENTS, 0,
			      &ev->base);
}

void storaged_watch_kick(struct storaged *st)
{
	if (st->watch_ev)
		add_ms(st->watch_ev, 0);
}

static void on_watch(evutil_socket_t fd, short what, void *arg)
{
	struct storaged *st = arg;
	struct link *gw = st->w->peer[PROC_GATEWAYD];
	(void)fd;
	(void)what;
	/* History waits while gatewayd is behind on what it has. */
	if (gw && link_queued(gw) > WATCH_BACKLOG_MAX) {
		add_ms(st->watch_ev, WATCH_BACKLOG_RETRY_MS);
		return;
	}
	int r = whub_sync(st->hub);
	if (r < 0)
		worker_fatal(st->w, "storaged: cannot read watch history: %s",
			     strerror(-r));
	/* A zero timeout runs after the frames already waiting: applying
	 * goes on between steps. */
	add_ms(st->watch_ev, r ? 0 : WATCH_IDLE_MS);
}

static void on_progress(evutil_socket_t fd, short what, void *arg)
{
	struct storaged *st = arg;
	(void)fd;
	(void)what;
	whub_progress_notify(st->hub);
}

/*
 * Request IDs of storaged's own proposals: the top 16 bits are this
 * member's prefix with its top bit flipped, so no result is ever routed to
 * our gatewayd (and the 48 low bits start from the clock, so a restarted
 * storaged does not reuse them).
 */
uint64_t storaged_own_id(struct storaged *st)
{
	uint64_t prefix = (uint64_t)(st->prefix ^ 0x8000) << 48;
	return prefix | (st->revoke_seq++ & 0xffffffffffffull);
}

static void propose_revoke(struct storaged *st, int64_t lease)
{
	Etcdserverpb__LeaseRevokeRequest rv = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
	Etcdserverpb__InternalRaftRequest r = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	Etcdserverpb__RequestHeader hdr = ETCDSERVERPB__REQUEST_HEADER__INIT;
	uint8_t buf[64];
	rv.id = lease;
	r.id = hdr.id = storaged_own_id(st);
	r.header = &hdr;
	r.lease_revoke = &rv;
	size_t len = etcdserverpb__internal_raft_request__get_packed_size(&r);
	if (len > sizeof(buf))
		return;
	etcdserverpb__internal_raft_request__pack(&r, buf);
	if (worker_send(st->w, PROC_RAFTD, MSG_PROPOSE, r.id, buf, len) < 0)
		log_debug("lease", "cannot propose the revoke of %016" PRIx64
			  ": raftd is away", (uint64_t)lease);
}

static void on_lease(evutil_socket_t fd, short what, void *arg)
{
	struct storaged *st = arg;
	int64_t ids[LEASE_REVOKES_PER_CHECK];
	(void)fd;
	(void)what;
	if (!st->leader || !st->w->peer[PROC_RAFTD])
		return;
	size_t n = lessor_expired(st->m, ids, LEASE_REVOKES_PER_CHECK);
	for (size_t i = 0; i < n; i++)
		propose_revoke(st, ids[i]);
}

static void promote(struct storaged *st)
{
	/* etcd's Promote(electionTimeout): a new leader gives every lease
	 * its full TTL again, plus one election timeout. */
	uint32_t et = st->w->cfg->election_timeout_ms;
	lessor_promote(st->m, et ? et : 1000);
}

void storaged_lessor_setup(struct storaged *st)
{
	const Ipc__WorkerConfig *cfg = st->w->cfg;
	lessor_configure(st->m, cfg->election_timeout_ms,
			 cfg->heartbeat_interval_ms, NULL);
	if (st->leader)
		promote(st);
}

void storaged_raft_state(struct storaged *st, const Ipc__RaftState *rs)
{
	int leader = rs->leader != 0 && rs->leader == st->w->cfg->member_id;
	uint64_t was = st->leader_id;
	st->leader_id = rs->leader;
	/* A leader to propose to: publish at once if need be. */
	if (!was && rs->leader)
		storaged_publish(st);
	if (leader == st->leader)
		return;
	st->leader = leader;
	if (leader)
		promote(st);
	else
		lessor_demote(st->m);
}

static void on_publish(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	storaged_publish(arg);
}

int storaged_timers_start(struct storaged *st)
{
	struct event_base *base = st->w->base;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	st->revoke_seq = ((uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000) << 8;

	st->watch_ev = event_new(base, -1, 0, on_watch, st);
	st->lease_ev = event_new(base, -1, EV_PERSIST, on_lease, st);
	st->progress_ev = event_new(base, -1, EV_PERSIST, on_progress, st);
	st->publish_ev = event_new(base, -1, EV_PERSIST, on_publish, st);
	if (!st->watch_ev || !st->lease_ev || !st->progress_ev ||
	    !st->publish_ev)
		return -ENOMEM;
	add_ms(st->watch_ev, WATCH_IDLE_MS);
	add_ms(st->lease_ev, LEASE_CHECK_MS);
	add_ms(st->progress_ev, WATCH_PROGRESS_MS);
	add_ms(st->publish_ev, PUBLISH_RETRY_MS);
	return 0;
}

void storaged_timers_stop(struct storaged *st)
{
	struct event **evs[] = { &st->watch_ev, &st->lease_ev, &st->progress_ev,
				 &st->publish_ev };
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (*evs[i]) {
			event_free(*evs[i]);
			*evs[i] = NULL;
		}
}
