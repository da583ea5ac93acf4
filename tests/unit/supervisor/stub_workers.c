/*
 * Stand-in workers for the supervisor's process test: real worker runtimes
 * (common/worker.c) that take listeners and peer links and say so on
 * stderr, so the test sees what the supervisor handed them.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "worker.h"

static void on_msg(struct worker *w, enum proc_role from,
		   const struct msg_hdr *hdr, const uint8_t *body, int fd)
{
	(void)w; (void)from; (void)hdr; (void)body;
	if (fd >= 0)
		close(fd);
}

static void on_peer_up(struct worker *w, enum proc_role role)
{
	log_info("stub", "%s: link to %s up", proc_name(w->role), proc_name(role));
}

static void on_listener(struct worker *w, const Ipc__Listener *l, int fd)
{
	log_info("stub", "%s: %s listener %s", proc_name(w->role),
		 l->peer ? "peer" : "client", l->url);
	close(fd);
}

static int on_start(struct worker *w)
{
	/* The test makes one role fail as a real worker would. */
	const char *fatal = getenv("STUB_FATAL_ROLE");
	if (fatal && strcmp(fatal, proc_name(w->role)) == 0)
		worker_fatal(w, "%s cannot open its store (stub)", proc_name(w->role));
	log_info("stub", "%s: config for %s, member %016llx, bootstrap %d, %zu members",
		 proc_name(w->role), w->cfg->name,
		 (unsigned long long)w->cfg->member_id, (int)w->cfg->bootstrap,
		 w->cfg->n_initial_members);
	return 0;
}

static const struct worker_ops ops = {
	.on_msg = on_msg,
	.on_peer_up = on_peer_up,
	.on_listener = on_listener,
	.on_start = on_start,
};

int raftd_main(int argc, char **argv)
{
	return worker_run(PROC_RAFTD, &ops, NULL, argc, argv);
}

int storaged_main(int argc, char **argv)
{
	return worker_run(PROC_STORAGED, &ops, NULL, argc, argv);
}

int gatewayd_main(int argc, char **argv)
{
	return worker_run(PROC_GATEWAYD, &ops, NULL, argc, argv);
}

int discoveryd_main(int argc, char **argv)
{
	return worker_run(PROC_DISCOVERYD, &ops, NULL, argc, argv);
}
