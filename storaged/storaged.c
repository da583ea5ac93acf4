/*
 * storaged: applies committed Raft entries to the MVCC store (RocksDB),
 * answers reads, runs the watch hub and the lessor. Peers: raftd (MSG_APPLY
 * and MSG_RAFT_STATE in; MSG_APPLIED and storaged's own MSG_PROPOSE out:
 * lease revokes, publish, v2 SYNC), gatewayd (MSG_QUERY, MSG_WATCH_*,
 * MSG_V2_CANCEL, MSG_METRICS and the snapshot frames MSG_SNAP_MAKE and
 * MSG_SNAP_CHUNK in; MSG_RESULT
 * for queries and for the proposals this member made, MSG_WATCH_EVENTS,
 * MSG_METRICS_RESP, MSG_SNAP_FILE and MSG_SNAP_ACK out).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "apply.h"
#include "lease.h"
#include "log.h"
#include "storaged.h"
#include "v2store.h"

/* How often applied entries are synced to disk (durable_index). */
#define SYNC_INTERVAL_MS 100
/* The most one metrics answer may take. */
#define METRICS_ARENA_LIMIT (1u << 20)

static struct storaged storaged;

void storaged_send_applied(struct storaged *st)
{
	Ipc__Applied a = IPC__APPLIED__INIT;
	a.index = mvcc_applied(st->m);
	a.durable_index = st->durable;
	worker_send_pb(st->w, PROC_RAFTD, MSG_APPLIED, 0, &a.base);
}

/* Sends res to gatewayd; an answer too large for a frame becomes an error. */
static void send_result(struct storaged *st, uint64_t id, Ipc__Result *res,
			struct arena *a)
{
	int r = worker_send_pb(st->w, PROC_GATEWAYD, MSG_RESULT, id, &res->base);
	if (r == -EMSGSIZE) {
		Ipc__Result err = IPC__RESULT__INIT;
		apply_set_error(&err, a, -MVCC_ETOOLARGE);
		worker_send_pb(st->w, PROC_GATEWAYD, MSG_RESULT, id, &err.base);
	}
}

static void answer(uint64_t id, Ipc__Query *q, void *arg)
{
	struct storaged *st = arg;
	Ipc__Result *res;
	int r = query_answer(&st->qctx, q, &st->qa, &res);
	if (r < 0)
		worker_fatal(st->w, "storaged: cannot answer a query: %s",
			     strerror(-r));
	send_result(st, id, res, &st->qa);
	arena_clear(&st->qa);
	protobuf_c_message_free_unpacked(&q->base, NULL);
}

static void too_many(struct storaged *st, uint64_t id, Ipc__Query *q)
{
	/* etcd's answer when its own request queue is full. */
	Ipc__Error e = IPC__ERROR__INIT;
	e.code = 8;
	e.message = "etcdserver: too many requests";
	Ipc__Result res = IPC__RESULT__INIT;
	res.error = &e;
	worker_send_pb(st->w, PROC_GATEWAYD, MSG_RESULT, id, &res.base);
	protobuf_c_message_free_unpacked(&q->base, NULL);
}

/* A query that can be answered now (applied far enough). */
static void answer_or_hold(uint64_t id, Ipc__Query *q, void *arg)
{
	struct storaged *st = arg;
	if (q->query_case == IPC__QUERY__QUERY_V2) {
		storaged_v2_query(st, id, q);
		return;
	}
	/* Only the leader renews (follower forwarding comes with
	 * clustering): a keepalive waits for this member to lead, and
	 * gatewayd's deadline ends the wait if that never happens. */
	if (q->query_case == IPC__QUERY__QUERY_LEASE_KEEP_ALIVE &&
	    !lessor_primary(st->m)) {
		if (st->keepalives.n >= KEEPALIVE_WAIT_MAX ||
		    query_queue_push(&st->keepalives, id, q) < 0)
			too_many(st, id, q);
		return;
	}
	answer(id, q, st);
}

static void on_query(struct storaged *st, const struct msg_hdr *hdr,
		     const uint8_t *body)
{
	Ipc__Query *q = MSG_UNPACK(Ipc__Query, ipc__query, body, hdr->len);
	if (!q)
		worker_fatal(st->w, "storaged: bad MSG_QUERY from gatewayd");
	if (q->min_applied <= mvcc_applied(st->m)) {
		answer_or_hold(hdr->id, q, st);
		return;
	}
	if (query_queue_push(&st->queue, hdr->id, q) < 0)
		too_many(st, hdr->id, q);
}

