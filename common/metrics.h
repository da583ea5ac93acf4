/*
 * Metrics for /metrics. Each process collects its own (counters, gauges,
 * histograms with etcd's bucket layouts, its process RSS and open fds) into
 * an ipc.Metrics message when gatewayd asks (MSG_METRICS); gatewayd merges
 * the processes' messages by metric name and renders Prometheus' text format.
 */
#ifndef ETCD_COMMON_METRICS_H
#define ETCD_COMMON_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "arena.h"
#include "ipc.pb-c.h"

enum metric_type { METRIC_COUNTER = 0, METRIC_GAUGE = 1, METRIC_HISTOGRAM = 2 };

#define METRICS_MAX_BUCKETS 24

struct metrics_hist {
	size_t n;                       /* bounds in use */
	double bounds[METRICS_MAX_BUCKETS];
	uint64_t counts[METRICS_MAX_BUCKETS]; /* not cumulative; +Inf is count */
	double sum;
	uint64_t count;
};

/* etcd's disk latency buckets (WAL fsync, backend commit): 1 ms doubling, 14. */
void metrics_hist_init_disk(struct metrics_hist *h);
/* Exponential buckets: start, start*factor, ... (n of them). */
void metrics_hist_init_exp(struct metrics_hist *h, double start, double factor,
			   size_t n);
void metrics_hist_observe(struct metrics_hist *h, double v);

/* An ipc.Metrics being filled; everything lives in arena (borrowed). */
struct metrics_out {
	struct arena *a;
	Ipc__Metrics msg;
	size_t cap;
};

void metrics_out_init(struct metrics_out *o, struct arena *a);
/*
 * Adds one sample. label names and values are NULL-terminated lists
 * (may be NULL); strings are copied. Returns the metric, NULL on no memory.
 */
Ipc__Metric *metrics_add(struct metrics_out *o, enum metric_type type,
			 const char *name, const char *help, double value,
			 const char *const *label_names,
			 const char *const *label_values);
Ipc__Metric *metrics_add_hist(struct metrics_out *o, const char *name,
			      const char *help, const struct metrics_hist *h);
/*
 * process_resident_memory_bytes, process_open_fds, process_cpu_seconds_total
 * and process_start_time_seconds of process pid (0: this one), labelled
 * process="<name>".
 */
void metrics_add_process(struct metrics_out *o, const char *name, pid_t pid);

/*
 * Renders parts (n messages, borrowed) as Prometheus text format 0.0.4:
 * samples of one name together under one HELP and TYPE, in the order names
 * first appear. Returns a malloc'd string (its length in ret_len), or NULL.
 */
char *metrics_render(const Ipc__Metrics *const *parts, size_t n,
		     size_t *ret_len);

#endif
