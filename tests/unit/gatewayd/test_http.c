/*
 * gatewayd's HTTP side over real sockets: the real gatewayd code runs in
 * this process's event loop, with socketpair links to a fake raftd and a
 * fake storaged, and an evhttp client talks to it over loopback TCP.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "gatewayd.h"
#include "gw.h"
#include "raft_internal.pb-c.h"
#include "rpc.pb-c.h"

static int failures;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);        \
			fprintf(stderr, __VA_ARGS__);                          \
			fprintf(stderr, "\n");                                 \
			failures++;                                            \
		}                                                              \
	} while (0)

#define MEMBER 0x6bb9b1d4a17b1503ULL
#define CLUSTER 0xac3c15e4a1a63f2aULL

static struct event_base *base;
static struct worker w;
static struct gw gw;
static struct link *fake_raft, *fake_stor;
static int client_port, peer_port;

/* What the fakes do. */
static int n_readindex, n_propose, n_query;
static int hold_readindex;    /* keep read-index requests unanswered */
static uint64_t held_ri[16];
static int n_held_ri;
static int drop_proposals;    /* never answer proposals */
static int64_t revision = 1;

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
	if (w.peer[role] != l)
		return;
	w.peer[role] = NULL;
	link_free(l);
	gatewayd_ops.on_peer_down(&w, role);
}

static void send_result(uint64_t id, Ipc__Result *r)
{
	link_send_pb(fake_stor, MSG_RESULT, id, &r->base);
}

static void fake_raft_msg(struct link *l, const struct msg_hdr *hdr,
			  const uint8_t *body, int fd, void *arg)
{
	(void)l;
	(void)fd;
	(void)arg;
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
		Ipc__Error e = IPC__ERROR__INIT;
		h.revision = ++revision;
		if (irr->put && irr->put->lease == 99) {
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
		}
		send_result(hdr->id, &r);
	}
	etcdserverpb__internal_raft_request__free_unpacked(irr, NULL);
}

static void fake_stor_msg(struct link *l, const struct msg_hdr *hdr,
			  const uint8_t *body, int fd, void *arg)
{
	(void)l;
	(void)fd;
	(void)arg;
	if (hdr->type != MSG_QUERY)
		return;
	n_query++;
	Ipc__Query *q = ipc__query__unpack(NULL, hdr->len, body);
	assert(q);
	Ipc__Result r = IPC__RESULT__INIT;
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	Etcdserverpb__RangeResponse rr = ETCDSERVERPB__RANGE_RESPONSE__INIT;
	Etcdserverpb__MemberListResponse ml = ETCDSERVERPB__MEMBER_LIST_RESPONSE__INIT;
	Etcdserverpb__StatusResponse st = ETCDSERVERPB__STATUS_RESPONSE__INIT;
	Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT, *kvs[] = { &kv };
	Etcdserverpb__Member m = ETCDSERVERPB__MEMBER__INIT, *ms[] = { &m };
	char *purl[] = { "http://127.0.0.1:2380" };
	h.revision = revision;
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
	default:
		break;
	}
	send_result(hdr->id, &r);
	ipc__query__free_unpacked(q, NULL);
}

static void fake_close(struct link *l, void *arg)
{
	(void)l;
	(void)arg;
}

static void connect_peer(enum proc_role role)
{
	int sp[2];
	assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0);
	w.peer[role] = link_new(base, sp[0], proc_name(role), 0, gw_link_msg,
				gw_link_close, (void *)(intptr_t)role);
	struct link *f = link_new(base, sp[1], "fake", 0,
				  role == PROC_RAFTD ? fake_raft_msg : fake_stor_msg,
				  fake_close, NULL);
	if (role == PROC_RAFTD)
		fake_raft = f;
	else
		fake_stor = f;
}

static void send_raft_state(uint64_t leader)
{
	Ipc__RaftState s = IPC__RAFT_STATE__INIT;
	s.term = 2;
	s.leader = leader;
	s.commit = 5;
	link_send_pb(fake_raft, MSG_RAFT_STATE, 0, &s.base);
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

/* One HTTP exchange, run in the shared loop until answered. */
struct exchange {
	int done;
	int status;
	char body[8192];
	char ctype[128];
	char cors[64];
	char grpc_ct[64];
	struct evhttp_connection *evcon;
};

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
}

