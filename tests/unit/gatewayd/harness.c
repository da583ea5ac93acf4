/* The HTTP-level harness of gatewayd's tests: fakes, clients, wiring. */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "harness.h"
#include "metrics.h"

int failures;
struct event_base *base;
struct worker w;
struct gw gw;
struct link *fake_raft, *fake_stor, *fake_sup;
int client_port, peer_port;

int n_readindex, n_propose, n_query;
int hold_readindex;
uint64_t held_ri[16];
int n_held_ri;
int drop_proposals;
int64_t revision = 1;
Etcdserverpb__InternalRaftRequest *last_irr;
uint64_t last_min_applied;

struct fake_create creates[FAKE_MAX];
int n_creates;
uint64_t cancels[4 * FAKE_MAX];
int n_cancels;
int auto_created = 1;
int n_metrics_asked[PROC_MAX];
uint8_t raft_msgs[FAKE_RAFT_MSGS][256];
size_t raft_msg_len[FAKE_RAFT_MSGS];
int n_raft_msgs;
char last_fatal[256];
uint64_t extra_member_id;
char extra_member_url[64];
int metrics_silent[PROC_MAX];
int (*stor_hook)(const struct msg_hdr *hdr, const uint8_t *body, int fd);
int (*raft_hook)(const struct msg_hdr *hdr, const uint8_t *body, int fd);

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* gatewayd's ends of the links, as common/worker.c wires them. */
static void gw_link_msg(struct link *l, const struct msg_hdr *hdr,
			const uint8_t *body, int fd, void *arg)
{
	(void)l;
	gatewayd_ops.on_msg(&w, (enum proc_role)(intptr_t)arg, hdr, body, fd);
}

static void gw_link_close(struct link *l, void *arg)
{
	enum proc_role role = (enum proc_role)(intptr_t)arg;
	if (role == PROC_SUPERVISOR || w.peer[role] != l)
		return;
	w.peer[role] = NULL;
	link_free(l);
	gatewayd_ops.on_peer_down(&w, role);
}

static void send_result(uint64_t id, Ipc__Result *r)
{
	link_send_pb(fake_stor, MSG_RESULT, id, &r->base);
}

/* Each fake answers MSG_METRICS with one metric of its own. */
static void answer_metrics(struct link *l, enum proc_role role, uint64_t id)
{
	struct arena a;
	struct metrics_out o;
	static const char *names[PROC_MAX] = {
		[PROC_SUPERVISOR] = "etcd_test_supervisor_up",
		[PROC_RAFTD] = "etcd_server_has_leader",
		[PROC_STORAGED] = "etcd_mvcc_db_total_size_in_bytes",
	};
	n_metrics_asked[role]++;
	if (metrics_silent[role])
		return;
	arena_init(&a, 0);
	metrics_out_init(&o, &a);
	metrics_add(&o, METRIC_GAUGE, names[role], "A test metric.",
		    role == PROC_STORAGED ? 20480 : 1, NULL, NULL);
	link_send_pb(l, MSG_METRICS_RESP, id, &o.msg.base);
	arena_done(&a);
}

static void fake_sup_msg(struct link *l, const struct msg_hdr *hdr,
			 const uint8_t *body, int fd, void *arg)
{
	(void)fd;
	(void)arg;
	if (hdr->type == MSG_METRICS)
		answer_metrics(l, PROC_SUPERVISOR, hdr->id);
	if (hdr->type == MSG_FATAL) {
		Ipc__Error *e = ipc__error__unpack(NULL, hdr->len, body);
		assert(e);
		snprintf(last_fatal, sizeof(last_fatal), "%s", e->message);
		ipc__error__free_unpacked(e, NULL);
	}
}

