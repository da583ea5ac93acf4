/*
 * Answers to v2 keys requests: storaged's V2Result (status, body, index)
 * with etcd's headers, a wait's reply streamed as its frames arrive, and
 * the failures that are not the store's (etcd's 300 "Raft Internal Error").
 */
#include <errno.h>
#include <inttypes.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "gojson.h"
#include "gw.h"
#include "v2_err.h"

void pending_v2_fail(struct gw *gw, struct pending *p, int code,
		     const char *cause)
{
	struct evhttp_request *req = pending_take_req(p);
	if (req && p->started)
		/* The wait's headers are out: all we can do is end it. */
		evhttp_send_reply_end(req);
	else if (req)
		v2_reply_error(gw, req, code, cause, 0);
	pending_free(gw, p);
}

/* The waiting client's socket is readable: EOF means it went away (Go's
 * CloseNotify). Bytes instead (a pipelined request) end the watch: they
 * are evhttp's to read once the wait is answered. */
static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;
	char c;
	(void)what;
	ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	event_free(p->gone_ev);
	p->gone_ev = NULL;
	if (n <= 0 && p->conn)
		/* Its close callback frees p (v2_wait_gone). */
		evhttp_connection_free(p->conn->evcon);
}

void v2_watch_gone(struct gw *gw, struct pending *p)
{
	if (!p->conn)
		return;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(p->conn->evcon);
	evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
	if (fd < 0)
		return;
	p->gone_ev = event_new(gw->base, fd, EV_READ | EV_PERSIST, on_readable, p);
	if (p->gone_ev)
		event_add(p->gone_ev, NULL);
}

void v2_wait_gone(struct gw *gw, struct pending *p)
{
	if (gw->w->peer[PROC_STORAGED])
		worker_send(gw->w, PROC_STORAGED, MSG_V2_CANCEL, p->id, NULL, 0);
	p->req = NULL;
	p->conn = NULL;
	pending_free(gw, p);
}

static const char *v2_message(int code)
{
	switch (code) {
	case V2E_PREV_VALUE_REQUIRED: return "PrevValue is Required in POST form";
	case V2E_TTL_NAN: return "The given TTL in POST form is not a number";
	case V2E_INDEX_NAN: return "The given index in POST form is not a number";
	case V2E_INVALID_FIELD: return "Invalid field";
	case V2E_INVALID_FORM: return "Invalid POST form";
	case V2E_REFRESH_VALUE: return "Value provided on refresh";
	case V2E_REFRESH_TTL_REQUIRED: return "A TTL must be provided on refresh";
	default: return "Raft Internal Error";
	}
}

/* The headers every answer of the keys handler has. */
static void v2_headers(struct gw *gw, struct evhttp_request *req,
		       uint64_t etcd_index, int raft)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	char v[24];
	http_cors(req);
	snprintf(v, sizeof(v), "%" PRIx64, gw->cluster_id);
	evhttp_add_header(h, "X-Etcd-Cluster-Id", v);
	evhttp_add_header(h, "Content-Type", "application/json");
	snprintf(v, sizeof(v), "%" PRIu64, etcd_index);
	evhttp_add_header(h, "X-Etcd-Index", v);
	if (raft) {
		snprintf(v, sizeof(v), "%" PRIu64, gw->commit);
		evhttp_add_header(h, "X-Raft-Index", v);
		snprintf(v, sizeof(v), "%" PRIu64, gw->term);
		evhttp_add_header(h, "X-Raft-Term", v);
	}
}

static int v2_status(int code)
{
	switch (code) {
	case 100: return 404;
	case 102: case 108: return 403;
	case 110: return 401;
	case 101: case 105: return 412;
	case 300: case 301: return 500;
	default: return 400;
	}
}

void v2_reply_error(struct gw *gw, struct evhttp_request *req, int code,
		    const char *cause, uint64_t index)
{
	struct jbuf b = JBUF_INIT;
	int status = v2_status(code);
	jbuf_printf(&b, "{\"errorCode\":%d,\"message\":", code);
	gojson_quote(&b, v2_message(code), strlen(v2_message(code)));
	if (cause && *cause) {
		jbuf_add(&b, ",\"cause\":", 9);
		gojson_quote(&b, cause, strlen(cause));
	}
	jbuf_printf(&b, ",\"index\":%" PRIu64 "}\n", index);
	v2_headers(gw, req, index, 0);
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	if (!b.oom)
		evbuffer_add(out, b.p, b.len);
	jbuf_clear(&b);
	evhttp_send_reply(req, status, http_reason(status), NULL);
}

/*
 * noValueOnSuccess: a successful set, compareAndSwap, create or update
 * answers only its action. 1 if body was replaced into out.
 */
static int no_value_body(const Ipc__V2Result *v, char *out, size_t outlen)
{
	static const char pre[] = "{\"action\":\"";
	static const char *const acts[] = {"set", "compareAndSwap", "create",
					   "update"};
	if (v->status >= 300 || v->body.len < sizeof(pre) - 1 ||
	    memcmp(v->body.data, pre, sizeof(pre) - 1) != 0)
		return 0;
	const char *a = (const char *)v->body.data + sizeof(pre) - 1;
	size_t left = v->body.len - (sizeof(pre) - 1);
	for (size_t i = 0; i < 4; i++) {
		size_t n = strlen(acts[i]);
		if (left > n && memcmp(a, acts[i], n) == 0 && a[n] == '"') {
			snprintf(out, outlen, "{\"action\":\"%s\"}\n", acts[i]);
			return 1;
		}
	}
	return 0;
}

void v2_on_result(struct gw *gw, struct pending *p, const Ipc__Result *r)
{
	if (r->error || !r->v2) {
		pending_v2_fail(gw, p, V2E_RAFT_INTERNAL,
				r->error ? r->error->message : "etcdserver: no response");
		return;
	}
	const Ipc__V2Result *v = r->v2;
	if (!p->req) {
		pending_free(gw, p);
		return;
	}
	if (!p->started && !v->more) {
		/* A whole answer. */
		struct evhttp_request *req = pending_take_req(p);
		char small[64];
		v2_headers(gw, req, v->etcd_index, 1);
		struct evbuffer *out = evhttp_request_get_output_buffer(req);
		if (p->no_value && no_value_body(v, small, sizeof(small)))
			evbuffer_add(out, small, strlen(small));
		else
			evbuffer_add(out, v->body.data, v->body.len);
		evhttp_send_reply(req, (int)v->status, http_reason((int)v->status),
				  NULL);
		pending_free(gw, p);
		return;
	}
	/* A wait: its headers go at once, each event as a chunk. */
	if (!p->started) {
		v2_headers(gw, p->req, v->etcd_index, 1);
		evhttp_send_reply_start(p->req, (int)v->status,
					http_reason((int)v->status));
		p->started = 1;
	}
	if (v->body.len) {
		struct evbuffer *b = evbuffer_new();
		if (b) {
			evbuffer_add(b, v->body.data, v->body.len);
			evhttp_send_reply_chunk(p->req, b);
			evbuffer_free(b);
		}
	}
	if (!v->more) {
		evhttp_send_reply_end(pending_take_req(p));
		pending_free(gw, p);
	}
}
