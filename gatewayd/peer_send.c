/*
 * The sending half of the peer transport: per peer member one persistent
 * evhttp connection, one POST /raft in flight, and a queue of what raftd
 * sent meanwhile that leaves as the next request's body when the answer
 * comes. Peer URLs come from storaged's member list (the configuration's
 * initial members until it answers).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "gw.h"
#include "gw_tls.h"
#include "log.h"
#include "peer.h"

#define WARN_EVERY_MS 5000

struct peer {
	struct peers *ps;
	uint64_t id;
	char *url;                 /* the first peer URL */
	char *host;
	int port;
	int https;
	struct evhttp_connection *evcon; /* made on the first send */
	/* evcon closed or failed: replaced before the next request, as
	 * libevent cannot reconnect a TLS bufferevent. */
	int stale;
	struct evbuffer *q;        /* {u32 le length, message} waiting */
	uint64_t q_msgs;           /* messages in q */
	int inflight;
	uint64_t inflight_msgs, inflight_bytes; /* of the request out */
	uint64_t retry_at_ms;      /* failed: messages dropped until then */
	unsigned backoff_ms;
	uint64_t dropped;          /* since the last warning */
	uint64_t warn_at_ms;       /* no warning before this */
	int seen;                  /* in the last member list */
};

struct peers {
	struct gw *gw;
	struct u64map by_id;       /* member id -> struct peer */
	uint64_t ml_id;            /* our member-list query in flight, or 0 */
	int unknown_seen;          /* raftd sent to a member we know no URL of */
	uint64_t unknown_dropped, unknown_warn_at;
	struct event *timer;       /* asks storaged for the member list */
	struct event *flush_ev;    /* sends the batches at the end of a pass */
	char cid[17], from[17];    /* our cluster and member IDs in hex */
	uint64_t *removed;         /* IDs removed from the cluster, sorted */
	size_t n_removed;
};

static int varint(const uint8_t *b, size_t len, size_t *i, uint64_t *ret_v)
{
	uint64_t v = 0;
	for (int s = 0;; s += 7) {
		if (*i >= len || s > 63)
			return -EINVAL;
		v |= (uint64_t)(b[*i] & 0x7f) << s;
		if (!(b[(*i)++] & 0x80))
			break;
	}
	*ret_v = v;
	return 0;
}

int peer_msg_peek(const uint8_t *b, size_t len, uint64_t *ret_to,
		  uint32_t *ret_type)
{
	uint64_t to = 0, type = 0;
	size_t i = 0;
	while (i < len) {
		uint64_t tag, v;
		if (varint(b, len, &i, &tag) < 0)
			return -EINVAL;
		unsigned wt = tag & 7;
		if (wt == 0) {
			if (varint(b, len, &i, &v) < 0)
				return -EINVAL;
			if (tag >> 3 == 1)
				type = v;
			else if (tag >> 3 == 2)
				to = v;
		} else if (wt == 2) {
			if (varint(b, len, &i, &v) < 0 || v > len - i)
				return -EINVAL;
			i += (size_t)v;
		} else if (wt == 1 || wt == 5) {
			size_t n = wt == 1 ? 8 : 4;
			if (n > len - i)
				return -EINVAL;
			i += n;
		} else {
			return -EINVAL;
		}
	}
	/* proto3 leaves a zero `to` out; zero is no member. */
	if (!to || type > UINT32_MAX)
		return -EINVAL;
	*ret_to = to;
	*ret_type = (uint32_t)type;
	return 0;
}

int peer_msg_to(const uint8_t *b, size_t len, uint64_t *ret_to)
{
	uint32_t type;
	return peer_msg_peek(b, len, ret_to, &type);
}

static void peer_free(struct peer *p)
{
	if (!p)
		return;
	if (p->evcon)
		evhttp_connection_free(p->evcon); /* drops a request in flight */
	if (p->q)
		evbuffer_free(p->q);
	free(p->url);
	free(p->host);
	free(p);
}

