/*
 * Streamed responses: the ordered queue of `{"result":...}\n` messages of a
 * watch or keepalive stream, the chunked reply they go out in, the queries
 * some of them wait for, and noticing the client leave or fall behind.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>

#include "gojson.h"
#include "pbjson.h"
#include "stream.h"

#define ERR_TIMEOUT "etcdserver: request timed out"
#define ERR_LEASE_NOT_FOUND "etcdserver: requested lease not found"
/* A client may send more after its body while we stream: read no more than
 * this, which is enough to notice that it closed. */
#define STREAM_READ_MAX (64u << 10)
/* A text shorter than this is copied into the output buffer, not
 * referenced: see send_text. */
#define STREAM_COPY_MAX 4096u

static struct bufferevent *bev_of(const struct wstream *ws)
{
	struct evhttp_connection *evcon =
		ws->req ? evhttp_request_get_connection(ws->req) : NULL;
	return evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
}

size_t stream_backlog(const struct wstream *ws)
{
	struct bufferevent *bev = bev_of(ws);
	return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

/*
 * evhttp stops reading once a request's body is in and only looks again
 * when a reply is written; a stream may stay silent for long, so read now
 * (into nothing) to learn at once when the client closes. A stream also
 * lives past evhttp's idle timeout: only a client that stops reading what
 * we write is timed out.
 */
static void watch_for_close(struct wstream *ws, int on)
{
	struct bufferevent *bev = bev_of(ws);
	struct timeval tv = { GW_IDLE_TIMEOUT_S, 0 };
	bufferevent_data_cb rcb, wcb;
	bufferevent_event_cb ecb;
	void *arg;

	if (!bev)
		return;
	if (!on) {
		/* Back to a plain keep-alive connection. */
		bufferevent_set_timeouts(bev, &tv, &tv);
		bufferevent_setwatermark(bev, EV_READ | EV_WRITE, 0, 0);
		return;
	}
	bufferevent_getcb(bev, &rcb, &wcb, &ecb, &arg);
	bufferevent_setcb(bev, NULL, wcb, ecb, arg);
	bufferevent_setwatermark(bev, EV_READ, 0, STREAM_READ_MAX);
	if (ws->kind == WS_WATCH)
		bufferevent_setwatermark(bev, EV_WRITE, GW_STREAM_LOW, 0);
	bufferevent_set_timeouts(bev, NULL, &tv);
	bufferevent_enable(bev, EV_READ);
}

struct wstream *stream_new(struct gw *gw, enum wkind kind,
			   struct evhttp_request *req, struct conn *c)
{
	struct wstream *ws = calloc(1, sizeof(*ws));
	if (!ws)
		return NULL;
	ws->gw = gw;
	ws->kind = kind;
	ws->req = req;
	ws->conn = c;
	if (!(ws->buf = evbuffer_new())) {
		free(ws);
		return NULL;
	}
	STAILQ_INIT(&ws->out);
	LIST_INIT(&ws->watches);
	LIST_INSERT_HEAD(&gw->streams, ws, link);
	gw->n_streams++;
	c->ws = ws;
	watch_for_close(ws, 1);
	return ws;
}

static void msg_free(struct gw *gw, struct wmsg *m)
{
	if (m->wait == WM_QUERY)
		u64map_del(&gw->wq, m->qid);
	free(m->text);
	free(m);
}

static void stream_free(struct wstream *ws)
{
	struct gw *gw = ws->gw;
	struct wmsg *m;

	if (ws->kind == WS_WATCH)
		watch_stream_free(ws);
	while ((m = STAILQ_FIRST(&ws->out))) {
		STAILQ_REMOVE_HEAD(&ws->out, q);
		msg_free(gw, m);
	}
	if (ws->conn)
		ws->conn->ws = NULL;
	LIST_REMOVE(ws, link);
	gw->n_streams--;
	u64map_clear(&ws->ids);
	evbuffer_free(ws->buf);
	free(ws);
}

void stream_conn_gone(struct conn *c)
{
	struct wstream *ws = c->ws;
	if (!ws)
		return;
	ws->req = NULL; /* the caller deals with evhttp's request */
	ws->conn = NULL;
	c->ws = NULL;
	stream_free(ws);
}

static void on_drained(struct evhttp_connection *evcon, void *arg)
{
	struct conn *c = arg;
	(void)evcon;
	if (c->ws && c->ws->paused && stream_backlog(c->ws) <= GW_STREAM_LOW)
		watch_resume(c->ws);
}

static void start_reply(struct wstream *ws)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(ws->req);
	http_cors(ws->req);
	evhttp_add_header(h, "Content-Type", "application/json");
	if (ws->grpc_md)
		evhttp_add_header(h, "Grpc-Metadata-Content-Type",
				  "application/grpc");
	evhttp_send_reply_start(ws->req, 200, "OK");
	ws->started = 1;
	/* evhttp_send_reply_start put evhttp's read callback back. */
	watch_for_close(ws, 1);
}

