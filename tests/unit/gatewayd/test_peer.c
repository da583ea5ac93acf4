/*
 * gatewayd's peer transport over real sockets: POST /raft batches reach the
 * fake raftd message by message; messages from the fake raftd leave as
 * POST /raft batches to a small HTTP server standing in for a peer; a peer
 * of another cluster stops the member with etcd's message.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "harness.h"
#include "peer.h"
#include "raft.pb-c.h"

#define PEER2 0x1c2d3e4f5a6b7c8dULL

/* A packed raftpb.Message to `to`, of a given index (to tell them apart). */
static size_t pack_msg(uint8_t *out, uint64_t to, uint64_t index)
{
	Raftpb__Message m = RAFTPB__MESSAGE__INIT;
	m.type = RAFTPB__MESSAGE_TYPE__MsgHeartbeat;
	m.to = to;
	m.from = PEER2;
	m.term = 3;
	m.index = index;
	return raftpb__message__pack(&m, out);
}

static size_t frame(uint8_t *out, const uint8_t *msg, size_t n)
{
	out[0] = (uint8_t)n;
	out[1] = (uint8_t)(n >> 8);
	out[2] = (uint8_t)(n >> 16);
	out[3] = (uint8_t)(n >> 24);
	memcpy(out + 4, msg, n);
	return 4 + n;
}

/* A client POST /raft with the given cluster ID header (NULL: none). */
struct post {
	int done, status;
	char body[256];
	char cid[64];
};

static void on_post(struct evhttp_request *req, void *arg)
{
	struct post *x = arg;
	x->done = 1;
	x->status = req ? evhttp_request_get_response_code(req) : -1;
	if (!req)
		return;
	struct evbuffer *b = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(b);
	if (n >= sizeof(x->body))
		n = sizeof(x->body) - 1;
	evbuffer_remove(b, x->body, n);
	x->body[n] = 0;
	const char *c = evhttp_find_header(evhttp_request_get_input_headers(req),
					   "X-Etcd-Cluster-Id");
	snprintf(x->cid, sizeof(x->cid), "%s", c ? c : "");
}

static void post_raft(struct post *x, const char *cid, const uint8_t *body,
		      size_t len)
{
	memset(x, 0, sizeof(*x));
	struct evhttp_connection *evcon =
		evhttp_connection_base_new(base, NULL, "127.0.0.1",
					   (unsigned short)peer_port);
	struct evhttp_request *req = evhttp_request_new(on_post, x);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", "127.0.0.1");
	if (cid)
		evhttp_add_header(h, "X-Etcd-Cluster-ID", cid);
	evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
	assert(evhttp_make_request(evcon, req, EVHTTP_REQ_POST, "/raft") == 0);
	for (int i = 0; i < 5000 && !x->done; i++)
		pump_ms(1);
	CHECK(x->done, "POST /raft answered");
	evhttp_connection_free(evcon);
}

static void test_receive(void)
{
	uint8_t m1[64], m2[64], body[160];
	size_t n1 = pack_msg(m1, MEMBER, 11), n2 = pack_msg(m2, MEMBER, 12);
	size_t len = frame(body, m1, n1);
	len += frame(body + len, m2, n2);
	struct post x;

	n_raft_msgs = 0;
	post_raft(&x, "ac3c15e4a1a63f2a", body, len);
	CHECK(x.status == 204, "good batch: %d %s", x.status, x.body);
	pump_ms(20);
	CHECK(n_raft_msgs == 2, "raftd got %d messages", n_raft_msgs);
	CHECK(raft_msg_len[0] == n1 && !memcmp(raft_msgs[0], m1, n1), "first message");
	CHECK(raft_msg_len[1] == n2 && !memcmp(raft_msgs[1], m2, n2), "second message");

	n_raft_msgs = 0;
	post_raft(&x, "deadbeef", body, len);
	CHECK(x.status == 412 && strcmp(x.body, "cluster ID mismatch\n") == 0 &&
	      strcmp(x.cid, "ac3c15e4a1a63f2a") == 0,
	      "other cluster: %d %s [%s]", x.status, x.body, x.cid);
	post_raft(&x, NULL, body, len);
	CHECK(x.status == 412, "no cluster ID: %d", x.status);

	/* Truncated: the second message is cut short. */
	post_raft(&x, "ac3c15e4a1a63f2a", body, len - 3);
	CHECK(x.status == 400, "malformed: %d %s", x.status, x.body);
	pump_ms(20);
	CHECK(n_raft_msgs == 0, "nothing of a refused batch reached raftd: %d",
	      n_raft_msgs);
}

/* The stand-in peer: records each POST /raft, answers as told. */
static struct {
	int n;
	char path[64], ctype[64], cid[64], from[64], version[64];
	uint8_t body[1024];
	size_t len;
	int answer;          /* 204, or 412 with answer_cid */
	const char *answer_cid;
} srv;

