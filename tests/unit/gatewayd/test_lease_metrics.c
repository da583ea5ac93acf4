/*
 * The lease routes (grant and revoke proposed, time-to-live and leases
 * read at a read index, the keepalive stream) and GET /metrics merging the
 * other processes' answers, through the real gatewayd.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define H(rev) "{\"header\":" HDR ",\"revision\":\"" #rev "\",\"raft_term\":\"2\"}"

static void test_unary(void)
{
	int np = n_propose;
	revision = 5;
	struct exchange *x = http(EVHTTP_REQ_POST, "/v3/lease/grant",
				  "{\"TTL\":9000000001,\"ID\":7}");
	EXPECT(x, 400, ERRBODY("etcdserver: too large lease TTL", 11));
	CHECK(n_propose == np, "a too large TTL was proposed");

	x = http(EVHTTP_REQ_POST, "/v3/lease/grant", "{\"TTL\":60,\"ID\":77}");
	EXPECT(x, 200, H(5) ",\"ID\":\"77\",\"TTL\":\"60\"}");
	CHECK(strcmp(x->grpc_ct, "application/grpc") == 0, "grpc ct");
	CHECK(last_irr && last_irr->lease_grant && last_irr->lease_grant->id == 77,
	      "grant proposal");

	/* ID 0: gatewayd picks a positive one, once, before proposing. */
	x = http(EVHTTP_REQ_POST, "/v3/lease/grant", "{\"TTL\":\"1\"}");
	CHECK(x->status == 200 && last_irr && last_irr->lease_grant &&
	      last_irr->lease_grant->id > 0, "grant without ID: %d %s",
	      x->status, x->body);
	char want[256];
	snprintf(want, sizeof(want), H(5) ",\"ID\":\"%lld\",\"TTL\":\"2\"}",
		 (long long)(last_irr ? last_irr->lease_grant->id : 0));
	EXPECT(x, 200, want);

	x = http(EVHTTP_REQ_POST, "/v3/lease/revoke", "{\"ID\":77}");
	EXPECT(x, 200, H(5) "}");
	CHECK(last_irr && last_irr->lease_revoke && last_irr->lease_revoke->id == 77,
	      "revoke proposal");
	x = http(EVHTTP_REQ_POST, "/v3/kv/lease/revoke", "{\"ID\":404}");
	EXPECT(x, 404, ERRBODY("etcdserver: requested lease not found", 5));

	int ri = n_readindex;
	x = http(EVHTTP_REQ_POST, "/v3/lease/timetolive", "{\"ID\":77,\"keys\":true}");
	EXPECT(x, 200, H(5) ",\"ID\":\"77\",\"TTL\":\"30\",\"grantedTTL\":\"60\"}");
	CHECK(n_readindex == ri + 1 && last_min_applied == 7, "timetolive at a read index");
	/* An unknown lease is TTL -1, not an error. */
	x = http(EVHTTP_REQ_POST, "/v3/kv/lease/timetolive", "{\"ID\":404}");
	EXPECT(x, 200, H(5) ",\"ID\":\"404\",\"TTL\":\"-1\"}");
	x = http(EVHTTP_REQ_POST, "/v3/lease/leases", "{}");
	EXPECT(x, 200, H(5) ",\"leases\":[{\"ID\":\"1\"},{\"ID\":\"2\"}]}");
	x = http(EVHTTP_REQ_POST, "/v3beta/kv/lease/leases", "{}");
	CHECK(x->status == 200, "kv/lease/leases: %d", x->status);
	x = http(EVHTTP_REQ_GET, "/v3/lease/grant", NULL);
	EXPECT(x, 405, "Method Not Allowed\n");
}

