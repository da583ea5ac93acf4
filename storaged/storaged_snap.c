/*
 * storaged's side of snapshots between members, as a process: MSG_SNAP_MAKE
 * answered with the checkpoint's files, MSG_SNAP_CHUNK written and
 * acknowledged, then the install, which swaps the store under the watch hub,
 * the lessor and the waiting reads, and tells raftd the new applied index.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "storaged.h"

/*
 * Descriptors queued towards gatewayd per step, and the pause between
 * steps. A link queues few descriptors at either end (common/link.c), so a
 * checkpoint of many files leaves in small bursts, each once the previous
 * one has been written.
 */
#define SNAP_FD_BURST 8
#define SNAP_PACE_MS 10

static void schedule(struct storaged *st, long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	event_add(st->snap_ev, &tv);
}

/* The last MSG_SNAP_FILE of transfer id: its applied index, or msg. */
static void send_last(struct storaged *st, uint64_t id, uint64_t applied,
		      const char *msg)
{
	Ipc__SnapFile sf = IPC__SNAP_FILE__INIT;
	Ipc__Error e = IPC__ERROR__INIT;
	sf.last = 1;
	if (msg) {
		e.code = 13;
		e.message = (char *)msg;
		sf.error = &e;
	} else {
		sf.applied_index = applied;
	}
	worker_send_pb(st->w, PROC_GATEWAYD, MSG_SNAP_FILE, id, &sf.base);
}

static void out_drop(struct storaged *st, size_t i)
{
	snap_files_free(st->snap_out[i].f);
	st->snap_out[i] = st->snap_out[--st->nsnap_out];
}

static void drop_all(struct storaged *st)
{
	while (st->nsnap_out)
		out_drop(st, st->nsnap_out - 1);
}

/* Sends the next files of every snapshot being sent. */
static void pump(struct storaged *st)
{
	struct link *gw = st->w->peer[PROC_GATEWAYD];
	if (!gw) {
		drop_all(st);
		return;
	}
	if (link_queued(gw) > 0) {
		schedule(st, SNAP_PACE_MS);
		return;
	}
	size_t budget = SNAP_FD_BURST;
	for (size_t i = 0; i < st->nsnap_out;) {
		struct snap_out *o = &st->snap_out[i];
		int failed = 0;
		for (; o->next < o->f->n && budget > 0 && !failed; budget--) {
			struct snap_file *sf = &o->f->v[o->next++];
			Ipc__SnapFile m = IPC__SNAP_FILE__INIT;
			m.name = sf->name;
			m.size = sf->size;
			int fd = sf->fd;
			sf->fd = -1;
			/* The link owns fd from here, even on failure. */
			failed = link_send_fd(gw, MSG_SNAP_FILE, o->id, &m.base,
					      fd) < 0;
		}
		if (failed) {
			log_warn("etcdserver", "snapshot %" PRIx64 ": cannot "
				 "pass a file to gatewayd", o->id);
			send_last(st, o->id, 0, "storaged: cannot pass the "
				  "snapshot's files");
			out_drop(st, i);
		} else if (o->next == o->f->n) {
			send_last(st, o->id, o->f->applied, NULL);
			out_drop(st, i);
		} else {
			i++;
		}
	}
	if (st->nsnap_out)
		schedule(st, SNAP_PACE_MS);
}

static void on_snap(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pump(arg);
}

void storaged_snap_make(struct storaged *st, const struct msg_hdr *hdr,
			const uint8_t *body)
{
	Ipc__SnapMake *mk = MSG_UNPACK(Ipc__SnapMake, ipc__snap_make, body,
				       hdr->len);
	if (!mk)
		worker_fatal(st->w, "storaged: bad MSG_SNAP_MAKE from gatewayd");
	uint64_t to = mk->to, index = mk->index;
	protobuf_c_message_free_unpacked(&mk->base, NULL);

	if (st->nsnap_out >= SNAP_MAKE_MAX) {
		send_last(st, hdr->id, 0, "storaged: too many snapshots in flight");
		return;
	}
	if (mvcc_applied(st->m) < index) {
		/* raftd compacts only what we made durable: a broken
		 * promise, but not ours to die of. */
		log_err("etcdserver", "snapshot for %" PRIx64 " at index %" PRIu64
			" asked of a store at applied index %" PRIu64, to, index,
			mvcc_applied(st->m));
		send_last(st, hdr->id, 0, "storaged: snapshot index beyond the "
			  "applied index");
		return;
	}
	struct snap_files *f = NULL;
	char *err = NULL;
	int r = snap_make(st->m, st->snapdir, &f, &err);
	if (r < 0) {
		log_err("etcdserver", "cannot make a snapshot for %" PRIx64 ": %s",
			to, err ? err : strerror(-r));
		send_last(st, hdr->id, 0, err ? err : strerror(-r));
		free(err);
		return;
	}
	uint64_t bytes = 0;
	for (size_t i = 0; i < f->n; i++)
		bytes += f->v[i].size;
	log_info("etcdserver", "made a snapshot for %" PRIx64 " [raft index: %"
		 PRIu64 ", applied index: %" PRIu64 ", %zu files, %" PRIu64
		 " bytes]", to, index, f->applied, f->n, bytes);
	struct snap_out *o = &st->snap_out[st->nsnap_out++];
	o->id = hdr->id;
	o->f = f;
	o->next = 0;
	/* A burst already left in this pause: the next step sends. */
	if (!event_pending(st->snap_ev, EV_TIMEOUT, NULL))
		pump(st);
}

