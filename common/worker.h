/*
 * The life of a worker process (raftd, storaged, gatewayd, discoveryd), the
 * same for all of them: the link to the supervisor on fd 3, the configuration
 * exchange (MSG_CONFIG, MSG_PROCFD..., MSG_LISTENER..., MSG_START), links to
 * the other workers that come and go as they are restarted, and exit when the
 * supervisor goes away. Each worker supplies its dispatch in worker_ops.
 */
#ifndef ETCD_COMMON_WORKER_H
#define ETCD_COMMON_WORKER_H

#include <event2/event.h>

#include "ipc.pb-c.h"
#include "link.h"
#include "proc.h"

struct worker;

struct worker_ops {
	/*
	 * A frame from another worker (from = its role), or from the
	 * supervisor for types other than the handshake's. fd as in link_msg_fn.
	 */
	void (*on_msg)(struct worker *w, enum proc_role from,
		       const struct msg_hdr *hdr, const uint8_t *body, int fd);
	/* A link to peer role is up (at start, or after either side restarted). */
	void (*on_peer_up)(struct worker *w, enum proc_role role);
	/* The link to role went down; a new one comes with on_peer_up. */
	void (*on_peer_down)(struct worker *w, enum proc_role role);
	/* A listening socket (gatewayd only); fd transferred. */
	void (*on_listener)(struct worker *w, const Ipc__Listener *l, int fd);
	/*
	 * Configuration is complete (w->cfg is set): open stores, start
	 * serving. Runs before any on_peer_up. Returns 0, or -1 after having
	 * called worker_fatal().
	 */
	int (*on_start)(struct worker *w);
	/* SIGTERM or SIGINT: finish up; the loop exits when this returns. */
	void (*on_stop)(struct worker *w);
};

struct worker {
	struct event_base *base;
	enum proc_role role;
	struct link *sup;             /* to the supervisor */
	struct link *peer[PROC_MAX];  /* to other workers; NULL while down */
	Ipc__WorkerConfig *cfg;       /* owned; set by MSG_CONFIG */
	const struct worker_ops *ops;
	void *arg;                    /* the worker's own state */
	int started;
	int pending_fd[PROC_MAX];     /* peer links that came before MSG_START */
	struct worker_peer {
		struct worker *w;
		enum proc_role role;
	} ctx[PROC_MAX];
};

/*
 * Runs the worker role until it stops (the supervisor already set argv[0]
 * to "etcd: <role>" for ps; this sets the thread name for top and ps -o comm).
 * Returns the process exit code.
 */
int worker_run(enum proc_role role, const struct worker_ops *ops, void *arg,
	       int argc, char **argv);

/* Sends a frame to peer role if that link is up: 0, or -ENOTCONN. */
int worker_send(struct worker *w, enum proc_role to, uint16_t type,
		uint64_t id, const void *body, size_t len);
int worker_send_pb(struct worker *w, enum proc_role to, uint16_t type,
		   uint64_t id, const ProtobufCMessage *m);

/*
 * Tells the supervisor this worker cannot go on (it prints message as etcd
 * would and stops the member with exit code 1), then exits.
 */
void worker_fatal(struct worker *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
/*
 * Tells the supervisor the member's work is over without an error (it was
 * removed from the cluster: the worker has logged why): the member stops
 * with exit code 0, as etcd does. Then exits.
 */
void worker_member_done(struct worker *w, const char *why)
	__attribute__((noreturn));

#endif
