/*
 * MSG_WATCH_EVENTS from storaged: each hit becomes its watch's messages
 * (created, events, progress, canceled) as etcd's watch server sends them.
 * Every event of a frame is printed once (with and without prev_kv, as
 * needed) whatever the number of watches that get it; a watch that asked
 * for fragment gets a response too large for --max-request-bytes in parts.
 */
#include <stdlib.h>
#include <string.h>

#include "pbjson.h"
#include "stream.h"

/* The frame's events, printed on first use. */
struct frame {
	const Ipc__WatchEvents *we;
	struct jbuf *json[2]; /* [with prev_kv][event] */
	size_t *size[2];      /* protobuf size, 0 until needed */
};

static size_t varint_size(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static int frame_init(struct frame *f, const Ipc__WatchEvents *we)
{
	memset(f, 0, sizeof(*f));
	f->we = we;
	if (!we->n_events)
		return 0;
	for (int v = 0; v < 2; v++) {
		f->json[v] = calloc(we->n_events, sizeof(struct jbuf));
		f->size[v] = calloc(we->n_events, sizeof(size_t));
		if (!f->json[v] || !f->size[v])
			return -1;
	}
	return 0;
}

static void frame_done(struct frame *f)
{
	for (int v = 0; v < 2; v++) {
		if (f->json[v])
			for (size_t i = 0; i < f->we->n_events; i++)
				jbuf_clear(&f->json[v][i]);
		free(f->json[v]);
		free(f->size[v]);
	}
}

/* Event i as the watch sees it: with prev_kv only if it asked; its
 * protobuf size in *ret_size if ret_size is not NULL. */
static const struct jbuf *event_json(struct frame *f, size_t i, int prev,
				     size_t *ret_size)
{
	Mvccpb__Event *ev = f->we->events[i];
	Mvccpb__KeyValue *pkv = ev->prev_kv;
	int v = prev && pkv;
	struct jbuf *b = &f->json[v][i];

	ev->prev_kv = v ? pkv : NULL;
	if (!b->len)
		pbjson_encode(b, &ev->base);
	/* Sizes matter only to a watch that wants fragments. */
	if (ret_size && !f->size[v][i])
		f->size[v][i] = protobuf_c_message_get_packed_size(&ev->base);
	ev->prev_kv = pkv;
	if (ret_size)
		*ret_size = f->size[v][i];
	return b;
}

static void push_response(struct wstream *ws, Etcdserverpb__WatchResponse *wr,
			  const struct jbuf *const *events, size_t n)
{
	struct jbuf b = JBUF_INIT;
	size_t len;
	stream_encode_result(&b, &wr->base, events, n);
	if (b.oom) {
		jbuf_clear(&b);
		return;
	}
	char *text = jbuf_steal(&b, &len);
	stream_push(ws, text, len);
}

/*
 * The events of hit for w, in one response or, if w asked for fragment
 * and the response reaches --max-request-bytes, in parts cut as etcd's
 * sendFragments cuts them (by protobuf size).
 */
static void push_events(struct gw *gw, struct frame *f, struct watch *w,
			const Ipc__WatchHit *hit)
{
	const Ipc__WatchEvents *we = f->we;
	size_t n = hit->n_events;
	const struct jbuf **evs = calloc(n, sizeof(*evs));
	size_t *sz = calloc(n, sizeof(*sz));
	Etcdserverpb__WatchResponse wr;
	Etcdserverpb__ResponseHeader h;
	struct wstream *ws = w->ws;
	int64_t last = 0;

	if (!evs || !sz)
		goto out;
	for (size_t i = 0; i < n; i++) {
		uint32_t k = hit->events[i];
		if (k >= we->n_events)
			worker_fatal(gw->w, "gatewayd: bad event index from storaged");
		evs[i] = event_json(f, k, w->prev_kv,
				    w->fragment ? &sz[i] : NULL);
		if (we->events[k]->kv && we->events[k]->kv->mod_revision > last)
			last = we->events[k]->kv->mod_revision;
	}
	/* What is queued for the client counts as delivered. */
	if (last >= w->next_rev)
		w->next_rev = last + 1;
	stream_watch_response(gw, &wr, &h, we->revision);
	wr.watch_id = w->watch_id;

	if (!w->fragment || n < 2) {
		push_response(ws, &wr, evs, n);
		goto out;
	}
	/* Go's wr.Size(): header, watch_id, then each event. */
	size_t hs = protobuf_c_message_get_packed_size(&h.base);
	size_t base = 1 + varint_size(hs) + hs, total;
	if (wr.watch_id)
		base += 1 + varint_size((uint64_t)wr.watch_id);
	total = base;
	for (size_t i = 0; i < n; i++)
		total += 1 + varint_size(sz[i]) + sz[i];
	if (total < gw->max_request_bytes) {
		push_response(ws, &wr, evs, n);
		goto out;
	}
	for (size_t idx = 0; idx < n;) {
		size_t cur = base + 2, first = idx, cnt = 0;
		for (; idx < n; idx++) {
			cur += 1 + varint_size(sz[idx]) + sz[idx];
			if (++cnt > 1 && cur >= gw->max_request_bytes) {
				cnt--;
				break;
			}
		}
		wr.fragment = idx < n;
		/* The stream may pause under this: it only stops new frames. */
		push_response(ws, &wr, evs + first, cnt);
	}
out:
	free(evs);
	free(sz);
}

static void fill_created(struct gw *gw, struct wmsg *m, int64_t watch_id,
			 int64_t rev)
{
	Etcdserverpb__WatchResponse wr;
	Etcdserverpb__ResponseHeader h;
	struct jbuf b = JBUF_INIT;
	size_t len;

	stream_watch_response(gw, &wr, &h, rev);
	wr.watch_id = watch_id;
	wr.created = 1;
	stream_encode_result(&b, &wr.base, NULL, 0);
	if (b.oom) {
		jbuf_clear(&b);
		stream_drop(m);
		return;
	}
	char *text = jbuf_steal(&b, &len);
	stream_fill(m, text, len);
}

static void on_hit(struct gw *gw, struct frame *f, struct watch *w,
		   const Ipc__WatchHit *hit)
{
	struct wstream *ws = w->ws;
	int64_t rev = f->we->revision;
	Etcdserverpb__WatchResponse wr;
	Etcdserverpb__ResponseHeader h;

	if (hit->created && w->state == W_CREATING) {
		struct wmsg *m = w->created;
		int64_t id = w->watch_id;
		w->created = NULL;
		w->state = W_ACTIVE;
		if (!w->next_rev)
			w->next_rev = rev + 1;
		if (w->dead) {
			/* Its cancel is queued behind the created. */
			watch_free(gw, w);
			w = NULL;
		}
		if (m)
			fill_created(gw, m, id, rev);
		if (!w)
			return;
		if (ws->paused) {
			watch_pause(ws);
			return;
		}
	}
	if (w->dead || w->state != W_ACTIVE)
		return;
	if (hit->n_events) {
		push_events(gw, f, w, hit);
	} else if (hit->progress) {
		if (rev >= w->next_rev)
			w->next_rev = rev + 1;
		stream_watch_response(gw, &wr, &h, rev);
		wr.watch_id = w->watch_id;
		push_response(ws, &wr, NULL, 0);
	}
	if (!hit->canceled)
		return;
	/* After a compaction etcd's header has no revision. */
	stream_watch_response(gw, &wr, &h, hit->compact_revision ? 0 : rev);
	wr.watch_id = w->watch_id;
	wr.canceled = 1;
	wr.compact_revision = hit->compact_revision;
	wr.cancel_reason = hit->cancel_reason && *hit->cancel_reason
				   ? hit->cancel_reason : NULL;
	/* storaged has dropped it already. */
	watch_free(gw, w);
	push_response(ws, &wr, NULL, 0);
}

void watch_on_events(struct gw *gw, const uint8_t *body, size_t len)
{
	Ipc__WatchEvents *we = MSG_UNPACK(Ipc__WatchEvents, ipc__watch_events,
					  body, len);
	struct frame f;

	if (!we)
		worker_fatal(gw->w, "gatewayd: bad MSG_WATCH_EVENTS from storaged");
	if (we->revision > gw->rev_seen)
		gw->rev_seen = we->revision;
	if (frame_init(&f, we) < 0)
		goto out; /* out of memory: the watches miss these events */
	for (size_t i = 0; i < we->n_hits; i++) {
		/* Looked up for each hit: one before may have paused or
		 * ended watches of the same stream. */
		struct watch *w = u64map_get(&gw->watchers, we->hits[i]->watcher);
		if (w)
			on_hit(gw, &f, w, we->hits[i]);
	}
out:
	frame_done(&f);
	protobuf_c_message_free_unpacked(&we->base, NULL);
}
