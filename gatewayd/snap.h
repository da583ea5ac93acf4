/*
 * Snapshots between members, gatewayd's part (docs/ARCHITECTURE.md,
 * Snapshots): the state snap_send.c and snap_recv.c share, and the
 * protocol of POST /raft/snapshot between two gatewayds.
 *
 * A transfer is a sequence of requests on one connection, one in flight:
 * for each file of the snapshot, its chunks by increasing offset (an empty
 * file sends one empty chunk), then a final request whose body is the
 * MsgSnap. Every request carries rafthttp's headers (X-Etcd-Cluster-ID,
 * X-Server-From, X-Server-Version) and:
 *   X-Snapshot-Transfer  the transfer id (hex), the frame id at storaged
 *   X-Snapshot-Index     the Raft snapshot point (decimal)
 *   X-Snapshot-Term
 * a chunk also
 *   X-Snapshot-File      the file's name ([A-Za-z0-9._-], at most 255)
 *   X-Snapshot-Offset    the chunk's offset in the file (decimal)
 * and the final request
 *   X-Snapshot-Done      "1"
 *   X-Snapshot-Sha256    the checksum of ipc.proto, 64 lowercase hex digits
 * The receiver answers 204 once storaged has written the chunk (or, for
 * the final request, installed the snapshot and raftd has the MsgSnap).
 */
#ifndef ETCD_GATEWAYD_SNAP_H
#define ETCD_GATEWAYD_SNAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/http.h>

#include "u64map.h"

#define SNAP_PATH "/raft/snapshot"
#define SNAP_H_TRANSFER "X-Snapshot-Transfer"
#define SNAP_H_INDEX "X-Snapshot-Index"
#define SNAP_H_TERM "X-Snapshot-Term"
#define SNAP_H_FILE "X-Snapshot-File"
#define SNAP_H_OFFSET "X-Snapshot-Offset"
#define SNAP_H_DONE "X-Snapshot-Done"
#define SNAP_H_SHA256 "X-Snapshot-Sha256"

struct gw;

/* The one request of a receiving transfer waiting for storaged. */
struct snap_rx {
	struct evhttp_request *req;      /* NULL: none */
	struct evhttp_connection *evcon; /* its connection */
	uint64_t tid, from, index;
	size_t bytes;                    /* of the body, for the metrics */
	int done;                        /* the final request */
	uint8_t *msg;                    /* owned: its MsgSnap, for raftd */
	size_t msg_len;
	uint64_t last_tid;               /* the transfer last logged */
	/* evhttp (libevent 2.1) does not tell when the sender goes away
	 * while its request waits: storaged's answer is awaited at most
	 * this long, as the sender waits for ours. */
	struct event *timer;
};

struct snap_tx;

struct snaps {
	struct gw *gw;
	LIST_HEAD(, snap_tx) all; /* live and ended, until freed */
	struct u64map by_to;   /* peer member id -> struct snap_tx */
	struct u64map by_tid;  /* transfer id -> struct snap_tx */
	uint32_t stall_ms;
	uint64_t warn_at_ms;   /* rate of "already in flight" warnings */
	struct snap_rx rx;
};

/* snap_recv.c: answers the request waiting for storaged, if any, with
 * status and text, and forgets it. */
void snap_rx_fail(struct gw *gw, int status, const char *text);
/* Answers and frees what the receiving half holds. */
void snap_rx_done(struct gw *gw);

#endif