/* http or https, with a host and port. */
static int parse_url(const char *url, char **ret_host, int *ret_port,
		     int *ret_https)
{
	struct evhttp_uri *u = evhttp_uri_parse(url);
	if (!u)
		return -EINVAL;
	const char *scheme = evhttp_uri_get_scheme(u);
	const char *host = evhttp_uri_get_host(u);
	int port = evhttp_uri_get_port(u);
	int ret = -EINVAL;
	int https = scheme && strcmp(scheme, "https") == 0;
	if (scheme && (https || strcmp(scheme, "http") == 0) && host && *host) {
		/* evhttp keeps an IPv6 literal's brackets; connect and
		 * verification want the address alone. */
		size_t n = strlen(host);
		char *h = host[0] == '[' && host[n - 1] == ']'
			? strndup(host + 1, n - 2) : strdup(host);
		if (!h) {
			ret = -ENOMEM;
		} else {
			*ret_host = h;
			*ret_port = port > 0 ? port : https ? 443 : 80;
			*ret_https = https;
			ret = 0;
		}
	}
	evhttp_uri_free(u);
	return ret;
}

int peer_set_url(struct gw *gw, uint64_t id, const char *url)
{
	struct peers *ps = gw->peers;
	struct peer *p = u64map_get(&ps->by_id, id);
	if (id == gw->member_id || id == 0)
		return 0;
	if (!url || !*url) {
		peer_free(u64map_del(&ps->by_id, id));
		return 0;
	}
	if (p && strcmp(p->url, url) == 0) {
		p->seen = 1;
		return 0;
	}
	if (!p && ps->by_id.n >= PEER_MAX_MEMBERS)
		return -ENOSPC;
	char *host, *u = strdup(url);
	int port, https, ret;
	if (!u)
		return -ENOMEM;
	if ((ret = parse_url(url, &host, &port, &https)) < 0) {
		free(u);
		return ret;
	}
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p || !(p->q = evbuffer_new()) ||
		    u64map_put(&ps->by_id, id, p) < 0) {
			if (p && p->q)
				evbuffer_free(p->q);
			free(p);
			free(u);
			free(host);
			return -ENOMEM;
		}
		p->ps = ps;
		p->id = id;
	} else if (p->evcon) {
		/* Moved: a new connection, to the new address. */
		evhttp_connection_free(p->evcon);
		p->evcon = NULL;
		p->inflight = 0;
	}
	free(p->url);
	free(p->host);
	p->url = u;
	p->host = host;
	p->port = port;
	p->https = https;
	p->stale = 0;
	p->seen = 1;
	return 0;
}

/* n messages to p are lost: etcd counts each as a send failure. */
static void warn_drop(struct peer *p, uint64_t n, const char *why)
{
	uint64_t now = gw_now_ms();
	pstat_add(p->ps->gw, p->id, PS_SENT_FAIL, n);
	p->dropped += n;
	if (now < p->warn_at_ms)
		return;
	log_warn("rafthttp", "dropped %llu internal raft messages to %llx: %s",
		 (unsigned long long)p->dropped, (unsigned long long)p->id, why);
	p->dropped = 0;
	p->warn_at_ms = now + WARN_EVERY_MS;
}

static void drain_queue(struct peer *p)
{
	evbuffer_drain(p->q, evbuffer_get_length(p->q));
	p->q_msgs = 0;
}

int peer_conflict(struct gw *gw, struct evhttp_request *req)
{
	if (!req || evhttp_request_get_response_code(req) != 412)
		return 0;
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req),
					   "X-Etcd-Cluster-ID");
	char *end;
	uint64_t theirs = h ? strtoull(h, &end, 16) : 0;
	if (!h || !*h || *end || theirs == gw->cluster_id)
		return 0;
	char msg[160];
	snprintf(msg, sizeof(msg),
		 "conflicting cluster ID to the target cluster "
		 "(%016llx != %016llx). Exiting.",
		 (unsigned long long)theirs, (unsigned long long)gw->cluster_id);
	if (gw->fatal_hook) {
		gw->fatal_hook(gw, msg);
		return 1;
	}
	worker_fatal(gw->w, "%s", msg);
}

