/*
 * gatewayd's v2 keys API and discovery service over real sockets: what
 * an HTTP request becomes (the etcdserverpb.Request proposed or queried),
 * etcd's errors for bad parameters, and how storaged's V2Result is sent
 * (headers, a wait streamed, noValueOnSuccess).
 */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "v2.pb-c.h"

#define V2ERR(code, msg, cause) \
	"{\"errorCode\":" #code ",\"message\":\"" msg "\",\"cause\":\"" cause "\",\"index\":0}\n"

/* What the fakes saw last, and how they answer. */
static Etcdserverpb__Request *seen;
static uint64_t seen_id, seen_min_applied, cancelled;
static int seen_query;
static int hold; /* do not answer: the test does */
static const char *answer_body = "{\"action\":\"set\",\"node\":{}}\n";
static uint32_t answer_status = 201;

static void keep(const Etcdserverpb__Request *r, uint64_t id)
{
	if (seen)
		etcdserverpb__request__free_unpacked(seen, NULL);
	size_t n = etcdserverpb__request__get_packed_size(r);
	uint8_t *b = malloc(n);
	etcdserverpb__request__pack(r, b);
	seen = etcdserverpb__request__unpack(NULL, n, b);
	free(b);
	seen_id = id;
}

static void answer(uint64_t id, uint32_t status, const char *body,
		   uint64_t index, int more)
{
	Ipc__Result r = IPC__RESULT__INIT;
	Ipc__V2Result v = IPC__V2_RESULT__INIT;
	v.status = status;
	v.body.data = (uint8_t *)body;
	v.body.len = strlen(body);
	v.etcd_index = index;
	v.more = more;
	r.v2 = &v;
	link_send_pb(fake_stor, MSG_RESULT, id, &r.base);
}

static int on_raft(const struct msg_hdr *hdr, const uint8_t *body, int fd)
{
	(void)fd;
	if (hdr->type != MSG_PROPOSE)
		return 0;
	Etcdserverpb__InternalRaftRequest *irr =
		etcdserverpb__internal_raft_request__unpack(NULL, hdr->len, body);
	if (!irr || !irr->v2) {
		if (irr)
			etcdserverpb__internal_raft_request__free_unpacked(irr, NULL);
		return 0;
	}
	keep(irr->v2, hdr->id);
	seen_query = 0;
	CHECK(irr->v2->id == hdr->id, "v2 request ID");
	etcdserverpb__internal_raft_request__free_unpacked(irr, NULL);
	if (!hold)
		answer(hdr->id, answer_status, answer_body, 9, 0);
	return 1;
}

static int on_stor(const struct msg_hdr *hdr, const uint8_t *body, int fd)
{
	(void)fd;
	if (hdr->type == MSG_V2_CANCEL) {
		cancelled = hdr->id;
		return 1;
	}
	if (hdr->type != MSG_QUERY)
		return 0;
	Ipc__Query *q = ipc__query__unpack(NULL, hdr->len, body);
	if (!q || q->query_case != IPC__QUERY__QUERY_V2) {
		if (q)
			ipc__query__free_unpacked(q, NULL);
		return 0;
	}
	keep(q->v2, hdr->id);
	seen_query = 1;
	seen_min_applied = q->min_applied;
	ipc__query__free_unpacked(q, NULL);
	if (!hold)
		answer(hdr->id, 200, "{\"action\":\"get\"}\n", 4, 0);
	return 1;
}

static void test_routes(void)
{
	struct exchange *x = http(EVHTTP_REQ_PATCH, "/v2/keys/a", NULL);
	EXPECT(x, 405, "Method Not Allowed\n");
	CHECK(strcmp(x->allow, "HEAD,GET,PUT,POST,DELETE") == 0, "allow %s", x->allow);
	x = http(EVHTTP_REQ_GET, "/v2/keys", NULL);
	EXPECT(x, 200, "{\"action\":\"get\"}\n");
	CHECK(seen_query && strcmp(seen->path, "/") == 0, "root path %s", seen->path);
	CHECK(strcmp(x->etcd_index, "4") == 0, "X-Etcd-Index %s", x->etcd_index);
	CHECK(strcmp(x->cluster, "ac3c15e4a1a63f2a") == 0, "cluster %s", x->cluster);
	CHECK(strcmp(x->ctype, "application/json") == 0, "ctype %s", x->ctype);
	x = http(EVHTTP_REQ_GET, "/v2/keysx", NULL);
	EXPECT(x, 404, "404 page not found\n");
}

