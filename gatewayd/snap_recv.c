/*
 * The follower's half of a snapshot: POST /raft/snapshot requests (snap.h)
 * become MSG_SNAP_CHUNKs for storaged, each answered when storaged acks
 * it; once storaged has installed the snapshot, the final request's
 * MsgSnap goes to raftd (never before: raftd must not record a snapshot
 * whose data the store does not hold yet).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "gw.h"
#include "log.h"
#include "peer.h"
#include "snap.h"

int snap_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > SNAP_MAX_NAME || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* A decimal uint64 with nothing around it: 0 or -EINVAL. */
static int parse_u64(const char *s, uint64_t *ret_v)
{
	uint64_t v = 0;
	if (!s || !*s || strlen(s) > 20)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*ret_v = v;
	return 0;
}

static int parse_sha(const char *s, uint8_t out[32])
{
	if (!s || strlen(s) != 64)
		return -EINVAL;
	for (int i = 0; i < 64; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return -EINVAL;
		if (i % 2)
			out[i / 2] = (uint8_t)(out[i / 2] | d);
		else
			out[i / 2] = (uint8_t)(d << 4);
	}
	return 0;
}

static void reply_text(struct evhttp_request *req, int status,
		       const char *text)
{
	char buf[320];
	snprintf(buf, sizeof(buf), "%s\n", text);
	http_reply_text(req, status, buf, NULL);
}

/* A request refused before reaching storaged. */
static void refuse(struct gw *gw, struct evhttp_request *req, uint64_t from,
		   int status, const char *text)
{
	if (status == 400)
		pstat_add(gw, from, PS_RECV_FAIL, 1);
	pstat_add(gw, from, PS_SNAP_RECV_FAIL, 1);
	reply_text(req, status, text);
}

/* Takes the waiting request off rx (for an answer). */
static struct evhttp_request *take(struct snap_rx *rx)
{
	struct evhttp_request *req = rx->req;
	rx->req = NULL;
	rx->evcon = NULL;
	if (rx->timer)
		evtimer_del(rx->timer);
	free(rx->msg);
	rx->msg = NULL;
	rx->msg_len = 0;
	return req;
}

void snap_rx_fail(struct gw *gw, int status, const char *text)
{
	struct snaps *s = gw->snaps;
	if (!s || !s->rx.req)
		return;
	uint64_t from = s->rx.from;
	struct evhttp_request *req = take(&s->rx);
	pstat_add(gw, from, PS_SNAP_RECV_FAIL, 1);
	reply_text(req, status, text);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	snap_rx_fail(arg, 503, "storaged did not answer in time");
}

/* The connection of the waiting request is being freed (the request with
 * it, after this returns), or it was detached from it. */
static void on_close(struct evhttp_connection *evcon, void *arg)
{
	struct gw *gw = arg;
	struct snaps *s = gw->snaps;
	if (!s || !s->rx.req || s->rx.evcon != evcon)
		return;
	struct evhttp_request *req = s->rx.req;
	/* Detached by evhttp: ours to free. */
	if (!evhttp_request_get_connection(req))
		evhttp_request_free(req);
	pstat_add(gw, s->rx.from, PS_SNAP_RECV_FAIL, 1);
	take(&s->rx);
}

