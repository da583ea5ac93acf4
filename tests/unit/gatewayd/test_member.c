/*
 * The membership API through the real gatewayd: peer URL checks, member IDs
 * as etcd 3.4 computes them, the ConfChange each route sends raftd, the
 * refusals, and the JSON of the answers.
 */
#include <assert.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "harness.h"
#include "member.h"
#include "memberid.h"
#include "raft.pb-c.h"

/* What the fake raftd got last, and how it answers. */
static int n_cc;
static uint64_t cc_frame_id;
static Raftpb__ConfChange *last_cc;
static Etcdserverpb__Member *last_ctx;
enum answer { ANS_RESULT, ANS_PROPOSE_ERR, ANS_NONE };
static enum answer answer_with = ANS_RESULT;
static uint32_t err_code;
static const char *err_msg;

/* storaged's answer to an applied change: the list after it. */
static void answer_result(const struct msg_hdr *hdr)
{
	Ipc__Result r = IPC__RESULT__INIT;
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	Etcdserverpb__MemberAddResponse ar = ETCDSERVERPB__MEMBER_ADD_RESPONSE__INIT;
	Etcdserverpb__MemberRemoveResponse rr =
		ETCDSERVERPB__MEMBER_REMOVE_RESPONSE__INIT;
	Etcdserverpb__MemberUpdateResponse ur =
		ETCDSERVERPB__MEMBER_UPDATE_RESPONSE__INIT;
	Etcdserverpb__MemberPromoteResponse pr =
		ETCDSERVERPB__MEMBER_PROMOTE_RESPONSE__INIT;
	Etcdserverpb__Member m1 = ETCDSERVERPB__MEMBER__INIT, m2;
	Etcdserverpb__Member *ms[] = { &m1, &m2 };
	char *purl[] = { "http://127.0.0.1:2380" },
	     *curl[] = { "http://127.0.0.1:2379" };
	size_t n = 1;

	m1.id = MEMBER;
	m1.name = "m1";
	m1.peerurls = purl;
	m1.n_peerurls = 1;
	m1.clienturls = curl;
	m1.n_clienturls = 1;
	if (last_ctx && last_cc->type != RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode) {
		m2 = *last_ctx;
		n = 2;
	}
	switch (last_cc->type) {
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode:
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddLearnerNode:
		if (last_ctx->n_peerurls == 0) { /* a promote */
			m2.islearner = 0;
			pr.header = &h;
			pr.members = ms;
			pr.n_members = n;
			r.response_case = IPC__RESULT__RESPONSE_MEMBER_PROMOTE;
			r.member_promote = &pr;
			break;
		}
		ar.header = &h;
		ar.members = ms;
		ar.n_members = n;
		r.response_case = IPC__RESULT__RESPONSE_MEMBER_ADD;
		r.member_add = &ar;
		break;
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode:
		rr.header = &h;
		rr.members = ms;
		rr.n_members = n;
		r.response_case = IPC__RESULT__RESPONSE_MEMBER_REMOVE;
		r.member_remove = &rr;
		break;
	case RAFTPB__CONF_CHANGE_TYPE__ConfChangeUpdateNode:
		ur.header = &h;
		ur.members = ms;
		ur.n_members = n;
		r.response_case = IPC__RESULT__RESPONSE_MEMBER_UPDATE;
		r.member_update = &ur;
		break;
	default:
		break;
	}
	link_send_pb(fake_stor, MSG_RESULT, hdr->id, &r.base);
}

static int on_raft(const struct msg_hdr *hdr, const uint8_t *body, int fd)
{
	if (hdr->type != MSG_CONF_CHANGE)
		return 0;
	if (fd >= 0)
		close(fd);
	n_cc++;
	cc_frame_id = hdr->id;
	if (last_cc)
		raftpb__conf_change__free_unpacked(last_cc, NULL);
	if (last_ctx)
		etcdserverpb__member__free_unpacked(last_ctx, NULL);
	last_ctx = NULL;
	last_cc = raftpb__conf_change__unpack(NULL, hdr->len, body);
	assert(last_cc);
	if (last_cc->context.len) {
		last_ctx = etcdserverpb__member__unpack(NULL, last_cc->context.len,
							last_cc->context.data);
		assert(last_ctx);
	}
	CHECK(last_cc->id == hdr->id, "ConfChange.ID %llx, frame %llx",
	      (unsigned long long)last_cc->id, (unsigned long long)hdr->id);
	CHECK(hdr->id >> 48 == (MEMBER & 0xffff), "request ID prefix");
	if (answer_with == ANS_RESULT) {
		answer_result(hdr);
	} else if (answer_with == ANS_PROPOSE_ERR) {
		Ipc__Error e = IPC__ERROR__INIT;
		e.code = err_code;
		e.message = (char *)err_msg;
		link_send_pb(fake_raft, MSG_PROPOSE_ERR, hdr->id, &e.base);
	}
	return 1;
}