static void test_reads(void)
{
	int ri = n_readindex;
	struct exchange *x = http(EVHTTP_REQ_GET,
				  "/v2/keys/a/./b/../c%2Fd?recursive=true&sorted=1", NULL);
	EXPECT(x, 200, "{\"action\":\"get\"}\n");
	CHECK(strcmp(seen->path, "/a/c/d") == 0, "path %s", seen->path);
	CHECK(strcmp(seen->method, "GET") == 0 && seen->recursive && seen->sorted &&
	      !seen->wait && seen_min_applied == 0 && n_readindex == ri,
	      "serializable read");
	x = http(EVHTTP_REQ_GET, "/v2/keys/a?quorum=true", NULL);
	CHECK(n_readindex == ri + 1 && seen_min_applied == 7, "quorum read index");
}

static void test_writes(void)
{
	request_ctype = "application/x-www-form-urlencoded; charset=utf-8";
	time_t now = time(NULL);
	struct exchange *x = http(EVHTTP_REQ_PUT, "/v2/keys/foo?prevExist=false&value=q",
				  "value=b+a%72&ttl=5");
	EXPECT(x, 201, "{\"action\":\"set\",\"node\":{}}\n");
	CHECK(strcmp(x->etcd_index, "9") == 0, "X-Etcd-Index %s", x->etcd_index);
	CHECK(!seen_query && strcmp(seen->method, "PUT") == 0 &&
	      strcmp(seen->path, "/foo") == 0 && strcmp(seen->val, "b ar") == 0,
	      "put %s %s %s", seen->method, seen->path, seen->val);
	CHECK(seen->has_prevexist && !seen->prevexist, "prevExist");
	int64_t exp = seen->expiration / 1000000000;
	CHECK(exp >= now + 4 && exp <= now + 6, "expiration %lld", (long long)exp);
	/* The body is read only as a form. */
	request_ctype = NULL;
	x = http(EVHTTP_REQ_POST, "/v2/keys/q", "value=zz");
	CHECK(strcmp(seen->method, "POST") == 0 && strcmp(seen->val, "") == 0 &&
	      !seen->has_prevexist && !seen->expiration, "post without a form");
	x = http(EVHTTP_REQ_DELETE, "/v2/keys/d?dir=true&recursive=true&prevIndex=3", NULL);
	CHECK(strcmp(seen->method, "DELETE") == 0 && seen->dir && seen->recursive &&
	      seen->previndex == 3, "delete");
	x = http(EVHTTP_REQ_PUT, "/v2/keys/foo?value=1&noValueOnSuccess=true", NULL);
	EXPECT(x, 201, "{\"action\":\"set\"}\n");
	/* A failure outside the store: etcd's 300. */
	struct exchange e;
	hold = 1;
	start(&e, client_port, EVHTTP_REQ_PUT, "/v2/keys/z", NULL, 0);
	uint64_t before = seen_id;
	for (int i = 0; i < 1000 && seen_id == before; i++)
		event_base_loop(base, EVLOOP_ONCE);
	Ipc__Result r = IPC__RESULT__INIT;
	Ipc__Error er = IPC__ERROR__INIT;
	er.code = 14;
	er.message = "etcdserver: no leader";
	r.error = &er;
	link_send_pb(fake_stor, MSG_RESULT, seen_id, &r.base);
	finish(&e);
	EXPECT(&e, 500, V2ERR(300, "Raft Internal Error", "etcdserver: no leader"));
	hold = 0;
}

