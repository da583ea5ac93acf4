/*
 * One link between two of our processes: a non-blocking Unix stream socket
 * carrying frames (common/msg.h), with output buffering, descriptor passing and
 * a body size limit. Every process uses this and nothing else for its links.
 *
 * Writes are queued and flushed when the socket is writable, so all frames
 * queued during one event-loop iteration leave in one writev. Reads drain the
 * socket and deliver every complete frame in one callback run, so a receiver
 * sees a whole batch before its loop iteration ends.
 */
#ifndef ETCD_COMMON_LINK_H
#define ETCD_COMMON_LINK_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <protobuf-c/protobuf-c.h>

#include "msg.h"

struct link;

/*
 * A frame arrived. body (borrowed, valid during the call) holds hdr->len
 * bytes. fd is the descriptor that came with the frame, or -1; it is
 * transferred to the callee, which must keep or close it.
 * The callee may call link_free(l).
 */
typedef void link_msg_fn(struct link *l, const struct msg_hdr *hdr,
			 const uint8_t *body, int fd, void *arg);
/*
 * The peer closed the link, or sent a frame that breaks the protocol (too
 * large, descriptor missing). Called at most once; no frame follows. The
 * callee usually calls link_free(l).
 */
typedef void link_close_fn(struct link *l, void *arg);

/* Default body limit: apply batches and snapshots chunks stay below it. */
#define LINK_MAX_BODY (64u << 20)

/*
 * Takes ownership of fd (made non-blocking here). name (copied) is used in
 * log lines of the caller. Returns NULL on allocation failure (fd closed).
 */
struct link *link_new(struct event_base *base, int fd, const char *name,
		      uint32_t max_body, link_msg_fn *on_msg,
		      link_close_fn *on_close, void *arg);
/* Closes the socket and any unclaimed descriptors. NULL is a no-op. */
void link_free(struct link *l);

/* Queue a frame with a raw body (copied). 0 or -errno (-EPIPE once closed). */
int link_send(struct link *l, uint16_t type, uint64_t id, const void *body,
	      size_t len);
/* Queue a frame whose body is m, packed straight into the output buffer. */
int link_send_pb(struct link *l, uint16_t type, uint64_t id,
		 const ProtobufCMessage *m);
/*
 * Queue a frame carrying descriptor fd (transferred: closed after it is sent,
 * or when the link is freed). m may be NULL for an empty body.
 */
int link_send_fd(struct link *l, uint16_t type, uint64_t id,
		 const ProtobufCMessage *m, int fd);

/*
 * Writes what is queued now, without blocking and without waiting for the
 * end of the loop iteration: for frames that must leave before the caller
 * blocks (raftd's appends to followers before its fdatasync). What does not
 * fit, or an error, is left to the usual write event.
 */
void link_flush_now(struct link *l);
/* Writes everything queued, blocking if need be (before an exit). */
int link_flush_blocking(struct link *l);

/* Bytes queued and not yet written: callers use it for back-pressure. */
size_t link_queued(const struct link *l);
const char *link_name(const struct link *l);
/* True once the peer has gone (after link_close_fn ran, or a write failed). */
int link_closed(const struct link *l);

#endif
