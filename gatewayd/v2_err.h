/* The v2 API's error codes that gatewayd answers itself (etcd's v2error). */
#ifndef ETCD_GATEWAYD_V2_ERR_H
#define ETCD_GATEWAYD_V2_ERR_H

enum {
	V2E_PREV_VALUE_REQUIRED = 201,
	V2E_TTL_NAN = 202,
	V2E_INDEX_NAN = 203,
	V2E_INVALID_FIELD = 209,
	V2E_INVALID_FORM = 210,
	V2E_REFRESH_VALUE = 211,
	V2E_REFRESH_TTL_REQUIRED = 212,
	V2E_RAFT_INTERNAL = 300,
};

/* The most levels a v2 key may have ("/a/b" has 2). */
#define V2_MAX_DEPTH 1024

#endif