static void test_errors(void)
{
	struct {
		enum evhttp_cmd_type m;
		const char *path;
		int status;
		const char *body;
	} cases[] = {
		{EVHTTP_REQ_GET, "/v2/keys/a?prevIndex=x", 400,
		 V2ERR(203, "The given index in POST form is not a number", "invalid value for \\\"prevIndex\\\"")},
		{EVHTTP_REQ_GET, "/v2/keys/a?waitIndex=-1", 400,
		 V2ERR(203, "The given index in POST form is not a number", "invalid value for \\\"waitIndex\\\"")},
		{EVHTTP_REQ_GET, "/v2/keys/a?recursive=yes", 400,
		 V2ERR(209, "Invalid field", "invalid value for \\\"recursive\\\"")},
		{EVHTTP_REQ_PUT, "/v2/keys/a?wait=true", 400,
		 V2ERR(209, "Invalid field", "\\\"wait\\\" can only be used with GET requests")},
		{EVHTTP_REQ_PUT, "/v2/keys/a?prevValue=", 400,
		 V2ERR(201, "PrevValue is Required in POST form", "\\\"prevValue\\\" cannot be empty")},
		{EVHTTP_REQ_PUT, "/v2/keys/a?ttl=abc", 400,
		 V2ERR(202, "The given TTL in POST form is not a number", "invalid value for \\\"ttl\\\"")},
		{EVHTTP_REQ_PUT, "/v2/keys/a?prevExist=maybe", 400,
		 V2ERR(209, "Invalid field", "invalid value for prevExist")},
		{EVHTTP_REQ_PUT, "/v2/keys/a?refresh=true", 400,
		 V2ERR(212, "A TTL must be provided on refresh", "No TTL value set")},
		{EVHTTP_REQ_PUT, "/v2/keys/a?refresh=true&ttl=5&value=x", 400,
		 V2ERR(211, "Value provided on refresh", "A value was provided on a refresh")},
		{EVHTTP_REQ_GET, "/v2/keys/a?x=%zz", 400,
		 V2ERR(210, "Invalid POST form", "invalid URL escape \\\"%zz\\\"")},
		{EVHTTP_REQ_GET, "/v2/keys/a?x=1;y=2", 400,
		 V2ERR(210, "Invalid POST form", "invalid semicolon separator in query")},
	};
	int np = n_propose;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct exchange *x = http(cases[i].m, cases[i].path, NULL);
		EXPECT(x, cases[i].status, cases[i].body);
		CHECK(strcmp(x->etcd_index, "0") == 0, "error index %s", x->etcd_index);
	}
	/* Too many levels for storaged's recursive walks. */
	char *deep = malloc(6 * 1100 + 16);
	int o = sprintf(deep, "/v2/keys");
	for (int i = 0; i < 1100; i++)
		o += sprintf(deep + o, "/a");
	struct exchange *x = http(EVHTTP_REQ_PUT, deep, NULL);
	EXPECT(x, 400, V2ERR(209, "Invalid field", "key has too many levels"));
	free(deep);
	CHECK(n_propose == np, "a bad request was proposed");
}

static void test_wait(void)
{
	struct raw r;
	hold = 1;
	raw_start_method(&r, "GET", "/v2/keys/w?wait=true&waitIndex=12", "", 0);
	for (int i = 0; i < 100 && !(seen && seen->wait); i++)
		raw_pump(&r);
	CHECK(seen && seen->wait && seen->since == 12 && seen_query, "wait query");
	uint64_t id = seen_id;
	answer(id, 200, "", 11, 1);
	for (int i = 0; i < 200 && !(r.buf && memmem(r.buf, r.len, "X-Etcd-Index: 11", 16)); i++)
		raw_pump(&r);
	CHECK(r.buf && memmem(r.buf, r.len, "X-Etcd-Index: 11", 16), "headers at once");
	answer(id, 200, "{\"action\":\"create\"}\n", 12, 0);
	CHECK(raw_wait_end(&r, 2000), "the wait ends");
	int chunks, ended;
	char *b = raw_body(&r, &chunks, &ended);
	CHECK(b && strcmp(b, "{\"action\":\"create\"}\n") == 0 && ended, "wait body %s", b);
	free(b);
	raw_close(&r);

	/* A client that goes away: storaged drops its wait. */
	raw_start_method(&r, "GET", "/v2/keys/w?wait=true", "", 0);
	uint64_t before = seen_id;
	for (int i = 0; i < 100 && seen_id == before; i++)
		raw_pump(&r);
	id = seen_id;
	raw_close(&r);
	pump_ms(100);
	CHECK(cancelled == id, "cancel %llx, want %llx", (unsigned long long)cancelled,
	      (unsigned long long)id);
	hold = 0;
}

static void test_new(void)
{
	struct exchange *x = http(EVHTTP_REQ_GET, "/new?size=5", NULL);
	CHECK(x->status == 200 && strncmp(x->body, "http://x/v2/keys/discovery/", 27) == 0 &&
	      strlen(x->body) == 27 + 32 + 1, "new: %d %s", x->status, x->body);
	char want[128];
	snprintf(want, sizeof(want), "/discovery/%.32s/_config/size", x->body + 27);
	CHECK(strcmp(seen->path, want) == 0 && strcmp(seen->val, "5") == 0 &&
	      seen->has_prevexist && !seen->prevexist, "new: %s", seen->path);
	x = http(EVHTTP_REQ_GET, "/new", NULL);
	CHECK(x->status == 200 && strcmp(seen->val, "3") == 0, "default size");
	x = http(EVHTTP_REQ_GET, "/new?size=0", NULL);
	CHECK(x->status == 400, "size 0: %d", x->status);
}

int main(void)
{
	harness_cfg.enable_v2 = 1;
	harness_init();
	raft_hook = on_raft;
	stor_hook = on_stor;
	test_routes();
	test_reads();
	test_writes();
	test_errors();
	test_wait();
	test_new();
	raft_hook = NULL;
	stor_hook = NULL;
	if (seen)
		etcdserverpb__request__free_unpacked(seen, NULL);
	harness_done();
	return failures ? 1 : 0;
}
