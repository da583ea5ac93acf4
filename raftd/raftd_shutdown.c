/*
 * The member is stopping (the supervisor's MSG_SHUTDOWN, on SIGTERM): as
 * etcd's EtcdServer.Stop does, a leader first hands leadership to another
 * voter (the most up to date here; etcd picks the longest connected) so the
 * cluster need not wait an election timeout, then answers MSG_SHUTDOWN_DONE.
 * From MSG_SHUTDOWN on, proposals are refused.
 */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "log.h"
#include "raftd.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A duration as Go prints one ("105.402345ms"), for etcd's log line. */
static void go_duration(char *buf, size_t len, uint64_t ns)
{
	static const struct { uint64_t div; int digits; const char *unit; } u[] = {
		{1000000000u, 9, "s"}, {1000000u, 6, "ms"}, {1000u, 3, "µs"},
	};
	for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
		if (ns < u[i].div)
			continue;
		char frac[16];
		int n = snprintf(frac, sizeof(frac), "%0*" PRIu64, u[i].digits,
				 ns % u[i].div);
		while (n > 0 && frac[n - 1] == '0')
			frac[--n] = 0;
		snprintf(buf, len, "%" PRIu64 "%s%s%s", ns / u[i].div,
			 n ? "." : "", frac, u[i].unit);
		return;
	}
	snprintf(buf, len, "%" PRIu64 "ns", ns);
}

static void done(struct raftd *d)
{
	d->shut = SHUT_DONE;
	if (worker_send(d->w, PROC_SUPERVISOR, MSG_SHUTDOWN_DONE, 0, NULL, 0) < 0)
		log_debug("raftd", "the supervisor is gone before the hand-over "
			  "ended");
}

void raftd_shutdown_start(struct raftd *d)
{
	unsigned long long id = d->id;
	if (d->shut != SHUT_NONE) {
		if (d->shut == SHUT_DONE)
			done(d);
		return;
	}
	if (raft_role(d->r) != RAFT_LEADER) {
		log_info("etcdserver", "skipped leadership transfer for stopping "
			 "non-leader member");
		done(d);
		return;
	}
	if (raft_voters(d->r) < 2) {
		log_info("etcdserver", "skipped leadership transfer for single "
			 "voting member cluster");
		done(d);
		return;
	}
	uint64_t to = raft_transfer_target(d->r);
	if (!to) {
		log_warn("etcdserver", "%llx failed to transfer leadership "
			 "(etcdserver: unhealthy cluster)", id);
		done(d);
		return;
	}
	d->shut = SHUT_HANDOVER;
	d->shut_start_ns = now_ns();
	d->shut_deadline = d->ticks + 2 * (uint64_t)d->election_ticks;
	log_info("etcdserver", "%llx starts leadership transfer from %llx to %llx",
		 id, id, (unsigned long long)to);
	log_info("raft", "%llx [term %llu] starts to transfer leadership to %llx",
		 id, (unsigned long long)raft_term(d->r), (unsigned long long)to);
	raft_transfer_leader(d->r, to);
}

void raftd_shutdown_check(struct raftd *d)
{
	if (d->shut != SHUT_HANDOVER)
		return;
	uint64_t lead = raft_lead(d->r);
	if (lead && lead != d->id) {
		/* etcd waits for the transferee; any other leader means the
		 * hand-over happened all the same. */
		char took[40];
		go_duration(took, sizeof(took), now_ns() - d->shut_start_ns);
		log_info("etcdserver", "%llx finished leadership transfer from "
			 "%llx to %llx (took %s)", (unsigned long long)d->id,
			 (unsigned long long)d->id, (unsigned long long)lead, took);
		done(d);
	} else if (d->ticks >= d->shut_deadline) {
		log_warn("etcdserver", "%llx failed to transfer leadership "
			 "(etcdserver: request timed out, leader transfer took "
			 "too long)", (unsigned long long)d->id);
		done(d);
	}
}

/*
 * While the transfer runs, etcd's raft drops proposals (ErrProposalDropped,
 * which gRPC carries as Unknown); once it stopped, the server answers
 * ErrStopped (Unavailable).
 */
const char *raftd_shutdown_refusal(const struct raftd *d, uint32_t *ret_code)
{
	switch (d->shut) {
	case SHUT_HANDOVER:
		*ret_code = 2;
		return "raft proposal dropped";
	case SHUT_DONE:
		*ret_code = 14;
		return "etcdserver: server stopped";
	default:
		return NULL;
	}
}
