/*
 * Frames on the links between our processes: a fixed 16-byte header, then a
 * protobuf body (or, for MSG_PROPOSE, the raw bytes of a Raft entry).
 * In the spirit of OpenBSD's imsg; all message types live in this one list.
 */
#ifndef ETCD_COMMON_MSG_H
#define ETCD_COMMON_MSG_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Host byte order: both ends of a link are the same executable. */
struct msg_hdr {
	uint16_t type;  /* enum msg_type */
	uint16_t flags; /* MSG_F_* */
	uint32_t len;   /* body bytes following the header */
	uint64_t id;    /* request id, for messages that answer or are answered */
};

#define MSG_HDR_SIZE sizeof(struct msg_hdr)
/* The frame carries one descriptor (sent with SCM_RIGHTS with its first byte). */
#define MSG_F_FD 0x1

enum msg_type {
	MSG_NONE = 0,

	/* supervisor <-> every worker */
	MSG_CONFIG = 1,   /* sup -> w: ipc.WorkerConfig */
	MSG_PROCFD = 2,   /* sup -> w: ipc.ProcFd + fd: a link to another worker */
	MSG_LISTENER = 3, /* sup -> gatewayd: ipc.Listener + fd: a bound listener */
	MSG_START = 4,    /* sup -> w: configuration complete, start serving */
	MSG_READY = 5,    /* w -> sup: started (empty body) */
	MSG_FATAL = 6,    /* w -> sup: ipc.Error: cannot go on; sup prints and exits 1
			   * (code 0: the member is done, e.g. removed: exit 0) */
	MSG_METRICS = 7,      /* gw -> sup, raft, stor: empty; id = round id */
	MSG_METRICS_RESP = 8, /* -> gw: ipc.Metrics (the supervisor adds discoveryd's) */
	MSG_SHUTDOWN = 9,      /* sup -> raft: empty; the member stops: hand leadership over */
	MSG_SHUTDOWN_DONE = 10, /* raft -> sup: empty; leadership handed over (or not ours) */
	MSG_JOIN_RESULT = 11,  /* disc -> sup: ipc.JoinResult; the cluster a new member joins */

	/* gatewayd <-> raftd */
	MSG_PROPOSE = 16,        /* gw -> raft: raw InternalRaftRequest bytes; id = request ID */
	MSG_PROPOSE_ERR = 17,    /* raft -> gw: ipc.Error; the proposal with this id failed */
	MSG_READINDEX = 18,      /* gw -> raft: empty; id = read id */
	MSG_READINDEX_RESP = 19, /* raft -> gw: ipc.ReadIndexResp */
	MSG_RAFT_STATE = 20,     /* raft -> gw, stor: ipc.RaftState, on every change */
	MSG_RAFT_MSG = 21,       /* gw <-> raft: raftpb.Message to or from a peer */
	MSG_SNAP_STATUS = 22,    /* gw -> raft: ipc.SnapStatus; a MsgSnap's delivery ended */
	MSG_CONF_CHANGE = 23,    /* gw -> raft: raftpb.ConfChange (ID = request ID); id = request ID;
				  * a refusal comes back as MSG_PROPOSE_ERR */

	/* raftd <-> storaged (storaged also sends MSG_PROPOSE: lease revokes on
	 * expiry; raftd answers failures with MSG_PROPOSE_ERR) */
	MSG_APPLY = 32,   /* raft -> stor: ipc.ApplyBatch of committed entries */
	MSG_APPLIED = 33, /* stor -> raft: ipc.Applied */

	/* gatewayd <-> storaged */
	MSG_QUERY = 48,  /* gw -> stor: ipc.Query; id = query id */
	MSG_RESULT = 49, /* stor -> gw: ipc.Result; id = request ID or query id */
	MSG_WATCH_CREATE = 50,   /* gw -> stor: ipc.WatchCreate */
	MSG_WATCH_CANCEL = 51,   /* gw -> stor: ipc.WatchCancel */
	MSG_WATCH_PROGRESS = 52, /* gw -> stor: ipc.WatchProgress */
	MSG_WATCH_EVENTS = 53,   /* stor -> gw: ipc.WatchEvents */
	MSG_V2_CANCEL = 54,      /* gw -> stor: empty; id = query id of a v2 wait
				  * whose client went away */

	/* Snapshots between members (docs/ARCHITECTURE.md, Snapshots); id = transfer id */
	MSG_SNAP_MAKE = 64,  /* gw -> stor: ipc.SnapMake: snapshot the store for a peer */
	MSG_SNAP_FILE = 65,  /* stor -> gw: ipc.SnapFile (+ fd): one file of it, or the end */
	MSG_SNAP_CHUNK = 66, /* gw -> stor: ipc.SnapChunk: bytes of a snapshot being received */
	MSG_SNAP_ACK = 67,   /* stor -> gw: ipc.SnapAck: chunk written, or snapshot installed */
};

/* A printable name for logs ("MSG_APPLY"), or "MSG_?". */
const char *msg_type_name(uint16_t type);

/*
 * Decodes body as a message of descriptor d. The body must decode exactly
 * (protobuf-c refuses trailing garbage and truncation). Returns the message
 * (free with protobuf_c_message_free_unpacked) or NULL.
 */
ProtobufCMessage *msg_unpack(const ProtobufCMessageDescriptor *d,
			     const uint8_t *body, size_t len);

#define MSG_UNPACK(type, prefix, body, len)                                    \
	((type *)msg_unpack(&prefix##__descriptor, (body), (len)))

#endif