int peer_is_removed(struct gw *gw, uint64_t id)
{
	struct peers *ps = gw->peers;
	size_t lo = 0, hi = ps ? ps->n_removed : 0;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ps->removed[mid] == id)
			return 1;
		if (ps->removed[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/*
 * A peer answered 410: this member was removed from the cluster while it
 * could not hear of it (down or cut off). It stops as etcd's does, with
 * exit code 0; its data dir may not be used again.
 */
static void removed_by_peer(struct gw *gw)
{
	static const char msg[] = "the member has been permanently removed "
				  "from the cluster";
	if (gw->fatal_hook) {
		gw->fatal_hook(gw, msg);
		return;
	}
	log_err("etcdserver", "%s", msg);
	log_info("etcdserver", "the data-dir used by this member must be removed.");
	worker_member_done(gw->w, msg);
}

static void post(struct peer *p);

static void on_answer(struct evhttp_request *req, void *arg)
{
	struct peer *p = arg;
	struct gw *gw = p->ps->gw;
	int code = req ? evhttp_request_get_response_code(req) : 0;
	uint64_t msgs = p->inflight_msgs;

	p->inflight = 0;
	p->inflight_msgs = 0;
	if (code == 0) {
		/* Unreachable: what waits is dropped (raftd copes with
		 * loss), and so is what comes until the retry. */
		uint64_t n = msgs + p->q_msgs;
		const char *tls = gw_tls_conn_error(p->evcon);
		p->stale = 1;
		if (tls && gw_now_ms() >= p->warn_at_ms)
			/* etcd's prober words it so. */
			log_warn("rafthttp", "health check for peer %llx could "
				 "not connect: %s", (unsigned long long)p->id,
				 tls);
		drain_queue(p);
		p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2
					      : PEER_BACKOFF_MIN_MS;
		if (p->backoff_ms > PEER_BACKOFF_MAX_MS)
			p->backoff_ms = PEER_BACKOFF_MAX_MS;
		p->retry_at_ms = gw_now_ms() + p->backoff_ms;
		pstat_active(gw, p->id, 0);
		warn_drop(p, n, tls ? tls : "peer unreachable");
		return;
	}
	if (peer_conflict(gw, req))
		return;
	if (code == 410) {
		removed_by_peer(gw);
		return;
	}
	/* As etcd's pipeline: a refused post deactivates the peer too. */
	pstat_active(gw, p->id, code / 100 == 2);
	if (code / 100 != 2)
		warn_drop(p, msgs, "peer refused the batch");
	else
		pstat_add(gw, p->id, PS_SENT_BYTES, p->inflight_bytes);
	p->backoff_ms = 0;
	p->retry_at_ms = 0;
	/* A stale connection is replaced outside its own callback. */
	if (evbuffer_get_length(p->q) && p->stale)
		event_active(p->ps->flush_ev, EV_TIMEOUT, 0);
	else if (evbuffer_get_length(p->q))
		post(p);
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
	struct peer *p = arg;
	(void)evcon;
	p->stale = 1;
}

void peer_add_headers(struct gw *gw, struct evkeyvalq *h, const char *host,
		      int port, const char *ctype)
{
	struct peers *ps = gw->peers;
	char hp[300];
	snprintf(hp, sizeof(hp), "%s:%d", host, port);
	evhttp_add_header(h, "Host", hp);
	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "X-Etcd-Cluster-ID", ps->cid);
	evhttp_add_header(h, "X-Server-From", ps->from);
	evhttp_add_header(h, "X-Server-Version", PEER_VERSION);
}

int peer_addr(struct gw *gw, uint64_t id, const char **ret_host,
	      int *ret_port, int *ret_https)
{
	struct peer *p = gw->peers ? u64map_get(&gw->peers->by_id, id) : NULL;
	if (!p)
		return -ENOENT;
	*ret_host = p->host;
	*ret_port = p->port;
	*ret_https = p->https;
	return 0;
}

void peer_nodelay(struct evhttp_connection *evcon)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
	int one = 1;
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void post(struct peer *p)
{
	struct peers *ps = p->ps;
	if (p->evcon && p->stale) {
		evhttp_connection_free(p->evcon);
		p->evcon = NULL;
	}
	if (!p->evcon) {
		p->evcon = gw_tls_connect(ps->gw, p->host, p->port, p->https);
		if (!p->evcon)
			goto fail;
		p->stale = 0;
		evhttp_connection_set_timeout(p->evcon, PEER_TIMEOUT_S);
		evhttp_connection_set_retries(p->evcon, 0);
		evhttp_connection_set_closecb(p->evcon, on_close, p);
	}
	struct evhttp_request *req = evhttp_request_new(on_answer, p);
	if (!req)
		goto fail;
	peer_add_headers(ps->gw, evhttp_request_get_output_headers(req), p->host,
			 p->port, "application/protobuf");
	/* The queue's chains move into the request: no copy. */
	p->inflight_bytes = evbuffer_get_length(p->q);
	p->inflight_msgs = p->q_msgs;
	p->q_msgs = 0;
	evbuffer_add_buffer(evhttp_request_get_output_buffer(req), p->q);
	if (evhttp_make_request(p->evcon, req, EVHTTP_REQ_POST, "/raft") < 0) {
		/* req freed by evhttp, and the messages with it */
		warn_drop(p, p->inflight_msgs, "out of memory");
		p->inflight_msgs = 0;
		return;
	}
	/* The socket exists once the request is made (connect has begun). */
	peer_nodelay(p->evcon);
	p->inflight = 1;
	return;
fail:
	warn_drop(p, p->q_msgs, "out of memory");
	drain_queue(p);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct peers *ps = arg;
	(void)fd;
	(void)what;
	for (size_t i = 0; i < ps->by_id.cap; i++) {
		struct peer *p = ps->by_id.slot[i].val;
		if (p && !p->inflight && evbuffer_get_length(p->q))
			post(p);
	}
}

void peer_send_msg(struct gw *gw, const uint8_t *body, size_t len)
{
	struct peers *ps = gw->peers;
	uint64_t to;
	uint32_t type;
	if (!ps || peer_msg_peek(body, len, &to, &type) < 0)
		return;
	/* A snapshot travels on its own connection, with the store's files. */
	if (type == PEER_MSG_SNAP) {
		snap_send_msg(gw, body, len, to);
		return;
	}
	struct peer *p = u64map_get(&ps->by_id, to);
	if (!p) {
		uint64_t now = gw_now_ms();
		ps->unknown_seen = 1;
		ps->unknown_dropped++;
		pstat_add(gw, to, PS_SENT_FAIL, 1);
		if (now >= ps->unknown_warn_at) {
			log_warn("rafthttp", "dropped %llu internal raft messages "
				 "to %llx: no peer URL known",
				 (unsigned long long)ps->unknown_dropped,
				 (unsigned long long)to);
			ps->unknown_dropped = 0;
			ps->unknown_warn_at = now + WARN_EVERY_MS;
		}
		return;
	}
	if (p->retry_at_ms && gw_now_ms() < p->retry_at_ms) {
		warn_drop(p, 1, "peer unreachable");
		return;
	}
	if (evbuffer_get_length(p->q) + 4 + len > PEER_MAX_QUEUE) {
		warn_drop(p, 1, "sending buffer is full");
		return;
	}
	uint8_t le[4] = { (uint8_t)len, (uint8_t)(len >> 8),
			  (uint8_t)(len >> 16), (uint8_t)(len >> 24) };
	if (evbuffer_add(p->q, le, 4) < 0 ||
	    evbuffer_add(p->q, body, len) < 0) {
		warn_drop(p, 1, "out of memory");
		return;
	}
	p->q_msgs++;
	/* Every message raftd sent in this pass leaves in one request. */
	if (!p->inflight)
		event_active(ps->flush_ev, EV_TIMEOUT, 0);
}

static void ask_members(struct peers *ps)
{
	struct gw *gw = ps->gw;
	Ipc__Query q = IPC__QUERY__INIT;
	Etcdserverpb__MemberListRequest ml = ETCDSERVERPB__MEMBER_LIST_REQUEST__INIT;
	if (!gw->w || !gw->w->peer[PROC_STORAGED])
		return;
	q.query_case = IPC__QUERY__QUERY_MEMBER_LIST;
	q.member_list = &ml;
	/* A query lost with a storaged restart is simply replaced. */
	ps->ml_id = reqid_next(&gw->ids);
	if (worker_send_pb(gw->w, PROC_STORAGED, MSG_QUERY, ps->ml_id, &q.base) < 0)
		ps->ml_id = 0;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct peers *ps = arg;
	(void)fd;
	(void)what;
	/* A lone member has nobody to ask about. */
	if (ps->by_id.n || ps->unknown_seen)
		ask_members(ps);
}

void peer_storaged_up(struct gw *gw)
{
	if (gw->peers)
		ask_members(gw->peers);
}

int peer_on_result(struct gw *gw, uint64_t id, const uint8_t *body, size_t len)
{
	struct peers *ps = gw->peers;
	if (!ps || !ps->ml_id || id != ps->ml_id)
		return 0;
	ps->ml_id = 0;
	Ipc__Result *r = MSG_UNPACK(Ipc__Result, ipc__result, body, len);
	if (!r)
		worker_fatal(gw->w, "gatewayd: bad MSG_RESULT from storaged");
	if (r->response_case == IPC__RESULT__RESPONSE_MEMBER_LIST &&
	    r->n_removed_ids > ps->n_removed) {
		/* Removals are for good: the list only grows. */
		uint64_t *v = realloc(ps->removed, r->n_removed_ids * sizeof(*v));
		if (v) {
			memcpy(v, r->removed_ids, r->n_removed_ids * sizeof(*v));
			ps->removed = v;
			ps->n_removed = r->n_removed_ids;
		}
	}
	if (r->response_case == IPC__RESULT__RESPONSE_MEMBER_LIST &&
	    r->member_list->n_members) {
		const Etcdserverpb__MemberListResponse *ml = r->member_list;
		for (size_t i = 0; i < ps->by_id.cap; i++) {
			struct peer *p = ps->by_id.slot[i].val;
			if (p)
				p->seen = 0;
		}
		for (size_t i = 0; i < ml->n_members; i++) {
			const Etcdserverpb__Member *m = ml->members[i];
			if (m->n_peerurls && peer_set_url(gw, m->id, m->peerurls[0]) < 0)
				log_warn("rafthttp", "cannot use peer URL %s of %llx",
					 m->peerurls[0], (unsigned long long)m->id);
		}
		/*
		 * Removed members: their connections go. Collect first, as
		 * deleting reorders the map. Not before this member is in the
		 * list: a joining member replays the adds one by one and must
		 * keep the peers it was started with (the leader among them)
		 * until its own add shows the whole membership.
		 */
		int complete = 0;
		for (size_t i = 0; i < ml->n_members; i++)
			complete |= ml->members[i]->id == gw->member_id;
		uint64_t gone[PEER_MAX_MEMBERS];
		size_t n = 0;
		for (size_t i = 0; complete && i < ps->by_id.cap; i++) {
			struct peer *p = ps->by_id.slot[i].val;
			if (p && !p->seen && n < PEER_MAX_MEMBERS)
				gone[n++] = p->id;
		}
		for (size_t i = 0; i < n; i++)
			peer_free(u64map_del(&ps->by_id, gone[i]));
		ps->unknown_seen = 0;
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 1;
}

int peer_init(struct gw *gw)
{
	const Ipc__WorkerConfig *cfg = gw->w->cfg;
	struct peers *ps = calloc(1, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	ps->gw = gw;
	snprintf(ps->cid, sizeof(ps->cid), "%llx",
		 (unsigned long long)gw->cluster_id);
	snprintf(ps->from, sizeof(ps->from), "%llx",
		 (unsigned long long)gw->member_id);
	ps->timer = event_new(gw->base, -1, EV_PERSIST, on_timer, ps);
	ps->flush_ev = event_new(gw->base, -1, 0, on_flush, ps);
	gw->peers = ps;
	if (!ps->timer || !ps->flush_ev) {
		peer_done(gw);
		return -ENOMEM;
	}
	struct timeval tv = { PEER_REFRESH_MS / 1000,
			      (PEER_REFRESH_MS % 1000) * 1000 };
	event_add(ps->timer, &tv);
	for (size_t i = 0; cfg && i < cfg->n_initial_members; i++) {
		const Etcdserverpb__Member *m = cfg->initial_members[i];
		if (m->n_peerurls && peer_set_url(gw, m->id, m->peerurls[0]) < 0)
			log_warn("rafthttp", "cannot use peer URL %s of %llx",
				 m->peerurls[0], (unsigned long long)m->id);
	}
	return 0;
}

void peer_done(struct gw *gw)
{
	struct peers *ps = gw->peers;
	if (!ps)
		return;
	for (size_t i = 0; i < ps->by_id.cap; i++)
		peer_free(ps->by_id.slot[i].val);
	u64map_clear(&ps->by_id);
	if (ps->timer)
		event_free(ps->timer);
	if (ps->flush_ev)
		event_free(ps->flush_ev);
	free(ps->removed);
	free(ps);
	gw->peers = NULL;
}
