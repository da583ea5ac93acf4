/*
 * Snapshots between members through the real gatewayd, talking to itself:
 * a MsgSnap from the fake raftd makes the fake storaged hand over a few
 * files, gatewayd streams them as POST /raft/snapshot to its own peer
 * listener, whose half gives them back to the fake storaged as chunks;
 * the checksum, the order of the chunks, the MsgSnap reaching raftd after
 * the install and MSG_SNAP_STATUS are checked, and so are the failures
 * (peer unreachable, storaged errors, a stalled transfer, bad requests)
 * and /health with and without a leader.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>

#include "certs.h"
#include "harness.h"
#include "peer.h"
#include "raft.pb-c.h"
#include "snap.h"

#define PEER2 0x1c2d3e4f5a6b7c8dULL
#define CID "ac3c15e4a1a63f2a"

/* The snapshot's files, as the fake storaged's checkpoint. */
static struct {
	const char *name;
	size_t size;
} files[] = {
	{ "CURRENT", 16 },
	{ "empty.log", 0 },
	{ "000009.sst", (5u << 19) + 123 }, /* 2.5 MiB and a bit: 3 chunks */
	{ "MANIFEST-000005", 300 },
};
#define NFILES (sizeof(files) / sizeof(files[0]))
static char dir[64];
static uint8_t want_sha[32];

/* What the fake storaged does and saw. */
static int n_make, hold_make, make_error;
static uint64_t make_tid, make_index, make_term, make_to;
static struct chunk {
	char name[64];
	uint64_t offset;
	size_t len;
	int done;
} chunks[64];
static int n_chunks;
static int ack_error_at = -1;  /* chunk number answered with an error */
static int hold_ack;           /* do not ack chunks */
static uint64_t chunk_tid;
static EVP_MD_CTX *rx_md;
static int sha_ok = -1;
static size_t rx_bytes;

/* And the fake raftd. */
static int n_status, status_failed;
static uint64_t status_to;

static void make_files(void)
{
	snprintf(dir, sizeof(dir), "/tmp/gwsnapXXXXXX");
	assert(mkdtemp(dir));
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	for (size_t i = 0; i < NFILES; i++) {
		char path[128];
		uint8_t *b = malloc(files[i].size + 1);
		for (size_t j = 0; j < files[i].size; j++)
			b[j] = (uint8_t)(j * 31 + i * 7 + (j >> 12));
		snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		assert(fd >= 0);
		assert(write(fd, b, files[i].size) == (ssize_t)files[i].size);
		close(fd);
		EVP_DigestUpdate(md, files[i].name, strlen(files[i].name) + 1);
		EVP_DigestUpdate(md, b, files[i].size);
		free(b);
	}
	unsigned n;
	EVP_DigestFinal_ex(md, want_sha, &n);
	EVP_MD_CTX_free(md);
}

static void remove_files(void)
{
	char path[128];
	for (size_t i = 0; i < NFILES; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
		unlink(path);
	}
	rmdir(dir);
}

/* Hands the files over for transfer tid, then the last frame. */
static void send_files(uint64_t tid)
{
	for (size_t i = 0; i < NFILES; i++) {
		char path[128];
		Ipc__SnapFile f = IPC__SNAP_FILE__INIT;
		snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
		int fd = open(path, O_RDONLY);
		assert(fd >= 0);
		f.name = (char *)files[i].name;
		f.size = files[i].size;
		link_send_fd(fake_stor, MSG_SNAP_FILE, tid, &f.base, fd);
	}
	Ipc__SnapFile last = IPC__SNAP_FILE__INIT;
	Ipc__Error e = IPC__ERROR__INIT;
	last.last = 1;
	if (make_error) {
		e.code = 13;
		e.message = "rocksdb: checkpoint failed";
		last.error = &e;
	} else {
		last.applied_index = 120;
	}
	link_send_pb(fake_stor, MSG_SNAP_FILE, tid, &last.base);
}

static void ack(uint64_t tid, const char *error)
{
	Ipc__SnapAck a = IPC__SNAP_ACK__INIT;
	Ipc__Error e = IPC__ERROR__INIT;
	if (error) {
		e.code = 13;
		e.message = (char *)error;
		a.error = &e;
	}
	a.applied_index = 120;
	link_send_pb(fake_stor, MSG_SNAP_ACK, tid, &a.base);
}

