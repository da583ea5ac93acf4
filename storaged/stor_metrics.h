/* storaged's part of /metrics, under etcd 3.4's names, types and help. */
#ifndef STORAGED_STOR_METRICS_H
#define STORAGED_STOR_METRICS_H

#include "metrics.h"
#include "mvcc.h"
#include "watch.h"

/* What storaged measures itself (the rest is read from m and h). */
struct stor_counters {
	struct metrics_hist commit;   /* backend commit durations, seconds */
};

/* Adds storaged's metrics to o (m, h and c borrowed; h may be NULL). */
void stor_metrics_add(struct metrics_out *o, struct mvcc *m,
		      const struct whub *h, const struct stor_counters *c);

#endif
