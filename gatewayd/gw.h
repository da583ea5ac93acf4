/*
 * gatewayd's state, shared by its files: the HTTP side (http_*.c) turns
 * requests into pending entries, gatewayd.c moves them along the write path
 * (MSG_PROPOSE to raftd, MSG_RESULT from storaged) or the read path
 * (read-index rounds with raftd, then MSG_QUERY to storaged) and answers.
 */
#ifndef ETCD_GATEWAYD_GW_H
#define ETCD_GATEWAYD_GW_H

#include <stdint.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <event2/http.h>

#include "arena.h"
#include "ipc.pb-c.h"
#include "reqid.h"
#include "u64map.h"
#include "worker.h"

/* Limits on what clients can make us hold. */
#define GW_MAX_PENDING 16384  /* requests waiting for raftd or storaged */
#define GW_MAX_CONNS 4096     /* client connections that sent a request */
#define GW_IDLE_TIMEOUT_S 120 /* evhttp's read/write timeout per connection */
#define GW_HEALTH_TIMEOUT_MS 1000
/* Bytes queued towards raftd or storaged beyond which new requests are
 * refused (429) rather than buffered: the peer is not keeping up. */
#define GW_MAX_LINK_QUEUE (64u << 20)
/* Raw bodies above this many times the gRPC limit cannot be valid. */
#define GW_BODY_FACTOR 4
/* Watches: per stream and in all (each costs a watcher in storaged). */
#define GW_MAX_WATCHES_PER_STREAM 10000
#define GW_MAX_WATCHES 100000
/* Bytes a stream may have waiting for its client before its watches are
 * paused (cancelled at storaged), and the level at which they resume. */
#define GW_STREAM_HIGH (4u << 20)
#define GW_STREAM_LOW (1u << 20)
/* Messages queued in a stream behind one still waiting for storaged. */
#define GW_STREAM_MAX_QUEUED 65536
/* How long /metrics waits for the other processes. */
#define GW_METRICS_WAIT_MS 1000

enum pkind {
	PK_RANGE,
	PK_PUT,
	PK_DELETE,
	PK_TXN,
	PK_COMPACT,
	PK_MEMBER_LIST,
	PK_STATUS,
	PK_HEALTH,
	PK_LEASE_GRANT,
	PK_LEASE_REVOKE,
	PK_LEASE_TTL,
	PK_LEASE_LEASES,
	PK_METRICS,
	PK_MEMBER_ADD,
	PK_MEMBER_REMOVE,
	PK_MEMBER_UPDATE,
	PK_MEMBER_PROMOTE,
	PK_PEER_MEMBERS, /* GET /members on the peer port (peer_members.c) */
	PK_V2,        /* /v2/keys (v2_keys.c) */
	PK_V2_NEW,    /* our discovery service's /new?size=N (v2_new.c) */
	PK_WATCH,     /* streams: routes and counters only, never pending */
	PK_KEEPALIVE,
	PK_MAX
};

/* What a pending request waits for. */
enum pwait {
	PW_READINDEX, /* in ri_wait or ri_round */
	PW_QUERY,     /* MSG_RESULT for our MSG_QUERY, from storaged */
	PW_PROPOSE,   /* MSG_RESULT after commit and apply (or MSG_PROPOSE_ERR) */
};

struct conn;

struct pending {
	uint64_t id;   /* request ID (proposals) or query id (reads) */
	enum pkind kind;
	enum pwait wait;
	int in_ri;     /* 1: on ri_wait, 2: on ri_round, 3: on metrics_wait */
	struct evhttp_request *req; /* NULL once the client is gone */
	struct conn *conn;
	uint64_t deadline_ms;
	struct pqueue *dq;       /* the deadline queue it is on */
	TAILQ_ENTRY(pending) dq_link;
	TAILQ_ENTRY(pending) rq; /* ri_wait or ri_round */
	struct arena arena;      /* owns msg and what it points to */
	ProtobufCMessage *msg;   /* the decoded request */
	/* v2 only: noValueOnSuccess; the chunked reply of a wait started;
	 * PK_V2_NEW: the discovery URL's beginning, scheme://host. */
	int no_value, started;
	const char *base_url;
	struct event *gone_ev;   /* a v2 wait: watches for its client's EOF */
};

TAILQ_HEAD(pqueue, pending);

/* A client connection that has sent at least one request. */
struct conn {
	struct gw *gw;
	struct evhttp_connection *evcon;
	struct pending *pending; /* at most one: evhttp answers in order */
	struct wstream *ws;      /* a streamed response (watch, keepalive) */
};

struct gw_listener {
	struct gw *gw;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	int peer;
	int tls;                    /* https: TLS on each connection */
	char *url;
	struct gw_listener *next;
};

