/*
 * The peer transport: raftpb.Messages from raftd leave as POST /raft batches
 * on one persistent HTTP/1.1 connection per peer member (peer_send.c), and
 * batches that peers POST to our peer listener go to raftd (peer_recv.c).
 * A batch body is a sequence of {4-byte little-endian length, packed
 * raftpb.Message}; the bytes are raftd's, never re-encoded.
 */
#ifndef ETCD_GATEWAYD_PEER_H
#define ETCD_GATEWAYD_PEER_H

#include <stddef.h>
#include <stdint.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "ipc.pb-c.h"

struct gw;

/* Bytes queued for one peer beyond which its messages are dropped. */
#define PEER_MAX_QUEUE (8u << 20)
/* How often the peer URLs are asked of storaged (while there are peers). */
#define PEER_REFRESH_MS 1000
/* A failed connection is retried after this much, doubling up to the max. */
#define PEER_BACKOFF_MIN_MS 100
#define PEER_BACKOFF_MAX_MS 2000
/* One POST /raft gets this long for its answer. */
#define PEER_TIMEOUT_S 5
/* Members we keep URLs for: each costs a connection. */
#define PEER_MAX_MEMBERS 64
#define PEER_VERSION "3.4.23"
/* The peer listener's body limit: a whole /raft batch (the sender's queue
 * bound) or a snapshot chunk, whatever the client port's limits are. */
#define PEER_MAX_BODY (PEER_MAX_QUEUE + (64u << 10))
/* raftpb.MessageType MsgSnap. */
#define PEER_MSG_SNAP 7

struct peers;

/* Sets up gw->peers from the configuration's initial members. */
int peer_init(struct gw *gw);
void peer_done(struct gw *gw);

/* A MSG_RAFT_MSG from raftd (body: packed raftpb.Message). */
void peer_send_msg(struct gw *gw, const uint8_t *body, size_t len);
/* storaged came up: ask it for the member list now. */
void peer_storaged_up(struct gw *gw);
/* A MSG_RESULT: 1 if it answered our member-list query (consumed). */
int peer_on_result(struct gw *gw, uint64_t id, const uint8_t *body,
		   size_t len);
/* Replaces the URL of member id ("" or NULL forgets it): 0 or -errno. */
int peer_set_url(struct gw *gw, uint64_t id, const char *url);

/* GET /members on the peer listener (peer_members.c): asks storaged for
 * the member list; peer_members_answer prints it when MSG_RESULT comes. */
struct conn;
struct pending;
void peer_members_handle(struct gw *gw, struct evhttp_request *req,
			 struct conn *c);
void peer_members_answer(struct gw *gw, struct pending *p,
			 const Ipc__Result *r);

/* Whether id was removed from the cluster (as storaged last listed). */
int peer_is_removed(struct gw *gw, uint64_t id);

/* POST /raft on the peer listener. */
void peer_recv_handle(struct gw *gw, struct evhttp_request *req);

/* Reads field `to` of a packed raftpb.Message without decoding the rest:
 * 0 and *ret_to, or -EINVAL. */
int peer_msg_to(const uint8_t *b, size_t len, uint64_t *ret_to);
/* The same for `to` and `type` (0, MsgHup, when left out). */
int peer_msg_peek(const uint8_t *b, size_t len, uint64_t *ret_to,
		  uint32_t *ret_type);

/* Where member id's peer listener is: 0 with *ret_host (borrowed, valid
 * until its URL changes), *ret_port and *ret_https, or -ENOENT. */
int peer_addr(struct gw *gw, uint64_t id, const char **ret_host,
	      int *ret_port, int *ret_https);
/* Turns Nagle's algorithm off on evcon's socket (once it has one), as Go
 * does on every TCP connection: a request that leaves in two writes must
 * not wait for the delayed ACK of the first. */
void peer_nodelay(struct evhttp_connection *evcon);
/* The headers every request to a peer carries (Host, Content-Type and
 * rafthttp's cluster, sender and version headers). */
void peer_add_headers(struct gw *gw, struct evkeyvalq *h, const char *host,
		      int port, const char *ctype);
