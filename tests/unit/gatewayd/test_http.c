/*
 * gatewayd's HTTP side over real sockets: the real gatewayd code runs in
 * this process's event loop, with socketpair links to a fake raftd and a
 * fake storaged, and an evhttp client talks to it over loopback TCP.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

static struct exchange X;

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
	x = http(EVHTTP_REQ_POST, "/v3/maintenance/alarm", "{}");
	EXPECT(x, 501, "{\"error\":\"etcdserver: maintenance/alarm is not supported yet\","
		       "\"message\":\"etcdserver: maintenance/alarm is not supported yet\",\"code\":12}");

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
	EXPECT(x, 503, "{\"health\":\"false\"}\n");
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
	harness_init();
	test_routes();
	test_kv();
	test_errors();
	test_readindex_batching();
	test_health();
	test_timeouts_and_failures();
	harness_done();
	return failures ? 1 : 0;
}