static void fake_raft_msg(struct link *l, const struct msg_hdr *hdr,
			  const uint8_t *body, int fd, void *arg)
{
	(void)arg;
	if (raft_hook && raft_hook(hdr, body, fd))
		return;
	if (fd >= 0)
		close(fd);
	if (hdr->type == MSG_METRICS) {
		answer_metrics(l, PROC_RAFTD, hdr->id);
		return;
	}
	if (hdr->type == MSG_READINDEX) {
		n_readindex++;
		if (hold_readindex) {
			held_ri[n_held_ri++] = hdr->id;
			return;
		}
		Ipc__ReadIndexResp r = IPC__READ_INDEX_RESP__INIT;
		r.index = 7;
		link_send_pb(fake_raft, MSG_READINDEX_RESP, hdr->id, &r.base);
		return;
	}
	if (hdr->type == MSG_RAFT_MSG) {
		if (n_raft_msgs < FAKE_RAFT_MSGS && hdr->len <= 256) {
			memcpy(raft_msgs[n_raft_msgs], body, hdr->len);
			raft_msg_len[n_raft_msgs] = hdr->len;
		}
		n_raft_msgs++;
		return;
	}
	if (hdr->type != MSG_PROPOSE)
		return;
	n_propose++;
	Etcdserverpb__InternalRaftRequest *irr =
		etcdserverpb__internal_raft_request__unpack(NULL, hdr->len, body);
	assert(irr);
	CHECK(irr->header && irr->header->id == hdr->id && irr->id == hdr->id,
	      "proposal IDs");
	CHECK(hdr->id >> 48 == (MEMBER & 0xffff), "request ID prefix");
	if (!drop_proposals) {
		/* Committed and applied at once: storaged answers. */
		Ipc__Result r = IPC__RESULT__INIT;
		Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
		Etcdserverpb__PutResponse pr = ETCDSERVERPB__PUT_RESPONSE__INIT;
		Etcdserverpb__TxnResponse tr = ETCDSERVERPB__TXN_RESPONSE__INIT;
		Etcdserverpb__LeaseGrantResponse lg =
			ETCDSERVERPB__LEASE_GRANT_RESPONSE__INIT;
		Etcdserverpb__LeaseRevokeResponse lr =
			ETCDSERVERPB__LEASE_REVOKE_RESPONSE__INIT;
		Ipc__Error e = IPC__ERROR__INIT;
		h.revision = irr->put || irr->txn ? ++revision : revision;
		if ((irr->put && irr->put->lease == 99) ||
		    (irr->lease_revoke && irr->lease_revoke->id == 404)) {
			e.code = 5;
			e.message = "etcdserver: requested lease not found";
			r.error = &e;
		} else if (irr->put) {
			pr.header = &h;
			r.response_case = IPC__RESULT__RESPONSE_PUT;
			r.put = &pr;
		} else if (irr->txn) {
			tr.header = &h;
			tr.succeeded = 1;
			r.response_case = IPC__RESULT__RESPONSE_TXN;
			r.txn = &tr;
		} else if (irr->lease_grant) {
			lg.header = &h;
			lg.id = irr->lease_grant->id;
			lg.ttl = irr->lease_grant->ttl < 2 ? 2 : irr->lease_grant->ttl;
			r.response_case = IPC__RESULT__RESPONSE_LEASE_GRANT;
			r.lease_grant = &lg;
		} else if (irr->lease_revoke) {
			lr.header = &h;
			r.response_case = IPC__RESULT__RESPONSE_LEASE_REVOKE;
			r.lease_revoke = &lr;
		}
		send_result(hdr->id, &r);
	}
	if (last_irr)
		etcdserverpb__internal_raft_request__free_unpacked(last_irr, NULL);
	last_irr = irr;
}

