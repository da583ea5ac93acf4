/*
 * The running member: one child per worker role, the links between them,
 * restart with backoff, and shutdown on a signal or a worker's fatal error.
 */
#ifndef ETCD_SUPERVISOR_SUPERVISOR_H
#define ETCD_SUPERVISOR_SUPERVISOR_H

#include <stddef.h>

#include "ipc.pb-c.h"
#include "listen.h"

/* Restart policy (docs/ARCHITECTURE.md, "Restart after a crash"). */
#define SUP_BACKOFF_MIN_MS 100
#define SUP_BACKOFF_MAX_MS 5000
#define SUP_CRASH_LIMIT 5
#define SUP_CRASH_WINDOW_MS 30000
/* Shutdown: each stage waits this long before the next; then SIGKILL. */
#define SUP_STOP_STAGE_MS 1500
/* Before the stages, raftd may hand leadership over for at most three
 * election timeouts plus this. */
#define SUP_HANDOVER_EXTRA_MS 1000

/*
 * A new member joining a running cluster: discoveryd starts alone and
 * fetches the cluster; joined() then takes r (owned: free it with
 * protobuf_c_message_free_unpacked, also on failure), makes the member's
 * identity durable and returns the configuration the workers start with
 * (borrowed, valid until supervisor_run returns): 0, or -1 after logging
 * why the start fails.
 */
struct sup_join {
	int (*joined)(void *arg, Ipc__JoinResult *r,
		      const Ipc__WorkerConfig **ret_wcfg);
	void *arg;
};

/*
 * Starts every worker with wcfg (borrowed) and the listeners (borrowed; the
 * supervisor hands gatewayd a duplicate of each, again at each restart),
 * and runs until the member stops. With join, only discoveryd starts with
 * wcfg, the others once join->joined() has given their configuration.
 * Returns the process exit code: 0 after SIGTERM or SIGINT, 1 after a
 * worker's MSG_FATAL, a failed join or too many crashes.
 */
int supervisor_run(const Ipc__WorkerConfig *wcfg, const struct sup_join *join,
		   const struct listener *ls, size_t n_ls);

#endif
