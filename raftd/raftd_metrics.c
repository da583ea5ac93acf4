/*
 * raftd's part of /metrics: the server's Raft state, proposals, read
 * indexes and the WAL, under etcd 3.4's names, types and help texts, so
 * that dashboards written for etcd read ours unchanged.
 */
#include <inttypes.h>
#include <stdio.h>

#include "log.h"
#include "metrics.h"
#include "raftd.h"

/* Everything one answer needs; metrics are asked for rarely (a scrape every
 * few seconds), so the arena is made and dropped per answer. */
#define METRICS_ARENA_LIMIT (1u << 20)

static void add(struct metrics_out *o, enum metric_type t, const char *name,
		const char *help, double v)
{
	metrics_add(o, t, name, help, v, NULL, NULL);
}

static void add_raft(struct raftd *d, struct metrics_out *o)
{
	uint64_t lead = raft_lead(d->r);
	uint64_t last = raft_last_index(d->r), commit = raft_commit(d->r);
	char id[20];
	const char *ln[] = {"server_id", NULL}, *lv[] = {id, NULL};

	add(o, METRIC_GAUGE, "etcd_server_has_leader",
	    "Whether or not a leader exists. 1 is existence, 0 is not.",
	    lead != 0);
	add(o, METRIC_GAUGE, "etcd_server_is_leader",
	    "Whether or not this member is a leader. 1 if is, 0 otherwise.",
	    raft_role(d->r) == RAFT_LEADER);
	add(o, METRIC_GAUGE, "etcd_server_is_learner",
	    "Whether or not this member is a learner. 1 if is, 0 otherwise.",
	    raft_is_learner(d->r));
	add(o, METRIC_COUNTER, "etcd_server_leader_changes_seen_total",
	    "The number of leader changes seen.", (double)d->leader_changes);
	snprintf(id, sizeof(id), "%" PRIx64, d->id);
	metrics_add(o, METRIC_GAUGE, "etcd_server_id",
		    "Server or member ID in hexadecimal format. 1 for "
		    "'server_id' label with current ID.", 1, ln, lv);

	/* etcd reports the commit index itself as the committed count. */
	add(o, METRIC_GAUGE, "etcd_server_proposals_committed_total",
	    "The total number of consensus proposals committed.",
	    (double)commit);
	/* Appended and not committed yet: what is waiting on a quorum (and,
	 * on the leader, on its own fsync). */
	add(o, METRIC_GAUGE, "etcd_server_proposals_pending",
	    "The current number of pending proposals to commit.",
	    (double)(last > commit ? last - commit : 0));
	add(o, METRIC_COUNTER, "etcd_server_proposals_failed_total",
	    "The total number of failed proposals seen.",
	    (double)d->props_failed);
	add(o, METRIC_COUNTER, "etcd_server_read_indexes_failed_total",
	    "The total number of failed read indexes seen.",
	    (double)d->reads_failed);
	add(o, METRIC_COUNTER, "etcd_server_slow_read_indexes_total",
	    "The total number of pending read indexes not in sync with "
	    "leader's or timed out read index requests.",
	    (double)d->reads_slow);
}

static void add_wal(struct raftd *d, struct metrics_out *o)
{
	metrics_add_hist(o, "etcd_disk_wal_fsync_duration_seconds",
			 "The latency distributions of fsync called by WAL.",
			 wal_fsync_hist(d->wal));
	/* A gauge in etcd 3.4, despite its name. */
	add(o, METRIC_GAUGE, "etcd_disk_wal_write_bytes_total",
	    "Total number of bytes written in WAL.",
	    (double)wal_write_bytes(d->wal));
}

void raftd_metrics(struct raftd *d, uint64_t id)
{
	struct arena a;
	struct metrics_out o;
	arena_init(&a, METRICS_ARENA_LIMIT);
	metrics_out_init(&o, &a);
	add_raft(d, &o);
	add_wal(d, &o);
	metrics_add_process(&o, "raftd", 0);
	if (worker_send_pb(d->w, PROC_GATEWAYD, MSG_METRICS_RESP, id,
			   &o.msg.base) < 0)
		log_debug("raftd", "metrics round %" PRIu64 ": gatewayd is gone",
			  id);
	arena_done(&a);
}