static int on_stor(const struct msg_hdr *hdr, const uint8_t *body, int fd)
{
	(void)fd;
	if (hdr->type == MSG_SNAP_MAKE) {
		Ipc__SnapMake *m = ipc__snap_make__unpack(NULL, hdr->len, body);
		assert(m);
		n_make++;
		make_tid = hdr->id;
		make_to = m->to;
		make_index = m->index;
		make_term = m->term;
		ipc__snap_make__free_unpacked(m, NULL);
		if (!hold_make)
			send_files(hdr->id);
		return 1;
	}
	if (hdr->type != MSG_SNAP_CHUNK)
		return 0;
	Ipc__SnapChunk *c = ipc__snap_chunk__unpack(NULL, hdr->len, body);
	assert(c);
	if (n_chunks == 0 || hdr->id != chunk_tid) {
		/* A new transfer. */
		EVP_DigestInit_ex(rx_md, EVP_sha256(), NULL);
		chunk_tid = hdr->id;
		rx_bytes = 0;
	}
	int k = n_chunks++;
	if (k < 64) {
		struct chunk *ch = &chunks[k];
		snprintf(ch->name, sizeof(ch->name), "%s", c->name);
		ch->offset = c->offset;
		ch->len = c->data.len;
		ch->done = c->done;
	}
	CHECK(c->from == MEMBER && c->index == 100 && c->term == 2,
	      "chunk from %llx index %llu term %llu",
	      (unsigned long long)c->from, (unsigned long long)c->index,
	      (unsigned long long)c->term);
	if (c->done) {
		uint8_t sum[32];
		unsigned n;
		EVP_DigestFinal_ex(rx_md, sum, &n);
		sha_ok = c->sha256.len == 32 && !memcmp(c->sha256.data, sum, 32) &&
			 !memcmp(sum, want_sha, 32);
	} else {
		if (c->offset == 0)
			EVP_DigestUpdate(rx_md, c->name, strlen(c->name) + 1);
		EVP_DigestUpdate(rx_md, c->data.data, c->data.len);
		rx_bytes += c->data.len;
	}
	if (!hold_ack)
		ack(hdr->id, k == ack_error_at ? "etcdserver: no space" : NULL);
	ipc__snap_chunk__free_unpacked(c, NULL);
	return 1;
}

static int on_raft(const struct msg_hdr *hdr, const uint8_t *body, int fd)
{
	(void)fd;
	if (hdr->type != MSG_SNAP_STATUS)
		return 0;
	Ipc__SnapStatus *s = ipc__snap_status__unpack(NULL, hdr->len, body);
	assert(s);
	n_status++;
	status_to = s->to;
	status_failed = s->failed;
	ipc__snap_status__free_unpacked(s, NULL);
	return 1;
}

static size_t pack_snap(uint8_t *out, uint64_t to)
{
	Raftpb__Message m = RAFTPB__MESSAGE__INIT;
	Raftpb__Snapshot sn = RAFTPB__SNAPSHOT__INIT;
	Raftpb__SnapshotMetadata md = RAFTPB__SNAPSHOT_METADATA__INIT;
	Raftpb__ConfState cs = RAFTPB__CONF_STATE__INIT;
	uint64_t voters[] = { MEMBER, PEER2 };
	cs.voters = voters;
	cs.n_voters = 2;
	md.conf_state = &cs;
	md.index = 100;
	md.term = 2;
	sn.metadata = &md;
	m.type = RAFTPB__MESSAGE_TYPE__MsgSnap;
	m.to = to;
	m.from = MEMBER;
	m.term = 2;
	m.snapshot = &sn;
	return raftpb__message__pack(&m, out);
}

static int open_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	assert(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own */
}

static void reset(void)
{
	n_make = hold_make = make_error = 0;
	n_chunks = 0;
	ack_error_at = -1;
	hold_ack = 0;
	sha_ok = -1;
	n_status = 0;
	status_failed = -1;
	n_raft_msgs = 0;
}

static void wait_status(int n, int ms)
{
	for (int i = 0; i < ms && n_status < n; i++)
		pump_ms(1);
}

/* Built twice: plain, and with SNAP_TLS over an https peer listener. */
#ifdef SNAP_TLS
#define SCHEME "https"
#else
#define SCHEME "http"
#endif
static int send_port; /* where the snapshots go: our own peer listener */