static void start(struct exchange *x, int port, enum evhttp_cmd_type m,
		  const char *path, const char *body, size_t blen)
{
	memset(x, 0, sizeof(*x));
	x->evcon = evhttp_connection_base_new(base, NULL, "127.0.0.1",
					      (unsigned short)port);
	struct evhttp_request *req = evhttp_request_new(on_response, x);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "x");
	if (body)
		evbuffer_add(evhttp_request_get_output_buffer(req), body, blen);
	evhttp_make_request(x->evcon, req, m, path);
}

static void finish(struct exchange *x)
{
	while (!x->done)
		event_base_loop(base, EVLOOP_ONCE);
	evhttp_connection_free(x->evcon);
}

static struct exchange X;

static struct exchange *http(enum evhttp_cmd_type m, const char *path,
			     const char *body)
{
	start(&X, client_port, m, path, body, body ? strlen(body) : 0);
	finish(&X);
	return &X;
}

#define EXPECT(x, st, b)                                                       \
	do {                                                                   \
		CHECK((x)->status == (st) && strcmp((x)->body, (b)) == 0,     \
		      "got %d %s\n  want %d %s", (x)->status, (x)->body, (st), \
		      (b));                                                    \
	} while (0)

#define HDR "{\"cluster_id\":\"12410818744834998058\",\"member_id\":\"7762430959550141699\""

static void test_routes(void)
{
	struct exchange *x = http(EVHTTP_REQ_GET, "/version", NULL);
	EXPECT(x, 200, "{\"etcdserver\":\"3.4.23\",\"etcdcluster\":\"3.4.0\"}");
	CHECK(strcmp(x->ctype, "application/json") == 0, "version ctype %s", x->ctype);
	CHECK(strcmp(x->cors, "*") == 0, "cors");
	x = http(EVHTTP_REQ_POST, "/version", "{}");
	EXPECT(x, 405, "Method Not Allowed\n");
	x = http(EVHTTP_REQ_OPTIONS, "/v3/kv/range", NULL);
	EXPECT(x, 200, "");
	CHECK(strcmp(x->cors, "*") == 0, "cors on OPTIONS");
	x = http(EVHTTP_REQ_GET, "/v3/kv/range", NULL);
	EXPECT(x, 405, "Method Not Allowed\n");
	x = http(EVHTTP_REQ_POST, "/v3/kv/nothing", "{}");
	EXPECT(x, 404, "Not Found\n");
	x = http(EVHTTP_REQ_POST, "/v3alpha/kv/range", "{}");
	EXPECT(x, 404, "404 page not found\n");
	x = http(EVHTTP_REQ_GET, "/v2/keys/foo", NULL);
	EXPECT(x, 404, "404 page not found\n");
	x = http(EVHTTP_REQ_POST, "/v3/lease/grant", "{}");
	EXPECT(x, 501, "{\"error\":\"etcdserver: lease/grant is not supported yet\","
		       "\"message\":\"etcdserver: lease/grant is not supported yet\",\"code\":12}");

	/* The peer port: /version only. */
	start(&X, peer_port, EVHTTP_REQ_GET, "/version", NULL, 0);
	finish(&X);
	EXPECT(&X, 200, "{\"etcdserver\":\"3.4.23\",\"etcdcluster\":\"3.4.0\"}");
	start(&X, peer_port, EVHTTP_REQ_POST, "/v3/kv/range", "{}", 2);
	finish(&X);
	EXPECT(&X, 404, "404 page not found\n");
}