/* etcd's formula, written again here over one buffer with SHA1(). */
static uint64_t etcd_id(const char *joined_sorted_urls, int64_t t)
{
	char buf[512];
	unsigned char md[SHA_DIGEST_LENGTH];
	uint64_t id = 0;
	int n = snprintf(buf, sizeof(buf), "%s%lld", joined_sorted_urls,
			 (long long)t);
	SHA1((const unsigned char *)buf, (size_t)n, md);
	for (int i = 0; i < 8; i++)
		id = id << 8 | md[i];
	return id;
}

static uint64_t mid(char *const *urls, size_t n, const char *token,
		    int64_t t)
{
	return memberid_new((const char *const *)urls, n, token, t);
}

static void test_member_id(void)
{
	/* IDs the reference etcd 3.4 gave, at the second found by search. */
	char *u1[] = { "unix://x:1" };
	CHECK(mid(u1, 1, "", 1795322964) == 13336186373297136613ULL,
	      "etcd's ID for unix://x:1");
	char *u2[] = { "http://127.0.0.1:2391", "http://127.0.0.1:2390" };
	member_sort_urls(u2, 2);
	CHECK(strcmp(u2[0], "http://127.0.0.1:2390") == 0, "sorted");
	CHECK(mid(u2, 2, "", 1795323009) == 1706631472684634423ULL,
	      "etcd's ID for two URLs");
	CHECK(mid(u2, 2, "", 1700000000) ==
		      etcd_id("http://127.0.0.1:2390http://127.0.0.1:2391", 1700000000),
	      "formula");
	/* The token enters the hash when one is given (bootstrap's use). */
	CHECK(mid(u1, 1, "tok", 5) == etcd_id("unix://x:1tok", 5),
	      "with a token");
}

static void test_peerurl(void)
{
	struct arena a;
	char *out;
	/* What the reference etcd accepted (types.NewURLs). */
	static const char *ok[][2] = {
		{ "http://127.0.0.1:2380", "http://127.0.0.1:2380" },
		{ "HTTP://127.0.0.1:2380", "http://127.0.0.1:2380" },
		{ "unix://x:1", "unix://x:1" },
		{ "http://127.0.0.1:2380?q=1", "http://127.0.0.1:2380?q=1" },
		{ "http://127.0.0.1:2380#f", "http://127.0.0.1:2380#f" },
		{ "http://u@127.0.0.1:2380", "http://u@127.0.0.1:2380" },
		{ "http://127.0.0.1:", "http://127.0.0.1:" },
		{ "http://:2380", "http://:2380" },
		{ "https://[::1]:2380", "https://[::1]:2380" },
		{ " http://a:1\t", "http://a:1" },
		{ "http://a%25b:1", "http://a%25b:1" },
		{ "http://x@y@a:1", "http://x@y@a:1" },
		{ "http://a:1?%zz", "http://a:1?%zz" },
	};
	/* ... and what it refused. */
	static const char *bad[] = {
		"", "bad", "127.0.0.1:2390", "ftp://1.2.3.4:5", "http://1.2.3.4",
		"http://1.2.3.4:5/path", "http://127.0.0.1:2380/", "unix://x",
		"http://[::1:5", "%zz", "http://a b:1", "http:a:1",
		"http://a:b", "http://[::1]", "http://a:1:2", "http://a\x01:1",
		"http://a:1#%z", "http://a%zz:1", "http://a%41:1", "http://a{:1",
	};
	arena_init(&a, 1 << 20);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		out = NULL;
		int r = peerurl_check(ok[i][0], &a, &out);
		CHECK(r == 0 && strcmp(out, ok[i][1]) == 0, "ok %s: %d %s",
		      ok[i][0], r, out ? out : "-");
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		out = NULL;
		CHECK(peerurl_check(bad[i], &a, &out) == -EINVAL && !out,
		      "bad %s accepted", bad[i]);
	}
	arena_done(&a);
}