static void end_reply(struct wstream *ws)
{
	struct evhttp_request *req = ws->req;
	if (!ws->started)
		start_reply(ws);
	watch_for_close(ws, 0);
	ws->req = NULL;
	stream_free(ws);
	/* Last: evhttp may free the request and read the next one. */
	evhttp_send_reply_end(req);
}

static void free_text(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)data);
}

/*
 * One message, one chunk; text (malloc'd) is taken.
 *
 * Handing each message to evhttp as a referenced buffer costs, besides the
 * text, a chain for the reference and a fresh 1 KiB chain for the chunk's
 * "\r\n" (a referenced chain takes no more bytes): about three times the
 * bytes of a small event, which is what a fan-out holds by the megabyte
 * while a client catches up. So the chunk is framed here, and a small text
 * is copied into the connection's output buffer, where it packs with its
 * neighbours into few large chains (and few iovecs per writev). Only the
 * first chunk of a stream, and one that takes the output past
 * GW_STREAM_HIGH (the stream pauses on it), go through evhttp: that is what
 * (re)arms on_drained, the callback evhttp runs once the output falls to
 * the write low-water mark.
 */
static void send_text(struct wstream *ws, char *text, size_t len)
{
	struct bufferevent *bev;
	struct evbuffer *out;
	int ok;

	if (!text)
		return;
	if (!ws->started)
		start_reply(ws);
	bev = bev_of(ws);
	if (!bev) {
		free(text);
		return;
	}
	out = bufferevent_get_output(bev);
	if (!ws->armed || evbuffer_get_length(out) + len > GW_STREAM_HIGH) {
		/* The text goes to the socket without a copy. */
		if (evbuffer_add_reference(ws->buf, text, len, free_text,
					   NULL) < 0) {
			free(text);
			return;
		}
		evhttp_send_reply_chunk_with_cb(ws->req, ws->buf, on_drained,
						ws->conn);
		/* Whatever evhttp did not take (it cannot send any more)
		 * goes. */
		evbuffer_drain(ws->buf, evbuffer_get_length(ws->buf));
		ws->armed = 1;
		return;
	}
	ok = !ws->req->chunked ||
	     evbuffer_add_printf(out, "%zx\r\n", len) > 0;
	if (ok && len < STREAM_COPY_MAX) {
		ok = evbuffer_add(out, text, len) == 0;
		free(text);
	} else if (ok) {
		ok = evbuffer_add_reference(out, text, len, free_text,
					    NULL) == 0;
		if (!ok)
			free(text);
	} else {
		free(text);
	}
	if (ok && ws->req->chunked)
		ok = evbuffer_add(out, "\r\n", 2) == 0;
	if (!ok) {
		/* Out of memory in the middle of a chunk: a dropped or
		 * half-framed message would leave the client a gap or a broken
		 * stream. Restarting gatewayd closes every stream and clients
		 * resume from their last revision; the arena treats running
		 * out of memory the same way. */
		fputs("gatewayd: out of memory while writing a stream\n", stderr);
		abort();
	}
}