static void ack(struct storaged *st, uint64_t id, int err, const char *msg,
		uint64_t applied)
{
	Ipc__SnapAck a = IPC__SNAP_ACK__INIT;
	Ipc__Error e = IPC__ERROR__INIT;
	char buf[256];
	if (err < 0) {
		/* gRPC codes: the sender's fault (3), a limit (8), ours (13). */
		switch (-err) {
		case EINVAL:
		case EBADMSG:
			e.code = 3;
			snprintf(buf, sizeof(buf), "%s", msg);
			break;
		case EFBIG:
		case ENOSPC:
			e.code = 8;
			snprintf(buf, sizeof(buf), "%s: %s", msg, strerror(-err));
			break;
		default:
			e.code = 13;
			snprintf(buf, sizeof(buf), "%s: %s", msg, strerror(-err));
			break;
		}
		e.message = buf;
		a.error = &e;
	}
	a.applied_index = applied;
	worker_send_pb(st->w, PROC_GATEWAYD, MSG_SNAP_ACK, id, &a.base);
}

/* Puts the received store in place of ours: 0, or -errno with the old
 * store still (or again) in use. */
static int swap_store(struct storaged *st)
{
	int64_t seen = mvcc_rev(st->m);
	char *err = NULL;
	storaged_v2_recovery(st);
	mvcc_close(st->m);
	st->m = NULL;
	int ret = snap_install(st->memberdir);
	if (ret < 0)
		log_err("etcdserver", "cannot install the snapshot: %s",
			strerror(-ret));
	int r = mvcc_open(st->dbpath, NULL, &st->m, &err);
	if (r < 0)
		worker_fatal(st->w, "%s: %s", st->dbpath,
			     err ? err : strerror(-r));
	st->qctx.m = st->m;
	storaged_lessor_setup(st);
	whub_rebase(st->hub, st->m, seen);
	storaged_watch_kick(st);
	return ret;
}

static void install(struct storaged *st, uint64_t id)
{
	uint64_t applied = mvcc_applied(st->m), from, index;
	snap_recv_source(st->recv, &from, &index);
	if (!snap_recv_written(st->recv) || applied >= index) {
		snap_recv_finish(st->recv);
		log_info("etcdserver", "snapshot at index %" PRIu64 " from %"
			 PRIx64 " not needed: applied index is %" PRIu64,
			 index, from, applied);
		ack(st, id, 0, NULL, applied);
		return;
	}
	log_info("etcdserver", "applying snapshot at index %" PRIu64 "...",
		 index);
	int r = swap_store(st);
	snap_recv_finish(st->recv);
	/* A failure after the renames still left the new store in place:
	 * what counts is which store opened. */
	if (mvcc_applied(st->m) == applied) {
		ack(st, id, r < 0 ? r : -EIO,
		    "storaged: cannot install the snapshot", 0);
		return;
	}
	applied = mvcc_applied(st->m);
	if (applied < index)
		worker_fatal(st->w, "storaged: the snapshot at index %" PRIu64
			     " holds applied index %" PRIu64 " only", index,
			     applied);
	/* The files were synced before the install. */
	if ((r = mvcc_sync(st->m)) < 0)
		worker_fatal(st->w, "storaged: cannot sync the database: %s",
			     strerror(-r));
	st->durable = applied;
	log_info("etcdserver", "finished applying incoming snapshot at index %"
		 PRIu64 " (applied index %" PRIu64 ", revision %" PRId64 ", %zu "
		 "keys)", index, applied, mvcc_rev(st->m),
		 mvcc_key_count(st->m));
	ack(st, id, 0, NULL, applied);
	storaged_send_applied(st);
	storaged_drain_queries(st);
}

void storaged_snap_chunk(struct storaged *st, const struct msg_hdr *hdr,
			 const uint8_t *body)
{
	Ipc__SnapChunk *c = MSG_UNPACK(Ipc__SnapChunk, ipc__snap_chunk, body,
				       hdr->len);
	if (!c)
		worker_fatal(st->w, "storaged: bad MSG_SNAP_CHUNK from gatewayd");
	const char *msg = NULL;
	int r = snap_recv_chunk(st->recv, hdr->id, c, mvcc_applied(st->m),
				&msg);
	if (r < 0) {
		log_warn("etcdserver", "snapshot %" PRIx64 " from %" PRIx64
			 " refused: %s (%s)", hdr->id, c->from, msg,
			 strerror(-r));
		ack(st, hdr->id, r, msg, 0);
	} else if (r == SNAP_RECV_COMPLETE) {
		install(st, hdr->id);
	} else {
		ack(st, hdr->id, 0, NULL, 0);
	}
	protobuf_c_message_free_unpacked(&c->base, NULL);
}

void storaged_snap_gw_down(struct storaged *st)
{
	drop_all(st);
	if (st->recv)
		snap_recv_abort(st->recv);
}

int storaged_snap_start(struct storaged *st)
{
	st->recv = snap_recv_new(st->snapdir);
	st->snap_ev = event_new(st->w->base, -1, 0, on_snap, st);
	return st->recv && st->snap_ev ? 0 : -ENOMEM;
}

void storaged_snap_stop(struct storaged *st)
{
	drop_all(st);
	snap_recv_free(st->recv);
	st->recv = NULL;
	if (st->snap_ev) {
		event_free(st->snap_ev);
		st->snap_ev = NULL;
	}
}