static void on_srv(struct evhttp_request *req, void *arg)
{
	(void)arg;
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const char *v;
	srv.n++;
	snprintf(srv.path, sizeof(srv.path), "%s", evhttp_request_get_uri(req));
#define HDRCOPY(f, name) snprintf(srv.f, sizeof(srv.f), "%s", (v = evhttp_find_header(h, name)) ? v : "")
	HDRCOPY(ctype, "Content-Type");
	HDRCOPY(cid, "X-Etcd-Cluster-ID");
	HDRCOPY(from, "X-Server-From");
	HDRCOPY(version, "X-Server-Version");
	struct evbuffer *b = evhttp_request_get_input_buffer(req);
	srv.len = evbuffer_get_length(b);
	if (srv.len > sizeof(srv.body))
		srv.len = sizeof(srv.body);
	evbuffer_remove(b, srv.body, srv.len);
	if (srv.answer == 412) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
				  "X-Etcd-Cluster-Id", srv.answer_cid);
		evbuffer_add_printf(evhttp_request_get_output_buffer(req),
				    "cluster ID mismatch\n");
		evhttp_send_reply(req, 412, "Precondition Failed", NULL);
	} else {
		evhttp_send_reply(req, 204, "No Content", NULL);
	}
}

static void fatal_hook(struct gw *g, const char *msg)
{
	/* What worker_fatal() sends before it exits. */
	Ipc__Error e = IPC__ERROR__INIT;
	(void)g;
	e.message = (char *)msg;
	link_send_pb(w.sup, MSG_FATAL, 0, &e.base);
}

static void from_raftd(uint64_t to, uint64_t index, uint8_t *ret_msg,
		       size_t *ret_len)
{
	*ret_len = pack_msg(ret_msg, to, index);
	link_send(fake_raft, MSG_RAFT_MSG, 0, ret_msg, *ret_len);
}

static void wait_srv(int n)
{
	for (int i = 0; i < 3000 && srv.n < n; i++)
		pump_ms(1);
}

static void test_send(void)
{
	struct evhttp *h = evhttp_new(base);
	struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(h, "127.0.0.1", 0);
	assert(bs);
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	assert(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&a,
			   &alen) == 0);
	evhttp_set_gencb(h, on_srv, NULL);
	srv.answer = 204;

	/* The peer's URL comes from storaged's member list. */
	extra_member_id = PEER2;
	snprintf(extra_member_url, sizeof(extra_member_url),
		 "http://127.0.0.1:%d", ntohs(a.sin_port));
	peer_storaged_up(&gw);
	pump_ms(30);

	/* Three messages in one pass of the loop: one request. */
	uint8_t m[3][64], want[256];
	size_t n[3], wlen = 0;
	for (int i = 0; i < 3; i++) {
		from_raftd(PEER2, 20 + (uint64_t)i, m[i], &n[i]);
		wlen += frame(want + wlen, m[i], n[i]);
	}
	wait_srv(1);
	pump_ms(30);
	CHECK(srv.n == 1, "requests: %d", srv.n);
	CHECK(strcmp(srv.path, "/raft") == 0, "path %s", srv.path);
	CHECK(strcmp(srv.ctype, "application/protobuf") == 0, "ctype %s", srv.ctype);
	CHECK(strcmp(srv.cid, "ac3c15e4a1a63f2a") == 0, "cluster %s", srv.cid);
	CHECK(strcmp(srv.from, "6bb9b1d4a17b1503") == 0, "from %s", srv.from);
	CHECK(strcmp(srv.version, "3.4.23") == 0, "version %s", srv.version);
	CHECK(srv.len == wlen && !memcmp(srv.body, want, wlen), "body %zu/%zu",
	      srv.len, wlen);

	/* And the connection carries the next batch. */
	uint8_t m4[64];
	size_t n4;
	from_raftd(PEER2, 30, m4, &n4);
	wait_srv(2);
	CHECK(srv.n == 2 && srv.len == 4 + n4 && !memcmp(srv.body + 4, m4, n4),
	      "second batch: %d requests, %zu bytes", srv.n, srv.len);

	/* A member we know no URL of: dropped, nothing breaks. */
	from_raftd(0x77, 1, m4, &n4);
	pump_ms(20);
	CHECK(srv.n == 2, "nothing sent for an unknown member");

	/* A peer of another cluster: etcd's fatal message. */
	srv.answer = 412;
	srv.answer_cid = "deadbeef";
	gw.fatal_hook = fatal_hook;
	from_raftd(PEER2, 31, m4, &n4);
	wait_srv(3);
	for (int i = 0; i < 1000 && !last_fatal[0]; i++)
		pump_ms(1);
	CHECK(strcmp(last_fatal, "conflicting cluster ID to the target cluster "
				 "(00000000deadbeef != ac3c15e4a1a63f2a). Exiting.") == 0,
	      "fatal: %s", last_fatal);
	gw.fatal_hook = NULL;

	/* The peer goes away: messages to it are dropped, then retried. */
	evhttp_free(h);
	srv.answer = 204;
	from_raftd(PEER2, 32, m4, &n4);
	pump_ms(100);
	from_raftd(PEER2, 33, m4, &n4);
	pump_ms(50);
	extra_member_id = 0;
}

static void test_msg_to(void)
{
	uint8_t b[64];
	uint64_t to = 0;
	size_t n = pack_msg(b, 0x1234567890abcdefULL, 5);
	CHECK(peer_msg_to(b, n, &to) == 0 && to == 0x1234567890abcdefULL, "to");
	CHECK(peer_msg_to(b, 1, &to) < 0, "truncated");
	b[0] = 0xff;
	CHECK(peer_msg_to(b, 1, &to) < 0, "bad varint");
}

int main(void)
{
	harness_init();
	test_msg_to();
	test_receive();
	test_send();
	harness_done();
	return failures ? 1 : 0;
}