void stream_flush(struct wstream *ws)
{
	struct wmsg *m;
	int end = 0;

	if (ws->hold)
		return;
	while ((m = STAILQ_FIRST(&ws->out)) && m->wait == WM_READY) {
		STAILQ_REMOVE_HEAD(&ws->out, q);
		ws->n_out--;
		send_text(ws, m->text, m->len);
		m->text = NULL;
		end = m->last;
		msg_free(ws->gw, m);
		if (end)
			break;
	}
	if (ws->kind == WS_KEEPALIVE && (end || (ws->body_done && !ws->n_out))) {
		end_reply(ws);
		return;
	}
	if (ws->kind == WS_WATCH && !ws->paused &&
	    stream_backlog(ws) > GW_STREAM_HIGH)
		watch_pause(ws);
}

static struct wmsg *enqueue(struct wstream *ws, enum wwait wait)
{
	if (ws->n_out >= GW_STREAM_MAX_QUEUED)
		return NULL;
	struct wmsg *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->ws = ws;
	m->wait = wait;
	STAILQ_INSERT_TAIL(&ws->out, m, q);
	ws->n_out++;
	return m;
}

void stream_push(struct wstream *ws, char *text, size_t len)
{
	if (text && !ws->hold && STAILQ_EMPTY(&ws->out)) {
		/* Nothing waits ahead of it: straight out. */
		send_text(ws, text, len);
		stream_flush(ws);
		return;
	}
	struct wmsg *m = text ? enqueue(ws, WM_READY) : NULL;
	if (!m) {
		/* Out of memory, or a client far behind: it loses this
		 * message, and learns of it by the gap in revisions. */
		free(text);
		return;
	}
	m->text = text;
	m->len = len;
	stream_flush(ws);
}

struct wmsg *stream_push_wait(struct wstream *ws, enum wwait wait)
{
	return enqueue(ws, wait);
}

static void set_text(struct wmsg *m, char *text, size_t len)
{
	if (m->wait == WM_QUERY)
		u64map_del(&m->ws->gw->wq, m->qid);
	m->wait = WM_READY;
	free(m->text);
	m->text = text;
	m->len = text ? len : 0;
}

void stream_fill(struct wmsg *m, char *text, size_t len)
{
	set_text(m, text, len);
	stream_flush(m->ws);
}

void stream_drop(struct wmsg *m)
{
	struct wstream *ws = m->ws;
	STAILQ_REMOVE(&ws->out, m, wmsg, q);
	ws->n_out--;
	msg_free(ws->gw, m);
	stream_flush(ws);
}

void stream_watch_response(struct gw *gw, Etcdserverpb__WatchResponse *wr,
			   Etcdserverpb__ResponseHeader *h, int64_t rev)
{
	etcdserverpb__watch_response__init(wr);
	etcdserverpb__response_header__init(h);
	gw_fill_header(gw, h);
	h->revision = rev;
	wr->header = h;
}

void stream_encode_result(struct jbuf *b, const ProtobufCMessage *wr,
			  const struct jbuf *const *events, size_t n)
{
	jbuf_add(b, "{\"result\":", 10);
	pbjson_encode(b, wr);
	if (n && b->len && !b->oom) {
		/* events (field 11) is the last field: append it in place
		 * of the closing brace. */
		b->len--;
		jbuf_add(b, b->p[b->len - 1] == '{' ? "\"events\":[" : ",\"events\":[",
			 b->p[b->len - 1] == '{' ? 10 : 11);
		for (size_t i = 0; i < n; i++) {
			if (i)
				jbuf_putc(b, ',');
			jbuf_add(b, events[i]->p, events[i]->len);
		}
		jbuf_add(b, "]}", 2);
	}
	jbuf_add(b, "}\n", 2);
}

/* grpc-gateway's last chunk when a stream fails after it started. */
static void stream_error(struct jbuf *b, uint32_t code, const char *msg)
{
	int st = http_status_of(code);
	jbuf_printf(b, "{\"error\":{\"grpc_code\":%u,\"http_code\":%d,\"message\":",
		    code, st);
	gojson_quote(b, msg, strlen(msg));
	jbuf_printf(b, ",\"http_status\":\"%s\"}}", http_reason(st));
}