static void on_watch(struct storaged *st, const struct msg_hdr *hdr,
		     const uint8_t *body)
{
	switch (hdr->type) {
	case MSG_WATCH_CREATE: {
		Ipc__WatchCreate *c = MSG_UNPACK(Ipc__WatchCreate,
						 ipc__watch_create, body,
						 hdr->len);
		if (!c)
			worker_fatal(st->w, "storaged: bad MSG_WATCH_CREATE");
		if (whub_create(st->hub, c) < 0)
			worker_fatal(st->w, "storaged: out of memory");
		protobuf_c_message_free_unpacked(&c->base, NULL);
		storaged_watch_kick(st);
		break;
	}
	case MSG_WATCH_CANCEL: {
		Ipc__WatchCancel *c = MSG_UNPACK(Ipc__WatchCancel,
						 ipc__watch_cancel, body,
						 hdr->len);
		if (!c)
			worker_fatal(st->w, "storaged: bad MSG_WATCH_CANCEL");
		whub_cancel(st->hub, c->watchers, c->n_watchers);
		protobuf_c_message_free_unpacked(&c->base, NULL);
		break;
	}
	default: {
		Ipc__WatchProgress *p = MSG_UNPACK(Ipc__WatchProgress,
						   ipc__watch_progress, body,
						   hdr->len);
		if (!p)
			worker_fatal(st->w, "storaged: bad MSG_WATCH_PROGRESS");
		whub_progress(st->hub, p->watchers, p->n_watchers);
		protobuf_c_message_free_unpacked(&p->base, NULL);
		break;
	}
	}
}