static void check_urls(const Etcdserverpb__Member *m, const char *a,
		       const char *b)
{
	CHECK(m && m->n_peerurls == (b ? 2u : 1u) &&
		      strcmp(m->peerurls[0], a) == 0 &&
		      (!b || strcmp(m->peerurls[1], b) == 0),
	      "context peer URLs");
}

static void test_add(void)
{
	char want[1024];
	int64_t t0 = (int64_t)time(NULL);
	struct exchange *x = http(EVHTTP_REQ_POST, "/v3/cluster/member/add",
		"{\"peerURLs\":[\"http://127.0.0.1:2392\",\"HTTP://127.0.0.1:2391\"]}");
	int64_t t1 = (int64_t)time(NULL);
	CHECK(n_cc == 1, "one ConfChange: %d", n_cc);
	if (!last_cc)
		return;
	CHECK(last_cc->type == RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode,
	      "type %d", last_cc->type);
	uint64_t id = last_cc->nodeid;
	int found = 0;
	for (int64_t t = t0; t <= t1; t++)
		found |= id == etcd_id("http://127.0.0.1:2391http://127.0.0.1:2392", t);
	CHECK(found, "member ID %llu is not etcd's", (unsigned long long)id);
	CHECK(last_ctx && last_ctx->id == id && !last_ctx->islearner &&
		      !last_ctx->name[0] && last_ctx->n_clienturls == 0,
	      "add context");
	check_urls(last_ctx, "http://127.0.0.1:2391", "http://127.0.0.1:2392");
	snprintf(want, sizeof(want),
		 "{\"header\":" HDR ",\"raft_term\":\"2\"},\"member\":{\"ID\":\"%llu\","
		 "\"peerURLs\":[\"http://127.0.0.1:2391\",\"http://127.0.0.1:2392\"]},"
		 "\"members\":[{\"ID\":\"7762430959550141699\",\"name\":\"m1\","
		 "\"peerURLs\":[\"http://127.0.0.1:2380\"],\"clientURLs\":[\"http://127.0.0.1:2379\"]},"
		 "{\"ID\":\"%llu\",\"peerURLs\":[\"http://127.0.0.1:2391\",\"http://127.0.0.1:2392\"]}]}",
		 (unsigned long long)id, (unsigned long long)id);
	EXPECT(x, 200, want);

	/* A learner, on the older path. */
	x = http(EVHTTP_REQ_POST, "/v3beta/cluster/member/add",
		 "{\"peerURLs\":[\"http://127.0.0.1:2393\"],\"isLearner\":true}");
	CHECK(n_cc == 2 && last_cc->type ==
		      RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddLearnerNode,
	      "learner type");
	CHECK(last_ctx && last_ctx->islearner && last_ctx->id == last_cc->nodeid,
	      "learner context");
	check_urls(last_ctx, "http://127.0.0.1:2393", NULL);
	id = last_cc->nodeid;
	snprintf(want, sizeof(want),
		 "{\"header\":" HDR ",\"raft_term\":\"2\"},\"member\":{\"ID\":\"%llu\","
		 "\"peerURLs\":[\"http://127.0.0.1:2393\"],\"isLearner\":true},"
		 "\"members\":[{\"ID\":\"7762430959550141699\",\"name\":\"m1\","
		 "\"peerURLs\":[\"http://127.0.0.1:2380\"],\"clientURLs\":[\"http://127.0.0.1:2379\"]},"
		 "{\"ID\":\"%llu\",\"peerURLs\":[\"http://127.0.0.1:2393\"],\"isLearner\":true}]}",
		 (unsigned long long)id, (unsigned long long)id);
	EXPECT(x, 200, want);
}

