/*
 * The leader's half of a snapshot: a MsgSnap from raftd makes storaged
 * checkpoint the store (MSG_SNAP_MAKE), the files it hands back (one
 * descriptor each) stream to the follower as POST /raft/snapshot chunks
 * (snap.h), the MsgSnap goes last, and raftd hears how it ended
 * (MSG_SNAP_STATUS), as etcd's snapshotSender reports to raft.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <openssl/evp.h>

#include "gw.h"
#include "gw_tls.h"
#include "log.h"
#include "peer.h"
#include "raft.pb-c.h"
#include "snap.h"

#define WARN_EVERY_MS 5000

enum tx_state { TX_MAKING, TX_SENDING, TX_FINAL, TX_DEAD };

struct snap_file {
	char *name;
	uint64_t size;
	int fd;
};

struct snap_tx {
	struct snaps *s;
	uint64_t tid, to, index, term;
	enum tx_state state;
	uint8_t *msg;              /* owned: the MsgSnap, sent last */
	size_t msg_len;
	struct snap_file *files;   /* owned, with their descriptors */
	size_t n_files, cap_files;
	size_t cur;                /* the file being sent */
	uint64_t off;              /* the next offset in it */
	uint64_t bytes;            /* of the file data sent so far */
	size_t out_bytes;          /* body of the request in flight */
	EVP_MD_CTX *md;
	char *host;
	int port;
	int https;
	struct evhttp_connection *evcon;
	struct event *ev;          /* stall timer; frees a dead transfer */
	uint64_t started_ms;
	LIST_ENTRY(snap_tx) le;    /* on snaps.all */
};

static void close_files(struct snap_tx *tx)
{
	for (size_t i = 0; i < tx->n_files; i++) {
		if (tx->files[i].fd >= 0)
			close(tx->files[i].fd);
		free(tx->files[i].name);
	}
	free(tx->files);
	tx->files = NULL;
	tx->n_files = tx->cap_files = 0;
}

static void tx_free(struct snap_tx *tx)
{
	if (!tx)
		return;
	if (tx->s)
		LIST_REMOVE(tx, le);
	if (tx->evcon)
		evhttp_connection_free(tx->evcon); /* drops a request out */
	close_files(tx);
	if (tx->ev)
		event_free(tx->ev);
	EVP_MD_CTX_free(tx->md);
	free(tx->msg);
	free(tx->host);
	free(tx);
}

/*
 * Ends tx: raftd hears the outcome (unless it is the raftd that asked no
 * more), the descriptors close now, and the rest is freed at the start
 * of the next loop pass, outside evhttp's callbacks.
 */
static void tx_end(struct snap_tx *tx, int failed, int tell_raftd,
		   const char *why)
{
	struct snaps *s = tx->s;
	struct gw *gw = s->gw;
	if (tx->state == TX_DEAD)
		return;
	tx->state = TX_DEAD;
	u64map_del(&s->by_to, tx->to);
	u64map_del(&s->by_tid, tx->tid);
	close_files(tx);
	if (tell_raftd) {
		Ipc__SnapStatus st = IPC__SNAP_STATUS__INIT;
		st.to = tx->to;
		st.failed = failed;
		worker_send_pb(gw->w, PROC_RAFTD, MSG_SNAP_STATUS, tx->tid,
			       &st.base);
	}
	pstat_add(gw, tx->to, failed ? PS_SNAP_SEND_FAIL : PS_SNAP_SEND_OK, 1);
	if (failed)
		log_warn("rafthttp", "database snapshot [index: %" PRIu64
			 ", to: %" PRIx64 "] failed to be sent out (%s)",
			 tx->index, tx->to, why);
	else
		log_info("rafthttp", "database snapshot [index: %" PRIu64
			 ", to: %" PRIx64 "] sent out successfully (%" PRIu64
			 " bytes in %zu files)", tx->index, tx->to, tx->bytes,
			 tx->cur);
	event_active(tx->ev, EV_TIMEOUT, 0);
}