static void fake_watch_msg(const struct msg_hdr *hdr, const uint8_t *body)
{
	if (hdr->type == MSG_WATCH_CANCEL) {
		Ipc__WatchCancel *c = ipc__watch_cancel__unpack(NULL, hdr->len, body);
		assert(c);
		for (size_t i = 0; i < c->n_watchers; i++)
			if (n_cancels < 4 * FAKE_MAX)
				cancels[n_cancels++] = c->watchers[i];
		ipc__watch_cancel__free_unpacked(c, NULL);
		return;
	}
	Ipc__WatchCreate *c = ipc__watch_create__unpack(NULL, hdr->len, body);
	assert(c && c->req);
	struct fake_create *fc = &creates[n_creates < FAKE_MAX ? n_creates++ : 0];
	memset(fc, 0, sizeof(*fc));
	fc->watcher = c->watcher;
	fc->start = c->req->start_revision;
	fc->watch_id = c->req->watch_id;
	fc->resume = c->resume;
	fc->prev_kv = c->req->prev_kv;
	fc->fragment = c->req->fragment;
	memcpy(fc->key, c->req->key.data,
	       c->req->key.len < sizeof(fc->key) - 1 ? c->req->key.len
						     : sizeof(fc->key) - 1);
	if (auto_created) {
		Ipc__WatchHit hit = IPC__WATCH_HIT__INIT, *hits[] = { &hit };
		hit.watcher = c->watcher;
		hit.created = 1;
		send_events(revision, NULL, 0, hits, 1);
	}
	ipc__watch_create__free_unpacked(c, NULL);
}

static void fake_stor_msg(struct link *l, const struct msg_hdr *hdr,
			  const uint8_t *body, int fd, void *arg)
{
	(void)arg;
	if (stor_hook && stor_hook(hdr, body, fd))
		return;
	if (fd >= 0)
		close(fd);
	if (hdr->type == MSG_METRICS) {
		answer_metrics(l, PROC_STORAGED, hdr->id);
		return;
	}
	if (hdr->type == MSG_WATCH_CREATE || hdr->type == MSG_WATCH_CANCEL) {
		fake_watch_msg(hdr, body);
		return;
	}
	if (hdr->type != MSG_QUERY)
		return;
	n_query++;
	Ipc__Query *q = ipc__query__unpack(NULL, hdr->len, body);
	assert(q);
	last_min_applied = q->min_applied;
	Ipc__Result r = IPC__RESULT__INIT;
	Ipc__Error e = IPC__ERROR__INIT;
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	Etcdserverpb__RangeResponse rr = ETCDSERVERPB__RANGE_RESPONSE__INIT;
	Etcdserverpb__MemberListResponse ml = ETCDSERVERPB__MEMBER_LIST_RESPONSE__INIT;
	Etcdserverpb__StatusResponse st = ETCDSERVERPB__STATUS_RESPONSE__INIT;
	Etcdserverpb__LeaseTimeToLiveResponse tl =
		ETCDSERVERPB__LEASE_TIME_TO_LIVE_RESPONSE__INIT;
	Etcdserverpb__LeaseLeasesResponse ll = ETCDSERVERPB__LEASE_LEASES_RESPONSE__INIT;
	Etcdserverpb__LeaseStatus ls1 = ETCDSERVERPB__LEASE_STATUS__INIT,
				  ls2 = ETCDSERVERPB__LEASE_STATUS__INIT,
				  *lss[] = { &ls1, &ls2 };
	Etcdserverpb__LeaseKeepAliveResponse ka =
		ETCDSERVERPB__LEASE_KEEP_ALIVE_RESPONSE__INIT;
	Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT, *kvs[] = { &kv };
	Etcdserverpb__Member m = ETCDSERVERPB__MEMBER__INIT,
			     m2 = ETCDSERVERPB__MEMBER__INIT, *ms[] = { &m, &m2 };
	char *purl[] = { "http://127.0.0.1:2380" }, *purl2[] = { extra_member_url };
	h.revision = revision;
	e.code = 5;
	e.message = "etcdserver: requested lease not found";
	switch (q->query_case) {
	case IPC__QUERY__QUERY_RANGE:
		/* Linearizable reads come at the read index, others at 0. */
		CHECK(q->min_applied == (q->range->serializable ? 0u : 7u),
		      "min_applied %llu", (unsigned long long)q->min_applied);
		rr.header = &h;
		if (q->range->key.len == 3 && !memcmp(q->range->key.data, "foo", 3)) {
			kv.key = q->range->key;
			kv.value.data = (uint8_t *)"bar";
			kv.value.len = 3;
			kv.create_revision = kv.mod_revision = 2;
			kv.version = 1;
			rr.kvs = kvs;
			rr.n_kvs = 1;
			rr.count = 1;
		}
		r.response_case = IPC__RESULT__RESPONSE_RANGE;
		r.range = &rr;
		break;
	case IPC__QUERY__QUERY_MEMBER_LIST:
		m.id = MEMBER;
		m.name = "m1";
		m.peerurls = purl;
		m.n_peerurls = 1;
		ml.header = NULL; /* gatewayd makes one */
		ml.members = ms;
		ml.n_members = 1;
		if (extra_member_id) {
			m2.id = extra_member_id;
			m2.name = "m2";
			m2.peerurls = purl2;
			m2.n_peerurls = 1;
			ml.n_members = 2;
		}
		r.response_case = IPC__RESULT__RESPONSE_MEMBER_LIST;
		r.member_list = &ml;
		break;
	case IPC__QUERY__QUERY_STATUS:
		st.header = &h;
		st.dbsize = 20480;
		st.raftappliedindex = 5;
		st.dbsizeinuse = 16384;
		r.response_case = IPC__RESULT__RESPONSE_STATUS;
		r.status = &st;
		break;
	case IPC__QUERY__QUERY_LEASE_TIME_TO_LIVE:
		if (q->lease_time_to_live->id == 404) {
			r.error = &e;
			break;
		}
		tl.header = &h;
		tl.id = q->lease_time_to_live->id;
		tl.ttl = 30;
		tl.grantedttl = 60;
		r.response_case = IPC__RESULT__RESPONSE_LEASE_TIME_TO_LIVE;
		r.lease_time_to_live = &tl;
		break;
	case IPC__QUERY__QUERY_LEASE_LEASES:
		ls1.id = 1;
		ls2.id = 2;
		ll.header = &h;
		ll.leases = lss;
		ll.n_leases = 2;
		r.response_case = IPC__RESULT__RESPONSE_LEASE_LEASES;
		r.lease_leases = &ll;
		break;
	case IPC__QUERY__QUERY_LEASE_KEEP_ALIVE:
		/* Both shapes of "not found": an error, or TTL 0. */
		if (q->lease_keep_alive->id == 404) {
			r.error = &e;
			break;
		}
		ka.header = &h;
		ka.id = q->lease_keep_alive->id;
		ka.ttl = ka.id && ka.id != 405 ? 30 : 0;
		r.response_case = IPC__RESULT__RESPONSE_LEASE_KEEP_ALIVE;
		r.lease_keep_alive = &ka;
		break;
	default:
		break;
	}
	send_result(hdr->id, &r);
	ipc__query__free_unpacked(q, NULL);
}