static void test_add_refused(void)
{
	int cc = n_cc, nq = n_query;
	static const char *bad[] = {
		"{}", "{\"peerURLs\":[]}", "{\"peerURLs\":[\"bad\"]}",
		"{\"peerURLs\":[\"http://1.2.3.4:5/path\"]}",
		"{\"peerURLs\":[\"http://127.0.0.1:2394\",\"ftp://1.2.3.4:5\"]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct exchange *x = http(EVHTTP_REQ_POST, "/v3/cluster/member/add",
					  bad[i]);
		EXPECT(x, 400, ERRBODY("etcdserver: given member URLs are invalid", 3));
	}
	CHECK(n_query == nq, "bad URLs asked storaged");
	struct exchange *x = http(EVHTTP_REQ_POST, "/v3/cluster/member/add",
				  "{\"peerURLs\":\"x\"}");
	EXPECT(x, 400, ERRBODY("json: cannot unmarshal string into Go value of type []json.RawMessage", 3));

	/* A URL in use, as given or as etcd normalises it; of either member. */
	x = http(EVHTTP_REQ_POST, "/v3/cluster/member/add",
		 "{\"peerURLs\":[\"http://127.0.0.1:2380\"]}");
	EXPECT(x, 412, ERRBODY("etcdserver: Peer URLs already exists", 9));
	x = http(EVHTTP_REQ_POST, "/v3/cluster/member/add",
		 "{\"peerURLs\":[\"http://127.0.0.1:2399\",\"HTTP://127.0.0.1:2380\"],\"isLearner\":true}");
	EXPECT(x, 412, ERRBODY("etcdserver: Peer URLs already exists", 9));
	extra_member_id = 0x1234;
	snprintf(extra_member_url, sizeof(extra_member_url), "http://127.0.0.2:2380");
	x = http(EVHTTP_REQ_POST, "/v3/cluster/member/add",
		 "{\"peerURLs\":[\"http://127.0.0.2:2380\"]}");
	EXPECT(x, 412, ERRBODY("etcdserver: Peer URLs already exists", 9));
	extra_member_id = 0;
	CHECK(n_query == nq + 3, "member list asked %d times", n_query - nq);
	CHECK(n_cc == cc, "a refused add reached raftd");

	/* raftd's refusal reaches the client as it is. */
	answer_with = ANS_PROPOSE_ERR;
	err_code = 14;
	err_msg = "etcdserver: unhealthy cluster";
	x = http(EVHTTP_REQ_POST, "/v3/cluster/member/add",
		 "{\"peerURLs\":[\"http://127.0.0.1:2395\"]}");
	EXPECT(x, 503, ERRBODY("etcdserver: unhealthy cluster", 14));
	CHECK(n_cc == cc + 1, "add proposed");
	answer_with = ANS_RESULT;
}

static void test_remove_update_promote(void)
{
	/* Remove: no context; etcd's errors come back from raftd. */
	answer_with = ANS_PROPOSE_ERR;
	err_code = 5;
	err_msg = "etcdserver: member not found";
	struct exchange *x = http(EVHTTP_REQ_POST, "/v3/cluster/member/remove",
				  "{\"ID\":\"123\"}");
	EXPECT(x, 404, ERRBODY("etcdserver: member not found", 5));
	CHECK(last_cc->type == RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode &&
		      last_cc->nodeid == 123 && last_cc->context.len == 0,
	      "remove ConfChange");
	answer_with = ANS_RESULT;
	x = http(EVHTTP_REQ_POST, "/v3/cluster/member/remove",
		 "{\"ID\":\"18446744073709551615\"}");
	CHECK(last_cc->nodeid == UINT64_MAX, "remove id");
	EXPECT(x, 200, "{\"header\":" HDR ",\"raft_term\":\"2\"},\"members\":[{\"ID\":\"7762430959550141699\","
		       "\"name\":\"m1\",\"peerURLs\":[\"http://127.0.0.1:2380\"],"
		       "\"clientURLs\":[\"http://127.0.0.1:2379\"]}]}");

	/* Update: etcd 3.4 takes the URLs as they come, even "bad". */
	x = http(EVHTTP_REQ_POST, "/v3/cluster/member/update",
		 "{\"ID\":\"7762430959550141699\",\"peerURLs\":[\"bad\",\"HTTP://a:1\"]}");
	CHECK(last_cc->type == RAFTPB__CONF_CHANGE_TYPE__ConfChangeUpdateNode &&
		      last_cc->nodeid == MEMBER,
	      "update ConfChange");
	CHECK(last_ctx && last_ctx->id == MEMBER && !last_ctx->islearner,
	      "update context");
	check_urls(last_ctx, "bad", "HTTP://a:1");
	EXPECT(x, 200, "{\"header\":" HDR ",\"raft_term\":\"2\"},\"members\":[{\"ID\":\"7762430959550141699\","
		       "\"name\":\"m1\",\"peerURLs\":[\"http://127.0.0.1:2380\"],"
		       "\"clientURLs\":[\"http://127.0.0.1:2379\"]},{\"ID\":\"7762430959550141699\","
		       "\"peerURLs\":[\"bad\",\"HTTP://a:1\"]}]}");

	/* Promote: AddNode with the ID alone. */
	x = http(EVHTTP_REQ_POST, "/v3beta/cluster/member/promote", "{\"ID\":42}");
	CHECK(last_cc->type == RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode &&
		      last_cc->nodeid == 42 && last_ctx && last_ctx->id == 42 &&
		      last_ctx->n_peerurls == 0 && !last_ctx->islearner,
	      "promote ConfChange");
	EXPECT(x, 200, "{\"header\":" HDR ",\"raft_term\":\"2\"},\"members\":[{\"ID\":\"7762430959550141699\","
		       "\"name\":\"m1\",\"peerURLs\":[\"http://127.0.0.1:2380\"],"
		       "\"clientURLs\":[\"http://127.0.0.1:2379\"]},{\"ID\":\"42\"}]}");
	answer_with = ANS_PROPOSE_ERR;
	err_code = 9;
	err_msg = "etcdserver: can only promote a learner member";
	x = http(EVHTTP_REQ_POST, "/v3/cluster/member/promote", "{\"ID\":\"42\"}");
	EXPECT(x, 412, ERRBODY("etcdserver: can only promote a learner member", 9));
	answer_with = ANS_RESULT;

	x = http(EVHTTP_REQ_GET, "/v3/cluster/member/promote", NULL);
	EXPECT(x, 405, "Method Not Allowed\n");
}