struct gw {
	struct worker *w;          /* borrowed */
	struct event_base *base;   /* borrowed */
	uint64_t member_id, cluster_id;
	uint64_t max_request_bytes; /* etcd's --max-request-bytes */
	uint64_t grpc_max;          /* gRPC receive limit: the above + 512 KiB */
	uint32_t max_txn_ops;
	uint64_t timeout_ms;        /* etcd's request timeout */
	struct reqid ids;

	/* The last MSG_RAFT_STATE. */
	uint64_t term, leader, commit;
	int learner;                /* this member is a learner */
	int member;                 /* in its own configuration (not joining) */

	/* Peer host names are resolved here when the configuration names a
	 * resolver (ETCDC_RESOLVER); NULL: the system's, as libevent does. */
	struct evdns_base *dns;

	struct gw_listener *listeners;
	int accepting;              /* listeners enabled */
	struct u64map conns;        /* evcon address -> struct conn */

	struct u64map pend;         /* id -> struct pending */
	struct pqueue dq_req;       /* deadline order, request timeout */
	struct pqueue dq_health;    /* deadline order, health timeout */
	struct pqueue dq_none;      /* v2 waits: no deadline */
	struct event *tick;         /* expires deadlines */

	/* Read-index rounds: one in flight (ri_id, ri_round); what arrives
	 * meanwhile waits in ri_wait for the next round. */
	uint64_t ri_id;
	struct pqueue ri_round, ri_wait;
	struct event *ri_ev;        /* starts a round at the end of this loop pass */

	/* Streams (stream.c, watch*.c, lease.c). */
	int64_t rev_seen;           /* the highest revision storaged reported */
	LIST_HEAD(, wstream) streams;
	size_t n_streams;
	struct u64map watchers;     /* watcher id at storaged -> struct watch */
	size_t n_watches;
	uint64_t next_watcher;
	struct u64map wq;           /* query id -> struct wmsg waiting for it */

	/* /metrics rounds (gw_metrics.c). */
	uint64_t m_round;           /* 0: none in flight */
	unsigned m_waiting;         /* bit per role still to answer */
	Ipc__Metrics *m_parts[PROC_MAX];
	struct pqueue m_wait;       /* requests waiting for the round */
	struct event *m_timer;
	uint64_t m_started[PK_MAX]; /* requests started, by enum pkind */

	/* The peer transport (peer_*.c, snap_*.c). */
	struct peers *peers;
	struct snaps *snaps;
	struct u64map pstats;       /* member id -> struct pstat (peer_stats.c) */
	struct gw_tls *tls;         /* TLS contexts and handshakes (gw_tls.c) */
	/* The other modes (modes.h): at most one is set. */
	struct gateway *gateway;
	struct v2proxy *proxy;
	/* Tests see a fatal peer error here instead of the exit. */
	void (*fatal_hook)(struct gw *gw, const char *msg);
};

uint64_t gw_now_ms(void);

/* pending.c */
struct pending *pending_new(struct gw *gw, struct evhttp_request *req,
			    struct conn *c, enum pkind kind, uint64_t id);
/* Detaches the client's request from p (to answer it), so that p can be
 * freed after. */
struct evhttp_request *pending_take_req(struct pending *p);
/* Unlinks p everywhere and frees it. */
void pending_free(struct gw *gw, struct pending *p);
/* Answers p with a gRPC error (if the client is still there), frees it. */
void pending_fail(struct gw *gw, struct pending *p, uint32_t code,
		  const char *msg);
/* Fails every pending request for which pred(p) holds. */
void pending_fail_if(struct gw *gw, int (*pred)(const struct pending *),
		     uint32_t code, const char *msg);
void pending_expire(struct gw *gw, uint64_t now_ms);
/* p waits without a deadline (a v2 wait, until an event or its client
 * goes). */
void pending_no_deadline(struct gw *gw, struct pending *p);

/* http_reply.c */
/* 200-style reply with body (taken: malloc'd) of type ctype. */
void http_reply_body(struct evhttp_request *req, int status, const char *ctype,
		     char *body, size_t len);
int http_status_of(uint32_t grpc_code);
const char *http_reason(int status);
void http_cors(struct evhttp_request *req);
/* 200 with body (taken: malloc'd, freed by evbuffer) as application/json. */
void http_reply_json(struct evhttp_request *req, char *body, size_t len,
		     int grpc_ct);
/* The gateway's error shape {"error","message","code"}. */
void http_reply_error(struct evhttp_request *req, uint32_t code,
		      const char *msg);
