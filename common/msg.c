/* Frame helpers shared by every link. */
#include "msg.h"

const char *msg_type_name(uint16_t type)
{
	switch (type) {
	case MSG_CONFIG: return "MSG_CONFIG";
	case MSG_PROCFD: return "MSG_PROCFD";
	case MSG_LISTENER: return "MSG_LISTENER";
	case MSG_START: return "MSG_START";
	case MSG_READY: return "MSG_READY";
	case MSG_FATAL: return "MSG_FATAL";
	case MSG_METRICS: return "MSG_METRICS";
	case MSG_METRICS_RESP: return "MSG_METRICS_RESP";
	case MSG_SHUTDOWN: return "MSG_SHUTDOWN";
	case MSG_SHUTDOWN_DONE: return "MSG_SHUTDOWN_DONE";
	case MSG_JOIN_RESULT: return "MSG_JOIN_RESULT";
	case MSG_PROPOSE: return "MSG_PROPOSE";
	case MSG_PROPOSE_ERR: return "MSG_PROPOSE_ERR";
	case MSG_READINDEX: return "MSG_READINDEX";
	case MSG_READINDEX_RESP: return "MSG_READINDEX_RESP";
	case MSG_RAFT_STATE: return "MSG_RAFT_STATE";
	case MSG_RAFT_MSG: return "MSG_RAFT_MSG";
	case MSG_SNAP_STATUS: return "MSG_SNAP_STATUS";
	case MSG_CONF_CHANGE: return "MSG_CONF_CHANGE";
	case MSG_APPLY: return "MSG_APPLY";
	case MSG_APPLIED: return "MSG_APPLIED";
	case MSG_QUERY: return "MSG_QUERY";
	case MSG_RESULT: return "MSG_RESULT";
	case MSG_WATCH_CREATE: return "MSG_WATCH_CREATE";
	case MSG_WATCH_CANCEL: return "MSG_WATCH_CANCEL";
	case MSG_WATCH_PROGRESS: return "MSG_WATCH_PROGRESS";
	case MSG_WATCH_EVENTS: return "MSG_WATCH_EVENTS";
	case MSG_V2_CANCEL: return "MSG_V2_CANCEL";
	case MSG_SNAP_MAKE: return "MSG_SNAP_MAKE";
	case MSG_SNAP_FILE: return "MSG_SNAP_FILE";
	case MSG_SNAP_CHUNK: return "MSG_SNAP_CHUNK";
	case MSG_SNAP_ACK: return "MSG_SNAP_ACK";
	}
	return "MSG_?";
}

ProtobufCMessage *msg_unpack(const ProtobufCMessageDescriptor *d,
			     const uint8_t *body, size_t len)
{
	return protobuf_c_message_unpack(d, NULL, len, body);
}
