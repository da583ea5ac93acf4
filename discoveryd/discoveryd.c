/*
 * discoveryd: produces the initial cluster of a new member. For a static
 * cluster (--initial-cluster) the supervisor already has it. A new member
 * joining a running cluster (--initial-cluster-state existing) gets it
 * here from the other members' peer ports (join_*.c), and a new cluster
 * bootstrapped from DNS SRV records (--discovery-srv) from the records
 * (bootstrap_srv.c, srv*.c), and one bootstrapped with etcd discovery
 * (--discovery) from the discovery cluster (discovery*.c); the supervisor
 * starts the other workers once it has the answer. Otherwise, and
 * afterwards (a restart, a data dir with a WAL), this worker waits to be
 * stopped (SIGTERM, or the supervisor's link closing: common/worker.c).
 */
#include <string.h>
#include <unistd.h>

#include "discovery.h"
#include "join.h"
#include "log.h"
#include "worker.h"

static void on_msg(struct worker *w, enum proc_role from,
		   const struct msg_hdr *hdr, const uint8_t *body, int fd)
{
	(void)body;
	/* Nothing is addressed to discoveryd yet: a frame is a bug upstream. */
	if (fd >= 0)
		close(fd);
	log_warn("discoveryd", "unexpected %s from %s", msg_type_name(hdr->type),
		 proc_name(from));
	(void)w;
}

/* Which of the answers this run of discoveryd produces (w->arg's type). */
static enum { M_NONE, M_JOIN, M_DISCOVERY } mode;

static int on_start(struct worker *w)
{
	/* A gateway's endpoints from SRV records (blocking lookups and
	 * handshakes, each bounded: nothing else runs here). */
	if (w->cfg->gateway) {
		if (w->cfg->discovery_srv && w->cfg->discovery_srv[0] &&
		    gateway_srv(w) < 0)
			worker_fatal(w, "discoveryd: out of memory");
		return 0;
	}
	/* member_id is set once the join's result is known: a restarted
	 * discoveryd has nothing left to do. */
	if (w->cfg->discovery_srv && w->cfg->discovery_srv[0] &&
	    !w->cfg->member_id) {
		/* Blocking lookups, each bounded: nothing else runs here yet. */
		if (bootstrap_srv(w) < 0)
			worker_fatal(w, "discoveryd: out of memory");
		return 0;
	}
	if (w->cfg->discovery && w->cfg->discovery[0] && !w->cfg->member_id) {
		/* Asynchronous, and it may wait for the other members for
		 * as long as they take. */
		mode = M_DISCOVERY;
		int r = discovery_start(w);
		if (r < 0)
			worker_fatal(w, "discoveryd: cannot start the discovery: %s",
				     strerror(-r));
		return 0;
	}
	if (w->cfg->join && !w->cfg->member_id) {
		mode = M_JOIN;
		int r = join_start(w);
		if (r < 0)
			worker_fatal(w, "discoveryd: cannot fetch the cluster: %s",
				     strerror(-r));
		return 0;
	}
	log_debug("discoveryd", "nothing to discover for %s", w->cfg->name);
	return 0;
}

static void on_stop(struct worker *w)
{
	if (mode == M_DISCOVERY)
		discovery_done(w);
	else if (mode == M_JOIN)
		join_done(w);
}

static const struct worker_ops ops = {
	.on_msg = on_msg,
	.on_start = on_start,
	.on_stop = on_stop,
};

int discoveryd_main(int argc, char **argv)
{
	return worker_run(PROC_DISCOVERYD, &ops, NULL, argc, argv);
}
