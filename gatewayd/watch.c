/*
 * POST /v3/watch: the WatchRequests of a body (create, cancel, progress)
 * as etcd's watch server handles them, each watch registered at storaged
 * under a gatewayd-wide watcher id. A watch is registered again, from the
 * revision after the last one its client got, when storaged comes back
 * after a restart and when a paused slow client has caught up.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "pbjson.h"
#include "stream.h"

#define ERR_RANGE_EMPTY "mvcc: watcher range is empty"
#define ERR_DUPLICATE_ID "mvcc: duplicate watch ID provided on the WatchStream"
#define ERR_TOO_MANY "etcdserver: too many requests"

/* A query whose answer carries the current revision (in its header). */
static void rev_query(Ipc__Query *q, Etcdserverpb__RangeRequest *rr)
{
	static uint8_t zero;
	ipc__query__init(q);
	etcdserverpb__range_request__init(rr);
	rr->key.data = &zero;
	rr->key.len = 1;
	rr->count_only = 1;
	rr->serializable = 1;
	q->query_case = IPC__QUERY__QUERY_RANGE;
	q->range = rr;
}

static void push_rev_msg(struct wstream *ws, enum wq_what what, int64_t id,
			 const char *reason)
{
	Ipc__Query q;
	Etcdserverpb__RangeRequest rr;
	rev_query(&q, &rr);
	stream_push_query(ws, &q, what, id, reason);
}

static void send_cancel(struct gw *gw, uint64_t *ids, size_t n)
{
	Ipc__WatchCancel c = IPC__WATCH_CANCEL__INIT;
	if (!n)
		return;
	c.watchers = ids;
	c.n_watchers = n;
	worker_send_pb(gw->w, PROC_STORAGED, MSG_WATCH_CANCEL, 0, &c.base);
}

/* Registers w at storaged under a new watcher id (frames for an older one
 * may still be on their way: they are ignored). */
static void watch_register(struct gw *gw, struct watch *w, int resume)
{
	Ipc__WatchCreate wc = IPC__WATCH_CREATE__INIT;
	Etcdserverpb__WatchCreateRequest cr =
		ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
	Etcdserverpb__WatchCreateRequest__FilterType filters[2];

	if (w->watcher)
		u64map_del(&gw->watchers, w->watcher);
	w->watcher = ++gw->next_watcher;
	if (u64map_put(&gw->watchers, w->watcher, w) < 0) {
		w->watcher = 0;
		return;
	}
	w->resumed = resume;
	cr.key = w->key;
	cr.range_end = w->range_end;
	cr.start_revision = resume ? w->next_rev : w->start_rev;
	cr.progress_notify = w->progress_notify;
	cr.prev_kv = w->prev_kv;
	cr.watch_id = w->watch_id;
	cr.fragment = w->fragment;
	if (w->filters & WF_NOPUT)
		filters[cr.n_filters++] =
			ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NOPUT;
	if (w->filters & WF_NODELETE)
		filters[cr.n_filters++] =
			ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NODELETE;
	cr.filters = filters;
	wc.watcher = w->watcher;
	wc.req = &cr;
	wc.resume = resume;
	/* Without storaged it is sent when storaged comes back. */
	worker_send_pb(gw->w, PROC_STORAGED, MSG_WATCH_CREATE, 0, &wc.base);
}

void watch_unregister(struct gw *gw, struct watch *w)
{
	if (!w->watcher)
		return;
	u64map_del(&gw->watchers, w->watcher);
	send_cancel(gw, &w->watcher, 1);
	w->watcher = 0;
}

void watch_free(struct gw *gw, struct watch *w)
{
	struct wstream *ws = w->ws;
	if (w->watcher)
		u64map_del(&gw->watchers, w->watcher);
	if (u64map_get(&ws->ids, (uint64_t)w->watch_id) == w)
		u64map_del(&ws->ids, (uint64_t)w->watch_id);
	LIST_REMOVE(w, link);
	gw->n_watches--;
	free(w->key.data);
	free(w->range_end.data);
	free(w);
}

void watch_stream_free(struct wstream *ws)
{
	struct gw *gw = ws->gw;
	struct watch *w;
	uint64_t ids[256];
	size_t n = 0;

	/* One cancel frame for many watches. */
	while ((w = LIST_FIRST(&ws->watches))) {
		if (w->watcher) {
			if (n == sizeof(ids) / sizeof(ids[0])) {
				send_cancel(gw, ids, n);
				n = 0;
			}
			ids[n++] = w->watcher;
		}
		watch_free(gw, w);
	}
	send_cancel(gw, ids, n);
}