static void test_kv(void)
{
	struct exchange *x = http(EVHTTP_REQ_POST, "/v3/kv/put",
				  "{\"key\":\"Zm9v\",\"value\":\"YmFy\"}");
	EXPECT(x, 200, "{\"header\":" HDR ",\"revision\":\"2\",\"raft_term\":\"2\"}}");
	CHECK(strcmp(x->grpc_ct, "application/grpc") == 0, "grpc ct");
	x = http(EVHTTP_REQ_POST, "/v3beta/kv/range", "{\"key\":\"Zm9v\"}");
	EXPECT(x, 200, "{\"header\":" HDR ",\"revision\":\"2\",\"raft_term\":\"2\"},"
		       "\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"2\","
		       "\"version\":\"1\",\"value\":\"YmFy\"}],\"count\":\"1\"}");
	int ri = n_readindex;
	x = http(EVHTTP_REQ_POST, "/v3/kv/range", "{\"key\":\"YQ==\",\"serializable\":true}");
	EXPECT(x, 200, "{\"header\":" HDR ",\"revision\":\"2\",\"raft_term\":\"2\"}}");
	CHECK(n_readindex == ri, "a serializable read asked for a read index");
	x = http(EVHTTP_REQ_POST, "/v3/kv/txn",
		 "{\"success\":[{\"request_put\":{\"key\":\"YQ==\"}}]}");
	EXPECT(x, 200, "{\"header\":" HDR ",\"revision\":\"3\",\"raft_term\":\"2\"},\"succeeded\":true}");
	x = http(EVHTTP_REQ_POST, "/v3/cluster/member/list", "{}");
	EXPECT(x, 200, "{\"header\":" HDR ",\"raft_term\":\"2\"},\"members\":[{\"ID\":\"7762430959550141699\","
		       "\"name\":\"m1\",\"peerURLs\":[\"http://127.0.0.1:2380\"]}]}");
	x = http(EVHTTP_REQ_POST, "/v3/maintenance/status", "{}");
	EXPECT(x, 200, "{\"header\":" HDR ",\"revision\":\"3\",\"raft_term\":\"2\"},\"version\":\"3.4.23\","
		       "\"dbSize\":\"20480\",\"leader\":\"7762430959550141699\",\"raftIndex\":\"5\","
		       "\"raftTerm\":\"2\",\"raftAppliedIndex\":\"5\",\"dbSizeInUse\":\"16384\"}");
	/* An error from storaged keeps its code. */
	x = http(EVHTTP_REQ_POST, "/v3/kv/put", "{\"key\":\"YQ==\",\"lease\":99}");
	EXPECT(x, 404, "{\"error\":\"etcdserver: requested lease not found\","
		       "\"message\":\"etcdserver: requested lease not found\",\"code\":5}");
}

#define ERRBODY(m, c) "{\"error\":\"" m "\",\"message\":\"" m "\",\"code\":" #c "}"

static void test_errors(void)
{
	int np = n_propose;
	struct exchange *x = http(EVHTTP_REQ_POST, "/v3/kv/range", "{b");
	EXPECT(x, 400, ERRBODY("invalid character 'b' looking for beginning of object key string", 3));
	x = http(EVHTTP_REQ_POST, "/v3/kv/range", "");
	EXPECT(x, 400, ERRBODY("etcdserver: key is not provided", 3));
	x = http(EVHTTP_REQ_POST, "/v3/kv/put", "{\"key\":\"!!!\"}");
	EXPECT(x, 400, ERRBODY("illegal base64 data at input byte 0", 3));
	x = http(EVHTTP_REQ_POST, "/v3/kv/put", "{\"key\":\"YQ==\",\"value\":\"YQ==\",\"ignore_value\":true}");
	EXPECT(x, 400, ERRBODY("etcdserver: value is provided", 3));
	x = http(EVHTTP_REQ_POST, "/v3/kv/put", "{\"key\":\"YQ==\",\"lease\":1,\"ignore_lease\":true}");
	EXPECT(x, 400, ERRBODY("etcdserver: lease is provided", 3));
	x = http(EVHTTP_REQ_POST, "/v3/kv/txn",
		 "{\"success\":[{\"request_put\":{\"key\":\"YQ==\"}},{\"request_delete_range\":{\"key\":\"YQ==\"}}]}");
	EXPECT(x, 400, ERRBODY("etcdserver: duplicate key given in txn request", 3));
	x = http(EVHTTP_REQ_POST, "/v3/kv/txn", "{\"success\":[{}]}");
	EXPECT(x, 400, ERRBODY("etcdserver: key not found", 3));
	x = http(EVHTTP_REQ_POST, "/v3/kv/put", "\x01\x02\xff\xfe");
	EXPECT(x, 400, ERRBODY("invalid character '\\\\x01' looking for beginning of value", 3));
	CHECK(n_propose == np, "a bad request was proposed");

	/* Sizes: the gRPC limit (429) and the Raft entry limit (400). */
	size_t vlen = 2 * 1024 * 1024 + 1000, blen = vlen * 4 / 3 + 64;
	char *big = malloc(blen + 64);
	int n = sprintf(big, "{\"key\":\"Ymln\",\"value\":\"");
	memset(big + n, 'A', vlen / 3 * 4);
	n += (int)(vlen / 3 * 4);
	n += sprintf(big + n, "\"}");
	x = http(EVHTTP_REQ_POST, "/v3/kv/put", big);
	char want[256];
	snprintf(want, sizeof(want),
		 ERRBODY("grpc: received message larger than max (%zu vs. 2097152)", 8),
		 (size_t)(vlen / 3 * 3 + 5 + 4 + 1), (size_t)(vlen / 3 * 3 + 5 + 4 + 1));
	EXPECT(x, 429, want);
	/* 1.75 MiB: passes gRPC, too large for a Raft entry. */
	vlen = 1835007;
	n = sprintf(big, "{\"key\":\"Ymln\",\"value\":\"");
	memset(big + n, 'A', vlen / 3 * 4);
	n += (int)(vlen / 3 * 4);
	n += sprintf(big + n, "\"}");
	x = http(EVHTTP_REQ_POST, "/v3/kv/put", big);
	EXPECT(x, 400, ERRBODY("etcdserver: request is too large", 3));
	free(big);
	CHECK(n_propose == np, "a too large request was proposed");
	/* A body past evhttp's limit is refused; the member keeps serving. */
	size_t huge = GW_BODY_FACTOR * 2097152 + 10;
	big = malloc(huge);
	memset(big, ' ', huge);
	start(&X, client_port, EVHTTP_REQ_POST, "/v3/kv/put", big, huge);
	finish(&X);
	CHECK(X.status == 413 || X.status == -1, "huge body: %d", X.status);
	free(big);
	x = http(EVHTTP_REQ_GET, "/version", NULL);
	CHECK(x->status == 200, "still serving after a huge body");
}

