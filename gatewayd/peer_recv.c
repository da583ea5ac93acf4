/*
 * The receiving half of the peer transport: POST /raft on the peer
 * listener. A batch from another cluster is refused as etcd refuses it
 * (412, our ID in X-Etcd-Cluster-Id); otherwise every message of the body
 * goes to raftd as its own MSG_RAFT_MSG, bytes untouched.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "gw.h"
#include "log.h"
#include "peer.h"

/* 1 if every {u32 le length, message} of b fits exactly. */
static int well_framed(const uint8_t *b, size_t len)
{
	size_t i = 0;
	while (i < len) {
		if (len - i < 4)
			return 0;
		uint32_t n = (uint32_t)b[i] | (uint32_t)b[i + 1] << 8 |
			     (uint32_t)b[i + 2] << 16 | (uint32_t)b[i + 3] << 24;
		i += 4;
		if (n > len - i)
			return 0;
		i += n;
	}
	return 1;
}

int peer_parse_id(const char *s, uint64_t *ret_id)
{
	char *end;
	if (!s || !*s || strlen(s) > 16 || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 16);
	if (*end || errno || v == 0)
		return -EINVAL;
	*ret_id = v;
	return 0;
}

int peer_check_cluster(struct gw *gw, struct evhttp_request *req)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req),
					   "X-Etcd-Cluster-ID");
	uint64_t theirs;
	if (peer_parse_id(h, &theirs) == 0 && theirs == gw->cluster_id)
		return 0;
	char ours[17];
	snprintf(ours, sizeof(ours), "%llx", (unsigned long long)gw->cluster_id);
	evhttp_add_header(evhttp_request_get_output_headers(req),
			  "X-Etcd-Cluster-Id", ours);
	http_reply_text(req, 412, "cluster ID mismatch\n", NULL);
	return -EPERM;
}

void peer_recv_handle(struct gw *gw, struct evhttp_request *req)
{
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		http_reply_text(req, 405, "Method Not Allowed\n", "POST");
		return;
	}
	if (peer_check_cluster(gw, req) < 0)
		return;
	/* Counted by the sender's word; 0 (unknown) when it says nothing. */
	uint64_t from = 0;
	peer_parse_id(evhttp_find_header(evhttp_request_get_input_headers(req),
					 "X-Server-From"), &from);
	if (from && peer_is_removed(gw, from)) {
		/* etcd's answer to a removed member, which then stops. */
		char ours[17];
		snprintf(ours, sizeof(ours), "%llx",
			 (unsigned long long)gw->cluster_id);
		evhttp_add_header(evhttp_request_get_output_headers(req),
				  "X-Etcd-Cluster-Id", ours);
		log_warn("rafthttp", "rejected the stream from peer %llx since "
			 "it was removed", (unsigned long long)from);
		http_reply_text(req, 410, "removed member\n", NULL);
		return;
	}
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const uint8_t *b = len ? evbuffer_pullup(in, -1) : NULL;
	if (len && !b) {
		http_reply_text(req, 500, "out of memory\n", NULL);
		return;
	}
	if (!well_framed(b, len)) {
		pstat_add(gw, from, PS_RECV_FAIL, 1);
		http_reply_text(req, 400, "error reading raft message\n", NULL);
		return;
	}
	/* raftd copes with loss: when it is down or far behind, the batch
	 * is dropped rather than buffered without bound. */
	struct link *l = gw->w->peer[PROC_RAFTD];
	if (l && link_queued(l) <= GW_MAX_LINK_QUEUE) {
		for (size_t i = 0; i < len;) {
			uint32_t n = (uint32_t)b[i] | (uint32_t)b[i + 1] << 8 |
				     (uint32_t)b[i + 2] << 16 |
				     (uint32_t)b[i + 3] << 24;
			i += 4;
			if (worker_send(gw->w, PROC_RAFTD, MSG_RAFT_MSG, 0, b + i,
					n) < 0)
				break;
			pstat_add(gw, from, PS_RECV_BYTES, n);
			i += n;
		}
	}
	evhttp_send_reply(req, 204, "No Content", NULL);
}