void snap_recv_handle(struct gw *gw, struct evhttp_request *req)
{
	struct snaps *s = gw->snaps;
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	Ipc__SnapChunk c = IPC__SNAP_CHUNK__INIT;
	uint8_t sha[32];
	uint64_t tid;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		pstat_add(gw, 0, PS_SNAP_RECV_FAIL, 1);
		http_reply_text(req, 405, "Method Not Allowed\n", "POST");
		return;
	}
	if (peer_check_cluster(gw, req) < 0) {
		pstat_add(gw, 0, PS_SNAP_RECV_FAIL, 1);
		return;
	}
	if (peer_parse_id(evhttp_find_header(h, "X-Server-From"), &c.from) < 0) {
		refuse(gw, req, 0, 400, "bad X-Server-From");
		return;
	}
	if (peer_parse_id(evhttp_find_header(h, SNAP_H_TRANSFER), &tid) < 0 ||
	    parse_u64(evhttp_find_header(h, SNAP_H_INDEX), &c.index) < 0 ||
	    parse_u64(evhttp_find_header(h, SNAP_H_TERM), &c.term) < 0) {
		refuse(gw, req, c.from, 400, "bad snapshot transfer headers");
		return;
	}
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *done = evhttp_find_header(h, SNAP_H_DONE);
	if (len > SNAP_CHUNK_MAX) {
		refuse(gw, req, c.from, 400, "snapshot chunk too large");
		return;
	}
	uint8_t *body = len ? evbuffer_pullup(in, -1) : NULL;
	if (len && !body) {
		refuse(gw, req, c.from, 500, "out of memory");
		return;
	}
	if (done) {
		uint64_t to;
		uint32_t type;
		if (strcmp(done, "1") != 0 ||
		    parse_sha(evhttp_find_header(h, SNAP_H_SHA256), sha) < 0) {
			refuse(gw, req, c.from, 400, "bad snapshot checksum headers");
			return;
		}
		if (!len || peer_msg_peek(body, len, &to, &type) < 0 ||
		    type != PEER_MSG_SNAP) {
			refuse(gw, req, c.from, 400, "wrong raft message type");
			return;
		}
		c.done = 1;
		c.sha256.data = sha;
		c.sha256.len = sizeof(sha);
	} else {
		const char *name = evhttp_find_header(h, SNAP_H_FILE);
		if (!snap_name_ok(name) ||
		    parse_u64(evhttp_find_header(h, SNAP_H_OFFSET), &c.offset) < 0) {
			refuse(gw, req, c.from, 400, "bad snapshot file headers");
			return;
		}
		c.name = (char *)name;
		c.data.data = body;
		c.data.len = len;
	}

	/* One request waits for storaged at a time: a new transfer takes
	 * over (the sender of the old one gave up), the same one may not
	 * have two requests out. */
	if (s->rx.req && s->rx.tid == tid) {
		refuse(gw, req, c.from, 409, "a request of this snapshot is in flight");
		return;
	}
	snap_rx_fail(gw, 503, "superseded by another snapshot");
	if (!s->rx.timer && !(s->rx.timer = evtimer_new(gw->base, on_timer, gw))) {
		refuse(gw, req, c.from, 500, "out of memory");
		return;
	}
	struct link *l = gw->w->peer[PROC_STORAGED];
	if (!l || link_queued(l) > GW_MAX_LINK_QUEUE) {
		refuse(gw, req, c.from, 503, "storaged is not available");
		return;
	}
	if (c.done && !(s->rx.msg = malloc(len))) {
		refuse(gw, req, c.from, 500, "out of memory");
		return;
	}
	if (worker_send_pb(gw->w, PROC_STORAGED, MSG_SNAP_CHUNK, tid, &c.base) < 0) {
		free(s->rx.msg);
		s->rx.msg = NULL;
		refuse(gw, req, c.from, 503, "storaged is not available");
		return;
	}
	if (tid != s->rx.last_tid) {
		log_info("rafthttp", "receiving database snapshot [index: %" PRIu64
			 ", from: %" PRIx64 "]...", c.index, c.from);
		s->rx.last_tid = tid;
	}
	if (c.done) {
		memcpy(s->rx.msg, body, len);
		s->rx.msg_len = len;
	}
	s->rx.req = req;
	s->rx.evcon = evhttp_request_get_connection(req);
	s->rx.tid = tid;
	s->rx.from = c.from;
	s->rx.index = c.index;
	s->rx.bytes = len;
	s->rx.done = c.done;
	evhttp_connection_set_closecb(s->rx.evcon, on_close, gw);
	uint64_t ms = s->stall_ms;
	if (c.done && ms < SNAP_DONE_TIMEOUT_S * 1000)
		ms = SNAP_DONE_TIMEOUT_S * 1000;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	evtimer_add(s->rx.timer, &tv);
}

void snap_on_ack(struct gw *gw, uint64_t tid, const uint8_t *body, size_t len)
{
	struct snaps *s = gw->snaps;
	Ipc__SnapAck *a = MSG_UNPACK(Ipc__SnapAck, ipc__snap_ack, body, len);
	if (!a)
		worker_fatal(gw->w, "gatewayd: bad MSG_SNAP_ACK from storaged");
	if (!s || !s->rx.req || s->rx.tid != tid) {
		/* Its sender went away, or another transfer took over. */
		protobuf_c_message_free_unpacked(&a->base, NULL);
		return;
	}
	struct snap_rx *rx = &s->rx;
	uint64_t from = rx->from, index = rx->index;
	size_t bytes = rx->bytes;
	if (a->error) {
		log_warn("rafthttp", "failed to save database snapshot [index: %"
			 PRIu64 ", from: %" PRIx64 "]: %s", index, from,
			 a->error->message);
		snap_rx_fail(gw, 500, a->error->message);
	} else if (!rx->done) {
		pstat_add(gw, from, PS_RECV_BYTES, bytes);
		evhttp_send_reply(take(rx), 204, "No Content", NULL);
	} else if (worker_send(gw->w, PROC_RAFTD, MSG_RAFT_MSG, 0, rx->msg,
			       rx->msg_len) < 0) {
		/* Installed, but raftd will not know: the leader sends it
		 * again, and storaged finds it already has it. */
		snap_rx_fail(gw, 503, "raftd is not available");
	} else {
		pstat_add(gw, from, PS_RECV_BYTES, bytes);
		pstat_add(gw, from, PS_SNAP_RECV_OK, 1);
		log_info("rafthttp", "received and saved database snapshot [index: %"
			 PRIu64 ", from: %" PRIx64 "] successfully", index, from);
		evhttp_send_reply(take(rx), 204, "No Content", NULL);
	}
	protobuf_c_message_free_unpacked(&a->base, NULL);
}

void snap_rx_done(struct gw *gw)
{
	struct snaps *s = gw->snaps;
	snap_rx_fail(gw, 503, "stopping");
	if (s && s->rx.timer)
		event_free(s->rx.timer);
	if (s)
		s->rx.timer = NULL;
}