/* Reads that arrive while a round is in flight share the next round. */
static void test_readindex_batching(void)
{
	struct exchange xs[5];
	hold_readindex = 1;
	n_held_ri = 0;
	int ri = n_readindex;
	for (int i = 0; i < 3; i++)
		start(&xs[i], client_port, EVHTTP_REQ_POST, "/v3/kv/range",
		      "{\"key\":\"Zm9v\"}", 14);
	while (n_readindex == ri || gw.pend.n < 3)
		event_base_loop(base, EVLOOP_ONCE);
	/* Two more arrive while the first round is out. */
	for (int i = 3; i < 5; i++)
		start(&xs[i], client_port, EVHTTP_REQ_POST, "/v3/kv/range",
		      "{\"key\":\"Zm9v\"}", 14);
	while (gw.pend.n < 5)
		event_base_loop(base, EVLOOP_ONCE);
	CHECK(n_readindex == ri + 1, "first round: %d read indexes", n_readindex - ri);
	/* Answer the first round: its three reads go on, the other two get
	 * a second round. */
	Ipc__ReadIndexResp r = IPC__READ_INDEX_RESP__INIT;
	r.index = 7;
	link_send_pb(fake_raft, MSG_READINDEX_RESP, held_ri[0], &r.base);
	for (int i = 0; i < 3; i++)
		finish(&xs[i]);
	CHECK(xs[0].status == 200 && xs[2].status == 200, "first round answered");
	while (n_readindex < ri + 2)
		event_base_loop(base, EVLOOP_ONCE);
	CHECK(xs[3].done == 0 && xs[4].done == 0, "second round read too early");
	link_send_pb(fake_raft, MSG_READINDEX_RESP, held_ri[1], &r.base);
	for (int i = 3; i < 5; i++)
		finish(&xs[i]);
	CHECK(xs[3].status == 200 && xs[4].status == 200, "second round answered");
	CHECK(n_readindex == ri + 2, "%d rounds for 5 reads", n_readindex - ri);
	hold_readindex = 0;
}

static void test_health(void)
{
	struct exchange *x = http(EVHTTP_REQ_GET, "/health", NULL);
	EXPECT(x, 200, "{\"health\":\"true\"}");
	CHECK(strcmp(x->ctype, "text/plain; charset=utf-8") == 0, "health ctype");
	send_raft_state(0);
	x = http(EVHTTP_REQ_GET, "/version", NULL); /* let the state arrive */
	x = http(EVHTTP_REQ_GET, "/health", NULL);
	EXPECT(x, 503, "{\"health\":\"false\"}");
	send_raft_state(MEMBER);
	x = http(EVHTTP_REQ_GET, "/version", NULL);
}