static void set_peer_url(int port)
{
	extra_member_id = PEER2;
	snprintf(extra_member_url, sizeof(extra_member_url),
		 SCHEME "://127.0.0.1:%d", port);
	peer_storaged_up(&gw);
	pump_ms(30);
}

static void test_success(void)
{
	uint8_t m[256];
	size_t n = pack_snap(m, PEER2);
	reset();
	int fds = open_fds();
	link_send(fake_raft, MSG_RAFT_MSG, 0, m, n);
	wait_status(1, 5000);
	CHECK(n_make == 1 && make_to == PEER2 && make_index == 100 &&
	      make_term == 2, "MSG_SNAP_MAKE: %d", n_make);
	CHECK(n_status == 1 && !status_failed && status_to == PEER2,
	      "status: %d failed %d", n_status, status_failed);
	CHECK(sha_ok == 1, "checksum %d", sha_ok);

	/* Files in order, each by increasing offset, 1 MiB at most. */
	int k = 0;
	for (size_t i = 0; i < NFILES; i++) {
		uint64_t off = 0;
		do {
			size_t want = files[i].size - off > SNAP_CHUNK_MAX
					      ? SNAP_CHUNK_MAX
					      : files[i].size - off;
			CHECK(k < n_chunks && !strcmp(chunks[k].name, files[i].name) &&
			      chunks[k].offset == off && chunks[k].len == want &&
			      !chunks[k].done,
			      "chunk %d: %s@%llu+%zu, want %s@%llu+%zu", k,
			      chunks[k].name, (unsigned long long)chunks[k].offset,
			      chunks[k].len, files[i].name, (unsigned long long)off,
			      want);
			off += want;
			k++;
		} while (off < files[i].size);
	}
	CHECK(n_chunks == k + 1 && chunks[k].done, "%d chunks, the last done",
	      n_chunks);

	/* The MsgSnap reached raftd, unchanged, after the install. */
	CHECK(n_raft_msgs == 1 && raft_msg_len[0] == n &&
	      !memcmp(raft_msgs[0], m, n), "raftd got %d messages", n_raft_msgs);
	pump_ms(50);
	CHECK(open_fds() == fds, "descriptors: %d, before %d", open_fds(), fds);
	CHECK(snap_sending(&gw) == 0, "transfers left: %zu", snap_sending(&gw));

	struct exchange *x = http(EVHTTP_REQ_GET, "/metrics", NULL);
	CHECK(strstr(x->body, "etcd_network_snapshot_send_success{To=\"1c2d3e4f5a6b7c8d\"} 1\n") &&
	      strstr(x->body, "etcd_network_snapshot_receive_success{From=\"6bb9b1d4a17b1503\"} 1\n") &&
	      strstr(x->body, "# HELP etcd_network_peer_sent_bytes_total The total number of bytes sent to peers.\n") &&
	      strstr(x->body, "etcd_network_peer_sent_bytes_total{To=\"1c2d3e4f5a6b7c8d\"} 2.62") &&
	      strstr(x->body, "etcd_network_peer_received_bytes_total{From=\"6bb9b1d4a17b1503\"} 2.62"),
	      "metrics:\n%s", x->body);
}

/* A second MsgSnap to the same peer while one is out is dropped. */
static void test_one_in_flight(void)
{
	uint8_t m[256];
	size_t n = pack_snap(m, PEER2);
	reset();
	hold_make = 1;
	link_send(fake_raft, MSG_RAFT_MSG, 0, m, n);
	pump_ms(20);
	link_send(fake_raft, MSG_RAFT_MSG, 0, m, n);
	pump_ms(20);
	CHECK(n_make == 1 && n_status == 0, "makes %d, status %d", n_make,
	      n_status);
	send_files(make_tid);
	wait_status(1, 5000);
	pump_ms(20);
	CHECK(n_status == 1 && !status_failed, "status: %d failed %d", n_status,
	      status_failed);
}