/*
 * A peer answered req: if it is a 412 naming another cluster, this member
 * stops with etcd's "conflicting cluster ID" message (only a test's
 * fatal_hook returns). 1 if that was it, else 0.
 */
int peer_conflict(struct gw *gw, struct evhttp_request *req);
/* Checks an incoming peer request's X-Etcd-Cluster-ID: 0 if ours, else
 * answers 412 as etcd does and returns -EPERM. */
int peer_check_cluster(struct gw *gw, struct evhttp_request *req);
/* Parses a member ID in hex as rafthttp sends it (non-zero): 0 or -EINVAL. */
int peer_parse_id(const char *s, uint64_t *ret_id);

/* peer_stats.c: etcd's etcd_network_* metrics, per peer member. */
enum pstat_kind {
	PS_SENT_BYTES,      /* etcd_network_peer_sent_bytes_total{To} */
	PS_RECV_BYTES,      /* etcd_network_peer_received_bytes_total{From} */
	PS_SENT_FAIL,       /* etcd_network_peer_sent_failures_total{To} */
	PS_RECV_FAIL,       /* etcd_network_peer_received_failures_total{From} */
	PS_SNAP_SEND_OK,    /* etcd_network_snapshot_send_success{To} */
	PS_SNAP_SEND_FAIL,  /* etcd_network_snapshot_send_failures{To} */
	PS_SNAP_RECV_OK,    /* etcd_network_snapshot_receive_success{From} */
	PS_SNAP_RECV_FAIL,  /* etcd_network_snapshot_receive_failures{From} */
	PS_MAX
};
/* Peers we keep counters for: the ids come from peers' headers. */
#define PSTAT_MAX_PEERS 256
/* id 0 counts requests whose sender is not known (etcd's
 * UNKNOWN_SNAPSHOT_SENDER). */
void pstat_add(struct gw *gw, uint64_t id, enum pstat_kind k, uint64_t n);
/* The connection to peer id works (1) or failed (0): etcd_network_active_peers
 * and, on each loss, etcd_network_disconnected_peers_total. */
void pstat_active(struct gw *gw, uint64_t id, int active);
struct metrics_out;
void pstat_render(struct gw *gw, struct metrics_out *o);
void pstat_done(struct gw *gw);

/* snap_send.c: the leader's half of a snapshot (docs/ARCHITECTURE.md). */
/* How long a snapshot transfer may go without progress, and in all. */
#define SNAP_STALL_MS 30000
#define SNAP_MAX_MS (60u * 60 * 1000)
/* The final request (the follower installs the snapshot) may take longer. */
#define SNAP_DONE_TIMEOUT_S 120
/* Bytes of a file per POST /raft/snapshot. */
#define SNAP_CHUNK_MAX (1u << 20)
/* Files of one snapshot, and a file name's length. */
#define SNAP_MAX_FILES 4096
#define SNAP_MAX_NAME 255

int snap_init(struct gw *gw);
/* Frees every transfer (fds closed); call after http_close_all(). */
void snap_done(struct gw *gw);
/* A MsgSnap from raftd (body: packed raftpb.Message) to member `to`. */
void snap_send_msg(struct gw *gw, const uint8_t *body, size_t len,
		   uint64_t to);
/* MSG_SNAP_FILE from storaged; fd transferred (or -1). */
void snap_on_file(struct gw *gw, uint64_t tid, const uint8_t *body,
		  size_t len, int fd);
/* Tests shorten the stall timeout. */
void snap_set_stall_ms(struct gw *gw, uint32_t ms);
/* Transfers being sent now (for tests and logs). */
size_t snap_sending(struct gw *gw);

/* snap_recv.c: the follower's half. */
/* POST /raft/snapshot on the peer listener. */
void snap_recv_handle(struct gw *gw, struct evhttp_request *req);
/* MSG_SNAP_ACK from storaged. */
void snap_on_ack(struct gw *gw, uint64_t tid, const uint8_t *body,
		 size_t len);
/* A file name as a snapshot may carry: 1 if acceptable. */
int snap_name_ok(const char *name);

/* Both halves: a worker's link went down. */
void snap_raftd_down(struct gw *gw);
void snap_storaged_down(struct gw *gw);

#endif