static void test_timeouts_and_failures(void)
{
	struct exchange *x;
	/* A proposal nobody answers times out. */
	gw.timeout_ms = 200;
	drop_proposals = 1;
	x = http(EVHTTP_REQ_POST, "/v3/kv/put", "{\"key\":\"YQ==\"}");
	EXPECT(x, 503, ERRBODY("etcdserver: request timed out", 14));

	/* A client that leaves while its request is pending. */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((unsigned short)client_port);
	assert(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	const char *rq = "POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nContent-Length: 14\r\n\r\n{\"key\":\"YQ==\"}";
	assert(write(fd, rq, strlen(rq)) == (ssize_t)strlen(rq));
	size_t before = gw.pend.n;
	while (gw.pend.n == before)
		event_base_loop(base, EVLOOP_ONCE);
	close(fd);
	while (gw.pend.n > before)
		event_base_loop(base, EVLOOP_ONCE); /* expires; no crash */

	/* raftd goes away: what waits on it fails at once. */
	gw.timeout_ms = 60000;
	struct exchange xs[2];
	start(&xs[0], client_port, EVHTTP_REQ_POST, "/v3/kv/put", "{\"key\":\"YQ==\"}", 14);
	hold_readindex = 1;
	start(&xs[1], client_port, EVHTTP_REQ_POST, "/v3/kv/range", "{\"key\":\"YQ==\"}", 14);
	while (gw.pend.n < 2)
		event_base_loop(base, EVLOOP_ONCE);
	link_free(fake_raft);
	fake_raft = NULL;
	finish(&xs[0]);
	finish(&xs[1]);
	EXPECT(&xs[0], 503, ERRBODY("etcdserver: request timed out", 14));
	EXPECT(&xs[1], 503, ERRBODY("etcdserver: request timed out", 14));
	/* Without raftd, a write fails at once; a serializable read works. */
	x = http(EVHTTP_REQ_POST, "/v3/kv/put", "{\"key\":\"YQ==\"}");
	EXPECT(x, 503, ERRBODY("etcdserver: request timed out", 14));
	x = http(EVHTTP_REQ_POST, "/v3/kv/range", "{\"key\":\"Zm9v\",\"serializable\":true,\"count_only\":true}");
	CHECK(x->status == 200, "serializable read without raftd: %d", x->status);
	hold_readindex = 0;
	drop_proposals = 0;
	connect_peer(PROC_RAFTD);
	send_raft_state(MEMBER);
	x = http(EVHTTP_REQ_POST, "/v3/kv/put", "{\"key\":\"YQ==\"}");
	CHECK(x->status == 200, "put after raftd came back: %d %s", x->status, x->body);
}

int main(void)
{
	static Ipc__WorkerConfig cfg = IPC__WORKER_CONFIG__INIT;
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	cfg.member_id = MEMBER;
	cfg.cluster_id = CLUSTER;
	cfg.election_timeout_ms = 1000;
	w.base = base;
	w.role = PROC_GATEWAYD;
	w.ops = &gatewayd_ops;
	w.arg = &gw;
	w.cfg = &cfg;
	assert(gatewayd_ops.on_start(&w) == 0);
	connect_peer(PROC_RAFTD);
	connect_peer(PROC_STORAGED);
	send_raft_state(MEMBER);

	Ipc__Listener li = IPC__LISTENER__INIT;
	li.url = "http://127.0.0.1:0";
	gatewayd_ops.on_listener(&w, &li, listen_tcp(&client_port));
	li.peer = 1;
	gatewayd_ops.on_listener(&w, &li, listen_tcp(&peer_port));

	test_routes();
	test_kv();
	test_errors();
	test_readindex_batching();
	test_health();
	test_timeouts_and_failures();

	gatewayd_ops.on_stop(&w);
	link_free(w.peer[PROC_RAFTD]);
	link_free(w.peer[PROC_STORAGED]);
	link_free(fake_raft);
	link_free(fake_stor);
	event_base_free(base);
	if (failures)
		fprintf(stderr, "%d failures\n", failures);
	return failures ? 1 : 0;
}