void watch_pause(struct wstream *ws)
{
	struct gw *gw = ws->gw;
	struct watch *w;
	uint64_t ids[256];
	size_t n = 0;

	ws->paused = 1;
	LIST_FOREACH(w, &ws->watches, link) {
		if (w->state != W_ACTIVE || w->dead)
			continue;
		if (w->watcher) {
			if (n == sizeof(ids) / sizeof(ids[0])) {
				send_cancel(gw, ids, n);
				n = 0;
			}
			ids[n++] = w->watcher;
			u64map_del(&gw->watchers, w->watcher);
			w->watcher = 0;
		}
		w->state = W_PAUSED;
	}
	send_cancel(gw, ids, n);
}

void watch_resume(struct wstream *ws)
{
	struct watch *w;
	ws->paused = 0;
	LIST_FOREACH(w, &ws->watches, link) {
		if (w->state != W_PAUSED)
			continue;
		w->state = W_ACTIVE;
		watch_register(ws->gw, w, 1);
	}
}

static int dup_bytes(ProtobufCBinaryData *dst, const uint8_t *p, size_t n)
{
	dst->len = n;
	dst->data = NULL;
	if (!n)
		return 0;
	dst->data = malloc(n);
	if (!dst->data)
		return -ENOMEM;
	memcpy(dst->data, p, n);
	return 0;
}

static int64_t next_auto_id(struct wstream *ws)
{
	/* etcd's AutoWatchID: the next id not in use on this stream. */
	while (u64map_get(&ws->ids, (uint64_t)ws->next_id))
		ws->next_id++;
	return ws->next_id++;
}

static void on_create(struct wstream *ws, const Etcdserverpb__WatchCreateRequest *cr)
{
	struct gw *gw = ws->gw;
	static const uint8_t zero;
	const uint8_t *key = cr->key.len ? cr->key.data : &zero;
	size_t klen = cr->key.len ? cr->key.len : 1;
	const ProtobufCBinaryData *end = &cr->range_end;
	int from_key = end->len == 1 && end->data[0] == 0;
	int64_t id = cr->watch_id;

	/* As etcd's watchStream.Watch: an empty range, a taken id. */
	if (end->len && !from_key) {
		size_t n = klen < end->len ? klen : end->len;
		int c = memcmp(key, end->data, n);
		if (c > 0 || (c == 0 && klen >= end->len)) {
			push_rev_msg(ws, WQ_REFUSED, -1, ERR_RANGE_EMPTY);
			return;
		}
	}
	if (id != 0 && u64map_get(&ws->ids, (uint64_t)id)) {
		push_rev_msg(ws, WQ_REFUSED, -1, ERR_DUPLICATE_ID);
		return;
	}
	if (ws->ids.n >= GW_MAX_WATCHES_PER_STREAM ||
	    gw->n_watches >= GW_MAX_WATCHES) {
		push_rev_msg(ws, WQ_REFUSED, -1, ERR_TOO_MANY);
		return;
	}
	struct watch *w = calloc(1, sizeof(*w));
	if (!w || dup_bytes(&w->key, key, klen) < 0 ||
	    dup_bytes(&w->range_end, end->data, end->len) < 0)
		goto nomem;
	if (id == 0)
		id = next_auto_id(ws);
	w->ws = ws;
	w->watch_id = id;
	w->state = W_CREATING;
	w->start_rev = cr->start_revision;
	w->next_rev = cr->start_revision > 0 ? cr->start_revision : 0;
	for (size_t i = 0; i < cr->n_filters; i++)
		w->filters |= cr->filters[i] == 0 ? WF_NOPUT
			    : cr->filters[i] == 1 ? WF_NODELETE : 0;
	w->prev_kv = cr->prev_kv;
	w->progress_notify = cr->progress_notify;
	w->fragment = cr->fragment;
	if (u64map_put(&ws->ids, (uint64_t)id, w) < 0)
		goto nomem;
	if (!(w->created = stream_push_wait(ws, WM_CREATED))) {
		u64map_del(&ws->ids, (uint64_t)id);
		goto nomem;
	}
	LIST_INSERT_HEAD(&ws->watches, w, link);
	gw->n_watches++;
	watch_register(gw, w, 0);
	return;
nomem:
	if (w) {
		free(w->key.data);
		free(w->range_end.data);
		free(w);
	}
	push_rev_msg(ws, WQ_REFUSED, -1, ERR_TOO_MANY);
}