void send_events(int64_t rev, Mvccpb__Event **evs, size_t n,
		 Ipc__WatchHit **hits, size_t nh)
{
	Ipc__WatchEvents we = IPC__WATCH_EVENTS__INIT;
	we.revision = rev;
	we.events = evs;
	we.n_events = n;
	we.hits = hits;
	we.n_hits = nh;
	link_send_pb(fake_stor, MSG_WATCH_EVENTS, 0, &we.base);
}

static void fake_close(struct link *l, void *arg)
{
	(void)l;
	(void)arg;
}

void connect_peer(enum proc_role role)
{
	int sp[2];
	static link_msg_fn *fakes[PROC_MAX] = {
		[PROC_SUPERVISOR] = fake_sup_msg,
		[PROC_RAFTD] = fake_raft_msg,
		[PROC_STORAGED] = fake_stor_msg,
	};
	assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0);
	struct link *g = link_new(base, sp[0], proc_name(role), 0, gw_link_msg,
				  gw_link_close, (void *)(intptr_t)role);
	struct link *f = link_new(base, sp[1], "fake", 0, fakes[role],
				  fake_close, NULL);
	if (role == PROC_SUPERVISOR) {
		w.sup = g;
		fake_sup = f;
	} else {
		w.peer[role] = g;
		if (role == PROC_RAFTD)
			fake_raft = f;
		else
			fake_stor = f;
	}
}

