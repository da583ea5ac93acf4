/*
 * The HTTP-level harness of gatewayd's tests: the real gatewayd code runs
 * in this process's event loop, with socketpair links to a fake supervisor,
 * raftd and storaged, and clients talk to it over loopback TCP (evhttp for
 * plain exchanges, a raw socket for streams).
 */
#ifndef ETCD_TESTS_GATEWAYD_HARNESS_H
#define ETCD_TESTS_GATEWAYD_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>

#include "gatewayd.h"
#include "gw.h"
#include "ipc.pb-c.h"
#include "kv.pb-c.h"
#include "raft_internal.pb-c.h"
#include "rpc.pb-c.h"

#include "tcheck.h"


#define MEMBER 0x6bb9b1d4a17b1503ULL
#define CLUSTER 0xac3c15e4a1a63f2aULL
#define HDR "{\"cluster_id\":\"12410818744834998058\",\"member_id\":\"7762430959550141699\""
#define ERRBODY(m, c) "{\"error\":\"" m "\",\"message\":\"" m "\",\"code\":" #c "}"

extern struct event_base *base;
extern struct worker w;
extern struct gw gw;
extern struct link *fake_raft, *fake_stor, *fake_sup;
extern int client_port, peer_port;

/* What the fakes saw and do. */
extern int n_readindex, n_propose, n_query;
extern int hold_readindex;
extern uint64_t held_ri[16];
extern int n_held_ri;
extern int drop_proposals;
extern int64_t revision;      /* the fake store's current revision */
extern Etcdserverpb__InternalRaftRequest *last_irr; /* last proposal */
extern uint64_t last_min_applied;

/* The fake storaged's watch side. */
struct fake_create {
	uint64_t watcher;
	int64_t start, watch_id;
	int resume, prev_kv, fragment;
	char key[64];
};
#define FAKE_MAX 256
extern struct fake_create creates[FAKE_MAX];
extern int n_creates;
extern uint64_t cancels[4 * FAKE_MAX];
extern int n_cancels;
extern int auto_created;      /* answer a create with a created hit */
/* The peer transport: what reached the fake raftd and supervisor, and a
 * second member the fake storaged lists when its id is set. */
#define FAKE_RAFT_MSGS 16
extern uint8_t raft_msgs[FAKE_RAFT_MSGS][256];
extern size_t raft_msg_len[FAKE_RAFT_MSGS];
extern int n_raft_msgs;
extern char last_fatal[256];
extern uint64_t extra_member_id;
extern char extra_member_url[64];
extern int n_metrics_asked[PROC_MAX];
extern int metrics_silent[PROC_MAX]; /* do not answer MSG_METRICS */

/* A test's own handling of frames reaching the fake storaged or raftd:
 * return 1 if consumed (fd is then the hook's), 0 for the default. */
extern int (*stor_hook)(const struct msg_hdr *hdr, const uint8_t *body,
			int fd);
extern int (*raft_hook)(const struct msg_hdr *hdr, const uint8_t *body,
			int fd);

/* The configuration harness_init hands to gatewayd: a test may set more
 * of it (TLS settings) before. */
extern Ipc__WorkerConfig harness_cfg;
void harness_init(void);
/* Hands gatewayd one more listening socket on 127.0.0.1 for url (its
 * scheme matters, its port not): the port. */
int harness_listen(const char *url, int peer);
void harness_done(void);
void connect_peer(enum proc_role role);
/* storaged restarts: its link goes down, a new one comes up. */
void restart_storaged(void);
void send_raft_state(uint64_t leader);
/* Runs the loop for about ms milliseconds. */
void pump_ms(int ms);
/* A WatchEvents frame from the fake storaged. */
void send_events(int64_t rev, Mvccpb__Event **evs, size_t n,
		 Ipc__WatchHit **hits, size_t nh);

/* One HTTP exchange, run in the shared loop until answered. */
struct exchange {
	int done;
	int status;
	char body[8192];
	char ctype[128];
	char cors[64];
	char grpc_ct[64];
	char etcd_index[32], cluster[32], allow[64];
	struct evhttp_connection *evcon;
};
/* The Content-Type start() sends, if set. */
extern const char *request_ctype;
void start(struct exchange *x, int port, enum evhttp_cmd_type m,
	   const char *path, const char *body, size_t blen);
void finish(struct exchange *x);
struct exchange *http(enum evhttp_cmd_type m, const char *path,
		      const char *body);

#define EXPECT(x, st, b)                                                       \
	do {                                                                   \
		CHECK((x)->status == (st) && strcmp((x)->body, (b)) == 0,     \
		      "got %d %s\n  want %d %s", (x)->status, (x)->body, (st), \
		      (b));                                                    \
	} while (0)

/* A raw client for streamed responses. */
struct raw {
	int fd;
	char *buf;   /* everything received */
	size_t len, cap;
	int eof;
};
/* rcvbuf: the client's SO_RCVBUF (0: default). */
void raw_start(struct raw *r, const char *path, const char *body, int rcvbuf);
void raw_start_method(struct raw *r, const char *method, const char *path,
		      const char *body, int rcvbuf);
/* Reads what is there, after a pass of the loop. */
void raw_pump(struct raw *r);
/* The decoded chunked body (malloc'd); chunks counted, ended set if the
 * last chunk came. */
char *raw_body(const struct raw *r, int *ret_chunks, int *ret_ended);
/* Runs until the body holds needle (1) or timeout_ms passed (0). */
int raw_wait(struct raw *r, const char *needle, int timeout_ms);
/* Runs until the server closed or ended the response. */
int raw_wait_end(struct raw *r, int timeout_ms);
void raw_close(struct raw *r);

#endif