static void on_cancel(struct wstream *ws, int64_t id)
{
	struct watch *w = u64map_get(&ws->ids, (uint64_t)id);
	/* etcd says nothing about an id it does not know. */
	if (!w)
		return;
	u64map_del(&ws->ids, (uint64_t)id);
	push_rev_msg(ws, WQ_CANCELED, id, NULL);
	if (w->state == W_CREATING) {
		/* Its created is still to come, and goes first. */
		w->dead = 1;
		if (w->watcher)
			send_cancel(ws->gw, &w->watcher, 1);
		return;
	}
	watch_unregister(ws->gw, w);
	watch_free(ws->gw, w);
}

static void on_request(struct wstream *ws, const Etcdserverpb__WatchRequest *r)
{
	switch (r->request_union_case) {
	case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST:
		on_create(ws, r->create_request);
		break;
	case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CANCEL_REQUEST:
		on_cancel(ws, r->cancel_request->watch_id);
		break;
	case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST:
		/* etcd 3.4: one answer at the current revision, not tied to
		 * any watch. */
		push_rev_msg(ws, WQ_PROGRESS, -1, NULL);
		break;
	default:
		/* etcd ignores a request without a known member. */
		break;
	}
}

/*
 * The body's requests, in order, as grpc-gateway reads them: a first one
 * that does not decode fails the call (500, code 2 Unknown); a later one
 * that does not decode ends the reading, and the stream stays.
 * evhttp hands us a request once its body is complete, so a body that
 * stays open is served when it ends.
 */
void watch_handle(struct gw *gw, struct evhttp_request *req, struct conn *c)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in), off = 0, start, end;
	const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
	char err[GOJSON_ERRMAX];
	struct arena a;
	ProtobufCMessage *m = NULL;
	int r;

	if (!body) {
		http_reply_error(req, 8, ERR_TOO_MANY);
		return;
	}
	arena_init(&a, 4 * (gw->grpc_max + 4096));
	r = gojson_decode_first(body, len, &start, &end, err);
	if (r == 0)
		r = pbjson_decode_body(&etcdserverpb__watch_request__descriptor,
				       body + start, end - start, &a, &m, err);
	if (r < 0) {
		if (r != -EINVAL)
			snprintf(err, sizeof(err), "%s", ERR_TOO_MANY);
		http_reply_error(req, 2, err);
		arena_done(&a);
		return;
	}
	struct wstream *ws = stream_new(gw, WS_WATCH, req, c);
	if (!ws) {
		http_reply_error(req, 8, ERR_TOO_MANY);
		arena_done(&a);
		return;
	}
	/* Headers carry grpc's metadata once a first request went through;
	 * an empty body never gets an answer at all. */
	ws->grpc_md = m != NULL;
	ws->hold = 1;
	while (m) {
		on_request(ws, (Etcdserverpb__WatchRequest *)m);
		m = NULL;
		arena_clear(&a);
		off += end;
		if (gojson_decode_first(body + off, len - off, &start, &end,
					err) != 0 ||
		    pbjson_decode_body(&etcdserverpb__watch_request__descriptor,
				       body + off + start, end - start, &a, &m,
				       err) < 0)
			m = NULL;
	}
	arena_done(&a);
	ws->hold = 0;
	stream_flush(ws);
}

void watch_storaged_down(struct gw *gw)
{
	struct wstream *ws;
	struct watch *w, *next;

	LIST_FOREACH(ws, &gw->streams, link) {
		for (w = LIST_FIRST(&ws->watches); w; w = next) {
			next = LIST_NEXT(w, link);
			/* The old ids died with storaged. */
			if (w->watcher)
				u64map_del(&gw->watchers, w->watcher);
			w->watcher = 0;
			if (!w->dead)
				continue;
			/* Cancelled before its created came: that answer will
			 * not come now; the stream drops the placeholder. */
			if (w->created) {
				STAILQ_REMOVE(&ws->out, w->created, wmsg, q);
				ws->n_out--;
				free(w->created);
				w->created = NULL;
			}
			watch_free(gw, w);
		}
	}
}

void watch_storaged_up(struct gw *gw)
{
	struct wstream *ws;
	struct watch *w;

	LIST_FOREACH(ws, &gw->streams, link) {
		LIST_FOREACH(w, &ws->watches, link) {
			if (w->state == W_PAUSED || w->dead)
				continue;
			/* One not yet created still wants its created. */
			watch_register(gw, w, w->state == W_ACTIVE);
		}
	}
	LIST_FOREACH(ws, &gw->streams, link)
		stream_flush(ws);
}