static void test_keepalive(void)
{
	struct raw r;
	revision = 6;
	raw_start(&r, "/v3/lease/keepalive", "{\"ID\":1}\n{\"ID\":404}{\"ID\":405}{}", 0);
	CHECK(raw_wait_end(&r, 2000), "keepalive did not end");
	int chunks, ended;
	char *b = raw_body(&r, &chunks, &ended);
	const char *want = "{\"result\":" H(6) ",\"ID\":\"1\",\"TTL\":\"30\"}}\n"
			   "{\"result\":" H(6) ",\"ID\":\"404\"}}\n"
			   "{\"result\":" H(6) ",\"ID\":\"405\"}}\n"
			   "{\"result\":" H(6) "}}\n";
	CHECK(strcmp(b, want) == 0 && chunks == 4 && ended,
	      "keepalive body (%d chunks, ended %d):\n%s", chunks, ended, b);
	CHECK(strstr(r.buf, "Grpc-Metadata-Content-Type: application/grpc"), "metadata");
	free(b);
	raw_close(&r);

	/* A later request that does not decode ends the reading. */
	raw_start(&r, "/v3/lease/keepalive", "{\"ID\":1}{b", 0);
	CHECK(raw_wait_end(&r, 2000), "keepalive did not end");
	b = raw_body(&r, &chunks, &ended);
	CHECK(chunks == 1 && ended, "keepalive then bad: %s", b);
	free(b);
	raw_close(&r);

	/* An empty body: 200, an empty chunked body, no grpc metadata. */
	raw_start(&r, "/v3/lease/keepalive", "", 0);
	CHECK(raw_wait_end(&r, 2000), "empty keepalive did not end");
	b = raw_body(&r, &chunks, &ended);
	CHECK(strncmp(r.buf, "HTTP/1.1 200 OK", 15) == 0 && chunks == 0 && ended &&
	      !strstr(r.buf, "Grpc-Metadata"), "empty keepalive:\n%s", r.buf);
	free(b);
	raw_close(&r);

	struct exchange *x = http(EVHTTP_REQ_POST, "/v3/lease/keepalive", "{b");
	EXPECT(x, 500, ERRBODY("invalid character 'b' looking for beginning of object key string", 2));
	/* The connection serves more requests after a stream ended. */
	x = http(EVHTTP_REQ_GET, "/version", NULL);
	CHECK(x->status == 200, "after keepalive");
}

static void test_metrics(void)
{
	int asked[PROC_MAX];
	memcpy(asked, n_metrics_asked, sizeof(asked));
	struct exchange xs[2];
	/* Two at once share one round. */
	start(&xs[0], client_port, EVHTTP_REQ_GET, "/metrics", NULL, 0);
	start(&xs[1], client_port, EVHTTP_REQ_GET, "/metrics", NULL, 0);
	finish(&xs[0]);
	finish(&xs[1]);
	for (int i = 0; i < 2; i++) {
		struct exchange *x = &xs[i];
		CHECK(x->status == 200, "metrics status %d", x->status);
		CHECK(strcmp(x->ctype, "text/plain; version=0.0.4; charset=utf-8") == 0,
		      "metrics ctype %s", x->ctype);
		CHECK(strstr(x->body, "\netcd_server_has_leader 1\n") &&
		      strstr(x->body, "\netcd_mvcc_db_total_size_in_bytes 20480\n") &&
		      strstr(x->body, "etcd_test_supervisor_up 1\n") &&
		      strstr(x->body, "process_open_fds{process=\"gatewayd\"}") &&
		      strstr(x->body, "grpc_server_started_total{grpc_method=\"Range\","
				      "grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"}") &&
		      strstr(x->body, "# TYPE etcd_debugging_mvcc_watch_stream_total gauge"),
		      "metrics body:\n%s", x->body);
	}
	for (int r = 0; r < PROC_MAX; r++)
		CHECK(n_metrics_asked[r] - asked[r] ==
			      (r == PROC_SUPERVISOR || r == PROC_RAFTD || r == PROC_STORAGED),
		      "%s asked %d times", proc_name(r), n_metrics_asked[r] - asked[r]);

	/* storaged does not answer: after a second, the rest. */
	metrics_silent[PROC_STORAGED] = 1;
	struct exchange *x = http(EVHTTP_REQ_GET, "/metrics", NULL);
	CHECK(x->status == 200 && strstr(x->body, "etcd_server_has_leader 1") &&
	      !strstr(x->body, "etcd_mvcc_db_total_size_in_bytes"),
	      "metrics without storaged: %d", x->status);
	metrics_silent[PROC_STORAGED] = 0;
	/* Its late answer to the old round is ignored; a new round works. */
	x = http(EVHTTP_REQ_GET, "/metrics", NULL);
	CHECK(x->status == 200 && strstr(x->body, "etcd_mvcc_db_total_size_in_bytes"),
	      "metrics after");
}

int main(void)
{
	harness_init();
	test_unary();
	test_keepalive();
	test_metrics();
	harness_done();
	return failures ? 1 : 0;
}