static void test_failures(void)
{
	uint8_t m[256];
	size_t n = pack_snap(m, PEER2);
	int fds = open_fds();

	/* storaged cannot write a chunk: the follower answers 500. */
	reset();
	ack_error_at = 2;
	link_send(fake_raft, MSG_RAFT_MSG, 0, m, n);
	wait_status(1, 5000);
	CHECK(n_status == 1 && status_failed == 1 && n_chunks == 3,
	      "storaged error: status %d failed %d, %d chunks", n_status,
	      status_failed, n_chunks);
	CHECK(n_raft_msgs == 0, "no MsgSnap reached raftd");
	pump_ms(50);
	CHECK(open_fds() == fds, "descriptors after an error: %d, before %d",
	      open_fds(), fds);

	/* storaged cannot make the snapshot. */
	reset();
	make_error = 1;
	link_send(fake_raft, MSG_RAFT_MSG, 0, m, n);
	wait_status(1, 5000);
	CHECK(n_status == 1 && status_failed == 1 && n_chunks == 0,
	      "make error: status %d failed %d", n_status, status_failed);
	pump_ms(20);
	CHECK(open_fds() == fds, "descriptors after a make error: %d, before %d",
	      open_fds(), fds);

	/* No progress: the transfer times out; files that come late are
	 * closed. */
	reset();
	hold_make = 1;
	snap_set_stall_ms(&gw, 100);
	link_send(fake_raft, MSG_RAFT_MSG, 0, m, n);
	wait_status(1, 3000);
	CHECK(n_status == 1 && status_failed == 1, "stall: status %d failed %d",
	      n_status, status_failed);
	send_files(make_tid);
	pump_ms(50);
	CHECK(open_fds() == fds, "descriptors after a stall: %d, before %d",
	      open_fds(), fds);
	snap_set_stall_ms(&gw, SNAP_STALL_MS);

	/* A member we know no URL of. */
	reset();
	n = pack_snap(m, 0x77);
	link_send(fake_raft, MSG_RAFT_MSG, 0, m, n);
	wait_status(1, 1000);
	CHECK(n_status == 1 && status_failed == 1 && status_to == 0x77 &&
	      n_make == 0, "unknown member: status %d", n_status);

	/* The peer is unreachable. */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0);
	assert(getsockname(s, (struct sockaddr *)&a, &alen) == 0);
	close(s); /* nobody listens there now */
	set_peer_url(ntohs(a.sin_port));
	reset();
	fds = open_fds();
	n = pack_snap(m, PEER2);
	link_send(fake_raft, MSG_RAFT_MSG, 0, m, n);
	wait_status(1, 5000);
	CHECK(n_status == 1 && status_failed == 1 && status_to == PEER2 &&
	      n_make == 1 && n_chunks == 0,
	      "unreachable: status %d failed %d", n_status, status_failed);
	pump_ms(50);
	CHECK(open_fds() == fds, "descriptors after unreachable: %d, before %d",
	      open_fds(), fds);
	set_peer_url(send_port);

	struct exchange *x = http(EVHTTP_REQ_GET, "/metrics", NULL);
	CHECK(strstr(x->body, "etcd_network_snapshot_send_failures{To=\"1c2d3e4f5a6b7c8d\"} 4\n") &&
	      strstr(x->body, "etcd_network_snapshot_send_failures{To=\"77\"} 1\n") &&
	      strstr(x->body, "etcd_network_peer_sent_failures_total{To=\"1c2d3e4f5a6b7c8d\"} 2\n") &&
	      strstr(x->body, "etcd_network_active_peers{Local=\"6bb9b1d4a17b1503\",Remote=\"1c2d3e4f5a6b7c8d\"} 0\n") &&
	      strstr(x->body, "etcd_network_disconnected_peers_total{Local=\"6bb9b1d4a17b1503\",Remote=\"1c2d3e4f5a6b7c8d\"} 1\n"),
	      "metrics:\n%s", x->body);
}

