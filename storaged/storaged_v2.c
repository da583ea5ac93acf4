/*
 * storaged's side of the v2 keys API: local reads and waits from gatewayd
 * (a wait stays until an event answers it or gatewayd cancels it), the
 * waits that applied entries answered, and the leader's SYNC every 500 ms
 * while some node has expired, which removes expired nodes through Raft.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "raft_internal.pb-c.h"
#include "storaged.h"
#include "v2apply.h"

/* etcd's SYNC ticker. */
#define V2_SYNC_MS 500

static void send_v2(struct storaged *st, uint64_t id, Ipc__V2Result *v)
{
	Ipc__Result res = IPC__RESULT__INIT;
	res.v2 = v;
	int r = worker_send_pb(st->w, PROC_GATEWAYD, MSG_RESULT, id, &res.base);
	if (r == -EMSGSIZE) {
		/* A listing larger than a frame. */
		Ipc__Result err = IPC__RESULT__INIT;
		Ipc__Error e = IPC__ERROR__INIT;
		uint32_t code;
		const char *msg;
		mvcc_strerror(-MVCC_ETOOLARGE, &code, &msg);
		e.code = code;
		e.message = (char *)msg;
		err.error = &e;
		worker_send_pb(st->w, PROC_GATEWAYD, MSG_RESULT, id, &err.base);
	}
}

static void too_many(struct storaged *st, uint64_t id)
{
	Ipc__Error e = IPC__ERROR__INIT;
	e.code = 8;
	e.message = "etcdserver: too many requests";
	Ipc__Result res = IPC__RESULT__INIT;
	res.error = &e;
	worker_send_pb(st->w, PROC_GATEWAYD, MSG_RESULT, id, &res.base);
}

void storaged_v2_query(struct storaged *st, uint64_t id, Ipc__Query *q)
{
	struct v2store *s = mvcc_v2(st->m);
	const Etcdserverpb__Request *r = q->v2;
	Ipc__V2Result *v = NULL;
	int ret;
	if (r->wait) {
		struct v2_out o;
		int pending = 0;
		ret = v2_watch(s, id, r->path ? r->path : "", r->recursive,
			       r->stream, r->since, &st->qa, &o, &pending);
		if (ret == -ENOBUFS) {
			too_many(st, id);
			goto done;
		}
		if (ret == 0 && !pending &&
		    !(v = v2_result(&st->qa, &o, r->stream && o.status == 200)))
			ret = -ENOMEM;
		if (ret == 0 && pending) {
			/* etcd sends a wait's headers at once, with the index
			 * it began at; the body follows with the event. */
			Ipc__V2Result head = IPC__V2_RESULT__INIT;
			head.status = 200;
			head.etcd_index = v2_index(s);
			head.more = 1;
			send_v2(st, id, &head);
		}
	} else {
		ret = v2_read(s, r, &st->qa, &v);
	}
	if (ret < 0)
		worker_fatal(st->w, "storaged: cannot answer a v2 read: %s",
			     strerror(-ret));
	if (v)
		send_v2(st, id, v);
done:
	arena_clear(&st->qa);
	protobuf_c_message_free_unpacked(&q->base, NULL);
}

void storaged_v2_cancel(struct storaged *st, uint64_t id)
{
	v2_unwatch(mvcc_v2(st->m), id);
}

void storaged_v2_flush(struct storaged *st)
{
	struct v2store *s = mvcc_v2(st->m);
	size_t n;
	const struct v2_fire *f = v2_fired(s, &n);
	for (size_t i = 0; i < n; i++) {
		Ipc__V2Result v = IPC__V2_RESULT__INIT;
		v.status = 200;
		v.body.data = (uint8_t *)f[i].body;
		v.body.len = f[i].len;
		v.etcd_index = f[i].etcd_index;
		v.more = f[i].more;
		send_v2(st, f[i].id, &v);
	}
	v2_fired_clear(s);
}

void storaged_v2_gw_down(struct storaged *st)
{
	/* Their clients are gone with gatewayd. */
	v2_unwatch_all(mvcc_v2(st->m), NULL, NULL);
}

static void cleared(uint64_t id, void *arg)
{
	struct storaged *st = arg;
	struct v2_out o;
	if (v2_error(V2_EWATCHERCLEARED, NULL, v2_index(mvcc_v2(st->m)),
		     &st->qa, &o) == 0)
		send_v2(st, id, v2_result(&st->qa, &o, 0));
	arena_clear(&st->qa);
}

void storaged_v2_recovery(struct storaged *st)
{
	/* The store is about to be replaced by a snapshot: what the waits
	 * were waiting for may have happened in between, so each gets etcd's
	 * "watcher is cleared due to etcd recovery" and the client asks
	 * again. */
	v2_unwatch_all(mvcc_v2(st->m), cleared, st);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void propose_sync(struct storaged *st, int64_t now)
{
	Etcdserverpb__Request v2 = ETCDSERVERPB__REQUEST__INIT;
	Etcdserverpb__InternalRaftRequest r = ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	Etcdserverpb__RequestHeader hdr = ETCDSERVERPB__REQUEST_HEADER__INIT;
	uint8_t buf[128];
	r.id = hdr.id = storaged_own_id(st);
	v2.has_id = 1;
	v2.id = r.id;
	v2.method = "SYNC";
	v2.has_time = 1;
	v2.time = now;
	r.header = &hdr;
	r.v2 = &v2;
	size_t len = etcdserverpb__internal_raft_request__get_packed_size(&r);
	if (len > sizeof(buf))
		return;
	etcdserverpb__internal_raft_request__pack(&r, buf);
	if (worker_send(st->w, PROC_RAFTD, MSG_PROPOSE, r.id, buf, len) < 0)
		log_debug("etcdserver", "cannot propose a v2 SYNC: raftd is away");
}

static void on_sync(evutil_socket_t fd, short what, void *arg)
{
	struct storaged *st = arg;
	(void)fd;
	(void)what;
	if (!st->leader || !st->w->peer[PROC_RAFTD] || !st->m)
		return;
	int64_t next = v2_next_expiry(mvcc_v2(st->m)), now = now_ns();
	/* etcd proposes while any node has a TTL; we wait until one is due. */
	if (next && next <= now)
		propose_sync(st, now);
}

int storaged_v2_start(struct storaged *st)
{
	st->v2sync_ev = event_new(st->w->base, -1, EV_PERSIST, on_sync, st);
	struct timeval tv = { 0, V2_SYNC_MS * 1000 };
	if (!st->v2sync_ev || event_add(st->v2sync_ev, &tv) < 0)
		return -ENOMEM;
	return 0;
}

void storaged_v2_stop(struct storaged *st)
{
	if (st->v2sync_ev) {
		event_free(st->v2sync_ev);
		st->v2sync_ev = NULL;
	}
}