static void encode_keepalive(struct wmsg *m, const Ipc__Result *r,
			     struct jbuf *b)
{
	struct gw *gw = m->ws->gw;
	Etcdserverpb__LeaseKeepAliveResponse ka =
		ETCDSERVERPB__LEASE_KEEP_ALIVE_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;

	if (r && r->response_case == IPC__RESULT__RESPONSE_LEASE_KEEP_ALIVE) {
		ka = *r->lease_keep_alive;
		if (ka.header)
			h = *ka.header;
	} else if (r && r->error && r->error->code == 5 &&
		   strcmp(r->error->message, ERR_LEASE_NOT_FOUND) == 0) {
		/* etcd answers an unknown lease with TTL 0, not an error. */
		ka.id = m->id;
		h.revision = gw->rev_seen;
	} else {
		stream_error(b, r && r->error ? r->error->code : 14,
			     r && r->error ? r->error->message : ERR_TIMEOUT);
		m->last = 1;
		return;
	}
	gw_fill_header(gw, &h);
	ka.header = &h;
	jbuf_add(b, "{\"result\":", 10);
	pbjson_encode(b, &ka.base);
	jbuf_add(b, "}\n", 2);
}

/* Makes m's text from its query's result r (NULL: none will come). */
static void fill_query(struct wmsg *m, const Ipc__Result *r)
{
	struct gw *gw = m->ws->gw;
	struct jbuf b = JBUF_INIT;
	Etcdserverpb__WatchResponse wr;
	Etcdserverpb__ResponseHeader h;
	int64_t rev = gw->rev_seen;
	size_t len;

	if (m->what == WQ_KEEPALIVE) {
		encode_keepalive(m, r, &b);
	} else {
		if (r && r->response_case == IPC__RESULT__RESPONSE_RANGE &&
		    r->range->header)
			rev = r->range->header->revision;
		if (rev > gw->rev_seen)
			gw->rev_seen = rev;
		stream_watch_response(gw, &wr, &h, rev);
		wr.watch_id = m->id;
		if (m->what == WQ_CANCELED) {
			wr.canceled = 1;
		} else if (m->what == WQ_REFUSED) {
			wr.created = 1;
			wr.canceled = 1;
			wr.cancel_reason = (char *)m->reason;
		}
		stream_encode_result(&b, &wr.base, NULL, 0);
	}
	if (b.oom) {
		jbuf_clear(&b);
		set_text(m, NULL, 0);
		return;
	}
	char *text = jbuf_steal(&b, &len);
	set_text(m, text, len);
}

void stream_push_query(struct wstream *ws, Ipc__Query *q, enum wq_what what,
		       int64_t id, const char *reason)
{
	struct gw *gw = ws->gw;
	struct wmsg *m = enqueue(ws, WM_QUERY);
	if (!m)
		return;
	m->what = what;
	m->id = id;
	m->reason = reason;
	m->qid = reqid_next(&gw->ids);
	if (u64map_put(&gw->wq, m->qid, m) < 0 ||
	    worker_send_pb(gw->w, PROC_STORAGED, MSG_QUERY, m->qid, &q->base) < 0)
		fill_query(m, NULL);
	stream_flush(ws);
}

int stream_on_result(struct gw *gw, uint64_t id, const Ipc__Result *r)
{
	struct wmsg *m = u64map_get(&gw->wq, id);
	if (!m)
		return 0;
	fill_query(m, r);
	stream_flush(m->ws);
	return 1;
}

void stream_storaged_down(struct gw *gw)
{
	struct wstream *ws, *next;
	/* No answer will come: fill every waiting query message first, then
	 * send (a keepalive stream may end and go). */
	LIST_FOREACH(ws, &gw->streams, link) {
		struct wmsg *m;
		STAILQ_FOREACH(m, &ws->out, q)
			if (m->wait == WM_QUERY)
				fill_query(m, NULL);
	}
	for (ws = LIST_FIRST(&gw->streams); ws; ws = next) {
		next = LIST_NEXT(ws, link);
		stream_flush(ws);
	}
}