/* Go's http.Error: text/plain, nosniff. allow: value of Allow or NULL. */
void http_reply_text(struct evhttp_request *req, int status, const char *text,
		     const char *allow);

/* GET /health's answer: {"health":"true"} 200 or {"health":"false"} 503. */
void http_reply_health(struct evhttp_request *req, int ok);

/* http_server.c */
int http_listen(struct gw *gw, const char *url, int peer, int fd);
/* Enables or disables each listener: client ones accept while below the
 * connection limit, TLS ones while handshakes are below theirs. */
void http_listeners_update(struct gw *gw);
void http_close_all(struct gw *gw);

/* What a learner answers every request it does not serve. */
#define ERR_LEARNER "etcdserver: rpc not supported for learner"

/* http_kv.c: the JSON API, for a request whose route was found. */
void kv_handle(struct gw *gw, struct evhttp_request *req, struct conn *c,
	       enum pkind kind, const ProtobufCMessageDescriptor *d);
void health_handle(struct gw *gw, struct evhttp_request *req, struct conn *c);

/* gatewayd.c: where a decoded request goes next. */
void gw_propose(struct gw *gw, struct pending *p, ProtobufCMessage *irr);
void gw_read(struct gw *gw, struct pending *p, int linearizable);
/* Builds InternalRaftRequest {ID, header, op of p} with etcd's
 * --max-request-bytes check and proposes it (http_kv.c). */
void kv_propose(struct gw *gw, struct pending *p);
/* Sets cluster_id, member_id, raft_term of h; notes its revision. */
void gw_fill_header(struct gw *gw, Etcdserverpb__ResponseHeader *h);

/* lease.c: unary lease requests, once decoded; the keepalive stream. */
void lease_handle(struct gw *gw, struct pending *p);
void keepalive_handle(struct gw *gw, struct evhttp_request *req,
		      struct conn *c);

/* member.c: member add/remove/update/promote, once decoded. */
void member_handle(struct gw *gw, struct pending *p);
/* The member list a member add or remove asked for arrived (r borrowed):
 * refuse or propose. */
void member_on_list(struct gw *gw, struct pending *p, const Ipc__Result *r);

/* watch.c */
void watch_handle(struct gw *gw, struct evhttp_request *req, struct conn *c);
/* storaged's link came up: (re)create every live watch there. */
void watch_storaged_up(struct gw *gw);
void watch_storaged_down(struct gw *gw);
/* watch_events.c: a MSG_WATCH_EVENTS frame. */
void watch_on_events(struct gw *gw, const uint8_t *body, size_t len);

/* stream.c */
/* The client of c went away: drop its stream (c is being freed). */
void stream_conn_gone(struct conn *c);
/* A MSG_RESULT for a query a stream made: 1 if it was one, else 0. */
int stream_on_result(struct gw *gw, uint64_t id, const Ipc__Result *r);
void stream_storaged_down(struct gw *gw);

/* v2_keys.c, v2_reply.c, v2_new.c: the v2 keys API (--enable-v2) and our
 * discovery service. */
void v2_keys_handle(struct gw *gw, struct evhttp_request *req,
		    struct conn *c, const char *rest);
/* etcd's v2 error body {"errorCode","message","cause","index"}. */
void v2_reply_error(struct gw *gw, struct evhttp_request *req, int code,
		    const char *cause, uint64_t index);
/* Answers p with a v2 error (if its client is there) and frees it. */
void pending_v2_fail(struct gw *gw, struct pending *p, int code,
		     const char *cause);
/* storaged's answer for p (r borrowed). */
void v2_on_result(struct gw *gw, struct pending *p, const Ipc__Result *r);
/* The client of a pending v2 wait went away: tell storaged, free p. */
void v2_wait_gone(struct gw *gw, struct pending *p);
/* Watches p's connection for the client closing while p waits (evhttp
 * reads nothing while a request is outstanding). */
void v2_watch_gone(struct gw *gw, struct pending *p);
/* Proposes r as InternalRaftRequest{ID, header, v2} with p's ID (r->ID too),
 * within etcd's --max-request-bytes. */
void v2_propose(struct gw *gw, struct pending *p, Etcdserverpb__Request *r);
void v2_new_handle(struct gw *gw, struct evhttp_request *req, struct conn *c,
		   const struct gw_listener *l);
void v2_new_on_result(struct gw *gw, struct pending *p, const Ipc__Result *r);

/* gw_metrics.c */
void gwm_handle(struct gw *gw, struct evhttp_request *req, struct conn *c);
void gwm_on_resp(struct gw *gw, enum proc_role from, uint64_t id,
		 const uint8_t *body, size_t len);
void gwm_done(struct gw *gw);

#endif