/* No progress for stall_ms, or the whole transfer is too long. */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct snap_tx *tx = arg;
	(void)fd;
	(void)what;
	if (tx->state == TX_DEAD) {
		tx_free(tx);
		return;
	}
	tx_end(tx, 1, 1, "timed out");
}

/* Something moved: the stall timer starts again (the follower's install,
 * after the final request, gets longer). */
static void progress(struct snap_tx *tx)
{
	uint64_t now = gw_now_ms(), left = tx->s->stall_ms;
	if (tx->state == TX_FINAL && left < SNAP_DONE_TIMEOUT_S * 1000)
		left = SNAP_DONE_TIMEOUT_S * 1000;
	if (now >= tx->started_ms + SNAP_MAX_MS)
		left = 0;
	else if (tx->started_ms + SNAP_MAX_MS - now < left)
		left = tx->started_ms + SNAP_MAX_MS - now;
	struct timeval tv = { (time_t)(left / 1000),
			      (suseconds_t)(left % 1000) * 1000 };
	evtimer_add(tx->ev, &tv);
}

static void on_answer(struct evhttp_request *req, void *arg);

/* A request of tx with the headers every request carries. */
static struct evhttp_request *new_request(struct snap_tx *tx,
					  const char *ctype)
{
	struct gw *gw = tx->s->gw;
	struct evhttp_request *req = evhttp_request_new(on_answer, tx);
	char v[32];
	if (!req)
		return NULL;
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	peer_add_headers(gw, h, tx->host, tx->port, ctype);
	snprintf(v, sizeof(v), "%" PRIx64, tx->tid);
	evhttp_add_header(h, SNAP_H_TRANSFER, v);
	snprintf(v, sizeof(v), "%" PRIu64, tx->index);
	evhttp_add_header(h, SNAP_H_INDEX, v);
	snprintf(v, sizeof(v), "%" PRIu64, tx->term);
	evhttp_add_header(h, SNAP_H_TERM, v);
	return req;
}