/* A direct POST /raft/snapshot with the given headers (NULL-ended pairs). */
struct post {
	int done, status;
	char body[256];
	char cid[64];
	struct evhttp_connection *evcon;
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

static void post_start(struct post *x, enum evhttp_cmd_type cmd,
		       const char *const *hdrs, const void *body, size_t len)
{
	memset(x, 0, sizeof(*x));
	x->evcon = evhttp_connection_base_new(base, NULL, "127.0.0.1",
					      (unsigned short)peer_port);
	struct evhttp_request *req = evhttp_request_new(on_post, x);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", "127.0.0.1");
	for (size_t i = 0; hdrs && hdrs[i]; i += 2)
		evhttp_add_header(h, hdrs[i], hdrs[i + 1]);
	if (len)
		evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
	assert(evhttp_make_request(x->evcon, req, cmd, SNAP_PATH) == 0);
}

static void post_wait(struct post *x)
{
	for (int i = 0; i < 5000 && !x->done; i++)
		pump_ms(1);
	CHECK(x->done, "POST /raft/snapshot answered");
	evhttp_connection_free(x->evcon);
}

static void post_snap(struct post *x, const char *const *hdrs,
		      const void *body, size_t len)
{
	post_start(x, EVHTTP_REQ_POST, hdrs, body, len);
	post_wait(x);
}

#define BASE_HDRS "X-Etcd-Cluster-ID", CID, "X-Server-From", "6bb9b1d4a17b1503", \
	"X-Snapshot-Index", "100", "X-Snapshot-Term", "2"

static void test_receive(void)
{
	struct post x;
	const char chunk[] = "hello";
	reset();

	const char *const good[] = { BASE_HDRS, "X-Snapshot-Transfer", "a1",
		"X-Snapshot-File", "000009.sst", "X-Snapshot-Offset", "0", NULL };
	post_snap(&x, good, chunk, 5);
	CHECK(x.status == 204 && n_chunks == 1 && chunks[0].len == 5 &&
	      !strcmp(chunks[0].name, "000009.sst"), "good chunk: %d %s",
	      x.status, x.body);

	post_start(&x, EVHTTP_REQ_GET, good, NULL, 0);
	post_wait(&x);
	CHECK(x.status == 405, "GET: %d", x.status);

	const char *const other[] = { "X-Etcd-Cluster-ID", "deadbeef",
		"X-Server-From", "6bb9b1d4a17b1503", NULL };
	post_snap(&x, other, chunk, 5);
	CHECK(x.status == 412 && !strcmp(x.body, "cluster ID mismatch\n") &&
	      !strcmp(x.cid, CID), "other cluster: %d %s", x.status, x.body);

	/* Bad headers: 400, nothing reaches storaged. */
	static const char *const bad[][16] = {
		{ "X-Etcd-Cluster-ID", CID, "X-Snapshot-Transfer", "a1", NULL },
		{ BASE_HDRS, NULL },
		{ BASE_HDRS, "X-Snapshot-Transfer", "zz", "X-Snapshot-File", "a", "X-Snapshot-Offset", "0", NULL },
		{ BASE_HDRS, "X-Snapshot-Transfer", "0", "X-Snapshot-File", "a", "X-Snapshot-Offset", "0", NULL },
		{ BASE_HDRS, "X-Snapshot-Transfer", "a1", "X-Snapshot-File", "../etc", "X-Snapshot-Offset", "0", NULL },
		{ BASE_HDRS, "X-Snapshot-Transfer", "a1", "X-Snapshot-File", "", "X-Snapshot-Offset", "0", NULL },
		{ BASE_HDRS, "X-Snapshot-Transfer", "a1", "X-Snapshot-File", "a", "X-Snapshot-Offset", "-1", NULL },
		{ BASE_HDRS, "X-Snapshot-Transfer", "a1", "X-Snapshot-File", "a", "X-Snapshot-Offset", "99999999999999999999", NULL },
		{ BASE_HDRS, "X-Snapshot-Transfer", "a1", "X-Snapshot-File", "a", NULL },
		{ BASE_HDRS, "X-Snapshot-Transfer", "a1", "X-Snapshot-Done", "1", "X-Snapshot-Sha256", "abc", NULL },
		{ BASE_HDRS, "X-Snapshot-Transfer", "a1", "X-Snapshot-Done", "yes", NULL },
		{ "X-Etcd-Cluster-ID", CID, "X-Server-From", "6bb9b1d4a17b1503", "X-Snapshot-Index", "1x", "X-Snapshot-Term", "2", "X-Snapshot-Transfer", "a1", "X-Snapshot-File", "a", "X-Snapshot-Offset", "0", NULL },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		post_snap(&x, bad[i], chunk, 5);
		CHECK(x.status == 400, "bad headers %zu: %d %s", i, x.status, x.body);
	}
	/* The final request must carry a MsgSnap. */
	const char *const fin[] = { BASE_HDRS, "X-Snapshot-Transfer", "a1",
		"X-Snapshot-Done", "1", "X-Snapshot-Sha256",
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
		NULL };
	post_snap(&x, fin, chunk, 5);
	CHECK(x.status == 400 && !strcmp(x.body, "wrong raft message type\n"),
	      "done without MsgSnap: %d %s", x.status, x.body);
	/* A chunk beyond 1 MiB. */
	char *big = calloc(1, SNAP_CHUNK_MAX + 1);
	post_snap(&x, good, big, SNAP_CHUNK_MAX + 1);
	CHECK(x.status == 400, "big chunk: %d", x.status);
	free(big);
	CHECK(n_chunks == 1, "refused requests reached storaged: %d", n_chunks);

	/* storaged's error, passed on. */
	ack_error_at = 1;
	post_snap(&x, good, chunk, 5);
	CHECK(x.status == 500 && !strcmp(x.body, "etcdserver: no space\n"),
	      "storaged error: %d %s", x.status, x.body);

	/* storaged goes away while a chunk waits: 503. */
	hold_ack = 1;
	post_start(&x, EVHTTP_REQ_POST, good, chunk, 5);
	while (n_chunks < 3)
		pump_ms(1);
	restart_storaged();
	post_wait(&x);
	CHECK(x.status == 503, "storaged gone: %d %s", x.status, x.body);

	/* The done ack gives raftd the MsgSnap, then 204. */
	hold_ack = 0;
	uint8_t m[256];
	size_t n = pack_snap(m, MEMBER);
	post_snap(&x, fin, m, n);
	CHECK(x.status == 204 && n_raft_msgs == 1 && raft_msg_len[0] == n,
	      "done: %d %s, raftd got %d", x.status, x.body, n_raft_msgs);

	/* The sender goes away while its chunk waits: nothing breaks, and
	 * the late ack is ignored. */
	hold_ack = 1;
	int before = n_chunks;
	post_start(&x, EVHTTP_REQ_POST, good, chunk, 5);
	while (n_chunks == before)
		pump_ms(1);
	evhttp_connection_free(x.evcon);
	pump_ms(30);
	ack(0xa1, NULL);
	pump_ms(30);
	hold_ack = 0;
	post_snap(&x, good, chunk, 5);
	CHECK(x.status == 204, "after a sender went away: %d %s", x.status, x.body);

	/* storaged does not answer: the request does not wait forever. */
	hold_ack = 1;
	snap_set_stall_ms(&gw, 100);
	post_snap(&x, good, chunk, 5);
	CHECK(x.status == 503 && !strcmp(x.body, "storaged did not answer in time\n"),
	      "no ack: %d %s", x.status, x.body);
	snap_set_stall_ms(&gw, SNAP_STALL_MS);
	hold_ack = 0;
}

static void test_health(void)
{
	send_raft_state(0);
	pump_ms(20);
	struct exchange *x = http(EVHTTP_REQ_GET, "/health", NULL);
	EXPECT(x, 503, "{\"health\":\"false\"}\n");
	send_raft_state(MEMBER);
	pump_ms(20);
	x = http(EVHTTP_REQ_GET, "/health", NULL);
	EXPECT(x, 200, "{\"health\":\"true\"}");
	CHECK(strcmp(x->ctype, "text/plain; charset=utf-8") == 0, "ctype %s",
	      x->ctype);
}

int main(void)
{
#ifdef SNAP_TLS
	static Ipc__TlsInfo peer = IPC__TLS_INFO__INIT;
	certs_make();
	peer.cert_file = strdup(certs_path("m.crt"));
	peer.key_file = strdup(certs_path("m.key"));
	peer.trusted_ca_file = strdup(certs_path("ca.crt"));
	peer.client_cert_auth = 1;
	harness_cfg.peer_tls = &peer;
	harness_init();
	send_port = harness_listen("https://127.0.0.1:0", 1);
#else
	harness_init();
	send_port = peer_port;
#endif
	rx_md = EVP_MD_CTX_new();
	make_files();
	stor_hook = on_stor;
	raft_hook = on_raft;
	set_peer_url(send_port);
	test_success();
	test_one_in_flight();
	test_failures();
	test_receive();
	test_health();
	stor_hook = NULL;
	raft_hook = NULL;
	remove_files();
	EVP_MD_CTX_free(rx_md);
	harness_done();
#ifdef SNAP_TLS
	certs_remove();
	free(peer.cert_file);
	free(peer.key_file);
	free(peer.trusted_ca_file);
#endif
	return failures ? 1 : 0;
}
