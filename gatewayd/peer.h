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

/* POST /raft on the peer listener. */
void peer_recv_handle(struct gw *gw, struct evhttp_request *req);

/* Reads field `to` of a packed raftpb.Message without decoding the rest:
 * 0 and *ret_to, or -EINVAL. */
int peer_msg_to(const uint8_t *b, size_t len, uint64_t *ret_to);

#endif