/* Reads n bytes of f at off straight into the request body, hashing them. */
static int read_chunk(struct snap_tx *tx, struct evbuffer *out,
		      const struct snap_file *f, size_t n)
{
	struct evbuffer_iovec v;
	if (n == 0)
		return 0;
	if (evbuffer_reserve_space(out, (ev_ssize_t)n, &v, 1) != 1 ||
	    v.iov_len < n)
		return -ENOMEM;
	for (size_t got = 0; got < n;) {
		ssize_t r = pread(f->fd, (char *)v.iov_base + got, n - got,
				  (off_t)(tx->off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ENODATA; /* shorter than storaged said */
		got += (size_t)r;
	}
	if (!EVP_DigestUpdate(tx->md, v.iov_base, n))
		return -EIO;
	v.iov_len = n;
	return evbuffer_commit_space(out, &v, 1) < 0 ? -ENOMEM : 0;
}

/* Sends the next chunk, or the final request after the last one. */
static void send_next(struct snap_tx *tx)
{
	struct evhttp_request *req;
	char v[72];
	int ret;

	if (tx->cur < tx->n_files) {
		const struct snap_file *f = &tx->files[tx->cur];
		uint64_t left = f->size - tx->off;
		size_t n = left > SNAP_CHUNK_MAX ? SNAP_CHUNK_MAX : (size_t)left;
		if (!(req = new_request(tx, "application/octet-stream"))) {
			tx_end(tx, 1, 1, "out of memory");
			return;
		}
		struct evkeyvalq *h = evhttp_request_get_output_headers(req);
		evhttp_add_header(h, SNAP_H_FILE, f->name);
		snprintf(v, sizeof(v), "%" PRIu64, tx->off);
		evhttp_add_header(h, SNAP_H_OFFSET, v);
		/* The checksum covers each file's name and a zero byte first. */
		if (tx->off == 0 &&
		    !EVP_DigestUpdate(tx->md, f->name, strlen(f->name) + 1))
			ret = -EIO;
		else
			ret = read_chunk(tx, evhttp_request_get_output_buffer(req),
					 f, n);
		if (ret < 0) {
			evhttp_request_free(req);
			log_warn("rafthttp", "cannot read snapshot file %s: %s",
				 f->name, strerror(-ret));
			tx_end(tx, 1, 1, "cannot read the snapshot");
			return;
		}
		tx->out_bytes = n;
		tx->off += n;
		if (tx->off == f->size) {
			tx->cur++;
			tx->off = 0;
		}
	} else {
		uint8_t sum[32];
		unsigned len = 0;
		if (!EVP_DigestFinal_ex(tx->md, sum, &len) || len != 32 ||
		    !(req = new_request(tx, "application/protobuf"))) {
			tx_end(tx, 1, 1, "out of memory");
			return;
		}
		for (int i = 0; i < 32; i++)
			snprintf(v + 2 * i, 3, "%02x", sum[i]);
		struct evkeyvalq *h = evhttp_request_get_output_headers(req);
		evhttp_add_header(h, SNAP_H_DONE, "1");
		evhttp_add_header(h, SNAP_H_SHA256, v);
		evbuffer_add(evhttp_request_get_output_buffer(req), tx->msg,
			     tx->msg_len);
		tx->out_bytes = tx->msg_len;
		tx->state = TX_FINAL;
		/* The follower installs the store before it answers. */
		evhttp_connection_set_timeout(tx->evcon, SNAP_DONE_TIMEOUT_S);
		progress(tx);
	}
	if (evhttp_make_request(tx->evcon, req, EVHTTP_REQ_POST, SNAP_PATH) < 0)
		tx_end(tx, 1, 1, "cannot send"); /* req freed by evhttp */
	else
		peer_nodelay(tx->evcon);
}

static void on_answer(struct evhttp_request *req, void *arg)
{
	struct snap_tx *tx = arg;
	struct gw *gw = tx->s->gw;
	int code = req ? evhttp_request_get_response_code(req) : 0;
	char why[160];

	if (tx->state == TX_DEAD)
		return;
	if (code / 100 != 2) {
		/* As etcd's snapshotSender: a failed post marks the peer
		 * inactive, whatever the cause. */
		pstat_add(gw, tx->to, PS_SENT_FAIL, 1);
		pstat_active(gw, tx->to, 0);
		if (code == 0) {
			const char *tls = gw_tls_conn_error(tx->evcon);
			tx_end(tx, 1, 1, tls ? tls : "peer unreachable");
			return;
		}
		if (peer_conflict(gw, req)) {
			tx_end(tx, 1, 1, "cluster ID mismatch");
			return;
		}
		/* The follower's reason, on one line. */
		struct evbuffer *b = evhttp_request_get_input_buffer(req);
		size_t n = evbuffer_get_length(b);
		char text[100];
		if (n >= sizeof(text))
			n = sizeof(text) - 1;
		evbuffer_copyout(b, text, n);
		text[n] = 0;
		text[strcspn(text, "\r\n")] = 0;
		snprintf(why, sizeof(why), "peer answered %d %s", code, text);
		tx_end(tx, 1, 1, why);
		return;
	}
	pstat_add(gw, tx->to, PS_SENT_BYTES, tx->out_bytes);
	pstat_active(gw, tx->to, 1);
	if (tx->state == TX_FINAL) {
		tx_end(tx, 0, 1, NULL);
		return;
	}
	tx->bytes += tx->out_bytes;
	progress(tx);
	send_next(tx);
}

/* storaged has handed over every file: start streaming. */
static void start_stream(struct snap_tx *tx)
{
	struct gw *gw = tx->s->gw;
	if (!tx->n_files) {
		tx_end(tx, 1, 1, "the snapshot has no files");
		return;
	}
	tx->evcon = gw_tls_connect(gw, tx->host, tx->port, tx->https);
	if (!tx->evcon) {
		tx_end(tx, 1, 1, "out of memory");
		return;
	}
	evhttp_connection_set_timeout(tx->evcon, SNAP_STALL_MS / 1000);
	evhttp_connection_set_retries(tx->evcon, 0);
	tx->state = TX_SENDING;
	send_next(tx);
}

void snap_on_file(struct gw *gw, uint64_t tid, const uint8_t *body,
		  size_t len, int fd)
{
	struct snaps *s = gw->snaps;
	struct snap_tx *tx = s ? u64map_get(&s->by_tid, tid) : NULL;
	Ipc__SnapFile *f = MSG_UNPACK(Ipc__SnapFile, ipc__snap_file, body, len);
	if (!f)
		worker_fatal(gw->w, "gatewayd: bad MSG_SNAP_FILE from storaged");
	if (!tx || tx->state != TX_MAKING) {
		/* A transfer that ended meanwhile (timeout, peer gone). */
		if (fd >= 0)
			close(fd);
	} else if (f->last) {
		if (fd >= 0)
			close(fd);
		if (f->error)
			tx_end(tx, 1, 1, f->error->message);
		else
			start_stream(tx);
	} else if (fd < 0 || !snap_name_ok(f->name) ||
		   tx->n_files >= SNAP_MAX_FILES) {
		if (fd >= 0)
			close(fd);
		tx_end(tx, 1, 1, "storaged sent an unusable file");
	} else {
		if (tx->n_files == tx->cap_files) {
			size_t cap = tx->cap_files ? 2 * tx->cap_files : 16;
			struct snap_file *nf = realloc(tx->files, cap * sizeof(*nf));
			if (!nf) {
				close(fd);
				tx_end(tx, 1, 1, "out of memory");
				goto out;
			}
			tx->files = nf;
			tx->cap_files = cap;
		}
		struct snap_file *sf = &tx->files[tx->n_files];
		if (!(sf->name = strdup(f->name))) {
			close(fd);
			tx_end(tx, 1, 1, "out of memory");
			goto out;
		}
		sf->size = f->size;
		sf->fd = fd;
		tx->n_files++;
		progress(tx);
	}
out:
	protobuf_c_message_free_unpacked(&f->base, NULL);
}

/* Tells raftd a MsgSnap it sent will not arrive. */
static void report_failed(struct gw *gw, uint64_t to, const char *why)
{
	Ipc__SnapStatus st = IPC__SNAP_STATUS__INIT;
	st.to = to;
	st.failed = 1;
	worker_send_pb(gw->w, PROC_RAFTD, MSG_SNAP_STATUS, 0, &st.base);
	pstat_add(gw, to, PS_SNAP_SEND_FAIL, 1);
	log_warn("rafthttp", "dropped MsgSnap to %" PRIx64 ": %s", to, why);
}

void snap_send_msg(struct gw *gw, const uint8_t *body, size_t len,
		   uint64_t to)
{
	struct snaps *s = gw->snaps;
	const char *host;
	int port, https;
	if (!s) { /* shutting down: raft still expects an end */
		report_failed(gw, to, "gatewayd is stopping");
		return;
	}
	if (u64map_get(&s->by_to, to)) {
		/* raft waits for the one in flight: its end is reported. */
		uint64_t now = gw_now_ms();
		if (now >= s->warn_at_ms) {
			log_warn("rafthttp", "dropped MsgSnap to %" PRIx64
				 ": a snapshot is already being sent", to);
			s->warn_at_ms = now + WARN_EVERY_MS;
		}
		return;
	}
	if (peer_addr(gw, to, &host, &port, &https) < 0) {
		report_failed(gw, to, "no peer URL known");
		return;
	}
	if (!gw->w->peer[PROC_STORAGED]) {
		report_failed(gw, to, "storaged is not available");
		return;
	}
	Raftpb__Message *m = MSG_UNPACK(Raftpb__Message, raftpb__message, body,
					len);
	if (!m || !m->snapshot || !m->snapshot->metadata) {
		if (m)
			protobuf_c_message_free_unpacked(&m->base, NULL);
		report_failed(gw, to, "malformed MsgSnap");
		return;
	}
	struct snap_tx *tx = calloc(1, sizeof(*tx));
	if (tx) {
		tx->s = s;
		LIST_INSERT_HEAD(&s->all, tx, le);
		tx->to = to;
		tx->index = m->snapshot->metadata->index;
		tx->term = m->snapshot->metadata->term;
		tx->tid = reqid_next(&gw->ids);
		tx->started_ms = gw_now_ms();
		tx->msg = malloc(len);
		tx->host = strdup(host);
		tx->port = port;
		tx->https = https;
		tx->md = EVP_MD_CTX_new();
		tx->ev = evtimer_new(gw->base, on_timer, tx);
	}
	protobuf_c_message_free_unpacked(&m->base, NULL);
	if (!tx || !tx->msg || !tx->host || !tx->md || !tx->ev ||
	    !EVP_DigestInit_ex(tx->md, EVP_sha256(), NULL) ||
	    u64map_put(&s->by_to, to, tx) < 0) {
		tx_free(tx);
		report_failed(gw, to, "out of memory");
		return;
	}
	if (u64map_put(&s->by_tid, tx->tid, tx) < 0) {
		u64map_del(&s->by_to, to);
		tx_free(tx);
		report_failed(gw, to, "out of memory");
		return;
	}
	memcpy(tx->msg, body, len);
	tx->msg_len = len;
	log_info("rafthttp", "start to send database snapshot [index: %" PRIu64
		 ", to: %" PRIx64 "]...", tx->index, to);
	Ipc__SnapMake mk = IPC__SNAP_MAKE__INIT;
	mk.to = to;
	mk.index = tx->index;
	mk.term = tx->term;
	if (worker_send_pb(gw->w, PROC_STORAGED, MSG_SNAP_MAKE, tx->tid,
			   &mk.base) < 0) {
		tx_end(tx, 1, 1, "storaged is not available");
		return;
	}
	progress(tx);
}

/* Ends every transfer (or those still being made). */
static void end_all(struct gw *gw, int making_only, int tell_raftd,
		    const char *why)
{
	struct snaps *s = gw->snaps;
	struct snap_tx *list[PEER_MAX_MEMBERS * 2];
	size_t n = 0;
	if (!s)
		return;
	/* Collect first: ending one reorders the map. */
	for (size_t i = 0; i < s->by_to.cap && n < sizeof(list) / sizeof(list[0]);
	     i++) {
		struct snap_tx *tx = s->by_to.slot[i].val;
		if (tx && (!making_only || tx->state == TX_MAKING))
			list[n++] = tx;
	}
	for (size_t i = 0; i < n; i++)
		tx_end(list[i], 1, tell_raftd, why);
}

void snap_raftd_down(struct gw *gw)
{
	/* The raftd that asked is gone; a new one sends its own MsgSnap. */
	end_all(gw, 0, 0, "raftd went away");
}

void snap_storaged_down(struct gw *gw)
{
	/* Files already handed over stay readable: only the making fails. */
	end_all(gw, 1, 1, "storaged went away");
	snap_rx_fail(gw, 503, "storaged is not available");
}

size_t snap_sending(struct gw *gw)
{
	return gw->snaps ? gw->snaps->by_to.n : 0;
}

void snap_set_stall_ms(struct gw *gw, uint32_t ms)
{
	if (gw->snaps)
		gw->snaps->stall_ms = ms;
}

int snap_init(struct gw *gw)
{
	struct snaps *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->gw = gw;
	s->stall_ms = SNAP_STALL_MS;
	LIST_INIT(&s->all);
	gw->snaps = s;
	return 0;
}

void snap_done(struct gw *gw)
{
	struct snaps *s = gw->snaps;
	if (!s)
		return;
	struct snap_tx *tx;
	snap_rx_done(gw);
	/* Live and ended transfers alike: the loop will not run again. */
	while ((tx = LIST_FIRST(&s->all)))
		tx_free(tx);
	u64map_clear(&s->by_to);
	u64map_clear(&s->by_tid);
	free(s);
	gw->snaps = NULL;
}
