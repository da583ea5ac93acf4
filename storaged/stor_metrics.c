/*
 * storaged's part of /metrics: the store, the watch hub and the lessor, under
 * etcd 3.4's names, types and help texts, so that dashboards written for
 * etcd read ours unchanged.
 */
#include "lease.h"
#include "stor_metrics.h"

static void add(struct metrics_out *o, enum metric_type t, const char *name,
		const char *help, double v)
{
	metrics_add(o, t, name, help, v, NULL, NULL);
}

static void add_store(struct metrics_out *o, struct mvcc *m,
		      const struct stor_counters *c)
{
	int64_t size = 0, inuse = 0;
	mvcc_disk_usage(m, &size, &inuse);
	/* A gauge in etcd 3.4: the applied index itself. */
	add(o, METRIC_GAUGE, "etcd_server_proposals_applied_total",
	    "The total number of consensus proposals applied.",
	    (double)mvcc_applied(m));
	metrics_add_hist(o, "etcd_disk_backend_commit_duration_seconds",
			 "The latency distributions of commit called by backend.",
			 &c->commit);
	add(o, METRIC_GAUGE, "etcd_mvcc_db_total_size_in_bytes",
	    "Total size of the underlying database physically allocated in "
	    "bytes.", (double)size);
	add(o, METRIC_GAUGE, "etcd_debugging_mvcc_db_total_size_in_bytes",
	    "Total size of the underlying database physically allocated in "
	    "bytes.", (double)size);
	add(o, METRIC_GAUGE, "etcd_mvcc_db_total_size_in_use_in_bytes",
	    "Total size of the underlying database logically in use in bytes.",
	    (double)inuse);
	add(o, METRIC_GAUGE, "etcd_debugging_mvcc_keys_total",
	    "Total number of keys.", (double)mvcc_live_keys(m));
	add(o, METRIC_GAUGE, "etcd_debugging_mvcc_current_revision",
	    "The current revision of store.", (double)mvcc_rev(m));
	add(o, METRIC_GAUGE, "etcd_debugging_mvcc_compact_revision",
	    "The revision of the last compaction in store.",
	    (double)mvcc_compact_rev(m));
	add(o, METRIC_COUNTER, "etcd_debugging_mvcc_db_compaction_keys_total",
	    "Total number of db keys compacted.",
	    (double)mvcc_compacted_keys(m));
}

static void add_watch(struct metrics_out *o, const struct whub *h)
{
	struct whub_stats s = { 0, 0, 0 };
	if (h)
		whub_stats(h, &s);
	add(o, METRIC_GAUGE, "etcd_debugging_mvcc_watcher_total",
	    "Total number of watchers.", (double)s.watchers);
	add(o, METRIC_GAUGE, "etcd_debugging_mvcc_slow_watcher_total",
	    "Total number of unsynced slow watchers.", (double)s.unsynced);
	add(o, METRIC_COUNTER, "etcd_debugging_mvcc_events_total",
	    "Total number of events sent by this member.", (double)s.events);
}

static void add_lease(struct metrics_out *o, struct mvcc *m)
{
	struct lessor_stats s;
	lessor_stats(m, &s);
	add(o, METRIC_COUNTER, "etcd_debugging_lease_granted_total",
	    "The total number of granted leases.", (double)s.granted);
	add(o, METRIC_COUNTER, "etcd_debugging_lease_revoked_total",
	    "The total number of revoked leases.", (double)s.revoked);
	add(o, METRIC_COUNTER, "etcd_debugging_lease_renewed_total",
	    "The number of renewed leases seen by the leader.",
	    (double)s.renewed);
}

void stor_metrics_add(struct metrics_out *o, struct mvcc *m,
		      const struct whub *h, const struct stor_counters *c)
{
	add_store(o, m, c);
	add_watch(o, h);
	add_lease(o, m);
	metrics_add_process(o, "storaged", 0);
}