static void on_metrics(struct storaged *st, uint64_t id)
{
	struct arena a;
	struct metrics_out o;
	arena_init(&a, METRICS_ARENA_LIMIT);
	metrics_out_init(&o, &a);
	stor_metrics_add(&o, st->m, st->hub, &st->counters);
	if (worker_send_pb(st->w, PROC_GATEWAYD, MSG_METRICS_RESP, id,
			   &o.msg.base) < 0)
		log_debug("etcdserver", "metrics round %llu: gatewayd is gone",
			  (unsigned long long)id);
	arena_done(&a);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct out {
	uint64_t id;
	Ipc__Result *res;
};

static void on_apply(struct storaged *st, const struct msg_hdr *hdr,
		     const uint8_t *body)
{
	struct arena *a = &st->batch;
	Ipc__ApplyBatch *b = (Ipc__ApplyBatch *)protobuf_c_message_unpack(
		&ipc__apply_batch__descriptor, &a->pb, hdr->len, body);
	if (!b)
		worker_fatal(st->w, "storaged: bad MSG_APPLY from raftd");

	struct out *outs = arena_alloc(a, (b->n_entries + 1) * sizeof(*outs));
	size_t nout = 0;
	int64_t compacted = 0;
	if (mvcc_batch_begin(st->m) < 0)
		worker_fatal(st->w, "storaged: apply batch already open");
	for (size_t i = 0; i < b->n_entries; i++) {
		const Raftpb__Entry *e = b->entries[i];
		uint64_t applied = mvcc_applied(st->m);
		if (e->index <= applied)
			continue;
		if (e->index != applied + 1)
			worker_fatal(st->w, "storaged: entry %llu after applied "
				     "index %llu (missing entries)",
				     (unsigned long long)e->index,
				     (unsigned long long)applied);
		uint64_t id = 0;
		Ipc__Result *res = NULL;
		int r = apply_entry(st->m, e, a, &id, &res);
		if (r < 0)
			worker_fatal(st->w, "storaged: apply of entry %llu: %s",
				     (unsigned long long)e->index, strerror(-r));
		if (r == APPLY_EBADENTRY)
			log_err("etcdserver", "cannot decode entry %llu (type %d), "
				"skipped", (unsigned long long)e->index, e->type);
		if (id && id == st->publish_id && !st->published)
			storaged_published(st);
		if (!res)
			continue;
		if (res->response_case == IPC__RESULT__RESPONSE_COMPACTION) {
			compacted = mvcc_compact_rev(st->m);
			log_info("mvcc", "store.index: compact %lld",
				 (long long)compacted);
		}
		if ((id >> 48) == st->prefix) {
			outs[nout].id = id;
			outs[nout].res = res;
			nout++;
		}
	}
	double t0 = now_ms();
	int r = mvcc_batch_commit(st->m);
	if (r < 0)
		worker_fatal(st->w, "storaged: cannot write to the database: %s",
			     strerror(-r));
	double took = now_ms() - t0;
	metrics_hist_observe(&st->counters.commit, took / 1e3);
	if (compacted)
		log_info("mvcc", "finished scheduled compaction at %lld (took %.3fms)",
			 (long long)compacted, took);

	/* Answer the clients, then the watchers, then tell raftd, then serve
	 * waiting reads. */
	for (size_t i = 0; i < nout; i++)
		send_result(st, outs[i].id, outs[i].res, a);
	storaged_v2_flush(st);
	if ((r = whub_apply(st->hub)) < 0)
		worker_fatal(st->w, "storaged: cannot build watch events: %s",
			     strerror(-r));
	storaged_send_applied(st);
	storaged_drain_queries(st);
	arena_clear(a);
	/* A joining member's own record may just have come: publish now
	 * rather than at the next retry. */
	if (!st->published && !st->publish_id)
		storaged_publish(st);
}

void storaged_drain_queries(struct storaged *st)
{
	query_queue_drain(&st->queue, mvcc_applied(st->m), answer_or_hold, st);
}

static void on_sync(evutil_socket_t fd, short what, void *arg)
{
	struct storaged *st = arg;
	(void)fd;
	(void)what;
	uint64_t applied = mvcc_applied(st->m);
	if (applied <= st->durable)
		return;
	int r = mvcc_sync(st->m);
	if (r < 0)
		worker_fatal(st->w, "storaged: cannot sync the database: %s",
			     strerror(-r));
	st->durable = applied;
	storaged_send_applied(st);
}

static void on_msg(struct worker *w, enum proc_role from,
		   const struct msg_hdr *hdr, const uint8_t *body, int fd)
{
	struct storaged *st = w->arg;
	if (fd >= 0)
		worker_fatal(w, "storaged: unexpected descriptor from %s",
			     proc_name(from));
	switch (from) {
	case PROC_RAFTD:
		if (hdr->type == MSG_APPLY) {
			on_apply(st, hdr, body);
		} else if (hdr->type == MSG_RAFT_STATE) {
			Ipc__RaftState *rs = MSG_UNPACK(Ipc__RaftState,
							ipc__raft_state, body,
							hdr->len);
			if (!rs)
				worker_fatal(w, "storaged: bad MSG_RAFT_STATE");
			storaged_raft_state(st, rs);
			protobuf_c_message_free_unpacked(&rs->base, NULL);
			/* Keepalives held for leadership. */
			if (lessor_primary(st->m))
				query_queue_drain(&st->keepalives, UINT64_MAX,
						  answer, st);
		} else if (hdr->type == MSG_PROPOSE_ERR) {
			/* A revoke that did not make it is proposed again
			 * after LEASE_RETRY_MS. */
			log_debug("lease", "revoke proposal %llu failed",
				  (unsigned long long)hdr->id);
		} else {
			log_warn("etcdserver", "ignored %s from raftd",
				 msg_type_name(hdr->type));
		}
		break;
	case PROC_GATEWAYD:
		switch (hdr->type) {
		case MSG_QUERY:
			on_query(st, hdr, body);
			break;
		case MSG_WATCH_CREATE:
		case MSG_WATCH_CANCEL:
		case MSG_WATCH_PROGRESS:
			on_watch(st, hdr, body);
			break;
		case MSG_METRICS:
			on_metrics(st, hdr->id);
			break;
		case MSG_SNAP_MAKE:
			storaged_snap_make(st, hdr, body);
			break;
		case MSG_SNAP_CHUNK:
			storaged_snap_chunk(st, hdr, body);
			break;
		case MSG_V2_CANCEL:
			storaged_v2_cancel(st, hdr->id);
			break;
		default:
			log_warn("etcdserver", "ignored %s from gatewayd",
				 msg_type_name(hdr->type));
			break;
		}
		break;
	default:
		log_warn("etcdserver", "ignored %s from %s",
			 msg_type_name(hdr->type), proc_name(from));
		break;
	}
}

static void on_peer_up(struct worker *w, enum proc_role role)
{
	/* raftd (re)sends every committed entry after our applied index. */
	if (role == PROC_RAFTD)
		storaged_send_applied(w->arg);
}

static void on_peer_down(struct worker *w, enum proc_role role)
{
	struct storaged *st = w->arg;
	/* Their answers would go nowhere; gatewayd failed them already, and
	 * re-creates its watchers when it is back. */
	if (role == PROC_GATEWAYD) {
		query_queue_clear(&st->queue);
		query_queue_clear(&st->keepalives);
		whub_clear(st->hub);
		storaged_v2_gw_down(st);
		storaged_snap_gw_down(st);
	}
}

static int on_start(struct worker *w)
{
	struct storaged *st = w->arg;
	const Ipc__WorkerConfig *cfg = w->cfg;
	char *err = NULL;

	st->w = w;
	st->prefix = (uint16_t)(cfg->member_id & 0xffff);
	st->qctx.member_id = cfg->member_id;
	st->qctx.name = cfg->name;
	st->qctx.client_urls = cfg->advertise_client_urls;
	st->qctx.n_client_urls = cfg->n_advertise_client_urls;

	if (asprintf(&st->memberdir, "%s/member", cfg->data_dir) < 0 ||
	    asprintf(&st->snapdir, "%s/" SNAP_DIR, st->memberdir) < 0 ||
	    asprintf(&st->dbpath, "%s/" SNAP_DB, st->memberdir) < 0)
		worker_fatal(w, "storaged: out of memory");
	if (mkdir(st->memberdir, 0700) < 0 && errno != EEXIST)
		worker_fatal(w, "cannot access data directory: %s: %s",
			     st->memberdir, strerror(errno));
	/* A snapshot install that a crash cut short is finished or undone
	 * before the store opens. */
	int r = snap_recover(st->memberdir);
	if (r < 0)
		worker_fatal(w, "storaged: cannot recover %s: %s", st->memberdir,
			     strerror(-r));
	if (r & SNAP_RECOVER_ROLLBACK)
		log_warn("etcdserver", "snapshot install interrupted: the "
			 "previous store is back in place");
	if (r & SNAP_RECOVER_OLD)
		log_info("etcdserver", "snapshot install interrupted after the "
			 "new store was in place: the previous one was removed");
	r = mvcc_open(st->dbpath, NULL, &st->m, &err);
	if (r < 0)
		worker_fatal(w, "%s: %s", st->dbpath, err ? err : strerror(-r));
	st->qctx.m = st->m;

	/* What we read back is on disk from now on. */
	if ((r = mvcc_sync(st->m)) < 0)
		worker_fatal(w, "storaged: cannot sync the database: %s",
			     strerror(-r));
	st->durable = mvcc_applied(st->m);
	log_info("mvcc", "restored %zu keys at revision %lld, applied index %llu",
		 mvcc_key_count(st->m), (long long)mvcc_rev(st->m),
		 (unsigned long long)mvcc_applied(st->m));
	if (v2_node_count(mvcc_v2(st->m)))
		log_info("etcdserver", "restored %zu v2 nodes at index %llu",
			 v2_node_count(mvcc_v2(st->m)),
			 (unsigned long long)v2_index(mvcc_v2(st->m)));
	if (mvcc_compact_rev(st->m) > 0)
		log_info("mvcc", "restore compact to %lld",
			 (long long)mvcc_compact_rev(st->m));

	storaged_lessor_setup(st);
	metrics_hist_init_disk(&st->counters.commit);
	st->hub = whub_new(st->m, storaged_send_events, st);
	if (!st->hub)
		worker_fatal(w, "storaged: out of memory");

	st->sync_ev = event_new(w->base, -1, EV_PERSIST, on_sync, st);
	struct timeval tv = { 0, SYNC_INTERVAL_MS * 1000 };
	if (!st->sync_ev || event_add(st->sync_ev, &tv) < 0 ||
	    storaged_timers_start(st) < 0 || storaged_snap_start(st) < 0 ||
	    storaged_v2_start(st) < 0)
		worker_fatal(w, "storaged: cannot start the timers");
	return 0;
}

static void on_stop(struct worker *w)
{
	struct storaged *st = w->arg;
	if (st->sync_ev) {
		event_free(st->sync_ev);
		st->sync_ev = NULL;
	}
	storaged_timers_stop(st);
	storaged_snap_stop(st);
	storaged_v2_stop(st);
	if (st->m && mvcc_applied(st->m) > st->durable && mvcc_sync(st->m) == 0)
		st->durable = mvcc_applied(st->m);
}

static const struct worker_ops ops = {
	.on_msg = on_msg,
	.on_peer_up = on_peer_up,
	.on_peer_down = on_peer_down,
	.on_start = on_start,
	.on_stop = on_stop,
};

int storaged_main(int argc, char **argv)
{
	struct storaged *st = &storaged;
	arena_init(&st->batch, 0);
	arena_init(&st->qa, 0);
	int code = worker_run(PROC_STORAGED, &ops, st, argc, argv);
	query_queue_clear(&st->queue);
	query_queue_clear(&st->keepalives);
	whub_free(st->hub);
	st->hub = NULL;
	mvcc_close(st->m);
	st->m = NULL;
	arena_done(&st->batch);
	arena_done(&st->qa);
	free(st->memberdir);
	free(st->snapdir);
	free(st->dbpath);
	return code;
}
