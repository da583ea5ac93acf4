/*
 * storaged: applies committed Raft entries to the MVCC store (RocksDB) and
 * answers reads. Peers: raftd (MSG_APPLY in, MSG_APPLIED out), gatewayd
 * (MSG_QUERY in, MSG_RESULT out for queries and for the proposals this
 * member made).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "apply.h"
#include "log.h"
#include "mvcc.h"
#include "query.h"
#include "worker.h"

/* How often applied entries are synced to disk (durable_index). */
#define SYNC_INTERVAL_MS 100

struct storaged {
	struct worker *w;
	struct mvcc *m;
	struct arena batch;     /* one MSG_APPLY: the entries and results */
	struct arena qa;        /* one query's answer */
	uint64_t durable;       /* applied and synced */
	uint16_t prefix;        /* request IDs this member made start with it */
	struct event *sync_ev;
	struct query_queue queue;
	struct query_ctx qctx;
};

static struct storaged storaged;

static void send_applied(struct storaged *st)
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

static void on_query(struct storaged *st, const struct msg_hdr *hdr,
		     const uint8_t *body)
{
	Ipc__Query *q = MSG_UNPACK(Ipc__Query, ipc__query, body, hdr->len);
	if (!q)
		worker_fatal(st->w, "storaged: bad MSG_QUERY from gatewayd");
	if (q->min_applied <= mvcc_applied(st->m)) {
		answer(hdr->id, q, st);
		return;
	}
	if (query_queue_push(&st->queue, hdr->id, q) < 0) {
		/* etcd's answer when its own request queue is full. */
		Ipc__Error e = IPC__ERROR__INIT;
		e.code = 8;
		e.message = "etcdserver: too many requests";
		Ipc__Result res = IPC__RESULT__INIT;
		res.error = &e;
		worker_send_pb(st->w, PROC_GATEWAYD, MSG_RESULT, hdr->id,
			       &res.base);
		protobuf_c_message_free_unpacked(&q->base, NULL);
	}
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
	if (compacted)
		log_info("mvcc", "finished scheduled compaction at %lld (took %.3fms)",
			 (long long)compacted, now_ms() - t0);

	/* Answer the clients, then tell raftd, then serve waiting reads. */
	for (size_t i = 0; i < nout; i++)
		send_result(st, outs[i].id, outs[i].res, a);
	send_applied(st);
	query_queue_drain(&st->queue, mvcc_applied(st->m), answer, st);
	arena_clear(a);
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
	send_applied(st);
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
		if (hdr->type == MSG_APPLY)
			on_apply(st, hdr, body);
		else if (hdr->type != MSG_RAFT_STATE)
			log_warn("etcdserver", "ignored %s from raftd",
				 msg_type_name(hdr->type));
		break;
	case PROC_GATEWAYD:
		if (hdr->type == MSG_QUERY)
			on_query(st, hdr, body);
		else
			log_warn("etcdserver", "ignored %s from gatewayd",
				 msg_type_name(hdr->type));
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
		send_applied(w->arg);
}

static void on_peer_down(struct worker *w, enum proc_role role)
{
	struct storaged *st = w->arg;
	/* Their answers would go nowhere; gatewayd failed them already. */
	if (role == PROC_GATEWAYD)
		query_queue_clear(&st->queue);
}

static int on_start(struct worker *w)
{
	struct storaged *st = w->arg;
	const Ipc__WorkerConfig *cfg = w->cfg;
	char *dir = NULL, *path = NULL, *err = NULL;

	st->w = w;
	st->prefix = (uint16_t)(cfg->member_id & 0xffff);
	st->qctx.member_id = cfg->member_id;
	st->qctx.name = cfg->name;
	st->qctx.client_urls = cfg->advertise_client_urls;
	st->qctx.n_client_urls = cfg->n_advertise_client_urls;

	if (asprintf(&dir, "%s/member", cfg->data_dir) < 0 ||
	    asprintf(&path, "%s/member/db", cfg->data_dir) < 0)
		worker_fatal(w, "storaged: out of memory");
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		worker_fatal(w, "cannot access data directory: %s: %s", dir,
			     strerror(errno));
	int r = mvcc_open(path, NULL, &st->m, &err);
	if (r < 0)
		worker_fatal(w, "%s: %s", path, err ? err : strerror(-r));
	free(dir);
	free(path);
	st->qctx.m = st->m;

	/* What we read back is on disk from now on. */
	if ((r = mvcc_sync(st->m)) < 0)
		worker_fatal(w, "storaged: cannot sync the database: %s",
			     strerror(-r));
	st->durable = mvcc_applied(st->m);
	log_info("mvcc", "restored %zu keys at revision %lld, applied index %llu",
		 mvcc_key_count(st->m), (long long)mvcc_rev(st->m),
		 (unsigned long long)mvcc_applied(st->m));
	if (mvcc_compact_rev(st->m) > 0)
		log_info("mvcc", "restore compact to %lld",
			 (long long)mvcc_compact_rev(st->m));

	st->sync_ev = event_new(w->base, -1, EV_PERSIST, on_sync, st);
	struct timeval tv = { 0, SYNC_INTERVAL_MS * 1000 };
	if (!st->sync_ev || event_add(st->sync_ev, &tv) < 0)
		worker_fatal(w, "storaged: cannot start the sync timer");
	return 0;
}

static void on_stop(struct worker *w)
{
	struct storaged *st = w->arg;
	if (st->sync_ev) {
		event_free(st->sync_ev);
		st->sync_ev = NULL;
	}
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
	mvcc_close(st->m);
	st->m = NULL;
	arena_done(&st->batch);
	arena_done(&st->qa);
	return code;
}