void restart_storaged(void)
{
	link_free(fake_stor);
	fake_stor = NULL;
	/* gatewayd notices the close. */
	while (w.peer[PROC_STORAGED])
		event_base_loop(base, EVLOOP_ONCE);
	connect_peer(PROC_STORAGED);
	gatewayd_ops.on_peer_up(&w, PROC_STORAGED);
}

void send_raft_state(uint64_t leader)
{
	Ipc__RaftState s = IPC__RAFT_STATE__INIT;
	s.term = 2;
	s.leader = leader;
	s.commit = 5;
	s.is_member = 1;
	link_send_pb(fake_raft, MSG_RAFT_STATE, 0, &s.base);
}

void pump_ms(int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	while (now_ms() < end) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		poll(NULL, 0, 1);
	}
}

static int listen_tcp(int *ret_port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert(fd >= 0);
	assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	assert(listen(fd, 64) == 0);
	assert(getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
	*ret_port = ntohs(a.sin_port);
	return fd;
}

static void on_response(struct evhttp_request *req, void *arg)
{
	struct exchange *x = arg;
	x->done = 1;
	if (!req) {
		x->status = -1;
		return;
	}
	x->status = evhttp_request_get_response_code(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	if (n >= sizeof(x->body))
		n = sizeof(x->body) - 1;
	evbuffer_remove(in, x->body, n);
	x->body[n] = 0;
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const char *v;
	if ((v = evhttp_find_header(h, "Content-Type")))
		snprintf(x->ctype, sizeof(x->ctype), "%s", v);
	if ((v = evhttp_find_header(h, "Access-Control-Allow-Origin")))
		snprintf(x->cors, sizeof(x->cors), "%s", v);
	if ((v = evhttp_find_header(h, "Grpc-Metadata-Content-Type")))
		snprintf(x->grpc_ct, sizeof(x->grpc_ct), "%s", v);
	if ((v = evhttp_find_header(h, "X-Etcd-Index")))
		snprintf(x->etcd_index, sizeof(x->etcd_index), "%s", v);
	if ((v = evhttp_find_header(h, "X-Etcd-Cluster-Id")))
		snprintf(x->cluster, sizeof(x->cluster), "%s", v);
	if ((v = evhttp_find_header(h, "Allow")))
		snprintf(x->allow, sizeof(x->allow), "%s", v);
}

const char *request_ctype;

void start(struct exchange *x, int port, enum evhttp_cmd_type m,
	   const char *path, const char *body, size_t blen)
{
	memset(x, 0, sizeof(*x));
	x->evcon = evhttp_connection_base_new(base, NULL, "127.0.0.1",
					      (unsigned short)port);
	struct evhttp_request *req = evhttp_request_new(on_response, x);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "x");
	if (request_ctype)
		evhttp_add_header(evhttp_request_get_output_headers(req),
				  "Content-Type", request_ctype);
	if (body)
		evbuffer_add(evhttp_request_get_output_buffer(req), body, blen);
	evhttp_make_request(x->evcon, req, m, path);
}

void finish(struct exchange *x)
{
	while (!x->done)
		event_base_loop(base, EVLOOP_ONCE);
	evhttp_connection_free(x->evcon);
}

static struct exchange X;

struct exchange *http(enum evhttp_cmd_type m, const char *path,
		      const char *body)
{
	start(&X, client_port, m, path, body, body ? strlen(body) : 0);
	finish(&X);
	return &X;
}

void raw_start(struct raw *r, const char *path, const char *body, int rcvbuf)
{
	raw_start_method(r, "POST", path, body, rcvbuf);
}

void raw_start_method(struct raw *r, const char *method, const char *path,
		      const char *body, int rcvbuf)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	char head[256];
	memset(r, 0, sizeof(*r));
	r->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert(r->fd >= 0);
	if (rcvbuf)
		setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((unsigned short)client_port);
	assert(connect(r->fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	int n = snprintf(head, sizeof(head),
			 "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n",
			 method, path, strlen(body));
	assert(write(r->fd, head, (size_t)n) == n);
	assert(write(r->fd, body, strlen(body)) == (ssize_t)strlen(body));
	fcntl(r->fd, F_SETFL, O_NONBLOCK);
}

void raw_pump(struct raw *r)
{
	event_base_loop(base, EVLOOP_NONBLOCK);
	for (;;) {
		if (r->cap - r->len < 65536) {
			r->cap = r->cap ? 2 * r->cap : 1 << 20;
			r->buf = realloc(r->buf, r->cap + 1);
			assert(r->buf);
		}
		ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len);
		if (n > 0) {
			r->len += (size_t)n;
			continue;
		}
		if (n == 0)
			r->eof = 1;
		break;
	}
	if (r->buf)
		r->buf[r->len] = 0;
}

char *raw_body(const struct raw *r, int *ret_chunks, int *ret_ended)
{
	char *out = calloc(1, r->len + 1);
	const char *p = r->buf ? strstr(r->buf, "\r\n\r\n") : NULL;
	size_t o = 0;
	int chunks = 0, ended = 0;
	assert(out);
	if (p) {
		p += 4;
		const char *end = r->buf + r->len;
		while (p < end) {
			char *nl;
			unsigned long sz = strtoul(p, &nl, 16);
			if (nl + 2 > end || nl[0] != '\r')
				break;
			if (sz == 0) {
				ended = 1;
				break;
			}
			if (nl + 2 + sz + 2 > end)
				break;
			memcpy(out + o, nl + 2, sz);
			o += sz;
			chunks++;
			p = nl + 2 + sz + 2;
		}
	}
	if (ret_chunks)
		*ret_chunks = chunks;
	if (ret_ended)
		*ret_ended = ended;
	return out;
}

int raw_wait(struct raw *r, const char *needle, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	do {
		raw_pump(r);
		char *b = raw_body(r, NULL, NULL);
		int found = strstr(b, needle) != NULL;
		free(b);
		if (found)
			return 1;
		poll(NULL, 0, 1);
	} while (now_ms() < end);
	return 0;
}

int raw_wait_end(struct raw *r, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	do {
		int ended;
		raw_pump(r);
		free(raw_body(r, NULL, &ended));
		if (ended || r->eof)
			return 1;
		poll(NULL, 0, 1);
	} while (now_ms() < end);
	return 0;
}

void raw_close(struct raw *r)
{
	close(r->fd);
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

Ipc__WorkerConfig harness_cfg = IPC__WORKER_CONFIG__INIT;

int harness_listen(const char *url, int peer)
{
	Ipc__Listener li = IPC__LISTENER__INIT;
	int port;
	int fd = listen_tcp(&port);
	li.url = (char *)url;
	li.peer = peer;
	gatewayd_ops.on_listener(&w, &li, fd);
	return port;
}

void harness_init(void)
{
	Ipc__WorkerConfig *cfg = &harness_cfg;
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	cfg->member_id = MEMBER;
	cfg->cluster_id = CLUSTER;
	cfg->election_timeout_ms = 1000;
	w.base = base;
	w.role = PROC_GATEWAYD;
	w.ops = &gatewayd_ops;
	w.arg = &gw;
	w.cfg = cfg;
	assert(gatewayd_ops.on_start(&w) == 0);
	connect_peer(PROC_SUPERVISOR);
	connect_peer(PROC_RAFTD);
	connect_peer(PROC_STORAGED);
	send_raft_state(MEMBER);

	Ipc__Listener li = IPC__LISTENER__INIT;
	li.url = "http://127.0.0.1:0";
	gatewayd_ops.on_listener(&w, &li, listen_tcp(&client_port));
	li.peer = 1;
	gatewayd_ops.on_listener(&w, &li, listen_tcp(&peer_port));
}

void harness_done(void)
{
	gatewayd_ops.on_stop(&w);
	link_free(w.peer[PROC_RAFTD]);
	link_free(w.peer[PROC_STORAGED]);
	link_free(w.sup);
	link_free(fake_raft);
	link_free(fake_stor);
	link_free(fake_sup);
	if (last_irr)
		etcdserverpb__internal_raft_request__free_unpacked(last_irr, NULL);
	event_base_free(base);
	if (failures)
		fprintf(stderr, "%d failures\n", failures);
}