/* An error storaged reports at apply reaches the client. */
static int stor_err(const struct msg_hdr *hdr, const uint8_t *body, int fd)
{
	(void)body;
	(void)fd;
	if (hdr->type != MSG_QUERY)
		return 0;
	Ipc__Result r = IPC__RESULT__INIT;
	Ipc__Error e = IPC__ERROR__INIT;
	e.code = 14;
	e.message = "etcdserver: request timed out";
	r.error = &e;
	link_send_pb(fake_stor, MSG_RESULT, hdr->id, &r.base);
	return 1;
}

static void test_failures(void)
{
	int cc = n_cc;
	stor_hook = stor_err;
	struct exchange *x = http(EVHTTP_REQ_POST, "/v3/cluster/member/add",
				  "{\"peerURLs\":[\"http://127.0.0.1:2396\"]}");
	EXPECT(x, 503, ERRBODY("etcdserver: request timed out", 14));
	stor_hook = NULL;
	CHECK(n_cc == cc, "proposed without the member list");

	/* Without raftd, nothing is proposed: an error at once. */
	link_free(fake_raft);
	fake_raft = NULL;
	while (w.peer[PROC_RAFTD])
		event_base_loop(base, EVLOOP_ONCE);
	x = http(EVHTTP_REQ_POST, "/v3/cluster/member/remove", "{\"ID\":\"1\"}");
	EXPECT(x, 503, ERRBODY("etcdserver: request timed out", 14));
	x = http(EVHTTP_REQ_POST, "/v3/cluster/member/add",
		 "{\"peerURLs\":[\"http://127.0.0.1:2397\"]}");
	EXPECT(x, 503, ERRBODY("etcdserver: request timed out", 14));
	connect_peer(PROC_RAFTD);
	send_raft_state(MEMBER);

	/* raftd goes away while the change is in flight. */
	answer_with = ANS_NONE;
	struct exchange y;
	start(&y, client_port, EVHTTP_REQ_POST, "/v3/cluster/member/remove",
	      "{\"ID\":\"2\"}", 10);
	while (n_cc == cc)
		event_base_loop(base, EVLOOP_ONCE);
	link_free(fake_raft);
	fake_raft = NULL;
	finish(&y);
	EXPECT(&y, 503, ERRBODY("etcdserver: request timed out", 14));
	connect_peer(PROC_RAFTD);
	send_raft_state(MEMBER);
	answer_with = ANS_RESULT;
	CHECK(gw.pend.n == 0, "%zu requests left pending", gw.pend.n);
}

int main(void)
{
	harness_init();
	raft_hook = on_raft;
	test_member_id();
	test_peerurl();
	test_add();
	test_add_refused();
	test_remove_update_promote();
	test_failures();
	raft_hook = NULL;
	if (last_cc)
		raftpb__conf_change__free_unpacked(last_cc, NULL);
	if (last_ctx)
		etcdserverpb__member__free_unpacked(last_ctx, NULL);
	harness_done();
	return failures ? 1 : 0;
}
