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
 * Starts every worker with wcfg (borrowed) and the listeners (borrowed; the
 * supervisor hands gatewayd a duplicate of each, again at each restart),
 * and runs until the member stops. Returns the process exit code: 0 after
 * SIGTERM or SIGINT, 1 after a worker's MSG_FATAL or too many crashes.
 */
int supervisor_run(const Ipc__WorkerConfig *wcfg, const struct listener *ls,
		   size_t n_ls);

#endif
